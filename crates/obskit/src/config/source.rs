//! Sources of configuration values, and the figment provider that records them.

use std::fmt;
use std::path::PathBuf;

use figment::value::{Dict, Map};
use figment::{Metadata, Profile, Provider};
use serde::{Serialize, Serializer};

/// The source that set a configuration value, lowest to highest precedence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValueSource {
    /// The built-in default.
    Default,
    /// A TOML or YAML configuration file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A value set with [`ConfigBuilder::set`](super::ConfigBuilder::set).
    Code,
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "env {name}"),
            Self::Code => f.write_str("code"),
        }
    }
}

impl Serialize for ValueSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One figment provider per source, named so that the source of each value can be recovered.
pub(crate) struct Layer {
    source: ValueSource,
    dict: Dict,
}

impl Layer {
    pub(crate) fn new(source: ValueSource, dict: Dict) -> Self {
        Self { source, dict }
    }

    pub(crate) fn source(&self) -> &ValueSource {
        &self.source
    }

    /// Returns the figment metadata name of a layer from `source`.
    pub(crate) fn metadata_name(source: &ValueSource) -> String {
        source.to_string()
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(Self::metadata_name(&self.source));
        match &self.source {
            ValueSource::File(path) => metadata.source(path.as_path()),
            _ => metadata,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}
