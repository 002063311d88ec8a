//! Cost of handing one finished span to the exporter: obskit's `BatchExporter::send` against
//! the OpenTelemetry SDK's `BatchSpanProcessor::on_end`.
//!
//! Both queue into a dedicated thread whose exporter discards the batch, with the same queue
//! size, batch size and schedule delay. Both drop and count spans when their queue is full, so
//! the figures include that path when the export thread falls behind.

#![allow(clippy::expect_used, reason = "benchmark setup")]

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use divan::Bencher;
use obskit::config::BatchConfig;
use obskit::metrics::Registry;
use obskit::trace::{BatchExporter, SpanSink as _};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanExporter, SpanLinks,
    SpanProcessor as _,
};

fn main() {
    divan::main();
}

const QUEUE: usize = 1 << 16;
const BATCH: usize = 512;
const DELAY: Duration = Duration::from_millis(200);

/// Accepts every batch and discards it.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

/// Builds a server span with four attributes, like the ones the `tracing` bridge produces.
fn span() -> SpanData {
    let now = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /orders/{id}"),
        start_time: now,
        end_time: now,
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new("url.scheme", "https"),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("obskit").build(),
    }
}

#[divan::bench(sample_count = 1000, sample_size = 64)]
fn obskit_batch_exporter_send(bencher: Bencher<'_, '_>) {
    let registry = Registry::default();
    let batch = BatchConfig {
        max_queue_size: QUEUE,
        max_export_batch_size: BATCH,
        schedule_delay: DELAY,
        export_timeout: Duration::from_secs(30),
    };
    let exporter = BatchExporter::with_exporter(
        Discard,
        Resource::builder_empty().build(),
        &batch,
        &registry,
    )
    .expect("exporter starts");
    let template = span();

    bencher
        .with_inputs(|| template.clone())
        .bench_local_values(|span| exporter.send(span));

    exporter
        .shutdown(Duration::from_secs(5))
        .expect("exporter stops");
}

#[divan::bench(sample_count = 1000, sample_size = 64)]
fn sdk_batch_span_processor_on_end(bencher: Bencher<'_, '_>) {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(QUEUE)
        .with_max_export_batch_size(BATCH)
        .with_scheduled_delay(DELAY)
        .build();
    let processor = BatchSpanProcessor::builder(Discard)
        .with_batch_config(config)
        .build();
    let template = span();

    bencher
        .with_inputs(|| template.clone())
        .bench_local_values(|span| processor.on_end(span));

    processor
        .shutdown_with_timeout(Duration::from_secs(5))
        .expect("processor stops");
}
