//! State-machine cases in Resilience4j semantics, driven by a manual clock.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::time::Duration;

use super::*;
use crate::metrics::Registry;
use crate::resilience::ManualClock;

/// One step of a case.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A call that succeeds at once.
    Ok,
    /// A call that fails at once.
    Fail,
    /// A call whose error is ignored.
    Ignore,
    /// A call that succeeds after this many milliseconds.
    OkAfter(u64),
    /// A call that fails after this many milliseconds.
    FailAfter(u64),
    /// A permit taken and kept, as for a call still in flight.
    Hold,
    /// Moves the clock forward by this many milliseconds.
    Advance(u64),
    /// The state must be this one.
    Expect(State),
    /// The next call must be rejected, with this retry-after in milliseconds when given.
    Rejected(Option<u64>),
    /// The snapshot must show these buffered, failed and slow calls.
    Counts(u32, u32, u32),
    ForceOpen,
    Disable,
    Reset,
    ToClosed,
    ToOpen,
    ToHalfOpen,
}

use Step::{
    Advance, Counts, Disable, Expect, Fail, FailAfter, ForceOpen, Hold, Ignore, Ok, OkAfter,
    Rejected, Reset, ToClosed, ToHalfOpen, ToOpen,
};

struct Case {
    name: &'static str,
    config: CircuitBreakerConfig,
    steps: Vec<Step>,
}

/// A count window of `size` calls, `minimum` calls and a failure threshold of `threshold` %,
/// with a 10 s wait and 2 probes.
fn count(size: u32, minimum: u32, threshold: f64) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        sliding_window_size: size,
        minimum_number_of_calls: minimum,
        failure_rate_threshold: threshold,
        wait_duration_in_open_state: Duration::from_secs(10),
        permitted_number_of_calls_in_half_open_state: 2,
        ..CircuitBreakerConfig::default()
    }
}

fn slow(size: u32, threshold_ms: u64, rate: f64) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        slow_call_duration_threshold: Some(Duration::from_millis(threshold_ms)),
        slow_call_rate_threshold: rate,
        ..count(size, size, 100.0)
    }
}

fn tripped(config: CircuitBreakerConfig, steps: &[Step]) -> (CircuitBreakerConfig, Vec<Step>) {
    let trips = usize::try_from(config.effective_minimum_number_of_calls()).unwrap_or(0);
    let mut all = vec![Fail; trips];
    all.push(Expect(State::Open));
    all.extend_from_slice(steps);
    (config, all)
}

fn case(name: &'static str, config: CircuitBreakerConfig, steps: &[Step]) -> Case {
    Case {
        name,
        config,
        steps: steps.to_vec(),
    }
}

fn case_tripped(name: &'static str, config: CircuitBreakerConfig, steps: &[Step]) -> Case {
    let (config, steps) = tripped(config, steps);
    Case {
        name,
        config,
        steps,
    }
}

