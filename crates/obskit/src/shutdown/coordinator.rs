//! The shutdown coordinator and its report.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::hooks::{Hook, HookReport};
use crate::config::ShutdownConfig;

/// Errors of the shutdown coordinator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// Installing the signal handlers failed.
    #[error("installing the {signal} handler failed: {source}")]
    Signal {
        /// Signal name.
        signal: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server stopped with an error before shutdown was requested.
    #[error("the server stopped with an error before shutdown was requested: {0}")]
    Server(std::io::Error),
    /// [`Shutdown::run`] or [`Shutdown::serve`] was called twice.
    #[error("shutdown has already run; create one Shutdown per server")]
    AlreadyRan,
}

/// Outcome of one shutdown: whether requests drained, and each hook's result.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// True when every in-flight request finished within the shutdown timeout.
    pub drained: bool,
    /// Outcome of each hook and finalizer, in the order they ran.
    pub hooks: Vec<HookReport>,
    /// Time from the trigger to the end of the last finalizer.
    pub elapsed: Duration,
}

type Callback = Box<dyn Fn() + Send + Sync>;

struct Inner {
    config: ShutdownConfig,
    triggered: CancellationToken,
    stop_accepting: CancellationToken,
    on_trigger: Mutex<Vec<Callback>>,
    before_exit: Mutex<Vec<Callback>>,
    hooks: Mutex<Vec<Hook>>,
    finalizers: Mutex<Vec<Hook>>,
    signals: AtomicUsize,
    ran: std::sync::atomic::AtomicBool,
}

/// Coordinates graceful shutdown of one server. Cheap to clone.
///
/// # Example
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use obskit::shutdown::Shutdown;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let shutdown = Shutdown::new(&obskit::config::ShutdownConfig::default());
/// shutdown.listen_for_signals()?;
/// shutdown.add_hook("close pool", None, || async { /* close connections */ });
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let app = Router::new().route("/", get(|| async { "ok" }));
/// let report = shutdown.serve(listener, app).await?;
/// assert!(report.drained);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("config", &self.inner.config)
            .field("triggered", &self.is_triggered())
            .finish_non_exhaustive()
    }
}

impl Shutdown {
    /// Creates a coordinator with the given delays and timeouts.
    pub fn new(config: &ShutdownConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                triggered: CancellationToken::new(),
                stop_accepting: CancellationToken::new(),
                on_trigger: Mutex::new(Vec::new()),
                before_exit: Mutex::new(Vec::new()),
                hooks: Mutex::new(Vec::new()),
                finalizers: Mutex::new(Vec::new()),
                signals: AtomicUsize::new(0),
                ran: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Requests shutdown. Later calls do nothing.
    pub fn trigger(&self) {
        if self.inner.triggered.is_cancelled() {
            return;
        }
        self.inner.triggered.cancel();
        tracing::info!(
            target: "obskit::shutdown",
            pre_stop_delay = ?self.inner.config.pre_stop_delay,
            timeout = ?self.inner.config.timeout,
            "shutdown requested"
        );
        for callback in self.inner.on_trigger.lock().iter() {
            callback();
        }
    }

    /// True once shutdown has been requested.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.is_cancelled()
    }

    /// Completes when shutdown has been requested.
    pub async fn triggered(&self) {
        self.inner.triggered.cancelled().await;
    }

    /// Completes when the server should stop accepting connections: after the trigger and the
    /// pre-stop delay. Pass it to a server's graceful shutdown when not using [`Shutdown::run`].
    pub async fn stop_accepting(&self) {
        self.inner.stop_accepting.cancelled().await;
    }

    /// Registers a callback that runs synchronously when shutdown is triggered, such as failing
    /// readiness. Registered after the trigger, it runs at once.
    pub fn on_trigger(&self, callback: impl Fn() + Send + Sync + 'static) {
        if self.is_triggered() {
            callback();
        }
        self.inner.on_trigger.lock().push(Box::new(callback));
    }

    /// Registers a hook that runs after the server has drained, in registration order.
    ///
    /// `timeout` defaults to `shutdown.hook_timeout`; a hook that exceeds it is cancelled.
    pub fn add_hook<F, Fut>(&self, name: impl Into<String>, timeout: Option<Duration>, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let timeout = timeout.unwrap_or(self.inner.config.hook_timeout);
        self.inner.hooks.lock().push(Hook::new(name, timeout, hook));
    }

    /// Registers a callback that runs synchronously just before a second signal exits the
    /// process, such as writing the queued log lines.
    pub(crate) fn before_forced_exit(&self, callback: impl Fn() + Send + Sync + 'static) {
        self.inner.before_exit.lock().push(Box::new(callback));
    }

    /// Registers a step that runs after every hook, such as flushing logs and traces.
    pub(crate) fn add_finalizer<F, Fut>(&self, name: impl Into<String>, timeout: Duration, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner
            .finalizers
            .lock()
            .push(Hook::new(name, timeout, hook));
    }

