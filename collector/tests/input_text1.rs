//! Readers of the text family (group text1): Linux/BSD/macOS/JunOS
//! traceroute text, tracepath, paris-traceroute, NextTrace/besttrace and
//! ripe-atlas report text. Exact hop lists on fixtures shaped like real
//! output (tests/fixtures/input/text1/README.md says where each shape
//! comes from), every warning message, detection against every other
//! fixture and corpus file, the published corpus files of these formats,
//! and no panic on mangled input.

#[path = "common/mangle.rs"]
mod common_mangle;
use common_mangle::{mangle, Rng};

use std::path::PathBuf;

use tumen_collector::input::{detect, read_format, read_traces, read_traces_with, Format, Options};
use tumen_collector::model::{Hop, InputError, Trace};

fn path(parts: &[&str]) -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    p.push("tests");
    for part in parts {
        p.push(part);
    }
    p
}

fn load(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fixture(name: &str) -> String {
    load(path(&["fixtures", "input", "text1", name]))
}

fn corpus(name: &str) -> String {
    load(path(&["corpus", name]))
}

/// One hop as a line: `ttl addr(name,ASn) ... !X [hidden]`, `ttl *`.
fn show(h: &Hop) -> String {
    let mut s = h.ttl.to_string();
    if h.addrs.is_empty() && !h.hidden {
        s.push_str(" *");
    }
    for a in &h.addrs {
        s.push_str(&format!(" {a}"));
        let mut extra = Vec::new();
        if let Some(n) = h.name_of(*a) {
            extra.push(n.to_string());
        }
        if let Some(asn) = h.asn_of(*a) {
            extra.push(format!("AS{asn}"));
        }
        if !extra.is_empty() {
            s.push_str(&format!("({})", extra.join(",")));
        }
    }
    for a in &h.annotations {
        s.push_str(&format!(" {a}"));
    }
    if h.hidden {
        s.push_str(" hidden");
    }
    s
}

fn hops(t: &Trace) -> Vec<String> {
    t.hops.iter().map(show).collect()
}

/// Reads a fixture through detection, checking the detected format.
fn read_as(name: &str, format: Format) -> (Vec<Trace>, Vec<String>) {
    let text = fixture(name);
    let r = read_traces(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(r.format, format, "{name}");
    let skipped = r.skipped.iter().map(|e| e.to_string()).collect();
    (r.traces, skipped)
}

fn strict_error(text: &str, name: &str, format: Format) -> InputError {
    let options = Options {
        strict: true,
        format: Some(format),
    };
    match read_traces_with(text, name, options) {
        Ok(r) => panic!("{name}: expected an error, read {r:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------
// traceroute text

#[test]
fn linux_paste_with_prompt_prose_redactions_notes_and_as_annotations() {
    let (t, skipped) = read_as("linux-paste.txt", Format::TracerouteText);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].target, "175.45.176.71".parse().ok());
    assert_eq!(t[0].origin, "linux-paste.txt:4");
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1(_gateway)",
            "2 hidden",
            "3 hidden",
            "4 203.0.113.1(core1.transit.example,AS64496)",
            "7 219.158.4.121(cu-border.example,AS4837) 219.158.4.125(cu-border-2.example,AS4837)",
            "8 219.158.97.25",
            "9 219.158.39.54(AS4837) !X",
            "10 *",
        ]
    );
    assert_eq!(
        skipped,
        [
            "linux-paste.txt:1: not traceroute output: expected a `traceroute to` header or a \
             hop line, got \"Here is what I get from my VPS, it dies somewhere in China:\"",
            "linux-paste.txt:16: not traceroute output: expected a `traceroute to` header or a \
             hop line, got \"2 hops later it fails, every time.\"",
            "linux-paste.txt:17: not traceroute output: expected a `traceroute to` header or a \
             hop line, got \"64 bytes from 175.45.176.71: icmp_seq=1 ttl=50 time=236 ms\"",
        ]
    );
}

#[test]
fn quoted_paste_with_wrapped_lines_and_redactions() {
    let (t, skipped) = read_as("linux-wrapped.txt", Format::TracerouteText);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(t[0].target, "2001:db8:177::15".parse().ok());
    assert_eq!(
        hops(&t[0]),
        [
            "1 2001:db8:1::1",
            "2 2001:db8:1::2(rtr2.transit.example)",
            "3 hidden",
            "4 2001:db8:219::1 2001:db8:219::5",
            "5 hidden",
        ]
    );
}

#[test]
fn busybox_one_probe_crlf_tabs_and_non_breaking_spaces() {
    let (t, skipped) = read_as("busybox-q1-crlf.txt", Format::TracerouteText);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(
        hops(&t[0]),
        ["1 192.0.2.1", "2 *", "3 198.51.100.7", "4 192.0.2.9"]
    );
}

#[test]
fn junos_as_number_lookup_mpls_and_prompts() {
    let (t, skipped) = read_as("junos.txt", Format::TracerouteText);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].origin, "junos.txt:2");
    assert_eq!(
        hops(&t[0])[1..4],
        [
            "2 149.165.254.141(xe-0-0-5.944.rtr.ll.indiana.gigapop.net,AS19782)",
            "3 149.165.254.22(AS19782)",
            "4 134.55.36.46(washcr5-ip-a-chiccr5.es.net,AS293)",
        ]
    );
    assert_eq!(hops(&t[0]).len(), 8);
    assert_eq!(hops(&t[0])[7], "8 198.124.238.66(bost-pt1.es.net,AS291)");
}

