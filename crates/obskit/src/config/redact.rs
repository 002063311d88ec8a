//! The `redact` section: which field names and which values are replaced in logs and spans.

use serde::{Deserialize, Serialize};

use super::Secret;

/// Default of [`RedactConfig::max_value_bytes`]: 64 KiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 * 1024;

/// Redaction settings. Redaction is on by default with every detector but IP addresses.
///
/// # Example
///
/// ```
/// use obskit::config::RuleMode;
///
/// // The same as this TOML file section:
/// //
/// // [redact]
/// // fields.add = ["internal_note"]
/// // fields.remove = ["session"]
/// // rules.card = "partial"
/// // rules.ip = "mask"
/// let config = obskit::Config::builder()
///     .env(false)
///     .set("redact.fields.add", ["internal_note"])
///     .set("redact.fields.remove", ["session"])
///     .set("redact.rules.card", "partial")
///     .set("redact.rules.ip", "mask")
///     .build()?;
/// assert_eq!(config.redact.rules.card, RuleMode::Partial);
/// assert_eq!(config.redact.rules.ip, RuleMode::Mask);
/// assert_eq!(config.redact.fields.add, ["internal_note"]);
/// # Ok::<(), obskit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactConfig {
    /// Redact log lines and span attributes. `false` turns every rule off.
    pub enabled: bool,
    /// Field names whose values are always replaced whole.
    pub fields: FieldNames,
    /// Field names whose values are written as they are: neither the name nor the value
    /// detectors apply. Matched case-insensitively on the whole name.
    pub allow_fields: Vec<String>,
    /// Replacement mode of each rule, or `off`.
    pub rules: RuleModes,
    /// Key of the `hash` mode's HMAC-SHA256; required when any rule uses `hash`.
    pub hash_key: Option<Secret>,
    /// Values longer than this many bytes are replaced whole instead of scanned.
    pub max_value_bytes: usize,
}

impl Default for RedactConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            fields: FieldNames::default(),
            allow_fields: Vec::new(),
            rules: RuleModes::default(),
            hash_key: None,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// The list of sensitive field names: the built-in list, or `names` when set, with `add` and
/// `remove` applied.
///
/// A name matches a field when its segments appear in the field name's segments, in order and
/// side by side. Segments are split at `_`, `-`, `.`, spaces, case changes and where a letter
/// meets a digit, and compared case-insensitively. So `api_key` matches `X-Api-Key` and
/// `apiKey` but not `apikeys`, and `cvv` matches `cvv2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldNames {
    /// Replaces the built-in list when set.
    pub names: Option<Vec<String>>,
    /// Names added to the list.
    pub add: Vec<String>,
    /// Names removed from the list, compared by their segments.
    pub remove: Vec<String>,
}

/// Replacement mode of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    /// The rule does not apply.
    Off,
    /// `[REDACTED:kind]`.
    Mask,
    /// Keeps the last four digits of a card, phone, SSN or IBAN and the domain of an email
    /// address; other kinds are masked.
    Partial,
    /// `[REDACTED:kind:` and the first 16 hex digits of the value's HMAC-SHA256 under
    /// [`RedactConfig::hash_key`] `]`, so equal values still correlate.
    Hash,
}

/// The mode of every rule. Each defaults to `mask`, except `ip`, which defaults to `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleModes {
    /// Values of fields with a sensitive name, and `name=value` pairs in text.
    pub field: RuleMode,
    /// Email addresses.
    pub email: RuleMode,
    /// Payment card numbers of 13 to 19 digits that pass the Luhn check.
    pub card: RuleMode,
    /// US social security numbers written `123-45-6789`.
    pub ssn: RuleMode,
    /// Phone numbers in E.164 and common national forms.
    pub phone: RuleMode,
    /// IBANs that pass the mod-97 check.
    pub iban: RuleMode,
    /// JSON Web Tokens.
    pub jwt: RuleMode,
    /// `Bearer` and `Basic` credentials in text.
    pub credentials: RuleMode,
    /// AWS access key ids.
    pub aws_key: RuleMode,
    /// GitHub, GitLab and Slack tokens.
    pub token: RuleMode,
    /// PEM private key blocks.
    pub private_key: RuleMode,
    /// The user and password in `scheme://user:pass@host`.
    pub url_credentials: RuleMode,
    /// IPv4 and IPv6 addresses; off by default.
    pub ip: RuleMode,
}

impl Default for RuleModes {
    fn default() -> Self {
        Self {
            field: RuleMode::Mask,
            email: RuleMode::Mask,
            card: RuleMode::Mask,
            ssn: RuleMode::Mask,
            phone: RuleMode::Mask,
            iban: RuleMode::Mask,
            jwt: RuleMode::Mask,
            credentials: RuleMode::Mask,
            aws_key: RuleMode::Mask,
            token: RuleMode::Mask,
            private_key: RuleMode::Mask,
            url_credentials: RuleMode::Mask,
            ip: RuleMode::Off,
        }
    }
}
