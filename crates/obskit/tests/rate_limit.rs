//! End-to-end tests of rate limiting: 429 and RateLimit headers over loopback HTTP, per-key
//! isolation, refill on a manual clock, bounded key memory, and the decision counters.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/promtool.rs"]
mod promtool;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use governor::clock::Clock;
use http::HeaderName;
use obskit::metrics::{Format, Registry};
use obskit::resilience::ManualClock;
use obskit::resilience::rate_limit::{
    KeyExtractor, KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter,
};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

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

fn app<C>(layer: RateLimitLayer<C>) -> Router
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(layer)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("missing {name} in {headers:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn over_quota_gets_429_with_headers_and_problem() {
    let registry = Registry::default();
    let layer = RateLimiter::builder("orders", Quota::per_minute(2).unwrap())
        .registry(&registry)
        .layer(KeyExtractor::PeerAddr)
        .unwrap();
    let base = serve(app(layer)).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/orders");

    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        header(first.headers(), "ratelimit-policy"),
        "\"orders\";q=2;w=60"
    );
    assert_eq!(header(first.headers(), "ratelimit"), "\"orders\";r=1;t=30");
    assert_eq!(first.text().await.unwrap(), "orders");

    let second = client.get(&url).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let limit = header(second.headers(), "ratelimit").to_owned();
    assert!(
        limit == "\"orders\";r=0;t=30" || limit == "\"orders\";r=0;t=29",
        "{limit}"
    );

    let rejected = client.get(&url).send().await.unwrap();
    assert_eq!(rejected.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = rejected.headers().clone();
    let retry_after: u64 = header(&headers, RETRY_AFTER.as_str()).parse().unwrap();
    assert!(
        (29..=30).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(
        header(&headers, "ratelimit"),
        format!("\"orders\";r=0;t={retry_after}")
    );
    assert_eq!(header(&headers, "ratelimit-policy"), "\"orders\";q=2;w=60");
    assert_eq!(
        header(&headers, CONTENT_TYPE.as_str()),
        "application/problem+json"
    );
    let problem: serde_json::Value = rejected.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["violated-policies"][0], "orders");
    assert!(
        problem["detail"].as_str().unwrap().contains("orders"),
        "{problem}"
    );

    let text = registry.encode(Format::PrometheusText).unwrap();
    assert!(
        text.contains("obskit_rate_limit_decisions_total{name=\"orders\",decision=\"allowed\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("obskit_rate_limit_decisions_total{name=\"orders\",decision=\"rejected\"} 1"),
        "{text}"
    );
    promtool::check_metrics(&text);
}

#[tokio::test]
async fn api_keys_limited_separately() {
    let layer = RateLimiter::builder("per_key", Quota::per_minute(1).unwrap())
        .registry(&Registry::default())
        .layer(KeyExtractor::Header(API_KEY))
        .unwrap();
    let base = serve(app(layer)).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/orders");
    let send = |key: &'static str| client.get(&url).header(API_KEY, key).send();

    assert_eq!(send("key-a").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        send("key-a").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send("key-b").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        send("key-b").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // Without the header the request falls back to the peer address, a key of its own.
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
}

#[tokio::test]
async fn custom_key_limits_per_tenant() {
    let by_tenant = KeyExtractor::custom(|parts| {
        parts
            .uri
            .query()?
            .strip_prefix("tenant=")
            .map(str::to_owned)
    });
    let layer = RateLimiter::builder("tenants", Quota::per_minute(1).unwrap())
        .registry(&Registry::default())
        .layer(by_tenant)
        .unwrap();
    let base = serve(app(layer)).await;
    let client = reqwest::Client::new();
    let get = |tenant: &str| client.get(format!("{base}/orders?tenant={tenant}")).send();

    assert_eq!(get("acme").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get("acme").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(get("globex").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn quota_refills_as_clock_advances() {
    let clock = ManualClock::new();
    let quota = Quota::new(1, Duration::from_secs(10))
        .unwrap()
        .with_burst(2)
        .unwrap();
    let layer = RateLimiter::builder("refill", quota)
        .registry(&Registry::default())
        .clock(clock.clone())
        .layer(KeyExtractor::PeerAddr)
        .unwrap();
    let base = serve(app(layer)).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/orders");

    let first = client.get(&url).send().await.unwrap();
    assert_eq!(header(first.headers(), "ratelimit"), "\"refill\";r=1;t=10");
    let second = client.get(&url).send().await.unwrap();
    assert_eq!(header(second.headers(), "ratelimit"), "\"refill\";r=0;t=10");
    let rejected = client.get(&url).send().await.unwrap();
    assert_eq!(rejected.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(rejected.headers(), "retry-after"), "10");
    assert_eq!(
        header(rejected.headers(), "ratelimit"),
        "\"refill\";r=0;t=10"
    );

    clock.advance(Duration::from_millis(9_500));
    let still = client.get(&url).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(still.headers(), "retry-after"),
        "1",
        "0.5 s rounds up"
    );

    clock.advance(Duration::from_millis(500));
    let refilled = client.get(&url).send().await.unwrap();
    assert_eq!(refilled.status(), StatusCode::OK);
    assert_eq!(
        header(refilled.headers(), "ratelimit"),
        "\"refill\";r=0;t=10"
    );

    clock.advance(Duration::from_secs(30));
    let full = client.get(&url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(header(full.headers(), "ratelimit"), "\"refill\";r=1;t=10");
}

#[test]
fn random_keys_stay_within_max_keys() {
    const MAX_KEYS: usize = 1_000;
    let registry = Registry::default();
    let limiter: KeyedRateLimiter<u64> =
        RateLimiter::builder("flood", Quota::per_minute(10).unwrap())
            .registry(&registry)
            .max_keys(MAX_KEYS)
            .build_keyed()
            .unwrap();
    let mut rng = fastrand::Rng::with_seed(7);

    for _ in 0..MAX_KEYS {
        limiter.check_key(&rng.u64(..)).unwrap();
    }
    assert_eq!(limiter.len(), MAX_KEYS);

    let mut max_seen = 0;
    let counted = allocation_counter::measure(|| {
        for _ in 0..100_000 {
            limiter.check_key(&rng.u64(..)).unwrap();
            max_seen = max_seen.max(limiter.len());
        }
    });
    assert_eq!(max_seen, MAX_KEYS);
    assert!(
        counted.bytes_current <= 64 * 1024,
        "a full store grew by {} bytes under new keys",
        counted.bytes_current
    );
    assert!(
        counted.bytes_max <= 256 * 1024,
        "a full store peaked {} bytes above its start",
        counted.bytes_max
    );

    let text = registry.encode(Format::PrometheusText).unwrap();
    let evictions: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("obskit_rate_limit_evictions_total{name=\"flood\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(evictions, 100_000, "every new key pushed out a busy one");
}
