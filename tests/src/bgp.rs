//! BGP in the lab: which nodes speak BGP (ASN), their sessions (over the
//! link between two nodes, with the business relation a real operator
//! would configure), what each originates and to whom, import and export
//! policies, and events as BGP actions. Pure: [`bird_config`] turns the
//! scenario and the BGP actions applied so far into one BIRD 2
//! configuration per speaker; [`crate::lab`] runs the daemons.
//!
//! Routing policy is Gao-Rexford, as on the real Internet: routes learned
//! from a customer go to everyone, routes learned from a peer or a provider
//! only to customers (each learned route is tagged with the relation it
//! came over, a large community of the documentation ASN 64496, stripped
//! on export to other ASes). On top, per session: local preference,
//! AS-path prepending, rejection by prefix and by AS in the path, and
//! no-export on originated prefixes (honoured by BIRD as RFC 1997 says).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

/// The large-community global administrator of the lab's relation tags
/// (a documentation ASN, RFC 5398).
pub const TAG_ASN: u32 = 64496;

/// What a session is to the node at its `a` end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Settlement-free peers: each sends the other its own and its
    /// customers' routes.
    Peer,
    /// `a` is `b`'s provider (transit): `a` sends `b` everything.
    Provider,
    /// `a` is `b`'s customer.
    Customer,
    /// The same AS (iBGP): everything, next hop self.
    Internal,
}

impl Relation {
    /// The same session seen from the other end.
    pub fn reverse(self) -> Self {
        match self {
            Relation::Provider => Relation::Customer,
            Relation::Customer => Relation::Provider,
            r => r,
        }
    }

    /// Tag value of routes learned over a session of this relation (seen
    /// from the receiving node: learned from a customer = 1).
    fn tag(self) -> u32 {
        match self {
            Relation::Customer => 1, // the peer is my customer
            Relation::Peer => 2,
            Relation::Provider => 3, // the peer is my provider
            Relation::Internal => 0,
        }
    }
}

/// A BGP speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speaker {
    pub node: String,
    pub asn: u32,
}

/// A session over the link between `a` and `b`; `relation` is what `b`
/// is to `a` (`provider`: b is a's provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub a: String,
    pub b: String,
    pub relation: Relation,
}

impl Session {
    /// The other end, and what it is to `node`.
    pub fn peer_of(&self, node: &str) -> Option<(&str, Relation)> {
        if self.a == node {
            Some((&self.b, self.relation))
        } else if self.b == node {
            Some((&self.a, self.relation.reverse()))
        } else {
            None
        }
    }
}

/// Prefixes a node announces, to some of its peers or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origination {
    pub node: String,
    pub prefixes: Vec<IpNet>,
    /// Peers that get them; empty: every peer.
    pub to: Vec<String>,
    /// Tagged NO_EXPORT: the receiving AS keeps them to itself.
    pub no_export: bool,
}

/// A session policy of `node` toward `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub node: String,
    pub peer: String,
    /// Local preference of routes learned from `peer` (default 100).
    pub local_pref: Option<u32>,
    /// Prepend our ASN this many extra times on routes sent to `peer`.
    pub prepend: u8,
    /// Refuse routes from `peer` for these prefixes (or more specific)...
    pub reject_prefixes: Vec<IpNet>,
    /// ... whose AS path contains this AS (any AS when unset).
    pub reject_as: Option<u32>,
}

/// A route collector (like a RIPE RIS RRC or a RouteViews collector):
/// GoBGP on `node`, peering with `peers` over their links, receiving their
/// full tables and announcing nothing; it writes MRT and exports BMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collector {
    pub node: String,
    pub asn: u32,
    pub peers: Vec<String>,
}

/// The BGP part of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bgp {
    pub speakers: Vec<Speaker>,
    pub sessions: Vec<Session>,
    pub originate: Vec<Origination>,
    pub policies: Vec<Policy>,
    pub collector: Option<Collector>,
}

