//! The SQLite backend, the product's store: WAL mode with `synchronous =
//! FULL`, so a commit that returned is on disk (the collector answers 2xx
//! only after it). Versioned migrations (`PRAGMA user_version`); a
//! database from a newer build is refused rather than guessed at.
//!
//! Tables: `traces` and `pings` (raw records as received, LZ4-packed by
//! [`pack_record`], unique on (agent, start_ms, id), so a re-sent record
//! is ignored), `paths` (the current state per (agent, /24), written in
//! the same transaction as the records that moved it), `events` (upstream
//! changes), `agents` and `health` (the readiness probe's row).
//!
//! One connection writes ([`SqliteStore`], held by the server's writer
//! thread, automatic checkpoints off); a checkpointer thread that the
//! store starts and stops copies the WAL into the database beside it;
//! readers ([`SqliteReader`]) open their own read-only connection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{
    BgpEventFilter, BgpEventRow, EventFilter, EventRow, PingRow, Pruned, Store, StoreError,
    StoreReader, StoredTrace, Table, TraceFilter, TraceRow, Transaction, UnpackError,
};
use crate::bgp::model::{BgpEvent, EventKind};
use crate::paths::{Change, PathKey, PathState, Upstream};
use crate::pipeline::PackLine;
use crate::state::{AgentInfo, Live};

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
    // 3: control-plane events (BGP), pruned by received_ms as the others.
    "CREATE TABLE bgp_events (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        peer TEXT,
        prefix TEXT,
        from_upstream TEXT,
        from_asn INTEGER,
        to_upstream TEXT,
        to_asn INTEGER,
        path TEXT,
        detail TEXT,
        received_ms INTEGER NOT NULL
    );
    CREATE INDEX bgp_events_at ON bgp_events(at_ms);
    CREATE INDEX bgp_events_prefix_at ON bgp_events(prefix, at_ms);
    CREATE INDEX bgp_events_received ON bgp_events(received_ms);",
    // 4: the web view lists the traces toward a /24 around a change, and
    // the latest changes of all /24s.
    "CREATE INDEX traces_prefix_start ON traces(prefix, start_ms);
    CREATE INDEX events_at ON events(at_ms);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn read(e: rusqlite::Error) -> StoreError {
    StoreError::Read(Box::new(e))
}

fn write(e: rusqlite::Error) -> StoreError {
    StoreError::Write(Box::new(e))
}

fn open_error(path: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        path: path.to_string(),
        source: Box::new(source),
    }
}

/// The writer's store: the write connection, and the checkpointer thread
/// beside it (stopped and joined when the store is dropped).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Set by the checkpointer when the WAL has grown past
    /// [`WAL_RESTART_FRAMES`]; [`Store::maintain`] then finishes a
    /// checkpoint between two commits so the WAL starts over.
    wal_full: Arc<AtomicBool>,
    checkpointer: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, turns off
    /// SQLite's checkpoint at commit on this connection, and starts the
    /// checkpointer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_conn(path)?;
        no_auto_checkpoint(&conn).map_err(write)?;
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let wal_full = Arc::new(AtomicBool::new(false));
        let thread = spawn_checkpointer(open_checkpointer(path)?, stop_rx, wal_full.clone())
            .map_err(StoreError::Thread)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            wal_full,
            checkpointer: Some((stop, thread)),
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.checkpointer.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

