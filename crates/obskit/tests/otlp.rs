//! End-to-end tests of span export to OTLP receivers on loopback, and of the `tracing` config.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::routing::post;
use obskit::Config;
use obskit::config::{BatchConfig, ConfigBuilder, OtlpCompression, OtlpProtocol, TraceExporter};
use obskit::metrics::{Format, Registry};
use obskit::trace::{BatchExporter, ExportError, Sampler, SpanSink};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use parking_lot::Mutex;

mod support;

use support::otlp::{Collector, Inbox, Received, closed_port, http_export, silent_listener};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const TRACE_ID: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;

fn span(id: u64, parent: u64, name: &'static str) -> SpanData {
    let now = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(TRACE_ID),
            SpanId::from(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from(parent),
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed(name),
        start_time: now,
        end_time: now,
        attributes: vec![
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("order.items", 3_i64),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("obskit-test").build(),
    }
}

fn config(vars: &[(&str, &str)]) -> ConfigBuilder {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    Config::builder()
        .env_from(vars)
        .set("service.name", "checkout")
        .set("service.version", "1.4.2")
        .set("service.environment", "test")
}

fn start(builder: ConfigBuilder) -> (BatchExporter, Registry) {
    let config = builder.build().unwrap();
    let registry = Registry::new(&config.metrics);
    let exporter = BatchExporter::from_config(&config.tracing, &config.service, &registry)
        .unwrap()
        .expect("an exporter is configured");
    (exporter, registry)
}

/// Reads one sample of the text exposition, 0 when absent.
fn sample(registry: &Registry, series: &str) -> f64 {
    let text = registry.encode(Format::PrometheusText).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// Waits up to 10 seconds for `series` to reach `value`, because a receiver stores the spans
/// before the exporter reads the response and counts them.
fn wait_for_sample(registry: &Registry, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(registry, series) < value && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(sample(registry, series), value, "{series}");
}

fn dropped(registry: &Registry, reason: &str) -> f64 {
    sample(
        registry,
        &format!("obskit_spans_dropped_total{{reason=\"{reason}\"}}"),
    )
}

fn string_attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.clone())
        .and_then(|value| match value {
            any_value::Value::StringValue(text) => Some(text),
            _ => None,
        })
}

/// Checks resource, names, attributes and parent ids of the three spans sent by
/// [`send_tree`].
fn assert_tree_arrived(requests: &[Received]) {
    let resource_spans: Vec<_> = requests
        .iter()
        .flat_map(|received| &received.request.resource_spans)
        .collect();
    let resource = resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        string_attribute(&resource.attributes, "service.name").as_deref(),
        Some("checkout")
    );
    assert_eq!(
        string_attribute(&resource.attributes, "service.version").as_deref(),
        Some("1.4.2")
    );
    assert_eq!(
        string_attribute(&resource.attributes, "deployment.environment.name").as_deref(),
        Some("test")
    );
    assert_eq!(
        string_attribute(&resource.attributes, "telemetry.sdk.name").as_deref(),
        Some("obskit")
    );

    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .collect();
    assert_eq!(spans.len(), 3);
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("span {name} missing"))
    };
    let root = by_name("GET /orders/{id}");
    let child = by_name("load order");
    let grandchild = by_name("SELECT orders");

    assert_eq!(root.trace_id, TRACE_ID.to_be_bytes().to_vec());
    assert!(root.parent_span_id.is_empty());
    assert_eq!(child.parent_span_id, root.span_id);
    assert_eq!(grandchild.parent_span_id, child.span_id);
    assert_eq!(
        string_attribute(&root.attributes, "http.route").as_deref(),
        Some("/orders/{id}")
    );
}

fn send_tree(exporter: &BatchExporter) {
    exporter.send(span(1, 0, "GET /orders/{id}"));
    exporter.send(span(2, 1, "load order"));
    exporter.send(span(3, 2, "SELECT orders"));
}

