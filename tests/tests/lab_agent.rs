//! `tumen-agent` in the lab: its traces against Linux `traceroute` and the
//! lab's model, the Paris property over ECMP, silent and lossy hops,
//! filtering borders, the allow-list and the pps cap as seen on the wire
//! (nftables counters), and the privileges it keeps while running.
//!
//! The agent is the binary `cargo build -p tumen-agent` put next to this
//! test's directory (`<target>/<profile>/tumen-agent`); `cargo test
//! --workspace` builds it before the tests run. It only ever runs inside a
//! vantage point's namespace of a lab this file brought up.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{in_target, nth_addr, ttk_moved, up, TRANSTELECOM};
use tumen_lab::oracle::{self, Observed};
use tumen_lab::{Hop, Lab, Mark, Proto, Scenario};
use tumen_wire::{Record, StopReason, TraceRecord};

const CHINA_UNICOM: u32 = 4837;

/// The agent binary of this build.
fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // <target>/<profile>/deps/lab_agent-<hash> -> <target>/<profile>/tumen-agent
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps");
    let bin = profile_dir.join("tumen-agent");
    assert!(
        bin.is_file(),
        "{} does not exist: build it first: cargo build -p tumen-agent \
         (same CARGO_TARGET_DIR and profile as the tests)",
        bin.display()
    );
    bin
}

/// What one agent process gave.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    traces: Vec<TraceRecord>,
    stdout: String,
    stderr: String,
    wall: Duration,
}

impl Run {
    /// The trace toward `dst` (exactly one).
    fn trace(&self, dst: IpAddr) -> &TraceRecord {
        let mut it = self.traces.iter().filter(|t| t.dst == dst);
        let t = it
            .next()
            .unwrap_or_else(|| panic!("no trace toward {dst}:\n{}", self.stdout));
        assert!(it.next().is_none(), "two traces toward {dst}");
        t
    }

    /// Seconds the agent says its round took (its stderr summary), or the
    /// wall time of the process.
    fn agent_seconds(&self) -> f64 {
        self.stderr
            .split("probes sent in ")
            .nth(1)
            .and_then(|rest| rest.split(" s").next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(self.wall.as_secs_f64())
    }
}

/// Reads all of `r` on a thread.
fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Kills (SIGKILL, by its pid) and reaps a child when dropped, so a
/// failing test leaves no agent running.
#[derive(Debug)]
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Waits for a child at most `limit`; kills it and panics after that.
fn wait_for(child: &mut Reaper, limit: Duration, what: &str) -> ExitStatus {
    let c = child.0.as_mut().expect("child");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = c.try_wait().expect("wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            panic!("{what} still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a command to completion (at most `limit`), collecting its output.
fn run_cmd(
    mut cmd: Command,
    limit: Duration,
    what: &str,
) -> (ExitStatus, String, String, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let mut child = Reaper(Some(child));
    let status = wait_for(&mut child, limit, what);
    let wall = start.elapsed();
    (
        status,
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
        wall,
    )
}

/// Parses the agent's stdout: every line must be a record of this schema.
fn parse_records(stdout: &str) -> Vec<TraceRecord> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match Record::from_json_line(l) {
            Ok(Record::Trace(t)) => Some(t),
            Ok(Record::Ping(_)) => None,
            Err(e) => panic!("agent printed a line that is no record ({e}): {l}"),
        })
        .collect()
}

/// Runs `tumen-agent --once --allow-reserved ARGS` inside `node`.
fn agent(lab: &Lab, node: &str, args: &[&str]) -> Run {
    let mut cmd = lab
        .command(node, agent_bin().to_str().expect("utf-8 path"))
        .expect("node");
    cmd.args(["--once", "--allow-reserved", "--id", node])
        .args(args);
    let what = format!("tumen-agent in {node} {args:?}");
    let (status, stdout, stderr, wall) = run_cmd(cmd, Duration::from_secs(120), &what);
    let traces = if status.success() {
        parse_records(&stdout)
    } else {
        Vec::new()
    };
    Run {
        status,
        traces,
        stdout,
        stderr,
        wall,
    }
}

/// Like [`agent`], but the run must succeed and every trace must be this
/// agent's.
fn agent_ok(lab: &Lab, node: &str, args: &[&str]) -> Run {
    let r = agent(lab, node, args);
    assert!(
        r.status.success(),
        "tumen-agent {args:?} in {node}: {}\nstderr: {}",
        r.status,
        r.stderr
    );
    for t in &r.traces {
        assert_eq!(t.agent, node, "--id is reported");
    }
    r
}

fn proto_flag(p: Proto) -> &'static [&'static str] {
    match p {
        Proto::Icmp => &["--protocol", "icmp"],
        Proto::Udp => &["--protocol", "udp"],
        Proto::Tcp => &["--protocol", "tcp", "--port", "80"],
        Proto::Any => unreachable!("no such probe protocol"),
    }
}

