//! Configuration errors: every problem found while loading, one line each.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::ValueSource;

/// The error of a failed load, with every problem found, not only the first.
///
/// `Display` prints one problem per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", Lines(.problems))]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    pub(crate) fn new(problems: Vec<ConfigProblem>) -> Self {
        Self { problems }
    }

    /// Returns the problems in the order they were found.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }
}

struct Lines<'a>(&'a [ConfigProblem]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// One problem in the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// A key that [`Config`](super::Config) does not have.
    #[error("{key} (from {origin}): unknown key{}", Suggestion(*.suggestion))]
    UnknownKey {
        /// Dotted key as written.
        key: String,
        /// Source that set the key.
        origin: ValueSource,
        /// The nearest valid key, if one is close.
        suggestion: Option<&'static str>,
    },

    /// A key that an `[slo.objectives.<name>]` table does not have.
    #[error("{key} (from {origin}): unknown key{}", SloSuggestion(*.suggestion))]
    UnknownSloKey {
        /// Dotted key as written.
        key: String,
        /// Source that set the key.
        origin: ValueSource,
        /// The nearest valid field, if one is close.
        suggestion: Option<&'static str>,
    },

    /// An `OBSKIT_*` environment variable that obskit does not read.
    #[error("{name} (from env): unknown environment variable{}", Suggestion(*.suggestion))]
    UnknownEnvVar {
        /// Variable name.
        name: String,
        /// The nearest valid variable, if one is close.
        suggestion: Option<&'static str>,
    },

    /// A value of the wrong type or outside the accepted range.
    #[error("{key} = {value} (from {origin}): invalid value; expected {expected}")]
    InvalidValue {
        /// Dotted key.
        key: String,
        /// The value as written; `****` for secrets.
        value: String,
        /// Source that set the value.
        origin: ValueSource,
        /// Description of the values the key accepts.
        expected: String,
    },

    /// An `[slo.objectives.<name>]` table that is not a valid SLO. The message names the SLO,
    /// the field, the value and the fix.
    #[error("{key} = {value} (from {origin}): {message}")]
    InvalidSlo {
        /// Dotted key, such as `slo.objectives.orders.target`.
        key: String,
        /// The value as written.
        value: String,
        /// Source that set the value.
        origin: ValueSource,
        /// The SLO's error message.
        message: String,
    },

    /// Two keys that exclude each other are both set.
    #[error(
        "{key} (from {origin}) and {other_key} (from {other_origin}) are both set; set only one of them"
    )]
    Conflict {
        /// First key.
        key: &'static str,
        /// Source that set the first key.
        origin: ValueSource,
        /// Second key.
        other_key: &'static str,
        /// Source that set the second key.
        other_origin: ValueSource,
    },

    /// The metrics token file could not be read or contains no token.
    #[error(
        "metrics.auth_token_file = {path:?} (from {origin}): {reason}; expected {expected}",
        expected = "a readable file holding the token"
    )]
    TokenFile {
        /// Path of the token file.
        path: PathBuf,
        /// Source that set the path.
        origin: ValueSource,
        /// Reason the file was rejected.
        reason: String,
    },

    /// The configuration file does not exist.
    #[error("configuration file {path:?}{}: file not found", PathOrigin(.origin))]
    FileNotFound {
        /// Path of the file.
        path: PathBuf,
        /// Source of the path: the builder (`Code`) or `OBSKIT_CONFIG_FILE`.
        origin: ValueSource,
    },

    /// The configuration file exists but could not be read.
    #[error("configuration file {path:?}{}: cannot read the file: {error}", PathOrigin(.origin))]
    FileUnreadable {
        /// Path of the file.
        path: PathBuf,
        /// Source that set the path.
        origin: ValueSource,
        /// The I/O error.
        error: io::Error,
    },

    /// The configuration file name does not end in a supported extension.
    #[error(
        "configuration file {path:?}{}: unsupported file extension; expected .toml, .yaml or .yml",
        PathOrigin(.origin)
    )]
    UnsupportedFileExtension {
        /// Path of the file.
        path: PathBuf,
        /// Source that set the path.
        origin: ValueSource,
    },

    /// The configuration file is not valid TOML or YAML.
    #[error("configuration file {path:?}: invalid {format}: {message}")]
    FileSyntax {
        /// Path of the file.
        path: PathBuf,
        /// `TOML` or `YAML`.
        format: &'static str,
        /// The parser's message, with the line and column.
        message: String,
    },

    /// An entry of `OTEL_RESOURCE_ATTRIBUTES` that is not a valid `key=value` pair.
    #[error(
        "OTEL_RESOURCE_ATTRIBUTES entry {entry:?} (from env): {reason}; expected comma-separated key=value pairs with percent-encoded values"
    )]
    InvalidResourceAttribute {
        /// The entry as written.
        entry: String,
        /// Reason the entry was rejected.
        reason: &'static str,
    },

    /// An environment variable whose value is not valid UTF-8.
    #[error("{name} (from env): value is not valid UTF-8")]
    NonUnicodeEnv {
        /// Variable name.
        name: String,
    },

    /// A value set in code that cannot be converted into configuration data.
    #[error("{key} (from code): cannot convert the value: {message}")]
    Unserializable {
        /// Dotted key.
        key: String,
        /// The serializer's message.
        message: String,
    },
}

struct SloSuggestion(Option<&'static str>);

impl fmt::Display for SloSuggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "; did you mean `{name}`?"),
            None => f.write_str(
                "; an SLO table has kind, target, period, route, method, threshold, description and runbook_url",
            ),
        }
    }
}

/// Names the variable that set a file path; a path given in code needs no note.
struct PathOrigin<'a>(&'a ValueSource);

impl fmt::Display for PathOrigin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ValueSource::Code => Ok(()),
            origin => write!(f, " (from {origin})"),
        }
    }
}

struct Suggestion(Option<&'static str>);

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "; did you mean `{name}`?"),
            None => f.write_str("; see docs/configuration.md for the valid names"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_prints_one_line_per_problem() {
        let error = ConfigError::new(vec![
            ConfigProblem::UnknownKey {
                key: "logging.sampel_rate".to_owned(),
                origin: ValueSource::File(PathBuf::from("/etc/app.toml")),
                suggestion: Some("logging.sample_rate"),
            },
            ConfigProblem::InvalidValue {
                key: "logging.sample_rate".to_owned(),
                value: "\"2\"".to_owned(),
                origin: ValueSource::Env("OBSKIT_LOG_SAMPLE_RATE".to_owned()),
                expected: "a number from 0.0 to 1.0".to_owned(),
            },
        ]);
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines.first().copied(),
            Some(
                "logging.sampel_rate (from file /etc/app.toml): unknown key; did you mean `logging.sample_rate`?"
            )
        );
        assert_eq!(
            lines.get(1).copied(),
            Some(
                "logging.sample_rate = \"2\" (from env OBSKIT_LOG_SAMPLE_RATE): invalid value; expected a number from 0.0 to 1.0"
            )
        );
    }
}
