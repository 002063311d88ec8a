//! USE method: utilization, saturation and errors per resource.

use super::golden::check_ratio;
use super::{Counter, CounterFamily, Gauge, GaugeFamily, MetricsError, Registry};

/// Utilization, saturation and errors of resources such as CPUs, disks, pools or queues.
///
/// | Name | Type | Labels | Meaning |
/// |---|---|---|---|
/// | `<prefix>_utilization_ratio` | gauge | `resource` | share of time or capacity busy, 0 to 1 |
/// | `<prefix>_saturation` | gauge | `resource` | work the resource cannot serve yet, such as queued requests |
/// | `<prefix>_errors_total` | counter | `resource` | errors the resource reported |
///
/// # Example
///
/// ```
/// use obskit::metrics::{Registry, UseMetrics};
///
/// let registry = Registry::default();
/// let pools = UseMetrics::register(&registry, "db_pool")?;
/// let primary = pools.resource("primary");
/// primary.set_utilization(0.4)?;
/// primary.set_saturation(3.0);
/// primary.inc_errors();
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UseMetrics {
    utilization: GaugeFamily<1>,
    saturation: GaugeFamily<1>,
    errors: CounterFamily<1>,
}

impl UseMetrics {
    /// Registers the USE families of `prefix`.
    ///
    /// # Errors
    ///
    /// As [`Registry::gauge_family`], for any of the three names.
    pub fn register(registry: &Registry, prefix: &str) -> Result<Self, MetricsError> {
        let utilization = registry.gauge_family(
            &format!("{prefix}_utilization_ratio"),
            &format!("Utilization of a {prefix} resource, from 0 (idle) to 1 (busy all the time)"),
            ["resource"],
        )?;
        let saturation = registry.gauge_family(
            &format!("{prefix}_saturation"),
            &format!("Work a {prefix} resource cannot serve yet, such as queued requests"),
            ["resource"],
        )?;
        let errors = registry.counter_family(
            &format!("{prefix}_errors"),
            &format!("Errors reported by a {prefix} resource"),
            ["resource"],
        )?;
        Ok(Self {
            utilization,
            saturation,
            errors,
        })
    }

    /// Returns handles bound to `resource`.
    pub fn resource(&self, resource: &str) -> ResourceHandle {
        ResourceHandle {
            metric: self.utilization.name().into(),
            utilization: self.utilization.get(&[resource]),
            saturation: self.saturation.get(&[resource]),
            errors: self.errors.get(&[resource]),
        }
    }

    /// Sets the utilization of `resource` to `ratio`.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidValue`] if `ratio` is not within 0..=1; the gauge keeps its value.
    pub fn set_utilization(&self, resource: &str, ratio: f64) -> Result<(), MetricsError> {
        check_ratio(self.utilization.name(), ratio)?;
        self.utilization.set(&[resource], ratio);
        Ok(())
    }

    /// Sets the saturation of `resource`.
    pub fn set_saturation(&self, resource: &str, value: f64) {
        self.saturation.set(&[resource], value);
    }

    /// Adds one to the errors of `resource`.
    pub fn inc_errors(&self, resource: &str) {
        self.errors.inc(&[resource]);
    }
}

/// USE metrics bound to one resource.
#[derive(Debug, Clone)]
pub struct ResourceHandle {
    metric: Box<str>,
    utilization: Gauge,
    saturation: Gauge,
    errors: Counter,
}

impl ResourceHandle {
    /// Sets the utilization to `ratio`.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidValue`] if `ratio` is not within 0..=1; the gauge keeps its value.
    pub fn set_utilization(&self, ratio: f64) -> Result<(), MetricsError> {
        check_ratio(&self.metric, ratio)?;
        self.utilization.set(ratio);
        Ok(())
    }

    /// Sets the saturation.
    pub fn set_saturation(&self, value: f64) {
        self.saturation.set(value);
    }

    /// Adds one to the errors.
    pub fn inc_errors(&self) {
        self.errors.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Format;

    #[test]
    fn resource_handle_writes_series() -> Result<(), MetricsError> {
        let registry = Registry::default();
        let disks = UseMetrics::register(&registry, "disk")?;
        let sda = disks.resource("sda");
        sda.set_utilization(0.25)?;
        assert!(sda.set_utilization(2.0).is_err());
        sda.set_saturation(4.0);
        sda.inc_errors();
        disks.inc_errors("sda");

        let text = registry.encode(Format::PrometheusText)?;
        assert!(
            text.contains("disk_utilization_ratio{resource=\"sda\"} 0.25\n"),
            "{text}"
        );
        assert!(
            text.contains("disk_saturation{resource=\"sda\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("disk_errors_total{resource=\"sda\"} 2\n"),
            "{text}"
        );
        Ok(())
    }
}
