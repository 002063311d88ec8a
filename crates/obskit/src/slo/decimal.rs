//! Exact decimal numbers for SLO targets and error budgets, parsed without going through `f64`.

use std::fmt;
use std::str::FromStr;

/// Maximum number of decimal places of a [`Decimal`].
pub const MAX_SCALE: u8 = 18;

/// A non-negative decimal number kept exactly: `units / 10^scale`.
///
/// The value is normalized (no trailing zero in `units` when `scale > 0`), so equal numbers
/// compare equal. It is used for SLO targets and error budgets, where `1 - 0.999` must be
/// `0.001` and not the `f64` result `0.0010000000000000009`.
///
/// # Example
///
/// ```
/// use obskit::slo::Decimal;
///
/// let target: Decimal = "0.999".parse()?;
/// assert_eq!(target.to_string(), "0.999");
/// assert_eq!(Decimal::ONE.checked_sub(target).map(|d| d.to_string()), Some("0.001".to_owned()));
/// # Ok::<(), obskit::slo::DecimalError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    units: u64,
    scale: u8,
}

/// The reason a text is not a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecimalError {
    /// The text is not a plain decimal number.
    #[error(
        "{text:?} is not a decimal number; expected digits with an optional `.` such as \"99.9\""
    )]
    Syntax {
        /// The text as written.
        text: String,
    },
    /// The number needs more decimal places or digits than a [`Decimal`] keeps.
    #[error(
        "{text:?} has too many digits; at most {MAX_SCALE} decimal places and 19 significant digits are kept"
    )]
    TooPrecise {
        /// The text as written.
        text: String,
    },
    /// The number is negative.
    #[error("{text:?} is negative; expected a number of at least 0")]
    Negative {
        /// The text as written.
        text: String,
    },
}

impl Decimal {
    /// Zero.
    pub const ZERO: Self = Self { units: 0, scale: 0 };
    /// One.
    pub const ONE: Self = Self { units: 1, scale: 0 };

    /// Builds `units / 10^scale`, or `None` when `scale` exceeds [`MAX_SCALE`].
    pub fn new(units: u64, scale: u8) -> Option<Self> {
        (scale <= MAX_SCALE).then(|| Self { units, scale }.normalized())
    }

    /// Returns the integer `units` of `units / 10^scale`.
    pub fn units(self) -> u64 {
        self.units
    }

    /// Returns the number of decimal places.
    pub fn scale(self) -> u8 {
        self.scale
    }

    /// Returns `10^scale`, the denominator of the value.
    pub fn denominator(self) -> u64 {
        10_u64.pow(u32::from(self.scale))
    }

    /// Returns whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.units == 0
    }

    /// Returns the nearest `f64`. The conversion parses the decimal text, so it is correctly
    /// rounded: `0.999` becomes the same `f64` as the literal `0.999`.
    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Returns `self - other`, or `None` when the result would be negative or too precise.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        let scale = self.scale.max(other.scale);
        let left = rescale(self, scale)?;
        let right = rescale(other, scale)?;
        Self::new(left.checked_sub(right)?, scale)
    }

    /// Returns `self / 100`, or `None` when it would need more than [`MAX_SCALE`] places.
    pub fn percent_to_ratio(self) -> Option<Self> {
        Self::new(self.units, self.scale.checked_add(2)?)
    }

    /// Returns `self * 100`, the value as a percentage, or `None` on overflow.
    pub fn ratio_to_percent(self) -> Option<Self> {
        if self.scale >= 2 {
            return Self::new(self.units, self.scale - 2);
        }
        let factor = 10_u64.pow(u32::from(2 - self.scale));
        Self::new(self.units.checked_mul(factor)?, 0)
    }

    /// Parses the shortest decimal text that round-trips to `value`, as TOML and YAML numbers
    /// are read as `f64`.
    ///
    /// # Errors
    ///
    /// As [`FromStr`], plus [`DecimalError::Syntax`] for NaN and infinities.
    pub fn from_f64(value: f64) -> Result<Self, DecimalError> {
        // `Display` of f64 writes the shortest digits that parse back to the same value, and
        // never uses an exponent.
        value.to_string().parse()
    }

    fn normalized(mut self) -> Self {
        while self.scale > 0 && self.units.is_multiple_of(10) {
            self.units /= 10;
            self.scale -= 1;
        }
        if self.units == 0 {
            self.scale = 0;
        }
        self
    }
}

