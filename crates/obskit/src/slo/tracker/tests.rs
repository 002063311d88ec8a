use super::*;
use crate::clock::ManualClock;
use crate::slo::LONGEST_WINDOW;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn new_tracker(target: &str, period: &str) -> (SloTracker, ManualClock) {
    let definition = SloDefinition::builder("orders")
        .target(target)
        .period(period)
        .route("/orders")
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let tracker = SloTracker::new(definition, Arc::new(clock.clone())).unwrap();
    (tracker, clock)
}

fn record(tracker: &SloTracker, good: u64, bad: u64) {
    for _ in 0..good {
        tracker.record(Outcome::Good);
    }
    for _ in 0..bad {
        tracker.record(Outcome::Bad);
    }
}

fn rates(status: &SloStatus) -> Vec<Option<f64>> {
    status.burn_rates.iter().map(|(_, rate)| rate).collect()
}

#[test]
fn fresh_tracker_is_unknown() {
    let (tracker, _clock) = new_tracker("99.9", "30d");
    let status = tracker.status();
    assert_eq!(rates(&status), [None; 7]);
    assert_eq!(status.error_budget_remaining, None);
    assert_eq!(status.valid, 0);
    assert!(status.alerts.is_empty());
    assert_eq!(status.time_to_exhaustion, None);
}

#[test]
fn burn_rate_is_error_ratio_over_budget() {
    let (tracker, clock) = new_tracker("99.9", "30d");
    record(&tracker, 998, 2);
    let status = tracker.status();
    assert_eq!(rates(&status), [Some(2.0); 7]);
    assert_eq!(status.valid, 1000);
    assert_eq!(status.bad, 2);
    assert_eq!(status.error_budget_remaining, Some(-1.0));

    clock.advance(5 * MINUTE);
    record(&tracker, 100, 0);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::M5), Some(0.0));
    // 2 bad of 1100 with a budget of 0.001.
    assert_eq!(status.burn_rates.get(Window::M30), Some(2000.0 / 1100.0));
}

#[test]
fn burn_rate_has_no_float_noise() {
    let (tracker, _clock) = new_tracker("99.95", "28d");
    record(&tracker, 9_993, 7);
    // 7 / 10000 / 0.0005 = 1.4 exactly, where f64 division gives 1.4000000000000001.
    assert_eq!(tracker.status().burn_rates.get(Window::H1), Some(1.4));
}

#[test]
fn window_expires_after_its_length() {
    let (tracker, clock) = new_tracker("99", "30d");
    record(&tracker, 0, 1);
    clock.advance(5 * MINUTE - Duration::from_secs(1));
    assert_eq!(tracker.status().burn_rates.get(Window::M5), Some(100.0));
    clock.advance(Duration::from_secs(1));
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::M5), None);
    assert_eq!(status.burn_rates.get(Window::M30), Some(100.0));
}

#[test]
fn events_roll_up_across_tiers() {
    let (tracker, clock) = new_tracker("99", "30d");
    record(&tracker, 9, 1);

    clock.advance(6 * HOUR);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::H6), None);
    assert_eq!(status.burn_rates.get(Window::D1), Some(10.0));
    assert_eq!(status.valid, 10);

    clock.advance(DAY - 6 * HOUR - Duration::from_secs(10));
    assert_eq!(tracker.status().burn_rates.get(Window::D1), Some(10.0));
    clock.advance(Duration::from_secs(10));
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::D1), None);
    assert_eq!(status.burn_rates.get(Window::D3), Some(10.0));

    clock.advance(2 * DAY);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::D3), None);
    assert_eq!(status.valid, 10);
    assert_eq!(status.bad, 1);
    assert_eq!(status.error_budget_remaining, Some(-9.0));

    clock.advance(27 * DAY - Duration::from_secs(10));
    assert_eq!(tracker.status().valid, 10);
    clock.advance(Duration::from_secs(10));
    let status = tracker.status();
    assert_eq!(status.valid, 0);
    assert_eq!(status.error_budget_remaining, None);
}

#[test]
fn long_pause_keeps_counts_consistent() {
    let (tracker, clock) = new_tracker("99", "30d");
    record(&tracker, 90, 10);
    clock.advance(10 * DAY);
    record(&tracker, 100, 0);
    let status = tracker.status();
    assert_eq!(status.valid, 200);
    assert_eq!(status.bad, 10);
    assert_eq!(status.burn_rates.get(Window::D3), Some(0.0));
    // 10 bad of 200 against 2 allowed.
    assert_eq!(status.error_budget_remaining, Some(-4.0));
}

