//! Field rendering for JSON lines, and the per-span storage of pre-rendered fields.

use std::cell::RefCell;
use std::fmt;

use tracing::field::{Field, Visit};

use super::escape;
use super::keys::CallsiteKeys;
use crate::redact::{FieldAction, Redactor};

/// Tells whether `name` is a top-level key of a JSON line; such a field is written as
/// `fields.<name>`.
pub(crate) fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "timestamp"
            | "level"
            | "target"
            | "message"
            | "service"
            | "environment"
            | "version"
            | "trace_id"
            | "span_id"
    )
}

/// Writes each visited field as `,"name":value` into `out`, redacted by `redactor`.
///
/// The `message` field goes into `message` when that is set (events); otherwise it is an
/// ordinary, and reserved, field name (spans). The name of each field written is pushed onto
/// `entries` with the offset in `out` where its entry starts.
pub(crate) struct FieldWriter<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) message: Option<&'a mut Vec<u8>>,
    pub(crate) entries: &'a mut Vec<(&'static str, usize)>,
    /// Skip the `log.target`, `log.module_path`, `log.file` and `log.line` fields that
    /// `tracing-log` adds to events converted from `log` records. The target is written as the
    /// line's `target`; module path, file and line are not written, as for `tracing` events.
    pub(crate) skip_log_fields: bool,
    pub(crate) redactor: &'a Redactor,
    /// Fields whose values the emitter produced itself and are written unscanned.
    pub(crate) trusted: &'static [TrustedField],
    /// The rendered keys of the callsite whose fields are visited, when this thread has them.
    pub(crate) keys: Option<&'a CallsiteKeys>,
}

/// A field of one callsite whose value the emitter produced itself, so it cannot hold personal
/// data and is written without scanning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrustedField {
    pub(crate) name: &'static str,
    pub(crate) values: TrustedValues,
}

/// The values of a [`TrustedField`] that are written without scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrustedValues {
    /// Every value, such as a route template or a fixed message.
    All,
    /// The known HTTP methods of [`crate::metrics::normalize_method`]. Any other method is an
    /// extension token sent by the client and is scanned.
    KnownMethods,
}

impl TrustedValues {
    /// Tells whether a value, `text` when it is a string, is trusted. Known methods are strings,
    /// so a value of another type is trusted only by [`TrustedValues::All`].
    pub(crate) fn covers(self, text: Option<&str>) -> bool {
        match (self, text) {
            (Self::All, _) => true,
            (Self::KnownMethods, Some(text)) => crate::metrics::is_known_method(text),
            (Self::KnownMethods, None) => false,
        }
    }
}

/// Returns which values of the field `name` are trusted, by the list `trusted`.
pub(crate) fn trusted_values(trusted: &[TrustedField], name: &str) -> Option<TrustedValues> {
    trusted
        .iter()
        .find(|trusted| trusted.name == name)
        .map(|trusted| trusted.values)
}

