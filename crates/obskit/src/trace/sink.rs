//! The hand-off from the span bridge to the exporter.

use opentelemetry_sdk::trace::SpanData;

/// Receives finished, sampled spans for export.
///
/// The bridge layer calls [`SpanSink::send`] on the thread that closes the span, so
/// implementations must return at once: when their queue is full they drop the span and count
/// it, and never wait for the exporter.
pub trait SpanSink: Send + Sync + 'static {
    /// Takes one finished span.
    fn send(&self, span: SpanData);
}

/// Trace and span ids of the current span when its trace is sampled.
///
/// Histograms call this to attach exemplars. It returns `None` outside a span, when the trace
/// is not sampled, and when no span bridge is installed.
pub(crate) fn sampled_span_ids() -> Option<([u8; 16], [u8; 8])> {
    super::bridge::sampled_span_ids()
}
