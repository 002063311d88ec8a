//! Rules of the `resilience` section: breaker names and the ranges of each breaker's settings.

use super::ResilienceConfig;
use super::keys::BREAKERS_KEY;

/// A breaker setting that breaks a rule: the full dotted key, the value as resolved, and what
/// the key accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidBreaker {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) expected: String,
}

/// The accepted form of a breaker name. A dot would split the name into nested tables, and the
/// name becomes a metric label value and a log field.
pub(crate) const BREAKER_NAME: &str =
    "a breaker name of ASCII letters, digits, \"_\" and \"-\", at most 64 characters";

/// Checks every breaker's resolved settings and returns every problem.
///
/// A setting's range is checked on the value after the preset is applied, so a preset value
/// that an explicit key makes inconsistent (such as a maximum wait shorter than the wait) is
/// reported under the explicit key's breaker.
pub(crate) fn check(config: &ResilienceConfig) -> Vec<InvalidBreaker> {
    let mut invalid = Vec::new();
    for (name, settings) in &config.circuit_breakers {
        if !is_valid_name(name) {
            invalid.push(InvalidBreaker {
                key: format!("{BREAKERS_KEY}.{name}"),
                value: format!("{name:?}"),
                expected: BREAKER_NAME.to_owned(),
            });
            continue;
        }
        if let Err(problems) = settings.resolve().validate() {
            invalid.extend(problems.into_iter().map(|problem| InvalidBreaker {
                key: format!("{BREAKERS_KEY}.{name}.{}", problem.key),
                value: problem.value,
                expected: problem.expected.to_owned(),
            }));
        }
    }
    invalid
}

/// Returns whether `name` can name a breaker in the configuration.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CircuitBreakerSettings, Preset};

    fn keys(config: &ResilienceConfig) -> Vec<String> {
        check(config)
            .into_iter()
            .map(|invalid| invalid.key)
            .collect()
    }

    #[test]
    fn empty_section_is_valid() {
        assert!(keys(&ResilienceConfig::default()).is_empty());
    }

    #[test]
    fn bad_threshold_names_breaker_and_key() {
        let mut config = ResilienceConfig::default();
        config.circuit_breakers.insert(
            "payments".to_owned(),
            CircuitBreakerSettings {
                failure_rate_threshold: Some(150.0),
                ..CircuitBreakerSettings::default()
            },
        );
        let found = check(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        let problem = found.first().cloned().unwrap_or_else(|| InvalidBreaker {
            key: String::new(),
            value: String::new(),
            expected: String::new(),
        });
        assert_eq!(
            problem.key,
            "resilience.circuit_breakers.payments.failure_rate_threshold"
        );
        assert_eq!(problem.value, "150");
        assert_eq!(
            problem.expected,
            "a percentage greater than 0 and at most 100"
        );
    }

    #[test]
    fn wait_above_preset_maximum_rejected() {
        let mut config = ResilienceConfig::default();
        config.circuit_breakers.insert(
            "partner".to_owned(),
            CircuitBreakerSettings {
                preset: Some(Preset::ExternalApi),
                wait_duration_in_open_state: Some(std::time::Duration::from_secs(600)),
                ..CircuitBreakerSettings::default()
            },
        );
        assert_eq!(
            keys(&config),
            ["resilience.circuit_breakers.partner.exponential_max_wait_duration_in_open_state"]
        );
    }

    #[test]
    fn names_with_dots_or_spaces_rejected() {
        for name in ["a.b", "", "with space", &"x".repeat(65)] {
            assert!(!is_valid_name(name), "name {name:?}");
        }
        for name in ["payments", "user-db", "Cache_2"] {
            assert!(is_valid_name(name), "name {name:?}");
        }
    }
}
