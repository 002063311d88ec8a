//! Property tests of the redactor: generated secrets never survive, arbitrary input never
//! panics, redaction is idempotent and clean text is returned borrowed.
#![allow(
    clippy::indexing_slicing,
    reason = "indexes and slices stay within tables and strings built in this file"
)]

use std::borrow::Cow;

use obskit::redact::Redactor;
use proptest::prelude::*;
use proptest::sample::select;

/// Cases per property, few enough that the whole file runs in seconds in a debug build.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Clean text
// ---------------------------------------------------------------------------------------

/// Everyday log words, including those that sit next to credentials in real lines.
const VOCABULARY: &[&str] = &[
    "request", "failed", "retry", "user", "login", "token", "expired", "bearer", "basic", "auth",
    "password", "reset", "secret", "rotated", "card", "declined", "order", "shipped", "session",
    "closed", "email", "sent", "phone", "iban", "key", "cache", "miss", "ok", "the", "for", "with",
    "and", "to",
];

/// Generates a word of at most twelve lowercase letters, too short for a bearer token, or a
/// number below 1000, which has no leading zero and is too short for any digit shape.
fn clean_word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(VOCABULARY).prop_map(str::to_owned),
        3 => "[a-z]{1,12}",
        2 => (0u32..1000).prop_map(|n| n.to_string()),
    ]
}

fn clean_words(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(clean_word(), 0..max).prop_map(|words| words.join(" "))
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &d)| {
            let d = u32::from(d);
            if position % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Card networks as (prefix, length, groups of the usual printed layout).
const NETWORKS: &[(&str, usize, &[usize])] = &[
    ("4", 16, &[4, 4, 4, 4]),
    ("4", 13, &[4, 4, 5]),
    ("4", 19, &[4, 4, 4, 4, 3]),
    ("51", 16, &[4, 4, 4, 4]),
    ("55", 16, &[4, 4, 4, 4]),
    ("2221", 16, &[4, 4, 4, 4]),
    ("2720", 16, &[4, 4, 4, 4]),
    ("34", 15, &[4, 6, 5]),
    ("37", 15, &[4, 6, 5]),
    ("6011", 16, &[4, 4, 4, 4]),
    ("65", 16, &[4, 4, 4, 4]),
    ("3528", 16, &[4, 4, 4, 4]),
    ("36", 14, &[4, 6, 4]),
];

/// Generates a card number with a valid Luhn digit, as (written form, digits only).
fn card() -> impl Strategy<Value = (String, String)> {
    (
        select(NETWORKS),
        prop::collection::vec(0u8..10, 19),
        select(&["", " ", "-"][..]),
    )
        .prop_map(|((prefix, len, layout), random, separator)| {
            let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
            digits.extend(random.iter().take(len - 1 - digits.len()));
            digits.push(luhn_check_digit(&digits));
            let compact: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let mut written = String::new();
            let mut offset = 0;
            for (index, size) in layout.iter().enumerate() {
                if index > 0 {
                    written.push_str(separator);
                }
                written.push_str(&compact[offset..offset + size]);
                offset += size;
            }
            (written, compact)
        })
}

/// IBAN countries as (code, BBAN pattern).
const IBAN_COUNTRIES: &[(&str, &str)] = &[
    ("DE", "[0-9]{18}"),
    ("GB", "[A-Z]{4}[0-9]{14}"),
    ("FR", "[0-9]{10}[A-Z0-9]{11}[0-9]{2}"),
    ("NL", "[A-Z]{4}[0-9]{10}"),
    ("NO", "[0-9]{11}"),
    ("BE", "[0-9]{12}"),
    ("CH", "[0-9]{5}[A-Z0-9]{12}"),
    ("ES", "[0-9]{20}"),
    ("IT", "[A-Z][0-9]{10}[A-Z0-9]{12}"),
    ("PL", "[0-9]{24}"),
];

/// Returns the ISO 13616 remainder of `text`, letters read as 10 to 35.
fn mod97(text: &str) -> u32 {
    text.bytes().fold(0, |remainder, byte| {
        if byte.is_ascii_digit() {
            (remainder * 10 + u32::from(byte - b'0')) % 97
        } else {
            (remainder * 100 + u32::from(byte - b'A') + 10) % 97
        }
    })
}

/// Generates an IBAN with check digits computed by mod-97, compact or in groups of four.
fn iban() -> impl Strategy<Value = String> {
    (0..IBAN_COUNTRIES.len(), any::<bool>())
        .prop_flat_map(|(index, grouped)| {
            let (country, pattern) = IBAN_COUNTRIES[index];
            (Just(country), pattern, Just(grouped))
        })
        .prop_map(|(country, bban, grouped)| {
            let check = 98 - mod97(&format!("{bban}{country}00"));
            let compact = format!("{country}{check:02}{bban}");
            if grouped {
                compact
                    .as_bytes()
                    .chunks(4)
                    .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                compact
            }
        })
}

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9]{0,8}([._+-][a-z0-9]{1,8})?",
        "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        select(&["com", "org", "io", "co.uk", "de", "example"][..]),
    )
        .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}"))
}

