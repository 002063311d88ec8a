//! Quiet spans: children of unsampled spans that store no state of their own.
//!
//! Under a parent-based or `always_off` sampler, a child of an unsampled span is unsampled too
//! and records nothing, so the layer does not give it an extension. Its trace id, flags and
//! `tracestate` are its nearest ancestor's, and its span id is derived from its `tracing` span
//! id and the ancestor's span id. A quiet span gets a state of its own only when it needs one:
//! when it gets a child, or when [`set_parent`](super::set_parent) moves it under a remote
//! parent, which also gives it a new random span id.
//!
//! Each thread remembers the last unsampled parent it created a quiet child under, so the next
//! child of that parent is created without looking the parent up. The registry reuses span ids,
//! so the memory is checked against [`EPOCH`], which moves whenever a remembered parent closes.
//!
//! A new span's parent is usually the registry's current span. Asking the registry for it looks
//! the span up, so a layer that sees every span enter and exit keeps its own copy of the
//! registry's stack of entered spans ([`entered`], [`exited`], [`current`]). A layer behind a
//! per-layer filter does not see every span, and asks the registry.

use std::cell::{Cell, RefCell};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::span::Id;

/// Counts closed spans that some thread remembered as an unsampled parent.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Per-process key mixed into derived span ids, so they are not the registry's slot numbers.
static KEY: LazyLock<u64> = LazyLock::new(|| fastrand::u64(..));

/// The last layer number handed out; numbers start at 1.
static LAYERS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The layer number and the `tracing` id of the last unsampled parent this thread created a
    /// quiet child under, and [`EPOCH`] at that time. Span ids are only unique within one
    /// registry, hence the layer number.
    static LAST_PARENT: Cell<(u64, u64, u64)> = const { Cell::new((0, 0, 0)) };
}

/// Returns a number unique to each layer of the process.
pub(crate) fn layer_number() -> u64 {
    LAYERS.fetch_add(1, Ordering::Relaxed) + 1
}

/// Returns whether `parent` is the span that layer `layer` last remembered on this thread as an
/// unsampled parent, and no remembered parent has closed since, so `parent` is still that span.
#[inline]
pub(crate) fn is_remembered_parent(layer: u64, parent: u64) -> bool {
    let epoch = EPOCH.load(Ordering::Acquire);
    LAST_PARENT
        .try_with(|last| last.get() == (layer, parent, epoch))
        .unwrap_or(false)
}

/// One span entered on this thread: an entry of the registry's stack of entered spans.
struct Entered {
    layer: u64,
    id: u64,
    /// The span was already entered further down the stack.
    duplicate: bool,
}

thread_local! {
    /// The spans entered on this thread, of every layer that sees every span, in the order the
    /// registry's own stack has them.
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
    /// Set when an enter or exit could not be recorded, such as one made while recording
    /// another. The stack no longer matches the registry's, so [`current`] returns `None`.
    static ENTERED_LOST: Cell<bool> = const { Cell::new(false) };
}

fn lose_entered() {
    let _ = ENTERED_LOST.try_with(|lost| lost.set(true));
}

/// Records that layer `layer` saw span `id` entered on this thread. The registry pushed it on its
/// stack just before.
///
/// NOTE: a layer below the bridge that panics in `on_enter` or `on_exit` keeps this call from
/// running after the registry changed its stack. If the panic is caught, the two stacks differ
/// on that thread from then on, and a child of the span that panicked can be taken for a quiet
/// child of the previous current span.
#[inline]
pub(crate) fn entered(layer: u64, id: &Id) {
    let id = id.into_u64();
    let recorded = ENTERED.try_with(|stack| {
        let Ok(mut stack) = stack.try_borrow_mut() else {
            return false;
        };
        let duplicate = stack
            .iter()
            .any(|entry| entry.layer == layer && entry.id == id);
        stack.push(Entered {
            layer,
            id,
            duplicate,
        });
        true
    });
    if recorded != Ok(true) {
        lose_entered();
    }
}

/// Records that layer `layer` saw span `id` exited on this thread: removes its last entry, as
/// the registry does.
#[inline]
pub(crate) fn exited(layer: u64, id: &Id) {
    let id = id.into_u64();
    let recorded = ENTERED.try_with(|stack| {
        let Ok(mut stack) = stack.try_borrow_mut() else {
            return false;
        };
        if let Some(index) = stack
            .iter()
            .rposition(|entry| entry.layer == layer && entry.id == id)
        {
            stack.remove(index);
        }
        true
    });
    if recorded != Ok(true) {
        lose_entered();
    }
}

