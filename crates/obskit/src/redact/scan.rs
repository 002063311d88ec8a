//! Sixteen bytes at a time: which bytes of a block may start a match.

use wide::u8x16;

/// Length of a block.
pub(crate) const BLOCK: usize = 16;

/// Bit masks of one block, bit `i` for byte `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidates {
    /// Bytes of a word: ASCII letters, digits and `_`.
    pub(crate) word: u32,
    /// Bytes that may start a match when a word starts with them: digits, uppercase letters,
    /// `b`, `e`, `g`, `x` and, with `hex_letters`, `a` to `f`.
    pub(crate) word_start: u32,
    /// Punctuation where a match may start: `@ % : = + ( -`.
    pub(crate) anywhere: u32,
    /// ASCII digits.
    pub(crate) digit: u32,
    /// Dots.
    pub(crate) dot: u32,
    /// Colons.
    pub(crate) colon: u32,
}

/// Returns `text`, of at most one block, followed by zero bytes.
///
/// Two overlapping reads of 8 or 4 bytes are combined in an integer, so the block is built in
/// registers. Copying the bytes into a buffer and loading it as one vector stalls the load
/// until the narrower stores retire.
#[inline]
pub(crate) fn pad(text: &[u8]) -> [u8; BLOCK] {
    let len = text.len().min(BLOCK);
    let value = if len >= 8 {
        u128::from(read_u64(text, 0)) | (u128::from(read_u64(text, len - 8)) << ((len - 8) * 8))
    } else if len >= 4 {
        u128::from(read_u32(text, 0)) | (u128::from(read_u32(text, len - 4)) << ((len - 4) * 8))
    } else {
        text.iter()
            .take(len)
            .enumerate()
            .fold(0, |value, (at, &byte)| {
                value | (u128::from(byte) << (at * 8))
            })
    };
    value.to_le_bytes()
}

