//! The data a recording span collects from `tracing` fields and events until it closes.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use opentelemetry::trace::{Event, Link, SpanKind, Status};
use opentelemetry::{Key, KeyValue, Value};
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_log::NormalizeEvent;

/// Maximum attributes kept per span; later ones are counted in `dropped_attributes_count`.
pub const MAX_SPAN_ATTRIBUTES: usize = 128;
/// Maximum events kept per span; later ones are counted in the span's dropped event count.
pub const MAX_SPAN_EVENTS: usize = 128;
/// Maximum links kept per span; later ones are counted in the span's dropped link count.
pub const MAX_SPAN_LINKS: usize = 128;
/// Maximum attributes kept per span event.
pub const MAX_EVENT_ATTRIBUTES: usize = 128;

const OTEL_NAME: &str = "otel.name";
const OTEL_KIND: &str = "otel.kind";
const OTEL_STATUS_CODE: &str = "otel.status_code";
const OTEL_STATUS_MESSAGE: &str = "otel.status_message";

/// A status set explicitly through the `otel.status_code` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusCode {
    Unset,
    Ok,
    Error,
}

/// Name, kind, attributes, events, links and status of a span that records.
#[derive(Debug)]
pub(crate) struct Recording {
    /// Set on an unsampled root span that records only in case [`set_parent`](super::set_parent)
    /// makes it sampled: its fields are kept, its events are not.
    pub(crate) provisional: bool,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) start: SystemTime,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) dropped_attributes: u32,
    pub(crate) events: Vec<Event>,
    pub(crate) dropped_events: u32,
    pub(crate) links: Vec<Link>,
    pub(crate) dropped_links: u32,
    status_code: Option<StatusCode>,
    status_message: Option<String>,
    /// Description of the first error event.
    error: Option<String>,
}

impl Recording {
    /// Starts recording a span named `name` that has `fields` declared fields.
    pub(crate) fn new(name: &'static str, fields: usize, provisional: bool) -> Self {
        Self {
            provisional,
            name: Cow::Borrowed(name),
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            attributes: Vec::with_capacity(fields.min(MAX_SPAN_ATTRIBUTES)),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            links: Vec::new(),
            dropped_links: 0,
            status_code: None,
            status_message: None,
            error: None,
        }
    }

    /// Applies field values recorded through `Span::record`.
    pub(crate) fn apply(&mut self, values: FieldValues) {
        for (name, value) in values.0 {
            match value {
                FieldValue::Attribute(value) => self.set_attribute(name, value),
                FieldValue::Special(text) => self.set_special(name, text),
            }
        }
    }

    /// Records the values a span was created with.
    pub(crate) fn record_attributes(&mut self, attributes: &tracing::span::Attributes<'_>) {
        attributes.record(&mut Typed(&mut CreationVisitor(self)));
    }

    /// Sets attribute `name`, replacing an earlier value.
    pub(crate) fn set_attribute(&mut self, name: &'static str, value: Value) {
        if let Some(existing) = self
            .attributes
            .iter_mut()
            .find(|attribute| attribute.key.as_str() == name)
        {
            existing.value = value;
        } else {
            self.push_attribute(name, value);
        }
    }

    /// Adds an attribute without looking for an earlier value, as for the distinct fields of a
    /// new span.
    pub(crate) fn push_attribute(&mut self, name: &'static str, value: Value) {
        if self.attributes.len() < MAX_SPAN_ATTRIBUTES {
            self.attributes
                .push(KeyValue::new(Key::from_static_str(name), value));
        } else {
            self.dropped_attributes = self.dropped_attributes.saturating_add(1);
        }
    }

    fn set_special(&mut self, name: &'static str, text: String) {
        match name {
            OTEL_NAME => self.name = Cow::Owned(text),
            OTEL_KIND => match parse_kind(&text) {
                Some(kind) => self.kind = kind,
                // An unknown kind stays visible as an attribute instead of vanishing.
                None => self.set_attribute(name, Value::from(text)),
            },
            OTEL_STATUS_CODE => match parse_status_code(&text) {
                Some(code) => self.status_code = Some(code),
                None => self.set_attribute(name, Value::from(text)),
            },
            _ => self.status_message = Some(text),
        }
    }

