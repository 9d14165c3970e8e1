//! What the web view shows, computed from the read model, the store and
//! the control-plane model: the Now table, the shares timeline (replayed
//! from stored change events), and the traces before and after a change.
//! Pure functions over their inputs (the handlers fetch, these compute),
//! so that they are tested without a server.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::IpNet;
use serde::Serialize;

use crate::paths::{PathKey, PathState, Shares};
use crate::state::Live;
use crate::store::{EventRow, StoredTrace};

/// One /24 of the Now view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NowRow {
    pub prefix: String,
    /// Shares among live vantage points' paths (the data plane).
    pub data: Shares,
    /// Shares among feeding BGP peers' routes covering the /24 (`None`
    /// when no BGP source is configured).
    pub bgp: Option<Shares>,
    /// Fraction of live vantage points whose latest probe got inside.
    pub reachable: Option<f64>,
    /// Live vantage points with a path to the /24.
    pub vps: usize,
    /// The latest upstream change of a live path to the /24.
    pub last_change_ms: Option<u64>,
}

/// The Now view: every /24, and all of them together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Now {
    pub generated_ms: u64,
    pub rows: Vec<NowRow>,
    pub all: NowRow,
    /// The colour class of each upstream named (see `chart::Palette`).
    pub classes: BTreeMap<String, &'static str>,
}

/// The Now view of `live` at `now_ms` (`bgp`: the control plane's shares
/// for a /24 and over all, when a BGP source is configured).
pub fn now(
    live: &Live,
    now_ms: u64,
    silence_ms: u64,
    bgp: Option<&dyn Fn(&IpNet) -> Shares>,
    bgp_all: Option<Shares>,
) -> Now {
    let is_live = |a: &str| live.is_live(a, now_ms, silence_ms);
    let table = live.shares(now_ms, silence_ms);
    let reach = live.reachability(now_ms, silence_ms);
    let mut vps: BTreeMap<IpNet, usize> = BTreeMap::new();
    let mut last: BTreeMap<IpNet, u64> = BTreeMap::new();
    let mut all_vps = BTreeSet::new();
    for ((agent, unit), s) in &live.paths {
        if !is_live(agent) {
            continue;
        }
        *vps.entry(*unit).or_default() += 1;
        all_vps.insert(agent.as_str());
        if let (Some(since), true) = (s.since_ms, s.changes > 0) {
            let e = last.entry(*unit).or_default();
            *e = (*e).max(since);
        }
    }
    let units: BTreeSet<IpNet> = vps.keys().chain(table.per_prefix.keys()).copied().collect();
    let rows: Vec<NowRow> = units
        .iter()
        .map(|u| NowRow {
            prefix: u.to_string(),
            data: table.per_prefix.get(u).cloned().unwrap_or_default(),
            bgp: bgp.map(|f| f(u)),
            reachable: reach.get(u).copied(),
            vps: vps.get(u).copied().unwrap_or(0),
            last_change_ms: last.get(u).copied(),
        })
        .collect();
    let reach_all = {
        let v: Vec<f64> = reach.values().copied().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let all = NowRow {
        prefix: "all".into(),
        data: table.all.clone(),
        bgp: bgp_all,
        reachable: reach_all,
        vps: all_vps.len(),
        last_change_ms: last.values().max().copied(),
    };
    let names = rows
        .iter()
        .chain(std::iter::once(&all))
        .flat_map(|r| r.data.keys().chain(r.bgp.iter().flat_map(|b| b.keys())))
        .map(String::as_str);
    let palette = super::chart::Palette::new(names.clone());
    let classes = names
        .map(|n| (n.to_string(), palette.class(n)))
        .collect::<BTreeMap<_, _>>();
    Now {
        generated_ms: now_ms,
        rows,
        all,
        classes,
    }
}

/// A fingerprint of the live paths' routes at the AS level: changes when
/// the paths graph would (a route's ASes, reachability, the upstream, an
/// agent going silent or coming back).
pub fn routes_fingerprint(
    paths: &BTreeMap<PathKey, PathState>,
    live: &dyn Fn(&str) -> bool,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for ((agent, unit), s) in paths {
        if !live(agent) {
            continue;
        }
        agent.hash(&mut h);
        unit.hash(&mut h);
        s.current.as_ref().map(|u| &u.name).hash(&mut h);
        if let Some(r) = &s.route {
            r.reached.hash(&mut h);
            for hop in &r.hops {
                hop.asn.hash(&mut h);
            }
        }
    }
    h.finish()
}

/// Per upstream, (time, share) steps.
pub type ShareSteps = BTreeMap<String, Vec<(u64, f64)>>;

/// A step of the replay: (time, (agent, /24), the new upstream, the
/// event if it is one).
type Step<'a> = (u64, (String, String), String, Option<&'a EventRow>);

