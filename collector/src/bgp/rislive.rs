//! The RIPE RIS Live websocket stream (<https://ris-live.ripe.net/manual/>):
//! BGP updates of the RIS route collectors' peers, as JSON, a few
//! seconds after the collectors heard them.
//!
//! [`run`] keeps one connection up for as long as it is not told to
//! stop: it connects (with a timeout), subscribes to `UPDATE`s of every
//! target prefix and its more-specifics (and to `RIS_PEER_STATE`) on
//! *every* connection, since a subscription dies with its connection,
//! and reads until the connection fails or goes quiet for longer than
//! the idle timeout; then it waits (exponential backoff with jitter) and
//! connects again. RIS Live has no replay: what the collectors heard
//! while we were away is lost, so each reconnection is marked as a
//! [`Message::Gap`], and the feed's state as [`Message::SourceState`].
//! A server may resend what we already had after a reconnection: every
//! message is keyed by its content (without the `id`, which need not be
//! there nor stay the same) and one seen within the dedupe window is
//! dropped and counted.
//!
//! The parsing ([`parse_frame`], [`Dedupe`], [`covered`]) is pure and
//! does no I/O; the connection loop only moves frames. Nothing read
//! from the network panics: a frame that does not decode is logged and
//! counted as a [`Message::Fault`], and the stream goes on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use ipnet::IpNet;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{AsPath, Change, Hop, Message, Peer, Route, Update};

/// The source label of everything this module sends.
pub const SOURCE: &str = "ris-live";

/// RIPE's public endpoint, with the client name RIPE asks for.
pub const DEFAULT_URL: &str = "wss://ris-live.ripe.net/v1/ws/?client=tumen-collector";

/// How [`run`] connects, what it subscribes to and when it gives up on
/// a connection.
#[derive(Debug, Clone)]
pub struct RisLiveOptions {
    /// The websocket URL (`wss://` or, in tests, `ws://`).
    pub url: String,
    /// Target prefixes: each is subscribed to with its more-specifics,
    /// and only updates for these or more specific prefixes are passed
    /// on (a server may send more than was asked).
    pub prefixes: Vec<IpNet>,
    /// One RIS collector (`rrc00`), or all of them.
    pub host: Option<String>,
    /// Also subscribe to `RIS_PEER_STATE` (peer sessions up and down).
    pub peer_state: bool,
    /// The wait after the first failure; doubled after each further
    /// one up to `backoff_max`, each wait drawn between half and all of
    /// it (jitter), back to `backoff_min` once a connection delivered.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long a message's key is remembered to drop a resent copy,
    /// and at most how many keys.
    pub dedupe_window: Duration,
    pub dedupe_max: usize,
    /// No frame at all (data, ping, pong) for this long: the connection
    /// is taken as stalled and replaced.
    pub idle_timeout: Duration,
    /// How often to send RIS Live's `ping` (its `pong` keeps a
    /// connection whose prefixes are quiet from looking stalled).
    pub ping_interval: Duration,
    /// TCP, TLS and the websocket handshake together, and the sending of
    /// the subscriptions.
    pub connect_timeout: Duration,
    /// The largest websocket message (and frame) accepted; a larger one
    /// fails the connection (RIS Live messages are a few KiB).
    pub max_message: usize,
    /// For `wss://`: trust the CA certificates in this PEM file instead
    /// of the system's (a mirror or proxy with its own CA; tests).
    pub ca_file: Option<PathBuf>,
}

impl Default for RisLiveOptions {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_string(),
            prefixes: Vec::new(),
            host: None,
            peer_state: true,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            dedupe_window: Duration::from_secs(600),
            dedupe_max: 200_000,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(15),
            max_message: 1 << 20,
            ca_file: None,
        }
    }
}

/// The `ris_subscribe` messages one connection starts with: one per
/// target prefix (`UPDATE`s, with more-specifics), and one for peer
/// states when asked.
pub fn subscriptions(opts: &RisLiveOptions) -> Vec<String> {
    let mut out = Vec::with_capacity(opts.prefixes.len() + 1);
    for p in &opts.prefixes {
        let mut data = json!({
            "prefix": p.to_string(),
            "moreSpecific": true,
            "lessSpecific": false,
            "type": "UPDATE",
            "socketOptions": {"includeRaw": false},
        });
        if let Some(h) = &opts.host {
            data["host"] = Value::String(h.clone());
        }
        out.push(json!({"type": "ris_subscribe", "data": data}).to_string());
    }
    if opts.peer_state {
        let mut data = json!({"type": "RIS_PEER_STATE"});
        if let Some(h) = &opts.host {
            data["host"] = Value::String(h.clone());
        }
        out.push(json!({"type": "ris_subscribe", "data": data}).to_string());
    }
    out
}

