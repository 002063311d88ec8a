//! Prometheus recording and alerting rules generated from SLO definitions.
//!
//! Every SLO gets one rule group, `obskit-slo-<name>`, evaluated in this order:
//!
//! | Rule | Value |
//! |---|---|
//! | `slo:sli_error:ratio_rate<w>` for `w` in 5m, 30m, 1h, 2h, 6h, 1d, 3d and the period | bad / valid requests over `w` |
//! | `slo:objective:ratio` | the target, such as 0.999 |
//! | `slo:error_budget:ratio` | `1 - target`, such as 0.001, written exactly |
//! | `slo:error_budget_remaining:ratio` | `1 - error ratio over the period / error budget` |
//! | alert `SloErrorBudgetBurn`, four rules | the multi-window, multi-burn-rate conditions |
//!
//! A last group, `obskit-health`, alerts on obskit's own signals: dropped log events and
//! spans, failing span export, circuit breakers that stay open, and metric overflow.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::alert::{BurnRateAlert, Severity, Window};
use super::definition::{SloDefinition, SloKind};

mod yaml;

/// Histogram that every SLO is computed from.
pub const DURATION_HISTOGRAM: &str = "http_server_request_duration_seconds";

/// Prefix of the error-ratio recording rules; the range follows, as in `ratio_rate5m`.
pub const ERROR_RATIO_RECORD: &str = "slo:sli_error:ratio_rate";

/// Recording rule of the objective, such as 0.999.
pub const OBJECTIVE_RECORD: &str = "slo:objective:ratio";

/// Recording rule of the error budget, such as 0.001.
pub const ERROR_BUDGET_RECORD: &str = "slo:error_budget:ratio";

/// Recording rule of the share of the period's error budget not yet spent; negative once
/// the budget is overspent.
pub const BUDGET_REMAINING_RECORD: &str = "slo:error_budget_remaining:ratio";

/// Name of the burn-rate alerts of every SLO; the labels tell them apart.
pub const BURN_ALERT: &str = "SloErrorBudgetBurn";

/// Runbook linked from alerts of SLOs without a `runbook_url`, and from the health alerts.
pub const DEFAULT_RUNBOOK_URL: &str = "https://github.com/obskit/obskit/blob/main/docs/slo.md";

/// A Prometheus rule file: the document `promtool check rules` reads.
///
/// # Example
///
/// ```
/// use obskit::slo::{RuleFile, SloDefinition};
///
/// let slo = SloDefinition::builder("orders")
///     .target(99.9)
///     .period("30d")
///     .route("/orders/{id}")
///     .build()?;
/// let file = RuleFile::for_slos(&[slo]);
/// assert_eq!(file.groups[0].name, "obskit-slo-orders");
/// assert!(file.to_yaml().contains("slo:sli_error:ratio_rate1h{slo=\"orders\"} > (14.4 * 0.001)"));
/// # Ok::<(), obskit::slo::SloError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// Rule groups, one per SLO and then `obskit-health`.
    pub groups: Vec<RuleGroup>,
}

/// A group of rules that Prometheus evaluates in order, at the global evaluation interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// Group name, unique within the file.
    pub name: String,
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
}

/// One recording or alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Stores the result of `expr` as a new series.
    Recording(RecordingRule),
    /// Fires an alert for each series `expr` returns.
    Alerting(AlertingRule),
}

/// A rule that records `expr` under the name `record`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    /// Name of the recorded series.
    pub record: String,
    /// PromQL expression.
    pub expr: String,
    /// Labels added to the recorded series.
    pub labels: BTreeMap<String, String>,
}

/// A rule that fires the alert `alert` for every series `expr` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRule {
    /// Alert name.
    pub alert: String,
    /// PromQL expression; `$value` in annotations is the value of its result.
    pub expr: String,
    /// How long `expr` must hold before the alert fires; `None` fires at the first
    /// evaluation.
    pub for_duration: Option<Duration>,
    /// Labels added to the alert.
    pub labels: BTreeMap<String, String>,
    /// Annotations: `summary`, `description` and `runbook_url`, Prometheus templates.
    pub annotations: BTreeMap<String, String>,
}