/// An event's BGP action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Originate prefixes (to some peers, or all).
    Announce(Origination),
    /// Stop originating prefixes: to everyone, or (`to`) only the
    /// announcements made to those peers.
    Withdraw {
        node: String,
        prefixes: Vec<IpNet>,
        to: Vec<String>,
    },
    /// Prepend `count` extra times toward `peer` from now on.
    Prepend {
        node: String,
        peer: String,
        count: u8,
    },
    /// Administratively down (both directions) or up again.
    SessionDown {
        a: String,
        b: String,
    },
    SessionUp {
        a: String,
        b: String,
    },
    /// Take the session down and up again `times` times (about half a
    /// second each way), ending up; what the routers do meanwhile is BGP's.
    Flap {
        a: String,
        b: String,
        times: u8,
    },
}

// ---------------------------------------------------------------- raw TOML

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBgp {
    #[serde(default)]
    speaker: Vec<RawSpeaker>,
    #[serde(default)]
    session: Vec<RawSession>,
    #[serde(default)]
    originate: Vec<RawOriginate>,
    #[serde(default)]
    policy: Vec<RawPolicy>,
    collector: Option<RawCollector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    node: String,
    asn: u32,
    peers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpeaker {
    node: String,
    asn: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    a: String,
    b: String,
    /// What b is to a; `internal` when both have the same ASN.
    relation: Option<Relation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOriginate {
    node: String,
    prefix: Vec<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    no_export: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    node: String,
    peer: String,
    local_pref: Option<u32>,
    #[serde(default)]
    prepend: u8,
    #[serde(default)]
    reject_prefix: Vec<String>,
    reject_as: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "action", rename_all = "kebab-case")]
pub(crate) enum RawAction {
    Announce {
        node: String,
        prefix: Vec<String>,
        #[serde(default)]
        to: Vec<String>,
        #[serde(default)]
        no_export: bool,
    },
    Withdraw {
        node: String,
        prefix: Vec<String>,
        #[serde(default)]
        to: Vec<String>,
    },
    Prepend {
        node: String,
        peer: String,
        count: u8,
    },
    SessionDown {
        a: String,
        b: String,
    },
    SessionUp {
        a: String,
        b: String,
    },
    Flap {
        a: String,
        b: String,
        times: u8,
    },
}

/// What validation needs to know of the rest of the scenario.
pub(crate) trait Topology {
    fn has_node(&self, name: &str) -> bool;
    fn has_link(&self, a: &str, b: &str) -> bool;
}

fn prefixes(raw: &[String], ctx: &str, problems: &mut Vec<String>) -> Vec<IpNet> {
    raw.iter()
        .filter_map(|p| match p.parse::<IpNet>() {
            Ok(n) if n.trunc() == n => Some(n),
            Ok(n) => {
                problems.push(format!(
                    "{ctx}: {p} has host bits set (did you mean {}?)",
                    n.trunc()
                ));
                None
            }
            Err(e) => {
                problems.push(format!("{ctx}: {p:?} is not a prefix: {e}"));
                None
            }
        })
        .collect()
}

impl Bgp {
    pub(crate) fn from_raw(raw: RawBgp, topo: &dyn Topology, problems: &mut Vec<String>) -> Self {
        let mut bgp = Bgp::default();
        for s in raw.speaker {
            if !topo.has_node(&s.node) {
                problems.push(format!("bgp speaker {}: no such node", s.node));
            }
            if bgp.speakers.iter().any(|x| x.node == s.node) {
                problems.push(format!("bgp speaker {}: listed twice", s.node));
            }
            bgp.speakers.push(Speaker {
                node: s.node,
                asn: s.asn,
            });
        }
        for s in raw.session {
            let ctx = format!("bgp session {} - {}", s.a, s.b);
            let (asn_a, asn_b) = (bgp.asn_of(&s.a), bgp.asn_of(&s.b));
            if asn_a.is_none() || asn_b.is_none() {
                problems.push(format!("{ctx}: both ends must be bgp speakers"));
                continue;
            }
            if !topo.has_link(&s.a, &s.b) {
                problems.push(format!(
                    "{ctx}: no link between them (sessions run over a link)"
                ));
            }
            let same_as = asn_a == asn_b;
            let relation = match (s.relation, same_as) {
                (None, true) | (Some(Relation::Internal), true) => Relation::Internal,
                (Some(Relation::Internal), false) => {
                    problems.push(format!("{ctx}: internal, but the ASNs differ"));
                    Relation::Internal
                }
                (Some(_), true) => {
                    problems.push(format!(
                        "{ctx}: same ASN: the relation can only be internal"
                    ));
                    Relation::Internal
                }
                (Some(r), false) => r,
                (None, false) => {
                    problems.push(format!(
                        "{ctx}: eBGP needs a relation (peer, provider: b is a's provider, customer)"
                    ));
                    Relation::Peer
                }
            };
            if bgp.session(&s.a, &s.b).is_some() {
                problems.push(format!("{ctx}: listed twice"));
            }
            bgp.sessions.push(Session {
                a: s.a,
                b: s.b,
                relation,
            });
        }
        for o in raw.originate {
            let ctx = format!("bgp originate on {}", o.node);
            let prefixes = prefixes(&o.prefix, &ctx, problems);
            bgp.check_origination(&o.node, &o.to, &ctx, problems);
            bgp.originate.push(Origination {
                node: o.node,
                prefixes,
                to: o.to,
                no_export: o.no_export,
            });
        }
        for p in raw.policy {
            let ctx = format!("bgp policy of {} toward {}", p.node, p.peer);
            if bgp.session(&p.node, &p.peer).is_none() {
                problems.push(format!("{ctx}: no such session"));
            }
            let reject_prefixes = prefixes(&p.reject_prefix, &ctx, problems);
            if p.reject_as.is_some() && reject_prefixes.is_empty() {
                problems.push(format!(
                    "{ctx}: reject_as needs reject_prefix (which routes)"
                ));
            }
            bgp.policies.push(Policy {
                node: p.node,
                peer: p.peer,
                local_pref: p.local_pref,
                prepend: p.prepend,
                reject_prefixes,
                reject_as: p.reject_as,
            });
        }
        if let Some(c) = raw.collector {
            let ctx = format!("bgp collector {}", c.node);
            if !topo.has_node(&c.node) {
                problems.push(format!("{ctx}: no such node"));
            }
            if bgp.asn_of(&c.node).is_some() {
                problems.push(format!("{ctx}: a collector is not also a speaker"));
            }
            if c.peers.is_empty() {
                problems.push(format!("{ctx}: peers no router"));
            }
            for p in &c.peers {
                if bgp.asn_of(p).is_none() {
                    problems.push(format!("{ctx}: peer {p} is not a bgp speaker"));
                } else if !topo.has_link(&c.node, p) {
                    problems.push(format!("{ctx}: no link to its peer {p}"));
                }
            }
            bgp.collector = Some(Collector {
                node: c.node,
                asn: c.asn,
                peers: c.peers,
            });
        }
        bgp
    }

    /// Whether `peer` is the collector and `node` one of its peers.
    pub fn feeds_collector(&self, node: &str, peer: &str) -> bool {
        self.collector
            .as_ref()
            .is_some_and(|c| c.node == peer && c.peers.iter().any(|p| p == node))
    }

    fn check_origination(&self, node: &str, to: &[String], ctx: &str, problems: &mut Vec<String>) {
        if self.asn_of(node).is_none() {
            problems.push(format!("{ctx}: {node} is not a bgp speaker"));
        }
        for peer in to {
            if self.session(node, peer).is_none() {
                problems.push(format!("{ctx}: no session with {peer}"));
            }
        }
    }

    pub(crate) fn action_from_raw(
        &self,
        raw: RawAction,
        ctx: &str,
        problems: &mut Vec<String>,
    ) -> Action {
        match raw {
            RawAction::Announce {
                node,
                prefix,
                to,
                no_export,
            } => {
                let prefixes = prefixes(&prefix, ctx, problems);
                self.check_origination(&node, &to, ctx, problems);
                Action::Announce(Origination {
                    node,
                    prefixes,
                    to,
                    no_export,
                })
            }
            RawAction::Withdraw { node, prefix, to } => {
                let prefixes = prefixes(&prefix, ctx, problems);
                self.check_origination(&node, &to, ctx, problems);
                Action::Withdraw { node, prefixes, to }
            }
            RawAction::Prepend { node, peer, count } => {
                if self.session(&node, &peer).is_none() {
                    problems.push(format!("{ctx}: no session {node} - {peer}"));
                }
                Action::Prepend { node, peer, count }
            }
            RawAction::SessionDown { a, b } => {
                if self.session(&a, &b).is_none() {
                    problems.push(format!("{ctx}: no session {a} - {b}"));
                }
                Action::SessionDown { a, b }
            }
            RawAction::SessionUp { a, b } => {
                if self.session(&a, &b).is_none() {
                    problems.push(format!("{ctx}: no session {a} - {b}"));
                }
                Action::SessionUp { a, b }
            }
            RawAction::Flap { a, b, times } => {
                if self.session(&a, &b).is_none() {
                    problems.push(format!("{ctx}: no session {a} - {b}"));
                }
                if times == 0 {
                    problems.push(format!("{ctx}: flap needs times >= 1"));
                }
                Action::Flap { a, b, times }
            }
        }
    }

    /// The ASN of a speaker.
    pub fn asn_of(&self, node: &str) -> Option<u32> {
        self.speakers.iter().find(|s| s.node == node).map(|s| s.asn)
    }

    /// The session between two nodes, either way round.
    pub fn session(&self, x: &str, y: &str) -> Option<&Session> {
        self.sessions
            .iter()
            .find(|s| (s.a == x && s.b == y) || (s.a == y && s.b == x))
    }

    /// Whether `node` has a session with `peer` (routes toward it come
    /// from BGP, not from the static table).
    pub fn peers(&self, node: &str, peer: &str) -> bool {
        self.session(node, peer).is_some()
    }
}

/// The BGP state after the actions applied so far.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub originate: Vec<Origination>,
    pub prepends: Vec<(String, String, u8)>,
    pub down: BTreeSet<(String, String)>,
}

