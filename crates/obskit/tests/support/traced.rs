//! A traced request end to end through `obskit::init`: it reaches an OTLP receiver as server
//! spans, and the exemplars on `/metrics` and the log lines carry the same trace.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use obskit::logging::LogOutput;
use obskit::trace::{Baggage, inject_current};
use obskit::{Config, Obskit};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use tracing::Instrument as _;

use super::capture::Capture;
use super::otlp::Collector;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;

#[tracing::instrument]
async fn load_order(id: u64) -> u64 {
    tracing::info!("loading order");
    id
}

async fn get_order(
    State(addr): State<Arc<Mutex<Option<SocketAddr>>>>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> String {
    let id = load_order(id).await;
    // The outgoing call carries the trace of this request.
    let mut headers = HeaderMap::new();
    inject_current(&Baggage::default(), &mut headers).unwrap();
    let addr = addr.lock().unwrap().unwrap();
    let received = reqwest::Client::new()
        .get(format!("http://{addr}/inventory"))
        .headers(headers)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // Inside a client span, the callee's parent is that span.
    let client_span = tracing::info_span!("reserve stock", otel.kind = "client");
    let mut headers = HeaderMap::new();
    client_span.in_scope(|| inject_current(&Baggage::default(), &mut headers).unwrap());
    reqwest::Client::new()
        .get(format!("http://{addr}/reserve"))
        .headers(headers)
        .send()
        .instrument(client_span)
        .await
        .unwrap();
    format!("order {id}; inventory saw {received}")
}

/// Returns the `traceparent` and `tracestate` this call received.
async fn inventory(headers: HeaderMap) -> String {
    let value = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    format!("{} {}", value("traceparent"), value("tracestate"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn string(attributes: &[KeyValue], key: &str) -> String {
    match attribute(attributes, key) {
        Some(any_value::Value::StringValue(value)) => value.clone(),
        other => panic!("{key} is not a string attribute: {other:?}"),
    }
}

fn int(attributes: &[KeyValue], key: &str) -> i64 {
    match attribute(attributes, key) {
        Some(any_value::Value::IntValue(value)) => *value,
        other => panic!("{key} is not an int attribute: {other:?}"),
    }
}

fn spans(collector: &Collector) -> Vec<(Resource, Span)> {
    collector
        .inbox
        .requests()
        .into_iter()
        .flat_map(|received| received.request.resource_spans)
        .flat_map(|resource_spans| {
            let resource = resource_spans.resource.unwrap_or_default();
            resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
                .map(move |span| (resource.clone(), span))
        })
        .collect()
}

fn find(spans: &[(Resource, Span)], predicate: impl Fn(&Span) -> bool) -> &Span {
    let names: Vec<&str> = spans.iter().map(|(_, span)| span.name.as_str()).collect();
    spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| predicate(span))
        .unwrap_or_else(|| panic!("no such span among {names:?}"))
}

/// Serves an application through `obskit::init` exporting to `collector` over `protocol`
/// (`grpc` or `http/protobuf`) and checks the spans, the exemplar and the log lines of traced
/// requests.
pub fn check_traced_requests(collector: &Collector, protocol: &str) {
    let capture = Capture::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let (obskit, addr) = runtime.block_on(async {
        let config = Config::builder()
            .env(false)
            .set("service.name", "checkout")
            .set("service.version", "1.4.2")
            .set("service.environment", "test")
            .set("shutdown.pre_stop_delay", "0s")
            .set("metrics.rate_limit", 0)
            .set("tracing.endpoint", collector.url())
            .set("tracing.protocol", protocol)
            .set("tracing.batch.schedule_delay", "50ms")
            .build()
            .unwrap();
        let obskit = Obskit::builder(config)
            .log_output(LogOutput::Writer(Box::new(capture.clone())))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared_addr = Arc::new(Mutex::new(Some(addr)));
        let app = Router::new()
            .route("/orders/{id}", get(get_order))
            .route("/inventory", get(inventory))
            .route("/reserve", get(|| async { "reserved" }))
            .route(
                "/baggage",
                get(|baggage: Option<axum::Extension<Baggage>>| async move {
                    baggage
                        .and_then(|baggage| baggage.get("tenant").map(str::to_owned))
                        .unwrap_or_default()
                }),
            )
            .route(
                "/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "down") }),
            )
            .route(
                "/panic",
                get(|| async {
                    if true {
                        panic!("handler exploded");
                    }
                    "unreachable"
                }),
            )
            .with_state(shared_addr);
        let server = obskit.clone();
        tokio::spawn(async move { server.serve(listener, app).await });
        (obskit, addr)
    });

    let client = reqwest::Client::new();
    let (body, fail_status, panic_status, invalid_response) = runtime.block_on(async {
        let body = client
            .get(format!("http://{addr}/orders/7"))
            .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
            .header("tracestate", "congo=t61rcWkgMzE")
            .header("user-agent", "e2e-test/1.0")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let fail = client
            .get(format!("http://{addr}/fail"))
            .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
            .send()
            .await
            .unwrap()
            .status();
        let panicked = client
            .get(format!("http://{addr}/panic"))
            .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
            .send()
            .await
            .unwrap()
            .status();
        // Uppercase hex is invalid: the request starts a new trace and nothing is echoed.
        let invalid = client
            .get(format!("http://{addr}/inventory"))
            .header(
                "traceparent",
                format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
            )
            .send()
            .await
            .unwrap();
        let tenant = client
            .get(format!("http://{addr}/baggage"))
            .header("baggage", "tenant=acme, not a member, region=eu%2Dwest")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(tenant, "acme");
        (body, fail, panicked, invalid)
    });
    assert_eq!(fail_status, 500);
    assert_eq!(panic_status, 500);
    assert!(!invalid_response.headers().contains_key("traceparent"));

    // orders, load_order, the inner inventory call, the client span and the reserve call, fail,
    // panic, the invalid-parent call and the baggage call.
    collector.inbox.wait_for_spans(9);
    let spans = spans(collector);

    let orders = find(&spans, |span| span.name == "GET /orders/{id}");
    assert_eq!(hex(&orders.trace_id), TRACE_ID);
    assert_eq!(hex(&orders.parent_span_id), PARENT_ID);
    assert_eq!(orders.kind, SERVER);
    assert_eq!(orders.trace_state, "congo=t61rcWkgMzE");
    let attributes = &orders.attributes;
    assert_eq!(string(attributes, "http.request.method"), "GET");
    assert_eq!(string(attributes, "http.route"), "/orders/{id}");
    assert_eq!(string(attributes, "url.path"), "/orders/7");
    assert_eq!(string(attributes, "url.scheme"), "http");
    assert_eq!(int(attributes, "http.response.status_code"), 200);
    assert_eq!(string(attributes, "client.address"), "127.0.0.1");
    assert_eq!(string(attributes, "user_agent.original"), "e2e-test/1.0");
    assert_eq!(string(attributes, "server.address"), "127.0.0.1");
    assert_eq!(int(attributes, "server.port"), i64::from(addr.port()));
    assert_ne!(
        orders.status.as_ref().map_or(0, |status| status.code),
        STATUS_ERROR
    );

    let (resource, _) = spans
        .iter()
        .find(|(_, span)| span.span_id == orders.span_id)
        .unwrap();
    assert_eq!(string(&resource.attributes, "service.name"), "checkout");
    assert_eq!(string(&resource.attributes, "service.version"), "1.4.2");
    assert_eq!(
        string(&resource.attributes, "deployment.environment.name"),
        "test"
    );

    let load = find(&spans, |span| span.name == "load_order");
    assert_eq!(load.trace_id, orders.trace_id);
    assert_eq!(load.parent_span_id, orders.span_id);

    // The outgoing call continued the trace with a new parent id and the caller's tracestate.
    let inner = find(&spans, |span| {
        span.name == "GET /inventory" && hex(&span.trace_id) == TRACE_ID
    });
    let (sent_traceparent, sent_tracestate) = body
        .split_once("inventory saw ")
        .unwrap()
        .1
        .split_once(' ')
        .unwrap();
    assert_eq!(
        sent_traceparent,
        format!("00-{TRACE_ID}-{}-01", hex(&inner.parent_span_id))
    );
    assert_ne!(inner.parent_span_id, orders.span_id);
    assert_ne!(hex(&inner.parent_span_id), PARENT_ID);
    assert_eq!(sent_tracestate, "congo=t61rcWkgMzE");

    let client_span = find(&spans, |span| span.name == "reserve stock");
    assert_eq!(client_span.kind, CLIENT);
    assert_eq!(client_span.parent_span_id, orders.span_id);
    let reserve = find(&spans, |span| span.name == "GET /reserve");
    assert_eq!(reserve.trace_id, orders.trace_id);
    assert_eq!(reserve.parent_span_id, client_span.span_id);

    let fail = find(&spans, |span| span.name == "GET /fail");
    assert_eq!(fail.status.as_ref().unwrap().code, STATUS_ERROR);
    assert_eq!(int(&fail.attributes, "http.response.status_code"), 500);
    assert_eq!(string(&fail.attributes, "error.type"), "500");

    let panicked = find(&spans, |span| span.name == "GET /panic");
    assert_eq!(panicked.status.as_ref().unwrap().code, STATUS_ERROR);
    let exception = panicked
        .events
        .iter()
        .find(|event| event.name == "exception")
        .unwrap();
    assert_eq!(
        string(&exception.attributes, "exception.message"),
        "handler exploded"
    );

    let invalid = find(&spans, |span| {
        span.name == "GET /inventory" && hex(&span.trace_id) != TRACE_ID
    });
    assert!(invalid.parent_span_id.is_empty());

    // The exemplar of the request's duration bucket is the request's span.
    let (openmetrics, text) = runtime.block_on(async {
        let openmetrics = client
            .get(format!("http://{addr}/metrics"))
            .header("accept", "application/openmetrics-text; version=1.0.0")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let text = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (openmetrics, text)
    });
    let exemplar = format!(
        "# {{trace_id=\"{TRACE_ID}\",span_id=\"{}\"}}",
        hex(&orders.span_id)
    );
    assert!(
        openmetrics.lines().any(|line| {
            line.starts_with("http_server_request_duration_seconds_bucket{")
                && line.contains("http_route=\"/orders/{id}\"")
                && line.contains(&exemplar)
        }),
        "no exemplar {exemplar} in:\n{openmetrics}"
    );
    assert!(
        !text.contains("trace_id="),
        "the text format must not carry exemplars"
    );
    assert!(
        text.contains(
            "obskit_trace_context_rejected_total{header=\"traceparent\",reason=\"uppercase_hex\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.lines().any(|line| line
            .starts_with("obskit_trace_context_rejected_total{header=\"baggage\"")
            && line.ends_with(" 1")),
        "{text}"
    );

    // The log lines of the request carry its trace.
    obskit.flush_logs().unwrap();
    let lines = capture.lines();
    let loading = lines
        .iter()
        .find(|line| line["message"] == "loading order")
        .unwrap();
    assert_eq!(loading["trace_id"], TRACE_ID);
    assert_eq!(loading["span_id"], hex(&load.span_id));
    let access = lines
        .iter()
        .find(|line| line["target"] == "obskit::access" && line["url.path"] == "/orders/7")
        .unwrap();
    assert_eq!(access["trace_id"], TRACE_ID);
    assert_eq!(access["span_id"], hex(&orders.span_id));

    // A handler panic is logged inside the request span, so its line names the panicked span.
    let panic_line = lines
        .iter()
        .find(|line| line["message"] == "handler panicked")
        .unwrap();
    assert_eq!(panic_line["trace_id"], TRACE_ID);
    assert_eq!(panic_line["span_id"], hex(&panicked.span_id));
    let fail_access = lines
        .iter()
        .find(|line| line["target"] == "obskit::access" && line["url.path"] == "/fail")
        .unwrap();
    assert_eq!(fail_access["span_id"], hex(&fail.span_id));

    // Every id in every line is lowercase hex of the W3C length: 16 bytes for a trace, 8 for a
    // span.
    let is_lower_hex = |value: &serde_json::Value, len: usize| {
        value.as_str().is_some_and(|text| {
            text.len() == len
                && text
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        })
    };
    let traced: Vec<_> = lines
        .iter()
        .filter(|line| line.get("trace_id").is_some())
        .collect();
    assert!(traced.len() >= 3, "{lines:?}");
    for line in traced {
        assert!(is_lower_hex(&line["trace_id"], 32), "{line}");
        assert!(is_lower_hex(&line["span_id"], 16), "{line}");
    }

    obskit.shutdown().trigger();
}
