//! The request span as an OpenTelemetry server span: remote parent, name and HTTP attributes.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::Request;
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;

use crate::metrics::normalize_method;
use crate::trace::bridge::{Recording, update_recording};

/// Creates the request span with `new_span` under the caller's `traceparent`, when valid, puts
/// the caller's baggage into the request extensions, and counts what was discarded.
pub(crate) fn start<B>(
    request: &mut Request<B>,
    metrics: &crate::metrics::HttpServerMetrics,
    new_span: impl FnOnce() -> tracing::Span,
) -> tracing::Span {
    let extracted = crate::trace::extract(request.headers());
    if let Some(rejection) = &extracted.rejected {
        metrics.count_rejected(rejection);
    }
    if !extracted.baggage.is_empty() {
        request.extensions_mut().insert(extracted.baggage);
    }
    match extracted.parent {
        Some(parent) => crate::trace::with_remote_parent(&parent, Some(extracted.state), new_span),
        None => new_span(),
    }
}

/// Sets the kind and request attributes of a sampled request span. [`finish`] names the span
/// once the route is known.
pub(crate) fn describe<B>(span: &tracing::Span, request: &Request<B>, client: Option<SocketAddr>) {
    update_recording(span, |recording| {
        let method = request.method().as_str();
        recording.kind = SpanKind::Server;
        // The attributes below and the three that finish adds, in one allocation. The request
        // span declares only `request_id`, `http.request.method` and `http.route`, so the others
        // are new and skip the search for an earlier value.
        recording.attributes.reserve(12);
        let known = normalize_method(method);
        recording.set_attribute("http.request.method", Value::from(known));
        if known != method {
            recording.push_attribute(
                "http.request.method_original",
                Value::from(method.to_owned()),
            );
        }
        let uri = request.uri();
        recording.push_attribute("url.path", Value::from(uri.path().to_owned()));
        // Only absolute-form request targets carry a scheme, so other requests count as HTTP.
        let scheme = match uri.scheme_str() {
            None | Some("http") => Value::from("http"),
            Some("https") => Value::from("https"),
            Some(other) => Value::from(other.to_owned()),
        };
        recording.push_attribute("url.scheme", scheme);
        if let Some(client) = client {
            recording.push_attribute("client.address", Value::from(client.ip().to_string()));
        }
        if let Some(agent) = header(request, http::header::USER_AGENT) {
            recording.push_attribute("user_agent.original", Value::from(agent.to_owned()));
        }
        set_server(recording, request);
        recording.push_attribute(
            "network.protocol.version",
            Value::from(protocol_version(request.version())),
        );
    });
}

/// Sets the final name, route, status code and status of a sampled request span, and returns
/// its ids for the duration exemplar. `body_failed` is set when the response body failed,
/// panicked or ended before its declared length.
pub(crate) fn finish(
    span: &tracing::Span,
    method: &str,
    route: &str,
    status: u16,
    body_failed: bool,
) -> Option<([u8; 16], [u8; 8])> {
    update_recording(span, |recording| {
        recording.name = span_name(method, route);
        // The span's `http.route` field carries the route: set at creation from the matched
        // path, or recorded by the layer once the response names a template.
        if route.is_empty() {
            recording.remove_attribute("http.route");
        }
        recording.push_attribute("http.response.status_code", Value::I64(i64::from(status)));
        // A 5xx makes a server span an error and a 4xx does not, because a 4xx is the client's
        // failure. A body that failed after the status was sent is the server's failure too.
        if status >= 500 {
            recording.set_error_status();
            recording.push_attribute("error.type", Value::from(status.to_string()));
        } else if body_failed {
            recording.set_error_status();
            recording.push_attribute("error.type", Value::from(BODY_ERROR_TYPE));
        }
    })
}

/// `error.type` of a server span whose response body failed after a status below 500 was sent.
/// It is a fixed identifier because the status code does not describe the failure.
const BODY_ERROR_TYPE: &str = "response_body_error";

/// Records a handler panic on a sampled request span as an `exception` event.
pub(crate) fn record_panic(span: &tracing::Span, message: &str) {
    update_recording(span, |recording| {
        let attributes = vec![
            opentelemetry::KeyValue::new("exception.type", "panic"),
            opentelemetry::KeyValue::new("exception.message", message.to_owned()),
        ];
        recording.push_event(opentelemetry::trace::Event::new(
            "exception",
            std::time::SystemTime::now(),
            attributes,
            0,
        ));
        recording.set_error_status();
    });
}

/// `{METHOD} {route}`, `{METHOD}` without a route, and `HTTP` for methods outside the known set,
/// as the HTTP semantic conventions name server spans.
fn span_name(method: &str, route: &str) -> Cow<'static, str> {
    let known = normalize_method(method);
    if known != method {
        return Cow::Borrowed("HTTP");
    }
    if route.is_empty() {
        Cow::Borrowed(known)
    } else {
        // Joined by hand: `format!` costs several times as much for three pieces of text.
        let mut name = String::with_capacity(known.len() + 1 + route.len());
        name.push_str(known);
        name.push(' ');
        name.push_str(route);
        Cow::Owned(name)
    }
}

fn header<B>(request: &Request<B>, name: http::header::HeaderName) -> Option<&str> {
    request.headers().get(name)?.to_str().ok()
}

/// `server.address` and `server.port` from the URI authority (HTTP/2) or the `Host` header.
fn set_server<B>(recording: &mut Recording, request: &Request<B>) {
    let authority = match request.uri().authority() {
        Some(authority) => Some((authority.host().to_owned(), authority.port_u16())),
        None => header(request, http::header::HOST)
            .and_then(|host| host.parse::<http::uri::Authority>().ok())
            .map(|authority| (authority.host().to_owned(), authority.port_u16())),
    };
    let Some((host, port)) = authority else {
        return;
    };
    let host = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .map_or(host.clone(), str::to_owned);
    recording.push_attribute("server.address", Value::from(host));
    let scheme_port = if request.uri().scheme_str() == Some("https") {
        443
    } else {
        80
    };
    recording.push_attribute(
        "server.port",
        Value::I64(i64::from(port.unwrap_or(scheme_port))),
    );
}

fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::span_name;

    #[test]
    fn span_names_follow_the_conventions() {
        assert_eq!(span_name("GET", "/orders/{id}"), "GET /orders/{id}");
        assert_eq!(span_name("POST", ""), "POST");
        assert_eq!(span_name("PROPFIND", "/files"), "HTTP");
    }
}
