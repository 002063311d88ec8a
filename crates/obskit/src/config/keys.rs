//! The table of configuration keys and the "did you mean" suggestions for unknown names.

use super::resilience;

/// One leaf key of [`Config`](super::Config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// Dotted key, such as `logging.sample_rate`.
    pub key: &'static str,
    /// Description of the accepted values, as written in error messages.
    pub expected: &'static str,
}

impl KeyInfo {
    /// Returns whether the value is a secret that reports and errors mask as `****`.
    pub fn is_secret(&self) -> bool {
        is_secret_key(self.key)
    }
}

const fn key(key: &'static str, expected: &'static str) -> KeyInfo {
    KeyInfo { key, expected }
}

const DURATION: &str = "a duration with a unit, such as \"5s\" or \"250ms\"";
const POSITIVE_DURATION: &str = "a duration greater than zero, such as \"5s\" or \"250ms\"";
const POSITIVE_INTEGER: &str = "an integer greater than 0";
const RATIO: &str = "a number from 0.0 to 1.0";
const URL: &str = "an http:// or https:// URL with a host, such as \"http://collector:4317\"";
const PEM_CERTIFICATE: &str = "the path of a readable PEM file holding at least one certificate";
const RULE_MODE: &str = "one of \"mask\", \"partial\", \"hash\", \"off\"";
const FIELD_NAMES: &str = "a list of field names, each with at least one character other than \"_\", \"-\", \".\", \"/\", \":\" and whitespace";

/// Every leaf key of [`Config`](super::Config), in report order.
///
/// `service.resource_attributes` is a table whose keys are free; every other key is fixed.
pub const KEYS: &[KeyInfo] = &[
    key("service.name", "a non-empty string"),
    key("service.environment", "a string"),
    key("service.version", "a string"),
    key(
        "service.resource_attributes",
        "a table of string keys to string values",
    ),
    key(
        "logging.level",
        "a level (trace, debug, info, warn, error, off) or RUST_LOG-style directives such as \"info,hyper=warn\"",
    ),
    key("logging.format", "one of \"json\", \"text\""),
    key("logging.sample_rate", "a number from 0.0 to 1.0"),
    key("logging.queue_capacity", POSITIVE_INTEGER),
    key("metrics.max_series_per_metric", POSITIVE_INTEGER),
    key("metrics.process_metrics", "true or false"),
    key("metrics.runtime_metrics", "true or false"),
    key(
        "metrics.auth_token",
        "a non-empty string without whitespace or control characters",
    ),
    key(
        "metrics.auth_token_file",
        "the path of a readable file holding the token",
    ),
    key(
        "metrics.rate_limit",
        "a number of scrapes per second from 0 to 1e9 (0 disables the limit)",
    ),
    key("health.check_timeout", POSITIVE_DURATION),
    key("health.expose_details", "true or false"),
    key("admin.max_auth_failures", POSITIVE_INTEGER),
    key("admin.auth_lockout", POSITIVE_DURATION),
    key("admin.max_tracked_clients", POSITIVE_INTEGER),
    key(
        "http.exclude_paths",
        "a list of paths starting with \"/\", where a trailing \"*\" matches a prefix",
    ),
    key("shutdown.timeout", POSITIVE_DURATION),
    key("shutdown.pre_stop_delay", DURATION),
    key("shutdown.hook_timeout", POSITIVE_DURATION),
    key(
        "tracing.exporter",
        "one of \"otlp\", \"stdout\" (alias \"console\"), \"none\"",
    ),
    key("tracing.protocol", "one of \"grpc\", \"http/protobuf\""),
    key("tracing.endpoint", URL),
    key("tracing.traces_endpoint", URL),
    key(
        "tracing.headers",
        "a table of HTTP header names to header values",
    ),
    key("tracing.compression", "one of \"gzip\", \"none\""),
    key("tracing.timeout", POSITIVE_DURATION),
    key("tracing.certificate", PEM_CERTIFICATE),
    key("tracing.client_certificate", PEM_CERTIFICATE),
    key(
        "tracing.client_key",
        "the path of a readable PEM file holding a private key",
    ),
    key(
        "tracing.sampler",
        "one of \"always_on\", \"always_off\", \"traceidratio\", \"parentbased_always_on\", \"parentbased_always_off\", \"parentbased_traceidratio\" (jaeger_remote and xray are not supported)",
    ),
    key("tracing.sampler_arg", RATIO),
    key("tracing.sample_rate", RATIO),
    key("tracing.keep_errors", "true or false"),
    key("tracing.attribute_value_length_limit", POSITIVE_INTEGER),
    key("tracing.batch.max_queue_size", POSITIVE_INTEGER),
    key(
        "tracing.batch.max_export_batch_size",
        "an integer greater than 0 and at most tracing.batch.max_queue_size",
    ),
    key("tracing.batch.schedule_delay", POSITIVE_DURATION),
    key("tracing.batch.export_timeout", POSITIVE_DURATION),
    key("tracing.shutdown_timeout", POSITIVE_DURATION),
    key("redact.enabled", "true or false"),
    key(
        "redact.fields.names",
        "a list of field names that replaces the built-in list, each with at least one character other than \"_\", \"-\", \".\", \"/\", \":\" and whitespace",
    ),
    key("redact.fields.add", FIELD_NAMES),
    key("redact.fields.remove", FIELD_NAMES),
    key("redact.allow_fields", "a list of non-blank field names"),
    key("redact.rules.field", RULE_MODE),
    key("redact.rules.email", RULE_MODE),
    key("redact.rules.card", RULE_MODE),
    key("redact.rules.ssn", RULE_MODE),
    key("redact.rules.phone", RULE_MODE),
    key("redact.rules.iban", RULE_MODE),
    key("redact.rules.jwt", RULE_MODE),
    key("redact.rules.credentials", RULE_MODE),
    key("redact.rules.aws_key", RULE_MODE),
    key("redact.rules.token", RULE_MODE),
    key("redact.rules.private_key", RULE_MODE),
    key("redact.rules.url_credentials", RULE_MODE),
    key("redact.rules.ip", RULE_MODE),
    key(
        "redact.hash_key",
        "a secret of at least 16 bytes, such as the output of `openssl rand -hex 32`",
    ),
    key("redact.max_value_bytes", POSITIVE_INTEGER),
    key(
        "resilience.circuit_breakers",
        "a table of circuit breakers by name, such as [resilience.circuit_breakers.payments], each with the keys of CIRCUIT_BREAKER_KEYS",
    ),
    key(
        "slo.objectives",
        "a table of SLO names to tables with kind, target, period, route and the optional method, threshold, description and runbook_url",
    ),
];

