//! IPAM input, parsed into validated types at the edge, and the address
//! arithmetic the service relies on.
//!
//! Addresses are handled as `u128` "keys" (IPv4 as the IPv4-mapped IPv6
//! address), the same order as the 16-byte keys in the database.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

use super::key::ip_key;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

impl IpVersion {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => IpVersion::V4,
            IpAddr::V6(_) => IpVersion::V6,
        }
    }

    pub fn number(self) -> i16 {
        match self {
            IpVersion::V4 => 4,
            IpVersion::V6 => 6,
        }
    }

    pub fn from_number(n: i16) -> Option<Self> {
        match n {
            4 => Some(IpVersion::V4),
            6 => Some(IpVersion::V6),
            _ => None,
        }
    }
}

/// An address as a number, in the order of the database keys.
pub fn to_u128(addr: IpAddr) -> u128 {
    u128::from_be_bytes(ip_key(addr))
}

/// The inverse of [`to_u128`] for the given family.
pub fn from_u128(value: u128, version: IpVersion) -> IpAddr {
    let v6 = Ipv6Addr::from(value);
    match version {
        IpVersion::V4 => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
        IpVersion::V6 => IpAddr::V6(v6),
    }
}

pub fn key_bytes(value: u128) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

pub fn key_from_bytes(bytes: &[u8]) -> Option<u128> {
    let array: [u8; 16] = bytes.try_into().ok()?;
    Some(u128::from_be_bytes(array))
}

/// An inclusive range of address keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    pub start: u128,
    pub end: u128,
}

impl KeyRange {
    pub fn new(start: u128, end: u128) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    pub fn len(&self) -> u128 {
        // A full IPv6 /0 has 2^128 addresses, one more than u128 holds:
        // saturate, nobody allocates that many.
        (self.end - self.start).saturating_add(1)
    }

    /// Always false: a range holds at least one address (`new` refuses
    /// start > end).
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// The range with `key` taken out: what is left below and above it.
    pub fn without(&self, key: u128) -> (Option<KeyRange>, Option<KeyRange>) {
        debug_assert!(self.contains(key));
        let below = (key > self.start).then(|| KeyRange {
            start: self.start,
            end: key - 1,
        });
        let above = (key < self.end).then(|| KeyRange {
            start: key + 1,
            end: self.end,
        });
        (below, above)
    }
}

