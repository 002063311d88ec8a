//! `obskit config check`: validates the effective configuration and prints where each value
//! came from.

use std::io::{self, Write};
use std::process::ExitCode;

use obskit::Config;
use obskit::config::{ConfigError, ConfigReport};
use serde_json::json;

use crate::{CheckArgs, OutputFormat};

/// Exit status when the configuration is invalid; the same status clap uses for usage errors.
pub(crate) const INVALID: u8 = 2;

/// Loads the configuration from the defaults, the file and the environment, and prints the
/// report (valid) or every problem (invalid).
pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let mut builder = Config::builder();
    if let Some(path) = &args.file {
        builder = builder.file(path);
    }

    let written = match builder.build_with_report() {
        Ok((_, report)) => print_report(&report, args.format),
        Err(error) => {
            let written = print_problems(&error, args.format);
            return match written {
                Ok(()) => ExitCode::from(INVALID),
                Err(_) => ExitCode::FAILURE,
            };
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn print_report(report: &ConfigReport, format: OutputFormat) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        OutputFormat::Text => write!(out, "{report}")?,
        OutputFormat::Json => {
            let document = json!({ "valid": true, "entries": report });
            writeln!(out, "{document}")?;
        }
    }
    out.flush()
}

/// Prints one problem per line to standard error, and in JSON mode also a document to
/// standard output so that scripts read one format.
fn print_problems(error: &ConfigError, format: OutputFormat) -> io::Result<()> {
    let problems = print_problems_text(error)?;

    if format == OutputFormat::Json {
        let mut out = io::stdout().lock();
        writeln!(out, "{}", json!({ "valid": false, "problems": problems }))?;
        out.flush()?;
    }
    Ok(())
}

/// Prints one problem per line to standard error and returns the lines.
pub(crate) fn print_problems_text(error: &ConfigError) -> io::Result<Vec<String>> {
    let problems: Vec<String> = error.problems().iter().map(ToString::to_string).collect();

    let mut err = io::stderr().lock();
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    writeln!(err, "invalid configuration, {} {noun}:", problems.len())?;
    for problem in &problems {
        writeln!(err, "  {problem}")?;
    }
    Ok(problems)
}

/// Prints a one-line error to standard error, ignoring a closed stream.
pub(crate) fn print_error(message: &str) {
    let _ = writeln!(io::stderr().lock(), "{message}");
}
