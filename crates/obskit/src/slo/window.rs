//! Bounded, tiered time buckets of good and bad event counts, for rolling windows.
//!
//! # Layout
//!
//! | Tier | Bucket | Buckets | Covers | Bytes |
//! |---|---|---|---|---|
//! | fine | 10 s | 2 160 | the last 6 h | 51 840 |
//! | medium | 5 min | 864 | 3 d before the fine tier | 20 736 |
//! | coarse | 1 h | period in hours + 2 | the rest of the period | 17 328 for 30 d |
//!
//! Every bucket is 24 bytes: the index of the interval it counts (its epoch), good events and
//! bad events. The size depends only on the period, never on traffic: about 90 KB for a
//! 30-day period.
//!
//! Recording adds to one fine bucket with one atomic operation and takes no lock while the
//! bucket's epoch is the event's interval. Once per 10 s interval, one recording or a reader
//! takes the lock to advance. A fine bucket that is reused then rolls its counts into the
//! medium bucket of its 5 minutes, and a reused medium bucket rolls into the coarse bucket of
//! its hour. A coarse bucket older than the period is dropped when reused.
//!
//! # Window edges
//!
//! A window of length `W` at time `now` counts the fine buckets of the last `W / 10 s`
//! intervals, the current partial one included, so an event at `t` counts while
//! `now - t < W` when both are interval-aligned. Beyond the fine tier, a window counts the
//! medium and coarse buckets that start inside it, so the far edge of the 1 d and 3 d windows
//! is rounded to 5 minutes, and that of the period to 1 hour, always inward.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Length of a fine bucket in seconds.
pub(crate) const FINE_SECONDS: u64 = 10;
/// Fine buckets: 6 hours.
pub(crate) const FINE_SLOTS: u64 = 6 * 3600 / FINE_SECONDS;
/// Fine buckets per medium bucket: 5 minutes.
const FINE_PER_MEDIUM: u64 = 30;
/// Medium buckets: 3 days.
const MEDIUM_SLOTS: u64 = 3 * 24 * 12;
/// Fine buckets per coarse bucket: 1 hour.
const FINE_PER_COARSE: u64 = 360;
/// Medium buckets per coarse bucket.
const MEDIUM_PER_COARSE: u64 = FINE_PER_COARSE / FINE_PER_MEDIUM;

/// Epoch of a bucket that has never counted anything.
const EMPTY: u64 = u64::MAX;

/// Good and bad events of one interval or window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) good: u64,
    pub(crate) bad: u64,
}

impl Counts {
    pub(crate) fn valid(self) -> u64 {
        self.good.saturating_add(self.bad)
    }

    fn add(&mut self, other: Self) {
        self.good = self.good.saturating_add(other.good);
        self.bad = self.bad.saturating_add(other.bad);
    }
}

#[derive(Debug)]
struct FineSlot {
    epoch: AtomicU64,
    good: AtomicU64,
    bad: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    epoch: u64,
    counts: Counts,
}

const EMPTY_SLOT: Slot = Slot {
    epoch: EMPTY,
    counts: Counts { good: 0, bad: 0 },
};

#[derive(Debug)]
struct Rolled {
    /// Newest fine interval advanced to.
    current: u64,
    medium: Box<[Slot]>,
    coarse: Box<[Slot]>,
}

/// Counts of good and bad events in rolling windows; see the module docs for the layout.
#[derive(Debug)]
pub(crate) struct Windows {
    fine: Box<[FineSlot]>,
    rolled: Mutex<Rolled>,
    /// Events older than the fine tier when recorded, which are dropped.
    late: AtomicU64,
}

/// Returns the fine interval of a time on the tracker's clock.
#[inline]
pub(crate) fn interval(now: Duration) -> u64 {
    now.as_secs() / FINE_SECONDS
}

