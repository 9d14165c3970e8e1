//! `tumen-agent`: the probe agent users install on vantage points.
//!
//! Configuration file + flags (validated with every problem reported at
//! once, exit 64), then one of: `--dry-run` (print the plan, send
//! nothing), `--once` (one round, JSON lines on stdout), or rounds every
//! `interval` until SIGTERM/SIGINT. Raw sockets are opened first, then
//! every capability is dropped.
//!
//! A running agent is the round loop plus tasks of their own ([`Task`]):
//! `upload` (spool to collector), `schedule` (fetch, apply within the local
//! limits, report refusals; new plans reach the loop through a watch
//! channel and take effect at the next round boundary) and `metrics`.
//! The loop never awaits the network beyond its own probes, so a collector
//! that hangs or misbehaves cannot slow the rounds.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use std::io::Write;
use std::net::IpAddr;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use tokio::sync::{watch, Notify};
use tumen_agent::config::{Config, Delivery, Hosts, RawConfig};
use tumen_agent::engine::{Gate, Ident};
use tumen_agent::net::RawNetwork;
use tumen_agent::ping::Pingers;
use tumen_agent::round::{destinations, Destination, Prober};
use tumen_agent::schedule::{self, Fetched, Plan};
use tumen_agent::spool::{Spool, SpoolConfig};
use tumen_agent::status::{self, ProbeCounters, Status};
use tumen_agent::sys::{self, SocketError};
use tumen_agent::upload::{self, UploadConfig, Uploader};
use tumen_wire::Record;

/// Exit code for a usage or configuration error (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;
/// Exit code when raw sockets may not be opened (BSD `EX_NOPERM`).
const EXIT_NOPERM: u8 = 77;
/// Exit code for another operating-system error (BSD `EX_OSERR`).
const EXIT_OSERR: u8 = 71;
/// Exit code when an input file (the token, the CA) is missing or
/// unreadable (BSD `EX_NOINPUT`).
const EXIT_NOINPUT: u8 = 66;
/// Exit code when an input file holds nothing usable (BSD `EX_DATAERR`).
const EXIT_DATAERR: u8 = 65;
/// Exit code when the spool cannot be created or written (BSD
/// `EX_CANTCREAT`).
const EXIT_CANTCREAT: u8 = 73;
/// Exit code when system files (the root certificates) are missing (BSD
/// `EX_OSFILE`).
const EXIT_OSFILE: u8 = 72;
/// Exit code for an internal error (BSD `EX_SOFTWARE`).
const EXIT_SOFTWARE: u8 = 70;