/// A transaction on the write connection (rolled back if dropped).
struct SqliteTx<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Transaction for SqliteTx<'_> {
    fn insert_trace(&mut self, row: &TraceRow<'_>, received_ms: u64) -> Result<bool, StoreError> {
        insert_trace(&self.tx, row, received_ms).map_err(write)
    }

    fn insert_ping(&mut self, row: &PingRow<'_>, received_ms: u64) -> Result<bool, StoreError> {
        insert_ping(&self.tx, row, received_ms).map_err(write)
    }

    fn put_path(
        &mut self,
        key: &PathKey,
        state: &PathState,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        put_path(&self.tx, key, state, now_ms).map_err(write)
    }

    fn put_event(&mut self, key: &PathKey, change: &Change, now_ms: u64) -> Result<(), StoreError> {
        put_event(&self.tx, key, change, now_ms).map_err(write)
    }

    fn put_agent(&mut self, agent: &AgentInfo) -> Result<(), StoreError> {
        put_agent(&self.tx, agent).map_err(write)
    }

    fn put_bgp_event(&mut self, event: &BgpEvent, now_ms: u64) -> Result<(), StoreError> {
        put_bgp_event(&self.tx, event, now_ms).map_err(write)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().map_err(write)
    }
}

impl Store for SqliteStore {
    fn transaction(&mut self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let tx = self.conn.transaction().map_err(write)?;
        Ok(Box::new(SqliteTx { tx }))
    }

    fn load_state(&mut self) -> Result<Live, StoreError> {
        load_state(&self.conn)
    }

    fn prune(&mut self, cutoff_ms: u64) -> Result<Pruned, StoreError> {
        prune(&self.conn, cutoff_ms).map_err(write)
    }

    fn probe(&mut self, now_ms: u64) -> Result<(), StoreError> {
        probe_write(&self.conn, now_ms).map_err(write)
    }

    fn maintain(&mut self) -> Result<(), StoreError> {
        if !self.wal_full.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        // Only the frames since the checkpointer's last pass are left to
        // copy: a short pause that lets the next commit restart the WAL.
        let t = std::time::Instant::now();
        let c = checkpoint(&self.conn).map_err(write)?;
        tracing::debug!(
            frames = c.log,
            ms = t.elapsed().as_millis(),
            "WAL copied in full; it starts over"
        );
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn StoreReader>, StoreError> {
        Ok(Box::new(open_reader(&self.path)?))
    }

    fn pack(&self) -> PackLine {
        pack_record
    }

    fn schema_version(&self) -> u32 {
        SCHEMA_VERSION
    }
}

/// A read-only connection for queries beside the writer.
#[derive(Debug)]
pub struct SqliteReader {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteReader {
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StoreReader for SqliteReader {
    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        events(&self.conn(), filter)
    }

    fn raw_trace(&self, agent: &str, id: &str) -> Result<Option<String>, StoreError> {
        raw_trace(&self.conn(), agent, id)
    }

    fn traces(&self, filter: &TraceFilter) -> Result<Vec<StoredTrace>, StoreError> {
        traces(&self.conn(), filter)
    }

    fn bgp_events(&self, filter: &BgpEventFilter) -> Result<Vec<BgpEventRow>, StoreError> {
        bgp_events(&self.conn(), filter)
    }

    fn count(&self, table: Table) -> Result<u64, StoreError> {
        count(&self.conn(), table).map_err(read)
    }

    fn disk_space(&self) -> Option<std::io::Result<(u64, u64)>> {
        Some(disk_space(&self.path))
    }
}

/// Opens (creating if needed) and migrates the database.
fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let conn = Connection::open(path).map_err(open_error(&name))?;
    configure(&conn).map_err(open_error(&name))?;
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
struct Checkpoint {
    /// Frames in the WAL.
    log: i64,
    /// Frames copied into the database so far.
    checkpointed: i64,
}

/// Opens the connection that checkpoints the WAL beside the writer (the
/// writer's own connection has automatic checkpoints turned off by
/// [`no_auto_checkpoint`], so commits never wait for one).
fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error(&name))?;
    configure(&conn).map_err(open_error(&name))?;
    no_auto_checkpoint(&conn).map_err(read)?;
    Ok(conn)
}

/// Turns off SQLite's checkpoint at commit on this connection.
fn no_auto_checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))
}

/// Copies committed WAL frames into the database and syncs it (PASSIVE:
/// it never waits for, nor blocks, the writer).
fn checkpoint(conn: &Connection) -> rusqlite::Result<Checkpoint> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Checkpoint {
            log: r.get(1)?,
            checkpointed: r.get(2)?,
        })
    })
}

