//! Metric registry, families with a cardinality guard, RED / Golden Signals / USE helpers and exposition.
//!
//! [`Registry`] wraps a prometheus-client registry. It checks every name against the
//! Prometheus naming rules before registering it, and registers a name only once. The
//! families it creates ([`CounterFamily`], [`GaugeFamily`], [`HistogramFamily`]) cap the
//! number of label sets, see [Cardinality limit](self#cardinality-limit).
//!
//! # Example
//!
//! ```
//! use obskit::metrics::{Format, Red, Registry};
//!
//! let registry = Registry::default();
//! let checkout = Red::register(&registry, "checkout", ["payment_method"])?;
//! checkout.observe(&["card"], 0.042, false);
//!
//! let text = registry.encode(Format::PrometheusText)?;
//! assert!(text.contains("checkout_requests_total{payment_method=\"card\"} 1"));
//! # Ok::<(), obskit::metrics::MetricsError>(())
//! ```
//!
//! # Cardinality limit
//!
//! Each family keeps at most [`MetricsConfig::max_series_per_metric`] label sets. Further label
//! sets fold into one series labelled `otel_metric_overflow="true"`, and each fold adds one to
//! `obskit_metric_overflow_total{metric="<family>"}`.

mod exemplar;
mod exposition;
mod family;
mod golden;
mod histogram;
mod http_server;
pub mod naming;
mod process;
mod red;
mod runtime;
mod usage;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Mutex, RwLock};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Metric;

pub use exposition::Format;
pub use family::{Counter, CounterFamily, Gauge, GaugeFamily, HistogramFamily};
pub use golden::GoldenSignals;
pub use histogram::{Buckets, DEFAULT_DURATION_BUCKETS, Histogram};
pub(crate) use http_server::is_known_method;
pub use http_server::{HttpServerMetrics, InFlightGuard, normalize_method};
pub use red::{Red, RedHandle};
pub use usage::{ResourceHandle, UseMetrics};

use crate::config::{MetricsConfig, ServiceConfig};
use family::{CounterCore, FamilyCore, FamilyView, SimpleSeries};

/// Name of the counter that counts label sets folded into an overflow series.
pub const OVERFLOW_METRIC: &str = "obskit_metric_overflow";

/// Errors from registering or encoding metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A family with this name is already registered.
    #[error("metric {name:?} is already registered; register it once and share the handle")]
    AlreadyRegistered {
        /// The metric name.
        name: String,
    },
    /// A `get_or_register_*` call found the name registered with another type, labels or buckets.
    #[error(
        "metric {name:?} is already registered differently: {reason}; use one definition for the name"
    )]
    Mismatch {
        /// The metric name.
        name: String,
        /// The part that differs.
        reason: String,
    },
    /// The name does not match the Prometheus naming rules.
    #[error("invalid metric name {name:?}: {reason}")]
    InvalidName {
        /// The metric name.
        name: String,
        /// The problem and the accepted form.
        reason: String,
    },
    /// A label name does not match the Prometheus naming rules or is reserved.
    #[error("invalid label name {label:?} on metric {metric:?}: {reason}")]
    InvalidLabel {
        /// The metric name.
        metric: String,
        /// The label name.
        label: String,
        /// The rule that failed and the accepted form.
        reason: String,
    },
    /// The help text is empty or would break an exposition format.
    #[error("invalid help text for metric {name:?}: {reason}")]
    InvalidHelp {
        /// The metric name.
        name: String,
        /// The problem found.
        reason: String,
    },
    /// Histogram bucket bounds are empty, not finite or not increasing.
    #[error("invalid histogram buckets: {reason}")]
    InvalidBuckets {
        /// The rule that failed and the accepted form.
        reason: String,
    },
    /// A value is outside the range the metric accepts.
    #[error("invalid value {value} for metric {metric:?}: {reason}")]
    InvalidValue {
        /// The metric name.
        metric: String,
        /// The rejected value.
        value: f64,
        /// The accepted range.
        reason: String,
    },
    /// Encoding failed.
    #[error("encoding metrics failed: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// The metric registry shared by obskit and the application. Cheap to clone.
