//! End-to-end tests of the metric registry: naming, cardinality, exposition and `promtool`.

#![allow(
    clippy::panic,
    clippy::print_stderr,
    reason = "tests fail by panicking and print why they skip the promtool check"
)]

use std::io::Write;
use std::process::{Command, Stdio};

use obskit::config::{MetricsConfig, ServiceConfig};
use obskit::metrics::{
    Buckets, Format, GoldenSignals, HttpServerMetrics, MetricsError, Red, Registry, UseMetrics,
};
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::gauge::Gauge as ClientGauge;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn registry_with_limit(max_series_per_metric: usize) -> Registry {
    Registry::new(&MetricsConfig {
        max_series_per_metric,
        process_metrics: false,
        ..MetricsConfig::default()
    })
}

/// Lines of `text` that start with `prefix`.
fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

#[test]
fn register_rejects_invalid_names() {
    let registry = Registry::default();
    let cases: [(&str, &str); 7] = [
        ("http_requests_total", "register \"http_requests\""),
        ("http-requests", "contains '-'"),
        ("9lives", "starts with '9'"),
        ("__secret", "reserved"),
        ("latency_milliseconds", "base unit \"seconds\""),
        ("latency_ms", "abbreviation"),
        ("requestCount", "snake_case"),
    ];
    for (name, expected) in cases {
        let error = registry.register(name, "Help.", ClientCounter::<u64>::default());
        match error {
            Err(MetricsError::InvalidName {
                name: reported,
                reason,
            }) => {
                assert_eq!(reported, name);
                assert!(
                    reason.contains(expected),
                    "{name}: {reason:?} lacks {expected:?}"
                );
            }
            other => panic!("{name}: expected InvalidName, got {other:?}"),
        }
    }
}

#[test]
fn register_rejects_bad_labels_and_help() {
    let registry = Registry::default();
    let label = registry.counter_family("jobs", "Jobs.", ["job-name"]);
    assert!(matches!(label, Err(MetricsError::InvalidLabel { .. })));
    let le = registry.histogram_family(
        "job_duration_seconds",
        "Durations.",
        ["le"],
        Buckets::default(),
    );
    assert!(matches!(le, Err(MetricsError::InvalidLabel { .. })));
    let help = registry.counter_family("jobs", "", ["queue"]);
    assert!(matches!(help, Err(MetricsError::InvalidHelp { .. })));
    let multiline = registry.counter_family("jobs", "line one\nline two", ["queue"]);
    assert!(matches!(multiline, Err(MetricsError::InvalidHelp { .. })));
}

#[test]
fn duplicate_name_is_rejected() -> TestResult {
    let registry = Registry::default();
    registry.register(
        "queue_length",
        "Items queued.",
        ClientGauge::<i64>::default(),
    )?;

    let again = registry.register(
        "queue_length",
        "Items queued.",
        ClientGauge::<i64>::default(),
    );
    match again {
        Err(MetricsError::AlreadyRegistered { name }) => assert_eq!(name, "queue_length"),
        other => panic!("expected AlreadyRegistered, got {other:?}"),
    }
    let family = registry.gauge_family("queue_length", "Items queued.", ["queue"]);
    assert!(matches!(
        family,
        Err(MetricsError::AlreadyRegistered { .. })
    ));

    let text = registry.encode(Format::PrometheusText)?;
    assert_eq!(lines_with(&text, "# TYPE queue_length ").len(), 1, "{text}");
    Ok(())
}

#[test]
fn get_or_register_shares_family() -> TestResult {
    let registry = Registry::default();
    let first = registry.get_or_register_histogram_family(
        "render_duration_seconds",
        "Render time.",
        ["template"],
        Buckets::default(),
    )?;
    let second = registry.get_or_register_histogram_family(
        "render_duration_seconds",
        "Render time.",
        ["template"],
        Buckets::default(),
    )?;
    first.observe(&["home"], 0.1);
    second.observe(&["home"], 0.2);
    assert_eq!(first.get(&["home"]).count(), 2);

    let other_buckets = registry.get_or_register_histogram_family(
        "render_duration_seconds",
        "Render time.",
        ["template"],
        Buckets::new([1.0])?,
    );
    match other_buckets {
        Err(MetricsError::Mismatch { name, reason }) => {
            assert_eq!(name, "render_duration_seconds");
            assert!(reason.contains("bounds: [1.0]"), "{reason}");
        }
        other => panic!("expected Mismatch, got {other:?}"),
    }

    registry.register("plain_events", "Events.", ClientCounter::<u64>::default())?;
    let plain = registry.get_or_register_counter_family("plain_events", "Events.", []);
    assert!(matches!(plain, Err(MetricsError::Mismatch { .. })));
    Ok(())
}

