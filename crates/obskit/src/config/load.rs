//! Merging defaults, file, environment and code values into a checked [`Config`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::env::{self, CONFIG_FILE_VAR, nest};
use super::error::{ConfigError, ConfigProblem};
use super::keys::{
    BREAKERS_KEY, CIRCUIT_BREAKER_KEYS, FREE_TABLE_KEY, SLO_FIELDS, SLO_OBJECTIVES_KEY,
    find_breaker_key, find_key, is_secret_key, is_section, nearest, suggest_key,
};
use super::report::ConfigReport;
use super::source::{Layer, ValueSource};
use super::{
    AdminConfig, BatchConfig, CircuitBreakerSettings, Config, FieldNames, HealthConfig, HttpConfig,
    LoggingConfig, MetricsConfig, RedactConfig, ResilienceConfig, RuleModes, Secret, ServiceConfig,
    ShutdownConfig, SloConfig, TracingConfig, file, validate, validate_resilience, validate_slo,
};

impl Config {
    /// Loads the configuration from the defaults, the file named by `OBSKIT_CONFIG_FILE`
    /// (if set) and the environment.
    ///
    /// Every problem is collected before failing, so one run shows all of them.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let config = match obskit::Config::load() {
    ///     Ok(config) => config,
    ///     Err(error) => {
    ///         eprintln!("invalid configuration:\n{error}");
    ///         std::process::exit(2);
    ///     }
    /// };
    /// println!("starting {}", config.service.name);
    /// ```
    pub fn load() -> Result<Self, ConfigError> {
        Self::builder().build()
    }

    /// Starts a [`ConfigBuilder`] that reads the process environment and no file yet.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }
}

/// Builds a [`Config`] from chosen sources.
///
/// Precedence, lowest to highest: built-in defaults, the file, the environment, values set with
/// [`set`](Self::set). Later calls to `set` win over earlier ones.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// let (config, report) = obskit::Config::builder()
///     .env_from([("OBSKIT_LOG_LEVEL".to_owned(), "debug".to_owned())])
///     .set("service.name", "checkout")
///     .set("shutdown.timeout", "10s")
///     .build_with_report()?;
///
/// assert_eq!(config.service.name, "checkout");
/// assert_eq!(config.logging.level, "debug");
/// assert_eq!(config.shutdown.timeout, Duration::from_secs(10));
/// assert_eq!(report.get("logging.level").map(|entry| entry.source.to_string()),
///            Some("env OBSKIT_LOG_LEVEL".to_owned()));
/// # Ok::<(), obskit::config::ConfigError>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct ConfigBuilder {
    file: Option<PathBuf>,
    env: EnvMode,
    code: Vec<(String, Result<Value, String>)>,
}

/// Prints the sources and the keys set in code, but no values, because they may be secrets.
impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = match &self.env {
            EnvMode::Process => "process",
            EnvMode::Supplied(_) => "supplied",
            EnvMode::Disabled => "disabled",
        };
        let keys: Vec<&str> = self.code.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("ConfigBuilder")
            .field("file", &self.file)
            .field("env", &env)
            .field("code_keys", &keys)
            .finish()
    }
}

#[derive(Default)]
enum EnvMode {
    #[default]
    Process,
    Supplied(BTreeMap<String, String>),
    Disabled,
}

impl ConfigBuilder {
    /// Reads this TOML (`.toml`) or YAML (`.yaml`, `.yml`) file; overrides `OBSKIT_CONFIG_FILE`.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Turns the environment on or off. Off also ignores `OBSKIT_CONFIG_FILE`.
    ///
    /// Turning it on again keeps a map given to [`env_from`](Self::env_from).
    pub fn env(mut self, enabled: bool) -> Self {
        self.env = match (enabled, self.env) {
            (false, _) => EnvMode::Disabled,
            (true, EnvMode::Disabled) => EnvMode::Process,
            (true, mode) => mode,
        };
        self
    }

