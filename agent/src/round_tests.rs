//! Rounds over the mock network: target expansion, border detection,
//! border windows, change escalation and periodic full traces.

use std::cell::Cell;
use std::net::IpAddr;
use std::rc::Rc;

use ipnet::IpNet;
use tumen_wire::{Record, TraceMode, TraceRecord};

use super::*;
use crate::allow::AllowList;
use crate::config::{Hosts, ProbeConfig};
use crate::engine::{Gate, Ident};
use crate::mock::{Answer, MockNet};
use crate::packet::ProbeSpec;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("net")
}

#[test]
fn targets_expand_to_units_and_hosts() {
    let d = destinations(&[net("198.18.176.0/22")], Hosts::Count(1)).expect("ok");
    let got: Vec<String> = d.iter().map(|x| format!("{} {}", x.addr, x.unit)).collect();
    assert_eq!(
        got,
        [
            "198.18.176.1 198.18.176.0/24",
            "198.18.177.1 198.18.177.0/24",
            "198.18.178.1 198.18.178.0/24",
            "198.18.179.1 198.18.179.0/24"
        ]
    );
    let all = destinations(&[net("198.18.176.0/22")], Hosts::All).expect("ok");
    assert_eq!(all.len(), 1024);
    assert_eq!(all[0].addr, ip("198.18.176.0"));
    assert_eq!(all[1023].addr, ip("198.18.179.255"));
    let two = destinations(
        &[
            net("198.18.177.15/32"),
            net("198.18.177.15/32"),
            net("2001:db8:176::/47"),
        ],
        Hosts::Count(2),
    )
    .expect("ok");
    let got: Vec<String> = two.iter().map(|x| x.addr.to_string()).collect();
    assert_eq!(
        got,
        [
            "198.18.177.15",
            "2001:db8:176::1",
            "2001:db8:176::2",
            "2001:db8:177::1",
            "2001:db8:177::2"
        ]
    );
    let err = destinations(&[net("0.0.0.0/0")], Hosts::Count(1)).expect_err("too big");
    assert_eq!(err.target, net("0.0.0.0/0"));
    assert!(err.to_string().contains("0.0.0.0/0"), "{err}");
}

/// vp -> 10 transit routers -> border (hop 11) -> gateway inside the
/// target (hop 12) -> destination (hop 13). `ttk` switches the border.
fn long_path(ttk: Rc<Cell<bool>>) -> impl Fn(&ProbeSpec) -> Answer {
    move |p: &ProbeSpec| match p.ttl {
        1..=10 => Answer::Router(ip(&format!("198.51.100.{}", p.ttl))),
        11 if ttk.get() => Answer::Router(ip("198.18.188.1")),
        11 => Answer::Router(ip("198.18.219.1")),
        12 if ttk.get() => Answer::Router(ip("198.18.176.5")),
        12 => Answer::Router(ip("198.18.176.1")),
        _ => Answer::Destination,
    }
}

fn prober(net: MockNet, cfg: ProbeConfig) -> Prober<MockNet> {
    let target = vec![net_("198.18.176.0/22")];
    Prober::new(
        net,
        Gate::new(AllowList::new(target.clone()), 100_000),
        Ident::from_seed(7),
        "vp-test".into(),
        cfg,
        target,
    )
}

fn net_(s: &str) -> IpNet {
    net(s)
}

async fn round(p: &mut Prober<MockNet>, dsts: &[Destination]) -> Vec<TraceRecord> {
    let mut out = Vec::new();
    p.round(dsts, &mut |r| {
        if let Record::Trace(t) = r {
            out.push(t);
        }
    })
    .await;
    out
}

#[tokio::test(start_paused = true)]
async fn a_round_over_four_full_prefixes_probes_around_the_border() {
    let ttk = Rc::new(Cell::new(false));
    let mut p = prober(MockNet::new(long_path(ttk.clone())), ProbeConfig::default());
    let dsts = destinations(&[net("198.18.176.0/22")], Hosts::All).expect("ok");
    let recs = round(&mut p, &dsts).await;
    assert_eq!(recs.len(), 1024);
    let full = recs.iter().filter(|r| r.mode == TraceMode::Full).count();
    assert_eq!(full, 4, "one leader per /24");
    assert!(recs.iter().all(|r| r.reached), "every destination answered");
    // Windows start just before the border (hop 11). The gateway's own
    // address (hop 12) is one of the destinations: its trace ends a hop
    // early.
    let gw = ip("198.18.176.1");
    assert!(recs
        .iter()
        .filter(|r| r.mode == TraceMode::Window)
        .all(|r| r.first_ttl == 10 && r.hops.len() == if r.dst == gw { 3 } else { 4 }));
    let probes: u32 = recs.iter().map(|r| r.probes_sent).sum();
    assert_eq!(probes, 4 * 13 + 1020 * 4 - 1);
    assert_eq!(p.stats.sent, u64::from(probes));
    // A naive tracer sends 1024 * 13 = 13,312: this is under a third.
    assert!(probes * 3 < 1024 * 13);
    let b = &p.borders[&net("198.18.177.0/24")];
    assert_eq!(b.ttl, 11);
    assert!(b.at.contains(&ip("198.18.219.1")));

    // Second round: windows only.
    let recs = round(&mut p, &dsts).await;
    assert!(recs.iter().all(|r| r.mode == TraceMode::Window));
    assert_eq!(
        recs.iter().map(|r| r.probes_sent).sum::<u32>(),
        1024 * 4 - 1
    );
}

