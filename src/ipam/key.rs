//! Address keys: 16 big-endian bytes that sort numerically on every backend.
//!
//! IPv4 addresses become IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), so one
//! binary column holds both families and a byte-wise comparison (which
//! SQLite, PostgreSQL and MariaDB all use for binary columns) is a numeric one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub type IpKey = [u8; 16];

pub fn ip_key(addr: IpAddr) -> IpKey {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The inverse of [`ip_key`] for a key of the given family.
pub fn ip_from_key(key: &[u8], ip_version: u8) -> Option<IpAddr> {
    let bytes: [u8; 16] = key.try_into().ok()?;
    let v6 = Ipv6Addr::from(bytes);
    match ip_version {
        4 => v6.to_ipv4_mapped().map(IpAddr::V4),
        6 => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// Convenience for tests and seeds.
pub fn v4_key(a: u8, b: u8, c: u8, d: u8) -> IpKey {
    ip_key(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_the_addresses() {
        let addrs: Vec<IpAddr> = ["10.0.0.2", "10.0.0.10", "9.255.255.255", "10.0.1.0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut by_key = addrs.clone();
        by_key.sort_by_key(|a| ip_key(*a));
        let mut by_value = addrs;
        by_value.sort();
        assert_eq!(by_key, by_value);

        let low: IpAddr = "2001:db8::9".parse().unwrap();
        let high: IpAddr = "2001:db8::10".parse().unwrap();
        assert!(ip_key(low) < ip_key(high));
    }

    #[test]
    fn keys_round_trip() {
        for (text, version) in [("192.0.2.7", 4), ("2001:db8::1", 6)] {
            let addr: IpAddr = text.parse().unwrap();
            assert_eq!(ip_from_key(&ip_key(addr), version), Some(addr));
        }
        assert_eq!(v4_key(10, 0, 0, 1)[10..12], [0xff, 0xff]);
    }
}
