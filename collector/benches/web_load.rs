//! Load benchmark of the web view's data endpoints, over real HTTP
//! against the real `tumen-collector serve` binary pinned to ONE core,
//! with the state of 1,000 agents × 6 target /24s: is p99 under 50 ms?
//!
//! Run with `cargo bench -p tumen-collector --bench web_load` (or
//! `tests/bench-web.sh`). Not part of CI. Options (after `--`; anything
//! else, such as cargo's own `--bench`, is ignored):
//! `--requests N` (per endpoint and concurrency, default 400),
//! `--runs R` (repeat the measurement R times and print the median of the
//! p99s, default 1), `--streams S` (open live streams, default 200).
//!
//! What it does:
//! 1. Builds the state directly in a fresh SQLite database with the
//!    store API (no uploads): 1,000 agents `vp-0000`…, one path per agent
//!    and /24 (175.45.176.0/24 … 175.45.179.0/24, 210.52.109.0/24,
//!    77.94.35.0/24: the DPRK preset's prefixes, as text only — nothing
//!    is sent to them) with an AS-level route of 6 hops, 5,000 change
//!    events over the last 30 days, and raw traces: one per path in the
//!    last minutes, and 2 per agent around one change (±10 min of it) so
//!    that `/changes/{id}` has evidence from 1,000 vantage points.
//! 2. Starts the binary Cargo built for this bench
//!    (`CARGO_BIN_EXE_tumen-collector`: the bench profile, i.e. release
//!    with its settings) as a child: `taskset -c 0 tumen-collector serve
//!    --listen 127.0.0.1:PORT ...` with `TOKIO_WORKER_THREADS=1`. `serve`
//!    builds its runtime with `new_multi_thread()` without a fixed worker
//!    count, so tokio reads that variable: one worker; its blocking pool
//!    and the store's threads are confined to core 0 by the affinity
//!    mask, which the bench prints from `/proc/PID/status`.
//! 3. Re-runs itself under `taskset -c 1-…` (when the machine has 2 or
//!    more cores) so that the load client never shares core 0.
//! 4. Per endpoint: a warm-up, then N requests sequentially and N spread
//!    over 8 concurrent clients (keep-alive), each latency measured from
//!    sending to the last byte of the body. A heavy endpoint gets fewer
//!    requests (about 5 s of them, at least 10: then p99 is the max) so that the whole run stays within a few
//!    minutes; the table says how many. Then again `/ui/now.json` and `/`
//!    sequentially while 200 live streams (`/ui/stream`) are open and read.
//!
//! Columns: p50/p90/p99/max latency in ms (nearest rank), the body size,
//! and the server's CPU time per request (user+system from
//! `/proc/PID/stat` over the whole measurement, 10 ms ticks: a coarse
//! average).

use std::error::Error;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tumen_collector::infer::{Evidence, HopRef};
use tumen_collector::paths::{AsHop, Change, PathState, Route, Upstream};
use tumen_collector::serve::auth;
use tumen_collector::state::AgentInfo;
use tumen_collector::store::sqlite::{open_reader, SqliteStore};
use tumen_collector::store::{EventFilter, Store, StoreReader, TraceRow};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The binary Cargo built for this bench (bench profile = release).
const BIN: &str = env!("CARGO_BIN_EXE_tumen-collector");
const AGENTS: usize = 1000;
const PREFIXES: [&str; 6] = [
    "175.45.176.0/24",
    "175.45.177.0/24",
    "175.45.178.0/24",
    "175.45.179.0/24",
    "210.52.109.0/24",
    "77.94.35.0/24",
];
const EVENTS: usize = 5000;
/// The /24 (index in PREFIXES) of the change with evidence.
const EVIDENCE_UNIT: usize = 1;
const TARGET_P99_MS: f64 = 50.0;
const CONCURRENCY: usize = 8;
/// Time one (endpoint, concurrency) measurement may take, roughly.
const SLICE: Duration = Duration::from_secs(5);
/// Fewest measured requests per row (a row this small: its p99 is its max).
const MIN_REQUESTS: usize = 10;
const DAY_MS: u64 = 86_400_000;
/// Set in the re-run that is pinned away from the server's core.
const PINNED_ENV: &str = "TUMEN_WEB_LOAD_CLIENT_PINNED";
const CORES_ENV: &str = "TUMEN_WEB_LOAD_CORES";

