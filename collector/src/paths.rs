//! Per (agent, /24) path state: the current upstream with hysteresis,
//! change events, reachability, and the shares derived from all paths.
//! Pure code over observations (no clock, no I/O): the server feeds it
//! inferences in the order the store commits them and persists the
//! resulting states, so a restart resumes exactly where it stopped.
//!
//! Rules (docs/collector.md, "Paths: how the collector decides"):
//! - The first attributed trace of a path sets its upstream (no change
//!   event: nothing changed, we just learnt it).
//! - After that the upstream changes only when `k` consecutive attributed
//!   traces agree on a different one; a trace agreeing with the current
//!   upstream resets the count. That change is one event, timed at the
//!   trace that completed the streak.
//! - Traces whose upstream is `unknown` (nothing foreign answered) do not
//!   vote; they still count for reachability.
//! - Observations older than the newest one already applied (a spool
//!   replayed out of order) are stored but do not move the state.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::infer::{Evidence, Inference};

/// An upstream as the metrics name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Organisation id, `AS<n>`, or `unknown`.
    pub name: String,
    pub asn: Option<u32>,
}

impl Upstream {
    pub fn of(i: &Inference) -> Self {
        Self {
            name: i.upstream.clone(),
            asn: i.upstream_asn,
        }
    }
}

/// The /24 (IPv4) or /48 (IPv6) a destination belongs to: the unit paths
/// are kept per, as the agent rounds them.
pub use tumen_core::unit_of;

/// One trace, as the path state sees it.
#[derive(Debug, Clone)]
pub struct TraceObservation<'a> {
    pub at_ms: u64,
    pub trace_id: &'a str,
    pub inference: &'a Inference,
    /// The trace's route at the AS level (the web view's paths graph).
    pub route: Option<&'a Route>,
}

/// A trace's route at the AS level: what the web view's paths graph
/// draws for a path (its latest trace).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Route {
    /// From the vantage point toward the destination, consecutive hops
    /// of one AS collapsed; `asn: None` = hops without attribution
    /// (private, shared, unannounced).
    pub hops: Vec<AsHop>,
    /// Did the destination answer?
    pub reached: bool,
    /// The TTL and fastest RTT of the destination's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_ttl: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_rtt_ms: Option<f64>,
}

/// Consecutive hops of one AS on a [`Route`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsHop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub first_ttl: u8,
    pub last_ttl: u8,
    /// The fastest answer at the segment's last TTL (its exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// The current upstream changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub from: Option<Upstream>,
    pub to: Upstream,
    pub at_ms: u64,
    pub trace_id: String,
    pub evidence: Evidence,
}

/// State of one (agent, /24) path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathState {
    pub current: Option<Upstream>,
    /// When the current upstream took over (the first trace that named
    /// it, or the trace that completed the streak).
    pub since_ms: Option<u64>,
    /// Evidence of the latest trace that agreed with `current`.
    pub evidence: Option<Evidence>,
    pub confidence: f64,
    /// A different upstream seen in the latest traces, and how many
    /// consecutive traces named it.
    pub candidate: Option<Upstream>,
    pub candidate_count: u32,
    /// Changes of the current upstream so far.
    pub changes: u64,
    /// The upstream before the latest change (`since_ms` is its time).
    #[serde(default)]
    pub previous: Option<Upstream>,
    pub last_trace_ms: Option<u64>,
    /// Did the latest trace enter the target?
    pub trace_entered: bool,
    pub last_ping_ms: Option<u64>,
    /// Did the latest ping get an answer?
    pub ping_ok: bool,
    /// The latest trace's route (for the paths graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
}

impl PathState {
    /// Forgets time marks later than `limit_ms` (left by an agent whose
    /// clock ran ahead, before the collector refused such records): with
    /// them, every later real trace would look older and be ignored, and
    /// the path would stay frozen. True when something was forgotten.
    pub fn forget_future(&mut self, limit_ms: u64) -> bool {
        let mut changed = false;
        for t in [&mut self.last_trace_ms, &mut self.last_ping_ms] {
            if t.is_some_and(|t| t > limit_ms) {
                *t = None;
                changed = true;
            }
        }
        if self.since_ms.is_some_and(|t| t > limit_ms) {
            self.since_ms = Some(limit_ms);
            changed = true;
        }
        changed
    }

