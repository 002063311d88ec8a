//! Sensitive field names, matched on whole name segments.

use crate::config::FieldNames;

/// The built-in sensitive names, as segment lists written in snake case.
pub const DEFAULT_FIELD_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "private_key",
    "authorization",
    "proxy_authorization",
    "cookie",
    "set_cookie",
    "session",
    "sessionid",
    "credential",
    "credentials",
    "credit_card",
    "card_number",
    "cvv",
    "cvc",
    "ssn",
    "jwt",
    "otp",
    "signature",
    "sig",
];

/// Matches field names against a list of sensitive names by whole segments.
#[derive(Debug, Clone)]
pub(crate) struct NameMatcher {
    /// Each sensitive name as lowercase segments.
    entries: Vec<Box<[Box<str>]>>,
    /// Bit `quick_key(segment)` is set for the first segment of every entry.
    first_segments: u128,
    /// Indexes into `entries` by the bit of their first segment.
    buckets: Vec<Vec<usize>>,
    /// Names written as they are, lowercase.
    allowed: Vec<Box<str>>,
    /// Length of the shortest entry; shorter names cannot match.
    shortest: usize,
    /// Fewest ASCII letters of any entry; names with fewer letters cannot match.
    fewest_letters: usize,
}

impl NameMatcher {
    /// Builds the list from the built-in names, or `config.names`, plus `add`, less `remove`.
    pub(crate) fn new(config: &FieldNames, allowed: &[String]) -> Self {
        let base: Vec<&str> = match &config.names {
            Some(names) => names.iter().map(String::as_str).collect(),
            None => DEFAULT_FIELD_NAMES.to_vec(),
        };
        let removed: Vec<Vec<String>> = config
            .remove
            .iter()
            .map(|name| lower_segments(name))
            .collect();
        let mut entries: Vec<Box<[Box<str>]>> = Vec::new();
        for name in base
            .into_iter()
            .chain(config.add.iter().map(String::as_str))
        {
            let segments = lower_segments(name);
            if segments.is_empty() || removed.contains(&segments) {
                continue;
            }
            let entry: Box<[Box<str>]> = segments.into_iter().map(String::into_boxed_str).collect();
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        let first_segments = entries
            .iter()
            .filter_map(|entry| entry.first())
            .fold(0u128, |bits, first| bits | quick_bit(first.as_bytes()));
        let mut buckets = vec![Vec::new(); 128];
        for (index, entry) in entries.iter().enumerate() {
            if let Some(bucket) = entry
                .first()
                .and_then(|first| buckets.get_mut(quick_index(first.as_bytes())))
            {
                bucket.push(index);
            }
        }
        let shortest = entries
            .iter()
            .map(|entry| entry.iter().map(|part| part.len()).sum::<usize>())
            .min()
            .unwrap_or(usize::MAX);
        let fewest_letters = entries
            .iter()
            .map(|entry| {
                entry
                    .iter()
                    .map(|part| part.bytes().filter(u8::is_ascii_alphabetic).count())
                    .sum::<usize>()
            })
            .min()
            .unwrap_or(usize::MAX);
        Self {
            entries,
            first_segments,
            buckets,
            shortest,
            fewest_letters,
            allowed: allowed
                .iter()
                .map(|name| name.to_ascii_lowercase().into_boxed_str())
                .collect(),
        }
    }

    /// Returns whether `name` is on the allow list, whose fields are not redacted.
    pub(crate) fn is_allowed(&self, name: &str) -> bool {
        !self.allowed.is_empty()
            && self
                .allowed
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name))
    }

    /// Returns the entries whose first segment has the same quick bit as `segment`.
    fn bucket(&self, segment: &[u8]) -> impl Iterator<Item = &[Box<str>]> {
        self.buckets
            .get(quick_index(segment))
            .into_iter()
            .flatten()
            .filter_map(|&index| self.entries.get(index).map(|entry| &**entry))
    }

    /// Returns whether `name` contains a sensitive name's segments side by side.
    pub(crate) fn is_sensitive(&self, name: &str) -> bool {
        self.is_sensitive_bytes(name.as_bytes())
    }

    /// [`is_sensitive`](Self::is_sensitive) for a name given as bytes.
    pub(crate) fn is_sensitive_bytes(&self, bytes: &[u8]) -> bool {
        if bytes.len() < self.shortest {
            return false;
        }
        // A name of lowercase letters alone is one segment, so it matches only an entry of
        // that one segment.
        if bytes.iter().all(u8::is_ascii_lowercase) {
            return self.first_segments & quick_bit(bytes) != 0
                && self
                    .bucket(bytes)
                    .any(|entry| matches!(entry, [only] if only.as_bytes() == bytes));
        }
        if bytes.iter().filter(|b| b.is_ascii_alphabetic()).count() < self.fewest_letters {
            return false;
        }
        let segment = |(start, end): (usize, usize)| bytes.get(start..end).unwrap_or_default();
        let mut segments = Segments::new(bytes);
        while let Some(first) = segments.next() {
            let first = segment(first);
            if self.first_segments & quick_bit(first) == 0 {
                continue;
            }
            for entry in self.bucket(first) {
                let Some((head, rest)) = entry.split_first() else {
                    continue;
                };
                if !first.eq_ignore_ascii_case(head.as_bytes()) {
                    continue;
                }
                // The iterator is a cursor, so copying it reads the following segments again.
                let mut following = segments.clone();
                let matched = rest.iter().all(|part| {
                    following
                        .next()
                        .is_some_and(|next| segment(next).eq_ignore_ascii_case(part.as_bytes()))
                });
                if matched {
                    return true;
                }
            }
        }
        false
    }
}

