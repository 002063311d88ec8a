//! The sliding windows of a closed breaker: the last N calls, or the calls of the last N seconds.
//!
//! Both windows keep running totals of calls, failures and slow calls, so reading the rates
//! costs a few loads whatever the window size.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use parking_lot::Mutex;

/// The outcome of one recorded call as stored in a window slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Record {
    Success = 1,
    Failure = 2,
    SlowSuccess = 3,
    SlowFailure = 4,
}

impl Record {
    pub(crate) fn new(failed: bool, slow: bool) -> Self {
        match (failed, slow) {
            (false, false) => Self::Success,
            (true, false) => Self::Failure,
            (false, true) => Self::SlowSuccess,
            (true, true) => Self::SlowFailure,
        }
    }

    pub(crate) fn is_failure(self) -> bool {
        matches!(self, Self::Failure | Self::SlowFailure)
    }

    pub(crate) fn is_slow(self) -> bool {
        matches!(self, Self::SlowSuccess | Self::SlowFailure)
    }
}

/// Calls, failures and slow calls in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl Counts {
    /// Returns the failure rate in percent, computed in `f32` as Resilience4j does, or `None`
    /// below `minimum` calls.
    pub(crate) fn failure_rate(self, minimum: u32) -> Option<f32> {
        self.rate(self.failures, minimum)
    }

    /// Returns the slow-call rate in percent, or `None` below `minimum` calls.
    pub(crate) fn slow_call_rate(self, minimum: u32) -> Option<f32> {
        self.rate(self.slow, minimum)
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "counts are at most 1,000,000, exact in f32's 24-bit mantissa"
    )]
    fn rate(self, part: u32, minimum: u32) -> Option<f32> {
        if self.calls == 0 || self.calls < minimum {
            return None;
        }
        Some(part.min(self.calls) as f32 * 100.0 / self.calls as f32)
    }
}

/// Bits per count in a packed counts word.
const FIELD_BITS: u32 = 21;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

/// The packed contribution of a slot value: calls in bits 0..21, failures in 21..42 and slow
/// calls in 42..63. Index 0 is an empty slot.
const CONTRIBUTION: [u64; 5] = [
    0,
    1,
    1 | 1 << FIELD_BITS,
    1 | 1 << (2 * FIELD_BITS),
    1 | 1 << FIELD_BITS | 1 << (2 * FIELD_BITS),
];

fn contribution(slot: u8) -> u64 {
    CONTRIBUTION.get(usize::from(slot)).copied().unwrap_or(0)
}

/// Decodes a packed counts word whose fields may be briefly negative.
///
/// Concurrent recorders apply their deltas in any order, so a field can dip below zero for a
/// moment, which borrows from the field above it. Reading each field as a signed 21-bit value
/// and removing it before reading the next undoes the borrow exactly, as long as every field
/// stays within ±2^20, which the window size limit of 1,000,000 ensures.
fn decode(word: u64) -> Counts {
    let mut rest = word;
    let mut fields = [0_u32; 3];
    for field in &mut fields {
        let low = rest & FIELD_MASK;
        let signed = if low >= 1 << (FIELD_BITS - 1) {
            i64::try_from(low).unwrap_or(0) - (1 << FIELD_BITS)
        } else {
            i64::try_from(low).unwrap_or(0)
        };
        rest = rest.wrapping_sub(signed as u64) >> FIELD_BITS;
        *field = u32::try_from(signed.max(0)).unwrap_or(0);
    }
    let [calls, failures, slow] = fields;
    Counts {
        calls,
        failures,
        slow,
    }
}

