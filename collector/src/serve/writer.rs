//! The single writer: a dedicated thread that owns the write connection
//! and commits uploads in groups. Each request's handler sends a [`Job`]
//! and waits for its answer; the writer takes every job queued at that
//! moment and runs them in one transaction: raw records (the store says
//! which are new), then what [`state::apply`] makes of the new ones (path
//! states, change events, agents), then one commit: one fsync for many
//! requests (group commit), so durable ingest does not cost one disk sync
//! per request. The shared [`Live`] state changes only after the commit
//! succeeded, so nothing a reader sees was not stored.

use std::sync::{Arc, RwLock};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::pipeline::{PingItem, TraceItem, Upload};
use crate::state::{self, Applied, Fresh, Live};
use crate::store::{self, PingRow, TraceRow};

use super::metrics::Metrics;

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
            Ok((outcomes, applied)) => {
                // Poisoning only follows a panic elsewhere; the data is
                // still consistent (replaced whole here).
                live.write()
                    .unwrap_or_else(|p| p.into_inner())
                    .install(applied);
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

fn trace_row(t: &TraceItem) -> TraceRow<'_> {
    let r = &t.record;
    TraceRow {
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
    }
}

fn ping_row(p: &PingItem) -> PingRow<'_> {
    let r = &p.record;
    PingRow {
        id: &r.id,
        agent: &r.agent,
        prefix: p.unit,
        dst: r.dst,
        start_ms: r.start_ms,
        sent: r.sent,
        received: r.received,
        record: &p.line,
    }
}

/// One transaction for a group of uploads: the raw records (the store
/// says which are new), what the new ones do to the state, commit.
fn commit_group(
    conn: &Connection,
    live: &RwLock<Live>,
    uploads: &[&Upload],
    k: u32,
) -> rusqlite::Result<(Vec<Outcome>, Applied)> {
    let now = now_ms();
    let tx = conn.unchecked_transaction()?;
    let mut outcomes = Vec::with_capacity(uploads.len());
    let mut fresh = Vec::with_capacity(uploads.len());
    for u in uploads {
        let mut o = Outcome::default();
        let mut f = Fresh {
            traces: Vec::with_capacity(u.traces.len()),
            pings: Vec::with_capacity(u.pings.len()),
        };
        for t in &u.traces {
            let new = store::insert_trace(&tx, &trace_row(t), u.received_ms)?;
            f.traces.push(new);
            if !new {
                o.duplicates += 1;
                o.duplicate_traces += 1;
            }
        }
        for p in &u.pings {
            let new = store::insert_ping(&tx, &ping_row(p), u.received_ms)?;
            f.pings.push(new);
            if !new {
                o.duplicates += 1;
            }
        }
        o.accepted = u.traces.len() + u.pings.len() - o.duplicates;
        outcomes.push(o);
        fresh.push(f);
    }
    let group: Vec<(&Upload, &Fresh)> = uploads.iter().copied().zip(&fresh).collect();
    let applied = state::apply(&live.read().unwrap_or_else(|p| p.into_inner()), &group, k);
    for (o, n) in outcomes.iter_mut().zip(&applied.changes_per_upload) {
        o.changes = *n;
    }
    for (key, c) in &applied.changes {
        store::put_event(&tx, key, c, now)?;
        tracing::info!(
            agent = %key.0,
            prefix = %key.1,
            from = c.from.as_ref().map_or("none", |u| u.name.as_str()),
            to = %c.to.name,
            "upstream changed"
        );
    }
    for (key, state) in &applied.paths {
        store::put_path(&tx, key, state, now)?;
    }
    for a in applied.agents.values() {
        store::put_agent(&tx, a)?;
    }
    tx.commit()?;
    Ok((outcomes, applied))
}
