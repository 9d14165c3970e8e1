//! The input formats of `tumen-collector infer`: every feature of every
//! format on hand-written fixtures (tests/fixtures/input/), every error
//! path, format detection, and no panic on mangled input.

#[path = "common/mangle.rs"]
mod common_mangle;
use common_mangle::{mangle, Rng};

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use tumen_collector::defaults::DEFAULT_PREFIXES;
use tumen_collector::infer::{infer, AsnLookup, Target};
use tumen_collector::input::{
    detect, read_atlas_json, read_format, read_mtr_json, read_traceroute_text, read_traces,
    read_traces_with, read_tumen_json_lines, Format, Options,
};
use tumen_collector::model::{InputError, Trace};
use tumen_collector::orgs::Orgs;

fn fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "input",
        name,
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every trace of a fixture, through detection.
fn read(name: &str) -> Vec<Trace> {
    read_traces(&fixture(name), name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .traces
}

/// The error a fixture (or text) gives in strict mode (`--strict`): the
/// first line or record that cannot be read.
fn fails(text: &str, name: &str) -> InputError {
    match read_traces_with(text, name, strict()) {
        Ok(t) => panic!("{name}: expected an error, read {t:?}"),
        Err(e) => e,
    }
}

fn strict() -> Options {
    Options {
        strict: true,
        ..Options::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A trace as lines `ttl addr addr !X`, `ttl *` for a silent hop.
fn hops(t: &Trace) -> Vec<String> {
    t.hops
        .iter()
        .map(|h| {
            let mut s = h.ttl.to_string();
            if h.addrs.is_empty() {
                s.push_str(" *");
            }
            for a in &h.addrs {
                s.push_str(&format!(" {a}"));
            }
            for a in &h.annotations {
                s.push_str(&format!(" {a}"));
            }
            s
        })
        .collect()
}

// ---------------------------------------------------------------------
// traceroute text

#[test]
fn linux_numeric_output_with_stars_multi_address_hops_and_x() {
    let t = read("linux-n.txt");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].target, Some(ip("198.18.177.15")));
    assert_eq!(t[0].origin, "linux-n.txt:1");
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1",
            "2 198.51.100.17",
            "3 *",
            "4 198.18.219.1 198.18.219.5",
            "5 198.18.219.13",
            "6 198.18.176.1 !X",
        ]
    );
}

#[test]
fn linux_host_names_and_decorations() {
    // name (addr), `_gateway`, -A `[AS..]` and `[*]`, -e `<MPLS:..>`,
    // --back `'-1'`, --mtu `F=1500`, two named addresses on one hop.
    let t = read("linux-names.txt");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].target, Some(ip("198.18.177.15")));
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1",
            "2 192.0.2.70",
            "3 198.51.100.9",
            "4 203.0.113.1",
            "5 198.18.219.1 198.18.219.5",
            "6 198.18.219.13",
            "7 198.18.176.1",
            "8 198.18.177.15",
        ]
    );
}

#[test]
fn linux_ipv6() {
    let t = read("linux-ipv6.txt");
    assert_eq!(t[0].target, Some(ip("2001:db8:177::15")));
    assert_eq!(
        hops(&t[0]),
        [
            "1 2001:db8:1::1",
            "2 2001:db8:1::2",
            "3 *",
            "4 2001:db8:219::1 2001:db8:219::5",
            "5 2001:db8:219::d !X",
        ]
    );
}

#[test]
fn every_linux_annotation_is_kept_as_printed() {
    let t = read("linux-annotations.txt");
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1",
            "2 192.0.2.65 !H !N !P",
            "3 192.0.2.129 !S !F-1500 !V",
            "4 198.51.100.1 !C !<10> !X",
            "5 203.0.113.80 !<13>",
        ]
    );
}

#[test]
fn inetutils_output() {
    // `64 hops max` without packet size, `0.224ms` without a space.
    let t = read("inetutils.txt");
    assert_eq!(t[0].target, Some(ip("198.18.178.20")));
    assert_eq!(
        hops(&t[0]),
        ["1 192.0.2.1", "2 *", "3 198.18.188.1", "4 198.18.188.13 !X",]
    );
}