/// Probe agent of Tumen: traces toward the target network's prefixes and
/// reports hop data to a collector.
#[derive(Debug, Parser)]
#[command(name = "tumen-agent", version, about, long_about = None)]
struct Args {
    /// Configuration file (TOML); flags override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Collector base URL, e.g. https://collector.example:9640.
    #[arg(long, value_name = "URL")]
    collector: Option<String>,
    /// File holding this agent's bearer token.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Name of this vantage point as reported to the collector.
    #[arg(long, value_name = "NAME")]
    id: Option<String>,
    /// Address or prefix to probe (repeatable).
    #[arg(long = "target", value_name = "PREFIX")]
    targets: Vec<String>,
    /// Hard boundary: prefixes the agent may ever send to (repeatable).
    #[arg(long = "allow", value_name = "PREFIX")]
    allow: Vec<String>,
    /// Probe a built-in target set (`dprk`).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Allow documentation, benchmark, private and other reserved ranges.
    #[arg(long)]
    allow_reserved: bool,
    /// Global cap on probes per second.
    #[arg(long, value_name = "N")]
    pps: Option<u32>,
    /// Time between rounds, e.g. 60s (default 20s).
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// Directory of the on-disk spool.
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// Run one round, print JSON lines on stdout, and exit.
    #[arg(long)]
    once: bool,
    /// Print what would be probed and at what rate; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Probe protocol: icmp (default), udp or tcp (SYN).
    #[arg(long, value_name = "PROTO")]
    protocol: Option<String>,
    /// Destination port for udp (default 33434) and tcp (default 80).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// First TTL of a full trace (default 1).
    #[arg(long, value_name = "N")]
    first_ttl: Option<u8>,
    /// Highest TTL probed (default 30).
    #[arg(long, value_name = "N")]
    max_ttl: Option<u8>,
    /// Attempts per hop until one is answered (default 2).
    #[arg(long, value_name = "N")]
    probes: Option<u8>,
    /// How long to wait for each answer, e.g. 1s, 500ms (default 1s).
    #[arg(long, value_name = "DURATION")]
    wait: Option<String>,
    /// Stop a trace after N consecutive silent hops (default 3).
    #[arg(long, value_name = "N")]
    gap_limit: Option<u8>,
    /// Paris flow ids per trace, to reveal load-balanced paths (default 1).
    #[arg(long, value_name = "N")]
    flows: Option<u16>,
    /// Addresses traced per /24 (/48) of a prefix target: N or `all` (default 1).
    #[arg(long, value_name = "N|all")]
    hosts: Option<String>,
    /// Always trace the whole path (no border windows).
    #[arg(long)]
    no_window: bool,
    /// A full trace per /24 every N rounds (default 10).
    #[arg(long, value_name = "N")]
    full_every: Option<u32>,
    /// Probes per second toward any one destination (default 100).
    #[arg(long, value_name = "N")]
    target_pps: Option<u32>,
    /// Echo requests per destination per round (default 0: no ping).
    #[arg(long, value_name = "N")]
    ping_count: Option<u32>,
    /// Time between echo requests (default 1s).
    #[arg(long, value_name = "DURATION")]
    ping_interval: Option<String>,
    /// CA certificate (PEM) of the collector, instead of the system roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Allow a plain http:// collector (tokens and results unencrypted).
    #[arg(long)]
    insecure_http: bool,
    /// Largest spool on disk (default 256MiB); the oldest results go first.
    #[arg(long, value_name = "SIZE")]
    spool_max: Option<String>,
    /// Longest wait between upload retries (default 60s).
    #[arg(long, value_name = "DURATION")]
    retry_max: Option<String>,
    /// On SIGTERM, time to upload what is spooled before exiting (default 5s).
    #[arg(long, value_name = "DURATION")]
    shutdown_grace: Option<String>,
    /// Serve the agent's /metrics and /healthz on ADDR:PORT.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Log format on stderr: text (default) or json.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
}

impl Args {
    /// The flags as a raw configuration layer (only what was given).
    fn raw(&self) -> RawConfig {
        RawConfig {
            collector: self.collector.clone(),
            token_file: self.token_file.clone(),
            id: self.id.clone(),
            targets: self.targets.clone(),
            allow: self.allow.clone(),
            preset: self.preset.clone(),
            allow_reserved: self.allow_reserved.then_some(true),
            pps: self.pps,
            interval: self.interval.clone(),
            spool: self.spool.clone(),
            protocol: self.protocol.clone(),
            port: self.port,
            first_ttl: self.first_ttl,
            max_ttl: self.max_ttl,
            probes: self.probes,
            wait: self.wait.clone(),
            gap_limit: self.gap_limit,
            flows: self.flows,
            hosts: self.hosts.clone(),
            window: self.no_window.then_some(false),
            full_every: self.full_every,
            target_pps: self.target_pps,
            ping_count: self.ping_count,
            ping_interval: self.ping_interval.clone(),
            ca_file: self.ca_file.clone(),
            insecure_http: self.insecure_http.then_some(true),
            spool_max: self.spool_max.clone(),
            retry_max: self.retry_max.clone(),
            shutdown_grace: self.shutdown_grace.clone(),
            metrics_listen: self.metrics_listen.clone(),
            log_format: self.log_format.clone(),
        }
    }
}

