//! `obskit config check` run as a process, with a controlled environment and real files.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::fs;
use std::process::{Command, Output};

use tempfile::TempDir;

/// Runs the binary with only the given environment variables, so the test does not depend on
/// the variables of the shell that runs it.
fn check(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obskit"))
        .args(["config", "check"])
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Splits the report line for `key` into its words: key, value, then the source.
fn line_of(text: &str, key: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{text}"));
    line.split_whitespace().map(ToOwned::to_owned).collect()
}

#[test]
fn valid_config_shows_sources() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("obskit.toml");
    fs::write(
        &file,
        "[service]\nname = \"checkout\"\n[metrics]\nauth_token = \"hunter2\"\n",
    )
    .unwrap();

    let output = check(
        &["--file", file.to_str().unwrap()],
        &[("OBSKIT_LOG_LEVEL", "debug")],
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let file_source = ["file".to_owned(), file.display().to_string()];
    assert_eq!(line_of(&text, "service.name")[1], "\"checkout\"");
    assert_eq!(line_of(&text, "service.name")[2..], file_source);
    assert_eq!(
        line_of(&text, "logging.level")[1..],
        ["\"debug\"", "env", "OBSKIT_LOG_LEVEL"]
    );
    assert_eq!(
        line_of(&text, "logging.format")[1..],
        ["\"json\"", "default"]
    );
    assert_eq!(line_of(&text, "metrics.auth_token")[1], "\"****\"");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn file_from_env_variable() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("obskit.yaml");
    fs::write(&file, "service:\n  name: from-yaml\n").unwrap();

    let output = check(&[], &[("OBSKIT_CONFIG_FILE", file.to_str().unwrap())]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        line_of(&stdout(&output), "service.name")[1],
        "\"from-yaml\""
    );
}

#[test]
fn json_format_is_one_document() {
    let output = check(
        &["--format", "json"],
        &[("OBSKIT_METRICS_AUTH_TOKEN", "hunter2")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(document["valid"], true);
    let entries = document["entries"].as_array().unwrap();
    let token = entries
        .iter()
        .find(|entry| entry["key"] == "metrics.auth_token")
        .unwrap();
    assert_eq!(token["value"], "****");
    assert_eq!(token["source"], "env OBSKIT_METRICS_AUTH_TOKEN");
    assert!(!stdout(&output).contains("hunter2"));
}

#[test]
fn invalid_value_names_variable_and_value() {
    let output = check(&[], &[("OBSKIT_LOG_SAMPLE_RATE", "2")]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains(
            "logging.sample_rate = \"2\" (from env OBSKIT_LOG_SAMPLE_RATE): invalid value; expected a number from 0.0 to 1.0"
        ),
        "{text}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn every_problem_printed() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("obskit.toml");
    fs::write(&file, "[logging]\nsampel_rate = 0.5\n").unwrap();

    let output = check(
        &["--file", file.to_str().unwrap()],
        &[
            ("OBSKIT_LOG_LEVL", "debug"),
            ("OBSKIT_SHUTDOWN_TIMEOUT", "soon"),
            ("OBSKIT_METRICS_AUTH_TOKEN", "hunter2"),
            ("OBSKIT_METRICS_AUTH_TOKEN_FILE", "/nonexistent/token"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with("invalid configuration, 4 problems:"),
        "{text}"
    );
    assert!(
        text.contains("did you mean `logging.sample_rate`?"),
        "{text}"
    );
    assert!(text.contains("did you mean `OBSKIT_LOG_LEVEL`?"), "{text}");
    assert!(
        text.contains("shutdown.timeout = \"soon\" (from env OBSKIT_SHUTDOWN_TIMEOUT)"),
        "{text}"
    );
    assert!(text.contains("metrics.auth_token (from env OBSKIT_METRICS_AUTH_TOKEN) and metrics.auth_token_file (from env OBSKIT_METRICS_AUTH_TOKEN_FILE) are both set"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn json_format_lists_problems() {
    let output = check(&["--format", "json"], &[("OBSKIT_LOG_FORMAT", "xml")]);
    assert_eq!(output.status.code(), Some(2));
    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(document["valid"], false);
    let problems = document["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .starts_with("logging.format = \"xml\" (from env OBSKIT_LOG_FORMAT)"),
        "{problems:?}"
    );
}

#[test]
fn missing_file_is_an_error() {
    let output = check(&["--file", "/nonexistent/obskit.toml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("configuration file \"/nonexistent/obskit.toml\": file not found"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn redact_section_shown_with_key_masked() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("obskit.toml");
    fs::write(
        &file,
        "[redact]\nrules.email = \"hash\"\nfields.add = [\"internal_note\"]\n",
    )
    .unwrap();

    let output = check(
        &["--file", file.to_str().unwrap()],
        &[
            ("OBSKIT_REDACT_HASH_KEY", "0123456789abcdef-secret"),
            ("OBSKIT_REDACT_ALLOW_FIELDS", "order_id, trace_id"),
        ],
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    assert_eq!(
        line_of(&text, "redact.hash_key")[1..],
        ["\"****\"", "env", "OBSKIT_REDACT_HASH_KEY"]
    );
    assert!(!text.contains("0123456789abcdef-secret"), "{text}");
    assert_eq!(line_of(&text, "redact.rules.email")[1], "\"hash\"");
    assert_eq!(
        line_of(&text, "redact.rules.token")[1..],
        ["\"mask\"", "default"]
    );
    assert_eq!(
        line_of(&text, "redact.fields.add")[1],
        "[\"internal_note\"]"
    );
    assert_eq!(
        line_of(&text, "redact.allow_fields")[1..],
        [
            "[\"order_id\",\"trace_id\"]",
            "env",
            "OBSKIT_REDACT_ALLOW_FIELDS"
        ]
    );
    assert_eq!(line_of(&text, "redact.enabled")[1..], ["true", "default"]);
}
