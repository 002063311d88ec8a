//! Redaction of personal data and secrets in log lines and span attributes.
//!
//! A [`Redactor`] replaces two things before a value leaves the process:
//!
//! - the values of fields whose name is sensitive (`password`, `api_key`, `set_cookie` …,
//!   matched on whole name segments, so `X-Api-Key` and `userPassword` match and `author` and
//!   `tokens_used` do not);
//! - values found by shape in any text. These are email addresses, payment cards that pass the
//!   Luhn check, US SSNs, phone numbers, IBANs that pass the mod-97 check, JWTs, `Bearer` and
//!   `Basic` credentials, AWS access key ids, GitHub, GitLab and Slack tokens, PEM private
//!   keys, URL credentials, `name=value` pairs with a sensitive name and, when enabled, IP
//!   addresses.
//!
//! `init` installs a redactor built from [`RedactConfig`] into
//! the JSON and text log formats and the span exporter, so redaction is on by default. Each
//! replacement is counted in `obskit_redactions_total{kind}`.
//!
//! ```
//! use obskit::redact::Redactor;
//!
//! let redactor = Redactor::default();
//! assert_eq!(
//!     redactor.redact("mail jane@example.com, card 4111 1111 1111 1111"),
//!     "mail [REDACTED:email], card [REDACTED:card]"
//! );
//! assert_eq!(redactor.redact_field("db.password", "hunter2"), "[REDACTED:field]");
//! assert_eq!(redactor.redact("order 1234567890, trace 4bf92f3577b34da6a3ce929d0e0e4736"),
//!            "order 1234567890, trace 4bf92f3577b34da6a3ce929d0e0e4736");
//! ```
//!
//! # Limitations
//!
//! - Detection is by shape. A secret without a recognisable shape (a password in free text)
//!   is found only as the value of a sensitive name, such as `password=…`.
//! - An unquoted value in text ends at the first space, so `password=two words` keeps `words`.
//! - Phone numbers need a leading `+`, parentheses or separators; ten bare digits are left
//!   alone, as they are indistinguishable from ids.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::{self, Write};
use std::sync::Arc;

mod digits;
mod email;
mod iban;
mod json;
mod kind;
mod names;
mod pairs;
mod pem;
mod render;
mod scan;
mod spans;
mod text;
mod tokens;
mod url;
mod wrapper;

pub use json::MAX_JSON_DEPTH;
pub use kind::Kind;
pub use names::DEFAULT_FIELD_NAMES;
pub use pem::{closes_private_key, opens_private_key};
pub use spans::{redact_attributes, redact_span};
pub use wrapper::{PLACEHOLDER, Redacted};

use self::digits::DigitRules;
use self::names::NameMatcher;
use self::render::Renderer;
use self::text::{at, is_word, run_end, word_start};
use crate::config::{RedactConfig, RuleMode};
use crate::metrics::{Counter, MetricsError, Registry};

/// Name of the redactions counter family, without the `_total` suffix.
pub const REDACTIONS_METRIC: &str = "obskit_redactions";

/// Shortest `hash_key` accepted, in bytes.
pub const MIN_HASH_KEY_BYTES: usize = 16;

/// An invalid redaction configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// A rule uses the `hash` mode but no key is set.
    #[error(
        "redact.rules.{rule} is \"hash\" but redact.hash_key is not set; set redact.hash_key \
         (OBSKIT_REDACT_HASH_KEY) to a secret of at least {MIN_HASH_KEY_BYTES} bytes, or use \
         \"mask\" or \"partial\""
    )]
    MissingHashKey {
        /// The first rule that uses `hash`.
        rule: &'static str,
    },
    /// The hash key is too short to keep hashed values from being guessed.
    #[error(
        "redact.hash_key has {len} bytes; use a random secret of at least {MIN_HASH_KEY_BYTES} \
         bytes, such as the output of `openssl rand -hex 32`"
    )]
    ShortHashKey {
        /// Length of the key that was set.
        len: usize,
    },
}

/// Action of the logging and span pipelines on a field, decided by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAction {
    /// The name is sensitive: the whole value is replaced.
    Replace,
    /// The value is scanned for sensitive values.
    Scan,
    /// The field is on the allow list or redaction is off: the value is kept as it is.
    Keep,
}