#[test]
fn macos_output_with_continuation_lines() {
    // The `traceroute:` warning is skipped; each new address of a hop on
    // its own indented line belongs to the hop above.
    let t = read("macos.txt");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].target, Some(ip("198.18.177.15")));
    assert_eq!(t[0].origin, "macos.txt:2");
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1",
            "2 198.51.100.33",
            "3 *",
            "4 198.18.188.1 198.18.188.5",
            "5 198.18.188.13",
            "6 198.18.176.5 198.18.176.9 !Z",
        ]
    );
}

#[test]
fn macos_traceroute6_with_source_and_zone() {
    let t = read("macos-traceroute6.txt");
    assert_eq!(t[0].target, Some(ip("2001:db8:177::15")));
    assert_eq!(
        hops(&t[0]),
        [
            "1 2001:db8:2::1",
            "2 2001:db8:188::1 2001:db8:188::5",
            "3 fe80::1",
            "4 2001:db8:177::15",
        ]
    );
}

#[test]
fn several_traces_separated_by_headers() {
    let t = read("several.txt");
    assert_eq!(t.len(), 3);
    let targets: Vec<Option<IpAddr>> = t.iter().map(|t| t.target).collect();
    assert_eq!(
        targets,
        [
            Some(ip("198.18.176.10")),
            Some(ip("198.18.177.15")),
            Some(ip("198.18.178.1"))
        ]
    );
    let origins: Vec<&str> = t.iter().map(|t| t.origin.as_str()).collect();
    assert_eq!(
        origins,
        ["several.txt:2", "several.txt:7", "several.txt:12"]
    );
    assert_eq!(
        hops(&t[1]),
        ["1 192.0.2.1", "2 198.18.188.1", "3 198.18.177.15"]
    );
    // A header and nothing after it: a trace without hops.
    assert!(t[2].hops.is_empty());
}

#[test]
fn excerpts_without_header_have_no_target_and_split_where_numbers_restart() {
    let t = read("excerpt.txt");
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].target, None);
    assert_eq!(t[0].origin, "excerpt.txt:1");
    assert_eq!(t[0].hops.first().map(|h| h.ttl), Some(5));
    assert_eq!(t[0].effective_target(), Some(ip("198.18.188.1")));
    assert_eq!(t[1].origin, "excerpt.txt:6");
    assert_eq!(hops(&t[1]), ["3 198.18.188.13", "4 198.18.178.20"]);
    assert_eq!(t[1].effective_target(), Some(ip("198.18.178.20")));
}

#[test]
fn crlf_bom_and_tabs_are_accepted() {
    let text =
        "\u{feff}traceroute to 192.0.2.9 (192.0.2.9), 30 hops max\r\n\t1\t192.0.2.1\t0.5 ms\r\n";
    let t = read_traces(text, "w").expect("read").traces;
    assert_eq!(t[0].target, Some(ip("192.0.2.9")));
    assert_eq!(hops(&t[0]), ["1 192.0.2.1"]);
}

#[test]
fn traceroute_text_errors_name_the_line() {
    let e = fails(&fixture("bad-traceroute.txt"), "bad-traceroute.txt");
    assert_eq!(e.origin, "bad-traceroute.txt:4");
    assert!(e.what.contains("`9.804`"), "{e}");
    let header = "traceroute to x (192.0.2.1), 30 hops max\n";
    for (text, origin, needle) in [
        (
            "traceroute to x (not-an-address), 30 hops max\n".to_string(),
            "t:1",
            "not a destination address",
        ),
        (
            format!("{header} 0  192.0.2.1  1.0 ms\n"),
            "t:2",
            "outside 1..=255",
        ),
        (
            format!("{header} 256  192.0.2.1  1.0 ms\n"),
            "t:2",
            "outside 1..=255",
        ),
        (
            format!("{header} 99999999999999999999  *\n"),
            "t:2",
            "outside 1..=255",
        ),
        (
            format!("{header} 1  192.0.2.1  1.0 ms\n 2  198.51.100.1 1.0 ms bogus\n"),
            "t:3",
            "unexpected `bogus`",
        ),
        (
            format!("{header} 1  192.0.2.1  1.0\n"),
            "t:2",
            "not followed by `ms`",
        ),
        (
            format!("{header} 1  gw (192.0.2.x)  1.0 ms\n"),
            "t:2",
            "not an address",
        ),
        (
            format!("{header} 1  192.0.2.1 <MPLS:L=16\n"),
            "t:2",
            "not closed",
        ),
        (
            format!("{header} 1  192.0.2.1  1.0 ms\n    198.51.100.1 what\n"),
            "t:3",
            "unexpected `what`",
        ),
        (
            format!("{header} 1  192.0.2.1  1.0 ms\n\nTrace complete.\n"),
            "t:4",
            "not traceroute output",
        ),
    ] {
        let e = fails(&text, "t");
        assert_eq!(e.origin, origin, "{text:?}: {e}");
        assert!(e.what.contains(needle), "{text:?}: {e}");
    }
    // Read as text explicitly: a continuation line with no hop before it,
    // and an input with nothing but comments.
    let e = read_traceroute_text("    192.0.2.1  1.0 ms\n", "t").expect_err("orphan");
    assert_eq!(e.origin, "t:1");
    assert!(e.what.contains("not traceroute output"), "{e}");
    let e = read_traceroute_text("# nothing\ntraceroute: unknown host x\n", "t").expect_err("none");
    assert!(e.what.contains("no traceroute"), "{e}");
}

