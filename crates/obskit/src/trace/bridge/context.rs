//! Reading and changing the trace context of `tracing` spans from outside the layer.

use std::cell::RefCell;

use opentelemetry::trace::SpanKind;
use tracing::Dispatch;

use super::layer::{Inherited, OtelLayer, any_span_recording, reparent};
use super::recording::Recording;
use super::state::{RemoteState, SpanState};
use crate::trace::{TraceParent, TraceState};

/// The reason [`set_parent`] did not attach the remote parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetParentError {
    /// The span is disabled, for example by a level filter, so it has no trace context.
    #[error("span is disabled, so it has no trace context to attach a parent to")]
    SpanDisabled,
    /// The span's subscriber has no [`OtelLayer`].
    #[error(
        "no OtelLayer in the span's subscriber; add obskit::trace::OtelLayer to the subscriber"
    )]
    LayerNotFound,
    /// The layer did not see the span's creation, for example because a per-layer filter
    /// excluded it.
    #[error(
        "span was not seen by the OtelLayer, for example because a per-layer filter excluded it"
    )]
    NotTracked,
    /// A child span was already created and inherited the old trace id.
    #[error(
        "span already has child spans that inherited its trace id; call set_parent right after creating the span"
    )]
    HasChildren,
}

thread_local! {
    /// The remote parent for the next span this thread creates, set by [`with_remote_parent`].
    static PENDING_PARENT: RefCell<Option<Inherited>> = const { RefCell::new(None) };
}

/// Creates a span under a remote parent, such as the caller of an incoming request.
///
/// The first span that `create` makes and the [`OtelLayer`] records takes the trace id, flags and
/// `state` of `parent`, records `parent`'s span id as a remote parent, and is sampled by the
/// parent's sampled flag under `ParentBased` samplers. The decision is made once, at creation,
/// so unlike [`set_parent`] an unsampled span records nothing. Spans created without a
/// subscriber that has an [`OtelLayer`] ignore the parent.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use obskit::trace::{OtelLayer, Sampler, SpanSink, TraceParent, current_traceparent, with_remote_parent};
/// use opentelemetry::InstrumentationScope;
/// use opentelemetry_sdk::trace::SpanData;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// struct Discard;
/// impl SpanSink for Discard {
///     fn send(&self, _span: SpanData) {}
/// }
///
/// let layer = OtelLayer::new(
///     Sampler::ParentBasedAlwaysOff,
///     Arc::new(Discard),
///     InstrumentationScope::builder("checkout").build(),
/// );
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let parent: TraceParent =
///         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
///     let span = with_remote_parent(&parent, None, || tracing::info_span!("request"));
///     let _entered = span.enter();
///
///     let current = current_traceparent().unwrap();
///     assert_eq!(current.trace_id(), parent.trace_id());
///     assert!(current.is_sampled());
/// });
/// ```
pub fn with_remote_parent<R>(
    parent: &TraceParent,
    state: Option<TraceState>,
    create: impl FnOnce() -> R,
) -> R {
    let pending = Inherited {
        trace_id: parent.trace_id(),
        span_id: parent.parent_id(),
        flags: parent.flags(),
        remote_state: state.and_then(RemoteState::new),
    };
    let previous = PENDING_PARENT.with(|cell| cell.replace(Some(pending)));
    // Cleared on the way out, also when `create` made no span the layer saw.
    struct Restore(Option<Option<Inherited>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take().flatten();
            PENDING_PARENT.with(|cell| *cell.borrow_mut() = previous);
        }
    }
    let _restore = Restore(Some(previous));
    create()
}

/// Takes the remote parent that [`with_remote_parent`] set for the span being created.
pub(crate) fn take_pending_parent() -> Option<Inherited> {
    PENDING_PARENT
        .try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .and_then(|mut pending| pending.take())
        })
        .ok()
        .flatten()
}

/// Returns whether [`with_remote_parent`] set a parent for the span being created.
#[inline]
pub(crate) fn has_pending_parent() -> bool {
    PENDING_PARENT
        .try_with(|cell| cell.try_borrow().is_ok_and(|pending| pending.is_some()))
        .unwrap_or(false)
}

