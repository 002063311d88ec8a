//! OpenSLO v1 `SLO` documents: the subset that maps onto obskit's HTTP SLOs.
//!
//! # Mapping
//!
//! | OpenSLO field | obskit |
//! |---|---|
//! | `apiVersion: openslo/v1`, `kind: SLO` | required |
//! | `metadata.name` | [`SloDefinition::name`] |
//! | `metadata.annotations["obskit.dev/route"]` | [`Selector::route`](super::Selector::route), required |
//! | `metadata.annotations["obskit.dev/method"]` | [`Selector::method`](super::Selector::method), optional |
//! | `spec.description` | [`SloDefinition::description`] |
//! | `spec.indicator.spec.ratioMetric` with `good` and `total` | availability |
//! | `spec.indicator.spec.ratioMetric` with `bad` and `total` | error rate |
//! | `spec.indicator.spec.thresholdMetric` with `op: lte` and `value` in seconds | latency with that threshold, a bucket boundary |
//! | `spec.timeWindow[0]` with `isRolling: true` and `duration` (`28d`, `4w`, `720h`) | [`SloDefinition::period`] |
//! | `spec.budgetingMethod: Occurrences` | required |
//! | `spec.objectives[0].target` (0 to 1) or `targetPercent` (0 to 100) | [`SloDefinition::target`] |
//!
//! The metric sources of the indicator are not read: obskit counts the requests its own
//! middleware records, selected by route and method. The descriptive fields
//! `metadata.displayName`, `metadata.labels`, `spec.service`, `spec.indicator.metadata` and
//! an objective's `displayName` are accepted and not used. Everything else is rejected with
//! the path of the field: calendar windows, `Timeslices` and `RatioTimeslices`, more than one
//! objective, composite objectives, `indicatorRef`, `alertPolicies`, raw ratios, `op` and
//! `value` on a ratio objective, kinds other than `SLO`, and any unknown field.

use std::fmt;

use figment::Figment;
use figment::providers::{Format, Yaml};
use serde_json::Value;

use super::decimal::Decimal;
use super::definition::{SloDefinition, SloError, SloSpec};
use super::target::{Target, TargetError, TargetText};

/// Annotation holding the route template an OpenSLO document selects.
pub const ROUTE_ANNOTATION: &str = "obskit.dev/route";
/// Annotation holding the request method an OpenSLO document selects.
pub const METHOD_ANNOTATION: &str = "obskit.dev/method";

/// An OpenSLO document that obskit cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenSloError {
    /// The text is not YAML.
    #[error("OpenSLO document {document}: invalid YAML: {message}")]
    Yaml {
        /// Position of the document in the text, from 1.
        document: usize,
        /// The parser's message.
        message: String,
    },
    /// A field is missing, has the wrong type or a value outside the supported subset.
    #[error("OpenSLO document {document} ({slo}): {field}: {reason}")]
    Unsupported {
        /// Position of the document in the text, from 1.
        document: usize,
        /// `metadata.name`, or `unnamed`.
        slo: String,
        /// Path of the field, such as `spec.budgetingMethod`.
        field: String,
        /// The problem and the accepted values.
        reason: String,
    },
    /// The document maps to an invalid SLO definition.
    #[error("OpenSLO document {document}: {source}")]
    Definition {
        /// Position of the document in the text, from 1.
        document: usize,
        /// The definition's problem.
        source: SloError,
    },
}

/// Parses every OpenSLO v1 `SLO` document in `text`, separated by `---` lines.
///
/// # Example
///
/// ```
/// use obskit::slo::{SloKind, parse_openslo};
///
/// let yaml = r#"
/// apiVersion: openslo/v1
/// kind: SLO
/// metadata:
///   name: orders-availability
///   annotations:
///     obskit.dev/route: /orders/{id}
/// spec:
///   budgetingMethod: Occurrences
///   timeWindow:
///     - duration: 28d
///       isRolling: true
///   indicator:
///     metadata:
///       name: orders-good
///     spec:
///       ratioMetric:
///         counter: true
///         good:
///           metricSource:
///             type: Prometheus
///             spec:
///               query: sum(rate(http_server_request_duration_seconds_count{http_response_status_code!~"5.."}[5m]))
///         total:
///           metricSource:
///             type: Prometheus
///             spec:
///               query: sum(rate(http_server_request_duration_seconds_count[5m]))
///   objectives:
///     - displayName: good
///       target: 0.999
/// "#;
/// let slos = parse_openslo(yaml)?;
/// assert_eq!(slos[0].kind, SloKind::Availability);
/// assert_eq!(slos[0].target.percent(), "99.9");
/// # Ok::<(), obskit::slo::OpenSloError>(())
/// ```
///
/// # Errors
///
/// [`OpenSloError`] for the first document that is not YAML, falls outside the supported
/// subset (see the module docs), or maps to an invalid definition.
pub fn parse_openslo(text: &str) -> Result<Vec<SloDefinition>, OpenSloError> {
    let mut definitions = Vec::new();
    for (index, document) in split_documents(text).into_iter().enumerate() {
        let number = index + 1;
        if document.trim().is_empty() {
            continue;
        }
        let value: Value = Figment::from(Yaml::string(&document))
            .extract()
            .map_err(|error| OpenSloError::Yaml {
                document: number,
                message: error.to_string(),
            })?;
        definitions.push(Document::new(number, &value).definition()?);
    }
    Ok(definitions)
}

fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

struct Document<'a> {
    number: usize,
    name: String,
    root: &'a Value,
}

impl<'a> Document<'a> {
    fn new(number: usize, root: &'a Value) -> Self {
        let name = root
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("unnamed")
            .to_owned();
        Self { number, name, root }
    }

    fn reject(&self, field: &str, reason: impl fmt::Display) -> OpenSloError {
        OpenSloError::Unsupported {
            document: self.number,
            slo: self.name.clone(),
            field: field.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Returns the value at a dotted `field`, or an error naming it as missing.
    fn get(&self, field: &str) -> Result<&'a Value, OpenSloError> {
        let pointer = format!("/{}", field.replace('.', "/"));
        self.root
            .pointer(&pointer)
            .filter(|value| !value.is_null())
            .ok_or_else(|| self.reject(field, "missing"))
    }

    fn string(&self, field: &str) -> Result<&'a str, OpenSloError> {
        self.get(field)?
            .as_str()
            .ok_or_else(|| self.reject(field, "expected a string"))
    }

    fn has(&self, field: &str) -> bool {
        self.get(field).is_ok()
    }

    fn definition(&self) -> Result<SloDefinition, OpenSloError> {
        let api_version = self.string("apiVersion")?;
        if api_version != "openslo/v1" {
            return Err(self.reject(
                "apiVersion",
                format!("{api_version:?} is not supported; expected \"openslo/v1\""),
            ));
        }
        let kind = self.string("kind")?;
        if kind != "SLO" {
            return Err(self.reject(
                "kind",
                format!("{kind:?} is not supported; only \"SLO\" documents define objectives"),
            ));
        }
        let name = self.string("metadata.name")?;

        let annotations = self.get("metadata.annotations").ok();
        let annotation = |key: &str| {
            annotations
                .and_then(|map| map.get(key))
                .and_then(Value::as_str)
        };
        let route = annotation(ROUTE_ANNOTATION).ok_or_else(|| {
            self.reject(
                "metadata.annotations",
                format!("missing {ROUTE_ANNOTATION:?}; set it to the route template, such as \"/orders/{{id}}\""),
            )
        })?;
        let method = annotation(METHOD_ANNOTATION).map(ToOwned::to_owned);

        let period = self.period()?;
        let budgeting = self.string("spec.budgetingMethod")?;
        if budgeting != "Occurrences" {
            return Err(self.reject(
                "spec.budgetingMethod",
                format!("{budgeting:?} is not supported; expected \"Occurrences\""),
            ));
        }
        let objective = self.objective()?;
        let (kind, target, threshold) = self.indicator(objective)?;
        self.check_fields(objective, threshold.is_some())?;

        let spec = SloSpec {
            kind: kind.to_owned(),
            target: TargetText(target),
            period,
            route: route.to_owned(),
            method,
            threshold,
            description: self
                .get("spec.description")
                .ok()
                .and_then(Value::as_str)
                .map(ToOwned::to_owned),
            runbook_url: None,
        };
        SloDefinition::from_spec(name, &spec).map_err(|source| OpenSloError::Definition {
            document: self.number,
            source,
        })
    }

