//! `tumen-agent`: the probe agent users install on vantage points.
//!
//! The binary is the edge: the command line, the configuration (file +
//! flags, every problem reported at once, exit 64), the log format, then
//! one of `--dry-run` (print the plan, send nothing), `--once` (one round,
//! JSON lines on stdout) or rounds every `interval` until SIGTERM/SIGINT.
//! It opens the raw sockets, drops every capability, hands the rest to
//! the library's runtime ([`tumen_agent::runtime::Agent`]) and turns the
//! outcome into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tumen_agent::config::{Config, Hosts, RawConfig};
use tumen_agent::round::{destinations, Destination};
use tumen_agent::runtime::delivery::{Delivering, DeliveryError};
use tumen_agent::runtime::shutdown::{until_signalled, Signals};
use tumen_agent::runtime::sockets::{self, Families, Sockets};
use tumen_agent::runtime::{Agent, RunError};
use tumen_agent::sys::SocketError;
use tumen_agent::upload::{ClientError, TokenError};

/// Exit code for a usage or configuration error (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;
/// Exit code when an input file holds nothing usable (BSD `EX_DATAERR`).
const EXIT_DATAERR: u8 = 65;
/// Exit code when an input file (the token, the CA) is missing or
/// unreadable (BSD `EX_NOINPUT`).
const EXIT_NOINPUT: u8 = 66;
/// Exit code for an internal error (BSD `EX_SOFTWARE`).
const EXIT_SOFTWARE: u8 = 70;
/// Exit code for another operating-system error (BSD `EX_OSERR`).
const EXIT_OSERR: u8 = 71;
/// Exit code when system files (the root certificates) are missing (BSD
/// `EX_OSFILE`).
const EXIT_OSFILE: u8 = 72;
/// Exit code when the spool cannot be created or written (BSD
/// `EX_CANTCREAT`).
const EXIT_CANTCREAT: u8 = 73;
/// Exit code when raw sockets may not be opened (BSD `EX_NOPERM`).
const EXIT_NOPERM: u8 = 77;

/// Probe agent of Tumen: traces toward the target network's prefixes and
/// reports hop data to a collector.
#[derive(Debug, Parser)]
#[command(name = "tumen-agent", version = tumen_core::build::LONG_VERSION, about, long_about = None)]
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
    /// Write the man page and bash, zsh and fish completions into DIR
    /// (for packagers), and exit.
    #[arg(long, value_name = "DIR", hide = true, exclusive = true)]
    generate_assets: Option<PathBuf>,
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
/// What `--dry-run` prints. Built whole, then written once: a reader
/// that stops early (`| head`) is not an error.
fn dry_run(c: &Config, dsts: &[Destination]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    // Writing into a String cannot fail.
    macro_rules! println {
        ($($t:tt)*) => { let _ = writeln!(out, $($t)*); };
    }
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
        Some(d) => {
            println!(
                "collector: {} (spool {}, at most {} MiB; retries up to {} s apart)",
                d.collector,
                d.spool.display(),
                d.spool_max >> 20,
                d.retry_max.as_secs_f64()
            );
        }
        None => {
            println!("collector: none (results are printed as JSON lines)");
        }
    }
    out
}

/// The exit code of a delivery that cannot start: an input that cannot
/// be read, one that holds nothing usable, a spool that cannot be created.
fn delivery_exit(e: &DeliveryError) -> u8 {
    use ClientError as C;
    use TokenError as T;
    match e {
        DeliveryError::Spool(_) => EXIT_CANTCREAT,
        DeliveryError::Token(T::Read { .. }) | DeliveryError::Client(C::CaRead { .. }) => {
            EXIT_NOINPUT
        }
        DeliveryError::Token(T::Empty { .. })
        | DeliveryError::Client(C::CaPem { .. } | C::CaCert { .. } | C::CaEmpty { .. }) => {
            EXIT_DATAERR
        }
        DeliveryError::Client(C::NoRoots { .. }) => EXIT_OSFILE,
        DeliveryError::Client(C::Tls(_) | C::Http(_)) => EXIT_SOFTWARE,
    }
}

/// Reads and validates the configuration, and installs the log in its
/// format; an error exit code when it is not valid (said).
/// `--generate-assets DIR`: the man page and completions, from this very
/// clap definition.
fn generate_assets(dir: &std::path::Path) -> ExitCode {
    use clap::CommandFactory;
    match tumen_core::assets::generate(Args::command(), dir) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tumen-agent: cannot write into {}: {e}", dir.display());
            ExitCode::from(EXIT_CANTCREAT)
        }
    }
}

fn configure(args: &Args) -> Result<(Config, Vec<Destination>), ExitCode> {
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
    let config = file
        .and_then(|file| Config::validate(file.merge(args.raw())))
        .map_err(|e| {
            tracing::error!("{e}");
            ExitCode::from(EXIT_CONFIG)
        })?;
    let dsts = destinations(&config.targets, config.probe.hosts).map_err(|e| {
        tracing::error!("invalid configuration:\n  - {e}");
        ExitCode::from(EXIT_CONFIG)
    })?;
    Ok((config, dsts))
}

/// Opens the sockets, drops the privileges and runs the agent.
async fn run(
    config: Config,
    dsts: Vec<Destination>,
    once: bool,
    delivering: Option<Delivering>,
) -> ExitCode {
    // With a collector, a schedule may name any target inside the
    // allow-list: open the families the allow-list has.
    let scheduled = delivering.is_some();
    let families = Families::needed(&config, &dsts, scheduled);
    let opened = match Sockets::open(&config, families, scheduled) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(match e {
                SocketError::Permission { .. } => EXIT_NOPERM,
                _ => EXIT_OSERR,
            });
        }
    };
    // The sockets are open: nothing else needs a capability.
    sockets::drop_privileges();
    let agent = Agent::new(config, dsts, opened.net, opened.ident, families)
        .with_pingers(opened.pingers)
        .with_delivery(delivering);
    if once {
        agent.once().await;
        return ExitCode::SUCCESS;
    }
    let signals = match Signals::watch() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch signals: {e}");
            return ExitCode::from(EXIT_OSERR);
        }
    };
    match until_signalled(signals, |shutdown| agent.run(shutdown)).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e @ RunError::Metrics { .. }) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_OSERR)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.generate_assets {
        return generate_assets(dir);
    }
    let (config, dsts) = match configure(&args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if args.dry_run {
        use std::io::Write as _;
        let text = dry_run(&config, &dsts);
        return match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            // `tumen-agent --dry-run | head`: the reader had enough.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tumen-agent: cannot write the dry run: {e}");
                ExitCode::from(EXIT_OSERR)
            }
        };
    }
    // Last line of defence before any socket exists.
    if let Some(d) = dsts.iter().find(|d| !config.allow.permits(d.addr)) {
        tracing::error!("{} is outside the allow-list; nothing was sent", d.addr);
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(EXIT_OSERR);
        }
    };
    // The spool and the token before any socket: a delivery that cannot
    // start needs no privilege to say so.
    let delivering = match (&config.delivery, args.once) {
        (Some(d), false) => match Delivering::prepare(d) {
            Ok(x) => Some(x),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(delivery_exit(&e));
            }
        },
        _ => None,
    };
    runtime.block_on(run(config, dsts, args.once, delivering))
}
