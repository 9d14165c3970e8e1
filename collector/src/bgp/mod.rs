//! The control plane: BGP routes toward the target from MRT archives
//! ([`mrt`], [`archive`]), routers' BMP feeds ([`bmp`]) and the RIPE RIS
//! Live stream ([`rislive`]), folded into one model ([`model`]): per
//! target prefix and BGP peer the AS path, the origin and the
//! control-plane upstream (the first AS outside the target walking from
//! the origin, named by the same organisation table `infer` uses),
//! visibility, events, and the divergence from the data plane.
//!
//! Every source hands [`Message`]s with a peer identity to one model;
//! nothing downstream knows which source a message came from except its
//! `source` label. Sources never panic on what they read: a record that
//! does not decode is counted ([`Message::Fault`]) and logged, and the
//! rest goes on.

pub mod archive;
pub mod bmp;
pub mod model;
pub mod mrt;
pub mod rislive;
pub mod timeline;

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

/// One element of an AS path: an AS of an `AS_SEQUENCE`, or an
/// `AS_SET` (aggregation: the order and the origin are unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Hop {
    As(u32),
    Set(Vec<u32>),
}

/// An AS path, the neighbour first and the origin last, with `AS_PATH`
/// and `AS4_PATH` already merged; confederation segments are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct AsPath(pub Vec<Hop>);

impl AsPath {
    /// A path of plain ASes (tests, RIS Live paths without sets).
    pub fn from_asns(asns: &[u32]) -> Self {
        Self(asns.iter().map(|&a| Hop::As(a)).collect())
    }

    /// The origin AS: the last AS of the path, `None` when the path is
    /// empty (a route of the peer's own AS) or ends in a set.
    pub fn origin(&self) -> Option<u32> {
        match self.0.last()? {
            Hop::As(a) => Some(*a),
            Hop::Set(_) => None,
        }
    }
}

/// As bgpdump writes paths: `3356 4837 131279`, sets as `{1,2}`.
impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, hop) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match hop {
                Hop::As(a) => write!(f, "{a}")?,
                Hop::Set(s) => {
                    f.write_str("{")?;
                    for (j, a) in s.iter().enumerate() {
                        if j > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{a}")?;
                    }
                    f.write_str("}")?;
                }
            }
        }
        Ok(())
    }
}

/// A BGP peer as one source sees it: the session of a route collector
/// (MRT, RIS Live) or a peer a router monitors over BMP. Two sources
/// that see the same neighbour are two peers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Peer {
    /// The source's label: `mrt`, `bmp`, `ris-live`.
    pub source: String,
    /// Which collector or router: `rrc00`, `route-views2`, a BMP
    /// router's address (or its sysName), the MRT file's collector.
    pub router: String,
    /// The peer's address and AS.
    pub addr: IpAddr,
    pub asn: u32,
}

impl Peer {
    /// The peer's name in labels and events: `rrc00 AS3356 192.0.2.1`.
    pub fn name(&self) -> String {
        format!("{} AS{} {}", self.router, self.asn, self.addr)
    }
}

/// A route's attributes that the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Route {
    pub path: AsPath,
    pub next_hop: Option<IpAddr>,
}

/// What a source saw happen to one prefix at one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Announce { route: Route },
    Withdraw,
}

/// One prefix's change at one peer, at `at_ms` (Unix milliseconds, the
/// time the source stamped: the MRT record's, the BMP per-peer header's,
/// RIS Live's `timestamp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Update {
    pub at_ms: u64,
    pub peer: Peer,
    pub prefix: IpNet,
    pub change: Change,
}

/// A RIB dump of one collector at one time: every route every listed
/// peer had. A listed peer without a route to a prefix has none (the
/// model withdraws what it held before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub source: String,
    pub router: String,
    pub at_ms: u64,
    pub peers: Vec<Peer>,
    /// (index into `peers`, prefix, route).
    pub routes: Vec<(usize, IpNet, Route)>,
}

/// What a source hands the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Update(Update),
    Snapshot(Snapshot),
    /// A BMP peer-up; a RIS Live peer first heard of.
    PeerUp {
        peer: Peer,
        at_ms: u64,
    },
    /// A BMP peer-down, or its router's connection lost: the peer's
    /// routes are gone.
    PeerDown {
        peer: Peer,
        at_ms: u64,
        reason: String,
    },
    /// A source connected (`up`) or lost its feed; `router` when one of
    /// several (a BMP router) changed.
    SourceState {
        source: String,
        router: Option<String>,
        up: bool,
        at_ms: u64,
    },
    /// A stretch of time the source may have missed updates in (RIS
    /// Live while disconnected): marked in the events, never filled in.
    Gap {
        source: String,
        from_ms: u64,
        to_ms: u64,
    },
    /// Something a source could not read (counted by source and kind,
    /// already logged by the source with the details).
    Fault {
        source: String,
        kind: &'static str,
    },
    /// Statistics a BMP router reported (counted).
    Stats {
        source: String,
        router: String,
    },
}

/// Where sources send what they see: the model's task, or a vector in
/// tests and the offline `bgp` command.
pub trait Sink {
    /// Hands one message on; `false` once nobody listens any more (the
    /// source should stop).
    fn send(&mut self, msg: Message) -> bool;
}

impl Sink for Vec<Message> {
    fn send(&mut self, msg: Message) -> bool {
        self.push(msg);
        true
    }
}

/// A sink into the model's task (async sources block on a full queue
/// rather than drop: the model is fast, and losing updates would make
/// routes stick).
impl Sink for tokio::sync::mpsc::Sender<Message> {
    fn send(&mut self, msg: Message) -> bool {
        self.blocking_send(msg).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prints_as_bgpdump_does() {
        let p = AsPath(vec![Hop::As(3356), Hop::As(4837), Hop::Set(vec![1, 2])]);
        assert_eq!(p.to_string(), "3356 4837 {1,2}");
        assert_eq!(p.origin(), None);
        assert_eq!(AsPath::from_asns(&[3356, 131279]).origin(), Some(131279));
        assert_eq!(AsPath::default().origin(), None);
    }
}