fn cases() -> Vec<Case> {
    let time_window = CircuitBreakerConfig {
        sliding_window_type: SlidingWindowType::Time,
        sliding_window_size: 10,
        minimum_number_of_calls: 3,
        ..count(10, 3, 50.0)
    };
    let growing = CircuitBreakerConfig {
        enable_exponential_backoff: true,
        exponential_backoff_multiplier: 2.0,
        exponential_max_wait_duration_in_open_state: Some(Duration::from_secs(30)),
        permitted_number_of_calls_in_half_open_state: 1,
        ..count(2, 2, 50.0)
    };
    vec![
        case(
            "minimum calls not reached",
            count(10, 5, 50.0),
            &[
                Fail,
                Fail,
                Fail,
                Fail,
                Expect(State::Closed),
                Counts(4, 4, 0),
            ],
        ),
        case(
            "threshold reached exactly",
            count(10, 4, 50.0),
            &[
                Fail,
                Ok,
                Fail,
                Expect(State::Closed),
                Ok,
                Expect(State::Open),
            ],
        ),
        case(
            "rate just below threshold",
            count(10, 5, 50.0),
            &[
                Fail,
                Fail,
                Ok,
                Ok,
                Ok,
                Expect(State::Closed),
                Ok,
                Ok,
                Ok,
                Ok,
                Ok,
            ],
        ),
        case(
            "success completes minimum and trips",
            count(10, 3, 50.0),
            &[Fail, Fail, Expect(State::Closed), Ok, Expect(State::Open)],
        ),
        case(
            "count window caps minimum",
            count(4, 100, 50.0),
            &[
                Fail,
                Fail,
                Fail,
                Expect(State::Closed),
                Fail,
                Expect(State::Open),
            ],
        ),
        case(
            "threshold of 100 needs every call failed",
            count(4, 4, 100.0),
            &[
                Fail,
                Fail,
                Fail,
                Ok,
                Expect(State::Closed),
                Fail,
                Fail,
                Fail,
                Expect(State::Closed),
                Fail,
                Expect(State::Open),
            ],
        ),
        case(
            "slow calls trip",
            slow(2, 1000, 50.0),
            &[
                OkAfter(1001),
                Expect(State::Closed),
                Ok,
                Expect(State::Open),
            ],
        ),
        case(
            "call at slow threshold is not slow",
            slow(2, 1000, 50.0),
            &[
                OkAfter(1000),
                OkAfter(1000),
                Expect(State::Closed),
                Counts(2, 0, 0),
            ],
        ),
        case(
            "slow failure counts as both",
            CircuitBreakerConfig {
                slow_call_duration_threshold: Some(Duration::from_millis(100)),
                ..count(4, 4, 100.0)
            },
            &[
                FailAfter(101),
                Ok,
                Ok,
                OkAfter(200),
                Counts(4, 1, 2),
                Expect(State::Closed),
            ],
        ),
        case(
            "slow tracking off",
            CircuitBreakerConfig {
                slow_call_duration_threshold: None,
                slow_call_rate_threshold: 1.0,
                ..count(2, 2, 50.0)
            },
            &[
                OkAfter(7_200_000),
                OkAfter(7_200_000),
                Expect(State::Closed),
                Counts(2, 0, 0),
            ],
        ),
        case(
            "ignored errors not recorded",
            count(4, 2, 50.0),
            &[
                Ignore,
                Ignore,
                Ignore,
                Ok,
                Counts(1, 0, 0),
                Expect(State::Closed),
            ],
        ),
        case(
            "count window evicts oldest",
            count(4, 4, 50.0),
            &[
                Fail,
                Ok,
                Ok,
                Ok,
                Counts(4, 1, 0),
                Ok,
                Counts(4, 0, 0),
                Fail,
                Expect(State::Closed),
                Fail,
                Expect(State::Open),
            ],
        ),
        case(
            "time window bucket expires",
            time_window.clone(),
            &[
                Fail,
                Fail,
                Advance(10_000),
                Counts(0, 0, 0),
                Fail,
                Ok,
                Ok,
                Expect(State::Closed),
                Counts(3, 1, 0),
            ],
        ),
        case(
            "time window keeps last second",
            time_window,
            &[Fail, Fail, Advance(9_999), Fail, Expect(State::Open)],
        ),
        case_tripped(
            "open rejects with retry after",
            count(4, 2, 50.0),
            &[
                Rejected(Some(10_000)),
                Advance(4_000),
                Rejected(Some(6_000)),
                Counts(2, 2, 0),
            ],
        ),
        case_tripped(
            "open at exactly the wait still rejects",
            count(4, 2, 50.0),
            &[
                Advance(10_000),
                Rejected(None),
                Expect(State::Open),
                Advance(1),
                Ok,
                Expect(State::HalfOpen),
            ],
        ),
        case_tripped(
            "half-open successes close",
            count(4, 2, 50.0),
            &[
                Advance(10_001),
                Ok,
                Expect(State::HalfOpen),
                Ok,
                Expect(State::Closed),
                Counts(0, 0, 0),
            ],
        ),
        case_tripped(
            "half-open failure reopens",
            count(4, 2, 50.0),
            &[
                Advance(10_001),
                Ok,
                Fail,
                Expect(State::Open),
                Rejected(Some(10_000)),
            ],
        ),
        case_tripped(
            "half-open probes below threshold close",
            CircuitBreakerConfig {
                permitted_number_of_calls_in_half_open_state: 3,
                ..count(4, 2, 50.0)
            },
            &[
                Advance(10_001),
                Fail,
                Ok,
                Expect(State::HalfOpen),
                Ok,
                Expect(State::Closed),
            ],
        ),
        case_tripped(
            "half-open permits exhausted",
            count(4, 2, 50.0),
            &[
                Advance(10_001),
                Hold,
                Hold,
                Expect(State::HalfOpen),
                Rejected(None),
                Rejected(None),
            ],
        ),
        case_tripped(
            "half-open permits used up after records",
            CircuitBreakerConfig {
                permitted_number_of_calls_in_half_open_state: 3,
                ..count(4, 2, 50.0)
            },
            &[
                Advance(10_001),
                Ok,
                Ok,
                Hold,
                Rejected(None),
                Expect(State::HalfOpen),
            ],
        ),
        case_tripped(
            "half-open ignored frees slot",
            count(4, 2, 50.0),
            &[
                Advance(10_001),
                Ignore,
                Ignore,
                Ok,
                Ok,
                Expect(State::Closed),
            ],
        ),
        case_tripped(
            "half-open slow probes reopen",
            CircuitBreakerConfig {
                slow_call_duration_threshold: Some(Duration::from_secs(1)),
                slow_call_rate_threshold: 50.0,
                ..count(4, 2, 50.0)
            },
            &[Advance(10_001), Ok, OkAfter(1_500), Expect(State::Open)],
        ),
        case_tripped(
            "half-open max wait reopens",
            CircuitBreakerConfig {
                max_wait_duration_in_half_open_state: Duration::from_secs(5),
                ..count(4, 2, 50.0)
            },
            &[
                Advance(10_001),
                Hold,
                Advance(5_001),
                Rejected(Some(10_000)),
                Expect(State::Open),
            ],
        ),
        case(
            "forced open rejects until changed",
            count(4, 2, 50.0),
            &[
                ForceOpen,
                Rejected(None),
                Advance(3_600_000),
                Rejected(None),
                Expect(State::ForcedOpen),
                ToClosed,
                Ok,
                Expect(State::Closed),
            ],
        ),
        case(
            "disabled records nothing",
            count(4, 2, 50.0),
            &[
                Disable,
                Fail,
                Fail,
                Fail,
                Fail,
                Expect(State::Disabled),
                Counts(0, 0, 0),
            ],
        ),
        case(
            "growing wait doubles and resets",
            growing,
            &[
                Fail,
                Fail,
                Rejected(Some(10_000)),
                Advance(10_001),
                Fail,
                Rejected(Some(20_000)),
                Advance(20_001),
                Fail,
                Rejected(Some(30_000)),
                Advance(30_001),
                Ok,
                Expect(State::Closed),
                Fail,
                Fail,
                Rejected(Some(10_000)),
            ],
        ),
        case_tripped(
            "reset closes with empty window",
            count(4, 2, 50.0),
            &[
                Reset,
                Expect(State::Closed),
                Counts(0, 0, 0),
                Fail,
                Expect(State::Closed),
            ],
        ),
        case(
            "manual half-open takes probes",
            count(4, 2, 50.0),
            &[
                ToHalfOpen,
                Hold,
                Hold,
                Rejected(None),
                Expect(State::HalfOpen),
            ],
        ),
        case(
            "manual open waits base duration",
            count(4, 2, 50.0),
            &[
                ToOpen,
                Rejected(Some(10_000)),
                Advance(10_001),
                Ok,
                Expect(State::HalfOpen),
            ],
        ),
        case_tripped(
            "late outcome counts in opening window",
            count(4, 3, 50.0),
            &[Counts(3, 3, 0), Expect(State::Open)],
        ),
    ]
}

