//! Health checks grouped into Kubernetes liveness, readiness and startup probes.
//!
//! A [`HealthRegistry`] contains named asynchronous [`Check`]s. Each check belongs to one or more
//! [`Probe`]s. Evaluating a probe runs its checks concurrently, each under a timeout, and
//! combines them into a [`HealthReport`]: `pass`, `warn` (a non-critical check failed, HTTP 200)
//! or `fail` (a critical check failed or a gate is closed, HTTP 503). The HTTP endpoints are in
//! `health::http` and mounted by `admin::router` (both need the `http` feature).
//!
//! # Example
//!
//! ```
//! use obskit::config::{HealthConfig, ServiceConfig};
//! use obskit::health::{CheckError, CheckOptions, HealthRegistry, Probe, Status};
//! use obskit::metrics::Registry;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let health = HealthRegistry::new(&HealthConfig::default(), &ServiceConfig::default(), &Registry::default())?;
//! health.add_readiness("database", || async { Ok::<(), CheckError>(()) }, CheckOptions::default())?;
//! health.mark_started();
//!
//! let report = health.evaluate(Probe::Readiness, &[]).await;
//! assert_eq!(report.status, Status::Pass);
//! # Ok(()) }
//! ```
//!
//! # Probes and gates
//!
//! - Liveness runs only the liveness checks and ignores the gates, so a draining process is not
//!   restarted. Register only in-process checks there (event loop responsive, memory below a
//!   limit): a database outage that fails liveness restarts every replica at once.
//! - Startup fails until [`HealthRegistry::mark_started`] is called and its checks pass.
//! - Readiness fails until `mark_started`, after [`HealthRegistry::set_shutting_down`], and when a
//!   critical readiness check fails.
//! - The report over all checks ([`HealthRegistry::evaluate_all`]) applies both gates.
//!
//! # Metrics
//!
//! - `obskit_health_check_status{check}` gauge: 1 when the last execution passed, 0 when it
//!   failed, whatever the criticality. A check that has never run has no series. Criticality
//!   is a registration option, so alert rules that care about it select checks by name.
//! - `obskit_health_check_duration_seconds{check}` histogram of executions (cache hits excluded).

mod check;
mod checks;
#[cfg(feature = "http")]
pub mod http;
mod report;
mod runner;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

pub use check::{BoxFuture, Check, CheckError, CheckResult, Status};
#[cfg(feature = "http")]
pub use checks::HttpCheck;
pub use checks::{DiskSpaceCheck, MemoryCheck, TcpCheck};
pub use report::{
    CheckReport, Gate, HEALTH_JSON_CONTENT_TYPE, HealthReport, Probe, VERBOSE_CONTENT_TYPE,
};

use crate::config::{HealthConfig, ServiceConfig};
use crate::metrics::{MetricsError, Registry};
use report::RenderContext;
use runner::{Entry, HealthMetrics, ResolvedOptions};

/// Maximum length of a check name in bytes.
pub const MAX_CHECK_NAME_LEN: usize = 128;

/// Errors from building a registry or registering a check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// A check with this name is already registered, in any probe.
    #[error(
        "health check {name:?} is already registered; names are unique across liveness, \
         readiness and startup, so register it once with `add` and all its probes"
    )]
    DuplicateName {
        /// The check name.
        name: String,
    },
    /// The name is empty, too long or has characters outside `[A-Za-z0-9_.:-]`.
    #[error(
        "invalid health check name {name:?}: use 1 to {MAX_CHECK_NAME_LEN} characters from \
         A-Z, a-z, 0-9, '_', '.', ':' and '-'"
    )]
    InvalidName {
        /// The check name.
        name: String,
    },
    /// No probe was given to [`HealthRegistry::add`].
    #[error(
        "health check {name:?} has no probe; pass at least one of liveness, readiness, startup"
    )]
    NoProbe {
        /// The check name.
        name: String,
    },
    /// A zero timeout or cache TTL.
    #[error("invalid {option} for health check {name:?}: it must be greater than zero")]
    ZeroDuration {
        /// The check name.
        name: String,
        /// `timeout` or `cache_ttl`.
        option: &'static str,
    },
    /// Registering the health metric families failed.
    #[error("registering health metrics failed: {0}")]
    Metrics(#[from] MetricsError),
}

