use std::time::Duration;

use super::*;
use crate::metrics::{DEFAULT_DURATION_BUCKETS, Format, HttpServerMetrics, Registry};

fn slo(name: &str, target: &str, period: &str) -> SloDefinition {
    SloDefinition::builder(name)
        .target(target)
        .period(period)
        .route("/orders/{id}")
        .build()
        .unwrap_or_else(|error| panic!("{error}"))
}

fn alerts(group: &RuleGroup) -> Vec<&AlertingRule> {
    group
        .rules
        .iter()
        .filter_map(|rule| match rule {
            Rule::Alerting(alert) => Some(alert),
            Rule::Recording(_) => None,
        })
        .collect()
}

fn records(group: &RuleGroup) -> Vec<&RecordingRule> {
    group
        .rules
        .iter()
        .filter_map(|rule| match rule {
            Rule::Recording(record) => Some(record),
            Rule::Alerting(_) => None,
        })
        .collect()
}

#[test]
fn le_label_matches_exposition() {
    let registry = Registry::default();
    let http = HttpServerMetrics::register(&registry).unwrap();
    http.record("GET", "/orders/{id}", 200, 0.001);
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let text = registry.encode(format).unwrap();
        for bound in DEFAULT_DURATION_BUCKETS {
            // `le_matcher` accepts `1` and `1.0` for whole bounds, and only the label otherwise.
            let label = le_label(*bound);
            let mut accepted = vec![format!("le=\"{label}\"")];
            if bound.fract() == 0.0 {
                accepted.push(format!("le=\"{label}.0\""));
            }
            assert!(
                accepted.iter().any(|form| text.contains(form.as_str())),
                "{format:?}: none of {accepted:?} in\n{text}"
            );
        }
    }
    assert_eq!(le_label(0.25), "0.25");
    assert_eq!(le_label(1.0), "1");
    assert_eq!(le_label(10.0), "10");
    assert_eq!(le_label(0.075), "0.075");
    assert_eq!(le_matcher(0.25), "le=\"0.25\"");
    assert_eq!(le_matcher(1.0), "le=~\"1(\\\\.0)?\"");
}

#[test]
fn budget_literal_is_exact() {
    let cases = [
        ("99.9", "0.001", "0.999"),
        ("99.95", "0.0005", "0.9995"),
        ("99", "0.01", "0.99"),
        ("99.999", "0.00001", "0.99999"),
    ];
    for (target, budget, objective) in cases {
        let file = RuleFile::for_slos(&[slo("orders", target, "30d")]);
        let group = &file.groups[0];
        let page = alerts(group)[0];
        let expected = format!("slo:sli_error:ratio_rate1h{{slo=\"orders\"}} > (14.4 * {budget})");
        assert!(page.expr.contains(&expected), "{target}: {}", page.expr);
        assert!(page.expr.ends_with(&format!("/ {budget}")), "{}", page.expr);
        let objective_rule = records(group)
            .into_iter()
            .find(|rule| rule.record == OBJECTIVE_RECORD)
            .unwrap();
        assert_eq!(objective_rule.expr, format!("vector({objective})"));
        let yaml = file.to_yaml();
        assert!(
            !yaml.contains("0000000"),
            "{target}: float noise in\n{yaml}"
        );
        assert!(
            !yaml.contains("1 - 0.9"),
            "{target}: budget computed in PromQL"
        );
    }
}

#[test]
fn error_rate_budget_is_max_errors() {
    let definition = SloDefinition::builder("checkout")
        .error_rate()
        .target(0.5)
        .period("30d")
        .route("/checkout")
        .build()
        .unwrap();
    let file = RuleFile::for_slos(&[definition]);
    let page = alerts(&file.groups[0])[0];
    assert!(page.expr.contains("> (14.4 * 0.005)"), "{}", page.expr);
}