#[test]
fn late_events_dropped_and_counted() {
    let (tracker, clock) = new_tracker("99", "30d");
    clock.advance(7 * HOUR);
    tracker.record(Outcome::Good);
    tracker.record_at(Duration::from_secs(60), Outcome::Bad);
    assert_eq!(tracker.late_events(), 1);
    assert_eq!(tracker.status().valid, 1);
    tracker.record_at(6 * HOUR, Outcome::Bad);
    assert_eq!(tracker.late_events(), 1);
    assert_eq!(tracker.status().bad, 1);
}

#[test]
fn budget_remaining_may_be_negative() {
    let (tracker, _clock) = new_tracker("99.9", "30d");
    record(&tracker, 9_995, 5);
    assert_eq!(tracker.status().error_budget_remaining, Some(0.5));
    record(&tracker, 0, 25);
    // 30 bad of 10 025 against 10.025 allowed.
    let remaining = tracker.status().error_budget_remaining.unwrap();
    assert!(
        (remaining - (1.0 - 30.0 / 10.025)).abs() < 1e-12,
        "{remaining}"
    );
    assert!(remaining < 0.0);
}

/// Moves the clock a minute and records `per_minute` events, `bad` of them bad, `minutes`
/// times, so a window of `n` minutes ends on the last `n` batches.
fn steady(tracker: &SloTracker, clock: &ManualClock, minutes: u32, per_minute: u64, bad: u64) {
    for _ in 0..minutes {
        clock.advance(MINUTE);
        record(tracker, per_minute - bad, bad);
    }
}

#[test]
fn page_needs_both_windows() {
    // Five clean hours keep the 6 h burn rate under 6, so only the 1 h and 5 m pair decides.
    let (tracker, clock) = new_tracker("99.9", "30d");
    steady(&tracker, &clock, 300, 1000, 0);
    steady(&tracker, &clock, 55, 1000, 30);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::M5), Some(30.0));
    assert_eq!(status.burn_rates.get(Window::H1), Some(27.5));
    assert!(status.burn_rates.get(Window::H6).unwrap() < 6.0);
    assert!(
        status.alerts.contains(&Severity::Page),
        "{:?}",
        status.alerts
    );

    // Recovered: the 5 m window is clean, the 1 h window is still above 14.4.
    steady(&tracker, &clock, 5, 1000, 0);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::M5), Some(0.0));
    assert!(status.burn_rates.get(Window::H1).unwrap() > 14.4);
    assert!(
        !status.alerts.contains(&Severity::Page),
        "{:?}",
        status.alerts
    );
}

#[test]
fn short_spike_does_not_page() {
    let (tracker, clock) = new_tracker("99.9", "30d");
    steady(&tracker, &clock, 55, 1000, 0);
    steady(&tracker, &clock, 5, 1000, 100);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::M5), Some(100.0));
    // 500 bad of 60 000: a burn rate of 8.33, under 14.4 but over 6 of the 6 h pair.
    let hour = status.burn_rates.get(Window::H1).unwrap();
    assert!((hour - 500.0 / 60.0).abs() < 1e-9, "{hour}");
    assert_eq!(
        status.burn_rates.get(Window::M30).map(|r| r > 6.0),
        Some(true)
    );
    assert_eq!(status.alerts, [Severity::Page, Severity::Ticket]);

    let (tracker, clock) = new_tracker("99.9", "30d");
    steady(&tracker, &clock, 355, 1000, 0);
    steady(&tracker, &clock, 5, 1000, 100);
    let status = tracker.status();
    assert!(status.burn_rates.get(Window::M5).unwrap() > 14.4);
    assert!(status.burn_rates.get(Window::H1).unwrap() < 14.4);
    assert!(status.burn_rates.get(Window::H6).unwrap() < 6.0);
    // The 6 h burn rate of 1.39 is above 1, so the 3 d and 6 h pair opens a ticket.
    assert_eq!(status.alerts, [Severity::Ticket]);
}

#[test]
fn burn_equal_to_threshold_does_not_fire() {
    let (tracker, _clock) = new_tracker("99.9", "30d");
    // 144 bad of 10 000 is a burn rate of exactly 14.4.
    record(&tracker, 10_000 - 144, 144);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::H1), Some(14.4));
    // Every window burns at 14.4, which is above 6, 3 and 1 but not above 14.4.
    assert_eq!(status.alerts, [Severity::Page, Severity::Ticket]);

    let (tracker, _clock) = new_tracker("99.9", "30d");
    record(&tracker, 10_000 - 6, 6);
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::H6), Some(0.6));
    assert!(status.alerts.is_empty());
    let (tracker, _clock) = new_tracker("99.9", "30d");
    record(&tracker, 1000 - 1, 1);
    // A burn rate of exactly 1 is not above the 3 d threshold of 1.
    assert!(tracker.status().alerts.is_empty());
}

