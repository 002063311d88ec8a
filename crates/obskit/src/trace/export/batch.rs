//! `BatchExporter`: the bounded span queue and the handle of its export thread.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Sender, UnboundedSender};

use super::ExportError;
use super::counters::{Counters, WarnLimiter};
use super::transport;
use super::worker::{Command, Signal, Worker};
use crate::config::{BatchConfig, RedactConfig, ServiceConfig, TraceExporter, TracingConfig};
use crate::metrics::Registry;
use crate::redact::{Redactor, RegisterError};
use crate::trace::{SpanSink, service_resource};

/// Name of the export thread.
const THREAD_NAME: &str = "obskit-span-export";

/// Queues finished spans and exports them in batches from one dedicated thread.
///
/// [`send`](SpanSink::send) never blocks: it puts the span in a bounded queue, and when the
/// queue is full it drops the span and counts it in
/// `obskit_spans_dropped_total{reason="queue_full"}`. The export thread runs its own
/// current-thread tokio runtime and exports a batch when it reaches
/// `tracing.batch.max_export_batch_size` spans or when `tracing.batch.schedule_delay` has
/// passed, each export bounded by `tracing.batch.export_timeout`.
///
/// It is also an [`opentelemetry_sdk::trace::SpanProcessor`], so an `SdkTracerProvider` can
/// share it with the `tracing` bridge; see [`BatchExporter::tracer_provider_builder`]. Clones
/// share one queue and one thread.
///
/// # Metrics
///
/// | Family | Labels | Meaning |
/// |---|---|---|
/// | `obskit_spans_exported_total` | | spans the exporter accepted |
/// | `obskit_spans_dropped_total` | `reason`: `queue_full`, `export_failed`, `shutdown` | spans lost before export |
/// | `obskit_span_export_failures_total` | `reason`: `error`, `timeout` | failed export requests |
///
/// Failures are logged at WARN with target `obskit::trace::export`, at most once every 30
/// seconds per exporter, with the endpoint in `destination` and the number of warnings held
/// back since the last one in `suppressed_warnings`. The export thread's own `tracing`
/// dispatcher is a no-op otherwise, so spans and events of the HTTP and gRPC clients are not
/// exported in turn.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// let config = obskit::Config::builder()
///     .env(false)
///     .set("tracing.exporter", "stdout")
///     .build()?;
/// let registry = obskit::metrics::Registry::new(&config.metrics);
/// let exporter =
///     obskit::trace::BatchExporter::from_config(&config.tracing, &config.service, &registry)?
///         .expect("the stdout exporter is configured");
/// exporter.shutdown(Duration::from_secs(1))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Limitations
///
/// - [`flush`](Self::flush) and [`shutdown`](Self::shutdown) block the calling thread until
///   the worker replies or the timeout passes; call them from a blocking context, not from a
///   task of a current-thread runtime that other work depends on.
/// - The OTLP exporter of `opentelemetry-otlp` 0.33 also reads `OTEL_EXPORTER_OTLP_HEADERS`,
///   `OTEL_EXPORTER_OTLP_COMPRESSION` and their `TRACES_` forms from the process environment
///   itself, so those variables apply even when the configuration was built with
///   `ConfigBuilder::env_from` or sets `tracing.compression = "none"`.
/// - The resource is fixed when the exporter is built; `SpanProcessor::set_resource` from a
///   tracer provider is ignored, so the provider's default resource cannot replace the
///   service's.
#[derive(Clone)]
pub struct BatchExporter {
    inner: Arc<Inner>,
}

struct Inner {
    spans: Sender<SpanData>,
    control: UnboundedSender<Command>,
    counters: Counters,
    resource: Resource,
    export_timeout: Duration,
    batch_size: usize,
    signal: Arc<Signal>,
    shut_down: AtomicBool,
    /// Redaction rules set with [`BatchExporter::set_redactor`]; the worker falls back to the
    /// default rules until they are set.
    redactor: Arc<OnceLock<Redactor>>,
}

