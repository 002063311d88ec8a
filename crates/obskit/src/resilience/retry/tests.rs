use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::metrics::Format;
use crate::resilience::State;

#[derive(Debug, PartialEq)]
struct Failure {
    transient: bool,
    retry_after: Option<Duration>,
}

const TRANSIENT: Failure = Failure {
    transient: true,
    retry_after: None,
};

fn attempts(registry: &Registry, name: &str, outcome: &str) -> u64 {
    let text = registry.encode(Format::PrometheusText).unwrap();
    let series = format!("obskit_retry_attempts_total{{name=\"{name}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.parse().unwrap())
}

fn no_jitter() -> RetryPolicy<Failure> {
    RetryPolicy::new()
        .base_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(10))
        .jitter(Jitter::None)
}

/// Runs a retry whose operation always fails with `error()`, and returns the start times of
/// its attempts relative to the start of the call.
async fn failing_attempts<X>(
    retry: &Retry<Failure>,
    error: impl Fn() -> X,
    with_rejections: bool,
) -> Vec<Duration>
where
    X: Into<Error<Failure>>,
{
    let start = Instant::now();
    let starts = Mutex::new(Vec::new());
    let operation = || {
        starts.lock().unwrap().push(start.elapsed());
        let error = error().into();
        async move { Err::<(), Error<Failure>>(error) }
    };
    let result = if with_rejections {
        retry.call_with_rejections(operation).await
    } else {
        retry
            .call(|| {
                let future = operation();
                async move { future.await.map_err(|error| error.into_inner().unwrap()) }
            })
            .await
    };
    assert!(result.is_err());
    starts.into_inner().unwrap()
}

impl From<Failure> for Error<Failure> {
    fn from(failure: Failure) -> Self {
        Error::Inner(failure)
    }
}

fn millis(values: &[u64]) -> Vec<Duration> {
    values.iter().copied().map(Duration::from_millis).collect()
}

#[tokio::test(start_paused = true)]
async fn stops_after_max_attempts() {
    let registry = Registry::default();
    let retry = Retry::with_registry("orders", no_jitter().max_attempts(4), &registry).unwrap();
    let starts = failing_attempts(&retry, || TRANSIENT, false).await;
    assert_eq!(starts, millis(&[0, 100, 300, 700]));
    assert_eq!(attempts(&registry, "orders", "retry"), 3);
    assert_eq!(attempts(&registry, "orders", "exhausted"), 1);
    assert_eq!(attempts(&registry, "orders", "success"), 0);
}

#[tokio::test(start_paused = true)]
async fn one_attempt_means_no_retry() {
    let registry = Registry::default();
    let retry = Retry::with_registry("once", no_jitter().max_attempts(1), &registry).unwrap();
    let starts = failing_attempts(&retry, || TRANSIENT, false).await;
    assert_eq!(starts, millis(&[0]));
    assert_eq!(attempts(&registry, "once", "exhausted"), 1);
}

#[tokio::test(start_paused = true)]
async fn success_after_failures_is_counted() {
    let registry = Registry::default();
    let retry = Retry::with_registry("stock", no_jitter(), &registry).unwrap();
    let calls = AtomicU32::new(0);
    let value = retry
        .call(|| async {
            if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                Err(TRANSIENT)
            } else {
                Ok("ok")
            }
        })
        .await
        .unwrap();
    assert_eq!(value, "ok");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(attempts(&registry, "stock", "retry"), 1);
    assert_eq!(attempts(&registry, "stock", "success"), 1);
}

#[tokio::test(start_paused = true)]
async fn predicate_stops_retries() {
    let registry = Registry::default();
    let policy = no_jitter().retry_if(|failure: &Failure| failure.transient);
    let retry = Retry::with_registry("auth", policy, &registry).unwrap();
    let permanent = || Failure {
        transient: false,
        retry_after: None,
    };
    let starts = failing_attempts(&retry, permanent, false).await;
    assert_eq!(starts.len(), 1);
    assert_eq!(attempts(&registry, "auth", "not_retryable"), 1);
    assert_eq!(attempts(&registry, "auth", "retry"), 0);
}

#[tokio::test(start_paused = true)]
async fn deadline_stops_before_a_late_sleep() {
    let registry = Registry::default();
    let policy = no_jitter()
        .max_attempts(10)
        .max_elapsed(Duration::from_millis(1000));
    let retry = Retry::with_registry("deadline", policy, &registry).unwrap();
    let start = Instant::now();
    let starts = failing_attempts(&retry, || TRANSIENT, false).await;
    // The sleep after 700 ms would end at 1500 ms.
    assert_eq!(starts, millis(&[0, 100, 300, 700]));
    assert_eq!(start.elapsed(), Duration::from_millis(700));
    assert_eq!(attempts(&registry, "deadline", "exhausted"), 1);
}

