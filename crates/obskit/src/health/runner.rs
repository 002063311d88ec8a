//! Execution of registered checks: timeout, panic capture, result cache, single flight, metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::check::{CatchUnwind, Check, CheckResult};
use super::{HealthError, ProbeSet};
use crate::metrics::Registry;

/// Bucket bounds of `obskit_health_check_duration_seconds`, from 1 ms to 10 s.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Metric families of the health module, registered once per [`super::HealthRegistry`].
#[derive(Clone)]
pub(crate) struct HealthMetrics {
    status: Family<CheckLabels, Gauge>,
    duration: Family<CheckLabels, Histogram, fn() -> Histogram>,
}

impl HealthMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, HealthError> {
        let metrics = Self {
            status: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
        };
        registry.register(
            "obskit_health_check_status",
            "Result of the last execution of a health check: 1 passed, 0 failed. \
             Criticality is not encoded; a failed non-critical check makes the probe warn.",
            metrics.status.clone(),
        )?;
        registry.register(
            "obskit_health_check_duration_seconds",
            "Duration of health check executions, cached results excluded.",
            metrics.duration.clone(),
        )?;
        Ok(metrics)
    }
}

/// One registered check with its options, last result and metric handles.
pub(crate) struct Entry {
    pub(crate) name: Arc<str>,
    pub(crate) probes: ProbeSet,
    pub(crate) critical: bool,
    timeout: Duration,
    cache_ttl: Option<Duration>,
    check: Box<dyn Check>,
    last: RwLock<Option<CheckResult>>,
    flight: tokio::sync::Mutex<()>,
    failing: AtomicBool,
    labels: CheckLabels,
    metrics: HealthMetrics,
}

impl Entry {
    pub(crate) fn new(
        name: Arc<str>,
        probes: ProbeSet,
        options: ResolvedOptions,
        check: Box<dyn Check>,
        metrics: &HealthMetrics,
    ) -> Self {
        let labels = CheckLabels {
            check: name.to_string(),
        };
        Self {
            name,
            probes,
            critical: options.critical,
            timeout: options.timeout,
            cache_ttl: options.cache_ttl,
            check,
            last: RwLock::new(None),
            flight: tokio::sync::Mutex::new(()),
            failing: AtomicBool::new(false),
            labels,
            // The series are created at the first execution, so that a check that never ran
            // has no series instead of a status of 0.
            metrics: metrics.clone(),
        }
    }

    /// Returns the last result if a probe that started at `probe_start` may use it: it finished
    /// after the probe started (another probe ran it meanwhile) or is younger than the cache TTL.
    pub(crate) fn fresh_result(&self, probe_start: Instant) -> Option<CheckResult> {
        let last = self.last.read();
        let result = last.as_ref()?;
        let shared_flight = result.finished >= probe_start;
        let cached = self
            .cache_ttl
            .is_some_and(|ttl| probe_start.saturating_duration_since(result.finished) < ttl);
        (shared_flight || cached).then(|| result.clone())
    }

    /// Runs the check unless a concurrent probe already did; only one execution is in flight.
    pub(crate) async fn refresh(&self, probe_start: Instant) -> CheckResult {
        let _flight = self.flight.lock().await;
        if let Some(result) = self.fresh_result(probe_start) {
            return result;
        }

        let result = self.execute().await;
        self.record(&result);
        *self.last.write() = Some(result.clone());
        result
    }

