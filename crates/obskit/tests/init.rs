//! End-to-end tests of `Obskit::serve`: the application and the admin routes on one listener.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use obskit::{Config, Obskit};

/// Starts `app` through `Obskit::serve` on a loopback port with `settings` applied in code.
async fn start(settings: &[(&str, serde_json::Value)]) -> (Obskit, SocketAddr) {
    let mut builder = Config::builder()
        .env(false)
        .set("shutdown.pre_stop_delay", "0s")
        .set("metrics.rate_limit", 0);
    for (key, value) in settings {
        builder = builder.set(key, value);
    }
    let config = builder.build().unwrap();
    let obskit = Obskit::builder(config).without_logging().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/orders/{id}", get(|| async { "order" }));
    let server = obskit.clone();
    tokio::spawn(async move { server.serve(listener, app).await });
    (obskit, addr)
}

async fn scrape(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn unmatched_path_recorded() {
    let (obskit, addr) = start(&[]).await;
    let response = reqwest::get(format!("http://{addr}/no/such/path"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));

    let exposition = scrape(addr).await;
    assert!(
        exposition.lines().any(|line| {
            line.starts_with("http_server_request_duration_seconds_count{")
                && line.contains("http_route=\"\"")
                && line.contains("http_response_status_code=\"404\"")
        }),
        "{exposition}"
    );
    assert!(
        !exposition.contains("http_route=\"/metrics\""),
        "{exposition}"
    );
    obskit.shutdown().trigger();
}

#[tokio::test]
async fn admin_path_recorded_unless_excluded() {
    let (obskit, addr) = start(&[("http.exclude_paths", serde_json::json!(["/health*"]))]).await;
    scrape(addr).await;
    let exposition = scrape(addr).await;
    assert!(
        exposition.contains("http_route=\"/metrics\""),
        "{exposition}"
    );
    obskit.shutdown().trigger();
}
