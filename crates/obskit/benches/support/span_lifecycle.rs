//! The span lifecycle that the tracing benchmarks measure, shared so they measure the same one.

/// Runs the measured lifecycle: create with two fields, enter, record a third field, exit and
/// drop.
pub(crate) fn lifecycle() {
    let span = tracing::info_span!(
        "request",
        http.request.method = "GET",
        url.path = "/orders/42",
        http.response.status_code = tracing::field::Empty,
    );
    let entered = span.enter();
    span.record("http.response.status_code", 200);
    drop(entered);
    drop(span);
}
