//! End-to-end tests of retry, bulkhead and timeout against an HTTP server on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail by panicking"
)]

#[path = "support/promtool.rs"]
mod promtool;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use axum::response::IntoResponse;
use axum::routing::get;
use obskit::metrics::{Format, Registry};
use obskit::resilience::Error;
use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
use obskit::resilience::retry::{
    Jitter, Retry, RetryBudget, RetryBudgetConfig, RetryPolicy, retry_after_from_headers,
};
use obskit::resilience::timeout::Timeout;

/// Requests the server has received, per route.
#[derive(Default)]
struct Hits {
    throttled: AtomicU32,
    down: AtomicU32,
    slow_once: AtomicU32,
}

async fn throttled(State(hits): State<Arc<Hits>>, Path(form): Path<String>) -> impl IntoResponse {
    if hits.throttled.fetch_add(1, Ordering::SeqCst) > 0 {
        return (StatusCode::OK, HeaderMap::new(), "ok");
    }
    let value = match form.as_str() {
        "seconds" => "1".to_owned(),
        "date" => httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2)),
        _ => "soon".to_owned(),
    };
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, value.parse().unwrap());
    (StatusCode::SERVICE_UNAVAILABLE, headers, "busy")
}

async fn down(State(hits): State<Arc<Hits>>) -> StatusCode {
    hits.down.fetch_add(1, Ordering::SeqCst);
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn slow_once(State(hits): State<Arc<Hits>>) -> &'static str {
    if hits.slow_once.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    "done"
}