#[test]
fn ticket_conditions() {
    // A burn rate of 4 over a day: above 3 (1 d and 2 h) but under 6 and 14.4.
    let (tracker, clock) = new_tracker("99", "30d");
    for _ in 0..24 {
        steady(&tracker, &clock, 60, 100, 4);
    }
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::D1), Some(4.0));
    assert_eq!(status.alerts, [Severity::Ticket]);

    // A burn rate of 2 over 3 days: only the 3 d and 6 h pair, above 1.
    let (tracker, clock) = new_tracker("99", "30d");
    for _ in 0..72 {
        steady(&tracker, &clock, 60, 100, 2);
    }
    let status = tracker.status();
    assert_eq!(status.burn_rates.get(Window::D3), Some(2.0));
    assert_eq!(status.alerts, [Severity::Ticket]);
}

#[test]
fn thresholds_scale_for_28_days() {
    // A last hour at 13.5 after five clean hours: above 13.44 (28 d) but under 14.4 (30 d),
    // and the 6 h burn rate of 2.25 is under both 6 h thresholds.
    for (period, paged) in [("28d", true), ("30d", false)] {
        let (tracker, clock) = new_tracker("99", period);
        steady(&tracker, &clock, 300, 1000, 0);
        steady(&tracker, &clock, 60, 1000, 135);
        let status = tracker.status();
        assert_eq!(status.burn_rates.get(Window::H1), Some(13.5));
        assert_eq!(status.burn_rates.get(Window::H6), Some(2.25));
        assert_eq!(status.alerts.contains(&Severity::Page), paged, "{period}");
    }
}

#[test]
fn time_to_exhaustion_at_hour_burn() {
    let (tracker, clock) = new_tracker("99.9", "30d");
    record(&tracker, 9_995, 5);
    // Half the budget left, burning at 0.5: 30 days to go.
    assert_eq!(tracker.status().time_to_exhaustion, Some(30 * DAY));

    clock.advance(HOUR);
    assert_eq!(tracker.status().time_to_exhaustion, None);
    record(&tracker, 1000, 0);
    assert_eq!(tracker.status().time_to_exhaustion, None);

    record(&tracker, 0, 100);
    assert_eq!(tracker.status().time_to_exhaustion, Some(Duration::ZERO));
}

#[test]
fn memory_does_not_grow_with_events() {
    let (tracker, clock) = new_tracker("99.9", "30d");
    let before = tracker.memory_bytes();
    for _ in 0..2_000 {
        record(&tracker, 50, 1);
        clock.advance(Duration::from_secs(97));
    }
    assert_eq!(tracker.memory_bytes(), before);
    assert!(before < 100_000, "{before}");
    let (longer, _clock) = new_tracker("99.9", "90d");
    assert_eq!(longer.memory_bytes() - before, 60 * 24 * 24);
}

#[test]
fn status_without_traffic_after_period() {
    for period in ["3d", "7d", "28d", "30d", "90d", "365d"] {
        let (tracker, clock) = new_tracker("99.9", period);
        let bytes = tracker.memory_bytes();
        record(&tracker, 990, 10);
        let spent = tracker.status();
        assert_eq!(spent.valid, 1000, "{period}");
        assert_eq!(spent.time_to_exhaustion, Some(Duration::ZERO), "{period}");

        // An hour without events: the budget is still spent but the 1 h burn is unknown.
        clock.advance(HOUR);
        let quiet = tracker.status();
        assert_eq!(quiet.burn_rates.get(Window::H1), None, "{period}");
        assert_eq!(quiet.time_to_exhaustion, Some(Duration::ZERO), "{period}");

        // After a jump far beyond the period, every window is empty.
        clock.advance(tracker.definition().period * 3 + DAY);
        let empty = tracker.status();
        assert_eq!(empty.valid, 0, "{period}");
        assert_eq!(empty.error_budget_remaining, None, "{period}");
        assert_eq!(empty.time_to_exhaustion, None, "{period}");
        assert_eq!(rates(&empty), [None; 7], "{period}");
        assert!(empty.alerts.is_empty(), "{period}");
        assert_eq!(tracker.memory_bytes(), bytes, "{period}");
    }
}

