//! The monotonic clock that breakers, limiters and SLO windows read, and a manual clock for tests.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock: the time elapsed since a fixed origin.
///
/// Breakers, sliding windows and SLO trackers read time only through this trait, so a test can drive them
/// with a [`ManualClock`] instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Returns the time elapsed since the clock's origin. It never decreases.
    fn now(&self) -> Duration;
}

/// The system's monotonic clock ([`Instant`]).
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// Returns a clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// The kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE` on Linux).
///
/// A read costs about a quarter of an [`Instant`] read (8 ns against 32 ns on the benchmark
/// machine) because it returns the time of the last timer tick instead of asking the clock
/// source. Its resolution is that tick: 1 to 4 ms depending on the kernel's `CONFIG_HZ`. Circuit
/// breakers read it by default, because they time calls against thresholds of a second or more
/// and waits of seconds. Give a breaker a [`MonotonicClock`] to time calls against a threshold of
/// a few milliseconds. On systems other than Linux and Android it reads [`Instant`].
#[derive(Debug, Clone, Copy)]
pub struct CoarseMonotonicClock {
    origin: Duration,
    /// `origin` in nanoseconds, for [`now_nanos`](Self::now_nanos).
    origin_nanos: u64,
}

impl CoarseMonotonicClock {
    /// Returns a clock whose origin is now.
    pub fn new() -> Self {
        let origin = coarse_now();
        Self {
            origin,
            origin_nanos: u64::try_from(origin.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

impl Default for CoarseMonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for CoarseMonotonicClock {
    #[inline]
    fn now(&self) -> Duration {
        coarse_now().saturating_sub(self.origin)
    }
}

impl CoarseMonotonicClock {
    /// Returns [`now`](Clock::now) in nanoseconds, saturating, without building a `Duration`
    /// on the way: a circuit breaker reads it twice per call.
    #[inline]
    #[cfg_attr(
        not(feature = "resilience"),
        expect(dead_code, reason = "read by circuit breakers only")
    )]
    pub(crate) fn now_nanos(&self) -> u64 {
        coarse_now_nanos().saturating_sub(self.origin_nanos)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn coarse_now_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    // The kernel keeps both fields non-negative and the nanoseconds below one second.
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn coarse_now_nanos() -> u64 {
    u64::try_from(coarse_now().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn coarse_now() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    // The kernel keeps both fields non-negative and the nanoseconds below one second.
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Duration::new(seconds, nanos)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn coarse_now() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// A clock that moves only when advanced, for tests.
///
/// Clones share the same time.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// Returns a clock standing at its origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`, saturating at about 584 years.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_shared_by_clones() {
        let clock = ManualClock::new();
        let clone = clock.clone();
        assert_eq!(clock.now(), Duration::ZERO);
        clone.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Duration::from_millis(1500));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn coarse_clock_follows_precise_clock() {
        let coarse = CoarseMonotonicClock::new();
        let precise = MonotonicClock::new();
        let mut last = coarse.now();
        for _ in 0..1000 {
            let now = coarse.now();
            assert!(now >= last, "{now:?} < {last:?}");
            last = now;
        }
        std::thread::sleep(Duration::from_millis(30));
        let (coarse_elapsed, precise_elapsed) = (coarse.now(), precise.now());
        // Both started within a tick of each other; the coarse clock lags by at most two ticks
        // of at most 4 ms.
        assert!(
            coarse_elapsed >= Duration::from_millis(20),
            "{coarse_elapsed:?}"
        );
        assert!(
            coarse_elapsed <= precise_elapsed + Duration::from_millis(10),
            "{coarse_elapsed:?} > {precise_elapsed:?}"
        );
    }

    #[test]
    fn monotonic_clock_never_goes_back() {
        let clock = MonotonicClock::new();
        let first = clock.now();
        let second = clock.now();
        assert!(second >= first, "{second:?} < {first:?}");
    }
}
