//! Unit tests of the loader: precedence, sources and collected problems.
#![allow(clippy::panic, reason = "a test fails by panicking")]

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::LogFormat;

fn env_only(vars: &[(&str, &str)]) -> ConfigBuilder {
    Config::builder().env_from(vars.iter().map(|(name, value)| (*name, *value)))
}

fn problems(builder: ConfigBuilder) -> Vec<String> {
    match builder.build() {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(error) => error.problems().iter().map(ToString::to_string).collect(),
    }
}

fn source(report: &ConfigReport, key: &str) -> String {
    report
        .get(key)
        .map(|entry| entry.source.to_string())
        .unwrap_or_default()
}

#[test]
fn builder_debug_hides_values() {
    let builder = Config::builder().set("metrics.auth_token", "hunter2");
    let text = format!("{builder:?}");
    assert!(text.contains("metrics.auth_token"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn env_on_keeps_supplied_map() {
    let config = env_only(&[("OBSKIT_SERVICE_NAME", "supplied")])
        .env(true)
        .build();
    assert_eq!(
        config.map(|config| config.service.name).ok().as_deref(),
        Some("supplied")
    );
}

#[test]
fn env_off_ignores_supplied_map() {
    let config = env_only(&[("OBSKIT_SERVICE_NAME", "supplied")])
        .env(false)
        .build();
    assert_eq!(config.ok(), Some(Config::default()));
}

#[test]
fn section_replaced_by_scalar() {
    let found = problems(Config::builder().env(false).set("logging", "debug"));
    assert_eq!(
        found,
        ["logging = \"debug\" (from code): invalid value; expected a table of keys"]
    );
}

#[test]
fn resource_attribute_must_be_string() {
    let attributes = std::collections::BTreeMap::from([("replicas", 3)]);
    let found = problems(
        Config::builder()
            .env(false)
            .set("service.resource_attributes", attributes),
    );
    assert_eq!(
        found,
        [
            "service.resource_attributes.replicas = 3 (from code): invalid value; expected a string value"
        ]
    );
}

#[test]
fn resource_attribute_map_with_dotted_names() {
    let attributes = std::collections::BTreeMap::from([("k8s.pod.name", "api-1")]);
    let (config, report) = Config::builder()
        .env(false)
        .set("service.resource_attributes", attributes)
        .build_with_report()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        config
            .service
            .resource_attributes
            .get("k8s.pod.name")
            .map(String::as_str),
        Some("api-1")
    );
    assert_eq!(
        source(&report, "service.resource_attributes.k8s.pod.name"),
        "code"
    );
}

#[test]
fn defaults_without_sources() {
    let config = Config::builder().env(false).build();
    assert_eq!(config.ok(), Some(Config::default()));
}

#[test]
fn env_overrides_defaults() {
    let (config, report) = env_only(&[
        ("OBSKIT_LOG_SAMPLE_RATE", "0.5"),
        ("OBSKIT_LOG_QUEUE_CAPACITY", "16"),
        ("OBSKIT_SHUTDOWN_TIMEOUT", "1m 30s"),
        ("OBSKIT_LOG_FORMAT", "text"),
    ])
    .build_with_report()
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.logging.sample_rate, 0.5);
    assert_eq!(config.logging.queue_capacity, 16);
    assert_eq!(config.logging.format, LogFormat::Text);
    assert_eq!(config.shutdown.timeout, Duration::from_secs(90));
    assert_eq!(
        source(&report, "logging.sample_rate"),
        "env OBSKIT_LOG_SAMPLE_RATE"
    );
    assert_eq!(source(&report, "logging.level"), "default");
}

#[test]
fn code_overrides_env() {
    let (config, report) = env_only(&[("OBSKIT_SERVICE_NAME", "from-env")])
        .set("service.name", "from-code")
        .build_with_report()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.service.name, "from-code");
    assert_eq!(source(&report, "service.name"), "code");
}

