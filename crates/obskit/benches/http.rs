//! Per-request cost of the obskit middleware over a bare axum router, against tower-http's
//! `TraceLayer` with tracing-subscriber's JSON formatter.
//!
//! Requests go through the router with `tower::ServiceExt::oneshot`, without sockets, so the
//! difference between two medians is the cost of the layer and its logging. Every router gets
//! `with_state(())`, as `axum::serve` does through `into_make_service`; without it axum applies
//! the route layers again on every request.
//!
//! `obskit_layer_sampled_span` adds tracing: the request carries a sampled `traceparent`, the
//! layer continues it as a server span, and obskit's `OtelLayer` (always on) hands each span to
//! a `BatchExporter` whose exporter discards the batch.

#![allow(clippy::expect_used, reason = "benchmark setup")]

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use divan::Bencher;
use http::Request;
use obskit::config::{BatchConfig, HttpConfig, LoggingConfig, ServiceConfig};
use obskit::logging::{self, LogOutput};
use obskit::metrics::Registry;
use obskit::trace::{BatchExporter, OtelLayer, Sampler, SpanSink};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tower::ServiceExt;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::{Dispatch, Level};
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    divan::main();
}

fn routes() -> Router {
    Router::new().route("/orders/{id}", get(|| async { "order" }))
}

/// A sampled W3C `traceparent`, as a caller that samples its request sends it.
const SAMPLED_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request() -> Request<Body> {
    Request::get("/orders/42")
        .header("x-request-id", "bench-request-1")
        .body(Body::empty())
        .expect("valid request")
}

fn traced_request() -> Request<Body> {
    Request::get("/orders/42")
        .header("x-request-id", "bench-request-1")
        .header("traceparent", SAMPLED_TRACEPARENT)
        .body(Body::empty())
        .expect("valid request")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime starts")
}

/// Sends one request and reads the whole body, so the layer records the request.
async fn roundtrip(app: Router) {
    roundtrip_with(app, request()).await;
}

async fn roundtrip_with(app: Router, request: Request<Body>) {
    let response = app.oneshot(request).await.expect("infallible");
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .expect("small body");
    assert_eq!(&body[..], b"order");
}

fn logging_config() -> LoggingConfig {
    LoggingConfig {
        queue_capacity: 1 << 20,
        ..LoggingConfig::default()
    }
}

/// Builds the subscriber `obskit::init` installs: obskit's layer alone, filtered globally.
fn obskit_logging(registry: &Registry) -> (Dispatch, logging::LogGuard) {
    logging::subscriber(
        &logging_config(),
        &ServiceConfig::default(),
        registry,
        LogOutput::Writer(Box::new(io::sink())),
    )
    .expect("valid logging configuration")
}

/// obskit's layer with its own filter inside a subscriber composed by the application.
fn obskit_logging_composed(registry: &Registry) -> (Dispatch, logging::LogGuard) {
    let (layer, guard) = logging::layer(
        &logging_config(),
        &ServiceConfig::default(),
        registry,
        LogOutput::Writer(Box::new(io::sink())),
    )
    .expect("valid logging configuration");
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        guard,
    )
}

fn bench_obskit(bencher: Bencher<'_, '_>, logging: fn(&Registry) -> (Dispatch, logging::LogGuard)) {
    let runtime = runtime();
    let registry = Registry::default();
    let (dispatch, guard) = logging(&registry);
    let layer =
        obskit::http::HttpLayer::new(&registry, &HttpConfig::default()).expect("metrics register");
    let app = routes().layer(layer).with_state(());
    tracing::dispatcher::with_default(&dispatch, || {
        bencher.bench_local(|| runtime.block_on(roundtrip(app.clone())));
    });
    guard
        .shutdown(Duration::from_secs(10))
        .expect("writer drains the queue");
}

/// Accepts every batch of spans and discards it.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

