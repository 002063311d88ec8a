//! The export thread: a current-thread tokio runtime that batches queued spans and exports them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::sync::Notify;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{Receiver, UnboundedReceiver};
use tokio::time::Instant;
use tracing::dispatcher::{self, DefaultGuard, Dispatch};

use super::ExportError;
use super::counters::{Counters, WarnLimiter};
use crate::config::BatchConfig;

/// Target of the worker's own log events.
const LOG_TARGET: &str = "obskit::trace::export";

/// A request from a [`BatchExporter`](super::BatchExporter) handle to the worker.
pub(crate) enum Command {
    /// Exports every span queued when the command arrives, then replies.
    Flush {
        deadline: std::time::Instant,
        reply: SyncSender<Result<(), ExportError>>,
    },
    /// Exports the queue, shuts the exporter down, replies and stops the worker.
    Shutdown {
        deadline: std::time::Instant,
        reply: SyncSender<Result<(), ExportError>>,
    },
}

/// Scope of a drain's deadline.
#[derive(Clone, Copy)]
enum Bound {
    /// No new batch starts after the deadline, but a started export keeps its own timeout, so
    /// a short flush does not cut an export off and lose its spans.
    Batches,
    /// Exports are cut off at the deadline too, because the exporter is going away.
    Exports,
}

/// Outcome of the exports done for one flush.
#[derive(Default)]
struct Failures {
    spans: u64,
    last: Option<String>,
}

impl Failures {
    fn into_result(self) -> Result<(), ExportError> {
        match self.last {
            None => Ok(()),
            Some(reason) => Err(ExportError::ExportFailed {
                spans: self.spans,
                reason,
            }),
        }
    }
}

/// State of the span queue after [`Worker::take`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Queue {
    Open,
    /// Every handle is dropped and the queue is empty.
    Disconnected,
}