// ---------------------------------------------------------------------
// mtr --json

#[test]
fn mtr_report_with_silent_hop() {
    let t = read("mtr.json");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].target, Some(ip("198.18.177.15")));
    assert_eq!(t[0].origin, "mtr.json:1");
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1",
            "2 198.51.100.17",
            "3 *",
            "4 198.18.188.1",
            "5 198.18.177.15"
        ]
    );
}

#[test]
fn mtr_with_resolved_names_keeps_the_hops_without_addresses() {
    // dst is a name (no target; the last hop stands in), `_gateway` and
    // `border.cu.example` are names without address, `-b` gives
    // `name (address)`, `ASN` (-z) is ignored.
    let t = read("mtr-names.json");
    assert_eq!(t[0].target, None);
    assert_eq!(
        hops(&t[0]),
        ["1 *", "2 192.0.2.70", "3 *", "4 *", "5 198.18.219.13"]
    );
    assert_eq!(t[0].effective_target(), Some(ip("198.18.219.13")));
}

#[test]
fn mtr_0_92_strings_and_ipv6() {
    let t = read("mtr-0.92.json");
    assert_eq!(t[0].target, Some(ip("2001:db8:178::20")));
    assert_eq!(
        hops(&t[0]),
        [
            "1 2001:db8:3::1",
            "2 2001:db8:219::1",
            "3 *",
            "4 2001:db8:178::20"
        ]
    );
}

#[test]
fn several_mtr_reports_appended_or_in_an_array() {
    let t = read("mtr-two.json");
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].origin, "mtr-two.json:1");
    assert_eq!(t[1].origin, "mtr-two.json:2");
    assert_eq!(t[1].target, Some(ip("198.18.177.15")));
    let text = fixture("mtr-two.json");
    let lines: Vec<&str> = text.lines().collect();
    let array = format!("[\n{},\n{}\n]", lines[0], lines[1]);
    let t2 = read_traces(&array, "a").expect("array").traces;
    assert_eq!(t2.len(), 2);
    assert_eq!(t2[1].origin, "a:3");
    assert_eq!(hops(&t2[1]), hops(&t[1]));
}

#[test]
fn mtr_errors_name_line_and_field() {
    let e = fails(&fixture("bad-mtr.json"), "bad-mtr.json");
    assert_eq!(e.origin, "bad-mtr.json:13:report.hubs[1].count");
    assert!(e.what.contains("\"two\""), "{e}");
    for (text, origin, needle) in [
        (
            r#"{"report":{"mtr":{}}}"#,
            "m:1:report.hubs",
            "missing `hubs`",
        ),
        (
            r#"{"report":{"hubs":{}}}"#,
            "m:1:report.hubs",
            "expected an array",
        ),
        (
            "{\"report\":{\"hubs\":[\n{\"count\":300,\"host\":\"???\"}]}}",
            "m:2:report.hubs[0].count",
            "outside 1..=255",
        ),
        (
            "{\"report\":{\"hubs\":[\n{\"count\":1.5,\"host\":\"???\"}]}}",
            "m:2:report.hubs[0].count",
            "whole number",
        ),
        (
            r#"{"report":{"hubs":[{"count":1}]}}"#,
            "m:1:report.hubs[0].host",
            "missing `host`",
        ),
        (
            r#"{"report":{"hubs":[{"count":1,"host":[]}]}}"#,
            "m:1:report.hubs[0].host",
            "expected a string",
        ),
        (
            "{\"report\":{\"hubs\":[]}}\n{\"report\":{\"hubs\":[}}",
            "m:2",
            "invalid JSON",
        ),
    ] {
        let e = fails(text, "m");
        assert_eq!(e.origin, origin, "{text}: {e}");
        assert!(e.what.contains(needle), "{text}: {e}");
    }
    let e = read_mtr_json(r#"{"dst_addr":"192.0.2.1"}"#, "m").expect_err("not mtr");
    assert_eq!(e.origin, "m:1:report");
}

// ---------------------------------------------------------------------
// RIPE Atlas

#[test]
fn atlas_single_pretty_printed_result() {
    let t = read("atlas-single.json");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].target, Some(ip("198.18.177.15")));
    assert_eq!(t[0].origin, "atlas-single.json:1");
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.65",
            "2 *",
            "3 198.18.188.1 198.18.188.5",
            "4 198.18.177.15"
        ]
    );
}

