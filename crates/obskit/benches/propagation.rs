//! `traceparent` parse and validation next to a regex-based validator, plus full header
//! extraction and injection.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::LazyLock;

use divan::black_box;
use http::{HeaderMap, HeaderValue};
use obskit::trace::{TraceParent, extract, inject};
use regex::Regex;

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UPPERCASE: &str = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";

fn main() {
    divan::main();
}

/// The peer: the `traceparent` grammar as a regex, then the checks a regex cannot express.
static TRACEPARENT_REGEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$").unwrap()
});

/// Parsed fields from the regex peer: version, trace-id, parent-id and flags.
type RegexParsed = (u8, u128, u64, u8);

fn parse_with_regex(value: &str) -> Option<RegexParsed> {
    let captures = TRACEPARENT_REGEX.captures(value)?;
    let version = u8::from_str_radix(captures.get(1)?.as_str(), 16).ok()?;
    let trace_id = u128::from_str_radix(captures.get(2)?.as_str(), 16).ok()?;
    let parent_id = u64::from_str_radix(captures.get(3)?.as_str(), 16).ok()?;
    let flags = u8::from_str_radix(captures.get(4)?.as_str(), 16).ok()?;
    let has_extra = captures.get(5).is_some();
    if version == 0xff || trace_id == 0 || parent_id == 0 || (version == 0 && has_extra) {
        return None;
    }
    Some((version, trace_id, parent_id, flags))
}

#[divan::bench_group]
mod traceparent_parse {
    use super::*;

    #[divan::bench]
    fn obskit_valid() -> Option<TraceParent> {
        TraceParent::parse(black_box(VALID)).ok()
    }

    #[divan::bench]
    fn regex_valid() -> Option<RegexParsed> {
        parse_with_regex(black_box(VALID))
    }

    #[divan::bench]
    fn obskit_uppercase() -> Option<TraceParent> {
        TraceParent::parse(black_box(UPPERCASE)).ok()
    }

    #[divan::bench]
    fn regex_uppercase() -> Option<RegexParsed> {
        parse_with_regex(black_box(UPPERCASE))
    }
}

fn incoming_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_static(VALID));
    headers.insert(
        "tracestate",
        HeaderValue::from_static("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,tenant@vendor=abc"),
    );
    headers.insert(
        "baggage",
        HeaderValue::from_static("userId=alice,region=eu%20west;ttl=60,tier=gold"),
    );
    headers
}

#[divan::bench]
fn extract_three_headers(bencher: divan::Bencher<'_, '_>) {
    let headers = incoming_headers();
    bencher.bench_local(|| extract(black_box(&headers)));
}

#[divan::bench]
fn inject_three_headers(bencher: divan::Bencher<'_, '_>) {
    let extracted = extract(&incoming_headers());
    let parent = extracted.outgoing_traceparent(true);
    bencher.bench_local(|| {
        let mut headers = HeaderMap::new();
        inject(
            black_box(&parent),
            &extracted.state,
            &extracted.baggage,
            &mut headers,
        );
        headers
    });
}
