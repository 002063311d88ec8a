//! Per-call timeout that cancels the inner future.
//!
//! A [`Timeout`] polls the call's future first and starts its timer only when the future
//! returns `Pending`, so a call that completes in its first poll reads no clock and creates
//! no timer. When the timer fires first, the future is dropped at once, which cancels it, and
//! the call returns [`Error::Timeout`].
//!
//! # Metrics
//!
//! | Metric | Labels | Meaning |
//! |---|---|---|
//! | `obskit_timeouts_total` | `name` | Calls cancelled because they did not finish in time |
//!
//! # Limitations
//!
//! - The timer starts at the end of the future's first poll, so time spent inside that
//!   first poll is not counted. A future that blocks its thread cannot be cut short anyway.
//! - Tokio's timer has a resolution of 1 ms, so a timeout fires up to 1 ms late.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::Error;
use crate::metrics::{Counter, MetricsError, Registry};

/// Name of the timeouts counter family, without the `_total` suffix.
pub const TIMEOUTS_METRIC: &str = "obskit_timeouts";

/// Invalid timeout settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimeoutConfigError {
    /// The timeout's name is empty.
    #[error("timeout name is empty; name it after the call it limits, like \"payments\"")]
    EmptyName,
    /// The time limit is zero, which would cancel every call that does not finish at once.
    #[error("timeout is 0s; set it to the longest time the call may take, for example 2s")]
    Zero,
    /// Registering the timeout metric failed.
    #[error("registering the timeout metric failed: {0}")]
    Metrics(#[from] MetricsError),
}

/// Cancels a call that does not finish within a time limit.
///
/// Clones share the metric.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::metrics::Registry;
/// use obskit::resilience::{Error, timeout::Timeout};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::default();
/// let timeout = Timeout::with_registry("search", Duration::from_millis(200), &registry)?;
///
/// let fast = timeout.call(async { Ok::<_, std::io::Error>(3) }).await?;
/// assert_eq!(fast, 3);
///
/// let slow = timeout
///     .call(async {
///         tokio::time::sleep(Duration::from_secs(5)).await;
///         Ok::<_, std::io::Error>(4)
///     })
///     .await;
/// assert!(matches!(slow, Err(Error::Timeout { .. })));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Timeout {
    name: Arc<str>,
    timeout: Duration,
    timeouts: Counter,
}

impl Timeout {
    /// Creates a timeout named `name` of `timeout` that counts into [`Registry::global`].
    ///
    /// # Errors
    ///
    /// [`TimeoutConfigError`] naming the invalid setting, or
    /// [`TimeoutConfigError::Metrics`] if the metric family is registered differently.
    pub fn new(name: &str, timeout: Duration) -> Result<Self, TimeoutConfigError> {
        Self::with_registry(name, timeout, Registry::global())
    }

    /// Creates a timeout named `name` of `timeout` that counts into `registry`.
    ///
    /// # Errors
    ///
    /// As [`Timeout::new`].
    pub fn with_registry(
        name: &str,
        timeout: Duration,
        registry: &Registry,
    ) -> Result<Self, TimeoutConfigError> {
        if name.is_empty() {
            return Err(TimeoutConfigError::EmptyName);
        }
        if timeout.is_zero() {
            return Err(TimeoutConfigError::Zero);
        }
        let timeouts = registry
            .get_or_register_counter_family(
                TIMEOUTS_METRIC,
                "Calls cancelled because they did not finish within their timeout.",
                ["name"],
            )?
            .get(&[name]);
        Ok(Self {
            name: name.into(),
            timeout,
            timeouts,
        })
    }

