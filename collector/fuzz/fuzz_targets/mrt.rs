//! MRT files as `bgp::mrt::read` reads them (plain, or gzip / bzip2 when
//! the bytes start so): it must never panic, and what it reports must add
//! up. Panics raised inside bgpkit-parser are caught by the reader (and
//! counted as `panic` faults), so only those are let through here; any
//! other panic aborts as usual.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use tumen_collector::bgp::mrt::{self, KeepAll, Overlapping, ReadOptions};
use tumen_collector::bgp::Message;

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught = info.location().is_some_and(|l| {
                let f = l.file();
                f.contains("bgpkit-parser") || f.contains("/bytes-")
            });
            if !caught {
                abort(info);
            }
        }));
    });
    let options = ReadOptions {
        collector: "fuzz".to_string(),
        partial_snapshot: true,
    };
    let mut out: Vec<Message> = Vec::new();
    let report = mrt::read(data, "fuzz", &options, &KeepAll, &mut out);
    let faults = out
        .iter()
        .filter(|m| matches!(m, Message::Fault { .. }))
        .count() as u64;
    assert_eq!(faults, report.fault_count());
    assert!(report.bytes <= data.len() as u64 || report.compression != tumen_collector::table::Compression::None);
    for m in &out {
        if let Message::Snapshot(s) = m {
            assert!(s.routes.iter().all(|(i, _, _)| *i < s.peers.len()));
        }
        let _ = mrt::bgpdump_lines(m);
    }
    // The prefix pre-filter keeps a subset of the same routes.
    let keep = Overlapping(vec!["10.0.0.0/8".parse().unwrap()]);
    let mut some: Vec<Message> = Vec::new();
    mrt::read(data, "fuzz", &options, &keep, &mut some);
});
