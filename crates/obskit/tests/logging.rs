//! End-to-end tests of `obskit::logging`: real subscribers, real files, output parsed as JSON.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use obskit::config::{LogFormat, LoggingConfig, ServiceConfig};
use obskit::logging::{self, LogGuard, LogOutput, LoggingError, TraceContext};
use obskit::metrics::{Format, Registry};
use serde_json::{Map, Value};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

const SHUTDOWN: Duration = Duration::from_secs(10);

/// An in-memory output shared with the test.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    fn lines(&self) -> Vec<Map<String, Value>> {
        self.text()
            .lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(Value::Object(object)) => object,
                other => panic!("not a JSON object: {line:?} ({other:?})"),
            })
            .collect()
    }
}

fn service() -> ServiceConfig {
    ServiceConfig {
        name: "checkout".to_owned(),
        environment: "staging".to_owned(),
        version: "1.4.2".to_owned(),
        ..ServiceConfig::default()
    }
}

fn config(level: &str) -> LoggingConfig {
    LoggingConfig {
        level: level.to_owned(),
        ..LoggingConfig::default()
    }
}

/// Runs `emit` under a subscriber with obskit's layer writing to memory, then shuts down.
fn capture_with(logging: &LoggingConfig, emit: impl FnOnce()) -> (Capture, Registry) {
    let capture = Capture::default();
    let registry = Registry::default();
    let (layer, guard) = logging::layer(
        logging,
        &service(),
        &registry,
        LogOutput::Writer(Box::new(capture.clone())),
    )
    .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    guard.shutdown(SHUTDOWN).unwrap();
    (capture, registry)
}

fn capture(emit: impl FnOnce()) -> Vec<Map<String, Value>> {
    capture_with(&config("trace"), emit).0.lines()
}

fn dropped(registry: &Registry, reason: &str) -> u64 {
    let text = registry.encode(Format::OpenMetrics).unwrap();
    let prefix = format!("obskit_log_events_dropped_total{{reason=\"{reason}\"}} ");
    let line = text
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"));
    line[prefix.len()..].parse().unwrap()
}

/// Checks the `YYYY-MM-DDTHH:MM:SS.ffffffZ` shape.
fn is_rfc3339_micros(value: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
    value.len() == pattern.len()
        && value
            .bytes()
            .zip(pattern)
            .all(|(byte, expected)| match expected {
                b'd' => byte.is_ascii_digit(),
                other => byte == *other,
            })
}

fn key_order(line: &str) -> Vec<String> {
    // The top-level keys in written order, read with a streaming parser so order is kept.
    let object: Vec<(String, serde::de::IgnoredAny)> = {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Vec<(String, serde::de::IgnoredAny)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut keys = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    keys.push(entry);
                }
                Ok(keys)
            }
        }
        let mut deserializer = serde_json::Deserializer::from_str(line);
        serde::Deserializer::deserialize_map(&mut deserializer, Keys).unwrap()
    };
    object.into_iter().map(|(key, _)| key).collect()
}

#[test]
fn json_line_layout() {
    let (capture, _) = capture_with(&config("info"), || {
        let span = tracing::info_span!("request", request_id = "r-42");
        let _entered = span.enter();
        tracing::info!(target: "app::orders", order_id = 7, "order placed");
    });
    let text = capture.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(
        key_order(text.trim_end()),
        [
            "timestamp",
            "level",
            "target",
            "message",
            "service",
            "environment",
            "version",
            "order_id",
            "request_id"
        ]
    );

    let line = &capture.lines()[0];
    assert!(
        is_rfc3339_micros(line["timestamp"].as_str().unwrap()),
        "{line:?}"
    );
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "app::orders");
    assert_eq!(line["message"], "order placed");
    assert_eq!(line["service"], "checkout");
    assert_eq!(line["environment"], "staging");
    assert_eq!(line["version"], "1.4.2");
    assert_eq!(line["order_id"], 7);
    assert_eq!(line["request_id"], "r-42");
    assert!(!line.contains_key("trace_id"));
    assert!(!line.contains_key("span_id"));
}

#[test]
fn timestamp_is_current_utc() {
    let lines = capture(|| tracing::info!("tick"));
    let timestamp = lines[0]["timestamp"].as_str().unwrap().to_owned();
    assert!(is_rfc3339_micros(&timestamp), "{timestamp}");
    let year: u32 = timestamp[..4].parse().unwrap();
    assert!(year >= 2024, "{timestamp}");
}

