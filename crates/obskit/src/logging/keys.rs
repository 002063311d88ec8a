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

/// The position of one field's key in [`CallsiteKeys::bytes`] and the actions for its value.
#[derive(Clone, Copy)]
struct FieldKey {
    start: usize,
    end: usize,
    /// The action by the field's name.
    action: FieldAction,
    /// The values written unscanned, when the callsite's emitter produces them itself.
    trusted: Option<TrustedValues>,
}

/// The key of one field and the actions for its value.
pub(crate) struct Key<'a> {
    pub(crate) bytes: &'a [u8],
    action: FieldAction,
    trusted: Option<TrustedValues>,
}

impl Key<'_> {
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
            keys.push(FieldKey {
                start,
                end: bytes.len(),
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
            action: key.action,
            trusted: key.trusted,
        })
    }
}

/// Number of callsites whose keys each thread keeps.
const CACHED_CALLSITES: usize = 64;

/// A cached callsite: its metadata address, the redactor's cache id and the keys.
type Slot = Option<(usize, usize, Rc<CallsiteKeys>)>;

thread_local! {
    static CACHE: RefCell<[Slot; CACHED_CALLSITES]> =
        const { RefCell::new([const { None }; CACHED_CALLSITES]) };
}

/// Returns the keys of the callsite `metadata` for `redactor`, rendering them on the first use on
/// this thread. `trusted` lists the callsite's fields whose values are written unscanned.
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
    // Fibonacci hashing of the address picks the slot, as for field names.
    let index = (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) % CACHED_CALLSITES;
    CACHE
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let slot = cache.get_mut(index)?;
            if let Some((cached_address, cached_id, keys)) = slot
                && *cached_address == address
                && *cached_id == redactor_id
            {
                return Some(Rc::clone(keys));
            }
            let keys = Rc::new(CallsiteKeys::render(metadata, redactor, trusted));
            *slot = Some((address, redactor_id, Rc::clone(&keys)));
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

    struct TestCallsite;

    impl Callsite for TestCallsite {
        fn set_interest(&self, _: Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &META
        }
    }

    static CALLSITE: TestCallsite = TestCallsite;
    static META: Metadata<'static> = Metadata::new(
        "test",
        "test",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(
            &["password", "level", "http.request.method"],
            tracing::callsite::Identifier(&CALLSITE),
        ),
        Kind::EVENT,
    );

    const TRUSTED: &[TrustedField] = &[TrustedField {
        name: "http.request.method",
        values: TrustedValues::KnownMethods,
    }];

    fn field(name: &str) -> Field {
        META.fields().field(name).unwrap()
    }

    #[test]
    fn keys_are_rendered_with_actions() {
        let keys = for_callsite(&META, &Redactor::default(), TRUSTED).unwrap();

        let password = keys.get(&field("password")).unwrap();
        assert_eq!(password.bytes, br#","password":"#);
        assert_eq!(password.action(Some("hunter2")), FieldAction::Replace);

        let level = keys.get(&field("level")).unwrap();
        assert_eq!(level.bytes, br#","fields.level":"#);
        assert_eq!(level.action(None), FieldAction::Scan);

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

    struct OtherCallsite;

    impl Callsite for OtherCallsite {
        fn set_interest(&self, _: Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &OTHER_META
        }
    }

    static OTHER_CALLSITE: OtherCallsite = OtherCallsite;
    static OTHER_META: Metadata<'static> = Metadata::new(
        "other",
        "test",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(
            &["password"],
            tracing::callsite::Identifier(&OTHER_CALLSITE),
        ),
        Kind::SPAN,
    );

    #[test]
    fn field_of_other_callsite_has_no_key() {
        let keys = for_callsite(&META, &Redactor::default(), TRUSTED).unwrap();
        let other = OTHER_META.fields().field("password").unwrap();
        assert!(keys.get(&other).is_none());
        assert!(keys.get(&field("password")).is_some());
    }
}
