//! Redacting clean text allocates nothing: the scan borrows the input and the output goes into
//! the caller's buffer.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::borrow::Cow;

use obskit::config::{RedactConfig, RuleMode, RuleModes};
use obskit::redact::Redactor;

const CLEAN: &str = "order 8812734 for tenant acme-eu accepted at 2026-12-04T10:21:07Z \
by checkout v1.4.2 in 12.5ms; trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7 \
retries=0 items=3 total=42.50 cache=miss ok";

const FIELDS: [(&str, &str); 6] = [
    ("http.route", "/orders/{id}"),
    ("request_id", "01JEGQ9V3W6ZK2M8T1X4R5B7C9"),
    ("user_agent", "okhttp/4.12.0"),
    ("db.statement", "SELECT id FROM orders WHERE id = $1"),
    ("region", "eu-west-1"),
    ("tokens_used", "1843"),
];

#[test]
fn clean_event_allocates_nothing() {
    let redactor = Redactor::new(&RedactConfig {
        rules: RuleModes {
            ip: RuleMode::Mask,
            ..RuleModes::default()
        },
        ..RedactConfig::default()
    })
    .unwrap();
    let mut out = String::with_capacity(4096);
    let run = |out: &mut String| {
        out.clear();
        let mut replaced = redactor.redact_to(CLEAN, out).unwrap();
        for (name, value) in FIELDS {
            assert!(!redactor.is_sensitive_name(name), "{name}");
            replaced += redactor.redact_field_to(name, value, out).unwrap();
            assert!(matches!(
                redactor.redact_field(name, value),
                Cow::Borrowed(_)
            ));
        }
        replaced
    };
    // The first run sets up this thread's caches.
    assert_eq!(run(&mut out), 0);

    let mut replaced = 0;
    let counted = allocation_counter::measure(|| {
        for _ in 0..100 {
            replaced += run(&mut out);
        }
    });
    assert_eq!(replaced, 0);
    assert_eq!(
        counted.count_total, 0,
        "redacting clean text allocated {} times",
        counted.count_total
    );
}
