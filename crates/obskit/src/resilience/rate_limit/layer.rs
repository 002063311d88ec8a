//! Tower middleware that rejects requests over a client's quota with 429 and RateLimit headers.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use http::header::{CONTENT_TYPE, HeaderName, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::snapshot::RateLimiterSnapshot;
use super::{KeyedRateLimiter, RateLimitStatus};
use crate::keyed::ClientKey;
use crate::resilience::Error;

/// `RateLimit-Policy` header field name (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` header field name (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Problem type of the 429 body, registered by draft-ietf-httpapi-ratelimit-headers.
const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";

type CustomKey = dyn Fn(&Parts, &foldhash::fast::RandomState) -> Option<u64> + Send + Sync;

/// Where the layer takes each request's rate limit key from.
///
/// Requests without the key (no header, or the custom extractor returns `None`) fall back to
/// the peer address. The peer address comes from axum's `ConnectInfo<SocketAddr>`, so serve
/// the router with `into_make_service_with_connect_info::<SocketAddr>()`; without it every
/// such request shares one key. IPv6 peers are keyed by /64 prefix.
///
/// Header values and custom keys are stored as a 64-bit hash with a per-process random seed,
/// never as the value itself, and never logged or used as a label.
#[derive(Clone)]
pub enum KeyExtractor {
    /// The peer address.
    PeerAddr,
    /// The value of a header such as `x-api-key`.
    Header(HeaderName),
    /// A key computed from the request head; build it with [`KeyExtractor::custom`].
    Custom(Arc<CustomKey>),
}

impl KeyExtractor {
    /// Keys requests by whatever `extract` returns from the request head, for example a
    /// tenant id from a path segment or a verified token's subject.
    ///
    /// # Example
    ///
    /// ```
    /// use obskit::resilience::rate_limit::KeyExtractor;
    ///
    /// let by_tenant = KeyExtractor::custom(|parts| {
    ///     parts.uri.path().strip_prefix("/tenants/")?.split('/').next().map(str::to_owned)
    /// });
    /// # let _ = by_tenant;
    /// ```
    pub fn custom<T, F>(extract: F) -> Self
    where
        T: Hash,
        F: Fn(&Parts) -> Option<T> + Send + Sync + 'static,
    {
        Self::Custom(Arc::new(move |parts, hasher| {
            extract(parts).map(|key| hasher.hash_one(key))
        }))
    }
}

impl fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerAddr => f.write_str("PeerAddr"),
            Self::Header(name) => f.debug_tuple("Header").field(name).finish(),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// The key a request is limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RequestKey {
    Client(ClientKey),
    Hashed(u64),
}

struct Shared<C: Clock> {
    limiter: KeyedRateLimiter<RequestKey, C>,
    key: KeyExtractor,
    hasher: foldhash::fast::RandomState,
    /// The policy name as a structured-field string, quotes included.
    policy_name: String,
    policy: HeaderValue,
}

/// A tower layer that limits requests per key with a [`KeyedRateLimiter`].
///
/// Admitted requests pass to the inner service, and the response gets `RateLimit-Policy` and
/// `RateLimit` with the quota left. Rejected requests get `429 Too Many Requests` with:
///
/// - `Retry-After`: seconds until the next request fits, rounded up, at least 1;
/// - `RateLimit-Policy: "NAME";q=COUNT;w=SECONDS`: the quota per window;
/// - `RateLimit: "NAME";r=0;t=SECONDS`, where `t` equals `Retry-After`;
/// - an `application/problem+json` body of type `quota-exceeded`.
///
/// On admitted responses `RateLimit` is `"NAME";r=REMAINING;t=SECONDS`, where `t` is the
/// time until one more request's worth of quota comes back, rounded up.
///
/// The header syntax follows draft-ietf-httpapi-ratelimit-headers (revision 10, September
/// 2025): a List of Items whose value is the policy name as a String, with Integer parameters.
/// No partition key (`pk`) is sent, so client identities stay on the server.
///
/// # Example
///
/// ```
/// use std::net::SocketAddr;
/// use axum::{Router, routing::get};
/// use http::HeaderName;
/// use obskit::metrics::Registry;
/// use obskit::resilience::rate_limit::{KeyExtractor, Quota, RateLimiter};
///
/// let layer = RateLimiter::builder("api", Quota::per_minute(100)?)
///     .registry(&Registry::default())
///     .layer(KeyExtractor::Header(HeaderName::from_static("x-api-key")))?;
/// let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(layer);
/// let _service = app.into_make_service_with_connect_info::<SocketAddr>();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RateLimitLayer<C: Clock = DefaultClock> {
    shared: Arc<Shared<C>>,
}

impl<C: Clock> Clone for RateLimitLayer<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: Clock> fmt::Debug for RateLimitLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.shared.limiter)
            .field("key", &self.shared.key)
            .finish()
    }
}

impl<C: Clock + Clone> RateLimitLayer<C> {
    pub(crate) fn new(limiter: KeyedRateLimiter<RequestKey, C>, key: KeyExtractor) -> Self {
        let policy_name = sf_string(limiter.name());
        let (window, quota) = limiter.quota().policy_window();
        let policy = format!("{policy_name};q={quota};w={window}");
        // The name was checked to be printable ASCII, so the value is a valid header value.
        let policy = HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(""));
        Self {
            shared: Arc::new(Shared {
                limiter,
                key,
                hasher: foldhash::fast::RandomState::default(),
                policy_name,
                policy,
            }),
        }
    }
}