/// Per-check settings. The default takes the timeout from `health.check_timeout`, is critical
/// and has no cache.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::health::CheckOptions;
///
/// let options = CheckOptions::default()
///     .timeout(Duration::from_secs(2))
///     .critical(false)
///     .cache_ttl(Duration::from_secs(10));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    timeout: Option<Duration>,
    critical: Option<bool>,
    cache_ttl: Option<Duration>,
}

impl CheckOptions {
    /// Sets the time after which the check is cancelled and reported as failed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets whether a failure fails the probe (`true`, the default) or only makes it warn.
    #[must_use]
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = Some(critical);
        self
    }

    /// Reuses a result for `ttl` after it was produced, so frequent probes do not load the
    /// dependency. Without a TTL, only probes that arrive while an execution is in flight
    /// share its result.
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }
}

/// A set of probes, as a bit set over [`Probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ProbeSet(u8);

impl ProbeSet {
    fn bit(probe: Probe) -> u8 {
        match probe {
            Probe::Liveness => 1,
            Probe::Readiness => 2,
            Probe::Startup => 4,
        }
    }

    fn from_probes(probes: &[Probe]) -> Self {
        Self(
            probes
                .iter()
                .fold(0, |bits, probe| bits | Self::bit(*probe)),
        )
    }

    pub(crate) fn contains(self, probe: Probe) -> bool {
        self.0 & Self::bit(probe) != 0
    }
}

/// The registry of health checks and the startup and shutdown gates. Cheap to clone.
///
/// Check names are unique across all probes. A check that belongs to several probes, such as a
/// database needed both to start and to serve, is registered once with [`HealthRegistry::add`]
/// and runs once per evaluation.
#[derive(Clone)]
pub struct HealthRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    entries: RwLock<Vec<Arc<Entry>>>,
    started: AtomicBool,
    shutting_down: AtomicBool,
    default_timeout: Duration,
    render: RenderContext,
    metrics: HealthMetrics,
}

impl std::fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<Arc<str>> = self
            .inner
            .entries
            .read()
            .iter()
            .map(|entry| Arc::clone(&entry.name))
            .collect();
        f.debug_struct("HealthRegistry")
            .field("checks", &names)
            .field("started", &self.is_started())
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}

impl HealthRegistry {
    /// Creates an empty registry and registers its metric families in `metrics`.
    ///
    /// The service name and version from `service` appear as `serviceId` and `version` in JSON
    /// reports.
    ///
    /// # Errors
    ///
    /// [`HealthError::Metrics`] when the health metric families are already registered in
    /// `metrics`, for example by a second registry.
    pub fn new(
        config: &HealthConfig,
        service: &ServiceConfig,
        metrics: &Registry,
    ) -> Result<Self, HealthError> {
        let metrics = HealthMetrics::register(metrics)?;
        Ok(Self {
            inner: Arc::new(Inner {
                entries: RwLock::new(Vec::new()),
                started: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                default_timeout: config.check_timeout,
                render: RenderContext {
                    service_id: service.name.as_str().into(),
                    version: service.version.as_str().into(),
                    expose_details: config.expose_details,
                },
                metrics,
            }),
        })
    }

    /// Registers a liveness check. Use only in-process checks, as the module docs explain.
    ///
    /// # Errors
    ///
    /// As [`HealthRegistry::add`].
    pub fn add_liveness(
        &self,
        name: &str,
        check: impl Check,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        self.add(name, &[Probe::Liveness], check, options)
    }

    /// Registers a readiness check.
    ///
    /// # Errors
    ///
    /// As [`HealthRegistry::add`].
    pub fn add_readiness(
        &self,
        name: &str,
        check: impl Check,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        self.add(name, &[Probe::Readiness], check, options)
    }

