//! [`OtelLayer`]: the `tracing_subscriber` layer that samples spans and exports them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::SystemTime;

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState as OtelTraceState,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, Layered};
use tracing_subscriber::registry::{ExtensionsMut, LookupSpan, SpanRef};

use super::recording::{self, Recording};
use super::state::{RemoteState, SpanState};
use crate::logging::TraceContext;
use crate::trace::{Sampler, SpanSink, TraceParent, random_span_id};

/// Runs a closure on the extensions of one span, found through the dispatcher.
type WriteFn =
    fn(&Dispatch, &Id, &mut dyn FnMut(&'static Metadata<'static>, &mut ExtensionsMut<'_>)) -> bool;
/// Runs a closure on the state of the current span or its nearest parent that has one.
type CurrentFn = fn(&Dispatch, &mut dyn FnMut(&SpanState)) -> bool;
/// Gives a quiet span a state of its own with a new span id, so `set_parent` can move it.
type MaterializeFn = fn(&Dispatch, &Id);
/// Runs a closure on the state of a span, or the one a quiet span derives from its ancestor.
type ByIdFn = fn(&Dispatch, &Id, &mut dyn FnMut(&SpanState)) -> bool;

/// Spans in any subscriber that hold a [`Recording`]: every sampled span, and unsampled ones
/// under `keep_errors` or `keep_root_fields`.
///
/// While it is zero, the hooks after creation and [`sampled_span_ids`](super::sampled_span_ids)
/// return without looking the span up. A span is counted from before its state is stored until
/// its recording is taken at close, or its state is dropped with the recording still in it, so
/// the count is never zero while such a span is open.
static RECORDING_SPANS: AtomicUsize = AtomicUsize::new(0);

/// Returns whether any span in any subscriber may hold a recording.
#[inline]
pub(crate) fn any_span_recording() -> bool {
    RECORDING_SPANS.load(Ordering::Relaxed) != 0
}

pub(crate) fn count_recording_added() {
    RECORDING_SPANS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_recording_removed() {
    // Saturates at zero, so a removal without its addition cannot wrap the count.
    let _ = RECORDING_SPANS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |count| {
        count.checked_sub(1)
    });
}

/// Span access monomorphized for the subscriber the layer was added to, so code that holds only
/// a [`Dispatch`] can reach span extensions without knowing the subscriber type.
#[derive(Clone, Copy)]
pub(crate) struct Access {
    pub(crate) write: WriteFn,
    pub(crate) current: CurrentFn,
    pub(crate) materialize: MaterializeFn,
    pub(crate) by_id: ByIdFn,
}

impl Access {
    fn for_subscriber<S>() -> Self
    where
        S: Subscriber + for<'a> LookupSpan<'a> + 'static,
    {
        Self {
            write: write_extensions::<S>,
            current: read_current::<S>,
            materialize: materialize_quiet::<S>,
            by_id: read_by_id::<S>,
        }
    }
}

fn write_extensions<S>(
    dispatch: &Dispatch,
    id: &Id,
    f: &mut dyn FnMut(&'static Metadata<'static>, &mut ExtensionsMut<'_>),
) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else {
        return false;
    };
    let Some(span) = subscriber.span(id) else {
        return false;
    };
    f(span.metadata(), &mut span.extensions_mut());
    true
}

/// Looks span `id` up in the unfiltered registry of `dispatch`.
fn lookup<'a, S>(dispatch: &'a Dispatch, id: &Id) -> Option<SpanRef<'a, S>>
where
    S: Subscriber + for<'b> LookupSpan<'b> + 'static,
{
    dispatch.downcast_ref::<S>()?.span(id)
}

fn materialize_quiet<S>(dispatch: &Dispatch, id: &Id)
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    let Some(span) = lookup::<S>(dispatch, id) else {
        return;
    };
    {
        let extensions = span.extensions();
        if extensions.get::<SpanState>().is_some() || extensions.get::<TraceContext>().is_some() {
            return;
        }
    }
    // The span leaves its trace, so it gets a random id like any other span it could join.
    if let Some(mut state) = quiet_state(&span) {
        state.span_id = random_span_id();
        materialize(&mut span.extensions_mut(), state);
    }
}

fn read_current<S>(dispatch: &Dispatch, f: &mut dyn FnMut(&SpanState)) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else {
        return false;
    };
    let current = subscriber.current_span();
    let Some(span) = current.id().and_then(|id| subscriber.span(id)) else {
        return false;
    };
    read_span(&span, f)
}