impl fmt::Debug for BatchExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queued = self.inner.spans.max_capacity() - self.inner.spans.capacity();
        f.debug_struct("BatchExporter")
            .field("queued", &queued)
            .field("max_queue_size", &self.inner.spans.max_capacity())
            .field("shut_down", &self.inner.shut_down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl BatchExporter {
    /// Starts the exporter that `tracing` configures, or returns `None` when the exporter is
    /// `none` (see [`TracingConfig::effective_exporter`]).
    ///
    /// # Errors
    ///
    /// [`ExportError::Build`] or [`ExportError::Tls`] when the transport cannot be built,
    /// [`ExportError::Metrics`] when the counters cannot be registered and
    /// [`ExportError::Spawn`] when the thread cannot start.
    pub fn from_config(
        tracing: &TracingConfig,
        service: &ServiceConfig,
        registry: &Registry,
    ) -> Result<Option<Self>, ExportError> {
        if !tracing.is_enabled() {
            return Ok(None);
        }
        let config = tracing.clone();
        let build = move || {
            transport::build(&config)?.ok_or_else(|| ExportError::Build {
                exporter: "none",
                endpoint: String::new(),
                reason: "tracing is disabled".to_owned(),
            })
        };
        let destination = match tracing.effective_exporter() {
            TraceExporter::Otlp => crate::config::mask_url(&tracing.effective_endpoint()),
            TraceExporter::Stdout | TraceExporter::None => "stdout".to_owned(),
        };
        let resource = service_resource(service);
        Self::spawn(build, destination, resource, &tracing.batch, registry).map(Some)
    }

    /// Starts a batch exporter around any OpenTelemetry `SpanExporter`, such as the in-memory
    /// exporter of `opentelemetry_sdk` in tests.
    ///
    /// # Errors
    ///
    /// As [`from_config`](Self::from_config), without the transport errors.
    pub fn with_exporter<E: SpanExporter + 'static>(
        exporter: E,
        resource: Resource,
        batch: &BatchConfig,
        registry: &Registry,
    ) -> Result<Self, ExportError> {
        let destination = "custom exporter".to_owned();
        Self::spawn(move || Ok(exporter), destination, resource, batch, registry)
    }

    fn spawn<E, F>(
        build: F,
        destination: String,
        resource: Resource,
        batch: &BatchConfig,
        registry: &Registry,
    ) -> Result<Self, ExportError>
    where
        E: SpanExporter + 'static,
        F: FnOnce() -> Result<E, ExportError> + Send + 'static,
    {
        let batch = &usable(batch);
        let counters = Counters::register(registry)?;
        let default_redactor = match Redactor::with_registry(&RedactConfig::default(), registry) {
            Ok(redactor) => redactor,
            Err(RegisterError::Metrics(error)) => return Err(ExportError::Metrics(error)),
            Err(_) => Redactor::default(),
        };
        let redactor = Arc::new(OnceLock::new());
        let worker_redactor = Arc::clone(&redactor);
        let (spans, span_receiver) = tokio::sync::mpsc::channel(batch.max_queue_size);
        let (control, control_receiver) = tokio::sync::mpsc::unbounded_channel();
        let (ready, started) = std::sync::mpsc::sync_channel(1);

        let signal = Arc::new(Signal::new());
        let worker_signal = Arc::clone(&signal);
        let worker_batch = batch.clone();
        let worker_counters = counters.clone();
        let worker_resource = resource.clone();
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                let rejections = Arc::new(super::rejections::Rejections::default());
                let silence = Worker::<E>::silence(&rejections);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(ExportError::Spawn(error)));
                        return;
                    }
                };
                let built = {
                    let _entered = runtime.enter();
                    build()
                };
                let mut exporter = match built {
                    Ok(exporter) => exporter,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                exporter.set_resource(&worker_resource);
                let _ = ready.send(Ok(()));

                let worker = Worker {
                    exporter,
                    destination,
                    signal: worker_signal,
                    spans: span_receiver,
                    control: control_receiver,
                    batch: worker_batch,
                    counters: worker_counters,
                    warnings: WarnLimiter::default(),
                    silence: Some(silence),
                    rejections,
                    redactor: worker_redactor,
                    default_redactor,
                };
                let silence = runtime.block_on(worker.run());
                drop(runtime);
                drop(silence);
            })
            .map_err(ExportError::Spawn)?;

        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(ExportError::ShutDown),
        }

        Ok(Self {
            inner: Arc::new(Inner {
                spans,
                control,
                counters,
                resource,
                export_timeout: batch.export_timeout,
                batch_size: batch.max_export_batch_size,
                signal,
                shut_down: AtomicBool::new(false),
                redactor,
            }),
        })
    }

    /// Sets the rules that redact span names, attributes, events and status messages before
    /// export. Until this is called, the default rules of [`Redactor::default`] apply. Returns
    /// false, and changes nothing, when rules were set before.
    pub fn set_redactor(&self, redactor: Redactor) -> bool {
        self.inner.redactor.set(redactor).is_ok()
    }

    /// Returns the resource attached to every exported span.
    #[must_use]
    pub fn resource(&self) -> &Resource {
        &self.inner.resource
    }

    /// Exports every span queued now and waits at most `timeout` for it.
    ///
    /// # Errors
    ///
    /// [`ExportError::Timeout`] when the exports did not finish in time. This includes the case
    /// where the thread is still busy with an export to a collector that does not respond, and
    /// the spans then stay queued. [`ExportError::ExportFailed`] when an export failed, and
    /// [`ExportError::ShutDown`] after [`shutdown`](Self::shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        self.request(timeout, |deadline, reply| Command::Flush {
            deadline,
            reply,
        })
    }

    /// Stops accepting spans, exports the queue, shuts the exporter down and waits at most
    /// `timeout` for all of it.
    ///
    /// Spans still queued when the time runs out are dropped and counted with
    /// `reason="shutdown"`. The thread may go on with an export that is under way until that
    /// export's own timeout, but this call returns within `timeout`.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush); [`ExportError::ShutDown`] when called a second time.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return Err(ExportError::ShutDown);
        }
        self.request(timeout, |deadline, reply| Command::Shutdown {
            deadline,
            reply,
        })
    }

    fn request(
        &self,
        timeout: Duration,
        command: impl FnOnce(Instant, std::sync::mpsc::SyncSender<Result<(), ExportError>>) -> Command,
    ) -> Result<(), ExportError> {
        let now = Instant::now();
        // A timeout too large for `Instant` means no deadline in practice.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        let (reply, response) = std::sync::mpsc::sync_channel(1);
        self.inner
            .control
            .send(command(deadline, reply))
            .map_err(|_| ExportError::ShutDown)?;

        match response.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Err(ExportError::Timeout(_))) | Err(RecvTimeoutError::Timeout) => {
                Err(ExportError::Timeout(timeout))
            }
            Ok(result) => result,
            Err(RecvTimeoutError::Disconnected) => Err(ExportError::ShutDown),
        }
    }
}

