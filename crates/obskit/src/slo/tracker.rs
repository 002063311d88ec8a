//! The in-process SLO tracker: error budget, burn rates, alert state and time to exhaustion.

use std::sync::Arc;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::alert::{BurnRateAlert, Severity, Window, ratio_to_f64};
use super::definition::{SloDefinition, SloError, format_duration};
use super::target::Target;
use super::window::{Counts, FINE_SECONDS, Windows, interval};
use crate::clock::Clock;

/// Whether an event met the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The event met the objective.
    Good,
    /// The event spent error budget.
    Bad,
}

/// Counts the good and bad events of one SLO in rolling windows and computes its status.
///
/// Recording is one atomic addition into a 10-second bucket and reads no clock when the
/// caller passes the time ([`SloTracker::record_at`]). Memory is fixed when the tracker is
/// built; see [`SloTracker::memory_bytes`].
///
/// # Math
///
/// With `budget = 1 - target` and the counts of a window:
///
/// - error ratio = bad / valid, and burn rate = error ratio / budget. A window without valid
///   events has no burn rate (`None`), never 0.
/// - error budget remaining = 1 - bad / (valid × budget) over the period. It is negative once
///   the budget is overspent, and `None` without valid events.
/// - alerts: see [`BurnRateAlert`]; the comparisons are exact, in whole numbers.
/// - time to exhaustion = remaining × period / the 1 h burn rate: the time left before the
///   budget is spent if the last hour's burn goes on. It is zero when the budget is spent and
///   `None` when the 1 h burn rate is unknown or zero.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use obskit::clock::ManualClock;
/// use obskit::slo::{Outcome, SloDefinition, SloTracker, Window};
///
/// let slo = SloDefinition::builder("orders").target(99.9).period("30d").route("/orders").build()?;
/// let clock = ManualClock::new();
/// let tracker = SloTracker::new(slo, Arc::new(clock.clone()))?;
/// for i in 0..1000 {
///     tracker.record(if i < 2 { Outcome::Bad } else { Outcome::Good });
/// }
/// let status = tracker.status();
/// assert_eq!(status.burn_rates.get(Window::H1), Some(2.0));
/// assert_eq!(status.error_budget_remaining, Some(-1.0));
/// # Ok::<(), obskit::slo::SloError>(())
/// ```
///
/// # Limitations
///
/// The far edge of the 1 d and 3 d windows is rounded inward to 5 minutes and that of the
/// period to 1 hour (see the bucket layout in the `window` module docs). Events more than
/// 6 hours older than the newest recorded time are dropped and counted in
/// [`SloTracker::late_events`].
#[derive(Debug)]
pub struct SloTracker {
    definition: SloDefinition,
    clock: Arc<dyn Clock>,
    windows: Windows,
    /// The error budget as `budget_units / 10^scale`.
    budget_units: u128,
    scale_factor: u128,
}

/// The status of one SLO at one time, as [`SloTracker::status`] computes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloStatus {
    /// SLO name.
    pub name: String,
    /// `availability`, `latency` or `error_rate`.
    pub kind: &'static str,
    /// The objective, serialized as a ratio string such as `"0.999"`.
    pub target: Target,
    /// The period as a duration string, such as `"30days"`.
    pub period: String,
    /// Valid events over the period.
    pub valid: u64,
    /// Bad events over the period.
    pub bad: u64,
    /// Share of the period's error budget left; negative when overspent, `None` without
    /// valid events.
    pub error_budget_remaining: Option<f64>,
    /// Burn rate per window; `null` for a window without valid events.
    pub burn_rates: BurnRates,
    /// Alert severities whose conditions hold, pages first.
    pub alerts: Vec<Severity>,
    /// Time until the budget is spent at the 1 h burn rate, in seconds when serialized.
    #[serde(rename = "time_to_exhaustion_seconds", serialize_with = "seconds")]
    pub time_to_exhaustion: Option<Duration>,
}

/// Burn rates per [`Window`], serialized as a map from the window label (`"5m"`) to the rate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BurnRates([Option<f64>; Window::ALL.len()]);

impl BurnRates {
    /// Returns the burn rate of `window`, or `None` when it had no valid events.
    pub fn get(&self, window: Window) -> Option<f64> {
        self.0.get(window.index()).copied().flatten()
    }

    /// Returns each window with its burn rate, shortest window first.
    pub fn iter(&self) -> impl Iterator<Item = (Window, Option<f64>)> + '_ {
        Window::ALL.into_iter().zip(self.0.iter().copied())
    }
}

impl Serialize for BurnRates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (window, rate) in self.iter() {
            map.serialize_entry(window.label(), &rate)?;
        }
        map.end()
    }
}

fn seconds<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

/// Window lengths in fine intervals: the seven burn-rate windows, then the period.
const WINDOW_COUNT: usize = Window::ALL.len();

impl SloTracker {
    /// Builds a tracker that reads time from `clock`.
    ///
    /// # Errors
    ///
    /// The [`SloError`] of an invalid definition, as [`SloDefinition::validate`] finds it.
    pub fn new(definition: SloDefinition, clock: Arc<dyn Clock>) -> Result<Self, SloError> {
        definition.validate()?;
        let budget = definition.target.error_budget();
        let windows = Windows::new(definition.period, clock.now());
        Ok(Self {
            budget_units: u128::from(budget.units()),
            scale_factor: u128::from(budget.denominator()),
            definition,
            clock,
            windows,
        })
    }

