//! The `tracing` to OpenTelemetry bridge layer, with a collecting span sink.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use obskit::config::{LoggingConfig, ServiceConfig};
use obskit::logging::{self, LogOutput};
use obskit::metrics::Registry;
use obskit::trace::{
    MAX_SPAN_EVENTS, OtelLayer, Sampler, SetParentError, SpanSink, TraceParent, TraceState,
    current_traceparent, current_tracestate, set_parent, with_remote_parent,
};
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, Value};
use opentelemetry_sdk::trace::SpanData;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

const REMOTE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const REMOTE_UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

#[derive(Default)]
struct Collect(Mutex<Vec<SpanData>>);

impl SpanSink for Collect {
    fn send(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }
}

impl Collect {
    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn layer(sampler: Sampler) -> (OtelLayer, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let layer = OtelLayer::new(
        sampler,
        sink.clone(),
        InstrumentationScope::builder("bridge-test")
            .with_version("1.2.3")
            .build(),
    );
    (layer, sink)
}

/// Runs `f` with only the bridge layer and returns the exported spans.
fn collect(sampler: Sampler, f: impl FnOnce()) -> Vec<SpanData> {
    let (layer, sink) = layer(sampler);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    sink.take()
}

fn by_name<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span named {name} in {spans:#?}"))
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| &attribute.value)
}

#[test]
fn child_links_to_parent() {
    let spans = collect(Sampler::AlwaysOn, || {
        let _root = tracing::info_span!("root").entered();
        let _child = tracing::info_span!("child").entered();
    });

    assert_eq!(spans.len(), 2);
    let root = by_name(&spans, "root");
    let child = by_name(&spans, "child");
    assert_eq!(root.parent_span_id, SpanId::INVALID);
    assert_eq!(child.span_context.trace_id(), root.span_context.trace_id());
    assert_eq!(child.parent_span_id, root.span_context.span_id());
    assert_ne!(child.span_context.span_id(), root.span_context.span_id());
    assert!(!child.parent_span_is_remote);
    assert!(root.span_context.is_sampled());
    // Generated trace ids carry the W3C random flag.
    assert_eq!(
        root.span_context.trace_flags().to_u8(),
        TraceParent::SAMPLED | TraceParent::RANDOM
    );
    assert!(root.start_time <= child.start_time);
    assert!(child.end_time <= root.end_time);
    assert_eq!(root.instrumentation_scope.name(), "bridge-test");
    assert_eq!(root.instrumentation_scope.version(), Some("1.2.3"));
}

#[test]
fn explicit_parent_wins_over_current() {
    let spans = collect(Sampler::AlwaysOn, || {
        let other = tracing::info_span!("other");
        let _current = tracing::info_span!("current").entered();
        let _child = tracing::info_span!(parent: &other, "child").entered();
        let _root = tracing::info_span!(parent: None, "detached").entered();
    });

    let other = by_name(&spans, "other");
    let child = by_name(&spans, "child");
    let detached = by_name(&spans, "detached");
    assert_eq!(child.parent_span_id, other.span_context.span_id());
    assert_eq!(detached.parent_span_id, SpanId::INVALID);
    assert_ne!(
        detached.span_context.trace_id(),
        by_name(&spans, "current").span_context.trace_id()
    );
}

#[tracing::instrument(fields(otel.kind = "server"))]
fn handle(order_id: u64, customer: &str) {
    tracing::info!("handled");
}

#[test]
fn instrument_spans_carry_arguments() {
    let spans = collect(Sampler::AlwaysOn, || handle(1042, "alice"));

    let span = by_name(&spans, "handle");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(attribute(span, "order_id"), Some(&Value::I64(1042)));
    assert_eq!(attribute(span, "customer"), Some(&Value::from("alice")));
    assert_eq!(attribute(span, "otel.kind"), None);
    assert_eq!(span.events.len(), 1);
}

#[test]
fn otel_name_overrides_at_creation_and_later() {
    let spans = collect(Sampler::AlwaysOn, || {
        let _fixed = tracing::info_span!("fixed", otel.name = "GET /health").entered();
        let later = tracing::info_span!("later", otel.name = tracing::field::Empty);
        later.record("otel.name", "POST /orders");
    });

    assert!(spans.iter().any(|span| span.name == "GET /health"));
    let later = by_name(&spans, "POST /orders");
    assert_eq!(attribute(later, "otel.name"), None);
}

#[derive(Debug)]
#[expect(dead_code, reason = "the field is read only through Debug")]
struct Point {
    x: i32,
}

#[test]
fn attributes_keep_their_types() {
    let spans = collect(Sampler::AlwaysOn, || {
        let span = tracing::info_span!(
            "typed",
            signed = -7i64,
            unsigned = 7u64,
            huge = u64::MAX,
            ratio = 0.5f64,
            flag = true,
            text = "plain",
            debug = ?Point { x: 3 },
            display = %"shown",
            late = tracing::field::Empty,
        );
        span.record("late", 11);
        span.record("signed", 8);
    });

    let span = by_name(&spans, "typed");
    assert_eq!(attribute(span, "signed"), Some(&Value::I64(8)));
    assert_eq!(attribute(span, "unsigned"), Some(&Value::I64(7)));
    assert_eq!(
        attribute(span, "huge"),
        Some(&Value::from(u64::MAX.to_string()))
    );
    assert_eq!(attribute(span, "ratio"), Some(&Value::F64(0.5)));
    assert_eq!(attribute(span, "flag"), Some(&Value::Bool(true)));
    assert_eq!(attribute(span, "text"), Some(&Value::from("plain")));
    assert_eq!(
        attribute(span, "debug"),
        Some(&Value::from("Point { x: 3 }"))
    );
    assert_eq!(attribute(span, "display"), Some(&Value::from("shown")));
    assert_eq!(attribute(span, "late"), Some(&Value::I64(11)));
    assert_eq!(span.attributes.len(), 9);
}

