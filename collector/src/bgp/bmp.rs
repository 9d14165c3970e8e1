//! The BMP listener (RFC 7854, and RFC 9069 Loc-RIB): routers connect
//! and stream their BGP peers' route monitoring, peer up and down and
//! statistics; each becomes [`Message`]s for the model.
//!
//! Three layers. Framing ([`frame_len`], [`next_frame`]) reads the common
//! header and checks version and length before anything is allocated for
//! the body, so a claimed length never sizes a buffer and garbage is
//! recognised at once (the connection is then closed: resynchronising
//! on a byte stream would guess). A [`Session`] turns one whole message
//! into messages for the model — decoding with bgpkit-parser behind a
//! `catch_unwind` ([`decode`]), choosing the RIB view, keeping the
//! router's name and its peers that are up — with no I/O, so it is unit
//! tested on exact bytes, replayed over the corpus and fuzzed. [`serve`]
//! is the thin edge: accept, read, time out a router that stalls inside
//! a message, send.
//!
//! A router is named by its address, or by the sysName of its Initiation
//! message; a peer by the router, its address and AS, and its peer
//! distinguisher when not zero (written into the router part:
//! `r1 rd 65000:7`). Only one RIB view counts (pre-policy Adj-RIB-In by
//! default, what route collectors show): a router that sends pre- and
//! post-policy and Loc-RIB (GoBGP's `all`) would otherwise have each
//! route counted two or three times. The others are counted in
//! [`Counters`] and dropped.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgpkit_parser::models::{
    AsPath as BgpPath, AsPathSegment, AttributeValue, BgpMessage, BgpUpdateMessage, NetworkPrefix,
};
use bgpkit_parser::parser::bmp::messages::{
    BmpMessage, BmpMessageBody, BmpPeerType, BmpPerPeerHeader, InitiationTlvType, PeerDownReason,
    PerPeerFlags, TerminationTlvValue,
};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{AsPath, Change, Hop, Message, Peer, Route, Update};

/// The `source` of everything this module sends.
pub const SOURCE: &str = "bmp";
/// The common header: version (1), length (4), type (1).
pub const HEADER_LEN: usize = 6;
/// The default cap on one message's claimed length (RFC 8654 extended
/// BGP messages are 64 KiB; a peer-up carries two OPENs).
pub const MAX_MESSAGE_LEN: usize = 1 << 20;
/// The per-peer header after the common header (RFC 7854 4.2).
const PER_PEER_LEN: usize = 42;
/// How much the read buffer grows by at most per read: memory follows
/// the bytes that came, never a length a router claimed.
const READ_CHUNK: usize = 64 * 1024;

/// Which RIB's route monitoring counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Adj-RIB-In before the router's import policy: what each peer
    /// announced (what route collectors show).
    #[default]
    PrePolicy,
    /// Adj-RIB-In after import policy.
    PostPolicy,
    /// The router's own best routes (RFC 9069, peer type 3).
    LocRib,
}

/// What the listener and each router's session do.
#[derive(Debug, Clone)]
pub struct BmpOptions {
    pub view: View,
    /// A router that stops sending inside a message for this long is
    /// closed (between messages a router may be quiet for hours: TCP
    /// keepalive finds a dead one).
    pub stall_timeout: Duration,
    /// Connections at once; more are refused (and logged).
    pub max_routers: usize,
    /// The largest message length accepted; a longer claim closes the
    /// connection.
    pub max_message_len: usize,
    /// Keepalive probes start after this much silence.
    pub keepalive: Duration,
    /// Shared counts of what was read and dropped (for metrics).
    pub counters: Arc<Counters>,
}

impl Default for BmpOptions {
    fn default() -> Self {
        Self {
            view: View::default(),
            stall_timeout: Duration::from_secs(60),
            max_routers: 64,
            max_message_len: MAX_MESSAGE_LEN,
            keepalive: Duration::from_secs(60),
            counters: Arc::default(),
        }
    }
}

/// What the BMP source read and did not hand on, across routers. Faults
/// go to the model as [`Message::Fault`]; these are the normal drops.
#[derive(Debug, Default)]
pub struct Counters {
    /// Whole messages framed.
    pub messages: AtomicU64,
    /// Route monitoring of a RIB view not taken (or Adj-RIB-Out).
    pub other_view: AtomicU64,
    /// End-of-RIB markers.
    pub end_of_rib: AtomicU64,
    /// Route mirroring, message types this parser does not know, BGP
    /// messages other than UPDATE inside route monitoring.
    pub ignored: AtomicU64,
    /// Connections refused over `max_routers`.
    pub refused: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A byte stream that is not BMP: the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("BMP version {0}, expected 3 (not a BMP stream, or out of step)")]
    Version(u8),
    #[error("BMP message length {len} outside {HEADER_LEN}..={max}")]
    Length { len: u32, max: usize },
}

impl FrameError {
    /// The fault kind counted for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Version(_) => "version",
            Self::Length { .. } => "length",
        }
    }
}

/// The length of the message at the start of `buf`, `None` while its
/// header is not all in. The version is checked from the first byte, so
/// a stream of garbage fails before anything else is read.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(&version) = buf.first() else {
        return Ok(None);
    };
    if version != 3 {
        return Err(FrameError::Version(version));
    }
    let Some(len) = buf.get(1..5) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let ok = usize::try_from(len).is_ok_and(|l| (HEADER_LEN..=max).contains(&l));
    if !ok {
        return Err(FrameError::Length { len, max });
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    Ok(Some(len as usize))
}

/// Splits the first whole message off `buf`, `None` until it is all in.
pub fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    match frame_len(buf, max)? {
        Some(len) if buf.len() >= len => Ok(Some(buf.split_to(len).freeze())),
        _ => Ok(None),
    }
}

/// A whole message that bgpkit-parser could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not one whole BMP message: {0}")]
    Frame(String),
    #[error("{0}")]
    Parse(String),
    #[error("the BMP parser failed on this message")]
    Panic,
}

impl DecodeError {
    /// The fault kind counted for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Frame(_) => "framing",
            Self::Parse(_) => "decode",
            Self::Panic => "parser-panic",
        }
    }
}

/// Decodes one whole message (common header included, exactly its
/// length). A panic in the parser on hostile input becomes an error.
pub fn decode(frame: Bytes) -> Result<BmpMessage, DecodeError> {
    match frame_len(&frame, usize::MAX) {
        Ok(Some(len)) if len == frame.len() => {}
        Ok(_) => {
            return Err(DecodeError::Frame(format!(
                "{} bytes, not the length in the header",
                frame.len()
            )))
        }
        Err(e) => return Err(DecodeError::Frame(e.to_string())),
    }
    // Route monitoring holds exactly one BGP message (RFC 7854 4.6);
    // bgpkit-parser reads a cut one as far as it goes, and drops what it
    // cannot read without an error.
    if frame[5] == 0 {
        let at = HEADER_LEN + PER_PEER_LEN + 16;
        if let Some(len) = frame.get(at..at + 2) {
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let holds = frame.len() - HEADER_LEN - PER_PEER_LEN;
            if len != holds {
                return Err(DecodeError::Parse(format!(
                    "BGP message length {len}, but the route monitoring message holds {holds} bytes"
                )));
            }
        }
    }
    let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
        let mut data = frame;
        bgpkit_parser::parser::bmp::parse_bmp_msg(&mut data)
    }));
    match outcome {
        Ok(Ok(msg)) => Ok(msg),
        Ok(Err(e)) => Err(DecodeError::Parse(e.to_string())),
        Err(_) => Err(DecodeError::Panic),
    }
}

