//! JSON string escaping and scalar encoding into a byte buffer.

use std::cell::Cell;
use std::fmt;

/// Escape action per byte: 0 copies it, `u` writes `\u00XX`, any other value is the letter after
/// a backslash.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where an index out of bounds fails the build"
)]
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Returns the lowercase hex digit of the low four bits of `nibble`.
fn hex_digit(nibble: u8) -> u8 {
    let nibble = nibble & 0xf;
    if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    }
}

/// Returns the escape action for `byte`.
fn escape_action(byte: u8) -> u8 {
    // A u8 index is always within the 256 entries.
    ESCAPE.get(usize::from(byte)).copied().unwrap_or(0)
}

/// Appends `value` escaped for use inside a JSON string, without the surrounding quotes.
///
/// Control characters become `\n`, `\r`, `\t`, `\b`, `\f` or `\u00XX`; `"` and `\` are
/// backslash-escaped; all other characters, including non-ASCII ones, are copied as UTF-8.
pub(crate) fn escape_into(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }

    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let action = escape_action(byte);
        if action == 0 {
            continue;
        }
        if let Some(unescaped) = bytes.get(start..index) {
            out.extend_from_slice(unescaped);
        }
        if action == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                hex_digit(byte >> 4),
                hex_digit(byte),
            ]);
        } else {
            out.extend_from_slice(&[b'\\', action]);
        }
        start = index + 1;
    }
    if let Some(rest) = bytes.get(start..) {
        out.extend_from_slice(rest);
    }
}

/// Number of sets in the per-thread cache of static strings that need no escaping. Each set
/// contains two strings.
const PLAIN_SETS: usize = 64;

thread_local! {
    /// Address and length of static strings (field names, targets) found to need no escaping,
    /// in a two-way set-associative cache indexed by address.
    static PLAIN: [[Cell<(usize, usize)>; 2]; PLAIN_SETS] =
        const { [const { [const { Cell::new((0, 0)) }; 2] }; PLAIN_SETS] };
}

/// Appends a static string escaped, as [`escape_into`], remembering per thread which such
/// strings need no escaping so that field names and targets are scanned once, not per event.
pub(crate) fn escape_static_into(out: &mut Vec<u8>, value: &'static str) {
    let key = (value.as_ptr().addr(), value.len());
    // Fibonacci hashing picks the set from the top bits of the address times 2^64 / phi, so
    // strings laid out next to each other spread over the cache.
    let set = (key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) % PLAIN_SETS;
    let known_plain = PLAIN
        .try_with(|sets| {
            sets.get(set)
                .is_some_and(|[first, second]| first.get() == key || second.get() == key)
        })
        .unwrap_or(false);
    if known_plain {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    if needs_escape(value.as_bytes()) {
        escape_into(out, value);
        return;
    }
    out.extend_from_slice(value.as_bytes());
    // The newest string goes first and the older one moves to the second way.
    let _ = PLAIN.try_with(|sets| {
        if let Some([first, second]) = sets.get(set) {
            second.set(first.replace(key));
        }
    });
}

/// Tells whether any byte of `bytes` needs escaping, eight bytes at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let word = <[u8; 8]>::try_from(chunk).unwrap_or_default();
        if word_needs_escape(u64::from_le_bytes(word)) {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&byte| escape_action(byte) != 0)
}

/// Tells whether any of the 8 bytes in `word` is below 0x20, `"` or `\`.
///
/// Uses the "has zero byte" and "has byte less than n" bit tricks from Sean Eron Anderson's
/// *Bit Twiddling Hacks*; both are exact for the question "is there any such byte".
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let has_quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let has_backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    (below_space | has_quote | has_backslash) != 0
}

/// Appends `value` as a quoted JSON string.
pub(crate) fn write_string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    escape_into(out, value);
    out.push(b'"');
}

/// Appends a `Debug` or `Display` rendering as a quoted JSON string, escaping as it is written.
pub(crate) fn write_display(out: &mut Vec<u8>, value: fmt::Arguments<'_>) {
    out.push(b'"');
    write_escaped_fmt(out, value);
    out.push(b'"');
}

