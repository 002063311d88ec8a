//! Retry with exponential backoff, jitter, a deadline, `Retry-After` and a retry budget.
//!
//! A [`Retry`] runs an operation, and after each failure decides in this order:
//!
//! 1. Whether the error is retryable. The [`RetryPolicy::retry_if`] predicate judges the
//!    operation's own errors (all are retryable by default). Rejections of other components
//!    ([`Error::NotPermitted`], [`Error::RateLimited`], [`Error::BulkheadFull`]) are not
//!    retried unless [`RetryPolicy::retry_rejections`] is set, because retrying a local
//!    refusal only adds load. [`Error::Timeout`] is retried unless
//!    [`RetryPolicy::retry_timeouts`] is turned off.
//! 2. Whether an attempt is left: `max_attempts` counts every attempt, the first included.
//! 3. The delay: the next backoff delay ([`Backoff`]), raised to the `Retry-After` the error
//!    carries, from the [`RetryPolicy::retry_after`] hook or the rejection's own
//!    `retry_after`.
//! 4. Whether the sleep fits the deadline `max_elapsed`, measured from the start of the call.
//!    A sleep that would end after it, rounded up to tokio's 1 ms timer resolution, is not
//!    taken and the call stops, so no attempt starts after the deadline.
//! 5. Whether the [`RetryBudget`], if any, has a retry left.
//!
//! When any step stops the call, it returns the last error unchanged.
//!
//! The loop is backon's `Retry` future, sleeping with tokio's timer, with the steps above in
//! its `adjust` hook.
//!
//! # Metrics
//!
//! | Metric | Labels | Meaning |
//! |---|---|---|
//! | `obskit_retry_attempts_total` | `name`, `outcome` | Attempts, each counted once by its outcome |
//! | `obskit_retry_budget_exhausted_total` | `name` | Retries not made because the budget was empty |
//!
//! `outcome` is one of:
//!
//! - `success`: the attempt succeeded;
//! - `retry`: the attempt failed and another attempt follows after a sleep;
//! - `exhausted`: the attempt failed and no attempt or no time before the deadline is left;
//! - `not_retryable`: the predicate rejected the error, or it is a rejection not retried;
//! - `budget_exhausted`: the attempt failed and the budget had no retry left.
//!
//! # Limitations
//!
//! - An attempt that is running when the deadline passes is not cut short: wrap it in a
//!   [`Timeout`](super::timeout::Timeout) for that.
//! - Without `max_elapsed`, a `Retry-After` is honoured however long it is.

mod backoff;
mod budget;
mod retry_after;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use tokio::time::Instant;

pub use backoff::{Backoff, Delays, Jitter};
pub use budget::{RetryBudget, RetryBudgetConfig};
pub use retry_after::{parse_retry_after, parse_retry_after_at, retry_after_from_headers};

use super::Error;
use crate::metrics::{Counter, MetricsError, Registry};

/// Name of the attempts counter family, without the `_total` suffix.
pub const RETRY_ATTEMPTS_METRIC: &str = "obskit_retry_attempts";
/// Name of the budget exhaustion counter family, without the `_total` suffix.
pub const RETRY_BUDGET_EXHAUSTED_METRIC: &str = "obskit_retry_budget_exhausted";

/// Invalid retry, backoff or budget settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetryConfigError {
    /// The retry's name is empty.
    #[error("retry name is empty; name it after the operation it retries, like \"payments\"")]
    EmptyName,
    /// `max_attempts` is 0.
    #[error(
        "max_attempts is 0; set it to 1 for no retries, or to the total number of attempts including the first"
    )]
    ZeroMaxAttempts,
    /// The base delay is zero, so the exponential sequence would stay at zero.
    #[error("base_delay is 0s; set it to the first retry's delay, for example 100ms")]
    ZeroBaseDelay,
    /// The maximum delay is shorter than the base delay.
    #[error(
        "max_delay {max_delay:?} is shorter than base_delay {base_delay:?}; raise max_delay to at least base_delay"
    )]
    MaxDelayBelowBase {
        /// The maximum delay.
        max_delay: Duration,
        /// The base delay.
        base_delay: Duration,
    },
    /// `max_elapsed` is zero, which would allow no retry at all.
    #[error("max_elapsed is 0s; leave it unset for no deadline, or set it above 0s")]
    ZeroMaxElapsed,
    /// The budget's time-to-live is outside 1 s to 60 s.
    #[error("retry budget ttl {ttl:?} is invalid; set it between 1s and 60s")]
    BudgetTtl {
        /// The time-to-live.
        ttl: Duration,
    },
    /// The budget's retry ratio is not a number from 0 to 1000.
    #[error(
        "retry budget retry_ratio {retry_ratio} is invalid; set it from 0 to 1000, for example 0.2 for one retry per five calls"
    )]
    BudgetRatio {
        /// The ratio.
        retry_ratio: f64,
    },
    /// Registering the retry metrics failed.
    #[error("registering the retry metrics failed: {0}")]
    Metrics(#[from] MetricsError),
}

