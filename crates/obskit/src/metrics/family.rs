//! Label-set families with fixed label names, lock-free lookup and a cardinality cap.
//!
//! A family maps label values to one series. Label names are fixed when the family is
//! registered, so a lookup takes `&[&str; N]` and hashes the values in place. The hot path takes
//! no lock and performs no atomic read-modify-write: one hash, a probe of an open-addressing
//! table whose slots are written once, and `N` string comparisons. It allocates only when a
//! label set is seen for the first time.
//!
//! # Cardinality limit
//!
//! A family keeps at most `max_series_per_metric` label sets
//! ([`MetricsConfig`](crate::config::MetricsConfig), 2000 by default). Once full, a lookup for a
//! new label set returns the overflow series instead, which carries the single label
//! `otel_metric_overflow="true"` (the OpenTelemetry convention), and adds one to
//! `obskit_metric_overflow_total{metric="<family>"}`. Label sets already present keep working.
//!
//! # Memory
//!
//! Label sets are never removed. The lookup table doubles when it is half full and the smaller
//! tables it replaced stay allocated, because a concurrent lookup may still be reading them. A
//! second, append-only list keeps the creation order for encoding. A family with `n` label sets
//! therefore uses at most `max(8n, 16)` table slots of 24 bytes and `2n + 16` order slots of
//! 16 bytes (on 64-bit targets) besides the entries themselves, and neither grows past the
//! cardinality limit.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeMetric, LabelSetEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use super::exemplar::{self, BucketExemplars};
use super::histogram::{Histogram, HistogramCore};
use super::naming::OVERFLOW_LABEL;

/// State of one series inside a family, created on the first lookup of its label set.
pub(crate) trait Series: fmt::Debug + Send + Sync + 'static {
    /// Settings shared by every series of a family, such as histogram buckets.
    type Init: fmt::Debug + Send + Sync + 'static;

    fn create(init: &Self::Init) -> Self;

    /// Returns the exemplars of the series' histogram, if it has one.
    fn exemplars(&self) -> Option<&BucketExemplars> {
        None
    }
}

/// A series type that is registered as one metric of one type.
pub(crate) trait SimpleSeries: Series {
    const METRIC_TYPE: MetricType;

    fn encode_series(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result;
}

/// One stored label set with its hash and series.
#[derive(Debug)]
struct Entry<const N: usize, S> {
    hash: u64,
    values: [Box<str>; N],
    series: Arc<S>,
}

impl<const N: usize, S> Entry<N, S> {
    #[inline]
    fn matches(&self, values: &[&str; N]) -> bool {
        self.values
            .iter()
            .zip(values)
            .all(|(stored, wanted)| stored.as_bytes() == wanted.as_bytes())
    }
}

/// Capacity of the first table of a family. Each later table doubles it.
const FIRST_CAPACITY: usize = 16;

/// A table slot: the entry and a copy of its hash, so a probe skips other entries without
/// following their pointer.
type Slot<const N: usize, S> = OnceLock<(u64, Arc<Entry<N, S>>)>;

/// Open-addressing table with linear probing whose slots are written at most once.
///
/// Entries are never removed. [`FamilyCore`] sizes its last table so that it stays at most half
/// full up to the cardinality limit, so every probe sequence ends at an empty slot.
#[derive(Debug)]
struct Table<const N: usize, S> {
    slots: Box<[Slot<N, S>]>,
}

impl<const N: usize, S> Table<N, S> {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            slots: (0..capacity).map(|_| OnceLock::new()).collect(),
        }
    }

    #[inline]
    fn find(&self, hash: u64, values: &[&str; N]) -> Option<&Arc<Entry<N, S>>> {
        let mask = self.slots.len().wrapping_sub(1);
        // Truncating the hash keeps its low bits, which are the ones the mask uses.
        let mut index = hash as usize;
        for _ in 0..self.slots.len() {
            let (stored_hash, entry) = self.slots.get(index & mask)?.get()?;
            if *stored_hash == hash && entry.matches(values) {
                return Some(entry);
            }
            index = index.wrapping_add(1);
        }
        None
    }

    /// Stores `entry` in the first empty slot of its probe sequence. Only one thread may insert
    /// at a time, and the caller has checked that the label set is absent.
    fn insert(&self, entry: Arc<Entry<N, S>>) -> Result<(), Arc<Entry<N, S>>> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut index = entry.hash as usize;
        let mut pair = (entry.hash, entry);
        for _ in 0..self.slots.len() {
            if let Some(slot) = self.slots.get(index & mask) {
                match slot.set(pair) {
                    Ok(()) => return Ok(()),
                    Err(rejected) => pair = rejected,
                }
            }
            index = index.wrapping_add(1);
        }
        Err(pair.1)
    }
}

