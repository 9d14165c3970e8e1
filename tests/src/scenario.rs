//! Scenario files: the TOML description of a lab network, and its validation.
//!
//! A scenario names nodes (vantage points, routers, target hosts), the links
//! between them (each link is one IPv4 and/or one IPv6 subnet; the `a` side
//! gets the first usable address, the `b` side the second), static routes
//! written by neighbour name, per-router behaviour, named route-change events
//! and the lab's ASN/organisation table. Loading is two-phase, as everywhere
//! in Tumen: the raw TOML is read with every field optional where it can be,
//! then validated into [`Scenario`], and *all* problems are reported at once.
//!
//! The one rule that is never relaxed: every address and prefix must lie in
//! the lab ranges ([`LAB_RANGES`]). The lab must never be able to route or
//! impersonate a real Internet address.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;

/// The only address ranges a scenario may use (RFC 5737, RFC 2544, RFC 3849).
pub const LAB_RANGES: [&str; 5] = [
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "198.18.0.0/15",
    "2001:db8::/32",
];

/// Scenarios shipped with Tumen, by name.
pub const SHIPPED: [(&str, &str); 7] = [
    ("dprk-2017", include_str!("../scenarios/dprk-2017.toml")),
    (
        "dyn-2017-10-01",
        include_str!("../scenarios/dyn-2017-10-01.toml"),
    ),
    (
        "dprk-outage-2025-06-07",
        include_str!("../scenarios/dprk-outage-2025-06-07.toml"),
    ),
    ("dprk-2025", include_str!("../scenarios/dprk-2025.toml")),
    (
        "ecmp-diamond",
        include_str!("../scenarios/ecmp-diamond.toml"),
    ),
    (
        "silent-and-lossy",
        include_str!("../scenarios/silent-and-lossy.toml"),
    ),
    ("long-path", include_str!("../scenarios/long-path.toml")),
];

/// Longest node name: node names are also interface names (IFNAMSIZ - 1).
pub const MAX_NODE_NAME: usize = 15;

/// True when the whole of `net` lies inside one of [`LAB_RANGES`].
pub fn is_lab_net(net: &IpNet) -> bool {
    LAB_RANGES.iter().any(|r| {
        IpNet::from_str(r)
            .map(|range| range.contains(net))
            .unwrap_or(false)
    })
}

/// True when `addr` lies inside one of [`LAB_RANGES`].
pub fn is_lab_addr(addr: IpAddr) -> bool {
    is_lab_net(&IpNet::from(addr))
}

/// What a node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Where probes start; does not forward.
    Vantage,
    /// Forwards packets and answers TTL expiry (unless silent).
    Router,
    /// A target host; answers for its link addresses and `local_prefixes`.
    Host,
}

/// Transport protocol a reject rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// Every protocol.
    #[default]
    Any,
    /// ICMP (IPv4) or ICMPv6.
    Icmp,
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Any => "any",
            Proto::Icmp => "icmp",
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        })
    }
}

/// A router answers packets toward `dst` (of protocol `proto`) with ICMP
/// "administratively prohibited" (`!X` in traceroute) instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub dst: IpNet,
    pub proto: Proto,
}

/// One namespace of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub description: String,
    /// Drops its own outgoing ICMP time-exceeded: shows as `*`.
    pub silent: bool,
    /// Percentage (0-100) of forwarded packets dropped at random.
    pub loss_percent: u8,
    /// Kernel ICMP rate limit in ms (`net.ipv4.icmp_ratelimit`); 0 = off.
    pub icmp_ratelimit_ms: u32,
    /// Prefixes a host answers for in full (AnyIP local routes).
    pub local_prefixes: Vec<IpNet>,
    pub reject: Vec<Reject>,
}

/// A veth pair between two nodes. Addresses are host addresses with the
/// subnet's prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: String,
    pub b: String,
    pub a_addrs: Vec<IpNet>,
    pub b_addrs: Vec<IpNet>,
}

impl Link {
    /// The addresses `node` has on this link.
    pub fn addrs_of(&self, node: &str) -> &[IpNet] {
        if self.a == node {
            &self.a_addrs
        } else {
            &self.b_addrs
        }
    }