thread_local! {
    /// Text of a `Debug` or `Display` value, formatted here to be scanned before it is written.
    static FORMATTED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `Debug` or `Display` text longer than this is not kept in [`FORMATTED`] after use.
const MAX_RETAINED_FORMATTED: usize = 16 * 1024;

impl FieldWriter<'_> {
    /// Starts the entry for `field` and returns what to do with its value, or `None` if the
    /// field is not written at all. `text` is the value of a string field.
    fn key(&mut self, field: &Field, text: Option<&str>) -> Option<FieldAction> {
        let name = field.name();
        if self.skip_log_fields && name.starts_with("log.") {
            return None;
        }
        if let Some(key) = self.keys.and_then(|keys| keys.get(field)) {
            self.entries.push((name, self.out.len()));
            key.write(self.out);
            return Some(key.action(text));
        }

        self.entries.push((name, self.out.len()));
        // `,"fields.` + name + `":` and a short value, so most fields grow the buffer at most once.
        self.out.reserve(name.len() + 32);
        self.out.extend_from_slice(b",\"");
        if is_reserved(name) {
            self.out.extend_from_slice(b"fields.");
        }
        escape::escape_static_into(self.out, name);
        self.out.extend_from_slice(b"\":");
        if self.is_trusted(field, text) {
            return Some(FieldAction::Keep);
        }
        Some(self.redactor.field_action_static(name))
    }

    /// Tells whether the value of `field`, `text` when it is a string, is written unscanned.
    fn is_trusted(&self, field: &Field, text: Option<&str>) -> bool {
        match self.keys.and_then(|keys| keys.get(field)) {
            Some(key) => key.trusts(text),
            None => {
                trusted_values(self.trusted, field.name()).is_some_and(|values| values.covers(text))
            }
        }
    }

    /// Returns the message buffer when `field` is the event message.
    fn message_for(&mut self, field: &Field) -> Option<&mut Vec<u8>> {
        if field.name() == "message" {
            self.message.as_deref_mut()
        } else {
            None
        }
    }

    /// Writes the replacement of a sensitive field's value as a JSON string.
    fn replacement(&mut self, value: &dyn fmt::Display) {
        self.out.push(b'"');
        let redactor = self.redactor;
        let mut writer = escape::EscapingWriter(self.out);
        if redactor.field_replacement_needs_value() {
            with_formatted(format_args!("{value}"), |text| {
                let _ = redactor.write_field_replacement(text, &mut writer);
            });
        } else {
            let _ = redactor.write_field_replacement("", &mut writer);
        }
        self.out.push(b'"');
    }

    /// Writes an integer, scanning those long enough to be a card number.
    fn integer<T: itoa::Integer + Into<i128>>(&mut self, value: T) {
        match self.redactor.redact_integer(value.into()) {
            Some(redacted) => escape::write_string(self.out, &redacted),
            None => escape::write_integer(self.out, value),
        }
    }
}

/// Formats `value` into this thread's scratch string and passes the text to `f`. A nested call
/// from a `Debug` impl that logs formats into a fresh string.
fn with_formatted(value: fmt::Arguments<'_>, f: impl FnOnce(&str)) {
    if let Some(text) = value.as_str() {
        f(text);
        return;
    }
    let mut f = Some(f);
    let _ = FORMATTED.try_with(|cell| {
        if let Ok(mut text) = cell.try_borrow_mut() {
            text.clear();
            let _ = fmt::Write::write_fmt(&mut *text, value);
            if let Some(f) = f.take() {
                f(&text);
            }
            if text.capacity() > MAX_RETAINED_FORMATTED {
                *text = String::new();
            }
        }
    });
    if let Some(f) = f.take() {
        f(&value.to_string());
    }
}

/// Writes `value` redacted and escaped, without quotes.
fn write_scanned(out: &mut Vec<u8>, redactor: &Redactor, value: &str) {
    let _ = redactor.redact_to(value, &mut escape::EscapingWriter(out));
}

/// Writes formatted text redacted and escaped, without quotes.
fn write_scanned_fmt(out: &mut Vec<u8>, redactor: &Redactor, value: fmt::Arguments<'_>) {
    with_formatted(value, |text| write_scanned(out, redactor, text));
}