/// The key whose value is a table of SLOs by name.
pub(crate) const SLO_OBJECTIVES_KEY: &str = "slo.objectives";

/// The keys of one `[slo.objectives.<name>]` table.
pub(crate) const SLO_FIELDS: &[&str] = &[
    "kind",
    "target",
    "period",
    "route",
    "method",
    "threshold",
    "description",
    "runbook_url",
];

/// The keys of one circuit breaker's table, `resilience.circuit_breakers.<name>.<key>`, in
/// report order. The names are Resilience4j's, in snake case.
pub const CIRCUIT_BREAKER_KEYS: &[KeyInfo] = &[
    key("preset", "one of \"database\", \"cache\", \"external_api\""),
    key("failure_rate_threshold", resilience::PERCENT),
    key("slow_call_rate_threshold", resilience::PERCENT),
    key(
        "slow_call_duration_threshold",
        resilience::SLOW_CALL_DURATION,
    ),
    key(
        "permitted_number_of_calls_in_half_open_state",
        resilience::PERMITTED_CALLS,
    ),
    key(
        "max_wait_duration_in_half_open_state",
        "a duration, such as \"30s\", or \"0s\" to wait for the probes without a limit",
    ),
    key("sliding_window_type", "one of \"count\", \"time\""),
    key("sliding_window_size", resilience::WINDOW_SIZE),
    key("minimum_number_of_calls", resilience::MINIMUM_CALLS),
    key(
        "wait_duration_in_open_state",
        resilience::WAIT_IN_OPEN_STATE,
    ),
    key(
        "automatic_transition_from_open_to_half_open_enabled",
        "true or false",
    ),
    key("enable_exponential_backoff", "true or false"),
    key("exponential_backoff_multiplier", resilience::MULTIPLIER),
    key(
        "exponential_max_wait_duration_in_open_state",
        resilience::MAX_WAIT_IN_OPEN_STATE,
    ),
];

/// The key whose value is a table of circuit breakers by name.
pub(crate) const BREAKERS_KEY: &str = "resilience.circuit_breakers";

/// Looks up a key of a circuit breaker's table.
pub(crate) fn find_breaker_key(name: &str) -> Option<&'static KeyInfo> {
    CIRCUIT_BREAKER_KEYS.iter().find(|info| info.key == name)
}

/// The key of the `hash` mode's HMAC key, a secret.
pub(crate) const HASH_KEY_KEY: &str = "redact.hash_key";

/// The prefix of the redaction rule keys, whose names (such as `token`) are kinds of value,
/// not secrets.
pub(crate) const RULES_PREFIX: &str = "redact.rules.";

/// The key whose values are HTTP headers, which reports and errors mask.
pub(crate) const HEADERS_KEY: &str = "tracing.headers";

/// The key whose value is a table with free keys.
pub(crate) const FREE_TABLE_KEY: &str = "service.resource_attributes";

