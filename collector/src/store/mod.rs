//! The storage seam: what the collector asks of a store, whatever engine
//! keeps the data. [`Store`] is held by the single writer thread (one
//! transaction per group of uploads, retention, the readiness probe,
//! maintenance between commits); a [`StoreReader`] answers queries from
//! request handlers beside it.
//!
//! Backends: [`sqlite`] (the product: WAL, `synchronous = FULL`,
//! checkpoints and LZ4-packed lines stay inside it) and [`memory`] (unit
//! tests). Both pass one conformance suite (`conformance.rs`, run for each
//! backend by `store_conformance!`); a new backend (PostgreSQL,
//! ClickHouse) is a module here that passes it too, and nothing outside
//! `store/` changes.
//!
//! What a store keeps: raw traces and pings (the line as received, in the
//! backend's own encoding, made by [`Store::pack`]), unique on (agent,
//! start_ms, id) so that a re-sent record is reported as not new and
//! ignored; the current state per (agent, /24) path, written in the same
//! transaction as the records that moved it; change events; agents.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::bgp::model::{BgpEvent, EventKind};
use crate::paths::{Change, PathKey, PathState};
use crate::pipeline::PackLine;
use crate::state::{AgentInfo, Live};

// First: its macro is used by the backends' tests.
#[cfg(test)]
#[macro_use]
mod conformance;

pub mod memory;
pub mod sqlite;

/// A backend's own error, kept whole for the message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a stored record line does not read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("blob shorter than its length prefix")]
    Short,
    #[error("length prefix {len} exceeds {max}")]
    TooLong { len: usize, max: usize },
    #[error("not LZ4: {0}")]
    Lz4(String),
    #[error("not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: BoxError },
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
    Migrate { version: usize, source: BoxError },
    /// A query (loading state, listing events) failed.
    #[error("database: {0}")]
    Read(BoxError),
    /// A write, a commit, a prune or a checkpoint failed: the engine's
    /// own words (what `/readyz` and a 503 show, e.g. "database or disk
    /// is full").
    #[error("{0}")]
    Write(BoxError),
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
        what: UnpackError,
    },
    /// A thread the backend needs could not be started.
    #[error("{0}")]
    Thread(std::io::Error),
}

/// A raw trace to insert.
#[derive(Debug, Clone)]
pub struct TraceRow<'a> {
    pub id: &'a str,
    pub agent: &'a str,
    pub prefix: IpNet,
    pub dst: IpAddr,
    pub start_ms: u64,
    pub upstream: &'a str,
    pub upstream_asn: Option<u32>,
    pub entered: bool,
    pub confidence: f64,
    /// The line as received, packed by this store's [`Store::pack`].
    pub record: &'a [u8],
}

/// A raw ping to insert.
#[derive(Debug, Clone)]
pub struct PingRow<'a> {
    pub id: &'a str,
    pub agent: &'a str,
    pub prefix: IpNet,
    pub dst: IpAddr,
    pub start_ms: u64,
    pub sent: u32,
    pub received: u32,
    /// The line as received, packed by this store's [`Store::pack`].
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

/// Which events to list: all bounds inclusive, `limit` at most, newest
/// (`at_ms`, then insertion order) first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// One event by its row id.
    pub id: Option<i64>,
    /// Leave `evidence` null (the timeline needs none, and reading it is
    /// most of the cost of a long list).
    pub skip_evidence: bool,
    pub prefix: Option<IpNet>,
    pub agent: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub limit: usize,
}

/// A stored trace: what inference said when it arrived, and its line as
/// received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredTrace {
    pub agent: String,
    pub id: String,
    pub prefix: String,
    pub dst: String,
    pub start_ms: u64,
    pub upstream: String,
    pub upstream_asn: Option<u32>,
    pub entered: bool,
    pub confidence: f64,
    /// The record's line, unpacked.
    pub line: String,
}

/// Which traces to list: those toward `prefix` (the unit, as stored)
/// started within `[since_ms, until_ms]`, oldest first (then agent, id),
/// `limit` at most.
#[derive(Debug, Clone)]
pub struct TraceFilter {
    pub prefix: IpNet,
    pub since_ms: u64,
    pub until_ms: u64,
    pub limit: usize,
}

/// A stored control-plane event ([`crate::bgp::model::BgpEvent`] with
/// its row id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BgpEventRow {
    pub id: i64,
    #[serde(flatten)]
    pub event: BgpEvent,
}

/// Which control-plane events to list: all bounds inclusive, `limit` at
/// most, newest (`at_ms`, then insertion order) first.
#[derive(Debug, Clone, Default)]
pub struct BgpEventFilter {
    pub prefix: Option<IpNet>,
    pub kind: Option<EventKind>,
    pub peer: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub limit: usize,
}

