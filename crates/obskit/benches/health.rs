//! `/health/ready` with three cached checks: registry evaluation plus JSON rendering, and a full

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
//! request through the admin router, next to a plain axum handler returning static JSON.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use obskit::admin::{self, AdminState};
use obskit::config::{AdminConfig, HealthConfig, MetricsConfig, ServiceConfig};
use obskit::health::{CheckError, CheckOptions, HealthRegistry, Probe, Status};
use obskit::metrics::Registry;
use tower::ServiceExt;

const STATIC_BODY: &str = r#"{"status":"pass","version":"1.0.0","serviceId":"bench","checks":{"cache":[{"status":"pass","observedValue":0.01,"observedUnit":"ms","time":"2026-01-01T00:00:00.000Z"}],"db":[{"status":"pass","observedValue":0.01,"observedUnit":"ms","time":"2026-01-01T00:00:00.000Z"}],"queue":[{"status":"pass","observedValue":0.01,"observedUnit":"ms","time":"2026-01-01T00:00:00.000Z"}]}}"#;

fn main() {
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Builds a started registry with three passing checks whose results are cached for an hour.
fn cached_registry(runtime: &tokio::runtime::Runtime) -> (HealthRegistry, Registry) {
    let metrics = Registry::default();
    let service = ServiceConfig {
        name: "bench".to_owned(),
        version: "1.0.0".to_owned(),
        ..ServiceConfig::default()
    };
    let health = HealthRegistry::new(&HealthConfig::default(), &service, &metrics).unwrap();
    for name in ["db", "cache", "queue"] {
        health
            .add_readiness(
                name,
                || async { Ok::<(), CheckError>(()) },
                CheckOptions::default().cache_ttl(Duration::from_secs(3600)),
            )
            .unwrap();
    }
    health.mark_started();
    let warm = runtime.block_on(health.evaluate(Probe::Readiness, &[]));
    assert_eq!(warm.status, Status::Pass);
    (health, metrics)
}

fn ready_request() -> Request<Body> {
    Request::get("/health/ready").body(Body::empty()).unwrap()
}

async fn call(router: &Router) -> usize {
    let response = router.clone().oneshot(ready_request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    body.len()
}

/// Measures the registry reading three cached results and rendering `application/health+json`.
#[divan::bench(sample_count = 500, sample_size = 20)]
fn evaluate_and_render_json(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let (health, _metrics) = cached_registry(&runtime);
    bencher.bench_local(|| {
        runtime.block_on(async {
            let report = health.evaluate(Probe::Readiness, &[]).await;
            health.render_json(&report)
        })
    });
}

/// Measures a full `GET /health/ready` through the admin router, without sockets.
#[divan::bench(sample_count = 500, sample_size = 20)]
fn admin_router_ready(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let (health, metrics) = cached_registry(&runtime);
    let state = AdminState::new(
        metrics,
        health,
        &MetricsConfig::default(),
        &AdminConfig::default(),
    )
    .unwrap();
    let router: Router = admin::router(state);
    bencher.bench_local(|| runtime.block_on(call(&router)));
}

/// Peer: a plain axum handler returning a static JSON string of the same shape.
#[divan::bench(sample_count = 500, sample_size = 20)]
fn peer_static_json_handler(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let router: Router = Router::new().route("/health/ready", get(|| async { STATIC_BODY }));
    bencher.bench_local(|| runtime.block_on(call(&router)));
}

/// Baseline: `block_on` of an empty future, included in every figure above.
#[divan::bench(sample_count = 500, sample_size = 20)]
fn runtime_block_on_baseline(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    bencher.bench_local(|| runtime.block_on(async { divan::black_box(0_u8) }));
}
