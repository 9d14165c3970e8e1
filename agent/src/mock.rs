//! A scripted [`Network`] for tests: a topology (what answers each TTL of
//! each destination and flow) plus a fate per probe (lost, delayed,
//! duplicated) and unrelated traffic, on tokio's paused clock. Replies are
//! real packet bytes run through the real parsers, so the tests exercise
//! matching end to end without root.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::{Incoming, Network};
use crate::packet::checksum::{finish, ones_sum, pseudo_header_sum};
use crate::packet::{
    parse_icmpv4, parse_icmpv6, parse_tcp_v4, parse_tcp_v6, PacketError, ProbeSpec, Protocol,
};

/// Who answers a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A router: time exceeded from this address.
    Router(IpAddr),
    /// A router that unreachables with this ICMP code (v4 numbering).
    Reject(IpAddr, u8),
    /// Nobody.
    Silent,
    /// The destination itself (echo reply / port unreachable / TCP RST).
    Destination,
}

/// What happens to one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    pub lost: bool,
    pub delay: Duration,
    /// Extra copies of the reply.
    pub duplicates: u8,
}

impl Default for Fate {
    fn default() -> Self {
        Self {
            lost: false,
            delay: Duration::from_millis(20),
            duplicates: 0,
        }
    }
}

type Topology = Box<dyn Fn(&ProbeSpec) -> Answer>;
/// A queued datagram: due time, tie-break order, bytes, IPv6 sender.
type Queued = Reverse<(Instant, u64, Vec<u8>, Option<Ipv6Addr>)>;
type Faults = Box<dyn FnMut(usize, &ProbeSpec) -> Fate>;

/// The scripted network.
pub struct MockNet {
    pub src4: IpAddr,
    pub src6: IpAddr,
    topology: Topology,
    faults: Faults,
    /// Every probe sent, with the time it left and its bytes.
    pub sent: Vec<(Instant, ProbeSpec, Vec<u8>)>,
    /// Extra datagrams delivered at given times (foreign traffic).
    queue: BinaryHeap<Queued>,
    order: u64,
}

impl std::fmt::Debug for MockNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockNet")
            .field("sent", &self.sent.len())
            .finish()
    }
}

impl MockNet {
    pub fn new(topology: impl Fn(&ProbeSpec) -> Answer + 'static) -> Self {
        Self {
            src4: "192.0.2.1".parse().expect("ip"),
            src6: "2001:db8:1::1".parse().expect("ip"),
            topology: Box::new(topology),
            faults: Box::new(|_, _| Fate::default()),
            sent: Vec::new(),
            queue: BinaryHeap::new(),
            order: 0,
        }
    }

    pub fn with_faults(mut self, f: impl FnMut(usize, &ProbeSpec) -> Fate + 'static) -> Self {
        self.faults = Box::new(f);
        self
    }

    /// Queues a raw datagram (IPv4: whole packet; IPv6: ICMPv6 message
    /// from `from6`) at `at`.
    pub fn inject(&mut self, at: Instant, bytes: Vec<u8>, from6: Option<Ipv6Addr>) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, bytes, from6)));
    }
}

fn v4_header(src: IpAddr, dst: IpAddr, proto: u8, ttl: u8, payload: usize) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        return Vec::new();
    };
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&u16::try_from(20 + payload).unwrap_or(0).to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&s.octets());
    h[16..20].copy_from_slice(&d.octets());
    let c = finish(ones_sum(&h, 0));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn v6_header(src: IpAddr, dst: IpAddr, next: u8, hop: u8, payload: usize) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        return Vec::new();
    };
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&u16::try_from(payload).unwrap_or(0).to_be_bytes());
    h[6] = next;
    h[7] = hop;
    h[8..24].copy_from_slice(&s.octets());
    h[24..40].copy_from_slice(&d.octets());
    h
}

/// An ICMPv4 error from `from` quoting `probe` (a whole IPv4 packet) as a
/// router that saw it arrive with TTL 1.
pub fn icmp4_error(from: IpAddr, to: IpAddr, ty: u8, code: u8, probe: &[u8]) -> Vec<u8> {
    let mut quoted = probe[..probe.len().min(28)].to_vec();
    if quoted.len() > 8 {
        quoted[8] = 1;
    }
    let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    let c = finish(ones_sum(&icmp, 0));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = v4_header(from, to, 1, 250, icmp.len());
    p.extend_from_slice(&icmp);
    p
}

/// An ICMPv6 error message quoting `probe` (an IPv6 transport message).
pub fn icmp6_error(ty: u8, code: u8, spec: &ProbeSpec, probe: &[u8]) -> Vec<u8> {
    let next = match spec.protocol {
        Protocol::Icmp => 58,
        Protocol::Udp => 17,
        Protocol::Tcp => 6,
    };
    let mut m = vec![ty, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&v6_header(spec.src, spec.dst, next, 1, probe.len()));
    m.extend_from_slice(probe);
    m
}

