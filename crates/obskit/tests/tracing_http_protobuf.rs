//! The traced-request scenario of `tracing_http.rs` over OTLP/HTTP with protobuf bodies. Each
//! file is its own process, because `obskit::init` installs the global subscriber once.

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
fn traced_request_reaches_http_collector_exemplar_and_logs() {
    check_traced_requests(&Collector::http(), "http/protobuf");
}
