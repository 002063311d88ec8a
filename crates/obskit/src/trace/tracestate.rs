//! The W3C Trace Context `tracestate` header: vendor list members, parsed, mutated and encoded.

use std::fmt;

/// Maximum number of list-members in a `tracestate`.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Length in characters that a `tracestate` is truncated to when it is propagated.
///
/// Under Trace Context, vendors SHOULD propagate at least 512 characters of the combined header
/// and SHOULD remove whole members when they truncate.
pub const TRACESTATE_PROPAGATION_LEN: usize = 512;

/// Members longer than this are removed first when a `tracestate` is truncated.
const LONG_MEMBER_LEN: usize = 128;

const MAX_SIMPLE_KEY_LEN: usize = 256;
const MAX_TENANT_LEN: usize = 241;
const MAX_SYSTEM_LEN: usize = 14;
const MAX_VALUE_LEN: usize = 256;

/// The reason an incoming `tracestate` was discarded as a whole.
///
/// Trace Context treats a `tracestate` with any invalid member as invalid, so one bad member
/// discards the whole list. Members are numbered from 1 across all header lines, counting
/// empty members. Messages name the member, never its content, so they can be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TraceStateError {
    /// The list has more than 32 non-empty members.
    #[error(
        "tracestate has {count} list-members, more than the maximum of 32; \
         the sender must remove members from the end"
    )]
    TooManyMembers {
        /// Number of non-empty members received.
        count: usize,
    },
    /// A member has no `=` between key and value.
    #[error("tracestate list-member {member} has no `=`; send members as `key=value`")]
    MissingEquals {
        /// Position of the member in the list, from 1.
        member: usize,
    },
    /// A member's key matches neither the simple nor the multi-tenant key grammar.
    #[error(
        "tracestate list-member {member} has an invalid key; a key is `[a-z][a-z0-9_*/-]{{0,255}}` \
         or `tenant@system`"
    )]
    InvalidKey {
        /// Position of the member in the list, from 1.
        member: usize,
    },
    /// A member's value is empty, longer than 256 characters, ends with a space or contains a
    /// character outside printable ASCII, `,` or `=`.
    #[error(
        "tracestate list-member {member} has an invalid value; a value is 1 to 256 printable \
         ASCII characters without `,` or `=`, not ending in a space"
    )]
    InvalidValue {
        /// Position of the member in the list, from 1.
        member: usize,
    },
    /// A key appears in more than one member.
    #[error("tracestate list-member {member} repeats an earlier key; send each key once")]
    DuplicateKey {
        /// Position of the repeated member in the list, from 1.
        member: usize,
    },
    /// The `traceparent` was invalid, so Trace Context forbids parsing `tracestate`.
    #[error("tracestate discarded because the traceparent is invalid")]
    TraceParentInvalid,
    /// The request has a `tracestate` but no `traceparent`, so it belongs to no trace.
    #[error("tracestate discarded because the request has no traceparent")]
    TraceParentMissing,
}

impl TraceStateError {
    /// Returns a short `snake_case` label for the rule, for a metric's `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooManyMembers { .. } => "too_many_members",
            Self::MissingEquals { .. } => "missing_equals",
            Self::InvalidKey { .. } => "invalid_key",
            Self::InvalidValue { .. } => "invalid_value",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::TraceParentInvalid => "traceparent_invalid",
            Self::TraceParentMissing => "traceparent_missing",
        }
    }
}

/// Why [`TraceState::insert`] rejected a key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TraceStateInsertError {
    /// The key matches neither the simple nor the multi-tenant key grammar.
    #[error("invalid tracestate key; a key is `[a-z][a-z0-9_*/-]{{0,255}}` or `tenant@system`")]
    InvalidKey,
    /// The value breaks the value grammar.
    #[error(
        "invalid tracestate value; a value is 1 to 256 printable ASCII characters without \
         `,` or `=`, not ending in a space"
    )]
    InvalidValue,
}

/// One `key=value` member of a [`TraceState`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceStateMember {
    /// The vendor key, for example `congo` or `tenant@vendor`.
    pub key: String,
    /// The opaque vendor value.
    pub value: String,
}

impl TraceStateMember {
    /// Returns the length of `key=value` in characters.
    fn encoded_len(&self) -> usize {
        self.key.len() + 1 + self.value.len()
    }
}

/// The ordered vendor members of a `tracestate` header, left-most first.
///
/// A `TraceState` contains only members that satisfy the key and value grammar, no key twice and
/// at most 32 members.
///
/// # Example
///
/// ```
/// use obskit::trace::TraceState;
///
/// let mut state = TraceState::parse("rojo=00f067aa0ba902b7, ,congo=t61rcWkgMzE")?;
/// assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
///
/// // A vendor that changes its member moves it to the front.
/// state.insert("congo", "ucfJifl5GOE").unwrap();
/// assert_eq!(state.to_string(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
/// # Ok::<(), obskit::trace::TraceStateError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TraceState {
    members: Vec<TraceStateMember>,
}

