//! End-to-end tests of health checks and probe endpoints over loopback sockets.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::routing;
use obskit::config::{HealthConfig, ServiceConfig};
use obskit::health::{
    Check, CheckError, CheckOptions, DiskSpaceCheck, HealthError, HealthRegistry, HttpCheck,
    MemoryCheck, Probe, Status, TcpCheck,
};
use obskit::metrics::{Format, Registry};
use reqwest::StatusCode;
use serde_json::Value;

fn config(expose_details: bool) -> HealthConfig {
    HealthConfig {
        check_timeout: Duration::from_secs(2),
        expose_details,
    }
}

fn service() -> ServiceConfig {
    ServiceConfig {
        name: "orders".to_owned(),
        version: "1.4.0".to_owned(),
        ..ServiceConfig::default()
    }
}

fn registry(expose_details: bool) -> (HealthRegistry, Registry) {
    let metrics = Registry::default();
    let health = HealthRegistry::new(&config(expose_details), &service(), &metrics).unwrap();
    health.mark_started();
    (health, metrics)
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

async fn serve_health(health: &HealthRegistry) -> String {
    serve(obskit::health::http::routes(health.clone())).await
}

async fn get(url: String) -> (StatusCode, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn get_json(url: String) -> (StatusCode, Value) {
    let (status, body) = get(url).await;
    (status, serde_json::from_str(&body).unwrap())
}

fn passing() -> impl Check {
    || async { Ok::<(), CheckError>(()) }
}

fn failing(message: &'static str) -> impl Check {
    move || async move { Err::<(), _>(CheckError::new(message)) }
}

/// Returns a check that counts its executions.
fn counting(runs: Arc<AtomicUsize>, delay: Duration) -> impl Check {
    move || {
        let runs = Arc::clone(&runs);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok::<(), CheckError>(())
        }
    }
}

/// Sets its flag when dropped, proving that the future holding it was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn pass_warn_fail_status_codes() {
    let (health, _) = registry(false);
    health
        .add_readiness("db", passing(), CheckOptions::default())
        .unwrap();
    let base = serve_health(&health).await;

    let (status, json) = get_json(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "pass");
    assert_eq!(json["serviceId"], "orders");
    assert_eq!(json["version"], "1.4.0");
    assert_eq!(json["checks"]["db"][0]["status"], "pass");
    assert_eq!(json["checks"]["db"][0]["observedUnit"], "ms");
    assert!(json["checks"]["db"][0]["observedValue"].is_number());
    assert!(
        json["checks"]["db"][0]["time"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    health
        .add_readiness(
            "cache",
            failing("cache down"),
            CheckOptions::default().critical(false),
        )
        .unwrap();
    let (status, json) = get_json(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "warn");
    assert_eq!(json["checks"]["cache"][0]["status"], "warn");

    health
        .add_readiness("queue", failing("queue down"), CheckOptions::default())
        .unwrap();
    let (status, json) = get_json(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["status"], "fail");
    assert_eq!(json["checks"]["queue"][0]["status"], "fail");
}

#[tokio::test]
async fn timeout_drops_check_future() {
    let (health, _) = registry(true);
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&dropped);
    let hangs = move || {
        let guard = DropFlag(Arc::clone(&flag));
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<(), CheckError>(())
        }
    };
    health
        .add_readiness(
            "hangs",
            hangs,
            CheckOptions::default().timeout(Duration::from_millis(100)),
        )
        .unwrap();
    let base = serve_health(&health).await;

    let (status, json) = get_json(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json["checks"]["hangs"][0]["output"],
        "timed out after 100ms"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the timed-out future was not dropped"
    );
}

#[tokio::test]
async fn panicking_check_is_fail() {
    let (health, _) = registry(true);
    #[allow(clippy::panic)]
    let panics = || async {
        if true {
            panic!("invariant broken");
        }
        Ok::<(), CheckError>(())
    };
    health
        .add_readiness("panics", panics, CheckOptions::default())
        .unwrap();
    let base = serve_health(&health).await;

    let (status, json) = get_json(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json["checks"]["panics"][0]["output"],
        "check panicked: invariant broken"
    );
    let (status, _) = get(format!("{base}/health/live")).await;
    assert_eq!(status, StatusCode::OK, "the server must survive the panic");
}

