//! The demo service started by `obskit demo`: an orders API with every obskit capability on.
//!
//! Routes: `GET /orders/{id}`, `POST /orders`, `GET /slow?ms=N` (sleeps, at most 10 s),
//! `GET /fail?status=N` (responds with that 4xx or 5xx status) and `GET` / `PUT
//! /payments/settings` (the payments server's failure rate and latency), plus the admin routes
//! `/metrics`, `/resilience`, `/health`, `/health/live`, `/health/ready` and `/health/startup`
//! on the same listener.
//!
//! The demo starts two real dependencies on other loopback ports:
//!
//! - an inventory service: readiness checks it, and `GET /orders/{id}` looks up the order's
//!   stock there over HTTP. One trace then contains the order request's server span, the
//!   lookup's client span and the inventory's server span.
//! - a payments server that fails and lags as `--payments-failure-rate` and
//!   `--payments-latency-ms` say. `POST /orders` pays there through a timeout, a retry with a
//!   budget, the `payments` circuit breaker and a bulkhead, so the breaker can be watched as it
//!   opens and recovers on `/resilience`.
//!
//! Both `/orders` routes are rate limited per client address (`--orders-rate-limit`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use obskit::health::{CheckOptions, DiskSpaceCheck, HttpCheck, MemoryCheck};
use obskit::metrics::{GoldenSignals, UseMetrics};
use obskit::trace::Baggage;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::DemoArgs;
use crate::inventory::{InventoryClient, LookupError};
use crate::payments::{Behaviour, PaymentError, Payments, Settings};
use obskit::resilience::Preset;
use obskit::resilience::rate_limit::{KeyExtractor, Quota, RateLimiter};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Maximum sleep of `GET /slow`, so one request cannot hold a connection for long.
const MAX_SLOW_MS: u64 = 10_000;

/// Maximum orders in the in-memory store. `POST /orders` responds 503 beyond it, so memory
/// stays bounded.
const MAX_ORDERS: usize = 100_000;

/// Resource name of the order store in the saturation and USE metrics.
const STORE: &str = "order_store";

/// Route templates of the demo's own handlers, which SLO selectors are checked against.
const ROUTES: &[&str] = &[
    "/orders",
    "/orders/{id}",
    "/slow",
    "/fail",
    "/payments/settings",
];

/// The SLOs the demo tracks when the configuration defines none; `demo/obskit.toml` contains the
/// same definitions for `obskit slo rules` and `obskit slo dashboard`.
pub(crate) fn demo_slos()
-> Result<std::collections::BTreeMap<String, obskit::slo::SloSpec>, obskit::slo::SloError> {
    use obskit::slo::SloDefinition;

    let definitions = [
        SloDefinition::builder("orders-availability")
            .availability()
            .target("99.9")
            .period("30d")
            .route("/orders")
            .method("POST")
            .description("Orders are created")
            .build()?,
        SloDefinition::builder("order-lookup-latency")
            .latency(Duration::from_millis(250))
            .target("99")
            .period("30d")
            .route("/orders/{id}")
            .method("GET")
            .description("Order lookups are fast")
            .build()?,
    ];
    Ok(definitions
        .iter()
        .map(|definition| (definition.name.clone(), definition.to_spec()))
        .collect())
}

