//! An HTTP server loop whose connections can be drained and, past the deadline, cut.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Accepts connections until `stop` is cancelled, then returns the connections still open.
pub(crate) async fn accept_until(
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
) -> Draining {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Accept errors such as EMFILE are transient: back off briefly, keep serving.
                tracing::warn!(target: "obskit::shutdown", %error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = router
            .clone()
            .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(client));
                request
            })
            .map_err(|never: Infallible| match never {});
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(target: "obskit::shutdown", %error, %client, "connection ended with an error");
            }
        });
    }
    drop(listener);
    Draining {
        graceful,
        connections,
    }
}

/// Connections left open when the listener closed.
pub(crate) struct Draining {
    graceful: GracefulShutdown,
    connections: JoinSet<()>,
}

impl Draining {
    /// Waits for open connections to finish their requests; cuts them at `timeout`.
    /// Returns true when every connection finished in time.
    pub(crate) async fn drain(mut self, timeout: Duration) -> bool {
        let finished = tokio::time::timeout(timeout, self.graceful.shutdown())
            .await
            .is_ok();
        if !finished {
            self.connections.abort_all();
        }
        while self.connections.join_next().await.is_some() {}
        finished
    }
}
