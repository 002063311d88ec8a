//! RED method: request rate, errors and duration of one operation, recorded with one lookup.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Metric;

use super::exemplar::{BucketExemplars, SpanIds};
use super::family::{FamilyCore, FamilyView, Series};
use super::histogram::HistogramCore;
use super::{Buckets, MetricsError, Registry, View};

/// The three RED metrics of one label set, stored together so one lookup updates all of them.
///
/// The request count is the histogram count, so `<prefix>_requests_total` and
/// `<prefix>_duration_seconds_count` always agree.
#[derive(Debug)]
pub(crate) struct RedSeries {
    duration: HistogramCore,
    errors: AtomicU64,
}

impl RedSeries {
    #[inline]
    fn observe(&self, seconds: f64, is_error: bool) {
        self.duration.observe(seconds);
        if is_error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    fn observe_with_exemplar(&self, seconds: f64, is_error: bool, ids: SpanIds) {
        self.duration.observe_explicit(seconds, Some(ids));
        if is_error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn encode_requests(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        encoder.encode_counter::<NoLabelSet, u64, u64>(&self.duration.count(), None)
    }

    fn encode_errors(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        encoder.encode_counter::<NoLabelSet, u64, u64>(&self.errors.load(Ordering::Relaxed), None)
    }

    fn encode_duration(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        self.duration.encode(encoder)
    }
}

impl Series for RedSeries {
    type Init = Buckets;

    fn create(buckets: &Buckets) -> Self {
        Self {
            duration: HistogramCore::new(buckets),
            errors: AtomicU64::new(0),
        }
    }

    fn exemplars(&self) -> Option<&BucketExemplars> {
        Some(self.duration.exemplars())
    }
}

/// Requests, errors and duration of one operation, keyed by `N` caller-chosen labels.
///
/// Registers three families:
///
/// | Name | Type | Meaning |
/// |---|---|---|
/// | `<prefix>_requests_total` | counter | operations finished |
/// | `<prefix>_errors_total` | counter | operations that failed |
/// | `<prefix>_duration_seconds` | histogram | operation duration |
///
/// The duration buckets carry exemplars in the OpenMetrics format: see
/// [`Histogram::observe`](super::Histogram::observe).
///
/// # Example
///
/// ```
/// use obskit::metrics::{Red, Registry};
///
/// let registry = Registry::default();
/// let api = Red::register(&registry, "api", ["method", "route", "status"])?;
/// api.observe(&["GET", "/orders/{id}", "200"], 0.012, false);
///
/// // A bound handle skips the lookup.
/// let create = api.get(&["POST", "/orders", "500"]);
/// create.observe(0.3, true);
/// assert_eq!(create.errors(), 1);
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
pub struct Red<const N: usize> {
    core: Arc<FamilyCore<N, RedSeries>>,
}

impl<const N: usize> Clone for Red<N> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
        }
    }
}

impl<const N: usize> fmt::Debug for Red<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Red").field("family", &self.core).finish()
    }
}

impl<const N: usize> Red<N> {
    /// Registers the RED families of `prefix` with [`DEFAULT_DURATION_BUCKETS`](super::DEFAULT_DURATION_BUCKETS).
    ///
    /// # Errors
    ///
    /// As [`Registry::counter_family`], for any of the three names.
    pub fn register(
        registry: &Registry,
        prefix: &str,
        label_names: [&str; N],
    ) -> Result<Self, MetricsError> {
        Self::register_with_buckets(registry, prefix, label_names, Buckets::default())
    }

    /// Registers the RED families of `prefix` with duration buckets `buckets`.
    ///
    /// # Errors
    ///
    /// As [`Red::register`].
    pub fn register_with_buckets(
        registry: &Registry,
        prefix: &str,
        label_names: [&str; N],
        buckets: Buckets,
    ) -> Result<Self, MetricsError> {
        let requests = format!("{prefix}_requests");
        let errors = format!("{prefix}_errors");
        let duration = format!("{prefix}_duration_seconds");
        let requests_help = format!("Operations of {prefix} finished");
        let errors_help = format!("Operations of {prefix} that failed");
        let duration_help = format!("Duration of {prefix} operations in seconds");
        let views = [
            View {
                name: &requests,
                help: &requests_help,
                metric_type: MetricType::Counter,
            },
            View {
                name: &errors,
                help: &errors_help,
                metric_type: MetricType::Counter,
            },
            View {
                name: &duration,
                help: &duration_help,
                metric_type: MetricType::Histogram,
            },
        ];
        let signature = format!("red with labels {label_names:?} and {buckets:?}");

        registry.register_family(prefix, &label_names, &views, &signature, false, |context| {
            let core = Arc::new(FamilyCore::new(
                prefix,
                label_names,
                context.max_series,
                context.overflow_counter,
                buckets,
            ));
            let view = |metric_type, part| {
                Box::new(FamilyView {
                    core: Arc::clone(&core),
                    metric_type,
                    part,
                }) as Box<dyn Metric>
            };
            let metrics = vec![
                view(MetricType::Counter, RedSeries::encode_requests),
                view(MetricType::Counter, RedSeries::encode_errors),
                view(MetricType::Histogram, RedSeries::encode_duration),
            ];
            (Red { core }, metrics)
        })
    }