#[test]
fn service_name_precedence() {
    let attributes = ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes");
    let otel = ("OTEL_SERVICE_NAME", "from-otel");
    let obskit = ("OBSKIT_SERVICE_NAME", "from-obskit");

    let name = |vars: &[(&str, &str)]| {
        env_only(vars)
            .build()
            .map(|config| config.service.name)
            .ok()
    };
    assert_eq!(name(&[attributes]).as_deref(), Some("from-attributes"));
    assert_eq!(name(&[attributes, otel]).as_deref(), Some("from-otel"));
    assert_eq!(
        name(&[attributes, otel, obskit]).as_deref(),
        Some("from-obskit")
    );
    assert_eq!(
        name(&[("OBSKIT_SERVICE_NAME", ""), otel]).as_deref(),
        Some("from-otel")
    );
}

#[test]
fn resource_attributes_fill_identity() {
    let (config, report) = env_only(&[
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=prod, service.version=1.2.3,k8s.pod.name=api%2C1,team=a%3Db",
        ),
        ("OBSKIT_VERSION", "2.0.0"),
    ])
    .build_with_report()
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.service.environment, "prod");
    assert_eq!(config.service.version, "2.0.0");
    assert_eq!(
        config
            .service
            .resource_attributes
            .get("k8s.pod.name")
            .map(String::as_str),
        Some("api,1")
    );
    assert_eq!(
        config
            .service
            .resource_attributes
            .get("team")
            .map(String::as_str),
        Some("a=b")
    );
    assert!(
        !config
            .service
            .resource_attributes
            .contains_key("service.version")
    );
    assert_eq!(
        source(&report, "service.environment"),
        "env OTEL_RESOURCE_ATTRIBUTES"
    );
    assert_eq!(source(&report, "service.version"), "env OBSKIT_VERSION");
    assert_eq!(
        source(&report, "service.resource_attributes.k8s.pod.name"),
        "env OTEL_RESOURCE_ATTRIBUTES"
    );
}

#[test]
fn resource_attribute_invalid_entry() {
    let found = problems(env_only(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "a=1,broken,b=%zz",
    )]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("\"broken\"") && p.contains("missing `=`")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("\"b=%zz\"") && p.contains("percent")),
        "{found:?}"
    );
}

#[test]
fn rust_log_used_without_obskit_level() {
    let level = |vars: &[(&str, &str)]| {
        env_only(vars)
            .build()
            .map(|config| config.logging.level)
            .ok()
    };
    assert_eq!(
        level(&[("RUST_LOG", "warn,hyper=error")]).as_deref(),
        Some("warn,hyper=error")
    );
    assert_eq!(
        level(&[("RUST_LOG", "warn"), ("OBSKIT_LOG_LEVEL", "debug")]).as_deref(),
        Some("debug")
    );
    assert_eq!(
        level(&[("RUST_LOG", "warn"), ("OBSKIT_LOG_LEVEL", "")]).as_deref(),
        Some("warn")
    );
}

#[test]
fn sample_rate_out_of_range_names_variable() {
    let found = problems(env_only(&[("OBSKIT_LOG_SAMPLE_RATE", "2")]));
    assert_eq!(
        found,
        [
            "logging.sample_rate = \"2\" (from env OBSKIT_LOG_SAMPLE_RATE): invalid value; expected a number from 0.0 to 1.0"
        ]
    );
}

#[test]
fn unparsable_numbers_name_variable() {
    let found = problems(env_only(&[
        ("OBSKIT_LOG_QUEUE_CAPACITY", "-3"),
        ("OBSKIT_METRICS_RATE_LIMIT", "fast"),
    ]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("OBSKIT_LOG_QUEUE_CAPACITY") && p.contains("\"-3\""))
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("OBSKIT_METRICS_RATE_LIMIT") && p.contains("\"fast\""))
    );
}

