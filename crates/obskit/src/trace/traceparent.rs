//! The W3C Trace Context `traceparent` header: parsing, validation and formatting.

use std::fmt;

/// Length of a version `00` `traceparent` value: `2 + 1 + 32 + 1 + 16 + 1 + 2`.
pub const TRACEPARENT_LEN: usize = 55;

const VERSION_FORBIDDEN: u8 = 0xff;
const TRACE_ID_START: usize = 3;
const PARENT_ID_START: usize = 36;
const FLAGS_START: usize = 53;
const DASH_OFFSETS: [usize; 3] = [2, 35, 52];

/// One field of a `traceparent` value, named as in the W3C Trace Context grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceParentField {
    /// The 2-digit `version`.
    Version,
    /// The 32-digit `trace-id`.
    TraceId,
    /// The 16-digit `parent-id`.
    ParentId,
    /// The 2-digit `trace-flags`.
    TraceFlags,
}

impl TraceParentField {
    fn at(offset: usize) -> Self {
        match offset {
            0..TRACE_ID_START => Self::Version,
            TRACE_ID_START..PARENT_ID_START => Self::TraceId,
            PARENT_ID_START..FLAGS_START => Self::ParentId,
            _ => Self::TraceFlags,
        }
    }
}

impl fmt::Display for TraceParentField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Version => "version",
            Self::TraceId => "trace-id",
            Self::ParentId => "parent-id",
            Self::TraceFlags => "trace-flags",
        })
    }
}

/// The Trace Context rule that an incoming `traceparent` breaks.
///
/// The messages name the rule and the offset, never the received value, so an error can be
/// logged without copying untrusted header content into the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TraceParentError {
    /// The value is shorter than the 55 characters every version shares.
    #[error(
        "traceparent is {len} characters long, shorter than the 55 of \
         `version-traceid-parentid-flags`; send 2+32+16+2 lowercase hex digits joined by `-`"
    )]
    TooShort {
        /// Length of the received value in bytes.
        len: usize,
    },
    /// A version `00` value is longer than 55 characters, which means it carries extra data.
    #[error(
        "traceparent version 00 must be exactly 55 characters, got {len}; \
         remove the data after trace-flags"
    )]
    Version00Length {
        /// Length of the received value in bytes.
        len: usize,
    },
    /// A field contains an uppercase hex digit, but Trace Context allows only lowercase.
    #[error("traceparent {field} has an uppercase hex digit at offset {offset}; use lowercase hex")]
    UppercaseHex {
        /// Field that contains the digit.
        field: TraceParentField,
        /// Byte offset of the digit in the value.
        offset: usize,
    },
    /// A field contains a byte that is not a hex digit.
    #[error("traceparent {field} has a non-hex character at offset {offset}; use lowercase hex")]
    InvalidCharacter {
        /// Field that contains the byte.
        field: TraceParentField,
        /// Byte offset of the character in the value.
        offset: usize,
    },
    /// The `-` separator is missing between two fields.
    #[error("traceparent has no `-` at offset {offset}; separate the fields with `-`")]
    MissingDash {
        /// Byte offset where the separator was expected.
        offset: usize,
    },
    /// The version is `ff`, which Trace Context forbids.
    #[error("traceparent version ff is forbidden; send version 00")]
    VersionForbidden,
    /// The trace-id is all zeros.
    #[error("traceparent trace-id is all zeros, which is invalid; generate a random trace-id")]
    ZeroTraceId,
    /// The parent-id is all zeros.
    #[error("traceparent parent-id is all zeros, which is invalid; generate a random parent-id")]
    ZeroParentId,
    /// A future-version value continues after trace-flags without a `-`.
    #[error(
        "traceparent of a future version continues after trace-flags without `-` at \
         offset 55; separate additional fields with `-`"
    )]
    FutureVersionTrailing,
    /// The request carries more than one `traceparent` header line.
    #[error("request has {count} traceparent headers; send exactly one")]
    DuplicateHeader {
        /// Number of `traceparent` header lines.
        count: usize,
    },
}

impl TraceParentError {
    /// Returns a short `snake_case` label for the rule, for a metric's `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::Version00Length { .. } => "version_00_length",
            Self::UppercaseHex { .. } => "uppercase_hex",
            Self::InvalidCharacter { .. } => "invalid_character",
            Self::MissingDash { .. } => "missing_dash",
            Self::VersionForbidden => "version_forbidden",
            Self::ZeroTraceId => "zero_trace_id",
            Self::ZeroParentId => "zero_parent_id",
            Self::FutureVersionTrailing => "future_version_trailing",
            Self::DuplicateHeader { .. } => "duplicate_header",
        }
    }
}

