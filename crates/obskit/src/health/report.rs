//! A probe's outcome and its renderings: `application/health+json` and Kubernetes verbose text.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::check::{CheckResult, Status};

/// Media type of the JSON rendering, from the IETF draft "Health Check Response Format for HTTP
/// APIs" (draft-inadarei-api-health-check-06).
pub const HEALTH_JSON_CONTENT_TYPE: &str = "application/health+json";

/// Media type of the verbose text rendering.
pub const VERBOSE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Set of checks a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// Is the process alive? Failing restarts the container. Register only in-process checks.
    Liveness,
    /// Can the service take traffic? Failing removes it from load balancing.
    Readiness,
    /// Has the service finished starting?
    Startup,
}

impl Probe {
    /// Returns the Kubernetes-style endpoint name used in verbose output: `livez`, `readyz` or
    /// `startupz`.
    pub fn endpoint_name(self) -> &'static str {
        match self {
            Self::Liveness => "livez",
            Self::Readiness => "readyz",
            Self::Startup => "startupz",
        }
    }
}

/// A condition outside the checks that makes a probe fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// [`super::HealthRegistry::mark_started`] has not been called yet.
    NotStarted,
    /// [`super::HealthRegistry::set_shutting_down`] has been called.
    ShuttingDown,
}

impl Gate {
    /// Name of the gate in verbose output.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotStarted => "started",
            Self::ShuttingDown => "shutdown",
        }
    }

    /// Returns the reason the gate fails the probe.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotStarted => "the service has not finished starting",
            Self::ShuttingDown => "the service is shutting down",
        }
    }
}

/// The result of one check inside a report.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Name of the check.
    pub name: Arc<str>,
    /// Whether a failure fails the probe (`true`) or only makes it warn.
    pub critical: bool,
    /// `pass`, `warn` (a non-critical check failed) or `fail` (a critical check failed).
    pub status: Status,
    /// The execution this report is based on, possibly cached.
    pub result: CheckResult,
}

/// Everything a probe found, ready to be rendered.
#[derive(Debug, Clone)]
pub struct HealthReport {
    /// The probe, or `None` for the report over all checks.
    pub probe: Option<Probe>,
    /// Overall status: the worst of the checks and the gates.
    pub status: Status,
    /// Closed gates, each of which fails the probe.
    pub gates: Vec<Gate>,
    /// Checks that ran or were read from cache, in registration order.
    pub checks: Vec<CheckReport>,
    /// Checks skipped through `?exclude=`.
    pub excluded: Vec<Arc<str>>,
    /// `?exclude=` names that match no check of this probe.
    pub unknown_excludes: Vec<String>,
}

/// Service identity and disclosure settings used when rendering.
#[derive(Debug, Clone)]
pub(crate) struct RenderContext {
    pub(crate) service_id: Arc<str>,
    pub(crate) version: Arc<str>,
    pub(crate) expose_details: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonBody<'a> {
    status: &'static str,
    version: &'a str,
    service_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    checks: JsonChecks<'a>,
}

/// The `checks` object: one single-element array per check, keyed by name, in registration order.
struct JsonChecks<'a> {
    checks: &'a [CheckReport],
    expose_details: bool,
}

impl Serialize for JsonChecks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.checks.len()))?;
        for check in self.checks {
            let entry = JsonCheck {
                status: check.status.as_str(),
                observed_value: duration_ms(check.result.duration),
                observed_unit: "ms",
                time: &check.result.time_rfc3339,
                output: check
                    .result
                    .error
                    .as_deref()
                    .filter(|_| self.expose_details),
            };
            map.serialize_entry(&*check.name, &[entry])?;
        }
        map.end()
    }
}

/// Converts a duration to milliseconds with one rounding, so 318813 ns serializes as `0.318813`.
/// `as_secs_f64() * 1000.0` rounds twice and gives `0.31881299999999996`.
fn duration_ms(duration: Duration) -> f64 {
    duration.as_nanos() as f64 / 1_000_000.0
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonCheck<'a> {
    status: &'static str,
    observed_value: f64,
    observed_unit: &'static str,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
}

impl HealthReport {
    /// Renders the `application/health+json` body.
    ///
    /// Each check is one entry keyed by its name, with the execution duration in milliseconds as
    /// `observedValue` and the start time as `time`. Failure messages appear in `output` only
    /// when `expose_details` is true, because probe endpoints are unauthenticated.
    pub(crate) fn to_json(&self, context: &RenderContext) -> String {
        let output = (!self.gates.is_empty()).then(|| {
            self.gates
                .iter()
                .map(|gate| gate.reason())
                .collect::<Vec<_>>()
                .join("; ")
        });
        let body = JsonBody {
            status: self.status.as_str(),
            version: &context.version,
            service_id: &context.service_id,
            output,
            checks: JsonChecks {
                checks: &self.checks,
                expose_details: context.expose_details,
            },
        };
        // Serializing these plain structs cannot fail and yields UTF-8; fall back to the status alone.
        let mut json = Vec::with_capacity(128 + 160 * self.checks.len());
        match serde_json::to_writer(&mut json, &body) {
            Ok(()) => String::from_utf8(json).unwrap_or_default(),
            Err(_) => format!("{{\"status\":\"{}\"}}", self.status.as_str()),
        }
    }