#[derive(Debug, Clone, Copy)]
struct Opts {
    requests: usize,
    runs: usize,
    streams: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        requests: 400,
        runs: 1,
        streams: 200,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        let slot = match args[i].as_str() {
            "--requests" => Some(&mut o.requests),
            "--runs" => Some(&mut o.runs),
            "--streams" => Some(&mut o.streams),
            // Cargo's `--bench` and anything else: ignored.
            _ => None,
        };
        if let (Some(slot), Some(v)) = (slot, val) {
            *slot = v.max(1);
            i += 1;
        }
        i += 1;
    }
    o.streams = o.streams.min(tumen_collector::web::MAX_STREAMS);
    o
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn main() -> ExitCode {
    let cores = std::env::var(CORES_ENV)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if std::env::var_os(PINNED_ENV).is_none() && cores >= 2 {
        // Run again confined to the cores the server does not use.
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("web_load: current_exe: {e}");
                return ExitCode::FAILURE;
            }
        };
        let status = Command::new("taskset")
            .arg("-c")
            .arg(format!("1-{}", cores - 1))
            .arg(&exe)
            .args(std::env::args_os().skip(1))
            .env(PINNED_ENV, "1")
            .env(CORES_ENV, cores.to_string())
            .status();
        match status {
            Ok(s) if s.success() => return ExitCode::SUCCESS,
            Ok(s) => {
                eprintln!("web_load: the pinned run failed: {s}");
                return ExitCode::FAILURE;
            }
            Err(e) => eprintln!("web_load: taskset unavailable ({e}): the client is not pinned"),
        }
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("web_load: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(opts(), cores)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web_load: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- state

const CU: (&str, u32) = ("china-unicom", 4837);
const TTK: (&str, u32) = ("transtelecom", 20485);
/// Transit networks of the vantage points: (ASN, org, a router address).
const TRANSIT: [(u32, &str, &str); 3] = [
    (3356, "level3", "4.69.143.194"),
    (1299, "telia", "62.115.136.41"),
    (174, "cogent", "154.54.58.237"),
];
/// Access networks: (ASN, org, a router address).
const ACCESS: [(u32, &str, &str); 4] = [
    (3320, "dtag", "87.186.224.1"),
    (7922, "comcast", "96.110.40.9"),
    (3215, "orange", "193.252.98.161"),
    (12389, "rostelecom", "95.167.88.10"),
];
const INSIDE_ASN: u32 = 131279;

fn upstream((name, asn): (&str, u32)) -> Upstream {
    Upstream {
        name: name.into(),
        asn: Some(asn),
    }
}

/// The border router of an upstream, and the first hop inside.
fn border(up: (&str, u32)) -> &'static str {
    if up.1 == CU.1 {
        "219.158.39.54"
    } else {
        "188.43.4.2"
    }
}

fn dst_of(unit: &str) -> String {
    let base = unit.split('/').next().unwrap_or(unit);
    let net = base.rsplit_once('.').map_or(base, |(n, _)| n);
    format!("{net}.10")
}

/// Which upstream agent `a` sees for /24 `u` now (60/40, stable).
fn current_of(a: usize, u: usize) -> (&'static str, u32) {
    if (a * 7 + u * 3) % 10 < 6 {
        CU
    } else {
        TTK
    }
}

fn evidence(up: (&str, u32), dst: &str) -> Evidence {
    let t = TRANSIT[0];
    Evidence {
        last_foreign: Some(HopRef {
            ttl: 12,
            addr: border(up).parse().expect("addr"),
            asn: Some(up.1),
            asn_source: None,
        }),
        first_inside: Some(HopRef {
            ttl: 14,
            addr: dst.parse().expect("addr"),
            asn: Some(INSIDE_ASN),
            asn_source: None,
        }),
        as_path: vec![ACCESS[0].0, t.0, up.1, INSIDE_ASN],
        ..Default::default()
    }
}

