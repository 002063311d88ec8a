//! Tower layers: a [`Policy`] around a client service, and load shedding for a server.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service, ServiceExt as _};

use super::bulkhead::Bulkhead;
use super::timeout::Timeout;
use super::{Error, Policy};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type ResponseCheck<R, E> = dyn Fn(&R) -> Option<E> + Send + Sync;

/// Runs each request of a client service through a [`Policy`].
///
/// Every attempt calls a clone of the inner service with a clone of the request, so both must
/// be `Clone`. `http::Request<B>` is `Clone` when its body is, such as
/// `http_body_util::Full<Bytes>`, but the requests of tonic (`http::Request<tonic::body::Body>`)
/// and reqwest (`reqwest::Request`) are not. Put a [`BufferBodyLayer`](super::BufferBodyLayer)
/// outside this layer and convert the buffered body back inside it:
///
/// ```text
/// BufferBodyLayer -> PolicyLayer -> map_request(Full<Bytes> -> client body) -> client
/// ```
///
/// `docs/resilience.md` shows the stack for a tonic `Channel` and for a `reqwest::Client`.
///
/// A response is a success unless [`error_for_response`](Self::error_for_response) turns it
/// into an error, as an HTTP client does for `503` so that the breaker counts it and the retry
/// repeats it.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use obskit::resilience::{Policy, PolicyLayer};
/// use tower::{ServiceBuilder, ServiceExt as _, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policy: Policy<Infallible> = Policy::builder("echo").build();
/// let service = ServiceBuilder::new()
///     .layer(PolicyLayer::new(policy))
///     .service(service_fn(|name: &'static str| async move { Ok::<_, Infallible>(name.len()) }));
/// assert_eq!(service.oneshot("orders").await?, 6);
/// # Ok(())
/// # }
/// ```
pub struct PolicyLayer<E, R = ()> {
    policy: Policy<E>,
    check: Option<Arc<ResponseCheck<R, E>>>,
}

impl<E> PolicyLayer<E> {
    /// Wraps services in `policy`.
    pub fn new<R>(policy: Policy<E>) -> PolicyLayer<E, R> {
        PolicyLayer {
            policy,
            check: None,
        }
    }
}

impl<E, R> PolicyLayer<E, R> {
    /// Turns a response into an error when `check` returns one, for example a `5xx` status.
    pub fn error_for_response(
        mut self,
        check: impl Fn(&R) -> Option<E> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Arc::new(check));
        self
    }
}

impl<E, R> Clone for PolicyLayer<E, R> {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            check: self.check.clone(),
        }
    }
}

impl<E, R> fmt::Debug for PolicyLayer<E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyLayer")
            .field("policy", &self.policy)
            .field("error_for_response", &self.check.is_some())
            .finish()
    }
}

impl<S, E, R> Layer<S> for PolicyLayer<E, R> {
    type Service = PolicyService<S, E, R>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`PolicyLayer`].
pub struct PolicyService<S, E, R = ()> {
    inner: S,
    layer: PolicyLayer<E, R>,
}

impl<S: Clone, E, R> Clone for PolicyService<S, E, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S, E, R> fmt::Debug for PolicyService<S, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, Req> Service<Req> for PolicyService<S, S::Error, S::Response>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    S::Response: Send + 'static,
    Req: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = BoxFuture<Result<S::Response, Error<S::Error>>>;

    /// Always ready: each attempt waits for a clone of the inner service to be ready.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let inner = self.inner.clone();
        let layer = self.layer.clone();
        Box::pin(async move {
            layer
                .policy
                .call(|| {
                    let service = inner.clone();
                    let request = request.clone();
                    let check = layer.check.clone();
                    async move {
                        let response = service.oneshot(request).await?;
                        match check.as_deref().and_then(|check| check(&response)) {
                            Some(error) => Err(error),
                            None => Ok(response),
                        }
                    }
                })
                .await
        })
    }
}

/// Load shedding for an HTTP server: a bulkhead caps the requests in progress and a timeout
/// caps their time.
///
/// A request the bulkhead rejects gets `503 Service Unavailable` with `Retry-After: 1`; one
/// that runs out of time is cancelled and gets `504 Gateway Timeout`. Both come with an
/// `application/problem+json` body and are counted by the bulkhead and the timeout. For a
/// per-client request rate, add a
/// [`RateLimitLayer`](super::rate_limit::RateLimitLayer) outside this layer.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use obskit::resilience::LoadShedLayer;
/// use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
/// use obskit::resilience::timeout::Timeout;
///
/// let shed = LoadShedLayer::new()
///     .bulkhead(Bulkhead::new("api", BulkheadConfig { max_concurrent: 256, ..BulkheadConfig::default() })?)
///     .timeout(Timeout::new("api", Duration::from_secs(10))?);
/// let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(shed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct LoadShedLayer {
    bulkhead: Option<Bulkhead>,
    timeout: Option<Timeout>,
}

impl LoadShedLayer {
    /// A layer that sheds nothing until given a bulkhead or a timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses requests beyond the bulkhead's concurrency, after its wait.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// Cancels requests that take longer than the timeout, bulkhead wait included.
    pub fn timeout(mut self, timeout: Timeout) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShedService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`LoadShedLayer`].
#[derive(Debug, Clone)]
pub struct LoadShedService<S> {
    inner: S,
    layer: LoadShedLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LoadShedService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let call = async move {
                match inner.oneshot(request).await {
                    Ok(response) => Ok(response.map(Body::new)),
                    Err(error) => Err(Error::Inner(error)),
                }
            };
            let shed = async {
                match &layer.bulkhead {
                    Some(bulkhead) => bulkhead.call_with_rejections(call).await,
                    None => call.await,
                }
            };
            let result = match &layer.timeout {
                Some(timeout) => timeout.call_with_rejections(shed).await,
                None => shed.await,
            };
            match result {
                Ok(response) => Ok(response),
                Err(Error::Inner(error)) => Err(error),
                Err(rejection) => Ok(shed_response(&rejection)),
            }
        })
    }
}

fn shed_response<E>(rejection: &Error<E>) -> Response<Body> {
    let (status, title, detail, retry_after) = match rejection {
        Error::BulkheadFull { max_concurrent, .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            format!(
                "the server already handles its maximum of {max_concurrent} concurrent requests; retry later"
            ),
            true,
        ),
        Error::Timeout { timeout, .. } => (
            StatusCode::GATEWAY_TIMEOUT,
            "Gateway Timeout",
            format!("the request did not finish within {timeout:?}"),
            false,
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "the request was shed".to_owned(),
            true,
        ),
    };
    let body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