#[test]
fn events_become_span_events() {
    let spans = collect(Sampler::AlwaysOn, || {
        let _span = tracing::info_span!("work").entered();
        tracing::info!(items = 3, "batch loaded");
        tracing::warn!(
            exception.message = "disk full",
            "exception.type" = "io",
            "write failed"
        );
    });

    let span = by_name(&spans, "work");
    assert_eq!(span.status, Status::Unset);
    assert_eq!(span.events.len(), 2);
    let loaded = &span.events[0];
    assert_eq!(loaded.name, "batch loaded");
    let keys: Vec<_> = loaded.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["items", "level", "target"]);
    assert_eq!(loaded.attributes[0].value, Value::I64(3));
    assert_eq!(loaded.attributes[1].value, Value::from("INFO"));
    let exception = &span.events[1];
    assert_eq!(exception.name, "exception");
    assert!(
        exception
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "message" && kv.value == Value::from("write failed"))
    );
}

#[test]
fn error_events_set_error_status() {
    let spans = collect(Sampler::AlwaysOn, || {
        {
            let _span = tracing::info_span!("by_level").entered();
            tracing::error!("payment declined");
            tracing::error!("second failure");
        }
        {
            let _span = tracing::info_span!("by_field").entered();
            let error = std::io::Error::other("connection reset");
            tracing::warn!(error = &error as &dyn std::error::Error, "retrying");
        }
        {
            let _span = tracing::info_span!("overridden", otel.status_code = "ok").entered();
            tracing::error!("ignored for status");
        }
        {
            let span = tracing::info_span!(
                "explicit",
                otel.status_code = tracing::field::Empty,
                otel.status_message = tracing::field::Empty,
            );
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_message", "quota exceeded");
        }
    });

    assert_eq!(
        by_name(&spans, "by_level").status,
        Status::error("payment declined")
    );
    assert_eq!(
        by_name(&spans, "by_field").status,
        Status::error("connection reset")
    );
    assert_eq!(by_name(&spans, "overridden").status, Status::Ok);
    assert_eq!(
        by_name(&spans, "explicit").status,
        Status::error("quota exceeded")
    );
}

#[test]
fn remote_parent_continues_trace() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let state = TraceState::parse("congo=t61rcWkgMzE").unwrap();
    let mut seen = None;
    let (otel, sink) = layer(Sampler::ParentBasedAlwaysOff);
    let subscriber = tracing_subscriber::registry().with(otel.keep_root_fields(true));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", http.route = "/orders");
        set_parent(&span, &parent, Some(state.clone())).unwrap();
        let _entered = span.enter();
        seen = Some((
            current_traceparent().unwrap(),
            current_tracestate().unwrap(),
        ));
        let _child = tracing::info_span!("query").entered();
    });

    let spans = sink.take();
    let (current, current_state) = seen.unwrap();
    assert_eq!(current.trace_id(), parent.trace_id());
    assert!(current.is_sampled());
    assert_eq!(current_state, state);

    let request = by_name(&spans, "request");
    let query = by_name(&spans, "query");
    assert_eq!(
        request.span_context.trace_id().to_bytes(),
        parent.trace_id()
    );
    assert_eq!(request.parent_span_id.to_bytes(), parent.parent_id());
    assert!(request.parent_span_is_remote);
    assert_eq!(
        current.parent_id(),
        request.span_context.span_id().to_bytes()
    );
    assert_eq!(
        request.span_context.trace_state().get("congo"),
        Some("t61rcWkgMzE")
    );
    // The unsampled root kept its creation fields for the remote decision.
    assert_eq!(
        attribute(request, "http.route"),
        Some(&Value::from("/orders"))
    );
    // The remote parent did not set the random flag, so it is not claimed.
    assert_eq!(
        request.span_context.trace_flags().to_u8(),
        TraceParent::SAMPLED
    );
    assert_eq!(query.parent_span_id, request.span_context.span_id());
    assert!(!query.parent_span_is_remote);
    assert_eq!(
        query.span_context.trace_state().get("congo"),
        Some("t61rcWkgMzE")
    );
}

#[test]
fn unsampled_remote_parent_is_followed() {
    let parent: TraceParent = REMOTE_UNSAMPLED.parse().unwrap();
    let mut current = None;
    let spans = collect(Sampler::ParentBasedAlwaysOn, || {
        let span = tracing::info_span!("request");
        set_parent(&span, &parent, None).unwrap();
        let _entered = span.enter();
        let _child = tracing::info_span!("query").entered();
        current = current_traceparent();
    });

    assert!(spans.is_empty(), "{spans:#?}");
    let current = current.unwrap();
    assert_eq!(current.trace_id(), parent.trace_id());
    assert!(!current.is_sampled());
}

