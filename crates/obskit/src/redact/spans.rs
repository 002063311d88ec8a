//! Redaction of finished spans before export: name, attributes, events and status.

use std::borrow::Cow;

use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;

use super::{FieldAction, Redactor};

/// Redacts the name, attributes, events, link attributes and status description of `span`.
pub fn redact_span(redactor: &Redactor, span: &mut SpanData) {
    if !redactor.is_enabled() {
        return;
    }
    redact_name(redactor, &mut span.name);
    redact_attributes(redactor, &mut span.attributes);
    for event in &mut span.events.events {
        redact_name(redactor, &mut event.name);
        redact_attributes(redactor, &mut event.attributes);
    }
    for link in &mut span.links.links {
        redact_attributes(redactor, &mut link.attributes);
    }
    if let Status::Error { description } = &mut span.status
        && let Cow::Owned(redacted) = redactor.redact(description)
    {
        *description = Cow::Owned(redacted);
    }
}

fn redact_name(redactor: &Redactor, name: &mut Cow<'static, str>) {
    if let Cow::Owned(redacted) = redactor.redact(name) {
        *name = Cow::Owned(redacted);
    }
}

/// Redacts each attribute's value by its key and, for strings and long integers, by content.
pub fn redact_attributes(redactor: &Redactor, attributes: &mut [KeyValue]) {
    for attribute in attributes {
        match redactor.field_action(attribute.key.as_str()) {
            FieldAction::Keep => {}
            FieldAction::Replace => {
                let text = attribute.value.as_str();
                let mut out = String::new();
                let _ = redactor.write_field_replacement(&text, &mut out);
                attribute.value = Value::from(out);
            }
            FieldAction::Scan => redact_value(redactor, &mut attribute.value),
        }
    }
}

fn redact_value(redactor: &Redactor, value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(redacted) = redact_string(redactor, text) {
                *text = redacted;
            }
        }
        Value::I64(number) => {
            if let Some(redacted) = redactor.redact_integer(i128::from(*number)) {
                *value = Value::from(redacted);
            }
        }
        Value::Array(Array::String(items)) => {
            for item in items {
                if let Some(redacted) = redact_string(redactor, item) {
                    *item = redacted;
                }
            }
        }
        _ => {}
    }
}

fn redact_string(redactor: &Redactor, text: &StringValue) -> Option<StringValue> {
    match redactor.redact(text.as_str()) {
        Cow::Borrowed(_) => None,
        Cow::Owned(redacted) => Some(StringValue::from(redacted)),
    }
}
