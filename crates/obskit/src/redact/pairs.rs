//! `name=value` and `name: value` pairs in text whose name is sensitive: query parameters,
//! `Debug` output of structs, JSON objects and headers written into messages.

use super::kind::Kind;
use super::names::NameMatcher;
use super::text::{at, has_at, has_at_ignore_case, run_end};

/// Maximum length of a pair name that is looked up; longer names are not pair names.
const MAX_NAME: usize = 128;

fn is_name(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

/// Returns whether `byte` ends an unquoted value.
fn ends_value(byte: u8) -> bool {
    matches!(
        byte,
        b',' | b';' | b'&' | b')' | b'}' | b']' | b'"' | b'\'' | b'<' | b'>' | 0
    ) || byte.is_ascii_whitespace()
}

/// Authorization schemes whose credential follows the scheme word after a space.
const SCHEMES: [&[u8]; 6] = [
    b"bearer",
    b"basic",
    b"digest",
    b"token",
    b"negotiate",
    b"ntlm",
];

/// Examines the separator (`=` or `:`) at `separator`. Returns the value after it when the
/// name before it is sensitive; the name starts no earlier than `floor`.
pub(crate) fn detect(
    bytes: &[u8],
    separator: usize,
    floor: usize,
    names: &NameMatcher,
) -> Option<(usize, usize, Kind)> {
    if at(bytes, separator) == b':' && at(bytes, separator + 1) == b':' {
        return None;
    }
    let name = name_before(bytes, separator, floor)?;
    if !names.is_sensitive_bytes(name) {
        return None;
    }
    // `password => "x"` in Ruby, PHP and Perl hashes.
    let value_start = if at(bytes, separator) == b'=' && at(bytes, separator + 1) == b'>' {
        separator + 2
    } else {
        separator + 1
    };
    let (start, mut end) = value_after(bytes, value_start)?;
    if is_cookie_header(name) {
        end = cookie_list_end(bytes, end);
    }
    if end <= start || has_at(bytes, start, b"[REDACTED") {
        return None;
    }
    Some((start, end, Kind::Field))
}

/// Returns whether `name` is a `Cookie` or `Set-Cookie` header, whose value is a list of
/// `name=value` pairs joined by `; `, every one of them a credential.
fn is_cookie_header(name: &[u8]) -> bool {
    name.len() >= 6
        && name
            .get(name.len() - 6..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(b"cookie"))
}

/// Returns the end of the cookie list whose first unquoted value ends at `end`, so that
/// `Cookie: a=1; b=2` loses `b=2` too.
fn cookie_list_end(bytes: &[u8], mut end: usize) -> usize {
    while at(bytes, end) == b';' {
        let next = run_end(bytes, end + 1, |b| b == b' ');
        let value_end = run_end(bytes, next, |b| !ends_value(b));
        if value_end == next {
            break;
        }
        end = value_end;
    }
    end
}

/// Returns the name that ends before `separator`, skipping spaces and a closing quote.
fn name_before(bytes: &[u8], separator: usize, floor: usize) -> Option<&[u8]> {
    let mut end = separator;
    while end > floor && at(bytes, end - 1) == b' ' && separator - end < 4 {
        end -= 1;
    }
    if end > floor && matches!(at(bytes, end - 1), b'"' | b'\'') {
        end -= 1;
        if end > floor && at(bytes, end - 1) == b'\\' {
            end -= 1;
        }
    }
    let mut start = end;
    while start > floor && is_name(at(bytes, start - 1)) && end - start < MAX_NAME {
        start -= 1;
    }
    if start == end {
        return None;
    }
    bytes.get(start..end)
}

/// Returns the value that starts after spaces at `from`.
fn value_after(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let start = run_end(bytes, from, |b| b == b' ' || b == b'\t');
    match at(bytes, start) {
        quote @ (b'"' | b'\'') => {
            let end = closing_quote(bytes, start + 1, quote, false);
            Some((start + 1, end))
        }
        b'\\' if at(bytes, start + 1) == b'"' => {
            let end = closing_quote(bytes, start + 2, b'"', true);
            Some((start + 2, end))
        }
        b'{' | b'[' => Some((start, balanced_end(bytes, start))),
        0 => None,
        _ => {
            let word_end = run_end(bytes, start, |b| b.is_ascii_alphanumeric() || b == b'_');
            if word_end > start && matches!(at(bytes, word_end), b'(' | b'{') {
                // `Some("…")` or `Secret { … }` in `Debug` output.
                return Some((start, balanced_end(bytes, word_end)));
            }
            if word_end > start && at(bytes, word_end) == b' ' && at(bytes, word_end + 1) == b'{' {
                return Some((start, balanced_end(bytes, word_end + 1)));
            }
            let mut end = run_end(bytes, start, |b| !ends_value(b));
            let scheme = SCHEMES
                .iter()
                .any(|s| end - start == s.len() && has_at_ignore_case(bytes, start, s));
            if scheme && at(bytes, end) == b' ' {
                end = run_end(bytes, end + 1, |b| !ends_value(b));
            }
            Some((start, end))
        }
    }
}

/// Returns the index of the quote that closes a string opened before `from`, or the end of
/// the text. With `escaped`, the closing quote is `\"`.
fn closing_quote(bytes: &[u8], from: usize, quote: u8, escaped: bool) -> usize {
    let mut index = from;
    while index < bytes.len() {
        let byte = at(bytes, index);
        if escaped {
            if byte == b'\\' && at(bytes, index + 1) == quote {
                return index;
            }
            if byte == b'\\' && at(bytes, index + 1) == b'\\' {
                index += 2;
                continue;
            }
        } else if byte == b'\\' {
            index += 2;
            continue;
        } else if byte == quote {
            return index;
        }
        index += 1;
    }
    bytes.len()
}

/// Returns the end of the bracketed value opened at `open`, skipping quoted strings, or the
/// end of the text when it is not closed.
fn balanced_end(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut index = open;
    while index < bytes.len() {
        match at(bytes, index) {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index + 1;
                }
            }
            b'"' => index = closing_quote(bytes, index + 1, b'"', false),
            _ => {}
        }
        index += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FieldNames;

    fn value(text: &str) -> Option<&str> {
        let names = NameMatcher::new(&FieldNames::default(), &[]);
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(offset) = text.get(from..)?.find(['=', ':']) {
            let separator = from + offset;
            if let Some((s, e, _)) = detect(bytes, separator, 0, &names) {
                return Some(&text[s..e]);
            }
            from = separator + 1;
        }
        None
    }

    #[test]
    fn pairs_in_text() {
        assert_eq!(
            value("GET /login?user=bob&password=hunter2 HTTP/1.1"),
            Some("hunter2")
        );
        assert_eq!(value(r#"{ :password => "hunter2" }"#), Some("hunter2"));
        assert_eq!(
            value("GET /f?X-Amz-Signature=7d1f0c&X-Amz-Date=20261204"),
            Some("7d1f0c")
        );
        assert_eq!(value("api_key=abc123&x=1"), Some("abc123"));
        assert_eq!(
            value(r#"{"user":"bob","password":"hu\"nter2"}"#),
            Some(r#"hu\"nter2"#)
        );
        assert_eq!(
            value(r#"Login { user: "bob", password: "hunter2" }"#),
            Some("hunter2")
        );
        assert_eq!(
            value(r#"Login { password: Some("hunter2") }"#),
            Some(r#"Some("hunter2")"#)
        );
        assert_eq!(
            value("Authorization: Bearer abc.def"),
            Some("Bearer abc.def")
        );
        assert_eq!(
            value(r#"{"credentials":{"user":"a","pin":"1"}}"#),
            Some(r#"{"user":"a","pin":"1"}"#)
        );
        assert_eq!(value(r#"body={\"token\":\"t0k\"}"#), Some("t0k"));
        assert_eq!(
            value("Cookie: sid=abc; theme=dark; csrf=x1 next"),
            Some("sid=abc; theme=dark; csrf=x1"),
            "every cookie of the header"
        );
        assert_eq!(
            value(r#"{"cookie": "sid=abc; csrf=x1", "ua": "curl"}"#),
            Some("sid=abc; csrf=x1")
        );
        assert_eq!(value("set-cookie=a=1;"), Some("a=1"));
        assert_eq!(value("tokens_used=42 author=ann"), None);
        assert_eq!(value("password="), None);
        assert_eq!(value("std::password"), None);
    }
}
