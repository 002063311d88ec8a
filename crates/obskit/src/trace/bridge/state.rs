//! The per-span extension: ids, the sampling decision and, when the span records, its data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::span::Id;
use tracing_subscriber::registry::{Extensions, ExtensionsMut};

use super::quiet;
use super::recording::Recording;
use crate::logging::TraceContext;
use crate::trace::{TraceParent, TraceState};

/// The `tracestate` a trace received from its remote caller, in both representations.
#[derive(Debug)]
pub(crate) struct RemoteState {
    pub(crate) w3c: TraceState,
    pub(crate) otel: opentelemetry::trace::TraceState,
}

impl RemoteState {
    /// Converts a non-empty list, and returns `None` for an empty one.
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
///
/// A span that is unsampled, does not record, has the `random` flag and no remote state or
/// children stores only its [`TraceContext`], which saves an allocation on the common path.
/// [`SpanState::light`] rebuilds the rest. Its first child inserts the full state.
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
    /// Set once a quiet child (see [`quiet`](super::quiet)) took this span's context. A thread
    /// may then remember the span, so its close must make the threads forget it.
    pub(crate) quiet_children: AtomicBool,
    pub(crate) remote_state: Option<Arc<RemoteState>>,
    /// `Some` for sampled spans, for every span when errors are kept, and provisionally for
    /// unsampled roots.
    pub(crate) recording: Option<Box<Recording>>,
}

impl SpanState {
    /// Builds the state that a span with only a [`TraceContext`] implies.
    pub(crate) fn light(context: TraceContext) -> Self {
        Self {
            trace_id: context.trace_id,
            span_id: context.span_id,
            parent_span_id: [0; 8],
            parent_is_remote: false,
            flags: TraceParent::RANDOM,
            has_children: AtomicBool::new(false),
            quiet_children: AtomicBool::new(false),
            remote_state: None,
            recording: None,
        }
    }

    /// Returns whether the state can be stored as its [`TraceContext`] alone.
    pub(crate) fn is_light(&self) -> bool {
        self.flags == TraceParent::RANDOM
            && self.recording.is_none()
            && self.remote_state.is_none()
            && !self.parent_is_remote
    }

    /// Runs `f` on the span's state, full or light. Returns `None` when the layer did not see
    /// the span.
    pub(crate) fn read<R>(
        extensions: &Extensions<'_>,
        f: impl FnOnce(&SpanState) -> R,
    ) -> Option<R> {
        if let Some(state) = extensions.get::<SpanState>() {
            return Some(f(state));
        }
        let context = extensions.get::<TraceContext>()?;
        Some(f(&SpanState::light(*context)))
    }

    /// Returns the span's full state, inserting it for a light span. Returns `None` when the
    /// layer did not see the span.
    pub(crate) fn full<'a>(extensions: &'a mut ExtensionsMut<'_>) -> Option<&'a mut SpanState> {
        if extensions.get_mut::<SpanState>().is_none() {
            let context = *extensions.get_mut::<TraceContext>()?;
            extensions.replace(SpanState::light(context));
        }
        extensions.get_mut::<SpanState>()
    }

    /// Records that a quiet child took this span's context.
    pub(crate) fn mark_quiet_children(&self) {
        if !self.quiet_children.load(Ordering::Relaxed) {
            self.quiet_children.store(true, Ordering::Release);
        }
    }

    /// Returns the state a quiet descendant `id` of this span implies: this span's trace id,
    /// flags and `tracestate`, with the descendant's derived span id.
    pub(crate) fn quiet_descendant(&self, id: &Id) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: quiet::span_id(self.span_id, id),
            parent_span_id: self.span_id,
            parent_is_remote: false,
            flags: self.flags,
            has_children: AtomicBool::new(false),
            quiet_children: AtomicBool::new(false),
            remote_state: self.remote_state.clone(),
            recording: None,
        }
    }

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

    /// Returns the `tracestate` the trace received from its remote caller, or an empty list.
    pub(crate) fn received_tracestate(&self) -> TraceState {
        self.remote_state
            .as_ref()
            .map(|remote| remote.w3c.clone())
            .unwrap_or_default()
    }
}

impl Drop for SpanState {
    fn drop(&mut self) {
        // The registry drops a span's extensions before it can reuse the span's id.
        if *self.quiet_children.get_mut() {
            quiet::parent_closed();
        }
        // The layer takes the recording when the span closes. A state dropped with its
        // recording still in it leaves the count here instead.
        if self.recording.is_some() {
            super::layer::count_recording_removed();
        }
    }
}
