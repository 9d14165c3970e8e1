//! Parsing replies: every length is checked before it is used, and every
//! malformed input is an error that names what was wrong — never a panic.
//! This is the code that reads bytes from anyone on the Internet; it is
//! fuzzed (`agent/fuzz`) and mutation-tested below.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::build::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use super::checksum::is_valid;
use super::{PacketError, Protocol};

/// Why an unreachable was sent; [`Unreach::annotation`] prints it as
/// traceroute does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreach {
    Net,
    Host,
    Protocol,
    Port,
    /// Administratively prohibited (ICMPv4 codes 9, 10, 13; ICMPv6 code 1).
    AdminProhibited,
    /// Any other code, as received.
    Other(u8),
}

impl Unreach {
    fn from_v4(code: u8) -> Self {
        match code {
            0 | 6 | 11 => Unreach::Net,
            1 | 7 | 12 => Unreach::Host,
            2 => Unreach::Protocol,
            3 => Unreach::Port,
            9 | 10 | 13 => Unreach::AdminProhibited,
            c => Unreach::Other(c),
        }
    }

    fn from_v6(code: u8) -> Self {
        match code {
            0 => Unreach::Net,
            1 | 5 | 6 => Unreach::AdminProhibited,
            3 => Unreach::Host,
            4 => Unreach::Port,
            c => Unreach::Other(c),
        }
    }

    /// `!N`, `!H`, `!P`, `!X`, `!<code>`; a port unreachable has none (it
    /// is the destination's normal answer to a UDP probe).
    pub fn annotation(self) -> Option<String> {
        match self {
            Unreach::Net => Some("!N".into()),
            Unreach::Host => Some("!H".into()),
            Unreach::Protocol => Some("!P".into()),
            Unreach::Port => None,
            Unreach::AdminProhibited => Some("!X".into()),
            Unreach::Other(c) => Some(format!("!<{c}>")),
        }
    }
}

/// What kind of answer a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    TimeExceeded,
    Unreachable(Unreach),
    PacketTooBig,
    ParameterProblem,
    EchoReply,
    TcpReset,
    TcpSynAck,
}

/// The probe a router quoted back in an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL / hop limit the probe had when it reached the router (1 for a
    /// plain TTL expiry; more reveals a tunnel or a TTL rewrite).
    pub ttl: u8,
    /// IPv4 ID of the quoted header (IPv6 has none).
    pub ip_id: Option<u16>,
    /// Transport protocol and fields, when the quote reaches that far.
    pub l4: Option<QuotedL4>,
}

/// The first 8 quoted bytes of the probe's transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotedL4 {
    Icmp {
        ident: u16,
        seq: u16,
        checksum: u16,
    },
    Udp {
        sport: u16,
        dport: u16,
        checksum: u16,
    },
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
    },
}

impl QuotedL4 {
    /// The protocol of the quoted probe.
    pub fn protocol(&self) -> Protocol {
        match self {
            QuotedL4::Icmp { .. } => Protocol::Icmp,
            QuotedL4::Udp { .. } => Protocol::Udp,
            QuotedL4::Tcp { .. } => Protocol::Tcp,
        }
    }
}

/// One MPLS label stack entry (RFC 4950).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MplsEntry {
    pub label: u32,
    pub tc: u8,
    pub bottom: bool,
    pub ttl: u8,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Who answered.
    pub from: IpAddr,
    /// TTL / hop limit of the reply as received, when known.
    pub reply_ttl: Option<u8>,
    pub kind: ReplyKind,
    /// ICMP type and code as received (0 for TCP answers).
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// For ICMP errors: the quoted probe.
    pub quote: Option<Quote>,
    /// For echo replies: identifier and sequence number.
    pub echo: Option<(u16, u16)>,
    /// For TCP answers: source port, destination port, acknowledgement.
    pub tcp: Option<(u16, u16, u32)>,
    /// RFC 4950 MPLS label stack from RFC 4884 extensions.
    pub mpls: Vec<MplsEntry>,
}

impl Reply {
    /// A reply with nothing but its sender and ICMP type; the parsers fill
    /// in the rest.
    fn bare(from: IpAddr, reply_ttl: Option<u8>, icmp_type: u8, icmp_code: u8) -> Self {
        Reply {
            from,
            reply_ttl,
            kind: ReplyKind::EchoReply,
            icmp_type,
            icmp_code,
            quote: None,
            echo: None,
            tcp: None,
            mpls: Vec::new(),
        }
    }
}

