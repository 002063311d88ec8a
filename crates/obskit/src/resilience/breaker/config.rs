//! Breaker settings, presets and the errors of building a breaker from them.
//!
//! The settings types live in [`crate::config`] so that a configuration file is checked even
//! in a build without the `resilience` feature; this module re-exports them and adds what the
//! breaker derives from them.

use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{
    CircuitBreakerConfig, CircuitBreakerSettings, InvalidSetting, Preset, SlidingWindowType,
};
use crate::metrics::MetricsError;

/// Errors from building a circuit breaker or its registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerError {
    /// One or more settings are outside their range.
    #[error("circuit breaker {name:?} has invalid settings: {}", list(.problems))]
    InvalidConfig {
        /// The breaker's name.
        name: Arc<str>,
        /// Every setting that breaks a rule.
        problems: Vec<InvalidSetting>,
    },
    /// The name is empty or too long.
    #[error(
        "invalid circuit breaker name {name:?}: expected 1 to 64 characters without control characters"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// Registering the breaker's metric families failed.
    #[error("registering metrics of circuit breaker {name:?} failed: {source}")]
    Metrics {
        /// The breaker's name.
        name: Arc<str>,
        /// The registry's error.
        source: MetricsError,
    },
}

fn list(problems: &[InvalidSetting]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Returns whether `name` can name a breaker built in code. Names from a configuration file
/// are held to a stricter rule, because they are also table keys.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control)
}

/// The settings in the form the breaker reads on every call.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) failure_rate_threshold: f32,
    pub(crate) slow_call_rate_threshold: f32,
    /// `None` when slow-call tracking is off.
    pub(crate) slow_call_nanos: Option<u64>,
    pub(crate) minimum_number_of_calls: u32,
    pub(crate) permitted_calls_in_half_open_state: u32,
    /// 0 waits for the probes without a limit.
    pub(crate) max_half_open_nanos: u64,
    pub(crate) automatic_transition: bool,
}

impl Compiled {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "thresholds are percentages from 0 to 100; Resilience4j compares them as float"
    )]
    pub(crate) fn new(config: &CircuitBreakerConfig) -> Self {
        Self {
            failure_rate_threshold: config.failure_rate_threshold as f32,
            slow_call_rate_threshold: config.slow_call_rate_threshold as f32,
            slow_call_nanos: config.slow_call_duration_threshold.map(nanos),
            minimum_number_of_calls: config.effective_minimum_number_of_calls(),
            permitted_calls_in_half_open_state: config.permitted_number_of_calls_in_half_open_state,
            max_half_open_nanos: nanos(config.max_wait_duration_in_half_open_state),
            automatic_transition: config.automatic_transition_from_open_to_half_open_enabled,
        }
    }
}

/// Converts a duration to nanoseconds, saturating at about 584 years.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Returns the open-state wait after `attempts` consecutive openings (1 for the first):
/// `wait_duration_in_open_state × multiplier^(attempts − 1)`, at most the maximum, when
/// exponential backoff is on, as Resilience4j's `IntervalFunction.ofExponentialBackoff`.
pub(crate) fn open_state_wait(config: &CircuitBreakerConfig, attempts: u32) -> Duration {
    let base = config.wait_duration_in_open_state;
    if !config.enable_exponential_backoff || attempts <= 1 {
        return base;
    }
    let exponent = i32::try_from(attempts - 1).unwrap_or(i32::MAX);
    let seconds = base.as_secs_f64() * config.exponential_backoff_multiplier.powi(exponent);
    let grown = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    match config.exponential_max_wait_duration_in_open_state {
        Some(max) => grown.min(max),
        None => grown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_grows_and_caps() {
        let config = CircuitBreakerConfig {
            wait_duration_in_open_state: Duration::from_secs(10),
            enable_exponential_backoff: true,
            exponential_backoff_multiplier: 2.0,
            exponential_max_wait_duration_in_open_state: Some(Duration::from_secs(50)),
            ..CircuitBreakerConfig::default()
        };
        let waits: Vec<u64> = (1..=5)
            .map(|attempt| open_state_wait(&config, attempt).as_secs())
            .collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
    }

    #[test]
    fn wait_fixed_without_backoff() {
        let config = CircuitBreakerConfig::default();
        assert_eq!(open_state_wait(&config, 7), Duration::from_secs(60));
    }

    #[test]
    fn wait_saturates_without_maximum() {
        let config = CircuitBreakerConfig {
            enable_exponential_backoff: true,
            ..CircuitBreakerConfig::default()
        };
        assert_eq!(open_state_wait(&config, u32::MAX), Duration::MAX);
    }
}