    /// Reads these variables in place of the process environment, for hermetic tests.
    pub fn env_from<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()));
        self.env = EnvMode::Supplied(env::filter_vars(vars));
        self
    }

    /// Sets the dotted `key` to `value`, above every other source.
    ///
    /// Durations are strings such as `"5s"`. Unknown keys and invalid values are reported by
    /// [`build`](Self::build) like those from a file. The key is split at every `.`, so set a
    /// resource attribute whose name contains dots by passing a map to
    /// `service.resource_attributes`.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Self {
        let value = Value::serialize(value).map_err(|error| error.to_string());
        self.code.push((key.to_owned(), value));
        self
    }

    /// Merges the sources, checks the result and returns it.
    pub fn build(self) -> Result<Config, ConfigError> {
        self.build_with_report().map(|(config, _)| config)
    }

    /// As [`build`](Self::build), and also returns the source of every value.
    pub fn build_with_report(self) -> Result<(Config, ConfigReport), ConfigError> {
        let mut problems = Vec::new();

        let (layers, vars) = self.into_layers(&mut problems);
        let mut merged = Merged::new(layers, vars);
        let config = merged.check(&mut problems);

        if !problems.is_empty() {
            return Err(ConfigError::new(problems));
        }
        let report = ConfigReport::new(&config, |key| merged.origin(key));
        Ok((config, report))
    }

    /// Reads every source into one figment layer each, lowest precedence first, and returns
    /// them with the environment variables that were read.
    fn into_layers(
        self,
        problems: &mut Vec<ConfigProblem>,
    ) -> (Vec<Layer>, BTreeMap<String, String>) {
        let vars = match self.env {
            EnvMode::Process => env::process_vars(problems),
            EnvMode::Supplied(vars) => vars,
            EnvMode::Disabled => BTreeMap::new(),
        };

        let mut layers = vec![default_layer(problems)];

        let file = match self.file {
            Some(path) => Some((path, ValueSource::Code)),
            None => env::config_file(&vars).map(|path| {
                let origin = ValueSource::Env(CONFIG_FILE_VAR.to_owned());
                (PathBuf::from(path), origin)
            }),
        };
        if let Some((path, origin)) = &file {
            layers.extend(file::load(path, origin, problems));
        }

        layers.extend(env::layers(&vars, problems));

        for (key, value) in self.code {
            match value {
                Ok(value) => layers.push(Layer::new(ValueSource::Code, nest(&key, value))),
                Err(message) => problems.push(ConfigProblem::Unserializable { key, message }),
            }
        }

        (layers, vars)
    }
}

fn default_layer(problems: &mut Vec<ConfigProblem>) -> Layer {
    let dict = match Value::serialize(Config::default()) {
        Ok(Value::Dict(_, dict)) => dict,
        Ok(_) | Err(_) => {
            // NOTE: unreachable with the derived `Serialize`; reported rather than panicking.
            problems.push(ConfigProblem::Unserializable {
                key: "(defaults)".to_owned(),
                message: "the defaults did not serialize to a table".to_owned(),
            });
            Dict::new()
        }
    };
    Layer::new(ValueSource::Default, dict)
}

/// The merged sources, with what is needed to name the source and raw text of each value.
struct Merged {
    figment: Figment,
    tree: Dict,
    sources: HashMap<String, ValueSource>,
    vars: BTreeMap<String, String>,
    /// Keys whose value was derived from another key, such as the token read from its file.
    derived: HashMap<&'static str, &'static str>,
}

impl Merged {
    fn new(layers: Vec<Layer>, vars: BTreeMap<String, String>) -> Self {
        let mut sources = HashMap::new();
        let mut figment = Figment::new();
        for layer in layers {
            sources.insert(Layer::metadata_name(layer.source()), layer.source().clone());
            figment = figment.merge(layer);
        }
        // Merging fails only when a provider fails, and `Layer` never does.
        let tree = match figment.find_value("") {
            Ok(Value::Dict(_, dict)) => dict,
            Ok(_) | Err(_) => Dict::new(),
        };
        Self {
            figment,
            tree,
            sources,
            vars,
            derived: HashMap::new(),
        }
    }