    /// Records one operation of `labels` that took `seconds`; `is_error` also counts it as an error.
    #[inline]
    pub fn observe(&self, labels: &[&str; N], seconds: f64, is_error: bool) {
        self.core
            .with(labels, |series| series.observe(seconds, is_error));
    }

    /// Records one operation as [`Red::observe`] does, and makes it the exemplar of its duration
    /// bucket, labelled with `trace_id` and `span_id` (see
    /// [`Histogram::observe_with_exemplar`](super::Histogram::observe_with_exemplar)).
    #[inline]
    pub fn observe_with_exemplar(
        &self,
        labels: &[&str; N],
        seconds: f64,
        is_error: bool,
        trace_id: [u8; 16],
        span_id: [u8; 8],
    ) {
        self.core.with(labels, |series| {
            series.observe_with_exemplar(seconds, is_error, (trace_id, span_id));
        });
    }

    /// Returns a handle bound to `labels`, or to the overflow series if the family is full.
    pub fn get(&self, labels: &[&str; N]) -> RedHandle {
        RedHandle {
            series: self.core.get(labels),
        }
    }

    /// Number of label sets stored, not counting the overflow series.
    pub fn series_count(&self) -> usize {
        self.core.len()
    }
}

/// RED metrics bound to one label set.
#[derive(Debug, Clone)]
pub struct RedHandle {
    series: Arc<RedSeries>,
}

impl RedHandle {
    /// Records one operation that took `seconds`; `is_error` also counts it as an error.
    #[inline]
    pub fn observe(&self, seconds: f64, is_error: bool) {
        self.series.observe(seconds, is_error);
    }

    /// Records one operation as [`RedHandle::observe`] does, with an exemplar labelled
    /// `trace_id` and `span_id`.
    #[inline]
    pub fn observe_with_exemplar(
        &self,
        seconds: f64,
        is_error: bool,
        trace_id: [u8; 16],
        span_id: [u8; 8],
    ) {
        self.series
            .observe_with_exemplar(seconds, is_error, (trace_id, span_id));
    }

    /// Operations recorded so far.
    pub fn requests(&self) -> u64 {
        self.series.duration.count()
    }

    /// Failed operations recorded so far.
    pub fn errors(&self) -> u64 {
        self.series.errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Format;

    #[test]
    fn observe_updates_all_three() -> Result<(), MetricsError> {
        let registry = Registry::default();
        let red = Red::register(&registry, "rpc", ["method"])?;
        red.observe(&["Get"], 0.02, false);
        red.observe(&["Get"], 0.2, true);

        let handle = red.get(&["Get"]);
        assert_eq!(handle.requests(), 2);
        assert_eq!(handle.errors(), 1);

        let text = registry.encode(Format::PrometheusText)?;
        assert!(
            text.contains("rpc_requests_total{method=\"Get\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("rpc_errors_total{method=\"Get\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("rpc_duration_seconds_count{method=\"Get\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("rpc_duration_seconds_bucket{method=\"Get\",le=\"0.025\"} 1\n"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn sampled_span_becomes_exemplar() -> Result<(), MetricsError> {
        let registry = Registry::default();
        let red = Red::register(&registry, "rpc", ["method"])?;
        let ids = ([0xab; 16], [0xcd; 8]);
        crate::metrics::exemplar::test_span::within(ids, || {
            red.observe(&["Get"], 0.02, false);
        });
        red.observe(&["Put"], 0.02, false);

        let text = registry.encode(Format::OpenMetrics)?;
        let exemplar = format!(
            "rpc_duration_seconds_bucket{{le=\"0.025\",method=\"Get\"}} 1 # {{trace_id=\"{}\",span_id=\"{}\"}} 0.02 ",
            "ab".repeat(16),
            "cd".repeat(8)
        );
        assert!(text.contains(&exemplar), "{text}");
        assert!(
            text.contains("rpc_duration_seconds_bucket{le=\"0.025\",method=\"Put\"} 1\n"),
            "{text}"
        );
        assert_eq!(text.matches(" # {").count(), 1, "{text}");
        assert!(!registry.encode(Format::PrometheusText)?.contains(" # {"));
        Ok(())
    }

    #[test]
    fn prefix_clash_is_rejected() -> Result<(), MetricsError> {
        let registry = Registry::default();
        registry.counter("rpc_errors", "Errors.")?;
        let red = Red::register(&registry, "rpc", ["method"]);
        assert!(matches!(red, Err(MetricsError::AlreadyRegistered { .. })));
        assert!(
            !registry
                .encode(Format::PrometheusText)?
                .contains("rpc_requests")
        );
        Ok(())
    }
}