impl MockNet {
    /// The reply `spec` earns from `answer`, as received bytes.
    fn reply_bytes(
        spec: &ProbeSpec,
        bytes: &[u8],
        answer: Answer,
    ) -> Option<(Vec<u8>, Option<Ipv6Addr>)> {
        let v6 = spec.dst.is_ipv6();
        let from6 = |a: IpAddr| match a {
            IpAddr::V6(x) => Some(x),
            IpAddr::V4(_) => None,
        };
        match answer {
            Answer::Silent => None,
            Answer::Router(r) if v6 => Some((icmp6_error(3, 0, spec, bytes), from6(r))),
            Answer::Router(r) => Some((icmp4_error(r, spec.src, 11, 0, bytes), None)),
            Answer::Reject(r, code) if v6 => {
                let c6 = if code == 13 { 1 } else { 0 };
                Some((icmp6_error(1, c6, spec, bytes), from6(r)))
            }
            Answer::Reject(r, code) => Some((icmp4_error(r, spec.src, 3, code, bytes), None)),
            Answer::Destination => match spec.protocol {
                Protocol::Icmp => {
                    let mut m = if v6 {
                        bytes.to_vec()
                    } else {
                        bytes[20..].to_vec()
                    };
                    m[0] = if v6 { 129 } else { 0 };
                    m[2..4].copy_from_slice(&[0, 0]);
                    if !v6 {
                        let c = finish(ones_sum(&m, 0));
                        m[2..4].copy_from_slice(&c.to_be_bytes());
                        let mut p = v4_header(spec.dst, spec.src, 1, 60, m.len());
                        p.extend_from_slice(&m);
                        return Some((p, None));
                    }
                    Some((m, from6(spec.dst)))
                }
                Protocol::Udp if v6 => Some((icmp6_error(1, 4, spec, bytes), from6(spec.dst))),
                Protocol::Udp => Some((icmp4_error(spec.dst, spec.src, 3, 3, bytes), None)),
                Protocol::Tcp => {
                    let mut seg = vec![0u8; 20];
                    seg[0..2].copy_from_slice(&spec.dport.to_be_bytes());
                    seg[2..4].copy_from_slice(&spec.sport().to_be_bytes());
                    seg[8..12].copy_from_slice(&spec.tcp_seq().wrapping_add(1).to_be_bytes());
                    seg[12] = 5 << 4;
                    seg[13] = 0x14; // RST + ACK
                    let proto_sum = pseudo_header_sum(&octets(spec.dst), &octets(spec.src), 6);
                    let c = finish(ones_sum(&seg, proto_sum + 20));
                    seg[16..18].copy_from_slice(&c.to_be_bytes());
                    if v6 {
                        return Some((seg, from6(spec.dst)));
                    }
                    let mut p = v4_header(spec.dst, spec.src, 6, 60, seg.len());
                    p.extend_from_slice(&seg);
                    Some((p, None))
                }
            },
        }
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(x) => x.octets().to_vec(),
        IpAddr::V6(x) => x.octets().to_vec(),
    }
}

/// Parses a queued datagram the way the raw sockets would.
fn parse(bytes: &[u8], from6: Option<Ipv6Addr>) -> Result<Incoming, PacketError> {
    let reply = match from6 {
        Some(from) => {
            // TCP segments and ICMPv6 messages: tell them apart by shape.
            if bytes.len() >= 20
                && bytes[12] >> 4 == 5
                && (bytes[13] & 0x04 != 0 || bytes[13] & 0x12 == 0x12)
            {
                parse_tcp_v6(bytes, from, Some(60))?
            } else {
                parse_icmpv6(bytes, from, Some(60))?
            }
        }
        None => {
            if bytes.len() > 9 && bytes[9] == 6 {
                parse_tcp_v4(bytes)?
            } else {
                parse_icmpv4(bytes)?
            }
        }
    };
    Ok(Incoming {
        reply,
        kernel_ts: None,
    })
}

impl Network for MockNet {
    fn source_for(&mut self, dst: IpAddr) -> io::Result<IpAddr> {
        Ok(if dst.is_ipv6() { self.src6 } else { self.src4 })
    }

    fn send(&mut self, probe: &ProbeSpec, packet: &[u8]) -> io::Result<()> {
        let now = Instant::now();
        let n = self.sent.len();
        self.sent.push((now, *probe, packet.to_vec()));
        let fate = (self.faults)(n, probe);
        if fate.lost {
            return Ok(());
        }
        let answer = (self.topology)(probe);
        if let Some((bytes, from6)) = Self::reply_bytes(probe, packet, answer) {
            for _ in 0..=fate.duplicates {
                self.inject(now + fate.delay, bytes.clone(), from6);
            }
        }
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Vec<Result<Incoming, PacketError>>> {
        loop {
            let Some(Reverse((at, _, _, _))) = self.queue.peek() else {
                std::future::pending::<()>().await;
                continue;
            };
            tokio::time::sleep_until(*at).await;
            let now = Instant::now();
            let mut out = Vec::new();
            while let Some(Reverse((at, _, _, _))) = self.queue.peek() {
                if *at > now {
                    break;
                }
                let Some(Reverse((_, _, bytes, from6))) = self.queue.pop() else {
                    break;
                };
                out.push(parse(&bytes, from6));
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}
