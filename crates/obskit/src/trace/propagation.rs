//! Extraction of W3C trace context and baggage from HTTP headers, and injection into them.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::baggage::{Baggage, BaggageDrops};
use super::traceparent::{TraceParent, TraceParentError};
use super::tracestate::{TRACESTATE_PROPAGATION_LEN, TraceState, TraceStateError, trim_ows};

/// The `traceparent` header name.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header name.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// The `baggage` header name.
pub const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// The trace context and baggage of an incoming request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The caller's span, or `None` when the request starts a new trace because `traceparent`
    /// was missing or invalid.
    pub parent: Option<TraceParent>,
    /// The vendor members; empty unless `parent` is `Some` and `tracestate` was valid.
    pub state: TraceState,
    /// The baggage members that were valid and within the limits.
    pub baggage: Baggage,
    /// The discarded headers and members, or `None` when every received header was used in
    /// full.
    pub rejected: Option<Rejection>,
}

impl Extracted {
    /// Returns the `traceparent` for an outgoing call made by a new span of this request.
    ///
    /// With a valid incoming parent this is [`TraceParent::child`]: the same trace and a new
    /// random parent-id. Otherwise a new trace starts with [`TraceParent::new_root`] and the
    /// `sampled` flag set to `sample_new_trace`, so an invalid incoming value is never echoed.
    pub fn outgoing_traceparent(&self, sample_new_trace: bool) -> TraceParent {
        match &self.parent {
            Some(parent) => parent.child(),
            None => TraceParent::new_root(sample_new_trace),
        }
    }
}

/// The headers, or parts of them, that [`extract`] discarded and why.
///
/// A service counts these, for example with
/// `obskit_trace_propagation_rejected_total{header, reason}` fed by [`Rejection::counts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejection {
    /// The rule the `traceparent` broke.
    pub traceparent: Option<TraceParentError>,
    /// The reason `tracestate` was discarded.
    pub tracestate: Option<TraceStateError>,
    /// The `baggage` members dropped.
    pub baggage: BaggageDrops,
}

impl Rejection {
    /// Returns `(header, reason, count)` for every kind of discard, for a counter metric.
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, &'static str, usize)> {
        let traceparent = self
            .traceparent
            .map(|error| ("traceparent", error.reason(), 1));
        let tracestate = self
            .tracestate
            .map(|error| ("tracestate", error.reason(), 1));
        let invalid = ("baggage", "invalid_member", self.baggage.invalid);
        let over_limit = ("baggage", "over_limit", self.baggage.over_limit);
        traceparent
            .into_iter()
            .chain(tracestate)
            .chain([invalid, over_limit])
            .filter(|(_, _, count)| *count > 0)
    }

    fn is_empty(&self) -> bool {
        self.traceparent.is_none() && self.tracestate.is_none() && self.baggage.is_empty()
    }
}

/// Members that [`inject`] left out to respect the propagation limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injected {
    /// `tracestate` members removed to fit [`TRACESTATE_PROPAGATION_LEN`].
    pub tracestate_dropped: usize,
    /// `baggage` members left out to fit the member and byte limits.
    pub baggage_dropped: usize,
}

/// Reads `traceparent`, `tracestate` and `baggage` from request headers.
///
/// - Optional whitespace (spaces and tabs) around each header value is removed, as HTTP field
///   parsing does, before `traceparent` is validated.
/// - More than one `traceparent` header line makes it invalid.
/// - `tracestate` lines are combined in order. `tracestate` is parsed only when `traceparent`
///   is valid, and any invalid member discards the whole list.
/// - `baggage` lines are combined in order, independently of the trace context.
///
/// Nothing is dropped without a trace in [`Extracted::rejected`].
///
/// # Example
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use obskit::trace::{extract, inject};
///
/// let mut incoming = HeaderMap::new();
/// incoming.insert(
///     "traceparent",
///     HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
/// );
/// incoming.insert("tracestate", HeaderValue::from_static("congo=t61rcWkgMzE"));
/// incoming.insert("baggage", HeaderValue::from_static("userId=alice"));
///
/// let extracted = extract(&incoming);
/// assert!(extracted.rejected.is_none());
/// assert_eq!(extracted.baggage.get("userId"), Some("alice"));
///
/// let mut outgoing = HeaderMap::new();
/// let parent = extracted.outgoing_traceparent(true);
/// inject(&parent, &extracted.state, &extracted.baggage, &mut outgoing);
/// assert_eq!(outgoing["tracestate"], "congo=t61rcWkgMzE");
/// ```
pub fn extract(headers: &HeaderMap) -> Extracted {
    let mut rejection = Rejection::default();

    let parent = match read_traceparent(headers) {
        Ok(parent) => parent,
        Err(error) => {
            rejection.traceparent = Some(error);
            None
        }
    };

    let state_lines = || {
        headers
            .get_all(TRACESTATE)
            .iter()
            .map(|value| trim_ows(value.as_bytes()))
            .filter(|line| !line.is_empty())
    };
    let state = match (parent, state_lines().next()) {
        (_, None) => TraceState::default(),
        (Some(_), Some(_)) => TraceState::parse_lines(state_lines()).unwrap_or_else(|error| {
            rejection.tracestate = Some(error);
            TraceState::default()
        }),
        (None, Some(_)) => {
            rejection.tracestate = Some(if rejection.traceparent.is_some() {
                TraceStateError::TraceParentInvalid
            } else {
                TraceStateError::TraceParentMissing
            });
            TraceState::default()
        }
    };

    let baggage_lines = headers.get_all(BAGGAGE).iter().map(HeaderValue::as_bytes);
    let (baggage, drops) = Baggage::parse_lines(baggage_lines);
    rejection.baggage = drops;

    Extracted {
        parent,
        state,
        baggage,
        rejected: (!rejection.is_empty()).then_some(rejection),
    }
}

