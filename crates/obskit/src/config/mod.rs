//! Typed configuration: defaults, a TOML or YAML file, the environment and code, merged in that order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) mod duration;
mod env;
mod error;
mod file;
mod keys;
mod load;
mod redact;
mod report;
mod resilience;
mod secret;
mod source;
mod tracing;
mod validate;
mod validate_redact;
mod validate_resilience;
mod validate_tracing;

pub use self::tracing::{
    BatchConfig, DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT, DEFAULT_GRPC_ENDPOINT,
    DEFAULT_HTTP_ENDPOINT, OtlpCompression, OtlpProtocol, SamplerName, TraceExporter,
    TracingConfig,
};
pub use env::{ENV_VARS, EnvVar};
pub use error::{ConfigError, ConfigProblem};
pub(crate) use keys::is_secret_key;
pub(crate) use keys::nearest as nearest_name;
pub use keys::{CIRCUIT_BREAKER_KEYS, KEYS, KeyInfo};
pub use load::ConfigBuilder;
pub use redact::{DEFAULT_MAX_VALUE_BYTES, FieldNames, RedactConfig, RuleMode, RuleModes};
pub use report::{ConfigReport, ReportEntry};
pub use resilience::{
    CircuitBreakerConfig, CircuitBreakerSettings, InvalidSetting, MAX_COUNT_WINDOW_SIZE,
    MAX_PERMITTED_CALLS_IN_HALF_OPEN_STATE, MAX_TIME_WINDOW_SECONDS,
    MIN_WAIT_DURATION_IN_OPEN_STATE, Preset, ResilienceConfig, SlidingWindowType,
};
pub use secret::{Secret, mask_url};
pub use source::ValueSource;

/// The whole obskit configuration.
///
/// Sources, lowest to highest precedence: built-in defaults, a TOML or YAML file, the
/// environment, values set in code. Load it with [`Config::load`] or [`Config::builder`]. Every
/// key and environment variable is documented in `docs/configuration.md`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Span export, sampling and batching.
    pub tracing: TracingConfig,
    /// Redaction of personal data and secrets in logs and spans.
    pub redact: RedactConfig,
    /// Circuit breaker settings by name.
    pub resilience: ResilienceConfig,
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
    /// Failed authentications from one client before its requests are rejected with 429.
    pub max_auth_failures: u32,
    /// Time a client past `max_auth_failures` is rejected with 429.
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