/// How often the checkpointer copies the WAL into the database: often, so
/// that what the writer has left to copy before a WAL restart is small.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Starts the thread that checkpoints the WAL beside the writer, so that
/// no commit (and no request waiting on one) pays for copying pages into
/// the database and syncing it. It stops when `stop` is dropped.
fn spawn_checkpointer(
    conn: Connection,
    stop: std::sync::mpsc::Receiver<()>,
    wal_full: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            let mut failing = false;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stop.recv_timeout(CHECKPOINT_EVERY)
            {
                let t = std::time::Instant::now();
                match checkpoint(&conn) {
                    Ok(c) => {
                        failing = false;
                        tracing::trace!(
                            frames = c.log,
                            copied = c.checkpointed,
                            ms = t.elapsed().as_millis(),
                            "checkpoint"
                        );
                        if c.log >= WAL_RESTART_FRAMES {
                            wal_full.store(true, Ordering::Relaxed);
                        }
                    }
                    // Once per run of failures: the writer's own commits
                    // still work, only the WAL grows until this recovers.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                    Err(_) => {}
                }
            }
        })
}

/// Opens a read-only connection to an existing, migrated database.
pub fn open_reader(path: &Path) -> Result<SqliteReader, StoreError> {
    let name = path.display().to_string();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error(&name))?;
    conn.busy_handler(Some(wait_a_millisecond))
        .map_err(open_error(&name))?;
    Ok(SqliteReader {
        conn: Mutex::new(conn),
        path: path.to_path_buf(),
    })
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
    let found: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(read)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: name.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i + 1;
        let tx = conn.unchecked_transaction().map_err(read)?;
        tx.execute_batch(sql)
            .and_then(|()| tx.execute_batch(&format!("PRAGMA user_version = {version}")))
            .and_then(|()| tx.commit())
            .map_err(|source| StoreError::Migrate {
                version,
                source: Box::new(source),
            })?;
    }
    Ok(())
}

/// Loads every path state and agent.
fn load_state(conn: &Connection) -> Result<Live, StoreError> {
    let mut live = Live::default();
    let mut stmt = conn
        .prepare("SELECT agent, prefix, state FROM paths")
        .map_err(read)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(read)?;
    for row in rows {
        let (agent, prefix, state) = row.map_err(read)?;
        let corrupt = |what: String| StoreError::Corrupt {
            agent: agent.clone(),
            prefix: prefix.clone(),
            what,
        };
        let net: IpNet = prefix.parse().map_err(|e| corrupt(format!("{e}")))?;
        let s: PathState = serde_json::from_str(&state).map_err(|e| corrupt(e.to_string()))?;
        live.paths.insert((agent.clone(), net), s);
    }
    let mut stmt = conn
        .prepare("SELECT name, first_seen_ms, last_seen_ms, traces, pings FROM agents")
        .map_err(read)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(AgentInfo {
                name: r.get(0)?,
                first_seen_ms: unms(r.get(1)?),
                last_seen_ms: unms(r.get(2)?),
                traces: unms(r.get(3)?),
                pings: unms(r.get(4)?),
            })
        })
        .map_err(read)?;
    for a in rows {
        let a = a.map_err(read)?;
        live.agents.insert(a.name.clone(), a);
    }
    Ok(live)
}