/// Detectors that run.
#[derive(Debug, Clone, Copy)]
struct Detectors {
    field: bool,
    email: bool,
    digits: DigitRules,
    any_digits: bool,
    iban: bool,
    jwt: bool,
    credentials: bool,
    aws_key: bool,
    token: bool,
    private_key: bool,
    url_credentials: bool,
    ip: bool,
}

#[derive(Debug)]
struct Inner {
    /// Distinguishes redactors in the per-thread cache of field actions; never 0.
    id: usize,
    enabled: bool,
    names: NameMatcher,
    renderer: Renderer,
    detectors: Detectors,
    max_value_bytes: usize,
    counters: [Counter; Kind::ALL.len()],
    /// Trigger bits of each byte; see [`trigger_table`].
    triggers: [u8; 256],
    /// Shapes each byte starts under the rules that are on. See [`first_shapes`].
    first_shapes: [u16; 256],
}

/// Finds and replaces personal data and secrets; cheap to clone.
///
/// See the [module documentation](self) for what is redacted.
#[derive(Debug, Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

impl Default for Redactor {
    /// Builds a redactor of the default rules: every detector but IP addresses, in `mask` mode.
    fn default() -> Self {
        Self::build(&RedactConfig::default(), None)
    }
}

/// Returns the rule names and modes, in the order [`RedactError::MissingHashKey`] reports them.
fn rule_modes(config: &RedactConfig) -> [(&'static str, RuleMode); 13] {
    let rules = &config.rules;
    [
        ("field", rules.field),
        ("email", rules.email),
        ("card", rules.card),
        ("ssn", rules.ssn),
        ("phone", rules.phone),
        ("iban", rules.iban),
        ("jwt", rules.jwt),
        ("credentials", rules.credentials),
        ("aws_key", rules.aws_key),
        ("token", rules.token),
        ("private_key", rules.private_key),
        ("url_credentials", rules.url_credentials),
        ("ip", rules.ip),
    ]
}

/// Checks that a `hash` rule has a key of [`MIN_HASH_KEY_BYTES`] or more.
pub(crate) fn check_hash_key(config: &RedactConfig) -> Result<(), RedactError> {
    let hashing = rule_modes(config)
        .into_iter()
        .find(|(_, mode)| *mode == RuleMode::Hash);
    if let Some((rule, _)) = hashing
        && config.enabled
    {
        match &config.hash_key {
            None => return Err(RedactError::MissingHashKey { rule }),
            Some(key) if key.expose().len() < MIN_HASH_KEY_BYTES => {
                return Err(RedactError::ShortHashKey {
                    len: key.expose().len(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl Redactor {
    /// Builds a redactor from `config`.
    ///
    /// # Errors
    ///
    /// [`RedactError`] when a rule uses `hash` without a `hash_key` of at least
    /// [`MIN_HASH_KEY_BYTES`] bytes.
    pub fn new(config: &RedactConfig) -> Result<Self, RedactError> {
        check_hash_key(config)?;
        Ok(Self::build(config, None))
    }

    /// Builds a redactor from `config` that counts into `obskit_redactions_total` of
    /// `registry`.
    ///
    /// # Errors
    ///
    /// [`RedactError`] as for [`Redactor::new`]; registration errors are returned as
    /// [`MetricsError`] inside [`RegisterError`].
    pub fn with_registry(
        config: &RedactConfig,
        registry: &Registry,
    ) -> Result<Self, RegisterError> {
        check_hash_key(config)?;
        let family = registry.get_or_register_counter_family(
            REDACTIONS_METRIC,
            "Values replaced by redaction, by kind of value.",
            ["kind"],
        )?;
        let counters = Kind::ALL.map(|kind| family.get(&[kind.as_str()]));
        Ok(Self::build(config, Some(counters)))
    }

    /// Builds a redactor that leaves everything as it is.
    pub fn disabled() -> Self {
        Self::build(
            &RedactConfig {
                enabled: false,
                ..RedactConfig::default()
            },
            None,
        )
    }

    fn build(config: &RedactConfig, counters: Option<[Counter; Kind::ALL.len()]>) -> Self {
        let key = config.hash_key.as_ref().map(|key| key.expose().as_bytes());
        let on = |mode: RuleMode| config.enabled && mode != RuleMode::Off;
        let rules = &config.rules;
        let digits = DigitRules {
            card: on(rules.card),
            ssn: on(rules.ssn),
            phone: on(rules.phone),
            ip: on(rules.ip),
        };
        let detectors = Detectors {
            field: on(rules.field),
            email: on(rules.email),
            any_digits: digits.card || digits.ssn || digits.phone || digits.ip,
            digits,
            iban: on(rules.iban),
            jwt: on(rules.jwt),
            credentials: on(rules.credentials),
            aws_key: on(rules.aws_key),
            token: on(rules.token),
            private_key: on(rules.private_key),
            url_credentials: on(rules.url_credentials),
            ip: on(rules.ip),
        };
        let counters = counters.unwrap_or_else(|| {
            Kind::ALL.map(|_| Counter {
                core: Arc::default(),
            })
        });
        Self {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                enabled: config.enabled,
                names: NameMatcher::new(&config.fields, &config.allow_fields),
                renderer: Renderer::new(&config.rules, key),
                detectors,
                max_value_bytes: config.max_value_bytes,
                counters,
                triggers: trigger_table(&detectors),
                first_shapes: first_shapes(&detectors),
            }),
        }
    }

    /// Returns whether any rule is on.
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Returns whether `name` is a sensitive field name.
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        self.inner.enabled && self.inner.detectors.field && self.inner.names.is_sensitive(name)
    }

    /// Decides from a field's name whether its value is replaced, scanned or kept.
    pub fn field_action(&self, name: &str) -> FieldAction {
        let inner = &*self.inner;
        if !inner.enabled || inner.names.is_allowed(name) {
            FieldAction::Keep
        } else if inner.detectors.field && inner.names.is_sensitive(name) {
            FieldAction::Replace
        } else {
            FieldAction::Scan
        }
    }

    /// [`field_action`](Self::field_action) for the static names of `tracing` fields,
    /// remembered per thread so that each callsite's names are matched once.
    pub fn field_action_static(&self, name: &'static str) -> FieldAction {
        let inner = &*self.inner;
        if !inner.enabled {
            return FieldAction::Keep;
        }
        let key = (inner.id, name.as_ptr().addr(), name.len());
        // Fibonacci hashing of the name's address picks the set.
        let set = (key.1.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) % ACTION_SETS;
        let cached = ACTIONS
            .try_with(|sets| {
                let [first, second] = sets.get(set)?;
                [first, second]
                    .into_iter()
                    .find(|way| way.get().0 == key)
                    .map(|way| way.get().1)
            })
            .ok()
            .flatten();
        if let Some(action) = cached {
            return action;
        }
        let action = self.field_action(name);
        let _ = ACTIONS.try_with(|sets| {
            if let Some([first, second]) = sets.get(set) {
                second.set(first.replace((key, action)));
            }
        });
        action
    }

    /// Returns the id that distinguishes this redactor and its clones from other redactors in
    /// the per-thread caches of field actions and callsite keys.
    pub(crate) fn cache_id(&self) -> usize {
        self.inner.id
    }

    /// Returns the number of values this redactor's counters have recorded for `kind`.
    pub fn redactions(&self, kind: Kind) -> u64 {
        self.inner
            .counters
            .get(kind.index())
            .map_or(0, Counter::get)
    }

    fn count(&self, kind: Kind) {
        if let Some(counter) = self.inner.counters.get(kind.index()) {
            counter.inc();
        }
    }

    /// Returns whether the replacement of a sensitive field's value depends on the value, as in
    /// the `hash` mode; otherwise the value need not be formatted.
    pub fn field_replacement_needs_value(&self) -> bool {
        self.inner.renderer.mode(Kind::Field) == RuleMode::Hash
    }

    /// Writes the replacement of a whole field value of a sensitive field and counts it.
    pub fn write_field_replacement<W: Write + ?Sized>(
        &self,
        value: &str,
        out: &mut W,
    ) -> fmt::Result {
        self.count(Kind::Field);
        self.inner.renderer.write(Kind::Field, value, out)
    }

    /// Returns `text` with every sensitive value replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.inner.enabled {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        if text.len() > self.inner.max_value_bytes {
            let _ = self.write_oversize(&mut out);
            return Cow::Owned(out);
        }
        let ipv6_end = self.ipv6_end(text.as_bytes());
        let Some(first) = self.find(text.as_bytes(), 0, ipv6_end) else {
            return Cow::Borrowed(text);
        };
        out.reserve(text.len());
        // `fmt::Write` for `String` returns no error.
        let _ = self.write_matches(text, Some(first), ipv6_end, &mut out);
        Cow::Owned(out)
    }

    /// Returns the value of field `name` redacted: replaced whole when the name is sensitive,
    /// scanned otherwise.
    pub fn redact_field<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        match self.field_action(name) {
            FieldAction::Keep => Cow::Borrowed(value),
            FieldAction::Scan => self.redact(value),
            FieldAction::Replace => {
                let mut out = String::new();
                let _ = self.write_field_replacement(value, &mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Writes the value of field `name` redacted to `out` and returns the number of values
    /// replaced.
    ///
    /// # Errors
    ///
    /// An error of `out`.
    pub fn redact_field_to<W: Write + ?Sized>(
        &self,
        name: &str,
        value: &str,
        out: &mut W,
    ) -> Result<usize, fmt::Error> {
        match self.field_action(name) {
            FieldAction::Keep => out.write_str(value).map(|()| 0),
            FieldAction::Scan => self.redact_to(value, out),
            FieldAction::Replace => self.write_field_replacement(value, out).map(|()| 1),
        }
    }

    /// Decodes `bytes` as UTF-8 and redacts them; bytes that are not UTF-8 cannot be scanned
    /// and are replaced whole.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, str> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.redact(text),
            Err(_) if !self.inner.enabled => String::from_utf8_lossy(bytes),
            Err(_) => {
                self.count(Kind::InvalidUtf8);
                let mut out = String::new();
                let _ = render::write_mask(Kind::InvalidUtf8, &mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Writes `text` to `out` with every sensitive value replaced and returns the number of
    /// values replaced. Text longer than `max_value_bytes` is replaced whole.
    ///
    /// # Errors
    ///
    /// An error of `out`.
    pub fn redact_to<W: Write + ?Sized>(
        &self,
        text: &str,
        out: &mut W,
    ) -> Result<usize, fmt::Error> {
        if !self.inner.enabled {
            out.write_str(text)?;
            return Ok(0);
        }
        if text.len() > self.inner.max_value_bytes {
            return self.write_oversize(out);
        }
        let ipv6_end = self.ipv6_end(text.as_bytes());
        let first = self.find(text.as_bytes(), 0, ipv6_end);
        self.write_matches(text, first, ipv6_end, out)
    }

    /// Replaces a value too long to scan whole, and counts it.
    fn write_oversize<W: Write + ?Sized>(&self, out: &mut W) -> Result<usize, fmt::Error> {
        self.count(Kind::Oversize);
        render::write_mask(Kind::Oversize, out)?;
        Ok(1)
    }

    /// Writes `text` with `first` and every later match replaced; returns the number of
    /// matches.
    fn write_matches<W: Write + ?Sized>(
        &self,
        text: &str,
        first: Option<(usize, usize, Kind)>,
        ipv6_end: usize,
        out: &mut W,
    ) -> Result<usize, fmt::Error> {
        let bytes = text.as_bytes();
        let mut written = 0;
        let mut replaced = 0;
        let mut next = first;
        while let Some((start, end, kind)) = next {
            out.write_str(text.get(written..start).unwrap_or_default())?;
            self.inner
                .renderer
                .write(kind, text.get(start..end).unwrap_or_default(), out)?;
            self.count(kind);
            replaced += 1;
            written = end;
            next = self.find(bytes, written, ipv6_end);
        }
        out.write_str(text.get(written..).unwrap_or_default())?;
        Ok(replaced)
    }

    /// Returns the decimal text of `value` redacted when it has the 13 or more digits of a
    /// card number and a rule matches it, and `None` otherwise.
    pub(crate) fn redact_integer(&self, value: i128) -> Option<String> {
        if value.unsigned_abs() < 1_000_000_000_000 {
            return None;
        }
        match self.redact(itoa::Buffer::new().format(value)) {
            Cow::Borrowed(_) => None,
            Cow::Owned(redacted) => Some(redacted),
        }
    }

    /// Returns the index before which an IPv6 address may start with a hex digit in `bytes`,
    /// for [`find`](Self::find). It is 0 when the rule is off, and the length of `bytes` for
    /// texts of up to four blocks, which are not searched for colons.
    #[inline]
    fn ipv6_end(&self, bytes: &[u8]) -> usize {
        if !self.inner.detectors.ip {
            0
        } else if bytes.len() <= 4 * scan::BLOCK {
            bytes.len()
        } else {
            scan::second_last_colon(bytes)
        }
    }

    /// Returns the first match at or after `from`, as start, end and kind. An IPv6 address that
    /// starts with a hex digit is looked for only in blocks that start before `ipv6_end`, the
    /// index that [`ipv6_end`](Self::ipv6_end) returns for `bytes`.
    ///
    /// One table lookup per byte decides whether any detector can start there: at the first
    /// byte of a word (digits, uppercase letters, the first letters of token prefixes) or at
    /// punctuation (`@`, `%`, `:`, `=`, `+`, `(`, `-`). Every other byte costs the lookup alone.
    fn find(&self, bytes: &[u8], from: usize, ipv6_end: usize) -> Option<(usize, usize, Kind)> {
        let rest = bytes.get(from..)?;
        let mut previous_word = from > 0 && is_word(at(bytes, from - 1));
        // Most field values fit one block: classify it padded, without the loop below.
        if rest.len() <= scan::BLOCK {
            let block = scan::pad(rest);
            let ipv6 = self.inner.detectors.ip;
            return self.in_block(bytes, block, from, previous_word, 0, from, true, ipv6);
        }
        let mut blocks = rest.chunks_exact(scan::BLOCK);
        let mut block_start = from;
        for block in &mut blocks {
            let block = <[u8; scan::BLOCK]>::try_from(block).unwrap_or_default();
            let ipv6 = block_start < ipv6_end;
            let found = self.in_block(
                bytes,
                block,
                block_start,
                previous_word,
                0,
                from,
                false,
                ipv6,
            );
            if found.is_some() {
                return found;
            }
            previous_word = block.last().is_some_and(|&byte| is_word(byte));
            block_start += scan::BLOCK;
        }

        let tail = blocks.remainder().len();
        if tail == 0 {
            return None;
        }
        // The text is longer than a block here, so its last 16 bytes are classified and the
        // bytes already seen are skipped.
        let start = rest.len() - scan::BLOCK;
        let last = rest
            .get(start..)
            .and_then(|last| <[u8; scan::BLOCK]>::try_from(last).ok())
            .unwrap_or_default();
        self.in_block(
            bytes,
            last,
            from + start,
            false,
            scan::BLOCK - tail,
            from,
            false,
            from + start < ipv6_end,
        )
    }

    /// Runs the detectors at the candidates of the block that starts at `block_start`, except
    /// its first `seen` bytes. `previous_word` tells whether the byte before the block belongs
    /// to a word; it is ignored when `seen` is not 0, because that byte is then in the block.
    /// `whole` is true when the block contains all of `bytes` from `floor` on, padded with
    /// zeros, so that the shapes its bytes cannot complete are skipped. When `ipv6` is false,
    /// no IPv6 address starts in the block, so words that start with `a` to `f` are no
    /// candidates and digits are checked for the digit rules only.
    #[inline(always)]
    #[allow(
        clippy::too_many_arguments,
        reason = "inlined into the three callers of `find`; the flags fold into constants"
    )]
    fn in_block(
        &self,
        bytes: &[u8],
        block: [u8; scan::BLOCK],
        block_start: usize,
        previous_word: bool,
        seen: usize,
        floor: usize,
        whole: bool,
        ipv6: bool,
    ) -> Option<(usize, usize, Kind)> {
        let found = scan::classify(block, ipv6);
        // A word starts where a word byte follows a byte that is not one.
        let carry = u32::from(previous_word && seen == 0);
        let after_word = (found.word << 1) | carry;
        let mut coarse = ((found.word_start & !after_word) | found.anywhere) >> seen << seen;
        if coarse == 0 {
            return None;
        }
        let possible = if whole {
            scan::possible_shapes(&found)
        } else if ipv6 {
            u16::MAX
        } else {
            // No IPv6 address starts in this block, at a hex letter or at a digit.
            !(scan::shape::HEX_COLON | scan::shape::HEX_GROUP)
        };
        let mut candidates = 0;
        while coarse != 0 {
            let offset = coarse.trailing_zeros();
            coarse &= coarse - 1;
            candidates |=
                u32::from(self.fits_shape(bytes, block_start + offset as usize, possible))
                    << offset;
        }
        while candidates != 0 {
            let index = block_start + candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            if let Some(found) = self.at_candidate(bytes, index, floor) {
                return Some(found);
            }
        }
        None
    }

    /// Returns whether the three bytes at `index` fit one of the `possible` shapes that a rule
    /// that is on can start there. See [`scan::shape`].
    #[inline(always)]
    fn fits_shape(&self, bytes: &[u8], index: usize, possible: u16) -> bool {
        let shapes = |table: &[u16; 256], offset: usize| {
            table
                .get(usize::from(at(bytes, index + offset)))
                .copied()
                .unwrap_or(0)
        };
        shapes(&self.inner.first_shapes, 0)
            & shapes(&scan::SECOND, 1)
            & shapes(&scan::THIRD, 2)
            & possible
            != 0
    }

    /// Runs the detectors that may start at `index`, a word start or punctuation, as the
    /// rules that are on decide.
    #[inline]
    fn at_candidate(
        &self,
        bytes: &[u8],
        index: usize,
        floor: usize,
    ) -> Option<(usize, usize, Kind)> {
        let byte = at(bytes, index);
        let bits = self
            .inner
            .triggers
            .get(usize::from(byte))
            .copied()
            .unwrap_or(0);
        if bits & WORD_BYTE != 0 {
            if bits & AT_WORD_START != 0 && may_start(bytes, index, byte, self.inner.detectors.ip) {
                return self.at_word(bytes, index, byte);
            }
            None
        } else if bits & ANYWHERE != 0 {
            self.at_symbol(bytes, index, byte, floor)
        } else {
            None
        }
    }

    /// Runs the detectors that start at the punctuation byte at `index`; backward-looking
    /// detectors stop at `floor`.
    #[inline(never)]
    fn at_symbol(
        &self,
        bytes: &[u8],
        index: usize,
        byte: u8,
        floor: usize,
    ) -> Option<(usize, usize, Kind)> {
        let detectors = &self.inner.detectors;
        let next = at(bytes, index + 1);
        match byte {
            b'@' if detectors.email => email::detect(bytes, index, floor),
            b'%' if detectors.email && next == b'4' => email::detect_encoded(bytes, index, floor),
            b':' => {
                if next == b'/' && (detectors.url_credentials || detectors.token) {
                    let url = url::detect(bytes, index, floor).filter(|(_, _, kind)| match kind {
                        Kind::SlackToken => detectors.token,
                        _ => detectors.url_credentials,
                    });
                    if url.is_some() {
                        return url;
                    }
                }
                if detectors.ip
                    && next == b':'
                    && word_start(bytes, index)
                    && let Some(found) = detect_ipv6(bytes, index)
                {
                    return Some(found);
                }
                if detectors.field {
                    return pairs::detect(bytes, index, floor, &self.inner.names);
                }
                None
            }
            b'=' if detectors.field => pairs::detect(bytes, index, floor, &self.inner.names),
            b'+' if detectors.digits.phone && next.is_ascii_digit() => {
                digits::detect_e164(bytes, index)
            }
            b'(' if detectors.digits.phone && next.is_ascii_digit() => {
                digits::detect_parenthesized(bytes, index)
            }
            b'-' if detectors.private_key && next == b'-' => pem::detect(bytes, index),
            _ => None,
        }
    }

    /// Runs the detectors that start at a word.
    #[inline(never)]
    fn at_word(&self, bytes: &[u8], index: usize, byte: u8) -> Option<(usize, usize, Kind)> {
        let detectors = &self.inner.detectors;
        if detectors.ip
            && byte.is_ascii_hexdigit()
            && let Some(found) = detect_ipv6(bytes, index)
        {
            return Some(found);
        }
        match byte {
            b'0'..=b'9' if detectors.any_digits => {
                if digits::may_match(bytes, index, detectors.digits) {
                    digits::detect(bytes, index, detectors.digits)
                } else {
                    None
                }
            }
            b'A'..=b'Z' => {
                if byte == b'A'
                    && detectors.aws_key
                    && let Some(found) = tokens::detect_aws(bytes, index)
                {
                    return Some(found);
                }
                if byte == b'B'
                    && detectors.credentials
                    && let Some(found) = tokens::detect_auth_scheme(bytes, index)
                {
                    return Some(found);
                }
                if byte == b'G'
                    && detectors.token
                    && let Some(found) = tokens::detect_prefixed_token(bytes, index)
                {
                    return Some(found);
                }
                if detectors.iban {
                    return iban::detect(bytes, index);
                }
                None
            }
            b'b' if detectors.credentials => tokens::detect_auth_scheme(bytes, index),
            b'e' if detectors.jwt => tokens::detect_jwt(bytes, index),
            b'g' | b'x' if detectors.token => tokens::detect_prefixed_token(bytes, index),
            _ => None,
        }
    }
}

/// Source of [`Inner::id`].
static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Number of sets in the per-thread cache of field actions. Each set contains two names.
const ACTION_SETS: usize = 64;

/// A cached field action: redactor id, name address and length, and the action.
type CachedAction = Cell<((usize, usize, usize), FieldAction)>;

thread_local! {
    /// Field actions of static field names, in a two-way set-associative cache.
    static ACTIONS: [[CachedAction; 2]; ACTION_SETS] =
        const { [const { [const { Cell::new(((0, 0, 0), FieldAction::Keep)) }; 2] }; ACTION_SETS] };
}

/// Length of the longest IPv6 address text, `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`.
const MAX_IPV6_TEXT: usize = 45;

/// Finds an IPv6 address at `start`, as the standard library parses it, with two or more colons.
fn detect_ipv6(bytes: &[u8], start: usize) -> Option<(usize, usize, Kind)> {
    // The first group has at most four hex digits and a colon follows it.
    let first_group = (start..start + 5)
        .find(|&index| !at(bytes, index).is_ascii_hexdigit())
        .unwrap_or(start + 5);
    if first_group - start > 4 || at(bytes, first_group) != b':' {
        return None;
    }
    // The scan stops two bytes past the longest address text (room for a trailing dot), so a
    // long run of hex digits and colons costs a bounded amount per start and the whole scan
    // stays linear.
    let limit = bytes.len().min(start + MAX_IPV6_TEXT + 2);
    let mut end = run_end(bytes.get(..limit)?, start, |b| {
        b.is_ascii_hexdigit() || b == b':' || b == b'.'
    });
    while end > start && matches!(at(bytes, end - 1), b'.') {
        end -= 1;
    }
    if end - start > MAX_IPV6_TEXT {
        return None;
    }
    let candidate = bytes.get(start..end)?;
    if candidate.iter().filter(|&&b| b == b':').count() < 2 || is_word(at(bytes, end)) {
        return None;
    }
    std::str::from_utf8(candidate)
        .ok()?
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|_| (start, end, Kind::Ip))
}

/// An error of [`Redactor::with_registry`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] RedactError),
    /// The counter family could not be registered.
    #[error("failed to register {REDACTIONS_METRIC}: {0}")]
    Metrics(#[from] MetricsError),
}

/// Returns false when no detector can match the word starting with `byte` at `index`, judged
/// by its first bytes alone. Every shape a detector accepts passes.
#[inline(always)]
fn may_start(bytes: &[u8], index: usize, byte: u8, ip: bool) -> bool {
    let second = at(bytes, index + 1);
    if ip && byte.is_ascii_hexdigit() && (1..=4).any(|offset| at(bytes, index + offset) == b':') {
        return true;
    }
    match byte {
        b'0'..=b'9' => true,
        b'A'..=b'Z' => {
            let third = at(bytes, index + 2);
            let fourth = at(bytes, index + 3);
            // An IBAN and a GitLab runner token (`GR1348941…`) start with two letters and a
            // digit. Every AWS key id prefix ends in `A` (`AKIA`, `ASIA` …).
            (second.is_ascii_uppercase() && third.is_ascii_digit())
                || (byte == b'A' && second.is_ascii_uppercase() && fourth == b'A')
                || (byte == b'B' && matches!(second, b'e' | b'a' | b'E' | b'A'))
        }
        b'b' => matches!(second, b'e' | b'a' | b'E' | b'A'),
        b'e' => second == b'y',
        b'g' => matches!(second, b'h' | b'l' | b'i'),
        b'x' => matches!(second, b'o' | b'a'),
        _ => false,
    }
}

/// Builds the shapes that each byte starts, as [`Redactor::at_candidate`] dispatches, for the
/// detectors that are on.
fn first_shapes(detectors: &Detectors) -> [u16; 256] {
    use scan::shape::*;
    let mut table = [0u16; 256];
    for (byte, shapes) in (0u8..=255).zip(table.iter_mut()) {
        if detectors.ip && byte.is_ascii_hexdigit() {
            *shapes |= HEX_COLON | HEX_GROUP;
        }
        if detectors.any_digits && byte.is_ascii_digit() {
            *shapes |= DIGITS | DIGIT_GROUP;
        }
        if (detectors.iban || (detectors.token && byte == b'G')) && byte.is_ascii_uppercase() {
            *shapes |= UPPER_DIGIT;
        }
        *shapes |= match byte {
            b'A' if detectors.aws_key => AWS,
            b'B' | b'b' if detectors.credentials => AUTH_SCHEME,
            b'e' if detectors.jwt => JWT,
            b'g' if detectors.token => GIT_TOKEN,
            b'x' if detectors.token => SLACK_TOKEN,
            b'@' if detectors.email => ANY,
            b'%' if detectors.email => PERCENT_AT,
            b':' if detectors.url_credentials
                || detectors.token
                || detectors.ip
                || detectors.field =>
            {
                ANY
            }
            b'=' if detectors.field => ANY,
            b'+' | b'(' if detectors.digits.phone => DIGIT_AFTER,
            b'-' if detectors.private_key => DASHES,
            _ => 0,
        };
    }
    table
}

/// Trigger bit: the byte belongs to a word.
const WORD_BYTE: u8 = 1;
/// Trigger bit: a detector can start where a word starts with this byte.
const AT_WORD_START: u8 = 2;
/// Trigger bit: a detector can start at this punctuation byte.
const ANYWHERE: u8 = 4;

/// Builds the trigger bits of every byte for the detectors that are on.
fn trigger_table(detectors: &Detectors) -> [u8; 256] {
    let mut table = [0u8; 256];
    for (byte, bits) in (0u8..=255).zip(table.iter_mut()) {
        if is_word(byte) {
            *bits |= WORD_BYTE;
        }
        let hex = detectors.ip && byte.is_ascii_hexdigit();
        let starts = match byte {
            b'0'..=b'9' => detectors.any_digits || detectors.ip,
            b'A' => detectors.aws_key || detectors.iban || hex,
            b'B' => detectors.credentials || detectors.iban || hex,
            b'G' => detectors.token || detectors.iban,
            b'C'..=b'F' | b'H'..=b'Z' => detectors.iban || hex,
            b'b' => detectors.credentials || hex,
            b'e' => detectors.jwt || hex,
            b'g' | b'x' => detectors.token,
            _ => hex,
        };
        if starts {
            *bits |= AT_WORD_START;
        }
        let anywhere = match byte {
            b'@' | b'%' => detectors.email,
            b':' => detectors.url_credentials || detectors.token || detectors.ip || detectors.field,
            b'=' => detectors.field,
            b'+' | b'(' => detectors.digits.phone,
            b'-' => detectors.private_key,
            _ => false,
        };
        if anywhere {
            *bits |= ANYWHERE;
        }
    }
    table
}
