//! `tumen-collector serve`: authenticated ingest over HTTP, the store
//! writer, `/metrics`, the JSON API and the health endpoints.
//!
//! A request's life: bearer token → agent (constant-time) → content type
//! and encoding → size limits → the ingest pipeline ([`crate::pipeline`]:
//! the whole batch parsed and validated, every trace inferred; on the
//! blocking pool, pure code) → one job to the writer thread, which
//! commits it to the [`Store`] with whatever else is queued (group
//! commit) and applies it to the [`Live`] state → 200 with the counts,
//! only once the commit is durable. Any refusal is a precise 4xx counted
//! by reason, before anything is written.
//!
//! This module is the HTTP service and its lifecycle; what it serves is
//! computed elsewhere: [`crate::pipeline`], [`crate::state`],
//! [`crate::store`].

pub mod api;
pub mod auth;
pub mod bgp;
pub mod config;
mod http;
pub mod ingest;
pub mod metrics;
pub mod schedule;
pub mod tls;
pub mod writer;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::dns::Enricher;
use crate::infer::Target;
use crate::orgs::Orgs;
use crate::pipeline::{Enrich, PackLine, Pipeline};
use crate::state::Live;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError, StoreReader};
use crate::table::{LiveTable, PrefixTable};

pub use config::{Config, ConfigErrors, LogFormat, RawConfig};

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    /// Reloaded when the token file changes (rotation).
    pub tokens: RwLock<auth::Tokens>,
    /// Refusals agents reported about their schedule, by agent.
    pub refusals: Mutex<std::collections::BTreeMap<String, schedule::Refusals>>,
    /// Reloaded whole on SIGHUP or when an `--asn-table` file changes.
    pub table: LiveTable,
    pub orgs: Orgs,
    pub target: Target,
    pub live: Arc<RwLock<Live>>,
    pub metrics: Arc<metrics::Metrics>,
    pub writer: mpsc::Sender<writer::Job>,
    /// Queries beside the writer (events, free space).
    pub reader: Box<dyn StoreReader>,
    /// How the store wants record lines (packed before the writer).
    pub pack: PackLine,
    pub dns: Option<Enricher>,
    /// Batches decoded and inferred at once: one per core. More would
    /// only share the CPU with the single writer, the bottleneck, and
    /// stretch every commit (the scheduler is fair per thread).
    pub prepare_slots: tokio::sync::Semaphore,
    /// Memory all request bodies being received may hold together.
    pub bodies: tumen_httpd::BodyBudget,
    /// The HTTP server's connection counters (for `/metrics`).
    pub http: Arc<tumen_httpd::Stats>,
    /// Whether the store's latest commit worked (`/readyz`).
    pub store_health: Arc<writer::StoreHealth>,
    /// The control plane (empty when no BGP source is configured).
    pub bgp: Arc<RwLock<crate::bgp::model::Model>>,
    /// What the BMP listener read and dropped (for `/metrics`).
    pub bmp_counters: Arc<crate::bgp::bmp::Counters>,
    /// The web view's viewer tokens, agents' latest uploads, live feed.
    pub web: crate::web::WebState,
}

impl App {
    /// The ingest pipeline over this collector's target, `table` (the one
    /// in force, taken for a whole batch), DNS enrichment and store.
    pub fn pipeline<'a>(&'a self, table: &'a PrefixTable) -> Pipeline<'a> {
        Pipeline {
            target: &self.target,
            table,
            orgs: &self.orgs,
            enrich: self.dns.as_ref().map(|d| d as &dyn Enrich),
            pack: self.pack,
        }
    }
}

/// Team Cymru answers over DNS: cached ones while a trace is inferred,
/// unknown addresses queued for the resolver.
impl Enrich for Enricher {
    fn cached_asn(&self, addr: IpAddr) -> Option<u32> {
        Enricher::cached_asn(self, addr)
    }

    fn request(&self, addr: IpAddr) {
        Enricher::request(self, addr);
    }
}

/// Why `serve` could not start (each maps to an exit code in main).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("--token-file {0}")]
    Tokens(#[from] auth::TokenFileError),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Store(crate::store::StoreError),
    #[error("bind {addr}: {source}{hint}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        match e {
            // A thread that could not start is the system's fault, as
            // any other (exit 71), not the database's.
            StoreError::Thread(e) => StartError::Io(e),
            e => StartError::Store(e),
        }
    }
}