/// Returns a bit chosen by a segment's length and lowercase first and last bytes.
fn quick_bit(segment: &[u8]) -> u128 {
    if segment.is_empty() {
        return 0;
    }
    1u128 << quick_index(segment)
}

/// Returns a number below 128 chosen by a segment's length and lowercase first and last bytes.
fn quick_index(segment: &[u8]) -> usize {
    let (Some(first), Some(last)) = (segment.first(), segment.last()) else {
        return 0;
    };
    let key = segment.len() * 31
        + usize::from(first.to_ascii_lowercase()) * 7
        + usize::from(last.to_ascii_lowercase());
    key % 128
}

/// Splits `name` into lowercase segments.
fn lower_segments(name: &str) -> Vec<String> {
    let bytes = name.as_bytes();
    Segments::new(bytes)
        .filter_map(|(start, end)| name.get(start..end))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Iterates over the byte ranges of a name's segments.
///
/// Segments end at `_`, `-`, `.`, `/`, `:` and whitespace. A new segment also starts where a
/// letter and a digit meet (`cvv2` is `cvv` and `2`) and at an uppercase letter after a
/// lowercase letter (`userPassword`). In a run of uppercase letters followed by a lowercase
/// letter, the last uppercase letter starts the new segment (`APIKey` is `API` and `Key`).
#[derive(Clone)]
pub(crate) struct Segments<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Segments<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }
}

fn is_separator(byte: u8) -> bool {
    matches!(byte, b'_' | b'-' | b'.' | b'/' | b':') || byte.is_ascii_whitespace()
}

