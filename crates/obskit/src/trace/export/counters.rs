//! The metric families of span export and the rate limit of its warnings.

use std::time::{Duration, Instant};

use crate::metrics::{Counter, MetricsError, Registry};

/// Name of the dropped-spans counter family, without the `_total` suffix.
pub const SPANS_DROPPED: &str = "obskit_spans_dropped";
/// Name of the exported-spans counter, without the `_total` suffix.
pub const SPANS_EXPORTED: &str = "obskit_spans_exported";
/// Name of the failed-exports counter family, without the `_total` suffix.
pub const SPAN_EXPORT_FAILURES: &str = "obskit_span_export_failures";

/// `reason` of spans dropped because the queue was full.
const QUEUE_FULL: &str = "queue_full";
/// `reason` of spans whose export failed or timed out.
const EXPORT_FAILED: &str = "export_failed";
/// `reason` of spans that the collector reported as rejected in a partial success.
const REJECTED: &str = "rejected";
/// `reason` of spans sent after shutdown or still queued when its deadline passed.
const SHUTDOWN: &str = "shutdown";

/// Shortest time between two export failure warnings.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(30);

/// The counters that span export updates, resolved once so that updates do no lookup.
#[derive(Clone, Debug)]
pub(crate) struct Counters {
    pub(crate) dropped_queue_full: Counter,
    pub(crate) dropped_export_failed: Counter,
    pub(crate) dropped_rejected: Counter,
    pub(crate) dropped_shutdown: Counter,
    pub(crate) exported: Counter,
    pub(crate) failed_error: Counter,
    pub(crate) failed_timeout: Counter,
}

impl Counters {
    /// Registers the families, or returns those already registered by another exporter.
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let dropped = registry.get_or_register_counter_family(
            SPANS_DROPPED,
            "Spans not delivered, by reason: queue_full, export_failed, rejected or shutdown.",
            ["reason"],
        )?;
        let exported = registry
            .get_or_register_counter_family(
                SPANS_EXPORTED,
                "Spans accepted by the span exporter.",
                [],
            )?
            .get(&[]);
        let failures = registry.get_or_register_counter_family(
            SPAN_EXPORT_FAILURES,
            "Span export requests that failed, by reason: error or timeout.",
            ["reason"],
        )?;
        Ok(Self {
            dropped_queue_full: dropped.get(&[QUEUE_FULL]),
            dropped_export_failed: dropped.get(&[EXPORT_FAILED]),
            dropped_rejected: dropped.get(&[REJECTED]),
            dropped_shutdown: dropped.get(&[SHUTDOWN]),
            exported,
            failed_error: failures.get(&["error"]),
            failed_timeout: failures.get(&["timeout"]),
        })
    }
}

/// Lets one warning through per [`WARN_INTERVAL`] and counts the ones held back.
#[derive(Debug, Default)]
pub(crate) struct WarnLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    /// Returns `Some(suppressed since the last warning)` when a warning may be logged now.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= WARN_INTERVAL);
        if due {
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_lets_first_warning_through() {
        let mut limiter = WarnLimiter::default();
        assert_eq!(limiter.allow(Instant::now()), Some(0));
    }

    #[test]
    fn limiter_counts_suppressed_warnings() {
        let mut limiter = WarnLimiter::default();
        let start = Instant::now();
        assert_eq!(limiter.allow(start), Some(0));
        assert_eq!(limiter.allow(start + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow(start + Duration::from_secs(2)), None);
        assert_eq!(limiter.allow(start + WARN_INTERVAL), Some(2));
        assert_eq!(limiter.allow(start + WARN_INTERVAL), None);
    }
}
