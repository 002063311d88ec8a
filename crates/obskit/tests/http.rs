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
async fn extractor_without_layer_names_it() {
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
async fn optional_extractor_without_id() {
    let app = Router::new().route(
        "/id",
        get(|id: Option<RequestId>| async move {
            id.map_or_else(|| "none".to_owned(), |id| id.to_string())
        }),
    );
    let addr = spawn(app).await;
    let client = reqwest::Client::new();

    for (header, expected) in [
        (None, "none"),
        (Some("bad id"), "none"),
        (Some("ok-1"), "ok-1"),
    ] {
        let mut request = client.get(format!("http://{addr}/id"));
        if let Some(header) = header {
            request = request.header("x-request-id", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{header:?}");
        assert_eq!(response.text().await.unwrap(), expected, "{header:?}");
    }
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

/// The metrics and obskit's JSON log lines of the requests one test serves.
///
/// The log subscriber is the default of the creating thread only, so the test serves its
/// application on the current-thread runtime of `#[tokio::test]`.
struct Recorder {
    registry: Registry,
    capture: Capture,
    logs: obskit::logging::LogGuard,
    _subscriber: tracing::subscriber::DefaultGuard,
}

/// Registers, once, a dispatcher that lives as long as the test binary and enables every
/// callsite.
///
/// While a single dispatcher is registered, `tracing-core` computes the interest of a callsite
/// that is hit for the first time from the current thread's default alone. A test without a
/// subscriber that hits an access-log callsite first would then cache `never` for it, and a
/// [`Recorder`] on another thread would miss its events. With this second dispatcher registered,
/// interest is always computed from every dispatcher.
fn keep_interest_shared() {
    static DISPATCH: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    DISPATCH.get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry()));
}

impl Recorder {
    fn new() -> Self {
        use tracing_subscriber::layer::SubscriberExt;

        keep_interest_shared();
        let registry = Registry::default();
        let capture = Capture::default();
        let logging = obskit::config::LoggingConfig {
            level: "info".to_owned(),
            ..obskit::config::LoggingConfig::default()
        };
        let (layer, logs) = obskit::logging::layer(
            &logging,
            &obskit::config::ServiceConfig::default(),
            &registry,
            obskit::logging::LogOutput::Writer(Box::new(capture.clone())),
        )
        .unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        Self {
            registry,
            capture,
            logs,
            _subscriber: tracing::subscriber::set_default(subscriber),
        }
    }

    fn layer(&self) -> HttpLayer {
        HttpLayer::new(&self.registry, &HttpConfig::default()).unwrap()
    }

    /// Serves one route behind the recorder's layer and returns its address.
    async fn serve(&self, path: &str, route: axum::routing::MethodRouter) -> SocketAddr {
        spawn(Router::new().route(path, route).layer(self.layer())).await
    }

    fn exposition(&self) -> String {
        self.registry.encode(Format::PrometheusText).unwrap()
    }

    /// Sum of the duration histogram's `_count` over every series.
    fn recorded(&self) -> f64 {
        self.exposition()
            .lines()
            .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
            .filter_map(|line| line.rsplit(' ').next())
            .map(|value| value.parse::<f64>().unwrap())
            .sum()
    }

    /// Sum of the in-flight gauge over every method.
    fn active(&self) -> f64 {
        self.exposition()
            .lines()
            .filter(|line| line.starts_with("http_server_active_requests{"))
            .filter_map(|line| line.rsplit(' ').next())
            .map(|value| value.parse::<f64>().unwrap())
            .sum()
    }

    /// Waits up to 5 seconds until `count` requests are recorded, then 100 ms more, so that a
    /// second recording of the same request would show up.
    async fn wait_recorded(&self, count: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.recorded() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fn lines(&self) -> Vec<Line> {
        self.logs.flush().unwrap();
        let text = String::from_utf8(self.capture.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(serde_json::Value::Object(object)) => object,
                other => panic!("not a JSON object: {line:?} ({other:?})"),
            })
            .collect()
    }

    fn access_lines(&self) -> Vec<Line> {
        self.lines()
            .into_iter()
            .filter(|line| line["target"] == "obskit::access")
            .collect()
    }

    /// Checks that exactly one request was recorded, as `method route status`, that the gauge is
    /// back to 0 and that one access line was written, and returns that line.
    async fn check_recorded_once(&self, method: &str, route: &str, status: u16) -> Line {
        self.wait_recorded(1.0).await;
        let exposition = self.exposition();
        let series = format!(
            "http_server_request_duration_seconds_count{{http_request_method=\"{method}\",http_route=\"{route}\",http_response_status_code=\"{status}\"}}"
        );
        assert_eq!(
            sample_value(&exposition, &series),
            Some(1.0),
            "{exposition}"
        );
        assert_eq!(self.recorded(), 1.0, "{exposition}");
        assert_eq!(self.active(), 0.0, "{exposition}");
        let lines = self.access_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = lines.into_iter().next().unwrap();
        assert_eq!(line["http.response.status_code"], status, "{line:?}");
        assert_eq!(line["http.route"], route, "{line:?}");
        line
    }
}

/// Serves `service` with hyper-util on loopback, HTTP/1.1 and HTTP/2 (prior knowledge), without
/// axum.
async fn spawn_hyper<S, B>(service: S) -> SocketAddr
where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = std::io::Error,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let _ended = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Returns a body that sends a chunk every 20 ms and never ends.
fn endless_chunks() -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send
{
    futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok(bytes::Bytes::from(vec![b'x'; 16 * 1024])), ()))
    })
}