#[test]
fn traceroute_text_warnings_one_per_fault() {
    let header = "traceroute to x (192.0.2.1), 30 hops max\n";
    for (body, origin, what) in [
        (
            " 1  192.0.2.1  1.0 ms  lost here\n",
            "t:2",
            "hop 1: unexpected `lost here` (a note? ignored)",
        ),
        (
            " 1  192.0.2.1  1.0 ms  bogus\n",
            "t:2",
            "hop 1: unexpected `bogus` (expected an address, `name (address)`, an RTT in ms, `*` \
             or an annotation such as `!X`)",
        ),
        (
            " 1  192.0.2.1  1.0\n",
            "t:2",
            "hop 1: RTT `1.0` is not followed by `ms`",
        ),
        (
            " 1  gw (192.0.2.x)  1.0 ms\n",
            "t:2",
            "hop 1: `(192.0.2.x)` is not an address in parentheses (a partly redacted address: \
             read as hidden)",
        ),
        (
            " 1  gw.example (nowhere)  1.0 ms\n",
            "t:2",
            "hop 1: `(nowhere)` is not an address in parentheses",
        ),
        (
            " 1  202.97.x.x  1.0 ms\n",
            "t:2",
            "hop 1: `202.97.x.x` is a partly redacted address: read as hidden",
        ),
        (
            " 1  192.0.2.1 <MPLS:L=16\n",
            "t:2",
            "hop 1: `<MPLS:L=16` is not closed by `>`",
        ),
        (
            " 0  192.0.2.1  1.0 ms\n",
            "t:2",
            "hop number 0 is outside 1..=255",
        ),
        (" 3\n", "t:2", "hop 3: nothing after the hop number"),
        (
            "Trace complete.\n",
            "t:2",
            "not traceroute output: expected a `traceroute to` header or a hop line, got \
             \"Trace complete.\"",
        ),
    ] {
        let text = format!("{header}{body}");
        let e = strict_error(&text, "t", Format::TracerouteText);
        assert_eq!(
            (e.origin.as_str(), e.what.as_str()),
            (origin, what),
            "{body:?}"
        );
    }
    let e = strict_error(
        "traceroute to x (nope), 30 hops max\n 1 192.0.2.1 1 ms\n",
        "t",
        Format::TracerouteText,
    );
    assert_eq!(
        e.to_string(),
        "t:1: header: `(nope)` is not a destination address in parentheses"
    );
    // Lenient: the hop is kept, the fault is a warning.
    let r = read_traces(&format!("{header} 1  gw (192.0.2.x)  1.0 ms\n"), "t").expect("read");
    assert_eq!(hops(&r.traces[0]), ["1 hidden"]);
    assert_eq!(r.skipped.len(), 1);
}

