//! What a traceroute *should* show: the hop addresses a scenario implies.
//!
//! This is a small model of Linux forwarding as the lab configures it:
//! local addresses first, then longest-prefix match over connected subnets
//! and static routes; a router answers TTL expiry from the address of the
//! interface the probe came in on (the lab sets
//! `icmp_errors_use_inbound_ifaddr`), a silent router's answer is dropped,
//! a reject rule answers admin-prohibited (`!X`) one hop later, and no route
//! answers network-unreachable (`!N`). ECMP groups fork the path: every
//! branch is returned. The tests compare this model with what Linux
//! `traceroute` and `scamper` observe in the running lab, so a mistake in
//! either the scenario wiring or the model shows up as a test failure.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::scenario::{Proto, Role, Route, Scenario};

/// How an expected reply is marked in traceroute output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// Time exceeded or the destination's own answer: no mark.
    None,
    /// Administratively prohibited: `!X`.
    AdminProhibited,
    /// Network unreachable: `!N`.
    NetUnreachable,
    /// Host unreachable: `!H`.
    HostUnreachable,
}

impl Mark {
    /// The traceroute annotation (`!X`, ...), if any.
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            Mark::None => None,
            Mark::AdminProhibited => Some("!X"),
            Mark::NetUnreachable => Some("!N"),
            Mark::HostUnreachable => Some("!H"),
        }
    }
}

/// One TTL of an expected path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hop {
    /// No answer (`*`).
    Silent,
    /// An answer from `addr`.
    Reply { addr: IpAddr, mark: Mark },
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Silent => f.write_str("*"),
            Hop::Reply { addr, mark } => match mark.annotation() {
                Some(a) => write!(f, "{addr} {a}"),
                None => write!(f, "{addr}"),
            },
        }
    }
}

/// Formats a path as `a b * c !X` for messages.
pub fn format_path(path: &[Hop]) -> String {
    path.iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Why a path cannot be predicted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectError {
    #[error("no node named {0}")]
    NoNode(String),
    #[error("no event named {0}")]
    NoEvent(String),
    #[error("{node} has no route to {dst}")]
    NoRouteAtSource { node: String, dst: IpAddr },
    #[error("the path to {dst} passes {node}, which is a {role:?} and does not forward")]
    NotARouter {
        node: String,
        role: Role,
        dst: IpAddr,
    },
    #[error("the path to {0} loops or is longer than 64 hops")]
    Loop(IpAddr),
}

/// A scenario's routes after some events, and the questions tests ask.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    scenario: &'a Scenario,
    routes: Vec<Route>,
}

/// The next step of a lookup on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    Local,
    Via(Vec<String>),
    /// On a connected subnet, but no neighbour has the address.
    OnLinkNobody,
    NoRoute,
}

impl<'a> Model<'a> {
    /// The scenario's routes after applying `events` in order.
    pub fn new(scenario: &'a Scenario, events: &[&str]) -> Result<Self, ExpectError> {
        let mut routes = scenario.routes.clone();
        for name in events {
            let ev = scenario
                .event(name)
                .ok_or_else(|| ExpectError::NoEvent(name.to_string()))?;
            for change in &ev.routes {
                routes.retain(|r| !(r.node == change.node && r.dst == change.dst));
                if !change.via.is_empty() {
                    routes.push(change.clone());
                }
            }
        }
        Ok(Self { scenario, routes })
    }

    /// Routes of BGP speakers toward a BGP peer, with a destination more
    /// specific than a default route: in a BGP lab, what BGP must put in
    /// each kernel (`(node, dst, peer)`; one entry per next hop).
    pub fn bgp_routes(&self) -> Vec<(String, ipnet::IpNet, String)> {
        let Some(bgp) = self.scenario.bgp.as_ref() else {
            return Vec::new();
        };
        self.routes
            .iter()
            .filter(|r| r.dst.prefix_len() > 0)
            .flat_map(|r| {
                r.via
                    .iter()
                    .filter(|v| bgp.peers(&r.node, v))
                    .map(|v| (r.node.clone(), r.dst, v.clone()))
            })
            .collect()
    }

    /// The next hops of `node`'s route for exactly `dst`, if it has one.
    pub fn route_via(&self, node: &str, dst: IpNet) -> Option<&[String]> {
        self.routes
            .iter()
            .find(|r| r.node == node && r.dst == dst)
            .map(|r| r.via.as_slice())
    }

    /// The neighbours `node` forwards `dst` to (empty: delivered locally,
    /// on a link with nobody, or no route).
    pub fn next_hops(&self, node: &str, dst: IpAddr) -> Vec<String> {
        match self.lookup(node, dst) {
            Next::Via(v) => v,
            _ => Vec::new(),
        }
    }