#[test]
fn atlas_array_download() {
    let t = read("atlas-array.json");
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].origin, "atlas-array.json:1");
    assert_eq!(t[1].origin, "atlas-array.json:2");
    assert_eq!(
        hops(&t[0]),
        ["1 198.51.100.1", "2 198.18.219.1", "3 198.18.219.13 !X"]
    );
    assert_eq!(
        hops(&t[1]),
        ["1 203.0.113.1", "2 198.18.219.5", "3 198.18.176.10 !p"]
    );
}

#[test]
fn atlas_one_result_per_line_and_failed_measurements() {
    let t = read("atlas-lines.jsonl");
    assert_eq!(t.len(), 3);
    let origins: Vec<&str> = t.iter().map(|t| t.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "atlas-lines.jsonl:1",
            "atlas-lines.jsonl:3",
            "atlas-lines.jsonl:4"
        ]
    );
    assert_eq!(hops(&t[1]), ["1 192.0.2.129", "2 *", "3 198.18.178.20"]);
    // Name resolution failed: top-level `error`, no `dst_addr`, no hops.
    assert_eq!(t[2].target, None);
    assert!(t[2].hops.is_empty());
}

#[test]
fn atlas_ipv6() {
    let t = read("atlas-ipv6.json");
    assert_eq!(t[0].target, Some(ip("2001:db8:177::15")));
    assert_eq!(
        hops(&t[0]),
        [
            "1 2001:db8:2::1",
            "2 2001:db8:188::1 2001:db8:188::5",
            "3 2001:db8:177::15"
        ]
    );
}

#[test]
fn atlas_firmware_variants() {
    // dup skipped (true and 1), hop `error` entry, late reply kept, itos/
    // ittl/edst and icmpext ignored, err N H P A h 9 p, trailing hop 255
    // dropped.
    let t = read("atlas-variants.json");
    assert_eq!(t[0].target, Some(ip("203.0.113.99")));
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1",
            "2 *",
            "3 198.51.100.7 198.51.100.9",
            "4 198.51.100.13",
            "5 203.0.113.1 !N !H !P",
            "6 203.0.113.5 !X !h !<9>",
            "7 203.0.113.99 !p",
        ]
    );
}