#[test]
fn overflow_folds_into_one_series() -> TestResult {
    let registry = registry_with_limit(3);
    let logins = registry.counter_family("logins", "Logins by user.", ["user"])?;
    for user in ["ann", "bob", "cid", "dan", "eve", "fay"] {
        logins.inc(&[user]);
    }
    logins.inc(&["ann"]);
    let bound = logins.get(&["gus"]);
    bound.inc();

    assert_eq!(logins.series_count(), 3);
    let text = registry.encode(Format::PrometheusText)?;
    assert_eq!(lines_with(&text, "logins_total{").len(), 4, "{text}");
    assert!(text.contains("logins_total{user=\"ann\"} 2\n"), "{text}");
    assert!(
        text.contains("logins_total{otel_metric_overflow=\"true\"} 4\n"),
        "{text}"
    );
    assert!(
        text.contains("obskit_metric_overflow_total{metric=\"logins\"} 4\n"),
        "{text}"
    );
    Ok(())
}

#[test]
fn red_overflow_counts_under_prefix() -> TestResult {
    let registry = registry_with_limit(1);
    let red = Red::register(&registry, "search", ["index"])?;
    red.observe(&["books"], 0.01, false);
    red.observe(&["films"], 0.02, true);

    let text = registry.encode(Format::PrometheusText)?;
    assert!(
        text.contains("search_errors_total{otel_metric_overflow=\"true\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("obskit_metric_overflow_total{metric=\"search\"} 1\n"),
        "{text}"
    );
    Ok(())
}

#[test]
fn label_values_are_escaped() -> TestResult {
    let registry = Registry::default();
    let family = registry.counter_family("uploads", "Uploads by file name.", ["file"])?;
    family.inc(&["a\"quoted\" back\\slash\nnew line"]);

    let expected = "uploads_total{file=\"a\\\"quoted\\\" back\\\\slash\\nnew line\"} 1\n";
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let text = registry.encode(format)?;
        assert!(text.contains(expected), "{format:?}: {text}");
    }
    Ok(())
}

#[test]
fn histogram_buckets_are_cumulative() -> TestResult {
    let registry = Registry::default();
    let sizes = registry.histogram(
        "payload_bytes",
        "Payload size.",
        Buckets::new([10.0, 100.0, 1000.0])?,
    )?;
    for value in [5.0, 50.0, 60.0, 500.0, 5000.0, 7000.0] {
        sizes.observe(value);
    }

    let text = registry.encode(Format::PrometheusText)?;
    let buckets = lines_with(&text, "payload_bytes_bucket");
    assert_eq!(
        buckets,
        vec![
            "payload_bytes_bucket{le=\"10\"} 1",
            "payload_bytes_bucket{le=\"100\"} 3",
            "payload_bytes_bucket{le=\"1000\"} 4",
            "payload_bytes_bucket{le=\"+Inf\"} 6",
        ]
    );
    assert!(text.contains("payload_bytes_count 6\n"), "{text}");
    assert!(text.contains("payload_bytes_sum 12615"), "{text}");

    let open_metrics = registry.encode(Format::OpenMetrics)?;
    assert!(
        open_metrics.contains("payload_bytes_bucket{le=\"+Inf\"} 6\n"),
        "{open_metrics}"
    );
    assert!(
        open_metrics.contains("payload_bytes_bucket{le=\"100.0\"} 3\n"),
        "{open_metrics}"
    );
    Ok(())
}