fn route(a: usize, up: (&str, u32)) -> Route {
    let (acc, acc_org, _) = ACCESS[a % ACCESS.len()];
    let (tr, tr_org, _) = TRANSIT[a % TRANSIT.len()];
    let jitter = (a % 17) as f64;
    let hop = |asn: Option<u32>, org: Option<&str>, first: u8, last: u8, rtt: f64| AsHop {
        asn,
        org: org.map(str::to_string),
        first_ttl: first,
        last_ttl: last,
        rtt_ms: Some(rtt + jitter),
    };
    Route {
        hops: vec![
            hop(None, None, 1, 2, 1.1),
            hop(Some(acc), Some(acc_org), 3, 5, 8.4),
            hop(Some(tr), Some(tr_org), 6, 9, 38.0),
            hop(Some(up.1), Some(up.0), 10, 12, 170.0),
            hop(Some(INSIDE_ASN), Some("star-jv"), 13, 14, 240.0),
            hop(None, None, 15, 15, 245.0),
        ],
        reached: true,
        dest_ttl: Some(16),
        dest_rtt_ms: Some(250.0 + jitter),
    }
}

/// A Tumen JSON trace line as an agent uploads it.
fn trace_line(
    agent: &str,
    id: &str,
    a: usize,
    dst: &str,
    start_ms: u64,
    up: (&str, u32),
) -> String {
    let (_, _, acc_addr) = ACCESS[a % ACCESS.len()];
    let (_, _, tr_addr) = TRANSIT[a % TRANSIT.len()];
    let addrs = [
        Some("192.168.1.1"),
        Some("100.64.0.1"),
        Some(acc_addr),
        Some(acc_addr),
        Some(acc_addr),
        Some(tr_addr),
        Some(tr_addr),
        None,
        Some(tr_addr),
        Some(if up.1 == CU.1 {
            "219.158.3.1"
        } else {
            "188.43.225.153"
        }),
        None,
        Some(border(up)),
        Some("175.45.176.1"),
        Some("175.45.176.9"),
    ];
    let mut hops: Vec<Value> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let replies = match a {
                Some(addr) => vec![json!({"addr": addr, "rtt_ms": 1.0 + 18.0 * i as f64,
                    "kind": "time_exceeded", "icmp_type": 11, "icmp_code": 0})],
                None => Vec::new(),
            };
            json!({"ttl": i + 1, "flow": 0, "sent": 1, "replies": replies})
        })
        .collect();
    hops.push(
        json!({"ttl": addrs.len() + 1, "flow": 0, "sent": 1, "replies": [
        {"addr": dst, "rtt_ms": 250.0, "kind": "echo_reply", "icmp_type": 0, "icmp_code": 0}]}),
    );
    let prefix = format!("{}.0/24", dst.rsplit_once('.').map_or(dst, |(n, _)| n));
    json!({
        "kind": "trace", "schema": 1, "id": id, "agent": agent, "start_ms": start_ms,
        "duration_ms": 2100.0, "src": "192.0.2.2", "dst": dst, "prefix": prefix,
        "protocol": "icmp", "mode": "full", "first_ttl": 1, "max_ttl": 30, "flows": 1,
        "stop": "completed", "reached": true, "probes_sent": hops.len(), "hops": hops
    })
    .to_string()
}

fn agent_name(a: usize) -> String {
    format!("vp-{a:04}")
}

struct Built {
    /// The change whose ±30 min window holds 1,000 agents' traces.
    evidence_id: i64,
    traces: usize,
}

