//! The per-span extension: ids, the sampling decision and, when the span records, its data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::recording::Recording;
use crate::trace::{TraceParent, TraceState};

/// The `tracestate` a trace received from its remote caller, in both representations.
#[derive(Debug)]
pub(crate) struct RemoteState {
    pub(crate) w3c: TraceState,
    pub(crate) otel: opentelemetry::trace::TraceState,
}

impl RemoteState {
    /// Converts a non-empty list; returns `None` for an empty one.
    pub(crate) fn new(w3c: TraceState) -> Option<Arc<Self>> {
        if w3c.is_empty() {
            return None;
        }
        let members = w3c
            .iter()
            .map(|member| (member.key.clone(), member.value.clone()));
        // Both types apply the W3C key and value grammar, so a list `TraceState` accepted
        // converts without error.
        let otel = opentelemetry::trace::TraceState::from_key_value(members).unwrap_or_default();
        Some(Arc::new(Self { w3c, otel }))
    }
}

/// Trace context of one span, stored in its registry extensions by the bridge layer.
#[derive(Debug)]
pub(crate) struct SpanState {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    /// All zeros for a root span.
    pub(crate) parent_span_id: [u8; 8],
    pub(crate) parent_is_remote: bool,
    /// W3C trace flags of this span: [`TraceParent::SAMPLED`] and [`TraceParent::RANDOM`].
    pub(crate) flags: u8,
    /// Set once a child span inherited this span's ids, after which the parent cannot change.
    pub(crate) has_children: AtomicBool,
    pub(crate) remote_state: Option<Arc<RemoteState>>,
    /// `Some` for sampled spans, for every span when errors are kept, and provisionally for
    /// unsampled roots.
    pub(crate) recording: Option<Box<Recording>>,
}

impl SpanState {
    pub(crate) fn is_sampled(&self) -> bool {
        self.flags & TraceParent::SAMPLED != 0
    }

    /// Records that a child inherited this span's context. Reads first, so spans with many
    /// children do not keep writing one shared cache line.
    pub(crate) fn mark_has_children(&self) {
        if !self.has_children.load(Ordering::Relaxed) {
            self.has_children.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn traceparent(&self) -> Option<TraceParent> {
        TraceParent::new(self.trace_id, self.span_id, self.flags).ok()
    }
}
