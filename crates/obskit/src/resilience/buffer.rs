//! A tower layer that buffers a request body so that a [`PolicyLayer`](super::PolicyLayer)
//! can send the request again.
//!
//! `PolicyLayer` clones the request for each attempt, and the request types of HTTP clients
//! (`http::Request<tonic::body::Body>`, `reqwest::Request`) are not `Clone` because their
//! bodies are streams. [`BufferBodyLayer`] reads the whole body, up to a byte limit, into
//! [`Full<Bytes>`], which is `Clone`, and passes the request on with that body.
//!
//! # Metrics
//!
//! | Metric | Labels | Meaning |
//! |---|---|---|
//! | `obskit_buffer_body_rejections_total` | `name`, `reason` | Requests not sent because their body was over the limit (`too_large`), failed to read (`body_error`) or had trailers (`trailers`) |

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use tower::{Layer, Service};

use crate::metrics::{Counter, MetricsError, Registry};

/// Name of the rejections counter family, without the `_total` suffix.
pub const BUFFER_BODY_REJECTIONS_METRIC: &str = "obskit_buffer_body_rejections";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Invalid [`BufferBodyLayer`] settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BufferBodyConfigError {
    /// The layer's name is empty.
    #[error(
        "buffer body layer name is empty; name it after the client it wraps, like \"payments\""
    )]
    EmptyName,
    /// Registering the rejections metric failed.
    #[error("registering the buffer body metric failed: {0}")]
    Metrics(#[from] MetricsError),
}

/// The reason a [`BufferBodyLayer`] did not pass a request on.
///
/// The layer's service returns it as a [`BoxError`]. Downcast the error to match on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BufferBodyError {
    /// The body was larger than the layer's limit.
    #[error(
        "request body through {name:?} is larger than the limit of {max_bytes} bytes; raise the limit of the BufferBodyLayer or send a smaller body"
    )]
    TooLarge {
        /// The layer's name.
        name: Arc<str>,
        /// The layer's limit in bytes.
        max_bytes: usize,
    },
    /// Reading the body failed.
    #[error("reading the request body through {name:?} failed: {source}")]
    Body {
        /// The layer's name.
        name: Arc<str>,
        /// The error that the body returned.
        #[source]
        source: BoxError,
    },
    /// The body ended with trailers, which a [`Full`] body cannot send.
    #[error(
        "request body through {name:?} has trailers, which a buffered body cannot send; send them as headers instead"
    )]
    Trailers {
        /// The layer's name.
        name: Arc<str>,
    },
}

/// Buffers each request body, up to `max_bytes`, into [`Full<Bytes>`] so that the services
/// inside can clone the request.
///
/// Put it outside a [`PolicyLayer`](super::PolicyLayer) and convert the buffered body back to
/// the client's body type inside the policy:
///
/// ```text
/// BufferBodyLayer -> PolicyLayer -> map_request(Full<Bytes> -> client body) -> client
/// ```
///
/// A body over the limit, a body that fails to read and a body with trailers are counted and
/// returned as a [`BufferBodyError`], and the inner service is not called. The service's error
/// type is [`BoxError`], which a generated tonic client accepts but reports as `UNKNOWN`
/// unless it finds a `tonic::Status` in the error's source chain. `docs/resilience.md` shows a
/// `map_err` that returns the call's status.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use obskit::metrics::Registry;
/// use obskit::resilience::BufferBodyLayer;
/// use tower::{ServiceBuilder, ServiceExt as _, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let registry = Registry::default();
/// let service = ServiceBuilder::new()
///     .layer(BufferBodyLayer::with_registry("echo", 1024, &registry)?)
///     .service(service_fn(|request: http::Request<Full<Bytes>>| async move {
///         Ok::<_, std::convert::Infallible>(request.into_body())
///     }));
///
/// let body = http_body_util::StreamBody::new(futures_util::stream::iter([
///     Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from("hello "))),
///     Ok(http_body::Frame::data(Bytes::from("world"))),
/// ]));
/// let echoed = service.oneshot(http::Request::new(body)).await?;
/// assert_eq!(echoed.into_inner(), Some(Bytes::from("hello world")));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct BufferBodyLayer {
    name: Arc<str>,
    max_bytes: usize,
    too_large: Counter,
    body_error: Counter,
    trailers: Counter,
}

impl BufferBodyLayer {
    /// Creates a layer named `name` that buffers bodies of up to `max_bytes` bytes and counts
    /// its rejections into [`Registry::global`].
    ///
    /// # Errors
    ///
    /// [`BufferBodyConfigError`] naming the invalid setting, or
    /// [`BufferBodyConfigError::Metrics`] if the metric family is registered differently.
    pub fn new(name: &str, max_bytes: usize) -> Result<Self, BufferBodyConfigError> {
        Self::with_registry(name, max_bytes, Registry::global())
    }

    /// Creates a layer named `name` that buffers bodies of up to `max_bytes` bytes and counts
    /// its rejections into `registry`.
    ///
    /// # Errors
    ///
    /// As [`BufferBodyLayer::new`].
    pub fn with_registry(
        name: &str,
        max_bytes: usize,
        registry: &Registry,
    ) -> Result<Self, BufferBodyConfigError> {
        if name.is_empty() {
            return Err(BufferBodyConfigError::EmptyName);
        }
        let rejections = registry.get_or_register_counter_family(
            BUFFER_BODY_REJECTIONS_METRIC,
            "Requests not sent because their body could not be buffered, by reason.",
            ["name", "reason"],
        )?;
        Ok(Self {
            name: name.into(),
            max_bytes,
            too_large: rejections.get(&[name, "too_large"]),
            body_error: rejections.get(&[name, "body_error"]),
            trailers: rejections.get(&[name, "trailers"]),
        })
    }

