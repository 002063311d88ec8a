//! The tower layer and service that measure, log and identify every request.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::Shared;
use super::body::ResponseBody;
use super::completion::{Completion, RequestPath};
use super::request_id::{REQUEST_ID_HEADER_NAME, RequestId};
use super::route::RouteTemplate;

/// Tower layer that adds request metrics, an access log, request ids and panic recovery.
///
/// Works for axum routers and any hyper or tower HTTP service. For each request that is not
/// excluded it:
///
/// - reads `X-Request-ID` when it matches `^[A-Za-z0-9._-]{1,128}$` and generates one
///   otherwise, leaves exactly that id in the request's header (read it with the [`RequestId`]
///   extractor, or [`RequestId::from_headers`] without axum) and echoes it in the response;
/// - opens an `http_request` span with `request_id`, `http.request.method` and `http.route`, so
///   every log line of the request carries them;
/// - records `http_server_request_duration_seconds` and `http_server_active_requests`, with
///   the matched route template (axum's [`MatchedPath`], or a [`RouteTemplate`] the handler put
///   in the response extensions) as `http_route`, never the raw path;
/// - logs one access event (target `obskit::access`) when the response body ends: INFO for
///   success, ERROR for 5xx so sampling never hides failures, WARN for a request cancelled
///   before its response and for a response body dropped before its end. Its `duration_ms` has
///   microsecond resolution;
/// - turns a handler that panics, in the inner service's `call` or in its future, into a
///   recorded 500 response.
///
/// Excluded paths (by default `/metrics` and `/health*`) pass through untouched.
///
/// # Example
///
/// ```
/// use axum::{Router, routing::get};
///
/// # fn demo() -> Result<(), obskit::metrics::MetricsError> {
/// let registry = obskit::metrics::Registry::default();
/// let layer = obskit::http::HttpLayer::new(&registry, &obskit::config::HttpConfig::default())?;
/// let app: Router = Router::new().route("/orders/{id}", get(|| async { "ok" })).layer(layer);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpLayer")
            .field("exclude_paths", &self.shared.exclude)
            .finish_non_exhaustive()
    }
}

impl HttpLayer {
    /// Creates the layer and registers the HTTP server metric families in `registry`.
    ///
    /// # Errors
    ///
    /// Fails when the HTTP metric families are already registered in `registry` under another
    /// shape; create one layer per registry and clone it.
    pub fn new(
        registry: &crate::metrics::Registry,
        config: &crate::config::HttpConfig,
    ) -> Result<Self, crate::metrics::MetricsError> {
        let metrics = crate::metrics::HttpServerMetrics::register(registry)?;
        Ok(Self::with_metrics(metrics, config))
    }

    /// Creates the layer around already registered HTTP server metrics.
    pub fn with_metrics(
        metrics: crate::metrics::HttpServerMetrics,
        config: &crate::config::HttpConfig,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                metrics,
                exclude: super::PathPatterns::new(&config.exclude_paths),
                trace: false,
                slo: None,
            }),
        }
    }

    /// Continues the caller's trace from `traceparent` and `tracestate`, makes `baggage`
    /// available as a [`Baggage`](crate::trace::Baggage) request extension, and describes the
    /// request span as an OpenTelemetry server span: named `{METHOD} {route}`, with the HTTP
    /// semantic-convention attributes, and status Error for 5xx responses. The duration
    /// histogram takes the request as exemplar when its trace is sampled.
    ///
    /// Needs an [`OtelLayer`](crate::trace::OtelLayer) in the subscriber; [`crate::init`] turns
    /// this on when tracing is enabled. Off by default.
    #[must_use]
    pub fn with_trace_context(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.shared).trace = on;
        self
    }
}

impl HttpLayer {
    /// Records each finished request into the SLOs whose route and method it matches.
    /// [`crate::init`] does this when the configuration defines SLOs.
    #[must_use]
    pub fn with_slo(mut self, slos: Arc<crate::slo::SloRegistry>) -> Self {
        Arc::make_mut(&mut self.shared).slo = Some(slos);
        self
    }
}

impl<S> Layer<S> for HttpLayer {
    type Service = HttpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Service produced by [`HttpLayer`].
#[derive(Clone)]
pub struct HttpService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for HttpService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if self.shared.exclude.matches(request.uri().path()) {
            let span = tracing::Span::none();
            return ResponseFuture {
                inner: call_inner(&mut self.inner, request, &span, false),
                state: None,
                span,
            };
        }

        let start = Instant::now();
        let incoming = request.headers().get(REQUEST_ID_HEADER_NAME);
        let request_id = RequestId::from_header(incoming);
        // The header already contains exactly the id unless the id was generated or the client
        // sent several `X-Request-ID` values, so only those requests rewrite it.
        let headers = request.headers();
        let header_matches = incoming.is_some_and(|value| value == request_id.header_value())
            && (headers.len() == headers.keys_len()
                || headers
                    .get_all(REQUEST_ID_HEADER_NAME)
                    .iter()
                    .nth(1)
                    .is_none());
        if !header_matches {
            request
                .headers_mut()
                .insert(REQUEST_ID_HEADER_NAME, request_id.header_value().clone());
        }

        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let new_span = || {
            tracing::info_span!(
                target: crate::logging::REQUEST_SPAN_TARGET,
                crate::logging::REQUEST_SPAN_NAME,
                request_id = request_id.as_str(),
                http.request.method = method.as_str(),
                http.route = route.as_ref().map_or("", MatchedPath::as_str),
            )
        };
        let span = if self.shared.trace {
            let span = super::server_span::start(&mut request, &self.shared.metrics, new_span);
            super::server_span::describe(&span, &request, client);
            span
        } else {
            new_span()
        };
        let in_flight = self.shared.metrics.start(method.as_str());
        let path = RequestPath::new(request.uri().path());