impl Windows {
    /// Builds empty windows for a period, starting at the interval of `now`.
    pub(crate) fn new(period: Duration, now: Duration) -> Self {
        let fine = (0..FINE_SLOTS)
            .map(|_| FineSlot {
                epoch: AtomicU64::new(EMPTY),
                good: AtomicU64::new(0),
                bad: AtomicU64::new(0),
            })
            .collect::<Box<[_]>>();
        let current = interval(now);
        if let Some(slot) = fine.get(slot_of(current, FINE_SLOTS)) {
            slot.epoch.store(current, Ordering::Release);
        }
        let coarse_slots = period.as_secs().div_ceil(FINE_SECONDS * FINE_PER_COARSE) + 2;
        let coarse_slots = usize::try_from(coarse_slots).unwrap_or(usize::MAX);
        let medium_slots = usize::try_from(MEDIUM_SLOTS).unwrap_or(usize::MAX);
        Self {
            fine,
            rolled: Mutex::new(Rolled {
                current,
                medium: vec![EMPTY_SLOT; medium_slots].into_boxed_slice(),
                coarse: vec![EMPTY_SLOT; coarse_slots].into_boxed_slice(),
            }),
            late: AtomicU64::new(0),
        }
    }

    /// Returns the bytes this value and its buckets take.
    pub(crate) fn memory_bytes(&self) -> usize {
        let rolled = self.rolled.lock();
        size_of::<Self>()
            + size_of_val(&*self.fine)
            + size_of_val(&*rolled.medium)
            + size_of_val(&*rolled.coarse)
    }

    /// Returns how many events were dropped because they were older than the fine tier.
    pub(crate) fn late_events(&self) -> u64 {
        self.late.load(Ordering::Relaxed)
    }

