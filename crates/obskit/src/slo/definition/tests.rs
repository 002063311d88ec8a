use super::*;

fn spec(kind: &str, target: &str) -> SloSpec {
    SloSpec {
        kind: kind.to_owned(),
        target: TargetText(target.to_owned()),
        period: "28d".to_owned(),
        route: "/orders/{id}".to_owned(),
        method: None,
        threshold: None,
        description: None,
        runbook_url: None,
    }
}

fn rejection(name: &str, spec: &SloSpec) -> SloError {
    match SloDefinition::from_spec(name, spec) {
        Ok(definition) => panic!("{name} accepted: {definition:?}"),
        Err(error) => error,
    }
}

fn definition(name: &str, spec: &SloSpec) -> SloDefinition {
    SloDefinition::from_spec(name, spec).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn availability_spec_accepted() {
    let slo = definition("orders", &spec("availability", "99.9"));
    assert_eq!(slo.kind, SloKind::Availability);
    assert_eq!(slo.target.to_string(), "0.999");
    assert_eq!(slo.period, Duration::from_secs(28 * 86_400));
    assert_eq!(slo.selector.route, "/orders/{id}");
    assert_eq!(slo.selector.method, None);
}

#[test]
fn error_rate_target_is_max_error_percent() {
    let slo = definition("orders", &spec("error_rate", "0.5"));
    assert_eq!(slo.target.to_string(), "0.995");
    assert_eq!(slo.target.error_budget().to_string(), "0.005");
    assert_eq!(slo.to_spec().target.0, "0.5");
}

#[test]
fn latency_threshold_must_be_bucket() {
    let mut latency = spec("latency", "99");
    latency.threshold = Some("250ms".to_owned());
    let slo = definition("orders", &latency);
    assert_eq!(
        slo.kind,
        SloKind::Latency {
            threshold: Duration::from_millis(250)
        }
    );
    assert_eq!(slo.kind.threshold_seconds(), Some(0.25));

    latency.threshold = Some("75ms".to_owned());
    assert_eq!(
        definition("orders", &latency).kind.threshold_seconds(),
        Some(0.075)
    );

    latency.threshold = Some("300ms".to_owned());
    let error = rejection("orders", &latency);
    assert!(
        matches!(error, SloError::ThresholdNotBucket { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("\"orders\""), "{message}");
    assert!(message.contains("threshold = \"300ms\""), "{message}");
    assert!(message.contains("\"5ms\", \"10ms\", \"25ms\""), "{message}");
    assert!(message.contains("\"10s\""), "{message}");
    assert!(
        message.contains("\"1s\", \"2.5s\", \"5s\", \"7.5s\""),
        "{message}"
    );

    // Every boundary the message lists is accepted as written.
    for listed in boundaries().split(", ") {
        latency.threshold = Some(listed.trim_matches('"').to_owned());
        assert!(
            SloDefinition::from_spec("orders", &latency).is_ok(),
            "{listed}"
        );
    }

    latency.threshold = None;
    assert!(matches!(
        rejection("orders", &latency),
        SloError::MissingThreshold { .. }
    ));
    latency.threshold = Some("fast".to_owned());
    assert!(matches!(
        rejection("orders", &latency),
        SloError::InvalidThreshold { .. }
    ));

    let mut availability = spec("availability", "99.9");
    availability.threshold = Some("250ms".to_owned());
    let error = rejection("orders", &availability);
    assert!(
        matches!(error, SloError::UnexpectedThreshold { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("kind = \"availability\""), "{message}");
}

#[test]
fn target_out_of_range_names_slo_and_field() {
    for target in ["100", "1", "0", "0.0", "-1", "abc"] {
        let error = rejection("checkout", &spec("availability", target));
        assert!(
            matches!(error, SloError::Target { .. }),
            "{target}: {error}"
        );
        assert_eq!(error.slo(), Some("checkout"));
        assert_eq!(error.field(), "target");
        let message = error.to_string();
        assert!(
            message.starts_with("SLO \"checkout\": target = "),
            "{message}"
        );
    }
}

#[test]
fn period_rules() {
    let mut short = spec("availability", "99.9");
    for period in ["0s", "1h", "2d 23h 59m"] {
        short.period = period.to_owned();
        let error = rejection("orders", &short);
        assert!(
            matches!(error, SloError::PeriodTooShort { .. }),
            "{period}: {error}"
        );
        assert_eq!(error.field(), "period");
    }
    short.period = "3d".to_owned();
    assert_eq!(definition("orders", &short).period, LONGEST_WINDOW);
    short.period = "4w".to_owned();
    assert_eq!(
        definition("orders", &short).period,
        Duration::from_secs(28 * 86_400)
    );
    short.period = "367d".to_owned();
    assert!(matches!(
        rejection("orders", &short),
        SloError::PeriodTooLong { .. }
    ));
    short.period = "a month".to_owned();
    assert!(matches!(
        rejection("orders", &short),
        SloError::InvalidPeriod { .. }
    ));
}

#[test]
fn names_checked() {
    let valid = spec("availability", "99.9");
    assert_eq!(rejection("", &valid), SloError::EmptyName);
    for name in ["1st", "orders.read", "orders read", "ördersö"] {
        assert!(
            matches!(rejection(name, &valid), SloError::InvalidName { .. }),
            "{name}"
        );
    }
    assert_eq!(definition("Orders_read-2", &valid).name, "Orders_read-2");
    let longest = format!("o{}", "r".repeat(MAX_NAME_LENGTH - 1));
    assert_eq!(definition(&longest, &valid).name, longest);
    assert!(matches!(
        rejection(&format!("{longest}s"), &valid),
        SloError::InvalidName { .. }
    ));
}

#[test]
fn selector_checked() {
    let mut invalid = spec("availability", "99.9");
    for route in ["orders", "", "/orders?id=1", "/a b"] {
        invalid.route = route.to_owned();
        assert!(
            matches!(rejection("orders", &invalid), SloError::InvalidRoute { .. }),
            "{route}"
        );
    }
    invalid.route = "/orders".to_owned();
    for method in ["get", "FETCH", "_OTHER"] {
        invalid.method = Some(method.to_owned());
        assert!(
            matches!(
                rejection("orders", &invalid),
                SloError::InvalidMethod { .. }
            ),
            "{method}"
        );
    }
    invalid.method = Some("POST".to_owned());
    assert_eq!(
        definition("orders", &invalid).selector.method.as_deref(),
        Some("POST")
    );
}

#[test]
fn unknown_kind_and_runbook_rejected() {
    assert!(matches!(
        rejection("orders", &spec("throughput", "99")),
        SloError::UnknownKind { .. }
    ));
    let mut runbook = spec("availability", "99");
    runbook.runbook_url = Some("wiki/orders".to_owned());
    assert!(matches!(
        rejection("orders", &runbook),
        SloError::InvalidRunbookUrl { .. }
    ));
    runbook.runbook_url = Some("https://runbooks.example.com/orders".to_owned());
    assert!(SloDefinition::from_spec("orders", &runbook).is_ok());
}

#[test]
fn check_spec_collects_every_problem() {
    let mut bad = spec("availability", "100");
    bad.period = "1d".to_owned();
    bad.route = "orders".to_owned();
    let mut errors = Vec::new();
    assert!(SloDefinition::check_spec("", &bad, &mut errors).is_none());
    let fields: Vec<&str> = errors.iter().map(SloError::field).collect();
    assert_eq!(fields, ["name", "target", "period", "route"]);
}

#[test]
fn builder_and_serde_round_trip() {
    let slo = SloDefinition::builder("orders-latency")
        .latency(Duration::from_millis(500))
        .target("99.5%")
        .period("30d")
        .route("/orders")
        .method("GET")
        .description("Order list loads fast")
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let json = serde_json::to_string(&slo).unwrap_or_default();
    assert!(json.contains("\"target\":\"0.995\""), "{json}");
    assert!(json.contains("\"threshold\":\"500ms\""), "{json}");
    let back: SloDefinition = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, slo);

    let invalid = serde_json::from_str::<SloDefinition>(
        r#"{"name":"x","kind":"availability","target":100,"period":"28d","route":"/"}"#,
    );
    assert!(invalid.is_err());
}

#[test]
fn set_rejects_duplicates_and_unknown_routes() {
    let orders = definition("orders", &spec("availability", "99.9"));
    let duplicate = SloSet::new(vec![orders.clone(), orders.clone()]);
    assert_eq!(
        duplicate.map(|_| ()),
        Err(SloErrors {
            errors: vec![SloError::DuplicateName {
                name: "orders".to_owned()
            }]
        })
    );

    let set = SloSet::new(vec![orders]).unwrap_or_default();
    assert_eq!(set.definitions().len(), 1);
    assert!(set.check_routes(&["/orders", "/orders/{id}"]).is_ok());
    let unknown = set
        .check_routes(&["/orders", "/order/{id}"])
        .err()
        .map(|errors| errors.to_string())
        .unwrap_or_default();
    assert!(
        unknown.contains("route = \"/orders/{id}\" is not a route"),
        "{unknown}"
    );
    assert!(
        unknown.contains("did you mean \"/order/{id}\"?"),
        "{unknown}"
    );
}

#[test]
fn is_bad_by_kind() {
    let availability = definition("a", &spec("availability", "99.9"));
    assert!(availability.is_bad(500, Duration::ZERO));
    assert!(availability.is_bad(503, Duration::ZERO));
    assert!(!availability.is_bad(404, Duration::from_secs(60)));
    let mut latency = spec("latency", "99");
    latency.threshold = Some("100ms".to_owned());
    let latency = definition("l", &latency);
    assert!(!latency.is_bad(500, Duration::from_millis(100)));
    assert!(latency.is_bad(200, Duration::from_nanos(100_000_001)));
}
