//! The small tracer topologies, proven with independent tools: ECMP seen by
//! classic and Paris traceroute, silent hops, ICMP rate limiting and loss.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::{assert_clean, nth_addr, sweep, up};
use tumen_lab::oracle::{self, Method};
use tumen_lab::{Hop, Proto};

/// Addresses the model allows at `ttl` over all ECMP branches.
fn branch_addrs(paths: &[Vec<Hop>], ttl: usize) -> BTreeSet<IpAddr> {
    paths
        .iter()
        .filter_map(|p| match p.get(ttl - 1) {
            Some(Hop::Reply { addr, .. }) => Some(*addr),
            _ => None,
        })
        .collect()
}

#[test]
fn ecmp_classic_traceroute_sees_both_branches_paris_sees_one() {
    let lab = up("ecmp-diamond");
    let s = lab.scenario();
    let model = lab.model().expect("model");
    for target in &s.targets {
        let dst = nth_addr(target, 15);
        let paths = model.paths("vp", dst, Proto::Udp).expect("paths");
        assert_eq!(paths.len(), 2, "the diamond has two branches");
        let hop2 = branch_addrs(&paths, 2);
        let hop3 = branch_addrs(&paths, 3);
        let hop4 = branch_addrs(&paths, 4);
        assert_eq!((hop2.len(), hop3.len(), hop4.len()), (2, 2, 1));

        // Classic UDP traceroute: a new destination port per probe, so the
        // L4 hash spreads 8 probes per hop over both branches (all on one
        // branch: probability 2^-7 per run; up to 3 runs).
        let mut seen = BTreeSet::new();
        for _ in 0..3 {
            let o = oracle::linux_traceroute(&lab, "vp", dst, Method::Udp, 8).expect("traceroute");
            assert_eq!(o.hops.len(), 4, "{o}");
            for (ttl, allowed) in [(2, &hop2), (3, &hop3), (4, &hop4)] {
                let got = o.hops[ttl - 1].addrs();
                assert!(
                    got.is_subset(allowed),
                    "hop {ttl}: {got:?} not in {allowed:?}\n{o}"
                );
            }
            seen.extend(o.hops[1].addrs());
            if seen == hop2 {
                break;
            }
        }
        assert_eq!(
            seen, hop2,
            "classic traceroute to {dst} saw only one branch"
        );

        // Paris traceroute with one fixed flow: 20 of 20 runs take the same
        // branch, and each run is one whole branch of the model. (scamper
        // 20211212's udp-paris gets no answer over IPv6 in a namespace, so
        // IPv6 uses icmp-paris, whose flow is fixed as well.)
        let v6 = dst.is_ipv6();
        let (method, flow) = if v6 {
            ("icmp-paris", "")
        } else {
            ("udp-paris", "-s 40000 -d 33435")
        };
        let icmp_paths = model.paths("vp", dst, Proto::Icmp).expect("paths");
        let paths_of_method = if v6 { &icmp_paths } else { &paths };
        let mut runs = BTreeSet::new();
        for _ in 0..20 {
            let o = oracle::scamper_trace(&lab, "vp", dst, method, flow).expect("scamper");
            let path = paths_of_method
                .iter()
                .find(|p| oracle::matches(p, &o).is_ok())
                .unwrap_or_else(|| panic!("scamper path is no branch of the model:\n{o}"));
            runs.insert(path.clone());
        }
        assert_eq!(
            runs.len(),
            1,
            "one flow id took {} different paths",
            runs.len()
        );

        // Several flow ids (source ports) between them find both branches.
        if v6 {
            continue;
        }
        let mut branches = BTreeSet::new();
        for sport in 40_000..40_032u16 {
            let o = oracle::scamper_trace(
                &lab,
                "vp",
                dst,
                "udp-paris",
                &format!("-s {sport} -d 33435"),
            )
            .expect("scamper");
            branches.extend(o.hops[1].addrs());
            if branches == hop2 {
                break;
            }
        }
        assert_eq!(
            branches, hop2,
            "32 flow ids toward {dst} all hashed onto one branch"
        );
    }
}

