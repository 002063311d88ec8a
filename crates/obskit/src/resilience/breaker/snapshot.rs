//! A point-in-time view of one breaker, serializable for an admin route.

use serde::{Serialize, Serializer};

use super::State;

/// A breaker's state, rates and counts at one moment.
///
/// Serializes to JSON as:
///
/// ```json
/// {"name":"payments","state":"open","failure_rate":60.0,"slow_call_rate":0.0,
///  "buffered_calls":10,"failed_calls":6,"slow_calls":0,"not_permitted_calls":3,
///  "next_probe_in_seconds":42.5}
/// ```
///
/// # Example
///
/// ```
/// use obskit::resilience::breaker::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder("ledger")
///     .registry(&obskit::metrics::Registry::default())
///     .build()?;
/// let json = serde_json::to_value(breaker.snapshot())?;
/// assert_eq!(json["state"], "closed");
/// assert!(json["failure_rate"].is_null());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The breaker's name.
    pub name: String,
    /// The current state.
    #[serde(serialize_with = "state_name")]
    pub state: State,
    /// Failure rate in percent; `None` below the minimum number of calls. In the half-open
    /// state, the rate over the probes, `None` until every probe has recorded.
    pub failure_rate: Option<f32>,
    /// Slow-call rate in percent; `None` as for `failure_rate`.
    pub slow_call_rate: Option<f32>,
    /// Calls in the window, or probes recorded in the half-open state.
    pub buffered_calls: u32,
    /// Failed calls among them.
    pub failed_calls: u32,
    /// Slow calls among them, failed or not.
    pub slow_calls: u32,
    /// Calls rejected since the breaker was built or last closed.
    pub not_permitted_calls: u64,
    /// Seconds until an open breaker lets the next probe through; `None` in every other
    /// state.
    pub next_probe_in_seconds: Option<f64>,
}

fn state_name<S: Serializer>(state: &State, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(state.as_str())
}