    /// Returns the definition.
    pub fn definition(&self) -> &SloDefinition {
        &self.definition
    }

    /// Returns the current time of the tracker's clock, to pass to
    /// [`SloTracker::record_at`].
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// Records one event now; reads the clock once.
    #[inline]
    pub fn record(&self, outcome: Outcome) {
        self.record_at(self.clock.now(), outcome);
    }

    /// Records one event at `now`, a time read from this tracker's clock.
    #[inline]
    pub fn record_at(&self, now: Duration, outcome: Outcome) {
        self.windows.record(interval(now), outcome == Outcome::Bad);
    }

    /// Returns how many events were dropped because their time was more than 6 hours before
    /// the newest recorded time.
    pub fn late_events(&self) -> u64 {
        self.windows.late_events()
    }

    /// Returns the bytes the tracker takes, its buckets included. The value is fixed when
    /// the tracker is built and depends on the period only: about 90 KB for 30 days.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() - size_of::<Windows>() + self.windows.memory_bytes()
    }

    /// Computes the status now.
    pub fn status(&self) -> SloStatus {
        self.status_at(self.clock.now())
    }

    /// Computes the status at `now`, a time read from this tracker's clock.
    pub fn status_at(&self, now: Duration) -> SloStatus {
        let mut lengths = [0; WINDOW_COUNT + 1];
        for (length, window) in lengths.iter_mut().zip(Window::ALL) {
            *length = window.seconds() / FINE_SECONDS;
        }
        if let Some(period) = lengths.last_mut() {
            *period = self.definition.period.as_secs() / FINE_SECONDS;
        }
        let sums = self.windows.sums(now, lengths);
        let period = sums.last().copied().unwrap_or_default();

        let mut burn_rates = BurnRates::default();
        for (rate, counts) in burn_rates.0.iter_mut().zip(&sums) {
            *rate = self.burn_rate(*counts);
        }
        let remaining = self.budget_remaining(period);
        let alerts = self.alerts(&sums);
        let time_to_exhaustion = self.time_to_exhaustion(remaining, burn_rates.get(Window::H1));

        SloStatus {
            name: self.definition.name.clone(),
            kind: self.definition.kind.name(),
            target: self.definition.target,
            period: format_duration(self.definition.period),
            valid: period.valid(),
            bad: period.bad,
            error_budget_remaining: remaining,
            burn_rates,
            alerts,
            time_to_exhaustion,
        }
    }

    /// Returns `bad × 10^scale` and `valid × budget_units`, whose quotient is the burn rate.
    fn burn_fraction(&self, counts: Counts) -> (u128, u128) {
        (
            u128::from(counts.bad) * self.scale_factor,
            u128::from(counts.valid()) * self.budget_units,
        )
    }

    fn burn_rate(&self, counts: Counts) -> Option<f64> {
        if counts.valid() == 0 {
            return None;
        }
        let (numerator, denominator) = self.burn_fraction(counts);
        Some(ratio_to_f64(numerator, denominator))
    }

    fn budget_remaining(&self, period: Counts) -> Option<f64> {
        if period.valid() == 0 {
            return None;
        }
        // remaining = (valid × budget - bad) / (valid × budget), in whole numbers.
        let (spent, budget) = self.burn_fraction(period);
        Some(if spent <= budget {
            ratio_to_f64(budget - spent, budget)
        } else {
            -ratio_to_f64(spent - budget, budget)
        })
    }

    /// Returns whether the burn rate of `counts` is strictly above `threshold`.
    fn exceeds(&self, counts: Counts, threshold: (u128, u128)) -> bool {
        if counts.valid() == 0 {
            return false;
        }
        let (numerator, denominator) = self.burn_fraction(counts);
        let (limit_numerator, limit_denominator) = threshold;
        // burn > limit  ⇔  numerator × limit_denominator > limit_numerator × denominator
        match (
            numerator.checked_mul(limit_denominator),
            limit_numerator.checked_mul(denominator),
        ) {
            (Some(left), Some(right)) => left > right,
            // NOTE: reached only with more than about 10^20 events in a window; the
            // comparison then loses exactness.
            _ => {
                ratio_to_f64(numerator, denominator)
                    > ratio_to_f64(limit_numerator, limit_denominator)
            }
        }
    }

    fn alerts(&self, sums: &[Counts; WINDOW_COUNT + 1]) -> Vec<Severity> {
        let mut active = Vec::new();
        for alert in BurnRateAlert::ALL {
            let threshold = alert.threshold_fraction(self.definition.period);
            let long = sums
                .get(alert.long_window.index())
                .copied()
                .unwrap_or_default();
            let short = sums
                .get(alert.short_window.index())
                .copied()
                .unwrap_or_default();
            if self.exceeds(long, threshold)
                && self.exceeds(short, threshold)
                && !active.contains(&alert.severity)
            {
                active.push(alert.severity);
            }
        }
        active
    }

    fn time_to_exhaustion(&self, remaining: Option<f64>, burn: Option<f64>) -> Option<Duration> {
        let remaining = remaining?;
        if remaining <= 0.0 {
            return Some(Duration::ZERO);
        }
        let burn = burn.filter(|burn| *burn > 0.0)?;
        Duration::try_from_secs_f64(remaining * self.definition.period.as_secs_f64() / burn).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests;