/// Runs the demo service until SIGTERM or Ctrl-C, then shuts down gracefully.
pub(crate) fn run(args: DemoArgs) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: DemoArgs) -> Result<(), BoxError> {
    let mut config = obskit::Config::load()?;
    // The demo names itself and reports the obskit version unless configured otherwise.
    let defaults = obskit::config::ServiceConfig::default();
    if config.service.name == defaults.name {
        "obskit-demo".clone_into(&mut config.service.name);
    }
    if config.service.version == defaults.version {
        env!("CARGO_PKG_VERSION").clone_into(&mut config.service.version);
    }
    if config.slo.objectives.is_empty() {
        config.slo.objectives = demo_slos()?;
    }
    config.slo.definitions()?.check_routes(ROUTES)?;
    let obskit = obskit::init(config)?;
    let shutdown = obskit.shutdown().clone();
    shutdown.listen_for_signals()?;

    let inventory = crate::inventory::start(obskit.http_layer()).await?;
    let behaviour = Behaviour::new(
        Settings {
            failure_rate: args.payments_failure_rate,
            latency_ms: args.payments_latency_ms,
        }
        .validate()?,
    );
    let payments_address =
        crate::payments::start(obskit.http_layer(), Arc::clone(&behaviour)).await?;
    // The file's `[resilience.circuit_breakers.payments]` keys apply on top of the preset.
    let payments_breaker = obskit
        .resilience()
        .circuit_breakers()
        .get_or_create_with_preset("payments", Preset::ExternalApi)?;
    let orders_limit = RateLimiter::builder(
        "orders",
        Quota::per_second(args.orders_rate_limit)?
            .with_burst(args.orders_rate_limit.saturating_mul(2))?,
    )
    .registry(obskit.registry())
    .layer(KeyExtractor::PeerAddr)?;
    obskit.resilience().show_rate_limiter(orders_limit.clone());
    let health = obskit.health();
    health.add_readiness(
        "inventory",
        HttpCheck::new(&format!("http://{inventory}/healthz"))?,
        CheckOptions::default()
            .timeout(Duration::from_secs(2))
            .cache_ttl(Duration::from_secs(1)),
    )?;
    health.add_readiness(
        "disk",
        DiskSpaceCheck::new(std::env::temp_dir(), 64 * 1024 * 1024),
        CheckOptions::default()
            .critical(false)
            .cache_ttl(Duration::from_secs(10)),
    )?;
    if let Some(slos) = obskit.slo() {
        // An exhausted error budget shows as `warn` and keeps the instance ready.
        health.add_readiness(
            "slo_budget",
            slos.budget_check(),
            CheckOptions::default().critical(false),
        )?;
    }
    health.add_liveness(
        "memory",
        MemoryCheck::new(4 * 1024 * 1024 * 1024),
        CheckOptions::default(),
    )?;

    let state = AppState {
        orders: Arc::new(RwLock::new(HashMap::new())),
        next_id: Arc::new(AtomicU64::new(1)),
        pending_writes: Arc::new(AtomicU64::new(0)),
        golden: GoldenSignals::register(obskit.registry(), "demo_orders", ["operation"])?,
        usage: UseMetrics::register(obskit.registry(), "demo_resource")?,
        inventory: InventoryClient::new(inventory),
        payments: Payments::new(payments_address, payments_breaker, obskit.registry())?,
    };
    let app = Router::new()
        .route("/orders", axum::routing::post(create_order))
        .route("/orders/{id}", get(get_order))
        .route_layer(orders_limit)
        .route("/slow", get(slow))
        .route("/fail", get(fail))
        .with_state(state)
        .route(
            "/payments/settings",
            get(payments_settings).put(change_payments_settings),
        )
        .layer(Extension(behaviour));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        metrics = %format!("http://{address}/metrics"),
        ready = %format!("http://{address}/health/ready"),
        %inventory,
        payments = %payments_address,
        "demo service listening"
    );
    log_trace_destination(&obskit.config().tracing);
    health.mark_started();
    let report = obskit.serve(listener, app).await?;
    tracing::info!(drained = report.drained, "demo service stopped");
    Ok(())
}

/// Logs where finished spans go, so an operator can see at start whether tracing is on.
fn log_trace_destination(tracing_config: &obskit::config::TracingConfig) {
    use obskit::config::TraceExporter;

    let exporter = tracing_config.effective_exporter();
    match exporter {
        TraceExporter::Otlp => tracing::info!(
            trace_exporter = exporter.as_str(),
            trace_endpoint = %obskit::config::mask_url(&tracing_config.effective_endpoint()),
            "exporting spans over OTLP"
        ),
        TraceExporter::Stdout => tracing::info!(
            trace_exporter = exporter.as_str(),
            "writing spans to standard output"
        ),
        // An explicit `none` comes from OTEL_TRACES_EXPORTER, OTEL_SDK_DISABLED or the file,
        // where setting an endpoint would not turn tracing on.
        TraceExporter::None if tracing_config.exporter.is_some() => tracing::info!(
            trace_exporter = exporter.as_str(),
            "tracing is off because tracing.exporter is none (OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true)"
        ),
        TraceExporter::None => tracing::info!(
            trace_exporter = exporter.as_str(),
            "tracing is off; set OTEL_EXPORTER_OTLP_ENDPOINT to export spans"
        ),
    }
}

/// Shared state of the demo handlers.
///
/// The order store reports RED per operation and its saturation through Golden Signals, and
/// utilization, saturation (writers waiting for the lock) and errors (rejected inserts) through
/// the USE metrics.
#[derive(Clone)]
struct AppState {
    orders: Arc<RwLock<HashMap<u64, Order>>>,
    next_id: Arc<AtomicU64>,
    pending_writes: Arc<AtomicU64>,
    golden: GoldenSignals<1>,
    usage: UseMetrics,
    inventory: InventoryClient,
    payments: Payments,
}

