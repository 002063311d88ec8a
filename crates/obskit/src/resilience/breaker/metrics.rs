//! The breaker's metric handles, resolved once when the breaker is built.

use crate::metrics::{Counter, CounterFamily, Gauge, Registry};

use super::State;
use super::config::BreakerError;

pub(crate) const STATE_METRIC: &str = "obskit_circuit_breaker_state";
pub(crate) const CALLS_METRIC: &str = "obskit_circuit_breaker_calls";
pub(crate) const TRANSITIONS_METRIC: &str = "obskit_circuit_breaker_transitions";

/// Counters and gauges of one breaker. The hot path touches only the call counters.
#[derive(Debug)]
pub(crate) struct BreakerMetrics {
    pub(crate) success: Counter,
    pub(crate) failure: Counter,
    pub(crate) slow: Counter,
    pub(crate) ignored: Counter,
    pub(crate) not_permitted: Counter,
    /// One gauge per state, in the order of [`State::ALL`].
    states: [Gauge; 5],
    transitions: CounterFamily<3>,
}

impl BreakerMetrics {
    pub(crate) fn new(registry: &Registry, name: &str) -> Result<Self, BreakerError> {
        let error = |source| BreakerError::Metrics {
            name: name.into(),
            source,
        };
        let states = registry
            .get_or_register_gauge_family(
                STATE_METRIC,
                "Current state of each circuit breaker: 1 for the state it is in, 0 for the others.",
                ["name", "state"],
            )
            .map_err(error)?;
        let calls = registry
            .get_or_register_counter_family(
                CALLS_METRIC,
                "Calls through each circuit breaker by outcome; a slow call counts as slow whether it succeeded or failed.",
                ["name", "outcome"],
            )
            .map_err(error)?;
        let transitions = registry
            .get_or_register_counter_family(
                TRANSITIONS_METRIC,
                "State transitions of each circuit breaker.",
                ["name", "from", "to"],
            )
            .map_err(error)?;

        let state_gauge = |state: State| states.get(&[name, state.as_str()]);
        let metrics = Self {
            success: calls.get(&[name, "success"]),
            failure: calls.get(&[name, "failure"]),
            slow: calls.get(&[name, "slow"]),
            ignored: calls.get(&[name, "ignored"]),
            not_permitted: calls.get(&[name, "not_permitted"]),
            states: State::ALL.map(state_gauge),
            transitions,
        };
        metrics.show_state(State::Closed);
        Ok(metrics)
    }

    /// Sets the one-hot state gauge. Callers hold the breaker's transition lock.
    pub(crate) fn show_state(&self, current: State) {
        for (state, gauge) in State::ALL.iter().zip(&self.states) {
            gauge.set(if *state == current { 1.0 } else { 0.0 });
        }
    }

    pub(crate) fn count_transition(&self, name: &str, from: State, to: State) {
        self.transitions.inc(&[name, from.as_str(), to.as_str()]);
    }
}
