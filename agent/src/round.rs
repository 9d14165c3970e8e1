//! Rounds: which destinations to trace, and how much of each path.
//!
//! Targets are prefixes; each /24 (IPv4) or /48 (IPv6) of a target is a
//! *unit*, and `hosts` addresses of it are traced (the first N after the
//! network address, or all of them). What the monitor wants from a unit
//! is its border: the last hop outside the target network before the first
//! hop inside it (or, when the border filters, the last hop that answers).
//!
//! Border windows: the first trace toward a unit is a full trace. Its
//! border hop (TTL *b*, address set *B*) and the hop before it (*A*) are
//! remembered. Later traces toward that unit start at TTL *b - 1*: a
//! window of two known hops, then on to the destination or the gap limit.
//! If the window shows a different hop at *b - 1* or *b* (or nothing at
//! either, or the target begins earlier), the path changed: a full trace
//! of that destination follows at once, in the same round, and replaces
//! what is known. Every unit also gets a full trace every `full_every`
//! rounds. Within one round, when a unit has several destinations, one
//! leads with a full trace and the others follow with windows. On a path
//! of 13 hops whose border is hop 11, a window costs 4 probes instead of
//! 13; a round over the 1024 addresses of four /24s costs about a third of
//! a naive tracer's probes, so at equal pps it also takes a third of the
//! time.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::UNIX_EPOCH;

use ipnet::IpNet;
use tumen_wire::{PingRecord, Record, StopReason, TraceMode, TraceRecord, SCHEMA_VERSION};

use crate::config::{Hosts, ProbeConfig};
use crate::engine::{run, Gate, Ident, Job, JobResult, Network, Stats};
use crate::ping::{PingSummary, Pingers};

/// One destination and the unit (/24 or /48) it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    pub addr: IpAddr,
    pub unit: IpNet,
}

/// The unit an address belongs to (`tumen_core::unit_of`).
pub use tumen_core::unit_of;

/// Most units a target list may expand to (a /8 is 65,536 units).
pub const MAX_UNITS: usize = 1 << 17;
/// Most addresses traced per IPv6 unit with `hosts = all`.
const V6_ALL: u16 = 256;

/// Targets that expand to more units than a round should hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "targets expand to more than {MAX_UNITS} /24 or /48 units ({target} alone is {units}); \
     list the prefixes that matter"
)]
pub struct TooManyUnits {
    pub target: IpNet,
    pub units: usize,
}

