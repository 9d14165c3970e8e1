//! The MRT reader (`bgp::mrt`) against bgpdump on a real RouteViews RIB
//! dump, on update files built here byte by byte, and on crafted,
//! truncated and corrupt input (the corpus in `tests/corpus/mrt/`, which
//! the fuzz target also starts from).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::IpNet;
use tumen_collector::bgp::mrt::{self, KeepAll, MrtReport, Overlapping, ReadOptions};
use tumen_collector::bgp::{AsPath, Change, Hop, Message, Route};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

fn fragment() -> PathBuf {
    let local = Path::new("/work/shared/data/rib.20140523.0600_firstMB.bz2");
    if local.exists() {
        local.to_path_buf()
    } else {
        data().join("rib.20140523.0600_firstMB.bz2")
    }
}

fn options() -> ReadOptions {
    ReadOptions {
        collector: "route-views2".to_string(),
        partial_snapshot: false,
    }
}

fn read(bytes: &[u8]) -> (Vec<Message>, MrtReport) {
    let mut out = Vec::new();
    let report = mrt::read(bytes, "test", &options(), &KeepAll, &mut out);
    (out, report)
}

/// bgpdump's `-m` lines for `path`, or `None` when the test may skip.
fn bgpdump(path: &Path) -> Option<String> {
    let output = match Command::new("bgpdump").arg("-m").arg(path).output() {
        Ok(o) => o,
        Err(e) => {
            if std::env::var("TUMEN_SKIP_BGPDUMP").as_deref() == Ok("1") {
                eprintln!("bgpdump not found ({e}); skipped as TUMEN_SKIP_BGPDUMP=1 says");
                return None;
            }
            panic!(
                "bgpdump not found ({e}): the oracle test needs it; \
                 apt-get install bgpdump (or set TUMEN_SKIP_BGPDUMP=1 to skip)"
            );
        }
    };
    assert!(output.status.success(), "bgpdump failed: {output:?}");
    Some(String::from_utf8(output.stdout).expect("bgpdump prints UTF-8"))
}

/// The fields compared: type, time, B/A/W, peer address, peer AS,
/// prefix, AS path, and the next hop.
fn compared(line: &str) -> Vec<&str> {
    let f: Vec<&str> = line.split('|').collect();
    let mut out: Vec<&str> = f.iter().take(7).copied().collect();
    if let Some(nh) = f.get(8) {
        out.push(nh);
    }
    out
}

#[test]
fn rib_dump_matches_bgpdump() {
    let path = fragment();
    let Some(expected) = bgpdump(&path) else {
        return;
    };
    let mut out = Vec::new();
    let options = ReadOptions {
        partial_snapshot: true,
        ..options()
    };
    let report = mrt::read_file(&path, &options, &KeepAll, &mut out).unwrap();
    assert!(
        report.truncated,
        "the fragment is cut mid-record: {report:?}"
    );
    assert_eq!(report.faults.get("truncated"), Some(&1), "{report:?}");
    assert_eq!(report.fault_count(), 1, "{report:?}");
    let snapshots: Vec<_> = out
        .iter()
        .filter(|m| matches!(m, Message::Snapshot(_)))
        .collect();
    assert_eq!(snapshots.len(), 1);
    let ours = mrt::bgpdump_lines(snapshots[0]);
    let theirs: Vec<&str> = expected.lines().collect();
    assert_eq!(ours.len(), theirs.len(), "entries: ours vs bgpdump's");
    assert!(ours.len() > 200_000);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            compared(a),
            compared(b),
            "entry {i}:\n ours {a}\n bgpdump {b}"
        );
    }
    let Message::Snapshot(s) = snapshots[0] else {
        unreachable!()
    };
    assert_eq!(s.source, "mrt");
    assert_eq!(s.router, "route-views2");
    assert_eq!(s.at_ms, 1_400_824_800_000);
    assert!(s.peers.iter().all(|p| p.router == "route-views2"));
}

#[test]
fn truncated_rib_sends_no_snapshot_by_default() {
    let mut out = Vec::new();
    let report = mrt::read_file(&fragment(), &options(), &KeepAll, &mut out).unwrap();
    assert!(report.truncated);
    assert!(!report.snapshot);
    assert!(report.routes > 200_000);
    assert!(out.iter().all(|m| !matches!(m, Message::Snapshot(_))));
    assert!(out.iter().any(|m| matches!(
        m,
        Message::Fault {
            source,
            kind: "truncated"
        } if source == "mrt"
    )));
}

