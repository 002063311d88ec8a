//! The named registry of circuit breakers: one breaker per name, shared by every caller.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use super::config::{BreakerError, CircuitBreakerConfig, CircuitBreakerSettings, Preset};
use super::machine::CircuitBreaker;
use super::snapshot::Snapshot;
use crate::config::ResilienceConfig;
use crate::metrics::Registry;
use crate::resilience::Clock;

/// Circuit breakers by name, created on first use from the configuration file's settings for
/// that name, a preset, explicit settings or the defaults.
///
/// A name maps to one breaker for the life of the registry. A later request for the same
/// name returns the existing breaker and ignores the settings passed with it, as
/// Resilience4j's `CircuitBreakerRegistry` does.
///
/// # Example
///
/// ```
/// use obskit::resilience::breaker::{CircuitBreakerRegistry, Preset};
///
/// let config = obskit::Config::builder()
///     .env(false)
///     .set("resilience.circuit_breakers.payments.failure_rate_threshold", 25)
///     .build()?;
/// let metrics = obskit::metrics::Registry::default();
/// let breakers = CircuitBreakerRegistry::from_config(&config.resilience, &metrics)?;
///
/// let payments = breakers.get_or_create("payments")?;
/// assert_eq!(payments.config().failure_rate_threshold, 25.0);
/// let cache = breakers.get_or_create_with_preset("sessions", Preset::Cache)?;
/// assert_eq!(cache.config().sliding_window_size, 100);
///
/// // The admin route's body: every breaker, sorted by name.
/// let json = serde_json::to_string(&breakers.snapshots())?;
/// assert!(json.starts_with(r#"[{"name":"payments","state":"closed""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreakerRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Registry,
    /// The clock given to the registry; `None` gives each breaker its own coarse clock.
    clock: Option<Arc<dyn Clock>>,
    defaults: CircuitBreakerConfig,
    configured: BTreeMap<String, CircuitBreakerSettings>,
    breakers: RwLock<BTreeMap<String, CircuitBreaker>>,
}

