//! Exponential backoff with full, decorrelated or no jitter.
//!
//! The jitter formulas are those of Marc Brooker's "Exponential Backoff And Jitter" (AWS
//! Architecture Blog, 2015). The delays are drawn here because backon (1.6) has no
//! decorrelated jitter, and its exponential jitter adds up to one more delay on top of the
//! exponential one, which can exceed the cap. Their iterator is a [`backon::Backoff`], so it also
//! plugs into backon's `Retryable::retry`.

use std::time::Duration;

use super::RetryConfigError;

/// The randomization applied to backoff delays.
///
/// `n` counts retries from 0, `base` is the base delay and `cap` the maximum delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// `random(0, min(cap, base * 2^n))`: a uniform draw below the exponential ceiling.
    #[default]
    Full,
    /// `min(cap, random(base, previous * 3))`, where `previous` is the delay drawn before,
    /// starting at `base`.
    Decorrelated,
    /// `min(cap, base * 2^n)`: the plain exponential sequence without randomness.
    None,
}

impl Jitter {
    /// Returns the name used in messages: `full`, `decorrelated` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::Full => "full",
            Jitter::Decorrelated => "decorrelated",
            Jitter::None => "none",
        }
    }
}

/// Validated settings of an exponential backoff: base delay, maximum delay and jitter.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::resilience::retry::{Backoff, Jitter};
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), Jitter::Full)?;
/// for (n, delay) in backoff.delays().take(8).enumerate() {
///     let ceiling = Duration::from_millis(100 * 2u64.pow(n as u32)).min(Duration::from_secs(2));
///     assert!(delay <= ceiling);
/// }
/// # Ok::<(), obskit::resilience::retry::RetryConfigError>(())
/// ```
///
/// The delays are an iterator of [`Duration`], so they also drive backon directly:
///
/// ```
/// use std::time::Duration;
/// use backon::Retryable;
/// use obskit::resilience::retry::{Backoff, Jitter};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), Jitter::Decorrelated)?;
/// let value = (|| async { Ok::<_, std::io::Error>(7) }).retry(backoff.delays().take(3)).await?;
/// assert_eq!(value, 7);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base_delay: Duration,
    max_delay: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// Validates the settings of a backoff.
    ///
    /// # Errors
    ///
    /// [`RetryConfigError::ZeroBaseDelay`] if `base_delay` is zero, and
    /// [`RetryConfigError::MaxDelayBelowBase`] if `max_delay` is shorter than `base_delay`.
    pub fn new(
        base_delay: Duration,
        max_delay: Duration,
        jitter: Jitter,
    ) -> Result<Self, RetryConfigError> {
        if base_delay.is_zero() {
            return Err(RetryConfigError::ZeroBaseDelay);
        }
        if max_delay < base_delay {
            return Err(RetryConfigError::MaxDelayBelowBase {
                max_delay,
                base_delay,
            });
        }
        Ok(Self {
            base_delay,
            max_delay,
            jitter,
        })
    }

    /// Returns the delay the sequence grows from.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// Returns the cap that no delay exceeds.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// Returns the jitter applied to each delay.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// Returns the endless sequence of delays, one per retry, seeded from the thread's
    /// random generator.
    pub fn delays(&self) -> Delays {
        self.delays_from(fastrand::Rng::new())
    }

    /// Returns the sequence of delays drawn from a generator seeded with `seed`, so that the
    /// same seed gives the same delays.
    pub fn delays_with_seed(&self, seed: u64) -> Delays {
        self.delays_from(fastrand::Rng::with_seed(seed))
    }

    fn delays_from(&self, rng: fastrand::Rng) -> Delays {
        Delays {
            base: nanos(self.base_delay),
            cap: nanos(self.max_delay),
            jitter: self.jitter,
            retry: 0,
            previous: nanos(self.base_delay),
            rng,
        }
    }
}

/// The endless iterator of backoff delays of a [`Backoff`], one per retry.
///
/// Use `take(n)` to bound it. Delays are whole nanoseconds and saturate at about 584 years.
#[derive(Debug, Clone)]
pub struct Delays {
    base: u64,
    cap: u64,
    jitter: Jitter,
    /// Index of the next retry, from 0.
    retry: u32,
    /// The last decorrelated delay, in nanoseconds.
    previous: u64,
    rng: fastrand::Rng,
}

