//! Redaction of a line that contains one JSON document, keeping its layout.

use std::fmt::{self, Write as _};
use std::ops::RangeInclusive;

use super::{FieldAction, Redactor};

/// Maximum nesting of objects and arrays that [`Redactor::redact_json_line`] accepts. A line
/// nested deeper is not redacted as JSON.
pub const MAX_JSON_DEPTH: usize = 128;

/// Digit counts of a JSON integer that is scanned as a possible payment card number.
const CARD_DIGITS: RangeInclusive<usize> = 13..=19;

/// The line is not one JSON object or array, or is nested deeper than [`MAX_JSON_DEPTH`].
#[derive(Debug)]
struct NotJson;

impl From<fmt::Error> for NotJson {
    fn from(_: fmt::Error) -> Self {
        Self
    }
}

impl Redactor {
    /// Writes `line`, one JSON object or array, to `out` with its sensitive values replaced,
    /// and returns the number of values replaced.
    ///
    /// The output keeps the layout of the input: key order, whitespace and the text of every
    /// number and string that is not replaced. Values are redacted by these rules:
    ///
    /// - A member whose key is sensitive ([`FieldAction::Replace`]) has its whole value,
    ///   whatever its type, replaced by a JSON string such as `"[REDACTED:field]"`.
    /// - A member whose key is allowed ([`FieldAction::Keep`]) is copied as it is, nested
    ///   values included.
    /// - Every other string, object keys included, is decoded, scanned like text with
    ///   [`redact_to`](Self::redact_to) and written back escaped when something was replaced.
    /// - An integer of 13 to 19 digits is scanned too, because card numbers are often stored
    ///   as numbers, and becomes a JSON string when it is replaced.
    /// - Nested objects and arrays follow the same rules.
    ///
    /// Returns `None` and writes nothing when `line`, without surrounding whitespace, is not
    /// one valid JSON object or array, or nests deeper than [`MAX_JSON_DEPTH`]; scan such a
    /// line as text instead. Nothing is counted for it either.
    ///
    /// # Example
    ///
    /// ```
    /// use obskit::redact::Redactor;
    ///
    /// let redactor = Redactor::default();
    /// let line = r#"{"user": "jane@example.com", "password": 1234, "id": 4111111111111111, "n": 1.50}"#;
    /// let mut out = String::new();
    /// assert_eq!(redactor.redact_json_line(line, &mut out), Some(3));
    /// assert_eq!(
    ///     out,
    ///     r#"{"user": "[REDACTED:email]", "password": "[REDACTED:field]", "id": "[REDACTED:card]", "n": 1.50}"#
    /// );
    /// assert_eq!(redactor.redact_json_line("password=hunter2", &mut out), None);
    /// ```
    ///
    /// # Limitations
    ///
    /// - A replaced string is re-escaped with the shortest escapes, so `\/` becomes `/` and
    ///   `\u00e9` becomes `é` in that string. An unpaired surrogate escape such as `\ud800`
    ///   becomes U+FFFD there. Strings that keep their value are copied byte for byte.
    /// - Duplicate keys are kept as they are; each is redacted by its own name.
    pub fn redact_json_line(&self, line: &str, out: &mut String) -> Option<usize> {
        let bytes = line.as_bytes();
        let start = skip_whitespace(bytes, 0);
        if !matches!(bytes.get(start), Some(b'{' | b'[')) {
            return None;
        }
        // Checking the whole line first means a malformed line counts no redactions before
        // its caller scans it again as text.
        let end = skip_value(bytes, start, 0).ok()?;
        if skip_whitespace(bytes, end) != bytes.len() {
            return None;
        }

        let mark = out.len();
        let mut writer = Writer {
            redactor: self,
            line,
            out,
            decoded: String::new(),
            scratch: String::new(),
            replaced: 0,
        };
        writer.copy(0, start);
        match writer.value(start) {
            Ok(end) => {
                writer.copy(end, line.len());
                Some(writer.replaced)
            }
            Err(NotJson) => {
                out.truncate(mark);
                None
            }
        }
    }
}

/// Writes a checked JSON document redacted.
struct Writer<'a> {
    redactor: &'a Redactor,
    line: &'a str,
    out: &'a mut String,
    /// The decoded text of the current string, when it has escapes.
    decoded: String,
    /// The redacted text of the current value.
    scratch: String,
    replaced: usize,
}