async fn serve() -> (SocketAddr, Arc<Hits>) {
    let hits = Arc::new(Hits::default());
    let app = Router::new()
        .route("/throttled/{form}", get(throttled))
        .route("/down", get(down))
        .route("/slow-once", get(slow_once))
        .with_state(Arc::clone(&hits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, hits)
}

/// A failed HTTP request: its status (0 when no response came) and its `Retry-After`.
#[derive(Debug)]
struct HttpFailure {
    status: u16,
    retry_after: Option<Duration>,
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, HttpFailure> {
    let response = client.get(url).send().await.map_err(|_| HttpFailure {
        status: 0,
        retry_after: None,
    })?;
    if !response.status().is_success() {
        return Err(HttpFailure {
            status: response.status().as_u16(),
            retry_after: retry_after_from_headers(response.headers()),
        });
    }
    Ok(response.text().await.unwrap())
}

fn http_policy() -> RetryPolicy<HttpFailure> {
    RetryPolicy::new()
        .base_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
        .retry_if(|failure: &HttpFailure| matches!(failure.status, 0 | 429 | 500..=599))
        .retry_after(|failure: &HttpFailure| failure.retry_after)
}

/// Returns the value of `series` in exposition `text`, 0 when it is missing.
fn sample(text: &str, series: &str) -> u64 {
    let value: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap());
    assert!(value >= 0.0, "{series} is {value}");
    assert_eq!(value.fract(), 0.0, "{series} is {value}");
    value as u64
}

#[tokio::test]
async fn retry_after_seconds_from_503_is_honoured() {
    let (address, hits) = serve().await;
    let registry = Registry::default();
    let retry = Retry::with_registry("throttled", http_policy(), &registry).unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{address}/throttled/seconds");

    let start = Instant::now();
    let body = retry.call(|| get_text(&client, &url)).await.unwrap();

    assert_eq!(body, "ok");
    assert_eq!(hits.throttled.load(Ordering::SeqCst), 2);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    let text = registry.encode(Format::PrometheusText).unwrap();
    let series = r#"obskit_retry_attempts_total{name="throttled",outcome="retry"}"#;
    assert_eq!(sample(&text, series), 1);
}

#[tokio::test]
async fn retry_after_date_from_503_is_honoured() {
    let (address, hits) = serve().await;
    let retry = Retry::with_registry("dated", http_policy(), &Registry::default()).unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{address}/throttled/date");

    let start = Instant::now();
    retry.call(|| get_text(&client, &url)).await.unwrap();

    assert_eq!(hits.throttled.load(Ordering::SeqCst), 2);
    // The date has whole seconds, so two seconds ahead is between one and two from now.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
}

#[tokio::test]
async fn invalid_retry_after_falls_back_to_backoff() {
    let (address, hits) = serve().await;
    let retry = Retry::with_registry("vague", http_policy(), &Registry::default()).unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{address}/throttled/vague");

    let start = Instant::now();
    retry.call(|| get_text(&client, &url)).await.unwrap();

    assert_eq!(hits.throttled.load(Ordering::SeqCst), 2);
    let waited = start.elapsed();
    assert!(waited < Duration::from_millis(900), "waited {waited:?}");
}

#[tokio::test]
async fn retry_after_beyond_deadline_returns_the_503() {
    let (address, hits) = serve().await;
    let policy = http_policy().max_elapsed(Duration::from_millis(500));
    let retry = Retry::with_registry("hurried", policy, &Registry::default()).unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{address}/throttled/seconds");

    let start = Instant::now();
    let error = retry.call(|| get_text(&client, &url)).await.unwrap_err();

    let failure = error.into_inner().unwrap();
    assert_eq!(failure.status, 503);
    assert_eq!(failure.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(hits.throttled.load(Ordering::SeqCst), 1);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn budget_bounds_retries_of_a_sustained_outage() {
    let (address, hits) = serve().await;
    let registry = Registry::default();
    // 1000 failing calls within one ttl: at most 0.1 * 1000 + 1 * 60 = 160 retries.
    let budget = RetryBudget::new(RetryBudgetConfig {
        ttl: Duration::from_secs(60),
        min_retries_per_sec: 1,
        retry_ratio: 0.1,
    })
    .unwrap();
    let policy = http_policy().max_attempts(3).jitter(Jitter::Full);
    let retry = Retry::with_registry("outage", policy, &registry)
        .unwrap()
        .with_budget(budget.clone());
    // A second retry sharing the budget draws from the same pool.
    let other = Retry::with_registry("outage_other", http_policy(), &registry)
        .unwrap()
        .with_budget(budget);
    let client = reqwest::Client::new();
    let url = format!("http://{address}/down");

    for call in 0..1000 {
        let retry = if call % 2 == 0 { &retry } else { &other };
        let error = retry.call(|| get_text(&client, &url)).await.unwrap_err();
        assert_eq!(error.into_inner().unwrap().status, 500);
    }

    let requests = u64::from(hits.down.load(Ordering::SeqCst));
    let retries = requests - 1000;
    assert!(retries <= 160, "{retries} retries");
    assert!(retries >= 155, "{retries} retries");
    let text = registry.encode(Format::PrometheusText).unwrap();
    let exhausted = sample(
        &text,
        r#"obskit_retry_budget_exhausted_total{name="outage"}"#,
    ) + sample(
        &text,
        r#"obskit_retry_budget_exhausted_total{name="outage_other"}"#,
    );
    let spent = sample(
        &text,
        r#"obskit_retry_attempts_total{name="outage",outcome="retry"}"#,
    ) + sample(
        &text,
        r#"obskit_retry_attempts_total{name="outage_other",outcome="retry"}"#,
    );
    assert_eq!(spent, retries);
    assert!(exhausted >= 800, "{exhausted} budget exhaustions");
}

#[tokio::test]
async fn composed_timeout_is_retried() {
    let (address, hits) = serve().await;
    let registry = Registry::default();
    let retry = Retry::with_registry("composed", http_policy(), &registry).unwrap();
    let timeout =
        Timeout::with_registry("composed", Duration::from_millis(300), &registry).unwrap();
    let config = BulkheadConfig {
        max_concurrent: 2,
        max_wait: Duration::ZERO,
    };
    let bulkhead = Bulkhead::with_registry("composed", config, &registry).unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{address}/slow-once");

    let start = Instant::now();
    let body = retry
        .call_with_rejections(|| {
            timeout.call_with_rejections(bulkhead.call(get_text(&client, &url)))
        })
        .await
        .unwrap();

    assert_eq!(body, "done");
    assert_eq!(hits.slow_once.load(Ordering::SeqCst), 2);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(bulkhead.available_permits(), 2);
    let text = registry.encode(Format::PrometheusText).unwrap();
    assert_eq!(
        sample(&text, r#"obskit_timeouts_total{name="composed"}"#),
        1
    );
    assert_eq!(
        sample(
            &text,
            r#"obskit_retry_attempts_total{name="composed",outcome="retry"}"#
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            r#"obskit_retry_attempts_total{name="composed",outcome="success"}"#
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            r#"obskit_bulkhead_concurrent_calls{name="composed"}"#
        ),
        0
    );
}

#[tokio::test]
async fn full_bulkhead_is_not_retried() {
    let (address, _hits) = serve().await;
    let registry = Registry::default();
    let retry = Retry::with_registry("guarded", http_policy(), &registry).unwrap();
    let config = BulkheadConfig {
        max_concurrent: 1,
        max_wait: Duration::ZERO,
    };
    let bulkhead = Bulkhead::with_registry("guarded", config, &registry).unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{address}/slow-once");

    let _only_permit = bulkhead.try_acquire().unwrap();
    let error = retry
        .call_with_rejections(|| bulkhead.call(get_text(&client, &url)))
        .await
        .unwrap_err();

    assert!(matches!(
        error,
        Error::BulkheadFull {
            max_concurrent: 1,
            ..
        }
    ));
    let text = registry.encode(Format::PrometheusText).unwrap();
    assert_eq!(
        sample(&text, r#"obskit_bulkhead_rejections_total{name="guarded"}"#),
        1
    );
    assert_eq!(
        sample(
            &text,
            r#"obskit_retry_attempts_total{name="guarded",outcome="not_retryable"}"#
        ),
        1
    );
}

#[tokio::test]
async fn resilience_metrics_pass_promtool() {
    let registry = Registry::default();
    let retry = Retry::with_registry("lint", RetryPolicy::<()>::new().max_attempts(1), &registry)
        .unwrap()
        .with_budget(RetryBudget::default());
    let _ = retry.call(|| async { Err::<(), ()>(()) }).await;
    let bulkhead = Bulkhead::with_registry("lint", BulkheadConfig::default(), &registry).unwrap();
    let _permit = bulkhead.try_acquire().unwrap();
    let timeout = Timeout::with_registry("lint", Duration::from_millis(1), &registry).unwrap();
    let _ = timeout.call(std::future::pending::<Result<(), ()>>()).await;

    let text = registry.encode(Format::PrometheusText).unwrap();
    assert!(text.contains("obskit_retry_attempts_total"), "{text}");
    assert!(
        text.contains("obskit_retry_budget_exhausted_total"),
        "{text}"
    );
    assert!(text.contains("obskit_bulkhead_concurrent_calls"), "{text}");
    assert!(text.contains("obskit_bulkhead_rejections_total"), "{text}");
    assert!(text.contains("obskit_timeouts_total"), "{text}");
    // promtool reads the Prometheus text format only.
    promtool::check_metrics(&text);
}
