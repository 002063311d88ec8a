//! [`Redacted`], a wrapper for values known to be sensitive.

use std::fmt;

use serde::{Serialize, Serializer};

/// The text that [`Redacted`] prints in place of its value.
pub const PLACEHOLDER: &str = "[REDACTED]";

/// Holds a sensitive value; its `Debug`, `Display` and `Serialize` print `[REDACTED]`.
///
/// Wrap values that must never be logged, so that no detector has to recognise them:
///
/// ```
/// use obskit::redact::Redacted;
///
/// let password = Redacted::new(String::from("hunter2"));
/// assert_eq!(format!("{password:?} {password}"), "[REDACTED] [REDACTED]");
/// assert_eq!(serde_json::to_string(&password).unwrap(), r#""[REDACTED]""#);
/// assert_eq!(password.expose(), "hunter2");
/// tracing::info!(%password, "login");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Returns the value.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Returns the value, consuming the wrapper.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PLACEHOLDER)
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PLACEHOLDER)
    }
}

impl<T> Serialize for Redacted<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(PLACEHOLDER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize)]
    struct Login {
        user: &'static str,
        password: Redacted<&'static str>,
    }

    #[test]
    fn nested_in_debug_and_serialize() {
        let login = Login {
            user: "bob",
            password: Redacted::new("hunter2"),
        };
        let debug = format!("{login:?}");
        assert_eq!(debug, "Login { user: \"bob\", password: [REDACTED] }");
        let json = serde_json::to_string(&login).unwrap_or_default();
        assert_eq!(json, r#"{"user":"bob","password":"[REDACTED]"}"#);
        assert!(!json.contains("hunter2"));
    }
}