#[test]
fn thresholds_follow_period() {
    let expected = [
        ("30d", ["14.4", "6", "3", "1"]),
        ("28d", ["13.44", "5.6", "2.8", "0.9333333333333333"]),
        ("7d", ["3.36", "1.4", "0.7", "0.23333333333333334"]),
    ];
    for (period, thresholds) in expected {
        let file = RuleFile::for_slos(&[slo("orders", "99.9", period)]);
        let found = alerts(&file.groups[0]);
        assert_eq!(found.len(), 4);
        for (alert, threshold) in found.iter().zip(thresholds) {
            let condition = format!("> ({threshold} * 0.001)");
            assert_eq!(alert.expr.matches(&condition).count(), 2, "{}", alert.expr);
        }
    }
}

#[test]
fn alert_windows_and_severities() {
    let file = RuleFile::for_slos(&[slo("orders", "99.9", "30d")]);
    let found = alerts(&file.groups[0]);
    let windows: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|alert| {
            (
                alert.labels["severity"].as_str(),
                alert.labels["long_window"].as_str(),
                alert.labels["short_window"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            ("page", "1h", "5m"),
            ("page", "6h", "30m"),
            ("ticket", "1d", "2h"),
            ("ticket", "3d", "6h"),
        ]
    );
    for alert in found {
        assert_eq!(alert.alert, BURN_ALERT);
        assert_eq!(alert.labels["slo"], "orders");
        assert_eq!(alert.for_duration, None);
        assert!(alert.annotations["description"].contains("{{ $value | humanize }}"));
        assert_eq!(
            alert.annotations["runbook_url"],
            format!("{DEFAULT_RUNBOOK_URL}#runbook")
        );
    }
}

#[test]
fn runbook_url_from_definition() {
    let definition = SloDefinition::builder("orders")
        .target(99.9)
        .period("30d")
        .route("/orders")
        .runbook_url("https://runbooks.example.com/orders")
        .description("Orders load {{ fast }}")
        .build()
        .unwrap();
    let file = RuleFile::for_slos(&[definition]);
    let page = alerts(&file.groups[0])[0];
    assert_eq!(
        page.annotations["runbook_url"],
        "https://runbooks.example.com/orders"
    );
    assert!(
        page.annotations["description"].ends_with("Orders load {{ \"{{\" }} fast }}."),
        "{}",
        page.annotations["description"]
    );
}

#[test]
fn records_every_window_and_period() {
    let file = RuleFile::for_slos(&[slo("orders", "99.9", "28d")]);
    let names: Vec<&str> = records(&file.groups[0])
        .iter()
        .map(|rule| rule.record.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "slo:sli_error:ratio_rate5m",
            "slo:sli_error:ratio_rate30m",
            "slo:sli_error:ratio_rate1h",
            "slo:sli_error:ratio_rate2h",
            "slo:sli_error:ratio_rate6h",
            "slo:sli_error:ratio_rate1d",
            "slo:sli_error:ratio_rate3d",
            "slo:sli_error:ratio_rate28d",
            OBJECTIVE_RECORD,
            ERROR_BUDGET_RECORD,
            BUDGET_REMAINING_RECORD,
        ]
    );
    let remaining = records(&file.groups[0])[10];
    assert_eq!(
        remaining.expr,
        "1 - slo:sli_error:ratio_rate28d{slo=\"orders\"} / 0.001"
    );
}

#[test]
fn three_day_period_recorded_once() {
    let file = RuleFile::for_slos(&[slo("orders", "99.9", "3d")]);
    let names: Vec<&str> = records(&file.groups[0])
        .iter()
        .map(|rule| rule.record.as_str())
        .collect();
    let three_days = names
        .iter()
        .filter(|name| **name == "slo:sli_error:ratio_rate3d")
        .count();
    assert_eq!(three_days, 1, "{names:?}");
}