/// What one text frame from the server says.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A `ris_message`.
    Message(RisMessage),
    /// A `ris_error`: the server refused something we sent.
    Error(String),
    /// `pong`, `ris_subscribe_ok`, `ris_rrc_list`: nothing to do.
    Ignored(&'static str),
}

/// One `ris_message`.
#[derive(Debug, Clone, PartialEq)]
pub struct RisMessage {
    /// Identifies the message across resends (its content, not `id`).
    pub key: [u8; 16],
    pub at_ms: u64,
    pub peer: Peer,
    pub body: Body,
}

/// What a `ris_message` carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An `UPDATE`: withdrawn prefixes and announced routes, in the
    /// order of a BGP UPDATE message (withdrawals first).
    Update {
        withdrawn: Vec<IpNet>,
        announced: Vec<(IpNet, Route)>,
    },
    /// A `RIS_PEER_STATE`: the peer's session `connected` or `down`
    /// (other states are passed as they are).
    PeerState(String),
    /// `OPEN`, `KEEPALIVE`, `NOTIFICATION`, `STATE`: no route in it.
    Other,
}

/// Why a text frame could not be read; `kind` is the fault's label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ParseError {
    pub kind: &'static str,
    pub detail: String,
}

fn bad(detail: impl Into<String>) -> ParseError {
    ParseError {
        kind: "bad_message",
        detail: detail.into(),
    }
}

/// Reads one text frame. Fields RIS Live documents are checked for
/// their types; unknown fields are ignored, a missing `path` is an
/// empty one, and `peer_asn` may be a string (as RIS sends it) or a
/// number.
pub fn parse_frame(text: &str) -> Result<Frame, ParseError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ParseError {
        kind: "invalid_json",
        detail: format!("not JSON: {e}"),
    })?;
    let obj = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no string `type`"))?;
    match kind {
        "ris_message" => {
            let data = obj
                .get("data")
                .and_then(Value::as_object)
                .ok_or_else(|| bad("ris_message without a `data` object"))?;
            parse_message(data).map(Frame::Message)
        }
        "ris_error" => {
            let msg = obj
                .get("data")
                .and_then(|d| d.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            Ok(Frame::Error(msg.to_string()))
        }
        "pong" => Ok(Frame::Ignored("pong")),
        "ris_subscribe_ok" => Ok(Frame::Ignored("ris_subscribe_ok")),
        "ris_rrc_list" => Ok(Frame::Ignored("ris_rrc_list")),
        other => Err(ParseError {
            kind: "unknown_type",
            detail: format!("unknown message type {:?}", truncate(other, 64)),
        }),
    }
}

fn parse_message(data: &Map<String, Value>) -> Result<RisMessage, ParseError> {
    let str_field = |name: &str| -> Result<&str, ParseError> {
        data.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("`{name}` missing or not a string")))
    };
    let ts = data
        .get("timestamp")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad("`timestamp` missing or not a number"))?;
    // Up to the year 2500: anything else is not a time.
    if !(0.0..1.7e10).contains(&ts) {
        return Err(bad(format!("`timestamp` {ts} out of range")));
    }
    let at_ms = (ts * 1000.0).round() as u64;
    let host = str_field("host")?;
    let addr: IpAddr = str_field("peer")?
        .parse()
        .map_err(|_| bad("`peer` is not an IP address"))?;
    let asn = match data.get("peer_asn") {
        Some(Value::String(s)) => s.trim().parse::<u32>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
    .ok_or_else(|| bad("`peer_asn` missing or not an AS number"))?;
    let peer = Peer {
        source: SOURCE.to_string(),
        router: host.to_string(),
        addr,
        asn,
    };
    let mtype = str_field("type")?;
    let body = match mtype {
        "UPDATE" => parse_update(data)?,
        "RIS_PEER_STATE" => Body::PeerState(str_field("state")?.to_string()),
        "OPEN" | "KEEPALIVE" | "NOTIFICATION" | "STATE" => Body::Other,
        other => {
            return Err(ParseError {
                kind: "unknown_type",
                detail: format!("unknown ris_message type {:?}", truncate(other, 64)),
            });
        }
    };
    Ok(RisMessage {
        key: content_key(data),
        at_ms,
        peer,
        body,
    })
}