/// Appends formatted text escaped for a JSON string, without the quotes.
pub(crate) fn write_escaped_fmt(out: &mut Vec<u8>, value: fmt::Arguments<'_>) {
    if let Some(text) = value.as_str() {
        escape_into(out, text);
        return;
    }
    // Writing into a Vec cannot fail, so an error comes from a faulty `Debug` or `Display` impl.
    // The text written up to that point is kept.
    let _ = fmt::Write::write_fmt(&mut EscapingWriter(out), value);
}

/// Appends a float; NaN and infinities are not JSON numbers and become the strings
/// `"NaN"`, `"inf"` and `"-inf"`.
pub(crate) fn write_f64(out: &mut Vec<u8>, value: f64) {
    if let Some(thousandths) = exact_thousandths(value) {
        write_thousandths(out, value.is_sign_negative(), thousandths);
    } else if value.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    } else if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value > 0.0 {
        out.extend_from_slice(b"\"inf\"");
    } else {
        out.extend_from_slice(b"\"-inf\"");
    }
}

/// Returns `|value| * 1000` when `value` is exactly the nearest `f64` to a multiple of 0.001 below
/// 10^12, such as a duration in milliseconds with microsecond resolution.
///
/// Below 10^12 the `f64` spacing is under 0.001, so no shorter decimal maps to the same `f64`, and
/// the thousandths written by [`write_thousandths`] are exactly what `ryu` would write.
fn exact_thousandths(value: f64) -> Option<u64> {
    let scaled = (value * 1000.0).abs();
    if scaled.is_nan() || scaled >= 1e15 {
        return None;
    }
    // The cast truncates, so converting back shows whether `scaled` was whole. Below 10^15
    // both conversions are exact for whole numbers.
    let thousandths = scaled as u64;
    (thousandths as f64 == scaled && thousandths as f64 / 1000.0 == value.abs())
        .then_some(thousandths)
}

/// Writes `thousandths / 1000` as `ryu` does: at least one fractional digit, trailing zeros
/// removed.
fn write_thousandths(out: &mut Vec<u8>, negative: bool, thousandths: u64) {
    if negative {
        out.push(b'-');
    }
    write_integer(out, thousandths / 1000);
    out.push(b'.');
    let fraction = thousandths % 1000;
    let digits = [
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ];
    let kept = if fraction.is_multiple_of(100) {
        1
    } else if fraction.is_multiple_of(10) {
        2
    } else {
        3
    };
    out.extend_from_slice(digits.get(..kept).unwrap_or(&digits));
}

/// Appends an integer.
pub(crate) fn write_integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Maximum input length, in bytes, that [`write_hex`] converts on the stack: a W3C trace id.
const STACK_HEX_BYTES: usize = 16;

/// Appends `bytes` as lowercase hexadecimal, inside quotes.
///
/// Ids of up to 16 bytes are converted on the stack and appended with one copy, instead of
/// pushing each digit with its own capacity check.
pub(crate) fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut quoted = [b'"'; 2 * STACK_HEX_BYTES + 2];
    let len = 2 * bytes.len() + 2;
    match (quoted.get_mut(1..len - 1), bytes.len() <= STACK_HEX_BYTES) {
        (Some(digits), true) => {
            for (pair, &byte) in digits.chunks_exact_mut(2).zip(bytes) {
                if let [high, low] = pair {
                    *high = hex_digit(byte >> 4);
                    *low = hex_digit(byte);
                }
            }
            out.extend_from_slice(quoted.get(..len).unwrap_or_default());
        }
        _ => {
            out.push(b'"');
            for &byte in bytes {
                out.push(hex_digit(byte >> 4));
                out.push(hex_digit(byte));
            }
            out.push(b'"');
        }
    }
}

