//! The tracer: many Paris traceroutes in flight over one set of sockets.
//!
//! The state machine is pure: a [`Sweep`] is one destination probed over
//! one Paris flow, hop by hop, and knows nothing of sockets or clocks.
//! [`run`] interleaves the sweeps of many traces over a [`Network`] (the
//! raw sockets in production, a scripted mock in the tests), under the
//! [`Gate`]: the allow-list, checked for every single probe at the point
//! of sending, and the global token bucket.
//!
//! Matching: every probe gets a probe number (1..=65534) from one table
//! shared by all traces, carried where the reply will quote it back (ICMP
//! sequence, UDP checksum, TCP sequence number, IPv4 ID). A reply is
//! accepted only when the quoted destination, protocol, identifier and flow
//! agree with the table's entry; a second reply to the same probe is a
//! duplicate, a reply after the wait expired is recorded as `late` without
//! moving the trace, and anything else is somebody else's ICMP.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tumen_wire::{Hop, HopReply, MplsLabel, StopReason, TraceMode};

use crate::allow::AllowList;
use crate::packet::{
    build, icmp_flow_checksum, PacketError, ProbeSpec, Protocol, QuotedL4, Reply, ReplyKind,
    Unreach,
};

/// A reply as a network hands it over.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub reply: Reply,
    /// Kernel receive time, when the socket gives one.
    pub kernel_ts: Option<SystemTime>,
}

/// Where probes go and replies come from. The production implementation
/// is [`crate::net::RawNetwork`]; tests script one.
pub trait Network {
    /// Source address toward `dst` (it goes into checksums).
    fn source_for(&mut self, dst: IpAddr) -> io::Result<IpAddr>;
    /// Puts one built probe on the wire.
    fn send(&mut self, probe: &ProbeSpec, packet: &[u8]) -> io::Result<()>;
    /// Waits for replies and returns every one queued (parse failures
    /// included, so they can be counted). Must be cancel-safe.
    fn recv(&mut self) -> impl Future<Output = io::Result<Vec<Result<Incoming, PacketError>>>>;
}

/// Global token bucket: at most `rate` probes per second, with a burst of
/// 10 ms worth (at least one probe).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub fn new(pps: u32) -> Self {
        let rate = f64::from(pps.max(1));
        let burst = (rate / 100.0).max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Takes one token, or says when one will be available.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate;
            Err(now + Duration::from_secs_f64(wait))
        }
    }
}

/// Everything between the tracer and the wire: the allow-list and the
/// rate cap. It lives as long as the agent, so the cap holds across rounds
/// and across traces and pings.
#[derive(Debug, Clone)]
pub struct Gate {
    allow: AllowList,
    bucket: TokenBucket,
}

impl Gate {
    pub fn new(allow: AllowList, pps: u32) -> Self {
        Self {
            allow,
            bucket: TokenBucket::new(pps),
        }
    }

    /// May `dst` ever be probed?
    pub fn permits(&self, dst: IpAddr) -> bool {
        self.allow.permits(dst)
    }

    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        self.bucket.take(now)
    }

    /// Waits for a token to send one packet to `dst` (pings use this);
    /// refuses a destination outside the allow-list.
    pub async fn acquire(&mut self, dst: IpAddr) -> Result<(), Refused> {
        if !self.permits(dst) {
            return Err(Refused(dst));
        }
        loop {
            match self.bucket.take(Instant::now()) {
                Ok(()) => return Ok(()),
                Err(at) => tokio::time::sleep_until(at).await,
            }
        }
    }
}

/// A destination outside the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is outside the allow-list; nothing was sent to it")]
pub struct Refused(pub IpAddr);

/// How traces are probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParams {
    pub protocol: Protocol,
    /// Destination port for UDP and TCP.
    pub port: u16,
    pub first_ttl: u8,
    pub max_ttl: u8,
    /// Attempts per hop: a hop is re-probed until it answers or this many
    /// probes went unanswered (scamper's `-q`).
    pub probes: u8,
    /// How long to wait for an answer to a probe.
    pub wait: Duration,
    /// Stop after this many consecutive silent hops.
    pub gap_limit: u8,
    /// Paris flow ids per trace (0..flows), each a separate sweep.
    pub flows: u16,
    /// Minimum time between two probes to the same destination.
    pub target_gap: Duration,
}

