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
use obskit::slo::{BurnRateAlert, SloDefinition, SloSpec, Window, rules};
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

/// Burn rate over `window` at the end of minute `now` (1-based), from per-minute counts:
/// `bad / valid / error_budget`, or `None` without valid requests. Minutes before the start
/// of the traffic count as empty.
///
/// NOTE: this is the burn-rate definition of the in-process tracker (events in
/// `(now - window, now]`); once the tracker is available, feed it the same minutes through a
/// manual clock instead and compare with its burn rates.
fn in_process_burn_rate(
    traffic: &[Minute],
    now: usize,
    window: Window,
    error_budget: f64,
) -> Option<f64> {
    let minutes = usize::try_from(window.seconds() / 60).unwrap();
    let start = now.saturating_sub(minutes);
    let (valid, bad) = traffic[start..now]
        .iter()
        .fold((0, 0), |(valid, bad), minute| {
            (valid + minute.valid, bad + minute.bad)
        });
    (valid > 0).then(|| bad as f64 / valid as f64 / error_budget)
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
/// sample a minute and windows aligned to samples, Prometheus 2's `rate` sees exactly the
/// window's requests, so both differ only by floating-point rounding.
const TOLERANCE: f64 = 1e-9;

#[test]
fn burn_rates_match_in_process() {
    let slos = fixture_slos();
    let slo = slos
        .iter()
        .find(|slo| slo.name == "orders-availability")
        .unwrap();
    let budget = slo.target.error_budget().to_f64();
    let traffic = traffic();

    let mut tests = String::new();
    let mut checked = 0;
    for now in (5..=traffic.len()).step_by(15) {
        let mut cases = String::new();
        for window in Window::ALL {
            let Some(burn) = in_process_burn_rate(&traffic, now, window, budget) else {
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
        [page.long_window, page.short_window].iter().all(|window| {
            in_process_burn_rate(&traffic, now, *window, 0.001).is_some_and(|burn| burn > threshold)
        })
    };
    assert!(!fires(163));
    assert!(fires(164));
}
