//! Cost of a call through a closed circuit breaker: the permission check plus recording a
//! success, for obskit, `recloser` and `failsafe` in the same run.
//!
//! Each breaker has its defaults apart from slow-call tracking. obskit is measured with
//! slow-call tracking off and on (on reads the clock twice per call), and through its async
//! `call` with a future that is ready at once. The peers record successes and failures only.

#![allow(clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;

use divan::Bencher;
use futures_util::FutureExt as _;
use obskit::metrics::Registry;
use obskit::resilience::breaker::{CircuitBreaker, CircuitBreakerConfig};

fn main() {
    divan::main();
}

fn obskit_breaker(slow_call_tracking: bool) -> CircuitBreaker {
    let config = CircuitBreakerConfig {
        slow_call_duration_threshold: slow_call_tracking
            .then_some(CircuitBreakerConfig::default().slow_call_duration_threshold)
            .flatten(),
        ..CircuitBreakerConfig::default()
    };
    CircuitBreaker::builder("bench")
        .config(config)
        .registry(&Registry::default())
        .build()
        .expect("valid settings")
}

#[divan::bench]
fn obskit_permit_slow_tracking_off(bencher: Bencher<'_, '_>) {
    let breaker = obskit_breaker(false);
    bencher.bench_local(|| {
        if let Ok(permit) = black_box(&breaker).try_acquire() {
            permit.success();
        }
    });
}

#[divan::bench]
fn obskit_permit_slow_tracking_on(bencher: Bencher<'_, '_>) {
    let breaker = obskit_breaker(true);
    bencher.bench_local(|| {
        if let Ok(permit) = black_box(&breaker).try_acquire() {
            permit.success();
        }
    });
}

#[divan::bench]
fn obskit_call_slow_tracking_off(bencher: Bencher<'_, '_>) {
    let breaker = obskit_breaker(false);
    bencher.bench_local(|| {
        black_box(&breaker)
            .call(async { Ok::<u32, ()>(black_box(1)) })
            .now_or_never()
    });
}

#[divan::bench]
fn recloser(bencher: Bencher<'_, '_>) {
    let breaker = recloser::Recloser::default();
    bencher.bench_local(|| black_box(&breaker).call(|| Ok::<u32, ()>(black_box(1))));
}

#[divan::bench]
fn failsafe(bencher: Bencher<'_, '_>) {
    use failsafe::CircuitBreaker as _;

    let breaker = failsafe::Config::new().build();
    bencher.bench_local(|| black_box(&breaker).call(|| Ok::<u32, ()>(black_box(1))));
}