fn jwt() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9_-]{8,40}",
        "[A-Za-z0-9_-]{2,80}",
        "[A-Za-z0-9_-]{0,86}",
    )
        .prop_map(|(header, payload, signature)| format!("eyJ{header}.{payload}.{signature}"))
}

fn aws_key() -> impl Strategy<Value = String> {
    (
        select(&["AKIA", "ASIA", "AROA", "AIDA"][..]),
        "[A-Z0-9]{16}",
    )
        .prop_map(|(prefix, body)| format!("{prefix}{body}"))
}

fn github_token() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            select(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"][..]),
            "[A-Za-z0-9]{36}"
        )
            .prop_map(|(prefix, body)| format!("{prefix}{body}")),
        ("[A-Za-z0-9]{22}", "[A-Za-z0-9]{59}")
            .prop_map(|(id, body)| format!("github_pat_{id}_{body}")),
    ]
}

/// Generates an SSN outside the never-issued ranges.
fn ssn() -> impl Strategy<Value = String> {
    (
        (1u32..900).prop_filter("666 is never issued", |area| *area != 666),
        1u32..100,
        1u32..10_000,
        select(&["-", " "][..]),
    )
        .prop_map(|(area, group, serial, separator)| {
            format!("{area:03}{separator}{group:02}{separator}{serial:04}")
        })
}

/// Generates an E.164 number of 8 to 15 digits, compact or in groups of two to four.
fn e164() -> impl Strategy<Value = String> {
    (
        1u8..10,
        prop::collection::vec(0u8..10, 7..15),
        prop::collection::vec(2usize..5, 8),
        select(&["", " ", "-"][..]),
    )
        .prop_map(|(first, rest, sizes, separator)| {
            let digits: String = std::iter::once(first)
                .chain(rest)
                .map(|d| char::from(b'0' + d))
                .collect();
            let mut written = String::from("+");
            let mut offset = 0;
            for size in sizes {
                if offset >= digits.len() {
                    break;
                }
                if offset > 0 {
                    written.push_str(separator);
                }
                let end = (offset + size).min(digits.len());
                written.push_str(&digits[offset..end]);
                offset = end;
            }
            if offset < digits.len() {
                written.push_str(separator);
                written.push_str(&digits[offset..]);
            }
            written
        })
}

/// Puts `secret` between clean words.
fn embedded<S: Strategy<Value = String>>(secret: S) -> impl Strategy<Value = (String, String)> {
    (clean_words(6), secret, clean_words(6)).prop_map(|(before, secret, after)| {
        let line = [before.as_str(), secret.as_str(), after.as_str()]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        (line, secret)
    })
}