#[test]
fn atlas_hop_255_is_kept_when_it_is_a_real_hop() {
    let hop = |n: u32| {
        format!(
            r#"{{"hop":{n},"result":[{{"from":"192.0.2.{}","rtt":1}}]}}"#,
            n % 250
        )
    };
    let text = format!(
        r#"{{"dst_addr":"192.0.2.9","result":[{},{},{}]}}"#,
        hop(253),
        hop(254),
        hop(255)
    );
    let t = read_atlas_json(&text, "a").expect("read");
    assert_eq!(t[0].hops.len(), 3);
    // Not the last entry: kept too (and merged by TTL order).
    let text = format!(r#"{{"result":[{},{}]}}"#, hop(255), hop(1));
    let t = read_atlas_json(&text, "a").expect("read");
    let ttls: Vec<u8> = t[0].hops.iter().map(|h| h.ttl).collect();
    assert_eq!(ttls, [1, 255]);
}

#[test]
fn atlas_errors_name_line_and_field() {
    let e = fails(&fixture("bad-atlas.json"), "bad-atlas.json");
    assert_eq!(e.origin, "bad-atlas.json:8:result[2].hop");
    assert_eq!(e.what, "missing `hop`");
    // A bad field deep in a pretty-printed file is found on its line.
    let text = fixture("atlas-single.json").replacen("\"192.0.2.65\"", "\"192.0.2.650\"", 1);
    let e = fails(&text, "input.json");
    assert_eq!(e.origin, "input.json:16:result[0].result[0].from");
    assert!(e.what.contains("not an IP address"), "{e}");
    for (text, origin, needle) in [
        (
            r#"{"result":[{"hop":1,"result":[]},{"hop":1,"result":[]},{"result":[]}]}"#,
            "input.json:1:result[2].hop",
            "missing `hop`",
        ),
        (
            r#"{"result":[{"hop":"one","result":[]}]}"#,
            "input.json:1:result[0].hop",
            "whole number",
        ),
        (
            r#"{"result":[{"hop":0,"result":[]}]}"#,
            "input.json:1:result[0].hop",
            "outside 1..=255",
        ),
        (
            r#"{"result":[{"hop":1,"result":[{"rtt":1.0}]}]}"#,
            "input.json:1:result[0].result[0]",
            "needs `from`",
        ),
        (
            r#"{"result":[{"hop":1,"result":[{"from":"192.0.2.1","err":{}}]}]}"#,
            "input.json:1:result[0].result[0].err",
            "`err` must be",
        ),
        (
            r#"{"result":[{"hop":1,"result":[{"from":"192.0.2.1","err":-3}]}]}"#,
            "input.json:1:result[0].result[0].err",
            "not an ICMP code",
        ),
        (
            r#"{"result":[{"hop":1,"result":"*"}]}"#,
            "input.json:1:result[0].result",
            "expected an array",
        ),
        (
            r#"{"result":[{"hop":1,"result":["*"]}]}"#,
            "input.json:1:result[0].result[0]",
            "a reply",
        ),
        (
            r#"{"result":[{"hop":1}]}"#,
            "input.json:1:result[0].result",
            "missing `result`",
        ),
        (r#"{"result":[7]}"#, "input.json:1:result[0]", "a hop entry"),
        (
            r#"{"dst_addr":"198.18.177","result":[]}"#,
            "input.json:1:dst_addr",
            "not an IP address",
        ),
        (
            r#"{"dst_addr":17,"result":[]}"#,
            "input.json:1:dst_addr",
            "expected a string",
        ),
        (
            r#"{"type":"ping","dst_addr":"192.0.2.1","result":[]}"#,
            "input.json:1:type",
            "not `traceroute`",
        ),
        (
            r#"{"dst_addr":"192.0.2.1","af":4}"#,
            "input.json:1:result",
            "missing `result`",
        ),
        (
            "[{\"result\":[]},\n17]",
            "input.json:2:[1]",
            "a RIPE Atlas traceroute result",
        ),
        (
            "{\"result\":[]}\n{\"result\":[}\n",
            "input.json:2",
            "invalid JSON",
        ),
    ] {
        let e = fails(text, "input.json");
        assert_eq!(e.origin, origin, "{text}: {e}");
        assert!(e.what.contains(needle), "{text}: {e}");
    }
}

// ---------------------------------------------------------------------
// Tumen JSON lines

#[test]
fn tumen_json_lines_group_flows_and_skip_pings() {
    let t = read("tumen.jsonl");
    assert_eq!(t.len(), 4, "the ping record is skipped");
    let origins: Vec<&str> = t.iter().map(|t| t.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "tumen.jsonl:1",
            "tumen.jsonl:2",
            "tumen.jsonl:5",
            "tumen.jsonl:6"
        ]
    );
    // A record shaped like the one in docs/wire.md (lab addresses): UDP, the border answers !X.
    assert_eq!(t[0].target, Some(ip("198.18.177.15")));
    assert_eq!(hops(&t[0]), ["1 *", "2 198.18.219.1 !X"]);
    // Two Paris flows: addresses of both flows at one TTL, the same
    // address once, a late reply kept.
    assert_eq!(
        hops(&t[1]),
        [
            "1 192.0.2.1",
            "2 198.18.188.1 198.18.188.5",
            "3 198.18.188.13",
            "4 198.18.177.15"
        ]
    );
    // Window mode, IPv6, TCP: only the TTLs probed.
    assert_eq!(t[2].target, Some(ip("2001:db8:176::10")));
    assert_eq!(hops(&t[2]), ["3 2001:db8:219::d", "4 2001:db8:176::10"]);
    // Refused: nothing sent, no hops.
    assert!(t[3].hops.is_empty());
}

#[test]
fn tumen_errors_name_line_and_field() {
    let e = fails(&fixture("bad-tumen.jsonl"), "bad-tumen.jsonl");
    assert_eq!(e.origin, "bad-tumen.jsonl:2:hops[3].replies[0].addr");
    assert!(e.what.contains("invalid IP address"), "{e}");
    let good = fixture("tumen.jsonl");
    let first = good.lines().next().expect("line");
    for (bad, origin, needle) in [
        (
            first.replacen("\"schema\":1", "\"schema\":2", 1),
            "t:2:schema",
            "upgrade",
        ),
        (
            first.replacen("\"schema\":1", "\"schema\":0", 1),
            "t:2:schema",
            "never issued",
        ),
        (
            first.replacen("\"kind\":\"trace\"", "\"kind\":\"hop\"", 1),
            "t:2:kind",
            "unknown variant",
        ),
        (
            first.replacen("\"kind\":\"unreachable\",", "", 1),
            "t:2:hops[1].replies[0]",
            "missing field `kind`",
        ),
        (
            first.replacen("\"ttl\":2", "\"ttl\":300", 1),
            "t:2:hops[1].ttl",
            "300",
        ),
        (
            first.replacen("\"dst\":\"198.18.177.15\"", "\"dst\":null", 1),
            "t:2:dst",
            "null",
        ),
        (first[..first.len() - 10].to_string(), "t:2", "EOF"),
    ] {
        let text = format!("{first}\n{bad}\n");
        let e = read_tumen_json_lines(&text, "t").expect_err(&bad);
        assert_eq!(e.origin, origin, "{bad}: {e}");
        assert!(e.what.contains(needle), "{bad}: {e}");
        assert_eq!(
            read_traces_with(&text, "t", strict()).expect_err("detected"),
            e
        );
    }
}

// ---------------------------------------------------------------------
// detection

#[test]
fn every_fixture_is_detected_as_its_format() {
    use Format::*;
    for (name, format) in [
        ("linux-n.txt", TracerouteText),
        ("linux-names.txt", TracerouteText),
        ("linux-ipv6.txt", TracerouteText),
        ("linux-annotations.txt", TracerouteText),
        ("inetutils.txt", TracerouteText),
        ("macos.txt", TracerouteText),
        ("macos-traceroute6.txt", TracerouteText),
        ("several.txt", TracerouteText),
        ("excerpt.txt", TracerouteText),
        ("dprk-china-unicom-x.txt", TracerouteText),
        ("dprk-transtelecom.txt", TracerouteText),
        ("mtr.json", MtrJson),
        ("mtr-names.json", MtrJson),
        ("mtr-0.92.json", MtrJson),
        ("mtr-two.json", MtrJson),
        ("atlas-single.json", AtlasJson),
        ("atlas-array.json", AtlasJson),
        ("atlas-lines.jsonl", AtlasJson),
        ("atlas-ipv6.json", AtlasJson),
        ("atlas-variants.json", AtlasJson),
        ("tumen.jsonl", TumenJsonLines),
    ] {
        let text = fixture(name);
        assert_eq!(detect(&text, name).expect(name), format, "{name}");
        let direct = read_format(format, &text, name).expect(name);
        assert_eq!(direct.traces, read(name), "{name}");
        assert!(!direct.traces.is_empty(), "{name}");
        // Each other reader refuses it, with an error rather than a panic.
        for other in Format::ALL.into_iter().filter(|f| *f != format) {
            if let Ok(t) = read_format(other, &text, name) {
                panic!("{name} read as {other}: {t:?}");
            }
        }
    }
}

#[test]
fn detection_failures_say_what_was_tried() {
    let e = read_traces(&fixture("not-a-traceroute.txt"), "not-a-traceroute.txt")
        .expect_err("ping output is not a traceroute");
    assert_eq!(e.origin, "not-a-traceroute.txt:1");
    for f in Format::ALL {
        assert!(e.what.contains(f.name()), "{e}");
    }
    for text in [
        "",
        "\n\n",
        "# just a comment\n",
        r#"{"hello":"world"}"#,
        "[1, 2]",
        "{\"report\": ",
        "\"a string\"",
    ] {
        let e = fails(text, "x");
        assert!(e.what.contains("tried"), "{text:?}: {e}");
    }
    let e = fails("{\"a\":\n{\"b\": 1}\n}\n", "x");
    assert!(e.what.contains("mtr --json has `report`"), "{e}");
    // A shell prompt in brackets is not JSON.
    let e = fails("[root@host ~]# ls\nhello\n", "x");
    assert!(!e.what.contains("JSON, but"), "{e}");
    let e = fails(
        &format!("[{}]", fixture("tumen.jsonl").lines().next().expect("line")),
        "x",
    );
    assert!(e.what.contains("one JSON object per line"), "{e}");
    // An empty Atlas download is a valid, empty answer.
    assert_eq!(
        read_traces("[]", "x").expect("empty array").traces,
        Vec::new()
    );
}

// ---------------------------------------------------------------------
// the real-world check: two public DPRK-bound traces written out by hand

/// Longest-prefix match over the embedded table.
#[derive(Debug)]
struct Defaults(Vec<(IpNet, u32)>);

impl Defaults {
    fn new() -> Self {
        Self(
            DEFAULT_PREFIXES
                .iter()
                .map(|(p, a)| (p.parse().expect("prefix"), *a))
                .collect(),
        )
    }
}

impl AsnLookup for Defaults {
    fn asn(&self, addr: IpAddr) -> Option<u32> {
        self.0
            .iter()
            .filter(|(n, _)| n.contains(&addr))
            .max_by_key(|(n, _)| n.prefix_len())
            .map(|(_, a)| *a)
    }
}

#[test]
fn dprk_trace_stopped_at_china_unicom_with_x() {
    let t = read("dprk-china-unicom-x.txt");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].target, Some(ip("175.45.176.71")));
    assert_eq!(
        hops(&t[0]).last().map(String::as_str),
        Some("8 219.158.39.54 !X")
    );
    let i = infer(&t[0], &Target::dprk(), &Defaults::new(), &Orgs::default());
    assert_eq!(i.upstream, "china-unicom");
    assert!(!i.entered);
    assert_eq!(i.evidence.terminal_annotation.as_deref(), Some("!X"));
}

