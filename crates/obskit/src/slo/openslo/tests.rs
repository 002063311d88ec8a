use super::*;
use crate::slo::SloKind;
use std::time::Duration;

const RATIO: &str = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: orders
  annotations:
    obskit.dev/route: /orders/{id}
    obskit.dev/method: GET
spec:
  description: Orders load
  budgetingMethod: Occurrences
  timeWindow:
    - duration: 4w
      isRolling: true
  indicator:
    metadata:
      name: orders-ratio
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: good
        total:
          metricSource:
            type: Prometheus
            spec:
              query: total
  objectives:
    - displayName: good
      target: 0.9995
"#;

fn rejection(yaml: &str) -> (String, String) {
    match parse_openslo(yaml) {
        Err(OpenSloError::Unsupported { field, reason, .. }) => (field, reason),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn ratio_good_total_is_availability() {
    let slos = parse_openslo(RATIO).unwrap();
    assert_eq!(slos.len(), 1);
    let slo = &slos[0];
    assert_eq!(slo.name, "orders");
    assert_eq!(slo.kind, SloKind::Availability);
    assert_eq!(slo.target.error_budget().to_string(), "0.0005");
    assert_eq!(slo.period, Duration::from_secs(28 * 86_400));
    assert_eq!(slo.selector.route, "/orders/{id}");
    assert_eq!(slo.selector.method.as_deref(), Some("GET"));
    assert_eq!(slo.description.as_deref(), Some("Orders load"));
}

#[test]
fn ratio_bad_total_is_error_rate() {
    let yaml = RATIO.replace("        good:", "        bad:");
    let slo = &parse_openslo(&yaml).unwrap()[0];
    assert_eq!(slo.kind, SloKind::ErrorRate);
    assert_eq!(slo.target.to_string(), "0.9995");
}

#[test]
fn threshold_metric_is_latency() {
    let yaml = RATIO
        .replace(
            "      ratioMetric:\n        counter: true\n        good:\n",
            "      thresholdMetric:\n",
        )
        .replace(
            "        total:\n          metricSource:\n            type: Prometheus\n            spec:\n              query: total\n",
            "",
        )
        .replace("      target: 0.9995", "      op: lte\n      value: 0.25\n      targetPercent: 99");
    let slo = &parse_openslo(&yaml).unwrap()[0];
    assert_eq!(
        slo.kind,
        SloKind::Latency {
            threshold: Duration::from_millis(250)
        }
    );
    assert_eq!(slo.target.to_string(), "0.99");

    let not_bucket = yaml.replace("value: 0.25", "value: 0.3");
    assert!(matches!(
        parse_openslo(&not_bucket),
        Err(OpenSloError::Definition {
            source: SloError::ThresholdNotBucket { .. },
            ..
        })
    ));
    let (field, _) = rejection(&yaml.replace("op: lte", "op: gt"));
    assert_eq!(field, "spec.objectives[0].op");
}

#[test]
fn several_documents_parsed() {
    let second = RATIO.replace("name: orders\n", "name: orders-two\n");
    let slos = parse_openslo(&format!("{RATIO}---\n{second}")).unwrap();
    let names: Vec<&str> = slos.iter().map(|slo| slo.name.as_str()).collect();
    assert_eq!(names, ["orders", "orders-two"]);
}

#[test]
fn unsupported_fields_rejected_by_path() {
    let cases = [
        (
            RATIO.replace("isRolling: true", "isRolling: false"),
            "spec.timeWindow[0].isRolling",
        ),
        (
            RATIO.replace("duration: 4w", "duration: 1M"),
            "spec.timeWindow[0].duration",
        ),
        (
            RATIO.replace(
                "budgetingMethod: Occurrences",
                "budgetingMethod: Timeslices",
            ),
            "spec.budgetingMethod",
        ),
        (
            RATIO.replace(
                "budgetingMethod: Occurrences",
                "budgetingMethod: RatioTimeslices",
            ),
            "spec.budgetingMethod",
        ),
        (
            RATIO.replace(
                "      target: 0.9995",
                "      target: 0.9995\n    - displayName: other\n      target: 0.99",
            ),
            "spec.objectives",
        ),
        (
            RATIO.replace(
                "      target: 0.9995",
                "      target: 0.9995\n      indicatorRef: other-sli\n      compositeWeight: 1",
            ),
            "spec.objectives[0].indicator",
        ),
        (RATIO.replace("kind: SLO", "kind: SLI"), "kind"),
        (
            RATIO.replace("apiVersion: openslo/v1", "apiVersion: openslo/v1alpha"),
            "apiVersion",
        ),
        (
            RATIO.replace("    obskit.dev/route: /orders/{id}\n", ""),
            "metadata.annotations",
        ),
        (
            RATIO.replace("      target: 0.9995", "      target: 99.95"),
            "spec.objectives[0].target",
        ),
    ];
    for (yaml, expected) in cases {
        let (field, reason) = rejection(&yaml);
        assert!(
            field.starts_with(expected),
            "{expected}: got {field}: {reason}"
        );
    }
}

#[test]
fn unmapped_fields_rejected_by_path() {
    let cases = [
        (
            RATIO.replace(
                "  description: Orders load\n",
                "  description: Orders load\n  frobnicate: 1\n",
            ),
            "spec.frobnicate",
        ),
        (
            RATIO.replace(
                "  description: Orders load\n",
                "  description: Orders load\n  alertPolicies:\n    - page\n",
            ),
            "spec.alertPolicies",
        ),
        (
            RATIO.replace(
                "      isRolling: true",
                "      isRolling: true\n      calender: x",
            ),
            "spec.timeWindow[0].calender",
        ),
        (
            RATIO.replace(
                "      target: 0.9995",
                "      target: 0.9995\n      targt: 0.99",
            ),
            "spec.objectives[0].targt",
        ),
        (
            RATIO.replace("      target: 0.9995", "      target: 0.9995\n      op: gt"),
            "spec.objectives[0].op",
        ),
        (
            RATIO.replace(
                "        counter: true\n",
                "        counter: true\n        rawType: success\n",
            ),
            "spec.indicator.spec.ratioMetric.rawType",
        ),
        (
            RATIO.replace(
                "        counter: true\n",
                "        counter: true\n        raw:\n          metricSource: {}\n",
            ),
            "spec.indicator.spec.ratioMetric.raw",
        ),
        (
            RATIO.replace("  name: orders\n", "  name: orders\n  namespace: shop\n"),
            "metadata.namespace",
        ),
        (
            RATIO.replace("kind: SLO\n", "kind: SLO\nstatus: {}\n"),
            "status",
        ),
    ];
    for (yaml, expected) in cases {
        let (field, reason) = rejection(&yaml);
        assert_eq!(field, expected, "{reason}");
        assert!(!reason.is_empty());
    }

    // Descriptive fields of OpenSLO are read past without changing the SLO.
    let described = RATIO
        .replace(
            "  description: Orders load\n",
            "  description: Orders load\n  service: shop\n",
        )
        .replace(
            "  name: orders\n",
            "  name: orders\n  displayName: Orders\n  labels:\n    team: [shop]\n",
        );
    assert_eq!(
        parse_openslo(&described).unwrap(),
        parse_openslo(RATIO).unwrap()
    );
}

#[test]
fn zero_or_negative_target_asks_for_a_ratio() {
    for target in ["0", "-0.5"] {
        let (field, reason) =
            rejection(&RATIO.replace("target: 0.9995", &format!("target: {target}")));
        assert_eq!(field, "spec.objectives[0].target");
        assert!(reason.contains("such as 0.999"), "{target}: {reason}");
    }
}

#[test]
fn percent_as_ratio_suggests_target_percent() {
    let yaml = RATIO.replace("      target: 0.9995", "      target: 99.95");
    let (field, reason) = rejection(&yaml);
    assert_eq!(field, "spec.objectives[0].target");
    assert!(reason.contains("99.95 is above 1"), "{reason}");
    assert!(reason.contains("targetPercent: 99.95"), "{reason}");
    assert!(!reason.contains("such as 99.9,"), "{reason}");

    for ratio in ["1", "100", "250"] {
        let yaml = RATIO.replace("      target: 0.9995", &format!("      target: {ratio}"));
        let (_, reason) = rejection(&yaml);
        assert!(reason.contains("below 1, such as 0.999"), "{reason}");
        assert!(!reason.contains("targetPercent"), "{reason}");
    }
}

#[test]
fn rejection_message_names_document_and_field() {
    let yaml = RATIO.replace(
        "budgetingMethod: Occurrences",
        "budgetingMethod: Timeslices",
    );
    let message = parse_openslo(&yaml).unwrap_err().to_string();
    assert_eq!(
        message,
        "OpenSLO document 1 (orders): spec.budgetingMethod: \"Timeslices\" is not supported; expected \"Occurrences\""
    );
}