    /// The node at the other end from `node`.
    pub fn peer_of(&self, node: &str) -> &str {
        if self.a == node {
            &self.b
        } else {
            &self.a
        }
    }

    /// True when `node` is one end of this link.
    pub fn touches(&self, node: &str) -> bool {
        self.a == node || self.b == node
    }
}

/// A static route on `node` toward `dst` through neighbour(s) `via`
/// (several: an ECMP group). In an event, an empty `via` deletes the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub node: String,
    pub dst: IpNet,
    pub via: Vec<String>,
}

/// A named run-time change of routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub description: String,
    /// Static route changes; in a BGP lab, the forwarding the BGP actions
    /// must produce (routes toward a BGP peer are not installed, they are
    /// what convergence is checked against).
    pub routes: Vec<Route>,
    /// BGP actions (announce, withdraw, prepend, session down or up).
    pub bgp: Vec<crate::bgp::Action>,
}

/// A lab prefix and the stand-in ASN that originates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnEntry {
    pub prefix: IpNet,
    pub asn: u32,
}

/// An organisation: sibling ASNs grouped under one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub asns: Vec<u32>,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The target network's prefixes in this lab.
    pub targets: Vec<IpNet>,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub routes: Vec<Route>,
    pub events: Vec<Event>,
    pub asns: Vec<AsnEntry>,
    pub orgs: Vec<Org>,
    /// BGP speakers, sessions, originations and policies (`[bgp]`); the
    /// lab runs BIRD only when asked (`Routing::Bgp`).
    pub bgp: Option<crate::bgp::Bgp>,
    /// Timed events (`[replay]`), for `tumen-lab replay`.
    pub replay: Option<crate::replay::Replay>,
    /// The TOML text the scenario was loaded from.
    pub source: String,
}

/// Everything wrong with a scenario, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// Where the scenario came from (file path or shipped name).
    pub origin: String,
    pub problems: Vec<String>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scenario {}: {} problem{}",
            self.origin,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- raw TOML

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default, rename = "node")]
    nodes: Vec<RawNode>,
    #[serde(default, rename = "link")]
    links: Vec<RawLink>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    #[serde(default, rename = "event")]
    events: Vec<RawEvent>,
    #[serde(default, rename = "asn")]
    asns: Vec<RawAsn>,
    #[serde(default, rename = "org")]
    orgs: Vec<RawOrg>,
    bgp: Option<crate::bgp::RawBgp>,
    replay: Option<crate::replay::RawReplay>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    role: Role,
    #[serde(default)]
    description: String,
    #[serde(default)]
    silent: bool,
    #[serde(default)]
    loss_percent: u8,
    #[serde(default)]
    icmp_ratelimit_ms: u32,
    #[serde(default)]
    local_prefixes: Vec<String>,
    #[serde(default)]
    reject: Vec<RawReject>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReject {
    dst: OneOrMany,
    #[serde(default)]
    proto: Proto,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    a: String,
    b: String,
    net: Option<String>,
    net6: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    node: String,
    dst: OneOrMany,
    #[serde(default)]
    via: OneOrMany,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    #[serde(default)]
    bgp: Vec<crate::bgp::RawAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsn {
    prefix: OneOrMany,
    asn: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    id: String,
    name: String,
    asns: Vec<u32>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
            OneOrMany::None => Vec::new(),
        }
    }
}

/// The nodes and links BGP validation checks sessions against.
struct TopologyView<'a> {
    nodes: &'a BTreeMap<String, Role>,
    links: &'a [Link],
}

impl crate::bgp::Topology for TopologyView<'_> {
    fn has_node(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }
    fn has_link(&self, a: &str, b: &str) -> bool {
        self.links.iter().any(|l| l.touches(a) && l.peer_of(a) == b)
    }
}

// ---------------------------------------------------------------- loading

