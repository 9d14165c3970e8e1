//! Today's hand-written packet layer against the same functions over
//! `pnet_packet` 0.35 views (`pnet_views/`), side by side (issue 14; the
//! figures and the decision are in docs/pnet.md).
//!
//! Run: `cargo bench -p tumen-agent --bench packet`. It prints:
//! 1. correctness (deterministic, under a second): both parsers, each call
//!    under `catch_unwind`, through all four parsers as the fuzz target
//!    calls them, over every file of the fuzz corpus
//!    (`agent/fuzz/corpus/parse_reply`), the unit tests' vectors, the unit
//!    tests' mutations of them, and 600 random mutations of each corpus
//!    file; agreements, disagreements by class with their cause and one
//!    example each, and panics; then both builders against the unit tests'
//!    exact bytes and against each other;
//! 2. speed: criterion, `hand` and `pnet` on the same inputs, a table of
//!    medians and ratios read back from criterion's estimates, and the
//!    same cases timed in alternation (a check that load from other
//!    processes on a shared machine cannot skew the ratios).

mod pnet_views;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput};
use tumen_agent::packet::{self as hand, PacketError, ProbeSpec, Protocol, Reply};

// ---------------------------------------------------------------------
// Inputs: the unit tests' vectors, rebuilt (agent/src/packet/mod.rs).

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

fn v6(mut p: ProbeSpec) -> ProbeSpec {
    p.src = "2001:db8:1:1::1".parse().expect("ip");
    p.dst = "2001:db8:176::f".parse().expect("ip");
    p
}

fn ones_sum(data: &[u8]) -> u32 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