/// Returns a body whose second chunk, 100 ms after the first, is an error.
fn failing_chunks() -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send
{
    futures_util::stream::unfold(0u8, |step| async move {
        match step {
            0 => Some((Ok(bytes::Bytes::from_static(b"first ")), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Err(std::io::Error::other("storage read failed")), 2))
            }
            _ => None,
        }
    })
}

#[tokio::test]
async fn full_body_recorded_once() {
    let recorder = Recorder::new();
    let addr = recorder
        .serve(
            "/stream",
            get(|| async { Body::from_stream(delayed_chunks()) }),
        )
        .await;
    let response = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
    let request_id = response.headers()["x-request-id"].clone();
    assert_eq!(response.text().await.unwrap(), "first second");

    let line = recorder.check_recorded_once("GET", "/stream", 200).await;
    assert_eq!(line["message"], "request completed");
    assert_eq!(line["request_id"], request_id.to_str().unwrap());
}

#[tokio::test]
async fn fixed_body_logged_as_completed() {
    // hyper drops a body as soon as `is_end_stream` is true, without polling it to its end,
    // which must not count as a body cut short.
    let recorder = Recorder::new();
    let addr = recorder
        .serve("/orders/{id}", get(|| async { "order" }))
        .await;
    let response = reqwest::get(format!("http://{addr}/orders/7"))
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "order");

    let line = recorder
        .check_recorded_once("GET", "/orders/{id}", 200)
        .await;
    assert_eq!(line["level"], "INFO", "{line:?}");
    assert_eq!(line["message"], "request completed", "{line:?}");
    assert!(line.get("body_incomplete").is_none(), "{line:?}");
}

/// Body of fixed data frames with an exact size hint and the default `is_end_stream`, which
/// stays false after the last frame.
struct ExactChunks(std::collections::VecDeque<bytes::Bytes>);

impl http_body::Body for ExactChunks {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.0
                .pop_front()
                .map(|data| Ok(http_body::Frame::data(data))),
        )
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let len = self.0.iter().map(bytes::Bytes::len).sum::<usize>();
        http_body::SizeHint::with_exact(u64::try_from(len).unwrap())
    }
}

