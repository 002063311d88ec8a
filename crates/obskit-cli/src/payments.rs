//! The demo's payments dependency: a server on its own loopback port whose failure rate and
//! latency are set at start and changed at run time, so a circuit breaker can be watched as
//! it opens and recovers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use obskit::metrics::Registry;
use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
use obskit::resilience::retry::{Jitter, Retry, RetryBudget, RetryPolicy};
use obskit::resilience::timeout::Timeout;
use obskit::resilience::{CircuitBreaker, Error, Policy};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

/// Largest latency the payments server accepts, so a typo cannot hang every order.
pub(crate) const MAX_LATENCY_MS: u64 = 60_000;

/// How the payments server behaves; shared between the server and the admin route that
/// changes it.
#[derive(Debug, Default)]
pub(crate) struct Behaviour {
    failure_rate_bits: AtomicU64,
    latency_ms: AtomicU64,
}

/// The behaviour as `GET /payments/settings` shows it and `PUT /payments/settings` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Share of payments that fail with 503, from 0.0 to 1.0.
    pub(crate) failure_rate: f64,
    /// Time the server takes for each payment, in milliseconds.
    pub(crate) latency_ms: u64,
}

impl Settings {
    /// Checks both values, naming the bad one and the accepted range.
    pub(crate) fn validate(self) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(format!(
                "failure_rate {} is out of range; use a number from 0.0 to 1.0",
                self.failure_rate
            ));
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(format!(
                "latency_ms {} is too large; use at most {MAX_LATENCY_MS}",
                self.latency_ms
            ));
        }
        Ok(self)
    }
}

impl Behaviour {
    /// Returns a behaviour with the given settings, which must be valid.
    pub(crate) fn new(settings: Settings) -> Arc<Self> {
        let behaviour = Arc::new(Self::default());
        behaviour.set(settings);
        behaviour
    }

    /// Returns the current settings.
    pub(crate) fn get(&self) -> Settings {
        Settings {
            failure_rate: f64::from_bits(self.failure_rate_bits.load(Ordering::Relaxed)),
            latency_ms: self.latency_ms.load(Ordering::Relaxed),
        }
    }

    /// Replaces the settings; call [`Settings::validate`] first.
    pub(crate) fn set(&self, settings: Settings) {
        self.failure_rate_bits
            .store(settings.failure_rate.to_bits(), Ordering::Relaxed);
        self.latency_ms
            .store(settings.latency_ms, Ordering::Relaxed);
    }
}

/// A payment as the server confirms it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Payment {
    pub(crate) payment_id: u64,
}

#[derive(Clone)]
struct ServerState {
    behaviour: Arc<Behaviour>,
    next_id: Arc<AtomicU64>,
}

/// Starts the payments server on an ephemeral loopback port and returns its address.
///
/// `POST /payments` waits the configured latency, then fails with 503 at the configured rate
/// and otherwise confirms the payment. It runs inside `layer`, so each payment is a server
/// span that continues the caller's trace.
pub(crate) async fn start(
    layer: obskit::http::HttpLayer,
    behaviour: Arc<Behaviour>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let state = ServerState {
        behaviour,
        next_id: Arc::new(AtomicU64::new(1)),
    };
    let app = Router::new()
        .route("/payments", post(pay))
        .route_layer(layer)
        .with_state(state);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "payments server stopped");
        }
    });
    Ok(address)
}

async fn pay(State(state): State<ServerState>) -> Response {
    let settings = state.behaviour.get();
    if settings.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(settings.latency_ms)).await;
    }
    if fastrand::f64() < settings.failure_rate {
        return (StatusCode::SERVICE_UNAVAILABLE, "payments are failing").into_response();
    }
    let payment_id = state.next_id.fetch_add(1, Ordering::Relaxed);
    axum::Json(Payment { payment_id }).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_rejected() {
        let error = Settings {
            failure_rate: 1.5,
            latency_ms: 0,
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            error,
            "failure_rate 1.5 is out of range; use a number from 0.0 to 1.0"
        );
        let error = Settings {
            failure_rate: f64::NAN,
            latency_ms: 0,
        }
        .validate()
        .unwrap_err();
        assert!(error.starts_with("failure_rate NaN"), "{error}");
        let error = Settings {
            failure_rate: 0.0,
            latency_ms: MAX_LATENCY_MS + 1,
        }
        .validate()
        .unwrap_err();
        assert_eq!(error, "latency_ms 60001 is too large; use at most 60000");
    }

    #[test]
    fn behaviour_round_trips_settings() {
        let settings = Settings {
            failure_rate: 0.3,
            latency_ms: 20,
        };
        let behaviour = Behaviour::new(settings);
        assert_eq!(behaviour.get(), settings);
        let changed = Settings {
            failure_rate: 1.0,
            latency_ms: 0,
        };
        behaviour.set(changed);
        assert_eq!(behaviour.get(), changed);
    }
}

