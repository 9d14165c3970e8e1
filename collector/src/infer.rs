//! Upstream inference for one traceroute: pure code over a [`Trace`], an
//! ASN lookup and the organisations, no I/O.
//!
//! As DESIGN.md defines it: every responding hop is mapped to an ASN
//! (longest-prefix match) and an organisation. A hop is *inside* when its
//! address is in the target's prefixes or its ASN is one of the target's.
//! The upstream is the organisation of the last responding hop outside the
//! target, with a known ASN, before the first hop inside it. Private,
//! shared (100.64/10), loopback, link-local and unannounced addresses (IXP
//! LANs are usually unannounced) carry no attribution of their own: they
//! are skipped, so the hop takes its attribution from its neighbours. A
//! trace that never enters the target (borders filter with `!X` or go
//! silent) still names the last foreign network it saw, with lower
//! confidence.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{Hop, Trace};
use crate::orgs::Orgs;

/// Origin ASN of an address, by longest-prefix match.
pub trait AsnLookup {
    fn asn(&self, addr: IpAddr) -> Option<u32>;
}

impl AsnLookup for crate::table::PrefixTable {
    fn asn(&self, addr: IpAddr) -> Option<u32> {
        self.lookup_asn(addr)
    }
}

/// The target network: prefixes plus ASNs whose space is inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub prefixes: Vec<IpNet>,
    pub asns: HashSet<u32>,
}

/// The DPRK preset (`tumen_core::preset::DPRK`).
pub const DPRK_PREFIXES: &[&str] = tumen_core::preset::DPRK.prefixes;
/// Star JV, whose whole space is inside the DPRK.
pub const DPRK_ASNS: &[u32] = tumen_core::preset::DPRK.asns;

impl Target {
    pub fn dprk() -> Self {
        Self {
            prefixes: DPRK_PREFIXES
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            asns: DPRK_ASNS.iter().copied().collect(),
        }
    }
}

/// Addresses that never carry an attribution of their own: the one
/// definition both inference and DNS enrichment use.
pub use tumen_core::is_unattributable as unattributable;

impl Target {
    /// The target as messages name it: `175.45.176.0/22, AS131279`, at
    /// most a few of each.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .prefixes
            .iter()
            .take(4)
            .map(|p| p.to_string())
            .collect();
        if self.prefixes.len() > 4 {
            parts.push(format!("… ({} prefixes)", self.prefixes.len()));
        }
        let mut asns: Vec<u32> = self.asns.iter().copied().collect();
        asns.sort_unstable();
        parts.extend(asns.iter().take(4).map(|a| format!("AS{a}")));
        if asns.len() > 4 {
            parts.push(format!("… ({} ASes)", asns.len()));
        }
        if parts.is_empty() {
            "(empty)".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Internet exchange peering LANs: a hop there carries no attribution of
/// its own (some LANs are announced by the exchange's AS, which would
/// otherwise be named as the upstream).
pub trait IxpLookup {
    /// The exchange whose LAN holds `addr` (its name, possibly empty).
    fn ixp(&self, addr: IpAddr) -> Option<String>;
}

/// No exchange LANs known.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIxps;

impl IxpLookup for NoIxps {
    fn ixp(&self, _addr: IpAddr) -> Option<String> {
        None
    }
}

impl IxpLookup for crate::ixp::IxpList {
    fn ixp(&self, addr: IpAddr) -> Option<String> {
        self.contains(addr).map(|p| {
            if p.name.is_empty() {
                p.prefix.to_string()
            } else {
                format!("{} {}", p.name, p.prefix)
            }
        })
    }
}

/// Everything inference consults.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub target: &'a Target,
    pub lookup: &'a dyn AsnLookup,
    pub orgs: &'a Orgs,
    pub ixps: &'a dyn IxpLookup,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Where a hop's AS number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AsnSource {
    /// The prefix tables (longest-prefix match).
    Table,
    /// The trace's own annotation (`[AS4837]`, mtr's AS column, ...),
    /// used because the tables had no answer.
    Trace,
}

/// A hop cited as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopRef {
    pub ttl: u8,
    pub addr: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Where `asn` came from, when not from the tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn_source: Option<AsnSource>,
}

/// The tables and the trace's own annotation name different ASes for a
/// hop: the tables win, both are reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnConflict {
    pub ttl: u8,
    pub addr: IpAddr,
    pub table_asn: u32,
    pub trace_asn: u32,
}

/// Why the answer is what it is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// The last hop outside the target with a known ASN.
    pub last_foreign: Option<HopRef>,
    /// The first hop inside the target.
    pub first_inside: Option<HopRef>,
    /// ASNs along the path, consecutive repeats collapsed.
    pub as_path: Vec<u32>,
    /// Silent hops between the last foreign hop and the first inside one
    /// (or the end of the trace).
    pub silent_after_border: u8,
    /// Responding hops without attribution skipped after the last foreign
    /// hop (private, shared, IXP, unannounced, hidden by the author).
    pub unattributed_after_border: u8,
    /// Annotation (`!X` ...) at the last responding hop, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_annotation: Option<String>,
    /// Other organisations answering at the last foreign hop (load
    /// balancing across upstreams at the border).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_at_border: Vec<String>,
    /// Hops where the trace's AS annotation disagrees with the tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asn_conflicts: Vec<AsnConflict>,
    /// IXP LAN hops skipped (`ttl addr exchange`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ixp_hops: Vec<String>,
}