#[test]
fn availability_expression() {
    let definition = SloDefinition::builder("orders")
        .target(99.9)
        .period("30d")
        .route("/orders/{id}")
        .method("GET")
        .build()
        .unwrap();
    let expr = error_ratio_expr(&definition, "5m");
    assert_eq!(
        expr,
        "(\n  sum(rate(http_server_request_duration_seconds_count{http_route=\"/orders/{id}\",http_request_method=\"GET\",http_response_status_code=~\"5..\"}[5m]))\n  or\n  vector(0)\n)\n/\n(sum(rate(http_server_request_duration_seconds_count{http_route=\"/orders/{id}\",http_request_method=\"GET\"}[5m])) > 0)"
    );
    let labels = slo_labels(&definition);
    assert_eq!(labels["http_request_method"], "GET");
    assert_eq!(labels["slo_kind"], "availability");
}

#[test]
fn latency_expression_uses_bucket() {
    let cases = [
        (250, "le=\"0.25\""),
        (1000, "le=~\"1(\\\\.0)?\""),
        (75, "le=\"0.075\""),
    ];
    for (threshold, le) in cases {
        let definition = SloDefinition::builder("orders-latency")
            .latency(Duration::from_millis(threshold))
            .target(99)
            .period("30d")
            .route("/orders")
            .build()
            .unwrap();
        let expr = error_ratio_expr(&definition, "1h");
        let bucket = format!(
            "sum(rate(http_server_request_duration_seconds_bucket{{http_route=\"/orders\",{le}}}[1h]))"
        );
        assert!(expr.contains(&bucket), "{expr}");
        assert!(expr.contains("\n  -\n"), "{expr}");
    }
}

#[test]
fn promql_duration_forms() {
    let cases = [
        (Duration::from_secs(30 * 86_400), "30d"),
        (Duration::from_secs(3 * 86_400 + 12 * 3600), "3d12h"),
        (Duration::from_millis(90_500), "1m30s500ms"),
        (Duration::ZERO, "0s"),
    ];
    for (duration, text) in cases {
        assert_eq!(promql_duration(duration), text);
    }
}

#[test]
fn promql_string_escapes() {
    assert_eq!(promql_string("/a/{id}"), "\"/a/{id}\"");
    assert_eq!(promql_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(promql_string("a\u{1}"), "\"a\\u0001\"");
}

#[test]
fn health_alerts_use_existing_metrics() {
    let file = RuleFile::for_slos(&[]);
    let health = file.groups.last().unwrap();
    assert_eq!(health.name, "obskit-health");
    let metrics = [
        format!("{}_total", crate::logging::DROPPED_EVENTS_METRIC),
        format!("{}_total", crate::trace::export::SPANS_DROPPED),
        format!("{}_total", crate::trace::export::SPAN_EXPORT_FAILURES),
        "obskit_circuit_breaker_state".to_owned(),
        format!("{}_total", crate::metrics::OVERFLOW_METRIC),
    ];
    let found = alerts(health);
    assert_eq!(found.len(), metrics.len());
    for (alert, metric) in found.iter().zip(&metrics) {
        assert!(
            alert.expr.contains(metric.as_str()),
            "{}: {}",
            alert.alert,
            alert.expr
        );
        assert_eq!(alert.labels["severity"], "ticket");
        for key in ["summary", "description", "runbook_url"] {
            assert!(alert.annotations.contains_key(key), "{} {key}", alert.alert);
        }
    }
}

#[test]
fn yaml_layout() {
    let yaml = rules(&[slo("orders", "99.9", "30d")]);
    assert!(yaml.starts_with("# "), "{yaml}");
    assert!(yaml.contains("\ngroups:\n  - name: \"obskit-slo-orders\"\n    rules:\n      - record: \"slo:sli_error:ratio_rate5m\"\n        expr: |-\n          (\n"), "{yaml}");
    assert!(
        yaml.contains(
            "        labels:\n          http_route: \"/orders/{id}\"\n          slo: \"orders\"\n"
        ),
        "{yaml}"
    );
    assert!(yaml.contains("        for: 15m\n"), "{yaml}");
}
