//! One span lifecycle (create, enter, record, exit, drop) through obskit's `OtelLayer` next to
//! tracing-opentelemetry 0.34 on the OpenTelemetry SDK, unsampled and sampled.
//!
//! Every subscriber is a `Registry` with one layer, set for the benchmark thread with
//! `with_default`. Sampled spans go to:
//! - obskit `noop_sink`: a sink that drops each span;
//! - obskit `channel_sink`: a bounded channel to a thread that drops the spans, the shape of a
//!   batching exporter;
//! - obskit `batch_exporter`: obskit's `BatchExporter` with an exporter that drops the batch;
//! - tracing-opentelemetry `batch`: the SDK's `BatchSpanProcessor` with an exporter that drops
//!   the batch.
//!
//! Every benchmark runs 1000 samples of 400 iterations: with divan's automatic sample size the
//! first calibration samples, which grow the registry's span slab, made it pick 100 iterations
//! and inflated the medians.
//!
//! Both batch variants use a queue of 65 536 spans, batches of 512 and a 200 ms delay, so the
//! figures measure the hand-off to the export thread and not the drop path.
//!
//! The tracing-opentelemetry benchmarks take `lean`: `false` keeps its defaults, `true` turns off
//! the code location, thread and busy/idle time attributes, which obskit does not record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use divan::Bencher;
use obskit::config::BatchConfig;
use obskit::metrics::Registry;
use obskit::trace::{BatchExporter, OtelLayer, Sampler, SpanSink, current_traceparent};
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/span_lifecycle.rs"]
mod span_lifecycle;

use span_lifecycle::lifecycle;

fn main() {
    divan::main();
}

struct NoopSink;

impl SpanSink for NoopSink {
    fn send(&self, span: SpanData) {
        divan::black_box(span);
    }
}

/// A bounded queue to a draining thread; a full queue drops the span.
struct ChannelSink {
    sender: SyncSender<SpanData>,
}

impl SpanSink for ChannelSink {
    fn send(&self, span: SpanData) {
        let _ = self.sender.try_send(span);
    }
}

fn channel_sink() -> Arc<ChannelSink> {
    let (sender, receiver): (SyncSender<SpanData>, Receiver<SpanData>) = sync_channel(2048);
    std::thread::spawn(move || {
        for span in receiver {
            divan::black_box(span);
        }
    });
    Arc::new(ChannelSink { sender })
}

#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        divan::black_box(batch);
        Ok(())
    }
}

const QUEUE: usize = 1 << 16;
const BATCH: usize = 512;
const DELAY: Duration = Duration::from_millis(200);

/// Starts obskit's batch exporter around [`NoopExporter`].
fn batch_exporter() -> Arc<BatchExporter> {
    let batch = BatchConfig {
        max_queue_size: QUEUE,
        max_export_batch_size: BATCH,
        schedule_delay: DELAY,
        export_timeout: Duration::from_secs(30),
    };
    let exporter = BatchExporter::with_exporter(
        NoopExporter,
        Resource::builder_empty().build(),
        &batch,
        &Registry::default(),
    )
    .expect("exporter starts");
    Arc::new(exporter)
}

fn obskit_layer(sampler: Sampler, sink: Arc<dyn SpanSink>) -> OtelLayer {
    OtelLayer::new(
        sampler,
        sink,
        InstrumentationScope::builder("bench").build(),
    )
}

fn bench_obskit(bencher: Bencher<'_, '_>, layer: OtelLayer) {
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || bencher.bench_local(lifecycle));
}

/// Measures tracing-opentelemetry with its defaults, or `lean` without the location, thread and
/// busy/idle time attributes that obskit does not record.
fn bench_peer(bencher: Bencher<'_, '_>, provider: &SdkTracerProvider, lean: bool) {
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bench"))
        .with_location(!lean)
        .with_threads(!lean)
        .with_tracked_inactivity(!lean);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || bencher.bench_local(lifecycle));
}

