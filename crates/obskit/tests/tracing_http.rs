//! A request carrying `traceparent` through `obskit::init` reaches a gRPC OTLP receiver as server
//! spans, and the exemplars on `/metrics` and the log lines carry the same trace.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use support::otlp::Collector;
use support::traced::check_traced_requests;

#[test]
fn traced_request_reaches_grpc_collector_exemplar_and_logs() {
    check_traced_requests(&Collector::grpc(), "grpc");
}
