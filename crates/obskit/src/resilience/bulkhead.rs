//! Bulkhead: a maximum of concurrent calls with an optional bounded wait.
//!
//! A [`Bulkhead`] holds `max_concurrent` permits in a tokio [`Semaphore`]. A call takes a
//! permit for as long as it runs. When none is free, the call waits up to `max_wait` for one
//! (in arrival order, as the semaphore is fair), and is rejected with
//! [`Error::BulkheadFull`] if none frees up in time. A `max_wait` of zero rejects at once.
//!
//! # Metrics
//!
//! | Metric | Labels | Meaning |
//! |---|---|---|
//! | `obskit_bulkhead_rejections_total` | `name` | Calls and permit requests rejected because no permit was free |
//! | `obskit_bulkhead_concurrent_calls` | `name` | Permits held now, summed over bulkheads of the same name |
//!
//! # Limitations
//!
//! - The bulkhead limits calls in one process; it does not coordinate between replicas.
//! - A permit is held until the call's future finishes or is dropped, so a call that never
//!   finishes holds its permit forever. Put a [`Timeout`](super::timeout::Timeout) inside the
//!   bulkhead to bound it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Error;
use crate::metrics::{Counter, Gauge, MetricsError, Registry};

/// Name of the rejections counter family, without the `_total` suffix.
pub const BULKHEAD_REJECTIONS_METRIC: &str = "obskit_bulkhead_rejections";
/// Name of the in-flight gauge family.
pub const BULKHEAD_CONCURRENT_CALLS_METRIC: &str = "obskit_bulkhead_concurrent_calls";

/// Settings of a [`Bulkhead`].
///
/// The defaults, 25 concurrent calls and no wait, are those of Resilience4j's semaphore
/// bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// Maximum of calls running at once. At least 1.
    pub max_concurrent: usize,
    /// How long a call waits for a free permit before it is rejected; zero rejects at once.
    pub max_wait: Duration,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
        }
    }
}

/// Invalid bulkhead settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BulkheadConfigError {
    /// The bulkhead's name is empty.
    #[error("bulkhead name is empty; name it after the dependency it protects, like \"payments\"")]
    EmptyName,
    /// `max_concurrent` is 0 or above what a tokio semaphore holds.
    #[error("bulkhead max_concurrent {value} is invalid; set it from 1 to {max}")]
    MaxConcurrent {
        /// The rejected value.
        value: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// Registering the bulkhead metrics failed.
    #[error("registering the bulkhead metrics failed: {0}")]
    Metrics(#[from] MetricsError),
}

/// The rejection of a permit request: every permit was taken and none freed up in time.
///
/// It converts into [`Error::BulkheadFull`] with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkheadFull {
    /// The bulkhead's name.
    pub name: Arc<str>,
    /// The bulkhead's maximum of concurrent calls.
    pub max_concurrent: usize,
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bulkhead {:?} already runs its maximum of {} concurrent calls",
            self.name, self.max_concurrent
        )
    }
}

impl std::error::Error for BulkheadFull {}

impl<E> From<BulkheadFull> for Error<E> {
    fn from(full: BulkheadFull) -> Self {
        Error::BulkheadFull {
            name: full.name,
            max_concurrent: full.max_concurrent,
        }
    }
}

/// Limits the number of calls that run at once.
///
/// Clones share the permits.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::metrics::Registry;
/// use obskit::resilience::Error;
/// use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::default();
/// let config = BulkheadConfig { max_concurrent: 1, max_wait: Duration::ZERO };
/// let bulkhead = Bulkhead::with_registry("reports", config, &registry)?;
///
/// let only_permit = bulkhead.try_acquire()?;
/// let rejected = bulkhead.call(async { Ok::<_, std::io::Error>("report") }).await;
/// assert!(matches!(rejected, Err(Error::BulkheadFull { .. })));
///
/// drop(only_permit);
/// let report = bulkhead.call(async { Ok::<_, std::io::Error>("report") }).await?;
/// assert_eq!(report, "report");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    config: BulkheadConfig,
    semaphore: Arc<Semaphore>,
    rejections: Counter,
    concurrent_calls: Gauge,
}

impl Bulkhead {
    /// Creates a bulkhead named `name` that reports into [`Registry::global`].
    ///
    /// # Errors
    ///
    /// [`BulkheadConfigError`] naming the invalid setting, or
    /// [`BulkheadConfigError::Metrics`] if the metric families are registered differently.
    pub fn new(name: &str, config: BulkheadConfig) -> Result<Self, BulkheadConfigError> {
        Self::with_registry(name, config, Registry::global())
    }

