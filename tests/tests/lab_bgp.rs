//! The 2017-10-01 timeline (`dyn-2017-10-01`) replayed on real BGP: at
//! every step BIRD's view at the transits (which /24 TransTeleCom carries)
//! and Linux traceroute and scamper from the vantage points (the hops the
//! scenario implies) agree with the timeline.

mod common;

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;

use common::{assert_clean, host_addrs, sweep};
use tumen_lab::oracle::Method;
use tumen_lab::{Lab, Routing, Scenario};

/// The AS path of `node`'s best route to `addr`, or None without a route.
fn as_path(lab: &Lab, node: &str, addr: &str) -> Option<String> {
    let out = match tumen_lab::bird::birdc(lab.id(), node, &["show", "route", "for", addr, "all"]) {
        Ok(out) => out,
        Err(e) if e.to_string().contains("Network not found") => return None,
        Err(e) => panic!("{e}"),
    };
    out.lines()
        .find_map(|l| l.trim().strip_prefix("BGP.as_path:"))
        .map(|p| p.trim().to_string())
}

#[test]
fn dyn_2017_10_01_replay_matches_the_timeline_at_every_step() {
    let s = Scenario::load("dyn-2017-10-01").expect("shipped");
    let replay = s.replay.clone().expect("[replay]");
    assert_eq!(replay.steps.len(), 13);
    let mut lab = Lab::up_with(s, Routing::Bgp).expect("up --bgp");
    let dsts: Vec<IpAddr> = host_addrs(lab.scenario(), false);
    assert_eq!(dsts.len(), 4, "Star JV's four /24s");
    let stop = AtomicBool::new(false);
    let mut problems = Vec::new();
    let mut steps = 0;
    tumen_lab::replay::play(&mut lab, &replay, &stop, |lab, step, played| {
        steps += 1;
        // Which of .176-.179 TransTeleCom carries for tr-fra and tr-sgp
        // after this step; None: all four withdrawn.
        let ttk: Option<&[u8]> = match step.event.as_str() {
            "ttk-transit" | "ttk-back" => Some(&[177, 178, 179]),
            "ttk-gone" | "all-up" => Some(&[]),
            "all-down" => None,
            "ttk-loss-177" => Some(&[178, 179]),
            "ttk-loss-178" => Some(&[179]),
            other => panic!("unexpected step {other}"),
        };
        for third in 176..=179u8 {
            let addr = format!("198.18.{third}.15");
            for tr in ["tr-fra", "tr-sgp", "tr-nyc"] {
                let got = as_path(lab, tr, &addr);
                let want = ttk.map(|moved| {
                    if tr != "tr-nyc" && moved.contains(&third) {
                        "20485 131279"
                    } else {
                        "4837 131279"
                    }
                });
                if got.as_deref() != want {
                    problems.push(format!(
                        "{} ({}): {tr} -> {addr}: AS path {got:?}, want {want:?}",
                        step.event,
                        tumen_lab::replay::format_utc(step.at)
                    ));
                }
            }
        }
        if ttk.is_some() {
            // The data plane follows: traceroute and scamper from every
            // vantage point show exactly the hops of the scenario's table.
            let (_, bad) = sweep(lab, &dsts, Method::Icmp, true);
            problems.extend(bad.into_iter().map(|b| format!("{}: {b}", step.event)));
        } else {
            let out = lab
                .output("vp-fra", &["ping", "-c", "1", "-W", "1", "198.18.177.15"])
                .expect("ping");
            if out.status.success() {
                problems.push("all-down: vp-fra still reaches 198.18.177.15".into());
            }
        }
        assert!(
            played.applied + 1e-9 >= played.due,
            "never early: {played:?}"
        );
    })
    .expect("replay");
    assert_eq!(steps, 13);
    assert_clean("dyn-2017-10-01 replay", &problems);
}
