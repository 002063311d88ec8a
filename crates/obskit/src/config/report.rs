//! The effective value and source of every configuration key, with secrets masked.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::Value as Json;

use super::keys::{BREAKERS_KEY, FREE_TABLE_KEY, HEADERS_KEY, KEYS, is_secret_key};
use super::{Config, ValueSource};

/// The effective value of every leaf key and the source that set it.
///
/// Secrets (keys whose name contains `token`, `secret` or `password`) show as `"****"` when set.
/// Each entry of `service.resource_attributes` is listed as its own key.
///
/// `Display` prints one aligned line per key:
///
/// ```text
/// logging.level                   "debug"   env OBSKIT_LOG_LEVEL
/// logging.format                  "json"    default
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ConfigReport {
    entries: Vec<ReportEntry>,
}

/// One line of a [`ConfigReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportEntry {
    /// Dotted key.
    pub key: String,
    /// Effective value as JSON; `null` when unset, `"****"` for a set secret.
    pub value: Json,
    /// Source that set the value.
    pub source: ValueSource,
}

impl ConfigReport {
    pub(crate) fn new(config: &Config, origin: impl Fn(&str) -> ValueSource) -> Self {
        let tree = serde_json::to_value(config).unwrap_or(Json::Null);
        let mut entries = Vec::new();

        for info in KEYS {
            let value = find(&tree, info.key).cloned().unwrap_or(Json::Null);
            let attributes = value.as_object().filter(|map| !map.is_empty());
            match attributes {
                Some(attributes) if info.key == FREE_TABLE_KEY => {
                    for (name, value) in attributes {
                        let key = format!("{FREE_TABLE_KEY}.{name}");
                        let source = origin(&key);
                        entries.push(entry(key, value.clone(), source));
                    }
                }
                Some(breakers) if info.key == BREAKERS_KEY => {
                    for (name, settings) in breakers {
                        push_breaker(&mut entries, name, settings, &origin);
                    }
                }
                _ => entries.push(entry(info.key.to_owned(), value, origin(info.key))),
            }
        }
        Self { entries }
    }

    /// Returns every entry, in the order of the key table.
    pub fn entries(&self) -> &[ReportEntry] {
        &self.entries
    }

    /// Finds the entry for `key`.
    pub fn get(&self, key: &str) -> Option<&ReportEntry> {
        self.entries.iter().find(|entry| entry.key == key)
    }
}

/// Lists each key set for one breaker, or the breaker's empty table when none is set.
fn push_breaker(
    entries: &mut Vec<ReportEntry>,
    name: &str,
    settings: &Json,
    origin: &impl Fn(&str) -> ValueSource,
) {
    let prefix = format!("{BREAKERS_KEY}.{name}");
    match settings.as_object().filter(|map| !map.is_empty()) {
        Some(settings) => {
            for (setting, value) in settings {
                let key = format!("{prefix}.{setting}");
                let source = origin(&key);
                entries.push(entry(key, value.clone(), source));
            }
        }
        None => {
            let source = origin(&prefix);
            entries.push(entry(prefix, settings.clone(), source));
        }
    }
}

fn entry(key: String, value: Json, source: ValueSource) -> ReportEntry {
    let value = if let Json::Object(headers) = &value
        && key == HEADERS_KEY
    {
        // Header names are shown so that a missing header can be spotted; values are masked.
        let masked = headers
            .keys()
            .map(|name| (name.clone(), Json::String("****".to_owned())))
            .collect();
        Json::Object(masked)
    } else if is_secret_key(&key) && !value.is_null() {
        Json::String("****".to_owned())
    } else if let Json::String(text) = &value
        && key.ends_with("endpoint")
    {
        // Endpoints may carry credentials in their user information or query.
        Json::String(super::mask_url(text))
    } else {
        value
    };
    ReportEntry { key, value, source }
}

fn find<'a>(tree: &'a Json, key: &str) -> Option<&'a Json> {
    key.split('.')
        .try_fold(tree, |node, segment| node.get(segment))
}

/// Widest column, in bytes, that the text report pads to. A longer key or value is printed
/// whole and pushes only its own line's source to the right.
const MAX_COLUMN: usize = 60;

impl fmt::Display for ConfigReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = self
            .entries
            .iter()
            .map(|entry| entry.value.to_string())
            .collect();
        let column = |widths: &mut dyn Iterator<Item = usize>| {
            widths
                .filter(|width| *width <= MAX_COLUMN)
                .max()
                .unwrap_or(0)
        };
        let key_width = column(&mut self.entries.iter().map(|entry| entry.key.len()));
        let value_width = column(&mut values.iter().map(String::len));

        // Padding is written by hand: `{:<width$}` panics when the width exceeds `u16::MAX`.
        for (entry, value) in self.entries.iter().zip(&values) {
            f.write_str(&entry.key)?;
            pad(f, key_width.saturating_sub(entry.key.len()) + 2)?;
            f.write_str(value)?;
            pad(f, value_width.saturating_sub(value.len()) + 2)?;
            writeln!(f, "{}", entry.source)?;
        }
        Ok(())
    }
}

