//! Request ids: accepted from `X-Request-ID` when well formed, generated otherwise.

use std::fmt;

use http::{HeaderName, HeaderValue};

/// Name of the request id header, read from requests and set on responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// [`REQUEST_ID_HEADER`] as a header name, so lookups and inserts skip parsing the name.
pub(crate) const REQUEST_ID_HEADER_NAME: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Maximum length of an accepted incoming request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of one request.
///
/// An incoming `X-Request-ID` is kept when it matches `^[A-Za-z0-9._-]{1,128}$`. Anything else
/// is replaced by a generated id of 32 lowercase hex digits, so a client cannot inject log
/// content or unbounded data through the header.
///
/// Behind [`HttpLayer`](super::HttpLayer) the request's `X-Request-ID` header contains exactly
/// this id: the layer rewrites the header when it generated the id or the client sent several.
/// A handler reads it with the axum extractor:
///
/// ```
/// use axum::{Router, routing::get};
/// use obskit::http::{HttpLayer, RequestId};
///
/// async fn order(id: RequestId) -> String {
///     format!("handled as {id}")
/// }
///
/// # fn demo() -> Result<(), obskit::metrics::MetricsError> {
/// let registry = obskit::metrics::Registry::default();
/// let layer = HttpLayer::new(&registry, &obskit::config::HttpConfig::default())?;
/// let app: Router = Router::new().route("/orders/{id}", get(order)).layer(layer);
/// # Ok(())
/// # }
/// ```
///
/// Any other service reads it with [`RequestId::from_headers`]:
///
/// ```
/// use std::convert::Infallible;
///
/// use http::{Request, Response};
/// use obskit::http::{HttpLayer, RequestId};
/// use tower::ServiceBuilder;
///
/// async fn handle(request: Request<String>) -> Result<Response<String>, Infallible> {
///     let id = RequestId::from_headers(request.headers());
///     let id = id.as_ref().map_or("none", RequestId::as_str);
///     Ok(Response::new(format!("handled as {id}")))
/// }
///
/// # fn demo() -> Result<(), obskit::metrics::MetricsError> {
/// let registry = obskit::metrics::Registry::default();
/// let layer = HttpLayer::new(&registry, &obskit::config::HttpConfig::default())?;
/// let service = ServiceBuilder::new().layer(layer).service_fn(handle);
/// # Ok(())
/// # }
/// ```
///
/// On paths in the layer's `exclude_paths`, and in handlers that the layer does not wrap, the
/// header is whatever the client sent. There the extractor returns a well-formed client id as
/// it is, which no response echoes and no access log carries, and rejects every other request
/// with [`MissingRequestId`]: 500 and a message that names the missing layer. Extract
/// `Option<RequestId>` to get `None` instead of the rejection.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Returns the incoming id when it is well formed, or a newly generated one.
    ///
    /// This is how [`HttpLayer`](super::HttpLayer) picks the id. To read the id that the layer
    /// picked, use [`RequestId::from_headers`] or the extractor.
    pub fn from_header(value: Option<&HeaderValue>) -> Self {
        match value {
            Some(value) if is_valid(value.as_bytes()) => Self(value.clone()),
            _ => Self::generate(),
        }
    }

    /// Returns the id in the `X-Request-ID` header of `headers`, or `None` when the header is
    /// missing or not well formed.
    ///
    /// Behind [`HttpLayer`](super::HttpLayer) this is the request's id. Outside it, the header is
    /// whatever the client sent.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        headers
            .get(REQUEST_ID_HEADER_NAME)
            .filter(|value| is_valid(value.as_bytes()))
            .map(|value| Self(value.clone()))
    }

    /// Generates a random id of 32 lowercase hex digits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        let mut random = fastrand::u128(..);
        for byte in &mut bytes {
            let nibble = (random & 0xf) as u8;
            *byte = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            random >>= 4;
        }
        // All 32 bytes are ASCII hex digits, which are valid header value bytes.
        Self(HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| HeaderValue::from_static("0")))
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        // Only the bytes `A-Z`, `a-z`, `0-9`, `.`, `_` and `-` are stored, so this never falls
        // back. `from_utf8` checks ASCII a word at a time, faster than `HeaderValue::to_str`.
        std::str::from_utf8(self.0.as_bytes()).unwrap_or_default()
    }

    /// Returns the id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Returns the id as an owned header value, without cloning it.
    pub(crate) fn into_header_value(self) -> HeaderValue {
        self.0
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = MissingRequestId;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let id = Self::from_headers(&parts.headers);
        if id.is_none() {
            tracing::warn!(
                target: "obskit::http",
                path = parts.uri.path(),
                error = %MissingRequestId,
                "request id extractor rejected the request"
            );
        }
        id.ok_or(MissingRequestId)
    }
}

