//! The BMP listener over real TCP on 127.0.0.1: several routers at once,
//! messages split across tiny writes, garbage, a router that stalls
//! inside a message, the connection cap, and stopping.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tumen_collector::bgp::bmp::build::{self, PeerHeader};
use tumen_collector::bgp::bmp::{self, BmpOptions};
use tumen_collector::bgp::{Change, Message, Peer};

/// Long enough for a loaded CI machine, short enough to fail fast.
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    addr: std::net::SocketAddr,
    rx: mpsc::Receiver<Message>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(opts: BmpOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel(1024);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(bmp::serve(listener, tx, opts, stop_rx));
    Server {
        addr,
        rx,
        stop,
        task,
    }
}

impl Server {
    /// Messages until `done` says the last one is what was waited for.
    async fn until(&mut self, mut done: impl FnMut(&Message) -> bool) -> Vec<Message> {
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(m)) => {
                    let last = done(&m);
                    got.push(m);
                    if last {
                        return got;
                    }
                }
                Ok(None) => panic!("the server stopped; got {got:#?}"),
                Err(_) => panic!("nothing more in {WAIT:?}; got {got:#?}"),
            }
        }
    }

    /// Nothing arrives for a moment.
    async fn quiet(&mut self, d: Duration) {
        if let Ok(m) = tokio::time::timeout(d, self.rx.recv()).await {
            panic!("expected nothing, got {m:?}");
        }
    }

    async fn stop(self) {
        self.stop.send(true).expect("stop");
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("serve stops")
            .expect("serve did not panic");
    }
}

fn router_down(router: &str) -> impl Fn(&Message) -> bool + '_ {
    move |m| matches!(m, Message::SourceState { router: Some(r), up: false, .. } if r == router)
}

/// A router's first moments: its name, a peer up, two announcements.
fn feed(sys_name: Option<&str>, peer_addr: &str) -> Vec<u8> {
    let p = PeerHeader::new(peer_addr, 64500);
    [
        build::initiation(sys_name),
        build::peer_up(&p, 64496),
        build::route_monitoring(&p, &build::typical_update(&["203.0.113.0/24"])),
        build::route_monitoring(&p, &build::typical_update(&["198.51.100.0/24"])),
    ]
    .concat()
}

/// Wall-clock stamps (router up and down) made 0 to compare runs.
fn without_now(msgs: Vec<Message>) -> Vec<Message> {
    msgs.into_iter()
        .map(|m| match m {
            Message::SourceState {
                source, router, up, ..
            } => Message::SourceState {
                source,
                router,
                up,
                at_ms: 0,
            },
            Message::PeerDown { peer, reason, .. } => Message::PeerDown {
                peer,
                reason,
                at_ms: 0,
            },
            m => m,
        })
        .collect()
}

fn router_of(m: &Message) -> Option<&str> {
    match m {
        Message::Update(u) => Some(&u.peer.router),
        Message::PeerUp { peer, .. } | Message::PeerDown { peer, .. } => Some(&peer.router),
        Message::SourceState { router, .. } => router.as_deref(),
        Message::Stats { router, .. } => Some(router),
        _ => None,
    }
}

