//! The PEM private key block detector.

use super::kind::Kind;
use super::text::{find_from, has_at};

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";
const PRIVATE_KEY: &[u8] = b"PRIVATE KEY";
/// The end of an OpenPGP secret key label (RFC 4880, section 6.2).
const PGP_PRIVATE_KEY: &[u8] = b"PRIVATE KEY BLOCK";

/// Returns whether a PEM or OpenPGP armor label names a private key: `RSA PRIVATE KEY`,
/// `ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK` and the like.
fn is_private_key_label(label: &[u8]) -> bool {
    label.ends_with(PRIVATE_KEY) || label.ends_with(PGP_PRIVATE_KEY)
}

/// Maximum length of the label between `-----BEGIN ` and `-----` that is looked at.
const MAX_LABEL: usize = 64;

/// Returns the end of the label of a private key `BEGIN` line at `start`, or `None` when
/// `start` does not begin one.
fn begin_line_end(bytes: &[u8], start: usize) -> Option<usize> {
    if !has_at(bytes, start, BEGIN) {
        return None;
    }
    let label = start + BEGIN.len();
    let window = bytes.get(label..(label + MAX_LABEL + DASHES.len()).min(bytes.len()))?;
    let close = window.windows(DASHES.len()).position(|w| w == DASHES)?;
    is_private_key_label(window.get(..close)?).then_some(label + close + DASHES.len())
}

/// Finds a private key block at `start`, through its `END` line; a block without one runs to the
/// end of the text.
pub(crate) fn detect(bytes: &[u8], start: usize) -> Option<(usize, usize, Kind)> {
    let header_end = begin_line_end(bytes, start)?;
    let end = block_end(bytes, header_end).unwrap_or(bytes.len());
    Some((start, end, Kind::PrivateKey))
}

/// Returns the end of the first `-----END … PRIVATE KEY-----` line at or after `from`.
pub(crate) fn block_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut search = from;
    while let Some(end_line) = find_from(bytes, search, END) {
        let label = end_line + END.len();
        let window = bytes.get(label..(label + MAX_LABEL + DASHES.len()).min(bytes.len()))?;
        if let Some(close) = window.windows(DASHES.len()).position(|w| w == DASHES)
            && window.get(..close).is_some_and(is_private_key_label)
        {
            return Some(label + close + DASHES.len());
        }
        search = label;
    }
    None
}

/// Returns whether `text` opens a private key block that it does not close, so that the
/// following lines of a multi-line input belong to the key.
pub fn opens_private_key(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut search = 0;
    while let Some(begin) = find_from(bytes, search, BEGIN) {
        match begin_line_end(bytes, begin) {
            Some(header_end) => match block_end(bytes, header_end) {
                Some(end) => search = end,
                None => return true,
            },
            None => search = begin + BEGIN.len(),
        }
    }
    false
}

/// Returns the end of the `END` line that closes a private key block opened on an earlier
/// line, or `None` when `text` does not close it.
pub fn closes_private_key(text: &str) -> Option<usize> {
    block_end(text.as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn whole_block() {
        let text = format!("key: {KEY} done");
        let found = detect(text.as_bytes(), 5).unwrap_or((0, 0, Kind::Field));
        assert_eq!(&text[found.0..found.1], KEY);
    }

    #[test]
    fn unterminated_block_runs_to_end() {
        let text = "-----BEGIN PRIVATE KEY-----\nMIIE";
        assert_eq!(detect(text.as_bytes(), 0).map(|f| f.1), Some(text.len()));
        assert!(opens_private_key(text));
        assert!(!opens_private_key(KEY));
        assert_eq!(
            closes_private_key("abc\n-----END PRIVATE KEY----- tail"),
            Some(29)
        );
    }

    #[test]
    fn pgp_secret_key_block() {
        let block =
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGV\n-----END PGP PRIVATE KEY BLOCK-----";
        let text = format!("export {block} done");
        let found = detect(text.as_bytes(), 7).map(|(s, e, _)| &text[s..e]);
        assert_eq!(found, Some(block));
        assert_eq!(
            detect(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQIN", 0),
            None
        );
    }

    #[test]
    fn certificates_are_not_keys() {
        assert_eq!(detect(b"-----BEGIN CERTIFICATE-----\nMIIB", 0), None);
    }
}