        let inner = call_inner(&mut self.inner, request, &span, self.shared.trace);
        // One allocation carries the request's record from here to the end of the response
        // body, so the futures and bodies that wrap this one move a pointer instead of it.
        let state = Box::new(Completion {
            shared: Arc::clone(&self.shared),
            start,
            method,
            route,
            template: None,
            path,
            status: 0,
            client,
            span: tracing::Span::none(),
            request_id: Some(request_id),
            body_error: false,
            body_incomplete: false,
            cancelled: false,
            _in_flight: in_flight,
        });
        ResponseFuture {
            inner,
            state: Some(state),
            span,
        }
    }
}

/// Calls `inner` inside `span`. A panic in `call` is logged and yields `None`, which the response
/// future turns into a recorded 500 response, as it does for a panic while it polls.
fn call_inner<S, R>(
    inner: &mut S,
    request: R,
    span: &tracing::Span,
    traced: bool,
) -> Option<S::Future>
where
    S: Service<R>,
{
    let _entered = span.enter();
    match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(request))) {
        Ok(future) => Some(future),
        Err(payload) => {
            report_panic(span, payload.as_ref(), traced, "handler panicked");
            None
        }
    }
}

/// Logs a panic of the handler or its response body inside the request span, with
/// `log_message` as the message, and, for a traced request, records it on the server span.
pub(crate) fn report_panic(
    span: &tracing::Span,
    payload: &(dyn std::any::Any + Send),
    traced: bool,
    log_message: &'static str,
) {
    let message = panic_message(payload);
    span.in_scope(|| {
        tracing::error!(target: "obskit::http", panic = message, "{log_message}");
    });
    if traced {
        super::server_span::record_panic(span, message);
    }
}

/// Sets the status of the record of a finished request and hands it the request span, which
/// the finished future no longer needs.
fn complete(
    mut completion: Box<Completion>,
    status: u16,
    span: &mut tracing::Span,
) -> Box<Completion> {
    completion.status = status;
    completion.span = take_span(span);
    completion
}

pin_project! {
    /// Response future of [`HttpService`].
    ///
    /// Dropped before it produced a response (the client closed the connection, or the
    /// shutdown deadline passed), it records the request with status 499 and logs it at WARN.
    pub struct ResponseFuture<F> {
        // `None` when the inner service panicked in `call`.
        #[pin]
        inner: Option<F>,
        state: Option<Box<Completion>>,
        span: tracing::Span,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(state) = this.state.take() {
                let mut completion = complete(state, CLIENT_CLOSED_REQUEST, this.span);
                completion.mark_cancelled();
            }
        }
    }
}

/// Status recorded for a request whose handler was cancelled before it responded; nginx's
/// "client closed request" code, which no real response uses.
const CLIENT_CLOSED_REQUEST: u16 = 499;

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.inner.as_pin_mut() {
            Some(inner) => {
                let _entered = this.span.enter();
                std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))).map_err(Some)
            }
            // `call_inner` already reported the panic.
            None => Err(None),
        };
        let result = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => {
                if let Some(payload) = payload {
                    let traced = shared_traces(this.state.as_deref());
                    report_panic(this.span, payload.as_ref(), traced, "handler panicked");
                }
                let completion = this
                    .state
                    .take()
                    .map(|state| complete(state, 500, this.span));
                return Poll::Ready(Ok(internal_error(completion)));
            }
        };

        let Some(state) = this.state.take() else {
            return Poll::Ready(
                result.map(|response| response.map(|body| ResponseBody::new(body, None, None))),
            );
        };
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let template = match state.route {
                    Some(_) => None,
                    None => response.extensions().get::<RouteTemplate>().cloned(),
                };
                if let Some(template) = &template {
                    this.span.record("http.route", template.as_str());
                }
                let mut completion = complete(state, status, this.span);
                completion.template = template;
                if let Some(request_id) = completion.request_id.take() {
                    response
                        .headers_mut()
                        .insert(REQUEST_ID_HEADER_NAME, request_id.into_header_value());
                }
                // hyper writes the length of an exact size hint on HTTP/1, else the header's.
                // Most bodies have an exact hint, which spares the header lookup.
                let declared_length = response
                    .body()
                    .size_hint()
                    .exact()
                    .or_else(|| content_length(response.headers()));
                Poll::Ready(Ok(response.map(|body| {
                    ResponseBody::new(body, Some(completion), declared_length)
                })))
            }
            Err(error) => {
                // The inner service failed without a response, so the server sends 500.
                drop(complete(state, 500, this.span));
                Poll::Ready(Err(error))
            }
        }
    }
}

fn shared_traces(state: Option<&Completion>) -> bool {
    state.is_some_and(|state| state.shared.trace)
}

/// Returns the first `Content-Length` value of a response when it parses as a number of bytes.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Moves the request span out of the finished future, which no longer needs it, so the completion
/// owns it without a clone.
fn take_span(span: &mut tracing::Span) -> tracing::Span {
    std::mem::replace(span, tracing::Span::none())
}

fn internal_error<B>(mut completion: Option<Box<Completion>>) -> Response<ResponseBody<B>> {
    let request_id = completion
        .as_mut()
        .and_then(|completion| completion.request_id.take());
    let mut response = Response::new(ResponseBody::empty(completion));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    if let Some(request_id) = request_id {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER_NAME, request_id.into_header_value());
    }
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "non-string panic payload"
    }
}
