//! The composed policy and the tower layers: order of the parts, what the breaker records,
//! and the client and server layers over loopback HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail by panicking"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use obskit::metrics::{Format, Registry};
use obskit::resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, Outcome};
use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
use obskit::resilience::rate_limit::{Quota, RateLimiter};
use obskit::resilience::retry::{Jitter, Retry, RetryPolicy};
use obskit::resilience::timeout::Timeout;
use obskit::resilience::{
    Error, LoadShedLayer, ManualClock, Policy, PolicyLayer, State as BreakerState,
};
use tower::{ServiceBuilder, ServiceExt as _};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, PartialEq)]
struct Failed(&'static str);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn sample(registry: &Registry, series: &str) -> f64 {
    let text = registry.encode(Format::PrometheusText).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

fn breaker(registry: &Registry, clock: &ManualClock, window: u32) -> CircuitBreaker {
    CircuitBreaker::builder("dependency")
        .config(CircuitBreakerConfig {
            sliding_window_size: window,
            minimum_number_of_calls: window,
            failure_rate_threshold: 50.0,
            wait_duration_in_open_state: Duration::from_secs(30),
            permitted_number_of_calls_in_half_open_state: 1,
            ..CircuitBreakerConfig::default()
        })
        .registry(registry)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn retry<E>(registry: &Registry, attempts: u32) -> Retry<E> {
    Retry::with_registry(
        "dependency",
        RetryPolicy::new()
            .max_attempts(attempts)
            .base_delay(Duration::from_millis(1))
            .jitter(Jitter::None),
        registry,
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retry_stops_at_open_breaker() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let policy = Policy::builder("dependency")
        .retry(retry(&registry, 10))
        .circuit_breaker(breaker(&registry, &clock, 4))
        .build();
    let calls = AtomicU32::new(0);

    let result: Result<(), Error<Failed>> = policy
        .call(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Failed("down")) }
        })
        .await;

    // Four failures fill the window and open the breaker; the fifth attempt is rejected and
    // a rejection is not retried.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    match result {
        Err(Error::NotPermitted { state, .. }) => assert_eq!(state, BreakerState::Open),
        other => panic!("expected the open breaker's rejection, got {other:?}"),
    }
    let failures = r#"obskit_circuit_breaker_calls_total{name="dependency",outcome="failure"}"#;
    assert_eq!(sample(&registry, failures), 4.0);
    let rejected =
        r#"obskit_circuit_breaker_calls_total{name="dependency",outcome="not_permitted"}"#;
    assert_eq!(sample(&registry, rejected), 1.0);
}