/// Entries in insertion order, in chunks that double in size and are written once.
///
/// Chunk `k` has `FIRST_CAPACITY << k` slots and starts at position
/// `FIRST_CAPACITY * (2^k - 1)`, so appending never moves an entry and reading needs no lock.
#[derive(Debug)]
struct InsertionOrder<const N: usize, S> {
    chunks: Box<[OnceLock<Chunk<N, S>>]>,
}

/// One chunk of [`InsertionOrder`], filled from its first slot on.
type Chunk<const N: usize, S> = Box<[OnceLock<Arc<Entry<N, S>>>]>;

impl<const N: usize, S> InsertionOrder<N, S> {
    fn new(chunks: usize) -> Self {
        Self {
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Stores `entry` at `position`, which must be the number of entries stored before.
    fn push(&self, position: usize, entry: Arc<Entry<N, S>>) -> Result<(), Arc<Entry<N, S>>> {
        let group = position / FIRST_CAPACITY + 1;
        let chunk = group.ilog2() as usize;
        let Some(slots) = self.chunks.get(chunk) else {
            return Err(entry);
        };
        let start = FIRST_CAPACITY * ((1 << chunk) - 1);
        let slots = slots.get_or_init(|| {
            (0..FIRST_CAPACITY << chunk)
                .map(|_| OnceLock::new())
                .collect()
        });
        match slots.get(position - start) {
            Some(slot) => slot.set(entry),
            None => Err(entry),
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry<N, S>> {
        self.chunks
            .iter()
            .map_while(OnceLock::get)
            .flat_map(|slots| slots.iter().map_while(OnceLock::get))
            .map(|entry| &**entry)
    }
}

/// Label names zipped with label values, encoded without allocating.
pub(crate) struct LabelPairs<'a> {
    pub(crate) names: &'a [Box<str>],
    pub(crate) values: &'a [Box<str>],
    /// Exemplar marker of the series, written as the last label of the first line only; see
    /// [`exemplar`].
    pub(crate) marker: Cell<Option<usize>>,
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
        if let Some(marker) = self.marker.take() {
            exemplar::encode_marker(encoder, marker)?;
        }
        Ok(())
    }
}

/// The label set of the overflow series.
struct OverflowLabels {
    marker: Cell<Option<usize>>,
}

impl EncodeLabelSet for OverflowLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        [(OVERFLOW_LABEL, "true")].encode(encoder)?;
        if let Some(marker) = self.marker.take() {
            exemplar::encode_marker(encoder, marker)?;
        }
        Ok(())
    }
}

/// Returns the exemplar marker of `series` when it is encoded as `metric_type`.
fn exemplar_marker<S: Series>(series: &S, metric_type: MetricType) -> Option<usize> {
    if metric_type != MetricType::Histogram {
        return None;
    }
    exemplar::mark(series.exemplars()?)
}