/// The hops of one flow, in TTL order.
fn flow_hops(t: &TraceRecord, flow: u16) -> Vec<&tumen_wire::Hop> {
    t.hops.iter().filter(|h| h.flow == flow).collect()
}

/// Responding addresses per TTL of one flow.
fn addrs_per_ttl(t: &TraceRecord, flow: u16) -> Vec<(u8, BTreeSet<IpAddr>)> {
    flow_hops(t, flow)
        .iter()
        .map(|h| (h.ttl, h.replies.iter().map(|r| r.addr).collect()))
        .collect()
}

/// A trace as one line: `1 192.0.2.2 | 2 * | 3 198.51.100.2 !X`.
fn show(t: &TraceRecord) -> String {
    let hops: Vec<String> = t
        .hops
        .iter()
        .map(|h| {
            let r: Vec<String> = h
                .replies
                .iter()
                .map(|r| match &r.annotation {
                    Some(a) => format!("{} {a}", r.addr),
                    None => r.addr.to_string(),
                })
                .collect();
            let flow = if t.flows > 1 {
                format!("/f{}", h.flow)
            } else {
                String::new()
            };
            if r.is_empty() {
                format!("{}{flow} * ({} sent)", h.ttl, h.sent)
            } else {
                format!("{}{flow} {}", h.ttl, r.join(" "))
            }
        })
        .collect();
    format!(
        "{} -> {} [{:?}, stop {:?}, reached {}]: {}",
        t.agent,
        t.dst,
        t.protocol,
        t.stop,
        t.reached,
        hops.join(" | ")
    )
}

/// Checks one flow of a full trace against a modelled path: the same TTLs,
/// every reply from the expected address with the expected annotation, no
/// reply at all at a silent hop (after every attempt), and the stop reason
/// the path's end implies.
fn check_model(want: &[Hop], t: &TraceRecord, flow: u16, probes: u8) -> Result<(), String> {
    let hops = flow_hops(t, flow);
    let fail = |why: String| {
        Err(format!(
            "{why}\n  model: {}\n  agent: {}",
            tumen_lab::expect::format_path(want),
            show(t)
        ))
    };
    if hops.len() != want.len() {
        return fail(format!(
            "flow {flow}: {} hops, the model has {}",
            hops.len(),
            want.len()
        ));
    }
    for (i, (w, h)) in want.iter().zip(&hops).enumerate() {
        let ttl = i + 1;
        if usize::from(h.ttl) != ttl {
            return fail(format!("hop {ttl} is numbered {}", h.ttl));
        }
        match w {
            Hop::Silent => {
                if !h.replies.is_empty() || h.sent != probes {
                    return fail(format!(
                        "hop {ttl} should be silent after {probes} attempts: {} sent, {} replies",
                        h.sent,
                        h.replies.len()
                    ));
                }
            }
            Hop::Reply { addr, mark } => {
                if h.replies.is_empty() {
                    return fail(format!("hop {ttl}: no reply, expected {w}"));
                }
                for r in &h.replies {
                    if r.addr != *addr || r.annotation.as_deref() != mark.annotation() {
                        return fail(format!(
                            "hop {ttl}: reply from {} ({:?}), expected {w}",
                            r.addr, r.annotation
                        ));
                    }
                }
            }
        }
    }
    let (stop, reached) = match want.last() {
        Some(Hop::Reply {
            mark: Mark::None, ..
        }) => (StopReason::Completed, true),
        Some(Hop::Reply { .. }) => (StopReason::Unreachable, false),
        _ => return Ok(()),
    };
    if t.stop != stop || t.reached != reached {
        return fail(format!("expected stop {stop:?}, reached {reached}"));
    }
    Ok(())
}

/// Runs Linux `traceroute -n` (`-I`, `-U`, `-T -p 80`) from `node`.
fn traceroute(lab: &Lab, node: &str, dst: IpAddr, proto: Proto) -> Result<Observed, String> {
    let d = dst.to_string();
    let mut args = vec!["traceroute", "-n", "-w", "1", "-m", "16", "-q", "2"];
    if dst.is_ipv6() {
        args.push("-6");
    }
    args.extend_from_slice(match proto {
        Proto::Icmp => &["-I"][..],
        Proto::Udp => &["-U"][..],
        Proto::Tcp => &["-T", "-p", "80"][..],
        Proto::Any => unreachable!(),
    });
    args.push(&d);
    let out = lab.output(node, &args).map_err(|e| e.to_string())?;
    oracle::parse_linux_traceroute(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("{e}; stderr {}", String::from_utf8_lossy(&out.stderr)))
}