/// Returns the `tracing` id of the registry's current span for layer `layer`: the last entered
/// span that is not a duplicate. Returns `None` once an enter or exit was lost on this thread.
#[inline]
pub(crate) fn current(layer: u64) -> Option<u64> {
    if ENTERED_LOST.try_with(Cell::get).unwrap_or(true) {
        return None;
    }
    ENTERED
        .try_with(|stack| {
            let stack = stack.try_borrow().ok()?;
            stack
                .iter()
                .rev()
                .find(|entry| entry.layer == layer && !entry.duplicate)
                .map(|entry| entry.id)
        })
        .ok()
        .flatten()
}

/// Remembers `parent` as an unsampled parent of quiet children of layer `layer` on this thread.
/// The caller has marked the parent's state, so its close moves [`EPOCH`].
pub(crate) fn remember_parent(layer: u64, parent: &Id) {
    let epoch = EPOCH.load(Ordering::Acquire);
    let _ = LAST_PARENT.try_with(|last| last.set((layer, parent.into_u64(), epoch)));
}

/// Forgets every remembered parent, on every thread. Called when a remembered parent closes,
/// before the registry can hand its id to a new span.
pub(crate) fn parent_closed() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// Returns the span id of a quiet span: its `tracing` id mixed with the span id of the ancestor
/// it takes its context from and a per-process key, never all zeros.
///
/// Ids are distinct among the open spans under one ancestor. The ancestor's id keeps apart the
/// quiet spans of two registries that continue the same trace. tracing-subscriber 0.3's registry
/// hands a slot's `tracing` id out again after 8 191 reuses, so over a long trace an id can
/// repeat.
pub(crate) fn span_id(ancestor: [u8; 8], id: &Id) -> [u8; 8] {
    // SplitMix64's finalizer: a bijection, so distinct ids give distinct span ids.
    let mut z = id.into_u64() ^ u64::from_be_bytes(ancestor) ^ *KEY;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z == 0 {
        z = 1;
    }
    z.to_be_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn derived_span_ids_are_distinct_and_stable() {
        let ancestor = [7; 8];
        let ids: Vec<[u8; 8]> = (1..=10_000)
            .map(|n| span_id(ancestor, &Id::from_u64(n)))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert!(ids.iter().all(|id| *id != [0; 8]));
        assert_eq!(ids.get(6), Some(&span_id(ancestor, &Id::from_u64(7))));
        assert_ne!(
            span_id([8; 8], &Id::from_u64(7)),
            span_id(ancestor, &Id::from_u64(7))
        );
    }

    #[test]
    fn closed_parent_is_forgotten() {
        let layer = layer_number();
        let parent = Id::from_u64(42);
        assert!(!is_remembered_parent(layer, 42));
        // Other tests close remembered parents too; retry until no close came in between.
        loop {
            let before = EPOCH.load(Ordering::Acquire);
            remember_parent(layer, &parent);
            let remembered = is_remembered_parent(layer, 42);
            let other_span = is_remembered_parent(layer, 43);
            let other_layer = is_remembered_parent(layer + 1, 42);
            if EPOCH.load(Ordering::Acquire) == before {
                assert!(remembered);
                assert!(!other_span);
                assert!(!other_layer);
                break;
            }
        }
        parent_closed();
        assert!(!is_remembered_parent(layer, 42));
    }

    #[test]
    fn current_follows_the_registry_stack() {
        let (a, b) = (layer_number(), layer_number());
        let id = Id::from_u64;
        assert_eq!(current(a), None);
        entered(a, &id(1));
        entered(a, &id(2));
        entered(b, &id(9));
        assert_eq!(current(a), Some(2));
        assert_eq!(current(b), Some(9));
        // Entering span 1 again is a duplicate: span 2 stays current.
        entered(a, &id(1));
        assert_eq!(current(a), Some(2));
        exited(a, &id(1));
        assert_eq!(current(a), Some(2));
        exited(a, &id(2));
        assert_eq!(current(a), Some(1));
        // Exiting a span that is not entered changes nothing.
        exited(a, &id(7));
        assert_eq!(current(a), Some(1));
        exited(a, &id(1));
        exited(b, &id(9));
        assert_eq!(current(a), None);
        assert_eq!(current(b), None);
    }

    #[test]
    fn current_after_lost_enter_is_none() {
        // A thread of its own, so the lost stack does not outlive the test.
        std::thread::spawn(|| {
            let layer = layer_number();
            entered(layer, &Id::from_u64(1));
            assert_eq!(current(layer), Some(1));
            ENTERED.with(|stack| {
                let _borrowed = stack.borrow();
                // Recording while the stack is borrowed fails.
                entered(layer, &Id::from_u64(2));
            });
            assert_eq!(current(layer), None);
        })
        .join()
        .unwrap();
    }
}
