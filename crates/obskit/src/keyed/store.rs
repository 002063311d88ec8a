//! A governor state store over a [`BoundedTable`]: bounded key memory for keyed limiters.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::nanos::Nanos;
use governor::state::StateStore;
use parking_lot::Mutex;

use super::{BoundedTable, CountEvictions};

/// A governor state store that keeps at most a fixed number of keys.
///
/// governor's own keyed stores grow with every new key until `retain_recent` runs, and
/// `retain_recent` keeps every key seen within the last burst period, so a flood of new keys
/// would still grow them. This store stays within its capacity:
///
/// - When a new key arrives at a full store, an idle key among the oldest is dropped, or else
///   the oldest key is evicted and counted (see [`BoundedTable`]).
/// - When a new key arrives and the cleanup interval has passed since the last cleanup, every
///   idle key is dropped.
///
/// A key is idle when governor's `retain_recent` would drop it: its theoretical arrival time
/// (TAT) lies at least one emission interval in the past, so its state equals a fresh one.
///
/// The stored value is the TAT in nanoseconds since `start`, as governor's own stores keep it.
pub(crate) struct BoundedStateStore<K, C: Clock> {
    inner: Arc<Inner<K, C>>,
}

impl<K, C: Clock> Clone for BoundedStateStore<K, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<K, C: Clock> {
    state: Mutex<State<K>>,
    clock: C,
    start: C::Instant,
    emission_interval: Nanos,
    cleanup_interval: Nanos,
}

struct State<K> {
    table: BoundedTable<K, u64>,
    next_cleanup: Nanos,
}

impl<K: Hash + Eq + Clone, C: Clock> BoundedStateStore<K, C> {
    /// Creates a store for at most `max_keys` keys.
    ///
    /// `start` must be read from `clock` before governor's limiter reads its own start, so the
    /// store's idea of "now" is never behind the limiter's.
    pub(crate) fn new(
        max_keys: usize,
        emission_interval: Duration,
        cleanup_interval: Duration,
        evictions: impl CountEvictions + 'static,
        clock: C,
    ) -> Self {
        let start = clock.now();
        let cleanup_interval = Nanos::from(cleanup_interval);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    table: BoundedTable::new(max_keys, evictions),
                    next_cleanup: cleanup_interval,
                }),
                clock,
                start,
                emission_interval: Nanos::from(emission_interval),
                cleanup_interval,
            }),
        }
    }

    /// Time since the store's start.
    pub(crate) fn elapsed(&self) -> Nanos {
        self.inner.clock.now().duration_since(self.inner.start)
    }

    /// Returns the TAT of `key` in nanoseconds since the store's start, if it is tracked.
    // Only the resilience rate limiters read these; the admin table does not.
    #[cfg_attr(not(feature = "resilience"), allow(dead_code))]
    pub(crate) fn tat(&self, key: &K) -> Option<Nanos> {
        let state = self.inner.state.lock();
        state.table.get(key).map(|tat| Nanos::from(*tat))
    }

    /// Drops every idle key, as governor's `retain_recent` does, and returns how many.
    // Only the resilience rate limiters read these; the admin table does not.
    #[cfg_attr(not(feature = "resilience"), allow(dead_code))]
    pub(crate) fn retain_recent(&self) -> usize {
        let now = self.elapsed();
        let mut state = self.inner.state.lock();
        state.next_cleanup = now + self.inner.cleanup_interval;
        let drop_below = self.drop_below(now);
        state.table.retain_active(|tat| *tat <= drop_below)
    }

    // Only the resilience rate limiters read these; the admin table does not.
    #[cfg_attr(not(feature = "resilience"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.inner.state.lock().table.len()
    }

    fn drop_below(&self, now: Nanos) -> u64 {
        now.as_u64()
            .saturating_sub(self.inner.emission_interval.as_u64())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> StateStore for BoundedStateStore<K, C> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &Self::Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut state = self.inner.state.lock();
        let hash = state.table.hash(key);
        if let Some(tat) = state.table.get_mut_hashed(hash, key) {
            let (outcome, next) = f(Some(Nanos::from(*tat)))?;
            *tat = next.as_u64();
            return Ok(outcome);
        }

        let (outcome, next) = f(None)?;
        let now = self.elapsed();
        let drop_below = self.drop_below(now);
        if now >= state.next_cleanup {
            state.next_cleanup = now + self.inner.cleanup_interval;
            state.table.retain_active(|tat| *tat <= drop_below);
        }
        state
            .table
            .insert_hashed(hash, key.clone(), next.as_u64(), |tat| *tat <= drop_below);
        Ok(outcome)
    }
}
