//! A server span kept only because it failed (`tracing.keep_errors` with an unsampled trace)
//! must still be a complete server span: name, kind, HTTP attributes and error status.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use obskit::logging::LogOutput;
use obskit::{Config, Obskit};
use opentelemetry_proto::tonic::common::v1::any_value;
use support::otlp::Collector;

const SERVER: i32 = 2;
const STATUS_ERROR: i32 = 2;

#[test]
fn kept_error_span_is_server_span() {
    let collector = Collector::grpc();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(async {
        let config = Config::builder()
            .env(false)
            .set("service.name", "checkout")
            .set("shutdown.pre_stop_delay", "0s")
            .set("metrics.rate_limit", 0)
            .set("logging.level", "off")
            .set("tracing.endpoint", collector.url())
            .set("tracing.sampler", "always_off")
            .set("tracing.keep_errors", true)
            .set("tracing.batch.schedule_delay", "50ms")
            .build()
            .unwrap();
        let obskit = Obskit::builder(config)
            .log_output(LogOutput::Writer(Box::new(std::io::sink())))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/fail/{id}",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "down") }),
        );
        tokio::spawn(async move { obskit.serve(listener, app).await });
        addr
    });

    let status = runtime.block_on(async {
        reqwest::get(format!("http://{addr}/fail/7"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 500);
    collector.inbox.wait_for_spans(1);

    let requests = collector.inbox.requests();
    let span = requests
        .iter()
        .flat_map(|r| &r.request.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .next()
        .unwrap()
        .clone();
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref()?.value.clone())
    };
    assert_eq!(span.name, "GET /fail/{id}", "{span:?}");
    assert_eq!(span.kind, SERVER, "{span:?}");
    assert_eq!(span.status.as_ref().unwrap().code, STATUS_ERROR, "{span:?}");
    assert_eq!(
        attribute("http.response.status_code"),
        Some(any_value::Value::IntValue(500)),
        "{span:?}"
    );
    assert_eq!(
        attribute("url.path"),
        Some(any_value::Value::StringValue("/fail/7".into())),
        "{span:?}"
    );
    assert!(attribute("client.address").is_some(), "{span:?}");
}
