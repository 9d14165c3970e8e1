//! Replays the ingest fuzz corpus (`collector/fuzz/corpus/ingest`) through
//! the same decode-and-validate path as the fuzz target, on stable Rust,
//! so CI checks it without a nightly fuzzer: no input may panic, and the
//! named seeds get the answer they were written for.

use std::path::Path;

use tumen_collector::serve::ingest::{read_upload, Checks, Encoding};

#[test]
fn ingest_corpus_replays_without_panic_and_seeds_get_their_answer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ingest");
    let checks = Checks {
        now_ms: 1_800_000_000_000,
        max_skew_ms: 600_000,
        oldest_ms: 1_797_408_000_000,
    };
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        let Some((&sel, body)) = data.split_first() else {
            continue;
        };
        let encoding = match sel % 3 {
            0 => Encoding::Identity,
            1 => Encoding::Gzip,
            _ => Encoding::Zstd,
        };
        let r = read_upload(
            body,
            encoding,
            "vp-fra",
            1 << 20,
            1000,
            &checks,
            &mut |_| true,
        );
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let want = match name {
            "valid_trace_and_ping" | "valid_gzip" | "valid_zstd" => None,
            "zstd_bomb" | "gzip_bomb" => Some("decoded_too_large"),
            "future_start" => Some("future_timestamp"),
            "stale_start" => Some("stale_timestamp"),
            "negative_rtt" | "bad_prefix" | "ping_received_over_sent" => Some("invalid_field"),
            "nested_json" | "invalid_utf8" | "huge_number" => Some("malformed_record"),
            "agent_mismatch" => Some("agent_mismatch"),
            "empty" => Some("empty_batch"),
            "truncated_gzip" => Some("bad_compression"),
            _ => {
                n += 1;
                continue;
            }
        };
        match want {
            None => assert_eq!(r.expect(name).len(), 2, "{name}"),
            Some(reason) => assert_eq!(r.expect_err(name).reason, reason, "{name}"),
        }
        n += 1;
    }
    assert!(n >= 16, "only {n} corpus files in {}", dir.display());
}
