//! A retry budget: retries limited to a share of recent calls plus a floor per second.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::RetryConfigError;
use crate::resilience::{Clock, MonotonicClock};

/// Units of one retry. Deposits are `retry_ratio * UNIT`, so a ratio is exact to 1e-6.
const UNIT: i64 = 1_000_000;
/// Number of slots the time-to-live is split into.
const SLOTS: usize = 10;
/// Bounds of the time-to-live, taken from Finagle's `RetryBudget`, which tower's `TpsBudget`
/// also uses.
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(60);
/// Largest `retry_ratio`, as in Finagle and tower.
const MAX_RATIO: f64 = 1000.0;

/// Settings of a [`RetryBudget`].
///
/// The defaults (10 s, 10 retries per second, 0.2) are those of Finagle's and tower's
/// budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    /// How long a call counts towards the budget. Between 1 s and 60 s.
    pub ttl: Duration,
    /// Retries allowed per second on top of the ratio, so that a service with little traffic
    /// can still retry.
    pub min_retries_per_sec: u32,
    /// Retries allowed per call: 0.2 allows one retry for every five calls. Between 0 and
    /// 1000, resolved to 1e-6.
    pub retry_ratio: f64,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            retry_ratio: 0.2,
        }
    }
}

/// A budget that caps retries at a share of recent calls, shared by any number of
/// [`Retry`](super::Retry) instances.
///
/// Each call deposits `retry_ratio` of a retry and each retry withdraws one. A deposit counts
/// for one `ttl`, and on top of the deposits a reserve of `min_retries_per_sec * ttl` retries
/// is available in every `ttl`. So over any `ttl`, a sustained outage with `calls` failing
/// calls gets at most `retry_ratio * calls + min_retries_per_sec * ttl` retries, while a
/// healthy service with occasional failures retries all of them. This is the design of
/// tower's `TpsBudget` (and Finagle's `RetryBudget`), rewritten because `TpsBudget` turns the
/// ratio into a whole number of deposits per withdrawal: a ratio of 0.15 allows one retry per
/// six calls there, 0.7 one per call.
///
/// Time is split into ten slots of `ttl / 10`. A deposit or withdrawal leaves the budget
/// when its slot is ten slots old, so it counts for between 0.9 and 1 `ttl`.
///
/// # Example
///
/// ```
/// use obskit::resilience::retry::{RetryBudget, RetryBudgetConfig};
///
/// let budget = RetryBudget::new(RetryBudgetConfig {
///     min_retries_per_sec: 0,
///     retry_ratio: 0.5,
///     ..RetryBudgetConfig::default()
/// })?;
/// for _ in 0..4 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw());
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw());
/// # Ok::<(), obskit::resilience::retry::RetryConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    config: RetryBudgetConfig,
    clock: Arc<dyn Clock>,
    slot_nanos: u64,
    deposit: i64,
    reserve: i64,
    window: Mutex<Window>,
}

/// Deposits minus withdrawals per slot; `slots[epoch % SLOTS]` is the current slot.
struct Window {
    slots: [i64; SLOTS],
    epoch: u64,
}

impl RetryBudget {
    /// Creates a budget that reads the system's monotonic clock.
    ///
    /// # Errors
    ///
    /// [`RetryConfigError::BudgetTtl`] if `ttl` is outside 1 s to 60 s, and
    /// [`RetryConfigError::BudgetRatio`] if `retry_ratio` is not a number from 0 to 1000.
    pub fn new(config: RetryBudgetConfig) -> Result<Self, RetryConfigError> {
        Self::with_clock(config, MonotonicClock::new())
    }

    /// Creates a budget that reads `clock`, for example a
    /// [`ManualClock`](crate::resilience::ManualClock) in tests.
    ///
    /// # Errors
    ///
    /// As [`RetryBudget::new`].
    pub fn with_clock(
        config: RetryBudgetConfig,
        clock: impl Clock,
    ) -> Result<Self, RetryConfigError> {
        if !(MIN_TTL..=MAX_TTL).contains(&config.ttl) {
            return Err(RetryConfigError::BudgetTtl { ttl: config.ttl });
        }
        if !(0.0..=MAX_RATIO).contains(&config.retry_ratio) {
            return Err(RetryConfigError::BudgetRatio {
                retry_ratio: config.retry_ratio,
            });
        }
        Ok(Self::build(config, Arc::new(clock)))
    }

