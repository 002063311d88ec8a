//! JSON keys of a callsite's fields, rendered once per thread with each field's redaction action.

use std::cell::RefCell;
use std::rc::Rc;

use tracing::Metadata;
use tracing::callsite::Identifier;
use tracing::field::Field;

use super::escape;
use super::fields::{TrustedField, TrustedValues, is_reserved, trusted_values};
use crate::redact::{FieldAction, Redactor};

/// The rendered keys of one callsite's fields, in field order, for one redactor.
pub(crate) struct CallsiteKeys {
    callsite: Identifier,
    /// `,"name":` of every field, back to back.
    bytes: Vec<u8>,
    /// Entry `i` describes the field with index `i`.
    fields: Vec<FieldKey>,
}

/// Length of the zero-padded copy of a key kept next to its position, so that a short key is
/// appended with one fixed-size copy instead of a `memcpy` call.
const PADDED_KEY_LEN: usize = 32;

/// The position of one field's key in [`CallsiteKeys::bytes`] and the actions for its value.
#[derive(Clone, Copy)]
struct FieldKey {
    start: usize,
    end: usize,
    /// The key followed by zeros, when it is at most [`PADDED_KEY_LEN`] bytes long.
    padded: Option<[u8; PADDED_KEY_LEN]>,
    /// The action by the field's name.
    action: FieldAction,
    /// The values written unscanned, when the callsite's emitter produces them itself.
    trusted: Option<TrustedValues>,
}

/// The key of one field and the actions for its value.
pub(crate) struct Key<'a> {
    bytes: &'a [u8],
    padded: Option<&'a [u8; PADDED_KEY_LEN]>,
    action: FieldAction,
    trusted: Option<TrustedValues>,
}

impl Key<'_> {
    /// Appends the key to `out`.
    #[inline]
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self.padded {
            Some(padded) => {
                let end = out.len() + self.bytes.len();
                out.extend_from_slice(padded);
                out.truncate(end);
            }
            None => out.extend_from_slice(self.bytes),
        }
    }

    /// Returns the action for the field's value, `text` when it is a string.
    pub(crate) fn action(&self, text: Option<&str>) -> FieldAction {
        if self.trusts(text) {
            FieldAction::Keep
        } else {
            self.action
        }
    }

    /// Tells whether the value, `text` when it is a string, is written without scanning.
    pub(crate) fn trusts(&self, text: Option<&str>) -> bool {
        self.trusted.is_some_and(|trusted| trusted.covers(text))
    }
}

impl CallsiteKeys {
    fn render(
        metadata: &'static Metadata<'static>,
        redactor: &Redactor,
        trusted: &[TrustedField],
    ) -> Self {
        let fields = metadata.fields();
        let mut bytes = Vec::new();
        let mut keys = Vec::with_capacity(fields.len());
        for field in fields {
            let name = field.name();
            let start = bytes.len();
            bytes.extend_from_slice(b",\"");
            if is_reserved(name) {
                bytes.extend_from_slice(b"fields.");
            }
            escape::escape_into(&mut bytes, name);
            bytes.extend_from_slice(b"\":");
            let mut padded = [0; PADDED_KEY_LEN];
            let padded = match (bytes.get(start..), padded.get_mut(..bytes.len() - start)) {
                (Some(key), Some(slot)) => {
                    slot.copy_from_slice(key);
                    Some(padded)
                }
                _ => None,
            };
            keys.push(FieldKey {
                start,
                end: bytes.len(),
                padded,
                action: redactor.field_action_static(name),
                trusted: trusted_values(trusted, name),
            });
        }
        Self {
            callsite: metadata.callsite(),
            bytes,
            fields: keys,
        }
    }

    /// Returns the key of `field`, or `None` when the field belongs to another callsite.
    pub(crate) fn get(&self, field: &Field) -> Option<Key<'_>> {
        if field.callsite() != self.callsite {
            return None;
        }
        let key = self.fields.get(field.index())?;
        Some(Key {
            bytes: self.bytes.get(key.start..key.end)?,
            padded: key.padded.as_ref(),
            action: key.action,
            trusted: key.trusted,
        })
    }
}

/// Number of sets in the per-thread cache of callsite keys. Each set contains two callsites, so
/// two hot callsites whose addresses pick the same set do not evict each other.
const CACHE_SETS: usize = 64;

/// A cached callsite: its metadata address, the redactor's cache id and the keys.
type Slot = Option<(usize, usize, Rc<CallsiteKeys>)>;

thread_local! {
    static CACHE: RefCell<[[Slot; 2]; CACHE_SETS]> =
        const { RefCell::new([const { [None, None] }; CACHE_SETS]) };
}