    /// Applies one trace; returns the change it completes, if any.
    pub fn observe_trace(&mut self, obs: &TraceObservation<'_>, k: u32) -> Option<Change> {
        if self.last_trace_ms.is_some_and(|last| obs.at_ms < last) {
            return None;
        }
        let i = obs.inference;
        self.last_trace_ms = Some(obs.at_ms);
        self.trace_entered = i.entered;
        if let Some(r) = obs.route {
            self.route = Some(r.clone());
        }
        if i.upstream == "unknown" {
            return None;
        }
        let seen = Upstream::of(i);
        let Some(current) = &self.current else {
            self.current = Some(seen);
            self.since_ms = Some(obs.at_ms);
            self.evidence = Some(i.evidence.clone());
            self.confidence = i.confidence;
            return None;
        };
        if current.name == seen.name {
            // Same organisation; a sibling ASN at the border is not a change.
            self.current = Some(seen);
            self.evidence = Some(i.evidence.clone());
            self.confidence = i.confidence;
            self.candidate = None;
            self.candidate_count = 0;
            return None;
        }
        if self.candidate.as_ref().is_some_and(|c| c.name == seen.name) {
            self.candidate_count = self.candidate_count.saturating_add(1);
        } else {
            self.candidate = Some(seen.clone());
            self.candidate_count = 1;
        }
        if self.candidate_count < k.max(1) {
            return None;
        }
        let from = self.current.replace(seen.clone());
        self.previous.clone_from(&from);
        self.since_ms = Some(obs.at_ms);
        self.evidence = Some(i.evidence.clone());
        self.confidence = i.confidence;
        self.candidate = None;
        self.candidate_count = 0;
        self.changes = self.changes.saturating_add(1);
        Some(Change {
            from,
            to: seen,
            at_ms: obs.at_ms,
            trace_id: obs.trace_id.to_string(),
            evidence: i.evidence.clone(),
        })
    }

    /// Applies one ping result (`ok`: at least one answer).
    pub fn observe_ping(&mut self, at_ms: u64, ok: bool) {
        if self.last_ping_ms.is_some_and(|last| at_ms < last) {
            return;
        }
        self.last_ping_ms = Some(at_ms);
        self.ping_ok = ok;
    }

    /// Is the target reachable on this path? A trace that entered or a
    /// ping that was answered says yes (borders often filter one but not
    /// the other); `None` before anything was observed.
    pub fn reachable(&self) -> Option<bool> {
        let trace = self.last_trace_ms.map(|_| self.trace_entered);
        let ping = self.last_ping_ms.map(|_| self.ping_ok);
        match (trace, ping) {
            (None, None) => None,
            (t, p) => Some(t.unwrap_or(false) || p.unwrap_or(false)),
        }
    }
}

/// Key of a path: (agent, unit prefix).
pub type PathKey = (String, IpNet);

/// Fractions per upstream, summing to 1 over the paths counted.
pub type Shares = BTreeMap<String, f64>;

/// Shares per unit prefix, and over all paths (`None` key = "all").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ShareTable {
    pub per_prefix: BTreeMap<IpNet, Shares>,
    pub all: Shares,
}

fn fractions(counts: BTreeMap<String, usize>) -> Shares {
    let total: usize = counts.values().sum();
    counts
        .into_iter()
        .map(|(k, n)| (k, n as f64 / total.max(1) as f64))
        .collect()
}

/// Shares of upstreams among paths with a current upstream, for paths
/// whose agent `live` accepts (silent agents no longer count).
pub fn shares<'a>(
    paths: impl IntoIterator<Item = (&'a PathKey, &'a PathState)>,
    live: impl Fn(&str) -> bool,
) -> ShareTable {
    let mut per: BTreeMap<IpNet, BTreeMap<String, usize>> = BTreeMap::new();
    let mut all: BTreeMap<String, usize> = BTreeMap::new();
    for ((agent, prefix), state) in paths {
        let Some(up) = &state.current else { continue };
        if !live(agent) {
            continue;
        }
        *per.entry(*prefix)
            .or_default()
            .entry(up.name.clone())
            .or_default() += 1;
        *all.entry(up.name.clone()).or_default() += 1;
    }
    ShareTable {
        per_prefix: per.into_iter().map(|(p, c)| (p, fractions(c))).collect(),
        all: fractions(all),
    }
}

