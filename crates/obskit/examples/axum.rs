//! An axum service with obskit: JSON logs, `/metrics`, health probes, request metrics and
//! graceful shutdown on Ctrl-C or SIGTERM.
//!
//! ```sh
//! cargo run -p obskit --example axum
//! curl -si localhost:3000/hello/world
//! curl -s localhost:3000/metrics
//! ```

use std::time::Duration;

use axum::extract::Path;
use axum::{Router, routing::get};
use obskit::health::{CheckOptions, TcpCheck};
use obskit::http::RequestId;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = obskit::Config::builder()
        .set("service.name", "hello")
        .set("shutdown.pre_stop_delay", "1s")
        .build()?;
    let obskit = obskit::init(config)?;
    obskit.shutdown().listen_for_signals()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let address = listener.local_addr()?;

    // Readiness depends on this service accepting connections on its own port; a real service
    // would check its database or a downstream service instead.
    obskit.health().add_readiness(
        "self",
        TcpCheck::new(address.to_string()),
        CheckOptions::default().cache_ttl(Duration::from_secs(2)),
    )?;
    obskit.shutdown().add_hook("say goodbye", None, || async {
        tracing::info!("closing connections to nothing in particular");
    });

    let app = Router::new().route(
        "/hello/{name}",
        get(|Path(name): Path<String>, id: RequestId| async move {
            tracing::info!(%name, "greeting");
            // The same id is in every log line of this request and in the `X-Request-ID`
            // response header.
            format!("hello, {name} (request {id})\n")
        }),
    );

    obskit.health().mark_started();
    tracing::info!(%address, "listening");
    let report = obskit.serve(listener, app).await?;
    tracing::info!(drained = report.drained, "stopped");
    Ok(())
}