    fn is_configured(&self, node: &str, dst: IpAddr) -> bool {
        self.scenario
            .links_of(node)
            .any(|l| l.addrs_of(node).iter().any(|a| a.addr() == dst))
    }

    fn is_local(&self, node: &str, dst: IpAddr) -> bool {
        self.is_configured(node, dst)
            || self
                .scenario
                .node(node)
                .is_some_and(|n| n.local_prefixes.iter().any(|p| p.contains(&dst)))
    }

    fn lookup(&self, node: &str, dst: IpAddr) -> Next {
        if self.is_local(node, dst) {
            return Next::Local;
        }
        // Longest match over connected subnets and static routes; a static
        // route cannot have the same prefix as a connected subnet (the
        // kernel refuses it), so ties do not arise.
        let mut best: Option<(u8, Next)> = None;
        let mut consider = |net: IpNet, next: Next| {
            if net.contains(&dst) && best.as_ref().is_none_or(|(len, _)| net.prefix_len() > *len) {
                best = Some((net.prefix_len(), next));
            }
        };
        for l in self.scenario.links_of(node) {
            let peer = l.peer_of(node);
            for a in l.addrs_of(node) {
                let next = if l.addrs_of(peer).iter().any(|p| p.addr() == dst) {
                    Next::Via(vec![peer.to_string()])
                } else {
                    Next::OnLinkNobody
                };
                consider(a.trunc(), next);
            }
        }
        for r in self.routes.iter().filter(|r| r.node == node) {
            consider(r.dst, Next::Via(r.via.clone()));
        }
        best.map(|(_, n)| n).unwrap_or(Next::NoRoute)
    }

    /// Every path a probe of `proto` from `from` toward `dst` can take (one
    /// per ECMP branch), as traceroute would show it.
    pub fn paths(
        &self,
        from: &str,
        dst: IpAddr,
        proto: Proto,
    ) -> Result<Vec<Vec<Hop>>, ExpectError> {
        if self.scenario.node(from).is_none() {
            return Err(ExpectError::NoNode(from.to_string()));
        }
        let first = match self.lookup(from, dst) {
            Next::Local => return Ok(vec![Vec::new()]),
            Next::Via(v) => v,
            Next::OnLinkNobody | Next::NoRoute => {
                return Err(ExpectError::NoRouteAtSource {
                    node: from.to_string(),
                    dst,
                })
            }
        };
        let mut done = BTreeSet::new();
        // (previous node, next node, hops so far)
        let mut todo: Vec<(String, String, Vec<Hop>)> = first
            .into_iter()
            .map(|n| (from.to_string(), n, Vec::new()))
            .collect();
        while let Some((prev, cur, mut hops)) = todo.pop() {
            if hops.len() >= 64 {
                return Err(ExpectError::Loop(dst));
            }
            let ingress = self
                .scenario
                .addr_on_link(&cur, &prev, dst.is_ipv6())
                .ok_or(ExpectError::Loop(dst))?;
            let node = self
                .scenario
                .node(&cur)
                .ok_or_else(|| ExpectError::NoNode(cur.clone()))?;
            if self.is_local(&cur, dst) {
                // IPv6 sources an ICMPv6 error (port unreachable, for UDP)
                // from a configured address: for a destination that is only
                // covered by an AnyIP local route, that is the address of
                // the interface the reply leaves by. IPv4 and echo replies
                // answer from the destination itself.
                let addr = if dst.is_ipv6() && proto == Proto::Udp && !self.is_configured(&cur, dst)
                {
                    ingress
                } else {
                    dst
                };
                hops.push(Hop::Reply {
                    addr,
                    mark: Mark::None,
                });
                done.insert(hops);
                continue;
            }
            if node.role != Role::Router {
                return Err(ExpectError::NotARouter {
                    node: cur,
                    role: node.role,
                    dst,
                });
            }
            hops.push(if node.silent {
                Hop::Silent
            } else {
                Hop::Reply {
                    addr: ingress,
                    mark: Mark::None,
                }
            });
            let rejected = node
                .reject
                .iter()
                .any(|r| r.dst.contains(&dst) && (r.proto == Proto::Any || r.proto == proto));
            let end = |mark| Hop::Reply {
                addr: ingress,
                mark,
            };
            if rejected {
                hops.push(end(Mark::AdminProhibited));
                done.insert(hops);
                continue;
            }
            match self.lookup(&cur, dst) {
                Next::Local => unreachable!("handled above"),
                Next::Via(nexts) => {
                    for n in nexts {
                        todo.push((cur.clone(), n, hops.clone()));
                    }
                }
                Next::OnLinkNobody => {
                    hops.push(end(Mark::HostUnreachable));
                    done.insert(hops);
                }
                Next::NoRoute => {
                    hops.push(end(Mark::NetUnreachable));
                    done.insert(hops);
                }
            }
        }
        Ok(done.into_iter().collect())
    }

