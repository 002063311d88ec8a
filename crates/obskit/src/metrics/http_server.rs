//! HTTP server metrics named after the OpenTelemetry HTTP semantic conventions.

use super::{Buckets, Gauge, GaugeFamily, HistogramFamily, MetricsError, Registry};

/// Methods the OpenTelemetry HTTP semantic conventions call known: RFC 9110 plus `PATCH`.
const KNOWN_METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// Returns `method` if it is a known HTTP method, else `_OTHER`.
///
/// The comparison is case-sensitive, as in the semantic conventions, so `get` becomes `_OTHER`.
/// This keeps arbitrary client input out of label values.
///
/// # Example
///
/// ```
/// use obskit::metrics::normalize_method;
///
/// assert_eq!(normalize_method("GET"), "GET");
/// assert_eq!(normalize_method("PROPFIND"), "_OTHER");
/// ```
pub fn normalize_method(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("_OTHER")
}

/// Request duration and in-flight requests of an HTTP server.
///
/// | Name | Type | Labels |
/// |---|---|---|
/// | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code` |
/// | `http_server_active_requests` | gauge | `http_request_method` |
///
/// These are the OpenTelemetry metrics `http.server.request.duration` and
/// `http.server.active_requests` with their attributes translated to Prometheus names.
///
/// # Example
///
/// ```
/// use obskit::metrics::{HttpServerMetrics, Registry};
///
/// let registry = Registry::default();
/// let http = HttpServerMetrics::register(&registry)?;
///
/// let guard = http.start("GET");
/// // ... handle the request ...
/// http.record("GET", "/orders/{id}", 200, 0.004);
/// drop(guard);
/// # Ok::<(), obskit::metrics::MetricsError>(())
/// ```
///
/// # Limitations
///
/// `route` must be the matched route template (`/orders/{id}`), never the raw path; the
/// cardinality limit folds excess label sets but cannot make raw paths useful.
#[derive(Debug, Clone)]
pub struct HttpServerMetrics {
    duration: HistogramFamily<3>,
    active: GaugeFamily<1>,
}

impl HttpServerMetrics {
    /// Registers both families with the default duration buckets.
    ///
    /// # Errors
    ///
    /// [`MetricsError::AlreadyRegistered`] if either name is taken.
    pub fn register(registry: &Registry) -> Result<Self, MetricsError> {
        Self::register_with_buckets(registry, Buckets::default())
    }

    /// Registers both families with duration buckets `buckets`.
    ///
    /// # Errors
    ///
    /// As [`HttpServerMetrics::register`].
    pub fn register_with_buckets(
        registry: &Registry,
        buckets: Buckets,
    ) -> Result<Self, MetricsError> {
        let duration = registry.histogram_family(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests",
            [
                "http_request_method",
                "http_route",
                "http_response_status_code",
            ],
            buckets,
        )?;
        let active = registry.gauge_family(
            "http_server_active_requests",
            "Number of HTTP server requests in flight",
            ["http_request_method"],
        )?;
        Ok(Self { duration, active })
    }

    /// Counts a request of `method` as in flight until the returned guard is dropped.
    pub fn start(&self, method: &str) -> InFlightGuard {
        let gauge = self.active.get(&[normalize_method(method)]);
        gauge.inc();
        InFlightGuard { gauge }
    }

    /// Records a finished request.
    #[inline]
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut buffer = [0_u8; 5];
        let status = format_status(status, &mut buffer);
        self.duration
            .observe(&[normalize_method(method), route, status], seconds);
    }
}

/// Keeps one request counted in `http_server_active_requests` until dropped.
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when the guard is dropped"]
pub struct InFlightGuard {
    gauge: Gauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Writes `status` as decimal digits into `buffer` without allocating.
fn format_status(status: u16, buffer: &mut [u8; 5]) -> &str {
    let mut value = status;
    let mut start = buffer.len();
    loop {
        start -= 1;
        if let Some(digit) = buffer.get_mut(start) {
            // `value % 10` is below 10, so the cast cannot truncate.
            *digit = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || start == 0 {
            break;
        }
    }
    buffer
        .get(start..)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Format;

    #[test]
    fn status_formats_without_allocation() {
        for status in [0_u16, 7, 42, 200, 404, 599, 65535] {
            let mut buffer = [0; 5];
            assert_eq!(format_status(status, &mut buffer), status.to_string());
        }
    }

    #[test]
    fn unknown_methods_become_other() {
        assert_eq!(normalize_method("PATCH"), "PATCH");
        assert_eq!(normalize_method("get"), "_OTHER");
        assert_eq!(normalize_method("BREW"), "_OTHER");
    }

    #[test]
    fn guard_tracks_in_flight() -> Result<(), MetricsError> {
        let registry = Registry::default();
        let http = HttpServerMetrics::register(&registry)?;
        let first = http.start("GET");
        let second = http.start("FOO");
        let get = http.active.get(&["GET"]);
        assert_eq!(get.get(), 1.0);
        drop(first);
        assert_eq!(get.get(), 0.0);
        drop(second);

        http.record("FOO", "/x", 418, 0.1);
        let text = registry.encode(Format::PrometheusText)?;
        assert!(
            text.contains("http_server_request_duration_seconds_count{http_request_method=\"_OTHER\",http_route=\"/x\",http_response_status_code=\"418\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("http_server_active_requests{http_request_method=\"_OTHER\"} 0.0\n"),
            "{text}"
        );
        Ok(())
    }
}
