//! The SLO target: the share of valid events that must be good, kept as an exact decimal.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::decimal::{Decimal, DecimalError};

/// The objective of an SLO: the share of valid events that must be good, strictly between 0
/// and 1, kept exactly.
///
/// [`Target::parse`] reads the forms a configuration file uses:
///
/// | Written | Read as | Ratio |
/// |---|---|---|
/// | `"99.9%"` | a percentage, always | 0.999 |
/// | `99.9`, `"99.95"` | a percentage, because it is above 1 | 0.999, 0.9995 |
/// | `0.999`, `"0.999"` | a ratio, because it is at most 1 | 0.999 |
///
/// A TOML or YAML number is read through its shortest round-trip decimal text, so `99.9`
/// is exactly 99.9 %.
///
/// # Example
///
/// ```
/// use obskit::slo::Target;
///
/// let target = Target::parse("99.9")?;
/// assert_eq!(target.to_string(), "0.999");
/// assert_eq!(target.percent(), "99.9");
/// assert_eq!(target.error_budget().to_string(), "0.001");
/// assert_eq!(Target::parse("0.999")?, target);
/// # Ok::<(), obskit::slo::TargetError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(Decimal);

/// The reason a value is not a valid [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The text is not a number.
    #[error(transparent)]
    Number(#[from] DecimalError),
    /// The objective is 100 % or more, which leaves no error budget.
    #[error(
        "target {value} is 100 % or more, which leaves no error budget; use a value below 100 %, such as 99.9"
    )]
    TooHigh {
        /// The value as written.
        value: String,
    },
    /// The objective is 0 % or less.
    #[error("target {value} is 0 % or less; use a value above 0 %, such as 99.9")]
    TooLow {
        /// The value as written.
        value: String,
    },
    /// The maximum error percentage of an `error_rate` SLO is 0, an objective of 100 % that
    /// leaves no error budget.
    #[error(
        "target {value} allows 0 % errors, which leaves no error budget; an error_rate target is the maximum percent of errors, so use a value above 0, such as 0.5"
    )]
    NoErrorsAllowed {
        /// The value as written.
        value: String,
    },
    /// The maximum error percentage of an `error_rate` SLO is 100 or more, an objective of
    /// 0 %.
    #[error(
        "target {value} allows 100 % errors or more, so every request may fail; an error_rate target is the maximum percent of errors, so use a value below 100, such as 0.5"
    )]
    AllErrorsAllowed {
        /// The value as written.
        value: String,
    },
    /// The maximum error percentage of an `error_rate` SLO is over 50, which is most likely
    /// an availability objective such as 99.9 written under the wrong kind.
    #[error(
        "target {value} allows more than half of all requests to fail; an error_rate target is the maximum percent of errors, such as 0.5. For an objective of {value} % good requests, use kind = \"availability\""
    )]
    ErrorsAboveHalf {
        /// The value as written.
        value: String,
    },
}

