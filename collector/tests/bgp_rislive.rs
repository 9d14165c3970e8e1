//! The RIS Live client against a websocket server on 127.0.0.1 that
//! plays RIS Live: it replays a recorded sequence
//! (`data/rislive/sequence.jsonl`), but only what a `ris_subscribe` of
//! *this* connection covers (a client that does not subscribe again
//! after a reconnection gets nothing), and it breaks connections as
//! scripted: a TCP close between frames, a close in the middle of a
//! frame, a stall, an oversize frame, garbage. After a break it resumes
//! a few messages before where it stopped, so the client sees repeats.
//!
//! What is proven: the client's updates are exactly the recorded ones
//! (none missing, none twice), every break is marked as a gap with the
//! source going down and up, hostile frames are counted and skipped,
//! and the stop signal ends `run` at once.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use ipnet::IpNet;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as Ws;
use tumen_collector::bgp::rislive::{self, RisLiveOptions};
use tumen_collector::bgp::{AsPath, Change, Hop, Message, Peer, Route, Update};

const SEQUENCE: &str = include_str!("data/rislive/sequence.jsonl");

fn sequence() -> Vec<Value> {
    SEQUENCE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
        .collect()
}

fn targets() -> Vec<IpNet> {
    vec![
        "175.45.176.0/22".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ]
}

/// The updates a recorded `ris_message` stands for, read independently
/// of the client's parser: withdrawals first, then announcements, in
/// the message's order; only prefixes within `targets`.
fn expand(msg: &Value, targets: &[IpNet]) -> Vec<Update> {
    let d = &msg["data"];
    if d["type"] != "UPDATE" {
        return Vec::new();
    }
    let asn = match &d["peer_asn"] {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_u64().unwrap() as u32,
    };
    let peer = Peer {
        source: "ris-live".into(),
        router: d["host"].as_str().unwrap().into(),
        addr: d["peer"].as_str().unwrap().parse().unwrap(),
        asn,
    };
    let at_ms = (d["timestamp"].as_f64().unwrap() * 1000.0).round() as u64;
    let path = AsPath(
        d["path"]
            .as_array()
            .map(|p| {
                p.iter()
                    .map(|h| match h {
                        Value::Array(s) => {
                            Hop::Set(s.iter().map(|a| a.as_u64().unwrap() as u32).collect())
                        }
                        a => Hop::As(a.as_u64().unwrap() as u32),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    );
    let mut out = Vec::new();
    let mut push = |p: &Value, change: Change| {
        let prefix: IpNet = p.as_str().unwrap().parse().unwrap();
        if targets.iter().any(|t| t.contains(&prefix)) {
            out.push(Update {
                at_ms,
                peer: peer.clone(),
                prefix,
                change,
            });
        }
    };
    for p in d["withdrawals"].as_array().into_iter().flatten() {
        push(p, Change::Withdraw);
    }
    for a in d["announcements"].as_array().into_iter().flatten() {
        let next_hop: Option<IpAddr> = a["next_hop"]
            .as_str()
            .and_then(|s| s.split(',').next())
            .map(|s| s.parse().unwrap());
        for p in a["prefixes"].as_array().unwrap() {
            let route = Route {
                path: path.clone(),
                next_hop,
            };
            push(p, Change::Announce { route });
        }
    }
    out
}

/// What one scripted connection does after reading the subscriptions.
#[derive(Debug, Clone)]
enum Act {
    /// The next `n` messages of the sequence (those the connection's
    /// subscriptions cover; the others are passed over).
    Seq(usize),
    /// The rest of the sequence.
    Rest,
    /// One frame as it is.
    Raw(Ws),
    /// Drop the connection: TCP close between frames, no close frame.
    Cut,
    /// Write the header and part of a text frame, then close the TCP
    /// connection.
    HalfFrame,
    /// Send nothing more and answer nothing, until the client leaves.
    Stall,
}

/// One connection of the script: start `rewind` messages before where
/// the previous one stopped.
#[derive(Debug, Clone)]
struct Conn {
    rewind: usize,
    acts: Vec<Act>,
}

#[derive(Default)]
struct ServerState {
    /// Next message of the sequence not yet sent.
    cursor: usize,
    /// The subscriptions each connection received, in order.
    subscriptions: Vec<Vec<Value>>,
    /// Messages sent again after a rewind.
    resent: usize,
}

struct Server {
    url: String,
    state: Arc<Mutex<ServerState>>,
}

/// Starts the scripted server on 127.0.0.1; connections past the script
/// are held open and fed nothing.
async fn server(seq: Vec<Value>, script: Vec<Conn>, subs_expected: usize) -> Server {
    server_tls(seq, script, subs_expected, None).await
}

/// The same, over TLS when `tls` is given (`wss://`).
async fn server_tls(
    seq: Vec<Value>,
    script: Vec<Conn>,
    subs_expected: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = format!(
        "{scheme}://{}/v1/ws/?client=test",
        listener.local_addr().unwrap()
    );
    let state = Arc::new(Mutex::new(ServerState::default()));
    let seq = Arc::new(seq);
    let st = state.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let conn = script.get(n).cloned().unwrap_or(Conn {
                rewind: 0,
                acts: vec![Act::Stall],
            });
            n += 1;
            let (seq, st) = (seq.clone(), st.clone());
            match &tls {
                None => {
                    tokio::spawn(serve_conn(tcp, conn, seq, st, subs_expected));
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match acceptor.accept(tcp).await {
                            Ok(tls) => serve_conn(tls, conn, seq, st, subs_expected).await,
                            Err(e) => eprintln!("TLS accept: {e}"),
                        }
                    });
                }
            }
        }
    });
    Server { url, state }
}

