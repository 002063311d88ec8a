//! Route templates for services that do not route with axum.

use std::borrow::Cow;

/// The route template of a response, such as `/orders/{id}`, set by a handler for services
/// without axum's router.
///
/// axum's router passes the matched route to the middleware as `MatchedPath`. A plain hyper or
/// tower service routes inside its handler, after the middleware has seen the request, so the
/// handler inserts a `RouteTemplate` into the response extensions instead. The middleware then
/// uses it as `http_route` in metrics and `http.route` in the access log and in log lines
/// written after the response. `MatchedPath` wins when both are present.
///
/// Use a template, never the raw path: every distinct value becomes a metric series, up to
/// `metrics.max_series_per_metric`.
///
/// # Example
///
/// ```
/// use obskit::http::RouteTemplate;
///
/// let mut response = http::Response::new(String::from("order 42"));
/// response.extensions_mut().insert(RouteTemplate::new("/orders/{id}"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteTemplate(Cow<'static, str>);

impl RouteTemplate {
    /// Creates a route template.
    pub fn new(template: impl Into<Cow<'static, str>>) -> Self {
        Self(template.into())
    }

    /// Returns the template text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
