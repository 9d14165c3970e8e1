//! The single writer: a dedicated thread that owns the write connection
//! and commits uploads in groups. Each request's handler sends a [`Job`]
//! and waits for its answer; the writer takes every job queued at that
//! moment, runs them in one transaction (raw records, path states, change
//! events, agents) and commits once — one fsync for many requests (group
//! commit), so durable ingest does not cost one disk sync per request.
//! The shared [`Live`] state changes only after the commit succeeded, so
//! nothing a reader sees was not stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::infer::Inference;
use crate::paths::{Change, PathKey, PathState, TraceObservation};
use crate::store::{self, AgentInfo, PingRow, TraceRow};

use super::metrics::Metrics;

/// What the collector currently knows, shared with readers.
#[derive(Debug, Default)]
pub struct Live {
    pub paths: BTreeMap<PathKey, PathState>,
    pub agents: BTreeMap<String, AgentInfo>,
}

/// A trace ready to store: the record, its line (packed by
/// [`store::pack_record`]), and what inference said.
#[derive(Debug)]
pub struct TraceItem {
    pub record: Box<tumen_wire::TraceRecord>,
    pub line: Vec<u8>,
    pub inference: Inference,
    pub unit: IpNet,
    /// Is its destination inside the target (does it move path state)?
    pub in_target: bool,
}

/// A ping ready to store.
#[derive(Debug)]
pub struct PingItem {
    pub record: tumen_wire::PingRecord,
    /// The line, packed by [`store::pack_record`].
    pub line: Vec<u8>,
    pub unit: IpNet,
    pub in_target: bool,
}

/// One accepted request.
#[derive(Debug)]
pub struct Upload {
    pub agent: String,
    pub received_ms: u64,
    pub traces: Vec<TraceItem>,
    pub pings: Vec<PingItem>,
}

/// What one upload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub changes: usize,
    /// How many of the duplicates were traces (the rest were pings).
    #[serde(skip)]
    pub duplicate_traces: usize,
}

/// Work for the writer.
#[derive(Debug)]
pub enum Job {
    Upload(Upload, oneshot::Sender<Result<Outcome, String>>),
    Prune(u64, oneshot::Sender<Result<store::Pruned, String>>),
    /// Readiness: commit a small write now.
    Probe(oneshot::Sender<Result<(), String>>),
}

/// Whether the store's latest commit worked: what `/readyz` answers from.
#[derive(Debug, Default)]
pub struct StoreHealth {
    /// Unix ms of the latest successful commit (0: none yet).
    pub last_ok_ms: std::sync::atomic::AtomicU64,
    /// Unix ms of the latest failed commit (0: none).
    pub last_failed_ms: std::sync::atomic::AtomicU64,
    pub last_error: std::sync::Mutex<String>,
}

impl StoreHealth {
    fn committed(&self, ok: Result<(), &str>) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        match ok {
            Ok(()) => self.last_ok_ms.store(now, Relaxed),
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
                self.last_failed_ms.store(now, Relaxed);
            }
        }
    }

    /// The latest commit worked, not longer than `fresh_ms` ago.
    pub fn recently_ok(&self, now_ms: u64, fresh_ms: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let ok = self.last_ok_ms.load(Relaxed);
        ok != 0 && ok >= self.last_failed_ms.load(Relaxed) && now_ms.saturating_sub(ok) <= fresh_ms
    }
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub hysteresis: u32,
    /// Most uploads in one transaction.
    pub max_group: usize,
}

/// Set by the checkpointer when the WAL has grown past
/// [`store::WAL_RESTART_FRAMES`]; the writer then finishes a checkpoint
/// between two commits so the WAL starts over.
pub type WalFull = Arc<std::sync::atomic::AtomicBool>;

