//! Structured logging: a `tracing` subscriber that writes JSON or text lines through a
//! non-blocking writer.
//!
//! [`install`] sets the global subscriber; [`layer`] returns the same output as a
//! [`Layer`] to compose with other layers. Events from the
//! application, its dependencies and the `log` crate (through `tracing-log`) are filtered by
//! [`LoggingConfig::level`], sampled below WARN by [`LoggingConfig::sample_rate`], formatted on
//! the emitting thread and handed to a dedicated writer thread through a queue of
//! [`LoggingConfig::queue_capacity`] lines. The emitting thread never waits for I/O.
//!
//! # Example
//!
//! ```no_run
//! use obskit::config::{LoggingConfig, ServiceConfig};
//! use obskit::logging::{self, LogOutput};
//! use obskit::metrics::Registry;
//!
//! # fn main() -> Result<(), obskit::logging::LoggingError> {
//! let service = ServiceConfig {
//!     name: "checkout".to_owned(),
//!     environment: "production".to_owned(),
//!     version: "1.4.2".to_owned(),
//!     ..ServiceConfig::default()
//! };
//! let registry = Registry::default();
//! let guard = logging::install(&LoggingConfig::default(), &service, &registry, LogOutput::Stdout)?;
//!
//! let span = tracing::info_span!("request", request_id = "7f3a", http_route = "/orders/{id}");
//! let _entered = span.enter();
//! tracing::info!(order_id = 1042, total = 99.5, "order placed");
//!
//! guard.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok(())
//! # }
//! ```
//!
//! writes this line (wrapped here):
//!
//! ```text
//! {"timestamp":"2026-12-04T15:26:22.123456Z","level":"INFO","target":"checkout",
//!  "message":"order placed","service":"checkout","environment":"production",
//!  "version":"1.4.2","order_id":1042,"total":99.5,"request_id":"7f3a",
//!  "http_route":"/orders/{id}"}
//! ```
//!
//! # JSON line layout
//!
//! Keys appear in this order:
//!
//! 1. `timestamp` (RFC 3339, UTC, six fractional digits), `level`, `target`, `message`,
//!    `service`, `environment`, `version`;
//! 2. the event's fields;
//! 3. the fields of the event's span, then of each parent up to the root. A name already
//!    written is skipped, so event fields win over span fields and inner spans over outer ones;
//! 4. `trace_id` and `span_id` as lowercase hex, when a span in scope carries a
//!    [`TraceContext`] extension.
//!
//! A field whose name is one of the top-level keys is written as `fields.<name>`. Strings are
//! escaped per RFC 8259, `Debug` and `Display` values are written as strings, and NaN and
//! infinities as the strings `"NaN"`, `"inf"` and `"-inf"`. Span fields are rendered once when
//! the span is created or recorded.
//!
//! # Dropped events
//!
//! Events that are not written are counted in `obskit_log_events_dropped_total`, registered
//! in the registry passed in, with `reason` one of:
//!
//! | `reason` | Meaning |
//! |---|---|
//! | `queue_full` | `queue_capacity` lines, or 64 MiB, were waiting for the writer thread |
//! | `write_error` | writing or flushing the output failed |
//! | `sampled` | removed by `sample_rate` |
//! | `shutdown` | emitted after the [`LogGuard`] was shut down |
//!
//! # Limitations
//!
//! - `queue_capacity` bounds the number of lines; their bytes are bounded by a fixed 64 MiB.
//! - The text format is tracing-subscriber's `fmt` output and carries neither the service
//!   fields nor `trace_id`.
//! - `level` is read from the configuration only; `RUST_LOG` is not consulted here.
//! - Lines still queued when the process ends without dropping the [`LogGuard`]
//!   (`std::process::exit`, an aborting panic) are lost.

mod escape;
mod fields;
mod global;
mod json;
mod keys;
mod sampling;
mod text;
mod time;
mod writer;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::layer::{Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, LoggingConfig, RedactConfig, ServiceConfig};
use crate::metrics::{MetricsError, Registry};
use crate::redact::Redactor;

pub use json::TraceContext;
pub use writer::LogGuard;

