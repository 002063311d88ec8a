//! Circuit breakers under concurrency, and their metrics as `promtool` reads them.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "tests fail by panicking and print why they skip the promtool check"
)]

#[path = "support/promtool.rs"]
mod promtool;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use obskit::metrics::{Format, Registry};
use obskit::resilience::breaker::{CircuitBreakerConfig, CircuitBreakerRegistry};
use obskit::resilience::{Error, ManualClock, State};

const CALLERS: usize = 64;
const PROBES: u32 = 5;

fn config() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        sliding_window_size: 20,
        minimum_number_of_calls: 10,
        permitted_number_of_calls_in_half_open_state: PROBES,
        wait_duration_in_open_state: Duration::from_secs(10),
        ..CircuitBreakerConfig::default()
    }
}

/// Reads one sample of `obskit_circuit_breaker_calls_total` from the exposition text.
fn calls(text: &str, name: &str, outcome: &str) -> u64 {
    let prefix =
        format!("obskit_circuit_breaker_calls_total{{name=\"{name}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |value| value.trim().parse().unwrap())
}

fn total_calls(registry: &Registry, name: &str) -> (u64, u64) {
    let text = registry.encode(Format::PrometheusText).unwrap();
    let recorded: u64 = ["success", "failure", "slow", "ignored"]
        .iter()
        .map(|outcome| calls(&text, name, outcome))
        .sum();
    (recorded, calls(&text, name, "not_permitted"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_probes_bounded_under_tokio() {
    let metrics = Registry::default();
    let clock = ManualClock::new();
    let breakers = CircuitBreakerRegistry::new(&metrics).with_clock(clock.clone());
    let breaker = breakers.get_or_create_with("tokio", config()).unwrap();
    breaker.transition_to_half_open();

    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    // Callers that were rejected or started a probe. Probes finish only once every caller
    // has tried, so all of them are in flight together and none finishes early enough to
    // close the breaker for a late caller.
    let tried = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let breaker = breaker.clone();
        let (in_flight, max_in_flight, tried, gate) = (
            in_flight.clone(),
            max_in_flight.clone(),
            tried.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let result = breaker
                .call(async {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    tried.fetch_add(1, Ordering::SeqCst);
                    while tried.load(Ordering::SeqCst) < CALLERS {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    Ok::<(), std::io::Error>(())
                })
                .await;
            if result.is_err() {
                tried.fetch_add(1, Ordering::SeqCst);
            }
            result
        }));
    }

    let mut permitted = 0_u32;
    let mut rejected = 0_u32;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => permitted += 1,
            Err(Error::NotPermitted { state, .. }) => {
                assert_eq!(state, State::HalfOpen);
                rejected += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!(permitted, PROBES, "{permitted} calls passed");
    assert!(
        max_in_flight.load(Ordering::SeqCst) <= PROBES as usize,
        "{} probes in flight",
        max_in_flight.load(Ordering::SeqCst)
    );
    assert_eq!(permitted + rejected, CALLERS as u32);
    assert_eq!(breaker.state(), State::Closed);
    let (recorded, not_permitted) = total_calls(&metrics, "tokio");
    assert_eq!(recorded, u64::from(permitted));
    assert_eq!(not_permitted, u64::from(rejected));
}

#[test]
fn half_open_probes_bounded_under_threads() {
    let metrics = Registry::default();
    let breakers = CircuitBreakerRegistry::new(&metrics);
    let breaker = breakers.get_or_create_with("threads", config()).unwrap();
    breaker.transition_to_half_open();

    let gate = Arc::new(Barrier::new(CALLERS));
    let held = Arc::new(Barrier::new(CALLERS));
    let handles: Vec<_> = (0..CALLERS)
        .map(|index| {
            let breaker = breaker.clone();
            let (gate, held) = (gate.clone(), held.clone());
            std::thread::spawn(move || {
                gate.wait();
                let permit = breaker.try_acquire();
                let permitted = permit.is_ok();
                // Every caller holds its permit until all have tried, so the probes are
                // concurrently in flight.
                held.wait();
                if let Ok(permit) = permit {
                    if index % 2 == 0 {
                        permit.failure();
                    } else {
                        permit.success();
                    }
                }
                permitted
            })
        })
        .collect();
    let permitted = handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .filter(|permitted| *permitted)
        .count();

    assert_eq!(permitted, PROBES as usize);
    let (recorded, not_permitted) = total_calls(&metrics, "threads");
    assert_eq!(recorded, u64::from(PROBES));
    assert_eq!(not_permitted, (CALLERS - PROBES as usize) as u64);
    assert!(
        matches!(breaker.state(), State::Open | State::Closed),
        "still {}",
        breaker.state()
    );
}

#[test]
fn closed_counters_match_calls_across_threads() {
    let metrics = Registry::default();
    let breakers = CircuitBreakerRegistry::new(&metrics);
    let breaker = breakers
        .get_or_create_with(
            "steady",
            CircuitBreakerConfig {
                failure_rate_threshold: 100.0,
                ..config()
            },
        )
        .unwrap();
    let per_thread = 10_000_u64;
    let handles: Vec<_> = (0..8_u64)
        .map(|thread| {
            let breaker = breaker.clone();
            std::thread::spawn(move || {
                for call in 0..per_thread {
                    let permit = breaker.try_acquire().unwrap();
                    if (call + thread) % 4 == 0 {
                        permit.failure();
                    } else {
                        permit.success();
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let text = metrics.encode(Format::PrometheusText).unwrap();
    assert_eq!(calls(&text, "steady", "failure"), 8 * per_thread / 4);
    assert_eq!(calls(&text, "steady", "success"), 8 * per_thread * 3 / 4);
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.buffered_calls, 20);
    assert!(snapshot.failed_calls <= 20, "{snapshot:?}");
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn exposition_passes_promtool() {
    let metrics = Registry::default();
    let breakers = CircuitBreakerRegistry::new(&metrics);
    let breaker = breakers.get_or_create_with("promtool", config()).unwrap();
    for _ in 0..10 {
        breaker.try_acquire().unwrap().failure();
    }
    assert!(breaker.try_acquire().is_err());
    breaker.try_acquire().map(|permit| permit.ignore()).ok();
    breakers.get_or_create("second").unwrap().disable();

    let text = metrics.encode(Format::PrometheusText).unwrap();
    for state in ["closed", "open", "half_open", "forced_open", "disabled"] {
        let expected = if state == "open" { 1 } else { 0 };
        let line = format!(
            "obskit_circuit_breaker_state{{name=\"promtool\",state=\"{state}\"}} {expected}"
        );
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains(
            "obskit_circuit_breaker_transitions_total{name=\"promtool\",from=\"closed\",to=\"open\"} 1"
        ),
        "{text}"
    );

    promtool::check_metrics(&text);
}

#[test]
fn success_counts_pass_promtool_in_both_formats() {
    let metrics = Registry::default();
    let breakers = CircuitBreakerRegistry::new(&metrics).with_clock(ManualClock::new());
    let counted = breakers.get_or_create_with("counted", config()).unwrap();
    let timed = breakers
        .get_or_create_with(
            "timed",
            CircuitBreakerConfig {
                sliding_window_type: obskit::resilience::breaker::SlidingWindowType::Time,
                ..config()
            },
        )
        .unwrap();
    for breaker in [&counted, &timed] {
        for _ in 0..25 {
            breaker.try_acquire().unwrap().success();
        }
        breaker.transition_to_half_open();
        breaker.try_acquire().unwrap().success();
        breaker.force_open();
        assert!(breaker.try_acquire().is_err());
    }

    let text = metrics.encode(Format::PrometheusText).unwrap();
    let openmetrics = metrics.encode(Format::OpenMetrics).unwrap();
    for name in ["counted", "timed"] {
        assert_eq!(calls(&text, name, "success"), 26, "{name} in\n{text}");
        assert_eq!(calls(&text, name, "not_permitted"), 1, "{name} in\n{text}");
        let line =
            format!("obskit_circuit_breaker_calls_total{{name=\"{name}\",outcome=\"success\"}} 26");
        assert!(
            openmetrics.lines().any(|sample| sample == line),
            "{line} in\n{openmetrics}"
        );
    }
    promtool::check_metrics(&text);
}