/// Wakes the worker once per full batch instead of once per span.
#[derive(Debug)]
pub(crate) struct Signal {
    /// Spans sent and not yet taken by the worker.
    pub(crate) queued: AtomicUsize,
    /// Notified when `queued` reaches the batch size.
    pub(crate) batch_ready: Notify,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Self {
            queued: AtomicUsize::new(0),
            batch_ready: Notify::new(),
        }
    }

    /// Counts a span about to be sent, before it can reach the worker, so that the worker's
    /// decrement never goes below zero. Returns the count including this span.
    pub(crate) fn reserve(&self) -> usize {
        self.queued.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Takes back a [`reserve`](Self::reserve) whose span was not queued.
    pub(crate) fn release(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Wakes the worker when the span counted as `queued` completed a batch. Every increment
    /// passes through each value once, so exactly one sender gets `batch_size`.
    pub(crate) fn queued(&self, queued: usize, batch_size: usize) {
        if queued == batch_size {
            self.batch_ready.notify_one();
        }
    }
}

pub(crate) struct Worker<E> {
    pub(crate) exporter: E,
    /// Endpoint URL, `stdout`, or `custom exporter`, named in warnings.
    pub(crate) destination: String,
    pub(crate) signal: Arc<Signal>,
    pub(crate) spans: Receiver<SpanData>,
    pub(crate) control: UnboundedReceiver<Command>,
    pub(crate) batch: BatchConfig,
    pub(crate) counters: Counters,
    pub(crate) warnings: WarnLimiter,
    /// Keeps this thread's own dispatcher a no-op while it is set, so that spans and events of
    /// the HTTP and gRPC stacks are not exported in turn.
    pub(crate) silence: Option<DefaultGuard>,
    /// Spans the collector rejected in partial successes, collected from the exporter's events.
    pub(crate) rejections: Arc<super::rejections::Rejections>,
    /// Redaction rules set on the exporter handle.
    pub(crate) redactor: Arc<std::sync::OnceLock<crate::redact::Redactor>>,
    /// Rules used until `redactor` is set.
    pub(crate) default_redactor: crate::redact::Redactor,
}

impl<E: SpanExporter> Worker<E> {
    /// Silences the `tracing` dispatcher of the current thread for the worker's lifetime, except
    /// for the exporter's partial-success warnings, which `rejections` collects.
    pub(crate) fn silence(rejections: &Arc<super::rejections::Rejections>) -> DefaultGuard {
        dispatcher::set_default(&Dispatch::new(super::rejections::Watch(Arc::clone(
            rejections,
        ))))
    }

    /// Runs until a shutdown command or until every handle is dropped.
    ///
    /// The worker takes spans with `try_recv` and never waits on the queue itself, so `send`
    /// does not wake this thread for every span. It wakes on a full batch (see
    /// [`Signal`]), on the schedule delay and on commands.
    pub(crate) async fn run(mut self) -> Option<DefaultGuard> {
        self.run_loop().await;
        // Handed back so that the thread stays silent while the exporter and the runtime,
        // with their connections, are dropped.
        self.silence.take()
    }

    async fn run_loop(&mut self) {
        let mut batch = Vec::with_capacity(self.batch.max_export_batch_size);
        let mut next_export = Instant::now() + self.batch.schedule_delay;
        let signal = Arc::clone(&self.signal);
        loop {
            let limit = self.batch.max_export_batch_size;
            if self.take(&mut batch, limit) == Queue::Disconnected {
                let deadline = Instant::now() + self.batch.export_timeout;
                let _ = self.shut_down(&mut batch, deadline).await;
                return;
            }
            if batch.len() >= self.batch.max_export_batch_size {
                let deadline = Instant::now() + self.batch.export_timeout;
                let _ = self.export(&mut batch, deadline).await;
                next_export = Instant::now() + self.batch.schedule_delay;
            }
            // Commands go first even with a backlog, so a shutdown keeps its deadline.
            let backlog = signal.queued.load(Ordering::Relaxed) >= self.batch.max_export_batch_size;

            tokio::select! {
                biased;
                command = self.control.recv() => match command {
                    Some(Command::Flush { deadline, reply }) => {
                        let result = self.drain(&mut batch, deadline.into(), Bound::Batches).await;
                        // The caller may have stopped waiting; the result is then of no use.
                        let _ = reply.send(result);
                    }
                    Some(Command::Shutdown { deadline, reply }) => {
                        let result = self.shut_down(&mut batch, deadline.into()).await;
                        let _ = reply.send(result);
                        return;
                    }
                    None => {
                        let deadline = Instant::now() + self.batch.export_timeout;
                        let _ = self.shut_down(&mut batch, deadline).await;
                        return;
                    }
                },
                () = std::future::ready(()), if backlog => {}
                () = signal.batch_ready.notified() => {}
                () = tokio::time::sleep_until(next_export) => {
                    let limit = self.batch.max_export_batch_size;
                    let _ = self.take(&mut batch, limit);
                    if !batch.is_empty() {
                        let deadline = Instant::now() + self.batch.export_timeout;
                        let _ = self.export(&mut batch, deadline).await;
                    }
                    next_export = Instant::now() + self.batch.schedule_delay;
                },
            }
        }
    }

    /// Exports the spans in `batch` and those queued now, in batches, until `deadline`.
    ///
    /// Spans that arrive meanwhile are left for later, so a busy application cannot keep a
    /// flush from finishing.
    async fn drain(
        &mut self,
        batch: &mut Vec<SpanData>,
        deadline: Instant,
        bound: Bound,
    ) -> Result<(), ExportError> {
        let mut remaining = self.spans.len();
        let mut failures = Failures::default();
        loop {
            let before = batch.len();
            let _ = self.take(batch, remaining);
            remaining = remaining.saturating_sub(batch.len() - before);
            if batch.is_empty() {
                return failures.into_result();
            }
            if Instant::now() >= deadline {
                return Err(ExportError::Timeout(Duration::ZERO));
            }
            let spans = batch.len() as u64;
            let export_deadline = match bound {
                Bound::Batches => Instant::now() + self.batch.export_timeout,
                Bound::Exports => deadline,
            };
            if let Err(reason) = self.export(batch, export_deadline).await {
                failures.spans += spans;
                failures.last = Some(reason);
            }
        }
    }

    /// Closes the queue, exports its spans until `deadline`, drops and counts the rest, and
    /// shuts the exporter down.
    async fn shut_down(
        &mut self,
        batch: &mut Vec<SpanData>,
        deadline: Instant,
    ) -> Result<(), ExportError> {
        self.spans.close();
        let result = self.drain(batch, deadline, Bound::Exports).await;

        let mut left = batch.len() as u64;
        batch.clear();
        while self.spans.try_recv().is_ok() {
            self.signal.queued.fetch_sub(1, Ordering::Relaxed);
            left += 1;
        }
        self.counters.dropped_shutdown.inc_by(left);

        let remaining = deadline.saturating_duration_since(Instant::now());
        let shutdown = self.exporter.shutdown_with_timeout(remaining);
        if let Err(error) = &shutdown {
            self.warn(format_args!("span exporter shutdown failed: {error}"));
        }
        result
    }

    /// Moves up to `limit` queued spans into `batch`, without going past the batch size.
    fn take(&mut self, batch: &mut Vec<SpanData>, limit: usize) -> Queue {
        let room = self.batch.max_export_batch_size.saturating_sub(batch.len());
        let mut state = Queue::Open;
        let mut taken = 0;
        while taken < room.min(limit) {
            match self.spans.try_recv() {
                Ok(span) => {
                    batch.push(span);
                    taken += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    state = Queue::Disconnected;
                    break;
                }
            }
        }
        self.signal.queued.fetch_sub(taken, Ordering::Relaxed);
        state
    }

    /// Exports `batch`, bounded by the export timeout and `deadline`, and counts the outcome.
    /// Failed spans are dropped; the reason is returned.
    async fn export(&mut self, batch: &mut Vec<SpanData>, deadline: Instant) -> Result<(), String> {
        let mut spans =
            std::mem::replace(batch, Vec::with_capacity(self.batch.max_export_batch_size));
        let redactor = self.redactor.get().unwrap_or(&self.default_redactor);
        if redactor.is_enabled() {
            for span in &mut spans {
                crate::redact::redact_span(redactor, span);
            }
        }
        let count = spans.len() as u64;
        let limit = deadline.min(Instant::now() + self.batch.export_timeout);
        let allowed = limit.saturating_duration_since(Instant::now());

        let outcome = tokio::time::timeout_at(limit, self.exporter.export(spans)).await;
        let reason = match outcome {
            Ok(Ok(())) => {
                let (rejected, message) = self.rejections.take();
                let rejected = rejected.min(count);
                self.counters.exported.inc_by(count - rejected);
                if rejected > 0 || !message.is_empty() {
                    self.counters.dropped_rejected.inc_by(rejected);
                    self.warn(format_args!(
                        "collector rejected {rejected} of {count} spans: {message}"
                    ));
                }
                return Ok(());
            }
            Ok(Err(error)) => {
                self.counters.failed_error.inc();
                error.to_string()
            }
            Err(_) => {
                self.counters.failed_timeout.inc();
                format!("timed out after {allowed:?}")
            }
        };
        self.counters.dropped_export_failed.inc_by(count);
        self.warn(format_args!(
            "span export failed, dropped {count} spans: {reason}"
        ));
        Err(reason)
    }

    /// Logs at WARN through the process's dispatcher, at most once per
    /// [`WARN_INTERVAL`](super::counters::WARN_INTERVAL).
    fn warn(&mut self, message: std::fmt::Arguments<'_>) {
        let Some(suppressed) = self.warnings.allow(std::time::Instant::now()) else {
            return;
        };
        // Dropping the guard restores the dispatcher the thread had before the worker started.
        self.silence = None;
        tracing::warn!(
            target: LOG_TARGET,
            destination = %self.destination,
            suppressed_warnings = suppressed,
            "{message}"
        );
        self.silence = Some(Self::silence(&self.rejections));
    }
}