    /// Creates a bulkhead named `name` that reports into `registry`.
    ///
    /// # Errors
    ///
    /// As [`Bulkhead::new`].
    pub fn with_registry(
        name: &str,
        config: BulkheadConfig,
        registry: &Registry,
    ) -> Result<Self, BulkheadConfigError> {
        if name.is_empty() {
            return Err(BulkheadConfigError::EmptyName);
        }
        if config.max_concurrent == 0 || config.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(BulkheadConfigError::MaxConcurrent {
                value: config.max_concurrent,
                max: Semaphore::MAX_PERMITS,
            });
        }
        let rejections = registry
            .get_or_register_counter_family(
                BULKHEAD_REJECTIONS_METRIC,
                "Calls rejected by a bulkhead because all its permits were taken.",
                ["name"],
            )?
            .get(&[name]);
        let concurrent_calls = registry
            .get_or_register_gauge_family(
                BULKHEAD_CONCURRENT_CALLS_METRIC,
                "Calls running inside a bulkhead now.",
                ["name"],
            )?
            .get(&[name]);

        Ok(Self {
            inner: Arc::new(Inner {
                name: name.into(),
                config,
                semaphore: Arc::new(Semaphore::new(config.max_concurrent)),
                rejections,
                concurrent_calls,
            }),
        })
    }

    /// Returns the bulkhead's name, the value of its `name` label.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Returns the settings the bulkhead was created with.
    pub fn config(&self) -> &BulkheadConfig {
        &self.inner.config
    }

    /// Returns the number of permits free now.
    pub fn available_permits(&self) -> usize {
        self.inner.semaphore.available_permits()
    }

    /// Takes a permit if one is free now, without waiting even if `max_wait` is set.
    ///
    /// # Errors
    ///
    /// [`BulkheadFull`] when every permit is taken; it is counted.
    pub fn try_acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        match Arc::clone(&self.inner.semaphore).try_acquire_owned() {
            Ok(permit) => Ok(self.admit(permit)),
            Err(_) => Err(self.reject()),
        }
    }

    /// Takes a permit, waiting up to `max_wait` for one to free up.
    ///
    /// # Errors
    ///
    /// [`BulkheadFull`] when no permit freed up within `max_wait`; it is counted.
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        if let Ok(permit) = self.try_acquire_quiet() {
            return Ok(permit);
        }
        if self.inner.config.max_wait.is_zero() {
            return Err(self.reject());
        }
        let wait = Arc::clone(&self.inner.semaphore).acquire_owned();
        match tokio::time::timeout(self.inner.config.max_wait, wait).await {
            Ok(Ok(permit)) => Ok(self.admit(permit)),
            // The semaphore is never closed, so only the timeout can end up here.
            Ok(Err(_)) | Err(_) => Err(self.reject()),
        }
    }

    /// Runs `future` under a permit, waiting up to `max_wait` for one.
    ///
    /// # Errors
    ///
    /// [`Error::BulkheadFull`] when no permit freed up in time, or the future's own error as
    /// [`Error::Inner`].
    pub async fn call<T, E>(
        &self,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Error<E>> {
        let _permit = self.acquire().await?;
        future.await.map_err(Error::Inner)
    }

    /// Runs `future`, whose own components may reject it, under a permit.
    ///
    /// # Errors
    ///
    /// [`Error::BulkheadFull`] when no permit freed up in time, or the future's error.
    pub async fn call_with_rejections<T, E>(
        &self,
        future: impl Future<Output = Result<T, Error<E>>>,
    ) -> Result<T, Error<E>> {
        let _permit = self.acquire().await?;
        future.await
    }

    fn try_acquire_quiet(&self) -> Result<BulkheadPermit, ()> {
        Arc::clone(&self.inner.semaphore)
            .try_acquire_owned()
            .map(|permit| self.admit(permit))
            .map_err(|_| ())
    }

    fn admit(&self, permit: OwnedSemaphorePermit) -> BulkheadPermit {
        self.inner.concurrent_calls.inc();
        BulkheadPermit {
            _permit: permit,
            concurrent_calls: self.inner.concurrent_calls.clone(),
        }
    }

    fn reject(&self) -> BulkheadFull {
        self.inner.rejections.inc();
        BulkheadFull {
            name: Arc::clone(&self.inner.name),
            max_concurrent: self.inner.config.max_concurrent,
        }
    }
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.inner.name)
            .field("max_concurrent", &self.inner.config.max_concurrent)
            .field("max_wait", &self.inner.config.max_wait)
            .field("available_permits", &self.available_permits())
            .finish()
    }
}

/// A slot in a [`Bulkhead`], given back when dropped. It may move to another task.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct BulkheadPermit {
    _permit: OwnedSemaphorePermit,
    concurrent_calls: Gauge,
}

impl Drop for BulkheadPermit {
    fn drop(&mut self) {
        self.concurrent_calls.dec();
    }
}

