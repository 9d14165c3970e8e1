//! Helpers shared by the lab tests (each test file is its own crate).
#![allow(dead_code)]

pub mod loopback;

use std::net::IpAddr;

use ipnet::IpNet;
use tumen_lab::oracle::{self, Method, Observed};
use tumen_lab::{Hop, Lab, Proto, Scenario};

/// Brings a shipped scenario up; a missing privilege or tool fails the test
/// with the lab's own explanation (CI runs as root: no silent skip).
pub fn up(name: &str) -> Lab {
    let s = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
    Lab::up(s).unwrap_or_else(|e| panic!("bringing up {name}: {e}"))
}

/// [`up`] with BIRD 2 on the scenario's BGP speakers (returns once BGP
/// has converged).
pub fn up_bgp(name: &str) -> Lab {
    let s = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
    Lab::up_with(s, tumen_lab::Routing::Bgp)
        .unwrap_or_else(|e| panic!("bringing up {name} on BGP: {e}"))
}

/// One address per host prefix of the scenario (`.15` / `::15`), in order:
/// the stand-in of a real target host such as ns1.kptc.kp.
pub fn host_addrs(s: &Scenario, v6: bool) -> Vec<IpAddr> {
    s.nodes
        .iter()
        .flat_map(|n| n.local_prefixes.iter())
        .filter(|p| matches!(p, IpNet::V6(_)) == v6)
        .map(|p| nth_addr(p, 15))
        .collect()
}

/// The `n`th address of a prefix.
pub fn nth_addr(p: &IpNet, n: u32) -> IpAddr {
    match p {
        IpNet::V4(p) => IpAddr::V4((u32::from(p.network()) + n).into()),
        IpNet::V6(p) => IpAddr::V6((u128::from(p.network()) + u128::from(n)).into()),
    }
}

/// True when `addr` is inside the scenario's target network.
pub fn in_target(s: &Scenario, addr: IpAddr) -> bool {
    s.targets.iter().any(|t| t.contains(&addr))
}

/// The ASN of the last responding hop before the first hop inside the
/// target: the upstream, as DESIGN.md defines it, read off observed hops.
pub fn observed_upstream(s: &Scenario, o: &Observed) -> Option<u32> {
    let mut last_outside = None;
    for h in &o.hops {
        if let Some(a) = h.addrs().into_iter().next() {
            if in_target(s, a) {
                return last_outside.and_then(|a| s.asn_of(a));
            }
            last_outside = Some(a);
        }
    }
    last_outside.and_then(|a| s.asn_of(a))
}

/// Traces from every vantage point to every destination with Linux
/// `traceroute` (and, for ICMP, one `scamper icmp-paris` run per vantage
/// point and family), compares each with the model, and returns the
/// observed traceroute paths plus a list of mismatches.
pub fn sweep(
    lab: &Lab,
    dsts: &[IpAddr],
    method: Method,
    with_scamper: bool,
) -> (Vec<(String, IpAddr, Observed)>, Vec<String>) {
    let s = lab.scenario();
    let proto = match method {
        Method::Icmp => Proto::Icmp,
        Method::Udp => Proto::Udp,
    };
    let model = lab.model().expect("model");
    let vps = s.vantage_points();
    std::thread::scope(|scope| {
        let handles: Vec<_> = vps
            .iter()
            .map(|vp| {
                let model = &model;
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    let mut bad = Vec::new();
                    let expect =
                        |dst: IpAddr| -> Result<Vec<Hop>, String> { model.path(vp, dst, proto) };
                    for &dst in dsts {
                        let want = match expect(dst) {
                            Ok(w) => w,
                            Err(e) => {
                                bad.push(format!("{vp} -> {dst}: {e}"));
                                continue;
                            }
                        };
                        match oracle::linux_traceroute(lab, vp, dst, method, 2) {
                            Ok(o) => {
                                if let Err(e) = oracle::matches(&want, &o) {
                                    bad.push(format!("traceroute {vp} -> {dst}: {e}"));
                                }
                                seen.push((vp.to_string(), dst, o));
                            }
                            Err(e) => bad.push(format!("traceroute {vp} -> {dst}: {e}")),
                        }
                    }
                    if with_scamper && method == Method::Icmp {
                        for v6 in [false, true] {
                            let fam: Vec<IpAddr> =
                                dsts.iter().copied().filter(|d| d.is_ipv6() == v6).collect();
                            if fam.is_empty() {
                                continue;
                            }
                            match oracle::scamper_traces(lab, vp, &fam, "icmp-paris") {
                                Ok(traces) => {
                                    for (dst, o) in traces {
                                        match expect(dst) {
                                            Ok(want) => {
                                                if let Err(e) = oracle::matches(&want, &o) {
                                                    bad.push(format!("scamper {vp} -> {dst}: {e}"));
                                                }
                                            }
                                            Err(e) => bad.push(format!("{vp} -> {dst}: {e}")),
                                        }
                                    }
                                }
                                Err(e) => bad.push(format!("scamper {vp}: {e}")),
                            }
                        }
                    }
                    (seen, bad)
                })
            })
            .collect();
        let mut seen = Vec::new();
        let mut bad = Vec::new();
        for h in handles {
            let (s, b) = h.join().expect("sweep thread");
            seen.extend(s);
            bad.extend(b);
        }
        (seen, bad)
    })
}

/// Fails with every mismatch listed.
pub fn assert_clean(what: &str, bad: &[String]) {
    assert!(
        bad.is_empty(),
        "{what}: {} mismatch(es):\n\n{}",
        bad.len(),
        bad.join("\n\n")
    );
}

/// TransTeleCom's AS number (the stand-in upstream of `ttk-activation`).
pub const TRANSTELECOM: u32 = 20485;

/// The dprk-2017 target prefixes that `ttk-activation` moves to
/// TransTeleCom for vp-fra and vp-sgp (vp-nyc keeps China Unicom).
pub fn ttk_moved() -> Vec<IpNet> {
    [
        "198.18.177.0/24",
        "198.18.178.0/24",
        "198.18.179.0/24",
        "2001:db8:177::/48",
        "2001:db8:178::/48",
        "2001:db8:179::/48",
    ]
    .iter()
    .map(|p| p.parse().expect("prefix"))
    .collect()
}
