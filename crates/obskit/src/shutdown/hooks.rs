//! Shutdown hooks: named async steps, each bounded by its own timeout.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

type HookFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub(crate) struct Hook {
    pub(crate) name: String,
    pub(crate) timeout: Duration,
    pub(crate) start: Box<dyn FnOnce() -> HookFuture + Send>,
}

impl Hook {
    pub(crate) fn new<F, Fut>(name: impl Into<String>, timeout: Duration, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name: name.into(),
            timeout,
            start: Box::new(move || Box::pin(hook())),
        }
    }

    /// Runs the hook on its own task, so a panic or a timeout is reported, not propagated.
    pub(crate) async fn run(self) -> HookReport {
        let started = Instant::now();
        let mut task = tokio::spawn((self.start)());
        let outcome = match tokio::time::timeout(self.timeout, &mut task).await {
            Ok(Ok(())) => HookOutcome::Completed,
            Ok(Err(_)) => HookOutcome::Panicked,
            Err(_) => {
                task.abort();
                HookOutcome::TimedOut
            }
        };
        let elapsed = started.elapsed();
        match outcome {
            HookOutcome::Completed => {
                tracing::debug!(target: "obskit::shutdown", hook = %self.name, ?elapsed, "shutdown hook completed");
            }
            HookOutcome::TimedOut => {
                tracing::warn!(target: "obskit::shutdown", hook = %self.name, timeout = ?self.timeout, "shutdown hook timed out and was cancelled");
            }
            HookOutcome::Panicked => {
                tracing::error!(target: "obskit::shutdown", hook = %self.name, "shutdown hook panicked");
            }
        }
        HookReport {
            name: self.name,
            outcome,
            elapsed,
        }
    }
}

/// Outcome of one shutdown hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOutcome {
    /// The hook finished within its timeout.
    Completed,
    /// The hook did not finish within its timeout and was cancelled.
    TimedOut,
    /// The hook panicked.
    Panicked,
}

/// The result of one shutdown hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    /// Name given at registration.
    pub name: String,
    /// Outcome of the hook.
    pub outcome: HookOutcome,
    /// Time it ran.
    pub elapsed: Duration,
}