/// Per unit prefix, the fraction of live agents with an observation for
/// it whose latest trace or ping reached inside the target.
pub fn reachability<'a>(
    paths: impl IntoIterator<Item = (&'a PathKey, &'a PathState)>,
    live: impl Fn(&str) -> bool,
) -> BTreeMap<IpNet, f64> {
    let mut counts: BTreeMap<IpNet, (usize, usize)> = BTreeMap::new();
    for ((agent, prefix), state) in paths {
        let Some(ok) = state.reachable() else {
            continue;
        };
        if !live(agent) {
            continue;
        }
        let c = counts.entry(*prefix).or_default();
        c.1 += 1;
        if ok {
            c.0 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(p, (ok, n))| (p, ok as f64 / n as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::HopRef;

    fn inference(upstream: &str, asn: Option<u32>, entered: bool) -> Inference {
        Inference {
            target: "175.45.177.1".parse().ok(),
            upstream: upstream.into(),
            upstream_asn: asn,
            entered,
            confidence: 0.9,
            evidence: Evidence {
                last_foreign: asn.map(|a| HopRef {
                    ttl: 9,
                    addr: "219.158.39.54".parse().expect("addr"),
                    asn: Some(a),
                    asn_source: None,
                }),
                as_path: asn.into_iter().collect(),
                ..Evidence::default()
            },
            note: None,
        }
    }

    fn feed(state: &mut PathState, seq: &[(&str, Option<u32>)], k: u32) -> Vec<Change> {
        let mut out = Vec::new();
        for (n, (up, asn)) in seq.iter().enumerate() {
            let i = inference(up, *asn, true);
            let id = format!("t{n}");
            let at = 1000 * (state.last_trace_ms.unwrap_or(0) / 1000 + 1);
            let obs = TraceObservation {
                at_ms: at,
                trace_id: &id,
                inference: &i,
                route: None,
            };
            out.extend(state.observe_trace(&obs, k));
        }
        out
    }

    const CU: (&str, Option<u32>) = ("china-unicom", Some(4837));
    const CU2: (&str, Option<u32>) = ("china-unicom", Some(9929));
    const TTK: (&str, Option<u32>) = ("transtelecom", Some(20485));
    const UNK: (&str, Option<u32>) = ("unknown", None);

    #[test]
    fn the_first_trace_sets_the_upstream_without_an_event() {
        let mut s = PathState::default();
        assert!(feed(&mut s, &[CU], 3).is_empty());
        assert_eq!(
            s.current.as_ref().map(|u| u.name.as_str()),
            Some("china-unicom")
        );
        assert_eq!(s.changes, 0);
    }

    #[test]
    fn a_change_needs_k_consecutive_agreeing_traces() {
        let mut s = PathState::default();
        // Two odd traces between normal ones: no change.
        assert!(feed(&mut s, &[CU, TTK, TTK, CU, TTK, CU], 3).is_empty());
        assert_eq!(
            s.current.as_ref().map(|u| u.name.as_str()),
            Some("china-unicom")
        );
        assert_eq!(s.candidate, None);
        // Three in a row: one change, timed at the third.
        let changes = feed(&mut s, &[TTK, TTK, TTK, TTK], 3);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let c = &changes[0];
        assert_eq!(
            c.from.as_ref().map(|u| u.name.as_str()),
            Some("china-unicom")
        );
        assert_eq!(c.to.name, "transtelecom");
        assert_eq!(c.to.asn, Some(20485));
        assert_eq!(c.at_ms, 9000);
        assert_eq!(c.trace_id, "t2");
        assert_eq!(s.changes, 1);
        assert_eq!(s.since_ms, Some(9000));
    }

    #[test]
    fn unknown_traces_do_not_vote_or_break_a_streak() {
        let mut s = PathState::default();
        assert!(feed(&mut s, &[UNK, UNK], 2).is_empty());
        assert_eq!(s.current, None, "unknown never becomes the upstream");
        feed(&mut s, &[CU], 2);
        let changes = feed(&mut s, &[TTK, UNK, TTK], 2);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            s.current.as_ref().map(|u| u.name.as_str()),
            Some("transtelecom")
        );
    }

    #[test]
    fn a_sibling_asn_is_the_same_upstream() {
        let mut s = PathState::default();
        assert!(feed(&mut s, &[CU, CU2, CU2, CU2], 2).is_empty());
        assert_eq!(s.current.as_ref().and_then(|u| u.asn), Some(9929));
        assert_eq!(s.changes, 0);
    }

    #[test]
    fn k_of_one_changes_at_once_and_zero_is_treated_as_one() {
        for k in [0, 1] {
            let mut s = PathState::default();
            let changes = feed(&mut s, &[CU, TTK, CU], k);
            assert_eq!(changes.len(), 2, "k={k}");
        }
    }

    #[test]
    fn a_path_frozen_by_a_future_trace_is_thawed_by_forget_future() {
        let mut s = PathState::default();
        feed(&mut s, &[CU], 1);
        // A trace dated 2^64-1 ms (stored before records were checked).
        let i = inference("china-unicom", Some(4837), true);
        let obs = TraceObservation {
            at_ms: u64::MAX,
            trace_id: "future",
            inference: &i,
            route: None,
        };
        s.observe_trace(&obs, 1);
        let ttk = inference("transtelecom", Some(20485), true);
        let real = TraceObservation {
            at_ms: 5_000,
            trace_id: "real",
            inference: &ttk,
            route: None,
        };
        assert_eq!(s.observe_trace(&real, 1), None, "frozen: ignored");
        assert!(s.forget_future(10_000));
        assert!(!s.forget_future(10_000), "nothing left to forget");
        assert!(s.observe_trace(&real, 1).is_some(), "thawed: applied");
        assert_eq!(s.last_trace_ms, Some(5_000));
    }

    #[test]
    fn older_observations_do_not_move_the_state() {
        let mut s = PathState::default();
        feed(&mut s, &[CU], 1);
        let i = inference("transtelecom", Some(20485), true);
        let obs = TraceObservation {
            at_ms: 10,
            trace_id: "old",
            inference: &i,
            route: None,
        };
        assert_eq!(s.observe_trace(&obs, 1), None);
        assert_eq!(
            s.current.as_ref().map(|u| u.name.as_str()),
            Some("china-unicom")
        );
        assert_eq!(s.last_trace_ms, Some(1000));
    }

    #[test]
    fn reachability_takes_a_trace_that_entered_or_an_answered_ping() {
        let mut s = PathState::default();
        assert_eq!(s.reachable(), None);
        let i = inference("china-unicom", Some(4837), false);
        s.observe_trace(
            &TraceObservation {
                at_ms: 5,
                trace_id: "a",
                inference: &i,
                route: None,
            },
            3,
        );
        assert_eq!(s.reachable(), Some(false));
        s.observe_ping(6, true);
        assert_eq!(s.reachable(), Some(true));
        s.observe_ping(4, false);
        assert_eq!(s.reachable(), Some(true), "an older ping is ignored");
        s.observe_ping(7, false);
        assert_eq!(s.reachable(), Some(false));
    }

    #[test]
    fn shares_and_reachability_count_live_paths() {
        let p1: IpNet = "175.45.176.0/24".parse().expect("p");
        let p2: IpNet = "175.45.177.0/24".parse().expect("p");
        let mut paths: BTreeMap<PathKey, PathState> = BTreeMap::new();
        for (agent, prefix, up) in [
            ("a", p1, CU),
            ("b", p1, CU),
            ("c", p1, TTK),
            ("a", p2, TTK),
            ("b", p2, TTK),
            ("silent", p2, CU),
        ] {
            let mut s = PathState::default();
            feed(&mut s, &[up], 3);
            s.observe_ping(1, agent == "a");
            paths.insert((agent.to_string(), prefix), s);
        }
        let live = |a: &str| a != "silent";
        let t = shares(&paths, live);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(t.per_prefix[&p1]["china-unicom"], 2.0 / 3.0));
        assert!(close(t.per_prefix[&p1]["transtelecom"], 1.0 / 3.0));
        assert!(close(t.per_prefix[&p2]["transtelecom"], 1.0));
        assert!(!t.per_prefix[&p2].contains_key("china-unicom"));
        assert!(close(t.all["transtelecom"], 0.6));
        assert!(close(t.all["china-unicom"], 0.4));
        // Traces entered everywhere (feed uses entered = true).
        let r = reachability(&paths, live);
        assert!(close(r[&p1], 1.0) && close(r[&p2], 1.0));
        for s in paths.values_mut() {
            s.trace_entered = false;
        }
        let r = reachability(&paths, live);
        assert!(close(r[&p1], 1.0 / 3.0), "{r:?}");
        assert!(close(r[&p2], 0.5), "{r:?}");
    }

    #[test]
    fn units_are_slash_24_and_slash_48() {
        assert_eq!(
            unit_of("175.45.177.77".parse().expect("a")).to_string(),
            "175.45.177.0/24"
        );
        assert_eq!(
            unit_of("2001:db8:1:2::5".parse().expect("a")).to_string(),
            "2001:db8:1::/48"
        );
    }
}