impl fmt::Debug for BulkheadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::oneshot;
    use tokio::time::Instant;

    use super::*;
    use crate::metrics::Format;

    fn bulkhead(max_concurrent: usize, max_wait: Duration) -> (Bulkhead, Registry) {
        let registry = Registry::default();
        let config = BulkheadConfig {
            max_concurrent,
            max_wait,
        };
        let bulkhead = Bulkhead::with_registry("db", config, &registry).unwrap();
        (bulkhead, registry)
    }

    fn sample(registry: &Registry, series: &str) -> f64 {
        let text = registry.encode(Format::PrometheusText).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.parse().unwrap())
    }

    #[test]
    fn permits_run_out_and_come_back() {
        let (bulkhead, registry) = bulkhead(2, Duration::ZERO);
        let first = bulkhead.try_acquire().unwrap();
        let second = bulkhead.try_acquire().unwrap();
        assert_eq!(
            sample(&registry, "obskit_bulkhead_concurrent_calls{name=\"db\"}"),
            2.0
        );
        let full = bulkhead.try_acquire().unwrap_err();
        assert_eq!(full.max_concurrent, 2);
        assert_eq!(
            full.to_string(),
            "bulkhead \"db\" already runs its maximum of 2 concurrent calls"
        );
        assert_eq!(
            sample(&registry, "obskit_bulkhead_rejections_total{name=\"db\"}"),
            1.0
        );
        drop(first);
        assert_eq!(bulkhead.available_permits(), 1);
        let third = bulkhead.try_acquire().unwrap();
        drop((second, third));
        assert_eq!(
            sample(&registry, "obskit_bulkhead_concurrent_calls{name=\"db\"}"),
            0.0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_wait_fails_fast() {
        let (bulkhead, registry) = bulkhead(1, Duration::ZERO);
        let _only_permit = bulkhead.acquire().await.unwrap();
        let start = Instant::now();
        let result = bulkhead.call(async { Ok::<_, ()>(()) }).await;
        assert!(matches!(
            result,
            Err(Error::BulkheadFull {
                max_concurrent: 1,
                ..
            })
        ));
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(
            sample(&registry, "obskit_bulkhead_rejections_total{name=\"db\"}"),
            1.0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_is_admitted_after_release_within_max_wait() {
        let (bulkhead, _registry) = bulkhead(1, Duration::from_millis(500));
        let only_permit = bulkhead.acquire().await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(only_permit);
        });
        let start = Instant::now();
        let value = bulkhead.call(async { Ok::<_, ()>(5) }).await.unwrap();
        assert_eq!(value, 5);
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        release.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_is_rejected_after_max_wait() {
        let (bulkhead, registry) = bulkhead(1, Duration::from_millis(300));
        let _only_permit = bulkhead.acquire().await.unwrap();
        let start = Instant::now();
        let rejected = bulkhead.acquire().await.unwrap_err();
        assert_eq!(&*rejected.name, "db");
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert_eq!(
            sample(&registry, "obskit_bulkhead_rejections_total{name=\"db\"}"),
            1.0
        );
    }

    #[tokio::test]
    async fn n_plus_first_concurrent_call_is_rejected() {
        let (bulkhead, registry) = bulkhead(3, Duration::ZERO);
        let mut releases = Vec::new();
        let mut running = Vec::new();
        for _ in 0..3 {
            let (release, wait) = oneshot::channel::<()>();
            releases.push(release);
            let bulkhead = bulkhead.clone();
            running.push(tokio::spawn(async move {
                bulkhead
                    .call(async move { wait.await.map_err(|_| "released") })
                    .await
            }));
        }
        while bulkhead.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            sample(&registry, "obskit_bulkhead_concurrent_calls{name=\"db\"}"),
            3.0
        );
        let fourth = bulkhead.call(async { Ok::<_, &str>(()) }).await;
        assert!(matches!(fourth, Err(Error::BulkheadFull { .. })));

        for release in releases {
            release.send(()).unwrap();
        }
        for task in running {
            assert!(task.await.unwrap().is_ok());
        }
        assert!(bulkhead.call(async { Ok::<_, &str>(()) }).await.is_ok());
        assert_eq!(
            sample(&registry, "obskit_bulkhead_rejections_total{name=\"db\"}"),
            1.0
        );
    }

    #[tokio::test]
    async fn dropped_call_gives_its_permit_back() {
        let (bulkhead, _registry) = bulkhead(1, Duration::ZERO);
        let started = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&started);
        let call = bulkhead.call(async move {
            flag.store(true, Ordering::Relaxed);
            std::future::pending::<Result<(), ()>>().await
        });
        let aborted = tokio::time::timeout(Duration::from_millis(10), call).await;
        assert!(aborted.is_err());
        assert!(started.load(Ordering::Relaxed));
        assert_eq!(bulkhead.available_permits(), 1);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let registry = Registry::default();
        let zero = BulkheadConfig {
            max_concurrent: 0,
            max_wait: Duration::ZERO,
        };
        let error = Bulkhead::with_registry("db", zero, &registry).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("bulkhead max_concurrent 0 is invalid; set it from 1 to"),
            "{error}"
        );
        let error = Bulkhead::with_registry("", BulkheadConfig::default(), &registry).unwrap_err();
        assert!(matches!(error, BulkheadConfigError::EmptyName));
    }
}