/// Returns the Prometheus rule file for `slos` as YAML: the recording rules, burn-rate alerts
/// and health alerts described in [`RuleFile`].
///
/// # Example
///
/// ```
/// use obskit::slo::{SloDefinition, rules};
///
/// let slo = SloDefinition::builder("orders").target(99.9).period("30d").route("/orders").build()?;
/// let yaml = rules(&[slo]);
/// assert!(yaml.contains("record: \"slo:sli_error:ratio_rate5m\""));
/// assert!(yaml.contains("severity: \"page\""));
/// # Ok::<(), obskit::slo::SloError>(())
/// ```
pub fn rules(slos: &[SloDefinition]) -> String {
    RuleFile::for_slos(slos).to_yaml()
}

impl RuleFile {
    /// Builds the rules for `slos`, one group per SLO in the order given, then the health
    /// group.
    pub fn for_slos(slos: &[SloDefinition]) -> Self {
        let mut groups: Vec<RuleGroup> = slos.iter().map(slo_group).collect();
        groups.push(health_group());
        Self { groups }
    }

    /// Renders the file as YAML that Prometheus and `promtool` load.
    pub fn to_yaml(&self) -> String {
        yaml::render(self)
    }
}

/// Returns the recording rule name of the error ratio over `range`, a PromQL duration such as
/// `5m` or `30d`.
pub fn error_ratio_record(range: &str) -> String {
    format!("{ERROR_RATIO_RECORD}{range}")
}

/// Writes `duration` as a PromQL duration with the largest units first, such as `30d` or
/// `3d12h`. A zero duration is `0s`.
pub fn promql_duration(duration: Duration) -> String {
    const UNITS: [(&str, u128); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, size) in UNITS {
        let count = millis / size;
        if count > 0 {
            let _ = write!(text, "{count}{unit}");
            millis %= size;
        }
    }
    text
}

/// Writes a histogram bucket bound as obskit's Prometheus text exposition writes the `le`
/// label: the shortest decimal that reads back as the bound, such as `0.25`, `1` or `2.5`.
pub fn le_label(bound: f64) -> String {
    format!("{bound}")
}

/// Returns the `le` matcher of a bucket bound. A whole number matches both `1`, as obskit's
/// text exposition writes it, and `1.0`, as its OpenMetrics exposition writes it and as
/// Prometheus 3 stores it after normalizing `le` values.
pub fn le_matcher(bound: f64) -> String {
    let label = le_label(bound);
    if bound.fract() == 0.0 {
        format!("le=~\"{label}(\\\\.0)?\"")
    } else {
        format!("le=\"{label}\"")
    }
}

/// Returns `text` as a PromQL double-quoted string literal.
pub fn promql_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Returns the label matchers that select the SLO's requests, without braces:
/// `http_route="/orders/{id}"` and, with a method, `http_request_method="GET"`.
pub(crate) fn request_matchers(slo: &SloDefinition) -> String {
    let mut matchers = format!("http_route={}", promql_string(&slo.selector.route));
    if let Some(method) = &slo.selector.method {
        let _ = write!(matchers, ",http_request_method={}", promql_string(method));
    }
    matchers
}

/// Returns the PromQL expression of the SLO's error ratio over `range`: bad / valid requests,
/// with no result when no request was made.
pub fn error_ratio_expr(slo: &SloDefinition, range: &str) -> String {
    let matchers = request_matchers(slo);
    let valid = format!("sum(rate({DURATION_HISTOGRAM}_count{{{matchers}}}[{range}]))");
    match slo.kind {
        SloKind::Availability | SloKind::ErrorRate => {
            let bad = format!(
                "sum(rate({DURATION_HISTOGRAM}_count{{{matchers},http_response_status_code=~\"5..\"}}[{range}]))"
            );
            // `or vector(0)`: a route that never failed has no 5xx series at all.
            format!("(\n  {bad}\n  or\n  vector(0)\n)\n/\n({valid} > 0)")
        }
        SloKind::Latency { .. } => {
            let le = slo
                .kind
                .threshold_seconds()
                .map_or_else(|| "le=\"+Inf\"".to_owned(), le_matcher);
            let good =
                format!("sum(rate({DURATION_HISTOGRAM}_bucket{{{matchers},{le}}}[{range}]))");
            format!("(\n  {valid}\n  -\n  {good}\n)\n/\n({valid} > 0)")
        }
    }
}