fn need(what: &'static str, data: &[u8], n: usize) -> Result<(), PacketError> {
    if data.len() < n {
        Err(PacketError::Truncated {
            what,
            need: n,
            got: data.len(),
        })
    } else {
        Ok(())
    }
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// A checked IPv4 header: (header length, protocol, TTL, ID, src, dst).
struct V4Header {
    len: usize,
    proto: u8,
    ttl: u8,
    id: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

fn ipv4_header(what: &'static str, d: &[u8]) -> Result<V4Header, PacketError> {
    need(what, d, 20)?;
    if d[0] >> 4 != 4 {
        return Err(PacketError::BadVersion {
            what,
            version: d[0] >> 4,
        });
    }
    let len = usize::from(d[0] & 0x0f) * 4;
    if len < 20 || len > d.len() {
        return Err(PacketError::BadHeaderLength {
            what,
            len,
            got: d.len(),
        });
    }
    let addr = |at: usize| Ipv4Addr::new(d[at], d[at + 1], d[at + 2], d[at + 3]);
    Ok(V4Header {
        len,
        proto: d[9],
        ttl: d[8],
        id: be16(d, 4),
        src: addr(12),
        dst: addr(16),
    })
}

/// Parses an ICMPv4 message as a raw IPv4 socket delivers it: the whole IP
/// packet.
pub fn parse_icmpv4(packet: &[u8]) -> Result<Reply, PacketError> {
    let ip = ipv4_header("IPv4 header", packet)?;
    if ip.proto != PROTO_ICMP {
        return Err(PacketError::NotExpected(format!(
            "IPv4 protocol {} is not ICMP",
            ip.proto
        )));
    }
    let icmp = &packet[ip.len..];
    need("ICMP header", icmp, 8)?;
    if !is_valid(icmp, 0) {
        return Err(PacketError::BadChecksum("ICMP"));
    }
    let (ty, code) = (icmp[0], icmp[1]);
    let mut reply = Reply::bare(IpAddr::V4(ip.src), Some(ip.ttl), ty, code);
    match ty {
        0 => {
            reply.echo = Some((be16(icmp, 4), be16(icmp, 6)));
            return Ok(reply);
        }
        3 => reply.kind = ReplyKind::Unreachable(Unreach::from_v4(code)),
        11 => reply.kind = ReplyKind::TimeExceeded,
        12 => reply.kind = ReplyKind::ParameterProblem,
        t => return Err(PacketError::NotExpected(format!("ICMP type {t}"))),
    }
    // RFC 4884: byte 5 is the original datagram's length in 32-bit words.
    let (original, ext) = split_extensions(&icmp[8..], usize::from(icmp[5]) * 4);
    reply.quote = Some(quote_v4(original)?);
    reply.mpls = ext.map(mpls_entries).unwrap_or_default();
    Ok(reply)
}

/// Parses an ICMPv6 message as a raw ICMPv6 socket delivers it (no IPv6
/// header: the sender and hop limit come from the socket).
pub fn parse_icmpv6(
    msg: &[u8],
    from: Ipv6Addr,
    hop_limit: Option<u8>,
) -> Result<Reply, PacketError> {
    need("ICMPv6 header", msg, 8)?;
    let (ty, code) = (msg[0], msg[1]);
    let mut reply = Reply::bare(IpAddr::V6(from), hop_limit, ty, code);
    match ty {
        129 => {
            reply.echo = Some((be16(msg, 4), be16(msg, 6)));
            return Ok(reply);
        }
        1 => reply.kind = ReplyKind::Unreachable(Unreach::from_v6(code)),
        2 => reply.kind = ReplyKind::PacketTooBig,
        3 => reply.kind = ReplyKind::TimeExceeded,
        4 => reply.kind = ReplyKind::ParameterProblem,
        t => return Err(PacketError::NotExpected(format!("ICMPv6 type {t}"))),
    }
    // RFC 4884: for types 1 and 3, byte 4 is the length in 64-bit words.
    let words = if ty == 1 || ty == 3 {
        usize::from(msg[4]) * 8
    } else {
        0
    };
    let (original, ext) = split_extensions(&msg[8..], words);
    reply.quote = Some(quote_v6(original)?);
    reply.mpls = ext.map(mpls_entries).unwrap_or_default();
    Ok(reply)
}

/// Splits the body of an ICMP error into the original datagram and the
/// RFC 4884 extension structure, if any. `len` is the length attribute
/// (0: absent). Without it, an extension is still recognised at offset 128
/// when it looks like one (version 2, valid checksum), as RFC 4884 section
/// 5 allows for older routers.
fn split_extensions(body: &[u8], len: usize) -> (&[u8], Option<&[u8]>) {
    if len > 0 {
        if len <= body.len() {
            let ext = &body[len..];
            return (&body[..len], (ext.len() >= 4).then_some(ext));
        }
        // A length beyond the message: ignore it, keep the quote.
        return (body, None);
    }
    if body.len() >= 128 + 4 {
        let ext = &body[128..];
        if ext[0] >> 4 == 2 && is_valid(ext, 0) {
            return (&body[..128], Some(ext));
        }
    }
    (body, None)
}

/// MPLS label stack entries of an extension structure (class 1, c-type 1).
/// A malformed structure yields what was read before the fault: the reply
/// itself is still good.
fn mpls_entries(ext: &[u8]) -> Vec<MplsEntry> {
    let mut out = Vec::new();
    if ext.len() < 4 || ext[0] >> 4 != 2 {
        return out;
    }
    // A zero checksum means "not computed" in some implementations.
    if be16(ext, 2) != 0 && !is_valid(ext, 0) {
        return out;
    }
    let mut at = 4;
    while ext.len() >= at + 4 {
        let len = usize::from(be16(ext, at));
        let (class, ctype) = (ext[at + 2], ext[at + 3]);
        if len < 4 || at + len > ext.len() {
            break;
        }
        if class == 1 && ctype == 1 {
            for e in ext[at + 4..at + len].chunks_exact(4) {
                let v = be32(e, 0);
                out.push(MplsEntry {
                    label: v >> 12,
                    tc: u8::try_from((v >> 9) & 0x7).unwrap_or(0),
                    bottom: v & 0x100 != 0,
                    ttl: e[3],
                });
            }
        }
        at += len;
    }
    out
}

fn quoted_l4(proto: u8, l4: &[u8]) -> Option<QuotedL4> {
    if l4.len() < 8 {
        return None;
    }
    match proto {
        PROTO_ICMP | PROTO_ICMPV6 => Some(QuotedL4::Icmp {
            checksum: be16(l4, 2),
            ident: be16(l4, 4),
            seq: be16(l4, 6),
        }),
        PROTO_UDP => Some(QuotedL4::Udp {
            sport: be16(l4, 0),
            dport: be16(l4, 2),
            checksum: be16(l4, 6),
        }),
        PROTO_TCP => Some(QuotedL4::Tcp {
            sport: be16(l4, 0),
            dport: be16(l4, 2),
            seq: be32(l4, 4),
        }),
        _ => None,
    }
}

fn quote_v4(q: &[u8]) -> Result<Quote, PacketError> {
    let ip = ipv4_header("quoted IPv4 header", q)?;
    Ok(Quote {
        src: IpAddr::V4(ip.src),
        dst: IpAddr::V4(ip.dst),
        ttl: ip.ttl,
        ip_id: Some(ip.id),
        l4: quoted_l4(ip.proto, &q[ip.len..]),
    })
}

fn quote_v6(q: &[u8]) -> Result<Quote, PacketError> {
    need("quoted IPv6 header", q, 40)?;
    if q[0] >> 4 != 6 {
        return Err(PacketError::BadVersion {
            what: "quoted IPv6 header",
            version: q[0] >> 4,
        });
    }
    let addr = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&q[at..at + 16]);
        Ipv6Addr::from(o)
    };
    Ok(Quote {
        src: IpAddr::V6(addr(8)),
        dst: IpAddr::V6(addr(24)),
        ttl: q[7],
        ip_id: None,
        l4: quoted_l4(q[6], &q[40..]),
    })
}