    /// Registers a startup check.
    ///
    /// # Errors
    ///
    /// As [`HealthRegistry::add`].
    pub fn add_startup(
        &self,
        name: &str,
        check: impl Check,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        self.add(name, &[Probe::Startup], check, options)
    }

    /// Registers a check that belongs to every probe in `probes`.
    ///
    /// # Errors
    ///
    /// [`HealthError::DuplicateName`] when `name` is already registered in any probe,
    /// [`HealthError::InvalidName`] for names outside `[A-Za-z0-9_.:-]{1,128}`,
    /// [`HealthError::NoProbe`] for an empty `probes`, and [`HealthError::ZeroDuration`] for a
    /// zero timeout or cache TTL.
    pub fn add(
        &self,
        name: &str,
        probes: &[Probe],
        check: impl Check,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        validate_name(name)?;
        if probes.is_empty() {
            return Err(HealthError::NoProbe {
                name: name.to_owned(),
            });
        }
        let resolved = ResolvedOptions {
            timeout: options.timeout.unwrap_or(self.inner.default_timeout),
            critical: options.critical.unwrap_or(true),
            cache_ttl: options.cache_ttl,
        };
        for (option, value) in [
            ("timeout", Some(resolved.timeout)),
            ("cache_ttl", resolved.cache_ttl),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(HealthError::ZeroDuration {
                    name: name.to_owned(),
                    option,
                });
            }
        }

