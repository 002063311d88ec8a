use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::slo::Window;

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// Tier sizes from the module docs in fine intervals of 10 s, written out independently of
/// the implementation's constants.
const FINE_TIER: u64 = 6 * HOUR / 10;
const MEDIUM_BUCKET: u64 = 5 * 60 / 10;
const MEDIUM_TIER_BUCKETS: u64 = 3 * DAY / (5 * 60);
const COARSE_BUCKET: u64 = HOUR / 10;

/// Window lengths in fine intervals as the tracker passes them: the alert windows, then the
/// period.
fn lengths(period_seconds: u64) -> [u64; 8] {
    let mut lengths = [period_seconds / 10; 8];
    for (length, window) in lengths.iter_mut().zip(Window::ALL) {
        *length = window.seconds() / 10;
    }
    lengths
}

fn at(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// A recount of the window sums from the list of recorded events, following the rules of the
/// module docs.
#[derive(Debug)]
struct Reference {
    /// Fine interval the windows were built at. Earlier events are late.
    created: u64,
    /// Newest fine interval recorded or read.
    current: u64,
    /// Fine interval and outcome of each event that was not late.
    events: Vec<(u64, bool)>,
    late: u64,
}

impl Reference {
    fn new(created: u64) -> Self {
        Self {
            created,
            current: created,
            events: Vec::new(),
            late: 0,
        }
    }

    fn record(&mut self, index: u64, bad: bool) {
        self.current = self.current.max(index);
        if index >= self.created && index + FINE_TIER > self.current {
            self.events.push((index, bad));
        } else {
            self.late += 1;
        }
    }

    fn sums(&mut self, index: u64, lengths: &[u64]) -> Vec<Counts> {
        self.current = self.current.max(index);
        let mut sums = Vec::new();
        for length in lengths {
            let start = (self.current + 1).saturating_sub(*length);
            let mut counts = Counts::default();
            for (event, bad) in &self.events {
                if self.bucket_start(*event) >= start {
                    if *bad {
                        counts.bad += 1;
                    } else {
                        counts.good += 1;
                    }
                }
            }
            sums.push(counts);
        }
        sums
    }

    /// Returns the minimum and maximum events a window of `length` intervals may count by
    /// the window edges of the module docs. The maximum is every event inside the window.
    /// The minimum leaves out those within 5 minutes of the far edge of the 1 d and 3 d
    /// windows, or within 1 hour of the far edge of the period.
    fn edge_bounds(&self, length: u64) -> (u64, u64) {
        let start = (self.current + 1).saturating_sub(length);
        let rounding = if length <= FINE_TIER {
            0
        } else if length <= 3 * DAY / 10 {
            MEDIUM_BUCKET - 1
        } else {
            COARSE_BUCKET - 1
        };
        let count_from = |first: u64| {
            let inside = self.events.iter().filter(|(event, _)| *event >= first);
            u64::try_from(inside.count()).unwrap()
        };
        (count_from(start + rounding), count_from(start))
    }

    /// Returns the first fine interval of the bucket that now contains an event of interval
    /// `event`: its own in the fine tier, its 5 minutes in the 3 days before the fine tier,
    /// its hour before that.
    fn bucket_start(&self, event: u64) -> u64 {
        if event + FINE_TIER > self.current {
            return event;
        }
        let medium = event / MEDIUM_BUCKET;
        let newest_medium = (self.current - FINE_TIER) / MEDIUM_BUCKET;
        if medium + MEDIUM_TIER_BUCKETS > newest_medium {
            return medium * MEDIUM_BUCKET;
        }
        event / COARSE_BUCKET * COARSE_BUCKET
    }
}

/// One event at `back` seconds before the current time, or one read of the windows.
#[derive(Debug, Clone)]
enum Step {
    Record { back: u64, bad: bool },
    Read { back: u64 },
}

/// Seconds between steps: mostly short, with pauses longer than the fine tier (6 h), than
/// the medium tier (3 d) and close to a whole period.
fn gap() -> impl Strategy<Value = u64> {
    prop_oneof![
        20 => 0..=120_u64,
        8 => 0..=1_800_u64,
        4 => 0..=8 * HOUR,
        2 => 6 * HOUR..=5 * DAY,
        1 => 25 * DAY..=33 * DAY,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    // Events up to 6 h back are out of order but still in the fine tier, and older ones are
    // late.
    let back = prop_oneof![
        4 => Just(0_u64),
        3 => 0..6 * HOUR,
        1 => 6 * HOUR..=7 * HOUR,
    ];
    let read_back = prop_oneof![3 => Just(0_u64), 1 => 0..=HOUR];
    prop_oneof![
        3 => (back, any::<bool>()).prop_map(|(back, bad)| Step::Record { back, bad }),
        1 => read_back.prop_map(|back| Step::Read { back }),
    ]
}

fn period() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(3 * DAY),
        Just(28 * DAY),
        Just(30 * DAY),
        3 * DAY..=40 * DAY,
    ]
}