/// The `obskit_circuit_breaker_calls_total` samples a case must produce, counted from its
/// steps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expected {
    success: u64,
    failure: u64,
    slow: u64,
    ignored: u64,
    not_permitted: u64,
}

impl Expected {
    /// Counts a call permitted in `state` that ended with `outcome` after `millis`.
    fn record(
        &mut self,
        config: &CircuitBreakerConfig,
        state: State,
        outcome: Outcome,
        millis: u64,
    ) {
        if state == State::Disabled {
            return;
        }
        let slow = config
            .slow_call_duration_threshold
            .is_some_and(|threshold| Duration::from_millis(millis) > threshold);
        match outcome {
            Outcome::Ignored => self.ignored += 1,
            _ if slow => self.slow += 1,
            Outcome::Failure => self.failure += 1,
            Outcome::Success => self.success += 1,
        }
    }

    fn scrape(registry: &Registry, name: &str) -> Self {
        Self {
            success: calls(registry, name, "success"),
            failure: calls(registry, name, "failure"),
            slow: calls(registry, name, "slow"),
            ignored: calls(registry, name, "ignored"),
            not_permitted: calls(registry, name, "not_permitted"),
        }
    }
}

/// Runs a case's steps and checks the call counters against a recount of them, after every
/// step when `scrape_each_step` is set and once at the end otherwise.
fn run(case: &Case, scrape_each_step: bool) {
    let clock = ManualClock::new();
    let registry = Registry::default();
    let breaker = CircuitBreaker::builder("case")
        .config(case.config.clone())
        .registry(&registry)
        .clock(clock.clone())
        .build()
        .unwrap_or_else(|error| panic!("{}: {error}", case.name));
    let mut in_flight = Vec::new();
    let mut expected = Expected::default();

    for (index, step) in case.steps.iter().enumerate() {
        let at = || format!("case {:?}, step {index} ({step:?})", case.name);
        let mut call = |outcome: Outcome, millis: u64| {
            let state = breaker.state();
            let permit = breaker
                .try_acquire()
                .unwrap_or_else(|rejection| panic!("{}: rejected: {rejection}", at()));
            clock.advance(Duration::from_millis(millis));
            permit.record(outcome);
            expected.record(&case.config, state, outcome, millis);
        };
        match *step {
            Ok => call(Outcome::Success, 0),
            Fail => call(Outcome::Failure, 0),
            Ignore => call(Outcome::Ignored, 0),
            OkAfter(millis) => call(Outcome::Success, millis),
            FailAfter(millis) => call(Outcome::Failure, millis),
            Hold => {
                let state = breaker.state();
                let permit = breaker
                    .try_acquire()
                    .unwrap_or_else(|rejection| panic!("{}: rejected: {rejection}", at()));
                in_flight.push((state, permit));
            }
            Advance(millis) => clock.advance(Duration::from_millis(millis)),
            Expect(state) => assert_eq!(breaker.state(), state, "{}", at()),
            Rejected(retry_after) => match breaker.try_acquire() {
                Result::Ok(_) => panic!("{}: permitted", at()),
                Err(rejection) => {
                    expected.not_permitted += 1;
                    if let Some(millis) = retry_after {
                        assert_eq!(
                            rejection.retry_after,
                            Some(Duration::from_millis(millis)),
                            "{}",
                            at()
                        );
                    }
                }
            },
            Counts(calls, failed, slow) => {
                let snapshot = breaker.snapshot();
                assert_eq!(
                    (
                        snapshot.buffered_calls,
                        snapshot.failed_calls,
                        snapshot.slow_calls
                    ),
                    (calls, failed, slow),
                    "{}",
                    at()
                );
            }
            ForceOpen => breaker.force_open(),
            Disable => breaker.disable(),
            Reset => breaker.reset(),
            ToClosed => breaker.transition_to_closed(),
            ToOpen => breaker.transition_to_open(),
            ToHalfOpen => breaker.transition_to_half_open(),
        }
        if scrape_each_step {
            assert_eq!(Expected::scrape(&registry, "case"), expected, "{}", at());
        }
    }

    // Held permits end as dropped ones do: ignored, unless the breaker was disabled.
    for (state, permit) in in_flight {
        drop(permit);
        expected.record(&case.config, state, Outcome::Ignored, 0);
    }
    assert_eq!(
        Expected::scrape(&registry, "case"),
        expected,
        "case {:?} after its last step",
        case.name
    );
}

