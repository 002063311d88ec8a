//! `obskit slo rules` and `obskit slo dashboard` run as processes on real configuration files.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "a test fails by panicking and prints why it skips the promtool check"
)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

const CONFIG: &str = r#"
[service]
name = "shop"

[slo.objectives.orders-availability]
kind = "availability"
target = 99.9
period = "30d"
route = "/orders/{id}"
method = "GET"

[slo.objectives.orders-latency]
kind = "latency"
target = "99%"
threshold = "1s"
period = "28d"
route = "/orders/{id}"

[slo.objectives.checkout-errors]
kind = "error_rate"
target = 0.5
period = "4w"
route = "/checkout"
method = "POST"
"#;

fn slo(command: &str, config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obskit"))
        .args(["slo", command, "--config", config.to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap()
}

fn write_config(dir: &TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    path
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn rules_pass_promtool() {
    let dir = TempDir::new().unwrap();
    let config = write_config(&dir, "obskit.toml", CONFIG);
    let output = slo("rules", &config);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let yaml = stdout(&output);
    assert!(
        yaml.contains("name: \"obskit-slo-checkout-errors\""),
        "{yaml}"
    );
    assert!(
        yaml.contains("> (13.44 * 0.005)"),
        "error_rate budget over 4w:\n{yaml}"
    );
    assert!(
        yaml.contains("> (13.44 * 0.01)"),
        "28d latency threshold:\n{yaml}"
    );
    assert!(yaml.contains("le=~\"1(\\\\.0)?\""), "1s bucket:\n{yaml}");

    let rules = dir.path().join("rules.yml");
    fs::write(&rules, &yaml).unwrap();
    let check = Command::new("promtool")
        .args(["check", "rules", rules.to_str().unwrap()])
        .output();
    match check {
        Ok(check) => assert!(
            check.status.success(),
            "promtool check rules failed:\n{}\n{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not installed; CI must install it (apt-get install prometheus)"
            );
            eprintln!("skipped the promtool check: promtool is not installed");
        }
        Err(error) => panic!("promtool failed to start: {error}"),
    }
}

#[test]
fn yaml_config_accepted() {
    let dir = TempDir::new().unwrap();
    let config = write_config(
        &dir,
        "obskit.yaml",
        "slo:\n  objectives:\n    api:\n      kind: availability\n      target: 99.95\n      period: 30d\n      route: /api\n",
    );
    let output = slo("rules", &config);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("> (14.4 * 0.0005)"));
}

/// Names of the series selected in a PromQL expression: identifiers followed by `{`.
fn selected_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    for c in expr.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            current.push(c);
            continue;
        }
        if c == '{' && !current.is_empty() {
            names.push(current.clone());
        }
        current.clear();
    }
    names
}

#[test]
fn dashboard_queries_existing_series() {
    let dir = TempDir::new().unwrap();
    let config = write_config(&dir, "obskit.toml", CONFIG);
    let rules = stdout(&slo("rules", &config));
    let output = slo("dashboard", &config);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let board: Value = serde_json::from_str(&stdout(&output)).unwrap();

    let mut known: BTreeSet<String> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- record: "))
        .map(|name| name.trim_matches('"').to_owned())
        .collect();
    known.insert("http_server_request_duration_seconds_count".to_owned());
    known.insert("http_server_request_duration_seconds_bucket".to_owned());
    assert!(known.contains("slo:sli_error:ratio_rate28d"), "{known:?}");

    assert_eq!(board["schemaVersion"], 41);
    let variable = &board["templating"]["list"][0];
    assert_eq!(variable["name"], "datasource");
    assert_eq!(variable["type"], "datasource");
    assert_eq!(variable["query"], "prometheus");

    let panels = board["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for panel in panels {
        let id = panel["id"].as_u64().unwrap();
        assert!(ids.insert(id), "duplicate panel id {id}");
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_u64(), "panel {id}: gridPos.{key}");
        }
        let width = panel["gridPos"]["w"].as_u64().unwrap();
        let x = panel["gridPos"]["x"].as_u64().unwrap();
        assert!(x + width <= 24, "panel {id} is wider than the grid");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {id}");
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = selected_names(expr);
            assert!(!names.is_empty(), "panel {id}: no series in {expr}");
            for name in names {
                assert!(
                    known.contains(&name),
                    "panel {id}: {name} is not recorded or exported"
                );
            }
            queries += 1;
        }
    }

    let titles: Vec<&str> = panels
        .iter()
        .filter_map(|panel| panel["title"].as_str())
        .collect();
    for title in [
        "SLO orders-availability: availability 99.9% over 30d",
        "SLO orders-latency: latency 99% over 28d",
        "SLO checkout-errors: error_rate 99.5% over 28d",
        "Route /orders/{id}",
        "Route /checkout",
    ] {
        assert!(titles.contains(&title), "{title} missing in {titles:?}");
    }
    // 3 SLOs × (1 + 7 + 4 queries) and 2 routes × (1 + 1 + 3 queries).
    assert_eq!(queries, 46);
    let quantiles = stdout(&output).matches("histogram_quantile(0.99,").count();
    assert_eq!(quantiles, 2);
}

#[test]
fn invalid_definition_exits_2() {
    let dir = TempDir::new().unwrap();
    let config = write_config(
        &dir,
        "obskit.toml",
        "[slo.objectives.orders]\nkind = \"latency\"\ntarget = 99\nperiod = \"30d\"\nroute = \"/orders\"\nthreshold = \"300ms\"\n\n[slo.objectives.full]\nkind = \"availability\"\ntarget = 100\nperiod = \"30d\"\nroute = \"/x\"\n",
    );
    for command in ["rules", "dashboard"] {
        let output = slo(command, &config);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(stdout(&output).is_empty(), "{command} printed output");
        let message = stderr(&output);
        assert!(message.contains("2 problems"), "{message}");
        assert!(
            message.contains("SLO \"orders\": threshold = \"300ms\""),
            "{message}"
        );
        assert!(message.contains("\"250ms\""), "{message}");
        assert!(
            message.contains("SLO \"full\": target = \"100\""),
            "{message}"
        );
    }
}

#[test]
fn unknown_field_and_missing_file_exit_2() {
    let dir = TempDir::new().unwrap();
    let config = write_config(
        &dir,
        "obskit.toml",
        "[slo.objectives.orders]\nkind = \"availability\"\ntarget = 99\nperiod = \"30d\"\nroute = \"/orders\"\nwindow = \"1h\"\n",
    );
    let output = slo("rules", &config);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("window"), "{message}");

    let output = slo("rules", &dir.path().join("missing.toml"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("file not found"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn no_objectives_prints_health_rules() {
    let dir = TempDir::new().unwrap();
    let config = write_config(&dir, "obskit.toml", "[service]\nname = \"shop\"\n");
    let output = slo("rules", &config);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("name: \"obskit-health\""));
    assert!(stderr(&output).contains("no [slo.objectives.<name>] table"));
}
