//! Cost of redaction: obskit's scanner against a `regex::RegexSet` over the same patterns.
//!
//! One "event" is a message and six field values, and both sides look at the same text. The
//! peer only returns whether anything matches, while obskit also writes the redacted text, so
//! the comparison favours the peer.

#![allow(clippy::expect_used, reason = "benchmark setup")]

use std::fmt::Write as _;
use std::hint::black_box;

use divan::{AllocProfiler, Bencher};
use obskit::config::{RedactConfig, RuleMode, RuleModes};
use obskit::redact::{FieldAction, Redactor};
use regex::RegexSet;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// A clean 200-byte message: ids, a timestamp, a version, durations and numbers, nothing to
/// redact.
const CLEAN_MESSAGE: &str = "order 8812734 for tenant acme-eu accepted at 2026-12-04T10:21:07Z \
by checkout v1.4.2 in 12.5ms; trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7 \
retries=0 items=3 total=42.50 cache=miss ok";

/// A clean 200-byte message of words, with few digits and no `key=value` pairs.
const PROSE_MESSAGE: &str = "session refreshed for the tenant after the upstream identity \
provider answered slowly; the cached profile was served from the edge node in the western \
region and the request completed without retrying";

/// Six fields of a typical request event.
const CLEAN_FIELDS: [(&str, &str); 6] = [
    ("http.route", "/orders/{id}"),
    ("request_id", "01JEGQ9V3W6ZK2M8T1X4R5B7C9"),
    ("user_agent", "okhttp/4.12.0"),
    ("db.statement", "SELECT id FROM orders WHERE id = $1"),
    ("region", "eu-west-1"),
    ("tokens_used", "1843"),
];

/// A message with one email address and one card number.
const DIRTY_MESSAGE: &str =
    "payment by jane.doe@example.com with card 4111 1111 1111 1111 declined: insufficient funds";

/// The same detectors as obskit's, as regular expressions.
const PATTERNS: &[&str] = &[
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    r"\b(?:\d[ -]?){12,18}\d\b",
    r"\b\d{3}-\d{2}-\d{4}\b",
    r"\+[1-9][\d .-]{7,18}\d\b|\(\d{3}\) ?\d{3}[-. ]?\d{4}\b|\b\d{3}[-. ]\d{3}[-. ]\d{4}\b",
    r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
    r"\beyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
    r"(?i)\bbearer +[A-Za-z0-9._~+/-]{8,}=*",
    r"(?i)\bbasic +[A-Za-z0-9+/]{4,}={0,2}",
    r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b",
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
    r"\bgl(?:pat|dt|rt|rtr|cbt|ptt|ft|imt|agent|soat|oas|ffct)-[A-Za-z0-9_-]{20,}",
    r"\bxox[bparsoe]-[A-Za-z0-9-]{10,}|\bxapp-[A-Za-z0-9-]{10,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]*@",
    r"(?i)\b(?:password|passwd|pwd|secret|token|api_?key|access_token|refresh_token|client_secret|authorization|cookie|session)\s*[=:]\s*\S+",
    r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
];

fn all_rules() -> Redactor {
    Redactor::new(&RedactConfig {
        rules: RuleModes {
            ip: RuleMode::Mask,
            ..RuleModes::default()
        },
        ..RedactConfig::default()
    })
    .expect("valid rules")
}

fn peer() -> RegexSet {
    RegexSet::new(PATTERNS).expect("valid patterns")
}

/// Measures the default rules, without IP addresses, on the same clean event.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_clean_event_default_rules(bencher: Bencher<'_, '_>) {
    let redactor = Redactor::default();
    let mut out = String::with_capacity(1024);
    assert_eq!(redact_event(&redactor, CLEAN_MESSAGE, &mut out), 0);
    bencher.bench_local(|| redact_event(&redactor, black_box(CLEAN_MESSAGE), &mut out));
}

/// Redacts the message and the fields into `out`, as the JSON formatter does with the static
/// names of `tracing` fields.
fn redact_event(redactor: &Redactor, message: &str, out: &mut String) -> usize {
    out.clear();
    let mut replaced = redactor.redact_to(message, out).unwrap_or(0);
    for (name, value) in CLEAN_FIELDS {
        replaced += match redactor.field_action_static(name) {
            FieldAction::Scan => redactor.redact_to(value, out).unwrap_or(0),
            FieldAction::Replace => {
                let _ = redactor.write_field_replacement(value, out);
                1
            }
            FieldAction::Keep => {
                let _ = out.write_str(value);
                0
            }
        };
    }
    replaced
}

