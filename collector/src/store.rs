//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so a
//! commit that returned is on disk (the collector answers 2xx only after
//! it). Versioned migrations (`PRAGMA user_version`); a database from a
//! newer build is refused rather than guessed at.
//!
//! Tables: `traces` and `pings` (raw records as received, keyed by the
//! agent's result id, so a re-sent record is ignored), `paths` (the
//! current state per (agent, /24), written in the same transaction as the
//! records that moved it), `events` (upstream changes) and `agents`.
//! One connection writes (the server's writer thread); readers open their
//! own.

use std::collections::BTreeMap;
use std::path::Path;

use ipnet::IpNet;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::paths::{Change, PathKey, PathState};

/// Schema versions, in order; index + 1 is the version.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE traces (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        prefix TEXT NOT NULL,
        dst TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        upstream TEXT NOT NULL,
        upstream_asn INTEGER,
        entered INTEGER NOT NULL,
        confidence REAL NOT NULL,
        record TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX traces_received ON traces(received_ms);
    CREATE TABLE pings (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        prefix TEXT NOT NULL,
        dst TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        sent INTEGER NOT NULL,
        received INTEGER NOT NULL,
        record TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX pings_received ON pings(received_ms);
    CREATE TABLE paths (
        agent TEXT NOT NULL,
        prefix TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (agent, prefix)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        prefix TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        from_upstream TEXT,
        from_asn INTEGER,
        to_upstream TEXT NOT NULL,
        to_asn INTEGER,
        trace_id TEXT NOT NULL,
        evidence TEXT NOT NULL,
        received_ms INTEGER NOT NULL
    );
    CREATE INDEX events_prefix_at ON events(prefix, at_ms);
    CREATE INDEX events_received ON events(received_ms);
    CREATE TABLE agents (
        name TEXT PRIMARY KEY,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        traces INTEGER NOT NULL,
        pings INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this build's {supported}: \
         upgrade the collector or point --db elsewhere"
    )]
    TooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("database migration to version {version}: {source}")]
    Migrate {
        version: usize,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database holds a path state that does not read back ({agent} {prefix}): {what}")]
    Corrupt {
        agent: String,
        prefix: String,
        what: String,
    },
}

/// An agent as the store and the API know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentInfo {
    pub name: String,
    pub first_seen_ms: u64,
    /// Collector time of the latest accepted upload.
    pub last_seen_ms: u64,
    pub traces: u64,
    pub pings: u64,
}

/// A raw trace row to insert.
#[derive(Debug, Clone)]
pub struct TraceRow<'a> {
    pub id: &'a str,
    pub agent: &'a str,
    pub prefix: IpNet,
    pub dst: std::net::IpAddr,
    pub start_ms: u64,
    pub upstream: &'a str,
    pub upstream_asn: Option<u32>,
    pub entered: bool,
    pub confidence: f64,
    pub record: &'a str,
}

/// A raw ping row to insert.
#[derive(Debug, Clone)]
pub struct PingRow<'a> {
    pub id: &'a str,
    pub agent: &'a str,
    pub prefix: IpNet,
    pub dst: std::net::IpAddr,
    pub start_ms: u64,
    pub sent: u32,
    pub received: u32,
    pub record: &'a str,
}

/// A stored change event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub agent: String,
    pub prefix: String,
    pub at_ms: u64,
    pub from_upstream: Option<String>,
    pub from_asn: Option<u32>,
    pub to_upstream: String,
    pub to_asn: Option<u32>,
    pub trace_id: String,
    pub evidence: serde_json::Value,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub prefix: Option<IpNet>,
    pub agent: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub limit: usize,
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Opens (creating if needed) and migrates the database.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: name.clone(),
        source,
    })?;
    configure(&conn).map_err(|source| StoreError::Open {
        path: name.clone(),
        source,
    })?;
    migrate(&conn, &name)?;
    Ok(conn)
}