fn put_checksum(m: &mut [u8], at: usize) {
    m[at..at + 2].copy_from_slice(&[0, 0]);
    let c = !u16::try_from(ones_sum(m)).expect("folded");
    m[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// A router's time-exceeded for `probe` as an IPv4 raw socket sees it,
/// optionally with an RFC 4884 length and an MPLS extension (the unit
/// tests' `time_exceeded_v4`).
fn time_exceeded_v4(probe: &[u8], rfc4884: bool, mpls: &[u32]) -> Vec<u8> {
    let mut quoted = probe.to_vec();
    quoted[8] = 1;
    let mut body = quoted[..28.min(quoted.len())].to_vec();
    let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
    if !mpls.is_empty() {
        body.resize(128, 0);
        if rfc4884 {
            icmp[5] = 32;
        }
        let mut ext = vec![0x20, 0, 0, 0];
        let obj_len = u16::try_from(4 + 4 * mpls.len()).expect("len");
        ext.extend_from_slice(&obj_len.to_be_bytes());
        ext.extend_from_slice(&[1, 1]);
        for e in mpls {
            ext.extend_from_slice(&e.to_be_bytes());
        }
        put_checksum(&mut ext, 2);
        body.extend_from_slice(&ext);
    }
    icmp.extend_from_slice(&body);
    put_checksum(&mut icmp, 2);
    let total = u16::try_from(20 + icmp.len()).expect("len");
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 250, 1, 0, 0, 198, 51, 100, 2, 192, 0, 2, 1,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

fn unreachable_v4(code: u8) -> Vec<u8> {
    let probe = hand::build(&spec(Protocol::Udp, 6, 5)).expect("build");
    let mut pkt = time_exceeded_v4(&probe, false, &[]);
    pkt[20] = 3;
    pkt[21] = code;
    put_checksum(&mut pkt[20..], 2);
    pkt
}

fn echo_reply_v4() -> Vec<u8> {
    let mut echo = vec![
        0x45, 0, 0, 28, 0, 0, 0, 0, 60, 1, 0, 0, 198, 18, 176, 15, 192, 0, 2, 1,
    ];
    let mut icmp = vec![0, 0, 0, 0, 0x12, 0x34, 0, 9];
    put_checksum(&mut icmp, 2);
    echo.extend_from_slice(&icmp);
    echo
}

/// An ICMPv6 error of `ty`/`code` quoting a UDP probe (the unit tests'
/// admin-prohibited message when `ty` is 1).
fn error_v6(ty: u8, code: u8) -> Vec<u8> {
    let p = v6(spec(Protocol::Udp, 3, 42));
    let l4 = hand::build(&p).expect("build");
    let mut inner = vec![0x60, 0, 0, 0];
    inner.extend_from_slice(&u16::try_from(l4.len()).expect("len").to_be_bytes());
    inner.extend_from_slice(&[17, 1]);
    let (IpAddr::V6(s), IpAddr::V6(d)) = (p.src, p.dst) else {
        unreachable!()
    };
    inner.extend_from_slice(&s.octets());
    inner.extend_from_slice(&d.octets());
    inner.extend_from_slice(&l4);
    let mut msg = vec![ty, code, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&inner);
    msg
}

fn tcp_v4(flags: u8) -> Vec<u8> {
    let mut pkt = vec![
        0x45, 0, 0, 40, 0, 0, 0, 0, 60, 6, 0, 0, 198, 18, 176, 15, 192, 0, 2, 1,
    ];
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&80u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&33000u16.to_be_bytes());
    tcp[8..12].copy_from_slice(&0x1234_0003u32.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = flags;
    pkt.extend_from_slice(&tcp);
    pkt
}

const MPLS_STACK: [u32; 2] = [(16001 << 12) | 1, (24 << 12) | (5 << 9) | 0x100 | 255];

/// Every reply the unit tests parse, named (plus one extra, marked).
fn vectors() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
        let probe = hand::build(&spec(proto, 4, 77)).expect("build");
        v.push((
            format!("te_{proto:?}"),
            time_exceeded_v4(&probe, false, &[]),
        ));
    }
    let probe = hand::build(&spec(Protocol::Udp, 6, 5)).expect("build");
    v.push((
        "te_mpls_rfc4884".into(),
        time_exceeded_v4(&probe, true, &MPLS_STACK),
    ));
    v.push((
        "te_mpls_compat".into(),
        time_exceeded_v4(&probe, false, &MPLS_STACK),
    ));
    v.push(("echo_reply".into(), echo_reply_v4()));
    for code in [13u8, 0, 1, 2, 4] {
        v.push((format!("unreach_code_{code}"), unreachable_v4(code)));
    }
    v.push(("v6_unreach_admin".into(), error_v6(1, 1)));
    v.push(("v6_te".into(), error_v6(3, 0)));
    v.push(("tcp_rst".into(), tcp_v4(0x14)));
    v.push(("tcp_synack".into(), tcp_v4(0x12)));
    v.push(("tcp_ack".into(), tcp_v4(0x10)));
    v.push(("short".into(), vec![0x45, 0, 0]));
    let mut ver6 = vec![0u8; 20];
    ver6[0] = 0x60;
    v.push(("version_6".into(), ver6));
    let mut ihl = vec![0u8; 20];
    ihl[0] = 0x4f;
    v.push(("ihl_60".into(), ihl));
    let probe = hand::build(&spec(Protocol::Icmp, 1, 1)).expect("build");
    let mut bad = time_exceeded_v4(&probe, false, &[]);
    bad[30] ^= 0xff;
    v.push(("bad_checksum".into(), bad));
    v.push(("v6_short_quote".into(), vec![3, 0, 0, 0, 0, 0, 0, 0, 0x60]));
    // Not a unit-test vector: an echo reply whose checksum is 0xffff, the
    // other zero of one's complement (RFC 1071 verification and the Linux
    // kernel accept both).
    let mut minus_zero = echo_reply_v4();
    minus_zero[24..28].copy_from_slice(&[0x12, 0x34, 0xed, 0xcb]);
    minus_zero[22..24].copy_from_slice(&[0xff, 0xff]);
    v.push(("extra_echo_checksum_ffff".into(), minus_zero));
    v
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The unit test `no_input_makes_a_parser_panic`'s inputs: its seeds cut
/// at every length, every byte set to 5 values, 2,000 random 1-4 byte
/// mutations per seed, and 5,000 random strings.
fn mutations() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
        let probe = hand::build(&spec(proto, 4, 77)).expect("build");
        seeds.push(time_exceeded_v4(&probe, false, &[]));
        seeds.push(time_exceeded_v4(&probe, true, &[(16001 << 12) | 0x1ff]));
        seeds.push(time_exceeded_v4(&probe, false, &[16001 << 12, 0x100]));
    }
    let mut out = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for seed in &seeds {
        for cut in 0..=seed.len() {
            out.push(seed[..cut].to_vec());
        }
        for i in 0..seed.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut m = seed.clone();
                m[i] = v;
                out.push(m);
            }
        }
        for _ in 0..2000 {
            let mut m = seed.clone();
            for _ in 0..(xorshift(&mut rng) % 4 + 1) {
                let r = xorshift(&mut rng);
                let i = usize::try_from(r % m.len() as u64).expect("index");
                m[i] = u8::try_from(r >> 56).expect("byte");
            }
            out.push(m);
        }
    }
    for _ in 0..5000 {
        let len = usize::try_from(xorshift(&mut rng) % 200).expect("len");
        out.push(
            (0..len)
                .map(|_| u8::try_from(xorshift(&mut rng) >> 56).expect("byte"))
                .collect(),
        );
    }
    out
}