#[tokio::test]
async fn two_routers_at_once_each_with_its_own_name_and_peers() {
    let mut srv = start(BmpOptions::default()).await;
    let mut a = TcpStream::connect(srv.addr).await.expect("connect a");
    let mut b = TcpStream::connect(srv.addr).await.expect("connect b");
    // Interleaved: a's Initiation names it; b has none, so its address.
    let fa = feed(Some("r1"), "198.51.100.1");
    let fb = feed(None, "198.51.100.1");
    let (ha, hb) = fa.split_at(fa.len() / 2);
    a.write_all(ha).await.expect("write");
    b.write_all(&fb).await.expect("write");
    a.write_all(hb).await.expect("write");
    let mut got = srv
        .until({
            let mut n = 0;
            move |m| {
                n += usize::from(matches!(m, Message::Update(_)));
                n == 4
            }
        })
        .await;
    drop(a);
    got.extend(srv.until(router_down("r1")).await);
    drop(b);
    got.extend(srv.until(router_down("127.0.0.1")).await);
    for router in ["r1", "127.0.0.1"] {
        let mine: Vec<&Message> = got
            .iter()
            .filter(|m| router_of(m) == Some(router))
            .collect();
        let kinds: Vec<&str> = mine
            .iter()
            .map(|m| match m {
                Message::SourceState { up: true, .. } => "up",
                Message::PeerUp { .. } => "peer-up",
                Message::Update(_) => "update",
                Message::PeerDown { .. } => "peer-down",
                Message::SourceState { up: false, .. } => "down",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["up", "peer-up", "update", "update", "peer-down", "down"],
            "{router}: {mine:#?}"
        );
        let Message::PeerUp { peer, .. } = mine[1] else {
            unreachable!()
        };
        assert_eq!(
            *peer,
            Peer {
                source: "bmp".into(),
                router: router.into(),
                addr: "198.51.100.1".parse().unwrap(),
                asn: 64500
            }
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn one_byte_writes_decode_as_one_write_does() {
    let bytes = feed(Some("r1"), "198.51.100.1");
    let mut runs = Vec::new();
    for one_byte in [false, true] {
        let mut srv = start(BmpOptions::default()).await;
        let mut c = TcpStream::connect(srv.addr).await.expect("connect");
        c.set_nodelay(true).expect("nodelay");
        if one_byte {
            for b in &bytes {
                c.write_all(std::slice::from_ref(b)).await.expect("write");
                c.flush().await.expect("flush");
            }
        } else {
            c.write_all(&bytes).await.expect("write");
        }
        drop(c);
        runs.push(without_now(srv.until(router_down("r1")).await));
        srv.stop().await;
    }
    assert_eq!(runs[0].len(), 6, "{:#?}", runs[0]);
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn garbage_closes_that_connection_and_the_other_router_goes_on() {
    let mut srv = start(BmpOptions::default()).await;
    let mut good = TcpStream::connect(srv.addr).await.expect("connect");
    good.write_all(&build::initiation(Some("good")))
        .await
        .expect("write");
    srv.until(|m| matches!(m, Message::SourceState { up: true, .. }))
        .await;

    let mut bad = TcpStream::connect(srv.addr).await.expect("connect");
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let got = srv.until(|m| matches!(m, Message::Fault { .. })).await;
    assert_eq!(
        got,
        [Message::Fault {
            source: "bmp".into(),
            kind: "version"
        }]
    );
    // The server closed it.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, bad.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");

    // A length over the cap, after a good message: a fault, and the
    // router (it had spoken) goes down.
    let mut huge = TcpStream::connect(srv.addr).await.expect("connect");
    huge.write_all(&build::initiation(Some("huge")))
        .await
        .expect("write");
    huge.write_all(&[3, 0x7f, 0xff, 0xff, 0xff, 0])
        .await
        .expect("write");
    let got = without_now(srv.until(router_down("huge")).await);
    assert!(
        got.contains(&Message::Fault {
            source: "bmp".into(),
            kind: "length"
        }),
        "{got:#?}"
    );

    let p = PeerHeader::new("198.51.100.1", 64500);
    good.write_all(&build::route_monitoring(
        &p,
        &build::typical_update(&["203.0.113.0/24"]),
    ))
    .await
    .expect("write");
    let got = srv.until(|m| matches!(m, Message::Update(_))).await;
    assert!(
        matches!(&got[..], [Message::Update(u)] if u.peer.router == "good" && matches!(u.change, Change::Announce { .. })),
        "{got:#?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_router_stalled_inside_a_message_is_closed_an_idle_one_is_not() {
    let opts = BmpOptions {
        stall_timeout: Duration::from_secs(1),
        ..BmpOptions::default()
    };
    let mut srv = start(opts).await;
    let mut c = TcpStream::connect(srv.addr).await.expect("connect");
    let p = PeerHeader::new("198.51.100.1", 64500);
    c.write_all(&[build::initiation(Some("slow")), build::peer_up(&p, 64496)].concat())
        .await
        .expect("write");
    srv.until(|m| matches!(m, Message::PeerUp { .. })).await;
    // Idle between messages for longer than the stall timeout: fine.
    srv.quiet(Duration::from_millis(1500)).await;
    let m = build::route_monitoring(&p, &build::typical_update(&["203.0.113.0/24"]));
    c.write_all(&m).await.expect("write");
    srv.until(|m| matches!(m, Message::Update(_))).await;
    // Half a message, then nothing.
    c.write_all(&m[..m.len() / 2]).await.expect("write");
    let started = std::time::Instant::now();
    let got = without_now(srv.until(router_down("slow")).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let peer = Peer {
        source: "bmp".into(),
        router: "slow".into(),
        addr: "198.51.100.1".parse().unwrap(),
        asn: 64500,
    };
    assert_eq!(
        got,
        [
            Message::Fault {
                source: "bmp".into(),
                kind: "stalled"
            },
            Message::PeerDown {
                peer,
                at_ms: 0,
                reason: "BMP router stalled inside a message for 1s".into()
            },
            Message::SourceState {
                source: "bmp".into(),
                router: Some("slow".into()),
                up: false,
                at_ms: 0
            },
        ]
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, c.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    srv.stop().await;
}

#[tokio::test]
async fn routers_over_the_cap_are_refused() {
    let opts = BmpOptions {
        max_routers: 1,
        ..BmpOptions::default()
    };
    let counters = opts.counters.clone();
    let mut srv = start(opts).await;
    let mut first = TcpStream::connect(srv.addr).await.expect("connect");
    first
        .write_all(&build::initiation(Some("first")))
        .await
        .expect("write");
    srv.until(|m| matches!(m, Message::SourceState { up: true, .. }))
        .await;
    let mut second = TcpStream::connect(srv.addr).await.expect("connect");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, second.read_to_end(&mut rest))
        .await
        .expect("refused in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert_eq!(counters.refused.load(Ordering::Relaxed), 1);
    // Once the first has gone, another is taken (its task ends just
    // after its last message: a router retries, so does this).
    drop(first);
    srv.until(router_down("first")).await;
    let mut taken = false;
    for _ in 0..50 {
        let mut third = TcpStream::connect(srv.addr).await.expect("connect");
        third
            .write_all(&build::initiation(Some("third")))
            .await
            .expect("write");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), srv.rx.recv()).await {
            assert_eq!(router_of(&m), Some("third"), "{m:?}");
            taken = true;
            break;
        }
    }
    assert!(taken, "a router after the first was never taken");
    srv.stop().await;
}

#[tokio::test]
async fn the_server_stops_when_the_model_is_gone() {
    let srv = start(BmpOptions::default()).await;
    let mut c = TcpStream::connect(srv.addr).await.expect("connect");
    c.write_all(&feed(Some("r1"), "198.51.100.1"))
        .await
        .expect("write");
    let Server {
        rx,
        task,
        stop: _stop,
        ..
    } = srv;
    drop(rx);
    tokio::time::timeout(WAIT, task)
        .await
        .expect("serve stops")
        .expect("serve did not panic");
    // And the router's connection was closed with it.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, c.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bmp")
}

/// Replays every stream of `tests/corpus/bmp/` through framing and a
/// session: nothing panics, and the name says what to expect: `ok-`
/// decodes without a fault, `fault-` has at least one, anything else
/// (inputs the fuzzer found) only must not panic. The router goes up
/// and down at most once each, and only after it is up.
#[test]
fn corpus_replays_without_panics_and_as_named() {
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("the corpus")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".md") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let out = bmp::replay(&bytes, &BmpOptions::default(), 1);
        let faults: Vec<&Message> = out
            .iter()
            .filter(|m| matches!(m, Message::Fault { .. }))
            .collect();
        let updates = out
            .iter()
            .filter(|m| matches!(m, Message::Update(_)))
            .count();
        eprintln!("{name}: {updates} updates, faults {faults:?}");
        if name.starts_with("ok-") {
            assert!(faults.is_empty(), "{name}: {faults:?}");
            assert!(
                out.iter().any(|m| matches!(m, Message::Update(_))),
                "{name}: no update"
            );
        } else if name.starts_with("fault-") {
            assert!(!faults.is_empty(), "{name}: no fault in {out:#?}");
        }
        let states: Vec<bool> = out
            .iter()
            .filter_map(|m| match m {
                Message::SourceState { up, .. } => Some(*up),
                _ => None,
            })
            .collect();
        assert!(
            states.is_empty() || states == [true, false],
            "{name}: {states:?}"
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} corpus entries");
}

/// Writes the crafted part of the corpus (run by hand after changing
/// it: `cargo test -p tumen-collector --test bgp_bmp -- --ignored
/// write_corpus`). Fuzzer finds are added beside these by hand.
#[test]
#[ignore = "writes tests/corpus/bmp"]
fn write_corpus() {
    let p = PeerHeader::new("198.51.100.1", 64500);
    let p6 = PeerHeader::new("2001:db8::1", 6939);
    let p2 = PeerHeader::new("198.51.100.2", 64501).two_octet();
    let upd = build::typical_update(&["203.0.113.0/24", "198.18.0.0/15"]);
    let rm = build::route_monitoring(&p, &upd);
    let v6 = build::update(
        &[],
        &[
            build::origin(),
            build::as_path(&[(2, &[6939, 4837])], true),
            build::mp_unreach(&["2001:db8:1::/48"]),
            build::mp_reach("2001:db8::1", &["2001:db8:2::/48"]),
        ],
        &[],
    );
    let as4 = build::update(
        &[],
        &[
            build::origin(),
            build::as_path(
                &[(3, &[65001]), (2, &[64501, 23456]), (1, &[23456, 64511])],
                false,
            ),
            build::next_hop("192.0.2.2"),
            build::as4_path(&[(2, &[4_200_000_001]), (1, &[4_200_000_002, 64511])]),
        ],
        &["203.0.113.0/24"],
    );
    // Route monitoring whose BGP message is cut (the BMP length fits).
    let mut cut = rm[..rm.len() - 7].to_vec();
    let len = cut.len() as u32;
    cut[1..5].copy_from_slice(&len.to_be_bytes());
    // A per-peer header cut after the distinguisher: the parser reads
    // past the end (and panicked in bgpkit-parser 0.11.1).
    let mut short_peer = build::message(0, &p.bytes()[..10]);
    short_peer.truncate(16);
    let mut odd_type = rm.clone();
    odd_type[6] = 9;
    // An attribute claiming more bytes than the UPDATE has.
    let mut long_attr = rm.clone();
    let at = 6 + 42 + 19 + 2 + 2 + 2; // the ORIGIN attribute's length
    long_attr[at] = 0xff;
    // A BGP length bigger than the BMP message.
    let mut long_bgp = rm.clone();
    long_bgp[6 + 42 + 16] = 0x0f;
    let init = build::initiation(Some("r1"));
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("ok-feed.bmp", feed(Some("r1"), "198.51.100.1")),
        (
            "ok-ipv6.bmp",
            [
                init.clone(),
                build::peer_up(&p6, 64496),
                build::route_monitoring(&p6, &v6),
            ]
            .concat(),
        ),
        (
            "ok-as4-confed-set.bmp",
            [init.clone(), build::route_monitoring(&p2, &as4)].concat(),
        ),
        (
            "ok-all-views.bmp",
            [
                init.clone(),
                build::peer_up(&p, 64496),
                build::peer_up(&PeerHeader::loc_rib(64496), 64496),
                rm.clone(),
                build::route_monitoring(&p.clone().post_policy(), &upd),
                build::route_monitoring(&PeerHeader::loc_rib(64496), &upd),
                build::route_monitoring(&p, &build::update(&[], &[], &[])),
            ]
            .concat(),
        ),
        (
            "ok-stats-down-termination.bmp",
            [
                init.clone(),
                rm.clone(),
                build::stats(&p, &[(0, 1), (7, 1000)]),
                build::peer_down(&p, 2),
                build::termination(0),
                rm.clone(),
            ]
            .concat(),
        ),
        (
            "fault-cut-bgp.bmp",
            [init.clone(), cut, rm.clone()].concat(),
        ),
        (
            "fault-short-peer-header.bmp",
            [init.clone(), short_peer, rm.clone()].concat(),
        ),
        (
            "fault-peer-type.bmp",
            [init.clone(), odd_type, rm.clone()].concat(),
        ),
        (
            "fault-bgp-length.bmp",
            [init.clone(), long_bgp, rm.clone()].concat(),
        ),
        (
            "fault-attr-length.bmp",
            [init.clone(), long_attr, rm.clone()].concat(),
        ),
        (
            "fault-http.bmp",
            b"GET / HTTP/1.1\r\nHost: collector\r\n\r\n".to_vec(),
        ),
        (
            "fault-length-5.bmp",
            [init.clone(), vec![3, 0, 0, 0, 5, 0]].concat(),
        ),
        (
            "fault-length-huge.bmp",
            [init.clone(), vec![3, 0xff, 0xff, 0xff, 0xff, 0]].concat(),
        ),
        (
            "fault-stream-cut.bmp",
            [init.clone(), rm[..30].to_vec()].concat(),
        ),
        ("fault-bmp-v1.bmp", [1u8, 0, 0, 0, 0, 0, 0, 0].to_vec()),
    ];
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write");
    }
}

/// Picks fuzzer finds worth keeping in the corpus: for each place the
/// parser panicked and each set of fault kinds, the smallest input of
/// `$BMP_FUZZ_DIR` (a cargo-fuzz corpus), copied into the corpus as
/// `fuzz-<signature>.bmp`. Run by hand:
/// `BMP_FUZZ_DIR=collector/fuzz-bmp/corpus/bmp cargo test -p
/// tumen-collector --test bgp_bmp -- --ignored pick_fuzz_finds`.
#[test]
#[ignore = "reads $BMP_FUZZ_DIR, writes tests/corpus/bmp"]
fn pick_fuzz_finds() {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static PANICKED_AT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = std::env::var("BMP_FUZZ_DIR").expect("BMP_FUZZ_DIR");
    std::panic::set_hook(Box::new(|info| {
        if let Some(l) = info.location() {
            let file = l
                .file()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .trim_end_matches(".rs");
            PANICKED_AT
                .lock()
                .unwrap()
                .push(format!("{file}-{}", l.line()));
        }
    }));
    let mut best: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("the fuzz corpus") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        PANICKED_AT.lock().unwrap().clear();
        let out = bmp::replay(&bytes, &BmpOptions::default(), 1);
        let mut kinds: Vec<&str> = out
            .iter()
            .filter_map(|m| match m {
                Message::Fault { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut sig: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let mut at = PANICKED_AT.lock().unwrap().clone();
        at.sort();
        at.dedup();
        sig.extend(at);
        if sig.is_empty() {
            continue;
        }
        let sig = sig.join("+");
        if best.get(&sig).is_none_or(|b| bytes.len() < b.len()) {
            best.insert(sig, bytes);
        }
    }
    let _ = std::panic::take_hook();
    for (sig, bytes) in best {
        println!("{sig}: {} bytes", bytes.len());
        std::fs::write(corpus_dir().join(format!("fuzz-{sig}.bmp")), bytes).expect("write");
    }
}