///
/// `Registry::default()` has the default limits of [`MetricsConfig`] and no process metrics;
/// [`Registry::new`] applies a configuration.
///
/// # Limitations
///
/// - A family without any series is left out of the output, `# HELP` and `# TYPE` included.
/// - Encoding takes no lock on a family, so a label set created while the family is being
///   written may be missing from that output and appears in the next.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    state: RwLock<State>,
    max_series: usize,
    overflow: CounterFamily<1>,
    /// Length of the last exposition, used to size the next output buffer.
    size_hint: AtomicUsize,
    /// Values kept outside their counters, brought up to date before each encode.
    pending: Mutex<Vec<Weak<dyn Pending>>>,
}

/// A source of counts that are kept off the hot path and folded into counter series at
/// scrape time, such as the successes a circuit breaker derives from its window position.
pub(crate) trait Pending: Send + Sync {
    /// Adds what was counted since the last call to the counter series.
    fn fold(&self);
}

#[derive(Default)]
struct State {
    registry: prometheus_client::registry::Registry,
    /// Registered names with what `get_or_register_*` compares.
    entries: HashMap<String, Entry>,
    /// Every sample name written by a registered metric, for clash detection.
    samples: HashSet<String>,
}

struct Entry {
    signature: String,
    handle: Option<Arc<dyn Any + Send + Sync>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_limit(MetricsConfig::default().max_series_per_metric)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.read();
        f.debug_struct("Registry")
            .field("metrics", &state.entries.len())
            .field("max_series_per_metric", &self.inner.max_series)
            .finish_non_exhaustive()
    }
}

/// One metric name a family or collector writes.
pub(crate) struct View<'a> {
    pub(crate) name: &'a str,
    pub(crate) help: &'a str,
    pub(crate) metric_type: MetricType,
}

/// Limits handed to the constructor of a family.
pub(crate) struct FamilyContext {
    pub(crate) max_series: usize,
    pub(crate) overflow_counter: Option<Counter>,
}

/// A boxed metric, so several views of one family can be registered from one list.
#[derive(Debug)]
struct BoxedMetric(Box<dyn Metric>);

impl EncodeMetric for BoxedMetric {
    fn encode(&self, encoder: MetricEncoder<'_>) -> fmt::Result {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Registry {
    /// Creates a registry with the limits of `config`, with process metrics when
    /// `config.process_metrics` is set (Linux only; elsewhere they are skipped).
    ///
    /// Tokio runtime metrics need a runtime handle, so they are added by
    /// [`Registry::register_runtime_metrics`].
    ///
    /// A `max_series_per_metric` of 0 is treated as 1, so every family keeps one label set.
    ///
    /// # Example
    ///
    /// ```
    /// use obskit::config::MetricsConfig;
    ///
    /// let registry = obskit::metrics::Registry::new(&MetricsConfig::default());
    /// # #[cfg(target_os = "linux")]
    /// assert!(registry.encode(obskit::metrics::Format::PrometheusText)?.contains("process_open_fds"));
    /// # Ok::<(), obskit::metrics::MetricsError>(())
    /// ```
    pub fn new(config: &MetricsConfig) -> Self {
        let registry = Self::with_limit(config.max_series_per_metric);
        if config.process_metrics {
            registry.add_process_collector();
        }
        registry
    }

    /// Returns the process-wide registry, created with default limits and process metrics on
    /// first use.
    ///
    /// obskit itself never uses it. It is for code that cannot be handed a registry.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry::new(&MetricsConfig::default()))
    }