/// Sends the span tree and checks that the collector rejected it and that it was counted.
fn assert_tree_rejected(exporter: &BatchExporter, registry: &Registry, collector: &Collector) {
    send_tree(exporter);
    let result = exporter.flush(Duration::from_secs(10));

    assert!(
        matches!(result, Err(ExportError::ExportFailed { spans: 3, .. })),
        "{result:?}"
    );
    assert_eq!(collector.inbox.span_count(), 0);
    assert_eq!(dropped(registry, "export_failed"), 3.0);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// gRPC
// ---------------------------------------------------------------------------------------------

#[test]
fn grpc_spans_arrive_with_resource() {
    let collector = Collector::grpc();
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20s3cret",
        ),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(5)).unwrap();

    let requests = collector.inbox.requests();
    assert_tree_arrived(&requests);
    assert_eq!(
        requests[0].headers.get("authorization").unwrap(),
        "Bearer s3cret"
    );
    assert_eq!(sample(&registry, "obskit_spans_exported_total"), 3.0);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn grpc_gzip_is_announced() {
    let collector = Collector::grpc();
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(5)).unwrap();

    let requests = collector.inbox.requests();
    assert_eq!(requests[0].headers.get("grpc-encoding").unwrap(), "gzip");
    assert_tree_arrived(&requests);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn grpc_without_gzip_sends_identity() {
    let collector = Collector::grpc();
    let (exporter, _registry) = start(config(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        &collector.url(),
    )]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(5)).unwrap();

    let requests = collector.inbox.requests();
    assert!(requests[0].headers.get("grpc-encoding").is_none());
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn full_batch_is_exported_without_flush() {
    let collector = Collector::grpc();
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]));

    for id in 1..=4 {
        exporter.send(span(id, 0, "batch"));
    }
    collector.inbox.wait_for_spans(4);

    let sizes: Vec<usize> = collector
        .inbox
        .requests()
        .iter()
        .map(|received| {
            received.request.resource_spans[0].scope_spans[0]
                .spans
                .len()
        })
        .collect();
    assert_eq!(sizes, [2, 2]);
    wait_for_sample(&registry, "obskit_spans_exported_total", 4.0);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn schedule_delay_exports_partial_batch() {
    let collector = Collector::grpc();
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ]));

    exporter.send(span(1, 0, "alone"));
    collector.inbox.wait_for_spans(1);

    assert_eq!(collector.inbox.requests().len(), 1);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn shutdown_exports_queued_spans() {
    let collector = Collector::grpc();
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
    ]));

    send_tree(&exporter);
    exporter.shutdown(Duration::from_secs(5)).unwrap();

    assert_eq!(collector.inbox.span_count(), 3);
    exporter.send(span(9, 0, "late"));
    assert_eq!(dropped(&registry, "shutdown"), 1.0);
    assert!(matches!(
        exporter.flush(Duration::from_secs(1)),
        Err(ExportError::ShutDown)
    ));
    assert!(matches!(
        exporter.shutdown(Duration::from_secs(1)),
        Err(ExportError::ShutDown)
    ));
}

// ---------------------------------------------------------------------------------------------
// HTTP/protobuf
// ---------------------------------------------------------------------------------------------

#[test]
fn http_spans_arrive_with_headers() {
    let collector = Collector::http();
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "authorization=Bearer%20s3cret,x-tenant=shop",
        ),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(5)).unwrap();

    let requests = collector.inbox.requests();
    assert_tree_arrived(&requests);
    let headers = &requests[0].headers;
    assert_eq!(headers.get("authorization").unwrap(), "Bearer s3cret");
    assert_eq!(headers.get("x-tenant").unwrap(), "shop");
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/x-protobuf"
    );
    assert_eq!(sample(&registry, "obskit_spans_exported_total"), 3.0);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn http_gzip_arrives_compressed() {
    let collector = Collector::http();
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(5)).unwrap();

    let requests = collector.inbox.requests();
    assert_eq!(requests[0].headers.get("content-encoding").unwrap(), "gzip");
    assert_eq!(requests[0].raw_body[..2], [0x1f, 0x8b], "gzip magic bytes");
    assert_tree_arrived(&requests);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Unreachable collectors
// ---------------------------------------------------------------------------------------------

