//! Generated SLO rules as `promtool` checks and evaluates them, and burn rates computed in
//! process from the same traffic.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "tests fail by panicking and print why they skip the promtool checks"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use figment::Figment;
use figment::providers::{Format as _, Toml};
use std::sync::Arc;
use std::time::Duration;

use obskit::clock::ManualClock;
use obskit::slo::{
    BurnRateAlert, Outcome, SloDefinition, SloSpec, SloStatus, SloTracker, Window, rules,
};
use serde::Deserialize;
use tempfile::TempDir;

/// The `slo` section of an obskit configuration file.
#[derive(Deserialize)]
struct SloFile {
    slo: SloSection,
}

#[derive(Deserialize)]
struct SloSection {
    objectives: BTreeMap<String, SloSpec>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool")
}

fn fixture_slos() -> Vec<SloDefinition> {
    let file: SloFile = Figment::from(Toml::file(fixtures().join("slos.toml")))
        .extract()
        .unwrap();
    file.slo
        .objectives
        .iter()
        .map(|(name, spec)| SloDefinition::from_spec(name, spec).unwrap())
        .collect()
}

/// Runs promtool, or returns `None` when it is not installed outside CI.
fn promtool(args: &[&str], dir: &Path) -> Option<Output> {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(output) => Some(output),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not installed; CI must install it (apt-get install prometheus)"
            );
            eprintln!("skipped: promtool is not installed");
            None
        }
        Err(error) => panic!("promtool failed to start: {error}"),
    }
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes the fixture's rules to `rules.yml` in a new directory, next to copies of the test
/// files named `files`.
fn rules_dir(slos: &[SloDefinition], files: &[&str]) -> TempDir {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("rules.yml"), rules(slos)).unwrap();
    for file in files {
        fs::copy(fixtures().join(file), dir.path().join(file)).unwrap();
    }
    dir
}

#[test]
fn rules_pass_promtool_check() {
    let dir = rules_dir(&fixture_slos(), &[]);
    let Some(output) = promtool(&["check", "rules", "rules.yml"], dir.path()) else {
        return;
    };
    assert_success(&output, "promtool check rules");
    let text = String::from_utf8_lossy(&output.stdout);
    // 2 SLOs × (8 error ratios + 3 others + 4 alerts), then 5 health alerts.
    assert!(text.contains("SUCCESS: 35 rules found"), "{text}");
}

#[test]
fn rules_for_periods_pass_promtool_check() {
    let periods = ["3d", "7d", "28d", "4w 2d", "90d 12h", "366d"];
    let slos: Vec<SloDefinition> = periods
        .iter()
        .enumerate()
        .map(|(index, period)| {
            SloDefinition::builder(format!("slo-{index}"))
                .target("99.95")
                .period(period)
                .route("/a/{id}/\"quoted\"")
                .description("Uses {{ braces }} and \"quotes\"")
                .build()
                .unwrap()
        })
        .collect();
    let dir = rules_dir(&slos, &[]);
    if let Some(output) = promtool(&["check", "rules", "rules.yml"], dir.path()) {
        assert_success(&output, "promtool check rules");
    }
}

#[test]
fn burn_rate_alerts_under_promtool() {
    let dir = rules_dir(&fixture_slos(), &["burn_rate_test.yml"]);
    if let Some(output) = promtool(&["test", "rules", "burn_rate_test.yml"], dir.path()) {
        assert_success(&output, "promtool test rules");
    }
}

/// Requests per minute of one route: valid requests and bad ones among them.
#[derive(Debug, Clone, Copy)]
struct Minute {
    valid: u64,
    bad: u64,
}

/// Synthetic traffic: one entry per minute, starting at minute 1.
fn traffic() -> Vec<Minute> {
    let mut minutes = Vec::new();
    // Three hours of healthy traffic that grows, then an hour of 3 % errors, then a quieter
    // hour with a 10-minute outage, then healthy again.
    for minute in 0..180 {
        minutes.push(Minute {
            valid: 600 + minute * 2,
            bad: minute % 7,
        });
    }
    for minute in 0..60 {
        let valid = 1000 + minute * 5;
        minutes.push(Minute {
            valid,
            bad: valid * 3 / 100,
        });
    }
    for minute in 0..60 {
        let valid = 400;
        let bad = if (20..30).contains(&minute) { 380 } else { 1 };
        minutes.push(Minute { valid, bad });
    }
    for _ in 0..30 {
        minutes.push(Minute { valid: 500, bad: 0 });
    }
    minutes
}