mod unsampled {
    use super::*;

    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn registry_only(bencher: Bencher<'_, '_>) {
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            bencher.bench_local(lifecycle);
        });
    }

    /// Measures the registry alone, with the lifecycle as a child of an entered span.
    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn registry_only_child(bencher: Bencher<'_, '_>) {
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let _root = tracing::info_span!("root").entered();
            bencher.bench_local(lifecycle);
        });
    }

    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_always_off(bencher: Bencher<'_, '_>) {
        bench_obskit(
            bencher,
            obskit_layer(Sampler::AlwaysOff, Arc::new(NoopSink)),
        );
    }

    /// Measures an unsampled root under a parent-based sampler, with the defaults.
    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_parent_based_root(bencher: Bencher<'_, '_>) {
        let layer = obskit_layer(Sampler::ParentBasedAlwaysOff, Arc::new(NoopSink));
        bench_obskit(bencher, layer);
    }

    /// Measures an unsampled root under a parent-based ratio sampler that keeps one root in a
    /// billion, so the ratio check runs and practically every root is unsampled.
    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_parent_based_ratio_root(bencher: Bencher<'_, '_>) {
        let layer = obskit_layer(Sampler::ParentBasedTraceIdRatio(1e-9), Arc::new(NoopSink));
        bench_obskit(bencher, layer);
    }

    /// Measures an unsampled root that keeps its fields in case `set_parent` makes it sampled.
    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_parent_based_root_keep_fields(bencher: Bencher<'_, '_>) {
        let layer =
            obskit_layer(Sampler::ParentBasedAlwaysOff, Arc::new(NoopSink)).keep_root_fields(true);
        bench_obskit(bencher, layer);
    }

    /// Measures the lifecycle as a child of an unsampled, entered span.
    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_parent_based_child(bencher: Bencher<'_, '_>) {
        let layer = obskit_layer(Sampler::ParentBasedAlwaysOff, Arc::new(NoopSink));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let _root = tracing::info_span!("root").entered();
            bencher.bench_local(lifecycle);
        });
    }

    #[divan::bench(args = [false, true], sample_count = 1000, sample_size = 400)]
    fn tracing_opentelemetry_always_off(bencher: Bencher<'_, '_>, lean: bool) {
        let provider = SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
            .build();
        bench_peer(bencher, &provider, lean);
    }

    /// Measures the lifecycle as a child of an unsampled, entered span under
    /// `ParentBased(AlwaysOff)`, lean.
    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn tracing_opentelemetry_parent_based_child(bencher: Bencher<'_, '_>) {
        let provider = SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
                opentelemetry_sdk::trace::Sampler::AlwaysOff,
            )))
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("bench"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let _root = tracing::info_span!("root").entered();
            bencher.bench_local(lifecycle);
        });
    }
}

mod sampled {
    use super::*;

    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_noop_sink(bencher: Bencher<'_, '_>) {
        bench_obskit(bencher, obskit_layer(Sampler::AlwaysOn, Arc::new(NoopSink)));
    }

    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_channel_sink(bencher: Bencher<'_, '_>) {
        bench_obskit(bencher, obskit_layer(Sampler::AlwaysOn, channel_sink()));
    }

    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_batch_exporter(bencher: Bencher<'_, '_>) {
        let exporter = batch_exporter();
        bench_obskit(bencher, obskit_layer(Sampler::AlwaysOn, exporter.clone()));
        exporter
            .shutdown(Duration::from_secs(5))
            .expect("exporter stops");
    }

    #[divan::bench(args = [false, true], sample_count = 1000, sample_size = 400)]
    fn tracing_opentelemetry_batch(bencher: Bencher<'_, '_>, lean: bool) {
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE)
            .with_max_export_batch_size(BATCH)
            .with_scheduled_delay(DELAY)
            .build();
        let processor = BatchSpanProcessor::builder(NoopExporter)
            .with_batch_config(config)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
            .with_span_processor(processor)
            .build();
        bench_peer(bencher, &provider, lean);
        let _ = provider.shutdown();
    }
}

mod context {
    use super::*;

    /// Measures reading the current span's ids for an outgoing request.
    #[divan::bench(sample_count = 1000, sample_size = 400)]
    fn obskit_current_traceparent(bencher: Bencher<'_, '_>) {
        let layer = obskit_layer(Sampler::AlwaysOn, Arc::new(NoopSink));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("request").entered();
            bencher.bench_local(current_traceparent);
        });
    }
}
