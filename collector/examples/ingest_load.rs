//! Load generator for the ingest benchmark (`tests/bench-collector-ingest.sh`):
//! N concurrent uploaders, one agent each, POST batches of realistic trace
//! records (a 12-hop path into the target, ~1.6 KB of JSON each) to a
//! running collector, and report throughput and latency.
//!
//! Two modes: closed loop (`--rate 0`: every uploader sends its next batch
//! as soon as the last is answered: the collector's maximum throughput)
//! and open loop (`--rate R`: uploaders together offer R traces/s on a
//! fixed schedule, like agents on timers; latency is measured from the
//! scheduled send time, so a slow server cannot hide its queueing).
//!
//! With `--connections per-uploader` every uploader has its own HTTP
//! client, hence its own keep-alive connection, like real agents (the
//! delivery load benchmark, `tests/bench-delivery-load.sh`); the default,
//! `shared`, is one client whose connection pool all uploaders share.
//!
//! Printed (one JSON object): `traces` are those of batches the collector
//! answered 200 (committed), `accepted`/`duplicates` what those answers
//! said, `offered_traces` the traces of every batch scheduled in the
//! window (open loop: sent or late).
//!
//! ```text
//! cargo run --release --example ingest_load -- --url http://127.0.0.1:9640 \
//!     --tokens tokens.plain --uploaders 200 --batch 100 --seconds 10 [--rate 20000] \
//!     [--encoding gzip|zstd|none] [--connections shared|per-uploader]
//! ```

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

struct Args {
    url: String,
    tokens: String,
    uploaders: usize,
    batch: usize,
    seconds: f64,
    rate: f64,
    encoding: String,
    /// One HTTP client per uploader (true) or one for all.
    per_uploader: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        url: "http://127.0.0.1:9640".into(),
        tokens: String::new(),
        uploaders: 200,
        batch: 100,
        seconds: 10.0,
        rate: 0.0,
        encoding: "gzip".into(),
        per_uploader: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{k} {v:?}: not a number"))
        };
        match k.as_str() {
            "--url" => a.url = v,
            "--tokens" => a.tokens = v,
            "--uploaders" => a.uploaders = num(&v)? as usize,
            "--batch" => a.batch = num(&v)? as usize,
            "--seconds" => a.seconds = num(&v)?,
            "--rate" => a.rate = num(&v)?,
            "--encoding" => a.encoding = v,
            "--connections" => {
                a.per_uploader = match v.as_str() {
                    "shared" => false,
                    "per-uploader" => true,
                    _ => return Err(format!("--connections {v:?}: shared or per-uploader")),
                }
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.tokens.is_empty() {
        return Err("--tokens FILE (lines `agent token`) is required".into());
    }
    Ok(a)
}

/// Traces are dated from a day before the run on, a millisecond apart, so
/// that they fall inside the collector's window (retention, clock skew).
fn base_ms() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            .saturating_sub(86_400_000)
    })
}

fn trace(agent: &str, id: u128, n: u64) -> String {
    let third = 176 + (n % 3);
    let dst = format!("175.45.{third}.{}", 1 + (n % 250));
    let path = [
        "192.0.2.1",
        "203.0.113.9",
        "198.51.100.17",
        "80.81.192.33",
        "219.158.3.1",
        "219.158.7.14",
        "219.158.97.30",
        "219.158.39.54",
        "210.52.109.1",
        "175.45.176.1",
    ];
    let mut hops: Vec<serde_json::Value> = path
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({"ttl": i + 1, "flow": 0, "sent": 1, "replies": [
                {"addr": a, "rtt_ms": 10.0 + i as f64 * 7.3, "kind": "time_exceeded",
                 "icmp_type": 11, "icmp_code": 0, "reply_ttl": 250 - i, "quoted_ttl": 1}
            ]})
        })
        .collect();
    hops.insert(3, json!({"ttl": 4, "flow": 0, "sent": 2, "replies": []}));
    json!({
        "kind": "trace", "schema": 1, "id": format!("{id:032x}"), "agent": agent,
        "start_ms": base_ms() + n, "duration_ms": 812.5,
        "src": "192.0.2.2", "dst": dst, "prefix": format!("175.45.{third}.0/24"),
        "protocol": "icmp", "mode": "full", "first_ttl": 1, "max_ttl": 30, "flows": 1,
        "stop": "completed", "reached": true, "probes_sent": 13, "hops": hops
    })
    .to_string()
}