#[test]
fn filter_keeps_only_overlapping_prefixes_and_skips_the_rest_undecoded() {
    let target: IpNet = "1.0.0.0/16".parse().unwrap();
    let keep = Overlapping(vec![target]);
    let mut out = Vec::new();
    let options = ReadOptions {
        partial_snapshot: true,
        ..options()
    };
    let report = mrt::read_file(&fragment(), &options, &keep, &mut out).unwrap();
    let Some(Message::Snapshot(s)) = out.iter().find(|m| matches!(m, Message::Snapshot(_))) else {
        panic!("no snapshot")
    };
    assert!(!s.routes.is_empty());
    // 0.0.0.0/0 covers the target; the rest are inside it.
    assert!(s
        .routes
        .iter()
        .all(|(_, p, _)| target.contains(p) || p.contains(&target)));
    assert!(report.skipped_prefixes > 9_000, "{report:?}");

    // The same routes as reading everything and filtering afterwards.
    let mut all = Vec::new();
    mrt::read_file(&fragment(), &options, &KeepAll, &mut all).unwrap();
    let Some(Message::Snapshot(full)) = all.iter().find(|m| matches!(m, Message::Snapshot(_)))
    else {
        panic!("no snapshot")
    };
    let filtered: Vec<_> = full
        .routes
        .iter()
        .filter(|(_, p, _)| target.contains(p) || p.contains(&target))
        .cloned()
        .collect();
    assert_eq!(s.routes, filtered);

    // A route filter (a closure) sees every route of kept prefixes.
    let by_origin = |_: &IpNet, r: &Route| r.path.origin() == Some(15169);
    let mut out = Vec::new();
    mrt::read_file(&fragment(), &options, &by_origin, &mut out).unwrap();
    let Some(Message::Snapshot(s)) = out.iter().find(|m| matches!(m, Message::Snapshot(_))) else {
        panic!("no snapshot")
    };
    assert!(!s.routes.is_empty());
    assert!(s
        .routes
        .iter()
        .all(|(_, _, r)| r.path.origin() == Some(15169)));
}

#[test]
fn gzip_and_plain_read_as_bzip2() {
    let bz = std::fs::read(fragment()).unwrap();
    // The fragment's bzip2 stream is cut: decompress what there is.
    let mut plain = Vec::new();
    let mut decoder = bzip2::read::MultiBzDecoder::new(&bz[..]);
    let mut buf = [0u8; 65536];
    while let Ok(n @ 1..) = std::io::Read::read(&mut decoder, &mut buf) {
        plain.extend_from_slice(&buf[..n]);
    }
    let mut gz = Vec::new();
    {
        let mut w = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        std::io::Write::write_all(&mut w, &plain).unwrap();
        w.finish().unwrap();
    }
    let (_, a) = read(&bz);
    let (_, b) = read(&plain);
    let (_, c) = read(&gz);
    assert_eq!(a.records, b.records);
    assert_eq!(a.records, c.records);
    assert_eq!(a.routes, c.routes);
    assert_eq!(b.compression, tumen_collector::table::Compression::None);
    assert_eq!(c.compression, tumen_collector::table::Compression::Gzip);
}

// ---- MRT built byte by byte ----

mod build {
    use std::net::IpAddr;

    pub fn record(ts: u32, kind: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&ts.to_be_bytes());
        r.extend_from_slice(&kind.to_be_bytes());
        r.extend_from_slice(&subtype.to_be_bytes());
        r.extend_from_slice(&(body.len() as u32).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    pub fn ip(a: IpAddr) -> Vec<u8> {
        match a {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    pub fn attr(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut a = if value.len() > 255 {
            let mut a = vec![0x50, kind];
            a.extend_from_slice(&(value.len() as u16).to_be_bytes());
            a
        } else {
            vec![0x40, kind, value.len() as u8]
        };
        a.extend_from_slice(value);
        a
    }

    /// An AS path value: (segment type, ASes), `width`-byte ASes.
    pub fn path(segments: &[(u8, &[u32])], width: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for (kind, asns) in segments {
            v.push(*kind);
            v.push(asns.len() as u8);
            for a in *asns {
                v.extend_from_slice(&a.to_be_bytes()[4 - width..]);
            }
        }
        v
    }

    pub fn nlri(prefix: &str) -> Vec<u8> {
        let p: ipnet::IpNet = prefix.parse().unwrap();
        let len = p.prefix_len();
        let mut v = vec![len];
        v.extend_from_slice(&ip(p.addr())[..usize::from(len).div_ceil(8)]);
        v
    }

    pub fn peer_index(peers: &[(IpAddr, u32)]) -> Vec<u8> {
        let mut b = vec![192, 0, 2, 255, 0, 0];
        b.extend_from_slice(&(peers.len() as u16).to_be_bytes());
        for (addr, asn) in peers {
            b.push(if addr.is_ipv6() { 3 } else { 2 });
            b.extend_from_slice(&[10, 0, 0, 1]);
            b.extend_from_slice(&ip(*addr));
            b.extend_from_slice(&asn.to_be_bytes());
        }
        b
    }

    /// A RIB record body: (peer index, attributes) entries.
    pub fn rib(prefix: &str, entries: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 1];
        b.extend_from_slice(&nlri(prefix));
        b.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for (index, attrs) in entries {
            b.extend_from_slice(&index.to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, 0]);
            b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            b.extend_from_slice(attrs);
        }
        b
    }

    /// A BGP UPDATE message.
    pub fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
        body.extend_from_slice(withdrawn);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
        body.extend_from_slice(nlri);
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(2);
        m.extend_from_slice(&body);
        m
    }

