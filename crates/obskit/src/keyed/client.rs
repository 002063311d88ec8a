//! Client identity by peer address: IPv4 per address, IPv6 per /64 prefix.
// Public through `resilience::rate_limit`; without that feature only the admin routes use it.
#![cfg_attr(not(feature = "resilience"), allow(unreachable_pub))]

use std::net::{IpAddr, Ipv6Addr};

/// The identity a client is tracked by.
///
/// IPv4 clients are tracked per address. IPv6 clients are tracked per /64 prefix, because a
/// single host usually controls a whole /64 and could otherwise rotate addresses to escape a
/// lockout. IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// Returns the key that `ip` is tracked by.
    pub fn from_ip(ip: IpAddr) -> Self {
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
    pub fn unknown() -> Self {
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
}
