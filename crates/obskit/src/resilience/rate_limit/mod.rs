//! Rate limiting backed by governor: direct and keyed limiters with bounded key memory.
//!
//! A limiter admits `count` requests per `period` with a burst ([`Quota`]), using governor's
//! GCRA: quota comes back continuously, one request's worth every `period / count`, rather
//! than in fixed windows. [`RateLimiter`] has one quota for every caller; [`KeyedRateLimiter`]
//! has one per key and tracks at most `max_keys` keys. With the `http` feature,
//! [`RateLimitLayer`] puts a keyed limiter in front of a tower service and responds to rejected
//! requests with `429 Too Many Requests`, `Retry-After` and the `RateLimit-Policy` and
//! `RateLimit` header fields.
//!
//! # Metrics
//!
//! | Family | Type | Meaning |
//! |---|---|---|
//! | `obskit_rate_limit_decisions_total{name,decision}` | counter | one per check, `decision` = `allowed` or `rejected` |
//! | `obskit_rate_limit_evictions_total{name}` | counter | keys forgotten before they turned idle because the limiter tracked `max_keys` keys |
//!
//! A check of `n` requests at once is one decision. A batch larger than the burst is counted
//! as rejected.
//!
//! # Limitations
//!
//! - State is in memory and per process: N replicas admit up to N times the quota.
//! - A keyed limiter serializes its checks on one mutex. Under heavy contention from many
//!   threads this lock, not the GCRA, bounds throughput.
//! - An evicted key gets a fresh burst, so a client that can mint many keys (IPv6 /64s, API
//!   keys that are not authenticated first) can reset another key's limit only by pushing it
//!   out of a full store; `obskit_rate_limit_evictions_total` shows when that happens.

mod clock;
mod direct;
mod keyed;
#[cfg(feature = "http")]
mod layer;
mod metrics;
mod quota;
mod snapshot;

mod status;

use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};

pub use crate::keyed::ClientKey;
pub use direct::RateLimiter;
pub use keyed::KeyedRateLimiter;
#[cfg(feature = "http")]
pub use layer::{
    KeyExtractor, RATELIMIT, RATELIMIT_POLICY, RateLimitLayer, RateLimitService, ResponseFuture,
};
pub use quota::{MAX_BURST_TIME, Quota};
pub use snapshot::{RateLimiterSnapshot, SnapshotSource};
pub use status::RateLimitStatus;

use crate::metrics::{MetricsError, Registry};
use keyed::KeyedSettings;
use metrics::LimiterMetrics;

/// Default maximum of keys a keyed limiter tracks.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Default time between two sweeps of idle keys.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Errors from building a rate limiter.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The quota cannot be used.
    #[error("invalid rate limit quota: count {count} per {period:?}: {reason}")]
    InvalidQuota {
        /// Requests per period.
        count: u32,
        /// The period.
        period: Duration,
        /// The rule that failed and the fix.
        reason: &'static str,
    },
    /// The burst is 0.
    #[error("invalid rate limit burst {burst}: use at least 1")]
    InvalidBurst {
        /// The configured burst.
        burst: u32,
    },
    /// A full burst takes longer than [`MAX_BURST_TIME`] to come back.
    #[error(
        "invalid rate limit burst {burst} for count {count} per {period:?}: a full burst would take more than 146 years to come back; lower the burst or the period"
    )]
    BurstTooLong {
        /// The configured burst.
        burst: u32,
        /// Requests per period.
        count: u32,
        /// The period.
        period: Duration,
    },
    /// The name is empty or cannot be sent in an HTTP header.
    #[error(
        "invalid rate limiter name {name:?}: use 1 to 64 printable ASCII characters, because the name is a metric label and the policy name in RateLimit headers"
    )]
    InvalidName {
        /// The configured name.
        name: String,
    },
    /// `max_keys` is 0.
    #[error("invalid rate limiter max_keys 0: track at least 1 key")]
    InvalidMaxKeys,
    /// The cleanup interval is zero.
    #[error("invalid rate limiter cleanup_interval 0s: use a positive duration such as 60s")]
    InvalidCleanupInterval,
    /// Registering the rate limit metric families failed.
    #[error("registering rate limit metrics failed: {message}")]
    Metrics {
        /// The registry error.
        message: String,
    },
}

impl From<MetricsError> for RateLimitError {
    fn from(error: MetricsError) -> Self {
        Self::Metrics {
            message: error.to_string(),
        }
    }
}