/// Looks up a leaf key.
pub(crate) fn find_key(key: &str) -> Option<&'static KeyInfo> {
    KEYS.iter().find(|info| info.key == key)
}

/// Returns whether `key` is a section (`logging`) that contains leaf keys.
pub(crate) fn is_section(key: &str) -> bool {
    KEYS.iter().any(|info| {
        info.key
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Returns whether a key's value is masked because its last segment names a token, secret or
/// password.
///
/// Keys ending in `_file` contain a path to a secret, not the secret, and are shown. Every
/// value of `tracing.headers` is a secret, because headers carry credentials, and so is
/// `redact.hash_key`. The `redact.rules.*` keys are not, although one is named `token`.
pub(crate) fn is_secret_key(key: &str) -> bool {
    if key.starts_with(RULES_PREFIX) {
        return false;
    }
    if key == HASH_KEY_KEY
        || key == HEADERS_KEY
        || key
            .strip_prefix(HEADERS_KEY)
            .is_some_and(|rest| rest.starts_with('.'))
    {
        return true;
    }
    let name = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    if name.ends_with("_file") {
        return false;
    }
    ["token", "secret", "password"]
        .iter()
        .any(|word| name.contains(word))
}

/// Returns the candidate nearest to `name`, if it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let (candidate, distance) = candidates
        .into_iter()
        .map(|candidate| (candidate, strsim::damerau_levenshtein(name, candidate)))
        .min_by_key(|(_, distance)| *distance)?;
    // One edit for names under six characters: two would suggest `kind` for `windw`.
    let limit = (name.chars().count() / 3).max(1);
    (distance <= limit).then_some(candidate)
}

/// Suggests a valid key for the unknown dotted key `unknown`.
///
/// Tries, in order: a sibling with a similar name, a key with the same name in another
/// section, then the nearest full key.
pub(crate) fn suggest_key(unknown: &str) -> Option<&'static str> {
    let (parent, name) = match unknown.rsplit_once('.') {
        Some((parent, name)) => (parent, name),
        None => ("", unknown),
    };

    let siblings = known_names().filter(|known| parent_of(known) == parent);
    if let Some(sibling) = nearest(unknown, siblings) {
        return Some(sibling);
    }

    if let Some(moved) = known_names().find(|known| known.rsplit('.').next() == Some(name)) {
        return Some(moved);
    }

    nearest(unknown, known_names())
}

fn parent_of(key: &str) -> &str {
    key.rsplit_once('.').map_or("", |(parent, _)| parent)
}

/// Lists every leaf key and every section name.
fn known_names() -> impl Iterator<Item = &'static str> {
    let sections = KEYS.iter().map(|info| parent_of(info.key));
    KEYS.iter().map(|info| info.key).chain(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggest_key_finds_typo_in_leaf() {
        assert_eq!(
            suggest_key("logging.sampel_rate"),
            Some("logging.sample_rate")
        );
    }

    #[test]
    fn suggest_key_finds_typo_in_section() {
        assert_eq!(suggest_key("loging"), Some("logging"));
    }

    #[test]
    fn suggest_key_finds_redact_keys() {
        assert_eq!(
            suggest_key("redact.rules.emial"),
            Some("redact.rules.email")
        );
        assert_eq!(suggest_key("redact.hashkey"), Some("redact.hash_key"));
        assert_eq!(
            suggest_key("redact.allow_field"),
            Some("redact.allow_fields")
        );
    }

    #[test]
    fn suggest_key_finds_key_in_other_section() {
        assert_eq!(
            suggest_key("metrics.sample_rate"),
            Some("logging.sample_rate")
        );
    }

    #[test]
    fn short_name_needs_one_edit() {
        assert_eq!(nearest("windw", ["kind", "period"]), None);
        assert_eq!(nearest("kimd", ["kind", "period"]), Some("kind"));
    }

    #[test]
    fn suggest_key_skips_unrelated_name() {
        assert_eq!(suggest_key("completely_unrelated_setting"), None);
    }

    #[test]
    fn secret_keys_are_masked() {
        assert!(is_secret_key("metrics.auth_token"));
        assert!(is_secret_key("service.resource_attributes.db.Password"));
        assert!(is_secret_key("x.client_secret"));
        assert!(!is_secret_key("metrics.auth_token_file"));
        assert!(!is_secret_key("logging.level"));
        assert!(is_secret_key("tracing.headers"));
        assert!(is_secret_key("tracing.headers.x-api-key"));
        assert!(!is_secret_key("tracing.headers_count"));
        assert!(is_secret_key("redact.hash_key"));
        assert!(!is_secret_key("redact.rules.token"));
        assert!(!is_secret_key("redact.max_value_bytes"));
    }

    #[test]
    fn sections_are_recognised() {
        assert!(is_section("logging"));
        assert!(is_section("service"));
        assert!(!is_section("logging.level"));
        assert!(!is_section("log"));
    }
}