// ---------------------------------------------------------------------
// tracepath

#[test]
fn tracepath_names_addresses_repeated_ttls_and_targets() {
    let (t, skipped) = read_as("tracepath.txt", Format::Tracepath);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].origin, "tracepath.txt:1");
    assert_eq!(t[0].target, "198.51.100.20".parse().ok());
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.0.2.1(_gateway)",
            "2 198.18.0.1(core.isp.example)",
            "3 *",
            "4 198.51.100.20",
        ]
    );
    assert_eq!(t[1].origin, "tracepath.txt:9");
    assert_eq!(t[1].target, "2001:db8::20".parse().ok());
    assert_eq!(hops(&t[1]), ["1 2001:db8::1", "2 2001:db8:1::1 !H"]);
}

#[test]
fn tracepath_corpus_hostnames_are_hidden_and_out_of_order_ttls_merge() {
    let text = corpus("14-tracepath-centos-att.txt");
    let r = read_traces(&text, "c").expect("read");
    assert_eq!(r.format, Format::Tracepath);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let h = hops(&r.traces[0]);
    assert_eq!(
        h[..6],
        [
            "1 hidden",
            "2 hidden",
            "3 71.148.149.0",
            "4 12.242.117.16",
            "5 *",
            "6 *"
        ]
    );
    assert_eq!(h.get(6).map(String::as_str), Some("10 *"));
    assert_eq!(h.len(), 27);
    assert_eq!(r.traces[0].target, None);
}

#[test]
fn tracepath_warnings() {
    for (text, origin, what) in [
        (
            " 1?: [LOCALHOST]  pmtu 1500\n 1:  192.0.2.1  0.5ms  oops\n",
            "t:2",
            "hop 1: unexpected `oops` (expected `0.5ms`, `asymm N`, `reached`, `pmtu N`)",
        ),
        (
            " 1?: [LOCALHOST]  pmtu 1500\n 1:  ???  0.5ms\n",
            "t:2",
            "hop 1: `???` is not an address or a host name",
        ),
        (
            " 1?: [LOCALHOST]  pmtu 1500\n 0:  192.0.2.1  0.5ms\n",
            "t:2",
            "hop number 0 is outside 1..=255",
        ),
        (
            " 1?: [LOCALHOST]  pmtu 1500\nhello there\n",
            "t:2",
            "not tracepath output: expected a `N:  host  0.5ms` line, got \"hello there\"",
        ),
    ] {
        let e = strict_error(text, "t", Format::Tracepath);
        assert_eq!(
            (e.origin.as_str(), e.what.as_str()),
            (origin, what),
            "{text:?}"
        );
    }
}

// ---------------------------------------------------------------------
// paris-traceroute

#[test]
fn paris_exhaustive_with_flows_stats_mpls_and_silent_hop() {
    let (t, skipped) = read_as("paris-mda.txt", Format::ParisTraceroute);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(t[0].target, "74.125.224.100".parse().ok());
    assert_eq!(
        hops(&t[0]),
        [
            "1 172.17.95.252",
            "2 172.25.252.172(us-mtv-cl4-core1-gigabitethernet1-1.n.corp.google.com)",
            "3 72.14.218.190(pr01-xe-7-1-0.pao03.net.google.com) \
             72.14.196.8(pr02-xe-3-0-1.pao03.net.google.com)",
            "4 195.8.0.217(lis2-cr1-be3.cprm.net)",
            "5 *",
            "6 74.125.224.100 !A",
        ]
    );
}

