//! The non-blocking writer: a bounded in-memory queue of lines drained by a dedicated thread.

use std::io::{self, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::LoggingError;

/// Time the writer thread waits for more lines after a batch before it sleeps until notified.
///
/// While lines keep arriving, emitting threads never have to wake the writer thread. The cost
/// is up to this much extra latency before a line reaches the output.
const LINGER: Duration = Duration::from_millis(1);

/// Upper bound on the bytes of queued lines, so a few very large lines cannot exhaust memory
/// within `queue_capacity`.
pub(crate) const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// Buffers above this size are released after a batch instead of being kept for reuse.
const MAX_RETAINED_BUFFER_BYTES: usize = 1 << 20;

/// Label set of `obskit_log_events_dropped_total`.
pub(crate) type DropLabels = [(&'static str, &'static str); 1];

/// Counters of `obskit_log_events_dropped_total`, one per `reason`.
#[derive(Clone, Debug)]
pub(crate) struct DropCounters {
    /// The queue held `queue_capacity` lines or [`MAX_QUEUED_BYTES`] bytes.
    pub(crate) queue_full: Counter,
    /// Writing or flushing the output failed.
    pub(crate) write_error: Counter,
    /// Removed by sampling.
    pub(crate) sampled: Counter,
    /// Emitted after the writer was shut down.
    pub(crate) shutdown: Counter,
}

impl DropCounters {
    pub(crate) fn new(family: &Family<DropLabels, Counter>) -> Self {
        let counter = |reason| family.get_or_create(&[("reason", reason)]).clone();
        Self {
            queue_full: counter("queue_full"),
            write_error: counter("write_error"),
            sampled: counter("sampled"),
            shutdown: counter("shutdown"),
        }
    }
}

/// Queue state shared by the emitting threads, the writer thread and the guard.
struct State {
    /// Lines not yet taken by the writer thread, concatenated.
    buffer: Vec<u8>,
    /// Lines accepted since start.
    accepted: u64,
    /// Lines written, or counted as failed, since start.
    completed: u64,
    /// Bytes in `buffer` plus the bytes of the batch being written.
    pending_bytes: usize,
    /// Set once by shutdown; the writer drains what is queued and stops.
    closed: bool,
    /// Set by the writer thread when it returns.
    finished: bool,
    /// Set while the writer thread sleeps until notified; emitters notify only then.
    idle: bool,
}

/// The bounded line queue in front of the writer thread.
pub(crate) struct Queue {
    state: Mutex<State>,
    /// Signals the writer thread that lines are queued or the queue is closed.
    work: Condvar,
    /// Signals waiters in `flush` and `shutdown` that `completed` advanced.
    progress: Condvar,
    capacity: u64,
    drops: DropCounters,
}

impl Queue {
    /// Queues one line, or drops and counts it when `capacity` lines are pending or the queue
    /// is closed. Never blocks on I/O.
    pub(crate) fn push(&self, line: &[u8]) {
        let mut state = self.state.lock();
        if state.closed {
            drop(state);
            self.drops.shutdown.inc();
            return;
        }
        let over_bytes = state.pending_bytes + line.len() > MAX_QUEUED_BYTES;
        if state.accepted - state.completed >= self.capacity || over_bytes {
            drop(state);
            self.drops.queue_full.inc();
            return;
        }

        state.buffer.extend_from_slice(line);
        state.accepted += 1;
        state.pending_bytes += line.len();
        let wake = state.idle;
        drop(state);

        if wake {
            self.work.notify_one();
        }
    }

    /// Waits until every line accepted before the call is written and the output flushed.
    fn wait_written(&self, deadline: Instant) -> Result<(), LoggingError> {
        let mut state = self.state.lock();
        let target = state.accepted;
        // Cuts the writer thread's linger short.
        self.work.notify_one();
        while state.completed < target && !state.finished {
            if self.progress.wait_until(&mut state, deadline).timed_out() {
                return Err(LoggingError::FlushTimedOut {
                    pending: target.saturating_sub(state.completed),
                });
            }
        }
        Ok(())
    }

    /// Body of the writer thread.
    fn run(&self, mut output: Box<dyn Write + Send>) {
        let mut batch = Vec::new();
        let mut lingered = false;
        let mut state = self.state.lock();
        loop {
            if state.buffer.is_empty() {
                if state.closed {
                    state.finished = true;
                    drop(state);
                    self.progress.notify_all();
                    return;
                }
                if lingered {
                    state.idle = true;
                    self.work.wait(&mut state);
                    state.idle = false;
                } else {
                    lingered = true;
                    let _ = self.work.wait_for(&mut state, LINGER);
                }
                continue;
            }
            lingered = false;

            std::mem::swap(&mut state.buffer, &mut batch);
            let batch_end = state.accepted;
            let batch_len = batch.len();
            drop(state);

            self.write_batch(&mut *output, &batch);
            batch.clear();
            if batch.capacity() > MAX_RETAINED_BUFFER_BYTES {
                batch = Vec::new();
            }

            state = self.state.lock();
            state.completed = batch_end;
            state.pending_bytes -= batch_len;
            self.progress.notify_all();
        }
    }

    fn write_batch(&self, output: &mut dyn Write, batch: &[u8]) {
        let written = output.write_all(batch).and_then(|()| output.flush());
        if written.is_err() {
            // NOTE: the error itself is not reported anywhere but the counter, because the
            // log output is the channel that failed.
            self.drops.write_error.inc_by(count_lines(batch));
        }
    }
}

fn count_lines(batch: &[u8]) -> u64 {
    batch.iter().filter(|&&byte| byte == b'\n').count() as u64
}

/// Starts the writer thread for `output` and returns the queue that feeds it.
pub(crate) fn spawn(
    output: Box<dyn Write + Send>,
    capacity: usize,
    drops: DropCounters,
) -> Result<(Arc<Queue>, JoinHandle<()>), LoggingError> {
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            buffer: Vec::new(),
            accepted: 0,
            completed: 0,
            pending_bytes: 0,
            closed: false,
            finished: false,
            idle: false,
        }),
        work: Condvar::new(),
        progress: Condvar::new(),
        capacity: capacity as u64,
        drops,
    });
    let thread_queue = Arc::clone(&queue);
    let handle = std::thread::Builder::new()
        .name("obskit-log-writer".to_owned())
        .spawn(move || thread_queue.run(output))
        .map_err(LoggingError::SpawnWriter)?;
    Ok((queue, handle))
}