/// Reads the windows at `seconds` and compares each sum with the recount.
fn check_read(
    windows: &Windows,
    reference: &mut Reference,
    seconds: u64,
    lengths: [u64; 8],
) -> Result<(), TestCaseError> {
    let sums = windows.sums(at(seconds), lengths);
    let expected = reference.sums(seconds / 10, &lengths);
    for (length, sum) in lengths.iter().zip(sums) {
        let (minimum, maximum) = reference.edge_bounds(*length);
        let valid = sum.valid();
        prop_assert!(
            (minimum..=maximum).contains(&valid),
            "window of {} intervals read at interval {}: {} events, the module docs allow {}..={}",
            length,
            reference.current,
            valid,
            minimum,
            maximum
        );
    }
    for ((length, sum), expected) in lengths.iter().zip(sums).zip(expected) {
        prop_assert_eq!(
            sum,
            expected,
            "window of {} intervals read at interval {}",
            length,
            reference.current
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sums_match_recount(
        period in period(),
        created in 0..=2_000_000_u64,
        steps in vec((gap(), step()), 1..200),
        sweep_step in HOUR / 2..=7 * HOUR,
    ) {
        let windows = Windows::new(at(period), at(created));
        let mut reference = Reference::new(created / 10);
        let lengths = lengths(period);

        let mut now = created;
        for (gap, step) in steps {
            now += gap;
            match step {
                Step::Record { back, bad } => {
                    let seconds = now.saturating_sub(back);
                    windows.record(interval(at(seconds)), bad);
                    reference.record(seconds / 10, bad);
                }
                Step::Read { back } => {
                    check_read(&windows, &mut reference, now.saturating_sub(back), lengths)?;
                }
            }
        }

        // Follow the last events through every tier until the period drops them.
        let end = now + 33 * DAY;
        while now < end {
            now += sweep_step;
            check_read(&windows, &mut reference, now, lengths)?;
        }
        prop_assert_eq!(windows.late_events(), reference.late);
    }
}

#[test]
fn period_edge_hourly_after_idle() {
    let windows = Windows::new(at(30 * DAY), at(0));
    let lengths = lengths(30 * DAY);
    // 55 minutes into the first hour, so its 5-minute bucket starts at fine interval 330.
    windows.record(interval(at(55 * 60)), true);

    // Nothing is recorded or read for 30 days, so the event waits in the fine tier.
    let sums = windows.sums(at(30 * DAY - 10), lengths);
    assert_eq!(sums[7].bad, 1, "the period starts at the event's hour");
    let sums = windows.sums(at(30 * DAY), lengths);
    assert_eq!(
        sums[7].bad, 0,
        "the period starts 10 s after the event's hour"
    );
    assert_eq!(sums[6].bad, 0, "3 d window");
}

#[test]
fn day_edge_at_five_minutes() {
    let windows = Windows::new(at(30 * DAY), at(0));
    let lengths = lengths(30 * DAY);
    // Fine interval 100, in the 5-minute bucket that starts at interval 90.
    windows.record(interval(at(1_000)), false);

    // The 1 d window read at interval 8 729 starts at interval 90.
    let sums = windows.sums(at(87_290), lengths);
    assert_eq!(sums[5].good, 1, "1 d window at its last interval");
    let sums = windows.sums(at(87_300), lengths);
    assert_eq!(sums[5].good, 0, "1 d window one interval later");
    assert_eq!(sums[6].good, 1, "3 d window");
    assert_eq!(sums[7].good, 1, "period");
}

#[test]
fn late_event_dropped_and_counted() {
    let windows = Windows::new(at(30 * DAY), at(DAY));
    windows.record(interval(at(DAY - 10)), true);
    assert_eq!(windows.late_events(), 1, "before the windows were built");

    windows.record(interval(at(DAY + 7 * HOUR)), false);
    windows.record(interval(at(DAY + HOUR - 10)), true);
    windows.record(interval(at(DAY + HOUR + 10)), true);
    assert_eq!(
        windows.late_events(),
        2,
        "more than 6 h before the newest event"
    );

    let sums = windows.sums(at(DAY + 7 * HOUR), lengths(30 * DAY));
    assert_eq!(sums[7], Counts { good: 1, bad: 1 });
}

/// Reads the windows at every 10 s step from `from` to `to` and compares each with the
/// recount.
fn sweep(
    windows: &Windows,
    reference: &mut Reference,
    from: u64,
    to: u64,
    lengths: [u64; 8],
) -> Result<(), TestCaseError> {
    let mut seconds = from;
    while seconds <= to {
        check_read(windows, reference, seconds, lengths)?;
        seconds += 10;
    }
    Ok(())
}

#[test]
fn edges_match_recount_for_each_period() {
    for days in [3, 7, 28, 30, 90, 365] {
        let period = days * DAY;
        let lengths = lengths(period);
        let created = 1_234_567_u64;
        let windows = Windows::new(at(period), at(created));
        let bytes = windows.memory_bytes();
        let mut reference = Reference::new(created / 10);

        // Ten hours of events every 7 min 13 s, each followed by one 2 h 55 min earlier.
        let mut events = Vec::new();
        let mut now = created + 5;
        while now < created + 10 * HOUR {
            for (seconds, bad) in [
                (now, now.is_multiple_of(3)),
                (now.saturating_sub(10_500), true),
            ] {
                windows.record(interval(at(seconds)), bad);
                reference.record(seconds / 10, bad);
            }
            events.push(now);
            now += 433;
        }

        // Every 10 s around the edges the first and last events cross: leaving the fine
        // tier, the 1 d and 3 d windows, the medium tier, and the period.
        let mut edges: Vec<u64> = [events[0], events[events.len() - 1]]
            .into_iter()
            .flat_map(|event| {
                [
                    event + 6 * HOUR,
                    event + DAY,
                    event + 3 * DAY,
                    event + 3 * DAY + 6 * HOUR,
                    event + period,
                ]
            })
            .collect();
        edges.sort_unstable();
        for edge in edges {
            let from = (edge - 400).max(now);
            sweep(&windows, &mut reference, from, edge + 400, lengths)
                .unwrap_or_else(|error| panic!("period of {days} d: {error}"));
            now = now.max(edge + 400);
        }
        assert_eq!(windows.late_events(), reference.late, "period of {days} d");
        assert_eq!(windows.memory_bytes(), bytes, "period of {days} d");
    }
}

#[test]
fn jump_past_period_empties_every_window() {
    for days in [3, 7, 28, 30, 90, 365] {
        let period = days * DAY;
        let lengths = lengths(period);
        let windows = Windows::new(at(period), at(0));
        let bytes = windows.memory_bytes();
        let mut reference = Reference::new(0);
        let mut now = 0_u64;
        for jump in [
            5 * HOUR,
            2 * DAY,
            4 * DAY,
            period + 10,
            3 * period + DAY,
            10 * HOUR,
        ] {
            for back in [0, 3 * HOUR, 5 * HOUR + 3590] {
                let seconds = now.saturating_sub(back);
                windows.record(interval(at(seconds)), back != 0);
                reference.record(seconds / 10, back != 0);
            }
            now += jump;
            // A jump longer than the period leaves only the events recorded after it.
            check_read(&windows, &mut reference, now, lengths)
                .unwrap_or_else(|error| panic!("period of {days} d: {error}"));
            windows.record(interval(at(now)), false);
            reference.record(now / 10, false);
            sweep(&windows, &mut reference, now, now + 120, lengths)
                .unwrap_or_else(|error| panic!("period of {days} d: {error}"));
            now += 120;
        }
        let sums = windows.sums(at(now + 2 * period), lengths);
        assert_eq!(sums, [Counts::default(); 8], "period of {days} d");
        assert_eq!(windows.memory_bytes(), bytes, "period of {days} d");
    }
}

#[test]
fn memory_bytes_follow_the_layout() {
    for days in [3, 7, 28, 30, 90, 365] {
        let windows = Windows::new(at(days * DAY), at(0));
        let coarse_buckets = days * 24 + 2;
        let buckets = FINE_TIER + MEDIUM_TIER_BUCKETS + coarse_buckets;
        let expected = size_of::<Windows>() + usize::try_from(buckets * 24).unwrap();
        assert_eq!(windows.memory_bytes(), expected, "period of {days} d");
    }
}
