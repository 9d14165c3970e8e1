//! The structured readers (mtr report/CSV/XML/JSON, scamper JSON, trippy
//! JSON/CSV) on fixtures in tests/fixtures/input/structured/ (see its
//! README for where each shape comes from): exact hops, names, AS
//! numbers, hidden hops, annotations, targets and origins; every skip
//! message; detection; no panic on mangled input.

#[path = "common/mangle.rs"]
mod common_mangle;
use common_mangle::{mangle, Rng};

use std::path::PathBuf;

use tumen_collector::input::{
    detect, read_format, read_traces, read_traces_with, Format, Options, Read,
};
use tumen_collector::model::Trace;

fn path(dir: &[&str], name: &str) -> PathBuf {
    let mut p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "input"]
        .iter()
        .collect();
    for d in dir {
        p.push(d);
    }
    p.push(name);
    p
}

fn fixture(name: &str) -> String {
    let p = path(&["structured"], name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read(name: &str) -> Read {
    read_traces(&fixture(name), name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A trace as lines: `ttl addr[name,AS] ... !X hidden`, `ttl *`.
fn show(t: &Trace) -> Vec<String> {
    t.hops
        .iter()
        .map(|h| {
            let mut s = h.ttl.to_string();
            if h.addrs.is_empty() && !h.hidden {
                s.push_str(" *");
            }
            for a in &h.addrs {
                s.push_str(&format!(" {a}"));
                let name = h.name_of(*a);
                let asn = h.asn_of(*a);
                if name.is_some() || asn.is_some() {
                    let mut tags = Vec::new();
                    if let Some(n) = name {
                        tags.push(n.to_string());
                    }
                    if let Some(n) = asn {
                        tags.push(format!("AS{n}"));
                    }
                    s.push_str(&format!("[{}]", tags.join(",")));
                }
            }
            for a in &h.annotations {
                s.push_str(&format!(" {a}"));
            }
            if h.hidden {
                s.push_str(" hidden");
            }
            s
        })
        .collect()
}

fn skipped(r: &Read) -> Vec<String> {
    r.skipped.iter().map(|e| e.to_string()).collect()
}

/// Every trace of a fixture as `origin target` and its hops.
fn traces(r: &Read) -> Vec<(String, Option<String>, Vec<String>)> {
    r.traces
        .iter()
        .map(|t| (t.origin.clone(), t.target.map(|a| a.to_string()), show(t)))
        .collect()
}

fn trace(
    origin: &str,
    target: Option<&str>,
    hops: &[&str],
) -> (String, Option<String>, Vec<String>) {
    (
        origin.to_string(),
        target.map(str::to_string),
        hops.iter().map(|h| h.to_string()).collect(),
    )
}

// ---------------------------------------------------------------------
// mtr --report and the curses screen

#[test]
fn mtr_report_narrow_and_wide_with_as_column_names_and_load_balancing() {
    let r = read("mtr-report.txt");
    assert_eq!(r.format, Format::MtrReport);
    assert_eq!(
        traces(&r),
        [
            // Target from `$ mtr -r -c 10 198.51.100.9`; `|  `|--` lines
            // add addresses, MPLS lines and the `<-- note` are ignored.
            trace(
                "mtr-report.txt:2",
                Some("198.51.100.9"),
                &[
                    "1 192.0.2.1",
                    "2 198.51.100.17 198.51.100.18 198.51.100.19",
                    "3 *",
                    "4 203.0.113.5",
                    "5 198.51.100.9",
                ]
            ),
            // -z: `AS???` gives nothing; a name alone is a hidden hop; an
            // address alone on the next line belongs to hop 5.
            trace(
                "mtr-report.txt:16",
                Some("2001:db8:178::20"),
                &[
                    "1 2001:db8:3::1",
                    "2 2001:db8:219::1[ae1.bb.example,AS4837]",
                    "3 *",
                    "4 hidden",
                    "5 2001:db8:178::20[AS64500] 2001:db8:178::21[AS64500]",
                ]
            ),
        ]
    );
    assert_eq!(
        skipped(&r),
        ["mtr-report.txt:13: not a line of an mtr report: `And the same from Singapore, with -z and -b (mtr 0.95):`"]
    );
}

#[test]
fn mtr_report_does_not_trust_an_ipv6_address_cut_by_the_narrow_column() {
    let r = read("mtr-report-narrow-ipv6.txt");
    assert_eq!(
        traces(&r),
        [
            trace(
                "mtr-report-narrow-ipv6.txt:1",
                None,
                &["1 2001:db8:3::1", "2 hidden", "3 *", "4 hidden"]
            ),
            // A hop number that does not follow on starts another report.
            trace("mtr-report-narrow-ipv6.txt:6", None, &["1 2001:db8:9::1"]),
        ]
    );
    assert_eq!(
        skipped(&r),
        ["mtr-report-narrow-ipv6.txt:3: hop 2: `2001:db8:1234:5::abcd:ef0` fills mtr's host column and may be cut (use --report-wide): address not used"]
    );
}

#[test]
fn mtr_curses_screen_pasted_as_text() {
    let r = read("mtr-curses.txt");
    assert_eq!(r.format, Format::MtrReport);
    assert_eq!(
        traces(&r),
        [trace(
            "mtr-curses.txt:1",
            Some("198.18.177.15"),
            &[
                "1 hidden",
                "2 198.51.100.17 198.51.100.21",
                "3 *",
                "4 198.18.177.15[AS15169]"
            ]
        )]
    );
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
}

// ---------------------------------------------------------------------
// mtr --csv

#[test]
fn mtr_csv_with_asn_wide_rows_and_two_reports() {
    let r = read("mtr.csv");
    assert_eq!(r.format, Format::MtrCsv);
    assert_eq!(
        traces(&r),
        [
            trace(
                "mtr.csv:2",
                Some("198.18.177.15"),
                &[
                    "1 192.0.2.1",
                    "2 198.51.100.17[AS64496] 198.51.100.18[AS64496]",
                    "3 *",
                    "4 198.18.188.1[core1.example.net,AS4837]",
                    "5 198.18.177.15[AS4837]",
                ]
            ),
            trace("mtr.csv:9", None, &["1 192.0.2.1", "2 hidden"]),
        ]
    );
    assert_eq!(
        skipped(&r),
        ["mtr.csv:12: hop number `two` is not a whole number from 1 to 255"]
    );
}

#[test]
fn mtr_csv_of_0_85_and_0_82() {
    let r = read("mtr-old.csv");
    assert_eq!(r.format, Format::MtrCsv);
    assert_eq!(
        traces(&r),
        [
            trace(
                "mtr-old.csv:1",
                Some("198.18.177.15"),
                &["1 192.0.2.1", "2 198.51.100.17[AS64496]", "3 *"]
            ),
            trace(
                "mtr-old.csv:4",
                Some("203.0.113.50"),
                &["1 192.0.2.1", "2 203.0.113.50"]
            ),
        ]
    );
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
}

// ---------------------------------------------------------------------
// mtr --xml

#[test]
fn mtr_xml_0_96_with_addr_hostname_and_entities() {
    let r = read("mtr.xml");
    assert_eq!(r.format, Format::MtrXml);
    assert_eq!(
        traces(&r),
        [trace(
            "mtr.xml:3",
            Some("198.18.177.15"),
            &[
                "1 192.0.2.1[_gateway]",
                "2 198.51.100.17[r&d-gw.example]",
                "3 *",
                "5 198.18.177.15"
            ]
        )]
    );
    assert_eq!(
        skipped(&r),
        ["mtr.xml:15: HUB COUNT `x` is not a hop number from 1 to 255"]
    );
}

#[test]
fn mtr_xml_with_bare_attributes_and_a_second_report() {
    let r = read("mtr-old.xml");
    assert_eq!(
        traces(&r),
        [
            trace(
                "mtr-old.xml:1",
                Some("2001:db8:178::20"),
                &["1 2001:db8:3::1", "2 hidden", "3 2001:db8:178::20"]
            ),
            trace("mtr-old.xml:14", None, &["1 192.0.2.1"]),
        ]
    );
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
}

// ---------------------------------------------------------------------
// mtr --json (lenient, -z, -b)

#[test]
fn mtr_json_keeps_as_numbers_and_names_and_skips_a_bad_hub() {
    let r = read("mtr-asn.json");
    assert_eq!(r.format, Format::MtrJson);
    assert_eq!(
        traces(&r),
        [trace(
            "mtr-asn.json:1",
            Some("198.18.177.15"),
            &[
                "1 192.0.2.1[_gateway]",
                "2 198.51.100.17[AS64496]",
                "4 *",
                "5 198.18.177.15[core.example.net,AS4837]"
            ]
        )]
    );
    assert_eq!(
        skipped(&r),
        ["mtr-asn.json:27:report.hubs[2].count: hop number \"3x\" is not a whole number from 1 to 255"]
    );
    // Strict mode refuses the report at the bad hub, as before.
    let e =
        read_traces_with(&fixture("mtr-asn.json"), "mtr-asn.json", strict()).expect_err("strict");
    assert_eq!(e.origin, "mtr-asn.json:27:report.hubs[2].count");
}

// ---------------------------------------------------------------------
// scamper

#[test]
fn scamper_traces_tracelb_and_cycle_records() {
    let r = read("scamper.jsonl");
    assert_eq!(r.format, Format::ScamperJson);
    assert_eq!(
        traces(&r),
        [
            trace(
                "scamper.jsonl:2",
                Some("198.18.177.15"),
                &[
                    "1 192.0.2.1",
                    "2 198.51.100.17[ae2.cr1.example.net] 198.51.100.18",
                    "3 *",
                    "4 198.18.188.1",
                    "5 198.18.177.15",
                ]
            ),
            // ICMP unreachable code 13 is `!X`; TTL 2 never answered.
            trace(
                "scamper.jsonl:3",
                Some("203.0.113.50"),
                &["1 192.0.2.1", "2 *", "3 203.0.113.1 !X"]
            ),
            // ICMPv6 admin prohibited is `!X`; GAPLIMIT: silent up to hop_count.
            trace(
                "scamper.jsonl:4",
                Some("2001:db8:178::20"),
                &[
                    "1 2001:db8:3::1",
                    "2 2001:db8:219::1 !X",
                    "3 *",
                    "4 *",
                    "5 *"
                ]
            ),
            trace(
                "scamper.jsonl:5",
                Some("198.51.100.99"),
                &[
                    "1 192.0.2.1",
                    "2 198.51.100.17 198.51.100.18",
                    "3 198.51.100.99"
                ]
            ),
        ]
    );
    assert_eq!(
        skipped(&r),
        [
            "scamper.jsonl:3:hops[2].addr: \"bogus\" is not an IP address",
            "scamper.jsonl:7: invalid JSON: expected ident (column 2)",
        ]
    );
}

// ---------------------------------------------------------------------
// trippy

#[test]
fn trippy_json_with_as_info_and_timeouts() {
    let r = read("trippy.json");
    assert_eq!(r.format, Format::TrippyJson);
    assert_eq!(
        traces(&r),
        [trace(
            "trippy.json:1",
            Some("198.18.177.15"),
            &[
                "1 192.0.2.1[gw.example,AS64496]",
                "2 198.51.100.17[AS64496] 198.51.100.18",
                "3 *",
                "4 198.18.177.15[target.example]"
            ]
        )]
    );
    assert_eq!(
        skipped(&r),
        ["trippy.json:103:hops[3].hosts[1].ip: \"not-an-ip\" is not an IP address"]
    );
}

#[test]
fn trippy_csv_splits_ipv6_addresses_joined_by_colons() {
    let r = read("trippy.csv");
    assert_eq!(r.format, Format::TrippyCsv);
    assert_eq!(
        traces(&r),
        [trace(
            "trippy.csv:2",
            Some("2001:db8:178::20"),
            &[
                "1 2001:db8:3::1[gw.example,AS64496]",
                "2 2001:db8:219::1[AS4837] 2001:db8:219::2[ae2.bb.example,AS4837]",
                "3 *",
                "4 2001:db8:178::20"
            ]
        )]
    );
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
}

#[test]
fn trippy_csv_before_the_ips_column() {
    let r = read("trippy-old.csv");
    assert_eq!(
        traces(&r),
        [trace(
            "trippy-old.csv:1",
            Some("198.18.177.15"),
            &["1 192.0.2.1", "2 hidden", "3 *", "4 198.18.177.15"]
        )]
    );
    assert_eq!(
        skipped(&r),
        ["trippy-old.csv:5: not a row of a trippy CSV report: hop `x` is not a number from 1 to 255"]
    );
}

// ---------------------------------------------------------------------
// every skip message

fn strict() -> Options {
    Options {
        strict: true,
        ..Options::default()
    }
}

#[test]
fn every_skip_message_names_the_line_and_the_fault() {
    use Format::*;
    let hdr = "HOST: vp                          Loss%   Snt   Last   Avg  Best  Wrst StDev\n";
    let cases: Vec<(Format, String, &str, &str)> = vec![
        (
            MtrReport,
            format!("{hdr}  1.|-- here it dies            0.0%    10   0.3\n"),
            "t:2",
            "hop 1: `here it dies` is not a host mtr prints",
        ),
        (
            MtrReport,
            format!("{hdr}  1.|--                         0.0%    10   0.3\n"),
            "t:2",
            "hop 1: no host on this line: `1.|--                         0.0%    10   0.3`",
        ),
        (
            MtrReport,
            format!("{hdr}  1.|-- 192.0.2.1               0.0%    10   0.3\n    |  `|-- nope nope\n"),
            "t:3",
            "not an address of the hop before: `|  `|-- nope nope`",
        ),
        (
            MtrReport,
            format!("{hdr}hello there\n"),
            "t:2",
            "not a line of an mtr report: `hello there`",
        ),
        (
            MtrCsv,
            "Mtr_Version,Start_Time,Status,Host\n".into(),
            "t:1",
            "header without `Hop` and `Ip` columns: `Mtr_Version,Start_Time,Status,Host`",
        ),
        (
            MtrCsv,
            "MTR.0.92,1,OK,h,1,192.0.2.1\nhello\n".into(),
            "t:2",
            "not a row of mtr --csv output: `hello`",
        ),
        (
            MtrCsv,
            "MTR.0.92,1,OK,h,0,192.0.2.1\n".into(),
            "t:1",
            "hop number `0` is not a whole number from 1 to 255",
        ),
        (
            MtrCsv,
            "MTR.0.92,1,OK,h,1,a b c\n".into(),
            "t:1",
            "hop 1: `a b c` is not a host mtr prints",
        ),
        (
            MtrXml,
            "<MTR DST=\"192.0.2.9\">\n<HUB HOST=\"192.0.2.1\"></HUB></MTR>".into(),
            "t:2",
            "HUB without COUNT (the hop number): skipped",
        ),
        (
            MtrXml,
            "<MTR>\n<HUB COUNT=\"1\"></HUB></MTR>".into(),
            "t:2",
            "HUB 1 without HOST: skipped",
        ),
        (
            MtrXml,
            "<MTR>\n<HUB COUNT=\"1\" HOST=\"a b c\"/></MTR>".into(),
            "t:2",
            "HUB 1: HOST `a b c` is not a host mtr prints",
        ),
        (
            MtrXml,
            "Here is my mtr:\n<MTR><HUB COUNT=\"1\" HOST=\"192.0.2.1\"/></MTR>".into(),
            "t:1",
            "not part of an mtr --xml report: `Here is my mtr:`",
        ),
        (
            MtrJson,
            "{\"report\":{\"hubs\":[{\"count\":1,\"host\":\"a b c\"}]}}".into(),
            "t:1:report.hubs[0].host",
            "\"a b c\" is not a host mtr prints",
        ),
        (
            MtrJson,
            "{\"report\":{\"hubs\":[]}}\n7\n".into(),
            "t:2",
            "expected an mtr --json report (an object), found a number",
        ),
        (
            ScamperJson,
            "{\"type\":\"trace\",\"dst\":\"192.0.2.9\",\"hops\":[]}\n{\"type\":\"weird\"}\n".into(),
            "t:2",
            "scamper object of type \"weird\" is not a trace: skipped",
        ),
        (
            ScamperJson,
            "{\"type\":\"trace\",\"dst\":\"192.0.2.9\",\"hops\":[]}\n{\"a\":1}\n".into(),
            "t:2",
            "not a scamper object (no `type`): skipped",
        ),
        (
            ScamperJson,
            "{\"type\":\"trace\",\"dst\":\"192.0.2.9\",\"hops\":[]}\n5\n".into(),
            "t:2",
            "expected a scamper object (an object), found a number",
        ),
        (
            ScamperJson,
            "{\"type\":\"trace\",\"dst\":\"192.0.2.9\",\"hops\":[{\"addr\":\"192.0.2.1\"}]}".into(),
            "t:1:hops[0].probe_ttl",
            "missing `probe_ttl`",
        ),
        (
            ScamperJson,
            "{\"type\":\"tracelb\",\"dst\":\"192.0.2.9\",\"nodes\":[{\"addr\":\"192.0.2.1\",\"links\":[[{\"addr\":\"x\",\"probes\":[{\"ttl\":2}]}]]}]}".into(),
            "t:1:nodes[0].links[0][0]",
            "\"x\" is not an IP address",
        ),
        (
            ScamperJson,
            "{\"type\":\"tracelb\",\"dst\":\"192.0.2.9\",\"nodes\":[{\"addr\":\"192.0.2.1\",\"links\":[[{\"probes\":[]}]]}]}".into(),
            "t:1:nodes[0].links[0][0]",
            "tracelb link without `addr` and probe `ttl`: skipped",
        ),
        (
            TrippyJson,
            "{\"info\":{\"target\":{\"ip\":\"192.0.2.9\"}},\"hops\":[{\"ttl\":0,\"hosts\":[]}]}".into(),
            "t:1:hops[0].ttl",
            "hop number 0 is outside 1..=255",
        ),
        (
            TrippyJson,
            "{\"info\":{\"target\":{\"ip\":\"192.0.2.9\"}},\"hops\":[{\"ttl\":1,\"hosts\":{}}]}".into(),
            "t:1:hops[0].hosts",
            "expected an array, found an object",
        ),
        (
            TrippyJson,
            "{\"info\":{\"target\":{\"ip\":\"nope\"}},\"hops\":[]}".into(),
            "t:1:info.target.ip",
            "\"nope\" is not an IP address",
        ),
        (
            TrippyJson,
            "{\"hops\":[{\"ttl\":1}]}".into(),
            "t:1:info",
            "missing `info`",
        ),
        (
            TrippyCsv,
            "Target,TargetIp,Hop\n".into(),
            "t:1",
            "header without `Hop` and `IPs`/`Addrs` columns: `Target,TargetIp,Hop`",
        ),
        (
            TrippyCsv,
            "a,192.0.2.9,1,192.0.2.1,x\n".into(),
            "t:1",
            "not a row of a trippy CSV report (no header before it): `a,192.0.2.9,1,192.0.2.1,x`",
        ),
        (
            TrippyCsv,
            "Target,TargetIp,Hop,IPs,Addrs\na,192.0.2.9,1,gw.example,gw.example\n".into(),
            "t:2",
            "hop 1: `gw.example` are not addresses joined by `:`",
        ),
    ];
    for (format, text, origin, what) in cases {
        let r = read_format(format, &text, "t");
        let first = match &r {
            Ok(r) => r.skipped.first().cloned(),
            Err(e) => Some(e.clone()),
        };
        let first = first.unwrap_or_else(|| panic!("{format}: {text}: no warning: {r:?}"));
        assert_eq!(first.origin, origin, "{format}: {text}");
        assert!(
            first.what.starts_with(what),
            "{format}: {text}: {}",
            first.what
        );
        // Strict mode turns it into the error.
        let e = read_traces_with(
            &text,
            "t",
            Options {
                strict: true,
                format: Some(format),
            },
        )
        .expect_err(&text);
        assert_eq!(e.origin, origin, "{format}: {text}");
    }
}

#[test]
fn inputs_with_nothing_of_the_format_are_refused() {
    use Format::*;
    for (format, text, what) in [
        (MtrReport, "$ mtr -r 192.0.2.9\n", "no mtr report in input"),
        (
            MtrCsv,
            "$ mtr --csv 192.0.2.9\n",
            "no mtr --csv row in input",
        ),
        (
            MtrXml,
            "$ mtr --xml 192.0.2.9\n",
            "no mtr --xml report in input",
        ),
        (
            ScamperJson,
            "{\"type\":\"cycle-start\"}\n",
            "no scamper trace in input",
        ),
        (
            TrippyCsv,
            "$ trip --mode csv x\n",
            "no trippy CSV row in input",
        ),
    ] {
        let e = read_format(format, text, "t").expect_err(text);
        assert_eq!(e.origin, "t:1", "{text}");
        assert!(e.what.starts_with(what), "{text}: {e}");
    }
}

// ---------------------------------------------------------------------
// detection

const MINE: [Format; 7] = [
    Format::MtrReport,
    Format::MtrCsv,
    Format::MtrXml,
    Format::MtrJson,
    Format::ScamperJson,
    Format::TrippyJson,
    Format::TrippyCsv,
];

#[test]
fn my_fixtures_are_detected_as_their_format_and_not_as_atlas() {
    use Format::*;
    for (name, format) in [
        ("mtr-report.txt", MtrReport),
        ("mtr-report-narrow-ipv6.txt", MtrReport),
        ("mtr-curses.txt", MtrReport),
        ("mtr.csv", MtrCsv),
        ("mtr-old.csv", MtrCsv),
        ("mtr.xml", MtrXml),
        ("mtr-old.xml", MtrXml),
        ("mtr-asn.json", MtrJson),
        ("scamper.jsonl", ScamperJson),
        ("trippy.json", TrippyJson),
        ("trippy.csv", TrippyCsv),
        ("trippy-old.csv", TrippyCsv),
    ] {
        let text = fixture(name);
        assert_eq!(detect(&text, name).expect(name), format, "{name}");
        let scores: Vec<(Format, u8)> = Format::ALL
            .into_iter()
            .filter(|f| *f != format)
            .map(|f| (f, f.sniff(&text)))
            .filter(|(_, s)| *s >= format.sniff(&text))
            .collect();
        assert!(scores.is_empty(), "{name}: {scores:?}");
        assert_eq!(AtlasJson.sniff(&text), 0, "{name}");
        let direct = read_format(format, &text, name).expect(name);
        assert_eq!(direct.traces, read(name).traces, "{name}");
    }
}

#[test]
fn other_formats_fixtures_are_not_claimed_by_these_readers() {
    let root = path(&[], "");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    let corpus: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "corpus"]
        .iter()
        .collect();
    dirs.push(corpus);
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("structured") {
                    dirs.push(p);
                }
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut checked = 0;
    for p in files {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if name.ends_with(".toml") || name.ends_with(".md") {
            continue;
        }
        let Ok(format) = detect(&text, &name) else {
            continue;
        };
        // The mtr --json fixtures of the original reader are mine; corpus
        // files of my formats are named after their tool.
        if name.starts_with("mtr") && name.ends_with(".json") {
            assert_eq!(format, Format::MtrJson, "{}", p.display());
            continue;
        }
        assert!(
            !MINE.contains(&format)
                || name.contains("mtr")
                || name.contains("scamper")
                || name.contains("trippy"),
            "{} detected as {format}",
            p.display()
        );
        for f in MINE {
            if f != format {
                assert!(
                    f.sniff(&text) < format.sniff(&text).max(1),
                    "{}: {f} claims it",
                    p.display()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} fixtures checked");
}

// ---------------------------------------------------------------------
// no panic

fn read_my_ways(text: &str) {
    let _ = read_traces(text, "fuzz");
    for f in MINE {
        let _ = f.sniff(text);
        let _ = read_format(f, text, "fuzz");
    }
}

#[test]
fn truncated_and_mangled_fixtures_never_panic() {
    const ALPHABET: &[char] = &[
        '{', '}', '[', ']', '"', ':', ',', ';', '0', '9', '-', '.', ' ', '\n', '*', '!', '(', ')',
        '<', '>', '/', '=', '&', '%', '|', '`', '?', 'A', 'S', 'é', '\\', '\u{a0}',
    ];
    let mut rng = Rng(0x7374_7275_6374);
    for name in [
        "mtr-report.txt",
        "mtr-report-narrow-ipv6.txt",
        "mtr-curses.txt",
        "mtr.csv",
        "mtr-old.csv",
        "mtr.xml",
        "mtr-old.xml",
        "mtr-asn.json",
        "scamper.jsonl",
        "trippy.json",
        "trippy.csv",
        "trippy-old.csv",
    ] {
        mangle(&fixture(name), 7, 60, 4, ALPHABET, &mut rng, &mut |s| {
            read_my_ways(s)
        });
    }
    // Pathological shapes.
    read_my_ways(&"<".repeat(50_000));
    read_my_ways(&"<HUB COUNT=".repeat(5_000));
    read_my_ways(&format!("{}\n", ":".repeat(50_000)));
    read_my_ways(&format!(
        "Target,TargetIp,Hop,IPs,Addrs\nx,y,1,{},z\n",
        "1:".repeat(2_000)
    ));
    read_my_ways(&format!(
        "Target,TargetIp,Hop,IPs,Addrs\nx,y,1,{}::1,z\n",
        "1:2:3:".repeat(20)
    ));
    read_my_ways(&format!("{}\n", "  1.|-- ".repeat(10_000)));
    read_my_ways(&"&#x110000;&".repeat(1000));
}
