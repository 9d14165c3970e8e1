//! The ingest pipeline, pure (no HTTP, no database, no clock): an upload's
//! bytes are decoded, parsed and validated whole ([`read`]), each trace is
//! converted to the common model and inferred, each destination checked
//! against the target set, and out comes the [`Upload`] the writer
//! commits and the state applies. A source other than agents' uploads
//! (an imported file, RIPE Atlas) enters at [`Pipeline::prepare`] with
//! records already read.
//!
//! The two things it hands outwards are functions it is given: addresses
//! worth enriching go to an [`Enrich`] (DNS, when enabled), and record
//! lines are packed by the store's [`PackLine`], here on the request's
//! thread rather than in the single writer.

pub mod read;

use std::net::IpAddr;

use ipnet::IpNet;

pub use read::{read_upload, Checks, Encoding, Incoming, Reject, Reserve};

use crate::infer::{AsnLookup, Inference, Target};
use crate::orgs::Orgs;
use crate::paths::unit_of;
use crate::table::PrefixTable;

/// How a store wants a record's line kept (`Store::pack`).
pub type PackLine = fn(&str) -> Vec<u8>;

/// Enrichment beyond the prefix table (Team Cymru and PTR over DNS).
pub trait Enrich: Sync {
    /// An answer already at hand (cached); never waits.
    fn cached_asn(&self, addr: IpAddr) -> Option<u32>;
    /// Asks for `addr` to be looked up in the background.
    fn request(&self, addr: IpAddr);
}

/// The table, then (if enabled) cached enrichment answers for addresses
/// the table does not know.
#[derive(Clone, Copy)]
pub struct Lookup<'a> {
    pub table: &'a PrefixTable,
    pub enrich: Option<&'a dyn Enrich>,
}

impl std::fmt::Debug for Lookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup")
            .field("enrich", &self.enrich.is_some())
            .finish_non_exhaustive()
    }
}

impl AsnLookup for Lookup<'_> {
    fn asn(&self, addr: IpAddr) -> Option<u32> {
        self.table
            .lookup_asn(addr)
            .or_else(|| self.enrich.and_then(|d| d.cached_asn(addr)))
    }
}

/// A trace ready to store: the record, its line (packed for the store),
/// and what inference said.
#[derive(Debug)]
pub struct TraceItem {
    pub record: Box<tumen_wire::TraceRecord>,
    pub line: Vec<u8>,
    pub inference: Inference,
    /// Its route at the AS level (the web view's paths graph).
    pub route: crate::paths::Route,
    pub unit: IpNet,
    /// Is its destination inside the target (does it move path state)?
    pub in_target: bool,
}

/// A ping ready to store.
#[derive(Debug)]
pub struct PingItem {
    pub record: tumen_wire::PingRecord,
    /// The line, packed for the store.
    pub line: Vec<u8>,
    pub unit: IpNet,
    pub in_target: bool,
}

/// One accepted batch of one agent: what the writer commits.
#[derive(Debug)]
pub struct Upload {
    pub agent: String,
    /// Collector time of arrival.
    pub received_ms: u64,
    pub traces: Vec<TraceItem>,
    pub pings: Vec<PingItem>,
}

impl Upload {
    /// Records whose destination is outside the target set (stored, not
    /// inferred into paths).
    pub fn outside_target(&self) -> usize {
        self.traces.iter().filter(|t| !t.in_target).count()
            + self.pings.iter().filter(|p| !p.in_target).count()
    }
}

/// Size limits of one upload.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes after decompression.
    pub max_decoded: usize,
    /// Records.
    pub max_batch: usize,
}

/// What the pipeline needs: the target set, the tables, the enrichment
/// hook and the store's packing.
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    pub target: &'a Target,
    pub table: &'a PrefixTable,
    pub orgs: &'a Orgs,
    pub enrich: Option<&'a dyn Enrich>,
    pub pack: PackLine,
}

impl std::fmt::Debug for Pipeline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("target", self.target)
            .field("enrich", &self.enrich.is_some())
            .finish_non_exhaustive()
    }
}

