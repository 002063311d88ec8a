//! obskit: observability for Rust services from one `init` call.
//!
//! One crate and one call give a service:
//!
//! - structured JSON logs that its `tracing` events flow into;
//! - Prometheus / OpenMetrics metrics: RED, Golden Signals, USE, HTTP server, process, runtime;
//! - Kubernetes health probes;
//! - a `/metrics` endpoint with bearer authentication and per-client rate limiting;
//! - HTTP middleware for axum, tower and hyper;
//! - distributed tracing: `tracing` spans exported as OpenTelemetry spans over OTLP, with W3C
//!   Trace Context propagation;
//! - graceful shutdown.
//!
//! # Quick start
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let obskit = obskit::init(obskit::Config::load()?)?;
//!     obskit.shutdown().listen_for_signals()?;
//!
//!     let app = Router::new().route("/orders/{id}", get(|| async { "order" }));
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//!     obskit.health().mark_started();
//!     tracing::info!("listening");
//!     obskit.serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! The service then logs JSON lines to standard output, serves `/metrics`, `/health/live`,
//! `/health/ready` and `/health/startup` next to its own routes, records every request, and on
//! SIGTERM fails readiness, drains and flushes its logs before returning. With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, every request is also a server span that continues the
//! caller's trace, and sampled spans are exported to that collector and flushed at shutdown.
//!
//! # Modules
//!
//! | Module | What it does |
//! |---|---|
//! | [`clock`] | The monotonic clock that breakers, limiters and SLO windows read, and a manual clock for tests |
//! | [`config`] | Typed configuration from defaults, a TOML / YAML file, the environment and code |
//! | [`logging`] | `tracing` subscriber with JSON lines, sampling and a non-blocking writer |
//! | [`metrics`] | Registry with a cardinality guard, RED / Golden Signals / USE, exposition |
//! | [`health`] | Liveness, readiness and startup checks with timeouts and caching |
//! | [`admin`] | The `/metrics` and health routes with their security |
//! | [`http`] | Tower middleware: request metrics, access log, request ids, panics |
//! | [`resilience`] | Circuit breaker, retry with budget, rate limiting, bulkhead and timeout |
//! | [`shutdown`] | Graceful shutdown coordinator |
//! | [`slo`] | Service level objectives: definitions, error budgets, burn rates and alert state |
//! | [`trace`] | Tracing: the [`trace::OtelLayer`] bridge from `tracing` spans with head sampling, the [`trace::BatchExporter`] (OTLP or stdout), and W3C Trace Context and Baggage propagation |
//!
//! # Feature flags
//!
//! | Feature | Default | Enables |
//! |---|---|---|
//! | `http` | yes | [`http`], [`admin`], the health HTTP routes and [`Obskit::serve`] (axum, tower, hyper) |
//! | `resilience` | yes | [`resilience`]: circuit breakers, retries (backon), rate limiters (governor), bulkheads and timeouts |
//! | `otlp` | yes | OTLP span export over gRPC (tonic) and HTTP/protobuf (hyper), with TLS (rustls); without it only the `stdout` span exporter exists |

#[cfg(feature = "http")]
pub mod admin;
pub mod clock;
pub mod config;
pub mod health;
#[cfg(feature = "http")]
pub mod http;
mod init;
#[cfg(any(feature = "http", feature = "resilience"))]
mod keyed;
pub mod logging;
pub mod metrics;
pub mod redact;
#[cfg(feature = "resilience")]
pub mod resilience;
pub mod shutdown;
pub mod slo;
pub mod trace;

pub use config::Config;
pub use init::{InitError, Obskit, ObskitBuilder, init};

#[cfg(test)]
pub(crate) mod test_support {
    /// Registers, once, a dispatcher that lives as long as the test binary and enables every
    /// callsite.
    ///
    /// While a single dispatcher is registered, `tracing-core` computes the interest of a
    /// callsite that is hit for the first time from the current thread's default alone. A test
    /// without a subscriber that reaches a library callsite first would then cache `never` for
    /// it, and a test that captures that callsite's events on another thread would miss them.
    /// Call this before setting a scoped subscriber whose events a test checks.
    pub(crate) fn keep_interest_shared() {
        static DISPATCH: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        DISPATCH.get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry()));
    }
}
