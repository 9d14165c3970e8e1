//! The single writer: a dedicated thread that owns the [`Store`] and
//! commits uploads in groups. Each request's handler sends a [`Job`] and
//! waits for its answer; the writer takes every job queued at that moment
//! and runs them in one transaction: raw records (the store says which
//! are new), then what [`state::apply`] makes of the new ones (path
//! states, change events, agents), then one commit: one durable write for
//! many requests (group commit). The shared [`Live`] state changes only
//! after the commit succeeded, so nothing a reader sees was not stored.

use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};
use tumen_core::now_ms;

use crate::pipeline::{PingItem, TraceItem, Upload};
use crate::state::{self, Applied, Fresh, Live};
use crate::store::{PingRow, Pruned, Store, StoreError, TraceRow};

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
    Upload(Upload, oneshot::Sender<Result<Outcome, CommitError>>),
    Prune(u64, oneshot::Sender<Result<Pruned, CommitError>>),
    /// Readiness: commit a small write now.
    Probe(oneshot::Sender<Result<(), CommitError>>),
    /// Control-plane events to store (from the BGP task; nobody waits:
    /// a failure is logged and counted as any commit's).
    Bgp(Vec<crate::bgp::model::BgpEvent>),
}

/// Why the writer could not do a job: the store's error, shared by every
/// upload of the group commit that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CommitError(pub std::sync::Arc<crate::store::StoreError>);

impl From<crate::store::StoreError> for CommitError {
    fn from(e: crate::store::StoreError) -> Self {
        Self(std::sync::Arc::new(e))
    }
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
    fn committed(&self, ok: Result<(), String>) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        match ok {
            Ok(()) => self.last_ok_ms.store(now, Relaxed),
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
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

/// Starts the writer thread; it ends (and drops the store) when every
/// sender is dropped.
pub fn spawn(
    store: Box<dyn Store>,
    live: Arc<RwLock<Live>>,
    metrics: Arc<Metrics>,
    cfg: WriterConfig,
    health: Arc<StoreHealth>,
) -> std::io::Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Job>(4096);
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(store, live, metrics, cfg, rx, health))?;
    Ok((tx, handle))
}

fn run(
    mut store: Box<dyn Store>,
    live: Arc<RwLock<Live>>,
    metrics: Arc<Metrics>,
    cfg: WriterConfig,
    mut rx: mpsc::Receiver<Job>,
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
                    let r = store.prune(cutoff).map_err(CommitError::from);
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
                    let r = store.probe(now_ms()).map_err(CommitError::from);
                    health.committed(r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
                    let _ = reply.send(r);
                }
                Job::Bgp(events) => {
                    let r = commit_bgp(store.as_mut(), &events);
                    match r {
                        Ok(()) => {
                            metrics.store_written(now_ms());
                            health.committed(Ok(()));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, events = events.len(), "store commit of BGP events failed: they are lost");
                            metrics.store_failed();
                            health.committed(Err(e.to_string()));
                        }
                    }
                }
            }
            if uploads.len() < cfg.max_group {
                next = rx.try_recv().ok();
            }
        }
        if uploads.is_empty() {
            continue;
        }
        if let Err(e) = store.maintain() {
            tracing::warn!(error = %e, "store maintenance between commits failed");
        }
        let jobs: Vec<&Upload> = uploads.iter().map(|(u, _)| u).collect();
        let started = std::time::Instant::now();
        let result = commit_group(store.as_mut(), &live, &jobs, cfg.hysteresis);
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
                let e = CommitError::from(e);
                health.committed(Err(e.to_string()));
                for (_, reply) in uploads {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
    tracing::info!("store writer stopped");
}