/// Returns the 8 bytes at `at` as a little-endian integer, or 0 past the end.
#[inline(always)]
fn read_u64(text: &[u8], at: usize) -> u64 {
    text.get(at..at + 8)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Returns the 4 bytes at `at` as a little-endian integer, or 0 past the end.
#[inline(always)]
fn read_u32(text: &[u8], at: usize) -> u32 {
    text.get(at..at + 4)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map_or(0, u32::from_le_bytes)
}

/// Returns a lane of 0xFF where `value` is in `low..=high`, else 0.
///
/// Subtracting `low` with wrap-around moves the range to `0..=high - low` and every value
/// below `low` above it, so one unsigned minimum decides.
#[inline(always)]
fn in_range(value: u8x16, low: u8, high: u8) -> u8x16 {
    let shifted = value - u8x16::splat(low);
    shifted.min(u8x16::splat(high - low)).cmp_eq(shifted)
}

#[inline(always)]
fn equals(value: u8x16, byte: u8) -> u8x16 {
    value.cmp_eq(u8x16::splat(byte))
}

#[inline(always)]
fn mask(lanes: u8x16) -> u32 {
    // `move_mask` sets bit `i` from the top bit of lane `i`, and only the low 16 bits.
    lanes.move_mask().cast_unsigned()
}

/// Classifies the 16 bytes of `block`. The masks are supersets: the caller checks each
/// candidate against the rules that are on.
#[inline]
pub(crate) fn classify(block: [u8; BLOCK], hex_letters: bool) -> Candidates {
    let value = u8x16::new(block);
    let digit = in_range(value, b'0', b'9');
    let upper = in_range(value, b'A', b'Z');
    let lower = in_range(value, b'a', b'z');
    let word = digit | upper | lower | equals(value, b'_');
    let mut word_start = digit
        | upper
        | equals(value, b'b')
        | equals(value, b'e')
        | equals(value, b'g')
        | equals(value, b'x');
    if hex_letters {
        word_start |= in_range(value, b'a', b'f');
    }
    let colon = equals(value, b':');
    let anywhere = equals(value, b'@')
        | equals(value, b'%')
        | colon
        | equals(value, b'=')
        | equals(value, b'+')
        | equals(value, b'(')
        | equals(value, b'-');
    Candidates {
        word: mask(word),
        word_start: mask(word_start),
        anywhere: mask(anywhere),
        digit: mask(digit),
        dot: mask(equals(value, b'.')),
        colon: mask(colon),
    }
}

/// Returns the shapes that can start a match in a text that `found` classifies whole, from
/// the number of digits, dots and colons in it.
///
/// A number that a digit rule matches has at least 9 digits (an SSN has 9, a national phone
/// number 10 or 11, a card 13 to 19), or 4 digits and 3 dots (an IPv4 address). An IPv6
/// address has at least two colons. So in a short value such as `okhttp/4.12.0` or `1843`,
/// no digit and no hex digit needs the detectors.
#[inline]
pub(crate) fn possible_shapes(found: &Candidates) -> u16 {
    let digits = found.digit.count_ones();
    let mut shapes = u16::MAX;
    if digits < 9 && !(digits >= 4 && found.dot.count_ones() >= 3) {
        shapes &= !(shape::DIGITS | shape::DIGIT_GROUP);
    }
    if found.colon.count_ones() < 2 {
        shapes &= !(shape::HEX_COLON | shape::HEX_GROUP);
    }
    shapes
}

/// Returns the index of the second-to-last colon of `text`, or 0 when it has fewer than two.
///
/// An IPv6 address that starts with a hex digit has two or more colons after its start, so it
/// starts before this index. The text is read from its end, so a colon near the end stops the
/// search early.
pub(crate) fn second_last_colon(text: &[u8]) -> usize {
    let mut found_one = false;
    let mut end = text.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = text.get(start..end).unwrap_or_default();
        let block = match chunk.first_chunk::<BLOCK>() {
            Some(block) => *block,
            None => pad(chunk),
        };
        let mut colons = mask(equals(u8x16::new(block), b':'));
        while colons != 0 {
            let last = 31 - colons.leading_zeros();
            if found_one {
                return start + last as usize;
            }
            found_one = true;
            colons &= !(1 << last);
        }
        end = start;
    }
    0
}

/// Shapes of the first three bytes of a match, one bit each.
///
/// A candidate of [`classify`] is kept when its first byte starts a shape of a rule that is on
/// and its next two bytes fit that shape, which three table lookups decide. Each shape is a
/// necessary condition of the detectors that start with it, so no match is lost. Most words
/// and numbers of a clean text fail every shape and never reach the detectors.
pub(crate) mod shape {
    /// `@`, `:` and `=`, which any bytes may follow.
    pub(crate) const ANY: u16 = 1;
    /// An IPv6 group of one hex digit: a colon follows.
    pub(crate) const HEX_COLON: u16 = 1 << 1;
    /// An IPv6 group of two to four hex digits: a hex digit, then a hex digit or a colon.
    pub(crate) const HEX_GROUP: u16 = 1 << 2;
    /// Digits of a card, SSN, phone number or IPv4 address: a second digit, then a digit, a
    /// space, a dash or a dot. A run of two digits followed by anything else is neither one
    /// of 13 to 19 digits nor a first group of a grouped number.
    pub(crate) const DIGITS: u16 = 1 << 3;
    /// A digit group of one digit: a space, dash or dot, then a digit.
    pub(crate) const DIGIT_GROUP: u16 = 1 << 4;
    /// An IBAN or a GitLab runner token: an uppercase letter, then a digit.
    pub(crate) const UPPER_DIGIT: u16 = 1 << 5;
    /// An AWS access key id: two more uppercase letters.
    pub(crate) const AWS: u16 = 1 << 6;
    /// `Bearer` or `Basic` in any case.
    pub(crate) const AUTH_SCHEME: u16 = 1 << 7;
    /// A JWT: `eyJ`.
    pub(crate) const JWT: u16 = 1 << 8;
    /// A GitHub or GitLab token: `gh`, `gi` or `gl`, then a lowercase letter.
    pub(crate) const GIT_TOKEN: u16 = 1 << 9;
    /// A Slack token: `xox` or `xap`.
    pub(crate) const SLACK_TOKEN: u16 = 1 << 10;
    /// An email address written with `%40`.
    pub(crate) const PERCENT_AT: u16 = 1 << 11;
    /// A phone number after `+` or `(`: a digit.
    pub(crate) const DIGIT_AFTER: u16 = 1 << 12;
    /// A PEM header: a second dash.
    pub(crate) const DASHES: u16 = 1 << 13;
}

