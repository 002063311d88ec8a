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
//! medium bucket of its 5 minutes. A medium bucket rolls into the coarse bucket of its hour
//! once it is older than the 3 days before the fine tier, even after a pause without events.
//! A coarse bucket is dropped once it starts before the period.
//!
//! # Reading
//!
//! A bucket of the medium or coarse tier sits in the slot of its epoch modulo the slot count,
//! and each of these tiers keeps the total of its buckets. A window sums the fine buckets it
//! covers in memory order. From the other tiers it reads only the buckets at its far edge:
//! the total minus the buckets that start before the window, or the buckets that start inside
//! it, whichever are fewer. For a 30-day period that is about 290 medium buckets (216 inside
//! the 1 d window, 72 before the 3 d window) besides the 2 160 fine buckets.
//!
//! # Window edges
//!
//! A window of length `W` at time `now` counts the fine buckets of the last `W / 10 s`
//! intervals, the current partial one included, so an event at `t` counts while
//! `now - t < W` when both are interval-aligned. Beyond the fine tier, a window counts the
//! medium and coarse buckets that start inside it, so the far edge of the 1 d and 3 d windows
//! is rounded to 5 minutes, and that of the period to 1 hour, always inward.

use std::ops::Range;
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
///
/// Sums wrap instead of saturating, because a count reaches 2^64 only after 584 years at 10^9
/// events per second, and wrapping keeps a tier's total minus some of its buckets exact.
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
        self.good = self.good.wrapping_add(other.good);
        self.bad = self.bad.wrapping_add(other.bad);
    }

    fn subtract(&mut self, other: Self) {
        self.good = self.good.wrapping_sub(other.good);
        self.bad = self.bad.wrapping_sub(other.bad);
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

/// The buckets of the medium or coarse tier, each in the slot of its epoch modulo the slot
/// count.
#[derive(Debug)]
struct Tier {
    slots: Box<[Slot]>,
    /// Sum of the counts of every bucket in `slots`.
    total: Counts,
    /// Oldest epoch the tier may contain. Older buckets moved to the next tier or were dropped.
    first: u64,
    /// Newest epoch the tier has held.
    newest: u64,
}

#[derive(Debug)]
struct Rolled {
    /// Newest fine interval advanced to.
    current: u64,
    /// Length of the period in fine intervals.
    period: u64,
    medium: Tier,
    coarse: Tier,
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
        Self {
            fine,
            rolled: Mutex::new(Rolled {
                current,
                period: period.as_secs() / FINE_SECONDS,
                medium: Tier::new(MEDIUM_SLOTS),
                coarse: Tier::new(coarse_slots),
            }),
            late: AtomicU64::new(0),
        }
    }

    /// Returns the bytes this value and its buckets take.
    pub(crate) fn memory_bytes(&self) -> usize {
        let rolled = self.rolled.lock();
        size_of::<Self>()
            + size_of_val(&*self.fine)
            + size_of_val(&*rolled.medium.slots)
            + size_of_val(&*rolled.coarse.slots)
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

    /// Moves the newest interval to `to`, rolling reused fine buckets into the medium tier
    /// and expired medium buckets into the coarse tier.
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
        rolled.expire();
    }

    /// Advances to the interval of `now` and returns the counts of each window, given as a
    /// number of fine intervals in increasing order and at most the period.
    pub(crate) fn sums<const N: usize>(&self, now: Duration, lengths: [u64; N]) -> [Counts; N] {
        debug_assert!(
            lengths.is_sorted(),
            "window lengths must increase: {lengths:?}"
        );
        let mut rolled = self.rolled.lock();
        self.advance(&mut rolled, interval(now));
        let current = rolled.current;
        debug_assert!(
            lengths.iter().all(|length| *length <= rolled.period),
            "window lengths must not exceed the period of {} intervals: {lengths:?}",
            rolled.period
        );

        // Each window adds the fine buckets between the previous window's far edge and its
        // own to the fine sum of the shorter windows.
        let fine_ages = FINE_SLOTS.min(current + 1);
        let mut fine = Counts::default();
        let mut age = 0;
        let mut sums = [Counts::default(); N];
        for (sum, length) in sums.iter_mut().zip(lengths) {
            let end = length.min(fine_ages);
            if end > age {
                fine.add(self.fine_sum(current + 1 - end, end - age));
                age = end;
            }
            let start = (current + 1).saturating_sub(length);
            *sum = fine;
            sum.add(rolled.medium.sum_from(start.div_ceil(FINE_PER_MEDIUM)));
            sum.add(rolled.coarse.sum_from(start.div_ceil(FINE_PER_COARSE)));
        }
        sums
    }

    /// Sums the fine buckets of the `count` intervals from `first`, which must be in the
    /// fine tier.
    ///
    /// The buckets need no epoch check. Advancing sets the epoch of every interval in the
    /// tier, so a bucket in range counts that interval or, if never used, is empty with zero
    /// counts. Recording adds only to a bucket whose epoch matches.
    fn fine_sum(&self, first: u64, count: u64) -> Counts {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let (head, tail) = ring_runs(&self.fine, slot_of(first, FINE_SLOTS), count);
        let mut sum = sum_fine_run(head);
        sum.add(sum_fine_run(tail));
        sum
    }
}

/// Sums a contiguous run of fine buckets, in plain adds that stay in registers.
fn sum_fine_run(slots: &[FineSlot]) -> Counts {
    let mut good = 0_u64;
    let mut bad = 0_u64;
    for slot in slots {
        good = good.wrapping_add(slot.good.load(Ordering::Relaxed));
        bad = bad.wrapping_add(slot.bad.load(Ordering::Relaxed));
    }
    Counts { good, bad }
}