/// 600 random variants of every corpus file (1-8 bytes set at random,
/// then a cut at a random length one time in four): more inputs to look
/// for panics with, since pnet has had out-of-bounds panics.
fn corpus_mutations(files: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::new();
    for (_, f) in files.iter().filter(|(_, f)| !f.is_empty()) {
        for _ in 0..600 {
            let mut m = f.clone();
            for _ in 0..(xorshift(&mut rng) % 8 + 1) {
                let r = xorshift(&mut rng);
                let i = usize::try_from(r % m.len() as u64).expect("index");
                m[i] = u8::try_from(r >> 56).expect("byte");
            }
            let r = xorshift(&mut rng);
            if r % 4 == 0 {
                m.truncate(usize::try_from((r >> 8) % (m.len() as u64 + 1)).expect("cut"));
            }
            out.push(m);
        }
    }
    out
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_reply");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------
// Correctness.

type Outcome = Result<Result<Reply, PacketError>, String>;

fn run(f: impl FnOnce() -> Result<Reply, PacketError>) -> Outcome {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        e.downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| e.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}

fn err_key(e: &PacketError) -> String {
    match e {
        PacketError::Truncated { what, .. } => format!("Truncated({what})"),
        PacketError::BadVersion { what, .. } => format!("BadVersion({what})"),
        PacketError::BadHeaderLength { what, .. } => format!("BadHeaderLength({what})"),
        PacketError::BadChecksum(w) => format!("BadChecksum({w})"),
        PacketError::NotExpected(_) => "NotExpected".into(),
        PacketError::BadProbe(_) => "BadProbe".into(),
    }
}

/// The fields in which two parsed replies differ.
fn differing_fields(a: &Reply, b: &Reply) -> String {
    let mut d = Vec::new();
    if (a.from, a.reply_ttl, a.kind, a.icmp_type, a.icmp_code)
        != (b.from, b.reply_ttl, b.kind, b.icmp_type, b.icmp_code)
    {
        d.push("header".to_string());
    }
    match (&a.quote, &b.quote) {
        (Some(qa), Some(qb)) => {
            if (qa.src, qa.dst, qa.ttl, qa.ip_id) != (qb.src, qb.dst, qb.ttl, qb.ip_id) {
                d.push("quote.ip".into());
            }
            match (qa.l4, qb.l4) {
                (x, y) if x == y => {}
                (Some(x), None) => d.push(format!("quote.l4 ({:?} only by hand)", x.protocol())),
                (None, Some(y)) => d.push(format!("quote.l4 ({:?} only by pnet)", y.protocol())),
                _ => d.push("quote.l4 values".into()),
            }
        }
        (qa, qb) if qa == qb => {}
        _ => d.push("quote presence".into()),
    }
    if a.echo != b.echo {
        d.push("echo".into());
    }
    if a.tcp != b.tcp {
        d.push("tcp".into());
    }
    if a.mpls != b.mpls {
        d.push("mpls".into());
    }
    d.join(", ")
}

/// None when both agree on the result (the same reply, or the same
/// error); otherwise the class of the difference.
fn classify(h: &Outcome, p: &Outcome) -> Option<String> {
    Some(match (h, p) {
        (Err(m), _) => format!("hand PANICS: {m}"),
        (_, Err(m)) => format!("pnet panics: {m}"),
        (Ok(a), Ok(b)) if a == b => return None,
        (Ok(Ok(a)), Ok(Ok(b))) => format!("both accept, differ in {}", differing_fields(a, b)),
        (Ok(Ok(_)), Ok(Err(e))) => format!("hand accepts, pnet rejects: {}", err_key(e)),
        (Ok(Err(e)), Ok(Ok(_))) => format!("hand rejects ({}), pnet accepts", err_key(e)),
        (Ok(Err(a)), Ok(Err(b))) if err_key(a) == err_key(b) => {
            format!("both reject, same error, other figures: {}", err_key(a))
        }
        (Ok(Err(a)), Ok(Err(b))) => {
            format!("both reject, other error: {} / {}", err_key(a), err_key(b))
        }
    })
}

fn brief(o: &Outcome) -> String {
    match o {
        Err(m) => format!("PANIC {m}"),
        Ok(Err(e)) => format!("Err({e})"),
        Ok(Ok(r)) => {
            let mut s = format!("Ok({:?}", r.kind);
            if let Some(q) = r.quote {
                s += &format!(", quote ttl {} id {:?} l4 {:?}", q.ttl, q.ip_id, q.l4);
            }
            if let Some(e) = r.echo {
                s += &format!(", echo {e:?}");
            }
            if let Some(t) = r.tcp {
                s += &format!(", tcp {t:?}");
            }
            if !r.mpls.is_empty() {
                s += &format!(", {} mpls", r.mpls.len());
            }
            s + ")"
        }
    }
}

fn hex_of(d: &[u8]) -> String {
    let s: String = d.iter().take(72).map(|b| format!("{b:02x}")).collect();
    if d.len() > 72 {
        format!("{s}... ({} bytes)", d.len())
    } else {
        format!("{s} ({} bytes)", d.len())
    }
}

fn be16(d: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *d.get(at)?,
        *d.get(at + 1)?,
    ])))
}