/// Router names in use by live connections: two routers never share a
/// name (one's close would take the other's peers down).
#[derive(Debug, Default)]
pub struct Names(Mutex<HashSet<String>>);

impl Names {
    /// Takes `want`, or `want (addr)` when another connection has it.
    fn claim(&self, want: &str, addr: SocketAddr) -> String {
        let mut names = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let name = if names.contains(want) {
            if want == addr.ip().to_string() {
                addr.to_string()
            } else {
                format!("{want} ({addr})")
            }
        } else {
            want.to_string()
        };
        names.insert(name.clone());
        name
    }

    fn release(&self, name: &str) {
        let mut names = self.0.lock().unwrap_or_else(|e| e.into_inner());
        names.remove(name);
    }
}

/// Whether the connection goes on after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The router sent Termination.
    Close,
}

/// (peer address, peer AS, peer distinguisher).
type PeerKey = (IpAddr, u32, u64);

/// One router's connection, without the socket: its name, the peers it
/// reported up, the stream offset (for logs).
#[derive(Debug)]
pub struct Session {
    addr: SocketAddr,
    router: String,
    view: View,
    started: bool,
    peers: BTreeMap<PeerKey, Peer>,
    offset: u64,
    counters: Arc<Counters>,
    names: Arc<Names>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.started {
            self.names.release(&self.router);
        }
    }
}

impl Session {
    /// A router connected from `addr`.
    pub fn new(addr: SocketAddr, opts: &BmpOptions, names: Arc<Names>) -> Self {
        Self {
            addr,
            router: addr.ip().to_string(),
            view: opts.view,
            started: false,
            peers: BTreeMap::new(),
            offset: 0,
            counters: opts.counters.clone(),
            names,
        }
    }

    /// The router's name (its address, or its sysName).
    pub fn router(&self) -> &str {
        &self.router
    }

