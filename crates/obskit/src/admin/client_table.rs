//! Client identity and a per-client table with a hard capacity, for lockouts and rate limits.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};

use prometheus_client::metrics::counter::Counter;

/// The identity a client is tracked by.
///
/// IPv4 clients are tracked per address. IPv6 clients are tracked per /64 prefix, because a
/// single host usually controls a whole /64 and could otherwise rotate addresses to escape a
/// lockout. IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(IpAddr);

impl ClientKey {
    pub(crate) fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }

    /// Returns the key shared by all requests whose peer address is unknown (no `ConnectInfo`).
    pub(crate) fn unknown() -> Self {
        Self(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    }
}

/// Shows the address an IPv4 client is tracked by, `PREFIX/64` for IPv6 and `unknown` for the
/// shared key of clients without a peer address.
impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) if v6.is_unspecified() => f.write_str("unknown"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// A map from client to state that never contains more than `capacity` clients.
///
/// When full, inserting a new client evicts the client inserted first and increments the
/// eviction counter. Eviction discards that client's state, so a locked-out client is let in
/// again and a rate-limited one gets a fresh burst.
pub(crate) struct BoundedTable<V> {
    entries: HashMap<ClientKey, V, foldhash::fast::RandomState>,
    insertion_order: VecDeque<ClientKey>,
    capacity: usize,
    evictions: Counter,
}

impl<V> BoundedTable<V> {
    /// Creates a table for at most `capacity` clients (at least one).
    pub(crate) fn new(capacity: usize, evictions: Counter) -> Self {
        Self {
            entries: HashMap::default(),
            insertion_order: VecDeque::new(),
            capacity: capacity.max(1),
            evictions,
        }
    }

    pub(crate) fn get(&self, key: &ClientKey) -> Option<&V> {
        self.entries.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &ClientKey) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    /// Inserts or replaces the state of `key`, evicting the oldest client when the table is full.
    pub(crate) fn insert(&mut self, key: ClientKey, value: V) {
        if let Some(existing) = self.entries.get_mut(&key) {
            *existing = value;
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.insertion_order.pop_front() else {
                break;
            };
            if self.entries.remove(&oldest).is_some() {
                self.evictions.inc();
            }
        }
        self.entries.insert(key, value);
        self.insertion_order.push_back(key);
    }

    /// Removes `key`. Its slot in the insertion order is dropped lazily.
    pub(crate) fn remove(&mut self, key: &ClientKey) {
        if self.entries.remove(key).is_some() {
            self.compact_order();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops insertion-order slots of removed clients once they outnumber the live ones, so the
    /// queue stays within twice the capacity.
    fn compact_order(&mut self) {
        if self.insertion_order.len() > self.entries.len().saturating_mul(2).max(16) {
            let entries = &self.entries;
            self.insertion_order.retain(|key| entries.contains_key(key));
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
    use std::net::Ipv4Addr;

    use super::*;

    fn key(n: u32) -> ClientKey {
        ClientKey::from_ip(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn ipv6_tracked_per_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::from_ip(a), ClientKey::from_ip(b));
        assert_ne!(ClientKey::from_ip(a), ClientKey::from_ip(c));
    }

    #[test]
    fn display_shows_tracked_address() {
        let v6: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        assert_eq!(key(0x7f00_0001).to_string(), "127.0.0.1");
        assert_eq!(ClientKey::from_ip(v6).to_string(), "2001:db8:1:2::/64");
        assert_eq!(ClientKey::unknown().to_string(), "unknown");
    }

    #[test]
    fn ipv4_mapped_counts_as_ipv4() {
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let plain: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(ClientKey::from_ip(mapped), ClientKey::from_ip(plain));
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
    fn remove_then_reinsert_keeps_bounds() {
        let mut table = BoundedTable::new(4, Counter::default());
        for round in 0..1000 {
            table.insert(key(round), ());
            table.remove(&key(round));
        }
        assert_eq!(table.len(), 0);
        assert!(table.order_len() <= 16, "{}", table.order_len());
    }
}