impl Writer<'_> {
    fn bytes(&self) -> &[u8] {
        self.line.as_bytes()
    }

    fn copy(&mut self, start: usize, end: usize) {
        self.out
            .push_str(self.line.get(start..end).unwrap_or_default());
    }

    /// Copies the whitespace at `index` and returns the index after it.
    fn whitespace(&mut self, index: usize) -> usize {
        let end = skip_whitespace(self.bytes(), index);
        self.copy(index, end);
        end
    }

    /// Writes the value at `index`, scanned, and returns the index after it.
    fn value(&mut self, index: usize) -> Result<usize, NotJson> {
        match byte_at(self.bytes(), index) {
            b'{' => self.object(index),
            b'[' => self.array(index),
            b'"' => self.string(index),
            b'-' | b'0'..=b'9' => self.number(index),
            _ => {
                let end = skip_value(self.bytes(), index, 0)?;
                self.copy(index, end);
                Ok(end)
            }
        }
    }

    fn object(&mut self, open: usize) -> Result<usize, NotJson> {
        self.out.push('{');
        let mut index = self.whitespace(open + 1);
        if byte_at(self.bytes(), index) == b'}' {
            self.out.push('}');
            return Ok(index + 1);
        }
        loop {
            let (key_end, escaped) = skip_string(self.bytes(), index)?;
            let key = text_of(self.line, &mut self.decoded, index, key_end, escaped);
            let action = self.redactor.field_action(key);
            self.write_scanned_string(index, key_end, escaped)?;

            index = self.whitespace(key_end);
            expect(self.bytes(), index, b':')?;
            self.out.push(':');
            index = self.whitespace(index + 1);

            index = match action {
                FieldAction::Scan => self.value(index)?,
                FieldAction::Keep => {
                    let end = skip_value(self.bytes(), index, 0)?;
                    self.copy(index, end);
                    end
                }
                FieldAction::Replace => self.replace(index)?,
            };

            index = self.whitespace(index);
            match byte_at(self.bytes(), index) {
                b',' => {
                    self.out.push(',');
                    index = self.whitespace(index + 1);
                }
                b'}' => {
                    self.out.push('}');
                    return Ok(index + 1);
                }
                _ => return Err(NotJson),
            }
        }
    }

    fn array(&mut self, open: usize) -> Result<usize, NotJson> {
        self.out.push('[');
        let mut index = self.whitespace(open + 1);
        if byte_at(self.bytes(), index) == b']' {
            self.out.push(']');
            return Ok(index + 1);
        }
        loop {
            index = self.value(index)?;
            index = self.whitespace(index);
            match byte_at(self.bytes(), index) {
                b',' => {
                    self.out.push(',');
                    index = self.whitespace(index + 1);
                }
                b']' => {
                    self.out.push(']');
                    return Ok(index + 1);
                }
                _ => return Err(NotJson),
            }
        }
    }

    fn string(&mut self, open: usize) -> Result<usize, NotJson> {
        let (end, escaped) = skip_string(self.bytes(), open)?;
        self.write_scanned_string(open, end, escaped)?;
        Ok(end)
    }

    /// Writes the string from `open` to `end` scanned: as it is when nothing is found,
    /// otherwise redacted and escaped again.
    fn write_scanned_string(
        &mut self,
        open: usize,
        end: usize,
        escaped: bool,
    ) -> Result<(), NotJson> {
        let Writer {
            redactor,
            line,
            decoded,
            scratch,
            ..
        } = self;
        let text = text_of(line, decoded, open, end, escaped);
        scratch.clear();
        let found = redactor.redact_to(text, scratch)?;
        if found == 0 {
            self.copy(open, end);
        } else {
            self.replaced += found;
            write_quoted(&self.scratch, self.out);
        }
        Ok(())
    }

    /// Writes an integer of card length scanned, as a string when something was replaced.
    fn number(&mut self, start: usize) -> Result<usize, NotJson> {
        let end = skip_number(self.bytes(), start)?;
        let raw = self.line.get(start..end).unwrap_or_default();
        let card_like = CARD_DIGITS.contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit());
        if !card_like {
            self.copy(start, end);
            return Ok(end);
        }
        self.scratch.clear();
        let found = self.redactor.redact_to(raw, &mut self.scratch)?;
        if found == 0 {
            self.copy(start, end);
        } else {
            self.replaced += found;
            write_quoted(&self.scratch, self.out);
        }
        Ok(end)
    }

    /// Writes the replacement of the whole value at `start`, a member of a sensitive key.
    fn replace(&mut self, start: usize) -> Result<usize, NotJson> {
        let end = skip_value(self.bytes(), start, 0)?;
        // A string is hashed by its decoded text, as the same value in a text line would be.
        let value = if byte_at(self.bytes(), start) == b'"' {
            let (_, escaped) = skip_string(self.bytes(), start)?;
            text_of(self.line, &mut self.decoded, start, end, escaped).to_owned()
        } else {
            self.line.get(start..end).unwrap_or_default().to_owned()
        };
        self.scratch.clear();
        self.redactor
            .write_field_replacement(&value, &mut self.scratch)?;
        self.replaced += 1;
        write_quoted(&self.scratch, self.out);
        Ok(end)
    }
}

