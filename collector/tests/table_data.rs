//! The prefix table (`tumen_collector::table`): loaders and lookups on the
//! real routing data in `../shared/data` (the spot checks of its README,
//! exact prefix counts, the truncated MRT dump) and on small inline inputs
//! of every format, malformed ones included; longest-prefix-match edge
//! cases.
//!
//! The expected MRT figures were computed independently of bgpkit-parser
//! by a small Python reader of TABLE_DUMP_V2 (bz2 module + struct):
//! 9,073 whole records (one PEER_INDEX_TABLE and 9,072 RIB_IPV4_UNICAST)
//! ending at byte 15,273,283 of the 15,274,550 bytes that the cut bzip2
//! stream yields; 1.2.4.0/24 seen from 24151 (most peers) and 24409;
//! 5.128.0.0/14 with an AS_SET as the most common origin.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use tumen_collector::table::{
    load, load_with_report, read, Compression, Format, LineFault, LoadError, LoadReport, MrtFault,
    Origin, PrefixTable,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/");

fn data(name: &str) -> String {
    format!("{DATA}{name}")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("test prefix")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// The matched prefix (as text) and primary ASN for `addr`.
fn lpm(table: &PrefixTable, addr: &str) -> Option<(String, u32)> {
    table
        .lookup(ip(addr))
        .map(|(n, o)| (n.to_string(), o.primary()))
}

fn some(prefix: &str, asn: u32) -> Option<(String, u32)> {
    Some((prefix.to_string(), asn))
}

fn read_str(text: &str, format: Option<Format>) -> Result<(PrefixTable, LoadReport), LoadError> {
    read(text.as_bytes(), "inline.txt", format)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    enc.write_all(bytes).expect("bzip2 to memory");
    enc.finish().expect("bzip2 to memory")
}

/// The line fault of a load that must fail on a line, with its number.
fn line_fault(result: Result<(PrefixTable, LoadReport), LoadError>) -> (u64, LineFault, String) {
    match result {
        Err(LoadError::Line {
            path,
            line,
            fault,
            text,
        }) => {
            assert_eq!(path, "inline.txt");
            (line, fault, text)
        }
        Err(other) => panic!("expected a line error, got {other}"),
        Ok((t, _)) => panic!("expected a line error, loaded {} prefixes", t.len()),
    }
}

// ---------------------------------------------------------------------
// Real data
// ---------------------------------------------------------------------

#[test]
fn full_2014_table_loads_with_its_exact_prefix_count() {
    let (table, report) =
        load_with_report(data("ipasn_20140513.dat.gz"), None).expect("2014 table loads");
    assert_eq!(table.len(), 512_621);
    assert_eq!(table.len_v4(), 512_621);
    assert_eq!(table.len_v6(), 0);
    assert_eq!(report.format, Format::Pyasn);
    assert_eq!(report.compression, Compression::Gzip);
    assert_eq!(report.records, 512_621);
    assert_eq!(report.prefixes, 512_621);
    assert_eq!(report.skipped, 0);
    assert!(!report.truncated);
}

#[test]
fn spot_checks_of_the_2014_table() {
    let table = load(data("ipasn_20140513.dat.gz")).expect("2014 table loads");
    // data/README.md
    for (addr, prefix) in [
        ("175.45.176.15", "175.45.176.0/24"),
        ("175.45.177.10", "175.45.177.0/24"),
        ("175.45.178.200", "175.45.178.0/24"),
        ("175.45.179.255", "175.45.179.0/24"),
    ] {
        assert_eq!(lpm(&table, addr), some(prefix, 131279), "{addr}");
    }
    assert_eq!(lpm(&table, "210.52.109.1"), some("210.52.109.0/24", 9929));
    assert_eq!(lpm(&table, "77.94.35.7"), some("77.94.35.0/24", 30721));
    assert_eq!(lpm(&table, "188.43.1.1"), some("188.43.0.0/16", 20485));
    assert_eq!(lpm(&table, "188.43.255.254"), some("188.43.0.0/16", 20485));
    assert_eq!(lpm(&table, "219.158.100.1"), some("219.158.96.0/19", 4837));
    assert_eq!(lpm(&table, "219.158.33.1"), some("219.158.32.0/20", 4837));
    // Nesting in the real table: 77.94.42.0/23 (21166) holds
    // 77.94.42.0/24 (30721); 77.94.32.0/19 (30721) holds both.
    assert_eq!(lpm(&table, "77.94.42.5"), some("77.94.42.0/24", 30721));
    assert_eq!(lpm(&table, "77.94.43.5"), some("77.94.42.0/23", 21166));
    assert_eq!(lpm(&table, "77.94.38.1"), some("77.94.32.0/19", 30721));
    // 219.158.128.0/17 and /18 (China Unicom AS4808)
    assert_eq!(lpm(&table, "219.158.130.1"), some("219.158.128.0/18", 4808));
    // 175.45.176.0/22 is not announced whole: the /24s are.
    assert_eq!(
        table.get(&net("175.45.176.0/24")),
        Some(&Origin::Asn(131279))
    );
    assert_eq!(table.get(&net("175.45.176.0/22")), None);
    // The ASN-only lookup agrees with the full one everywhere.
    let mut x = 0x0123_4567_89ab_cdef_u64;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let addr = IpAddr::V4(Ipv4Addr::from((x >> 32) as u32));
        assert_eq!(
            table.lookup_asn(addr),
            table.lookup(addr).map(|(_, o)| o.primary()),
            "{addr}"
        );
    }
    // Unrouted and reserved space.
    assert_eq!(lpm(&table, "10.1.2.3"), None);
    assert_eq!(lpm(&table, "198.18.176.1"), None);
    assert_eq!(table.lookup_asn(ip("2001:db8::1")), None);
}