#[tokio::test]
async fn declared_length_body_logged_as_completed() {
    // hyper stops polling an HTTP/1 body once the declared length is written, so a body whose
    // `is_end_stream` stays false is dropped after its last byte without reporting its end.
    let recorder = Recorder::new();
    let addr = recorder
        .serve(
            "/stream",
            get(|| async {
                (
                    [(http::header::CONTENT_LENGTH, "12")],
                    Body::from_stream(delayed_chunks()),
                )
            }),
        )
        .await;
    let response = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
    assert_eq!(response.headers()["content-length"], "12");
    assert_eq!(response.text().await.unwrap(), "first second");

    let line = recorder.check_recorded_once("GET", "/stream", 200).await;
    assert_eq!(line["level"], "INFO", "{line:?}");
    assert_eq!(line["message"], "request completed", "{line:?}");
    assert!(line.get("body_incomplete").is_none(), "{line:?}");
}

#[tokio::test]
async fn body_shorter_than_length_recorded_as_failure() {
    // hyper cuts the response when the body ends before its Content-Length.
    let recorder = Recorder::new();
    let addr = recorder
        .serve(
            "/stream",
            get(|| async {
                (
                    [(http::header::CONTENT_LENGTH, "20")],
                    Body::from_stream(delayed_chunks()),
                )
            }),
        )
        .await;
    let response = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
    assert_eq!(response.headers()["content-length"], "20");
    assert!(
        response.bytes().await.is_err(),
        "the client must see a cut body"
    );

    let line = recorder.check_recorded_once("GET", "/stream", 200).await;
    assert_eq!(line["level"], "ERROR", "{line:?}");
    assert_eq!(line["message"], "request failed", "{line:?}");
    assert_eq!(line["body_error"], true, "{line:?}");
    let lines = recorder.lines();
    let short = lines
        .iter()
        .find(|line| line["message"] == "response body ended before its declared length")
        .unwrap_or_else(|| panic!("no line about the short body in {lines:?}"));
    assert_eq!(short["level"], "ERROR", "{short:?}");
    assert_eq!(short["missing_bytes"], 8, "{short:?}");
    assert_eq!(short["request_id"], line["request_id"], "{short:?}");
}

#[tokio::test]
async fn exact_size_body_logged_as_completed() {
    let recorder = Recorder::new();
    let service = tower::ServiceBuilder::new()
        .layer(recorder.layer())
        .service_fn(|_request: http::Request<hyper::body::Incoming>| async {
            let chunks = [b"first ".as_slice(), b"second".as_slice()]
                .map(bytes::Bytes::from_static)
                .into();
            Ok(http::Response::new(ExactChunks(chunks)))
        });
    let addr = spawn_hyper(service).await;
    let response = reqwest::get(format!("http://{addr}/exact")).await.unwrap();
    assert_eq!(response.headers()["content-length"], "12");
    assert_eq!(response.text().await.unwrap(), "first second");

    let line = recorder.check_recorded_once("GET", "", 200).await;
    assert_eq!(line["level"], "INFO", "{line:?}");
    assert_eq!(line["message"], "request completed", "{line:?}");
    assert!(line.get("body_incomplete").is_none(), "{line:?}");
}

