//! The SLOs of a service, fed by finished HTTP requests and exported as gauges.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::alert::Severity;
use super::definition::{SloError, SloSet};
use super::tracker::{Outcome, SloStatus, SloTracker};
use crate::clock::Clock;
use crate::metrics::{MetricsError, Registry};

/// The trackers of a set of SLOs, with a lookup from route to the SLOs that select it.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use obskit::clock::MonotonicClock;
/// use obskit::slo::{SloDefinition, SloRegistry, SloSet};
///
/// let orders = SloDefinition::builder("orders").target(99.9).period("28d").route("/orders").build()?;
/// let slos = SloRegistry::new(SloSet::new(vec![orders])?, Arc::new(MonotonicClock::new()))?;
/// slos.record_http("GET", "/orders", 200, Duration::from_millis(12));
/// assert_eq!(slos.statuses()[0].valid, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SloRegistry {
    trackers: Arc<[SloTracker]>,
    /// Positions in `trackers` of the SLOs of each route.
    by_route: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SloRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .trackers
            .iter()
            .map(|tracker| tracker.definition().name.as_str())
            .collect();
        f.debug_struct("SloRegistry").field("slos", &names).finish()
    }
}

impl SloRegistry {
    /// Builds one tracker per SLO, all reading `clock`.
    ///
    /// # Errors
    ///
    /// The [`SloError`] of a definition changed after the set was validated.
    pub fn new(set: SloSet, clock: Arc<dyn Clock>) -> Result<Self, SloError> {
        let trackers = set
            .into_iter()
            .map(|definition| SloTracker::new(definition, Arc::clone(&clock)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_route: HashMap<String, Vec<usize>, _> = HashMap::default();
        for (index, tracker) in trackers.iter().enumerate() {
            by_route
                .entry(tracker.definition().selector.route.clone())
                .or_default()
                .push(index);
        }
        Ok(Self {
            trackers: trackers.into(),
            by_route,
            clock,
        })
    }

    /// Returns the trackers, in the order of the set.
    pub fn trackers(&self) -> &[SloTracker] {
        &self.trackers
    }

    /// Finds the tracker of the SLO `name`.
    pub fn tracker(&self, name: &str) -> Option<&SloTracker> {
        self.trackers
            .iter()
            .find(|tracker| tracker.definition().name == name)
    }

    /// Records a finished request into every SLO whose selector matches `route` and `method`.
    ///
    /// `route` is the matched route template, as in the `http_route` label. The lookup
    /// allocates nothing, and the clock is read once, only when an SLO matches.
    #[inline]
    pub fn record_http(&self, method: &str, route: &str, status: u16, duration: Duration) {
        let Some(indexes) = self.by_route.get(route) else {
            return;
        };
        let now = self.clock.now();
        for tracker in indexes.iter().filter_map(|index| self.trackers.get(*index)) {
            let definition = tracker.definition();
            if definition
                .selector
                .method
                .as_deref()
                .is_some_and(|selected| selected != method)
            {
                continue;
            }
            let outcome = if definition.is_bad(status, duration) {
                Outcome::Bad
            } else {
                Outcome::Good
            };
            tracker.record_at(now, outcome);
        }
    }

    /// Computes the status of every SLO now.
    pub fn statuses(&self) -> Vec<SloStatus> {
        let now = self.clock.now();
        self.trackers
            .iter()
            .map(|tracker| tracker.status_at(now))
            .collect()
    }

    /// Returns a health check that fails while any SLO's error budget is spent; see
    /// [`BudgetCheck`](super::BudgetCheck).
    pub fn budget_check(self: &Arc<Self>) -> super::BudgetCheck {
        super::BudgetCheck::new(Arc::clone(self))
    }

    /// Registers the SLO gauges, computed at each scrape, in `registry`.
    ///
    /// | Name | Type | Labels | Value |
    /// |---|---|---|---|
    /// | `obskit_slo_objective_ratio` | gauge | `slo` | the target, such as 0.999 |
    /// | `obskit_slo_error_budget_remaining_ratio` | gauge | `slo` | share of the budget left; negative when overspent; omitted without valid events |
    /// | `obskit_slo_burn_rate` | gauge | `slo`, `window` | burn rate over `5m` … `3d`; a window without valid events is omitted |
    /// | `obskit_slo_alert_active` | gauge | `slo`, `severity` | 1 while a `page` or `ticket` condition holds, else 0 |
    /// | `obskit_slo_late_events_total` | counter | `slo` | events dropped because they were more than 6 h old |
    ///
    /// # Errors
    ///
    /// [`MetricsError::AlreadyRegistered`] if the names are taken, such as by a second call.
    pub fn register_metrics(&self, registry: &Registry) -> Result<(), MetricsError> {
        registry.register_collector(
            &[
                OBJECTIVE,
                BUDGET_REMAINING,
                BURN_RATE,
                ALERT_ACTIVE,
                LATE_EVENTS,
            ],
            SloCollector {
                trackers: Arc::clone(&self.trackers),
                clock: Arc::clone(&self.clock),
            },
        )
    }
}

const OBJECTIVE: (&str, &str, MetricType) = (
    "obskit_slo_objective_ratio",
    "Objective of the SLO: the share of valid events that must be good.",
    MetricType::Gauge,
);
const BUDGET_REMAINING: (&str, &str, MetricType) = (
    "obskit_slo_error_budget_remaining_ratio",
    "Share of the SLO's error budget left over its period; negative when overspent.",
    MetricType::Gauge,
);
const BURN_RATE: (&str, &str, MetricType) = (
    "obskit_slo_burn_rate",
    "Error ratio over the window divided by the SLO's error budget.",
    MetricType::Gauge,
);
const ALERT_ACTIVE: (&str, &str, MetricType) = (
    "obskit_slo_alert_active",
    "1 while the SLO's multi-window burn-rate alert of this severity holds, else 0.",
    MetricType::Gauge,
);
const LATE_EVENTS: (&str, &str, MetricType) = (
    "obskit_slo_late_events",
    "Events dropped because they were more than 6 hours older than the newest one.",
    MetricType::Counter,
);

#[derive(Debug)]
struct SloCollector {
    trackers: Arc<[SloTracker]>,
    clock: Arc<dyn Clock>,
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    view: (&str, &str, MetricType),
    samples: impl Iterator<Item = (Vec<(&'static str, String)>, f64)>,
) -> fmt::Result {
    let (name, help, metric_type) = view;
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for SloCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let now = self.clock.now();
        let statuses: Vec<SloStatus> = self
            .trackers
            .iter()
            .map(|tracker| tracker.status_at(now))
            .collect();
        let slo = |status: &SloStatus| ("slo", status.name.clone());

        gauge(
            &mut encoder,
            OBJECTIVE,
            statuses
                .iter()
                .map(|status| (vec![slo(status)], status.target.to_f64())),
        )?;
        gauge(
            &mut encoder,
            BUDGET_REMAINING,
            statuses.iter().filter_map(|status| {
                let remaining = status.error_budget_remaining?;
                Some((vec![slo(status)], remaining))
            }),
        )?;
        gauge(
            &mut encoder,
            BURN_RATE,
            statuses.iter().flat_map(|status| {
                status.burn_rates.iter().filter_map(move |(window, rate)| {
                    let labels = vec![slo(status), ("window", window.label().to_owned())];
                    Some((labels, rate?))
                })
            }),
        )?;
        gauge(
            &mut encoder,
            ALERT_ACTIVE,
            statuses.iter().flat_map(|status| {
                [Severity::Page, Severity::Ticket]
                    .into_iter()
                    .map(move |severity| {
                        let labels = vec![slo(status), ("severity", severity.label().to_owned())];
                        let active = if status.alerts.contains(&severity) {
                            1.0
                        } else {
                            0.0
                        };
                        (labels, active)
                    })
            }),
        )?;

        let (name, help, metric_type) = LATE_EVENTS;
        let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
        for tracker in self.trackers.iter() {
            let labels = [("slo", tracker.definition().name.as_str())];
            ConstCounter::new(tracker.late_events()).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests;