impl Target {
    /// Parses a target written as a percentage or a ratio (see the type's table).
    ///
    /// # Errors
    ///
    /// [`TargetError`] when the text is not a number, or the objective is not strictly between
    /// 0 % and 100 %.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        let trimmed = text.trim();
        if let Some(percent) = trimmed.strip_suffix('%') {
            return Self::from_percent(number(percent, text)?, text);
        }
        let value = number(trimmed, text)?;
        if value > Decimal::ONE {
            Self::from_percent(value, text)
        } else {
            Self::from_ratio(value, text)
        }
    }

    /// Parses a ratio strictly between 0 and 1, such as `"0.999"`.
    ///
    /// # Errors
    ///
    /// As [`Target::parse`].
    pub fn parse_ratio(text: &str) -> Result<Self, TargetError> {
        Self::from_ratio(number(text.trim(), text)?, text)
    }

    /// Parses a percentage strictly between 0 and 100, such as `"99.9"`.
    ///
    /// # Errors
    ///
    /// As [`Target::parse`].
    pub fn parse_percent(text: &str) -> Result<Self, TargetError> {
        let trimmed = text.trim();
        let trimmed = trimmed.strip_suffix('%').unwrap_or(trimmed);
        Self::from_percent(number(trimmed, text)?, text)
    }

    /// Returns the target whose error budget is `max_error_percent` %, the form of an
    /// `error_rate` SLO: `0.5` gives the objective 99.5 %.
    ///
    /// # Errors
    ///
    /// As [`Target::parse`]; a maximum of 0 % is [`TargetError::NoErrorsAllowed`] and one of
    /// 100 % or more is [`TargetError::AllErrorsAllowed`].
    pub fn from_max_error_percent(text: &str) -> Result<Self, TargetError> {
        let trimmed = text.trim();
        let trimmed = trimmed.strip_suffix('%').unwrap_or(trimmed);
        let errors = number(trimmed, text).map_err(|error| match error {
            TargetError::TooLow { value } => TargetError::NoErrorsAllowed { value },
            other => other,
        })?;
        let errors = errors
            .percent_to_ratio()
            .ok_or_else(|| DecimalError::TooPrecise {
                text: text.to_owned(),
            })?;
        if errors.is_zero() {
            return Err(TargetError::NoErrorsAllowed {
                value: text.trim().to_owned(),
            });
        }
        let half: Option<Decimal> = "0.5".parse().ok();
        if half.is_some_and(|half| errors > half) && errors < Decimal::ONE {
            return Err(TargetError::ErrorsAboveHalf {
                value: text.trim().to_owned(),
            });
        }
        let objective = Decimal::ONE
            .checked_sub(errors)
            .filter(|objective| !objective.is_zero())
            .ok_or_else(|| TargetError::AllErrorsAllowed {
                value: text.trim().to_owned(),
            })?;
        Ok(Self(objective))
    }

    fn from_percent(percent: Decimal, text: &str) -> Result<Self, TargetError> {
        let ratio = percent
            .percent_to_ratio()
            .ok_or_else(|| DecimalError::TooPrecise {
                text: text.to_owned(),
            })?;
        Self::from_ratio(ratio, text)
    }

    fn from_ratio(ratio: Decimal, text: &str) -> Result<Self, TargetError> {
        if ratio >= Decimal::ONE {
            return Err(TargetError::TooHigh {
                value: text.trim().to_owned(),
            });
        }
        if ratio.is_zero() {
            return Err(TargetError::TooLow {
                value: text.trim().to_owned(),
            });
        }
        Ok(Self(ratio))
    }

    /// Returns the objective as an exact ratio, such as `0.999`.
    pub fn ratio(self) -> Decimal {
        self.0
    }

    /// Returns the objective as the nearest `f64`.
    pub fn to_f64(self) -> f64 {
        self.0.to_f64()
    }

    /// Returns the objective as a percentage without the sign, such as `"99.9"`.
    pub fn percent(self) -> String {
        self.0
            .ratio_to_percent()
            .map_or_else(|| self.0.to_string(), |percent| percent.to_string())
    }

    /// Returns the error budget, `1 - target`, exactly: `0.001` for 99.9 %.
    pub fn error_budget(self) -> Decimal {
        // The target is below 1, so the difference is positive and has the target's scale.
        Decimal::ONE.checked_sub(self.0).unwrap_or(Decimal::ZERO)
    }
}

impl fmt::Display for Target {
    /// Writes the ratio, such as `0.999`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Target {
    /// Serializes the ratio as a string, such as `"0.999"`, which [`Target::parse`] reads back.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Target {
    /// Reads a string or a number with [`Target::parse`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = TargetText::deserialize(deserializer)?;
        Self::parse(&text.0).map_err(serde::de::Error::custom)
    }
}

/// A target as written in a configuration: the text of a string, or the shortest round-trip
/// text of a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetText(pub String);

impl From<&str> for TargetText {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl From<String> for TargetText {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<f64> for TargetText {
    fn from(value: f64) -> Self {
        Self(value.to_string())
    }
}

impl From<u32> for TargetText {
    fn from(value: u32) -> Self {
        Self(value.to_string())
    }
}

impl Serialize for TargetText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TargetText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TargetTextVisitor)
    }
}

struct TargetTextVisitor;

