//! Detectors for credentials with a recognisable shape: JWTs, AWS access key ids, GitHub,
//! GitLab and Slack tokens, and `Bearer` and `Basic` credentials.

use super::kind::Kind;
use super::text::{at, has_at, has_at_ignore_case, run_end, word_end};

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

fn is_upper_alnum(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit()
}

/// Finds a JWT at `start`, in either compact form, each part base64url and the header starting
/// `eyJ`. A JWS has a header, a payload and a signature that may be empty. A JWE has a header,
/// an encrypted key (empty for direct encryption), an initialization vector, a ciphertext and
/// a tag.
///
/// A `.` after the last part that no base64url byte follows, as at the end of a sentence, is
/// not part of the token. Dotted runs with other numbers of parts are not JWTs.
pub(crate) fn detect_jwt(bytes: &[u8], start: usize) -> Option<(usize, usize, Kind)> {
    if !has_at(bytes, start, b"eyJ") {
        return None;
    }
    let header_end = run_end(bytes, start, is_base64url);
    if header_end - start < 10 || at(bytes, header_end) != b'.' {
        return None;
    }
    // Starts and ends of the parts after the header, as many as a JWE has.
    let mut parts = [(0, 0); 4];
    let mut count = 0;
    let mut separator = header_end;
    for part in &mut parts {
        let end = run_end(bytes, separator + 1, is_base64url);
        *part = (separator + 1, end);
        count += 1;
        // The separator before a JWS signature is there even when the signature is empty.
        let more = if count == 1 {
            at(bytes, end) == b'.'
        } else {
            separates_parts(bytes, end)
        };
        if !more {
            break;
        }
        separator = end;
    }
    let len = |(part_start, end): (usize, usize)| end - part_start;
    match (count, parts) {
        (2, [payload, signature, ..]) if len(payload) >= 2 => Some((start, signature.1, Kind::Jwt)),
        (4, [_, iv, ciphertext, tag])
            if !separates_parts(bytes, tag.1)
                && len(iv) > 0
                && len(ciphertext) > 0
                && len(tag) > 0 =>
        {
            Some((start, tag.1, Kind::Jwt))
        }
        _ => None,
    }
}

/// Returns whether a `.` at `index` leads to another part of a token: a base64url byte or
/// another `.` follows it.
fn separates_parts(bytes: &[u8], index: usize) -> bool {
    at(bytes, index) == b'.' && {
        let next = at(bytes, index + 1);
        is_base64url(next) || next == b'.'
    }
}

/// Prefixes of AWS access key ids: long-term user keys, temporary keys and other resources.
const AWS_PREFIXES: [&[u8]; 12] = [
    b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"AGPA", b"AIDA", b"AIPA", b"ANPA", b"ANVA", b"APKA",
    b"AROA", b"ASCA",
];

/// Finds an AWS access key id at `start`: a known prefix and 16 uppercase letters or digits.
pub(crate) fn detect_aws(bytes: &[u8], start: usize) -> Option<(usize, usize, Kind)> {
    if !AWS_PREFIXES
        .iter()
        .any(|prefix| has_at(bytes, start, prefix))
    {
        return None;
    }
    let end = run_end(bytes, start + 4, is_upper_alnum);
    (end - start == 20 && word_end(bytes, end)).then_some((start, end, Kind::AwsKey))
}

/// Token prefixes with their kind, the bytes allowed after the prefix and the fewest of them.
struct TokenShape {
    prefix: &'static [u8],
    kind: Kind,
    dashes: bool,
    min_len: usize,
}

const fn shape(prefix: &'static [u8], kind: Kind, dashes: bool, min_len: usize) -> TokenShape {
    TokenShape {
        prefix,
        kind,
        dashes,
        min_len,
    }
}

/// GitHub token prefixes.
const GITHUB_SHAPES: &[TokenShape] = &[
    shape(b"ghp_", Kind::GithubToken, false, 30),
    shape(b"gho_", Kind::GithubToken, false, 30),
    shape(b"ghu_", Kind::GithubToken, false, 30),
    shape(b"ghs_", Kind::GithubToken, false, 30),
    shape(b"ghr_", Kind::GithubToken, false, 30),
    shape(b"github_pat_", Kind::GithubToken, false, 22),
];