#[test]
fn accept_header_table() {
    use Format::{OpenMetrics, PrometheusText};

    let prometheus_2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let prometheus_3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let cases: [(Option<&str>, Format); 16] = [
        (None, PrometheusText),
        (Some(""), PrometheusText),
        (Some("*/*"), PrometheusText),
        (Some("text/plain"), PrometheusText),
        (Some("application/json"), PrometheusText),
        (Some("application/openmetrics-text"), OpenMetrics),
        (Some(prometheus_2), OpenMetrics),
        (Some(prometheus_3), OpenMetrics),
        (
            Some("APPLICATION/OpenMetrics-Text; Version=1.0.0"),
            OpenMetrics,
        ),
        (Some("application/openmetrics-text;q=0"), PrometheusText),
        (
            Some("application/openmetrics-text;version=0.0.1"),
            OpenMetrics,
        ),
        (
            Some("application/openmetrics-text;version=2.0.0, text/plain"),
            PrometheusText,
        ),
        (
            Some("application/openmetrics-text;q=0.3, text/plain;q=0.9"),
            PrometheusText,
        ),
        (
            Some("text/plain;q=0.2, application/openmetrics-text;q=0.8"),
            OpenMetrics,
        ),
        (
            Some("application/openmetrics-text;q=0.5, */*;q=0.5"),
            OpenMetrics,
        ),
        (Some("application/openmetrics-text;q=abc"), PrometheusText),
    ];
    for (accept, expected) in cases {
        assert_eq!(Format::from_accept(accept), expected, "Accept: {accept:?}");
    }
}

#[test]
fn target_info_leaves_out_unsafe_attributes() -> TestResult {
    let registry = Registry::default();
    let mut service = ServiceConfig::default();
    for (key, value) in [
        ("db.password", "hunter2"),
        ("api_token", "abc"),
        ("a.b", "1"),
        ("a_b", "2"),
        ("__reserved", "3"),
        ("service_name", "evil"),
        ("k8s.namespace.name", "shop"),
    ] {
        service
            .resource_attributes
            .insert(key.to_owned(), value.to_owned());
    }
    registry.register_service_info(&service)?;

    let text = registry.encode(Format::PrometheusText)?;
    let line = text
        .lines()
        .find(|line| line.starts_with("target_info{"))
        .ok_or("no target_info line")?;
    assert!(!line.contains("hunter2"), "{line}");
    assert!(!line.contains("api_token"), "{line}");
    assert!(!line.contains("__reserved"), "{line}");
    assert!(!line.contains("evil"), "{line}");
    assert!(line.contains("k8s_namespace_name=\"shop\""), "{line}");
    assert_eq!(line.matches("a_b=").count(), 1, "{line}");
    Ok(())
}

