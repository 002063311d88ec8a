//! `obskit slo rules` and `obskit slo dashboard`: Prometheus rules and a Grafana dashboard for
//! the SLOs of a configuration file.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use figment::Figment;
use figment::providers::{Format, Toml, Yaml};
use obskit::slo::{SloDefinition, SloSpec, dashboard, rules};
use serde::Deserialize;

use crate::config_check::{INVALID, print_error};
use crate::{SloArgs, SloOutput};

/// The `slo` section of the configuration file: `[slo.objectives.<name>]` tables.
///
/// TODO: read `Config::slo` once the configuration has its `slo` section, so that this
/// command applies the same environment overrides and checks as `obskit config check`.
#[derive(Debug, Default, Deserialize)]
struct SloFile {
    #[serde(default)]
    slo: SloSection,
}

#[derive(Debug, Default, Deserialize)]
struct SloSection {
    #[serde(default)]
    objectives: BTreeMap<String, SloSpec>,
}

/// Reads the SLOs of `args.config` and prints the rules or the dashboard.
pub(crate) fn run(args: &SloArgs, output: SloOutput) -> ExitCode {
    let definitions = match read(&args.config) {
        Ok(definitions) => definitions,
        Err(problems) => {
            let mut err = io::stderr().lock();
            let noun = if problems.len() == 1 {
                "problem"
            } else {
                "problems"
            };
            let _ = writeln!(
                err,
                "invalid SLO configuration in {}, {} {noun}:",
                args.config.display(),
                problems.len()
            );
            for problem in &problems {
                let _ = writeln!(err, "  {problem}");
            }
            return ExitCode::from(INVALID);
        }
    };
    if definitions.is_empty() {
        print_error(&format!(
            "warning: {} defines no [slo.objectives.<name>] table; only the obskit health alerts are generated",
            args.config.display()
        ));
    }

    let text = match output {
        SloOutput::Rules => rules(&definitions),
        SloOutput::Dashboard => match serde_json::to_string_pretty(&dashboard(&definitions)) {
            Ok(json) => json + "\n",
            Err(error) => {
                print_error(&format!("obskit slo dashboard: {error}"));
                return ExitCode::FAILURE;
            }
        },
    };
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Reads and validates every SLO of the file, returning every problem found.
fn read(path: &Path) -> Result<Vec<SloDefinition>, Vec<String>> {
    if !path.is_file() {
        return Err(vec![format!(
            "{}: file not found; pass an obskit TOML or YAML configuration file with --config",
            path.display()
        )]);
    }
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    let figment = match extension.as_deref() {
        Some("toml") => Figment::from(Toml::file(path)),
        Some("yaml" | "yml") => Figment::from(Yaml::file(path)),
        _ => {
            return Err(vec![format!(
                "{}: unsupported file extension; use .toml, .yaml or .yml",
                path.display()
            )]);
        }
    };
    let file: SloFile = figment.extract().map_err(|error| {
        error
            .into_iter()
            .map(|error| error.to_string())
            .collect::<Vec<_>>()
    })?;

    let mut definitions = Vec::new();
    let mut problems = Vec::new();
    for (name, spec) in &file.slo.objectives {
        match SloDefinition::from_spec(name, spec) {
            Ok(definition) => definitions.push(definition),
            Err(error) => problems.push(error.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(definitions)
    } else {
        Err(problems)
    }
}
