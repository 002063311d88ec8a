//! Bearer token authentication for `/metrics` and the lockout of clients that keep failing it.

use std::time::{Duration, Instant};

use http::HeaderValue;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use subtle::ConstantTimeEq;

use super::AdminError;
use crate::keyed::{BoundedTable, ClientKey};

/// Maximum length of a bearer token in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Length of the padded buffers that are compared: an 8-byte length prefix, then the token.
const PADDED_LEN: usize = 8 + MAX_TOKEN_LEN;

/// The outcome of checking an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    Authorized,
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>`, or a token longer than [`MAX_TOKEN_LEN`].
    Malformed,
    /// A well-formed bearer token that does not match.
    Invalid,
}

impl AuthOutcome {
    /// Returns the `reason` label of `obskit_metrics_auth_failures_total`.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Authorized => "none",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
        }
    }
}

/// The expected bearer token, kept padded so that comparison time does not depend on its length.
pub(crate) struct BearerAuth {
    expected: Box<[u8; PADDED_LEN]>,
}

impl BearerAuth {
    /// Prepares `token` for comparison.
    ///
    /// # Errors
    ///
    /// [`AdminError::InvalidToken`] when the token is empty, longer than [`MAX_TOKEN_LEN`] or has
    /// characters outside printable ASCII without spaces, which a client could not send.
    pub(crate) fn new(token: &str) -> Result<Self, AdminError> {
        let reason = if token.is_empty() {
            Some("it is empty")
        } else if token.len() > MAX_TOKEN_LEN {
            Some("it is longer than 4096 bytes")
        } else if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            Some("it contains whitespace, control or non-ASCII characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(AdminError::InvalidToken { reason });
        }
        let expected = pad(token.as_bytes()).ok_or(AdminError::InvalidToken {
            reason: "it is longer than 4096 bytes",
        })?;
        Ok(Self { expected })
    }

    /// Checks the `Authorization` header of a request.
    pub(crate) fn verify(&self, header: Option<&HeaderValue>) -> AuthOutcome {
        let Some(header) = header else {
            return AuthOutcome::Missing;
        };
        let Some(token) = parse_bearer(header.as_bytes()) else {
            return AuthOutcome::Malformed;
        };
        let Some(presented) = pad(token) else {
            return AuthOutcome::Malformed;
        };
        // Both buffers have the same fixed length and include the token length, so the
        // comparison takes the same time whatever the tokens are and where they differ.
        if bool::from(presented.as_slice().ct_eq(self.expected.as_slice())) {
            AuthOutcome::Authorized
        } else {
            AuthOutcome::Invalid
        }
    }
}

/// Returns the token of `Bearer <token>` (scheme case-insensitive, RFC 7235), or `None` when the
/// header has another form.
fn parse_bearer(header: &[u8]) -> Option<&[u8]> {
    let scheme = header.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = header.get(7..)?.trim_ascii();
    if token.is_empty() || !token.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    Some(token)
}

fn pad(token: &[u8]) -> Option<Box<[u8; PADDED_LEN]>> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut padded = Box::new([0_u8; PADDED_LEN]);
    let (length, rest) = padded.split_at_mut(8);
    length.copy_from_slice(&(token.len() as u64).to_le_bytes());
    rest.get_mut(..token.len())?.copy_from_slice(token);
    Some(padded)
}

/// Failed authentications of one client within the current window.
#[derive(Debug, Clone, Copy)]
struct FailureRecord {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Locks out clients after `max_failures` failed authentications within `lockout`.
///
/// The window that counts failures and the lockout have the same length. A successful
/// authentication clears the client's failures.
pub(crate) struct AuthLockout {
    table: Mutex<BoundedTable<ClientKey, FailureRecord>>,
    max_failures: u32,
    lockout: Duration,
}

impl AuthLockout {
    /// Creates a lockout; `max_failures == 0` disables it.
    pub(crate) fn new(
        max_failures: u32,
        lockout: Duration,
        max_clients: usize,
        evictions: Counter,
    ) -> Self {
        Self {
            table: Mutex::new(BoundedTable::new(max_clients, evictions)),
            max_failures,
            lockout,
        }
    }

    /// Returns the remaining lockout of `client`, if it is locked out at `now`.
    pub(crate) fn remaining(&self, client: ClientKey, now: Instant) -> Option<Duration> {
        let table = self.table.lock();
        let locked_until = table.get(&client)?.locked_until?;
        (locked_until > now).then(|| locked_until - now)
    }

    /// Counts a failure of `client` and returns whether it is now locked out.
    pub(crate) fn record_failure(&self, client: ClientKey, now: Instant) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let mut table = self.table.lock();
        let fresh = FailureRecord {
            failures: 0,
            window_start: now,
            locked_until: None,
        };
        let mut record = table.get(&client).copied().unwrap_or(fresh);
        if now.saturating_duration_since(record.window_start) >= self.lockout {
            record = fresh;
        }

        record.failures = record.failures.saturating_add(1);
        let locked = record.failures >= self.max_failures;
        if locked {
            record = FailureRecord {
                failures: 0,
                window_start: now,
                locked_until: Some(now + self.lockout),
            };
        }
        table.insert(client, record);
        locked
    }

    /// Forgets the failures of `client` after it authenticated.
    pub(crate) fn record_success(&self, client: ClientKey) {
        let mut table = self.table.lock();
        if table
            .get_mut(&client)
            .is_some_and(|record| record.locked_until.is_none())
        {
            table.remove(&client);
        }
    }

    #[cfg(test)]
    pub(crate) fn tracked_clients(&self) -> usize {
        self.table.lock().len()
    }
}

/// Minimum time between two lockout log lines; lockouts in between are counted and reported
/// with the next line.
const LOCKOUT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Rate limit of the lockout WARN line, so that many clients failing at once cannot flood logs.
#[derive(Default)]
pub(crate) struct LockoutLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl LockoutLog {
    /// Returns `Some(suppressed)` when a lockout at `now` should be logged, with the number of
    /// lockouts left unlogged since the previous line, and `None` when this one is suppressed.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        let (last, suppressed) = &mut *state;
        let due =
            last.is_none_or(|last| now.saturating_duration_since(last) >= LOCKOUT_LOG_INTERVAL);
        if due {
            *last = Some(now);
            Some(std::mem::take(suppressed))
        } else {
            *suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    fn client(n: u32) -> ClientKey {
        ClientKey::from_ip(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn bearer_outcomes() {
        let auth = BearerAuth::new("s3cret-token").unwrap();
        assert_eq!(auth.verify(None), AuthOutcome::Missing);
        assert_eq!(
            auth.verify(Some(&header("Basic dXNlcjpwYXNz"))),
            AuthOutcome::Malformed
        );
        assert_eq!(auth.verify(Some(&header("Bearer"))), AuthOutcome::Malformed);
        assert_eq!(
            auth.verify(Some(&header("Bearer "))),
            AuthOutcome::Malformed
        );
        assert_eq!(
            auth.verify(Some(&header("Bearer a b"))),
            AuthOutcome::Malformed
        );
        assert_eq!(
            auth.verify(Some(&header("Bearer s3cret"))),
            AuthOutcome::Invalid
        );
        assert_eq!(
            auth.verify(Some(&header("Bearer s3cret-token-longer"))),
            AuthOutcome::Invalid
        );
        assert_eq!(
            auth.verify(Some(&header("Bearer s3cret-token"))),
            AuthOutcome::Authorized
        );
        assert_eq!(
            auth.verify(Some(&header("bearer s3cret-token"))),
            AuthOutcome::Authorized
        );
    }

    #[test]
    fn oversized_presented_token_is_malformed() {
        let auth = BearerAuth::new("t").unwrap();
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(auth.verify(Some(&header(&long))), AuthOutcome::Malformed);
    }

    #[test]
    fn token_prefix_with_zero_bytes_differs() {
        // Padding with zeros must not make "t" equal to "t" followed by padding-like bytes.
        let auth = BearerAuth::new("t").unwrap();
        assert_eq!(
            auth.verify(Some(&header("Bearer tt"))),
            AuthOutcome::Invalid
        );
    }

    #[test]
    fn bad_configured_tokens_rejected() {
        assert!(BearerAuth::new("").is_err());
        assert!(BearerAuth::new("has space").is_err());
        assert!(BearerAuth::new(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }

    #[test]
    fn lockout_after_max_failures() {
        let lockout = AuthLockout::new(3, Duration::from_secs(60), 100, Counter::default());
        let now = Instant::now();
        assert!(!lockout.record_failure(client(1), now));
        assert!(!lockout.record_failure(client(1), now));
        assert!(lockout.remaining(client(1), now).is_none());
        assert!(lockout.record_failure(client(1), now));
        assert_eq!(
            lockout.remaining(client(1), now),
            Some(Duration::from_secs(60))
        );
        assert!(lockout.remaining(client(2), now).is_none());
        let later = now + Duration::from_secs(61);
        assert!(lockout.remaining(client(1), later).is_none());
    }

    #[test]
    fn failures_outside_window_start_over() {
        let lockout = AuthLockout::new(2, Duration::from_secs(10), 100, Counter::default());
        let now = Instant::now();
        assert!(!lockout.record_failure(client(1), now));
        assert!(!lockout.record_failure(client(1), now + Duration::from_secs(11)));
        assert!(lockout.record_failure(client(1), now + Duration::from_secs(12)));
    }

    #[test]
    fn success_forgets_failures() {
        let lockout = AuthLockout::new(2, Duration::from_secs(10), 100, Counter::default());
        let now = Instant::now();
        lockout.record_failure(client(1), now);
        lockout.record_success(client(1));
        assert_eq!(lockout.tracked_clients(), 0);
        assert!(!lockout.record_failure(client(1), now));
    }

    #[test]
    fn lockout_log_is_rate_limited() {
        let log = LockoutLog::default();
        let now = Instant::now();
        assert_eq!(log.admit(now), Some(0));
        assert_eq!(log.admit(now + Duration::from_secs(1)), None);
        assert_eq!(log.admit(now + Duration::from_secs(2)), None);
        assert_eq!(log.admit(now + LOCKOUT_LOG_INTERVAL), Some(2));
    }

    #[test]
    fn random_clients_stay_bounded() {
        let evictions = Counter::default();
        let lockout = AuthLockout::new(5, Duration::from_secs(60), 1000, evictions.clone());
        let now = Instant::now();
        for _ in 0..100_000 {
            lockout.record_failure(client(fastrand::u32(..)), now);
        }
        assert_eq!(lockout.tracked_clients(), 1000);
        assert!(evictions.get() >= 98_000, "{}", evictions.get());
    }
}
