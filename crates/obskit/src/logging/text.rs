//! The text format: tracing-subscriber's human-readable formatter behind the same writer queue,
//! with fields redacted.

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::registry::LookupSpan;

use super::writer::{Queue, QueueWriter};
use crate::redact::{FieldAction, Redactor};

/// Builds the text layer; `ansi` enables colors, meant for a terminal.
pub(crate) fn layer<S>(
    queue: Arc<Queue>,
    ansi: bool,
    redactor: Redactor,
) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(QueueWriter(queue))
        .with_ansi(ansi)
        .with_target(true)
        .fmt_fields(RedactingFields(redactor))
}

/// Formats fields as `message name=value …`, as tracing-subscriber's default does, with each
/// value redacted.
pub(crate) struct RedactingFields(Redactor);

impl<'writer> FormatFields<'writer> for RedactingFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = TextVisitor {
            writer,
            redactor: &self.0,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct TextVisitor<'a, 'writer> {
    writer: Writer<'writer>,
    redactor: &'a Redactor,
    result: fmt::Result,
    first: bool,
}

impl TextVisitor<'_, '_> {
    /// Writes one field; `quoted` values are written with `Debug` quoting, as the default
    /// formatter writes strings.
    fn write(&mut self, field: &Field, text: &str, quoted: bool) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if self.skip(name) {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let redacted = match self.redactor.field_action_static(name) {
            FieldAction::Keep => std::borrow::Cow::Borrowed(text),
            FieldAction::Scan => self.redactor.redact(text),
            FieldAction::Replace => {
                let mut out = String::new();
                let _ = self.redactor.write_field_replacement(text, &mut out);
                return self.finish(separator, name, &out, true);
            }
        };
        self.finish(separator, name, &redacted, quoted);
    }

    fn finish(&mut self, separator: &str, name: &str, value: &str, quoted: bool) {
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value}")
        } else if quoted {
            write!(self.writer, "{separator}{name}={value:?}")
        } else {
            write!(self.writer, "{separator}{name}={value}")
        };
    }

    /// Skips the `log.*` fields of converted `log` records, as the default formatter does.
    fn skip(&self, name: &str) -> bool {
        name.starts_with("log.")
    }
}

impl Visit for TextVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value, true);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, itoa::Buffer::new().format(value), false);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, itoa::Buffer::new().format(value), false);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, if value { "true" } else { "false" }, false);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, &value.to_string(), false);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"), false);
    }
}

/// Returns whether standard output is a terminal, so text output gets colors.
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Returns whether standard error is a terminal.
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