impl serde::de::Visitor<'_> for TargetTextVisitor {
    type Value = TargetText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a string such as \"99.9\"")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(TargetText(value.to_owned()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Self::Value, E> {
        if value.is_finite() {
            Ok(TargetText::from(value))
        } else {
            Err(E::custom(format!("{value} is not a finite number")))
        }
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(TargetText(value.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(TargetText(value.to_string()))
    }
}

/// Parses the number of a target. A negative number is [`TargetError::TooLow`], whose message
/// names the valid range (above 0); the number's own error would allow 0.
fn number(number: &str, text: &str) -> Result<Decimal, TargetError> {
    number.parse().map_err(|error| match error {
        DecimalError::Negative { .. } => TargetError::TooLow {
            value: text.trim().to_owned(),
        },
        other => TargetError::Number(other),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn budget(text: &str) -> String {
        Target::parse(text)
            .map(|target| target.error_budget().to_string())
            .unwrap_or_else(|error| error.to_string())
    }

    #[test]
    fn error_budget_is_exact() {
        assert_eq!(budget("99.9"), "0.001");
        assert_eq!(budget("99.95"), "0.0005");
        assert_eq!(budget("99"), "0.01");
        assert_eq!(budget("99.999"), "0.00001");
        assert_eq!(budget("0.999"), "0.001");
        assert_eq!(budget("99.9%"), "0.001");
        assert_eq!(budget("0.5%"), "0.995");
    }

    #[test]
    fn numbers_read_through_shortest_text() {
        let parse = |value: f64| Target::parse(&TargetText::from(value).0);
        assert_eq!(
            parse(99.9).map(|t| t.error_budget().to_string()),
            Ok("0.001".to_owned())
        );
        assert_eq!(
            parse(99.95).map(|t| t.error_budget().to_string()),
            Ok("0.0005".to_owned())
        );
        assert_eq!(parse(0.9999).map(|t| t.percent()), Ok("99.99".to_owned()));
        assert_eq!(parse(99.0).map(|t| t.to_string()), Ok("0.99".to_owned()));
    }

    #[test]
    fn error_rate_maps_to_objective() {
        let target = Target::from_max_error_percent("0.5");
        let target = target.as_ref().map_err(Clone::clone);
        assert_eq!(
            target.clone().map(|t| t.to_string()),
            Ok("0.995".to_owned())
        );
        assert_eq!(
            target.map(|t| t.error_budget().to_string()),
            Ok("0.005".to_owned())
        );
    }

    #[test]
    fn error_rate_bounds_suggest_error_percent() {
        let none = Target::from_max_error_percent("0").unwrap_err();
        assert!(matches!(none, TargetError::NoErrorsAllowed { .. }));
        let all = Target::from_max_error_percent("100").unwrap_err();
        assert!(matches!(all, TargetError::AllErrorsAllowed { .. }));
        let over = Target::from_max_error_percent("150%").unwrap_err();
        assert!(matches!(over, TargetError::AllErrorsAllowed { .. }));
        let above_half = Target::from_max_error_percent("99.9").unwrap_err();
        assert!(matches!(above_half, TargetError::ErrorsAboveHalf { .. }));
        assert!(
            above_half.to_string().contains("kind = \"availability\""),
            "{above_half}"
        );
        assert_eq!(
            Target::from_max_error_percent("50").map(|t| t.to_string()),
            Ok("0.5".to_owned())
        );

        // 99.9 as an error_rate target means 99.9 % errors, so it must not be the advice.
        for error in [none, all, over] {
            let message = error.to_string();
            assert!(!message.contains("99.9"), "{message}");
            assert!(message.contains("such as 0.5"), "{message}");
        }
    }

    #[test]
    fn out_of_range_rejected() {
        for text in ["100", "100%", "1", "1.0", "250"] {
            assert!(
                matches!(Target::parse(text), Err(TargetError::TooHigh { .. })),
                "{text}"
            );
        }
        for text in ["0", "0%", "0.0"] {
            assert!(
                matches!(Target::parse(text), Err(TargetError::TooLow { .. })),
                "{text}"
            );
        }
        assert!(matches!(
            Target::parse("-5"),
            Err(TargetError::TooLow { .. })
        ));
        assert!(matches!(Target::parse("high"), Err(TargetError::Number(_))));
    }

    #[test]
    fn serde_round_trip() {
        let target: Target = serde_json::from_str("99.9").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&target).ok(),
            Some("\"0.999\"".to_owned())
        );
        let back: Target = serde_json::from_str("\"0.999\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, target);
    }
}