/// True when `d` is an IPv4 packet whose total length is below its
/// buffer: pnet's `Ipv4Packet::payload()` stops at the total length,
/// today's code at the buffer. Linux trims what a raw socket receives to
/// the total length (and drops shorter packets), so real input never is.
fn short_total_length(d: &[u8]) -> bool {
    d.first().map(|b| b >> 4) == Some(4) && be16(d, 2).is_some_and(|t| t < d.len())
}

/// The cause of a disagreement, found by looking at the input again.
fn cause(parser: &str, class: &str, d: &[u8]) -> &'static str {
    if parser.ends_with("v4") && short_total_length(d) {
        return " [IPv4 total length < buffer]";
    }
    if class.contains("only by hand") {
        // Where the quoted IP header starts, and how many transport bytes
        // its length field allows against how many are there.
        let (quote, v6) = if parser.starts_with("parse_icmpv6") {
            (8, true)
        } else {
            (usize::from(d[0] & 0x0f) * 4 + 8, false)
        };
        let Some(q) = d.get(quote..) else { return "" };
        let (hl, allowed) = if v6 {
            (40, be16(q, 4).unwrap_or(0))
        } else {
            let hl = usize::from(q.first().map_or(0, |b| b & 0x0f)) * 4;
            (hl, be16(q, 2).unwrap_or(0).saturating_sub(hl))
        };
        let there = q.len().saturating_sub(hl);
        let need = if class.contains("Tcp") { 20 } else { 8 };
        return if allowed < need && there >= need {
            if v6 {
                " [quoted IPv6 payload length < the quote]"
            } else {
                " [quoted IPv4 total length < the quote]"
            }
        } else if need == 20 && there < 20 {
            " [quoted TCP header under 20 bytes]"
        } else {
            ""
        };
    }
    if class.contains("BadChecksum(ICMP)") && parser.ends_with("v4") {
        let at = usize::from(d[0] & 0x0f) * 4 + 2;
        if be16(d, at) == Some(0xffff) {
            return " [ICMP checksum field 0xffff, one's-complement -0]";
        }
    }
    ""
}

#[derive(Default)]
struct Tally {
    calls: usize,
    same_reply: usize,
    same_error: usize,
    differ: usize,
    reject_differently: usize,
    hand_panics: usize,
    pnet_panics: usize,
    /// class -> (count, example)
    classes: BTreeMap<String, (usize, String)>,
}

