//! The kinds of redacted values, which name the placeholder and the counter label.

use std::fmt;

/// Kind of a redacted value, as written in `[REDACTED:kind]` and in the `kind` label of
/// `obskit_redactions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// The value of a field with a sensitive name, or of a `name=value` pair in text.
    Field,
    /// An email address.
    Email,
    /// A payment card number.
    Card,
    /// A US social security number.
    Ssn,
    /// A phone number.
    Phone,
    /// An IBAN.
    Iban,
    /// A JSON Web Token.
    Jwt,
    /// A `Bearer` credential.
    Bearer,
    /// A `Basic` credential.
    BasicAuth,
    /// An AWS access key id.
    AwsKey,
    /// A GitHub token.
    GithubToken,
    /// A GitLab token.
    GitlabToken,
    /// A Slack token or webhook secret.
    SlackToken,
    /// A PEM private key block.
    PrivateKey,
    /// The credentials of a URL.
    UrlCredentials,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A value longer than the scan limit, replaced whole.
    Oversize,
    /// Bytes that are not UTF-8, replaced whole.
    InvalidUtf8,
}

impl Kind {
    /// Every kind, in label order.
    pub const ALL: [Kind; 18] = [
        Kind::Field,
        Kind::Email,
        Kind::Card,
        Kind::Ssn,
        Kind::Phone,
        Kind::Iban,
        Kind::Jwt,
        Kind::Bearer,
        Kind::BasicAuth,
        Kind::AwsKey,
        Kind::GithubToken,
        Kind::GitlabToken,
        Kind::SlackToken,
        Kind::PrivateKey,
        Kind::UrlCredentials,
        Kind::Ip,
        Kind::Oversize,
        Kind::InvalidUtf8,
    ];

    /// Returns the label value and placeholder name, such as `email`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Field => "field",
            Kind::Email => "email",
            Kind::Card => "card",
            Kind::Ssn => "ssn",
            Kind::Phone => "phone",
            Kind::Iban => "iban",
            Kind::Jwt => "jwt",
            Kind::Bearer => "bearer",
            Kind::BasicAuth => "basic_auth",
            Kind::AwsKey => "aws_key",
            Kind::GithubToken => "github_token",
            Kind::GitlabToken => "gitlab_token",
            Kind::SlackToken => "slack_token",
            Kind::PrivateKey => "private_key",
            Kind::UrlCredentials => "url_credentials",
            Kind::Ip => "ip",
            Kind::Oversize => "oversize",
            Kind::InvalidUtf8 => "invalid_utf8",
        }
    }

    /// Position in [`Kind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Returns whether partial mode keeps the last four digits or letters of this kind.
    pub(crate) fn keeps_last_four(self) -> bool {
        matches!(self, Kind::Card | Kind::Ssn | Kind::Phone | Kind::Iban)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_position_in_all() {
        for (position, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position, "{kind}");
        }
    }

    #[test]
    fn labels_are_snake_case_and_distinct() {
        let mut labels: Vec<_> = Kind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert!(labels.iter().all(|label| {
            label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }));
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Kind::ALL.len());
    }
}
