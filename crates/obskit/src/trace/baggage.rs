//! The W3C Baggage `baggage` header: application key-value pairs that travel with a request.

use std::fmt::{self, Write as _};

use super::tracestate::trim_ows;

/// Maximum number of list-members kept from, and sent in, a `baggage` header.
///
/// The W3C Baggage text of 2024 requires platforms to propagate at least 64 list-members; 180
/// is the cap of its earlier drafts, which OpenTelemetry JS (`@opentelemetry/core`) still uses.
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// Maximum size in bytes of the list-members kept from, and sent in, a `baggage` header,
/// counting the `,` separators.
///
/// W3C Baggage lets a platform drop list-members once the string exceeds 8192 bytes. The
/// 4096-byte limit per member of earlier drafts is not applied.
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// The rule a `baggage` list-member, or an argument to [`BaggageMember::new`], breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum BaggageError {
    /// The key is empty or not an HTTP token (RFC 9110 `tchar`s).
    #[error(
        "invalid baggage key; a key is an HTTP token of letters, digits and \
         !#$%&'*+-.^_`|~"
    )]
    InvalidKey,
    /// The member has no `=` after its key.
    #[error("baggage list-member has no `=`; send members as `key=value`")]
    MissingEquals,
    /// The value contains a character outside the baggage-octet range (whitespace, `"`, `,`,
    /// `;`, `\`, control or non-ASCII) that the sender did not percent-encode.
    #[error(
        "baggage value contains a character that must be percent-encoded; \
         encode whitespace, `\"`, `,`, `;`, `\\` and non-ASCII bytes as %XX"
    )]
    InvalidValue,
    /// A property has an invalid key or value.
    #[error(
        "invalid baggage property; a property is `key` or `key=value` with an HTTP token key \
         and a percent-encoded value"
    )]
    InvalidProperty,
}

impl BaggageError {
    /// Returns a short `snake_case` label for the rule, for a metric's `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidKey => "invalid_key",
            Self::MissingEquals => "missing_equals",
            Self::InvalidValue => "invalid_value",
            Self::InvalidProperty => "invalid_property",
        }
    }
}

/// List-members dropped while parsing or encoding a `baggage` header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BaggageDrops {
    /// Members that broke the grammar; each was dropped on its own.
    pub invalid: usize,
    /// Members dropped because the list reached [`MAX_BAGGAGE_MEMBERS`] or
    /// [`MAX_BAGGAGE_BYTES`].
    pub over_limit: usize,
    /// The rule broken by the first invalid member.
    pub first_error: Option<BaggageError>,
}

impl BaggageDrops {
    /// Returns whether no member was dropped.
    pub fn is_empty(&self) -> bool {
        self.invalid == 0 && self.over_limit == 0
    }
}

/// A property of a baggage member: `key` or `key=value`, kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaggageProperty {
    /// The property key, an HTTP token.
    pub key: String,
    /// The property value, still percent-encoded as it travels, or `None` for a bare key.
    pub value: Option<String>,
}

/// One `key=value;properties` member of a [`Baggage`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaggageMember {
    key: String,
    value: String,
    properties: Vec<BaggageProperty>,
}

impl BaggageMember {
    /// Creates a member. The value may contain any character; it is percent-encoded when sent.
    ///
    /// # Errors
    ///
    /// [`BaggageError::InvalidKey`] when `key` is not an HTTP token.
    pub fn new(key: &str, value: &str) -> Result<Self, BaggageError> {
        if !is_token(key.as_bytes()) {
            return Err(BaggageError::InvalidKey);
        }
        Ok(Self {
            key: key.to_owned(),
            value: value.to_owned(),
            properties: Vec::new(),
        })
    }

    /// Adds a property; `value` is sent as given, so it must already be percent-encoded.
    ///
    /// # Errors
    ///
    /// [`BaggageError::InvalidProperty`] when the key is not a token or the value contains a
    /// character outside the baggage-octet range.
    pub fn with_property(mut self, key: &str, value: Option<&str>) -> Result<Self, BaggageError> {
        let value_valid = value.is_none_or(|value| is_baggage_value(value.as_bytes()));
        if !is_token(key.as_bytes()) || !value_valid {
            return Err(BaggageError::InvalidProperty);
        }
        self.properties.push(BaggageProperty {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        });
        Ok(self)
    }

    /// Returns the key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Returns the percent-decoded value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Returns the properties in order.
    pub fn properties(&self) -> &[BaggageProperty] {
        &self.properties
    }