type Predicate<E> = Arc<dyn Fn(&E) -> bool + Send + Sync>;
type RetryAfterHook<E> = Arc<dyn Fn(&E) -> Option<Duration> + Send + Sync>;

/// The settings of a [`Retry`]: attempts, backoff, deadline and which errors to retry.
///
/// | Setting | Default |
/// |---|---|
/// | `max_attempts` (attempts in all, the first included) | 3 |
/// | `base_delay` | 100 ms |
/// | `max_delay` | 10 s |
/// | `jitter` | [`Jitter::Full`] |
/// | `max_elapsed` (deadline from the start of the call) | none |
/// | `retry_if` | every error of the operation |
/// | `retry_after` | none |
/// | `retry_rejections` | false |
/// | `retry_timeouts` | true |
///
/// The settings are checked by [`Retry::new`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::resilience::retry::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::<std::io::Error>::new()
///     .max_attempts(5)
///     .base_delay(Duration::from_millis(50))
///     .max_delay(Duration::from_secs(2))
///     .jitter(Jitter::Decorrelated)
///     .max_elapsed(Duration::from_secs(5))
///     .retry_if(|error| error.kind() != std::io::ErrorKind::InvalidInput);
/// assert_eq!(policy.get_max_attempts(), 5);
/// ```
pub struct RetryPolicy<E> {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    jitter: Jitter,
    max_elapsed: Option<Duration>,
    retry_rejections: bool,
    retry_timeouts: bool,
    retry_if: Option<Predicate<E>>,
    retry_after: Option<RetryAfterHook<E>>,
}

impl<E> RetryPolicy<E> {
    /// Returns the default policy.
    pub fn new() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            jitter: Jitter::Full,
            max_elapsed: None,
            retry_rejections: false,
            retry_timeouts: true,
            retry_if: None,
            retry_after: None,
        }
    }

    /// Sets the number of attempts in all, the first included; 1 means no retry.
    #[must_use]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the delay the backoff grows from.
    #[must_use]
    pub fn base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// Sets the cap of every backoff delay. A `Retry-After` may ask for longer.
    #[must_use]
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets how delays are randomized.
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets a deadline from the start of the call: no sleep extends past it, so no attempt
    /// starts after it.
    #[must_use]
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = Some(max_elapsed);
        self
    }

    /// Sets the predicate that decides whether an error of the operation is worth retrying.
    #[must_use]
    pub fn retry_if(mut self, predicate: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        self.retry_if = Some(Arc::new(predicate));
        self
    }

    /// Sets the hook that reads a `Retry-After` delay from an error of the operation, for
    /// example with [`retry_after_from_headers`] on a 429 or 503 response. The next sleep is
    /// then at least that delay.
    #[must_use]
    pub fn retry_after(
        mut self,
        hook: impl Fn(&E) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        self.retry_after = Some(Arc::new(hook));
        self
    }

    /// Sets whether [`Error::NotPermitted`], [`Error::RateLimited`] and
    /// [`Error::BulkheadFull`] are retried, each after at least its `retry_after`.
    #[must_use]
    pub fn retry_rejections(mut self, retry: bool) -> Self {
        self.retry_rejections = retry;
        self
    }

    /// Sets whether [`Error::Timeout`] is retried.
    #[must_use]
    pub fn retry_timeouts(mut self, retry: bool) -> Self {
        self.retry_timeouts = retry;
        self
    }

    /// Returns the number of attempts in all, the first included.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Returns the deadline from the start of the call, if any.
    pub fn get_max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    fn check(&self) -> Result<Backoff, RetryConfigError> {
        if self.max_attempts == 0 {
            return Err(RetryConfigError::ZeroMaxAttempts);
        }
        if self.max_elapsed.is_some_and(|max| max.is_zero()) {
            return Err(RetryConfigError::ZeroMaxElapsed);
        }
        Backoff::new(self.base_delay, self.max_delay, self.jitter)
    }
}

impl<E> Default for RetryPolicy<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Clone for RetryPolicy<E> {
    fn clone(&self) -> Self {
        Self {
            retry_if: self.retry_if.clone(),
            retry_after: self.retry_after.clone(),
            ..*self
        }
    }
}

impl<E> fmt::Debug for RetryPolicy<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("max_elapsed", &self.max_elapsed)
            .field("retry_rejections", &self.retry_rejections)
            .field("retry_timeouts", &self.retry_timeouts)
            .field("retry_if", &self.retry_if.is_some())
            .field("retry_after", &self.retry_after.is_some())
            .finish()
    }
}

