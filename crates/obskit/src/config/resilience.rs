//! The `resilience` section: circuit breaker settings by name, with presets and range rules.
//!
//! The setting names are those of Resilience4j's `CircuitBreakerConfig`, written in snake case.
//! The types live here rather than in `resilience::breaker` so that a configuration file can be
//! loaded and checked in a build without the `resilience` feature.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Resilience settings.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// // The same as this TOML file section:
/// //
/// // [resilience.circuit_breakers.payments]
/// // preset = "external_api"
/// // failure_rate_threshold = 40
/// // wait_duration_in_open_state = "20s"
/// let config = obskit::Config::builder()
///     .env(false)
///     .set("resilience.circuit_breakers.payments.preset", "external_api")
///     .set("resilience.circuit_breakers.payments.failure_rate_threshold", 40)
///     .set("resilience.circuit_breakers.payments.wait_duration_in_open_state", "20s")
///     .build()?;
/// let payments = config.resilience.circuit_breaker("payments");
/// assert_eq!(payments.failure_rate_threshold, 40.0);
/// assert_eq!(payments.wait_duration_in_open_state, Duration::from_secs(20));
/// # Ok::<(), obskit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceConfig {
    /// Circuit breaker settings by breaker name. A breaker that is not listed gets the
    /// defaults of [`CircuitBreakerConfig`].
    pub circuit_breakers: BTreeMap<String, CircuitBreakerSettings>,
}

impl ResilienceConfig {
    /// Returns the effective settings of the breaker called `name`: its preset, if any, with
    /// the keys set for it on top; [`CircuitBreakerConfig::default`] for an unlisted name.
    pub fn circuit_breaker(&self, name: &str) -> CircuitBreakerConfig {
        self.circuit_breakers.get(name).map_or_else(
            CircuitBreakerConfig::default,
            CircuitBreakerSettings::resolve,
        )
    }
}

/// The unit of a closed breaker's sliding window: calls or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlidingWindowType {
    /// The last `sliding_window_size` calls (Resilience4j `COUNT_BASED`).
    Count,
    /// The calls of the last `sliding_window_size` seconds, in one bucket per second
    /// (Resilience4j `TIME_BASED`).
    Time,
}

impl SlidingWindowType {
    /// Returns the name as the configuration writes it: `count` or `time`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Time => "time",
        }
    }
}

/// A named set of circuit breaker settings for a common kind of dependency.
///
/// | Setting | `database` | `cache` | `external_api` |
/// |---|---|---|---|
/// | `sliding_window_type` | count | count | time |
/// | `sliding_window_size` | 50 calls | 100 calls | 60 s |
/// | `minimum_number_of_calls` | 20 | 50 | 20 |
/// | `failure_rate_threshold` | 50 % | 50 % | 50 % |
/// | `slow_call_duration_threshold` | 1 s | 100 ms | 5 s |
/// | `slow_call_rate_threshold` | 80 % | 50 % | 80 % |
/// | `wait_duration_in_open_state` | 10 s | 5 s | 30 s |
/// | `permitted_number_of_calls_in_half_open_state` | 5 | 10 | 3 |
/// | exponential backoff in open state | off | off | ×2, at most 5 min |
///
/// - `database`: queries take milliseconds, so a query over one second means a saturated pool
///   or lock contention. A database usually comes back within seconds (restart, failover), so
///   the wait is short, and five probes are enough to see whether it did.
/// - `cache`: a cache is optional, since callers fall back to the source of truth. The breaker
///   opens early on slowness (half the calls over 100 ms) because a slow cache costs more
///   than no cache, and it probes again after five seconds.
/// - `external_api`: third-party traffic is uneven, so the window is one minute of calls
///   rather than a number of calls. Outages of a remote provider last minutes, and probing it
///   hard can hit its rate limits, so the wait starts at 30 s, doubles on every failed probe
///   round up to 5 minutes, and a round has three probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// A database or another fast internal store.
    Database,
    /// A cache that callers can do without.
    Cache,
    /// A third-party HTTP API.
    ExternalApi,
}

