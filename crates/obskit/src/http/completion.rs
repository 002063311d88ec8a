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
/// completion records exactly once.
pub(crate) struct Completion {
    pub(crate) shared: Arc<Shared>,
    pub(crate) start: Instant,
    pub(crate) method: Method,
    pub(crate) route: Option<MatchedPath>,
    pub(crate) template: Option<RouteTemplate>,
    pub(crate) path: Box<str>,
    pub(crate) status: u16,
    pub(crate) client: Option<SocketAddr>,
    pub(crate) span: tracing::Span,
    pub(crate) body_error: bool,
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
        let seconds = self.start.elapsed().as_secs_f64();
        let route = self.route();
        let exemplar = if self.shared.trace {
            let failed = self.status >= 500 || self.body_error;
            super::server_span::finish(&self.span, self.method.as_str(), route, self.status, failed)
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

        let _entered = self.span.enter();
        let method = self.method.as_str();
        let duration_ms = seconds * 1000.0;
        let client = self.client.map(|addr| addr.ip());
        let path = &*self.path;
        let status = self.status;
        // One access event per request, with the same fields at each level. `tracing` needs the
        // level at compile time, hence one macro call per level.
        macro_rules! access_event {
            ($macro:ident, $($extra:tt)*) => {
                tracing::$macro!(
                    target: "obskit::access",
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
        if self.cancelled {
            access_event!(warn, "request cancelled before a response");
        } else if self.status >= 500 || self.body_error {
            access_event!(error, body_error = self.body_error, "request failed");
        } else {
            access_event!(info, "request completed");
        }
    }
}
