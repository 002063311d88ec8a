//! Errors of building, flushing and shutting down the span exporter.

use std::time::Duration;

use crate::metrics::MetricsError;

/// An error of the [`BatchExporter`](super::BatchExporter).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The exporter for the configured transport could not be built.
    #[error("cannot build the {exporter} span exporter for {endpoint}: {reason}")]
    Build {
        /// `otlp grpc`, `otlp http/protobuf` or `stdout`.
        exporter: &'static str,
        /// The endpoint URL, or `stdout`.
        endpoint: String,
        /// The underlying error.
        reason: String,
    },

    /// A certificate or key file could not be used.
    #[error("invalid TLS settings for the span exporter: {0}")]
    Tls(String),

    /// The exporter's metric families could not be registered.
    #[error("cannot register the span export metrics: {0}")]
    Metrics(#[from] MetricsError),

    /// The export thread or its runtime could not be started.
    #[error("cannot start the span export thread: {0}")]
    Spawn(#[source] std::io::Error),

    /// Flush or shutdown did not finish in time; spans still queued stay queued after a flush
    /// and are dropped and counted after a shutdown.
    #[error("span export did not finish within {0:?}")]
    Timeout(Duration),

    /// Some exports of a flush or shutdown failed; their spans were dropped and counted.
    #[error("{spans} spans could not be exported and were dropped: {reason}")]
    ExportFailed {
        /// Spans lost.
        spans: u64,
        /// The last export error.
        reason: String,
    },

    /// The exporter was shut down, or its thread has stopped.
    #[error("the span exporter is shut down")]
    ShutDown,
}
