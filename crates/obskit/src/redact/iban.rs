//! The IBAN detector: a country's length and the mod-97 check of ISO 13616.

use super::kind::Kind;
use super::text::{at, run_end, word_end};

/// IBAN length per country code, from the IBAN registry, including the countries that use
/// IBANs without being in the registry.
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AO", 25),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BF", 28),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BJ", 28),
    (b"BR", 29),
    (b"BY", 28),
    (b"CF", 27),
    (b"CG", 27),
    (b"CH", 21),
    (b"CI", 28),
    (b"CM", 27),
    (b"CR", 22),
    (b"CV", 25),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"DZ", 26),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GA", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GQ", 27),
    (b"GR", 27),
    (b"GT", 28),
    (b"GW", 25),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IR", 26),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KM", 27),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MA", 28),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MG", 27),
    (b"MK", 19),
    (b"ML", 28),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"MZ", 25),
    (b"NE", 28),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SN", 28),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TD", 27),
    (b"TG", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// Longest IBAN of any country.
const MAX_LEN: usize = 34;

fn is_upper_alnum(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit()
}

/// Finds an IBAN at `start`, written compact (`GB82WEST12345698765432`) or in groups of four
/// separated by single spaces (`GB82 WEST 1234 5698 7654 32`).
pub(crate) fn detect(bytes: &[u8], start: usize) -> Option<(usize, usize, Kind)> {
    let country = bytes.get(start..start + 2)?;
    if !country.iter().all(u8::is_ascii_uppercase)
        || !at(bytes, start + 2).is_ascii_digit()
        || !at(bytes, start + 3).is_ascii_digit()
    {
        return None;
    }
    let expected = LENGTHS
        .iter()
        .find(|(code, _)| code.as_slice() == country)
        .map(|(_, len)| *len)?;

    let mut chars = [0u8; MAX_LEN];
    let compact_end = run_end(bytes, start, is_upper_alnum);
    let end = if compact_end - start == expected {
        chars
            .get_mut(..expected)?
            .copy_from_slice(bytes.get(start..compact_end)?);
        compact_end
    } else if compact_end - start == 4 {
        read_groups(bytes, start, expected, &mut chars)?
    } else {
        return None;
    };
    if !word_end(bytes, end) {
        return None;
    }
    mod97(chars.get(..expected)?).then_some((start, end, Kind::Iban))
}

/// Reads `expected` characters in groups of four; returns the end of the last group.
fn read_groups(
    bytes: &[u8],
    start: usize,
    expected: usize,
    chars: &mut [u8; MAX_LEN],
) -> Option<usize> {
    let mut count = 0;
    let mut index = start;
    loop {
        let group_end = run_end(bytes, index, is_upper_alnum);
        let len = group_end - index;
        if len == 0 || len > 4 || count + len > expected {
            return None;
        }
        chars
            .get_mut(count..count + len)?
            .copy_from_slice(bytes.get(index..group_end)?);
        count += len;
        if count == expected {
            return Some(group_end);
        }
        if len != 4 || at(bytes, group_end) != b' ' {
            return None;
        }
        index = group_end + 1;
    }
}

/// Returns whether `iban` passes the ISO 13616 check. With the first four characters moved to
/// the end and letters read as 10 to 35, the number modulo 97 is 1.
fn mod97(iban: &[u8]) -> bool {
    let (head, tail) = iban.split_at(4.min(iban.len()));
    let mut remainder = 0u32;
    for &byte in tail.iter().chain(head) {
        let value = if byte.is_ascii_digit() {
            u32::from(byte - b'0')
        } else {
            u32::from(byte - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(text: &str) -> Option<&str> {
        detect(text.as_bytes(), 0).map(|(s, e, _)| &text[s..e])
    }

    #[test]
    fn valid_ibans() {
        for iban in [
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "NO9386011117947",
        ] {
            assert_eq!(matched(iban), Some(iban), "{iban}");
        }
    }

    #[test]
    fn invalid_ibans() {
        for text in [
            "DE89370400440532013001",
            "GB82WEST1234569876543",
            "XX82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 3",
            "DE89370400440532013000X",
        ] {
            assert_eq!(matched(text), None, "{text}");
        }
    }
}
