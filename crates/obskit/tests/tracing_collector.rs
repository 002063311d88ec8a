//! A collector that accepts connections and never responds: requests are unaffected, failed
//! exports are counted, and shutdown still finishes within its deadline.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use obskit::logging::LogOutput;
use obskit::{Config, Obskit};

mod support;

use support::otlp::silent_listener;

fn counter(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_collector_delays_nothing() {
    let collector = silent_listener();
    let config = Config::builder()
        .env(false)
        .set("shutdown.pre_stop_delay", "0s")
        .set("shutdown.timeout", "2s")
        .set("metrics.rate_limit", 0)
        .set("tracing.endpoint", format!("http://{collector}"))
        .set("tracing.protocol", "http/protobuf")
        .set("tracing.timeout", "3s")
        .set("tracing.batch.schedule_delay", "20ms")
        .set("tracing.shutdown_timeout", "1s")
        .build()
        .unwrap();
    let obskit = Obskit::builder(config)
        .log_output(LogOutput::Writer(Box::new(std::io::sink())))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/orders/{id}", get(|| async { "order" }));
    let server = obskit.clone();
    let serving = tokio::spawn(async move { server.serve(listener, app).await });

    let client = reqwest::Client::new();
    for id in 0..50 {
        let response = client
            .get(format!("http://{addr}/orders/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    // Each export waits for its timeout, then counts the failure and the spans it carried.
    let deadline = Instant::now() + Duration::from_secs(15);
    let exposition = loop {
        let exposition = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The HTTP client gives up at the export timeout itself and reports an error.
        let failures = counter(
            &exposition,
            "obskit_span_export_failures_total{reason=\"timeout\"}",
        ) + counter(
            &exposition,
            "obskit_span_export_failures_total{reason=\"error\"}",
        );
        if failures > 0.0 {
            break exposition;
        }
        assert!(
            Instant::now() < deadline,
            "no export failure counted:\n{exposition}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        counter(
            &exposition,
            "obskit_spans_dropped_total{reason=\"export_failed\"}"
        ) > 0.0,
        "{exposition}"
    );
    assert_eq!(
        counter(&exposition, "obskit_spans_exported_total"),
        0.0,
        "{exposition}"
    );

    // New spans start an export that hangs for 3 s; shutdown gives the span flush 1 s and
    // must not wait for the export.
    for id in 0..5 {
        let response = client
            .get(format!("http://{addr}/orders/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    obskit.shutdown().trigger();
    let report = serving.await.unwrap().unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "shutdown took {elapsed:?}, waiting for the hung export: {report:?}"
    );
}
