//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so a
//! commit that returned is on disk (the collector answers 2xx only after
//! it). Versioned migrations (`PRAGMA user_version`); a database from a
//! newer build is refused rather than guessed at.
//!
//! Tables: `traces` and `pings` (raw records as received, LZ4-packed by
//! [`pack_record`], unique on the agent and its result id, so a re-sent
//! record is ignored), `paths` (the
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
use crate::state::AgentInfo;

/// Schema versions, in order; index + 1 is the version.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    //
    // Raw records live in rowid tables, appended in arrival order; the
    // dedup key is a unique index on (agent, start_ms, id). An agent's
    // results arrive roughly in time order, so inserts touch a few index
    // pages per agent instead of random pages all over a table keyed by
    // the random id (which made the writer three times slower). A re-sent
    // result is byte-identical, so it has the same key.
    "CREATE TABLE traces (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        agent TEXT NOT NULL,
        prefix TEXT NOT NULL,
        dst TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        upstream TEXT NOT NULL,
        upstream_asn INTEGER,
        entered INTEGER NOT NULL,
        confidence REAL NOT NULL,
        record BLOB NOT NULL
    );
    CREATE UNIQUE INDEX traces_key ON traces(agent, start_ms, id);
    CREATE INDEX traces_received ON traces(received_ms);
    CREATE TABLE pings (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        agent TEXT NOT NULL,
        prefix TEXT NOT NULL,
        dst TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        sent INTEGER NOT NULL,
        received INTEGER NOT NULL,
        record BLOB NOT NULL
    );
    CREATE UNIQUE INDEX pings_key ON pings(agent, start_ms, id);
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
    // 2: one row that readiness probes rewrite: "can this store commit?"
    // is answered by committing (a full disk fails here as uploads do).
    "CREATE TABLE health (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at_ms INTEGER NOT NULL,
        pad BLOB NOT NULL
    );",
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
    #[error("database holds a record that does not unpack ({agent} {id}): {what}")]
    CorruptRecord {
        agent: String,
        id: String,
        what: String,
    },
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
    /// The line as received, packed with [`pack_record`].
    pub record: &'a [u8],
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
    /// The line as received, packed with [`pack_record`].
    pub record: &'a [u8],
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

/// WAL size (frames of one page, 4 MiB) past which the writer itself
/// finishes a checkpoint between two commits, so that its next commit
/// starts the WAL over. Passive checkpoints beside a writer that never
/// pauses always leave its newest frames behind, and SQLite only restarts
/// a WAL that was copied entirely. A RESTART checkpoint from another
/// connection would block the writer for its whole copy and sync, and the
/// writer's pause grows with the WAL: measured at 20k traces/s, 100-170 ms
/// stalls at 16k frames, 1-8 ms at 1k frames with the checkpointer
/// passing every 50 ms.
pub const WAL_RESTART_FRAMES: i64 = 1024;

/// Result of one [`checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Frames in the WAL.
    pub log: i64,
    /// Frames copied into the database so far.
    pub checkpointed: i64,
}

/// Opens the connection that checkpoints the WAL beside the writer (the
/// writer's own connection has automatic checkpoints turned off by
/// [`no_auto_checkpoint`], so commits never wait for one).
pub fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: name.clone(),
        source,
    })?;
    configure(&conn).map_err(|source| StoreError::Open { path: name, source })?;
    no_auto_checkpoint(&conn)?;
    Ok(conn)
}

/// Turns off SQLite's checkpoint at commit on this connection.
pub fn no_auto_checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))
}

/// Copies committed WAL frames into the database and syncs it (PASSIVE:
/// it never waits for, nor blocks, the writer).
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<Checkpoint> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Checkpoint {
            log: r.get(1)?,
            checkpointed: r.get(2)?,
        })
    })
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
    conn.busy_handler(Some(wait_a_millisecond))
        .map_err(|source| StoreError::Open { path: name, source })?;
    Ok(conn)
}

/// Busy handler: retry every millisecond for up to 5 s. SQLite's own
/// `busy_timeout` backs off to 100 ms sleeps, so a writer that meets the
/// checkpointer's short WAL restart would sleep far longer than the lock
/// is held (it showed as 100-200 ms ingest stalls).
fn wait_a_millisecond(attempt: i32) -> bool {
    if attempt >= 5000 {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    true
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait_a_millisecond))?;
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

/// Commits a small write (a page's worth) and syncs it: `Ok` means the
/// store can commit now.
pub fn probe_write(conn: &Connection, now_ms: u64) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO health (id, at_ms, pad) VALUES (1, ?1, zeroblob(4000)) \
         ON CONFLICT(id) DO UPDATE SET at_ms = excluded.at_ms, pad = zeroblob(4000)",
        params![ms(now_ms)],
    )?;
    tx.commit()
}

/// Bytes free to this process, and in all, on the filesystem holding the
/// database `db`.
pub fn disk_space(db: &Path) -> std::io::Result<(u64, u64)> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let v = rustix::fs::statvfs(dir)?;
    Ok((
        v.f_bavail.saturating_mul(v.f_frsize),
        v.f_blocks.saturating_mul(v.f_frsize),
    ))
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