impl BgpEventFilter {
    /// Does `e` pass (the in-memory store's filter, and the test of the
    /// SQL one)?
    pub fn accepts(&self, e: &BgpEvent) -> bool {
        self.prefix.is_none_or(|p| e.prefix == Some(p))
            && self.kind.is_none_or(|k| e.kind == k)
            && self
                .peer
                .as_ref()
                .is_none_or(|p| e.peer.as_ref() == Some(p))
            && e.at_ms >= self.since_ms.unwrap_or(0)
            && e.at_ms <= self.until_ms.unwrap_or(u64::MAX)
    }
}

/// Counts of rows removed by [`Store::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub traces: usize,
    pub pings: usize,
    pub events: usize,
    pub bgp_events: usize,
}

/// What [`StoreReader::count`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Traces,
    Pings,
    Events,
    Paths,
    Agents,
    BgpEvents,
}

/// A store, as the writer thread holds it: one writer at a time.
pub trait Store: Send + std::fmt::Debug {
    /// Starts a transaction. Nothing it writes is seen by readers, nor
    /// survives a crash, before [`Transaction::commit`] returns `Ok`;
    /// dropping it uncommitted rolls it back.
    fn transaction(&mut self) -> Result<Box<dyn Transaction + '_>, StoreError>;

    /// Every path state and agent, as committed (the state at start).
    fn load_state(&mut self) -> Result<Live, StoreError>;

    /// Deletes raw records and events received before `cutoff_ms`
    /// (collector time: an agent with a wrong clock cannot make data
    /// vanish early). Path states and agents are kept.
    fn prune(&mut self, cutoff_ms: u64) -> Result<Pruned, StoreError>;

    /// Commits a small write now: `Ok` means the store can commit (the
    /// readiness probe).
    fn probe(&mut self, now_ms: u64) -> Result<(), StoreError>;

    /// Housekeeping between two commits (SQLite: finish a WAL checkpoint
    /// when the WAL has grown, so that it starts over).
    fn maintain(&mut self) -> Result<(), StoreError>;

    /// A handle for queries beside the writer (another thread).
    fn reader(&self) -> Result<Box<dyn StoreReader>, StoreError>;

    /// How this store wants a record's line for [`TraceRow::record`] and
    /// [`PingRow::record`]. A plain function, so that the ingest pipeline
    /// runs it on the request's thread and the single writer does not.
    fn pack(&self) -> PackLine;

    /// The schema version this build writes (`tumen_collector_build_info`).
    fn schema_version(&self) -> u32;
}

/// One transaction of a [`Store`].
pub trait Transaction {
    /// Inserts a raw trace; `false` (and nothing written) when one with
    /// the same (agent, start_ms, id) is already stored, committed or
    /// earlier in this transaction.
    fn insert_trace(&mut self, row: &TraceRow<'_>, received_ms: u64) -> Result<bool, StoreError>;
    /// As [`Transaction::insert_trace`], for pings.
    fn insert_ping(&mut self, row: &PingRow<'_>, received_ms: u64) -> Result<bool, StoreError>;
    /// Writes (replaces) a path's state.
    fn put_path(&mut self, key: &PathKey, state: &PathState, now_ms: u64)
        -> Result<(), StoreError>;
    /// Records a change event, received at `now_ms`.
    fn put_event(&mut self, key: &PathKey, change: &Change, now_ms: u64) -> Result<(), StoreError>;
    /// Records a control-plane event, received at `now_ms`.
    fn put_bgp_event(&mut self, event: &BgpEvent, now_ms: u64) -> Result<(), StoreError>;
    /// Writes an agent: inserted, or its last_seen_ms and counts updated
    /// (first_seen_ms stays what was first stored).
    fn put_agent(&mut self, agent: &AgentInfo) -> Result<(), StoreError>;
    /// Makes everything above durable and visible at once.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Queries beside the writer; sees committed data only.
pub trait StoreReader: Send + Sync + std::fmt::Debug {
    /// Change events, newest first.
    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError>;
    /// Control-plane events, newest first.
    fn bgp_events(&self, filter: &BgpEventFilter) -> Result<Vec<BgpEventRow>, StoreError>;
    /// The line of a stored trace of this agent with this id, as received.
    fn raw_trace(&self, agent: &str, id: &str) -> Result<Option<String>, StoreError>;
    /// Traces toward one unit prefix in a time window (the web view's
    /// evidence before and after a change).
    fn traces(&self, filter: &TraceFilter) -> Result<Vec<StoredTrace>, StoreError>;
    /// Rows stored.
    fn count(&self, table: Table) -> Result<u64, StoreError>;
    /// Bytes free to this process, and in all, where the store writes
    /// (`None`: not on a local filesystem); `/readyz` wants room.
    fn disk_space(&self) -> Option<std::io::Result<(u64, u64)>>;
}