impl SpanSink for BatchExporter {
    fn send(&self, span: SpanData) {
        let signal = &self.inner.signal;
        let queued = signal.reserve();
        match self.inner.spans.try_send(span) {
            Ok(()) => signal.queued(queued, self.inner.batch_size),
            Err(TrySendError::Full(_)) => {
                signal.release();
                self.inner.counters.dropped_queue_full.inc();
            }
            Err(TrySendError::Closed(_)) => {
                signal.release();
                self.inner.counters.dropped_shutdown.inc();
            }
        }
    }
}

impl SpanProcessor for BatchExporter {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    /// Queues sampled spans; spans that are recorded but not sampled are not exported, as in
    /// the SDK's own batch processor.
    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.send(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush(self.inner.export_timeout).map_err(sdk_error)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown(timeout).map_err(sdk_error)
    }

    fn set_resource(&mut self, _resource: &Resource) {}
}

/// Raises sizes and delays that would stall or spin the worker to their smallest usable values;
/// configuration validation rejects them before they get here.
fn usable(batch: &BatchConfig) -> BatchConfig {
    let max_queue_size = batch.max_queue_size.max(1);
    BatchConfig {
        max_queue_size,
        max_export_batch_size: batch.max_export_batch_size.clamp(1, max_queue_size),
        schedule_delay: batch.schedule_delay.max(Duration::from_millis(1)),
        export_timeout: batch.export_timeout.max(Duration::from_millis(1)),
    }
}

fn sdk_error(error: ExportError) -> OTelSdkError {
    match error {
        ExportError::Timeout(timeout) => OTelSdkError::Timeout(timeout),
        ExportError::ShutDown => OTelSdkError::AlreadyShutdown,
        other => OTelSdkError::InternalFailure(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_raises_zero_sizes_and_delays() {
        let batch = usable(&BatchConfig {
            max_queue_size: 0,
            max_export_batch_size: 0,
            schedule_delay: Duration::ZERO,
            export_timeout: Duration::ZERO,
        });
        assert_eq!(batch.max_queue_size, 1);
        assert_eq!(batch.max_export_batch_size, 1);
        assert_eq!(batch.schedule_delay, Duration::from_millis(1));
        assert_eq!(batch.export_timeout, Duration::from_millis(1));
    }

    #[test]
    fn usable_caps_batch_at_queue_size() {
        let batch = usable(&BatchConfig {
            max_queue_size: 8,
            max_export_batch_size: 512,
            ..BatchConfig::default()
        });
        assert_eq!(batch.max_export_batch_size, 8);
    }

    #[test]
    fn sdk_error_maps_shutdown_and_timeout() {
        assert!(matches!(
            sdk_error(ExportError::ShutDown),
            OTelSdkError::AlreadyShutdown
        ));
        assert!(matches!(
            sdk_error(ExportError::Timeout(Duration::from_secs(1))),
            OTelSdkError::Timeout(timeout) if timeout == Duration::from_secs(1)
        ));
    }
}
