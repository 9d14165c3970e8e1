//! Replays the fuzz corpus (`agent/fuzz/corpus/parse_reply`) through every
//! reply parser on stable Rust, so CI checks it without a nightly fuzzer:
//! no input may panic, and the seeds that are real replies must parse.

use std::path::Path;

use tumen_agent::packet::{parse_icmpv4, parse_icmpv6, parse_tcp_v4, parse_tcp_v6};

#[test]
fn corpus_replays_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_reply");
    let mut n = 0;
    let from = std::net::Ipv6Addr::LOCALHOST;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        let v4 = parse_icmpv4(&data);
        let v6 = parse_icmpv6(&data, from, Some(64));
        let t4 = parse_tcp_v4(&data);
        let _ = parse_tcp_v6(&data, from, None);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match name {
            "te_icmp" | "unreach_x_udp" | "te_mpls_rfc4884" | "te_mpls_compat" | "echo_reply" => {
                assert!(v4.is_ok(), "{name}: {v4:?}")
            }
            "tcp_rst" => assert!(t4.is_ok(), "{name}: {t4:?}"),
            "v6_unreach_admin" | "v6_te" => assert!(v6.is_ok(), "{name}: {v6:?}"),
            _ => {}
        }
        if name.starts_with("te_mpls") {
            assert_eq!(v4.expect("parsed").mpls.len(), 1, "{name}");
        }
        n += 1;
    }
    assert!(n >= 8, "only {n} corpus files in {}", dir.display());
}
