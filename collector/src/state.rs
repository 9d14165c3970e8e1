//! What the collector currently knows, and how an upload changes it.
//!
//! [`Live`] is the read model: every (agent, /24) path state and every
//! agent, as committed. The writer holds it behind a lock shared with
//! `/metrics` and the JSON API, loads it from the store at start, and
//! [`apply`]s each group of uploads to it: the store says which records
//! are new, `apply` works out what they do to the paths they touch
//! (hysteresis, change events) and to their agents, the writer stores
//! that in the same transaction, and [`Live::install`] makes it visible
//! once the commit returned. Pure: no clock, no I/O, no locks.

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use serde::Serialize;

use crate::paths::{self, Change, PathKey, PathState, ShareTable, TraceObservation};
use crate::pipeline::Upload;

/// An agent as the store and the API know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentInfo {
    pub name: String,
    pub first_seen_ms: u64,
    /// Collector time of the latest accepted upload.
    pub last_seen_ms: u64,
    pub traces: u64,
    pub pings: u64,
}

/// What the collector currently knows, shared with readers.
#[derive(Debug, Default)]
pub struct Live {
    pub paths: BTreeMap<PathKey, PathState>,
    pub agents: BTreeMap<String, AgentInfo>,
}

impl Live {
    /// Did `agent` upload within `silence_ms` of `now_ms`? Only live
    /// agents' paths count in shares and reachability and have series.
    pub fn is_live(&self, agent: &str, now_ms: u64, silence_ms: u64) -> bool {
        self.agents
            .get(agent)
            .is_some_and(|a| now_ms.saturating_sub(a.last_seen_ms) <= silence_ms)
    }

    /// Shares of upstreams per /24 and over all, among live agents' paths.
    pub fn shares(&self, now_ms: u64, silence_ms: u64) -> ShareTable {
        paths::shares(&self.paths, |a| self.is_live(a, now_ms, silence_ms))
    }

    /// Per /24, the fraction of live agents that reached inside.
    pub fn reachability(&self, now_ms: u64, silence_ms: u64) -> BTreeMap<IpNet, f64> {
        paths::reachability(&self.paths, |a| self.is_live(a, now_ms, silence_ms))
    }

    /// Forgets time marks after `limit_ms` in every path (left by an
    /// agent whose clock ran ahead, before such records were refused),
    /// so that later traces apply again; how many paths held one.
    pub fn thaw_future(&mut self, limit_ms: u64) -> usize {
        self.paths
            .values_mut()
            .map(|p| p.forget_future(limit_ms))
            .filter(|&t| t)
            .count()
    }

    /// Makes what [`apply`] worked out visible (after it was committed).
    pub fn install(&mut self, applied: Applied) {
        self.paths.extend(applied.paths);
        self.agents.extend(applied.agents);
    }
}

/// Which records of an upload the store had not seen before, in the
/// upload's order: only those count and move path state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fresh {
    pub traces: Vec<bool>,
    pub pings: Vec<bool>,
}

/// What a group of uploads does to the state, to store and then install.
#[derive(Debug, Default)]
pub struct Applied {
    /// The new state of every path the group touched.
    pub paths: HashMap<PathKey, PathState>,
    /// Every agent that uploaded, with its counts and last sighting.
    pub agents: HashMap<String, AgentInfo>,
    /// Upstream changes completed, in the order they happened.
    pub changes: Vec<(PathKey, Change)>,
    /// How many of `changes` each upload made, in the group's order.
    pub changes_per_upload: Vec<usize>,
}