    /// A BGP4MP MESSAGE (`as4`: MESSAGE_AS4) body around a BGP message.
    pub fn bgp4mp(peer: IpAddr, peer_as: u32, as4: bool, message: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let width = if as4 { 4 } else { 2 };
        b.extend_from_slice(&peer_as.to_be_bytes()[4 - width..]);
        b.extend_from_slice(&65000u32.to_be_bytes()[4 - width..]);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(if peer.is_ipv6() { 2u16 } else { 1 }).to_be_bytes());
        b.extend_from_slice(&ip(peer));
        b.extend_from_slice(&ip(if peer.is_ipv6() {
            "2001:db8::ffff".parse().unwrap()
        } else {
            "192.0.2.254".parse().unwrap()
        }));
        b.extend_from_slice(message);
        b
    }

    pub fn state(peer: IpAddr, peer_as: u16, old: u16, new: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&peer_as.to_be_bytes());
        b.extend_from_slice(&65000u16.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1]);
        b.extend_from_slice(&ip(peer));
        b.extend_from_slice(&[192, 0, 2, 254]);
        b.extend_from_slice(&old.to_be_bytes());
        b.extend_from_slice(&new.to_be_bytes());
        b
    }

    pub fn mp_reach_v6(nh: &str, prefixes: &[&str]) -> Vec<u8> {
        let mut v = vec![0, 2, 1, 16];
        v.extend_from_slice(&ip(nh.parse().unwrap()));
        v.push(0);
        for p in prefixes {
            v.extend_from_slice(&nlri(p));
        }
        attr(14, &v)
    }

    pub fn mp_unreach_v6(prefixes: &[&str]) -> Vec<u8> {
        let mut v = vec![0, 2, 1];
        for p in prefixes {
            v.extend_from_slice(&nlri(p));
        }
        attr(15, &v)
    }
}

fn peer_a() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}

fn peer_b() -> IpAddr {
    "2001:db8::1".parse().unwrap()
}

/// An update file covering announce and withdraw in both families,
/// MP_REACH/MP_UNREACH, a 2-byte AS path merged with AS4_PATH, an AS_SET,
/// BGP4MP_ET time and state changes.
fn updates_file() -> Vec<u8> {
    use build::*;
    let mut f = Vec::new();
    // Peer up.
    f.extend(record(1000, 16, 0, &state(peer_a(), 64500, 5, 6)));
    // MESSAGE_AS4: announce 10.0.0.0/8 and 10.1.0.0/16, withdraw 192.168.0.0/16.
    let mut attrs = attr(1, &[0]);
    attrs.extend(attr(2, &path(&[(2, &[64500, 3356]), (1, &[1, 2])], 4)));
    attrs.extend(attr(3, &[192, 0, 2, 1]));
    let mut n = nlri("10.0.0.0/8");
    n.extend(nlri("10.1.0.0/16"));
    let msg = update(&nlri("192.168.0.0/16"), &attrs, &n);
    f.extend(record(1001, 16, 4, &bgp4mp(peer_a(), 64500, true, &msg)));
    // MESSAGE (2-byte): AS_PATH 64500 23456 with AS4_PATH 4200000000.
    let mut attrs = attr(1, &[0]);
    attrs.extend(attr(2, &path(&[(2, &[64500, 23456])], 2)));
    attrs.extend(attr(3, &[192, 0, 2, 1]));
    attrs.extend(vec![0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00]);
    let msg = update(&[], &attrs, &nlri("10.2.0.0/16"));
    f.extend(record(1002, 16, 1, &bgp4mp(peer_a(), 64500, false, &msg)));
    // BGP4MP_ET MESSAGE_AS4 over IPv6: MP_REACH 2001:db8:1::/48, MP_UNREACH 2001:db8:2::/48.
    let mut attrs = attr(1, &[0]);
    attrs.extend(attr(2, &path(&[(2, &[64501, 6939])], 4)));
    attrs.extend(mp_reach_v6("2001:db8::1", &["2001:db8:1::/48"]));
    attrs.extend(mp_unreach_v6(&["2001:db8:2::/48"]));
    let msg = update(&[], &attrs, &[]);
    let mut body = 123_456u32.to_be_bytes().to_vec();
    body.extend(bgp4mp(peer_b(), 64501, true, &msg));
    f.extend(record(1003, 17, 4, &body));
    // A KEEPALIVE: counted, nothing sent.
    let mut ka = vec![0xff; 16];
    ka.extend_from_slice(&[0, 19, 4]);
    f.extend(record(1004, 16, 4, &bgp4mp(peer_a(), 64500, true, &ka)));
    // Peer down.
    f.extend(record(1005, 16, 0, &state(peer_a(), 64500, 6, 1)));
    f
}