    fn with_limit(max_series: usize) -> Self {
        let overflow_core = Arc::new(FamilyCore::<1, CounterCore>::new(
            OVERFLOW_METRIC,
            ["metric"],
            usize::MAX,
            None,
            (),
        ));
        let mut state = State::default();
        insert_metric(
            &mut state,
            &View {
                name: OVERFLOW_METRIC,
                help: "Label sets folded into the otel_metric_overflow series because the family reached max_series_per_metric",
                metric_type: MetricType::Counter,
            },
            Box::new(FamilyView {
                core: Arc::clone(&overflow_core),
                metric_type: MetricType::Counter,
                part: CounterCore::encode,
            }),
        );
        Self {
            inner: Arc::new(Inner {
                state: RwLock::new(state),
                max_series: max_series.max(1),
                overflow: CounterFamily {
                    core: overflow_core,
                },
                size_hint: AtomicUsize::new(0),
                pending: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Registers a source whose counts are folded into its counters before each encode, for
    /// as long as it lives.
    #[cfg_attr(
        not(feature = "resilience"),
        expect(dead_code, reason = "circuit breakers are the only source")
    )]
    pub(crate) fn add_pending(&self, source: Weak<dyn Pending>) {
        let mut pending = self.inner.pending.lock();
        pending.retain(|source| source.strong_count() > 0);
        pending.push(source);
    }

    /// Folds the counts of every live pending source into their counters.
    pub(crate) fn fold_pending(&self) {
        let live: Vec<Arc<dyn Pending>> = {
            let mut pending = self.inner.pending.lock();
            pending.retain(|source| source.strong_count() > 0);
            pending.iter().filter_map(Weak::upgrade).collect()
        };
        // Outside the lock: a source dropped here folds itself from its drop.
        for source in live {
            source.fold();
        }
    }

    /// Maximum label sets per family before new ones fold into the overflow series.
    pub fn max_series_per_metric(&self) -> usize {
        self.inner.max_series
    }

    /// Registers any prometheus-client metric under `name` (without the `_total` suffix for counters).
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidName`] or [`MetricsError::InvalidHelp`] if the name or help text
    /// break the naming rules of [`naming`], [`MetricsError::AlreadyRegistered`] if the name or
    /// one of the sample names it writes is taken.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl Metric,
    ) -> Result<(), MetricsError> {
        let view = View {
            name,
            help,
            metric_type: metric.metric_type(),
        };
        let mut state = self.inner.state.write();
        check_view(&state, &view)?;
        insert_metric(&mut state, &view, Box::new(metric));
        Ok(())
    }

    /// Registers a collector that writes the metrics listed in `views` at scrape time.
    ///
    /// The names are validated and reserved like those of [`Registry::register`]; the
    /// collector must write exactly these names.
    ///
    /// # Errors
    ///
    /// As [`Registry::register`], for any of the names.
    pub fn register_collector(
        &self,
        views: &[(&str, &str, MetricType)],
        collector: impl Collector,
    ) -> Result<(), MetricsError> {
        let views: Vec<View<'_>> = views
            .iter()
            .map(|(name, help, metric_type)| View {
                name,
                help,
                metric_type: *metric_type,
            })
            .collect();
        let mut state = self.inner.state.write();
        check_views(&state, &views)?;
        for view in &views {
            reserve(&mut state, view, String::new(), None);
        }
        state.registry.register_collector(Box::new(collector));
        Ok(())
    }

    /// Registers a family of counters with the label names `label_names`.
    ///
    /// # Errors
    ///
    /// As [`Registry::register`], plus [`MetricsError::InvalidLabel`] for a bad label name.
    pub fn counter_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<CounterFamily<N>, MetricsError> {
        self.simple_family(name, help, label_names, (), false)
            .map(|core| CounterFamily { core })
    }

    /// Returns the counter family registered as `name`, or registers it.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Mismatch`] if `name` is registered with another type or label names,
    /// and the errors of [`Registry::counter_family`].
    pub fn get_or_register_counter_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<CounterFamily<N>, MetricsError> {
        self.simple_family(name, help, label_names, (), true)
            .map(|core| CounterFamily { core })
    }

    /// Registers a family of gauges with the label names `label_names`.
    ///
    /// # Errors
    ///
    /// As [`Registry::counter_family`].
    pub fn gauge_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<GaugeFamily<N>, MetricsError> {
        self.simple_family(name, help, label_names, (), false)
            .map(|core| GaugeFamily { core })
    }

    /// Returns the gauge family registered as `name`, or registers it.
    ///
    /// # Errors
    ///
    /// As [`Registry::get_or_register_counter_family`].
    pub fn get_or_register_gauge_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<GaugeFamily<N>, MetricsError> {
        self.simple_family(name, help, label_names, (), true)
            .map(|core| GaugeFamily { core })
    }

    /// Registers a family of histograms with the label names `label_names`.
    ///
    /// # Errors
    ///
    /// As [`Registry::counter_family`]; `le` is rejected as a label name.
    pub fn histogram_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
        buckets: Buckets,
    ) -> Result<HistogramFamily<N>, MetricsError> {
        self.simple_family(name, help, label_names, buckets, false)
            .map(|core| HistogramFamily { core })
    }

