//! Traceroute pastes as `tumen-collector infer` reads them: any bytes,
//! decoded as the command decodes a file, read by detection (lenient and
//! strict), by every format's reader by name, and streamed. No reader may
//! panic; what they read must be well formed (TTLs from 1, strictly
//! increasing), and inference over it must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tumen_collector::infer::{infer, Target};
use tumen_collector::input::{decode, read_format, read_stream, read_traces_with, Format, Options};
use tumen_collector::model::Trace;
use tumen_collector::orgs::Orgs;

fn check(traces: &[Trace]) {
    let target = Target::dprk();
    let table = tumen_collector::defaults::default_table();
    for t in traces {
        let mut last = 0u8;
        for h in &t.hops {
            assert!(h.ttl >= 1 && h.ttl > last, "{t:?}");
            last = h.ttl;
        }
        let _ = infer(t, &target, &table, &Orgs::default());
    }
}

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    for strict in [false, true] {
        if let Ok(r) = read_traces_with(&text, "fuzz", Options { strict, format: None }) {
            assert!(!r.traces.is_empty() || r.skipped.is_empty());
            assert!(!strict || r.skipped.is_empty());
            check(&r.traces);
        }
    }
    for f in Format::ALL {
        if let Ok(r) = read_format(f, &text, "fuzz") {
            check(&r.traces);
        }
    }
    let mut reader = data;
    let mut traces = Vec::new();
    let _ = read_stream(&mut reader, "fuzz", Options::default(), &mut |e| {
        if let tumen_collector::input::Event::Trace(t) = e {
            traces.push(t);
        }
        std::ops::ControlFlow::Continue(())
    });
    check(&traces);
});