#[test]
fn set_parent_errors() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let (otel, _sink) = layer(Sampler::AlwaysOn);
    // A second, unfiltered layer keeps the DEBUG span alive, so only the bridge misses it.
    let subscriber = tracing_subscriber::registry()
        .with(otel.with_filter(LevelFilter::INFO))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request");
        let _child = tracing::info_span!(parent: &span, "child");
        assert_eq!(
            set_parent(&span, &parent, None),
            Err(SetParentError::HasChildren)
        );
        let debug = tracing::debug_span!("filtered");
        assert_eq!(
            set_parent(&debug, &parent, None),
            Err(SetParentError::NotTracked)
        );
        assert_eq!(
            set_parent(&tracing::Span::none(), &parent, None),
            Err(SetParentError::SpanDisabled)
        );
    });

    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        let span = tracing::info_span!("request");
        assert_eq!(
            set_parent(&span, &parent, None),
            Err(SetParentError::LayerNotFound)
        );
        let _entered = span.enter();
        assert_eq!(current_traceparent(), None);
    });
}

#[test]
fn per_layer_filter_skips_hidden_parents() {
    let (otel, sink) = layer(Sampler::AlwaysOn);
    let subscriber = tracing_subscriber::registry().with(otel.with_filter(LevelFilter::INFO));
    let mut inside_hidden = None;
    tracing::subscriber::with_default(subscriber, || {
        let _outer = tracing::info_span!("outer").entered();
        let _hidden = tracing::debug_span!("hidden").entered();
        inside_hidden = current_traceparent();
        let _inner = tracing::info_span!("inner").entered();
    });

    let spans = sink.take();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let outer = by_name(&spans, "outer");
    assert_eq!(
        by_name(&spans, "inner").parent_span_id,
        outer.span_context.span_id()
    );
    // Inside the hidden span the current context is that of its nearest visible parent.
    assert_eq!(
        inside_hidden.unwrap().parent_id(),
        outer.span_context.span_id().to_bytes()
    );
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn unsampled_logs_carry_ids() {
    let capture = Capture::default();
    let registry = Registry::default();
    let (json, guard) = logging::layer(
        &LoggingConfig::default(),
        &ServiceConfig::default(),
        &registry,
        LogOutput::Writer(Box::new(capture.clone())),
    )
    .unwrap();
    let (otel, sink) = layer(Sampler::AlwaysOff);
    let subscriber = tracing_subscriber::registry().with(json).with(otel);

    let mut ids = None;
    tracing::subscriber::with_default(subscriber, || {
        let _span = tracing::info_span!("request").entered();
        ids = current_traceparent();
        tracing::info!("inside");
    });
    guard.flush().unwrap();

    assert!(sink.take().is_empty());
    let ids = ids.unwrap();
    assert!(!ids.is_sampled());
    let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let line: serde_json::Value = serde_json::from_str(output.lines().next().unwrap()).unwrap();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(line["trace_id"], hex(&ids.trace_id()));
    assert_eq!(line["span_id"], hex(&ids.parent_id()));
}

#[test]
fn ratio_sampler_keeps_its_share() {
    const ROOTS: usize = 4000;
    let spans = collect(Sampler::TraceIdRatio(0.25), || {
        for _ in 0..ROOTS {
            let _span = tracing::info_span!("root").entered();
        }
    });

    // Binomial(4000, 0.25) has mean 1000 and standard deviation about 27, so the bounds allow
    // about 6 deviations.
    assert!((840..=1160).contains(&spans.len()), "kept {}", spans.len());
    for span in &spans {
        let trace_id = span.span_context.trace_id().to_bytes();
        assert!(Sampler::TraceIdRatio(0.25).should_sample(None, &trace_id));
    }
}

#[test]
fn keep_errors_exports_failed_spans_only() {
    let (otel, sink) = layer(Sampler::AlwaysOff);
    let subscriber = tracing_subscriber::registry().with(otel.keep_errors(true));
    tracing::subscriber::with_default(subscriber, || {
        let _root = tracing::info_span!("root", customer = "alice").entered();
        {
            let _fine = tracing::info_span!("fine").entered();
            tracing::info!("all good");
        }
        let _failed = tracing::info_span!("failed", attempt = 2).entered();
        tracing::error!("timed out");
    });

    let spans = sink.take();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let failed = &spans[0];
    assert_eq!(failed.name, "failed");
    assert_eq!(failed.status, Status::error("timed out"));
    assert!(failed.span_context.is_sampled());
    assert_eq!(attribute(failed, "attempt"), Some(&Value::I64(2)));
    assert_eq!(failed.events.len(), 1);
}

#[test]
fn events_over_cap_are_counted() {
    let spans = collect(Sampler::AlwaysOn, || {
        let _span = tracing::info_span!("chatty").entered();
        for index in 0..MAX_SPAN_EVENTS + 72 {
            tracing::info!(index, "tick");
        }
    });

    let span = by_name(&spans, "chatty");
    assert_eq!(span.events.len(), MAX_SPAN_EVENTS);
    assert_eq!(span.events.dropped_count, 72);
}

#[test]
fn unsampled_root_without_parent_exports_nothing() {
    let spans = collect(Sampler::ParentBasedAlwaysOff, || {
        let _span = tracing::info_span!("root", route = "/").entered();
        tracing::info!("not recorded");
        let _child = tracing::info_span!("child").entered();
    });

    assert!(spans.is_empty(), "{spans:#?}");
}

#[test]
fn follows_from_adds_link() {
    let spans = collect(Sampler::AlwaysOn, || {
        let cause = tracing::info_span!("cause");
        let effect = tracing::info_span!("effect");
        effect.follows_from(&cause);
    });

    let cause = by_name(&spans, "cause");
    let effect = by_name(&spans, "effect");
    assert_eq!(effect.links.len(), 1);
    assert_eq!(
        effect.links[0].span_context.span_id(),
        cause.span_context.span_id()
    );
}

#[test]
fn set_parent_sees_children_of_unsampled_span() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let spans = collect(Sampler::AlwaysOff, || {
        let span = tracing::info_span!("request");
        let child = tracing::info_span!(parent: &span, "child");
        assert_eq!(
            set_parent(&span, &parent, None),
            Err(SetParentError::HasChildren)
        );
        assert_eq!(set_parent(&child, &parent, None), Ok(()));
    });

    assert!(spans.is_empty(), "{spans:#?}");
}