/// A `fmt::Write` sink that escapes everything written to it for a JSON string.
pub(crate) struct EscapingWriter<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for EscapingWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_into(self.0, text);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = Vec::new();
        write_string(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn static_strings_escape_like_others_when_cached() {
        const NAMES: [&str; 4] = ["request_id", "say \"hi\"", "line\nbreak", "http.route"];
        for _ in 0..2 {
            for name in NAMES {
                let mut cached = Vec::new();
                escape_static_into(&mut cached, name);
                let mut plain = Vec::new();
                escape_into(&mut plain, name);
                assert_eq!(cached, plain, "{name:?}");
            }
        }
    }

    #[test]
    fn floats_match_ryu() {
        let mut values = vec![
            0.0,
            -0.0,
            0.001,
            0.01,
            0.1,
            1.0,
            12.5,
            99.5,
            0.012,
            1.234,
            -3.25,
            1e11,
            999_999_999_999.999,
            1e12,
            1e15,
            1e16,
            1e-7,
            0.1 + 0.2,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            f64::MAX,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let micros = state >> 24;
            values.push(micros as f64 / 1000.0);
            values.push((micros % 10_000_000) as f64 / 1000.0);
            values.push(f64::from_bits(state));
        }
        for value in values.into_iter().filter(|value| value.is_finite()) {
            let mut out = Vec::new();
            write_f64(&mut out, value);
            let expected = ryu::Buffer::new().format_finite(value).to_owned();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{value:e}");
        }
    }

    #[test]
    fn plain_text_is_copied() {
        assert_eq!(escaped("hello world"), r#""hello world""#);
    }

    #[test]
    fn quotes_and_backslashes() {
        assert_eq!(escaped(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
    }

    #[test]
    fn short_control_escapes() {
        assert_eq!(escaped("a\nb\rc\td\u{8}e\u{c}"), r#""a\nb\rc\td\be\f""#);
    }

    #[test]
    fn other_control_chars_as_unicode() {
        assert_eq!(escaped("\u{0}\u{1}\u{1f}"), r#""\u0000\u0001\u001f""#);
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(escaped("grüße 日本 🦀 \u{7f}"), "\"grüße 日本 🦀 \u{7f}\"");
    }

    #[test]
    fn every_string_round_trips_through_serde_json() {
        let all_ascii: String = (0u8..128).map(char::from).collect();
        for value in [all_ascii.as_str(), "\"\\\"", "end\\", "\u{2028}\u{2029}"] {
            let json = escaped(value);
            let parsed: String = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed, value);
        }
    }

    #[test]
    fn escapes_found_at_every_offset() {
        // Places each special byte at every position of a 20-byte string, so the 8-byte scan
        // meets it in every lane and in the tail.
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
            for position in 0..20 {
                let mut value: String = "abcdefghijklmnopqrst".to_owned();
                value.replace_range(position..position + 1, &special.to_string());
                let json = escaped(&value);
                let parsed: String = serde_json::from_str(&json).unwrap();
                assert_eq!(parsed, value);
                assert_eq!(json.len(), value.len() + 2 + escaped_len(special) - 1);
            }
        }
    }

    fn escaped_len(special: char) -> usize {
        if special < ' ' && !matches!(special, '\n' | '\r' | '\t' | '\u{8}' | '\u{c}') {
            6
        } else {
            2
        }
    }

    #[test]
    fn word_scan_matches_byte_table() {
        for byte in 0u8..=255 {
            let word = u64::from_le_bytes([b'a', b'b', byte, b'c', b'd', b'e', b'f', b'g']);
            assert_eq!(
                word_needs_escape(word),
                ESCAPE[usize::from(byte)] != 0,
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn formatted_text_is_escaped() {
        let mut out = Vec::new();
        write_display(&mut out, format_args!("{:?}", "q\""));
        assert_eq!(String::from_utf8(out).unwrap(), r#""\"q\\\"\"""#);
    }

    #[test]
    fn floats() {
        let mut out = Vec::new();
        for value in [
            1.5,
            -0.25,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            write_f64(&mut out, value);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"1.5 -0.25 1e300 "NaN" "inf" "-inf" "#
        );
    }

    #[test]
    fn wide_integers() {
        let mut out = Vec::new();
        write_integer(&mut out, u128::MAX);
        out.push(b' ');
        write_integer(&mut out, i128::MIN);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{} {}", u128::MAX, i128::MIN)
        );
    }

    #[test]
    fn hex() {
        let mut out = Vec::new();
        write_hex(&mut out, &[0x00, 0xab, 0x0f, 0xf0]);
        assert_eq!(out, b"\"00ab0ff0\"");
    }

    #[test]
    fn hex_of_every_length() {
        for len in 0..=40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut out = b"x".to_vec();
            write_hex(&mut out, &bytes);
            let expected: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(String::from_utf8(out).unwrap(), format!("x\"{expected}\""));
        }
    }
}