/// Expands targets into destinations, in order, without duplicates.
pub fn destinations(targets: &[IpNet], hosts: Hosts) -> Result<Vec<Destination>, TooManyUnits> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut units = 0usize;
    for t in targets {
        let unit_len = if t.addr().is_ipv4() { 24 } else { 48 };
        let subnets: Vec<IpNet> = if t.prefix_len() >= unit_len {
            vec![*t]
        } else {
            let n = 1usize
                .checked_shl(u32::from(unit_len - t.prefix_len()))
                .unwrap_or(usize::MAX);
            units = units.saturating_add(n);
            if units > MAX_UNITS {
                return Err(TooManyUnits {
                    target: *t,
                    units: n,
                });
            }
            t.subnets(unit_len).map(|s| s.collect()).unwrap_or_default()
        };
        for s in subnets {
            for addr in hosts_of(s, hosts) {
                if seen.insert(addr) {
                    out.push(Destination {
                        addr,
                        unit: unit_of(addr),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The addresses of `net` to trace.
fn hosts_of(net: IpNet, hosts: Hosts) -> Vec<IpAddr> {
    let host_bits = net.max_prefix_len() - net.prefix_len();
    if host_bits == 0 {
        return vec![net.addr()];
    }
    let size: u128 = 1u128 << host_bits.min(127);
    let (first, count) = match hosts {
        Hosts::All if net.addr().is_ipv4() => (0u128, size),
        Hosts::All => (0, u128::from(V6_ALL).min(size)),
        Hosts::Count(n) => (1, u128::from(n).min(size.saturating_sub(1).max(1))),
    };
    (first..first + count)
        .map(|i| match net {
            IpNet::V4(n) => IpAddr::V4(std::net::Ipv4Addr::from(
                u32::try_from(u128::from(u32::from(n.network())) + i).unwrap_or(u32::MAX),
            )),
            IpNet::V6(n) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(n.network()) + i)),
        })
        .collect()
}

/// What is known of a unit's border.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Border {
    /// TTL of the border hop.
    pub ttl: u8,
    /// Addresses seen at the border hop.
    pub at: HashSet<IpAddr>,
    /// Addresses seen at the hop before it.
    pub before: HashSet<IpAddr>,
    /// Rounds since the last full trace.
    pub age: u32,
}

fn inside(inside: &[IpNet], addr: IpAddr) -> bool {
    inside.iter().any(|n| n.contains(&addr))
}

/// Addresses answering at `ttl` (any flow).
fn addrs_at(r: &JobResult, ttl: u8) -> HashSet<IpAddr> {
    r.hops
        .iter()
        .filter(|h| h.ttl == ttl)
        .flat_map(|h| h.replies.iter().map(|x| x.addr))
        .collect()
}

/// The border a trace shows: the last hop outside `target` before the
/// first hop inside it (the destination counts as inside); when the trace
/// never enters, the last hop outside that answered.
pub fn border_of(r: &JobResult, target: &[IpNet]) -> Option<Border> {
    let is_in = |a: IpAddr| a == r.dst || inside(target, a);
    let first_in = r
        .hops
        .iter()
        .filter(|h| h.replies.iter().any(|x| is_in(x.addr)))
        .map(|h| h.ttl)
        .min()
        .unwrap_or(u8::MAX);
    let ttl = r
        .hops
        .iter()
        .filter(|h| h.ttl < first_in && h.replies.iter().any(|x| !is_in(x.addr)))
        .map(|h| h.ttl)
        .max()?;
    Some(Border {
        ttl,
        at: addrs_at(r, ttl)
            .into_iter()
            .filter(|a| !is_in(*a))
            .collect(),
        before: if ttl > 1 {
            addrs_at(r, ttl - 1)
        } else {
            HashSet::new()
        },
        age: 0,
    })
}

/// Does a window trace agree with the known border?
pub fn window_agrees(known: &Border, r: &JobResult, target: &[IpNet]) -> bool {
    let Some(seen) = border_of(r, target) else {
        return false;
    };
    if seen.ttl != known.ttl || seen.at.is_disjoint(&known.at) {
        return false;
    }
    // The hop before: when it answered, it must be one we know.
    let before = addrs_at(r, known.ttl.saturating_sub(1));
    before.is_empty() || known.before.is_empty() || !before.is_disjoint(&known.before)
}

/// A random 128-bit id as 32 hex digits.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: time and a counter still make ids unique
        // within this agent.
        let t = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn millis(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The agent's prober: engine, gate and border knowledge across rounds.
#[derive(Debug)]
pub struct Prober<N: Network> {
    pub net: N,
    pub gate: Gate,
    pub id: Ident,
    pub agent: String,
    pub cfg: ProbeConfig,
    /// The target network (what counts as "inside").
    pub target: Vec<IpNet>,
    pub borders: HashMap<IpNet, Border>,
    pub stats: Stats,
    pub rounds: u64,
}

impl<N: Network> Prober<N> {
    pub fn new(
        net: N,
        gate: Gate,
        id: Ident,
        agent: String,
        cfg: ProbeConfig,
        target: Vec<IpNet>,
    ) -> Self {
        Self {
            net,
            gate,
            id,
            agent,
            cfg,
            target,
            borders: HashMap::new(),
            stats: Stats::default(),
            rounds: 0,
        }
    }

    fn record(&self, r: JobResult) -> Record {
        let protocol = self.cfg.trace.protocol;
        Record::Trace(TraceRecord {
            schema: SCHEMA_VERSION,
            id: new_id(),
            agent: self.agent.clone(),
            start_ms: millis(r.start),
            duration_ms: (r.duration.as_secs_f64() * 1e6).round() / 1e3,
            src: r.src,
            dst: r.dst,
            prefix: unit_of(r.dst).to_string(),
            protocol,
            port: (protocol != tumen_wire::Protocol::Icmp).then_some(self.cfg.trace.port),
            mode: r.mode,
            first_ttl: r.first_ttl,
            max_ttl: self.cfg.trace.max_ttl,
            flows: self.cfg.trace.flows,
            stop: r.stop,
            reached: r.reached,
            probes_sent: r.probes_sent,
            hops: r.hops,
            error: r.error,
        })
    }

    fn full(&self, d: &Destination) -> Job {
        Job {
            dst: d.addr,
            mode: TraceMode::Full,
            first_ttl: self.cfg.trace.first_ttl,
        }
    }

    fn window(&self, d: &Destination, b: &Border) -> Job {
        Job {
            dst: d.addr,
            mode: TraceMode::Window,
            first_ttl: b.ttl.saturating_sub(1).max(self.cfg.trace.first_ttl),
        }
    }

    /// Learns from finished traces; returns the windows that disagreed
    /// (their destinations need a full trace now).
    fn learn(&mut self, results: &[JobResult], escalate: &mut Vec<Destination>) {
        for r in results {
            if matches!(r.stop, StopReason::Refused | StopReason::Error) {
                continue;
            }
            let unit = unit_of(r.dst);
            match r.mode {
                TraceMode::Full => match border_of(r, &self.target) {
                    Some(b) => {
                        self.borders.insert(unit, b);
                    }
                    None => {
                        self.borders.remove(&unit);
                    }
                },
                TraceMode::Window => {
                    let agrees = self
                        .borders
                        .get(&unit)
                        .is_some_and(|b| window_agrees(b, r, &self.target));
                    if !agrees {
                        escalate.push(Destination { addr: r.dst, unit });
                    }
                }
            }
        }
    }

    /// Runs `jobs`, learns from them (collecting windows that disagree
    /// into `escalate`), then hands each result to `out` as a record.
    async fn batch(
        &mut self,
        jobs: &[Job],
        escalate: &mut Vec<Destination>,
        out: &mut dyn FnMut(Record),
    ) {
        if jobs.is_empty() {
            return;
        }
        let results = run(
            &mut self.net,
            &mut self.gate,
            &self.cfg.trace,
            self.id,
            jobs,
            &mut self.stats,
        )
        .await;
        self.learn(&results, escalate);
        for r in results {
            out(self.record(r));
        }
    }

    /// One round over `dsts`; every record goes to `out` as soon as its
    /// batch finishes.
    pub async fn round(&mut self, dsts: &[Destination], out: &mut dyn FnMut(Record)) {
        self.rounds += 1;
        let mut first = Vec::new();
        let mut followers: Vec<Destination> = Vec::new();
        let mut led: HashSet<IpNet> = HashSet::new();
        let mut refreshed: HashSet<IpNet> = HashSet::new();
        for d in dsts {
            let known = self
                .borders
                .get(&d.unit)
                .filter(|b| self.cfg.window && b.age + 1 < self.cfg.full_every);
            match known {
                Some(b) => first.push(self.window(d, b)),
                None if !self.cfg.window || led.insert(d.unit) => {
                    refreshed.insert(d.unit);
                    first.push(self.full(d));
                }
                None => followers.push(*d),
            }
        }
        let mut escalate = Vec::new();
        self.batch(&first, &mut escalate, out).await;

        // Followers of units whose leader found a border use a window;
        // the others need their own full trace.
        let mut second: Vec<Job> = escalate.iter().map(|d| self.full(d)).collect();
        for d in &followers {
            match self.borders.get(&d.unit) {
                Some(b) => second.push(self.window(d, b)),
                None => second.push(self.full(d)),
            }
        }
        refreshed.extend(escalate.iter().map(|d| d.unit));
        let mut again = Vec::new();
        self.batch(&second, &mut again, out).await;
        let third: Vec<Job> = again.iter().map(|d| self.full(d)).collect();
        refreshed.extend(again.iter().map(|d| d.unit));
        self.batch(&third, &mut Vec::new(), out).await;

        for (unit, b) in self.borders.iter_mut() {
            if refreshed.contains(unit) {
                b.age = 0;
            } else {
                b.age += 1;
            }
        }
    }

    /// Pings `dsts` with the configured count; records go to `out`.
    pub async fn ping(
        &mut self,
        pingers: &Pingers,
        dsts: &[Destination],
        out: &mut dyn FnMut(Record),
    ) {
        if self.cfg.ping_count == 0 {
            return;
        }
        let addrs: Vec<IpAddr> = dsts.iter().map(|d| d.addr).collect();
        let summaries = pingers
            .run(
                &mut self.gate,
                &addrs,
                self.cfg.ping_count,
                self.cfg.ping_interval,
                self.cfg.trace.wait,
            )
            .await;
        for s in summaries {
            out(self.ping_record(&s));
        }
    }

    fn ping_record(&self, s: &PingSummary) -> Record {
        let st = s.stats();
        Record::Ping(PingRecord {
            schema: SCHEMA_VERSION,
            id: new_id(),
            agent: self.agent.clone(),
            start_ms: millis(s.start),
            dst: s.dst,
            prefix: unit_of(s.dst).to_string(),
            sent: s.sent,
            received: s.received,
            loss_ratio: s.loss_ratio(),
            rtt_min_ms: st.map(|x| x.0),
            rtt_avg_ms: st.map(|x| (x.1 * 1e3).round() / 1e3),
            rtt_max_ms: st.map(|x| x.2),
            rtt_stddev_ms: st.map(|x| (x.3 * 1e3).round() / 1e3),
        })
    }
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod tests;