/// Returns the text of the checked string from quote `open` to `end` in `line`, decoded into
/// `decoded` when it has escapes.
fn text_of<'a>(
    line: &'a str,
    decoded: &'a mut String,
    open: usize,
    end: usize,
    escaped: bool,
) -> &'a str {
    let raw = line
        .get(open + 1..end.saturating_sub(1))
        .unwrap_or_default();
    if escaped {
        decode(raw, decoded);
        decoded
    } else {
        raw
    }
}

fn byte_at(bytes: &[u8], index: usize) -> u8 {
    bytes.get(index).copied().unwrap_or(0)
}

fn expect(bytes: &[u8], index: usize, byte: u8) -> Result<(), NotJson> {
    if byte_at(bytes, index) == byte {
        Ok(())
    } else {
        Err(NotJson)
    }
}

fn skip_whitespace(bytes: &[u8], mut index: usize) -> usize {
    while matches!(byte_at(bytes, index), b' ' | b'\t' | b'\n' | b'\r') {
        index += 1;
    }
    index
}

/// Checks the value at `index` and returns the index after it. `depth` counts the objects and
/// arrays around it.
fn skip_value(bytes: &[u8], index: usize, depth: usize) -> Result<usize, NotJson> {
    match byte_at(bytes, index) {
        b'{' => skip_container(bytes, index, depth + 1, b'}', true),
        b'[' => skip_container(bytes, index, depth + 1, b']', false),
        b'"' => skip_string(bytes, index).map(|(end, _)| end),
        b'-' | b'0'..=b'9' => skip_number(bytes, index),
        b't' => skip_literal(bytes, index, b"true"),
        b'f' => skip_literal(bytes, index, b"false"),
        b'n' => skip_literal(bytes, index, b"null"),
        _ => Err(NotJson),
    }
}

/// Checks an object (`members`) or an array from its opening bracket to `close`.
fn skip_container(
    bytes: &[u8],
    open: usize,
    depth: usize,
    close: u8,
    members: bool,
) -> Result<usize, NotJson> {
    if depth > MAX_JSON_DEPTH {
        return Err(NotJson);
    }
    let mut index = skip_whitespace(bytes, open + 1);
    if byte_at(bytes, index) == close {
        return Ok(index + 1);
    }
    loop {
        if members {
            let (key_end, _) = skip_string(bytes, index)?;
            index = skip_whitespace(bytes, key_end);
            expect(bytes, index, b':')?;
            index = skip_whitespace(bytes, index + 1);
        }
        index = skip_value(bytes, index, depth)?;
        index = skip_whitespace(bytes, index);
        match byte_at(bytes, index) {
            b',' => index = skip_whitespace(bytes, index + 1),
            byte if byte == close => return Ok(index + 1),
            _ => return Err(NotJson),
        }
    }
}

/// Checks the string whose quote is at `open` and returns the index after its closing quote
/// and whether it has escapes.
fn skip_string(bytes: &[u8], open: usize) -> Result<(usize, bool), NotJson> {
    expect(bytes, open, b'"')?;
    let mut index = open + 1;
    let mut escaped = false;
    loop {
        match bytes.get(index).copied() {
            None => return Err(NotJson),
            Some(b'"') => return Ok((index + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                index += match byte_at(bytes, index + 1) {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                    b'u' if hex4(bytes, index + 2).is_some() => 6,
                    _ => return Err(NotJson),
                };
            }
            Some(0..=0x1f) => return Err(NotJson),
            Some(_) => index += 1,
        }
    }
}

/// Checks a number by the JSON grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn skip_number(bytes: &[u8], start: usize) -> Result<usize, NotJson> {
    let digits = |from: usize| {
        let mut end = from;
        while byte_at(bytes, end).is_ascii_digit() {
            end += 1;
        }
        end
    };
    let mut index = start;
    if byte_at(bytes, index) == b'-' {
        index += 1;
    }
    index = match byte_at(bytes, index) {
        b'0' => index + 1,
        b'1'..=b'9' => digits(index),
        _ => return Err(NotJson),
    };
    if byte_at(bytes, index) == b'.' {
        let end = digits(index + 1);
        if end == index + 1 {
            return Err(NotJson);
        }
        index = end;
    }
    if matches!(byte_at(bytes, index), b'e' | b'E') {
        index += 1;
        if matches!(byte_at(bytes, index), b'+' | b'-') {
            index += 1;
        }
        let end = digits(index);
        if end == index {
            return Err(NotJson);
        }
        index = end;
    }
    Ok(index)
}