/// Upstream shares over time, replayed from change events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Per /24 (and `None` = all): per upstream, (time, share) steps.
    pub series: BTreeMap<Option<IpNet>, ShareSteps>,
    /// Events within the range, oldest first.
    pub events: Vec<EventRow>,
}

/// Replays the shares of every path from `from_ms` to `until_ms`: each
/// path's upstream at `from_ms` is its current one with every later
/// event undone (`events`: all events after `from_ms`, any order), then
/// the events in range apply in time order. Paths count whether or not
/// their agent is live (history keeps what was measured).
pub fn timeline(
    paths: &BTreeMap<PathKey, PathState>,
    first_seen: &dyn Fn(&str) -> Option<u64>,
    events: &[EventRow],
    prefix: Option<IpNet>,
    from_ms: u64,
    until_ms: u64,
) -> Timeline {
    let mut sorted: Vec<&EventRow> = events
        .iter()
        .filter(|e| e.at_ms > from_ms)
        .filter(|e| prefix.is_none_or(|p| e.prefix == p.to_string()))
        .collect();
    sorted.sort_by_key(|e| (e.at_ms, e.id));
    // The state at from_ms: undo the events newest first. A path that
    // appeared after from_ms (its first trace sets it, with no event)
    // joins when it appeared.
    let mut state: HashMap<(String, String), Option<String>> = HashMap::new();
    let mut appear: Vec<(u64, (String, String), String)> = Vec::new();
    for ((agent, unit), s) in paths {
        if prefix.is_some_and(|p| p != *unit) {
            continue;
        }
        let key = (agent.clone(), unit.to_string());
        let Some(cur) = s.current.as_ref().map(|u| u.name.clone()) else {
            continue;
        };
        match s.since_ms {
            Some(t) if t > from_ms && s.changes == 0 && s.previous.is_none() => {
                state.insert(key.clone(), None);
                appear.push((t, key, cur));
            }
            _ => {
                state.insert(key, Some(cur));
            }
        }
    }
    for e in sorted.iter().rev() {
        state.insert((e.agent.clone(), e.prefix.clone()), e.from_upstream.clone());
    }
    // No path is older than its agent: one that changed since, seen first
    // after from_ms, joins when its agent was first seen.
    for (key, up) in state.iter_mut() {
        if let (Some(t), Some(u)) = (first_seen(&key.0).filter(|&t| t > from_ms), up.clone()) {
            if !appear.iter().any(|(_, k, _)| k == key) {
                appear.push((t, key.clone(), u));
                *up = None;
            }
        }
    }
    // Steps in time order: (time, path, new upstream, the event if any).
    let mut steps: Vec<Step<'_>> = sorted
        .iter()
        .map(|e| {
            (
                e.at_ms,
                (e.agent.clone(), e.prefix.clone()),
                e.to_upstream.clone(),
                Some(*e),
            )
        })
        .chain(appear.into_iter().map(|(t, k, u)| (t, k, u, None)))
        .collect();
    steps.sort_by_key(|s| (s.0, s.3.map(|e| e.id)));
    // Counts per /24 (and `None`: all) and upstream, kept by ±1 as the
    // steps apply; only the /24s a step touched are recorded again.
    let mut out = Timeline::default();
    let mut units: HashMap<String, Option<IpNet>> = HashMap::new();
    let mut unit_of = |u: &str| *units.entry(u.to_string()).or_insert_with(|| u.parse().ok());
    let mut counts: HashMap<Option<IpNet>, BTreeMap<String, usize>> = HashMap::new();
    let add = |counts: &mut HashMap<Option<IpNet>, BTreeMap<String, usize>>,
               unit: Option<IpNet>,
               up: &str,
               delta: isize| {
        for k in [unit, None] {
            let c = counts.entry(k).or_default();
            let n = c.entry(up.to_string()).or_default();
            *n = n.saturating_add_signed(delta);
            if *n == 0 {
                c.remove(up);
            }
        }
    };
    for ((_, unit), up) in &state {
        if let Some(up) = up {
            add(&mut counts, unit_of(unit), up, 1);
        }
    }
    let emit = |out: &mut Timeline,
                counts: &HashMap<Option<IpNet>, BTreeMap<String, usize>>,
                k: Option<IpNet>,
                at: u64| {
        let empty = BTreeMap::new();
        let c = counts.get(&k).unwrap_or(&empty);
        let total: usize = c.values().sum();
        let series = out.series.entry(k).or_default();
        for n in c.keys() {
            if !series.contains_key(n) {
                series.insert(n.clone(), Vec::new());
            }
        }
        for (n, pts) in series.iter_mut() {
            let share = if total == 0 {
                0.0
            } else {
                c.get(n).copied().unwrap_or(0) as f64 / total as f64
            };
            if pts.last().is_none_or(|&(_, s)| (s - share).abs() > 1e-12) {
                pts.push((at, share));
            }
        }
    };
    let mut first: Vec<Option<IpNet>> = counts.keys().copied().collect();
    first.sort();
    for k in first {
        emit(&mut out, &counts, k, from_ms);
    }
    let mut events = Vec::new();
    let mut i = 0;
    while i < steps.len() && steps[i].0 <= until_ms {
        let at = steps[i].0;
        let mut touched = BTreeSet::new();
        while i < steps.len() && steps[i].0 == at {
            let (_, key, to, ev) = &steps[i];
            let unit = unit_of(&key.1);
            let old = state.insert(key.clone(), Some(to.clone())).flatten();
            if old.as_deref() != Some(to.as_str()) {
                if let Some(o) = &old {
                    add(&mut counts, unit, o, -1);
                }
                add(&mut counts, unit, to, 1);
                touched.insert(unit);
            }
            if let Some(e) = ev {
                events.push((*e).clone());
            }
            i += 1;
        }
        if !touched.is_empty() {
            touched.insert(None);
        }
        for k in touched {
            emit(&mut out, &counts, k, at);
        }
    }
    out.events = events;
    if prefix.is_some() {
        out.series.retain(|k, _| k.is_some());
    }
    out
}