fn read_by_id<S>(dispatch: &Dispatch, id: &Id, f: &mut dyn FnMut(&SpanState)) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    let Some(span) = lookup::<S>(dispatch, id) else {
        return false;
    };
    read_span(&span, f)
}

/// Runs `f` on the state of `span`, found through the unfiltered registry.
fn read_span<S>(span: &SpanRef<'_, S>, f: &mut dyn FnMut(&SpanState)) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // A quiet span has no state and takes its ids from its nearest ancestor with quiet
    // children. A span that a per-layer filter hid from the bridge has no state either, and
    // takes its parent's ids: a bridge behind a filter makes no quiet children.
    let id = span.id();
    for (depth, span) in span.scope().enumerate() {
        let extensions = span.extensions();
        if depth > 0
            && let Some(state) = extensions.get::<SpanState>()
            && state.quiet_children.load(Ordering::Acquire)
        {
            f(&state.quiet_descendant(&id));
            return true;
        }
        if SpanState::read(&extensions, &mut *f).is_some() {
            return true;
        }
    }
    false
}

/// Returns the trace context of a descendant `id` of the span with `extensions` when the
/// descendant has none of its own: a quiet span takes its ancestor's trace id and a span id of
/// its own. Returns `None` when the ancestor has no quiet children, so the descendant shares
/// the ancestor's context.
pub(crate) fn quiet_descendant_context(
    extensions: &tracing_subscriber::registry::Extensions<'_>,
    id: &Id,
) -> Option<TraceContext> {
    let state = extensions.get::<SpanState>()?;
    if !state.quiet_children.load(Ordering::Acquire) {
        return None;
    }
    Some(TraceContext {
        trace_id: state.trace_id,
        span_id: super::quiet::span_id(state.span_id, id),
    })
}