/// The outcome of one attempt, as the `outcome` label shows it.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Success,
    Retry,
    Exhausted,
    NotRetryable,
    BudgetExhausted,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::Retry,
        Outcome::Exhausted,
        Outcome::NotRetryable,
        Outcome::BudgetExhausted,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Retry => "retry",
            Outcome::Exhausted => "exhausted",
            Outcome::NotRetryable => "not_retryable",
            Outcome::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// The counters of one retry name, resolved once.
#[derive(Debug)]
struct Metrics {
    attempts: [Counter; Outcome::ALL.len()],
    budget_exhausted: Counter,
}

impl Metrics {
    fn register(registry: &Registry, name: &str) -> Result<Self, MetricsError> {
        let attempts = registry.get_or_register_counter_family(
            RETRY_ATTEMPTS_METRIC,
            "Attempts of calls through a retry, by outcome: success, retry, exhausted, not_retryable or budget_exhausted.",
            ["name", "outcome"],
        )?;
        let budget_exhausted = registry.get_or_register_counter_family(
            RETRY_BUDGET_EXHAUSTED_METRIC,
            "Retries not made because the retry budget was empty.",
            ["name"],
        )?;
        Ok(Self {
            attempts: Outcome::ALL.map(|outcome| attempts.get(&[name, outcome.as_str()])),
            budget_exhausted: budget_exhausted.get(&[name]),
        })
    }

    #[inline]
    fn count(&self, outcome: Outcome) {
        if let Some(counter) = self.attempts.get(outcome as usize) {
            counter.inc();
        }
    }
}

/// The verdict of the predicate or the rejection rules on a failed attempt, before
/// attempts, deadline and budget are checked.
#[derive(Clone, Copy)]
enum Decision {
    Stop,
    Retry { at_least: Option<Duration> },
}

struct Shared<E> {
    name: Arc<str>,
    policy: RetryPolicy<E>,
    backoff: Backoff,
    metrics: Metrics,
}

/// Retries an async operation under a [`RetryPolicy`], optionally within a [`RetryBudget`].
///
/// Clones share the policy, the metrics and the budget. See the [module docs](self) for the
/// order of decisions and the metrics.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use obskit::metrics::{Format, Registry};
/// use obskit::resilience::retry::{Retry, RetryBudget, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::default();
/// let policy = RetryPolicy::new().max_attempts(4).base_delay(Duration::from_millis(20));
/// let retry = Retry::with_registry("inventory", policy, &registry)?
///     .with_budget(RetryBudget::default());
///
/// let calls = AtomicU32::new(0);
/// let stock = retry
///     .call(|| async {
///         if calls.fetch_add(1, Ordering::Relaxed) < 2 {
///             Err(std::io::Error::other("connection reset"))
///         } else {
///             Ok(12)
///         }
///     })
///     .await?;
/// assert_eq!(stock, 12);
///
/// let text = registry.encode(Format::PrometheusText)?;
/// assert!(text.contains(r#"obskit_retry_attempts_total{name="inventory",outcome="retry"} 2"#));
/// # Ok(())
/// # }
/// ```
pub struct Retry<E> {
    shared: Arc<Shared<E>>,
    budget: Option<RetryBudget>,
}

impl<E> Retry<E> {
    /// Creates a retry named `name` that counts into [`Registry::global`].
    ///
    /// # Errors
    ///
    /// [`RetryConfigError`] naming the invalid setting, or
    /// [`RetryConfigError::Metrics`] if the metric families are registered differently.
    pub fn new(name: &str, policy: RetryPolicy<E>) -> Result<Self, RetryConfigError> {
        Self::with_registry(name, policy, Registry::global())
    }

    /// Creates a retry named `name` that counts into `registry`.
    ///
    /// # Errors
    ///
    /// As [`Retry::new`].
    pub fn with_registry(
        name: &str,
        policy: RetryPolicy<E>,
        registry: &Registry,
    ) -> Result<Self, RetryConfigError> {
        if name.is_empty() {
            return Err(RetryConfigError::EmptyName);
        }
        let backoff = policy.check()?;
        let metrics = Metrics::register(registry, name)?;
        Ok(Self {
            shared: Arc::new(Shared {
                name: name.into(),
                policy,
                backoff,
                metrics,
            }),
            budget: None,
        })
    }

    /// Limits retries with `budget`, which other retries may share.
    #[must_use]
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Returns the retry's name, the value of its `name` label.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Returns the policy the retry applies.
    pub fn policy(&self) -> &RetryPolicy<E> {
        &self.shared.policy
    }

