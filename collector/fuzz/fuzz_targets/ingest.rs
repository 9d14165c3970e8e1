//! Upload bodies as the collector reads them from the network: the first
//! byte picks the Content-Encoding (identity, gzip, zstd), the rest is the
//! body. Decoding and validation must refuse, never panic, and what they
//! accept must satisfy the checks they promise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tumen_collector::serve::ingest::{read_upload, Checks, Encoding, Incoming};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let encoding = match sel % 3 {
        0 => Encoding::Identity,
        1 => Encoding::Gzip,
        _ => Encoding::Zstd,
    };
    let checks = Checks {
        now_ms: 1_800_000_000_000,
        max_skew_ms: 600_000,
        oldest_ms: 1_797_408_000_000,
    };
    if let Ok(batch) = read_upload(body, encoding, "vp-fra", 1 << 20, 1000, &checks, &mut |_| true) {
        assert!(!batch.is_empty() && batch.len() <= 1000);
        for item in &batch {
            let start = match item {
                Incoming::Trace(t, _) => t.start_ms,
                Incoming::Ping(p, _) => p.start_ms,
            };
            assert!(start >= checks.oldest_ms && start <= checks.now_ms + checks.max_skew_ms);
        }
    }
});
