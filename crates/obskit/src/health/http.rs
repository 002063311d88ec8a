//! Axum routes for the probe endpoints: `/health`, `/health/live`, `/health/ready`, `/health/startup`.
//!
//! Each endpoint responds with `application/health+json`, status 200 for `pass` and `warn` and 503 for
//! `fail`. Query parameters, as on the Kubernetes API server:
//!
//! - `?verbose` switches to `text/plain` with one `[+]name ok` / `[-]name failed: …` line per
//!   check and a final `readyz check passed` (or `livez`, `startupz`, `healthz`) line.
//! - `?exclude=NAME`, repeatable, skips a check without running it. Unknown names are ignored
//!   and listed in verbose output.
//!
//! `/health/live/{check}`, `/health/ready/{check}` and `/health/startup/{check}` evaluate one
//! check of that probe, without the gates, and answer 404 for a name the probe does not have.
//!
//! The endpoints need no authentication and are not rate limited, because kubelets and load
//! balancers call them. Failure messages are withheld unless `health.expose_details` is true.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{HEALTH_JSON_CONTENT_TYPE, HealthRegistry, HealthReport, Probe, VERBOSE_CONTENT_TYPE};

/// Builds the probe routes over `registry`. The router can be merged into any application router.
///
/// # Example
///
/// ```
/// # fn build(health: obskit::health::HealthRegistry) {
/// let app: axum::Router = axum::Router::new().merge(obskit::health::http::routes(health));
/// # }
/// ```
pub fn routes<S>(registry: HealthRegistry) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health", get(all))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/startup", get(startup))
        .route("/health/live/{check}", get(live_check))
        .route("/health/ready/{check}", get(ready_check))
        .route("/health/startup/{check}", get(startup_check))
        .with_state(registry)
}

async fn all(State(registry): State<HealthRegistry>, RawQuery(query): RawQuery) -> Response {
    respond(&registry, None, query.as_deref()).await
}

async fn live(State(registry): State<HealthRegistry>, RawQuery(query): RawQuery) -> Response {
    respond(&registry, Some(Probe::Liveness), query.as_deref()).await
}

async fn ready(State(registry): State<HealthRegistry>, RawQuery(query): RawQuery) -> Response {
    respond(&registry, Some(Probe::Readiness), query.as_deref()).await
}

async fn startup(State(registry): State<HealthRegistry>, RawQuery(query): RawQuery) -> Response {
    respond(&registry, Some(Probe::Startup), query.as_deref()).await
}

async fn live_check(
    State(registry): State<HealthRegistry>,
    Path(check): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    respond_check(&registry, Probe::Liveness, &check, query.as_deref()).await
}

async fn ready_check(
    State(registry): State<HealthRegistry>,
    Path(check): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    respond_check(&registry, Probe::Readiness, &check, query.as_deref()).await
}

async fn startup_check(
    State(registry): State<HealthRegistry>,
    Path(check): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    respond_check(&registry, Probe::Startup, &check, query.as_deref()).await
}

/// Evaluates one check of a probe, or responds 404 when the probe has no check of that name.
async fn respond_check(
    registry: &HealthRegistry,
    probe: Probe,
    check: &str,
    query: Option<&str>,
) -> Response {
    let query = ProbeQuery::parse(query.unwrap_or(""));
    match registry.evaluate_check(Some(probe), check).await {
        Some(report) => render(registry, &report, query.verbose),
        None => (
            StatusCode::NOT_FOUND,
            format!("no {} check named {check:?}\n", probe.endpoint_name()),
        )
            .into_response(),
    }
}

/// Evaluates a probe and renders the HTTP response.
pub(crate) async fn respond(
    registry: &HealthRegistry,
    probe: Option<Probe>,
    query: Option<&str>,
) -> Response {
    let query = ProbeQuery::parse(query.unwrap_or(""));
    let exclude: Vec<&str> = query.exclude.iter().map(String::as_str).collect();
    let report = match probe {
        Some(probe) => registry.evaluate(probe, &exclude).await,
        None => registry.evaluate_all(&exclude).await,
    };
    render(registry, &report, query.verbose)
}

fn render(registry: &HealthRegistry, report: &HealthReport, verbose: bool) -> Response {
    let status = StatusCode::from_u16(report.status.http_status_code())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (content_type, body) = if verbose {
        (VERBOSE_CONTENT_TYPE, registry.render_verbose(report))
    } else {
        (HEALTH_JSON_CONTENT_TYPE, registry.render_json(report))
    };
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// The query parameters of a probe request.
#[derive(Debug, Default, PartialEq, Eq)]
struct ProbeQuery {
    verbose: bool,
    exclude: Vec<String>,
}

impl ProbeQuery {
    /// Parses `verbose` (any value other than `false` or `0`) and repeated `exclude=NAME`.
    /// Other parameters are ignored.
    fn parse(query: &str) -> Self {
        let mut parsed = Self::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(key).as_str() {
                "verbose" => parsed.verbose = !matches!(value, "false" | "0"),
                "exclude" => {
                    let name = percent_decode(value);
                    if !name.is_empty() && !parsed.exclude.contains(&name) {
                        parsed.exclude.push(name);
                    }
                }
                _ => {}
            }
        }
        parsed
    }
}

/// Decodes `%XX` escapes and `+` as in `application/x-www-form-urlencoded`; invalid escapes stay
/// as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, escaped) {
            (_, Some(value)) => {
                decoded.push(value);
                index += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                index += 1;
            }
            (other, None) => {
                decoded.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn query_parses_verbose_and_repeated_exclude() {
        let query = ProbeQuery::parse("verbose&exclude=db&exclude=cache%3Aredis&exclude=db&x=1");
        assert!(query.verbose);
        assert_eq!(
            query.exclude,
            vec!["db".to_owned(), "cache:redis".to_owned()]
        );
    }

    #[test]
    fn query_verbose_false_is_off() {
        assert!(!ProbeQuery::parse("verbose=false").verbose);
        assert!(!ProbeQuery::parse("").verbose);
        assert!(ProbeQuery::parse("verbose=1").verbose);
    }

    #[test]
    fn percent_decode_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz+b"), "a%zz b");
        assert_eq!(percent_decode("%41"), "A");
    }
}