/// A network in canonical form (host bits zero), IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Parses `10.0.0.0/24`. A network with host bits set is refused with
    /// the canonical form to use instead.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let net: IpNet = text
            .parse()
            .map_err(|_| format!("\"{text}\" is not a network in CIDR notation, such as 10.0.0.0/24 or 2001:db8::/64"))?;
        if net.network() != net.addr() {
            return Err(format!(
                "{text} is not a network address: did you mean {}/{}?",
                net.network(),
                net.prefix_len()
            ));
        }
        Ok(Self(net))
    }

    pub fn from_parts(network: IpAddr, prefix_len: u8) -> Result<Self, String> {
        Self::parse(&format!("{network}/{prefix_len}"))
    }

    pub fn net(&self) -> IpNet {
        self.0
    }

    pub fn network(&self) -> IpAddr {
        self.0.network()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn version(&self) -> IpVersion {
        IpVersion::of(self.0.network())
    }

    /// First and last address of the network (network and broadcast for IPv4).
    pub fn range(&self) -> KeyRange {
        KeyRange {
            start: to_u128(self.0.network()),
            end: to_u128(self.0.broadcast()),
        }
    }

    /// The addresses that may be handed out. IPv4 leaves out the network and
    /// broadcast addresses except in a /31 or /32 (RFC 3021); IPv6 leaves out
    /// the subnet-router anycast address (the network address, RFC 4291)
    /// except in a /127 or /128 (RFC 6164).
    pub fn usable(&self) -> KeyRange {
        let KeyRange { start, end } = self.range();
        match (self.version(), self.prefix_len()) {
            (IpVersion::V4, 31 | 32) | (IpVersion::V6, 127 | 128) => KeyRange { start, end },
            (IpVersion::V4, _) => KeyRange {
                start: start + 1,
                end: end - 1,
            },
            (IpVersion::V6, _) => KeyRange {
                start: start + 1,
                end,
            },
        }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Usable addresses minus the gateway: the initial free set of a subnet.
pub fn initial_free_ranges(cidr: &Cidr, gateway: Option<IpAddr>) -> Vec<KeyRange> {
    let usable = cidr.usable();
    match gateway.map(to_u128).filter(|g| usable.contains(*g)) {
        None => vec![usable],
        Some(gateway) => {
            let (below, above) = usable.without(gateway);
            below.into_iter().chain(above).collect()
        }
    }
}

/// What stays free of `ranges` once the `taken` keys (sorted) are out: the
/// free set of a subnet, rebuilt from its allocations. Its first range
/// starts at the lowest free address.
pub fn free_ranges_around(ranges: &[KeyRange], taken: &[u128]) -> Vec<KeyRange> {
    debug_assert!(taken.windows(2).all(|w| w[0] <= w[1]), "taken is sorted");
    let mut free = Vec::new();
    for range in ranges {
        // `next`: the lowest key not yet known to be taken (None past u128::MAX).
        let mut next = Some(range.start);
        let inside = taken.partition_point(|k| *k < range.start);
        for &key in taken[inside..].iter().take_while(|k| **k <= range.end) {
            if let Some(start) = next.filter(|start| key > *start) {
                free.push(KeyRange {
                    start,
                    end: key - 1,
                });
            }
            // Past the top of the key space nothing is left; a repeated key
            // never moves `next` back.
            next = match (next, key.checked_add(1)) {
                (Some(current), Some(after)) => Some(current.max(after)),
                _ => None,
            };
        }
        if let Some(start) = next.filter(|start| *start <= range.end) {
            free.push(KeyRange {
                start,
                end: range.end,
            });
        }
    }
    free
}

/// Checks a gateway: inside the subnet, and not its network or broadcast
/// address (which `usable` leaves out).
pub fn check_gateway(cidr: &Cidr, gateway: IpAddr) -> Result<(), String> {
    if IpVersion::of(gateway) != cidr.version() || !cidr.contains(gateway) {
        return Err(format!("{gateway} is not inside {cidr}"));
    }
    if !cidr.usable().contains(to_u128(gateway)) {
        return Err(format!(
            "{gateway} is the network or broadcast address of {cidr}, not a host address"
        ));
    }
    Ok(())
}

/// A MAC address, accepted as `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`,
/// `aabb.ccdd.eeff` or `aabbccddeeff`, and kept as lower-case colon form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MacAddress(String);

impl MacAddress {
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        let separators_ok = {
            let t = text.trim();
            let parts_colon: Vec<&str> = t.split([':', '-']).collect();
            let parts_dot: Vec<&str> = t.split('.').collect();
            (parts_colon.len() == 6 && parts_colon.iter().all(|p| p.len() == 2))
                || (parts_dot.len() == 3 && parts_dot.iter().all(|p| p.len() == 4))
                || (t.len() == 12 && !t.contains([':', '-', '.']))
        };
        if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) || !separators_ok {
            return Err(format!(
                "\"{}\" is not a MAC address such as aa:bb:cc:dd:ee:ff",
                text.trim()
            ));
        }
        let hex = hex.to_ascii_lowercase();
        let pairs: Vec<&str> = (0..6).map(|i| &hex[i * 2..i * 2 + 2]).collect();
        Ok(Self(pairs.join(":")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subscriber's username as RADIUS and RouterOS accept it: 1 to 64
/// characters of letters, digits and `. _ - @ +`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetUsername(String);

impl NetUsername {
    pub fn parse(text: &str) -> Result<Self, String> {
        let name = text.trim();
        if name.is_empty() || name.len() > 64 {
            return Err("must be 1 to 64 characters long".into());
        }
        let allowed =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+');
        if !name.chars().all(allowed) {
            return Err(format!(
                "\"{name}\" may contain only letters, digits and . _ - @ +"
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An 802.1Q VLAN id, 1 to 4094.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanId(u16);

impl VlanId {
    pub fn new(value: i64) -> Result<Self, String> {
        u16::try_from(value)
            .ok()
            .filter(|v| (1..=4094).contains(v))
            .map(Self)
            .ok_or_else(|| format!("{value} is not a VLAN id (1 to 4094)"))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// The state of a pool or a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeStatus {
    /// In use: addresses may be allocated.
    Active,
    /// Set aside: kept, but nothing is allocated from it.
    Reserved,
    /// Being retired: existing allocations stay, no new ones.
    Deprecated,
}

impl RangeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RangeStatus::Active => "active",
            RangeStatus::Reserved => "reserved",
            RangeStatus::Deprecated => "deprecated",
        }
    }
}

impl FromStr for RangeStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "active" => Ok(RangeStatus::Active),
            "reserved" => Ok(RangeStatus::Reserved),
            "deprecated" => Ok(RangeStatus::Deprecated),
            other => Err(format!(
                "\"{other}\" is not a status (active, reserved or deprecated)"
            )),
        }
    }
}

pub use crate::text::parse_ip;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_must_be_canonical() {
        assert_eq!(
            Cidr::parse("10.0.0.0/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(
            Cidr::parse("10.0.0.5/24").unwrap_err(),
            "10.0.0.5/24 is not a network address: did you mean 10.0.0.0/24?"
        );
        assert!(Cidr::parse("2001:db8::1/64")
            .unwrap_err()
            .contains("did you mean 2001:db8::/64?"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("banana").unwrap_err().contains("CIDR"));
    }

    #[test]
    fn usable_addresses_follow_the_rfcs() {
        let usable = |s: &str| {
            let c = Cidr::parse(s).unwrap();
            let r = c.usable();
            (
                from_u128(r.start, c.version()),
                from_u128(r.end, c.version()),
                r.len(),
            )
        };
        assert_eq!(usable("10.0.0.0/29"), (ip("10.0.0.1"), ip("10.0.0.6"), 6));
        assert_eq!(usable("10.0.0.0/30"), (ip("10.0.0.1"), ip("10.0.0.2"), 2));
        assert_eq!(usable("10.0.0.0/31"), (ip("10.0.0.0"), ip("10.0.0.1"), 2));
        assert_eq!(usable("10.0.0.7/32"), (ip("10.0.0.7"), ip("10.0.0.7"), 1));
        assert_eq!(usable("0.0.0.0/0").2, (1u128 << 32) - 2);
        assert_eq!(
            usable("2001:db8::/126"),
            (ip("2001:db8::1"), ip("2001:db8::3"), 3)
        );
        assert_eq!(
            usable("2001:db8::/127"),
            (ip("2001:db8::"), ip("2001:db8::1"), 2)
        );
        assert_eq!(
            usable("2001:db8::1/128"),
            (ip("2001:db8::1"), ip("2001:db8::1"), 1)
        );
        assert_eq!(usable("2001:db8::/64").2, (1u128 << 64) - 1);
        assert_eq!(usable("::/0").2, u128::MAX, "2^128 - 1");
    }

    #[test]
    fn gateways_must_be_host_addresses_inside_the_subnet() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert!(check_gateway(&c, ip("10.0.0.1")).is_ok());
        assert!(check_gateway(&c, ip("10.0.1.1"))
            .unwrap_err()
            .contains("not inside"));
        assert!(check_gateway(&c, ip("10.0.0.0"))
            .unwrap_err()
            .contains("network or broadcast"));
        assert!(check_gateway(&c, ip("10.0.0.255"))
            .unwrap_err()
            .contains("network or broadcast"));
        assert!(check_gateway(&c, ip("2001:db8::1")).is_err());
        let free = initial_free_ranges(&c, Some(ip("10.0.0.1")));
        assert_eq!(
            free,
            vec![KeyRange::new(to_u128(ip("10.0.0.2")), to_u128(ip("10.0.0.254"))).unwrap()]
        );
        let free = initial_free_ranges(&c, Some(ip("10.0.0.100")));
        assert_eq!(free.len(), 2);
    }

    #[test]
    fn mac_addresses_are_normalised() {
        for input in [
            "AA:BB:CC:DD:EE:FF",
            "aa-bb-cc-dd-ee-ff",
            "aabb.ccdd.eeff",
            "AABBCCDDEEFF",
            " aa:bb:cc:dd:ee:ff ",
        ] {
            assert_eq!(
                MacAddress::parse(input).unwrap().as_str(),
                "aa:bb:cc:dd:ee:ff",
                "{input}"
            );
        }
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:gg",
            "aabb.ccdd",
            "a:ab:bcc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff:00",
        ] {
            assert!(MacAddress::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn usernames_and_vlans_are_checked() {
        assert!(NetUsername::parse("alice@isp.example").is_ok());
        for bad in ["", "has space", "semi;colon", "quote'", &"x".repeat(65)] {
            assert!(NetUsername::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(VlanId::new(100).unwrap().get(), 100);
        for bad in [0, 4095, -1, 70000] {
            assert!(VlanId::new(bad).is_err());
        }
    }

    fn any_cidr() -> impl Strategy<Value = Cidr> {
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, p)| {
                let net = ipnet::Ipv4Net::new(Ipv4Addr::from(a), p).unwrap().trunc();
                Cidr::from_parts(IpAddr::V4(net.network()), p).unwrap()
            }),
            (any::<u128>(), 0u8..=128).prop_map(|(a, p)| {
                let net = ipnet::Ipv6Net::new(Ipv6Addr::from(a), p).unwrap().trunc();
                Cidr::from_parts(IpAddr::V6(net.network()), p).unwrap()
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_address_with_host_bits_suggests_its_network(a in any::<u32>(), p in 0u8..=32) {
            let addr = Ipv4Addr::from(a);
            let text = format!("{addr}/{p}");
            let net = ipnet::Ipv4Net::new(addr, p).unwrap();
            match Cidr::parse(&text) {
                Ok(c) => prop_assert_eq!(c.network(), IpAddr::V4(addr)),
                Err(e) => {
                    let suggestion = format!("did you mean {}/{}?", net.network(), p);
                    prop_assert!(e.ends_with(&suggestion));
                }
            }
        }

        #[test]
        fn usable_addresses_lie_inside_the_network(c in any_cidr()) {
            let range = c.range();
            let usable = c.usable();
            prop_assert!(range.start <= usable.start && usable.end <= range.end);
            prop_assert!(c.contains(from_u128(usable.start, c.version())));
            prop_assert!(c.contains(from_u128(usable.end, c.version())));
            let excluded = range.len().saturating_sub(usable.len());
            let expected = match (c.version(), c.prefix_len()) {
                (IpVersion::V4, 31 | 32) | (IpVersion::V6, 127 | 128) => 0,
                (IpVersion::V4, _) => 2,
                (IpVersion::V6, 0) => 0, // 2^128 saturates; see KeyRange::len
                (IpVersion::V6, _) => 1,
            };
            prop_assert_eq!(excluded, expected);
        }

        #[test]
        fn keys_round_trip(a in any::<u32>(), b in any::<u128>()) {
            prop_assert_eq!(from_u128(to_u128(IpAddr::V4(a.into())), IpVersion::V4), IpAddr::V4(a.into()));
            prop_assert_eq!(from_u128(to_u128(IpAddr::V6(b.into())), IpVersion::V6), IpAddr::V6(b.into()));
        }

        /// The free set rebuilt from a sorted set of taken addresses holds
        /// exactly the untaken ones, and starts at the lowest free address.
        #[test]
        fn free_ranges_are_the_complement_of_the_taken_set(
            start in 0u128..64,
            len in 1u128..64,
            mut taken in proptest::collection::vec(0u128..140, 0..40),
        ) {
            taken.sort_unstable();
            let usable = KeyRange::new(start, start + len - 1).unwrap();
            let free = free_ranges_around(&[usable], &taken);
            let naive: Vec<u128> = (usable.start..=usable.end).filter(|k| !taken.contains(k)).collect();
            let from_ranges: Vec<u128> = free.iter().flat_map(|r| r.start..=r.end).collect();
            prop_assert_eq!(&from_ranges, &naive);
            prop_assert_eq!(free.first().map(|r| r.start), naive.first().copied(), "the lowest free address");
            prop_assert!(free.windows(2).all(|w| w[0].end + 1 < w[1].start), "ranges are disjoint and not adjacent");
        }

        #[test]
        fn taking_an_address_out_of_a_range_keeps_the_rest(start in 0u128..1000, len in 1u128..100, pick in 0u128..100) {
            let range = KeyRange::new(start, start + len - 1).unwrap();
            let key = start + pick % len;
            let (below, above) = range.without(key);
            let rest = below.map_or(0, |r| r.len()) + above.map_or(0, |r| r.len());
            prop_assert_eq!(rest, len - 1);
            prop_assert!(below.is_none_or(|r| r.end == key - 1 && r.start == start));
            prop_assert!(above.is_none_or(|r| r.start == key + 1 && r.end == range.end));
        }
    }
}
