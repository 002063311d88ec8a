use super::*;
use crate::clock::ManualClock;
use crate::metrics::Format;
use crate::slo::{SloDefinition, Window};

fn registry() -> (SloRegistry, ManualClock) {
    let availability = SloDefinition::builder("orders-availability")
        .target(99.9)
        .period("30d")
        .route("/orders/{id}")
        .build()
        .unwrap();
    let latency = SloDefinition::builder("orders-post-latency")
        .latency(Duration::from_millis(250))
        .target(99)
        .period("30d")
        .route("/orders/{id}")
        .method("POST")
        .build()
        .unwrap();
    let errors = SloDefinition::builder("checkout-errors")
        .error_rate()
        .target(0.5)
        .period("28d")
        .route("/checkout")
        .build()
        .unwrap();
    let set = SloSet::new(vec![availability, latency, errors]).unwrap();
    let clock = ManualClock::new();
    (
        SloRegistry::new(set, Arc::new(clock.clone())).unwrap(),
        clock,
    )
}

fn counts(registry: &SloRegistry, name: &str) -> (u64, u64) {
    let status = registry.tracker(name).unwrap().status();
    (status.valid, status.bad)
}

#[test]
fn record_http_matches_route_and_method() {
    let (slos, _clock) = registry();
    slos.record_http("GET", "/orders/{id}", 200, Duration::from_millis(900));
    slos.record_http("POST", "/orders/{id}", 503, Duration::from_millis(100));
    slos.record_http("POST", "/orders/{id}", 201, Duration::from_millis(251));
    slos.record_http("GET", "/orders/42", 500, Duration::ZERO);
    slos.record_http("GET", "/checkout", 404, Duration::ZERO);

    assert_eq!(counts(&slos, "orders-availability"), (3, 1));
    assert_eq!(counts(&slos, "orders-post-latency"), (2, 1));
    assert_eq!(counts(&slos, "checkout-errors"), (1, 0));
}

#[test]
fn error_rate_burns_against_half_percent() {
    let (slos, _clock) = registry();
    for status in [500, 200, 200, 200] {
        slos.record_http("GET", "/checkout", status, Duration::ZERO);
    }
    let status = slos.tracker("checkout-errors").unwrap().status();
    // 1 error in 4 against a budget of 0.005: a burn rate of 50.
    assert_eq!(status.burn_rates.get(Window::M5), Some(50.0));
    assert_eq!(status.target.to_string(), "0.995");
}

#[test]
fn gauges_written_at_scrape() {
    let (slos, _clock) = registry();
    let metrics = Registry::default();
    slos.register_metrics(&metrics).unwrap();
    for _ in 0..999 {
        slos.record_http("GET", "/orders/{id}", 200, Duration::ZERO);
    }
    slos.record_http("GET", "/orders/{id}", 500, Duration::ZERO);

    let text = metrics.encode(Format::PrometheusText).unwrap();
    for line in [
        "obskit_slo_objective_ratio{slo=\"orders-availability\"} 0.999",
        "obskit_slo_objective_ratio{slo=\"checkout-errors\"} 0.995",
        "obskit_slo_error_budget_remaining_ratio{slo=\"orders-availability\"} 0.0",
        "obskit_slo_burn_rate{slo=\"orders-availability\",window=\"5m\"} 1.0",
        "obskit_slo_burn_rate{slo=\"orders-availability\",window=\"3d\"} 1.0",
        "obskit_slo_alert_active{slo=\"orders-availability\",severity=\"page\"} 0",
        "obskit_slo_alert_active{slo=\"orders-availability\",severity=\"ticket\"} 0",
        "obskit_slo_late_events_total{slo=\"checkout-errors\"} 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("obskit_slo_burn_rate{slo=\"checkout-errors\""),
        "{text}"
    );
    assert!(
        !text.contains("obskit_slo_error_budget_remaining_ratio{slo=\"checkout-errors\""),
        "{text}"
    );
    assert!(matches!(
        slos.register_metrics(&metrics),
        Err(MetricsError::AlreadyRegistered { .. })
    ));
}