/// Starts a batch exporter with a queue large enough that no span is dropped during a run.
fn batch_exporter(registry: &Registry) -> BatchExporter {
    let batch = BatchConfig {
        max_queue_size: 1 << 16,
        max_export_batch_size: 512,
        schedule_delay: Duration::from_millis(200),
        export_timeout: Duration::from_secs(30),
    };
    BatchExporter::with_exporter(Discard, Resource::builder_empty().build(), &batch, registry)
        .expect("exporter starts")
}

#[divan::bench(sample_count = 500, sample_size = 50)]
fn bare_axum(bencher: Bencher<'_, '_>) {
    let runtime = runtime();
    let app = routes().with_state(());
    bencher.bench_local(|| runtime.block_on(roundtrip(app.clone())));
}

/// obskit's layer with metrics and the access log at INFO to a sink, logging as `init` sets it up.
#[divan::bench(sample_count = 500, sample_size = 50)]
fn obskit_layer(bencher: Bencher<'_, '_>) {
    bench_obskit(bencher, obskit_logging);
}

/// Measures the same with obskit's logging layer inside an application-composed subscriber.
#[divan::bench(sample_count = 500, sample_size = 50)]
fn obskit_layer_composed(bencher: Bencher<'_, '_>) {
    bench_obskit(bencher, obskit_logging_composed);
}

/// Measures obskit's layer with trace context, a sampled span exported in batches, metrics with
/// the exemplar and the access log, in the subscriber that `init` installs with tracing on.
#[divan::bench(sample_count = 500, sample_size = 50)]
fn obskit_layer_sampled_span(bencher: Bencher<'_, '_>) {
    let registry = Registry::default();
    let exporter = batch_exporter(&registry);
    bench_sampled(bencher, &registry, Arc::new(exporter.clone()));
    exporter
        .shutdown(Duration::from_secs(10))
        .expect("exporter drains the queue");
}

/// Measures the same with a sink that drops each span on the request thread, which leaves out
/// the hand-off to the export thread and the frees there.
#[divan::bench(sample_count = 500, sample_size = 50)]
fn obskit_layer_sampled_span_dropped(bencher: Bencher<'_, '_>) {
    bench_sampled(bencher, &Registry::default(), Arc::new(DropSink));
}

/// Drops each finished span where it closes.
struct DropSink;

impl SpanSink for DropSink {
    fn send(&self, span: SpanData) {
        drop(span);
    }
}

fn bench_sampled(bencher: Bencher<'_, '_>, registry: &Registry, sink: Arc<dyn SpanSink>) {
    let runtime = runtime();
    let otel = OtelLayer::new(
        Sampler::AlwaysOn,
        sink,
        InstrumentationScope::builder("bench").build(),
    );
    // The subscriber that init installs with tracing on.
    let (dispatch, guard) = logging::subscriber_with_spans(
        &logging_config(),
        &ServiceConfig::default(),
        registry,
        LogOutput::Writer(Box::new(io::sink())),
        obskit::redact::Redactor::default(),
        Some(otel),
    )
    .expect("valid logging configuration");
    let layer = obskit::http::HttpLayer::new(registry, &HttpConfig::default())
        .expect("metrics register")
        .with_trace_context(true);
    let app = routes().layer(layer).with_state(());
    tracing::dispatcher::with_default(&dispatch, || {
        bencher.bench_local(|| runtime.block_on(roundtrip_with(app.clone(), traced_request())));
    });
    guard
        .shutdown(Duration::from_secs(10))
        .expect("writer drains the queue");
}

/// tower-http's `TraceLayer` with its span and response event at INFO, formatted by
/// tracing-subscriber's JSON formatter to a sink. It records no metrics.
#[divan::bench(sample_count = 500, sample_size = 50)]
fn tower_http_trace_layer(bencher: Bencher<'_, '_>) {
    let runtime = runtime();
    let dispatch = Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .with_writer(io::sink)
            .with_max_level(Level::INFO)
            .finish(),
    );
    let layer = TraceLayer::new_for_http()
        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    let app = routes().layer(layer).with_state(());
    tracing::dispatcher::with_default(&dispatch, || {
        bencher.bench_local(|| runtime.block_on(roundtrip(app.clone())));
    });
}