#[test]
fn state_machine_cases() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in &cases {
        run(case, false);
    }
}

#[test]
fn case_counters_match_after_each_step() {
    for case in &cases() {
        run(case, true);
    }
}

#[test]
fn snapshot_rates_and_next_probe() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("rates")
        .config(count(4, 4, 50.0))
        .registry(&Registry::default())
        .clock(clock.clone())
        .build()
        .unwrap();
    for outcome in [Outcome::Failure, Outcome::Success, Outcome::Success] {
        breaker.try_acquire().unwrap().record(outcome);
    }
    let below = breaker.snapshot();
    assert_eq!(below.failure_rate, None);
    assert_eq!(below.next_probe_in_seconds, None);

    breaker.try_acquire().unwrap().failure();
    clock.advance(Duration::from_millis(2500));
    let open = breaker.snapshot();
    assert_eq!(open.state, State::Open);
    assert_eq!(open.failure_rate, Some(50.0));
    assert_eq!(open.slow_call_rate, Some(0.0));
    assert_eq!(open.next_probe_in_seconds, Some(7.5));

    let _ = breaker.try_acquire();
    assert_eq!(breaker.snapshot().not_permitted_calls, 1);
    let json = serde_json::to_value(breaker.snapshot()).unwrap();
    assert_eq!(json["state"], "open");
    assert_eq!(json["buffered_calls"], 4);
    assert_eq!(json["not_permitted_calls"], 1);
}