#[test]
fn root_fields_dropped_when_not_kept() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let (otel, sink) = layer(Sampler::ParentBasedAlwaysOff);
    let subscriber = tracing_subscriber::registry().with(otel.keep_root_fields(false));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "request",
            http.route = "/orders",
            status = tracing::field::Empty
        );
        set_parent(&span, &parent, None).unwrap();
        span.record("status", 200);
        let _entered = span.enter();
        tracing::info!("after set_parent");
    });

    let spans = sink.take();
    let request = by_name(&spans, "request");
    assert_eq!(attribute(request, "http.route"), None);
    assert_eq!(attribute(request, "status"), Some(&Value::I64(200)));
    assert_eq!(request.events.len(), 1);
    assert!(request.span_context.is_sampled());
}

#[test]
fn current_traceparent_injects_current_span() {
    let mut headers = http::HeaderMap::new();
    let spans = collect(Sampler::AlwaysOn, || {
        let _span = tracing::info_span!("call").entered();
        let parent = current_traceparent().unwrap();
        let state = current_tracestate().unwrap();
        obskit::trace::inject(
            &parent,
            &state,
            &obskit::trace::Baggage::default(),
            &mut headers,
        );
    });

    let call = by_name(&spans, "call");
    let expected = format!(
        "00-{}-{}-03",
        call.span_context.trace_id(),
        call.span_context.span_id()
    );
    assert_eq!(headers["traceparent"], expected.as_str());
    assert!(headers.get("tracestate").is_none());
}

#[test]
fn children_on_many_threads_share_trace() {
    const THREADS: usize = 4;
    const CHILDREN: usize = 50;
    let (otel, sink) = layer(Sampler::AlwaysOn);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(otel));

    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("root");
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let root = root.clone();
                let dispatch = dispatch.clone();
                scope.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for _ in 0..CHILDREN {
                            let _child = tracing::info_span!(parent: &root, "child").entered();
                        }
                    });
                });
            }
        });
    });

    let spans = sink.take();
    assert_eq!(spans.len(), THREADS * CHILDREN + 1);
    let root = by_name(&spans, "root");
    let children: Vec<_> = spans.iter().filter(|span| span.name == "child").collect();
    assert!(
        children
            .iter()
            .all(|child| child.span_context.trace_id() == root.span_context.trace_id())
    );
    assert!(
        children
            .iter()
            .all(|child| child.parent_span_id == root.span_context.span_id())
    );
    let mut span_ids: Vec<_> = spans
        .iter()
        .map(|span| span.span_context.span_id())
        .collect();
    span_ids.sort_unstable_by_key(|id| id.to_bytes());
    span_ids.dedup();
    assert_eq!(span_ids.len(), spans.len(), "span ids are unique");
}

#[test]
fn keep_errors_follows_remote_parent() {
    let parent: TraceParent = REMOTE_UNSAMPLED.parse().unwrap();
    let (otel, sink) = layer(Sampler::ParentBasedAlwaysOn);
    let subscriber = tracing_subscriber::registry().with(otel.keep_errors(true));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", route = "/pay");
        set_parent(&span, &parent, None).unwrap();
        let _entered = span.enter();
        tracing::error!(error = "card declined", "payment failed");
    });

    let spans = sink.take();
    let request = by_name(&spans, "request");
    assert_eq!(request.status, Status::error("card declined"));
    assert_eq!(
        request.span_context.trace_id().to_bytes(),
        parent.trace_id()
    );
    assert!(request.parent_span_is_remote);
    assert!(request.span_context.is_sampled());
    assert_eq!(attribute(request, "route"), Some(&Value::from("/pay")));
}