#[test]
fn every_level_name() {
    let lines = capture(|| {
        tracing::error!("e");
        tracing::warn!("w");
        tracing::info!("i");
        tracing::debug!("d");
        tracing::trace!("t");
    });
    let levels: Vec<_> = lines.iter().map(|line| line["level"].clone()).collect();
    assert_eq!(levels, ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]);
}

#[test]
fn level_directives_filter() {
    let (capture, _) = capture_with(&config("warn,app::db=debug"), || {
        tracing::info!(target: "app", "app info");
        tracing::warn!(target: "app", "app warn");
        tracing::debug!(target: "app::db", "db debug");
        tracing::trace!(target: "app::db", "db trace");
        tracing::info!(target: "other", "other info");
    });
    let messages: Vec<_> = capture
        .lines()
        .iter()
        .map(|line| line["message"].clone())
        .collect();
    assert_eq!(messages, ["app warn", "db debug"]);
}

#[test]
fn sampling_zero_keeps_warn_and_error() {
    let logging = LoggingConfig {
        sample_rate: 0.0,
        ..config("trace")
    };
    let (capture, registry) = capture_with(&logging, || {
        tracing::info!("dropped info");
        tracing::warn!("kept warn");
        tracing::debug!("dropped debug");
        tracing::error!("kept error");
        tracing::trace!("dropped trace");
    });
    let messages: Vec<_> = capture
        .lines()
        .iter()
        .map(|line| line["message"].clone())
        .collect();
    assert_eq!(messages, ["kept warn", "kept error"]);
    assert_eq!(dropped(&registry, "sampled"), 3);
    assert_eq!(dropped(&registry, "queue_full"), 0);
}

#[test]
fn span_fields_inner_wins() {
    let lines = capture(|| {
        let outer = tracing::info_span!(
            "outer",
            request_id = "r-1",
            http_route = "/orders",
            tier = "outer"
        );
        let _outer = outer.enter();
        let inner = tracing::info_span!("inner", tier = "inner", attempt = 2);
        let _inner = inner.enter();
        tracing::info!(attempt = 3, "in both");
    });
    let line = &lines[0];
    assert_eq!(line["request_id"], "r-1");
    assert_eq!(line["http_route"], "/orders");
    assert_eq!(line["tier"], "inner");
    assert_eq!(line["attempt"], 3, "event field wins over span field");
}

#[test]
fn span_record_updates_fields() {
    let lines = capture(|| {
        let span = tracing::info_span!(
            "request",
            request_id = "r-9",
            status = tracing::field::Empty
        );
        let _entered = span.enter();
        tracing::info!("before");
        span.record("status", 503);
        span.record("request_id", "r-10");
        tracing::info!("after");
    });
    assert_eq!(lines[0]["request_id"], "r-9");
    assert!(!lines[0].contains_key("status"));
    assert_eq!(lines[1]["request_id"], "r-10");
    assert_eq!(lines[1]["status"], 503);
}

#[test]
fn reserved_field_names_are_prefixed() {
    let lines = capture(|| {
        let span = tracing::info_span!("request", version = "span-v");
        let _entered = span.enter();
        tracing::info!(
            level = "custom",
            service = "other",
            timestamp = 5,
            trace_id = "t",
            target = "x",
            "collide"
        );
    });
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["service"], "checkout");
    assert_eq!(line["version"], "1.4.2");
    assert_eq!(line["fields.level"], "custom");
    assert_eq!(line["fields.service"], "other");
    assert_eq!(line["fields.timestamp"], 5);
    assert_eq!(line["fields.trace_id"], "t");
    assert_eq!(line["fields.target"], "x");
    assert_eq!(line["fields.version"], "span-v");
    assert!(!line.contains_key("trace_id"));
}

#[test]
fn strings_are_escaped() {
    let tricky =
        "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} esc \u{1b} ünïcödé 🦀";
    let lines = capture(|| {
        tracing::info!(value = tricky, debugged = ?tricky, "{tricky}");
    });
    let line = &lines[0];
    assert_eq!(line["message"], tricky);
    assert_eq!(line["value"], tricky);
    assert_eq!(line["debugged"], format!("{tricky:?}"));
}

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Order {
    id: u32,
    note: &'static str,
}

