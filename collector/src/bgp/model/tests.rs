use std::collections::BTreeMap;

use super::*;
use crate::bgp::{Message, Peer, Route, Snapshot, Update};
use crate::paths::ShareTable;

fn target() -> Target {
    Target {
        prefixes: vec!["175.45.176.0/22".parse().unwrap()],
        asns: [131279].into_iter().collect(),
    }
}

fn model() -> Model {
    Model::new(target(), Orgs::default(), Settings::default())
}

fn peer(n: u8) -> Peer {
    Peer {
        source: "bmp".into(),
        router: "r1".into(),
        addr: format!("192.0.2.{n}").parse().unwrap(),
        asn: 64500 + u32::from(n),
    }
}

fn ann(peer: &Peer, prefix: &str, path: &[u32], at_ms: u64) -> Message {
    Message::Update(Update {
        at_ms,
        peer: peer.clone(),
        prefix: prefix.parse().unwrap(),
        change: Change::Announce {
            route: Route {
                path: AsPath::from_asns(path),
                next_hop: None,
            },
        },
    })
}

fn wd(peer: &Peer, prefix: &str, at_ms: u64) -> Message {
    Message::Update(Update {
        at_ms,
        peer: peer.clone(),
        prefix: prefix.parse().unwrap(),
        change: Change::Withdraw,
    })
}