#[test]
fn with_remote_parent_decides_at_creation() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let state = TraceState::parse("congo=t61rcWkgMzE").unwrap();
    let spans = collect(Sampler::ParentBasedAlwaysOff, || {
        let span = with_remote_parent(&parent, Some(state.clone()), || {
            tracing::info_span!("request", http.route = "/orders")
        });
        // Only the first span takes the remote parent.
        let _unrelated = tracing::info_span!(parent: None, "unrelated");
        let _entered = span.enter();
        let _child = tracing::info_span!("query").entered();
    });

    let request = by_name(&spans, "request");
    assert_eq!(
        request.span_context.trace_id().to_bytes(),
        parent.trace_id()
    );
    assert_eq!(request.parent_span_id.to_bytes(), parent.parent_id());
    assert!(request.parent_span_is_remote);
    assert_eq!(
        request.span_context.trace_state().get("congo"),
        Some("t61rcWkgMzE")
    );
    // Decided at creation, so the creation fields are there without keep_root_fields.
    assert_eq!(
        attribute(request, "http.route"),
        Some(&Value::from("/orders"))
    );
    let query = by_name(&spans, "query");
    assert_eq!(query.parent_span_id, request.span_context.span_id());
    // The root created after the closure is unsampled under ParentBasedAlwaysOff.
    assert!(
        spans.iter().all(|span| span.name != "unrelated"),
        "{spans:#?}"
    );
}

#[test]
fn with_remote_parent_follows_an_unsampled_caller() {
    let parent: TraceParent = REMOTE_UNSAMPLED.parse().unwrap();
    let mut current = None;
    let spans = collect(Sampler::ParentBasedAlwaysOn, || {
        let span = with_remote_parent(&parent, None, || tracing::info_span!("request"));
        let _entered = span.enter();
        current = current_traceparent();
    });
    assert!(spans.is_empty(), "{spans:#?}");
    let current = current.unwrap();
    assert_eq!(current.trace_id(), parent.trace_id());
    assert!(!current.is_sampled());
}

#[test]
fn long_string_values_are_cut_at_char_boundary() {
    let (otel, sink) = layer(Sampler::AlwaysOn);
    let subscriber = tracing_subscriber::registry().with(otel.attribute_value_length_limit(10));
    // "é" is two bytes, so ten bytes end in the middle of the fifth one.
    let long = "ééééééééé";
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("upload", body = long, short = "ok");
        let _entered = span.enter();
        tracing::info!(payload = long, "received");
    });

    let spans = sink.take();
    let upload = by_name(&spans, "upload");
    assert_eq!(attribute(upload, "body"), Some(&Value::from("ééééé")));
    assert_eq!(attribute(upload, "short"), Some(&Value::from("ok")));
    let event = &upload.events.events[0];
    let payload = event
        .attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == "payload")
        .map(|attribute| &attribute.value);
    assert_eq!(payload, Some(&Value::from("ééééé")));
}

/// Checks that exactly two spans were exported: `sampled` and its child `child`.
fn assert_sampled_pair(spans: &[SpanData]) {
    let names: Vec<_> = spans.iter().map(|span| span.name.as_ref()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        by_name(spans, "child").parent_span_id,
        by_name(spans, "sampled").span_context.span_id()
    );
}

