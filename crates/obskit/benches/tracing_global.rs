//! The unsampled span lifecycle (create, enter, record, exit, drop) with each subscriber set as
//! the global default, the way `obskit::init` sets it up, for a root span and for a child of an
//! entered span.
//!
//! `tracing.rs` sets each subscriber with `with_default`, which makes every span creation look
//! up the thread's scoped dispatcher and clone it. A process has one global default, so this
//! benchmark runs once per subscriber, each time in a new process of its own binary:
//! - `noop_layer`: a `Registry` with a layer that does nothing, the floor for any layer;
//! - `obskit_parent_based`: obskit's `OtelLayer` with `parentbased_always_off`;
//! - `obskit_always_off`: obskit's `OtelLayer` with `always_off`;
//! - `tracing_opentelemetry_parent_based`: tracing-opentelemetry 0.34 on the OpenTelemetry SDK
//!   with `ParentBased(AlwaysOff)`, without the location, thread and busy/idle time attributes
//!   that obskit does not record;
//! - `tracing_opentelemetry_always_off`: the same with `AlwaysOff`.
//!
//! Run it with `cargo bench -p obskit --bench tracing_global`; arguments after `--` go to each
//! run, so `-- child` measures only the child spans.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::sync::Arc;

use divan::Bencher;
use obskit::trace::{OtelLayer, Sampler, SpanSink};
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/span_lifecycle.rs"]
mod span_lifecycle;

use span_lifecycle::lifecycle;

/// The environment variable that names the subscriber of a run.
const SUBSCRIBER: &str = "OBSKIT_BENCH_SUBSCRIBER";

const SUBSCRIBERS: [&str; 5] = [
    "noop_layer",
    "obskit_parent_based",
    "obskit_always_off",
    "tracing_opentelemetry_parent_based",
    "tracing_opentelemetry_always_off",
];

fn main() {
    let Ok(name) = std::env::var(SUBSCRIBER) else {
        run_each_subscriber();
        return;
    };
    let dispatch = subscriber(&name);
    tracing::dispatcher::set_global_default(dispatch).expect("no global default is set yet");
    divan::main();
}

/// Runs this binary once per subscriber, with the same arguments.
fn run_each_subscriber() {
    let binary = std::env::current_exe().expect("the benchmark binary has a path");
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for name in SUBSCRIBERS {
        println!("subscriber: {name} (global default)");
        let status = std::process::Command::new(&binary)
            .args(&arguments)
            .env(SUBSCRIBER, name)
            .status()
            .expect("the benchmark binary starts");
        assert!(status.success(), "the run with {name} failed: {status}");
    }
}

struct NoopSink;

impl SpanSink for NoopSink {
    fn send(&self, span: SpanData) {
        divan::black_box(span);
    }
}

/// A layer that does nothing: what the registry and the layer plumbing cost on their own.
struct NoopLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

fn obskit(sampler: Sampler) -> tracing::Dispatch {
    let layer = OtelLayer::new(
        sampler,
        Arc::new(NoopSink),
        InstrumentationScope::builder("bench").build(),
    );
    tracing_subscriber::registry().with(layer).into()
}

fn peer(sampler: opentelemetry_sdk::trace::Sampler) -> tracing::Dispatch {
    let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bench"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    // The provider lives as long as the process, like the subscriber.
    std::mem::forget(provider);
    tracing_subscriber::registry().with(layer).into()
}

fn subscriber(name: &str) -> tracing::Dispatch {
    use opentelemetry_sdk::trace::Sampler as SdkSampler;
    match name {
        "noop_layer" => tracing_subscriber::registry().with(NoopLayer).into(),
        "obskit_parent_based" => obskit(Sampler::ParentBasedAlwaysOff),
        "obskit_always_off" => obskit(Sampler::AlwaysOff),
        "tracing_opentelemetry_parent_based" => {
            peer(SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)))
        }
        "tracing_opentelemetry_always_off" => peer(SdkSampler::AlwaysOff),
        other => panic!("unknown {SUBSCRIBER} {other:?}; use one of {SUBSCRIBERS:?}"),
    }
}

/// Measures an unsampled root span.
#[divan::bench(sample_count = 1000, sample_size = 400)]
fn root(bencher: Bencher<'_, '_>) {
    bencher.bench_local(lifecycle);
}

/// Measures a child of an entered, unsampled span.
#[divan::bench(sample_count = 1000, sample_size = 400)]
fn child(bencher: Bencher<'_, '_>) {
    let _parent = tracing::info_span!("parent").entered();
    bencher.bench_local(lifecycle);
}