#[test]
fn target_info_in_both_formats() -> TestResult {
    let registry = Registry::default();
    let mut service = ServiceConfig {
        name: "checkout".to_owned(),
        version: "1.4.2".to_owned(),
        environment: "production".to_owned(),
        ..ServiceConfig::default()
    };
    service
        .resource_attributes
        .insert("k8s.pod.name".to_owned(), "checkout-7d9".to_owned());
    registry.register_service_info(&service)?;

    let labels = "{service_name=\"checkout\",service_version=\"1.4.2\",deployment_environment_name=\"production\",k8s_pod_name=\"checkout-7d9\"} 1\n";
    let text = registry.encode(Format::PrometheusText)?;
    assert!(text.contains("# TYPE target_info gauge\n"), "{text}");
    assert!(text.contains(&format!("target_info{labels}")), "{text}");
    assert!(
        text.contains(&format!(
            "obskit_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );

    let open_metrics = registry.encode(Format::OpenMetrics)?;
    assert!(
        open_metrics.contains("# TYPE target info\n"),
        "{open_metrics}"
    );
    assert!(
        open_metrics.contains(&format!("target_info{labels}")),
        "{open_metrics}"
    );
    assert!(open_metrics.ends_with("# EOF\n"), "{open_metrics}");

    assert!(matches!(
        registry.register_service_info(&service),
        Err(MetricsError::AlreadyRegistered { .. })
    ));
    Ok(())
}

/// Builds a registry with every kind of family obskit offers, each with at least one series.
fn registry_with_every_family() -> Result<Registry, Box<dyn std::error::Error>> {
    let registry = Registry::new(&MetricsConfig {
        max_series_per_metric: 2,
        ..MetricsConfig::default()
    });
    registry.register_service_info(&ServiceConfig::default())?;

    let counter = registry.counter("jobs_processed", "Jobs processed.")?;
    counter.inc();
    registry
        .gauge("temperature_celsius", "Room temperature.")?
        .set(21.5);
    registry
        .histogram(
            "batch_duration_seconds",
            "Batch duration.",
            Buckets::default(),
        )?
        .observe(0.3);

    let families = registry.counter_family("tasks", "Tasks by queue.", ["queue"])?;
    for queue in ["fast", "slow", "bulk"] {
        families.inc(&[queue]);
    }
    let gauges = registry.gauge_family("pool_connections", "Open connections.", ["pool"])?;
    gauges.set(&["main"], 4.0);
    let escaped = registry.counter_family("odd_labels", "Odd label values.", ["value"])?;
    escaped.inc(&["quote \" slash \\ line\nend"]);

    let red = Red::register(&registry, "rpc_server", ["method", "code"])?;
    red.observe(&["Get", "OK"], 0.002, false);
    red.observe(&["Put", "INTERNAL"], 0.2, true);
    red.observe(&["Del", "OK"], 0.02, false);

    let golden = GoldenSignals::register(&registry, "worker", ["job"])?;
    golden.observe(&["thumbnail"], 1.2, false);
    golden.set_saturation("cpu", 0.6)?;
    golden.set_queue_depth("incoming", 3);

    let usage = UseMetrics::register(&registry, "disk")?;
    usage.set_utilization("sda", 0.3)?;
    usage.set_saturation("sda", 2.0);
    usage.inc_errors("sda");

    let http = HttpServerMetrics::register(&registry)?;
    drop(http.start("GET"));
    http.record("GET", "/orders/{id}", 200, 0.012);
    http.record("BREW", "/coffee", 418, 0.5);

    registry.register(
        "legacy_events",
        "Events from a plain prometheus-client counter.",
        ClientCounter::<u64>::default(),
    )?;
    register_resilience_families(&registry)?;
    Ok(registry)
}

/// Registers the families of every resilience part: breaker, retry, rate limiter, bulkhead
/// and timeout.
#[cfg(feature = "resilience")]
fn register_resilience_families(registry: &Registry) -> Result<(), Box<dyn std::error::Error>> {
    use obskit::resilience::breaker::CircuitBreaker;
    use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
    use obskit::resilience::rate_limit::{Quota, RateLimiter};
    use obskit::resilience::retry::{Retry, RetryPolicy};
    use obskit::resilience::timeout::Timeout;

    CircuitBreaker::builder("payments")
        .registry(registry)
        .build()?
        .try_acquire()?
        .success();
    Retry::<std::io::Error>::with_registry("payments", RetryPolicy::new(), registry)?;
    RateLimiter::builder("orders", Quota::per_second(1)?)
        .registry(registry)
        .build_keyed::<u64>()?
        .check_key(&1)?;
    Bulkhead::with_registry("payments", BulkheadConfig::default(), registry)?;
    Timeout::with_registry("payments", std::time::Duration::from_secs(1), registry)?;
    Ok(())
}

#[cfg(not(feature = "resilience"))]
fn register_resilience_families(_: &Registry) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}

#[test]
fn every_family_in_both_formats() -> TestResult {
    let registry = registry_with_every_family()?;
    let text = registry.encode(Format::PrometheusText)?;
    let open_metrics = registry.encode(Format::OpenMetrics)?;

    for name in [
        "tasks_total{otel_metric_overflow=\"true\"} 1",
        "rpc_server_requests_total{",
        "worker_saturation_ratio{resource=\"cpu\"} 0.6",
        "disk_errors_total{resource=\"sda\"} 1",
        "http_server_active_requests{http_request_method=\"GET\"} 0.0",
        "legacy_events_total 0",
    ] {
        assert!(text.contains(name), "0.0.4 lacks {name}: {text}");
        assert!(
            open_metrics.contains(name),
            "OpenMetrics lacks {name}: {open_metrics}"
        );
    }
    assert!(
        text.contains("# HELP jobs_processed_total Jobs processed.\n"),
        "{text}"
    );
    assert!(
        text.contains("# HELP process_threads Number of OS threads in the process.\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    assert!(open_metrics.ends_with("# EOF\n"), "{open_metrics}");
    Ok(())
}

/// Runs `promtool check metrics` on `text` through stdin.
///
/// Returns `None` when promtool is not installed.
fn promtool_check(text: &str) -> Option<std::process::Output> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("starting promtool failed: {error}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|error| panic!("writing to promtool failed: {error}"));
    }
    Some(
        child
            .wait_with_output()
            .unwrap_or_else(|error| panic!("waiting for promtool failed: {error}")),
    )
}

#[test]
fn promtool_accepts_prometheus_text() -> TestResult {
    let registry = registry_with_every_family()?;
    let text = registry.encode(Format::PrometheusText)?;

    let Some(output) = promtool_check(&text) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed; CI must install it (apt-get install prometheus)"
        );
        eprintln!(
            "skipping promtool check: promtool is not installed (apt-get install prometheus)"
        );
        return Ok(());
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool rejected the exposition:\nstdout: {stdout}\nstderr: {stderr}\ninput:\n{text}"
    );
    Ok(())
}

#[test]
fn promtool_rejects_broken_text() -> TestResult {
    // Proves the check above can fail: a counter without `_total` is a promtool lint error.
    let broken = "# HELP jobs Jobs.\n# TYPE jobs counter\njobs 1\n";
    let Some(output) = promtool_check(broken) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed"
        );
        return Ok(());
    };
    assert!(
        !output.status.success(),
        "promtool accepted a counter without _total"
    );
    Ok(())
}

