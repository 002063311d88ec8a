//! Detectors for numbers written with digit groups: payment cards, US SSNs, phone numbers and
//! IPv4 addresses.

use super::kind::Kind;
use super::text::{at, is_word, word_end};

/// Most digit groups of one run that are examined; later groups are not part of any match.
const MAX_GROUPS: usize = 8;

/// Digit groups separated by single spaces, dashes or dots.
struct Groups {
    /// Start and end of each group.
    spans: [(u32, u32); MAX_GROUPS],
    /// Separator before each group; 0 before the first.
    separators: [u8; MAX_GROUPS],
    count: usize,
}

impl Groups {
    /// Reads the groups of the digit run that starts at `start`.
    fn read(bytes: &[u8], start: usize) -> Self {
        let mut groups = Self {
            spans: [(0, 0); MAX_GROUPS],
            separators: [0; MAX_GROUPS],
            count: 0,
        };
        let mut index = start;
        let mut separator = 0u8;
        while groups.count < MAX_GROUPS {
            let end = super::text::run_end(bytes, index, |b| b.is_ascii_digit());
            let (Ok(span_start), Ok(span_end)) = (u32::try_from(index), u32::try_from(end)) else {
                break;
            };
            if end == index {
                break;
            }
            if let (Some(span), Some(sep)) = (
                groups.spans.get_mut(groups.count),
                groups.separators.get_mut(groups.count),
            ) {
                *span = (span_start, span_end);
                *sep = separator;
            }
            groups.count += 1;
            let next = at(bytes, end);
            if matches!(next, b' ' | b'-' | b'.') && at(bytes, end + 1).is_ascii_digit() {
                separator = next;
                index = end + 1;
            } else {
                break;
            }
        }
        groups
    }

    fn len(&self, group: usize) -> usize {
        self.spans
            .get(group)
            .map_or(0, |(start, end)| (end - start) as usize)
    }

    fn start(&self, group: usize) -> usize {
        self.spans.get(group).map_or(0, |span| span.0 as usize)
    }

    fn end(&self, group: usize) -> usize {
        self.spans.get(group).map_or(0, |span| span.1 as usize)
    }

    fn separator(&self, group: usize) -> u8 {
        self.separators.get(group).copied().unwrap_or(0)
    }

    /// Returns whether groups `first..=last` share one separator, and which.
    fn same_separator(&self, first: usize, last: usize) -> Option<u8> {
        let separator = self.separator(first + 1);
        ((first + 1)..=last)
            .all(|group| self.separator(group) == separator)
            .then_some(separator)
    }

    fn lens(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count).map(|group| self.len(group))
    }

    /// Returns the first `count` groups.
    fn first(&self, count: usize) -> Self {
        Self {
            spans: self.spans,
            separators: self.separators,
            count: count.min(self.count),
        }
    }
}

/// Digit rules that are on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DigitRules {
    pub(crate) card: bool,
    pub(crate) ssn: bool,
    pub(crate) phone: bool,
    pub(crate) ip: bool,
}

/// Examines the digit run starting at `start`, which starts a word.
pub(crate) fn detect(
    bytes: &[u8],
    start: usize,
    rules: DigitRules,
) -> Option<(usize, usize, Kind)> {
    let groups = Groups::read(bytes, start);
    if groups.count == 0 {
        return None;
    }
    let last = groups.count - 1;
    let run_end = groups.end(last);
    let whole_bounded = word_end(bytes, run_end) && !continues_number(bytes, run_end);

    if let Some(window) = standalone_prefix(bytes, &groups, whole_bounded) {
        // Groups split by spaces may be followed by unrelated numbers, so shorter prefixes
        // of a space-separated window are tried too, longest first.
        let shortest = if groups.separator(1) == b' ' {
            2
        } else {
            window.count
        };
        for count in (shortest..=window.count).rev() {
            let number = window.first(count);
            let end = number.end(count - 1);
            if rules.ssn && is_ssn(bytes, &number) {
                return Some((start, end, Kind::Ssn));
            }
            if rules.ip && is_ipv4(bytes, &number) {
                return Some((start, end, Kind::Ip));
            }
            if rules.phone && is_national_phone(bytes, &number) {
                return Some((start, end, Kind::Phone));
            }
        }
    }
    if rules.card {
        return find_card(bytes, &groups, whole_bounded);
    }
    None
}