/// What `--dry-run` prints: what would be probed, within which boundary,
/// at what rate. Nothing is sent, no socket is opened.
fn dry_run(c: &Config, dsts: &[Destination]) {
    let t = &c.probe.trace;
    let units: std::collections::HashSet<_> = dsts.iter().map(|d| d.unit).collect();
    println!("tumen-agent dry run (nothing is sent)");
    println!("id:        {}", c.id);
    println!(
        "targets:   {} prefix(es) -> {} /24-or-/48 unit(s), {} destination(s) ({} per unit)",
        c.targets.len(),
        units.len(),
        dsts.len(),
        match c.probe.hosts {
            Hosts::All => "all addresses".to_string(),
            Hosts::Count(n) => format!("{n}"),
        }
    );
    for target in &c.targets {
        println!("  {target}");
    }
    for d in dsts.iter().take(8) {
        println!("  e.g. {} (unit {})", d.addr, d.unit);
    }
    let allow: Vec<String> = c.allow.prefixes().iter().map(ToString::to_string).collect();
    println!("allow:     {}", allow.join(", "));
    println!(
        "trace:     {:?}{} ttl {}..={}, {} attempt(s) per hop, wait {:?}, gap limit {}, {} flow(s)",
        t.protocol,
        match t.protocol {
            tumen_agent::packet::Protocol::Icmp => String::new(),
            _ => format!(" port {}", t.port),
        },
        t.first_ttl,
        t.max_ttl,
        t.probes,
        t.wait,
        t.gap_limit,
        t.flows
    );
    let worst = dsts.len() as u64
        * u64::from(t.max_ttl - t.first_ttl + 1)
        * u64::from(t.probes)
        * u64::from(t.flows);
    println!(
        "windows:   {} (a full trace per unit every {} rounds and on any change)",
        if c.probe.window { "on" } else { "off" },
        c.probe.full_every
    );
    println!(
        "rate cap:  {} probes/s (global), {:.0} probes/s per destination",
        c.pps,
        1.0 / t.target_gap.as_secs_f64()
    );
    println!(
        "bound:     at most {worst} probes per round (every hop of every flow unanswered), \
         so at least {:.1} s per round at the cap in that worst case",
        worst as f64 / f64::from(c.pps)
    );
    if c.probe.ping_count > 0 {
        println!(
            "ping:      {} echo request(s) per destination, {:?} apart",
            c.probe.ping_count, c.probe.ping_interval
        );
    }
    println!("interval:  {} s between rounds", c.interval.as_secs_f64());
    match &c.delivery {
        Some(d) => println!(
            "collector: {} (spool {}, at most {} MiB; retries up to {} s apart)",
            d.collector,
            d.spool.display(),
            d.spool_max >> 20,
            d.retry_max.as_secs_f64()
        ),
        None => println!("collector: none (results are printed as JSON lines)"),
    }
}

/// Writes records as JSON lines; false once stdout is gone.
fn emit(out: &mut std::io::StdoutLock<'_>, r: &Record) -> bool {
    match serde_json::to_string(r) {
        Ok(line) => writeln!(out, "{line}").and_then(|()| out.flush()).is_ok(),
        Err(_) => true,
    }
}

/// Where a running agent's results go: the spool (with a collector) or
/// stdout.
struct Sink {
    spool: Option<Arc<Mutex<Spool>>>,
    wake: Arc<Notify>,
    last_sync: std::time::Instant,
    last_error: Option<std::time::Instant>,
    last_drop_log: Option<std::time::Instant>,
    dropped_unlogged: u64,
    stdout_ok: bool,
}

impl Sink {
    fn put(&mut self, r: &Record) {
        let Some(spool) = &self.spool else {
            let mut out = std::io::stdout().lock();
            self.stdout_ok &= emit(&mut out, r);
            return;
        };
        let line = match serde_json::to_vec(r) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tumen-agent: cannot encode a result: {e}");
                return;
            }
        };
        let mut s = spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dropped_before = s.stats.dropped_full;
        let appended = s.append(&line);
        let made_room = s.stats.dropped_full - dropped_before;
        if made_room > 0 && appended.is_ok() {
            self.dropped_unlogged += made_room;
            if self
                .last_drop_log
                .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
            {
                eprintln!(
                    "tumen-agent: spool full (bound {} MiB or disk): dropped the {} oldest \
                     result(s) to make room ({} in all); probing continues",
                    s.max_bytes() >> 20,
                    self.dropped_unlogged,
                    s.stats.dropped_full
                );
                self.dropped_unlogged = 0;
                self.last_drop_log = Some(std::time::Instant::now());
            }
        }
        if let Err(e) = appended {
            // Logged at most every 10 s; every loss is counted in the
            // spool's statistics (and /metrics).
            if self
                .last_error
                .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
            {
                let st = s.stats;
                eprintln!(
                    "tumen-agent: spool: {e}; result dropped (dropped so far: {} full, {} write \
                     errors); probing continues",
                    st.dropped_full, st.dropped_write_error
                );
                self.last_error = Some(std::time::Instant::now());
            }
        }
        if self.last_sync.elapsed() >= Duration::from_secs(1) {
            drop(s);
            self.sync();
        }
    }

    /// Makes spooled results durable and tells the uploader.
    fn sync(&mut self) {
        if let Some(spool) = &self.spool {
            let mut s = spool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(e) = s.sync() {
                eprintln!("tumen-agent: spool: {e}");
            }
            self.last_sync = std::time::Instant::now();
            self.wake.notify_one();
        }
    }
}