impl TraceState {
    /// Parses one `tracestate` header value.
    ///
    /// Optional whitespace around members is skipped and empty members are ignored.
    ///
    /// # Errors
    ///
    /// A [`TraceStateError`] for the first rule the list breaks.
    pub fn parse(value: &str) -> Result<Self, TraceStateError> {
        Self::parse_lines([value.as_bytes()])
    }

    /// Parses several `tracestate` header lines as one list, in order, as if joined by `,`.
    ///
    /// # Errors
    ///
    /// A [`TraceStateError`] for the first rule the combined list breaks.
    pub fn parse_lines<'a, I>(lines: I) -> Result<Self, TraceStateError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut members: Vec<TraceStateMember> = Vec::new();
        let mut position = 0;
        let mut count = 0;

        for line in lines {
            for raw in line.split(|&byte| byte == b',') {
                position += 1;
                let raw = trim_ows(raw);
                if raw.is_empty() {
                    continue;
                }
                count += 1;
                if count > MAX_TRACESTATE_MEMBERS {
                    continue;
                }

                let member = parse_member(raw, position)?;
                if members.iter().any(|existing| existing.key == member.key) {
                    return Err(TraceStateError::DuplicateKey { member: position });
                }
                members.push(member);
            }
        }

        if count > MAX_TRACESTATE_MEMBERS {
            return Err(TraceStateError::TooManyMembers { count });
        }
        Ok(Self { members })
    }

    /// Returns the value of `key`, if a member has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|member| member.key == key)
            .map(|member| member.value.as_str())
    }

    /// Sets `key` to `value` and moves the member to the front of the list, as Trace Context
    /// requires of a vendor that adds or updates its member.
    ///
    /// When the list already has 32 members and `key` is new, the right-most member is removed
    /// and returned so the caller can count it.
    ///
    /// # Errors
    ///
    /// A [`TraceStateInsertError`] when the key or value breaks the grammar; the list is then
    /// unchanged.
    pub fn insert(
        &mut self,
        key: &str,
        value: &str,
    ) -> Result<Option<TraceStateMember>, TraceStateInsertError> {
        if !is_valid_key(key.as_bytes()) {
            return Err(TraceStateInsertError::InvalidKey);
        }
        if !is_valid_value(value.as_bytes()) {
            return Err(TraceStateInsertError::InvalidValue);
        }

        let replaced = self.remove(key).is_some();
        let evicted = if !replaced && self.members.len() >= MAX_TRACESTATE_MEMBERS {
            self.members.pop()
        } else {
            None
        };
        self.members.insert(
            0,
            TraceStateMember {
                key: key.to_owned(),
                value: value.to_owned(),
            },
        );
        Ok(evicted)
    }

    /// Removes the member with `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.members.iter().position(|member| member.key == key)?;
        Some(self.members.remove(index).value)
    }

    /// Returns the members in order, left-most first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &TraceStateMember> {
        self.members.iter()
    }

    /// Returns the number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Returns whether the list has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Encodes the list for propagation in at most `max_len` characters and returns it with the
    /// number of members removed to fit.
    ///
    /// Following Trace Context, whole members are removed: first those longer than 128
    /// characters, from the right, then the right-most ones. Pass
    /// [`TRACESTATE_PROPAGATION_LEN`] for the length every vendor must propagate.
    pub fn encode_truncated(&self, max_len: usize) -> (String, usize) {
        let mut kept: Vec<&TraceStateMember> = self.members.iter().collect();
        let mut total = encoded_len(&kept);

        while total > max_len {
            let Some(index) = kept
                .iter()
                .rposition(|member| member.encoded_len() > LONG_MEMBER_LEN)
            else {
                break;
            };
            kept.remove(index);
            total = encoded_len(&kept);
        }
        while total > max_len && kept.pop().is_some() {
            total = encoded_len(&kept);
        }

        let dropped = self.members.len() - kept.len();
        let mut out = String::with_capacity(total);
        for (index, member) in kept.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(&member.key);
            out.push('=');
            out.push_str(&member.value);
        }
        (out, dropped)
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, member) in self.members.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", member.key, member.value)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for TraceState {
    type Err = TraceStateError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl<'a> IntoIterator for &'a TraceState {
    type Item = &'a TraceStateMember;
    type IntoIter = std::slice::Iter<'a, TraceStateMember>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

fn encoded_len(members: &[&TraceStateMember]) -> usize {
    let commas = members.len().saturating_sub(1);
    members
        .iter()
        .map(|member| member.encoded_len())
        .sum::<usize>()
        + commas
}

fn parse_member(raw: &[u8], member: usize) -> Result<TraceStateMember, TraceStateError> {
    let Some(equals) = raw.iter().position(|&byte| byte == b'=') else {
        return Err(TraceStateError::MissingEquals { member });
    };
    let (key, value) = raw.split_at(equals);
    let value = value.get(1..).unwrap_or_default();

    if !is_valid_key(key) {
        return Err(TraceStateError::InvalidKey { member });
    }
    if !is_valid_value(value) {
        return Err(TraceStateError::InvalidValue { member });
    }

    // Both parts are ASCII once validated, so the conversions cannot fail.
    let (Ok(key), Ok(value)) = (std::str::from_utf8(key), std::str::from_utf8(value)) else {
        return Err(TraceStateError::InvalidValue { member });
    };
    Ok(TraceStateMember {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

fn is_key_char(byte: u8) -> bool {
    matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// Checks the simple-key and multi-tenant-key grammars of Trace Context.
fn is_valid_key(key: &[u8]) -> bool {
    match key.iter().position(|&byte| byte == b'@') {
        None => {
            matches!(key.first(), Some(b'a'..=b'z'))
                && key.len() <= MAX_SIMPLE_KEY_LEN
                && key.iter().all(|&byte| is_key_char(byte))
        }
        Some(at) => {
            let (tenant, system) = key.split_at(at);
            let system = system.get(1..).unwrap_or_default();
            matches!(tenant.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
                && tenant.len() <= MAX_TENANT_LEN
                && tenant.iter().all(|&byte| is_key_char(byte))
                && matches!(system.first(), Some(b'a'..=b'z'))
                && system.len() <= MAX_SYSTEM_LEN
                && system.iter().all(|&byte| is_key_char(byte))
        }
    }
}

/// Checks `value = 0*255(chr) nblk-chr` with `chr` in 0x20-0x7E except `,` and `=`.
fn is_valid_value(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|&byte| matches!(byte, 0x20..=0x7e) && byte != b',' && byte != b'=')
}

/// Removes the optional whitespace (spaces and horizontal tabs) HTTP allows around members.
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| byte != b' ' && byte != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&byte| byte != b' ' && byte != b'\t')
        .map_or(start, |index| index + 1);
    bytes.get(start..end).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn key_grammar_limits() {
        assert!(is_valid_key(&[b'a'; 256]));
        assert!(!is_valid_key(&[b'a'; 257]));
        let tenant = [b'0'; 241];
        assert!(is_valid_key(&[&tenant[..], b"@sys"].concat()));
        assert!(!is_valid_key(&[&[b'0'; 242][..], b"@sys"].concat()));
        assert!(is_valid_key(b"t@abcdefghijklmn"));
        assert!(!is_valid_key(b"t@abcdefghijklmno"));
        assert!(!is_valid_key(b"t@1sys"));
        assert!(!is_valid_key(b"a@b@c"));
        assert!(!is_valid_key(b""));
    }

    #[test]
    fn value_grammar_limits() {
        assert!(is_valid_value(&[b'x'; 256]));
        assert!(!is_valid_value(&[b'x'; 257]));
        assert!(is_valid_value(b" leading"));
        assert!(!is_valid_value(b"trailing "));
        assert!(!is_valid_value(b"tab\there"));
        assert!(!is_valid_value(b""));
    }

    #[test]
    fn insert_evicts_rightmost_at_limit() {
        let list: Vec<String> = (0..32).map(|index| format!("k{index}=v")).collect();
        let mut state = TraceState::parse(&list.join(",")).unwrap();
        let evicted = state.insert("new", "v").unwrap();
        assert_eq!(evicted.map(|member| member.key), Some("k31".to_owned()));
        assert_eq!(state.len(), 32);
        assert_eq!(
            state.iter().next().map(|member| member.key.as_str()),
            Some("new")
        );
    }

    #[test]
    fn insert_rejects_bad_input_unchanged() {
        let mut state = TraceState::parse("a=1").unwrap();
        assert_eq!(
            state.insert("A", "1"),
            Err(TraceStateInsertError::InvalidKey)
        );
        assert_eq!(
            state.insert("b", "x=y"),
            Err(TraceStateInsertError::InvalidValue)
        );
        assert_eq!(state.to_string(), "a=1");
    }

    #[test]
    fn truncation_removes_long_members_first() {
        let long = "l".repeat(200);
        let short = "s".repeat(100);
        let text = format!("a={short},big={long},b={short},c={short},d={short}");
        let state = TraceState::parse(&text).unwrap();
        let (encoded, dropped) = state.encode_truncated(TRACESTATE_PROPAGATION_LEN);
        assert_eq!(dropped, 1);
        assert!(!encoded.contains("big="));
        assert!(encoded.len() <= TRACESTATE_PROPAGATION_LEN);

        let (encoded, dropped) = state.encode_truncated(210);
        assert_eq!(dropped, 3);
        assert_eq!(encoded, format!("a={short},b={short}"));
    }

    #[test]
    fn trim_ows_spaces_and_tabs() {
        assert_eq!(trim_ows(b" \ta=b\t "), b"a=b");
        assert_eq!(trim_ows(b" \t "), b"");
    }
}