/// A [`Layer`] that turns `tracing` spans into OpenTelemetry spans, deciding sampling first.
///
/// When a span is created the layer picks its parent (the explicit parent, else the current
/// span), inherits the trace id or generates a random one with the W3C `random` flag, creates a
/// span id and applies the [`Sampler`]. Every span gets a [`TraceContext`] extension, except the
/// quiet children of unsampled spans described under Limitations, so the JSON log lines of
/// unsampled traces still carry `trace_id` and `span_id`. Only sampled spans collect data, apart
/// from the cases listed under Limitations:
///
/// - span fields become attributes, typed as `i64`, `f64`, `bool` or string (`u64` above
///   `i64::MAX` and `Debug` values as strings), including values recorded later;
/// - events inside the span become span events named by their message, with `level` and
///   `target` attributes;
/// - an event with an `exception.message` or `exception.type` field is named `exception`;
/// - an event at ERROR level or with an `error` field sets status Error;
/// - the fields `otel.name` (span name), `otel.kind` (`server`, `client`, `producer`,
///   `consumer`, `internal`), `otel.status_code` (`ok`, `error`, `unset`) and
///   `otel.status_message` are read instead of becoming attributes; an unknown kind or status
///   code is kept as an attribute;
/// - `Span::follows_from` adds a link.
///
/// When the span closes the layer builds a [`SpanData`] and passes it to the [`SpanSink`] on the
/// closing thread. Each span keeps at most [`MAX_SPAN_ATTRIBUTES`](super::MAX_SPAN_ATTRIBUTES)
/// attributes, [`MAX_SPAN_EVENTS`](super::MAX_SPAN_EVENTS) events and
/// [`MAX_SPAN_LINKS`](super::MAX_SPAN_LINKS) links, and counts the rest in the dropped counts
/// of `SpanData`.
///
/// # Example
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use obskit::trace::{OtelLayer, Sampler, SpanSink};
/// use opentelemetry::InstrumentationScope;
/// use opentelemetry_sdk::trace::SpanData;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// #[derive(Default)]
/// struct Collect(Mutex<Vec<SpanData>>);
///
/// impl SpanSink for Collect {
///     fn send(&self, span: SpanData) {
///         self.0.lock().unwrap().push(span);
///     }
/// }
///
/// let sink = Arc::new(Collect::default());
/// let layer = OtelLayer::new(
///     Sampler::ParentBasedAlwaysOn,
///     sink.clone(),
///     InstrumentationScope::builder("checkout").build(),
/// );
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("charge", otel.kind = "client", amount = 42).entered();
/// });
///
/// let spans = sink.0.lock().unwrap();
/// assert_eq!(spans[0].name, "charge");
/// assert_eq!(spans[0].span_kind, opentelemetry::trace::SpanKind::Client);
/// ```
///
/// # Limitations
///
/// - An unsampled root costs an id, a sampling decision and one extension insert, plus a second
///   insert when its first child is created. Its fields and events are not read. Under
///   [`Sampler::AlwaysOff`], and while no span in the process records, the hooks after
///   creation return at once; otherwise each looks the span up once.
/// - Under [`Sampler::AlwaysOff`] and the `ParentBased` samplers, without
///   [`OtelLayer::keep_errors`], a local child of an unsampled span stores nothing. It takes
///   its trace id, flags and `tracestate` from its parent. Its span id is derived from its
///   `tracing` span id and the parent's span id, and log lines, links and
///   [`current_traceparent`](super::current_traceparent) show that id.
/// - Such a span is exported only when [`set_parent`](super::set_parent) moves it into a
///   sampled trace. It then gets a new random id, so a link made before the move points at no
///   exported span.
/// - Each thread remembers the last unsampled parent it saw, so the parent's next children are
///   created without looking it up. Every thread forgets it when such a parent closes. The
///   registry reuses span ids, so over a long trace two such children can share a span id.
/// - This needs the layer added directly to its subscriber, as `registry().with(layer)` and
///   `obskit::init` do. Behind a per-layer filter, or inside `Option`, `Box` or a `Vec` of
///   layers, every span stores its context.
/// - With [`OtelLayer::keep_errors`] every span records as if sampled, which costs as much as
///   sampling everything, and only spans that end with status Error are exported.
/// - A span that [`set_parent`](super::set_parent) makes sampled after its creation has no
///   creation fields, unless [`OtelLayer::keep_root_fields`] is on, which makes every unsampled
///   root cost about as much as a sampled span. [`with_remote_parent`](super::with_remote_parent)
///   decides at creation and has neither cost.
/// - The layer finds parents through the registry's parent links. A parent that a per-layer
///   filter hides from this layer is skipped, and its nearest visible parent is used.
pub struct OtelLayer {
    sampler: Sampler,
    sink: Arc<dyn SpanSink>,
    scope: InstrumentationScope,
    keep_errors: bool,
    keep_root_fields: bool,
    attribute_value_length_limit: usize,
    /// Tells this layer's spans apart from those of other registries, whose ids overlap.
    number: u64,
    /// Whether the sampler and `keep_errors` allow quiet children; see
    /// [`OtelLayer::quiet_children`].
    quiet: bool,
    /// Whether no span of this layer ever records: `always_off` without `keep_errors`.
    records_nothing: bool,
    /// Whether the layer sits directly on its subscriber and so sees every span; see
    /// [`OtelLayer::quiet_active`].
    sees_every_span: AtomicBool,
    pub(crate) access: Option<Access>,
}

impl fmt::Debug for OtelLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelLayer")
            .field("sampler", &self.sampler)
            .field("scope", &self.scope)
            .field("keep_errors", &self.keep_errors)
            .field("keep_root_fields", &self.keep_root_fields)
            .field(
                "attribute_value_length_limit",
                &self.attribute_value_length_limit,
            )
            .finish_non_exhaustive()
    }
}

impl OtelLayer {
    /// Creates a layer that samples with `sampler` and sends finished spans to `sink`, tagged
    /// with the instrumentation `scope`.
    pub fn new(sampler: Sampler, sink: Arc<dyn SpanSink>, scope: InstrumentationScope) -> Self {
        Self {
            sampler,
            sink,
            scope,
            keep_errors: false,
            keep_root_fields: false,
            attribute_value_length_limit: crate::config::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT,
            number: super::quiet::layer_number(),
            quiet: false,
            records_nothing: false,
            sees_every_span: AtomicBool::new(false),
            access: None,
        }
        .with_flags()
    }

    /// Marks a layer that its subscriber adds with no filter or wrapper of its own in between,
    /// for subscribers that add it as `Option<OtelLayer>`, which does not pass on
    /// [`Layer::on_register_dispatch`].
    pub(crate) fn sees_every_span(self) -> Self {
        self.sees_every_span.store(true, Ordering::Relaxed);
        self
    }