#[test]
fn automatic_transition_on_state_read() {
    for (automatic, expected) in [(true, State::HalfOpen), (false, State::Open)] {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::builder("auto")
            .config(CircuitBreakerConfig {
                automatic_transition_from_open_to_half_open_enabled: automatic,
                ..count(2, 2, 50.0)
            })
            .registry(&Registry::default())
            .clock(clock.clone())
            .build()
            .unwrap();
        breaker.transition_to_open();
        clock.advance(Duration::from_millis(10_001));
        assert_eq!(breaker.state(), expected, "automatic {automatic}");
    }
}

#[test]
fn dropped_permit_counts_as_ignored() {
    let registry = Registry::default();
    let breaker = CircuitBreaker::builder("dropped")
        .config(count(4, 2, 50.0))
        .registry(&registry)
        .build()
        .unwrap();
    breaker.transition_to_half_open();
    drop(breaker.try_acquire().unwrap());
    drop(breaker.try_acquire().unwrap());
    let permits = [breaker.try_acquire(), breaker.try_acquire()];
    assert!(permits.iter().all(Result::is_ok));
    assert!(breaker.try_acquire().is_err());
    let text = registry
        .encode(crate::metrics::Format::PrometheusText)
        .unwrap();
    assert!(
        text.contains("obskit_circuit_breaker_calls_total{name=\"dropped\",outcome=\"ignored\"} 2"),
        "{text}"
    );
}

#[test]
fn rejection_without_wait_has_no_retry_after() {
    let breaker = CircuitBreaker::builder("forced")
        .registry(&Registry::default())
        .build()
        .unwrap();
    breaker.force_open();
    let rejection = breaker.try_acquire().err().unwrap();
    assert_eq!(rejection.state, State::ForcedOpen);
    assert_eq!(rejection.retry_after, None);

    breaker.transition_to_open();
    let rejection = breaker.try_acquire().err().unwrap();
    assert_eq!(rejection.state, State::Open);
    assert!(rejection.retry_after.is_some());
}