impl Tally {
    fn add(&mut self, parser: &str, name: &str, data: &[u8], h: Outcome, p: Outcome) {
        self.calls += 1;
        if h.is_err() {
            self.hand_panics += 1;
        }
        if p.is_err() {
            self.pnet_panics += 1;
        }
        match classify(&h, &p) {
            None => match h {
                Ok(Ok(_)) => self.same_reply += 1,
                _ => self.same_error += 1,
            },
            Some(mut class) => {
                class += cause(parser, &class, data);
                if class.starts_with("both reject") {
                    self.reject_differently += 1;
                } else {
                    self.differ += 1;
                }
                let e = self
                    .classes
                    .entry(format!("{parser}: {class}"))
                    .or_insert_with(|| {
                        (
                            0,
                            format!(
                                "{name} {}\n        hand: {}\n        pnet: {}",
                                hex_of(data),
                                brief(&h),
                                brief(&p)
                            ),
                        )
                    });
                e.0 += 1;
            }
        }
    }

    /// Both parsers of each family over `data`, as the fuzz target calls
    /// them.
    fn all(&mut self, name: &str, data: &[u8]) {
        let from = Ipv6Addr::LOCALHOST;
        self.add(
            "parse_icmpv4",
            name,
            data,
            run(|| hand::parse_icmpv4(data)),
            run(|| pnet_views::parse_icmpv4(data)),
        );
        self.add(
            "parse_icmpv6",
            name,
            data,
            run(|| hand::parse_icmpv6(data, from, Some(64))),
            run(|| pnet_views::parse_icmpv6(data, from, Some(64))),
        );
        self.add(
            "parse_tcp_v4",
            name,
            data,
            run(|| hand::parse_tcp_v4(data)),
            run(|| pnet_views::parse_tcp_v4(data)),
        );
        self.add(
            "parse_tcp_v6",
            name,
            data,
            run(|| hand::parse_tcp_v6(data, from, None)),
            run(|| pnet_views::parse_tcp_v6(data, from, None)),
        );
    }

    fn print(&self, set: &str, inputs: usize) {
        println!(
            "{set}: {inputs} inputs, {} parser calls: {} same reply, {} same error, \
             {} reject with another error, {} DISAGREE; panics: hand {}, pnet {}",
            self.calls,
            self.same_reply,
            self.same_error,
            self.reject_differently,
            self.differ,
            self.hand_panics,
            self.pnet_panics
        );
        for (class, (n, example)) in &self.classes {
            println!("  {n:>6}  {class}\n        e.g. {example}");
        }
    }
}

fn compare_parsers() -> usize {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut hand_panics = 0;

    let files = corpus();
    let mut t = Tally::default();
    for (name, data) in &files {
        t.all(name, data);
    }
    t.print("fuzz corpus", files.len());
    hand_panics += t.hand_panics;

    let vecs = vectors();
    let mut t = Tally::default();
    for (name, data) in &vecs {
        t.all(name, data);
    }
    t.print("unit-test vectors", vecs.len());
    hand_panics += t.hand_panics;

    let muts = mutations();
    let mut t = Tally::default();
    for (i, data) in muts.iter().enumerate() {
        t.all(&format!("mutation#{i}"), data);
        if data.len() > 20 {
            // The unit test also reads an IPv4 packet's payload as ICMPv6.
            let from = Ipv6Addr::LOCALHOST;
            let d = &data[20..];
            t.add(
                "parse_icmpv6(payload)",
                &format!("mutation#{i}[20..]"),
                d,
                run(|| hand::parse_icmpv6(d, from, None)),
                run(|| pnet_views::parse_icmpv6(d, from, None)),
            );
        }
    }
    t.print("unit-test mutations", muts.len());
    hand_panics += t.hand_panics;

    let muts = corpus_mutations(&files);
    let mut t = Tally::default();
    for (i, data) in muts.iter().enumerate() {
        t.all(&format!("corpus-mutation#{i}"), data);
    }
    t.print("corpus mutations", muts.len());
    hand_panics += t.hand_panics;

    std::panic::set_hook(hook);
    hand_panics
}

