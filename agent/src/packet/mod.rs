//! Probe packets: building them ([`build`]) and parsing what comes back
//! ([`parse`]). Pure functions over bytes, no I/O, unit-tested on exact
//! bytes; the socket layer hands bytes in and out.

pub mod build;
pub mod checksum;
pub mod parse;

pub use build::{build, icmp_flow_checksum, ProbeSpec};
pub use parse::{
    parse_icmpv4, parse_icmpv6, parse_tcp_v4, parse_tcp_v6, MplsEntry, Quote, QuotedL4, Reply,
    ReplyKind, Unreach,
};

/// Probe protocol: the wire schema's, one definition for agent and
/// collector.
pub use tumen_wire::Protocol;

/// A packet that cannot be built or parsed; says what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("{what}: need {need} bytes, got {got}")]
    Truncated {
        what: &'static str,
        need: usize,
        got: usize,
    },
    #[error("{what}: IP version {version}")]
    BadVersion { what: &'static str, version: u8 },
    #[error("{what}: header length {len} does not fit (min 20, packet {got} bytes)")]
    BadHeaderLength {
        what: &'static str,
        len: usize,
        got: usize,
    },
    #[error("{0} checksum does not check out")]
    BadChecksum(&'static str),
    #[error("not a reply to a probe: {0}")]
    NotExpected(String),
    #[error("cannot build probe: {0}")]
    BadProbe(String),
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};

    use super::checksum::{is_valid, ones_sum, pseudo_header_sum};
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn spec(protocol: Protocol, ttl: u8, seq: u16) -> ProbeSpec {
        ProbeSpec {
            protocol,
            src: "192.0.2.1".parse().expect("ip"),
            dst: "198.18.176.15".parse().expect("ip"),
            ttl,
            ident: 0x1234,
            flow: 0,
            sport_base: 33000,
            dport: 33434,
            seq,
        }
    }

    // Expected bytes computed independently (Python struct + RFC 1071).
    #[test]
    fn icmp_v4_echo_exact_bytes() {
        let got = build(&spec(Protocol::Icmp, 5, 1)).expect("build");
        assert_eq!(
            got,
            hex("450000280001400005013db1c0000201c612b00f08005a00123400018bca00000000000000000000")
        );
    }

    #[test]
    fn udp_v4_exact_bytes_carry_the_probe_number_in_the_checksum() {
        let got = build(&spec(Protocol::Udp, 3, 7)).expect("build");
        assert_eq!(
            got,
            hex("450000280007400003113f9bc0000201c612b00f80e8829a00140007c41800000000000000000000")
        );
    }

    #[test]
    fn tcp_v4_syn_exact_bytes() {
        let mut p = spec(Protocol::Tcp, 9, 2);
        p.dport = 80;
        let got = build(&p).expect("build");
        assert_eq!(
            got,
            hex("4500002800024000090639abc0000201c612b00f80e8005012340002000000005002faf0e95f0000")
        );
    }

    #[test]
    fn paris_icmp_flow_fields_stay_constant_while_the_probe_number_changes() {
        for v6 in [false, true] {
            let mut p = spec(Protocol::Icmp, 1, 1);
            if v6 {
                p.src = "2001:db8:1:1::1".parse().expect("ip");
                p.dst = "2001:db8:176::f".parse().expect("ip");
            }
            for flow in [0u16, 1, 7] {
                p.flow = flow;
                for seq in [1u16, 2, 300, 65534] {
                    p.seq = seq;
                    let b = build(&p).expect("build");
                    let icmp = if v6 { &b[..] } else { &b[20..] };
                    // type, code and checksum: what a load balancer hashes
                    assert_eq!(&icmp[0..2], if v6 { &[128, 0] } else { &[8, 0] });
                    assert_eq!(
                        u16::from_be_bytes([icmp[2], icmp[3]]),
                        icmp_flow_checksum(flow)
                    );
                    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), seq);
                    let init = if v6 {
                        let (IpAddr::V6(s), IpAddr::V6(d)) = (p.src, p.dst) else {
                            unreachable!()
                        };
                        pseudo_header_sum(&s.octets(), &d.octets(), 58) + 20
                    } else {
                        0
                    };
                    assert!(is_valid(icmp, init), "flow {flow} seq {seq}");
                }
            }
        }
    }

    #[test]
    fn paris_udp_ports_constant_checksum_is_the_probe_number() {
        let mut p = spec(Protocol::Udp, 1, 1);
        p.src = "2001:db8:1:1::1".parse().expect("ip");
        p.dst = "2001:db8:176::f".parse().expect("ip");
        p.flow = 3;
        for seq in [1u16, 2, 9999, 65534] {
            p.seq = seq;
            let b = build(&p).expect("build");
            assert_eq!(u16::from_be_bytes([b[0], b[1]]), 33003);
            assert_eq!(u16::from_be_bytes([b[2], b[3]]), 33434);
            assert_eq!(u16::from_be_bytes([b[6], b[7]]), seq);
            let (IpAddr::V6(s), IpAddr::V6(d)) = (p.src, p.dst) else {
                unreachable!()
            };
            assert!(is_valid(
                &b,
                pseudo_header_sum(&s.octets(), &d.octets(), 17) + 20
            ));
        }
    }

    #[test]
    fn reserved_probe_numbers_ttl_zero_and_mixed_families_are_refused() {
        for bad in [0u16, 65535] {
            let e = build(&spec(Protocol::Udp, 1, bad)).expect_err("reserved");
            assert!(e.to_string().contains("reserved"), "{e}");
        }
        assert!(build(&spec(Protocol::Icmp, 0, 1)).is_err());
        let mut p = spec(Protocol::Icmp, 1, 1);
        p.dst = "2001:db8::1".parse().expect("ip");
        assert!(build(&p)
            .expect_err("families")
            .to_string()
            .contains("different families"));
    }

    /// A router's time-exceeded for `probe`, as an IPv4 raw socket sees it,
    /// optionally with an RFC 4884 length and an MPLS extension.
    fn time_exceeded_v4(probe: &[u8], rfc4884: bool, mpls: &[u32]) -> Vec<u8> {
        let mut quoted = probe.to_vec();
        quoted[8] = 1; // TTL as it reached the router
        let mut body = quoted[..28.min(quoted.len())].to_vec();
        let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
        if !mpls.is_empty() {
            body.resize(128, 0);
            if rfc4884 {
                icmp[5] = 32; // 128 bytes in 32-bit words
            }
            let mut ext = vec![0x20, 0, 0, 0];
            let obj_len = u16::try_from(4 + 4 * mpls.len()).expect("len");
            ext.extend_from_slice(&obj_len.to_be_bytes());
            ext.extend_from_slice(&[1, 1]);
            for e in mpls {
                ext.extend_from_slice(&e.to_be_bytes());
            }
            let c = checksum::finish(ones_sum(&ext, 0));
            ext[2..4].copy_from_slice(&c.to_be_bytes());
            body.extend_from_slice(&ext);
        }
        icmp.extend_from_slice(&body);
        let c = checksum::finish(ones_sum(&icmp, 0));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let total = u16::try_from(20 + icmp.len()).expect("len");
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 250, 1, 0, 0, 198, 51, 100, 2, 192, 0, 2, 1,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&icmp);
        ip
    }

    #[test]
    fn time_exceeded_quotes_the_probe_back() {
        for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
            let p = spec(proto, 4, 77);
            let probe = build(&p).expect("build");
            let r = parse_icmpv4(&time_exceeded_v4(&probe, false, &[])).expect("parse");
            assert_eq!(r.kind, ReplyKind::TimeExceeded);
            assert_eq!(r.from, "198.51.100.2".parse::<IpAddr>().expect("ip"));
            assert_eq!(r.reply_ttl, Some(250));
            let q = r.quote.expect("quote");
            assert_eq!((q.dst, q.ttl, q.ip_id), (p.dst, 1, Some(77)));
            let want = match proto {
                Protocol::Icmp => QuotedL4::Icmp {
                    ident: 0x1234,
                    seq: 77,
                    checksum: icmp_flow_checksum(0),
                },
                Protocol::Udp => QuotedL4::Udp {
                    sport: 33000,
                    dport: 33434,
                    checksum: 77,
                },
                Protocol::Tcp => QuotedL4::Tcp {
                    sport: 33000,
                    dport: 33434,
                    seq: 0x1234_004d,
                },
            };
            assert_eq!(q.l4, Some(want));
            assert!(r.mpls.is_empty());
        }
    }

    #[test]
    fn mpls_label_stack_with_and_without_the_rfc4884_length() {
        let probe = build(&spec(Protocol::Udp, 6, 5)).expect("build");
        // label 16001, TC 0, S=0, TTL 1; label 24, TC 5, S=1, TTL 255
        let stack = [(16001 << 12) | 1, (24 << 12) | (5 << 9) | 0x100 | 255];
        for rfc4884 in [true, false] {
            let r = parse_icmpv4(&time_exceeded_v4(&probe, rfc4884, &stack)).expect("parse");
            assert_eq!(
                r.mpls,
                vec![
                    MplsEntry {
                        label: 16001,
                        tc: 0,
                        bottom: false,
                        ttl: 1
                    },
                    MplsEntry {
                        label: 24,
                        tc: 5,
                        bottom: true,
                        ttl: 255
                    },
                ],
                "rfc4884 length present: {rfc4884}"
            );
            assert_eq!(
                r.quote.and_then(|q| q.l4).map(|l| l.protocol()),
                Some(Protocol::Udp)
            );
        }
    }

    #[test]
    fn echo_reply_and_unreachable_codes() {
        let mut echo = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 60, 1, 0, 0, 198, 18, 176, 15, 192, 0, 2, 1,
        ];
        let mut icmp = vec![0, 0, 0, 0, 0x12, 0x34, 0, 9];
        let c = checksum::finish(ones_sum(&icmp, 0));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        echo.extend_from_slice(&icmp);
        let r = parse_icmpv4(&echo).expect("echo");
        assert_eq!((r.kind, r.echo), (ReplyKind::EchoReply, Some((0x1234, 9))));

        for (code, want) in [(13u8, "!X"), (0, "!N"), (1, "!H"), (2, "!P"), (4, "!<4>")] {
            let probe = build(&spec(Protocol::Udp, 6, 5)).expect("build");
            let mut pkt = time_exceeded_v4(&probe, false, &[]);
            pkt[20] = 3;
            pkt[21] = code;
            pkt[22..24].copy_from_slice(&[0, 0]);
            let c = checksum::finish(ones_sum(&pkt[20..], 0));
            pkt[22..24].copy_from_slice(&c.to_be_bytes());
            let r = parse_icmpv4(&pkt).expect("unreachable");
            let ReplyKind::Unreachable(u) = r.kind else {
                panic!("{r:?}")
            };
            assert_eq!(u.annotation().as_deref(), Some(want));
        }
    }

    #[test]
    fn icmpv6_admin_prohibited_quotes_the_probe() {
        let mut p = spec(Protocol::Udp, 3, 42);
        p.src = "2001:db8:1:1::1".parse().expect("ip");
        p.dst = "2001:db8:176::f".parse().expect("ip");
        let l4 = build(&p).expect("build");
        let mut inner = vec![0x60, 0, 0, 0];
        inner.extend_from_slice(&u16::try_from(l4.len()).expect("len").to_be_bytes());
        inner.extend_from_slice(&[17, 1]);
        let (IpAddr::V6(s), IpAddr::V6(d)) = (p.src, p.dst) else {
            unreachable!()
        };
        inner.extend_from_slice(&s.octets());
        inner.extend_from_slice(&d.octets());
        inner.extend_from_slice(&l4);
        let mut msg = vec![1, 1, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&inner);
        let from: Ipv6Addr = "2001:db8:188:4::1".parse().expect("ip");
        let r = parse_icmpv6(&msg, from, Some(61)).expect("parse");
        assert_eq!(r.kind, ReplyKind::Unreachable(Unreach::AdminProhibited));
        let q = r.quote.expect("quote");
        assert_eq!((q.dst, q.ttl, q.ip_id), (p.dst, 1, None));
        assert_eq!(
            q.l4,
            Some(QuotedL4::Udp {
                sport: 33000,
                dport: 33434,
                checksum: 42
            })
        );
    }

    #[test]
    fn tcp_rst_and_syn_ack() {
        let mut pkt = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 60, 6, 0, 0, 198, 18, 176, 15, 192, 0, 2, 1,
        ];
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&80u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&33000u16.to_be_bytes());
        tcp[8..12].copy_from_slice(&0x1234_0003u32.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x14; // RST+ACK
        pkt.extend_from_slice(&tcp);
        let r = parse_tcp_v4(&pkt).expect("rst");
        assert_eq!(
            (r.kind, r.tcp),
            (ReplyKind::TcpReset, Some((80, 33000, 0x1234_0003)))
        );
        pkt[33] = 0x12; // SYN+ACK
        assert_eq!(
            parse_tcp_v4(&pkt).expect("synack").kind,
            ReplyKind::TcpSynAck
        );
        pkt[33] = 0x10; // bare ACK: not an answer to a SYN probe
        assert!(parse_tcp_v4(&pkt).is_err());
    }

    #[test]
    fn malformed_input_gives_precise_errors() {
        assert_eq!(
            parse_icmpv4(&[0x45, 0, 0]).expect_err("short").to_string(),
            "IPv4 header: need 20 bytes, got 3"
        );
        let mut v6 = [0u8; 20];
        v6[0] = 0x60;
        assert_eq!(
            parse_icmpv4(&v6).expect_err("v6").to_string(),
            "IPv4 header: IP version 6"
        );
        let mut ihl = [0u8; 20];
        ihl[0] = 0x4f;
        assert!(parse_icmpv4(&ihl)
            .expect_err("ihl")
            .to_string()
            .contains("header length 60"));
        let probe = build(&spec(Protocol::Icmp, 1, 1)).expect("build");
        let mut bad = time_exceeded_v4(&probe, false, &[]);
        bad[30] ^= 0xff;
        assert_eq!(
            parse_icmpv4(&bad).expect_err("csum").to_string(),
            "ICMP checksum does not check out"
        );
        let from: Ipv6Addr = "2001:db8::1".parse().expect("ip");
        assert!(parse_icmpv6(&[3, 0, 0, 0, 0, 0, 0, 0, 0x60], from, None)
            .expect_err("short quote")
            .to_string()
            .contains("quoted IPv6 header: need 40 bytes, got 1"));
    }

    /// A tiny deterministic generator for the mutation tests.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn no_input_makes_a_parser_panic() {
        let mut seeds = Vec::new();
        for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
            let probe = build(&spec(proto, 4, 77)).expect("build");
            seeds.push(time_exceeded_v4(&probe, false, &[]));
            seeds.push(time_exceeded_v4(&probe, true, &[(16001 << 12) | 0x1ff]));
            seeds.push(time_exceeded_v4(&probe, false, &[16001 << 12, 0x100]));
        }
        let from: Ipv6Addr = "2001:db8::1".parse().expect("ip");
        let all = |d: &[u8]| {
            let _ = parse_icmpv4(d);
            let _ = parse_tcp_v4(d);
            let _ = parse_icmpv6(d, from, Some(1));
            let _ = parse_tcp_v6(d, from, None);
            if d.len() > 20 {
                let _ = parse_icmpv6(&d[20..], from, None);
            }
        };
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for seed in &seeds {
            for cut in 0..=seed.len() {
                all(&seed[..cut]);
            }
            for i in 0..seed.len() {
                for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                    let mut m = seed.clone();
                    m[i] = v;
                    all(&m);
                }
            }
            for _ in 0..2000 {
                let mut m = seed.clone();
                for _ in 0..(xorshift(&mut rng) % 4 + 1) {
                    let r = xorshift(&mut rng);
                    let i = usize::try_from(r % m.len() as u64).expect("index");
                    m[i] = u8::try_from(r >> 56).expect("byte");
                }
                all(&m);
            }
        }
        for _ in 0..5000 {
            let len = usize::try_from(xorshift(&mut rng) % 200).expect("len");
            let d: Vec<u8> = (0..len)
                .map(|_| u8::try_from(xorshift(&mut rng) >> 56).expect("byte"))
                .collect();
            all(&d);
        }
    }
}