#[test]
fn rate_limit_nan_rejected() {
    let found = problems(env_only(&[("OBSKIT_METRICS_RATE_LIMIT", "NaN")]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found
            .iter()
            .all(|p| p.starts_with("metrics.rate_limit = \"NaN\"")),
        "{found:?}"
    );
}

#[test]
fn unknown_variable_suggests_nearest() {
    let found = problems(env_only(&[("OBSKIT_LOG_LEVL", "info")]));
    assert_eq!(
        found,
        [
            "OBSKIT_LOG_LEVL (from env): unknown environment variable; did you mean `OBSKIT_LOG_LEVEL`?"
        ]
    );
}

#[test]
fn unparsable_duration_rejected() {
    let found = problems(env_only(&[("OBSKIT_HEALTH_CHECK_TIMEOUT", "5 parsecs")]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found.iter().all(|p| p.starts_with(
            "health.check_timeout = \"5 parsecs\" (from env OBSKIT_HEALTH_CHECK_TIMEOUT): invalid value; expected a duration"
        )),
        "{found:?}"
    );
}

#[test]
fn bad_format_and_level_rejected() {
    let found = problems(env_only(&[
        ("OBSKIT_LOG_FORMAT", "xml"),
        ("OBSKIT_LOG_LEVEL", "info,hyper=loud"),
    ]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("logging.format = \"xml\"")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("logging.level = \"info,hyper=loud\"")),
        "{found:?}"
    );
}

#[test]
fn empty_token_variable_rejected() {
    let found = problems(env_only(&[("OBSKIT_METRICS_AUTH_TOKEN", "")]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found
            .iter()
            .all(|p| p.contains("OBSKIT_METRICS_AUTH_TOKEN")),
        "{found:?}"
    );
}

#[test]
fn empty_service_name_in_code_rejected() {
    let found = problems(Config::builder().env(false).set("service.name", ""));
    assert_eq!(
        found,
        ["service.name = \"\" (from code): invalid value; expected a non-empty string"]
    );
}

#[test]
fn unknown_code_key_suggests_nearest() {
    let found = problems(Config::builder().env(false).set("logging.sampel_rate", 0.5));
    assert_eq!(
        found,
        ["logging.sampel_rate (from code): unknown key; did you mean `logging.sample_rate`?"]
    );
}

#[test]
fn token_and_token_file_conflict() {
    let found = problems(
        env_only(&[("OBSKIT_METRICS_AUTH_TOKEN_FILE", "/nonexistent/token")])
            .set("metrics.auth_token", "abc"),
    );
    assert_eq!(
        found,
        [
            "metrics.auth_token (from code) and metrics.auth_token_file (from env OBSKIT_METRICS_AUTH_TOKEN_FILE) are both set; set only one of them"
        ]
    );
}

#[test]
fn token_file_missing_names_path() {
    let found = problems(
        Config::builder()
            .env(false)
            .set("metrics.auth_token_file", "/nonexistent/token"),
    );
    assert_eq!(
        found,
        [
            "metrics.auth_token_file = \"/nonexistent/token\" (from code): file not found; expected a readable file holding the token"
        ]
    );
}

#[test]
fn file_path_from_env_is_read() {
    let found = problems(env_only(&[(
        "OBSKIT_CONFIG_FILE",
        "/nonexistent/obskit.toml",
    )]));
    assert_eq!(
        found,
        [
            "configuration file \"/nonexistent/obskit.toml\" (from env OBSKIT_CONFIG_FILE): file not found"
        ]
    );
}

#[test]
fn builder_file_overrides_env_path() {
    let found = problems(
        env_only(&[("OBSKIT_CONFIG_FILE", "/nonexistent/a.toml")])
            .file(PathBuf::from("/nonexistent/b.yaml")),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found
            .iter()
            .all(|p| p.contains("b.yaml") && !p.contains("a.toml")),
        "{found:?}"
    );
}

#[test]
fn unknown_extension_rejected() {
    let found = problems(Config::builder().env(false).file("/etc/obskit.json"));
    assert_eq!(
        found,
        [
            "configuration file \"/etc/obskit.json\": unsupported file extension; expected .toml, .yaml or .yml"
        ]
    );
}

#[test]
fn all_problems_are_collected() {
    let found = problems(
        env_only(&[
            ("OBSKIT_LOG_SAMPLE_RATE", "2"),
            ("OBSKIT_METRICS_MAX_SERIES", "0"),
            ("OBSKIT_LOG_QUEUE_CAPACITY", "0"),
            ("OBSKIT_SHUTDOWN_TIMEOUT", "soon"),
            ("OBSKIT_TYPO", "1"),
        ])
        .set("service.name", " "),
    );
    assert_eq!(found.len(), 6, "{found:?}");
}
