//! Range and format rules that the types alone do not enforce.

use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::Config;
use super::keys::{find_key, nearest};

/// A key whose value breaks a rule, with what the key accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) key: &'static str,
    pub(crate) expected: String,
}

/// Largest `metrics.rate_limit` the admin endpoint's limiter can express.
pub(crate) const MAX_RATE_LIMIT: f64 = 1e9;

/// Returns whether the per-client limiter can be built from `rate`. Zero turns it off, and any
/// other value needs a period between scrapes of at least one nanosecond.
fn is_valid_rate_limit(rate: f64) -> bool {
    rate == 0.0
        || (rate > 0.0 && rate <= MAX_RATE_LIMIT && Duration::try_from_secs_f64(1.0 / rate).is_ok())
}

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// Level names of other logging systems (syslog, log4j, Python `logging`, .NET, Serilog), each
/// with the nearest level. `EnvFilter` reads them as target names, so `warning` alone would turn
/// off every log line, ERROR included.
const OTHER_SYSTEM_LEVELS: &[(&str, &str)] = &[
    ("warning", "warn"),
    ("err", "error"),
    ("fatal", "error"),
    ("crit", "error"),
    ("critical", "error"),
    ("notice", "info"),
    ("information", "info"),
    ("verbose", "trace"),
    ("all", "trace"),
    ("none", "off"),
];

/// Checks every rule and returns every key that breaks one.
pub(crate) fn check(config: &Config) -> Vec<Invalid> {
    let mut invalid = Vec::new();
    let mut reject = |key: &'static str, condition: bool| {
        if condition {
            invalid.push(Invalid {
                key,
                expected: expected(key),
            });
        }
    };

    reject("service.name", config.service.name.trim().is_empty());

    let logging = &config.logging;
    reject(
        "logging.sample_rate",
        !(0.0..=1.0).contains(&logging.sample_rate),
    );
    reject("logging.queue_capacity", logging.queue_capacity == 0);

    let metrics = &config.metrics;
    reject(
        "metrics.max_series_per_metric",
        metrics.max_series_per_metric == 0,
    );
    reject(
        "metrics.rate_limit",
        !is_valid_rate_limit(metrics.rate_limit),
    );
    if let Some(token) = &metrics.auth_token {
        reject("metrics.auth_token", !is_valid_token(token.expose()));
    }

    reject(
        "health.check_timeout",
        config.health.check_timeout == Duration::ZERO,
    );

    let admin = &config.admin;
    reject("admin.max_auth_failures", admin.max_auth_failures == 0);
    reject("admin.auth_lockout", admin.auth_lockout == Duration::ZERO);
    reject("admin.max_tracked_clients", admin.max_tracked_clients == 0);

    reject(
        "http.exclude_paths",
        !config
            .http
            .exclude_paths
            .iter()
            .all(|path| is_valid_path_pattern(path)),
    );

    let shutdown = &config.shutdown;
    reject("shutdown.timeout", shutdown.timeout == Duration::ZERO);
    reject(
        "shutdown.hook_timeout",
        shutdown.hook_timeout == Duration::ZERO,
    );

    super::validate_tracing::check(&config.tracing, &mut invalid);
    super::validate_redact::check(&config.redact, &mut invalid);

    if let Err(reason) = check_level(&logging.level) {
        invalid.push(Invalid {
            key: "logging.level",
            expected: format!("{} ({reason})", expected("logging.level")),
        });
    }

    invalid
}

fn expected(key: &str) -> String {
    find_key(key).map_or_else(
        || "a valid value".to_owned(),
        |info| info.expected.to_owned(),
    )
}