/// The last `size` calls: a ring of outcome slots and the packed totals of its contents.
///
/// Recording takes a ticket with one atomic add; ticket `t` overwrites slot `t % size`. When
/// the slot already contains the same outcome, as it does for a steady stream of successes,
/// nothing else is written. Tickets are never reset, so they also count every recorded call,
/// and [`successes`](Self::successes) derives the successes from them without a counter of
/// their own on the hot path.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    /// `u128::MAX / size + 1`, for [`slot_of`](Self::slot_of).
    reciprocal: u128,
    /// Calls recorded since the window was built.
    tickets: AtomicU64,
    /// Failed or slow calls among the tickets, counted before their ticket is taken.
    unsuccessful: AtomicU64,
    counts: AtomicU64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        let size = usize::try_from(size.max(1)).unwrap_or(1);
        Self {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            // Wraps to 0 for a size of 1, which gives the right remainder, 0.
            reciprocal: (u128::MAX / size as u128).wrapping_add(1),
            tickets: AtomicU64::new(0),
            unsuccessful: AtomicU64::new(0),
            counts: AtomicU64::new(0),
        }
    }

    /// Records one outcome, evicting the oldest. Returns the counts after the change, or `None`
    /// when the counts did not change.
    #[inline]
    pub(crate) fn record(&self, record: Record) -> Option<Counts> {
        let ticket = if record == Record::Success {
            self.tickets.fetch_add(1, Ordering::Relaxed)
        } else {
            self.unsuccessful.fetch_add(1, Ordering::Relaxed);
            // Release: a reader that loads this ticket also loads the count above.
            self.tickets.fetch_add(1, Ordering::Release)
        };
        let slot = self.slots.get(self.slot_of(ticket))?;
        let new = record as u8;
        if slot.load(Ordering::Relaxed) == new {
            return None;
        }
        let old = slot.swap(new, Ordering::AcqRel);
        if old == new {
            return None;
        }
        let delta = contribution(new).wrapping_sub(contribution(old));
        let word = self
            .counts
            .fetch_add(delta, Ordering::AcqRel)
            .wrapping_add(delta);
        Some(decode(word))
    }

    /// Returns `ticket % size` by Lemire's multiply-based remainder, because a division
    /// would cost as much as the rest of a closed call.
    #[inline]
    fn slot_of(&self, ticket: u64) -> usize {
        let size = self.slots.len() as u64;
        let low = self.reciprocal.wrapping_mul(u128::from(ticket));
        // The high 64 bits of `low * size`, a 192-bit product.
        let bottom = (u128::from(low as u64) * u128::from(size)) >> 64;
        let top = (low >> 64) * u128::from(size);
        // The remainder is below the slot count, which is a usize.
        usize::try_from((bottom + top) >> 64).unwrap_or(0)
    }

    /// Returns how many successes were recorded since the window was built, at most the true
    /// number: a failure counted but not yet ticketed lowers it for a moment.
    pub(crate) fn successes(&self) -> u64 {
        let tickets = self.tickets.load(Ordering::Acquire);
        tickets.saturating_sub(self.unsuccessful.load(Ordering::Acquire))
    }

    pub(crate) fn counts(&self) -> Counts {
        decode(self.counts.load(Ordering::Acquire))
    }

    /// Empties the window. Callers hold the breaker's transition lock.
    pub(crate) fn reset(&self) {
        for slot in &self.slots {
            let old = slot.swap(0, Ordering::AcqRel);
            if old != 0 {
                self.counts.fetch_sub(contribution(old), Ordering::AcqRel);
            }
        }
    }
}

/// One second of a [`TimeWindow`].
#[derive(Debug, Default)]
struct Bucket {
    /// The second since the clock's origin that the counts belong to, plus one; 0 is unused.
    second: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

/// The calls of the last `size` seconds, in one bucket per second, with running totals.
///
/// A call at second `s` counts until second `s + size - 1` and expires at `s + size`, as in
/// Resilience4j's `SlidingTimeWindowMetrics`. Recording is lock-free within a second. The first
/// recording or read in a new second takes a lock to expire the buckets that left the window.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Bucket]>,
    /// The latest second (plus one) whose bucket is ready for recording.
    head: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    rotation: Mutex<()>,
}

impl TimeWindow {
    pub(crate) fn new(seconds: u32) -> Self {
        let size = usize::try_from(seconds.max(1)).unwrap_or(1);
        Self {
            buckets: (0..size).map(|_| Bucket::default()).collect(),
            head: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            rotation: Mutex::new(()),
        }
    }

