//! The `tracing` section: span export over OTLP or to standard output, sampling and batching.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Secret, duration};
use crate::trace::Sampler;

/// Default gRPC endpoint of an OTLP collector.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

/// Default HTTP/protobuf traces endpoint of an OTLP collector.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// Default of [`TracingConfig::attribute_value_length_limit`], in bytes: 16 KiB.
///
/// The OpenTelemetry default is no limit. obskit sets one so that a request or response body
/// logged into a span cannot push an export request over gRPC's default 4 MiB message size.
pub const DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT: usize = 16 * 1024;

/// Path that the OTLP exporter specification appends to a base endpoint for HTTP/protobuf.
const HTTP_TRACES_PATH: &str = "v1/traces";

/// Span export settings, named after the OpenTelemetry SDK environment variables.
///
/// Tracing is enabled when [`exporter`](Self::exporter) resolves to anything but
/// [`TraceExporter::None`]; see [`TracingConfig::effective_exporter`].
///
/// # Example
///
/// ```
/// use obskit::config::{OtlpProtocol, TraceExporter};
///
/// let config = obskit::Config::builder()
///     .env_from([
///         ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
///         ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
///     ])
///     .build()?;
/// assert_eq!(config.tracing.effective_exporter(), TraceExporter::Otlp);
/// assert_eq!(config.tracing.protocol, OtlpProtocol::HttpProtobuf);
/// assert_eq!(config.tracing.effective_endpoint(), "http://collector:4318/v1/traces");
/// # Ok::<(), obskit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// Destination of finished spans. Unset means `otlp` when an endpoint is configured and `none`
    /// otherwise.
    pub exporter: Option<TraceExporter>,
    /// OTLP transport.
    pub protocol: OtlpProtocol,
    /// Base URL of the collector; `/v1/traces` is appended for HTTP/protobuf.
    pub endpoint: Option<String>,
    /// Full URL of the traces endpoint, used as is; wins over `endpoint`.
    pub traces_endpoint: Option<String>,
    /// Headers sent with every export request, such as `authorization`. Values are secrets.
    pub headers: BTreeMap<String, Secret>,
    /// Compression of export requests.
    pub compression: OtlpCompression,
    /// Timeout of one OTLP request.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// PEM file of the CA certificates that verify the collector; unset uses the system roots.
    pub certificate: Option<PathBuf>,
    /// PEM file of the client certificate chain for mutual TLS; needs `client_key`.
    pub client_certificate: Option<PathBuf>,
    /// PEM file of the client private key for mutual TLS; needs `client_certificate`.
    pub client_key: Option<PathBuf>,
    /// Head sampler, with the names of `OTEL_TRACES_SAMPLER`.
    pub sampler: SamplerName,
    /// Ratio of the `traceidratio` samplers, from 0.0 to 1.0; unset means 1.0.
    pub sampler_arg: Option<f64>,
    /// Ratio from 0.0 to 1.0 for `parentbased_traceidratio`; wins over `sampler`.
    pub sample_rate: Option<f64>,
    /// Export spans that end with an error even when their trace is not sampled.
    pub keep_errors: bool,
    /// Maximum length in bytes of a string attribute value that a span or span event exports.
    /// Longer values are cut at a character boundary. One huge value would otherwise make a whole
    /// export request too large for the collector.
    pub attribute_value_length_limit: usize,
    /// Batching of spans between the application and the exporter.
    pub batch: BatchConfig,
    /// Maximum time to export the queued spans at shutdown.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            exporter: None,
            protocol: OtlpProtocol::Grpc,
            endpoint: None,
            traces_endpoint: None,
            headers: BTreeMap::new(),
            compression: OtlpCompression::None,
            timeout: Duration::from_secs(10),
            certificate: None,
            client_certificate: None,
            client_key: None,
            sampler: SamplerName::ParentBasedAlwaysOn,
            sampler_arg: None,
            sample_rate: None,
            keep_errors: false,
            attribute_value_length_limit: DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT,
            batch: BatchConfig::default(),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl TracingConfig {
    /// Resolves an unset [`exporter`](Self::exporter): `otlp` when `endpoint` or
    /// `traces_endpoint` is set, `none` otherwise.
    #[must_use]
    pub fn effective_exporter(&self) -> TraceExporter {
        match self.exporter {
            Some(exporter) => exporter,
            None if self.endpoint.is_some() || self.traces_endpoint.is_some() => {
                TraceExporter::Otlp
            }
            None => TraceExporter::None,
        }
    }

    /// Returns whether spans are exported at all.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.effective_exporter() != TraceExporter::None
    }

    /// Returns the URL that OTLP requests go to.
    ///
    /// `traces_endpoint` is used as is. For HTTP/protobuf, `endpoint` is a base URL and gets
    /// `v1/traces` appended to its path, as the OTLP exporter specification requires. For gRPC
    /// it is used as is. Without either, the defaults are [`DEFAULT_GRPC_ENDPOINT`] and
    /// [`DEFAULT_HTTP_ENDPOINT`].
    #[must_use]
    pub fn effective_endpoint(&self) -> String {
        if let Some(endpoint) = &self.traces_endpoint {
            return endpoint.clone();
        }
        match (self.protocol, &self.endpoint) {
            (OtlpProtocol::Grpc, Some(endpoint)) => endpoint.clone(),
            (OtlpProtocol::Grpc, None) => DEFAULT_GRPC_ENDPOINT.to_owned(),
            (OtlpProtocol::HttpProtobuf, Some(base)) if base.ends_with('/') => {
                format!("{base}{HTTP_TRACES_PATH}")
            }
            (OtlpProtocol::HttpProtobuf, Some(base)) => format!("{base}/{HTTP_TRACES_PATH}"),
            (OtlpProtocol::HttpProtobuf, None) => DEFAULT_HTTP_ENDPOINT.to_owned(),
        }
    }

    /// Returns the head sampler: `parentbased_traceidratio` with `sample_rate` when that is
    /// set, otherwise `sampler` with `sampler_arg` (1.0 when unset) for the ratio samplers.
    #[must_use]
    pub fn effective_sampler(&self) -> Sampler {
        if let Some(rate) = self.sample_rate {
            return Sampler::ParentBasedTraceIdRatio(rate);
        }
        let ratio = self.sampler_arg.unwrap_or(1.0);
        match self.sampler {
            SamplerName::AlwaysOn => Sampler::AlwaysOn,
            SamplerName::AlwaysOff => Sampler::AlwaysOff,
            SamplerName::TraceIdRatio => Sampler::TraceIdRatio(ratio),
            SamplerName::ParentBasedAlwaysOn => Sampler::ParentBasedAlwaysOn,
            SamplerName::ParentBasedAlwaysOff => Sampler::ParentBasedAlwaysOff,
            SamplerName::ParentBasedTraceIdRatio => Sampler::ParentBasedTraceIdRatio(ratio),
        }
    }
}

