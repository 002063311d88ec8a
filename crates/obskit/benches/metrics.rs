//! Benchmarks of RED observation, exemplars and exposition, each next to prometheus-client and tikv `prometheus`.
//!
//! Run with `cargo bench -p obskit --bench metrics`.

#![allow(clippy::panic, reason = "a benchmark whose setup fails must stop")]

use divan::{Bencher, black_box};
use obskit::config::MetricsConfig;
use obskit::metrics::{Format, Red, Registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars as ClientHistogramWithExemplars;
use prometheus_client::metrics::family::Family as ClientFamily;
use prometheus_client::metrics::histogram::Histogram as ClientHistogram;

const LABELS: [&str; 3] = ["GET", "/orders/{id}", "200"];
const SERIES: usize = 10_000;
const OTEL_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

type ClientLabels = Vec<(String, String)>;

const TRACE_ID: [u8; 16] = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes();
const SPAN_ID: [u8; 8] = 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes();

/// Exemplar labels as a prometheus-client user declares them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientTraceLabels {
    trace_id: String,
    span_id: String,
}

impl ClientTraceLabels {
    /// Formats the ids as hex, as a caller holding raw ids must for every observation.
    fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        Self {
            trace_id: format!("{:032x}", u128::from_be_bytes(trace_id)),
            span_id: format!("{:016x}", u64::from_be_bytes(span_id)),
        }
    }
}

fn main() {
    divan::main();
}

fn client_labels(values: [&str; 3]) -> ClientLabels {
    ["method", "route", "status"]
        .iter()
        .zip(values)
        .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
        .collect()
}

/// Registers a RED family with a spread of label sets so the lookup is not in a tiny map.
fn obskit_red() -> Red<3> {
    let registry = Registry::new(&MetricsConfig {
        process_metrics: false,
        ..MetricsConfig::default()
    });
    let red = Red::register(&registry, "bench", ["method", "route", "status"])
        .unwrap_or_else(|error| panic!("{error}"));
    for index in 0..100 {
        red.observe(&["GET", &format!("/route/{index}"), "200"], 0.01, false);
    }
    red
}

mod red_observe {
    use super::*;

    // Every function here runs 1000 samples of 1000 iterations, so the peers are measured alike.

    /// Measures one lookup, then requests, errors and duration of the label set.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn obskit_red(bencher: Bencher<'_, '_>) {
        let red = super::obskit_red();
        bencher.bench_local(|| red.observe(black_box(&LABELS), black_box(0.042), black_box(false)));
    }

    /// Measures a handle bound to the label set ahead of time, so without a lookup.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn obskit_red_bound(bencher: Bencher<'_, '_>) {
        let handle = super::obskit_red().get(&LABELS);
        bencher.bench_local(|| handle.observe(black_box(0.042), black_box(false)));
    }

    /// prometheus-client families with a label key built once outside the loop.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn prometheus_client(bencher: Bencher<'_, '_>) {
        let requests = ClientFamily::<ClientLabels, ClientCounter>::default();
        let durations = ClientFamily::<ClientLabels, ClientHistogram>::new_with_constructor(|| {
            ClientHistogram::new(OTEL_BUCKETS)
        });
        for index in 0..100 {
            let labels = client_labels(["GET", &format!("/route/{index}"), "200"]);
            requests.get_or_create(&labels).inc();
            durations.get_or_create(&labels).observe(0.01);
        }
        let labels = client_labels(LABELS);
        bencher.bench_local(|| {
            let labels = black_box(&labels);
            requests.get_or_create(labels).inc();
            durations.get_or_create(labels).observe(black_box(0.042));
        });
    }

    /// Measures one lookup and the three RED metrics, with the observation made the exemplar of
    /// its duration bucket.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn obskit_red_exemplar(bencher: Bencher<'_, '_>) {
        let red = super::obskit_red();
        bencher.bench_local(|| {
            red.observe_with_exemplar(
                black_box(&LABELS),
                black_box(0.042),
                black_box(false),
                black_box(TRACE_ID),
                black_box(SPAN_ID),
            );
        });
    }

    /// Measures a bound handle with the observation made the exemplar of its bucket.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn obskit_red_bound_exemplar(bencher: Bencher<'_, '_>) {
        let handle = super::obskit_red().get(&LABELS);
        bencher.bench_local(|| {
            handle.observe_with_exemplar(
                black_box(0.042),
                black_box(false),
                black_box(TRACE_ID),
                black_box(SPAN_ID),
            );
        });
    }

    /// prometheus-client counter and `HistogramWithExemplars` families, with the exemplar label
    /// set built from the raw ids on each observation.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn prometheus_client_exemplar(bencher: Bencher<'_, '_>) {
        let requests = ClientFamily::<ClientLabels, ClientCounter>::default();
        let durations = ClientFamily::<
            ClientLabels,
            ClientHistogramWithExemplars<ClientTraceLabels>,
        >::new_with_constructor(|| {
            ClientHistogramWithExemplars::new(OTEL_BUCKETS.into_iter())
        });
        for index in 0..100 {
            let labels = client_labels(["GET", &format!("/route/{index}"), "200"]);
            requests.get_or_create(&labels).inc();
            durations.get_or_create(&labels).observe(0.01, None, None);
        }
        let labels = client_labels(LABELS);
        bencher.bench_local(|| {
            let labels = black_box(&labels);
            requests.get_or_create(labels).inc();
            let exemplar = ClientTraceLabels::new(black_box(TRACE_ID), black_box(SPAN_ID));
            durations.get_or_create(labels).observe(
                black_box(0.042),
                Some(exemplar),
                Some(std::time::SystemTime::now()),
            );
        });
    }

    /// tikv `prometheus` vectors, which take `&[&str]` label values like obskit.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn tikv_prometheus(bencher: Bencher<'_, '_>) {
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new("bench_requests_total", "Requests."),
            &["method", "route", "status"],
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let durations = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new("bench_duration_seconds", "Durations.")
                .buckets(OTEL_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )
        .unwrap_or_else(|error| panic!("{error}"));
        for index in 0..100 {
            let route = format!("/route/{index}");
            requests.with_label_values(&["GET", &route, "200"]).inc();
            durations
                .with_label_values(&["GET", &route, "200"])
                .observe(0.01);
        }
        bencher.bench_local(|| {
            let labels = black_box(&LABELS);
            requests.with_label_values(labels).inc();
            durations
                .with_label_values(labels)
                .observe(black_box(0.042));
        });
    }
}

