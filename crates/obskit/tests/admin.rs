//! End-to-end tests of the admin router over loopback sockets: auth, lockout, rate limit,

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
//! content negotiation, compression and mounting.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use obskit::admin::{self, AdminState};
use obskit::config::{AdminConfig, HealthConfig, MetricsConfig, Secret, ServiceConfig};
use obskit::health::HealthRegistry;
use obskit::metrics::Registry;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION};

const TOKEN: &str = "scrape-token-0123456789";

struct Server {
    base: String,
    health: HealthRegistry,
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{address}")
}

async fn start(metrics: MetricsConfig, admin_config: AdminConfig) -> Server {
    let registry = Registry::default();
    let health = HealthRegistry::new(
        &HealthConfig::default(),
        &ServiceConfig::default(),
        &registry,
    )
    .unwrap();
    health.mark_started();
    let state = AdminState::new(registry, health.clone(), &metrics, &admin_config).unwrap();
    let base = serve(admin::router(state)).await;
    Server { base, health }
}

fn secured() -> MetricsConfig {
    MetricsConfig {
        auth_token: Some(Secret::new(TOKEN)),
        rate_limit: 0.0,
        ..MetricsConfig::default()
    }
}

fn open() -> MetricsConfig {
    MetricsConfig {
        rate_limit: 0.0,
        ..MetricsConfig::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

async fn get_metrics(server: &Server, authorization: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{}/metrics", server.base));
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    request.send().await.unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn missing_header_is_401_with_challenge() {
    let server = start(secured(), AdminConfig::default()).await;
    let response = get_metrics(&server, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"metrics\""
    );
}

#[tokio::test]
async fn basic_auth_is_401() {
    let server = start(secured(), AdminConfig::default()).await;
    let response = get_metrics(&server, Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"metrics\""
    );
}

#[tokio::test]
async fn wrong_token_is_403() {
    let server = start(secured(), AdminConfig::default()).await;
    let response = get_metrics(&server, Some("Bearer not-the-token")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn right_token_is_200() {
    let server = start(secured(), AdminConfig::default()).await;
    let response = get_metrics(&server, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains("obskit_scrape_duration_seconds"), "{body}");
}

#[tokio::test]
async fn token_file_is_read() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    let metrics = MetricsConfig {
        auth_token_file: Some(path),
        rate_limit: 0.0,
        ..MetricsConfig::default()
    };
    let server = start(metrics, AdminConfig::default()).await;
    assert_eq!(
        get_metrics(&server, Some(&format!("Bearer {TOKEN}")))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get_metrics(&server, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn failures_are_counted_by_reason() {
    let server = start(secured(), AdminConfig::default()).await;
    get_metrics(&server, None).await;
    get_metrics(&server, Some("Basic abc")).await;
    get_metrics(&server, Some("Bearer wrong")).await;
    get_metrics(&server, Some("Bearer wrong")).await;

    let body = get_metrics(&server, Some(&format!("Bearer {TOKEN}")))
        .await
        .text()
        .await
        .unwrap();
    for line in [
        "obskit_metrics_auth_failures_total{reason=\"missing\"} 1",
        "obskit_metrics_auth_failures_total{reason=\"malformed\"} 1",
        "obskit_metrics_auth_failures_total{reason=\"invalid\"} 2",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
}

#[tokio::test]
async fn repeated_failures_lock_client_out() {
    let admin_config = AdminConfig {
        max_auth_failures: 3,
        auth_lockout: Duration::from_secs(30),
        ..AdminConfig::default()
    };
    let server = start(secured(), admin_config).await;
    for _ in 0..3 {
        let response = get_metrics(&server, Some("Bearer wrong")).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    let locked = get_metrics(&server, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let seconds = retry_after(&locked);
    assert!((29..=30).contains(&seconds), "Retry-After {seconds}");

    // Health endpoints stay open for the locked-out client.
    let health = client()
        .get(format!("{}/health/live", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_answers_429() {
    let metrics = MetricsConfig {
        rate_limit: 1.0,
        ..MetricsConfig::default()
    };
    let server = start(metrics, AdminConfig::default()).await;
    assert_eq!(get_metrics(&server, None).await.status(), StatusCode::OK);

    let limited = get_metrics(&server, None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&limited), 1);

    // Health endpoints are not rate limited.
    for _ in 0..5 {
        let response = client()
            .get(format!("{}/health/live", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let body = get_metrics(&server, None).await.text().await.unwrap();
    assert!(
        body.contains("obskit_metrics_scrapes_rate_limited_total 1"),
        "{body}"
    );
}

#[tokio::test]
async fn default_format_is_prometheus_text() {
    let server = start(open(), AdminConfig::default()).await;
    let response = get_metrics(&server, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(response.headers()["vary"], "Accept, Accept-Encoding");
    let body = response.text().await.unwrap();
    assert!(!body.contains("# EOF"), "{body}");
}

#[tokio::test]
async fn openmetrics_by_accept() {
    let server = start(open(), AdminConfig::default()).await;
    let response = client()
        .get(format!("{}/metrics", server.base))
        .header(
            ACCEPT,
            "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(response.headers()["vary"], "Accept, Accept-Encoding");
    let body = response.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[tokio::test]
async fn gzip_when_accepted() {
    let server = start(open(), AdminConfig::default()).await;
    let response = client()
        .get(format!("{}/metrics", server.base))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("# TYPE obskit_scrape_duration_seconds histogram"),
        "{text}"
    );
}

#[tokio::test]
async fn gzip_refused_with_q_zero() {
    let server = start(open(), AdminConfig::default()).await;
    let response = client()
        .get(format!("{}/metrics", server.base))
        .header(ACCEPT_ENCODING, "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    let body = response.text().await.unwrap();
    assert!(body.contains("obskit_scrape_duration_seconds"), "{body}");
}

#[tokio::test]
async fn scrape_duration_is_recorded() {
    let server = start(open(), AdminConfig::default()).await;
    get_metrics(&server, None).await;
    let body = get_metrics(&server, None).await.text().await.unwrap();
    assert!(
        body.contains("obskit_scrape_duration_seconds_count 1"),
        "{body}"
    );
}

#[tokio::test]
async fn health_open_when_metrics_secured() {
    let server = start(secured(), AdminConfig::default()).await;
    for path in [
        "/health",
        "/health/live",
        "/health/ready",
        "/health/startup",
    ] {
        let response = client()
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/health+json",
            "{path}"
        );
    }
    server.health.set_shutting_down();
    let response = client()
        .get(format!("{}/health/ready", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[tokio::test]
async fn router_merges_into_stateful_app() {
    let registry = Registry::default();
    let health = HealthRegistry::new(
        &HealthConfig::default(),
        &ServiceConfig::default(),
        &registry,
    )
    .unwrap();
    let state = AdminState::new(registry, health, &open(), &AdminConfig::default()).unwrap();
    let app =
        Router::new()
            .route(
                "/",
                get(
                    |axum::extract::State(app): axum::extract::State<AppState>| async move {
                        app.greeting
                    },
                ),
            )
            .merge(admin::router(state))
            .with_state(AppState { greeting: "hello" });
    let base = serve(app).await;

    let root = client().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(root.text().await.unwrap(), "hello");
    let metrics = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
}

#[test]
fn invalid_settings_rejected() {
    let registry = Registry::default();
    let health = HealthRegistry::new(
        &HealthConfig::default(),
        &ServiceConfig::default(),
        &registry,
    )
    .unwrap();
    let bad_rate = MetricsConfig {
        rate_limit: -1.0,
        ..MetricsConfig::default()
    };
    let error = AdminState::new(
        registry.clone(),
        health.clone(),
        &bad_rate,
        &AdminConfig::default(),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("metrics.rate_limit -1"),
        "{error}"
    );

    let bad_token = MetricsConfig {
        auth_token: Some(Secret::new("with space")),
        ..MetricsConfig::default()
    };
    let error = AdminState::new(
        registry.clone(),
        health.clone(),
        &bad_token,
        &AdminConfig::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("metrics.auth_token"), "{error}");
    assert!(!error.to_string().contains("with space"), "{error}");

    let missing_file = MetricsConfig {
        auth_token_file: Some("/nonexistent/obskit-token".into()),
        ..MetricsConfig::default()
    };
    let error =
        AdminState::new(registry, health, &missing_file, &AdminConfig::default()).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/obskit-token"),
        "{error}"
    );
}

#[tokio::test]
async fn without_connect_info_clients_share_limit() {
    use tower::ServiceExt as _;

    let registry = Registry::default();
    let health = HealthRegistry::new(
        &HealthConfig::default(),
        &ServiceConfig::default(),
        &registry,
    )
    .unwrap();
    let metrics = MetricsConfig {
        rate_limit: 1.0,
        ..MetricsConfig::default()
    };
    let state = AdminState::new(registry, health, &metrics, &AdminConfig::default()).unwrap();
    let router: Router = admin::router(state);
    let request = || {
        axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .unwrap()
    };

    let first = router.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), axum::http::StatusCode::OK);
    let second = router.oneshot(request()).await.unwrap();
    assert_eq!(second.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
}
