//! Metric registry, families with a cardinality guard, RED / Golden Signals / USE helpers and exposition.

use std::sync::Arc;

use parking_lot::RwLock;

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
    /// The name does not match the Prometheus naming rules.
    #[error("invalid metric name {name:?}: {reason}")]
    InvalidName {
        /// The metric name.
        name: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// Encoding failed.
    #[error("encoding metrics failed: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// Exposition format of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    PrometheusText,
}

/// The metric registry shared by obskit and the application. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<prometheus_client::registry::Registry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Registers any prometheus-client metric under `name` (without the `_total` suffix for counters).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) -> Result<(), MetricsError> {
        self.inner.write().register(name, help, metric);
        Ok(())
    }

    /// Encodes every registered family in `format`.
    pub fn encode(&self, format: Format) -> Result<String, MetricsError> {
        let mut out = String::new();
        let registry = self.inner.read();
        match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
            Format::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
            }
        }
        Ok(out)
    }
}

mod http_stub;
pub use http_stub::{HttpServerMetrics, InFlightGuard};
