//! Burn-rate windows and the multi-window, multi-burn-rate alert conditions.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One of the windows burn rates are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Window {
    /// 5 minutes.
    #[serde(rename = "5m")]
    M5,
    /// 30 minutes.
    #[serde(rename = "30m")]
    M30,
    /// 1 hour.
    #[serde(rename = "1h")]
    H1,
    /// 2 hours.
    #[serde(rename = "2h")]
    H2,
    /// 6 hours.
    #[serde(rename = "6h")]
    H6,
    /// 1 day.
    #[serde(rename = "1d")]
    D1,
    /// 3 days, the longest alert window.
    #[serde(rename = "3d")]
    D3,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Self; 7] = [
        Self::M5,
        Self::M30,
        Self::H1,
        Self::H2,
        Self::H6,
        Self::D1,
        Self::D3,
    ];

    /// Returns the window's length.
    pub const fn duration(self) -> Duration {
        Duration::from_secs(self.seconds())
    }

    /// Returns the window's length in seconds.
    pub const fn seconds(self) -> u64 {
        match self {
            Self::M5 => 5 * 60,
            Self::M30 => 30 * 60,
            Self::H1 => 3600,
            Self::H2 => 2 * 3600,
            Self::H6 => 6 * 3600,
            Self::D1 => 24 * 3600,
            Self::D3 => 3 * 24 * 3600,
        }
    }

    /// Returns the label value, such as `5m`, as written in PromQL range selectors.
    pub const fn label(self) -> &'static str {
        match self {
            Self::M5 => "5m",
            Self::M30 => "30m",
            Self::H1 => "1h",
            Self::H2 => "2h",
            Self::H6 => "6h",
            Self::D1 => "1d",
            Self::D3 => "3d",
        }
    }

    /// Returns the position in [`Window::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The longest alert window, 3 days, and so the minimum SLO period.
pub const LONGEST_WINDOW: Duration = Window::D3.duration();

/// Severity of a burn-rate alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Someone must act now.
    Page,
    /// Someone must act within working hours.
    Ticket,
}

impl Severity {
    /// Returns the label value: `page` or `ticket`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Ticket => "ticket",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One alert condition: both windows burn faster than the threshold.
///
/// The threshold is the burn rate that spends `budget_percent` % of the period's error budget
/// within the long window: `threshold = budget_percent / 100 * period / long_window`. For a
/// 30-day period the four conditions of [`BurnRateAlert::ALL`] give the thresholds 14.4, 6, 3
/// and 1 of the Google SRE workbook ("Alerting on SLOs", multiwindow, multi-burn-rate alerts).
///
/// A condition fires when both burn rates are strictly greater than the threshold, as the
/// workbook's rules use `>`. A window without valid events has no burn rate and never fires.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::slo::BurnRateAlert;
///
/// let day = Duration::from_secs(86_400);
/// let page = BurnRateAlert::ALL[0];
/// assert_eq!(page.threshold(30 * day), 14.4);
/// assert_eq!(page.threshold(28 * day), 13.44);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BurnRateAlert {
    /// Severity raised by this condition.
    pub severity: Severity,
    /// The window that sets how much budget must have been spent.
    pub long_window: Window,
    /// The window that checks the burn is still going on, 1/12 of the long window.
    pub short_window: Window,
    /// Percentage of the period's error budget spent in the long window at the threshold.
    pub budget_percent: u32,
}

impl BurnRateAlert {
    /// The four conditions of the SRE workbook: page on 2 % of the budget in 1 h or 5 % in
    /// 6 h, ticket on 10 % in 1 d or 10 % in 3 d.
    pub const ALL: [Self; 4] = [
        Self {
            severity: Severity::Page,
            long_window: Window::H1,
            short_window: Window::M5,
            budget_percent: 2,
        },
        Self {
            severity: Severity::Page,
            long_window: Window::H6,
            short_window: Window::M30,
            budget_percent: 5,
        },
        Self {
            severity: Severity::Ticket,
            long_window: Window::D1,
            short_window: Window::H2,
            budget_percent: 10,
        },
        Self {
            severity: Severity::Ticket,
            long_window: Window::D3,
            short_window: Window::H6,
            budget_percent: 10,
        },
    ];

    /// Returns the burn-rate threshold for an SLO `period`:
    /// `budget_percent / 100 * period / long_window`.
    ///
    /// The value is the nearest `f64` to the exact quotient, computed from whole
    /// milliseconds so that 30 days give exactly 14.4, 6, 3 and 1.
    pub fn threshold(self, period: Duration) -> f64 {
        let numerator = u128::from(self.budget_percent) * period.as_millis();
        let denominator = 100 * u128::from(self.long_window.seconds()) * 1000;
        ratio_to_f64(numerator, denominator)
    }

    /// Returns the threshold as the fraction `numerator / denominator` of whole numbers, for
    /// exact comparisons.
    pub(crate) fn threshold_fraction(self, period: Duration) -> (u128, u128) {
        let numerator = u128::from(self.budget_percent) * period.as_millis();
        let denominator = 100 * u128::from(self.long_window.seconds()) * 1000;
        (numerator, denominator)
    }
}

/// Returns the `f64` nearest to `numerator / denominator`, by dividing exactly in decimal
/// first so that a quotient such as 13.44 has no binary rounding noise from the division.
pub(crate) fn ratio_to_f64(numerator: u128, denominator: u128) -> f64 {
    if denominator == 0 {
        return f64::NAN;
    }
    let whole = numerator / denominator;
    let mut remainder = numerator % denominator;
    let mut text = whole.to_string();
    text.push('.');
    // 20 fraction digits are more than an f64 resolves near these magnitudes.
    for _ in 0..20 {
        remainder *= 10;
        let digit = remainder / denominator;
        remainder %= denominator;
        text.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
        if remainder == 0 {
            break;
        }
    }
    text.parse().unwrap_or(f64::NAN)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn thresholds_for_thirty_days() {
        let thresholds: Vec<f64> = BurnRateAlert::ALL
            .iter()
            .map(|alert| alert.threshold(30 * DAY))
            .collect();
        assert_eq!(thresholds, [14.4, 6.0, 3.0, 1.0]);
    }

    #[test]
    fn thresholds_scale_with_period() {
        let thresholds: Vec<f64> = BurnRateAlert::ALL
            .iter()
            .map(|alert| alert.threshold(28 * DAY))
            .collect();
        assert_eq!(thresholds, [13.44, 5.6, 2.8, 28.0 / 30.0]);
        let week: Vec<f64> = BurnRateAlert::ALL
            .iter()
            .map(|alert| alert.threshold(7 * DAY))
            .collect();
        assert_eq!(week, [3.36, 1.4, 0.7, 7.0 / 30.0]);
    }

    #[test]
    fn windows_are_ordered_and_labelled() {
        let labels: Vec<&str> = Window::ALL.iter().map(|window| window.label()).collect();
        assert_eq!(labels, ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]);
        for (index, window) in Window::ALL.iter().enumerate() {
            assert_eq!(window.index(), index);
        }
        assert_eq!(LONGEST_WINDOW, 3 * DAY);
    }
}