    /// Records one outcome at `second` (seconds since the clock's origin) and returns the
    /// counts of the window after it.
    pub(crate) fn record(&self, second: u64, record: Record) -> Counts {
        let tag = second + 1;
        self.advance(tag);
        let bucket = self.bucket(tag);
        // A recorder whose clock read is older than the window's oldest second drops its
        // outcome: the bucket now belongs to a later second.
        if let Some(bucket) = bucket
            && bucket.second.load(Ordering::Acquire) == tag
        {
            let failed = u64::from(record.is_failure());
            let slow = u64::from(record.is_slow());
            bucket.calls.fetch_add(1, Ordering::AcqRel);
            self.calls.fetch_add(1, Ordering::AcqRel);
            if failed != 0 {
                bucket.failures.fetch_add(1, Ordering::AcqRel);
                self.failures.fetch_add(1, Ordering::AcqRel);
            }
            if slow != 0 {
                bucket.slow.fetch_add(1, Ordering::AcqRel);
                self.slow.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.totals()
    }

    /// Returns the counts of the window that ends at `second`.
    pub(crate) fn counts(&self, second: u64) -> Counts {
        self.advance(second + 1);
        self.totals()
    }

    fn totals(&self) -> Counts {
        let read = |total: &AtomicU64| {
            let value = i64::from_ne_bytes(total.load(Ordering::Acquire).to_ne_bytes());
            u32::try_from(value.max(0)).unwrap_or(u32::MAX)
        };
        Counts {
            calls: read(&self.calls),
            failures: read(&self.failures),
            slow: read(&self.slow),
        }
    }

    fn bucket(&self, tag: u64) -> Option<&Bucket> {
        let len = self.buckets.len() as u64;
        self.buckets.get(usize::try_from(tag % len).unwrap_or(0))
    }

    /// Moves the window to end at `tag` (a second plus one), expiring the buckets of the
    /// seconds that left it.
    fn advance(&self, tag: u64) {
        if self.head.load(Ordering::Acquire) >= tag {
            return;
        }
        let _guard = self.rotation.lock();
        let head = self.head.load(Ordering::Acquire);
        if head >= tag {
            return;
        }
        let len = self.buckets.len() as u64;
        let first = head.max(tag.saturating_sub(len)) + 1;
        for second in first..=tag {
            if let Some(bucket) = self.bucket(second) {
                self.expire(bucket);
                bucket.second.store(second, Ordering::Release);
            }
        }
        self.head.store(tag, Ordering::Release);
    }

    fn expire(&self, bucket: &Bucket) {
        let calls = bucket.calls.swap(0, Ordering::AcqRel);
        let failures = bucket.failures.swap(0, Ordering::AcqRel);
        let slow = bucket.slow.swap(0, Ordering::AcqRel);
        self.calls.fetch_sub(calls, Ordering::AcqRel);
        self.failures.fetch_sub(failures, Ordering::AcqRel);
        self.slow.fetch_sub(slow, Ordering::AcqRel);
    }

    /// Empties the window. Callers hold the breaker's transition lock.
    pub(crate) fn reset(&self) {
        let _guard = self.rotation.lock();
        for bucket in &self.buckets {
            self.expire(bucket);
        }
    }
}

/// The window of a closed breaker.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    /// Empties the window. Callers hold the breaker's transition lock.
    pub(crate) fn reset(&self) {
        match self {
            Self::Count(window) => window.reset(),
            Self::Time(window) => window.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_undoes_borrow_between_fields() {
        let word = CONTRIBUTION[3].wrapping_sub(CONTRIBUTION[4]);
        assert_eq!(
            decode(word),
            Counts {
                calls: 0,
                failures: 0,
                slow: 0
            }
        );
        let word = (5_u64 | 2 << FIELD_BITS | 1 << (2 * FIELD_BITS)).wrapping_add(word);
        assert_eq!(
            decode(word),
            Counts {
                calls: 5,
                failures: 1,
                slow: 1
            }
        );
    }

    #[test]
    fn slot_of_matches_the_remainder() {
        let tickets = [
            0,
            1,
            2,
            99,
            100,
            101,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            1 << 53,
            u64::MAX / 3,
            u64::MAX - 1,
            u64::MAX,
        ];
        for size in [1_u32, 2, 3, 7, 10, 100, 4096, 65_521, 999_999, 1_000_000] {
            let window = CountWindow::new(size);
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let random = (0..1000).map(|_| {
                // xorshift64: spread tickets over the whole range.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            });
            for ticket in tickets.into_iter().chain(random) {
                let expected = usize::try_from(ticket % u64::from(size)).unwrap_or(usize::MAX);
                assert_eq!(window.slot_of(ticket), expected, "{ticket} % {size}");
            }
        }
    }

    #[test]
    fn successes_derive_from_tickets() {
        let window = CountWindow::new(4);
        for record in [
            Record::Success,
            Record::Failure,
            Record::Success,
            Record::SlowSuccess,
            Record::SlowFailure,
            Record::Success,
        ] {
            window.record(record);
        }
        assert_eq!(window.successes(), 3);
        // Emptying the window keeps the tickets.
        window.reset();
        window.record(Record::Success);
        assert_eq!(window.successes(), 4);
        assert_eq!(window.counts().calls, 1);
    }

    #[test]
    fn count_window_evicts_oldest() {
        let window = CountWindow::new(3);
        window.record(Record::Failure);
        window.record(Record::Success);
        window.record(Record::SlowSuccess);
        assert_eq!(
            window.counts(),
            Counts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(
            window.record(Record::Success),
            Some(Counts {
                calls: 3,
                failures: 0,
                slow: 1
            })
        );
        assert_eq!(window.record(Record::Success), None);
        window.reset();
        assert_eq!(window.counts(), Counts::default());
    }

    #[test]
    fn time_window_expires_after_size_seconds() {
        let window = TimeWindow::new(3);
        window.record(10, Record::Failure);
        window.record(11, Record::SlowFailure);
        assert_eq!(window.counts(12).calls, 2);
        assert_eq!(
            window.counts(13),
            Counts {
                calls: 1,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(window.counts(14), Counts::default());
        window.record(100, Record::Success);
        assert_eq!(window.counts(100).calls, 1);
    }

    #[test]
    fn stale_record_dropped() {
        let window = TimeWindow::new(2);
        window.counts(10);
        window.record(5, Record::Failure);
        assert_eq!(window.counts(10), Counts::default());
    }

    #[test]
    fn rates_need_minimum_calls() {
        let counts = Counts {
            calls: 4,
            failures: 2,
            slow: 1,
        };
        assert_eq!(counts.failure_rate(5), None);
        assert_eq!(counts.failure_rate(4), Some(50.0));
        assert_eq!(counts.slow_call_rate(4), Some(25.0));
    }
}