#[tokio::test]
async fn body_dropped_halfway_recorded_once() {
    let recorder = Recorder::new();
    let addr = recorder
        .serve(
            "/endless",
            get(|| async { Body::from_stream(endless_chunks()) }),
        )
        .await;
    let mut response = reqwest::get(format!("http://{addr}/endless"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"].len(), 32);
    assert!(response.chunk().await.unwrap().is_some());
    assert_eq!(recorder.active(), 1.0, "{}", recorder.exposition());
    drop(response);

    let line = recorder.check_recorded_once("GET", "/endless", 200).await;
    assert_eq!(line["level"], "WARN", "{line:?}");
    assert_eq!(line["message"], "response body dropped before its end");
    assert_eq!(line["body_incomplete"], true, "{line:?}");
}

#[tokio::test]
async fn body_error_recorded_once_as_failure() {
    let recorder = Recorder::new();
    let addr = recorder
        .serve(
            "/broken",
            get(|| async { Body::from_stream(failing_chunks()) }),
        )
        .await;
    let response = reqwest::get(format!("http://{addr}/broken")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"].len(), 32);
    assert!(
        response.text().await.is_err(),
        "the body must end in an error"
    );

    let line = recorder.check_recorded_once("GET", "/broken", 200).await;
    assert_eq!(line["level"], "ERROR", "{line:?}");
    assert_eq!(line["message"], "request failed", "{line:?}");
    assert_eq!(line["body_error"], true, "{line:?}");
}

/// Returns a body whose second chunk, 100 ms after the first, panics.
fn panicking_chunks()
-> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold(0u8, |step| async move {
        match step {
            0 => Some((Ok(bytes::Bytes::from_static(b"first ")), 1)),
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!("chunk source exploded")
            }
        }
    })
}

#[tokio::test]
async fn body_panic_recorded_once_as_failure() {
    let recorder = Recorder::new();
    let addr = recorder
        .serve(
            "/exploding",
            get(|| async { Body::from_stream(panicking_chunks()) }),
        )
        .await;
    let response = reqwest::get(format!("http://{addr}/exploding"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.is_err(),
        "the client must see a cut body, not a clean end"
    );

    let line = recorder.check_recorded_once("GET", "/exploding", 200).await;
    assert_eq!(line["level"], "ERROR", "{line:?}");
    assert_eq!(line["message"], "request failed", "{line:?}");
    assert_eq!(line["body_error"], true, "{line:?}");
    let request_id = line["request_id"].clone();
    let lines = recorder.lines();
    let panic_line = lines
        .iter()
        .find(|line| line["message"] == "response body panicked")
        .unwrap_or_else(|| panic!("no panic line in {lines:?}"));
    assert_eq!(panic_line["level"], "ERROR", "{panic_line:?}");
    assert_eq!(
        panic_line["panic"], "chunk source exploded",
        "{panic_line:?}"
    );
    assert_eq!(panic_line["request_id"], request_id, "{panic_line:?}");
}

#[tokio::test]
async fn handler_panic_recorded_once() {
    let recorder = Recorder::new();
    let app = Router::new()
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .layer(recorder.layer());
    let addr = spawn(app).await;
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/panic"))
        .header("x-request-id", "panic-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], "panic-1");
    assert_eq!(response.text().await.unwrap(), "");

    let line = recorder.check_recorded_once("GET", "/panic", 500).await;
    assert_eq!(line["level"], "ERROR", "{line:?}");
    assert_eq!(line["request_id"], "panic-1", "{line:?}");
}

/// A tower service whose `call` panics before it returns a future.
fn panicking_call(
    _request: http::Request<Body>,
) -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>> {
    panic!("call exploded")
}

#[tokio::test]
async fn panic_in_service_call_becomes_500() {
    let recorder = Recorder::new();
    let service = tower::ServiceBuilder::new()
        .layer(recorder.layer())
        .service_fn(panicking_call);
    let app = Router::new().fallback_service(service);
    let addr = spawn(app).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{addr}/explode"))
        .header("x-request-id", "call-panic-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], "call-panic-1");

    let line = recorder.check_recorded_once("GET", "", 500).await;
    assert_eq!(line["level"], "ERROR", "{line:?}");
    assert_eq!(line["request_id"], "call-panic-1", "{line:?}");
    let lines = recorder.lines();
    let panicked = lines
        .iter()
        .find(|line| line["message"] == "handler panicked")
        .unwrap_or_else(|| panic!("no panic line in {lines:?}"));
    assert_eq!(panicked["panic"], "call exploded", "{panicked:?}");
    assert_eq!(panicked["request_id"], "call-panic-1", "{panicked:?}");

    // The connection and the server survive the panic.
    let response = client
        .get(format!("http://{addr}/explode"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    recorder.wait_recorded(2.0).await;
    assert_eq!(recorder.recorded(), 2.0, "{}", recorder.exposition());
}

#[tokio::test]
async fn http2_reset_recorded_as_499_once() {
    let recorder = Recorder::new();
    let addr = recorder
        .serve("/forever", get(std::future::pending::<&'static str>))
        .await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{addr}/forever"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    // Dropping the unfinished request future resets the stream, and the connection stays open.
    let sent = tokio::time::timeout(Duration::from_millis(200), sender.send_request(request)).await;
    assert!(sent.is_err(), "{sent:?}");

    let line = recorder.check_recorded_once("GET", "/forever", 499).await;
    assert_eq!(line["level"], "WARN", "{line:?}");
    assert!(
        !sender.is_closed(),
        "the connection must outlive the reset stream"
    );
}

#[tokio::test]
async fn client_disconnect_recorded_as_499_once() {
    let recorder = Recorder::new();
    let addr = recorder
        .serve("/forever", get(std::future::pending::<&'static str>))
        .await;
    let sent = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap()
        .get(format!("http://{addr}/forever"))
        .send()
        .await;
    assert!(sent.is_err(), "{sent:?}");

    let line = recorder.check_recorded_once("GET", "/forever", 499).await;
    assert_eq!(line["level"], "WARN", "{line:?}");
    assert_eq!(line["message"], "request cancelled before a response");
}

#[tokio::test]
async fn inner_service_error_recorded_once() {
    let recorder = Recorder::new();
    let service = tower::ServiceBuilder::new()
        .layer(recorder.layer())
        .service_fn(|_request: http::Request<hyper::body::Incoming>| async {
            Err::<http::Response<http_body_util::Empty<bytes::Bytes>>, _>(std::io::Error::other(
                "upstream refused",
            ))
        });
    let addr = spawn_hyper(service).await;
    let sent = reqwest::get(format!("http://{addr}/fails")).await;
    assert!(sent.is_err(), "{sent:?}");

    let line = recorder.check_recorded_once("GET", "", 500).await;
    assert_eq!(line["level"], "ERROR", "{line:?}");
    assert_eq!(line["message"], "request failed", "{line:?}");
}

#[tokio::test]
async fn head_request_recorded_once() {
    let recorder = Recorder::new();
    let addr = recorder
        .serve("/orders/{id}", get(|| async { "order" }))
        .await;
    let response = reqwest::Client::new()
        .head(format!("http://{addr}/orders/1"))
        .header("x-request-id", "head-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "head-1");
    assert_eq!(response.bytes().await.unwrap().len(), 0);

    let line = recorder
        .check_recorded_once("HEAD", "/orders/{id}", 200)
        .await;
    assert_eq!(line["request_id"], "head-1", "{line:?}");
    assert_eq!(line["message"], "request completed", "{line:?}");
}

#[tokio::test]
async fn bodiless_statuses_recorded_once() {
    for status in [http::StatusCode::NO_CONTENT, http::StatusCode::NOT_MODIFIED] {
        let recorder = Recorder::new();
        let addr = recorder
            .serve("/empty", get(move || async move { status }))
            .await;
        let response = reqwest::get(format!("http://{addr}/empty")).await.unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["x-request-id"].len(), 32);
        assert_eq!(response.bytes().await.unwrap().len(), 0);

        let line = recorder
            .check_recorded_once("GET", "/empty", status.as_u16())
            .await;
        assert_eq!(line["message"], "request completed", "{line:?}");
    }
}

/// Returns a body that sends `data`, then a trailers frame with the one field `name: value`.
fn data_then_trailer(
    data: &'static [u8],
    name: &'static str,
    value: &'static str,
) -> impl http_body::Body<Data = bytes::Bytes, Error = std::io::Error> + Send + 'static {
    let mut trailers = http::HeaderMap::new();
    trailers.insert(name, http::HeaderValue::from_static(value));
    http_body_util::StreamBody::new(futures_util::stream::iter([
        Ok(http_body::Frame::data(bytes::Bytes::from_static(data))),
        Ok(http_body::Frame::trailers(trailers)),
    ]))
}

#[tokio::test]
async fn grpc_style_trailers_recorded_once() {
    use http_body_util::BodyExt as _;

    let recorder = Recorder::new();
    let service = tower::ServiceBuilder::new()
        .layer(recorder.layer())
        .service_fn(|_request: http::Request<hyper::body::Incoming>| async {
            let body = data_then_trailer(b"\0\0\0\0\x02hi", "grpc-status", "0");
            let mut response = http::Response::new(body);
            response
                .extensions_mut()
                .insert(obskit::http::RouteTemplate::new("/shop.Orders/Get"));
            Ok(response)
        });
    let addr = spawn_hyper(service).await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{addr}/shop.Orders/Get"))
        .header("content-type", "application/grpc")
        .header("x-request-id", "grpc-1")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "grpc-1");
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(collected.to_bytes().as_ref(), b"\0\0\0\0\x02hi");

    let line = recorder
        .check_recorded_once("POST", "/shop.Orders/Get", 200)
        .await;
    assert_eq!(line["request_id"], "grpc-1", "{line:?}");
    // hyper sends the trailers as the end of the stream and never polls the body again.
    assert_eq!(line["level"], "INFO", "{line:?}");
    assert_eq!(line["message"], "request completed", "{line:?}");
}

#[tokio::test]
async fn trailers_over_http1_logged_as_completed() {
    let recorder = Recorder::new();
    let service = tower::ServiceBuilder::new()
        .layer(recorder.layer())
        .service_fn(|_request: http::Request<hyper::body::Incoming>| async {
            let body = data_then_trailer(b"report", "checksum", "7");
            Ok::<_, std::io::Error>(http::Response::new(body))
        });
    let addr = spawn_hyper(service).await;
    // Without `TE: trailers` hyper leaves the trailers out, but still ends the body there.
    let response = reqwest::get(format!("http://{addr}/report")).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "report");

    let line = recorder.check_recorded_once("GET", "", 200).await;
    assert_eq!(line["level"], "INFO", "{line:?}");
    assert_eq!(line["message"], "request completed", "{line:?}");
    assert!(line.get("body_incomplete").is_none(), "{line:?}");
}

/// Returns the handler's view of the request id: the `X-Request-ID` values it received, joined
/// by spaces, then `|` and what the extractor returned.
async fn seen_request_id(id: RequestId, headers: http::HeaderMap) -> String {
    let values: Vec<&str> = headers
        .get_all("x-request-id")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    format!("{}|{id}", values.join(" "))
}

/// Sends GET `path` with one `X-Request-ID` header per entry of `ids` and returns the echoed id
/// and the body.
async fn send_with_ids(addr: SocketAddr, path: &str, ids: &[&str]) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}"));
    for id in ids {
        request = request.header("x-request-id", *id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{path} with {ids:?}");
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (echoed, response.text().await.unwrap())
}

fn is_generated(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

#[tokio::test]
async fn first_invalid_request_id_replaced() {
    let registry = Registry::default();
    let app = Router::new()
        .route("/seen", get(seen_request_id))
        .layer(HttpLayer::new(&registry, &HttpConfig::default()).unwrap());
    let addr = spawn(app).await;

    let (echoed, seen) = send_with_ids(addr, "/seen", &["bad id", "second-2"]).await;
    assert!(is_generated(&echoed), "{echoed}");
    assert_eq!(seen, format!("{echoed}|{echoed}"));

    let (echoed, seen) = send_with_ids(addr, "/seen", &["first-1", "bad id"]).await;
    assert_eq!(echoed, "first-1");
    assert_eq!(seen, "first-1|first-1");

    let (echoed, seen) = send_with_ids(addr, "/seen", &["", "second-2"]).await;
    assert!(is_generated(&echoed), "{echoed}");
    assert_eq!(seen, format!("{echoed}|{echoed}"));
}

#[tokio::test]
async fn request_id_length_limit() {
    let registry = Registry::default();
    let app = Router::new()
        .route("/seen", get(seen_request_id))
        .layer(HttpLayer::new(&registry, &HttpConfig::default()).unwrap());
    let addr = spawn(app).await;

    let longest = "a".repeat(obskit::http::MAX_REQUEST_ID_LEN);
    let (echoed, seen) = send_with_ids(addr, "/seen", &[&longest]).await;
    assert_eq!(echoed, longest);
    assert_eq!(seen, format!("{longest}|{longest}"));

    let too_long = "a".repeat(obskit::http::MAX_REQUEST_ID_LEN + 1);
    let (echoed, seen) = send_with_ids(addr, "/seen", &[&too_long]).await;
    assert!(is_generated(&echoed), "{echoed}");
    assert_eq!(seen, format!("{echoed}|{echoed}"));
}

#[tokio::test]
async fn request_id_extractor_in_nested_routers() {
    let registry = Registry::default();
    let api = Router::new().route("/seen", get(seen_request_id));
    let merged = Router::new().route("/merged", get(seen_request_id));
    let app = Router::new()
        .nest("/api", api)
        .merge(merged)
        .fallback(seen_request_id)
        .layer(HttpLayer::new(&registry, &HttpConfig::default()).unwrap());
    let addr = spawn(app).await;

    for path in ["/api/seen", "/merged", "/no/such/route"] {
        let (echoed, seen) = send_with_ids(addr, path, &[]).await;
        assert!(is_generated(&echoed), "{path}: {echoed}");
        assert_eq!(seen, format!("{echoed}|{echoed}"), "{path}");

        let (echoed, seen) = send_with_ids(addr, path, &["nested-1", "nested-2"]).await;
        assert_eq!(echoed, "nested-1", "{path}");
        assert_eq!(seen, "nested-1|nested-1", "{path}");
    }
}

#[tokio::test]
async fn request_id_extractor_on_excluded_path() {
    // The layer leaves excluded paths untouched, so the extractor reads only what the client
    // sent and rejects a request without a well-formed id.
    let registry = Registry::default();
    let app = Router::new()
        .route("/metrics", get(seen_request_id))
        .layer(HttpLayer::new(&registry, &HttpConfig::default()).unwrap());
    let addr = spawn(app).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("x-request-id").is_none());
    let message = response.text().await.unwrap();
    assert!(message.contains("exclude_paths"), "{message}");

    let response = client
        .get(format!("http://{addr}/metrics"))
        .header("x-request-id", "scraper-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-request-id").is_none());
    assert_eq!(response.text().await.unwrap(), "scraper-1|scraper-1");
}

#[tokio::test]
async fn from_headers_in_service_fn() {
    let registry = Registry::default();
    let service = tower::ServiceBuilder::new()
        .layer(HttpLayer::new(&registry, &HttpConfig::default()).unwrap())
        .service_fn(|request: http::Request<hyper::body::Incoming>| async move {
            let id = RequestId::from_headers(request.headers())
                .map_or_else(|| "none".to_owned(), |id| id.to_string());
            Ok::<_, std::io::Error>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from(format!(
                    "{}|{id}",
                    request.headers().get_all("x-request-id").iter().count()
                )),
            )))
        });
    let addr = spawn_hyper(service).await;

    let cases: [&[&str]; 5] = [
        &[],
        &["svc-1"],
        &["bad id"],
        &["svc-1", "svc-2"],
        &["bad id", "svc-2"],
    ];
    for ids in cases {
        let (echoed, seen) = send_with_ids(addr, "/plain", ids).await;
        assert_eq!(seen, format!("1|{echoed}"), "{ids:?}");
        match ids.first() {
            Some(&"svc-1") => assert_eq!(echoed, "svc-1"),
            _ => assert!(is_generated(&echoed), "{ids:?}: {echoed}"),
        }
    }
}

/// Keeps every span the bridge exports.
#[derive(Default)]
struct CollectSpans(std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>);

impl obskit::trace::SpanSink for CollectSpans {
    fn send(&self, span: opentelemetry_sdk::trace::SpanData) {
        self.0.lock().unwrap().push(span);
    }
}

/// Installs an always-on bridge into `sink` as this thread's subscriber and returns an
/// `HttpLayer` that continues traces, with the guard that keeps the subscriber.
fn traced_layer(
    sink: &std::sync::Arc<CollectSpans>,
) -> (HttpLayer, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt;

    let bridge = obskit::trace::OtelLayer::new(
        obskit::trace::Sampler::AlwaysOn,
        sink.clone(),
        opentelemetry::InstrumentationScope::builder("http-test").build(),
    );
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(bridge));
    let layer = HttpLayer::new(&Registry::default(), &HttpConfig::default())
        .unwrap()
        .with_trace_context(true);
    (layer, guard)
}

/// Waits up to 5 seconds for the first exported span and returns every span exported by then.
async fn exported_spans(sink: &CollectSpans) -> Vec<opentelemetry_sdk::trace::SpanData> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sink.0.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::mem::take(&mut *sink.0.lock().unwrap())
}

fn span_attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| attribute.value.as_str().into_owned())
}

