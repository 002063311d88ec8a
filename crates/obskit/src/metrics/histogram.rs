//! Lock-free histogram with fixed buckets, and bucket layouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

use super::MetricsError;
use super::exemplar::{self, BucketExemplars, Exemplar};

/// Upper bounds in seconds recommended by the OpenTelemetry HTTP semantic conventions for
/// `http.server.request.duration`; obskit uses them for every duration histogram by default.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Validated, strictly increasing, finite bucket upper bounds. The `+Inf` bucket is implicit.
///
/// # Example
///
/// ```
/// use obskit::metrics::Buckets;
///
/// let buckets = Buckets::new([0.1, 0.5, 1.0])?;
/// assert_eq!(buckets.bounds(), &[0.1, 0.5, 1.0]);
/// assert!(Buckets::new([1.0, 0.5]).is_err());
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    bounds: Arc<[f64]>,
}

impl Buckets {
    /// Validates `bounds` as histogram upper bounds.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidBuckets`] if the list is empty, contains a NaN or infinite value,
    /// or is not strictly increasing.
    pub fn new(bounds: impl Into<Vec<f64>>) -> Result<Self, MetricsError> {
        let bounds: Vec<f64> = bounds.into();
        let invalid = |reason: String| MetricsError::InvalidBuckets { reason };

        if bounds.is_empty() {
            return Err(invalid(
                "the list is empty; give at least one finite upper bound (+Inf is added automatically)".to_owned(),
            ));
        }
        if let Some(bad) = bounds.iter().find(|bound| !bound.is_finite()) {
            return Err(invalid(format!(
                "{bad} is not finite; give finite upper bounds only (+Inf is added automatically)"
            )));
        }
        if let Some(pair) = bounds
            .windows(2)
            .find(|pair| matches!(pair, [a, b] if a >= b))
        {
            return Err(invalid(format!(
                "{pair:?} is not strictly increasing; sort the bounds and remove duplicates"
            )));
        }
        Ok(Self {
            bounds: bounds.into(),
        })
    }

    /// Builds `count` bounds starting at `start`, each `factor` times the previous one.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidBuckets`] if `start <= 0`, `factor <= 1` or `count == 0`.
    pub fn exponential(start: f64, factor: f64, count: usize) -> Result<Self, MetricsError> {
        if !(start > 0.0 && factor > 1.0 && count > 0) {
            return Err(MetricsError::InvalidBuckets {
                reason: format!(
                    "exponential buckets need start > 0, factor > 1 and count > 0, got start={start}, factor={factor}, count={count}"
                ),
            });
        }
        let bounds = std::iter::successors(Some(start), |bound| Some(bound * factor))
            .take(count)
            .collect::<Vec<_>>();
        Self::new(bounds)
    }

    /// Returns the upper bounds, without the implicit `+Inf`.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

impl Default for Buckets {
    /// [`DEFAULT_DURATION_BUCKETS`].
    fn default() -> Self {
        Self {
            bounds: DEFAULT_DURATION_BUCKETS.into(),
        }
    }
}

/// Atomic state of one histogram series: a counter per bucket, the sum and the exemplars.
///
/// `observe` takes no lock: one `fetch_add` on the bucket and a compare-and-swap loop on the
/// sum, which is an `f64` stored as bits in an [`AtomicU64`]. The count is the total of the
/// bucket counters. A scrape that runs during an observation may therefore see the bucket
/// before the sum, and the next scrape is consistent again. Only an observation that carries an
/// exemplar locks, and only the exemplar slot of its bucket.
#[derive(Debug)]
pub(crate) struct HistogramCore {
    bounds: Arc<[f64]>,
    /// One counter per bound plus the `+Inf` bucket, not cumulative.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    exemplars: BucketExemplars,
}

impl HistogramCore {
    pub(crate) fn new(buckets: &Buckets) -> Self {
        let counts = (0..=buckets.bounds.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        Self {
            bounds: Arc::clone(&buckets.bounds),
            counts,
            sum_bits: AtomicU64::new(0.0_f64.to_bits()),
            exemplars: BucketExemplars::default(),
        }
    }

    /// Records `value`, with the current span as exemplar when its trace is sampled.
    #[inline]
    pub(crate) fn observe(&self, value: f64) {
        self.observe_explicit(value, exemplar::current_span_ids());
    }

    /// Records `value` with the exemplar `ids` when given, or without one if either id is all
    /// zeros. Unlike [`HistogramCore::observe`] it does not look up the current span.
    #[inline]
    pub(crate) fn observe_explicit(&self, value: f64, ids: Option<exemplar::SpanIds>) {
        let index = self.record(value);
        if let Some(ids) = ids {
            self.store_exemplar(index, value, ids);
        }
    }

    #[cold]
    fn store_exemplar(&self, index: usize, value: f64, ids: exemplar::SpanIds) {
        if let Some(exemplar) = Exemplar::now(value, ids) {
            self.exemplars.store(index, self.counts.len(), exemplar);
        }
    }

    /// Returns the exemplars of the buckets, for the OpenMetrics encoding.
    pub(crate) fn exemplars(&self) -> &BucketExemplars {
        &self.exemplars
    }

    /// Counts `value` in its bucket and the sum, and returns the bucket index. NaN is counted in
    /// the `+Inf` bucket and makes the sum NaN, as in the Prometheus Go client.
    #[inline]
    fn record(&self, value: f64) -> usize {
        let index = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.counts.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }

        let mut current = self.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + value).to_bits();
            match self.sum_bits.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        index
    }