/// A batch of requests larger than the burst, which can never be admitted at once.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "rate limiter {name:?} can never admit {requested} requests at once because its burst is {burst}; split the batch"
)]
pub struct InsufficientCapacity {
    /// The limiter's name.
    pub name: Arc<str>,
    /// Requests in the batch.
    pub requested: u32,
    /// The limiter's burst.
    pub burst: u32,
}

/// Settings of a [`RateLimiter`] or [`KeyedRateLimiter`] before it is built.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::metrics::Registry;
/// use obskit::resilience::ManualClock;
/// use obskit::resilience::rate_limit::{Quota, RateLimiter};
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::builder("reports", Quota::per_second(1)?)
///     .registry(&Registry::default())
///     .clock(clock.clone())
///     .build()?;
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_err());
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.check().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until built"]
pub struct RateLimiterBuilder<C = DefaultClock> {
    name: String,
    quota: Quota,
    registry: Option<Registry>,
    clock: C,
    max_keys: usize,
    cleanup_interval: Duration,
}

impl RateLimiterBuilder {
    fn new(name: String, quota: Quota) -> Self {
        Self {
            name,
            quota,
            registry: None,
            clock: DefaultClock::default(),
            max_keys: DEFAULT_MAX_KEYS,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
        }
    }
}

impl<C: Clock + Clone> RateLimiterBuilder<C> {
    /// Registers the metrics in `registry` instead of [`Registry::global`].
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Reads time from `clock`, for example a [`ManualClock`](crate::resilience::ManualClock)
    /// in tests. The default is governor's `DefaultClock`.
    pub fn clock<C2: Clock + Clone>(self, clock: C2) -> RateLimiterBuilder<C2> {
        RateLimiterBuilder {
            name: self.name,
            quota: self.quota,
            registry: self.registry,
            clock,
            max_keys: self.max_keys,
            cleanup_interval: self.cleanup_interval,
        }
    }

    /// Sets the maximum of keys a keyed limiter tracks ([`DEFAULT_MAX_KEYS`] by default).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Sets how often a keyed limiter drops idle keys ([`DEFAULT_CLEANUP_INTERVAL`] by
    /// default). The sweep runs when a new key arrives after the interval has passed.
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// Builds a direct limiter: one quota for every caller.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::InvalidName`] and [`RateLimitError::Metrics`].
    pub fn build(self) -> Result<RateLimiter<C>, RateLimitError> {
        let (name, metrics) = self.validate()?;
        RateLimiter::from_parts(name, self.quota, self.clock, metrics)
    }

    /// Builds a keyed limiter: one quota per key.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), plus [`RateLimitError::InvalidMaxKeys`] and
    /// [`RateLimitError::InvalidCleanupInterval`].
    pub fn build_keyed<K: std::hash::Hash + Eq + Clone>(
        self,
    ) -> Result<KeyedRateLimiter<K, C>, RateLimitError> {
        if self.max_keys == 0 {
            return Err(RateLimitError::InvalidMaxKeys);
        }
        if self.cleanup_interval.is_zero() {
            return Err(RateLimitError::InvalidCleanupInterval);
        }
        let (name, metrics) = self.validate()?;
        let settings = KeyedSettings {
            max_keys: self.max_keys,
            cleanup_interval: self.cleanup_interval,
        };
        KeyedRateLimiter::from_parts(name, self.quota, settings, self.clock, metrics)
    }

    /// Builds a tower layer that limits requests per key taken from each request.
    ///
    /// # Errors
    ///
    /// As [`build_keyed`](Self::build_keyed).
    #[cfg(feature = "http")]
    pub fn layer(self, key: KeyExtractor) -> Result<RateLimitLayer<C>, RateLimitError>
    where
        C: Send + Sync + 'static,
        C::Instant: Send + Sync,
    {
        let limiter = self.build_keyed()?;
        Ok(RateLimitLayer::new(limiter, key))
    }

    fn validate(&self) -> Result<(Arc<str>, LimiterMetrics), RateLimitError> {
        let printable = (1..=64).contains(&self.name.len())
            && self.name.bytes().all(|byte| (0x20..=0x7e).contains(&byte));
        if !printable {
            return Err(RateLimitError::InvalidName {
                name: self.name.clone(),
            });
        }
        let registry = self.registry.as_ref().unwrap_or_else(|| Registry::global());
        let metrics = LimiterMetrics::new(registry, &self.name)?;
        Ok((Arc::from(self.name.as_str()), metrics))
    }
}