fn peer_event(set: &RegexSet, message: &str) -> usize {
    usize::from(set.is_match(message))
        + CLEAN_FIELDS
            .iter()
            .filter(|(_, value)| set.is_match(value))
            .count()
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_clean_event(bencher: Bencher<'_, '_>) {
    let redactor = all_rules();
    let mut out = String::with_capacity(1024);
    assert_eq!(redact_event(&redactor, CLEAN_MESSAGE, &mut out), 0);
    assert_eq!(CLEAN_MESSAGE.len(), 200);
    bencher.bench_local(|| redact_event(&redactor, black_box(CLEAN_MESSAGE), &mut out));
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn regex_set_clean_event(bencher: Bencher<'_, '_>) {
    let set = peer();
    assert_eq!(
        peer_event(&set, CLEAN_MESSAGE),
        0,
        "the peer finds nothing either"
    );
    bencher.bench_local(|| peer_event(&set, black_box(CLEAN_MESSAGE)));
}

/// Measures the default rules on a message of words, the lower end of the clean-event cost.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_clean_prose_event(bencher: Bencher<'_, '_>) {
    let redactor = Redactor::default();
    let mut out = String::with_capacity(1024);
    assert_eq!(PROSE_MESSAGE.len(), 200);
    assert_eq!(redact_event(&redactor, PROSE_MESSAGE, &mut out), 0);
    bencher.bench_local(|| redact_event(&redactor, black_box(PROSE_MESSAGE), &mut out));
}

/// Measures the message of words with every rule on, IP addresses included: the clean event
/// with all detectors on.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_clean_prose_event_all_rules(bencher: Bencher<'_, '_>) {
    let redactor = all_rules();
    let mut out = String::with_capacity(1024);
    assert_eq!(redact_event(&redactor, PROSE_MESSAGE, &mut out), 0);
    bencher.bench_local(|| redact_event(&redactor, black_box(PROSE_MESSAGE), &mut out));
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn regex_set_clean_prose_event(bencher: Bencher<'_, '_>) {
    let set = peer();
    assert_eq!(peer_event(&set, PROSE_MESSAGE), 0);
    bencher.bench_local(|| peer_event(&set, black_box(PROSE_MESSAGE)));
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_email_and_card(bencher: Bencher<'_, '_>) {
    let redactor = all_rules();
    let mut out = String::with_capacity(1024);
    assert_eq!(redactor.redact_to(DIRTY_MESSAGE, &mut out), Ok(2));
    bencher.bench_local(|| {
        out.clear();
        redactor.redact_to(black_box(DIRTY_MESSAGE), &mut out)
    });
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn regex_set_email_and_card(bencher: Bencher<'_, '_>) {
    let set = peer();
    assert_eq!(set.matches(DIRTY_MESSAGE).iter().count(), 2);
    bencher.bench_local(|| set.is_match(black_box(DIRTY_MESSAGE)));
}

/// Measures the message of words alone with every rule on: the message part of
/// `obskit_clean_prose_event_all_rules`.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_prose_message_all_rules(bencher: Bencher<'_, '_>) {
    let redactor = all_rules();
    let mut out = String::with_capacity(1024);
    bencher.bench_local(|| {
        out.clear();
        redactor.redact_to(black_box(PROSE_MESSAGE), &mut out)
    });
}

/// Measures the six field values after an empty message with every rule on: the field part of
/// the clean events.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_six_fields_all_rules(bencher: Bencher<'_, '_>) {
    let redactor = all_rules();
    let mut out = String::with_capacity(1024);
    assert_eq!(redact_event(&redactor, "", &mut out), 0);
    bencher.bench_local(|| redact_event(&redactor, black_box(""), &mut out));
}

/// Measures the name lookups and the copies of the six field values without a scan: the part of
/// `obskit_six_fields_all_rules` that scanning does not cost.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_six_fields_lookup_and_copy(bencher: Bencher<'_, '_>) {
    let redactor = all_rules();
    let mut out = String::with_capacity(1024);
    bencher.bench_local(|| {
        out.clear();
        let mut copied = 0;
        for (name, value) in CLEAN_FIELDS {
            if redactor.field_action_static(black_box(name)) == FieldAction::Scan {
                out.push_str(black_box(value));
                copied += 1;
            }
        }
        copied
    });
}
