//! HTTP server middleware: request metrics, access log, request ids and panic recovery.
//!
//! The data path of one request: [`HttpLayer`] opens a span and starts the in-flight gauge.
//! The application handles the request inside that span, so its `tracing` events carry the
//! request id and route. When the response body ends, the duration histogram and the access log
//! are written.

mod body;
mod completion;
mod layer;
mod request_id;
mod route;
mod server_span;

use std::sync::Arc;

pub use body::ResponseBody;
pub use layer::{HttpLayer, HttpService, ResponseFuture};
pub use request_id::{MAX_REQUEST_ID_LEN, MissingRequestId, REQUEST_ID_HEADER, RequestId};
pub use route::RouteTemplate;

/// State shared by every clone of the layer and its services.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) metrics: crate::metrics::HttpServerMetrics,
    pub(crate) exclude: PathPatterns,
    /// Continue incoming traces and describe the request span for the span bridge.
    pub(crate) trace: bool,
    /// The SLOs that each finished request is recorded into.
    pub(crate) slo: Option<Arc<crate::slo::SloRegistry>>,
}

/// Exact paths and `prefix*` patterns that the middleware leaves alone.
#[derive(Debug, Clone)]
pub(crate) struct PathPatterns {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl PathPatterns {
    pub(crate) fn new(patterns: &[String]) -> Self {
        let mut exact = Vec::new();
        let mut prefixes = Vec::new();
        for pattern in patterns {
            match pattern.strip_suffix('*') {
                Some(prefix) => prefixes.push(prefix.to_owned()),
                None => exact.push(pattern.clone()),
            }
        }
        Self { exact, prefixes }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        self.exact.iter().any(|exact| exact == path)
            || self
                .prefixes
                .iter()
                .any(|prefix| path.starts_with(prefix.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::PathPatterns;

    #[test]
    fn patterns_match_exact_and_prefix() {
        let patterns = PathPatterns::new(&["/metrics".to_owned(), "/health*".to_owned()]);
        assert!(patterns.matches("/metrics"));
        assert!(!patterns.matches("/metrics/extra"));
        assert!(patterns.matches("/health"));
        assert!(patterns.matches("/health/ready"));
        assert!(!patterns.matches("/orders/1"));
        assert!(!patterns.matches("/"));
    }
}