/// Attaches a remote parent, such as the caller of an incoming request, to a new span.
///
/// The span continues the parent's trace. It takes the trace id, the `random` flag and `state`,
/// and records the parent's span id with `parent_span_is_remote`. The sampling decision is made
/// again with the parent's sampled flag, so `ParentBased` samplers follow the caller.
/// Call it after creating the span and before any child span is created; entering the span
/// first is allowed.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use obskit::trace::{OtelLayer, Sampler, SpanSink, TraceParent, current_traceparent, set_parent};
/// use opentelemetry::InstrumentationScope;
/// use opentelemetry_sdk::trace::SpanData;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// struct Discard;
/// impl SpanSink for Discard {
///     fn send(&self, _span: SpanData) {}
/// }
///
/// let layer = OtelLayer::new(
///     Sampler::ParentBasedAlwaysOff,
///     Arc::new(Discard),
///     InstrumentationScope::builder("checkout").build(),
/// );
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let parent: TraceParent =
///         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
///     let span = tracing::info_span!("request");
///     set_parent(&span, &parent, None).unwrap();
///     let _entered = span.enter();
///
///     let current = current_traceparent().unwrap();
///     assert_eq!(current.trace_id(), parent.trace_id());
///     assert!(current.is_sampled());
/// });
/// ```
///
/// # Errors
///
/// A [`SetParentError`] when the span is disabled, the subscriber has no [`OtelLayer`], the
/// layer did not see the span, or the span already has children.
///
/// # Limitations
///
/// A span that was unsampled at creation and becomes sampled here has the fields it was created
/// with only when it was a root span and [`OtelLayer::keep_root_fields`] is on; events emitted
/// in it before this call are not recorded.
pub fn set_parent(
    span: &tracing::Span,
    parent: &TraceParent,
    state: Option<TraceState>,
) -> Result<(), SetParentError> {
    let remote_state = state.and_then(RemoteState::new);
    span.with_subscriber(|(id, dispatch)| {
        let Some(layer) = dispatch.downcast_ref::<OtelLayer>() else {
            return Err(SetParentError::LayerNotFound);
        };
        let Some(access) = layer.access else {
            return Err(SetParentError::LayerNotFound);
        };
        let mut result = Err(SetParentError::NotTracked);
        let mut remote_state = remote_state;
        (access.materialize)(dispatch, id);
        (access.write)(dispatch, id, &mut |metadata, extensions| {
            result = reparent(layer, metadata, extensions, parent, remote_state.take());
        });
        result
    })
    .unwrap_or(Err(SetParentError::SpanDisabled))
}

/// Returns the `traceparent` of the current span: its trace id, its span id as parent-id and
/// its flags.
///
/// Pass it to [`inject`](crate::trace::inject) on an outgoing request made inside the span.
/// Returns `None` outside a span and when the subscriber has no [`OtelLayer`].
///
/// # Example
///
/// ```
/// use obskit::trace::current_traceparent;
///
/// // No subscriber with an OtelLayer is set here.
/// assert_eq!(current_traceparent(), None);
/// ```
pub fn current_traceparent() -> Option<TraceParent> {
    with_current_state(SpanState::traceparent).flatten()
}

/// Writes the current trace context into the headers of an outgoing request, with `baggage`.
///
/// The `traceparent` carries the current trace id and flags. Its parent-id is the current span's
/// id when that span is a sampled client span (`otel.kind = "client"`), so the callee's server
/// span hangs under it in trace views. Make one client span per call. Elsewhere the parent-id is
/// new and random for each call, which distinguishes calls but belongs to no exported span.
/// `tracestate` is the one the trace received. Works with any client that takes an
/// [`http::HeaderMap`]: reqwest, hyper, and tonic through its metadata. Outside a span, or
/// without an [`OtelLayer`], the headers are left unchanged and `None` is returned.
///
/// # Example
///
/// ```
/// use obskit::trace::{Baggage, inject_current};
///
/// let mut headers = http::HeaderMap::new();
/// // No span is current here, so nothing is written.
/// assert!(inject_current(&Baggage::default(), &mut headers).is_none());
/// assert!(headers.is_empty());
/// ```
pub fn inject_current(
    baggage: &crate::trace::Baggage,
    headers: &mut http::HeaderMap,
) -> Option<crate::trace::Injected> {
    let (parent, is_client, state) = with_current_state(|state| {
        let is_client = state.is_sampled()
            && state
                .recording
                .as_deref()
                .is_some_and(|recording| recording.kind == SpanKind::Client);
        (state.traceparent(), is_client, state.received_tracestate())
    })?;
    let parent = parent?;
    let parent = if is_client { parent } else { parent.child() };
    Some(crate::trace::inject(&parent, &state, baggage, headers))
}

/// Returns the `tracestate` received with the current span's trace, to send along with
/// [`current_traceparent`]. Returns an empty list when the trace received none, and `None` where
/// [`current_traceparent`] does.
pub fn current_tracestate() -> Option<TraceState> {
    with_current_state(SpanState::received_tracestate)
}

