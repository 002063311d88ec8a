//! `obskit redact`: copies standard input to standard output line by line with personal data
//! and secrets replaced.
//!
//! A line that is one JSON object or array keeps its layout (see
//! [`Redactor::redact_json_line`]); any other line is scanned as text. A line that is not
//! UTF-8 is replaced whole. Line endings (`\n`, `\r\n` or none on the last line) are kept.
//!
//! A PEM private key spans lines. From a line that opens a key block until the line that
//! closes it, each line is written as one `[REDACTED:private_key]` line, so the output has as
//! many lines as the input. The key counts as one redaction. The text after the `END` marker
//! on the closing line is scanned as usual.
//!
//! # Limitations
//!
//! - A key block whose `END` line never comes replaces every following line.
//! - One line is held in memory at a time, however long it is. Text lines longer than
//!   `redact.max_value_bytes` are replaced whole.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use obskit::Config;
use obskit::config::{RedactConfig, RuleMode};
use obskit::redact::{Kind, Redactor, closes_private_key, opens_private_key};

use crate::RedactArgs;
use crate::config_check::{INVALID, print_error, print_problems_text};

/// The line written for each line inside a private key block.
const KEY_LINE: &str = "[REDACTED:private_key]";

/// Loads the configuration, redacts standard input to standard output and returns the exit
/// status: 0 on success or a closed standard output, 1 on another I/O error, 2 for an invalid
/// configuration.
pub(crate) fn run(args: &RedactArgs) -> ExitCode {
    let mut builder = Config::builder();
    if let Some(path) = &args.config {
        builder = builder.file(path);
    }
    let config = match builder.build() {
        Ok(config) => config,
        Err(error) => {
            let _ = print_problems_text(&error);
            return ExitCode::from(INVALID);
        }
    };
    let redactor = match Redactor::new(&config.redact) {
        Ok(redactor) => redactor,
        Err(error) => {
            print_error(&format!("invalid configuration: {error}"));
            return ExitCode::from(INVALID);
        }
    };

    let stdin = io::stdin().lock();
    let mut stdout = BufWriter::new(io::stdout().lock());
    let result =
        copy_redacted(&redactor, &config.redact, stdin, &mut stdout).and_then(|()| stdout.flush());

    if args.stats {
        let _ = print_stats(&redactor);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader such as `head` that closes the pipe early is a normal end.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("obskit redact: {error}"));
            ExitCode::FAILURE
        }
    }
}

/// Copies `input` to `output` line by line, redacted.
///
/// # Errors
///
/// An error reading `input` or writing `output`.
pub(crate) fn copy_redacted<R: BufRead, W: Write>(
    redactor: &Redactor,
    config: &RedactConfig,
    mut input: R,
    output: &mut W,
) -> io::Result<()> {
    let keys_redacted = config.enabled && config.rules.private_key != RuleMode::Off;
    let mut line = Vec::new();
    let mut text = String::new();
    let mut in_key = false;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let (content, ending) = split_line_ending(&line);
        text.clear();
        match std::str::from_utf8(content) {
            Err(_) => text.push_str(&redactor.redact_bytes(content)),
            Ok(content) if in_key => match closes_private_key(content) {
                None => text.push_str(KEY_LINE),
                Some(end) => {
                    text.push_str(KEY_LINE);
                    let rest = content.get(end..).unwrap_or_default();
                    redact_text(redactor, rest, &mut text)?;
                    in_key = keys_redacted && opens_private_key(rest);
                }
            },
            Ok(content) => {
                if redactor.redact_json_line(content, &mut text).is_none() {
                    redact_text(redactor, content, &mut text)?;
                    in_key = keys_redacted && opens_private_key(content);
                }
            }
        }
        output.write_all(text.as_bytes())?;
        output.write_all(ending)?;
    }
}

fn redact_text(redactor: &Redactor, content: &str, out: &mut String) -> io::Result<()> {
    redactor
        .redact_to(content, out)
        .map(|_| ())
        .map_err(|_| io::Error::other("formatting into a string failed"))
}

/// Splits `\n` or `\r\n` off the end of `line`.
fn split_line_ending(line: &[u8]) -> (&[u8], &[u8]) {
    let length = if line.ends_with(b"\r\n") {
        2
    } else {
        usize::from(line.ends_with(b"\n"))
    };
    line.split_at(line.len() - length)
}

/// Prints the number of values replaced of each kind to standard error, then the total.
fn print_stats(redactor: &Redactor) -> io::Result<()> {
    let mut err = io::stderr().lock();
    let width = Kind::ALL
        .iter()
        .map(|kind| kind.as_str().len())
        .max()
        .unwrap_or(0);
    let mut total = 0;
    for kind in Kind::ALL {
        let count = redactor.redactions(kind);
        total += count;
        writeln!(err, "{:<width$}  {count}", kind.as_str())?;
    }
    writeln!(err, "{:<width$}  {total}", "total")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(input: &[u8]) -> String {
        let redactor = Redactor::default();
        let mut output = Vec::new();
        let result = copy_redacted(&redactor, &RedactConfig::default(), input, &mut output);
        assert!(result.is_ok(), "{result:?}");
        String::from_utf8(output).unwrap_or_default()
    }

    #[test]
    fn line_endings_kept() {
        assert_eq!(
            run_on(b"a@example.com\r\nplain\nlast a@example.com"),
            "[REDACTED:email]\r\nplain\nlast [REDACTED:email]"
        );
    }

    #[test]
    fn lone_carriage_return_is_content() {
        assert_eq!(run_on(b"a\rb\n"), "a\rb\n");
    }

    #[test]
    fn key_block_replaced_line_by_line() {
        let input = "before\n-----BEGIN PRIVATE KEY-----\nMIIE\nAAAA\n-----END PRIVATE KEY----- mail a@example.com\nafter\n";
        assert_eq!(
            run_on(input.as_bytes()),
            "before\n[REDACTED:private_key]\n[REDACTED:private_key]\n[REDACTED:private_key]\n[REDACTED:private_key] mail [REDACTED:email]\nafter\n"
        );
    }

    #[test]
    fn key_lines_kept_when_rule_off() {
        let mut config = RedactConfig::default();
        config.rules.private_key = RuleMode::Off;
        let redactor = Redactor::new(&config).unwrap_or_else(|_| Redactor::disabled());
        let input = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        let mut output = Vec::new();
        let result = copy_redacted(&redactor, &config, input.as_bytes(), &mut output);
        assert!(result.is_ok());
        assert_eq!(String::from_utf8(output).unwrap_or_default(), input);
    }

    #[test]
    fn split_line_ending_cases() {
        assert_eq!(split_line_ending(b"a\r\n"), (&b"a"[..], &b"\r\n"[..]));
        assert_eq!(split_line_ending(b"a\n"), (&b"a"[..], &b"\n"[..]));
        assert_eq!(split_line_ending(b"a"), (&b"a"[..], &b""[..]));
        assert_eq!(split_line_ending(b"\r"), (&b"\r"[..], &b""[..]));
    }
}