impl fmt::Debug for CircuitBreakerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.inner.breakers.read().keys().cloned().collect();
        f.debug_struct("CircuitBreakerRegistry")
            .field("breakers", &names)
            .field("defaults", &self.inner.defaults)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerRegistry {
    /// Creates an empty registry whose breakers register their metrics in `metrics` and use
    /// the default settings.
    pub fn new(metrics: &Registry) -> Self {
        Self::build(
            metrics,
            None,
            CircuitBreakerConfig::default(),
            BTreeMap::new(),
        )
    }

    /// Creates a registry with a breaker for every name in
    /// `resilience.circuit_breakers`, so they are listed before their first call.
    ///
    /// # Errors
    ///
    /// The first breaker whose settings are invalid. [`Config`](crate::Config) loading
    /// already rejects those, so this fails only for a hand-built [`ResilienceConfig`].
    pub fn from_config(
        config: &ResilienceConfig,
        metrics: &Registry,
    ) -> Result<Self, BreakerError> {
        Self::create_configured(config, metrics, None)
    }

    /// As [`from_config`](Self::from_config), with every breaker reading `clock`.
    ///
    /// # Errors
    ///
    /// As [`from_config`](Self::from_config).
    pub fn from_config_with_clock(
        config: &ResilienceConfig,
        metrics: &Registry,
        clock: impl Clock,
    ) -> Result<Self, BreakerError> {
        Self::create_configured(config, metrics, Some(Arc::new(clock)))
    }

    fn create_configured(
        config: &ResilienceConfig,
        metrics: &Registry,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self, BreakerError> {
        let registry = Self::build(
            metrics,
            clock,
            CircuitBreakerConfig::default(),
            config.circuit_breakers.clone(),
        );
        for name in config.circuit_breakers.keys() {
            registry.get_or_create(name)?;
        }
        Ok(registry)
    }

    /// Returns a registry whose breakers read `clock`; a
    /// [`ManualClock`](crate::resilience::ManualClock) in tests. Breakers already created
    /// keep their clock.
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        let inner = &*self.inner;
        Self::build(
            &inner.metrics,
            Some(Arc::new(clock)),
            inner.defaults.clone(),
            inner.configured.clone(),
        )
    }

    /// Returns a registry whose unconfigured breakers use `defaults`.
    ///
    /// # Errors
    ///
    /// [`BreakerError::InvalidConfig`] listing every setting of `defaults` out of range.
    pub fn with_defaults(self, defaults: CircuitBreakerConfig) -> Result<Self, BreakerError> {
        if let Err(problems) = defaults.validate() {
            return Err(BreakerError::InvalidConfig {
                name: "(registry defaults)".into(),
                problems,
            });
        }
        let inner = &*self.inner;
        Ok(Self::build(
            &inner.metrics,
            inner.clock.clone(),
            defaults,
            inner.configured.clone(),
        ))
    }

    fn build(
        metrics: &Registry,
        clock: Option<Arc<dyn Clock>>,
        defaults: CircuitBreakerConfig,
        configured: BTreeMap<String, CircuitBreakerSettings>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                metrics: metrics.clone(),
                clock,
                defaults,
                configured,
                breakers: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Returns the breaker called `name`, creating it from the configuration file's settings
    /// for that name, or from the registry's defaults.
    ///
    /// # Errors
    ///
    /// As [`CircuitBreakerBuilder::build`](super::CircuitBreakerBuilder::build).
    pub fn get_or_create(&self, name: &str) -> Result<CircuitBreaker, BreakerError> {
        if let Some(breaker) = self.get(name) {
            return Ok(breaker);
        }
        let config = match self.inner.configured.get(name) {
            Some(settings) => settings.resolve(),
            None => self.inner.defaults.clone(),
        };
        self.get_or_create_with(name, config)
    }

    /// Returns the breaker called `name`, creating it from `preset` with the configuration
    /// file's keys for that name applied on top.
    ///
    /// A breaker that already exists, such as one created from a
    /// `[resilience.circuit_breakers.<name>]` table without `preset`, is returned as it is,
    /// with a warning when its settings differ; set `preset` in that table instead.
    ///
    /// # Errors
    ///
    /// As [`get_or_create`](Self::get_or_create).
    pub fn get_or_create_with_preset(
        &self,
        name: &str,
        preset: Preset,
    ) -> Result<CircuitBreaker, BreakerError> {
        let settings = CircuitBreakerSettings {
            preset: Some(preset),
            ..self.inner.configured.get(name).cloned().unwrap_or_default()
        };
        self.get_or_create_with(name, settings.resolve())
    }

    /// Returns the breaker called `name`, creating it with `config`.
    ///
    /// # Errors
    ///
    /// As [`get_or_create`](Self::get_or_create).
    pub fn get_or_create_with(
        &self,
        name: &str,
        config: CircuitBreakerConfig,
    ) -> Result<CircuitBreaker, BreakerError> {
        if let Some(breaker) = self.get(name) {
            warn_if_settings_differ(&breaker, &config);
            return Ok(breaker);
        }
        let mut breakers = self.inner.breakers.write();
        if let Some(breaker) = breakers.get(name) {
            warn_if_settings_differ(breaker, &config);
            return Ok(breaker.clone());
        }
        let breaker = CircuitBreaker::builder(name)
            .config(config)
            .registry(&self.inner.metrics)
            .shared_clock(self.inner.clock.clone())
            .build()?;
        breakers.insert(name.to_owned(), breaker.clone());
        Ok(breaker)
    }

    /// Returns the breaker called `name`, if it was created.
    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        self.inner.breakers.read().get(name).cloned()
    }

    /// Returns every breaker, sorted by name.
    pub fn all(&self) -> Vec<CircuitBreaker> {
        self.inner.breakers.read().values().cloned().collect()
    }

    /// Returns a snapshot of every breaker, sorted by name, for an admin route that shows
    /// them as JSON.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.all().iter().map(CircuitBreaker::snapshot).collect()
    }
}

/// Warns that an existing breaker keeps its settings although other ones were requested.
fn warn_if_settings_differ(breaker: &CircuitBreaker, requested: &CircuitBreakerConfig) {
    if breaker.config() != requested {
        tracing::warn!(
            target: "obskit::resilience",
            circuit_breaker = breaker.name(),
            "circuit breaker already exists with other settings, which it keeps; set them in its [resilience.circuit_breakers.<name>] table"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    /// Log output collected in memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn preset_on_existing_breaker_warns() {
        crate::test_support::keep_interest_shared();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let breakers = CircuitBreakerRegistry::new(&Registry::default());

        tracing::subscriber::with_default(subscriber, || {
            let first = breakers.get_or_create("payments").unwrap();
            let again = breakers.get_or_create("payments").unwrap();
            assert_eq!(again.config(), first.config());
            let preset = breakers
                .get_or_create_with_preset("payments", Preset::ExternalApi)
                .unwrap();
            assert_eq!(
                preset.config(),
                first.config(),
                "the existing breaker is kept"
            );
        });

        let output = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            output
                .matches("circuit breaker already exists with other settings")
                .count(),
            1,
            "{output}"
        );
        assert!(output.contains("circuit_breaker=\"payments\""), "{output}");
    }
}
