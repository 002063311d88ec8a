//! The quota left to one client, computed from its GCRA state for the `RateLimit` header.

use std::time::Duration;

/// The service limit of one client at one moment: what the `RateLimit` header reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// Requests the client can make now without being rejected.
    pub remaining: u32,
    /// Time until one more request's worth of quota comes back; `None` when the whole burst
    /// is available.
    pub reset: Option<Duration>,
}

impl RateLimitStatus {
    /// Computes the status from governor's state: `tat` is the key's theoretical arrival time
    /// and `now` the time of the measurement, both in nanoseconds since the limiter's start;
    /// `tat` is `None` for a key without state.
    ///
    /// The remaining burst is computed as governor's `StateSnapshot::remaining_burst_capacity`
    /// does. One more request fits when `tat - now` falls to `(burst - remaining - 1)`
    /// emission intervals.
    pub(crate) fn from_gcra(
        tat: Option<u64>,
        now: u64,
        emission_interval: Duration,
        burst: u32,
    ) -> Self {
        let t = u64::try_from(emission_interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let capacity = t.saturating_mul(u64::from(burst));
        let tat = tat.unwrap_or(now);
        let debt = tat.saturating_sub(now);
        let free = capacity.saturating_sub(debt);
        let remaining = u32::try_from(free / t).unwrap_or(burst).min(burst);
        if remaining >= burst {
            return Self {
                remaining: burst,
                reset: None,
            };
        }
        let next_free = capacity - t.saturating_mul(u64::from(remaining + 1));
        let wait = debt.saturating_sub(next_free);
        Self {
            remaining,
            reset: Some(Duration::from_nanos(wait)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn fresh_key_has_whole_burst_and_no_reset() {
        let status = RateLimitStatus::from_gcra(None, 5 * SECOND, Duration::from_secs(1), 3);
        assert_eq!(status.remaining, 3);
        assert_eq!(status.reset, None);
    }

    #[test]
    fn partial_burst_resets_within_one_interval() {
        // Burst 3, one per second, two spent at t=10 s: TAT = 12 s.
        let status =
            RateLimitStatus::from_gcra(Some(12 * SECOND), 10 * SECOND, Duration::from_secs(1), 3);
        assert_eq!(status.remaining, 1);
        assert_eq!(status.reset, Some(Duration::from_secs(1)));
        let later = RateLimitStatus::from_gcra(
            Some(12 * SECOND),
            10 * SECOND + SECOND / 4,
            Duration::from_secs(1),
            3,
        );
        assert_eq!(later.remaining, 1);
        assert_eq!(later.reset, Some(Duration::from_millis(750)));
    }

    #[test]
    fn exhausted_burst_waits_like_governor_not_until() {
        // Burst 2, one per 10 s, both spent at t=0: TAT = 20 s, next cell at TAT - tau = 10 s.
        let status =
            RateLimitStatus::from_gcra(Some(20 * SECOND), 4 * SECOND, Duration::from_secs(10), 2);
        assert_eq!(status.remaining, 0);
        assert_eq!(status.reset, Some(Duration::from_secs(6)));
    }
}