    /// Counts one event in the fine interval `index`.
    #[inline]
    pub(crate) fn record(&self, index: u64, bad: bool) {
        if let Some(slot) = self.fine.get(slot_of(index, FINE_SLOTS))
            && slot.epoch.load(Ordering::Acquire) == index
        {
            slot.counter(bad).fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.record_slow(index, bad);
    }

    #[cold]
    fn record_slow(&self, index: u64, bad: bool) {
        let mut rolled = self.rolled.lock();
        self.advance(&mut rolled, index);
        match self.fine.get(slot_of(index, FINE_SLOTS)) {
            Some(slot) if slot.epoch.load(Ordering::Acquire) == index => {
                slot.counter(bad).fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.late.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Moves the newest interval to `to`, rolling reused fine buckets into the medium tier.
    fn advance(&self, rolled: &mut Rolled, to: u64) {
        if to <= rolled.current {
            return;
        }
        // Only the last FINE_SLOTS intervals stay in the fine tier, so after a pause longer
        // than the tier the range starts there and reuses each bucket once.
        let first = (rolled.current + 1).max(to.saturating_sub(FINE_SLOTS - 1));
        for index in first..=to {
            let Some(slot) = self.fine.get(slot_of(index, FINE_SLOTS)) else {
                continue;
            };
            let epoch = slot.epoch.load(Ordering::Acquire);
            let counts = Counts {
                good: slot.good.swap(0, Ordering::AcqRel),
                bad: slot.bad.swap(0, Ordering::AcqRel),
            };
            slot.epoch.store(index, Ordering::Release);
            if epoch != EMPTY {
                rolled.roll_medium(epoch / FINE_PER_MEDIUM, counts);
            }
        }
        rolled.current = to;
    }

    /// Advances to the interval of `now` and returns the counts of each window, given as a
    /// number of fine intervals in increasing order.
    ///
    /// Each bucket is added once, to the segment of the shortest window that contains it, and
    /// the windows are the running sums of the segments.
    pub(crate) fn sums<const N: usize>(&self, now: Duration, lengths: [u64; N]) -> [Counts; N] {
        let mut rolled = self.rolled.lock();
        self.advance(&mut rolled, interval(now));
        let current = rolled.current;
        let starts = lengths.map(|length| (current + 1).saturating_sub(length));
        let mut sums = [Counts::default(); N];
        debug_assert!(
            lengths.is_sorted(),
            "window lengths must increase: {lengths:?}"
        );

        // Fine tier: walk back from the newest interval, so each window's buckets are a run
        // of ages and need no search.
        let fine_ages = FINE_SLOTS.min(current + 1);
        let mut age = 0;
        for (segment, length) in sums.iter_mut().zip(lengths) {
            while age < length.min(fine_ages) {
                let index = current - age;
                age += 1;
                let Some(slot) = self.fine.get(slot_of(index, FINE_SLOTS)) else {
                    continue;
                };
                if slot.epoch.load(Ordering::Acquire) == index {
                    segment.add(Counts {
                        good: slot.good.load(Ordering::Relaxed),
                        bad: slot.bad.load(Ordering::Relaxed),
                    });
                }
            }
        }

        for slot in &rolled.medium {
            if slot.epoch != EMPTY {
                let start = slot.epoch.saturating_mul(FINE_PER_MEDIUM);
                add_where_started(&mut sums, &starts, start, slot.counts);
            }
        }
        for slot in &rolled.coarse {
            if slot.epoch != EMPTY {
                let start = slot.epoch.saturating_mul(FINE_PER_COARSE);
                add_where_started(&mut sums, &starts, start, slot.counts);
            }
        }

        let mut running = Counts::default();
        for sum in &mut sums {
            running.add(*sum);
            *sum = running;
        }
        sums
    }
}

impl FineSlot {
    #[inline]
    fn counter(&self, bad: bool) -> &AtomicU64 {
        if bad { &self.bad } else { &self.good }
    }
}

impl Rolled {
    fn roll_medium(&mut self, index: u64, counts: Counts) {
        let Some(slot) = self.medium.get_mut(slot_of(index, MEDIUM_SLOTS)) else {
            return;
        };
        if slot.epoch == index {
            slot.counts.add(counts);
            return;
        }
        if slot.epoch != EMPTY && slot.epoch > index {
            // Older than the whole medium tier: it belongs to the coarse tier already.
            self.roll_coarse(index / MEDIUM_PER_COARSE, counts);
            return;
        }
        let evicted = *slot;
        *slot = Slot {
            epoch: index,
            counts,
        };
        if evicted.epoch != EMPTY {
            self.roll_coarse(evicted.epoch / MEDIUM_PER_COARSE, evicted.counts);
        }
    }

    fn roll_coarse(&mut self, index: u64, counts: Counts) {
        let length = u64::try_from(self.coarse.len()).unwrap_or(u64::MAX);
        let Some(slot) = self.coarse.get_mut(slot_of(index, length)) else {
            return;
        };
        if slot.epoch == index {
            slot.counts.add(counts);
        } else if slot.epoch == EMPTY || slot.epoch < index {
            // The evicted hour is older than the period.
            *slot = Slot {
                epoch: index,
                counts,
            };
        }
    }
}

/// Adds `counts` to the segment of the shortest window that starts at or before `start`.
/// `starts` is in decreasing order, so every longer window contains the bucket too.
#[inline]
fn add_where_started<const N: usize>(
    segments: &mut [Counts; N],
    starts: &[u64; N],
    start: u64,
    counts: Counts,
) {
    // Search from the longest window: medium and coarse buckets are mostly in the longest.
    let mut shortest = N;
    while shortest > 0
        && starts
            .get(shortest - 1)
            .is_some_and(|window| *window <= start)
    {
        shortest -= 1;
    }
    if let Some(segment) = segments.get_mut(shortest) {
        segment.add(counts);
    }
}

#[inline]
fn slot_of(index: u64, slots: u64) -> usize {
    // The remainder is below the slot count, which is a usize.
    usize::try_from(index % slots).unwrap_or(0)
}