    /// Builds a budget from settings already checked.
    fn build(config: RetryBudgetConfig, clock: Arc<dyn Clock>) -> Self {
        // ttl is at most 60 s, so every product below fits an i64.
        let ttl_nanos = nanos(config.ttl);
        let slot_nanos = (ttl_nanos / SLOTS as u64).max(1);
        let reserve = i128::from(config.min_retries_per_sec) * i128::from(ttl_nanos) / 1000;
        // retry_ratio is at most 1000, so the product is at most 1e9.
        #[allow(clippy::cast_possible_truncation)]
        let deposit = (config.retry_ratio * UNIT as f64).round() as i64;
        let epoch = nanos(clock.now()) / slot_nanos;

        Self {
            inner: Arc::new(Inner {
                config,
                clock,
                slot_nanos,
                deposit,
                reserve: i64::try_from(reserve).unwrap_or(i64::MAX),
                window: Mutex::new(Window {
                    slots: [0; SLOTS],
                    epoch,
                }),
            }),
        }
    }

    /// Returns the settings the budget was created with.
    pub fn config(&self) -> &RetryBudgetConfig {
        &self.inner.config
    }

    /// Records a call: adds `retry_ratio` of a retry to the budget.
    pub fn deposit(&self) {
        let mut window = self.current_window();
        window.add(self.inner.deposit);
    }

    /// Takes one retry from the budget. Returns `false`, and takes nothing, when less than one
    /// retry is left.
    pub fn withdraw(&self) -> bool {
        let mut window = self.current_window();
        if window.sum().saturating_add(self.inner.reserve) < UNIT {
            return false;
        }
        window.add(-UNIT);
        true
    }

    /// Returns the number of whole retries the budget allows now.
    pub fn available(&self) -> u64 {
        let window = self.current_window();
        let units = window.sum().saturating_add(self.inner.reserve);
        u64::try_from(units / UNIT).unwrap_or(0)
    }

    /// Locks the window after dropping the slots that have aged out.
    fn current_window(&self) -> parking_lot::MutexGuard<'_, Window> {
        let epoch = nanos(self.inner.clock.now()) / self.inner.slot_nanos;
        let mut window = self.inner.window.lock();
        window.advance(epoch);
        window
    }
}

impl Default for RetryBudget {
    /// Returns a budget with the default [`RetryBudgetConfig`] that reads the system's
    /// monotonic clock.
    fn default() -> Self {
        Self::build(
            RetryBudgetConfig::default(),
            Arc::new(MonotonicClock::new()),
        )
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ttl", &self.inner.config.ttl)
            .field(
                "min_retries_per_sec",
                &self.inner.config.min_retries_per_sec,
            )
            .field("retry_ratio", &self.inner.config.retry_ratio)
            .field("available", &self.available())
            .finish()
    }
}

impl Window {
    /// Moves the current slot to `epoch`, zeroing the slots skipped on the way.
    fn advance(&mut self, epoch: u64) {
        if epoch <= self.epoch {
            return;
        }
        let skipped = (epoch - self.epoch).min(SLOTS as u64);
        for step in 1..=skipped {
            if let Some(slot) = self.slots.get_mut(slot_index(self.epoch + step)) {
                *slot = 0;
            }
        }
        self.epoch = epoch;
    }

    fn add(&mut self, units: i64) {
        if let Some(slot) = self.slots.get_mut(slot_index(self.epoch)) {
            *slot = slot.saturating_add(units);
        }
    }

    fn sum(&self) -> i64 {
        self.slots
            .iter()
            .fold(0i64, |sum, slot| sum.saturating_add(*slot))
    }
}