#[test]
fn table_2015_counts_and_ipv6_lookups() {
    let (table, report) =
        load_with_report(data("ipasn6_20151101.dat.gz"), None).expect("2015 table loads");
    assert_eq!(table.len_v4(), 606_138);
    assert_eq!(table.len_v6(), 27_693);
    assert_eq!(report.prefixes, 606_138 + 27_693);
    assert_eq!(lpm(&table, "175.45.177.1"), some("175.45.177.0/24", 131279));
    assert_eq!(
        lpm(&table, "2001:4860:4860::8888"),
        some("2001:4860::/32", 15169)
    );
    assert_eq!(
        lpm(&table, "2a00:1450:4001::1"),
        some("2a00:1450::/32", 15169)
    );
    // 2001:200::/32 (WIDE, 2500) with more-specifics inside.
    assert_eq!(lpm(&table, "2001:200:1::1"), some("2001:200::/32", 2500));
    assert_eq!(
        lpm(&table, "2001:200:136::1"),
        some("2001:200:136::/48", 9367)
    );
    assert_eq!(
        lpm(&table, "2001:200:e102::1"),
        some("2001:200:e000::/35", 7660)
    );
    assert_eq!(
        lpm(&table, "2001:200:e103::1"),
        some("2001:200:e103::/48", 7660)
    );
    assert_eq!(
        lpm(&table, "2001:7fa:11:4:ffff::1"),
        some("2001:7fa:11:4::/64", 132405)
    );
    assert_eq!(lpm(&table, "2001:db8::1"), None);
    assert_eq!(lpm(&table, "::1"), None);
}

#[test]
fn merging_tables_later_overrides_equal_prefixes() {
    let mut table = load(data("ipasn_20140513.dat.gz")).expect("2014 table loads");
    assert_eq!(lpm(&table, "1.0.7.1"), some("1.0.7.0/24", 56203));
    let report = table
        .load_into(data("ipasn6_20151101.dat.gz"), Some(Format::Pyasn))
        .expect("2015 table loads");
    assert_eq!(report.prefixes, 633_831);
    // 87,850 prefixes of 2014 are not in the 2015 table (checked with
    // `join` on the sorted files).
    assert_eq!(table.len(), 606_138 + 27_693 + 87_850);
    assert_eq!(lpm(&table, "1.0.7.1"), some("1.0.7.0/24", 38803));
    assert_eq!(lpm(&table, "1.0.130.1"), some("1.0.130.0/24", 23969));
    assert_eq!(lpm(&table, "2001:4860::1"), some("2001:4860::/32", 15169));
}

#[test]
fn truncated_mrt_dump_is_read_to_its_last_whole_record() {
    let (table, report) = load_with_report(data("rib.20140523.0600_firstMB.bz2"), None)
        .expect("a truncated dump is not an error");
    assert_eq!(report.format, Format::Mrt);
    assert_eq!(report.compression, Compression::Bzip2);
    assert!(report.truncated);
    assert_eq!(report.records, 9_073);
    assert_eq!(report.prefixes, 9_072);
    assert_eq!(report.skipped, 1, "the PEER_INDEX_TABLE");
    assert_eq!(report.bytes, 15_273_283);
    assert!(report.to_string().contains("truncated"), "{report}");
    assert_eq!(table.len(), 9_072);
    // A default route is in this RIB, seen by one peer from AS16637.
    assert_eq!(table.get(&net("0.0.0.0/0")), Some(&Origin::Asn(16637)));
    assert_eq!(lpm(&table, "1.0.0.1"), some("1.0.0.0/24", 15169));
    assert_eq!(lpm(&table, "1.0.4.200"), some("1.0.4.0/24", 56203));
    assert_eq!(lpm(&table, "5.63.184.1"), some("5.63.184.0/24", 60801));
    assert_eq!(table.lookup_asn(ip("1.2.4.1")), Some(24151));
    assert_eq!(
        table.get(&net("1.2.4.0/24")),
        Some(&Origin::Multi(
            vec![Origin::Asn(24151), Origin::Asn(24409)].into()
        ))
    );
    let set = table.get(&net("5.128.0.0/14")).expect("5.128.0.0/14");
    assert_eq!(
        set,
        &Origin::Multi(
            vec![
                Origin::AsSet(vec![50923, 65014, 65111, 65200, 65500].into()),
                Origin::Asn(50923),
                Origin::AsSet(vec![50923, 65014, 65100, 65111, 65500].into()),
            ]
            .into()
        )
    );
    assert_eq!(set.primary(), 50923);
    assert_eq!(
        set.to_string(),
        "50923,65014,65111,65200,65500_50923_50923,65014,65100,65111,65500"
    );
}

#[test]
fn real_files_are_recognised() {
    let head = |name: &str| -> Vec<u8> {
        let bytes = std::fs::read(data(name)).expect("data file");
        let mut out = Vec::new();
        match Compression::detect(&bytes) {
            Compression::Gzip => {
                use std::io::Read;
                let mut d = flate2::read::GzDecoder::new(&bytes[..]);
                let mut buf = vec![0; 4096];
                let n = d.read(&mut buf).expect("gunzip");
                out.extend_from_slice(&buf[..n]);
            }
            Compression::Bzip2 => {
                use std::io::Read;
                let mut d = bzip2::read::BzDecoder::new(&bytes[..]);
                let mut buf = vec![0; 4096];
                let n = d.read(&mut buf).expect("bunzip2");
                out.extend_from_slice(&buf[..n]);
            }
            Compression::None => out = bytes,
        }
        out
    };
    let path = std::path::Path::new("unnamed");
    assert_eq!(
        Format::detect(path, &head("ipasn_20140513.dat.gz")),
        Some(Format::Pyasn)
    );
    assert_eq!(
        Format::detect(path, &head("rib.20140523.0600_firstMB.bz2")),
        Some(Format::Mrt)
    );
}