impl Default for TraceParams {
    fn default() -> Self {
        Self {
            protocol: Protocol::Icmp,
            port: 33434,
            first_ttl: 1,
            max_ttl: 30,
            probes: 2,
            wait: Duration::from_secs(1),
            gap_limit: 3,
            flows: 1,
            target_gap: Duration::from_millis(10),
        }
    }
}

/// Identifies this agent's probes among everybody's ICMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    /// ICMP identifier and upper half of TCP sequence numbers.
    pub ident: u16,
    /// UDP/TCP source port of flow 0; flow f uses `sport_base + f`.
    pub sport_base: u16,
}

impl Ident {
    /// From a 16-bit seed (the agent uses its pid mixed with randomness).
    pub fn from_seed(seed: u16) -> Self {
        Self {
            ident: seed,
            sport_base: 49152 + (seed & 0x1fff),
        }
    }
}

/// One trace to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub dst: IpAddr,
    pub mode: TraceMode,
    /// First TTL (a window trace starts just before the known border).
    pub first_ttl: u8,
}

/// What one trace gave.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    pub mode: TraceMode,
    pub first_ttl: u8,
    pub stop: StopReason,
    pub reached: bool,
    pub probes_sent: u32,
    /// Sorted by (ttl, flow).
    pub hops: Vec<Hop>,
    pub start: SystemTime,
    pub duration: Duration,
    pub error: Option<String>,
}

/// Counters over a run (they add up across runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub matched: u64,
    pub late: u64,
    pub duplicate: u64,
    /// Replies that are not to our probes (other programs' ICMP, stale).
    pub unmatched: u64,
    /// Datagrams that did not parse.
    pub malformed: u64,
    pub refused: u64,
    pub send_errors: u64,
}

/// State of one TTL of one sweep.
#[derive(Debug, Clone)]
struct HopState {
    sent: u8,
    replies: Vec<HopReply>,
}

/// One destination over one flow, hop by hop: the pure state machine.
#[derive(Debug, Clone)]
pub struct Sweep {
    dst: IpAddr,
    flow: u16,
    first_ttl: u8,
    ttl: u8,
    attempts: u8,
    outstanding: Option<u16>,
    silent_run: u8,
    done: Option<StopReason>,
    reached: bool,
    hops: Vec<HopState>,
    sent: u32,
}

/// What the sweep wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send a probe with this TTL.
    Probe(u8),
    /// A probe is out; wait for its answer or its timeout.
    Waiting,
    Done(StopReason),
}

impl Sweep {
    pub fn new(dst: IpAddr, flow: u16, first_ttl: u8) -> Self {
        Self {
            dst,
            flow,
            first_ttl: first_ttl.max(1),
            ttl: first_ttl.max(1),
            attempts: 0,
            outstanding: None,
            silent_run: 0,
            done: None,
            reached: false,
            hops: Vec::new(),
            sent: 0,
        }
    }

    pub fn next(&self) -> Next {
        match (self.done, self.outstanding) {
            (Some(r), _) => Next::Done(r),
            (None, Some(_)) => Next::Waiting,
            (None, None) => Next::Probe(self.ttl),
        }
    }

    fn hop_mut(&mut self, ttl: u8) -> Option<&mut HopState> {
        let i = usize::from(ttl.checked_sub(self.first_ttl)?);
        while self.hops.len() <= i {
            self.hops.push(HopState {
                sent: 0,
                replies: Vec::new(),
            });
        }
        self.hops.get_mut(i)
    }

    /// A probe with probe number `seq` left for the current TTL.
    pub fn on_sent(&mut self, seq: u16) {
        let ttl = self.ttl;
        if let Some(h) = self.hop_mut(ttl) {
            h.sent = h.sent.saturating_add(1);
        }
        self.attempts += 1;
        self.sent += 1;
        self.outstanding = Some(seq);
    }

    /// Ends the sweep (refused, send error).
    pub fn stop(&mut self, why: StopReason) {
        self.done = Some(why);
        self.outstanding = None;
    }