impl Visit for FieldWriter<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(_) => escape::write_f64(self.out, value),
            None => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(FieldAction::Scan) => self.integer(value),
            Some(FieldAction::Keep) => escape::write_integer(self.out, value),
            None => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(FieldAction::Scan) => self.integer(value),
            Some(FieldAction::Keep) => escape::write_integer(self.out, value),
            None => {}
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(FieldAction::Scan) => self.integer(value),
            Some(FieldAction::Keep) => escape::write_integer(self.out, value),
            None => {}
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(FieldAction::Scan) => match i128::try_from(value) {
                Ok(signed) => self.integer(signed),
                Err(_) => escape::write_integer(self.out, value),
            },
            Some(FieldAction::Keep) => escape::write_integer(self.out, value),
            None => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(_) => {
                let text: &[u8] = if value { b"true" } else { b"false" };
                self.out.extend_from_slice(text);
            }
            None => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let redactor = self.redactor;
        if self.message.is_some() && field.name() == "message" {
            let trusted = self.is_trusted(field, Some(value));
            if let Some(message) = self.message.as_deref_mut() {
                message.clear();
                if trusted {
                    escape::escape_into(message, value);
                } else {
                    write_scanned(message, redactor, value);
                }
            }
            return;
        }
        match self.key(field, Some(value)) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(FieldAction::Scan) => {
                self.out.push(b'"');
                write_scanned(self.out, redactor, value);
                self.out.push(b'"');
            }
            Some(FieldAction::Keep) => escape::write_string(self.out, value),
            None => {}
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let redactor = self.redactor;
        if let Some(message) = self.message_for(field) {
            message.clear();
            write_scanned_fmt(message, redactor, format_args!("{value}"));
            return;
        }
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&value),
            Some(FieldAction::Scan) => {
                self.out.push(b'"');
                write_scanned_fmt(self.out, redactor, format_args!("{value}"));
                self.out.push(b'"');
            }
            Some(FieldAction::Keep) => escape::write_display(self.out, format_args!("{value}")),
            None => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let redactor = self.redactor;
        if let Some(message) = self.message_for(field) {
            message.clear();
            write_scanned_fmt(message, redactor, format_args!("{value:?}"));
            return;
        }
        match self.key(field, None) {
            Some(FieldAction::Replace) => self.replacement(&format_args!("{value:?}")),
            Some(FieldAction::Scan) => {
                self.out.push(b'"');
                write_scanned_fmt(self.out, redactor, format_args!("{value:?}"));
                self.out.push(b'"');
            }
            Some(FieldAction::Keep) => escape::write_display(self.out, format_args!("{value:?}")),
            None => {}
        }
    }
}

/// Fields of one span, rendered once as JSON entries when the span is created or recorded.
///
/// Stored in the span's extensions by the JSON layer. Each entry is `,"name":value`, so an
/// event copies the bytes of every entry whose name it has not written yet. The entries lie
/// back to back in `json`. `starts` contains each one's name and start offset, and an entry
/// ends where the next one starts.
#[derive(Debug, Default)]
pub(crate) struct SpanFields {
    json: Vec<u8>,
    starts: Vec<(&'static str, usize)>,
}

impl SpanFields {
    /// Renders the fields recorded by `values`, writing the values of `trusted` fields unscanned.
    /// `keys` are the callsite's rendered keys, when this thread has them.
    pub(crate) fn render(
        values: &dyn RecordFields,
        redactor: &Redactor,
        trusted: &'static [TrustedField],
        keys: Option<&CallsiteKeys>,
    ) -> Self {
        let mut fields = Self::from_spare();
        fields.append(values, redactor, trusted, keys);
        fields
    }

    /// Returns empty fields, reusing the buffers of a closed span's fields when this thread
    /// kept some.
    fn from_spare() -> Self {
        SPARE_BUFFERS
            .try_with(|spare| spare.try_borrow_mut().ok()?.pop())
            .ok()
            .flatten()
            .map_or_else(Self::default, |(json, starts)| Self { json, starts })
    }

    /// Records new values; a field recorded again replaces its earlier value.
    pub(crate) fn update(
        &mut self,
        values: &dyn RecordFields,
        redactor: &Redactor,
        trusted: &'static [TrustedField],
        keys: Option<&CallsiteKeys>,
    ) {
        let update = Self::render(values, redactor, trusted, keys);
        if update.starts.is_empty() {
            return;
        }
        let replaced = |name: &str| update.starts.iter().any(|(new, _)| *new == name);
        if !self.starts.iter().any(|(name, _)| replaced(name)) {
            self.extend_from(&update);
            return;
        }

        let mut merged = Self::default();
        for (name, bytes) in self.entries() {
            if !replaced(name) {
                merged.push_entry(name, bytes);
            }
        }
        merged.extend_from(&update);
        *self = merged;
    }