/// Inserts a raw trace; `false` if its id was already stored.
fn insert_trace(conn: &Connection, row: &TraceRow<'_>, received_ms: u64) -> rusqlite::Result<bool> {
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
fn insert_ping(conn: &Connection, row: &PingRow<'_>, received_ms: u64) -> rusqlite::Result<bool> {
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
fn put_path(
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
fn put_event(
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
fn put_agent(conn: &Connection, a: &AgentInfo) -> rusqlite::Result<()> {
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

fn put_bgp_event(conn: &Connection, e: &BgpEvent, now_ms: u64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO bgp_events (at_ms, kind, source, peer, prefix, from_upstream, from_asn, \
         to_upstream, to_asn, path, detail, received_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    stmt.execute(params![
        ms(e.at_ms),
        e.kind.as_str(),
        e.source,
        e.peer,
        e.prefix.map(|p| p.to_string()),
        e.from.as_ref().map(|u| u.name.as_str()),
        e.from.as_ref().and_then(|u| u.asn),
        e.to.as_ref().map(|u| u.name.as_str()),
        e.to.as_ref().and_then(|u| u.asn),
        e.path,
        e.detail,
        ms(now_ms),
    ])?;
    Ok(())
}

/// Lists control-plane events, newest first.
fn bgp_events(conn: &Connection, f: &BgpEventFilter) -> Result<Vec<BgpEventRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, at_ms, kind, source, peer, prefix, from_upstream, from_asn, to_upstream, \
             to_asn, path, detail FROM bgp_events WHERE (?1 IS NULL OR prefix = ?1) \
             AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR peer = ?3) \
             AND at_ms >= ?4 AND at_ms <= ?5 ORDER BY at_ms DESC, id DESC LIMIT ?6",
        )
        .map_err(read)?;
    let upstream = |name: Option<String>, asn: Option<u32>| name.map(|name| Upstream { name, asn });
    let rows = stmt
        .query_map(
            params![
                f.prefix.map(|p| p.to_string()),
                f.kind.map(EventKind::as_str),
                f.peer,
                ms(f.since_ms.unwrap_or(0)),
                ms(f.until_ms.unwrap_or(u64::MAX)),
                i64::try_from(f.limit).unwrap_or(i64::MAX),
            ],
            |r| {
                let kind: String = r.get(2)?;
                let prefix: Option<String> = r.get(5)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    kind,
                    prefix,
                    BgpEvent {
                        at_ms: unms(r.get(1)?),
                        // Filled in below (the kind and prefix are checked).
                        kind: EventKind::Announce,
                        source: r.get(3)?,
                        peer: r.get(4)?,
                        prefix: None,
                        from: upstream(r.get(6)?, r.get(7)?),
                        to: upstream(r.get(8)?, r.get(9)?),
                        path: r.get(10)?,
                        detail: r.get(11)?,
                    },
                ))
            },
        )
        .map_err(read)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, prefix, mut event) = row.map_err(read)?;
        let corrupt = |what: String| StoreError::Read(what.into());
        event.kind = EventKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("bgp event {id}: unknown kind {kind:?}")))?;
        event.prefix = match prefix {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| corrupt(format!("bgp event {id}: prefix {p:?}")))?,
            ),
            None => None,
        };
        out.push(BgpEventRow { id, event });
    }
    Ok(out)
}

/// Lists change events, newest first.
fn events(conn: &Connection, f: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
        "SELECT id, agent, prefix, at_ms, from_upstream, from_asn, to_upstream, to_asn, trace_id, evidence \
         FROM events WHERE (?1 IS NULL OR prefix = ?1) AND (?2 IS NULL OR agent = ?2) \
         AND at_ms >= ?3 AND at_ms <= ?4 AND (?6 IS NULL OR id = ?6) \
         ORDER BY at_ms DESC, id DESC LIMIT ?5",
    )
        .map_err(read)?;
    let rows = stmt
        .query_map(
            params![
                f.prefix.map(|p| p.to_string()),
                f.agent,
                ms(f.since_ms.unwrap_or(0)),
                ms(f.until_ms.unwrap_or(u64::MAX)),
                i64::try_from(f.limit).unwrap_or(i64::MAX),
                f.id,
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
                    evidence: if f.skip_evidence {
                        serde_json::Value::Null
                    } else {
                        serde_json::from_str(&evidence).unwrap_or(serde_json::Value::Null)
                    },
                })
            },
        )
        .map_err(read)?;
    rows.collect::<Result<_, _>>().map_err(read)
}