    fn advance(&mut self, max_ttl: u8) {
        self.attempts = 0;
        if self.ttl >= max_ttl {
            self.done = Some(StopReason::MaxTtl);
        } else {
            self.ttl += 1;
        }
    }

    /// The probe `seq`, sent at `ttl`, was answered. `late` when its wait
    /// had expired: the reply is kept but the sweep does not move.
    pub fn on_reply(&mut self, seq: u16, ttl: u8, reply: HopReply, kind: ReplyKind, max_ttl: u8) {
        let from = reply.addr;
        let late = reply.late;
        if let Some(h) = self.hop_mut(ttl) {
            h.replies.push(reply);
        }
        if late || self.outstanding != Some(seq) || self.done.is_some() {
            return;
        }
        self.outstanding = None;
        self.silent_run = 0;
        let arrived = from == self.dst
            || matches!(
                kind,
                ReplyKind::EchoReply
                    | ReplyKind::TcpReset
                    | ReplyKind::TcpSynAck
                    | ReplyKind::Unreachable(Unreach::Port)
            );
        if arrived {
            self.reached = true;
            self.done = Some(StopReason::Completed);
        } else if matches!(kind, ReplyKind::Unreachable(_)) {
            self.done = Some(StopReason::Unreachable);
        } else {
            self.advance(max_ttl);
        }
    }

    /// The probe `seq` got no answer within the wait.
    pub fn on_timeout(&mut self, seq: u16, params: &TraceParams) {
        if self.outstanding != Some(seq) || self.done.is_some() {
            return;
        }
        self.outstanding = None;
        if self.attempts < params.probes.max(1) {
            return; // try this hop again
        }
        self.silent_run += 1;
        if self.silent_run >= params.gap_limit.max(1) {
            self.done = Some(StopReason::GapLimit);
        } else {
            self.advance(params.max_ttl);
        }
    }

    /// The hops probed, in TTL order.
    pub fn hops(&self) -> Vec<Hop> {
        self.clone().into_hops()
    }

    /// The hops probed, in TTL order, consuming the sweep.
    pub fn into_hops(self) -> Vec<Hop> {
        let (first, flow) = (self.first_ttl, self.flow);
        self.hops
            .into_iter()
            .enumerate()
            .filter(|(_, h)| h.sent > 0 || !h.replies.is_empty())
            .map(|(i, h)| Hop {
                ttl: first.saturating_add(u8::try_from(i).unwrap_or(u8::MAX)),
                flow,
                sent: h.sent,
                replies: h.replies,
            })
            .collect()
    }

    pub fn reached(&self) -> bool {
        self.reached
    }
}

/// A probe in the table: 24 bytes, so the whole table (every probe
/// number) costs 1.5 MB. Destination and flow are the sweep's; the
/// protocol is the run's.
#[derive(Debug, Clone, Copy)]
struct Slot {
    sweep: u32,
    ttl: u8,
    state: SlotState,
    sent_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Pending,
    Expired,
    Answered,
}

/// The probe-number table shared by all sweeps of a run.
#[derive(Debug)]
struct Table {
    slots: Vec<Option<Slot>>,
    next: u16,
}

impl Table {
    fn new() -> Self {
        Self {
            slots: vec![None; 65536],
            next: 0,
        }
    }

    /// The next free probe number; numbers still pending are skipped, so a
    /// late answer can never be taken for a newer probe's.
    fn alloc(&mut self) -> Option<u16> {
        for _ in 0..65534 {
            self.next = if self.next >= 65534 { 1 } else { self.next + 1 };
            let pending = matches!(
                self.slots[usize::from(self.next)],
                Some(Slot {
                    state: SlotState::Pending,
                    ..
                })
            );
            if !pending {
                return Some(self.next);
            }
        }
        None
    }
}