/// Applies uploads, in order, to the state `live` holds, without changing
/// it: each upload makes its agent seen at its arrival; each fresh
/// record counts for its agent; each fresh trace and ping inside the
/// target is observed on its path (a trace with hysteresis `k`, which may
/// complete a change).
pub fn apply(live: &Live, uploads: &[(&Upload, &Fresh)], k: u32) -> Applied {
    let mut out = Applied {
        changes_per_upload: Vec::with_capacity(uploads.len()),
        ..Applied::default()
    };
    for (u, fresh) in uploads {
        let mut changes = 0;
        let agent = out.agents.entry(u.agent.clone()).or_insert_with(|| {
            live.agents.get(&u.agent).cloned().unwrap_or(AgentInfo {
                name: u.agent.clone(),
                first_seen_ms: u.received_ms,
                last_seen_ms: u.received_ms,
                traces: 0,
                pings: 0,
            })
        });
        agent.last_seen_ms = agent.last_seen_ms.max(u.received_ms);
        for (t, _) in u.traces.iter().zip(&fresh.traces).filter(|(_, &new)| new) {
            agent.traces += 1;
            if !t.in_target {
                continue;
            }
            let key = (u.agent.clone(), t.unit);
            let state = out
                .paths
                .entry(key.clone())
                .or_insert_with(|| live.paths.get(&key).cloned().unwrap_or_default());
            let obs = TraceObservation {
                at_ms: t.record.start_ms,
                trace_id: &t.record.id,
                inference: &t.inference,
                route: Some(&t.route),
            };
            if let Some(c) = state.observe_trace(&obs, k) {
                changes += 1;
                out.changes.push((key, c));
            }
        }
        for (p, _) in u.pings.iter().zip(&fresh.pings).filter(|(_, &new)| new) {
            agent.pings += 1;
            if !p.in_target {
                continue;
            }
            let key = (u.agent.clone(), p.unit);
            let state = out
                .paths
                .entry(key.clone())
                .or_insert_with(|| live.paths.get(&key).cloned().unwrap_or_default());
            state.observe_ping(p.record.start_ms, p.record.received > 0);
        }
        out.changes_per_upload.push(changes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::Inference;
    use crate::paths::Upstream;
    use crate::pipeline::{PingItem, TraceItem};

    const TRACE: &str = r#"{"kind":"trace","schema":1,"id":"ID","agent":"vp-fra","start_ms":START,"duration_ms":12.5,"src":"192.0.2.2","dst":"DST","prefix":"PREFIX","protocol":"udp","port":33434,"mode":"full","first_ttl":1,"max_ttl":30,"flows":1,"stop":"unreachable","reached":false,"probes_sent":3,"hops":[]}"#;
    const PING: &str = r#"{"kind":"ping","schema":1,"id":"ID","agent":"vp-fra","start_ms":START,"dst":"198.18.177.15","prefix":"198.18.177.0/24","sent":3,"received":RECEIVED,"loss_ratio":0.0}"#;

    fn unit() -> IpNet {
        "198.18.177.0/24".parse().expect("unit")
    }

    fn trace(id: &str, start_ms: u64, upstream: &str, in_target: bool) -> TraceItem {
        let (dst, prefix) = if in_target {
            ("198.18.177.15", "198.18.177.0/24")
        } else {
            ("203.0.113.7", "203.0.113.0/24")
        };
        let line = TRACE
            .replace("ID", id)
            .replace("START", &start_ms.to_string())
            .replace("DST", dst)
            .replace("PREFIX", prefix);
        let tumen_wire::Record::Trace(record) =
            tumen_wire::Record::from_json_line(&line).expect("trace")
        else {
            panic!("not a trace")
        };
        let inference: Inference = serde_json::from_value(serde_json::json!({
            "target": dst, "upstream": upstream, "upstream_asn": 4837,
            "entered": true, "confidence": 0.9,
            "evidence": {"last_foreign": null, "first_inside": null, "as_path": [],
                         "silent_after_border": 0, "unattributed_after_border": 0}
        }))
        .expect("inference");
        TraceItem {
            unit: crate::paths::unit_of(record.dst),
            record: Box::new(record),
            line: line.into_bytes(),
            inference,
            route: Default::default(),
            in_target,
        }
    }

    fn ping(id: &str, start_ms: u64, received: u32) -> PingItem {
        let line = PING
            .replace("ID", id)
            .replace("START", &start_ms.to_string())
            .replace("RECEIVED", &received.to_string());
        let tumen_wire::Record::Ping(record) =
            tumen_wire::Record::from_json_line(&line).expect("ping")
        else {
            panic!("not a ping")
        };
        PingItem {
            unit: unit(),
            record,
            line: line.into_bytes(),
            in_target: true,
        }
    }

    fn upload(received_ms: u64, traces: Vec<TraceItem>, pings: Vec<PingItem>) -> Upload {
        Upload {
            agent: "vp-fra".into(),
            received_ms,
            traces,
            pings,
        }
    }

    fn all_fresh(u: &Upload) -> Fresh {
        Fresh {
            traces: vec![true; u.traces.len()],
            pings: vec![true; u.pings.len()],
        }
    }

    #[test]
    fn only_fresh_records_count_and_only_those_inside_the_target_move_paths() {
        let live = Live::default();
        let u = upload(
            1_000,
            vec![
                trace("t1", 10, "china-unicom", true),
                trace("t2", 20, "transtelecom", true),
                trace("t3", 30, "transtelecom", false),
            ],
            vec![ping("p1", 40, 2), ping("p2", 50, 0)],
        );
        let fresh = Fresh {
            traces: vec![true, false, true],
            pings: vec![true, false],
        };
        let a = apply(&live, &[(&u, &fresh)], 1);
        let agent = &a.agents["vp-fra"];
        assert_eq!((agent.traces, agent.pings), (2, 1), "fresh ones only");
        assert_eq!((agent.first_seen_ms, agent.last_seen_ms), (1_000, 1_000));
        assert_eq!(a.paths.len(), 1, "the outside trace touches no path");
        let s = &a.paths[&("vp-fra".to_string(), unit())];
        assert_eq!(
            s.current.as_ref().map(|u| u.name.as_str()),
            Some("china-unicom")
        );
        assert_eq!(
            (s.last_trace_ms, s.last_ping_ms, s.ping_ok),
            (Some(10), Some(40), true)
        );
        assert!(a.changes.is_empty());
        assert_eq!(a.changes_per_upload, [0]);
        assert!(live.paths.is_empty(), "apply changes nothing");
    }

    #[test]
    fn hysteresis_runs_across_the_uploads_of_a_group_in_order() {
        let mut live = Live::default();
        let first = upload(1_000, vec![trace("t1", 10, "china-unicom", true)], vec![]);
        let a = apply(&live, &[(&first, &all_fresh(&first))], 2);
        live.install(a);
        let u1 = upload(2_000, vec![trace("t2", 20, "transtelecom", true)], vec![]);
        let u2 = upload(1_500, vec![trace("t3", 30, "transtelecom", true)], vec![]);
        let a = apply(&live, &[(&u1, &all_fresh(&u1)), (&u2, &all_fresh(&u2))], 2);
        assert_eq!(a.changes_per_upload, [0, 1]);
        let (key, c) = &a.changes[0];
        assert_eq!(key, &("vp-fra".to_string(), unit()));
        assert_eq!(
            (
                c.from.as_ref().map(|u| u.name.as_str()),
                c.to.name.as_str(),
                c.at_ms
            ),
            (Some("china-unicom"), "transtelecom", 30)
        );
        assert_eq!(c.trace_id, "t3");
        // An upload that arrived with an older clock does not move the
        // agent's last sighting back.
        assert_eq!(a.agents["vp-fra"].last_seen_ms, 2_000);
        assert_eq!(a.agents["vp-fra"].first_seen_ms, 1_000);
        assert_eq!(a.agents["vp-fra"].traces, 3);
        live.install(a);
        let s = &live.paths[&("vp-fra".to_string(), unit())];
        assert_eq!(
            s.current,
            Some(Upstream {
                name: "transtelecom".into(),
                asn: Some(4837)
            })
        );
        assert_eq!(s.changes, 1);
    }

    #[test]
    fn liveness_shares_and_reachability_follow_the_silence() {
        let mut live = Live::default();
        let u = upload(1_000, vec![trace("t1", 10, "china-unicom", true)], vec![]);
        let a = apply(&live, &[(&u, &all_fresh(&u))], 2);
        live.install(a);
        assert!(live.is_live("vp-fra", 1_500, 500));
        assert!(!live.is_live("vp-fra", 1_501, 500));
        assert!(!live.is_live("vp-sgp", 1_000, 500));
        assert_eq!(live.shares(1_500, 500).all["china-unicom"], 1.0);
        assert_eq!(live.reachability(1_500, 500)[&unit()], 1.0);
        assert!(live.shares(1_501, 500).all.is_empty());
        assert!(live.reachability(1_501, 500).is_empty());
        // A path frozen in the future thaws.
        assert_eq!(live.thaw_future(9), 1);
        assert_eq!(live.thaw_future(9), 0);
    }
}