/// Status of the `orders-availability` SLO's in-process tracker at the end of minute `now`
/// (1-based), after it recorded the first `now` minutes of `traffic`. Each minute's requests
/// are recorded at its middle, on a manual clock that starts with the traffic.
fn in_process_status(traffic: &[Minute], now: usize) -> SloStatus {
    let definition = fixture_slos()
        .into_iter()
        .find(|slo| slo.name == "orders-availability")
        .unwrap();
    let tracker = SloTracker::new(definition, Arc::new(ManualClock::new())).unwrap();
    for (minute, counts) in traffic[..now].iter().enumerate() {
        let at = Duration::from_secs(minute as u64 * 60 + 30);
        for _ in 0..counts.bad {
            tracker.record_at(at, Outcome::Bad);
        }
        for _ in 0..counts.valid - counts.bad {
            tracker.record_at(at, Outcome::Good);
        }
    }
    tracker.status_at(Duration::from_secs(now as u64 * 60))
}

/// Writes traffic as promtool input series: a 200 and a 500 counter, one sample a minute
/// from minute 0, the values being the running totals.
fn input_series(traffic: &[Minute]) -> String {
    let mut good = vec![0_u64];
    let mut bad = vec![0_u64];
    for minute in traffic {
        good.push(good.last().unwrap() + minute.valid - minute.bad);
        bad.push(bad.last().unwrap() + minute.bad);
    }
    let join = |values: &[u64]| {
        values
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let series = |status: &str| {
        format!(
            "http_server_request_duration_seconds_count{{job=\"orders\",instance=\"10.0.0.7:8080\",http_request_method=\"GET\",http_route=\"/orders/{{id}}\",http_response_status_code=\"{status}\"}}"
        )
    };
    format!(
        "      - series: '{}'\n        values: '{}'\n      - series: '{}'\n        values: '{}'\n",
        series("200"),
        join(&good),
        series("500"),
        join(&bad)
    )
}

/// Relative difference allowed between the in-process and the Prometheus burn rates. With one
/// sample a minute and windows aligned to samples, Prometheus 2's `rate` covers exactly the
/// window's requests, so both differ only by floating-point rounding.
const TOLERANCE: f64 = 1e-9;

#[test]
fn burn_rates_match_in_process() {
    let slos = fixture_slos();
    let slo = slos
        .iter()
        .find(|slo| slo.name == "orders-availability")
        .unwrap();
    let traffic = traffic();

    let mut tests = String::new();
    let mut checked = 0;
    for now in (5..=traffic.len()).step_by(15) {
        let mut cases = String::new();
        let status = in_process_status(&traffic, now);
        for window in Window::ALL {
            let Some(burn) = status.burn_rates.get(window) else {
                continue;
            };
            let record = format!("slo:sli_error:ratio_rate{window}{{slo=\"{}\"}}", slo.name);
            let _ = write!(
                cases,
                "      - expr: 'abs({record} / {} - {burn:e}) <= bool {:e}'\n        eval_time: {now}m\n        exp_samples:\n          - labels: '{{http_request_method=\"GET\",http_route=\"/orders/{{id}}\",slo=\"orders-availability\",slo_kind=\"availability\"}}'\n            value: 1\n",
                slo.target.error_budget(),
                TOLERANCE * burn.max(f64::MIN_POSITIVE),
            );
            checked += 1;
        }
        tests.push_str(&cases);
    }
    assert!(checked > 100, "only {checked} comparisons");

    let unit_tests = format!(
        "rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{}    promql_expr_test:\n{tests}",
        input_series(&traffic)
    );
    let dir = rules_dir(&slos, &[]);
    fs::write(dir.path().join("agreement_test.yml"), unit_tests).unwrap();
    if let Some(output) = promtool(&["test", "rules", "agreement_test.yml"], dir.path()) {
        assert_success(&output, "promtool test rules (agreement)");
    }
}

#[test]
fn in_process_alert_matches_promtool_case() {
    // The steady 2 % case of burn_rate_test.yml: two hours of 1000 healthy requests a minute,
    // then 2 % errors. The 1h window passes 14.4 × 0.001 after 43.2 minutes of errors.
    let mut traffic = vec![
        Minute {
            valid: 1000,
            bad: 0
        };
        120
    ];
    traffic.extend(vec![
        Minute {
            valid: 1000,
            bad: 20
        };
        60
    ]);
    let page = BurnRateAlert::ALL[0];
    let threshold = page.threshold(fixture_slos()[0].period);
    let fires = |now: usize| {
        let status = in_process_status(&traffic, now);
        [page.long_window, page.short_window].iter().all(|window| {
            status
                .burn_rates
                .get(*window)
                .is_some_and(|burn| burn > threshold)
        })
    };
    assert!(!fires(163));
    assert!(fires(164));
}
