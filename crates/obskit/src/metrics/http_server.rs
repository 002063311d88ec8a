//! HTTP server metrics named after the OpenTelemetry HTTP semantic conventions.

use std::sync::{Arc, OnceLock};

use super::{Buckets, CounterFamily, Gauge, GaugeFamily, HistogramFamily, MetricsError, Registry};

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
        .get(method_index(method))
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// Tells whether `method` is a known HTTP method, which [`normalize_method`] keeps as it is.
pub(crate) fn is_known_method(method: &str) -> bool {
    method_index(method) < KNOWN_METHODS.len()
}

/// Label value of methods outside [`KNOWN_METHODS`].
const OTHER_METHOD: &str = "_OTHER";

/// Returns the position of `method` in [`KNOWN_METHODS`], or `KNOWN_METHODS.len()` for `_OTHER`.
fn method_index(method: &str) -> usize {
    KNOWN_METHODS
        .iter()
        .position(|known| *known == method)
        .unwrap_or(KNOWN_METHODS.len())
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
    /// `active` bound per normalized method, indexed like [`KNOWN_METHODS`] with `_OTHER` last,
    /// so starting a request skips the label lookup. Filled on first use, so a method's series
    /// appears only once a request of that method was seen.
    active_by_method: Arc<[OnceLock<Gauge>; KNOWN_METHODS.len() + 1]>,
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    trace_context_rejected: CounterFamily<2>,
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
        let trace_context_rejected = registry.counter_family(
            "obskit_trace_context_rejected",
            "Incoming trace context discarded, by header (traceparent, tracestate, baggage) and the rule broken",
            ["header", "reason"],
        )?;
        Ok(Self {
            duration,
            active,
            active_by_method: Arc::new(std::array::from_fn(|_| OnceLock::new())),
            trace_context_rejected,
        })
    }

    /// Counts a request of `method` as in flight until the returned guard is dropped.
    pub fn start(&self, method: &str) -> InFlightGuard {
        let gauge = self.active_gauge(method);
        gauge.inc();
        InFlightGuard { gauge }
    }

    fn active_gauge(&self, method: &str) -> Gauge {
        let index = method_index(method);
        let Some(slot) = self.active_by_method.get(index) else {
            return self.active.get(&[normalize_method(method)]);
        };
        if let Some(gauge) = slot.get() {
            return gauge.clone();
        }
        let gauge = self.active.get(&[normalize_method(method)]);
        // The overflow series is not cached, so every later request still counts its fold.
        if !self.active.is_overflow(&gauge) {
            let _ = slot.set(gauge.clone());
        }
        gauge
    }

    /// Records a finished request. Inside a span whose trace is sampled, the request also
    /// becomes the exemplar of its duration bucket.
    #[inline]
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut buffer = [0_u8; 5];
        let status = format_status(status, &mut buffer);
        self.duration
            .observe(&[normalize_method(method), route, status], seconds);
    }

    /// Counts the headers and members of an incoming trace context that were discarded.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn count_rejected(&self, rejection: &crate::trace::Rejection) {
        for (header, reason, count) in rejection.counts() {
            self.trace_context_rejected
                .inc_by(&[header, reason], u64::try_from(count).unwrap_or(u64::MAX));
        }
    }

    /// Records a finished request with the exemplar `ids` when given. It skips the lookup of the
    /// current span, because the middleware records after the request span has ended.
    #[inline]
    pub(crate) fn record_explicit(
        &self,
        method: &str,
        route: &str,
        status: u16,
        seconds: f64,
        ids: Option<([u8; 16], [u8; 8])>,
    ) {
        let mut buffer = [0_u8; 5];
        let status = format_status(status, &mut buffer);
        self.duration
            .observe_explicit(&[normalize_method(method), route, status], seconds, ids);
    }

    /// Records a finished request with an exemplar labelled `trace_id` and `span_id`, for
    /// callers that have the ids of the request's span at hand; see
    /// [`Histogram::observe_with_exemplar`](super::Histogram::observe_with_exemplar).
    #[inline]
    pub fn record_with_exemplar(
        &self,
        method: &str,
        route: &str,
        status: u16,
        seconds: f64,
        trace_id: [u8; 16],
        span_id: [u8; 8],
    ) {
        self.record_explicit(method, route, status, seconds, Some((trace_id, span_id)));
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

/// The three-digit status codes 100 to 599, back to back.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where an index out of bounds fails the build"
)]
const STATUS_DIGITS: [u8; 1500] = {
    let mut digits = [0; 1500];
    let mut status = 100;
    while status < 600 {
        let at = (status - 100) * 3;
        digits[at] = b'0' + (status / 100) as u8;
        digits[at + 1] = b'0' + (status / 10 % 10) as u8;
        digits[at + 2] = b'0' + (status % 10) as u8;
        status += 1;
    }
    digits
};

/// [`STATUS_DIGITS`] as text, checked once at compile time.
const STATUS_TEXT: &str = match std::str::from_utf8(&STATUS_DIGITS) {
    Ok(text) => text,
    Err(_) => "",
};

/// Writes `status` as decimal digits into `buffer` without allocating. Codes from 100 to 599
/// come from a table, without a conversion or a UTF-8 check.
fn format_status(status: u16, buffer: &mut [u8; 5]) -> &str {
    if let Some(at) = status
        .checked_sub(100)
        .map(|offset| usize::from(offset) * 3)
        && let Some(text) = STATUS_TEXT.get(at..at + 3)
    {
        return text;
    }
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
        for status in (0_u16..=1000).chain([9999, 10000, 65535]) {
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
    fn cached_gauge_is_the_family_series() -> Result<(), MetricsError> {
        let registry = Registry::default();
        let http = HttpServerMetrics::register(&registry)?;
        let first = http.start("POST");
        let second = http.start("POST");
        assert_eq!(http.active.get(&["POST"]).get(), 2.0);
        drop(first);
        drop(second);
        assert_eq!(http.active.get(&["POST"]).get(), 0.0);
        Ok(())
    }

    #[test]
    fn overflow_gauge_is_not_cached() -> Result<(), MetricsError> {
        let registry = Registry::new(&crate::config::MetricsConfig {
            max_series_per_metric: 1,
            process_metrics: false,
            ..crate::config::MetricsConfig::default()
        });
        let http = HttpServerMetrics::register(&registry)?;
        drop(http.start("GET"));
        for _ in 0..3 {
            drop(http.start("PUT"));
        }
        let text = registry.encode(Format::PrometheusText)?;
        assert!(
            text.contains(
                "obskit_metric_overflow_total{metric=\"http_server_active_requests\"} 3\n"
            ),
            "{text}"
        );
        Ok(())
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