#[test]
fn updates_become_messages() {
    let (out, report) = read(&updates_file());
    assert_eq!(report.fault_count(), 0, "{report:?}");
    assert_eq!(report.records, 6);
    assert_eq!(report.kinds.get("update"), Some(&3));
    assert_eq!(report.kinds.get("message"), Some(&1));
    assert_eq!(report.kinds.get("state_change"), Some(&2));
    assert!(!report.snapshot);
    let lines: Vec<String> = out.iter().flat_map(mrt::bgpdump_lines).collect();
    assert_eq!(
        lines,
        [
            "BGP4MP|1000|STATE|192.0.2.1|64500|1|6",
            "BGP4MP|1001|W|192.0.2.1|64500|192.168.0.0/16",
            "BGP4MP|1001|A|192.0.2.1|64500|10.0.0.0/8|64500 3356 {1,2}||192.0.2.1|||||||",
            "BGP4MP|1001|A|192.0.2.1|64500|10.1.0.0/16|64500 3356 {1,2}||192.0.2.1|||||||",
            "BGP4MP|1002|A|192.0.2.1|64500|10.2.0.0/16|64500 4200000000||192.0.2.1|||||||",
            "BGP4MP|1003|W|2001:db8::1|64501|2001:db8:2::/48",
            "BGP4MP|1003|A|2001:db8::1|64501|2001:db8:1::/48|64501 6939||2001:db8::1|||||||",
            "BGP4MP|1005|STATE|192.0.2.1|64500|6|1",
        ]
    );
    let Message::Update(u) = &out[2] else {
        panic!("{:?}", out[2])
    };
    assert_eq!(u.at_ms, 1_001_000);
    assert_eq!(u.peer.source, "mrt");
    assert_eq!(u.peer.router, "route-views2");
    assert_eq!(
        u.change,
        Change::Announce {
            route: Route {
                path: AsPath(vec![Hop::As(64500), Hop::As(3356), Hop::Set(vec![1, 2])]),
                next_hop: Some(peer_a()),
            }
        }
    );
    // The ET record's microseconds.
    let Message::Update(u) = &out[6] else {
        panic!("{:?}", out[6])
    };
    assert_eq!(u.at_ms, 1_003_123);
    assert!(matches!(
        &out[7],
        Message::PeerDown {
            at_ms: 1_005_000,
            ..
        }
    ));

    // A prefix filter applies to announcements and withdrawals alike.
    let mut out = Vec::new();
    let keep = Overlapping(vec!["10.0.0.0/8".parse().unwrap()]);
    let report = mrt::read(&updates_file()[..], "test", &options(), &keep, &mut out);
    assert_eq!(report.updates, 3);
    let prefixes: Vec<String> = out
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(u.prefix.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(prefixes, ["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"]);
}

#[test]
fn rib_built_by_hand_v4_and_v6() {
    use build::*;
    let mut f = Vec::new();
    f.extend(record(
        2000,
        13,
        1,
        &peer_index(&[(peer_a(), 64500), (peer_b(), 4_200_000_000)]),
    ));
    let mut a = attr(1, &[0]);
    a.extend(attr(
        2,
        &path(&[(2, &[64500, 3356]), (3, &[65001]), (1, &[7, 8])], 4),
    ));
    a.extend(attr(3, &[192, 0, 2, 1]));
    let mut b = attr(1, &[0]);
    b.extend(attr(2, &path(&[(2, &[4_200_000_000, 6939])], 4)));
    b.extend(attr(14, &[4, 198, 51, 100, 1]));
    f.extend(record(2000, 13, 2, &rib("10.0.0.0/8", &[(0, a), (1, b)])));
    let mut c = attr(2, &path(&[(2, &[4_200_000_000])], 4));
    let mut mp = vec![32];
    mp.extend(ip("2001:db8::9".parse().unwrap()));
    mp.extend(ip("fe80::9".parse().unwrap()));
    c.extend(attr(14, &mp));
    f.extend(record(2000, 13, 4, &rib("2001:db8::/32", &[(1, c)])));
    let (out, report) = read(&f);
    assert_eq!(report.fault_count(), 0, "{report:?}");
    assert_eq!(out.len(), 1);
    let lines = mrt::bgpdump_lines(&out[0]);
    assert_eq!(
        lines,
        [
            "TABLE_DUMP2|2000|B|192.0.2.1|64500|10.0.0.0/8|64500 3356 {7,8}||192.0.2.1|||||||",
            "TABLE_DUMP2|2000|B|2001:db8::1|4200000000|10.0.0.0/8|4200000000 6939||198.51.100.1|||||||",
            "TABLE_DUMP2|2000|B|2001:db8::1|4200000000|2001:db8::/32|4200000000||2001:db8::9|||||||",
        ]
    );
    let Message::Snapshot(s) = &out[0] else {
        unreachable!()
    };
    assert_eq!(s.at_ms, 2_000_000);
    assert_eq!(s.peers.len(), 2);
    assert_eq!(s.routes[0].0, 0);
    assert_eq!(s.routes[2].0, 1);
}

// ---- bad input ----

/// Crafted inputs: (name, bytes, the fault kinds expected).
fn crafted() -> Vec<(&'static str, Vec<u8>, &'static [&'static str])> {
    use build::*;
    let index = record(2000, 13, 1, &peer_index(&[(peer_a(), 64500)]));
    let good_attrs = {
        let mut a = attr(2, &path(&[(2, &[64500])], 4));
        a.extend(attr(3, &[192, 0, 2, 1]));
        a
    };
    let mut out: Vec<(&'static str, Vec<u8>, &'static [&'static str])> = Vec::new();
    // A record claiming 4 GB.
    let mut huge = record(1, 13, 2, &[]);
    huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    out.push(("huge-length", huge, &["too_long"]));
    // Not MRT at all.
    out.push((
        "not-mrt",
        b"<html>hello, this is not MRT</html>".to_vec(),
        &["unknown_type"],
    ));
    // A header cut short.
    out.push(("short-header", vec![0, 0, 0, 1, 0, 13], &["truncated"]));
    // A record cut short.
    let mut cut = index.clone();
    cut.extend(record(
        2000,
        13,
        2,
        &rib("10.0.0.0/8", &[(0, good_attrs.clone())]),
    ));
    cut.truncate(cut.len() - 5);
    out.push(("cut-record", cut, &["truncated"]));
    // A prefix length over 32.
    let mut bad = index.clone();
    let mut body = rib("10.0.0.0/8", &[(0, good_attrs.clone())]);
    body[4] = 33;
    bad.extend(record(2000, 13, 2, &body));
    out.push(("prefix-length", bad, &["prefix"]));
    // Peer index out of range.
    let mut bad = index.clone();
    bad.extend(record(
        2000,
        13,
        2,
        &rib("10.0.0.0/8", &[(7, good_attrs.clone())]),
    ));
    out.push(("peer-index-range", bad, &["peer_index"]));
    // A RIB record before any peer index table.
    out.push((
        "no-peer-index",
        record(2000, 13, 2, &rib("10.0.0.0/8", &[(0, good_attrs.clone())])),
        &["no_peer_index"],
    ));
    // An attribute claiming more bytes than the entry has.
    let mut bad = index.clone();
    let mut attrs = good_attrs.clone();
    attrs.extend([0x40, 8, 200, 1, 2]);
    bad.extend(record(2000, 13, 2, &rib("10.0.0.0/8", &[(0, attrs)])));
    out.push(("attribute-length", bad, &["short"]));
    // An AS path segment claiming more ASes than there are.
    let mut bad = index.clone();
    bad.extend(record(
        2000,
        13,
        2,
        &rib("10.0.0.0/8", &[(0, attr(2, &[2, 9, 0, 0, 0, 1]))]),
    ));
    out.push(("as-path-segment", bad, &["attribute"]));
    // An entry count larger than the entries.
    let mut bad = index.clone();
    let mut body = rib("10.0.0.0/8", &[(0, good_attrs.clone())]);
    body[6..8].copy_from_slice(&500u16.to_be_bytes());
    bad.extend(record(2000, 13, 2, &body));
    out.push(("entry-count", bad, &["short"]));
    // A peer index table claiming more peers than it has.
    let mut body = peer_index(&[(peer_a(), 64500)]);
    body[6..8].copy_from_slice(&9u16.to_be_bytes());
    out.push(("peer-table-count", record(2000, 13, 1, &body), &["parse"]));
    // A second peer index table with fewer peers after routes of the
    // first's (found by the fuzzer: the snapshot's routes named peers the
    // second table did not have).
    let mut bad = record(
        2000,
        13,
        1,
        &peer_index(&[(peer_a(), 64500), (peer_b(), 64501)]),
    );
    bad.extend(record(
        2000,
        13,
        2,
        &rib("10.0.0.0/8", &[(1, good_attrs.clone())]),
    ));
    bad.extend(index.clone());
    bad.extend(record(
        2000,
        13,
        2,
        &rib("10.1.0.0/16", &[(1, good_attrs.clone())]),
    ));
    out.push(("second-peer-index", bad, &["peer_index"]));
    // A BGP4MP message with an unknown AFI.
    let msg = update(&[], &good_attrs, &nlri("10.0.0.0/8"));
    let mut body = bgp4mp(peer_a(), 64500, true, &msg);
    body[10..12].copy_from_slice(&7u16.to_be_bytes());
    out.push(("bgp4mp-afi", record(1, 16, 4, &body), &["parse"]));
    // A BGP4MP_ET record too short for its microseconds.
    out.push(("et-short", record(1, 17, 4, &[0, 1]), &["short"]));
    // An UPDATE whose attribute length runs past the message.
    let mut msg = update(&[], &good_attrs, &nlri("10.0.0.0/8"));
    msg[21..23].copy_from_slice(&900u16.to_be_bytes());
    out.push((
        "update-attribute-length",
        record(1, 16, 4, &bgp4mp(peer_a(), 64500, true, &msg)),
        &["parse"],
    ));
    // A state change with state 9.
    out.push((
        "state-9",
        record(1, 16, 0, &state(peer_a(), 64500, 6, 9)),
        &["parse"],
    ));
    // A gzip stream cut short.
    let mut gz = Vec::new();
    {
        let mut w = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        std::io::Write::write_all(&mut w, &updates_file()).unwrap();
        w.finish().unwrap();
    }
    gz.truncate(gz.len() / 2);
    out.push(("cut-gzip", gz, &["truncated"]));
    // A corrupt bzip2 stream.
    let bz = std::fs::read(fragment()).unwrap();
    let mut bz = bz[..4000].to_vec();
    for b in &mut bz[200..300] {
        *b ^= 0x5a;
    }
    out.push(("corrupt-bzip2", bz, &["io"]));
    out
}

#[test]
fn crafted_input_is_counted_not_fatal() {
    for (name, bytes, kinds) in crafted() {
        let (out, report) = read(&bytes);
        for kind in kinds {
            assert!(
                report.faults.contains_key(kind),
                "{name}: expected a {kind} fault: {report:?}"
            );
        }
        let faults = out
            .iter()
            .filter(|m| matches!(m, Message::Fault { .. }))
            .count() as u64;
        assert_eq!(faults, report.fault_count(), "{name}");
        for m in &out {
            if let Message::Snapshot(s) = m {
                assert!(
                    s.routes.iter().all(|(i, _, _)| *i < s.peers.len()),
                    "{name}: a route names a peer not listed"
                );
            }
        }
    }
}

#[test]
fn every_prefix_of_a_file_is_read_without_panic() {
    // Every cut of the update file and of a small RIB: truncated, no panic.
    let file = updates_file();
    let whole = read(&file).1.records;
    for n in 0..file.len() {
        let (_, report) = read(&file[..n]);
        assert!(report.records < whole);
        // A cut at a record's end is a shorter file, not a truncated one.
        assert_eq!(
            report.truncated,
            report.bytes != n as u64,
            "cut at {n}: {report:?}"
        );
    }
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mrt")
}

/// Writes the crafted inputs into the corpus (run by hand after changing
/// them: `cargo test --test bgp_mrt -- --ignored write_corpus`).
#[test]
#[ignore]
fn write_corpus() {
    std::fs::create_dir_all(corpus()).unwrap();
    for (name, bytes, _) in crafted() {
        std::fs::write(corpus().join(format!("{name}.mrt")), bytes).unwrap();
    }
    std::fs::write(corpus().join("updates.mrt"), updates_file()).unwrap();
}

/// The crafted corpus, and what the fuzzer kept (`collector/fuzz/corpus/mrt`,
/// minimised with `cargo fuzz cmin`), through the reader.
#[test]
fn corpus_replays_without_panic() {
    let mut n = 0;
    let fuzzed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mrt");
    let entries = std::fs::read_dir(corpus())
        .expect("tests/corpus/mrt")
        .chain(std::fs::read_dir(&fuzzed).expect("fuzz/corpus/mrt"));
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let (out, report) = read(&bytes);
        // Whatever was read adds up.
        let faults = out
            .iter()
            .filter(|m| matches!(m, Message::Fault { .. }))
            .count() as u64;
        assert_eq!(faults, report.fault_count(), "{}", path.display());
        for m in &out {
            if let Message::Snapshot(s) = m {
                assert!(s.routes.iter().all(|(i, _, _)| *i < s.peers.len()));
            }
        }
        n += 1;
    }
    assert!(n >= 1000, "the corpora have {n} files");
}

// ---- archives ----

mod server {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    /// A path's answer: its body, after failing with a 500 `fail` times.
    #[derive(Clone, Default)]
    pub struct Entry {
        pub body: Vec<u8>,
        pub fail: u32,
    }

    pub type Files = Arc<Mutex<HashMap<String, Entry>>>;

    /// Adds a file and lists it in the index pages of its directories
    /// (Apache style, with the sort links and the parent link).
    pub fn add(files: &Files, path: &str, body: Vec<u8>) {
        let mut map = files.lock().unwrap();
        map.insert(path.to_string(), Entry { body, fail: 0 });
        let mut child = path.to_string();
        while let Some(i) = child.trim_end_matches('/').rfind('/') {
            let dir = child[..=i].to_string();
            let name = child[i + 1..].to_string();
            let page = map.entry(dir.clone()).or_default();
            let mut html = String::from_utf8(page.body.clone()).unwrap();
            if html.is_empty() {
                html = format!(
                    "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html><head><title>Index of {dir}</title></head><body>\n<h1>Index of {dir}</h1><table>\n<tr><th><a href=\"?C=N;O=D\">Name</a></th><th><a href=\"?C=M;O=A\">Last modified</a></th></tr>\n<tr><td><a href=\"../\">Parent Directory</a></td></tr>\n"
                );
            }
            let line = format!(
                "<tr><td><a href=\"{name}\">{name}</a></td><td>2014-05-23 06:00</td></tr>\n"
            );
            if !html.contains(&line) {
                html.push_str(&line);
            }
            page.body = html.into_bytes();
            child = dir;
            if child == "/" {
                break;
            }
        }
    }

    async fn serve(State(files): State<Files>, uri: Uri) -> Response {
        let mut map = files.lock().unwrap();
        match map.get_mut(uri.path()) {
            None => StatusCode::NOT_FOUND.into_response(),
            Some(e) if e.fail > 0 => {
                e.fail -= 1;
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            Some(e) => e.body.clone().into_response(),
        }
    }

    /// Serves `files` on 127.0.0.1 (only).
    pub async fn start(files: Files) -> SocketAddr {
        let app = axum::Router::new().fallback(serve).with_state(files);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
}

fn bz2(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = bzip2::write::BzEncoder::new(&mut out, bzip2::Compression::fast());
    std::io::Write::write_all(&mut w, bytes).unwrap();
    w.finish().unwrap();
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
    std::io::Write::write_all(&mut w, bytes).unwrap();
    w.finish().unwrap();
    out
}

/// A small RIB dump at `ts`: one peer, 10.0.0.0/8.
fn small_rib(ts: u32) -> Vec<u8> {
    use build::*;
    let mut f = record(ts, 13, 1, &peer_index(&[(peer_a(), 64500)]));
    let mut a = attr(2, &path(&[(2, &[64500, 3356])], 4));
    a.extend(attr(3, &[192, 0, 2, 1]));
    f.extend(record(ts, 13, 2, &rib("10.0.0.0/8", &[(0, a)])));
    f
}

/// One withdrawal at `ts`.
fn small_updates(ts: u32) -> Vec<u8> {
    use build::*;
    let msg = update(&nlri("10.0.0.0/8"), &[], &[]);
    record(ts, 16, 4, &bgp4mp(peer_a(), 64500, true, &msg))
}

const T0600: u32 = 1_400_824_800; // 2014-05-23 06:00

fn routeviews(files: &server::Files) {
    for (name, ts) in [("0600", T0600), ("0800", T0600 + 7200)] {
        server::add(
            files,
            &format!("/rv/2014.05/RIBS/rib.20140523.{name}.bz2"),
            bz2(&small_rib(ts)),
        );
    }
    for m in [0u32, 15, 30, 45] {
        server::add(
            files,
            &format!("/rv/2014.05/UPDATES/updates.20140523.06{m:02}.bz2"),
            bz2(&small_updates(T0600 + m * 60)),
        );
    }
    // The month before: a RIB on the last evening.
    server::add(
        files,
        "/rv/2014.04/RIBS/rib.20140430.2200.bz2",
        bz2(&small_rib(1_398_895_200)),
    );
    server::add(
        files,
        "/rv/2014.05/UPDATES/updates.20140501.0000.bz2",
        bz2(&small_updates(1_398_902_400)),
    );
}

fn ris(files: &server::Files) {
    server::add(
        files,
        "/ris/rrc00/2014.05/bview.20140523.0600.gz",
        gz(&small_rib(T0600)),
    );
    server::add(
        files,
        "/ris/rrc00/2014.05/updates.20140523.0605.gz",
        gz(&small_updates(T0600 + 300)),
    );
    // Cut in the middle.
    let many: Vec<u8> = (0..2000)
        .flat_map(|i| small_updates(T0600 + 600 + i))
        .collect();
    let cut = gz(&many);
    server::add(
        files,
        "/ris/rrc00/2014.05/updates.20140523.0610.gz",
        cut[..cut.len() / 2].to_vec(),
    );
}

fn archive_options(since: u32, until: u32) -> ArchiveOptions {
    let mut o = ArchiveOptions::new(u64::from(since), u64::from(until));
    o.timeout = std::time::Duration::from_secs(10);
    o.backoff = std::time::Duration::from_millis(10);
    o
}

async fn archive_server() -> (server::Files, String) {
    let files = server::Files::default();
    routeviews(&files);
    ris(&files);
    let addr = server::start(files.clone()).await;
    (files, format!("http://{addr}"))
}

fn kinds(files: &[ArchiveFile]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.location.rsplit('/').next().unwrap().to_string())
        .collect()
}

use tumen_collector::bgp::archive::{
    self, ArchiveError, ArchiveFile, ArchiveOptions, HttpArchive, Layout, Poller, Select,
};

#[tokio::test]
async fn http_routeviews_timeline_and_all() {
    let (_files, base) = archive_server().await;
    let client = archive::client().unwrap();
    // Timeline (the default): the RIB at 06:00 and the updates from it.
    let a = HttpArchive::new(
        client.clone(),
        &format!("{base}/rv/"),
        archive_options(T0600 + 20 * 60, T0600 + 40 * 60),
    );
    let files = a.list().await.unwrap();
    assert_eq!(
        kinds(&files),
        [
            "rib.20140523.0600.bz2",
            "updates.20140523.0600.bz2",
            "updates.20140523.0615.bz2",
            "updates.20140523.0630.bz2"
        ]
    );
    let (reports, out) = a
        .read(&options(), std::sync::Arc::new(KeepAll), Vec::new())
        .await
        .unwrap();
    assert_eq!(reports.len(), 4);
    assert!(matches!(out[0], Message::Snapshot(_)));
    assert_eq!(out.len(), 4);
    assert!(out[1..].iter().all(|m| matches!(
        m,
        Message::Update(u) if u.change == Change::Withdraw
    )));

    // Every file named in the range.
    let mut o = archive_options(T0600 + 10 * 60, T0600 + 3 * 3600);
    o.select = Select::All;
    let files = HttpArchive::new(client.clone(), &format!("{base}/rv"), o)
        .list()
        .await
        .unwrap();
    assert_eq!(
        kinds(&files),
        [
            "updates.20140523.0615.bz2",
            "updates.20140523.0630.bz2",
            "updates.20140523.0645.bz2",
            "rib.20140523.0800.bz2"
        ]
    );

    // A start in May whose RIB is April's last.
    let files = HttpArchive::new(
        client,
        &format!("{base}/rv"),
        archive_options(1_398_902_400 + 60, 1_398_902_400 + 600),
    )
    .list()
    .await
    .unwrap();
    assert_eq!(
        kinds(&files),
        ["rib.20140430.2200.bz2", "updates.20140501.0000.bz2"]
    );
}

#[tokio::test]
async fn http_ris_layout_and_truncated_gzip() {
    let (_files, base) = archive_server().await;
    let a = HttpArchive::new(
        archive::client().unwrap(),
        &format!("{base}/ris/rrc00"),
        archive_options(T0600, T0600 + 900),
    );
    let files = a.list().await.unwrap();
    assert_eq!(
        kinds(&files),
        [
            "bview.20140523.0600.gz",
            "updates.20140523.0605.gz",
            "updates.20140523.0610.gz"
        ]
    );
    let (reports, out) = a
        .read(&options(), std::sync::Arc::new(KeepAll), Vec::new())
        .await
        .unwrap();
    assert!(matches!(out[0], Message::Snapshot(_)));
    assert!(!reports[1].truncated);
    assert!(reports[2].truncated, "{:?}", reports[2]);
    assert!(reports[2].records > 0);
}

#[tokio::test]
async fn http_errors_are_clear() {
    let (files, base) = archive_server().await;
    let client = archive::client().unwrap();
    let o = archive_options(T0600, T0600 + 900);

    // A base that is not an archive: 404 on the month's index.
    let e = HttpArchive::new(client.clone(), &format!("{base}/nothing"), o.clone())
        .list()
        .await
        .unwrap_err();
    assert!(matches!(e, ArchiveError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("/nothing/2014.05/"), "{e}");

    // Nothing in the range.
    let e = HttpArchive::new(
        client.clone(),
        &format!("{base}/rv"),
        archive_options(T0600 + 86_400 * 3, T0600 + 86_400 * 3 + 60),
    )
    .list()
    .await
    .unwrap_err();
    assert!(matches!(e, ArchiveError::Empty { .. }), "{e}");

    // A listed file that is gone.
    server::add(&files, "/gone/2014.05/bview.20140523.0600.gz", Vec::new());
    files
        .lock()
        .unwrap()
        .remove("/gone/2014.05/bview.20140523.0600.gz");
    let e = HttpArchive::new(client.clone(), &format!("{base}/gone"), o.clone())
        .read(&options(), std::sync::Arc::new(KeepAll), Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(e, ArchiveError::NotFound { .. }), "{e}");

    // A listing of junk only.
    files.lock().unwrap().insert(
        "/junk/2014.05/".to_string(),
        server::Entry {
            body: b"<html><a href=\"README\">x</a> <a href='rib.2014.bz2'> <a href=>".to_vec(),
            fail: 0,
        },
    );
    let e = HttpArchive::new(client.clone(), &format!("{base}/junk"), o.clone())
        .list()
        .await
        .unwrap_err();
    assert!(matches!(e, ArchiveError::Listing { .. }), "{e}");
    let mut ris = o.clone();
    ris.layout = Some(Layout::Ris);
    let e = HttpArchive::new(client.clone(), &format!("{base}/junk"), ris)
        .list()
        .await
        .unwrap_err();
    assert!(matches!(e, ArchiveError::Empty { .. }), "{e}");

    // Junk among real names is ignored.
    {
        let mut map = files.lock().unwrap();
        let page = map.get_mut("/ris/rrc00/2014.05/").unwrap();
        page.body.extend_from_slice(
            b"<a href=\"bview.2014.gz\">junk</a><a href=\"updates.20140523.9999.gz\"></a>",
        );
    }
    let got = HttpArchive::new(client.clone(), &format!("{base}/ris/rrc00"), o.clone())
        .list()
        .await
        .unwrap();
    assert_eq!(got.len(), 3);

    // A size cap.
    let mut small = o.clone();
    small.max_bytes = 50;
    let a = HttpArchive::new(client.clone(), &format!("{base}/rv"), small);
    let e = a
        .get(&format!("{base}/rv/2014.05/RIBS/rib.20140523.0600.bz2"))
        .await
        .unwrap_err();
    assert!(matches!(e, ArchiveError::TooLarge { .. }), "{e}");
}

#[tokio::test]
async fn http_retries_a_500() {
    let (files, base) = archive_server().await;
    files
        .lock()
        .unwrap()
        .get_mut("/rv/2014.05/RIBS/")
        .unwrap()
        .fail = 2;
    let a = HttpArchive::new(
        archive::client().unwrap(),
        &format!("{base}/rv"),
        archive_options(T0600 + 60, T0600 + 120),
    );
    assert_eq!(a.list().await.unwrap().len(), 2);

    // More failures than retries: the status.
    files
        .lock()
        .unwrap()
        .get_mut("/rv/2014.05/RIBS/")
        .unwrap()
        .fail = 10;
    let e = a.list().await.unwrap_err();
    assert!(matches!(e, ArchiveError::Status { status: 500, .. }), "{e}");
}

#[tokio::test]
async fn poller_hands_out_new_updates() {
    let (files, base) = archive_server().await;
    let a = HttpArchive::new(
        archive::client().unwrap(),
        &format!("{base}/rv"),
        archive_options(T0600 + 50 * 60, T0600 + 50 * 60),
    );
    let mut poller = Poller::new(a);
    let now = u64::from(T0600) + 3600;
    let first = poller.poll(now).await.unwrap();
    assert_eq!(first.len(), 5, "{:?}", kinds(&first));
    assert!(poller.poll(now).await.unwrap().is_empty());
    server::add(
        &files,
        "/rv/2014.05/UPDATES/updates.20140523.0700.bz2",
        bz2(&small_updates(T0600 + 3600)),
    );
    let next = poller.poll(now + 60).await.unwrap();
    assert_eq!(kinds(&next), ["updates.20140523.0700.bz2"]);
}

#[test]
fn local_directory_recursively_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("2014.05/UPDATES");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(dir.path().join("2014.05/RIBS")).unwrap();
    std::fs::write(
        dir.path().join("2014.05/RIBS/rib.20140523.0600.bz2"),
        bz2(&small_rib(T0600)),
    )
    .unwrap();
    std::fs::write(
        sub.join("updates.20140523.0615.bz2"),
        bz2(&small_updates(T0600 + 900)),
    )
    .unwrap();
    std::fs::write(
        sub.join("updates.20140523.0600.bz2"),
        bz2(&small_updates(T0600)),
    )
    .unwrap();
    std::fs::write(sub.join("notes.txt"), b"not MRT").unwrap();
    let o = archive_options(T0600 + 60, T0600 + 3600);
    let files = archive::list_dir(dir.path(), &o).unwrap();
    assert_eq!(
        kinds(&files),
        [
            "rib.20140523.0600.bz2",
            "updates.20140523.0600.bz2",
            "updates.20140523.0615.bz2"
        ]
    );
    let mut out = Vec::new();
    let reports = archive::read_dir(dir.path(), &o, &options(), &KeepAll, &mut out).unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(out.len(), 3);
    let e = archive::list_dir(dir.path(), &archive_options(0, 10)).unwrap_err();
    assert!(matches!(e, ArchiveError::Empty { .. }), "{e}");
}
