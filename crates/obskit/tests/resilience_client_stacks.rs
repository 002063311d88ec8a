//! `BufferBodyLayer` and `PolicyLayer` around real clients over loopback: a reqwest client
//! against an axum server and a generated tonic client against a tonic server.

#![cfg(all(feature = "http", feature = "otlp", feature = "resilience"))]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail by panicking"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{Full, StreamBody};
use obskit::metrics::{Format, Registry};
use obskit::resilience::retry::{Jitter, Retry, RetryPolicy};
use obskit::resilience::{BufferBodyError, BufferBodyLayer, Error, Policy, PolicyLayer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use parking_lot::Mutex;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

fn sample(registry: &Registry, series: &str) -> f64 {
    let text = registry.encode(Format::PrometheusText).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

fn retry<E>(registry: &Registry, name: &str, policy: RetryPolicy<E>) -> Retry<E> {
    Retry::with_registry(
        name,
        policy
            .max_attempts(3)
            .base_delay(Duration::from_millis(1))
            .jitter(Jitter::None),
        registry,
    )
    .unwrap()
}

/// A body that arrives in several frames, as a streamed upload does.
type ChunkedBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn chunked_body(chunks: &[&'static str]) -> ChunkedBody {
    let frames: Vec<_> = chunks
        .iter()
        .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
        .collect();
    StreamBody::new(futures_util::stream::iter(frames))
}

#[derive(Clone, Default)]
struct Uploads {
    bodies: Arc<Mutex<Vec<Bytes>>>,
    failures_left: Arc<AtomicU32>,
}

async fn upload(State(uploads): State<Uploads>, body: Bytes) -> StatusCode {
    uploads.bodies.lock().push(body);
    let failing = uploads
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn serve_uploads(failures: u32) -> (SocketAddr, Uploads) {
    let uploads = Uploads::default();
    uploads.failures_left.store(failures, Ordering::SeqCst);
    let app = Router::new()
        .route("/upload", post(upload))
        .with_state(uploads.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (address, uploads)
}

/// `BufferBodyLayer -> PolicyLayer -> reqwest::Client`, retrying `5xx` responses.
fn reqwest_stack(
    registry: &Registry,
    max_bytes: usize,
) -> impl tower::Service<http::Request<ChunkedBody>, Response = reqwest::Response, Error = BoxError>
+ Clone {
    let policy: Policy<reqwest::Error> = Policy::builder("upload")
        .retry(retry(registry, "upload", RetryPolicy::new()))
        .build();
    let client = reqwest::Client::new();
    ServiceBuilder::new()
        .layer(BufferBodyLayer::with_registry("upload", max_bytes, registry).unwrap())
        .layer(
            PolicyLayer::new(policy).error_for_response(|response: &reqwest::Response| {
                if response.status().is_server_error() {
                    response.error_for_status_ref().err()
                } else {
                    None
                }
            }),
        )
        // `reqwest::Request::try_from` fails on a URI that is not a valid URL, so the
        // conversion runs in the service and returns that error instead of panicking.
        .service_fn(move |request: http::Request<Full<Bytes>>| {
            let client = client.clone();
            async move {
                let body = request.map(|body| body.into_inner().unwrap_or_default());
                client.execute(reqwest::Request::try_from(body)?).await
            }
        })
}

#[tokio::test]
async fn reqwest_stack_retries_503_with_same_body() {
    let (address, uploads) = serve_uploads(2).await;
    let registry = Registry::default();
    let service = reqwest_stack(&registry, 1024);
    let request = http::Request::post(format!("http://{address}/upload"))
        .body(chunked_body(&["order=", "42&", "amount=", "9.99"]))
        .unwrap();

    let response = service.oneshot(request).await.unwrap();

    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let bodies = uploads.bodies.lock().clone();
    assert_eq!(bodies.len(), 3);
    for body in &bodies {
        assert_eq!(body, &Bytes::from_static(b"order=42&amount=9.99"));
    }
    let retried = r#"obskit_retry_attempts_total{name="upload",outcome="retry"}"#;
    assert_eq!(sample(&registry, retried), 2.0);
}

#[tokio::test]
async fn reqwest_stack_returns_last_503() {
    let (address, uploads) = serve_uploads(u32::MAX).await;
    let registry = Registry::default();
    let service = reqwest_stack(&registry, 1024);
    let request = http::Request::post(format!("http://{address}/upload"))
        .body(chunked_body(&["order=42"]))
        .unwrap();

    let error = service.oneshot(request).await.unwrap_err();

    assert_eq!(uploads.bodies.lock().len(), 3);
    let message = error.to_string();
    assert!(message.contains("503 Service Unavailable"), "{message}");
}

#[tokio::test]
async fn over_limit_body_never_sent() {
    let (address, uploads) = serve_uploads(0).await;
    let registry = Registry::default();
    let service = reqwest_stack(&registry, 8);
    let request = http::Request::post(format!("http://{address}/upload"))
        .body(chunked_body(&["order=42", "&amount=9.99"]))
        .unwrap();

    let error = service.oneshot(request).await.unwrap_err();

    match error.downcast_ref::<BufferBodyError>() {
        Some(BufferBodyError::TooLarge { name, max_bytes }) => {
            assert_eq!(&**name, "upload");
            assert_eq!(*max_bytes, 8);
        }
        other => panic!("expected the layer's too-large error, got {other:?} from {error}"),
    }
    assert!(error.to_string().contains("limit of 8 bytes"), "{error}");
    assert!(uploads.bodies.lock().is_empty());
    let rejected = r#"obskit_buffer_body_rejections_total{name="upload",reason="too_large"}"#;
    assert_eq!(sample(&registry, rejected), 1.0);
}

/// A trace receiver that fails its first `failures` exports with `UNAVAILABLE`.
#[derive(Clone, Default)]
struct FlakyReceiver {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    failures_left: Arc<AtomicU32>,
}

#[tonic::async_trait]
impl TraceService for FlakyReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().push(request.into_inner());
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failing {
            return Err(tonic::Status::unavailable("collector is restarting"));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn serve_grpc(failures: u32) -> (SocketAddr, FlakyReceiver) {
    let receiver = FlakyReceiver::default();
    receiver.failures_left.store(failures, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tonic::transport::Server::builder()
            .serve_with_incoming(service, incoming)
            .await
            .unwrap();
    });
    (address, receiver)
}

/// Reads the status of a trailers-only gRPC response, which carries `grpc-status` in its
/// headers. A response with a message carries it in trailers instead and counts as a success.
fn grpc_error(response: &http::Response<tonic::body::Body>) -> Option<tonic::Status> {
    let code = tonic::Code::from_bytes(response.headers().get("grpc-status")?.as_bytes());
    if code == tonic::Code::Ok {
        return None;
    }
    // `Status::from_header_map` (tonic 0.14) panics on a malformed details header.
    let mut headers = response.headers().clone();
    headers.remove("grpc-status-details-bin");
    tonic::Status::from_header_map(&headers)
}

/// Turns the stack's error back into the `tonic::Status` the generated client returns. Tonic
/// reports an error without a `Status` in its source chain as `UNKNOWN`, and
/// `Error::Inner` does not return its `Status` as a source.
fn into_status(error: BoxError) -> tonic::Status {
    match error.downcast::<Error<tonic::Status>>() {
        Ok(error) => match *error {
            Error::Inner(status) => status,
            Error::Timeout { .. } => tonic::Status::deadline_exceeded(error.to_string()),
            rejection => tonic::Status::unavailable(rejection.to_string()),
        },
        Err(error) => tonic::Status::from_error(error),
    }
}

fn export_request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: Vec::new(),
                dropped_attributes_count: 7,
                entity_refs: Vec::new(),
            }),
            scope_spans: Vec::new(),
            schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
        }],
    }
}