/// Target of the access event that the HTTP middleware writes once per request. The span
/// bridge does not copy it into the server span, whose attributes it repeats, and the JSON
/// formatter writes the fields the middleware produces itself without scanning them.
pub(crate) const ACCESS_TARGET: &str = "obskit::access";

/// Target and name of the span that the HTTP middleware opens per request. The JSON formatter
/// writes its known method and route template without scanning them.
pub(crate) const REQUEST_SPAN_TARGET: &str = "obskit::http";
pub(crate) const REQUEST_SPAN_NAME: &str = "http_request";

/// Name of the dropped-events counter family, without the `_total` suffix.
pub const DROPPED_EVENTS_METRIC: &str = "obskit_log_events_dropped";

/// The layer returned by [`layer`], boxed because the format is chosen at runtime.
pub type BoxedLayer<S> = Box<dyn Layer<S> + Send + Sync + 'static>;

/// Errors from setting up or shutting down logging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// `logging.level` is not a valid filter.
    #[error("invalid logging.level {value:?}: {reason}")]
    InvalidLevel {
        /// The configured value.
        value: String,
        /// The problem and the accepted forms.
        reason: String,
    },
    /// `logging.sample_rate` is outside `0.0..=1.0`.
    #[error(
        "invalid logging.sample_rate {value}: expected a number from 0.0 (keep no event below WARN) to 1.0 (keep all)"
    )]
    InvalidSampleRate {
        /// The configured value.
        value: f64,
    },
    /// `logging.queue_capacity` is zero.
    #[error("invalid logging.queue_capacity 0: the writer queue needs room for at least one line")]
    InvalidQueueCapacity,
    /// The log file could not be opened for appending.
    #[error("failed to open log file {path:?} for appending: {source}")]
    OpenFile {
        /// The file path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("failed to start the log writer thread: {0}")]
    SpawnWriter(#[source] std::io::Error),
    /// Registering the dropped-events counter failed.
    #[error("failed to register {DROPPED_EVENTS_METRIC}: {0}")]
    Metrics(#[from] MetricsError),
    /// Another `log` logger is already set, so `log` records cannot be forwarded to `tracing`.
    #[error(
        "failed to forward log records to tracing: {0}; remove the other log logger (such as env_logger) or do not call forward_log_records"
    )]
    LogLoggerAlreadySet(#[source] tracing_log::log::SetLoggerError),
    /// A global `tracing` subscriber is already set.
    #[error(
        "a global tracing subscriber is already installed; call obskit::logging::install once, or use obskit::logging::layer to add obskit's output to your own subscriber"
    )]
    AlreadyInstalled,
    /// The redaction rules are invalid, or their counter could not be registered.
    #[error(transparent)]
    Redaction(#[from] crate::redact::RegisterError),
    /// Queued lines were not written before the timeout.
    #[error(
        "log output did not accept {pending} queued lines in time; check that the output is writable and not blocked"
    )]
    FlushTimedOut {
        /// Lines still waiting to be written.
        pending: u64,
    },
}

