//! The DPRK scenarios, proven with independent tools: Linux `traceroute`
//! and `scamper` must show exactly the hops the scenario implies, from
//! every vantage point, over IPv4 and IPv6, before and after events.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::{
    assert_clean, host_addrs, observed_upstream, sweep, ttk_moved, up, up_bgp, TRANSTELECOM,
};
use tumen_lab::oracle::Method;

const CHINA_UNICOM: u32 = 4837;

fn all_hosts(lab: &tumen_lab::Lab) -> Vec<IpAddr> {
    let s = lab.scenario();
    let mut d = host_addrs(s, false);
    d.extend(host_addrs(s, true));
    d
}

/// Upstream ASN seen from each vantage point for each destination.
fn upstreams(
    lab: &tumen_lab::Lab,
    seen: &[(String, IpAddr, tumen_lab::oracle::Observed)],
) -> BTreeMap<(String, IpAddr), Option<u32>> {
    seen.iter()
        .map(|(vp, dst, o)| ((vp.clone(), *dst), observed_upstream(lab.scenario(), o)))
        .collect()
}

#[test]
fn dprk_2017_hops_match_traceroute_and_scamper_before_and_after_ttk_activation() {
    dprk_2017_before_and_after_ttk_activation(up("dprk-2017"));
}

/// The same assertions, with BIRD on every router: forwarding comes from
/// BGP, and `ttk-activation` is Star JV announcing three more-specifics to
/// TransTeleCom.
#[test]
fn dprk_2017_on_bgp_hops_match_traceroute_and_scamper_before_and_after_ttk_activation() {
    let lab = up_bgp("dprk-2017");
    let id = lab.id().to_string();
    let birds = bird_pids(&id);
    assert_eq!(birds.len(), 8, "one BIRD per speaker: {birds:?}");
    dprk_2017_before_and_after_ttk_activation(lab);
    // Dropped: every BIRD of the lab stopped by its pid, its files gone.
    for pid in birds {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "bird {pid} of lab {id} outlived the lab"
        );
    }
    assert!(!tumen_lab::bird::dir(&id).exists());
}

fn bird_pids(id: &str) -> Vec<i32> {
    tumen_lab::bird::daemon_pids(id)
}

/// `birdc show route all` on `node` for `prefix`: the AS path of the best
/// route, or None without one.
fn bgp_path(lab: &tumen_lab::Lab, node: &str, prefix: &str) -> Option<String> {
    let out = tumen_lab::bird::birdc(lab.id(), node, &["show", "route", "for", prefix, "all"])
        .expect("birdc");
    out.lines()
        .find_map(|l| l.trim().strip_prefix("BGP.as_path:"))
        .map(|p| p.trim().to_string())
}