// ---------------------------------------------------------------------
// pyasn / IPASN dat
// ---------------------------------------------------------------------

#[test]
fn pyasn_lines_comments_and_compression() {
    let text = "; IP-ASN32-DAT file\n; Prefixes: 3\n\n1.0.0.0/24\t15169\r\n\
                2001:200::/32\t2500\n10.0.0.0/8 64496\n";
    for (bytes, compression) in [
        (text.as_bytes().to_vec(), Compression::None),
        (gzip(text.as_bytes()), Compression::Gzip),
        (bzip2(text.as_bytes()), Compression::Bzip2),
    ] {
        let (table, report) = read(&bytes[..], "t.dat", None).expect("loads");
        assert_eq!(report.format, Format::Pyasn);
        assert_eq!(report.compression, compression);
        assert_eq!((report.records, report.prefixes), (3, 3));
        assert_eq!(table.len_v4(), 2);
        assert_eq!(table.len_v6(), 1);
        assert_eq!(lpm(&table, "1.0.0.77"), some("1.0.0.0/24", 15169));
        assert_eq!(lpm(&table, "2001:200::1"), some("2001:200::/32", 2500));
        assert_eq!(lpm(&table, "10.200.0.1"), some("10.0.0.0/8", 64496));
    }
}

#[test]
fn pyasn_later_line_overrides_an_equal_prefix() {
    let (table, report) = read_str("1.0.0.0/24\t1\n1.0.0.0/24\t2\n", None).expect("loads");
    assert_eq!(report.prefixes, 2);
    assert_eq!(table.len(), 1);
    assert_eq!(lpm(&table, "1.0.0.1"), some("1.0.0.0/24", 2));
}

#[test]
fn pyasn_malformed_lines() {
    let fmt = Some(Format::Pyasn);
    let cases: &[(&str, u64)] = &[
        ("1.0.0.0/24\t15169\n1.0.1.0/24\n", 2), // no ASN
        ("1.0.0.0/24\t15169\textra\n", 1),      // extra field
        ("; c\n1.0.0.0/33\t15169\n", 2),        // length out of range
        ("1.0.0/24\t15169\n", 1),               // not an address
        ("1.0.0.0\t15169\n", 1),                // no length
        ("1.0.0.0/24\tAS15169\n", 1),           // not a number
        ("1.0.0.0/24\t-1\n", 1),                // negative
        ("1.0.0.0/24\t4294967296\n", 1),        // over u32
        ("1.0.0.0/24\t1__2\n", 1),              // empty multi-origin part
        ("\n\n2001:db8::/129\t1\n", 3),         // v6 length out of range
    ];
    for &(text, line) in cases {
        let (at, fault, quoted) = line_fault(read_str(text, fmt));
        assert_eq!(at, line, "{text:?}: {fault}");
        let bad_line = text.lines().nth(line as usize - 1).expect("line");
        assert_eq!(quoted, bad_line.trim(), "{text:?}");
    }
    let (_, fault, _) = line_fault(read_str("1.0.0.0/24\n", fmt));
    assert_eq!(
        fault,
        LineFault::FieldCount {
            expected: "2 (prefix/length, origin AS)",
            found: 1
        }
    );
    let (_, fault, _) = line_fault(read_str("1.0.0/24\t1\n", fmt));
    assert_eq!(fault, LineFault::Prefix("1.0.0/24".into()));
    let (_, fault, _) = line_fault(read_str("1.0.0.0/24\tAS1\n", fmt));
    assert!(matches!(fault, LineFault::Origin { ref text, .. } if text == "AS1"));

    // The message names file, line and the offending text.
    let err = read_str("1.0.0.0/24\t1\n1.0.0.0/24\tx\n", fmt).expect_err("bad ASN");
    let msg = err.to_string();
    assert!(msg.starts_with("inline.txt:2: "), "{msg}");
    assert!(msg.contains("\"x\""), "{msg}");
}

#[test]
fn non_utf8_and_overlong_lines_are_errors() {
    let mut bytes = b"1.0.0.0/24\t1\n1.0.1.0/24\t".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let (line, fault, _) = line_fault(read(&bytes[..], "inline.txt", Some(Format::Pyasn)));
    assert_eq!((line, fault), (2, LineFault::NotUtf8));

    let long = format!("1.0.0.0/24\t1\n{}\n", "9".repeat(100_000));
    let (line, fault, text) = line_fault(read_str(&long, Some(Format::Pyasn)));
    assert_eq!((line, fault), (2, LineFault::TooLong(64 * 1024)));
    assert!(text.len() < 300, "the quote is cut");
}

