//! The bridge from `tracing` spans to OpenTelemetry spans, sampling before recording.
//!
//! [`OtelLayer`] gives every span W3C trace context, decides sampling when the span is created,
//! and builds [`SpanData`](opentelemetry_sdk::trace::SpanData) only for sampled spans, which it
//! passes to a [`SpanSink`](crate::trace::SpanSink) when they close. [`set_parent`] continues a
//! remote trace, and [`current_traceparent`] and [`current_tracestate`] return the values to
//! propagate on an outgoing call.

mod context;
mod layer;
mod quiet;
mod recording;
mod state;

#[cfg(feature = "http")]
pub(crate) use context::update_recording;
pub use context::{
    SetParentError, current_traceparent, current_tracestate, inject_current, set_parent,
    with_remote_parent,
};
pub(crate) use context::{sampled_span_ids, trace_context_of};
pub use layer::OtelLayer;
pub(crate) use layer::quiet_descendant_context;
#[cfg(feature = "http")]
pub(crate) use recording::Recording;
pub use recording::{MAX_EVENT_ATTRIBUTES, MAX_SPAN_ATTRIBUTES, MAX_SPAN_EVENTS, MAX_SPAN_LINKS};