/// Writes the state straight into a fresh database, 1,000 rows per
/// transaction.
fn populate(db: &Path, now: u64) -> Res<Built> {
    let mut store = SqliteStore::open(db)?;
    let pack = store.pack();
    let units: Vec<ipnet::IpNet> = PREFIXES.iter().map(|p| p.parse().expect("unit")).collect();
    let batch = |store: &mut SqliteStore,
                 rows: &mut dyn FnMut(&mut dyn tumen_collector::store::Transaction) -> Res<()>|
     -> Res<()> {
        let mut tx = store.transaction()?;
        rows(&mut *tx)?;
        tx.commit()?;
        Ok(())
    };

    // Agents and their paths (1,000 agents, then 6,000 paths).
    batch(&mut store, &mut |tx| {
        for a in 0..AGENTS {
            tx.put_agent(&AgentInfo {
                name: agent_name(a),
                first_seen_ms: now - 40 * DAY_MS + a as u64 * 1000,
                last_seen_ms: now - (a as u64 % 60) * 1000,
                traces: 40_000 + a as u64,
                pings: 80_000 + a as u64,
            })?;
        }
        Ok(())
    })?;
    for (u, unit) in units.iter().enumerate() {
        let dst = dst_of(PREFIXES[u]);
        batch(&mut store, &mut |tx| {
            for a in 0..AGENTS {
                let cur = current_of(a, u);
                let prev = if cur.1 == CU.1 { TTK } else { CU };
                let state = PathState {
                    current: Some(upstream(cur)),
                    since_ms: Some(now - (1 + (a as u64 * 13 + u as u64) % 29) * DAY_MS),
                    evidence: Some(evidence(cur, &dst)),
                    confidence: 0.9,
                    candidate: None,
                    candidate_count: 0,
                    changes: 1 + (a as u64 % 5),
                    previous: Some(upstream(prev)),
                    last_trace_ms: Some(now - 60_000 - (a as u64 % 120) * 1000),
                    trace_entered: true,
                    last_ping_ms: Some(now - 30_000),
                    ping_ok: a % 23 != 0,
                    route: Some(route(a, cur)),
                };
                tx.put_path(&(agent_name(a), *unit), &state, now)?;
            }
            Ok(())
        })?;
    }

    // Change events over the last 30 days, the one with evidence last
    // (2 h ago, vp-0000, 175.45.177.0/24, China Unicom → TransTeleCom).
    let span = 30 * DAY_MS - 3 * 3_600_000;
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1000) {
        batch(&mut store, &mut |tx| {
            for &e in chunk {
                let a = (e * 37) % AGENTS;
                let u = e % PREFIXES.len();
                let (from, to) = if e % 2 == 0 { (CU, TTK) } else { (TTK, CU) };
                let at = now - 30 * DAY_MS + (e as u64 * span) / EVENTS as u64;
                let change = Change {
                    from: Some(upstream(from)),
                    to: upstream(to),
                    at_ms: at,
                    trace_id: format!("{:032x}", 0xe000_0000u64 + e as u64),
                    evidence: evidence(to, &dst_of(PREFIXES[u])),
                };
                tx.put_event(&(agent_name(a), units[u]), &change, at + 5000)?;
            }
            Ok(())
        })?;
    }
    let ev_at = now - 2 * 3_600_000;
    let ev_trace = format!("{:032x}", 0xa000_0000u64 + 1);
    let unit = units[EVIDENCE_UNIT];
    let ev_dst = dst_of(PREFIXES[EVIDENCE_UNIT]);
    batch(&mut store, &mut |tx| {
        let change = Change {
            from: Some(upstream(CU)),
            to: upstream(TTK),
            at_ms: ev_at,
            trace_id: ev_trace.clone(),
            evidence: evidence(TTK, &ev_dst),
        };
        tx.put_event(&(agent_name(0), unit), &change, ev_at + 5000)?;
        Ok(())
    })?;

    // Raw traces: 2 per agent around the change (10 min before and
    // after; half the agents moved to TransTeleCom), then one per path in
    // the last minutes.
    let mut traces = 0usize;
    let mut n: u64 = 0x1000_0000;
    batch(&mut store, &mut |tx| {
        for a in 0..AGENTS {
            let name = agent_name(a);
            for (k, at) in [ev_at - 600_000 + a as u64, ev_at + 600_000 + a as u64]
                .into_iter()
                .enumerate()
            {
                let up = if k == 1 && a % 2 == 0 { TTK } else { CU };
                let id = if a == 0 && k == 1 {
                    ev_trace.clone()
                } else {
                    n += 1;
                    format!("{n:032x}")
                };
                let line = trace_line(&name, &id, a, &ev_dst, at, up);
                let rec = pack(&line);
                tx.insert_trace(
                    &trace_row(&id, &name, unit, &ev_dst, at, up, &rec),
                    at + 2000,
                )?;
                traces += 1;
            }
        }
        Ok(())
    })?;
    for (u, unit) in units.iter().enumerate() {
        let dst = dst_of(PREFIXES[u]);
        batch(&mut store, &mut |tx| {
            for a in 0..AGENTS {
                let name = agent_name(a);
                let up = current_of(a, u);
                let at = now - 60_000 - (a as u64 % 120) * 1000;
                n += 1;
                let id = format!("{n:032x}");
                let line = trace_line(&name, &id, a, &dst, at, up);
                let rec = pack(&line);
                tx.insert_trace(&trace_row(&id, &name, *unit, &dst, at, up, &rec), at + 2000)?;
                traces += 1;
            }
            Ok(())
        })?;
    }
    drop(store);

    let reader = open_reader(db)?;
    let found = reader.events(&EventFilter {
        agent: Some(agent_name(0)),
        prefix: Some(unit),
        since_ms: Some(ev_at),
        until_ms: Some(ev_at),
        limit: 1,
        ..Default::default()
    })?;
    let evidence_id = found.first().ok_or("the evidence change is not stored")?.id;
    Ok(Built {
        evidence_id,
        traces,
    })
}

