//! Environment variables: the fixed `OBSKIT_*` table, `RUST_LOG` and the OpenTelemetry variables.

use std::collections::BTreeMap;

use figment::value::{Dict, Value};

use super::error::ConfigProblem;
use super::keys::{find_key, nearest};
use super::source::{Layer, ValueSource};

/// One environment variable that obskit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// Variable name.
    pub name: &'static str,
    /// The configuration key it sets; `None` for `OBSKIT_CONFIG_FILE`, which names the file.
    pub key: Option<&'static str>,
    kind: EnvKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvKind {
    /// The path of the configuration file.
    ConfigFile,
    /// Text; durations are text too and are parsed with the other sources' values.
    Text,
    /// Text that must not be empty, because an empty value would silently turn off a check.
    RequiredText,
    Integer,
    Float,
    /// `OTEL_RESOURCE_ATTRIBUTES`.
    ResourceAttributes,
    /// A case-insensitive name, stored in lowercase.
    Name,
    /// `true` or `false`, case-insensitive.
    Bool,
    /// Integer milliseconds, as the OpenTelemetry variables write durations.
    Millis,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs with percent-encoded values.
    Headers,
    /// `OTEL_SDK_DISABLED`: `true` sets the key to `none`, `false` leaves it alone.
    SdkDisabled,
    /// A comma-separated list; entries are trimmed and empty entries are skipped.
    List,
}

const fn var(name: &'static str, key: Option<&'static str>, kind: EnvKind) -> EnvVar {
    EnvVar { name, key, kind }
}

/// Name of the variable that contains the configuration file path.
pub(crate) const CONFIG_FILE_VAR: &str = "OBSKIT_CONFIG_FILE";