/// Sends 50 spans to an exporter whose collector fails, then checks that every span is
/// accounted for and that shutdown keeps its deadline.
fn check_failing_collector(url: &str, protocol: &str) {
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4"),
        ("OTEL_BSP_SCHEDULE_DELAY", "10"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "300"),
    ]));

    for id in 1..=50 {
        exporter.send(span(id, 0, "lost"));
    }
    assert!(dropped(&registry, "queue_full") > 0.0);

    let started = Instant::now();
    let result = exporter.shutdown(Duration::from_secs(2));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    // Whether the last failing export is still under way at shutdown depends on timing.
    assert!(
        matches!(
            result,
            Ok(()) | Err(ExportError::ExportFailed { .. } | ExportError::Timeout(_))
        ),
        "{result:?}"
    );

    // The worker finishes its last export within the export timeout; then every span is
    // counted once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let accounted = dropped(&registry, "queue_full")
            + dropped(&registry, "export_failed")
            + dropped(&registry, "shutdown")
            + sample(&registry, "obskit_spans_exported_total");
        if accounted == 50.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{accounted} of 50 spans counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sample(&registry, "obskit_spans_exported_total"), 0.0);
    let failures = sample(
        &registry,
        "obskit_span_export_failures_total{reason=\"error\"}",
    ) + sample(
        &registry,
        "obskit_span_export_failures_total{reason=\"timeout\"}",
    );
    assert!(failures >= 1.0);
}

#[test]
fn grpc_collector_down() {
    check_failing_collector(&format!("http://{}", closed_port()), "grpc");
}

#[test]
fn http_collector_down() {
    check_failing_collector(&format!("http://{}", closed_port()), "http/protobuf");
}

#[test]
fn grpc_collector_never_responds() {
    check_failing_collector(&format!("http://{}", silent_listener()), "grpc");
}

#[test]
fn http_collector_never_responds() {
    check_failing_collector(&format!("http://{}", silent_listener()), "http/protobuf");
}

#[test]
fn flush_returns_at_deadline_when_collector_hangs() {
    let address = silent_listener();
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "30000"),
    ]));

    send_tree(&exporter);
    let started = Instant::now();
    let result = exporter.flush(Duration::from_millis(500));
    let took = started.elapsed();

    assert!(matches!(result, Err(ExportError::Timeout(_))), "{result:?}");
    assert!(took < Duration::from_millis(1500), "flush took {took:?}");
    let started = Instant::now();
    let result = exporter.shutdown(Duration::from_secs(2));
    assert!(matches!(result, Err(ExportError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ---------------------------------------------------------------------------------------------
// Queue and processor behaviour with an exporter under the test's control
// ---------------------------------------------------------------------------------------------

/// An exporter whose exports never finish, and which reports when one starts.
#[derive(Debug)]
struct StuckExporter(std::sync::mpsc::SyncSender<()>);

impl SpanExporter for StuckExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        let _ = self.0.try_send(());
        std::future::pending().await
    }
}

#[test]
fn full_queue_drops_and_counts() {
    let (started, export_started) = std::sync::mpsc::sync_channel(1);
    let registry = Registry::default();
    let batch = BatchConfig {
        max_queue_size: 2,
        max_export_batch_size: 1,
        ..BatchConfig::default()
    };
    let exporter = BatchExporter::with_exporter(
        StuckExporter(started),
        opentelemetry_sdk::Resource::builder_empty().build(),
        &batch,
        &registry,
    )
    .unwrap();

    exporter.send(span(1, 0, "taken by the worker"));
    export_started
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    for id in 2..=7 {
        exporter.send(span(id, 0, "queued or dropped"));
    }

    assert_eq!(dropped(&registry, "queue_full"), 4.0);
    assert!(exporter.shutdown(Duration::from_millis(200)).is_err());
}

#[test]
fn tracer_provider_exports_through_batch_exporter() {
    let memory = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let registry = Registry::default();
    let config = config(&[]).build().unwrap();
    let exporter = BatchExporter::with_exporter(
        memory.clone(),
        obskit::trace::service_resource(&config.service),
        &BatchConfig::default(),
        &registry,
    )
    .unwrap();

    let provider = exporter.tracer_provider_builder(Sampler::AlwaysOn).build();
    provider.tracer("orders").in_span("charge card", |_cx| {});
    provider.force_flush().unwrap();

    let spans = memory.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "charge card");
    assert_eq!(sample(&registry, "obskit_spans_exported_total"), 1.0);
    provider.shutdown().unwrap();
    assert!(matches!(
        exporter.flush(Duration::from_secs(1)),
        Err(ExportError::ShutDown)
    ));
}