/// Returns the labels every series recorded for the SLO carries.
pub(crate) fn slo_labels(slo: &SloDefinition) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("slo".to_owned(), slo.name.clone());
    labels.insert("slo_kind".to_owned(), slo.kind.name().to_owned());
    labels.insert("http_route".to_owned(), slo.selector.route.clone());
    if let Some(method) = &slo.selector.method {
        labels.insert("http_request_method".to_owned(), method.clone());
    }
    labels
}

/// Returns the selector of one recorded series of the SLO, such as
/// `slo:sli_error:ratio_rate1h{slo="orders"}`.
pub fn slo_series(record: &str, slo: &SloDefinition) -> String {
    format!("{record}{{slo={}}}", promql_string(&slo.name))
}

/// Returns the period of the SLO as a PromQL range, such as `30d`.
pub fn period_range(slo: &SloDefinition) -> String {
    promql_duration(slo.period)
}

fn slo_group(slo: &SloDefinition) -> RuleGroup {
    let labels = slo_labels(slo);
    let budget = slo.target.error_budget().to_string();
    let mut rules = Vec::new();

    let period = period_range(slo);
    let mut ranges: Vec<String> = Window::ALL
        .iter()
        .map(|window| window.label().to_owned())
        .collect();
    // A period of exactly 3 days is already the 3d window; recording it twice would write
    // the same series twice.
    if !ranges.contains(&period) {
        ranges.push(period.clone());
    }
    for range in &ranges {
        rules.push(Rule::Recording(RecordingRule {
            record: error_ratio_record(range),
            expr: error_ratio_expr(slo, range),
            labels: labels.clone(),
        }));
    }

    rules.push(Rule::Recording(RecordingRule {
        record: OBJECTIVE_RECORD.to_owned(),
        expr: format!("vector({})", slo.target),
        labels: labels.clone(),
    }));
    rules.push(Rule::Recording(RecordingRule {
        record: ERROR_BUDGET_RECORD.to_owned(),
        expr: format!("vector({budget})"),
        labels: labels.clone(),
    }));
    rules.push(Rule::Recording(RecordingRule {
        record: BUDGET_REMAINING_RECORD.to_owned(),
        expr: format!(
            "1 - {} / {budget}",
            slo_series(&error_ratio_record(&period), slo)
        ),
        labels,
    }));

    for condition in BurnRateAlert::ALL {
        rules.push(Rule::Alerting(burn_alert(slo, condition, &budget)));
    }

    RuleGroup {
        name: format!("obskit-slo-{}", slo.name),
        rules,
    }
}

/// Builds the alert for one window pair. The expression is the workbook's
/// `long > threshold × budget and short > threshold × budget`, divided by the budget so that
/// `$value` is the long window's burn rate.
fn burn_alert(slo: &SloDefinition, condition: BurnRateAlert, budget: &str) -> AlertingRule {
    let threshold = condition.threshold(slo.period);
    let long = condition.long_window.label();
    let short = condition.short_window.label();
    let long_series = slo_series(&error_ratio_record(long), slo);
    let short_series = slo_series(&error_ratio_record(short), slo);
    let expr = format!(
        "(\n  {long_series} > ({threshold} * {budget})\n  and\n  {short_series} > ({threshold} * {budget})\n)\n/ {budget}"
    );

    let mut labels = BTreeMap::new();
    labels.insert("severity".to_owned(), condition.severity.label().to_owned());
    labels.insert("slo".to_owned(), slo.name.clone());
    labels.insert("long_window".to_owned(), long.to_owned());
    labels.insert("short_window".to_owned(), short.to_owned());

    let period = promql_duration(slo.period);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary".to_owned(),
        format!(
            "SLO {} burns its error budget at a rate above {threshold} over {long} and {short}",
            slo.name
        ),
    );
    let mut description = format!(
        "SLO {} ({} {}% over {period}, route {{{{ $labels.http_route }}}}) burned its error budget \
         at {{{{ $value | humanize }}}} times the rate the objective allows over the last {long}, \
         and at a rate above {threshold} over the last {short}. A burn rate of {threshold} \
         spends {}% of the {period} error budget in {long}.",
        slo.name,
        slo.kind.name(),
        slo.target.percent(),
        condition.budget_percent,
    );
    if let Some(text) = &slo.description {
        description.push(' ');
        description.push_str(&template_literal(text));
        if !text.trim_end().ends_with(['.', '!', '?']) {
            description.push('.');
        }
    }
    annotations.insert("description".to_owned(), description);
    annotations.insert(
        "runbook_url".to_owned(),
        slo.runbook_url
            .clone()
            .unwrap_or_else(|| format!("{DEFAULT_RUNBOOK_URL}#runbook")),
    );

    AlertingRule {
        alert: BURN_ALERT.to_owned(),
        expr,
        // The short window already stops the alert soon after the burn ends, and a `for`
        // would only delay the detection times the thresholds are chosen for.
        for_duration: None,
        labels,
        annotations,
    }
}

