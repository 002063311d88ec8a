//! The service's resilience registry: circuit breakers by name and the rate limiters it shows.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;

use super::breaker::{BreakerError, CircuitBreaker, CircuitBreakerRegistry, Snapshot};
use super::rate_limit::{RateLimiterSnapshot, SnapshotSource};
use crate::config::ResilienceConfig;
use crate::metrics::Registry;

/// The circuit breakers of a service, configured by name, and the rate limiters it lists.
///
/// [`init`](crate::init) builds one from the `resilience` section of the configuration and
/// serves its [`snapshot`](Self::snapshot) as JSON on the admin route `/resilience`. Cheap to
/// clone: clones share the breakers and limiters.
///
/// # Example
///
/// ```
/// use obskit::metrics::Registry;
/// use obskit::resilience::Resilience;
/// use obskit::resilience::rate_limit::{KeyExtractor, Quota, RateLimiter};
///
/// let config = obskit::Config::builder()
///     .env(false)
///     .set("resilience.circuit_breakers.payments.preset", "external_api")
///     .build()?;
/// let registry = Registry::default();
/// let resilience = Resilience::new(&config.resilience, &registry)?;
///
/// let payments = resilience.circuit_breaker("payments")?;
/// let orders = RateLimiter::builder("orders", Quota::per_second(10)?)
///     .registry(&registry)
///     .layer(KeyExtractor::PeerAddr)?;
/// resilience.show_rate_limiter(orders.clone());
///
/// let json = serde_json::to_value(resilience.snapshot())?;
/// assert_eq!(json["circuit_breakers"][0]["name"], "payments");
/// assert_eq!(json["rate_limiters"][0]["name"], "orders");
/// # drop(payments);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Resilience {
    inner: Arc<Inner>,
}

struct Inner {
    breakers: CircuitBreakerRegistry,
    limiters: RwLock<BTreeMap<String, Box<dyn SnapshotSource>>>,
}

impl fmt::Debug for Resilience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limiters: Vec<String> = self.inner.limiters.read().keys().cloned().collect();
        f.debug_struct("Resilience")
            .field("circuit_breakers", &self.inner.breakers)
            .field("rate_limiters", &limiters)
            .finish()
    }
}

/// Every breaker and listed rate limiter at one moment, as `/resilience` serves it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ResilienceSnapshot {
    /// Every breaker, sorted by name.
    pub circuit_breakers: Vec<Snapshot>,
    /// Every listed rate limiter, sorted by name.
    pub rate_limiters: Vec<RateLimiterSnapshot>,
}

impl Resilience {
    /// Creates the registry and a breaker for every name in `config.circuit_breakers`, whose
    /// metrics go to `metrics`.
    ///
    /// # Errors
    ///
    /// The first breaker whose settings are invalid. Loading a [`Config`](crate::Config)
    /// already rejects those, so this fails only for a hand-built configuration.
    pub fn new(config: &ResilienceConfig, metrics: &Registry) -> Result<Self, BreakerError> {
        Ok(Self::with_breakers(CircuitBreakerRegistry::from_config(
            config, metrics,
        )?))
    }

    /// Creates the registry around `breakers`, for example one with a
    /// [`ManualClock`](super::ManualClock) in tests.
    pub fn with_breakers(breakers: CircuitBreakerRegistry) -> Self {
        Self {
            inner: Arc::new(Inner {
                breakers,
                limiters: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Returns the circuit breakers by name.
    pub fn circuit_breakers(&self) -> &CircuitBreakerRegistry {
        &self.inner.breakers
    }

    /// Returns the breaker called `name`, creating it from its configured settings (or the
    /// defaults) on first use.
    ///
    /// # Errors
    ///
    /// [`BreakerError`] when the name is empty or its settings are invalid.
    pub fn circuit_breaker(&self, name: &str) -> Result<CircuitBreaker, BreakerError> {
        self.inner.breakers.get_or_create(name)
    }

    /// Lists `limiter` in the snapshot under its own name, replacing a limiter listed under
    /// the same name.
    pub fn show_rate_limiter(&self, limiter: impl SnapshotSource) {
        let name = limiter.snapshot().name;
        self.inner.limiters.write().insert(name, Box::new(limiter));
    }

    /// Returns every breaker and listed limiter now.
    pub fn snapshot(&self) -> ResilienceSnapshot {
        let rate_limiters = self
            .inner
            .limiters
            .read()
            .values()
            .map(|limiter| limiter.snapshot())
            .collect();
        ResilienceSnapshot {
            circuit_breakers: self.inner.breakers.snapshots(),
            rate_limiters,
        }
    }
}