impl AppState {
    /// Publishes how full the store is and how many writers wait for it.
    fn report_store(&self, len: usize) {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a ratio of two counts below 2^52"
        )]
        let utilization = len as f64 / MAX_ORDERS as f64;
        let waiting = self.pending_writes.load(Ordering::Relaxed);
        // The ratio is within 0..=1 because inserts stop at MAX_ORDERS.
        let _ = self.golden.set_saturation(STORE, utilization);
        let _ = self.usage.set_utilization(STORE, utilization);
        self.golden.set_queue_depth("order_store_writes", waiting);
        #[allow(clippy::cast_precision_loss, reason = "a small count")]
        self.usage.set_saturation(STORE, waiting as f64);
    }
}

#[derive(Debug, Clone, Serialize)]
struct Order {
    id: u64,
    item: String,
    quantity: u32,
    /// The payment that paid for the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_id: Option<u64>,
}

/// Response of `GET /orders/{id}`: the order and the units of its item in stock.
#[derive(Debug, Serialize)]
struct OrderWithStock {
    #[serde(flatten)]
    order: Order,
    in_stock: u64,
}

#[derive(Debug, Deserialize)]
struct NewOrder {
    item: String,
    quantity: u32,
    /// Contact address of the customer; logged, and so redacted in the log line.
    #[serde(default)]
    customer_email: Option<String>,
}

async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    baggage: Option<Extension<Baggage>>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "order id must be a positive integer",
        );
    };
    let started = std::time::Instant::now();
    let order = state.orders.read().await.get(&id).cloned();
    state
        .golden
        .observe(&["get"], started.elapsed().as_secs_f64(), false);
    let Some(order) = order else {
        tracing::info!(order_id = id, "order not found");
        return problem(StatusCode::NOT_FOUND, "order not found");
    };

    // The middleware stores the caller's baggage in the request, and the lookup forwards it.
    let baggage = baggage
        .map(|Extension(baggage)| baggage)
        .unwrap_or_default();
    match state.inventory.stock(&order.item, &baggage).await {
        Ok(stock) => Json(OrderWithStock {
            order,
            in_stock: stock.in_stock,
        })
        .into_response(),
        Err(error) => {
            tracing::warn!(order_id = id, %error, "inventory lookup failed");
            problem(StatusCode::BAD_GATEWAY, &inventory_failure(&error))
        }
    }
}

/// Returns the detail of the 502 response: what failed, without the internal URL.
fn inventory_failure(error: &LookupError) -> String {
    match error {
        LookupError::TimedOut { timeout, .. } => {
            format!("inventory service did not respond within {timeout:?}")
        }
        _ => "inventory service is unavailable".to_owned(),
    }
}

async fn create_order(State(state): State<AppState>, Json(new): Json<NewOrder>) -> Response {
    if new.quantity == 0 || new.item.trim().is_empty() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "item must not be empty and quantity must be at least 1",
        );
    }

    let payment = match state.payments.pay().await {
        Ok(payment) => payment,
        Err(error) => return payment_failure(&error),
    };

    let started = std::time::Instant::now();
    state.pending_writes.fetch_add(1, Ordering::Relaxed);
    let mut orders = state.orders.write().await;
    state.pending_writes.fetch_sub(1, Ordering::Relaxed);
    if orders.len() >= MAX_ORDERS {
        let len = orders.len();
        drop(orders);
        state
            .golden
            .observe(&["insert"], started.elapsed().as_secs_f64(), true);
        state.usage.inc_errors(STORE);
        state.report_store(len);
        tracing::warn!(
            max_orders = MAX_ORDERS,
            "order store is full, rejecting the order"
        );
        return problem(StatusCode::SERVICE_UNAVAILABLE, "order store is full");
    }

    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let order = Order {
        id,
        item: new.item,
        quantity: new.quantity,
        payment_id: Some(payment.payment_id),
    };
    orders.insert(id, order.clone());
    let len = orders.len();
    drop(orders);

    state
        .golden
        .observe(&["insert"], started.elapsed().as_secs_f64(), false);
    state.report_store(len);
    tracing::info!(
        order_id = id,
        item = %order.item,
        quantity = order.quantity,
        customer.email = new.customer_email.as_deref(),
        "order created"
    );
    (StatusCode::CREATED, Json(order)).into_response()
}

#[derive(Debug, Deserialize)]
struct SlowQuery {
    ms: Option<u64>,
}

async fn slow(Query(query): Query<SlowQuery>) -> Response {
    let ms = query.ms.unwrap_or(500);
    if ms > MAX_SLOW_MS {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("ms={ms} is too long; use at most {MAX_SLOW_MS}"),
        );
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(serde_json::json!({ "slept_ms": ms })).into_response()
}

#[derive(Debug, Deserialize)]
struct FailQuery {
    status: Option<u16>,
}