/// GitLab token prefixes.
const GITLAB_SHAPES: &[TokenShape] = &[
    shape(b"glpat-", Kind::GitlabToken, true, 20),
    shape(b"gldt-", Kind::GitlabToken, true, 20),
    shape(b"glrt-", Kind::GitlabToken, true, 20),
    shape(b"glrtr-", Kind::GitlabToken, true, 20),
    shape(b"glcbt-", Kind::GitlabToken, true, 20),
    shape(b"glptt-", Kind::GitlabToken, true, 20),
    shape(b"glft-", Kind::GitlabToken, true, 20),
    shape(b"glimt-", Kind::GitlabToken, true, 20),
    shape(b"glagent-", Kind::GitlabToken, true, 20),
    shape(b"glsoat-", Kind::GitlabToken, true, 20),
    shape(b"gloas-", Kind::GitlabToken, true, 20),
    shape(b"glffct-", Kind::GitlabToken, true, 20),
];

/// The GitLab runner registration token prefix.
const RUNNER_SHAPES: &[TokenShape] = &[shape(b"GR1348941", Kind::GitlabToken, true, 20)];

/// Slack token prefixes.
const SLACK_SHAPES: &[TokenShape] = &[
    shape(b"xoxb-", Kind::SlackToken, true, 10),
    shape(b"xoxp-", Kind::SlackToken, true, 10),
    shape(b"xoxa-", Kind::SlackToken, true, 10),
    shape(b"xoxr-", Kind::SlackToken, true, 10),
    shape(b"xoxs-", Kind::SlackToken, true, 10),
    shape(b"xoxo-", Kind::SlackToken, true, 10),
    shape(b"xoxe-", Kind::SlackToken, true, 10),
    shape(b"xoxe.xoxp-", Kind::SlackToken, true, 10),
    shape(b"xapp-", Kind::SlackToken, true, 10),
];

/// Finds a GitHub, GitLab or Slack token at `start`.
pub(crate) fn detect_prefixed_token(bytes: &[u8], start: usize) -> Option<(usize, usize, Kind)> {
    let shapes = match (at(bytes, start), at(bytes, start + 1)) {
        (b'g', b'h' | b'i') => GITHUB_SHAPES,
        (b'g', b'l') => GITLAB_SHAPES,
        (b'G', b'R') => RUNNER_SHAPES,
        (b'x', b'o' | b'a') => SLACK_SHAPES,
        _ => return None,
    };
    for token in shapes {
        if !has_at(bytes, start, token.prefix) {
            continue;
        }
        let body = start + token.prefix.len();
        let end = if token.dashes {
            run_end(bytes, body, |b| {
                b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
            })
        } else if token.prefix == b"github_pat_" {
            run_end(bytes, body, |b| b.is_ascii_alphanumeric() || b == b'_')
        } else {
            run_end(bytes, body, |b| b.is_ascii_alphanumeric())
        };
        if end - body >= token.min_len && word_end(bytes, end) {
            return Some((start, end, token.kind));
        }
    }
    None
}

/// Bytes of an RFC 6750 `b64token`.
fn is_b64token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// Finds a `Bearer` or `Basic` credential after the scheme word at `start`, matched case-insensitively.
///
/// The match is the credential, without the scheme. A bearer token needs eight or more bytes
/// and a digit or symbol, or twenty or more bytes, so that prose such as "bearer token
/// expired" is left alone. A basic credential must decode to `user:password` and contain a
/// byte other than a lowercase letter, because a lowercase word such as `ajoa` also decodes
/// to text with a `:`.
pub(crate) fn detect_auth_scheme(bytes: &[u8], start: usize) -> Option<(usize, usize, Kind)> {
    let (scheme_len, kind) = if has_at_ignore_case(bytes, start, b"bearer") {
        (6, Kind::Bearer)
    } else if has_at_ignore_case(bytes, start, b"basic") {
        (5, Kind::BasicAuth)
    } else {
        return None;
    };
    let after = start + scheme_len;
    if at(bytes, after) != b' ' {
        return None;
    }
    let token = run_end(bytes, after, |b| b == b' ');
    let body_end = run_end(bytes, token, is_b64token);
    let end = run_end(bytes, body_end, |b| b == b'=');
    if !word_end(bytes, end) && at(bytes, end) != b'.' {
        return None;
    }
    let credential = bytes.get(token..end)?;
    let accepted = match kind {
        Kind::Bearer => is_bearer_token(credential),
        _ => !credential.iter().all(u8::is_ascii_lowercase) && decodes_to_user_password(credential),
    };
    accepted.then_some((token, end, kind))
}

fn is_bearer_token(token: &[u8]) -> bool {
    let symbol = token.iter().any(|&b| {
        b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
    });
    (token.len() >= 8 && symbol) || token.len() >= 20
}