async fn grpc_client(
    address: SocketAddr,
    registry: &Registry,
) -> TraceServiceClient<
    impl tower::Service<
        http::Request<tonic::body::Body>,
        Response = http::Response<tonic::body::Body>,
        Error = tonic::Status,
    >,
> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let policy: Policy<tonic::Status> = Policy::builder("collector")
        .retry(retry(
            registry,
            "collector",
            RetryPolicy::new()
                .retry_if(|status: &tonic::Status| status.code() == tonic::Code::Unavailable),
        ))
        .build();
    let stack = ServiceBuilder::new()
        .map_err(into_status)
        .layer(BufferBodyLayer::with_registry("collector", 1 << 20, registry).unwrap())
        .layer(PolicyLayer::new(policy).error_for_response(grpc_error))
        .map_request(|request: http::Request<Full<Bytes>>| request.map(tonic::body::Body::new))
        .map_err(|error: tonic::transport::Error| tonic::Status::from_error(Box::new(error)))
        .service(channel);
    TraceServiceClient::new(stack)
}

#[tokio::test]
async fn tonic_stack_retries_unavailable() {
    let (address, receiver) = serve_grpc(1).await;
    let registry = Registry::default();
    let mut client = grpc_client(address, &registry).await;

    let response = client.export(export_request()).await.unwrap();

    assert_eq!(response.into_inner().partial_success, None);
    let requests = receiver.requests.lock().clone();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request, &export_request());
    }
    let retried = r#"obskit_retry_attempts_total{name="collector",outcome="retry"}"#;
    assert_eq!(sample(&registry, retried), 1.0);
}

#[tokio::test]
async fn tonic_stack_returns_last_unavailable() {
    let (address, receiver) = serve_grpc(u32::MAX).await;
    let registry = Registry::default();
    let mut client = grpc_client(address, &registry).await;

    let status = client.export(export_request()).await.unwrap_err();

    assert_eq!(receiver.requests.lock().len(), 3);
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(status.message(), "collector is restarting");
}