#[test]
fn invalid_settings_named_in_error() {
    let error = CircuitBreaker::builder("payments")
        .config(CircuitBreakerConfig {
            failure_rate_threshold: 150.0,
            ..CircuitBreakerConfig::default()
        })
        .registry(&Registry::default())
        .build()
        .err()
        .map(|error| error.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "circuit breaker \"payments\" has invalid settings: failure_rate_threshold = 150: invalid value; expected a percentage greater than 0 and at most 100"
        )
    );
}

#[test]
fn empty_name_rejected() {
    let result = CircuitBreaker::builder("")
        .registry(&Registry::default())
        .build();
    assert!(matches!(result, Err(BreakerError::InvalidName { .. })));
}

/// Reads one outcome of `obskit_circuit_breaker_calls_total` for `name` from an exposition.
fn calls(registry: &Registry, name: &str, outcome: &str) -> u64 {
    let text = registry
        .encode(crate::metrics::Format::PrometheusText)
        .unwrap();
    let prefix =
        format!("obskit_circuit_breaker_calls_total{{name=\"{name}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {outcome} sample for {name} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn successes_counted_in_every_state_and_window() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let build = |name: &str, config: CircuitBreakerConfig| {
        CircuitBreaker::builder(name)
            .config(config)
            .registry(&registry)
            .clock(clock.clone())
            .build()
            .unwrap()
    };

    let counted = build("counted", count(4, 2, 50.0));
    for _ in 0..7 {
        counted.try_acquire().unwrap().success();
    }
    counted.try_acquire().unwrap().failure();
    assert_eq!(calls(&registry, "counted", "success"), 7);
    assert_eq!(calls(&registry, "counted", "failure"), 1);

    // Probes count outside the window; a disabled breaker, as in Resilience4j, records nothing.
    counted.transition_to_half_open();
    counted.try_acquire().unwrap().success();
    counted.disable();
    counted.try_acquire().unwrap().success();
    counted.transition_to_closed();
    counted.try_acquire().unwrap().success();
    assert_eq!(calls(&registry, "counted", "success"), 9);

    // A success recorded after its window opened the breaker still counts.
    let late = build("late", count(2, 2, 50.0));
    let in_flight = late.try_acquire().unwrap();
    late.try_acquire().unwrap().failure();
    late.try_acquire().unwrap().failure();
    assert_eq!(late.state(), State::Open);
    in_flight.success();
    assert_eq!(calls(&registry, "late", "success"), 1);

    let timed = build(
        "timed",
        CircuitBreakerConfig {
            sliding_window_type: SlidingWindowType::Time,
            sliding_window_size: 10,
            ..CircuitBreakerConfig::default()
        },
    );
    for _ in 0..3 {
        timed.try_acquire().unwrap().success();
    }
    assert_eq!(calls(&registry, "timed", "success"), 3);
}

#[test]
fn successes_summed_by_name_after_drop() {
    let registry = Registry::default();
    let build = || {
        CircuitBreaker::builder("shared")
            .config(count(100, 10, 50.0))
            .registry(&registry)
            .build()
            .unwrap()
    };
    let first = build();
    let second = build();
    for _ in 0..5 {
        first.try_acquire().unwrap().success();
    }
    for _ in 0..4 {
        second.try_acquire().unwrap().success();
    }
    assert_eq!(calls(&registry, "shared", "success"), 9);
    // Not scraped before the drop: the drop folds the last successes in.
    first.try_acquire().unwrap().success();
    drop(first);
    assert_eq!(calls(&registry, "shared", "success"), 10);
    let third = build();
    third.try_acquire().unwrap().success();
    assert_eq!(calls(&registry, "shared", "success"), 11);
}