    async fn execute(&self) -> CheckResult {
        let started = Instant::now();
        let time = SystemTime::now();
        // The async block defers `check()` into the first poll, so a panic while building the
        // future is caught as well as one while running it.
        let run = CatchUnwind::new(async { self.check.check().await });
        let outcome = tokio::time::timeout(self.timeout, run).await;
        let error: Option<Arc<str>> = match outcome {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) => Some(error.message().into()),
            Ok(Err(panic)) => Some(format!("check panicked: {panic}").into()),
            Err(_elapsed) => Some(format!("timed out after {:?}", self.timeout).into()),
        };
        CheckResult::new(error, started, time)
    }

    fn record(&self, result: &CheckResult) {
        self.metrics
            .duration
            .get_or_create(&self.labels)
            .observe(result.duration.as_secs_f64());
        self.metrics
            .status
            .get_or_create(&self.labels)
            .set(i64::from(result.passed()));

        let was_failing = self.failing.swap(!result.passed(), Ordering::Relaxed);
        match (&result.error, was_failing) {
            (Some(error), false) => tracing::warn!(
                target: "obskit::health",
                check = %self.name,
                critical = self.critical,
                error = %error,
                "health check failed"
            ),
            (None, true) => tracing::info!(
                target: "obskit::health",
                check = %self.name,
                "health check passes again"
            ),
            _ => {}
        }
    }
}

/// [`super::CheckOptions`] with the registry defaults applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResolvedOptions {
    pub(crate) timeout: Duration,
    pub(crate) critical: bool,
    pub(crate) cache_ttl: Option<Duration>,
}

/// Evaluates `entries` concurrently and returns their results in the same order.
///
/// Fresh cached results are read without spawning. Stale checks run in a [`tokio::task::JoinSet`],
/// so they execute in parallel and are aborted when the caller drops this future.
pub(crate) async fn evaluate(entries: &[Arc<Entry>]) -> Vec<CheckResult> {
    let probe_start = Instant::now();
    let mut results: Vec<Option<CheckResult>> = entries
        .iter()
        .map(|entry| entry.fresh_result(probe_start))
        .collect();

    if results.iter().all(Option::is_some) {
        return results.into_iter().flatten().collect();
    }

    let mut tasks = tokio::task::JoinSet::new();
    for (index, (entry, result)) in entries.iter().zip(&results).enumerate() {
        if result.is_none() {
            let entry = Arc::clone(entry);
            tasks.spawn(async move { (index, entry.refresh(probe_start).await) });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined
            && let Some(slot) = results.get_mut(index)
        {
            *slot = Some(result);
        }
    }

    // A slot is still empty only when its task was cancelled, for example by runtime shutdown.
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                CheckResult::new(
                    Some("check task was cancelled".into()),
                    Instant::now(),
                    SystemTime::now(),
                )
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::health::check::CheckError;

    /// A log writer that appends to a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn logs_only_on_state_change() {
        crate::test_support::keep_interest_shared();
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let healthy = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&healthy);
        let check = move || {
            let healthy = flag.load(Ordering::SeqCst);
            async move {
                if healthy {
                    Ok(())
                } else {
                    Err(CheckError::new("connection refused"))
                }
            }
        };
        let metrics = HealthMetrics::register(&Registry::default()).unwrap();
        let options = ResolvedOptions {
            timeout: Duration::from_secs(1),
            critical: true,
            cache_ttl: None,
        };
        let entry = Arc::new(Entry::new(
            "db".into(),
            ProbeSet::default(),
            options,
            Box::new(check),
            &metrics,
        ));

        for _ in 0..3 {
            evaluate(std::slice::from_ref(&entry)).await;
        }
        healthy.store(true, Ordering::SeqCst);
        for _ in 0..2 {
            evaluate(std::slice::from_ref(&entry)).await;
        }

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let failed: Vec<&str> = logs
            .lines()
            .filter(|line| line.contains("health check failed"))
            .collect();
        assert_eq!(failed.len(), 1, "{logs}");
        assert!(failed[0].contains("WARN"), "{logs}");
        assert!(failed[0].contains("obskit::health"), "{logs}");
        assert!(failed[0].contains("check=db"), "{logs}");
        assert!(failed[0].contains("connection refused"), "{logs}");
        assert_eq!(
            logs.matches("health check passes again").count(),
            1,
            "{logs}"
        );
    }
}