fn commit_bgp(
    store: &mut dyn Store,
    events: &[crate::bgp::model::BgpEvent],
) -> Result<(), crate::store::StoreError> {
    let now = now_ms();
    let mut tx = store.transaction()?;
    for e in events {
        tx.put_bgp_event(e, now)?;
    }
    tx.commit()
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
    store: &mut dyn Store,
    live: &RwLock<Live>,
    uploads: &[&Upload],
    k: u32,
) -> Result<(Vec<Outcome>, Applied), StoreError> {
    let now = now_ms();
    let mut tx = store.transaction()?;
    let mut outcomes = Vec::with_capacity(uploads.len());
    let mut fresh = Vec::with_capacity(uploads.len());
    for u in uploads {
        let mut o = Outcome::default();
        let mut f = Fresh {
            traces: Vec::with_capacity(u.traces.len()),
            pings: Vec::with_capacity(u.pings.len()),
        };
        for t in &u.traces {
            let new = tx.insert_trace(&trace_row(t), u.received_ms)?;
            f.traces.push(new);
            if !new {
                o.duplicates += 1;
                o.duplicate_traces += 1;
            }
        }
        for p in &u.pings {
            let new = tx.insert_ping(&ping_row(p), u.received_ms)?;
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
        tx.put_event(key, c, now)?;
        tracing::info!(
            agent = %key.0,
            prefix = %key.1,
            from = c.from.as_ref().map_or("none", |u| u.name.as_str()),
            to = %c.to.name,
            "upstream changed"
        );
    }
    for (key, state) in &applied.paths {
        tx.put_path(key, state, now)?;
    }
    for a in applied.agents.values() {
        tx.put_agent(a)?;
    }
    tx.commit()?;
    Ok((outcomes, applied))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::infer::Target;
    use crate::orgs::Orgs;
    use crate::pipeline::{Checks, Pipeline};
    use crate::store::memory::MemoryStore;
    use crate::store::{StoreReader, Table, Transaction};
    use crate::table::PrefixTable;

    const TRACE: &str = r#"{"kind":"trace","schema":1,"id":"00112233445566778899aabbccddeeff","agent":"vp-fra","start_ms":1506848871000,"duration_ms":12.5,"src":"192.0.2.2","dst":"198.18.177.15","prefix":"198.18.177.0/24","protocol":"udp","port":33434,"mode":"full","first_ttl":1,"max_ttl":30,"flows":1,"stop":"unreachable","reached":false,"probes_sent":3,"hops":[{"ttl":1,"flow":0,"sent":2,"replies":[]}]}"#;
    const PING: &str = r#"{"kind":"ping","schema":1,"id":"ffeeddccbbaa99887766554433221100","agent":"vp-fra","start_ms":1506848871000,"dst":"198.18.177.15","prefix":"198.18.177.0/24","sent":3,"received":2,"loss_ratio":0.3333}"#;

    /// A store whose transactions cannot start while `full` is set (a
    /// full disk), over a [`MemoryStore`].
    #[derive(Debug)]
    struct Flaky {
        inner: MemoryStore,
        full: Arc<AtomicBool>,
    }

    impl Store for Flaky {
        fn transaction(&mut self) -> Result<Box<dyn Transaction + '_>, StoreError> {
            if self.full.load(Ordering::Relaxed) {
                return Err(StoreError::Write("database or disk is full".into()));
            }
            self.inner.transaction()
        }
        fn load_state(&mut self) -> Result<Live, StoreError> {
            self.inner.load_state()
        }
        fn prune(&mut self, cutoff_ms: u64) -> Result<Pruned, StoreError> {
            self.inner.prune(cutoff_ms)
        }
        fn probe(&mut self, now_ms: u64) -> Result<(), StoreError> {
            self.inner.probe(now_ms)
        }
        fn maintain(&mut self) -> Result<(), StoreError> {
            self.inner.maintain()
        }
        fn reader(&self) -> Result<Box<dyn crate::store::StoreReader>, StoreError> {
            self.inner.reader()
        }
        fn pack(&self) -> crate::pipeline::PackLine {
            self.inner.pack()
        }
        fn schema_version(&self) -> u32 {
            self.inner.schema_version()
        }
    }

    struct Writer {
        tx: mpsc::Sender<Job>,
        thread: std::thread::JoinHandle<()>,
        live: Arc<RwLock<Live>>,
        metrics: Arc<Metrics>,
        health: Arc<StoreHealth>,
        reader: Box<dyn StoreReader>,
        full: Arc<AtomicBool>,
    }

    fn writer() -> Writer {
        let full = Arc::new(AtomicBool::new(false));
        let store = Flaky {
            inner: MemoryStore::new(),
            full: full.clone(),
        };
        let reader = store.reader().expect("reader");
        let live = Arc::new(RwLock::new(Live::default()));
        let metrics = Arc::new(Metrics::new(
            live.clone(),
            std::time::Duration::from_secs(600),
            store.schema_version(),
        ));
        let health = Arc::new(StoreHealth::default());
        let cfg = WriterConfig {
            hysteresis: 2,
            max_group: 512,
        };
        let (tx, thread) = spawn(
            Box::new(store),
            live.clone(),
            metrics.clone(),
            cfg,
            health.clone(),
        )
        .expect("writer");
        Writer {
            tx,
            thread,
            live,
            metrics,
            health,
            reader,
            full,
        }
    }

    fn upload(received_ms: u64) -> Upload {
        let target = Target {
            prefixes: vec!["198.18.177.0/24".parse().expect("p")],
            asns: Default::default(),
        };
        let (table, orgs) = (PrefixTable::new(), Orgs::default());
        let p = Pipeline {
            target: &target,
            table: &table,
            orgs: &orgs,
            enrich: None,
            pack: MemoryStore::new().pack(),
        };
        let body = format!("{TRACE}\n{PING}\n");
        let batch =
            crate::pipeline::read::parse_batch(body.as_bytes(), "vp-fra", 10, &Checks::any_time())
                .expect("batch");
        p.prepare("vp-fra", received_ms, batch)
    }

    fn send(w: &Writer, u: Upload) -> Result<Outcome, CommitError> {
        let (tx, rx) = oneshot::channel();
        w.tx.blocking_send(Job::Upload(u, tx)).expect("send");
        rx.blocking_recv().expect("answer")
    }

    #[test]
    fn uploads_commit_through_the_store_seam_and_duplicates_are_counted() {
        let w = writer();
        let o = send(&w, upload(1_000)).expect("committed");
        assert_eq!(
            o,
            Outcome {
                accepted: 2,
                duplicates: 0,
                changes: 0,
                duplicate_traces: 0
            }
        );
        let o = send(&w, upload(2_000)).expect("committed");
        assert_eq!((o.accepted, o.duplicates, o.duplicate_traces), (0, 2, 1));
        let counts = [Table::Traces, Table::Pings, Table::Paths, Table::Agents]
            .map(|t| w.reader.count(t).expect("count"));
        assert_eq!(counts, [1, 1, 1, 1]);
        {
            let live = w.live.read().expect("live");
            let a = &live.agents["vp-fra"];
            assert_eq!((a.traces, a.pings, a.last_seen_ms), (1, 1, 2_000));
            assert_eq!(live.paths.len(), 1);
        }
        assert!(w.health.recently_ok(now_ms(), 60_000));
        assert!(w.metrics.last_write.get() > 0.0);

        let (tx, rx) = oneshot::channel();
        w.tx.blocking_send(Job::Probe(tx)).expect("send");
        rx.blocking_recv().expect("answer").expect("probe");
        let (tx, rx) = oneshot::channel();
        w.tx.blocking_send(Job::Prune(u64::MAX, tx)).expect("send");
        let p = rx.blocking_recv().expect("answer").expect("prune");
        assert_eq!((p.traces, p.pings, p.events), (1, 1, 0));
        assert_eq!(w.reader.count(Table::Paths).expect("paths kept"), 1);
        drop(w.tx);
        w.thread
            .join()
            .expect("writer stops when its senders are gone");
    }

    #[test]
    fn a_failed_commit_answers_the_error_and_leaves_the_state_alone() {
        let w = writer();
        w.full.store(true, Ordering::Relaxed);
        let e = send(&w, upload(1_000)).expect_err("full");
        assert_eq!(e.to_string(), "database or disk is full");
        assert!(w.live.read().expect("live").agents.is_empty());
        assert_eq!(w.metrics.write_errors.get(), 1);
        assert!(!w.health.recently_ok(now_ms(), 60_000));
        assert_eq!(
            *w.health.last_error.lock().expect("lock"),
            "database or disk is full"
        );
        w.full.store(false, Ordering::Relaxed);
        let o = send(&w, upload(2_000)).expect("room again");
        assert_eq!(o.accepted, 2);
        assert!(w.health.recently_ok(now_ms(), 60_000));
        assert_eq!(w.live.read().expect("live").agents.len(), 1);
    }
}