#[tokio::test(start_paused = true)]
async fn sleep_ending_at_deadline_is_taken() {
    let registry = Registry::default();
    let policy = no_jitter()
        .max_attempts(10)
        .max_elapsed(Duration::from_millis(700));
    let retry = Retry::with_registry("edge", policy, &registry).unwrap();
    let starts = failing_attempts(&retry, || TRANSIENT, false).await;
    assert_eq!(starts, millis(&[0, 100, 300, 700]));
}

#[tokio::test(start_paused = true)]
async fn jittered_attempts_never_start_after_deadline() {
    for jitter in [Jitter::Full, Jitter::Decorrelated] {
        for _ in 0..50 {
            let registry = Registry::default();
            let policy = RetryPolicy::new()
                .max_attempts(1000)
                .base_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(200))
                .jitter(jitter)
                .max_elapsed(Duration::from_secs(1));
            let retry = Retry::with_registry("jitter", policy, &registry).unwrap();
            let start = Instant::now();
            let starts = failing_attempts(&retry, || TRANSIENT, false).await;
            let last = *starts.last().unwrap();
            assert!(
                last <= Duration::from_secs(1),
                "{jitter:?}: attempt at {last:?}"
            );
            assert!(start.elapsed() <= Duration::from_secs(1));
            assert!(
                starts.len() > 5,
                "{jitter:?}: only {} attempts",
                starts.len()
            );
            assert_eq!(attempts(&registry, "jitter", "exhausted"), 1);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_raises_the_sleep() {
    let registry = Registry::default();
    let policy = no_jitter().retry_after(|failure: &Failure| failure.retry_after);
    let retry = Retry::with_registry("throttled", policy, &registry).unwrap();
    let throttled = || Failure {
        transient: true,
        retry_after: Some(Duration::from_secs(2)),
    };
    let starts = failing_attempts(&retry, throttled, false).await;
    assert_eq!(starts, millis(&[0, 2000, 4000]));
}

#[tokio::test(start_paused = true)]
async fn retry_after_below_backoff_keeps_backoff() {
    let registry = Registry::default();
    let policy = no_jitter().retry_after(|failure: &Failure| failure.retry_after);
    let retry = Retry::with_registry("short", policy, &registry).unwrap();
    let hinted = || Failure {
        transient: true,
        retry_after: Some(Duration::from_millis(10)),
    };
    let starts = failing_attempts(&retry, hinted, false).await;
    assert_eq!(starts, millis(&[0, 100, 300]));
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_deadline_stops() {
    let registry = Registry::default();
    let policy = no_jitter()
        .max_elapsed(Duration::from_secs(1))
        .retry_after(|failure: &Failure| failure.retry_after);
    let retry = Retry::with_registry("late", policy, &registry).unwrap();
    let start = Instant::now();
    let throttled = || Failure {
        transient: true,
        retry_after: Some(Duration::from_secs(5)),
    };
    let starts = failing_attempts(&retry, throttled, false).await;
    assert_eq!(starts.len(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(attempts(&registry, "late", "exhausted"), 1);
}

fn open_breaker() -> Error<Failure> {
    Error::NotPermitted {
        name: "payments".into(),
        state: State::Open,
        retry_after: Some(Duration::from_secs(3)),
    }
}

fn rate_limited() -> Error<Failure> {
    Error::RateLimited {
        name: "payments".into(),
        retry_after: Duration::from_millis(1500),
    }
}

#[tokio::test(start_paused = true)]
async fn rejections_are_not_retried_by_default() {
    let registry = Registry::default();
    let retry = Retry::with_registry("composed", no_jitter(), &registry).unwrap();
    let full = || Error::<Failure>::BulkheadFull {
        name: "payments".into(),
        max_concurrent: 4,
    };
    assert_eq!(failing_attempts(&retry, open_breaker, true).await.len(), 1);
    assert_eq!(failing_attempts(&retry, rate_limited, true).await.len(), 1);
    assert_eq!(failing_attempts(&retry, full, true).await.len(), 1);
    assert_eq!(attempts(&registry, "composed", "not_retryable"), 3);
    assert_eq!(attempts(&registry, "composed", "retry"), 0);
}

#[tokio::test(start_paused = true)]
async fn rejections_wait_their_retry_after_when_retried() {
    let registry = Registry::default();
    let policy = no_jitter().retry_rejections(true);
    let retry = Retry::with_registry("patient", policy, &registry).unwrap();
    let starts = failing_attempts(&retry, open_breaker, true).await;
    assert_eq!(starts, millis(&[0, 3000, 6000]));
    let starts = failing_attempts(&retry, rate_limited, true).await;
    assert_eq!(starts, millis(&[0, 1500, 3000]));
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_retried_unless_turned_off() {
    let timeout = || Error::<Failure>::Timeout {
        name: "payments".into(),
        timeout: Duration::from_secs(1),
    };
    let registry = Registry::default();
    let retry = Retry::with_registry("slow", no_jitter(), &registry).unwrap();
    assert_eq!(failing_attempts(&retry, timeout, true).await.len(), 3);

    let policy = no_jitter().retry_timeouts(false);
    let retry = Retry::with_registry("strict", policy, &registry).unwrap();
    assert_eq!(failing_attempts(&retry, timeout, true).await.len(), 1);
    assert_eq!(attempts(&registry, "strict", "not_retryable"), 1);
}

#[tokio::test(start_paused = true)]
async fn composed_form_classifies_inner_errors() {
    let registry = Registry::default();
    let policy = no_jitter()
        .retry_if(|failure: &Failure| failure.transient)
        .retry_after(|failure: &Failure| failure.retry_after);
    let retry = Retry::with_registry("layered", policy, &registry).unwrap();
    let throttled = || Failure {
        transient: true,
        retry_after: Some(Duration::from_secs(1)),
    };
    let starts = failing_attempts(&retry, throttled, true).await;
    assert_eq!(starts, millis(&[0, 1000, 2000]));
    let permanent = || Failure {
        transient: false,
        retry_after: None,
    };
    assert_eq!(failing_attempts(&retry, permanent, true).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn empty_budget_stops_retries() {
    let registry = Registry::default();
    let budget = RetryBudget::new(RetryBudgetConfig {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 0,
        retry_ratio: 0.0,
    })
    .unwrap();
    let retry = Retry::with_registry("frugal", no_jitter(), &registry)
        .unwrap()
        .with_budget(budget);
    let starts = failing_attempts(&retry, || TRANSIENT, false).await;
    assert_eq!(starts.len(), 1);
    assert_eq!(attempts(&registry, "frugal", "budget_exhausted"), 1);
    let text = registry.encode(Format::PrometheusText).unwrap();
    assert!(
        text.contains("obskit_retry_budget_exhausted_total{name=\"frugal\"} 1"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn exhausted_attempts_spend_no_budget() {
    let registry = Registry::default();
    let budget = RetryBudget::new(RetryBudgetConfig {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 1,
        retry_ratio: 0.0,
    })
    .unwrap();
    let retry = Retry::with_registry("spare", no_jitter().max_attempts(1), &registry)
        .unwrap()
        .with_budget(budget.clone());
    failing_attempts(&retry, || TRANSIENT, false).await;
    assert_eq!(budget.available(), 10);
}

#[test]
fn invalid_settings_name_the_value() {
    let registry = Registry::default();
    let cases: Vec<(RetryPolicy<Failure>, &str)> = vec![
        (RetryPolicy::new().max_attempts(0), "max_attempts is 0"),
        (
            RetryPolicy::new().base_delay(Duration::ZERO),
            "base_delay is 0s",
        ),
        (
            RetryPolicy::new()
                .base_delay(Duration::from_secs(2))
                .max_delay(Duration::from_secs(1)),
            "max_delay 1s is shorter than base_delay 2s",
        ),
        (
            RetryPolicy::new().max_elapsed(Duration::ZERO),
            "max_elapsed is 0s",
        ),
    ];
    for (policy, message) in cases {
        let error = Retry::with_registry("bad", policy, &registry).unwrap_err();
        assert!(error.to_string().contains(message), "{error}");
    }
    let error = Retry::with_registry("", RetryPolicy::<Failure>::new(), &registry).unwrap_err();
    assert!(matches!(error, RetryConfigError::EmptyName));
}

#[test]
fn clones_share_metrics_and_policy() {
    let registry = Registry::default();
    let retry = Retry::with_registry("shared", no_jitter().max_attempts(7), &registry).unwrap();
    let clone = retry.clone();
    assert_eq!(clone.name(), "shared");
    assert_eq!(clone.policy().get_max_attempts(), 7);
    assert!(Arc::ptr_eq(&retry.shared, &clone.shared));
}