#[test]
fn success_counter_never_decreases_while_scraped_under_load() {
    let registry = Registry::default();
    let breaker = CircuitBreaker::builder("busy")
        .config(count(50, 1_000_000, 100.0))
        .registry(&registry)
        .build()
        .unwrap();
    let per_thread = 20_000_u64;
    std::thread::scope(|scope| {
        for thread in 0..4_u64 {
            let breaker = &breaker;
            scope.spawn(move || {
                for call in 0..per_thread {
                    let permit = breaker.try_acquire().unwrap();
                    if (call + thread) % 5 == 0 {
                        permit.failure();
                    } else {
                        permit.success();
                    }
                }
            });
        }
        let mut last = 0;
        for _ in 0..200 {
            let now = calls(&registry, "busy", "success");
            assert!(now >= last, "success counter went from {last} to {now}");
            last = now;
        }
    });
    let failures = calls(&registry, "busy", "failure");
    assert_eq!(failures, 4 * per_thread / 5);
    assert_eq!(
        calls(&registry, "busy", "success"),
        4 * per_thread - failures
    );
}

#[test]
fn extreme_window_sizes_and_waits() {
    let registry = Registry::default();
    let clock = ManualClock::new();
    let huge = CircuitBreakerConfig {
        wait_duration_in_open_state: Duration::MAX,
        slow_call_duration_threshold: Some(Duration::MAX),
        max_wait_duration_in_half_open_state: Duration::MAX,
        enable_exponential_backoff: true,
        exponential_backoff_multiplier: f64::MAX,
        ..CircuitBreakerConfig::default()
    };
    for (name, size) in [("one", 1_u32), ("million", 1_000_000)] {
        let breaker = CircuitBreaker::builder(name)
            .config(CircuitBreakerConfig {
                sliding_window_size: size,
                minimum_number_of_calls: size,
                failure_rate_threshold: 100.0,
                ..huge.clone()
            })
            .registry(&registry)
            .clock(clock.clone())
            .build()
            .unwrap();
        let successes = u64::from(size.min(10_000)) + 3;
        for _ in 0..successes {
            breaker.try_acquire().unwrap().success();
        }
        let buffered = u64::from(breaker.snapshot().buffered_calls);
        assert_eq!(buffered, successes.min(u64::from(size)), "{name}");
        assert_eq!(calls(&registry, name, "success"), successes, "{name}");

        breaker.transition_to_open();
        let rejection = breaker.try_acquire().err().unwrap();
        assert_eq!(rejection.state, State::Open, "{name}");
        assert!(rejection.retry_after.is_some(), "{name}: {rejection:?}");
        clock.advance(Duration::from_secs(u64::MAX / 4));
        assert!(
            breaker.try_acquire().is_err(),
            "{name}: the wait is 584 years"
        );
        assert_eq!(breaker.state(), State::Open, "{name}");

        breaker.transition_to_half_open();
        breaker.try_acquire().unwrap().success();
        breaker.reset();
        breaker.try_acquire().unwrap().failure();
        assert_eq!(calls(&registry, name, "success"), successes + 1, "{name}");
        assert_eq!(calls(&registry, name, "failure"), 1, "{name}");
        assert_eq!(calls(&registry, name, "not_permitted"), 2, "{name}");
    }
}

#[test]
fn window_of_one_call_opens_on_one_failure() {
    let registry = Registry::default();
    let breaker = CircuitBreaker::builder("single")
        .config(count(1, 1, 100.0))
        .registry(&registry)
        .build()
        .unwrap();
    for _ in 0..5 {
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.snapshot().buffered_calls, 1);
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(calls(&registry, "single", "success"), 5);
    assert_eq!(calls(&registry, "single", "failure"), 1);
}