    /// Removes attribute `name` if present.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn remove_attribute(&mut self, name: &str) {
        self.attributes
            .retain(|attribute| attribute.key.as_str() != name);
    }

    /// Sets status Error, as `otel.status_code = "error"` does.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn set_error_status(&mut self) {
        self.status_code = Some(StatusCode::Error);
    }

    /// Adds an event, or counts it as dropped once [`MAX_SPAN_EVENTS`] are kept.
    pub(crate) fn push_event(&mut self, event: Event) {
        if self.events.len() < MAX_SPAN_EVENTS {
            self.events.push(event);
        } else {
            self.dropped_events = self.dropped_events.saturating_add(1);
        }
    }

    /// Marks the span as failed by an event, keeping the description of the first failure.
    pub(crate) fn record_error(&mut self, description: String) {
        if self.error.is_none() {
            self.error = Some(description);
        }
    }

    /// Adds a link, or counts it as dropped once [`MAX_SPAN_LINKS`] are kept.
    pub(crate) fn push_link(&mut self, link: Link) {
        if self.links.len() < MAX_SPAN_LINKS {
            self.links.push(link);
        } else {
            self.dropped_links = self.dropped_links.saturating_add(1);
        }
    }

    /// Returns the final status: an explicit `otel.status_code` wins over error events, and
    /// `otel.status_message` wins over the description taken from the first error event.
    pub(crate) fn status(&mut self) -> Status {
        let code = match self.status_code {
            Some(code) => code,
            None if self.error.is_some() => StatusCode::Error,
            None => StatusCode::Unset,
        };
        match code {
            StatusCode::Unset => Status::Unset,
            StatusCode::Ok => Status::Ok,
            StatusCode::Error => {
                let description = self
                    .status_message
                    .take()
                    .or_else(|| self.error.take())
                    .unwrap_or_default();
                Status::error(description)
            }
        }
    }
}

fn parse_kind(text: &str) -> Option<SpanKind> {
    let kinds = [
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ];
    kinds
        .into_iter()
        .find(|(name, _)| text.eq_ignore_ascii_case(name))
        .map(|(_, kind)| kind)
}

fn parse_status_code(text: &str) -> Option<StatusCode> {
    let codes = [
        ("ok", StatusCode::Ok),
        ("error", StatusCode::Error),
        ("unset", StatusCode::Unset),
    ];
    codes
        .into_iter()
        .find(|(name, _)| text.eq_ignore_ascii_case(name))
        .map(|(_, code)| code)
}

/// One recorded span field: an attribute, or the text of an `otel.*` field the bridge interprets.
#[derive(Debug)]
enum FieldValue {
    Attribute(Value),
    Special(String),
}

/// Field values collected from `tracing` before the span's extensions are locked.
///
/// Formatting a `Debug` value runs user code that may emit events into the same span, so values
/// are collected first and applied under the lock afterwards.
#[derive(Debug, Default)]
pub(crate) struct FieldValues(Vec<(&'static str, FieldValue)>);

impl FieldSink for FieldValues {
    fn push(&mut self, field: &Field, value: Value) {
        self.0.push((field.name(), FieldValue::Attribute(value)));
    }

    fn push_text(&mut self, field: &Field, text: String) {
        let value = if is_special(field.name()) {
            FieldValue::Special(text)
        } else {
            FieldValue::Attribute(Value::from(text))
        };
        self.0.push((field.name(), value));
    }
}

fn is_special(name: &str) -> bool {
    name.starts_with("otel.")
        && matches!(
            name,
            OTEL_NAME | OTEL_KIND | OTEL_STATUS_CODE | OTEL_STATUS_MESSAGE
        )
}

/// Records creation values straight into the recording, which no lock guards yet.
struct CreationVisitor<'a>(&'a mut Recording);

impl FieldSink for CreationVisitor<'_> {
    fn push(&mut self, field: &Field, value: Value) {
        self.0.push_attribute(field.name(), value);
    }

    fn push_text(&mut self, field: &Field, text: String) {
        if is_special(field.name()) {
            self.0.set_special(field.name(), text);
        } else {
            self.0.push_attribute(field.name(), Value::from(text));
        }
    }
}

/// Takes field values converted to OpenTelemetry types; [`Typed`] feeds it from `tracing`.
trait FieldSink {
    /// Takes a typed value.
    fn push(&mut self, field: &Field, value: Value);
    /// Takes a string value, which may be a special `otel.*` field or the message.
    fn push_text(&mut self, field: &Field, text: String);
}

/// Converts each `tracing` value to its OpenTelemetry type and passes it to a [`FieldSink`].
struct Typed<'a, T>(&'a mut T);

impl<T: FieldSink> Visit for Typed<'_, T> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push(field, Value::F64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push(field, u64_value(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_text(field, value.to_owned());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.push_text(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push_text(field, format!("{value:?}"));
    }
}

/// OpenTelemetry has no unsigned integer: values above `i64::MAX` are sent as decimal strings.
fn u64_value(value: u64) -> Value {
    match i64::try_from(value) {
        Ok(signed) => Value::I64(signed),
        Err(_) => Value::from(value.to_string()),
    }
}

/// A `tracing` event turned into a span event, and the error it reports for the span's status.
#[derive(Debug)]
pub(crate) struct EventRecord {
    pub(crate) event: Event,
    /// Description for an Error status when the event has an `error` field or ERROR level.
    pub(crate) error: Option<String>,
}

