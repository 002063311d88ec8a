//! Graceful shutdown over real loopback sockets.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use obskit::config::ShutdownConfig;
use obskit::shutdown::{HookOutcome, Shutdown};
use parking_lot::Mutex;

fn config(pre_stop: u64, timeout: u64) -> ShutdownConfig {
    ShutdownConfig {
        pre_stop_delay: Duration::from_millis(pre_stop),
        timeout: Duration::from_millis(timeout),
        hook_timeout: Duration::from_millis(200),
    }
}

async fn bind() -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test]
async fn in_flight_request_completes() {
    let shutdown = Shutdown::new(&config(0, 5_000));
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            "finished"
        }),
    );
    let (listener, addr) = bind().await;
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.serve(listener, app).await }
    });

    let request = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.trigger();

    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    let report = server.await.unwrap().unwrap();
    assert!(report.drained);
}

#[tokio::test]
async fn readiness_fails_during_pre_stop_delay() {
    let shutdown = Shutdown::new(&config(600, 5_000));
    let ready = Arc::new(AtomicBool::new(true));
    shutdown.on_trigger({
        let ready = ready.clone();
        move || ready.store(false, Ordering::SeqCst)
    });
    let app = Router::new().route(
        "/ready",
        get({
            let ready = ready.clone();
            move || async move {
                if ready.load(Ordering::SeqCst) {
                    http::StatusCode::OK
                } else {
                    http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let (listener, addr) = bind().await;
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.serve(listener, app).await }
    });
    let client = reqwest::Client::new();
    let before = client
        .get(format!("http://{addr}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), 200);

    let triggered_at = Instant::now();
    shutdown.trigger();
    // Still accepting during the pre-stop delay, and reporting not ready.
    let during = client
        .get(format!("http://{addr}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(during.status(), 503);
    assert!(triggered_at.elapsed() < Duration::from_millis(600));

    let report = server.await.unwrap().unwrap();
    assert!(report.drained);
    assert!(triggered_at.elapsed() >= Duration::from_millis(600));

    // After shutdown the listener is closed.
    let after = reqwest::Client::new()
        .get(format!("http://{addr}/ready"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "listener still open after shutdown");
}

#[tokio::test]
async fn hooks_run_in_order_with_timeouts() {
    let shutdown = Shutdown::new(&config(0, 1_000));
    let order = Arc::new(Mutex::new(Vec::new()));
    for name in ["first", "second"] {
        let order = order.clone();
        shutdown.add_hook(name, None, move || async move { order.lock().push(name) });
    }
    shutdown.add_hook("stuck", Some(Duration::from_millis(100)), || {
        std::future::pending::<()>()
    });
    shutdown.add_hook("panics", None, || async {
        #[allow(clippy::panic)]
        if true {
            panic!("hook failure");
        }
    });
    {
        let order = order.clone();
        shutdown.add_hook(
            "last",
            None,
            move || async move { order.lock().push("last") },
        );
    }

    let (listener, _addr) = bind().await;
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.serve(listener, Router::new()).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    shutdown.trigger();
    let report = server.await.unwrap().unwrap();

    assert_eq!(*order.lock(), vec!["first", "second", "last"]);
    let outcomes: Vec<_> = report
        .hooks
        .iter()
        .map(|hook| (hook.name.as_str(), hook.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("first", HookOutcome::Completed),
            ("second", HookOutcome::Completed),
            ("stuck", HookOutcome::TimedOut),
            ("panics", HookOutcome::Panicked),
            ("last", HookOutcome::Completed),
        ]
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn drain_stops_at_timeout() {
    let shutdown = Shutdown::new(&config(0, 300));
    let app = Router::new().route("/forever", get(std::future::pending::<&'static str>));
    let (listener, addr) = bind().await;
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.serve(listener, app).await }
    });
    let request = tokio::spawn(reqwest::get(format!("http://{addr}/forever")));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    shutdown.trigger();
    let report = server.await.unwrap().unwrap();
    assert!(!report.drained);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        request.await.unwrap().is_err(),
        "stuck request was not cut off"
    );
}

#[tokio::test]
async fn second_run_is_rejected() {
    let shutdown = Shutdown::new(&config(0, 100));
    shutdown.trigger();
    let first = shutdown.run(async { Ok(()) }).await;
    assert!(first.is_ok());
    let second = shutdown.run(async { Ok(()) }).await;
    assert!(matches!(
        second,
        Err(obskit::shutdown::ShutdownError::AlreadyRan)
    ));
}