#[test]
fn tracer_provider_drops_unsampled_spans() {
    let memory = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let registry = Registry::default();
    let exporter = BatchExporter::with_exporter(
        memory.clone(),
        opentelemetry_sdk::Resource::builder_empty().build(),
        &BatchConfig::default(),
        &registry,
    )
    .unwrap();

    let provider = exporter.tracer_provider_builder(Sampler::AlwaysOff).build();
    provider.tracer("orders").in_span("not sampled", |_cx| {});
    provider.force_flush().unwrap();

    assert!(memory.get_finished_spans().unwrap().is_empty());
    provider.shutdown().unwrap();
}

#[test]
fn stdout_exporter_starts_and_stops() {
    let (exporter, registry) = start(config(&[("OTEL_TRACES_EXPORTER", "console")]));
    exporter.send(span(1, 0, "to stdout"));
    exporter.shutdown(Duration::from_secs(2)).unwrap();
    assert_eq!(sample(&registry, "obskit_spans_exported_total"), 1.0);
}

#[test]
fn disabled_tracing_builds_no_exporter() {
    let config = config(&[]).build().unwrap();
    let registry = Registry::new(&config.metrics);
    let exporter = BatchExporter::from_config(&config.tracing, &config.service, &registry).unwrap();
    assert!(exporter.is_none());
}

// ---------------------------------------------------------------------------------------------
// Configuration from the environment
// ---------------------------------------------------------------------------------------------

fn load(vars: &[(&str, &str)]) -> obskit::config::TracingConfig {
    config(vars).build().unwrap().tracing
}

fn problems(vars: &[(&str, &str)]) -> Vec<String> {
    match config(vars).build() {
        Ok(config) => panic!("expected an error, loaded {:?}", config.tracing),
        Err(error) => error.problems().iter().map(ToString::to_string).collect(),
    }
}

fn one_problem(vars: &[(&str, &str)]) -> String {
    let found = problems(vars);
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn env_exporter_names() {
    let cases = [
        ("otlp", TraceExporter::Otlp),
        ("stdout", TraceExporter::Stdout),
        ("console", TraceExporter::Stdout),
        ("CONSOLE", TraceExporter::Stdout),
        ("none", TraceExporter::None),
    ];
    for (value, exporter) in cases {
        let tracing = load(&[("OTEL_TRACES_EXPORTER", value)]);
        assert_eq!(tracing.exporter, Some(exporter), "{value}");
    }
}

#[test]
fn env_unknown_exporter_rejected() {
    let problem = one_problem(&[("OTEL_TRACES_EXPORTER", "zipkin")]);
    assert!(problem.starts_with("tracing.exporter = \"zipkin\" (from env OTEL_TRACES_EXPORTER)"));
    assert!(problem.contains("\"otlp\", \"stdout\""), "{problem}");
}

#[test]
fn env_sdk_disabled_turns_export_off() {
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_SDK_DISABLED", "true"),
    ]);
    assert_eq!(tracing.effective_exporter(), TraceExporter::None);
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_SDK_DISABLED", "false"),
    ]);
    assert_eq!(tracing.effective_exporter(), TraceExporter::Otlp);
    let problem = one_problem(&[("OTEL_SDK_DISABLED", "yes")]);
    assert!(
        problem.contains("(from env OTEL_SDK_DISABLED)"),
        "{problem}"
    );
}

#[test]
fn env_protocol_signal_variable_wins() {
    let tracing = load(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
    assert_eq!(tracing.protocol, OtlpProtocol::HttpProtobuf);
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
    ]);
    assert_eq!(tracing.protocol, OtlpProtocol::Grpc);
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
    assert!(problem.contains("\"grpc\", \"http/protobuf\""), "{problem}");
}

#[test]
fn env_endpoints() {
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]);
    assert_eq!(
        tracing.effective_endpoint(),
        "https://collector:4318/v1/traces"
    );
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://traces:443/in",
        ),
    ]);
    assert_eq!(tracing.effective_endpoint(), "https://traces:443/in");
}

#[test]
fn env_bad_endpoint_rejected() {
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]);
    assert!(
        problem.starts_with(
            "tracing.endpoint = \"collector:4317\" (from env OTEL_EXPORTER_OTLP_ENDPOINT)"
        ),
        "{problem}"
    );
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c/x")]);
    assert!(problem.contains("scheme `ftp`"), "{problem}");
}