    /// Starts a task that triggers shutdown on the first SIGTERM or SIGINT (Ctrl-C) and exits
    /// the process with status 130 on the second.
    ///
    /// # Errors
    ///
    /// Fails when the signal handlers cannot be installed or no tokio runtime is running.
    pub fn listen_for_signals(&self) -> Result<(), ShutdownError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut terminate =
                signal(SignalKind::terminate()).map_err(|source| ShutdownError::Signal {
                    signal: "SIGTERM",
                    source,
                })?;
            let mut interrupt =
                signal(SignalKind::interrupt()).map_err(|source| ShutdownError::Signal {
                    signal: "SIGINT",
                    source,
                })?;
            let shutdown = self.clone();
            tokio::spawn(async move {
                loop {
                    let name = tokio::select! {
                        _ = terminate.recv() => "SIGTERM",
                        _ = interrupt.recv() => "SIGINT",
                    };
                    shutdown.on_signal(name);
                }
            });
        }
        #[cfg(not(unix))]
        {
            let shutdown = self.clone();
            tokio::spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    shutdown.on_signal("Ctrl-C");
                }
            });
        }
        Ok(())
    }

    fn on_signal(&self, name: &str) {
        let count = self.inner.signals.fetch_add(1, Ordering::SeqCst) + 1;
        if count == 1 {
            tracing::info!(target: "obskit::shutdown", signal = name, "signal received, shutting down");
            self.trigger();
        } else {
            tracing::warn!(target: "obskit::shutdown", signal = name, "second signal received, exiting now");
            // `exit` skips destructors, so lines still queued in the log writer, this one
            // included, are written here or never.
            for callback in self.inner.before_exit.lock().iter() {
                callback();
            }
            std::process::exit(130);
        }
    }

    /// Serves `router` on `listener` until shutdown, then drains and runs the shutdown steps.
    ///
    /// Handlers and the obskit middleware see the client address as
    /// `ConnectInfo<SocketAddr>`. Connections still open at the shutdown timeout are closed.
    ///
    /// # Limitations
    ///
    /// HTTP upgrades (WebSocket) are not served on this path; use [`Shutdown::run`] with
    /// `axum::serve` for those.
    ///
    /// # Errors
    ///
    /// Fails when shutdown already ran.
    #[cfg(feature = "http")]
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        router: axum::Router,
    ) -> Result<ShutdownReport, ShutdownError> {
        if self.inner.ran.swap(true, Ordering::SeqCst) {
            return Err(ShutdownError::AlreadyRan);
        }
        let accepting = tokio::spawn(super::server::accept_until(
            listener,
            router,
            self.inner.stop_accepting.clone(),
        ));
        self.triggered().await;
        let started = Instant::now();
        tokio::time::sleep(self.inner.config.pre_stop_delay).await;
        self.inner.stop_accepting.cancel();
        tracing::info!(target: "obskit::shutdown", "stopped accepting connections, draining");
        let drained = match accepting.await {
            Ok(draining) => draining.drain(self.inner.config.timeout).await,
            Err(error) => {
                tracing::error!(target: "obskit::shutdown", %error, "server task failed");
                false
            }
        };
        if !drained {
            self.warn_not_drained();
        }
        Ok(self.finish(started, drained).await)
    }

    fn warn_not_drained(&self) {
        tracing::warn!(
            target: "obskit::shutdown",
            timeout = ?self.inner.config.timeout,
            "requests still in flight at the shutdown timeout were cancelled"
        );
    }

    /// Runs the shutdown sequence around any server future.
    ///
    /// `server` must stop accepting when [`Shutdown::stop_accepting`] completes and finish once
    /// its in-flight requests are done. It is polled on its own task, which is aborted when the
    /// shutdown timeout passes.
    ///
    /// # Limitations
    ///
    /// Aborting the server task does not close connections that the server spawned on tasks of
    /// their own, as `axum::serve` does. Those connections end when the runtime shuts down.
    /// [`Shutdown::serve`] closes them itself.
    ///
    /// # Errors
    ///
    /// Fails when `server` ends with an error before shutdown was requested, or when shutdown
    /// already ran.
    pub async fn run<F>(&self, server: F) -> Result<ShutdownReport, ShutdownError>
    where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        if self.inner.ran.swap(true, Ordering::SeqCst) {
            return Err(ShutdownError::AlreadyRan);
        }
        let mut server = tokio::spawn(server);
        let server_result = tokio::select! {
            () = self.triggered() => None,
            result = &mut server => Some(result),
        };
        if let Some(result) = server_result {
            // The server ended on its own: report its error, and run the steps otherwise.
            if let Ok(Err(error)) = result {
                self.trigger();
                self.inner.stop_accepting.cancel();
                let _report = self.finish(Instant::now(), true).await;
                return Err(ShutdownError::Server(error));
            }
            self.trigger();
            self.inner.stop_accepting.cancel();
            return Ok(self.finish(Instant::now(), true).await);
        }

        let started = Instant::now();
        tokio::time::sleep(self.inner.config.pre_stop_delay).await;
        self.inner.stop_accepting.cancel();
        tracing::info!(target: "obskit::shutdown", "stopped accepting connections, draining");

        let drained = match tokio::time::timeout(self.inner.config.timeout, &mut server).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(error))) => {
                tracing::error!(target: "obskit::shutdown", %error, "server failed while draining");
                true
            }
            Ok(Err(error)) => {
                tracing::error!(target: "obskit::shutdown", %error, "server task failed while draining");
                true
            }
            Err(_) => {
                server.abort();
                self.warn_not_drained();
                false
            }
        };
        Ok(self.finish(started, drained).await)
    }

    async fn finish(&self, started: Instant, drained: bool) -> ShutdownReport {
        let hooks: Vec<Hook> = std::mem::take(&mut *self.inner.hooks.lock());
        let finalizers: Vec<Hook> = std::mem::take(&mut *self.inner.finalizers.lock());
        let mut reports = Vec::with_capacity(hooks.len() + finalizers.len());
        for hook in hooks {
            reports.push(hook.run().await);
        }
        tracing::info!(
            target: "obskit::shutdown",
            drained,
            elapsed = ?started.elapsed(),
            "shutdown complete"
        );
        for finalizer in finalizers {
            reports.push(finalizer.run().await);
        }
        ShutdownReport {
            drained,
            hooks: reports,
            elapsed: started.elapsed(),
        }
    }
}