/// The spool, uploader and metrics listener of a running agent.
struct Delivering {
    spool: Arc<Mutex<Spool>>,
    spool_dir: std::path::PathBuf,
    uploader: Uploader,
    grace: Duration,
}

/// Why delivery cannot start.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("{0}: the agent must be able to create and write its spool directory (--spool DIR)")]
    Spool(#[source] tumen_agent::spool::SpoolError),
    #[error(transparent)]
    Token(#[from] upload::TokenError),
    #[error(transparent)]
    Client(#[from] upload::ClientError),
}

impl DeliveryError {
    /// The exit code: an input that cannot be read, one that holds
    /// nothing usable, a spool that cannot be created.
    fn exit_code(&self) -> u8 {
        use upload::{ClientError as C, TokenError as T};
        match self {
            Self::Spool(_) => EXIT_CANTCREAT,
            Self::Token(T::Read { .. }) | Self::Client(C::CaRead { .. }) => EXIT_NOINPUT,
            Self::Token(T::Empty { .. })
            | Self::Client(C::CaPem { .. } | C::CaCert { .. } | C::CaEmpty { .. }) => EXIT_DATAERR,
            Self::Client(C::NoRoots { .. }) => EXIT_OSFILE,
            Self::Client(C::Tls(_) | C::Http(_)) => EXIT_SOFTWARE,
        }
    }
}

/// Opens the spool and builds the HTTP client (before any socket).
fn prepare_delivery(d: &Delivery) -> Result<Delivering, DeliveryError> {
    let mut sc = SpoolConfig::new(&d.spool);
    sc.max_bytes = d.spool_max;
    sc.segment_bytes = sc.segment_bytes.min((d.spool_max / 8).max(64 << 10));
    let spool = Spool::open(sc).map_err(DeliveryError::Spool)?;
    for note in &spool.recovery_notes {
        eprintln!("tumen-agent: spool recovery: {note}");
    }
    if spool.pending_records() > 0 {
        eprintln!(
            "tumen-agent: spool {} holds {} result(s) not yet uploaded; they go first",
            d.spool.display(),
            spool.pending_records()
        );
    }
    let mut uc = UploadConfig::new(d.collector.clone(), d.token_file.clone());
    uc.ca_file = d.ca_file.clone();
    uc.backoff_max = d.retry_max;
    uc.backoff_min = uc.backoff_min.min(d.retry_max);
    upload::read_token(&d.token_file)?;
    let client = upload::client(&uc)?;
    let spool = Arc::new(Mutex::new(spool));
    Ok(Delivering {
        uploader: Uploader {
            cfg: uc,
            client,
            spool: spool.clone(),
            stats: Arc::default(),
        },
        spool,
        spool_dir: d.spool.clone(),
        grace: d.shutdown_grace,
    })
}

/// A task of the agent's own (uploads, the schedule, the metrics
/// listener), named in its log lines, watched while the agent runs and
/// stopped on shutdown: no task's end goes unsaid.
struct Task {
    name: &'static str,
    handle: tokio::task::JoinHandle<()>,
    /// Its early end has been logged.
    said: bool,
}

impl Task {
    fn spawn(name: &'static str, work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            name,
            handle: tokio::spawn(work),
            said: false,
        }
    }

    /// Logs once if the task has ended while the agent runs (a panic:
    /// its message is on stderr just before).
    fn check(&mut self) {
        if !self.said && self.handle.is_finished() {
            eprintln!(
                "tumen-agent: the {} task has ended; probing continues without it",
                self.name
            );
            self.said = true;
        }
    }

    /// Waits at most `limit` for the task to end (it has been told to
    /// stop), then aborts it. True if it ended by itself.
    async fn finish(mut self, limit: Duration) -> bool {
        match tokio::time::timeout(limit, &mut self.handle).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                eprintln!("tumen-agent: the {} task failed: {e}", self.name);
                true
            }
            Err(_) => {
                self.handle.abort();
                false
            }
        }
    }
}

