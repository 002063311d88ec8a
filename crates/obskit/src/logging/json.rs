//! The JSON formatter layer: one hand-written JSON object per event.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tracing::dispatcher::WeakDispatch;
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer, Layered};
use tracing_subscriber::registry::LookupSpan;

use super::escape;
use super::fields::{FieldWriter, SpanFields, TrustedField, TrustedValues};
use super::keys;
use super::time;
use super::writer::Queue;
use super::{ACCESS_TARGET, REQUEST_SPAN_NAME, REQUEST_SPAN_TARGET};
use crate::config::ServiceConfig;
use crate::redact::Redactor;

/// Trace and span ids of the current span, written as `trace_id` and `span_id`.
///
/// The JSON layer looks for this type in the extensions of the event's span and then its
/// parents, and uses the first one it finds. An unsampled child that obskit's
/// [`OtelLayer`](crate::trace::OtelLayer) gave no context of its own gets its parent's trace id
/// and a span id derived from its own `tracing` span id and its parent's span id. Other layers that read this type find
/// none on such a span, and should use
/// [`current_traceparent`](crate::trace::current_traceparent) instead. Insert it from the layer
/// that creates or propagates trace context:
///
/// ```
/// use obskit::logging::TraceContext;
/// use tracing_subscriber::registry::LookupSpan;
///
/// fn attach<S: for<'a> LookupSpan<'a>>(span: tracing_subscriber::registry::SpanRef<'_, S>) {
///     span.extensions_mut().insert(TraceContext {
///         trace_id: [0x4b; 16],
///         span_id: [0x1f; 8],
///     });
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// W3C trace id, written as 32 lowercase hex digits.
    pub trace_id: [u8; 16],
    /// W3C span id (parent id), written as 16 lowercase hex digits.
    pub span_id: [u8; 8],
}

/// Fields of the access event whose values the middleware produces itself: a known HTTP method,
/// the route template and a fixed message. They are written without scanning for secrets. The
/// path, the client address, an extension method and the other fields are scanned.
const ACCESS_TRUSTED_FIELDS: &[TrustedField] = &[
    TrustedField {
        name: "http.request.method",
        values: TrustedValues::KnownMethods,
    },
    TrustedField {
        name: "http.route",
        values: TrustedValues::All,
    },
    TrustedField {
        name: "message",
        values: TrustedValues::All,
    },
];

/// Fields of the middleware's request span that are written without scanning: the access
/// event's known HTTP method and route template, without its message. The request id, which the
/// client may have sent, is scanned.
const REQUEST_SPAN_TRUSTED_FIELDS: &[TrustedField] = ACCESS_TRUSTED_FIELDS.split_at(2).0;

/// Returns the fields of the callsite `metadata` that obskit's HTTP middleware fills with values
/// it produced itself.
fn trusted_fields(metadata: &Metadata<'_>) -> &'static [TrustedField] {
    let target = metadata.target();
    if target == ACCESS_TARGET {
        ACCESS_TRUSTED_FIELDS
    } else if target == REQUEST_SPAN_TARGET && metadata.name() == REQUEST_SPAN_NAME {
        REQUEST_SPAN_TRUSTED_FIELDS
    } else {
        &[]
    }
}

/// Reusable buffers for formatting one event.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    fields: Vec<u8>,
    message: Vec<u8>,
    names: Vec<(&'static str, usize)>,
}

/// Scratch buffers that grew above this size for one large event are released afterwards.
const MAX_RETAINED_SCRATCH_BYTES: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Formats events as JSON lines into the writer queue.
pub(crate) struct JsonLayer {
    queue: Arc<Queue>,
    redactor: Redactor,
    /// `,"service":"…","environment":"…","version":"…"`, escaped once.
    service: Box<[u8]>,
    /// Whether the layer sits directly on its subscriber, with no per-layer filter that hides
    /// spans from it.
    sees_every_span: AtomicBool,
    /// The subscriber the layer is part of, to look up the trace context of a span whose
    /// ancestors a per-layer filter hides from this layer.
    dispatch: OnceLock<WeakDispatch>,
}

impl JsonLayer {
    pub(crate) fn new(queue: Arc<Queue>, service: &ServiceConfig, redactor: Redactor) -> Self {
        let mut fragment = Vec::new();
        for (key, value) in [
            ("service", &service.name),
            ("environment", &service.environment),
            ("version", &service.version),
        ] {
            fragment.extend_from_slice(b",\"");
            fragment.extend_from_slice(key.as_bytes());
            fragment.extend_from_slice(b"\":");
            escape::write_string(&mut fragment, value);
        }
        Self {
            queue,
            redactor,
            service: fragment.into_boxed_slice(),
            sees_every_span: AtomicBool::new(false),
            dispatch: OnceLock::new(),
        }
    }

    fn format<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, scratch: &mut Scratch)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Scratch {
            line,
            fields,
            message,
            names,
        } = scratch;
        line.clear();
        fields.clear();
        message.clear();
        names.clear();

        // `is_log` compares callsites, which skips building and moving the `Option<Metadata>`
        // for events that do not come from `log` records.
        let normalized = if event.is_log() {
            event.normalized_metadata()
        } else {
            None
        };
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let trusted = trusted_fields(metadata);
        // Events converted from `log` records share one callsite whose fields vary, so their
        // keys are rendered each time.
        let keys = match normalized {
            Some(_) => None,
            None => keys::for_callsite(event.metadata(), &self.redactor, trusted),
        };
        event.record(&mut FieldWriter {
            out: fields,
            message: Some(message),
            entries: names,
            skip_log_fields: normalized.is_some(),
            redactor: &self.redactor,
            trusted,
            keys: keys.as_deref(),
        });

        line.extend_from_slice(b"{\"timestamp\":\"");
        time::write_now(line);
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(level_name(metadata.level()));
        line.extend_from_slice(b"\",\"target\":");
        match &normalized {
            // A `log` record's target lives only as long as the record.
            Some(normalized) => escape::write_string(line, normalized.target()),
            None => {
                line.push(b'"');
                escape::escape_static_into(line, event.metadata().target());
                line.push(b'"');
            }
        }
        line.extend_from_slice(b",\"message\":\"");
        line.extend_from_slice(message);
        line.push(b'"');
        line.extend_from_slice(&self.service);
        line.extend_from_slice(fields);

        let mut trace = None;
        // The event's span, when it has no trace context of its own.
        let mut first = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                let extensions = span.extensions();
                if let Some(span_fields) = extensions.get::<SpanFields>() {
                    for (name, entry) in span_fields.entries() {
                        if !names.iter().any(|(seen, _)| same_name(seen, name)) {
                            names.push((name, 0));
                            line.extend_from_slice(entry);
                        }
                    }
                }
                if trace.is_none() {
                    trace = extensions.get::<TraceContext>().copied();
                    match (trace, &first) {
                        // An unsampled child that the bridge gave no state of its own has a
                        // span id derived from its `tracing` id and this span's id.
                        (Some(_), Some(first)) => {
                            if let Some(quiet) =
                                crate::trace::bridge::quiet_descendant_context(&extensions, first)
                            {
                                trace = Some(quiet);
                            }
                        }
                        (None, None) => first = Some(span.id()),
                        _ => {}
                    }
                }
            }
        }
        // A per-layer filter may hide the event's span, or spans between it and the context,
        // from this layer. The bridge then resolves the context of the event's span as the
        // registry sees it.
        if !self.sees_every_span.load(Ordering::Relaxed)
            && let Some(exact) = self.registry_context(event, ctx)
        {
            trace = Some(exact);
        }

        if let Some(trace) = trace {
            line.extend_from_slice(b",\"trace_id\":");
            escape::write_hex(line, &trace.trace_id);
            line.extend_from_slice(b",\"span_id\":");
            escape::write_hex(line, &trace.span_id);
        }
        line.extend_from_slice(b"}\n");
    }
}

