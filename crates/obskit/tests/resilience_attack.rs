//! Edge cases of the resilience settings: thresholds met exactly, extreme sizes and durations,
//! and values that are not numbers.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::time::Duration;

use obskit::metrics::{Format, Registry};
use obskit::resilience::breaker::CircuitBreakerConfig;
use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
use obskit::resilience::rate_limit::{MAX_BURST_TIME, Quota, RateLimiter};
use obskit::resilience::retry::{Jitter, Retry, RetryPolicy};
use obskit::resilience::timeout::Timeout;
use obskit::resilience::{CircuitBreaker, Error, ManualClock, Outcome, State};

/// A threshold written as `failures * 100 / calls` must trip a window holding exactly that
/// rate, for every rate a small window can hold.
#[test]
fn equal_rate_always_trips() {
    let registry = Registry::default();
    let mut missed = Vec::new();
    for calls in 1..=40_u32 {
        for failures in 1..=calls {
            let threshold = f64::from(failures) * 100.0 / f64::from(calls);
            let breaker = CircuitBreaker::builder(format!("rate-{calls}-{failures}"))
                .config(CircuitBreakerConfig {
                    sliding_window_size: calls,
                    minimum_number_of_calls: calls,
                    failure_rate_threshold: threshold,
                    ..CircuitBreakerConfig::default()
                })
                .registry(&registry)
                .clock(ManualClock::new())
                .build()
                .unwrap();
            for call in 0..calls {
                let outcome = if call < calls - failures {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                breaker.try_acquire().unwrap().record(outcome);
            }
            if breaker.state() != State::Open {
                missed.push((failures, calls, threshold));
            }
        }
    }
    assert!(
        missed.is_empty(),
        "rates equal to the threshold did not trip: {missed:?}"
    );
}

#[test]
fn breaker_extreme_settings_build() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("extreme")
        .config(CircuitBreakerConfig {
            sliding_window_size: 1,
            minimum_number_of_calls: u32::MAX,
            wait_duration_in_open_state: Duration::MAX,
            slow_call_duration_threshold: Some(Duration::MAX),
            max_wait_duration_in_half_open_state: Duration::MAX,
            enable_exponential_backoff: true,
            exponential_backoff_multiplier: f64::MAX,
            ..CircuitBreakerConfig::default()
        })
        .registry(&registry)
        .clock(clock.clone())
        .build()
        .unwrap();

    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::MAX);
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(rejection.state, State::Open);
    assert!(rejection.retry_after.is_some());
    breaker.transition_to_open();
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.state, State::Open);
    assert!(snapshot.next_probe_in_seconds.is_some_and(f64::is_finite));
}

#[test]
fn breaker_nan_settings_rejected() {
    let registry = Registry::default();
    let error = CircuitBreaker::builder("nan")
        .config(CircuitBreakerConfig {
            failure_rate_threshold: f64::NAN,
            slow_call_rate_threshold: f64::INFINITY,
            exponential_backoff_multiplier: f64::NAN,
            ..CircuitBreakerConfig::default()
        })
        .registry(&registry)
        .build()
        .unwrap_err()
        .to_string();
    for key in [
        "failure_rate_threshold = NaN",
        "slow_call_rate_threshold = inf",
        "exponential_backoff_multiplier = NaN",
    ] {
        assert!(error.contains(key), "{key} missing from: {error}");
    }
    assert!(error.contains("expected"), "{error}");
}

#[test]
fn bulkhead_sizes_checked() {
    let registry = Registry::default();
    for max_concurrent in [0, usize::MAX] {
        let config = BulkheadConfig {
            max_concurrent,
            max_wait: Duration::MAX,
        };
        let error = Bulkhead::with_registry("sizes", config, &registry)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&max_concurrent.to_string()), "{error}");
    }
}