#[tokio::test]
async fn server_span_takes_late_route_template() {
    let sink = std::sync::Arc::new(CollectSpans::default());
    let (layer, _subscriber) = traced_layer(&sink);
    // Without axum's router the route is known only from the response, after the span began.
    let service = tower::ServiceBuilder::new().layer(layer).service_fn(
        |_request: http::Request<hyper::body::Incoming>| async {
            let mut response = http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"order"),
            ));
            response
                .extensions_mut()
                .insert(obskit::http::RouteTemplate::new("/orders/{id}"));
            Ok::<_, std::io::Error>(response)
        },
    );
    let addr = spawn_hyper(service).await;
    let response = reqwest::get(format!("http://{addr}/orders/9"))
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "order");

    let spans = exported_spans(&sink).await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.name, "GET /orders/{id}");
    assert_eq!(
        span_attribute(span, "http.route").as_deref(),
        Some("/orders/{id}"),
        "{span:?}"
    );
}

#[tokio::test]
async fn server_span_of_failed_body_is_error() {
    let sink = std::sync::Arc::new(CollectSpans::default());
    let (layer, _subscriber) = traced_layer(&sink);
    let service = tower::ServiceBuilder::new().layer(layer).service_fn(
        |_request: http::Request<hyper::body::Incoming>| async {
            let body = http_body_util::StreamBody::new(futures_util::StreamExt::map(
                failing_chunks(),
                |chunk| chunk.map(http_body::Frame::data),
            ));
            Ok::<_, std::io::Error>(http::Response::new(body))
        },
    );
    let addr = spawn_hyper(service).await;
    let response = reqwest::get(format!("http://{addr}/broken")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.is_err(),
        "the body must end in an error"
    );

    let spans = exported_spans(&sink).await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert!(
        matches!(span.status, opentelemetry::trace::Status::Error { .. }),
        "{span:?}"
    );
    assert_eq!(
        span_attribute(span, "error.type").as_deref(),
        Some("response_body_error"),
        "{span:?}"
    );
    assert_eq!(
        span_attribute(span, "http.response.status_code").as_deref(),
        Some("200"),
        "{span:?}"
    );
}