#[test]
fn counters_exact_while_recreated_and_scraped() {
    let registry = Registry::default();
    let build = |window: SlidingWindowType| {
        CircuitBreaker::builder("churn")
            .config(CircuitBreakerConfig {
                sliding_window_type: window,
                sliding_window_size: 7,
                minimum_number_of_calls: 1_000_000,
                ..CircuitBreakerConfig::default()
            })
            .registry(&registry)
            .build()
            .unwrap()
    };
    let per_thread = 5_000_u64;
    let threads = 4_u64;
    // Registers the series before the scrapers start, so that a first scrape never runs ahead
    // of every breaker and finds no samples.
    drop(build(SlidingWindowType::Count));
    assert_eq!(Expected::scrape(&registry, "churn"), Expected::default());
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let build = &build;
            scope.spawn(move || {
                let window = if thread % 2 == 0 {
                    SlidingWindowType::Count
                } else {
                    SlidingWindowType::Time
                };
                // Each thread replaces its breaker every 500 calls; breakers of the same
                // name share the counter series.
                let mut breaker = build(window);
                for call in 0..per_thread {
                    if call % 500 == 0 {
                        breaker = build(window);
                    }
                    let permit = breaker.try_acquire().unwrap();
                    match (call + thread) % 4 {
                        0 => permit.failure(),
                        1 => permit.ignore(),
                        _ => permit.success(),
                    }
                }
            });
        }
        for _ in 0..2 {
            scope.spawn(|| {
                let mut last = Expected::default();
                for _ in 0..100 {
                    let now = Expected::scrape(&registry, "churn");
                    assert!(now.success >= last.success, "{last:?} then {now:?}");
                    assert!(now.failure >= last.failure, "{last:?} then {now:?}");
                    assert!(now.ignored >= last.ignored, "{last:?} then {now:?}");
                    last = now;
                }
            });
        }
    });
    let total = Expected::scrape(&registry, "churn");
    assert_eq!(total.failure, threads * per_thread / 4);
    assert_eq!(total.ignored, threads * per_thread / 4);
    assert_eq!(total.success, threads * per_thread / 2);
}

#[test]
fn global_registry_counts_successes() {
    let name = "review-global-successes";
    let breakers = CircuitBreakerRegistry::new(Registry::global());
    let from_registry = breakers.get_or_create(name).unwrap();
    let built = CircuitBreaker::builder(name).build().unwrap();
    for _ in 0..3 {
        from_registry.try_acquire().unwrap().success();
        built.try_acquire().unwrap().success();
    }
    built.try_acquire().unwrap().failure();
    assert_eq!(calls(Registry::global(), name, "success"), 6);
    drop(built);
    from_registry.try_acquire().unwrap().success();
    assert_eq!(calls(Registry::global(), name, "success"), 7);
    assert_eq!(calls(Registry::global(), name, "failure"), 1);
}

/// A manual transition and the breaker name it is tested under.
type Transition = (&'static str, fn(&CircuitBreaker));

#[test]
fn in_flight_successes_count_after_transitions() {
    let transitions: [Transition; 6] = [
        ("force_open", CircuitBreaker::force_open),
        ("disable", CircuitBreaker::disable),
        ("reset", CircuitBreaker::reset),
        ("to_closed", CircuitBreaker::transition_to_closed),
        ("to_open", CircuitBreaker::transition_to_open),
        ("to_half_open", CircuitBreaker::transition_to_half_open),
    ];
    for window in [SlidingWindowType::Count, SlidingWindowType::Time] {
        for (name, transition) in transitions {
            let registry = Registry::default();
            let breaker = CircuitBreaker::builder(name)
                .config(CircuitBreakerConfig {
                    sliding_window_type: window,
                    ..count(10, 10, 50.0)
                })
                .registry(&registry)
                .build()
                .unwrap();
            let in_flight = [
                breaker.try_acquire().unwrap(),
                breaker.try_acquire().unwrap(),
            ];
            breaker.try_acquire().unwrap().success();
            transition(&breaker);
            for permit in in_flight {
                permit.success();
            }
            assert_eq!(calls(&registry, name, "success"), 3, "{name}, {window:?}");
            assert_eq!(calls(&registry, name, "ignored"), 0, "{name}, {window:?}");
        }
    }
}