/// Destination of log lines.
#[derive(Default)]
#[non_exhaustive]
pub enum LogOutput {
    /// Standard output.
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, created if missing and appended to.
    File(PathBuf),
    /// Any writer, such as a socket or an in-memory buffer in tests.
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for LogOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout => f.write_str("Stdout"),
            Self::Stderr => f.write_str("Stderr"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

impl LogOutput {
    /// Opens the output; returns the writer and whether it is a terminal.
    fn open(self) -> Result<(Box<dyn Write + Send>, bool), LoggingError> {
        match self {
            Self::Stdout => Ok((Box::new(std::io::stdout()), text::stdout_is_terminal())),
            Self::Stderr => Ok((Box::new(std::io::stderr()), text::stderr_is_terminal())),
            Self::File(path) => match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(file) => Ok((Box::new(file), false)),
                Err(source) => Err(LoggingError::OpenFile { path, source }),
            },
            Self::Writer(writer) => Ok((writer, false)),
        }
    }
}

/// Builds obskit's logging layer and starts its writer thread, without installing anything.
///
/// Use it to add obskit's output to a subscriber that has other layers, or to scope it with
/// [`tracing::subscriber::with_default`]. The layer carries its own level filter and sampler,
/// so other layers of the subscriber still see every event. It registers
/// `obskit_log_events_dropped_total` and `obskit_redactions_total` in `registry`, and redacts
/// with the default rules; [`layer_with_redactor`] takes other rules.
///
/// `log` records reach the layer only when a `log` logger forwards them to `tracing`: call
/// [`forward_log_records`] after setting the subscriber ([`install`] does both).
///
/// # Example
///
/// ```
/// use obskit::config::{LoggingConfig, ServiceConfig};
/// use obskit::logging::{self, LogOutput};
/// use obskit::metrics::Registry;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # fn main() -> Result<(), obskit::logging::LoggingError> {
/// let registry = Registry::default();
/// let (layer, guard) = logging::layer(
///     &LoggingConfig::default(),
///     &ServiceConfig::default(),
///     &registry,
///     LogOutput::Writer(Box::new(std::io::sink())),
/// )?;
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// guard.flush()?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// An invalid `level`, `sample_rate` or `queue_capacity`, a file that cannot be opened, a
/// metric name already registered in `registry`, or a writer thread that cannot start.
pub fn layer<S>(
    logging: &LoggingConfig,
    service: &ServiceConfig,
    registry: &Registry,
    output: LogOutput,
) -> Result<(BoxedLayer<S>, LogGuard), LoggingError>
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    let redactor = default_redactor(registry)?;
    layer_with_redactor(logging, service, registry, output, redactor)
}

/// [`layer`] with the redaction rules of `redactor` instead of the default ones.
///
/// # Example
///
/// ```
/// use obskit::config::{LoggingConfig, RedactConfig, RuleMode, RuleModes, ServiceConfig};
/// use obskit::logging::{self, LogOutput};
/// use obskit::metrics::Registry;
/// use obskit::redact::Redactor;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::default();
/// let rules = RedactConfig {
///     rules: RuleModes { card: RuleMode::Partial, ..RuleModes::default() },
///     ..RedactConfig::default()
/// };
/// let redactor = Redactor::with_registry(&rules, &registry)?;
/// let (layer, guard) = logging::layer_with_redactor(
///     &LoggingConfig::default(),
///     &ServiceConfig::default(),
///     &registry,
///     LogOutput::Writer(Box::new(std::io::sink())),
///     redactor,
/// )?;
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!("card 4111 1111 1111 1111"));
/// guard.flush()?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`layer`].
pub fn layer_with_redactor<S>(
    logging: &LoggingConfig,
    service: &ServiceConfig,
    registry: &Registry,
    output: LogOutput,
    redactor: Redactor,
) -> Result<(BoxedLayer<S>, LogGuard), LoggingError>
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    let parts = Parts::new(logging, registry, output)?;
    let layer = match plain_level(&logging.level) {
        // A bare level needs none of `EnvFilter`'s per-span bookkeeping, which in
        // tracing-subscriber 0.3.23 takes a lock on every span entry, exit and close.
        Some(level) => format_layer(
            logging.format,
            &parts.queue,
            service,
            parts.is_terminal,
            level,
            parts.sampler,
            redactor,
        ),
        None => format_layer(
            logging.format,
            &parts.queue,
            service,
            parts.is_terminal,
            parts.env_filter,
            parts.sampler,
            redactor,
        ),
    };
    Ok((layer, LogGuard::new(parts.queue, parts.thread)))
}

/// Builds a subscriber whose only output is obskit's layer, filtered globally, without
/// installing it. [`install`] sets this subscriber as the global default.
///
/// Filtering the whole subscriber, not the layer, skips the per-layer filter bookkeeping that
/// tracing-subscriber does on every span entry, exit and close. Use [`layer`] instead to combine
/// obskit's output with other layers that must see events obskit's level filters out.
///
/// # Errors
///
/// As [`layer`].
pub fn subscriber(
    logging: &LoggingConfig,
    service: &ServiceConfig,
    registry: &Registry,
    output: LogOutput,
) -> Result<(tracing::Dispatch, LogGuard), LoggingError> {
    let redactor = default_redactor(registry)?;
    build_dispatch(logging, service, registry, output, redactor, None)
}

/// Builds the redactor of the default rules, counting into `registry`.
fn default_redactor(registry: &Registry) -> Result<Redactor, LoggingError> {
    Ok(Redactor::with_registry(&RedactConfig::default(), registry)?)
}