/// Deletes raw records and events received before `cutoff_ms` (collector
/// time: an agent with a wrong clock cannot make data vanish early).
/// Path states and agents are kept (they are the current state).
fn prune(conn: &Connection, cutoff_ms: u64) -> rusqlite::Result<Pruned> {
    let tx = conn.unchecked_transaction()?;
    let c = ms(cutoff_ms);
    let traces = tx.execute("DELETE FROM traces WHERE received_ms < ?1", [c])?;
    let pings = tx.execute("DELETE FROM pings WHERE received_ms < ?1", [c])?;
    let events = tx.execute("DELETE FROM events WHERE received_ms < ?1", [c])?;
    let bgp_events = tx.execute("DELETE FROM bgp_events WHERE received_ms < ?1", [c])?;
    tx.commit()?;
    Ok(Pruned {
        traces,
        pings,
        events,
        bgp_events,
    })
}

/// Commits a small write (a page's worth) and syncs it: `Ok` means the
/// store can commit now.
fn probe_write(conn: &Connection, now_ms: u64) -> rusqlite::Result<()> {
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
fn disk_space(db: &Path) -> std::io::Result<(u64, u64)> {
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

/// Row counts.
fn count(conn: &Connection, table: Table) -> rusqlite::Result<u64> {
    let sql = match table {
        Table::Traces => "SELECT count(*) FROM traces",
        Table::Pings => "SELECT count(*) FROM pings",
        Table::Events => "SELECT count(*) FROM events",
        Table::Paths => "SELECT count(*) FROM paths",
        Table::Agents => "SELECT count(*) FROM agents",
        Table::BgpEvents => "SELECT count(*) FROM bgp_events",
    };
    conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(unms)
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
pub fn unpack_record(blob: &[u8]) -> Result<String, UnpackError> {
    let len = blob
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(UnpackError::Short)?;
    if len > MAX_RECORD_BYTES {
        return Err(UnpackError::TooLong {
            len,
            max: MAX_RECORD_BYTES,
        });
    }
    let bytes = lz4_flex::block::decompress_size_prepended(blob)
        .map_err(|e| UnpackError::Lz4(e.to_string()))?;
    Ok(String::from_utf8(bytes)?)
}

/// The stored line of a trace, if there is one with this agent and id.
fn traces(conn: &Connection, f: &TraceFilter) -> Result<Vec<StoredTrace>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT agent, id, prefix, dst, start_ms, upstream, upstream_asn, entered, confidence, \
             record FROM traces WHERE prefix = ?1 AND start_ms >= ?2 AND start_ms <= ?3 \
             ORDER BY start_ms, agent, id LIMIT ?4",
        )
        .map_err(read)?;
    let rows = stmt
        .query_map(
            params![
                f.prefix.to_string(),
                ms(f.since_ms),
                ms(f.until_ms),
                i64::try_from(f.limit).unwrap_or(i64::MAX),
            ],
            |r| {
                Ok((
                    StoredTrace {
                        agent: r.get(0)?,
                        id: r.get(1)?,
                        prefix: r.get(2)?,
                        dst: r.get(3)?,
                        start_ms: unms(r.get(4)?),
                        upstream: r.get(5)?,
                        upstream_asn: r.get(6)?,
                        entered: r.get::<_, i64>(7)? != 0,
                        confidence: r.get(8)?,
                        line: String::new(),
                    },
                    r.get::<_, Vec<u8>>(9)?,
                ))
            },
        )
        .map_err(read)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut t, blob) = row.map_err(read)?;
        t.line = unpack_record(&blob).map_err(|what| StoreError::CorruptRecord {
            agent: t.agent.clone(),
            id: t.id.clone(),
            what,
        })?;
        out.push(t);
    }
    Ok(out)
}

