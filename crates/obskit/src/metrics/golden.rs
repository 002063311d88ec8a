//! Golden Signals: RED for latency, traffic and errors, plus saturation and queue depth gauges.

use super::{Buckets, GaugeFamily, MetricsError, Red, RedHandle, Registry};

/// The four Golden Signals of one service or component.
///
/// Latency, traffic and errors come from a [`Red`] family. Saturation is a set of ratio gauges
/// with a `resource` label, and queue depth is a set of gauges with a `queue` label.
///
/// | Name | Type | Labels | Meaning |
/// |---|---|---|---|
/// | `<prefix>_requests_total` | counter | caller's | operations finished |
/// | `<prefix>_errors_total` | counter | caller's | operations that failed |
/// | `<prefix>_duration_seconds` | histogram | caller's | operation duration |
/// | `<prefix>_saturation_ratio` | gauge | `resource` | how full a resource is, 0 to 1 |
/// | `<prefix>_queue_depth` | gauge | `queue` | items waiting |
///
/// # Example
///
/// ```
/// use obskit::metrics::{GoldenSignals, Registry};
///
/// let registry = Registry::default();
/// let worker = GoldenSignals::register(&registry, "worker", ["job"])?;
/// worker.observe(&["resize"], 0.8, false);
/// worker.set_saturation("pool", 0.75)?;
/// worker.set_queue_depth("incoming", 12);
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GoldenSignals<const N: usize> {
    red: Red<N>,
    saturation: GaugeFamily<1>,
    queue_depth: GaugeFamily<1>,
}

impl<const N: usize> GoldenSignals<N> {
    /// Registers the Golden Signals of `prefix` with the default duration buckets.
    ///
    /// # Errors
    ///
    /// As [`Red::register`], for any of the five names.
    pub fn register(
        registry: &Registry,
        prefix: &str,
        label_names: [&str; N],
    ) -> Result<Self, MetricsError> {
        Self::register_with_buckets(registry, prefix, label_names, Buckets::default())
    }

    /// Registers the Golden Signals of `prefix` with duration buckets `buckets`.
    ///
    /// # Errors
    ///
    /// As [`GoldenSignals::register`].
    pub fn register_with_buckets(
        registry: &Registry,
        prefix: &str,
        label_names: [&str; N],
        buckets: Buckets,
    ) -> Result<Self, MetricsError> {
        let saturation = registry.gauge_family(
            &format!("{prefix}_saturation_ratio"),
            &format!("Saturation of a resource used by {prefix}, from 0 (idle) to 1 (full)"),
            ["resource"],
        )?;
        let queue_depth = registry.gauge_family(
            &format!("{prefix}_queue_depth"),
            &format!("Items waiting in a queue of {prefix}"),
            ["queue"],
        )?;
        let red = Red::register_with_buckets(registry, prefix, label_names, buckets)?;
        Ok(Self {
            red,
            saturation,
            queue_depth,
        })
    }

    /// Records one operation; see [`Red::observe`].
    #[inline]
    pub fn observe(&self, labels: &[&str; N], seconds: f64, is_error: bool) {
        self.red.observe(labels, seconds, is_error);
    }

    /// Returns a handle bound to `labels`; see [`Red::get`].
    pub fn get(&self, labels: &[&str; N]) -> RedHandle {
        self.red.get(labels)
    }

    /// Returns the RED part.
    pub fn red(&self) -> &Red<N> {
        &self.red
    }

    /// Sets the saturation of `resource` to `ratio`.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidValue`] if `ratio` is not within 0..=1; the gauge keeps its value.
    pub fn set_saturation(&self, resource: &str, ratio: f64) -> Result<(), MetricsError> {
        check_ratio(self.saturation.name(), ratio)?;
        self.saturation.set(&[resource], ratio);
        Ok(())
    }

    /// Sets the number of items waiting in `queue`.
    pub fn set_queue_depth(&self, queue: &str, depth: u64) {
        // Depths above 2^53 lose precision in the f64 gauge, far beyond any real queue.
        self.queue_depth.set(&[queue], depth as f64);
    }
}

/// Checks that `ratio` lies within 0..=1.
pub(crate) fn check_ratio(metric: &str, ratio: f64) -> Result<(), MetricsError> {
    if (0.0..=1.0).contains(&ratio) {
        Ok(())
    } else {
        Err(MetricsError::InvalidValue {
            metric: metric.to_owned(),
            value: ratio,
            reason: "a ratio must be within 0..=1; divide by the capacity".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Format;

    #[test]
    fn saturation_rejects_out_of_range() -> Result<(), MetricsError> {
        let registry = Registry::default();
        let golden = GoldenSignals::register(&registry, "cache", ["op"])?;
        golden.set_saturation("memory", 0.5)?;
        for bad in [-0.1, 1.5, f64::NAN] {
            assert!(golden.set_saturation("memory", bad).is_err(), "{bad}");
        }
        golden.set_queue_depth("writes", 7);

        let text = registry.encode(Format::PrometheusText)?;
        assert!(
            text.contains("cache_saturation_ratio{resource=\"memory\"} 0.5\n"),
            "{text}"
        );
        assert!(
            text.contains("cache_queue_depth{queue=\"writes\"} 7"),
            "{text}"
        );
        Ok(())
    }
}
