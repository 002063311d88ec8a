//! Label-set families with fixed label names, allocation-free lookup and a cardinality cap.
//!
//! A family maps label values to one series. Label names are fixed when the family is
//! registered, so a lookup takes `&[&str; N]` and hashes the values in place. The hot path is
//! a read lock, one hash and `N` string comparisons. It allocates only when a label set is seen
//! for the first time.
//!
//! # Cardinality limit
//!
//! A family keeps at most `max_series_per_metric` label sets
//! ([`MetricsConfig`](crate::config::MetricsConfig), 2000 by default). Once full, a lookup for a
//! new label set returns the overflow series instead, which carries the single label
//! `otel_metric_overflow="true"` (the OpenTelemetry convention), and adds one to
//! `obskit_metric_overflow_total{metric="<family>"}`. Label sets already present keep working.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hashbrown::{Equivalent, HashMap};
use parking_lot::RwLock;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeMetric, LabelSetEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use super::histogram::{Histogram, HistogramCore};
use super::naming::OVERFLOW_LABEL;

/// State of one series inside a family, created on the first lookup of its label set.
pub(crate) trait Series: fmt::Debug + Send + Sync + 'static {
    /// Settings shared by every series of a family, such as histogram buckets.
    type Init: fmt::Debug + Send + Sync + 'static;

    fn create(init: &Self::Init) -> Self;
}

/// A series type that is registered as one metric of one type.
pub(crate) trait SimpleSeries: Series {
    const METRIC_TYPE: MetricType;

    fn encode_series(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result;
}

/// Owned label values, the map key.
#[derive(Debug, PartialEq, Eq)]
struct LabelKey<const N: usize>([Box<str>; N]);

/// Borrowed label values used for lookups; hashes exactly like [`LabelKey`].
struct LabelRef<'a, const N: usize>(&'a [&'a str; N]);

impl<const N: usize> Hash for LabelKey<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in &self.0 {
            value.as_ref().hash(state);
        }
    }
}

impl<const N: usize> Hash for LabelRef<'_, N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in self.0 {
            value.hash(state);
        }
    }
}

impl<const N: usize> Equivalent<LabelKey<N>> for LabelRef<'_, N> {
    #[inline]
    fn equivalent(&self, key: &LabelKey<N>) -> bool {
        self.0
            .iter()
            .zip(key.0.iter())
            .all(|(wanted, stored)| *wanted == stored.as_ref())
    }
}

/// Label names zipped with label values, encoded without allocating.
pub(crate) struct LabelPairs<'a> {
    pub(crate) names: &'a [Box<str>],
    pub(crate) values: &'a [Box<str>],
}

impl EncodeLabelSet for LabelPairs<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        for (name, value) in self.names.iter().zip(self.values) {
            let mut label = encoder.encode_label();
            let mut key = label.encode_label_key()?;
            fmt::Write::write_str(&mut key, name)?;
            let mut value_encoder = key.encode_label_value()?;
            fmt::Write::write_str(&mut value_encoder, value)?;
            value_encoder.finish()?;
        }
        Ok(())
    }
}

/// The label set of the overflow series.
struct OverflowLabels;

impl EncodeLabelSet for OverflowLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        [(OVERFLOW_LABEL, "true")].encode(encoder)
    }
}

/// The map of label sets to series shared by every handle and view of one family.
pub(crate) struct FamilyCore<const N: usize, S: Series> {
    name: Box<str>,
    label_names: [Box<str>; N],
    series: RwLock<HashMap<LabelKey<N>, Arc<S>, foldhash::fast::RandomState>>,
    overflow: Arc<S>,
    overflowed: AtomicBool,
    max_series: usize,
    overflow_counter: Option<Counter>,
    init: S::Init,
}

impl<const N: usize, S: Series> fmt::Debug for FamilyCore<N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("label_names", &self.label_names)
            .field("series", &self.series.read().len())
            .field("max_series", &self.max_series)
            .finish_non_exhaustive()
    }
}

