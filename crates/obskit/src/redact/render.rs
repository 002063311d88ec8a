//! Replacement text of a match: masked, partly kept or a keyed hash.

use std::fmt::{self, Write};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::kind::Kind;
use crate::config::{RuleMode, RuleModes};

/// Hex digits of the HMAC written by the `hash` mode: 64 bits.
const HASH_HEX_DIGITS: usize = 16;

/// The mode of every kind and the HMAC key.
#[derive(Clone)]
pub(crate) struct Renderer {
    modes: [RuleMode; Kind::ALL.len()],
    key: Option<Hmac<Sha256>>,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer")
            .field("modes", &self.modes)
            .field("key", &self.key.as_ref().map(|_| "****"))
            .finish()
    }
}

/// Returns the rule whose mode applies to `kind`.
pub(crate) fn mode_of(rules: &RuleModes, kind: Kind) -> RuleMode {
    match kind {
        Kind::Field => rules.field,
        Kind::Email => rules.email,
        Kind::Card => rules.card,
        Kind::Ssn => rules.ssn,
        Kind::Phone => rules.phone,
        Kind::Iban => rules.iban,
        Kind::Jwt => rules.jwt,
        Kind::Bearer | Kind::BasicAuth => rules.credentials,
        Kind::AwsKey => rules.aws_key,
        Kind::GithubToken | Kind::GitlabToken | Kind::SlackToken => rules.token,
        Kind::PrivateKey => rules.private_key,
        Kind::UrlCredentials => rules.url_credentials,
        Kind::Ip => rules.ip,
        Kind::Oversize | Kind::InvalidUtf8 => RuleMode::Mask,
    }
}

impl Renderer {
    /// Builds the renderer; `key` is the HMAC key of the `hash` mode.
    pub(crate) fn new(rules: &RuleModes, key: Option<&[u8]>) -> Self {
        let modes = Kind::ALL.map(|kind| mode_of(rules, kind));
        let key = key.and_then(|key| Hmac::<Sha256>::new_from_slice(key).ok());
        Self { modes, key }
    }

    /// Returns the mode of `kind`.
    pub(crate) fn mode(&self, kind: Kind) -> RuleMode {
        self.modes
            .get(kind.index())
            .copied()
            .unwrap_or(RuleMode::Mask)
    }

    /// Writes the replacement of `value`, a match of `kind`.
    pub(crate) fn write<W: Write + ?Sized>(
        &self,
        kind: Kind,
        value: &str,
        out: &mut W,
    ) -> fmt::Result {
        match self.mode(kind) {
            RuleMode::Partial if kind.keeps_last_four() => write_last_four(value, out),
            RuleMode::Partial if kind == Kind::Email => match at_sign(value) {
                Some(at) => {
                    out.write_str("***")?;
                    out.write_str(value.get(at..).unwrap_or_default())
                }
                None => write_mask(kind, out),
            },
            RuleMode::Hash => match &self.key {
                Some(key) => {
                    let mut mac = key.clone();
                    mac.update(value.as_bytes());
                    let digest = mac.finalize().into_bytes();
                    out.write_str("[REDACTED:")?;
                    out.write_str(kind.as_str())?;
                    out.write_char(':')?;
                    for byte in digest.iter().take(HASH_HEX_DIGITS / 2) {
                        write!(out, "{byte:02x}")?;
                    }
                    out.write_char(']')
                }
                None => write_mask(kind, out),
            },
            _ => write_mask(kind, out),
        }
    }
}

/// Writes `[REDACTED:kind]`.
pub(crate) fn write_mask<W: Write + ?Sized>(kind: Kind, out: &mut W) -> fmt::Result {
    out.write_str("[REDACTED:")?;
    out.write_str(kind.as_str())?;
    out.write_char(']')
}

/// Writes `value` with every letter and digit but the last four replaced by `*`; separators
/// stay in place.
/// Returns the index of the `@` of an email address, or of its URL-encoded form `%40`.
fn at_sign(email: &str) -> Option<usize> {
    email.rfind('@').or_else(|| email.rfind("%40"))
}

fn write_last_four<W: Write + ?Sized>(value: &str, out: &mut W) -> fmt::Result {
    let total = value.bytes().filter(u8::is_ascii_alphanumeric).count();
    let mut seen = 0;
    for ch in value.chars() {
        if ch.is_ascii_alphanumeric() {
            seen += 1;
            if seen + 4 > total {
                out.write_char(ch)?;
            } else {
                out.write_char('*')?;
            }
        } else {
            out.write_char(ch)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(rules: RuleModes, kind: Kind, value: &str) -> String {
        let mut out = String::new();
        Renderer::new(&rules, Some(b"key"))
            .write(kind, value, &mut out)
            .ok();
        out
    }

    #[test]
    fn modes() {
        let mut rules = RuleModes::default();
        assert_eq!(render(rules, Kind::Email, "a@b.io"), "[REDACTED:email]");
        rules.card = RuleMode::Partial;
        rules.email = RuleMode::Partial;
        rules.jwt = RuleMode::Partial;
        assert_eq!(
            render(rules, Kind::Card, "4111 1111 1111 1111"),
            "**** **** **** 1111"
        );
        assert_eq!(
            render(rules, Kind::Email, "jane@example.com"),
            "***@example.com"
        );
        assert_eq!(
            render(rules, Kind::Email, "jane%40example.com"),
            "***%40example.com",
            "a URL-encoded address keeps its encoded domain"
        );
        assert_eq!(render(rules, Kind::Jwt, "eyJ.x.y"), "[REDACTED:jwt]");
        rules.email = RuleMode::Hash;
        let first = render(rules, Kind::Email, "jane@example.com");
        assert_eq!(first, render(rules, Kind::Email, "jane@example.com"));
        assert_ne!(first, render(rules, Kind::Email, "john@example.com"));
        assert!(
            first.starts_with("[REDACTED:email:") && first.len() == "[REDACTED:email:]".len() + 16,
            "{first}"
        );
    }

    #[test]
    fn hash_differs_by_key() {
        let rules = RuleModes {
            email: RuleMode::Hash,
            ..RuleModes::default()
        };
        let mut one = String::new();
        let mut two = String::new();
        Renderer::new(&rules, Some(b"one"))
            .write(Kind::Email, "a@b.io", &mut one)
            .ok();
        Renderer::new(&rules, Some(b"two"))
            .write(Kind::Email, "a@b.io", &mut two)
            .ok();
        assert_ne!(one, two);
    }
}
