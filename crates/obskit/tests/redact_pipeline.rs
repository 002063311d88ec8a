//! Redaction end to end through `obskit::init`: log lines, spans at a gRPC OTLP receiver, the
//! access log of requests carrying credentials in headers, and the redaction counters on
//! `/metrics`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod support;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use obskit::logging::LogOutput;
use obskit::redact::Redacted;
use obskit::{Config, Obskit};
use opentelemetry_proto::tonic::common::v1::any_value;
use support::capture::Capture;
use support::otlp::Collector;

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";
const PASSWORD: &str = "hunter2-correct-horse";
const BEARER: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const COOKIE: &str = "session=s3ss10n-c00kie-value";
const PROXY: &str = "Basic cHJveHk6cHJveHktc2VjcmV0";
const QUERY_TOKEN: &str = "q-t0ken-in-query";
const SET_COOKIE: &str = "sid=set-c00kie-secret; HttpOnly";

/// Every secret of the scenario; none may reach a log line or an exported span.
const SECRETS: [&str; 9] = [
    EMAIL,
    CARD,
    PASSWORD,
    BEARER,
    "s3ss10n-c00kie-value",
    "cHJveHk6cHJveHktc2VjcmV0",
    QUERY_TOKEN,
    "set-c00kie-secret",
    "4111111111111111",
];

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Login {
    user: &'static str,
    password: &'static str,
}

/// Logs and traces sensitive values the way application code does by accident.
async fn checkout(headers: HeaderMap) -> ([(&'static str, &'static str); 1], &'static str) {
    let span = tracing::info_span!(
        "charge card",
        customer.email = EMAIL,
        payment.card = CARD,
        db.password = PASSWORD,
        api_token = Redacted::new("never-printed").to_string(),
    );
    let _entered = span.enter();
    tracing::info!(
        user.email = EMAIL,
        card = CARD,
        login = ?Login { user: "jane", password: PASSWORD },
        body = r#"{"user":{"password":"hunter2-correct-horse","email":"jane.doe@example.com"}}"#,
        "charging {CARD} for {EMAIL}"
    );
    tracing::warn!(
        authorization = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default(),
        "payment provider slow"
    );
    ([("set-cookie", SET_COOKIE)], "charged")
}

fn string_values(value: &any_value::Value, out: &mut Vec<String>) {
    match value {
        any_value::Value::StringValue(text) => out.push(text.clone()),
        any_value::Value::ArrayValue(array) => {
            for item in array.values.iter().filter_map(|item| item.value.as_ref()) {
                string_values(item, out);
            }
        }
        other => out.push(format!("{other:?}")),
    }
}

#[test]
fn secrets_never_reach_logs_spans_or_access_log() {
    let collector = Collector::grpc();
    let capture = Capture::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let (obskit, addr) = runtime.block_on(async {
        let config = Config::builder()
            .env(false)
            .set("service.name", "payments")
            .set("shutdown.pre_stop_delay", "0s")
            .set("metrics.rate_limit", 0)
            .set("tracing.endpoint", collector.url())
            .set("tracing.batch.schedule_delay", "50ms")
            .build()
            .unwrap();
        let obskit = Obskit::builder(config)
            .log_output(LogOutput::Writer(Box::new(capture.clone())))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/checkout", get(checkout))
            .route("/users/{id}", get(|| async { "user" }));
        let server = obskit.clone();
        tokio::spawn(async move { server.serve(listener, app).await });
        (obskit, addr)
    });

    let exposition = runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/checkout?token={QUERY_TOKEN}&page=2"))
            .header("authorization", format!("Bearer {BEARER}"))
            .header("cookie", COOKIE)
            .header("proxy-authorization", PROXY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let user = reqwest::get(format!("http://{addr}/users/{EMAIL}"))
            .await
            .unwrap();
        assert_eq!(user.status(), 200);
        assert_eq!(
            response.headers()["set-cookie"],
            SET_COOKIE,
            "redaction changes what is recorded, not the response"
        );
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    collector.inbox.wait_for_spans(2);
    obskit.flush_logs().unwrap();

    // Log lines: the secrets are gone and placeholders name what was there.
    let logs = capture.text();
    for secret in SECRETS {
        assert!(
            !logs.contains(secret),
            "log output contains {secret:?}:\n{logs}"
        );
    }
    let charge = logs
        .lines()
        .find(|line| line.contains("charging"))
        .unwrap_or_else(|| panic!("no charge event in:\n{logs}"));
    let charge: serde_json::Value = serde_json::from_str(charge).unwrap();
    assert_eq!(
        charge["message"],
        "charging [REDACTED:card] for [REDACTED:email]"
    );
    assert_eq!(charge["user.email"], "[REDACTED:email]");
    assert_eq!(charge["db.password"], "[REDACTED:field]", "span field");
    assert_eq!(charge["api_token"], "[REDACTED:field]");
    let body = charge["body"].as_str().unwrap();
    assert!(body.contains(r#""password":"[REDACTED:field]""#), "{body}");
    assert!(
        charge["login"]
            .as_str()
            .unwrap()
            .contains(r#"password: "[REDACTED:field]""#),
        "{charge}"
    );
    let access = logs
        .lines()
        .find(|line| line.contains("request completed"))
        .unwrap_or_else(|| panic!("no access log line in:\n{logs}"));
    for header in ["authorization", "cookie", "proxy", "set-cookie"] {
        assert!(
            !access.to_ascii_lowercase().contains(header),
            "access log mentions {header}: {access}"
        );
    }

    let user_access = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["http.route"] == "/users/{id}")
        .unwrap_or_else(|| panic!("no access log line for /users/{{id}} in:\n{logs}"));
    assert_eq!(user_access["url.path"], "/users/[REDACTED:email]");
    assert_eq!(user_access["http.request.method"], "GET");
    assert_eq!(user_access["message"], "request completed");

    // Spans at the receiver: names, attributes and events are redacted too.
    let mut exported = Vec::new();
    for request in collector.inbox.requests() {
        for resource_spans in request.request.resource_spans {
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    exported.push(span.name.clone());
                    let attributes = span
                        .attributes
                        .iter()
                        .chain(span.events.iter().flat_map(|event| event.attributes.iter()));
                    for attribute in attributes {
                        if let Some(value) = attribute.value.as_ref().and_then(|v| v.value.as_ref())
                        {
                            string_values(value, &mut exported);
                        }
                    }
                    exported.extend(span.events.iter().map(|event| event.name.clone()));
                }
            }
        }
    }
    let exported = exported.join("\n");
    for secret in SECRETS {
        assert!(
            !exported.contains(secret),
            "exported spans contain {secret:?}:\n{exported}"
        );
    }
    assert!(exported.contains("[REDACTED:email]"), "{exported}");
    assert!(
        exported.contains("charging [REDACTED:card] for [REDACTED:email]"),
        "{exported}"
    );

    // The counters on `/metrics`.
    let count = |kind: &str| -> f64 {
        let prefix = format!("obskit_redactions_total{{kind=\"{kind}\"}} ");
        exposition
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(count("email") >= 2.0, "{exposition}");
    assert!(count("card") >= 2.0, "{exposition}");
    assert!(count("field") >= 3.0, "{exposition}");
}