/// A valid `traceparent`: the trace an incoming request belongs to and the caller's span.
///
/// Values of this type always satisfy the Trace Context rules: the ids are never all zeros and
/// the version is never `ff`. [`Display`](fmt::Display) writes the version `00` form with only
/// the flags this version defines ([`TraceParent::SAMPLED`], [`TraceParent::RANDOM`]), which is
/// what a service propagates whatever version it received.
///
/// # Example
///
/// ```
/// use obskit::trace::TraceParent;
///
/// let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
/// assert!(parent.is_sampled());
/// assert_eq!(parent.trace_id()[0], 0x4b);
///
/// // A future version with an extra field re-emits as version 00 without it.
/// let future = TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-xyz")?;
/// assert_eq!(
///     future.to_string(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// );
/// # Ok::<(), obskit::trace::TraceParentError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    version: u8,
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// The `sampled` flag: the caller may have recorded its span.
    pub const SAMPLED: u8 = 0x01;
    /// The `random` flag of Trace Context Level 2: at least the right-most 7 bytes of the
    /// trace-id are random.
    pub const RANDOM: u8 = 0x02;
    /// The flags this implementation propagates; other bits are cleared on output.
    pub const KNOWN_FLAGS: u8 = Self::SAMPLED | Self::RANDOM;

    /// Creates a version `00` value from its parts.
    ///
    /// # Errors
    ///
    /// [`TraceParentError::ZeroTraceId`] or [`TraceParentError::ZeroParentId`] when an id is all
    /// zeros.
    pub fn new(
        trace_id: [u8; 16],
        parent_id: [u8; 8],
        flags: u8,
    ) -> Result<Self, TraceParentError> {
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(Self {
            version: 0,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Starts a new trace with a random trace-id and parent-id and the `random` flag set.
    ///
    /// The ids come from `fastrand`, a fast generator that is not cryptographically secure:
    /// trace ids are meant to be unique, not secret.
    pub fn new_root(sampled: bool) -> Self {
        let mut flags = Self::RANDOM;
        if sampled {
            flags |= Self::SAMPLED;
        }
        Self {
            version: 0,
            trace_id: random_nonzero_u128().to_be_bytes(),
            parent_id: random_span_id(),
            flags,
        }
    }

    /// Returns the value to send on an outgoing call made by a new span of this trace: same
    /// trace-id, a new random parent-id, version `00` and only the known flags.
    pub fn child(&self) -> Self {
        self.with_parent_id_unchecked(random_span_id())
    }

    /// Returns the value to send on an outgoing call made by the span `span_id` of this trace.
    ///
    /// # Errors
    ///
    /// [`TraceParentError::ZeroParentId`] when `span_id` is all zeros.
    pub fn with_parent_id(&self, span_id: [u8; 8]) -> Result<Self, TraceParentError> {
        if span_id == [0; 8] {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(self.with_parent_id_unchecked(span_id))
    }

    fn with_parent_id_unchecked(&self, parent_id: [u8; 8]) -> Self {
        Self {
            version: 0,
            trace_id: self.trace_id,
            parent_id,
            flags: self.flags & Self::KNOWN_FLAGS,
        }
    }

    /// Parses and validates a `traceparent` value without allocating.
    ///
    /// Version `00` must be exactly 55 characters. A future version (`01` to `fe`) is accepted
    /// when its first 55 characters parse and the next character, if any, is `-`. The fields
    /// a future version adds after trace-flags are ignored. The value is not trimmed: [`extract`](super::extract)
    /// removes the optional whitespace that HTTP allows around a header value before calling
    /// this.
    ///
    /// # Errors
    ///
    /// A [`TraceParentError`] naming the first rule the value breaks.
    pub fn parse(value: &str) -> Result<Self, TraceParentError> {
        Self::parse_bytes(value.as_bytes())
    }

    /// Parses and validates a `traceparent` value given as raw header bytes.
    ///
    /// # Errors
    ///
    /// As [`TraceParent::parse`]; a byte outside ASCII is a
    /// [`TraceParentError::InvalidCharacter`].
    pub fn parse_bytes(value: &[u8]) -> Result<Self, TraceParentError> {
        let Some(head) = value.first_chunk::<TRACEPARENT_LEN>() else {
            return Err(TraceParentError::TooShort { len: value.len() });
        };

        for offset in DASH_OFFSETS {
            if head.get(offset) != Some(&b'-') {
                return Err(TraceParentError::MissingDash { offset });
            }
        }

        let version = decode_hex::<1>(head, 0)?[0];
        if version == VERSION_FORBIDDEN {
            return Err(TraceParentError::VersionForbidden);
        }
        match (version, value.get(TRACEPARENT_LEN)) {
            (_, None) => {}
            (0, Some(_)) => return Err(TraceParentError::Version00Length { len: value.len() }),
            (_, Some(b'-')) => {}
            (_, Some(_)) => return Err(TraceParentError::FutureVersionTrailing),
        }

        let trace_id = decode_hex::<16>(head, TRACE_ID_START)?;
        let parent_id = decode_hex::<8>(head, PARENT_ID_START)?;
        let flags = decode_hex::<1>(head, FLAGS_START)?[0];
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceParentError::ZeroParentId);
        }

        Ok(Self {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Returns the version received; values built by this crate are version `00`.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Returns the 16-byte trace-id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// Returns the 8-byte parent-id: the id of the span that sent this value.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// Returns the trace-flags as received, including bits this version does not define.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Returns whether the `sampled` flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & Self::SAMPLED != 0
    }

    /// Returns whether the `random` flag is set.
    pub fn is_random(&self) -> bool {
        self.flags & Self::RANDOM != 0
    }

    /// Encodes the version `00` form into a fixed buffer, without allocating.
    pub fn encode(&self) -> [u8; TRACEPARENT_LEN] {
        let mut out = [b'-'; TRACEPARENT_LEN];
        encode_hex(&[0], &mut out, 0);
        encode_hex(&self.trace_id, &mut out, TRACE_ID_START);
        encode_hex(&self.parent_id, &mut out, PARENT_ID_START);
        encode_hex(&[self.flags & Self::KNOWN_FLAGS], &mut out, FLAGS_START);
        out
    }

    /// Returns the 32 lowercase hex digits of the trace-id, as logs and trace viewers show it.
    pub fn trace_id_hex(&self) -> String {
        let mut out = [0u8; 32];
        encode_hex(&self.trace_id, &mut out, 0);
        out.iter().map(|&byte| char::from(byte)).collect()
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = self.encode();
        // The encoded form is lowercase hex and dashes, so it is always valid UTF-8.
        let text = std::str::from_utf8(&encoded).map_err(|_| fmt::Error)?;
        f.write_str(text)
    }
}

impl std::str::FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

/// Returns a random span id that is never all zeros, for the parent-id of an outgoing call.
pub fn random_span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

fn random_nonzero_u128() -> u128 {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id;
        }
    }
}

/// Decodes `N` bytes from `2 * N` lowercase hex digits starting at `start`.
fn decode_hex<const N: usize>(
    input: &[u8; TRACEPARENT_LEN],
    start: usize,
) -> Result<[u8; N], TraceParentError> {
    let mut out = [0u8; N];
    let digits = input.get(start..start + 2 * N).unwrap_or_default();
    for ((byte, pair), index) in out.iter_mut().zip(digits.chunks_exact(2)).zip(0..) {
        let offset = start + 2 * index;
        let high = hex_value(pair.first().copied().unwrap_or(0), offset)?;
        let low = hex_value(pair.get(1).copied().unwrap_or(0), offset + 1)?;
        *byte = (high << 4) | low;
    }
    Ok(out)
}

fn hex_value(digit: u8, offset: usize) -> Result<u8, TraceParentError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Err(TraceParentError::UppercaseHex {
            field: TraceParentField::at(offset),
            offset,
        }),
        _ => Err(TraceParentError::InvalidCharacter {
            field: TraceParentField::at(offset),
            offset,
        }),
    }
}

