//! A rate limit's quota: a number of requests per period, with a burst.

use std::num::NonZeroU32;
use std::time::Duration;

use super::RateLimitError;

/// Maximum time a full burst may take to come back: about 146 years, a quarter of the
/// nanosecond range. governor 0.10 adds this time to its clock readings in unchecked `u64`
/// nanoseconds, so a longer burst would overflow there.
pub const MAX_BURST_TIME: Duration = Duration::from_nanos(u64::MAX / 4);

/// How many requests a limiter admits: `count` per `period`, with up to `burst` at once.
///
/// The limiter is governor's GCRA: one request's worth of quota comes back every
/// `period / count` (the emission interval), and an idle client can spend up to `burst` at
/// once. The burst defaults to `count`, so `Quota::per_minute(100)` admits 100 requests at once
/// and then one every 600 ms.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::resilience::rate_limit::Quota;
///
/// let quota = Quota::new(100, Duration::from_secs(60))?.with_burst(20)?;
/// assert_eq!(quota.emission_interval(), Duration::from_millis(600));
/// assert_eq!(quota.burst(), 20);
/// # Ok::<(), obskit::resilience::rate_limit::RateLimitError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    count: u32,
    period: Duration,
    burst: u32,
}

impl Quota {
    /// Creates a quota of `count` requests per `period`, with a burst of `count`.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::InvalidQuota`] when `count` is 0, `period` is zero, the period is
    /// shorter than `count` nanoseconds or longer than [`MAX_BURST_TIME`].
    pub fn new(count: u32, period: Duration) -> Result<Self, RateLimitError> {
        let invalid = |reason: &'static str| RateLimitError::InvalidQuota {
            count,
            period,
            reason,
        };
        if count == 0 {
            return Err(invalid(
                "the count must be at least 1; to turn the limit off, leave the limiter out",
            ));
        }
        if period.is_zero() {
            return Err(invalid("the period must be longer than zero"));
        }
        if period.as_nanos() < u128::from(count) {
            return Err(invalid(
                "the period must be at least one nanosecond per request; use a longer period",
            ));
        }
        if period > MAX_BURST_TIME {
            return Err(invalid(
                "the period must be at most 146 years; use a shorter period",
            ));
        }
        Ok(Self {
            count,
            period,
            burst: count,
        })
    }

    /// Creates a quota of `count` requests per second, with a burst of `count`.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_second(count: u32) -> Result<Self, RateLimitError> {
        Self::new(count, Duration::from_secs(1))
    }

    /// Creates a quota of `count` requests per minute, with a burst of `count`.
    ///
    /// # Errors
    ///
    /// As [`Quota::new`].
    pub fn per_minute(count: u32) -> Result<Self, RateLimitError> {
        Self::new(count, Duration::from_secs(60))
    }

    /// Sets how many requests an idle client can make at once.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::InvalidBurst`] when `burst` is 0, and
    /// [`RateLimitError::BurstTooLong`] when a full burst takes longer than
    /// [`MAX_BURST_TIME`] to come back.
    pub fn with_burst(self, burst: u32) -> Result<Self, RateLimitError> {
        if burst == 0 {
            return Err(RateLimitError::InvalidBurst { burst });
        }
        let refill = self.emission_interval().as_nanos() * u128::from(burst);
        if refill > MAX_BURST_TIME.as_nanos() {
            return Err(RateLimitError::BurstTooLong {
                burst,
                count: self.count,
                period: self.period,
            });
        }
        Ok(Self { burst, ..self })
    }

    /// Requests per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Period that `count` requests are spread over.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Requests an idle client can make at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Time for one request's worth of quota to come back: `period / count`, rounded down to
    /// whole nanoseconds as governor rounds it.
    pub fn emission_interval(&self) -> Duration {
        self.period / self.count
    }

    /// Computes the window of the `RateLimit-Policy` header in whole seconds (at least 1) and
    /// the quota of requests in that window.
    ///
    /// A period of whole seconds is the window itself. A sub-second or fractional period is
    /// rounded up to whole seconds, and the count scaled down to what fits in that window.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn policy_window(&self) -> (u64, u64) {
        let window = self.period.as_secs() + u64::from(self.period.subsec_nanos() > 0);
        let window = window.max(1);
        let window_nanos = u128::from(window) * 1_000_000_000;
        let quota = u128::from(self.count) * window_nanos / self.period.as_nanos().max(1);
        (window, u64::try_from(quota).unwrap_or(u64::MAX))
    }

    pub(crate) fn to_governor(self) -> Result<governor::Quota, RateLimitError> {
        let burst = NonZeroU32::new(self.burst).ok_or(RateLimitError::InvalidBurst { burst: 0 })?;
        let invalid = RateLimitError::InvalidQuota {
            count: self.count,
            period: self.period,
            reason: "the period must be at least one nanosecond per request; use a longer period",
        };
        Ok(governor::Quota::with_period(self.emission_interval())
            .ok_or(invalid)?
            .allow_burst(burst))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn invalid_quotas_name_the_value() {
        let zero = Quota::new(0, Duration::from_secs(1)).unwrap_err();
        assert!(zero.to_string().contains("count 0"), "{zero}");
        assert!(Quota::new(1, Duration::ZERO).is_err());
        assert!(Quota::new(10, Duration::from_nanos(9)).is_err());
        assert!(Quota::new(10, Duration::from_nanos(10)).is_ok());
        let burst = Quota::per_second(1).unwrap().with_burst(0).unwrap_err();
        assert!(burst.to_string().contains("burst 0"), "{burst}");
        let long = Quota::new(1, Duration::MAX).unwrap_err();
        assert!(long.to_string().contains("at most 146 years"), "{long}");
    }

    #[test]
    fn burst_refill_time_bounded() {
        let hourly = Quota::new(1, Duration::from_secs(3600)).unwrap();
        let year = 365 * 24;
        assert!(hourly.with_burst(100 * year).is_ok());
        let error = hourly.with_burst(200 * year).unwrap_err();
        assert!(
            error.to_string().contains(&format!("burst {}", 200 * year)),
            "{error}"
        );
        let widest = Quota::new(u32::MAX, MAX_BURST_TIME).unwrap();
        assert!(widest.with_burst(u32::MAX).is_ok());
        assert!(widest.to_governor().is_ok());
    }

    #[test]
    fn governor_quota_matches_governor_constructors() {
        let ours = Quota::per_minute(100).unwrap().to_governor().unwrap();
        let theirs = governor::Quota::per_minute(NonZeroU32::new(100).unwrap());
        assert_eq!(ours, theirs);
        let ours = Quota::per_second(3).unwrap().to_governor().unwrap();
        let theirs = governor::Quota::per_second(NonZeroU32::new(3).unwrap());
        assert_eq!(ours, theirs);
        let burst = Quota::per_second(10).unwrap().with_burst(2).unwrap();
        let theirs = governor::Quota::per_second(NonZeroU32::new(10).unwrap())
            .allow_burst(NonZeroU32::new(2).unwrap());
        assert_eq!(burst.to_governor().unwrap(), theirs);
    }

    #[test]
    fn policy_window_in_whole_seconds() {
        assert_eq!(Quota::per_minute(100).unwrap().policy_window(), (60, 100));
        assert_eq!(Quota::per_second(5).unwrap().policy_window(), (1, 5));
        let sub_second = Quota::new(10, Duration::from_millis(100)).unwrap();
        assert_eq!(sub_second.policy_window(), (1, 100));
        let fractional = Quota::new(3, Duration::from_millis(1500)).unwrap();
        assert_eq!(fractional.policy_window(), (2, 4));
    }
}