    /// Stream bytes handled so far: the offset of the next message.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Handles one whole message from [`next_frame`]. The router is
    /// announced up ([`Message::SourceState`]) with its first message,
    /// once an Initiation (which RFC 7854 puts first) may have named it.
    pub fn handle(&mut self, frame: Bytes, now_ms: u64, out: &mut Vec<Message>) -> Flow {
        let at = self.offset;
        self.offset += frame.len() as u64;
        Counters::bump(&self.counters.messages);
        // Types after 6 are ignored (RFC 7854 4.1), not faults.
        if frame.get(5).is_some_and(|&t| t > 6) {
            Counters::bump(&self.counters.ignored);
            tracing::debug!(router = %self.router, offset = at, msg_type = frame[5], "BMP message type ignored");
            self.start(now_ms, out);
            return Flow::Continue;
        }
        let stamp = peer_stamp(&frame).filter(|&t| t != 0).unwrap_or(now_ms);
        let msg = match decode(frame) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(router = %self.router, offset = at, error = %e, "BMP message does not decode");
                self.start(now_ms, out);
                out.push(Message::Fault {
                    source: SOURCE.to_string(),
                    kind: e.kind(),
                });
                return Flow::Continue;
            }
        };
        if let BmpMessageBody::InitiationMessage(init) = &msg.message_body {
            let sys_name = init
                .tlvs
                .iter()
                .find(|t| t.info_type == InitiationTlvType::SysName)
                .map(|t| t.info.trim())
                .filter(|n| !n.is_empty());
            if let Some(name) = sys_name {
                self.rename(name);
            }
        }
        self.start(now_ms, out);
        let hdr = msg.per_peer_header;
        match (msg.message_body, hdr) {
            (BmpMessageBody::RouteMonitoring(rm), Some(hdr)) => {
                if !self.takes_routes(&hdr) {
                    Counters::bump(&self.counters.other_view);
                    return Flow::Continue;
                }
                match rm.bgp_message {
                    BgpMessage::Update(update) => self.update(&hdr, update, stamp, out),
                    _ => Counters::bump(&self.counters.ignored),
                }
            }
            (BmpMessageBody::PeerUpNotification(_), Some(hdr)) => {
                if self.takes_peer(&hdr) {
                    let key = peer_key(&hdr);
                    let peer = self.peer(&hdr);
                    if self.peers.insert(key, peer.clone()).is_some() {
                        // Up again without a down: the session was reset,
                        // what the peer had is gone and comes again.
                        out.push(Message::PeerDown {
                            peer: peer.clone(),
                            at_ms: stamp,
                            reason: "peer up again without a peer down".to_string(),
                        });
                    }
                    out.push(Message::PeerUp { peer, at_ms: stamp });
                }
            }
            (BmpMessageBody::PeerDownNotification(down), Some(hdr)) => {
                if self.takes_peer(&hdr) {
                    let peer = self
                        .peers
                        .remove(&peer_key(&hdr))
                        .unwrap_or_else(|| self.peer(&hdr));
                    out.push(Message::PeerDown {
                        peer,
                        at_ms: stamp,
                        reason: down_reason(down.reason).to_string(),
                    });
                }
            }
            (BmpMessageBody::StatsReport(_), _) => out.push(Message::Stats {
                source: SOURCE.to_string(),
                router: self.router.clone(),
            }),
            (BmpMessageBody::InitiationMessage(_), _) => {}
            (BmpMessageBody::TerminationMessage(term), _) => {
                let reason = term.tlvs.iter().find_map(|t| match &t.info_value {
                    TerminationTlvValue::Reason(r) => Some(format!("{r:?}")),
                    TerminationTlvValue::String(_) => None,
                });
                tracing::info!(router = %self.router, reason = reason.as_deref().unwrap_or("none given"), "BMP router terminated its session");
                return Flow::Close;
            }
            (BmpMessageBody::RouteMirroring(_), _) => Counters::bump(&self.counters.ignored),
            // bgpkit gives every peer message its per-peer header.
            (_, None) => Counters::bump(&self.counters.ignored),
        }
        Flow::Continue
    }

    /// The connection ended (`reason`): every peer still up goes down,
    /// then the router.
    pub fn close(&mut self, reason: &str, now_ms: u64, out: &mut Vec<Message>) {
        for (_, peer) in std::mem::take(&mut self.peers) {
            out.push(Message::PeerDown {
                peer,
                at_ms: now_ms,
                reason: reason.to_string(),
            });
        }
        if self.started {
            out.push(Message::SourceState {
                source: SOURCE.to_string(),
                router: Some(self.router.clone()),
                up: false,
                at_ms: now_ms,
            });
        }
    }

    /// The router's name is final (and claimed) from its first message.
    fn start(&mut self, now_ms: u64, out: &mut Vec<Message>) {
        if !self.started {
            self.started = true;
            self.router = self.names.claim(&self.router, self.addr);
            out.push(Message::SourceState {
                source: SOURCE.to_string(),
                router: Some(self.router.clone()),
                up: true,
                at_ms: now_ms,
            });
        }
    }

    fn rename(&mut self, name: &str) {
        // A name longer than a label should be is cut (by characters).
        let name: String = name.chars().take(255).collect();
        if name == self.router {
            return;
        }
        if self.started {
            // The model already knows the router by its first name.
            tracing::warn!(router = %self.router, sys_name = %name, "BMP Initiation after the first message: name kept");
            return;
        }
        self.router = name;
        tracing::info!(addr = %self.addr, router = %self.router, "BMP router named by its sysName");
    }

    /// Route monitoring of the view taken: pre- or post-policy
    /// Adj-RIB-In of a peer, or Loc-RIB.
    fn takes_routes(&self, hdr: &BmpPerPeerHeader) -> bool {
        match (self.view, hdr.peer_flags) {
            (View::LocRib, _) => hdr.peer_type == BmpPeerType::LocalRib,
            (_, PerPeerFlags::LocalRibPeerFlags(_)) => false,
            (view, PerPeerFlags::PeerFlags(f)) => {
                hdr.peer_type != BmpPeerType::LocalRib
                    && !f.is_adj_rib_out()
                    && f.is_post_policy() == (view == View::PostPolicy)
            }
        }
    }

    /// Peer up and down of the peers of the view taken: the router's BGP
    /// peers, or its Loc-RIB instances.
    fn takes_peer(&self, hdr: &BmpPerPeerHeader) -> bool {
        (hdr.peer_type == BmpPeerType::LocalRib) == (self.view == View::LocRib)
    }

    fn peer(&self, hdr: &BmpPerPeerHeader) -> Peer {
        let router = if hdr.peer_distinguisher == 0 {
            self.router.clone()
        } else {
            format!(
                "{} rd {}",
                self.router,
                distinguisher(hdr.peer_distinguisher)
            )
        };
        Peer {
            source: SOURCE.to_string(),
            router,
            addr: hdr.peer_ip,
            asn: hdr.peer_asn.to_u32(),
        }
    }

    fn update(
        &mut self,
        hdr: &BmpPerPeerHeader,
        update: BgpUpdateMessage,
        at_ms: u64,
        out: &mut Vec<Message>,
    ) {
        if update.is_end_of_rib() {
            Counters::bump(&self.counters.end_of_rib);
            return;
        }
        let key = peer_key(hdr);
        let peer = match self.peers.get(&key) {
            Some(p) => p.clone(),
            None => {
                // Routes before (or without) a peer up: the peer is up
                // now, and goes down with the connection.
                let p = self.peer(hdr);
                self.peers.insert(key, p.clone());
                p
            }
        };
        let mut as_path = None;
        let mut as4_path = None;
        let mut next_hop = None;
        let mut reach = None;
        let mut unreach = None;
        for attr in update.attributes.into_attributes_iter() {
            match attr.value {
                AttributeValue::AsPath {
                    path,
                    is_as4: false,
                } => as_path = Some(path),
                AttributeValue::AsPath { path, is_as4: true } => as4_path = Some(path),
                AttributeValue::NextHop(ip) => next_hop = Some(ip),
                AttributeValue::MpReachNlri(n) => reach = Some(n),
                AttributeValue::MpUnreachNlri(n) => unreach = Some(n),
                _ => {}
            }
        }
        let withdrawn = update
            .withdrawn_prefixes
            .iter()
            .chain(unreach.iter().flat_map(|n| n.prefixes.iter()));
        for prefix in withdrawn {
            out.push(Message::Update(Update {
                at_ms,
                peer: peer.clone(),
                prefix: prefix.prefix,
                change: Change::Withdraw,
            }));
        }
        if update.announced_prefixes.is_empty()
            && reach.as_ref().is_none_or(|n| n.prefixes.is_empty())
        {
            return;
        }
        if as_path.is_none() {
            // AS_PATH is mandatory with NLRI; bgpkit-parser leaves out
            // attributes it cannot read rather than fail, so this is
            // what a broken attribute list looks like. RFC 7606: treat
            // as withdraw (a route with an empty path would be the
            // peer's own).
            tracing::warn!(router = %self.router, peer = %peer.name(), "BMP route monitoring without a readable AS_PATH: its prefixes treated as withdrawn");
            out.push(fault("no-as-path"));
            let reach = reach.iter().flat_map(|n| n.prefixes.iter());
            for prefix in update.announced_prefixes.iter().chain(reach) {
                out.push(Message::Update(Update {
                    at_ms,
                    peer: peer.clone(),
                    prefix: prefix.prefix,
                    change: Change::Withdraw,
                }));
            }
            return;
        }
        let path = match (as_path, as4_path) {
            // Confederation segments go first: AS4_PATH has none (RFC
            // 6793 4.2.2), and bgpkit's merge pairs segments in order.
            (Some(mut p), Some(p4)) => {
                p.segments.retain(|s| !s.is_confed());
                convert_path(&BgpPath::merge_aspath_as4path(&p, &p4))
            }
            (Some(p), None) | (None, Some(p)) => convert_path(&p),
            (None, None) => AsPath::default(),
        };
        let mut announce = |prefixes: &[NetworkPrefix], next_hop: Option<IpAddr>| {
            for prefix in prefixes {
                out.push(Message::Update(Update {
                    at_ms,
                    peer: peer.clone(),
                    prefix: prefix.prefix,
                    change: Change::Announce {
                        route: Route {
                            path: path.clone(),
                            next_hop,
                        },
                    },
                }));
            }
        };
        announce(&update.announced_prefixes, next_hop);
        if let Some(n) = &reach {
            announce(&n.prefixes, n.next_hop.map(|h| h.addr()));
        }
    }
}

fn peer_key(hdr: &BmpPerPeerHeader) -> PeerKey {
    (hdr.peer_ip, hdr.peer_asn.to_u32(), hdr.peer_distinguisher)
}

/// The per-peer header's timestamp in Unix ms, read from the bytes (the
/// parser's is a float); `None` for messages without that header.
fn peer_stamp(frame: &[u8]) -> Option<u64> {
    if !matches!(frame.get(5), Some(0..=3 | 6)) {
        return None;
    }
    let ts = frame.get(HEADER_LEN + 34..HEADER_LEN + PER_PEER_LEN)?;
    let secs = u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]]);
    let micros = u32::from_be_bytes([ts[4], ts[5], ts[6], ts[7]]);
    Some(u64::from(secs) * 1000 + u64::from(micros) / 1000)
}