/// Which probe number a reply refers to, if it can be one of ours, and the
/// destination, flow and protocol it says the probe had.
fn probe_of(
    reply: &Reply,
    id: Ident,
    params: &TraceParams,
) -> Option<(u16, IpAddr, u16, Protocol)> {
    let flows = params.flows.max(1);
    let our_port = |sport: u16| {
        let f = sport.wrapping_sub(id.sport_base);
        (f < flows).then_some(f)
    };
    if let Some(q) = &reply.quote {
        return match q.l4? {
            QuotedL4::Icmp {
                ident,
                seq,
                checksum,
            } if ident == id.ident => {
                let flow = checksum.wrapping_sub(icmp_flow_checksum(0));
                Some((seq, q.dst, flow, Protocol::Icmp))
            }
            QuotedL4::Udp {
                sport,
                dport,
                checksum,
            } if dport == params.port => Some((checksum, q.dst, our_port(sport)?, Protocol::Udp)),
            QuotedL4::Tcp { sport, dport, seq }
                if dport == params.port && (seq >> 16) as u16 == id.ident =>
            {
                Some((
                    (seq & 0xffff) as u16,
                    q.dst,
                    our_port(sport)?,
                    Protocol::Tcp,
                ))
            }
            _ => None,
        };
    }
    if let Some((ident, seq)) = reply.echo {
        return (ident == id.ident).then_some((seq, reply.from, u16::MAX, Protocol::Icmp));
    }
    if let Some((sport, dport, ack)) = reply.tcp {
        let probe = ack.wrapping_sub(1);
        if sport == params.port && (probe >> 16) as u16 == id.ident {
            return Some((
                (probe & 0xffff) as u16,
                reply.from,
                our_port(dport)?,
                Protocol::Tcp,
            ));
        }
    }
    None
}

fn kind_name(kind: ReplyKind) -> &'static str {
    match kind {
        ReplyKind::TimeExceeded => "time_exceeded",
        ReplyKind::Unreachable(_) => "unreachable",
        ReplyKind::PacketTooBig => "packet_too_big",
        ReplyKind::ParameterProblem => "parameter_problem",
        ReplyKind::EchoReply => "echo_reply",
        ReplyKind::TcpReset => "tcp_rst",
        ReplyKind::TcpSynAck => "tcp_synack",
    }
}

fn hop_reply(reply: &Reply, rtt: Duration, late: bool) -> HopReply {
    HopReply {
        addr: reply.from,
        rtt_ms: (rtt.as_secs_f64() * 1e6).round() / 1e3,
        kind: kind_name(reply.kind).to_string(),
        icmp_type: reply.icmp_type,
        icmp_code: reply.icmp_code,
        annotation: match reply.kind {
            ReplyKind::Unreachable(u) => u.annotation(),
            _ => None,
        },
        reply_ttl: reply.reply_ttl,
        quoted_ttl: reply.quote.map(|q| q.ttl),
        mpls: reply
            .mpls
            .iter()
            .map(|m| MplsLabel {
                label: m.label,
                tc: m.tc,
                s: m.bottom,
                ttl: m.ttl,
            })
            .collect(),
        late,
    }
}

/// Per-sweep bookkeeping of a run.
#[derive(Debug)]
struct Entry {
    sweep: Sweep,
    job: usize,
    src: Option<IpAddr>,
}

