//! An OpenTelemetry `SdkTracerProvider` that exports through a [`BatchExporter`].

use opentelemetry_sdk::trace::{Sampler as SdkSampler, SdkTracerProvider, TracerProviderBuilder};

use super::BatchExporter;
use crate::trace::Sampler;

impl BatchExporter {
    /// Starts an `SdkTracerProvider` builder for applications that also use the OpenTelemetry
    /// API directly. It exports through this exporter, with its resource and `sampler`.
    ///
    /// Shutting the provider down shuts this exporter down too, including for the `tracing`
    /// bridge that shares it.
    ///
    /// # Example
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    ///
    /// let config = obskit::Config::builder()
    ///     .env(false)
    ///     .set("tracing.exporter", "stdout")
    ///     .build()?;
    /// let registry = obskit::metrics::Registry::new(&config.metrics);
    /// let exporter =
    ///     obskit::trace::BatchExporter::from_config(&config.tracing, &config.service, &registry)?
    ///         .expect("the stdout exporter is configured");
    /// let provider = exporter
    ///     .tracer_provider_builder(config.tracing.effective_sampler())
    ///     .build();
    /// provider.tracer("checkout").in_span("charge", |_cx| {});
    /// provider.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn tracer_provider_builder(&self, sampler: Sampler) -> TracerProviderBuilder {
        SdkTracerProvider::builder()
            .with_span_processor(self.clone())
            .with_sampler(sdk_sampler(sampler))
            .with_resource(self.resource().clone())
    }
}

/// Converts the sampler into the SDK's, which applies the same trace id ratio rule.
fn sdk_sampler(sampler: Sampler) -> SdkSampler {
    match sampler {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::TraceIdRatio(ratio) => SdkSampler::TraceIdRatioBased(ratio),
        Sampler::ParentBasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(ratio) => {
            SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(ratio)))
        }
    }
}