/// AS_SEQUENCE hops and AS_SET sets; confederation segments left out.
fn convert_path(path: &BgpPath) -> AsPath {
    let mut hops = Vec::with_capacity(path.route_len());
    for seg in &path.segments {
        match seg {
            AsPathSegment::AsSequence(asns) => {
                hops.extend(asns.iter().map(|a| Hop::As(a.to_u32())))
            }
            AsPathSegment::AsSet(asns) if !asns.is_empty() => {
                hops.push(Hop::Set(asns.iter().map(|a| a.to_u32()).collect()));
            }
            _ => {}
        }
    }
    AsPath(hops)
}

/// A route distinguisher as written in configs (RFC 4364 4.2).
fn distinguisher(rd: u64) -> String {
    let b = rd.to_be_bytes();
    match u16::from_be_bytes([b[0], b[1]]) {
        0 => format!(
            "{}:{}",
            u16::from_be_bytes([b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]])
        ),
        1 => format!(
            "{}.{}.{}.{}:{}",
            b[2],
            b[3],
            b[4],
            b[5],
            u16::from_be_bytes([b[6], b[7]])
        ),
        2 => format!(
            "{}:{}",
            u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]])
        ),
        _ => format!("{rd:#018x}"),
    }
}

fn down_reason(reason: PeerDownReason) -> &'static str {
    match reason {
        PeerDownReason::LocalSystemClosedNotificationPduFollows => {
            "the router closed the session (notification sent)"
        }
        PeerDownReason::LocalSystemClosedFsmEvenFollows => "the router closed the session",
        PeerDownReason::RemoteSystemClosedNotificationPduFollows => {
            "the peer closed the session (notification received)"
        }
        PeerDownReason::RemoteSystemsClosedNoData => "the peer closed the session",
        PeerDownReason::PeerDeConfigured => "the peer was de-configured",
        PeerDownReason::LocalSystemClosedTlvDataFollows => "the router closed the session (TLV)",
        PeerDownReason::Reserved => "peer down (reason 0)",
    }
}