impl<const N: usize, S: Series> FamilyCore<N, S> {
    pub(crate) fn new(
        name: &str,
        label_names: [&str; N],
        max_series: usize,
        overflow_counter: Option<Counter>,
        init: S::Init,
    ) -> Self {
        Self {
            name: name.into(),
            label_names: label_names.map(Box::from),
            series: RwLock::new(HashMap::with_hasher(foldhash::fast::RandomState::default())),
            overflow: Arc::new(S::create(&init)),
            overflowed: AtomicBool::new(false),
            max_series,
            overflow_counter,
            init,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` on the series of `labels`, creating it on the first lookup.
    #[inline]
    pub(crate) fn with<R>(&self, labels: &[&str; N], f: impl FnOnce(&S) -> R) -> R {
        {
            let map = self.series.read();
            if let Some(series) = map.get(&LabelRef(labels)) {
                return f(series);
            }
            if map.len() >= self.max_series {
                drop(map);
                self.count_fold();
                return f(&self.overflow);
            }
        }
        let series = self.insert(labels);
        f(&series)
    }

    /// Returns a shared reference to the series of `labels`, creating it if needed.
    pub(crate) fn get(&self, labels: &[&str; N]) -> Arc<S> {
        if let Some(series) = self.series.read().get(&LabelRef(labels)) {
            return Arc::clone(series);
        }
        self.insert(labels)
    }

    #[cold]
    fn insert(&self, labels: &[&str; N]) -> Arc<S> {
        let mut map = self.series.write();
        if let Some(series) = map.get(&LabelRef(labels)) {
            return Arc::clone(series);
        }
        if map.len() >= self.max_series {
            drop(map);
            self.count_fold();
            return Arc::clone(&self.overflow);
        }
        let series = Arc::new(S::create(&self.init));
        map.insert(LabelKey(labels.map(Box::from)), Arc::clone(&series));
        series
    }

    fn count_fold(&self) {
        self.overflowed.store(true, Ordering::Relaxed);
        if let Some(counter) = &self.overflow_counter {
            counter.inc();
        }
    }

    /// Number of label sets stored, not counting the overflow series.
    pub(crate) fn len(&self) -> usize {
        self.series.read().len()
    }

    /// Writes every series through `part`, which encodes one series of one metric type.
    ///
    /// The read lock is held for the whole family, so a new label set waits for the encode.
    pub(crate) fn encode_with(
        &self,
        encoder: &mut MetricEncoder<'_>,
        part: fn(&S, &mut MetricEncoder<'_>) -> fmt::Result,
    ) -> fmt::Result {
        let map = self.series.read();
        for (key, series) in map.iter() {
            let labels = LabelPairs {
                names: &self.label_names,
                values: &key.0,
            };
            let mut series_encoder = encoder.encode_family(&labels)?;
            part(series, &mut series_encoder)?;
        }
        drop(map);

        if self.overflowed.load(Ordering::Relaxed) {
            let mut series_encoder = encoder.encode_family(&OverflowLabels)?;
            part(&self.overflow, &mut series_encoder)?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.series.read().is_empty() && !self.overflowed.load(Ordering::Relaxed)
    }
}

/// One metric type's view of a family, as registered with prometheus-client.
///
/// A RED family stores requests, errors and durations together and registers three views.
pub(crate) struct FamilyView<const N: usize, S: Series> {
    pub(crate) core: Arc<FamilyCore<N, S>>,
    pub(crate) metric_type: MetricType,
    pub(crate) part: fn(&S, &mut MetricEncoder<'_>) -> fmt::Result,
}

impl<const N: usize, S: Series> fmt::Debug for FamilyView<N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FamilyView")
            .field("core", &self.core)
            .field("metric_type", &self.metric_type.as_str())
            .finish_non_exhaustive()
    }
}

impl<const N: usize, S: Series> EncodeMetric for FamilyView<N, S> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        self.core.encode_with(&mut encoder, self.part)
    }

    fn metric_type(&self) -> MetricType {
        self.metric_type
    }

    fn is_empty(&self) -> bool {
        self.core.is_empty()
    }
}

/// Atomic state of a counter series.
#[derive(Debug, Default)]
pub(crate) struct CounterCore(AtomicU64);

impl CounterCore {
    #[inline]
    pub(crate) fn inc_by(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn encode(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        encoder.encode_counter::<NoLabelSet, u64, u64>(&self.get(), None)
    }
}

impl Series for CounterCore {
    type Init = ();

    fn create((): &()) -> Self {
        Self::default()
    }
}

/// Atomic state of a gauge series: an `f64` stored as bits.
#[derive(Debug)]
pub(crate) struct GaugeCore(AtomicU64);

impl Default for GaugeCore {
    fn default() -> Self {
        Self(AtomicU64::new(0.0_f64.to_bits()))
    }
}

impl GaugeCore {
    #[inline]
    pub(crate) fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add(&self, delta: f64) {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + delta).to_bits();
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub(crate) fn encode(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        encoder.encode_gauge(&self.get())
    }
}

impl Series for GaugeCore {
    type Init = ();

    fn create((): &()) -> Self {
        Self::default()
    }
}

impl Series for HistogramCore {
    type Init = super::Buckets;

    fn create(buckets: &super::Buckets) -> Self {
        Self::new(buckets)
    }
}

impl SimpleSeries for CounterCore {
    const METRIC_TYPE: MetricType = MetricType::Counter;

    fn encode_series(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        self.encode(encoder)
    }
}

impl SimpleSeries for GaugeCore {
    const METRIC_TYPE: MetricType = MetricType::Gauge;

    fn encode_series(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        self.encode(encoder)
    }
}

impl SimpleSeries for HistogramCore {
    const METRIC_TYPE: MetricType = MetricType::Histogram;

    fn encode_series(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        // NOTE: exemplars are not recorded yet; `HistogramCore::encode` already takes them.
        self.encode::<NoLabelSet>(encoder, None)
    }
}

/// A cloneable handle to one counter series.
///
/// # Example
///
/// ```
/// let registry = obskit::metrics::Registry::default();
/// let jobs = registry.counter("jobs_processed", "Jobs processed since start.")?;
/// jobs.inc();
/// assert_eq!(jobs.get(), 1);
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Counter {
    pub(crate) core: Arc<CounterCore>,
}

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.core.inc_by(1);
    }

    /// Adds `value`.
    #[inline]
    pub fn inc_by(&self, value: u64) {
        self.core.inc_by(value);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.core.get()
    }
}

/// A cloneable handle to one gauge series holding an `f64`.
#[derive(Debug, Clone)]
pub struct Gauge {
    pub(crate) core: Arc<GaugeCore>,
}

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.core.set(value);
    }

    /// Adds `delta`, which may be negative.
    #[inline]
    pub fn add(&self, delta: f64) {
        self.core.add(delta);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.core.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.core.add(-1.0);
    }

    /// Current value.
    pub fn get(&self) -> f64 {
        self.core.get()
    }
}

