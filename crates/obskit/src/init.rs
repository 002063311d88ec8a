//! One-call setup: logging, metrics, health, admin endpoints, middleware and shutdown.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::Config;
use crate::health::HealthRegistry;
use crate::logging::{LogGuard, LogOutput};
use crate::metrics::Registry;
use crate::shutdown::Shutdown;

/// Errors of [`init`] and [`ObskitBuilder::build`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Loading the configuration failed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Setting up logging failed.
    #[error("setting up logging failed: {0}")]
    Logging(#[from] crate::logging::LoggingError),
    /// Registering metrics failed.
    #[error("registering metrics failed: {0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    /// Setting up health checks failed.
    #[error("setting up health checks failed: {0}")]
    Health(#[from] crate::health::HealthError),
    /// The redaction rules are invalid.
    #[error("setting up redaction failed: {0}")]
    Redaction(#[from] crate::redact::RegisterError),
    /// Setting up span export failed.
    #[error("setting up span export failed: {0}")]
    Tracing(#[from] crate::trace::ExportError),
    /// Setting up the admin endpoints failed.
    #[cfg(feature = "http")]
    #[error("setting up the admin endpoints failed: {0}")]
    Admin(#[from] crate::admin::AdminError),
    /// The SLO definitions are invalid.
    #[error("setting up SLOs failed: {0}")]
    Slo(#[from] crate::slo::SloErrors),
    /// A circuit breaker's settings are invalid.
    #[cfg(feature = "resilience")]
    #[error("setting up circuit breakers failed: {0}")]
    Resilience(#[from] crate::resilience::BreakerError),
}

/// Sets up obskit from `config`: installs the global `tracing` subscriber (JSON or text logs to
/// standard output), creates the metric registry with process, runtime and service metrics,
/// the health registry, the admin endpoints, the HTTP middleware and the shutdown coordinator.
///
/// Call it once, early in `main`, inside a tokio runtime when runtime metrics are on. See
/// [`Obskit::builder`] to choose the log output or to keep your own subscriber.
///
/// # Errors
///
/// Fails when a global subscriber is already set, or when a setting is unusable.
pub fn init(config: Config) -> Result<Obskit, InitError> {
    Obskit::builder(config).build()
}

/// Builder for [`Obskit`].
#[derive(Debug)]
pub struct ObskitBuilder {
    config: Config,
    log_output: Option<LogOutput>,
    install_logging: bool,
    registry: Option<Registry>,
}

impl ObskitBuilder {
    /// Writes logs to `output` instead of standard output.
    #[must_use]
    pub fn log_output(mut self, output: LogOutput) -> Self {
        self.log_output = Some(output);
        self
    }

    /// Skips installing the global `tracing` subscriber, for applications that compose their
    /// own with [`crate::logging::layer`].
    #[must_use]
    pub fn without_logging(mut self) -> Self {
        self.install_logging = false;
        self
    }

    /// Uses `registry` instead of a new one.
    #[must_use]
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Sets everything up.
    ///
    /// # Errors
    ///
    /// As [`init`].
    pub fn build(self) -> Result<Obskit, InitError> {
        let config = self.config;
        let registry = self
            .registry
            .unwrap_or_else(|| Registry::new(&config.metrics));

        let redactor = crate::redact::Redactor::with_registry(&config.redact, &registry)?;
        let spans =
            crate::trace::BatchExporter::from_config(&config.tracing, &config.service, &registry)?;
        if let Some(spans) = &spans {
            spans.set_redactor(redactor.clone());
        }
        let sampler = config.tracing.effective_sampler();
        let log_guard = if self.install_logging {
            let otel = spans.as_ref().map(|spans| {
                crate::trace::OtelLayer::new(
                    sampler,
                    Arc::new(spans.clone()),
                    instrumentation_scope(),
                )
                .keep_errors(config.tracing.keep_errors)
                .attribute_value_length_limit(config.tracing.attribute_value_length_limit)
            });
            Some(crate::logging::install_with(
                &config.logging,
                &config.service,
                &registry,
                self.log_output.unwrap_or_default(),
                redactor,
                otel,
            )?)
        } else {
            None
        };
        warn_plain_text_tls(&config.tracing);
        warn_sampler_override(&config.tracing);
        if let Some(spans) = &spans {
            // Applications that use the OpenTelemetry API directly export through the same queue.
            opentelemetry::global::set_tracer_provider(
                spans.tracer_provider_builder(sampler).build(),
            );
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
        }

        // `Registry::new` already added the process metrics when they are enabled.
        registry.register_service_info(&config.service)?;
        if config.metrics.runtime_metrics {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => registry.register_runtime_metrics(handle)?,
                Err(_) => tracing::warn!(
                    target: "obskit::init",
                    "runtime metrics are on but init ran outside a tokio runtime; call init inside the runtime or set metrics.runtime_metrics = false"
                ),
            }
        }

        let health = HealthRegistry::new(&config.health, &config.service, &registry)?;
        let shutdown = Shutdown::new(&config.shutdown);
        shutdown.on_trigger({
            let health = health.clone();
            move || health.set_shutting_down()
        });

        // Spans are flushed before the logs, so a warning about a failed export is written too.
        if let Some(spans) = spans.clone() {
            let timeout = config.tracing.shutdown_timeout;
            shutdown.add_finalizer(
                "flush spans",
                timeout + Duration::from_secs(1),
                move || async move {
                    let flushed =
                        tokio::task::spawn_blocking(move || spans.shutdown(timeout)).await;
                    if let Ok(Err(error)) = flushed {
                        tracing::warn!(
                            target: "obskit::trace",
                            %error,
                            "spans were not all exported at shutdown"
                        );
                    }
                },
            );
        }

        // Logs are flushed, not closed, at the end of shutdown: the application may still log
        // after `serve` returns, and the guard writes those lines when the handle is dropped.
        let log_guard = Arc::new(Mutex::new(log_guard));
        shutdown.add_finalizer(
            "flush logs",
            LogGuard::DEFAULT_SHUTDOWN_TIMEOUT + Duration::from_secs(1),
            {
                let log_guard = Arc::clone(&log_guard);
                move || async move {
                    let flushed =
                        tokio::task::spawn_blocking(move || match log_guard.lock().as_ref() {
                            Some(guard) => guard.flush(),
                            None => Ok(()),
                        })
                        .await;
                    if let Ok(Err(error)) = flushed {
                        // The log pipeline itself failed, so standard error is the only place left.
                        #[allow(clippy::print_stderr)]
                        {
                            eprintln!("obskit: flushing logs at shutdown failed: {error}");
                        }
                    }
                }
            },
        );

        // A second signal exits at once, after this flush. The flush returns as soon as the
        // queue is written and waits at most `LogGuard::DEFAULT_SHUTDOWN_TIMEOUT` when the
        // output is blocked.
        shutdown.before_forced_exit({
            let log_guard = Arc::clone(&log_guard);
            move || {
                if let Some(guard) = log_guard.lock().as_ref() {
                    let _ = guard.flush();
                }
            }
        });

        #[cfg(feature = "resilience")]
        let resilience = crate::resilience::Resilience::new(&config.resilience, &registry)?;

        let slo = if config.slo.objectives.is_empty() {
            None
        } else {
            let set = config.slo.definitions()?;
            // Buckets are 10 s wide, so the coarse clock's tick of a few milliseconds does not matter.
            let clock: Arc<dyn crate::clock::Clock> =
                Arc::new(crate::clock::CoarseMonotonicClock::new());
            let slos = crate::slo::SloRegistry::new(set, clock).map_err(|error| {
                crate::slo::SloErrors {
                    errors: vec![error],
                }
            })?;
            slos.register_metrics(&registry)?;
            Some(Arc::new(slos))
        };

        #[cfg(feature = "http")]
        let http = {
            let mut layer = crate::http::HttpLayer::new(&registry, &config.http)?
                .with_trace_context(spans.is_some());
            if let Some(slos) = &slo {
                layer = layer.with_slo(Arc::clone(slos));
            }
            let admin = crate::admin::AdminState::new(
                registry.clone(),
                health.clone(),
                &config.metrics,
                &config.admin,
            )?;
            #[cfg(feature = "resilience")]
            let admin = admin.with_resilience(resilience.clone());
            let admin = match &slo {
                Some(slos) => admin.with_slo(Arc::clone(slos)),
                None => admin,
            };
            HttpParts { layer, admin }
        };

        // Service, environment and version are on every JSON line already.
        tracing::info!(
            target: "obskit::init",
            log_format = match config.logging.format {
                crate::config::LogFormat::Json => "json",
                crate::config::LogFormat::Text => "text",
            },
            log_level = %config.logging.level,
            trace_exporter = config.tracing.effective_exporter().as_str(),
            "obskit initialised"
        );
        Ok(Obskit {
            config: Arc::new(config),
            spans,
            registry,
            health,
            shutdown,
            log_guard,
            slo,
            #[cfg(feature = "resilience")]
            resilience,
            #[cfg(feature = "http")]
            http,
        })
    }
}

#[cfg(feature = "http")]
#[derive(Clone, Debug)]
struct HttpParts {
    layer: crate::http::HttpLayer,
    admin: crate::admin::AdminState,
}

/// Handle to everything [`init`] set up. Keep it alive for the life of the service: dropping
/// the last clone writes every queued log line and stops the log writer.
///
/// # Example
///
/// ```no_run
/// use axum::{Router, routing::get};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let obskit = obskit::init(obskit::Config::load()?)?;
/// obskit.shutdown().listen_for_signals()?;
///
/// let app = Router::new().route("/orders/{id}", get(|| async { "order" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// obskit.health().mark_started();
/// obskit.serve(listener, app).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Obskit {
    config: Arc<Config>,
    registry: Registry,
    health: HealthRegistry,
    shutdown: Shutdown,
    log_guard: Arc<Mutex<Option<LogGuard>>>,
    spans: Option<crate::trace::BatchExporter>,
    slo: Option<Arc<crate::slo::SloRegistry>>,
    #[cfg(feature = "resilience")]
    resilience: crate::resilience::Resilience,
    #[cfg(feature = "http")]
    http: HttpParts,
}

impl std::fmt::Debug for Obskit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obskit")
            .field("service", &self.config.service.name)
            .finish_non_exhaustive()
    }
}

impl Obskit {
    /// Starts building an [`Obskit`] from `config`.
    pub fn builder(config: Config) -> ObskitBuilder {
        ObskitBuilder {
            config,
            log_output: None,
            install_logging: true,
            registry: None,
        }
    }

    /// Returns the effective configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns the metric registry served on `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Returns the health registry served under `/health`.
    pub fn health(&self) -> &HealthRegistry {
        &self.health
    }

    /// Returns the shutdown coordinator. Readiness fails as soon as it is triggered, and logs are
    /// flushed as its last step.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Returns the circuit breakers configured under `resilience.circuit_breakers` and the rate
    /// limiters listed on the admin route `/resilience`.
    #[cfg(feature = "resilience")]
    pub fn resilience(&self) -> &crate::resilience::Resilience {
        &self.resilience
    }

    /// Returns the SLOs of the `[slo.objectives]` configuration, which the HTTP middleware
    /// records every request into and `/slo` serves; `None` when none are configured.
    pub fn slo(&self) -> Option<&Arc<crate::slo::SloRegistry>> {
        self.slo.as_ref()
    }

    /// Returns the span exporter when tracing is enabled.
    ///
    /// With [`ObskitBuilder::without_logging`], add an [`OtelLayer`](crate::trace::OtelLayer)
    /// around it to your own subscriber to export `tracing` spans.
    pub fn span_exporter(&self) -> Option<&crate::trace::BatchExporter> {
        self.spans.as_ref()
    }

    /// Writes every queued log line now.
    ///
    /// # Errors
    ///
    /// Fails when the log output does not accept the lines in time.
    pub fn flush_logs(&self) -> Result<(), crate::logging::LoggingError> {
        match self.log_guard.lock().as_ref() {
            Some(guard) => guard.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "http")]
impl Obskit {
    /// Returns the HTTP middleware: request metrics, access log, request ids, panic recovery.
    pub fn http_layer(&self) -> crate::http::HttpLayer {
        self.http.layer.clone()
    }

    /// Returns the admin routes, `/metrics`, `/resilience` and the health probes, to merge into the application's
    /// router or serve on a separate listener.
    pub fn admin_router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        crate::admin::router(self.http.admin.clone())
    }

    /// Adds the admin routes to `app` and wraps both in the middleware, ready to serve on one
    /// listener.
    ///
    /// The middleware wraps the merged router, so requests that match no route are recorded
    /// (with an empty `http_route`) and `http.exclude_paths` alone decides whether the admin
    /// routes are recorded.
    pub fn router(&self, app: axum::Router) -> axum::Router {
        // Layering `app` before the merge would leave the merged router's fallback, and so
        // every 404, outside the middleware.
        app.merge(self.admin_router()).layer(self.http_layer())
    }

    /// Serves `app` with the middleware and admin routes on `listener` until shutdown is
    /// triggered, then runs the graceful shutdown and returns its report.
    ///
    /// # Errors
    ///
    /// Fails when shutdown already ran on this handle.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        app: axum::Router,
    ) -> Result<crate::shutdown::ShutdownReport, crate::shutdown::ShutdownError> {
        self.shutdown.serve(listener, self.router(app)).await
    }
}

/// The instrumentation scope of spans that the bridge exports: obskit and its version.
fn instrumentation_scope() -> opentelemetry::InstrumentationScope {
    opentelemetry::InstrumentationScope::builder("obskit")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Warns when TLS files are configured for a plain `http` OTLP endpoint, which does not use them.
fn warn_plain_text_tls(tracing_config: &crate::config::TracingConfig) {
    if let Some(endpoint) = plain_text_tls_endpoint(tracing_config) {
        tracing::warn!(
            target: "obskit::init",
            endpoint = %crate::config::mask_url(&endpoint),
            "the OTLP certificate settings are ignored because the endpoint uses http://; use https:// to export over TLS"
        );
    }
}

/// Warns when `tracing.sample_rate` replaces a sampler that was set to something else, such as
/// `OTEL_TRACES_SAMPLER=always_off` used to switch tracing off.
fn warn_sampler_override(tracing_config: &crate::config::TracingConfig) {
    if sampler_replaced(tracing_config) {
        tracing::warn!(
            target: "obskit::init",
            sample_rate = ?tracing_config.sample_rate,
            sampler = ?tracing_config.sampler,
            "tracing.sample_rate (OBSKIT_TRACE_SAMPLE_RATE) replaces the configured sampler with parentbased_traceidratio; unset it to use the sampler"
        );
    }
}

/// Returns whether `tracing.sample_rate` overrides a sampler other than the default or the
/// parent-based ratio sampler it stands for.
fn sampler_replaced(tracing_config: &crate::config::TracingConfig) -> bool {
    use crate::config::SamplerName;

    tracing_config.sample_rate.is_some()
        && !matches!(
            tracing_config.sampler,
            SamplerName::ParentBasedAlwaysOn | SamplerName::ParentBasedTraceIdRatio
        )
}

/// Returns the OTLP endpoint when it is plain `http` although TLS files are configured.
fn plain_text_tls_endpoint(tracing_config: &crate::config::TracingConfig) -> Option<String> {
    let tls_files =
        tracing_config.certificate.is_some() || tracing_config.client_certificate.is_some();
    if tracing_config.effective_exporter() != crate::config::TraceExporter::Otlp || !tls_files {
        return None;
    }
    let endpoint = tracing_config.effective_endpoint();
    endpoint.starts_with("http://").then_some(endpoint)
}

#[cfg(test)]
mod tests {
    use super::{plain_text_tls_endpoint, sampler_replaced};
    use crate::config::{SamplerName, TracingConfig};

    #[test]
    fn sample_rate_over_always_off_is_flagged() {
        let mut config = TracingConfig {
            sample_rate: Some(0.5),
            ..TracingConfig::default()
        };
        assert!(!sampler_replaced(&config));
        config.sampler = SamplerName::AlwaysOff;
        assert!(sampler_replaced(&config));
        config.sample_rate = None;
        assert!(!sampler_replaced(&config));
    }

    #[test]
    fn tls_files_with_http_endpoint_are_flagged() {
        let mut config = TracingConfig {
            endpoint: Some("http://collector:4317".to_owned()),
            ..TracingConfig::default()
        };
        assert_eq!(plain_text_tls_endpoint(&config), None);

        config.certificate = Some("ca.pem".into());
        assert_eq!(
            plain_text_tls_endpoint(&config).as_deref(),
            Some("http://collector:4317")
        );

        config.endpoint = Some("https://collector:4317".to_owned());
        assert_eq!(plain_text_tls_endpoint(&config), None);
    }
}