impl Preset {
    /// Every preset, in documentation order.
    pub const ALL: [Preset; 3] = [Preset::Database, Preset::Cache, Preset::ExternalApi];

    /// Returns the name as the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Cache => "cache",
            Self::ExternalApi => "external_api",
        }
    }

    /// Returns the preset's settings.
    pub fn config(self) -> CircuitBreakerConfig {
        let defaults = CircuitBreakerConfig::default();
        match self {
            Self::Database => CircuitBreakerConfig {
                sliding_window_size: 50,
                minimum_number_of_calls: 20,
                slow_call_duration_threshold: Some(Duration::from_secs(1)),
                slow_call_rate_threshold: 80.0,
                wait_duration_in_open_state: Duration::from_secs(10),
                permitted_number_of_calls_in_half_open_state: 5,
                ..defaults
            },
            Self::Cache => CircuitBreakerConfig {
                sliding_window_size: 100,
                minimum_number_of_calls: 50,
                slow_call_duration_threshold: Some(Duration::from_millis(100)),
                slow_call_rate_threshold: 50.0,
                wait_duration_in_open_state: Duration::from_secs(5),
                permitted_number_of_calls_in_half_open_state: 10,
                ..defaults
            },
            Self::ExternalApi => CircuitBreakerConfig {
                sliding_window_type: SlidingWindowType::Time,
                sliding_window_size: 60,
                minimum_number_of_calls: 20,
                slow_call_duration_threshold: Some(Duration::from_secs(5)),
                slow_call_rate_threshold: 80.0,
                wait_duration_in_open_state: Duration::from_secs(30),
                enable_exponential_backoff: true,
                exponential_backoff_multiplier: 2.0,
                exponential_max_wait_duration_in_open_state: Some(Duration::from_secs(300)),
                permitted_number_of_calls_in_half_open_state: 3,
                ..defaults
            },
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings of one circuit breaker, with Resilience4j's names, meanings and defaults.
///
/// Thresholds are percentages. A rate equal to its threshold opens the breaker. Rates are not
/// evaluated before `minimum_number_of_calls` calls are in the window.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::config::{CircuitBreakerConfig, SlidingWindowType};
///
/// let config = CircuitBreakerConfig {
///     sliding_window_type: SlidingWindowType::Time,
///     sliding_window_size: 30,
///     minimum_number_of_calls: 10,
///     wait_duration_in_open_state: Duration::from_secs(5),
///     ..CircuitBreakerConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// assert_eq!(config.effective_minimum_number_of_calls(), 10);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Failure rate in percent, above 0 and at most 100, at or above which the breaker opens.
    /// Default 50.
    pub failure_rate_threshold: f64,
    /// Slow-call rate in percent, above 0 and at most 100, at or above which the breaker opens.
    /// Default 100.
    pub slow_call_rate_threshold: f64,
    /// A call that takes strictly longer than this is slow. `None` turns slow-call tracking
    /// off, which also saves two clock reads per call. Default 60 s.
    #[serde(with = "optional_duration")]
    pub slow_call_duration_threshold: Option<Duration>,
    /// Probe calls permitted in the half-open state; further calls are rejected. Their
    /// rates decide between closing and opening again once all of them have finished.
    /// Default 10.
    pub permitted_number_of_calls_in_half_open_state: u32,
    /// Longest time the breaker stays half-open waiting for its probes before it opens again;
    /// zero waits for as long as the probes take. Default 0.
    #[serde(with = "super::duration")]
    pub max_wait_duration_in_half_open_state: Duration,
    /// Whether the window counts calls or seconds. Default `count`.
    pub sliding_window_type: SlidingWindowType,
    /// Calls (count window) or seconds (time window) in the sliding window. Default 100.
    pub sliding_window_size: u32,
    /// Calls the window must hold before rates are evaluated. For a count window, the
    /// effective minimum is at most `sliding_window_size`. Default 100.
    pub minimum_number_of_calls: u32,
    /// Time the breaker stays open before it lets probe calls through. Default 60 s.
    #[serde(with = "super::duration")]
    pub wait_duration_in_open_state: Duration,
    /// Move from open to half-open when the wait has passed even without a call. obskit
    /// starts no timer: the move happens on the first call, `state()` or `snapshot()` after
    /// the wait. Without it, `state()` reports open until a call arrives. Default false.
    pub automatic_transition_from_open_to_half_open_enabled: bool,
    /// Grow the open-state wait on every consecutive opening, back to the base wait once the
    /// breaker closes. Default false.
    pub enable_exponential_backoff: bool,
    /// Factor by which the wait grows on each consecutive opening, at least 1.0. Default 1.5,
    /// as Resilience4j's `IntervalFunction`.
    pub exponential_backoff_multiplier: f64,
    /// Upper limit of the growing wait; `None` means no limit, as in Resilience4j.
    #[serde(with = "optional_duration")]
    pub exponential_max_wait_duration_in_open_state: Option<Duration>,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Some(Duration::from_secs(60)),
            permitted_number_of_calls_in_half_open_state: 10,
            max_wait_duration_in_half_open_state: Duration::ZERO,
            sliding_window_type: SlidingWindowType::Count,
            sliding_window_size: 100,
            minimum_number_of_calls: 100,
            wait_duration_in_open_state: Duration::from_secs(60),
            automatic_transition_from_open_to_half_open_enabled: false,
            enable_exponential_backoff: false,
            exponential_backoff_multiplier: 1.5,
            exponential_max_wait_duration_in_open_state: None,
        }
    }
}

