//! A string whose `Debug` output is masked, for tokens and passwords.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string whose `Debug` output is masked.
///
/// `Serialize` writes the value in clear, so that a configuration can be written back. Print a
/// configuration through [`ConfigReport`](super::ConfigReport), which masks secrets.
///
/// ```
/// let token = obskit::config::Secret::new("hunter2");
/// assert_eq!(format!("{token:?}"), "\"****\"");
/// assert_eq!(token.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"****\"")
    }
}
