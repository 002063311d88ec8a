//! Corpus of log lines that the default redactor must change, and lines it must leave alone.
//!
//! Each positive case names the exact substring that must be replaced and the kind written in
//! its `[REDACTED:kind]` placeholder. The rest of the line must come out unchanged. Each
//! negative case must come out byte for byte unchanged, as a borrowed `Cow`.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::borrow::Cow;

use obskit::config::{MetricsConfig, RedactConfig, RuleMode, Secret};
use obskit::metrics::{Format, Registry};
use obskit::redact::{FieldAction, Kind, Redactor};

/// A line with one sensitive value.
struct Positive {
    label: &'static str,
    input: &'static str,
    /// The exact text that the placeholder replaces.
    secret: &'static str,
    kind: Kind,
}

const fn positive(
    label: &'static str,
    input: &'static str,
    secret: &'static str,
    kind: Kind,
) -> Positive {
    Positive {
        label,
        input,
        secret,
        kind,
    }
}

const POSITIVES: &[Positive] = &[
    // Email addresses.
    positive(
        "email in prose",
        "user jane.doe@example.com logged in",
        "jane.doe@example.com",
        Kind::Email,
    ),
    positive(
        "email with plus tag and subdomains",
        "notify ops+alerts@mail.example.co.uk failed: 550 mailbox full",
        "ops+alerts@mail.example.co.uk",
        Kind::Email,
    ),
    positive(
        "email in a JSON string",
        r#"{"to":"bob_smith@example.org","status":"sent"}"#,
        "bob_smith@example.org",
        Kind::Email,
    ),
    positive(
        "email in angle brackets",
        "From: Jane Doe <jane@example.io>",
        "jane@example.io",
        Kind::Email,
    ),
    // Payment cards: network prefix, length and Luhn.
    positive(
        "visa with spaces",
        "charge card 4111 1111 1111 1111 declined",
        "4111 1111 1111 1111",
        Kind::Card,
    ),
    positive(
        "mastercard with dashes",
        "pan=5555-5555-5555-4444 approved",
        "5555-5555-5555-4444",
        Kind::Card,
    ),
    positive(
        "amex in 4-6-5 groups",
        "amex 3782 822463 10005 captured",
        "3782 822463 10005",
        Kind::Card,
    ),
    positive(
        "discover compact",
        "card 6011111111111117 charged 12.50 USD",
        "6011111111111117",
        Kind::Card,
    ),
    positive(
        "visa of 13 digits",
        "legacy visa 4222222222222 on file",
        "4222222222222",
        Kind::Card,
    ),
    positive(
        "mastercard 2-series",
        "card 2223003122003222 authorised",
        "2223003122003222",
        Kind::Card,
    ),
    positive(
        "jcb compact",
        "wallet jcb 3530111333300000 added",
        "3530111333300000",
        Kind::Card,
    ),
    positive(
        "diners of 14 digits",
        "diners 30569309025904 refunded",
        "30569309025904",
        Kind::Card,
    ),
    positive(
        "card followed by expiry year",
        "card 4012 8888 8888 1881 2027 stored",
        "4012 8888 8888 1881",
        Kind::Card,
    ),
    positive(
        "card in a JSON value",
        r#"{"card":"5105105105105100","amount":1250}"#,
        "5105105105105100",
        Kind::Card,
    ),
    // US social security numbers.
    positive(
        "ssn with dashes",
        "applicant 123-45-6789 verified",
        "123-45-6789",
        Kind::Ssn,
    ),
    positive(
        "ssn with spaces",
        "tax form lists 234 56 7890 as the number",
        "234 56 7890",
        Kind::Ssn,
    ),
    positive(
        "ssn followed by a number",
        "row applicant 123-45-6789 42 rejected",
        "123-45-6789",
        Kind::Ssn,
    ),
    // Phone numbers.
    positive(
        "e164 united states compact",
        "sms to +14155552671 queued",
        "+14155552671",
        Kind::Phone,
    ),
    positive(
        "e164 united kingdom grouped",
        "caller +44 20 7946 0958 on hold",
        "+44 20 7946 0958",
        Kind::Phone,
    ),
    positive(
        "e164 germany",
        "callback +49 30 901820 requested",
        "+49 30 901820",
        Kind::Phone,
    ),
    positive(
        "e164 france in pairs",
        "contact +33 6 12 34 56 78 added",
        "+33 6 12 34 56 78",
        Kind::Phone,
    ),
    positive(
        "e164 japan with dashes",
        "office +81-3-1234-5678 closed",
        "+81-3-1234-5678",
        Kind::Phone,
    ),
    positive(
        "e164 india",
        "otp sent to +91 98765 43210",
        "+91 98765 43210",
        Kind::Phone,
    ),
    positive(
        "e164 brazil mixed separators",
        "whatsapp +55 11 98765-4321 linked",
        "+55 11 98765-4321",
        Kind::Phone,
    ),
    positive(
        "e164 with parenthesized area code",
        "dial +1 (415) 555-2671 now",
        "+1 (415) 555-2671",
        Kind::Phone,
    ),
    positive(
        "us national parenthesized",
        "home phone (415) 555-2671 updated",
        "(415) 555-2671",
        Kind::Phone,
    ),
    positive(
        "us national with dashes",
        "fax 415-555-2671 busy",
        "415-555-2671",
        Kind::Phone,
    ),
    positive(
        "us national followed by extension digits",
        "call 415.555.2671 1234 unanswered",
        "415.555.2671",
        Kind::Phone,
    ),
    positive(
        "uk national with trunk zero",
        "london office 020 7946 0958 moved",
        "020 7946 0958",
        Kind::Phone,
    ),
    // IBANs of several countries, mod-97 valid.
    positive(
        "iban germany compact",
        "payout to DE89370400440532013000 scheduled",
        "DE89370400440532013000",
        Kind::Iban,
    ),
    positive(
        "iban united kingdom grouped",
        "IBAN: GB82 WEST 1234 5698 7654 32, BIC WESTGB22",
        "GB82 WEST 1234 5698 7654 32",
        Kind::Iban,
    ),
    positive(
        "iban france with a letter",
        "sepa debtor FR1420041010050500013M02606 ok",
        "FR1420041010050500013M02606",
        Kind::Iban,
    ),
    positive(
        "iban netherlands",
        "refund NL91ABNA0417164300 sent",
        "NL91ABNA0417164300",
        Kind::Iban,
    ),
    positive(
        "iban norway shortest",
        "account NO9386011117947 closed",
        "NO9386011117947",
        Kind::Iban,
    ),
    positive(
        "iban belgium",
        "creditor BE68539007547034 added",
        "BE68539007547034",
        Kind::Iban,
    ),
    positive(
        "iban switzerland grouped",
        "account CH93 0076 2011 6238 5295 7 verified",
        "CH93 0076 2011 6238 5295 7",
        Kind::Iban,
    ),
    positive(
        "iban spain",
        "mandate ES9121000418450200051332 signed",
        "ES9121000418450200051332",
        Kind::Iban,
    ),
    positive(
        "iban italy",
        "bonifico IT60X0542811101000000123456 eseguito",
        "IT60X0542811101000000123456",
        Kind::Iban,
    ),
    positive(
        "iban poland",
        "przelew PL61109010140000071219812874 ok",
        "PL61109010140000071219812874",
        Kind::Iban,
    ),
    positive(
        "iban brazil ends with letters",
        "conta BR1800360305000010009795493C1 ativa",
        "BR1800360305000010009795493C1",
        Kind::Iban,
    ),
    // Tokens and credentials with a known shape.
    positive(
        "jwt in prose",
        "verifying eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUiLCJpYXQiOjE1MTYyMzkwMjJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c failed",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUiLCJpYXQiOjE1MTYyMzkwMjJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        Kind::Jwt,
    ),
    positive(
        "unsigned jwt",
        "accepted eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ. from client",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.",
        Kind::Jwt,
    ),
    positive(
        "jwt ending a sentence",
        "login failed for eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U. Retrying",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        Kind::Jwt,
    ),
    positive(
        "encrypted jwt",
        "token eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ expired",
        "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ",
        Kind::Jwt,
    ),
    positive(
        "encrypted jwt with a direct key",
        "cookie value eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9o.XFBoMYUZodetZdvTiFvSkQ rejected",
        "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9o.XFBoMYUZodetZdvTiFvSkQ",
        Kind::Jwt,
    ),
    positive(
        "bearer credential in prose",
        "upstream rejected Bearer mF_9.B5f-4.1JqM with 401",
        "mF_9.B5f-4.1JqM",
        Kind::Bearer,
    ),
    positive(
        "lowercase bearer scheme",
        "retry with bearer 2YotnFZFEjr1zCsicMWpAA",
        "2YotnFZFEjr1zCsicMWpAA",
        Kind::Bearer,
    ),
    positive(
        "basic credential user and password",
        "proxy sent Basic dXNlcjpwYXNz to origin",
        "dXNlcjpwYXNz",
        Kind::BasicAuth,
    ),
    positive(
        "basic credential with padding",
        "deploy hook used Basic c3ZjLWRlcGxveTpUcjB1YjRkb3ImMw== again",
        "c3ZjLWRlcGxveTpUcjB1YjRkb3ImMw==",
        Kind::BasicAuth,
    ),
    positive(
        "aws long-term access key id",
        "assuming role with AKIAIOSFODNN7EXAMPLE",
        "AKIAIOSFODNN7EXAMPLE",
        Kind::AwsKey,
    ),
    positive(
        "aws temporary access key id",
        "sts issued ASIAY34FZKBOKMUTVV7A for session",
        "ASIAY34FZKBOKMUTVV7A",
        Kind::AwsKey,
    ),
    positive(
        "github classic token",
        "clone failed for ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        Kind::GithubToken,
    ),
    positive(
        "github fine-grained token",
        "using github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV",
        "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV",
        Kind::GithubToken,
    ),
    positive(
        "gitlab personal access token",
        "ci token glpat-xxxxXXXX1234yyyyZZZZ rejected",
        "glpat-xxxxXXXX1234yyyyZZZZ",
        Kind::GitlabToken,
    ),
    positive(
        "slack bot token",
        "posting with xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        Kind::SlackToken,
    ),
    positive(
        "slack webhook path",
        "POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX 200",
        "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        Kind::SlackToken,
    ),
    positive(
        "rsa private key block",
        "loaded -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n-----END RSA PRIVATE KEY----- from disk",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n-----END RSA PRIVATE KEY-----",
        Kind::PrivateKey,
    ),
    positive(
        "openssh private key block",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----",
        Kind::PrivateKey,
    ),
    positive(
        "pkcs8 key with escaped newlines in json",
        r#"{"key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"}"#,
        r"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
        Kind::PrivateKey,
    ),
    // Credentials in URLs and sensitive query parameters.
    positive(
        "postgres url credentials",
        "connecting to postgres://app:s3cret@db.internal:5432/orders",
        "app:s3cret",
        Kind::UrlCredentials,
    ),
    positive(
        "mongodb srv url credentials",
        "uri mongodb+srv://admin:pa55w0rd@cluster0.example.net/db?retryWrites=true",
        "admin:pa55w0rd",
        Kind::UrlCredentials,
    ),
    positive(
        "redis url with password only",
        "cache redis://:hunter2@cache:6379/0 unreachable",
        ":hunter2",
        Kind::UrlCredentials,
    ),
    positive(
        "token query parameter",
        "GET /download?file=report.pdf&token=9f8e7d6c5b4a HTTP/1.1",
        "9f8e7d6c5b4a",
        Kind::Field,
    ),
    positive(
        "password query parameter",
        "POST /login?user=bob&password=hunter2 302",
        "hunter2",
        Kind::Field,
    ),
    positive(
        "api_key query parameter",
        "GET /v1/forecast?api_key=abcd1234efgh&city=paris 200",
        "abcd1234efgh",
        Kind::Field,
    ),
    positive(
        "access_token in an oauth redirect fragment",
        "redirect https://app.example.com/cb#access_token=ya29.a0AfH6SMB&expires_in=3599",
        "ya29.a0AfH6SMB",
        Kind::Field,
    ),
    positive(
        "aws presigned url security token",
        "GET /obj?X-Amz-Security-Token=FwoGZXIvYXdzEJr%2F&X-Amz-Expires=300",
        "FwoGZXIvYXdzEJr%2F",
        Kind::Field,
    ),
    // Sensitive names in text: headers, JSON and key=value logs.
    positive(
        "api key header written into a message",
        "request headers X-Api-Key: 7c4a8d09ca3762af61e5 accepted",
        "7c4a8d09ca3762af61e5",
        Kind::Field,
    ),
    positive(
        "authorization header keeps scheme with the value",
        "Authorization: Bearer abc.def.ghi",
        "Bearer abc.def.ghi",
        Kind::Field,
    ),
    positive(
        "session cookie in prose",
        "cookies sent: theme=dark; session=38afes7a8",
        "38afes7a8",
        Kind::Field,
    ),
    positive(
        "json password with spaces",
        r#"login body {"user": "bob", "password": "correct horse battery staple"}"#,
        "correct horse battery staple",
        Kind::Field,
    ),
    positive(
        "url-encoded email in a query string",
        "GET /unsubscribe?email=jane.doe%40example.com&list=news 200",
        "jane.doe%40example.com",
        Kind::Email,
    ),
    positive(
        "every cookie of a Cookie header dump",
        "upstream headers: Cookie: sid=9f8e7d; csrftoken=a1b2c3\nAccept: */*",
        "sid=9f8e7d; csrftoken=a1b2c3",
        Kind::Field,
    ),
    positive(
        "logfmt client_secret",
        "level=info client_id=web client_secret=Zm9vYmFyYmF6 msg=exchange",
        "Zm9vYmFyYmF6",
        Kind::Field,
    ),
];