/// Packs a record line for the `record` column: an LZ4 block after the
/// line's length (4 bytes, little-endian). Trace JSON shrinks about
/// threefold, and the bytes SQLite writes (twice: WAL, then checkpoint)
/// were most of the ingest cost; LZ4 costs a tenth of zstd's CPU for
/// records this small. Read it back with [`unpack_record`].
pub fn pack_record(line: &str) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(line.as_bytes())
}

/// Largest line [`unpack_record`] accepts (a damaged length prefix must not
/// make it allocate gigabytes).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// The line a [`pack_record`] blob holds.
pub fn unpack_record(blob: &[u8]) -> Result<String, String> {
    let len = blob
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("blob shorter than its length prefix")?;
    if len > MAX_RECORD_BYTES {
        return Err(format!("length prefix {len} exceeds {MAX_RECORD_BYTES}"));
    }
    let bytes = lz4_flex::block::decompress_size_prepended(blob).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The stored line of a trace, if there is one with this agent and id.
pub fn raw_trace(conn: &Connection, agent: &str, id: &str) -> Result<Option<String>, StoreError> {
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT record FROM traces WHERE agent = ?1 AND id = ?2",
            [agent, id],
            |r| r.get(0),
        )
        .optional()?;
    blob.map(|b| {
        unpack_record(&b).map_err(|e| StoreError::CorruptRecord {
            agent: agent.to_string(),
            id: id.to_string(),
            what: e,
        })
    })
    .transpose()
}

/// Is there a stored trace with this id from this agent?
pub fn has_trace(conn: &Connection, agent: &str, id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM traces WHERE agent = ?1 AND id = ?2",
        [agent, id],
        |_| Ok(()),
    )
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
    fn a_commit_after_a_complete_checkpoint_starts_the_wal_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let writer = open(&path).expect("open");
        no_auto_checkpoint(&writer).expect("pragma");
        let cp = open_checkpointer(&path).expect("checkpointer");
        let wal = dir.path().join("c.db-wal");
        let insert = |n: u64| {
            let id = format!("{n:032x}");
            let blob = pack_record(&"x".repeat(3000 + n as usize));
            let row = TraceRow {
                id: &id,
                agent: "vp",
                prefix: "175.45.177.0/24".parse().expect("p"),
                dst: "175.45.177.1".parse().expect("a"),
                start_ms: n,
                upstream: "unknown",
                upstream_asn: None,
                entered: false,
                confidence: 0.0,
                record: &blob,
            };
            assert!(insert_trace(&writer, &row, n).expect("insert"));
        };
        for n in 0..50 {
            insert(n);
        }
        // Without a checkpoint, commits append to the WAL.
        let size = std::fs::metadata(&wal).expect("wal").len();
        insert(50);
        let grown = std::fs::metadata(&wal).expect("wal").len();
        assert!(grown > size);
        // The checkpointer copies everything committed so far (here no
        // commit races it: under load one always does, which is why the
        // writer finishes the copy itself when the WAL is large) ...
        let c = checkpoint(&cp).expect("passive");
        assert!(c.log > 0 && c.checkpointed == c.log, "{c:?}");
        // ... and the next commit starts the WAL over: same file, written
        // from the start.
        insert(51);
        assert_eq!(std::fs::metadata(&wal).expect("wal").len(), grown);
        let c = checkpoint(&writer).expect("writer's passive");
        assert!(
            c.log < 10 && c.checkpointed == c.log,
            "WAL started over: {c:?}"
        );
        insert(52);
        assert_eq!(count(&writer, "traces").expect("n"), 53);
    }

    #[test]
    fn raw_records_are_idempotent_and_state_round_trips() {
        let (_d, conn) = db();
        let prefix: IpNet = "175.45.177.0/24".parse().expect("p");
        let line = r#"{"kind":"trace","id":"abc"}"#;
        let packed = pack_record(line);
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
            record: &packed,
        };
        assert!(insert_trace(&conn, &row, 100).expect("1"));
        assert!(!insert_trace(&conn, &row, 101).expect("2"));
        assert!(has_trace(&conn, "vp", "abc").expect("has"));
        assert_eq!(
            raw_trace(&conn, "vp", "abc").expect("raw").as_deref(),
            Some(line)
        );
        assert_eq!(raw_trace(&conn, "vp", "nope").expect("raw"), None);
        assert_eq!(count(&conn, "traces").expect("n"), 1);
        // Ids are scoped by agent: another agent cannot pre-empt this
        // agent's results by sending their ids first.
        let other = TraceRow {
            agent: "vp2",
            ..row.clone()
        };
        assert!(insert_trace(&conn, &other, 102).expect("3"));
        assert!(!has_trace(&conn, "vp3", "abc").expect("has"));
        assert_eq!(count(&conn, "traces").expect("n"), 2);
        // A damaged blob is a clear error, not a panic, garbage or a huge
        // allocation.
        for damage in ["x'05'", "x'ffffff7f00'", "x'1000000011ab'", "x'02000000'"] {
            conn.execute(
                &format!("UPDATE traces SET record = {damage} WHERE agent = 'vp2'"),
                [],
            )
            .expect("damage");
            let err = raw_trace(&conn, "vp2", "abc").expect_err(damage);
            assert!(err.to_string().contains("vp2 abc"), "{damage}: {err}");
        }

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