fn slot_index(epoch: u64) -> usize {
    // The remainder is below SLOTS, so it fits a usize.
    (epoch % SLOTS as u64) as usize
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::resilience::ManualClock;

    fn budget(
        ttl_secs: u64,
        min_retries_per_sec: u32,
        retry_ratio: f64,
    ) -> (RetryBudget, ManualClock) {
        let clock = ManualClock::new();
        let config = RetryBudgetConfig {
            ttl: Duration::from_secs(ttl_secs),
            min_retries_per_sec,
            retry_ratio,
        };
        (
            RetryBudget::with_clock(config, clock.clone()).unwrap(),
            clock,
        )
    }

    fn drain(budget: &RetryBudget) -> u64 {
        let mut retries = 0;
        while budget.withdraw() {
            retries += 1;
        }
        retries
    }

    #[test]
    fn empty_budget_allows_nothing() {
        let (budget, _) = budget(1, 0, 1.0);
        assert!(!budget.withdraw());
        assert_eq!(budget.available(), 0);
    }

    #[test]
    fn ratio_is_exact_for_fractions_tower_rounds() {
        for (ratio, expected) in [
            (0.15, 150),
            (0.7, 700),
            (0.2, 200),
            (1.0 / 3.0, 333),
            (2.5, 2500),
        ] {
            let (budget, _) = budget(10, 0, ratio);
            for _ in 0..1000 {
                budget.deposit();
            }
            assert_eq!(budget.available(), expected, "ratio {ratio}");
            assert_eq!(drain(&budget), expected, "ratio {ratio}");
        }
    }

    #[test]
    fn reserve_is_floor_times_ttl() {
        let (budget, _) = budget(10, 3, 0.0);
        assert_eq!(drain(&budget), 30);
    }

    #[test]
    fn reserve_comes_back_after_ttl() {
        let (budget, clock) = budget(2, 5, 0.0);
        assert_eq!(drain(&budget), 10);
        clock.advance(Duration::from_millis(1900));
        assert_eq!(drain(&budget), 0);
        clock.advance(Duration::from_millis(100));
        assert_eq!(drain(&budget), 10);
    }

    #[test]
    fn deposits_expire_after_ttl() {
        let (budget, clock) = budget(1, 0, 1.0);
        budget.deposit();
        clock.advance(Duration::from_millis(850));
        assert_eq!(budget.available(), 1);
        clock.advance(Duration::from_millis(150));
        assert_eq!(budget.available(), 0);
        budget.deposit();
        clock.advance(Duration::from_secs(3600));
        assert!(!budget.withdraw());
    }

    #[test]
    fn sustained_outage_is_bounded() {
        // 1000 calls spread over 4 ttl of 5 s, each call followed by as many retries as the
        // budget allows. Each ttl has 250 calls: at most 0.1 * 250 + 2 * 5 = 35 retries.
        let (budget, clock) = budget(5, 2, 0.1);
        let mut retries_per_ttl = [0u64; 4];
        for call in 0..1000u64 {
            budget.deposit();
            if budget.withdraw() {
                retries_per_ttl[(call / 250) as usize] += 1;
            }
            clock.advance(Duration::from_millis(20));
        }
        for (ttl, retries) in retries_per_ttl.iter().enumerate() {
            assert!(*retries <= 35, "ttl {ttl}: {retries} retries");
            assert!(*retries >= 25, "ttl {ttl}: {retries} retries");
        }
    }

    #[test]
    fn clones_share_the_budget() {
        let (budget, _) = budget(10, 0, 1.0);
        let other = budget.clone();
        budget.deposit();
        assert!(other.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let clock = ManualClock::new();
        let short = RetryBudgetConfig {
            ttl: Duration::from_millis(500),
            ..RetryBudgetConfig::default()
        };
        let error = RetryBudget::with_clock(short, clock.clone()).unwrap_err();
        assert!(matches!(error, RetryConfigError::BudgetTtl { .. }));
        assert!(error.to_string().contains("500ms"), "{error}");

        for retry_ratio in [-0.1, 1000.5, f64::NAN, f64::INFINITY] {
            let config = RetryBudgetConfig {
                retry_ratio,
                ..RetryBudgetConfig::default()
            };
            let error = RetryBudget::with_clock(config, clock.clone()).unwrap_err();
            assert!(
                matches!(error, RetryConfigError::BudgetRatio { .. }),
                "ratio {retry_ratio}"
            );
        }
    }

    #[test]
    fn default_matches_default_config() {
        let default = RetryBudget::default();
        let built = RetryBudget::new(RetryBudgetConfig::default()).unwrap();
        assert_eq!(default.available(), built.available());
        assert_eq!(default.available(), 100);
        assert_eq!(default.inner.deposit, built.inner.deposit);
    }
}