fn assert_secret_gone(line: &str, secret: &str) -> Result<(), TestCaseError> {
    let output = Redactor::default().redact(line).into_owned();
    prop_assert!(
        !output.contains(secret),
        "secret {secret:?} survived in {output:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cards_never_survive(
        (before, (written, compact), after) in (clean_words(6), card(), clean_words(6))
    ) {
        let line = format!("{before} {written} {after}");
        let output = Redactor::default().redact(&line).into_owned();
        prop_assert!(!output.contains(&written), "card {written:?} survived in {output:?}");
        let squeezed: String = output.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        prop_assert!(
            !squeezed.contains(&compact),
            "digits of {written:?} survived in {output:?}"
        );
    }

    #[test]
    fn ibans_never_survive((line, secret) in embedded(iban())) {
        assert_secret_gone(&line, &secret)?;
    }

    #[test]
    fn emails_never_survive((line, secret) in embedded(email())) {
        assert_secret_gone(&line, &secret)?;
    }

    #[test]
    fn jwts_never_survive((line, secret) in embedded(jwt())) {
        assert_secret_gone(&line, &secret)?;
    }

    #[test]
    fn aws_keys_never_survive((line, secret) in embedded(aws_key())) {
        assert_secret_gone(&line, &secret)?;
    }

    #[test]
    fn github_tokens_never_survive((line, secret) in embedded(github_token())) {
        assert_secret_gone(&line, &secret)?;
    }

    #[test]
    fn ssns_never_survive((line, secret) in embedded(ssn())) {
        assert_secret_gone(&line, &secret)?;
    }

    #[test]
    fn phones_never_survive((line, secret) in embedded(e164())) {
        assert_secret_gone(&line, &secret)?;
    }

    #[test]
    fn clean_text_is_borrowed(line in clean_words(24)) {
        let redactor = Redactor::default();
        let output = redactor.redact(&line);
        prop_assert!(
            matches!(output, Cow::Borrowed(_)),
            "clean text changed: {line:?} became {output:?}"
        );
    }

    #[test]
    fn arbitrary_strings_are_idempotent(text in any::<String>()) {
        let redactor = Redactor::default();
        let once = redactor.redact(&text).into_owned();
        let twice = redactor.redact(&once).into_owned();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn arbitrary_bytes_are_idempotent(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let redactor = Redactor::default();
        let once = redactor.redact_bytes(&bytes).into_owned();
        let twice = redactor.redact(&once).into_owned();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn log_fragments_are_idempotent(text in fragments()) {
        let redactor = Redactor::default();
        let once = redactor.redact(&text).into_owned();
        let twice = redactor.redact(&once).into_owned();
        prop_assert_eq!(once, twice, "input {:?}", text);
    }
}

/// Pieces of log lines that start, end or sit next to matches, so that generated text often
/// contains near misses and adjacent matches.
const FRAGMENTS: &[&str] = &[
    " ",
    " ",
    "=",
    ":",
    ": ",
    "\"",
    "'",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "&",
    "?",
    "@",
    ".",
    "-",
    "+",
    "/",
    "://",
    "\\\"",
    "\n",
    "password",
    "token",
    "api_key",
    "Authorization",
    "Bearer",
    "bearer",
    "Basic",
    "dXNlcjpwYXNz",
    "example.com",
    "jane",
    "4111",
    "1111",
    "1234",
    "123",
    "45",
    "6789",
    "415",
    "555",
    "2671",
    "+1",
    "+44",
    "20",
    "7946",
    "0958",
    "DE89",
    "3704",
    "0044",
    "0532",
    "0130",
    "00",
    "eyJhbGciOiJIUzI1NiJ9",
    "eyJzdWIiOiIxIn0",
    "AKIA",
    "IOSFODNN7EXAMPLE",
    "ghp_",
    "a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3",
    "glpat-",
    "xoxb-",
    "https",
    "postgres",
    "user",
    "pass",
    "host",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "[REDACTED:field]",
    "[REDACTED:email]",
    "Some",
    "x",
];

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => select(FRAGMENTS).prop_map(str::to_owned),
            1 => "[a-zA-Z0-9]{1,6}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}