/// Returns `value.units` scaled to `scale` decimal places, or `None` on overflow.
fn rescale(value: Decimal, scale: u8) -> Option<u64> {
    let shift = scale.checked_sub(value.scale)?;
    value
        .units
        .checked_mul(10_u64.checked_pow(u32::from(shift))?)
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Parses `123`, `99.9`, `.5`, `+0.25` or `1e-3`. Trailing zeros are dropped.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || DecimalError::Syntax {
            text: text.to_owned(),
        };
        let too_precise = || DecimalError::TooPrecise {
            text: text.to_owned(),
        };

        let trimmed = text.trim();
        if let Some(rest) = trimmed.strip_prefix('-') {
            let is_zero = rest.bytes().all(|byte| matches!(byte, b'0' | b'.'));
            if !rest.is_empty() && !is_zero && rest.bytes().any(|byte| byte.is_ascii_digit()) {
                return Err(DecimalError::Negative {
                    text: text.to_owned(),
                });
            }
        }
        let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
        let unsigned = unsigned.strip_prefix('-').unwrap_or(unsigned);
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => {
                let exponent: i32 = exponent.parse().map_err(|_| syntax())?;
                (mantissa, exponent)
            }
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return Err(syntax());
        }

        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        let digits = digits.trim_end_matches('0');
        let dropped_zeros = fraction.len() - fraction.trim_end_matches('0').len();
        let kept_fraction = i64::try_from(fraction.len() - dropped_zeros).map_err(|_| syntax())?;
        let trailing_whole_zeros = if fraction.trim_end_matches('0').is_empty() {
            i64::try_from(whole.len() - whole.trim_end_matches('0').len()).map_err(|_| syntax())?
        } else {
            0
        };
        if digits.is_empty() {
            return Ok(Self::ZERO);
        }

        // The value is digits * 10^(-scale), where scale may be negative.
        let scale = kept_fraction - trailing_whole_zeros - i64::from(exponent);
        let units: u64 = digits.parse().map_err(|_| too_precise())?;
        if scale < 0 {
            let factor = u32::try_from(-scale)
                .ok()
                .and_then(|power| 10_u64.checked_pow(power))
                .ok_or_else(too_precise)?;
            let units = units.checked_mul(factor).ok_or_else(too_precise)?;
            return Ok(Self { units, scale: 0 });
        }
        let scale = u8::try_from(scale).map_err(|_| too_precise())?;
        Self::new(units, scale).ok_or_else(too_precise)
    }
}

impl fmt::Display for Decimal {
    /// Writes the plain decimal form, such as `0.001` or `99.95`, without an exponent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let denominator = self.denominator();
        let whole = self.units / denominator;
        let fraction = self.units % denominator;
        if self.scale == 0 {
            return write!(f, "{whole}");
        }
        write!(
            f,
            "{whole}.{fraction:0width$}",
            width = usize::from(self.scale)
        )
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let scale = self.scale.max(other.scale);
        let scale_up =
            |value: &Self| u128::from(value.units) * 10_u128.pow(u32::from(scale - value.scale));
        scale_up(self).cmp(&scale_up(other))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Decimal {
        text.parse()
            .unwrap_or_else(|error| panic!("{text:?}: {error}"))
    }

    #[test]
    fn parse_and_render_round_trip() {
        for (text, rendered) in [
            ("99.9", "99.9"),
            ("0.999", "0.999"),
            ("99.950", "99.95"),
            ("100", "100"),
            ("0", "0"),
            ("0.000", "0"),
            (".5", "0.5"),
            ("+0.25", "0.25"),
            ("1e-3", "0.001"),
            ("9.99E1", "99.9"),
            ("1200", "1200"),
            ("0.000000000000000001", "0.000000000000000001"),
        ] {
            assert_eq!(parse(text).to_string(), rendered, "{text}");
        }
    }

    #[test]
    fn invalid_texts_rejected() {
        for text in ["", ".", "abc", "1.2.3", "1,5", "99.9%", "e3", "1e"] {
            assert!(
                matches!(text.parse::<Decimal>(), Err(DecimalError::Syntax { .. })),
                "{text:?}"
            );
        }
        assert!(matches!(
            "-0.5".parse::<Decimal>(),
            Err(DecimalError::Negative { .. })
        ));
        assert!(matches!(
            "0.0000000000000000001".parse::<Decimal>(),
            Err(DecimalError::TooPrecise { .. })
        ));
        assert!(matches!(
            "1e30".parse::<Decimal>(),
            Err(DecimalError::TooPrecise { .. })
        ));
    }

    #[test]
    fn subtraction_is_exact() {
        let one_minus = |text: &str| Decimal::ONE.checked_sub(parse(text)).map(|d| d.to_string());
        assert_eq!(one_minus("0.999"), Some("0.001".to_owned()));
        assert_eq!(one_minus("0.9995"), Some("0.0005".to_owned()));
        assert_eq!(one_minus("0.99"), Some("0.01".to_owned()));
        assert_eq!(one_minus("0.99999"), Some("0.00001".to_owned()));
        assert_eq!(one_minus("1.5"), None);
    }

    #[test]
    fn f64_goes_through_shortest_text() {
        assert_eq!(
            Decimal::from_f64(99.9).map(|d| d.to_string()),
            Ok("99.9".to_owned())
        );
        assert_eq!(
            Decimal::from_f64(0.1 + 0.2).map(|d| d.to_string()),
            Ok("0.30000000000000004".to_owned())
        );
        assert!(Decimal::from_f64(f64::NAN).is_err());
        assert_eq!(parse("0.999").to_f64(), 0.999);
    }

    #[test]
    fn percent_conversion() {
        assert_eq!(parse("99.9").percent_to_ratio(), Some(parse("0.999")));
        assert_eq!(parse("0.999").ratio_to_percent(), Some(parse("99.9")));
        assert_eq!(parse("0.5").ratio_to_percent(), Some(parse("50")));
        assert!(parse("0.5") < parse("0.75"));
        assert!(parse("10") > parse("9.99"));
    }
}