/// Returns whether `token` is standard base64 of text containing `:`.
fn decodes_to_user_password(token: &[u8]) -> bool {
    let data_len = token.iter().position(|&b| b == b'=').unwrap_or(token.len());
    if token.len() < 4 || !token.len().is_multiple_of(4) || token.len() - data_len > 2 {
        return false;
    }
    let (data, padding) = token.split_at(data_len);
    if !padding.iter().all(|&b| b == b'=') {
        return false;
    }
    let mut bits = 0u32;
    let mut held = 0u32;
    let mut colon = false;
    for &byte in data {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        bits = (bits << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            colon |= (bits >> held) & 0xff == u32::from(b':');
            bits &= (1 << held) - 1;
        }
    }
    colon
}

#[cfg(test)]
mod tests {
    use super::*;

    type Detector = fn(&[u8], usize) -> Option<(usize, usize, Kind)>;

    fn matched(detector: Detector, text: &str) -> Option<String> {
        detector(text.as_bytes(), 0).map(|(s, e, _)| text[s..e].to_owned())
    }

    #[test]
    fn jwt() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(matched(detect_jwt, jwt).as_deref(), Some(jwt));
        assert_eq!(
            matched(detect_jwt, "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.").as_deref(),
            Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")
        );
        assert_eq!(matched(detect_jwt, "eyJust a word"), None);
        assert_eq!(
            matched(detect_jwt, &format!("{jwt}. Next")).as_deref(),
            Some(jwt),
            "a period ends the sentence, not the token"
        );
        assert_eq!(
            matched(detect_jwt, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig.more"),
            None,
            "four parts"
        );
    }

    #[test]
    fn jwe() {
        let jwe = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..48V1_ALb6US04U3b.5eym8TW_c8Su.XFBoMYUZodetZdvTiFvSkQ";
        assert_eq!(matched(detect_jwt, jwe).as_deref(), Some(jwe));
        assert_eq!(
            matched(detect_jwt, &format!("{jwe}.")).as_deref(),
            Some(jwe)
        );
        assert_eq!(
            matched(
                detect_jwt,
                "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..iv..tag"
            ),
            None,
            "empty ciphertext"
        );
        assert_eq!(
            matched(detect_jwt, &format!("{jwe}.sixth")),
            None,
            "six parts"
        );
    }

    #[test]
    fn aws() {
        assert_eq!(
            matched(detect_aws, "AKIAIOSFODNN7EXAMPLE").as_deref(),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        assert_eq!(matched(detect_aws, "AKIAIOSFODNN7EXAMPLEX"), None);
        assert_eq!(matched(detect_aws, "AKIA1234"), None);
    }

    #[test]
    fn prefixed_tokens() {
        let gh = format!("ghp_{}", "a1B2c3D4e5".repeat(4));
        assert_eq!(matched(detect_prefixed_token, &gh), Some(gh.clone()));
        assert_eq!(matched(detect_prefixed_token, "ghp_short"), None);
        assert_eq!(
            matched(detect_prefixed_token, "glpat-xxxxxxxxxxxxxxxxxxxx").as_deref(),
            Some("glpat-xxxxxxxxxxxxxxxxxxxx")
        );
        assert_eq!(
            matched(detect_prefixed_token, "xoxb-1234567890-abcdefghij").as_deref(),
            Some("xoxb-1234567890-abcdefghij")
        );
    }

    #[test]
    fn auth_schemes() {
        assert_eq!(
            matched(detect_auth_scheme, "Bearer abc.def-123").as_deref(),
            Some("abc.def-123")
        );
        assert_eq!(matched(detect_auth_scheme, "bearer token expired"), None);
        assert_eq!(
            matched(detect_auth_scheme, "Basic dXNlcjpwYXNz").as_deref(),
            Some("dXNlcjpwYXNz")
        );
        assert_eq!(
            matched(detect_auth_scheme, "Basic YWxhZGRpbjpvcGVuc2VzYW1l").as_deref(),
            Some("YWxhZGRpbjpvcGVuc2VzYW1l")
        );
        assert_eq!(matched(detect_auth_scheme, "basic auth failed"), None);
        assert_eq!(
            matched(detect_auth_scheme, "basic aaaaaaaaajoa"),
            None,
            "a lowercase word that decodes to text with a colon"
        );
        assert_eq!(
            matched(detect_auth_scheme, "Basic aGVsbG8="),
            None,
            "no colon inside"
        );
    }
}