impl Scenario {
    /// Loads a scenario from a file path, or a shipped scenario by name
    /// (`dprk-2017`) when no such file exists.
    pub fn load(path_or_name: &str) -> Result<Self, ScenarioError> {
        let path = Path::new(path_or_name);
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
                origin: path_or_name.to_string(),
                problems: vec![format!("cannot read the file: {e}")],
            })?;
            return Self::parse(&text, path_or_name);
        }
        match SHIPPED.iter().find(|(n, _)| *n == path_or_name) {
            Some((name, text)) => Self::parse(text, name),
            None => Err(ScenarioError {
                origin: path_or_name.to_string(),
                problems: vec![format!(
                    "no such file, and no shipped scenario of that name (shipped: {})",
                    SHIPPED.map(|(n, _)| n).join(", ")
                )],
            }),
        }
    }

    /// Parses and validates scenario TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError {
            origin: origin.to_string(),
            problems: vec![format!("invalid TOML: {}", e.to_string().trim_end())],
        })?;
        let mut v = Validator::default();
        let scenario = v.scenario(raw, text);
        if v.problems.is_empty() {
            Ok(scenario)
        } else {
            Err(ScenarioError {
                origin: origin.to_string(),
                problems: v.problems,
            })
        }
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The event called `name`.
    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name == name)
    }

    /// Names of the vantage points.
    pub fn vantage_points(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Vantage)
            .map(|n| n.name.as_str())
            .collect()
    }

    /// Links that touch `node`, in scenario order.
    pub fn links_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Link> + 'a {
        self.links.iter().filter(move |l| l.touches(node))
    }

    /// The link between two nodes.
    pub fn link_between(&self, x: &str, y: &str) -> Option<&Link> {
        self.links
            .iter()
            .find(|l| (l.a == x && l.b == y) || (l.a == y && l.b == x))
    }

    /// `node`'s address of the family of `like` on the link to `peer`.
    pub fn addr_on_link(&self, node: &str, peer: &str, v6: bool) -> Option<IpAddr> {
        self.link_between(node, peer)?
            .addrs_of(node)
            .iter()
            .find(|a| a.addr().is_ipv6() == v6)
            .map(|a| a.addr())
    }

    /// Every `(node, address)` pair of the lab.
    pub fn all_addrs(&self) -> Vec<(&str, IpNet)> {
        let mut out = Vec::new();
        for l in &self.links {
            out.extend(l.a_addrs.iter().map(|a| (l.a.as_str(), *a)));
            out.extend(l.b_addrs.iter().map(|a| (l.b.as_str(), *a)));
        }
        out
    }

    /// The lab ASN table in pyasn/IPASN `dat` format (`prefix<TAB>asn`), the
    /// format the collector's `--asn-table` reads.
    pub fn asn_table_dat(&self) -> String {
        let mut out = format!("; lab ASN table of scenario {}\n", self.name);
        for e in &self.asns {
            out.push_str(&format!("{}\t{}\n", e.prefix, e.asn));
        }
        out
    }

    /// The organisation an ASN belongs to in this scenario.
    pub fn org_of(&self, asn: u32) -> Option<&Org> {
        self.orgs.iter().find(|o| o.asns.contains(&asn))
    }

    /// Longest-prefix match of `addr` in the lab ASN table.
    pub fn asn_of(&self, addr: IpAddr) -> Option<u32> {
        self.asns
            .iter()
            .filter(|e| e.prefix.contains(&addr))
            .max_by_key(|e| e.prefix.prefix_len())
            .map(|e| e.asn)
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<String>,
}

