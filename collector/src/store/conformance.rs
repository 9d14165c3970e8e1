//! The conformance suite every [`Store`] backend passes: what the rest of
//! the collector relies on, and nothing about how a backend keeps it.
//! A backend runs it with one line in its tests module:
//!
//! ```ignore
//! store_conformance!((guard, MyStore::open(...).expect("open")));
//! ```
//!
//! where the expression, evaluated once per case, makes a new, empty
//! store and anything that must live as long as it (a temporary
//! directory). Each case below becomes one
//! `#[test]` of that backend, in a `conformance` module.

use ipnet::IpNet;

use super::{BgpEventFilter, EventFilter, PingRow, Store, Table, TraceRow};
use crate::bgp::model::{BgpEvent, EventKind};
use crate::infer::{Evidence, Inference};
use crate::paths::{Change, PathKey, PathState, TraceObservation, Upstream};
use crate::state::{AgentInfo, Live};

/// One `#[test]` per case, for the backend the expression makes.
macro_rules! store_conformance {
    ($make:expr) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[test]
                    fn $name() {
                        let (_guard, mut store) = $make;
                        $crate::store::conformance::$name(&mut store);
                    }
                };
            }

            case!(dedup_key_is_agent_start_ms_and_id);
            case!(an_uncommitted_transaction_leaves_nothing);
            case!(path_states_round_trip);
            case!(events_filter_by_prefix_agent_and_time_newest_first);
            case!(prune_removes_what_was_received_before_the_cutoff);
            case!(agents_are_upserted_and_keep_their_first_sighting);
            case!(the_probe_commits_and_leaves_no_visible_trace);
            case!(bgp_events_round_trip_filter_and_prune);
            case!(traces_list_by_prefix_and_window_oldest_first);
        }
    };
}

fn prefix() -> IpNet {
    "175.45.177.0/24".parse().expect("prefix")
}

fn trace<'a>(agent: &'a str, start_ms: u64, id: &'a str, record: &'a [u8]) -> TraceRow<'a> {
    TraceRow {
        id,
        agent,
        prefix: prefix(),
        dst: "175.45.177.1".parse().expect("dst"),
        start_ms,
        upstream: "china-unicom",
        upstream_asn: Some(4837),
        entered: true,
        confidence: 0.9,
        record,
    }
}

fn ping<'a>(agent: &'a str, start_ms: u64, id: &'a str, record: &'a [u8]) -> PingRow<'a> {
    PingRow {
        id,
        agent,
        prefix: prefix(),
        dst: "175.45.177.1".parse().expect("dst"),
        start_ms,
        sent: 3,
        received: 2,
        record,
    }
}

fn evidence(as_path: &[u32]) -> Evidence {
    serde_json::from_value(serde_json::json!({
        "last_foreign": null, "first_inside": null, "as_path": as_path,
        "silent_after_border": 0, "unattributed_after_border": 0
    }))
    .expect("evidence")
}

fn inference(upstream: &str, asn: u32) -> Inference {
    serde_json::from_value(serde_json::json!({
        "target": "175.45.177.1", "upstream": upstream, "upstream_asn": asn,
        "entered": true, "confidence": 0.95,
        "evidence": {"last_foreign": null, "first_inside": null, "as_path": [asn, 131279],
                     "silent_after_border": 0, "unattributed_after_border": 0}
    }))
    .expect("inference")
}

fn agent(name: &str, first: u64, last: u64, traces: u64, pings: u64) -> AgentInfo {
    AgentInfo {
        name: name.into(),
        first_seen_ms: first,
        last_seen_ms: last,
        traces,
        pings,
    }
}

fn change(at_ms: u64, from: Option<&str>) -> Change {
    Change {
        from: from.map(|name| Upstream {
            name: name.into(),
            asn: Some(4837),
        }),
        to: Upstream {
            name: "transtelecom".into(),
            asn: Some(20485),
        },
        at_ms,
        trace_id: format!("t{at_ms}"),
        evidence: evidence(&[20485, 131279]),
    }
}