    /// Returns whether children of unsampled spans are quiet: the sampler and `keep_errors`
    /// allow it, and the layer sees every span, so a span without a context is a quiet one and
    /// the layer can follow the registry's stack of entered spans.
    #[inline]
    pub(crate) fn quiet_active(&self) -> bool {
        self.quiet && self.sees_every_span.load(Ordering::Relaxed)
    }

    /// Sets the flags that follow from the sampler and `keep_errors`.
    fn with_flags(mut self) -> Self {
        self.quiet = self.quiet_children();
        self.records_nothing = self.sampler == Sampler::AlwaysOff && !self.keep_errors;
        self
    }

    /// Records unsampled spans too and exports those that end with status Error, with the
    /// sampled flag set on their span context. Off by default.
    ///
    /// Every span then costs as much as a sampled one. An exported span of an unsampled trace
    /// usually lacks its parent, unless the parent ended with an error too.
    #[must_use]
    pub fn keep_errors(mut self, keep_errors: bool) -> Self {
        self.keep_errors = keep_errors;
        self.with_flags()
    }

    /// Keeps the creation fields of unsampled root spans until
    /// [`set_parent`](super::set_parent) decides again, so a span that a remote parent makes
    /// sampled is exported with them. Off by default, because it makes every unsampled root
    /// record its fields; [`with_remote_parent`](super::with_remote_parent) needs no such
    /// provision.
    #[must_use]
    pub fn keep_root_fields(mut self, keep_root_fields: bool) -> Self {
        self.keep_root_fields = keep_root_fields;
        self
    }

    /// Cuts string attribute values of spans and span events to `limit` bytes, at a character
    /// boundary, when the span is exported. The default is
    /// [`DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT`](crate::config::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT).
    #[must_use]
    pub fn attribute_value_length_limit(mut self, limit: usize) -> Self {
        self.attribute_value_length_limit = limit;
        self
    }

    pub(crate) fn sampler(&self) -> Sampler {
        self.sampler
    }

    pub(crate) fn records_unsampled(&self) -> bool {
        self.keep_errors
    }

    /// Returns whether no span can record, so the hooks after creation have nothing to do:
    /// the sampler keeps nothing, or no span in any subscriber contains a recording now.
    #[inline]
    fn never_records(&self) -> bool {
        self.records_nothing || !any_span_recording()
    }

    /// Returns whether a child of an unsampled span is always unsampled and records nothing,
    /// so it can be a quiet span: the sampler follows the parent or keeps nothing, and errors
    /// are not kept.
    #[inline]
    fn quiet_children(&self) -> bool {
        !self.keep_errors
            && matches!(
                self.sampler,
                Sampler::AlwaysOff
                    | Sampler::ParentBasedAlwaysOn
                    | Sampler::ParentBasedAlwaysOff
                    | Sampler::ParentBasedTraceIdRatio(_)
            )
    }

    /// Decides for a new span. Returns `None` for a quiet span: a local child of an unsampled
    /// span while [`quiet_children`](Self::quiet_children) holds.
    fn new_state<S>(
        &self,
        attrs: &Attributes<'_>,
        parent: Option<&SpanRef<'_, S>>,
    ) -> Option<SpanState>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let remote = super::context::take_pending_parent();
        let parent_is_remote = remote.is_some();
        let quiet_children = self.quiet_active();
        let inherited = match remote {
            Some(remote) => Some(remote),
            None => {
                let remember = quiet_children.then_some(self.number);
                let inherited = parent.and_then(|parent| inherit(parent, remember));
                if inherited
                    .as_ref()
                    .is_some_and(|parent| parent.flags & TraceParent::SAMPLED == 0)
                    && quiet_children
                {
                    return None;
                }
                inherited
            }
        };
        let is_root = inherited.is_none();
        let (trace_id, span_id, parent_span_id, parent_flags, remote_state) = match inherited {
            Some(parent) => (
                parent.trace_id,
                random_span_id(),
                parent.span_id,
                Some(parent.flags),
                parent.remote_state,
            ),
            None => {
                let root = TraceParent::new_root(false);
                (root.trace_id(), root.parent_id(), [0; 8], None, None)
            }
        };

        let parent_sampled = parent_flags.map(|flags| flags & TraceParent::SAMPLED != 0);
        let sampled = self.sampler.should_sample(parent_sampled, &trace_id);
        let random = parent_flags.map_or(TraceParent::RANDOM, |flags| flags & TraceParent::RANDOM);
        let flags = random | if sampled { TraceParent::SAMPLED } else { 0 };