/// Which subscribed-to things a connection is owed.
#[derive(Default)]
struct Subs {
    prefixes: Vec<IpNet>,
    peer_state: bool,
}

impl Subs {
    fn read(&mut self, text: &str) -> Option<Value> {
        let v: Value = serde_json::from_str(text).ok()?;
        if v["type"] != "ris_subscribe" {
            return None;
        }
        let d = &v["data"];
        match d["type"].as_str() {
            Some("UPDATE") => {
                // The RIS Live subscription the client must send.
                assert_eq!(d["moreSpecific"], true, "{v}");
                assert_eq!(d["lessSpecific"], false, "{v}");
                self.prefixes
                    .push(d["prefix"].as_str().unwrap().parse().unwrap());
            }
            Some("RIS_PEER_STATE") => self.peer_state = true,
            _ => {}
        }
        Some(v)
    }

    fn covers(&self, msg: &Value) -> bool {
        let d = &msg["data"];
        if d["type"] == "RIS_PEER_STATE" {
            return self.peer_state;
        }
        let prefixes = d["withdrawals"].as_array().into_iter().flatten().chain(
            d["announcements"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| a["prefixes"].as_array().into_iter().flatten()),
        );
        prefixes
            .filter_map(|p| p.as_str()?.parse::<IpNet>().ok())
            .any(|p| self.prefixes.iter().any(|s| s.contains(&p)))
    }
}