impl Iterator for Segments<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let bytes = self.bytes;
        while bytes.get(self.position).is_some_and(|&b| is_separator(b)) {
            self.position += 1;
        }
        let start = self.position;
        if start >= bytes.len() {
            return None;
        }
        let mut end = start + 1;
        while let Some(&byte) = bytes.get(end) {
            if is_separator(byte) {
                break;
            }
            let previous = bytes.get(end - 1).copied().unwrap_or(b' ');
            if (byte.is_ascii_digit() && previous.is_ascii_alphabetic())
                || (byte.is_ascii_alphabetic() && previous.is_ascii_digit())
            {
                break;
            }
            if byte.is_ascii_uppercase() {
                if previous.is_ascii_lowercase() {
                    break;
                }
                // `APIKey`: the `K` starts a segment when a lowercase letter follows it.
                if previous.is_ascii_uppercase()
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_lowercase)
                {
                    break;
                }
            }
            end += 1;
        }
        self.position = end;
        Some((start, end))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    fn default_matcher() -> NameMatcher {
        NameMatcher::new(&FieldNames::default(), &[])
    }

    fn split(name: &str) -> Vec<&str> {
        Segments::new(name.as_bytes())
            .map(|(start, end)| &name[start..end])
            .collect()
    }

    #[test]
    fn splits_at_separators_and_case_changes() {
        assert_eq!(split("X-Api-Key"), ["X", "Api", "Key"]);
        assert_eq!(split("userPassword"), ["user", "Password"]);
        assert_eq!(split("APIKey"), ["API", "Key"]);
        assert_eq!(split("db.password"), ["db", "password"]);
        assert_eq!(split("__set_cookie__"), ["set", "cookie"]);
        assert_eq!(split("oauth2Token"), ["oauth", "2", "Token"]);
        assert_eq!(split("password2"), ["password", "2"]);
        assert_eq!(split("CVV2"), ["CVV", "2"]);
        assert_eq!(split("2fa_code"), ["2", "fa", "code"]);
        assert_eq!(split("HTTPServer"), ["HTTP", "Server"]);
        assert!(split("").is_empty());
        assert!(split("._-").is_empty());
    }

    #[test]
    fn matches_whole_segments_only() {
        let names = default_matcher();
        for sensitive in [
            "password",
            "PASSWORD",
            "X-Api-Key",
            "userPassword",
            "db.password",
            "apiKey",
            "api_key",
            "apikey",
            "Authorization",
            "proxy-authorization",
            "Set-Cookie",
            "refresh_token",
            "session_id",
            "creditCardNumber",
            "user.ssn",
            "AWS_SECRET_ACCESS_KEY",
            "client_secret",
        ] {
            assert!(names.is_sensitive(sensitive), "{sensitive} should match");
        }
        for clean in [
            "author",
            "tokens_used",
            "secretary",
            "apikeys",
            "passwords_checked_count_x",
            "user_id",
            "cookies_enabled",
            "key",
            "card",
            "",
        ] {
            assert!(!names.is_sensitive(clean), "{clean} should not match");
        }
    }

    #[test]
    fn lowercase_names_match_whole_entries() {
        let names = default_matcher();
        for entry in DEFAULT_FIELD_NAMES
            .iter()
            .filter(|name| !name.contains('_'))
        {
            assert!(names.is_sensitive(entry), "{entry} should match");
        }
        // First segments of longer entries, and names whose quick bit is an entry's.
        for clean in [
            "id", "api", "access", "client", "credit", "set", "proxy", "auth", "items", "cache",
        ] {
            assert!(!names.is_sensitive(clean), "{clean} should not match");
        }
        let added = NameMatcher::new(
            &FieldNames {
                names: None,
                add: vec!["PIN".to_owned()],
                remove: Vec::new(),
            },
            &[],
        );
        assert!(added.is_sensitive("pin"));
    }

    #[test]
    fn add_remove_and_replace() {
        let config = FieldNames {
            names: None,
            add: vec!["internalNote".to_owned()],
            remove: vec!["SESSION".to_owned()],
        };
        let names = NameMatcher::new(&config, &[]);
        assert!(names.is_sensitive("internal_note"));
        assert!(!names.is_sensitive("session"));
        assert!(names.is_sensitive("password"));

        let replaced = NameMatcher::new(
            &FieldNames {
                names: Some(vec!["pin".to_owned()]),
                add: Vec::new(),
                remove: Vec::new(),
            },
            &[],
        );
        assert!(replaced.is_sensitive("user_pin"));
        assert!(!replaced.is_sensitive("password"));
    }

    #[test]
    fn allow_list_is_exact_and_case_insensitive() {
        let names = NameMatcher::new(&FieldNames::default(), &["Support_Email".to_owned()]);
        assert!(names.is_allowed("support_email"));
        assert!(!names.is_allowed("support_email_2"));
    }

    #[test]
    fn many_segments_still_match() {
        let names = default_matcher();
        let long = format!("{}password", "a_".repeat(40));
        assert!(names.is_sensitive(&long));
        assert!(!names.is_sensitive(&"a_".repeat(40)));
    }
}