    /// Renders Kubernetes-style verbose text, one line per gate and check, then a summary line.
    ///
    /// ```text
    /// [+]database ok
    /// [-]cache failed (non-critical): reason withheld
    /// [+]search excluded: ok
    /// warn: some health checks cannot be excluded: no matches for "nope"
    /// readyz check passed
    /// ```
    pub(crate) fn to_verbose_text(&self, expose_details: bool) -> String {
        let mut text = String::new();
        for gate in &self.gates {
            let _ = writeln!(text, "[-]{} failed: {}", gate.name(), gate.reason());
        }
        for check in &self.checks {
            let Some(error) = &check.result.error else {
                let _ = writeln!(text, "[+]{} ok", check.name);
                continue;
            };
            let criticality = if check.critical {
                ""
            } else {
                " (non-critical)"
            };
            let reason = if expose_details {
                error.as_ref()
            } else {
                "reason withheld"
            };
            let _ = writeln!(text, "[-]{} failed{criticality}: {reason}", check.name);
        }
        for name in &self.excluded {
            let _ = writeln!(text, "[+]{name} excluded: ok");
        }
        if !self.unknown_excludes.is_empty() {
            let names = self
                .unknown_excludes
                .iter()
                .map(|name| format!("{name:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                text,
                "warn: some health checks cannot be excluded: no matches for {names}"
            );
        }
        let endpoint = self.probe.map_or("healthz", Probe::endpoint_name);
        let verdict = if self.status == Status::Fail {
            "failed"
        } else {
            "passed"
        };
        let _ = writeln!(text, "{endpoint} check {verdict}");
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::*;

    fn check(name: &str, critical: bool, error: Option<&str>) -> CheckReport {
        let status = match (error, critical) {
            (None, _) => Status::Pass,
            (Some(_), false) => Status::Warn,
            (Some(_), true) => Status::Fail,
        };
        CheckReport {
            name: name.into(),
            critical,
            status,
            result: CheckResult {
                error: error.map(Into::into),
                duration: Duration::from_micros(1500),
                time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                time_rfc3339: "2023-11-14T22:13:20.000Z".into(),
                finished: Instant::now(),
            },
        }
    }

    fn context(expose_details: bool) -> RenderContext {
        RenderContext {
            service_id: "orders".into(),
            version: "1.2.3".into(),
            expose_details,
        }
    }

    fn report() -> HealthReport {
        HealthReport {
            probe: Some(Probe::Readiness),
            status: Status::Fail,
            gates: vec![Gate::ShuttingDown],
            checks: vec![
                check("db", true, Some("connection refused")),
                check("cache", false, None),
            ],
            excluded: vec!["search".into()],
            unknown_excludes: vec!["nope".to_owned()],
        }
    }

    #[test]
    fn json_withholds_details_by_default() {
        let json: serde_json::Value =
            serde_json::from_str(&report().to_json(&context(false))).unwrap();
        assert_eq!(json["status"], "fail");
        assert_eq!(json["serviceId"], "orders");
        assert_eq!(json["version"], "1.2.3");
        assert_eq!(json["output"], "the service is shutting down");
        assert_eq!(json["checks"]["db"][0]["status"], "fail");
        assert_eq!(json["checks"]["db"][0]["observedValue"], 1.5);
        assert_eq!(json["checks"]["db"][0]["observedUnit"], "ms");
        assert_eq!(json["checks"]["db"][0]["time"], "2023-11-14T22:13:20.000Z");
        assert!(json["checks"]["db"][0].get("output").is_none());
        assert!(json["checks"].get("search").is_none());
    }

    #[test]
    fn json_duration_without_float_noise() {
        let mut report = report();
        report.checks[0].result.duration = Duration::from_nanos(318_813);
        let json: serde_json::Value =
            serde_json::from_str(&report.to_json(&context(false))).unwrap();
        assert_eq!(json["checks"]["db"][0]["observedValue"], 0.318813);
    }

    #[test]
    fn json_exposes_details_when_enabled() {
        let json: serde_json::Value =
            serde_json::from_str(&report().to_json(&context(true))).unwrap();
        assert_eq!(json["checks"]["db"][0]["output"], "connection refused");
        assert!(json["checks"]["cache"][0].get("output").is_none());
    }

    #[test]
    fn verbose_text_matches_kubernetes_layout() {
        let text = report().to_verbose_text(false);
        assert_eq!(
            text,
            "[-]shutdown failed: the service is shutting down\n\
             [-]db failed: reason withheld\n\
             [+]cache ok\n\
             [+]search excluded: ok\n\
             warn: some health checks cannot be excluded: no matches for \"nope\"\n\
             readyz check failed\n"
        );
    }

    #[test]
    fn verbose_text_marks_non_critical_failures() {
        let mut report = report();
        report.gates.clear();
        report.status = Status::Warn;
        report.checks = vec![check("cache", false, Some("timed out after 1s"))];
        let text = report.to_verbose_text(true);
        assert!(
            text.contains("[-]cache failed (non-critical): timed out after 1s\n"),
            "{text}"
        );
        assert!(text.ends_with("readyz check passed\n"), "{text}");
    }
}