/// Both builders: the unit tests' exact bytes, then each other over
/// protocols x families x flows x probe numbers x TTLs.
fn compare_builders() {
    let exact = [
        (
            spec(Protocol::Icmp, 5, 1),
            "450000280001400005013db1c0000201c612b00f08005a00123400018bca00000000000000000000",
        ),
        (
            spec(Protocol::Udp, 3, 7),
            "450000280007400003113f9bc0000201c612b00f80e8829a00140007c41800000000000000000000",
        ),
        (
            ProbeSpec {
                dport: 80,
                ..spec(Protocol::Tcp, 9, 2)
            },
            "4500002800024000090639abc0000201c612b00f80e8005012340002000000005002faf0e95f0000",
        ),
    ];
    let mut exact_ok = 0;
    for (p, want) in &exact {
        let (h, n) = (hand::build(p), pnet_views::build(p));
        let want = Ok(hex(want));
        if h == want && n == want {
            exact_ok += 1;
        } else {
            println!(
                "  exact bytes {:?}: hand {h:02x?}, pnet {n:02x?}",
                p.protocol
            );
        }
    }
    let mut shown = 0;
    let (mut same, mut total) = (0, 0);
    for proto in [Protocol::Icmp, Protocol::Udp, Protocol::Tcp] {
        for fam6 in [false, true] {
            for flow in [0u16, 1, 7, 300] {
                for seq in [0u16, 1, 2, 77, 300, 9999, 65534, 65535] {
                    for ttl in [0u8, 1, 30, 255] {
                        let mut p = spec(proto, ttl, seq);
                        p.flow = flow;
                        if fam6 {
                            p = v6(p);
                        }
                        total += 1;
                        if hand::build(&p) == pnet_views::build(&p) {
                            same += 1;
                        } else if shown < 5 {
                            shown += 1;
                            println!(
                                "  {p:?}: hand {:02x?}, pnet {:02x?}",
                                hand::build(&p),
                                pnet_views::build(&p)
                            );
                        }
                    }
                }
            }
        }
    }
    println!(
        "builders: {exact_ok} of {} exact-byte vectors matched by both; {same} of {total} \
         probe specs (errors included) give identical results",
        exact.len()
    );
}

// ---------------------------------------------------------------------
// Speed.

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion")
}

type Parse = fn(&[u8]) -> Result<Reply, PacketError>;

fn v6_hand(d: &[u8]) -> Result<Reply, PacketError> {
    hand::parse_icmpv6(d, Ipv6Addr::LOCALHOST, Some(61))
}

fn v6_pnet(d: &[u8]) -> Result<Reply, PacketError> {
    pnet_views::parse_icmpv6(d, Ipv6Addr::LOCALHOST, Some(61))
}

const PARSE_CASES: [&str; 5] = ["te_udp", "unreach_x", "echo_reply", "mpls_rfc4884", "v6_te"];
const BUILD_CASES: [&str; 5] = ["icmp_v4", "udp_v4", "tcp_v4", "icmp_v6", "udp_v6"];

fn build_specs() -> [ProbeSpec; 5] {
    [
        spec(Protocol::Icmp, 5, 1),
        spec(Protocol::Udp, 3, 7),
        spec(Protocol::Tcp, 9, 2),
        v6(spec(Protocol::Icmp, 5, 1)),
        v6(spec(Protocol::Udp, 3, 7)),
    ]
}

