//! A policy composes a retry, a circuit breaker, a rate limiter, a timeout and a bulkhead
//! around one call, in Resilience4j's order.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::Error;
use super::breaker::{CircuitBreaker, Outcome, Permit};
use super::bulkhead::Bulkhead;
use super::rate_limit::RateLimiter;
use super::retry::Retry;
use super::timeout::Timeout;

type Classifier<E> = dyn Fn(&E) -> Outcome + Send + Sync;

/// Retry, circuit breaker, rate limiter, timeout and bulkhead around one call.
///
/// Each part is optional. They always nest in this order, outermost first:
///
/// ```text
/// retry( circuit_breaker( rate_limiter( timeout( bulkhead( call )))))
/// ```
///
/// - The retry receives every attempt's outcome, so one call may make several attempts, each of
///   them through the breaker. It does not retry a breaker's or rate limiter's rejection unless
///   its policy says [`retry_rejections`](super::retry::RetryPolicy::retry_rejections).
/// - The breaker records each attempt that got past it: the call's own error as the classifier
///   says (every error is a failure by default), a timeout as a failure, and a rate limiter or
///   bulkhead rejection as ignored, since a local rejection says nothing about the dependency.
/// - The rate limiter spends a token only on attempts the breaker let through.
/// - The timeout covers the wait for a bulkhead slot and the call.
///
/// Cheap to clone: clones share every part.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::metrics::Registry;
/// use obskit::resilience::{Error, Policy};
/// use obskit::resilience::breaker::CircuitBreaker;
/// use obskit::resilience::retry::{Retry, RetryPolicy};
/// use obskit::resilience::timeout::Timeout;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::default();
/// let policy = Policy::builder("payments")
///     .retry(Retry::with_registry("payments", RetryPolicy::new().max_attempts(3), &registry)?)
///     .circuit_breaker(CircuitBreaker::builder("payments").registry(&registry).build()?)
///     .timeout(Timeout::with_registry("payments", Duration::from_secs(1), &registry)?)
///     .build();
///
/// let paid: Result<u64, Error<std::io::Error>> = policy.call(|| async { Ok(42) }).await;
/// assert_eq!(paid?, 42);
/// # Ok(())
/// # }
/// ```
pub struct Policy<E> {
    inner: Arc<Parts<E>>,
}

struct Parts<E> {
    name: Arc<str>,
    retry: Option<Retry<E>>,
    breaker: Option<CircuitBreaker>,
    limiter: Option<Arc<RateLimiter>>,
    timeout: Option<Timeout>,
    bulkhead: Option<Bulkhead>,
    classify: Option<Box<Classifier<E>>>,
}

impl<E> Clone for Policy<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E> fmt::Debug for Policy<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = &*self.inner;
        f.debug_struct("Policy")
            .field("name", &parts.name)
            .field("retry", &parts.retry.as_ref().map(Retry::name))
            .field(
                "circuit_breaker",
                &parts.breaker.as_ref().map(CircuitBreaker::name),
            )
            .field(
                "rate_limiter",
                &parts.limiter.as_ref().map(|l| l.name().to_owned()),
            )
            .field("timeout", &parts.timeout.as_ref().map(Timeout::timeout))
            .field("bulkhead", &parts.bulkhead.as_ref().map(Bulkhead::name))
            .finish()
    }
}

impl<E> Policy<E> {
    /// Starts a policy named `name`, with no parts yet.
    pub fn builder(name: impl Into<String>) -> PolicyBuilder<E> {
        PolicyBuilder {
            parts: Parts {
                name: name.into().into(),
                retry: None,
                breaker: None,
                limiter: None,
                timeout: None,
                bulkhead: None,
                classify: None,
            },
        }
    }

    /// Returns the policy's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Returns the circuit breaker, when the policy has one.
    pub fn circuit_breaker(&self) -> Option<&CircuitBreaker> {
        self.inner.breaker.as_ref()
    }