#[test]
fn env_headers_merge_and_decode() {
    let tracing = load(&[
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Basic%20YQ%3D%3D,x-a=1",
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-a=2"),
    ]);
    let headers: Vec<(&str, &str)> = tracing
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose()))
        .collect();
    assert_eq!(headers, [("authorization", "Basic YQ=="), ("x-a", "2")]);
}

#[test]
fn env_bad_header_hides_value() {
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_HEADERS", "x-key=abc%zz")]);
    assert!(
        problem.contains("(from env OTEL_EXPORTER_OTLP_HEADERS)"),
        "{problem}"
    );
    assert!(problem.contains("x-key=****"), "{problem}");
    assert!(!problem.contains("abc"), "{problem}");
    // An entry without `=` may be a pasted token, so it is not quoted.
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_HEADERS", "Bearer%20s3cret")]);
    assert!(problem.contains("missing `=`"), "{problem}");
    assert!(problem.contains("entry 1 (no \"=\" in it)"), "{problem}");
    assert!(!problem.contains("s3cret"), "{problem}");
}

#[test]
fn report_masks_header_values() {
    let (_, report) = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20xyz")])
        .build_with_report()
        .unwrap();
    let text = report.to_string();
    assert!(!text.contains("xyz"), "{text}");
    let entry = report.get("tracing.headers").unwrap();
    assert_eq!(entry.value, serde_json::json!({"authorization": "****"}));
    assert_eq!(entry.source.to_string(), "env OTEL_EXPORTER_OTLP_HEADERS");
}

#[test]
fn env_compression() {
    let tracing = load(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP")]);
    assert_eq!(tracing.compression, OtlpCompression::Gzip);
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
    ]);
    assert_eq!(tracing.compression, OtlpCompression::None);
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")]);
    assert!(problem.contains("\"gzip\", \"none\""), "{problem}");
}

#[test]
fn env_timeouts_are_milliseconds() {
    let tracing = load(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]);
    assert_eq!(tracing.timeout, Duration::from_millis(2500));
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
    ]);
    assert_eq!(tracing.timeout, Duration::from_millis(700));
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]);
    assert!(problem.contains("milliseconds"), "{problem}");
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0")]);
    assert!(problem.starts_with("tracing.timeout"), "{problem}");
}

#[test]
fn file_timeout_is_humantime() {
    let tracing = config(&[])
        .set("tracing.timeout", "3s")
        .build()
        .unwrap()
        .tracing;
    assert_eq!(tracing.timeout, Duration::from_secs(3));
    assert_eq!(load(&[]).timeout, Duration::from_secs(10));
}

#[test]
fn env_sampler_names() {
    let cases = [
        ("always_on", "", Sampler::AlwaysOn),
        ("always_off", "", Sampler::AlwaysOff),
        ("traceidratio", "0.1", Sampler::TraceIdRatio(0.1)),
        ("parentbased_always_on", "", Sampler::ParentBasedAlwaysOn),
        ("parentbased_always_off", "", Sampler::ParentBasedAlwaysOff),
        (
            "parentbased_traceidratio",
            "0.3",
            Sampler::ParentBasedTraceIdRatio(0.3),
        ),
    ];
    for (name, arg, sampler) in cases {
        let tracing = load(&[
            ("OTEL_TRACES_SAMPLER", name),
            ("OTEL_TRACES_SAMPLER_ARG", arg),
        ]);
        assert_eq!(tracing.effective_sampler(), sampler, "{name}");
    }
    assert_eq!(load(&[]).effective_sampler(), Sampler::ParentBasedAlwaysOn);
}

#[test]
fn env_unsupported_samplers_rejected() {
    for name in ["jaeger_remote", "parentbased_jaeger_remote", "xray"] {
        let problem = one_problem(&[("OTEL_TRACES_SAMPLER", name)]);
        assert!(
            problem.starts_with(&format!(
                "tracing.sampler = \"{name}\" (from env OTEL_TRACES_SAMPLER)"
            )),
            "{problem}"
        );
        assert!(problem.contains("not supported"), "{problem}");
    }
}

