//! A store seeded the way no agent can write it: one vantage point whose
//! id (and upstream, and organisation) is a hostile label, with a path, a
//! change and the trace that made it. The web view's escaping tests (over
//! HTTP here, in the browser in `tests/tests/e2e_web.rs`) start the
//! collector on it.

use std::path::Path;

use tumen_collector::paths::{AsHop, Change, PathState, Route, Upstream};
use tumen_collector::state::AgentInfo;
use tumen_collector::store::{sqlite::SqliteStore, Store, TraceRow};

/// Writes into the SQLite store at `db` an agent named `label` (live
/// until `now + 60 s`), its path to the /24 of `dst` now on an upstream
/// also named `label` (AS64500, its organisation `label` too), the change
/// from china-unicom to it at `at_ms`, and the trace `line` (id `id`)
/// that made it.
pub fn hostile_store(
    db: &Path,
    label: &str,
    dst: &str,
    line: &str,
    id: &str,
    at_ms: u64,
    now: u64,
) {
    let mut store = SqliteStore::open(db).expect("open");
    let pack = store.pack();
    let dst_ip: std::net::IpAddr = dst.parse().expect("dst");
    let unit = tumen_collector::paths::unit_of(dst_ip);
    let key = (label.to_string(), unit);
    let cu = Upstream {
        name: "china-unicom".into(),
        asn: Some(4837),
    };
    let bad = Upstream {
        name: label.into(),
        asn: Some(64500),
    };
    let mut tx = store.transaction().expect("tx");
    tx.put_agent(&AgentInfo {
        name: label.into(),
        first_seen_ms: at_ms.saturating_sub(10_000),
        last_seen_ms: now + 60_000,
        traces: 1,
        pings: 0,
    })
    .expect("agent");
    let state = PathState {
        current: Some(bad.clone()),
        since_ms: Some(at_ms),
        previous: Some(cu.clone()),
        changes: 1,
        last_trace_ms: Some(at_ms),
        route: Some(Route {
            hops: vec![AsHop {
                asn: Some(64500),
                org: Some(label.into()),
                first_ttl: 1,
                last_ttl: 2,
                rtt_ms: Some(12.0),
            }],
            reached: true,
            dest_ttl: Some(3),
            dest_rtt_ms: Some(90.0),
        }),
        ..PathState::default()
    };
    tx.put_path(&key, &state, now).expect("path");
    tx.put_event(
        &key,
        &Change {
            from: Some(cu),
            to: bad,
            at_ms,
            trace_id: id.to_string(),
            evidence: Default::default(),
        },
        now,
    )
    .expect("event");
    let packed = pack(line);
    tx.insert_trace(
        &TraceRow {
            id,
            agent: label,
            prefix: unit,
            dst: dst_ip,
            start_ms: at_ms,
            upstream: label,
            upstream_asn: Some(64500),
            entered: true,
            confidence: 1.0,
            record: &packed,
        },
        now,
    )
    .expect("trace");
    tx.commit().expect("commit");
}
