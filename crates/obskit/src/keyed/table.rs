//! A hash table with a hard capacity that evicts its oldest keys when full.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

/// Counts keys that a full table evicted while their state still differed from a fresh one.
pub(crate) trait CountEvictions: Send + Sync {
    /// Adds one eviction.
    fn count_eviction(&self);
}

impl CountEvictions for prometheus_client::metrics::counter::Counter {
    fn count_eviction(&self) {
        self.inc();
    }
}

impl CountEvictions for crate::metrics::Counter {
    fn count_eviction(&self) {
        self.inc();
    }
}

/// How many of the oldest keys a full table inspects for an idle one before it evicts the oldest.
const IDLE_SCAN: usize = 8;

/// A map from key to state that never contains more than `capacity` keys.
///
/// When full, inserting a new key first drops an idle key (one whose state equals a fresh one,
/// as the caller's `is_idle` decides) among the oldest [`IDLE_SCAN`] keys. If none of them is
/// idle, it evicts the key inserted first and increments the eviction counter. Eviction
/// discards that key's state, so a locked-out client is let in again and a rate-limited one
/// gets a fresh burst.
pub(crate) struct BoundedTable<K, V, S = foldhash::fast::RandomState> {
    entries: HashTable<(K, V)>,
    insertion_order: VecDeque<K>,
    hasher: S,
    capacity: usize,
    evictions: Box<dyn CountEvictions>,
}

impl<K: Hash + Eq + Clone, V> BoundedTable<K, V> {
    /// Creates a table for at most `capacity` keys (at least one) with a randomly seeded hasher.
    pub(crate) fn new(capacity: usize, evictions: impl CountEvictions + 'static) -> Self {
        Self::with_hasher(capacity, evictions, foldhash::fast::RandomState::default())
    }
}

