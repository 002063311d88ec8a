//! Resilience: circuit breaker, retry with budget, rate limiting, bulkhead and timeout.
//!
//! Each component works as a plain async call wrapper and reports its decisions in metrics.
//! Every wrapper returns [`Error`]: the call's own error, or a rejection the caller can match
//! on.

mod error;

pub mod breaker;
pub mod bulkhead;
pub mod rate_limit;
pub mod retry;
pub mod timeout;

pub use crate::clock::{Clock, ManualClock, MonotonicClock};
pub use breaker::State;
pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadConfigError, BulkheadFull, BulkheadPermit};
pub use error::Error;
pub use retry::{
    Backoff, Jitter, Retry, RetryBudget, RetryBudgetConfig, RetryConfigError, RetryPolicy,
};