/// Returns false when no digit rule can match the run that starts at `start`, judged from the
/// lengths of its groups alone: most numbers in logs (counts, dates, decimals, versions) end
/// here without the full check.
///
/// The conditions are necessary ones. An SSN and a `415-555-2671` phone start with three
/// digits, `1-415-555-2671` with a lone `1`, and a trunk-prefixed phone with `0`. An IPv4
/// address is four dot-separated groups of up to three digits. A card needs a group of 13 to 19 digits,
/// or a group of four in a run of at least 13 digits.
pub(crate) fn may_match(bytes: &[u8], start: usize, rules: DigitRules) -> bool {
    // A lone digit, the commonest case, can start nothing.
    let second = at(bytes, start + 1);
    let continues = matches!(second, b' ' | b'-' | b'.') && at(bytes, start + 2).is_ascii_digit();
    if !(second.is_ascii_digit() || continues) {
        return false;
    }
    let first_end = super::text::run_end(bytes, start, |b| b.is_ascii_digit());
    let first_len = first_end - start;
    let first_digit = at(bytes, start);
    let separator = at(bytes, first_end);
    let grouped =
        matches!(separator, b' ' | b'-' | b'.') && at(bytes, first_end + 1).is_ascii_digit();
    if !grouped {
        return rules.card && (13..=19).contains(&first_len);
    }
    if ((rules.ssn || rules.phone) && first_len == 3)
        || (rules.phone && (first_digit == b'0' || (first_len == 1 && first_digit == b'1')))
        || (rules.ip && separator == b'.' && has_dotted_quad(bytes, start))
        || (rules.card && (13..=19).contains(&first_len))
    {
        return true;
    }
    if !rules.card {
        return false;
    }
    let mut total = first_len;
    let mut has_four = first_len == 4;
    let mut index = first_end;
    for _ in 1..MAX_GROUPS {
        if !(matches!(at(bytes, index), b' ' | b'-' | b'.')
            && at(bytes, index + 1).is_ascii_digit())
        {
            break;
        }
        let end = super::text::run_end(bytes, index + 1, |b| b.is_ascii_digit());
        total += end - index - 1;
        has_four |= end - index - 1 == 4;
        index = end;
    }
    has_four && total >= 13
}

/// Returns whether four groups of one to three digits joined by dots start at `start`, the
/// shape [`is_ipv4`] needs. Versions such as `4.12.0` and decimals such as `12.5` fail it.
fn has_dotted_quad(bytes: &[u8], start: usize) -> bool {
    let mut index = start;
    for group in 0..4 {
        if group > 0 {
            if at(bytes, index) != b'.' {
                return false;
            }
            index += 1;
        }
        let digits = (0..4)
            .take_while(|&offset| at(bytes, index + offset).is_ascii_digit())
            .count();
        if !(1..=3).contains(&digits) {
            return false;
        }
        index += digits;
    }
    true
}

/// Returns the leading groups written with one separator when they stand alone.
///
/// They stand alone when the text ends, a non-word byte follows, or a space and another
/// number follow. They must not continue a number written with the same dash or dot before
/// them.
///
/// So `123-45-6789 42` yields `123-45-6789`, while `1.2.3.4.5` yields nothing at `1` (five
/// groups) nor at `2` (it continues `1.`).
fn standalone_prefix(bytes: &[u8], groups: &Groups, whole_bounded: bool) -> Option<Groups> {
    let separator = groups.separator(1);
    let mut count = 1;
    while count < groups.count && groups.separator(count) == separator {
        count += 1;
    }
    let bounded = if count == groups.count {
        whole_bounded
    } else {
        groups.separator(count) == b' '
    };
    let start = groups.start(0);
    let continues_before = matches!(separator, b'-' | b'.')
        && start >= 2
        && at(bytes, start - 1) == separator
        && at(bytes, start - 2).is_ascii_digit();
    (bounded && !continues_before).then(|| groups.first(count))
}