fn encode(body: &str, encoding: &str) -> Vec<u8> {
    match encoding {
        "zstd" => zstd::encode_all(body.as_bytes(), 1).unwrap_or_default(),
        "none" => body.as_bytes().to_vec(),
        _ => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = gz.write_all(body.as_bytes());
            gz.finish().unwrap_or_default()
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    /// (scheduled send time since start, latency), to see when the worst
    /// answers happened.
    timeline: Vec<(f64, f64)>,
    traces: u64,
    /// Sums of the 200 answers' `accepted` and `duplicates`.
    accepted: u64,
    duplicates: u64,
    /// Batches scheduled in the window (sent or late); closed loop: sent.
    scheduled: u64,
    /// Open loop: batches not sent because the uploader was still waiting
    /// for an earlier answer when the run ended (a server falling behind).
    late: u64,
    errors: std::collections::BTreeMap<String, u64>,
}

/// How an upload ended.
enum Answer {
    /// 200: the collector's `accepted` and `duplicates`.
    Committed(u64, u64),
    Status(reqwest::StatusCode),
    Failed(reqwest::Error),
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ingest_load: {e}");
            std::process::exit(64);
        }
    };
    let text = std::fs::read_to_string(&a.tokens).unwrap_or_else(|e| {
        eprintln!("ingest_load: {}: {e}", a.tokens);
        std::process::exit(66);
    });
    let agents: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some((p.next()?.to_string(), p.next()?.to_string()))
        })
        .collect();
    if agents.len() < a.uploaders {
        eprintln!(
            "ingest_load: {} tokens for {} uploaders",
            agents.len(),
            a.uploaders
        );
        std::process::exit(64);
    }
    // Bodies are built before the clock starts: enough for the run at the
    // expected rate (closed loop: up to 60k traces/s).
    let per_uploader_rate = if a.rate > 0.0 {
        a.rate / a.uploaders as f64
    } else {
        60_000.0 / a.uploaders as f64
    };
    let batches = ((per_uploader_rate * a.seconds / a.batch as f64).ceil() as usize + 2).max(2);
    eprintln!(
        "ingest_load: preparing {} uploaders x {batches} batches x {} traces ({})",
        a.uploaders, a.batch, a.encoding
    );
    let mut bodies: Vec<Vec<Vec<u8>>> = Vec::with_capacity(a.uploaders);
    let run_id: u128 = u128::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    ) << 64;
    for (u, (agent, _)) in agents.iter().take(a.uploaders).enumerate() {
        let mut list = Vec::with_capacity(batches);
        for b in 0..batches {
            let lines: Vec<String> = (0..a.batch)
                .map(|i| {
                    let n = (b * a.batch + i) as u64;
                    trace(agent, run_id | ((u as u128) << 40) | u128::from(n), n)
                })
                .collect();
            list.push(encode(&lines.join("\n"), &a.encoding));
        }
        bodies.push(list);
    }
    // reqwest is built without a default TLS provider (`rustls-no-provider`,
    // as the collector uses ring): install ring before any client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let build = |idle: usize| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(idle)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| {
                eprintln!("ingest_load: client: {e}");
                std::process::exit(71);
            })
    };
    let shared = build(a.uploaders);
    let url = format!("{}/api/v1/results", a.url.trim_end_matches('/'));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.seconds);
    let interval = if a.rate > 0.0 {
        Some(Duration::from_secs_f64(a.batch as f64 / per_uploader_rate))
    } else {
        None
    };
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for (u, list) in bodies.into_iter().enumerate() {
        let token = agents[u].1.clone();
        let client = if a.per_uploader {
            build(1)
        } else {
            shared.clone()
        };
        let url = url.clone();
        let tally = tally.clone();
        let enc = a.encoding.clone();
        let batch = a.batch as u64;
        let spread = u as f64 / a.uploaders as f64;
        tasks.push(tokio::spawn(async move {
            // Spread the uploaders' schedules over one interval.
            let offset = interval.map_or(Duration::ZERO, |i| i.mul_f64(spread));
            let mut due = start + offset;
            for body in list {
                if let Some(i) = interval {
                    if due >= end {
                        // No slot of this uploader is left in the window.
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    due += i;
                }
                let sent = if interval.is_some() {
                    due - interval.unwrap_or_default()
                } else {
                    Instant::now()
                };
                if Instant::now() >= end {
                    if let Some(i) = interval {
                        let mut slot = sent;
                        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                        while slot < end {
                            t.late += 1;
                            slot += i;
                        }
                    }
                    break;
                }
                tally.lock().unwrap_or_else(|p| p.into_inner()).scheduled += 1;
                let mut req = client
                    .post(&url)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/x-ndjson")
                    .body(body);
                if enc != "none" {
                    req = req.header("content-encoding", enc.as_str());
                }
                let r = req.send().await;
                let lat = sent.elapsed().as_secs_f64();
                let answer = match r {
                    Ok(resp) if resp.status().is_success() => {
                        // The answer's counts (a 200 whose body is lost
                        // still counts as committed, as for an agent).
                        let c = resp.json::<serde_json::Value>().await.ok();
                        let n = |k: &str| {
                            c.as_ref()
                                .and_then(|v| v.get(k))
                                .and_then(serde_json::Value::as_u64)
                                .unwrap_or(0)
                        };
                        Answer::Committed(n("accepted"), n("duplicates"))
                    }
                    Ok(resp) => Answer::Status(resp.status()),
                    Err(e) => Answer::Failed(e),
                };
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                match answer {
                    Answer::Committed(acc, dup) => {
                        t.accepted += acc;
                        t.duplicates += dup;
                        t.traces += batch;
                        t.latencies.push(lat);
                        t.timeline.push(((sent - start).as_secs_f64(), lat));
                    }
                    Answer::Status(status) => *t.errors.entry(status.to_string()).or_default() += 1,
                    Answer::Failed(e) => {
                        let kind = if e.is_timeout() {
                            "timeout"
                        } else {
                            "connect/io"
                        };
                        *t.errors.entry(kind.to_string()).or_default() += 1;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = start.elapsed().as_secs_f64();
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    let mut lat = std::mem::take(&mut t.latencies);
    let mut timeline = std::mem::take(&mut t.timeline);
    timeline.sort_by(|x, y| y.1.total_cmp(&x.1));
    let worst: Vec<String> = timeline
        .iter()
        .take(10)
        .map(|(at, l)| format!("{:.0} ms at {at:.2} s", l * 1000.0))
        .collect();
    lat.sort_by(|x, y| x.total_cmp(y));
    println!(
        "{}",
        json!({
            "mode": if a.rate > 0.0 { "open" } else { "closed" },
            "offered_rate": a.rate,
            "uploaders": a.uploaders,
            "batch": a.batch,
            "encoding": a.encoding,
            "wall_s": wall,
            "requests": lat.len(),
            "traces": t.traces,
            "accepted": t.accepted,
            "duplicates": t.duplicates,
            "offered_traces": (t.scheduled + t.late) * a.batch as u64,
            "connections": if a.per_uploader { "per-uploader" } else { "shared" },
            // Open loop: over the schedule's window (the answers to the
            // last batches arrive after it); closed loop: over the run.
            "traces_per_s": t.traces as f64 / if a.rate > 0.0 { a.seconds } else { wall },
            "late_batches": t.late,
            "p50_ms": pct(&lat, 0.50) * 1000.0,
            "p90_ms": pct(&lat, 0.90) * 1000.0,
            "p99_ms": pct(&lat, 0.99) * 1000.0,
            "max_ms": lat.last().copied().unwrap_or(f64::NAN) * 1000.0,
            "errors": t.errors,
            "worst": worst,
        })
    );
}