fn skip_literal(bytes: &[u8], start: usize, literal: &[u8]) -> Result<usize, NotJson> {
    let end = start + literal.len();
    if bytes.get(start..end) == Some(literal) {
        Ok(end)
    } else {
        Err(NotJson)
    }
}

/// Returns the value of the four hex digits at `index`.
fn hex4(bytes: &[u8], index: usize) -> Option<u16> {
    let digits = bytes.get(index..index + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(text, 16).ok()
}

/// Decodes the escapes of a checked string's content into `out`, replacing its text.
fn decode(raw: &str, out: &mut String) {
    out.clear();
    let bytes = raw.as_bytes();
    let mut index = 0;
    let mut run_start = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte != b'\\' {
            index += 1;
            continue;
        }
        out.push_str(raw.get(run_start..index).unwrap_or_default());
        let (decoded, length) = match byte_at(bytes, index + 1) {
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => decode_unicode(bytes, index),
            other => (char::from(other), 2),
        };
        out.push(decoded);
        index += length;
        run_start = index;
    }
    out.push_str(raw.get(run_start..).unwrap_or_default());
}

/// Decodes the `\uXXXX` escape at `index`, and a low surrogate escape after a high one, into
/// a character and the length of the escapes.
fn decode_unicode(bytes: &[u8], index: usize) -> (char, usize) {
    let Some(unit) = hex4(bytes, index + 2) else {
        return (char::REPLACEMENT_CHARACTER, 2);
    };
    if (0xD800..0xDC00).contains(&unit)
        && bytes.get(index + 6..index + 8) == Some(b"\\u")
        && let Some(low) = hex4(bytes, index + 8)
        && (0xDC00..0xE000).contains(&low)
    {
        let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
        return (
            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
            12,
        );
    }
    (
        char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER),
        6,
    )
}