#[tokio::test(start_paused = true)]
async fn a_changed_border_gets_a_full_trace_in_the_same_round() {
    let ttk = Rc::new(Cell::new(false));
    let mut p = prober(MockNet::new(long_path(ttk.clone())), ProbeConfig::default());
    let dsts = destinations(&[net("198.18.176.0/22")], Hosts::Count(1)).expect("ok");
    round(&mut p, &dsts).await;
    ttk.set(true);
    let recs = round(&mut p, &dsts).await;
    // Each /24: a window that saw the new border, then a full trace.
    assert_eq!(recs.len(), 8, "{recs:?}");
    for d in &dsts {
        let modes: Vec<TraceMode> = recs
            .iter()
            .filter(|r| r.dst == d.addr)
            .map(|r| r.mode)
            .collect();
        assert_eq!(modes, [TraceMode::Window, TraceMode::Full], "{}", d.addr);
    }
    for b in p.borders.values() {
        assert!(
            b.at.contains(&ip("198.18.188.1")),
            "learnt the new border: {b:?}"
        );
        assert_eq!(b.age, 0);
    }
    // Third round: the new border is known; windows agree.
    let recs = round(&mut p, &dsts).await;
    assert_eq!(recs.len(), 4);
    assert!(recs.iter().all(|r| r.mode == TraceMode::Window));
}

#[tokio::test(start_paused = true)]
async fn full_traces_come_back_every_full_every_rounds_and_windows_can_be_off() {
    let ttk = Rc::new(Cell::new(false));
    let cfg = ProbeConfig {
        full_every: 3,
        ..ProbeConfig::default()
    };
    let mut p = prober(MockNet::new(long_path(ttk.clone())), cfg);
    let dsts = destinations(&[net("198.18.177.0/24")], Hosts::Count(1)).expect("ok");
    let mut modes = Vec::new();
    for _ in 0..7 {
        let recs = round(&mut p, &dsts).await;
        modes.push(recs[0].mode);
    }
    use TraceMode::{Full as F, Window as W};
    assert_eq!(modes, [F, W, W, F, W, W, F]);

    let cfg = ProbeConfig {
        window: false,
        ..ProbeConfig::default()
    };
    let mut p = prober(MockNet::new(long_path(ttk)), cfg);
    let dsts = destinations(&[net("198.18.177.0/24")], Hosts::Count(3)).expect("ok");
    for _ in 0..2 {
        let recs = round(&mut p, &dsts).await;
        assert!(recs.iter().all(|r| r.mode == F && r.probes_sent == 13));
    }
}

#[tokio::test(start_paused = true)]
async fn a_border_that_filters_is_the_last_hop_that_answers() {
    // dprk-2025 style: the border rejects with !X, nothing inside answers.
    let topo = |p: &ProbeSpec| match p.ttl {
        1..=4 => Answer::Router(ip(&format!("198.51.100.{}", p.ttl))),
        5 => Answer::Reject(ip("198.18.219.1"), 13),
        _ => Answer::Silent,
    };
    let mut p = prober(MockNet::new(topo), ProbeConfig::default());
    let dsts = destinations(&[net("198.18.178.0/24")], Hosts::Count(2)).expect("ok");
    let recs = round(&mut p, &dsts).await;
    assert_eq!(recs[0].mode, TraceMode::Full);
    assert_eq!(recs[1].mode, TraceMode::Window);
    assert_eq!(recs[1].first_ttl, 4);
    assert_eq!(recs[1].probes_sent, 2);
    let b = &p.borders[&net("198.18.178.0/24")];
    assert_eq!(
        (b.ttl, b.at.iter().next().copied()),
        (5, Some(ip("198.18.219.1")))
    );
}

#[test]
fn ids_are_unique_hex() {
    let a = new_id();
    let b = new_id();
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}
