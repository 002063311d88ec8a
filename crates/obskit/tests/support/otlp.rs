//! OTLP receivers on loopback for the tests: gRPC with tonic and HTTP/protobuf with axum.

#![allow(dead_code, unreachable_pub)]

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use parking_lot::Mutex;
use prost::Message as _;

/// One export request as a receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    /// The body as sent, before any decompression (HTTP only).
    pub raw_body: Vec<u8>,
    pub request: ExportTraceServiceRequest,
}

#[derive(Clone, Default)]
pub struct Inbox(pub Arc<Mutex<Vec<Received>>>);

impl Inbox {
    pub fn requests(&self) -> Vec<Received> {
        self.0.lock().clone()
    }

    pub fn span_count(&self) -> usize {
        self.0
            .lock()
            .iter()
            .flat_map(|received| &received.request.resource_spans)
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum()
    }

    /// Polls until `count` spans arrived, or panics after 10 seconds.
    pub fn wait_for_spans(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.span_count() < count {
            assert!(
                Instant::now() < deadline,
                "expected {count} spans, received {}",
                self.span_count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// An OTLP receiver on 127.0.0.1 with its own runtime.
pub struct Collector {
    pub _runtime: tokio::runtime::Runtime,
    pub address: SocketAddr,
    pub inbox: Inbox,
}

impl Collector {
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn grpc() -> Self {
        Self::grpc_with(|builder| builder)
    }

    pub fn grpc_with(
        configure: impl FnOnce(tonic::transport::Server) -> tonic::transport::Server,
    ) -> Self {
        Self::grpc_serving(configure, 0)
    }

    /// A gRPC receiver that responds to each export with a partial success rejecting
    /// `rejected_spans` spans.
    pub fn grpc_rejecting(rejected_spans: i64) -> Self {
        Self::grpc_serving(|builder| builder, rejected_spans)
    }

    fn grpc_serving(
        configure: impl FnOnce(tonic::transport::Server) -> tonic::transport::Server,
        rejected_spans: i64,
    ) -> Self {
        let runtime = Self::runtime();
        let inbox = Inbox::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(GrpcReceiver(inbox.clone(), rejected_spans))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        let server = configure(tonic::transport::Server::builder());
        runtime.spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            server.serve_with_incoming(service, incoming).await.unwrap();
        });
        Self {
            _runtime: runtime,
            address,
            inbox,
        }
    }

    pub fn http() -> Self {
        let runtime = Self::runtime();
        let inbox = Inbox::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/v1/traces", post(http_export))
            .with_state(inbox.clone());
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            _runtime: runtime,
            address,
            inbox,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Stores each request, and rejects the given number of spans of each in a partial success.
pub struct GrpcReceiver(pub Inbox, pub i64);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        let request = request.into_inner();
        self.0.0.lock().push(Received {
            headers,
            raw_body: Vec::new(),
            request,
        });
        let partial_success = (self.1 > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: self.1,
            error_message: "span quota exceeded".to_owned(),
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

pub async fn http_export(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|value| value == "gzip");
    let decoded = if gzip {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        plain
    } else {
        body.to_vec()
    };
    let request = ExportTraceServiceRequest::decode(&decoded[..]).unwrap();
    inbox.0.lock().push(Received {
        headers,
        raw_body: body.to_vec(),
        request,
    });
    let response = ExportTraceServiceResponse {
        partial_success: None,
    };
    (
        [("content-type", "application/x-protobuf")],
        response.encode_to_vec(),
    )
}

/// Starts a listener that accepts TCP connections and never reads or responds.
pub fn silent_listener() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

/// Returns the address of a port with no listener.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
