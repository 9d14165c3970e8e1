//! `serve --import FILE --import-as NAME`: a pasted or archived
//! traceroute file (any format `infer` reads) fed to the live state as the
//! vantage point NAME.
//!
//! Each trace becomes a wire record of that vantage point: dated at the
//! import (the text formats carry no date), its id a hash of the vantage
//! point and the trace (destination, hops, annotations), its hops the
//! addresses and annotations the file showed (RTTs are not kept: 0).

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use tumen_wire::{Hop, HopReply, Protocol, StopReason, TraceMode, TraceRecord};

use crate::model::{InputError, Trace};
use crate::pipeline::Incoming;

/// The vantage point imported traces are attributed to by default.
pub const DEFAULT_NAME: &str = "import";

/// Reads `text` (named `name` in messages) and makes one record of
/// vantage point `agent` per trace with a destination, dated `now_ms`.
pub fn records(
    text: &str,
    name: &str,
    agent: &str,
    now_ms: u64,
) -> Result<Vec<Incoming>, InputError> {
    let read = crate::input::read_traces(text, name)?;
    for skipped in &read.skipped {
        tracing::warn!(origin = %skipped.origin, reason = %skipped.what, "import: line skipped");
    }
    Ok(read
        .traces
        .iter()
        .filter_map(|t| record(t, agent, now_ms))
        .map(|r| {
            // The line as an agent would send it (with its `kind`).
            // Serialising a record of plain fields cannot fail.
            let line =
                serde_json::to_string(&tumen_wire::Record::Trace(r.clone())).unwrap_or_default();
            Incoming::Trace(Box::new(r), line)
        })
        .collect())
}

/// The wire record of one trace, or `None` when it has no destination
/// (no header and no responding hop).
pub fn record(t: &Trace, agent: &str, now_ms: u64) -> Option<TraceRecord> {
    let dst = t.effective_target()?;
    let mut h = Sha256::new();
    h.update(agent.as_bytes());
    h.update(dst.to_string().as_bytes());
    let mut hops = Vec::new();
    let mut reached = false;
    let mut unreachable = false;
    for hop in &t.hops {
        h.update([hop.ttl]);
        let annotation = hop.annotations.first().cloned();
        unreachable |= annotation.is_some();
        let replies = hop
            .addrs
            .iter()
            .map(|&addr| {
                h.update(addr.to_string().as_bytes());
                reached |= addr == dst;
                reply(addr, dst, annotation.clone())
            })
            .collect();
        for a in &hop.annotations {
            h.update(a.as_bytes());
        }
        hops.push(Hop {
            ttl: hop.ttl.max(1),
            flow: 0,
            sent: 1,
            replies,
        });
    }
    let digest = h.finalize();
    let id = hex::encode(&digest[..16]);
    let max_ttl = hops.iter().map(|h| h.ttl).max().unwrap_or(1);
    Some(TraceRecord {
        schema: tumen_wire::SCHEMA_VERSION,
        id,
        agent: agent.to_string(),
        start_ms: now_ms,
        duration_ms: 0.0,
        src: None,
        dst,
        prefix: tumen_core::unit_of(dst).to_string(),
        protocol: Protocol::Icmp,
        port: None,
        mode: TraceMode::Full,
        first_ttl: hops.iter().map(|h| h.ttl).min().unwrap_or(1),
        max_ttl,
        flows: 1,
        stop: if reached {
            StopReason::Completed
        } else if unreachable {
            StopReason::Unreachable
        } else {
            StopReason::GapLimit
        },
        reached,
        probes_sent: u32::try_from(hops.len()).unwrap_or(u32::MAX),
        hops,
        error: None,
    })
}

fn reply(addr: IpAddr, dst: IpAddr, annotation: Option<String>) -> HopReply {
    let (kind, t, code) = match (&annotation, addr == dst) {
        (Some(_), _) => ("unreachable", 3, 13),
        (None, true) => ("echo_reply", 0, 0),
        (None, false) => ("time_exceeded", 11, 0),
    };
    HopReply {
        addr,
        rtt_ms: 0.0,
        kind: kind.to_string(),
        icmp_type: t,
        icmp_code: code,
        annotation,
        reply_ttl: None,
        quoted_ttl: None,
        mpls: Vec::new(),
        late: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Checks, Incoming};

    const TEXT: &str = "traceroute to 175.45.176.71 (175.45.176.71), 30 hops max, 60 byte packets
 1  192.168.1.1  0.5 ms  0.4 ms  0.4 ms
 2  219.158.100.1  30.1 ms  30.0 ms  30.2 ms
 3  219.158.39.54  40.1 ms !X  *  *
";

    #[test]
    fn a_pasted_trace_becomes_a_valid_record_that_reads_back_the_same() {
        let now = 1_800_000_000_000;
        let recs = records(TEXT, "paste.txt", "forum-2025", now).expect("read");
        assert_eq!(recs.len(), 1);
        let Incoming::Trace(r, line) = &recs[0] else {
            panic!("a trace")
        };
        assert_eq!((r.agent.as_str(), r.start_ms), ("forum-2025", now));
        assert_eq!(r.prefix, "175.45.176.0/24");
        assert_eq!(r.stop, StopReason::Unreachable);
        assert_eq!(r.id.len(), 32);
        // What the collector would accept from an agent.
        let checks = Checks {
            now_ms: now,
            max_skew_ms: 0,
            oldest_ms: 0,
        };
        let again = crate::pipeline::read_upload(
            line.as_bytes(),
            crate::pipeline::Encoding::Identity,
            "forum-2025",
            1 << 20,
            10,
            &checks,
            &mut |_| true,
        )
        .expect("valid wire record");
        assert_eq!(again.len(), 1);
        // Same trace, same model: the inference sees what `infer` sees.
        let model = crate::input::read_traces(TEXT, "paste.txt")
            .expect("read")
            .traces;
        let back = crate::input::tumen::convert(r, String::new());
        assert_eq!(back.hops, model[0].hops);
        // The same trace gets the same id (a re-import is a duplicate when
        // dated the same), another vantage point another.
        let twice = records(TEXT, "paste.txt", "forum-2025", now).expect("read");
        let other = records(TEXT, "paste.txt", "other", now).expect("read");
        let id = |v: &[Incoming]| v[0].id().to_string();
        assert_eq!(id(&twice), r.id);
        assert_ne!(id(&other), r.id);
    }

    #[test]
    fn unreadable_text_is_an_error_naming_the_file() {
        let e = records("nothing like a traceroute\n", "notes.txt", "x", 1).expect_err("bad");
        assert!(e.to_string().contains("notes.txt"), "{e}");
    }
}