    fn encode_into(&self, out: &mut String) {
        out.push_str(&self.key);
        out.push('=');
        percent_encode_into(&self.value, out);
        for property in &self.properties {
            out.push(';');
            out.push_str(&property.key);
            if let Some(value) = &property.value {
                out.push('=');
                out.push_str(value);
            }
        }
    }
}

/// The list-members of a W3C `baggage` header, in the order received.
///
/// Values are percent-decoded; a byte sequence that is not UTF-8 after decoding becomes U+FFFD,
/// as the specification requires. Keys may repeat because the specification does not forbid
/// it; [`Baggage::get`] returns the first.
///
/// # Limitations
///
/// - Property values are kept percent-encoded, as received, and sent back unchanged.
/// - A `%` that does not start a `%XX` escape is kept as a literal `%` rather than rejected.
///
/// # Example
///
/// ```
/// use obskit::trace::Baggage;
///
/// let (baggage, drops) = Baggage::parse("userId=alice, region=eu%20west;ttl=60");
/// assert!(drops.is_empty());
/// assert_eq!(baggage.get("region"), Some("eu west"));
/// assert_eq!(baggage.to_string(), "userId=alice,region=eu%20west;ttl=60");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Baggage {
    members: Vec<BaggageMember>,
}

impl Baggage {
    /// Parses one `baggage` header value.
    ///
    /// An invalid member is dropped on its own and the rest are kept. Once the kept members
    /// reach [`MAX_BAGGAGE_MEMBERS`] or [`MAX_BAGGAGE_BYTES`], the member that does not fit and
    /// every later one are dropped, so a member is never cut. Every dropped member is counted
    /// in the returned [`BaggageDrops`]. Empty members, such as the one in `a=1,,b=2`, are
    /// skipped without counting.
    pub fn parse(value: &str) -> (Self, BaggageDrops) {
        Self::parse_lines([value.as_bytes()])
    }

    /// Parses several `baggage` header lines as one list, in order, as if joined by `,`.
    pub fn parse_lines<'a, I>(lines: I) -> (Self, BaggageDrops)
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut baggage = Self::default();
        let mut drops = BaggageDrops::default();
        let mut bytes = 0;

        for line in lines {
            for raw in line.split(|&byte| byte == b',') {
                let raw = trim_ows(raw);
                if raw.is_empty() {
                    continue;
                }
                if drops.over_limit > 0 {
                    drops.over_limit += 1;
                    continue;
                }

                let member = match parse_member(raw) {
                    Ok(member) => member,
                    Err(error) => {
                        drops.invalid += 1;
                        drops.first_error.get_or_insert(error);
                        continue;
                    }
                };

                let added = raw.len() + usize::from(!baggage.members.is_empty());
                if baggage.members.len() >= MAX_BAGGAGE_MEMBERS || bytes + added > MAX_BAGGAGE_BYTES
                {
                    drops.over_limit += 1;
                    continue;
                }
                bytes += added;
                baggage.members.push(member);
            }
        }
        (baggage, drops)
    }

    /// Returns the decoded value of the first member with `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_member(key).map(BaggageMember::value)
    }

    /// Returns the first member with `key`, with its properties.
    pub fn get_member(&self, key: &str) -> Option<&BaggageMember> {
        self.members.iter().find(|member| member.key == key)
    }

    /// Sets `key` to `value`: removes every member with `key` and appends the new one.
    ///
    /// # Errors
    ///
    /// [`BaggageError::InvalidKey`] when `key` is not an HTTP token; the list is then unchanged.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), BaggageError> {
        let member = BaggageMember::new(key, value)?;
        self.insert_member(member);
        Ok(())
    }

    /// Removes every member with the same key and appends `member`.
    pub fn insert_member(&mut self, member: BaggageMember) {
        self.members.retain(|existing| existing.key != member.key);
        self.members.push(member);
    }

    /// Removes every member with `key` and returns how many there were.
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.members.len();
        self.members.retain(|member| member.key != key);
        before - self.members.len()
    }

    /// Returns the members in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &BaggageMember> {
        self.members.iter()
    }

    /// Returns the number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Returns whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Encodes the list for a `baggage` header within [`MAX_BAGGAGE_MEMBERS`] and
    /// [`MAX_BAGGAGE_BYTES`], and returns it with the number of members left out.
    ///
    /// Members are kept in order until one does not fit; it and every later member are left
    /// out whole.
    pub fn encode_limited(&self) -> (String, usize) {
        let mut out = String::new();
        let mut member_text = String::new();
        let mut kept = 0;

        for member in &self.members {
            member_text.clear();
            member.encode_into(&mut member_text);
            let added = member_text.len() + usize::from(kept > 0);
            if kept >= MAX_BAGGAGE_MEMBERS || out.len() + added > MAX_BAGGAGE_BYTES {
                break;
            }
            if kept > 0 {
                out.push(',');
            }
            out.push_str(&member_text);
            kept += 1;
        }
        (out, self.members.len() - kept)
    }
}