/// RED observation with obskit's `OtelLayer` in the subscriber, so every histogram observation
/// looks for a sampled current span to take as exemplar.
mod red_observe_with_bridge {
    use std::sync::Arc;

    use obskit::trace::{OtelLayer, Sampler, SpanSink};
    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::trace::SpanData;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    struct Discard;

    impl SpanSink for Discard {
        fn send(&self, span: SpanData) {
            black_box(span);
        }
    }

    fn bridge(sampler: Sampler) -> tracing::Dispatch {
        let layer = OtelLayer::new(
            sampler,
            Arc::new(Discard),
            InstrumentationScope::builder("bench").build(),
        );
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
    }

    /// Runs `observe` in a loop under a bridge with `sampler`, inside an entered span or not.
    fn bench_red(bencher: Bencher<'_, '_>, sampler: Sampler, in_span: bool) {
        let red = super::obskit_red();
        tracing::dispatcher::with_default(&bridge(sampler), || {
            let _span = in_span.then(|| tracing::info_span!("request").entered());
            bencher.bench_local(|| {
                red.observe(black_box(&LABELS), black_box(0.042), black_box(false));
            });
        });
    }

    /// Measures an observation outside any span while no sampled span is open.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn outside_span(bencher: Bencher<'_, '_>) {
        bench_red(bencher, Sampler::AlwaysOn, false);
    }

    /// Measures an observation inside an unsampled span while no sampled span is open.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn unsampled_span(bencher: Bencher<'_, '_>) {
        bench_red(bencher, Sampler::ParentBasedAlwaysOff, true);
    }

    /// Measures the same while a sampled span is open elsewhere, as on a server that samples
    /// some of its concurrent requests.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn unsampled_span_with_sampled_elsewhere(bencher: Bencher<'_, '_>) {
        let elsewhere = tracing::dispatcher::with_default(&bridge(Sampler::AlwaysOn), || {
            tracing::info_span!("elsewhere")
        });
        bench_red(bencher, Sampler::ParentBasedAlwaysOff, true);
        drop(elsewhere);
    }

    /// Measures an observation inside a sampled span, which stores it as its bucket's exemplar.
    #[divan::bench(sample_count = 1000, sample_size = 1000)]
    fn sampled_span(bencher: Bencher<'_, '_>) {
        bench_red(bencher, Sampler::AlwaysOn, true);
    }
}

mod encode_10k_series {
    use super::*;

    fn obskit_registry() -> Registry {
        let registry = Registry::new(&MetricsConfig {
            max_series_per_metric: SERIES,
            process_metrics: false,
            ..MetricsConfig::default()
        });
        let family = registry
            .counter_family("bench_requests", "Requests.", ["method", "route"])
            .unwrap_or_else(|error| panic!("{error}"));
        for index in 0..SERIES {
            family.inc_by(&["GET", &format!("/route/{index}")], index as u64);
        }
        registry
    }