/// Runs `jobs` to completion, all interleaved, and returns one result per
/// job in the same order.
pub async fn run<N: Network>(
    net: &mut N,
    gate: &mut Gate,
    params: &TraceParams,
    id: Ident,
    jobs: &[Job],
    stats: &mut Stats,
) -> Vec<JobResult> {
    let start_wall = SystemTime::now();
    let start = Instant::now();
    let flows = params.flows.max(1);
    let mut entries: Vec<Entry> = Vec::with_capacity(jobs.len() * usize::from(flows));
    let mut errors: Vec<Option<String>> = vec![None; jobs.len()];
    let mut finished_at: Vec<Option<Instant>> = vec![None; jobs.len()];
    let mut srcs: HashMap<IpAddr, Option<IpAddr>> = HashMap::new();
    for (j, job) in jobs.iter().enumerate() {
        let src = *srcs
            .entry(job.dst)
            .or_insert_with(|| net.source_for(job.dst).ok());
        for flow in 0..flows {
            let mut sweep = Sweep::new(job.dst, flow, job.first_ttl.max(params.first_ttl));
            if src.is_none() {
                sweep.stop(StopReason::Error);
                errors[j] = Some(format!("no route to {}", job.dst));
            }
            entries.push(Entry { sweep, job: j, src });
        }
    }
    let mut table = Table::new();
    let mut ready: VecDeque<usize> = (0..entries.len()).collect();
    let mut paced: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut timeouts: VecDeque<(Instant, u16)> = VecDeque::new();
    let mut dst_next: HashMap<IpAddr, Instant> = HashMap::new();
    let mut live = entries.iter().filter(|e| e.sweep.done.is_none()).count();

    while live > 0 {
        let now = Instant::now();
        // Expired waits.
        while let Some(&(deadline, seq)) = timeouts.front() {
            if deadline > now {
                break;
            }
            timeouts.pop_front();
            let Some(slot) = table.slots[usize::from(seq)].as_mut() else {
                continue;
            };
            if slot.state != SlotState::Pending || slot.sent_at + params.wait != deadline {
                continue;
            }
            slot.state = SlotState::Expired;
            let e = &mut entries[slot.sweep as usize];
            let was_live = e.sweep.done.is_none();
            e.sweep.on_timeout(seq, params);
            if was_live && e.sweep.done.is_some() {
                live -= 1;
                finished_at[e.job] = Some(now);
            }
            ready.push_back(slot.sweep as usize);
        }
        while let Some(Reverse((at, i))) = paced.peek().copied() {
            if at > now {
                break;
            }
            paced.pop();
            ready.push_back(i);
        }
        // Send what the pacing and the bucket allow.
        let mut wake: Option<Instant> = None;
        while let Some(&i) = ready.front() {
            let e = &mut entries[i];
            let Next::Probe(ttl) = e.sweep.next() else {
                ready.pop_front();
                continue;
            };
            if let Some(&t) = dst_next.get(&e.sweep.dst) {
                if t > now {
                    ready.pop_front();
                    paced.push(Reverse((t, i)));
                    continue;
                }
            }
            // The allow-list, at the point of sending, for every probe.
            if !gate.permits(e.sweep.dst) {
                ready.pop_front();
                stats.refused += 1;
                e.sweep.stop(StopReason::Refused);
                errors[e.job] = Some(Refused(e.sweep.dst).to_string());
                live -= 1;
                finished_at[e.job] = Some(now);
                continue;
            }
            if let Err(at) = gate.take(now) {
                wake = Some(at);
                break;
            }
            let Some(seq) = table.alloc() else {
                wake = Some(now + Duration::from_millis(1));
                break;
            };
            ready.pop_front();
            let Some(src) = e.src else { continue };
            let spec = ProbeSpec {
                protocol: params.protocol,
                src,
                dst: e.sweep.dst,
                ttl,
                ident: id.ident,
                flow: e.sweep.flow,
                sport_base: id.sport_base,
                dport: params.port,
                seq,
            };
            let sent = build(&spec)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))
                .and_then(|bytes| net.send(&spec, &bytes));
            match sent {
                Ok(()) => {
                    stats.sent += 1;
                    let sent_at = Instant::now();
                    table.slots[usize::from(seq)] = Some(Slot {
                        sweep: i as u32,
                        ttl,
                        sent_at,
                        state: SlotState::Pending,
                    });
                    timeouts.push_back((sent_at + params.wait, seq));
                    e.sweep.on_sent(seq);
                    dst_next.insert(spec.dst, now + params.target_gap);
                }
                Err(err)
                    if err.raw_os_error() == Some(libc::ENOBUFS)
                        || err.kind() == io::ErrorKind::WouldBlock =>
                {
                    // Socket buffer full: try again shortly.
                    ready.push_front(i);
                    wake = Some(now + Duration::from_millis(1));
                    break;
                }
                Err(err) => {
                    stats.send_errors += 1;
                    e.sweep.stop(StopReason::Error);
                    errors[e.job] = Some(format!("send to {}: {err}", spec.dst));
                    live -= 1;
                    finished_at[e.job] = Some(now);
                }
            }
        }
        if live == 0 {
            break;
        }
        let mut deadline = timeouts.front().map(|t| t.0);
        for t in [wake, paced.peek().map(|r| r.0 .0)].into_iter().flatten() {
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        }
        // Nothing pending, nothing paced: nothing can move (cannot happen
        // with live sweeps, but never spin).
        let deadline = deadline.unwrap_or(now + params.wait);
        tokio::select! {
            got = net.recv() => {
                let batch = match got {
                    Ok(b) => b,
                    Err(_) => {
                        stats.malformed += 1;
                        continue;
                    }
                };
                let now = Instant::now();
                for item in batch {
                    let Ok(inc) = item else {
                        stats.malformed += 1;
                        continue;
                    };
                    let Some((seq, qdst, flow, proto)) = probe_of(&inc.reply, id, params) else {
                        stats.unmatched += 1;
                        continue;
                    };
                    let Some(slot) = table.slots[usize::from(seq)].as_mut() else {
                        stats.unmatched += 1;
                        continue;
                    };
                    let owner = &entries[slot.sweep as usize].sweep;
                    let flow_ok = flow == u16::MAX || flow == owner.flow;
                    if owner.dst != qdst || params.protocol != proto || !flow_ok {
                        stats.unmatched += 1;
                        continue;
                    }
                    let late = match slot.state {
                        SlotState::Answered => {
                            stats.duplicate += 1;
                            continue;
                        }
                        SlotState::Expired => true,
                        SlotState::Pending => false,
                    };
                    slot.state = SlotState::Answered;
                    // The wall-clock send time, from the run's anchor pair.
                    let sent_wall = start_wall + slot.sent_at.saturating_duration_since(start);
                    let rtt = match inc.kernel_ts.map(|k| k.duration_since(sent_wall)) {
                        Some(Ok(d)) => d,
                        _ => now.saturating_duration_since(slot.sent_at),
                    };
                    if late {
                        stats.late += 1;
                    } else {
                        stats.matched += 1;
                    }
                    let (si, ttl) = (slot.sweep as usize, slot.ttl);
                    let e = &mut entries[si];
                    let was_live = e.sweep.done.is_none();
                    e.sweep.on_reply(seq, ttl, hop_reply(&inc.reply, rtt, late), inc.reply.kind, params.max_ttl);
                    if was_live && e.sweep.done.is_some() {
                        live -= 1;
                        finished_at[e.job] = Some(now);
                    }
                    if !late {
                        ready.push_back(si);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }

    // Collect per job.
    let mut results: Vec<JobResult> = jobs
        .iter()
        .enumerate()
        .map(|(j, job)| JobResult {
            dst: job.dst,
            src: None,
            mode: job.mode,
            first_ttl: job.first_ttl.max(params.first_ttl),
            stop: StopReason::Completed,
            reached: false,
            probes_sent: 0,
            hops: Vec::new(),
            start: start_wall,
            duration: finished_at[j]
                .unwrap_or_else(Instant::now)
                .saturating_duration_since(start),
            error: errors[j].take(),
        })
        .collect();
    let mut stops: Vec<Vec<StopReason>> = vec![Vec::new(); jobs.len()];
    for e in entries {
        let r = &mut results[e.job];
        r.src = e.src;
        r.probes_sent += e.sweep.sent;
        r.reached |= e.sweep.reached();
        stops[e.job].push(e.sweep.done.unwrap_or(StopReason::Error));
        r.hops.extend(e.sweep.into_hops());
    }
    for (r, s) in results.iter_mut().zip(stops) {
        r.hops.sort_by_key(|h| (h.ttl, h.flow));
        r.stop = overall_stop(r.reached, &s);
    }
    results
}

/// One stop reason for a trace over several flows: reached by any flow is
/// completed; otherwise the most telling of the flows' reasons.
fn overall_stop(reached: bool, stops: &[StopReason]) -> StopReason {
    if reached {
        return StopReason::Completed;
    }
    for r in [
        StopReason::Refused,
        StopReason::Error,
        StopReason::Unreachable,
        StopReason::GapLimit,
        StopReason::MaxTtl,
    ] {
        if stops.contains(&r) {
            return r;
        }
    }
    StopReason::Completed
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
