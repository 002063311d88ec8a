//! Span export: a bounded queue and a dedicated thread that sends batches to OTLP or stdout.
//!
//! The `tracing` bridge hands finished spans to a [`BatchExporter`] through
//! [`SpanSink`](super::SpanSink); applications that use the OpenTelemetry API can share the same
//! exporter through [`BatchExporter::tracer_provider_builder`]. The transport follows the
//! `tracing` configuration section: OTLP over gRPC (tonic) or HTTP/protobuf (hyper), with
//! gzip, headers and TLS, or standard output.

mod batch;
mod counters;
mod error;
#[cfg(feature = "otlp")]
mod http_client;
mod provider;
mod rejections;
#[cfg(feature = "otlp")]
pub(crate) mod tls;
mod transport;
mod worker;

pub use batch::BatchExporter;
pub use counters::{SPAN_EXPORT_FAILURES, SPANS_DROPPED, SPANS_EXPORTED};
pub use error::ExportError;