macro_rules! family_common {
    ($family:ident, $series:ty) => {
        impl<const N: usize> Clone for $family<N> {
            fn clone(&self) -> Self {
                Self {
                    core: Arc::clone(&self.core),
                }
            }
        }

        impl<const N: usize> fmt::Debug for $family<N> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.core.fmt(f)
            }
        }

        impl<const N: usize> $family<N> {
            /// Name the family was registered under.
            pub fn name(&self) -> &str {
                self.core.name()
            }

            /// Number of label sets stored, not counting the overflow series.
            pub fn series_count(&self) -> usize {
                self.core.len()
            }
        }

        /// Lets the family be registered with a plain prometheus-client registry too.
        impl<const N: usize> EncodeMetric for $family<N> {
            fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
                self.core
                    .encode_with(&mut encoder, <$series as SimpleSeries>::encode_series)
            }

            fn metric_type(&self) -> MetricType {
                <$series as SimpleSeries>::METRIC_TYPE
            }

            fn is_empty(&self) -> bool {
                self.core.is_empty()
            }
        }
    };
}

/// Counters keyed by `N` label values.
///
/// # Example
///
/// ```
/// let registry = obskit::metrics::Registry::default();
/// let orders = registry.counter_family("shop_orders", "Orders placed.", ["channel", "country"])?;
/// orders.inc(&["web", "DE"]);
///
/// let mobile_fr = orders.get(&["mobile", "FR"]);
/// mobile_fr.inc_by(2);
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
pub struct CounterFamily<const N: usize> {
    pub(crate) core: Arc<FamilyCore<N, CounterCore>>,
}

family_common!(CounterFamily, CounterCore);

impl<const N: usize> CounterFamily<N> {
    /// Adds one to the series of `labels`.
    #[inline]
    pub fn inc(&self, labels: &[&str; N]) {
        self.core.with(labels, |series| series.inc_by(1));
    }

    /// Adds `value` to the series of `labels`.
    #[inline]
    pub fn inc_by(&self, labels: &[&str; N], value: u64) {
        self.core.with(labels, |series| series.inc_by(value));
    }

    /// Returns a handle bound to `labels`, or to the overflow series if the family is full.
    pub fn get(&self, labels: &[&str; N]) -> Counter {
        Counter {
            core: self.core.get(labels),
        }
    }
}

/// Gauges keyed by `N` label values.
pub struct GaugeFamily<const N: usize> {
    pub(crate) core: Arc<FamilyCore<N, GaugeCore>>,
}