/// Checks that exactly one line was logged, with the trace and span ids of `seen`.
fn assert_one_line_with_ids(lines: &[serde_json::Value], seen: &TraceParent) {
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["trace_id"], hex(&seen.trace_id()), "{}", lines[0]);
    assert_eq!(lines[0]["span_id"], hex(&seen.parent_id()), "{}", lines[0]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `f` under the JSON log layer and the bridge, and returns the log lines and the
/// exported spans.
fn logs_and_spans(sampler: Sampler, f: impl FnOnce()) -> (Vec<serde_json::Value>, Vec<SpanData>) {
    let capture = Capture::default();
    let (json, guard) = logging::layer(
        &LoggingConfig::default(),
        &ServiceConfig::default(),
        &Registry::default(),
        LogOutput::Writer(Box::new(capture.clone())),
    )
    .unwrap();
    let (otel, sink) = layer(sampler);
    let subscriber = tracing_subscriber::registry().with(json).with(otel);
    tracing::subscriber::with_default(subscriber, f);
    guard.flush().unwrap();
    (capture.lines(), sink.take())
}

/// Runs `f` under the subscriber that `obskit::init` installs, with the JSON layer and the
/// bridge both directly on the registry, and returns the log lines and the exported spans.
fn installed_logs_and_spans(
    sampler: Sampler,
    f: impl FnOnce(),
) -> (Vec<serde_json::Value>, Vec<SpanData>) {
    let capture = Capture::default();
    let (otel, sink) = layer(sampler);
    let (dispatch, guard) = logging::subscriber_with_spans(
        &LoggingConfig::default(),
        &ServiceConfig::default(),
        &Registry::default(),
        LogOutput::Writer(Box::new(capture.clone())),
        obskit::redact::Redactor::disabled(),
        Some(otel),
    )
    .unwrap();
    tracing::dispatcher::with_default(&dispatch, f);
    guard.flush().unwrap();
    (capture.lines(), sink.take())
}

impl Capture {
    fn lines(&self) -> Vec<serde_json::Value> {
        let output = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        output
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

#[test]
fn unsampled_children_log_span_ids_of_their_own() {
    check_unsampled_children_log_their_ids(|sampler, f| logs_and_spans(sampler, f));
}

#[test]
fn installed_subscriber_logs_quiet_span_ids() {
    check_unsampled_children_log_their_ids(|sampler, f| installed_logs_and_spans(sampler, f));
}

/// Logs in a tree of unsampled spans through `run` and checks each line's ids against
/// `current_traceparent` in the same span.
fn check_unsampled_children_log_their_ids(
    run: impl FnOnce(Sampler, Box<dyn FnOnce() + '_>) -> (Vec<serde_json::Value>, Vec<SpanData>),
) {
    let mut seen = Vec::new();
    let (lines, spans) = run(
        Sampler::ParentBasedAlwaysOff,
        Box::new(|| {
            let _root = tracing::info_span!("request").entered();
            seen.push(current_traceparent().unwrap());
            tracing::info!("root");
            for name in ["first", "second"] {
                let _child = tracing::info_span!("child", name).entered();
                seen.push(current_traceparent().unwrap());
                tracing::info!("child");
                let _grandchild = tracing::info_span!("grandchild").entered();
                seen.push(current_traceparent().unwrap());
                tracing::info!("grandchild");
            }
            // An explicit parent takes the same path as the current span.
            let root = tracing::Span::current();
            let explicit = tracing::info_span!(parent: &root, "explicit");
            let _entered = explicit.enter();
            seen.push(current_traceparent().unwrap());
            tracing::info!("explicit");
        }),
    );

    assert!(spans.is_empty(), "{spans:#?}");
    assert_eq!(lines.len(), seen.len());
    let trace_id = seen[0].trace_id();
    for (line, ids) in lines.iter().zip(&seen) {
        assert!(!ids.is_sampled());
        assert_eq!(ids.trace_id(), trace_id);
        assert_eq!(line["trace_id"], hex(&trace_id), "{line}");
        assert_eq!(line["span_id"], hex(&ids.parent_id()), "{line}");
    }
    let mut span_ids: Vec<_> = seen.iter().map(TraceParent::parent_id).collect();
    span_ids.sort_unstable();
    span_ids.dedup();
    assert_eq!(
        span_ids.len(),
        seen.len(),
        "every span has its own id: {seen:?}"
    );
}

#[test]
fn remote_parent_inside_unsampled_span_is_followed() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let spans = collect(Sampler::ParentBasedAlwaysOff, || {
        let _root = tracing::info_span!("unsampled").entered();
        // The first child makes the thread remember the unsampled root.
        drop(tracing::info_span!("quiet"));
        let span = with_remote_parent(&parent, None, || tracing::info_span!("request"));
        let _entered = span.enter();
        let _child = tracing::info_span!("query").entered();
    });

    assert_eq!(spans.len(), 2, "{spans:#?}");
    let request = by_name(&spans, "request");
    assert_eq!(
        request.span_context.trace_id().to_bytes(),
        parent.trace_id()
    );
    assert_eq!(
        by_name(&spans, "query").parent_span_id,
        request.span_context.span_id()
    );
}

#[test]
fn set_parent_moves_an_unsampled_child() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let mut before = None;
    let spans = collect(Sampler::ParentBasedAlwaysOff, || {
        let _root = tracing::info_span!("unsampled").entered();
        let child = tracing::info_span!("handler");
        {
            let _entered = child.enter();
            before = current_traceparent();
        }
        set_parent(&child, &parent, None).unwrap();
        let _entered = child.enter();
        let _query = tracing::info_span!("query").entered();
    });

    let handler = by_name(&spans, "handler");
    assert_eq!(
        handler.span_context.trace_id().to_bytes(),
        parent.trace_id()
    );
    assert_eq!(handler.parent_span_id.to_bytes(), parent.parent_id());
    // The span leaves its trace, so it takes a new random id.
    assert_ne!(
        handler.span_context.span_id().to_bytes(),
        before.unwrap().parent_id()
    );
    assert_eq!(
        by_name(&spans, "query").parent_span_id,
        handler.span_context.span_id()
    );
}

#[test]
fn closed_unsampled_parent_hides_no_sampled_children() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 300;
    let parent: TraceParent = REMOTE.parse().unwrap();
    let (otel, sink) = layer(Sampler::ParentBasedAlwaysOff);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(otel));

    // Unsampled and sampled roots take turns in the registry's slots, on several threads, so
    // a sampled root often gets a slot that a remembered unsampled root just left.
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let dispatch = dispatch.clone();
            scope.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for _ in 0..ROUNDS {
                        {
                            let _root = tracing::info_span!("unsampled").entered();
                            let _child = tracing::info_span!("quiet").entered();
                        }
                        let root =
                            with_remote_parent(&parent, None, || tracing::info_span!("sampled"));
                        let _entered = root.enter();
                        let _child = tracing::info_span!("child").entered();
                    }
                });
            });
        }
    });

    let spans = sink.take();
    let sampled: Vec<_> = spans.iter().filter(|span| span.name == "sampled").collect();
    let children: Vec<_> = spans.iter().filter(|span| span.name == "child").collect();
    assert_eq!(sampled.len(), THREADS * ROUNDS);
    assert_eq!(children.len(), THREADS * ROUNDS);
    assert_eq!(spans.len(), 2 * THREADS * ROUNDS);
    let mut parents: Vec<_> = sampled
        .iter()
        .map(|span| span.span_context.span_id())
        .collect();
    parents.sort_unstable_by_key(|id| id.to_bytes());
    let mut child_parents: Vec<_> = children.iter().map(|span| span.parent_span_id).collect();
    child_parents.sort_unstable_by_key(|id| id.to_bytes());
    assert_eq!(parents, child_parents);
}