/// Largest `sliding_window_size` of a count window: the window packs its three counts in
/// one 64-bit word with 21 bits each, and keeps one bit of each for transient underflow.
pub const MAX_COUNT_WINDOW_SIZE: u32 = 1_000_000;

/// Largest `sliding_window_size` of a time window, in seconds (one hour). Each second is a
/// bucket of 32 bytes.
pub const MAX_TIME_WINDOW_SECONDS: u32 = 3_600;

/// Largest `permitted_number_of_calls_in_half_open_state`: the probe counts share one 64-bit
/// word with the state's generation.
pub const MAX_PERMITTED_CALLS_IN_HALF_OPEN_STATE: u32 = 10_000;

/// Shortest `wait_duration_in_open_state`, as in Resilience4j.
pub const MIN_WAIT_DURATION_IN_OPEN_STATE: Duration = Duration::from_millis(1);

/// One setting that breaks a rule: the key and the values it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The setting's name, such as `failure_rate_threshold`.
    pub key: &'static str,
    /// The value as written.
    pub value: String,
    /// The values the key accepts.
    pub expected: &'static str,
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {}: invalid value; expected {}",
            self.key, self.value, self.expected
        )
    }
}

pub(crate) const PERCENT: &str = "a percentage greater than 0 and at most 100";
pub(crate) const PERMITTED_CALLS: &str = "an integer from 1 to 10000";
pub(crate) const WINDOW_SIZE: &str = "an integer from 1 to 1000000 calls for a count window, or from 1 to 3600 seconds for a time window";
pub(crate) const MINIMUM_CALLS: &str = "an integer greater than 0";
pub(crate) const WAIT_IN_OPEN_STATE: &str = "a duration of at least 1ms, such as \"60s\"";
pub(crate) const SLOW_CALL_DURATION: &str =
    "a duration greater than zero, such as \"2s\", or \"off\" to turn slow-call tracking off";
pub(crate) const MULTIPLIER: &str = "a number of at least 1.0, such as 2";
pub(crate) const MAX_WAIT_IN_OPEN_STATE: &str =
    "a duration of at least wait_duration_in_open_state, or \"off\" for no limit";

