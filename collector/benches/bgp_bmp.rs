//! BMP route monitoring throughput: how many messages a router's
//! connection turns into the model's messages per second.
//!
//! "replay" is framing, decoding (bgpkit-parser) and conversion to
//! [`Message`]s on one core, without a socket: [`bmp::replay`] over one
//! stream of IPv4 UPDATEs as a full-table feed looks (a 5-hop AS path,
//! next hop, MED, two communities; 1 to 4 prefixes each, 2.5 on
//! average). "tcp" is the same stream written to the listener over a
//! loopback socket and read back from the channel (the model's end), on
//! a two-thread runtime. Each is the median of several runs. Run with
//! `cargo bench -p tumen-collector --bench bgp_bmp` (a `--quick` after
//! `--` runs fewer and shorter rounds).

use std::hint::black_box;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tumen_collector::bgp::bmp::build::{self, PeerHeader};
use tumen_collector::bgp::bmp::{self, BmpOptions};
use tumen_collector::bgp::Message;

/// The stream: an Initiation, a peer up, then `n` route monitoring
/// messages from 8 peers; returns it with its prefix count.
fn stream(n: usize) -> (Vec<u8>, usize) {
    let peers: Vec<PeerHeader> = (0..8u8)
        .map(|i| PeerHeader::new(&format!("198.51.100.{}", i + 1), 64500 + u32::from(i)))
        .collect();
    let mut s = build::initiation(Some("bench"));
    for p in &peers {
        s.extend_from_slice(&build::peer_up(p, 64496));
    }
    let mut prefixes = 0;
    let mut names: Vec<String> = Vec::new();
    for i in 0..n {
        let count = 1 + i % 4;
        names.clear();
        for j in 0..count {
            let k = i * 4 + j;
            names.push(format!(
                "{}.{}.{}.0/24",
                1 + (k >> 16) % 222,
                (k >> 8) & 255,
                k & 255
            ));
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let update = build::typical_update(&refs);
        s.extend_from_slice(&build::route_monitoring(&peers[i % peers.len()], &update));
        prefixes += count;
    }
    (s, prefixes)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn replay(bytes: &[u8], msgs: usize, prefixes: usize, runs: usize) {
    let opts = BmpOptions::default();
    let mut rates = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = bmp::replay(black_box(bytes), &opts, 1);
        let took = start.elapsed().as_secs_f64();
        let updates = out
            .iter()
            .filter(|m| matches!(m, Message::Update(_)))
            .count();
        assert_eq!(updates, prefixes);
        drop(black_box(out));
        rates.push(msgs as f64 / took);
    }
    let rate = median(rates);
    println!(
        "bmp replay (one core): {msgs} messages, median of {runs}: {:.0} msgs/s, {:.0} prefixes/s",
        rate,
        rate * prefixes as f64 / msgs as f64
    );
}

fn tcp(bytes: &[u8], msgs: usize, prefixes: usize, runs: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rates = Vec::new();
    for _ in 0..runs {
        let took = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
            let (stop, stop_rx) = tokio::sync::watch::channel(false);
            let server = tokio::spawn(bmp::serve(listener, tx, BmpOptions::default(), stop_rx));
            let data = bytes.to_vec();
            let start = Instant::now();
            let writer = tokio::spawn(async move {
                let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
                c.write_all(&data).await.expect("write");
                c
            });
            let mut updates = 0;
            while updates < prefixes {
                match rx.recv().await {
                    Some(Message::Update(_)) => updates += 1,
                    Some(_) => {}
                    None => panic!("the server stopped"),
                }
            }
            let took = start.elapsed().as_secs_f64();
            drop(writer.await);
            stop.send(true).expect("stop");
            server.await.expect("serve");
            took
        });
        rates.push(msgs as f64 / took);
    }
    let rate = median(rates);
    println!(
        "bmp over loopback TCP (2 threads): {msgs} messages, median of {runs}: {:.0} msgs/s, {:.0} prefixes/s",
        rate,
        rate * prefixes as f64 / msgs as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // too, without it (and unoptimised): keep that short.
    let (msgs, runs) = match (has("--bench"), has("--quick")) {
        (false, _) => (1_000, 1),
        (true, true) => (50_000, 3),
        (true, false) => (200_000, 7),
    };
    let (bytes, prefixes) = stream(msgs);
    println!(
        "stream: {msgs} route monitoring messages, {prefixes} prefixes, {} bytes",
        bytes.len()
    );
    replay(&bytes, msgs, prefixes, runs);
    tcp(&bytes, msgs, prefixes, runs);
}