#[test]
fn a_cut_gzip_text_table_is_an_error() {
    let text: String = (0..5000)
        .map(|i| format!("10.{}.{}.0/24\t{i}\n", i / 256, i % 256))
        .collect();
    let gz = gzip(text.as_bytes());
    let cut = &gz[..gz.len() / 2];
    match read(cut, "cut.dat.gz", None) {
        Err(LoadError::Read { path, line, .. }) => {
            assert_eq!(path, "cut.dat.gz");
            assert!(line > 0);
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------
// CAIDA pfx2as
// ---------------------------------------------------------------------

#[test]
fn pfx2as_origins_multi_origin_and_as_sets() {
    let text = "1.0.0.0\t24\t13335\n2.0.0.0\t16\t64496_64497\n3.0.0.0\t8\t64498,64499\n\
                4.0.0.0\t8\t64500_64501,64502\n2001:db8::\t32\t64503\n";
    let (table, report) = read_str(text, None).expect("loads");
    assert_eq!(report.format, Format::Pfx2as);
    assert_eq!(table.len(), 5);
    assert_eq!(lpm(&table, "1.0.0.9"), some("1.0.0.0/24", 13335));
    let (_, multi) = table.lookup(ip("2.0.3.4")).expect("2/16");
    assert_eq!(
        multi,
        &Origin::Multi(vec![Origin::Asn(64496), Origin::Asn(64497)].into())
    );
    assert_eq!(multi.primary(), 64496);
    assert!(multi.contains(64497));
    let (_, set) = table.lookup(ip("3.3.3.3")).expect("3/8");
    assert_eq!(set, &Origin::AsSet(vec![64498, 64499].into()));
    assert_eq!(set.primary(), 64498);
    let (_, combo) = table.lookup(ip("4.4.4.4")).expect("4/8");
    assert_eq!(
        combo,
        &Origin::Multi(vec![Origin::Asn(64500), Origin::AsSet(vec![64501, 64502].into())].into())
    );
    assert_eq!(combo.asns().collect::<Vec<_>>(), [64500, 64501, 64502]);
    assert_eq!(combo.to_string(), "64500_64501,64502");
    assert_eq!(lpm(&table, "2001:db8:1::1"), some("2001:db8::/32", 64503));
}

#[test]
fn pfx2as_malformed_lines() {
    let fmt = Some(Format::Pfx2as);
    for (text, want) in [
        ("1.0.0.0\t33\t1\n", LineFault::Length("33".into())),
        ("1.0.0.0\t-1\t1\n", LineFault::Length("-1".into())),
        ("1.0.0.0\t+8\t1\n", LineFault::Length("+8".into())),
        ("1.0.0.0\tx\t1\n", LineFault::Length("x".into())),
        ("2001:db8::\t129\t1\n", LineFault::Length("129".into())),
        ("1.0.0\t24\t1\n", LineFault::Address("1.0.0".into())),
        (
            "1.0.0.0\t24\n",
            LineFault::FieldCount {
                expected: "3 (address, prefix length, origin AS)",
                found: 2,
            },
        ),
    ] {
        let (line, fault, _) = line_fault(read_str(text, fmt));
        assert_eq!((line, fault), (1, want), "{text:?}");
    }
    for origin in ["1,", ",1", "1_", "1_,2", "1.5", "0x10", ""] {
        let text = format!("1.0.0.0\t24\t1\n1.0.1.0\t24\t{origin}\n");
        let result = read_str(&text, fmt);
        if origin.is_empty() {
            let (line, fault, _) = line_fault(result);
            assert_eq!(line, 2);
            assert!(matches!(fault, LineFault::FieldCount { found: 2, .. }));
        } else {
            let (line, fault, _) = line_fault(result);
            assert_eq!(line, 2, "{origin:?}");
            assert!(
                matches!(fault, LineFault::Origin { ref text, .. } if text == origin),
                "{origin:?}: {fault}"
            );
        }
    }
}

// ---------------------------------------------------------------------
// iptoasn TSV
// ---------------------------------------------------------------------

#[test]
fn iptoasn_ranges_become_covering_prefixes() {
    let text = "0.0.0.0\t0.255.255.255\t0\tNone\tNot routed\n\
                1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET - Cloudflare, Inc.\n\
                1.0.1.0\t1.0.3.255\t64496\tCN\tA network with spaces\n\
                1.0.4.5\t1.0.4.5\t64497\tAU\tone address\n\
                2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64498\tZZ\tdoc\n\
                2001:db9::\t2001:db9::2\t64499\n";
    let (table, report) = read_str(text, None).expect("loads");
    assert_eq!(report.format, Format::Iptoasn);
    assert_eq!(report.records, 6);
    assert_eq!(report.skipped, 1, "AS 0");
    // /24; /24 + /23; /32; /32; /127 + /128
    assert_eq!(report.prefixes, 1 + 2 + 1 + 1 + 2);
    assert_eq!(table.len(), 7);
    assert_eq!(lpm(&table, "0.1.2.3"), None);
    assert_eq!(lpm(&table, "1.0.0.255"), some("1.0.0.0/24", 13335));
    assert_eq!(lpm(&table, "1.0.1.0"), some("1.0.1.0/24", 64496));
    assert_eq!(lpm(&table, "1.0.2.0"), some("1.0.2.0/23", 64496));
    assert_eq!(lpm(&table, "1.0.3.255"), some("1.0.2.0/23", 64496));
    assert_eq!(lpm(&table, "1.0.4.4"), None);
    assert_eq!(lpm(&table, "1.0.4.5"), some("1.0.4.5/32", 64497));
    assert_eq!(lpm(&table, "1.0.4.6"), None);
    assert_eq!(
        lpm(&table, "2001:db8:1234::1"),
        some("2001:db8::/32", 64498)
    );
    assert_eq!(lpm(&table, "2001:db9::1"), some("2001:db9::/127", 64499));
    assert_eq!(lpm(&table, "2001:db9::2"), some("2001:db9::2/128", 64499));
    assert_eq!(lpm(&table, "2001:db9::3"), None);
}

#[test]
fn iptoasn_whole_space_and_malformed_lines() {
    let (table, _) =
        read_str("0.0.0.0\t255.255.255.255\t64496\n", Some(Format::Iptoasn)).expect("loads");
    assert_eq!(lpm(&table, "255.255.255.255"), some("0.0.0.0/0", 64496));

    let fmt = Some(Format::Iptoasn);
    let (line, fault, _) = line_fault(read_str(
        "1.0.0.0\t1.0.0.255\t1\n1.0.2.0\t1.0.1.255\t2\n",
        fmt,
    ));
    assert_eq!(line, 2);
    assert_eq!(
        fault,
        LineFault::RangeOrder {
            start: "1.0.2.0".into(),
            end: "1.0.1.255".into()
        }
    );
    let (_, fault, _) = line_fault(read_str("1.0.0.0\t2001:db8::\t1\n", fmt));
    assert!(matches!(fault, LineFault::RangeFamily { .. }), "{fault}");
    let (_, fault, _) = line_fault(read_str("1.0.0.0\t1.0.0.256\t1\n", fmt));
    assert_eq!(fault, LineFault::Address("1.0.0.256".into()));
    let (_, fault, _) = line_fault(read_str("1.0.0.0\t1.0.0.255\n", fmt));
    assert!(
        matches!(fault, LineFault::FieldCount { found: 2, .. }),
        "{fault}"
    );
    let (_, fault, _) = line_fault(read_str("1.0.0.0\t1.0.0.255\tAS13335\tUS\tx\n", fmt));
    assert!(matches!(fault, LineFault::Origin { .. }), "{fault}");
}

// ---------------------------------------------------------------------
// MRT
// ---------------------------------------------------------------------

/// An MRT record: common header and body.
fn mrt_record(kind: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1_400_000_000u32.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&subtype.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// ORIGIN IGP and an AS_PATH of (segment type, ASNs) with 4-byte ASNs
/// (`wide`) or 2-byte ones.
fn path_attributes(segments: &[(u8, &[u32])], wide: bool) -> Vec<u8> {
    let mut path = Vec::new();
    for (kind, asns) in segments {
        path.push(*kind);
        path.push(asns.len() as u8);
        for a in *asns {
            if wide {
                path.extend_from_slice(&a.to_be_bytes());
            } else {
                path.extend_from_slice(&(*a as u16).to_be_bytes());
            }
        }
    }
    let mut out = vec![0x40, 1, 1, 0]; // ORIGIN IGP
    out.extend_from_slice(&[0x40, 2, path.len() as u8]);
    out.extend_from_slice(&path);
    out.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 1]); // NEXT_HOP
    out
}

const SEQ: u8 = 2;
const SET: u8 = 1;

/// A TABLE_DUMP_V2 RIB_IPV4_UNICAST body: one entry per attribute list.
fn rib_v4(prefix: [u8; 4], len: u8, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut body = 7u32.to_be_bytes().to_vec();
    body.push(len);
    body.extend_from_slice(&prefix[..len.div_ceil(8) as usize]);
    body.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (peer, attrs) in entries.iter().enumerate() {
        body.extend_from_slice(&(peer as u16).to_be_bytes());
        body.extend_from_slice(&1_400_000_000u32.to_be_bytes());
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
    }
    body
}

/// A TABLE_DUMP (v1) AFI_IPv4 body.
fn table_dump_v4(prefix: [u8; 4], len: u8, peer_as: u16, attrs: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0, 0, 1]; // view, sequence
    body.extend_from_slice(&prefix);
    body.push(len);
    body.push(1); // status
    body.extend_from_slice(&1_400_000_000u32.to_be_bytes());
    body.extend_from_slice(&[198, 51, 100, 1]); // peer address
    body.extend_from_slice(&peer_as.to_be_bytes());
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body
}

fn read_mrt(bytes: &[u8]) -> Result<(PrefixTable, LoadReport), LoadError> {
    read(bytes, "inline.mrt", Some(Format::Mrt))
}

fn mrt_fault(result: Result<(PrefixTable, LoadReport), LoadError>) -> (u64, u64, MrtFault) {
    match result {
        Err(LoadError::Mrt {
            path,
            record,
            offset,
            fault,
        }) => {
            assert_eq!(path, "inline.mrt");
            (record, offset, fault)
        }
        Err(other) => panic!("expected an MRT error, got {other}"),
        Ok((_, report)) => panic!("expected an MRT error, read {report}"),
    }
}

/// Three prefixes: one origin, origins differing between peers, an AS
/// set at the end of the path; plus a multicast RIB that is skipped.
fn small_v2_dump() -> Vec<u8> {
    let mut dump = Vec::new();
    let a = path_attributes(&[(SEQ, &[3356, 4837, 131279])], true);
    dump.extend(mrt_record(
        13,
        2,
        &rib_v4([175, 45, 176, 0], 24, &[a.clone(), a]),
    ));
    let p1 = path_attributes(&[(SEQ, &[174, 64496])], true);
    let p2 = path_attributes(&[(SEQ, &[2914, 64497])], true);
    let p3 = path_attributes(&[(SEQ, &[3356, 64497, 64497])], true);
    dump.extend(mrt_record(
        13,
        2,
        &rib_v4([198, 51, 100, 0], 24, &[p1, p2, p3]),
    ));
    let s = path_attributes(&[(SEQ, &[3356, 64500]), (SET, &[64501, 64502])], true);
    dump.extend(mrt_record(13, 2, &rib_v4([203, 0, 113, 0], 24, &[s])));
    let m = path_attributes(&[(SEQ, &[3356, 64503])], true);
    dump.extend(mrt_record(13, 3, &rib_v4([224, 0, 0, 0], 4, &[m])));
    dump
}

#[test]
fn mrt_table_dump_v2_origins() {
    let dump = small_v2_dump();
    for bytes in [dump.clone(), gzip(&dump), bzip2(&dump)] {
        let (table, report) = read(&bytes[..], "x", None).expect("loads");
        assert_eq!(report.format, Format::Mrt);
        assert!(!report.truncated);
        assert_eq!(report.records, 4);
        assert_eq!(report.prefixes, 3);
        assert_eq!(report.skipped, 1, "multicast");
        assert_eq!(report.bytes, dump.len() as u64);
        assert_eq!(
            lpm(&table, "175.45.176.15"),
            some("175.45.176.0/24", 131279)
        );
        assert_eq!(
            table.get(&net("198.51.100.0/24")),
            Some(&Origin::Multi(
                vec![Origin::Asn(64497), Origin::Asn(64496)].into()
            )),
            "the origin most peers saw first"
        );
        assert_eq!(
            table.get(&net("203.0.113.0/24")),
            Some(&Origin::AsSet(vec![64501, 64502].into()))
        );
        assert_eq!(lpm(&table, "224.0.0.1"), None);
    }
}

#[test]
fn mrt_table_dump_v1_aggregates_peers() {
    let mut dump = Vec::new();
    let a = path_attributes(&[(SEQ, &[701, 64496])], false);
    let b = path_attributes(&[(SEQ, &[1239, 64497])], false);
    dump.extend(mrt_record(
        12,
        1,
        &table_dump_v4([192, 0, 2, 0], 24, 701, &a),
    ));
    dump.extend(mrt_record(
        12,
        1,
        &table_dump_v4([192, 0, 2, 0], 24, 1239, &b),
    ));
    dump.extend(mrt_record(
        12,
        1,
        &table_dump_v4([192, 0, 2, 0], 24, 3356, &b),
    ));
    dump.extend(mrt_record(
        12,
        1,
        &table_dump_v4([198, 18, 0, 0], 15, 701, &a),
    ));
    let (table, report) = read_mrt(&dump).expect("loads");
    assert_eq!((report.records, report.prefixes), (4, 2));
    assert_eq!(
        table.get(&net("192.0.2.0/24")),
        Some(&Origin::Multi(
            vec![Origin::Asn(64497), Origin::Asn(64496)].into()
        ))
    );
    assert_eq!(lpm(&table, "198.19.1.1"), some("198.18.0.0/15", 64496));
}

#[test]
fn mrt_cut_anywhere_reads_the_whole_records_before() {
    let dump = small_v2_dump();
    let len = |at: usize| {
        12 + u32::from_be_bytes([dump[at + 8], dump[at + 9], dump[at + 10], dump[at + 11]]) as usize
    };
    let first_two = len(0) + len(len(0));
    let first_three = first_two + len(first_two);
    for cut in [
        first_two + 5,
        first_two + 12,
        first_two + 20,
        first_three - 1,
    ] {
        let (table, report) = read_mrt(&dump[..cut]).expect("a cut dump is not an error");
        assert!(report.truncated, "cut at {cut}");
        assert_eq!(report.bytes, first_two as u64, "cut at {cut}");
        assert_eq!(report.records, 2);
        assert_eq!(table.len(), 2);
    }
    let (_, report) = read_mrt(&dump[..first_two]).expect("whole records");
    assert!(!report.truncated);
    // A cut compressed stream, too.
    let bz = bzip2(&dump);
    let (_, report) = read(&bz[..bz.len() - 10], "cut.bz2", Some(Format::Mrt)).expect("loads");
    assert!(report.truncated);
}

#[test]
fn mrt_malformed_records() {
    let good = mrt_record(
        13,
        2,
        &rib_v4([192, 0, 2, 0], 24, &[path_attributes(&[(SEQ, &[1])], true)]),
    );
    let at = good.len() as u64;

    // A BGP4MP update file is not a RIB.
    let mut bytes = good.clone();
    bytes.extend(mrt_record(16, 4, &[0; 20]));
    let (record, offset, fault) = mrt_fault(read_mrt(&bytes));
    assert_eq!((record, offset), (2, at));
    assert!(matches!(fault, MrtFault::NotRib(16)), "{fault}");

    // Not an MRT type.
    let mut bytes = good.clone();
    bytes.extend(mrt_record(99, 0, &[]));
    assert!(matches!(
        mrt_fault(read_mrt(&bytes)).2,
        MrtFault::UnknownType(99)
    ));

    // A length no RIB record has.
    let mut bytes = good.clone();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 13, 0, 2, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        mrt_fault(read_mrt(&bytes)).2,
        MrtFault::TooLong(u32::MAX)
    ));

    // A RIB record that ends inside its prefix (bgpkit-parser itself
    // drops RIB entries cut short, with a log warning).
    let mut body = rib_v4([192, 0, 2, 0], 24, &[path_attributes(&[(SEQ, &[1])], true)]);
    body.truncate(6); // sequence, length 24, one of three prefix bytes
    let mut bytes = good.clone();
    bytes.extend(mrt_record(13, 2, &body));
    let (record, _, fault) = mrt_fault(read_mrt(&bytes));
    assert_eq!(record, 2);
    assert!(matches!(fault, MrtFault::Parse(_)), "{fault}");

    // The message names the file, the record and its offset.
    let msg = read_mrt(&bytes).expect_err("bad").to_string();
    assert!(
        msg.starts_with(&format!("inline.mrt: MRT record 2 at byte {at}: ")),
        "{msg}"
    );
}