/// Writes `text` as a JSON string: quoted, with `"`, `\` and control characters escaped.
fn write_quoted(text: &str, out: &mut String) {
    out.push('"');
    let mut run_start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(text.get(run_start..index).unwrap_or_default());
        if escape.is_empty() {
            // `fmt::Write` for `String` returns no error.
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        run_start = index + 1;
    }
    out.push_str(text.get(run_start..).unwrap_or_default());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RedactConfig, RuleMode, Secret};

    fn redact(redactor: &Redactor, line: &str) -> Option<(String, usize)> {
        let mut out = String::new();
        let count = redactor.redact_json_line(line, &mut out)?;
        Some((out, count))
    }

    fn redacted(line: &str) -> String {
        redact(&Redactor::default(), line)
            .map(|(out, _)| out)
            .unwrap_or_else(|| "(not JSON)".to_owned())
    }

    #[test]
    fn layout_kept_when_nothing_found() {
        let line = "  { \"a\" :1.50e+3,\n\t\"b\":[ true,false , null ,-0], \"c\":{} }  ";
        assert_eq!(
            redact(&Redactor::default(), line),
            Some((line.to_owned(), 0))
        );
    }

    #[test]
    fn string_values_scanned() {
        assert_eq!(
            redacted(r#"{"msg":"mail jane@example.com now","n":1}"#),
            r#"{"msg":"mail [REDACTED:email] now","n":1}"#
        );
    }

    #[test]
    fn sensitive_key_replaces_any_value() {
        let line = r#"{"password":{"a":[1,2]},"api_key":12,"token":null,"session":"x\"y"}"#;
        let (out, count) = redact(&Redactor::default(), line).unwrap_or_default();
        assert_eq!(
            out,
            r#"{"password":"[REDACTED:field]","api_key":"[REDACTED:field]","token":"[REDACTED:field]","session":"[REDACTED:field]"}"#
        );
        assert_eq!(count, 4);
    }

    #[test]
    fn nested_objects_follow_rules() {
        assert_eq!(
            redacted(r#"[{"user":{"Password":"p","mail":["a@example.com"]}}]"#),
            r#"[{"user":{"Password":"[REDACTED:field]","mail":["[REDACTED:email]"]}}]"#
        );
    }

    #[test]
    fn allowed_key_kept_whole() {
        let config = RedactConfig {
            allow_fields: vec!["contact".to_owned()],
            ..RedactConfig::default()
        };
        let redactor = Redactor::build(&config, None);
        let line =
            r#"{"contact":{"email":"a@example.com","password":"p"},"other":"b@example.com"}"#;
        assert_eq!(
            redact(&redactor, line),
            Some((
                r#"{"contact":{"email":"a@example.com","password":"p"},"other":"[REDACTED:email]"}"#
                    .to_owned(),
                1
            ))
        );
    }

    #[test]
    fn card_number_stored_as_number() {
        assert_eq!(
            redacted(r#"{"n":4111111111111111,"id":4111111111111112,"small":1234567890123}"#),
            r#"{"n":"[REDACTED:card]","id":4111111111111112,"small":1234567890123}"#
        );
        assert_eq!(redacted("[4111111111111111.0]"), "[4111111111111111.0]");
    }

    #[test]
    fn escaped_string_decoded_before_scan() {
        assert_eq!(
            redacted(r#"{"m":"jane\u0040example.com\n\u00e9"}"#),
            r#"{"m":"[REDACTED:email]\né"}"#
        );
        let untouched = r#"{"m":"caf\u00e9 \/ \ud83d\ude00 \ud800"}"#;
        assert_eq!(redacted(untouched), untouched);
    }

    #[test]
    fn replaced_string_reescaped() {
        assert_eq!(
            redacted(r#"{"m":"\"q\" a@example.com\t\u0001\\"}"#),
            r#"{"m":"\"q\" [REDACTED:email]\t\u0001\\"}"#
        );
    }

    #[test]
    fn keys_scanned_and_decoded_for_names() {
        assert_eq!(
            redacted(r#"{"a@example.com":1,"pass\u0077ord":"x"}"#),
            r#"{"[REDACTED:email]":1,"pass\u0077ord":"[REDACTED:field]"}"#
        );
    }

    #[test]
    fn malformed_lines_rejected_without_output() {
        let redactor = Redactor::default();
        for line in [
            "",
            "plain text a@example.com",
            "\"a@example.com\"",
            "42",
            "{",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "{a:1}",
            "[01]",
            "[1.]",
            "[\"a\u{1}\"]",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "{\"email\":\"a@example.com\"} trailing",
            "[tru]",
            "[1e]",
        ] {
            let mut out = String::from("kept");
            assert_eq!(redactor.redact_json_line(line, &mut out), None, "{line:?}");
            assert_eq!(out, "kept", "{line:?}");
        }
        assert_eq!(redactor.redactions(super::super::Kind::Email), 0);
    }

    #[test]
    fn depth_limit_enforced() {
        let at_limit = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(redact(&Redactor::default(), &at_limit).is_some());
        let deeper = format!("[{at_limit}]");
        assert_eq!(redact(&Redactor::default(), &deeper), None);
    }

    #[test]
    fn hash_mode_uses_decoded_value() {
        let mut config = RedactConfig {
            hash_key: Some(Secret::new("0123456789abcdef0123")),
            ..RedactConfig::default()
        };
        config.rules.field = RuleMode::Hash;
        let redactor = Redactor::build(&config, None);
        let plain = redact(&redactor, r#"{"password":"hunter2"}"#).unwrap_or_default();
        let escaped = redact(&redactor, r#"{"password":"hunter\u0032"}"#).unwrap_or_default();
        assert!(
            plain.0.starts_with(r#"{"password":"[REDACTED:field:"#),
            "{}",
            plain.0
        );
        assert_eq!(plain, escaped);
    }

    #[test]
    fn disabled_redactor_copies_line() {
        let line = r#"{"password":"p","m":"a@example.com"}"#;
        assert_eq!(
            redact(&Redactor::disabled(), line),
            Some((line.to_owned(), 0))
        );
    }

    #[test]
    fn count_matches_counters() {
        let redactor = Redactor::default();
        let found = redact(
            &redactor,
            r#"{"a":"x@example.com y@example.com","secret":1}"#,
        );
        assert_eq!(found.map(|(_, count)| count), Some(3));
        assert_eq!(redactor.redactions(super::super::Kind::Email), 2);
        assert_eq!(redactor.redactions(super::super::Kind::Field), 1);
    }
}