/// The traces of one vantage point around a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeforeAfter {
    pub agent: String,
    pub before: Option<StoredTrace>,
    pub after: Option<StoredTrace>,
}

/// For each vantage point that traced the /24 in `window` (oldest first),
/// the trace just before the change at `at_ms` and the one just after
/// (at or later). For the agent whose path changed, "before" is its
/// latest trace that did not yet name the new upstream (the streak that
/// completed the change is skipped: those already showed the new path).
pub fn before_after(
    window: &[StoredTrace],
    agent: &str,
    to_upstream: &str,
    at_ms: u64,
) -> Vec<BeforeAfter> {
    let mut per: BTreeMap<&str, BeforeAfter> = BTreeMap::new();
    for t in window {
        let e = per.entry(t.agent.as_str()).or_insert_with(|| BeforeAfter {
            agent: t.agent.clone(),
            before: None,
            after: None,
        });
        if t.start_ms < at_ms {
            let counts = t.agent != agent || t.upstream != to_upstream;
            if counts {
                e.before = Some(t.clone());
            }
        } else if e.after.is_none() {
            e.after = Some(t.clone());
        }
    }
    // The changing agent first, then by name.
    let mut out: Vec<BeforeAfter> = per.into_values().collect();
    out.sort_by_key(|b| (b.agent != agent, b.agent.clone()));
    out
}