// Without `http`, the admin tables that use the plain insert, update and remove are absent.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl<K: Hash + Eq + Clone, V, S: BuildHasher> BoundedTable<K, V, S> {
    /// Creates a table for at most `capacity` keys (at least one) hashing with `hasher`.
    pub(crate) fn with_hasher(
        capacity: usize,
        evictions: impl CountEvictions + 'static,
        hasher: S,
    ) -> Self {
        Self {
            entries: HashTable::new(),
            insertion_order: VecDeque::new(),
            hasher,
            capacity: capacity.max(1),
            evictions: Box::new(evictions),
        }
    }

    /// Hashes `key` with this table's hasher, for the `*_hashed` methods.
    pub(crate) fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.get_hashed(self.hash(key), key)
    }

    /// Looks `key` up by a hash computed with this table's hasher.
    pub(crate) fn get_hashed(&self, hash: u64, key: &K) -> Option<&V> {
        self.entries
            .find(hash, |(stored, _)| stored == key)
            .map(|(_, value)| value)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries
            .find_mut(self.hasher.hash_one(key), |(stored, _)| stored == key)
            .map(|(_, value)| value)
    }

    /// Looks `key` up for update by a hash computed with this table's hasher.
    pub(crate) fn get_mut_hashed(&mut self, hash: u64, key: &K) -> Option<&mut V> {
        self.entries
            .find_mut(hash, |(stored, _)| stored == key)
            .map(|(_, value)| value)
    }

    /// Inserts or replaces the state of `key`, evicting the oldest key when the table is full.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        let hash = self.hash(&key);
        self.insert_hashed(hash, key, value, |_| false);
    }

    /// Inserts or replaces the state of `key`, whose hash was computed with this table's
    /// hasher. When the table is full, an idle key among the oldest is dropped first, and only
    /// when there is none the oldest key is evicted and counted.
    pub(crate) fn insert_hashed(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        is_idle: impl Fn(&V) -> bool,
    ) {
        if let Some((_, existing)) = self.entries.find_mut(hash, |(stored, _)| *stored == key) {
            *existing = value;
            return;
        }
        while self.entries.len() >= self.capacity {
            if !self.drop_idle(&is_idle) && !self.evict_oldest() {
                break;
            }
        }
        self.insertion_order.push_back(key.clone());
        let hasher = &self.hasher;
        self.entries
            .insert_unique(hash, (key, value), |(stored, _)| hasher.hash_one(stored));
    }

    /// Removes `key`. Its slot in the insertion order is dropped lazily.
    pub(crate) fn remove(&mut self, key: &K) {
        let hash = self.hash(key);
        if let Ok(entry) = self.entries.find_entry(hash, |(stored, _)| stored == key) {
            entry.remove();
            self.compact_order();
        }
    }

    /// Removes every key whose state `is_idle` calls idle, and returns how many were removed.
    pub(crate) fn retain_active(&mut self, is_idle: impl Fn(&V) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(_, value)| !is_idle(value));
        let removed = before - self.entries.len();
        if removed > 0 {
            self.compact_order();
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the first idle key among the oldest [`IDLE_SCAN`] slots. Returns whether it found one.
    fn drop_idle(&mut self, is_idle: &impl Fn(&V) -> bool) -> bool {
        let found = self
            .insertion_order
            .iter()
            .take(IDLE_SCAN)
            .position(|key| self.get(key).is_some_and(is_idle));
        let Some(key) = found.and_then(|index| self.insertion_order.remove(index)) else {
            return false;
        };
        let hash = self.hash(&key);
        if let Ok(entry) = self.entries.find_entry(hash, |(stored, _)| *stored == key) {
            entry.remove();
        }
        true
    }

    /// Evicts the key inserted first. Returns false when no slot is left to evict.
    fn evict_oldest(&mut self) -> bool {
        while let Some(oldest) = self.insertion_order.pop_front() {
            let hash = self.hash(&oldest);
            if let Ok(entry) = self
                .entries
                .find_entry(hash, |(stored, _)| *stored == oldest)
            {
                entry.remove();
                self.evictions.count_eviction();
                return true;
            }
        }
        false
    }

    /// Drops insertion-order slots of removed keys once they outnumber the live ones, so the
    /// queue stays within twice the capacity.
    fn compact_order(&mut self) {
        if self.insertion_order.len() > self.entries.len().saturating_mul(2).max(16) {
            let mut order = std::mem::take(&mut self.insertion_order);
            order.retain(|key| self.get(key).is_some());
            self.insertion_order = order;
        }
    }

    #[cfg(test)]
    pub(crate) fn order_len(&self) -> usize {
        self.insertion_order.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use prometheus_client::metrics::counter::Counter;

    use super::*;
    use crate::keyed::ClientKey;

    fn key(n: u32) -> ClientKey {
        ClientKey::from_ip(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn full_table_evicts_oldest() {
        let evictions = Counter::default();
        let mut table = BoundedTable::new(2, evictions.clone());
        table.insert(key(1), 'a');
        table.insert(key(2), 'b');
        table.insert(key(3), 'c');
        assert_eq!(table.len(), 2);
        assert!(table.get(&key(1)).is_none());
        assert_eq!(table.get(&key(3)), Some(&'c'));
        assert_eq!(evictions.get(), 1);
    }

    #[test]
    fn full_table_drops_idle_key_before_evicting() {
        let evictions = Counter::default();
        let mut table = BoundedTable::new(3, evictions.clone());
        let hash = |table: &BoundedTable<ClientKey, u32>, n| table.hash(&key(n));
        for (n, value) in [(1, 10), (2, 0), (3, 10)] {
            let h = hash(&table, n);
            table.insert_hashed(h, key(n), value, |v| *v == 0);
        }
        let h = hash(&table, 4);
        table.insert_hashed(h, key(4), 10, |v| *v == 0);
        assert_eq!(table.len(), 3);
        assert!(table.get(&key(2)).is_none(), "the idle key goes first");
        assert_eq!(table.get(&key(1)), Some(&10));
        assert_eq!(evictions.get(), 0, "dropping an idle key is no eviction");

        let h = hash(&table, 5);
        table.insert_hashed(h, key(5), 10, |v| *v == 0);
        assert!(table.get(&key(1)).is_none(), "no idle key: the oldest goes");
        assert_eq!(evictions.get(), 1);
    }

    #[test]
    fn retain_active_removes_idle_keys_and_compacts_order() {
        let mut table = BoundedTable::new(1000, Counter::default());
        for n in 0..100 {
            table.insert(key(n), n % 10);
        }
        let removed = table.retain_active(|v| *v != 0);
        assert_eq!(removed, 90);
        assert_eq!(table.len(), 10);
        assert!(table.order_len() <= 20, "{}", table.order_len());
        assert_eq!(table.get(&key(30)), Some(&0));
    }

    #[test]
    fn remove_then_reinsert_keeps_bounds() {
        let mut table = BoundedTable::new(4, Counter::default());
        for round in 0..1000 {
            table.insert(key(round), ());
            table.remove(&key(round));
        }
        assert_eq!(table.len(), 0);
        assert!(table.order_len() <= 16, "{}", table.order_len());
    }

    #[test]
    fn same_key_reinserted_keeps_bounds() {
        let mut table = BoundedTable::new(4, Counter::default());
        for _ in 0..1000 {
            table.insert(key(7), ());
            table.remove(&key(7));
        }
        assert!(table.order_len() <= 17, "{}", table.order_len());
    }
}
