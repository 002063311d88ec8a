//! Spans that the collector rejected in an OTLP partial success.
//!
//! opentelemetry-otlp reports a partial success only as a `tracing` warning named
//! `…PartialSuccess` with `rejected_spans` and `error_message` fields, and returns success. The
//! export thread installs [`Watch`] as its dispatcher, which keeps those two fields and
//! discards every other event and span of the HTTP and gRPC stacks.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Rejected spans and the collector's message, reported since the last [`Rejections::take`].
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    spans: AtomicU64,
    message: Mutex<String>,
}

impl Rejections {
    /// Returns and resets the rejected-span count and the last message.
    pub(crate) fn take(&self) -> (u64, String) {
        let spans = self.spans.swap(0, Ordering::Relaxed);
        let message = std::mem::take(&mut *self.message.lock());
        (spans, message)
    }
}

/// A dispatcher that records partial-success events into [`Rejections`] and nothing else.
pub(crate) struct Watch(pub(crate) std::sync::Arc<Rejections>);

fn is_partial_success(metadata: &Metadata<'_>) -> bool {
    metadata.is_event()
        && metadata.target().starts_with("opentelemetry")
        && metadata.name().ends_with("PartialSuccess")
}

impl Subscriber for Watch {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_partial_success(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        is_partial_success(metadata)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        // Never called: every span callsite is disabled above.
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = PartialSuccess::default();
        event.record(&mut visitor);
        self.0.spans.fetch_add(visitor.rejected, Ordering::Relaxed);
        if !visitor.message.is_empty() {
            *self.0.message.lock() = visitor.message;
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// The two fields of a partial-success event.
#[derive(Default)]
struct PartialSuccess {
    rejected: u64,
    message: String,
}

impl Visit for PartialSuccess {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "rejected_spans" {
            self.rejected = u64::try_from(value).unwrap_or(0);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rejected_spans" {
            self.rejected = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "error_message" {
            value.clone_into(&mut self.message);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "error_message" {
            self.message = format!("{value:?}");
        } else if field.name() == "rejected_spans" {
            self.rejected = format!("{value:?}").parse().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn partial_success_events_are_collected() {
        let rejections = Arc::new(Rejections::default());
        let dispatch = tracing::Dispatch::new(Watch(Arc::clone(&rejections)));
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::warn!(
                name: "TonicTracesClient.PartialSuccess",
                target: "opentelemetry-otlp",
                rejected_spans = 3_i64,
                error_message = "quota",
            );
            // Other events of the export stack are discarded.
            tracing::warn!(target: "h2", rejected_spans = 5_i64, "connection reset");
        });
        assert_eq!(rejections.take(), (3, "quota".to_owned()));
        assert_eq!(rejections.take(), (0, String::new()));
    }
}