    /// Returns the entries as (field name, `,"name":value` bytes).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'static str, &[u8])> + '_ {
        let ends = self
            .starts
            .iter()
            .skip(1)
            .map(|(_, start)| *start)
            .chain(std::iter::once(self.json.len()));
        self.starts
            .iter()
            .zip(ends)
            .map(|((name, start), end)| (*name, self.json.get(*start..end).unwrap_or_default()))
    }

    /// Renders `values` straight into this span's buffers.
    fn append(
        &mut self,
        values: &dyn RecordFields,
        redactor: &Redactor,
        trusted: &'static [TrustedField],
        keys: Option<&CallsiteKeys>,
    ) {
        values.record_into(&mut FieldWriter {
            out: &mut self.json,
            message: None,
            entries: &mut self.starts,
            skip_log_fields: false,
            redactor,
            trusted,
            keys,
        });
    }

    fn extend_from(&mut self, other: &Self) {
        for (name, bytes) in other.entries() {
            self.push_entry(name, bytes);
        }
    }

    fn push_entry(&mut self, name: &'static str, bytes: &[u8]) {
        self.starts.push((name, self.json.len()));
        self.json.extend_from_slice(bytes);
    }
}

impl Drop for SpanFields {
    /// Keeps the buffers for the next span rendered on this thread, unless they are large or
    /// enough are kept already.
    fn drop(&mut self) {
        if self.json.capacity() == 0 || self.json.capacity() > MAX_SPARE_BUFFER_BYTES {
            return;
        }
        let mut json = std::mem::take(&mut self.json);
        let mut starts = std::mem::take(&mut self.starts);
        json.clear();
        starts.clear();
        let _ = SPARE_BUFFERS.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut()
                && spare.len() < MAX_SPARE_BUFFERS
            {
                spare.push((json, starts));
            }
        });
    }
}