/// Starts the writer thread; it ends when every sender is dropped.
/// Checkpoints are mostly not its business (see [`spawn_checkpointer`]).
pub fn spawn(
    conn: Connection,
    live: Arc<RwLock<Live>>,
    metrics: Arc<Metrics>,
    cfg: WriterConfig,
    wal_full: WalFull,
    health: Arc<StoreHealth>,
) -> std::io::Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)> {
    store::no_auto_checkpoint(&conn).map_err(std::io::Error::other)?;
    let (tx, rx) = mpsc::channel::<Job>(4096);
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(conn, live, metrics, cfg, rx, wal_full, health))?;
    Ok((tx, handle))
}

/// How often the checkpointer copies the WAL into the database: often, so
/// that what the writer has left to copy before a WAL restart is small.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Starts the thread that checkpoints the WAL beside the writer, so that
/// no commit (and no request waiting on one) pays for copying pages into
/// the database and syncing it. It stops when `stop` is dropped.
pub fn spawn_checkpointer(
    conn: Connection,
    stop: std::sync::mpsc::Receiver<()>,
    wal_full: WalFull,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            let mut failing = false;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stop.recv_timeout(CHECKPOINT_EVERY)
            {
                let t = std::time::Instant::now();
                match store::checkpoint(&conn) {
                    Ok(c) => {
                        failing = false;
                        tracing::trace!(
                            frames = c.log,
                            copied = c.checkpointed,
                            ms = t.elapsed().as_millis(),
                            "checkpoint"
                        );
                        if c.log >= store::WAL_RESTART_FRAMES {
                            wal_full.store(true, std::sync::atomic::Ordering::Relaxed);
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

use tumen_core::now_ms;

fn run(
    conn: Connection,
    live: Arc<RwLock<Live>>,
    metrics: Arc<Metrics>,
    cfg: WriterConfig,
    mut rx: mpsc::Receiver<Job>,
    wal_full: WalFull,
    health: Arc<StoreHealth>,
) {
    let span = tracing::info_span!("store-writer");
    let _enter = span.enter();
    while let Some(first) = rx.blocking_recv() {
        let mut uploads = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Upload(u, reply) => uploads.push((u, reply)),
                Job::Prune(cutoff, reply) => {
                    let r = store::prune(&conn, cutoff).map_err(|e| e.to_string());
                    if let Ok(p) = &r {
                        tracing::info!(
                            traces = p.traces,
                            pings = p.pings,
                            events = p.events,
                            "retention: pruned"
                        );
                    }
                    let _ = reply.send(r);
                }
                Job::Probe(reply) => {
                    let r = store::probe_write(&conn, now_ms()).map_err(|e| e.to_string());
                    health.committed(r.as_ref().map(|_| ()).map_err(String::as_str));
                    let _ = reply.send(r);
                }
            }
            if uploads.len() < cfg.max_group {
                next = rx.try_recv().ok();
            }
        }
        if uploads.is_empty() {
            continue;
        }
        if wal_full.swap(false, std::sync::atomic::Ordering::Relaxed) {
            // Only the frames since the checkpointer's last pass are left
            // to copy: a short pause that lets the next commit restart the
            // WAL.
            let t = std::time::Instant::now();
            match store::checkpoint(&conn) {
                Ok(c) => tracing::debug!(
                    frames = c.log,
                    ms = t.elapsed().as_millis(),
                    "WAL copied in full; it starts over"
                ),
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint in the writer failed"),
            }
        }
        let jobs: Vec<&Upload> = uploads.iter().map(|(u, _)| u).collect();
        let started = std::time::Instant::now();
        let result = commit_group(&conn, &live, &jobs, cfg.hysteresis);
        let took = started.elapsed();
        if took >= std::time::Duration::from_millis(50) {
            tracing::debug!(
                uploads = jobs.len(),
                ms = took.as_millis(),
                "slow group commit"
            );
        }
        match result {
            Ok((outcomes, touched, agents)) => {
                {
                    // Poisoning only follows a panic elsewhere; the data is
                    // still consistent (replaced whole below).
                    let mut l = live.write().unwrap_or_else(|p| p.into_inner());
                    l.paths.extend(touched);
                    l.agents.extend(agents);
                }
                metrics.store_written(now_ms());
                health.committed(Ok(()));
                for ((_, reply), o) in uploads.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(o));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, uploads = uploads.len(), "store commit failed");
                metrics.store_failed();
                let msg = e.to_string();
                health.committed(Err(&msg));
                for (_, reply) in uploads {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
    tracing::info!("store writer stopped");
}

type Committed = (
    Vec<Outcome>,
    HashMap<PathKey, PathState>,
    HashMap<String, AgentInfo>,
);

fn commit_group(
    conn: &Connection,
    live: &RwLock<Live>,
    uploads: &[&Upload],
    k: u32,
) -> rusqlite::Result<Committed> {
    let now = now_ms();
    let tx = conn.unchecked_transaction()?;
    let mut touched: HashMap<PathKey, PathState> = HashMap::new();
    let mut agents: HashMap<String, AgentInfo> = HashMap::new();
    let mut outcomes = Vec::with_capacity(uploads.len());
    let mut changes: Vec<(PathKey, Change)> = Vec::new();
    {
        let l = live.read().unwrap_or_else(|p| p.into_inner());
        for u in uploads {
            let mut o = Outcome::default();
            let agent = agents.entry(u.agent.clone()).or_insert_with(|| {
                l.agents.get(&u.agent).cloned().unwrap_or(AgentInfo {
                    name: u.agent.clone(),
                    first_seen_ms: u.received_ms,
                    last_seen_ms: u.received_ms,
                    traces: 0,
                    pings: 0,
                })
            });
            agent.last_seen_ms = agent.last_seen_ms.max(u.received_ms);
            for t in &u.traces {
                let r = &t.record;
                let row = TraceRow {
                    id: &r.id,
                    agent: &r.agent,
                    prefix: t.unit,
                    dst: r.dst,
                    start_ms: r.start_ms,
                    upstream: &t.inference.upstream,
                    upstream_asn: t.inference.upstream_asn,
                    entered: t.inference.entered,
                    confidence: t.inference.confidence,
                    record: &t.line,
                };
                if !store::insert_trace(&tx, &row, u.received_ms)? {
                    o.duplicates += 1;
                    o.duplicate_traces += 1;
                    continue;
                }
                o.accepted += 1;
                agent.traces += 1;
                if !t.in_target {
                    continue;
                }
                let key = (u.agent.clone(), t.unit);
                let state = touched
                    .entry(key.clone())
                    .or_insert_with(|| l.paths.get(&key).cloned().unwrap_or_default());
                let obs = TraceObservation {
                    at_ms: r.start_ms,
                    trace_id: &r.id,
                    inference: &t.inference,
                };
                if let Some(c) = state.observe_trace(&obs, k) {
                    o.changes += 1;
                    changes.push((key, c));
                }
            }
            for p in &u.pings {
                let r = &p.record;
                let row = PingRow {
                    id: &r.id,
                    agent: &r.agent,
                    prefix: p.unit,
                    dst: r.dst,
                    start_ms: r.start_ms,
                    sent: r.sent,
                    received: r.received,
                    record: &p.line,
                };
                if !store::insert_ping(&tx, &row, u.received_ms)? {
                    o.duplicates += 1;
                    continue;
                }
                o.accepted += 1;
                agent.pings += 1;
                if !p.in_target {
                    continue;
                }
                let key = (u.agent.clone(), p.unit);
                let state = touched
                    .entry(key.clone())
                    .or_insert_with(|| l.paths.get(&key).cloned().unwrap_or_default());
                state.observe_ping(r.start_ms, r.received > 0);
            }
            outcomes.push(o);
        }
    }
    for (key, c) in &changes {
        store::put_event(&tx, key, c, now)?;
        tracing::info!(
            agent = %key.0,
            prefix = %key.1,
            from = c.from.as_ref().map_or("none", |u| u.name.as_str()),
            to = %c.to.name,
            "upstream changed"
        );
    }
    for (key, state) in &touched {
        store::put_path(&tx, key, state, now)?;
    }
    for a in agents.values() {
        store::put_agent(&tx, a)?;
    }
    tx.commit()?;
    Ok((outcomes, touched, agents))
}