/// Opens a read-only connection to an existing, migrated database.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: name.clone(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|source| StoreError::Open { path: name, source })?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode WAL refused (got {mode}); is the database on a network filesystem?"
        )));
    }
    // FULL in WAL mode: the WAL is synced at every commit (durable).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}

fn migrate(conn: &Connection, name: &str) -> Result<(), StoreError> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: name.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i + 1;
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)
            .and_then(|()| tx.execute_batch(&format!("PRAGMA user_version = {version}")))
            .and_then(|()| tx.commit())
            .map_err(|source| StoreError::Migrate { version, source })?;
    }
    Ok(())
}

/// Loads every path state and agent.
#[allow(clippy::type_complexity)]
pub fn load_state(
    conn: &Connection,
) -> Result<(BTreeMap<PathKey, PathState>, BTreeMap<String, AgentInfo>), StoreError> {
    let mut paths = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT agent, prefix, state FROM paths")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (agent, prefix, state) = row?;
        let corrupt = |what: String| StoreError::Corrupt {
            agent: agent.clone(),
            prefix: prefix.clone(),
            what,
        };
        let net: IpNet = prefix.parse().map_err(|e| corrupt(format!("{e}")))?;
        let s: PathState = serde_json::from_str(&state).map_err(|e| corrupt(e.to_string()))?;
        paths.insert((agent.clone(), net), s);
    }
    let mut agents = BTreeMap::new();
    let mut stmt =
        conn.prepare("SELECT name, first_seen_ms, last_seen_ms, traces, pings FROM agents")?;
    let rows = stmt.query_map([], |r| {
        Ok(AgentInfo {
            name: r.get(0)?,
            first_seen_ms: unms(r.get(1)?),
            last_seen_ms: unms(r.get(2)?),
            traces: unms(r.get(3)?),
            pings: unms(r.get(4)?),
        })
    })?;
    for a in rows {
        let a = a?;
        agents.insert(a.name.clone(), a);
    }
    Ok((paths, agents))
}

/// Inserts a raw trace; `false` if its id was already stored.
pub fn insert_trace(
    conn: &Connection,
    row: &TraceRow<'_>,
    received_ms: u64,
) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO traces (id, agent, prefix, dst, start_ms, received_ms, upstream, \
         upstream_asn, entered, confidence, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let n = stmt.execute(params![
        row.id,
        row.agent,
        row.prefix.to_string(),
        row.dst.to_string(),
        ms(row.start_ms),
        ms(received_ms),
        row.upstream,
        row.upstream_asn,
        row.entered,
        row.confidence,
        row.record,
    ])?;
    Ok(n == 1)
}

/// Inserts a raw ping; `false` if its id was already stored.
pub fn insert_ping(
    conn: &Connection,
    row: &PingRow<'_>,
    received_ms: u64,
) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO pings (id, agent, prefix, dst, start_ms, received_ms, sent, received, record) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let n = stmt.execute(params![
        row.id,
        row.agent,
        row.prefix.to_string(),
        row.dst.to_string(),
        ms(row.start_ms),
        ms(received_ms),
        row.sent,
        row.received,
        row.record,
    ])?;
    Ok(n == 1)
}

/// Writes a path's state.
pub fn put_path(
    conn: &Connection,
    key: &PathKey,
    state: &PathState,
    now_ms: u64,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(state)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO paths (agent, prefix, state, updated_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (agent, prefix) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
    )?;
    stmt.execute(params![key.0, key.1.to_string(), json, ms(now_ms)])?;
    Ok(())
}