/// Shapes that the byte after the first one fits, by byte.
pub(crate) static SECOND: [u16; 256] = follow_table(1);

/// Shapes that the byte two after the first one fits, by byte.
pub(crate) static THIRD: [u16; 256] = follow_table(2);

#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where an index out of bounds fails the build"
)]
const fn follow_table(offset: usize) -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = if offset == 1 {
            second_shapes(byte as u8)
        } else {
            third_shapes(byte as u8)
        };
        byte += 1;
    }
    table
}

const fn second_shapes(byte: u8) -> u16 {
    use shape::*;
    let mut shapes = ANY;

    if byte == b':' {
        shapes |= HEX_COLON;
    }
    if byte.is_ascii_hexdigit() {
        shapes |= HEX_GROUP;
    }
    if byte.is_ascii_digit() {
        shapes |= DIGITS | DIGIT_AFTER;
    }
    if matches!(byte, b' ' | b'-' | b'.') {
        shapes |= DIGIT_GROUP;
    }
    if byte.is_ascii_uppercase() {
        shapes |= UPPER_DIGIT | AWS;
    }
    if matches!(byte, b'e' | b'a' | b'E' | b'A') {
        shapes |= AUTH_SCHEME;
    }
    if byte == b'y' {
        shapes |= JWT;
    }
    if matches!(byte, b'h' | b'i' | b'l') {
        shapes |= GIT_TOKEN;
    }
    if matches!(byte, b'o' | b'a') {
        shapes |= SLACK_TOKEN;
    }
    if byte == b'4' {
        shapes |= PERCENT_AT;
    }
    if byte == b'-' {
        shapes |= DASHES;
    }

    shapes
}

