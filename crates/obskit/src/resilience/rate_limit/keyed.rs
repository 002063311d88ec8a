//! The keyed rate limiter: one quota per key, with a bounded number of keys.

use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;

use super::metrics::LimiterMetrics;
use super::snapshot::RateLimiterSnapshot;
use super::{InsufficientCapacity, Quota, RateLimitError, RateLimitStatus};
use crate::keyed::BoundedStateStore;
use crate::resilience::Error;

/// A rate limiter with one quota per key (client address, API key, tenant, …), backed by
/// governor's GCRA over a store that tracks at most `max_keys` keys.
///
/// # Key memory
///
/// - A key is idle when governor's `retain_recent` would drop it: its theoretical arrival time
///   lies at least one emission interval in the past, so its state equals a fresh one.
/// - When a new key arrives and `cleanup_interval` has passed since the last cleanup, every
///   idle key is dropped. [`retain_recent`](Self::retain_recent) does the same on demand.
/// - When a new key arrives while `max_keys` keys are tracked, the store drops an idle key
///   among the 8 oldest; if none is idle, it evicts the oldest key and counts it in
///   `obskit_rate_limit_evictions_total{name}`. That client's next request starts from a
///   fresh burst.
///
/// # Example
///
/// ```
/// use std::net::IpAddr;
/// use obskit::metrics::Registry;
/// use obskit::resilience::rate_limit::{ClientKey, KeyedRateLimiter, Quota, RateLimiter};
///
/// let registry = Registry::default();
/// let limiter: KeyedRateLimiter<ClientKey> = RateLimiter::builder("login", Quota::per_minute(5)?)
///     .registry(&registry)
///     .max_keys(10_000)
///     .build_keyed()?;
///
/// let client = ClientKey::from_ip("2001:db8::1".parse::<IpAddr>()?);
/// for _ in 0..5 {
///     assert!(limiter.check_key(&client).is_ok());
/// }
/// assert!(limiter.check_key(&client).is_err());
/// assert!(limiter.check_key(&ClientKey::from_ip("192.0.2.7".parse()?)).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyedRateLimiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    name: Arc<str>,
    quota: Quota,
    limiter: governor::RateLimiter<K, BoundedStateStore<K, C>, C, NoOpMiddleware<C::Instant>>,
    store: BoundedStateStore<K, C>,
    max_keys: usize,
    metrics: LimiterMetrics,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> KeyedRateLimiter<K, C> {
    pub(crate) fn from_parts(
        name: Arc<str>,
        quota: Quota,
        settings: KeyedSettings,
        clock: C,
        metrics: LimiterMetrics,
    ) -> Result<Self, RateLimitError> {
        let store = BoundedStateStore::new(
            settings.max_keys,
            quota.emission_interval(),
            settings.cleanup_interval,
            metrics.evictions.clone(),
            clock.clone(),
        );
        let limiter = governor::RateLimiter::new(quota.to_governor()?, store.clone(), clock);
        Ok(Self {
            name,
            quota,
            limiter,
            store,
            max_keys: settings.max_keys,
            metrics,
        })
    }

    /// Admits one request of `key`, or returns [`Error::RateLimited`] with the time until one
    /// fits.
    #[inline]
    pub fn check_key(&self, key: &K) -> Result<(), Error<Infallible>> {
        match self.limiter.check_key(key) {
            Ok(()) => {
                self.metrics.allowed.inc();
                Ok(())
            }
            Err(not_until) => {
                self.metrics.rejected.inc();
                Err(Error::RateLimited {
                    name: Arc::clone(&self.name),
                    retry_after: not_until.wait_time_from(self.limiter.clock().now()),
                })
            }
        }
    }

    /// Admits `n` requests of `key` at once, or none of them.
    ///
    /// `n = 0` is always admitted. Counted as one decision.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] when `n` exceeds the burst, so the batch can never fit;
    /// otherwise the inner result is [`Error::RateLimited`] when the batch does not fit now.
    pub fn check_key_n(
        &self,
        key: &K,
        n: u32,
    ) -> Result<Result<(), Error<Infallible>>, InsufficientCapacity> {
        let Some(cells) = NonZeroU32::new(n) else {
            self.metrics.allowed.inc();
            return Ok(Ok(()));
        };
        // governor 0.10 multiplies the emission interval by `n` before it compares `n` with
        // the burst, which overflows for a large `n`, so a batch over the burst stops here.
        if n > self.quota.burst() {
            return Err(self.insufficient_capacity(n));
        }
        match self.limiter.check_key_n(key, cells) {
            Ok(Ok(())) => {
                self.metrics.allowed.inc();
                Ok(Ok(()))
            }
            Ok(Err(not_until)) => {
                self.metrics.rejected.inc();
                Ok(Err(Error::RateLimited {
                    name: Arc::clone(&self.name),
                    retry_after: not_until.wait_time_from(self.limiter.clock().now()),
                }))
            }
            Err(_) => Err(self.insufficient_capacity(n)),
        }
    }

    /// Returns the quota left to `key` now, without spending any.
    ///
    /// NOTE: the store reads its start from the clock just before governor does, so with a
    /// real clock the reset can come out a few nanoseconds short.
    pub fn status(&self, key: &K) -> RateLimitStatus {
        RateLimitStatus::from_gcra(
            self.store.tat(key).map(|tat| tat.as_u64()),
            self.store.elapsed().as_u64(),
            self.quota.emission_interval(),
            self.quota.burst(),
        )
    }

    /// Drops every idle key now, as governor's `retain_recent` does, and returns how many.
    pub fn retain_recent(&self) -> usize {
        self.store.retain_recent()
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Returns whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the limiter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the limiter's quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Counts a batch larger than the burst as rejected and describes it.
    fn insufficient_capacity(&self, requested: u32) -> InsufficientCapacity {
        self.metrics.rejected.inc();
        InsufficientCapacity {
            name: Arc::clone(&self.name),
            requested,
            burst: self.quota.burst(),
        }
    }

    /// Returns the limiter's quota, key count and decision counts, for an admin route.
    pub fn snapshot(&self) -> RateLimiterSnapshot {
        RateLimiterSnapshot::new(
            &self.name,
            self.quota,
            Some((self.len(), self.max_keys)),
            &self.metrics,
        )
    }
}

impl<K: Hash + Eq + Clone, C: Clock> fmt::Debug for KeyedRateLimiter<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

/// Key memory settings of a keyed limiter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedSettings {
    pub(crate) max_keys: usize,
    pub(crate) cleanup_interval: std::time::Duration,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::Registry;
    use crate::resilience::ManualClock;
    use crate::resilience::rate_limit::RateLimiter;

    fn limiter(
        quota: Quota,
        max_keys: usize,
        clock: &ManualClock,
    ) -> KeyedRateLimiter<u32, ManualClock> {
        RateLimiter::builder("test", quota)
            .registry(&Registry::default())
            .clock(clock.clone())
            .max_keys(max_keys)
            .build_keyed()
            .unwrap()
    }

    /// Runs the same checks through obskit and governor's own keyed limiter on one clock.
    #[test]
    fn decisions_match_governor_keyed_limiter() {
        let clock = ManualClock::new();
        let quota = Quota::new(3, Duration::from_secs(2))
            .unwrap()
            .with_burst(2)
            .unwrap();
        let ours = limiter(quota, 100, &clock);
        let theirs =
            governor::RateLimiter::hashmap_with_clock(quota.to_governor().unwrap(), clock.clone());
        let steps_ms = [0, 0, 0, 100, 600, 700, 0, 0, 1400, 2000, 10, 10, 10];
        for (step, advance) in steps_ms.iter().enumerate() {
            clock.advance(Duration::from_millis(*advance));
            for key in [1_u32, 2] {
                let expected = theirs
                    .check_key(&key)
                    .map_err(|nu| nu.wait_time_from(governor::clock::Clock::now(&clock)));
                let actual = ours.check_key(&key).map_err(|e| e.retry_after().unwrap());
                assert_eq!(actual, expected, "step {step}, key {key}");
            }
        }
    }

    #[test]
    fn retain_recent_drops_like_governor() {
        let clock = ManualClock::new();
        let quota = Quota::per_second(1).unwrap();
        let ours = limiter(quota, 100, &clock);
        let theirs =
            governor::RateLimiter::hashmap_with_clock(quota.to_governor().unwrap(), clock.clone());
        for key in 0..10_u32 {
            let _ = ours.check_key(&key);
            let _ = theirs.check_key(&key);
        }
        for advance in [0, 500, 500, 1, 999, 1] {
            clock.advance(Duration::from_millis(advance));
            ours.retain_recent();
            theirs.retain_recent();
            assert_eq!(
                ours.len(),
                theirs.len(),
                "after {:?}",
                crate::resilience::Clock::now(&clock)
            );
        }
        assert_eq!(ours.len(), 0);
    }

    #[test]
    fn full_store_evicts_and_counts() {
        let registry = Registry::default();
        let limiter: KeyedRateLimiter<u32, ManualClock> =
            RateLimiter::builder("full", Quota::per_minute(1).unwrap())
                .registry(&registry)
                .clock(ManualClock::new())
                .max_keys(2)
                .build_keyed()
                .unwrap();
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&2).is_ok());
        assert!(limiter.check_key(&1).is_err());
        assert!(limiter.check_key(&3).is_ok());
        assert_eq!(limiter.len(), 2);
        assert!(
            limiter.check_key(&1).is_ok(),
            "key 1 was evicted and starts fresh"
        );
        let text = registry
            .encode(crate::metrics::Format::PrometheusText)
            .unwrap();
        assert!(
            text.contains("obskit_rate_limit_evictions_total{name=\"full\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn idle_keys_swept_after_interval() {
        let clock = ManualClock::new();
        let limiter: KeyedRateLimiter<u32, ManualClock> =
            RateLimiter::builder("sweep", Quota::per_second(10).unwrap())
                .registry(&Registry::default())
                .clock(clock.clone())
                .cleanup_interval(Duration::from_secs(5))
                .build_keyed()
                .unwrap();
        for key in 0..50 {
            assert!(limiter.check_key(&key).is_ok());
        }
        clock.advance(Duration::from_secs(4));
        assert!(limiter.check_key(&100).is_ok());
        assert_eq!(limiter.len(), 51, "interval not reached yet");
        clock.advance(Duration::from_secs(1));
        assert!(limiter.check_key(&101).is_ok());
        assert_eq!(
            limiter.len(),
            1,
            "key 100 turned idle too, so only key 101 is left"
        );
    }

    #[test]
    fn status_reports_remaining_and_reset() {
        let clock = ManualClock::new();
        let limiter = limiter(Quota::per_minute(3).unwrap(), 10, &clock);
        assert_eq!(
            limiter.status(&7),
            RateLimitStatus {
                remaining: 3,
                reset: None
            }
        );
        limiter.check_key(&7).unwrap();
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            limiter.status(&7),
            RateLimitStatus {
                remaining: 2,
                reset: Some(Duration::from_secs(15))
            }
        );
        limiter.check_key_n(&7, 2).unwrap().unwrap();
        let status = limiter.status(&7);
        assert_eq!(status.remaining, 0);
        let wait = limiter.check_key(&7).unwrap_err().retry_after().unwrap();
        assert_eq!(status.reset, Some(wait));
        assert!(
            limiter.check_key_n(&7, 4).is_err(),
            "more than the burst never fits"
        );
    }
}