        let provisional = !sampled
            && !self.keep_errors
            && is_root
            && self.keep_root_fields
            && self.sampler != Sampler::AlwaysOff;
        let recording = (sampled || self.keep_errors || provisional).then(|| {
            let mut recording = Recording::new(
                attrs.metadata().name(),
                attrs.metadata().fields().len(),
                provisional,
            );
            recording.record_attributes(attrs);
            count_recording_added();
            Box::new(recording)
        });

        Some(SpanState {
            trace_id,
            span_id,
            parent_span_id,
            parent_is_remote,
            flags,
            has_children: AtomicBool::new(false),
            quiet_children: AtomicBool::new(false),
            remote_state,
            recording,
        })
    }

    fn span_data(&self, state: &SpanState, mut recording: Recording) -> Option<SpanData> {
        let status = recording.status();
        let is_error = matches!(status, opentelemetry::trace::Status::Error { .. });
        if recording.provisional || !(state.is_sampled() || (self.keep_errors && is_error)) {
            return None;
        }

        let trace_state = state
            .remote_state
            .as_ref()
            .map_or_else(OtelTraceState::default, |remote| remote.otel.clone());
        let span_context = SpanContext::new(
            TraceId::from_bytes(state.trace_id),
            SpanId::from_bytes(state.span_id),
            TraceFlags::new(state.flags | TraceParent::SAMPLED),
            false,
            trace_state,
        );
        let limit = self.attribute_value_length_limit;
        let mut attributes = recording.attributes;
        let mut recorded_events = recording.events;
        let event_attributes = recorded_events
            .iter_mut()
            .flat_map(|event| event.attributes.iter_mut());
        for attribute in attributes.iter_mut().chain(event_attributes) {
            truncate_value(&mut attribute.value, limit);
        }
        let mut events = SpanEvents::default();
        events.events = recorded_events;
        events.dropped_count = recording.dropped_events;
        let mut links = SpanLinks::default();
        links.links = recording.links;
        links.dropped_count = recording.dropped_links;

        Some(SpanData {
            span_context,
            parent_span_id: SpanId::from_bytes(state.parent_span_id),
            parent_span_is_remote: state.parent_is_remote,
            span_kind: recording.kind,
            name: recording.name,
            start_time: recording.start,
            end_time: SystemTime::now(),
            attributes,
            dropped_attributes_count: recording.dropped_attributes,
            events,
            links,
            status,
            instrumentation_scope: self.scope.clone(),
        })
    }
}

/// Cuts a string value longer than `limit` bytes at the last character boundary within it.
fn truncate_value(value: &mut opentelemetry::Value, limit: usize) {
    let opentelemetry::Value::String(text) = value else {
        return;
    };
    let text = text.as_str();
    if text.len() <= limit {
        return;
    }
    let end = (0..=limit)
        .rev()
        .find(|&end| text.is_char_boundary(end))
        .unwrap_or(0);
    let kept = text.get(..end).unwrap_or_default().to_owned();
    *value = opentelemetry::Value::from(kept);
}

/// The context a new span takes from its parent.
pub(crate) struct Inherited {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) flags: u8,
    pub(crate) remote_state: Option<Arc<RemoteState>>,
}

/// Reads the parent's context and records in the parent that it has a child.
///
/// With `remember`, the number of a layer whose unsampled spans have quiet children, an
/// unsampled parent is also marked and remembered as the parent of a quiet child, since the
/// child will store nothing. A quiet parent first gets a state of its own, built from its
/// nearest ancestor's.
fn inherit<S>(parent: &SpanRef<'_, S>, remember: Option<u64>) -> Option<Inherited>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let inherited = |state: &SpanState| {
        state.mark_has_children();
        if let Some(layer) = remember
            && !state.is_sampled()
        {
            state.mark_quiet_children();
            super::quiet::remember_parent(layer, &parent.id());
        }
        Inherited {
            trace_id: state.trace_id,
            span_id: state.span_id,
            flags: state.flags,
            remote_state: state.remote_state.clone(),
        }
    };

    let light = {
        let extensions = parent.extensions();
        if let Some(state) = extensions.get::<SpanState>() {
            return Some(inherited(state));
        }
        extensions.get::<TraceContext>().is_some()
    };

    // A light parent stores its full state now, to remember that it has children. A quiet
    // parent gets one built from its nearest ancestor.
    let quiet = if light {
        None
    } else {
        Some(quiet_state(parent)?)
    };
    let mut extensions = parent.extensions_mut();
    if let Some(state) = quiet {
        materialize(&mut extensions, state);
    }
    SpanState::full(&mut extensions).map(|state| inherited(state))
}