fn parse_update(data: &Map<String, Value>) -> Result<Body, ParseError> {
    let path = match data.get("path") {
        None | Some(Value::Null) => AsPath::default(),
        Some(Value::Array(hops)) => AsPath(hops.iter().map(hop).collect::<Result<_, _>>()?),
        Some(_) => return Err(bad("`path` is not an array")),
    };
    let mut withdrawn = Vec::new();
    if let Some(w) = data.get("withdrawals") {
        let w = w
            .as_array()
            .ok_or_else(|| bad("`withdrawals` not an array"))?;
        for p in w {
            withdrawn.push(prefix(p)?);
        }
    }
    let mut announced = Vec::new();
    if let Some(a) = data.get("announcements") {
        let a = a
            .as_array()
            .ok_or_else(|| bad("`announcements` not an array"))?;
        for ann in a {
            let next_hop = match ann.get("next_hop") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => next_hop(s)?,
                Some(_) => return Err(bad("`next_hop` not a string")),
            };
            let prefixes = ann
                .get("prefixes")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("announcement without a `prefixes` array"))?;
            for p in prefixes {
                let route = Route {
                    path: path.clone(),
                    next_hop,
                };
                announced.push((prefix(p)?, route));
            }
        }
    }
    Ok(Body::Update {
        withdrawn,
        announced,
    })
}

/// An AS of the path, or an `AS_SET` (a nested array).
fn hop(v: &Value) -> Result<Hop, ParseError> {
    match v {
        Value::Array(set) => Ok(Hop::Set(
            set.iter().map(asn).collect::<Result<_, ParseError>>()?,
        )),
        v => asn(v).map(Hop::As),
    }
}

fn asn(v: &Value) -> Result<u32, ParseError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(format!("path element {} is not an AS number", v)))
}

fn prefix(v: &Value) -> Result<IpNet, ParseError> {
    let s = v.as_str().ok_or_else(|| bad("a prefix is not a string"))?;
    s.parse::<IpNet>()
        .map(|p| p.trunc())
        .map_err(|_| bad(format!("{:?} is not a prefix", truncate(s, 64))))
}

/// RIS Live writes an IPv6 next hop with its link-local one after a
/// comma (`2001:db8::1,fe80::1`): the first is the route's.
fn next_hop(s: &str) -> Result<Option<IpAddr>, ParseError> {
    let first = s.split(',').next().unwrap_or("").trim();
    if first.is_empty() {
        return Ok(None);
    }
    first
        .parse()
        .map(Some)
        .map_err(|_| bad(format!("next_hop {:?} is not an address", truncate(s, 64))))
}

/// A message's identity across resends: a hash of its `data` without
/// the `id` and `raw` fields, keys in sorted order (the same message
/// sent twice hashes the same however the server numbered or laid it
/// out; two different messages of one peer differ in timestamp or
/// content).
fn content_key(data: &Map<String, Value>) -> [u8; 16] {
    fn feed(h: &mut Sha256, v: &Value) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                h.update(b"{");
                for k in keys {
                    h.update(k.as_bytes());
                    h.update(b"\0");
                    feed(h, &m[k]);
                }
                h.update(b"}");
            }
            Value::Array(a) => {
                h.update(b"[");
                for x in a {
                    feed(h, x);
                }
                h.update(b"]");
            }
            other => {
                h.update(other.to_string().as_bytes());
                h.update(b"\0");
            }
        }
    }
    let mut h = Sha256::new();
    let mut keys: Vec<&String> = data.keys().filter(|k| *k != "id" && *k != "raw").collect();
    keys.sort();
    for k in keys {
        h.update(k.as_bytes());
        h.update(b"\0");
        feed(&mut h, &data[k]);
    }
    let d = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&d[..16]);
    key
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Whether `p` is one of `targets` or more specific than one.
pub fn covered(targets: &[IpNet], p: &IpNet) -> bool {
    targets.iter().any(|t| t.contains(p))
}

/// The keys of messages seen lately: at most `max`, none older than
/// `window` (by arrival).
#[derive(Debug)]
pub struct Dedupe {
    window: Duration,
    max: usize,
    seen: HashSet<[u8; 16]>,
    order: VecDeque<(Instant, [u8; 16])>,
}

