//! Distributed tracing: W3C Trace Context and Baggage propagation over HTTP headers, and the
//! bridge from `tracing` spans to OpenTelemetry spans.
//!
//! [`OtelLayer`] is a `tracing_subscriber` layer that gives every span trace context, decides
//! sampling with a [`Sampler`] when the span is created, and sends finished sampled spans to a
//! [`SpanSink`]. [`set_parent`] continues the trace of an incoming request, and
//! [`current_traceparent`] returns the `traceparent` to [`inject`] on an outgoing one.
//!
//! [`extract`] reads `traceparent`, `tracestate` and `baggage` from an incoming request and
//! reports in [`Extracted::rejected`] every header or member it discarded, so a service can
//! count them. [`inject`] writes them on an outgoing request with a new parent-id per call.
//! The parsers implement the full rule sets of
//! [W3C Trace Context Level 2](https://www.w3.org/TR/trace-context-2/) and
//! [W3C Baggage](https://www.w3.org/TR/baggage/); parsing a `traceparent` does not allocate.
//!
//! | Type | Header | Invalid input |
//! |---|---|---|
//! | [`TraceParent`] | `traceparent` | the request starts a new trace and `tracestate` is discarded |
//! | [`TraceState`] | `tracestate` | the whole list is discarded |
//! | [`Baggage`] | `baggage` | the invalid member is dropped; members past the limits are dropped |
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use obskit::trace::{TraceStateError, extract};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     "traceparent",
//!     HeaderValue::from_static("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
//! );
//! headers.insert("tracestate", HeaderValue::from_static("congo=t61rcWkgMzE"));
//!
//! let extracted = extract(&headers);
//! assert!(extracted.parent.is_none());
//! let rejection = extracted.rejected.unwrap();
//! assert_eq!(rejection.traceparent.unwrap().reason(), "uppercase_hex");
//! assert_eq!(rejection.tracestate, Some(TraceStateError::TraceParentInvalid));
//! ```

mod baggage;
pub(crate) mod bridge;
pub mod export;
mod propagation;
mod resource;
mod sampler;
mod sink;
mod traceparent;
mod tracestate;

pub use baggage::{
    Baggage, BaggageDrops, BaggageError, BaggageMember, BaggageProperty, MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_MEMBERS,
};
pub use bridge::{
    MAX_EVENT_ATTRIBUTES, MAX_SPAN_ATTRIBUTES, MAX_SPAN_EVENTS, MAX_SPAN_LINKS, OtelLayer,
    SetParentError, current_traceparent, current_tracestate, inject_current, set_parent,
    with_remote_parent,
};
pub use export::{BatchExporter, ExportError};
pub use propagation::{
    BAGGAGE, Extracted, Injected, Rejection, TRACEPARENT, TRACESTATE, extract, inject,
};
pub use resource::{TELEMETRY_SDK_NAME, service_resource};
pub use sampler::Sampler;
pub use sink::SpanSink;
pub(crate) use sink::sampled_span_ids;
pub use traceparent::{
    TRACEPARENT_LEN, TraceParent, TraceParentError, TraceParentField, random_span_id,
};
pub use tracestate::{
    MAX_TRACESTATE_MEMBERS, TRACESTATE_PROPAGATION_LEN, TraceState, TraceStateError,
    TraceStateInsertError, TraceStateMember,
};