impl<C: Clock + Clone> RateLimitLayer<C> {
    /// Returns the limiter's quota, key count and decision counts, for an admin route.
    pub fn snapshot(&self) -> RateLimiterSnapshot {
        self.shared.limiter.snapshot()
    }
}

impl<S, C: Clock> Layer<S> for RateLimitLayer<C> {
    type Service = RateLimitService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`RateLimitLayer`].
pub struct RateLimitService<S, C: Clock = DefaultClock> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S: Clone, C: Clock> Clone for RateLimitService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, C: Clock> fmt::Debug for RateLimitService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("limiter", &self.shared.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimitService<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Clock + Clone,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let key = self.shared.request_key(&parts);
        let limiter = &self.shared.limiter;
        match limiter.check_key(&key) {
            Ok(()) => {
                let status = limiter.status(&key);
                let headers = (
                    self.shared.policy.clone(),
                    self.shared.service_limit(&status),
                );
                let future = self.inner.call(Request::from_parts(parts, body));
                ResponseFuture::admitted(future, headers)
            }
            Err(error) => ResponseFuture::rejected(self.shared.too_many_requests(&error)),
        }
    }
}

impl<C: Clock + Clone> Shared<C> {
    fn request_key(&self, parts: &Parts) -> RequestKey {
        let hashed = match &self.key {
            KeyExtractor::PeerAddr => None,
            KeyExtractor::Header(name) => parts
                .headers
                .get(name)
                .map(|value| self.hasher.hash_one(value.as_bytes())),
            KeyExtractor::Custom(extract) => extract(parts, &self.hasher),
        };
        hashed.map_or_else(|| RequestKey::Client(peer(parts)), RequestKey::Hashed)
    }

    /// Formats `RateLimit: "NAME";r=REMAINING;t=SECONDS`, leaving `t` out when the whole
    /// burst is available.
    fn service_limit(&self, status: &RateLimitStatus) -> HeaderValue {
        let mut value = format!("{};r={}", self.policy_name, status.remaining);
        if let Some(reset) = status.reset {
            value.push_str(";t=");
            value.push_str(itoa::Buffer::new().format(whole_seconds_up(reset)));
        }
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
    }

    fn too_many_requests(&self, error: &Error<std::convert::Infallible>) -> Response<Body> {
        let wait = error.retry_after().unwrap_or(Duration::ZERO);
        let seconds = whole_seconds_up(wait).max(1);
        let detail = format!(
            "rate limit {:?} exceeded; retry after {seconds} s",
            self.limiter.name()
        );
        let body = serde_json::json!({
            "type": QUOTA_EXCEEDED,
            "title": "Quota exceeded",
            "status": 429,
            "detail": detail,
            "violated-policies": [self.limiter.name()],
        });
        let limit = format!("{};r=0;t={seconds}", self.policy_name);
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        headers.insert(RATELIMIT_POLICY, self.policy.clone());
        if let Ok(limit) = HeaderValue::from_str(&limit) {
            headers.insert(RATELIMIT, limit);
        }
        response
    }
}

fn peer(parts: &Parts) -> ClientKey {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(ClientKey::unknown, |info| ClientKey::from_ip(info.0.ip()))
}

/// Whole seconds, rounded up, as `delay-seconds` needs.
fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Formats `name` as a structured-field String (RFC 9651 section 3.3.3): quoted, with `"` and
/// `\` escaped. The name is printable ASCII, which is all a String may hold.
fn sf_string(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for character in name.chars() {
        if character == '"' || character == '\\' {
            quoted.push('\\');
        }
        quoted.push(character);
    }
    quoted.push('"');
    quoted
}

pin_project! {
    /// The response future of [`RateLimitService`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProjection]
    enum Kind<F> {
        Admitted {
            #[pin]
            future: F,
            headers: Option<(HeaderValue, HeaderValue)>,
        },
        Rejected {
            response: Option<Response<Body>>,
        },
    }
}

impl<F> ResponseFuture<F> {
    fn admitted(future: F, headers: (HeaderValue, HeaderValue)) -> Self {
        Self {
            kind: Kind::Admitted {
                future,
                headers: Some(headers),
            },
        }
    }

    fn rejected(response: Response<Body>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProjection::Admitted { future, headers } => {
                let mut response = std::task::ready!(future.poll(cx))?.map(Body::new);
                if let Some((policy, limit)) = headers.take() {
                    let headers = response.headers_mut();
                    headers.insert(RATELIMIT_POLICY, policy);
                    headers.insert(RATELIMIT, limit);
                }
                Poll::Ready(Ok(response))
            }
            // A ready future polled again has nothing left to return.
            KindProjection::Rejected { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds_up(Duration::ZERO), 0);
        assert_eq!(whole_seconds_up(Duration::from_nanos(1)), 1);
        assert_eq!(whole_seconds_up(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds_up(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn sf_string_escapes_quote_and_backslash() {
        assert_eq!(sf_string("api"), "\"api\"");
        assert_eq!(sf_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