    fn client_registry() -> prometheus_client::registry::Registry {
        let mut registry = prometheus_client::registry::Registry::default();
        let family = ClientFamily::<Vec<(String, String)>, ClientCounter>::default();
        for index in 0..SERIES {
            let labels = vec![
                ("method".to_owned(), "GET".to_owned()),
                ("route".to_owned(), format!("/route/{index}")),
            ];
            family.get_or_create(&labels).inc_by(index as u64);
        }
        registry.register("bench_requests", "Requests", family);
        registry
    }

    #[divan::bench(args = [Format::PrometheusText, Format::OpenMetrics])]
    fn obskit(bencher: Bencher<'_, '_>, format: Format) {
        let registry = obskit_registry();
        let mut buffer = String::new();
        bencher.bench_local(|| {
            buffer.clear();
            registry
                .encode_into(format, &mut buffer)
                .unwrap_or_else(|error| panic!("{error}"));
            black_box(buffer.len())
        });
    }

    #[divan::bench(args = [Format::PrometheusText, Format::OpenMetrics])]
    fn prometheus_client(bencher: Bencher<'_, '_>, format: Format) {
        let registry = client_registry();
        let mut buffer = String::new();
        bencher.bench_local(|| {
            buffer.clear();
            let encoded = match format {
                Format::PrometheusText => {
                    prometheus_client::encoding::prometheus_text::encode(&mut buffer, &registry)
                }
                Format::OpenMetrics => {
                    prometheus_client::encoding::text::encode(&mut buffer, &registry)
                }
            };
            encoded.unwrap_or_else(|error| panic!("{error}"));
            black_box(buffer.len())
        });
    }

    /// tikv `prometheus` text encoder (format 0.0.4 only).
    #[divan::bench]
    fn tikv_prometheus(bencher: Bencher<'_, '_>) {
        use prometheus::Encoder;

        let registry = prometheus::Registry::new();
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new("bench_requests_total", "Requests."),
            &["method", "route"],
        )
        .unwrap_or_else(|error| panic!("{error}"));
        for index in 0..SERIES {
            requests
                .with_label_values(&["GET", &format!("/route/{index}")])
                .inc_by(index as u64);
        }
        registry
            .register(Box::new(requests))
            .unwrap_or_else(|error| panic!("{error}"));
        let encoder = prometheus::TextEncoder::new();
        let mut buffer = Vec::new();
        bencher.bench_local(|| {
            buffer.clear();
            encoder
                .encode(&registry.gather(), &mut buffer)
                .unwrap_or_else(|error| panic!("{error}"));
            black_box(buffer.len())
        });
    }
}

mod encode_1k_histograms {
    use super::*;

    const HISTOGRAMS: usize = 1000;

    /// Encodes 1000 histogram series in OpenMetrics; with `true` each has an exemplar in one
    /// bucket, so the run shows the cost of writing exemplars.
    #[divan::bench(args = [false, true])]
    fn obskit(bencher: Bencher<'_, '_>, with_exemplars: bool) {
        let registry = Registry::new(&MetricsConfig {
            process_metrics: false,
            ..MetricsConfig::default()
        });
        let family = registry
            .histogram_family(
                "bench_duration_seconds",
                "Durations.",
                ["route"],
                obskit::metrics::Buckets::default(),
            )
            .unwrap_or_else(|error| panic!("{error}"));
        for index in 0..HISTOGRAMS {
            let route = format!("/route/{index}");
            if with_exemplars {
                family.observe_with_exemplar(&[&route], 0.042, TRACE_ID, SPAN_ID);
            } else {
                family.observe(&[&route], 0.042);
            }
        }
        let mut buffer = String::new();
        bencher.bench_local(|| {
            buffer.clear();
            registry
                .encode_into(Format::OpenMetrics, &mut buffer)
                .unwrap_or_else(|error| panic!("{error}"));
            black_box(buffer.len())
        });
    }

    /// prometheus-client `HistogramWithExemplars` family with one exemplar per series.
    #[divan::bench]
    fn prometheus_client(bencher: Bencher<'_, '_>) {
        let mut registry = prometheus_client::registry::Registry::default();
        let family = ClientFamily::<
            Vec<(String, String)>,
            ClientHistogramWithExemplars<ClientTraceLabels>,
        >::new_with_constructor(|| {
            ClientHistogramWithExemplars::new(OTEL_BUCKETS.into_iter())
        });
        for index in 0..HISTOGRAMS {
            let labels = vec![("route".to_owned(), format!("/route/{index}"))];
            family.get_or_create(&labels).observe(
                0.042,
                Some(ClientTraceLabels::new(TRACE_ID, SPAN_ID)),
                Some(std::time::SystemTime::now()),
            );
        }
        registry.register("bench_duration_seconds", "Durations", family);
        let mut buffer = String::new();
        bencher.bench_local(|| {
            buffer.clear();
            prometheus_client::encoding::text::encode(&mut buffer, &registry)
                .unwrap_or_else(|error| panic!("{error}"));
            black_box(buffer.len())
        });
    }
}
