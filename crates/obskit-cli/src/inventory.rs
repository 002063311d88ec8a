//! The demo's inventory dependency: a stock service on its own loopback port and the HTTP client
//! that `GET /orders/{id}` calls it with, carrying the request's trace context.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use obskit::trace::Baggage;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

/// Maximum time of one stock lookup, connection and response body included.
pub(crate) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Maximum size of a stock response body; a larger one fails the lookup.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Units in stock per item. Items not listed have none.
const STOCK: &[(&str, u64)] = &[("book", 12), ("pen", 40), ("lamp", 3)];

/// Stock of one item, as the inventory service returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stock {
    pub(crate) item: String,
    pub(crate) in_stock: u64,
}

/// Failure of a stock lookup; `GET /orders/{id}` responds 502 with it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    /// The URL built from the item was invalid.
    #[error("invalid inventory URL {url}: {source}")]
    InvalidUrl {
        url: String,
        source: axum::http::uri::InvalidUri,
    },
    /// Connecting or sending failed.
    #[error("inventory request to {url} failed: {source}")]
    Request {
        url: String,
        source: hyper_util::client::legacy::Error,
    },
    /// The service did not respond within [`LOOKUP_TIMEOUT`].
    #[error("inventory request to {url} timed out after {timeout:?}")]
    TimedOut { url: String, timeout: Duration },
    /// The service responded with a status other than 200.
    #[error("inventory service responded {status} to {url}")]
    Status { url: String, status: StatusCode },
    /// Reading the body failed or it exceeded `MAX_RESPONSE_BYTES`.
    #[error("reading the inventory response from {url} failed: {reason}")]
    Body { url: String, reason: String },
    /// The body was not the expected JSON.
    #[error("inventory response from {url} is not valid stock JSON: {source}")]
    Json {
        url: String,
        source: serde_json::Error,
    },
}

/// Starts the inventory service on an ephemeral loopback port and returns its address.
///
/// `GET /inventory/{item}` runs inside `layer`, so each lookup is a server span that continues
/// the caller's trace. `GET /healthz` for the readiness check stays outside it, so probes add
/// no spans or request metrics.
pub(crate) async fn start(layer: obskit::http::HttpLayer) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = Router::new()
        .route("/inventory/{item}", get(stock))
        .route_layer(layer)
        .route("/healthz", get(|| async { "ok" }));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "inventory service stopped");
        }
    });
    Ok(address)
}

async fn stock(Path(item): Path<String>) -> Response {
    let in_stock = STOCK
        .iter()
        .find(|(name, _)| *name == item)
        .map_or(0, |(_, units)| *units);
    axum::Json(Stock { item, in_stock }).into_response()
}

/// HTTP client of the inventory service.
#[derive(Clone)]
pub(crate) struct InventoryClient {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl InventoryClient {
    /// Creates a client of the inventory service at `address`.
    pub(crate) fn new(address: SocketAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(LOOKUP_TIMEOUT));
        Self {
            base: format!("http://{address}"),
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Looks up the stock of `item` inside a client span, sending that span's `traceparent`, the
    /// trace's `tracestate` and `baggage`.
    pub(crate) async fn stock(&self, item: &str, baggage: &Baggage) -> Result<Stock, LookupError> {
        let url = format!("{}/inventory/{}", self.base, percent_encode(item));
        let span = tracing::info_span!(
            "inventory lookup",
            otel.kind = "client",
            otel.name = "GET /inventory/{item}",
            otel.status_code = tracing::field::Empty,
            http.request.method = "GET",
            url.full = %url,
            http.response.status_code = tracing::field::Empty,
        );
        let result = self.lookup(url, baggage).instrument(span.clone()).await;
        match &result {
            Ok(_) => span.record("http.response.status_code", 200),
            Err(LookupError::Status { status, .. }) => span
                .record("http.response.status_code", status.as_u16())
                .record("otel.status_code", "error"),
            Err(_) => span.record("otel.status_code", "error"),
        };
        result
    }

    async fn lookup(&self, url: String, baggage: &Baggage) -> Result<Stock, LookupError> {
        let uri = url
            .parse::<axum::http::Uri>()
            .map_err(|source| LookupError::InvalidUrl {
                url: url.clone(),
                source,
            })?;
        let mut request = axum::http::Request::new(Empty::new());
        *request.uri_mut() = uri;
        // The client span is current here, so the callee's parent is this span. With tracing
        // off there is no span context and no header is written.
        if let Some(parent) = obskit::trace::current_traceparent() {
            let state = obskit::trace::current_tracestate().unwrap_or_default();
            obskit::trace::inject(&parent, &state, baggage, request.headers_mut());
        }

        match tokio::time::timeout(LOOKUP_TIMEOUT, self.send(&url, request)).await {
            Ok(result) => result,
            Err(_) => Err(LookupError::TimedOut {
                url,
                timeout: LOOKUP_TIMEOUT,
            }),
        }
    }

    async fn send(
        &self,
        url: &str,
        request: axum::http::Request<Empty<Bytes>>,
    ) -> Result<Stock, LookupError> {
        let response =
            self.client
                .request(request)
                .await
                .map_err(|source| LookupError::Request {
                    url: url.to_owned(),
                    source,
                })?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(LookupError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| LookupError::Body {
                url: url.to_owned(),
                reason: error.to_string(),
            })?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|source| LookupError::Json {
            url: url.to_owned(),
            source,
        })
    }
}

/// Percent-encodes every byte of `segment` outside the RFC 3986 unreserved set, so any item name
/// is one path segment.
fn percent_encode(segment: &str) -> String {
    use std::fmt::Write as _;

    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn percent_encode_keeps_unreserved() {
        assert_eq!(percent_encode("book-2_a.b~c"), "book-2_a.b~c");
    }

    #[test]
    fn percent_encode_escapes_reserved_and_utf8() {
        assert_eq!(percent_encode("a b/c?"), "a%20b%2Fc%3F");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[tokio::test]
    async fn stock_lookup_round_trips_encoded_item() {
        let registry = obskit::metrics::Registry::default();
        let layer = obskit::http::HttpLayer::new(&registry, &obskit::config::HttpConfig::default())
            .unwrap();
        let address = start(layer).await.unwrap();
        let client = InventoryClient::new(address);

        let book = client.stock("book", &Baggage::default()).await.unwrap();
        assert_eq!(book.item, "book");
        assert_eq!(book.in_stock, 12);
        let odd = client.stock("a b/c", &Baggage::default()).await.unwrap();
        assert_eq!(odd.item, "a b/c");
        assert_eq!(odd.in_stock, 0);
    }

    #[tokio::test]
    async fn stock_lookup_reports_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);

        let error = InventoryClient::new(address)
            .stock("book", &Baggage::default())
            .await
            .unwrap_err();
        assert!(matches!(error, LookupError::Request { .. }), "{error}");
        assert!(error.to_string().contains(&address.to_string()), "{error}");
    }
}