    /// Rejects fields outside the mapped subset, so that nothing in a document is dropped
    /// unnoticed. The metric sources under the indicator are not read and not checked.
    fn check_fields(&self, objective: &Value, latency: bool) -> Result<(), OpenSloError> {
        if self.has("spec.alertPolicies") {
            return Err(self.reject(
                "spec.alertPolicies",
                "alert policies are not supported; `obskit slo rules` generates the burn-rate alerts of every SLO",
            ));
        }
        let ratio = "spec.indicator.spec.ratioMetric";
        for raw in ["raw", "rawType"] {
            if self.has(&format!("{ratio}.{raw}")) {
                return Err(self.reject(
                    &format!("{ratio}.{raw}"),
                    "raw ratios are not supported; use good/total or bad/total",
                ));
            }
        }
        let objective_fields: &[&str] = if latency {
            &["displayName", "op", "value", "target", "targetPercent"]
        } else {
            &["displayName", "target", "targetPercent"]
        };
        let levels: [(&str, Option<&Value>, &[&str]); 9] = [
            (
                "",
                Some(self.root),
                &["apiVersion", "kind", "metadata", "spec"],
            ),
            (
                "metadata",
                self.get("metadata").ok(),
                &["name", "displayName", "labels", "annotations"],
            ),
            (
                "spec",
                self.get("spec").ok(),
                &[
                    "description",
                    "service",
                    "indicator",
                    "timeWindow",
                    "budgetingMethod",
                    "objectives",
                ],
            ),
            (
                "spec.indicator",
                self.get("spec.indicator").ok(),
                &["metadata", "spec"],
            ),
            (
                "spec.indicator.spec",
                self.get("spec.indicator.spec").ok(),
                &["ratioMetric", "thresholdMetric"],
            ),
            (
                ratio,
                self.get(ratio).ok(),
                &["counter", "good", "bad", "total"],
            ),
            (
                "spec.indicator.spec.thresholdMetric",
                self.get("spec.indicator.spec.thresholdMetric").ok(),
                &["metricSource"],
            ),
            (
                "spec.timeWindow[0]",
                self.get("spec.timeWindow/0").ok(),
                &["duration", "isRolling"],
            ),
            ("spec.objectives[0]", Some(objective), objective_fields),
        ];
        for (path, value, known) in levels {
            let Some(fields) = value.and_then(Value::as_object) else {
                continue;
            };
            if let Some(field) = fields.keys().find(|field| !known.contains(&field.as_str())) {
                let at = if path.is_empty() {
                    field.clone()
                } else {
                    format!("{path}.{field}")
                };
                return Err(self.reject(
                    &at,
                    format!(
                        "not supported here, so it would be ignored; the fields read here are {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn period(&self) -> Result<String, OpenSloError> {
        let windows = self
            .get("spec.timeWindow")?
            .as_array()
            .ok_or_else(|| self.reject("spec.timeWindow", "expected a list with one window"))?;
        let [window] = windows.as_slice() else {
            return Err(self.reject(
                "spec.timeWindow",
                format!("{} windows given; expected exactly one", windows.len()),
            ));
        };
        if window.get("calendar").is_some()
            || window.get("isRolling").and_then(Value::as_bool) != Some(true)
        {
            return Err(self.reject(
                "spec.timeWindow[0].isRolling",
                "calendar-aligned windows are not supported; set isRolling: true without calendar",
            ));
        }
        let duration = window
            .get("duration")
            .and_then(Value::as_str)
            .ok_or_else(|| self.reject("spec.timeWindow[0].duration", "missing"))?;
        let supported = duration
            .strip_suffix(['m', 'h', 'd', 'w'])
            .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()));
        if !supported {
            return Err(self.reject(
                "spec.timeWindow[0].duration",
                format!("{duration:?} is not supported; use a number of minutes, hours, days or weeks such as \"28d\" or \"4w\" (months, quarters and years are calendar units)"),
            ));
        }
        Ok(duration.to_owned())
    }

    fn objective(&self) -> Result<&'a Value, OpenSloError> {
        let objectives = self
            .get("spec.objectives")?
            .as_array()
            .ok_or_else(|| self.reject("spec.objectives", "expected a list with one objective"))?;
        let [objective] = objectives.as_slice() else {
            return Err(self.reject(
                "spec.objectives",
                format!(
                    "{} objectives given; expected exactly one (define one SLO per objective)",
                    objectives.len()
                ),
            ));
        };
        for composite in ["indicator", "indicatorRef", "compositeWeight"] {
            if objective.get(composite).is_some() {
                return Err(self.reject(
                    &format!("spec.objectives[0].{composite}"),
                    "composite SLOs are not supported; use the SLO's own indicator",
                ));
            }
        }
        for slices in ["timeSliceTarget", "timeSliceWindow"] {
            if objective.get(slices).is_some() {
                return Err(self.reject(
                    &format!("spec.objectives[0].{slices}"),
                    "time slices are not supported; use budgetingMethod: Occurrences",
                ));
            }
        }
        Ok(objective)
    }

    /// Returns the kind, the target text for [`SloSpec`] and the threshold.
    fn indicator(
        &self,
        objective: &Value,
    ) -> Result<(&'static str, String, Option<String>), OpenSloError> {
        if self.has("spec.indicatorRef") {
            return Err(self.reject(
                "spec.indicatorRef",
                "references to separate SLI documents are not supported; define the indicator inline under spec.indicator",
            ));
        }
        let ratio = self.get("spec.indicator.spec.ratioMetric").ok();
        let threshold = self.get("spec.indicator.spec.thresholdMetric").ok();
        let target = self.target(objective)?;

        match (ratio, threshold) {
            (Some(ratio), None) => {
                let has = |key: &str| ratio.get(key).is_some();
                if !has("total") {
                    return Err(self.reject(
                        "spec.indicator.spec.ratioMetric.total",
                        "missing; a ratio needs good/total or bad/total",
                    ));
                }
                match (has("good"), has("bad")) {
                    (true, false) => Ok(("availability", target.to_string(), None)),
                    (false, true) => {
                        let errors = target
                            .error_budget()
                            .ratio_to_percent()
                            .map_or_else(|| target.error_budget().to_string(), |p| p.to_string());
                        Ok(("error_rate", errors, None))
                    }
                    _ => Err(self.reject(
                        "spec.indicator.spec.ratioMetric",
                        "expected exactly one of good and bad next to total",
                    )),
                }
            }
            (None, Some(_)) => {
                let op = objective.get("op").and_then(Value::as_str).unwrap_or("");
                if op != "lte" {
                    return Err(self.reject(
                        "spec.objectives[0].op",
                        format!("{op:?} is not supported; a latency objective needs op: lte, as histogram buckets count durations at most their bound"),
                    ));
                }
                let value = objective
                    .get("value")
                    .and_then(Value::as_f64)
                    .filter(|value| value.is_finite() && *value > 0.0)
                    .ok_or_else(|| {
                        self.reject(
                            "spec.objectives[0].value",
                            "expected a latency in seconds, such as 0.25",
                        )
                    })?;
                let nanos = (value * 1e9).round();
                // Finite, positive and checked against the bucket boundaries later.
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "see above"
                )]
                let threshold = std::time::Duration::from_nanos(nanos as u64);
                let threshold = humantime::format_duration(threshold).to_string();
                Ok(("latency", target.to_string(), Some(threshold)))
            }
            (Some(_), Some(_)) => Err(self.reject(
                "spec.indicator.spec",
                "both ratioMetric and thresholdMetric are set; expected one",
            )),
            (None, None) => Err(self.reject(
                "spec.indicator.spec",
                "expected ratioMetric (good/total or bad/total) or thresholdMetric",
            )),
        }
    }