        let mut entries = self.inner.entries.write();
        if entries.iter().any(|entry| &*entry.name == name) {
            return Err(HealthError::DuplicateName {
                name: name.to_owned(),
            });
        }
        entries.push(Arc::new(Entry::new(
            name.into(),
            ProbeSet::from_probes(probes),
            resolved,
            Box::new(check),
            &self.inner.metrics,
        )));
        Ok(())
    }

    /// Opens the startup gate: startup and readiness may pass from now on.
    ///
    /// Call it once initialization (migrations, cache warm-up, listeners) is complete.
    pub fn mark_started(&self) {
        if !self.inner.started.swap(true, Ordering::SeqCst) {
            tracing::info!(target: "obskit::health", "service marked as started");
        }
    }

    /// Returns whether [`HealthRegistry::mark_started`] has been called.
    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
    }

    /// Closes the readiness gate for good, so load balancers stop sending traffic while the
    /// service drains. Liveness is not affected. Call it as the first step of shutdown, before
    /// the pre-stop delay.
    pub fn set_shutting_down(&self) {
        if !self.inner.shutting_down.swap(true, Ordering::SeqCst) {
            tracing::info!(target: "obskit::health", "readiness fails from now on: shutting down");
        }
    }

    /// Returns whether [`HealthRegistry::set_shutting_down`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Returns whether failure messages are included in responses (`health.expose_details`).
    pub fn expose_details(&self) -> bool {
        self.inner.render.expose_details
    }

    /// Evaluates the checks of `probe`, except those named in `exclude`, which are not run.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime when a check has to run, because checks run as tokio tasks.
    pub async fn evaluate(&self, probe: Probe, exclude: &[&str]) -> HealthReport {
        let gates = match probe {
            Probe::Liveness => Vec::new(),
            Probe::Startup => self.closed_gates(false),
            Probe::Readiness => self.closed_gates(true),
        };
        self.evaluate_selected(Some(probe), gates, exclude).await
    }

    /// Evaluates every registered check, with both gates applied.
    ///
    /// # Panics
    ///
    /// As [`HealthRegistry::evaluate`].
    pub async fn evaluate_all(&self, exclude: &[&str]) -> HealthReport {
        let gates = self.closed_gates(true);
        self.evaluate_selected(None, gates, exclude).await
    }

    /// Evaluates the single check `name`, as Kubernetes serves `/readyz/<name>`.
    ///
    /// With `Some(probe)`, the check must belong to that probe. Gates are not applied, and a
    /// failing non-critical check gives `warn` as in a full probe. Returns `None` when no such
    /// check is registered.
    ///
    /// # Panics
    ///
    /// As [`HealthRegistry::evaluate`].
    pub async fn evaluate_check(&self, probe: Option<Probe>, name: &str) -> Option<HealthReport> {
        let entry = self
            .inner
            .entries
            .read()
            .iter()
            .find(|entry| {
                &*entry.name == name && probe.is_none_or(|probe| entry.probes.contains(probe))
            })
            .map(Arc::clone)?;
        Some(Self::run(probe, Vec::new(), vec![entry]).await)
    }

    /// Renders `report` as an `application/health+json` body.
    pub fn render_json(&self, report: &HealthReport) -> String {
        report.to_json(&self.inner.render)
    }

    /// Renders `report` as Kubernetes-style verbose text.
    pub fn render_verbose(&self, report: &HealthReport) -> String {
        report.to_verbose_text(self.inner.render.expose_details)
    }

    fn closed_gates(&self, include_shutdown: bool) -> Vec<Gate> {
        let mut gates = Vec::new();
        if !self.is_started() {
            gates.push(Gate::NotStarted);
        }
        if include_shutdown && self.is_shutting_down() {
            gates.push(Gate::ShuttingDown);
        }
        gates
    }

    async fn evaluate_selected(
        &self,
        probe: Option<Probe>,
        gates: Vec<Gate>,
        exclude: &[&str],
    ) -> HealthReport {
        let mut selected = Vec::new();
        let mut excluded = Vec::new();
        for entry in self.inner.entries.read().iter() {
            if probe.is_some_and(|probe| !entry.probes.contains(probe)) {
                continue;
            }
            if exclude.contains(&&*entry.name) {
                excluded.push(Arc::clone(&entry.name));
            } else {
                selected.push(Arc::clone(entry));
            }
        }
        let unknown_excludes = exclude
            .iter()
            .filter(|name| !excluded.iter().any(|known| &**known == **name))
            .map(|name| (*name).to_owned())
            .collect();

        let mut report = Self::run(probe, gates, selected).await;
        report.excluded = excluded;
        report.unknown_excludes = unknown_excludes;
        report
    }

    async fn run(
        probe: Option<Probe>,
        gates: Vec<Gate>,
        selected: Vec<Arc<Entry>>,
    ) -> HealthReport {
        let results = runner::evaluate(&selected).await;

        let mut status = if gates.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        };
        let checks = selected
            .iter()
            .zip(results)
            .map(|(entry, result)| {
                let check_status = match (result.passed(), entry.critical) {
                    (true, _) => Status::Pass,
                    (false, false) => Status::Warn,
                    (false, true) => Status::Fail,
                };
                status = status.max(check_status);
                CheckReport {
                    name: Arc::clone(&entry.name),
                    critical: entry.critical,
                    status: check_status,
                    result,
                }
            })
            .collect();
        HealthReport {
            probe,
            status,
            gates,
            checks,
            excluded: Vec::new(),
            unknown_excludes: Vec::new(),
        }
    }
}