#[test]
fn mrt_reader_survives_corrupted_real_records() {
    use std::io::Read;
    let bytes = std::fs::read(data("rib.20140523.0600_firstMB.bz2")).expect("data file");
    let mut head = vec![0u8; 200_000];
    bzip2::read::BzDecoder::new(&bytes[..])
        .read_exact(&mut head)
        .expect("first 200 kB");
    let mut state = 0x1234_5678_9abc_def0_u64;
    let mut rng = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut copy = head.clone();
        for _ in 0..(1 + rng() % 32) {
            let at = (rng() as usize) % copy.len();
            copy[at] = rng() as u8;
        }
        let cut = (rng() as usize) % copy.len();
        // Any outcome but a panic: a table, or an error naming a record.
        let _ = read_mrt(&copy[..cut]);
    }
}

// ---------------------------------------------------------------------
// Format recognition
// ---------------------------------------------------------------------

#[test]
fn formats_are_recognised_from_content_then_name() {
    use std::path::Path;
    let p = Path::new("table");
    assert_eq!(Format::detect(p, b"; comment\n"), Some(Format::Pyasn));
    assert_eq!(Format::detect(p, b"1.0.0.0/24\t1\n"), Some(Format::Pyasn));
    assert_eq!(
        Format::detect(p, b"# c\n1.0.0.0\t24\t1_2\n"),
        Some(Format::Pfx2as)
    );
    assert_eq!(
        Format::detect(p, b"2001:db8::\t32\t1\n"),
        Some(Format::Pfx2as)
    );
    assert_eq!(
        Format::detect(p, b"1.0.0.0\t1.0.0.255\t13335\tUS\tX\n"),
        Some(Format::Iptoasn)
    );
    assert_eq!(Format::detect(p, &small_v2_dump()), Some(Format::Mrt));
    assert_eq!(Format::detect(p, b"hello world\n"), None);
    assert_eq!(Format::detect(p, b""), None);
    assert_eq!(Format::detect(p, &[0u8; 64]), None);
    // By name when the content does not tell.
    for (name, format) in [
        ("ipasn_20140513.dat.gz", Format::Pyasn),
        ("routeviews-rv2-20240101-1200.pfx2as.gz", Format::Pfx2as),
        ("ip2asn-v4.tsv.gz", Format::Iptoasn),
        ("rib.20140523.0600.bz2", Format::Mrt),
        ("bview.20240101.0000.gz", Format::Mrt),
    ] {
        assert_eq!(Format::detect(Path::new(name), b""), Some(format), "{name}");
    }
    // An empty file named as a table is an empty table.
    let (table, _) = read(&b""[..], "empty.dat", None).expect("empty table");
    assert!(table.is_empty());
    match read(&b"hello\n"[..], "notes.txt", None) {
        Err(LoadError::UnknownFormat { path }) => assert_eq!(path, "notes.txt"),
        other => panic!("expected UnknownFormat, got {other:?}"),
    }
    assert_eq!("PFX2AS".parse::<Format>(), Ok(Format::Pfx2as));
    assert_eq!("ip2asn".parse::<Format>(), Ok(Format::Iptoasn));
    assert!("csv".parse::<Format>().is_err());
    assert_eq!(Format::Mrt.to_string(), "mrt");
}

