//! A point-in-time view of one rate limiter, serializable for an admin route.

use serde::Serialize;

use super::Quota;
use super::metrics::LimiterMetrics;

/// A limiter's quota, tracked keys and decision counts at one moment.
///
/// Serializes to JSON as:
///
/// ```json
/// {"name":"orders","requests":10,"period_seconds":1.0,"burst":20,"keys":3,
///  "max_keys":100000,"allowed":120,"rejected":4}
/// ```
///
/// # Example
///
/// ```
/// use obskit::resilience::rate_limit::{Quota, RateLimiter};
///
/// let limiter = RateLimiter::builder("search", Quota::per_second(5)?)
///     .registry(&obskit::metrics::Registry::default())
///     .build()?;
/// limiter.check()?;
/// let snapshot = limiter.snapshot();
/// assert_eq!((snapshot.allowed, snapshot.rejected, snapshot.keys), (1, 0, None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RateLimiterSnapshot {
    /// The limiter's name.
    pub name: String,
    /// Requests allowed per period.
    pub requests: u32,
    /// The period, in seconds.
    pub period_seconds: f64,
    /// Requests an idle client can make at once.
    pub burst: u32,
    /// Keys tracked now; `None` for a direct limiter.
    pub keys: Option<usize>,
    /// Most keys tracked at once; `None` for a direct limiter.
    pub max_keys: Option<usize>,
    /// Requests allowed since the limiter was built. Counts are shared by limiters with the
    /// same name in one metric registry.
    pub allowed: u64,
    /// Requests rejected since the limiter was built.
    pub rejected: u64,
}

impl RateLimiterSnapshot {
    pub(crate) fn new(
        name: &str,
        quota: Quota,
        keys: Option<(usize, usize)>,
        metrics: &LimiterMetrics,
    ) -> Self {
        Self {
            name: name.to_owned(),
            requests: quota.count(),
            period_seconds: quota.period().as_secs_f64(),
            burst: quota.burst(),
            keys: keys.map(|(len, _)| len),
            max_keys: keys.map(|(_, max)| max),
            allowed: metrics.allowed.get(),
            rejected: metrics.rejected.get(),
        }
    }
}

/// A rate limiter that can show itself in a [`Resilience`](crate::resilience::Resilience)
/// registry's snapshot.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Returns the limiter's quota, keys and decision counts now.
    fn snapshot(&self) -> RateLimiterSnapshot;
}

impl<C> SnapshotSource for std::sync::Arc<super::RateLimiter<C>>
where
    C: governor::clock::Clock + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    fn snapshot(&self) -> RateLimiterSnapshot {
        super::RateLimiter::snapshot(self)
    }
}

impl<K, C> SnapshotSource for std::sync::Arc<super::KeyedRateLimiter<K, C>>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    C: governor::clock::Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    fn snapshot(&self) -> RateLimiterSnapshot {
        super::KeyedRateLimiter::snapshot(self)
    }
}

#[cfg(feature = "http")]
impl<C> SnapshotSource for super::RateLimitLayer<C>
where
    C: governor::clock::Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    fn snapshot(&self) -> RateLimiterSnapshot {
        super::RateLimitLayer::snapshot(self)
    }
}