/// Stores `state`, built by [`quiet_state`], in a quiet span, unless the span got a state of
/// its own in the meantime.
pub(crate) fn materialize(extensions: &mut ExtensionsMut<'_>, state: SpanState) {
    if extensions.get_mut::<SpanState>().is_none() && extensions.get_mut::<TraceContext>().is_none()
    {
        extensions.replace(TraceContext {
            trace_id: state.trace_id,
            span_id: state.span_id,
        });
        extensions.replace(state);
    }
}

/// Returns the state a quiet span implies, from its nearest ancestor with a trace context.
/// Returns `None` when that ancestor has no quiet children, or no ancestor has a context.
pub(crate) fn quiet_state<S>(span: &SpanRef<'_, S>) -> Option<SpanState>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let id = span.id();
    for ancestor in span.scope().skip(1) {
        let extensions = ancestor.extensions();
        if let Some(state) = extensions.get::<SpanState>() {
            return state
                .quiet_children
                .load(Ordering::Acquire)
                .then(|| state.quiet_descendant(&id));
        }
        if extensions.get::<TraceContext>().is_some() {
            return None;
        }
    }
    None
}

/// Returns whether the span records, without taking the write lock.
fn is_recording<S>(span: &SpanRef<'_, S>, events: bool) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let extensions = span.extensions();
    match extensions
        .get::<SpanState>()
        .and_then(|state| state.recording.as_deref())
    {
        Some(recording) => !(events && recording.provisional),
        None => false,
    }
}

fn with_recording<S>(span: &SpanRef<'_, S>, f: impl FnOnce(&mut Recording))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut extensions = span.extensions_mut();
    if let Some(recording) = extensions
        .get_mut::<SpanState>()
        .and_then(|state| state.recording.as_deref_mut())
    {
        f(recording);
    }
}

impl<S> Layer<S> for OtelLayer
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        self.access = Some(Access::for_subscriber::<S>());
    }

    /// Checks that the layer sits directly on its subscriber, not inside a per-layer filter or
    /// another wrapper, so it sees every span enter and exit and can follow the registry's stack
    /// of entered spans without asking the registry.
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        if dispatch.downcast_ref::<Layered<OtelLayer, S>>().is_some() {
            self.sees_every_span.store(true, Ordering::Relaxed);
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // The next child of the unsampled parent this thread last saw is quiet, and needs no
        // lookup. The parent is found the way the registry finds it.
        if self.quiet_active() && !attrs.is_root() {
            let parent = if attrs.is_contextual() {
                super::quiet::current(self.number)
            } else {
                attrs.parent().map(|parent| parent.into_u64())
            };
            if parent.is_some_and(|parent| super::quiet::is_remembered_parent(self.number, parent))
                && !super::context::has_pending_parent()
            {
                return;
            }
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let Some(state) = self.new_state(attrs, span.parent().as_ref()) else {
            return;
        };

        let mut extensions = span.extensions_mut();
        extensions.replace(TraceContext {
            trace_id: state.trace_id,
            span_id: state.span_id,
        });
        if !state.is_light() {
            extensions.replace(state);
        }
    }

    #[inline]
    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        if self.quiet_active() {
            super::quiet::entered(self.number, id);
        }
    }

    #[inline]
    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if self.quiet_active() {
            super::quiet::exited(self.number, id);
        }
    }

    // The hooks after creation check inline whether anything records, so the common case costs
    // no call.
    #[inline]
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !self.never_records() {
            self.record_values(id, values, &ctx);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        if !self.never_records() {
            self.record_link(id, follows, &ctx);
        }
    }

    #[inline]
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !self.never_records() {
            self.record_event(event, &ctx);
        }
    }

    #[inline]
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.never_records() {
            self.finish(&id, &ctx);
        }
    }
}

impl OtelLayer {
    /// Applies values recorded later to the span's recording, if it has one.
    #[inline(never)]
    fn record_values<S>(&self, id: &Id, values: &Record<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if !is_recording(&span, false) {
            return;
        }
        let values = recording::field_values(values);
        with_recording(&span, |recording| recording.apply(values));
    }