    /// Returns the layer's name, the value of its `name` label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the largest body, in bytes, that the layer buffers.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    async fn buffer<B>(&self, body: B) -> Result<Bytes, BufferBodyError>
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let collected = match Limited::new(body, self.max_bytes).collect().await {
            Ok(collected) => collected,
            Err(error) if error.is::<LengthLimitError>() => {
                self.too_large.inc();
                return Err(BufferBodyError::TooLarge {
                    name: Arc::clone(&self.name),
                    max_bytes: self.max_bytes,
                });
            }
            Err(error) => {
                self.body_error.inc();
                return Err(BufferBodyError::Body {
                    name: Arc::clone(&self.name),
                    source: error,
                });
            }
        };
        if collected.trailers().is_some() {
            self.trailers.inc();
            return Err(BufferBodyError::Trailers {
                name: Arc::clone(&self.name),
            });
        }
        Ok(collected.to_bytes())
    }
}

impl fmt::Debug for BufferBodyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferBodyLayer")
            .field("name", &self.name)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for BufferBodyLayer {
    type Service = BufferBodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BufferBodyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`BufferBodyLayer`].
#[derive(Debug, Clone)]
pub struct BufferBodyService<S> {
    inner: S,
    layer: BufferBodyLayer,
}

impl<S, B> Service<Request<B>> for BufferBodyService<S>
where
    S: Service<Request<Full<Bytes>>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = layer.buffer(body).await?;
            let request = Request::from_parts(parts, Full::new(bytes));
            inner.call(request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;
    use tower::ServiceExt as _;

    async fn echo(request: Request<Full<Bytes>>) -> Result<Bytes, BoxError> {
        Ok(request.into_body().into_inner().unwrap_or_default())
    }

    fn rejections(registry: &Registry, reason: &str) -> u64 {
        registry
            .get_or_register_counter_family(
                BUFFER_BODY_REJECTIONS_METRIC,
                "Requests not sent because their body could not be buffered, by reason.",
                ["name", "reason"],
            )
            .unwrap()
            .get(&["upload", reason])
            .get()
    }

    #[tokio::test]
    async fn body_at_limit_passes() {
        let registry = Registry::default();
        let layer = BufferBodyLayer::with_registry("upload", 5, &registry).unwrap();
        let service = layer.layer(tower::service_fn(echo));

        let body = service
            .oneshot(Request::new(Full::new(Bytes::from("12345"))))
            .await
            .unwrap();

        assert_eq!(body, Bytes::from("12345"));
        assert_eq!(rejections(&registry, "too_large"), 0);
    }

    #[tokio::test]
    async fn body_over_limit_rejected_and_counted() {
        let registry = Registry::default();
        let layer = BufferBodyLayer::with_registry("upload", 4, &registry).unwrap();
        let service = layer.layer(tower::service_fn(echo));

        let error = service
            .oneshot(Request::new(Full::new(Bytes::from("12345"))))
            .await
            .unwrap_err();

        assert!(matches!(
            error.downcast_ref::<BufferBodyError>(),
            Some(BufferBodyError::TooLarge { max_bytes: 4, .. })
        ));
        assert_eq!(
            error.to_string(),
            "request body through \"upload\" is larger than the limit of 4 bytes; raise the limit of the BufferBodyLayer or send a smaller body"
        );
        assert_eq!(rejections(&registry, "too_large"), 1);
    }

    #[tokio::test]
    async fn body_error_rejected_and_counted() {
        let registry = Registry::default();
        let layer = BufferBodyLayer::with_registry("upload", 64, &registry).unwrap();
        let service = layer.layer(tower::service_fn(echo));
        let body = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok(http_body::Frame::data(Bytes::from("partial"))),
            Err(std::io::Error::other("connection reset")),
        ]));

        let error = service.oneshot(Request::new(body)).await.unwrap_err();

        assert!(matches!(
            error.downcast_ref::<BufferBodyError>(),
            Some(BufferBodyError::Body { .. })
        ));
        assert_eq!(
            error.to_string(),
            "reading the request body through \"upload\" failed: connection reset"
        );
        assert_eq!(rejections(&registry, "body_error"), 1);
    }

    #[tokio::test]
    async fn trailers_rejected_and_counted() {
        let registry = Registry::default();
        let layer = BufferBodyLayer::with_registry("upload", 64, &registry).unwrap();
        let service = layer.layer(tower::service_fn(echo));
        let body = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from("data"))),
            Ok(http_body::Frame::trailers(http::HeaderMap::new())),
        ]));

        let error = service.oneshot(Request::new(body)).await.unwrap_err();

        assert!(matches!(
            error.downcast_ref::<BufferBodyError>(),
            Some(BufferBodyError::Trailers { .. })
        ));
        assert_eq!(rejections(&registry, "trailers"), 1);
    }

    #[test]
    fn empty_name_rejected() {
        let error = BufferBodyLayer::with_registry("", 4, &Registry::default()).unwrap_err();
        assert!(matches!(error, BufferBodyConfigError::EmptyName));
    }
}