/// The answer for one trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inference {
    pub target: Option<IpAddr>,
    /// Organisation id, `AS<n>` when none is known, or `unknown`.
    pub upstream: String,
    pub upstream_asn: Option<u32>,
    /// A hop inside the target answered.
    pub entered: bool,
    /// 0..=1.
    pub confidence: f64,
    pub evidence: Evidence,
    /// Why the answer is `unknown` or weak, and what would help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a hop (one address of it) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    Inside,
    Outside,
    /// Answered, but carries no attribution (private, IXP, unannounced,
    /// hidden).
    Unattributed,
    /// Nobody answered.
    Silent,
}

/// How one address (or a silent or hidden hop) was judged, for
/// `infer --explain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopVerdict {
    pub ttl: u8,
    pub addr: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn_source: Option<AsnSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub place: Place,
    /// The rule that decided, in words.
    pub rule: String,
}

/// An inference with the verdict on every hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explained {
    pub inference: Inference,
    pub hops: Vec<HopVerdict>,
}

/// One hop as judged: ttl, its addresses with their class, and whether
/// it answered without showing its address.
type Judged = (u8, smallvec::SmallVec<[(IpAddr, Class); 2]>, bool);

/// What a responding address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Inside(Option<u32>),
    Foreign(u32),
    Unattributed,
}

/// The rule that decided an address, rendered only for `--explain`.
#[derive(Debug, Clone, PartialEq)]
enum Why {
    TargetPrefix(IpNet),
    Reserved,
    Ixp(String),
    Unannounced,
    /// AS, where it came from, a different AS the trace printed.
    Asn(u32, AsnSource, Option<u32>),
}

impl Why {
    fn render(&self, inside: bool) -> String {
        match self {
            Why::TargetPrefix(p) => format!("in target prefix {p}"),
            Why::Reserved => {
                "private, shared or reserved address: no attribution of its own".into()
            }
            Why::Ixp(x) => format!("IXP peering LAN ({x}): no attribution of its own"),
            Why::Unannounced => {
                "unannounced: no prefix table entry and no AS printed in the trace".into()
            }
            Why::Asn(asn, source, other) => {
                let how = match source {
                    AsnSource::Table => "prefix table",
                    AsnSource::Trace => "AS printed in the trace (no table entry)",
                };
                let conflict =
                    other.map_or_else(String::new, |p| format!("; the trace printed AS{p}"));
                if inside {
                    format!("AS{asn} is a target AS ({how}){conflict}")
                } else {
                    format!("AS{asn} from the {how}{conflict}")
                }
            }
        }
    }
}

/// Judges one address of hop `hop`: its class, its AS and where that came
/// from, and why.
fn judge(
    addr: IpAddr,
    hop: &Hop,
    ctx: &Context<'_>,
    conflicts: &mut Vec<AsnConflict>,
) -> (Class, Option<u32>, Option<AsnSource>, Why) {
    if let Some(p) = ctx.target.prefixes.iter().find(|p| p.contains(&addr)) {
        let asn = if unattributable(addr) {
            None
        } else {
            ctx.lookup.asn(addr)
        };
        return (Class::Inside(asn), asn, None, Why::TargetPrefix(*p));
    }
    if unattributable(addr) {
        return (Class::Unattributed, None, None, Why::Reserved);
    }
    let table = ctx.lookup.asn(addr);
    let printed = hop.asn_of(addr);
    if let (Some(t), Some(p)) = (table, printed) {
        if t != p {
            conflicts.push(AsnConflict {
                ttl: hop.ttl,
                addr,
                table_asn: t,
                trace_asn: p,
            });
        }
    }
    if let Some(ixp) = ctx.ixps.ixp(addr) {
        return (Class::Unattributed, table.or(printed), None, Why::Ixp(ixp));
    }
    let (asn, source) = match (table, printed) {
        (Some(t), _) => (t, AsnSource::Table),
        (None, Some(p)) => (p, AsnSource::Trace),
        (None, None) => return (Class::Unattributed, None, None, Why::Unannounced),
    };
    let other = printed.filter(|p| *p != asn);
    let why = Why::Asn(asn, source, other);
    if ctx.target.asns.contains(&asn) {
        (Class::Inside(Some(asn)), Some(asn), Some(source), why)
    } else {
        (Class::Foreign(asn), Some(asn), Some(source), why)
    }
}

/// Infers the upstream of one trace (no IXP list).
pub fn infer(trace: &Trace, target: &Target, lookup: &dyn AsnLookup, orgs: &Orgs) -> Inference {
    infer_with(
        trace,
        &Context {
            target,
            lookup,
            orgs,
            ixps: &NoIxps,
        },
    )
}