#[test]
fn value_types() {
    let error = io::Error::other("disk \"full\"");
    let (capture, _) = capture_with(&config("trace"), || {
        tracing::info!(
            big = u128::MAX,
            small = i128::MIN,
            negative = -5i64,
            yes = true,
            no = false,
            ratio = 0.25,
            nan = f64::NAN,
            inf = f64::INFINITY,
            order = ?Order { id: 1, note: "x" },
            shown = %"display",
            error = &error as &(dyn std::error::Error + 'static),
            "values"
        );
    });

    // serde_json reads integers beyond 64 bits as floats, so check these in the raw text.
    let text = capture.text();
    assert!(text.contains(&format!(r#""big":{},"#, u128::MAX)), "{text}");
    assert!(
        text.contains(&format!(r#""small":{},"#, i128::MIN)),
        "{text}"
    );

    let line = &capture.lines()[0];
    assert_eq!(line["negative"], -5);
    assert_eq!(line["yes"], true);
    assert_eq!(line["no"], false);
    assert_eq!(line["ratio"], 0.25);
    assert_eq!(line["nan"], "NaN");
    assert_eq!(line["inf"], "inf");
    assert_eq!(line["order"], r#"Order { id: 1, note: "x" }"#);
    assert_eq!(line["shown"], "display");
    assert_eq!(line["error"], "disk \"full\"");
}

/// Attaches a fixed trace context to every span named `traced`.
struct AttachTrace;

impl<S> Layer<S> for AttachTrace
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() == "traced" {
            let span = ctx.span(id).unwrap();
            let mut trace_id = [0u8; 16];
            trace_id[0] = 0x4b;
            trace_id[15] = 0x0f;
            span.extensions_mut().insert(TraceContext {
                trace_id,
                span_id: [0xab, 0, 0, 0, 0, 0, 0, 0x01],
            });
        }
    }
}

#[test]
fn trace_context_from_parent_span() {
    let capture = Capture::default();
    let registry = Registry::default();
    let (layer, guard) = logging::layer(
        &config("info"),
        &service(),
        &registry,
        LogOutput::Writer(Box::new(capture.clone())),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(AttachTrace).with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!("traced");
        let _root = root.enter();
        let child = tracing::info_span!("child", step = 1);
        let _child = child.enter();
        tracing::info!("inside");
    });
    guard.shutdown(SHUTDOWN).unwrap();

    let line = &capture.lines()[0];
    assert_eq!(line["trace_id"], "4b00000000000000000000000000000f");
    assert_eq!(line["span_id"], "ab00000000000001");
    let keys = key_order(capture.text().trim_end());
    assert_eq!(keys[keys.len() - 2..], ["trace_id", "span_id"]);
}

/// An output whose first write blocks until the test releases it.
struct Gate {
    release: Option<mpsc::Receiver<()>>,
    capture: Capture,
}

impl Write for Gate {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let Some(release) = self.release.take() {
            let _ = release.recv();
        }
        self.capture.write(bytes)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn full_queue_drops_are_counted() {
    let capture = Capture::default();
    let registry = Registry::default();
    let (release, gate) = mpsc::channel();
    let output = Gate {
        release: Some(gate),
        capture: capture.clone(),
    };
    let logging = LoggingConfig {
        queue_capacity: 2,
        ..config("info")
    };
    let (layer, guard) = logging::layer(
        &logging,
        &service(),
        &registry,
        LogOutput::Writer(Box::new(output)),
    )
    .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for index in 0..10 {
            tracing::info!(index, "burst");
        }
    });
    assert_eq!(dropped(&registry, "queue_full"), 8);

    release.send(()).unwrap();
    guard.shutdown(SHUTDOWN).unwrap();
    let indexes: Vec<_> = capture
        .lines()
        .iter()
        .map(|line| line["index"].clone())
        .collect();
    assert_eq!(indexes, [0, 1]);
}

/// An output that rejects every write.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("device gone"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_are_counted() {
    let registry = Registry::default();
    let (layer, guard) = logging::layer(
        &config("info"),
        &service(),
        &registry,
        LogOutput::Writer(Box::new(Broken)),
    )
    .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..5 {
            tracing::info!("lost");
        }
    });
    guard.shutdown(SHUTDOWN).unwrap();
    assert_eq!(dropped(&registry, "write_error"), 5);
}

