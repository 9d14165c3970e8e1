//! The collector's common view of a traceroute, whatever it was read from
//! (Tumen JSON lines, Linux/macOS `traceroute` text, `mtr --json`, RIPE
//! Atlas JSON): what inference needs and nothing more.

use std::net::IpAddr;

/// One traceroute.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The destination: the header's, or for excerpts without a header
    /// the last responding hop's (DESIGN.md, `infer`).
    pub target: Option<IpAddr>,
    /// Where the trace came from, for messages: `file:line` or a label.
    pub origin: String,
    /// Hops in TTL order; a TTL that was not probed is absent.
    pub hops: Vec<Hop>,
}

/// What one TTL gave.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hop {
    pub ttl: u8,
    /// Distinct responding addresses in order of first appearance; empty
    /// when every probe went unanswered (`*`).
    pub addrs: Vec<IpAddr>,
    /// Unreachable annotations seen at this hop: `!X`, `!N`, `!H`, `!P`,
    /// `!<code>`.
    pub annotations: Vec<String>,
    /// Host names the tool printed for addresses of this hop (PTR names,
    /// `name (address)`, `name [address]`), first name per address.
    pub names: Vec<(IpAddr, String)>,
    /// AS numbers the tool printed for addresses of this hop
    /// (`traceroute -A` `[AS4837]`, mtr's `AS4837` column, NextTrace,
    /// scamper, ...): the trace's own annotation, used when the prefix
    /// tables have no answer. First per address.
    pub asns: Vec<(IpAddr, u32)>,
    /// Something answered at this hop but its address was not published:
    /// redacted by the author (`(internal network)`, `x.x.x.x`) or not
    /// printed by the tool. Such a hop is neither silent nor attributable.
    pub hidden: bool,
}

impl Hop {
    /// A hop nobody answered (yet).
    pub fn new(ttl: u8) -> Self {
        Self {
            ttl,
            ..Self::default()
        }
    }

    /// The host name printed for `addr`, if any.
    pub fn name_of(&self, addr: IpAddr) -> Option<&str> {
        self.names
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, n)| n.as_str())
    }

    /// The AS number the trace printed for `addr`, if any.
    pub fn asn_of(&self, addr: IpAddr) -> Option<u32> {
        self.asns.iter().find(|(a, _)| *a == addr).map(|(_, n)| *n)
    }
}

impl Trace {
    /// The target, or the last responding hop's address.
    pub fn effective_target(&self) -> Option<IpAddr> {
        self.target
            .or_else(|| self.hops.iter().rev().find_map(|h| h.addrs.last().copied()))
    }
}

/// A traceroute input that cannot be read; names the place and the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {what}")]
pub struct InputError {
    /// `file:line` (or `file:line:field` for JSON).
    pub origin: String,
    pub what: String,
}
