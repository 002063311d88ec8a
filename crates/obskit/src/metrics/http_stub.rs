//! Temporary HTTP server metrics until the metrics module provides its own.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::{MetricsError, Registry};

type Labels = Vec<(&'static str, String)>;

/// HTTP server metrics.
#[derive(Clone)]
pub struct HttpServerMetrics {
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    active: Family<Labels, Gauge>,
}

/// In-flight guard.
pub struct InFlightGuard(Gauge);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl HttpServerMetrics {
    /// Registers.
    pub fn register(registry: &Registry) -> Result<Self, MetricsError> {
        fn buckets() -> Histogram {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        }
        let duration = Family::new_with_constructor(buckets as fn() -> Histogram);
        let active = Family::default();
        registry.register("http_server_request_duration_seconds", "Duration of HTTP server requests.", duration.clone())?;
        registry.register("http_server_active_requests", "Number of active HTTP server requests.", active.clone())?;
        Ok(Self { duration, active })
    }

    /// Starts.
    pub fn start(&self, method: &str) -> InFlightGuard {
        let gauge = self.active.get_or_create(&vec![("http_request_method", method.to_owned())]).clone();
        gauge.inc();
        InFlightGuard(gauge)
    }

    /// Records.
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.duration
            .get_or_create(&vec![
                ("http_request_method", method.to_owned()),
                ("http_route", route.to_owned()),
                ("http_response_status_code", status.to_string()),
            ])
            .observe(seconds);
    }
}