fn counts(store: &dyn Store) -> [u64; 5] {
    let r = store.reader().expect("reader");
    [
        Table::Traces,
        Table::Pings,
        Table::Events,
        Table::Paths,
        Table::Agents,
    ]
    .map(|t| r.count(t).expect("count"))
}

/// A raw record is new once per (agent, start_ms, id): a re-sent one is
/// reported as not new, within a transaction and across commits, and
/// the line first stored stays; ids are scoped by agent (another agent
/// cannot pre-empt this agent's results by sending their ids first).
pub fn dedup_key_is_agent_start_ms_and_id(store: &mut dyn Store) {
    let pack = store.pack();
    let line = r#"{"kind":"trace","id":"abc"}"#;
    let (first, again) = (pack(line), pack(r#"{"kind":"trace","id":"abc","again":1}"#));
    let mut tx = store.transaction().expect("tx");
    assert!(tx
        .insert_trace(&trace("vp", 10, "abc", &first), 100)
        .expect("1"));
    assert!(!tx
        .insert_trace(&trace("vp", 10, "abc", &again), 101)
        .expect("2"));
    tx.commit().expect("commit");
    let reader = store.reader().expect("reader");
    assert_eq!(reader.count(Table::Traces).expect("n"), 1);

    let mut tx = store.transaction().expect("tx");
    assert!(!tx
        .insert_trace(&trace("vp", 10, "abc", &again), 102)
        .expect("3"));
    assert!(tx
        .insert_trace(&trace("vp2", 10, "abc", &first), 102)
        .expect("4"));
    tx.commit().expect("commit");
    assert_eq!(reader.count(Table::Traces).expect("n"), 2);
    assert_eq!(
        reader.raw_trace("vp", "abc").expect("raw").as_deref(),
        Some(line),
        "the line first stored stays"
    );
    assert_eq!(reader.raw_trace("vp", "nope").expect("raw"), None);
    assert_eq!(reader.raw_trace("vp3", "abc").expect("raw"), None);

    // start_ms is part of the key (docs/wire.md says why).
    let mut tx = store.transaction().expect("tx");
    assert!(tx
        .insert_trace(&trace("vp", 11, "abc", &first), 103)
        .expect("5"));
    tx.commit().expect("commit");
    assert_eq!(reader.count(Table::Traces).expect("n"), 3);

    // Pings: the same rule, in a table of their own.
    let p = pack(r#"{"kind":"ping","id":"abc"}"#);
    let mut tx = store.transaction().expect("tx");
    assert!(tx.insert_ping(&ping("vp", 10, "abc", &p), 100).expect("p1"));
    assert!(!tx.insert_ping(&ping("vp", 10, "abc", &p), 100).expect("p2"));
    assert!(tx
        .insert_ping(&ping("vp2", 10, "abc", &p), 100)
        .expect("p3"));
    assert!(tx.insert_ping(&ping("vp", 11, "abc", &p), 100).expect("p4"));
    tx.commit().expect("commit");
    let mut tx = store.transaction().expect("tx");
    assert!(!tx
        .insert_ping(&ping("vp2", 10, "abc", &p), 200)
        .expect("p5"));
    tx.commit().expect("commit");
    assert_eq!(reader.count(Table::Pings).expect("n"), 3);
    assert_eq!(reader.count(Table::Traces).expect("n"), 3);
}

/// Nothing a transaction wrote is kept unless it commits.
pub fn an_uncommitted_transaction_leaves_nothing(store: &mut dyn Store) {
    let pack = store.pack();
    let line = pack("{}");
    let key: PathKey = ("vp".into(), prefix());
    {
        let mut tx = store.transaction().expect("tx");
        assert!(tx
            .insert_trace(&trace("vp", 10, "abc", &line), 100)
            .expect("t"));
        assert!(tx
            .insert_ping(&ping("vp", 10, "abc", &line), 100)
            .expect("p"));
        tx.put_path(&key, &PathState::default(), 100).expect("path");
        tx.put_event(&key, &change(100, None), 100).expect("event");
        tx.put_agent(&agent("vp", 1, 2, 1, 1)).expect("agent");
        // Dropped without a commit.
    }
    assert_eq!(counts(store), [0; 5]);
    let live = store.load_state().expect("load");
    assert!(live.paths.is_empty() && live.agents.is_empty());
    let mut tx = store.transaction().expect("tx");
    assert!(tx
        .insert_trace(&trace("vp", 10, "abc", &line), 100)
        .expect("t"));
    tx.commit().expect("commit");
    assert_eq!(counts(store), [1, 0, 0, 0, 0]);
}

/// A path's state reads back as it was put, the latest put winning.
pub fn path_states_round_trip(store: &mut dyn Store) {
    let key: PathKey = ("vp".into(), prefix());
    let v6: PathKey = ("vp".into(), "2001:db8:1::/48".parse().expect("v6"));
    let mut state = PathState::default();
    let unicom = inference("china-unicom", 4837);
    let ttk = inference("transtelecom", 20485);
    state.observe_trace(
        &TraceObservation {
            at_ms: 5,
            trace_id: "abc",
            inference: &ttk,
            route: None,
        },
        3,
    );
    let mut tx = store.transaction().expect("tx");
    tx.put_path(&key, &state, 100).expect("path");
    tx.put_path(&v6, &PathState::default(), 100).expect("v6");
    tx.commit().expect("commit");
    let live = store.load_state().expect("load");
    assert_eq!(live.paths[&key], state);
    assert_eq!(live.paths[&v6], PathState::default());

    // A candidate half-way, a ping, a change: all of it comes back.
    for (at, i) in [(6, &unicom), (7, &unicom), (8, &unicom)] {
        state.observe_trace(
            &TraceObservation {
                at_ms: at,
                trace_id: "def",
                inference: i,
                route: None,
            },
            3,
        );
    }
    state.observe_trace(
        &TraceObservation {
            at_ms: 9,
            trace_id: "ghi",
            inference: &ttk,
            route: None,
        },
        3,
    );
    state.observe_ping(10, true);
    assert_eq!(state.changes, 1);
    assert!(state.candidate.is_some() && state.previous.is_some());
    let mut tx = store.transaction().expect("tx");
    tx.put_path(&key, &state, 200).expect("path");
    tx.commit().expect("commit");
    let live = store.load_state().expect("load");
    assert_eq!(live.paths[&key], state);
    assert_eq!(live.paths.len(), 2);
    assert_eq!(counts(store)[3], 2);
}

/// Events come back newest first (`at_ms`, then the later written),
/// filtered by prefix, agent and an inclusive time window, at most
/// `limit`, with what the change said.
pub fn events_filter_by_prefix_agent_and_time_newest_first(store: &mut dyn Store) {
    let p1: IpNet = "175.45.176.0/24".parse().expect("p");
    let p2: IpNet = "175.45.177.0/24".parse().expect("p");
    let mut tx = store.transaction().expect("tx");
    for (agent, prefix, at) in [("a", p1, 100), ("a", p2, 200), ("b", p2, 300)] {
        let from = (at == 200).then_some("china-unicom");
        tx.put_event(&(agent.to_string(), prefix), &change(at, from), at)
            .expect("event");
    }
    tx.commit().expect("commit");
    let r = store.reader().expect("reader");
    let list = |f: EventFilter| r.events(&f).expect("events");
    let all = list(EventFilter {
        limit: 10,
        ..Default::default()
    });
    assert_eq!(
        all.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        vec![300, 200, 100]
    );
    let e = &all[1];
    assert_eq!(
        (
            e.agent.as_str(),
            e.prefix.as_str(),
            e.from_upstream.as_deref(),
            e.from_asn,
            e.to_upstream.as_str(),
            e.to_asn,
            e.trace_id.as_str()
        ),
        (
            "a",
            "175.45.177.0/24",
            Some("china-unicom"),
            Some(4837),
            "transtelecom",
            Some(20485),
            "t200"
        )
    );
    assert_eq!(
        e.evidence,
        serde_json::to_value(evidence(&[20485, 131279])).expect("json")
    );
    assert_eq!(
        (all[0].from_upstream.as_deref(), all[0].from_asn),
        (None, None)
    );

    let some = list(EventFilter {
        prefix: Some(p2),
        since_ms: Some(250),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(some.len(), 1);
    assert_eq!(some[0].agent, "b");
    let a = list(EventFilter {
        agent: Some("a".into()),
        until_ms: Some(150),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].at_ms, 100);
    // Bounds are inclusive.
    let at200 = list(EventFilter {
        since_ms: Some(200),
        until_ms: Some(200),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(at200.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [200]);
    let two = list(EventFilter {
        limit: 2,
        ..Default::default()
    });
    assert_eq!(two.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [300, 200]);
    assert!(list(EventFilter::default()).is_empty(), "limit 0");
    assert!(list(EventFilter {
        agent: Some("c".into()),
        limit: 10,
        ..Default::default()
    })
    .is_empty());

    // Same time: the later written first.
    let mut tx = store.transaction().expect("tx");
    let mut late = change(300, None);
    late.trace_id = "later".into();
    tx.put_event(&("c".to_string(), p1), &late, 400)
        .expect("event");
    tx.commit().expect("commit");
    let top = list(EventFilter {
        limit: 2,
        ..Default::default()
    });
    assert_eq!(
        top.iter().map(|e| e.trace_id.as_str()).collect::<Vec<_>>(),
        ["later", "t300"]
    );
    assert!(top[0].id > top[1].id);

    // One event by its id, whatever else the filter says.
    let one = list(EventFilter {
        id: Some(top[1].id),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(one, [top[1].clone()]);
    let bare = list(EventFilter {
        id: Some(top[1].id),
        skip_evidence: true,
        limit: 10,
        ..Default::default()
    });
    assert_eq!(
        bare[0].evidence,
        serde_json::Value::Null,
        "evidence left out"
    );
    assert_ne!(top[1].evidence, serde_json::Value::Null);
    assert_eq!(bare[0].trace_id, top[1].trace_id);
    assert!(list(EventFilter {
        id: Some(i64::MAX),
        limit: 10,
        ..Default::default()
    })
    .is_empty());
}

/// The traces toward one /24 in a window: the columns as inserted, the
/// line unpacked, oldest first (then agent), bounds inclusive, limited.
pub fn traces_list_by_prefix_and_window_oldest_first(store: &mut dyn Store) {
    let pack = store.pack();
    let lines: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| {
            let l = format!(r#"{{"kind":"trace","id":"t{i}"}}"#);
            let p = pack(&l);
            (l, p)
        })
        .collect();
    let other: IpNet = "175.45.178.0/24".parse().expect("p");
    let mut tx = store.transaction().expect("tx");
    tx.insert_trace(&trace("b", 200, "t0", &lines[0].1), 1)
        .expect("0");
    tx.insert_trace(&trace("a", 200, "t1", &lines[1].1), 1)
        .expect("1");
    let mut far = trace("a", 100, "t2", &lines[2].1);
    far.upstream = "transtelecom";
    far.upstream_asn = Some(20485);
    far.entered = false;
    tx.insert_trace(&far, 1).expect("2");
    let mut elsewhere = trace("a", 150, "t3", &lines[3].1);
    elsewhere.prefix = other;
    tx.insert_trace(&elsewhere, 1).expect("3");
    tx.commit().expect("commit");
    let reader = store.reader().expect("reader");
    let list = |since_ms, until_ms, limit| {
        reader
            .traces(&super::TraceFilter {
                prefix: prefix(),
                since_ms,
                until_ms,
                limit,
            })
            .expect("traces")
    };
    let all = list(0, u64::MAX, 10);
    assert_eq!(
        all.iter()
            .map(|t| (t.start_ms, t.agent.as_str(), t.id.as_str()))
            .collect::<Vec<_>>(),
        [(100, "a", "t2"), (200, "a", "t1"), (200, "b", "t0")]
    );
    let t2 = &all[0];
    assert_eq!(t2.line, lines[2].0, "the line as received");
    assert_eq!(
        (t2.upstream.as_str(), t2.upstream_asn, t2.entered),
        ("transtelecom", Some(20485), false)
    );
    assert_eq!(
        (t2.prefix.as_str(), t2.dst.as_str()),
        ("175.45.177.0/24", "175.45.177.1")
    );
    assert!((t2.confidence - 0.9).abs() < 1e-9);
    assert_eq!(list(100, 100, 10).len(), 1, "bounds inclusive");
    assert_eq!(list(101, 199, 10).len(), 0);
    assert_eq!(list(0, u64::MAX, 2).len(), 2, "limit");
    let o = reader
        .traces(&super::TraceFilter {
            prefix: other,
            since_ms: 0,
            until_ms: u64::MAX,
            limit: 10,
        })
        .expect("other");
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].id, "t3");
}

/// Raw records and events received before the cutoff go; the cutoff
/// itself and later stay, and so do path states and agents.
pub fn prune_removes_what_was_received_before_the_cutoff(store: &mut dyn Store) {
    let pack = store.pack();
    let line = pack("{}");
    let ids = ["r100", "r200", "r250", "r300"];
    let mut tx = store.transaction().expect("tx");
    for (id, at) in ids.iter().zip([100, 200, 250, 300]) {
        assert!(tx.insert_trace(&trace("vp", at, id, &line), at).expect("t"));
        assert!(tx.insert_ping(&ping("vp", at, id, &line), at).expect("p"));
    }
    for (agent, at) in [("a", 100), ("a", 200), ("b", 300)] {
        tx.put_event(&(agent.to_string(), prefix()), &change(at, None), at)
            .expect("event");
    }
    tx.put_path(&("vp".into(), prefix()), &PathState::default(), 100)
        .expect("path");
    tx.put_agent(&agent("vp", 100, 100, 4, 4)).expect("agent");
    tx.commit().expect("commit");

    let pruned = store.prune(250).expect("prune");
    assert_eq!((pruned.traces, pruned.pings, pruned.events), (2, 2, 2));
    assert_eq!(counts(store), [2, 2, 1, 1, 1]);
    let r = store.reader().expect("reader");
    assert_eq!(r.raw_trace("vp", "r100").expect("raw"), None);
    assert_eq!(
        r.raw_trace("vp", "r250").expect("raw").as_deref(),
        Some("{}")
    );
    let left = r
        .events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .expect("events");
    assert_eq!(left.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [300]);
    // Nothing more to prune at the same cutoff; a pruned key is free again.
    assert_eq!(store.prune(250).expect("again").traces, 0);
    let mut tx = store.transaction().expect("tx");
    assert!(tx
        .insert_trace(&trace("vp", 100, "r100", &line), 400)
        .expect("t"));
    tx.commit().expect("commit");
}

/// An agent is inserted once and then updated: its last sighting and
/// counts change, its first sighting does not.
pub fn agents_are_upserted_and_keep_their_first_sighting(store: &mut dyn Store) {
    let mut tx = store.transaction().expect("tx");
    tx.put_agent(&agent("vp", 1, 2, 3, 4)).expect("agent");
    tx.put_agent(&agent("other", 5, 5, 0, 1)).expect("agent");
    tx.commit().expect("commit");
    let mut tx = store.transaction().expect("tx");
    tx.put_agent(&agent("vp", 50, 60, 7, 8)).expect("agent");
    tx.commit().expect("commit");
    let Live { agents, paths } = store.load_state().expect("load");
    assert!(paths.is_empty());
    assert_eq!(agents["vp"], agent("vp", 1, 60, 7, 8));
    assert_eq!(agents["other"], agent("other", 5, 5, 0, 1));
    assert_eq!(agents.len(), 2);
    assert_eq!(counts(store)[4], 2);
}

/// The readiness probe commits (and again), and is no data: nothing
/// counted, nothing loaded. Maintenance between commits works on an
/// idle store too.
pub fn the_probe_commits_and_leaves_no_visible_trace(store: &mut dyn Store) {
    store.probe(1_000).expect("probe");
    store.probe(2_000).expect("probe again");
    store.maintain().expect("maintain");
    assert_eq!(counts(store), [0; 5]);
    let live = store.load_state().expect("load");
    assert!(live.paths.is_empty() && live.agents.is_empty());
    let line = store.pack()("{}");
    let mut tx = store.transaction().expect("tx");
    assert!(tx
        .insert_trace(&trace("vp", 1, "abc", &line), 1)
        .expect("t"));
    tx.commit().expect("commit");
    store.maintain().expect("maintain after a commit");
    store.probe(3_000).expect("probe after a commit");
    assert_eq!(counts(store), [1, 0, 0, 0, 0]);
}

fn bgp_event(at_ms: u64, kind: EventKind, prefix: Option<&str>, peer: Option<&str>) -> BgpEvent {
    BgpEvent {
        at_ms,
        kind,
        source: "bmp".into(),
        peer: peer.map(str::to_string),
        prefix: prefix.map(|p| p.parse().expect("prefix")),
        from: Some(Upstream {
            name: "china-unicom".into(),
            asn: Some(4837),
        }),
        to: Some(Upstream {
            name: "transtelecom".into(),
            asn: Some(20485),
        }),
        path: Some("3356 20485 {1,2}".into()),
        detail: Some("2 of 3 peers".into()),
    }
}

/// Control-plane events come back whole, filter by prefix, kind, peer
/// and time, newest first, and are pruned by when they were received.
pub fn bgp_events_round_trip_filter_and_prune(store: &mut dyn Store) {
    let all = [
        bgp_event(
            100,
            EventKind::Announce,
            Some("175.45.177.0/24"),
            Some("r AS1 192.0.2.1"),
        ),
        bgp_event(
            200,
            EventKind::UpstreamChange,
            Some("175.45.177.0/24"),
            Some("r AS2 192.0.2.2"),
        ),
        bgp_event(
            200,
            EventKind::PrefixUpstream,
            Some("175.45.177.0/24"),
            None,
        ),
        bgp_event(
            300,
            EventKind::Withdraw,
            Some("2001:db8::/32"),
            Some("r AS1 192.0.2.1"),
        ),
        {
            let mut gap = bgp_event(400, EventKind::Gap, None, None);
            gap.from = None;
            gap.to = None;
            gap.path = None;
            gap
        },
    ];
    let mut tx = store.transaction().expect("tx");
    for (i, e) in all.iter().enumerate() {
        tx.put_bgp_event(e, 1000 + i as u64).expect("bgp event");
    }
    tx.commit().expect("commit");
    let r = store.reader().expect("reader");
    assert_eq!(r.count(Table::BgpEvents).expect("count"), 5);
    let list = |f: BgpEventFilter| {
        r.bgp_events(&BgpEventFilter { limit: 100, ..f })
            .expect("bgp events")
    };
    let every = list(BgpEventFilter::default());
    let got: Vec<&BgpEvent> = every.iter().map(|r| &r.event).collect();
    // Newest first; at the same time, the later insert first.
    assert_eq!(got[0], &all[4]);
    assert_eq!(got[1], &all[3]);
    assert_eq!(got[2], &all[2]);
    assert_eq!(got[3], &all[1]);
    assert_eq!(got[4], &all[0]);
    let by_prefix = list(BgpEventFilter {
        prefix: Some("175.45.177.0/24".parse().expect("prefix")),
        ..Default::default()
    });
    assert_eq!(by_prefix.len(), 3);
    let by_kind = list(BgpEventFilter {
        kind: Some(EventKind::Withdraw),
        ..Default::default()
    });
    assert_eq!(by_kind.len(), 1);
    assert_eq!(
        by_kind[0].event.prefix,
        Some("2001:db8::/32".parse().expect("p"))
    );
    let by_peer = list(BgpEventFilter {
        peer: Some("r AS1 192.0.2.1".into()),
        since_ms: Some(150),
        until_ms: Some(300),
        ..Default::default()
    });
    assert_eq!(by_peer.len(), 1);
    assert_eq!(by_peer[0].event.at_ms, 300);
    let limited = r
        .bgp_events(&BgpEventFilter {
            limit: 2,
            ..Default::default()
        })
        .expect("limited");
    assert_eq!(limited.len(), 2);
    let pruned = store.prune(1002).expect("prune");
    assert_eq!(pruned.bgp_events, 2);
    assert_eq!(r.count(Table::BgpEvents).expect("count"), 3);
}