fn raw_trace(conn: &Connection, agent: &str, id: &str) -> Result<Option<String>, StoreError> {
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT record FROM traces WHERE agent = ?1 AND id = ?2",
            [agent, id],
            |r| r.get(0),
        )
        .optional()
        .map_err(read)?;
    blob.map(|b| {
        unpack_record(&b).map_err(|e| StoreError::CorruptRecord {
            agent: agent.to_string(),
            id: id.to_string(),
            what: e,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    store_conformance!({
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db")).expect("open");
        (dir, store)
    });

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open_conn(&dir.path().join("t.db")).expect("open");
        (dir, conn)
    }

    fn user_version(conn: &Connection) -> u32 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("user_version")
    }

    #[test]
    fn a_new_database_is_migrated_to_the_current_version_in_wal_mode() {
        let (_d, conn) = db();
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
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
            let mut store = SqliteStore::open(&path).expect("open");
            let mut tx = store.transaction().expect("tx");
            tx.put_agent(&AgentInfo {
                name: "vp".into(),
                first_seen_ms: 1,
                last_seen_ms: 2,
                traces: 3,
                pings: 4,
            })
            .expect("agent");
            tx.commit().expect("commit");
        }
        let mut store = SqliteStore::open(&path).expect("reopen");
        let live = store.load_state().expect("load");
        assert_eq!(live.agents["vp"].traces, 3);
        store
            .conn
            .execute_batch("PRAGMA user_version = 99")
            .expect("bump");
        drop(store);
        let e = SqliteStore::open(&path).expect_err("too new");
        assert!(e.to_string().contains("schema version 99"), "{e}");
        assert!(e.to_string().contains("upgrade the collector"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("write");
        let e = SqliteStore::open(&path).expect_err("junk");
        assert!(e.to_string().contains("junk.db"), "{e}");
    }

    #[test]
    fn a_commit_after_a_complete_checkpoint_starts_the_wal_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let writer = open_conn(&path).expect("open");
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
        assert_eq!(count(&writer, Table::Traces).expect("n"), 53);
    }

    /// The writer's store finishes a checkpoint between two commits once
    /// its checkpointer saw the WAL past [`WAL_RESTART_FRAMES`].
    #[test]
    fn maintain_checkpoints_only_when_the_wal_is_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(&dir.path().join("m.db")).expect("open");
        store.maintain().expect("nothing to do");
        store.wal_full.store(true, Ordering::Relaxed);
        store.maintain().expect("checkpoint");
        assert!(!store.wal_full.load(Ordering::Relaxed), "flag taken");
    }

    #[test]
    fn records_are_stored_lz4_packed_and_a_damaged_blob_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.db");
        let mut store = SqliteStore::open(&path).expect("open");
        let line = r#"{"kind":"trace","id":"abc"}"#;
        assert_eq!(unpack_record(&(store.pack())(line)).as_deref(), Ok(line));
        let packed = pack_record(line);
        let row = TraceRow {
            id: "abc",
            agent: "vp2",
            prefix: "175.45.177.0/24".parse().expect("p"),
            dst: "175.45.177.1".parse().expect("a"),
            start_ms: 10,
            upstream: "china-unicom",
            upstream_asn: Some(4837),
            entered: true,
            confidence: 0.9,
            record: &packed,
        };
        let mut tx = store.transaction().expect("tx");
        assert!(tx.insert_trace(&row, 100).expect("insert"));
        tx.commit().expect("commit");
        let reader = open_reader(&path).expect("reader");
        assert_eq!(
            reader.raw_trace("vp2", "abc").expect("raw").as_deref(),
            Some(line)
        );
        // A damaged blob is a clear error, not a panic, garbage or a huge
        // allocation.
        for damage in ["x'05'", "x'ffffff7f00'", "x'1000000011ab'", "x'02000000'"] {
            store
                .conn
                .execute(
                    &format!("UPDATE traces SET record = {damage} WHERE agent = 'vp2'"),
                    [],
                )
                .expect("damage");
            let err = reader.raw_trace("vp2", "abc").expect_err(damage);
            assert!(err.to_string().contains("vp2 abc"), "{damage}: {err}");
        }
    }
}