    /// Adds a link to the span `follows` to the span's recording, if it has one.
    fn record_link<S>(&self, id: &Id, follows: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (Some(span), Some(follows)) = (ctx.span(id), ctx.span(follows)) else {
            return;
        };
        if !is_recording(&span, false) {
            return;
        }
        let link_context = |state: &SpanState| {
            SpanContext::new(
                TraceId::from_bytes(state.trace_id),
                SpanId::from_bytes(state.span_id),
                TraceFlags::new(state.flags),
                false,
                OtelTraceState::default(),
            )
        };
        // A quiet span has no state of its own, so its link takes the one it derives.
        let context = SpanState::read(&follows.extensions(), link_context)
            .or_else(|| quiet_state(&follows).map(|state| link_context(&state)));
        let Some(context) = context else {
            return;
        };
        with_recording(&span, |recording| {
            recording.push_link(Link::with_context(context));
        });
    }

    /// Adds an event to the recording of its span, if that span has one.
    #[inline(never)]
    fn record_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if event.metadata().target() == crate::logging::ACCESS_TARGET {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        if !is_recording(&span, true) {
            return;
        }
        let record = recording::event_record(event);
        with_recording(&span, |recording| {
            if let Some(description) = record.error {
                recording.record_error(description);
            }
            recording.push_event(record.event);
        });
    }

    /// Takes the recording of a closing span and sends the finished span to the sink.
    #[inline(never)]
    fn finish<S>(&self, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let data = {
            let mut extensions = span.extensions_mut();
            let Some(state) = extensions.get_mut::<SpanState>() else {
                return;
            };
            let Some(recording) = state.recording.take() else {
                return;
            };
            count_recording_removed();
            self.span_data(state, *recording)
        };
        // The lock is released first: a sink that logs must not find this span locked.
        if let Some(data) = data {
            self.sink.send(data);
        }
    }
}

/// Moves a span under a remote parent and decides sampling again.
pub(crate) fn reparent(
    layer: &OtelLayer,
    metadata: &'static Metadata<'static>,
    extensions: &mut ExtensionsMut<'_>,
    parent: &TraceParent,
    remote_state: Option<Arc<RemoteState>>,
) -> Result<(), super::SetParentError> {
    let Some(state) = SpanState::full(extensions) else {
        return Err(super::SetParentError::NotTracked);
    };
    if state
        .has_children
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(super::SetParentError::HasChildren);
    }

    let trace_id = parent.trace_id();
    let sampled = layer
        .sampler()
        .should_sample(Some(parent.is_sampled()), &trace_id);
    state.trace_id = trace_id;
    state.parent_span_id = parent.parent_id();
    state.parent_is_remote = true;
    state.flags =
        (parent.flags() & TraceParent::RANDOM) | if sampled { TraceParent::SAMPLED } else { 0 };
    state.remote_state = remote_state;

    if sampled || layer.records_unsampled() {
        match state.recording.as_deref_mut() {
            Some(recording) => recording.provisional = false,
            None => {
                count_recording_added();
                state.recording = Some(Box::new(Recording::new(metadata.name(), 0, false)));
            }
        }
    } else if state.recording.take().is_some() {
        count_recording_removed();
    }

    let context = TraceContext {
        trace_id,
        span_id: state.span_id,
    };
    extensions.replace(context);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    struct Discard;

    impl SpanSink for Discard {
        fn send(&self, _span: SpanData) {}
    }

    fn layer() -> OtelLayer {
        OtelLayer::new(
            Sampler::ParentBasedAlwaysOff,
            Arc::new(Discard),
            InstrumentationScope::builder("test").build(),
        )
    }

    fn quiet_active(dispatch: &Dispatch) -> bool {
        dispatch.downcast_ref::<OtelLayer>().unwrap().quiet_active()
    }

    #[test]
    fn quiet_children_off_behind_filter_or_wrapper() {
        let direct = Dispatch::new(tracing_subscriber::registry().with(layer()));
        assert!(quiet_active(&direct));
        let filtered = Dispatch::new(
            tracing_subscriber::registry().with(layer().with_filter(LevelFilter::INFO)),
        );
        assert!(!quiet_active(&filtered));
        let optional = Dispatch::new(tracing_subscriber::registry().with(Some(layer())));
        assert!(!quiet_active(&optional));
        let keeping_errors =
            Dispatch::new(tracing_subscriber::registry().with(layer().keep_errors(true)));
        assert!(!quiet_active(&keeping_errors));
    }
}