    fn find(&self, key: &str) -> Option<&Value> {
        let mut segments = key.split('.');
        let mut value = self.tree.get(segments.next()?)?;
        for segment in segments {
            value = value.as_dict()?.get(segment)?;
        }
        Some(value)
    }

    fn source_of(&self, value: &Value) -> ValueSource {
        self.figment
            .get_metadata(value.tag())
            .and_then(|metadata| self.sources.get(metadata.name.as_ref()))
            .cloned()
            .unwrap_or(ValueSource::Default)
    }

    /// Finds the source of the effective value of a fixed key or of `service.resource_attributes.<name>`.
    fn origin(&self, key: &str) -> ValueSource {
        if let Some(from) = self.derived.get(key) {
            return self.origin(from);
        }
        if let Some(name) = key
            .strip_prefix(FREE_TABLE_KEY)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            let attribute = self
                .find(FREE_TABLE_KEY)
                .and_then(Value::as_dict)
                .and_then(|table| table.get(name));
            return attribute.map_or(ValueSource::Default, |value| self.source_of(value));
        }
        self.find(key)
            .map_or(ValueSource::Default, |value| self.source_of(value))
    }

    /// Renders the value as the user wrote it: raw text for the environment, `****` for secrets.
    fn display_value(&self, key: &str, value: Option<&Value>) -> String {
        let Some(value) = value else {
            return "(unset)".to_owned();
        };
        if is_secret_key(key) && !matches!(value, Value::Empty(..)) {
            return "****".to_owned();
        }
        if let ValueSource::Env(name) = self.source_of(value)
            && let Some(raw) = self.vars.get(&name)
        {
            return format!("{raw:?}");
        }
        serde_json::to_string(value).unwrap_or_else(|_| "(unprintable)".to_owned())
    }

    fn invalid(&self, key: &str, expected: String) -> ConfigProblem {
        let source_key = self.derived.get(key).copied().unwrap_or(key);
        let value = if is_secret_key(key) {
            "****".to_owned()
        } else {
            self.display_value(key, self.find(key))
        };
        ConfigProblem::InvalidValue {
            key: key.to_owned(),
            value,
            origin: self.origin(source_key),
            expected,
        }
    }

    /// Extracts the typed configuration and records every problem: unknown keys, invalid
    /// values, an unreadable token file and broken range rules.
    fn check(&mut self, problems: &mut Vec<ConfigProblem>) -> Config {
        self.check_keys(problems);
        let mut config = self.extract(problems);
        self.resolve_token_file(&mut config, problems);
        for invalid in validate::check(&config) {
            problems.push(self.invalid(invalid.key, invalid.expected));
        }
        for invalid in validate_resilience::check(&config.resilience) {
            problems.push(self.invalid_breaker(invalid));
        }
        for entry in validate_slo::check(&config.slo) {
            let value = self.find(&entry.key);
            problems.push(ConfigProblem::InvalidSlo {
                value: self.display_value(&entry.key, value),
                origin: value.map_or(ValueSource::Default, |value| self.source_of(value)),
                message: entry.message,
                key: entry.key,
            });
        }
        config
    }

    /// Reports keys that `Config` does not have and sections that are not tables.
    fn check_keys(&self, problems: &mut Vec<ConfigProblem>) {
        self.check_dict(&self.tree, "", problems);
    }

    fn check_dict(&self, dict: &Dict, prefix: &str, problems: &mut Vec<ConfigProblem>) {
        for (name, value) in dict {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };

            if key == FREE_TABLE_KEY {
                self.check_attributes(value, problems);
            } else if key == BREAKERS_KEY {
                // Breaker names and keys are checked while extracting.
            } else if key == SLO_OBJECTIVES_KEY {
                self.check_objectives(value, problems);
            } else if find_key(&key).is_some() {
                // Leaf types are checked when extracting.
            } else if is_section(&key) {
                match value {
                    Value::Dict(_, inner) => self.check_dict(inner, &key, problems),
                    _ => problems.push(ConfigProblem::InvalidValue {
                        value: self.display_value(&key, Some(value)),
                        origin: self.source_of(value),
                        expected: "a table of keys".to_owned(),
                        key,
                    }),
                }
            } else {
                problems.push(ConfigProblem::UnknownKey {
                    origin: self.source_of(value),
                    suggestion: suggest_key(&key),
                    key,
                });
            }
        }
    }

    fn check_attributes(&self, value: &Value, problems: &mut Vec<ConfigProblem>) {
        let Value::Dict(_, attributes) = value else {
            problems.push(self.invalid_at(FREE_TABLE_KEY, value));
            return;
        };
        for (name, attribute) in attributes {
            let expected = match attribute {
                _ if name.trim().is_empty() => "a non-empty attribute name",
                Value::String(..) => continue,
                // TOML reads an unquoted `k8s.pod.name = "x"` as nested tables.
                Value::Dict(..) => {
                    "a string value; quote attribute names that contain dots, such as \"k8s.pod.name\" = \"api-1\""
                }
                _ => "a string value",
            };
            let key = format!("{FREE_TABLE_KEY}.{name}");
            problems.push(ConfigProblem::InvalidValue {
                value: self.display_value(&key, Some(attribute)),
                origin: self.source_of(attribute),
                expected: expected.to_owned(),
                key,
            });
        }
    }

    /// Reports SLO tables that are not tables and keys that an SLO table does not have.
    fn check_objectives(&self, value: &Value, problems: &mut Vec<ConfigProblem>) {
        let Value::Dict(_, objectives) = value else {
            problems.push(self.invalid_at(SLO_OBJECTIVES_KEY, value));
            return;
        };
        for (name, objective) in objectives {
            let Value::Dict(_, fields) = objective else {
                let key = format!("{SLO_OBJECTIVES_KEY}.{name}");
                problems.push(ConfigProblem::InvalidValue {
                    value: self.display_value(&key, Some(objective)),
                    origin: self.source_of(objective),
                    expected: "a table with kind, target, period and route".to_owned(),
                    key,
                });
                continue;
            };
            for (field, value) in fields {
                if SLO_FIELDS.contains(&field.as_str()) {
                    continue;
                }
                let suggestion = nearest(field, SLO_FIELDS.iter().copied());
                problems.push(ConfigProblem::UnknownSloKey {
                    key: format!("{SLO_OBJECTIVES_KEY}.{name}.{field}"),
                    origin: self.source_of(value),
                    suggestion,
                });
            }
        }
    }

    fn invalid_at(&self, key: &'static str, value: &Value) -> ConfigProblem {
        ConfigProblem::InvalidValue {
            key: key.to_owned(),
            value: self.display_value(key, Some(value)),
            origin: self.source_of(value),
            expected: find_key(key)
                .map_or("a valid value", |info| info.expected)
                .to_owned(),
        }
    }

    /// Extracts every key on its own, so that one bad value does not hide the others.
    fn extract(&self, problems: &mut Vec<ConfigProblem>) -> Config {
        let defaults = Config::default();
        let mut get = Extractor {
            merged: self,
            problems,
        };
        Config {
            service: ServiceConfig {
                name: get.value("service.name", defaults.service.name),
                environment: get.value("service.environment", defaults.service.environment),
                version: get.value("service.version", defaults.service.version),
                resource_attributes: get
                    .value(FREE_TABLE_KEY, defaults.service.resource_attributes),
            },
            logging: LoggingConfig {
                level: get.value("logging.level", defaults.logging.level),
                format: get.value("logging.format", defaults.logging.format),
                sample_rate: get.value("logging.sample_rate", defaults.logging.sample_rate),
                queue_capacity: get
                    .value("logging.queue_capacity", defaults.logging.queue_capacity),
            },
            metrics: MetricsConfig {
                max_series_per_metric: get.value(
                    "metrics.max_series_per_metric",
                    defaults.metrics.max_series_per_metric,
                ),
                process_metrics: get
                    .value("metrics.process_metrics", defaults.metrics.process_metrics),
                runtime_metrics: get
                    .value("metrics.runtime_metrics", defaults.metrics.runtime_metrics),
                auth_token: get.value("metrics.auth_token", defaults.metrics.auth_token),
                auth_token_file: get
                    .value("metrics.auth_token_file", defaults.metrics.auth_token_file),
                rate_limit: get.value("metrics.rate_limit", defaults.metrics.rate_limit),
            },
            health: HealthConfig {
                check_timeout: get.duration("health.check_timeout", defaults.health.check_timeout),
                expose_details: get.value("health.expose_details", defaults.health.expose_details),
            },
            admin: AdminConfig {
                max_auth_failures: get
                    .value("admin.max_auth_failures", defaults.admin.max_auth_failures),
                auth_lockout: get.duration("admin.auth_lockout", defaults.admin.auth_lockout),
                max_tracked_clients: get.value(
                    "admin.max_tracked_clients",
                    defaults.admin.max_tracked_clients,
                ),
            },
            http: HttpConfig {
                exclude_paths: get.value("http.exclude_paths", defaults.http.exclude_paths),
            },
            shutdown: ShutdownConfig {
                timeout: get.duration("shutdown.timeout", defaults.shutdown.timeout),
                pre_stop_delay: get
                    .duration("shutdown.pre_stop_delay", defaults.shutdown.pre_stop_delay),
                hook_timeout: get.duration("shutdown.hook_timeout", defaults.shutdown.hook_timeout),
            },
            tracing: extract_tracing(&mut get, defaults.tracing),
            redact: extract_redact(&mut get, defaults.redact),
            resilience: get.resilience(),
            slo: extract_slo(self, problems_of(&mut get)),
        }
    }

    /// Reports a breaker setting that breaks a range rule. The value comes from the tree when a
    /// source set it, and from the resolved settings when a preset or a default did.
    fn invalid_breaker(&self, invalid: validate_resilience::InvalidBreaker) -> ConfigProblem {
        match self.find(&invalid.key) {
            Some(value) => ConfigProblem::InvalidValue {
                value: self.display_value(&invalid.key, Some(value)),
                origin: self.source_of(value),
                expected: invalid.expected,
                key: invalid.key,
            },
            None => ConfigProblem::InvalidValue {
                origin: self.origin(&invalid.key),
                value: invalid.value,
                expected: invalid.expected,
                key: invalid.key,
            },
        }
    }

    /// Reads `metrics.auth_token_file` into `metrics.auth_token`, dropping trailing line breaks.
    fn resolve_token_file(&mut self, config: &mut Config, problems: &mut Vec<ConfigProblem>) {
        let Some(path) = config.metrics.auth_token_file.clone() else {
            return;
        };
        let origin = self.origin("metrics.auth_token_file");

        if config.metrics.auth_token.is_some() {
            problems.push(ConfigProblem::Conflict {
                key: "metrics.auth_token",
                origin: self.origin("metrics.auth_token"),
                other_key: "metrics.auth_token_file",
                other_origin: origin,
            });
            return;
        }

        let reason = match read_token_file(&path) {
            Ok(None) => format!("the file is larger than {MAX_TOKEN_FILE_BYTES} bytes"),
            Ok(Some(text)) => {
                let token = text.trim_end_matches(['\n', '\r']);
                if token.trim().is_empty() {
                    "the file is empty or holds only whitespace".to_owned()
                } else {
                    config.metrics.auth_token = Some(Secret::new(token));
                    self.derived
                        .insert("metrics.auth_token", "metrics.auth_token_file");
                    return;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                "file not found".to_owned()
            }
            Err(error) => format!("cannot read the file: {error}"),
        };
        problems.push(ConfigProblem::TokenFile {
            path,
            origin,
            reason,
        });
    }
}

