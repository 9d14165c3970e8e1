//! The tracer state machine driven by the mock network through loss,
//! lateness, duplicates, reordering and foreign ICMP, on a paused clock.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use tokio::time::Instant;
use tumen_wire::{StopReason, TraceMode};

use super::*;
use crate::allow::AllowList;
use crate::mock::{icmp4_error, Answer, Fate, MockNet};
use crate::packet::{ProbeSpec, Protocol};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// A line of routers 10.x: hop n answers from 198.51.100.n; the
/// destination sits at `len + 1`.
fn line(len: u8) -> impl Fn(&ProbeSpec) -> Answer {
    move |p: &ProbeSpec| {
        if p.ttl <= len {
            if p.dst.is_ipv6() {
                Answer::Router(ip(&format!("2001:db8:2::{}", p.ttl)))
            } else {
                Answer::Router(ip(&format!("198.51.100.{}", p.ttl)))
            }
        } else {
            Answer::Destination
        }
    }
}

fn gate() -> Gate {
    let allow: Vec<IpNet> = vec![
        "198.18.0.0/15".parse().expect("net"),
        "2001:db8:176::/48".parse().expect("net"),
    ];
    Gate::new(AllowList::new(allow), 100_000)
}

fn job(dst: &str) -> Job {
    Job {
        dst: ip(dst),
        mode: TraceMode::Full,
        first_ttl: 1,
    }
}

const ID: Ident = Ident {
    ident: 0x4242,
    sport_base: 50000,
};

async fn trace(net: &mut MockNet, params: &TraceParams, jobs: &[Job]) -> (Vec<JobResult>, Stats) {
    let mut stats = Stats::default();
    let r = run(net, &mut gate(), params, ID, jobs, &mut stats).await;
    (r, stats)
}

/// (ttl, first reply's address or None) per hop.
fn path(r: &JobResult) -> Vec<(u8, Option<IpAddr>)> {
    r.hops
        .iter()
        .map(|h| (h.ttl, h.replies.first().map(|x| x.addr)))
        .collect()
}

fn expected_line(len: u8, dst: &str) -> Vec<(u8, Option<IpAddr>)> {
    let mut v: Vec<_> = (1..=len)
        .map(|t| (t, Some(ip(&format!("198.51.100.{t}")))))
        .collect();
    v.push((len + 1, Some(ip(dst))));
    v
}

#[tokio::test(start_paused = true)]
async fn clean_path_is_traced_hop_by_hop_to_the_destination() {
    for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
        let mut net = MockNet::new(line(5));
        let params = TraceParams {
            protocol: proto,
            port: if proto == Protocol::Tcp { 80 } else { 33434 },
            ..TraceParams::default()
        };
        let (r, stats) = trace(&mut net, &params, &[job("198.18.177.15")]).await;
        let r = &r[0];
        if proto == Protocol::Udp {
            // Port unreachable comes from the destination itself.
            assert_eq!(path(r), expected_line(5, "198.18.177.15"), "{proto:?}");
        } else {
            assert_eq!(path(r), expected_line(5, "198.18.177.15"), "{proto:?}");
        }
        assert_eq!(r.stop, StopReason::Completed, "{proto:?}");
        assert!(r.reached);
        assert_eq!(r.probes_sent, 6);
        assert_eq!(stats.sent, 6);
        assert_eq!(stats.matched, 6);
        assert_eq!(stats.unmatched + stats.duplicate + stats.late, 0);
        let last = &r.hops[5].replies[0];
        let want = match proto {
            Protocol::Icmp => "echo_reply",
            Protocol::Udp => "unreachable",
            Protocol::Tcp => "tcp_rst",
        };
        assert_eq!(last.kind, want);
        assert_eq!(r.hops[0].replies[0].quoted_ttl, Some(1));
        assert_eq!(r.hops[0].replies[0].kind, "time_exceeded");
        assert!(
            (r.hops[0].replies[0].rtt_ms - 20.0).abs() < 1.0,
            "{}",
            r.hops[0].replies[0].rtt_ms
        );
    }
}

