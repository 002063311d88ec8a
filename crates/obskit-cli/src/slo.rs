//! `obskit slo rules` and `obskit slo dashboard`: Prometheus rules and a Grafana dashboard for
//! the SLOs of a configuration file.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use obskit::slo::{SloDefinition, dashboard, rules};

use crate::config_check::{INVALID, print_error};
use crate::{SloArgs, SloOutput};

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

/// Loads the configuration from `path` and the environment, as `obskit config check` does,
/// and returns its SLOs, or every problem found.
fn read(path: &Path) -> Result<Vec<SloDefinition>, Vec<String>> {
    if !path.is_file() {
        return Err(vec![format!(
            "{}: file not found; pass an obskit TOML or YAML configuration file with --config",
            path.display()
        )]);
    }
    let config = obskit::Config::builder()
        .file(path)
        .build()
        .map_err(|error| {
            error
                .to_string()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })?;
    match config.slo.definitions() {
        Ok(set) => Ok(set.definitions().to_vec()),
        Err(errors) => Err(errors.errors.iter().map(ToString::to_string).collect()),
    }
}
