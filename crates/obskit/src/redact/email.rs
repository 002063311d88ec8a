//! The email address detector, run at each `@`.

use super::kind::Kind;
use super::text::{at, has_at, run_end};

fn is_local(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-'
}

/// Finds an email address around the `@` at `at_sign`; the local part starts no earlier than
/// `floor`.
pub(crate) fn detect(bytes: &[u8], at_sign: usize, floor: usize) -> Option<(usize, usize, Kind)> {
    detect_around(bytes, at_sign, at_sign + 1, floor)
}

/// Finds a URL-encoded email address around the `%40` at `percent`, as in a query string
/// (`?email=jane%40example.com`); the local part starts no earlier than `floor`.
pub(crate) fn detect_encoded(
    bytes: &[u8],
    percent: usize,
    floor: usize,
) -> Option<(usize, usize, Kind)> {
    if !has_at(bytes, percent, b"%40") {
        return None;
    }
    detect_around(bytes, percent, percent + 3, floor)
}

/// Finds an email address whose local part ends at `at_sign` and whose domain starts at
/// `domain`.
fn detect_around(
    bytes: &[u8],
    at_sign: usize,
    domain: usize,
    floor: usize,
) -> Option<(usize, usize, Kind)> {
    // The local part also ends after an earlier `%40`, so that each scan back stops where the
    // previous one started and a long run of `%40%40…` is scanned once, not once per `%40`.
    let mut start = at_sign;
    while start > floor
        && is_local(at(bytes, start - 1))
        && !(start >= 3 && has_at(bytes, start - 3, b"%40"))
    {
        start -= 1;
    }
    while start < at_sign && at(bytes, start) == b'.' {
        start += 1;
    }
    if start == at_sign || at(bytes, at_sign - 1) == b'.' {
        return None;
    }

    let mut labels = 0;
    let mut index = domain;
    let mut end = index;
    let mut last_label = (index, index);
    loop {
        let label_end = run_end(bytes, index, is_label);
        if label_end == index || at(bytes, index) == b'-' || at(bytes, label_end - 1) == b'-' {
            break;
        }
        labels += 1;
        end = label_end;
        last_label = (index, label_end);
        if at(bytes, label_end) == b'.' && is_label(at(bytes, label_end + 1)) {
            index = label_end + 1;
        } else {
            break;
        }
    }
    let mut tld = bytes.get(last_label.0..last_label.1).unwrap_or_default();
    if !tld.starts_with(b"xn--") && tld.contains(&b'-') {
        // Top-level domains have no dash outside punycode (`xn--`), so `a@b.com-----BEGIN`
        // ends after `com`. Otherwise the `-----BEGIN` line of a key replaced later would
        // join the domain on the first pass only, and a second pass would differ.
        let letters = run_end(bytes, last_label.0, |b| b.is_ascii_alphabetic());
        if at(bytes, letters) == b'-' {
            end = letters;
            tld = bytes.get(last_label.0..letters).unwrap_or_default();
        }
    }
    let tld_ok =
        tld.len() >= 2 && (tld.iter().all(u8::is_ascii_alphabetic) || tld.starts_with(b"xn--"));
    (labels >= 2 && tld_ok && !matches!(at(bytes, end), b'_' | b'@')).then_some((
        start,
        end,
        Kind::Email,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(text: &str) -> Option<&str> {
        let at_sign = text.find('@')?;
        detect(text.as_bytes(), at_sign, 0).map(|(s, e, _)| &text[s..e])
    }

    #[test]
    fn addresses() {
        assert_eq!(
            matched("mail jane.doe+tag@example.co.uk."),
            Some("jane.doe+tag@example.co.uk")
        );
        assert_eq!(matched("<a@b.io>"), Some("a@b.io"));
        assert_eq!(matched("user@localhost"), None);
        assert_eq!(matched("@example.com"), None);
        assert_eq!(matched("name@host.123"), None);
        assert_eq!(matched("v1.2@3.4"), None);
        assert_eq!(
            matched("a@example.com-----BEGIN"),
            Some("a@example.com"),
            "a top-level domain ends before a dash"
        );
        assert_eq!(matched("a@shop.xn--p1ai"), Some("a@shop.xn--p1ai"));
        assert_eq!(matched("a@my-host.example"), Some("a@my-host.example"));
    }

    fn matched_encoded(text: &str) -> Option<&str> {
        let percent = text.find("%40")?;
        detect_encoded(text.as_bytes(), percent, 0).map(|(s, e, _)| &text[s..e])
    }

    #[test]
    fn url_encoded_addresses() {
        assert_eq!(
            matched_encoded("/cb?email=jane.doe%2Btag%40example.com&x=1"),
            Some("jane.doe%2Btag%40example.com")
        );
        assert_eq!(
            matched_encoded("email=JANE%40EXAMPLE.COM"),
            Some("JANE%40EXAMPLE.COM")
        );
        assert_eq!(matched_encoded("q=%40example.com"), None);
        assert_eq!(matched_encoded("q=user%40localhost"), None);
        assert_eq!(matched_encoded("q=100%4012"), None);
    }
}