fn validate_name(name: &str) -> Result<(), HealthError> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
    if name.is_empty() || name.len() > MAX_CHECK_NAME_LEN || !name.chars().all(valid_char) {
        return Err(HealthError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn registry() -> HealthRegistry {
        HealthRegistry::new(
            &HealthConfig::default(),
            &ServiceConfig::default(),
            &Registry::default(),
        )
        .unwrap()
    }

    fn ok_check() -> impl Check {
        || async { Ok::<(), CheckError>(()) }
    }

    #[test]
    fn duplicate_name_across_probes_rejected() {
        let health = registry();
        health
            .add_readiness("db", ok_check(), CheckOptions::default())
            .unwrap();
        let error = health
            .add_liveness("db", ok_check(), CheckOptions::default())
            .unwrap_err();
        assert!(matches!(error, HealthError::DuplicateName { ref name } if name == "db"));
    }

    #[test]
    fn invalid_names_rejected() {
        let health = registry();
        for name in ["", "has space", "a/b", &"x".repeat(MAX_CHECK_NAME_LEN + 1)] {
            let error = health
                .add_readiness(name, ok_check(), CheckOptions::default())
                .unwrap_err();
            assert!(matches!(error, HealthError::InvalidName { .. }), "{name:?}");
        }
    }

    #[test]
    fn zero_timeout_rejected() {
        let health = registry();
        let options = CheckOptions::default().timeout(Duration::ZERO);
        let error = health.add_readiness("db", ok_check(), options).unwrap_err();
        assert!(matches!(
            error,
            HealthError::ZeroDuration {
                option: "timeout",
                ..
            }
        ));
    }

    #[test]
    fn empty_probe_list_rejected() {
        let error = registry()
            .add("db", &[], ok_check(), CheckOptions::default())
            .unwrap_err();
        assert!(matches!(error, HealthError::NoProbe { .. }));
    }

    #[tokio::test]
    async fn liveness_ignores_gates() {
        let health = registry();
        health.set_shutting_down();
        let report = health.evaluate(Probe::Liveness, &[]).await;
        assert_eq!(report.status, Status::Pass);
        assert!(report.gates.is_empty());
    }

    #[tokio::test]
    async fn readiness_gated_by_start_and_shutdown() {
        let health = registry();
        let before = health.evaluate(Probe::Readiness, &[]).await;
        assert_eq!(before.gates, vec![Gate::NotStarted]);
        assert_eq!(before.status, Status::Fail);

        health.mark_started();
        assert_eq!(
            health.evaluate(Probe::Readiness, &[]).await.status,
            Status::Pass
        );

        health.set_shutting_down();
        let after = health.evaluate(Probe::Readiness, &[]).await;
        assert_eq!(after.gates, vec![Gate::ShuttingDown]);
        assert_eq!(after.status, Status::Fail);
        assert_eq!(
            health.evaluate(Probe::Startup, &[]).await.status,
            Status::Pass
        );
    }

    #[tokio::test]
    async fn check_in_two_probes_runs_in_both() {
        let health = registry();
        health.mark_started();
        health
            .add(
                "db",
                &[Probe::Startup, Probe::Readiness],
                || async { Err::<(), _>(CheckError::new("down")) },
                CheckOptions::default(),
            )
            .unwrap();
        assert_eq!(health.evaluate(Probe::Startup, &[]).await.checks.len(), 1);
        assert_eq!(health.evaluate(Probe::Readiness, &[]).await.checks.len(), 1);
        assert!(
            health
                .evaluate(Probe::Liveness, &[])
                .await
                .checks
                .is_empty()
        );
    }

    /// A check whose synchronous part panics before it returns a future.
    struct PanicsEarly;

    impl Check for PanicsEarly {
        fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
            panic!("no future for you");
        }
    }

    #[tokio::test]
    async fn panic_before_future_is_fail() {
        let health = registry();
        health
            .add_liveness("early", PanicsEarly, CheckOptions::default())
            .unwrap();
        let report = health.evaluate(Probe::Liveness, &[]).await;
        assert_eq!(report.status, Status::Fail);
        let error = report.checks[0].result.error.as_deref().unwrap();
        assert_eq!(error, "check panicked: no future for you");
    }

    #[tokio::test]
    async fn panicking_check_fails_without_crash() {
        let health = registry();
        health.mark_started();
        #[allow(clippy::panic)]
        let check = || async {
            if true {
                panic!("bad state");
            }
            Ok::<(), CheckError>(())
        };
        health
            .add_readiness("panics", check, CheckOptions::default())
            .unwrap();
        let report = health.evaluate(Probe::Readiness, &[]).await;
        assert_eq!(report.status, Status::Fail);
        let error = report.checks[0].result.error.as_deref().unwrap();
        assert_eq!(error, "check panicked: bad state");
    }
}
