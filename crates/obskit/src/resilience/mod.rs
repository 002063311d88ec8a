//! Resilience: circuit breaker, retry with budget, rate limiting, bulkhead and timeout.
//!
//! Each component works as a plain async call wrapper and reports its decisions in metrics.
//! Every wrapper returns [`Error`]: the call's own error, or a rejection the caller can match
//! on.

#[cfg(feature = "http")]
mod buffer;
mod error;
#[cfg(feature = "http")]
mod layer;
mod policy;
mod registry;

pub mod breaker;
pub mod bulkhead;
pub mod rate_limit;
pub mod retry;
pub mod timeout;

pub use crate::clock::{Clock, CoarseMonotonicClock, ManualClock, MonotonicClock};
pub use breaker::{
    BreakerError, CircuitBreaker, CircuitBreakerConfig, CircuitBreakerRegistry, NotPermitted,
    Outcome, Permit, Preset, Snapshot, State,
};
#[cfg(feature = "http")]
pub use buffer::{
    BUFFER_BODY_REJECTIONS_METRIC, BufferBodyConfigError, BufferBodyError, BufferBodyLayer,
    BufferBodyService,
};
pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadConfigError, BulkheadFull, BulkheadPermit};
pub use error::Error;
#[cfg(feature = "http")]
pub use layer::{LoadShedLayer, LoadShedService, PolicyLayer, PolicyService};
pub use policy::{Policy, PolicyBuilder};
pub use rate_limit::{KeyedRateLimiter, Quota, RateLimiter};
pub use registry::{Resilience, ResilienceSnapshot};
pub use retry::{
    Backoff, Jitter, Retry, RetryBudget, RetryBudgetConfig, RetryConfigError, RetryPolicy,
};
