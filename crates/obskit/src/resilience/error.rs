//! The error every resilience wrapper returns: the call's own error or a rejection.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::State;

/// The outcome of a protected call that did not succeed.
///
/// [`Error::Inner`] carries the error of the call itself. Every other variant means that a
/// resilience component did not run the call or cut it short. Match on it to respond with the
/// right status (for example 503 with `Retry-After`) instead of treating it as a failure of the
/// dependency.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The call ran and failed with its own error.
    Inner(E),
    /// A circuit breaker did not permit the call.
    NotPermitted {
        /// The breaker's name.
        name: Arc<str>,
        /// The breaker's state when it refused.
        state: State,
        /// Time until the breaker lets the next probe through, when known. `None` for a
        /// forced-open breaker and for a half-open breaker whose probes are all in flight.
        retry_after: Option<Duration>,
    },
    /// A rate limiter refused the call.
    RateLimited {
        /// The limiter's name.
        name: Arc<str>,
        /// Earliest time from now at which the same call could be permitted.
        retry_after: Duration,
    },
    /// A bulkhead had no free slot, and none freed up within its wait time.
    BulkheadFull {
        /// The bulkhead's name.
        name: Arc<str>,
        /// The bulkhead's maximum of concurrent calls.
        max_concurrent: usize,
    },
    /// The call did not finish within its time limit and was cancelled.
    Timeout {
        /// The name of the policy whose timeout fired.
        name: Arc<str>,
        /// The time limit.
        timeout: Duration,
    },
}

impl<E> Error<E> {
    /// Returns whether a resilience component refused or cut short the call, rather than the
    /// call failing on its own. A timeout counts as a rejection.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, Self::Inner(_))
    }

    /// Returns the call's own error, if it failed on its own.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Self::Inner(error) => Some(error),
            _ => None,
        }
    }

    /// Returns the call's own error, if it failed on its own.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(error) => Some(error),
            _ => None,
        }
    }

    /// Returns how long to wait before trying again, when the rejecting component reports it.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::NotPermitted { retry_after, .. } => *retry_after,
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Maps the call's own error, keeping rejections as they are.
    pub fn map_inner<F>(self, map: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Self::Inner(error) => Error::Inner(map(error)),
            Self::NotPermitted {
                name,
                state,
                retry_after,
            } => Error::NotPermitted {
                name,
                state,
                retry_after,
            },
            Self::RateLimited { name, retry_after } => Error::RateLimited { name, retry_after },
            Self::BulkheadFull {
                name,
                max_concurrent,
            } => Error::BulkheadFull {
                name,
                max_concurrent,
            },
            Self::Timeout { name, timeout } => Error::Timeout { name, timeout },
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inner(error) => error.fmt(f),
            Self::NotPermitted {
                name,
                state,
                retry_after: Some(after),
            } => write!(
                f,
                "circuit breaker {name:?} is {state} and permits no call; the next probe is allowed in {after:?}"
            ),
            Self::NotPermitted {
                name,
                state: State::HalfOpen,
                retry_after: None,
            } => write!(
                f,
                "circuit breaker {name:?} is half_open and all its probe calls are in flight; retry after they finish"
            ),
            Self::NotPermitted {
                name,
                state,
                retry_after: None,
            } => write!(
                f,
                "circuit breaker {name:?} is {state} and permits no call until it is reset or its state is changed"
            ),
            Self::RateLimited { name, retry_after } => write!(
                f,
                "rate limiter {name:?} refused the call; retry after {retry_after:?}"
            ),
            Self::BulkheadFull {
                name,
                max_concurrent,
            } => write!(
                f,
                "bulkhead {name:?} already runs its maximum of {max_concurrent} concurrent calls"
            ),
            Self::Timeout { name, timeout } => {
                write!(f, "call through {name:?} did not finish within {timeout:?}")
            }
        }
    }
}

impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Inner(error) => error.source(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_messages_name_the_component_and_the_wait() {
        let error: Error<std::io::Error> = Error::NotPermitted {
            name: "payments".into(),
            state: State::Open,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            error.to_string(),
            "circuit breaker \"payments\" is open and permits no call; the next probe is allowed in 3s"
        );
        assert!(error.is_rejection());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));

        let limited: Error<std::io::Error> = Error::RateLimited {
            name: "orders".into(),
            retry_after: Duration::from_millis(250),
        };
        assert_eq!(
            limited.to_string(),
            "rate limiter \"orders\" refused the call; retry after 250ms"
        );
    }

    #[test]
    fn inner_error_passes_through_display_and_map() {
        let error = Error::Inner(std::io::Error::other("connection reset"));
        assert!(!error.is_rejection());
        assert_eq!(error.to_string(), "connection reset");
        let mapped = error.map_inner(|e| e.to_string().len());
        assert_eq!(mapped.into_inner(), Some("connection reset".len()));
    }
}