fn file_guard(path: &std::path::Path, registry: &Registry) -> (tracing::Dispatch, LogGuard) {
    let logging = LoggingConfig {
        queue_capacity: 100_000,
        ..config("info")
    };
    let (layer, guard) = logging::layer(
        &logging,
        &service(),
        registry,
        LogOutput::File(path.to_owned()),
    )
    .unwrap();
    (
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
        guard,
    )
}

#[test]
fn shutdown_writes_every_line() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("app.log");
    let registry = Registry::default();
    let (dispatch, guard) = file_guard(&path, &registry);

    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for index in 0..2_500 {
                        tracing::info!(thread, index, "line");
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    guard.shutdown(SHUTDOWN).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let object: Map<String, Value> = serde_json::from_str(line).unwrap();
        let key = (
            object["thread"].as_u64().unwrap(),
            object["index"].as_u64().unwrap(),
        );
        assert!(seen.insert(key), "duplicate {key:?}");
    }
    assert_eq!(text.lines().count(), 10_000);
    assert_eq!(seen.len(), 10_000);
    assert_eq!(dropped(&registry, "queue_full"), 0);
    assert_eq!(dropped(&registry, "write_error"), 0);
}

#[test]
fn flush_makes_lines_visible() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("app.log");
    let registry = Registry::default();
    let (dispatch, guard) = file_guard(&path, &registry);
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("first"));
    guard.flush().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);

    tracing::dispatcher::with_default(&dispatch, || tracing::info!("second"));
    drop(guard);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);

    tracing::dispatcher::with_default(&dispatch, || tracing::info!("after shutdown"));
    assert_eq!(dropped(&registry, "shutdown"), 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn file_output_appends() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("app.log");
    std::fs::write(&path, "{\"existing\":true}\n").unwrap();
    let registry = Registry::default();
    let (dispatch, guard) = file_guard(&path, &registry);
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("appended"));
    guard.shutdown(SHUTDOWN).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], "{\"existing\":true}");
    assert!(lines[1].contains("\"message\":\"appended\""), "{text}");
}

#[test]
fn text_format_writes_readable_lines() {
    let logging = LoggingConfig {
        format: LogFormat::Text,
        ..config("info")
    };
    let (capture, _) = capture_with(&logging, || {
        let span = tracing::info_span!("request", request_id = "r-5");
        let _entered = span.enter();
        tracing::warn!(target: "app", attempt = 2, "retrying");
        tracing::debug!(target: "app", "hidden");
    });
    let text = capture.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("retrying"), "{text}");
    assert!(text.contains("attempt=2"), "{text}");
    assert!(text.contains("request_id=\"r-5\""), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colors for a non-terminal output: {text}"
    );
}

#[test]
fn layer_takes_custom_redaction_rules() {
    use obskit::config::{RedactConfig, RuleMode, RuleModes};
    use obskit::redact::Redactor;

    let capture = Capture::default();
    let registry = Registry::default();
    let rules = RedactConfig {
        rules: RuleModes {
            card: RuleMode::Partial,
            email: RuleMode::Off,
            ..RuleModes::default()
        },
        ..RedactConfig::default()
    };
    let redactor = Redactor::with_registry(&rules, &registry).unwrap();
    let (layer, guard) = logging::layer_with_redactor(
        &config("info"),
        &service(),
        &registry,
        LogOutput::Writer(Box::new(capture.clone())),
        redactor,
    )
    .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(
            contact = "ann@example.org",
            "card 4111 1111 1111 1111 declined"
        );
    });
    guard.shutdown(SHUTDOWN).unwrap();
    let line = &capture.lines()[0];
    assert_eq!(line["message"], "card **** **** **** 1111 declined");
    assert_eq!(line["contact"], "ann@example.org", "the email rule is off");
}

