//! Circuit breaker with Resilience4j's states, settings and semantics.
//!
//! A [`CircuitBreaker`] stops calling a dependency that keeps failing or answering slowly,
//! and lets a few probe calls through after a wait to find out whether it recovered.
//!
//! # States
//!
//! - **Closed**: calls pass, and each outcome goes into a sliding window: the last
//!   `sliding_window_size` calls, or the calls of the last `sliding_window_size` seconds in one
//!   bucket per second. Once the window holds `minimum_number_of_calls` calls (for a count
//!   window, at most `sliding_window_size`), every recorded outcome re-evaluates the failure
//!   rate and the slow-call rate. A rate equal to or above its threshold opens the breaker.
//! - **Open**: calls are rejected with
//!   [`Error::NotPermitted`](crate::resilience::Error::NotPermitted) and the time until the
//!   next probe. Once strictly more than `wait_duration_in_open_state` has passed, the next call
//!   moves the breaker to half-open and becomes a probe. With
//!   `enable_exponential_backoff`, the wait grows by `exponential_backoff_multiplier` on each
//!   consecutive opening, up to `exponential_max_wait_duration_in_open_state`, and falls back
//!   to the base wait when the breaker closes.
//! - **Half-open**: `permitted_number_of_calls_in_half_open_state` probes are let through, and
//!   any further call is rejected, whether the probes are still in flight or done. When the
//!   last probe has recorded, the rates over the probes decide: a rate equal to or above its
//!   threshold opens the breaker again, otherwise it closes with an empty window. With
//!   `max_wait_duration_in_half_open_state` above zero, a breaker that is half-open for longer
//!   opens again on the next call.
//! - **Forced open**: every call is rejected until the state is changed by hand.
//! - **Disabled**: every call passes and nothing is recorded, call counters included.
//!
//! A call is slow when it takes strictly longer than `slow_call_duration_threshold`; a slow
//! call is counted as slow and, if it failed, also as a failure. An ignored error is not
//! recorded at all, and in the half-open state it frees its probe slot for another call.
//!
//! # Metrics and logs
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `obskit_circuit_breaker_state` | gauge | `name`, `state`: 1 for the current state, 0 for the other four |
//! | `obskit_circuit_breaker_calls_total` | counter | `name`, `outcome` = `success`, `failure`, `slow`, `ignored` or `not_permitted` |
//! | `obskit_circuit_breaker_transitions_total` | counter | `name`, `from`, `to` |
//!
//! Each call counts under exactly one outcome: `slow` wins over `success` and `failure`.
//! Every transition is logged once, by the thread that made it, with target
//! `obskit::resilience`: at WARN when the breaker opens, at INFO otherwise, with the rates
//! behind the decision and the time until the next probe.
//!
//! # Example
//!
//! ```
//! use obskit::resilience::Error;
//! use obskit::resilience::breaker::{CircuitBreaker, CircuitBreakerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let registry = obskit::metrics::Registry::default();
//! let breaker = CircuitBreaker::builder("inventory")
//!     .config(CircuitBreakerConfig {
//!         sliding_window_size: 10,
//!         minimum_number_of_calls: 5,
//!         ..CircuitBreakerConfig::default()
//!     })
//!     .registry(&registry)
//!     .build()?;
//!
//! let stock = breaker.call(async { Ok::<u32, std::io::Error>(7) }).await;
//! assert_eq!(stock.ok(), Some(7));
//!
//! breaker.force_open();
//! match breaker.call(async { Ok::<u32, std::io::Error>(7) }).await {
//!     Err(Error::NotPermitted { name, .. }) => assert_eq!(&*name, "inventory"),
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! # Limitations
//!
//! - No timer task moves an open breaker to half-open. With
//!   `automatic_transition_from_open_to_half_open_enabled`, the move happens on the first
//!   call, [`CircuitBreaker::state`] or [`CircuitBreaker::snapshot`] after the wait; without
//!   it, only a call moves the breaker and `state()` reports open until then, as in
//!   Resilience4j.
//! - The same holds for `max_wait_duration_in_half_open_state`: the breaker opens again on the
//!   first call after that time, not at it.
//! - A call that was permitted while closed and finishes after the breaker opened is recorded
//!   in the window that opened it, as in Resilience4j. If it finishes after the breaker moved
//!   on to half-open, it is not counted as a probe, unlike in Resilience4j, where it would be.
//! - The count window's totals are updated by concurrent callers in any order, so a rate read
//!   while calls record may be off by the calls recording at that moment; the decision is
//!   taken again on the next recorded call.
//! - A time window takes a lock once per second, on the first call or read in a new second, to
//!   expire the buckets that left the window. The lock of the state transitions is the only
//!   other lock.
//! - Metric series are never removed: a breaker that is dropped keeps its last values.
//! - Breakers read the kernel's coarse monotonic clock
//!   ([`CoarseMonotonicClock`](crate::resilience::CoarseMonotonicClock)) unless given another:
//!   call durations and waits are measured to within its tick of 1 to 4 ms. Give the builder
//!   a [`MonotonicClock`](crate::resilience::MonotonicClock) when the slow-call threshold is a
//!   few milliseconds.

mod config;
mod machine;
mod metrics;
mod registry;
mod snapshot;
mod window;

#[cfg(test)]
mod tests;

use std::fmt;

pub use self::config::{
    BreakerError, CircuitBreakerConfig, CircuitBreakerSettings, InvalidSetting, Preset,
    SlidingWindowType,
};
pub use self::machine::{CircuitBreaker, CircuitBreakerBuilder, NotPermitted, Outcome, Permit};
pub use self::registry::CircuitBreakerRegistry;
pub use self::snapshot::Snapshot;

/// State of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Calls pass and their outcomes are recorded.
    Closed,
    /// Calls are refused until the wait duration has passed.
    Open,
    /// A limited number of probe calls pass; their outcomes decide between closed and open.
    HalfOpen,
    /// Calls are refused until the state is changed by hand.
    ForcedOpen,
    /// Calls pass and nothing is recorded.
    Disabled,
}

impl State {
    /// Every state, in the order metrics list them.
    pub const ALL: [State; 5] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
    ];

    /// Returns the state's name as metric labels and JSON show it: `closed`, `open`,
    /// `half_open`, `forced_open` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