/// Returns the keys of the callsite `metadata` for `redactor`, rendering them on the first use on
/// this thread. `trusted` lists the callsite's fields whose values are written unscanned. It is
/// read only on the first use, so it must depend on the callsite alone.
///
/// Returns `None` while this thread's cache is in use further up the stack or destroyed, and
/// the caller then renders each key itself.
pub(crate) fn for_callsite(
    metadata: &'static Metadata<'static>,
    redactor: &Redactor,
    trusted: &[TrustedField],
) -> Option<Rc<CallsiteKeys>> {
    let address = std::ptr::from_ref(metadata).addr();
    let redactor_id = redactor.cache_id();
    let matches = |slot: &Slot| {
        slot.as_ref()
            .is_some_and(|(cached, id, _)| *cached == address && *id == redactor_id)
    };
    // Fibonacci hashing of the address picks the set, as for field names.
    let set = (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) % CACHE_SETS;
    CACHE
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let [first, second] = cache.get_mut(set)?;
            if matches(second) {
                // The most recently used callsite goes first.
                std::mem::swap(first, second);
            }
            if matches(first)
                && let Some((_, _, keys)) = first.as_ref()
            {
                return Some(Rc::clone(keys));
            }
            let keys = Rc::new(CallsiteKeys::render(metadata, redactor, trusted));
            *second = first.replace((address, redactor_id, Rc::clone(&keys)));
            Some(keys)
        })
        .ok()
        .flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use tracing::callsite::Callsite;
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;
    use tracing::subscriber::Interest;
    use tracing::{Level, Metadata};

    use super::*;

    /// A static callsite for the metadata it points to.
    struct TestCallsite(&'static Metadata<'static>);

    impl Callsite for TestCallsite {
        fn set_interest(&self, _: Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            self.0
        }
    }

    /// Builds the metadata of a test callsite named `name` with `fields`.
    const fn metadata(
        name: &'static str,
        fields: &'static [&'static str],
        callsite: &'static TestCallsite,
        kind: Kind,
    ) -> Metadata<'static> {
        Metadata::new(
            name,
            "test",
            Level::INFO,
            None,
            None,
            None,
            FieldSet::new(fields, tracing::callsite::Identifier(callsite)),
            kind,
        )
    }

    static CALLSITE: TestCallsite = TestCallsite(&META);
    static META: Metadata<'static> = metadata(
        "test",
        &[
            "password",
            "level",
            "http.request.method",
            "checkout.payment.provider.response_code",
        ],
        &CALLSITE,
        Kind::EVENT,
    );

    const TRUSTED: &[TrustedField] = &[TrustedField {
        name: "http.request.method",
        values: TrustedValues::KnownMethods,
    }];

    fn field(name: &str) -> Field {
        META.fields().field(name).unwrap()
    }

    fn written(key: &Key<'_>) -> Vec<u8> {
        let mut out = b"{".to_vec();
        key.write(&mut out);
        out.split_off(1)
    }

    #[test]
    fn keys_are_rendered_with_actions() {
        let keys = for_callsite(&META, &Redactor::default(), TRUSTED).unwrap();

        let password = keys.get(&field("password")).unwrap();
        assert_eq!(written(&password), br#","password":"#);
        assert_eq!(password.action(Some("hunter2")), FieldAction::Replace);

        let level = keys.get(&field("level")).unwrap();
        assert_eq!(written(&level), br#","fields.level":"#);
        assert_eq!(level.action(None), FieldAction::Scan);

        let long = keys
            .get(&field("checkout.payment.provider.response_code"))
            .unwrap();
        assert_eq!(
            written(&long),
            br#","checkout.payment.provider.response_code":"#
        );

        let method = keys.get(&field("http.request.method")).unwrap();
        assert_eq!(method.action(Some("GET")), FieldAction::Keep);
        assert_eq!(method.action(Some("4111111111111111")), FieldAction::Scan);
        assert_eq!(method.action(None), FieldAction::Scan);
    }

    #[test]
    fn keys_are_cached_per_redactor() {
        let default = Redactor::default();
        let first = for_callsite(&META, &default, TRUSTED).unwrap();
        let again = for_callsite(&META, &default, TRUSTED).unwrap();
        assert!(Rc::ptr_eq(&first, &again));

        let disabled = for_callsite(&META, &Redactor::disabled(), TRUSTED).unwrap();
        let password = disabled.get(&field("password")).unwrap();
        assert_eq!(password.action(Some("hunter2")), FieldAction::Keep);
    }

    static OTHER_CALLSITE: TestCallsite = TestCallsite(&OTHER_META);
    static OTHER_META: Metadata<'static> =
        metadata("other", &["password"], &OTHER_CALLSITE, Kind::SPAN);

    #[test]
    fn alternating_callsites_stay_cached() {
        let redactor = Redactor::default();
        let first = for_callsite(&META, &redactor, TRUSTED).unwrap();
        let other = for_callsite(&OTHER_META, &redactor, &[]).unwrap();
        for _ in 0..3 {
            let again = for_callsite(&META, &redactor, TRUSTED).unwrap();
            assert!(Rc::ptr_eq(&first, &again));
            let other_again = for_callsite(&OTHER_META, &redactor, &[]).unwrap();
            assert!(Rc::ptr_eq(&other, &other_again));
        }
    }

    #[test]
    fn field_of_other_callsite_has_no_key() {
        let keys = for_callsite(&META, &Redactor::default(), TRUSTED).unwrap();
        let other = OTHER_META.fields().field("password").unwrap();
        assert!(keys.get(&other).is_none());
        assert!(keys.get(&field("password")).is_some());
    }
}