#[test]
fn json_fields_of_every_type_are_redacted() {
    #[derive(Debug)]
    #[allow(dead_code, reason = "read through Debug")]
    struct Account {
        owner: &'static str,
        api_key: &'static str,
    }
    let error = io::Error::other("upload to ftp://admin:pa55@files.internal failed");
    let lines = capture(|| {
        let span = tracing::info_span!("upload", db.password = tracing::field::Empty);
        let _entered = span.enter();
        span.record("db.password", "recorded-later");
        tracing::error!(
            error = &error as &(dyn std::error::Error + 'static),
            account = ?Account { owner: "ann", api_key: "k-123456" },
            contact = %"ann@example.org",
            card_number = 4_111_111_111_111_111_u64,
            order = 4_111_111_111_111_112_u64,
            payment_ref = 4_111_111_111_111_111_u64,
            cvv = 123,
            "upload failed"
        );
    });
    let line = &lines[0];
    assert_eq!(
        line["error"],
        "upload to ftp://[REDACTED:url_credentials]@files.internal failed"
    );
    assert_eq!(
        line["account"],
        "Account { owner: \"ann\", api_key: \"[REDACTED:field]\" }"
    );
    assert_eq!(line["contact"], "[REDACTED:email]");
    assert_eq!(line["card_number"], "[REDACTED:field]");
    assert_eq!(
        line["order"], 4_111_111_111_111_112_u64,
        "fails the Luhn check"
    );
    assert_eq!(
        line["payment_ref"], "[REDACTED:card]",
        "a card number logged as a number"
    );
    assert_eq!(line["cvv"], "[REDACTED:field]");
    assert_eq!(line["db.password"], "[REDACTED:field]");
}

#[test]
fn text_format_is_sampled() {
    let logging = LoggingConfig {
        format: LogFormat::Text,
        sample_rate: 0.0,
        ..config("info")
    };
    let (capture, registry) = capture_with(&logging, || {
        tracing::info!("sampled away");
        tracing::error!("always kept");
    });
    let text = capture.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("always kept"), "{text}");
    assert_eq!(dropped(&registry, "sampled"), 1);
}

#[test]
fn filtered_span_fields_are_absent() {
    let (capture, _) = capture_with(&config("info"), || {
        let outer = tracing::info_span!("request", request_id = "r-3");
        let _outer = outer.enter();
        let hidden = tracing::debug_span!("detail", secret_step = "parse");
        let _hidden = hidden.enter();
        tracing::info!("inside a debug span");
    });
    let line = &capture.lines()[0];
    assert_eq!(line["request_id"], "r-3");
    assert!(!line.contains_key("secret_step"), "{line:?}");
}