const NEGATIVES: &[(&str, &str)] = &[
    // Identifiers.
    (
        "uuid v4",
        "request 550e8400-e29b-41d4-a716-446655440000 done",
    ),
    (
        "uuid v7",
        "event 01890a5d-ac96-774b-bcce-b302099a8057 stored",
    ),
    (
        "uuid of decimal digits only",
        "id 12345678-1234-1234-1234-123456789012 ok",
    ),
    (
        "trace and span ids",
        "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    ),
    (
        "w3c traceparent header",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    (
        "w3c tracestate header",
        "tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    ),
    (
        "git sha",
        "deployed commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    ),
    (
        "container image digest",
        "pulled sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
    (
        "kubernetes pod name",
        "pod checkout-7d9f8b6c5d-x2x7q restarted 3 times",
    ),
    (
        "kubernetes node name",
        "scheduled on ip-10-0-12-34.eu-west-1.compute.internal",
    ),
    (
        "aws arn with account id",
        "assumed arn:aws:iam::123456789012:role/deploy",
    ),
    ("isbn", "book 978-3-16-148410-0 in stock"),
    ("zip plus four", "ship to 94105-1234"),
    // Times and durations.
    ("rfc 3339 utc", "at 2024-06-01T12:34:56Z started"),
    (
        "rfc 3339 with fraction and offset",
        "ts=2024-06-01T12:34:56.789+02:00 level=info",
    ),
    (
        "rfc 3339 with space and micros",
        "2024-06-01 12:34:56.123456+00:00 worker ready",
    ),
    ("epoch seconds", "ts=1717243200 job=nightly"),
    ("epoch milliseconds", "timestamp 1717243200123 received"),
    ("epoch microseconds", "time_us=1717243200123456"),
    ("epoch nanoseconds", "time_unix_nano=1717243200123456789"),
    ("http date", "Date: Mon, 02 Jan 2006 15:04:05 GMT"),
    (
        "durations",
        "took 1.5s, db 250ms, queue 12.345µs, timeout=30s",
    ),
    ("go duration", "elapsed 1h2m3.5s"),
    // Versions.
    ("semver with build metadata", "version 1.0.0+20130313144700"),
    (
        "semver prerelease and build",
        "upgraded to v2.0.0-rc.1+build.5114f85",
    ),
    ("windows build number", "os 10.0.19045.2965 detected"),
    ("go runtime", "go1.22.4 linux/amd64"),
    ("npm package at version", "installed lodash@4.17.21"),
    // Numbers that fail a checksum or a shape rule.
    ("order number", "order 1234567890 shipped"),
    (
        "card failing luhn spaced",
        "card 4111 1111 1111 1112 rejected",
    ),
    (
        "card failing luhn compact",
        "card 4111111111111112 rejected",
    ),
    ("luhn valid zeros", "placeholder 0000 0000 0000 0000"),
    (
        "luhn valid without a card network prefix",
        "ref 1234567812345670",
    ),
    ("luhn valid eleven digits", "account 79927398713"),
    ("card with mixed separators", "pan 4111-1111 1111-1111"),
    ("ssn area 000", "id 000-12-3456"),
    ("ssn area 666", "id 666-12-3456"),
    ("ssn area 9xx", "id 912-34-5678"),
    ("ssn group 00", "id 123-00-4567"),
    ("ssn serial 0000", "id 123-45-0000"),
    (
        "iban with a wrong check digit",
        "iban DE89370400440532013001",
    ),
    ("short plus number", "score +1234 after retry"),
    ("date with dashes", "report for 2024-01-15"),
    ("date with dots", "gültig bis 15.01.2024"),
    ("ipv4 when ip rule is off", "client 10.0.0.1 port 443"),
    ("ipv6 when ip rule is off", "peer [2001:db8::1]:443"),
    (
        "resource figures",
        "cpu=0.25 mem=512Mi replicas=3 Content-Length: 1048576",
    ),
    ("http access line", "GET /api/v1/users/42 HTTP/1.1 200 12ms"),
    // Words, names and blobs that look like credentials but are not.
    ("bearer prose", "bearer token expired"),
    ("basic prose", "basic auth failed"),
    (
        "bearer scheme without a credential",
        "Bearer authentication required",
    ),
    (
        "basic realm challenge",
        r#"WWW-Authenticate: Basic realm="api", charset="UTF-8""#,
    ),
    (
        "basic with base64 lacking a colon",
        "Basic SGVsbG8sIHdvcmxkIQ==",
    ),
    (
        "base64 payload",
        "payload SGVsbG8sIHdvcmxkIQ== cmVsZWFzZS0yMDI0LjA2",
    ),
    (
        "field names that contain a sensitive word",
        "tokens_used=1532 author=ann secretary=bob",
    ),
    ("colon after a harmless name", "secretary: Ann, author: Bob"),
    (
        "prose about passwords",
        "password reset email sent to user 42",
    ),
    ("rust path", "std::password::check failed"),
    ("short github prefix", "branch ghp_short merged"),
    ("aws key id too short", "key AKIA1234 rotated"),
    ("email without a domain dot", "root@localhost rejected"),
    ("at sign in a mention", "ping @oncall about it"),
    (
        "jdbc url without credentials",
        "jdbc:postgresql://db.internal:5432/orders?sslmode=require",
    ),
    ("at sign in a url path", "GET https://example.com/users/a@b"),
    (
        "certificate block",
        "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG\n-----END CERTIFICATE-----",
    ),
    (
        "public key block",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQ\n-----END PUBLIC KEY-----",
    ),
    (
        "java stack frame",
        "at com.example.Foo.bar(Foo.java:42) in thread main",
    ),
    ("pointer", "segfault at 0x7ffd5fbff8a0"),
    (
        "percent-encoded at sign without a domain",
        "GET /search?q=%40home&page=2",
    ),
    ("percentage figures", "cache hit ratio 100%40 of 40 shards"),
];

#[test]
fn corpus_positives_are_replaced() {
    let redactor = Redactor::default();
    let mut failures = Vec::new();
    for case in POSITIVES {
        assert!(
            case.input.contains(case.secret),
            "{}: the secret is not in the input",
            case.label
        );
        let expected = case
            .input
            .replacen(case.secret, &format!("[REDACTED:{}]", case.kind), 1);
        let output = redactor.redact(case.input);
        if output != expected {
            failures.push(format!(
                "{}:\n  input:    {:?}\n  expected: {expected:?}\n  output:   {output:?}",
                case.label, case.input
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} positive cases failed:\n{}",
        failures.len(),
        POSITIVES.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_negatives_are_unchanged() {
    let redactor = Redactor::default();
    let mut failures = Vec::new();
    for (label, input) in NEGATIVES {
        match redactor.redact(input) {
            Cow::Borrowed(output) if output == *input => {}
            output => failures.push(format!(
                "{label}:\n  input:  {input:?}\n  output: {output:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} negative cases changed:\n{}",
        failures.len(),
        NEGATIVES.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_has_forty_cases_each() {
    assert!(POSITIVES.len() >= 40, "{} positives", POSITIVES.len());
    assert!(NEGATIVES.len() >= 40, "{} negatives", NEGATIVES.len());
}

const SENSITIVE_FIELDS: &[&str] = &[
    "password",
    "PASSWORD",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "apiKey",
    "X-Api-Key",
    "access_token",
    "refresh_token",
    "client_secret",
    "authorization",
    "Authorization",
    "cookie",
    "set_cookie",
    "Set-Cookie",
    "session",
    "private_key",
    "credit_card",
    "creditCardNumber",
    "card_number",
    "cvv",
    "ssn",
    "userPassword",
    "db.password",
    "AWS_SECRET_ACCESS_KEY",
    "http.request.header.authorization",
    "password2",
    "cvv2",
    "CVV2",
    "newPassword2",
];

const PLAIN_FIELDS: &[&str] = &[
    "author",
    "tokens_used",
    "secretary",
    "apikeys",
    "cookies_enabled",
    "user_id",
    "trace_id",
    "http.request.method",
    "passwordless",
    "http2_enabled",
    "sha256",
    "ipv4_address",
];

#[test]
fn field_sensitive_names_replace_value() {
    let redactor = Redactor::default();
    for name in SENSITIVE_FIELDS {
        assert_eq!(
            redactor.field_action(name),
            FieldAction::Replace,
            "field_action({name:?})"
        );
        assert_eq!(
            redactor.redact_field(name, "hunter2"),
            "[REDACTED:field]",
            "redact_field({name:?})"
        );
    }
}

#[test]
fn field_plain_names_keep_value() {
    let redactor = Redactor::default();
    for name in PLAIN_FIELDS {
        assert_eq!(
            redactor.field_action(name),
            FieldAction::Scan,
            "field_action({name:?})"
        );
        let output = redactor.redact_field(name, "ann 42");
        assert!(
            matches!(output, Cow::Borrowed("ann 42")),
            "redact_field({name:?}) returned {output:?}"
        );
    }
}

#[test]
fn field_plain_name_scans_value() {
    let redactor = Redactor::default();
    assert_eq!(
        redactor.redact_field("message", "mail bob@example.com now"),
        "mail [REDACTED:email] now"
    );
}

#[test]
fn field_allow_list_keeps_value() {
    let config = RedactConfig {
        allow_fields: vec!["support_email".to_owned()],
        ..RedactConfig::default()
    };
    let redactor = Redactor::new(&config).expect("valid config");
    assert_eq!(redactor.field_action("Support_Email"), FieldAction::Keep);
    assert_eq!(
        redactor.redact_field("support_email", "help@example.com"),
        "help@example.com"
    );
}

#[test]
fn nested_json_in_field_value() {
    let redactor = Redactor::default();
    let body = r#"{"user":{"password":"x","email":"a@b.co"}}"#;
    assert_eq!(
        redactor.redact_field("http.request.body", body),
        r#"{"user":{"password":"[REDACTED:field]","email":"[REDACTED:email]"}}"#
    );
}

#[test]
fn json_object_under_sensitive_key() {
    let redactor = Redactor::default();
    let body = r#"{"user":"bob","credentials":{"user":"bob","pin":"1234"},"ok":true}"#;
    assert_eq!(
        redactor.redact(body),
        r#"{"user":"bob","credentials":[REDACTED:field],"ok":true}"#
    );
}

#[derive(Debug)]
#[allow(dead_code, reason = "the fields are read only through Debug")]
struct Login {
    user: String,
    password: String,
    remember: bool,
}

#[derive(Debug)]
#[allow(dead_code, reason = "the fields are read only through Debug")]
struct Connect {
    host: String,
    api_key: Option<String>,
}

#[test]
fn debug_output_of_struct() {
    let redactor = Redactor::default();
    let login = Login {
        user: "bob".to_owned(),
        password: "hunter2".to_owned(),
        remember: true,
    };
    assert_eq!(
        redactor.redact(&format!("{login:?}")),
        r#"Login { user: "bob", password: "[REDACTED:field]", remember: true }"#
    );

    let pretty = redactor.redact(&format!("{login:#?}")).into_owned();
    assert!(!pretty.contains("hunter2"), "{pretty}");
    assert!(pretty.contains(r#"user: "bob""#), "{pretty}");
}

#[test]
fn debug_output_with_option() {
    let redactor = Redactor::default();
    let connect = Connect {
        host: "db".to_owned(),
        api_key: Some("k-123".to_owned()),
    };
    assert_eq!(
        redactor.redact(&format!("{connect:?}")),
        r#"Connect { host: "db", api_key: [REDACTED:field] }"#
    );
}

#[test]
fn partial_mode_keeps_card_last_four() {
    let config = RedactConfig {
        rules: obskit::config::RuleModes {
            card: RuleMode::Partial,
            ..Default::default()
        },
        ..RedactConfig::default()
    };
    let redactor = Redactor::new(&config).expect("valid config");
    assert_eq!(
        redactor.redact("card 4111 1111 1111 1234 is not luhn, 4111 1111 1111 1111 is"),
        "card 4111 1111 1111 1234 is not luhn, **** **** **** 1111 is"
    );
    assert_eq!(
        redactor.redact("amex 378282246310005"),
        "amex ***********0005"
    );
}

#[test]
fn hash_mode_correlates_equal_values() {
    let config = RedactConfig {
        rules: obskit::config::RuleModes {
            email: RuleMode::Hash,
            ..Default::default()
        },
        hash_key: Some(Secret::new("0123456789abcdef0123456789abcdef")),
        ..RedactConfig::default()
    };
    let redactor = Redactor::new(&config).expect("valid config");
    let jane = redactor.redact("login jane@example.com").into_owned();
    let jane_again = redactor.redact("logout jane@example.com").into_owned();
    let john = redactor.redact("login john@example.com").into_owned();

    assert!(jane.starts_with("login [REDACTED:email:"), "{jane}");
    assert!(!jane.contains("jane"), "{jane}");
    let hash = |line: &str| line.rsplit(' ').next().unwrap_or_default().to_owned();
    assert_eq!(hash(&jane), hash(&jane_again));
    assert_ne!(hash(&jane), hash(&john));
}

#[test]
fn hash_mode_without_key_is_rejected() {
    let config = RedactConfig {
        rules: obskit::config::RuleModes {
            email: RuleMode::Hash,
            ..Default::default()
        },
        ..RedactConfig::default()
    };
    let error = Redactor::new(&config).expect_err("a hash rule needs a key");
    assert!(error.to_string().contains("redact.rules.email"), "{error}");
}

#[test]
fn oversize_value_replaced_whole() {
    let config = RedactConfig {
        max_value_bytes: 32,
        ..RedactConfig::default()
    };
    let redactor = Redactor::new(&config).expect("valid config");
    let short = "status ok";
    let long = "a".repeat(33);

    assert!(matches!(redactor.redact(short), Cow::Borrowed("status ok")));
    assert_eq!(redactor.redact(&long), "[REDACTED:oversize]");
    assert_eq!(
        redactor.redact_field("message", &long),
        "[REDACTED:oversize]"
    );
    assert_eq!(redactor.redactions(Kind::Oversize), 2);
}

#[test]
fn invalid_utf8_bytes_replaced_whole() {
    let redactor = Redactor::default();
    assert_eq!(
        redactor.redact_bytes(b"user \xff\xfe bob@example.com"),
        "[REDACTED:invalid_utf8]"
    );
    assert_eq!(
        redactor.redact_bytes(b"mail bob@example.com"),
        "mail [REDACTED:email]"
    );
    assert_eq!(redactor.redactions(Kind::InvalidUtf8), 1);
}

#[test]
fn disabled_redactor_keeps_everything() {
    let redactor = Redactor::disabled();
    let line = "password=hunter2 card 4111 1111 1111 1111 jane@example.com";
    assert!(matches!(redactor.redact(line), Cow::Borrowed(_)));
    assert_eq!(redactor.redact_field("password", "hunter2"), "hunter2");
    assert_eq!(redactor.redact_bytes(b"\xff"), "\u{fffd}");
}

#[test]
fn ip_rule_when_enabled() {
    let config = RedactConfig {
        rules: obskit::config::RuleModes {
            ip: RuleMode::Mask,
            ..Default::default()
        },
        ..RedactConfig::default()
    };
    let redactor = Redactor::new(&config).expect("valid config");
    assert_eq!(
        redactor.redact("client 10.0.0.1 port 443"),
        "client [REDACTED:ip] port 443"
    );
    assert_eq!(
        redactor.redact("peer 2001:db8::1 closed"),
        "peer [REDACTED:ip] closed"
    );
    assert_eq!(redactor.redact("version 1.2.3.4.5"), "version 1.2.3.4.5");
    assert_eq!(
        redactor.redact("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255."),
        "[REDACTED:ip].",
        "the longest address text, before a full stop"
    );
}

#[test]
fn long_percent_encoded_runs() {
    let config = RedactConfig {
        max_value_bytes: 1 << 20,
        ..RedactConfig::default()
    };
    let redactor = Redactor::new(&config).expect("valid config");
    // Each `%40` starts a scan back over the local part. The scan must stop at the previous
    // `%40`, or a long run costs time quadratic in its length.
    for unit in ["%40", "a%40", "%2540"] {
        let run = unit.repeat(300_000 / unit.len());
        let line = format!("{run} to jane%40example.com");
        assert_eq!(
            redactor.redact(&line),
            format!("{run} to [REDACTED:email]"),
            "run of {unit:?}"
        );
    }
}

#[test]
fn ip_rule_long_colon_runs() {
    let config = RedactConfig {
        rules: obskit::config::RuleModes {
            ip: RuleMode::Mask,
            ..Default::default()
        },
        max_value_bytes: 1 << 20,
        ..RedactConfig::default()
    };
    let redactor = Redactor::new(&config).expect("valid config");
    // Runs of colons and hex digits are no address. A scan from each start to the end of the
    // run would cost time quadratic in its length, seconds for one 64 KiB value.
    for unit in [":", "a:", "ab:", "1:2."] {
        let run = unit.repeat(200_000 / unit.len());
        let line = format!("{run}x peer 2001:db8::1");
        assert_eq!(
            redactor.redact(&line),
            format!("{run}x peer [REDACTED:ip]"),
            "run of {unit:?}"
        );
    }
}

#[test]
fn counters_move_per_kind() {
    let redactor = Redactor::default();
    assert_eq!(redactor.redactions(Kind::Email), 0);
    assert_eq!(redactor.redactions(Kind::Card), 0);

    let output = redactor.redact("a@example.com b@example.com card 4111111111111111");
    assert_eq!(
        output,
        "[REDACTED:email] [REDACTED:email] card [REDACTED:card]"
    );
    assert_eq!(redactor.redactions(Kind::Email), 2);
    assert_eq!(redactor.redactions(Kind::Card), 1);
    assert_eq!(redactor.redactions(Kind::Ssn), 0);

    let _ = redactor.redact_field("password", "x");
    assert_eq!(redactor.redactions(Kind::Field), 1);
}

#[test]
fn counters_exposed_in_registry() {
    let registry = Registry::new(&MetricsConfig::default());
    let redactor =
        Redactor::with_registry(&RedactConfig::default(), &registry).expect("registered");
    let _ = redactor.redact("mail a@example.com, call +14155552671");

    let text = registry.encode(Format::PrometheusText).expect("encodes");
    assert!(
        text.contains(r#"obskit_redactions_total{kind="email"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"obskit_redactions_total{kind="phone"} 1"#),
        "{text}"
    );
}