/// The target set: configured prefixes, or the DPRK preset.
pub fn target_of(config: &Config) -> Target {
    if config.targets.is_empty() {
        Target::dprk()
    } else {
        Target {
            prefixes: config.targets.clone(),
            asns: Default::default(),
        }
    }
}

/// Loads tables, organisations and tokens named by the config.
pub fn load_inputs(config: &Config) -> Result<(LiveTable, Orgs, auth::Tokens), StartError> {
    let tokens = auth::Tokens::load(&config.token_file)?;
    if tokens.is_empty() {
        tracing::warn!(file = %config.token_file.display(), "token file has no agents: every upload will be refused");
    }
    let table =
        LiveTable::load(&config.asn_tables).map_err(|e| StartError::Input(e.to_string()))?;
    let mut orgs = Orgs::default();
    if let Some(path) = &config.orgs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Input(format!("--orgs {}: {e}", path.display())))?;
        orgs.extend_from(&text, &path.display().to_string())
            .map_err(|e| StartError::Input(format!("--orgs {e}")))?;
    }
    Ok((table, orgs, tokens))
}

/// Runs the collector until `shutdown` resolves, then finishes in-flight
/// requests (within `grace`) and the writer's queue.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), StartError> {
    let (table, orgs, tokens) = load_inputs(&config)?;
    let mut store = SqliteStore::open(&config.db)?;
    let mut live = store.load_state()?;
    // Paths frozen by a record dated in the future (stored by a build that
    // did not check dates) would ignore every later trace: thaw them.
    let limit = metrics::now_ms()
        .saturating_add(u64::try_from(config.max_clock_skew.as_millis()).unwrap_or(u64::MAX));
    let thawed = live.thaw_future(limit);
    if thawed > 0 {
        tracing::warn!(
            paths = thawed,
            "paths held times in the future (an agent's clock ran ahead): forgotten, so \
             that later traces apply again"
        );
    }
    tracing::info!(
        db = %config.db.display(),
        paths = live.paths.len(),
        agents = live.agents.len(),
        prefixes = table.current().len(),
        tokens = tokens.len(),
        "state restored"
    );
    let reader = store.reader()?;
    let pack = store.pack();
    let live = Arc::new(RwLock::new(live));
    let metrics = Arc::new(metrics::Metrics::new(
        live.clone(),
        config.agent_silence,
        store.schema_version(),
    ));
    let store_health = Arc::new(writer::StoreHealth::default());
    let (writer_tx, writer_thread) = writer::spawn(
        Box::new(store) as Box<dyn Store>,
        live.clone(),
        metrics.clone(),
        writer::WriterConfig {
            hysteresis: config.hysteresis,
            max_group: 512,
        },
        store_health.clone(),
    )?;
    let dns = match &config.dns {
        Some(c) => {
            Some(Enricher::new(c.clone()).map_err(|e| StartError::Input(format!("dns: {e}")))?)
        }
        None => None,
    };
    let bodies = tumen_httpd::BodyBudget::new(config.max_inflight_body_bytes);
    let bgp_model = Arc::new(RwLock::new(crate::bgp::model::Model::new(
        target_of(&config),
        orgs.clone(),
        crate::bgp::model::Settings {
            flap_threshold: config.bgp.flap_threshold,
            flap_window_ms: u64::try_from(config.bgp.flap_window.as_millis()).unwrap_or(u64::MAX),
            divergence_for_ms: u64::try_from(config.bgp.divergence_for.as_millis())
                .unwrap_or(u64::MAX),
            ..Default::default()
        },
    )));
    let bmp_counters = Arc::new(crate::bgp::bmp::Counters::default());
    let web = crate::web::WebState::new(&config.view).map_err(StartError::Input)?;
    match &config.view {
        config::ViewAccess::Open => {
            tracing::info!(listen = %config.listen, "web view open to whoever reaches the listener")
        }
        config::ViewAccess::Tokens(f) => {
            tracing::info!(file = %f.display(), "web view needs a viewer token")
        }
        config::ViewAccess::Closed => tracing::warn!(
            listen = %config.listen,
            "web view closed: the listener is beyond loopback; give --viewer-token-file or \
             --public-view to open it"
        ),
    }
    if config.bgp.any() {
        metrics.register(Box::new(bgp::BgpCollector::new(
            bgp_model.clone(),
            config.bgp.max_peer_series,
            config.bgp.bmp_listen.map(|_| bmp_counters.clone()),
        )));
    }
    let app = Arc::new(App {
        target: target_of(&config),
        config,
        tokens: RwLock::new(tokens),
        refusals: Mutex::default(),
        table,
        orgs,
        live,
        metrics,
        writer: writer_tx.clone(),
        reader,
        pack,
        dns,
        prepare_slots: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        bodies,
        http: Arc::default(),
        store_health,
        bgp: bgp_model,
        bmp_counters,
        web,
    });

    // `instrument`, not `span.enter()`: an entered span held across
    // `.await` leaks into whatever else runs on that thread.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = vec![
        Background::spawn("retention", &stop_rx, retention_task(app.clone())),
        Background::spawn("tokens", &stop_rx, token_watch(app.clone())),
        Background::spawn("asn-tables", &stop_rx, table_watch(app.clone())),
        Background::spawn("web-feed", &stop_rx, crate::web::feed_task(app.clone())),
    ];
    if app.config.bgp.any() {
        let (tx, rx) = tokio::sync::mpsc::channel(8192);
        tasks.push(Background::spawn(
            "bgp",
            &stop_rx,
            bgp::run(
                app.bgp.clone(),
                rx,
                app.writer.clone(),
                app.live.clone(),
                app.config.agent_silence,
            ),
        ));
        for (name, work) in bgp::sources(&app, tx, &stop_rx).await? {
            tasks.push(Background::spawn(name, &stop_rx, work));
        }
    }
    for path in &app.config.imports {
        import(&app, path).await?;
    }
    let router = api::router(app.clone());
    let limits = app.config.http.clone();
    let stats = app.http.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
    };
    match &app.config.tls {
        Some((cert, key)) => {
            let acceptor = tls::acceptor(cert, key)?;
            tracing::info!(cert = %cert.display(), "serving HTTPS");
            tumen_httpd::serve(
                listener,
                tls::Tls(acceptor),
                router,
                limits,
                stats,
                shutdown,
                grace,
            )
            .await;
        }
        None => {
            tumen_httpd::serve(
                listener,
                tumen_httpd::Plain,
                router,
                limits,
                stats,
                shutdown,
                grace,
            )
            .await;
        }
    }
    // One cancellation tree: the background tasks stop with the server.
    let _ = stop_tx.send(true);
    for t in tasks {
        t.finish(Duration::from_secs(2)).await;
    }
    drop(app);
    drop(writer_tx);
    // The writer drains its queue and stops once every sender is gone;
    // dropping the store then stops what it runs beside (the SQLite
    // checkpointer).
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads the token file when it changes (checked every 2 s): adding a
/// token, rotating one or revoking one needs no restart. A file that does
/// not parse is logged and the tokens in force are kept.
async fn token_watch(app: Arc<App>) {
    let path = app.config.token_file.clone();
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = stamp(&path);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match auth::Tokens::load(&path) {
            Ok(t) => {
                tracing::info!(tokens = t.len(), "token file reloaded");
                *app.tokens.write().unwrap_or_else(|p| p.into_inner()) = t;
                app.metrics.token_reloads.with_label_values(&["ok"]).inc();
            }
            Err(e) => {
                tracing::error!(error = %e, "token file not reloaded; the tokens in force stay");
                app.metrics
                    .token_reloads
                    .with_label_values(&["error"])
                    .inc();
            }
        }
    }
}