/// Same responding addresses at every TTL in the agent's flow 0 and in
/// traceroute's output.
fn check_traceroute(t: &TraceRecord, o: &Observed) -> Result<(), String> {
    let agent: Vec<(u8, BTreeSet<IpAddr>)> = addrs_per_ttl(t, 0);
    let tr: Vec<(u8, BTreeSet<IpAddr>)> = o.hops.iter().map(|h| (h.ttl, h.addrs())).collect();
    if agent == tr {
        Ok(())
    } else {
        Err(format!(
            "agent and traceroute differ\n  agent: {}\n  traceroute:\n{o}",
            show(t)
        ))
    }
}

/// The upstream ASN read off an agent trace (flow 0): the last responding
/// hop outside the target before the first hop inside it.
fn upstream(s: &Scenario, t: &TraceRecord) -> Option<u32> {
    let mut last_outside = None;
    for h in flow_hops(t, 0) {
        if let Some(r) = h.replies.first() {
            if in_target(s, r.addr) {
                return last_outside.and_then(|a| s.asn_of(a));
            }
            last_outside = Some(r.addr);
        }
    }
    last_outside.and_then(|a| s.asn_of(a))
}

/// The destinations the agent derives from the scenario's targets with the
/// default `--hosts 1`: the `.1` / `::1` of every /24 and /48.
fn first_hosts(s: &Scenario) -> BTreeSet<IpAddr> {
    s.nodes
        .iter()
        .flat_map(|n| n.local_prefixes.iter())
        .map(|p| nth_addr(p, 1))
        .collect()
}

fn target_flags(s: &Scenario) -> Vec<String> {
    s.targets
        .iter()
        .flat_map(|t| ["--target".to_string(), t.to_string()])
        .collect()
}