#[test]
fn a_missing_file_names_its_path() {
    let err = load("/nonexistent/table.dat").expect_err("missing");
    assert!(matches!(err, LoadError::Open { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/table.dat: "),
        "{err}"
    );
}

// ---------------------------------------------------------------------
// Longest-prefix match
// ---------------------------------------------------------------------

#[test]
fn lpm_nested_default_host_routes_and_adjacent_ranges() {
    let table: PrefixTable = [
        ("0.0.0.0/0", 1),
        ("10.0.0.0/8", 2),
        ("10.1.0.0/16", 3),
        ("10.1.2.0/24", 4),
        ("10.1.2.3/32", 5),
        ("10.1.3.0/24", 6), // adjacent to 10.1.2.0/24
        ("10.255.255.255/32", 7),
        ("255.255.255.255/32", 8),
        ("::/0", 9),
        ("2001:db8::/32", 10),
        ("2001:db8::1/128", 11),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 12),
    ]
    .into_iter()
    .map(|(p, a)| (net(p), Origin::Asn(a)))
    .collect();
    assert_eq!(table.len(), 12);
    let cases = [
        ("0.0.0.0", "0.0.0.0/0", 1),
        ("9.255.255.255", "0.0.0.0/0", 1),
        ("10.0.0.0", "10.0.0.0/8", 2),
        ("10.1.0.0", "10.1.0.0/16", 3),
        ("10.1.1.255", "10.1.0.0/16", 3),
        ("10.1.2.0", "10.1.2.0/24", 4),
        ("10.1.2.2", "10.1.2.0/24", 4),
        ("10.1.2.3", "10.1.2.3/32", 5),
        ("10.1.2.4", "10.1.2.0/24", 4),
        ("10.1.2.255", "10.1.2.0/24", 4),
        ("10.1.3.0", "10.1.3.0/24", 6),
        ("10.1.3.255", "10.1.3.0/24", 6),
        ("10.1.4.0", "10.1.0.0/16", 3),
        ("10.255.255.254", "10.0.0.0/8", 2),
        ("10.255.255.255", "10.255.255.255/32", 7),
        ("11.0.0.0", "0.0.0.0/0", 1),
        ("255.255.255.254", "0.0.0.0/0", 1),
        ("255.255.255.255", "255.255.255.255/32", 8),
        ("::", "::/0", 9),
        ("2001:db8::", "2001:db8::/32", 10),
        ("2001:db8::1", "2001:db8::1/128", 11),
        ("2001:db8::2", "2001:db8::/32", 10),
        ("2001:db9::", "::/0", 9),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "::/0", 9),
        (
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
            12,
        ),
    ];
    for (addr, prefix, asn) in cases {
        assert_eq!(lpm(&table, addr), some(prefix, asn), "{addr}");
    }
}