/// Largest token file read. A token is far shorter, and the bound keeps a path such as
/// `/dev/zero` from making loading read without end.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Reads the token file, or `None` when it is larger than [`MAX_TOKEN_FILE_BYTES`].
fn read_token_file(path: &std::path::Path) -> std::io::Result<Option<String>> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    let too_large = u64::try_from(text.len()).map_or(true, |len| len > MAX_TOKEN_FILE_BYTES);
    Ok((!too_large).then_some(text))
}

fn extract_tracing(get: &mut Extractor<'_>, defaults: TracingConfig) -> TracingConfig {
    let batch = defaults.batch;
    TracingConfig {
        exporter: get.value("tracing.exporter", defaults.exporter),
        protocol: get.value("tracing.protocol", defaults.protocol),
        endpoint: get.value("tracing.endpoint", defaults.endpoint),
        traces_endpoint: get.value("tracing.traces_endpoint", defaults.traces_endpoint),
        headers: get.value("tracing.headers", defaults.headers),
        compression: get.value("tracing.compression", defaults.compression),
        timeout: get.duration("tracing.timeout", defaults.timeout),
        certificate: get.value("tracing.certificate", defaults.certificate),
        client_certificate: get.value("tracing.client_certificate", defaults.client_certificate),
        client_key: get.value("tracing.client_key", defaults.client_key),
        sampler: get.value("tracing.sampler", defaults.sampler),
        sampler_arg: get.value("tracing.sampler_arg", defaults.sampler_arg),
        sample_rate: get.value("tracing.sample_rate", defaults.sample_rate),
        keep_errors: get.value("tracing.keep_errors", defaults.keep_errors),
        attribute_value_length_limit: get.value(
            "tracing.attribute_value_length_limit",
            defaults.attribute_value_length_limit,
        ),
        batch: BatchConfig {
            max_queue_size: get.value("tracing.batch.max_queue_size", batch.max_queue_size),
            max_export_batch_size: get.value(
                "tracing.batch.max_export_batch_size",
                batch.max_export_batch_size,
            ),
            schedule_delay: get.duration("tracing.batch.schedule_delay", batch.schedule_delay),
            export_timeout: get.duration("tracing.batch.export_timeout", batch.export_timeout),
        },
        shutdown_timeout: get.duration("tracing.shutdown_timeout", defaults.shutdown_timeout),
    }
}