/// Maximum size of a payment response body; a larger one fails the payment.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Failure of one payment attempt.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PaymentError {
    /// Connecting or sending failed.
    #[error("payment request to {url} failed: {source}")]
    Request {
        url: String,
        source: hyper_util::client::legacy::Error,
    },
    /// The server responded with a status other than 200.
    #[error("payments server responded {status} to {url}")]
    Status { url: String, status: StatusCode },
    /// Reading the body failed, it exceeded the size limit or was not payment JSON.
    #[error("payment response from {url} is unusable: {reason}")]
    Body { url: String, reason: String },
}

impl PaymentError {
    /// Returns whether another attempt may succeed: connection failures and 5xx responses.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Request { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            Self::Body { .. } => false,
        }
    }
}

/// Time limit of one payment attempt, bulkhead wait included.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// Payments in progress at once; more wait up to [`BULKHEAD_WAIT`] for a slot.
const MAX_CONCURRENT_PAYMENTS: usize = 64;

/// Maximum wait for a free payment slot.
const BULKHEAD_WAIT: Duration = Duration::from_millis(50);

/// The payments client inside its resilience policy: retry with a budget, the `payments`
/// circuit breaker, a per-attempt timeout and a bulkhead.
#[derive(Clone)]
pub(crate) struct Payments {
    client: PaymentsClient,
    policy: Policy<PaymentError>,
}

impl Payments {
    /// Protects the client of the payments server at `address` with `breaker`, counting into
    /// `registry`.
    pub(crate) fn new(
        address: SocketAddr,
        breaker: CircuitBreaker,
        registry: &Registry,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let retry = Retry::with_registry(
            "payments",
            RetryPolicy::new()
                .max_attempts(3)
                .base_delay(Duration::from_millis(50))
                .max_delay(Duration::from_millis(500))
                .jitter(Jitter::Full)
                .max_elapsed(Duration::from_secs(2))
                .retry_if(PaymentError::is_transient),
            registry,
        )?
        .with_budget(RetryBudget::default());
        let policy = Policy::builder("payments")
            .retry(retry)
            .circuit_breaker(breaker)
            .timeout(Timeout::with_registry(
                "payments",
                ATTEMPT_TIMEOUT,
                registry,
            )?)
            .bulkhead(Bulkhead::with_registry(
                "payments",
                BulkheadConfig {
                    max_concurrent: MAX_CONCURRENT_PAYMENTS,
                    max_wait: BULKHEAD_WAIT,
                },
                registry,
            )?)
            .build();
        Ok(Self {
            client: PaymentsClient::new(address),
            policy,
        })
    }

    /// Pays for one order through the policy.
    pub(crate) async fn pay(&self) -> Result<Payment, Error<PaymentError>> {
        self.policy.call(|| self.client.pay()).await
    }
}

/// HTTP client of the payments server, without protection of its own.
#[derive(Clone)]
pub(crate) struct PaymentsClient {
    url: String,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl PaymentsClient {
    /// Creates a client of the payments server at `address`.
    pub(crate) fn new(address: SocketAddr) -> Self {
        Self {
            url: format!("http://{address}/payments"),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// Sends one payment inside a client span, carrying that span's `traceparent` and the
    /// trace's `tracestate`. Each attempt of the retry policy gets its own span.
    pub(crate) async fn pay(&self) -> Result<Payment, PaymentError> {
        let span = tracing::info_span!(
            "payment",
            otel.kind = "client",
            otel.name = "POST /payments",
            otel.status_code = tracing::field::Empty,
            http.request.method = "POST",
            url.full = %self.url,
            http.response.status_code = tracing::field::Empty,
        );
        let result = self.send().instrument(span.clone()).await;
        match &result {
            Ok(_) => span.record("http.response.status_code", 200),
            Err(PaymentError::Status { status, .. }) => span
                .record("http.response.status_code", status.as_u16())
                .record("otel.status_code", "error"),
            Err(_) => span.record("otel.status_code", "error"),
        };
        result
    }

    async fn send(&self) -> Result<Payment, PaymentError> {
        let mut request = axum::http::Request::new(Empty::new());
        *request.method_mut() = axum::http::Method::POST;
        *request.uri_mut() =
            axum::http::Uri::from_maybe_shared(self.url.clone()).map_err(|error| {
                PaymentError::Body {
                    url: self.url.clone(),
                    reason: error.to_string(),
                }
            })?;
        if let Some(parent) = obskit::trace::current_traceparent() {
            let state = obskit::trace::current_tracestate().unwrap_or_default();
            obskit::trace::inject(
                &parent,
                &state,
                &obskit::trace::Baggage::default(),
                request.headers_mut(),
            );
        }
        let response =
            self.client
                .request(request)
                .await
                .map_err(|source| PaymentError::Request {
                    url: self.url.clone(),
                    source,
                })?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(PaymentError::Status {
                url: self.url.clone(),
                status,
            });
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| PaymentError::Body {
                url: self.url.clone(),
                reason: error.to_string(),
            })?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|error| PaymentError::Body {
            url: self.url.clone(),
            reason: error.to_string(),
        })
    }
}