fn kinds(events: &[BgpEvent]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

#[test]
fn upstream_is_the_first_as_outside_the_target_walking_from_the_origin() {
    let m = model();
    let up = |p: &[u32]| m.upstream_of(&AsPath::from_asns(p)).map(|u| u.name);
    assert_eq!(up(&[3356, 4837, 131279]).as_deref(), Some("china-unicom"));
    assert_eq!(up(&[3356, 20485, 131279]).as_deref(), Some("transtelecom"));
    // Prepending by the origin changes nothing.
    assert_eq!(
        up(&[3356, 20485, 131279, 131279, 131279]).as_deref(),
        Some("transtelecom")
    );
    // The peer is the target: no upstream.
    assert_eq!(up(&[131279]), None);
    // A foreign origin of target space is its own upstream.
    assert_eq!(up(&[3356, 64999]).as_deref(), Some("AS64999"));
    // Sets: one holding the origin is inside; a single-AS set names it.
    let set = AsPath(vec![Hop::As(3356), Hop::Set(vec![4837]), Hop::As(131279)]);
    assert_eq!(
        m.upstream_of(&set).map(|u| u.name).as_deref(),
        Some("china-unicom")
    );
    let set = AsPath(vec![
        Hop::As(3356),
        Hop::Set(vec![4837, 20485]),
        Hop::As(131279),
    ]);
    assert_eq!(
        m.upstream_of(&set).map(|u| u.name).as_deref(),
        Some("as-set")
    );
    let set = AsPath(vec![Hop::As(4837), Hop::Set(vec![131279, 64999])]);
    assert_eq!(
        m.upstream_of(&set).map(|u| u.name).as_deref(),
        Some("china-unicom")
    );
}

#[test]
fn without_target_ases_the_origin_is_inside() {
    let m = Model::new(
        Target {
            prefixes: vec!["198.18.176.0/22".parse().unwrap()],
            asns: Default::default(),
        },
        Orgs::default(),
        Settings::default(),
    );
    let u = m.upstream_of(&AsPath::from_asns(&[3356, 20485, 131279]));
    assert_eq!(
        u.map(|u| (u.name, u.asn)),
        Some(("transtelecom".into(), Some(20485)))
    );
}

#[test]
fn routes_outside_the_target_are_counted_and_dropped() {
    let mut m = model();
    assert!(m
        .apply(ann(&peer(1), "8.8.8.0/24", &[3356, 15169], 1))
        .is_empty());
    assert!(m.prefixes().is_empty());
    assert_eq!(m.sources()["bmp"].updates, 1);
    // Target space, and a prefix originated by a target AS elsewhere.
    m.apply(ann(&peer(1), "175.45.177.0/24", &[3356, 4837, 131279], 2));
    m.apply(ann(&peer(1), "203.0.113.0/24", &[3356, 4837, 131279], 3));
    let p: Vec<String> = m.prefixes().iter().map(|v| v.prefix.to_string()).collect();
    assert_eq!(p, ["175.45.177.0/24", "203.0.113.0/24"]);
    // A withdrawal of something never tracked does nothing.
    assert!(m.apply(wd(&peer(1), "8.8.8.0/24", 4)).is_empty());
}

#[test]
fn per_peer_events_announce_change_withdraw_and_back() {
    let mut m = model();
    let p = peer(1);
    let e = m.apply(ann(&p, "175.45.177.0/24", &[3356, 4837, 131279], 1000));
    assert_eq!(kinds(&e), [EventKind::Announce]);
    assert_eq!(e[0].to.as_ref().unwrap().name, "china-unicom");
    assert_eq!(e[0].path.as_deref(), Some("3356 4837 131279"));
    assert_eq!(e[0].peer.as_deref(), Some("r1 AS64501 192.0.2.1"));
    // Same upstream, other path: no event.
    assert!(m
        .apply(ann(&p, "175.45.177.0/24", &[174, 4837, 131279], 1500))
        .is_empty());
    let e = m.apply(ann(&p, "175.45.177.0/24", &[3356, 20485, 131279], 2000));
    assert_eq!(
        kinds(&e),
        [EventKind::UpstreamChange, EventKind::PrefixUpstream]
    );
    assert_eq!(e[0].from.as_ref().unwrap().name, "china-unicom");
    assert_eq!(e[0].to.as_ref().unwrap().name, "transtelecom");
    assert_eq!(e[1].peer, None);
    // Two more peers, so that visibility speaks (three at least): .177
    // is at 1 of 3 as soon as the third counts.
    m.apply(ann(
        &peer(2),
        "175.45.176.0/24",
        &[3356, 4837, 131279],
        2500,
    ));
    let e = m.apply(ann(
        &peer(3),
        "175.45.176.0/24",
        &[3356, 4837, 131279],
        2500,
    ));
    assert_eq!(kinds(&e), [EventKind::Announce, EventKind::VisibilityLow]);
    assert_eq!(e[1].prefix, Some("175.45.177.0/24".parse().unwrap()));
    assert_eq!(
        e[1].detail.as_deref(),
        Some("1 of 3 peers have a route (33%)")
    );
    let e = m.apply(wd(&p, "175.45.177.0/24", 3000));
    assert_eq!(kinds(&e), [EventKind::Withdraw]);
    assert_eq!(
        m.view(&"175.45.177.0/24".parse().unwrap()).visibility,
        Some(0.0)
    );
    let e = m.apply(ann(&p, "175.45.177.0/24", &[3356, 20485, 131279], 4000));
    assert_eq!(kinds(&e), [EventKind::Announce]);
    let e = m.apply(ann(&peer(2), "175.45.177.0/24", &[1, 20485, 131279], 4100));
    assert_eq!(kinds(&e), [EventKind::Announce, EventKind::VisibilityOk]);
    // Back with the dominant it had: no prefix-level change.
    let v = m.view(&"175.45.177.0/24".parse().unwrap());
    assert_eq!(v.last_change.unwrap().at_ms, 2000);
}

#[test]
fn visibility_counts_feeding_peers_and_a_peer_down_leaves_the_count() {
    let mut m = model();
    let (a, b, c) = (peer(1), peer(2), peer(3));
    for p in [&a, &b, &c] {
        m.apply(ann(p, "175.45.176.0/24", &[3356, 4837, 131279], 1));
    }
    m.apply(ann(&a, "175.45.177.0/24", &[3356, 20485, 131279], 1));
    let v = |m: &Model, p: &str| m.view(&p.parse().unwrap()).visibility.unwrap();
    assert!((v(&m, "175.45.177.0/24") - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(v(&m, "175.45.176.0/24"), 1.0);
    // b and c withdraw .176: visible at 1 of 3.
    m.apply(wd(&b, "175.45.176.0/24", 2));
    let e = m.apply(wd(&c, "175.45.176.0/24", 3));
    assert!(kinds(&e).contains(&EventKind::VisibilityLow), "{e:?}");
    assert!((v(&m, "175.45.176.0/24") - 1.0 / 3.0).abs() < 1e-9);
    // c's session goes down: it no longer counts.
    let e = m.apply(Message::PeerDown {
        peer: c.clone(),
        at_ms: 4,
        reason: "hold timer".into(),
    });
    assert!(e.is_empty(), "c held nothing: {e:?}");
    assert_eq!(m.feeding_peers(), 2);
    assert_eq!(v(&m, "175.45.176.0/24"), 0.5);
    // a's session goes down: its routes are withdrawn with the reason.
    let e = m.apply(Message::PeerDown {
        peer: a.clone(),
        at_ms: 5,
        reason: "hold timer".into(),
    });
    let w: Vec<_> = e.iter().filter(|e| e.kind == EventKind::Withdraw).collect();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].detail.as_deref(), Some("peer down: hold timer"));
}

#[test]
fn shares_and_the_dominant_upstream_follow_the_peers() {
    let mut m = model();
    for (n, path) in [
        (1, [1, 4837, 131279]),
        (2, [2, 4837, 131279]),
        (3, [3, 20485, 131279]),
    ] {
        m.apply(ann(&peer(n), "175.45.178.0/24", &path, 1));
    }
    let v = m.view(&"175.45.178.0/24".parse().unwrap());
    assert!((v.shares["china-unicom"] - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(v.dominant.unwrap().name, "china-unicom");
    // One more TTK: a tie, no dominant, no change event yet.
    let e = m.apply(ann(&peer(4), "175.45.178.0/24", &[4, 20485, 131279], 2));
    assert!(!kinds(&e).contains(&EventKind::PrefixUpstream));
    assert_eq!(m.view(&"175.45.178.0/24".parse().unwrap()).dominant, None);
    let e = m.apply(ann(&peer(1), "175.45.178.0/24", &[1, 20485, 131279], 3));
    let pu: Vec<_> = e
        .iter()
        .filter(|e| e.kind == EventKind::PrefixUpstream)
        .collect();
    assert_eq!(pu.len(), 1);
    assert_eq!(pu[0].from.as_ref().unwrap().name, "china-unicom");
    assert_eq!(
        pu[0].detail.as_deref(),
        Some("transtelecom 75%, china-unicom 25%")
    );
    assert_eq!(m.shares_all()["transtelecom"], 0.75);
}

#[test]
fn flapping_makes_one_flap_event_per_threshold() {
    let mut m = model();
    let p = peer(1);
    let mut flaps = 0;
    // The first announcement is no change; then 8 changes: two flaps.
    for i in 0..9u64 {
        let e = if i % 2 == 0 {
            m.apply(ann(&p, "175.45.176.0/24", &[1, 4837, 131279], i * 1000))
        } else {
            m.apply(wd(&p, "175.45.176.0/24", i * 1000))
        };
        flaps += e.iter().filter(|e| e.kind == EventKind::Flap).count();
    }
    assert_eq!(flaps, 2);
    // Changes spread wider than the window make none.
    let mut m = model();
    let mut flaps = 0;
    for i in 0..8u64 {
        let at = i * 11 * 60 * 1000;
        let e = if i % 2 == 0 {
            m.apply(ann(&p, "175.45.176.0/24", &[1, 4837, 131279], at))
        } else {
            m.apply(wd(&p, "175.45.176.0/24", at))
        };
        flaps += e.iter().filter(|e| e.kind == EventKind::Flap).count();
    }
    assert_eq!(flaps, 0);
}

#[test]
fn a_rib_dump_replaces_what_its_peers_held() {
    let mut m = model();
    let (a, b) = (peer(1), peer(2));
    m.apply(ann(&a, "175.45.176.0/24", &[1, 4837, 131279], 1));
    m.apply(ann(&a, "175.45.177.0/24", &[1, 4837, 131279], 1));
    let other = peer(9);
    m.apply(ann(&other, "175.45.177.0/24", &[9, 4837, 131279], 1));
    let route = |p: &[u32]| Route {
        path: AsPath::from_asns(p),
        next_hop: None,
    };
    let e = m.apply(Message::Snapshot(Snapshot {
        source: "bmp".into(),
        router: "r1".into(),
        at_ms: 10,
        peers: vec![a.clone(), b.clone()],
        routes: vec![
            (
                0,
                "175.45.176.0/24".parse().unwrap(),
                route(&[1, 20485, 131279]),
            ),
            (
                1,
                "175.45.176.0/24".parse().unwrap(),
                route(&[2, 4837, 131279]),
            ),
            (1, "8.8.8.0/24".parse().unwrap(), route(&[2, 15169])),
            (
                7,
                "175.45.179.0/24".parse().unwrap(),
                route(&[2, 4837, 131279]),
            ),
        ],
    }));
    // a: .176 moved to TTK, .177 gone; b's first table (it held nothing)
    // is loaded without an event per route.
    let mut k = kinds(&e);
    k.sort();
    assert_eq!(
        k,
        [
            EventKind::Withdraw,
            EventKind::UpstreamChange,
            EventKind::VisibilityLow
        ]
    );
    assert!(m.routes().iter().any(|r| r.peer == "r1 AS64502 192.0.2.2"));
    // A second dump in which b's route changes: now an event.
    let e = m.apply(Message::Snapshot(Snapshot {
        source: "bmp".into(),
        router: "r1".into(),
        at_ms: 20,
        peers: vec![b.clone()],
        routes: vec![(
            0,
            "175.45.176.0/24".parse().unwrap(),
            route(&[2, 20485, 131279]),
        )],
    }));
    assert!(kinds(&e).contains(&EventKind::UpstreamChange), "{e:?}");
    // .177 is left at the peer outside the dump only: 1 of 3.
    let routes: Vec<(String, String)> = m
        .routes()
        .into_iter()
        .map(|r| (r.peer, r.prefix.to_string()))
        .collect();
    assert_eq!(routes.len(), 3, "{routes:?}");
    // The peer not in the dump keeps its route.
    assert!(routes.contains(&("r1 AS64509 192.0.2.9".into(), "175.45.177.0/24".into())));
}

#[test]
fn prefixes_beyond_the_cap_are_counted_not_kept() {
    let mut m = Model::new(
        target(),
        Orgs::default(),
        Settings {
            max_prefixes: 2,
            ..Settings::default()
        },
    );
    for i in 0..5 {
        m.apply(ann(
            &peer(1),
            &format!("175.45.176.{}/32", i),
            &[1, 4837, 131279],
            1,
        ));
    }
    assert_eq!(m.prefixes().len(), 2);
    assert_eq!(m.overflow, 3);
}

#[test]
fn sources_count_updates_faults_gaps_and_routers() {
    let mut m = model();
    m.declare_source("ris-live");
    assert!(!m.sources()["ris-live"].up);
    for (router, up) in [("a", true), ("b", true), ("a", false)] {
        m.apply(Message::SourceState {
            source: "bmp".into(),
            router: Some(router.into()),
            up,
            at_ms: 1,
        });
    }
    assert!(m.sources()["bmp"].up);
    m.apply(Message::SourceState {
        source: "bmp".into(),
        router: Some("b".into()),
        up: false,
        at_ms: 2,
    });
    assert!(!m.sources()["bmp"].up);
    m.apply(Message::Fault {
        source: "bmp".into(),
        kind: "decode",
    });
    assert_eq!(m.sources()["bmp"].faults["decode"], 1);
    let e = m.apply(Message::Gap {
        source: "ris-live".into(),
        from_ms: 1000,
        to_ms: 3500,
    });
    assert_eq!(kinds(&e), [EventKind::Gap]);
    assert_eq!(
        e[0].detail.as_deref(),
        Some("updates may be missing for 2.5 s")
    );
    m.apply(ann(&peer(1), "175.45.176.0/24", &[1, 4837, 131279], 77_000));
    assert_eq!(m.sources()["bmp"].last_update_ms, 77_000);
}

fn data(unit: &str, shares: &[(&str, f64)]) -> ShareTable {
    let mut t = ShareTable::default();
    t.per_prefix.insert(
        unit.parse().unwrap(),
        shares
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
    );
    t
}

#[test]
fn divergence_needs_a_sustained_disagreement_and_ends_with_a_sustained_agreement() {
    let mut m = Model::new(
        target(),
        Orgs::default(),
        Settings {
            divergence_for_ms: 60_000,
            ..Settings::default()
        },
    );
    // BGP: the /22 via CU at two peers, a /24 more-specific via TTK at one.
    m.apply(ann(&peer(1), "175.45.176.0/22", &[1, 4837, 131279], 0));
    m.apply(ann(&peer(2), "175.45.176.0/22", &[2, 4837, 131279], 0));
    m.apply(ann(&peer(2), "175.45.177.0/24", &[2, 20485, 131279], 0));
    let (s, d) = m.unit_shares(&"175.45.177.0/24".parse().unwrap());
    assert_eq!((s["china-unicom"], s["transtelecom"]), (0.5, 0.5));
    assert_eq!(d, None);
    m.apply(ann(&peer(1), "175.45.177.0/24", &[1, 20485, 131279], 0));
    let ttk = data("175.45.177.0/24", &[("transtelecom", 1.0)]);
    let cu = data(
        "175.45.177.0/24",
        &[("china-unicom", 0.67), ("transtelecom", 0.33)],
    );
    assert!(m.compare(&ttk, 0).is_empty());
    // The data plane disagrees: nothing for 60 s, then one event.
    assert!(m.compare(&cu, 1_000).is_empty());
    assert!(m.compare(&cu, 30_000).is_empty());
    // A break in the disagreement starts the wait over.
    assert!(m.compare(&ttk, 40_000).is_empty());
    assert!(m.compare(&cu, 50_000).is_empty());
    assert!(m.compare(&cu, 100_000).is_empty());
    assert!(m.divergences().is_empty());
    let e = m.compare(&cu, 110_000);
    assert_eq!(kinds(&e), [EventKind::Divergence]);
    let d = m.divergences();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (
            d[0].prefix.to_string(),
            d[0].data_upstream.as_str(),
            d[0].bgp_upstream.as_str()
        ),
        (
            "175.45.177.0/24".to_string(),
            "china-unicom",
            "transtelecom"
        )
    );
    // Agreement must last as long before it ends.
    assert!(m.compare(&ttk, 120_000).is_empty());
    assert_eq!(m.divergences().len(), 1);
    assert!(m.compare(&cu, 130_000).is_empty());
    assert!(m.compare(&ttk, 140_000).is_empty());
    let e = m.compare(&ttk, 200_000);
    assert_eq!(kinds(&e), [EventKind::DivergenceEnd]);
    assert!(m.divergences().is_empty());
    // A unit the data plane sees but BGP does not: never diverges.
    let other = data("175.45.179.0/24", &[("china-unicom", 1.0)]);
    for t in [300_000, 400_000, 500_000] {
        assert!(m.compare(&other, t).is_empty());
    }
}

#[test]
fn event_kinds_round_trip_their_names() {
    for k in EventKind::ALL {
        assert_eq!(EventKind::parse(k.as_str()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    assert_eq!(EventKind::parse("nope"), None);
}
