//! End-to-end test of the maximum level that `obskit::logging::install` sets. It has its own
//! binary because that level is process-wide.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::time::Duration;

use obskit::config::{LoggingConfig, ServiceConfig};
use obskit::logging::{self, LogOutput};
use obskit::metrics::Registry;
use tracing::level_filters::LevelFilter;

#[test]
fn install_sets_max_level() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("global.log");
    let logging = LoggingConfig {
        level: "warn".to_owned(),
        sample_rate: 0.5,
        ..LoggingConfig::default()
    };
    let guard = logging::install(
        &logging,
        &ServiceConfig::default(),
        &Registry::default(),
        LogOutput::File(path.clone()),
    )
    .unwrap();

    // `log` records below WARN are discarded inside the `log` crate, and disabled `tracing`
    // callsites stop at the level check.
    assert_eq!(LevelFilter::current(), LevelFilter::WARN);
    assert_eq!(log::max_level(), log::LevelFilter::Warn);

    log::info!(target: "legacy", "below the level");
    log::warn!(target: "legacy", "kept");
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\"message\":\"kept\""), "{text}");
}
