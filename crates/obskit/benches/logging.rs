//! Cost of one JSON log event: obskit's layer against tracing-subscriber's JSON formatter.
//!
//! Both write to `std::io::sink()`; obskit's layer goes through its non-blocking writer queue.

#![allow(clippy::expect_used, reason = "benchmark setup")]

use std::io;
use std::time::Duration;

use divan::Bencher;
use obskit::config::{LoggingConfig, ServiceConfig};
use obskit::logging::{self, LogOutput};
use obskit::metrics::{Format, Registry};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    divan::main();
}

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Peer {
    host: &'static str,
    port: u16,
}

/// Emits one INFO event with a string, an integer, a float, a bool and a `Debug` field.
fn emit() {
    tracing::info!(
        user = "alice",
        items = 3u64,
        total = 42.5f64,
        paid = true,
        peer = ?Peer { host: "10.0.0.7", port: 8080 },
        "order placed"
    );
}

fn obskit_dispatch() -> (Dispatch, logging::LogGuard, Registry) {
    let registry = Registry::default();
    let logging = LoggingConfig {
        // Large enough that the writer thread keeps up and nothing is dropped.
        queue_capacity: 1 << 20,
        ..LoggingConfig::default()
    };
    let service = ServiceConfig {
        name: "checkout".to_owned(),
        environment: "production".to_owned(),
        version: "1.4.2".to_owned(),
        ..ServiceConfig::default()
    };
    let (layer, guard) = logging::layer(
        &logging,
        &service,
        &registry,
        LogOutput::Writer(Box::new(io::sink())),
    )
    .expect("valid logging configuration");
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    (dispatch, guard, registry)
}

fn peer_dispatch() -> Dispatch {
    Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .with_writer(io::sink)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    )
}

fn finish(guard: logging::LogGuard, registry: &Registry) {
    guard
        .shutdown(Duration::from_secs(10))
        .expect("writer drains the queue");
    let metrics = registry
        .encode(Format::OpenMetrics)
        .expect("metrics encode");
    assert!(
        metrics.contains("obskit_log_events_dropped_total{reason=\"queue_full\"} 0"),
        "events were dropped, so the figures measure the drop path:\n{metrics}"
    );
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_json(bencher: Bencher<'_, '_>) {
    let (dispatch, guard, registry) = obskit_dispatch();
    tracing::dispatcher::with_default(&dispatch, || bencher.bench_local(emit));
    finish(guard, &registry);
}

/// Measures the event through the globally filtered subscriber that `init` installs, with the default
/// redaction rules and with redaction off, to show what redaction costs.
#[divan::bench(sample_count = 1000, sample_size = 100, args = [true, false])]
fn obskit_json_subscriber(bencher: Bencher<'_, '_>, redacted: bool) {
    let redactor = if redacted {
        obskit::redact::Redactor::default()
    } else {
        obskit::redact::Redactor::disabled()
    };
    let registry = Registry::default();
    let logging = LoggingConfig {
        queue_capacity: 1 << 20,
        ..LoggingConfig::default()
    };
    let (dispatch, guard) = logging::subscriber_with_spans(
        &logging,
        &ServiceConfig::default(),
        &registry,
        LogOutput::Writer(Box::new(io::sink())),
        redactor,
        None,
    )
    .expect("valid logging configuration");
    tracing::dispatcher::with_default(&dispatch, || bencher.bench_local(emit));
    finish(guard, &registry);
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn tracing_subscriber_json(bencher: Bencher<'_, '_>) {
    let dispatch = peer_dispatch();
    tracing::dispatcher::with_default(&dispatch, || bencher.bench_local(emit));
}

/// Emits the same event inside two new spans with two fields each.
fn emit_in_spans() {
    let outer = tracing::info_span!("request", request_id = "7f3a", http_route = "/orders/{id}");
    let _outer = outer.enter();
    let inner = tracing::info_span!("db", db_system = "postgresql", attempt = 1);
    let _inner = inner.enter();
    emit();
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_json_in_spans(bencher: Bencher<'_, '_>) {
    let (dispatch, guard, registry) = obskit_dispatch();
    tracing::dispatcher::with_default(&dispatch, || {
        let outer =
            tracing::info_span!("request", request_id = "7f3a", http_route = "/orders/{id}");
        let _outer = outer.enter();
        let inner = tracing::info_span!("db", db_system = "postgresql", attempt = 1);
        let _inner = inner.enter();
        bencher.bench_local(emit);
    });
    finish(guard, &registry);
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn tracing_subscriber_json_in_spans(bencher: Bencher<'_, '_>) {
    let dispatch = peer_dispatch();
    tracing::dispatcher::with_default(&dispatch, || {
        let outer =
            tracing::info_span!("request", request_id = "7f3a", http_route = "/orders/{id}");
        let _outer = outer.enter();
        let inner = tracing::info_span!("db", db_system = "postgresql", attempt = 1);
        let _inner = inner.enter();
        bencher.bench_local(emit);
    });
}

/// Span creation and entry included, as when each request opens its spans.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn obskit_json_new_spans(bencher: Bencher<'_, '_>) {
    let (dispatch, guard, registry) = obskit_dispatch();
    tracing::dispatcher::with_default(&dispatch, || bencher.bench_local(emit_in_spans));
    finish(guard, &registry);
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn tracing_subscriber_json_new_spans(bencher: Bencher<'_, '_>) {
    let dispatch = peer_dispatch();
    tracing::dispatcher::with_default(&dispatch, || bencher.bench_local(emit_in_spans));
}
