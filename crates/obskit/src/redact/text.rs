//! Byte classes and small scanning helpers shared by the detectors.

/// Returns whether `byte` belongs to a word: an ASCII letter, digit or `_`.
#[inline]
pub(crate) fn is_word(byte: u8) -> bool {
    WORD.get(usize::from(byte)).copied().unwrap_or(false)
}

/// Word bytes: ASCII letters, digits and `_`.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where an index out of bounds fails the build"
)]
static WORD: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'_';
        byte += 1;
    }
    table
};

/// Returns the byte at `index`, or 0 past the end.
#[inline]
pub(crate) fn at(bytes: &[u8], index: usize) -> u8 {
    bytes.get(index).copied().unwrap_or(0)
}

/// Returns whether a word starts at `index`: the byte before it is not a word byte.
#[inline]
pub(crate) fn word_start(bytes: &[u8], index: usize) -> bool {
    index == 0 || !is_word(at(bytes, index - 1))
}

/// Returns whether no word continues at `index`.
#[inline]
pub(crate) fn word_end(bytes: &[u8], index: usize) -> bool {
    !is_word(at(bytes, index))
}

/// Returns the index of the first byte at or after `index` for which `keep` is false.
#[inline]
pub(crate) fn run_end(bytes: &[u8], index: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut end = index;
    while end < bytes.len() && keep(at(bytes, end)) {
        end += 1;
    }
    end
}

/// Returns whether `bytes` has `prefix` at `index`.
#[inline]
pub(crate) fn has_at(bytes: &[u8], index: usize, prefix: &[u8]) -> bool {
    bytes
        .get(index..index + prefix.len())
        .is_some_and(|window| window == prefix)
}

/// Returns whether `bytes` has `prefix` at `index`, ignoring ASCII case.
#[inline]
pub(crate) fn has_at_ignore_case(bytes: &[u8], index: usize, prefix: &[u8]) -> bool {
    bytes
        .get(index..index + prefix.len())
        .is_some_and(|window| window.eq_ignore_ascii_case(prefix))
}

/// Returns the index of the first occurrence of `needle` at or after `from`.
pub(crate) fn find_from(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let haystack = bytes.get(from..)?;
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|position| from + position)
}
