//! Typed configuration: defaults, a TOML or YAML file, the environment and code, merged in that order.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole obskit configuration.
///
/// Sources, lowest to highest precedence: built-in defaults, a TOML or YAML file, the
/// environment, values set in code. Every key is documented in `docs/configuration.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Identity of the service, attached to every log line and to `target_info`.
    pub service: ServiceConfig,
    /// Log level, format, sampling and the writer queue.
    pub logging: LoggingConfig,
    /// Metric registry limits and the `/metrics` endpoint.
    pub metrics: MetricsConfig,
    /// Health checks and probe endpoints.
    pub health: HealthConfig,
    /// Admin endpoint security.
    pub admin: AdminConfig,
    /// HTTP middleware.
    pub http: HttpConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceConfig::default(),
            logging: LoggingConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
            admin: AdminConfig::default(),
            http: HttpConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

/// Identity of the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Service name (`service.name` in OpenTelemetry terms).
    pub name: String,
    /// Deployment environment, such as `production` or `staging`.
    pub environment: String,
    /// Version of the service.
    pub version: String,
    /// Extra resource attributes, merged from `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource_attributes: BTreeMap<String, String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            name: "unknown_service".to_owned(),
            environment: "development".to_owned(),
            version: "0.0.0".to_owned(),
            resource_attributes: BTreeMap::new(),
        }
    }
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text for local development.
    Text,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A level (`info`) or `RUST_LOG`-style directives (`info,hyper=warn`).
    pub level: String,
    /// Output format.
    pub format: LogFormat,
    /// Share of events below WARN that are kept, from 0.0 to 1.0.
    pub sample_rate: f64,
    /// Capacity of the writer queue in lines; a full queue drops and counts events.
    pub queue_capacity: usize,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Json,
            sample_rate: 1.0,
            queue_capacity: 8192,
        }
    }
}

/// A secret string whose `Debug` output is masked.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"****\"")
    }
}

/// Metric registry and `/metrics` endpoint settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Maximum label sets per metric family; further label sets fold into one overflow series.
    pub max_series_per_metric: usize,
    /// Export `process_*` metrics.
    pub process_metrics: bool,
    /// Export tokio runtime metrics.
    pub runtime_metrics: bool,
    /// Bearer token required on `/metrics`; unset means no authentication.
    pub auth_token: Option<Secret>,
    /// File holding the bearer token (a mounted Kubernetes secret), read at startup.
    pub auth_token_file: Option<PathBuf>,
    /// Scrapes per second allowed per client address; 0 disables the limit.
    pub rate_limit: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            max_series_per_metric: 2000,
            process_metrics: true,
            runtime_metrics: true,
            auth_token: None,
            auth_token_file: None,
            rate_limit: 10.0,
        }
    }
}

/// Health check settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Default timeout of one check.
    #[serde(with = "duration")]
    pub check_timeout: Duration,
    /// Include error details of failing checks in the unauthenticated response body.
    pub expose_details: bool,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            check_timeout: Duration::from_secs(5),
            expose_details: false,
        }
    }
}

/// Admin endpoint security settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Failed authentications from one client before it is answered 429.
    pub max_auth_failures: u32,
    /// How long a client that passed `max_auth_failures` is answered 429.
    #[serde(with = "duration")]
    pub auth_lockout: Duration,
    /// Maximum client addresses tracked for failures and rate limits.
    pub max_tracked_clients: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            max_auth_failures: 10,
            auth_lockout: Duration::from_secs(60),
            max_tracked_clients: 10_000,
        }
    }
}

/// HTTP middleware settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Paths that get no metrics and no access log; a trailing `*` matches a prefix.
    pub exclude_paths: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            exclude_paths: vec!["/metrics".to_owned(), "/health*".to_owned()],
        }
    }
}

/// Graceful shutdown settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Maximum time to drain in-flight requests.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Time between failing readiness and closing the listener, so load balancers notice.
    #[serde(with = "duration")]
    pub pre_stop_delay: Duration,
    /// Default timeout of one shutdown hook.
    #[serde(with = "duration")]
    pub hook_timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            pre_stop_delay: Duration::from_secs(5),
            hook_timeout: Duration::from_secs(5),
        }
    }
}

/// Serde support for durations written as `humantime` strings (`"5s"`, `"250ms"`).
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|error| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: {error}; expected a number with a unit, such as \"5s\" or \"250ms\""
            ))
        })
    }
}