/// Destination of finished spans (`OTEL_TRACES_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceExporter {
    /// An OTLP collector over gRPC or HTTP/protobuf.
    Otlp,
    /// Standard output, one JSON document per batch; `console` is accepted as an alias.
    #[serde(alias = "console")]
    Stdout,
    /// No export: tracing is off.
    None,
}

impl TraceExporter {
    /// Returns the name as written in configuration: `otlp`, `stdout` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceExporter::Otlp => "otlp",
            TraceExporter::Stdout => "stdout",
            TraceExporter::None => "none",
        }
    }
}

/// OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// gRPC over HTTP/2.
    #[serde(rename = "grpc")]
    Grpc,
    /// Protobuf messages over HTTP POST.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// Compression of OTLP requests (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpCompression {
    /// gzip.
    Gzip,
    /// No compression.
    None,
}

/// Head sampler names of `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SamplerName {
    /// `always_on`.
    #[serde(rename = "always_on")]
    AlwaysOn,
    /// `always_off`.
    #[serde(rename = "always_off")]
    AlwaysOff,
    /// `traceidratio`.
    #[serde(rename = "traceidratio")]
    TraceIdRatio,
    /// `parentbased_always_on`, the default.
    #[serde(rename = "parentbased_always_on")]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    #[serde(rename = "parentbased_always_off")]
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`.
    #[serde(rename = "parentbased_traceidratio")]
    ParentBasedTraceIdRatio,
}

/// Batching of spans (`OTEL_BSP_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Spans waiting for export; a full queue drops and counts new spans.
    pub max_queue_size: usize,
    /// Maximum spans in one export request; at most `max_queue_size`.
    pub max_export_batch_size: usize,
    /// Maximum time a span waits before its batch is exported.
    #[serde(with = "duration")]
    pub schedule_delay: Duration,
    /// Maximum time of one export, retries included.
    #[serde(with = "duration")]
    pub export_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_endpoint(protocol: OtlpProtocol, endpoint: &str) -> TracingConfig {
        TracingConfig {
            protocol,
            endpoint: Some(endpoint.to_owned()),
            ..TracingConfig::default()
        }
    }

    #[test]
    fn exporter_defaults_to_none_without_endpoint() {
        assert_eq!(
            TracingConfig::default().effective_exporter(),
            TraceExporter::None
        );
        assert!(!TracingConfig::default().is_enabled());
    }

    #[test]
    fn exporter_defaults_to_otlp_with_endpoint() {
        let config = with_endpoint(OtlpProtocol::Grpc, "http://collector:4317");
        assert_eq!(config.effective_exporter(), TraceExporter::Otlp);
        let config = TracingConfig {
            traces_endpoint: Some("http://collector:4318/v1/traces".to_owned()),
            ..TracingConfig::default()
        };
        assert_eq!(config.effective_exporter(), TraceExporter::Otlp);
    }

    #[test]
    fn explicit_exporter_wins() {
        let mut config = with_endpoint(OtlpProtocol::Grpc, "http://collector:4317");
        config.exporter = Some(TraceExporter::None);
        assert_eq!(config.effective_exporter(), TraceExporter::None);
    }

    #[test]
    fn endpoint_defaults_per_protocol() {
        let mut config = TracingConfig::default();
        assert_eq!(config.effective_endpoint(), "http://localhost:4317");
        config.protocol = OtlpProtocol::HttpProtobuf;
        assert_eq!(
            config.effective_endpoint(),
            "http://localhost:4318/v1/traces"
        );
    }

    #[test]
    fn http_base_endpoint_gets_traces_path() {
        let config = with_endpoint(OtlpProtocol::HttpProtobuf, "http://c:4318");
        assert_eq!(config.effective_endpoint(), "http://c:4318/v1/traces");
        let config = with_endpoint(OtlpProtocol::HttpProtobuf, "http://c:4318/otlp/");
        assert_eq!(config.effective_endpoint(), "http://c:4318/otlp/v1/traces");
    }

    #[test]
    fn grpc_endpoint_is_used_as_is() {
        let config = with_endpoint(OtlpProtocol::Grpc, "https://c:4317");
        assert_eq!(config.effective_endpoint(), "https://c:4317");
    }

    #[test]
    fn traces_endpoint_is_used_as_is() {
        let mut config = with_endpoint(OtlpProtocol::HttpProtobuf, "http://base:4318");
        config.traces_endpoint = Some("http://other:9999/custom".to_owned());
        assert_eq!(config.effective_endpoint(), "http://other:9999/custom");
    }

    #[test]
    fn sample_rate_wins_over_sampler() {
        let config = TracingConfig {
            sampler: SamplerName::AlwaysOff,
            sample_rate: Some(0.25),
            ..TracingConfig::default()
        };
        assert_eq!(
            config.effective_sampler(),
            Sampler::ParentBasedTraceIdRatio(0.25)
        );
    }

    #[test]
    fn sampler_names_map_to_samplers() {
        let cases = [
            (SamplerName::AlwaysOn, Sampler::AlwaysOn),
            (SamplerName::AlwaysOff, Sampler::AlwaysOff),
            (SamplerName::TraceIdRatio, Sampler::TraceIdRatio(0.5)),
            (
                SamplerName::ParentBasedAlwaysOn,
                Sampler::ParentBasedAlwaysOn,
            ),
            (
                SamplerName::ParentBasedAlwaysOff,
                Sampler::ParentBasedAlwaysOff,
            ),
            (
                SamplerName::ParentBasedTraceIdRatio,
                Sampler::ParentBasedTraceIdRatio(0.5),
            ),
        ];
        for (name, sampler) in cases {
            let config = TracingConfig {
                sampler: name,
                sampler_arg: Some(0.5),
                ..TracingConfig::default()
            };
            assert_eq!(config.effective_sampler(), sampler, "{name:?}");
        }
    }

    #[test]
    fn ratio_sampler_without_arg_keeps_everything() {
        let config = TracingConfig {
            sampler: SamplerName::TraceIdRatio,
            ..TracingConfig::default()
        };
        assert_eq!(config.effective_sampler(), Sampler::TraceIdRatio(1.0));
    }
}