/// Infers the upstream of one trace.
pub fn infer_with(trace: &Trace, ctx: &Context<'_>) -> Inference {
    run(trace, ctx, false).inference
}

/// Infers the upstream of one trace, with the verdict on every hop.
pub fn explain(trace: &Trace, ctx: &Context<'_>) -> Explained {
    run(trace, ctx, true)
}

/// Inference; the verdicts on the hops are written only with `detail`.
fn run(trace: &Trace, ctx: &Context<'_>, detail: bool) -> Explained {
    let mut verdicts: Vec<HopVerdict> = Vec::new();
    let mut conflicts: Vec<AsnConflict> = Vec::new();
    let mut ixp_hops: Vec<String> = Vec::new();
    // Per hop: ttl, judged addresses, hidden (answered, address not shown).
    let mut classes: Vec<Judged> = Vec::with_capacity(trace.hops.len());
    for h in &trace.hops {
        let mut judged = smallvec::SmallVec::new();
        for &a in &h.addrs {
            let (c, asn, asn_source, why) = judge(a, h, ctx, &mut conflicts);
            if matches!(why, Why::Ixp(_)) {
                ixp_hops.push(format!("{} {}", h.ttl, a));
            }
            judged.push((a, c));
            if detail {
                verdicts.push(HopVerdict {
                    ttl: h.ttl,
                    addr: Some(a),
                    name: h.name_of(a).map(str::to_string),
                    asn,
                    asn_source,
                    org: asn.and_then(|n| ctx.orgs.of(n)).map(str::to_string),
                    place: match c {
                        Class::Inside(_) => Place::Inside,
                        Class::Foreign(_) => Place::Outside,
                        Class::Unattributed => Place::Unattributed,
                    },
                    rule: why.render(matches!(c, Class::Inside(_))),
                });
            }
        }
        let hidden = h.hidden && h.addrs.is_empty();
        if h.addrs.is_empty() && detail {
            verdicts.push(HopVerdict {
                ttl: h.ttl,
                addr: None,
                name: None,
                asn: None,
                asn_source: None,
                org: None,
                place: if hidden {
                    Place::Unattributed
                } else {
                    Place::Silent
                },
                rule: if hidden {
                    "answered, but the address is not shown".into()
                } else if let Some(a) = h.annotations.first() {
                    format!("no address, annotation {a}")
                } else {
                    "no answer".into()
                },
            });
        }
        classes.push((h.ttl, judged, hidden));
    }

    let first_inside = classes.iter().find_map(|(ttl, addrs, _)| {
        addrs.iter().find_map(|(a, c)| match c {
            Class::Inside(asn) => Some(HopRef {
                ttl: *ttl,
                addr: *a,
                asn: *asn,
                asn_source: None,
            }),
            _ => None,
        })
    });
    let limit = first_inside.as_ref().map_or(u16::MAX, |h| u16::from(h.ttl));

    let mut as_path: Vec<u32> = Vec::new();
    for (_, addrs, _) in &classes {
        for (_, c) in addrs {
            let asn = match c {
                Class::Foreign(a) | Class::Inside(Some(a)) => *a,
                _ => continue,
            };
            if as_path.last() != Some(&asn) {
                as_path.push(asn);
            }
        }
    }

    // Walk back from the first inside hop (or the end) to the last hop
    // with a foreign attribution.
    let before = classes.iter().filter(|(t, _, _)| u16::from(*t) < limit);
    let responds = |h: &Judged| !h.1.is_empty() || h.2;
    let mut silent = 0u8;
    let mut unattributed = 0u8;
    let mut border: Option<&Judged> = None;
    for hop in before.rev() {
        let foreign = hop.1.iter().any(|(_, c)| matches!(c, Class::Foreign(_)));
        if foreign {
            border = Some(hop);
            break;
        }
        if responds(hop) {
            unattributed = unattributed.saturating_add(1);
        } else {
            silent = silent.saturating_add(1);
        }
    }
    // The last hop that answered (an address, a hidden one, or an
    // annotation such as `!X` without address).
    let last_responding = trace
        .hops
        .iter()
        .rev()
        .find(|h| !h.addrs.is_empty() || h.hidden || !h.annotations.is_empty())
        .map(|h| h.ttl);
    // A trace that never entered: only the silence between the border and
    // the last hop that answered counts; trailing silence is where the
    // trace gave up, not a gap in the path.
    if first_inside.is_none() {
        if let (Some(b), Some(lr)) = (border, last_responding) {
            silent = u8::try_from(
                classes
                    .iter()
                    .filter(|(t, a, hidden)| *t > b.0 && *t < lr && a.is_empty() && !hidden)
                    .count(),
            )
            .unwrap_or(u8::MAX);
        }
    }
    let terminal_annotation = trace
        .hops
        .iter()
        .rev()
        .find(|h| !h.addrs.is_empty() || !h.annotations.is_empty())
        .and_then(|h| h.annotations.first().cloned());

    let entered = first_inside.is_some();
    let evidence = |last_foreign, also_at_border| Evidence {
        last_foreign,
        first_inside: first_inside.clone(),
        as_path: as_path.clone(),
        silent_after_border: silent,
        unattributed_after_border: unattributed,
        terminal_annotation: terminal_annotation.clone(),
        also_at_border,
        asn_conflicts: conflicts.clone(),
        ixp_hops: ixp_hops.clone(),
    };
    let Some((ttl, addrs, _)) = border else {
        let note = unknown_note(trace, ctx, entered, &classes);
        return Explained {
            inference: Inference {
                target: trace.effective_target(),
                upstream: "unknown".into(),
                upstream_asn: None,
                entered,
                confidence: 0.0,
                evidence: evidence(None, Vec::new()),
                note: Some(note),
            },
            hops: verdicts,
        };
    };
    // The border hop may have several addresses (load balancing): the
    // organisation most of them belong to wins, ties to the first seen.
    let mut tally: Vec<(String, usize, IpAddr, u32)> = Vec::new();
    for (a, c) in addrs {
        let Class::Foreign(asn) = c else { continue };
        let org = ctx.orgs.label(*asn);
        match tally.iter_mut().find(|t| t.0 == org) {
            Some(t) => t.1 += 1,
            None => tally.push((org, 1, *a, *asn)),
        }
    }
    let best = tally
        .iter()
        .enumerate()
        .max_by_key(|(i, t)| (t.1, usize::MAX - i))
        .map(|(_, t)| t.clone());
    let Some((upstream, _, addr, asn)) = best else {
        // Cannot happen (the border hop has a foreign address); answer
        // "unknown" rather than panic.
        return Explained {
            inference: Inference {
                target: trace.effective_target(),
                upstream: "unknown".into(),
                upstream_asn: None,
                entered,
                confidence: 0.0,
                evidence: evidence(None, Vec::new()),
                note: None,
            },
            hops: verdicts,
        };
    };
    let also: Vec<String> = tally
        .iter()
        .filter(|t| t.0 != upstream)
        .map(|t| t.0.clone())
        .collect();
    let border_hop = trace.hops.iter().find(|h| h.ttl == *ttl);
    let asn_source = border_hop
        .filter(|h| ctx.lookup.asn(addr).is_none() && h.asn_of(addr) == Some(asn))
        .map(|_| AsnSource::Trace);

    let mut confidence: f64 = if entered {
        0.95
    } else if terminal_annotation.is_some() && last_responding == Some(*ttl) {
        // The border itself answered "administratively prohibited" (or
        // similar) and nothing answered after it, however many silent
        // hops the tool printed: the classic filtered border.
        0.7
    } else {
        0.5
    };
    confidence -= 0.1 * f64::from(silent.min(3));
    confidence -= 0.1 * f64::from(unattributed.min(2));
    if !also.is_empty() {
        confidence *= 0.8;
    }
    if asn_source == Some(AsnSource::Trace) {
        // Only the trace's own annotation names the upstream.
        confidence *= 0.9;
    }
    // `entered: false` says the trace stopped short; a note is kept for
    // answers that need one (unknown, see `unknown_note`).
    let note = None;
    Explained {
        inference: Inference {
            target: trace.effective_target(),
            upstream,
            upstream_asn: Some(asn),
            entered,
            confidence: (confidence.clamp(0.05, 1.0) * 100.0).round() / 100.0,
            evidence: evidence(
                Some(HopRef {
                    ttl: *ttl,
                    addr,
                    asn: Some(asn),
                    asn_source,
                }),
                also,
            ),
            note,
        },
        hops: verdicts,
    }
}