impl State {
    pub fn new(bgp: &Bgp) -> Self {
        State {
            originate: bgp.originate.clone(),
            prepends: Vec::new(),
            down: BTreeSet::new(),
        }
    }

    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::Announce(o) => self.originate.push(o.clone()),
            Action::Withdraw { node, prefixes, to } => {
                let targeted = |o: &Origination| {
                    to.is_empty() || (!o.to.is_empty() && o.to.iter().all(|t| to.contains(t)))
                };
                for o in self
                    .originate
                    .iter_mut()
                    .filter(|o| o.node == *node && targeted(o))
                {
                    o.prefixes.retain(|p| !prefixes.contains(p));
                }
                self.originate.retain(|o| !o.prefixes.is_empty());
            }
            Action::Prepend { node, peer, count } => {
                self.prepends.retain(|(n, p, _)| !(n == node && p == peer));
                self.prepends.push((node.clone(), peer.clone(), *count));
            }
            Action::SessionDown { a, b } => {
                self.down.insert(ordered(a, b));
            }
            Action::SessionUp { a, b } => {
                self.down.remove(&ordered(a, b));
            }
            // Played by the lab (birdc disable/enable); the state after a
            // flap is the state before it.
            Action::Flap { .. } => {}
        }
    }

    fn is_down(&self, a: &str, b: &str) -> bool {
        self.down.contains(&ordered(a, b))
    }
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// BIRD protocol name of the session toward `peer` for a family.
pub fn protocol_name(peer: &str, v6: bool) -> String {
    let clean: String = peer
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("p_{clean}_{}", if v6 { 6 } else { 4 })
}

