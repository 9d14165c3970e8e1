//! Building probes: exact bytes, no I/O.
//!
//! Paris traceroute keeps every field a load balancer hashes constant for
//! all probes of one flow, and carries the probe's identity somewhere a
//! router quotes back in its ICMP error but does not hash:
//!
//! - ICMP echo: type, code, identifier and *checksum* are constant per flow
//!   (the checksum is forced to [`icmp_flow_checksum`] by a compensating
//!   payload word); the probe number is the sequence number.
//! - UDP: both ports are constant per flow; the probe number is carried in
//!   the UDP *checksum* (forced by a compensating payload word), which the
//!   ICMP quote includes.
//! - TCP SYN: both ports constant; the probe number is in the sequence
//!   number.
//!
//! IPv4 probes are whole IP packets (for a raw socket with `IP_HDRINCL`, so
//! the TTL and IP ID are ours); IPv6 probes are the transport message only
//! (the kernel writes the IPv6 header; the hop limit is set per send).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum::{finish, force_checksum, ones_sum, pseudo_header_sum};
use super::{PacketError, Protocol};

/// Length of the payload every probe carries (two bytes of it are the
/// compensating word).
pub const PAYLOAD_LEN: usize = 12;
/// Base of the forced ICMP checksum; flow `n` uses `ICMP_CHECKSUM_BASE + n`.
pub const ICMP_CHECKSUM_BASE: u16 = 0x5a00;
/// Length of the IPv4 header we write (no options).
pub const IPV4_HEADER_LEN: usize = 20;
/// IANA protocol numbers.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// The constant ICMP checksum of Paris flow `flow`.
pub fn icmp_flow_checksum(flow: u16) -> u16 {
    ICMP_CHECKSUM_BASE.wrapping_add(flow)
}

/// Everything that identifies one probe on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSpec {
    pub protocol: Protocol,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// The agent's identifier: ICMP identifier; also part of TCP sequence.
    pub ident: u16,
    /// Paris flow number (0 = the first flow of a trace).
    pub flow: u16,
    /// Source port of flow 0 (UDP/TCP); flow `n` uses `sport_base + n`.
    pub sport_base: u16,
    /// Destination port (UDP/TCP).
    pub dport: u16,
    /// Probe number, 1..=65534: quoted back by routers, never hashed.
    pub seq: u16,
}

impl ProbeSpec {
    /// Source port of this probe's flow.
    pub fn sport(&self) -> u16 {
        self.sport_base.wrapping_add(self.flow)
    }

    /// TCP sequence number of this probe: the identifier and probe number.
    pub fn tcp_seq(&self) -> u32 {
        (u32::from(self.ident) << 16) | u32::from(self.seq)
    }
}

/// Builds the bytes to send for `p`: an IPv4 packet, or an IPv6 transport
/// message.
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
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (proto, l4) = transport(p, &v4_pseudo(s, d, p.protocol))?;
            Ok(ipv4_packet(p, s, d, proto, &l4))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let (_, l4) = transport(p, &v6_pseudo(s, d, p.protocol))?;
            Ok(l4)
        }
        _ => Err(PacketError::BadProbe(format!(
            "source {} and destination {} are of different families",
            p.src, p.dst
        ))),
    }
}

/// The pseudo-header sum used by a transport checksum (ICMPv4 has none).
#[derive(Debug, Clone, Copy)]
struct Pseudo {
    sum: u32,
    v6: bool,
}

fn v4_pseudo(s: Ipv4Addr, d: Ipv4Addr, proto: Protocol) -> Pseudo {
    let sum = match proto {
        Protocol::Icmp => 0,
        _ => pseudo_header_sum(&s.octets(), &d.octets(), l4_proto(proto, false)),
    };
    Pseudo { sum, v6: false }
}

fn v6_pseudo(s: Ipv6Addr, d: Ipv6Addr, proto: Protocol) -> Pseudo {
    Pseudo {
        sum: pseudo_header_sum(&s.octets(), &d.octets(), l4_proto(proto, true)),
        v6: true,
    }
}

fn l4_proto(proto: Protocol, v6: bool) -> u8 {
    match (proto, v6) {
        (Protocol::Icmp, false) => PROTO_ICMP,
        (Protocol::Icmp, true) => PROTO_ICMPV6,
        (Protocol::Udp, _) => PROTO_UDP,
        (Protocol::Tcp, _) => PROTO_TCP,
    }
}

/// The transport message; the pseudo-header length field is added here
/// because it depends on the message length.
fn transport(p: &ProbeSpec, pseudo: &Pseudo) -> Result<(u8, Vec<u8>), PacketError> {
    let proto = l4_proto(p.protocol, pseudo.v6);
    let msg = match p.protocol {
        Protocol::Icmp => {
            // type, code, checksum, identifier, sequence, payload
            let mut m = vec![0u8; 8 + PAYLOAD_LEN];
            m[0] = if pseudo.v6 { 128 } else { 8 };
            m[4..6].copy_from_slice(&p.ident.to_be_bytes());
            m[6..8].copy_from_slice(&p.seq.to_be_bytes());
            let base = with_length(
                pseudo.sum,
                m.len(),
                pseudo.v6 || p.protocol != Protocol::Icmp,
            );
            force_checksum(&mut m, base, 2, 8, icmp_flow_checksum(p.flow));
            m
        }
        Protocol::Udp => {
            let len = 8 + PAYLOAD_LEN;
            let mut m = vec![0u8; len];
            m[0..2].copy_from_slice(&p.sport().to_be_bytes());
            m[2..4].copy_from_slice(&p.dport.to_be_bytes());
            m[4..6].copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
            let base = with_length(pseudo.sum, len, true);
            force_checksum(&mut m, base, 6, 8, p.seq);
            m
        }
        Protocol::Tcp => {
            // A bare SYN: 20-byte header, no options, no payload.
            let mut m = vec![0u8; 20];
            m[0..2].copy_from_slice(&p.sport().to_be_bytes());
            m[2..4].copy_from_slice(&p.dport.to_be_bytes());
            m[4..8].copy_from_slice(&p.tcp_seq().to_be_bytes());
            m[12] = 5 << 4; // data offset: 5 words
            m[13] = 0x02; // SYN
            m[14..16].copy_from_slice(&64240u16.to_be_bytes()); // window
            let sum = finish(ones_sum(&m, with_length(pseudo.sum, m.len(), true)));
            m[16..18].copy_from_slice(&sum.to_be_bytes());
            m
        }
    };
    Ok((proto, msg))
}

/// Adds the upper-layer length of the pseudo-header, where there is one.
fn with_length(sum: u32, len: usize, has_pseudo: bool) -> u32 {
    if has_pseudo {
        sum + u32::try_from(len).unwrap_or(u32::MAX)
    } else {
        sum
    }
}

fn ipv4_packet(p: &ProbeSpec, s: Ipv4Addr, d: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = IPV4_HEADER_LEN + l4.len();
    let mut ip = vec![0u8; IPV4_HEADER_LEN];
    ip[0] = 0x45; // version 4, IHL 5
    ip[2..4].copy_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
    // The IP ID is not hashed by load balancers: it repeats the probe
    // number so a quote can be matched even when the transport part is cut.
    ip[4..6].copy_from_slice(&p.seq.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = p.ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&s.octets());
    ip[16..20].copy_from_slice(&d.octets());
    let sum = finish(ones_sum(&ip, 0));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(l4);
    ip
}
