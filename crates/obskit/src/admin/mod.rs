//! The admin router: `/metrics` behind bearer auth and a rate limit, and the open health probes.
//!
//! | Route | Auth | Rate limit | Response |
//! |---|---|---|---|
//! | `/metrics` | bearer token when `metrics.auth_token` is set | `metrics.rate_limit` per client | Prometheus text 0.0.4 or OpenMetrics by `Accept`, gzip by `Accept-Encoding` |
//! | `/health` | none | none | every check, both gates |
//! | `/health/live` | none | none | liveness checks |
//! | `/health/ready` | none | none | readiness checks, startup and shutdown gates |
//! | `/health/startup` | none | none | startup checks, startup gate |
//! | `/health/{live,ready,startup}/{check}` | none | none | one check of that probe, no gates |
//!
//! # Example
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use obskit::admin::{self, AdminState};
//! use obskit::config::Config;
//! use obskit::health::HealthRegistry;
//! use obskit::metrics::Registry;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::default();
//! let registry = Registry::default();
//! let health = HealthRegistry::new(&config.health, &config.service, &registry)?;
//! let state = AdminState::new(registry, health.clone(), &config.metrics, &config.admin)?;
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9090").await?;
//! let app: axum::Router = admin::router(state);
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! # Metrics
//!
//! | Family | Type | Meaning |
//! |---|---|---|
//! | `obskit_scrape_duration_seconds` | histogram | time to encode and compress one `/metrics` response |
//! | `obskit_metrics_auth_failures_total{reason}` | counter | rejected requests, `reason` = `missing`, `malformed` or `invalid` |
//! | `obskit_metrics_auth_lockout_rejections_total` | counter | requests rejected with 429 during a lockout |
//! | `obskit_metrics_scrapes_rate_limited_total` | counter | requests rejected with 429 by the rate limit |
//! | `obskit_admin_clients_evicted_total{table}` | counter | clients forgotten by a full table, `table` = `auth_failures` or `rate_limit` |
//!
//! A client is locked out for `admin.auth_lockout` after `admin.max_auth_failures` failed
//! authentications within the same length of time; 0 failures disables the lockout. The rate
//! limit admits `metrics.rate_limit` scrapes per second per client with a burst of
//! `max(1, ceil(rate))`.
//!
//! # Client identity
//!
//! The lockout and the rate limit key clients by the peer address from
//! [`axum::extract::ConnectInfo<SocketAddr>`], so serve the router with
//! `into_make_service_with_connect_info::<SocketAddr>()`. IPv6 clients are keyed by /64 prefix.
//!
//! # Limitations
//!
//! - Without `ConnectInfo`, all clients share one key: one client's failures lock out everyone.
//! - Behind a reverse proxy, every client has the proxy's address, with the same effect.
//!   `X-Forwarded-For` is not trusted because any client can set it.
//! - At most `admin.max_tracked_clients` clients are tracked per table. When more addresses
//!   appear, the oldest are forgotten (counted in `obskit_admin_clients_evicted_total`), so an
//!   attacker with very many source addresses can reset a lockout.

#![cfg(feature = "http")]

mod auth;
mod metrics_endpoint;
mod rate_limit;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

pub use auth::MAX_TOKEN_LEN;

use crate::config::{AdminConfig, MetricsConfig};
use crate::health::HealthRegistry;
use crate::metrics::{MetricsError, Registry};
use auth::{AuthLockout, BearerAuth, LockoutLog};
use rate_limit::ClientRateLimiter;

/// Bucket bounds of `obskit_scrape_duration_seconds`, from 0.5 ms to 2.5 s.
const SCRAPE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Errors from building the admin state.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The configured bearer token cannot be used.
    #[error(
        "invalid metrics.auth_token: {reason}; use 1 to 4096 printable ASCII characters without spaces"
    )]
    InvalidToken {
        /// Reason the token is invalid, never the token itself.
        reason: &'static str,
    },
    /// `metrics.auth_token_file` could not be read.
    #[error("reading metrics.auth_token_file {path:?} failed: {message}")]
    TokenFile {
        /// The file path.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// `metrics.rate_limit` is negative, not finite or above one scrape per nanosecond.
    #[error(
        "invalid metrics.rate_limit {value}: use scrapes per second per client from 0 to 1e9 (0 disables the limit)"
    )]
    InvalidRateLimit {
        /// The configured value.
        value: f64,
    },
    /// Registering the admin metric families failed.
    #[error("registering admin metrics failed: {message}")]
    Metrics {
        /// The registry error.
        message: String,
    },
}