impl CircuitBreakerConfig {
    /// Returns the minimum number of calls that applies: for a count window,
    /// `minimum_number_of_calls` capped at `sliding_window_size`, as in Resilience4j.
    pub fn effective_minimum_number_of_calls(&self) -> u32 {
        match self.sliding_window_type {
            SlidingWindowType::Count => self.minimum_number_of_calls.min(self.sliding_window_size),
            SlidingWindowType::Time => self.minimum_number_of_calls,
        }
    }

    /// Checks every range rule.
    ///
    /// # Errors
    ///
    /// Every setting that breaks a rule, with the values it accepts.
    pub fn validate(&self) -> Result<(), Vec<InvalidSetting>> {
        let mut invalid = Vec::new();
        let mut reject = |key: &'static str, value: String, expected: &'static str, bad: bool| {
            if bad {
                invalid.push(InvalidSetting {
                    key,
                    value,
                    expected,
                });
            }
        };

        let is_percent = |rate: f64| rate > 0.0 && rate <= 100.0;
        reject(
            "failure_rate_threshold",
            self.failure_rate_threshold.to_string(),
            PERCENT,
            !is_percent(self.failure_rate_threshold),
        );
        reject(
            "slow_call_rate_threshold",
            self.slow_call_rate_threshold.to_string(),
            PERCENT,
            !is_percent(self.slow_call_rate_threshold),
        );
        reject(
            "slow_call_duration_threshold",
            format_optional(self.slow_call_duration_threshold),
            SLOW_CALL_DURATION,
            self.slow_call_duration_threshold == Some(Duration::ZERO),
        );
        reject(
            "permitted_number_of_calls_in_half_open_state",
            self.permitted_number_of_calls_in_half_open_state
                .to_string(),
            PERMITTED_CALLS,
            !(1..=MAX_PERMITTED_CALLS_IN_HALF_OPEN_STATE)
                .contains(&self.permitted_number_of_calls_in_half_open_state),
        );
        let max_window = match self.sliding_window_type {
            SlidingWindowType::Count => MAX_COUNT_WINDOW_SIZE,
            SlidingWindowType::Time => MAX_TIME_WINDOW_SECONDS,
        };
        reject(
            "sliding_window_size",
            self.sliding_window_size.to_string(),
            WINDOW_SIZE,
            !(1..=max_window).contains(&self.sliding_window_size),
        );
        reject(
            "minimum_number_of_calls",
            self.minimum_number_of_calls.to_string(),
            MINIMUM_CALLS,
            self.minimum_number_of_calls == 0,
        );
        reject(
            "wait_duration_in_open_state",
            format_duration(self.wait_duration_in_open_state),
            WAIT_IN_OPEN_STATE,
            self.wait_duration_in_open_state < MIN_WAIT_DURATION_IN_OPEN_STATE,
        );
        reject(
            "exponential_backoff_multiplier",
            self.exponential_backoff_multiplier.to_string(),
            MULTIPLIER,
            !(self.exponential_backoff_multiplier >= 1.0
                && self.exponential_backoff_multiplier.is_finite()),
        );
        reject(
            "exponential_max_wait_duration_in_open_state",
            format_optional(self.exponential_max_wait_duration_in_open_state),
            MAX_WAIT_IN_OPEN_STATE,
            self.exponential_max_wait_duration_in_open_state
                .is_some_and(|max| max < self.wait_duration_in_open_state),
        );

        if invalid.is_empty() {
            Ok(())
        } else {
            Err(invalid)
        }
    }
}

fn format_duration(duration: Duration) -> String {
    format!("\"{}\"", humantime::format_duration(duration))
}

fn format_optional(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "\"off\"".to_owned(), format_duration)
}