/// A bearer token must be non-empty and fit in an HTTP header without quoting.
fn is_valid_token(token: &str) -> bool {
    !token.is_empty() && !token.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_valid_path_pattern(pattern: &str) -> bool {
    let without_wildcard = pattern.strip_suffix('*').unwrap_or(pattern);
    pattern.starts_with('/') && !without_wildcard.contains('*')
}

/// Parses the level with the same parser the logging module uses, and also rejects a bare word
/// close to a level name or naming a level of another logging system. `EnvFilter` would read
/// `debg` or `warning` as a target name and log nothing from the rest of the program.
fn check_level(level: &str) -> Result<(), String> {
    if level.trim().is_empty() {
        return Err("empty".to_owned());
    }
    EnvFilter::try_new(level).map_err(|error| error.to_string())?;

    for directive in level.split(',') {
        let word = directive.trim().to_ascii_lowercase();
        let is_bare_word = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic());
        if !is_bare_word || LEVELS.contains(&word.as_str()) {
            continue;
        }
        if let Some((_, level)) = OTHER_SYSTEM_LEVELS.iter().find(|(name, _)| *name == word) {
            return Err(format!("`{word}` is not a level; did you mean `{level}`?"));
        }
        if let Some(level) = nearest(&word, LEVELS.iter().copied()) {
            return Err(format!("`{word}` is not a level; did you mean `{level}`?"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(config: &Config) -> Vec<&'static str> {
        check(config)
            .into_iter()
            .map(|invalid| invalid.key)
            .collect()
    }

    #[test]
    fn default_config_is_valid() {
        assert_eq!(check(&Config::default()), Vec::new());
    }

    #[test]
    fn sample_rate_outside_unit_interval() {
        for rate in [-0.1, 1.5, 2.0, f64::NAN] {
            let mut config = Config::default();
            config.logging.sample_rate = rate;
            assert_eq!(keys(&config), ["logging.sample_rate"], "rate {rate}");
        }
    }

    #[test]
    fn sample_rate_bounds_are_valid() {
        for rate in [0.0, 1.0, 0.25] {
            let mut config = Config::default();
            config.logging.sample_rate = rate;
            assert!(keys(&config).is_empty(), "rate {rate}");
        }
    }

    #[test]
    fn rate_limit_negative_or_nan() {
        for limit in [-1.0, f64::NAN, f64::INFINITY, 1e10, 1e-300] {
            let mut config = Config::default();
            config.metrics.rate_limit = limit;
            assert_eq!(keys(&config), ["metrics.rate_limit"], "limit {limit}");
        }
        let mut config = Config::default();
        config.metrics.rate_limit = 0.0;
        assert!(keys(&config).is_empty());
        config.metrics.rate_limit = MAX_RATE_LIMIT;
        assert!(keys(&config).is_empty());
    }

    #[test]
    fn zero_capacities_rejected() {
        let mut config = Config::default();
        config.logging.queue_capacity = 0;
        config.metrics.max_series_per_metric = 0;
        config.admin.max_auth_failures = 0;
        config.admin.max_tracked_clients = 0;
        assert_eq!(
            keys(&config),
            [
                "logging.queue_capacity",
                "metrics.max_series_per_metric",
                "admin.max_auth_failures",
                "admin.max_tracked_clients",
            ]
        );
    }

    #[test]
    fn zero_timeouts_rejected_but_zero_delay_allowed() {
        let mut config = Config::default();
        config.health.check_timeout = Duration::ZERO;
        config.shutdown.timeout = Duration::ZERO;
        config.shutdown.hook_timeout = Duration::ZERO;
        config.admin.auth_lockout = Duration::ZERO;
        config.shutdown.pre_stop_delay = Duration::ZERO;
        assert_eq!(
            keys(&config),
            [
                "health.check_timeout",
                "admin.auth_lockout",
                "shutdown.timeout",
                "shutdown.hook_timeout",
            ]
        );
    }

    #[test]
    fn service_name_blank_rejected() {
        let mut config = Config::default();
        config.service.name = "  ".to_owned();
        assert_eq!(keys(&config), ["service.name"]);
    }

    #[test]
    fn token_empty_or_with_whitespace_rejected() {
        for token in ["", "abc def", "abc\n"] {
            let mut config = Config::default();
            config.metrics.auth_token = Some(super::super::Secret::new(token));
            assert_eq!(keys(&config), ["metrics.auth_token"], "token {token:?}");
        }
    }

    #[test]
    fn exclude_paths_need_leading_slash() {
        let mut config = Config::default();
        config.http.exclude_paths = vec!["/ok*".to_owned(), "/a*b".to_owned()];
        assert_eq!(keys(&config), ["http.exclude_paths"]);
        config.http.exclude_paths = vec!["metrics".to_owned()];
        assert_eq!(keys(&config), ["http.exclude_paths"]);
    }

    #[test]
    fn level_directives_accepted() {
        for level in [
            "info",
            "INFO",
            "info,hyper=warn",
            "my_crate=debug",
            "off",
            "my_crate",
        ] {
            assert_eq!(check_level(level), Ok(()), "level {level}");
        }
    }

    #[test]
    fn level_typo_rejected() {
        let reason = check_level("debg").err().unwrap_or_default();
        assert!(reason.contains("did you mean `debug`"), "{reason}");
    }

    #[test]
    fn level_of_other_systems_rejected() {
        for (word, level) in [
            ("warning", "warn"),
            ("WARNING", "warn"),
            ("fatal", "error"),
            ("err", "error"),
            ("verbose", "trace"),
            ("none", "off"),
        ] {
            let reason = check_level(word).err().unwrap_or_default();
            assert!(
                reason.contains(&format!("did you mean `{level}`")),
                "{word}: {reason}"
            );
        }
        let reason = check_level("hyper=debug,warning").err().unwrap_or_default();
        assert!(reason.contains("did you mean `warn`"), "{reason}");
    }

    #[test]
    fn level_syntax_error_rejected() {
        assert!(check_level("info,hyper=loud").is_err());
        assert!(check_level("").is_err());
    }
}
