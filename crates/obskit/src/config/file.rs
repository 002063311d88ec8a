//! Reading the TOML or YAML configuration file.

use std::io;
use std::path::Path;

use figment::Provider;
use figment::providers::{Format, Toml, Yaml};
use figment::value::Dict;

use super::error::ConfigProblem;
use super::source::{Layer, ValueSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileFormat {
    Toml,
    Yaml,
}

impl FileFormat {
    fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "toml" => Some(Self::Toml),
            "yaml" | "yml" => Some(Self::Yaml),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Toml => "TOML",
            Self::Yaml => "YAML",
        }
    }
}

/// Reads and parses the file at `path`. `origin` is the source that set the path.
pub(crate) fn load(
    path: &Path,
    origin: &ValueSource,
    problems: &mut Vec<ConfigProblem>,
) -> Option<Layer> {
    let Some(format) = FileFormat::from_path(path) else {
        problems.push(ConfigProblem::UnsupportedFileExtension {
            path: path.to_owned(),
            origin: origin.clone(),
        });
        return None;
    };

    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            problems.push(ConfigProblem::FileNotFound {
                path: path.to_owned(),
                origin: origin.clone(),
            });
            return None;
        }
        Err(error) => {
            problems.push(ConfigProblem::FileUnreadable {
                path: path.to_owned(),
                origin: origin.clone(),
                error,
            });
            return None;
        }
    };

    match parse(format, &text) {
        Ok(dict) => Some(Layer::new(ValueSource::File(path.to_owned()), dict)),
        Err(message) => {
            problems.push(ConfigProblem::FileSyntax {
                path: path.to_owned(),
                format: format.name(),
                message,
            });
            None
        }
    }
}

/// Parses the file text into one dict; a file with no content is an empty dict.
fn parse(format: FileFormat, text: &str) -> Result<Dict, String> {
    if text.trim().is_empty() {
        return Ok(Dict::new());
    }

    let data = match format {
        FileFormat::Toml => Toml::string(text).data(),
        FileFormat::Yaml => Yaml::string(text).data(),
    };
    let mut profiles = data.map_err(|error| one_line(&error.kind.to_string()))?;
    Ok(profiles
        .remove(&figment::Profile::Default)
        .unwrap_or_default())
}

/// Folds a multi-line parser message into one line.
///
/// The `toml` crate prints the position, a source excerpt with a caret, then the reason. The
/// excerpt is dropped because the position names the same place.
fn one_line(message: &str) -> String {
    let mut position = None;
    let mut reasons: Vec<&str> = Vec::new();
    for line in message.lines() {
        let trimmed = line.trim();
        let is_excerpt = trimmed.starts_with('|')
            || trimmed
                .split_once('|')
                .is_some_and(|(number, _)| number.trim().chars().all(|c| c.is_ascii_digit()));
        if trimmed.is_empty() || is_excerpt {
            continue;
        }
        match trimmed.strip_prefix("TOML parse error at ") {
            Some(at) => position = Some(at),
            None => reasons.push(trimmed),
        }
    }
    let reasons = reasons.join("; ");
    match position {
        Some(position) => format!("{position}: {reasons}"),
        None => reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_error_is_one_line_with_position() {
        let message = parse(FileFormat::Toml, "[logging]\nlevel = \n").err();
        let message = message.unwrap_or_default();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.starts_with("line 2, column 9: "), "{message}");
    }

    #[test]
    fn yaml_error_names_position() {
        let message = parse(FileFormat::Yaml, "logging:\n  level: [\n").err();
        let message = message.unwrap_or_default();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("line"), "{message}");
    }

    #[test]
    fn empty_file_is_empty_dict() {
        assert_eq!(parse(FileFormat::Yaml, "\n  \n"), Ok(Dict::new()));
    }

    #[test]
    fn format_follows_extension() {
        assert_eq!(
            FileFormat::from_path(Path::new("a.TOML")),
            Some(FileFormat::Toml)
        );
        assert_eq!(
            FileFormat::from_path(Path::new("a.yml")),
            Some(FileFormat::Yaml)
        );
        assert_eq!(
            FileFormat::from_path(Path::new("a.yaml")),
            Some(FileFormat::Yaml)
        );
        assert_eq!(FileFormat::from_path(Path::new("a.json")), None);
        assert_eq!(FileFormat::from_path(Path::new("config")), None);
    }
}
