//! Detectors inside URLs: the credentials of `scheme://user:pass@host` and the secret path of
//! Slack webhooks.

use super::kind::Kind;
use super::text::{at, has_at, has_at_ignore_case, run_end};

fn is_scheme(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.')
}

/// Returns whether `byte` ends the authority of a URL.
fn ends_authority(byte: u8) -> bool {
    matches!(
        byte,
        b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\' | 0
    ) || byte.is_ascii_whitespace()
}

/// Examines the URL whose `://` is at `colon`. Returns the user and password of its
/// authority, or the secret path of a Slack webhook.
pub(crate) fn detect(bytes: &[u8], colon: usize, floor: usize) -> Option<(usize, usize, Kind)> {
    if !has_at(bytes, colon, b"://") {
        return None;
    }
    let mut scheme_start = colon;
    while scheme_start > floor && is_scheme(at(bytes, scheme_start - 1)) {
        scheme_start -= 1;
    }
    if scheme_start == colon || !at(bytes, scheme_start).is_ascii_alphabetic() {
        return None;
    }
    let authority = colon + 3;
    let authority_end = run_end(bytes, authority, |b| !ends_authority(b));
    let userinfo_end = bytes
        .get(authority..authority_end)?
        .iter()
        .rposition(|&b| b == b'@')
        .map(|position| authority + position);
    if let Some(userinfo_end) = userinfo_end {
        let userinfo = bytes.get(authority..userinfo_end)?;
        if userinfo.contains(&b':') {
            return Some((authority, userinfo_end, Kind::UrlCredentials));
        }
        return None;
    }
    let host = bytes.get(authority..authority_end)?;
    if host.eq_ignore_ascii_case(b"hooks.slack.com")
        && has_at_ignore_case(bytes, authority_end, b"/services/")
    {
        let secret = authority_end + b"/services/".len();
        let end = run_end(bytes, secret, |b| b.is_ascii_alphanumeric() || b == b'/');
        if end > secret {
            return Some((secret, end, Kind::SlackToken));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(text: &str) -> Option<&str> {
        let colon = text.find("://")?;
        detect(text.as_bytes(), colon, 0).map(|(s, e, _)| &text[s..e])
    }

    #[test]
    fn credentials() {
        assert_eq!(
            matched("postgres://app:s3cret@db:5432/x"),
            Some("app:s3cret")
        );
        assert_eq!(matched("redis://:pw@cache"), Some(":pw"));
        assert_eq!(matched("https://user:p@ss@host/p"), Some("user:p@ss"));
        assert_eq!(matched("ssh://git@github.com/x"), None);
        assert_eq!(matched("https://example.com/a@b"), None);
        assert_eq!(matched("://x:y@z"), None);
    }

    #[test]
    fn slack_webhook() {
        assert_eq!(
            matched("https://hooks.slack.com/services/T000/B000/XXXXXXXX"),
            Some("T000/B000/XXXXXXXX")
        );
    }
}
