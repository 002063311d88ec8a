//! Secrets at the start and the end of texts of every length from 1 to 49 bytes, so that each
//! one crosses the single padded block of short values, the 16-byte blocks and the last,
//! overlapping block of longer texts.
#![allow(clippy::panic, reason = "a test fails by panicking")]

use obskit::config::{RedactConfig, RuleMode, RuleModes};
use obskit::redact::Redactor;

/// A secret of each block-scanned detector, as the text it must replace and its placeholder.
const SECRETS: &[(&str, &str)] = &[
    ("jo@example.com", "[REDACTED:email]"),
    ("4111111111111111", "[REDACTED:card]"),
    ("123-45-6789", "[REDACTED:ssn]"),
    ("+14155552671", "[REDACTED:phone]"),
    ("AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_key]"),
    ("10.1.2.3", "[REDACTED:ip]"),
    ("fe80::1", "[REDACTED:ip]"),
    ("a::1", "[REDACTED:ip]"),
    ("dead:beef::1", "[REDACTED:ip]"),
    ("abc:0:0:0:0:0:0:1", "[REDACTED:ip]"),
    ("cafe::", "[REDACTED:ip]"),
];

fn all_rules() -> Redactor {
    let config = RedactConfig {
        rules: RuleModes {
            ip: RuleMode::Mask,
            ..RuleModes::default()
        },
        ..RedactConfig::default()
    };
    match Redactor::new(&config) {
        Ok(redactor) => redactor,
        Err(error) => panic!("valid rules rejected: {error}"),
    }
}

/// Returns `len` bytes of lowercase words that no detector matches.
fn filler(len: usize) -> String {
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod"
        .chars()
        .cycle()
        .take(len)
        .collect()
}

fn check(redactor: &Redactor, text: &str, expected: &str) {
    assert_eq!(redactor.redact(text), expected, "redact of {text:?}");
    let mut out = String::new();
    assert_eq!(
        redactor.redact_to(text, &mut out),
        Ok(1),
        "redact_to count of {text:?}"
    );
    assert_eq!(out, expected, "redact_to of {text:?}");
}

#[test]
fn secret_at_end_every_length() {
    let redactor = all_rules();
    for &(secret, placeholder) in SECRETS {
        for len in secret.len()..50 {
            let prefix = match len - secret.len() {
                0 => String::new(),
                gap => filler(gap - 1) + " ",
            };
            let text = format!("{prefix}{secret}");
            assert_eq!(text.len(), len);
            check(&redactor, &text, &format!("{prefix}{placeholder}"));
        }
    }
}

#[test]
fn secret_at_start_every_length() {
    let redactor = all_rules();
    for &(secret, placeholder) in SECRETS {
        for len in secret.len()..50 {
            let suffix = match len - secret.len() {
                0 => String::new(),
                gap => " ".to_owned() + &filler(gap - 1),
            };
            let text = format!("{secret}{suffix}");
            assert_eq!(text.len(), len);
            check(&redactor, &text, &format!("{placeholder}{suffix}"));
        }
    }
}

#[test]
fn clean_text_every_length() {
    let redactor = all_rules();
    for len in 0..50 {
        let text = filler(len) + " v4.12.0 1843";
        assert_eq!(redactor.redact(&text), text.as_str(), "{text:?}");
    }
}