/// The settings of one breaker as a configuration file writes them: an optional preset and
/// the keys that replace its values. Unset keys come from the preset, or from the defaults of
/// [`CircuitBreakerConfig`] without one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(
    missing_docs,
    reason = "each field is the CircuitBreakerConfig field of the same name"
)]
pub struct CircuitBreakerSettings {
    /// The preset the other keys start from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_rate_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_call_rate_threshold: Option<f64>,
    /// `Some(None)` turns slow-call tracking off (`"off"` in a file).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "optional_duration_setting"
    )]
    pub slow_call_duration_threshold: Option<Option<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permitted_number_of_calls_in_half_open_state: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", with = "duration_setting")]
    pub max_wait_duration_in_half_open_state: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sliding_window_type: Option<SlidingWindowType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sliding_window_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_number_of_calls: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", with = "duration_setting")]
    pub wait_duration_in_open_state: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic_transition_from_open_to_half_open_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_exponential_backoff: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exponential_backoff_multiplier: Option<f64>,
    /// `Some(None)` means no limit (`"off"` in a file).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "optional_duration_setting"
    )]
    pub exponential_max_wait_duration_in_open_state: Option<Option<Duration>>,
}

impl CircuitBreakerSettings {
    /// Returns the preset's settings (or the defaults) with every set key applied.
    pub fn resolve(&self) -> CircuitBreakerConfig {
        let base = self
            .preset
            .map_or_else(CircuitBreakerConfig::default, Preset::config);
        CircuitBreakerConfig {
            failure_rate_threshold: self
                .failure_rate_threshold
                .unwrap_or(base.failure_rate_threshold),
            slow_call_rate_threshold: self
                .slow_call_rate_threshold
                .unwrap_or(base.slow_call_rate_threshold),
            slow_call_duration_threshold: self
                .slow_call_duration_threshold
                .unwrap_or(base.slow_call_duration_threshold),
            permitted_number_of_calls_in_half_open_state: self
                .permitted_number_of_calls_in_half_open_state
                .unwrap_or(base.permitted_number_of_calls_in_half_open_state),
            max_wait_duration_in_half_open_state: self
                .max_wait_duration_in_half_open_state
                .unwrap_or(base.max_wait_duration_in_half_open_state),
            sliding_window_type: self.sliding_window_type.unwrap_or(base.sliding_window_type),
            sliding_window_size: self.sliding_window_size.unwrap_or(base.sliding_window_size),
            minimum_number_of_calls: self
                .minimum_number_of_calls
                .unwrap_or(base.minimum_number_of_calls),
            wait_duration_in_open_state: self
                .wait_duration_in_open_state
                .unwrap_or(base.wait_duration_in_open_state),
            automatic_transition_from_open_to_half_open_enabled: self
                .automatic_transition_from_open_to_half_open_enabled
                .unwrap_or(base.automatic_transition_from_open_to_half_open_enabled),
            enable_exponential_backoff: self
                .enable_exponential_backoff
                .unwrap_or(base.enable_exponential_backoff),
            exponential_backoff_multiplier: self
                .exponential_backoff_multiplier
                .unwrap_or(base.exponential_backoff_multiplier),
            exponential_max_wait_duration_in_open_state: self
                .exponential_max_wait_duration_in_open_state
                .unwrap_or(base.exponential_max_wait_duration_in_open_state),
        }
    }
}

/// Parses a duration setting that also accepts `"off"`.
pub(crate) fn parse_optional_duration(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    humantime::parse_duration(text)
        .map(Some)
        .map_err(|error| format!("invalid duration {text:?}: {error}"))
}

/// Serde form of `Option<Duration>` where `None` is written `"off"`.
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => super::super::duration::serialize(duration, serializer),
            None => serializer.serialize_str("off"),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_optional_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde form of an optional setting whose value may be `"off"`.
mod optional_duration_setting {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    #[allow(
        clippy::ref_option,
        reason = "serde's `with` passes the field by reference"
    )]
    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Option<Duration>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => super::optional_duration::serialize(inner, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<Duration>>, D::Error> {
        super::optional_duration::deserialize(deserializer).map(Some)
    }
}