#[test]
fn lpm_empty_table_families_and_changes_after_lookups() {
    let mut table = PrefixTable::new();
    assert!(table.is_empty());
    assert_eq!(lpm(&table, "1.2.3.4"), None);
    assert_eq!(lpm(&table, "::1"), None);

    table.insert(net("10.0.0.0/8"), Origin::Asn(1));
    // IPv4 prefixes never answer for IPv6 addresses, even mapped ones.
    assert_eq!(lpm(&table, "::ffff:10.0.0.1"), None);
    assert_eq!(lpm(&table, "10.9.9.9"), some("10.0.0.0/8", 1));
    // Adding after a lookup rebuilds the lookup structure.
    table.insert(net("10.9.0.0/16"), Origin::Asn(2));
    assert_eq!(lpm(&table, "10.9.9.9"), some("10.9.0.0/16", 2));
    // Replacing an origin keeps the prefix, returns the old origin.
    assert_eq!(
        table.insert(net("10.9.0.0/16"), Origin::Asn(3)),
        Some(Origin::Asn(2))
    );
    assert_eq!(lpm(&table, "10.9.9.9"), some("10.9.0.0/16", 3));
    assert_eq!(
        table.lookup_asn(ip("10.9.9.9")),
        Some(3),
        "the ASN index follows"
    );
    // Host bits are cleared.
    table.insert(net("10.9.8.7/24"), Origin::Asn(4));
    assert_eq!(table.get(&net("10.9.8.0/24")), Some(&Origin::Asn(4)));
    assert_eq!(lpm(&table, "10.9.8.1"), some("10.9.8.0/24", 4));
    assert_eq!(table.len(), 3);
    table.freeze();
    assert!(table.range_count() >= 5);
    let listed: Vec<String> = table.iter().map(|(n, o)| format!("{n} {o}")).collect();
    assert_eq!(listed, ["10.0.0.0/8 1", "10.9.0.0/16 3", "10.9.8.0/24 4"]);
}