#[test]
fn dprk_trace_entering_via_transtelecom() {
    let t = read("dprk-transtelecom.txt");
    assert_eq!(t[0].target, Some(ip("175.45.176.71")));
    assert_eq!(
        hops(&t[0])[3..],
        [
            "4 188.43.3.213",
            "5 188.43.3.122",
            "6 *",
            "7 188.43.225.153",
            "8 175.45.176.1",
            "9 175.45.176.71"
        ]
    );
    let i = infer(&t[0], &Target::dprk(), &Defaults::new(), &Orgs::default());
    assert_eq!(i.upstream, "transtelecom");
    assert_eq!(i.upstream_asn, Some(20485));
    assert!(i.entered);
}

// ---------------------------------------------------------------------
// robustness: no panic, whatever the input

fn read_every_way(text: &str) {
    let _ = read_traces(text, "fuzz");
    for f in Format::ALL {
        let _ = read_format(f, text, "fuzz");
    }
}

#[test]
fn truncated_and_mangled_fixtures_never_panic() {
    let names = [
        "linux-names.txt",
        "macos.txt",
        "inetutils.txt",
        "mtr-0.92.json",
        "mtr-two.json",
        "atlas-variants.json",
        "atlas-array.json",
        "tumen.jsonl",
    ];
    const ALPHABET: &[char] = &[
        '{', '}', '[', ']', '"', ':', ',', '0', '9', '-', '.', ' ', '\n', '*', '!', '(', ')', '<',
        '>', '%', 'e', 'é', '\\',
    ];
    let mut rng = Rng(0x7475_6d65_6e21);
    for name in names {
        mangle(&fixture(name), 3, 150, 4, ALPHABET, &mut rng, &mut |s| {
            read_every_way(s)
        });
    }
    // Pathological nesting and sizes.
    read_every_way(&"[".repeat(100_000));
    read_every_way(&"{\"result\":".repeat(10_000));
    read_every_way(&format!("{}\n", " 1".repeat(50_000)));
    read_every_way(&format!("traceroute to {}\n", "(".repeat(10_000)));
}