    /// Number of observations, the sum of all buckets.
    pub(crate) fn count(&self) -> u64 {
        self.counts
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    /// Writes the series through `encoder`.
    ///
    /// The buckets are passed non-cumulative, with an explicit `+Inf` entry, because the
    /// prometheus-client encoders accumulate them. Exemplars are added afterwards by
    /// [`exemplar::encode_openmetrics`], because prometheus-client cannot take them from a
    /// custom metric type.
    pub(crate) fn encode(&self, encoder: &mut MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // NOTE: at most 64 bounds fit the stack buffer; longer layouts take one allocation.
        let mut stack = [(0.0_f64, 0_u64); 65];
        let mut heap = Vec::new();
        let buckets: &mut [(f64, u64)] = if self.counts.len() <= stack.len() {
            stack.get_mut(..self.counts.len()).unwrap_or_default()
        } else {
            heap.resize(self.counts.len(), (0.0, 0));
            &mut heap
        };

        let mut count = 0_u64;
        for (index, (slot, bucket)) in buckets.iter_mut().zip(self.counts.iter()).enumerate() {
            let observed = bucket.load(Ordering::Relaxed);
            count = count.wrapping_add(observed);
            let bound = self.bounds.get(index).copied().unwrap_or(f64::INFINITY);
            *slot = (bound, observed);
        }
        encoder.encode_histogram::<NoLabelSet>(self.sum(), count, buckets, None)
    }
}

/// A cloneable handle to one histogram series.
///
/// Obtained from [`HistogramFamily::get`](super::HistogramFamily::get) or
/// [`Registry::histogram`](super::Registry::histogram); observing through it needs no lookup.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub(crate) core: Arc<HistogramCore>,
}

impl Histogram {
    /// Records one observation, such as a duration in seconds.
    ///
    /// Inside a span whose trace is sampled, the observation also becomes the exemplar of its
    /// bucket, written in the OpenMetrics format only.
    #[inline]
    pub fn observe(&self, value: f64) {
        self.core.observe(value);
    }

    /// Records one observation and makes it the exemplar of its bucket, labelled with
    /// `trace_id` and `span_id` (the W3C Trace Context bytes, written as lowercase hex).
    ///
    /// Use it where the ids are at hand, such as in middleware that has just started a span.
    /// The exemplar keeps the observed value and the current time, and the next observation
    /// with an exemplar in the same bucket replaces it.
    ///
    /// # Example
    ///
    /// ```
    /// use obskit::metrics::{Buckets, Format, Registry};
    ///
    /// let registry = Registry::default();
    /// let latency = registry.histogram("job_duration_seconds", "Job duration.", Buckets::new([0.1, 1.0])?)?;
    /// let trace_id = 0x4bf92f3577b34da6a3ce929d0e0e4736_u128.to_be_bytes();
    /// let span_id = 0x00f067aa0ba902b7_u64.to_be_bytes();
    /// latency.observe_with_exemplar(0.042, trace_id, span_id);
    ///
    /// let text = registry.encode(Format::OpenMetrics)?;
    /// assert!(text.contains(
    ///     r#"job_duration_seconds_bucket{le="0.1"} 1 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 0.042 "#
    /// ));
    /// # Ok::<(), obskit::metrics::MetricsError>(())
    /// ```
    ///
    /// # Limitations
    ///
    /// W3C Trace Context defines an all-zero trace id or span id as invalid. With one, the
    /// value is still counted but no exemplar is stored.
    #[inline]
    pub fn observe_with_exemplar(&self, value: f64, trace_id: [u8; 16], span_id: [u8; 8]) {
        self.core.observe_explicit(value, Some((trace_id, span_id)));
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        self.core.count()
    }

