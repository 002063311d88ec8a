//! The direct rate limiter: one quota shared by every caller.

use std::convert::Infallible;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{NotKeyed, StateStore};

use super::metrics::LimiterMetrics;
use super::snapshot::RateLimiterSnapshot;
use super::{InsufficientCapacity, Quota, RateLimitStatus, RateLimiterBuilder};
use crate::resilience::Error;

/// A rate limiter with one quota for every caller, backed by governor's GCRA.
///
/// Each [`check`](Self::check) is one decision, counted in
/// `obskit_rate_limit_decisions_total{name,decision}`. A rejection is a value:
/// [`Error::RateLimited`] with the time until the next request fits.
///
/// # Example
///
/// ```
/// use obskit::metrics::Registry;
/// use obskit::resilience::Error;
/// use obskit::resilience::rate_limit::{Quota, RateLimiter};
///
/// let registry = Registry::default();
/// let limiter = RateLimiter::builder("outbound_sms", Quota::per_second(2)?)
///     .registry(&registry)
///     .build()?;
///
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_ok());
/// match limiter.check() {
///     Err(Error::RateLimited { retry_after, .. }) => assert!(retry_after.as_millis() <= 500),
///     other => panic!("expected a rejection, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RateLimiter<C: Clock = DefaultClock> {
    name: Arc<str>,
    quota: Quota,
    limiter: governor::RateLimiter<NotKeyed, DirectState, C, NoOpMiddleware<C::Instant>>,
    state: DirectState,
    /// Read just before governor's own start, so `now - start` is never behind governor's.
    start: C::Instant,
    metrics: LimiterMetrics,
}

impl RateLimiter {
    /// Starts a builder for a limiter named `name` (the `name` label) with `quota`.
    pub fn builder(name: impl Into<String>, quota: Quota) -> RateLimiterBuilder {
        RateLimiterBuilder::new(name.into(), quota)
    }
}

impl<C: Clock> RateLimiter<C> {
    pub(crate) fn from_parts(
        name: Arc<str>,
        quota: Quota,
        clock: C,
        metrics: LimiterMetrics,
    ) -> Result<Self, super::RateLimitError> {
        let start = clock.now();
        let state = DirectState::default();
        let limiter = governor::RateLimiter::new(quota.to_governor()?, state.clone(), clock);
        Ok(Self {
            name,
            quota,
            limiter,
            state,
            start,
            metrics,
        })
    }

    /// Admits one request, or returns [`Error::RateLimited`] with the time until one fits.
    #[inline]
    pub fn check(&self) -> Result<(), Error<Infallible>> {
        match self.limiter.check() {
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

    /// Admits `n` requests at once, or none of them.
    ///
    /// `n = 0` is always admitted. Counted as one decision.
    ///
    /// # Errors
    ///
    /// [`InsufficientCapacity`] when `n` exceeds the burst, so the batch can never fit;
    /// otherwise the inner result is [`Error::RateLimited`] when the batch does not fit now.
    pub fn check_n(&self, n: u32) -> Result<Result<(), Error<Infallible>>, InsufficientCapacity> {
        let Some(cells) = NonZeroU32::new(n) else {
            self.metrics.allowed.inc();
            return Ok(Ok(()));
        };
        // governor 0.10 multiplies the emission interval by `n` before it compares `n` with
        // the burst, which overflows for a large `n`, so a batch over the burst stops here.
        if n > self.quota.burst() {
            return Err(self.insufficient_capacity(n));
        }
        match self.limiter.check_n(cells) {
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

    /// Returns the quota left now, without spending any.
    pub fn status(&self) -> RateLimitStatus {
        let now = self.limiter.clock().now().duration_since(self.start);
        RateLimitStatus::from_gcra(
            self.state.tat(),
            now.as_u64(),
            self.quota.emission_interval(),
            self.quota.burst(),
        )
    }

    /// Returns the limiter's quota and decision counts, for an admin route.
    pub fn snapshot(&self) -> RateLimiterSnapshot {
        RateLimiterSnapshot::new(&self.name, self.quota, None, &self.metrics)
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
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

/// governor's in-memory direct state, shared so [`RateLimiter::status`] can read the TAT.
///
/// The value is the TAT in nanoseconds since the limiter's start, 0 for a fresh state. The
/// update is the same compare-and-swap loop as governor's `InMemoryState`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirectState(Arc<AtomicU64>);

impl DirectState {
    fn tat(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Acquire)).filter(|tat| *tat != 0)
    }
}

impl StateStore for DirectState {
    type Key = NotKeyed;

    #[inline]
    fn measure_and_replace<T, F, E>(&self, _key: &NotKeyed, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let stored = |value: u64| (value != 0).then(|| Nanos::from(value));
        let mut previous = self.0.load(Ordering::Acquire);
        loop {
            let (outcome, next) = f(stored(previous))?;
            match self.0.compare_exchange_weak(
                previous,
                next.as_u64(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(outcome),
                Err(actual) => previous = actual,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::{Format, Registry};
    use crate::resilience::ManualClock;

    #[test]
    fn decisions_match_governor_direct_limiter() {
        let clock = ManualClock::new();
        let quota = Quota::new(5, Duration::from_secs(1))
            .unwrap()
            .with_burst(3)
            .unwrap();
        let ours = RateLimiter::builder("direct", quota)
            .registry(&Registry::default())
            .clock(clock.clone())
            .build()
            .unwrap();
        let theirs =
            governor::RateLimiter::direct_with_clock(quota.to_governor().unwrap(), clock.clone());
        for (step, advance) in [0, 0, 0, 0, 50, 150, 199, 1, 0, 1000, 0, 0, 0, 0]
            .iter()
            .enumerate()
        {
            clock.advance(Duration::from_millis(*advance));
            let expected = theirs
                .check()
                .map_err(|nu| nu.wait_time_from(governor::clock::Clock::now(&clock)));
            let actual = ours.check().map_err(|e| e.retry_after().unwrap());
            assert_eq!(actual, expected, "step {step}");
            let n = u32::try_from(step % 3).unwrap() + 1;
            let expected = theirs.check_n(NonZeroU32::new(n).unwrap()).unwrap().is_ok();
            assert_eq!(
                ours.check_n(n).unwrap().is_ok(),
                expected,
                "step {step}, n {n}"
            );
        }
    }

    #[test]
    fn decisions_counted_by_outcome() {
        let registry = Registry::default();
        let limiter = RateLimiter::builder("counted", Quota::per_minute(2).unwrap())
            .registry(&registry)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        for _ in 0..5 {
            let _ = limiter.check();
        }
        let too_big = limiter.check_n(3).unwrap_err();
        assert_eq!(too_big.burst, 2);
        let text = registry.encode(Format::PrometheusText).unwrap();
        assert!(
            text.contains(
                "obskit_rate_limit_decisions_total{name=\"counted\",decision=\"allowed\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "obskit_rate_limit_decisions_total{name=\"counted\",decision=\"rejected\"} 4"
            ),
            "{text}"
        );
    }

    #[test]
    fn invalid_names_rejected() {
        for name in ["", "tab\there", "naïve", &"x".repeat(65)] {
            let error = RateLimiter::builder(name, Quota::per_second(1).unwrap())
                .registry(&Registry::default())
                .build()
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    crate::resilience::rate_limit::RateLimitError::InvalidName { .. }
                ),
                "{name:?}"
            );
        }
    }
}