    /// Runs the call that `operation` makes through every part of the policy. `operation` is
    /// called once per attempt.
    ///
    /// # Errors
    ///
    /// The last attempt's error: the call's own as [`Error::Inner`], or the rejection of the
    /// part that rejected it.
    pub async fn call<T, F, Fut>(&self, mut operation: F) -> Result<T, Error<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // The breaker and the limiter decide before `operation` is called, so a rejected
        // attempt never builds the call.
        let mut attempt = || {
            let admitted = self.admit().map(|permit| (permit, operation()));
            async move {
                let (permit, call) = admitted?;
                self.run(permit, call).await
            }
        };
        match &self.inner.retry {
            Some(retry) => retry.call_with_rejections(attempt).await,
            None => attempt().await,
        }
    }

    /// Takes a breaker permit and a rate limiter token for one attempt.
    fn admit(&self) -> Result<Option<Permit<'_>>, Error<E>> {
        let parts = &*self.inner;
        let permit = match &parts.breaker {
            Some(breaker) => Some(breaker.try_acquire()?),
            None => None,
        };
        if let Some(limiter) = &parts.limiter
            && let Err(rejection) = limiter.check()
        {
            // Dropping the permit records nothing and frees a half-open probe slot.
            drop(permit);
            return Err(rejection.map_inner(|never: Infallible| match never {}));
        }
        Ok(permit)
    }

    /// Runs one admitted attempt under the timeout and the bulkhead, and records its outcome
    /// in the breaker.
    async fn run<T>(
        &self,
        permit: Option<Permit<'_>>,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Error<E>> {
        let parts = &*self.inner;
        let result = match (&parts.timeout, &parts.bulkhead) {
            (Some(timeout), Some(bulkhead)) => {
                timeout.call_with_rejections(bulkhead.call(call)).await
            }
            (Some(timeout), None) => timeout.call(call).await,
            (None, Some(bulkhead)) => bulkhead.call(call).await,
            (None, None) => call.await.map_err(Error::Inner),
        };
        if let Some(permit) = permit {
            permit.record(self.outcome(&result));
        }
        result
    }

    fn outcome<T>(&self, result: &Result<T, Error<E>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(Error::Inner(error)) => match &self.inner.classify {
                Some(classify) => classify(error),
                None => Outcome::Failure,
            },
            Err(Error::Timeout { .. }) => Outcome::Failure,
            Err(_) => Outcome::Ignored,
        }
    }
}

/// Builds a [`Policy`]. Every part is optional; the order in which they are added does not
/// matter.
pub struct PolicyBuilder<E> {
    parts: Parts<E>,
}

impl<E> fmt::Debug for PolicyBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBuilder")
            .field("name", &self.parts.name)
            .finish_non_exhaustive()
    }
}

impl<E> PolicyBuilder<E> {
    /// Retries failed attempts.
    pub fn retry(mut self, retry: Retry<E>) -> Self {
        self.parts.retry = Some(retry);
        self
    }

    /// Lets attempts through only while `breaker` permits them, and records their outcomes.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.parts.breaker = Some(breaker);
        self
    }

    /// Spends one token of `limiter` per attempt.
    pub fn rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.parts.limiter = Some(limiter);
        self
    }

    /// Cancels an attempt that takes longer than `timeout`, bulkhead wait included.
    pub fn timeout(mut self, timeout: Timeout) -> Self {
        self.parts.timeout = Some(timeout);
        self
    }

    /// Limits concurrent attempts.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.parts.bulkhead = Some(bulkhead);
        self
    }

    /// Decides how the breaker records each of the call's own errors. Without it every error
    /// is a failure.
    pub fn classify(mut self, classify: impl Fn(&E) -> Outcome + Send + Sync + 'static) -> Self {
        self.parts.classify = Some(Box::new(classify));
        self
    }

    /// Finishes the policy.
    pub fn build(self) -> Policy<E> {
        Policy {
            inner: Arc::new(self.parts),
        }
    }
}