/// A background task of the collector: named (its tracing span), stopped
/// by the shutdown signal of [`run`], and waited for; an early end or a
/// panic is logged, never lost.
struct Background {
    name: &'static str,
    handle: tokio::task::JoinHandle<()>,
}

impl Background {
    fn spawn(
        name: &'static str,
        stop: &tokio::sync::watch::Receiver<bool>,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let mut stop = stop.clone();
        let task = async move {
            tokio::select! {
                () = work => tracing::warn!("task ended by itself"),
                _ = stop.wait_for(|s| *s) => {}
            }
        };
        let handle = tokio::spawn(tracing::Instrument::instrument(
            task,
            tracing::info_span!("task", name),
        ));
        Self { name, handle }
    }

    /// Waits at most `limit` for the task to stop (it has been told to).
    async fn finish(self, limit: Duration) {
        let mut handle = self.handle;
        match tokio::time::timeout(limit, &mut handle).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(task = self.name, error = %e, "task failed"),
            Err(_) => {
                tracing::warn!(task = self.name, "task did not stop in time: aborted");
                handle.abort();
            }
        }
    }
}

/// `--import FILE`: every trace in the file, as the vantage point
/// `--import-as` (default `import`), through the same pipeline, state and
/// store as an agent's upload (a source other than agents).
async fn import(app: &Arc<App>, path: &std::path::Path) -> Result<(), StartError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StartError::Input(format!("--import {}: {e}", path.display())))?;
    let name = path.display().to_string();
    let agent = app.config.import_as.clone();
    let now = metrics::now_ms();
    let batch = crate::source::import::records(&text, &name, &agent, now)
        .map_err(|e| StartError::Input(format!("--import {e}")))?;
    if batch.is_empty() {
        tracing::warn!(file = %name, "--import: no trace with a destination in the file");
        return Ok(());
    }
    let table = app.table.current();
    let upload = app.pipeline(&table).prepare(&agent, now, batch);
    let n = upload.traces.len();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stopped = || StartError::Input("--import: the store writer stopped".into());
    app.writer
        .send(writer::Job::Upload(upload, tx))
        .await
        .map_err(|_| stopped())?;
    let outcome = rx
        .await
        .map_err(|_| stopped())?
        .map_err(|e| StartError::Input(format!("--import {name}: store: {e}")))?;
    tracing::info!(
        file = %name,
        agent = ?agent,
        traces = n,
        accepted = outcome.accepted,
        duplicates = outcome.duplicates,
        changes = outcome.changes,
        "imported"
    );
    Ok(())
}

