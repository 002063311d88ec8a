//! A per-layer `Filter` used as a global filter, for subscribers where obskit's layer is the only
//! output.

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber, subscriber::Interest};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter, Layer};

/// Applies a [`Filter`] to the whole subscriber.
///
/// tracing-subscriber's per-layer filtering looks each span up again on every entry, exit and
/// close to read its filter bitmap. When obskit's layer is the only layer, filtering globally
/// decides the same events and skips that work.
pub(crate) struct GlobalFilter<F>(pub(crate) F);

impl<S, F> Layer<S> for GlobalFilter<F>
where
    S: Subscriber,
    F: Filter<S> + 'static,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.0.callsite_enabled(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        self.0.enabled(metadata, &cx)
    }

    fn event_enabled(&self, event: &Event<'_>, cx: Context<'_, S>) -> bool {
        self.0.event_enabled(event, &cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
        self.0.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &Id, cx: Context<'_, S>) {
        self.0.on_enter(id, cx);
    }

    fn on_exit(&self, id: &Id, cx: Context<'_, S>) {
        self.0.on_exit(id, cx);
    }

    fn on_close(&self, id: Id, cx: Context<'_, S>) {
        self.0.on_close(id, cx);
    }
}

/// Enables every span at or above `floor` in addition to what `inner` enables, so spans that the
/// trace exporter needs exist even when the log level hides them. Events still pass through
/// `inner` alone.
pub(crate) struct SpanFloor<F> {
    pub(crate) inner: F,
    pub(crate) floor: LevelFilter,
}

impl<S, F> Filter<S> for SpanFloor<F>
where
    S: Subscriber,
    F: Filter<S>,
{
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        (metadata.is_span() && self.floor >= *metadata.level()) || self.inner.enabled(metadata, cx)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_span() && self.floor >= *metadata.level() {
            Interest::always()
        } else {
            self.inner.callsite_enabled(metadata)
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        self.inner.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner
            .max_level_hint()
            .map(|inner| inner.max(self.floor))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
        self.inner.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &Id, cx: Context<'_, S>) {
        self.inner.on_enter(id, cx);
    }

    fn on_exit(&self, id: &Id, cx: Context<'_, S>) {
        self.inner.on_exit(id, cx);
    }

    fn on_close(&self, id: Id, cx: Context<'_, S>) {
        self.inner.on_close(id, cx);
    }
}