/// Serde form of an optional humantime duration setting.
mod duration_setting {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    #[allow(
        clippy::ref_option,
        reason = "serde's `with` passes the field by reference"
    )]
    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => super::super::duration::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::super::duration::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_resilience4j_defaults() {
        let config = CircuitBreakerConfig::default();
        assert_eq!(config.failure_rate_threshold, 50.0);
        assert_eq!(config.slow_call_rate_threshold, 100.0);
        assert_eq!(
            config.slow_call_duration_threshold,
            Some(Duration::from_secs(60))
        );
        assert_eq!(config.permitted_number_of_calls_in_half_open_state, 10);
        assert_eq!(config.sliding_window_size, 100);
        assert_eq!(config.minimum_number_of_calls, 100);
        assert_eq!(config.wait_duration_in_open_state, Duration::from_secs(60));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn presets_are_valid() {
        for preset in Preset::ALL {
            assert_eq!(preset.config().validate(), Ok(()), "preset {preset}");
        }
    }

    #[test]
    fn count_window_caps_minimum_calls() {
        let config = CircuitBreakerConfig {
            sliding_window_size: 10,
            minimum_number_of_calls: 50,
            ..CircuitBreakerConfig::default()
        };
        assert_eq!(config.effective_minimum_number_of_calls(), 10);
        let time = CircuitBreakerConfig {
            sliding_window_type: SlidingWindowType::Time,
            ..config
        };
        assert_eq!(time.effective_minimum_number_of_calls(), 50);
    }

    #[test]
    fn out_of_range_values_rejected() {
        let config = CircuitBreakerConfig {
            failure_rate_threshold: 0.0,
            slow_call_rate_threshold: 100.5,
            slow_call_duration_threshold: Some(Duration::ZERO),
            permitted_number_of_calls_in_half_open_state: 0,
            sliding_window_size: 0,
            minimum_number_of_calls: 0,
            wait_duration_in_open_state: Duration::from_micros(10),
            exponential_backoff_multiplier: 0.5,
            exponential_max_wait_duration_in_open_state: Some(Duration::ZERO),
            ..CircuitBreakerConfig::default()
        };
        let keys: Vec<&str> = config
            .validate()
            .err()
            .unwrap_or_default()
            .iter()
            .map(|invalid| invalid.key)
            .collect();
        assert_eq!(
            keys,
            [
                "failure_rate_threshold",
                "slow_call_rate_threshold",
                "slow_call_duration_threshold",
                "permitted_number_of_calls_in_half_open_state",
                "sliding_window_size",
                "minimum_number_of_calls",
                "wait_duration_in_open_state",
                "exponential_backoff_multiplier",
                "exponential_max_wait_duration_in_open_state",
            ]
        );
    }

    #[test]
    fn threshold_bounds() {
        for (rate, valid) in [
            (100.0, true),
            (0.001, true),
            (0.0, false),
            (-1.0, false),
            (f64::NAN, false),
        ] {
            let config = CircuitBreakerConfig {
                failure_rate_threshold: rate,
                ..CircuitBreakerConfig::default()
            };
            assert_eq!(config.validate().is_ok(), valid, "rate {rate}");
        }
    }

    #[test]
    fn time_window_size_limit() {
        let config = CircuitBreakerConfig {
            sliding_window_type: SlidingWindowType::Time,
            sliding_window_size: MAX_TIME_WINDOW_SECONDS + 1,
            ..CircuitBreakerConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn settings_apply_over_preset() {
        let settings = CircuitBreakerSettings {
            preset: Some(Preset::ExternalApi),
            failure_rate_threshold: Some(25.0),
            slow_call_duration_threshold: Some(None),
            ..CircuitBreakerSettings::default()
        };
        let config = settings.resolve();
        assert_eq!(config.failure_rate_threshold, 25.0);
        assert_eq!(config.slow_call_duration_threshold, None);
        assert_eq!(config.sliding_window_type, SlidingWindowType::Time);
        assert_eq!(config.wait_duration_in_open_state, Duration::from_secs(30));
    }

    #[test]
    fn off_parses_as_none() {
        assert_eq!(parse_optional_duration(" OFF "), Ok(None));
        assert_eq!(
            parse_optional_duration("250ms"),
            Ok(Some(Duration::from_millis(250)))
        );
        assert!(parse_optional_duration("fast").is_err());
    }
}