#[tokio::test(start_paused = true)]
async fn timeout_is_breaker_failure() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let policy = Policy::builder("dependency")
        .circuit_breaker(breaker(&registry, &clock, 10))
        .timeout(
            Timeout::with_registry("dependency", Duration::from_millis(50), &registry).unwrap(),
        )
        .build();
    let finished = Arc::new(AtomicU32::new(0));

    let result: Result<(), Error<Failed>> = policy
        .call(|| {
            let finished = Arc::clone(&finished);
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await;

    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the timed-out call ran on"
    );
    let failures = r#"obskit_circuit_breaker_calls_total{name="dependency",outcome="failure"}"#;
    assert_eq!(sample(&registry, failures), 1.0);
    assert_eq!(
        sample(&registry, r#"obskit_timeouts_total{name="dependency"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_frees_half_open_probe() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let breaker = breaker(&registry, &clock, 2);
    breaker.transition_to_half_open();
    let limiter = RateLimiter::builder("dependency", Quota::per_minute(1).unwrap())
        .registry(&registry)
        .build()
        .unwrap();
    limiter.check().unwrap();
    let policy = Policy::builder("dependency")
        .circuit_breaker(breaker.clone())
        .rate_limiter(Arc::new(limiter))
        .build();

    let result: Result<(), Error<Failed>> = policy.call(|| async { Ok(()) }).await;

    assert!(
        matches!(result, Err(Error::RateLimited { .. })),
        "{result:?}"
    );
    // The only probe slot is free again: a local rejection is no evidence about the dependency.
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let probe = breaker.try_acquire().unwrap();
    probe.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn full_bulkhead_ignored_not_retried() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let bulkhead = Bulkhead::with_registry(
        "dependency",
        BulkheadConfig {
            max_concurrent: 1,
            max_wait: Duration::ZERO,
        },
        &registry,
    )
    .unwrap();
    let occupied = bulkhead.try_acquire().unwrap();
    let policy = Policy::builder("dependency")
        .retry(retry(&registry, 3))
        .circuit_breaker(breaker(&registry, &clock, 2))
        .bulkhead(bulkhead)
        .build();
    let calls = AtomicU32::new(0);

    let result: Result<(), Error<Failed>> = policy
        .call(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await;

    assert!(
        matches!(result, Err(Error::BulkheadFull { .. })),
        "{result:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the operation is built once"
    );
    let ignored = r#"obskit_circuit_breaker_calls_total{name="dependency",outcome="ignored"}"#;
    assert_eq!(sample(&registry, ignored), 1.0);
    drop(occupied);
    let ok: Result<(), Error<Failed>> = policy.call(|| async { Ok(()) }).await;
    assert!(ok.is_ok());
}

#[tokio::test(start_paused = true)]
async fn classifier_ignored_errors_skip_rate() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let breaker = breaker(&registry, &clock, 4);
    let policy = Policy::builder("dependency")
        .circuit_breaker(breaker.clone())
        .classify(|error: &Failed| match error.0 {
            "not found" => Outcome::Ignored,
            _ => Outcome::Failure,
        })
        .build();

    for _ in 0..8 {
        let result: Result<(), Error<Failed>> =
            policy.call(|| async { Err(Failed("not found")) }).await;
        assert_eq!(result.unwrap_err().into_inner(), Some(Failed("not found")));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    for _ in 0..4 {
        let _ = policy.call(|| async { Err::<(), _>(Failed("down")) }).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    address
}

#[tokio::test]
async fn client_layer_retries_server_errors() {
    let hits = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/pay",
            get(|State(hits): State<Arc<AtomicU32>>| async move {
                if hits.fetch_add(1, Ordering::SeqCst) < 2 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }),
        )
        .with_state(Arc::clone(&hits));
    let address = serve(app).await;

    let registry = Registry::default();
    let policy: Policy<BoxError> = Policy::builder("pay")
        .retry(retry(&registry, 3))
        .circuit_breaker(
            CircuitBreaker::builder("pay")
                .registry(&registry)
                .build()
                .unwrap(),
        )
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let service = ServiceBuilder::new()
        .layer(PolicyLayer::new(policy).error_for_response(
            |response: &http::Response<hyper::body::Incoming>| {
                response
                    .status()
                    .is_server_error()
                    .then(|| BoxError::from(format!("server responded {}", response.status())))
            },
        ))
        .map_err(BoxError::from)
        .service(client);
    let request = http::Request::get(format!("http://{address}/pay"))
        .body(Full::new(Bytes::new()))
        .unwrap();

    let response = service.clone().oneshot(request.clone()).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let _ = response.into_body().collect().await.unwrap();
    let retried = r#"obskit_retry_attempts_total{name="dependency",outcome="retry"}"#;
    assert_eq!(sample(&registry, retried), 2.0);
    let failures = r#"obskit_circuit_breaker_calls_total{name="pay",outcome="failure"}"#;
    assert_eq!(sample(&registry, failures), 2.0);

    // With the server failing for good, the caller gets the error after the last attempt.
    hits.store(0, Ordering::SeqCst);
    let app_down = Router::new().route("/pay", get(|| async { StatusCode::BAD_GATEWAY }));
    let down = serve(app_down).await;
    let request = http::Request::get(format!("http://{down}/pay"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = service.oneshot(request).await.unwrap_err();
    assert_eq!(error.to_string(), "server responded 502 Bad Gateway");
}

#[tokio::test]
async fn load_shed_layer_503_and_504() {
    let registry = Registry::default();
    let release = Arc::new(tokio::sync::Notify::new());
    let app = Router::new()
        .route(
            "/work",
            get(
                |State(release): State<Arc<tokio::sync::Notify>>| async move {
                    release.notified().await;
                    "done"
                },
            ),
        )
        .route(
            "/late",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .with_state(Arc::clone(&release))
        .layer(
            LoadShedLayer::new()
                .bulkhead(
                    Bulkhead::with_registry(
                        "api",
                        BulkheadConfig {
                            max_concurrent: 1,
                            max_wait: Duration::ZERO,
                        },
                        &registry,
                    )
                    .unwrap(),
                )
                .timeout(Timeout::with_registry("api", Duration::from_secs(1), &registry).unwrap()),
        );
    let address = serve(app).await;
    let client = reqwest::Client::new();

    let first = tokio::spawn({
        let client = client.clone();
        async move { client.get(format!("http://{address}/work")).send().await }
    });
    // Wait until the first request takes the only slot.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sample(&registry, r#"obskit_bulkhead_concurrent_calls{name="api"}"#) < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first request never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let shed = client
        .get(format!("http://{address}/work"))
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert_eq!(body["status"], 503);

    release.notify_one();
    let first = first.await.unwrap().unwrap();
    // The first request may have run out of time while it waited; it must not have been shed.
    assert_ne!(first.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    let late = client
        .get(format!("http://{address}/late"))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), reqwest::StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        sample(&registry, r#"obskit_bulkhead_rejections_total{name="api"}"#),
        1.0
    );
    assert!(sample(&registry, r#"obskit_timeouts_total{name="api"}"#) >= 1.0);
}