fn pad(f: &mut fmt::Formatter<'_>, spaces: usize) -> fmt::Result {
    (0..spaces).try_for_each(|_| f.write_char(' '))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Secret;

    #[test]
    fn report_lists_every_key_once() {
        let report = ConfigReport::new(&Config::default(), |_| ValueSource::Default);
        let keys: Vec<&str> = report
            .entries()
            .iter()
            .map(|entry| entry.key.as_str())
            .collect();
        let expected: Vec<&str> = KEYS.iter().map(|info| info.key).collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn report_masks_set_secret() {
        let mut config = Config::default();
        config.metrics.auth_token = Some(Secret::new("hunter2"));
        let report = ConfigReport::new(&config, |_| ValueSource::Code);
        let token = report
            .get("metrics.auth_token")
            .map(|entry| entry.value.clone());
        assert_eq!(token, Some(Json::String("****".to_owned())));
        assert!(!report.to_string().contains("hunter2"));
    }

    #[test]
    fn report_masks_header_values() {
        let mut config = Config::default();
        config.tracing.headers =
            BTreeMap::from([("authorization".to_owned(), Secret::new("Bearer abc"))]);
        let report = ConfigReport::new(&config, |_| ValueSource::Code);
        let headers = report
            .get("tracing.headers")
            .map(|entry| entry.value.clone());
        assert_eq!(headers, Some(serde_json::json!({"authorization": "****"})));
        assert!(!report.to_string().contains("Bearer abc"));
    }

    #[test]
    fn report_shows_unset_secret_as_null() {
        let report = ConfigReport::new(&Config::default(), |_| ValueSource::Default);
        let token = report
            .get("metrics.auth_token")
            .map(|entry| entry.value.clone());
        assert_eq!(token, Some(Json::Null));
    }

    #[test]
    fn report_masks_endpoint_credentials() {
        let mut config = Config::default();
        config.tracing.endpoint = Some("http://user:hunter2@127.0.0.1:4317/?token=abc".to_owned());
        config.tracing.traces_endpoint = Some("https://collector/v1/traces".to_owned());
        let report = ConfigReport::new(&config, |_| ValueSource::Default);
        let endpoint = report
            .get("tracing.endpoint")
            .map(|entry| entry.value.clone());
        assert_eq!(
            endpoint,
            Some(Json::from("http://****@127.0.0.1:4317/?token=****"))
        );
        let traces = report
            .get("tracing.traces_endpoint")
            .map(|entry| entry.value.clone());
        assert_eq!(traces, Some(Json::from("https://collector/v1/traces")));
    }

    #[test]
    fn report_lists_each_resource_attribute() {
        let mut config = Config::default();
        config.service.resource_attributes = BTreeMap::from([
            ("k8s.pod.name".to_owned(), "api-1".to_owned()),
            ("db.password".to_owned(), "p".to_owned()),
        ]);
        let report = ConfigReport::new(&config, |key| {
            if key.ends_with("pod.name") {
                ValueSource::Env("OTEL_RESOURCE_ATTRIBUTES".to_owned())
            } else {
                ValueSource::Default
            }
        });
        let pod = report.get("service.resource_attributes.k8s.pod.name");
        assert_eq!(
            pod.map(|entry| entry.value.clone()),
            Some(Json::from("api-1"))
        );
        assert_eq!(
            pod.map(|entry| entry.source.to_string()),
            Some("env OTEL_RESOURCE_ATTRIBUTES".to_owned())
        );
        let password = report.get("service.resource_attributes.db.password");
        assert_eq!(
            password.map(|entry| entry.value.clone()),
            Some(Json::from("****"))
        );
        assert!(report.get("service.resource_attributes").is_none());
    }

    #[test]
    fn report_text_long_value() {
        let mut config = Config::default();
        config.service.name = "x".repeat(70_000);
        let report = ConfigReport::new(&config, |_| ValueSource::Default);
        let text = report.to_string();
        let name = text.lines().find(|line| line.starts_with("service.name "));
        let fields: Vec<&str> = name.unwrap_or_default().split_whitespace().collect();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields.get(1).map(|value| value.len()), Some(70_002));
        let level = text.lines().find(|line| line.starts_with("logging.level "));
        assert!(
            level.is_some_and(|line| line.len() < 2 * MAX_COLUMN),
            "{level:?}"
        );
    }

    #[test]
    fn report_text_has_value_and_source() {
        let report = ConfigReport::new(&Config::default(), |_| ValueSource::Default);
        let text = report.to_string();
        let line = text.lines().find(|line| line.starts_with("logging.level "));
        let fields: Vec<&str> = line.unwrap_or_default().split_whitespace().collect();
        assert_eq!(fields, ["logging.level", "\"info\"", "default"]);
    }
}