#[test]
fn paris_hop_by_hop_after_a_prompt() {
    let (t, skipped) = read_as("paris-hopbyhop.txt", Format::ParisTraceroute);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(t[0].origin, "paris-hopbyhop.txt:2");
    assert_eq!(t[0].target, "8.8.8.8".parse().ok());
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.168.1.1",
            "2 *",
            "3 10.133.17.29",
            "7 83.224.40.186",
            "8 83.224.40.185 !H"
        ]
    );
}

#[test]
fn libparistraceroute_traceroute_and_mda_links() {
    let (t, skipped) = read_as("paris-lib.txt", Format::ParisTraceroute);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(t.len(), 2);
    assert_eq!(
        hops(&t[0]),
        ["1 192.168.1.1(AS64512)", "2 *", "3 209.85.252.251(AS15169)"]
    );
    assert_eq!(t[1].origin, "paris-lib.txt:5");
    assert_eq!(t[1].target, "192.0.2.9".parse().ok());
    assert_eq!(
        hops(&t[1]),
        [
            "1 192.0.2.1",
            "2 198.51.100.1",
            "3 198.51.100.5 198.51.100.6"
        ]
    );
}

#[test]
fn paris_warnings() {
    let header = "traceroute [(192.0.2.10:33456) -> (192.0.2.9:33457)], protocol udp, algo \
                  hopbyhop, duration 1 s\n";
    for (body, origin, what) in [
        (
            " 0  192.0.2.1  1.0 ms\n",
            "t:2",
            "hop number 0 is outside 1..=255".to_string(),
        ),
        (
            "what now\n",
            "t:2",
            "not paris-traceroute output: expected a header or a hop line, got \"what now\""
                .to_string(),
        ),
        (
            " 1  192.0.2.1  1.0 ms  bogus\n",
            "t:2",
            "hop 1: unexpected `bogus` (expected an address, `name (address)`, an RTT in ms, `*` \
             or an annotation such as `!X`)"
                .to_string(),
        ),
    ] {
        let e = strict_error(&format!("{header}{body}"), "t", Format::ParisTraceroute);
        assert_eq!(
            (e.origin.as_str(), e.what.as_str()),
            (origin, what.as_str()),
            "{body:?}"
        );
    }
    let e = read_format(Format::ParisTraceroute, " 1  192.0.2.1  1 ms\n", "t").expect_err("linux");
    assert!(e.what.contains("not paris-traceroute output"), "{e}");
}

// ---------------------------------------------------------------------
// NextTrace / besttrace

#[test]
fn nexttrace_default_layout_with_banner_names_and_several_addresses() {
    let (t, skipped) = read_as("nexttrace-default.txt", Format::NextTrace);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(t[0].origin, "nexttrace-default.txt:4");
    assert_eq!(t[0].target, "1.1.1.1".parse().ok());
    assert_eq!(
        hops(&t[0]),
        [
            "1 192.168.64.1(_gateway)",
            "2 *",
            "3 hidden",
            "4 202.97.12.1(AS4134) 202.97.12.5(ae-1.r01.example.net,AS4134)",
            "5 1.1.1.1(one.one.one.one,AS13335)",
        ]
    );
}

