//! End-to-end tests of the HTTP middleware over real loopback sockets.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use obskit::config::HttpConfig;
use obskit::http::{HttpLayer, RequestId};
use obskit::metrics::{Format, Registry};

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

fn app(registry: &Registry) -> Router {
    let layer = HttpLayer::new(registry, &HttpConfig::default()).unwrap();
    Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .route(
            "/request-id",
            get(|id: RequestId| async move { id.to_string() }),
        )
        .route(
            "/fail",
            get(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/panic",
            get(|| async {
                #[allow(clippy::panic)]
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route(
            "/stream",
            get(|| async { Body::from_stream(delayed_chunks()) }),
        )
        .route(
            "/any/{name}",
            axum::routing::any(|| async {
                tracing::info!("handled");
                "any"
            }),
        )
        .route("/metrics", get(|| async { "excluded" }))
        .layer(layer)
}

/// Returns a two-chunk body whose second chunk arrives 200 ms after the first.
fn delayed_chunks() -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send
{
    futures_util::stream::unfold(0u8, |step| async move {
        match step {
            0 => Some((Ok(bytes::Bytes::from_static(b"first ")), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((Ok(bytes::Bytes::from_static(b"second")), 2))
            }
            _ => None,
        }
    })
}

fn sample_value(exposition: &str, prefix: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn routes_are_recorded_as_templates() {
    let registry = Registry::default();
    let addr = spawn(app(&registry)).await;
    let client = reqwest::Client::new();
    for id in 1..=3 {
        let response = client
            .get(format!("http://{addr}/orders/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "order");
    }

    let exposition = registry.encode(Format::PrometheusText).unwrap();
    let count = sample_value(
        &exposition,
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/orders/{id}\",http_response_status_code=\"200\"}",
    );
    assert_eq!(count, Some(3.0), "{exposition}");
    assert!(
        !exposition.contains("/orders/1"),
        "raw path leaked: {exposition}"
    );
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let registry = Registry::default();
    let addr = spawn(app(&registry)).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("http://{addr}/request-id"))
        .header("x-request-id", "abc-123.x_y")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123.x_y");
    assert_eq!(response.text().await.unwrap(), "abc-123.x_y");

    let response = client
        .get(format!("http://{addr}/request-id"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(echoed.len(), 32);
    assert_eq!(
        response.text().await.unwrap(),
        echoed,
        "handler sees the replacement id"
    );

    let response = client
        .get(format!("http://{addr}/orders/9"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"].len(), 32);
}

#[tokio::test]
async fn handler_sees_one_request_id_header() {
    let registry = Registry::default();
    let layer = HttpLayer::new(&registry, &HttpConfig::default()).unwrap();
    let app = Router::new()
        .route(
            "/headers",
            get(|headers: http::HeaderMap| async move {
                let values: Vec<&str> = headers
                    .get_all("x-request-id")
                    .iter()
                    .map(|value| value.to_str().unwrap())
                    .collect();
                values.join(" ")
            }),
        )
        .layer(layer);
    let addr = spawn(app).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("http://{addr}/headers"))
        .header("x-request-id", "kept-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "kept-1");

    let response = client
        .get(format!("http://{addr}/headers"))
        .header("x-request-id", "first-1")
        .header("x-request-id", "second-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "first-1");
    assert_eq!(response.text().await.unwrap(), "first-1");

    let response = client
        .get(format!("http://{addr}/headers"))
        .header("x-request-id", "bad id")
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(echoed.len(), 32);
    assert_eq!(response.text().await.unwrap(), echoed);
}

#[tokio::test]
async fn request_id_extractor_without_the_layer_names_it() {
    let app = Router::new().route("/id", get(|id: RequestId| async move { id.to_string() }));
    let addr = spawn(app).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("http://{addr}/id"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let message = response.text().await.unwrap();
    assert!(message.contains("X-Request-ID"), "{message}");
    assert!(message.contains("obskit::http::HttpLayer"), "{message}");

    let response = client
        .get(format!("http://{addr}/id"))
        .header("x-request-id", "bad id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500, "a malformed id is never returned");

    let response = client
        .get(format!("http://{addr}/id"))
        .header("x-request-id", "client-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "client-7");
}

#[tokio::test]
async fn handler_panic_becomes_recorded_500() {
    let registry = Registry::default();
    let addr = spawn(app(&registry)).await;
    let response = reqwest::get(format!("http://{addr}/panic")).await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"].len(), 32);

    // The server keeps serving after the panic.
    let response = reqwest::get(format!("http://{addr}/orders/1"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let exposition = registry.encode(Format::PrometheusText).unwrap();
    let count = sample_value(
        &exposition,
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/panic\",http_response_status_code=\"500\"}",
    );
    assert_eq!(count, Some(1.0), "{exposition}");
}

#[tokio::test]
async fn server_errors_are_recorded_with_status() {
    let registry = Registry::default();
    let addr = spawn(app(&registry)).await;
    let response = reqwest::get(format!("http://{addr}/fail")).await.unwrap();
    assert_eq!(response.status(), 503);
    let exposition = registry.encode(Format::PrometheusText).unwrap();
    assert!(
        exposition.contains("http_response_status_code=\"503\""),
        "{exposition}"
    );
}

#[tokio::test]
async fn excluded_paths_are_not_recorded() {
    let registry = Registry::default();
    let addr = spawn(app(&registry)).await;
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-request-id").is_none());
    let exposition = registry.encode(Format::PrometheusText).unwrap();
    assert!(
        !exposition.contains("http_route=\"/metrics\""),
        "{exposition}"
    );
}

#[tokio::test]
async fn unmatched_routes_use_empty_route() {
    let registry = Registry::default();
    let addr = spawn(app(&registry)).await;
    let response = reqwest::get(format!("http://{addr}/no/such/path/123"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let exposition = registry.encode(Format::PrometheusText).unwrap();
    assert!(exposition.contains("http_route=\"\""), "{exposition}");
    assert!(!exposition.contains("/no/such/path"), "{exposition}");
}

#[tokio::test]
async fn duration_includes_streamed_body() {
    let registry = Registry::default();
    let addr = spawn(app(&registry)).await;
    let response = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "first second");

    // The body took at least 200 ms, so the observation must not fall in the buckets below it.
    let exposition = registry.encode(Format::PrometheusText).unwrap();
    let below = sample_value(
        &exposition,
        "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",http_route=\"/stream\",http_response_status_code=\"200\",le=\"0.1\"}",
    );
    let count = sample_value(
        &exposition,
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/stream\",http_response_status_code=\"200\"}",
    );
    assert_eq!(count, Some(1.0), "{exposition}");
    assert_eq!(below, Some(0.0), "{exposition}");
}

#[tokio::test]
async fn in_flight_gauge_returns_to_zero() {
    let registry = Registry::default();
    let layer = HttpLayer::new(&registry, &HttpConfig::default()).unwrap();
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = std::sync::Mutex::new(Some(entered_tx));
    let release_rx = std::sync::Mutex::new(Some(release_rx));
    let state = std::sync::Arc::new((entered_tx, release_rx));
    let app = Router::new()
        .route(
            "/wait",
            get(move || {
                let state = state.clone();
                async move {
                    let entered = state.0.lock().unwrap().take().unwrap();
                    let release = state.1.lock().unwrap().take().unwrap();
                    entered.send(()).unwrap();
                    release.await.unwrap();
                    "done"
                }
            }),
        )
        .layer(layer);
    let addr = spawn(app).await;
    let request = tokio::spawn(reqwest::get(format!("http://{addr}/wait")));
    entered_rx.await.unwrap();

    let during = registry.encode(Format::PrometheusText).unwrap();
    assert_eq!(
        sample_value(
            &during,
            "http_server_active_requests{http_request_method=\"GET\"}"
        ),
        Some(1.0),
        "{during}"
    );
    release_tx.send(()).unwrap();
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.text().await.unwrap(), "done");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = registry.encode(Format::PrometheusText).unwrap();
    assert_eq!(
        sample_value(
            &after,
            "http_server_active_requests{http_request_method=\"GET\"}"
        ),
        Some(0.0),
        "{after}"
    );
}

#[tokio::test]
async fn cancelled_request_is_recorded() {
    let registry = Registry::default();
    let layer = HttpLayer::new(&registry, &HttpConfig::default()).unwrap();
    let app = Router::new()
        .route("/forever", get(std::future::pending::<&'static str>))
        .layer(layer);
    let shutdown = obskit::shutdown::Shutdown::new(&obskit::config::ShutdownConfig {
        pre_stop_delay: Duration::ZERO,
        timeout: Duration::from_millis(200),
        hook_timeout: Duration::from_millis(100),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.serve(listener, app).await }
    });
    let request = tokio::spawn(reqwest::get(format!("http://{addr}/forever")));
    tokio::time::sleep(Duration::from_millis(100)).await;

    shutdown.trigger();
    let report = server.await.unwrap().unwrap();
    assert!(!report.drained);
    assert!(request.await.unwrap().is_err());

    let exposition = registry.encode(Format::PrometheusText).unwrap();
    assert_eq!(
        sample_value(
            &exposition,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/forever\",http_response_status_code=\"499\"}"
        ),
        Some(1.0),
        "{exposition}"
    );
    assert_eq!(
        sample_value(
            &exposition,
            "http_server_active_requests{http_request_method=\"GET\"}"
        ),
        Some(0.0),
        "{exposition}"
    );
}

/// In-memory log output shared with the test.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves `app` on loopback in a current-thread runtime under obskit's JSON logging at `level`,
/// inside an entered WARN span `job` with `tenant = "t1"`, sends one GET of `path` with
/// `X-Request-ID: rid-7`, and returns the `obskit::access` lines.
fn access_lines(level: &str, path: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    log_lines(level, "GET", path, "rid-7")
        .into_iter()
        .filter(|line| line["target"] == "obskit::access")
        .collect()
}

/// Serves `app` as [`access_lines`] describes, sends one request with `method`, `path` and
/// `X-Request-ID: request_id`, and returns every log line.
///
/// A second layer, filtered at INFO and writing nowhere, keeps INFO spans alive in the registry
/// even when obskit's layer filters them out, as a trace exporter next to the logs does.
fn log_lines(
    level: &str,
    method: &str,
    path: &str,
    request_id: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    let capture = Capture::default();
    let registry = Registry::default();
    let logging = obskit::config::LoggingConfig {
        level: level.to_owned(),
        ..obskit::config::LoggingConfig::default()
    };
    let (layer, guard) = obskit::logging::layer(
        &logging,
        &obskit::config::ServiceConfig::default(),
        &registry,
        obskit::logging::LogOutput::Writer(Box::new(capture.clone())),
    )
    .unwrap();
    let other = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let subscriber = tracing_subscriber::registry().with(layer).with(other);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let _job = tracing::warn_span!("job", tenant = "t1").entered();
        runtime.block_on(async {
            let addr = spawn(app(&registry)).await;
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let response = reqwest::Client::new()
                .request(method, format!("http://{addr}{path}"))
                .header("x-request-id", request_id)
                .send()
                .await
                .unwrap();
            response.bytes().await.unwrap();
        });
        // Dropping the runtime ends the server task, which records a request it has not recorded
        // yet, still inside `job` and under this subscriber.
        drop(runtime);
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(object)) => object,
            other => panic!("not a JSON object: {line:?} ({other:?})"),
        })
        .collect()
}

#[test]
fn access_event_has_span_fields() {
    let lines = access_lines("info", "/orders/7");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["message"], "request completed");
    assert_eq!(line["request_id"], "rid-7");
    assert_eq!(line["http.route"], "/orders/{id}");
    assert_eq!(line["url.path"], "/orders/7");
    assert_eq!(line["http.response.status_code"], 200);
}

/// A JSON log line as an object.
type Line = serde_json::Map<String, serde_json::Value>;

/// Returns the handler's "handled" line and the access line among `lines`.
fn handler_and_access_lines(lines: &[Line]) -> (&Line, &Line) {
    let find = |what: &str, matches: &dyn Fn(&Line) -> bool| {
        lines
            .iter()
            .find(|line| matches(line))
            .unwrap_or_else(|| panic!("no {what} line in {lines:?}"))
    };
    (
        find("handler", &|line| line["message"] == "handled"),
        find("access", &|line| line["target"] == "obskit::access"),
    )
}

#[test]
fn known_method_and_route_written_as_sent() {
    let lines = log_lines("info", "DELETE", "/any/order-9", "rid-8");
    let (handled, access) = handler_and_access_lines(&lines);
    for line in [handled, access] {
        assert_eq!(line["http.request.method"], "DELETE", "{line:?}");
        assert_eq!(line["http.route"], "/any/{name}", "{line:?}");
        assert_eq!(line["request_id"], "rid-8", "{line:?}");
    }
    assert_eq!(access["url.path"], "/any/order-9");
}

#[test]
fn client_values_are_redacted() {
    // The path, an extension method and the request id come from the client, so the access
    // event and the request span scan them, while a known method and the route template are
    // written unscanned.
    let lines = log_lines(
        "info",
        "4111111111111111",
        "/any/jane.doe@example.com",
        "4111-1111-1111-1111",
    );
    let (handled, access) = handler_and_access_lines(&lines);
    for line in [handled, access] {
        assert_eq!(line["http.request.method"], "[REDACTED:card]", "{line:?}");
        assert_eq!(line["request_id"], "[REDACTED:card]", "{line:?}");
        assert_eq!(line["http.route"], "/any/{name}", "{line:?}");
    }
    assert_eq!(access["url.path"], "/any/[REDACTED:email]");
}

#[test]
fn access_event_outside_filtered_span() {
    // At WARN obskit's layer filters out the INFO request span, so for that layer the ERROR
    // access event of a 503 sits in the nearest enabled span around it: the entered `job` span.
    let lines = access_lines("warn", "/fail");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["http.response.status_code"], 503);
    assert_eq!(line["tenant"], "t1");
    assert!(!line.contains_key("request_id"), "{line:?}");
}

#[tokio::test]
async fn route_template_from_response_extension() {
    let registry = Registry::default();
    let layer = HttpLayer::new(&registry, &HttpConfig::default()).unwrap();
    let service = tower::ServiceBuilder::new().layer(layer).service_fn(
        |request: http::Request<axum::body::Body>| async move {
            let mut response = http::Response::new(axum::body::Body::from("order"));
            if request.uri().path().starts_with("/orders/") {
                response
                    .extensions_mut()
                    .insert(obskit::http::RouteTemplate::new("/orders/{id}"));
            }
            Ok::<_, std::convert::Infallible>(response)
        },
    );
    let app = Router::new().fallback_service(service);
    let addr = spawn(app).await;
    for path in ["/orders/1", "/orders/2", "/other"] {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        assert_eq!(response.status(), 200);
    }

    let exposition = registry.encode(Format::PrometheusText).unwrap();
    assert_eq!(
        sample_value(
            &exposition,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/orders/{id}\",http_response_status_code=\"200\"}"
        ),
        Some(2.0),
        "{exposition}"
    );
    assert_eq!(
        sample_value(
            &exposition,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"\",http_response_status_code=\"200\"}"
        ),
        Some(1.0),
        "{exposition}"
    );
    assert!(!exposition.contains("/orders/1"), "{exposition}");
}
