//! `obskit redact` run as a process over standard input and output, with real config files.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::fs;
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::thread;

use tempfile::TempDir;

/// Runs `obskit redact` with only the given environment variables and `input` on standard
/// input. The input is written from a thread so that a large input cannot block on a full
/// output pipe.
fn redact(args: &[&str], vars: &[(&str, &str)], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_obskit"))
        .arg("redact")
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        // The process may exit before reading everything, for example on a bad config.
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn assert_success(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
}

#[test]
fn json_lines_keep_structure() {
    let input = concat!(
        r#"{"level":"info", "msg":"login jane@example.com","password":"hunter2","amount":12.50}"#,
        "\n",
        r#"[ {"card": 4111111111111111}, {"nested": {"api_key": [1, 2]}} ]"#,
        "\n",
    );
    let output = redact(&[], &[], input.as_bytes());
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        concat!(
            r#"{"level":"info", "msg":"login [REDACTED:email]","password":"[REDACTED:field]","amount":12.50}"#,
            "\n",
            r#"[ {"card": "[REDACTED:card]"}, {"nested": {"api_key": "[REDACTED:field]"}} ]"#,
            "\n",
        )
    );
    for line in stdout(&output).lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn text_lines_scanned() {
    let input = "GET /login password=hunter2 from jane@example.com\n\
                 {not json a@example.com\n\
                 nothing to see\n";
    let output = redact(&[], &[], input.as_bytes());
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        "GET /login password=[REDACTED:field] from [REDACTED:email]\n\
         {not json [REDACTED:email]\n\
         nothing to see\n"
    );
}

#[test]
fn pem_block_over_lines() {
    let input = "loading key\n\
                 -----BEGIN RSA PRIVATE KEY-----\n\
                 MIIEpAIBAAKCAQEA1234\n\
                 abcdEFGH5678\n\
                 -----END RSA PRIVATE KEY----- loaded for jane@example.com\n\
                 done\n";
    let output = redact(&["--stats"], &[], input.as_bytes());
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        "loading key\n\
         [REDACTED:private_key]\n\
         [REDACTED:private_key]\n\
         [REDACTED:private_key]\n\
         [REDACTED:private_key] loaded for [REDACTED:email]\n\
         done\n"
    );
    assert!(!stdout(&output).contains("MIIE"));
    let stats = stderr(&output);
    assert!(
        stats
            .lines()
            .any(|line| line.split_whitespace().eq(["private_key", "1"])),
        "{stats}"
    );
}

#[test]
fn invalid_utf8_line_replaced() {
    let mut input = b"before a@example.com\n".to_vec();
    input.extend_from_slice(b"caf\xe9 secret=x\n");
    input.extend_from_slice(b"after\n");
    let output = redact(&[], &[], &input);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        "before [REDACTED:email]\n[REDACTED:invalid_utf8]\nafter\n"
    );
}

#[test]
fn crlf_endings_kept() {
    let input = "a@example.com\r\n{\"token\":\"abc\"}\r\nlast line without ending";
    let output = redact(&[], &[], input.as_bytes());
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        "[REDACTED:email]\r\n{\"token\":\"[REDACTED:field]\"}\r\nlast line without ending"
    );
}

#[test]
fn config_file_sets_partial_rule() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("obskit.toml");
    fs::write(
        &file,
        "[redact]\nrules.card = \"partial\"\nrules.email = \"partial\"\nallow_fields = [\"order_id\"]\n",
    )
    .unwrap();
    let input = "card 4111 1111 1111 1111 mail jane@example.com\n\
                 {\"order_id\":\"jane@example.com\"}\n";
    let output = redact(&["--config", file.to_str().unwrap()], &[], input.as_bytes());
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        "card **** **** **** 1111 mail ***@example.com\n\
         {\"order_id\":\"jane@example.com\"}\n"
    );
}

#[test]
fn env_turns_redaction_off() {
    let input = "password=hunter2 jane@example.com\n";
    let output = redact(&[], &[("OBSKIT_REDACT_ENABLED", "false")], input.as_bytes());
    assert_success(&output);
    assert_eq!(stdout(&output), input);
}

#[test]
fn hash_rule_without_key_exits_2() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("obskit.yaml");
    fs::write(&file, "redact:\n  rules:\n    email: hash\n").unwrap();
    let output = redact(
        &["--config", file.to_str().unwrap()],
        &[],
        b"a@example.com\n",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    let text = stderr(&output);
    assert!(text.contains("invalid configuration, 1 problem:"), "{text}");
    assert!(text.contains("redact.rules.email = \"hash\""), "{text}");
    assert!(text.contains("OBSKIT_REDACT_HASH_KEY"), "{text}");
}

#[test]
fn short_hash_key_exits_2_masked() {
    let output = redact(
        &[],
        &[
            ("OBSKIT_REDACT_RULES_CARD", "hash"),
            ("OBSKIT_REDACT_HASH_KEY", "tooshort"),
        ],
        b"x\n",
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("redact.hash_key = **** (from env OBSKIT_REDACT_HASH_KEY)"),
        "{text}"
    );
    assert!(
        text.contains("at least 16 bytes (this one has 8)"),
        "{text}"
    );
    assert!(!text.contains("tooshort"), "{text}");
}

#[test]
fn hash_mode_correlates_values() {
    let output = redact(
        &[],
        &[
            ("OBSKIT_REDACT_RULES_EMAIL", "HASH"),
            ("OBSKIT_REDACT_HASH_KEY", "0123456789abcdef0123456789abcdef"),
        ],
        b"jane@example.com\n{\"to\":\"jane@example.com\"}\nbob@example.com\n",
    );
    assert_success(&output);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("[REDACTED:email:"), "{text}");
    assert_eq!(lines[1], format!("{{\"to\":\"{}\"}}", lines[0]));
    assert_ne!(lines[2], lines[0]);
}

#[test]
fn stats_counts_each_kind() {
    let input = "a@example.com b@example.com\n{\"secret\":1}\nnothing\n";
    let output = redact(&["--stats"], &[], input.as_bytes());
    assert_success(&output);
    let stats = stderr(&output);
    let count = |kind: &str| -> Option<String> {
        stats
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.first() == Some(&kind))
            .and_then(|words| words.get(1).map(|word| (*word).to_owned()))
    };
    assert_eq!(count("email").as_deref(), Some("2"), "{stats}");
    assert_eq!(count("field").as_deref(), Some("1"), "{stats}");
    assert_eq!(count("card").as_deref(), Some("0"), "{stats}");
    assert_eq!(count("total").as_deref(), Some("3"), "{stats}");
}

#[test]
fn no_stats_without_flag() {
    let output = redact(&[], &[], b"a@example.com\n");
    assert_success(&output);
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn closed_stdout_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_obskit"))
        .arg("redact")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    drop(child.stdout.take());
    let writer = thread::spawn(move || {
        let line = b"mail jane@example.com and some padding text to fill the pipe\n";
        for _ in 0..50_000 {
            if stdin.write_all(line).is_err() {
                break;
            }
        }
    });
    let status = child.wait().unwrap();
    writer.join().unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{errors}");
    assert!(errors.is_empty(), "{errors}");
}

#[test]
fn unreadable_config_file_exits_2() {
    let output = redact(&["--config", "/nonexistent/obskit.toml"], &[], b"x\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("file not found"),
        "{}",
        stderr(&output)
    );
}