impl Dedupe {
    pub fn new(window: Duration, max: usize) -> Self {
        Self {
            window,
            max: max.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// `true` the first time `key` is seen within the window, `false`
    /// for a repeat.
    pub fn first(&mut self, key: [u8; 16], now: Instant) -> bool {
        while let Some(&(t, k)) = self.order.front() {
            if now.saturating_duration_since(t) > self.window || self.order.len() >= self.max {
                self.order.pop_front();
                self.seen.remove(&k);
            } else {
                break;
            }
        }
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back((now, key));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Unix milliseconds now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `run` was told to stop, or nobody reads its messages any more.
struct Stopped;

/// The client's state across connections.
struct Client {
    opts: RisLiveOptions,
    tx: mpsc::Sender<Message>,
    stop: watch::Receiver<bool>,
    dedupe: Dedupe,
    /// Peers heard of (a [`Message::PeerUp`] was sent), until their
    /// `RIS_PEER_STATE` says down.
    peers: HashSet<Peer>,
    /// The feed's state as last sent (`None` before the first).
    up: Option<bool>,
    /// Since when the feed may have missed messages (set when a
    /// subscribed connection ends, cleared by the next one's Gap).
    lost_since: Option<u64>,
    /// Messages dropped as repeats (in the reconnection log line).
    duplicates: u64,
    /// Faults by kind (in the reconnection log line).
    faults: HashMap<&'static str, u64>,
}

/// What woke the connection loop.
enum Step<F> {
    Frame(F),
    Ping,
    Stop,
}

/// How one connection ended.
enum End {
    Stopped,
    /// The connection failed; `delivered` when it had carried at least
    /// one message (the backoff starts over).
    Lost {
        delivered: bool,
    },
}

impl Client {
    async fn emit(&mut self, msg: Message) -> Result<(), Stopped> {
        tokio::select! {
            r = self.tx.send(msg) => r.map_err(|_| Stopped),
            _ = self.stop.wait_for(|s| *s) => Err(Stopped),
        }
    }

    async fn fault(&mut self, kind: &'static str) -> Result<(), Stopped> {
        *self.faults.entry(kind).or_default() += 1;
        self.emit(Message::Fault {
            source: SOURCE.to_string(),
            kind,
        })
        .await
    }

    async fn state(&mut self, up: bool) -> Result<(), Stopped> {
        if self.up == Some(up) {
            return Ok(());
        }
        self.up = Some(up);
        self.emit(Message::SourceState {
            source: SOURCE.to_string(),
            router: None,
            up,
            at_ms: now_ms(),
        })
        .await
    }

    /// One text frame: parsed, deduplicated, filtered, sent on.
    async fn text(&mut self, text: &str) -> Result<(), Stopped> {
        let msg = match parse_frame(text) {
            Ok(Frame::Message(m)) => m,
            Ok(Frame::Error(e)) => {
                tracing::warn!(error = %truncate(&e, 300), "RIS Live: ris_error from the server");
                return self.fault("server_error").await;
            }
            Ok(Frame::Ignored(what)) => {
                tracing::debug!(what, "RIS Live: control message");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(kind = e.kind, error = %e, frame = %truncate(text, 200), "RIS Live: unreadable frame skipped");
                return self.fault(e.kind).await;
            }
        };
        if self
            .opts
            .host
            .as_ref()
            .is_some_and(|h| *h != msg.peer.router)
        {
            tracing::debug!(host = %msg.peer.router, "RIS Live: message of another collector ignored");
            return Ok(());
        }
        if !self.dedupe.first(msg.key, Instant::now()) {
            self.duplicates += 1;
            tracing::debug!(peer = %msg.peer.name(), at_ms = msg.at_ms, duplicates = self.duplicates, "RIS Live: message seen before dropped");
            return self.fault("duplicate").await;
        }
        match msg.body {
            Body::Update {
                withdrawn,
                announced,
            } => {
                let changes: Vec<(IpNet, Change)> = withdrawn
                    .into_iter()
                    .map(|p| (p, Change::Withdraw))
                    .chain(
                        announced
                            .into_iter()
                            .map(|(p, route)| (p, Change::Announce { route })),
                    )
                    .filter(|(p, _)| covered(&self.opts.prefixes, p))
                    .collect();
                if changes.is_empty() {
                    return Ok(());
                }
                self.heard(&msg.peer, msg.at_ms).await?;
                for (prefix, change) in changes {
                    self.emit(Message::Update(Update {
                        at_ms: msg.at_ms,
                        peer: msg.peer.clone(),
                        prefix,
                        change,
                    }))
                    .await?;
                }
                Ok(())
            }
            Body::PeerState(state) => match state.as_str() {
                "connected" => self.heard(&msg.peer, msg.at_ms).await,
                "down" => {
                    self.peers.remove(&msg.peer);
                    self.emit(Message::PeerDown {
                        peer: msg.peer,
                        at_ms: msg.at_ms,
                        reason: "RIS_PEER_STATE down".to_string(),
                    })
                    .await
                }
                other => {
                    tracing::debug!(peer = %msg.peer.name(), state = %truncate(other, 40), "RIS Live: peer state ignored");
                    Ok(())
                }
            },
            Body::Other => Ok(()),
        }
    }

    /// A [`Message::PeerUp`] for a peer first heard of.
    async fn heard(&mut self, peer: &Peer, at_ms: u64) -> Result<(), Stopped> {
        if self.peers.insert(peer.clone()) {
            self.emit(Message::PeerUp {
                peer: peer.clone(),
                at_ms,
            })
            .await?;
        }
        Ok(())
    }

    /// The feed is down from `since` on (once per outage).
    async fn lost(&mut self, since: u64) -> Result<(), Stopped> {
        if self.lost_since.is_none() {
            self.lost_since = Some(since);
        }
        self.state(false).await
    }

    /// One connection, from the handshake to its end.
    async fn connection(&mut self, tls: &Option<Connector>) -> End {
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.opts.max_message))
            .max_frame_size(Some(self.opts.max_message));
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            self.opts.url.as_str(),
            Some(config),
            true,
            tls.clone(),
        );
        let timeout = self.opts.connect_timeout;
        let attempt = tokio::select! {
            r = tokio::time::timeout(timeout, connect) => r,
            _ = self.stop.wait_for(|s| *s) => return End::Stopped,
        };
        let mut ws = match attempt {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                tracing::warn!(url = %self.opts.url, error = %e, "RIS Live: cannot connect");
                return self.ended("connect", false).await;
            }
            Err(_) => {
                tracing::warn!(url = %self.opts.url, timeout_s = timeout.as_secs_f64(), "RIS Live: connecting timed out");
                return self.ended("connect", false).await;
            }
        };
        let subs = subscriptions(&self.opts);
        let subscribe = async {
            for s in &subs {
                ws.feed(tungstenite::Message::text(s.as_str())).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(timeout, subscribe).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "RIS Live: subscribing failed");
                return self.ended("connection", false).await;
            }
            Err(_) => {
                tracing::warn!("RIS Live: subscribing timed out");
                return self.ended("connection", false).await;
            }
        }
        let active = now_ms();
        tracing::info!(url = %self.opts.url, prefixes = self.opts.prefixes.len(), "RIS Live: connected and subscribed");
        if let Some(from_ms) = self.lost_since.take() {
            let gap = Message::Gap {
                source: SOURCE.to_string(),
                from_ms,
                to_ms: active,
            };
            if self.emit(gap).await.is_err() {
                return End::Stopped;
            }
        }
        if self.state(true).await.is_err() {
            return End::Stopped;
        }
        // When the last frame arrived: where a gap starts if this
        // connection ends.
        let mut last_ms = active;
        let mut delivered = false;
        let mut ping = tokio::time::interval_at(
            Instant::now() + self.opts.ping_interval,
            self.opts.ping_interval.max(Duration::from_millis(10)),
        );
        let idle = self.opts.idle_timeout;
        let mut last_frame = Instant::now();
        loop {
            let next = tokio::select! {
                r = tokio::time::timeout_at(last_frame + idle, ws.next()) => Step::Frame(r),
                _ = ping.tick() => Step::Ping,
                _ = self.stop.wait_for(|s| *s) => Step::Stop,
            };
            let next = match next {
                Step::Frame(r) => r,
                Step::Ping => {
                    // Bounded: a server that reads nothing must not hold
                    // us here past the timeouts.
                    let ping = tungstenite::Message::text(r#"{"type":"ping"}"#);
                    match tokio::time::timeout(timeout, ws.send(ping)).await {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "RIS Live: sending ping failed");
                        }
                        Err(_) => tracing::warn!("RIS Live: sending ping timed out"),
                    }
                    return self.ended_at("connection", delivered, last_ms).await;
                }
                Step::Stop => {
                    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
                    return End::Stopped;
                }
            };
            let frame = match next {
                Err(_) => {
                    tracing::warn!(
                        idle_s = idle.as_secs_f64(),
                        "RIS Live: nothing received within the idle timeout; reconnecting"
                    );
                    return self.ended_at("stall", delivered, last_ms).await;
                }
                Ok(None) => {
                    tracing::warn!("RIS Live: connection closed");
                    return self.ended_at("connection", delivered, last_ms).await;
                }
                Ok(Some(Err(e))) => {
                    let kind = match e {
                        tungstenite::Error::Capacity(_) => "oversize",
                        _ => "connection",
                    };
                    tracing::warn!(kind, error = %e, "RIS Live: connection failed");
                    return self.ended_at(kind, delivered, last_ms).await;
                }
                Ok(Some(Ok(f))) => f,
            };
            last_ms = now_ms();
            last_frame = Instant::now();
            let step = match frame {
                tungstenite::Message::Text(t) => {
                    delivered = true;
                    self.text(t.as_str()).await
                }
                tungstenite::Message::Binary(b) => {
                    tracing::warn!(bytes = b.len(), "RIS Live: binary frame skipped");
                    self.fault("binary_frame").await
                }
                tungstenite::Message::Close(c) => {
                    tracing::warn!(close = ?c, "RIS Live: the server closed the connection");
                    return self.ended_at("closed", delivered, last_ms).await;
                }
                _ => Ok(()),
            };
            if step.is_err() {
                return End::Stopped;
            }
        }
    }

    /// A connection attempt or connection failed now.
    async fn ended(&mut self, kind: &'static str, delivered: bool) -> End {
        self.ended_at(kind, delivered, now_ms()).await
    }

    /// A connection failed; the feed has been missing since `since`.
    async fn ended_at(&mut self, kind: &'static str, delivered: bool, since: u64) -> End {
        if self.fault(kind).await.is_err() || self.lost(since).await.is_err() {
            return End::Stopped;
        }
        End::Lost { delivered }
    }
}