fn extract_redact(get: &mut Extractor<'_>, defaults: RedactConfig) -> RedactConfig {
    let fields = defaults.fields;
    let rules = defaults.rules;
    RedactConfig {
        enabled: get.value("redact.enabled", defaults.enabled),
        fields: FieldNames {
            names: get.value("redact.fields.names", fields.names),
            add: get.value("redact.fields.add", fields.add),
            remove: get.value("redact.fields.remove", fields.remove),
        },
        allow_fields: get.value("redact.allow_fields", defaults.allow_fields),
        rules: RuleModes {
            field: get.value("redact.rules.field", rules.field),
            email: get.value("redact.rules.email", rules.email),
            card: get.value("redact.rules.card", rules.card),
            ssn: get.value("redact.rules.ssn", rules.ssn),
            phone: get.value("redact.rules.phone", rules.phone),
            iban: get.value("redact.rules.iban", rules.iban),
            jwt: get.value("redact.rules.jwt", rules.jwt),
            credentials: get.value("redact.rules.credentials", rules.credentials),
            aws_key: get.value("redact.rules.aws_key", rules.aws_key),
            token: get.value("redact.rules.token", rules.token),
            private_key: get.value("redact.rules.private_key", rules.private_key),
            url_credentials: get.value("redact.rules.url_credentials", rules.url_credentials),
            ip: get.value("redact.rules.ip", rules.ip),
        },
        hash_key: get.value("redact.hash_key", defaults.hash_key),
        max_value_bytes: get.value("redact.max_value_bytes", defaults.max_value_bytes),
    }
}

