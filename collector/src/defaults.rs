//! The embedded prefix table: the target set and the address space of its
//! known upstreams and neighbours, so that a fresh install answers
//! offline. Taken from the RouteViews-derived tables in `../shared/data`
//! (2014-05-13 for IPv4, 2015-11-01 for IPv6); `--asn-table` extends or
//! replaces it with a full table.

use ipnet::IpNet;

use crate::table::{Origin, PrefixTable};

/// (prefix, origin ASN).
pub const DEFAULT_PREFIXES: &[(&str, u32)] = &[
    // Inside the target: Star JV, KPTC (China Netcom space), SatGate.
    ("175.45.176.0/24", 131279),
    ("175.45.177.0/24", 131279),
    ("175.45.178.0/24", 131279),
    ("175.45.179.0/24", 131279),
    ("210.52.109.0/24", 9929),
    ("77.94.35.0/24", 30721),
    // TransTeleCom.
    ("188.43.0.0/16", 20485),
    ("2a00:1e48::/32", 20485),
    // China Unicom backbone (AS4837) and its northern sibling (AS4808).
    ("219.158.0.0/20", 4837),
    ("219.158.16.0/20", 4837),
    ("219.158.26.0/24", 4837),
    ("219.158.32.0/20", 4837),
    ("219.158.63.0/24", 4837),
    ("219.158.69.0/24", 4837),
    ("219.158.96.0/19", 4837),
    ("219.158.128.0/17", 4808),
    ("2408:8000::/24", 4837),
];

/// The embedded table, ready for lookups.
pub fn default_table() -> PrefixTable {
    let mut t = PrefixTable::new();
    for (p, asn) in DEFAULT_PREFIXES {
        if let Ok(net) = p.parse::<IpNet>() {
            t.insert(net, Origin::Asn(*asn));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_answers_the_spot_checks() {
        let t = default_table();
        assert_eq!(t.len(), DEFAULT_PREFIXES.len());
        for (addr, asn) in [
            ("175.45.177.10", 131279),
            ("210.52.109.1", 9929),
            ("188.43.1.1", 20485),
            ("219.158.100.1", 4837),
            ("219.158.200.1", 4808),
            ("2a00:1e48::1", 20485),
        ] {
            assert_eq!(t.lookup_asn(addr.parse().expect("ip")), Some(asn), "{addr}");
        }
        assert_eq!(t.lookup_asn("8.8.8.8".parse().expect("ip")), None);
    }

    #[test]
    fn every_default_prefix_parses_and_is_canonical() {
        for (p, asn) in DEFAULT_PREFIXES {
            let n: ipnet::IpNet = p.parse().unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(n, n.trunc(), "{p} has host bits");
            assert!(*asn > 0);
        }
    }
}