/// Compares field names by address first, so the same name from one callsite, or a literal that
/// the compiler merged, matches without a byte comparison.
fn same_name(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

fn level_name(level: &Level) -> &'static [u8] {
    match *level {
        Level::ERROR => b"ERROR",
        Level::WARN => b"WARN",
        Level::INFO => b"INFO",
        Level::DEBUG => b"DEBUG",
        Level::TRACE => b"TRACE",
    }
}

impl JsonLayer {
    /// Returns the trace context of the event's span as the unfiltered registry sees it: the
    /// explicit parent, else the current span. Returns `None` without a span, without a bridge,
    /// or once the subscriber is gone.
    fn registry_context<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> Option<TraceContext>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = if event.is_contextual() {
            ctx.current_span().id().cloned()
        } else {
            event.parent().cloned()
        }?;
        let dispatch = self.dispatch.get()?.upgrade()?;
        crate::trace::bridge::trace_context_of(&dispatch, &span)
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let direct = dispatch.downcast_ref::<Layered<JsonLayer, S>>().is_some();
        self.sees_every_span.store(direct, Ordering::Relaxed);
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let trusted = trusted_fields(attrs.metadata());
        let keys = keys::for_callsite(attrs.metadata(), &self.redactor, trusted);
        let keys = keys.as_deref();
        let mut extensions = span.extensions_mut();
        if let Some(existing) = extensions.get_mut::<SpanFields>() {
            existing.update(attrs, &self.redactor, trusted, keys);
        } else {
            extensions.insert(SpanFields::render(attrs, &self.redactor, trusted, keys));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let trusted = trusted_fields(span.metadata());
        let keys = keys::for_callsite(span.metadata(), &self.redactor, trusted);
        let keys = keys.as_deref();
        let mut extensions = span.extensions_mut();
        if let Some(existing) = extensions.get_mut::<SpanFields>() {
            existing.update(values, &self.redactor, trusted, keys);
        } else {
            extensions.insert(SpanFields::render(values, &self.redactor, trusted, keys));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let formatted = SCRATCH
            .try_with(|cell| {
                // A `Debug` impl that logs while this thread formats an event finds the scratch
                // borrowed; that nested event falls back to fresh buffers below.
                let Ok(mut scratch) = cell.try_borrow_mut() else {
                    return false;
                };
                self.format(event, &ctx, &mut scratch);
                self.queue.push(&scratch.line);
                if scratch.line.capacity() > MAX_RETAINED_SCRATCH_BYTES {
                    *scratch = Scratch::default();
                }
                true
            })
            .unwrap_or(false);

        if !formatted {
            let mut scratch = Scratch::default();
            self.format(event, &ctx, &mut scratch);
            self.queue.push(&scratch.line);
        }
    }
}