/// How often the `--asn-table` files are checked for changes.
const TABLE_CHECK: Duration = Duration::from_secs(5);

/// Rebuilds the prefix table when SIGHUP arrives or an `--asn-table` file
/// changes (checked every 5 s), and swaps it under lookups: a batch keeps
/// the table it started with. A file that does not load is logged and
/// counted; the table in force stays.
async fn table_watch(app: Arc<App>) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let signalled = tokio::select! {
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => true,
            () = tokio::time::sleep(TABLE_CHECK) => false,
        };
        if !signalled && !app.table.changed() {
            continue;
        }
        let app2 = app.clone();
        let done = tokio::task::spawn_blocking(move || app2.table.reload()).await;
        match done {
            Ok(Ok(n)) => {
                tracing::info!(prefixes = n, sighup = signalled, "prefix table reloaded");
                app.metrics.table_reloads.with_label_values(&["ok"]).inc();
            }
            Ok(Err(e)) => {
                tracing::error!(error = ?e.to_string(), "prefix table not reloaded; the table in force stays");
                app.metrics
                    .table_reloads
                    .with_label_values(&["error"])
                    .inc();
            }
            Err(e) => tracing::error!(error = %e, "prefix table reload failed"),
        }
    }
}

/// Deletes raw records and events older than the retention, hourly (and
/// once at start).
async fn retention_task(app: Arc<App>) {
    let every =
        (app.config.retention / 24).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    loop {
        let cutoff = metrics::now_ms()
            .saturating_sub(u64::try_from(app.config.retention.as_millis()).unwrap_or(u64::MAX));
        let (tx, rx) = tokio::sync::oneshot::channel();
        if app
            .writer
            .send(writer::Job::Prune(cutoff, tx))
            .await
            .is_err()
        {
            return;
        }
        match rx.await {
            Ok(Err(e)) => tracing::error!(error = %e, "retention prune failed"),
            Err(_) => return,
            Ok(Ok(_)) => {}
        }
        tokio::time::sleep(every).await;
    }
}