#[test]
fn reused_span_id_not_taken_for_closed_parent() {
    // The registry reuses a slot's span id after its generation counter wraps. Unsampled roots
    // without children take the freed slot in turn until the id of a closed unsampled parent
    // comes back, and then a sampled root gets it.
    const MAX_FILLERS: usize = 1 << 18;
    let parent: TraceParent = REMOTE.parse().unwrap();
    let mut reused = false;
    let spans = collect(Sampler::ParentBasedAlwaysOff, || {
        let closed = {
            let root = tracing::info_span!("unsampled");
            let _entered = root.enter();
            drop(tracing::info_span!("quiet"));
            root.id().unwrap()
        };
        let mut period = None;
        for count in 1..=MAX_FILLERS {
            if tracing::info_span!("filler").id() == Some(closed.clone()) {
                period = Some(count);
                break;
            }
        }
        let period = period.expect("the registry reuses span ids");
        for _ in 1..period {
            drop(tracing::info_span!("filler"));
        }
        let root = with_remote_parent(&parent, None, || tracing::info_span!("sampled"));
        reused = root.id() == Some(closed);
        let _entered = root.enter();
        let _child = tracing::info_span!("child").entered();
    });

    assert!(
        reused,
        "the sampled root did not get the closed parent's id"
    );
    assert_sampled_pair(&spans);
}

#[test]
fn other_registry_span_ids_kept_apart() {
    let (outer, _) = layer(Sampler::ParentBasedAlwaysOff);
    let (inner, sink) = layer(Sampler::ParentBasedAlwaysOn);
    let inner = tracing_subscriber::registry().with(inner);
    let mut ids = None;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(outer), || {
        // The first span of each registry gets the same id.
        let unsampled = tracing::info_span!("unsampled");
        let _entered = unsampled.enter();
        drop(tracing::info_span!("quiet"));
        tracing::subscriber::with_default(inner, || {
            let sampled = tracing::info_span!("sampled");
            ids = Some((unsampled.id(), sampled.id()));
            let _entered = sampled.enter();
            let _child = tracing::info_span!("child").entered();
        });
    });

    let (unsampled, sampled) = ids.unwrap();
    assert_eq!(unsampled, sampled);
    let spans = sink.take();
    assert_sampled_pair(&spans);
}

#[test]
fn reentered_span_leaves_current_span_parent() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let spans = collect(Sampler::ParentBasedAlwaysOff, || {
        let unsampled = tracing::info_span!("unsampled");
        let _entered = unsampled.enter();
        drop(tracing::info_span!("quiet"));
        let sampled = with_remote_parent(&parent, None, || tracing::info_span!("sampled"));
        let _sampled = sampled.enter();
        // Entering the unsampled span a second time leaves the sampled one current.
        let _again = unsampled.enter();
        let _child = tracing::info_span!("child").entered();
    });

    assert_sampled_pair(&spans);
}

/// A layer that enables every span, so a span that a per-layer filter hides from the bridge
/// still exists.
struct EnableAll;

impl<S: tracing::Subscriber> Layer<S> for EnableAll {}

#[test]
fn filtered_out_span_leads_child_to_its_parent() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let (otel, sink) = layer(Sampler::ParentBasedAlwaysOff);
    let subscriber = tracing_subscriber::registry()
        .with(otel.with_filter(LevelFilter::INFO))
        .with(EnableAll);
    tracing::subscriber::with_default(subscriber, || {
        let sampled = with_remote_parent(&parent, None, || tracing::info_span!("sampled"));
        let _unsampled = tracing::info_span!(parent: None, "unsampled").entered();
        drop(tracing::info_span!("quiet"));
        // The hidden span belongs to the sampled trace, and is entered inside the unsampled one.
        let _hidden = tracing::debug_span!(parent: &sampled, "hidden").entered();
        let _child = tracing::info_span!("child").entered();
    });

    let spans = sink.take();
    assert_sampled_pair(&spans);
}

#[test]
fn filtered_bridge_keeps_every_context() {
    let parent: TraceParent = REMOTE.parse().unwrap();
    let (otel, sink) = layer(Sampler::ParentBasedAlwaysOff);
    let subscriber = tracing_subscriber::registry()
        .with(otel.with_filter(LevelFilter::INFO))
        .with(EnableAll);
    tracing::subscriber::with_default(subscriber, || {
        let _unsampled = tracing::info_span!("unsampled").entered();
        drop(tracing::info_span!("first"));
        let hidden = tracing::debug_span!("hidden");
        assert_eq!(
            set_parent(&hidden, &parent, None),
            Err(SetParentError::NotTracked)
        );
        let handler = tracing::info_span!("handler");
        set_parent(&handler, &parent, None).unwrap();
    });

    let spans = sink.take();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(
        by_name(&spans, "handler")
            .span_context
            .trace_id()
            .to_bytes(),
        parent.trace_id()
    );
}

#[test]
fn json_under_hidden_unsampled_root_has_ids() {
    let mut seen = None;
    // The JSON layer's level filter hides the debug root, and the bridge makes `step` quiet.
    let (lines, _) = logs_and_spans(Sampler::ParentBasedAlwaysOff, || {
        let _job = tracing::debug_span!("job").entered();
        let _step = tracing::info_span!("step").entered();
        seen = current_traceparent();
        tracing::info!("inside step");
    });

    let seen = seen.unwrap();
    assert_one_line_with_ids(&lines, &seen);
}

