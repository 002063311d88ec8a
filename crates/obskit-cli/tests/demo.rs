//! The demo service run as a process: real HTTP traffic, a scrape checked by `promtool`, health
//! probes, span export to an OTLP receiver and graceful shutdown on SIGTERM.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "support/otlp.rs"]
mod otlp;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otlp::{Collector, hex};

/// A running demo process and the JSON log lines it has written so far.
struct Demo {
    child: Child,
    address: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<serde_json::Value>,
}

impl Demo {
    fn start(extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(&[], extra_env)
    }

    fn start_with(extra_args: &[&str], extra_env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_obskit"))
            .args(["demo", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OBSKIT_SHUTDOWN_PRE_STOP_DELAY", "500ms")
            .env("OBSKIT_SHUTDOWN_TIMEOUT", "5s")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Self {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            seen: Vec::new(),
        };
        let listening = demo.wait_for_message("demo service listening");
        demo.address = listening["address"].as_str().unwrap().parse().unwrap();
        demo
    }

    /// Reads log lines until one has `message`, failing after 20 seconds.
    fn wait_for_message(&mut self, message: &str) -> serde_json::Value {
        if let Some(line) = self.seen.iter().find(|line| line["message"] == message) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(remaining).unwrap_or_else(|_| {
                panic!("no log line {message:?}; lines so far: {:#?}", self.seen)
            });
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("log line is not JSON ({error}): {line}"));
            self.seen.push(value.clone());
            if value["message"] == message {
                return value;
            }
        }
    }

    /// Reads every remaining line until the process closes its output.
    fn drain_lines(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(20)) {
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("log line is not JSON ({error}): {line}"));
            self.seen.push(value);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(client: &reqwest::Client, demo: &Demo) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = client.get(demo.url("/health/ready")).send().await;
        if matches!(&response, Ok(response) if response.status() == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "demo never became ready: {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn promtool_check(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus); scripts/test.sh installs it");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool failed:\n{report}\n{exposition}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool reported problems:\n{report}"
    );
}

fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|line| line.starts_with(series) && line.as_bytes().get(series.len()) == Some(&b' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn demo_serves_scrapes_and_shuts_down() {
    let mut demo = Demo::start(&[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &demo).await;

    // Traffic on every route.
    let created = client
        .post(demo.url("/orders"))
        .json(&serde_json::json!({
            "item": "book",
            "quantity": 2,
            "customer_email": "jane.doe@example.com"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let order: serde_json::Value = created.json().await.unwrap();
    let id = order["id"].as_u64().unwrap();

    // The customer's address is logged, and redacted before it is written.
    let order_created = demo.wait_for_message("order created");
    assert_eq!(order_created["customer.email"], "[REDACTED:email]");
    assert_eq!(order_created["item"], "book");

    let found = client
        .get(demo.url(&format!("/orders/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    let request_id = found.headers()["x-request-id"].to_str().unwrap().to_owned();
    let missing = client.get(demo.url("/orders/999999")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let failed = client
        .get(demo.url("/fail?status=503"))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 503);
    let slow = client.get(demo.url("/slow?ms=20")).send().await.unwrap();
    assert_eq!(slow.status(), 200);
    let invalid = client
        .post(demo.url("/orders"))
        .json(&serde_json::json!({ "item": "", "quantity": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);

    // Prometheus text 0.0.4 by default, valid for promtool.
    let scrape = client.get(demo.url("/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    assert_eq!(
        scrape.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let exposition = scrape.text().await.unwrap();
    promtool_check(&exposition);
    for family in [
        "http_server_request_duration_seconds",
        "http_server_active_requests",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "target_info",
        "obskit_build_info",
        "obskit_log_events_dropped_total",
        "obskit_health_check_status",
        "demo_orders_requests_total",
        "demo_orders_saturation_ratio",
        "demo_resource_utilization_ratio",
    ] {
        assert!(
            exposition.contains(&format!("\n{family}")),
            "{family} missing:\n{exposition}"
        );
    }
    assert_eq!(
        sample(
            &exposition,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/orders/{id}\",http_response_status_code=\"200\"}"
        ),
        Some(1.0),
        "{exposition}"
    );
    assert_eq!(
        sample(
            &exposition,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/orders/{id}\",http_response_status_code=\"404\"}"
        ),
        Some(1.0),
        "{exposition}"
    );
    assert!(
        !exposition.contains("/orders/999999"),
        "raw path in a label"
    );

    // OpenMetrics on request.
    let open_metrics = client
        .get(demo.url("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        open_metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(open_metrics.text().await.unwrap().ends_with("# EOF\n"));

    // Log lines of the request carry its id and route.
    let access = demo.wait_for_message("request completed");
    assert_eq!(access["service"], "obskit-demo");
    assert_eq!(access["version"], env!("CARGO_PKG_VERSION"));
    let access_of_request = demo
        .seen
        .iter()
        .chain(std::iter::once(&access))
        .find(|line| line["request_id"] == request_id.as_str())
        .cloned();
    let access_of_request = match access_of_request {
        Some(line) => line,
        None => loop {
            let line = demo.wait_for_message("request completed");
            if line["request_id"] == request_id.as_str() {
                break line;
            }
            demo.seen.retain(|seen| seen != &line);
        },
    };
    assert_eq!(access_of_request["http.route"], "/orders/{id}");
    assert_eq!(access_of_request["http.response.status_code"], 200);

    // SIGTERM: readiness fails during the pre-stop delay, an in-flight request completes, and
    // the last log line reaches the output.
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = demo.url("/slow?ms=1500");
        async move { client.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    demo.terminate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = client.get(demo.url("/health/ready")).send().await.unwrap();
    assert_eq!(during.status(), 503);
    let live = client.get(demo.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200, "liveness must not fail during shutdown");

    let slow = in_flight.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200);
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    demo.drain_lines();
    let last = demo.seen.last().unwrap();
    assert_eq!(last["message"], "demo service stopped", "{:#?}", demo.seen);
}

#[test]
fn demo_rejects_invalid_configuration() {
    let output = Command::new(env!("CARGO_BIN_EXE_obskit"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("OBSKIT_LOG_SAMPLE_RATE", "2")
        .env("OBSKIT_SHUTDOWN_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OBSKIT_LOG_SAMPLE_RATE"), "{stderr}");
    assert!(stderr.contains("OBSKIT_SHUTDOWN_TIMEOUT"), "{stderr}");
    assert!(stderr.contains("soon"), "{stderr}");
}

#[tokio::test]
async fn second_signal_keeps_log_line() {
    let mut demo = Demo::start(&[("OBSKIT_SHUTDOWN_PRE_STOP_DELAY", "30s")]);
    wait_ready(&reqwest::Client::new(), &demo).await;

    demo.terminate();
    demo.wait_for_message("readiness fails from now on: shutting down");
    let started = Instant::now();
    demo.terminate();
    let status = demo.child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the second signal did not cut the 30 s pre-stop delay short"
    );
    assert_eq!(status.code(), Some(130), "demo exited with {status}");
    demo.drain_lines();
    assert!(
        demo.seen
            .iter()
            .any(|line| line["message"] == "second signal received, exiting now"),
        "the line logged on the second signal was lost: {:#?}",
        demo.seen
    );
}

#[test]
fn demo_exports_trace_of_inner_call() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT_ID: &str = "00f067aa0ba902b7";

    let collector = Collector::grpc();
    let endpoint = collector.url();
    // A schedule delay longer than the test leaves the shutdown flush as the only export.
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
    ]);
    let destination = demo.wait_for_message("exporting spans over OTLP");
    assert_eq!(destination["trace_exporter"], "otlp");
    assert_eq!(destination["trace_endpoint"], endpoint.as_str());
    // The collector's runtime must not be dropped inside another runtime, so the test is
    // synchronous and runs the client on a runtime of its own.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let order = runtime.block_on(async {
        let client = reqwest::Client::new();
        wait_ready(&client, &demo).await;

        let created = client
            .post(demo.url("/orders"))
            .json(&serde_json::json!({ "item": "book", "quantity": 1 }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<serde_json::Value>().await.unwrap()["id"]
            .as_u64()
            .unwrap();
        let found = client
            .get(demo.url(&format!("/orders/{id}")))
            .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), 200);
        found.json::<serde_json::Value>().await.unwrap()
    });
    assert_eq!(order["item"], "book");
    assert_eq!(order["in_stock"], 12, "{order}");
    assert!(
        collector.spans().is_empty(),
        "spans were exported before shutdown: {:?}",
        collector.spans()
    );

    // SIGTERM: the process exits 0 within its deadline and flushes the spans on the way out.
    // The lookup's trace is server span, client span of the lookup, and the inventory's server
    // span.
    let started = Instant::now();
    demo.terminate();
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );

    let outer = collector.wait_for_span(Duration::from_secs(5), |span| {
        span.name == "GET /orders/{id}" && hex(&span.trace_id) == TRACE_ID
    });
    assert_eq!(hex(&outer.parent_span_id), PARENT_ID);
    let client_span = collector.wait_for_span(Duration::from_secs(5), |span| {
        span.name == "GET /inventory/{item}" && span.kind == SpanKind::Client as i32
    });
    assert_eq!(hex(&client_span.trace_id), TRACE_ID);
    assert_eq!(client_span.parent_span_id, outer.span_id);
    let status_code = client_span
        .attributes
        .iter()
        .find(|attribute| attribute.key == "http.response.status_code")
        .and_then(|attribute| attribute.value.clone())
        .and_then(|value| value.value);
    assert_eq!(status_code, Some(Value::IntValue(200)), "{client_span:?}");
    let inner = collector.wait_for_span(Duration::from_secs(5), |span| {
        span.name == "GET /inventory/{item}" && span.kind == SpanKind::Server as i32
    });
    assert_eq!(hex(&inner.trace_id), TRACE_ID);
    assert_eq!(inner.parent_span_id, client_span.span_id);

    // The order's payment: server span, the payment attempt's client span, and the payments
    // server's span under it.
    let created = collector.wait_for_span(Duration::from_secs(5), |span| {
        span.name == "POST /orders" && span.kind == SpanKind::Server as i32
    });
    let payment = collector.wait_for_span(Duration::from_secs(5), |span| {
        span.name == "POST /payments" && span.kind == SpanKind::Client as i32
    });
    assert_eq!(payment.trace_id, created.trace_id);
    assert_eq!(payment.parent_span_id, created.span_id);
    let paid = collector.wait_for_span(Duration::from_secs(5), |span| {
        span.name == "POST /payments" && span.kind == SpanKind::Server as i32
    });
    assert_eq!(paid.trace_id, created.trace_id);
    assert_eq!(paid.parent_span_id, payment.span_id);
    assert!(
        collector
            .spans()
            .iter()
            .all(|span| span.name != "GET /healthz"),
        "readiness probes of the inventory service were traced"
    );
}

#[test]
fn demo_shuts_down_with_collector_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = format!("http://{closed}");
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ("OBSKIT_TRACE_SHUTDOWN_TIMEOUT", "2s"),
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        wait_ready(&client, &demo).await;
        let response = client.get(demo.url("/slow?ms=1")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    });

    let started = Instant::now();
    demo.terminate();
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    demo.drain_lines();
    let failure = demo
        .seen
        .iter()
        .find(|line| line["target"] == "obskit::trace::export")
        .unwrap_or_else(|| panic!("no export failure logged: {:#?}", demo.seen));
    assert_eq!(failure["level"], "WARN", "{failure}");
    assert_eq!(
        demo.seen.last().unwrap()["message"],
        "demo service stopped",
        "{:#?}",
        demo.seen
    );
}

async fn get_json(client: &reqwest::Client, demo: &Demo, path: &str) -> serde_json::Value {
    client
        .get(demo.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post_order(client: &reqwest::Client, demo: &Demo) -> reqwest::Response {
    client
        .post(demo.url("/orders"))
        .json(&serde_json::json!({ "item": "book", "quantity": 1 }))
        .send()
        .await
        .unwrap()
}

async fn payments_breaker(client: &reqwest::Client, demo: &Demo) -> serde_json::Value {
    let resilience = get_json(client, demo, "/resilience").await;
    resilience["circuit_breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|breaker| breaker["name"] == "payments")
        .cloned()
        .unwrap_or_else(|| panic!("no payments breaker in {resilience}"))
}

#[tokio::test]
async fn payments_breaker_opens_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("obskit.toml");
    std::fs::write(
        &config,
        "[resilience.circuit_breakers.payments]\n\
         preset = \"external_api\"\n\
         minimum_number_of_calls = 6\n\
         wait_duration_in_open_state = \"1s\"\n\
         enable_exponential_backoff = false\n",
    )
    .unwrap();
    let mut demo = Demo::start_with(
        &[
            "--payments-failure-rate",
            "1.0",
            "--payments-latency-ms",
            "0",
        ],
        &[("OBSKIT_CONFIG_FILE", config.to_str().unwrap())],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &demo).await;

    // Every payment fails: the first orders get 502 after their retries, until the breaker
    // opens and orders get 503 with the time until the next probe.
    let mut statuses = Vec::new();
    let rejected = loop {
        let response = post_order(&client, &demo).await;
        statuses.push(response.status().as_u16());
        if response.status() == 503 {
            break response;
        }
        assert!(
            statuses.len() < 20,
            "the breaker never opened: {statuses:?}"
        );
    };
    assert!(
        statuses[..statuses.len() - 1]
            .iter()
            .all(|status| *status == 502),
        "{statuses:?}"
    );
    let retry_after: u64 = rejected.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1);
    let breaker = payments_breaker(&client, &demo).await;
    assert_eq!(breaker["state"], "open", "{breaker}");
    assert_eq!(breaker["failure_rate"], 100.0, "{breaker}");
    assert!(
        breaker["next_probe_in_seconds"].as_f64().unwrap() <= 1.0,
        "{breaker}"
    );
    let opened = demo.wait_for_message("circuit breaker opened");
    assert_eq!(opened["circuit_breaker"], "payments");

    // The payments server recovers; after the wait the probes succeed and close the breaker.
    let healthy = client
        .put(demo.url("/payments/settings"))
        .json(&serde_json::json!({ "failure_rate": 0.0, "latency_ms": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let response = post_order(&client, &demo).await;
        assert_eq!(response.status(), 201);
        let order: serde_json::Value = response.json().await.unwrap();
        assert!(order["payment_id"].as_u64().is_some(), "{order}");
    }
    let breaker = payments_breaker(&client, &demo).await;
    assert_eq!(breaker["state"], "closed", "{breaker}");

    let metrics = client
        .get(demo.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let opened_total = sample(
        &metrics,
        r#"obskit_circuit_breaker_transitions_total{name="payments",from="closed",to="open"}"#,
    );
    assert_eq!(opened_total, Some(1.0));
    promtool_check(&metrics);

    let invalid = client
        .put(demo.url("/payments/settings"))
        .json(&serde_json::json!({ "failure_rate": 2.0, "latency_ms": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
}

#[tokio::test]
async fn orders_rate_limited_per_client() {
    let demo = Demo::start_with(&["--orders-rate-limit", "1"], &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &demo).await;

    // A rate of 1 per second allows a burst of 2.
    assert_eq!(post_order(&client, &demo).await.status(), 201);
    assert_eq!(post_order(&client, &demo).await.status(), 201);
    let limited = post_order(&client, &demo).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["ratelimit-policy"], "\"orders\";q=1;w=1");
    assert!(
        limited.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"orders\";r=0;t="),
        "{:?}",
        limited.headers()
    );
    // Routes outside /orders are not limited.
    for _ in 0..3 {
        let ready = client.get(demo.url("/health/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
    }
    let resilience: serde_json::Value = get_json(&client, &demo, "/resilience").await;
    let orders = &resilience["rate_limiters"][0];
    assert_eq!(orders["name"], "orders");
    assert_eq!(orders["rejected"], 1, "{resilience}");
    assert_eq!(orders["allowed"], 2, "{resilience}");
}

#[tokio::test]
async fn slo_route_shows_live_status() {
    let demo = Demo::start(&[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &demo).await;

    for _ in 0..3 {
        assert_eq!(post_order(&client, &demo).await.status(), 201);
    }
    let lookup = client.get(demo.url("/orders/1")).send().await.unwrap();
    assert_eq!(lookup.status(), 200);

    let body: serde_json::Value = get_json(&client, &demo, "/slo").await;
    let slos = body["slos"].as_array().unwrap();
    let availability = slos
        .iter()
        .find(|slo| slo["name"] == "orders-availability")
        .unwrap_or_else(|| panic!("no availability SLO in {body}"));
    assert_eq!(availability["valid"], 3, "{availability}");
    assert_eq!(availability["bad"], 0, "{availability}");
    assert_eq!(
        availability["error_budget_remaining"], 1.0,
        "{availability}"
    );
    assert!(
        availability["burn_rates"]["5m"].is_number(),
        "{availability}"
    );
    assert!(
        availability["burn_rates"]["3d"].is_number(),
        "{availability}"
    );
    let latency = slos
        .iter()
        .find(|slo| slo["name"] == "order-lookup-latency")
        .unwrap_or_else(|| panic!("no latency SLO in {body}"));
    assert_eq!(latency["valid"], 1, "{latency}");

    let metrics = client
        .get(demo.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(
            &metrics,
            r#"obskit_slo_objective_ratio{slo="orders-availability"}"#
        ),
        Some(0.999)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"obskit_slo_burn_rate{slo="orders-availability",window="5m"}"#
        ),
        Some(0.0)
    );
    promtool_check(&metrics);

    let ready: serde_json::Value = get_json(&client, &demo, "/health/ready").await;
    assert!(ready.to_string().contains("slo_budget"), "{ready}");
}