/// One agent run per (vantage point, protocol) over every target prefix
/// at once; each trace is checked against the model and, when asked, Linux
/// `traceroute` toward the same address. Returns the traces and every
/// mismatch.
fn sweep(
    lab: &Lab,
    protos: &[Proto],
    extra: &[&str],
    probes: u8,
    with_traceroute: bool,
) -> (Vec<(Proto, TraceRecord)>, Vec<String>) {
    let s = lab.scenario();
    let model = lab.model().expect("model");
    let want_dsts = first_hosts(s);
    let targets = target_flags(s);
    std::thread::scope(|scope| {
        let handles: Vec<_> = s
            .vantage_points()
            .into_iter()
            .map(|vp| {
                let (model, want_dsts, targets) = (&model, &want_dsts, &targets);
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    let mut bad = Vec::new();
                    for &proto in protos {
                        let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
                        args.extend_from_slice(proto_flag(proto));
                        args.extend_from_slice(&["--no-window", "--probes"]);
                        let p = probes.to_string();
                        args.push(&p);
                        args.extend_from_slice(extra);
                        let run = agent_ok(lab, vp, &args);
                        let dsts: BTreeSet<IpAddr> = run.traces.iter().map(|t| t.dst).collect();
                        if &dsts != want_dsts || run.traces.len() != want_dsts.len() {
                            bad.push(format!(
                                "{vp} {proto}: traced {dsts:?}, expected one trace to each of \
                                 {want_dsts:?}"
                            ));
                        }
                        for t in &run.traces {
                            match model.path(vp, t.dst, proto) {
                                Ok(want) => {
                                    if let Err(e) = check_model(&want, t, 0, probes) {
                                        bad.push(format!("{vp} {proto} model: {e}"));
                                    }
                                }
                                Err(e) => bad.push(format!("{vp} -> {}: {e}", t.dst)),
                            }
                            if with_traceroute {
                                match traceroute(lab, vp, t.dst, proto) {
                                    Ok(o) => {
                                        if let Err(e) = check_traceroute(t, &o) {
                                            bad.push(format!("{vp} {proto} traceroute: {e}"));
                                        }
                                    }
                                    Err(e) => bad.push(format!("traceroute {vp} {proto}: {e}")),
                                }
                            }
                            seen.push((proto, t.clone()));
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

fn assert_clean(what: &str, bad: &[String]) {
    assert!(
        bad.is_empty(),
        "{what}: {} mismatch(es):\n\n{}",
        bad.len(),
        bad.join("\n\n")
    );
}

/// The kind of answer a completed trace ends with, per protocol.
fn assert_final_kinds(seen: &[(Proto, TraceRecord)]) {
    for (proto, t) in seen {
        let last = flow_hops(t, 0)
            .last()
            .and_then(|h| h.replies.first())
            .unwrap_or_else(|| panic!("empty last hop: {}", show(t)));
        let (kind, port_unreach) = match proto {
            Proto::Icmp => ("echo_reply", false),
            Proto::Udp => ("unreachable", true),
            Proto::Tcp => ("tcp_rst", false),
            Proto::Any => unreachable!(),
        };
        assert_eq!(last.kind, kind, "{}", show(t));
        if port_unreach {
            let code = if t.dst.is_ipv6() { (1, 4) } else { (3, 3) };
            assert_eq!((last.icmp_type, last.icmp_code), code, "{}", show(t));
            assert_eq!(last.annotation, None, "port unreachable is no !mark");
        }
    }
}

/// Proves, on dprk-2017 from all three vantage points, that the agent's
/// ICMP, UDP and TCP (port 80) Paris traces toward every target /24 and
/// /48 (IPv4 and IPv6, one agent run per vantage point and protocol with
/// all prefixes at once, expanded to their `.1` / `::1`) show, TTL by TTL,
/// exactly the addresses Linux `traceroute -I` / `-U` / `-T -p 80` shows
/// toward the same address and exactly the lab model's path, ending with
/// the destination's own answer (echo reply, port unreachable, TCP RST);
/// everything enters via China Unicom. After `ttk-activation` the same
/// holds for every protocol, and the upstream read off the agent's hops
/// is TransTeleCom for exactly vp-fra/vp-sgp x .177-.179 (both families).
#[test]
fn dprk_2017_agent_hops_equal_traceroute_and_model_before_and_after_ttk_activation() {
    let mut lab = up("dprk-2017");
    let protos = [Proto::Icmp, Proto::Udp, Proto::Tcp];

    let (seen, bad) = sweep(&lab, &protos, &[], 2, true);
    assert_clean("dprk-2017 before ttk-activation", &bad);
    assert_eq!(
        seen.len(),
        3 * 3 * 12,
        "3 vantage points x 3 protocols x 12"
    );
    assert_final_kinds(&seen);
    for (proto, t) in &seen {
        assert_eq!(
            upstream(lab.scenario(), t),
            Some(CHINA_UNICOM),
            "{proto}: {}",
            show(t)
        );
    }

    lab.event("ttk-activation").expect("event");
    let (seen, bad) = sweep(&lab, &protos, &[], 2, true);
    assert_clean("dprk-2017 after ttk-activation", &bad);
    assert_final_kinds(&seen);
    let moved = ttk_moved();
    let mut ttk = BTreeMap::<String, usize>::new();
    for (proto, t) in &seen {
        let want = if t.agent != "vp-nyc" && moved.iter().any(|p| p.contains(&t.dst)) {
            TRANSTELECOM
        } else {
            CHINA_UNICOM
        };
        let got = upstream(lab.scenario(), t);
        assert_eq!(got, Some(want), "{proto}: {}", show(t));
        if got == Some(TRANSTELECOM) {
            *ttk.entry(proto.to_string()).or_default() += 1;
        }
    }
    for proto in protos {
        assert_eq!(
            ttk.get(&proto.to_string()).copied().unwrap_or(0),
            12,
            "{proto}: 2 vantage points x 3 /24s x 2 families via TransTeleCom"
        );
    }
}

/// Which model branch (index into `paths`) one flow of a trace is, if it
/// is exactly one of them.
fn branch_of(paths: &[Vec<Hop>], t: &TraceRecord, flow: u16) -> Option<usize> {
    paths
        .iter()
        .position(|p| check_model(p, t, flow, 2).is_ok())
}

/// Proves the Paris property on the ECMP diamond (r1 hashes on L4 ports)
/// for UDP and TCP over IPv4 and IPv6: in 20 of 20 separate `--once` runs,
/// flow 0's hops 2 and 3 (the branch router and r3's ingress address,
/// which differs by branch) and the rest of the path are exactly one
/// branch of the model, so every probe of the trace followed one path (a
/// tracer changing ports per probe would mix branches in about half of
/// its runs). Each run draws a new random source port, so across the 20
/// runs both branches appear (all on one: probability 2^-19): the hashing
/// is real and the consistency is not an accident of a single path. With
/// `--flows 8`, one run finds both branches, each flow consistent on its
/// own (up to 3 runs: all 8 flows on one branch has probability 2^-7).
#[test]
fn ecmp_one_flow_keeps_one_branch_and_eight_flows_find_both() {
    let lab = up("ecmp-diamond");
    let s = lab.scenario();
    let model = lab.model().expect("model");
    for target in &s.targets {
        let dst = nth_addr(target, 15);
        let d = dst.to_string();
        for proto in [Proto::Udp, Proto::Tcp] {
            let paths = model.paths("vp", dst, proto).expect("paths");
            assert_eq!(paths.len(), 2, "two branches");
            let mut args = vec!["--target", &d, "--no-window"];
            args.extend_from_slice(proto_flag(proto));
            let mut branches = Vec::new();
            for _ in 0..20 {
                let run = agent_ok(&lab, "vp", &args);
                let t = run.trace(dst);
                assert!(t.reached, "{}", show(t));
                let b = branch_of(&paths, t, 0).unwrap_or_else(|| {
                    panic!(
                        "{proto} flow 0 is no single branch of the model (mixed paths?):\n  {}\n  \
                         branches: {} / {}",
                        show(t),
                        tumen_lab::expect::format_path(&paths[0]),
                        tumen_lab::expect::format_path(&paths[1])
                    )
                });
                branches.push(b);
            }
            let distinct: BTreeSet<usize> = branches.iter().copied().collect();
            println!("{proto} {dst}: branch per run {branches:?}");
            assert_eq!(
                distinct.len(),
                2,
                "{proto} {dst}: 20 runs with random source ports all took branch {branches:?}"
            );

            let mut args8 = args.clone();
            args8.extend_from_slice(&["--flows", "8"]);
            let mut found = BTreeSet::new();
            let mut tries = 0;
            while found.len() < 2 && tries < 3 {
                tries += 1;
                let run = agent_ok(&lab, "vp", &args8);
                let t = run.trace(dst);
                assert_eq!(t.flows, 8);
                assert!(t.reached, "{}", show(t));
                for flow in 0..8 {
                    let b = branch_of(&paths, t, flow).unwrap_or_else(|| {
                        panic!("{proto} flow {flow} is no single branch:\n  {}", show(t))
                    });
                    found.insert(b);
                }
            }
            assert_eq!(
                found.len(),
                2,
                "{proto} {dst}: 3 runs of 8 flows each stayed on one branch"
            );
        }
    }
}

/// Proves on silent-and-lossy (ICMP, IPv4 and IPv6, `--probes 3`):
/// the silent r2 is a hop with no reply after all 3 attempts while the
/// trace goes on past it; r1 and r4 answer every time; every reply at
/// every TTL comes from the model's address (the destination's at and
/// beyond its own TTL); and through r4, which drops 30% of what it
/// forwards both ways (49% of probes come back), the destination answers
/// at its own TTL within 3 attempts in most traces (expected
/// 1 - 0.51^3 = 87%, asserted at least 20 of 32) and the trace completes
/// in nearly all (the gap limit lets TTLs 6 and 7 try again: 99.8%,
/// asserted at least 30 of 32). The per-probe success rate through r4 is
/// measured too (asserted within 0.25-0.75; expected 0.49).
#[test]
fn silent_hop_is_empty_and_lossy_hop_still_completes() {
    let lab = up("silent-and-lossy");
    let s = lab.scenario();
    let model = lab.model().expect("model");
    let dsts: Vec<IpAddr> = s.targets.iter().map(|t| nth_addr(t, 15)).collect();
    let wants: Vec<Vec<Hop>> = dsts
        .iter()
        .map(|d| model.path("vp", *d, Proto::Icmp).expect("path"))
        .collect();
    for w in &wants {
        assert_eq!(w.len(), 5, "r1 r2 r3 r4 h");
        assert_eq!(w[1], Hop::Silent, "r2 is silent");
    }
    let d: Vec<String> = dsts.iter().map(ToString::to_string).collect();
    let args = [
        "--target",
        &d[0],
        "--target",
        &d[1],
        "--no-window",
        "--probes",
        "3",
        "--wait",
        "200ms",
    ];
    let runs = 16;
    let (mut traces, mut reached, mut at_own_ttl) = (0, 0, 0);
    let (mut sent_through, mut answered_through) = (0u32, 0u32);
    let mut r3_answered = 0;
    let mut bad = Vec::new();
    for _ in 0..runs {
        let run = agent_ok(&lab, "vp", &args);
        for (dst, want) in dsts.iter().zip(&wants) {
            let t = run.trace(*dst);
            traces += 1;
            let hops = flow_hops(t, 0);
            let mut fail = |why: &str| bad.push(format!("{why}: {}", show(t)));
            // The fixed part: r1 answers, r2 is silent after 3 attempts, r4
            // answers (its own time-exceeded is not forwarded, so not lost).
            if hops.len() < 5 {
                fail("stopped before the destination's TTL");
                continue;
            }
            let addr_of = |i: usize| match want[i.min(want.len() - 1)] {
                Hop::Reply { addr, .. } => Some(addr),
                Hop::Silent => None,
            };
            if hops[0].replies.is_empty() {
                fail("r1 did not answer");
            }
            if !hops[1].replies.is_empty() || hops[1].sent != 3 {
                fail("r2 is not a silent hop probed 3 times");
            }
            if hops[3].replies.is_empty() {
                fail("r4 did not answer");
            }
            if !hops[2].replies.is_empty() {
                r3_answered += 1;
            }
            for (i, h) in hops.iter().enumerate() {
                if usize::from(h.ttl) != i + 1 {
                    fail("TTLs are not 1, 2, 3, ...");
                }
                if h.replies.iter().any(|r| Some(r.addr) != addr_of(i)) {
                    fail(&format!("hop {}: reply from an unexpected address", h.ttl));
                }
                if i >= 4 {
                    sent_through += u32::from(h.sent);
                    answered_through += h.replies.iter().filter(|r| !r.late).count() as u32;
                }
            }
            if t.reached && t.stop == StopReason::Completed {
                reached += 1;
            }
            if !hops[4].replies.is_empty() {
                at_own_ttl += 1;
            }
        }
    }
    assert_clean("silent-and-lossy", &bad);
    let rate = f64::from(answered_through) / f64::from(sent_through.max(1));
    println!(
        "silent-and-lossy: {reached}/{traces} traces completed, {at_own_ttl}/{traces} answered at \
         the destination's TTL within 3 attempts, {answered_through}/{sent_through} probes through \
         r4 answered ({rate:.2}), r3 (rate-limited) answered in {r3_answered}/{traces}"
    );
    assert!(reached >= 30, "{reached}/{traces} traces completed");
    assert!(
        at_own_ttl >= 20,
        "{at_own_ttl}/{traces} destination answers at its TTL"
    );
    assert!(
        (0.25..=0.75).contains(&rate),
        "probes through r4 answered at {rate:.2}, expected about 0.49"
    );
}

/// Proves on dprk-2025 from all three vantage points, IPv4 and IPv6, that
/// UDP and TCP traces toward the Star JV prefixes end at the filtering
/// border with `!X` (admin-prohibited, stop `unreachable`, not reached),
/// that silent hops (ttk-msk, kp-core) are hops without replies after
/// every attempt, and that every trace (ICMP ones entering the target
/// through the silent kp-core included, and UDP/TCP toward KPTC and
/// SatGate, which the borders do not filter) equals the model's path.
#[test]
fn dprk_2025_udp_and_tcp_stop_with_admin_prohibited_at_the_border() {
    let lab = up("dprk-2025");
    let s = lab.scenario();
    let (seen, bad) = sweep(
        &lab,
        &[Proto::Udp, Proto::Tcp, Proto::Icmp],
        &["--wait", "500ms"],
        2,
        false,
    );
    assert_clean("dprk-2025", &bad);
    assert_eq!(seen.len(), 3 * 3 * 12);
    let mut filtered = 0;
    let mut silent = 0;
    for (proto, t) in &seen {
        let star_jv = s.asn_of(t.dst) == Some(131_279);
        let hops = flow_hops(t, 0);
        silent += hops.iter().filter(|h| h.replies.is_empty()).count();
        if star_jv && *proto != Proto::Icmp {
            let last = hops.last().and_then(|h| h.replies.first());
            assert!(
                last.is_some_and(|r| r.annotation.as_deref() == Some("!X")
                    && r.kind == "unreachable"
                    && !in_target(s, r.addr)),
                "{proto}: no !X at the border: {}",
                show(t)
            );
            assert_eq!(t.stop, StopReason::Unreachable, "{}", show(t));
            assert!(!t.reached);
            filtered += 1;
        } else {
            assert!(t.reached, "{proto}: {}", show(t));
        }
    }
    assert_eq!(
        filtered,
        3 * 2 * 8,
        "3 vantage points x UDP/TCP x 8 Star JV destinations"
    );
    assert!(silent > 0, "the scenario's silent hops were crossed");
}

/// A named nftables counter in `node`, counting packets toward `prefixes`
/// at `hook` (`output` or `prerouting`), in its own table.
fn nft_counter(lab: &Lab, node: &str, hook: &str, prefixes: &[&str]) {
    let rules: String = prefixes
        .iter()
        .map(|p| {
            let fam = if p.contains(':') { "ip6" } else { "ip" };
            format!("    {fam} daddr {p} counter name \"probes\"\n")
        })
        .collect();
    let ruleset = format!(
        "table inet tumen_test {{\n  counter probes {{ }}\n  chain c {{\n    type filter hook \
         {hook} priority -300; policy accept;\n{rules}  }}\n}}\n"
    );
    let mut c = lab.command(node, "nft").expect("node");
    c.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("nft");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ruleset.as_bytes())
        .expect("write ruleset");
    let out = child.wait_with_output().expect("nft");
    assert!(
        out.status.success(),
        "nft in {node}: {}\n{ruleset}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packets the counter of [`nft_counter`] saw in `node`.
fn nft_packets(lab: &Lab, node: &str) -> u64 {
    let out = lab
        .output(
            node,
            &["nft", "list", "counter", "inet", "tumen_test", "probes"],
        )
        .expect("nft");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "packets" {
            if let Some(n) = words.next().and_then(|n| n.parse().ok()) {
                return n;
            }
        }
    }
    panic!(
        "no packet count in `nft list counter` of {node}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Proves that a target outside the allow-list is refused before anything
/// is sent: for an address, a prefix, an IPv6 address and a mix of an
/// allowed and a refused target, over each protocol, the agent exits 64
/// saying "outside the allow-list", prints no record, and nftables
/// counters on vp-fra's output toward the whole target space and at the
/// input of kp-177 (the node owning 198.18.177.0/24 and 2001:db8:177::/48)
/// stay at 0. Control: an allowed trace to the same addresses moves both
/// counters (vp-fra's by exactly the probes the agent reports), so the
/// counters do see the agent's probes.
#[test]
fn target_outside_the_allow_list_is_refused_and_nothing_is_sent() {
    let lab = up("dprk-2017");
    nft_counter(
        &lab,
        "vp-fra",
        "output",
        &["198.18.176.0/22", "2001:db8:176::/47"],
    );
    nft_counter(
        &lab,
        "kp-177",
        "prerouting",
        &["198.18.177.0/24", "2001:db8:177::/48"],
    );
    let refused: [&[&str]; 4] = [
        &["--allow", "198.18.176.0/24", "--target", "198.18.177.1"],
        &[
            "--allow",
            "198.18.176.0/24",
            "--target",
            "198.18.177.0/24",
            "--protocol",
            "udp",
        ],
        &[
            "--allow",
            "2001:db8:176::/48",
            "--target",
            "2001:db8:177::1",
            "--protocol",
            "tcp",
        ],
        &[
            "--allow",
            "198.18.176.0/24",
            "--target",
            "198.18.176.1",
            "--target",
            "198.18.177.1",
        ],
    ];
    for args in refused {
        let run = agent(&lab, "vp-fra", args);
        assert_eq!(run.status.code(), Some(64), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("outside the allow-list"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stdout.trim().is_empty(),
            "{args:?} printed: {}",
            run.stdout
        );
        assert_eq!(nft_packets(&lab, "vp-fra"), 0, "{args:?}: sent by vp-fra");
        assert_eq!(
            nft_packets(&lab, "kp-177"),
            0,
            "{args:?}: arrived at kp-177"
        );
    }

    // Control: the counters see an allowed trace.
    let run = agent_ok(
        &lab,
        "vp-fra",
        &[
            "--allow",
            "198.18.177.0/24",
            "--allow",
            "2001:db8:177::/48",
            "--target",
            "198.18.177.1",
            "--target",
            "2001:db8:177::1",
        ],
    );
    assert_eq!(run.traces.len(), 2);
    let probes: u64 = run.traces.iter().map(|t| u64::from(t.probes_sent)).sum();
    assert!(run.traces.iter().all(|t| t.reached), "{}", run.stdout);
    assert_eq!(
        nft_packets(&lab, "vp-fra"),
        probes,
        "every probe the agent reports, and nothing else, left vp-fra"
    );
    assert!(
        nft_packets(&lab, "kp-177") >= 2,
        "the last probe of each trace reached kp-177"
    );
}

/// Proves the global pps cap on the wire: `--pps 200` over all 256
/// addresses of 198.18.177.0/24 (`--hosts all --no-window --max-ttl 3`:
/// exactly 768 probes, about 0.1 s of work uncapped) puts exactly the
/// probes it reports on vp-fra's output (nftables counter) at no more than
/// 200 * 1.1 + 5 per second over the agent's round time, and takes at
/// least 768/200 s less the 10 ms burst by the test's own clock.
#[test]
fn pps_cap_holds_on_the_wire() {
    let lab = up("dprk-2017");
    nft_counter(&lab, "vp-fra", "output", &["198.18.177.0/24"]);
    let run = agent_ok(
        &lab,
        "vp-fra",
        &[
            "--pps",
            "200",
            "--hosts",
            "all",
            "--target",
            "198.18.177.0/24",
            "--no-window",
            "--max-ttl",
            "3",
        ],
    );
    assert_eq!(run.traces.len(), 256, "every address of the /24");
    let reported: u64 = run.traces.iter().map(|t| u64::from(t.probes_sent)).sum();
    let on_wire = nft_packets(&lab, "vp-fra");
    assert_eq!(on_wire, reported, "counted on the wire = reported");
    assert!(
        on_wire >= 300,
        "only {on_wire} probes: the cap was not tested"
    );
    for t in &run.traces {
        assert_eq!(t.stop, StopReason::MaxTtl, "{}", show(t));
        assert_eq!(addrs_per_ttl(t, 0).len(), 3, "{}", show(t));
    }
    let secs = run.agent_seconds();
    let rate = on_wire as f64 / secs;
    let wall_rate = on_wire as f64 / run.wall.as_secs_f64();
    println!(
        "pps cap 200: {on_wire} probes in {secs:.2} s (agent) = {rate:.1}/s; {:.2} s wall = \
         {wall_rate:.1}/s",
        run.wall.as_secs_f64()
    );
    assert!(
        rate <= 200.0 * 1.1 + 5.0,
        "{rate:.1} probes/s over a cap of 200"
    );
    assert!(
        run.wall.as_secs_f64() >= (on_wire as f64 - 2.0) / 200.0,
        "{on_wire} probes in {:?} of wall time",
        run.wall
    );
}

/// One capability line of /proc/PID/status, as a bit mask.
fn status_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| {
            let v = v.trim_start_matches(':').trim();
            u64::from_str_radix(v, 16).ok()
        })
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Proves the privilege drop of a running agent: started as root in
/// continuous mode (`--interval 1s`) in vp-fra, once its first JSON line
/// is out, /proc shows CapEff, CapPrm, CapInh, CapAmb and (root may drop
/// it) CapBnd all empty and NoNewPrivs 1; SIGTERM to its pid stops it with
/// status 0 within 5 s. Then: a copy of the binary with the file
/// capability `cap_net_raw+ep`, run as user nobody (uid/gid 65534, no
/// groups) in vp-fra, completes a `--once` trace; the same copy without
/// the capability exits 77 naming CAP_NET_RAW.
#[test]
fn agent_drops_every_capability_and_runs_unprivileged_with_cap_net_raw() {
    let lab = up("dprk-2017");
    let bin = agent_bin();
    let mut cmd = lab
        .command("vp-fra", bin.to_str().expect("utf-8"))
        .expect("node");
    cmd.args([
        "--allow-reserved",
        "--target",
        "198.18.177.1",
        "--interval",
        "1s",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start agent");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = drain(child.stderr.take().expect("stderr"));
    let mut child = Reaper(Some(child));
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut n = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            n += 1;
            let _ = tx.send(line);
        }
        n
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no JSON line within 10 s");
    match Record::from_json_line(&first) {
        Ok(Record::Trace(t)) => assert!(t.reached, "{}", show(&t)),
        other => panic!("first line is no trace record: {other:?}: {first}"),
    }
    // `ip netns exec` execs the program: the pid is the agent's.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "tumen-agent");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for key in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(status_field(&status, key), 0, "{key} of the running agent");
    }
    let nnp = status
        .lines()
        .find_map(|l| l.strip_prefix("NoNewPrivs:"))
        .map(str::trim);
    assert_eq!(nnp, Some("1"), "NoNewPrivs:\n{status}");

    let t0 = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let st = wait_for(&mut child, Duration::from_secs(5), "agent after SIGTERM");
    println!("agent stopped {:?} after SIGTERM", t0.elapsed());
    let lines = reader.join().expect("reader");
    let err = stderr.join().expect("stderr");
    assert!(st.success(), "exit after SIGTERM: {st}; stderr: {err}");
    assert!(lines >= 1);

    // Unprivileged, with the file capability only.
    let setcap = tumen_lab::lab::find_tool("setcap")
        .expect("setcap is missing: apt-get install libcap2-bin");
    let setpriv = tumen_lab::lab::find_tool("setpriv")
        .expect("setpriv is missing: apt-get install util-linux");
    let dir = TempDir(std::env::temp_dir().join(format!(
        "tumen-lab-agent-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )));
    std::fs::create_dir(&dir.0).expect("temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let capped = dir.0.join("tumen-agent");
    let plain = dir.0.join("tumen-agent-plain");
    std::fs::copy(&bin, &capped).expect("copy");
    std::fs::copy(&bin, &plain).expect("copy");
    let out = Command::new(&setcap)
        .args(["cap_net_raw+ep", capped.to_str().expect("utf-8")])
        .output()
        .expect("setcap");
    assert!(
        out.status.success(),
        "setcap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let as_nobody = |bin: &Path| {
        let mut c = lab
            .command("vp-fra", setpriv.to_str().expect("utf-8"))
            .expect("node");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin)
            .args([
                "--once",
                "--allow-reserved",
                "--target",
                "198.18.177.1",
                "--target",
                "2001:db8:177::1",
            ]);
        run_cmd(c, Duration::from_secs(30), "agent as nobody")
    };
    let (st, out, err, _) = as_nobody(&capped);
    assert!(st.success(), "as nobody with cap_net_raw: {st}: {err}");
    let traces = parse_records(&out);
    assert_eq!(traces.len(), 2, "{out}");
    for t in &traces {
        assert!(t.reached, "{}", show(t));
    }
    let (st, out, err, _) = as_nobody(&plain);
    assert_eq!(
        st.code(),
        Some(77),
        "as nobody without the capability: {err}"
    );
    assert!(err.contains("CAP_NET_RAW"), "{err}");
    assert!(out.trim().is_empty(), "{out}");
}