/// Records a change event.
pub fn put_event(
    conn: &Connection,
    key: &PathKey,
    change: &Change,
    now_ms: u64,
) -> rusqlite::Result<()> {
    let evidence = serde_json::to_string(&change.evidence)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (agent, prefix, at_ms, from_upstream, from_asn, to_upstream, to_asn, \
         trace_id, evidence, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    stmt.execute(params![
        key.0,
        key.1.to_string(),
        ms(change.at_ms),
        change.from.as_ref().map(|u| u.name.as_str()),
        change.from.as_ref().and_then(|u| u.asn),
        change.to.name,
        change.to.asn,
        change.trace_id,
        evidence,
        ms(now_ms),
    ])?;
    Ok(())
}

/// Writes an agent's row.
pub fn put_agent(conn: &Connection, a: &AgentInfo) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO agents (name, first_seen_ms, last_seen_ms, traces, pings) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (name) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, \
         traces = excluded.traces, pings = excluded.pings",
    )?;
    stmt.execute(params![
        a.name,
        ms(a.first_seen_ms),
        ms(a.last_seen_ms),
        ms(a.traces),
        ms(a.pings)
    ])?;
    Ok(())
}

/// Lists change events, newest first.
pub fn events(conn: &Connection, f: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, agent, prefix, at_ms, from_upstream, from_asn, to_upstream, to_asn, trace_id, evidence \
         FROM events WHERE (?1 IS NULL OR prefix = ?1) AND (?2 IS NULL OR agent = ?2) \
         AND at_ms >= ?3 AND at_ms <= ?4 ORDER BY at_ms DESC, id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            f.prefix.map(|p| p.to_string()),
            f.agent,
            ms(f.since_ms.unwrap_or(0)),
            ms(f.until_ms.unwrap_or(u64::MAX)),
            i64::try_from(f.limit).unwrap_or(i64::MAX),
        ],
        |r| {
            let evidence: String = r.get(9)?;
            Ok(EventRow {
                id: r.get(0)?,
                agent: r.get(1)?,
                prefix: r.get(2)?,
                at_ms: unms(r.get(3)?),
                from_upstream: r.get(4)?,
                from_asn: r.get(5)?,
                to_upstream: r.get(6)?,
                to_asn: r.get(7)?,
                trace_id: r.get(8)?,
                evidence: serde_json::from_str(&evidence).unwrap_or(serde_json::Value::Null),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Counts of rows removed by [`prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub traces: usize,
    pub pings: usize,
    pub events: usize,
}

/// Deletes raw records and events received before `cutoff_ms` (collector
/// time: an agent with a wrong clock cannot make data vanish early).
/// Path states and agents are kept (they are the current state).
pub fn prune(conn: &Connection, cutoff_ms: u64) -> rusqlite::Result<Pruned> {
    let tx = conn.unchecked_transaction()?;
    let c = ms(cutoff_ms);
    let traces = tx.execute("DELETE FROM traces WHERE received_ms < ?1", [c])?;
    let pings = tx.execute("DELETE FROM pings WHERE received_ms < ?1", [c])?;
    let events = tx.execute("DELETE FROM events WHERE received_ms < ?1", [c])?;
    tx.commit()?;
    Ok(Pruned {
        traces,
        pings,
        events,
    })
}

/// Row counts, for tests and `/readyz`.
pub fn count(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    let sql = match table {
        "traces" => "SELECT count(*) FROM traces",
        "pings" => "SELECT count(*) FROM pings",
        "events" => "SELECT count(*) FROM events",
        "paths" => "SELECT count(*) FROM paths",
        "agents" => "SELECT count(*) FROM agents",
        _ => return Err(rusqlite::Error::InvalidParameterName(table.to_string())),
    };
    conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(unms)
}

/// The schema version stored in the database.
pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Is there a stored trace with this id?
pub fn has_trace(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM traces WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::Inference;
    use crate::paths::TraceObservation;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("t.db")).expect("open");
        (dir, conn)
    }

    #[test]
    fn a_new_database_is_migrated_to_the_current_version_in_wal_mode() {
        let (_d, conn) = db();
        assert_eq!(user_version(&conn).expect("v"), SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("sync");
        assert_eq!(sync, 2, "FULL");
    }

    #[test]
    fn reopening_keeps_data_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        {
            let conn = open(&path).expect("open");
            put_agent(
                &conn,
                &AgentInfo {
                    name: "vp".into(),
                    first_seen_ms: 1,
                    last_seen_ms: 2,
                    traces: 3,
                    pings: 4,
                },
            )
            .expect("agent");
        }
        let conn = open(&path).expect("reopen");
        let (_, agents) = load_state(&conn).expect("load");
        assert_eq!(agents["vp"].traces, 3);
        conn.execute_batch("PRAGMA user_version = 99")
            .expect("bump");
        drop(conn);
        let e = open(&path).expect_err("too new");
        assert!(e.to_string().contains("schema version 99"), "{e}");
        assert!(e.to_string().contains("upgrade the collector"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("write");
        let e = open(&path).expect_err("junk");
        assert!(e.to_string().contains("junk.db"), "{e}");
    }

    #[test]
    fn raw_records_are_idempotent_and_state_round_trips() {
        let (_d, conn) = db();
        let prefix: IpNet = "175.45.177.0/24".parse().expect("p");
        let row = TraceRow {
            id: "abc",
            agent: "vp",
            prefix,
            dst: "175.45.177.1".parse().expect("a"),
            start_ms: 10,
            upstream: "china-unicom",
            upstream_asn: Some(4837),
            entered: true,
            confidence: 0.9,
            record: "{}",
        };
        assert!(insert_trace(&conn, &row, 100).expect("1"));
        assert!(!insert_trace(&conn, &row, 101).expect("2"));
        assert!(has_trace(&conn, "abc").expect("has"));
        assert_eq!(count(&conn, "traces").expect("n"), 1);

        let i: Inference = serde_json::from_value(serde_json::json!({
            "target": "175.45.177.1", "upstream": "transtelecom", "upstream_asn": 20485,
            "entered": true, "confidence": 0.95,
            "evidence": {"last_foreign": null, "first_inside": null, "as_path": [20485, 131279],
                         "silent_after_border": 0, "unattributed_after_border": 0}
        }))
        .expect("inference");
        let mut state = PathState::default();
        let key = ("vp".to_string(), prefix);
        state.observe_trace(
            &TraceObservation {
                at_ms: 5,
                trace_id: "abc",
                inference: &i,
            },
            3,
        );
        put_path(&conn, &key, &state, 100).expect("path");
        let (paths, _) = load_state(&conn).expect("load");
        assert_eq!(paths[&key], state);
    }

    #[test]
    fn events_filter_by_prefix_agent_and_time_and_prune_removes_old_rows() {
        let (_d, conn) = db();
        let p1: IpNet = "175.45.176.0/24".parse().expect("p");
        let p2: IpNet = "175.45.177.0/24".parse().expect("p");
        let evidence: crate::infer::Evidence = serde_json::from_value(serde_json::json!({
            "last_foreign": null, "first_inside": null, "as_path": [],
            "silent_after_border": 0, "unattributed_after_border": 0
        }))
        .expect("evidence");
        for (agent, prefix, at) in [("a", p1, 100), ("a", p2, 200), ("b", p2, 300)] {
            let change = Change {
                from: None,
                to: crate::paths::Upstream {
                    name: "transtelecom".into(),
                    asn: Some(20485),
                },
                at_ms: at,
                trace_id: format!("t{at}"),
                evidence: evidence.clone(),
            };
            put_event(&conn, &(agent.to_string(), prefix), &change, at).expect("event");
        }
        let all = events(
            &conn,
            &EventFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .expect("all");
        assert_eq!(
            all.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            vec![300, 200, 100]
        );
        let f = EventFilter {
            prefix: Some(p2),
            since_ms: Some(250),
            limit: 10,
            ..Default::default()
        };
        let some = events(&conn, &f).expect("filtered");
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].agent, "b");
        let f = EventFilter {
            agent: Some("a".into()),
            until_ms: Some(150),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(events(&conn, &f).expect("agent").len(), 1);
        let pruned = prune(&conn, 250).expect("prune");
        assert_eq!(pruned.events, 2);
        assert_eq!(count(&conn, "events").expect("n"), 1);
    }
}