#[test]
fn merge_and_extend_let_the_later_table_win() {
    let mut base: PrefixTable = [("10.0.0.0/8", 1), ("10.1.0.0/16", 2)]
        .into_iter()
        .map(|(p, a)| (net(p), Origin::Asn(a)))
        .collect();
    assert_eq!(lpm(&base, "10.1.1.1"), some("10.1.0.0/16", 2));
    let later: PrefixTable = [("10.1.0.0/16", 20), ("2001:db8::/32", 30)]
        .into_iter()
        .map(|(p, a)| (net(p), Origin::Asn(a)))
        .collect();
    base.merge(later);
    assert_eq!(base.len(), 3);
    assert_eq!(lpm(&base, "10.1.1.1"), some("10.1.0.0/16", 20));
    assert_eq!(lpm(&base, "10.2.1.1"), some("10.0.0.0/8", 1));
    assert_eq!(lpm(&base, "2001:db8::1"), some("2001:db8::/32", 30));
    base.extend([(net("10.0.0.0/8"), Origin::Asn(100))]);
    assert_eq!(lpm(&base, "10.2.1.1"), some("10.0.0.0/8", 100));
    let table = std::sync::Arc::new(base);
    let t = std::sync::Arc::clone(&table);
    let asn = std::thread::spawn(move || t.lookup_asn(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))))
        .join()
        .expect("thread");
    assert_eq!(asn, Some(20));
    assert_eq!(
        table
            .lookup_v6(Ipv6Addr::LOCALHOST)
            .map(|(n, _)| n.to_string()),
        None
    );
}

// ---------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------

#[test]
fn origin_notation_and_normal_form() {
    assert_eq!("13335".parse::<Origin>(), Ok(Origin::Asn(13335)));
    assert_eq!("4294967295".parse::<Origin>(), Ok(Origin::Asn(u32::MAX)));
    assert_eq!(
        "1,1".parse::<Origin>().map(|o| o.to_string()),
        Ok("1,1".into())
    );
    assert_eq!(
        "7_7".parse::<Origin>(),
        Ok(Origin::Asn(7)),
        "repeated origin"
    );
    assert_eq!(
        "1_2,3_4".parse::<Origin>(),
        Ok(Origin::Multi(
            vec![
                Origin::Asn(1),
                Origin::AsSet(vec![2, 3].into()),
                Origin::Asn(4)
            ]
            .into()
        ))
    );
    for text in ["1_2,3_4", "64496", "1,2,3"] {
        let o: Origin = text.parse().expect("origin");
        assert_eq!(o.to_string(), text);
    }
    for bad in ["", "_", ",", "1_", "a", "1 2", "4294967296", "+1"] {
        assert!(bad.parse::<Origin>().is_err(), "{bad:?}");
    }
    assert_eq!(Origin::as_set(vec![5]), Origin::Asn(5));
    assert_eq!(
        Origin::multi(vec![
            Origin::Asn(1),
            Origin::multi(vec![Origin::Asn(2), Origin::Asn(1)])
        ]),
        Origin::Multi(vec![Origin::Asn(1), Origin::Asn(2)].into())
    );
    assert_eq!(Origin::AsSet(Vec::new().into()).primary(), 0);
    assert!(Origin::Asn(1).is_single());
    assert_eq!(Origin::from(9).primary(), 9);
}