#[tokio::test]
async fn cache_ttl_runs_check_once() {
    let (health, _) = registry(false);
    let runs = Arc::new(AtomicUsize::new(0));
    health
        .add_readiness(
            "db",
            counting(Arc::clone(&runs), Duration::ZERO),
            CheckOptions::default().cache_ttl(Duration::from_secs(60)),
        )
        .unwrap();
    let base = serve_health(&health).await;

    for _ in 0..2 {
        let (status, _) = get(format!("{base}/health/ready")).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_ttl_each_probe_runs_check() {
    let (health, _) = registry(false);
    let runs = Arc::new(AtomicUsize::new(0));
    health
        .add_readiness(
            "db",
            counting(Arc::clone(&runs), Duration::ZERO),
            CheckOptions::default(),
        )
        .unwrap();
    for _ in 0..3 {
        health.evaluate(Probe::Readiness, &[]).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn concurrent_probes_share_one_execution() {
    let (health, _) = registry(false);
    let runs = Arc::new(AtomicUsize::new(0));
    health
        .add_readiness(
            "slow",
            counting(Arc::clone(&runs), Duration::from_millis(200)),
            CheckOptions::default(),
        )
        .unwrap();

    let (first, second) = tokio::join!(
        health.evaluate(Probe::Readiness, &[]),
        health.evaluate(Probe::Readiness, &[])
    );
    assert_eq!(first.status, Status::Pass);
    assert_eq!(second.status, Status::Pass);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn checks_of_a_probe_run_concurrently() {
    let (health, _) = registry(false);
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    for name in ["first", "second"] {
        let running = Arc::clone(&running);
        let max_running = Arc::clone(&max_running);
        let check = move || {
            let running = Arc::clone(&running);
            let max_running = Arc::clone(&max_running);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max_running.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), CheckError>(())
            }
        };
        health
            .add_readiness(name, check, CheckOptions::default())
            .unwrap();
    }

    let report = health.evaluate(Probe::Readiness, &[]).await;
    assert_eq!(report.checks.len(), 2);
    assert_eq!(max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn startup_503_until_mark_started() {
    let metrics = Registry::default();
    let health = HealthRegistry::new(&config(false), &service(), &metrics).unwrap();
    health
        .add_startup("migrations", passing(), CheckOptions::default())
        .unwrap();
    let base = serve_health(&health).await;

    let (status, json) = get_json(format!("{base}/health/startup")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["output"], "the service has not finished starting");
    let (status, _) = get(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = get(format!("{base}/health/live")).await;
    assert_eq!(status, StatusCode::OK);

    health.mark_started();
    let (status, _) = get(format!("{base}/health/startup")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn readiness_503_after_shutting_down() {
    let (health, _) = registry(false);
    health
        .add_readiness("db", passing(), CheckOptions::default())
        .unwrap();
    let base = serve_health(&health).await;
    let (status, _) = get(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::OK);

    health.set_shutting_down();
    let (status, json) = get_json(format!("{base}/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["output"], "the service is shutting down");
    let (status, _) = get(format!("{base}/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = get(format!("{base}/health/live")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn verbose_output_and_exclude() {
    let (health, _) = registry(false);
    let runs = Arc::new(AtomicUsize::new(0));
    health
        .add_readiness("db", passing(), CheckOptions::default())
        .unwrap();
    health
        .add_readiness("search", failing("index missing"), CheckOptions::default())
        .unwrap();
    health
        .add_readiness(
            "cache",
            counting(Arc::clone(&runs), Duration::ZERO),
            CheckOptions::default(),
        )
        .unwrap();
    let base = serve_health(&health).await;

    let response = reqwest::get(format!("{base}/health/ready?verbose"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "[+]db ok\n[-]search failed: reason withheld\n[+]cache ok\nreadyz check failed\n"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let (status, text) = get(format!(
        "{base}/health/ready?verbose&exclude=search&exclude=cache&exclude=nope"
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        text,
        "[+]db ok\n[+]search excluded: ok\n[+]cache excluded: ok\n\
         warn: some health checks cannot be excluded: no matches for \"nope\"\n\
         readyz check passed\n"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "an excluded check must not run"
    );
}

#[tokio::test]
async fn details_withheld_unless_exposed() {
    for expose_details in [false, true] {
        let (health, _) = registry(expose_details);
        health
            .add_readiness(
                "db",
                failing("password authentication failed"),
                CheckOptions::default(),
            )
            .unwrap();
        let base = serve_health(&health).await;

        let (_, json) = get_json(format!("{base}/health/ready")).await;
        let (_, text) = get(format!("{base}/health/ready?verbose")).await;
        if expose_details {
            assert_eq!(
                json["checks"]["db"][0]["output"],
                "password authentication failed"
            );
            assert!(
                text.contains("[-]db failed: password authentication failed"),
                "{text}"
            );
        } else {
            assert!(json["checks"]["db"][0].get("output").is_none(), "{json}");
            assert!(!text.contains("password"), "{text}");
        }
    }
}

#[tokio::test]
async fn all_endpoint_lists_every_probe() {
    let (health, _) = registry(false);
    health
        .add_liveness("memory", passing(), CheckOptions::default())
        .unwrap();
    health
        .add(
            "db",
            &[Probe::Startup, Probe::Readiness],
            passing(),
            CheckOptions::default(),
        )
        .unwrap();
    let base = serve_health(&health).await;

    let (status, json) = get_json(format!("{base}/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["checks"].as_object().unwrap().len(), 2);
    let (_, json) = get_json(format!("{base}/health/live")).await;
    assert!(json["checks"].get("db").is_none(), "{json}");
}

#[test]
fn duplicate_name_rejected() {
    let (health, _) = registry(false);
    health
        .add_startup("db", passing(), CheckOptions::default())
        .unwrap();
    let error = health
        .add_readiness("db", passing(), CheckOptions::default())
        .unwrap_err();
    assert!(matches!(error, HealthError::DuplicateName { .. }));
    assert!(error.to_string().contains("\"db\""), "{error}");
}

#[tokio::test]
async fn check_metrics_exported() {
    let (health, metrics) = registry(false);
    health
        .add_readiness("up", passing(), CheckOptions::default())
        .unwrap();
    health
        .add_readiness("down", failing("no"), CheckOptions::default())
        .unwrap();
    let before = metrics.encode(Format::PrometheusText).unwrap();
    assert!(
        !before.contains("obskit_health_check_status{"),
        "a check that never ran must have no series:\n{before}"
    );
    health.evaluate(Probe::Readiness, &[]).await;

    let text = metrics.encode(Format::PrometheusText).unwrap();
    for line in [
        "obskit_health_check_status{check=\"up\"} 1",
        "obskit_health_check_status{check=\"down\"} 0",
        "obskit_health_check_duration_seconds_count{check=\"up\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn tcp_check_against_loopback() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap();
    assert_eq!(TcpCheck::new(open.to_string()).check().await, Ok(()));

    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let error = TcpCheck::new(closed.to_string()).check().await.unwrap_err();
    assert!(error.message().contains(&closed.to_string()), "{error}");
}

#[tokio::test]
async fn http_check_against_loopback() {
    let app = Router::new()
        .route("/ok", routing::get(|| async { "fine" }))
        .route(
            "/broken",
            routing::get(|| async { (AxumStatus::INTERNAL_SERVER_ERROR, "broken") }),
        );
    let base = serve(app).await;

    let ok = HttpCheck::new(&format!("{base}/ok")).unwrap();
    assert_eq!(ok.check().await, Ok(()));
    // A second run reuses the pooled connection.
    assert_eq!(ok.check().await, Ok(()));

    let broken = HttpCheck::new(&format!("{base}/broken")).unwrap();
    let error = broken.check().await.unwrap_err();
    assert!(error.message().contains("500"), "{error}");

    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let unreachable = HttpCheck::new(&format!("http://{closed}/")).unwrap();
    let error = unreachable.check().await.unwrap_err();
    assert!(error.message().starts_with("GET "), "{error}");
}

#[tokio::test]
async fn disk_space_check_on_temp_dir() {
    let directory = tempfile::tempdir().unwrap();
    let enough = DiskSpaceCheck::new(directory.path(), 1);
    assert!(enough.free_bytes().unwrap() > 0);
    assert_eq!(enough.check().await, Ok(()));

    let too_much = DiskSpaceCheck::new(directory.path(), u64::MAX);
    let error = too_much.check().await.unwrap_err();
    assert!(error.message().contains("below the minimum"), "{error}");

    let missing = DiskSpaceCheck::new(directory.path().join("absent"), 1);
    let error = missing.check().await.unwrap_err();
    assert!(error.message().contains("statvfs"), "{error}");
}

#[tokio::test]
async fn memory_check_limits() {
    assert_eq!(MemoryCheck::new(u64::MAX).check().await, Ok(()));
    let error = MemoryCheck::new(1).check().await.unwrap_err();
    assert!(error.message().contains("resident memory"), "{error}");
}

#[tokio::test]
async fn single_check_endpoint() {
    let (health, _) = registry(false);
    health
        .add_readiness("db", passing(), CheckOptions::default())
        .unwrap();
    health
        .add_readiness("search", failing("index missing"), CheckOptions::default())
        .unwrap();
    health
        .add_liveness("memory", passing(), CheckOptions::default())
        .unwrap();
    health.set_shutting_down();
    let base = serve_health(&health).await;

    let (status, json) = get_json(format!("{base}/health/ready/db")).await;
    assert_eq!(status, StatusCode::OK, "gates do not apply to one check");
    assert_eq!(json["checks"].as_object().unwrap().len(), 1);
    assert_eq!(json["checks"]["db"][0]["status"], "pass");

    let (status, text) = get(format!("{base}/health/ready/search?verbose")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        text,
        "[-]search failed: reason withheld\nreadyz check failed\n"
    );

    let (status, text) = get(format!("{base}/health/ready/memory")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(text, "no readyz check named \"memory\"\n");
    let (status, _) = get(format!("{base}/health/live/memory")).await;
    assert_eq!(status, StatusCode::OK);
}