/// Extracts `Option<RequestId>`: `None` when the request has no well-formed `X-Request-ID`
/// header, for handlers that also serve requests outside [`HttpLayer`](super::HttpLayer).
/// Outside the layer, a well-formed id that the client sent is `Some`.
impl<S: Sync> axum::extract::OptionalFromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// Rejection of the [`RequestId`] extractor: the request has no well-formed `X-Request-ID`
/// header, because [`HttpLayer`](super::HttpLayer) does not run in front of the handler or
/// excludes its path, and the client sent no usable id.
///
/// Responds with 500, since the fault lies in the service's setup, not in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingRequestId;

impl fmt::Display for MissingRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "missing or invalid X-Request-ID header: add obskit::http::HttpLayer in front of \
             this handler and keep its path out of the layer's exclude_paths, so every request \
             gets an id",
        )
    }
}

impl std::error::Error for MissingRequestId {}

impl axum::response::IntoResponse for MissingRequestId {
    fn into_response(self) -> axum::response::Response {
        (http::StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Bytes allowed in an incoming request id: `A-Z`, `a-z`, `0-9`, `.`, `_` and `-`.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where an index out of bounds fails the build"
)]
static ALLOWED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let value = byte as u8;
        table[byte] = value.is_ascii_alphanumeric() || matches!(value, b'.' | b'_' | b'-');
        byte += 1;
    }
    table
};

fn is_valid(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .iter()
            .all(|&byte| ALLOWED.get(usize::from(byte)).copied().unwrap_or(false))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn valid_incoming_ids_are_kept() {
        for id in ["abc", "A.b_c-9", &"x".repeat(128)] {
            let header = HeaderValue::from_str(id).unwrap();
            assert_eq!(RequestId::from_header(Some(&header)).as_str(), id);
        }
    }

    #[test]
    fn invalid_incoming_ids_are_replaced() {
        for id in [
            "",
            "has space",
            "semi;colon",
            "new\tline",
            "ü",
            &"x".repeat(129),
        ] {
            let header = HeaderValue::from_bytes(id.as_bytes()).unwrap();
            let request_id = RequestId::from_header(Some(&header));
            assert_ne!(request_id.as_str(), id);
            assert_eq!(request_id.as_str().len(), 32);
        }
    }

    #[test]
    fn from_headers_first_value_only() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(RequestId::from_headers(&headers), None);
        headers.append(REQUEST_ID_HEADER_NAME, HeaderValue::from_static("first-1"));
        headers.append(REQUEST_ID_HEADER_NAME, HeaderValue::from_static("second-2"));
        assert_eq!(
            RequestId::from_headers(&headers).map(|id| id.to_string()),
            Some("first-1".to_owned())
        );
        headers.insert(
            REQUEST_ID_HEADER_NAME,
            HeaderValue::from_static("has space"),
        );
        assert_eq!(RequestId::from_headers(&headers), None);
    }

    #[test]
    fn generated_ids_are_hex_and_distinct() {
        let first = RequestId::generate();
        let second = RequestId::generate();
        assert_ne!(first, second);
        assert!(
            first
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(first.as_str().len(), 32);
    }
}