fn dprk_2017_before_and_after_ttk_activation(mut lab: tumen_lab::Lab) {
    let bgp = lab.state().routing == tumen_lab::Routing::Bgp;
    let dsts = all_hosts(&lab);
    assert_eq!(dsts.len(), 12, "six host prefixes, both families");

    let (seen, bad) = sweep(&lab, &dsts, Method::Icmp, true);
    assert_clean("dprk-2017 before ttk-activation", &bad);
    let before = upstreams(&lab, &seen);
    assert!(
        before.values().all(|u| *u == Some(CHINA_UNICOM)),
        "before the event everything enters via China Unicom: {before:?}"
    );

    if bgp {
        // birdc, an oracle of its own: the routers' BGP view.
        assert_eq!(
            bgp_path(&lab, "tr-fra", "198.18.177.15").as_deref(),
            Some("4837 131279")
        );
        assert_eq!(
            bgp_path(&lab, "ttk-msk", "198.18.176.1").as_deref(),
            Some("131279"),
            "TTK has the route (NO_EXPORT)"
        );
        assert_eq!(
            bgp_path(&lab, "tr-fra", "198.18.176.1").as_deref(),
            Some("4837 131279"),
            "and keeps it to itself"
        );
    }

    lab.event("ttk-activation").expect("event");
    if bgp {
        assert_eq!(
            bgp_path(&lab, "tr-fra", "198.18.177.15").as_deref(),
            Some("20485 131279")
        );
        assert_eq!(
            bgp_path(&lab, "tr-sgp", "2001:db8:179::15").as_deref(),
            Some("20485 131279")
        );
        assert_eq!(
            bgp_path(&lab, "tr-nyc", "198.18.177.15").as_deref(),
            Some("4837 131279"),
            "tr-nyc filters AS20485 paths to the target"
        );
        assert_eq!(
            bgp_path(&lab, "tr-fra", "198.18.176.15").as_deref(),
            Some("4837 131279"),
            ".176 stays"
        );
    }
    let (seen, bad) = sweep(&lab, &dsts, Method::Icmp, true);
    assert_clean("dprk-2017 after ttk-activation", &bad);
    let after = upstreams(&lab, &seen);
    let moved = ttk_moved();
    for ((vp, dst), up) in &after {
        let want = if vp != "vp-nyc" && moved.iter().any(|p| p.contains(dst)) {
            TRANSTELECOM
        } else {
            CHINA_UNICOM
        };
        assert_eq!(*up, Some(want), "{vp} -> {dst} after ttk-activation");
    }
    let ttk = after.values().filter(|u| **u == Some(TRANSTELECOM)).count();
    assert_eq!(
        ttk, 12,
        "2 vantage points x 3 /24s x 2 families moved to TransTeleCom"
    );

    lab.event("ttk-withdrawal").expect("event");
    if bgp {
        assert_eq!(
            bgp_path(&lab, "tr-fra", "198.18.177.15").as_deref(),
            Some("4837 131279")
        );
    }
    let (seen, bad) = sweep(&lab, &dsts, Method::Icmp, false);
    assert_clean("dprk-2017 after ttk-withdrawal", &bad);
    assert_eq!(
        upstreams(&lab, &seen),
        before,
        "withdrawal restores the start"
    );
}

#[test]
fn dprk_2025_per_prefix_upstreams_silent_hops_and_filtering_borders() {
    let lab = up("dprk-2025");
    let dsts = all_hosts(&lab);

    // ICMP passes the borders: traces enter the target through silent hops.
    let (seen, bad) = sweep(&lab, &dsts, Method::Icmp, true);
    assert_clean("dprk-2025 ICMP", &bad);
    for ((vp, dst), up) in upstreams(&lab, &seen) {
        let d = dst.to_string();
        let want = if d.starts_with("198.18.177.") || d.starts_with("2001:db8:177:") {
            TRANSTELECOM
        } else if d.starts_with("198.18.178.") || d.starts_with("2001:db8:178:") {
            if vp == "vp-fra" {
                TRANSTELECOM
            } else {
                CHINA_UNICOM
            }
        } else {
            CHINA_UNICOM
        };
        assert_eq!(up, Some(want), "{vp} -> {dst}");
    }
    let silent = seen
        .iter()
        .filter(|(_, _, o)| o.hops.iter().any(|h| h.addrs().is_empty()))
        .count();
    assert_eq!(silent, seen.len(), "every trace crosses the silent kp-core");

    // UDP is filtered at both borders: the trace ends with `!X` there.
    let star_jv: Vec<IpAddr> = dsts
        .iter()
        .copied()
        .filter(|d| lab.scenario().asn_of(*d) == Some(131_279))
        .collect();
    let (seen, bad) = sweep(&lab, &star_jv, Method::Udp, false);
    assert_clean("dprk-2025 UDP", &bad);
    for (vp, dst, o) in &seen {
        let last = o.hops.last().expect("hops");
        assert!(
            last.replies.iter().any(|r| r.mark.as_deref() == Some("!X")),
            "{vp} -> {dst}: no !X at the border:\n{o}"
        );
    }
}