#[test]
fn nexttrace_classic_table_and_raw() {
    let want = |t: &Trace, rest: &[&str]| {
        let h = hops(t);
        assert_eq!(h, rest, "{}", t.origin);
    };
    let (t, skipped) = read_as("nexttrace-classic.txt", Format::NextTrace);
    assert!(skipped.is_empty(), "{skipped:?}");
    want(
        &t[0],
        &[
            "1 192.168.1.1",
            "2 *",
            "3 203.0.113.1(gw.isp.example,AS64500)",
            "4 1.1.1.1(AS13335)",
        ],
    );
    let (t, skipped) = read_as("nexttrace-table.txt", Format::NextTrace);
    assert!(skipped.is_empty(), "{skipped:?}");
    want(
        &t[0],
        &[
            "1 192.168.1.1",
            "2 *",
            "3 203.0.113.1(gw.isp.example,AS64500) 203.0.113.5(AS64500)",
            "4 1.1.1.1(AS13335)",
        ],
    );
    let (t, skipped) = read_as("nexttrace-raw.txt", Format::NextTrace);
    assert!(skipped.is_empty(), "{skipped:?}");
    want(
        &t[0],
        &[
            "1 192.168.1.1",
            "2 *",
            "3 203.0.113.1(gw.isp.example,AS64500)",
            "4 1.1.1.1(one.one.one.one,AS13335)",
        ],
    );
}

#[test]
fn besttrace_and_nexttrace_corpus_files() {
    let r = read_traces(&corpus("05-besttrace-seattle-shanghai-mobile.txt"), "c").expect("05");
    assert_eq!(r.format, Format::NextTrace);
    assert_eq!(r.traces[0].target, "120.204.197.126".parse().ok());
    let h = hops(&r.traces[0]);
    assert_eq!(h[0], "1 45.43.29.121(AS50131)");
    assert_eq!(h[1], "2 206.81.81.38(six2.cnservers.com)");
    assert_eq!(h[2], "3 *");
    assert_eq!(h[13], "14 120.204.197.126(AS24400)");
    // The title line above the header.
    assert_eq!(
        r.skipped.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        ["c:2: not NextTrace output: expected a header or a hop line, got \"上海移动\""]
    );
    let r = read_traces(&corpus("34-nexttrace-cernet-mobile-telecom.txt"), "c").expect("34");
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let h = hops(&r.traces[0]);
    assert_eq!(h[0], "1 121.250.127.129(_gateway,AS4538)");
    assert_eq!(h[1], "2 192.168.2.3");
    assert_eq!(h[9], "10 202.97.64.137(AS4134)");
    let r = read_traces(&corpus("36-nexttrace-wsl-mobile-baidu-cut.txt"), "c").expect("36");
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(r.traces[0].target, "39.156.66.10".parse().ok());
    assert_eq!(r.traces[0].origin, "c:8");
    assert_eq!(hops(&r.traces[0]).len(), 9);
}

#[test]
fn nexttrace_warnings() {
    let header = "NextTrace v1.2.6\ntraceroute to 1.1.1.1, 30 hops max, 52 bytes payload\n";
    for (body, what) in [
        ("1   gateway     *\n", "hop 1: `gateway` is not an address"),
        ("0   192.0.2.1   *\n", "hop number 0 is outside 1..=255"),
        (
            "so it goes\n",
            "not NextTrace output: expected a header or a hop line, got \"so it goes\"",
        ),
    ] {
        let e = strict_error(&format!("{header}{body}"), "t", Format::NextTrace);
        assert_eq!(
            (e.origin.as_str(), e.what.as_str()),
            ("t:3", what),
            "{body:?}"
        );
    }
    let e = read_format(Format::NextTrace, " 1  192.0.2.1  1 ms\n", "t").expect_err("linux");
    assert!(e.what.contains("not NextTrace/besttrace output"), "{e}");
}

// ---------------------------------------------------------------------
// ripe-atlas report text