    /// Returns the timeout's name, the value of its `name` label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `future` and cancels it if it has not finished within the time limit.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the time limit passed first, or the future's own error as
    /// [`Error::Inner`].
    pub async fn call<T, E>(
        &self,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Error<E>> {
        match self.limit(future).await {
            Some(result) => result.map_err(Error::Inner),
            None => Err(self.timed_out()),
        }
    }

    /// Runs `future`, whose own components may reject it, and cancels it if it has not
    /// finished within the time limit.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the time limit passed first, or the future's error.
    pub async fn call_with_rejections<T, E>(
        &self,
        future: impl Future<Output = Result<T, Error<E>>>,
    ) -> Result<T, Error<E>> {
        match self.limit(future).await {
            Some(result) => result,
            None => Err(self.timed_out()),
        }
    }

    fn limit<F: Future>(&self, future: F) -> Limited<F> {
        Limited {
            future: Some(future),
            sleep: None,
            timeout: self.timeout,
        }
    }

    fn timed_out<E>(&self) -> Error<E> {
        self.timeouts.inc();
        Error::Timeout {
            name: Arc::clone(&self.name),
            timeout: self.timeout,
        }
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

pin_project! {
    /// A future that returns `None` when `timeout` passes first; the timer starts at the
    /// first `Pending` of the inner future.
    struct Limited<F> {
        #[pin]
        future: Option<F>,
        #[pin]
        sleep: Option<Sleep>,
        timeout: Duration,
    }
}

impl<F: Future> Future for Limited<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();

        let Some(future) = this.future.as_mut().as_pin_mut() else {
            // Polled again after it finished: stay timed out rather than panic.
            return Poll::Ready(None);
        };
        if let Poll::Ready(output) = future.poll(cx) {
            this.future.set(None);
            return Poll::Ready(Some(output));
        }

        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.timeout)));
        }
        let fired = this
            .sleep
            .as_mut()
            .as_pin_mut()
            .is_some_and(|sleep| sleep.poll(cx).is_ready());
        if fired {
            // Dropping the inner future here cancels it before the caller sees the timeout.
            this.future.set(None);
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::time::Instant;

    use super::*;
    use crate::metrics::Format;

    /// Sets its flag when dropped, to prove that the future holding it was cancelled.
    struct DropGuard(Arc<AtomicBool>);

    impl Drop for DropGuard {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn timeouts(registry: &Registry, name: &str) -> u64 {
        let text = registry.encode(Format::PrometheusText).unwrap();
        let series = format!("obskit_timeouts_total{{name=\"{name}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |value| value.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn slow_call_is_cancelled_and_counted() {
        let registry = Registry::default();
        let timeout =
            Timeout::with_registry("search", Duration::from_millis(250), &registry).unwrap();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropGuard(Arc::clone(&dropped));
        let finished = Arc::new(AtomicBool::new(false));
        let finished_flag = Arc::clone(&finished);

        let start = Instant::now();
        let future = timeout.call(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(10)).await;
            finished_flag.store(true, Ordering::SeqCst);
            Ok::<_, ()>(())
        });
        let result = future.await;

        assert!(matches!(
            result,
            Err(Error::Timeout { ref name, timeout }) if &**name == "search" && timeout == Duration::from_millis(250)
        ));
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        assert!(dropped.load(Ordering::SeqCst));
        assert!(!finished.load(Ordering::SeqCst));
        assert_eq!(timeouts(&registry, "search"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn inner_future_is_dropped_before_timeout_is_returned() {
        let registry = Registry::default();
        let timeout =
            Timeout::with_registry("eager", Duration::from_millis(10), &registry).unwrap();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropGuard(Arc::clone(&dropped));
        let mut limited = std::pin::pin!(timeout.limit(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        let output = std::future::poll_fn(|cx| limited.as_mut().poll(cx)).await;
        assert!(output.is_none());
        // The Limited future is still alive, so only an eager drop explains the flag.
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn fast_call_passes_through() {
        let registry = Registry::default();
        let timeout =
            Timeout::with_registry("fast", Duration::from_millis(100), &registry).unwrap();
        let ready = timeout.call(async { Ok::<_, &str>(1) }).await;
        assert_eq!(ready.unwrap(), 1);

        let waited = timeout
            .call(async {
                tokio::time::sleep(Duration::from_millis(99)).await;
                Err::<(), _>("refused")
            })
            .await;
        assert!(matches!(waited, Err(Error::Inner("refused"))));
        assert_eq!(timeouts(&registry, "fast"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn rejection_form_keeps_inner_rejections() {
        let registry = Registry::default();
        let timeout = Timeout::with_registry("layered", Duration::from_secs(1), &registry).unwrap();
        let result = timeout
            .call_with_rejections(async {
                Err::<(), Error<()>>(Error::BulkheadFull {
                    name: "pool".into(),
                    max_concurrent: 2,
                })
            })
            .await;
        assert!(matches!(
            result,
            Err(Error::BulkheadFull {
                max_concurrent: 2,
                ..
            })
        ));
        let slow = timeout
            .call_with_rejections(std::future::pending::<Result<(), Error<()>>>())
            .await;
        assert!(matches!(slow, Err(Error::Timeout { .. })));
        assert_eq!(timeouts(&registry, "layered"), 1);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let registry = Registry::default();
        let error = Timeout::with_registry("search", Duration::ZERO, &registry).unwrap_err();
        assert!(matches!(error, TimeoutConfigError::Zero));
        let error = Timeout::with_registry("", Duration::from_secs(1), &registry).unwrap_err();
        assert!(matches!(error, TimeoutConfigError::EmptyName));
    }
}
