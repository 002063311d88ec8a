//! The HTTP client of the HTTP/protobuf transport: hyper with rustls, on the export runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError};

/// Largest collector response read; OTLP responses are a few bytes.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Sends OTLP requests over HTTP/1.1, or HTTP/2 when the TLS handshake negotiates it.
///
/// It is built from an explicit rustls configuration, so it needs no process-wide crypto
/// provider and changes no TLS setting of other HTTP clients in the process.
#[derive(Clone)]
pub(crate) struct HyperClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HyperClient {
    /// Builds the client. `tls` must have no ALPN protocols set: the connector sets `h2` and
    /// `http/1.1`.
    pub(crate) fn new(tls: rustls::ClientConfig, timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { client, timeout }
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));

        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?;
            Ok::<_, HttpError>(Response::from_parts(parts, body.to_bytes()))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no response within {:?}", self.timeout).into()),
        }
    }
}

impl HttpClient for HyperClient {
    // The trait is declared with `async_trait`; this is its expansion.
    fn send_bytes<'client, 'future>(
        &'client self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'future>>
    where
        'client: 'future,
        Self: 'future,
    {
        Box::pin(self.send(request))
    }
}
