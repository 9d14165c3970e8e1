//! The Windows `tracert`, `nmap --traceroute` and router CLI readers
//! (group text2): exact hops of every fixture in
//! tests/fixtures/input/text2/ (see its README for where each shape comes
//! from), every skip message, detection against every other fixture and
//! corpus file, the corpus files of these formats, and no panic on mangled
//! input.

#[path = "common/mangle.rs"]
mod common_mangle;
use common_mangle::{mangle, Rng};

use std::path::PathBuf;

use tumen_collector::input::{
    decode, detect, read_format, read_traces, read_traces_with, Format, Options, Read,
};
use tumen_collector::model::Trace;

fn path(parts: &[&str]) -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    p.push("tests");
    for part in parts {
        p.push(part);
    }
    p
}

/// A fixture as the registry sees it: bytes decoded leniently.
fn fixture(name: &str) -> String {
    let p = path(&["fixtures", "input", "text2", name]);
    decode(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn read(name: &str) -> Read {
    read_traces(&fixture(name), name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A hop as one line: `ttl addr(name)[ASn] ... !X hidden`, `ttl *` when
/// silent.
fn hop_lines(t: &Trace) -> Vec<String> {
    t.hops
        .iter()
        .map(|h| {
            let mut s = h.ttl.to_string();
            if h.addrs.is_empty() && !h.hidden {
                s.push_str(" *");
            }
            for &a in &h.addrs {
                s.push_str(&format!(" {a}"));
                if let Some(n) = h.name_of(a) {
                    s.push_str(&format!("({n})"));
                }
                if let Some(asn) = h.asn_of(a) {
                    s.push_str(&format!("[AS{asn}]"));
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

fn summary(r: &Read) -> Vec<String> {
    let mut out = Vec::new();
    for t in &r.traces {
        out.push(format!(
            "trace {} -> {}",
            t.origin,
            t.target
                .map(|a| a.to_string())
                .unwrap_or_else(|| "?".into())
        ));
        out.extend(hop_lines(t));
    }
    for s in &r.skipped {
        out.push(format!("skip {}: {}", s.origin, s.what));
    }
    out
}

/// Reads a fixture and checks its format and every trace, hop and skip.
fn check(name: &str, format: Format, want: &[&str]) {
    let r = read(name);
    assert_eq!(r.format, format, "{name}");
    assert_eq!(summary(&r), want, "{name}");
}

/// What `read_format` gives for `text` in lenient mode, as lines.
fn lines_of(format: Format, text: &str) -> Vec<String> {
    match read_format(format, text, "t") {
        Ok(r) => summary(&r),
        Err(e) => vec![format!("error {}: {}", e.origin, e.what)],
    }
}

fn strict() -> Options {
    Options {
        strict: true,
        ..Options::default()
    }
}

// ---------------------------------------------------------------------
// Windows tracert

#[test]
fn tracert_english_names_timeouts_partial_stars_prompts() {
    check(
        "tracert-en.txt",
        Format::Tracert,
        &[
            "trace tracert-en.txt:3 -> 93.184.216.34",
            "1 192.168.1.1",
            "2 203.0.113.1(host-203-0-113-1.isp.example)",
            "3 *",
            "4 192.0.2.1",
            "5 198.51.100.7(ae-1.r01.example.net)",
            "6 93.184.216.34",
        ],
    );
}

#[test]
fn tracert_reports_unreachable_and_redacted_hops() {
    check(
        "tracert-en-unreachable.txt",
        Format::Tracert,
        &[
            "trace tracert-en-unreachable.txt:3 -> 10.42.0.19",
            "1 192.168.200.1(hubrouter.westell.com)",
            "2 hidden",
            "3 192.168.1.102(SCOTT-P5QC)",
            "4 192.168.1.102(SCOTT-P5QC) !P",
            "trace tracert-en-unreachable.txt:13 -> 10.50.6.1",
            "1 10.20.11.15(168-18-14-227) !H",
            "trace tracert-en-unreachable.txt:18 -> 10.60.0.1",
            "1 198.51.100.2",
            "2 198.51.100.2 !N",
        ],
    );
}

#[test]
fn tracert_german() {
    check(
        "tracert-de.txt",
        Format::Tracert,
        &[
            "trace tracert-de.txt:1 -> 142.250.186.142",
            "1 192.168.111.254",
            "2 62.155.247.66(p3e9bf742.dip0.t-ipconnect.de)",
            "3 *",
            "4 87.128.238.134",
            "5 142.250.186.142(fra24s07-in-f14.1e100.net)",
        ],
    );
}

#[test]
fn tracert_french_one_line_header() {
    check(
        "tracert-fr.txt",
        Format::Tracert,
        &[
            "trace tracert-fr.txt:3 -> 192.168.23.100",
            "1 192.168.13.3",
            "2 *",
            "3 192.168.23.100",
        ],
    );
}

#[test]
fn tracert_spanish_with_a_wrapped_address_and_blank_lines() {
    check(
        "tracert-es-wrapped.txt",
        Format::Tracert,
        &[
            "trace tracert-es-wrapped.txt:3 -> 74.125.159.19",
            "1 192.168.17.13",
            "2 170.51.254.53",
            "3 190.224.15.25(host25.190-224-15.telecom.net.ar)",
            "4 190.225.249.137(host137.190-225-249.telecom.net.ar)",
            "5 209.85.251.28",
            "6 *",
            "7 74.125.159.19",
        ],
    );
}

#[test]
fn tracert_portuguese() {
    check(
        "tracert-pt-br.txt",
        Format::Tracert,
        &[
            "trace tracert-pt-br.txt:1 -> 8.8.8.8",
            "1 192.168.1.1",
            "2 10.0.0.1",
            "3 *",
            "4 187.108.238.169(187-108-238-169.ufinet.com)",
            "5 8.8.8.8",
        ],
    );
}

#[test]
fn tracert_russian_with_its_own_unit() {
    check(
        "tracert-ru.txt",
        Format::Tracert,
        &[
            "trace tracert-ru.txt:3 -> 87.250.250.108",
            "1 192.168.0.1",
            "2 85.21.129.73(bras240-lo0.spb.corbina.net)",
            "3 *",
            "4 85.21.225.198(bmor19-bb-tengige0-3-0-3.spb.corbina.net)",
            "5 87.250.250.108(cloud.yandex.ru)",
        ],
    );
}

#[test]
fn tracert_in_a_legacy_code_page_reads_by_structure() {
    let text = fixture("tracert-ru-cp866.txt");
    assert!(text.contains('\u{fffd}'), "the fixture must not be UTF-8");
    check(
        "tracert-ru-cp866.txt",
        Format::Tracert,
        &[
            "trace tracert-ru-cp866.txt:2 -> 8.8.8.8",
            "1 192.168.0.1",
            "2 10.10.0.1",
            "3 *",
            "4 8.8.8.8(dns.google)",
        ],
    );
    // Nothing is skipped: the garbled max-hops line and trailer are
    // tracert's own messages.
    assert!(read_traces_with(&text, "cp866", strict()).is_ok());
}

#[test]
fn tracert_chinese_two_line_header_over_ipv6() {
    check(
        "tracert-zh-ipv6.txt",
        Format::Tracert,
        &[
            "trace tracert-zh-ipv6.txt:3 -> 2404:6800:4005:808::2004",
            "1 2001:db8:680:95ac::1",
            "2 2001:250:3002:4410::1(cernet.edu.cn)",
            "3 fd44:1022::ff01",
            "4 *",
            "5 2001:da8:2:1::1",
        ],
    );
}

#[test]
fn tracert_japanese_one_line_header_over_ipv6() {
    check(
        "tracert-ja-ipv6.txt",
        Format::Tracert,
        &[
            "trace tracert-ja-ipv6.txt:1 -> 2606:4700:4700::1111",
            "1 2400:2411:3b00:2800:1111:1111:1111:1111",
            "2 *",
            "3 2001:de8:c::1:3335:1",
            "4 2606:4700:4700::1111",
        ],
    );
}

#[test]
fn tracert_italian_dutch_korean_in_one_paste() {
    check(
        "tracert-it-nl-ko.txt",
        Format::Tracert,
        &[
            "trace tracert-it-nl-ko.txt:1 -> 8.8.8.8",
            "1 192.168.1.1",
            "2 *",
            "3 8.8.8.8",
            "trace tracert-it-nl-ko.txt:9 -> 8.8.4.4",
            "1 192.168.178.1",
            "2 *",
            "3 8.8.4.4(dns.google)",
            "trace tracert-it-nl-ko.txt:19 -> 1.1.1.1",
            "1 192.168.0.1",
            "2 *",
            "3 1.1.1.1(one.one.one.one)",
        ],
    );
}

#[test]
fn pathping_trace_part_is_read_and_statistics_skipped() {
    check(
        "pathping.txt",
        Format::Tracert,
        &[
            "trace pathping.txt:3 -> 8.8.8.8",
            "1 192.168.1.1",
            "2 10.0.0.1",
            "3 *",
            "4 8.8.8.8",
        ],
    );
}

#[test]
fn tracert_headers_in_more_languages_and_by_structure() {
    let cases = [
        ("通过最多 30 个跃点跟踪到 192.0.2.9 的路由\n  1    <1 毫秒   <1 毫秒   <1 毫秒 192.0.2.9\n", "192.0.2.9"),
        ("Śledzenie trasy do dns.google [8.8.8.8]\nz maksymalną liczbą 30 przeskoków:\n  1    <1 ms    <1 ms    <1 ms  8.8.8.8\n", "8.8.8.8"),
        ("Traza a 192.0.2.9 sobre caminos de 30 saltos\n  1     1 ms     1 ms     1 ms  192.0.2.9\n", "192.0.2.9"),
        // An unknown language: an address, then the max-hops line.
        ("Xyzzy foo bar [192.0.2.7]\nquux 30 zork:\n\n  1     1 ms     1 ms     1 ms  192.0.2.7\n", "192.0.2.7"),
    ];
    for (text, target) in cases {
        let r = read_format(Format::Tracert, text, "t").unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(r.traces.len(), 1, "{text}");
        assert_eq!(
            r.traces[0].target.map(|a| a.to_string()).as_deref(),
            Some(target),
            "{text}"
        );
        assert!(r.skipped.is_empty(), "{text}: {:?}", r.skipped);
        assert_eq!(detect(text, "t").ok(), Some(Format::Tracert), "{text}");
    }
}

#[test]
fn tracert_excerpt_without_header_and_hop_numbers_that_restart() {
    let text = "> Some text the author wrote\n\
                >   3    20 ms    21 ms    20 ms  192.0.2.3\n\
                >   4    22 ms     *       22 ms  192.0.2.4\n\
                \n\
                  1    <1 ms    <1 ms    <1 ms  192.0.2.1\n";
    assert_eq!(
        lines_of(Format::Tracert, text),
        [
            "trace t:2 -> ?",
            "3 192.0.2.3",
            "4 192.0.2.4",
            "trace t:5 -> ?",
            "1 192.0.2.1",
            "skip t:1: not a tracert line: \"Some text the author wrote\"",
        ]
    );
    assert_eq!(detect(text, "t").ok(), Some(Format::Tracert));
}

#[test]
fn tracert_skip_messages() {
    // Prose, and a line with an address that no hop follows.
    assert_eq!(
        lines_of(
            Format::Tracert,
            "Tracing route to 192.0.2.9 over a maximum of 30 hops\n  1  Transmit error: [code 1231]\nmy router is 192.0.2.1, see\n  2     1 ms     1 ms     1 ms  192.0.2.9\n"
        ),
        [
            "trace t:1 -> 192.0.2.9",
            "2 192.0.2.9",
            "skip t:2: hop 1: no probe column and no address: \"1  Transmit error: [code 1231]\"",
            "skip t:3: not a tracert line: \"my router is 192.0.2.1, see\"",
        ]
    );
    // Nothing at all.
    assert_eq!(
        lines_of(Format::Tracert, "hello\n"),
        ["error t:1: not Windows tracert output: no `Tracing route to` header or `Trace complete.` (in any language) and no hop line with its RTT columns before the address (tried Windows tracert; closest: Windows tracert, which stopped here)"]
    );
    assert_eq!(
        lines_of(Format::Tracert, "C:\\>tracert x\nTrace complete.\n"),
        ["error t:1: no tracert output: no `Tracing route to` header (in any language) and no hop line (tried Windows tracert; closest: Windows tracert, which stopped here)"]
    );
    // Strict mode turns the first skipped line into the error.
    let e = read_traces_with(
        "Tracing route to 192.0.2.9 over a maximum of 30 hops\nnoise\n  1     1 ms     1 ms     1 ms  192.0.2.9\n",
        "s",
        strict(),
    )
    .expect_err("strict");
    assert_eq!(
        (e.origin.as_str(), e.what.as_str()),
        ("s:2", "not a tracert line: \"noise\"")
    );
}

// ---------------------------------------------------------------------
// nmap

#[test]
fn nmap_two_hosts_timeouts_and_consolidated_hops() {
    check(
        "nmap-two-hosts.txt",
        Format::Nmap,
        &[
            "trace nmap-two-hosts.txt:10 -> 45.33.32.156",
            "1 192.168.1.1",
            "2 *",
            "3 *",
            "4 203.0.113.1(ae-1.r01.example.net)",
            "5 45.33.32.156(scanme.nmap.org)",
            "trace nmap-two-hosts.txt:21 -> 10.129.12.183",
            "1 192.168.1.1",
            "2 *",
            "3 198.51.100.9",
            "4 10.129.12.183",
        ],
    );
}

#[test]
fn nmap_xml_fills_timed_out_hops() {
    check(
        "nmap.xml",
        Format::Nmap,
        &[
            "trace nmap.xml:9 -> 45.33.32.156",
            "1 192.168.1.1",
            "2 10.0.0.1(gw.isp.example)",
            "3 *",
            "4 45.33.32.156(scanme.nmap.org)",
        ],
    );
}

#[test]
fn nmap_consolidation_without_the_other_host_is_elided() {
    let text = "TRACEROUTE (using proto 1/icmp)\nHOP RTT     ADDRESS\n-   Hop 1 is the same as for 192.0.2.50\n2   1.00 ms 192.0.2.2\n";
    assert_eq!(
        lines_of(Format::Nmap, text),
        ["trace t:1 -> ?", "2 192.0.2.2"]
    );
}

#[test]
fn nmap_skip_messages() {
    let text = "TRACEROUTE (using port 80/tcp)\n\
                HOP RTT     ADDRESS\n\
                0   1.00 ms 192.0.2.1\n\
                3   ... 2\n\
                4   fast 192.0.2.4\n\
                5   1.00 ms host [192.0.2.5]\n\
                6   1.00 ms\n\
                7   1.00 ms 192.0.2.7\n";
    assert_eq!(
        lines_of(Format::Nmap, text),
        [
            "trace t:1 -> ?",
            "7 192.0.2.7",
            "skip t:3: hop number outside 1..=255 in \"0   1.00 ms 192.0.2.1\"",
            "skip t:4: hop 3: `... 2` is not a later hop",
            "skip t:5: hop 4: no RTT (`0.50 ms` or `--`) in \"4   fast 192.0.2.4\"",
            "skip t:6: hop 5: `[192.0.2.5]` is not an address in parentheses",
            "skip t:7: hop 6: no address in \"6   1.00 ms\"",
        ]
    );
    assert_eq!(
        lines_of(Format::Nmap, "<trace proto=\"icmp\">\n<hop ttl=\"x\" ipaddr=\"192.0.2.1\"/>\n<hop ttl=\"2\" ipaddr=\"192.0.2.2\"/>\n</trace>\n"),
        [
            "trace t:1 -> ?",
            "1 *",
            "2 192.0.2.2",
            "skip t:2: <hop> without a ttl (1..=255) and an ipaddr: <hop ttl=\"x\" ipaddr=\"192.0.2.1\"/>",
        ]
    );
    assert_eq!(
        lines_of(
            Format::Nmap,
            "<trace proto=\"icmp\">\n<hop ttl=\"1\" ipaddr=\"192.0.2.1\"/>\n"
        ),
        [
            "trace t:1 -> ?",
            "1 192.0.2.1",
            "skip t:1: <trace> not closed: the XML is cut short",
        ]
    );
    assert_eq!(
        lines_of(Format::Nmap, "Nmap scan report for 192.0.2.1\nHost is up.\n"),
        ["error t:1: no nmap traceroute: no `TRACEROUTE` section (run nmap with --traceroute) (tried nmap --traceroute; closest: nmap --traceroute, which stopped here)"]
    );
}

// ---------------------------------------------------------------------
// Router CLIs

#[test]
fn cisco_ios_as_numbers_mpls_continuations_and_admin_prohibited() {
    check(
        "cisco-ios-as.txt",
        Format::RouterCli,
        &[
            "trace cisco-ios-as.txt:3 -> 8.8.8.8",
            "1 10.0.0.1",
            "2 203.0.113.1[AS64500]",
            "3 198.51.100.1(edge1.example.net)[AS64501] 198.51.100.2(edge2.example.net)[AS64501]",
            "4 *",
            "5 192.0.2.9 !X",
            "6 8.8.8.8(dns.google)[AS15169]",
        ],
    );
}

#[test]
fn cisco_ios_xr_ipv6_with_prompt_and_timestamp() {
    check(
        "cisco-xr.txt",
        Format::RouterCli,
        &[
            "trace cisco-xr.txt:5 -> 2001:db8:ffff::1",
            "1 2001:db8:1::1",
            "2 2001:db8:2::1",
            "3 *",
            "4 2001:db8:ffff::1",
        ],
    );
}

#[test]
fn huawei_glued_mpls_several_addresses_and_a_wrapped_header() {
    check(
        "huawei.txt",
        Format::RouterCli,
        &[
            "trace huawei.txt:2 -> 8.8.8.8",
            "1 10.1.17.1",
            "2 10.1.12.2",
            "3 10.80.224.34 10.180.25.1",
            "4 *",
            "5 8.8.8.8",
            "trace huawei.txt:11 -> 10.80.213.97",
            "1 10.80.224.33",
            "2 10.80.213.97",
        ],
    );
}

#[test]
fn mikrotik_v7_reads_the_fullest_last_table() {
    check(
        "mikrotik-v7.txt",
        Format::RouterCli,
        &[
            "trace mikrotik-v7.txt:1 -> 8.8.8.8",
            "1 192.168.88.1",
            "2 10.20.30.1",
            "3 *",
            "4 72.14.215.85",
            "5 hidden",
            "6 8.8.8.8",
        ],
    );
}

#[test]
fn mikrotik_old_address_status_table() {
    check(
        "mikrotik-old.txt",
        Format::RouterCli,
        &[
            "trace mikrotik-old.txt:1 -> 216.239.39.101",
            "1 159.148.60.227",
            "2 195.13.173.221",
            "3 *",
            "4 216.239.39.101",
        ],
    );
}

#[test]
fn router_skip_messages() {
    let text = "Tracing the route to 192.0.2.9\n\
                \x20 1 192.0.2.1 4 msec (bogus) 4 msec\n\
                \x20 2 192.0.2.2 ~~ 4 msec\n\
                \x20 300 192.0.2.3 4 msec\n\
                what is this\n\
                \x20 3 192.0.2.9 4 msec\n";
    assert_eq!(
        lines_of(Format::RouterCli, text),
        [
            "trace t:1 -> 192.0.2.9",
            "1 192.0.2.1",
            "2 192.0.2.2",
            "3 192.0.2.9",
            "skip t:2: hop 1: `(bogus)` is not an address in parentheses",
            "skip t:3: hop 2: `~~` is not an address, an RTT or a Cisco code",
            "skip t:4: hop number 300 is outside 1..=255",
            "skip t:5: not a router traceroute line: \"what is this\"",
        ]
    );
    assert_eq!(
        lines_of(
            Format::RouterCli,
            "/tool traceroute 192.0.2.9\n # ADDRESS LOSS SENT LAST\n 1 192.0.2.1 0% 1 1ms\n garbage row\n"
        ),
        [
            "trace t:1 -> 192.0.2.9",
            "1 192.0.2.1",
            "skip t:4: not a MikroTik traceroute row: \"garbage row\"",
        ]
    );
    assert_eq!(
        lines_of(Format::RouterCli, "Type escape sequence to abort.\n"),
        ["error t:1: no router traceroute: no `Tracing the route to` (Cisco), `traceroute to ... max hops:` (Huawei) or `# ADDRESS LOSS SENT` (MikroTik) and no hop line (tried router CLI (Cisco/MikroTik/BIRD); closest: router CLI (Cisco/MikroTik/BIRD), which stopped here)"]
    );
}

// ---------------------------------------------------------------------
// Detection, corpus, robustness

/// Every file under `dir` that is a traceroute input (not README/manifest).
fn inputs(parts: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(path(parts))
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("txt" | "json" | "jsonl" | "xml")
                )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_is_detected_as_its_format() {
    for p in inputs(&["fixtures", "input", "text2"]) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let want = if name.starts_with("tracert") || name.starts_with("pathping") {
            Format::Tracert
        } else if name.starts_with("nmap") {
            Format::Nmap
        } else {
            Format::RouterCli
        };
        let text = fixture(name);
        assert_eq!(detect(&text, name).ok(), Some(want), "{name}");
        // And strictly: nothing in the fixtures is skipped.
        let r = read_traces_with(&text, name, strict()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.format, want, "{name}");
    }
}

#[test]
fn these_readers_do_not_claim_other_formats() {
    let mut files = inputs(&["fixtures", "input"]);
    files.extend(inputs(&["corpus"]));
    for p in files {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let text = decode(&std::fs::read(&p).expect("read"));
        let tracert = name.contains("-tracert-");
        let cisco = name.contains("-cisco-");
        let nmap = name.contains("-nmap-");
        for (format, mine) in [
            (Format::Tracert, tracert),
            (Format::Nmap, nmap),
            (Format::RouterCli, cisco),
        ] {
            let score = format.sniff(&text);
            if mine {
                assert!(score >= 90, "{name}: {format} {score}");
            } else {
                assert_eq!(score, 0, "{name}: {format} claims it");
            }
        }
    }
}

#[test]
fn corpus_files_of_these_formats_read() {
    // (file, format, traces, hops of the first trace, target)
    let cases = [
        (
            "17-cisco-bt-ntt-chinamobile-mpls.txt",
            Format::RouterCli,
            30,
            "39.156.69.79",
        ),
        (
            "18-cisco-bt-cloudflare-1111.txt",
            Format::RouterCli,
            10,
            "1.1.1.1",
        ),
        (
            "19-cisco-bt-google-10probes.txt",
            Format::RouterCli,
            22,
            "8.8.8.8",
        ),
        (
            "20-cisco-bt-ovh-hop0.txt",
            Format::RouterCli,
            15,
            "51.89.96.192",
        ),
        (
            "35-tracert-en-private-corporate.txt",
            Format::Tracert,
            7,
            "172.19.219.42",
        ),
        (
            "37-cisco-google-starts-at-ttl10.txt",
            Format::RouterCli,
            4,
            "216.58.212.238",
        ),
        (
            "45-cisco-google-path-private-dest-H.txt",
            Format::RouterCli,
            6,
            "10.225.2.1",
        ),
    ];
    for (file, format, hops, target) in cases {
        let text = decode(&std::fs::read(path(&["corpus", file])).expect("read"));
        let r = read_traces_with(&text, file, strict()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(r.format, format, "{file}");
        assert_eq!(r.traces.len(), 1, "{file}");
        let t = &r.traces[0];
        assert_eq!(t.hops.len(), hops, "{file}");
        assert_eq!(
            t.target.map(|a| a.to_string()).as_deref(),
            Some(target),
            "{file}"
        );
    }
    // Details that matter: hop 0 is skipped, load-balanced continuation
    // lines join their hop, `!H` is kept.
    let text = decode(&std::fs::read(path(&["corpus", "20-cisco-bt-ovh-hop0.txt"])).expect("read"));
    let r = read_traces(&text, "20").expect("20");
    assert_eq!(r.traces[0].hops[0].ttl, 1);
    let text = decode(
        &std::fs::read(path(&["corpus", "45-cisco-google-path-private-dest-H.txt"])).expect("read"),
    );
    let r = read_traces(&text, "45").expect("45");
    assert_eq!(
        hop_lines(&r.traces[0])[3..],
        [
            "4 74.125.242.97 216.239.63.218 172.253.68.212 216.239.56.192 108.170.238.117 216.239.58.220",
            "5 216.58.204.46 74.125.242.115 74.125.242.114 108.170.238.117 108.170.238.119 74.125.242.83 74.125.242.82",
            "6 172.17.10.225 !H",
        ]
    );
}

fn read_every_way(text: &str) {
    let _ = read_traces(text, "fuzz");
    let _ = detect(text, "fuzz");
    for f in [Format::Tracert, Format::Nmap, Format::RouterCli] {
        let _ = f.sniff(text);
        let _ = read_format(f, text, "fuzz");
    }
}

#[test]
fn truncated_and_mangled_fixtures_never_panic() {
    const ALPHABET: &[char] = &[
        '[', ']', '(', ')', '<', '>', '*', '!', ' ', '\n', '0', '9', '.', ':', '%', '-', '=', '/',
        '#', '|', 'é', '\u{fffd}', '毫', 'x',
    ];
    let mut rng = Rng(0x0074_6578_7432);
    for p in inputs(&["fixtures", "input", "text2"]) {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        mangle(&fixture(&name), 5, 100, 4, ALPHABET, &mut rng, &mut |s| {
            read_every_way(s)
        });
    }
    read_every_way(&format!("{}\n", "  1    <1 ms [".repeat(10_000)));
    read_every_way(&"Tracing the route to (".repeat(10_000));
    read_every_way(&format!("TRACEROUTE\n{}", "1   ... 255\n".repeat(1000)));
    read_every_way(&"<trace><hop ttl=\"255\" ipaddr=\"::1\"/>".repeat(1000));
}