family_common!(GaugeFamily, GaugeCore);

impl<const N: usize> GaugeFamily<N> {
    /// Sets the series of `labels` to `value`.
    #[inline]
    pub fn set(&self, labels: &[&str; N], value: f64) {
        self.core.with(labels, |series| series.set(value));
    }

    /// Adds `delta`, which may be negative, to the series of `labels`.
    #[inline]
    pub fn add(&self, labels: &[&str; N], delta: f64) {
        self.core.with(labels, |series| series.add(delta));
    }

    /// Returns a handle bound to `labels`, or to the overflow series if the family is full.
    pub fn get(&self, labels: &[&str; N]) -> Gauge {
        Gauge {
            core: self.core.get(labels),
        }
    }

    /// Tells whether `gauge` is this family's overflow series, which a caller must not cache
    /// in place of a lookup because each lookup that folds is counted.
    pub(crate) fn is_overflow(&self, gauge: &Gauge) -> bool {
        Arc::ptr_eq(&gauge.core, &self.core.overflow)
    }
}

/// Histograms keyed by `N` label values, all with the same buckets.
///
/// # Example
///
/// ```
/// use obskit::metrics::Buckets;
///
/// let registry = obskit::metrics::Registry::default();
/// let latency = registry.histogram_family(
///     "db_query_duration_seconds",
///     "Database query duration.",
///     ["operation"],
///     Buckets::default(),
/// )?;
/// latency.observe(&["select"], 0.004);
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
pub struct HistogramFamily<const N: usize> {
    pub(crate) core: Arc<FamilyCore<N, HistogramCore>>,
}

family_common!(HistogramFamily, HistogramCore);

impl<const N: usize> HistogramFamily<N> {
    /// Records `value` in the series of `labels`.
    #[inline]
    pub fn observe(&self, labels: &[&str; N], value: f64) {
        self.core.with(labels, |series| series.observe(value));
    }

    /// Returns a handle bound to `labels`, or to the overflow series if the family is full.
    pub fn get(&self, labels: &[&str; N]) -> Histogram {
        Histogram {
            core: self.core.get(labels),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn family(max_series: usize) -> FamilyCore<2, CounterCore> {
        FamilyCore::new("requests", ["method", "route"], max_series, None, ())
    }

    #[test]
    fn key_and_ref_hash_alike() {
        let state = foldhash::fast::RandomState::default();
        let key = LabelKey(["GET".into(), "/".into()]);
        let labels = ["GET", "/"];
        assert_eq!(state.hash_one(&key), state.hash_one(LabelRef(&labels)));
        assert!(LabelRef(&labels).equivalent(&key));
        assert!(!LabelRef(&["GET", "/x"]).equivalent(&key));
    }

    #[test]
    fn lookup_reuses_series() {
        let core = family(10);
        core.with(&["GET", "/"], |series| series.inc_by(1));
        core.with(&["GET", "/"], |series| series.inc_by(2));
        assert_eq!(core.len(), 1);
        assert_eq!(core.get(&["GET", "/"]).get(), 3);
    }

    #[test]
    fn concurrent_inserts_respect_cap() {
        let core = family(100);
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let core = &core;
                scope.spawn(move || {
                    for index in 0..200 {
                        let route = format!("/{thread}/{index}");
                        core.with(&["GET", &route], |series| series.inc_by(1));
                    }
                });
            }
        });

        let stored: u64 = core.series.read().values().map(|series| series.get()).sum();
        assert_eq!(core.len(), 100);
        assert_eq!(stored, 100);
        assert_eq!(core.overflow.get(), 700);
    }

    #[test]
    fn family_encodes_in_plain_registry() -> Result<(), fmt::Error> {
        let family = CounterFamily {
            core: Arc::new(FamilyCore::new("jobs", ["queue"], 10, None, ())),
        };
        family.inc(&["mail"]);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("jobs", "Jobs", family);

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        assert!(text.contains("jobs_total{queue=\"mail\"} 1\n"), "{text}");
        Ok(())
    }

    #[test]
    fn full_family_folds_into_overflow() {
        let core = family(2);
        for route in ["/a", "/b", "/c", "/d"] {
            core.with(&["GET", route], |series| series.inc_by(1));
        }
        assert_eq!(core.len(), 2);
        assert_eq!(core.overflow.get(), 2);
        assert!(core.overflowed.load(Ordering::Relaxed));
        assert_eq!(core.get(&["GET", "/a"]).get(), 1);
    }
}