fn trace_row<'a>(
    id: &'a str,
    agent: &'a str,
    prefix: ipnet::IpNet,
    dst: &str,
    start_ms: u64,
    up: (&'a str, u32),
    record: &'a [u8],
) -> TraceRow<'a> {
    TraceRow {
        id,
        agent,
        prefix,
        dst: dst.parse::<IpAddr>().expect("dst"),
        start_ms,
        upstream: up.0,
        upstream_asn: Some(up.1),
        entered: true,
        confidence: 0.9,
        record,
    }
}

// --------------------------------------------------------------- server

/// The collector child; killed (by its own pid) and reaped when dropped,
/// on success and on failure alike.
struct ServerProc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// user+system CPU time of the server so far (all its threads).
    fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name (which may hold spaces).
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // USER_HZ is 100 on Linux.
        Some(Duration::from_millis(ticks * 10))
    }
}

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn start_server(dir: &Path, db: &Path, tokens: &Path) -> Res<ServerProc> {
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let log = std::fs::File::create(dir.join("collector.log"))?;
    let child = Command::new("taskset")
        .args(["-c", "0", BIN, "serve", "--listen"])
        .arg(addr.to_string())
        .arg("--db")
        .arg(db)
        .arg("--token-file")
        .arg(tokens)
        .args(["--retention", "36500d"])
        .env("TOKIO_WORKER_THREADS", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let mut s = ServerProc { child, addr };
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = s.child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("collector.log")).unwrap_or_default();
            return Err(format!("collector exited ({st}):\n{log}").into());
        }
        if let Ok(r) = c.get(s.url("/readyz")).send().await {
            if r.status() == 200 {
                return Ok(s);
            }
        }
        if Instant::now() > deadline {
            return Err("collector not ready within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What /proc says about the server's confinement.
fn describe_server(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map_or("?".to_string(), |v| v.trim().to_string())
    };
    let mut names: std::collections::BTreeMap<String, usize> = Default::default();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            *names.entry(comm.trim().to_string()).or_default() += 1;
        }
    }
    let threads: Vec<String> = names.iter().map(|(n, c)| format!("{n}×{c}")).collect();
    format!(
        "server pid {pid}: Cpus_allowed_list {} ; threads {} ({})",
        field("Cpus_allowed_list:"),
        field("Threads:"),
        threads.join(", ")
    )
}

// ----------------------------------------------------------------- load

#[derive(Debug, Clone)]
struct Row {
    endpoint: String,
    mode: String,
    requests: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    bytes: usize,
    cpu_ms: Option<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

/// One GET, timed to the body's last byte; the body's size.
async fn one(c: &reqwest::Client, url: &str) -> Res<(Duration, usize)> {
    let t = Instant::now();
    let r = c.get(url).send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    let d = t.elapsed();
    if !status.is_success() {
        return Err(format!("GET {url}: {status}").into());
    }
    Ok((d, body.len()))
}

/// `n` requests over `k` clients (one connection each), latencies.
async fn load(c: &reqwest::Client, url: &str, n: usize, k: usize) -> Res<(Vec<Duration>, usize)> {
    if k == 1 {
        let mut v = Vec::with_capacity(n);
        let mut bytes = 0;
        for _ in 0..n {
            let (d, b) = one(c, url).await?;
            v.push(d);
            bytes = b;
        }
        return Ok((v, bytes));
    }
    let mut tasks = Vec::new();
    for w in 0..k {
        let c = c.clone();
        let url = url.to_string();
        let share = n / k + usize::from(w < n % k);
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::with_capacity(share);
            let mut bytes = 0;
            for _ in 0..share {
                let (d, b) = one(&c, &url).await?;
                v.push(d);
                bytes = b;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>((v, bytes))
        }));
    }
    let mut all = Vec::with_capacity(n);
    let mut bytes = 0;
    for t in tasks {
        let (v, b) = t.await??;
        all.extend(v);
        bytes = b;
    }
    Ok((all, bytes))
}