#[tokio::test(start_paused = true)]
async fn bulkhead_longest_wait_does_not_panic() {
    let registry = Registry::default();
    let config = BulkheadConfig {
        max_concurrent: 1,
        max_wait: Duration::MAX,
    };
    let bulkhead = Bulkhead::with_registry("forever", config, &registry).unwrap();
    let permit = bulkhead.try_acquire().unwrap();
    let waiting = tokio::spawn({
        let bulkhead = bulkhead.clone();
        async move { bulkhead.acquire().await.is_ok() }
    });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    drop(permit);
    assert!(waiting.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn timeout_longest_duration_runs_call() {
    let registry = Registry::default();
    let timeout = Timeout::with_registry("forever", Duration::MAX, &registry).unwrap();
    let value = timeout
        .call(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, std::io::Error>(7)
        })
        .await
        .unwrap();
    assert_eq!(value, 7);
}

#[tokio::test(start_paused = true)]
async fn retry_longest_durations_do_not_panic() {
    let registry = Registry::default();
    let policy = RetryPolicy::<u16>::new()
        .max_attempts(u32::MAX)
        .base_delay(Duration::MAX)
        .max_delay(Duration::MAX)
        .max_elapsed(Duration::MAX)
        .jitter(Jitter::Decorrelated);
    let retry = Retry::with_registry("forever", policy, &registry).unwrap();
    let mut calls = 0_u32;
    let result = retry
        .call(|| {
            calls += 1;
            let outcome = if calls < 3 { Err(503) } else { Ok(calls) };
            async move { outcome }
        })
        .await;
    assert_eq!(result.unwrap(), 3);
}

#[test]
fn quota_extremes_checked() {
    let registry = Registry::default();
    assert!(Quota::per_second(0).is_err());
    assert!(Quota::new(1, Duration::ZERO).is_err());
    assert!(Quota::per_second(1).unwrap().with_burst(0).is_err());
    let error = Quota::new(u32::MAX, Duration::MAX).unwrap_err().to_string();
    assert!(error.contains("use a shorter period"), "{error}");

    let widest = Quota::new(u32::MAX, MAX_BURST_TIME)
        .unwrap()
        .with_burst(u32::MAX)
        .unwrap();
    let limiter = RateLimiter::builder("widest", widest)
        .registry(&registry)
        .build()
        .unwrap();
    assert!(limiter.check().is_ok());
    assert!(limiter.check_n(u32::MAX - 1).unwrap().is_ok());
    assert!(limiter.check_n(0).unwrap().is_ok());

    let error = RateLimiter::builder("", Quota::per_second(1).unwrap())
        .registry(&registry)
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"\""), "{error}");
}

/// A batch far over the burst of a slow quota is rejected as too large. governor 0.10 would
/// overflow when it multiplies the emission interval by the batch size.
#[test]
fn huge_batch_over_burst_rejected() {
    let registry = Registry::default();
    let quota = Quota::per_minute(1).unwrap();
    let direct = RateLimiter::builder("batch", quota)
        .registry(&registry)
        .build()
        .unwrap();
    let error = direct.check_n(u32::MAX).unwrap_err();
    assert_eq!(error.requested, u32::MAX);
    assert_eq!(error.burst, 1);
    assert!(direct.check().is_ok());

    let keyed = RateLimiter::builder("batch-keyed", quota)
        .registry(&registry)
        .build_keyed::<u64>()
        .unwrap();
    let error = keyed.check_key_n(&7, u32::MAX).unwrap_err();
    assert_eq!(error.requested, u32::MAX);
    assert!(keyed.check_key(&7).is_ok());
    let text = registry.encode(Format::PrometheusText).unwrap();
    assert!(
        text.contains("obskit_rate_limit_decisions_total{name=\"batch\",decision=\"rejected\"} 1"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn huge_retry_after_keeps_breaker_rejection() {
    let registry = Registry::default();
    let breaker = CircuitBreaker::builder("long-wait")
        .config(CircuitBreakerConfig {
            sliding_window_size: 1,
            minimum_number_of_calls: 1,
            wait_duration_in_open_state: Duration::MAX,
            ..CircuitBreakerConfig::default()
        })
        .registry(&registry)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    breaker.transition_to_open();
    let retry = Retry::with_registry(
        "long-wait",
        RetryPolicy::<u16>::new()
            .retry_rejections(true)
            .max_elapsed(Duration::from_secs(10)),
        &registry,
    )
    .unwrap();
    let start = tokio::time::Instant::now();
    let result = retry
        .call_with_rejections(|| breaker.call(async { Ok::<_, u16>(()) }))
        .await;
    assert!(
        matches!(
            result,
            Err(Error::NotPermitted {
                state: State::Open,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}