fn encode_hex(bytes: &[u8], out: &mut [u8], start: usize) {
    let targets = out.get_mut(start..).unwrap_or_default().chunks_exact_mut(2);
    for (byte, pair) in bytes.iter().zip(targets) {
        if let [high, low] = pair {
            *high = hex_digit(byte >> 4);
            *low = hex_digit(byte & 0x0f);
        }
    }
}

fn hex_digit(nibble: u8) -> u8 {
    if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parse_valid_round_trips() {
        let parent = TraceParent::parse(VALID).unwrap();
        assert_eq!(parent.version(), 0);
        assert_eq!(
            parent.parent_id(),
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(parent.flags(), 1);
        assert_eq!(parent.to_string(), VALID);
        assert_eq!(&parent.encode()[..], VALID.as_bytes());
        assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn error_names_field_and_offset() {
        let value = VALID.replace("00f067aa", "00f0G7aa");
        let error = TraceParent::parse(&value).unwrap_err();
        assert_eq!(
            error,
            TraceParentError::InvalidCharacter {
                field: TraceParentField::ParentId,
                offset: 40,
            }
        );
        assert_eq!(
            error.to_string(),
            "traceparent parent-id has a non-hex character at offset 40; use lowercase hex"
        );
    }

    #[test]
    fn unknown_flags_cleared_on_output() {
        let parent = TraceParent::parse(&VALID.replace("-01", "-ff")).unwrap();
        assert_eq!(parent.flags(), 0xff);
        assert!(parent.to_string().ends_with("-03"));
        assert_eq!(parent.child().flags(), 0x03);
    }

    #[test]
    fn new_root_sets_random_flag() {
        let root = TraceParent::new_root(false);
        assert_eq!(root.flags(), TraceParent::RANDOM);
        assert_ne!(root.trace_id(), [0; 16]);
        assert!(TraceParent::parse(&root.to_string()).is_ok());
    }

    #[test]
    fn child_keeps_trace_changes_parent() {
        let parent = TraceParent::parse(VALID).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.parent_id(), parent.parent_id());
        assert_eq!(
            parent.with_parent_id([0; 8]),
            Err(TraceParentError::ZeroParentId)
        );
    }

    #[test]
    fn non_ascii_bytes_rejected() {
        let mut bytes = VALID.as_bytes().to_vec();
        bytes[10] = 0xc3;
        assert!(matches!(
            TraceParent::parse_bytes(&bytes),
            Err(TraceParentError::InvalidCharacter {
                field: TraceParentField::TraceId,
                offset: 10
            })
        ));
    }
}