/// Builds the subscriber that [`crate::init`] installs: the one of [`subscriber`] with
/// `redactor` instead of the default rules and the span bridge `otel` after the log layer.
///
/// Spans at INFO and above are enabled whatever the log level, so a service that logs only
/// warnings still traces its requests. Events still follow the log level.
///
/// # Errors
///
/// As [`subscriber`].
pub fn subscriber_with_spans(
    logging: &LoggingConfig,
    service: &ServiceConfig,
    registry: &Registry,
    output: LogOutput,
    redactor: Redactor,
    otel: Option<crate::trace::OtelLayer>,
) -> Result<(tracing::Dispatch, LogGuard), LoggingError> {
    build_dispatch(logging, service, registry, output, redactor, otel)
}

/// Builds the subscriber of [`subscriber`], with `otel` after the log layer when given, as
/// [`subscriber_with_spans`] describes.
pub(crate) fn build_dispatch(
    logging: &LoggingConfig,
    service: &ServiceConfig,
    registry: &Registry,
    output: LogOutput,
    redactor: Redactor,
    otel: Option<crate::trace::OtelLayer>,
) -> Result<(tracing::Dispatch, LogGuard), LoggingError> {
    let parts = Parts::new(logging, registry, output)?;
    let floor = if otel.is_some() {
        LevelFilter::INFO
    } else {
        LevelFilter::OFF
    };
    let outputs = Outputs {
        format: logging.format,
        queue: parts.queue.clone(),
        service,
        is_terminal: parts.is_terminal,
        redactor,
        otel,
    };
    // Each filter gets its own subscriber type instead of one boxed filter layer, so the
    // callbacks of every span and event call the filter directly rather than through a vtable.
    let dispatch = match plain_level(&logging.level) {
        Some(level) => outputs.dispatch(global::GlobalFilter(global::SpanFloor {
            inner: level.and(parts.sampler),
            floor,
        })),
        None => outputs.dispatch(global::GlobalFilter(global::SpanFloor {
            inner: parts.env_filter.and(parts.sampler),
            floor,
        })),
    };
    Ok((dispatch, LogGuard::new(parts.queue, parts.thread)))
}

/// The layers of [`build_dispatch`]'s subscriber that follow its filter.
struct Outputs<'a> {
    format: LogFormat,
    queue: std::sync::Arc<writer::Queue>,
    service: &'a ServiceConfig,
    is_terminal: bool,
    redactor: Redactor,
    otel: Option<crate::trace::OtelLayer>,
}

impl Outputs<'_> {
    /// Builds the subscriber: the registry, `filter`, the format layer and the span bridge.
    fn dispatch<F>(self, filter: F) -> tracing::Dispatch
    where
        F: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    {
        let base = tracing_subscriber::registry().with(filter);
        // The bridge sits directly on the subscriber, behind no filter of its own.
        let otel = self.otel.map(crate::trace::OtelLayer::sees_every_span);
        // `None` as a layer does nothing, so services without tracing pay only a branch.
        match self.format {
            LogFormat::Json => tracing::Dispatch::new(
                base.with(json::JsonLayer::new(
                    self.queue,
                    self.service,
                    self.redactor,
                ))
                .with(otel),
            ),
            LogFormat::Text => tracing::Dispatch::new(
                base.with(text::layer(self.queue, self.is_terminal, self.redactor))
                    .with(otel),
            ),
        }
    }
}

/// The validated settings, drop counters and running writer behind a logging layer.
struct Parts {
    env_filter: EnvFilter,
    sampler: sampling::Sampler,
    queue: std::sync::Arc<writer::Queue>,
    thread: std::thread::JoinHandle<()>,
    is_terminal: bool,
}

