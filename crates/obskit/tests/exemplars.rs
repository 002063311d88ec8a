//! End-to-end tests of histogram exemplars: the explicit API, both formats, scrapes and `promtool`.

#![allow(
    clippy::panic,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail by panicking and print why they skip the promtool check"
)]

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use obskit::admin::{self, AdminState};
use obskit::config::{AdminConfig, HealthConfig, MetricsConfig, ServiceConfig};
use obskit::health::HealthRegistry;
use obskit::metrics::{Buckets, Format, HttpServerMetrics, Red, Registry};
use reqwest::header::ACCEPT;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TRACE_ID: [u8; 16] = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes();
const SPAN_ID: [u8; 8] = 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes();
const EXEMPLAR_LABELS: &str =
    "# {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"}";
const MARKER: &str = "__obskit_exemplar";

fn registry_with_limit(max_series_per_metric: usize) -> Registry {
    Registry::new(&MetricsConfig {
        max_series_per_metric,
        process_metrics: false,
        ..MetricsConfig::default()
    })
}

/// Returns the line of `text` that starts with `prefix`, and fails unless there is exactly one.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    let found: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "lines starting with {prefix:?} in:\n{text}");
    found[0]
}

/// Returns the exemplar value and timestamp of `line`, which must carry the test ids.
fn exemplar_of(line: &str) -> (f64, f64) {
    let (_, exemplar) = line
        .split_once(EXEMPLAR_LABELS)
        .unwrap_or_else(|| panic!("no exemplar with the test ids in {line:?}"));
    let fields: Vec<&str> = exemplar.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "value and timestamp expected in {line:?}");
    (fields[0].parse().unwrap(), fields[1].parse().unwrap())
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Builds a registry with every helper that records exemplars, each observed with the test ids.
fn registry_with_exemplars() -> Result<Registry, Box<dyn std::error::Error>> {
    let registry = registry_with_limit(100);
    let jobs = registry.histogram_family(
        "job_duration_seconds",
        "Job duration.",
        ["queue"],
        Buckets::new([0.1, 1.0])?,
    )?;
    jobs.observe_with_exemplar(&["mail"], 0.5, TRACE_ID, SPAN_ID);
    jobs.observe(&["mail"], 0.05);
    jobs.observe(&["print"], 0.05);

    let red = Red::register(&registry, "checkout", ["payment_method"])?;
    red.observe_with_exemplar(&["card"], 0.042, true, TRACE_ID, SPAN_ID);

    let http = HttpServerMetrics::register(&registry)?;
    http.record_with_exemplar("GET", "/orders/{id}", 200, 0.3, TRACE_ID, SPAN_ID);
    Ok(registry)
}

