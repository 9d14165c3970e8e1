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

/// What every reader promises of what it reads: TTLs from 1, strictly
/// increasing; and inference over it answers.
fn well_formed(traces: &[tumen_collector::model::Trace], what: &str) {
    let target = tumen_collector::infer::Target::dprk();
    let table = tumen_collector::defaults::default_table();
    let orgs = tumen_collector::orgs::Orgs::default();
    for t in traces {
        let mut last = 0u8;
        for h in &t.hops {
            assert!(
                h.ttl >= 1 && h.ttl > last,
                "{what}: {}: hop {}",
                t.origin,
                h.ttl
            );
            last = h.ttl;
        }
        let _ = tumen_collector::infer::infer(t, &target, &table, &orgs);
    }
}

/// Reads `data` every way `infer` can, as the `infer_input` fuzz target
/// does.
fn read_every_way(data: &[u8], what: &str) {
    use tumen_collector::input::{
        decode, read_format, read_stream, read_traces_with, Event, Format, Options,
    };
    let text = decode(data);
    for strict in [false, true] {
        if let Ok(r) = read_traces_with(
            &text,
            what,
            Options {
                strict,
                format: None,
            },
        ) {
            assert!(!r.traces.is_empty() || r.skipped.is_empty(), "{what}");
            assert!(!strict || r.skipped.is_empty(), "{what}");
            well_formed(&r.traces, what);
        }
    }
    for f in Format::ALL {
        if let Ok(r) = read_format(f, &text, what) {
            well_formed(&r.traces, what);
        }
    }
    let mut reader = data;
    let mut traces = Vec::new();
    let _ = read_stream(&mut reader, what, Options::default(), &mut |e| {
        if let Event::Trace(t) = e {
            traces.push(t);
        }
        std::ops::ControlFlow::Continue(())
    });
    well_formed(&traces, what);
}

/// The `infer_input` fuzz corpus, every reader fixture and every corpus
/// file, replayed through the fuzz target's checks on stable Rust.
#[test]
fn infer_input_corpus_and_fixtures_replay_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    let mut stack = vec![
        root.join("fuzz/corpus/infer_input"),
        root.join("tests/fixtures/input"),
        root.join("tests/corpus"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let data = std::fs::read(&path).expect("read");
            read_every_way(&data, &path.display().to_string());
            n += 1;
        }
    }
    assert!(n > 100, "only {n} inputs replayed");
}

mod no_panic {
    use proptest::prelude::*;

    fn lines() -> impl Strategy<Value = String> {
        // Lines built from the pieces traceroute outputs are made of, so
        // that the readers get past their first checks.
        let piece = prop_oneof![
            Just("traceroute to x (192.0.2.9), 30 hops max".to_string()),
            Just("Tracing route to x [192.0.2.9]".to_string()),
            Just("HOST: h Loss% Snt".to_string()),
            Just("Mtr_Version,Start_Time,Status,Host,Hop,Ip".to_string()),
            Just("Type escape sequence to abort.".to_string()),
            Just("TRACEROUTE (using port 80/tcp)".to_string()),
            Just("{\"type\":\"trace\",\"hops\":[".to_string()),
            Just("{\"dst_addr\":\"192.0.2.9\",\"result\":[{\"hop\":1".to_string()),
            Just("<MTR SRC=\"a\" DST=\"b\"><HUB COUNT=\"1\" HOST=\"192.0.2.1\"".to_string()),
            Just("Probe #1".to_string()),
            Just("NextTrace v1".to_string()),
            Just(" 1  192.0.2.1  0.5 ms".to_string()),
            Just("  2.|-- 192.0.2.2  0.0%".to_string()),
            Just("  3    <1 ms    *    2 ms  h [192.0.2.3]".to_string()),
            Just("h 0 192.0.2.1".to_string()),
            Just(" 4:  192.0.2.4  1.1ms asymm 3".to_string()),
            Just("*".to_string()),
            Just("!X".to_string()),
            Just("[AS4837]".to_string()),
            Just("(internal network)".to_string()),
            Just("...".to_string()),
            "[0-9]{1,4}",
            "[ -~]{0,12}",
            "\\PC{0,6}",
        ];
        prop::collection::vec(prop::collection::vec(piece, 0..6), 0..12).prop_map(|ls| {
            ls.into_iter()
                .map(|l| l.join(" "))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]
        #[test]
        fn no_input_makes_a_reader_panic(text in lines()) {
            super::read_every_way(text.as_bytes(), "prop");
        }

        #[test]
        fn no_bytes_make_a_reader_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
            super::read_every_way(&data, "bytes");
        }
    }
}
