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

use crate::model::Trace;
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

    fn contains(&self, addr: IpAddr, asn: Option<u32>) -> bool {
        self.prefixes.iter().any(|p| p.contains(&addr))
            || asn.is_some_and(|a| self.asns.contains(&a))
    }
}

/// Addresses that never carry an attribution of their own: the one
/// definition both inference and DNS enrichment use.
pub use tumen_core::is_unattributable as unattributable;

/// A hop cited as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopRef {
    pub ttl: u8,
    pub addr: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// Why the answer is what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// hop (private, shared, IXP, unannounced).
    pub unattributed_after_border: u8,
    /// Annotation (`!X` ...) at the last responding hop, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_annotation: Option<String>,
    /// Other organisations answering at the last foreign hop (load
    /// balancing across upstreams at the border).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_at_border: Vec<String>,
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
}

/// What a responding address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Inside(Option<u32>),
    Foreign(u32),
    Unattributed,
}

fn classify(addr: IpAddr, target: &Target, lookup: &dyn AsnLookup) -> Class {
    let asn = if unattributable(addr) {
        None
    } else {
        lookup.asn(addr)
    };
    if target.contains(addr, asn) {
        return Class::Inside(asn);
    }
    match asn {
        Some(a) if !unattributable(addr) => Class::Foreign(a),
        _ => Class::Unattributed,
    }
}

/// Infers the upstream of one trace.
pub fn infer(trace: &Trace, target: &Target, lookup: &dyn AsnLookup, orgs: &Orgs) -> Inference {
    let classes: Vec<(u8, Vec<(IpAddr, Class)>)> = trace
        .hops
        .iter()
        .map(|h| {
            (
                h.ttl,
                h.addrs
                    .iter()
                    .map(|&a| (a, classify(a, target, lookup)))
                    .collect(),
            )
        })
        .collect();

    let first_inside = classes.iter().find_map(|(ttl, addrs)| {
        addrs.iter().find_map(|(a, c)| match c {
            Class::Inside(asn) => Some(HopRef {
                ttl: *ttl,
                addr: *a,
                asn: *asn,
            }),
            _ => None,
        })
    });
    let limit = first_inside.as_ref().map_or(u8::MAX, |h| h.ttl);

    let mut as_path: Vec<u32> = Vec::new();
    for (_, addrs) in &classes {
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
    let before: Vec<&(u8, Vec<(IpAddr, Class)>)> =
        classes.iter().filter(|(t, _)| *t < limit).collect();
    let mut silent = 0u8;
    let mut unattributed = 0u8;
    let mut border: Option<&(u8, Vec<(IpAddr, Class)>)> = None;
    for hop in before.iter().rev() {
        let foreign = hop.1.iter().any(|(_, c)| matches!(c, Class::Foreign(_)));
        if foreign {
            border = Some(hop);
            break;
        }
        if hop.1.is_empty() {
            silent = silent.saturating_add(1);
        } else {
            unattributed = unattributed.saturating_add(1);
        }
    }
    // Trailing silence after the border counts only up to the end of the
    // responding part of a trace that never entered.
    if first_inside.is_none() {
        let last_responding = classes
            .iter()
            .rev()
            .find(|(_, a)| !a.is_empty())
            .map(|(t, _)| *t);
        if let (Some(b), Some(lr)) = (border, last_responding) {
            silent = u8::try_from(
                classes
                    .iter()
                    .filter(|(t, a)| *t > b.0 && *t < lr && a.is_empty())
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

    let unknown = |first_inside, as_path, terminal_annotation| Inference {
        target: trace.effective_target(),
        upstream: "unknown".into(),
        upstream_asn: None,
        entered: false,
        confidence: 0.0,
        evidence: Evidence {
            last_foreign: None,
            first_inside,
            as_path,
            silent_after_border: silent,
            unattributed_after_border: unattributed,
            terminal_annotation,
            also_at_border: Vec::new(),
        },
    };
    let entered = first_inside.is_some();
    let Some((ttl, addrs)) = border else {
        let mut i = unknown(first_inside, as_path, terminal_annotation);
        i.entered = entered;
        return i;
    };
    // The border hop may have several addresses (load balancing): the
    // organisation most of them belong to wins, ties to the first seen.
    let foreign: Vec<(IpAddr, u32)> = addrs
        .iter()
        .filter_map(|(a, c)| match c {
            Class::Foreign(asn) => Some((*a, *asn)),
            _ => None,
        })
        .collect();
    let mut tally: Vec<(String, usize, IpAddr, u32)> = Vec::new();
    for (a, asn) in &foreign {
        let org = orgs.label(*asn);
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
        let mut i = unknown(first_inside, as_path, terminal_annotation);
        i.entered = entered;
        return i;
    };
    let also: Vec<String> = tally
        .iter()
        .filter(|t| t.0 != upstream)
        .map(|t| t.0.clone())
        .collect();

    let mut confidence: f64 = if entered {
        0.95
    } else if terminal_annotation.is_some() && before.last().is_some_and(|h| h.0 == *ttl) {
        // The border itself answered "administratively prohibited" (or
        // similar) and nothing after it: the classic filtered border.
        0.7
    } else {
        0.5
    };
    confidence -= 0.1 * f64::from(silent.min(3));
    confidence -= 0.1 * f64::from(unattributed.min(2));
    if !also.is_empty() {
        confidence *= 0.8;
    }
    Inference {
        target: trace.effective_target(),
        upstream,
        upstream_asn: Some(asn),
        entered,
        confidence: (confidence.clamp(0.05, 1.0) * 100.0).round() / 100.0,
        evidence: Evidence {
            last_foreign: Some(HopRef {
                ttl: *ttl,
                addr,
                asn: Some(asn),
            }),
            first_inside,
            as_path,
            silent_after_border: silent,
            unattributed_after_border: unattributed,
            terminal_annotation,
            also_at_border: also,
        },
    }
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
}