/// The schedule task (with a collector): asks the collector for this
/// agent's schedule once per round interval, applies it within the local
/// limits, reports what it refused, and hands each new plan to the round
/// loop through a watch channel; the loop puts it in force at its next
/// round boundary. It runs beside the rounds, never in their way: a
/// collector that hangs (stopped, overloaded, hostile) delays the next
/// schedule, never a probe.
struct Control {
    client: reqwest::Client,
    collector: String,
    token_file: std::path::PathBuf,
    cache: std::path::PathBuf,
    etag: Option<String>,
    last_error: Option<String>,
    config: Arc<Config>,
    status: Arc<Status>,
    /// Address families with open sockets.
    v4: bool,
    v6: bool,
    /// Refusals of the schedule just applied, not yet reported.
    unreported: Option<(String, Vec<schedule::Refusal>)>,
}

impl Control {
    /// Fetches, applies and reports until `stop`; `every`: the interval of
    /// the plan in force.
    async fn run(
        mut self,
        plans: watch::Sender<Option<Plan>>,
        mut stop: watch::Receiver<bool>,
        mut every: Duration,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let fetched = tokio::select! {
                p = self.refresh() => p,
                _ = stop.changed() => return,
            };
            if let Some(p) = fetched {
                every = p.interval;
                plans.send_replace(Some(p));
            }
            if let Some((etag, refused)) = self.unreported.take() {
                self.report(&etag, &refused, &mut stop).await;
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Fetches the schedule; a new plan when it changed.
    async fn refresh(&mut self) -> Option<Plan> {
        let (config, status) = (self.config.clone(), self.status.clone());
        let token = match upload::read_token(&self.token_file) {
            Ok(t) => t,
            Err(e) => {
                self.error(e);
                return None;
            }
        };
        match schedule::fetch(&self.client, &self.collector, &token, self.etag.as_deref()).await {
            Fetched::NotModified => None,
            Fetched::New(cached) => {
                self.last_error = None;
                if let Err(e) = schedule::save_cache(&self.cache, &cached) {
                    eprintln!("tumen-agent: {e}");
                }
                let (plan, refused) = schedule::apply(&config, &cached.schedule, self.v4, self.v6);
                eprintln!(
                    "tumen-agent: schedule {} from the collector: {} target(s), every {} s, \
                     {} pps; {} item(s) refused",
                    upload::printable(&cached.etag),
                    plan.targets.len(),
                    plan.interval.as_secs(),
                    plan.pps,
                    refused.len()
                );
                note_refusals(&status, &refused);
                status.schedule_fetched.store(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    std::sync::atomic::Ordering::Relaxed,
                );
                self.unreported = Some((cached.etag.clone(), refused));
                self.etag = Some(cached.etag);
                Some(plan)
            }
            Fetched::NoSchedule => {
                self.last_error = None;
                if self.etag.take().is_some() {
                    eprintln!(
                        "tumen-agent: the collector withdrew the schedule: local configuration"
                    );
                    let _ = std::fs::remove_file(&self.cache);
                    note_refusals(&status, &[]);
                    return Some(Plan::local(&config));
                }
                None
            }
            Fetched::Failed(e) => {
                self.error(format!(
                    "schedule: {}; keeping the one in force",
                    upload::printable(&e.to_string())
                ));
                None
            }
        }
    }

    /// Tells the collector what was refused (an empty list clears its
    /// record); a failure is logged, not retried: the next schedule
    /// brings the next report.
    async fn report(
        &mut self,
        etag: &str,
        refused: &[schedule::Refusal],
        stop: &mut watch::Receiver<bool>,
    ) {
        let token = match upload::read_token(&self.token_file) {
            Ok(t) => t,
            Err(e) => {
                self.error(e);
                return;
            }
        };
        let sent = tokio::select! {
            r = schedule::report(&self.client, &self.collector, &token, etag, refused) => r,
            _ = stop.changed() => return,
        };
        if let Err(e) = sent {
            eprintln!(
                "tumen-agent: reporting schedule refusals: {}",
                upload::printable(&e.to_string())
            );
        }
    }

    /// Logs an error once until it changes.
    fn error(&mut self, e: impl std::fmt::Display) {
        let e = e.to_string();
        if self.last_error.as_ref() != Some(&e) {
            eprintln!("tumen-agent: {e}");
            self.last_error = Some(e);
        }
    }
}

fn note_refusals(status: &Status, refused: &[schedule::Refusal]) {
    use std::sync::atomic::Ordering;
    for r in refused {
        // Items quote the collector's schedule: escaped, one line each.
        eprintln!(
            "tumen-agent: schedule: refused {}: {}",
            upload::printable(&r.item),
            upload::printable(&r.why)
        );
    }
    status
        .schedule_refusals_total
        .fetch_add(refused.len() as u64, Ordering::Relaxed);
    status
        .schedule_refused_now
        .store(refused.len() as u64, Ordering::Relaxed);
}

/// Puts a plan in force: targets, protocol, attempts, rate.
fn replan(
    config: &Config,
    prober: &mut Prober<RawNetwork>,
    dsts: &mut Vec<Destination>,
    plan: &mut Plan,
    mut next: Plan,
    can_ping: bool,
) {
    if next.ping_count > 0 && !can_ping {
        eprintln!(
            "tumen-agent: schedule: refused ping_count {}: no ping sockets",
            next.ping_count
        );
        next.ping_count = 0;
    }
    match destinations(&next.targets, config.probe.hosts) {
        Ok(d) => *dsts = d,
        Err(e) => {
            eprintln!("tumen-agent: schedule: {e}; plan not changed");
            return;
        }
    }
    prober.cfg.trace.protocol = next.protocol;
    prober.cfg.trace.port = next.port;
    prober.cfg.trace.probes = next.probes;
    prober.cfg.ping_count = next.ping_count;
    prober.gate = Gate::new(config.allow.clone(), next.pps);
    prober.target = next.targets.clone();
    *plan = next;
}

/// A 16-bit identifier for this agent's probes: the pid mixed with
/// randomness, so two agents on one host do not take each other's replies.
fn ident_seed() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    (std::process::id() as u16) ^ u16::from_be_bytes(b)
}

async fn probe(
    config: Config,
    dsts: Vec<Destination>,
    once: bool,
    delivering: Option<Delivering>,
) -> ExitCode {
    // With a collector, a schedule may name any target inside the
    // allow-list: open the families the allow-list has.
    let scheduled = delivering.is_some();
    let allow_has = |v6: bool| {
        scheduled
            && config
                .allow
                .prefixes()
                .iter()
                .any(|p| matches!(p, ipnet::IpNet::V6(_)) == v6)
    };
    let v4 = dsts.iter().any(|d| d.addr.is_ipv4()) || allow_has(false);
    let v6 = dsts.iter().any(|d| d.addr.is_ipv6()) || allow_has(true);
    let opened = RawNetwork::open(config.allow.clone(), v4, v6).and_then(|net| {
        let seed = ident_seed();
        let pingers = if config.probe.ping_count > 0 {
            Some(Pingers::open(v4, v6, seed ^ 0x8000)?)
        } else if scheduled {
            // A schedule may ask for echo requests; without the sockets
            // that part is refused, nothing else.
            Pingers::open(v4, v6, seed ^ 0x8000).ok()
        } else {
            None
        };
        Ok((net, pingers, seed))
    });
    let (net, pingers, seed) = match opened {
        Ok(x) => x,
        Err(e @ SocketError::Permission { .. }) => {
            eprintln!("tumen-agent: {e}");
            return ExitCode::from(EXIT_NOPERM);
        }
        Err(e) => {
            eprintln!("tumen-agent: {e}");
            return ExitCode::from(EXIT_OSERR);
        }
    };
    // The sockets are open: nothing else needs a capability.
    for note in sys::drop_privileges() {
        eprintln!("tumen-agent: privileges: {note}");
    }
    let left = sys::effective_caps();
    if !left.is_empty() {
        eprintln!("tumen-agent: still holding capabilities {left:?}");
    }
    let target = config.targets.clone();
    let gate = Gate::new(config.allow.clone(), config.pps);
    let mut prober = Prober::new(
        net,
        gate,
        Ident::from_seed(seed),
        config.id.clone(),
        config.probe.clone(),
        target,
    );
    let started = std::time::Instant::now();
    if once {
        let mut out = std::io::stdout().lock();
        let mut ok = true;
        prober.round(&dsts, &mut |r| ok &= emit(&mut out, &r)).await;
        if let Some(p) = &pingers {
            prober
                .ping(p, &dsts, &mut |r| ok &= emit(&mut out, &r))
                .await;
        }
        let s = prober.stats;
        eprintln!(
            "tumen-agent: {} destination(s), {} probes sent in {:.2} s, {} replies matched, \
             {} late, {} duplicate, {} unmatched, {} malformed, {} refused, {} send errors",
            dsts.len(),
            s.sent,
            started.elapsed().as_secs_f64(),
            s.matched,
            s.late,
            s.duplicate,
            s.unmatched,
            s.malformed,
            s.refused,
            s.send_errors
        );
        return ExitCode::SUCCESS;
    }
    let status = Arc::new(Status {
        agent: config.id.clone(),
        spool: delivering.as_ref().map(|d| d.spool.clone()),
        upload: delivering.as_ref().map(|d| d.uploader.stats.clone()),
        ..Status::default()
    });
    let mut metrics_task = None;
    if let Some(addr) = config.metrics_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                metrics_task = Some(Task::spawn("metrics", status::serve(l, status.clone())));
            }
            Err(e) => {
                eprintln!("tumen-agent: metrics_listen {addr}: {e}");
                return ExitCode::from(EXIT_OSERR);
            }
        }
    }
    let wake = Arc::new(Notify::new());
    // Probing has stopped (true): the uploader drains, the schedule task ends.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut control = delivering.as_ref().map(|d| Control {
        client: d.uploader.client.clone(),
        collector: d.uploader.cfg.collector.clone(),
        token_file: d.uploader.cfg.token_file.clone(),
        cache: schedule::cache_path(&d.spool_dir),
        etag: None,
        last_error: None,
        config: Arc::new(config.clone()),
        status: status.clone(),
        v4,
        v6,
        unreported: None,
    });
    let (mut upload_task, grace) = match delivering {
        Some(d) => {
            let w = wake.clone();
            let up = d.uploader;
            let stop = stop_rx.clone();
            (
                Some(Task::spawn("upload", async move { up.run(w, stop).await })),
                d.grace,
            )
        }
        None => (None, Duration::ZERO),
    };
    let mut sink = Sink {
        spool: status.spool.clone(),
        wake: wake.clone(),
        last_sync: std::time::Instant::now(),
        last_error: None,
        last_drop_log: None,
        dropped_unlogged: 0,
        stdout_ok: true,
    };
    let (mut term, mut int) = match (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("tumen-agent: cannot watch signals: {e}");
            return ExitCode::from(EXIT_OSERR);
        }
    };
    let mut plan = Plan::local(&config);
    let mut dsts = dsts;
    if let Some(c) = &mut control {
        match schedule::load_cache(&c.cache) {
            Ok(Some(cached)) => {
                eprintln!(
                    "tumen-agent: applying the cached schedule {}",
                    upload::printable(&cached.etag)
                );
                c.etag = Some(cached.etag.clone());
                let (p, refused) = schedule::apply(&config, &cached.schedule, v4, v6);
                note_refusals(&status, &refused);
                replan(
                    &config,
                    &mut prober,
                    &mut dsts,
                    &mut plan,
                    p,
                    pingers.is_some(),
                );
            }
            Ok(None) => {}
            Err(e) => eprintln!("tumen-agent: {e}"),
        }
    }
    // New plans from the schedule task; None until it has one.
    let (plans_tx, mut plans) = watch::channel(None::<Plan>);
    let mut schedule_task =
        control.map(|c| Task::spawn("schedule", c.run(plans_tx, stop_rx.clone(), plan.interval)));
    let mut tick = tokio::time::interval(plan.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {}
        }
        // A round boundary: the newest plan goes in force now, never in
        // the middle of a round.
        if plans.has_changed().unwrap_or(false) {
            let next = plans.borrow_and_update().clone();
            if let Some(p) = next {
                let interval = p.interval;
                let changed = interval != plan.interval;
                replan(
                    &config,
                    &mut prober,
                    &mut dsts,
                    &mut plan,
                    p,
                    pingers.is_some(),
                );
                if changed {
                    tick =
                        tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
            }
        }
        for t in [&mut upload_task, &mut schedule_task, &mut metrics_task]
            .into_iter()
            .flatten()
        {
            t.check();
        }
        let work = async {
            prober.round(&dsts, &mut |r| sink.put(&r)).await;
            if let Some(p) = pingers.as_ref().filter(|_| prober.cfg.ping_count > 0) {
                prober.ping(p, &dsts, &mut |r| sink.put(&r)).await;
            }
        };
        let stopped = tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => true,
            () = work => false,
        };
        sink.sync();
        {
            let s = prober.stats;
            let mut p = status
                .probe
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *p = ProbeCounters {
                rounds: prober.rounds,
                sent: s.sent,
                matched: s.matched,
                refused: s.refused,
                send_errors: s.send_errors,
            };
        }
        if stopped {
            break;
        }
        if !sink.stdout_ok {
            eprintln!("tumen-agent: stdout is closed; stopping");
            break;
        }
    }
    // Probing has stopped. What is spooled is durable; upload what the
    // grace period allows and leave the rest for the next start. The
    // schedule is of no use any more: its task ends at once.
    sink.sync();
    let _ = stop_tx.send(true);
    if let Some(task) = schedule_task {
        task.finish(Duration::from_secs(1)).await;
    }
    if let Some(task) = upload_task {
        if !task.finish(grace).await {
            let left = status.spool.as_ref().map_or(0, |s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pending_records()
            });
            eprintln!(
                "tumen-agent: grace period ({:.1} s) over: {left} result(s) stay in the spool \
                 for the next start",
                grace.as_secs_f64()
            );
        }
    }
    if let Some(task) = metrics_task {
        task.handle.abort();
    }
    eprintln!(
        "tumen-agent: stopped after {} round(s), {} probes sent",
        prober.rounds, prober.stats.sent
    );
    if let Some(spool) = &status.spool {
        let s = spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let st = s.stats;
        eprintln!(
            "tumen-agent: spool: {} appended, {} committed, {} pending, {} dropped (full), \
             {} dropped (write error), {} quarantined, {} torn, {} corrupt",
            st.appended,
            st.acked,
            s.pending_records(),
            st.dropped_full,
            st.dropped_write_error,
            st.quarantined,
            st.torn,
            st.corrupt
        );
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = Args::parse();
    let file = match &args.config {
        Some(path) => RawConfig::from_file(path),
        None => Ok(RawConfig::default()),
    };
    // The log format is needed before the configuration is validated, to
    // report its problems in it: the flag, else the file's key, else text
    // (an unknown one is among the problems reported).
    let format = args
        .log_format
        .as_deref()
        .or_else(|| file.as_ref().ok().and_then(|f| f.log_format.as_deref()))
        .and_then(|f| f.parse().ok())
        .unwrap_or_default();
    tumen_agent::logging::init(format);
    let file = match file {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("tumen-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match Config::validate(file.merge(args.raw())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tumen-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let dsts = match destinations(&config.targets, config.probe.hosts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tumen-agent: invalid configuration:\n  - {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.dry_run {
        dry_run(&config, &dsts);
        return ExitCode::SUCCESS;
    }
    // Last line of defence before any socket exists.
    if let Some(d) = dsts.iter().find(|d| !config.allow.permits(d.addr)) {
        let a: IpAddr = d.addr;
        eprintln!("tumen-agent: {a} is outside the allow-list; nothing was sent");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tumen-agent: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_OSERR);
        }
    };
    let delivering = match (&config.delivery, args.once) {
        (Some(d), false) => match prepare_delivery(d) {
            Ok(x) => Some(x),
            Err(e) => {
                eprintln!("tumen-agent: {e}");
                return ExitCode::from(e.exit_code());
            }
        },
        _ => None,
    };
    runtime.block_on(probe(config, dsts, args.once, delivering))
}