#[test]
fn env_sampler_arg_rejected_outside_range() {
    let problem = one_problem(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
    ]);
    assert!(
        problem.starts_with("tracing.sampler_arg = \"1.5\""),
        "{problem}"
    );
    let problem = one_problem(&[("OTEL_TRACES_SAMPLER_ARG", "half")]);
    assert!(problem.contains("OTEL_TRACES_SAMPLER_ARG"), "{problem}");
}

#[test]
fn env_sample_rate_wins_over_otel_sampler() {
    let tracing = load(&[
        ("OTEL_TRACES_SAMPLER", "always_off"),
        ("OBSKIT_TRACE_SAMPLE_RATE", "0.25"),
    ]);
    assert_eq!(
        tracing.effective_sampler(),
        Sampler::ParentBasedTraceIdRatio(0.25)
    );
    let problem = one_problem(&[("OBSKIT_TRACE_SAMPLE_RATE", "2")]);
    assert!(
        problem.starts_with("tracing.sample_rate = \"2\""),
        "{problem}"
    );
}

#[test]
fn env_keep_errors() {
    assert!(!load(&[]).keep_errors);
    assert!(load(&[("OBSKIT_TRACE_KEEP_ERRORS", "TRUE")]).keep_errors);
    assert!(!load(&[("OBSKIT_TRACE_KEEP_ERRORS", "false")]).keep_errors);
    let problem = one_problem(&[("OBSKIT_TRACE_KEEP_ERRORS", "1")]);
    assert!(problem.contains("true or false"), "{problem}");
}

#[test]
fn env_batch_settings() {
    let tracing = load(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"),
        ("OTEL_BSP_SCHEDULE_DELAY", "250"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "1500"),
    ]);
    assert_eq!(
        tracing.batch,
        BatchConfig {
            max_queue_size: 100,
            max_export_batch_size: 10,
            schedule_delay: Duration::from_millis(250),
            export_timeout: Duration::from_millis(1500),
        }
    );
    assert_eq!(load(&[]).batch, BatchConfig::default());
}

#[test]
fn grpc_partial_success_counts_rejected_spans() {
    let collector = Collector::grpc_rejecting(2);
    let (exporter, registry) = start(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url())]));
    send_tree(&exporter);
    exporter.flush(Duration::from_secs(10)).unwrap();

    assert_eq!(collector.inbox.span_count(), 3);
    assert_eq!(dropped(&registry, "rejected"), 2.0);
    assert_eq!(sample(&registry, "obskit_spans_exported_total"), 1.0);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn env_attribute_value_length_limit() {
    assert_eq!(
        load(&[]).attribute_value_length_limit,
        obskit::config::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT
    );
    assert_eq!(
        load(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")]).attribute_value_length_limit,
        100
    );
    // The span-specific variable wins over the general one.
    let both = load(&[
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "200"),
    ]);
    assert_eq!(both.attribute_value_length_limit, 200);
    let problem = one_problem(&[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0")]);
    assert!(
        problem.contains("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        "{problem}"
    );
}

#[test]
fn env_batch_larger_than_queue_rejected() {
    let problem = one_problem(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "11"),
    ]);
    assert!(
        problem.starts_with(
            "tracing.batch.max_export_batch_size = \"11\" (from env OTEL_BSP_MAX_EXPORT_BATCH_SIZE)"
        ),
        "{problem}"
    );
    assert!(
        problem.contains("from 1 to tracing.batch.max_queue_size (10)"),
        "{problem}"
    );
    let problem = one_problem(&[("OTEL_BSP_MAX_QUEUE_SIZE", "-1")]);
    assert!(problem.contains("OTEL_BSP_MAX_QUEUE_SIZE"), "{problem}");
}

#[test]
fn env_shutdown_timeout() {
    let tracing = load(&[("OBSKIT_TRACE_SHUTDOWN_TIMEOUT", "750ms")]);
    assert_eq!(tracing.shutdown_timeout, Duration::from_millis(750));
    assert_eq!(load(&[]).shutdown_timeout, Duration::from_secs(5));
    let problem = one_problem(&[("OBSKIT_TRACE_SHUTDOWN_TIMEOUT", "0s")]);
    assert!(problem.starts_with("tracing.shutdown_timeout"), "{problem}");
}

#[test]
fn env_tls_files_must_exist() {
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")]);
    assert!(
        problem.starts_with(
            "tracing.certificate = \"/nonexistent/ca.pem\" (from env OTEL_EXPORTER_OTLP_CERTIFICATE)"
        ),
        "{problem}"
    );
    assert!(problem.contains("cannot read"), "{problem}");
}

#[test]
fn env_tls_file_must_be_pem() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ca.der");
    std::fs::write(&path, [0x30, 0x82, 0x01, 0x0a]).unwrap();
    let path = path.to_str().unwrap();
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", path)]);
    assert!(problem.contains("BEGIN CERTIFICATE"), "{problem}");
}