    /// Returns the histogram family registered as `name`, or registers it.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Mismatch`] if `name` is registered with another type, label names or
    /// buckets, and the errors of [`Registry::histogram_family`].
    pub fn get_or_register_histogram_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
        buckets: Buckets,
    ) -> Result<HistogramFamily<N>, MetricsError> {
        self.simple_family(name, help, label_names, buckets, true)
            .map(|core| HistogramFamily { core })
    }

    /// Registers a counter without labels.
    ///
    /// # Errors
    ///
    /// As [`Registry::register`].
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, MetricsError> {
        Ok(self.counter_family(name, help, [])?.get(&[]))
    }

    /// Registers a gauge without labels.
    ///
    /// # Errors
    ///
    /// As [`Registry::register`].
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, MetricsError> {
        Ok(self.gauge_family(name, help, [])?.get(&[]))
    }

    /// Registers a histogram without labels.
    ///
    /// # Errors
    ///
    /// As [`Registry::register`].
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: Buckets,
    ) -> Result<Histogram, MetricsError> {
        Ok(self.histogram_family(name, help, [], buckets)?.get(&[]))
    }

    /// Registers `target_info` and `obskit_build_info` for `service`.
    ///
    /// `target_info` carries `service_name`, `service_version`, `deployment_environment_name`
    /// and each resource attribute. An attribute key becomes a label name by replacing every
    /// character outside `[a-zA-Z0-9_]` with `_` (`k8s.pod.name` becomes `k8s_pod_name`). An
    /// attribute is left out, with a WARN event, when its key names a secret (contains `token`,
    /// `secret` or `password`), or its label name is reserved or repeats an earlier label. In
    /// OpenMetrics it is an info metric, in 0.0.4 a gauge; both write `target_info{...} 1`.
    /// `obskit_build_info{version}` is a gauge set to 1.
    ///
    /// # Errors
    ///
    /// [`MetricsError::AlreadyRegistered`] if either is registered already.
    pub fn register_service_info(&self, service: &ServiceConfig) -> Result<(), MetricsError> {
        let mut labels = vec![
            ("service_name".to_owned(), service.name.clone()),
            ("service_version".to_owned(), service.version.clone()),
            (
                "deployment_environment_name".to_owned(),
                service.environment.clone(),
            ),
        ];
        for (key, value) in &service.resource_attributes {
            let label = sanitize_label_name(key);
            let reserved = label.starts_with("__") || label == naming::OVERFLOW_LABEL;
            let left_out = if crate::config::is_secret_key(key) {
                Some("its name marks it as a secret, and metric labels are not masked")
            } else if reserved {
                Some("the label name is reserved")
            } else if labels.iter().any(|(existing, _)| *existing == label) {
                Some("another attribute or label already has this label name")
            } else {
                None
            };
            match left_out {
                Some(reason) => tracing::warn!(
                    target: "obskit::metrics",
                    attribute = %key,
                    label = %label,
                    reason,
                    "resource attribute left out of target_info"
                ),
                None => labels.push((label, value.clone())),
            }
        }
        self.register("target", "Target metadata", Info::new(labels))?;

        let build = self.gauge_family(
            "obskit_build_info",
            "obskit version that produced these metrics, always 1",
            ["version"],
        )?;
        build.set(&[env!("CARGO_PKG_VERSION")], 1.0);
        Ok(())
    }

    /// Registers the tokio runtime metrics of `handle`, read at scrape time.
    ///
    /// # Errors
    ///
    /// [`MetricsError::AlreadyRegistered`] if runtime metrics are registered already.
    pub fn register_runtime_metrics(
        &self,
        handle: tokio::runtime::Handle,
    ) -> Result<(), MetricsError> {
        runtime::register(self, handle)
    }

    /// Registers the `process_*` metrics, read from `/proc` at scrape time.
    ///
    /// On targets other than Linux this registers nothing and returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`MetricsError::AlreadyRegistered`] if process metrics are registered already.
    pub fn register_process_metrics(&self) -> Result<(), MetricsError> {
        process::register(self)
    }

    fn add_process_collector(&self) {
        // The registry is new, so the process names cannot clash; an error here means a broken
        // name constant, which the unit tests of `process` catch.
        if let Err(error) = process::register(self) {
            tracing::warn!(target: "obskit::metrics", %error, "process metrics are not available");
        }
    }

    fn simple_family<const N: usize, S: SimpleSeries>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
        init: S::Init,
        reuse: bool,
    ) -> Result<Arc<FamilyCore<N, S>>, MetricsError> {
        let metric_type = S::METRIC_TYPE;
        let settings = format!("{init:?}");
        let signature = if settings == "()" {
            format!("{} with labels {label_names:?}", metric_type.as_str())
        } else {
            format!(
                "{} with labels {label_names:?} and {settings}",
                metric_type.as_str()
            )
        };
        self.register_family(
            name,
            &label_names,
            &[View {
                name,
                help,
                metric_type,
            }],
            &signature,
            reuse,
            |context| {
                let core = Arc::new(FamilyCore::new(
                    name,
                    label_names,
                    context.max_series,
                    context.overflow_counter,
                    init,
                ));
                let view = FamilyView {
                    core: Arc::clone(&core),
                    metric_type,
                    part: S::encode_series,
                };
                (core, vec![Box::new(view) as Box<dyn Metric>])
            },
        )
    }

    /// Validates and registers the views of one family built by `build`.
    ///
    /// With `reuse`, an entry registered under `views[0].name` with the same `signature` and
    /// handle type is returned instead of an error.
    pub(crate) fn register_family<T: Any + Clone + Send + Sync>(
        &self,
        family_name: &str,
        label_names: &[&str],
        views: &[View<'_>],
        signature: &str,
        reuse: bool,
        build: impl FnOnce(FamilyContext) -> (T, Vec<Box<dyn Metric>>),
    ) -> Result<T, MetricsError> {
        let mut state = self.inner.state.write();
        let existing = if reuse {
            find_existing::<T>(&state, views, signature)?
        } else {
            None
        };
        if let Some(found) = existing {
            return Ok(found);
        }

        check_views(&state, views)?;
        for view in views {
            naming::validate_label_names(view.name, label_names, view.metric_type)?;
        }

        let overflow_counter =
            (!label_names.is_empty()).then(|| self.inner.overflow.get(&[family_name]));
        let (handle, metrics) = build(FamilyContext {
            max_series: self.inner.max_series,
            overflow_counter,
        });
        let shared: Arc<dyn Any + Send + Sync> = Arc::new(handle.clone());
        for (view, metric) in views.iter().zip(metrics) {
            reserve(
                &mut state,
                view,
                signature.to_owned(),
                Some(Arc::clone(&shared)),
            );
            state
                .registry
                .register(view.name, registry_help(view.help), BoxedMetric(metric));
        }
        Ok(handle)
    }
}