/// Returns whether the number goes on after `end`: a decimal point or a comma with digits.
fn continues_number(bytes: &[u8], end: usize) -> bool {
    matches!(at(bytes, end), b'.' | b',') && at(bytes, end + 1).is_ascii_digit()
}

fn digit(bytes: &[u8], index: usize) -> u32 {
    u32::from(at(bytes, index).wrapping_sub(b'0'))
}

/// Reads the digits of `start..end` as a number; at most 9 digits are used.
fn number(bytes: &[u8], start: usize, end: usize) -> u32 {
    (start..end.min(start + 9)).fold(0, |value, index| value * 10 + digit(bytes, index))
}

/// `123-45-6789` or `123 45 6789`, outside the ranges never issued: area 000, 666 and 900-999,
/// group 00 and serial 0000.
fn is_ssn(bytes: &[u8], groups: &Groups) -> bool {
    if groups.count != 3 || !groups.lens().eq([3, 2, 4]) {
        return false;
    }
    if !matches!(groups.same_separator(0, 2), Some(b'-' | b' ')) {
        return false;
    }
    let area = number(bytes, groups.start(0), groups.end(0));
    let group = number(bytes, groups.start(1), groups.end(1));
    let serial = number(bytes, groups.start(2), groups.end(2));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Four dot-separated numbers from 0 to 255.
fn is_ipv4(bytes: &[u8], groups: &Groups) -> bool {
    groups.count == 4
        && groups.same_separator(0, 3) == Some(b'.')
        && (0..4).all(|group| {
            let len = groups.len(group);
            (1..=3).contains(&len)
                && number(bytes, groups.start(group), groups.end(group)) <= 255
                && !(len > 1 && at(bytes, groups.start(group)) == b'0')
        })
}

/// `415-555-2671`, `415.555.2671` and `415 555 2671`, the same after the country code `1`
/// (`1-415-555-2671`), or a number with a leading trunk `0` of 10 or 11 digits in groups of at
/// least two (`020 7946 0958`, `01 23 45 67 89`).
fn is_national_phone(bytes: &[u8], groups: &Groups) -> bool {
    let Some(separator) = groups.same_separator(0, groups.count - 1) else {
        return false;
    };
    if groups.count < 2 || !matches!(separator, b'-' | b'.' | b' ') {
        return false;
    }
    if groups.count == 3 && groups.lens().eq([3, 3, 4]) {
        return true;
    }
    if groups.count == 4 && groups.lens().eq([1, 3, 3, 4]) && at(bytes, groups.start(0)) == b'1' {
        return true;
    }
    let total: usize = groups.lens().sum();
    at(bytes, groups.start(0)) == b'0'
        && (10..=11).contains(&total)
        && groups.lens().all(|len| len >= 2)
}

/// Finds a card number among the groups: the first group alone when the run ends or a space
/// follows it, or whole groups written with one separator, the first of four digits.
fn find_card(bytes: &[u8], groups: &Groups, whole_bounded: bool) -> Option<(usize, usize, Kind)> {
    let (start, end) = (groups.start(0), groups.end(0));
    let alone = if groups.count == 1 {
        whole_bounded
    } else {
        groups.separator(1) == b' '
    };
    if alone && is_card(bytes, start, end, None) {
        return Some((start, end, Kind::Card));
    }
    if groups.count == 1 {
        return None;
    }
    for first in 0..groups.count {
        if groups.len(first) != 4 {
            continue;
        }
        let mut digits = groups.len(first);
        let mut best = None;
        for last in (first + 1)..groups.count {
            digits += groups.len(last);
            if digits > 19 || groups.same_separator(first, last).is_none() {
                break;
            }
            if last < groups.count - 1 || whole_bounded {
                best = Some((last, digits));
            }
        }
        let mut candidate = best;
        while let Some((last, digits)) = candidate {
            if digits >= 13 {
                let (start, end) = (groups.start(first), groups.end(last));
                let separator = groups.separator(first + 1);
                let middle_ok =
                    ((first + 1)..last).all(|group| (4..=6).contains(&groups.len(group)));
                if middle_ok
                    && matches!(separator, b' ' | b'-')
                    && is_card(bytes, start, end, Some(separator))
                {
                    return Some((start, end, Kind::Card));
                }
            }
            candidate = (last > first + 1).then(|| (last - 1, digits - groups.len(last)));
        }
    }
    None
}

/// Returns whether the digits in `start..end` (with `separator` between groups) have the
/// length and prefix of a card network and pass the Luhn check.
fn is_card(bytes: &[u8], start: usize, end: usize, separator: Option<u8>) -> bool {
    let mut digits = [0u8; 19];
    let mut count = 0;
    for index in start..end {
        let byte = at(bytes, index);
        if byte.is_ascii_digit() {
            if let Some(slot) = digits.get_mut(count) {
                *slot = byte - b'0';
            }
            count += 1;
        } else if Some(byte) != separator {
            return false;
        }
    }
    if !(13..=19).contains(&count) {
        return false;
    }
    let digits = digits.get(..count).unwrap_or_default();
    network_accepts(digits) && luhn(digits)
}

/// Returns whether a card network issues numbers with this prefix and length.
fn network_accepts(digits: &[u8]) -> bool {
    let len = digits.len();
    let prefix = |n: usize| -> u32 {
        digits
            .iter()
            .take(n)
            .fold(0, |value, &d| value * 10 + u32::from(d))
    };
    match digits.first() {
        // Visa.
        Some(4) => matches!(len, 13 | 16 | 19),
        // Mastercard 2221-2720.
        Some(2) => (2221..=2720).contains(&prefix(4)) && len == 16,
        // American Express, Diners Club, JCB.
        Some(3) => match prefix(2) {
            34 | 37 => len == 15,
            30 | 36 | 38 | 39 => (14..=19).contains(&len),
            35 => (16..=19).contains(&len),
            _ => false,
        },
        // Mastercard 51-55, Maestro 50 and 56-58.
        Some(5) => match prefix(2) {
            51..=55 => len == 16,
            50 | 56..=58 => (13..=19).contains(&len),
            _ => false,
        },
        // Discover, UnionPay, Maestro, RuPay.
        Some(6) => (13..=19).contains(&len),
        _ => false,
    }
}

/// Returns whether `digits` pass the Luhn (mod 10) check.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &d)| {
            let d = u32::from(d);
            if position % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Returns whether the byte before `index` is a word byte, as in `x+1` or `f(1)`, or the `]`
/// that ends a placeholder. Without the `]`, a second pass over `xoxb-…+14155552671` would
/// replace the phone number that the first pass kept.
fn joined_to_previous(bytes: &[u8], index: usize) -> bool {
    index > 0 && {
        let previous = at(bytes, index - 1);
        is_word(previous) || previous == b']'
    }
}

/// Examines an E.164 number at `plus`, the index of its `+`: 8 to 15 digits, the first not
/// 0, with single spaces, dashes or dots between groups and at most one group in parentheses.
pub(crate) fn detect_e164(bytes: &[u8], plus: usize) -> Option<(usize, usize, Kind)> {
    if joined_to_previous(bytes, plus) || (plus > 0 && at(bytes, plus - 1) == b'+') {
        return None;
    }
    let first = at(bytes, plus + 1);
    if !first.is_ascii_digit() || first == b'0' {
        return None;
    }
    let (end, digits) = read_phone_digits(bytes, plus + 1, true)?;
    ((8..=15).contains(&digits) && word_end(bytes, end) && !continues_number(bytes, end))
        .then_some((plus, end, Kind::Phone))
}

/// Examines `(415) 555-2671` at `paren`, the index of its `(`.
pub(crate) fn detect_parenthesized(bytes: &[u8], paren: usize) -> Option<(usize, usize, Kind)> {
    if joined_to_previous(bytes, paren) {
        return None;
    }
    let area_end = super::text::run_end(bytes, paren + 1, |b| b.is_ascii_digit());
    if area_end - (paren + 1) != 3 || at(bytes, area_end) != b')' {
        return None;
    }
    let mut index = area_end + 1;
    if at(bytes, index) == b' ' {
        index += 1;
    }
    let exchange_end = super::text::run_end(bytes, index, |b| b.is_ascii_digit());
    if exchange_end - index != 3 {
        return None;
    }
    index = exchange_end;
    if matches!(at(bytes, index), b'-' | b'.' | b' ') {
        index += 1;
    }
    let line_end = super::text::run_end(bytes, index, |b| b.is_ascii_digit());
    (line_end - index == 4 && word_end(bytes, line_end) && !continues_number(bytes, line_end))
        .then_some((paren, line_end, Kind::Phone))
}

/// Reads digits with single separators and, if `parens`, one parenthesized group; returns
/// the end of the last digit and the digit count.
///
/// When the digits go past 15, the number ends at the last separator before them, so that
/// `+44 20 7946 0958 2024` yields `+44 20 7946 0958`. A run of more than 15 digits
/// without a separator is no phone number.
fn read_phone_digits(bytes: &[u8], start: usize, parens: bool) -> Option<(usize, usize)> {
    let mut index = start;
    let mut digits = 0usize;
    let mut end = start;
    let mut used_parens = !parens;
    let mut last_group: Option<(usize, usize)> = None;
    loop {
        let byte = at(bytes, index);
        if byte.is_ascii_digit() {
            digits += 1;
            index += 1;
            end = index;
            if digits > 15 {
                return last_group;
            }
        } else if matches!(byte, b' ' | b'-' | b'.')
            && end == index
            && (at(bytes, index + 1).is_ascii_digit() || at(bytes, index + 1) == b'(')
        {
            last_group = Some((end, digits));
            index += 1;
        } else if byte == b'(' && !used_parens && at(bytes, index + 1).is_ascii_digit() {
            let close = super::text::run_end(bytes, index + 1, |b| b.is_ascii_digit());
            if at(bytes, close) != b')' || close - index > 5 {
                break;
            }
            digits += close - index - 1;
            used_parens = true;
            index = close + 1;
            end = index;
            if at(bytes, index) == b' ' && at(bytes, index + 1).is_ascii_digit() {
                index += 1;
            }
        } else {
            break;
        }
    }
    (digits > 0).then_some((end, digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: DigitRules = DigitRules {
        card: true,
        ssn: true,
        phone: true,
        ip: true,
    };

    fn kind_of(text: &str) -> Option<(Kind, &str)> {
        let bytes = text.as_bytes();
        let start = bytes.iter().position(u8::is_ascii_digit)?;
        detect(bytes, start, ALL).map(|(s, e, kind)| (kind, &text[s..e]))
    }

    #[test]
    fn luhn_known_values() {
        let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn(&digits("4111111111111111")));
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("4111111111111112")));
    }

    #[test]
    fn cards_with_and_without_separators() {
        assert_eq!(
            kind_of("4111111111111111"),
            Some((Kind::Card, "4111111111111111"))
        );
        assert_eq!(
            kind_of("card 4111 1111 1111 1111 on file"),
            Some((Kind::Card, "4111 1111 1111 1111"))
        );
        assert_eq!(
            kind_of("3782-822463-10005"),
            Some((Kind::Card, "3782-822463-10005"))
        );
        assert_eq!(
            kind_of("4111 1111 1111 1111 2026"),
            Some((Kind::Card, "4111 1111 1111 1111"))
        );
        assert_eq!(kind_of("4111111111111112"), None);
        assert_eq!(kind_of("1733350000000"), None, "epoch milliseconds");
        assert_eq!(kind_of("4111-1111 1111-1111"), None, "mixed separators");
        assert_eq!(kind_of("12345678-1234-1234-1234-123456789012"), None);
    }

    #[test]
    fn ssn_rules() {
        assert_eq!(kind_of("123-45-6789"), Some((Kind::Ssn, "123-45-6789")));
        for never_issued in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert_ne!(
                kind_of(never_issued).map(|k| k.0),
                Some(Kind::Ssn),
                "{never_issued}"
            );
        }
        assert_eq!(kind_of("123456789"), None);
    }

    #[test]
    fn phones_and_non_phones() {
        assert_eq!(kind_of("415-555-2671"), Some((Kind::Phone, "415-555-2671")));
        assert_eq!(
            kind_of("020 7946 0958"),
            Some((Kind::Phone, "020 7946 0958"))
        );
        assert_eq!(kind_of("2026-12-04"), None);
        assert_eq!(kind_of("1.2.3"), None);
        let text = b"call +1 (415) 555-2671 now";
        assert_eq!(detect_e164(text, 5), Some((5, 22, Kind::Phone)));
        assert_eq!(
            detect_e164(b"+44 20 7946 0958", 0),
            Some((0, 16, Kind::Phone))
        );
        assert_eq!(detect_e164(b"+0000", 0), None);
        assert_eq!(detect_e164(b"x+14155552671", 1), None);
        assert_eq!(detect_e164(b"[REDACTED:token]+14155552671", 16), None);
        assert_eq!(detect_parenthesized(b"f(415) 555-2671", 1), None);
        assert_eq!(detect_e164(b"+1234", 0), None);
        assert_eq!(
            detect_parenthesized(b"(415) 555-2671", 0),
            Some((0, 14, Kind::Phone))
        );
    }

    #[test]
    fn ipv4() {
        assert_eq!(kind_of("10.0.0.1"), Some((Kind::Ip, "10.0.0.1")));
        assert_eq!(kind_of("256.1.1.1"), None);
        assert_eq!(kind_of("1.2.3.4.5"), None);
    }

    #[test]
    fn trailing_number_keeps_match() {
        assert_eq!(kind_of("123-45-6789 42"), Some((Kind::Ssn, "123-45-6789")));
        assert_eq!(
            kind_of("415.555.2671 1234"),
            Some((Kind::Phone, "415.555.2671"))
        );
        assert_eq!(kind_of("10.0.0.1 443"), Some((Kind::Ip, "10.0.0.1")));
        assert_eq!(kind_of("123-45-6789-1"), None);
        assert_eq!(kind_of("123 45 6789 42"), Some((Kind::Ssn, "123 45 6789")));
        assert_eq!(
            kind_of("4111111111111111 42"),
            Some((Kind::Card, "4111111111111111"))
        );
        assert_eq!(kind_of("4111111111111111-42"), None);
    }

    #[test]
    fn long_e164_ends_at_a_group() {
        let text = b"+44 20 7946 0958 2024";
        assert_eq!(detect_e164(text, 0), Some((0, 16, Kind::Phone)));
        assert_eq!(detect_e164(b"+4412345678901234567", 0), None);
    }

    #[test]
    fn groups_continuing_a_number_are_not_matched() {
        let text = b"1.2.3.4.5";
        assert_eq!(detect(text, 2, ALL), None, "2.3.4.5 continues 1.");
        let oid = b"1.3.6.1.4.1";
        assert_eq!(detect(oid, 4, ALL), None, "6.1.4.1 continues 1.3.");
        let ssn = b"12-123-45-6789";
        assert_eq!(detect(ssn, 3, ALL), None, "123-45-6789 continues 12-");
        assert_eq!(
            kind_of("1-415-555-2671"),
            Some((Kind::Phone, "1-415-555-2671"))
        );
        assert_eq!(
            kind_of("1 415 555 2671"),
            Some((Kind::Phone, "1 415 555 2671"))
        );
    }
}