#[test]
fn env_client_certificate_needs_key() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("client.pem");
    std::fs::write(&path, "").unwrap();
    let problem = one_problem(&[(
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        path.to_str().unwrap(),
    )]);
    assert!(problem.contains("set both or neither"), "{problem}");
    let problem = one_problem(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", path.to_str().unwrap())]);
    assert!(problem.starts_with("tracing.client_key"), "{problem}");
}

#[test]
fn unknown_obskit_trace_variable_suggests_name() {
    let problem = one_problem(&[("OBSKIT_TRACE_SAMPLE_RATIO", "0.5")]);
    assert!(problem.contains("OBSKIT_TRACE_SAMPLE_RATE"), "{problem}");
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    directory: tempfile::TempDir,
    ca: String,
    server_cert: String,
    server_key: String,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "obskit test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["client.test".to_owned()]).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "obskit test client");
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        let directory = tempfile::tempdir().unwrap();
        let write = |name: &str, contents: &str| {
            std::fs::write(directory.path().join(name), contents).unwrap();
        };
        write("ca.pem", &ca_cert.pem());
        write("client.pem", &client_cert.pem());
        write("client.key", &client_key.serialize_pem());
        Self {
            ca: ca_cert.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            directory,
        }
    }

    fn path(&self, name: &str) -> String {
        self.directory
            .path()
            .join(name)
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Server TLS settings; with `require_client`, only clients signed by the CA are accepted.
    fn grpc_server(&self, require_client: bool) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.server_cert, &self.server_key);
        let tls = tonic::transport::ServerTlsConfig::new().identity(identity);
        if require_client {
            tls.client_ca_root(tonic::transport::Certificate::from_pem(&self.ca))
        } else {
            tls
        }
    }
}

fn https_url(collector: &Collector) -> String {
    format!("https://{}", collector.address)
}

#[test]
fn grpc_tls_with_custom_ca() {
    let pki = Pki::new();
    let tls = pki.grpc_server(false);
    let collector = Collector::grpc_with(move |server| server.tls_config(tls).unwrap());
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.path("ca.pem")),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(10)).unwrap();

    assert_tree_arrived(&collector.inbox.requests());
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn grpc_mutual_tls_sends_client_certificate() {
    let pki = Pki::new();
    let tls = pki.grpc_server(true);
    let collector = Collector::grpc_with(move |server| server.tls_config(tls).unwrap());
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.path("ca.pem")),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            &pki.path("client.pem"),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pki.path("client.key")),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(10)).unwrap();

    assert_eq!(collector.inbox.span_count(), 3);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn grpc_mutual_tls_rejects_missing_client_certificate() {
    let pki = Pki::new();
    let tls = pki.grpc_server(true);
    let collector = Collector::grpc_with(move |server| server.tls_config(tls).unwrap());
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.path("ca.pem")),
        ("OTEL_BSP_EXPORT_TIMEOUT", "3000"),
    ]));

    assert_tree_rejected(&exporter, &registry, &collector);
}

#[test]
fn grpc_tls_rejects_unknown_ca() {
    let pki = Pki::new();
    let tls = pki.grpc_server(false);
    let collector = Collector::grpc_with(move |server| server.tls_config(tls).unwrap());
    // The system roots do not contain the test CA.
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_BSP_EXPORT_TIMEOUT", "3000"),
    ]));

    send_tree(&exporter);
    let result = exporter.flush(Duration::from_secs(10));

    assert!(
        matches!(result, Err(ExportError::ExportFailed { .. })),
        "{result:?}"
    );
    assert_eq!(collector.inbox.span_count(), 0);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn tls_key_that_is_a_certificate_rejected() {
    let pki = Pki::new();
    let problem = one_problem(&[
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            &pki.path("client.pem"),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pki.path("client.pem")),
    ]);
    assert!(problem.starts_with("tracing.client_key = "), "{problem}");
    assert!(problem.contains("no valid PEM private key"), "{problem}");
}