#[test]
fn silent_hop_is_a_star_for_traceroute_and_scamper() {
    let lab = up("silent-and-lossy");
    let s = lab.scenario();
    let model = lab.model().expect("model");
    for target in &s.targets {
        let dst = nth_addr(target, 15);
        let want = model.path("vp", dst, Proto::Icmp).expect("path");
        assert_eq!(want[1], Hop::Silent, "r2 is silent");
        // Hops 1-4 cross no lossy router: they must match exactly.
        let first4 = &want[..4];
        let mut trimmed =
            oracle::linux_traceroute(&lab, "vp", dst, Method::Icmp, 1).expect("traceroute");
        trimmed.hops.truncate(4);
        oracle::matches(first4, &trimmed).unwrap_or_else(|e| panic!("traceroute: {e}"));
        let mut o = oracle::scamper_trace(&lab, "vp", dst, "icmp-paris", "").expect("scamper");
        o.hops.truncate(4);
        oracle::matches(first4, &o).unwrap_or_else(|e| panic!("scamper: {e}"));
        // The whole path, destination included, once the lossy hop lets a
        // probe and its answer through (bounded retries).
        let whole = (0..8).any(|_| {
            oracle::linux_traceroute(&lab, "vp", dst, Method::Icmp, 1)
                .is_ok_and(|o| oracle::matches(&want, &o).is_ok())
        });
        assert!(whole, "8 traceroutes to {dst} never showed the whole path");
    }
}

/// Counts `ping` replies of one kind: echo replies or time-exceeded lines.
fn ping(lab: &tumen_lab::Lab, args: &[&str]) -> String {
    let mut all = vec!["ping", "-n"];
    all.extend_from_slice(args);
    let out = lab.output("vp", &all).expect("ping");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn icmp_rate_limit_is_on_only_where_the_scenario_says() {
    let lab = up("silent-and-lossy");
    let dst = "198.18.20.15";
    // 40 probes expiring at r1 (no limit) within 0.2 s: every one answered.
    let r1 = ping(
        &lab,
        &["-c", "40", "-i", "0.005", "-W", "1", "-t", "1", dst],
    );
    let n1 = r1.matches("Time to live exceeded").count();
    assert_eq!(n1, 40, "r1 has no ICMP rate limit:\n{r1}");
    // The same at r3 (icmp_ratelimit_ms = 1000): the kernel's burst of 6,
    // then about one per second.
    let r3 = ping(
        &lab,
        &["-c", "40", "-i", "0.005", "-W", "1", "-t", "3", dst],
    );
    let n3 = r3.matches("Time to live exceeded").count();
    assert!(
        (1..=10).contains(&n3),
        "r3 answered {n3} of 40 (expected the burst of ~6):\n{r3}"
    );
}

/// Parses `N% packet loss` from ping's summary.
fn loss_percent(out: &str) -> f64 {
    out.split_whitespace()
        .find_map(|w| w.strip_suffix('%').and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no loss figure in:\n{out}"))
}

#[test]
fn loss_shows_at_the_configured_rate() {
    let lab = up("silent-and-lossy");
    let r4 = lab.scenario().node("r4").expect("r4");
    let p = f64::from(r4.loss_percent) / 100.0;
    // Request and reply both cross r4.
    let expected = 100.0 * (1.0 - (1.0 - p) * (1.0 - p));
    // 400 pings: standard deviation 2.5 points; allow 4 of them, 3 tries.
    let mut figures = Vec::new();
    for _ in 0..3 {
        let out = ping(
            &lab,
            &["-q", "-c", "400", "-i", "0.002", "-W", "1", "198.18.20.15"],
        );
        let got = loss_percent(&out);
        figures.push(got);
        if (got - expected).abs() <= 10.0 {
            return;
        }
    }
    panic!("loss {figures:?}% never within 10 points of {expected:.0}%");
}

#[test]
fn long_path_is_thirteen_hops_to_every_corner_of_the_target() {
    let lab = up("long-path");
    let dsts: Vec<IpAddr> = [
        "198.18.176.0",
        "198.18.177.20",
        "198.18.178.128",
        "198.18.179.255",
        "2001:db8:176::1",
        "2001:db8:176:ffff::abcd",
    ]
    .iter()
    .map(|a| a.parse().expect("addr"))
    .collect();
    let (seen, bad) = sweep(&lab, &dsts, Method::Icmp, true);
    assert_clean("long-path", &bad);
    assert_eq!(seen.len(), dsts.len());
    for (_, dst, o) in &seen {
        assert_eq!(o.hops.len(), 13, "{o}");
        assert_eq!(
            o.hops[12].addrs().into_iter().collect::<Vec<_>>(),
            [*dst],
            "{o}"
        );
    }
}