impl Delays {
    /// Returns `min(cap, base * 2^retry)` in nanoseconds.
    fn ceiling(&self) -> u64 {
        let factor = 1u64.checked_shl(self.retry).unwrap_or(u64::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = match self.jitter {
            Jitter::Full => self.rng.u64(0..=self.ceiling()),
            Jitter::None => self.ceiling(),
            Jitter::Decorrelated => {
                let upper = self.previous.saturating_mul(3).max(self.base);
                let delay = self.rng.u64(self.base..=upper).min(self.cap);
                self.previous = delay;
                delay
            }
        };
        self.retry = self.retry.saturating_add(1);
        Some(Duration::from_nanos(delay))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(5);

    fn backoff(jitter: Jitter) -> Backoff {
        Backoff::new(BASE, CAP, jitter).unwrap()
    }

    fn ceiling(retry: u32) -> Duration {
        BASE.saturating_mul(2u32.saturating_pow(retry)).min(CAP)
    }

    #[test]
    fn no_jitter_doubles_up_to_the_cap() {
        let delays: Vec<Duration> = backoff(Jitter::None).delays().take(9).collect();
        let expected: Vec<Duration> = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        assert_eq!(delays, expected);
    }

    #[test]
    fn full_jitter_stays_below_each_ceiling() {
        for seed in 0..200 {
            for (retry, delay) in backoff(Jitter::Full)
                .delays_with_seed(seed)
                .take(12)
                .enumerate()
            {
                let ceiling = ceiling(retry as u32);
                assert!(delay <= ceiling, "retry {retry}: {delay:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_range() {
        // 10 000 draws below a 5 s ceiling: the mean of a uniform draw is 2.5 s, and its
        // standard error here is about 14 ms.
        let draws: Vec<f64> = (0..10_000)
            .map(|seed| {
                backoff(Jitter::Full)
                    .delays_with_seed(seed)
                    .nth(9)
                    .unwrap()
                    .as_secs_f64()
            })
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let min = draws.iter().copied().fold(f64::MAX, f64::min);
        let max = draws.iter().copied().fold(0.0, f64::max);
        assert!((mean - 2.5).abs() < 0.1, "mean {mean}");
        assert!(min < 0.05, "min {min}");
        assert!(max > 4.95, "max {max}");
        assert!(max <= 5.0, "max {max}");
    }

    #[test]
    fn decorrelated_jitter_stays_within_bounds() {
        for seed in 0..200 {
            let mut previous = BASE;
            for delay in backoff(Jitter::Decorrelated)
                .delays_with_seed(seed)
                .take(20)
            {
                assert!(delay >= BASE, "{delay:?} < base");
                assert!(delay <= CAP, "{delay:?} > cap");
                assert!(delay <= previous * 3, "{delay:?} > 3 * {previous:?}");
                previous = delay;
            }
        }
    }

    #[test]
    fn decorrelated_jitter_reaches_the_cap() {
        let capped = (0..200)
            .filter(|&seed| {
                backoff(Jitter::Decorrelated)
                    .delays_with_seed(seed)
                    .nth(30)
                    .unwrap()
                    == CAP
            })
            .count();
        assert!(
            capped > 20,
            "only {capped} of 200 sequences reached the cap"
        );
    }

    #[test]
    fn same_seed_gives_same_delays() {
        let first: Vec<Duration> = backoff(Jitter::Full).delays_with_seed(7).take(5).collect();
        let second: Vec<Duration> = backoff(Jitter::Full).delays_with_seed(7).take(5).collect();
        assert_eq!(first, second);
    }

    #[test]
    fn huge_retry_counts_saturate_at_the_cap() {
        let mut delays = backoff(Jitter::None).delays();
        let last = delays.nth(200).unwrap();
        assert_eq!(last, CAP);
        let huge = Backoff::new(Duration::from_secs(1), Duration::MAX, Jitter::None).unwrap();
        assert_eq!(
            huge.delays().nth(100).unwrap(),
            Duration::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let zero = Backoff::new(Duration::ZERO, CAP, Jitter::Full).unwrap_err();
        assert!(matches!(zero, RetryConfigError::ZeroBaseDelay));
        let below = Backoff::new(CAP, BASE, Jitter::Full).unwrap_err();
        assert!(matches!(below, RetryConfigError::MaxDelayBelowBase { .. }));
        assert!(below.to_string().contains("100ms"), "{below}");
    }
}