/// Why there is no answer, and what would help.
fn unknown_note(trace: &Trace, ctx: &Context<'_>, entered: bool, classes: &[Judged]) -> String {
    let responding = classes.iter().filter(|(_, a, _)| !a.is_empty()).count();
    if trace.hops.is_empty() || responding == 0 {
        return "no hop answered with an address: nothing to attribute".into();
    }
    let target = ctx.target.describe();
    if entered {
        return format!(
            "the trace enters the target ({target}), but no hop before the first inside one has \
             a known AS (private, IXP or unannounced addresses): add `--asn-table` with a full \
             routing table (pyasn, CAIDA pfx2as or an MRT RIB)"
        );
    }
    format!(
        "no hop is in the target network {target}, and no hop has a known AS: is `--target` \
         right (or `--target-asn`/`--target-country`)? Add `--asn-table` with a full routing \
         table to attribute the hops"
    )
}

/// `infer --explain`: a table per trace, then the verdict.
pub fn render_explained(e: &Explained, origin: &str) -> String {
    use std::fmt::Write as _;
    let mut rows: Vec<[String; 7]> = vec![[
        "ttl".into(),
        "address".into(),
        "host name".into(),
        "asn".into(),
        "organisation".into(),
        "where".into(),
        "rule".into(),
    ]];
    for v in &e.hops {
        let asn = match (v.asn, v.asn_source) {
            (Some(a), Some(AsnSource::Trace)) => format!("AS{a} (trace)"),
            (Some(a), _) => format!("AS{a}"),
            (None, _) => "-".into(),
        };
        rows.push([
            v.ttl.to_string(),
            v.addr.map_or_else(|| "*".into(), |a| a.to_string()),
            v.name.clone().map_or_else(|| "-".into(), |n| sanitize(&n)),
            asn,
            v.org.clone().unwrap_or_else(|| "-".into()),
            match v.place {
                Place::Inside => "inside",
                Place::Outside => "outside",
                Place::Unattributed => "unattributed",
                Place::Silent => "silent",
            }
            .into(),
            v.rule.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let i = &e.inference;
    let _ = writeln!(
        out,
        "{origin}: trace to {}",
        i.target.map_or_else(|| "?".into(), |t| t.to_string())
    );
    for r in &rows {
        let mut line = String::new();
        for (k, (c, w)) in r.iter().zip(widths.iter()).enumerate() {
            if k + 1 == r.len() {
                line.push_str(c);
            } else {
                let pad = w.saturating_sub(c.chars().count());
                line.push_str(c);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        let _ = writeln!(out, "  {}", line.trim_end());
    }
    let _ = writeln!(out, "  => {}", describe(i));
    if let Some(n) = &i.note {
        let _ = writeln!(out, "  note: {n}");
    }
    for c in &i.evidence.asn_conflicts {
        let _ = writeln!(
            out,
            "  note: hop {} {}: the tables say AS{}, the trace printed AS{} (the tables win)",
            c.ttl, c.addr, c.table_asn, c.trace_asn
        );
    }
    out
}

/// A host name from the input, printable on a terminal (no control
/// characters).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One line per trace for people.
pub fn describe(i: &Inference) -> String {
    let target = i.target.map_or_else(|| "?".to_string(), |t| t.to_string());
    let asn = i
        .upstream_asn
        .map(|a| format!(" (AS{a})"))
        .unwrap_or_default();
    let mut s = format!(
        "{target}: upstream {}{asn}, {}, confidence {:.2}",
        i.upstream,
        if i.entered {
            "entered the target"
        } else {
            "did not enter the target"
        },
        i.confidence
    );
    if let Some(h) = &i.evidence.last_foreign {
        s.push_str(&format!("; last foreign hop {} {}", h.ttl, h.addr));
        if h.asn_source == Some(AsnSource::Trace) {
            s.push_str(" (AS from the trace)");
        }
    }
    if let Some(a) = &i.evidence.terminal_annotation {
        s.push_str(&format!(" {a}"));
    }
    if let Some(h) = &i.evidence.first_inside {
        s.push_str(&format!("; first inside hop {} {}", h.ttl, h.addr));
    }
    if !i.evidence.as_path.is_empty() {
        let path: Vec<String> = i
            .evidence
            .as_path
            .iter()
            .map(|a| format!("AS{a}"))
            .collect();
        s.push_str(&format!("; AS path {}", path.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hop;

    /// A tiny longest-prefix table for the tests.
    struct Table(Vec<(IpNet, u32)>);

    impl AsnLookup for Table {
        fn asn(&self, addr: IpAddr) -> Option<u32> {
            self.0
                .iter()
                .filter(|(n, _)| n.contains(&addr))
                .max_by_key(|(n, _)| n.prefix_len())
                .map(|(_, a)| *a)
        }
    }

    fn table() -> Table {
        Table(
            [
                ("175.45.176.0/22", 131279),
                ("210.52.109.0/24", 9929),
                ("219.158.0.0/17", 4837),
                ("219.158.96.0/19", 4837),
                ("202.96.0.0/16", 4808),
                ("188.43.0.0/16", 20485),
                ("4.68.0.0/14", 3356),
                ("77.94.35.0/24", 30721),
                ("2001:db8:176::/48", 131279),
                ("2001:db8:219::/48", 4837),
            ]
            .iter()
            .map(|(p, a)| (p.parse().expect("net"), *a))
            .collect(),
        )
    }

    fn trace(hops: &[(u8, &[&str], &[&str])]) -> Trace {
        Trace {
            target: Some("175.45.176.71".parse().expect("ip")),
            origin: "test".into(),
            hops: hops
                .iter()
                .map(|(ttl, addrs, ann)| Hop {
                    ttl: *ttl,
                    addrs: addrs.iter().map(|a| a.parse().expect("ip")).collect(),
                    annotations: ann.iter().map(|s| s.to_string()).collect(),
                    ..Hop::default()
                })
                .collect(),
        }
    }

    fn run(t: &Trace) -> Inference {
        infer(t, &Target::dprk(), &table(), &Orgs::default())
    }

    #[test]
    fn a_trace_that_enters_names_the_last_foreign_hop() {
        let t = trace(&[
            (1, &["192.168.1.1"], &[]),
            (2, &["4.68.1.1"], &[]),
            (3, &["219.158.100.1"], &[]),
            (4, &["175.45.176.1"], &[]),
            (5, &["175.45.176.71"], &[]),
        ]);
        let i = run(&t);
        assert_eq!(i.upstream, "china-unicom");
        assert_eq!(i.upstream_asn, Some(4837));
        assert!(i.entered);
        assert_eq!(i.confidence, 0.95);
        assert_eq!(i.evidence.last_foreign.as_ref().map(|h| h.ttl), Some(3));
        assert_eq!(i.evidence.first_inside.as_ref().map(|h| h.ttl), Some(4));
        assert_eq!(i.evidence.as_path, vec![3356, 4837, 131279]);
    }

    /// Inference and DNS enrichment had each their own list of
    /// unattributable space and disagreed on 0/8, 240/4, fec0::/10 and
    /// v4-mapped addresses: a 240/4 hop that a (bogus) table entry maps
    /// to an AS was named as the upstream by inference.
    #[test]
    fn hops_in_space_no_registry_attributes_never_name_the_upstream() {
        let mut t = table();
        t.0.push(("240.0.0.0/4".parse().expect("net"), 64500));
        t.0.push(("0.0.0.0/8".parse().expect("net"), 64501));
        for bogus in ["240.1.2.3", "0.1.2.3"] {
            let tr = trace(&[
                (1, &["219.158.100.1"], &[]),
                (2, &[bogus], &[]),
                (3, &["175.45.176.71"], &[]),
            ]);
            let i = infer(&tr, &Target::dprk(), &t, &Orgs::default());
            assert_eq!(i.upstream, "china-unicom", "{bogus}");
            assert!(crate::dns::is_unattributable(bogus.parse().expect("ip")));
        }
    }

    #[test]
    fn transtelecom_entry_is_named() {
        let t = trace(&[
            (1, &["4.68.1.1"], &[]),
            (2, &["188.43.1.9"], &[]),
            (3, &["175.45.176.5"], &[]),
        ]);
        let i = run(&t);
        assert_eq!((i.upstream.as_str(), i.entered), ("transtelecom", true));
    }

    #[test]
    fn a_border_that_filters_still_names_the_upstream_with_less_confidence() {
        let t = trace(&[(1, &["4.68.1.1"], &[]), (2, &["219.158.100.1"], &["!X"])]);
        let i = run(&t);
        assert_eq!(i.upstream, "china-unicom");
        assert!(!i.entered);
        assert_eq!(i.confidence, 0.7);
        assert_eq!(i.evidence.terminal_annotation.as_deref(), Some("!X"));
        // Silence instead of !X: lower still.
        let t = trace(&[
            (1, &["4.68.1.1"], &[]),
            (2, &["219.158.100.1"], &[]),
            (3, &[], &[]),
            (4, &[], &[]),
        ]);
        let i = run(&t);
        assert_eq!((i.upstream.as_str(), i.confidence), ("china-unicom", 0.5));
    }

    #[test]
    fn silent_hops_before_the_border_lower_confidence_but_not_the_answer() {
        let t = trace(&[
            (1, &["4.68.1.1"], &[]),
            (2, &["188.43.1.9"], &[]),
            (3, &[], &[]),
            (4, &[], &[]),
            (5, &["175.45.176.5"], &[]),
        ]);
        let i = run(&t);
        assert_eq!(i.upstream, "transtelecom");
        assert_eq!(i.evidence.silent_after_border, 2);
        assert_eq!(i.confidence, 0.75);
    }

    #[test]
    fn private_shared_and_unannounced_hops_take_attribution_from_neighbours() {
        let t = trace(&[
            (1, &["4.68.1.1"], &[]),
            (2, &["202.96.1.1"], &[]),
            (3, &["10.1.1.1"], &[]),
            (4, &["100.64.0.9"], &[]),
            (5, &["198.51.100.7"], &[]), // unannounced (an IXP LAN, say)
            (6, &["175.45.176.1"], &[]),
        ]);
        let i = run(&t);
        assert_eq!(
            i.upstream, "china-unicom",
            "AS4808 is a China Unicom sibling"
        );
        assert_eq!(i.upstream_asn, Some(4808));
        assert_eq!(i.evidence.unattributed_after_border, 3);
        assert_eq!(i.confidence, 0.75);
    }

    #[test]
    fn siblings_are_one_organisation_and_kptc_space_is_inside() {
        // KPTC's 210.52.109.0/24 is originated by AS9929 (China Unicom) but
        // is a target prefix: a hop there is inside.
        let t = trace(&[(1, &["219.158.100.1"], &[]), (2, &["210.52.109.1"], &[])]);
        let i = run(&t);
        assert_eq!(i.upstream, "china-unicom");
        assert!(i.entered);
        assert_eq!(
            i.evidence.first_inside.as_ref().map(|h| h.asn),
            Some(Some(9929))
        );
    }

    #[test]
    fn unknown_space_gives_unknown_or_an_as_number() {
        let t = trace(&[(1, &["198.51.100.1"], &[]), (2, &["175.45.176.1"], &[])]);
        let i = run(&t);
        assert_eq!(
            (i.upstream.as_str(), i.upstream_asn, i.confidence),
            ("unknown", None, 0.0)
        );
        assert!(i.entered);
        let t = trace(&[(1, &["203.0.113.1"], &[]), (2, &["175.45.176.1"], &[])]);
        let lookup = Table(vec![("203.0.113.0/24".parse().expect("net"), 64511)]);
        let i = infer(&t, &Target::dprk(), &lookup, &Orgs::default());
        assert_eq!(i.upstream, "AS64511");
    }

    #[test]
    fn a_load_balanced_border_takes_the_majority_and_lists_the_rest() {
        let t = trace(&[
            (1, &["4.68.1.1"], &[]),
            (2, &["188.43.1.9", "219.158.100.1", "219.158.100.2"], &[]),
            (3, &["175.45.176.1"], &[]),
        ]);
        let i = run(&t);
        assert_eq!(i.upstream, "china-unicom");
        assert_eq!(i.evidence.also_at_border, vec!["transtelecom".to_string()]);
        assert_eq!(i.confidence, 0.76);
    }

    #[test]
    fn a_trace_without_a_header_uses_its_last_hop_as_target() {
        let mut t = trace(&[(1, &["219.158.100.1"], &[]), (2, &["175.45.177.10"], &[])]);
        t.target = None;
        let i = run(&t);
        assert_eq!(i.target, Some("175.45.177.10".parse().expect("ip")));
    }

    #[test]
    fn ipv6_and_an_empty_trace() {
        let t = trace(&[
            (1, &["2001:db8:219::1"], &[]),
            (2, &["2001:db8:176::1"], &[]),
        ]);
        assert_eq!(run(&t).upstream, "china-unicom");
        let i = run(&trace(&[]));
        assert_eq!((i.upstream.as_str(), i.entered), ("unknown", false));
    }

    fn with_asns(mut t: Trace, asns: &[(u8, &str, u32)]) -> Trace {
        for (ttl, addr, asn) in asns {
            if let Some(h) = t.hops.iter_mut().find(|h| h.ttl == *ttl) {
                h.asns.push((addr.parse().expect("ip"), *asn));
            }
        }
        t
    }

    #[test]
    fn an_as_printed_in_the_trace_names_the_upstream_when_the_tables_have_none() {
        // 203.0.113.7 is in no table; traceroute -A printed [AS4837].
        let t = with_asns(
            trace(&[
                (1, &["4.68.1.1"], &[]),
                (2, &["203.0.113.7"], &[]),
                (3, &["175.45.176.1"], &[]),
            ]),
            &[(2, "203.0.113.7", 4837)],
        );
        let i = run(&t);
        assert_eq!(
            (i.upstream.as_str(), i.upstream_asn),
            ("china-unicom", Some(4837))
        );
        let hop = i.evidence.last_foreign.expect("border");
        assert_eq!((hop.ttl, hop.asn_source), (2, Some(AsnSource::Trace)));
        // Less sure than the tables' word: 0.95 * 0.9.
        assert_eq!(i.confidence, 0.86);
        assert!(describe(&run(&t)).contains("(AS from the trace)"));
    }

    #[test]
    fn when_the_trace_and_the_tables_disagree_the_tables_win_and_both_are_reported() {
        let t = with_asns(
            trace(&[(1, &["188.43.1.9"], &[]), (2, &["175.45.176.1"], &[])]),
            &[(1, "188.43.1.9", 4837)],
        );
        let i = run(&t);
        assert_eq!(i.upstream, "transtelecom");
        assert_eq!(
            i.evidence.asn_conflicts,
            vec![AsnConflict {
                ttl: 1,
                addr: "188.43.1.9".parse().expect("ip"),
                table_asn: 20485,
                trace_asn: 4837,
            }]
        );
        let x = explain(&t, &ctx_parts().ctx());
        assert!(
            render_explained(&x, "t").contains("the tables say AS20485, the trace printed AS4837")
        );
    }

    struct Parts {
        target: Target,
        table: Table,
        orgs: Orgs,
        ixps: Ixps,
    }

    impl Parts {
        fn ctx(&self) -> Context<'_> {
            Context {
                target: &self.target,
                lookup: &self.table,
                orgs: &self.orgs,
                ixps: &self.ixps,
            }
        }
    }

    struct Ixps(Vec<(IpNet, &'static str)>);

    impl IxpLookup for Ixps {
        fn ixp(&self, addr: IpAddr) -> Option<String> {
            self.0
                .iter()
                .find(|(n, _)| n.contains(&addr))
                .map(|(_, s)| s.to_string())
        }
    }

    fn ctx_parts() -> Parts {
        let mut table = table();
        // An exchange LAN announced by the exchange's own AS.
        table
            .0
            .push(("80.249.208.0/21".parse().expect("net"), 1200));
        Parts {
            target: Target::dprk(),
            table,
            orgs: Orgs::default(),
            ixps: Ixps(vec![("80.249.208.0/21".parse().expect("net"), "AMS-IX")]),
        }
    }

    #[test]
    fn an_exchange_lan_announced_by_the_exchange_is_not_the_upstream() {
        let t = trace(&[
            (1, &["219.158.100.1"], &[]),
            (2, &["80.249.209.1"], &[]),
            (3, &["175.45.176.1"], &[]),
        ]);
        let parts = ctx_parts();
        // Without the IXP list the exchange's AS would be named.
        assert_eq!(run_with_table(&t, &parts.table).upstream, "AS1200");
        let x = explain(&t, &parts.ctx());
        assert_eq!(x.inference.upstream, "china-unicom");
        assert_eq!(
            x.inference.evidence.ixp_hops,
            vec!["2 80.249.209.1".to_string()]
        );
        assert_eq!(x.inference.evidence.unattributed_after_border, 1);
        let v = x.hops.iter().find(|v| v.ttl == 2).expect("hop 2");
        assert_eq!(v.place, Place::Unattributed);
        assert!(v.rule.contains("IXP peering LAN (AMS-IX)"), "{}", v.rule);
    }

    fn run_with_table(t: &Trace, table: &Table) -> Inference {
        infer(t, &Target::dprk(), table, &Orgs::default())
    }

    #[test]
    fn a_hidden_hop_answered_and_is_not_counted_as_silence() {
        let mut t = trace(&[
            (1, &["219.158.100.1"], &[]),
            (2, &[], &[]),
            (3, &["175.45.176.1"], &[]),
        ]);
        t.hops[1].hidden = true;
        let i = run(&t);
        assert_eq!(i.upstream, "china-unicom");
        assert_eq!(
            (
                i.evidence.silent_after_border,
                i.evidence.unattributed_after_border
            ),
            (0, 1)
        );
    }

    /// A border that answers `!X` and is followed by the silent hops the
    /// tool keeps printing until its maximum TTL had the confidence of a
    /// silent trace (0.5): judge by the last hop that answered.
    #[test]
    fn a_filtered_border_followed_by_silent_hops_keeps_the_filtered_confidence() {
        let t = trace(&[
            (1, &["4.68.1.1"], &[]),
            (2, &["219.158.100.1"], &["!X"]),
            (3, &[], &[]),
            (4, &[], &[]),
            (5, &[], &[]),
        ]);
        let i = run(&t);
        assert_eq!((i.upstream.as_str(), i.entered), ("china-unicom", false));
        assert_eq!(i.confidence, 0.7);
        assert_eq!(i.evidence.silent_after_border, 0);
    }

    #[test]
    fn unknown_answers_say_why_and_what_to_add() {
        let t = trace(&[(1, &["198.51.100.1"], &[]), (2, &["198.51.100.2"], &[])]);
        let i = run(&t);
        assert_eq!(i.upstream, "unknown");
        let note = i.note.expect("note");
        assert!(
            note.contains("no hop is in the target network 175.45.176.0/22"),
            "{note}"
        );
        assert!(note.contains("is `--target` right"), "{note}");
        assert!(note.contains("--asn-table"), "{note}");
        let t = trace(&[(1, &["198.51.100.1"], &[]), (2, &["175.45.176.9"], &[])]);
        let note = run(&t).note.expect("note");
        assert!(note.contains("enters the target"), "{note}");
        let note = run(&trace(&[(1, &[], &[])])).note.expect("note");
        assert!(note.contains("no hop answered"), "{note}");
    }

    #[test]
    fn a_target_given_as_an_as_is_entered_by_origin() {
        let t = trace(&[
            (1, &["4.68.1.1"], &[]),
            (2, &["188.43.1.9"], &[]),
            (3, &["219.158.100.1"], &[]),
        ]);
        let target = Target {
            prefixes: Vec::new(),
            asns: [4837].into_iter().collect(),
        };
        let i = infer(&t, &target, &table(), &Orgs::default());
        assert_eq!((i.upstream.as_str(), i.entered), ("transtelecom", true));
        assert_eq!(target.describe(), "AS4837");
    }

    #[test]
    fn explain_prints_every_hop_with_its_rule() {
        let mut t = trace(&[
            (1, &["192.168.1.1"], &[]),
            (2, &["219.158.100.1"], &[]),
            (3, &[], &[]),
            (4, &["175.45.176.1"], &[]),
        ]);
        t.hops[1].names.push((
            "219.158.100.1".parse().expect("ip"),
            "bj\u{1b}[2J.cu.example".into(),
        ));
        let x = explain(&t, &ctx_parts().ctx());
        let want = "\
t:1: trace to 175.45.176.71
  ttl  address        host name          asn       organisation  where         rule
  1    192.168.1.1    -                  -         -             unattributed  private, shared or reserved address: no attribution of its own
  2    219.158.100.1  bj?[2J.cu.example  AS4837    china-unicom  outside       AS4837 from the prefix table
  3    *              -                  -         -             silent        no answer
  4    175.45.176.1   -                  AS131279  star-jv       inside        in target prefix 175.45.176.0/22
  => 175.45.176.71: upstream china-unicom (AS4837), entered the target, confidence 0.85; last foreign hop 2 219.158.100.1; first inside hop 4 175.45.176.1; AS path AS4837 AS131279
";
        assert_eq!(render_explained(&x, "t:1"), want);
    }
}