fn set_of(prefixes: &[&IpNet], more_specifics: bool) -> String {
    let items: Vec<String> = prefixes
        .iter()
        .map(|p| {
            if more_specifics {
                format!("{p}+")
            } else {
                p.to_string()
            }
        })
        .collect();
    format!("[ {} ]", items.join(", "))
}

/// One side of a session as BIRD needs it.
#[derive(Debug)]
pub struct Neighbour<'a> {
    pub peer: &'a str,
    /// The route collector: gets every route we use, sends nothing.
    pub collector: bool,
    pub relation: Relation,
    pub peer_asn: u32,
    pub local4: Option<IpAddr>,
    pub remote4: Option<IpAddr>,
    pub local6: Option<IpAddr>,
    pub remote6: Option<IpAddr>,
}

/// The BIRD 2 configuration of speaker `node` (ASN `asn`, router id
/// `router_id`) with its `neighbours`, in BGP `state`.
pub fn bird_config(
    bgp: &Bgp,
    state: &State,
    node: &str,
    asn: u32,
    router_id: IpAddr,
    neighbours: &[Neighbour<'_>],
) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# BIRD 2 configuration of lab node {node} (AS{asn}), generated by tumen-lab"
    );
    let _ = writeln!(c, "router id {router_id};");
    c.push_str(
        "protocol device { scan time 60; }\n\
         # BGP routes into the kernel, so forwarding (and every traceroute) follows BGP.\n\
         protocol kernel k4 { ipv4 { import none; export where source = RTS_BGP; }; }\n\
         protocol kernel k6 { ipv6 { import none; export where source = RTS_BGP; }; }\n",
    );
    for v6 in [false, true] {
        let mine: Vec<(&IpNet, &Origination)> = state
            .originate
            .iter()
            .filter(|o| o.node == node)
            .flat_map(|o| o.prefixes.iter().map(move |p| (p, o)))
            .filter(|(p, _)| p.addr().is_ipv6() == v6)
            .collect();
        let fam = if v6 { "ipv6" } else { "ipv4" };
        let _ = writeln!(c, "protocol static o{} {{ {fam};", if v6 { 6 } else { 4 });
        let mut seen = BTreeSet::new();
        for (p, _) in &mine {
            if seen.insert(**p) {
                let _ = writeln!(c, "  route {p} unreachable;");
            }
        }
        c.push_str("}\n");
        for n in neighbours {
            let (local, remote) = if v6 {
                (n.local6, n.remote6)
            } else {
                (n.local4, n.remote4)
            };
            let (Some(local), Some(remote)) = (local, remote) else {
                continue;
            };
            let name = protocol_name(n.peer, v6);
            // What this peer may get of what we originate.
            let for_peer: Vec<&(&IpNet, &Origination)> = mine
                .iter()
                .filter(|(_, o)| o.to.is_empty() || o.to.iter().any(|t| t == n.peer))
                .collect();
            let to_peer: Vec<&IpNet> = for_peer.iter().map(|(p, _)| *p).collect();
            // NO_EXPORT toward this peer, unless also announced plainly to it.
            let no_export: Vec<&IpNet> = for_peer
                .iter()
                .filter(|(p, o)| {
                    o.no_export && !for_peer.iter().any(|(q, r)| q == p && !r.no_export)
                })
                .map(|(p, _)| *p)
                .collect();
            let prepend = state
                .prepends
                .iter()
                .find(|(nd, p, _)| nd == node && p == n.peer)
                .map(|(_, _, c)| *c)
                .or_else(|| {
                    bgp.policies
                        .iter()
                        .find(|p| p.node == node && p.peer == n.peer)
                        .map(|p| p.prepend)
                })
                .unwrap_or(0);
            let policy = bgp
                .policies
                .iter()
                .find(|p| p.node == node && p.peer == n.peer);
            let ebgp = n.relation != Relation::Internal;
            if n.collector {
                let _ = writeln!(
                    c,
                    "filter {name}_out {{\n  if source = RTS_STATIC then reject;\n  bgp_large_community.delete([({TAG_ASN}, *, *)]);\n  accept;\n}}\nprotocol bgp {name} {{\n  description \"{peer} (route collector)\";\n  local {local} as {asn};\n  neighbor {remote} as {pasn};\n  direct;\n  hold time 9; keepalive time 3; connect delay time 0; connect retry time 1; error wait time 1, 4;\n  {fam} {{ import none; export filter {name}_out;{nh} }};\n}}",
                    peer = n.peer,
                    pasn = n.peer_asn,
                    nh = if v6 { " next hop prefer global;" } else { "" },
                );
                continue;
            }
            // import
            let _ = writeln!(c, "filter {name}_in {{");
            if let Some(p) = policy {
                let rejects: Vec<&IpNet> = p
                    .reject_prefixes
                    .iter()
                    .filter(|x| x.addr().is_ipv6() == v6)
                    .collect();
                if !rejects.is_empty() {
                    match p.reject_as {
                        Some(a) => {
                            let _ = writeln!(
                                c,
                                "  if net ~ {} && bgp_path ~ [= * {a} * =] then reject;",
                                set_of(&rejects, true)
                            );
                        }
                        None => {
                            let _ =
                                writeln!(c, "  if net ~ {} then reject;", set_of(&rejects, true));
                        }
                    }
                }
                if let Some(lp) = p.local_pref {
                    let _ = writeln!(c, "  bgp_local_pref = {lp};");
                }
            }
            if ebgp {
                let _ = writeln!(
                    c,
                    "  bgp_large_community.delete([({TAG_ASN}, *, *)]);\n  bgp_large_community.add(({TAG_ASN}, 0, {}));",
                    n.relation.tag()
                );
            }
            c.push_str("  accept;\n}\n");
            // export
            let _ = writeln!(c, "filter {name}_out {{");
            if to_peer.is_empty() {
                c.push_str("  if source = RTS_STATIC then reject;\n");
            } else {
                let _ = writeln!(
                    c,
                    "  if source = RTS_STATIC && !(net ~ {}) then reject;",
                    set_of(&to_peer, false)
                );
                if !no_export.is_empty() {
                    let _ = writeln!(
                        c,
                        "  if source = RTS_STATIC && net ~ {} then bgp_community.add((65535, 65281));",
                        set_of(&no_export, false)
                    );
                }
            }
            if matches!(n.relation, Relation::Peer | Relation::Provider) {
                // Only our own and our customers' routes go to peers and providers.
                let _ = writeln!(
                    c,
                    "  if source = RTS_BGP && !(({TAG_ASN}, 0, 1) ~ bgp_large_community) then reject;"
                );
            }
            if ebgp {
                let _ = writeln!(c, "  bgp_large_community.delete([({TAG_ASN}, *, *)]);");
                for _ in 0..prepend {
                    let _ = writeln!(c, "  bgp_path.prepend({asn});");
                }
            }
            c.push_str("  accept;\n}\n");
            let disabled = if state.is_down(node, n.peer) {
                "  disabled yes;\n"
            } else {
                ""
            };
            let _ = writeln!(
                c,
                "protocol bgp {name} {{\n  description \"{peer} ({rel:?})\";\n  local {local} as {asn};\n  neighbor {remote} as {pasn};\n  direct;\n{disabled}  hold time 3; keepalive time 1; connect delay time 0; connect retry time 1; error wait time 1, 4;\n  {fam} {{ import filter {name}_in; export filter {name}_out;{nh} }};\n}}",
                peer = n.peer,
                rel = n.relation,
                pasn = n.peer_asn,
                nh = if ebgp {
                    if v6 { " next hop prefer global;" } else { "" }
                } else if v6 {
                    " next hop self; next hop prefer global;"
                } else {
                    " next hop self;"
                },
            );
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Topo;
    impl Topology for Topo {
        fn has_node(&self, n: &str) -> bool {
            ["a", "b", "c"].contains(&n)
        }
        fn has_link(&self, x: &str, y: &str) -> bool {
            (x, y) != ("a", "c") && (x, y) != ("c", "a")
        }
    }

    fn parse(text: &str) -> (Bgp, Vec<String>) {
        let raw: RawBgp = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let b = Bgp::from_raw(raw, &Topo, &mut problems);
        (b, problems)
    }

    #[test]
    fn sessions_need_speakers_a_link_and_a_relation_for_ebgp() {
        let (_, p) = parse(
            r#"
speaker = [{ node = "a", asn = 1 }, { node = "b", asn = 2 }, { node = "c", asn = 2 }]
session = [{ a = "a", b = "b" }, { a = "a", b = "c", relation = "peer" }, { a = "b", b = "c", relation = "peer" }, { a = "a", b = "x", relation = "peer" }]
"#,
        );
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p[0].contains("eBGP needs a relation"), "{p:#?}");
        assert!(p[1].contains("no link"), "{p:#?}");
        assert!(p[2].contains("same ASN"), "{p:#?}");
        assert!(p[3].contains("both ends must be bgp speakers"), "{p:#?}");
    }

    #[test]
    fn the_config_encodes_gao_rexford_policies_and_originations() {
        let (bgp, p) = parse(
            r#"
speaker = [{ node = "a", asn = 64500 }, { node = "b", asn = 64501 }]
session = [{ a = "a", b = "b", relation = "provider" }]
originate = [{ node = "a", prefix = ["198.18.176.0/22", "2001:db8:176::/47"], to = ["b"] }]
policy = [{ node = "a", peer = "b", local_pref = 200, prepend = 2, reject_prefix = ["198.18.176.0/22"], reject_as = 20485 }]
"#,
        );
        assert!(p.is_empty(), "{p:#?}");
        let n = Neighbour {
            collector: false,
            peer: "b",
            relation: Relation::Provider,
            peer_asn: 64501,
            local4: Some("192.0.2.1".parse().unwrap()),
            remote4: Some("192.0.2.2".parse().unwrap()),
            local6: Some("2001:db8::1".parse().unwrap()),
            remote6: Some("2001:db8::2".parse().unwrap()),
        };
        let c = bird_config(
            &bgp,
            &State::new(&bgp),
            "a",
            64500,
            "192.0.2.1".parse().unwrap(),
            &[n],
        );
        assert!(c.contains("router id 192.0.2.1;"), "{c}");
        assert!(c.contains("route 198.18.176.0/22 unreachable;"), "{c}");
        assert!(c.contains("route 2001:db8:176::/47 unreachable;"), "{c}");
        assert!(
            c.contains("if net ~ [ 198.18.176.0/22+ ] && bgp_path ~ [= * 20485 * =] then reject;"),
            "{c}"
        );
        assert!(c.contains("bgp_local_pref = 200;"), "{c}");
        assert_eq!(
            c.matches("bgp_path.prepend(64500);").count(),
            4,
            "2 per family: {c}"
        );
        assert!(
            c.contains("(64496, 0, 1) ~ bgp_large_community) then reject;"),
            "to a provider only customer routes: {c}"
        );
        assert!(
            c.contains("local 192.0.2.1 as 64500;\n  neighbor 192.0.2.2 as 64501;"),
            "{c}"
        );
        assert!(c.contains("protocol bgp p_b_6"), "{c}");
        assert!(!c.contains("disabled yes"), "{c}");
    }

    #[test]
    fn actions_change_what_is_announced_and_which_sessions_run() {
        let (bgp, _) = parse(
            r#"
speaker = [{ node = "a", asn = 64500 }, { node = "b", asn = 64501 }]
session = [{ a = "a", b = "b", relation = "peer" }]
originate = [{ node = "a", prefix = ["198.18.176.0/22"] }]
"#,
        );
        let mut s = State::new(&bgp);
        s.apply(&Action::Announce(Origination {
            node: "a".into(),
            prefixes: vec!["198.18.177.0/24".parse().unwrap()],
            to: vec!["b".into()],
            no_export: false,
        }));
        s.apply(&Action::SessionDown {
            a: "b".into(),
            b: "a".into(),
        });
        let n = Neighbour {
            collector: false,
            peer: "b",
            relation: Relation::Peer,
            peer_asn: 64501,
            local4: Some("192.0.2.1".parse().unwrap()),
            remote4: Some("192.0.2.2".parse().unwrap()),
            local6: None,
            remote6: None,
        };
        let c = bird_config(&bgp, &s, "a", 64500, "192.0.2.1".parse().unwrap(), &[n]);
        assert!(c.contains("route 198.18.177.0/24 unreachable;"), "{c}");
        assert!(c.contains("disabled yes;"), "{c}");
        assert!(
            !c.contains("protocol bgp p_b_6"),
            "no v6 addresses, no v6 session: {c}"
        );
        s.apply(&Action::Withdraw {
            node: "a".into(),
            prefixes: vec!["198.18.176.0/22".parse().unwrap()],
            to: vec!["b".into()],
        });
        assert_eq!(
            s.originate.len(),
            2,
            "only what was announced to b (none of the /22) goes"
        );
        s.apply(&Action::Withdraw {
            node: "a".into(),
            prefixes: vec!["198.18.177.0/24".parse().unwrap()],
            to: vec!["b".into()],
        });
        s.apply(&Action::SessionUp {
            a: "a".into(),
            b: "b".into(),
        });
        let n = Neighbour {
            collector: false,
            peer: "b",
            relation: Relation::Peer,
            peer_asn: 64501,
            local4: Some("192.0.2.1".parse().unwrap()),
            remote4: Some("192.0.2.2".parse().unwrap()),
            local6: None,
            remote6: None,
        };
        let c = bird_config(&bgp, &s, "a", 64500, "192.0.2.1".parse().unwrap(), &[n]);
        assert!(!c.contains("198.18.177.0/24"), "{c}");
        assert!(c.contains("route 198.18.176.0/22 unreachable;"), "{c}");
        assert!(!c.contains("disabled yes"), "{c}");
    }
}