fn benches(c: &mut Criterion) {
    let udp = hand::build(&spec(Protocol::Udp, 6, 5)).expect("build");
    let inputs: [(Vec<u8>, Parse, Parse); 5] = [
        (
            time_exceeded_v4(&udp, false, &[]),
            hand::parse_icmpv4,
            pnet_views::parse_icmpv4,
        ),
        (
            unreachable_v4(13),
            hand::parse_icmpv4,
            pnet_views::parse_icmpv4,
        ),
        (
            echo_reply_v4(),
            hand::parse_icmpv4,
            pnet_views::parse_icmpv4,
        ),
        (
            time_exceeded_v4(&udp, true, &MPLS_STACK),
            hand::parse_icmpv4,
            pnet_views::parse_icmpv4,
        ),
        (error_v6(3, 0), v6_hand, v6_pnet),
    ];
    for (name, (data, h, p)) in PARSE_CASES.iter().zip(&inputs) {
        // Same reply from both, or the comparison is meaningless.
        assert_eq!(h(data), p(data), "{name}");
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.bench_function("hand", |b| b.iter(|| h(black_box(data))));
        g.bench_function("pnet", |b| b.iter(|| p(black_box(data))));
        g.finish();
    }

    // The whole corpus, and the part of it a Linux raw socket could
    // deliver (IPv4 total length = buffer, or not IPv4): on the rest pnet
    // stops at the total length and so reads fewer bytes.
    let files: Vec<Vec<u8>> = corpus().into_iter().map(|(_, d)| d).collect();
    let deliverable: Vec<Vec<u8>> = files
        .iter()
        .filter(|d| d.first().map(|b| b >> 4) != Some(4) || be16(d, 2) == Some(d.len()))
        .cloned()
        .collect();
    let from = Ipv6Addr::LOCALHOST;
    for (name, set) in [("corpus", &files), ("corpus_len_eq", &deliverable)] {
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.throughput(Throughput::Elements(set.len() as u64));
        g.bench_function("hand", |b| {
            b.iter(|| {
                for d in set {
                    let d = black_box(&d[..]);
                    black_box(hand::parse_icmpv4(d).is_ok());
                    black_box(hand::parse_icmpv6(d, from, Some(64)).is_ok());
                    black_box(hand::parse_tcp_v4(d).is_ok());
                    black_box(hand::parse_tcp_v6(d, from, None).is_ok());
                }
            })
        });
        g.bench_function("pnet", |b| {
            b.iter(|| {
                for d in set {
                    let d = black_box(&d[..]);
                    black_box(pnet_views::parse_icmpv4(d).is_ok());
                    black_box(pnet_views::parse_icmpv6(d, from, Some(64)).is_ok());
                    black_box(pnet_views::parse_tcp_v4(d).is_ok());
                    black_box(pnet_views::parse_tcp_v6(d, from, None).is_ok());
                }
            })
        });
        g.finish();
    }
    println!(
        "corpus: {} files, {} of them deliverable by Linux (corpus_len_eq)",
        files.len(),
        deliverable.len()
    );

    for (name, p) in BUILD_CASES.iter().zip(&build_specs()) {
        assert_eq!(hand::build(p), pnet_views::build(p), "{name}");
        let mut g = c.benchmark_group(format!("build/{name}"));
        g.bench_function("hand", |b| b.iter(|| hand::build(black_box(p))));
        g.bench_function("pnet", |b| b.iter(|| pnet_views::build(black_box(p))));
        g.finish();
    }
}

