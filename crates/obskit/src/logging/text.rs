//! The text format: tracing-subscriber's human-readable formatter behind the same writer queue.

use std::io::IsTerminal;
use std::sync::Arc;

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use super::writer::{Queue, QueueWriter};

/// Builds the text layer; `ansi` enables colors, meant for a terminal.
pub(crate) fn layer<S>(queue: Arc<Queue>, ansi: bool) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(QueueWriter(queue))
        .with_ansi(ansi)
        .with_target(true)
}

/// Returns whether standard output is a terminal, so text output gets colors.
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Returns whether standard error is a terminal.
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