impl Parts {
    fn new(
        logging: &LoggingConfig,
        registry: &Registry,
        output: LogOutput,
    ) -> Result<Self, LoggingError> {
        let env_filter = parse_level(&logging.level)?;
        let rate = logging.sample_rate;
        if !(0.0..=1.0).contains(&rate) {
            return Err(LoggingError::InvalidSampleRate { value: rate });
        }
        if logging.queue_capacity == 0 {
            return Err(LoggingError::InvalidQueueCapacity);
        }
        let (output, is_terminal) = output.open()?;

        let family = Family::<writer::DropLabels, Counter>::default();
        registry.register(
            DROPPED_EVENTS_METRIC,
            "Log events that were not written, by reason",
            family.clone(),
        )?;
        let drops = writer::DropCounters::new(&family);
        let sampler = sampling::Sampler::new(rate, drops.sampled.clone());
        let (queue, thread) = writer::spawn(output, logging.queue_capacity, drops)?;
        Ok(Self {
            env_filter,
            sampler,
            queue,
            thread,
            is_terminal,
        })
    }
}

/// Builds the formatting layer for `format`, filtered by `level` and then `sampler`.
fn format_layer<S, F>(
    format: LogFormat,
    queue: &std::sync::Arc<writer::Queue>,
    service: &ServiceConfig,
    is_terminal: bool,
    level: F,
    sampler: sampling::Sampler,
    redactor: Redactor,
) -> BoxedLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
    F: Filter<S> + Send + Sync + 'static,
{
    let filter = level.and(sampler);
    match format {
        LogFormat::Json => {
            Box::new(json::JsonLayer::new(queue.clone(), service, redactor).with_filter(filter))
        }
        LogFormat::Text => {
            Box::new(text::layer(queue.clone(), is_terminal, redactor).with_filter(filter))
        }
    }
}

/// Returns the level when `level` is one bare level name such as `info`, which filters exactly
/// like the same `EnvFilter` directive.
fn plain_level(level: &str) -> Option<LevelFilter> {
    let level = level.trim();
    if LEVEL_NAMES
        .iter()
        .any(|name| name.eq_ignore_ascii_case(level))
    {
        level.parse().ok()
    } else {
        None
    }
}

/// Sets obskit's logging as the global `tracing` subscriber and forwards `log` records to it.
///
/// Keep the returned guard alive until the program exits; dropping it writes the queued lines
/// and stops the writer thread. See [`layer`] for the parameters.
///
/// If another `log` logger is already set, `log` records are not captured, and a WARN event with
/// target `obskit::logging` reports it. Everything else works.
///
/// # Errors
///
/// [`LoggingError::AlreadyInstalled`] when a global subscriber is already set, and every error
/// of [`layer`].
pub fn install(
    logging: &LoggingConfig,
    service: &ServiceConfig,
    registry: &Registry,
    output: LogOutput,
) -> Result<LogGuard, LoggingError> {
    // `tracing::dispatcher::has_been_set` is also true after a scoped `set_default`, so the
    // only reliable check is `set_global_default` itself; on failure the guard stops the writer.
    let redactor = default_redactor(registry)?;
    install_with(logging, service, registry, output, redactor, None)
}

/// [`install`], with the span bridge after the log layer when `otel` is given.
pub(crate) fn install_with(
    logging: &LoggingConfig,
    service: &ServiceConfig,
    registry: &Registry,
    output: LogOutput,
    redactor: Redactor,
    otel: Option<crate::trace::OtelLayer>,
) -> Result<LogGuard, LoggingError> {
    let (dispatch, guard) = build_dispatch(logging, service, registry, output, redactor, otel)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|_| LoggingError::AlreadyInstalled)?;

    if let Err(error) = forward_log_records() {
        tracing::warn!(
            target: "obskit::logging",
            %error,
            "log records are not captured because another log logger is already set"
        );
    }
    Ok(guard)
}

/// Forwards records of the `log` crate to `tracing`, as events with the record's target and
/// level, by setting `tracing_log::LogTracer` as the `log` logger.
///
/// [`install`] calls this. Call it yourself after setting a global subscriber that contains the
/// layer from [`layer`]. Records above the subscriber's current maximum level are discarded
/// inside the `log` crate, without reaching `tracing`.
///
/// # Errors
///
/// [`LoggingError::LogLoggerAlreadySet`] when a `log` logger is already set, including by an
/// earlier call.
pub fn forward_log_records() -> Result<(), LoggingError> {
    let max_level = tracing_log::AsLog::as_log(&tracing::level_filters::LevelFilter::current());
    tracing_log::LogTracer::builder()
        .with_max_level(max_level)
        .init()
        .map_err(LoggingError::LogLoggerAlreadySet)
}