#[test]
fn status_every_step_across_tier_edges() {
    let (tracker, clock) = new_tracker("99", "30d");
    record(&tracker, 99, 1);
    // One bad event leaves the fine tier at 6 h, the 1 d window at 1 d, the medium tier
    // 3 d after the fine tier, and the period at 30 d. The status is read every 10 s
    // around each edge.
    let mut elapsed = Duration::ZERO;
    for edge in [6 * HOUR, DAY, 3 * DAY, 3 * DAY + 6 * HOUR, 30 * DAY] {
        let from = edge - 2 * MINUTE;
        clock.advance(from - elapsed);
        elapsed = from;
        while elapsed <= edge + 2 * MINUTE {
            let status = tracker.status();
            let in_period = elapsed < 30 * DAY;
            assert_eq!(
                status.valid,
                if in_period { 100 } else { 0 },
                "at {elapsed:?}"
            );
            assert_eq!(status.bad, u64::from(in_period), "at {elapsed:?}");
            let in_day = elapsed < DAY;
            let day_rate = status.burn_rates.get(Window::D1);
            assert_eq!(day_rate, in_day.then_some(1.0), "1 d window at {elapsed:?}");
            clock.advance(Duration::from_secs(10));
            elapsed += Duration::from_secs(10);
        }
    }
}

#[test]
fn status_serializes_unknown_as_null() {
    let (tracker, clock) = new_tracker("99.9", "28d");
    record(&tracker, 999, 1);
    clock.advance(10 * MINUTE);
    let json = serde_json::to_value(tracker.status()).unwrap();
    assert_eq!(json["name"], "orders");
    assert_eq!(json["kind"], "availability");
    assert_eq!(json["target"], "0.999");
    assert_eq!(json["period"], "28days");
    assert_eq!(json["burn_rates"]["5m"], serde_json::Value::Null);
    assert_eq!(json["burn_rates"]["30m"], 1.0);
    assert_eq!(json["time_to_exhaustion_seconds"], 0.0);
    // A burn rate of 1 is above the 3 d threshold of a 28-day period, 0.933.
    assert_eq!(json["alerts"], serde_json::json!(["ticket"]));
}

#[test]
fn period_at_least_longest_window() {
    let (tracker, _clock) = new_tracker("99", "3d");
    assert_eq!(tracker.definition().period, LONGEST_WINDOW);
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::slo::window::FINE_SLOTS;

    /// Returns the start of the bucket an event of fine interval `event` is counted in at
    /// fine interval `current`, following the layout in the window module docs.
    fn bucket_start(event: i64, current: i64) -> i64 {
        let fine = i64::try_from(FINE_SLOTS).unwrap();
        if event > current - fine {
            return event;
        }
        let newest_medium = (current - fine) / 30;
        let medium = event / 30;
        if medium + 864 > newest_medium {
            medium * 30
        } else {
            medium / 12 * 360
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn windows_match_recount(
            events in proptest::collection::vec((0_u64..40_000, any::<bool>()), 1..200),
            tail in 0_u64..400_000,
        ) {
            let (tracker, clock) = new_tracker("99", "30d");
            let mut recorded = Vec::new();
            for (gap, bad) in events {
                clock.advance(Duration::from_secs(gap));
                tracker.record(if bad { Outcome::Bad } else { Outcome::Good });
                recorded.push((interval(clock.now()), bad));
            }
            clock.advance(Duration::from_secs(tail));
            let current = i64::try_from(interval(clock.now())).unwrap();
            let status = tracker.status();

            let mut lengths: Vec<u64> = Window::ALL.iter().map(|w| w.seconds() / 10).collect();
            lengths.push(30 * 86_400 / 10);
            let mut expected = Vec::new();
            for length in &lengths {
                let start = current + 1 - i64::try_from(*length).unwrap();
                let (mut valid, mut bad_count) = (0_u64, 0_u64);
                for (event, bad) in &recorded {
                    let event = i64::try_from(*event).unwrap();
                    if bucket_start(event, current) >= start {
                        valid += 1;
                        bad_count += u64::from(*bad);
                    }
                }
                expected.push((valid, bad_count));
            }

            for (window, rate) in status.burn_rates.iter() {
                let (valid, bad) = expected[window.index()];
                let recount = (valid > 0).then(|| ratio_to_f64(u128::from(bad) * 100, u128::from(valid)));
                prop_assert_eq!(rate, recount, "window {}", window);
            }
            let period = expected[Window::ALL.len()];
            prop_assert_eq!((status.valid, status.bad), period);
        }
    }
}