#[test]
fn docs_list_every_family() -> TestResult {
    let registry = registry_with_every_family()?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    registry.register_runtime_metrics(runtime.handle().clone())?;
    let text = registry.encode(Format::PrometheusText)?;

    let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md");
    let docs = std::fs::read_to_string(docs_path)?;
    let owned_prefixes = [
        "obskit_",
        "process_",
        "tokio_runtime_",
        "http_server_",
        "target_info",
    ];
    let families: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .filter(|name| owned_prefixes.iter().any(|prefix| name.starts_with(prefix)))
        .collect();

    assert!(families.len() >= 15, "too few families found: {families:?}");
    for family in families {
        assert!(
            docs.contains(&format!("| `{family}` |")),
            "docs/metrics.md has no row for {family}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_metrics_from_handle() -> TestResult {
    let registry = Registry::default();
    registry.register_runtime_metrics(tokio::runtime::Handle::current())?;
    let task = tokio::spawn(tokio::time::sleep(std::time::Duration::from_secs(5)));

    let text = registry.encode(Format::PrometheusText)?;
    task.abort();
    assert!(text.contains("\ntokio_runtime_workers 2\n"), "{text}");
    assert!(
        lines_with(&text, "tokio_runtime_alive_tasks ")
            .iter()
            .any(|line| *line != "tokio_runtime_alive_tasks 0"),
        "{text}"
    );
    assert!(
        text.contains("\ntokio_runtime_worker_busy_seconds_total "),
        "{text}"
    );
    Ok(())
}

#[test]
fn global_registry_is_shared() -> TestResult {
    let counter =
        Registry::global().counter("global_test_events", "Events in the global registry.")?;
    counter.inc();
    let text = Registry::global().encode(Format::PrometheusText)?;
    assert!(text.contains("global_test_events_total 1\n"), "{text}");
    Ok(())
}

/// Serves `registry` on `/metrics` on a loopback port with `Accept` negotiation.
#[cfg(feature = "http")]
async fn serve_metrics(
    registry: Registry,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), std::io::Error> {
    use axum::http::header::{ACCEPT, CONTENT_TYPE};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    let handler = move |headers: HeaderMap| {
        let registry = registry.clone();
        async move {
            let accept = headers.get(ACCEPT).and_then(|value| value.to_str().ok());
            let format = Format::from_accept(accept);
            match registry.encode(format) {
                Ok(body) => ([(CONTENT_TYPE, format.content_type())], body).into_response(),
                Err(error) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
                }
            }
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            panic!("metrics server failed: {error}");
        }
    });
    Ok((address, server))
}

#[cfg(feature = "http")]
#[tokio::test]
async fn scrape_negotiates_format_over_loopback() -> TestResult {
    let registry = registry_with_every_family()?;
    let (address, server) = serve_metrics(registry).await?;
    let client = reqwest::Client::new();
    let url = format!("http://{address}/metrics");

    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let open_metrics = client
        .get(&url)
        .header("accept", prometheus_accept)
        .send()
        .await?;
    assert_eq!(
        open_metrics
            .headers()
            .get("content-type")
            .map(|value| value.as_bytes()),
        Some(Format::OpenMetrics.content_type().as_bytes())
    );
    let body = open_metrics.text().await?;
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(body.contains("# TYPE target info\n"), "{body}");

    let plain = client.get(&url).send().await?;
    assert_eq!(
        plain
            .headers()
            .get("content-type")
            .map(|value| value.as_bytes()),
        Some(Format::PrometheusText.content_type().as_bytes())
    );
    let body = plain.text().await?;
    assert!(!body.contains("# EOF"), "{body}");
    assert!(body.contains("# TYPE target_info gauge\n"), "{body}");

    server.abort();
    Ok(())
}