impl From<MetricsError> for AdminError {
    fn from(error: MetricsError) -> Self {
        Self::Metrics {
            message: error.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

/// Metric families of the admin endpoints.
struct AdminMetrics {
    scrape_duration: Histogram,
    auth_failures: Family<ReasonLabels, Counter>,
    auth_lockout_rejections: Counter,
    scrapes_rate_limited: Counter,
    clients_evicted: Family<TableLabels, Counter>,
}

impl AdminMetrics {
    fn new() -> Self {
        let metrics = Self {
            scrape_duration: Histogram::new(SCRAPE_BUCKETS),
            auth_failures: Family::default(),
            auth_lockout_rejections: Counter::default(),
            scrapes_rate_limited: Counter::default(),
            clients_evicted: Family::default(),
        };
        // Create every reason so the counters are exported at 0 before the first failure.
        for reason in ["missing", "malformed", "invalid"] {
            metrics.auth_failure(reason);
        }
        metrics
    }

    fn register(&self, registry: &Registry) -> Result<(), AdminError> {
        let metrics = self;
        registry.register(
            "obskit_scrape_duration_seconds",
            "Time to encode and compress one /metrics response.",
            metrics.scrape_duration.clone(),
        )?;
        registry.register(
            "obskit_metrics_auth_failures",
            "Rejected /metrics requests by authentication failure: missing, malformed or invalid token.",
            metrics.auth_failures.clone(),
        )?;
        registry.register(
            "obskit_metrics_auth_lockout_rejections",
            "/metrics requests rejected with 429 because the client is locked out after failed authentications.",
            metrics.auth_lockout_rejections.clone(),
        )?;
        registry.register(
            "obskit_metrics_scrapes_rate_limited",
            "/metrics requests rejected with 429 by the per-client rate limit.",
            metrics.scrapes_rate_limited.clone(),
        )?;
        registry.register(
            "obskit_admin_clients_evicted",
            "Clients forgotten because a tracking table reached admin.max_tracked_clients.",
            metrics.clients_evicted.clone(),
        )?;
        Ok(())
    }

    fn auth_failure(&self, reason: &'static str) -> Counter {
        self.auth_failures
            .get_or_create_owned(&ReasonLabels { reason })
    }

    fn evictions(&self, table: &'static str) -> Counter {
        self.clients_evicted
            .get_or_create_owned(&TableLabels { table })
    }
}

/// Everything the admin routes share.
struct AdminShared {
    registry: Registry,
    auth: Option<BearerAuth>,
    lockout: AuthLockout,
    lockout_duration: Duration,
    lockout_log: LockoutLog,
    rate_limiter: Option<ClientRateLimiter>,
    metrics: AdminMetrics,
}

/// State of the admin router: the metric registry, the health registry and the endpoint security.
/// Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    shared: Arc<AdminShared>,
    health: HealthRegistry,
    #[cfg(feature = "resilience")]
    resilience: Option<crate::resilience::Resilience>,
    slo: Option<Arc<crate::slo::SloRegistry>>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("auth", &self.shared.auth.is_some())
            .field("rate_limit", &self.shared.rate_limiter.is_some())
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// Builds the admin state and registers the admin metric families in `registry`.
    ///
    /// The bearer token is `metrics.auth_token`, or else the content of
    /// `metrics.auth_token_file` with surrounding whitespace removed.
    ///
    /// # Errors
    ///
    /// [`AdminError::InvalidToken`], [`AdminError::TokenFile`] and
    /// [`AdminError::InvalidRateLimit`] for unusable settings, and [`AdminError::Metrics`] when
    /// the admin metric families are already registered.
    pub fn new(
        registry: Registry,
        health: HealthRegistry,
        metrics: &MetricsConfig,
        admin: &AdminConfig,
    ) -> Result<Self, AdminError> {
        let auth = match (&metrics.auth_token, &metrics.auth_token_file) {
            (Some(token), _) => Some(BearerAuth::new(token.expose())?),
            (None, Some(path)) => {
                let token =
                    std::fs::read_to_string(path).map_err(|error| AdminError::TokenFile {
                        path: path.clone(),
                        message: error.to_string(),
                    })?;
                Some(BearerAuth::new(token.trim())?)
            }
            (None, None) => None,
        };
        let admin_metrics = AdminMetrics::new();
        let lockout = AuthLockout::new(
            admin.max_auth_failures,
            admin.auth_lockout,
            admin.max_tracked_clients,
            admin_metrics.evictions("auth_failures"),
        );
        let rate_limiter = ClientRateLimiter::new(
            metrics.rate_limit,
            admin.max_tracked_clients,
            admin_metrics.evictions("rate_limit"),
        )?;
        // Registered last, so that invalid settings leave the registry unchanged.
        admin_metrics.register(&registry)?;
        Ok(Self {
            shared: Arc::new(AdminShared {
                registry,
                auth,
                lockout,
                lockout_duration: admin.auth_lockout,
                lockout_log: LockoutLog::default(),
                rate_limiter,
                metrics: admin_metrics,
            }),
            health,
            #[cfg(feature = "resilience")]
            resilience: None,
            slo: None,
        })
    }

    /// The health registry served under `/health`.
    pub fn health(&self) -> &HealthRegistry {
        &self.health
    }

    /// Serves the status of every SLO as JSON on `/slo`, behind the same security as
    /// `/metrics`.
    #[must_use]
    pub fn with_slo(mut self, slos: Arc<crate::slo::SloRegistry>) -> Self {
        self.slo = Some(slos);
        self
    }

    /// Serves `resilience`'s snapshot as JSON on `/resilience`, behind the same security as
    /// `/metrics`.
    #[cfg(feature = "resilience")]
    #[must_use]
    pub fn with_resilience(mut self, resilience: crate::resilience::Resilience) -> Self {
        self.resilience = Some(resilience);
        self
    }
}

/// Builds the admin router. It has no state of its own left to provide, so it can be merged
/// into an application router of any state type or served on its own listener.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so the lockout and the
/// rate limit can tell clients apart; see the module docs.
pub fn router<S>(state: AdminState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let routes = crate::health::http::routes(state.health);
    #[cfg(feature = "resilience")]
    let routes = match state.resilience {
        Some(resilience) => routes.merge(
            Router::new()
                .route("/resilience", get(metrics_endpoint::resilience))
                .with_state((Arc::clone(&state.shared), resilience)),
        ),
        None => routes,
    };
    let routes = match state.slo {
        Some(slos) => routes.merge(
            Router::new()
                .route("/slo", get(metrics_endpoint::slo))
                .with_state((Arc::clone(&state.shared), slos)),
        ),
        None => routes,
    };
    let metrics = Router::new()
        .route("/metrics", get(metrics_endpoint::handle))
        .with_state(state.shared);
    routes.merge(metrics)
}