    /// The single path from `from` to `dst`; an error names the branches
    /// when an ECMP group makes the path ambiguous.
    pub fn path(&self, from: &str, dst: IpAddr, proto: Proto) -> Result<Vec<Hop>, String> {
        let mut paths = self.paths(from, dst, proto).map_err(|e| e.to_string())?;
        if paths.len() == 1 {
            Ok(paths.remove(0))
        } else {
            Err(format!(
                "{} paths from {from} to {dst} (ECMP): {}",
                paths.len(),
                paths
                    .iter()
                    .map(|p| format_path(p))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Hop {
        Hop::Reply {
            addr: s.parse().expect("addr"),
            mark: Mark::None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn dprk_2017_paths_follow_the_ttk_activation() {
        let s = Scenario::load("dprk-2017").expect("shipped");
        let before = Model::new(&s, &[]).expect("model");
        let after = Model::new(&s, &["ttk-activation"]).expect("model");
        let dst = ip("198.18.177.1");
        let p = before.path("vp-fra", dst, Proto::Icmp).expect("one path");
        assert_eq!(p.last(), Some(&reply("198.18.177.1")));
        let asn_path: Vec<Option<u32>> = p
            .iter()
            .map(|h| match h {
                Hop::Reply { addr, .. } => s.asn_of(*addr),
                Hop::Silent => None,
            })
            .collect();
        assert!(asn_path.contains(&Some(4837)), "{asn_path:?}");
        assert!(!asn_path.contains(&Some(20485)), "{asn_path:?}");
        let p = after.path("vp-fra", dst, Proto::Icmp).expect("one path");
        let asns: Vec<_> = p
            .iter()
            .filter_map(|h| match h {
                Hop::Reply { addr, .. } => s.asn_of(*addr),
                Hop::Silent => None,
            })
            .collect();
        assert!(asns.contains(&20485) && !asns.contains(&4837), "{asns:?}");
    }

    #[test]
    fn reject_shows_the_border_twice_with_admin_prohibited() {
        let s = Scenario::load("dprk-2025").expect("shipped");
        let m = Model::new(&s, &[]).expect("model");
        let p = m
            .path("vp-nyc", ip("198.18.176.15"), Proto::Udp)
            .expect("one path");
        let n = p.len();
        assert!(n >= 3, "{}", format_path(&p));
        let Hop::Reply { addr, mark } = p[n - 1] else {
            panic!("last hop silent: {}", format_path(&p))
        };
        assert_eq!(mark, Mark::AdminProhibited);
        assert_eq!(
            p[n - 2],
            Hop::Reply {
                addr,
                mark: Mark::None
            }
        );
        // ICMP is not filtered: it enters, through a silent hop.
        let p = m
            .path("vp-nyc", ip("198.18.176.15"), Proto::Icmp)
            .expect("one path");
        assert!(p.contains(&Hop::Silent), "{}", format_path(&p));
        assert_eq!(p.last(), Some(&reply("198.18.176.15")));
    }

    #[test]
    fn ecmp_forks_and_path_refuses_to_choose() {
        let s = Scenario::load("ecmp-diamond").expect("shipped");
        let m = Model::new(&s, &[]).expect("model");
        let dst = s.targets[0].hosts().next().expect("host");
        let paths = m.paths("vp", dst, Proto::Udp).expect("paths");
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0].len(), paths[1].len());
        assert_ne!(paths[0][1], paths[1][1]);
        assert!(m.path("vp", dst, Proto::Udp).is_err());
    }

    #[test]
    fn ipv6_udp_to_an_anyip_address_is_answered_from_the_link_address() {
        let s = Scenario::load("ecmp-diamond").expect("shipped");
        let m = Model::new(&s, &[]).expect("model");
        let last = |dst: &str, proto| {
            m.paths("vp", ip(dst), proto).expect("paths")[0]
                .last()
                .copied()
                .expect("hops")
        };
        assert_eq!(last("2001:db8:10::f", Proto::Udp), reply("2001:db8:4::2"));
        assert_eq!(last("2001:db8:10::f", Proto::Icmp), reply("2001:db8:10::f"));
        assert_eq!(last("198.18.10.15", Proto::Udp), reply("198.18.10.15"));
    }

    #[test]
    fn unknown_event_and_node_are_errors() {
        let s = Scenario::load("ecmp-diamond").expect("shipped");
        assert_eq!(
            Model::new(&s, &["nope"]).err(),
            Some(ExpectError::NoEvent("nope".into()))
        );
        let m = Model::new(&s, &[]).expect("model");
        assert!(matches!(
            m.paths("ghost", ip("192.0.2.1"), Proto::Icmp),
            Err(ExpectError::NoNode(_))
        ));
    }
}