async fn fail(Query(query): Query<FailQuery>) -> Response {
    let code = query.status.unwrap_or(500);
    match StatusCode::from_u16(code) {
        Ok(status) if status.is_client_error() || status.is_server_error() => {
            tracing::warn!(status = code, "failing on request");
            problem(status, "failure requested")
        }
        _ => problem(
            StatusCode::BAD_REQUEST,
            &format!("status={code} is not an error status; use 400 to 599"),
        ),
    }
}

/// Builds the response to an order whose payment failed: 503 with `Retry-After` while the payments breaker is
/// open, 503 when every payment slot is busy, 504 when the payments server was too slow and
/// 502 when it failed.
fn payment_failure(error: &obskit::resilience::Error<PaymentError>) -> Response {
    use obskit::resilience::Error;

    tracing::warn!(%error, "payment failed, order not created");
    let (status, detail) = match error {
        Error::NotPermitted { .. } | Error::BulkheadFull { .. } | Error::RateLimited { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "payments are unavailable; retry later".to_owned(),
        ),
        Error::Timeout { timeout, .. } => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("payments server did not respond within {timeout:?}"),
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "payments server failed the payment".to_owned(),
        ),
    };
    let mut response = problem(status, &detail);
    if let Some(wait) = error.retry_after() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(seconds.max(1)),
        );
    }
    response
}

/// `GET /payments/settings`: the payments server's failure rate and latency.
async fn payments_settings(Extension(behaviour): Extension<Arc<Behaviour>>) -> Json<Settings> {
    Json(behaviour.get())
}

/// `PUT /payments/settings`: changes the payments server's failure rate and latency.
async fn change_payments_settings(
    Extension(behaviour): Extension<Arc<Behaviour>>,
    Json(settings): Json<Settings>,
) -> Response {
    match settings.validate() {
        Ok(settings) => {
            behaviour.set(settings);
            tracing::info!(
                failure_rate = settings.failure_rate,
                latency_ms = settings.latency_ms,
                "payments server behaviour changed"
            );
            Json(settings).into_response()
        }
        Err(detail) => problem(StatusCode::UNPROCESSABLE_ENTITY, &detail),
    }
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "status": status.as_u16(), "detail": detail })),
    )
        .into_response()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]
mod tests {
    use super::*;

    #[test]
    fn shipped_slo_file_matches_built_in_slos() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/obskit.toml");
        let config = obskit::Config::builder()
            .env(false)
            .file(path)
            .build()
            .unwrap();
        let set = config.slo.definitions().unwrap();
        let from_file: std::collections::BTreeMap<String, obskit::slo::SloSpec> = set
            .definitions()
            .iter()
            .map(|definition| (definition.name.clone(), definition.to_spec()))
            .collect();
        assert_eq!(from_file, demo_slos().unwrap());
        set.check_routes(ROUTES).unwrap();
        assert_eq!(set.definitions().len(), 2);
    }

    fn state_with_inventory(address: std::net::SocketAddr) -> AppState {
        let registry = obskit::metrics::Registry::default();
        AppState {
            orders: Arc::new(RwLock::new(HashMap::new())),
            next_id: Arc::new(AtomicU64::new(1)),
            pending_writes: Arc::new(AtomicU64::new(0)),
            golden: GoldenSignals::register(&registry, "demo_orders", ["operation"]).unwrap(),
            usage: UseMetrics::register(&registry, "demo_resource").unwrap(),
            inventory: InventoryClient::new(address),
            payments: Payments::new(
                address,
                obskit::resilience::CircuitBreaker::builder("payments")
                    .registry(&registry)
                    .build()
                    .unwrap(),
                &registry,
            )
            .unwrap(),
        }
    }

    /// Gets order 1 with the inventory service at `inventory`, expects 502 and returns the
    /// problem body.
    async fn bad_gateway_problem(inventory: std::net::SocketAddr) -> serde_json::Value {
        let state = state_with_inventory(inventory);
        let order = Order {
            id: 1,
            item: "book".to_owned(),
            quantity: 1,
            payment_id: None,
        };
        state.orders.write().await.insert(1, order);

        let response = get_order(State(state), Path("1".to_owned()), None).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn get_order_responds_502_without_inventory() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);

        let problem = bad_gateway_problem(closed).await;
        assert_eq!(problem["detail"], "inventory service is unavailable");
        assert!(
            !problem["detail"].as_str().unwrap().contains("127.0.0.1"),
            "internal address leaked: {problem}"
        );
    }

    #[tokio::test]
    async fn get_order_responds_502_on_inventory_timeout() {
        // A listener that accepts and never responds.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let mut streams = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                streams.push(stream);
            }
        });

        let problem = bad_gateway_problem(silent).await;
        accepting.abort();
        assert_eq!(
            problem["detail"],
            format!(
                "inventory service did not respond within {:?}",
                crate::inventory::LOOKUP_TIMEOUT
            )
        );
    }
}