/// Reads a captured stream as one router's connection would, without
/// a socket (the corpus, the fuzz target, the benchmark): every message
/// out, the close included, stamped `now_ms` where a connection stamps
/// the wall clock. Stops at broken framing or a Termination, as the
/// connection does.
pub fn replay(stream: &[u8], opts: &BmpOptions, now_ms: u64) -> Vec<Message> {
    let mut session = Session::new(([127, 0, 0, 1], 0).into(), opts, Arc::default());
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::new();
    let reason = loop {
        match next_frame(&mut buf, opts.max_message_len) {
            Ok(Some(frame)) => {
                if session.handle(frame, now_ms, &mut out) == Flow::Close {
                    break "the router terminated its BMP session";
                }
            }
            Ok(None) if buf.is_empty() => break "BMP connection closed",
            Ok(None) => {
                out.push(fault("truncated"));
                break "BMP connection closed inside a message";
            }
            Err(e) => {
                out.push(fault(e.kind()));
                break "BMP stream broken";
            }
        }
    };
    session.close(reason, now_ms, &mut out);
    out
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Accepts routers on `listener` until `stop` turns true (or its sender
/// goes) or `tx`'s receiver is dropped; each router is its own task, at
/// most `opts.max_routers` at once. Returns once every router's task
/// has ended.
pub async fn serve(
    listener: TcpListener,
    tx: mpsc::Sender<Message>,
    opts: BmpOptions,
    mut stop: watch::Receiver<bool>,
) {
    let names = Arc::new(Names::default());
    let mut routers: JoinSet<()> = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, view = ?opts.view, "BMP listening");
    }
    loop {
        tokio::select! {
            // (The guard wait_for gives is dropped at once: it is not Send.)
            () = async { drop(stop.wait_for(|s| *s).await) } => break,
            () = tx.closed() => {
                tracing::info!("BMP: the model is gone, stopping");
                break;
            }
            Some(ended) = routers.join_next(), if !routers.is_empty() => {
                if let Err(e) = ended {
                    if e.is_panic() {
                        tracing::error!(error = %e, "BMP router task failed");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    // Routers gone since the last turn no longer count.
                    while routers.try_join_next().is_some() {}
                    if routers.len() >= opts.max_routers {
                        Counters::bump(&opts.counters.refused);
                        tracing::warn!(%addr, max = opts.max_routers, "BMP router refused: too many routers connected (raise max_routers?)");
                        drop(stream);
                        continue;
                    }
                    if let Err(e) = keepalive(&stream, opts.keepalive) {
                        tracing::warn!(%addr, error = %e, "BMP: cannot set TCP keepalive");
                    }
                    let task = router(stream, addr, tx.clone(), opts.clone(), names.clone());
                    routers.spawn(tracing::Instrument::instrument(
                        task,
                        tracing::info_span!("bmp", %addr),
                    ));
                }
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "BMP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    routers.shutdown().await;
}

fn keepalive(stream: &TcpStream, idle: Duration) -> std::io::Result<()> {
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    socket2::SockRef::from(stream).set_tcp_keepalive(&ka)
}

/// One router's connection: read, frame, handle, send; at the end its
/// peers and the router go down.
async fn router(
    mut stream: TcpStream,
    addr: SocketAddr,
    tx: mpsc::Sender<Message>,
    opts: BmpOptions,
    names: Arc<Names>,
) {
    tracing::info!("BMP router connected");
    let mut session = Session::new(addr, &opts, names);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Vec::new();
    let reason = 'conn: loop {
        loop {
            match next_frame(&mut buf, opts.max_message_len) {
                Ok(Some(frame)) => {
                    let flow = session.handle(frame, now_ms(), &mut out);
                    if !send_all(&tx, &mut out).await {
                        return;
                    }
                    if flow == Flow::Close {
                        break 'conn "the router terminated its BMP session".to_string();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(router = %session.router(), offset = session.offset(), error = %e, "BMP framing broken: closing the connection");
                    out.push(fault(e.kind()));
                    break 'conn format!("BMP stream broken: {e}");
                }
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = if buf.is_empty() {
            stream.read_buf(&mut buf).await
        } else {
            match tokio::time::timeout(opts.stall_timeout, stream.read_buf(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::warn!(router = %session.router(), offset = session.offset(), buffered = buf.len(), "BMP router stalled inside a message: closing the connection");
                    out.push(fault("stalled"));
                    break format!(
                        "BMP router stalled inside a message for {:?}",
                        opts.stall_timeout
                    );
                }
            }
        };
        match read {
            Ok(0) if buf.is_empty() => break "BMP connection closed".to_string(),
            Ok(0) => {
                tracing::warn!(router = %session.router(), offset = session.offset(), buffered = buf.len(), "BMP connection closed inside a message");
                out.push(fault("truncated"));
                break "BMP connection closed inside a message".to_string();
            }
            Ok(_) => {}
            Err(e) => break format!("BMP connection lost: {e}"),
        }
    };
    tracing::info!(router = %session.router(), %reason, "BMP router gone");
    session.close(&reason, now_ms(), &mut out);
    send_all(&tx, &mut out).await;
}

fn fault(kind: &'static str) -> Message {
    Message::Fault {
        source: SOURCE.to_string(),
        kind,
    }
}

/// Sends and empties `out`; `false` once the receiver is gone.
async fn send_all(tx: &mpsc::Sender<Message>, out: &mut Vec<Message>) -> bool {
    for msg in out.drain(..) {
        if tx.send(msg).await.is_err() {
            return false;
        }
    }
    true
}

/// Builders of BMP messages byte by byte, for the tests, the benchmark
/// and the fuzz corpus: enough of RFC 7854 and RFC 4271 to write what
/// routers send, not an encoder for the collector (which never sends).
#[doc(hidden)]
pub mod build {
    use std::net::IpAddr;

    use ipnet::IpNet;

    /// The common header before `body`.
    pub fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![3];
        m.extend_from_slice(&(super::HEADER_LEN as u32 + body.len() as u32).to_be_bytes());
        m.push(msg_type);
        m.extend_from_slice(body);
        m
    }

    /// A per-peer header's fields.
    #[derive(Debug, Clone)]
    pub struct PeerHeader {
        pub peer_type: u8,
        pub flags: u8,
        pub distinguisher: u64,
        pub addr: IpAddr,
        pub asn: u32,
        pub bgp_id: [u8; 4],
        pub secs: u32,
        pub micros: u32,
    }

    impl PeerHeader {
        /// A global peer at `addr` in `asn`, pre-policy, 4-octet ASes.
        pub fn new(addr: &str, asn: u32) -> Self {
            Self {
                peer_type: 0,
                flags: 0,
                distinguisher: 0,
                addr: addr.parse().expect("an address"),
                asn,
                bgp_id: [192, 0, 2, 1],
                secs: 1_700_000_000,
                micros: 250_000,
            }
        }

        /// Post-policy (the L flag).
        pub fn post_policy(mut self) -> Self {
            self.flags |= 0x40;
            self
        }

        /// The BGP messages use 2-octet ASes (the A flag).
        pub fn two_octet(mut self) -> Self {
            self.flags |= 0x20;
            self
        }

        /// The router's Loc-RIB (RFC 9069): peer type 3, no address.
        pub fn loc_rib(asn: u32) -> Self {
            Self {
                peer_type: 3,
                ..Self::new("0.0.0.0", asn)
            }
        }

        pub fn bytes(&self) -> Vec<u8> {
            let mut h = vec![self.peer_type];
            let mut flags = self.flags;
            let mut addr = [0u8; 16];
            match self.addr {
                IpAddr::V4(a) => addr[12..].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => {
                    flags |= 0x80;
                    addr = a.octets();
                }
            }
            if self.peer_type == 3 {
                flags &= 0x80;
            }
            h.push(flags);
            h.extend_from_slice(&self.distinguisher.to_be_bytes());
            h.extend_from_slice(&addr);
            h.extend_from_slice(&self.asn.to_be_bytes());
            h.extend_from_slice(&self.bgp_id);
            h.extend_from_slice(&self.secs.to_be_bytes());
            h.extend_from_slice(&self.micros.to_be_bytes());
            h
        }
    }

    /// A BGP message: marker, length, type.
    pub fn bgp(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
        m.push(msg_type);
        m.extend_from_slice(body);
        m
    }

    /// A prefix as NLRI: length, then the bytes it covers.
    pub fn prefix(p: &str) -> Vec<u8> {
        let net: IpNet = p.parse().expect("a prefix");
        let bits = net.prefix_len();
        let bytes = match net.addr() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut v = vec![bits];
        v.extend_from_slice(&bytes[..usize::from(bits).div_ceil(8)]);
        v
    }

    fn prefixes(ps: &[&str]) -> Vec<u8> {
        ps.iter().flat_map(|p| prefix(p)).collect()
    }

    /// A path attribute (extended length when the value needs it).
    pub fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::with_capacity(value.len() + 4);
        if value.len() > 255 {
            a.extend_from_slice(&[flags | 0x10, code]);
            a.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            a.extend_from_slice(&[flags, code, value.len() as u8]);
        }
        a.extend_from_slice(value);
        a
    }

    /// ORIGIN IGP.
    pub fn origin() -> Vec<u8> {
        attr(0x40, 1, &[0])
    }

    /// AS_PATH of (segment type, ASes): 1 set, 2 sequence, 3 confed
    /// sequence, 4 confed set; 2- or 4-octet ASes.
    pub fn as_path(segments: &[(u8, &[u32])], four_octet: bool) -> Vec<u8> {
        attr(0x40, 2, &segments_bytes(segments, four_octet))
    }

    /// AS4_PATH (optional transitive, 4-octet ASes).
    pub fn as4_path(segments: &[(u8, &[u32])]) -> Vec<u8> {
        attr(0xc0, 17, &segments_bytes(segments, true))
    }

    fn segments_bytes(segments: &[(u8, &[u32])], four_octet: bool) -> Vec<u8> {
        let mut v = Vec::new();
        for (ty, asns) in segments {
            v.push(*ty);
            v.push(asns.len() as u8);
            for a in *asns {
                if four_octet {
                    v.extend_from_slice(&a.to_be_bytes());
                } else {
                    v.extend_from_slice(&(*a as u16).to_be_bytes());
                }
            }
        }
        v
    }

    pub fn next_hop(ip: &str) -> Vec<u8> {
        let ip: std::net::Ipv4Addr = ip.parse().expect("an IPv4 address");
        attr(0x40, 3, &ip.octets())
    }

    pub fn med(v: u32) -> Vec<u8> {
        attr(0x80, 4, &v.to_be_bytes())
    }

    pub fn communities(cs: &[(u16, u16)]) -> Vec<u8> {
        let v: Vec<u8> = cs
            .iter()
            .flat_map(|(a, b)| [a.to_be_bytes(), b.to_be_bytes()].concat())
            .collect();
        attr(0xc0, 8, &v)
    }

    /// MP_REACH_NLRI for IPv6 unicast.
    pub fn mp_reach(next_hop: &str, ps: &[&str]) -> Vec<u8> {
        let nh: std::net::Ipv6Addr = next_hop.parse().expect("an IPv6 address");
        let mut v = vec![0, 2, 1, 16];
        v.extend_from_slice(&nh.octets());
        v.push(0);
        v.extend_from_slice(&prefixes(ps));
        attr(0x80, 14, &v)
    }

    /// MP_UNREACH_NLRI for IPv6 unicast.
    pub fn mp_unreach(ps: &[&str]) -> Vec<u8> {
        let mut v = vec![0, 2, 1];
        v.extend_from_slice(&prefixes(ps));
        attr(0x80, 15, &v)
    }

    /// A BGP UPDATE.
    pub fn update(withdrawn: &[&str], attrs: &[Vec<u8>], nlri: &[&str]) -> Vec<u8> {
        let w = prefixes(withdrawn);
        let a: Vec<u8> = attrs.concat();
        let mut body = Vec::new();
        body.extend_from_slice(&(w.len() as u16).to_be_bytes());
        body.extend_from_slice(&w);
        body.extend_from_slice(&(a.len() as u16).to_be_bytes());
        body.extend_from_slice(&a);
        body.extend_from_slice(&prefixes(nlri));
        bgp(2, &body)
    }

    /// A typical IPv4 announcement: a 5-hop path, next hop, MED, two
    /// communities.
    pub fn typical_update(nlri: &[&str]) -> Vec<u8> {
        update(
            &[],
            &[
                origin(),
                as_path(&[(2, &[64500, 3356, 1299, 4837, 131279])], true),
                next_hop("192.0.2.1"),
                med(10),
                communities(&[(3356, 2), (64500, 100)]),
            ],
            nlri,
        )
    }

    pub fn route_monitoring(peer: &PeerHeader, bgp_update: &[u8]) -> Vec<u8> {
        let mut body = peer.bytes();
        body.extend_from_slice(bgp_update);
        message(0, &body)
    }

    /// An OPEN with the 4-octet AS capability.
    pub fn open(asn: u32, bgp_id: [u8; 4]) -> Vec<u8> {
        let my_as = u16::try_from(asn).unwrap_or(23456);
        let mut b = vec![4];
        b.extend_from_slice(&my_as.to_be_bytes());
        b.extend_from_slice(&90u16.to_be_bytes());
        b.extend_from_slice(&bgp_id);
        // Optional parameter 2 (capabilities): capability 65, 4 octets.
        let mut cap = vec![2, 6, 65, 4];
        cap.extend_from_slice(&asn.to_be_bytes());
        b.push(cap.len() as u8);
        b.extend_from_slice(&cap);
        bgp(1, &b)
    }

    /// Peer up: local address and ports, the OPENs sent and received.
    pub fn peer_up(peer: &PeerHeader, local_asn: u32) -> Vec<u8> {
        let mut body = peer.bytes();
        let mut local = [0u8; 16];
        local[12..].copy_from_slice(&[192, 0, 2, 254]);
        if peer.addr.is_ipv6() {
            local = "2001:db8::fe"
                .parse::<std::net::Ipv6Addr>()
                .expect("v6")
                .octets();
        }
        body.extend_from_slice(&local);
        body.extend_from_slice(&179u16.to_be_bytes());
        body.extend_from_slice(&40000u16.to_be_bytes());
        body.extend_from_slice(&open(local_asn, [192, 0, 2, 254]));
        body.extend_from_slice(&open(peer.asn, peer.bgp_id));
        message(3, &body)
    }

    /// Peer down with `reason` (2: FSM event follows).
    pub fn peer_down(peer: &PeerHeader, reason: u8) -> Vec<u8> {
        let mut body = peer.bytes();
        body.push(reason);
        if reason == 2 {
            body.extend_from_slice(&[0, 0]);
        }
        message(2, &body)
    }

    /// A statistics report of 32-bit counters.
    pub fn stats(peer: &PeerHeader, counters: &[(u16, u32)]) -> Vec<u8> {
        let mut body = peer.bytes();
        body.extend_from_slice(&(counters.len() as u32).to_be_bytes());
        for (ty, v) in counters {
            body.extend_from_slice(&ty.to_be_bytes());
            body.extend_from_slice(&4u16.to_be_bytes());
            body.extend_from_slice(&v.to_be_bytes());
        }
        message(1, &body)
    }

    /// Initiation with sysDescr and, when given, sysName.
    pub fn initiation(sys_name: Option<&str>) -> Vec<u8> {
        let mut body = Vec::new();
        let mut tlv = |ty: u16, v: &[u8]| {
            body.extend_from_slice(&ty.to_be_bytes());
            body.extend_from_slice(&(v.len() as u16).to_be_bytes());
            body.extend_from_slice(v);
        };
        tlv(1, b"test router");
        if let Some(n) = sys_name {
            tlv(2, n.as_bytes());
        }
        message(4, &body)
    }

    /// Termination with a reason (0: administratively closed).
    pub fn termination(reason: u16) -> Vec<u8> {
        let mut body = vec![0, 1, 0, 2];
        body.extend_from_slice(&reason.to_be_bytes());
        message(5, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::build::{self, PeerHeader};
    use super::*;

    const T0: u64 = 1_700_000_000_250;
    const NOW: u64 = 1_800_000_000_000;

    fn session(view: View) -> Session {
        let opts = BmpOptions {
            view,
            ..BmpOptions::default()
        };
        Session::new("192.0.2.9:40000".parse().unwrap(), &opts, Arc::default())
    }

    /// Feeds whole messages; the messages out, the router's up first.
    fn run(s: &mut Session, msgs: &[Vec<u8>]) -> Vec<Message> {
        let mut out = Vec::new();
        for m in msgs {
            s.handle(Bytes::copy_from_slice(m), NOW, &mut out);
        }
        out
    }

    fn peer(router: &str, addr: &str, asn: u32) -> Peer {
        Peer {
            source: "bmp".into(),
            router: router.into(),
            addr: addr.parse().unwrap(),
            asn,
        }
    }

    fn announce(at_ms: u64, peer: &Peer, prefix: &str, path: AsPath, nh: &str) -> Message {
        Message::Update(Update {
            at_ms,
            peer: peer.clone(),
            prefix: prefix.parse().unwrap(),
            change: Change::Announce {
                route: Route {
                    path,
                    next_hop: Some(nh.parse().unwrap()),
                },
            },
        })
    }

    fn withdraw(at_ms: u64, peer: &Peer, prefix: &str) -> Message {
        Message::Update(Update {
            at_ms,
            peer: peer.clone(),
            prefix: prefix.parse().unwrap(),
            change: Change::Withdraw,
        })
    }

    fn up(router: &str, up: bool, at_ms: u64) -> Message {
        Message::SourceState {
            source: "bmp".into(),
            router: Some(router.into()),
            up,
            at_ms,
        }
    }

    #[test]
    fn framing_checks_version_and_length_before_the_body() {
        let m = build::initiation(Some("r1"));
        assert_eq!(frame_len(&m[..1], MAX_MESSAGE_LEN), Ok(None));
        assert_eq!(frame_len(&m[..5], MAX_MESSAGE_LEN), Ok(None));
        assert_eq!(frame_len(&m, MAX_MESSAGE_LEN), Ok(Some(m.len())));
        assert_eq!(
            frame_len(b"G", MAX_MESSAGE_LEN),
            Err(FrameError::Version(b'G'))
        );
        assert_eq!(
            frame_len(&[3, 0, 0, 0, 5], MAX_MESSAGE_LEN),
            Err(FrameError::Length {
                len: 5,
                max: MAX_MESSAGE_LEN
            })
        );
        assert_eq!(
            frame_len(&[3, 0xff, 0xff, 0xff, 0xff], MAX_MESSAGE_LEN),
            Err(FrameError::Length {
                len: u32::MAX,
                max: MAX_MESSAGE_LEN
            })
        );
        // Two messages and a piece of a third.
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&m);
        buf.extend_from_slice(&m);
        buf.extend_from_slice(&m[..3]);
        assert_eq!(
            next_frame(&mut buf, MAX_MESSAGE_LEN).unwrap().unwrap(),
            &m[..]
        );
        assert_eq!(
            next_frame(&mut buf, MAX_MESSAGE_LEN).unwrap().unwrap(),
            &m[..]
        );
        assert_eq!(next_frame(&mut buf, MAX_MESSAGE_LEN), Ok(None));
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn initiation_names_the_router_and_peer_up_down_follow() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 3356);
        let out = run(
            &mut s,
            &[
                build::initiation(Some("r1.example")),
                build::peer_up(&p, 64500),
                build::peer_down(&p, 2),
            ],
        );
        let want = peer("r1.example", "198.51.100.1", 3356);
        assert_eq!(
            out,
            vec![
                up("r1.example", true, NOW),
                Message::PeerUp {
                    peer: want.clone(),
                    at_ms: T0
                },
                Message::PeerDown {
                    peer: want,
                    at_ms: T0,
                    reason: "the router closed the session".into()
                },
            ]
        );
    }

    #[test]
    fn without_sys_name_the_router_is_its_address() {
        let mut s = session(View::PrePolicy);
        let out = run(&mut s, &[build::initiation(None)]);
        assert_eq!(out, vec![up("192.0.2.9", true, NOW)]);
        let mut out = Vec::new();
        s.close("gone", NOW + 1, &mut out);
        assert_eq!(out, vec![up("192.0.2.9", false, NOW + 1)]);
    }

    #[test]
    fn ipv4_update_with_communities_gives_one_update_per_prefix() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 64500);
        let out = run(
            &mut s,
            &[build::route_monitoring(
                &p,
                &build::typical_update(&["203.0.113.0/24", "198.18.0.0/15"]),
            )],
        );
        let want = peer("192.0.2.9", "198.51.100.1", 64500);
        let path = AsPath::from_asns(&[64500, 3356, 1299, 4837, 131279]);
        assert_eq!(
            out,
            vec![
                up("192.0.2.9", true, NOW),
                announce(T0, &want, "203.0.113.0/24", path.clone(), "192.0.2.1"),
                announce(T0, &want, "198.18.0.0/15", path, "192.0.2.1"),
            ]
        );
    }

    #[test]
    fn ipv6_mp_reach_and_unreach() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("2001:db8::1", 6939);
        let upd = build::update(
            &[],
            &[
                build::origin(),
                build::as_path(&[(2, &[6939, 4837])], true),
                build::mp_unreach(&["2001:db8:1::/48"]),
                build::mp_reach("2001:db8::1", &["2001:db8:2::/48", "2001:db8:3::/48"]),
            ],
            &[],
        );
        let out = run(&mut s, &[build::route_monitoring(&p, &upd)]);
        let want = peer("192.0.2.9", "2001:db8::1", 6939);
        let path = AsPath::from_asns(&[6939, 4837]);
        assert_eq!(
            out[1..],
            [
                withdraw(T0, &want, "2001:db8:1::/48"),
                announce(T0, &want, "2001:db8:2::/48", path.clone(), "2001:db8::1"),
                announce(T0, &want, "2001:db8:3::/48", path, "2001:db8::1"),
            ]
        );
    }

    #[test]
    fn withdrawals_and_end_of_rib() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 64500);
        let out = run(
            &mut s,
            &[
                build::route_monitoring(
                    &p,
                    &build::update(&["203.0.113.0/24", "10.0.0.0/8"], &[], &[]),
                ),
                build::route_monitoring(&p, &build::update(&[], &[], &[])),
                build::route_monitoring(&p, &build::update(&[], &[build::mp_unreach(&[])], &[])),
            ],
        );
        let want = peer("192.0.2.9", "198.51.100.1", 64500);
        assert_eq!(
            out[1..],
            [
                withdraw(T0, &want, "203.0.113.0/24"),
                withdraw(T0, &want, "10.0.0.0/8")
            ]
        );
        assert_eq!(s.counters.end_of_rib.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn as4_path_is_merged_sets_kept_confederations_dropped() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 64500).two_octet();
        let upd = build::update(
            &[],
            &[
                build::origin(),
                build::as_path(
                    &[
                        (3, &[65001]),
                        (2, &[64500, 23456, 23456]),
                        (1, &[23456, 64501]),
                    ],
                    false,
                ),
                build::next_hop("192.0.2.1"),
                build::as4_path(&[
                    (2, &[4_200_000_001, 4_200_000_002]),
                    (1, &[4_200_000_003, 64501]),
                ]),
            ],
            &["203.0.113.0/24"],
        );
        let out = run(&mut s, &[build::route_monitoring(&p, &upd)]);
        let want = peer("192.0.2.9", "198.51.100.1", 64500);
        let path = AsPath(vec![
            Hop::As(64500),
            Hop::As(4_200_000_001),
            Hop::As(4_200_000_002),
            Hop::Set(vec![4_200_000_003, 64501]),
        ]);
        assert_eq!(
            out[1..],
            [announce(T0, &want, "203.0.113.0/24", path, "192.0.2.1")]
        );
    }

    #[test]
    fn as4_path_merge_plain() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 64500).two_octet();
        let upd = build::update(
            &[],
            &[
                build::origin(),
                build::as_path(&[(2, &[64500, 3356, 23456]), (1, &[64510, 64511])], false),
                build::next_hop("192.0.2.1"),
                build::as4_path(&[(2, &[4_200_000_001])]),
            ],
            &["203.0.113.0/24"],
        );
        let out = run(&mut s, &[build::route_monitoring(&p, &upd)]);
        let want = peer("192.0.2.9", "198.51.100.1", 64500);
        let path = AsPath(vec![
            Hop::As(64500),
            Hop::As(3356),
            Hop::As(4_200_000_001),
            Hop::Set(vec![64510, 64511]),
        ]);
        assert_eq!(
            out[1..],
            [announce(T0, &want, "203.0.113.0/24", path, "192.0.2.1")]
        );
    }

    #[test]
    fn confederation_segments_are_dropped() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 64500);
        let upd = build::update(
            &[],
            &[
                build::origin(),
                build::as_path(
                    &[(3, &[65001, 65002]), (2, &[64500, 4837]), (4, &[65003])],
                    true,
                ),
                build::next_hop("192.0.2.1"),
            ],
            &["203.0.113.0/24"],
        );
        let out = run(&mut s, &[build::route_monitoring(&p, &upd)]);
        let want = peer("192.0.2.9", "198.51.100.1", 64500);
        let path = AsPath::from_asns(&[64500, 4837]);
        assert_eq!(
            out[1..],
            [announce(T0, &want, "203.0.113.0/24", path, "192.0.2.1")]
        );
    }

    /// GoBGP's `all`: the same route pre-policy, post-policy and in the
    /// Loc-RIB; each view takes exactly one of them.
    #[test]
    fn one_view_counts_the_others_are_dropped() {
        let pre = PeerHeader::new("198.51.100.1", 64500);
        let post = PeerHeader::new("198.51.100.1", 64500).post_policy();
        let loc = PeerHeader::loc_rib(64496);
        let upd = build::typical_update(&["203.0.113.0/24"]);
        let feed = [
            build::peer_up(&pre, 64496),
            build::peer_up(&loc, 64496),
            build::route_monitoring(&pre, &upd),
            build::route_monitoring(&post, &upd),
            build::route_monitoring(&loc, &upd),
        ];
        let path = AsPath::from_asns(&[64500, 3356, 1299, 4837, 131279]);
        for (view, who) in [
            (View::PrePolicy, peer("192.0.2.9", "198.51.100.1", 64500)),
            (View::PostPolicy, peer("192.0.2.9", "198.51.100.1", 64500)),
            (View::LocRib, peer("192.0.2.9", "0.0.0.0", 64496)),
        ] {
            let mut s = session(view);
            let out = run(&mut s, &feed);
            assert_eq!(
                out[1..],
                [
                    Message::PeerUp {
                        peer: who.clone(),
                        at_ms: T0
                    },
                    announce(T0, &who, "203.0.113.0/24", path.clone(), "192.0.2.1"),
                ],
                "{view:?}"
            );
            assert_eq!(s.counters.other_view.load(Ordering::Relaxed), 2, "{view:?}");
        }
    }

    #[test]
    fn stats_termination_and_close_take_every_peer_down() {
        let mut s = session(View::PrePolicy);
        let a = PeerHeader::new("198.51.100.1", 64500);
        let mut b = PeerHeader::new("198.51.100.2", 64501);
        b.distinguisher = 64500 << 32 | 7;
        let out = run(
            &mut s,
            &[
                build::initiation(Some("r1")),
                build::peer_up(&a, 64496),
                build::route_monitoring(&b, &build::typical_update(&["203.0.113.0/24"])),
                build::stats(&a, &[(0, 3), (7, 1000)]),
            ],
        );
        assert_eq!(
            out.last(),
            Some(&Message::Stats {
                source: "bmp".into(),
                router: "r1".into()
            })
        );
        let mut out = Vec::new();
        assert_eq!(
            s.handle(Bytes::from(build::termination(0)), NOW, &mut out),
            Flow::Close
        );
        assert!(out.is_empty());
        s.close("closed", NOW + 5, &mut out);
        let down = |p: Peer| Message::PeerDown {
            peer: p,
            at_ms: NOW + 5,
            reason: "closed".into(),
        };
        assert_eq!(
            out,
            vec![
                down(peer("r1", "198.51.100.1", 64500)),
                down(peer("r1 rd 64500:7", "198.51.100.2", 64501)),
                up("r1", false, NOW + 5),
            ]
        );
    }

    #[test]
    fn a_zero_timestamp_means_now() {
        let mut s = session(View::PrePolicy);
        let mut p = PeerHeader::new("198.51.100.1", 64500);
        p.secs = 0;
        p.micros = 0;
        let out = run(&mut s, &[build::peer_up(&p, 64496)]);
        assert!(
            matches!(out[1], Message::PeerUp { at_ms: NOW, .. }),
            "{out:?}"
        );
    }

    #[test]
    fn bad_messages_are_faults_and_the_session_goes_on() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 64500);
        let good = build::route_monitoring(&p, &build::typical_update(&["203.0.113.0/24"]));
        // The BGP message cut short inside the framed message.
        let mut cut = good[..good.len() - 10].to_vec();
        let len = cut.len() as u32;
        cut[1..5].copy_from_slice(&len.to_be_bytes());
        // A peer type this parser does not know.
        let mut odd_peer = good.clone();
        odd_peer[6] = 9;
        // A type after 6: ignored, not a fault.
        let unknown = build::message(42, b"whatever");
        let out = run(&mut s, &[cut, odd_peer, unknown, good]);
        let fault = Message::Fault {
            source: "bmp".into(),
            kind: "decode",
        };
        assert_eq!(out[1..3], [fault.clone(), fault]);
        assert!(matches!(out[3], Message::Update(_)), "{out:?}");
        assert_eq!(out.len(), 4);
        assert_eq!(s.counters.ignored.load(Ordering::Relaxed), 1);
    }

    /// RFC 7606 treat-as-withdraw: NLRI without a readable AS_PATH.
    #[test]
    fn an_announcement_without_as_path_is_withdrawn() {
        let mut s = session(View::PrePolicy);
        let p = PeerHeader::new("198.51.100.1", 64500);
        let upd = build::update(
            &[],
            &[build::origin(), build::next_hop("192.0.2.1")],
            &["203.0.113.0/24"],
        );
        let out = run(&mut s, &[build::route_monitoring(&p, &upd)]);
        let want = peer("192.0.2.9", "198.51.100.1", 64500);
        assert_eq!(
            out[1..],
            [
                Message::Fault {
                    source: "bmp".into(),
                    kind: "no-as-path"
                },
                withdraw(T0, &want, "203.0.113.0/24"),
            ]
        );
    }

    #[test]
    fn decode_rejects_a_frame_that_is_not_whole() {
        let m = build::initiation(Some("r1"));
        assert!(decode(Bytes::copy_from_slice(&m)).is_ok());
        let err = decode(Bytes::copy_from_slice(&m[..m.len() - 1])).unwrap_err();
        assert_eq!(err.kind(), "framing");
        assert_eq!(
            decode(Bytes::from_static(&[3, 0, 0, 0, 2, 0]))
                .unwrap_err()
                .kind(),
            "framing"
        );
        assert_eq!(decode(Bytes::new()).unwrap_err().kind(), "framing");
    }

    #[test]
    fn two_connections_never_share_a_name() {
        let names = Arc::new(Names::default());
        let opts = BmpOptions::default();
        let session = |addr: &str| Session::new(addr.parse().unwrap(), &opts, names.clone());
        // Named from the first message: a's sysName does not hold its
        // address.
        let mut a = session("127.0.0.1:1000");
        let mut b = session("127.0.0.1:1001");
        let mut c = session("127.0.0.1:1002");
        run(&mut a, &[build::initiation(Some("r1"))]);
        run(&mut b, &[build::initiation(None)]);
        run(&mut c, &[build::initiation(None)]);
        assert_eq!(
            (a.router(), b.router(), c.router()),
            ("r1", "127.0.0.1", "127.0.0.1:1002")
        );
        let mut d = session("127.0.0.2:1000");
        run(&mut d, &[build::initiation(Some("r1"))]);
        assert_eq!(d.router(), "r1 (127.0.0.2:1000)");
        drop(a);
        drop(b);
        let mut e = session("127.0.0.1:1003");
        run(&mut e, &[build::initiation(Some("r1"))]);
        let mut f = session("127.0.0.1:1004");
        run(&mut f, &[build::initiation(None)]);
        assert_eq!((e.router(), f.router()), ("r1", "127.0.0.1"));
    }

    #[test]
    fn distinguishers_print_as_configured() {
        assert_eq!(distinguisher(64500 << 32 | 7), "64500:7");
        assert_eq!(
            distinguisher(1 << 48 | 0xc000_0201 << 16 | 9),
            "192.0.2.1:9"
        );
        assert_eq!(
            distinguisher(2 << 48 | 4_200_000_000 << 16 | 9),
            "4200000000:9"
        );
    }
}