impl Pipeline<'_> {
    /// An agent's upload, from the bytes received to the records to
    /// commit: decode (asking `reserve` for the memory it takes), parse
    /// and validate the whole batch against `checks`, then
    /// [`Pipeline::prepare`] it.
    #[allow(clippy::too_many_arguments)]
    pub fn upload(
        &self,
        agent: &str,
        body: &[u8],
        encoding: Encoding,
        limits: Limits,
        checks: &Checks,
        received_ms: u64,
        reserve: Reserve<'_>,
    ) -> Result<Upload, Reject> {
        let batch = read_upload(
            body,
            encoding,
            agent,
            limits.max_decoded,
            limits.max_batch,
            checks,
            reserve,
        )?;
        Ok(self.prepare(agent, received_ms, batch))
    }

    /// Validated records of `agent` to the records to commit: each trace
    /// converted and inferred (and its unknown addresses and evidence
    /// hops sent for enrichment), each destination placed in its /24 and
    /// checked against the target, each line packed.
    pub fn prepare(&self, agent: &str, received_ms: u64, batch: Vec<Incoming>) -> Upload {
        let lookup = Lookup {
            table: self.table,
            enrich: self.enrich,
        };
        let mut upload = Upload {
            agent: agent.to_string(),
            received_ms,
            traces: Vec::new(),
            pings: Vec::new(),
        };
        for item in batch {
            match item {
                Incoming::Trace(record, line) => {
                    let trace = crate::input::tumen::convert(&record, String::new());
                    // Exchange LANs carry no attribution, as in `infer`.
                    let inference = crate::infer::infer_with(
                        &trace,
                        &crate::infer::Context {
                            target: self.target,
                            lookup: &lookup,
                            orgs: self.orgs,
                            ixps: crate::ixp::IxpList::default_list(),
                        },
                    );
                    if let Some(d) = self.enrich {
                        for hop in &trace.hops {
                            for &a in &hop.addrs {
                                if self.table.lookup_asn(a).is_none() {
                                    d.request(a);
                                }
                            }
                        }
                        for h in [
                            &inference.evidence.last_foreign,
                            &inference.evidence.first_inside,
                        ]
                        .into_iter()
                        .flatten()
                        {
                            d.request(h.addr);
                        }
                    }
                    let route = route_of(&record, &lookup, self.orgs);
                    upload.traces.push(TraceItem {
                        route,
                        unit: unit_of(record.dst),
                        in_target: self.in_target(record.dst),
                        line: (self.pack)(&line),
                        record,
                        inference,
                    });
                }
                Incoming::Ping(record, line) => {
                    upload.pings.push(PingItem {
                        unit: unit_of(record.dst),
                        in_target: self.in_target(record.dst),
                        line: (self.pack)(&line),
                        record,
                    });
                }
            }
        }
        upload
    }

    /// Is `dst` inside one of the target's prefixes?
    pub fn in_target(&self, dst: IpAddr) -> bool {
        self.target.prefixes.iter().any(|p| p.contains(&dst))
    }
}