    fn target(&self, objective: &Value) -> Result<Target, OpenSloError> {
        let text = |value: &Value| match value {
            Value::Number(number) => Some(number.to_string()),
            Value::String(text) => Some(text.clone()),
            _ => None,
        };
        if let Some(value) = objective.get("target") {
            let text = text(value)
                .ok_or_else(|| self.reject("spec.objectives[0].target", "expected a number"))?;
            return Target::parse_ratio(&text).map_err(|error| {
                let field = "spec.objectives[0].target";
                // The shared message suggests 99.9, which is a percentage and not a ratio.
                match error {
                    TargetError::TooHigh { .. } if is_percentage(&text) => self
                        .reject(
                            field,
                            format!(
                                "{text} is above 1; target is a ratio such as 0.999, so write a percentage as targetPercent: {text}"
                            ),
                        ),
                    TargetError::TooHigh { .. } => self.reject(
                        field,
                        format!(
                            "{text} is 100 % or more, which leaves no error budget; use a ratio below 1, such as 0.999"
                        ),
                    ),
                    TargetError::TooLow { .. } => self.reject(
                        field,
                        format!("{text} is 0 or less, which allows no good events; use a ratio above 0, such as 0.999"),
                    ),
                    error => self.reject(field, error),
                }
            });
        }
        if let Some(value) = objective.get("targetPercent") {
            let text = text(value).ok_or_else(|| {
                self.reject("spec.objectives[0].targetPercent", "expected a number")
            })?;
            return Target::parse_percent(&text)
                .map_err(|error| self.reject("spec.objectives[0].targetPercent", error));
        }
        Err(self.reject(
            "spec.objectives[0].target",
            "missing; set target (0 to 1) or targetPercent (0 to 100)",
        ))
    }
}

/// Returns whether `text` is above 1 and a valid target percentage, such as `99.9`.
fn is_percentage(text: &str) -> bool {
    let above_one = text
        .trim()
        .parse::<Decimal>()
        .is_ok_and(|value| value > Decimal::ONE);
    above_one && Target::parse_percent(text).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests;