/// Keeps the writer thread running; flushes and stops it on drop.
///
/// Returned by [`install`](super::install) and [`layer`](super::layer). Keep it alive for as long
/// as the program logs, typically in `main`. Dropping it writes every queued line and flushes
/// the output, waiting up to [`LogGuard::DEFAULT_SHUTDOWN_TIMEOUT`]; call
/// [`shutdown`](LogGuard::shutdown) to choose the timeout and see whether it was met.
///
/// Events emitted after shutdown are dropped and counted with `reason="shutdown"`.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
    /// Set when a flush timed out, so dropping the guard does not wait for the same stuck
    /// output a second time.
    output_stuck: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl LogGuard {
    /// Time that dropping the guard and [`flush`](Self::flush) wait for queued lines.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

    pub(crate) fn new(queue: Arc<Queue>, thread: JoinHandle<()>) -> Self {
        Self {
            queue,
            thread: Some(thread),
            output_stuck: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Waits until every line queued before the call is written and the output flushed.
    ///
    /// # Errors
    ///
    /// [`LoggingError::FlushTimedOut`] when the output does not accept the lines within
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`](Self::DEFAULT_SHUTDOWN_TIMEOUT).
    pub fn flush(&self) -> Result<(), LoggingError> {
        self.flush_within(Self::DEFAULT_SHUTDOWN_TIMEOUT)
    }

    /// Waits until every line queued before the call is written and the output flushed, for at
    /// most `timeout`.
    ///
    /// After a timeout, dropping the guard no longer waits for the output, because it already
    /// failed to take the lines once.
    ///
    /// # Errors
    ///
    /// [`LoggingError::FlushTimedOut`] when the output does not accept the lines within
    /// `timeout`.
    pub fn flush_within(&self, timeout: Duration) -> Result<(), LoggingError> {
        let result = self.queue.wait_written(Instant::now() + timeout);
        if matches!(result, Err(LoggingError::FlushTimedOut { .. })) {
            self.output_stuck
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// Stops accepting lines, writes every queued line, flushes the output and stops the writer
    /// thread, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LoggingError::FlushTimedOut`] with the number of lines still queued when the output
    /// does not accept them in time. The writer thread keeps trying in the background.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), LoggingError> {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), LoggingError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.queue.state.lock().closed = true;
        self.queue.work.notify_one();

        self.queue.wait_written(Instant::now() + timeout)?;
        let deadline = Instant::now() + timeout;
        let mut state = self.queue.state.lock();
        while !state.finished {
            if self
                .queue
                .progress
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return Err(LoggingError::FlushTimedOut { pending: 0 });
            }
        }
        drop(state);
        // The thread has returned from its loop, so joining does not block.
        let _ = thread.join();
        Ok(())
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // NOTE: a timeout here is not reported: the log output is what timed out, and a drop
        // cannot return an error. Call `shutdown` to observe it.
        let timeout = if self.output_stuck.load(std::sync::atomic::Ordering::Relaxed) {
            Duration::ZERO
        } else {
            Self::DEFAULT_SHUTDOWN_TIMEOUT
        };
        let _ = self.stop(timeout);
    }
}