/// A trace's route at the AS level: per TTL the first answering address
/// (the fastest answer's RTT), attributed by `lookup` (private and shared
/// addresses: none), consecutive TTLs of one AS (or of no attribution)
/// collapsed; the destination's own answer ends it.
pub fn route_of(
    record: &tumen_wire::TraceRecord,
    lookup: &dyn AsnLookup,
    orgs: &Orgs,
) -> crate::paths::Route {
    use crate::paths::{AsHop, Route};
    let mut per_ttl: std::collections::BTreeMap<u8, (IpAddr, f64)> = Default::default();
    let (mut dest_ttl, mut dest_rtt): (Option<u8>, Option<f64>) = (None, None);
    for hop in &record.hops {
        for r in &hop.replies {
            if !r.rtt_ms.is_finite() || r.rtt_ms < 0.0 {
                continue;
            }
            if r.addr == record.dst {
                dest_ttl = Some(dest_ttl.map_or(hop.ttl, |t| t.min(hop.ttl)));
                dest_rtt = Some(dest_rtt.map_or(r.rtt_ms, |x| x.min(r.rtt_ms)));
                continue;
            }
            per_ttl
                .entry(hop.ttl)
                .and_modify(|(a, rtt)| {
                    if *a == r.addr {
                        *rtt = rtt.min(r.rtt_ms);
                    }
                })
                .or_insert((r.addr, r.rtt_ms));
        }
    }
    let mut hops: Vec<AsHop> = Vec::new();
    for (ttl, (addr, rtt)) in per_ttl {
        if dest_ttl.is_some_and(|d| ttl >= d) {
            break;
        }
        let asn = if crate::infer::unattributable(addr) {
            None
        } else {
            lookup.asn(addr)
        };
        match hops.last_mut() {
            Some(h) if h.asn == asn => {
                h.last_ttl = ttl;
                h.rtt_ms = Some(rtt);
            }
            _ => hops.push(AsHop {
                asn,
                org: asn.and_then(|a| orgs.of(a)).map(str::to_string),
                first_ttl: ttl,
                last_ttl: ttl,
                rtt_ms: Some(rtt),
            }),
        }
    }
    // The destination's AS closes the route when it answered.
    if let Some(t) = dest_ttl {
        let asn = lookup.asn(record.dst);
        match hops.last_mut() {
            Some(h) if h.asn == asn && asn.is_some() => {
                h.last_ttl = t;
                h.rtt_ms = dest_rtt;
            }
            _ => hops.push(AsHop {
                asn,
                org: asn.and_then(|a| orgs.of(a)).map(str::to_string),
                first_ttl: t,
                last_ttl: t,
                rtt_ms: dest_rtt,
            }),
        }
    }
    Route {
        hops,
        reached: record.reached || dest_ttl.is_some(),
        dest_ttl,
        dest_rtt_ms: dest_rtt,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::table::Origin;

    /// A trace of vp-fra into 198.18.177.0/24: a China Unicom hop, a hop
    /// the table does not know, then one inside.
    const TRACE: &str = r#"{"kind":"trace","schema":1,"id":"00112233445566778899aabbccddeeff","agent":"vp-fra","start_ms":1506848871000,"duration_ms":12.5,"src":"192.0.2.2","dst":"198.18.177.15","prefix":"198.18.177.0/24","protocol":"udp","port":33434,"mode":"full","first_ttl":1,"max_ttl":30,"flows":1,"stop":"completed","reached":true,"probes_sent":3,"hops":[{"ttl":1,"flow":0,"sent":1,"replies":[{"addr":"219.158.3.1","rtt_ms":1.5,"kind":"time_exceeded","icmp_type":11,"icmp_code":0}]},{"ttl":2,"flow":0,"sent":1,"replies":[{"addr":"8.8.8.8","rtt_ms":2.5,"kind":"time_exceeded","icmp_type":11,"icmp_code":0}]},{"ttl":3,"flow":0,"sent":1,"replies":[{"addr":"198.18.177.15","rtt_ms":3.5,"kind":"port_unreachable","icmp_type":3,"icmp_code":3}]}]}"#;
    const PING: &str = r#"{"kind":"ping","schema":1,"id":"ffeeddccbbaa99887766554433221100","agent":"vp-fra","start_ms":1506848871000,"dst":"203.0.113.7","prefix":"203.0.113.0/24","sent":3,"received":2,"loss_ratio":0.3333,"rtt_min_ms":1.0,"rtt_avg_ms":2.0,"rtt_max_ms":3.0}"#;

    #[derive(Debug, Default)]
    struct Recorder {
        asked: Mutex<Vec<IpAddr>>,
    }

    impl Enrich for Recorder {
        fn cached_asn(&self, addr: IpAddr) -> Option<u32> {
            (addr == "8.8.8.8".parse::<IpAddr>().expect("a")).then_some(15169)
        }
        fn request(&self, addr: IpAddr) {
            self.asked.lock().expect("lock").push(addr);
        }
    }

    fn marked(line: &str) -> Vec<u8> {
        format!("packed:{line}").into_bytes()
    }

    fn fixture() -> (Target, PrefixTable, Orgs) {
        let target = Target {
            prefixes: vec!["198.18.177.0/24".parse().expect("p")],
            asns: Default::default(),
        };
        let mut table = PrefixTable::new();
        table.insert("219.158.0.0/16".parse().expect("p"), Origin::Asn(4837));
        (target, table, Orgs::default())
    }

    #[test]
    fn an_upload_becomes_inferred_records_in_their_unit_packed_for_the_store() {
        let (target, table, orgs) = fixture();
        let dns = Recorder::default();
        let p = Pipeline {
            target: &target,
            table: &table,
            orgs: &orgs,
            enrich: Some(&dns),
            pack: marked,
        };
        let body = format!("{TRACE}\n{PING}\n");
        let mut reserved = 0;
        let u = p
            .upload(
                "vp-fra",
                body.as_bytes(),
                Encoding::Identity,
                Limits {
                    max_decoded: 1 << 20,
                    max_batch: 10,
                },
                &Checks::any_time(),
                42,
                &mut |n| {
                    reserved = n;
                    true
                },
            )
            .expect("accepted");
        assert_eq!(reserved, body.len() * read::PARSED_PER_BYTE, "budget asked");
        assert_eq!((u.agent.as_str(), u.received_ms), ("vp-fra", 42));
        assert_eq!((u.traces.len(), u.pings.len()), (1, 1));
        let t = &u.traces[0];
        // 8.8.8.8 is not in the table: the cached DNS answer names it.
        assert_eq!(t.inference.upstream, "AS15169");
        assert_eq!(t.inference.evidence.as_path, [4837, 15169]);
        assert!(t.inference.entered && t.in_target);
        assert_eq!(t.unit.to_string(), "198.18.177.0/24");
        assert_eq!(t.line, marked(TRACE));
        // Its route at the AS level, for the paths graph: AS4837 at TTL 1,
        // AS15169 (DNS) at 2, the destination (no table entry) at 3.
        let hops: Vec<_> = t
            .route
            .hops
            .iter()
            .map(|h| (h.asn, h.first_ttl, h.last_ttl, h.rtt_ms))
            .collect();
        assert_eq!(
            hops,
            [
                (Some(4837), 1, 1, Some(1.5)),
                (Some(15169), 2, 2, Some(2.5)),
                (None, 3, 3, Some(3.5))
            ]
        );
        assert!(t.route.reached);
        assert_eq!(
            (t.route.dest_ttl, t.route.dest_rtt_ms),
            (Some(3), Some(3.5))
        );
        let ping = &u.pings[0];
        assert!(!ping.in_target);
        assert_eq!(ping.unit.to_string(), "203.0.113.0/24");
        assert_eq!(ping.line, marked(PING));
        assert_eq!(u.outside_target(), 1);
        // The addresses the table does not know, then the evidence hops.
        let asked = dns.asked.lock().expect("lock").clone();
        let a = |s: &str| s.parse::<IpAddr>().expect("a");
        let (border, inside) = (a("8.8.8.8"), a("198.18.177.15"));
        assert_eq!(asked, [border, inside, border, inside], "{asked:?}");
    }

    #[test]
    fn without_enrichment_only_the_table_answers_and_refusals_pass_through() {
        let (target, table, orgs) = fixture();
        let p = Pipeline {
            target: &target,
            table: &table,
            orgs: &orgs,
            enrich: None,
            pack: marked,
        };
        let batch =
            read::parse_batch(TRACE.as_bytes(), "vp-fra", 10, &Checks::any_time()).expect("valid");
        let u = p.prepare("vp-fra", 7, batch);
        let i = &u.traces[0].inference;
        assert_eq!(
            (i.upstream.as_str(), i.upstream_asn),
            ("china-unicom", Some(4837))
        );
        assert_eq!(i.evidence.as_path, [4837]);
        assert_eq!(u.outside_target(), 0);
        let limits = Limits {
            max_decoded: 1 << 20,
            max_batch: 10,
        };
        let e = p
            .upload(
                "vp-sgp",
                TRACE.as_bytes(),
                Encoding::Identity,
                limits,
                &Checks::any_time(),
                7,
                &mut |_| true,
            )
            .expect_err("another agent's records");
        assert_eq!((e.status, e.reason), (403, "agent_mismatch"));
        let e = p
            .upload(
                "vp-fra",
                TRACE.as_bytes(),
                Encoding::Identity,
                limits,
                &Checks::any_time(),
                7,
                &mut |_| false,
            )
            .expect_err("no memory");
        assert_eq!(e.reason, "overloaded");
    }

    #[test]
    fn the_check_window_follows_the_clock_skew_and_the_retention() {
        let c = Checks::window(
            1_000_000,
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(100),
        );
        assert_eq!(
            (c.now_ms, c.max_skew_ms, c.oldest_ms),
            (1_000_000, 10_000, 900_000)
        );
        let c = Checks::window(5, std::time::Duration::MAX, std::time::Duration::MAX);
        assert_eq!((c.max_skew_ms, c.oldest_ms), (u64::MAX, 0));
    }
}
