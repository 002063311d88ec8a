//! Per-client scrape rate limit on `/metrics`: a governor GCRA limiter over a bounded client table.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;

use super::AdminError;
use crate::keyed::{BoundedStateStore, ClientKey};

/// Time between two sweeps of idle clients out of the table.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Limits scrapes per client to `rate` per second with a burst of `max(1, ceil(rate))`.
pub(crate) struct ClientRateLimiter {
    limiter: RateLimiter<ClientKey, BoundedStateStore<ClientKey, DefaultClock>, DefaultClock>,
}

impl ClientRateLimiter {
    /// Creates a limiter, or `None` when `rate` is 0 (no limit).
    ///
    /// # Errors
    ///
    /// [`AdminError::InvalidRateLimit`] when `rate` is negative, not finite or too large to
    /// express as a period of at least one nanosecond.
    pub(crate) fn new(
        rate: f64,
        max_clients: usize,
        evictions: Counter,
    ) -> Result<Option<Self>, AdminError> {
        if rate == 0.0 {
            return Ok(None);
        }
        let invalid = AdminError::InvalidRateLimit { value: rate };
        if !rate.is_finite() || !(0.0..=1e9).contains(&rate) {
            return Err(invalid);
        }
        let period = Duration::try_from_secs_f64(1.0 / rate).map_err(|_| invalid.clone())?;
        // The range check above keeps `ceil(rate)` within u32.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let burst = NonZeroU32::new(rate.ceil() as u32).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .ok_or(invalid)?
            .allow_burst(burst);
        let clock = DefaultClock::default();
        let store = BoundedStateStore::new(
            max_clients,
            period,
            CLEANUP_INTERVAL,
            evictions,
            clock.clone(),
        );
        Ok(Some(Self {
            limiter: RateLimiter::new(quota, store, clock),
        }))
    }

    /// Admits one scrape of `client`, or returns how long it must wait.
    pub(crate) fn check(&self, client: ClientKey) -> Result<(), Duration> {
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn client(n: u32) -> ClientKey {
        ClientKey::from_ip(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn zero_rate_disables() {
        assert!(
            ClientRateLimiter::new(0.0, 10, Counter::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn invalid_rates_rejected() {
        for rate in [-1.0, f64::NAN, f64::INFINITY, 1e12] {
            assert!(
                ClientRateLimiter::new(rate, 10, Counter::default()).is_err(),
                "{rate}"
            );
        }
    }

    #[test]
    fn burst_is_ceil_of_rate_per_client() {
        let limiter = ClientRateLimiter::new(2.5, 10, Counter::default())
            .unwrap()
            .unwrap();
        for _ in 0..3 {
            assert!(limiter.check(client(1)).is_ok());
        }
        let wait = limiter.check(client(1)).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(400),
            "{wait:?}"
        );
        assert!(limiter.check(client(2)).is_ok());
    }

    #[test]
    fn fractional_rate_has_burst_one() {
        let limiter = ClientRateLimiter::new(0.5, 10, Counter::default())
            .unwrap()
            .unwrap();
        assert!(limiter.check(client(1)).is_ok());
        let wait = limiter.check(client(1)).unwrap_err();
        assert!(wait > Duration::from_millis(1500), "{wait:?}");
    }

    #[test]
    fn random_clients_stay_bounded() {
        let evictions = Counter::default();
        // One scrape per 100 s, so no client turns idle during the loop and every client
        // forgotten is an eviction.
        let limiter = ClientRateLimiter::new(0.01, 500, evictions.clone())
            .unwrap()
            .unwrap();
        for _ in 0..100_000 {
            let _ = limiter.check(client(fastrand::u32(..)));
        }
        let tracked = limiter.limiter.into_state_store().len();
        assert_eq!(tracked, 500);
        assert!(evictions.get() >= 99_000, "{}", evictions.get());
    }
}