impl fmt::Display for Baggage {
    /// Writes every member, percent-encoded, without applying the limits of
    /// [`Baggage::encode_limited`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        for (index, member) in self.members.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            member.encode_into(&mut text);
        }
        f.write_str(&text)
    }
}

impl<'a> IntoIterator for &'a Baggage {
    type Item = &'a BaggageMember;
    type IntoIter = std::slice::Iter<'a, BaggageMember>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

/// Parses `key OWS "=" OWS value *( OWS ";" OWS property )`; `raw` is already trimmed.
fn parse_member(raw: &[u8]) -> Result<BaggageMember, BaggageError> {
    let mut parts = raw.split(|&byte| byte == b';');
    let pair = parts.next().unwrap_or_default();
    let Some(equals) = pair.iter().position(|&byte| byte == b'=') else {
        return Err(BaggageError::MissingEquals);
    };
    let (key, value) = pair.split_at(equals);
    let key = trim_ows(key);
    let value = trim_ows(value.get(1..).unwrap_or_default());

    if !is_token(key) {
        return Err(BaggageError::InvalidKey);
    }
    if !is_baggage_value(value) {
        return Err(BaggageError::InvalidValue);
    }

    let mut properties = Vec::new();
    for property in parts {
        properties.push(parse_property(trim_ows(property))?);
    }

    Ok(BaggageMember {
        key: ascii_to_string(key),
        value: percent_decode(value),
        properties,
    })
}

fn parse_property(raw: &[u8]) -> Result<BaggageProperty, BaggageError> {
    let (key, value) = match raw.iter().position(|&byte| byte == b'=') {
        Some(equals) => {
            let (key, value) = raw.split_at(equals);
            let value = trim_ows(value.get(1..).unwrap_or_default());
            (trim_ows(key), Some(value))
        }
        None => (raw, None),
    };
    if !is_token(key) || !value.is_none_or(is_baggage_value) {
        return Err(BaggageError::InvalidProperty);
    }
    Ok(BaggageProperty {
        key: ascii_to_string(key),
        value: value.map(ascii_to_string),
    })
}

/// Converts bytes already checked to be ASCII.
fn ascii_to_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| char::from(byte)).collect()
}

/// Checks the RFC 9110 token grammar: one or more `tchar`.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.iter().all(|&byte| {
            byte.is_ascii_alphanumeric()
                || matches!(
                    byte,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Checks `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn is_baggage_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn is_baggage_value(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| is_baggage_octet(byte))
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes; invalid UTF-8 in the result becomes U+FFFD.
fn percent_decode(bytes: &[u8]) -> String {
    if !bytes.contains(&b'%') {
        return ascii_to_string(bytes);
    }

    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = match (byte, bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) => hex_digit(high).zip(hex_digit(low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push((high << 4) | low);
                index += 3;
            }
            None => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes every byte outside the baggage-octet range, and `%` itself.
fn percent_encode_into(value: &str, out: &mut String) {
    for &byte in value.as_bytes() {
        if is_baggage_octet(byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_cases() {
        assert_eq!(percent_decode(b"a%20b"), "a b");
        assert_eq!(percent_decode(b"%E2%82%AC"), "\u{20ac}");
        assert_eq!(percent_decode(b"%e2%82%ac"), "\u{20ac}");
        assert_eq!(percent_decode(b"%FF"), "\u{fffd}");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%zz"), "%zz");
    }

    #[test]
    fn percent_encode_round_trips() {
        let mut out = String::new();
        percent_encode_into("a b,c;d\"e\\f%g\u{20ac}", &mut out);
        assert_eq!(out, "a%20b%2Cc%3Bd%22e%5Cf%25g%E2%82%AC");
        assert_eq!(percent_decode(out.as_bytes()), "a b,c;d\"e\\f%g\u{20ac}");
    }

    #[test]
    fn token_grammar() {
        assert!(is_token(b"user.id"));
        assert!(is_token(b"!#$%&'*+-.^_`|~09AZaz"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(!is_token(b"a\"b"));
    }

    #[test]
    fn insert_replaces_all_with_key() {
        let (mut baggage, _) = Baggage::parse("a=1,b=2,a=3");
        baggage.insert("a", "4").unwrap();
        assert_eq!(baggage.to_string(), "b=2,a=4");
        assert_eq!(
            baggage.insert("bad key", "x"),
            Err(BaggageError::InvalidKey)
        );
    }
}