    /// Sum of all observations so far.
    pub fn sum(&self) -> f64 {
        self.core.sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_reject_bad_bounds() {
        for bounds in [
            vec![],
            vec![1.0, f64::NAN],
            vec![1.0, f64::INFINITY],
            vec![2.0, 1.0],
            vec![1.0, 1.0],
        ] {
            let error = Buckets::new(bounds.clone());
            assert!(
                matches!(error, Err(MetricsError::InvalidBuckets { .. })),
                "{bounds:?} should be rejected"
            );
        }
    }

    #[test]
    fn exponential_buckets_grow() -> Result<(), MetricsError> {
        let buckets = Buckets::exponential(0.001, 2.0, 4)?;
        assert_eq!(buckets.bounds(), &[0.001, 0.002, 0.004, 0.008]);
        assert!(Buckets::exponential(0.0, 2.0, 4).is_err());
        assert!(Buckets::exponential(1.0, 1.0, 4).is_err());
        Ok(())
    }

    #[test]
    fn observe_counts_and_sums() -> Result<(), MetricsError> {
        let core = HistogramCore::new(&Buckets::new([1.0, 2.0])?);
        for value in [0.5, 1.0, 1.5, 3.0, 100.0] {
            core.observe(value);
        }
        let counts: Vec<u64> = core
            .counts
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, vec![2, 1, 2]);
        assert_eq!(core.count(), 5);
        assert!((core.sum() - 106.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn nan_lands_in_inf_bucket() -> Result<(), MetricsError> {
        let core = HistogramCore::new(&Buckets::new([1.0, 2.0])?);
        core.observe(f64::NAN);
        core.observe(2.0);
        let counts: Vec<u64> = core
            .counts
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, vec![0, 1, 1]);
        assert!(core.sum().is_nan());
        Ok(())
    }

    const IDS: exemplar::SpanIds = (
        [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ],
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
    );

    fn stored_values(core: &HistogramCore) -> Vec<Option<f64>> {
        core.exemplars
            .snapshot()
            .unwrap_or_default()
            .iter()
            .map(|exemplar| exemplar.map(|exemplar| exemplar.value))
            .collect()
    }

    #[test]
    fn observe_outside_span_keeps_no_exemplar() -> Result<(), MetricsError> {
        let core = HistogramCore::new(&Buckets::new([1.0, 2.0])?);
        core.observe(0.5);
        assert_eq!(core.count(), 1);
        assert!(core.exemplars.snapshot().is_none());
        Ok(())
    }

    #[test]
    fn observe_in_sampled_span_stores_exemplar() -> Result<(), MetricsError> {
        let core = HistogramCore::new(&Buckets::new([1.0, 2.0])?);
        exemplar::test_span::within(IDS, || {
            core.observe(0.5);
            core.observe(0.7);
            core.observe(5.0);
        });
        core.observe(0.9);
        assert_eq!(core.count(), 4);
        assert_eq!(stored_values(&core), vec![Some(0.7), None, Some(5.0)]);
        let stored = core.exemplars.snapshot().unwrap_or_default();
        let first = stored.first().copied().flatten();
        assert_eq!(
            first.map(|exemplar| (exemplar.trace_id, exemplar.span_id)),
            Some(IDS)
        );
        Ok(())
    }

    #[test]
    fn explicit_exemplar_lands_in_its_bucket() -> Result<(), MetricsError> {
        let histogram = Histogram {
            core: Arc::new(HistogramCore::new(&Buckets::new([1.0, 2.0])?)),
        };
        histogram.observe_with_exemplar(1.5, IDS.0, IDS.1);
        histogram.observe_with_exemplar(f64::NAN, IDS.0, IDS.1);
        histogram.observe_with_exemplar(0.1, [0; 16], IDS.1);
        assert_eq!(histogram.count(), 3);
        let values = stored_values(&histogram.core);
        assert_eq!(values.len(), 3);
        assert_eq!(values.first().copied().flatten(), None, "zero trace id");
        assert_eq!(values.get(1).copied().flatten(), Some(1.5));
        assert!(values.get(2).copied().flatten().is_some_and(f64::is_nan));
        Ok(())
    }

    #[test]
    fn concurrent_observations_add_up() -> Result<(), MetricsError> {
        let histogram = Histogram {
            core: Arc::new(HistogramCore::new(&Buckets::default())),
        };
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let histogram = histogram.clone();
                scope.spawn(move || {
                    for _ in 0..10_000 {
                        histogram.observe(0.25);
                    }
                });
            }
        });
        assert_eq!(histogram.count(), 40_000);
        assert!((histogram.sum() - 10_000.0).abs() < 1e-6);
        Ok(())
    }
}