/// Parses one breaker setting into `settings`; `None` when the value has the wrong type or
/// format.
fn set_breaker_setting(
    settings: &mut CircuitBreakerSettings,
    setting: &str,
    value: &Value,
) -> Option<()> {
    fn duration(value: &Value) -> Option<Duration> {
        humantime::parse_duration(value.as_str()?.trim()).ok()
    }
    fn optional_duration(value: &Value) -> Option<Option<Duration>> {
        super::resilience::parse_optional_duration(value.as_str()?).ok()
    }

    match setting {
        "preset" => settings.preset = Some(value.deserialize().ok()?),
        "failure_rate_threshold" => {
            settings.failure_rate_threshold = Some(value.deserialize().ok()?);
        }
        "slow_call_rate_threshold" => {
            settings.slow_call_rate_threshold = Some(value.deserialize().ok()?);
        }
        "slow_call_duration_threshold" => {
            settings.slow_call_duration_threshold = Some(optional_duration(value)?);
        }
        "permitted_number_of_calls_in_half_open_state" => {
            settings.permitted_number_of_calls_in_half_open_state = Some(value.deserialize().ok()?);
        }
        "max_wait_duration_in_half_open_state" => {
            settings.max_wait_duration_in_half_open_state = Some(duration(value)?);
        }
        "sliding_window_type" => settings.sliding_window_type = Some(value.deserialize().ok()?),
        "sliding_window_size" => settings.sliding_window_size = Some(value.deserialize().ok()?),
        "minimum_number_of_calls" => {
            settings.minimum_number_of_calls = Some(value.deserialize().ok()?);
        }
        "wait_duration_in_open_state" => {
            settings.wait_duration_in_open_state = Some(duration(value)?);
        }
        "automatic_transition_from_open_to_half_open_enabled" => {
            settings.automatic_transition_from_open_to_half_open_enabled =
                Some(value.deserialize().ok()?);
        }
        "enable_exponential_backoff" => {
            settings.enable_exponential_backoff = Some(value.deserialize().ok()?);
        }
        "exponential_backoff_multiplier" => {
            settings.exponential_backoff_multiplier = Some(value.deserialize().ok()?);
        }
        "exponential_max_wait_duration_in_open_state" => {
            settings.exponential_max_wait_duration_in_open_state = Some(optional_duration(value)?);
        }
        _ => return None,
    }
    Some(())
}