/// Every environment variable obskit reads, lowest to highest precedence.
///
/// Later entries override earlier ones that set the same key, so `OBSKIT_SERVICE_NAME` wins
/// over `OTEL_SERVICE_NAME`, which wins over `service.name` in `OTEL_RESOURCE_ATTRIBUTES`.
pub const ENV_VARS: &[EnvVar] = &[
    var(CONFIG_FILE_VAR, None, EnvKind::ConfigFile),
    var(
        "OTEL_RESOURCE_ATTRIBUTES",
        Some("service.resource_attributes"),
        EnvKind::ResourceAttributes,
    ),
    var("OTEL_SERVICE_NAME", Some("service.name"), EnvKind::Text),
    var("RUST_LOG", Some("logging.level"), EnvKind::Text),
    var("OBSKIT_SERVICE_NAME", Some("service.name"), EnvKind::Text),
    var(
        "OBSKIT_ENVIRONMENT",
        Some("service.environment"),
        EnvKind::Text,
    ),
    var("OBSKIT_VERSION", Some("service.version"), EnvKind::Text),
    var("OBSKIT_LOG_LEVEL", Some("logging.level"), EnvKind::Text),
    var("OBSKIT_LOG_FORMAT", Some("logging.format"), EnvKind::Text),
    var(
        "OBSKIT_LOG_SAMPLE_RATE",
        Some("logging.sample_rate"),
        EnvKind::Float,
    ),
    var(
        "OBSKIT_LOG_QUEUE_CAPACITY",
        Some("logging.queue_capacity"),
        EnvKind::Integer,
    ),
    var(
        "OBSKIT_METRICS_AUTH_TOKEN",
        Some("metrics.auth_token"),
        EnvKind::RequiredText,
    ),
    var(
        "OBSKIT_METRICS_AUTH_TOKEN_FILE",
        Some("metrics.auth_token_file"),
        EnvKind::RequiredText,
    ),
    var(
        "OBSKIT_METRICS_RATE_LIMIT",
        Some("metrics.rate_limit"),
        EnvKind::Float,
    ),
    var(
        "OBSKIT_METRICS_MAX_SERIES",
        Some("metrics.max_series_per_metric"),
        EnvKind::Integer,
    ),
    var(
        "OBSKIT_HEALTH_CHECK_TIMEOUT",
        Some("health.check_timeout"),
        EnvKind::Text,
    ),
    var(
        "OBSKIT_SHUTDOWN_TIMEOUT",
        Some("shutdown.timeout"),
        EnvKind::Text,
    ),
    var(
        "OBSKIT_SHUTDOWN_PRE_STOP_DELAY",
        Some("shutdown.pre_stop_delay"),
        EnvKind::Text,
    ),
    var(
        "OTEL_TRACES_EXPORTER",
        Some("tracing.exporter"),
        EnvKind::Name,
    ),
    var(
        "OTEL_SDK_DISABLED",
        Some("tracing.exporter"),
        EnvKind::SdkDisabled,
    ),
    var(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        Some("tracing.protocol"),
        EnvKind::Name,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        Some("tracing.protocol"),
        EnvKind::Name,
    ),
    var(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        Some("tracing.endpoint"),
        EnvKind::Text,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        Some("tracing.traces_endpoint"),
        EnvKind::Text,
    ),
    var(
        "OTEL_EXPORTER_OTLP_HEADERS",
        Some("tracing.headers"),
        EnvKind::Headers,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        Some("tracing.headers"),
        EnvKind::Headers,
    ),
    var(
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        Some("tracing.compression"),
        EnvKind::Name,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        Some("tracing.compression"),
        EnvKind::Name,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        Some("tracing.timeout"),
        EnvKind::Millis,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        Some("tracing.timeout"),
        EnvKind::Millis,
    ),
    var(
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        Some("tracing.certificate"),
        EnvKind::Text,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        Some("tracing.certificate"),
        EnvKind::Text,
    ),
    var(
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        Some("tracing.client_certificate"),
        EnvKind::Text,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
        Some("tracing.client_certificate"),
        EnvKind::Text,
    ),
    var(
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        Some("tracing.client_key"),
        EnvKind::Text,
    ),
    var(
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
        Some("tracing.client_key"),
        EnvKind::Text,
    ),
    var(
        "OTEL_TRACES_SAMPLER",
        Some("tracing.sampler"),
        EnvKind::Name,
    ),
    var(
        "OTEL_TRACES_SAMPLER_ARG",
        Some("tracing.sampler_arg"),
        EnvKind::Float,
    ),
    var(
        "OBSKIT_TRACE_SAMPLE_RATE",
        Some("tracing.sample_rate"),
        EnvKind::Float,
    ),
    var(
        "OBSKIT_TRACE_KEEP_ERRORS",
        Some("tracing.keep_errors"),
        EnvKind::Bool,
    ),
    var(
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        Some("tracing.attribute_value_length_limit"),
        EnvKind::Integer,
    ),
    var(
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        Some("tracing.attribute_value_length_limit"),
        EnvKind::Integer,
    ),
    var(
        "OTEL_BSP_MAX_QUEUE_SIZE",
        Some("tracing.batch.max_queue_size"),
        EnvKind::Integer,
    ),
    var(
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        Some("tracing.batch.max_export_batch_size"),
        EnvKind::Integer,
    ),
    var(
        "OTEL_BSP_SCHEDULE_DELAY",
        Some("tracing.batch.schedule_delay"),
        EnvKind::Millis,
    ),
    var(
        "OTEL_BSP_EXPORT_TIMEOUT",
        Some("tracing.batch.export_timeout"),
        EnvKind::Millis,
    ),
    var(
        "OBSKIT_TRACE_SHUTDOWN_TIMEOUT",
        Some("tracing.shutdown_timeout"),
        EnvKind::Text,
    ),
    var(
        "OBSKIT_REDACT_ENABLED",
        Some("redact.enabled"),
        EnvKind::Bool,
    ),
    var(
        "OBSKIT_REDACT_FIELDS_ADD",
        Some("redact.fields.add"),
        EnvKind::List,
    ),
    var(
        "OBSKIT_REDACT_FIELDS_REMOVE",
        Some("redact.fields.remove"),
        EnvKind::List,
    ),
    var(
        "OBSKIT_REDACT_ALLOW_FIELDS",
        Some("redact.allow_fields"),
        EnvKind::List,
    ),
    var(
        "OBSKIT_REDACT_RULES_FIELD",
        Some("redact.rules.field"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_EMAIL",
        Some("redact.rules.email"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_CARD",
        Some("redact.rules.card"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_SSN",
        Some("redact.rules.ssn"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_PHONE",
        Some("redact.rules.phone"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_IBAN",
        Some("redact.rules.iban"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_JWT",
        Some("redact.rules.jwt"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_CREDENTIALS",
        Some("redact.rules.credentials"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_AWS_KEY",
        Some("redact.rules.aws_key"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_TOKEN",
        Some("redact.rules.token"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_PRIVATE_KEY",
        Some("redact.rules.private_key"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_URL_CREDENTIALS",
        Some("redact.rules.url_credentials"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_RULES_IP",
        Some("redact.rules.ip"),
        EnvKind::Name,
    ),
    var(
        "OBSKIT_REDACT_HASH_KEY",
        Some("redact.hash_key"),
        EnvKind::RequiredText,
    ),
    var(
        "OBSKIT_REDACT_MAX_VALUE_BYTES",
        Some("redact.max_value_bytes"),
        EnvKind::Integer,
    ),
];

/// Resource attributes in `OTEL_RESOURCE_ATTRIBUTES` that fill typed keys instead of
/// `service.resource_attributes`.
const PROMOTED_ATTRIBUTES: &[(&str, &str)] = &[
    ("service.name", "name"),
    ("deployment.environment.name", "environment"),
    ("service.version", "version"),
];

/// Returns whether obskit reads or rejects the variable `name`.
fn is_relevant(name: &str) -> bool {
    name.starts_with("OBSKIT_") || ENV_VARS.iter().any(|var| var.name == name)
}

/// Collects the relevant variables of the process environment.
pub(crate) fn process_vars(problems: &mut Vec<ConfigProblem>) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|name| is_relevant(name)) else {
            continue;
        };
        match value.into_string() {
            Ok(value) => {
                vars.insert(name.to_owned(), value);
            }
            Err(_) => problems.push(ConfigProblem::NonUnicodeEnv {
                name: name.to_owned(),
            }),
        }
    }
    vars
}

/// Keeps the relevant variables of a caller-supplied environment.
pub(crate) fn filter_vars(
    vars: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(name, _)| is_relevant(name))
        .collect()
}

/// Returns the configuration file path from `OBSKIT_CONFIG_FILE`. An empty value counts as unset.
pub(crate) fn config_file(vars: &BTreeMap<String, String>) -> Option<&str> {
    vars.get(CONFIG_FILE_VAR)
        .map(String::as_str)
        .filter(|path| !path.is_empty())
}

/// Turns the environment into figment layers, lowest precedence first, one per variable.
pub(crate) fn layers(
    vars: &BTreeMap<String, String>,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<Layer> {
    reject_unknown(vars, problems);

    let obskit_log_level_set = vars
        .get("OBSKIT_LOG_LEVEL")
        .is_some_and(|value| !value.is_empty());

    let mut layers = Vec::new();
    for var in ENV_VARS {
        let Some(raw) = vars.get(var.name) else {
            continue;
        };
        if var.name == "RUST_LOG" && obskit_log_level_set {
            continue;
        }
        if let Some(dict) = parse_var(var, raw, problems) {
            layers.push(Layer::new(ValueSource::Env(var.name.to_owned()), dict));
        }
    }
    layers
}

fn reject_unknown(vars: &BTreeMap<String, String>, problems: &mut Vec<ConfigProblem>) {
    let known = ENV_VARS.iter().map(|var| var.name);
    for name in vars.keys() {
        if name.starts_with("OBSKIT_") && !known.clone().any(|known| known == name) {
            let candidates = known.clone().filter(|known| known.starts_with("OBSKIT_"));
            problems.push(ConfigProblem::UnknownEnvVar {
                name: name.clone(),
                suggestion: nearest(name, candidates),
            });
        }
    }
}

/// Parses one variable into a dict, or records why it cannot be.
fn parse_var(var: &EnvVar, raw: &str, problems: &mut Vec<ConfigProblem>) -> Option<Dict> {
    let key = var.key?;

    if raw.is_empty() {
        if var.kind == EnvKind::RequiredText {
            problems.push(invalid(var, key, raw));
        }
        return None;
    }

    let value = match var.kind {
        EnvKind::ConfigFile => return None,
        // Surrounding whitespace is dropped, as numbers drop it. A value of only whitespace is
        // kept so that validation names it instead of it silently counting as unset. Tokens
        // are kept as given: validation rejects whitespace in them.
        EnvKind::Text => {
            let trimmed = raw.trim();
            Value::from(if trimmed.is_empty() { raw } else { trimmed }.to_owned())
        }
        EnvKind::RequiredText => Value::from(raw.to_owned()),
        EnvKind::Integer => match raw.trim().parse::<u64>() {
            Ok(number) => Value::from(number),
            Err(_) => {
                problems.push(invalid(var, key, raw));
                return None;
            }
        },
        EnvKind::Float => match raw.trim().parse::<f64>() {
            Ok(number) => Value::from(number),
            Err(_) => {
                problems.push(invalid(var, key, raw));
                return None;
            }
        },
        EnvKind::ResourceAttributes => return resource_attributes_dict(raw, problems),
        EnvKind::Name => Value::from(raw.trim().to_ascii_lowercase()),
        EnvKind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Value::from(true),
            "false" => Value::from(false),
            _ => {
                problems.push(invalid(var, key, raw));
                return None;
            }
        },
        EnvKind::Millis => match raw.trim().parse::<u64>() {
            Ok(millis) => Value::from(format!("{millis}ms")),
            Err(_) => {
                problems.push(ConfigProblem::InvalidValue {
                    key: key.to_owned(),
                    value: format!("{raw:?}"),
                    origin: ValueSource::Env(var.name.to_owned()),
                    expected: "an integer number of milliseconds, such as \"5000\"".to_owned(),
                });
                return None;
            }
        },
        EnvKind::Headers => return headers_dict(var, key, raw, problems),
        EnvKind::List => Value::from(
            raw.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| Value::from(entry.to_owned()))
                .collect::<Vec<Value>>(),
        ),
        EnvKind::SdkDisabled => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Value::from("none"),
            "false" => return None,
            _ => {
                problems.push(ConfigProblem::InvalidValue {
                    key: key.to_owned(),
                    value: format!("{raw:?}"),
                    origin: ValueSource::Env(var.name.to_owned()),
                    expected: "true (turns span export off) or false".to_owned(),
                });
                return None;
            }
        },
    };
    Some(nest(key, value))
}

fn invalid(var: &EnvVar, key: &str, raw: &str) -> ConfigProblem {
    let expected = find_key(key).map_or("a valid value", |info| info.expected);
    let value = if super::keys::is_secret_key(key) && !raw.is_empty() {
        "****".to_owned()
    } else {
        format!("{raw:?}")
    };
    ConfigProblem::InvalidValue {
        key: key.to_owned(),
        value,
        origin: ValueSource::Env(var.name.to_owned()),
        expected: expected.to_owned(),
    }
}

/// Builds the `tracing.headers` dict from `OTEL_EXPORTER_OTLP_HEADERS`. Values are secrets, so
/// a rejected entry is quoted with its name only.
fn headers_dict(
    var: &EnvVar,
    key: &str,
    raw: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<Dict> {
    let mut headers = Dict::new();
    let mut valid = true;
    for (index, entry) in raw.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        match parse_entry(entry) {
            Ok((name, value)) => {
                headers.insert(name.to_ascii_lowercase(), Value::from(value));
            }
            Err(reason) => {
                valid = false;
                // An entry without `=` may be a pasted secret, so it is not quoted at all.
                let value = match entry.split_once('=') {
                    Some((name, _)) => {
                        format!("entry {} {:?}", index + 1, format!("{}=****", name.trim()))
                    }
                    None => format!("entry {} (no \"=\" in it)", index + 1),
                };
                problems.push(ConfigProblem::InvalidValue {
                    key: key.to_owned(),
                    value,
                    origin: ValueSource::Env(var.name.to_owned()),
                    expected: format!(
                        "comma-separated name=value pairs with percent-encoded values ({reason})"
                    ),
                });
            }
        }
    }
    valid.then(|| nest(key, Value::from(headers)))
}

/// Builds the `service` dict from `OTEL_RESOURCE_ATTRIBUTES`.
fn resource_attributes_dict(raw: &str, problems: &mut Vec<ConfigProblem>) -> Option<Dict> {
    let attributes = match parse_resource_attributes(raw) {
        Ok(attributes) => attributes,
        Err(found) => {
            problems.extend(found);
            return None;
        }
    };

    let mut service = Dict::new();
    let mut others = Dict::new();
    for (name, value) in attributes {
        let promoted = PROMOTED_ATTRIBUTES
            .iter()
            .find(|(attribute, _)| *attribute == name);
        match promoted {
            Some((_, field)) if !value.is_empty() => {
                service.insert((*field).to_owned(), Value::from(value));
            }
            Some(_) => {}
            None => {
                others.insert(name, Value::from(value));
            }
        }
    }
    if !others.is_empty() {
        service.insert("resource_attributes".to_owned(), Value::from(others));
    }

    let mut root = Dict::new();
    root.insert("service".to_owned(), Value::from(service));
    Some(root)
}

/// Parses `OTEL_RESOURCE_ATTRIBUTES`: comma-separated `key=value` pairs, both percent-decoded
/// and trimmed. Empty entries are skipped; a repeated key keeps its last value.
pub(crate) fn parse_resource_attributes(
    raw: &str,
) -> Result<Vec<(String, String)>, Vec<ConfigProblem>> {
    let mut attributes = Vec::new();
    let mut problems = Vec::new();

    for entry in raw.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        match parse_entry(entry) {
            Ok(pair) => attributes.push(pair),
            Err(reason) => problems.push(ConfigProblem::InvalidResourceAttribute {
                entry: entry.to_owned(),
                reason,
            }),
        }
    }

    if problems.is_empty() {
        Ok(attributes)
    } else {
        Err(problems)
    }
}

fn parse_entry(entry: &str) -> Result<(String, String), &'static str> {
    let (key, value) = entry.split_once('=').ok_or("missing `=`")?;
    let key = percent_decode(key.trim())?;
    if key.is_empty() {
        return Err("empty key");
    }
    let value = percent_decode(value.trim())?;
    Ok((key, value))
}

fn percent_decode(text: &str) -> Result<String, &'static str> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'%' {
            bytes.push(byte);
            rest = tail;
            continue;
        }
        let (high, low) = match tail {
            [high, low, ..] => (hex_digit(*high), hex_digit(*low)),
            _ => (None, None),
        };
        let (Some(high), Some(low)) = (high, low) else {
            return Err("invalid percent-encoding; `%` must be followed by two hex digits");
        };
        bytes.push(high << 4 | low);
        rest = tail.get(2..).unwrap_or_default();
    }
    String::from_utf8(bytes).map_err(|_| "percent-decoded text is not valid UTF-8")
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// Wraps `value` in nested dicts along the dotted `key`.
pub(crate) fn nest(key: &str, value: Value) -> Dict {
    let mut segments = key.rsplit('.');
    let mut dict = Dict::new();
    dict.insert(segments.next().unwrap_or(key).to_owned(), value);
    for segment in segments {
        let mut outer = Dict::new();
        outer.insert(segment.to_owned(), Value::from(dict));
        dict = outer;
    }
    dict
}
