//! Circuit breaker with Resilience4j's states, settings and semantics.

use std::fmt;

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