impl Validator {
    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    /// Parses a lab prefix; `what` says where it came from.
    fn lab_net(&mut self, s: &str, what: &str) -> Option<IpNet> {
        let net = match IpNet::from_str(s) {
            Ok(n) => n,
            Err(_) => match IpAddr::from_str(s) {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    self.problem(format!(
                        "{what}: {s:?} is not an IP prefix (expected e.g. 198.18.176.0/24)"
                    ));
                    return None;
                }
            },
        };
        if !is_lab_net(&net) {
            self.problem(format!(
                "{what}: {s} is outside the lab ranges ({}); the lab never uses real Internet addresses",
                LAB_RANGES.join(", ")
            ));
            return None;
        }
        Some(net)
    }

    fn scenario(&mut self, raw: RawScenario, source: &str) -> Scenario {
        if raw.name.trim().is_empty() {
            self.problem("name: must not be empty".into());
        }
        let targets = raw
            .targets
            .iter()
            .filter_map(|t| self.lab_net(t, "targets"))
            .collect();

        let mut nodes = Vec::new();
        let mut names = BTreeSet::new();
        for rn in raw.nodes {
            if let Some(n) = self.node(rn) {
                if !names.insert(n.name.clone()) {
                    self.problem(format!("node {}: defined twice", n.name));
                }
                nodes.push(n);
            }
        }
        if nodes.is_empty() {
            self.problem("no [[node]] defined".into());
        }
        let roles: BTreeMap<String, Role> =
            nodes.iter().map(|n| (n.name.clone(), n.role)).collect();

        let links = self.links(raw.links, &roles);
        let routes: Vec<Route> = raw
            .routes
            .into_iter()
            .flat_map(|r| self.route(r, &roles, &links, "route", false))
            .collect();
        self.unique_routes(&routes, "route");

        let bgp = raw.bgp.map(|rb| {
            let topo = TopologyView {
                nodes: &roles,
                links: &links,
            };
            let mut problems = Vec::new();
            let b = crate::bgp::Bgp::from_raw(rb, &topo, &mut problems);
            for p in problems {
                self.problem(p);
            }
            b
        });

        let mut events = Vec::new();
        let mut event_names = BTreeSet::new();
        for re in raw.events {
            let ctx = format!("event {}", re.name);
            if !event_names.insert(re.name.clone()) {
                self.problem(format!("{ctx}: defined twice"));
            }
            if re.routes.is_empty() && re.bgp.is_empty() {
                self.problem(format!("{ctx}: changes no route"));
            }
            let mut actions = Vec::new();
            for ra in re.bgp {
                match &bgp {
                    Some(b) => {
                        let mut problems = Vec::new();
                        actions.push(b.action_from_raw(ra, &ctx, &mut problems));
                        for p in problems {
                            self.problem(p);
                        }
                    }
                    None => self.problem(format!(
                        "{ctx}: a bgp action, but the scenario has no [bgp]"
                    )),
                }
            }
            let routes: Vec<Route> = re
                .routes
                .into_iter()
                .flat_map(|r| self.route(r, &roles, &links, &ctx, true))
                .collect();
            self.unique_routes(&routes, &ctx);
            events.push(Event {
                name: re.name,
                description: re.description,
                routes,
                bgp: actions,
            });
        }

        let replay = raw.replay.map(|rr| {
            let mut problems = Vec::new();
            let names: BTreeSet<String> = events.iter().map(|e: &Event| e.name.clone()).collect();
            let r = rr.validate(&|e| names.contains(e), &mut problems);
            for p in problems {
                self.problem(p);
            }
            r
        });

        let mut asns = Vec::new();
        for ra in raw.asns {
            if ra.asn == 0 {
                self.problem("asn: AS0 is not an origin".into());
            }
            for p in ra.prefix.into_vec() {
                if let Some(prefix) = self.lab_net(&p, &format!("asn {}", ra.asn)) {
                    asns.push(AsnEntry {
                        prefix,
                        asn: ra.asn,
                    });
                }
            }
        }
        let mut orgs = Vec::new();
        let mut org_ids = BTreeSet::new();
        let mut org_asns = BTreeMap::new();
        for ro in raw.orgs {
            if !org_ids.insert(ro.id.clone()) {
                self.problem(format!("org {}: defined twice", ro.id));
            }
            for asn in &ro.asns {
                if let Some(prev) = org_asns.insert(*asn, ro.id.clone()) {
                    self.problem(format!(
                        "org {}: AS{asn} already belongs to org {prev}",
                        ro.id
                    ));
                }
            }
            orgs.push(Org {
                id: ro.id,
                name: ro.name,
                asns: ro.asns,
            });
        }

        Scenario {
            name: raw.name,
            description: raw.description,
            targets,
            nodes,
            links,
            routes,
            events,
            asns,
            orgs,
            bgp,
            replay,
            source: source.to_string(),
        }
    }

    fn node(&mut self, rn: RawNode) -> Option<Node> {
        let ctx = format!("node {}", rn.name);
        let valid_name = !rn.name.is_empty()
            && rn.name.len() <= MAX_NODE_NAME
            && rn
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !rn.name.starts_with('-');
        if !valid_name {
            self.problem(format!(
                "{ctx}: a node name is 1-{MAX_NODE_NAME} characters of a-z, 0-9 and '-' \
                 (it also names interfaces)"
            ));
            return None;
        }
        if rn.loss_percent > 100 {
            self.problem(format!(
                "{ctx}: loss_percent {} is over 100",
                rn.loss_percent
            ));
        }
        if rn.role != Role::Router && (rn.silent || rn.loss_percent > 0 || !rn.reject.is_empty()) {
            self.problem(format!(
                "{ctx}: silent, loss_percent and reject apply to forwarded packets: only a router has them"
            ));
        }
        if rn.role != Role::Host && !rn.local_prefixes.is_empty() {
            self.problem(format!("{ctx}: only a host has local_prefixes"));
        }
        let local_prefixes = rn
            .local_prefixes
            .iter()
            .filter_map(|p| self.lab_net(p, &format!("{ctx} local_prefixes")))
            .collect();
        let mut reject = Vec::new();
        for r in rn.reject {
            for d in r.dst.into_vec() {
                if let Some(dst) = self.lab_net(&d, &format!("{ctx} reject")) {
                    reject.push(Reject {
                        dst,
                        proto: r.proto,
                    });
                }
            }
        }
        Some(Node {
            name: rn.name,
            role: rn.role,
            description: rn.description,
            silent: rn.silent,
            loss_percent: rn.loss_percent,
            icmp_ratelimit_ms: rn.icmp_ratelimit_ms,
            local_prefixes,
            reject,
        })
    }

    /// Turns a link subnet into the addresses of its two ends.
    fn link_addrs(&mut self, s: &str, ctx: &str, want_v6: bool) -> Option<(IpNet, IpNet)> {
        let net = self.lab_net(s, ctx)?;
        if net.addr().is_ipv6() != want_v6 {
            let key = if want_v6 { "net6" } else { "net" };
            self.problem(format!("{ctx}: {key} = {s} is of the wrong address family"));
            return None;
        }
        if net.trunc() != net {
            self.problem(format!(
                "{ctx}: {s} is not a subnet address (did you mean {}?)",
                net.trunc()
            ));
            return None;
        }
        let max = net.max_prefix_len();
        let len = net.prefix_len();
        if len > max - 1 {
            self.problem(format!("{ctx}: {s} has room for fewer than two addresses"));
            return None;
        }
        // A /31 or /127 uses both addresses; larger subnets skip the
        // network address (and so never reach an IPv4 broadcast address).
        let skip = u128::from(len != max - 1);
        let nth = |i: u128| -> Option<IpNet> {
            let addr = match net.network() {
                IpAddr::V4(n) => IpAddr::V4((u32::from(n) + u32::try_from(i).ok()?).into()),
                IpAddr::V6(n) => IpAddr::V6((u128::from(n) + i).into()),
            };
            IpNet::new(addr, len).ok()
        };
        Some((nth(skip)?, nth(skip + 1)?))
    }

    fn links(&mut self, raw: Vec<RawLink>, roles: &BTreeMap<String, Role>) -> Vec<Link> {
        let mut links: Vec<Link> = Vec::new();
        let mut pairs = BTreeSet::new();
        let mut nets: Vec<(IpNet, String)> = Vec::new();
        for rl in raw {
            let ctx = format!("link {} -- {}", rl.a, rl.b);
            let mut ok = true;
            for end in [&rl.a, &rl.b] {
                if !roles.contains_key(end) {
                    self.problem(format!("{ctx}: no node named {end}"));
                    ok = false;
                }
            }
            if rl.a == rl.b {
                self.problem(format!("{ctx}: a link joins two different nodes"));
                ok = false;
            }
            let key = if rl.a < rl.b {
                (rl.a.clone(), rl.b.clone())
            } else {
                (rl.b.clone(), rl.a.clone())
            };
            if !pairs.insert(key) {
                self.problem(format!(
                    "{ctx}: a second link between the same nodes (routes name neighbours, so one link per pair)"
                ));
                ok = false;
            }
            if rl.net.is_none() && rl.net6.is_none() {
                self.problem(format!("{ctx}: needs net (IPv4) and/or net6 (IPv6)"));
                ok = false;
            }
            let mut a_addrs = Vec::new();
            let mut b_addrs = Vec::new();
            for (s, v6) in [(&rl.net, false), (&rl.net6, true)] {
                let Some(s) = s else { continue };
                match self.link_addrs(s, &ctx, v6) {
                    Some((a, b)) => {
                        let subnet = a.trunc();
                        if let Some((_, other)) = nets
                            .iter()
                            .find(|(n, _)| n.contains(&subnet) || subnet.contains(n))
                        {
                            self.problem(format!("{ctx}: {s} overlaps the subnet of {other}"));
                            ok = false;
                        }
                        nets.push((subnet, ctx.clone()));
                        a_addrs.push(a);
                        b_addrs.push(b);
                    }
                    None => ok = false,
                }
            }
            if ok {
                links.push(Link {
                    a: rl.a,
                    b: rl.b,
                    a_addrs,
                    b_addrs,
                });
            }
        }
        links
    }

    /// Validates one route; `default` expands to one route per address
    /// family the via neighbours share.
    fn route(
        &mut self,
        rr: RawRoute,
        roles: &BTreeMap<String, Role>,
        links: &[Link],
        ctx: &str,
        in_event: bool,
    ) -> Vec<Route> {
        let ctx = format!("{ctx} on {}", rr.node);
        if !roles.contains_key(&rr.node) {
            self.problem(format!("{ctx}: no node named {}", rr.node));
            return Vec::new();
        }
        let via = rr.via.into_vec();
        if via.is_empty() && !in_event {
            self.problem(format!(
                "{ctx}: needs via = neighbour name(s) (an empty via only deletes, in an event)"
            ));
            return Vec::new();
        }
        let mut neighbour_links = Vec::new();
        for v in &via {
            match links
                .iter()
                .find(|l| l.touches(&rr.node) && l.touches(v) && rr.node != *v)
            {
                Some(l) => neighbour_links.push((v, l)),
                None => {
                    self.problem(format!("{ctx}: via {v} is not a neighbour of {}", rr.node));
                    return Vec::new();
                }
            }
        }
        let has_family = |v6: bool| {
            neighbour_links.iter().all(|(v, l)| {
                l.addrs_of(v.as_str())
                    .iter()
                    .any(|a| a.addr().is_ipv6() == v6)
            })
        };
        let mut out = Vec::new();
        for d in rr.dst.into_vec() {
            let dsts: Vec<IpNet> = if d == "default" {
                let mut v = Vec::new();
                for (v6, all) in [(false, "0.0.0.0/0"), (true, "::/0")] {
                    if !via.is_empty() && has_family(v6) {
                        v.extend(IpNet::from_str(all).ok());
                    }
                }
                if v.is_empty() {
                    self.problem(format!(
                        "{ctx}: default: the via neighbours share no address family"
                    ));
                }
                v
            } else {
                match self.lab_net(&d, &ctx) {
                    Some(n) => {
                        if n.trunc() != n {
                            self.problem(format!(
                                "{ctx}: {d} has host bits set (did you mean {}?)",
                                n.trunc()
                            ));
                        } else if !via.is_empty() && !has_family(n.addr().is_ipv6()) {
                            self.problem(format!(
                                "{ctx}: {d}: a via neighbour has no address of that family on its link"
                            ));
                        }
                        vec![n]
                    }
                    None => Vec::new(),
                }
            };
            out.extend(dsts.into_iter().map(|dst| Route {
                node: rr.node.clone(),
                dst,
                via: via.clone(),
            }));
        }
        out
    }

    fn unique_routes(&mut self, routes: &[Route], ctx: &str) {
        let mut seen = BTreeSet::new();
        for r in routes {
            if !seen.insert((r.node.clone(), r.dst)) {
                self.problem(format!("{ctx}: two routes to {} on {}", r.dst, r.node));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
name = "mini"
[[node]]
name = "vp"
role = "vantage"
[[node]]
name = "r1"
role = "router"
[[node]]
name = "h"
role = "host"
local_prefixes = ["198.18.176.0/24"]
[[link]]
a = "vp"
b = "r1"
net = "192.0.2.0/30"
net6 = "2001:db8:1::/64"
[[link]]
a = "r1"
b = "h"
net = "192.0.2.4/31"
[[route]]
node = "vp"
dst = "default"
via = "r1"
[[route]]
node = "r1"
dst = "198.18.176.0/24"
via = "h"
[[route]]
node = "h"
dst = "default"
via = "r1"
"#;

    #[test]
    fn link_addresses_are_assigned_first_and_second() {
        let s = Scenario::parse(MINI, "mini").expect("valid");
        let l = &s.links[0];
        assert_eq!(l.a_addrs[0].to_string(), "192.0.2.1/30");
        assert_eq!(l.b_addrs[0].to_string(), "192.0.2.2/30");
        assert_eq!(l.a_addrs[1].to_string(), "2001:db8:1::1/64");
        assert_eq!(l.b_addrs[1].to_string(), "2001:db8:1::2/64");
        let p2p = &s.links[1];
        assert_eq!(p2p.a_addrs[0].to_string(), "192.0.2.4/31");
        assert_eq!(p2p.b_addrs[0].to_string(), "192.0.2.5/31");
    }

    #[test]
    fn default_expands_per_shared_family() {
        let s = Scenario::parse(MINI, "mini").expect("valid");
        let vp: Vec<String> = s
            .routes
            .iter()
            .filter(|r| r.node == "vp")
            .map(|r| r.dst.to_string())
            .collect();
        assert_eq!(vp, ["0.0.0.0/0", "::/0"]);
        // h's only link is IPv4: its default is IPv4 only.
        let h: Vec<String> = s
            .routes
            .iter()
            .filter(|r| r.node == "h")
            .map(|r| r.dst.to_string())
            .collect();
        assert_eq!(h, ["0.0.0.0/0"]);
    }

    #[test]
    fn addresses_outside_lab_ranges_are_rejected_everywhere() {
        let bad = MINI
            .replace("192.0.2.0/30", "10.0.0.0/30")
            .replace("198.18.176.0/24", "175.45.176.0/24")
            .replace("2001:db8:1::/64", "2001:470::/64");
        let err = Scenario::parse(&bad, "bad").expect_err("must be refused");
        let text = err.to_string();
        for needle in ["10.0.0.0/30", "175.45.176.0/24", "2001:470::/64"] {
            assert!(
                text.contains(&format!("{needle} is outside the lab ranges")),
                "missing {needle} in:\n{text}"
            );
        }
        assert!(text.starts_with("scenario bad: "), "{text}");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let bad = MINI
            .replace("via = \"h\"", "via = \"nobody\"")
            .replace(
                "name = \"r1\"\nrole = \"router\"",
                "name = \"r1\"\nrole = \"router\"\nloss_percent = 150",
            )
            .replace("net = \"192.0.2.4/31\"", "net = \"192.0.2.5/30\"");
        let err = Scenario::parse(&bad, "bad").expect_err("must be refused");
        let text = err.to_string();
        assert!(text.contains("loss_percent 150 is over 100"), "{text}");
        assert!(
            text.contains("not a subnet address (did you mean 192.0.2.4/30?)"),
            "{text}"
        );
        assert!(
            text.contains("via nobody is not a neighbour of r1"),
            "{text}"
        );
    }

    #[test]
    fn malformed_toml_and_unknown_keys_are_clear_errors() {
        let err = Scenario::parse("name = ", "x").expect_err("bad toml");
        assert!(err.to_string().contains("invalid TOML"), "{err}");
        let err = Scenario::parse(&format!("{MINI}\nbogus = 1\n"), "x").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
        let err =
            Scenario::parse(&MINI.replace("\"router\"", "\"switch\""), "x").expect_err("bad role");
        assert!(
            err.to_string().contains("unknown variant `switch`"),
            "{err}"
        );
    }

    #[test]
    fn behaviour_on_non_routers_and_bad_names_are_refused() {
        let bad = MINI
            .replace("role = \"vantage\"", "role = \"vantage\"\nsilent = true")
            .replace("name = \"h\"", "name = \"a-very-long-node-name\"");
        let err = Scenario::parse(&bad, "x").expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("only a router has them"), "{text}");
        assert!(text.contains("a node name is 1-15 characters"), "{text}");
    }

    #[test]
    fn every_shipped_scenario_is_valid() {
        for (name, _) in SHIPPED {
            let s = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.name, name);
            assert!(
                !s.vantage_points().is_empty(),
                "{name} has no vantage point"
            );
        }
    }

    #[test]
    fn the_readme_example_scenario_is_valid() {
        // The example of docs/lab.md, "Scenario files" (it was in the README).
        let readme = include_str!("../../docs/lab.md");
        let start = readme.find("```toml\n").expect("lab.md has a TOML example") + 8;
        let len = readme[start..].find("```").expect("closed");
        let s = Scenario::parse(&readme[start..start + len], "docs/lab.md example")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.node("r1").map(|n| n.reject.len()), Some(1));
    }

    #[test]
    fn lab_ranges_are_exactly_the_documentation_and_benchmark_ranges() {
        for ok in [
            "192.0.2.7",
            "198.51.100.1",
            "203.0.113.255",
            "198.19.255.1",
            "2001:db8:ffff::1",
        ] {
            assert!(is_lab_addr(ok.parse().expect("addr")), "{ok}");
        }
        for bad in [
            "175.45.176.15",
            "198.20.0.1",
            "10.0.0.1",
            "127.0.0.1",
            "2001:db9::1",
            "::1",
        ] {
            assert!(!is_lab_addr(bad.parse().expect("addr")), "{bad}");
        }
        assert!(!is_lab_net(&"198.18.0.0/14".parse().expect("net")));
    }

    #[test]
    fn bgp_sections_are_validated_with_every_problem_named() {
        let text = format!(
            "{MINI}\n{}",
            r#"
[bgp]
speaker = [{ node = "r1", asn = 64500 }, { node = "h", asn = 64501 }, { node = "ghost", asn = 1 }]
session = [{ a = "r1", b = "h", relation = "sideways" }]
"#
        );
        let err = Scenario::parse(&text, "bad").unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.contains("invalid TOML") && p.contains("sideways")),
            "{err}"
        );

        let text = format!(
            "{MINI}\n{}",
            r#"
[[event]]
name = "go"
bgp = [{ action = "announce", node = "r1", prefix = ["198.18.176.0/24"] }, { action = "flap", a = "r1", b = "h", times = 0 }]

[bgp]
speaker = [{ node = "r1", asn = 64500 }, { node = "h", asn = 64501 }, { node = "ghost", asn = 1 }]
session = [{ a = "r1", b = "h" }, { a = "vp", b = "r1", relation = "peer" }]
originate = [{ node = "r1", prefix = ["198.18.176.1/24"], to = ["vp"] }]
policy = [{ node = "r1", peer = "h", reject_as = 20485 }]
"#
        );
        let err = Scenario::parse(&text, "bad").unwrap_err();
        let all = err.to_string();
        for want in [
            "bgp speaker ghost: no such node",
            "bgp session r1 - h: eBGP needs a relation",
            "bgp session vp - r1: both ends must be bgp speakers",
            "198.18.176.1/24 has host bits set",
            "no session with vp",
            "reject_as needs reject_prefix",
            "flap needs times >= 1",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }

        let text = format!(
            "{MINI}\n{}",
            r#"
[[event]]
name = "go"
bgp = [{ action = "withdraw", node = "r1", prefix = ["198.18.176.0/24"] }]
"#
        );
        let err = Scenario::parse(&text, "bad").unwrap_err();
        assert!(
            err.to_string()
                .contains("event go: a bgp action, but the scenario has no [bgp]"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_dprk_2017_speaks_bgp_and_its_events_act_on_it() {
        let s = Scenario::load("dprk-2017").expect("shipped");
        let bgp = s.bgp.as_ref().expect("[bgp]");
        assert_eq!(bgp.speakers.len(), 8);
        assert_eq!(bgp.sessions.len(), 10);
        let ev = s.event("ttk-activation").expect("event");
        assert!(
            matches!(&ev.bgp[..], [crate::bgp::Action::Announce(o)] if o.node == "kp-gw" && o.to == ["ttk-khasan"] && o.prefixes.len() == 6)
        );
        // Every route a speaker has toward a peer is one BGP must produce;
        // the others (toward hosts) stay static.
        let model = crate::expect::Model::new(&s, &[]).expect("model");
        let from_bgp = model.bgp_routes();
        assert!(from_bgp
            .iter()
            .any(|(n, d, v)| n == "tr-fra" && d.to_string() == "198.18.176.0/22" && v == "cu-bj"));
        assert!(!from_bgp
            .iter()
            .any(|(n, _, v)| n == "kp-gw" && v == "kp-177"));
    }
}