/// Runs `f` on the recording of `span` when the span records: its trace is sampled, or it is
/// kept in case it ends with an error ([`OtelLayer::keep_errors`]). Returns the span's trace and
/// span ids only when its trace is sampled, so an exemplar never points at a trace that may not
/// be exported. Spans without a recording and spans the bridge did not see return `None` without
/// calling `f`.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn update_recording(
    span: &tracing::Span,
    f: impl FnOnce(&mut Recording),
) -> Option<([u8; 16], [u8; 8])> {
    let mut f = Some(f);
    span.with_subscriber(|(id, dispatch)| {
        let access = dispatch.downcast_ref::<OtelLayer>()?.access?;
        let mut ids = None;
        (access.write)(dispatch, id, &mut |_, extensions| {
            let Some(state) = extensions.get_mut::<SpanState>() else {
                return;
            };
            let sampled = state.is_sampled();
            let (trace_id, span_id) = (state.trace_id, state.span_id);
            if let Some(recording) = state.recording.as_deref_mut()
                && !recording.provisional
            {
                if let Some(f) = f.take() {
                    f(recording);
                }
                if sampled {
                    ids = Some((trace_id, span_id));
                }
            }
        });
        ids
    })
    .flatten()
}

/// Trace and span ids of the current span when its trace is sampled.
///
/// Every histogram observation calls this, so it returns `None` without looking up the current
/// span while no span records.
#[inline]
pub(crate) fn sampled_span_ids() -> Option<([u8; 16], [u8; 8])> {
    if !any_span_recording() {
        return None;
    }
    with_current_state(|state| {
        state
            .is_sampled()
            .then_some((state.trace_id, state.span_id))
    })
    .flatten()
}

/// Returns the trace context of span `id` of `dispatch`, found through the unfiltered registry,
/// so a layer that a per-layer filter keeps from seeing some spans gets the same ids as the
/// bridge. Returns `None` when the subscriber has no [`OtelLayer`] or the span has no context.
pub(crate) fn trace_context_of(
    dispatch: &Dispatch,
    id: &tracing::span::Id,
) -> Option<crate::logging::TraceContext> {
    let access = dispatch.downcast_ref::<OtelLayer>()?.access?;
    let mut context = None;
    (access.by_id)(dispatch, id, &mut |state| {
        context = Some(crate::logging::TraceContext {
            trace_id: state.trace_id,
            span_id: state.span_id,
        });
    });
    context
}

fn with_current_state<R>(f: impl FnOnce(&SpanState) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch: &Dispatch| {
        let access = dispatch.downcast_ref::<OtelLayer>()?.access?;
        let mut result = None;
        (access.current)(dispatch, &mut |state| {
            result = f.take().map(|f| f(state));
        });
        result
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::trace::SpanData;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::trace::{Sampler, SpanSink};

    struct Discard;

    impl SpanSink for Discard {
        fn send(&self, _span: SpanData) {}
    }

    fn with_layer(sampler: Sampler, f: impl FnOnce()) {
        let layer = OtelLayer::new(
            sampler,
            Arc::new(Discard),
            InstrumentationScope::builder("test").build(),
        );
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    }

    #[test]
    fn sampled_span_ids_follow_current_span() {
        with_layer(Sampler::AlwaysOn, || {
            assert_eq!(sampled_span_ids(), None);
            let _span = tracing::info_span!("work").entered();
            let ids = sampled_span_ids();
            let parent = current_traceparent();
            assert!(ids.is_some());
            assert_eq!(
                ids,
                parent.map(|parent| (parent.trace_id(), parent.parent_id()))
            );
        });
    }

    #[test]
    fn sampled_span_ids_skip_unsampled() {
        with_layer(Sampler::AlwaysOff, || {
            let _span = tracing::info_span!("work").entered();
            assert!(current_traceparent().is_some());
            assert_eq!(sampled_span_ids(), None);
        });
    }

    #[test]
    fn sampled_span_ids_after_set_parent() {
        with_layer(Sampler::ParentBasedAlwaysOff, || {
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            assert_eq!(sampled_span_ids(), None);

            let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap();
            set_parent(&span, &parent, None).unwrap();
            let ids = sampled_span_ids();
            assert_eq!(ids.map(|(trace_id, _)| trace_id), Some(parent.trace_id()));
        });
    }

    #[test]
    fn sampled_span_ids_after_close() {
        with_layer(Sampler::AlwaysOn, || {
            let span = tracing::info_span!("work");
            {
                let _entered = span.enter();
                assert!(sampled_span_ids().is_some());
            }
            drop(span);
            assert_eq!(sampled_span_ids(), None);
            let _next = tracing::info_span!("next").entered();
            assert!(sampled_span_ids().is_some());
        });
    }

    #[test]
    fn current_tracestate_is_empty_without_remote() {
        with_layer(Sampler::AlwaysOn, || {
            assert_eq!(current_tracestate(), None);
            let _span = tracing::info_span!("work").entered();
            assert_eq!(current_tracestate(), Some(TraceState::default()));
        });
    }
}
