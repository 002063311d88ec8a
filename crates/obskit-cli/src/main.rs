//! The `obskit` command: checks a service's configuration, redacts logs and runs the demo
//! service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod config_check;
mod demo;
mod inventory;
mod payments;
mod redact;
mod slo;

/// Observability toolkit for Rust services.
#[derive(Debug, Parser)]
#[command(name = "obskit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run a demo service with logs, metrics, traces, health probes and graceful shutdown.
    ///
    /// Exits with 0 after a graceful shutdown, 2 when the configuration is invalid and 1 on
    /// other failures.
    Demo(DemoArgs),
    /// Copy standard input to standard output with personal data and secrets replaced.
    ///
    /// JSON lines keep their layout; other lines are scanned as text, and lines that are not
    /// UTF-8 are replaced whole. The rules come from the `redact` section of the configuration
    /// (file and OBSKIT_REDACT_* variables). Exits with 0 on success, 1 on an I/O error and 2
    /// when the configuration is invalid.
    Redact(RedactArgs),
    /// Generate Prometheus rules and a Grafana dashboard for the configured SLOs.
    Slo {
        #[command(subcommand)]
        command: SloCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SloCommand {
    /// Print Prometheus recording and alerting rules (YAML) for the SLOs of the file.
    ///
    /// The output passes `promtool check rules`; load it with `rule_files` in prometheus.yml.
    /// Exits with 0 on success and 2 when an SLO definition is invalid, naming the SLO and
    /// the field.
    Rules(SloArgs),
    /// Print a Grafana dashboard (JSON) for the SLOs of the file.
    ///
    /// Its panels query the recording rules of `obskit slo rules`. Exits with 0 on success
    /// and 2 when an SLO definition is invalid.
    Dashboard(SloArgs),
}

/// Options of `obskit slo rules` and `obskit slo dashboard`.
#[derive(Debug, Args)]
pub(crate) struct SloArgs {
    /// TOML or YAML configuration file with `[slo.objectives.<name>]` tables.
    #[arg(long, visible_alias = "file", value_name = "PATH")]
    pub(crate) config: PathBuf,
}

/// What `obskit slo` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SloOutput {
    /// Prometheus rules.
    Rules,
    /// Grafana dashboard.
    Dashboard,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the effective configuration and print each key with its value and source.
    ///
    /// Exits with 0 when the configuration is valid and 2 when it is not, printing every
    /// problem to standard error.
    Check(CheckArgs),
}

/// Options of `obskit config check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// TOML or YAML configuration file; overrides OBSKIT_CONFIG_FILE.
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) format: OutputFormat,
}

/// Output format of `obskit config check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One aligned line per key.
    Text,
    /// One JSON document.
    Json,
}

/// Options of `obskit redact`.
#[derive(Debug, Args)]
pub(crate) struct RedactArgs {
    /// TOML or YAML configuration file; overrides OBSKIT_CONFIG_FILE.
    #[arg(long, visible_alias = "file", value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Print the number of values replaced of each kind to standard error at the end.
    #[arg(long)]
    pub(crate) stats: bool,
}

/// Options of `obskit demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Address the demo service listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Share of payments the demo's payments server fails with 503, from 0.0 to 1.0.
    /// `PUT /payments/settings` changes it while the demo runs.
    #[arg(long, value_name = "RATIO", default_value_t = 0.0, value_parser = parse_ratio)]
    pub(crate) payments_failure_rate: f64,
    /// Time the payments server takes for each payment, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(0..=crate::payments::MAX_LATENCY_MS))]
    pub(crate) payments_latency_ms: u64,
    /// Requests per second each client may make to `/orders`; twice as many in a burst.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) orders_rate_limit: u32,
}

/// Parses a ratio from 0.0 to 1.0.
fn parse_ratio(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number; use a ratio from 0.0 to 1.0"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{text} is out of range; use a ratio from 0.0 to 1.0"
        ))
    }
}

/// Returns whether `error` comes from loading or validating the configuration.
fn is_config_error(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<obskit::config::ConfigError>()
        || matches!(
            error.downcast_ref::<obskit::InitError>(),
            Some(obskit::InitError::Config(_))
        )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check(args),
        } => config_check::run(&args),
        Command::Redact(args) => redact::run(&args),
        Command::Slo {
            command: SloCommand::Rules(args),
        } => slo::run(&args, SloOutput::Rules),
        Command::Slo {
            command: SloCommand::Dashboard(args),
        } => slo::run(&args, SloOutput::Dashboard),
        Command::Demo(args) => match demo::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                config_check::print_error(&format!("obskit demo: {error}"));
                // An invalid configuration gets the status of `config check`.
                if is_config_error(error.as_ref()) {
                    ExitCode::from(config_check::INVALID)
                } else {
                    ExitCode::FAILURE
                }
            }
        },
    }
}
