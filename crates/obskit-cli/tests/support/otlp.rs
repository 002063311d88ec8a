//! A gRPC OTLP trace receiver on 127.0.0.1 that stores every span it is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;

/// The spans received so far, in arrival order.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Span>>>);

/// An OTLP/gRPC receiver with its own runtime, stopped when dropped.
pub(crate) struct Collector {
    _runtime: tokio::runtime::Runtime,
    address: SocketAddr,
    inbox: Inbox,
}

impl Collector {
    /// Starts a receiver on an ephemeral loopback port.
    pub(crate) fn grpc() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let inbox = Inbox::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(Receiver(inbox.clone()))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        runtime.spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            tonic::transport::Server::builder()
                .serve_with_incoming(service, incoming)
                .await
                .unwrap();
        });
        Self {
            _runtime: runtime,
            address,
            inbox,
        }
    }

    /// Returns the URL to set as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns a copy of the spans received so far.
    pub(crate) fn spans(&self) -> Vec<Span> {
        self.inbox.0.lock().unwrap().clone()
    }

    /// Polls until a span matching `predicate` arrived, or panics after `timeout`.
    pub(crate) fn wait_for_span(
        &self,
        timeout: Duration,
        predicate: impl Fn(&Span) -> bool,
    ) -> Span {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if let Some(span) = spans.iter().find(|span| predicate(span)) {
                return span.clone();
            }
            let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
            assert!(
                Instant::now() < deadline,
                "no such span within {timeout:?}; received {names:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct Receiver(Inbox);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.0.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Formats span and trace ids as lowercase hex, as `traceparent` writes them.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
