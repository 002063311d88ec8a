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
}

/// Returns `text`, shorter than a block, followed by zero bytes.
///
/// Copies of 8 or 4 bytes, overlapping where the length requires it, avoid a `memcpy` call.
#[inline]
pub(crate) fn pad(text: &[u8]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    let len = text.len().min(BLOCK);
    let mut copy = |at: usize, width: usize| {
        if let (Some(target), Some(source)) =
            (block.get_mut(at..at + width), text.get(at..at + width))
        {
            target.copy_from_slice(source);
        }
    };
    if len >= 8 {
        copy(0, 8);
        copy(len - 8, 8);
    } else if len >= 4 {
        copy(0, 4);
        copy(len - 4, 4);
    } else {
        for at in 0..len {
            copy(at, 1);
        }
    }
    block
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
    let anywhere = equals(value, b'@')
        | equals(value, b'%')
        | equals(value, b':')
        | equals(value, b'=')
        | equals(value, b'+')
        | equals(value, b'(')
        | equals(value, b'-');
    Candidates {
        word: mask(word),
        word_start: mask(word_start),
        anywhere: mask(anywhere),
    }
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