/// A check on criterion that a shared machine cannot skew: `hand` and
/// `pnet` timed in alternation, 201 rounds of about 0.2 ms each, so that
/// both see the same load. Returns the medians (ns per call) and the
/// median of the per-round ratios pnet/hand.
fn interleaved<A, B>(mut hand: impl FnMut() -> A, mut pnet: impl FnMut() -> B) -> (f64, f64, f64) {
    let mut iters = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(hand());
        }
        if t.elapsed() > Duration::from_micros(200) || iters >= 1 << 24 {
            break;
        }
        iters *= 2;
    }
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed().as_nanos() as f64 / f64::from(iters)
    };
    let (mut hs, mut ps, mut rs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..201 {
        // Alternate which side goes first.
        let (h, p) = if round % 2 == 0 {
            let h = time(&mut || {
                black_box(hand());
            });
            (
                h,
                time(&mut || {
                    black_box(pnet());
                }),
            )
        } else {
            let p = time(&mut || {
                black_box(pnet());
            });
            (
                time(&mut || {
                    black_box(hand());
                }),
                p,
            )
        };
        hs.push(h);
        ps.push(p);
        rs.push(p / h);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (med(&mut hs), med(&mut ps), med(&mut rs))
}

fn interleaved_table() {
    println!(
        "\ninterleaved (hand and pnet alternating, 201 rounds; median ns per call, median ratio)"
    );
    println!(
        "{:<22} {:>12} {:>12} {:>11}",
        "", "hand", "pnet", "pnet/hand"
    );
    let row = |name: &str, (h, p, r): (f64, f64, f64)| {
        println!("{name:<22} {h:>9.1} ns {p:>9.1} ns {r:>10.2}x");
    };
    let udp = hand::build(&spec(Protocol::Udp, 6, 5)).expect("build");
    let v4: [(&str, Vec<u8>); 4] = [
        ("parse/te_udp", time_exceeded_v4(&udp, false, &[])),
        ("parse/unreach_x", unreachable_v4(13)),
        ("parse/echo_reply", echo_reply_v4()),
        (
            "parse/mpls_rfc4884",
            time_exceeded_v4(&udp, true, &MPLS_STACK),
        ),
    ];
    for (name, d) in &v4 {
        row(
            name,
            interleaved(
                || hand::parse_icmpv4(black_box(d)),
                || pnet_views::parse_icmpv4(black_box(d)),
            ),
        );
    }
    let d = error_v6(3, 0);
    row(
        "parse/v6_te",
        interleaved(|| v6_hand(black_box(&d)), || v6_pnet(black_box(&d))),
    );
    let files: Vec<Vec<u8>> = corpus().into_iter().map(|(_, d)| d).collect();
    let deliverable: Vec<Vec<u8>> = files
        .iter()
        .filter(|d| d.first().map(|b| b >> 4) != Some(4) || be16(d, 2) == Some(d.len()))
        .cloned()
        .collect();
    let from = Ipv6Addr::LOCALHOST;
    for (name, set) in [
        ("parse/corpus", &files),
        ("parse/corpus_len_eq", &deliverable),
    ] {
        row(
            name,
            interleaved(
                || {
                    for d in set {
                        let d = black_box(&d[..]);
                        black_box(hand::parse_icmpv4(d).is_ok());
                        black_box(hand::parse_icmpv6(d, from, Some(64)).is_ok());
                        black_box(hand::parse_tcp_v4(d).is_ok());
                        black_box(hand::parse_tcp_v6(d, from, None).is_ok());
                    }
                },
                || {
                    for d in set {
                        let d = black_box(&d[..]);
                        black_box(pnet_views::parse_icmpv4(d).is_ok());
                        black_box(pnet_views::parse_icmpv6(d, from, Some(64)).is_ok());
                        black_box(pnet_views::parse_tcp_v4(d).is_ok());
                        black_box(pnet_views::parse_tcp_v6(d, from, None).is_ok());
                    }
                },
            ),
        );
    }
    for (name, p) in BUILD_CASES.iter().zip(&build_specs()) {
        row(
            &format!("build/{name}"),
            interleaved(
                || hand::build(black_box(p)),
                || pnet_views::build(black_box(p)),
            ),
        );
    }
}

/// Median (ns) of a benchmark measured since `since`, from criterion's
/// estimates.
fn median(group: &str, side: &str, since: SystemTime) -> Option<f64> {
    let path = target_dir()
        .join(group.replace('/', "_"))
        .join(side)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn summary(since: SystemTime) {
    let groups = PARSE_CASES
        .iter()
        .map(|n| format!("parse/{n}"))
        .chain([
            "parse/corpus".to_string(),
            "parse/corpus_len_eq".to_string(),
        ])
        .chain(BUILD_CASES.iter().map(|n| format!("build/{n}")));
    println!("\nmedians (criterion), per call; corpus: per pass over its files, 4 parsers each");
    println!(
        "{:<22} {:>12} {:>12} {:>11}",
        "", "hand", "pnet", "pnet/hand"
    );
    for g in groups {
        if let (Some(h), Some(p)) = (median(&g, "hand", since), median(&g, "pnet", since)) {
            println!("{g:<22} {:>9.1} ns {:>9.1} ns {:>10.2}x", h, p, p / h);
        }
    }
}

fn main() {
    let started = SystemTime::now();
    println!("== correctness: hand-written (agent/src/packet) vs pnet_packet 0.35 views ==");
    let hand_panics = compare_parsers();
    compare_builders();
    assert_eq!(hand_panics, 0, "the product's parser panicked");

    println!("\n== speed ==");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .output_directory(&target_dir())
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    // `cargo bench` passes --bench; without it (`cargo test --benches`)
    // criterion only checks that each benchmark runs, so no timings.
    if std::env::args().any(|a| a == "--bench") {
        summary(started);
        interleaved_table();
    }
}