#[test]
fn histogram_exemplar_in_openmetrics_only() -> TestResult {
    let registry = registry_with_limit(100);
    let jobs = registry.histogram_family(
        "job_duration_seconds",
        "Job duration.",
        ["queue"],
        Buckets::new([0.1, 1.0])?,
    )?;
    let before = unix_seconds();
    jobs.observe_with_exemplar(&["mail"], 0.5, TRACE_ID, SPAN_ID);
    let after = unix_seconds();
    jobs.observe(&["mail"], 0.05);

    let text = registry.encode(Format::OpenMetrics)?;
    let bucket = line(
        &text,
        "job_duration_seconds_bucket{le=\"1.0\",queue=\"mail\"}",
    );
    assert!(bucket.starts_with("job_duration_seconds_bucket{le=\"1.0\",queue=\"mail\"} 2 # {"));
    let (value, timestamp) = exemplar_of(bucket);
    assert_eq!(value, 0.5);
    assert!(
        timestamp >= before - 0.001 && timestamp <= after + 0.001,
        "{timestamp} outside [{before}, {after}]"
    );
    assert_eq!(
        line(
            &text,
            "job_duration_seconds_bucket{le=\"0.1\",queue=\"mail\"}"
        ),
        "job_duration_seconds_bucket{le=\"0.1\",queue=\"mail\"} 1"
    );
    assert_eq!(
        line(&text, "job_duration_seconds_sum{queue=\"mail\"}"),
        "job_duration_seconds_sum{queue=\"mail\"} 0.55"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(!text.contains(MARKER), "{text}");

    let prometheus_text = registry.encode(Format::PrometheusText)?;
    assert!(!prometheus_text.contains(" # {"), "{prometheus_text}");
    assert!(!prometheus_text.contains(MARKER), "{prometheus_text}");
    assert!(
        prometheus_text.contains("job_duration_seconds_bucket{queue=\"mail\",le=\"1\"} 2\n"),
        "{prometheus_text}"
    );
    Ok(())
}

#[test]
fn histogram_without_labels_loses_marker_braces() -> TestResult {
    let registry = registry_with_limit(100);
    let histogram =
        registry.histogram("batch_size_bytes", "Batch size.", Buckets::new([1024.0])?)?;
    histogram.observe_with_exemplar(4096.0, TRACE_ID, SPAN_ID);

    let text = registry.encode(Format::OpenMetrics)?;
    assert_eq!(
        line(&text, "batch_size_bytes_sum"),
        "batch_size_bytes_sum 4096.0"
    );
    assert_eq!(
        line(&text, "batch_size_bytes_count"),
        "batch_size_bytes_count 1"
    );
    let inf = line(&text, "batch_size_bytes_bucket{le=\"+Inf\"}");
    assert_eq!(exemplar_of(inf).0, 4096.0);
    assert_eq!(
        line(&text, "batch_size_bytes_bucket{le=\"1024.0\"}"),
        "batch_size_bytes_bucket{le=\"1024.0\"} 0"
    );
    Ok(())
}

#[test]
fn encode_into_keeps_buffer_prefix() -> TestResult {
    let registry = registry_with_exemplars()?;
    let mut buffer = String::from("kept\n");
    registry.encode_into(Format::OpenMetrics, &mut buffer)?;
    let expected = registry.encode(Format::OpenMetrics)?;
    assert_eq!(buffer.strip_prefix("kept\n"), Some(expected.as_str()));
    assert_eq!(expected.matches(EXEMPLAR_LABELS).count(), 3, "{expected}");
    Ok(())
}

#[test]
fn latest_exemplar_per_bucket_wins() -> TestResult {
    let registry = registry_with_limit(100);
    let histogram = registry.histogram("step_duration_seconds", "Step.", Buckets::new([1.0])?)?;
    histogram.observe_with_exemplar(0.2, [1; 16], [1; 8]);
    histogram.observe_with_exemplar(0.3, TRACE_ID, SPAN_ID);
    histogram.observe_with_exemplar(7.0, [2; 16], [2; 8]);
    histogram.observe_with_exemplar(8.0, [0; 16], SPAN_ID);

    let text = registry.encode(Format::OpenMetrics)?;
    assert_eq!(
        exemplar_of(line(&text, "step_duration_seconds_bucket{le=\"1.0\"}")).0,
        0.3
    );
    let inf = line(&text, "step_duration_seconds_bucket{le=\"+Inf\"}");
    assert!(
        inf.contains(
            "trace_id=\"02020202020202020202020202020202\",span_id=\"0202020202020202\"} 7.0 "
        ),
        "an all-zero trace id must not replace the exemplar: {inf}"
    );
    assert!(
        inf.starts_with("step_duration_seconds_bucket{le=\"+Inf\"} 4 "),
        "{inf}"
    );
    Ok(())
}

#[test]
fn red_exemplar_only_on_duration() -> TestResult {
    let registry = registry_with_limit(100);
    let red = Red::register(&registry, "checkout", ["payment_method"])?;
    red.observe_with_exemplar(&["card"], 0.042, true, TRACE_ID, SPAN_ID);
    let handle = red.get(&["cash"]);
    handle.observe_with_exemplar(2.0, false, TRACE_ID, SPAN_ID);

    let text = registry.encode(Format::OpenMetrics)?;
    assert_eq!(
        line(&text, "checkout_requests_total{payment_method=\"card\"}"),
        "checkout_requests_total{payment_method=\"card\"} 1"
    );
    assert_eq!(
        line(&text, "checkout_errors_total{payment_method=\"card\"}"),
        "checkout_errors_total{payment_method=\"card\"} 1"
    );
    assert_eq!(
        line(&text, "checkout_errors_total{payment_method=\"cash\"}"),
        "checkout_errors_total{payment_method=\"cash\"} 0"
    );
    let card = line(
        &text,
        "checkout_duration_seconds_bucket{le=\"0.05\",payment_method=\"card\"}",
    );
    assert_eq!(exemplar_of(card).0, 0.042);
    let cash = line(
        &text,
        "checkout_duration_seconds_bucket{le=\"2.5\",payment_method=\"cash\"}",
    );
    assert_eq!(exemplar_of(cash).0, 2.0);
    assert_eq!(text.matches(" # {").count(), 2, "{text}");
    Ok(())
}

#[test]
fn http_server_exemplar_on_request_bucket() -> TestResult {
    let registry = registry_with_limit(100);
    let http = HttpServerMetrics::register(&registry)?;
    http.record_with_exemplar("PROPFIND", "/files/{path}", 207, 0.3, TRACE_ID, SPAN_ID);

    let text = registry.encode(Format::OpenMetrics)?;
    let bucket = line(
        &text,
        "http_server_request_duration_seconds_bucket{le=\"0.5\",http_request_method=\"_OTHER\",http_route=\"/files/{path}\",http_response_status_code=\"207\"}",
    );
    assert_eq!(exemplar_of(bucket).0, 0.3);
    Ok(())
}

#[test]
fn overflow_series_keeps_exemplars() -> TestResult {
    let registry = registry_with_limit(1);
    let jobs =
        registry.histogram_family("job_wait_seconds", "Wait.", ["queue"], Buckets::new([1.0])?)?;
    jobs.observe(&["mail"], 0.5);
    jobs.observe_with_exemplar(&["print"], 0.25, TRACE_ID, SPAN_ID);

    let text = registry.encode(Format::OpenMetrics)?;
    let bucket = line(
        &text,
        "job_wait_seconds_bucket{le=\"1.0\",otel_metric_overflow=\"true\"}",
    );
    assert_eq!(exemplar_of(bucket).0, 0.25);
    assert!(!text.contains(MARKER), "{text}");
    Ok(())
}

#[test]
fn marker_text_in_label_value_is_kept() -> TestResult {
    let registry = registry_with_limit(100);
    let jobs =
        registry.histogram_family("job_lag_seconds", "Lag.", ["queue"], Buckets::new([1.0])?)?;
    let tricky = "a\",__obskit_exemplar=\"0\"}";
    jobs.observe_with_exemplar(&[tricky], 0.5, TRACE_ID, SPAN_ID);

    let text = registry.encode(Format::OpenMetrics)?;
    let escaped = "queue=\"a\\\",__obskit_exemplar=\\\"0\\\"}\"";
    let bucket = line(
        &text,
        &format!("job_lag_seconds_bucket{{le=\"1.0\",{escaped}}}"),
    );
    assert_eq!(exemplar_of(bucket).0, 0.5);
    assert_eq!(
        line(&text, "job_lag_seconds_count"),
        format!("job_lag_seconds_count{{{escaped}}} 1")
    );
    Ok(())
}

#[test]
fn exemplars_survive_concurrent_scrapes() -> TestResult {
    let registry = registry_with_limit(100);
    let jobs = registry.histogram_family(
        "job_run_seconds",
        "Run.",
        ["worker"],
        Buckets::new([0.25, 0.5, 0.75])?,
    )?;
    std::thread::scope(|scope| {
        for worker in ["a", "b", "c"] {
            let jobs = jobs.clone();
            scope.spawn(move || {
                for step in 0..5_000_u32 {
                    let value = f64::from(step % 4) * 0.25 + 0.1;
                    jobs.observe_with_exemplar(&[worker], value, TRACE_ID, SPAN_ID);
                }
            });
        }
        for _ in 0..50 {
            let text = registry.encode(Format::OpenMetrics).unwrap();
            assert!(!text.contains(MARKER), "{text}");
            for bucket in text.lines().filter(|line| line.contains(" # {")) {
                let (value, _) = exemplar_of(bucket);
                assert!((0.0..=1.0).contains(&value), "{bucket}");
            }
        }
    });

    let text = registry.encode(Format::OpenMetrics)?;
    for worker in ["a", "b", "c"] {
        for (bound, value) in [("0.25", 0.1), ("0.5", 0.35), ("0.75", 0.6), ("+Inf", 0.85)] {
            let bucket = line(
                &text,
                &format!("job_run_seconds_bucket{{le=\"{bound}\",worker=\"{worker}\"}}"),
            );
            let (stored, _) = exemplar_of(bucket);
            assert!((stored - value).abs() < 1e-9, "{bucket}");
        }
    }
    Ok(())
}

#[test]
fn exemplar_values_lie_in_their_bucket() -> TestResult {
    let text = registry_with_exemplars()?.encode(Format::OpenMetrics)?;
    let mut checked = 0;
    for bucket in text.lines().filter(|line| line.contains(" # {")) {
        let bound = bucket
            .split_once("le=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(bound, _)| bound)
            .unwrap();
        let upper = if bound == "+Inf" {
            f64::INFINITY
        } else {
            bound.parse()?
        };
        let (value, _) = exemplar_of(bucket);
        assert!(value <= upper, "{bucket}");
        checked += 1;
    }
    assert_eq!(checked, 3, "{text}");
    Ok(())
}

#[tokio::test]
async fn scrape_negotiates_exemplars() -> TestResult {
    let registry = registry_with_exemplars()?;
    let health = HealthRegistry::new(
        &HealthConfig::default(),
        &ServiceConfig::default(),
        &registry,
    )?;
    let metrics = MetricsConfig {
        rate_limit: 0.0,
        ..MetricsConfig::default()
    };
    let state = AdminState::new(registry, health, &metrics, &AdminConfig::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let app = admin::router(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.unwrap();
    });
    // reqwest is built without a default TLS provider; plain HTTP still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_gzip().build()?;
    let url = format!("http://{address}/metrics");

    let openmetrics = client
        .get(&url)
        .header(
            ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(
        openmetrics.matches(EXEMPLAR_LABELS).count(),
        3,
        "{openmetrics}"
    );
    assert!(openmetrics.ends_with("# EOF\n"));

    let prometheus_text = client.get(&url).send().await?.text().await?;
    assert!(prometheus_text.contains("job_duration_seconds_bucket"));
    assert!(!prometheus_text.contains(" # {"), "{prometheus_text}");
    Ok(())
}

/// Runs `promtool` with `args`; returns `None` when promtool is not installed.
fn promtool(args: &[&str], stdin: Option<&str>) -> Option<Output> {
    use std::io::Write as _;

    let mut command = Command::new("promtool");
    command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not installed; CI must install it (apt-get install prometheus)"
            );
            eprintln!("skipping promtool check: promtool is not installed");
            return None;
        }
        Err(error) => panic!("starting promtool failed: {error}"),
    };
    let mut input = child.stdin.take();
    if let (Some(pipe), Some(text)) = (input.as_mut(), stdin) {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    Some(child.wait_with_output().unwrap())
}

/// Parses `text` with promtool's OpenMetrics parser, the one Prometheus scrapes with.
///
/// `promtool check metrics` (2.42) reads only the 0.0.4 format and rejects any exemplar, so
/// this imports the text into a TSDB block instead. The importer needs a timestamp on every
/// sample, so one is inserted after each sample value, before its exemplar.
fn promtool_parse_openmetrics(text: &str) -> Option<Output> {
    let mut stamped = String::new();
    for line in text.lines() {
        if line.starts_with('#') {
            stamped.push_str(line);
        } else {
            let (sample, exemplar) = line
                .split_once(" # ")
                .map_or((line, None), |(sample, exemplar)| (sample, Some(exemplar)));
            stamped.push_str(sample);
            stamped.push_str(" 1700000000");
            if let Some(exemplar) = exemplar {
                stamped.push_str(" # ");
                stamped.push_str(exemplar);
            }
        }
        stamped.push('\n');
    }
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("metrics.om");
    std::fs::write(&input, stamped).unwrap();
    let output = directory.path().join("blocks");
    promtool(
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            output.to_str().unwrap(),
        ],
        None,
    )
}

