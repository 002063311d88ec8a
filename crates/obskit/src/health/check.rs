//! The `Check` trait, check errors and the result of one check execution.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

/// A boxed, sendable future, as returned by [`Check::check`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One health check: an asynchronous test of a dependency or of the process itself.
///
/// Closures returning a future implement `Check`, so most checks need no type of their own.
/// The future must be `'static`: clone what it needs into an `async move` block.
///
/// # Example
///
/// ```
/// use obskit::health::{Check, CheckError};
///
/// let pool = std::sync::Arc::new(42_u32);
/// let check = move || {
///     let pool = pool.clone();
///     async move {
///         if *pool == 42 { Ok(()) } else { Err(CheckError::new("pool is empty")) }
///     }
/// };
/// fn assert_check(_: &impl Check) {}
/// assert_check(&check);
/// ```
pub trait Check: Send + Sync + 'static {
    /// Runs the check once. `Ok(())` means the dependency is healthy.
    ///
    /// The registry applies the timeout, so the future does not need its own. It may be dropped
    /// at any `.await` when the timeout expires.
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>>;
}

impl<F, Fut> Check for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CheckError>> + Send + 'static,
{
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(self())
    }
}

/// Reason a check failed.
///
/// The message is shown in responses only when `health.expose_details` is true; it is always
/// logged at WARN when the check starts failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    message: Cow<'static, str>,
}

impl CheckError {
    /// Creates an error with a message such as `"connection refused by 10.0.0.5:5432"`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Creates an error from any error value, keeping its `Display` text and its sources.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }

    /// Returns the failure message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CheckError {}

impl From<std::io::Error> for CheckError {
    fn from(error: std::io::Error) -> Self {
        Self::from_error(&error)
    }
}

impl From<String> for CheckError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&'static str> for CheckError {
    fn from(message: &'static str) -> Self {
        Self::new(message)
    }
}

/// Status of a check or of a whole probe, as in the IETF health check response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Healthy.
    Pass,
    /// Healthy with concerns: a non-critical check failed.
    Warn,
    /// Unhealthy: a critical check failed or a gate (startup, shutdown) is closed.
    Fail,
}

impl Status {
    /// Returns the lowercase name used in response bodies: `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }

    /// Returns the HTTP status code of a probe response: 200 for `pass` and `warn`, 503 for `fail`.
    pub fn http_status_code(self) -> u16 {
        match self {
            Self::Pass | Self::Warn => 200,
            Self::Fail => 503,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one execution of a check, shared by every probe that reads it while cached.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// `None` when the check passed, otherwise the failure message (error, timeout or panic).
    pub error: Option<Arc<str>>,
    /// How long the execution took.
    pub duration: Duration,
    /// Wall-clock time the execution started.
    pub time: SystemTime,
    /// `time` in RFC 3339 with milliseconds, formatted once so cached results render cheaply.
    pub(crate) time_rfc3339: Arc<str>,
    pub(crate) finished: Instant,
}

impl CheckResult {
    pub(crate) fn new(error: Option<Arc<str>>, started: Instant, time: SystemTime) -> Self {
        let finished = Instant::now();
        Self {
            error,
            duration: finished.saturating_duration_since(started),
            time,
            time_rfc3339: humantime::format_rfc3339_millis(time).to_string().into(),
            finished,
        }
    }

    /// Returns whether the check passed.
    pub fn passed(&self) -> bool {
        self.error.is_none()
    }
}

pin_project_lite::pin_project! {
    /// Runs a future and turns a panic while polling it into `Err(message)`.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn catch_unwind_turns_panic_into_error() {
        let result = CatchUnwind::new(async {
            #[allow(clippy::panic)]
            if true {
                panic!("boom");
            }
        })
        .await;
        assert_eq!(result, Err("boom".to_owned()));
    }

    #[tokio::test]
    async fn closure_implements_check() {
        let check = || async { Err::<(), _>(CheckError::new("down")) };
        let outcome = Check::check(&check).await;
        assert_eq!(outcome, Err(CheckError::new("down")));
    }

    #[test]
    fn from_error_joins_sources() {
        let io = std::io::Error::other(CheckError::new("inner"));
        let error = CheckError::from_error(&io);
        assert!(error.message().contains("inner"), "{error}");
    }

    #[test]
    fn status_codes() {
        assert_eq!(Status::Pass.http_status_code(), 200);
        assert_eq!(Status::Warn.http_status_code(), 200);
        assert_eq!(Status::Fail.http_status_code(), 503);
    }
}