/// Buffers of dropped [`SpanFields`], kept per thread for reuse.
type SpareBuffers = Vec<(Vec<u8>, Vec<(&'static str, usize)>)>;

/// Number of dropped [`SpanFields`] buffer pairs each thread keeps for reuse.
const MAX_SPARE_BUFFERS: usize = 64;

/// [`SpanFields`] whose rendered fields took more than this are not kept for reuse.
const MAX_SPARE_BUFFER_BYTES: usize = 1024;

thread_local! {
    static SPARE_BUFFERS: RefCell<SpareBuffers> = const { RefCell::new(Vec::new()) };
}

/// Span attributes or a span record, both of which can be visited.
pub(crate) trait RecordFields {
    fn record_into(&self, visitor: &mut dyn Visit);
}

impl RecordFields for tracing::span::Attributes<'_> {
    fn record_into(&self, visitor: &mut dyn Visit) {
        self.record(visitor);
    }
}

impl RecordFields for tracing::span::Record<'_> {
    fn record_into(&self, visitor: &mut dyn Visit) {
        self.record(visitor);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use tracing::field::Value;

    use super::*;

    /// A set of values visited in order, standing in for span attributes.
    struct Values<'a>(&'a [(&'static str, &'a dyn Value)]);

    impl RecordFields for Values<'_> {
        fn record_into(&self, visitor: &mut dyn Visit) {
            // A `Field` can only be obtained from a callsite's field set, so the test declares one.
            for (name, value) in self.0 {
                let field = test_field(name);
                value.record(&field, visitor);
            }
        }
    }

    fn test_field(name: &str) -> Field {
        struct Callsite;
        impl tracing::callsite::Callsite for Callsite {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                &META
            }
        }
        static CALLSITE: Callsite = Callsite;
        static META: tracing::Metadata<'static> = tracing::Metadata::new(
            "test",
            "test",
            tracing::Level::INFO,
            None,
            None,
            None,
            tracing::field::FieldSet::new(
                &["request_id", "attempt", "message", "ok"],
                tracing::callsite::Identifier(&CALLSITE),
            ),
            tracing::metadata::Kind::SPAN,
        );
        META.fields().field(name).unwrap()
    }

    fn joined(fields: &SpanFields) -> String {
        let bytes: Vec<u8> = fields
            .entries()
            .flat_map(|(_, bytes)| bytes.to_vec())
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    /// Top-level keys of a JSON line; a field with one of these names is written as `fields.<name>`.
    const RESERVED_KEYS: [&str; 9] = [
        "timestamp",
        "level",
        "target",
        "message",
        "service",
        "environment",
        "version",
        "trace_id",
        "span_id",
    ];

    #[test]
    fn reserved_match_agrees_with_list() {
        for key in RESERVED_KEYS {
            assert!(is_reserved(key), "{key}");
        }
        assert!(!is_reserved("request_id"));
        assert!(!is_reserved("Level"));
    }

    #[test]
    fn render_writes_entries() {
        let fields = SpanFields::render(
            &Values(&[("request_id", &"r-1"), ("attempt", &3u64)]),
            &Redactor::default(),
            &[],
            None,
        );
        assert_eq!(joined(&fields), r#","request_id":"r-1","attempt":3"#);
        let names: Vec<_> = fields.entries().map(|(name, _)| name).collect();
        assert_eq!(names, ["request_id", "attempt"]);
    }

    /// A value whose `Debug` output renders other span fields, as a span opened inside a
    /// `Debug` impl would.
    struct RendersWhileFormatted;

    impl fmt::Debug for RendersWhileFormatted {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let inner = SpanFields::render(
                &Values(&[("request_id", &"inner")]),
                &Redactor::default(),
                &[],
                None,
            );
            f.write_str(&joined(&inner))
        }
    }

    #[test]
    fn nested_render_uses_fresh_buffers() {
        let value = tracing::field::debug(RendersWhileFormatted);
        let fields = SpanFields::render(
            &Values(&[("attempt", &1u64), ("ok", &value)]),
            &Redactor::default(),
            &[],
            None,
        );
        assert_eq!(
            joined(&fields),
            r#","attempt":1,"ok":",\"request_id\":\"inner\"""#
        );
    }

    #[test]
    fn dropped_fields_are_reused_cleanly() {
        drop(SpanFields::render(
            &Values(&[("request_id", &"first-request")]),
            &Redactor::default(),
            &[],
            None,
        ));
        let fields = SpanFields::render(
            &Values(&[("attempt", &2u64)]),
            &Redactor::default(),
            &[],
            None,
        );
        assert_eq!(joined(&fields), r#","attempt":2"#);
    }

    #[test]
    fn reserved_span_field_is_prefixed() {
        let fields = SpanFields::render(
            &Values(&[("message", &"m")]),
            &Redactor::default(),
            &[],
            None,
        );
        assert_eq!(joined(&fields), r#","fields.message":"m""#);
    }

    #[test]
    fn update_appends_new_fields() {
        let mut fields = SpanFields::render(
            &Values(&[("request_id", &"r-1")]),
            &Redactor::default(),
            &[],
            None,
        );
        fields.update(&Values(&[("ok", &true)]), &Redactor::default(), &[], None);
        assert_eq!(joined(&fields), r#","request_id":"r-1","ok":true"#);
    }

    #[test]
    fn update_replaces_recorded_field() {
        let mut fields = SpanFields::render(
            &Values(&[("request_id", &"r-1"), ("attempt", &1u64)]),
            &Redactor::default(),
            &[],
            None,
        );
        fields.update(
            &Values(&[("attempt", &2u64)]),
            &Redactor::default(),
            &[],
            None,
        );
        assert_eq!(joined(&fields), r#","request_id":"r-1","attempt":2"#);
    }
}