/// A trace's hops as the change detail shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopRow {
    pub ttl: u8,
    pub addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub asn: Option<u32>,
    pub org: Option<String>,
    pub rtt_ms: Option<f64>,
}

/// Hop rows of a record line: per TTL each distinct answering address
/// (fastest RTT), attributed by `asn_of` and named by `org_of`/`ptr`;
/// a TTL nobody answered is one row without an address.
pub fn hop_rows(
    line: &str,
    asn_of: &dyn Fn(std::net::IpAddr) -> Option<u32>,
    org_of: &dyn Fn(u32) -> Option<String>,
    ptr: &dyn Fn(std::net::IpAddr) -> Option<String>,
) -> Result<Vec<HopRow>, String> {
    let rec = match tumen_wire::Record::from_json_line(line) {
        Ok(tumen_wire::Record::Trace(t)) => t,
        Ok(_) => return Err("not a trace record".into()),
        Err(e) => return Err(e.to_string()),
    };
    let mut per: BTreeMap<u8, Vec<(std::net::IpAddr, f64)>> = BTreeMap::new();
    for h in &rec.hops {
        let v = per.entry(h.ttl).or_default();
        for r in &h.replies {
            match v.iter_mut().find(|(a, _)| *a == r.addr) {
                Some((_, rtt)) => *rtt = rtt.min(r.rtt_ms),
                None => v.push((r.addr, r.rtt_ms)),
            }
        }
    }
    let mut out = Vec::new();
    for (ttl, addrs) in per {
        if addrs.is_empty() {
            out.push(HopRow {
                ttl,
                addr: None,
                name: None,
                asn: None,
                org: None,
                rtt_ms: None,
            });
        }
        for (a, rtt) in addrs {
            let asn = if crate::infer::unattributable(a) {
                None
            } else {
                asn_of(a)
            };
            out.push(HopRow {
                ttl,
                addr: Some(a.to_string()),
                name: ptr(a),
                asn,
                org: asn.and_then(org_of),
                rtt_ms: rtt.is_finite().then_some(rtt),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::Upstream;

    fn unit(s: &str) -> IpNet {
        s.parse().expect("unit")
    }

    fn state(up: &str, since: u64, changes: u64) -> PathState {
        PathState {
            current: Some(Upstream {
                name: up.into(),
                asn: None,
            }),
            since_ms: Some(since),
            changes,
            ..PathState::default()
        }
    }

    fn event(id: i64, agent: &str, prefix: &str, at: u64, from: &str, to: &str) -> EventRow {
        EventRow {
            id,
            agent: agent.into(),
            prefix: prefix.into(),
            at_ms: at,
            from_upstream: Some(from.into()),
            from_asn: None,
            to_upstream: to.into(),
            to_asn: None,
            trace_id: format!("t{id}"),
            evidence: serde_json::Value::Null,
        }
    }

    #[test]
    fn now_puts_both_planes_side_by_side_and_counts_only_live_agents() {
        let p = unit("198.18.177.0/24");
        let mut live = Live::default();
        for (a, up, seen) in [
            ("a", "china-unicom", 1000),
            ("b", "transtelecom", 1000),
            ("gone", "x", 1),
        ] {
            live.paths
                .insert((a.to_string(), p), state(up, 10, u64::from(a == "b")));
            live.agents.insert(
                a.to_string(),
                crate::state::AgentInfo {
                    name: a.into(),
                    first_seen_ms: 1,
                    last_seen_ms: seen,
                    traces: 1,
                    pings: 0,
                },
            );
        }
        let bgp = |_: &IpNet| Shares::from([("transtelecom".to_string(), 1.0)]);
        let n = now(&live, 1000, 100, Some(&bgp), Some(bgp(&p)));
        assert_eq!(n.rows.len(), 1);
        let r = &n.rows[0];
        assert_eq!(r.vps, 2, "the silent agent does not count");
        assert_eq!(r.data["china-unicom"], 0.5);
        assert_eq!(r.bgp.as_ref().map(|b| b["transtelecom"]), Some(1.0));
        assert_eq!(r.last_change_ms, Some(10), "b's change");
        assert_eq!(n.classes["china-unicom"], "up-0");
        assert_eq!(n.classes["transtelecom"], "up-1");
        let page = super::super::pages::now_view(&n, true, &[]).into_string();
        assert!(page.contains("Control plane (BGP)"), "{page}");
        assert!(
            page.contains(r#"<td data-field="bgp" data-label="Control plane (BGP)">"#),
            "{page}"
        );
        let without = now(&live, 1000, 100, None, None);
        assert_eq!(without.rows[0].bgp, None);
    }

    #[test]
    fn the_timeline_undoes_later_events_then_replays_the_range() {
        let p = "198.18.177.0/24";
        let mut paths = BTreeMap::new();
        // a: cu -> ttk at 200 -> cu at 400 (now cu); b: cu throughout.
        paths.insert(("a".to_string(), unit(p)), state("china-unicom", 400, 2));
        paths.insert(("b".to_string(), unit(p)), state("china-unicom", 50, 0));
        let events = vec![
            event(2, "a", p, 400, "transtelecom", "china-unicom"),
            event(1, "a", p, 200, "china-unicom", "transtelecom"),
        ];
        let t = timeline(&paths, &|_| None, &events, Some(unit(p)), 100, 300);
        let s = &t.series[&Some(unit(p))];
        assert_eq!(s["china-unicom"], [(100, 1.0), (200, 0.5)]);
        assert_eq!(s["transtelecom"], [(200, 0.5)], "absent (0) before");
        assert_eq!(t.events.len(), 1, "only the event in range");
        assert_eq!(t.events[0].id, 1);
        // Over the whole time, with "all".
        let t = timeline(&paths, &|_| None, &events, None, 0, 1000);
        let all = &t.series[&None];
        assert_eq!(all["china-unicom"], [(0, 1.0), (200, 0.5), (400, 1.0)]);
        assert_eq!(t.events.len(), 2);
    }

    #[test]
    fn a_path_that_appeared_later_is_absent_before() {
        let p = "198.18.177.0/24";
        let mut paths = BTreeMap::new();
        paths.insert(("a".to_string(), unit(p)), state("china-unicom", 10, 0));
        paths.insert(("late".to_string(), unit(p)), state("transtelecom", 500, 0));
        let t = timeline(&paths, &|_| None, &[], Some(unit(p)), 100, 1000);
        let s = &t.series[&Some(unit(p))];
        assert_eq!(s["china-unicom"], [(100, 1.0), (500, 0.5)]);
        assert_eq!(s["transtelecom"], [(500, 0.5)], "joins when it appeared");
        let t = timeline(&paths, &|_| None, &[], Some(unit(p)), 100, 400);
        assert!(!t.series[&Some(unit(p))].contains_key("transtelecom"));
        // A path that changed (its first trace made no event) is no older
        // than its agent, first seen at 50.
        let mut paths = BTreeMap::new();
        paths.insert(("a".to_string(), unit(p)), state("china-unicom", 10, 1));
        let t = timeline(
            &paths,
            &|a| (a == "a").then_some(50),
            &[],
            Some(unit(p)),
            0,
            400,
        );
        assert_eq!(t.series[&Some(unit(p))]["china-unicom"], [(50, 1.0)]);
    }

    fn stored(agent: &str, at: u64, up: &str) -> StoredTrace {
        StoredTrace {
            agent: agent.into(),
            id: format!("{agent}-{at}"),
            prefix: "198.18.177.0/24".into(),
            dst: "198.18.177.1".into(),
            start_ms: at,
            upstream: up.into(),
            upstream_asn: None,
            entered: true,
            confidence: 1.0,
            line: String::new(),
        }
    }

    #[test]
    fn before_skips_the_streak_that_completed_the_change() {
        let w = vec![
            stored("a", 10, "china-unicom"),
            stored("b", 11, "china-unicom"),
            stored("a", 20, "transtelecom"), // the streak's first
            stored("b", 21, "china-unicom"),
            stored("a", 30, "transtelecom"), // completes the change
            stored("b", 31, "china-unicom"),
            stored("a", 40, "transtelecom"),
        ];
        let ba = before_after(&w, "a", "transtelecom", 30);
        assert_eq!(ba.len(), 2);
        assert_eq!(ba[0].agent, "a", "the changing agent first");
        assert_eq!(ba[0].before.as_ref().map(|t| t.start_ms), Some(10));
        assert_eq!(ba[0].after.as_ref().map(|t| t.start_ms), Some(30));
        assert_eq!(ba[1].before.as_ref().map(|t| t.start_ms), Some(21));
        assert_eq!(ba[1].after.as_ref().map(|t| t.start_ms), Some(31));
    }

    #[test]
    fn hop_rows_attribute_each_address_and_refuse_what_is_not_a_trace() {
        let line = r#"{"kind":"trace","schema":1,"id":"00112233445566778899aabbccddeeff","agent":"vp","start_ms":1,"duration_ms":1.0,"src":"192.0.2.2","dst":"198.18.177.15","prefix":"198.18.177.0/24","protocol":"udp","port":33434,"mode":"full","first_ttl":1,"max_ttl":30,"flows":1,"stop":"completed","reached":true,"probes_sent":3,"hops":[{"ttl":1,"flow":0,"sent":1,"replies":[{"addr":"10.0.0.1","rtt_ms":0.5,"kind":"time_exceeded","icmp_type":11,"icmp_code":0}]},{"ttl":2,"flow":0,"sent":1,"replies":[]},{"ttl":3,"flow":0,"sent":1,"replies":[{"addr":"203.0.113.9","rtt_ms":3.5,"kind":"time_exceeded","icmp_type":11,"icmp_code":0},{"addr":"203.0.113.9","rtt_ms":2.5,"kind":"time_exceeded","icmp_type":11,"icmp_code":0}]}]}"#;
        let rows = hop_rows(
            line,
            &|_| Some(4837),
            &|a| (a == 4837).then(|| "china-unicom".to_string()),
            &|_| Some("<b>x</b>".into()),
        )
        .expect("rows");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].asn, None, "a private address has no AS");
        assert_eq!(rows[1].addr, None, "a silent TTL");
        assert_eq!(rows[2].asn, Some(4837));
        assert_eq!(rows[2].org.as_deref(), Some("china-unicom"));
        assert_eq!(rows[2].rtt_ms, Some(2.5), "the fastest answer");
        assert!(hop_rows("{", &|_| None, &|_| None, &|_| None).is_err());
        assert!(hop_rows(
            r#"{"kind":"ping","schema":1,"id":"ffeeddccbbaa99887766554433221100","agent":"vp","start_ms":1,"dst":"203.0.113.7","prefix":"203.0.113.0/24","sent":3,"received":2,"loss_ratio":0.3}"#,
            &|_| None,
            &|_| None,
            &|_| None
        )
        .is_err());
    }
}
