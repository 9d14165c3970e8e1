//! The allow-list: the hard boundary of what this agent may ever send to.
//!
//! It is built once from the configuration (`allow`, or the targets and
//! the preset's prefixes when `allow` is absent) and checked for every
//! probe at the point of sending: by the tracer's [`crate::engine::Gate`],
//! again by the raw-socket network ([`crate::net`]) and for every echo
//! request ([`crate::ping`]). A schedule from the collector is applied only
//! within it ([`crate::schedule`]). Nothing widens it at run time.
//!
//! It depends on nothing else in the crate, so that every module that
//! sends or plans can use it without importing the configuration.

use std::net::IpAddr;

use ipnet::IpNet;

/// The hard boundary of what the agent may send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    prefixes: Vec<IpNet>,
}

impl AllowList {
    /// An allow-list of exactly these prefixes.
    pub fn new(prefixes: Vec<IpNet>) -> Self {
        Self { prefixes }
    }

    /// True when `addr` may be probed.
    pub fn permits(&self, addr: IpAddr) -> bool {
        self.prefixes.iter().any(|p| p.contains(&addr))
    }

    /// True when every address of `net` may be probed.
    pub fn covers(&self, net: &IpNet) -> bool {
        self.prefixes.iter().any(|p| p.contains(net))
    }

    /// True when the list has a prefix of this family (IPv6 when `v6`).
    pub fn has_family(&self, v6: bool) -> bool {
        self.prefixes
            .iter()
            .any(|p| matches!(p, IpNet::V6(_)) == v6)
    }

    /// The prefixes.
    pub fn prefixes(&self) -> &[IpNet] {
        &self.prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> AllowList {
        AllowList::new(p.iter().map(|s| s.parse().expect("net")).collect())
    }

    #[test]
    fn permits_exactly_the_addresses_inside_its_prefixes() {
        let a = list(&["175.45.176.0/22", "2001:db8:176::/48"]);
        for yes in ["175.45.176.0", "175.45.179.255", "2001:db8:176::1"] {
            assert!(a.permits(yes.parse().expect("ip")), "{yes}");
        }
        for no in ["175.45.175.255", "175.45.180.0", "2001:db8:177::1", "::"] {
            assert!(!a.permits(no.parse().expect("ip")), "{no}");
        }
        // An empty list permits nothing.
        assert!(!list(&[]).permits("175.45.176.1".parse().expect("ip")));
    }

    #[test]
    fn covers_a_prefix_only_when_all_of_it_is_inside() {
        let a = list(&["175.45.176.0/22"]);
        assert!(a.covers(&"175.45.177.0/24".parse().expect("net")));
        assert!(a.covers(&"175.45.176.0/22".parse().expect("net")));
        assert!(!a.covers(&"175.45.176.0/21".parse().expect("net")));
        assert!(!a.covers(&"0.0.0.0/0".parse().expect("net")));
    }

    #[test]
    fn families() {
        let a = list(&["175.45.176.0/22"]);
        assert!(a.has_family(false) && !a.has_family(true));
        let b = list(&["2001:db8::/32"]);
        assert!(!b.has_family(false) && b.has_family(true));
    }
}