#[test]
fn json_under_hidden_remote_parent_has_its_trace() {
    let remote: TraceParent = REMOTE_UNSAMPLED.parse().unwrap();
    let mut seen = None;
    // A hidden debug span continues an unsampled remote trace inside a sampled local one.
    let (lines, _) = logs_and_spans(Sampler::ParentBasedAlwaysOn, || {
        let _batch = tracing::info_span!("batch").entered();
        let message = with_remote_parent(&remote, None, || tracing::debug_span!("message"));
        let _message = message.enter();
        let _handle = tracing::info_span!("handle").entered();
        seen = current_traceparent();
        tracing::info!("handling");
    });

    let seen = seen.unwrap();
    assert_eq!(seen.trace_id(), remote.trace_id());
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["trace_id"],
        hex(&remote.trace_id()),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["span_id"], hex(&seen.parent_id()), "{}", lines[0]);
}

#[test]
fn follows_from_quiet_span_adds_link() {
    let remote: TraceParent = REMOTE_UNSAMPLED.parse().unwrap();
    let spans = collect(Sampler::ParentBasedAlwaysOn, || {
        let producer = with_remote_parent(&remote, None, || tracing::info_span!("producer"));
        let _producer = producer.enter();
        let publish = tracing::info_span!("publish");
        let consume = tracing::info_span!(parent: None, "consume");
        consume.follows_from(&producer);
        consume.follows_from(&publish);
    });

    let consume = by_name(&spans, "consume");
    let trace_ids: Vec<_> = consume
        .links
        .iter()
        .map(|link| link.span_context.trace_id().to_bytes())
        .collect();
    assert_eq!(trace_ids, vec![remote.trace_id(); 2], "{consume:#?}");
    assert_ne!(
        consume.links[0].span_context.span_id(),
        consume.links[1].span_context.span_id()
    );
}

#[test]
fn exit_returns_to_sampled_parent() {
    let remote: TraceParent = REMOTE.parse().unwrap();
    let spans = collect(Sampler::ParentBasedAlwaysOff, || {
        let unsampled = tracing::info_span!("unsampled");
        let sampled = with_remote_parent(&remote, None, || tracing::info_span!("sampled"));
        let _sampled = sampled.enter();
        // The unsampled span is entered and exited again inside the sampled one.
        unsampled.in_scope(|| drop(tracing::info_span!("quiet")));
        drop(tracing::info_span!("child"));
    });

    assert_sampled_pair(&spans);
}

/// An event directly inside a hidden debug span that continues another (remote) trace, under a
/// visible span of a local sampled trace.
#[test]
fn event_in_hidden_remote_span_has_its_trace() {
    let remote: TraceParent = REMOTE_UNSAMPLED.parse().unwrap();
    let mut seen = None;
    let (lines, _) = logs_and_spans(Sampler::ParentBasedAlwaysOn, || {
        let _batch = tracing::info_span!("batch").entered();
        let message = with_remote_parent(&remote, None, || tracing::debug_span!("message"));
        let _message = message.enter();
        seen = current_traceparent();
        tracing::info!("handling directly in hidden span");
    });
    let seen = seen.unwrap();
    assert_eq!(seen.trace_id(), remote.trace_id());
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["trace_id"],
        hex(&remote.trace_id()),
        "{}",
        lines[0]
    );
}

/// An event directly inside a hidden span with a sampled remote parent. The span is exported,
/// so the log line is expected to carry its trace id and span id.
#[test]
fn event_in_hidden_sampled_span_has_its_ids() {
    let remote: TraceParent = REMOTE.parse().unwrap();
    let mut seen = None;
    let (lines, spans) = logs_and_spans(Sampler::ParentBasedAlwaysOff, || {
        let _batch = tracing::info_span!("batch").entered();
        let message = with_remote_parent(&remote, None, || tracing::debug_span!("message"));
        let _message = message.enter();
        seen = current_traceparent();
        tracing::info!("handling directly in hidden span");
    });
    let seen = seen.unwrap();
    let message = by_name(&spans, "message");
    assert_eq!(message.span_context.span_id().to_bytes(), seen.parent_id());
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["trace_id"],
        hex(&remote.trace_id()),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["span_id"], hex(&seen.parent_id()), "{}", lines[0]);
}

/// An event directly inside a hidden quiet debug span under a visible unsampled root.
#[test]
fn event_in_hidden_quiet_span_has_its_ids() {
    let mut seen = None;
    let (lines, _) = logs_and_spans(Sampler::ParentBasedAlwaysOff, || {
        let _root = tracing::info_span!("root").entered();
        let _quiet = tracing::debug_span!("quiet").entered();
        seen = current_traceparent();
        tracing::info!("in hidden quiet span");
    });
    let seen = seen.unwrap();
    assert_one_line_with_ids(&lines, &seen);
}

/// An event with an explicit parent that the JSON layer's filter hides.
#[test]
fn event_with_hidden_explicit_parent_has_ids() {
    let mut seen = None;
    let (lines, _) = logs_and_spans(Sampler::ParentBasedAlwaysOff, || {
        let root = tracing::info_span!("root");
        let hidden = tracing::debug_span!(parent: &root, "hidden");
        hidden.in_scope(|| seen = current_traceparent());
        tracing::info!(parent: &hidden, "explicit hidden parent");
    });
    let seen = seen.unwrap();
    assert_one_line_with_ids(&lines, &seen);
}