fn assert_accepted(output: &Output, text: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "promtool rejected the exposition:\nstdout: {stdout}\nstderr: {stderr}\ninput:\n{text}"
    );
}

#[test]
fn promtool_parses_openmetrics_exemplars() -> TestResult {
    let text = registry_with_exemplars()?.encode(Format::OpenMetrics)?;
    assert_eq!(text.matches(EXEMPLAR_LABELS).count(), 3, "{text}");
    if let Some(output) = promtool_parse_openmetrics(&text) {
        assert_accepted(&output, &text);
    }
    Ok(())
}

#[test]
fn promtool_rejects_broken_exemplar() {
    // Proves the parse above can fail: an exemplar value must follow the label set.
    let broken = concat!(
        "# TYPE job_seconds histogram\n",
        "job_seconds_bucket{le=\"+Inf\"} 1 # {trace_id=\"4bf9\"} 0.5 17333x12345\n",
        "job_seconds_count 1\n",
        "job_seconds_sum 0.5\n",
        "# EOF\n",
    );
    if let Some(output) = promtool_parse_openmetrics(broken) {
        assert!(
            !output.status.success(),
            "promtool accepted a broken exemplar"
        );
    }
}

#[test]
fn promtool_checks_text_without_exemplars() -> TestResult {
    let text = registry_with_exemplars()?.encode(Format::PrometheusText)?;
    if let Some(output) = promtool(&["check", "metrics"], Some(&text)) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.trim().is_empty(), "promtool lint findings: {stdout}");
        assert_accepted(&output, &text);
    }
    Ok(())
}
