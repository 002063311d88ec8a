//! A string whose `Debug` output is masked, for tokens and passwords.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string whose `Debug` output is masked.
///
/// `Serialize` writes the value in clear, so that a configuration can be written back. Print a
/// configuration through [`ConfigReport`](super::ConfigReport), which masks secrets.
///
/// ```
/// let token = obskit::config::Secret::new("hunter2");
/// assert_eq!(format!("{token:?}"), "\"****\"");
/// assert_eq!(token.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"****\"")
    }
}

/// Returns `url` with its credentials masked: the user information before `@` and every query
/// value become `****`, so an endpoint can be logged and shown in reports.
///
/// ```
/// let url = "https://user:hunter2@collector:4318/v1/traces?token=abc&tenant=acme";
/// assert_eq!(
///     obskit::config::mask_url(url),
///     "https://****@collector:4318/v1/traces?token=****&tenant=****"
/// );
/// assert_eq!(obskit::config::mask_url("http://collector:4317"), "http://collector:4317");
/// ```
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("****@{host}"),
        None => authority.to_owned(),
    };
    let (path, query_and_fragment) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };

    let mut masked = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        masked.push_str(scheme);
        masked.push_str("://");
    }
    masked.push_str(&host);
    masked.push_str(path);
    if let Some(query_and_fragment) = query_and_fragment {
        let (query, fragment) = match query_and_fragment.split_once('#') {
            Some((query, fragment)) => (query, Some(fragment)),
            None => (query_and_fragment, None),
        };
        masked.push('?');
        for (index, pair) in query.split('&').enumerate() {
            if index > 0 {
                masked.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) => {
                    masked.push_str(name);
                    masked.push_str("=****");
                }
                None => masked.push_str(pair),
            }
        }
        if let Some(fragment) = fragment {
            masked.push('#');
            masked.push_str(fragment);
        }
    }
    masked
}

#[cfg(test)]
mod mask_url_tests {
    use super::mask_url;

    #[test]
    fn masks_userinfo_and_query_values() {
        assert_eq!(
            mask_url("http://user:hunter2@127.0.0.1:4317/?token=abc"),
            "http://****@127.0.0.1:4317/?token=****"
        );
        assert_eq!(mask_url("http://a@b@host/x"), "http://****@host/x");
        assert_eq!(
            mask_url("https://host/v1/traces?a=1&flag&b=2#frag"),
            "https://host/v1/traces?a=****&flag&b=****#frag"
        );
    }

    #[test]
    fn leaves_plain_urls_alone() {
        for url in [
            "http://collector:4317",
            "https://host/v1/traces",
            "host:4317",
            "",
        ] {
            assert_eq!(mask_url(url), url);
        }
    }
}
