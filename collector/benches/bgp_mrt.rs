//! The MRT reader against bgpdump on the 2014 RouteViews RIB fragment:
//! the median of N runs of `bgp::mrt::read` decoding every record into a
//! snapshot (all prefixes kept, one thread), beside `bgpdump -m FILE >
//! /dev/null` run the same N times, on the decompressed file and on the
//! `.bz2`; then the reader with a target prefix filter.
//!
//! `cargo bench -p tumen-collector --bench bgp_mrt` (`TUMEN_BENCH_RUNS`
//! sets N, 9 by default; `TUMEN_MRT` another RIB file).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tumen_collector::bgp::model::{Model, Settings};
use tumen_collector::bgp::mrt::{self, Keep, KeepAll, Overlapping, ReadOptions};
use tumen_collector::bgp::Message;
use tumen_collector::infer::Target;
use tumen_collector::orgs::Orgs;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn runs() -> usize {
    std::env::var("TUMEN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(9)
}

/// Reads `bytes` `n` times: the median time, records and routes.
fn ours(bytes: &[u8], keep: &dyn Keep, n: usize) -> (Duration, u64, u64) {
    let options = ReadOptions {
        collector: "route-views2".to_string(),
        partial_snapshot: true,
    };
    let mut times = Vec::new();
    let mut counts = (0, 0);
    for _ in 0..n {
        let mut out: Vec<Message> = Vec::new();
        let start = Instant::now();
        let report = mrt::read(bytes, "bench", &options, keep, &mut out);
        times.push(start.elapsed());
        counts = (report.records, report.routes);
        drop(out);
    }
    (median(times), counts.0, counts.1)
}

/// Runs `bgpdump -m path > /dev/null` `n` times: the median, or `None`
/// without bgpdump.
fn bgpdump(path: &std::path::Path, n: usize) -> Option<Duration> {
    let mut times = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let status = Command::new("bgpdump")
            .arg("-m")
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        times.push(start.elapsed());
        if !status.success() {
            return None;
        }
    }
    Some(median(times))
}

fn rate(records: u64, t: Duration) -> f64 {
    records as f64 / t.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run
    // it long.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bz_path = std::env::var_os("TUMEN_MRT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/rib.20140523.0600_firstMB.bz2"
            ))
        });
    let bz = std::fs::read(&bz_path).expect("the RIB fragment (TUMEN_MRT)");
    let mut plain = Vec::new();
    let mut decoder = bzip2::read::MultiBzDecoder::new(&bz[..]);
    let mut buf = vec![0u8; 1 << 16];
    // The fragment's stream is cut: keep what decompresses.
    while let Ok(k @ 1..) = decoder.read(&mut buf) {
        plain.extend_from_slice(&buf[..k]);
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plain_path = dir.path().join("rib.mrt");
    std::fs::write(&plain_path, &plain).expect("write the decompressed dump");
    let n = runs();
    println!(
        "{}: {} bytes, {} decompressed; median of {n} runs",
        bz_path.display(),
        bz.len(),
        plain.len()
    );

    let (t, records, routes) = ours(&plain, &KeepAll, n);
    println!(
        "tumen  plain: {:>8.1} ms  {:>10.0} records/s  {:>10.0} routes/s ({records} records, {routes} routes)",
        t.as_secs_f64() * 1e3,
        rate(records, t),
        rate(routes, t)
    );
    let (tb, _, _) = ours(&bz, &KeepAll, n);
    println!(
        "tumen  bz2:   {:>8.1} ms  {:>10.0} records/s",
        tb.as_secs_f64() * 1e3,
        rate(records, tb)
    );
    match (bgpdump(&plain_path, n), bgpdump(&bz_path, n)) {
        (Some(d), Some(db)) => {
            println!(
                "bgpdump plain: {:>8.1} ms  {:>10.0} records/s",
                d.as_secs_f64() * 1e3,
                rate(records, d)
            );
            println!(
                "bgpdump bz2:   {:>8.1} ms  {:>10.0} records/s",
                db.as_secs_f64() * 1e3,
                rate(records, db)
            );
            println!(
                "ratio (tumen / bgpdump, records/s): plain {:.2}x, bz2 {:.2}x",
                d.as_secs_f64() / t.as_secs_f64(),
                db.as_secs_f64() / tb.as_secs_f64()
            );
        }
        _ => println!("bgpdump: not found or failed (apt-get install bgpdump); no ratio"),
    }

    // Parse and index: every route into the control-plane model (a target
    // of the whole address space, so nothing is dropped): the state
    // `serve` and `bgp` hold, per prefix and peer, upstream and events.
    let mut times = Vec::new();
    let mut held = 0;
    for _ in 0..n {
        let start = Instant::now();
        let mut out: Vec<Message> = Vec::new();
        let options = ReadOptions {
            collector: "route-views2".to_string(),
            partial_snapshot: true,
        };
        mrt::read(&plain[..], "bench", &options, &KeepAll, &mut out);
        let mut model = Model::new(
            Target {
                prefixes: vec![
                    "0.0.0.0/0".parse().expect("v4"),
                    "::/0".parse().expect("v6"),
                ],
                asns: Default::default(),
            },
            Orgs::default(),
            Settings {
                max_prefixes: usize::MAX,
                ..Settings::default()
            },
        );
        for m in out {
            model.apply(m);
        }
        times.push(start.elapsed());
        held = model.routes().len();
    }
    let ti = median(times);
    println!(
        "tumen  plain, parse and index into the model: {:>8.1} ms  {:>10.0} records/s ({held} routes held)",
        ti.as_secs_f64() * 1e3,
        rate(records, ti)
    );
    if let Some(d) = bgpdump(&plain_path, n) {
        println!(
            "ratio (tumen parse and index / bgpdump, records/s): plain {:.2}x",
            d.as_secs_f64() / ti.as_secs_f64()
        );
    }

    let targets: Vec<IpNet> = ["1.0.0.0/24", "8.8.8.0/24", "12.0.0.0/8"]
        .iter()
        .map(|s| s.parse().expect("a prefix"))
        .collect();
    let keep = Overlapping(targets.clone());
    let (tf, _, kept) = ours(&plain, &keep, n);
    println!(
        "tumen  plain, targets {targets:?}: {:>8.1} ms  {:>10.0} records/s ({kept} routes kept)",
        tf.as_secs_f64() * 1e3,
        rate(records, tf)
    );
}