fn problems_of<'a>(get: &'a mut Extractor<'_>) -> &'a mut Vec<ConfigProblem> {
    get.problems
}

/// Extracts each SLO table on its own, so that one bad value names its SLO and field.
fn extract_slo(merged: &Merged, problems: &mut Vec<ConfigProblem>) -> SloConfig {
    let mut config = SloConfig::default();
    let Some(Value::Dict(_, objectives)) = merged.find(SLO_OBJECTIVES_KEY) else {
        return config;
    };
    for (name, objective) in objectives {
        if !matches!(objective, Value::Dict(..)) {
            continue;
        }
        match objective.deserialize::<crate::slo::SloSpec>() {
            Ok(spec) => {
                config.objectives.insert(name.clone(), spec);
            }
            Err(error) => {
                let key = format!("{SLO_OBJECTIVES_KEY}.{name}");
                // Unknown keys are reported by `check_keys`.
                if matches!(error.kind, figment::error::Kind::UnknownField(..)) {
                    continue;
                }
                problems.push(ConfigProblem::InvalidSlo {
                    value: merged.display_value(&key, Some(objective)),
                    origin: merged.source_of(objective),
                    message: format!(
                        "SLO {name:?}: {}; the table needs kind, target, period and route",
                        error.kind
                    ),
                    key,
                });
            }
        }
    }
    config
}

