//! Today's reply parsers and probe builder rewritten over `pnet_packet`
//! 0.35 views, for the side-by-side in `benches/packet.rs` (issue 14,
//! docs/pnet.md). Bench-only: the product keeps `agent/src/packet`.
//!
//! Rules followed, so that the comparison measures pnet and not a
//! different design:
//! - every header pnet has a view for is read through that view
//!   (`Ipv4Packet`, `IcmpPacket`, `echo_reply`/`echo_request`,
//!   `TimeExceededPacket`, `DestinationUnreachablePacket`, `UdpPacket`,
//!   `TcpPacket`, `Icmpv6Packet`, `Ipv6Packet`), payloads through
//!   `Packet::payload()` and checksums through pnet's own functions;
//! - a check today's code makes and pnet does not (IP version, IHL within
//!   the packet, the 8-byte ICMP header, the TCP data offset) is made by
//!   hand on top of the view, with the same error;
//! - where pnet 0.35 has no view at all (ICMPv4 parameter problem, ICMPv6
//!   errors, the RFC 4884 extension structure and RFC 4950 MPLS entries)
//!   the bytes are read by hand, as today; the extension code is a copy of
//!   `agent/src/packet/parse.rs`'s (private there).
//!
//! Nothing here falls back to raw bytes when a pnet view refuses an input:
//! the disagreements this produces are what the comparison is for.

use std::net::{IpAddr, Ipv6Addr};