fn tcp_reply(from: IpAddr, ttl: Option<u8>, seg: &[u8]) -> Result<Reply, PacketError> {
    need("TCP header", seg, 20)?;
    let off = usize::from(seg[12] >> 4) * 4;
    if off < 20 || off > seg.len() {
        return Err(PacketError::BadHeaderLength {
            what: "TCP header",
            len: off,
            got: seg.len(),
        });
    }
    let flags = seg[13];
    let kind = if flags & 0x04 != 0 {
        ReplyKind::TcpReset
    } else if flags & 0x12 == 0x12 {
        ReplyKind::TcpSynAck
    } else {
        return Err(PacketError::NotExpected(format!("TCP flags {flags:#04x}")));
    };
    Ok(Reply {
        kind,
        tcp: Some((be16(seg, 0), be16(seg, 2), be32(seg, 8))),
        ..Reply::bare(from, ttl, 0, 0)
    })
}

/// Parses a TCP answer (RST or SYN-ACK) as a raw IPv4 TCP socket delivers
/// it: the whole IP packet.
pub fn parse_tcp_v4(packet: &[u8]) -> Result<Reply, PacketError> {
    let ip = ipv4_header("IPv4 header", packet)?;
    if ip.proto != PROTO_TCP {
        return Err(PacketError::NotExpected(format!(
            "IPv4 protocol {} is not TCP",
            ip.proto
        )));
    }
    tcp_reply(IpAddr::V4(ip.src), Some(ip.ttl), &packet[ip.len..])
}

/// Parses a TCP answer as a raw IPv6 TCP socket delivers it: the segment.
pub fn parse_tcp_v6(
    segment: &[u8],
    from: Ipv6Addr,
    hop_limit: Option<u8>,
) -> Result<Reply, PacketError> {
    tcp_reply(IpAddr::V6(from), hop_limit, segment)
}
