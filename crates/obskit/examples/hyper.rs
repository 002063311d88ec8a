//! obskit's middleware around a plain hyper service, without axum's router, served by
//! hyper-util with obskit's metrics endpoint on a second port.
//!
//! ```sh
//! cargo run -p obskit --example hyper
//! curl -s localhost:3001/hello/world
//! curl -s localhost:3001/anything
//! curl -s localhost:3002/metrics
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use obskit::http::RouteTemplate;
use tower::ServiceBuilder;

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    tracing::info!(path = request.uri().path(), "handling");
    let body = Full::new(Bytes::from_static(b"hello from hyper\n"));
    let mut response = Response::new(body);
    // This service routes by hand, so it names the route template for the metrics itself.
    if request.uri().path().starts_with("/hello/") {
        response
            .extensions_mut()
            .insert(RouteTemplate::new("/hello/{name}"));
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = obskit::Config::builder()
        .set("service.name", "hyper-example")
        .build()?;
    let obskit = obskit::init(config)?;

    // The admin router on its own listener.
    let admin = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    let admin_router = obskit.admin_router::<()>();
    tokio::spawn(async move {
        let service = admin_router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(error) = axum::serve(admin, service).await {
            tracing::error!(%error, "admin listener stopped");
        }
    });

    // The application: a hyper service function wrapped in obskit's layer. Without a router the
    // handler names the route template; where it does not, `http_route` is empty and the raw
    // path never becomes a label.
    let service = ServiceBuilder::new()
        .layer(obskit.http_layer())
        .service_fn(handle);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    obskit.health().mark_started();
    tracing::info!("listening on 127.0.0.1:3001, metrics on 127.0.0.1:3002");
    loop {
        let (stream, _client) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            if let Err(error) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}