#[test]
fn atlas_report_text_one_trace_per_probe() {
    let (t, skipped) = read_as("atlas-report.txt", Format::AtlasText);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].origin, "atlas-report.txt:3");
    assert_eq!(t[0].target, "193.0.14.129".parse().ok());
    assert_eq!(
        hops(&t[0]),
        ["1 94.126.208.17", "2 *", "3 94.126.208.1", "4 193.0.14.129"]
    );
    assert_eq!(t[1].origin, "atlas-report.txt:11");
    assert_eq!(hops(&t[1]), ["1 192.0.2.1(AS64496)"]);
    assert_eq!(
        skipped,
        ["atlas-report.txt:15: not ripe-atlas report output: expected `Probe #N` or a hop line, \
          got \"Network is unreachable\""]
    );
    let r = read_traces(&corpus("04-atlas-report-kroot-linx.txt"), "c").expect("04");
    assert_eq!(r.format, Format::AtlasText);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let h = hops(&r.traces[0]);
    assert_eq!(h[0], "1 94.126.208.17(AS48294)");
    assert_eq!(h[1], "2 172.16.255.69");
    assert_eq!(h[11], "12 193.0.14.129(AS25152)");
}

#[test]
fn atlas_report_warnings() {
    for (text, origin, what) in [
        (
            "  1 192.0.2.1  1 ms\nProbe #1\n",
            "t:1",
            "hop line before any `Probe #N` line: \"1 192.0.2.1  1 ms\"",
        ),
        (
            "Probe #1\n  0 192.0.2.1  1 ms\n",
            "t:2",
            "hop number 0 is outside 1..=255",
        ),
    ] {
        let e = strict_error(text, "t", Format::AtlasText);
        assert_eq!(
            (e.origin.as_str(), e.what.as_str()),
            (origin, what),
            "{text:?}"
        );
    }
    let e = read_format(Format::AtlasText, " 1  192.0.2.1  1 ms\n", "t").expect_err("linux");
    assert!(e.what.contains("no `Probe #N` line"), "{e}");
}

// ---------------------------------------------------------------------
// detection

const MINE: [Format; 5] = [
    Format::TracerouteText,
    Format::Tracepath,
    Format::ParisTraceroute,
    Format::NextTrace,
    Format::AtlasText,
];

/// The corpus manifest: (file, format) pairs.
fn manifest() -> Vec<(String, String)> {
    let text = corpus("manifest.toml");
    let mut out = Vec::new();
    let mut file = None;
    for line in text.lines() {
        let value = |l: &str| {
            l.split_once('=')
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        };
        if line.starts_with("file = ") {
            file = value(line);
        } else if line.starts_with("format = ") {
            if let (Some(f), Some(v)) = (file.take(), value(line)) {
                out.push((f, v));
            }
        }
    }
    out
}

/// The format of a corpus file, if it is one of this group's.
fn my_format(manifest_format: &str) -> Option<Format> {
    match manifest_format {
        "linux" | "bsd" | "other:tab-separated" => Some(Format::TracerouteText),
        "tracepath" => Some(Format::Tracepath),
        "atlas-report" => Some(Format::AtlasText),
        "nexttrace" | "besttrace" => Some(Format::NextTrace),
        "paris-traceroute" => Some(Format::ParisTraceroute),
        _ => None,
    }
}

