//! SLO tracker benchmarks: recording one event, and the status of a 30-day SLO.
//!
//! The peer is a `prometheus` crate counter, the usual way to count requests for SLO rules.

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "benchmark setup")]

use std::sync::Arc;
use std::time::Duration;

use divan::{Bencher, black_box};
use obskit::clock::{Clock, ManualClock};
use obskit::slo::{Outcome, SloDefinition, SloTracker};

fn main() {
    let (tracker, _clock) = filled_tracker();
    println!(
        "memory per 30-day SLO: {} bytes (size_of {} + buckets)",
        tracker.memory_bytes(),
        size_of::<SloTracker>()
    );
    divan::main();
}

fn tracker() -> (SloTracker, ManualClock) {
    let definition = SloDefinition::builder("orders")
        .target(99.9)
        .period("30d")
        .route("/orders")
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let tracker = SloTracker::new(definition, Arc::new(clock.clone())).unwrap();
    (tracker, clock)
}

/// Builds a tracker with events in every 10 s bucket of its 30 days.
fn filled_tracker() -> (SloTracker, ManualClock) {
    let (tracker, clock) = tracker();
    for step in 0..(30 * 24 * 360) {
        tracker.record(if step % 97 == 0 {
            Outcome::Bad
        } else {
            Outcome::Good
        });
        clock.advance(Duration::from_secs(10));
    }
    (tracker, clock)
}

#[divan::bench]
fn record_one_event(bencher: Bencher<'_, '_>) {
    let (tracker, clock) = tracker();
    let now = clock.now();
    bencher.bench_local(|| tracker.record_at(black_box(now), black_box(Outcome::Good)));
}

/// As `init` sets it up: the tracker reads the coarse monotonic clock.
#[divan::bench]
fn record_one_event_reading_coarse_clock(bencher: Bencher<'_, '_>) {
    let definition = SloDefinition::builder("orders")
        .target(99.9)
        .period("30d")
        .route("/orders")
        .build()
        .unwrap();
    let tracker = SloTracker::new(
        definition,
        Arc::new(obskit::clock::CoarseMonotonicClock::new()),
    )
    .unwrap();
    bencher.bench_local(|| tracker.record(black_box(Outcome::Good)));
}

#[divan::bench]
fn record_one_event_reading_clock(bencher: Bencher<'_, '_>) {
    let definition = SloDefinition::builder("orders")
        .target(99.9)
        .period("30d")
        .route("/orders")
        .build()
        .unwrap();
    let tracker =
        SloTracker::new(definition, Arc::new(obskit::clock::MonotonicClock::new())).unwrap();
    bencher.bench_local(|| tracker.record(black_box(Outcome::Good)));
}

#[divan::bench]
fn peer_prometheus_counter_inc(bencher: Bencher<'_, '_>) {
    let counter = prometheus::IntCounterVec::new(
        prometheus::Opts::new("requests_total", "Requests."),
        &["outcome"],
    )
    .unwrap();
    let good = counter.with_label_values(&["good"]);
    bencher.bench_local(|| black_box(&good).inc());
}

#[divan::bench]
fn status_thirty_days(bencher: Bencher<'_, '_>) {
    let (tracker, _clock) = filled_tracker();
    bencher.bench_local(|| black_box(tracker.status()));
}
