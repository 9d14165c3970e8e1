//! Address classes and the unit of a destination.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Special-purpose ranges (RFC 6890 and successors): an agent probes them
/// only with `allow_reserved` (the lab's documentation and benchmark
/// ranges are among them).
pub const RESERVED: [&str; 29] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// The special-purpose range `net` overlaps, if any.
pub fn reserved_range(net: &IpNet) -> Option<IpNet> {
    RESERVED
        .iter()
        .filter_map(|r| IpNet::from_str(r).ok())
        .find(|r| r.contains(net) || net.contains(r))
}

/// Whether `addr` is in a special-purpose range.
pub fn is_reserved(addr: IpAddr) -> bool {
    reserved_range(&IpNet::from(addr)).is_some()
}

/// Whether `addr` lies in space no registry attributes to an AS, so that
/// a hop there takes its attribution from its neighbours, and asking
/// Team Cymru or the reverse tree about it is pointless (and leaks
/// private topology): unspecified, "this network" 0/8, private (RFC
/// 1918), loopback, link-local, shared CGNAT 100.64/10, multicast,
/// reserved 240/4 (broadcast included); for IPv6 unspecified, loopback,
/// multicast, ULA fc00::/7, link-local fe80::/10 and site-local
/// fec0::/10. A v4-mapped IPv6 address is judged as its IPv4 address.
/// Documentation and benchmark ranges are *not* unattributable: the lab
/// numbers its networks from them and maps them to stand-in ASNs.
pub fn is_unattributable(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            a == 0
                || v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (a == 100 && (b & 0xc0) == 64)
                || v4.is_multicast()
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
        }
    }
}

/// The /24 (IPv4) or /48 (IPv6) a destination belongs to: agents trace
/// per unit and the collector keeps a path per (agent, unit).
pub fn unit_of(addr: IpAddr) -> IpNet {
    let len = if addr.is_ipv4() { 24 } else { 48 };
    // Both lengths are valid for their family.
    IpNet::new(addr, len).map_or_else(|_| IpNet::from(addr), |n| n.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn the_classes_the_two_old_copies_disagreed_on() {
        for a in [
            "0.1.2.3",
            "240.0.0.1",
            "255.255.255.255",
            "fec0::1",
            "::ffff:10.0.0.1",
            "::ffff:100.64.0.1",
        ] {
            assert!(is_unattributable(a.parse().expect("addr")), "{a}");
        }
        for a in [
            "192.0.2.1",
            "198.18.0.1",
            "2001:db8::1",
            "219.158.3.1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_unattributable(a.parse().expect("addr")), "{a}");
        }
    }

    #[test]
    fn units() {
        assert_eq!(
            unit_of("175.45.177.10".parse().expect("a")).to_string(),
            "175.45.177.0/24"
        );
        assert_eq!(
            unit_of("2001:db8:1:2::1".parse().expect("a")).to_string(),
            "2001:db8:1::/48"
        );
    }

    proptest! {
        #[test]
        fn a_unit_holds_its_address_and_has_no_host_bits(a in any::<u32>(), b in any::<u128>()) {
            for addr in [IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b))] {
                let u = unit_of(addr);
                prop_assert!(u.contains(&addr));
                prop_assert_eq!(u, u.trunc());
                prop_assert_eq!(u.prefix_len(), if addr.is_ipv4() { 24 } else { 48 });
            }
        }

        #[test]
        fn a_v4_mapped_address_is_judged_as_its_ipv4(a in any::<u32>()) {
            let v4 = Ipv4Addr::from(a);
            prop_assert_eq!(
                is_unattributable(IpAddr::V4(v4)),
                is_unattributable(IpAddr::V6(v4.to_ipv6_mapped()))
            );
        }

        #[test]
        fn unattributable_v4_is_reserved(a in any::<u32>()) {
            let addr = IpAddr::V4(Ipv4Addr::from(a));
            if is_unattributable(addr) {
                prop_assert!(is_reserved(addr), "{}", addr);
            }
        }

        #[test]
        fn a_whole_unit_shares_one_class(a in any::<u32>(), host in any::<u8>()) {
            let base = Ipv4Addr::from(a & 0xffff_ff00);
            let other = Ipv4Addr::from((a & 0xffff_ff00) | u32::from(host));
            prop_assert_eq!(
                is_unattributable(IpAddr::V4(base)),
                is_unattributable(IpAddr::V4(other))
            );
        }
    }
}