impl FineSlot {
    #[inline]
    fn counter(&self, bad: bool) -> &AtomicU64 {
        if bad { &self.bad } else { &self.good }
    }
}

impl Rolled {
    fn roll_medium(&mut self, epoch: u64, counts: Counts) {
        // A bucket that does not fit in the medium tier is older than the tier.
        if let Some(bucket) = self.medium.insert(epoch, counts) {
            // A bucket that does not fit in the coarse tier starts before the period.
            let _dropped = self
                .coarse
                .insert(bucket.epoch / MEDIUM_PER_COARSE, bucket.counts);
        }
    }

    /// Moves the medium buckets older than the 3 days before the fine tier into the coarse
    /// tier, and drops the coarse buckets that start before the period.
    ///
    /// Without this, a medium bucket would stay until the slot is reused, which after a pause
    /// of more than 6 h without events could be long after its 3 days.
    fn expire(&mut self) {
        let Self {
            current,
            period,
            medium,
            coarse,
        } = self;
        let newest_medium = current.saturating_sub(FINE_SLOTS) / FINE_PER_MEDIUM;
        let medium_first = (newest_medium + 1).saturating_sub(MEDIUM_SLOTS);
        medium.expire(medium_first, |bucket| {
            let _dropped = coarse.insert(bucket.epoch / MEDIUM_PER_COARSE, bucket.counts);
        });

        let period_start = (*current + 1).saturating_sub(*period);
        coarse.expire(period_start.div_ceil(FINE_PER_COARSE), |_| {});
    }
}

impl Tier {
    fn new(slots: u64) -> Self {
        let slots = usize::try_from(slots).unwrap_or(usize::MAX);
        Self {
            slots: vec![EMPTY_SLOT; slots].into_boxed_slice(),
            total: Counts::default(),
            first: 0,
            newest: 0,
        }
    }

    fn length(&self) -> u64 {
        u64::try_from(self.slots.len()).unwrap_or(u64::MAX)
    }

    /// Adds `counts` to the bucket of `epoch` and returns the bucket that no longer fits: the
    /// older bucket it replaces in the slot, or its own when `epoch` is before the tier or the
    /// slot contains a newer bucket.
    fn insert(&mut self, epoch: u64, counts: Counts) -> Option<Slot> {
        let bucket = Slot { epoch, counts };
        if epoch < self.first {
            return Some(bucket);
        }
        let length = self.length();
        let Some(slot) = self.slots.get_mut(slot_of(epoch, length)) else {
            return Some(bucket);
        };
        if slot.epoch == epoch {
            slot.counts.add(counts);
            self.total.add(counts);
            return None;
        }
        if slot.epoch != EMPTY && slot.epoch > epoch {
            return Some(bucket);
        }

        let replaced = std::mem::replace(slot, bucket);
        self.total.add(counts);
        self.newest = self.newest.max(epoch);
        if replaced.epoch == EMPTY {
            return None;
        }
        self.total.subtract(replaced.counts);
        Some(replaced)
    }

    /// Removes the buckets older than `first` and passes each to `expired`.
    fn expire(&mut self, first: u64, mut expired: impl FnMut(Slot)) {
        if first <= self.first {
            return;
        }
        // Any `length` consecutive epochs visit every slot once, so a longer jump needs no
        // more.
        let length = self.length();
        for epoch in self.first.max(first.saturating_sub(length))..first {
            let Some(slot) = self.slots.get_mut(slot_of(epoch, length)) else {
                continue;
            };
            if slot.epoch != EMPTY && slot.epoch < first {
                let bucket = std::mem::replace(slot, EMPTY_SLOT);
                self.total.subtract(bucket.counts);
                expired(bucket);
            }
        }
        self.first = first;
    }

    /// Sums the buckets of epoch `from` and later. It reads the buckets from `from` on, or
    /// subtracts those before `from` from the total, whichever are fewer.
    fn sum_from(&self, from: u64) -> Counts {
        if from <= self.first {
            return self.total;
        }
        if from > self.newest {
            return Counts::default();
        }
        if from - self.first <= self.newest - from {
            let mut sum = self.total;
            sum.subtract(self.sum_epochs(self.first..from));
            sum
        } else {
            self.sum_epochs(from..self.newest + 1)
        }
    }

    /// Sums the buckets of the epochs in `epochs`, a range no longer than the slot count.
    fn sum_epochs(&self, epochs: Range<u64>) -> Counts {
        let count = usize::try_from(epochs.end - epochs.start).unwrap_or(usize::MAX);
        let start = slot_of(epochs.start, self.length());
        let (head, tail) = ring_runs(&self.slots, start, count);
        let mut sum = Counts::default();
        for (slot, epoch) in head.iter().chain(tail).zip(epochs) {
            if slot.epoch == epoch {
                sum.add(slot.counts);
            }
        }
        sum
    }
}

/// Splits the `count` slots of a ring from `start` on, wrapping at the end, into at most two
/// contiguous runs. A `count` above the ring's length stops after one turn.
fn ring_runs<T>(slots: &[T], start: usize, count: usize) -> (&[T], &[T]) {
    let (before, after) = slots.split_at_checked(start).unwrap_or((slots, &[]));
    let head = after.get(..count).unwrap_or(after);
    let tail = before.get(..count - head.len()).unwrap_or(before);
    (head, tail)
}

#[inline]
fn slot_of(index: u64, slots: u64) -> usize {
    // The remainder is below the slot count, which is a usize.
    usize::try_from(index % slots).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests;