/// The map of label sets to series shared by every handle and view of one family.
///
/// Lookups read `tables[current]` without a lock. Inserts take `insert_lock`, so they are
/// serialized, and a full table is copied into the next, twice as large, before `current`
/// moves to it. The table at `current` therefore always contains every entry. Encoding reads
/// `order` instead, so series come out in the order they were created.
pub(crate) struct FamilyCore<const N: usize, S: Series> {
    name: Box<str>,
    label_names: [Box<str>; N],
    hasher: foldhash::fast::RandomState,
    tables: Box<[OnceLock<Table<N, S>>]>,
    current: AtomicUsize,
    order: InsertionOrder<N, S>,
    /// Number of label sets stored; it only grows, and only under `insert_lock`.
    len: AtomicUsize,
    insert_lock: Mutex<()>,
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
            .field("series", &self.len())
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
        // Enough tables that the last one stays at most half full with `max_series` entries. The
        // shift limit keeps the capacity computation from overflowing for `usize::MAX`.
        let needed = max_series.saturating_mul(2);
        let mut levels = 1;
        while levels < usize::BITS as usize - 5 && (FIRST_CAPACITY << (levels - 1)) < needed {
            levels += 1;
        }
        let tables: Box<[OnceLock<Table<N, S>>]> = (0..levels).map(|_| OnceLock::new()).collect();
        if let Some(first) = tables.first() {
            let _ = first.set(Table::with_capacity(FIRST_CAPACITY));
        }
        Self {
            name: name.into(),
            label_names: label_names.map(Box::from),
            hasher: foldhash::fast::RandomState::default(),
            tables,
            current: AtomicUsize::new(0),
            order: InsertionOrder::new(levels),
            len: AtomicUsize::new(0),
            insert_lock: Mutex::new(()),
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

    #[inline]
    fn hash(&self, values: &[&str; N]) -> u64 {
        // `FoldHasher::write` mixes the length into the state, so no separator is needed
        // between values.
        let mut hasher = self.hasher.build_hasher();
        for value in values {
            hasher.write(value.as_bytes());
        }
        hasher.finish()
    }

    /// Returns the newest table, which contains every entry stored so far.
    #[inline]
    fn table(&self) -> Option<&Table<N, S>> {
        self.tables.get(self.current.load(Ordering::Acquire))?.get()
    }

    #[inline]
    fn find(&self, hash: u64, values: &[&str; N]) -> Option<&Arc<S>> {
        self.table()?.find(hash, values).map(|entry| &entry.series)
    }

    /// Runs `f` on the series of `labels`, creating it on the first lookup.
    #[inline]
    pub(crate) fn with<R>(&self, labels: &[&str; N], f: impl FnOnce(&S) -> R) -> R {
        self.resolve(labels, |series| f(series))
    }

    /// Returns a shared reference to the series of `labels`, creating it if needed.
    pub(crate) fn get(&self, labels: &[&str; N]) -> Arc<S> {
        self.resolve(labels, Arc::clone)
    }

    #[inline]
    fn resolve<R>(&self, labels: &[&str; N], f: impl FnOnce(&Arc<S>) -> R) -> R {
        let hash = self.hash(labels);
        if let Some(series) = self.find(hash, labels) {
            return f(series);
        }
        self.resolve_missing(hash, labels, f)
    }

    /// Handles a label set the lock-free probe did not find: it is new, or it was inserted by
    /// another thread after the probe.
    #[cold]
    fn resolve_missing<R>(&self, hash: u64, labels: &[&str; N], f: impl FnOnce(&Arc<S>) -> R) -> R {
        // Once the family is full nothing is inserted any more, and the acquire load makes
        // every stored entry visible, so a second probe settles the lookup without the lock.
        if self.len.load(Ordering::Acquire) >= self.max_series {
            if let Some(series) = self.find(hash, labels) {
                return f(series);
            }
            self.count_fold();
            return f(&self.overflow);
        }
        f(&self.insert(hash, labels))
    }

    fn insert(&self, hash: u64, labels: &[&str; N]) -> Arc<S> {
        let _guard = self.insert_lock.lock();
        if let Some(series) = self.find(hash, labels) {
            return Arc::clone(series);
        }
        let len = self.len.load(Ordering::Relaxed);
        if len >= self.max_series {
            self.count_fold();
            return Arc::clone(&self.overflow);
        }
        let series = Arc::new(S::create(&self.init));
        let entry = Arc::new(Entry {
            hash,
            values: labels.map(Box::from),
            series: Arc::clone(&series),
        });
        // The entry joins the encoding order first. If the table insert then fails, the series
        // is still encoded and its lookups are folded and counted, so nothing goes unreported.
        let stored = self
            .order
            .push(len, Arc::clone(&entry))
            .and_then(|()| self.store(entry, len + 1));
        match stored {
            Ok(()) => {
                self.len.store(len + 1, Ordering::Release);
                series
            }
            Err(_) => {
                // NOTE: unreachable while the last table stays at most half full with
                // `max_series` entries and the order chunks fit `max_series` positions.
                self.count_fold();
                Arc::clone(&self.overflow)
            }
        }
    }

    /// Adds `entry`, first moving to a larger table if `new_len` entries would fill the current
    /// one past half. The caller must have locked `insert_lock`.
    fn store(&self, entry: Arc<Entry<N, S>>, new_len: usize) -> Result<(), Arc<Entry<N, S>>> {
        let current = self.current.load(Ordering::Relaxed);
        let Some(table) = self.tables.get(current).and_then(OnceLock::get) else {
            return Err(entry);
        };
        if new_len.saturating_mul(2) <= table.slots.len() {
            return table.insert(entry);
        }
        let Some(next) = self.tables.get(current + 1) else {
            return table.insert(entry);
        };
        let larger = next.get_or_init(|| {
            let larger = Table::with_capacity(table.slots.len().saturating_mul(2));
            for (_, old) in table.slots.iter().filter_map(OnceLock::get) {
                // Cannot fail: the larger table has twice the slots and receives at most half
                // of them.
                let _ = larger.insert(Arc::clone(old));
            }
            larger
        });
        let stored = larger.insert(entry);
        self.current.store(current + 1, Ordering::Release);
        stored
    }

    fn count_fold(&self) {
        self.overflowed.store(true, Ordering::Relaxed);
        if let Some(counter) = &self.overflow_counter {
            counter.inc();
        }
    }

    /// Number of label sets stored, not counting the overflow series.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Entries in the order they were created.
    fn entries(&self) -> impl Iterator<Item = &Entry<N, S>> {
        self.order.entries()
    }

    /// Writes every series through `part`, which encodes one series as `metric_type`.
    ///
    /// It takes no lock, so a label set inserted during the encode may or may not appear in it.
    pub(crate) fn encode_with(
        &self,
        encoder: &mut MetricEncoder<'_>,
        metric_type: MetricType,
        part: fn(&S, &mut MetricEncoder<'_>) -> fmt::Result,
    ) -> fmt::Result {
        for entry in self.entries() {
            let labels = LabelPairs {
                names: &self.label_names,
                values: &entry.values,
                marker: Cell::new(exemplar_marker(&*entry.series, metric_type)),
            };
            let mut series_encoder = encoder.encode_family(&labels)?;
            part(&entry.series, &mut series_encoder)?;
        }

        if self.overflowed.load(Ordering::Relaxed) {
            let labels = OverflowLabels {
                marker: Cell::new(exemplar_marker(&*self.overflow, metric_type)),
            };
            let mut series_encoder = encoder.encode_family(&labels)?;
            part(&self.overflow, &mut series_encoder)?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0 && !self.overflowed.load(Ordering::Relaxed)
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
        self.core
            .encode_with(&mut encoder, self.metric_type, self.part)
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

    fn exemplars(&self) -> Option<&BucketExemplars> {
        Some(HistogramCore::exemplars(self))
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
        self.encode(encoder)
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

        /// Lets the family be registered with a plain prometheus-client registry too. Such a
        /// registry writes no exemplars, because only [`Registry::encode`](super::Registry::encode)
        /// adds them.
        impl<const N: usize> EncodeMetric for $family<N> {
            fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
                self.core.encode_with(
                    &mut encoder,
                    <$series as SimpleSeries>::METRIC_TYPE,
                    <$series as SimpleSeries>::encode_series,
                )
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
    /// Records `value` in the series of `labels`, with the current span as exemplar when its
    /// trace is sampled (see [`Histogram::observe`]).
    #[inline]
    pub fn observe(&self, labels: &[&str; N], value: f64) {
        self.core.with(labels, |series| series.observe(value));
    }

    /// Records `value` in the series of `labels` with an exemplar labelled `trace_id` and
    /// `span_id`, as [`Histogram::observe_with_exemplar`] does.
    #[inline]
    pub fn observe_with_exemplar(
        &self,
        labels: &[&str; N],
        value: f64,
        trace_id: [u8; 16],
        span_id: [u8; 8],
    ) {
        self.observe_explicit(labels, value, Some((trace_id, span_id)));
    }

    /// Records `value` with the exemplar `ids` when given, without looking up the current span,
    /// for callers that know the span of the observation.
    #[inline]
    pub(crate) fn observe_explicit(
        &self,
        labels: &[&str; N],
        value: f64,
        ids: Option<super::exemplar::SpanIds>,
    ) {
        self.core
            .with(labels, |series| series.observe_explicit(value, ids));
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
    use super::*;

    fn family(max_series: usize) -> FamilyCore<2, CounterCore> {
        FamilyCore::new("requests", ["method", "route"], max_series, None, ())
    }

    fn stored_total(core: &FamilyCore<2, CounterCore>) -> u64 {
        core.entries().map(|entry| entry.series.get()).sum()
    }

    #[test]
    fn hash_separates_value_boundaries() {
        let core = family(10);
        assert_eq!(core.hash(&["GET", "/"]), core.hash(&["GET", "/"]));
        assert_ne!(core.hash(&["ab", "c"]), core.hash(&["a", "bc"]));
        assert_ne!(core.hash(&["", "x"]), core.hash(&["x", ""]));
    }

    #[test]
    fn lookup_reuses_series() {
        let core = family(10);
        core.with(&["GET", "/"], |series| series.inc_by(1));
        core.with(&["GET", "/"], |series| series.inc_by(2));
        core.with(&["GET", "/x"], |series| series.inc_by(5));
        assert_eq!(core.len(), 2);
        assert_eq!(core.get(&["GET", "/"]).get(), 3);
        assert_eq!(core.get(&["GET", "/x"]).get(), 5);
    }

    #[test]
    fn growth_keeps_every_series() {
        let core = family(5000);
        for index in 0..3000_u64 {
            core.with(&["GET", &format!("/{index}")], |series| {
                series.inc_by(index);
            });
        }
        assert_eq!(core.len(), 3000);
        assert_eq!(core.entries().count(), 3000);
        for index in 0..3000_u64 {
            assert_eq!(core.get(&["GET", &format!("/{index}")]).get(), index);
        }
        let table = core.table().map_or(0, |table| table.slots.len());
        assert_eq!(
            table, 8192,
            "3000 entries keep a table of 8192 slots at most half full"
        );
        assert!(!core.overflowed.load(Ordering::Relaxed));
    }

    #[test]
    fn slots_stay_within_memory_bound() {
        let core = family(usize::MAX);
        for count in 1..=5000_usize {
            core.with(&["GET", &format!("/{count}")], |series| series.inc_by(1));
            let table_slots: usize = core
                .tables
                .iter()
                .filter_map(OnceLock::get)
                .map(|table| table.slots.len())
                .sum();
            let order_slots: usize = core
                .order
                .chunks
                .iter()
                .filter_map(OnceLock::get)
                .map(|chunk| chunk.len())
                .sum();
            assert!(
                table_slots <= (8 * count).max(FIRST_CAPACITY),
                "{count} entries use {table_slots} table slots"
            );
            assert!(
                order_slots <= 2 * count + FIRST_CAPACITY,
                "{count} entries use {order_slots} order slots"
            );
        }
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(size_of::<Slot<2, CounterCore>>(), 24);
            assert_eq!(size_of::<OnceLock<Arc<Entry<2, CounterCore>>>>(), 16);
        }
    }

    #[test]
    fn entries_keep_creation_order() {
        let core = family(1000);
        let routes: Vec<String> = (0..700).rev().map(|index| format!("/{index}")).collect();
        for route in &routes {
            core.with(&["GET", route], |series| series.inc_by(1));
        }
        let encoded: Vec<&str> = core
            .entries()
            .filter_map(|entry| entry.values.get(1).map(AsRef::as_ref))
            .collect();
        assert_eq!(encoded, routes);
    }

    #[test]
    fn largest_table_fits_the_limit() {
        for max_series in [1, 8, 9, 2000, 10_000] {
            let core = family(max_series);
            let last = FIRST_CAPACITY << (core.tables.len() - 1);
            assert!(last >= 2 * max_series, "{max_series}: last table {last}");
            assert!(
                last / 2 < 2 * max_series.max(FIRST_CAPACITY / 2),
                "{max_series}: {last}"
            );
        }
        assert!(family(usize::MAX).tables.len() < usize::BITS as usize);
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

        assert_eq!(core.len(), 100);
        assert_eq!(core.entries().count(), 100);
        assert_eq!(stored_total(&core), 100);
        assert_eq!(core.overflow.get(), 700);
    }

    #[test]
    fn concurrent_same_labels_are_never_folded_once_stored() {
        let overflow_counter = Counter {
            core: Arc::new(CounterCore::default()),
        };
        let core: FamilyCore<2, CounterCore> = FamilyCore::new(
            "requests",
            ["method", "route"],
            50,
            Some(overflow_counter.clone()),
            (),
        );
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let core = &core;
                scope.spawn(move || {
                    for index in 0..100 {
                        let route = format!("/{index}");
                        core.with(&["GET", &route], |series| series.inc_by(1));
                    }
                });
            }
        });

        assert_eq!(core.len(), 50);
        for entry in core.entries() {
            assert_eq!(entry.series.get(), 4, "{:?}", entry.values);
        }
        assert_eq!(core.overflow.get(), 200);
        assert_eq!(overflow_counter.get(), 200);
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
        assert_eq!(core.overflow.get(), 2, "a stored label set is not folded");
    }
}
