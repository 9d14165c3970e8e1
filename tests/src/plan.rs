//! Turning a scenario into the exact commands that build it: pure, so the
//! tests can check the generated `ip` batch lines, sysctls and nftables
//! rulesets without root, and the runtime ([`crate::lab`]) only executes.

use std::fmt::Write as _;

use ipnet::IpNet;

use crate::scenario::{Node, Proto, Role, Route, Scenario};

/// Prefix of every lab namespace name: `tl<6 hex>-<node>`.
pub const NS_PREFIX: &str = "tl";

/// The namespace name of `node` in lab `lab_id`.
pub fn ns_name(lab_id: &str, node: &str) -> String {
    format!("{lab_id}-{node}")
}

/// True when `id` has the shape of a lab id (`tl` + 6 lowercase hex digits).
pub fn is_lab_id(id: &str) -> bool {
    id.len() == 8
        && id.starts_with(NS_PREFIX)
        && id[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The lab id a namespace belongs to, if it is a lab namespace.
pub fn lab_id_of_ns(ns: &str) -> Option<&str> {
    let (id, node) = ns.split_once('-')?;
    (is_lab_id(id) && !node.is_empty()).then_some(id)
}

/// Lines for `ip -batch -` in the root namespace that create the namespaces.
pub fn netns_batch(s: &Scenario, lab_id: &str) -> String {
    let mut out = String::new();
    for n in &s.nodes {
        let _ = writeln!(out, "netns add {}", ns_name(lab_id, &n.name));
    }
    out
}

/// Lines for `ip -batch -` in the root namespace that create the veth pairs
/// directly inside the namespaces (each end is named after its peer). Run
/// after the sysctls, so interfaces inherit `default` settings such as
/// `accept_dad=0` (a link-local address in DAD delays IPv6 for a second).
pub fn links_batch(s: &Scenario, lab_id: &str) -> String {
    let mut out = String::new();
    for (i, l) in s.links.iter().enumerate() {
        let _ = writeln!(
            out,
            "link add name {} address {} netns {} type veth peer name {} address {} netns {}",
            l.b,
            mac(i, 0),
            ns_name(lab_id, &l.a),
            l.a,
            mac(i, 1),
            ns_name(lab_id, &l.b)
        );
    }
    out
}

/// The MAC address of side `side` (0 = a, 1 = b) of link number `link`:
/// locally administered, unique within a lab. Fixed MACs let every node
/// know its neighbours from the start (see [`node_batch`]).
pub fn mac(link: usize, side: u8) -> String {
    let [hi, lo] = u16::try_from(link).unwrap_or(u16::MAX).to_be_bytes();
    format!("02:00:00:{hi:02x}:{lo:02x}:{side:02x}")
}

/// Lines for `ip -n NS -batch -` that configure `node`: interfaces,
/// addresses, permanent neighbour entries, local prefixes and static routes.
///
/// The neighbour entries stand for the warm ARP/ND caches of real routers:
/// without them the first IPv6 packets after bring-up wait about a second
/// for neighbour discovery, and a trace started right away shows `*` hops
/// that the scenario does not have.
pub fn node_batch(s: &Scenario, node: &Node) -> String {
    let mut out = String::from("link set lo up\n");
    for (i, l) in s.links.iter().enumerate() {
        if !l.touches(&node.name) {
            continue;
        }
        let peer = l.peer_of(&node.name);
        let dev = peer;
        for a in l.addrs_of(&node.name) {
            let nodad = if a.addr().is_ipv6() { " nodad" } else { "" };
            let _ = writeln!(out, "addr add {a} dev {dev}{nodad}");
        }
        let _ = writeln!(out, "link set dev {dev} up");
        let peer_mac = mac(i, if l.a == peer { 0 } else { 1 });
        for a in l.addrs_of(peer) {
            let _ = writeln!(
                out,
                "neigh replace {} lladdr {peer_mac} dev {dev} nud permanent",
                a.addr()
            );
        }
    }
    for p in &node.local_prefixes {
        let _ = writeln!(out, "route add local {p} dev lo");
    }
    for r in s.routes.iter().filter(|r| r.node == node.name) {
        out.push_str(&route_line(s, r, "add"));
    }
    out
}

/// One `route add|replace|del` line; the gateway of each `via` neighbour is
/// its address of the route's family on the shared link.
pub fn route_line(s: &Scenario, r: &Route, verb: &str) -> String {
    let v6 = r.dst.addr().is_ipv6();
    if r.via.is_empty() {
        return format!("route del {}\n", r.dst);
    }
    let gws: Vec<String> = r
        .via
        .iter()
        .filter_map(|v| s.addr_on_link(v, &r.node, v6))
        .map(|a| a.to_string())
        .collect();
    if gws.len() == 1 {
        format!("route {verb} {} via {}\n", r.dst, gws[0])
    } else {
        let hops: Vec<String> = gws.iter().map(|g| format!("nexthop via {g}")).collect();
        format!("route {verb} {} {}\n", r.dst, hops.join(" "))
    }
}

/// `sysctl -w` arguments for a node.
///
/// Every node: no ICMP rate limiting unless the scenario asks for it (the
/// kernel default of 1000 ms would make tests and benchmarks measure the
/// kernel), no reverse-path filter (lab paths are asymmetric on purpose),
/// no duplicate address detection. Routers also forward, hash ECMP on L4
/// ports, and answer ICMP errors from the interface the packet came in on,
/// as most real routers do.
pub fn sysctls(node: &Node) -> Vec<String> {
    let mut v = vec![
        "net.ipv4.conf.all.rp_filter=0".to_string(),
        "net.ipv4.conf.default.rp_filter=0".to_string(),
        "net.ipv6.conf.all.accept_dad=0".to_string(),
        "net.ipv6.conf.default.accept_dad=0".to_string(),
        format!("net.ipv4.icmp_ratelimit={}", node.icmp_ratelimit_ms),
        format!("net.ipv6.icmp.ratelimit={}", node.icmp_ratelimit_ms),
    ];
    if node.icmp_ratelimit_ms == 0 {
        // The global ICMP budget (default 1000/s, burst 50) also throttles.
        v.push("net.ipv4.icmp_msgs_per_sec=1000000".into());
        v.push("net.ipv4.icmp_msgs_burst=1000000".into());
    }
    if node.role == Role::Router {
        v.extend(
            [
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv4.fib_multipath_hash_policy=1",
                "net.ipv6.fib_multipath_hash_policy=1",
                "net.ipv4.icmp_errors_use_inbound_ifaddr=1",
            ]
            .map(String::from),
        );
    }
    v
}

/// The nftables ruleset giving a router its behaviour, or `None` when it
/// behaves normally.
pub fn nft_ruleset(node: &Node) -> Option<String> {
    if !node.silent && node.loss_percent == 0 && node.reject.is_empty() {
        return None;
    }
    let mut fwd = String::new();
    if node.loss_percent > 0 {
        let _ = writeln!(
            fwd,
            "    numgen random mod 100 < {} counter drop",
            node.loss_percent
        );
    }
    for r in &node.reject {
        let v6 = matches!(r.dst, IpNet::V6(_));
        let (family, reject) = if v6 {
            ("ip6", "icmpv6 type admin-prohibited")
        } else {
            ("ip", "icmp type admin-prohibited")
        };
        let proto = match (r.proto, v6) {
            (Proto::Any, _) => String::new(),
            (Proto::Icmp, false) => " meta l4proto icmp".into(),
            (Proto::Icmp, true) => " meta l4proto ipv6-icmp".into(),
            (p, _) => format!(" meta l4proto {p}"),
        };
        let _ = writeln!(
            fwd,
            "    {family} daddr {}{proto} counter reject with {reject}",
            r.dst
        );
    }
    let mut out = String::from("table inet tumen_lab {\n");
    let _ = writeln!(
        out,
        "  chain forward {{\n    type filter hook forward priority 0; policy accept;\n{fwd}  }}"
    );
    if node.silent {
        out.push_str(
            "  chain output {\n    type filter hook output priority 0; policy accept;\n    \
             icmp type time-exceeded counter drop\n    icmpv6 type time-exceeded counter drop\n  }\n",
        );
    }
    out.push_str("}\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_ids_and_namespace_names() {
        assert!(is_lab_id("tl0a1b2c"));
        assert!(!is_lab_id("tl0A1b2c"));
        assert!(!is_lab_id("tx0a1b2c"));
        assert!(!is_lab_id("tl0a1b2"));
        assert_eq!(ns_name("tl0a1b2c", "vp-fra"), "tl0a1b2c-vp-fra");
        assert_eq!(lab_id_of_ns("tl0a1b2c-vp-fra"), Some("tl0a1b2c"));
        assert_eq!(lab_id_of_ns("tl0a1b2c-"), None);
        assert_eq!(lab_id_of_ns("docker-1"), None);
    }

    #[test]
    fn ecmp_diamond_commands_are_exact() {
        let s = Scenario::load("ecmp-diamond").expect("shipped");
        let ns = netns_batch(&s, "tl000001");
        assert!(
            ns.starts_with("netns add tl000001-vp\nnetns add tl000001-r1\n"),
            "{ns}"
        );
        let root = links_batch(&s, "tl000001");
        assert!(
            root.contains(
                "link add name r1 address 02:00:00:00:00:00 netns tl000001-vp \
                 type veth peer name vp address 02:00:00:00:00:01 netns tl000001-r1\n"
            ),
            "{root}"
        );
        let r1 = s.node("r1").expect("r1");
        let batch = node_batch(&s, r1);
        let expected = "link set lo up\n\
            addr add 192.0.2.2/30 dev vp\n\
            addr add 2001:db8:1:1::2/64 dev vp nodad\n\
            link set dev vp up\n\
            neigh replace 192.0.2.1 lladdr 02:00:00:00:00:00 dev vp nud permanent\n\
            neigh replace 2001:db8:1:1::1 lladdr 02:00:00:00:00:00 dev vp nud permanent\n\
            addr add 198.51.100.1/30 dev r2a\n\
            addr add 2001:db8:2:a::1/64 dev r2a nodad\n\
            link set dev r2a up\n\
            neigh replace 198.51.100.2 lladdr 02:00:00:00:01:01 dev r2a nud permanent\n\
            neigh replace 2001:db8:2:a::2 lladdr 02:00:00:00:01:01 dev r2a nud permanent\n\
            addr add 198.51.100.5/30 dev r2b\n\
            addr add 2001:db8:2:b::1/64 dev r2b nodad\n\
            link set dev r2b up\n\
            neigh replace 198.51.100.6 lladdr 02:00:00:00:02:01 dev r2b nud permanent\n\
            neigh replace 2001:db8:2:b::2 lladdr 02:00:00:00:02:01 dev r2b nud permanent\n\
            route add 198.18.10.0/24 nexthop via 198.51.100.2 nexthop via 198.51.100.6\n\
            route add 2001:db8:10::/48 nexthop via 2001:db8:2:a::2 nexthop via 2001:db8:2:b::2\n";
        assert_eq!(batch, expected);
        let dst = s.node("dst").expect("dst");
        let batch = node_batch(&s, dst);
        assert!(
            batch.contains("route add local 198.18.10.0/24 dev lo\n"),
            "{batch}"
        );
        assert!(
            batch.contains("route add 0.0.0.0/0 via 203.0.113.1\n"),
            "{batch}"
        );
        assert!(
            batch.contains("route add ::/0 via 2001:db8:4::1\n"),
            "{batch}"
        );
    }

    #[test]
    fn behaviour_becomes_nft_rules() {
        let s = Scenario::load("silent-and-lossy").expect("shipped");
        assert_eq!(nft_ruleset(s.node("r1").expect("r1")), None);
        let silent = nft_ruleset(s.node("r2").expect("r2")).expect("rules");
        assert!(
            silent.contains("icmp type time-exceeded counter drop"),
            "{silent}"
        );
        assert!(
            silent.contains("icmpv6 type time-exceeded counter drop"),
            "{silent}"
        );
        let lossy = nft_ruleset(s.node("r4").expect("r4")).expect("rules");
        assert!(
            lossy.contains("numgen random mod 100 < 30 counter drop"),
            "{lossy}"
        );
        assert!(!lossy.contains("chain output"), "{lossy}");
        let s = Scenario::load("dprk-2025").expect("shipped");
        let border = nft_ruleset(s.node("cu-dandong").expect("border")).expect("rules");
        assert!(
            border.contains(
                "ip daddr 198.18.176.0/22 meta l4proto udp counter reject with icmp type admin-prohibited"
            ),
            "{border}"
        );
        assert!(
            border.contains(
                "ip6 daddr 2001:db8:176::/47 meta l4proto tcp counter reject with icmpv6 type admin-prohibited"
            ),
            "{border}"
        );
    }

    #[test]
    fn ratelimit_sysctls_follow_the_scenario() {
        let s = Scenario::load("silent-and-lossy").expect("shipped");
        let r1 = sysctls(s.node("r1").expect("r1"));
        assert!(r1.contains(&"net.ipv4.icmp_ratelimit=0".to_string()));
        assert!(r1.contains(&"net.ipv4.ip_forward=1".to_string()));
        let r3 = sysctls(s.node("r3").expect("r3"));
        assert!(r3.contains(&"net.ipv4.icmp_ratelimit=1000".to_string()));
        assert!(!r3
            .iter()
            .any(|s| s.starts_with("net.ipv4.icmp_msgs_per_sec")));
        let vp = sysctls(s.node("vp").expect("vp"));
        assert!(!vp.contains(&"net.ipv4.ip_forward=1".to_string()));
    }
}