/// Builds a span event from a `tracing` event.
///
/// The event name is the message, or `exception` when the event carries `exception.message` or
/// `exception.type`, or the callsite name when there is no message. Fields become attributes,
/// with `level` and `target` added; the `log.*` fields that `tracing-log` adds are skipped.
pub(crate) fn event_record(event: &tracing::Event<'_>) -> EventRecord {
    let mut visitor = EventVisitor::default();
    event.record(&mut Typed(&mut visitor));

    let normalized = event.normalized_metadata();
    let level = *event.metadata().level();
    let target: Value = match &normalized {
        Some(metadata) => Value::from(metadata.target().to_owned()),
        None => Value::from(event.metadata().target()),
    };

    let EventVisitor {
        message,
        mut attributes,
        mut dropped,
        error,
        exception,
    } = visitor;
    for (key, value) in [("level", Value::from(level.as_str())), ("target", target)] {
        if attributes.len() < MAX_EVENT_ATTRIBUTES {
            attributes.push(KeyValue::new(key, value));
        } else {
            dropped = dropped.saturating_add(1);
        }
    }

    let error = match error {
        Some(description) => Some(description),
        None if level == Level::ERROR => Some(message.clone().unwrap_or_default()),
        None => None,
    };
    let name: Cow<'static, str> = match (exception, message) {
        (true, Some(message)) => {
            push_capped(&mut attributes, &mut dropped, "message", message);
            Cow::Borrowed("exception")
        }
        (true, None) => Cow::Borrowed("exception"),
        (false, Some(message)) => Cow::Owned(message),
        (false, None) => Cow::Borrowed(event.metadata().name()),
    };
    EventRecord {
        event: Event::new(name, SystemTime::now(), attributes, dropped),
        error,
    }
}

fn push_capped(attributes: &mut Vec<KeyValue>, dropped: &mut u32, key: &'static str, text: String) {
    if attributes.len() < MAX_EVENT_ATTRIBUTES {
        attributes.push(KeyValue::new(key, text));
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

#[derive(Default)]
struct EventVisitor {
    message: Option<String>,
    attributes: Vec<KeyValue>,
    dropped: u32,
    error: Option<String>,
    exception: bool,
}

impl FieldSink for EventVisitor {
    fn push(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        if name.starts_with("exception.") {
            self.exception = true;
        }
        if name == "error" {
            self.error = Some(value.as_str().into_owned());
        }
        if self.attributes.len() < MAX_EVENT_ATTRIBUTES {
            self.attributes
                .push(KeyValue::new(Key::from_static_str(name), value));
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    fn push_text(&mut self, field: &Field, text: String) {
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.push(field, Value::from(text));
        }
    }
}

/// Collects the values of a span's fields.
pub(crate) fn field_values(values: &tracing::span::Record<'_>) -> FieldValues {
    let mut collected = FieldValues::default();
    values.record(&mut Typed(&mut collected));
    collected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_status_parse_ignoring_case() {
        assert_eq!(parse_kind("Server"), Some(SpanKind::Server));
        assert_eq!(parse_kind("CONSUMER"), Some(SpanKind::Consumer));
        assert_eq!(parse_kind("sideways"), None);
        assert_eq!(parse_status_code("Error"), Some(StatusCode::Error));
        assert_eq!(parse_status_code("ok"), Some(StatusCode::Ok));
        assert_eq!(parse_status_code("maybe"), None);
    }

    #[test]
    fn attributes_over_cap_are_counted() {
        const NAMES: [&str; 4] = ["a", "b", "c", "d"];
        let mut recording = Recording::new("capped", 0, false);
        for index in 0..MAX_SPAN_ATTRIBUTES {
            // Each attribute key must be a distinct `&'static str`, so the test leaks them.
            let name: &'static str = Box::leak(format!("key{index}").into_boxed_str());
            recording.set_attribute(name, Value::I64(1));
        }
        for name in NAMES {
            recording.set_attribute(name, Value::I64(2));
        }
        // Replacing an existing attribute is not a drop.
        recording.set_attribute("key0", Value::I64(3));

        assert_eq!(recording.attributes.len(), MAX_SPAN_ATTRIBUTES);
        assert_eq!(recording.dropped_attributes, 4);
        assert_eq!(
            recording.attributes.first().map(|kv| &kv.value),
            Some(&Value::I64(3))
        );
    }

    #[test]
    fn status_prefers_explicit_code() {
        let mut recording = Recording::new("capped", 0, false);
        recording.record_error("first".to_owned());
        recording.record_error("second".to_owned());
        assert_eq!(recording.status(), Status::error("first"));

        let mut recording = Recording::new("capped", 0, false);
        recording.record_error("failed".to_owned());
        recording.set_special(OTEL_STATUS_CODE, "ok".to_owned());
        assert_eq!(recording.status(), Status::Ok);
    }

    #[test]
    fn large_u64_becomes_a_string() {
        assert_eq!(u64_value(7), Value::I64(7));
        assert_eq!(u64_value(u64::MAX), Value::from(u64::MAX.to_string()));
    }
}
