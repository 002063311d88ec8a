//! Benchmarks of rate limit checks: obskit's direct and keyed limiters next to governor's own.
//!
//! Run with `cargo bench -p obskit --bench rate_limit`. Every limiter admits far more than the
//! benchmark sends, so each check is an admitted decision.

#![allow(clippy::panic, reason = "a benchmark whose setup fails must stop")]

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

use divan::{Bencher, black_box};
use obskit::metrics::Registry;
use obskit::resilience::rate_limit::{ClientKey, KeyedRateLimiter, Quota, RateLimiter};

/// Distinct clients in the keyed benchmarks, so lookups hit a table of realistic size.
const CLIENTS: u32 = 1_000;
const RATE: u32 = 1_000_000_000;

fn main() {
    divan::main();
}

fn quota() -> Quota {
    Quota::per_second(RATE).unwrap_or_else(|error| panic!("{error}"))
}

fn governor_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(RATE).unwrap_or(NonZeroU32::MIN))
}

fn clients() -> Vec<ClientKey> {
    (0..CLIENTS)
        .map(|n| ClientKey::from_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))))
        .collect()
}

#[divan::bench]
fn direct_obskit(bencher: Bencher<'_, '_>) {
    let limiter = RateLimiter::builder("bench", quota())
        .registry(&Registry::default())
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    bencher.bench_local(|| black_box(limiter.check()).is_ok());
}

#[divan::bench]
fn direct_governor(bencher: Bencher<'_, '_>) {
    let limiter = governor::RateLimiter::direct(governor_quota());
    bencher.bench_local(|| black_box(limiter.check()).is_ok());
}

#[divan::bench]
fn keyed_obskit(bencher: Bencher<'_, '_>) {
    let limiter: KeyedRateLimiter<ClientKey> = RateLimiter::builder("bench", quota())
        .registry(&Registry::default())
        .build_keyed()
        .unwrap_or_else(|error| panic!("{error}"));
    let clients = clients();
    let mut next = clients.iter().cycle();
    bencher.bench_local(|| {
        next.next()
            .is_some_and(|client| black_box(limiter.check_key(client)).is_ok())
    });
}

#[divan::bench]
fn keyed_governor(bencher: Bencher<'_, '_>) {
    let limiter = governor::RateLimiter::keyed(governor_quota());
    let clients = clients();
    let mut next = clients.iter().cycle();
    bencher.bench_local(|| {
        next.next()
            .is_some_and(|client| black_box(limiter.check_key(client)).is_ok())
    });
}
