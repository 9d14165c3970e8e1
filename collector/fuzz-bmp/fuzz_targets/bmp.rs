//! Arbitrary bytes as one router's BMP stream: framing, bgpkit-parser
//! behind `catch_unwind`, conversion to the model's messages, and the
//! same bytes as one message to `decode`. Nothing may panic outside the
//! parser, and the router goes up and down at most once, in that order.
//!
//! `cargo +nightly fuzz run bmp -s none -- -max_total_time=300` from
//! `collector/fuzz-bmp/`, seeded from `../tests/corpus/bmp/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tumen_collector::bgp::bmp::{self, BmpOptions, View};
use tumen_collector::bgp::Message;

fuzz_target!(
    init: {
        // libfuzzer-sys aborts on every panic, even one caught: the
        // parser's are caught and counted by design (they are faults),
        // and a panic that escapes still aborts in fuzz_target!. Only
        // print those outside the parser.
        std::panic::set_hook(Box::new(|info| {
            let file = info.location().map_or("", |l| l.file());
            if !file.contains("bgpkit-parser") && !file.contains("/bytes-") {
                eprintln!("{info}");
            }
        }));
    },
    |data: &[u8]| {
        let _ = bmp::decode(bytes::Bytes::copy_from_slice(data));
        // The length picks the view (the first byte is the version), so
        // all three are explored.
        let view = match data.len() % 3 {
            1 => View::PostPolicy,
            2 => View::LocRib,
            _ => View::PrePolicy,
        };
        let opts = BmpOptions {
            view,
            ..BmpOptions::default()
        };
        let out = bmp::replay(data, &opts, 1);
        let states: Vec<bool> = out
            .iter()
            .filter_map(|m| match m {
                Message::SourceState { up, .. } => Some(*up),
                _ => None,
            })
            .collect();
        assert!(states.is_empty() || states == [true, false], "{states:?}");
    }
);
