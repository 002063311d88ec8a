//! W3C Trace Context and Baggage: rule tables, header extraction and injection, round trips and
//! a real HTTP hop over loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use http::HeaderValue;
use obskit::trace::{
    Baggage, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, TRACESTATE_PROPAGATION_LEN, TraceParent,
    TraceParentError, TraceState, TraceStateError, extract, inject,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Expected outcome of one parse: the re-emitted value, or the `reason` label of the error.
#[derive(Debug)]
enum Expect {
    Valid(String),
    Invalid(&'static str),
}

fn valid(text: &str) -> Expect {
    Expect::Valid(text.to_owned())
}

fn traceparent(version: &str, trace_id: &str, parent_id: &str, flags: &str) -> String {
    format!("{version}-{trace_id}-{parent_id}-{flags}")
}

fn traceparent_cases() -> Vec<(&'static str, String, Expect)> {
    use Expect::Invalid;
    let t = TRACE_ID;
    let p = PARENT_ID;
    vec![
        ("valid sampled", VALID.to_owned(), valid(VALID)),
        (
            "valid not sampled",
            traceparent("00", t, p, "00"),
            valid(&traceparent("00", t, p, "00")),
        ),
        (
            "random flag kept",
            traceparent("00", t, p, "02"),
            valid(&traceparent("00", t, p, "02")),
        ),
        (
            "unknown flags cleared",
            traceparent("00", t, p, "09"),
            valid(&traceparent("00", t, p, "01")),
        ),
        (
            "uppercase trace-id",
            traceparent("00", &t.to_uppercase(), p, "01"),
            Invalid("uppercase_hex"),
        ),
        (
            "uppercase parent-id",
            traceparent("00", t, &p.to_uppercase(), "01"),
            Invalid("uppercase_hex"),
        ),
        (
            "uppercase version",
            traceparent("0A", t, p, "01"),
            Invalid("uppercase_hex"),
        ),
        (
            "uppercase flags",
            traceparent("00", t, p, "0F"),
            Invalid("uppercase_hex"),
        ),
        (
            "short trace-id",
            traceparent("00", &t[1..], p, "01"),
            Invalid("too_short"),
        ),
        (
            "long trace-id",
            traceparent("00", &format!("{t}a"), p, "01"),
            Invalid("missing_dash"),
        ),
        (
            "short parent-id",
            traceparent("00", t, &p[1..], "01"),
            Invalid("too_short"),
        ),
        (
            "long parent-id",
            traceparent("00", t, &format!("{p}a"), "01"),
            Invalid("missing_dash"),
        ),
        (
            "short flags",
            traceparent("00", t, p, "1"),
            Invalid("too_short"),
        ),
        (
            "long flags",
            traceparent("00", t, p, "011"),
            Invalid("version_00_length"),
        ),
        (
            "short version",
            traceparent("0", t, p, "01"),
            Invalid("too_short"),
        ),
        (
            "long version",
            traceparent("000", t, p, "01"),
            Invalid("missing_dash"),
        ),
        (
            "zero trace-id",
            traceparent("00", &"0".repeat(32), p, "01"),
            Invalid("zero_trace_id"),
        ),
        (
            "zero parent-id",
            traceparent("00", t, &"0".repeat(16), "01"),
            Invalid("zero_parent_id"),
        ),
        (
            "version ff",
            traceparent("ff", t, p, "01"),
            Invalid("version_forbidden"),
        ),
        (
            "version 00 extra field",
            format!("{VALID}-what-the-future-will-be-like"),
            Invalid("version_00_length"),
        ),
        (
            "version 00 trailing dash",
            format!("{VALID}-"),
            Invalid("version_00_length"),
        ),
        (
            "future version exact length",
            traceparent("01", t, p, "01"),
            valid(VALID),
        ),
        (
            "future version extra fields",
            format!(
                "{}-what-the-future-will-be-like",
                traceparent("cc", t, p, "01")
            ),
            valid(VALID),
        ),
        (
            "future version fe",
            traceparent("fe", t, p, "00"),
            valid(&traceparent("00", t, p, "00")),
        ),
        (
            "future version unknown flags",
            format!("{}-x", traceparent("cc", t, p, "ff")),
            valid(&traceparent("00", t, p, "03")),
        ),
        (
            "future version chars no dash",
            format!("{}.what-the-future", traceparent("cc", t, p, "01")),
            Invalid("future_version_trailing"),
        ),
        (
            "future version uppercase",
            format!("{}-x", traceparent("cc", &t.to_uppercase(), p, "01")),
            Invalid("uppercase_hex"),
        ),
        (
            "future version zero trace-id",
            traceparent("cc", &"0".repeat(32), p, "01"),
            Invalid("zero_trace_id"),
        ),
        (
            "non-hex trace-id",
            traceparent("00", &t.replace('4', "g"), p, "01"),
            Invalid("invalid_character"),
        ),
        (
            "non-hex parent-id",
            traceparent("00", t, &p.replace('7', "z"), "01"),
            Invalid("invalid_character"),
        ),
        (
            "non-hex flags",
            traceparent("00", t, p, "0x"),
            Invalid("invalid_character"),
        ),
        (
            "non-hex version",
            traceparent("0g", t, p, "01"),
            Invalid("invalid_character"),
        ),
        ("empty", String::new(), Invalid("too_short")),
        (
            "underscore separator",
            VALID.replacen('-', "_", 1),
            Invalid("missing_dash"),
        ),
        (
            "leading space not trimmed",
            format!(" {VALID}"),
            Invalid("missing_dash"),
        ),
        (
            "space in trace-id",
            VALID.replacen('4', " ", 1),
            Invalid("invalid_character"),
        ),
    ]
}

fn tracestate_cases() -> Vec<(&'static str, String, Expect)> {
    use Expect::Invalid;
    let members = |count: usize| -> String {
        (0..count)
            .map(|index| format!("k{index}=v{index}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        (
            "single member",
            "congo=t61rcWkgMzE".to_owned(),
            valid("congo=t61rcWkgMzE"),
        ),
        ("32 members", members(32), valid(&members(32))),
        ("33 members", members(33), Invalid("too_many_members")),
        (
            "32 members with empties",
            format!(",, {} ,\t,", members(32)),
            valid(&members(32)),
        ),
        (
            "empty members ignored",
            ",a=1,, ,\tb=2,".to_owned(),
            valid("a=1,b=2"),
        ),
        ("only empty members", " , ,".to_owned(), valid("")),
        (
            "ows around members",
            "a=1 \t, \tb=2".to_owned(),
            valid("a=1,b=2"),
        ),
        (
            "trailing space before comma",
            "a=1 ,b=2 ".to_owned(),
            valid("a=1,b=2"),
        ),
        ("space inside value", "a=x y".to_owned(), valid("a=x y")),
        ("leading space in value", "a= x".to_owned(), valid("a= x")),
        (
            "uppercase key",
            "Congo=1".to_owned(),
            Invalid("invalid_key"),
        ),
        (
            "key starts with digit",
            "1congo=1".to_owned(),
            Invalid("invalid_key"),
        ),
        (
            "key with dot",
            "con.go=1".to_owned(),
            Invalid("invalid_key"),
        ),
        (
            "key special chars",
            "a_b-c*d/e=1".to_owned(),
            valid("a_b-c*d/e=1"),
        ),
        (
            "key 256 chars",
            format!("{}=1", "k".repeat(256)),
            valid(&format!("{}=1", "k".repeat(256))),
        ),
        (
            "key 257 chars",
            format!("{}=1", "k".repeat(257)),
            Invalid("invalid_key"),
        ),
        ("empty key", "=1".to_owned(), Invalid("invalid_key")),
        (
            "multi-tenant key",
            "tenant@vendor=1".to_owned(),
            valid("tenant@vendor=1"),
        ),
        (
            "tenant starts with digit",
            "1tenant@vendor=1".to_owned(),
            valid("1tenant@vendor=1"),
        ),
        (
            "system 14 chars",
            format!("t@{}=1", "s".repeat(14)),
            valid(&format!("t@{}=1", "s".repeat(14))),
        ),
        (
            "system 15 chars",
            format!("t@{}=1", "s".repeat(15)),
            Invalid("invalid_key"),
        ),
        (
            "tenant 242 chars",
            format!("{}@s=1", "t".repeat(242)),
            Invalid("invalid_key"),
        ),
        (
            "system starts with digit",
            "t@1vendor=1".to_owned(),
            Invalid("invalid_key"),
        ),
        ("empty system", "t@=1".to_owned(), Invalid("invalid_key")),
        ("two at signs", "a@b@c=1".to_owned(), Invalid("invalid_key")),
        (
            "value with equals",
            "a=b=c".to_owned(),
            Invalid("invalid_value"),
        ),
        ("empty value", "a=".to_owned(), Invalid("invalid_value")),
        (
            "value 256 chars",
            format!("a={}", "v".repeat(256)),
            valid(&format!("a={}", "v".repeat(256))),
        ),
        (
            "value 257 chars",
            format!("a={}", "v".repeat(257)),
            Invalid("invalid_value"),
        ),
        (
            "value with tab",
            "a=x\ty".to_owned(),
            Invalid("invalid_value"),
        ),
        (
            "value with delete",
            "a=x\u{7f}".to_owned(),
            Invalid("invalid_value"),
        ),
        (
            "value non-ascii",
            "a=caf\u{e9}".to_owned(),
            Invalid("invalid_value"),
        ),
        (
            "missing equals",
            "congo".to_owned(),
            Invalid("missing_equals"),
        ),
        (
            "duplicate keys",
            "a=1,b=2,a=3".to_owned(),
            Invalid("duplicate_key"),
        ),
        (
            "one bad member discards all",
            "a=1,B=2,c=3".to_owned(),
            Invalid("invalid_key"),
        ),
    ]
}

#[test]
fn traceparent_rule_table() {
    let cases = traceparent_cases();
    assert!(cases.len() >= 35);
    for (name, input, expect) in cases {
        let parsed = TraceParent::parse(&input);
        match (&expect, parsed) {
            (Expect::Valid(output), Ok(parent)) => {
                assert_eq!(&parent.to_string(), output, "{name}: re-emitted value");
            }
            (Expect::Invalid(reason), Err(error)) => {
                assert_eq!(error.reason(), *reason, "{name}: {error}");
            }
            (_, outcome) => panic!("{name}: expected {expect:?}, got {outcome:?}"),
        }
    }
}

#[test]
fn tracestate_rule_table() {
    let cases = tracestate_cases();
    assert!(cases.len() >= 30);
    for (name, input, expect) in cases {
        let parsed = TraceState::parse(&input);
        match (&expect, parsed) {
            (Expect::Valid(output), Ok(state)) => {
                assert_eq!(&state.to_string(), output, "{name}: re-encoded list");
            }
            (Expect::Invalid(reason), Err(error)) => {
                assert_eq!(error.reason(), *reason, "{name}: {error}");
            }
            (_, outcome) => panic!("{name}: expected {expect:?}, got {outcome:?}"),
        }
    }
}

#[test]
fn tracestate_error_names_member() {
    let error = TraceState::parse("a=1, ,b=2,C=3").unwrap_err();
    assert_eq!(error, TraceStateError::InvalidKey { member: 4 });
    assert_eq!(
        TraceState::parse("a=1,a=2").unwrap_err(),
        TraceStateError::DuplicateKey { member: 2 }
    );
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn extract_valid_context() {
    let extracted = extract(&headers(&[
        ("traceparent", VALID),
        ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    ]));
    assert_eq!(extracted.rejected, None);
    let parent = extracted.parent.unwrap();
    assert_eq!(parent.trace_id_hex(), TRACE_ID);
    assert_eq!(extracted.state.get("rojo"), Some("00f067aa0ba902b7"));
}

#[test]
fn duplicated_traceparent_header_invalid() {
    let extracted = extract(&headers(&[
        ("traceparent", VALID),
        ("traceparent", VALID),
        ("tracestate", "congo=1"),
    ]));
    assert_eq!(extracted.parent, None);
    assert!(extracted.state.is_empty());
    let rejection = extracted.rejected.unwrap();
    assert_eq!(
        rejection.traceparent,
        Some(TraceParentError::DuplicateHeader { count: 2 })
    );
    assert_eq!(
        rejection.tracestate,
        Some(TraceStateError::TraceParentInvalid)
    );
}

#[test]
fn invalid_traceparent_drops_tracestate() {
    let invalid = VALID.to_uppercase();
    let extracted = extract(&headers(&[
        ("traceparent", &invalid),
        ("tracestate", "congo=1"),
    ]));
    assert_eq!(extracted.parent, None);
    assert!(extracted.state.is_empty());
    let rejection = extracted.rejected.clone().unwrap();
    assert_eq!(
        rejection.tracestate,
        Some(TraceStateError::TraceParentInvalid)
    );

    let outgoing = extracted.outgoing_traceparent(true);
    assert_ne!(outgoing.trace_id_hex(), TRACE_ID);
    assert!(outgoing.is_sampled());
    let mut sent = HeaderMap::new();
    inject(&outgoing, &extracted.state, &extracted.baggage, &mut sent);
    let sent_parent = sent["traceparent"].to_str().unwrap();
    assert!(!sent_parent.to_lowercase().contains(TRACE_ID));
    assert!(sent.get("tracestate").is_none());
}

#[test]
fn invalid_tracestate_keeps_traceparent() {
    let extracted = extract(&headers(&[
        ("traceparent", VALID),
        ("tracestate", "a=1,a=2"),
    ]));
    assert!(extracted.parent.is_some());
    assert!(extracted.state.is_empty());
    let rejection = extracted.rejected.unwrap();
    assert_eq!(rejection.traceparent, None);
    assert_eq!(
        rejection.tracestate,
        Some(TraceStateError::DuplicateKey { member: 2 })
    );
}

#[test]
fn tracestate_headers_combined_in_order() {
    let extracted = extract(&headers(&[
        ("traceparent", VALID),
        ("tracestate", "b=2, a=1"),
        ("tracestate", ""),
        ("tracestate", "c=3"),
    ]));
    assert_eq!(extracted.rejected, None);
    assert_eq!(extracted.state.to_string(), "b=2,a=1,c=3");
}

#[test]
fn tracestate_limit_spans_header_lines() {
    let first: Vec<String> = (0..20).map(|index| format!("a{index}=1")).collect();
    let second: Vec<String> = (0..13).map(|index| format!("b{index}=1")).collect();
    let extracted = extract(&headers(&[
        ("traceparent", VALID),
        ("tracestate", &first.join(",")),
        ("tracestate", &second.join(",")),
    ]));
    assert!(extracted.state.is_empty());
    assert_eq!(
        extracted.rejected.unwrap().tracestate,
        Some(TraceStateError::TooManyMembers { count: 33 })
    );
}

#[test]
fn duplicate_key_across_header_lines() {
    let extracted = extract(&headers(&[
        ("traceparent", VALID),
        ("tracestate", "a=1"),
        ("tracestate", "a=2"),
    ]));
    assert!(extracted.state.is_empty());
    assert_eq!(
        extracted.rejected.unwrap().tracestate,
        Some(TraceStateError::DuplicateKey { member: 2 })
    );
}

#[test]
fn baggage_percent_decoding() {
    let (baggage, drops) = Baggage::parse("city=S%C3%A3o%20Paulo,pct=100%25,bad=%FF%FE,raw=50%");
    assert!(drops.is_empty());
    assert_eq!(baggage.get("city"), Some("S\u{e3}o Paulo"));
    assert_eq!(baggage.get("pct"), Some("100%"));
    assert_eq!(baggage.get("bad"), Some("\u{fffd}\u{fffd}"));
    assert_eq!(baggage.get("raw"), Some("50%"));
}

#[test]
fn baggage_properties_kept() {
    let (baggage, drops) = Baggage::parse("key1 = value1 ; propKey = prop%20Val ; flag, key2=v2");
    assert!(drops.is_empty());
    let member = baggage.get_member("key1").unwrap();
    assert_eq!(member.value(), "value1");
    let properties = member.properties();
    assert_eq!(properties.len(), 2);
    assert_eq!(properties[0].key, "propKey");
    assert_eq!(properties[0].value.as_deref(), Some("prop%20Val"));
    assert_eq!(properties[1].key, "flag");
    assert_eq!(properties[1].value, None);
    assert_eq!(
        baggage.to_string(),
        "key1=value1;propKey=prop%20Val;flag,key2=v2"
    );
}

#[test]
fn baggage_invalid_member_dropped_alone() {
    let (baggage, drops) = Baggage::parse("a=1,bad key=2,c=x y,d,e=5;p q,f=6");
    assert_eq!(baggage.len(), 2);
    assert_eq!(baggage.get("a"), Some("1"));
    assert_eq!(baggage.get("f"), Some("6"));
    assert_eq!(drops.invalid, 4);
    assert_eq!(drops.over_limit, 0);
    assert_eq!(
        drops.first_error.map(|error| error.reason()),
        Some("invalid_key")
    );
}

#[test]
fn baggage_member_limit() {
    let list: Vec<String> = (0..MAX_BAGGAGE_MEMBERS + 5)
        .map(|index| format!("k{index}=v"))
        .collect();
    let (baggage, drops) = Baggage::parse(&list.join(","));
    assert_eq!(baggage.len(), MAX_BAGGAGE_MEMBERS);
    assert_eq!(drops.over_limit, 5);
    assert_eq!(baggage.iter().last().unwrap().key(), "k179");
}

#[test]
fn baggage_byte_limit() {
    // Each member is 1000 bytes, so 8 fit with 7 commas (8007 bytes) and the 9th does not.
    let value = "v".repeat(997);
    let list: Vec<String> = (0..10).map(|index| format!("k{index}={value}")).collect();
    let (baggage, drops) = Baggage::parse(&list.join(","));
    assert_eq!(baggage.len(), 8);
    assert_eq!(drops.over_limit, 2);
    let (encoded, dropped) = baggage.encode_limited();
    assert_eq!(dropped, 0);
    assert!(encoded.len() <= MAX_BAGGAGE_BYTES);
    assert_eq!(encoded.len(), 8007);
}

#[test]
fn baggage_headers_combined() {
    let extracted = extract(&headers(&[("baggage", "a=1, b=2"), ("baggage", "c=3,a=4")]));
    let keys: Vec<&str> = extracted
        .baggage
        .iter()
        .map(|member| member.key())
        .collect();
    assert_eq!(keys, ["a", "b", "c", "a"]);
    assert_eq!(extracted.baggage.get("a"), Some("1"));
    assert_eq!(extracted.rejected, None);
}

#[test]
fn baggage_rejection_counted() {
    let extracted = extract(&headers(&[("baggage", "ok=1,not ok=2")]));
    let rejection = extracted.rejected.unwrap();
    let counts: Vec<_> = rejection.counts().collect();
    assert_eq!(counts, [("baggage", "invalid_member", 1)]);
}

#[test]
fn baggage_inject_limits_encoded_size() {
    let mut baggage = Baggage::default();
    for index in 0..3 {
        // 3000 spaces encode to 9000 bytes, so no two such members fit together.
        baggage
            .insert(&format!("k{index}"), &" ".repeat(3000))
            .unwrap();
    }
    baggage.insert("small", "1").unwrap();
    let mut sent = HeaderMap::new();
    let parent = TraceParent::parse(VALID).unwrap();
    let injected = inject(&parent, &TraceState::default(), &baggage, &mut sent);
    assert_eq!(injected.baggage_dropped, 4);
    assert!(sent.get("baggage").is_none());
}

#[test]
fn round_trip_through_headers() {
    let incoming = headers(&[
        (
            "traceparent",
            &format!("{}-extra", traceparent("cc", TRACE_ID, PARENT_ID, "03")),
        ),
        ("tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"),
        ("baggage", "user=al%C3%AFce;ttl=60,region=eu"),
    ]);
    let extracted = extract(&incoming);
    assert_eq!(extracted.rejected, None);

    let mut state = extracted.state.clone();
    state.insert("rojo", "b7ad6b7169203331").unwrap();
    let span_id = [1, 2, 3, 4, 5, 6, 7, 8];
    let outgoing = extracted.parent.unwrap().with_parent_id(span_id).unwrap();
    let mut sent = HeaderMap::new();
    let injected = inject(&outgoing, &state, &extracted.baggage, &mut sent);
    assert_eq!(injected.tracestate_dropped, 0);
    assert_eq!(injected.baggage_dropped, 0);
    assert_eq!(
        sent["traceparent"],
        traceparent("00", TRACE_ID, "0102030405060708", "03")
    );
    assert_eq!(
        sent["tracestate"],
        "rojo=b7ad6b7169203331,congo=t61rcWkgMzE"
    );
    assert_eq!(sent["baggage"], "user=al%C3%AFce;ttl=60,region=eu");

    let again = extract(&sent);
    assert_eq!(again.rejected, None);
    assert_eq!(again.parent, Some(outgoing));
    assert_eq!(again.state, state);
    assert_eq!(again.baggage, extracted.baggage);
    assert_eq!(again.baggage.get("user"), Some("al\u{ef}ce"));
}

#[test]
fn child_gets_new_parent_id_per_call() {
    let extracted = extract(&headers(&[("traceparent", VALID)]));
    let first = extracted.outgoing_traceparent(false);
    let second = extracted.outgoing_traceparent(false);
    assert_eq!(first.trace_id_hex(), TRACE_ID);
    assert_eq!(second.trace_id_hex(), TRACE_ID);
    assert_ne!(first.parent_id(), second.parent_id());
    assert_ne!(first.to_string(), VALID);
    assert!(first.is_sampled());
}

#[test]
fn tracestate_truncated_to_512_on_inject() {
    let long = "x".repeat(200);
    let short = "y".repeat(60);
    let mut members = vec![format!("big={long}")];
    members.extend((0..8).map(|index| format!("k{index}={short}")));
    let state = TraceState::parse(&members.join(",")).unwrap();
    let parent = TraceParent::parse(VALID).unwrap();
    let mut sent = HeaderMap::new();
    let injected = inject(&parent, &state, &Baggage::default(), &mut sent);
    let text = sent["tracestate"].to_str().unwrap();
    assert!(text.len() <= TRACESTATE_PROPAGATION_LEN);
    assert!(!text.contains("big="));
    assert!(text.starts_with("k0="));
    assert!(text.ends_with(&format!("k7={short}")));
    assert_eq!(injected.tracestate_dropped, 1);
}

/// A handler that returns what `extract` found in the real request headers.
async fn echo_context(headers: HeaderMap) -> String {
    let extracted = extract(&headers);
    let parent = extracted
        .parent
        .map(|parent| parent.to_string())
        .unwrap_or_default();
    let rejection = extracted
        .rejected
        .map(|rejection| {
            rejection
                .counts()
                .map(|(header, reason, count)| format!("{header}:{reason}:{count}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!(
        "{parent}|{}|{}|{rejection}",
        extracted.state,
        extracted.baggage.get("user").unwrap_or("")
    )
}

#[tokio::test]
async fn extract_over_loopback_http() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/", get(echo_context));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let url = format!("http://{address}/");

    let body = client
        .get(&url)
        .header("traceparent", VALID)
        .header("tracestate", "b=2")
        .header("tracestate", "a=1")
        .header("baggage", "user=b%C3%B8b")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, format!("{VALID}|b=2,a=1|b\u{f8}b|"));

    let mut duplicated = reqwest::header::HeaderMap::new();
    duplicated.append("traceparent", VALID.parse().unwrap());
    duplicated.append("traceparent", VALID.parse().unwrap());
    duplicated.append("tracestate", "a=1".parse().unwrap());
    let body = client
        .get(&url)
        .headers(duplicated)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        body,
        "|||traceparent:duplicate_header:1 tracestate:traceparent_invalid:1"
    );

    server.abort();
}

/// Returns a random byte string that is mostly valid `traceparent` characters, so the parser
/// reaches every check.
fn random_traceparent_bytes() -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789abcdefABCDEF-0f0f0000 x\t\xc3";
    let mut bytes: Vec<u8> = VALID.bytes().collect();
    bytes.resize(fastrand::usize(40..70), b'0');
    for _ in 0..fastrand::usize(0..4) {
        let index = fastrand::usize(..bytes.len());
        bytes[index] = ALPHABET[fastrand::usize(..ALPHABET.len())];
    }
    bytes
}

#[test]
fn random_traceparents_parse_consistently() {
    fastrand::seed(7);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let bytes = random_traceparent_bytes();
        let Ok(parent) = TraceParent::parse_bytes(&bytes) else {
            continue;
        };
        accepted += 1;
        let emitted = parent.to_string();
        let reparsed = TraceParent::parse(&emitted).unwrap();
        assert_eq!(reparsed.trace_id(), parent.trace_id(), "{emitted}");
        assert_eq!(reparsed.parent_id(), parent.parent_id(), "{emitted}");
        assert_eq!(&bytes[3..52], &emitted.as_bytes()[3..52]);
        assert_ne!(parent.version(), 0xff);
    }
    assert!(accepted > 100, "only {accepted} random values were valid");
}

#[test]
fn random_lists_never_panic() {
    fastrand::seed(11);
    const ALPHABET: &[u8] = b"ab1@=,; %2Z\t\"~";
    for _ in 0..20_000 {
        let text: Vec<u8> = (0..fastrand::usize(0..40))
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())])
            .collect();
        if let Ok(state) = TraceState::parse_lines([text.as_slice()]) {
            let reparsed = TraceState::parse(&state.to_string()).unwrap();
            assert_eq!(reparsed, state);
        }
        let (baggage, _) = Baggage::parse_lines([text.as_slice()]);
        let (reparsed, drops) = Baggage::parse(&baggage.to_string());
        assert!(drops.is_empty(), "{baggage}");
        assert_eq!(reparsed, baggage);
    }
}
