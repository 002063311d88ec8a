//! The `/metrics` handler: lockout, rate limit, bearer auth, format negotiation and gzip.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

use super::AdminShared;
use super::auth::AuthOutcome;
use crate::keyed::ClientKey;
use crate::metrics::Format;

/// `WWW-Authenticate` challenge sent with 401 responses.
const BEARER_CHALLENGE: &str = "Bearer realm=\"metrics\"";

/// Serves one scrape.
pub(crate) async fn handle(State(shared): State<Arc<AdminShared>>, request: Request) -> Response {
    if let Some(rejected) = rejection(&shared, &request) {
        return rejected;
    }
    encode(&shared, request.headers())
}

/// Serves the resilience snapshot as JSON, behind the same lockout, rate limit and bearer
/// authentication as `/metrics`.
#[cfg(feature = "resilience")]
pub(crate) async fn resilience(
    State((shared, resilience)): State<(Arc<AdminShared>, crate::resilience::Resilience)>,
    request: Request,
) -> Response {
    if let Some(rejected) = rejection(&shared, &request) {
        return rejected;
    }
    let mut response = axum::Json(resilience.snapshot()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves the status of every SLO as JSON, behind the same lockout, rate limit and bearer
/// authentication as `/metrics`.
pub(crate) async fn slo(
    State((shared, slos)): State<(Arc<AdminShared>, Arc<crate::slo::SloRegistry>)>,
    request: Request,
) -> Response {
    if let Some(rejected) = rejection(&shared, &request) {
        return rejected;
    }
    let body = serde_json::json!({ "slos": slos.statuses() });
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Applies the lockout, the rate limit and bearer authentication to one request of an admin
/// route, returning the response to send when it does not pass.
fn rejection(shared: &AdminShared, request: &Request) -> Option<Response> {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(ClientKey::unknown, |info| ClientKey::from_ip(info.0.ip()));
    let headers = request.headers();
    let now = Instant::now();

    if let Some(remaining) = shared.lockout.remaining(client, now) {
        shared.metrics.auth_lockout_rejections.inc();
        return Some(too_many_requests(
            remaining,
            "too many failed authentications; retry later",
        ));
    }
    if let Some(limiter) = &shared.rate_limiter
        && let Err(wait) = limiter.check(client)
    {
        shared.metrics.scrapes_rate_limited.inc();
        return Some(too_many_requests(
            wait,
            "scrape rate limit exceeded; retry later",
        ));
    }
    if let Some(auth) = &shared.auth {
        let outcome = auth.verify(headers.get(header::AUTHORIZATION));
        if outcome == AuthOutcome::Authorized {
            shared.lockout.record_success(client);
        } else {
            return Some(reject(shared, client, outcome, now));
        }
    }
    None
}

fn reject(shared: &AdminShared, client: ClientKey, outcome: AuthOutcome, now: Instant) -> Response {
    shared.metrics.auth_failure(outcome.reason()).inc();
    if shared.lockout.record_failure(client, now)
        && let Some(suppressed) = shared.lockout_log.admit(now)
    {
        tracing::warn!(
            target: "obskit::admin",
            client = %client,
            lockout = ?shared.lockout_duration,
            earlier_lockouts_not_logged = suppressed,
            "client locked out of /metrics after repeated authentication failures"
        );
    }

    if outcome == AuthOutcome::Invalid {
        return (StatusCode::FORBIDDEN, "invalid bearer token\n").into_response();
    }
    let message = if outcome == AuthOutcome::Missing {
        "missing Authorization header; send \"Authorization: Bearer <token>\"\n"
    } else {
        "malformed Authorization header; expected \"Bearer <token>\"\n"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(BEARER_CHALLENGE),
        )],
        message,
    )
        .into_response()
}

fn encode(shared: &AdminShared, headers: &HeaderMap) -> Response {
    let started = Instant::now();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::from_accept(accept);
    let text = match shared.registry.encode(format) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(target: "obskit::admin", %error, "encoding metrics failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response();
        }
    };

    let accept_encoding = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok());
    let gzip = accepts_gzip(accept_encoding);
    let body = if gzip {
        gzip_bytes(text.as_bytes())
    } else {
        Ok(text.into_bytes())
    };
    let mut response = match body {
        Ok(body) => Response::new(Body::from(body)),
        Err(error) => {
            tracing::error!(target: "obskit::admin", %error, "compressing metrics failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "compressing metrics failed\n",
            )
                .into_response();
        }
    };

    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response_headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    shared
        .metrics
        .scrape_duration
        .observe(started.elapsed().as_secs_f64());
    response
}

fn too_many_requests(wait: Duration, message: &'static str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))],
        message,
    )
        .into_response()
}

fn gzip_bytes(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 4), Compression::fast());
    encoder.write_all(text)?;
    encoder.finish()
}

/// Returns whether an `Accept-Encoding` header allows gzip: `gzip` or `x-gzip` with a non-zero quality,
/// or `*` with a non-zero quality when gzip is not listed.
fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(accept_encoding) = accept_encoding else {
        return false;
    };
    let mut gzip = None;
    let mut wildcard = None;
    for (coding, quality) in parse_quality_list(accept_encoding) {
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(quality);
        } else if coding == "*" {
            wildcard = Some(quality);
        }
    }
    gzip.or(wildcard).is_some_and(|quality| quality > 0.0)
}

/// Splits a header such as `a;q=0.5, b` into values with their quality (default 1.0; an
/// unparsable `q` counts as 0).
fn parse_quality_list(header: &str) -> impl Iterator<Item = (&str, f32)> {
    header.split(',').filter_map(|element| {
        let mut parts = element.split(';');
        let value = parts.next()?.trim();
        if value.is_empty() {
            return None;
        }
        let quality = parts
            .filter_map(|parameter| parameter.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0));
        Some((value, quality))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_cases() {
        let prometheus_3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
            application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;\
            escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        let cases = [
            (None, Format::PrometheusText),
            (Some(""), Format::PrometheusText),
            (Some("*/*"), Format::PrometheusText),
            (Some("text/plain;version=0.0.4"), Format::PrometheusText),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (Some(prometheus_3), Format::OpenMetrics),
            (
                Some("application/openmetrics-text;q=0,text/plain"),
                Format::PrometheusText,
            ),
            (
                Some("application/openmetrics-text;q=0.2,text/plain;q=0.9"),
                Format::PrometheusText,
            ),
            (Some("application/json"), Format::PrometheusText),
        ];
        for (accept, expected) in cases {
            assert_eq!(Format::from_accept(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn gzip_cases() {
        let cases = [
            (None, false),
            (Some("gzip"), true),
            (Some("deflate, gzip;q=0.5"), true),
            (Some("gzip;q=0"), false),
            (Some("gzip;q=0.000"), false),
            (Some("*"), true),
            (Some("*;q=0"), false),
            (Some("gzip;q=0, *"), false),
            (Some("identity"), false),
            (Some("br, x-gzip"), true),
        ];
        for (accept_encoding, expected) in cases {
            assert_eq!(
                accepts_gzip(accept_encoding),
                expected,
                "{accept_encoding:?}"
            );
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        let response = too_many_requests(Duration::from_millis(1200), "slow down");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = too_many_requests(Duration::from_millis(10), "slow down");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
