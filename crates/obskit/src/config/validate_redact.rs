//! Rules of the `redact` section: list entries, the scan limit and the `hash` mode's key.

use super::RedactConfig;
use super::keys::{HASH_KEY_KEY, KEYS, RULES_PREFIX, find_key};
use super::validate::Invalid;
use crate::redact::{MIN_HASH_KEY_BYTES, RedactError, check_hash_key};

/// Checks the `redact` section and appends every key that breaks a rule.
///
/// A name in `redact.fields.remove` that is not on the list is accepted without a warning,
/// because the configuration report has no warning level.
pub(crate) fn check(config: &RedactConfig, invalid: &mut Vec<Invalid>) {
    let mut reject = |key: &'static str, condition: bool| {
        if condition {
            invalid.push(Invalid {
                key,
                expected: expected(key),
            });
        }
    };

    let fields = &config.fields;
    let names = fields.names.as_deref().unwrap_or_default();
    reject(
        "redact.fields.names",
        !names.iter().all(|name| has_segment(name)),
    );
    reject(
        "redact.fields.add",
        !fields.add.iter().all(|name| has_segment(name)),
    );
    reject(
        "redact.fields.remove",
        !fields.remove.iter().all(|name| has_segment(name)),
    );
    reject(
        "redact.allow_fields",
        config
            .allow_fields
            .iter()
            .any(|name| name.trim().is_empty()),
    );
    reject("redact.max_value_bytes", config.max_value_bytes == 0);

    if let Err(error) = check_hash_key(config) {
        invalid.push(hash_key_problem(&error));
    }
}

/// Turns the redactor's key check into the key to blame and what it accepts.
fn hash_key_problem(error: &RedactError) -> Invalid {
    match error {
        RedactError::MissingHashKey { rule } => Invalid {
            key: rule_key(rule),
            expected: format!(
                "\"mask\", \"partial\" or \"off\", or \"hash\" together with {HASH_KEY_KEY} \
                 (OBSKIT_REDACT_HASH_KEY) set to a secret of at least {MIN_HASH_KEY_BYTES} bytes"
            ),
        },
        RedactError::ShortHashKey { len } => Invalid {
            key: HASH_KEY_KEY,
            expected: format!(
                "a secret of at least {MIN_HASH_KEY_BYTES} bytes (this one has {len}), such as \
                 the output of `openssl rand -hex 32`"
            ),
        },
    }
}

/// Returns the `redact.rules.<rule>` key of a rule name from [`RedactError`].
fn rule_key(rule: &str) -> &'static str {
    KEYS.iter()
        .map(|info| info.key)
        .find(|key| key.strip_prefix(RULES_PREFIX) == Some(rule))
        .unwrap_or(HASH_KEY_KEY)
}

fn expected(key: &str) -> String {
    find_key(key).map_or_else(
        || "a valid value".to_owned(),
        |info| info.expected.to_owned(),
    )
}

/// Returns whether `name` has a segment to match. A name made only of the separators that
/// split field names into segments would be skipped by the matcher without notice.
fn has_segment(name: &str) -> bool {
    name.bytes().any(|byte| {
        !matches!(byte, b'_' | b'-' | b'.' | b'/' | b':') && !byte.is_ascii_whitespace()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RuleMode, Secret};

    fn keys(config: &RedactConfig) -> Vec<&'static str> {
        let mut invalid = Vec::new();
        check(config, &mut invalid);
        invalid.into_iter().map(|invalid| invalid.key).collect()
    }

    #[test]
    fn default_section_is_valid() {
        assert!(keys(&RedactConfig::default()).is_empty());
    }

    #[test]
    fn separator_only_names_rejected() {
        let mut config = RedactConfig::default();
        config.fields.names = Some(vec!["password".to_owned(), "__".to_owned()]);
        config.fields.add = vec![String::new()];
        config.fields.remove = vec![" . ".to_owned()];
        config.allow_fields = vec!["  ".to_owned()];
        assert_eq!(
            keys(&config),
            [
                "redact.fields.names",
                "redact.fields.add",
                "redact.fields.remove",
                "redact.allow_fields",
            ]
        );
    }

    #[test]
    fn empty_names_list_is_valid() {
        let mut config = RedactConfig::default();
        config.fields.names = Some(Vec::new());
        config.fields.remove = vec!["not_on_the_list".to_owned()];
        assert!(keys(&config).is_empty());
    }

    #[test]
    fn zero_max_value_bytes_rejected() {
        let config = RedactConfig {
            max_value_bytes: 0,
            ..RedactConfig::default()
        };
        assert_eq!(keys(&config), ["redact.max_value_bytes"]);
    }

    #[test]
    fn hash_rule_without_key_blames_rule() {
        let mut config = RedactConfig::default();
        config.rules.phone = RuleMode::Hash;
        let mut invalid = Vec::new();
        check(&config, &mut invalid);
        let keys: Vec<&str> = invalid.iter().map(|invalid| invalid.key).collect();
        assert_eq!(keys, ["redact.rules.phone"]);
        let expected = invalid.first().map(|invalid| invalid.expected.as_str());
        let expected = expected.unwrap_or_default();
        assert!(expected.contains("OBSKIT_REDACT_HASH_KEY"), "{expected}");
    }

    #[test]
    fn short_hash_key_names_length() {
        let mut config = RedactConfig::default();
        config.rules.email = RuleMode::Hash;
        config.hash_key = Some(Secret::new("short"));
        let mut invalid = Vec::new();
        check(&config, &mut invalid);
        let keys: Vec<&str> = invalid.iter().map(|invalid| invalid.key).collect();
        assert_eq!(keys, ["redact.hash_key"]);
        let expected = invalid.first().map(|invalid| invalid.expected.as_str());
        let expected = expected.unwrap_or_default();
        assert!(expected.contains("this one has 5"), "{expected}");
        assert!(!expected.contains("short"), "{expected}");
    }

    #[test]
    fn hash_key_unused_when_disabled() {
        let mut config = RedactConfig {
            enabled: false,
            ..RedactConfig::default()
        };
        config.rules.email = RuleMode::Hash;
        assert!(keys(&config).is_empty());
        config.enabled = true;
        config.hash_key = Some(Secret::new("0123456789abcdef"));
        assert!(keys(&config).is_empty());
    }

    #[test]
    fn every_rule_has_a_key() {
        for rule in [
            "field",
            "email",
            "card",
            "ssn",
            "phone",
            "iban",
            "jwt",
            "credentials",
            "aws_key",
            "token",
            "private_key",
            "url_credentials",
            "ip",
        ] {
            assert_eq!(rule_key(rule), format!("{RULES_PREFIX}{rule}"));
        }
    }
}