/// Escapes text for a Prometheus annotation template, so that `{{` in a description is
/// printed and not run as a template action.
fn template_literal(text: &str) -> String {
    text.replace("{{", "{{ \"{{\" }}")
}

/// One health alert: name, expression, `for`, summary and description.
struct HealthAlert {
    name: &'static str,
    expr: &'static str,
    for_duration: Option<Duration>,
    summary: &'static str,
    description: &'static str,
}

const HEALTH_ALERTS: [HealthAlert; 5] = [
    HealthAlert {
        name: "ObskitLogEventsDropped",
        expr: "increase(obskit_log_events_dropped_total{reason!=\"sampled\"}[10m]) > 0",
        for_duration: None,
        summary: "{{ $labels.job }} {{ $labels.instance }} dropped log events ({{ $labels.reason }})",
        description: "{{ $value | humanize }} log events were not written in the last 10 minutes, reason {{ $labels.reason }}: the queue was full, the output failed or the writer had shut down. Events removed by sampling are not counted here.",
    },
    HealthAlert {
        name: "ObskitSpansDropped",
        expr: "increase(obskit_spans_dropped_total[10m]) > 0",
        for_duration: None,
        summary: "{{ $labels.job }} {{ $labels.instance }} dropped spans ({{ $labels.reason }})",
        description: "{{ $value | humanize }} spans were not delivered in the last 10 minutes, reason {{ $labels.reason }}.",
    },
    HealthAlert {
        name: "ObskitSpanExportFailing",
        expr: "rate(obskit_span_export_failures_total[5m]) > 0",
        for_duration: Some(Duration::from_secs(15 * 60)),
        summary: "{{ $labels.job }} {{ $labels.instance }} fails to export spans ({{ $labels.reason }})",
        description: "Span export requests have kept failing for 15 minutes, {{ $value | humanize }} per second, reason {{ $labels.reason }}. Check that the OTLP collector is reachable.",
    },
    HealthAlert {
        name: "ObskitCircuitBreakerOpen",
        expr: "max_over_time(obskit_circuit_breaker_state{state=\"open\"}[5m]) == 1",
        for_duration: Some(Duration::from_secs(15 * 60)),
        summary: "Circuit breaker {{ $labels.name }} on {{ $labels.job }} {{ $labels.instance }} stays open",
        description: "Circuit breaker {{ $labels.name }} has been open in every 5-minute window for 15 minutes, so half-open probes between open periods do not reset the alert. Calls through it are rejected; check the dependency it protects.",
    },
    HealthAlert {
        name: "ObskitMetricOverflow",
        expr: "increase(obskit_metric_overflow_total[10m]) > 0",
        for_duration: None,
        summary: "{{ $labels.job }} {{ $labels.instance }} folds label sets of {{ $labels.metric }} into the overflow series",
        description: "Metric {{ $labels.metric }} reached max_series_per_metric, so new label sets are counted in its overflow series. Look for a label with unbounded values, such as a raw path, or raise the limit.",
    },
];

fn health_group() -> RuleGroup {
    let rules = HEALTH_ALERTS
        .iter()
        .map(|health| {
            let mut labels = BTreeMap::new();
            labels.insert("severity".to_owned(), Severity::Ticket.label().to_owned());
            let mut annotations = BTreeMap::new();
            annotations.insert("summary".to_owned(), health.summary.to_owned());
            annotations.insert("description".to_owned(), health.description.to_owned());
            annotations.insert(
                "runbook_url".to_owned(),
                format!("{DEFAULT_RUNBOOK_URL}#{}", health.name.to_ascii_lowercase()),
            );
            Rule::Alerting(AlertingRule {
                alert: health.name.to_owned(),
                expr: health.expr.to_owned(),
                for_duration: health.for_duration,
                labels,
                annotations,
            })
        })
        .collect();
    RuleGroup {
        name: "obskit-health".to_owned(),
        rules,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests;