#[test]
fn invalid_settings_are_rejected() {
    let registry = Registry::default();
    let build = |logging: LoggingConfig, output: LogOutput| {
        logging::layer::<tracing_subscriber::Registry>(&logging, &service(), &registry, output)
            .map(|_| ())
    };

    let result = build(
        LoggingConfig {
            sample_rate: 1.5,
            ..config("info")
        },
        LogOutput::Stdout,
    );
    assert!(
        matches!(result, Err(LoggingError::InvalidSampleRate { .. })),
        "{result:?}"
    );
    let result = build(
        LoggingConfig {
            sample_rate: f64::NAN,
            ..config("info")
        },
        LogOutput::Stdout,
    );
    assert!(
        matches!(result, Err(LoggingError::InvalidSampleRate { .. })),
        "{result:?}"
    );
    let result = build(
        LoggingConfig {
            queue_capacity: 0,
            ..config("info")
        },
        LogOutput::Stdout,
    );
    assert!(
        matches!(result, Err(LoggingError::InvalidQueueCapacity)),
        "{result:?}"
    );
    let result = build(config("infoo"), LogOutput::Stdout);
    assert!(
        matches!(result, Err(LoggingError::InvalidLevel { .. })),
        "{result:?}"
    );

    let missing = std::path::PathBuf::from("/nonexistent-obskit-dir/app.log");
    let error = build(config("info"), LogOutput::File(missing)).unwrap_err();
    assert!(matches!(error, LoggingError::OpenFile { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("/nonexistent-obskit-dir/app.log"),
        "{error}"
    );
}

/// The only test that touches the global subscriber and the `log` logger.
#[test]
fn install_global_and_log_records() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("global.log");
    let registry = Registry::default();
    let guard = logging::install(
        &config("info"),
        &service(),
        &registry,
        LogOutput::File(path.clone()),
    )
    .unwrap();

    let span = tracing::info_span!("job", job_id = "j-1");
    span.in_scope(|| {
        log::info!(target: "legacy::db", "from log {}", 42);
        log::debug!(target: "legacy::db", "filtered out");
        tracing::info!(source = "tracing", "from tracing");
    });

    let second = logging::install(
        &config("info"),
        &service(),
        &Registry::default(),
        LogOutput::Stderr,
    );
    assert!(
        matches!(second, Err(LoggingError::AlreadyInstalled)),
        "{second:?}"
    );

    guard.shutdown(SHUTDOWN).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Map<String, Value>> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");

    let from_log = &lines[0];
    assert_eq!(from_log["message"], "from log 42");
    assert_eq!(from_log["target"], "legacy::db");
    assert_eq!(from_log["level"], "INFO");
    assert_eq!(from_log["job_id"], "j-1");
    assert!(
        from_log.keys().all(|key| !key.starts_with("log.")),
        "{from_log:?}"
    );

    assert_eq!(lines[1]["message"], "from tracing");
    assert_eq!(lines[1]["source"], "tracing");
}

/// Runs `emit` under the globally filtered subscriber that `install` uses.
fn capture_global(logging: &LoggingConfig, emit: impl FnOnce()) -> (Capture, Registry) {
    let capture = Capture::default();
    let registry = Registry::default();
    let (dispatch, guard) = logging::subscriber(
        logging,
        &service(),
        &registry,
        LogOutput::Writer(Box::new(capture.clone())),
    )
    .unwrap();
    tracing::dispatcher::with_default(&dispatch, emit);
    guard.shutdown(SHUTDOWN).unwrap();
    (capture, registry)
}

#[test]
fn global_subscriber_filters_and_samples() {
    let logging = LoggingConfig {
        sample_rate: 0.0,
        ..config("debug,noisy=error")
    };
    let (capture, registry) = capture_global(&logging, || {
        let span = tracing::info_span!("request", request_id = "r-9");
        let _entered = span.enter();
        tracing::info!("sampled out");
        tracing::warn!("kept warn");
        tracing::trace!("below level");
        tracing::warn!(target: "noisy", "below target level");
        tracing::error!(target: "noisy", "kept error");
    });
    let lines = capture.lines();
    let messages: Vec<_> = lines.iter().map(|line| line["message"].clone()).collect();
    assert_eq!(messages, ["kept warn", "kept error"]);
    assert_eq!(lines[0]["request_id"], "r-9");
    assert_eq!(dropped(&registry, "sampled"), 1);
}

#[test]
fn global_subscriber_plain_level() {
    let (capture, _registry) = capture_global(&config("info"), || {
        tracing::debug!("hidden");
        tracing::info!(order_id = 7, "shown");
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "shown");
    assert_eq!(lines[0]["order_id"], 7);
}

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Login {
    user: &'static str,
    password: &'static str,
}

#[test]
fn text_format_redacts_fields_and_spans() {
    let logging = LoggingConfig {
        format: LogFormat::Text,
        ..config("trace")
    };
    let (capture, registry) = capture_with(&logging, || {
        let span = tracing::info_span!("checkout", customer = "jane@example.com");
        let _entered = span.enter();
        tracing::info!(
            card = "4111 1111 1111 1111",
            api_key = 42,
            login = ?Login { user: "jane", password: "hunter2-text" },
            header = %"Cookie: sid=s3ss; csrf=c5rf",
            "paid by ops@example.com"
        );
    });
    let text = capture.text();
    for secret in [
        "jane@example.com",
        "4111",
        "hunter2-text",
        "s3ss",
        "c5rf",
        "ops@example.com",
    ] {
        assert!(
            !text.contains(secret),
            "text output contains {secret:?}:\n{text}"
        );
    }
    assert!(
        text.contains(r#"checkout{customer="[REDACTED:email]"}"#),
        "span field: {text}"
    );
    assert!(text.contains("paid by [REDACTED:email]"), "message: {text}");
    assert!(text.contains(r#"api_key="[REDACTED:field]""#), "{text}");
    assert!(text.contains(r#"card="[REDACTED:card]""#), "{text}");
    let counters = registry.encode(Format::OpenMetrics).unwrap();
    assert!(
        counters.contains(r#"obskit_redactions_total{kind="email"} 2"#),
        "{counters}"
    );
}
