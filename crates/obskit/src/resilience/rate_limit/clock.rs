//! governor's clock trait for obskit's clocks, so a [`ManualClock`] can drive a limiter in tests.

use std::time::Duration;

use crate::resilience::{Clock, ManualClock, MonotonicClock};

impl governor::clock::Clock for ManualClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Clock::now(self)
    }
}

impl governor::clock::Clock for MonotonicClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Clock::now(self)
    }
}
