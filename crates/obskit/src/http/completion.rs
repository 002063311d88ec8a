//! The per-request record written once when a response finishes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::MatchedPath;
use http::Method;

use super::Shared;
use super::route::RouteTemplate;
use crate::metrics::InFlightGuard;

/// Everything needed to record one request. Dropping it records the request, so each
/// completion records exactly once. The middleware creates it when it calls the inner service
/// and sets the status and the span once the response, a cancellation or a failure ends the
/// request.
pub(crate) struct Completion {
    pub(crate) shared: Arc<Shared>,
    pub(crate) start: Instant,
    pub(crate) method: Method,
    pub(crate) route: Option<MatchedPath>,
    pub(crate) template: Option<RouteTemplate>,
    pub(crate) path: RequestPath,
    pub(crate) status: u16,
    pub(crate) client: Option<SocketAddr>,
    pub(crate) span: tracing::Span,
    /// The request id, until the middleware moves it into the response header.
    pub(crate) request_id: Option<super::RequestId>,
    pub(crate) body_error: bool,
    /// Set when the response body was dropped before its end.
    pub(crate) body_incomplete: bool,
    pub(crate) cancelled: bool,
    pub(crate) _in_flight: InFlightGuard,
}

impl Completion {
    pub(crate) fn mark_body_error(&mut self) {
        self.body_error = true;
    }

    pub(crate) fn mark_cancelled(&mut self) {
        self.cancelled = true;
    }

    pub(crate) fn mark_body_incomplete(&mut self) {
        self.body_incomplete = true;
    }

    /// Returns whether the response carries a body for the client. A response to `HEAD`, a 1xx,
    /// 204 or 304 response and a successful `CONNECT` have none, and hyper drops their bodies
    /// unsent.
    pub(crate) fn expects_body(&self) -> bool {
        let bodiless_status = self.status < 200 || self.status == 204 || self.status == 304;
        let tunnel = self.method == Method::CONNECT && (200..300).contains(&self.status);
        self.method != Method::HEAD && !bodiless_status && !tunnel
    }

    fn route(&self) -> &str {
        match (&self.route, &self.template) {
            (Some(matched), _) => matched.as_str(),
            (None, Some(template)) => template.as_str(),
            (None, None) => "",
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        let seconds = elapsed.as_secs_f64();
        let route = self.route();
        let exemplar = if self.shared.trace {
            let method = self.method.as_str();
            super::server_span::finish(&self.span, method, route, self.status, self.body_error)
        } else {
            None
        };
        self.shared.metrics.record_explicit(
            self.method.as_str(),
            route,
            self.status,
            seconds,
            exemplar,
        );
        if let Some(slos) = &self.shared.slo {
            slos.record_http(self.method.as_str(), route, self.status, elapsed);
        }

        let _entered = self.span.enter();
        let method = self.method.as_str();
        // The log gets microsecond resolution, which the JSON formatter writes without a
        // float-to-text conversion. The histogram keeps the full resolution.
        let duration_ms = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX) as f64 / 1000.0;
        let client = self.client.map(|addr| addr.ip());
        let path = self.path.as_str();
        let status = self.status;
        // One access event per request, with the same fields at each level. `tracing` needs the
        // level at compile time, hence one macro call per level.
        macro_rules! access_event {
            ($macro:ident, $($extra:tt)*) => {
                tracing::$macro!(
                    target: crate::logging::ACCESS_TARGET,
                    duration_ms,
                    http.request.method = method,
                    http.route = route,
                    url.path = path,
                    http.response.status_code = status,
                    client.address = client.map(tracing::field::display),
                    $($extra)*
                )
            };
        }
        // 5xx responses are logged at ERROR because log sampling applies only below WARN, so it
        // never drops them. Other responses are INFO and sampled at the configured rate.
        // The message is a `&str` field rather than the macros' format string, so formatters
        // receive it through `record_str` instead of formatting `fmt::Arguments`.
        if self.cancelled {
            access_event!(warn, message = "request cancelled before a response");
        } else if self.status >= 500 || self.body_error {
            access_event!(
                error,
                body_error = self.body_error,
                message = "request failed"
            );
        } else if self.body_incomplete {
            // The status was sent, so the metrics keep it. WARN, which sampling never drops,
            // records that the client did not receive the whole body.
            access_event!(
                warn,
                body_incomplete = true,
                message = "response body dropped before its end"
            );
        } else {
            access_event!(info, message = "request completed");
        }
    }
}

/// Longest path kept inline in [`RequestPath`]; longer paths are copied to the heap.
const INLINE_PATH_LEN: usize = 62;

/// The request path, kept for the access log after the request has moved into the handler.
///
/// Typical paths fit inline, which saves an allocation per request.
pub(crate) enum RequestPath {
    Inline {
        len: u8,
        bytes: [u8; INLINE_PATH_LEN],
    },
    Heap(Box<str>),
}

impl RequestPath {
    pub(crate) fn new(path: &str) -> Self {
        let mut bytes = [0; INLINE_PATH_LEN];
        match (bytes.get_mut(..path.len()), u8::try_from(path.len())) {
            (Some(slot), Ok(len)) => {
                slot.copy_from_slice(path.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(path.into()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes were copied from a `&str` whole, so they are valid UTF-8.
            Self::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .unwrap_or_default(),
            Self::Heap(path) => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RequestPath;

    #[test]
    fn request_path_keeps_short_and_long_paths() {
        for path in ["", "/", "/orders/42", &"/a".repeat(31), &"/ü".repeat(40)] {
            assert_eq!(RequestPath::new(path).as_str(), path);
        }
        assert!(matches!(
            RequestPath::new(&"/a".repeat(31)),
            RequestPath::Inline { .. }
        ));
        assert!(matches!(
            RequestPath::new(&"/a".repeat(32)),
            RequestPath::Heap(_)
        ));
    }
}