#[test]
fn tls_files_load_into_config() {
    let pki = Pki::new();
    let tracing = load(&[
        ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &pki.path("ca.pem")),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            &pki.path("client.pem"),
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            &pki.path("client.key"),
        ),
    ]);
    assert_eq!(
        tracing.certificate.as_deref(),
        Some(std::path::Path::new(&pki.path("ca.pem")))
    );
    assert_eq!(
        tracing.client_certificate.as_deref(),
        Some(std::path::Path::new(&pki.path("client.pem")))
    );
    assert_eq!(
        tracing.client_key.as_deref(),
        Some(std::path::Path::new(&pki.path("client.key")))
    );
}

impl Pki {
    /// Server settings for the HTTP receiver; with `require_client`, only clients signed by
    /// the CA are accepted.
    fn rustls_server(&self, require_client: bool) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca.as_bytes()).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let chain = vec![CertificateDer::from_pem_slice(self.server_cert.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(self.server_key.as_bytes()).unwrap();
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Collector {
    /// Starts an HTTP/protobuf receiver behind TLS.
    fn https(tls: Arc<rustls::ServerConfig>) -> Self {
        let runtime = Self::runtime();
        let inbox = Inbox::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/v1/traces", post(http_export))
            .with_state(inbox.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        runtime.spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    // A rejected handshake is what some tests expect; it ends the connection.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Self {
            _runtime: runtime,
            address,
            inbox,
        }
    }
}

#[test]
fn http_mutual_tls_sends_client_certificate() {
    let pki = Pki::new();
    let collector = Collector::https(pki.rustls_server(true));
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.path("ca.pem")),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            &pki.path("client.pem"),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pki.path("client.key")),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(10)).unwrap();

    assert_tree_arrived(&collector.inbox.requests());
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn http_tls_with_custom_ca() {
    let pki = Pki::new();
    let collector = Collector::https(pki.rustls_server(false));
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.path("ca.pem")),
    ]));

    send_tree(&exporter);
    exporter.flush(Duration::from_secs(10)).unwrap();

    assert_eq!(collector.inbox.span_count(), 3);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn http_mutual_tls_rejects_missing_client_certificate() {
    let pki = Pki::new();
    let collector = Collector::https(pki.rustls_server(true));
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.path("ca.pem")),
        ("OTEL_BSP_EXPORT_TIMEOUT", "3000"),
    ]));

    assert_tree_rejected(&exporter, &registry, &collector);
}

#[test]
fn http_tls_rejects_unknown_ca() {
    let pki = Pki::new();
    let collector = Collector::https(pki.rustls_server(false));
    let (exporter, _registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &https_url(&collector)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "3000"),
    ]));

    send_tree(&exporter);
    let result = exporter.flush(Duration::from_secs(10));

    assert!(
        matches!(result, Err(ExportError::ExportFailed { .. })),
        "{result:?}"
    );
    assert_eq!(collector.inbox.span_count(), 0);
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a global subscriber once for this test binary and returns what it wrote.
fn global_log() -> Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_thread_names(true)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
    .clone()
}

#[test]
fn export_failure_warns_once_per_interval() {
    let log = global_log();
    let url = format!("http://{}", closed_port());
    let (exporter, registry) = start(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
    ]));

    for id in 1..=3 {
        exporter.send(span(id, 0, "lost"));
        assert!(exporter.flush(Duration::from_secs(5)).is_err());
    }

    let text = String::from_utf8(log.0.lock().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(&format!("destination={url}")))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(lines[0].contains("obskit::trace::export"), "{}", lines[0]);
    assert!(
        lines[0].contains("span export failed, dropped 1 spans"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("suppressed_warnings=0"), "{}", lines[0]);
    // The gRPC client's own TRACE and DEBUG events stay off on the export thread.
    let foreign: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("obskit-span-export"))
        .filter(|line| !line.contains("obskit::trace::export"))
        .collect();
    assert!(foreign.is_empty(), "{foreign:?}");
    assert_eq!(
        sample(
            &registry,
            "obskit_span_export_failures_total{reason=\"error\"}"
        ),
        3.0
    );
    exporter.shutdown(Duration::from_secs(2)).unwrap();
}