#[test]
fn every_corpus_file_of_these_formats_is_read_as_published() {
    let m = manifest();
    assert!(m.len() >= 45, "{}", m.len());
    let mut n = 0;
    for (file, format) in &m {
        let Some(want) = my_format(format) else {
            continue;
        };
        n += 1;
        let text = corpus(file);
        assert_eq!(detect(&text, file).expect(file), want, "{file}");
        let r = read_traces(&text, file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(r.format, want, "{file}");
        assert!(!r.traces.is_empty(), "{file}");
        assert!(r.traces.iter().all(|t| !t.hops.is_empty()), "{file}");
        // Only besttrace's title line is not read.
        let allowed = usize::from(file.starts_with("05-"));
        assert_eq!(r.skipped.len(), allowed, "{file}: {:?}", r.skipped);
    }
    assert_eq!(n, 29);
}

#[test]
fn each_fixture_is_detected_as_its_format() {
    for (name, want) in [
        ("linux-paste.txt", Format::TracerouteText),
        ("linux-wrapped.txt", Format::TracerouteText),
        ("busybox-q1-crlf.txt", Format::TracerouteText),
        ("junos.txt", Format::TracerouteText),
        ("tracepath.txt", Format::Tracepath),
        ("paris-mda.txt", Format::ParisTraceroute),
        ("paris-hopbyhop.txt", Format::ParisTraceroute),
        ("paris-lib.txt", Format::ParisTraceroute),
        ("nexttrace-default.txt", Format::NextTrace),
        ("nexttrace-classic.txt", Format::NextTrace),
        ("nexttrace-table.txt", Format::NextTrace),
        ("nexttrace-raw.txt", Format::NextTrace),
        ("atlas-report.txt", Format::AtlasText),
    ] {
        let text = fixture(name);
        assert_eq!(detect(&text, name).expect(name), want, "{name}");
        // The other readers of this family do not read it as theirs, or
        // score it lower.
        for other in MINE.into_iter().filter(|f| *f != want) {
            assert!(other.sniff(&text) < want.sniff(&text), "{name}: {other}");
            if other != Format::TracerouteText {
                assert!(
                    read_format(other, &text, name).is_err(),
                    "{name} read as {other}"
                );
            }
        }
    }
}

#[test]
fn these_readers_do_not_claim_other_formats() {
    let mut files: Vec<(String, String)> = Vec::new();
    for e in std::fs::read_dir(path(&["fixtures", "input"]))
        .expect("dir")
        .flatten()
    {
        if e.path().is_file() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.ends_with(".txt") {
                files.push((name.clone(), load(e.path())));
            }
        }
    }
    for (file, format) in manifest() {
        if my_format(&format).is_none() {
            files.push((file.clone(), corpus(&file)));
        }
    }
    assert!(files.len() > 30, "{}", files.len());
    for (name, text) in &files {
        for f in MINE {
            let score = f.sniff(text);
            // Headerless hop lines (Cisco's) are claimed weakly by
            // traceroute text, so that their own reader wins.
            let most = if f == Format::TracerouteText { 20 } else { 0 };
            assert!(score <= most, "{name}: {f} scores {score}");
        }
    }
}

// ---------------------------------------------------------------------
// robustness

fn read_every_way(text: &str) {
    let _ = read_traces(text, "fuzz");
    for f in MINE {
        let _ = read_format(f, text, "fuzz");
        let _ = f.sniff(text);
    }
}

#[test]
fn truncated_and_mangled_fixtures_never_panic() {
    let mut texts: Vec<String> = [
        "linux-paste.txt",
        "linux-wrapped.txt",
        "junos.txt",
        "tracepath.txt",
        "paris-mda.txt",
        "paris-lib.txt",
        "nexttrace-default.txt",
        "nexttrace-table.txt",
        "nexttrace-raw.txt",
        "atlas-report.txt",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    texts.push(corpus("05-besttrace-seattle-shanghai-mobile.txt"));
    texts.push(corpus("11-bsd-as-telefonica-telecel.txt"));
    const ALPHABET: &[char] = &[
        '(', ')', '[', ']', '<', '>', '{', '}', '|', ':', '.', ',', ' ', '\t', '\n', '*', '!', '-',
        '0', '9', 'x', 'A', 'S', 'm', 's', '?', '#', '/', '…', '\u{a0}', '中',
    ];
    let mut rng = Rng(0x7465_7874_3121);
    for text in &texts {
        mangle(text, 7, 120, 5, ALPHABET, &mut rng, &mut |s| {
            read_every_way(s)
        });
    }
    for s in [
        "(".repeat(10_000),
        "[AS ".repeat(10_000),
        format!("1 {}\n", "(x".repeat(5_000)),
        format!("1 {}\n", "<".repeat(5_000)),
        "1|".repeat(10_000),
        " 1:  ".repeat(10_000),
        "Probe #1\n".repeat(1_000),
        format!("traceroute [(\n{}", " 1  P(".repeat(1_000)),
    ] {
        read_every_way(&s);
    }
}