struct Extractor<'a> {
    merged: &'a Merged,
    problems: &'a mut Vec<ConfigProblem>,
}

impl Extractor<'_> {
    /// Extracts `resilience.circuit_breakers` breaker by breaker and key by key, so that every
    /// unknown key and bad value is reported with the breaker's name.
    fn resilience(&mut self) -> ResilienceConfig {
        let mut config = ResilienceConfig::default();
        let Some(value) = self.merged.find(BREAKERS_KEY) else {
            return config;
        };
        let Value::Dict(_, breakers) = value else {
            self.problems
                .push(self.merged.invalid_at(BREAKERS_KEY, value));
            return config;
        };

        for (name, table) in breakers {
            let prefix = format!("{BREAKERS_KEY}.{name}");
            let Value::Dict(_, settings_table) = table else {
                self.problems.push(ConfigProblem::InvalidValue {
                    value: self.merged.display_value(&prefix, Some(table)),
                    origin: self.merged.source_of(table),
                    expected:
                        "a table of circuit breaker settings, such as failure_rate_threshold = 50"
                            .to_owned(),
                    key: prefix,
                });
                continue;
            };
            let mut settings = CircuitBreakerSettings::default();
            for (setting, value) in settings_table {
                self.breaker_setting(&mut settings, &prefix, setting, value);
            }
            config.circuit_breakers.insert(name.clone(), settings);
        }
        config
    }

    fn breaker_setting(
        &mut self,
        settings: &mut CircuitBreakerSettings,
        prefix: &str,
        setting: &str,
        value: &Value,
    ) {
        let key = format!("{prefix}.{setting}");
        let Some(info) = find_breaker_key(setting) else {
            let names = CIRCUIT_BREAKER_KEYS.iter().map(|info| info.key);
            self.problems.push(ConfigProblem::UnknownKey {
                origin: self.merged.source_of(value),
                suggestion: nearest(setting, names),
                key,
            });
            return;
        };
        if set_breaker_setting(settings, setting, value).is_none() {
            self.problems.push(ConfigProblem::InvalidValue {
                value: self.merged.display_value(&key, Some(value)),
                origin: self.merged.source_of(value),
                expected: info.expected.to_owned(),
                key,
            });
        }
    }

    /// Extracts one key, or records why it is invalid and returns `fallback`.
    fn value<T: DeserializeOwned>(&mut self, key: &'static str, fallback: T) -> T {
        match self.merged.figment.extract_inner::<T>(key) {
            Ok(value) => value,
            Err(error) => {
                // A missing key means its section was replaced by a non-table, which
                // `check_keys` reports; attributes are checked there too.
                if !error.missing() && key != FREE_TABLE_KEY {
                    self.reject(key);
                }
                fallback
            }
        }
    }

    fn duration(&mut self, key: &'static str, fallback: Duration) -> Duration {
        let text: String = self.value(key, String::new());
        if text.is_empty()
            && self
                .merged
                .find(key)
                .is_none_or(|value| value.as_str().is_none())
        {
            return fallback;
        }
        match humantime::parse_duration(text.trim()) {
            Ok(duration) => duration,
            Err(_) => {
                self.reject(key);
                fallback
            }
        }
    }

    fn reject(&mut self, key: &'static str) {
        let expected = find_key(key).map_or("a valid value", |info| info.expected);
        self.problems
            .push(self.merged.invalid(key, expected.to_owned()));
    }
}

#[cfg(test)]
mod tests;