/// The `io::Write` handed to tracing-subscriber's text formatter; each write call is one line.
#[derive(Clone)]
pub(crate) struct QueueWriter(pub(crate) Arc<Queue>);

impl Write for QueueWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.0.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueueWriter {
    type Writer = QueueWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn counters() -> (Family<DropLabels, Counter>, DropCounters) {
        let family = Family::<DropLabels, Counter>::default();
        let drops = DropCounters::new(&family);
        (family, drops)
    }

    /// A shared in-memory output.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<u8>>>);

    impl Write for Memory {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn flush_writes_every_line() {
        let (_family, drops) = counters();
        let memory = Memory::default();
        let (queue, thread) = spawn(Box::new(memory.clone()), 1000, drops).unwrap();
        let guard = LogGuard::new(Arc::clone(&queue), thread);
        for index in 0..500 {
            queue.push(format!("{index}\n").as_bytes());
        }
        guard.flush().unwrap();
        let text = String::from_utf8(memory.0.lock().clone()).unwrap();
        let expected: String = (0..500).map(|index| format!("{index}\n")).collect();
        assert_eq!(text, expected);
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn push_after_shutdown_is_counted() {
        let (_family, drops) = counters();
        let (queue, thread) = spawn(Box::new(io::sink()), 10, drops.clone()).unwrap();
        LogGuard::new(Arc::clone(&queue), thread)
            .shutdown(Duration::from_secs(5))
            .unwrap();
        queue.push(b"late\n");
        assert_eq!(drops.shutdown.get(), 1);
    }

    /// An output that fails every write.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_are_counted_per_line() {
        let (_family, drops) = counters();
        let (queue, thread) = spawn(Box::new(Broken), 100, drops.clone()).unwrap();
        for _ in 0..7 {
            queue.push(b"x\n");
        }
        LogGuard::new(queue, thread)
            .shutdown(Duration::from_secs(5))
            .unwrap();
        assert_eq!(drops.write_error.get(), 7);
    }

    /// An output whose first write blocks until released.
    struct Gate(Option<mpsc::Receiver<()>>, Memory);

    impl Write for Gate {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if let Some(release) = self.0.take() {
                let _ = release.recv();
            }
            self.1.write(bytes)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let (_family, drops) = counters();
        let (release, gate) = mpsc::channel();
        let memory = Memory::default();
        let (queue, thread) =
            spawn(Box::new(Gate(Some(gate), memory.clone())), 3, drops.clone()).unwrap();
        for _ in 0..10 {
            queue.push(b"line\n");
        }
        assert_eq!(drops.queue_full.get(), 7);
        release.send(()).unwrap();
        LogGuard::new(queue, thread)
            .shutdown(Duration::from_secs(5))
            .unwrap();
        assert_eq!(memory.0.lock().as_slice(), b"line\nline\nline\n");
    }

    #[test]
    fn byte_limit_drops_large_lines() {
        let (_family, drops) = counters();
        let memory = Memory::default();
        let (queue, thread) = spawn(Box::new(memory.clone()), 1000, drops.clone()).unwrap();
        let too_large = vec![b'x'; MAX_QUEUED_BYTES + 1];
        queue.push(&too_large);
        queue.push(b"small\n");
        LogGuard::new(queue, thread)
            .shutdown(Duration::from_secs(5))
            .unwrap();
        assert_eq!(drops.queue_full.get(), 1);
        let written = memory.0.lock();
        assert_eq!(written.len(), 6, "only the small line is written");
        assert_eq!(written.as_slice(), b"small\n");
    }

    #[test]
    fn shutdown_times_out_on_stuck_output() {
        let (_family, drops) = counters();
        let (_release, gate) = mpsc::channel::<()>();
        let (queue, thread) =
            spawn(Box::new(Gate(Some(gate), Memory::default())), 3, drops).unwrap();
        queue.push(b"line\n");
        let result = LogGuard::new(queue, thread).shutdown(Duration::from_millis(50));
        assert!(
            matches!(result, Err(LoggingError::FlushTimedOut { pending: 1 })),
            "{result:?}"
        );
    }

    #[test]
    fn drop_skips_wait_after_flush_timeout() {
        let (_family, drops) = counters();
        let (_release, gate) = mpsc::channel::<()>();
        let (queue, thread) =
            spawn(Box::new(Gate(Some(gate), Memory::default())), 3, drops).unwrap();
        queue.push(b"line\n");
        let guard = LogGuard::new(queue, thread);
        let result = guard.flush_within(Duration::from_millis(50));
        assert!(
            matches!(result, Err(LoggingError::FlushTimedOut { .. })),
            "{result:?}"
        );

        let started = Instant::now();
        drop(guard);
        assert!(
            started.elapsed() < LogGuard::DEFAULT_SHUTDOWN_TIMEOUT / 2,
            "drop waited {:?} for an output that already timed out",
            started.elapsed()
        );
    }
}