/// Level names accepted by `EnvFilter`, for spotting typos in bare directives.
const LEVEL_NAMES: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Parses `level` as `EnvFilter` directives, rejecting a bare word that looks like a misspelt
/// level: `EnvFilter` would read `infoo` as "everything from target `infoo`".
fn parse_level(level: &str) -> Result<EnvFilter, LoggingError> {
    let invalid = |reason: String| LoggingError::InvalidLevel {
        value: level.to_owned(),
        reason,
    };
    if level.trim().is_empty() {
        return Err(invalid(
            "it is empty; set a level such as \"info\" or directives such as \"info,hyper=warn\""
                .to_owned(),
        ));
    }

    for directive in level.split(',').map(str::trim) {
        let word = directive.to_ascii_lowercase();
        if word.is_empty() || word.contains(['=', '[', ':']) || LEVEL_NAMES.contains(&word.as_str())
        {
            continue;
        }
        if let Some(near) = LEVEL_NAMES
            .iter()
            .find(|name| word.len() >= 3 && strsim::levenshtein(&word, name) <= 2)
        {
            return Err(invalid(format!(
                "{directive:?} is not a level; did you mean {near:?}? A bare word selects a target at TRACE, write \"{directive}=trace\" if that is what you want"
            )));
        }
    }

    EnvFilter::builder().parse(level).map_err(|error| {
        invalid(format!(
            "{error}; expected a level (trace, debug, info, warn, error, off) or directives such as \"info,hyper=warn,my_app::db=debug\""
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn installed_bridge_makes_quiet_children() {
        struct Discard;
        impl crate::trace::SpanSink for Discard {
            fn send(&self, _span: opentelemetry_sdk::trace::SpanData) {}
        }
        for (level, format) in [
            ("info", LogFormat::Json),
            ("info,app=debug", LogFormat::Text),
        ] {
            let otel = crate::trace::OtelLayer::new(
                crate::trace::Sampler::ParentBasedAlwaysOn,
                std::sync::Arc::new(Discard),
                opentelemetry::InstrumentationScope::builder("test").build(),
            );
            let logging = LoggingConfig {
                level: level.to_owned(),
                format,
                ..LoggingConfig::default()
            };
            let (dispatch, _guard) = subscriber_with_spans(
                &logging,
                &ServiceConfig::default(),
                &Registry::default(),
                LogOutput::Writer(Box::new(std::io::sink())),
                Redactor::disabled(),
                Some(otel),
            )
            .unwrap();
            let otel = dispatch.downcast_ref::<crate::trace::OtelLayer>().unwrap();
            assert!(otel.quiet_active(), "{level}");
        }
    }

    #[test]
    fn level_accepts_levels_and_directives() {
        for value in [
            "info",
            "WARN",
            "off",
            "info,hyper=warn",
            "my_app::db=debug",
            "app",
        ] {
            assert!(parse_level(value).is_ok(), "{value}");
        }
    }

    #[test]
    fn level_rejects_typo_with_hint() {
        let error = parse_level("infoo").unwrap_err().to_string();
        assert!(error.contains("did you mean \"info\""), "{error}");
        let error = parse_level("info,wrn").unwrap_err().to_string();
        assert!(error.contains("did you mean \"warn\""), "{error}");
    }

    #[test]
    fn plain_level_only_for_bare_names() {
        assert_eq!(plain_level("info"), Some(LevelFilter::INFO));
        assert_eq!(plain_level(" WARN "), Some(LevelFilter::WARN));
        assert_eq!(plain_level("off"), Some(LevelFilter::OFF));
        assert_eq!(plain_level("info,hyper=warn"), None);
        assert_eq!(plain_level("app"), None);
        assert_eq!(plain_level("3"), None);
    }

    #[test]
    fn level_rejects_empty() {
        assert!(matches!(
            parse_level(" "),
            Err(LoggingError::InvalidLevel { .. })
        ));
    }

    #[test]
    fn level_rejects_bad_syntax() {
        let error = parse_level("app=loud").unwrap_err().to_string();
        assert!(error.contains("app=loud"), "{error}");
    }
}