fn find_existing<T: Any + Clone>(
    state: &State,
    views: &[View<'_>],
    signature: &str,
) -> Result<Option<T>, MetricsError> {
    let Some(first) = views.first() else {
        return Ok(None);
    };
    let Some(entry) = state.entries.get(first.name) else {
        return Ok(None);
    };
    let mismatch = |reason: String| MetricsError::Mismatch {
        name: first.name.to_owned(),
        reason,
    };
    if entry.handle.is_none() {
        return Err(mismatch(
            "registered with Registry::register or a collector, which has no family to return"
                .to_owned(),
        ));
    }
    if entry.signature != signature {
        return Err(mismatch(format!(
            "registered as `{}`, requested as `{signature}`",
            entry.signature
        )));
    }
    let handle = entry
        .handle
        .as_ref()
        .and_then(|handle| handle.downcast_ref::<T>())
        .ok_or_else(|| mismatch("registered by another kind of helper".to_owned()))?;
    Ok(Some(handle.clone()))
}

fn check_views(state: &State, views: &[View<'_>]) -> Result<(), MetricsError> {
    for (index, view) in views.iter().enumerate() {
        check_view(state, view)?;
        let repeated = views.iter().take(index).any(|earlier| {
            let earlier_samples = naming::sample_names(earlier.name, earlier.metric_type);
            earlier.name == view.name
                || naming::sample_names(view.name, view.metric_type)
                    .iter()
                    .any(|sample| earlier_samples.contains(sample))
        });
        if repeated {
            return Err(MetricsError::AlreadyRegistered {
                name: view.name.to_owned(),
            });
        }
    }
    Ok(())
}

fn check_view(state: &State, view: &View<'_>) -> Result<(), MetricsError> {
    naming::validate_metric_name(view.name, view.metric_type)?;
    naming::validate_help(view.name, view.help)?;
    let taken = state.entries.contains_key(view.name)
        || state.samples.contains(view.name)
        || naming::sample_names(view.name, view.metric_type)
            .iter()
            .any(|sample| state.samples.contains(sample));
    if taken {
        return Err(MetricsError::AlreadyRegistered {
            name: view.name.to_owned(),
        });
    }
    Ok(())
}

fn reserve(
    state: &mut State,
    view: &View<'_>,
    signature: String,
    handle: Option<Arc<dyn Any + Send + Sync>>,
) {
    state
        .samples
        .extend(naming::sample_names(view.name, view.metric_type));
    state
        .entries
        .insert(view.name.to_owned(), Entry { signature, handle });
}

fn insert_metric(state: &mut State, view: &View<'_>, metric: Box<dyn Metric>) {
    reserve(state, view, String::new(), None);
    state
        .registry
        .register(view.name, registry_help(view.help), BoxedMetric(metric));
}

/// Drops trailing periods, because prometheus-client appends one to every help text.
fn registry_help(help: &str) -> &str {
    help.trim_end_matches('.')
}

/// Turns an OpenTelemetry attribute key into a Prometheus label name.
fn sanitize_label_name(key: &str) -> String {
    let mut label: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
        label.insert(0, '_');
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_shareable() {
        fn assert_shareable<T: Clone + Default + Send + Sync + 'static>() {}
        assert_shareable::<Registry>();
    }

    #[test]
    fn sanitize_turns_dots_into_underscores() {
        assert_eq!(sanitize_label_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(sanitize_label_name("1st"), "_1st");
        assert_eq!(sanitize_label_name(""), "_");
    }

    #[test]
    fn clash_on_sample_names() -> Result<(), MetricsError> {
        let registry = Registry::default();
        registry.counter("jobs", "Jobs.")?;
        let gauge = registry.gauge("jobs_created", "Creation time.");
        assert!(matches!(gauge, Err(MetricsError::AlreadyRegistered { .. })));
        Ok(())
    }

    #[test]
    fn get_or_register_returns_same_family() -> Result<(), MetricsError> {
        let registry = Registry::default();
        let first = registry.get_or_register_counter_family("hits", "Hits.", ["page"])?;
        let second = registry.get_or_register_counter_family("hits", "Hits.", ["page"])?;
        first.inc(&["home"]);
        assert_eq!(second.get(&["home"]).get(), 1);

        let other_labels = registry.get_or_register_counter_family("hits", "Hits.", ["path"]);
        assert!(matches!(other_labels, Err(MetricsError::Mismatch { .. })));
        let other_type = registry.get_or_register_gauge_family("hits", "Hits.", ["page"]);
        assert!(matches!(other_type, Err(MetricsError::Mismatch { .. })));
        Ok(())
    }

    #[test]
    fn overflow_counter_names_family() -> Result<(), MetricsError> {
        let registry = Registry::new(&MetricsConfig {
            max_series_per_metric: 1,
            process_metrics: false,
            ..MetricsConfig::default()
        });
        let family = registry.counter_family("clicks", "Clicks.", ["button"])?;
        family.inc(&["a"]);
        family.inc(&["b"]);
        family.inc(&["c"]);
        assert_eq!(registry.inner.overflow.get(&["clicks"]).get(), 2);
        Ok(())
    }
}