#[tokio::test(start_paused = true)]
async fn paris_flow_fields_never_change_within_a_sweep() {
    for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
        let mut net = MockNet::new(line(6));
        let params = TraceParams {
            protocol: proto,
            flows: 3,
            ..TraceParams::default()
        };
        trace(&mut net, &params, &[job("198.18.177.15")]).await;
        for flow in 0..3u16 {
            let fields: HashSet<[u8; 4]> = net
                .sent
                .iter()
                .filter(|(_, s, _)| s.flow == flow)
                .map(|(_, _, b)| {
                    let l4 = &b[20..];
                    match proto {
                        // type, code, checksum
                        Protocol::Icmp => [l4[0], l4[1], l4[2], l4[3]],
                        // ports
                        Protocol::Udp | Protocol::Tcp => [l4[0], l4[1], l4[2], l4[3]],
                    }
                })
                .collect();
            assert_eq!(fields.len(), 1, "{proto:?} flow {flow}: {fields:?}");
        }
        let all: HashSet<[u8; 4]> = net
            .sent
            .iter()
            .map(|(_, _, b)| [b[20], b[21], b[22], b[23]])
            .collect();
        assert_eq!(all.len(), 3, "three flows, three flow ids");
    }
}

#[tokio::test(start_paused = true)]
async fn lost_probes_are_retried_and_the_hop_still_answers() {
    // The first attempt at TTL 2 and 3 is lost.
    let mut seen = HashSet::new();
    let mut net = MockNet::new(line(4)).with_faults(move |_, p| Fate {
        lost: (p.ttl == 2 || p.ttl == 3) && seen.insert(p.ttl),
        ..Fate::default()
    });
    let (r, stats) = trace(&mut net, &TraceParams::default(), &[job("198.18.177.1")]).await;
    assert_eq!(path(&r[0]), expected_line(4, "198.18.177.1"));
    assert_eq!(r[0].probes_sent, 7);
    assert_eq!(r[0].hops[1].sent, 2);
    assert_eq!(r[0].hops[0].sent, 1);
    assert_eq!(stats.matched, 5);
}

#[tokio::test(start_paused = true)]
async fn a_silent_hop_is_a_star_and_the_trace_goes_on() {
    let topo = |p: &ProbeSpec| {
        if p.ttl == 3 {
            Answer::Silent
        } else {
            line(5)(p)
        }
    };
    let mut net = MockNet::new(topo);
    let (r, _) = trace(&mut net, &TraceParams::default(), &[job("198.18.177.1")]).await;
    let mut want = expected_line(5, "198.18.177.1");
    want[2].1 = None;
    assert_eq!(path(&r[0]), want);
    assert_eq!(r[0].hops[2].sent, 2, "two attempts at the silent hop");
    assert_eq!(r[0].stop, StopReason::Completed);
}