use pnet_packet::icmp::destination_unreachable::DestinationUnreachablePacket;
use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::{EchoRequestPacket, MutableEchoRequestPacket};
use pnet_packet::icmp::time_exceeded::TimeExceededPacket;
use pnet_packet::icmp::{self, IcmpPacket, IcmpTypes};
use pnet_packet::icmpv6::{self, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet_packet::ipv4::{self, Ipv4Flags, Ipv4Packet, MutableIpv4Packet};
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::{self, MutableTcpPacket, TcpFlags, TcpPacket};
use pnet_packet::udp::{self, MutableUdpPacket, UdpPacket};
use pnet_packet::{MutablePacket, Packet};
use tumen_agent::packet::{
    icmp_flow_checksum, MplsEntry, PacketError, ProbeSpec, Protocol, Quote, QuotedL4, Reply,
    ReplyKind, Unreach,
};

fn truncated(what: &'static str, need: usize, got: usize) -> PacketError {
    PacketError::Truncated { what, need, got }
}

fn bare(from: IpAddr, reply_ttl: Option<u8>, icmp_type: u8, icmp_code: u8) -> Reply {
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

fn unreach_v4(code: u8) -> Unreach {
    match code {
        0 | 6 | 11 => Unreach::Net,
        1 | 7 | 12 => Unreach::Host,
        2 => Unreach::Protocol,
        3 => Unreach::Port,
        9 | 10 | 13 => Unreach::AdminProhibited,
        c => Unreach::Other(c),
    }
}

fn unreach_v6(code: u8) -> Unreach {
    match code {
        0 => Unreach::Net,
        1 | 5 | 6 => Unreach::AdminProhibited,
        3 => Unreach::Host,
        4 => Unreach::Port,
        c => Unreach::Other(c),
    }
}

/// An IPv4 view with the checks pnet leaves to the caller: version, and a
/// header length within 20..=packet (pnet clamps instead).
fn ipv4_view<'a>(what: &'static str, d: &'a [u8]) -> Result<Ipv4Packet<'a>, PacketError> {
    let ip = Ipv4Packet::new(d).ok_or_else(|| truncated(what, 20, d.len()))?;
    if ip.get_version() != 4 {
        return Err(PacketError::BadVersion {
            what,
            version: ip.get_version(),
        });
    }
    let len = usize::from(ip.get_header_length()) * 4;
    if len < 20 || len > d.len() {
        return Err(PacketError::BadHeaderLength {
            what,
            len,
            got: d.len(),
        });
    }
    Ok(ip)
}

/// `parse_icmpv4` over pnet views.
pub fn parse_icmpv4(packet: &[u8]) -> Result<Reply, PacketError> {
    let ip = ipv4_view("IPv4 header", packet)?;
    let proto = ip.get_next_level_protocol();
    if proto != IpNextHeaderProtocols::Icmp {
        return Err(PacketError::NotExpected(format!(
            "IPv4 protocol {} is not ICMP",
            proto.0
        )));
    }
    // pnet's payload ends at the IPv4 total length, not at the buffer.
    let body = ip.payload();
    // IcmpPacket needs 4 bytes; every ICMP message has 8.
    if body.len() < 8 {
        return Err(truncated("ICMP header", 8, body.len()));
    }
    let msg = IcmpPacket::new(body).ok_or_else(|| truncated("ICMP header", 8, body.len()))?;
    if icmp::checksum(&msg) != msg.get_checksum() {
        return Err(PacketError::BadChecksum("ICMP"));
    }
    let (ty, code) = (msg.get_icmp_type(), msg.get_icmp_code().0);
    let from = IpAddr::V4(ip.get_source());
    let mut reply = bare(from, Some(ip.get_ttl()), ty.0, code);
    // RFC 4884 length (byte 5, 32-bit words): pnet has no field for it; it
    // is a byte of `unused` in the views that have one. The views are
    // bound here so that their payloads outlive the match.
    let (unreach, exceeded);
    let (words, quoted): (usize, &[u8]) = match ty {
        IcmpTypes::EchoReply => {
            let e = EchoReplyPacket::new(body).ok_or_else(|| truncated("echo", 8, body.len()))?;
            reply.echo = Some((e.get_identifier(), e.get_sequence_number()));
            return Ok(reply);
        }
        IcmpTypes::DestinationUnreachable => {
            reply.kind = ReplyKind::Unreachable(unreach_v4(code));
            unreach = DestinationUnreachablePacket::new(body)
                .ok_or_else(|| truncated("unreachable", 8, body.len()))?;
            (usize::from(unreach.get_unused() & 0xff), unreach.payload())
        }
        IcmpTypes::TimeExceeded => {
            reply.kind = ReplyKind::TimeExceeded;
            exceeded = TimeExceededPacket::new(body)
                .ok_or_else(|| truncated("time exceeded", 8, body.len()))?;
            (
                usize::try_from((exceeded.get_unused() >> 16) & 0xff).unwrap_or(0),
                exceeded.payload(),
            )
        }
        IcmpTypes::ParameterProblem => {
            // No view in pnet 0.35: pointer, length, unused, then the quote.
            reply.kind = ReplyKind::ParameterProblem;
            (usize::from(body[5]), &body[8..])
        }
        t => return Err(PacketError::NotExpected(format!("ICMP type {}", t.0))),
    };
    let (original, ext) = split_extensions(quoted, words * 4);
    reply.quote = Some(quote_v4(original)?);
    reply.mpls = ext.map(mpls_entries).unwrap_or_default();
    Ok(reply)
}

/// `parse_icmpv6` over pnet views (the socket gives no IPv6 header).
pub fn parse_icmpv6(
    msg: &[u8],
    from: Ipv6Addr,
    hop_limit: Option<u8>,
) -> Result<Reply, PacketError> {
    if msg.len() < 8 {
        return Err(truncated("ICMPv6 header", 8, msg.len()));
    }
    let m = Icmpv6Packet::new(msg).ok_or_else(|| truncated("ICMPv6 header", 8, msg.len()))?;
    let (ty, code) = (m.get_icmpv6_type(), m.get_icmpv6_code().0);
    let mut reply = bare(IpAddr::V6(from), hop_limit, ty.0, code);
    match ty {
        Icmpv6Types::EchoReply => {
            let e = icmpv6::echo_reply::EchoReplyPacket::new(msg)
                .ok_or_else(|| truncated("echo", 8, msg.len()))?;
            reply.echo = Some((e.get_identifier(), e.get_sequence_number()));
            return Ok(reply);
        }
        Icmpv6Types::DestinationUnreachable => {
            reply.kind = ReplyKind::Unreachable(unreach_v6(code));
        }
        Icmpv6Types::PacketTooBig => reply.kind = ReplyKind::PacketTooBig,
        Icmpv6Types::TimeExceeded => reply.kind = ReplyKind::TimeExceeded,
        Icmpv6Types::ParameterProblem => reply.kind = ReplyKind::ParameterProblem,
        t => return Err(PacketError::NotExpected(format!("ICMPv6 type {}", t.0))),
    }
    // No view for ICMPv6 errors: the body after type/code/checksum holds
    // the RFC 4884 length (64-bit words, types 1 and 3), then the quote.
    let rest = m.payload();
    let words = if ty == Icmpv6Types::DestinationUnreachable || ty == Icmpv6Types::TimeExceeded {
        usize::from(rest[0]) * 8
    } else {
        0
    };
    let (original, ext) = split_extensions(&rest[4..], words);
    reply.quote = Some(quote_v6(original)?);
    reply.mpls = ext.map(mpls_entries).unwrap_or_default();
    Ok(reply)
}

fn quoted_l4(proto: IpNextHeaderProtocol, l4: &[u8]) -> Option<QuotedL4> {
    match proto {
        IpNextHeaderProtocols::Icmp | IpNextHeaderProtocols::Icmpv6 => {
            let e = EchoRequestPacket::new(l4)?;
            Some(QuotedL4::Icmp {
                checksum: e.get_checksum(),
                ident: e.get_identifier(),
                seq: e.get_sequence_number(),
            })
        }
        IpNextHeaderProtocols::Udp => {
            let u = UdpPacket::new(l4)?;
            Some(QuotedL4::Udp {
                sport: u.get_source(),
                dport: u.get_destination(),
                checksum: u.get_checksum(),
            })
        }
        IpNextHeaderProtocols::Tcp => {
            // TcpPacket needs its 20-byte header; an ICMPv4 error quotes 8.
            let t = TcpPacket::new(l4)?;
            Some(QuotedL4::Tcp {
                sport: t.get_source(),
                dport: t.get_destination(),
                seq: t.get_sequence(),
            })
        }
        _ => None,
    }
}

fn quote_v4(q: &[u8]) -> Result<Quote, PacketError> {
    let ip = ipv4_view("quoted IPv4 header", q)?;
    Ok(Quote {
        src: IpAddr::V4(ip.get_source()),
        dst: IpAddr::V4(ip.get_destination()),
        ttl: ip.get_ttl(),
        ip_id: Some(ip.get_identification()),
        l4: quoted_l4(ip.get_next_level_protocol(), ip.payload()),
    })
}

fn quote_v6(q: &[u8]) -> Result<Quote, PacketError> {
    let ip = Ipv6Packet::new(q).ok_or_else(|| truncated("quoted IPv6 header", 40, q.len()))?;
    if ip.get_version() != 6 {
        return Err(PacketError::BadVersion {
            what: "quoted IPv6 header",
            version: ip.get_version(),
        });
    }
    Ok(Quote {
        src: IpAddr::V6(ip.get_source()),
        dst: IpAddr::V6(ip.get_destination()),
        ttl: ip.get_hop_limit(),
        ip_id: None,
        l4: quoted_l4(ip.get_next_header(), ip.payload()),
    })
}

fn tcp_reply(from: IpAddr, ttl: Option<u8>, seg: &[u8]) -> Result<Reply, PacketError> {
    let t = TcpPacket::new(seg).ok_or_else(|| truncated("TCP header", 20, seg.len()))?;
    let off = usize::from(t.get_data_offset()) * 4;
    if off < 20 || off > seg.len() {
        return Err(PacketError::BadHeaderLength {
            what: "TCP header",
            len: off,
            got: seg.len(),
        });
    }
    let flags = t.get_flags();
    let kind = if flags & TcpFlags::RST != 0 {
        ReplyKind::TcpReset
    } else if flags & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN | TcpFlags::ACK {
        ReplyKind::TcpSynAck
    } else {
        return Err(PacketError::NotExpected(format!("TCP flags {flags:#04x}")));
    };
    Ok(Reply {
        kind,
        tcp: Some((t.get_source(), t.get_destination(), t.get_acknowledgement())),
        ..bare(from, ttl, 0, 0)
    })
}

/// `parse_tcp_v4` over pnet views.
pub fn parse_tcp_v4(packet: &[u8]) -> Result<Reply, PacketError> {
    let ip = ipv4_view("IPv4 header", packet)?;
    let proto = ip.get_next_level_protocol();
    if proto != IpNextHeaderProtocols::Tcp {
        return Err(PacketError::NotExpected(format!(
            "IPv4 protocol {} is not TCP",
            proto.0
        )));
    }
    tcp_reply(
        IpAddr::V4(ip.get_source()),
        Some(ip.get_ttl()),
        ip.payload(),
    )
}

/// `parse_tcp_v6` over pnet views.
pub fn parse_tcp_v6(
    segment: &[u8],
    from: Ipv6Addr,
    hop_limit: Option<u8>,
) -> Result<Reply, PacketError> {
    tcp_reply(IpAddr::V6(from), hop_limit, segment)
}

// ---- No pnet view: RFC 4884 extensions and RFC 4950 MPLS entries. ----
// Copied from agent/src/packet/parse.rs (private there).

fn ones_sum(data: &[u8]) -> u32 {
    let mut sum = 0u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u32::try_from(sum).unwrap_or(0xffff)
}

fn is_valid(data: &[u8]) -> bool {
    ones_sum(data) == 0xffff
}

fn split_extensions(body: &[u8], len: usize) -> (&[u8], Option<&[u8]>) {
    if len > 0 {
        if len <= body.len() {
            let ext = &body[len..];
            return (&body[..len], (ext.len() >= 4).then_some(ext));
        }
        return (body, None);
    }
    if body.len() >= 128 + 4 {
        let ext = &body[128..];
        if ext[0] >> 4 == 2 && is_valid(ext) {
            return (&body[..128], Some(ext));
        }
    }
    (body, None)
}

fn mpls_entries(ext: &[u8]) -> Vec<MplsEntry> {
    let be16 = |at: usize| u16::from_be_bytes([ext[at], ext[at + 1]]);
    let mut out = Vec::new();
    if ext.len() < 4 || ext[0] >> 4 != 2 {
        return out;
    }
    if be16(2) != 0 && !is_valid(ext) {
        return out;
    }
    let mut at = 4;
    while ext.len() >= at + 4 {
        let len = usize::from(be16(at));
        let (class, ctype) = (ext[at + 2], ext[at + 3]);
        if len < 4 || at + len > ext.len() {
            break;
        }
        if class == 1 && ctype == 1 {
            for e in ext[at + 4..at + len].chunks_exact(4) {
                let v = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
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

// ---- Building probes with pnet's mutable views. ----

const PAYLOAD_LEN: usize = 12;

/// The Paris trick with pnet's checksum: `unforced` is the checksum pnet
/// computes with the compensating word at zero; returns the word that
/// makes `target` the valid checksum. pnet has no way to ask for a
/// checksum value, only to compute one.
fn compensating_word(unforced: u16, target: u16) -> u16 {
    let mut sum = u32::from(!unforced) + u32::from(target);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0xffff)
}

fn l4_len(p: Protocol) -> usize {
    match p {
        Protocol::Icmp | Protocol::Udp => 8 + PAYLOAD_LEN,
        Protocol::Tcp => 20,
    }
}

/// Writes the transport message of `p` into `m`; `src`/`dst` give the
/// pseudo-header.
fn transport(p: &ProbeSpec, m: &mut [u8], src: IpAddr, dst: IpAddr) -> Option<()> {
    let sport = p.sport_base.wrapping_add(p.flow);
    match p.protocol {
        Protocol::Icmp => {
            if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
                let mut e = icmpv6::echo_request::MutableEchoRequestPacket::new(m)?;
                e.set_icmpv6_type(Icmpv6Types::EchoRequest);
                e.set_identifier(p.ident);
                e.set_sequence_number(p.seq);
                let c = icmpv6::checksum(&Icmpv6Packet::new(e.packet())?, &s, &d);
                let w = compensating_word(c, icmp_flow_checksum(p.flow));
                e.payload_mut()[0..2].copy_from_slice(&w.to_be_bytes());
                e.set_checksum(icmp_flow_checksum(p.flow));
            } else {
                let mut e = MutableEchoRequestPacket::new(m)?;
                e.set_icmp_type(IcmpTypes::EchoRequest);
                e.set_identifier(p.ident);
                e.set_sequence_number(p.seq);
                let c = icmp::checksum(&IcmpPacket::new(e.packet())?);
                let w = compensating_word(c, icmp_flow_checksum(p.flow));
                e.payload_mut()[0..2].copy_from_slice(&w.to_be_bytes());
                e.set_checksum(icmp_flow_checksum(p.flow));
            }
        }
        Protocol::Udp => {
            let len = m.len();
            let mut u = MutableUdpPacket::new(m)?;
            u.set_source(sport);
            u.set_destination(p.dport);
            u.set_length(u16::try_from(len).ok()?);
            let c = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => udp::ipv4_checksum(&u.to_immutable(), &s, &d),
                (IpAddr::V6(s), IpAddr::V6(d)) => udp::ipv6_checksum(&u.to_immutable(), &s, &d),
                _ => return None,
            };
            let w = compensating_word(c, p.seq);
            u.payload_mut()[0..2].copy_from_slice(&w.to_be_bytes());
            u.set_checksum(p.seq);
        }
        Protocol::Tcp => {
            let mut t = MutableTcpPacket::new(m)?;
            t.set_source(sport);
            t.set_destination(p.dport);
            t.set_sequence((u32::from(p.ident) << 16) | u32::from(p.seq));
            t.set_data_offset(5);
            t.set_flags(TcpFlags::SYN);
            t.set_window(64240);
            let c = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => tcp::ipv4_checksum(&t.to_immutable(), &s, &d),
                (IpAddr::V6(s), IpAddr::V6(d)) => tcp::ipv6_checksum(&t.to_immutable(), &s, &d),
                _ => return None,
            };
            t.set_checksum(c);
        }
    }
    Some(())
}

/// `build` over pnet's mutable views: one buffer, headers written in
/// place.
pub fn build(p: &ProbeSpec) -> Result<Vec<u8>, PacketError> {
    if p.seq == 0 || p.seq == u16::MAX {
        return Err(PacketError::BadProbe(format!(
            "probe number {} is reserved (1..=65534)",
            p.seq
        )));
    }
    if p.ttl == 0 {
        return Err(PacketError::BadProbe("TTL 0 is never sent".into()));
    }
    let l4 = l4_len(p.protocol);
    let fail = || PacketError::BadProbe("pnet refused a buffer".into());
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut buf = vec![0u8; 20 + l4];
            transport(p, &mut buf[20..], p.src, p.dst).ok_or_else(fail)?;
            let total = u16::try_from(buf.len()).map_err(|_| fail())?;
            let mut ip = MutableIpv4Packet::new(&mut buf).ok_or_else(fail)?;
            ip.set_version(4);
            ip.set_header_length(5);
            ip.set_total_length(total);
            ip.set_identification(p.seq);
            ip.set_flags(Ipv4Flags::DontFragment);
            ip.set_ttl(p.ttl);
            ip.set_next_level_protocol(match p.protocol {
                Protocol::Icmp => IpNextHeaderProtocols::Icmp,
                Protocol::Udp => IpNextHeaderProtocols::Udp,
                Protocol::Tcp => IpNextHeaderProtocols::Tcp,
            });
            ip.set_source(s);
            ip.set_destination(d);
            let c = ipv4::checksum(&ip.to_immutable());
            ip.set_checksum(c);
            Ok(buf)
        }
        (IpAddr::V6(_), IpAddr::V6(_)) => {
            let mut buf = vec![0u8; l4];
            transport(p, &mut buf, p.src, p.dst).ok_or_else(fail)?;
            Ok(buf)
        }
        _ => Err(PacketError::BadProbe(format!(
            "source {} and destination {} are of different families",
            p.src, p.dst
        ))),
    }
}
