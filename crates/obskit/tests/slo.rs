//! End-to-end tests of the SLO gauges: exposition in both formats, checked by `promtool`.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr,
    reason = "tests fail by panicking and print why they skip the promtool check"
)]

#[path = "support/promtool.rs"]
mod promtool;

use std::sync::Arc;
use std::time::Duration;

use obskit::clock::ManualClock;
use obskit::metrics::{Format, Registry};
use obskit::slo::{SloDefinition, SloRegistry, SloSet};

fn slos() -> (SloRegistry, ManualClock) {
    let availability = SloDefinition::builder("orders")
        .target(99.9)
        .period("28d")
        .route("/orders")
        .build()
        .unwrap();
    let latency = SloDefinition::builder("orders-latency")
        .latency(Duration::from_millis(100))
        .target("99%")
        .period("30d")
        .route("/orders")
        .method("GET")
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let set = SloSet::new(vec![availability, latency]).unwrap();
    (
        SloRegistry::new(set, Arc::new(clock.clone())).unwrap(),
        clock,
    )
}

#[test]
fn slo_gauges_pass_promtool() {
    let (slos, clock) = slos();
    let registry = Registry::default();
    slos.register_metrics(&registry).unwrap();
    for minute in 0..90 {
        clock.advance(Duration::from_secs(60));
        for request in 0..100 {
            let status = if minute >= 60 && request < 20 {
                500
            } else {
                200
            };
            slos.record_http("GET", "/orders", status, Duration::from_millis(40));
        }
    }

    let text = registry.encode(Format::PrometheusText).unwrap();
    assert!(
        text.contains("obskit_slo_alert_active{slo=\"orders\",severity=\"page\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("obskit_slo_burn_rate{slo=\"orders\",window=\"5m\"} 200.0"),
        "{text}"
    );
    assert!(
        text.contains("obskit_slo_alert_active{slo=\"orders-latency\",severity=\"page\"} 0"),
        "{text}"
    );
    promtool::check_metrics(&text);

    let open_metrics = registry.encode(Format::OpenMetrics).unwrap();
    assert!(
        open_metrics.contains("# TYPE obskit_slo_late_events counter"),
        "{open_metrics}"
    );
    assert!(open_metrics.ends_with("# EOF\n"), "{open_metrics}");
}

#[test]
fn unknown_windows_omitted_from_scrape() {
    let (slos, clock) = slos();
    let registry = Registry::default();
    slos.register_metrics(&registry).unwrap();
    slos.record_http("GET", "/orders", 200, Duration::from_millis(5));
    clock.advance(Duration::from_secs(10 * 60));

    let text = registry.encode(Format::PrometheusText).unwrap();
    assert!(
        !text.contains("window=\"5m\""),
        "an empty 5m window must be omitted:\n{text}"
    );
    assert!(
        text.contains("obskit_slo_burn_rate{slo=\"orders\",window=\"30m\"} 0.0"),
        "{text}"
    );
}