type Connector = tokio_tungstenite::Connector;

/// The TLS client: rustls with ring, trusting `ca_file`'s certificates
/// or else the system's.
fn tls_connector(ca_file: Option<&Path>) -> Result<Connector, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("RIS Live CA file {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|e| format!("RIS Live CA file {}: not PEM: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("RIS Live CA file {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "RIS Live CA file {}: no certificate in it",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(format!(
                    "no usable CA certificate in the system store ({} errors): install ca-certificates",
                    found.errors.len()
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// The next wait: between half and all of `base`.
fn jitter(base: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    let frac = 0.5 + 0.5 * (r as f64 / u32::MAX as f64);
    base.mul_f64(frac)
}

/// Reads RIS Live into `tx` until `stop` turns true (or `tx` is
/// closed), reconnecting as long as it takes. Never returns an error:
/// every failure is logged, counted as a [`Message::Fault`] and retried.
pub async fn run(opts: RisLiveOptions, tx: mpsc::Sender<Message>, mut stop: watch::Receiver<bool>) {
    if opts.prefixes.is_empty() {
        tracing::warn!("RIS Live: no target prefix to subscribe to; not connecting");
        let _ = stop.wait_for(|s| *s).await;
        return;
    }
    let mut client = Client {
        dedupe: Dedupe::new(opts.dedupe_window, opts.dedupe_max),
        opts,
        tx,
        stop: stop.clone(),
        peers: HashSet::new(),
        up: None,
        lost_since: None,
        duplicates: 0,
        faults: HashMap::new(),
    };
    let tls = if client.opts.url.starts_with("wss:") {
        match tls_connector(client.opts.ca_file.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => {
                // Nothing to retry until the system changes: say so
                // once, as a fault and the feed down, and wait.
                tracing::error!(error = %e, "RIS Live: cannot set up TLS; not connecting");
                if client.fault("tls_setup").await.is_ok() && client.state(false).await.is_ok() {
                    let _ = stop.wait_for(|s| *s).await;
                }
                return;
            }
        }
    } else {
        None
    };
    let mut backoff = client.opts.backoff_min;
    loop {
        if *stop.borrow() {
            return;
        }
        match client.connection(&tls).await {
            End::Stopped => return,
            End::Lost { delivered } => {
                if delivered {
                    backoff = client.opts.backoff_min;
                }
            }
        }
        let wait = jitter(backoff);
        tracing::info!(wait_ms = wait.as_millis() as u64, faults = ?client.faults, duplicates = client.duplicates, "RIS Live: reconnecting after a pause");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(client.opts.backoff_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> RisMessage {
        match parse_frame(text) {
            Ok(Frame::Message(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    const UPDATE: &str = r#"{"type":"ris_message","data":{"timestamp":1764940000.25,"peer":"192.0.2.1","peer_asn":"3356","id":"21-1","host":"rrc00","type":"UPDATE","path":[3356,4837,[131279,65000]],"community":[[3356,2]],"origin":"IGP","announcements":[{"next_hop":"192.0.2.1","prefixes":["175.45.176.0/24","175.45.177.0/24"]}],"withdrawals":["175.45.178.0/24"]}}"#;

    #[test]
    fn update_with_a_set_withdrawals_first() {
        let m = msg(UPDATE);
        assert_eq!(m.at_ms, 1_764_940_000_250);
        assert_eq!(m.peer.router, "rrc00");
        assert_eq!(m.peer.asn, 3356);
        assert_eq!(m.peer.source, "ris-live");
        let Body::Update {
            withdrawn,
            announced,
        } = m.body
        else {
            panic!()
        };
        assert_eq!(withdrawn, vec!["175.45.178.0/24".parse::<IpNet>().unwrap()]);
        assert_eq!(announced.len(), 2);
        let r = &announced[0].1;
        assert_eq!(r.path.to_string(), "3356 4837 {131279,65000}");
        assert_eq!(r.path.origin(), None);
        assert_eq!(r.next_hop, Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn v6_next_hop_with_link_local_and_numeric_asn() {
        let m = msg(
            r#"{"type":"ris_message","data":{"timestamp":1764940001,"peer":"2001:db8::5","peer_asn":20485,"host":"rrc21","type":"UPDATE","path":[20485,4837,131279],"announcements":[{"next_hop":"2001:db8::5,fe80::1","prefixes":["2001:db8:100::/48"]}]}}"#,
        );
        assert_eq!(m.peer.asn, 20485);
        let Body::Update { announced, .. } = m.body else {
            panic!()
        };
        assert_eq!(
            announced[0].0,
            "2001:db8:100::/48".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            announced[0].1.next_hop,
            Some("2001:db8::5".parse().unwrap())
        );
        assert_eq!(announced[0].1.path.origin(), Some(131279));
    }

    #[test]
    fn withdrawal_only_without_path() {
        let m = msg(
            r#"{"type":"ris_message","data":{"timestamp":1764940002.5,"peer":"192.0.2.9","peer_asn":"64500","host":"rrc01","type":"UPDATE","withdrawals":["175.45.176.0/23"]}}"#,
        );
        let Body::Update {
            withdrawn,
            announced,
        } = m.body
        else {
            panic!()
        };
        assert_eq!(withdrawn.len(), 1);
        assert!(announced.is_empty());
    }

    #[test]
    fn peer_state() {
        let m = msg(
            r#"{"type":"ris_message","data":{"timestamp":1764940003,"peer":"192.0.2.1","peer_asn":"3356","host":"rrc00","type":"RIS_PEER_STATE","state":"down"}}"#,
        );
        assert_eq!(m.body, Body::PeerState("down".into()));
    }

    #[test]
    fn wrong_types_and_missing_fields_are_errors_not_panics() {
        let cases = [
            ("{", "invalid_json"),
            ("[1,2]", "bad_message"),
            (r#"{"type":"ris_mesage"}"#, "unknown_type"),
            (r#"{"type":"ris_message"}"#, "bad_message"),
            (
                r#"{"type":"ris_message","data":{"timestamp":"x"}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":1,"peer":"192.0.2.1","peer_asn":"AS3356","host":"rrc00","type":"UPDATE"}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":1,"peer":"192.0.2.1","peer_asn":4294967296,"host":"rrc00","type":"UPDATE"}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":1,"peer":"nope","peer_asn":"1","host":"rrc00","type":"UPDATE"}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":1,"peer":"192.0.2.1","peer_asn":"1","host":"rrc00","type":"UPDATE","path":"1 2"}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":1,"peer":"192.0.2.1","peer_asn":"1","host":"rrc00","type":"UPDATE","path":[1,[2,"x"]]}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":1,"peer":"192.0.2.1","peer_asn":"1","host":"rrc00","type":"UPDATE","announcements":[{"next_hop":"192.0.2.1","prefixes":["10.0.0.0/33"]}]}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":-5,"peer":"192.0.2.1","peer_asn":"1","host":"rrc00","type":"UPDATE"}}"#,
                "bad_message",
            ),
            (
                r#"{"type":"ris_message","data":{"timestamp":1,"peer":"192.0.2.1","peer_asn":"1","host":"rrc00","type":"WHAT"}}"#,
                "unknown_type",
            ),
        ];
        for (text, kind) in cases {
            match parse_frame(text) {
                Err(e) => assert_eq!(e.kind, kind, "{text}: {e}"),
                Ok(f) => panic!("{text} parsed as {f:?}"),
            }
        }
        assert_eq!(
            parse_frame(r#"{"type":"ris_error","data":{"message":"Invalid prefix"}}"#),
            Ok(Frame::Error("Invalid prefix".into()))
        );
        assert_eq!(
            parse_frame(r#"{"type":"pong","data":null}"#),
            Ok(Frame::Ignored("pong"))
        );
    }

    #[test]
    fn key_ignores_id_and_layout_but_not_content() {
        let a = msg(UPDATE).key;
        let b = msg(&UPDATE.replace(r#""id":"21-1","#, "")).key;
        let c = msg(&UPDATE.replace(r#""id":"21-1""#, r#""id":"99-7""#)).key;
        let reordered = r#"{"data":{"withdrawals":["175.45.178.0/24"],"type":"UPDATE","host":"rrc00","path":[3356,4837,[131279,65000]],"timestamp":1764940000.25,"peer_asn":"3356","peer":"192.0.2.1","origin":"IGP","community":[[3356,2]],"announcements":[{"prefixes":["175.45.176.0/24","175.45.177.0/24"],"next_hop":"192.0.2.1"}]},"type":"ris_message"}"#;
        let d = msg(reordered).key;
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        let e = msg(&UPDATE.replace("1764940000.25", "1764940000.26")).key;
        let f = msg(&UPDATE.replace("4837,", "20485,")).key;
        assert_ne!(a, e);
        assert_ne!(a, f);
    }

    #[test]
    fn dedupe_window_and_bound() {
        let t0 = Instant::now();
        let mut d = Dedupe::new(Duration::from_secs(10), 3);
        assert!(d.first([1; 16], t0));
        assert!(!d.first([1; 16], t0 + Duration::from_secs(5)));
        // Past the window: forgotten.
        assert!(d.first([1; 16], t0 + Duration::from_secs(11)));
        let mut d = Dedupe::new(Duration::from_secs(10), 2);
        assert!(d.first([1; 16], t0));
        assert!(d.first([2; 16], t0));
        assert!(d.first([3; 16], t0));
        assert!(d.len() <= 2);
        // The oldest went first.
        assert!(d.first([1; 16], t0));
    }

    #[test]
    fn coverage_is_equal_or_more_specific() {
        let t: Vec<IpNet> = vec![
            "175.45.176.0/22".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        for (p, want) in [
            ("175.45.176.0/22", true),
            ("175.45.179.0/24", true),
            ("175.45.176.0/21", false),
            ("175.45.180.0/24", false),
            ("2001:db8:1::/48", true),
            ("2001:db9::/48", false),
        ] {
            assert_eq!(covered(&t, &p.parse().unwrap()), want, "{p}");
        }
    }

    #[test]
    fn subscriptions_name_every_prefix_and_the_host() {
        let opts = RisLiveOptions {
            prefixes: vec!["175.45.176.0/22".parse().unwrap()],
            host: Some("rrc00".into()),
            ..Default::default()
        };
        let subs = subscriptions(&opts);
        assert_eq!(subs.len(), 2);
        let v: Value = serde_json::from_str(&subs[0]).unwrap();
        assert_eq!(v["type"], "ris_subscribe");
        assert_eq!(v["data"]["prefix"], "175.45.176.0/22");
        assert_eq!(v["data"]["moreSpecific"], true);
        assert_eq!(v["data"]["lessSpecific"], false);
        assert_eq!(v["data"]["type"], "UPDATE");
        assert_eq!(v["data"]["host"], "rrc00");
        assert_eq!(v["data"]["socketOptions"]["includeRaw"], false);
        let v: Value = serde_json::from_str(&subs[1]).unwrap();
        assert_eq!(v["data"]["type"], "RIS_PEER_STATE");
    }
}
