//! Request ids: accepted from `X-Request-ID` when well formed, generated otherwise.

use std::fmt;

use http::{HeaderName, HeaderValue};

/// Name of the request id header, read from requests and set on responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// [`REQUEST_ID_HEADER`] as a header name, so lookups and inserts skip parsing the name.
pub(crate) const REQUEST_ID_HEADER_NAME: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Maximum length of an accepted incoming request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of one request, stored in the request extensions by the middleware.
///
/// An incoming `X-Request-ID` is kept when it matches `^[A-Za-z0-9._-]{1,128}$`. Anything else
/// is replaced by a generated id of 32 lowercase hex digits, so a client cannot inject log
/// content or unbounded data through the header.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Returns the incoming id when it is well formed, or a newly generated one.
    pub fn from_header(value: Option<&HeaderValue>) -> Self {
        match value {
            Some(value) if is_valid(value.as_bytes()) => Self(value.clone()),
            _ => Self::generate(),
        }
    }

    /// Generates a random id of 32 lowercase hex digits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        let mut random = fastrand::u128(..);
        for byte in &mut bytes {
            let nibble = (random & 0xf) as u8;
            *byte = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            random >>= 4;
        }
        // All 32 bytes are ASCII hex digits, which are valid header value bytes.
        Self(HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| HeaderValue::from_static("0")))
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        // Only the bytes `A-Z`, `a-z`, `0-9`, `.`, `_` and `-` are stored, so this never falls
        // back. `from_utf8` checks ASCII a word at a time, faster than `HeaderValue::to_str`.
        std::str::from_utf8(self.0.as_bytes()).unwrap_or_default()
    }

    /// Returns the id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Returns the id as an owned header value, without cloning it.
    pub(crate) fn into_header_value(self) -> HeaderValue {
        self.0
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes allowed in an incoming request id: `A-Z`, `a-z`, `0-9`, `.`, `_` and `-`.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where an index out of bounds fails the build"
)]
static ALLOWED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let value = byte as u8;
        table[byte] = value.is_ascii_alphanumeric() || matches!(value, b'.' | b'_' | b'-');
        byte += 1;
    }
    table
};

fn is_valid(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .iter()
            .all(|&byte| ALLOWED.get(usize::from(byte)).copied().unwrap_or(false))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn valid_incoming_ids_are_kept() {
        for id in ["abc", "A.b_c-9", &"x".repeat(128)] {
            let header = HeaderValue::from_str(id).unwrap();
            assert_eq!(RequestId::from_header(Some(&header)).as_str(), id);
        }
    }

    #[test]
    fn invalid_incoming_ids_are_replaced() {
        for id in [
            "",
            "has space",
            "semi;colon",
            "new\tline",
            "ü",
            &"x".repeat(129),
        ] {
            let header = HeaderValue::from_bytes(id.as_bytes()).unwrap();
            let request_id = RequestId::from_header(Some(&header));
            assert_ne!(request_id.as_str(), id);
            assert_eq!(request_id.as_str().len(), 32);
        }
    }

    #[test]
    fn generated_ids_are_hex_and_distinct() {
        let first = RequestId::generate();
        let second = RequestId::generate();
        assert_ne!(first, second);
        assert!(
            first
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(first.as_str().len(), 32);
    }
}
