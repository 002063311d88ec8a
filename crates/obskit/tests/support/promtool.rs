//! `promtool check metrics` on an exposition, shared by the tests that check metric text.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Checks `text` with `promtool check metrics` and fails on any error or lint finding.
///
/// Outside CI a missing promtool skips the check with a message; in CI (`CI` set) it fails,
/// since the test script installs promtool.
pub(crate) fn check_metrics(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not installed; CI must install it (apt-get install prometheus)"
            );
            #[allow(clippy::print_stderr, reason = "a test says why it skips a check")]
            {
                eprintln!("skipping promtool check: promtool is not installed");
            }
            return;
        }
        Err(error) => panic!("starting promtool failed: {error}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool rejected the exposition:\nstdout: {stdout}\nstderr: {stderr}\ninput:\n{text}"
    );
}