    /// Returns the budget the retry draws from, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// Runs `operation` until it succeeds or the policy stops it, and returns its result.
    ///
    /// Each error of the operation comes back as [`Error::Inner`].
    ///
    /// # Errors
    ///
    /// The operation's last error, as [`Error::Inner`].
    pub async fn call<T, F, Fut>(&self, operation: F) -> Result<T, Error<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(operation, |error: &E| self.decide_inner(error))
            .await
            .map_err(Error::Inner)
    }

    /// Runs `operation`, whose own components may reject it, until it succeeds or the policy
    /// stops it.
    ///
    /// This is the form for a retry around a breaker, a rate limiter, a timeout or a
    /// bulkhead: their rejections are retried as [`RetryPolicy::retry_rejections`] and
    /// [`RetryPolicy::retry_timeouts`] set.
    ///
    /// # Errors
    ///
    /// The last error: the operation's own as [`Error::Inner`], or the last rejection.
    pub async fn call_with_rejections<T, F, Fut>(&self, operation: F) -> Result<T, Error<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        self.run(operation, |error: &Error<E>| self.decide(error))
            .await
    }

    async fn run<T, X, F, Fut>(&self, operation: F, decide: impl Fn(&X) -> Decision) -> Result<T, X>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, X>>,
    {
        let shared = &*self.shared;
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        let deadline = shared
            .policy
            .max_elapsed
            .and_then(|max| Instant::now().checked_add(max));
        let retries =
            usize::try_from(shared.policy.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let mut attempt: u32 = 0;

        let result = operation
            .retry(shared.backoff.delays().take(retries))
            .adjust(|error: &X, backoff: Option<Duration>| {
                attempt = attempt.saturating_add(1);
                let delay = self.next_delay(decide(error), backoff, deadline)?;
                tracing::debug!(
                    target: "obskit::resilience",
                    retry = %shared.name,
                    attempt,
                    delay = ?delay,
                    "attempt failed, retrying"
                );
                Some(delay)
            })
            .await;

        if result.is_ok() {
            shared.metrics.count(Outcome::Success);
        }
        result
    }

    /// Returns the sleep before the next attempt, or `None` to stop, and counts the outcome
    /// of the attempt that failed.
    fn next_delay(
        &self,
        decision: Decision,
        backoff: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        let metrics = &self.shared.metrics;
        let Decision::Retry { at_least } = decision else {
            metrics.count(Outcome::NotRetryable);
            return None;
        };
        let Some(backoff) = backoff else {
            metrics.count(Outcome::Exhausted);
            return None;
        };

        let delay = at_least.map_or(backoff, |at_least| at_least.max(backoff));
        if deadline.is_some_and(|deadline| !sleep_fits(delay, deadline)) {
            metrics.count(Outcome::Exhausted);
            return None;
        }

        if self
            .budget
            .as_ref()
            .is_some_and(|budget| !budget.withdraw())
        {
            metrics.count(Outcome::BudgetExhausted);
            metrics.budget_exhausted.inc();
            tracing::debug!(
                target: "obskit::resilience",
                retry = %self.shared.name,
                "retry budget exhausted, returning the last error"
            );
            return None;
        }

        metrics.count(Outcome::Retry);
        Some(delay)
    }

    fn decide_inner(&self, error: &E) -> Decision {
        let policy = &self.shared.policy;
        if policy
            .retry_if
            .as_ref()
            .is_some_and(|retry_if| !retry_if(error))
        {
            return Decision::Stop;
        }
        Decision::Retry {
            at_least: policy.retry_after.as_ref().and_then(|hook| hook(error)),
        }
    }

    fn decide(&self, error: &Error<E>) -> Decision {
        let policy = &self.shared.policy;
        match error {
            Error::Inner(inner) => self.decide_inner(inner),
            Error::NotPermitted { .. } | Error::RateLimited { .. } | Error::BulkheadFull { .. } => {
                if policy.retry_rejections {
                    Decision::Retry {
                        at_least: error.retry_after(),
                    }
                } else {
                    Decision::Stop
                }
            }
            Error::Timeout { .. } => {
                if policy.retry_timeouts {
                    Decision::Retry { at_least: None }
                } else {
                    Decision::Stop
                }
            }
        }
    }
}

/// Returns whether a sleep of `delay` from now ends by `deadline`. The delay is rounded up
/// to a whole millisecond, because tokio's timer wakes on millisecond ticks.
fn sleep_fits(delay: Duration, deadline: Instant) -> bool {
    let millis = u64::try_from(delay.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    Instant::now()
        .checked_add(Duration::from_millis(millis))
        .is_some_and(|wake| wake <= deadline)
}

impl<E> Clone for Retry<E> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            budget: self.budget.clone(),
        }
    }
}

impl<E> fmt::Debug for Retry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.shared.name)
            .field("policy", &self.shared.policy)
            .field("budget", &self.budget)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests;