fn read_traceparent(headers: &HeaderMap) -> Result<Option<TraceParent>, TraceParentError> {
    let mut lines = headers.get_all(TRACEPARENT).iter();
    let Some(first) = lines.next() else {
        return Ok(None);
    };
    let extra = lines.count();
    if extra > 0 {
        return Err(TraceParentError::DuplicateHeader { count: extra + 1 });
    }
    TraceParent::parse_bytes(trim_ows(first.as_bytes())).map(Some)
}

/// Writes `traceparent`, `tracestate` and `baggage` for an outgoing request, replacing any
/// present.
///
/// `parent` must carry the span id of the span making the call, as returned by
/// [`Extracted::outgoing_traceparent`], [`TraceParent::child`] or
/// [`TraceParent::with_parent_id`]; it is written in the version `00` form. `tracestate` is
/// truncated to [`TRACESTATE_PROPAGATION_LEN`] characters and `baggage` to its limits by
/// removing whole members; an empty list removes its header. The returned [`Injected`] counts
/// the members left out.
pub fn inject(
    parent: &TraceParent,
    state: &TraceState,
    baggage: &Baggage,
    headers: &mut HeaderMap,
) -> Injected {
    let mut injected = Injected::default();

    match HeaderValue::from_bytes(&parent.encode()) {
        Ok(value) => {
            headers.insert(TRACEPARENT, value);
        }
        Err(_) => {
            // Unreachable: the encoded form is lowercase hex and dashes.
            headers.remove(TRACEPARENT);
        }
    }

    let (state_text, dropped) = state.encode_truncated(TRACESTATE_PROPAGATION_LEN);
    injected.tracestate_dropped = dropped;
    injected.tracestate_dropped += set_list_header(headers, TRACESTATE, &state_text, state.len());

    let (baggage_text, dropped) = baggage.encode_limited();
    injected.baggage_dropped = dropped;
    injected.baggage_dropped += set_list_header(headers, BAGGAGE, &baggage_text, baggage.len());

    injected
}

/// Sets or removes a list header and returns how many members were lost to an invalid value.
fn set_list_header(headers: &mut HeaderMap, name: HeaderName, text: &str, members: usize) -> usize {
    if text.is_empty() {
        headers.remove(name);
        return 0;
    }
    match HeaderValue::from_str(text) {
        Ok(value) => {
            headers.insert(name, value);
            0
        }
        Err(_) => {
            // Unreachable for lists built by this module, which encode to visible ASCII.
            headers.remove(name);
            members
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn counts_lists_each_discard() {
        let rejection = Rejection {
            traceparent: Some(TraceParentError::ZeroTraceId),
            tracestate: Some(TraceStateError::TraceParentInvalid),
            baggage: BaggageDrops {
                invalid: 2,
                over_limit: 0,
                first_error: None,
            },
        };
        let counts: Vec<_> = rejection.counts().collect();
        assert_eq!(
            counts,
            [
                ("traceparent", "zero_trace_id", 1),
                ("tracestate", "traceparent_invalid", 1),
                ("baggage", "invalid_member", 2),
            ]
        );
    }

    #[test]
    fn ows_around_traceparent_trimmed() {
        let mut headers = HeaderMap::new();
        let padded = format!(" \t{VALID}\t ");
        headers.insert(TRACEPARENT, HeaderValue::from_str(&padded).unwrap());
        let extracted = extract(&headers);
        assert_eq!(extracted.rejected, None);
        assert_eq!(
            extracted.parent.map(|parent| parent.to_string()),
            Some(VALID.to_owned())
        );
    }

    #[test]
    fn tracestate_without_traceparent_counted() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACESTATE, HeaderValue::from_static("a=1"));
        let extracted = extract(&headers);
        assert!(extracted.state.is_empty());
        assert_eq!(
            extracted
                .rejected
                .and_then(|rejection| rejection.tracestate),
            Some(TraceStateError::TraceParentMissing)
        );
    }

    #[test]
    fn inject_removes_empty_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACESTATE, HeaderValue::from_static("stale=1"));
        headers.insert(BAGGAGE, HeaderValue::from_static("stale=1"));
        let parent = TraceParent::parse(VALID).unwrap();
        let injected = inject(
            &parent,
            &TraceState::default(),
            &Baggage::default(),
            &mut headers,
        );
        assert_eq!(injected, Injected::default());
        assert!(headers.get(TRACESTATE).is_none());
        assert!(headers.get(BAGGAGE).is_none());
        assert_eq!(headers[TRACEPARENT], VALID);
    }
}
