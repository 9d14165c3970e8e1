//! The embedded prefix table: the target set and the address space of its
//! known upstreams and neighbours, so that a fresh install answers
//! offline. Taken from the RouteViews-derived tables in `../shared/data`
//! (2014-05-13 for IPv4, 2015-11-01 for IPv6); `--asn-table` extends or
//! replaces it with a full table.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_prefix_parses_and_is_canonical() {
        for (p, asn) in DEFAULT_PREFIXES {
            let n: ipnet::IpNet = p.parse().unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(n, n.trunc(), "{p} has host bits");
            assert!(*asn > 0);
        }
    }
}