async fn measure(
    s: &ServerProc,
    c: &reqwest::Client,
    path: &str,
    mode: &str,
    k: usize,
    want: usize,
) -> Res<Row> {
    let url = s.url(path);
    // Warm-up: a few requests, which also size the measurement.
    let t = Instant::now();
    let warm = 3;
    let _ = load(c, &url, warm, 1).await?;
    let per = t.elapsed() / warm as u32;
    let budget = (SLICE.as_secs_f64() / per.as_secs_f64().max(1e-6)) as usize;
    let n = want.min(budget.max(MIN_REQUESTS));
    let cpu0 = s.cpu();
    let (mut v, bytes) = load(c, &url, n, k).await?;
    let cpu = match (cpu0, s.cpu()) {
        (Some(a), Some(b)) => Some(ms(b.saturating_sub(a)) / n as f64),
        _ => None,
    };
    v.sort();
    Ok(Row {
        endpoint: path.to_string(),
        mode: mode.to_string(),
        requests: n,
        p50: pct(&v, 0.50),
        p90: pct(&v, 0.90),
        p99: pct(&v, 0.99),
        max: pct(&v, 1.0),
        bytes,
        cpu_ms: cpu,
    })
}

/// Opens `n` live streams, each read by its own task until aborted.
async fn open_streams(
    s: &ServerProc,
    n: usize,
) -> Res<(Vec<tokio::task::JoinHandle<()>>, Arc<AtomicU64>)> {
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (c, url) = (c.clone(), s.url("/ui/stream"));
        let (opened, failed, bytes) = (opened.clone(), failed.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut r = match c.get(url).send().await {
                Ok(r) if r.status() == 200 => r,
                _ => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            };
            opened.fetch_add(1, Ordering::SeqCst);
            while let Ok(Some(chunk)) = r.chunk().await {
                bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < n {
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (o, f) = (opened.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    if o < n {
        for t in &tasks {
            t.abort();
        }
        return Err(format!("live streams: {o} of {n} opened, {f} refused").into());
    }
    Ok((tasks, bytes))
}

async fn one_run(s: &ServerProc, evidence_id: i64, o: Opts) -> Res<Vec<Row>> {
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()?;
    let change = format!("/changes/{evidence_id}");
    let bundle = format!("/changes/{evidence_id}/bundle.json");
    // As a browser or `curl --compressed` asks: the bundle is gzipped.
    let gz = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .default_headers(
            [(
                reqwest::header::ACCEPT_ENCODING,
                reqwest::header::HeaderValue::from_static("gzip"),
            )]
            .into_iter()
            .collect(),
        )
        .build()?;
    let endpoints: Vec<(&str, bool)> = vec![
        ("/ui/now.json", false),
        ("/", false),
        ("/paths", false),
        ("/ui/fragment/paths", false),
        ("/timeline?range=1d", false),
        ("/timeline?range=30d", false),
        ("/agents", false),
        ("/changes", false),
        (&change, false),
        (&bundle, false),
        (&bundle, true),
    ];
    let mut rows = Vec::new();
    for (e, gzip) in &endpoints {
        for (mode, k) in [
            ("seq".to_string(), 1),
            (format!("{CONCURRENCY} conc"), CONCURRENCY),
        ] {
            let (client, mode) = if *gzip {
                (&gz, format!("{mode} gzip"))
            } else {
                (&c, mode)
            };
            let r = measure(s, client, e, &mode, k, o.requests).await?;
            eprintln!(
                "  measured {} ({}): p99 {:.2} ms over {} requests",
                r.endpoint, r.mode, r.p99, r.requests
            );
            rows.push(r);
        }
    }
    let (streams, bytes) = open_streams(s, o.streams).await?;
    // Let the first events reach every stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b0 = bytes.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mode = format!("seq+{} SSE", o.streams);
    let mut r = Vec::new();
    for e in ["/ui/now.json", "/"] {
        r.push(measure(s, &c, e, &mode, 1, o.requests).await);
    }
    let streamed = bytes.load(Ordering::Relaxed) - b0;
    let secs = t0.elapsed().as_secs_f64();
    for t in &streams {
        t.abort();
    }
    for x in r {
        rows.push(x?);
    }
    println!(
        "  live streams: {} open and read; {:.0} KiB pushed to them during that phase ({:.1} s)",
        o.streams,
        streamed as f64 / 1024.0,
        secs
    );
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<28} {:<13} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}  verdict",
        "endpoint", "clients", "reqs", "p50 ms", "p90 ms", "p99 ms", "max ms", "bytes", "cpu/req"
    );
    for r in rows {
        println!(
            "{:<28} {:<13} {:>5} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>8}  {}",
            r.endpoint,
            r.mode,
            r.requests,
            r.p50,
            r.p90,
            r.p99,
            r.max,
            r.bytes,
            r.cpu_ms.map_or("?".into(), |c| format!("{c:.2}")),
            if r.p99 < TARGET_P99_MS {
                "PASS"
            } else {
                "FAIL"
            }
        );
    }
}

async fn run(o: Opts, cores: usize) -> Res<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("c.db");
    let tokens = dir.path().join("tokens");
    let token = auth::new_token()?;
    std::fs::write(
        &tokens,
        format!("{}\n", auth::file_line(&agent_name(0), &token)),
    )?;

    let now = now_ms();
    let t = Instant::now();
    let built = tokio::task::spawn_blocking({
        let db = db.clone();
        move || populate(&db, now)
    })
    .await??;
    println!(
        "web_load: state: {AGENTS} agents × {} /24s = {} paths, {} change events (30 d), {} raw traces \
         ({} agents' evidence around change #{}); built in {:.1} s, db {} MiB",
        PREFIXES.len(),
        AGENTS * PREFIXES.len(),
        EVENTS + 1,
        built.traces,
        AGENTS,
        built.evidence_id,
        t.elapsed().as_secs_f64(),
        db_size(&db) / (1 << 20)
    );

    let s = start_server(dir.path(), &db, &tokens).await?;
    println!(
        "web_load: machine cores {cores}; server `taskset -c 0 {BIN} serve` with TOKIO_WORKER_THREADS=1, pinned to core 0"
    );
    println!("web_load: {}", describe_server(s.pid()));
    println!(
        "web_load: client cores {}; target p99 < {TARGET_P99_MS} ms; up to {} requests per row \
         (fewer for heavy endpoints, at least {MIN_REQUESTS}), {CONCURRENCY} concurrent clients, {} runs",
        if std::env::var_os(PINNED_ENV).is_some() {
            format!("1-{} (taskset)", cores - 1)
        } else {
            "unpinned".into()
        },
        o.requests,
        o.runs
    );

    let mut runs: Vec<Vec<Row>> = Vec::new();
    for r in 0..o.runs {
        println!("\nrun {} of {}:", r + 1, o.runs);
        let rows = one_run(&s, built.evidence_id, o).await?;
        print_table(&rows);
        runs.push(rows);
    }
    if o.runs > 1 {
        println!("\nmedian over {} runs of p99 (ms):", o.runs);
        for (i, r) in runs[0].iter().enumerate() {
            let mut p: Vec<f64> = runs.iter().map(|rows| rows[i].p99).collect();
            p.sort_by(f64::total_cmp);
            let m = p[p.len() / 2];
            println!(
                "{:<28} {:<13} {:>8.2}  {}",
                r.endpoint,
                r.mode,
                m,
                if m < TARGET_P99_MS { "PASS" } else { "FAIL" }
            );
        }
    }
    let fails: Vec<String> = runs
        .last()
        .map(|rows| {
            rows.iter()
                .filter(|r| r.p99 >= TARGET_P99_MS)
                .map(|r| format!("{} ({})", r.endpoint, r.mode))
                .collect()
        })
        .unwrap_or_default();
    if fails.is_empty() {
        println!("\nweb_load: every endpoint met p99 < {TARGET_P99_MS} ms on one core");
    } else {
        println!(
            "\nweb_load: p99 ≥ {TARGET_P99_MS} ms on one core: {}",
            fails.join(", ")
        );
    }
    let pid = s.pid();
    drop(s);
    println!("web_load: server pid {pid} stopped");
    Ok(())
}

fn db_size(db: &Path) -> u64 {
    let p = |s: &str| {
        let mut x: PathBuf = db.to_path_buf().into_os_string().into();
        x.as_mut_os_string().push(s);
        std::fs::metadata(x).map_or(0, |m| m.len())
    };
    p("") + p("-wal")
}