const fn third_shapes(byte: u8) -> u16 {
    use shape::*;
    let mut shapes = ANY | HEX_COLON | PERCENT_AT | DIGIT_AFTER | DASHES;

    if byte.is_ascii_hexdigit() || byte == b':' {
        shapes |= HEX_GROUP;
    }
    if byte.is_ascii_digit() {
        shapes |= DIGITS | DIGIT_GROUP | UPPER_DIGIT;
    }
    if matches!(byte, b' ' | b'-' | b'.') {
        shapes |= DIGITS;
    }
    if byte.is_ascii_uppercase() {
        shapes |= AWS;
    }
    if matches!(byte, b'a' | b's' | b'A' | b'S') {
        shapes |= AUTH_SCHEME;
    }
    if byte == b'J' {
        shapes |= JWT;
    }
    if byte.is_ascii_lowercase() {
        shapes |= GIT_TOKEN;
    }
    if matches!(byte, b'x' | b'p') {
        shapes |= SLACK_TOKEN;
    }

    shapes
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    fn block(text: &[u8; 16]) -> [u8; BLOCK] {
        *text
    }

    #[test]
    fn pad_copies_every_length() {
        let text: Vec<u8> = (1..=15).collect();
        for len in 0..=15 {
            let block = pad(&text[..len]);
            assert_eq!(&block[..len], &text[..len], "{len}");
            assert!(block[len..].iter().all(|&b| b == 0), "{len}");
        }
    }

    /// One text per detector shape, each with a match the redactor replaces.
    const MATCHES: &[&str] = &[
        "mail jane.doe@example.com now",
        "mail jane%40example.com now",
        "card 4111 1111 1111 1111 and 4111111111111111",
        "card 5555-5555-5555-4444",
        "ssn 123-45-6789",
        "call +14155552671 or (415) 555-2671",
        "call 415-555-2671 or 1-415-555-2671",
        "call 020 7946 0958",
        "iban GB82WEST12345698765432",
        "iban DE89 3704 0044 0532 0130 00",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
        "Authorization: Bearer abcdef123456 and bearer abcdef123456",
        "Authorization: Basic dXNlcjpwYXNz",
        "key AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_abcdefghijklmnopqrstuvwxyz",
        "glpat-abcdefghijklmnopqrst",
        "GR1348941abcdefghijklmnopqrst",
        "xoxb-1234567890-abcdefghij",
        "xapp-1-A0123456789-abcdef",
        "-----BEGIN RSA PRIVATE KEY-----",
        "https://user:pass@example.com/path",
        "password=hunter2 token: abc123",
        "from 10.1.2.3 and 192.168.0.1",
        "from ::1 and fe80::1 and 2001:db8::1 and a:b::c and 1::",
    ];

    fn all_rules() -> super::super::Redactor {
        use crate::config::{RedactConfig, RuleMode, RuleModes};
        let config = RedactConfig {
            rules: RuleModes {
                ip: RuleMode::Mask,
                ..RuleModes::default()
            },
            ..RedactConfig::default()
        };
        super::super::Redactor::build(&config, None)
    }

    #[test]
    fn match_starts_fit_a_shape() {
        let redactor = all_rules();
        for text in MATCHES {
            let bytes = text.as_bytes();
            let mut starts = 0;
            for index in 0..bytes.len() {
                if redactor.at_candidate(bytes, index, 0).is_some() {
                    starts += 1;
                    assert!(
                        redactor.fits_shape(bytes, index, u16::MAX),
                        "{text:?} at {index}"
                    );
                }
            }
            assert!(starts > 0, "no match in {text:?}");
        }
    }

    #[test]
    fn possible_shapes_at_the_limits() {
        let digit_shapes = shape::DIGITS | shape::DIGIT_GROUP;
        let hex_shapes = shape::HEX_COLON | shape::HEX_GROUP;
        // Text, whether the digit shapes stay, whether the hex shapes stay.
        let cases: &[(&str, bool, bool)] = &[
            ("1843", false, false),
            ("okhttp/4.12.0", false, false),
            ("1.2.3.", false, false),
            ("12345678", false, false),
            ("10.1.2.3", true, false),
            ("123456789", true, false),
            ("123-45-6789", true, false),
            ("a:b", false, false),
            ("a::1", false, true),
            ("fe80::1", false, true),
            ("", false, false),
        ];
        for &(text, digits, hex) in cases {
            let possible = possible_shapes(&classify(pad(text.as_bytes()), true));
            assert_eq!(
                possible & digit_shapes == digit_shapes,
                digits,
                "digits {text:?}"
            );
            assert_eq!(possible & digit_shapes == 0, !digits, "digits {text:?}");
            assert_eq!(possible & hex_shapes == hex_shapes, hex, "hex {text:?}");
            assert_eq!(possible & hex_shapes == 0, !hex, "hex {text:?}");
            assert_eq!(
                possible | digit_shapes | hex_shapes,
                u16::MAX,
                "others {text:?}"
            );
        }
    }

    /// Every slice of up to one block of the matching texts is redacted alone, where the
    /// shapes are narrowed by [`possible_shapes`], as it is at the start of a longer text,
    /// where they are not.
    #[test]
    fn short_values_redact_as_in_longer_texts() {
        let redactor = all_rules();
        let suffix = " ~~~~~~~~~~~~~~~~";
        let mut checked = 0;
        for text in MATCHES {
            for start in 0..text.len() {
                for end in (start + 1)..=text.len().min(start + BLOCK) {
                    let value = &text[start..end];
                    let longer = format!("{value}{suffix}");
                    let expected = redactor.redact(&longer);
                    // A `name: value` pair takes the suffix as its value.
                    let Some(expected) = expected.strip_suffix(suffix) else {
                        continue;
                    };
                    assert_eq!(redactor.redact(value), expected, "{value:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 5000, "{checked} slices");
    }

    #[test]
    fn clean_words_fit_no_shape() {
        let redactor = all_rules();
        for word in [
            "after",
            "completed",
            "edge",
            "SELECT",
            "eu-west",
            "01JEGQ",
            "12ms",
        ] {
            assert!(!redactor.fits_shape(word.as_bytes(), 0, u16::MAX), "{word}");
        }
    }

    #[test]
    fn second_last_colon_cases() {
        let long = format!("{}:{}:{}", "x".repeat(20), "y".repeat(30), "z".repeat(40));
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("no colon at all, even in a text longer than a block", 0),
            ("a:b", 0),
            ("::", 0),
            ("a::", 1),
            ("a:b:c:d", 3),
            (&long, 20),
        ];
        for &(text, expected) in cases {
            assert_eq!(second_last_colon(text.as_bytes()), expected, "{text:?}");
        }
    }

    /// IPv6 addresses at every offset of texts longer than four blocks, which are searched
    /// for colons before the scan.
    #[test]
    fn ipv6_in_long_texts() {
        let redactor = all_rules();
        let words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ";
        for address in [
            "fe80::1",
            "a::1",
            "dead:beef::1",
            "cafe::",
            "abc:0:0:0:0:0:0:1",
            "2001:db8::1",
            "1::",
            "::1",
        ] {
            for before in 0..80 {
                let head: String = words.chars().cycle().take(before).collect();
                let text = format!("{head} {address} {words}");
                assert!(text.len() > 4 * BLOCK, "{text:?}");
                let expected = format!("{head} [REDACTED:ip] {words}");
                assert_eq!(redactor.redact(&text), expected, "{text:?}");
            }
        }
    }

    #[test]
    fn pad_copies_full_block() {
        let text: Vec<u8> = (1..=16).collect();
        assert_eq!(pad(&text).as_slice(), text.as_slice());
    }

    #[test]
    fn masks_match_byte_rules() {
        let text = block(b"a_Z9 @%:=+(-bex\xff");
        let found = classify(text, false);
        for (index, &byte) in text.iter().enumerate() {
            let bit = 1u32 << index;
            let is_word = byte.is_ascii_alphanumeric() || byte == b'_';
            assert_eq!(found.word & bit != 0, is_word, "word {byte:#x}");
            let starts = byte.is_ascii_digit()
                || byte.is_ascii_uppercase()
                || matches!(byte, b'b' | b'e' | b'g' | b'x');
            assert_eq!(found.word_start & bit != 0, starts, "start {byte:#x}");
            let anywhere = matches!(byte, b'@' | b'%' | b':' | b'=' | b'+' | b'(' | b'-');
            assert_eq!(found.anywhere & bit != 0, anywhere, "anywhere {byte:#x}");
        }
        assert_eq!(found.word >> 16, 0);
    }

    #[test]
    fn classify_every_byte_value() {
        for first in (0u8..=255).step_by(16) {
            let mut text = [0u8; BLOCK];
            for (offset, slot) in text.iter_mut().enumerate() {
                *slot = first.wrapping_add(offset as u8);
            }
            let found = classify(text, true);
            for (index, &byte) in text.iter().enumerate() {
                let bit = 1u32 << index;
                let is_word = byte.is_ascii_alphanumeric() || byte == b'_';
                assert_eq!(found.word & bit != 0, is_word, "word {byte:#x}");
                let hex = matches!(byte, b'a'..=b'f');
                let starts = byte.is_ascii_digit()
                    || byte.is_ascii_uppercase()
                    || hex
                    || matches!(byte, b'b' | b'e' | b'g' | b'x');
                assert_eq!(found.word_start & bit != 0, starts, "start {byte:#x}");
            }
        }
    }
}