async fn serve_conn<S>(
    tcp: S,
    conn: Conn,
    seq: Arc<Vec<Value>>,
    state: Arc<Mutex<ServerState>>,
    subs_expected: usize,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    // The subscriptions: as many as the client should send, or what
    // came within a second.
    let mut subs = Subs::default();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while got.len() < subs_expected {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Ws::Text(t)))) => got.extend(subs.read(t.as_str())),
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    let (mut pos, old_cursor) = {
        let mut s = state.lock().unwrap();
        s.subscriptions.push(got);
        (s.cursor.saturating_sub(conn.rewind), s.cursor)
    };
    for act in conn.acts {
        match act {
            Act::Seq(_) | Act::Rest => {
                let n = match act {
                    Act::Seq(n) => n,
                    _ => usize::MAX,
                };
                let mut sent = 0;
                while sent < n && pos < seq.len() {
                    let mut msg = seq[pos].clone();
                    if pos < old_cursor {
                        // A resend carries another id, or none: the
                        // client must know it by its content.
                        if msg["data"].get("id").is_some() {
                            msg["data"]["id"] = json!(format!("replay-{pos}"));
                        }
                        state.lock().unwrap().resent += 1;
                    }
                    if subs.covers(&msg) && ws.send(Ws::text(msg.to_string())).await.is_err() {
                        return;
                    }
                    pos += 1;
                    sent += 1;
                    let mut s = state.lock().unwrap();
                    s.cursor = s.cursor.max(pos);
                    drop(s);
                    // Late subscriptions and pings, without waiting.
                    while let Some(Some(Ok(m))) = ws.next().now_or_never() {
                        if let Ws::Text(t) = m {
                            subs.read(t.as_str());
                        }
                    }
                }
            }
            Act::Raw(frame) => {
                if ws.send(frame).await.is_err() {
                    return;
                }
            }
            Act::Cut => return,
            Act::HalfFrame => {
                // FIN + text, 16-bit length 1000, then 40 bytes of it.
                let mut raw = vec![0x81, 126, 0x03, 0xe8];
                raw.extend_from_slice(&br#"{"type":"ris_message","data":{"timestamp"#[..40]);
                let tcp = ws.get_mut();
                // Below the websocket (inside TLS when there is TLS).
                let _ = tcp.write_all(&raw).await;
                let _ = tcp.flush().await;
                let _ = tcp.shutdown().await;
                return;
            }
            Act::Stall => {
                // Read (and ignore) until the client goes away.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
        }
    }
    // Script done: stay connected, feeding nothing but the answers to
    // RIS Live pings, until the client goes.
    while let Some(Ok(m)) = ws.next().await {
        let ping = match &m {
            Ws::Text(t) => {
                serde_json::from_str::<Value>(t.as_str()).is_ok_and(|v| v["type"] == "ping")
            }
            _ => false,
        };
        if ping
            && ws
                .send(Ws::text(r#"{"type":"pong","data":null}"#))
                .await
                .is_err()
        {
            return;
        }
    }
}

fn options(url: &str) -> RisLiveOptions {
    RisLiveOptions {
        url: url.to_string(),
        prefixes: targets(),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// What the client sent, sorted out.
#[derive(Debug, Default)]
struct Seen {
    updates: Vec<Update>,
    gaps: Vec<(u64, u64)>,
    states: Vec<bool>,
    faults: BTreeMap<&'static str, usize>,
    peer_ups: usize,
    peer_downs: usize,
}

impl Seen {
    fn add(&mut self, m: Message) {
        match m {
            Message::Update(u) => self.updates.push(u),
            Message::Gap {
                source,
                from_ms,
                to_ms,
            } => {
                assert_eq!(source, "ris-live");
                self.gaps.push((from_ms, to_ms));
            }
            Message::SourceState { source, up, .. } => {
                assert_eq!(source, "ris-live");
                self.states.push(up);
            }
            Message::Fault { source, kind } => {
                assert_eq!(source, "ris-live");
                *self.faults.entry(kind).or_default() += 1;
            }
            Message::PeerUp { .. } => self.peer_ups += 1,
            Message::PeerDown { .. } => self.peer_downs += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Runs the client until `done` says so (or 30 s), then stops it and
/// checks that it ends promptly.
async fn run_until(opts: RisLiveOptions, done: impl Fn(&Seen) -> bool) -> Seen {
    let (tx, mut rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = tokio::spawn(rislive::run(opts, tx, stop_rx));
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => seen.add(m),
            Ok(None) => panic!("run ended by itself"),
            Err(_) => panic!("timed out; so far: {seen:#?}"),
        }
    }
    // Anything late (a repeat let through would show here).
    let quiet = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(m)) = tokio::time::timeout_at(quiet, rx.recv()).await {
        seen.add(m);
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), client)
        .await
        .expect("run stops within a second of the stop signal")
        .unwrap();
    seen
}

fn expected(seq: &[Value]) -> Vec<Update> {
    seq.iter().flat_map(|m| expand(m, &targets())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_disconnects_is_exact_and_gaps_are_marked() {
    let seq = sequence();
    assert!(seq.len() >= 300);
    let want = expected(&seq);
    let script = vec![
        Conn {
            rewind: 0,
            acts: vec![Act::Seq(70), Act::Cut],
        },
        Conn {
            rewind: 5,
            acts: vec![Act::Seq(90), Act::HalfFrame],
        },
        Conn {
            rewind: 3,
            acts: vec![Act::Seq(80), Act::Cut],
        },
        Conn {
            rewind: 4,
            acts: vec![Act::Rest],
        },
    ];
    let srv = server(seq.clone(), script, 3).await;
    let started = std::time::Instant::now();
    let n = want.len();
    let seen = run_until(options(&srv.url), |s| s.updates.len() >= n).await;
    let took = started.elapsed();

    let st = srv.state.lock().unwrap();
    assert_eq!(st.subscriptions.len(), 4, "one connection per break");
    for subs in &st.subscriptions {
        assert_eq!(subs.len(), 3, "two prefixes and peer state each time");
    }
    assert_eq!(st.resent, 5 + 3 + 4);
    assert_eq!(seen.updates.len(), want.len(), "none missing, none twice");
    assert_eq!(seen.updates, want);
    assert_eq!(seen.faults.get("duplicate"), Some(&12));
    assert_eq!(seen.faults.get("connection"), Some(&3));
    assert_eq!(seen.gaps.len(), 3);
    for (from, to) in &seen.gaps {
        assert!(from <= to, "{from} > {to}");
    }
    assert_eq!(
        seen.states,
        vec![true, false, true, false, true, false, true]
    );
    assert!(seen.peer_ups > 0 && seen.peer_downs > 0);
    eprintln!(
        "{} messages, {} updates, 3 disconnects, {} repeats dropped, {took:?}",
        seq.len(),
        seen.updates.len(),
        st.resent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_is_left_and_subscribed_again() {
    let seq: Vec<Value> = sequence().into_iter().take(60).collect();
    let want = expected(&seq);
    let script = vec![
        Conn {
            rewind: 0,
            acts: vec![Act::Seq(25), Act::Stall],
        },
        Conn {
            rewind: 2,
            acts: vec![Act::Rest],
        },
    ];
    let srv = server(seq, script, 3).await;
    let mut opts = options(&srv.url);
    // The stalled connection answers no ping; the next one does, and
    // stays up though it has nothing more to send.
    opts.idle_timeout = Duration::from_millis(400);
    opts.ping_interval = Duration::from_millis(100);
    let started = std::time::Instant::now();
    let n = want.len();
    let seen = run_until(opts, |s| s.updates.len() >= n).await;
    assert_eq!(seen.updates, want);
    assert_eq!(seen.faults.get("stall"), Some(&1));
    assert_eq!(seen.gaps.len(), 1);
    assert_eq!(seen.states, vec![true, false, true]);
    let st = srv.state.lock().unwrap();
    assert_eq!(st.subscriptions.len(), 2);
    assert_eq!(st.subscriptions[1].len(), 3, "subscribed again");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_are_counted_and_the_stream_goes_on() {
    let seq: Vec<Value> = sequence().into_iter().take(20).collect();
    // One in-target prefix and one outside (the server sends more than
    // was asked): only the first is passed on.
    let mixed = json!({"type":"ris_message","data":{"timestamp":1764900100.5,"peer":"192.0.2.1","peer_asn":"3356","host":"rrc00","type":"UPDATE","path":[3356,4837,131279],"announcements":[{"next_hop":"192.0.2.1","prefixes":["175.45.177.0/24","10.0.0.0/8"]}],"withdrawals":["198.51.100.0/24"]}});
    let wrong_types = r#"{"type":"ris_message","data":{"timestamp":"soon","peer":42,"peer_asn":[],"host":"rrc00","type":"UPDATE"}}"#;
    let script = vec![
        Conn {
            rewind: 0,
            acts: vec![
                Act::Seq(5),
                Act::Raw(Ws::text("{\"type\":\"ris_message\",\"data\":{")),
                Act::Raw(Ws::text("not json at all")),
                Act::Raw(Ws::text(
                    r#"{"type":"ris_error","data":{"message":"Unknown subscription parameter"}}"#,
                )),
                Act::Raw(Ws::binary(vec![0u8, 159, 146, 150])),
                Act::Raw(Ws::text(r#"{"type":"ris_surprise","data":{}}"#)),
                Act::Raw(Ws::text(wrong_types)),
                Act::Raw(Ws::text(r#"{"type":"pong","data":null}"#)),
                Act::Raw(Ws::text(mixed.to_string())),
                Act::Seq(5),
                // 100 KiB where the client takes 64 KiB.
                Act::Raw(Ws::text("x".repeat(100 << 10))),
                Act::Stall,
            ],
        },
        Conn {
            rewind: 0,
            acts: vec![Act::Rest],
        },
    ];
    let srv = server(seq.clone(), script, 3).await;
    let mut opts = options(&srv.url);
    opts.max_message = 64 << 10;
    let mut want = expected(&seq[..5]);
    want.extend(expand(&mixed, &targets()));
    want.extend(expected(&seq[5..]));
    let n = want.len();
    let seen = run_until(opts, |s| s.updates.len() >= n).await;
    assert_eq!(seen.updates, want);
    let f = &seen.faults;
    assert_eq!(f.get("invalid_json"), Some(&2), "{f:?}");
    assert_eq!(f.get("server_error"), Some(&1), "{f:?}");
    assert_eq!(f.get("binary_frame"), Some(&1), "{f:?}");
    assert_eq!(f.get("unknown_type"), Some(&1), "{f:?}");
    assert_eq!(f.get("bad_message"), Some(&1), "{f:?}");
    assert_eq!(f.get("oversize"), Some(&1), "{f:?}");
    // The oversize frame broke the connection; the next one went on.
    assert_eq!(f.get("duplicate"), None, "{f:?}");
    assert_eq!(seen.gaps.len(), 1);
    assert_eq!(seen.states, vec![true, false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_subscribe_again_gets_nothing() {
    // The server's gate is what catches a client that forgets to
    // subscribe after a reconnection: a bare connection is fed nothing.
    let seq = sequence();
    let script = vec![Conn {
        rewind: 0,
        acts: vec![Act::Rest],
    }];
    let srv = server(seq, script, 3).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(srv.url.as_str())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_millis(1500), ws.next()).await;
    assert!(got.is_err(), "a frame without a subscription: {got:?}");
    assert_eq!(srv.state.lock().unwrap().subscriptions[0].len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_run_promptly() {
    // Connected, idle.
    let srv = server(Vec::new(), Vec::new(), 3).await;
    let (tx, mut rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = tokio::spawn(rislive::run(options(&srv.url), tx, stop_rx));
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert!(matches!(first, Some(Message::SourceState { up: true, .. })));
    let t = std::time::Instant::now();
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), client)
        .await
        .expect("stopped while connected")
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    // Nobody listening: waiting out a long backoff.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", closed.local_addr().unwrap());
    drop(closed);
    let mut opts = options(&url);
    opts.backoff_min = Duration::from_secs(30);
    let (tx, mut rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = tokio::spawn(rislive::run(opts, tx, stop_rx));
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(
        first,
        Some(Message::Fault {
            source: "ris-live".into(),
            kind: "connect"
        })
    );
    let t = std::time::Instant::now();
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), client)
        .await
        .expect("stopped while waiting to reconnect")
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_while_the_model_does_not_read() {
    // A full queue must not keep run from stopping.
    let seq = sequence();
    let script = vec![Conn {
        rewind: 0,
        acts: vec![Act::Rest],
    }];
    let srv = server(seq, script, 3).await;
    let (tx, _rx) = mpsc::channel(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = tokio::spawn(rislive::run(options(&srv.url), tx, stop_rx));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), client)
        .await
        .expect("stopped with a full queue")
        .unwrap();
}

#[test]
fn default_url_is_ripe_but_tests_use_loopback() {
    assert!(RisLiveOptions::default()
        .url
        .starts_with("wss://ris-live.ripe.net/"));
    assert!(options("ws://127.0.0.1:1/")
        .url
        .starts_with("ws://127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_collector_only_when_host_is_set() {
    // The server ignores `host` (it sends every collector's messages):
    // the client keeps rrc00's.
    let seq: Vec<Value> = sequence().into_iter().take(80).collect();
    let want: Vec<Update> = expected(&seq)
        .into_iter()
        .filter(|u| u.peer.router == "rrc00")
        .collect();
    assert!(!want.is_empty() && want.len() < expected(&seq).len());
    let script = vec![Conn {
        rewind: 0,
        acts: vec![Act::Rest],
    }];
    let srv = server(seq, script, 3).await;
    let mut opts = options(&srv.url);
    opts.host = Some("rrc00".into());
    let n = want.len();
    let seen = run_until(opts, |s| s.updates.len() >= n).await;
    assert_eq!(seen.updates, want);
    let st = srv.state.lock().unwrap();
    assert!(st.subscriptions[0]
        .iter()
        .all(|s| s["data"]["host"] == "rrc00"));
}

/// A test CA and a certificate for 127.0.0.1 signed by it, made with the
/// openssl CLI in `dir`: (CA certificate, server certificate, key).
fn test_pki(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (apt install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=rislive test CA"];
    ca.extend(key);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    run(&ca);
    let mut leaf = vec!["req", "-subj", "/CN=127.0.0.1"];
    leaf.extend(key);
    leaf.extend(["-keyout", "key.pem", "-out", "leaf.csr"]);
    run(&leaf);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    ["ca.pem", "cert.pem", "key.pem"].map(|n| dir.join(n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_ring_and_a_given_ca() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = test_pki(dir.path());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    // The replay with a break between frames and one inside a frame
    // (inside TLS), as over plain TCP.
    let seq: Vec<Value> = sequence().into_iter().take(120).collect();
    let want = expected(&seq);
    let script = vec![
        Conn {
            rewind: 0,
            acts: vec![Act::Seq(40), Act::Cut],
        },
        Conn {
            rewind: 4,
            acts: vec![Act::Seq(40), Act::HalfFrame],
        },
        Conn {
            rewind: 2,
            acts: vec![Act::Rest],
        },
    ];
    let srv = server_tls(seq, script, 3, Some(acceptor)).await;
    assert!(srv.url.starts_with("wss://127.0.0.1:"));
    let mut opts = options(&srv.url);
    opts.ca_file = Some(ca.clone());
    let n = want.len();
    let seen = run_until(opts, |s| s.updates.len() >= n).await;
    assert_eq!(seen.updates, want);
    assert_eq!(seen.faults.get("duplicate"), Some(&6));
    assert_eq!(seen.gaps.len(), 2);
    assert_eq!(seen.states, vec![true, false, true, false, true]);

    // A CA that did not sign the server's certificate (though it has
    // the same name): refused, counted, retried.
    let other = tempfile::tempdir().unwrap();
    let [wrong_ca, _, _] = test_pki(other.path());
    let mut opts = options(&srv.url);
    opts.ca_file = Some(wrong_ca);
    let seen = run_until(opts, |s| s.faults.get("connect").copied().unwrap_or(0) >= 2).await;
    assert!(seen.updates.is_empty());
    assert_eq!(seen.states.first(), Some(&false));
}

mod never_panics {
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use tumen_collector::bgp::rislive::parse_frame;

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "\\PC{0,20}".prop_map(Value::from),
            Just(json!("175.45.176.0/24")),
            Just(json!("2001:db8::/129")),
            Just(json!("4294967296")),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const FIELDS: [&str; 11] = [
        "timestamp",
        "peer",
        "peer_asn",
        "host",
        "type",
        "path",
        "announcements",
        "withdrawals",
        "state",
        "id",
        "next_hop",
    ];

    proptest! {
        #[test]
        fn on_any_text(s in "\\PC{0,300}") {
            let _ = parse_frame(&s);
        }

        #[test]
        fn on_a_cut_recorded_line(line in 0usize..330, cut in 0usize..600) {
            let l = super::SEQUENCE.lines().nth(line).unwrap_or("");
            let mut end = cut.min(l.len());
            while !l.is_char_boundary(end) {
                end -= 1;
            }
            let _ = parse_frame(&l[..end]);
        }

        #[test]
        fn on_a_field_of_any_type(line in 0usize..330, field in 0usize..11, v in any_value()) {
            let l = super::SEQUENCE.lines().nth(line).unwrap_or("{}");
            let mut msg: Value = serde_json::from_str(l).unwrap();
            if FIELDS[field] == "next_hop" {
                if let Some(a) = msg["data"]["announcements"].get_mut(0) {
                    a["next_hop"] = v;
                }
            } else {
                msg["data"][FIELDS[field]] = v;
            }
            let _ = parse_frame(&msg.to_string());
        }
    }
}