#[tokio::test(start_paused = true)]
async fn the_gap_limit_stops_a_trace_into_silence() {
    let topo = |p: &ProbeSpec| {
        if p.ttl <= 4 {
            Answer::Router(ip(&format!("198.51.100.{}", p.ttl)))
        } else {
            Answer::Silent
        }
    };
    let mut net = MockNet::new(topo);
    let params = TraceParams {
        gap_limit: 3,
        ..TraceParams::default()
    };
    let start = Instant::now();
    let (r, _) = trace(&mut net, &params, &[job("198.18.177.1")]).await;
    assert_eq!(r[0].stop, StopReason::GapLimit);
    assert!(!r[0].reached);
    let ttls: Vec<u8> = r[0].hops.iter().map(|h| h.ttl).collect();
    assert_eq!(ttls, vec![1, 2, 3, 4, 5, 6, 7]);
    assert!(r[0].hops[4..]
        .iter()
        .all(|h| h.replies.is_empty() && h.sent == 2));
    assert_eq!(r[0].probes_sent, 4 + 6);
    // 6 unanswered probes at 1 s each, sent one after another.
    let took = Instant::now() - start;
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(7),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn admin_prohibited_stops_the_trace_with_bang_x() {
    let topo = |p: &ProbeSpec| {
        if p.ttl == 3 {
            let border = if p.dst.is_ipv6() {
                "2001:db8:219::1"
            } else {
                "198.18.219.1"
            };
            Answer::Reject(ip(border), 13)
        } else {
            line(5)(p)
        }
    };
    for (dst, border) in [
        ("198.18.177.1", "198.18.219.1"),
        ("2001:db8:176::1", "2001:db8:219::1"),
    ] {
        let mut net = MockNet::new(topo);
        let (r, _) = trace(&mut net, &TraceParams::default(), &[job(dst)]).await;
        assert_eq!(r[0].stop, StopReason::Unreachable, "{dst}");
        assert_eq!(r[0].hops.len(), 3);
        let last = &r[0].hops[2].replies[0];
        assert_eq!(last.annotation.as_deref(), Some("!X"), "{dst}");
        assert_eq!(last.addr, ip(border));
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_reply_is_kept_as_late_and_does_not_move_the_trace() {
    // First probe at TTL 2 answers after 1.5 s (wait is 1 s); its retry
    // answers in time, and the trace is still under way when the late one
    // arrives.
    let mut first = true;
    let mut net = MockNet::new(line(8)).with_faults(move |_, p| {
        let slow = p.ttl == 2 && std::mem::take(&mut first);
        Fate {
            delay: if slow {
                Duration::from_millis(1500)
            } else {
                Duration::from_millis(200)
            },
            ..Fate::default()
        }
    });
    let (r, stats) = trace(&mut net, &TraceParams::default(), &[job("198.18.177.1")]).await;
    assert_eq!(path(&r[0]), expected_line(8, "198.18.177.1"));
    let hop2 = &r[0].hops[1];
    assert_eq!(hop2.sent, 2);
    assert_eq!(hop2.replies.len(), 2, "{hop2:?}");
    assert!(!hop2.replies[0].late, "the retry answered first");
    assert!(hop2.replies[1].late);
    assert!(hop2.replies[1].rtt_ms >= 1500.0);
    assert_eq!(stats.late, 1);
    assert_eq!(stats.matched, 9);
}

#[tokio::test(start_paused = true)]
async fn duplicated_replies_are_counted_once() {
    let mut net = MockNet::new(line(4)).with_faults(|_, _| Fate {
        duplicates: 2,
        ..Fate::default()
    });
    let (r, stats) = trace(&mut net, &TraceParams::default(), &[job("198.18.177.1")]).await;
    assert_eq!(path(&r[0]), expected_line(4, "198.18.177.1"));
    assert!(r[0].hops.iter().all(|h| h.replies.len() == 1));
    assert_eq!(stats.matched, 5);
    assert_eq!(stats.duplicate, 10);
}

#[tokio::test(start_paused = true)]
async fn many_traces_with_reordered_replies_each_get_their_own_hops() {
    // 200 destinations in flight; reply delays vary so replies arrive out
    // of send order.
    let mut net = MockNet::new(|p: &ProbeSpec| {
        let IpAddr::V4(d) = p.dst else {
            return Answer::Silent;
        };
        let last = d.octets()[3];
        // Path length depends on the destination: 3 + last % 5 routers,
        // each naming the destination in its address.
        if p.ttl <= 3 + last % 5 {
            Answer::Router(ip(&format!("198.51.{}.{}", 100 + p.ttl, last)))
        } else {
            Answer::Destination
        }
    })
    .with_faults(|n, _| Fate {
        delay: Duration::from_millis(5 + (n as u64 * 37) % 300),
        ..Fate::default()
    });
    let jobs: Vec<Job> = (1..=200).map(|i| job(&format!("198.18.177.{i}"))).collect();
    let (r, stats) = trace(&mut net, &TraceParams::default(), &jobs).await;
    for (i, res) in r.iter().enumerate() {
        let last = (i + 1) as u8;
        let mut want: Vec<(u8, Option<IpAddr>)> = (1..=3 + last % 5)
            .map(|t| (t, Some(ip(&format!("198.51.{}.{last}", 100 + t)))))
            .collect();
        want.push((4 + last % 5, Some(res.dst)));
        assert_eq!(path(res), want, "{}", res.dst);
    }
    assert_eq!(stats.unmatched + stats.duplicate + stats.late, 0);
    // Interleaved: the first 200 probes went to 200 different targets.
    let first: HashSet<IpAddr> = net.sent.iter().take(200).map(|(_, s, _)| s.dst).collect();
    assert_eq!(first.len(), 200);
}

#[tokio::test(start_paused = true)]
async fn foreign_and_malformed_icmp_is_ignored() {
    let mut net = MockNet::new(line(4));
    let t0 = Instant::now();
    let src = net.src4;
    // Somebody else's traceroute (other ICMP ident) to one of our targets.
    let mut theirs = crate::packet::build(&ProbeSpec {
        protocol: Protocol::Icmp,
        src,
        dst: ip("198.18.177.1"),
        ttl: 1,
        ident: 0x1111,
        flow: 0,
        sport_base: 0,
        dport: 0,
        seq: 1,
    })
    .expect("build");
    for k in 0..50u64 {
        let at = t0 + Duration::from_millis(k * 7);
        net.inject(
            at,
            icmp4_error(ip("198.51.100.1"), src, 11, 0, &theirs),
            None,
        );
        // Our ident, but a destination we never probed.
        let mut ours_elsewhere = crate::packet::build(&ProbeSpec {
            protocol: Protocol::Icmp,
            src,
            dst: ip("198.18.200.9"),
            ttl: 1,
            ident: ID.ident,
            flow: 0,
            sport_base: 0,
            dport: 0,
            seq: (k + 1) as u16,
        })
        .expect("build");
        net.inject(
            at,
            icmp4_error(ip("198.51.100.9"), src, 11, 0, &ours_elsewhere),
            None,
        );
        ours_elsewhere.truncate(30);
        // Garbage and truncated packets.
        net.inject(at, vec![0x45, 0, 0], None);
        net.inject(
            at,
            icmp4_error(ip("198.51.100.9"), src, 11, 0, &ours_elsewhere[..12]),
            None,
        );
    }
    theirs.clear();
    let (r, stats) = trace(&mut net, &TraceParams::default(), &[job("198.18.177.1")]).await;
    assert_eq!(path(&r[0]), expected_line(4, "198.18.177.1"));
    assert!(r[0].hops.iter().all(|h| h.replies.len() == 1));
    assert_eq!(stats.matched, 5);
    assert!(stats.unmatched >= 20, "{stats:?}");
    assert!(stats.malformed >= 20, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn the_allow_list_is_enforced_for_every_probe() {
    let mut net = MockNet::new(line(3));
    let jobs = [
        job("198.18.177.1"),
        job("192.0.2.77"),
        job("2001:db8:99::1"),
    ];
    let (r, stats) = trace(&mut net, &TraceParams::default(), &jobs).await;
    assert_eq!(r[0].stop, StopReason::Completed);
    for res in &r[1..] {
        assert_eq!(res.stop, StopReason::Refused, "{}", res.dst);
        assert_eq!(res.probes_sent, 0);
        assert!(res
            .error
            .as_deref()
            .unwrap_or("")
            .contains("outside the allow-list"));
    }
    assert_eq!(stats.refused, 2);
    assert!(net.sent.iter().all(|(_, s, _)| s.dst == ip("198.18.177.1")));
}

#[tokio::test(start_paused = true)]
async fn the_rate_cap_holds_over_every_second() {
    let mut net = MockNet::new(line(8));
    let jobs: Vec<Job> = (1..=60).map(|i| job(&format!("198.18.176.{i}"))).collect();
    let mut stats = Stats::default();
    let mut g = Gate::new(
        AllowList::new(vec!["198.18.0.0/15".parse().expect("net")]),
        50,
    );
    let start = Instant::now();
    let r = run(
        &mut net,
        &mut g,
        &TraceParams::default(),
        ID,
        &jobs,
        &mut stats,
    )
    .await;
    assert!(r.iter().all(|x| x.reached));
    assert_eq!(stats.sent, 60 * 9);
    let took = (Instant::now() - start).as_secs_f64();
    assert!(took >= 540.0 / 50.0 - 0.1, "{took}");
    let times: Vec<Instant> = net.sent.iter().map(|(t, _, _)| *t).collect();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 51,
            "{in_window} probes in one second at a cap of 50"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn per_target_pacing_spaces_probes_to_one_destination() {
    let mut net = MockNet::new(line(5)).with_faults(|_, _| Fate {
        delay: Duration::from_millis(1),
        ..Fate::default()
    });
    let params = TraceParams {
        flows: 4,
        target_gap: Duration::from_millis(50),
        ..TraceParams::default()
    };
    trace(&mut net, &params, &[job("198.18.177.1")]).await;
    let times: Vec<Instant> = net.sent.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(times.len(), 24);
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(50),
            "{:?}",
            w[1] - w[0]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn several_flows_reveal_both_branches_of_a_load_balancer() {
    // Hop 2 is a load balancer: even flows go through .2, odd through .102.
    let topo = |p: &ProbeSpec| match p.ttl {
        1 => Answer::Router(ip("198.51.100.1")),
        2 if p.flow % 2 == 0 => Answer::Router(ip("198.51.100.2")),
        2 => Answer::Router(ip("198.51.100.102")),
        3 => Answer::Router(ip("198.51.100.3")),
        _ => Answer::Destination,
    };
    for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
        let mut net = MockNet::new(topo);
        let params = TraceParams {
            protocol: proto,
            flows: 4,
            ..TraceParams::default()
        };
        let (r, _) = trace(&mut net, &params, &[job("198.18.177.1")]).await;
        let hop2: HashSet<IpAddr> = r[0]
            .hops
            .iter()
            .filter(|h| h.ttl == 2)
            .flat_map(|h| h.replies.iter().map(|x| x.addr))
            .collect();
        assert_eq!(
            hop2,
            HashSet::from([ip("198.51.100.2"), ip("198.51.100.102")]),
            "{proto:?}"
        );
        assert_eq!(r[0].hops.len(), 16, "4 hops x 4 flows");
    }
}

#[tokio::test(start_paused = true)]
async fn ipv6_traces_match_on_the_quoted_ipv6_probe() {
    for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
        let mut net = MockNet::new(line(4));
        let params = TraceParams {
            protocol: proto,
            ..TraceParams::default()
        };
        let (r, stats) = trace(&mut net, &params, &[job("2001:db8:176::15")]).await;
        let got = path(&r[0]);
        let mut want: Vec<_> = (1..=4u8)
            .map(|t| (t, Some(ip(&format!("2001:db8:2::{t}")))))
            .collect();
        want.push((5, Some(ip("2001:db8:176::15"))));
        assert_eq!(got, want, "{proto:?}");
        assert_eq!(stats.matched, 5, "{proto:?}");
        assert_eq!(r[0].hops[0].replies[0].reply_ttl, Some(60));
    }
}

#[tokio::test(start_paused = true)]
async fn max_ttl_ends_a_trace_that_never_arrives() {
    let mut net = MockNet::new(line(50));
    let params = TraceParams {
        max_ttl: 6,
        ..TraceParams::default()
    };
    let (r, _) = trace(&mut net, &params, &[job("198.18.177.1")]).await;
    assert_eq!(r[0].stop, StopReason::MaxTtl);
    assert_eq!(r[0].hops.len(), 6);
}

#[test]
fn token_bucket_refills_at_its_rate_and_caps_the_burst() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(1000);
    // Burst of 10 ms worth.
    for _ in 0..10 {
        assert!(b.take(t0).is_ok());
    }
    let next = b.take(t0).expect_err("empty");
    assert_eq!(next - t0, Duration::from_millis(1));
    // A long idle time does not bank more than the burst.
    let later = t0 + Duration::from_secs(10);
    let granted = (0..100).filter(|_| b.take(later).is_ok()).count();
    assert_eq!(granted, 10);
}
