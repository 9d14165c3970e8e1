//! `tumen-collector`: receives agents' results, infers upstreams, exports
//! metrics, and answers `infer` for any traceroute.
//!
//! `serve` runs the HTTP collector (ingest, store, `/metrics`, JSON API);
//! `infer` reads traceroutes (Linux/macOS text, `mtr --json`, RIPE Atlas
//! JSON, Tumen JSON lines) and prints the inferred upstream of each;
//! `token` makes an agent token.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Collector of Tumen: which upstream carries traffic into the target network.
#[derive(Debug, Parser)]
#[command(
    name = "tumen-collector",
    version = tumen_core::build::LONG_VERSION,
    about,
    long_about = None,
    override_usage = "tumen-collector <COMMAND>"
)]
struct Args {
    /// Always given, but optional to clap so that the hidden
    /// `--generate-assets` needs none.
    #[command(subcommand)]
    command: Option<Command>,
    /// Write the man pages and bash, zsh and fish completions into DIR
    /// (for packagers), and exit.
    #[arg(long, value_name = "DIR", hide = true, exclusive = true)]
    generate_assets: Option<PathBuf>,
}

// Parsed once at start: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve ingest, /metrics and the JSON API.
    Serve {
        /// Configuration file (TOML); flags override its values.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        flags: tumen_collector::serve::RawConfig,
    },
    /// Make a token for an agent: appends `NAME sha256:HASH` to the token
    /// file (created 0600) and prints the token, for the agent's --token-file.
    Token {
        /// Agent name (the agent's --id).
        name: String,
        /// Token file of the collector.
        #[arg(long, value_name = "PATH")]
        token_file: PathBuf,
        /// Add a further token for an agent that has one: both are valid
        /// until the old line is removed (rotation without downtime).
        #[arg(long)]
        rotate: bool,
    },
    /// Infer the upstream of traceroutes read from FILEs or `-` (stdin):
    /// Linux/BSD/macOS traceroute, Windows tracert (many languages), mtr
    /// (report, wide, CSV, XML, JSON), tracepath, paris-traceroute,
    /// scamper and trippy JSON, nmap, router CLIs, NextTrace/besttrace,
    /// RIPE Atlas JSON and `ripe-atlas report` text, Tumen JSON lines.
    Infer(InferArgs),
    /// The control plane offline: a timeline per target prefix of its
    /// BGP upstreams (the first AS outside the target from the origin),
    /// visibility and events, from MRT files (RIB dumps and updates,
    /// plain, gzip or bzip2), directories of them, or an archive.
    Bgp(BgpArgs),
}

/// `tumen-collector bgp`.
#[derive(Debug, clap::Args)]
struct BgpArgs {
    /// One JSON object: the rows, every event and a report per file.
    #[arg(long)]
    json: bool,
    /// MRT archive: a RouteViews or RIPE RIS base URL (e.g.
    /// https://data.ris.ripe.net/rrc00) read for --since..--until.
    #[arg(long = "bgp-archive", value_name = "URL")]
    archive: Option<String>,
    /// Start of the range (2017-10-01T09:00:00Z, 2017-10-01 09:00,
    /// 2017-10-01, or Unix seconds): the latest RIB dump at or before it,
    /// then the updates.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// End of the range [default: now].
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Read every RIB dump and updates file in the range, in time order
    /// (default with --since: the latest RIB at or before it, then the
    /// updates after that RIB).
    #[arg(long)]
    all_files: bool,
    /// The collector's name in the peers' names [default: from the URL or
    /// directory].
    #[arg(long, value_name = "NAME")]
    collector: Option<String>,
    /// ASN-to-organisation file (`4837 china-unicom` per line), over the embedded one.
    #[arg(long, value_name = "FILE")]
    orgs: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// MRT files or directories (searched for rib./bview./updates. files).
    #[arg(value_name = "FILE|DIR")]
    inputs: Vec<PathBuf>,
}

/// `tumen-collector infer`.
#[derive(Debug, clap::Args)]
struct InferArgs {
    /// One JSON object per trace.
    #[arg(long)]
    json: bool,
    /// Print a table per trace: every hop's address, host name, AS,
    /// organisation, inside or outside, and the rule that decided it.
    #[arg(long)]
    explain: bool,
    /// Refuse the input at the first line that cannot be read (default:
    /// skip it with a warning on standard error).
    #[arg(long)]
    strict: bool,
    /// Read as this format instead of detecting it (e.g. tracert,
    /// mtr-report, atlas; `--format list` lists them).
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Prefix-to-ASN table (pyasn dat, CAIDA pfx2as, iptoasn TSV, MRT RIB),
    /// over the embedded one; repeatable.
    #[arg(long = "asn-table", value_name = "FILE")]
    asn_tables: Vec<PathBuf>,
    /// ASN-to-organisation file (`4837 china-unicom` per line), over the embedded one.
    #[arg(long, value_name = "FILE")]
    orgs: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// IXP peering LAN list (PeeringDB `ixpfx` JSON, CAIDA IXP JSON lines,
    /// or `prefix name` text), over the embedded one; repeatable.
    #[arg(long = "ixp", value_name = "FILE")]
    ixps: Vec<PathBuf>,
    /// Do not use the embedded IXP list.
    #[arg(long)]
    no_default_ixps: bool,
    /// Traceroute inputs, or `-` for standard input.
    #[arg(value_name = "FILE")]
    inputs: Vec<String>,
}

/// The target network (`infer`, `bgp`): the DPRK preset unless given.
#[derive(Debug, clap::Args)]
struct TargetArgs {
    /// Target prefix (repeatable); replaces the DPRK preset.
    #[arg(long = "target", value_name = "PREFIX")]
    targets: Vec<String>,
    /// Target AS (repeatable): inside means originated by it. Replaces the
    /// DPRK preset; combines with --target and --target-country.
    #[arg(long = "target-asn", value_name = "ASN")]
    target_asns: Vec<String>,
    /// Target country (ISO code, e.g. KP): every block and AS the RIR
    /// statistics files (--delegated) give it.
    #[arg(long = "target-country", value_name = "CC")]
    target_countries: Vec<String>,
    /// RIR delegated statistics file (`delegated-apnic-extended-latest`
    /// and the like), for --target-country; repeatable.
    #[arg(long, value_name = "FILE")]
    delegated: Vec<PathBuf>,
}

fn bgp_cmd(a: &BgpArgs) -> ExitCode {
    use std::sync::Arc;
    use tumen_collector::bgp::timeline::{parse_time, Timeline};
    use tumen_collector::bgp::{archive, model, mrt, Message};
    use tumen_collector::orgs::Orgs;
    let fail = |code, msg: String| fail_in("bgp", code, msg);
    if a.inputs.is_empty() && a.archive.is_none() {
        return fail(
            EXIT_USAGE,
            "give MRT files or directories, or --bgp-archive URL --since TIME".into(),
        );
    }
    if a.archive.is_some() && !a.inputs.is_empty() {
        return fail(EXIT_USAGE, "give files or --bgp-archive, not both".into());
    }
    let time = |flag: &str, v: &Option<String>| -> Result<Option<u64>, String> {
        v.as_deref()
            .map(|t| parse_time(t).map_err(|e| format!("--{flag} {t:?}: {e}")))
            .transpose()
    };
    let (since, until) = match (time("since", &a.since), time("until", &a.until)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return fail(EXIT_USAGE, e),
    };
    if a.archive.is_some() && since.is_none() {
        return fail(EXIT_USAGE, "--bgp-archive needs --since".into());
    }
    let now = tumen_core::now_ms() / 1000;
    let (since_s, until_s) = (since.unwrap_or(0), until.unwrap_or(now));
    if since_s > until_s {
        return fail(EXIT_USAGE, "--since is after --until".into());
    }
    let target = match target_from(&a.target) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let mut orgs = Orgs::default();
    if let Some(path) = &a.orgs {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(EXIT_NOINPUT, format!("--orgs {}: {e}", path.display())),
        };
        if let Err(e) = orgs.extend_from(&text, &path.display().to_string()) {
            return fail(EXIT_USAGE, format!("--orgs {e}"));
        }
    }
    let keep = mrt::Overlapping(target.prefixes.clone());
    let mut options = archive::ArchiveOptions::new(since_s, until_s);
    if since.is_none() || a.all_files {
        options.select = archive::Select::All;
    }
    let mut messages: Vec<Message> = Vec::new();
    let mut reports: Vec<mrt::MrtReport> = Vec::new();
    if let Some(base) = &a.archive {
        let read = mrt::ReadOptions {
            collector: a
                .collector
                .clone()
                .unwrap_or_else(|| tumen_collector::serve::bgp::collector_name(base)),
            ..Default::default()
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => return fail(EXIT_OSERR, format!("tokio runtime: {e}")),
        };
        let done = runtime.block_on(async {
            let client = archive::client().map_err(|e| e.to_string())?;
            let archive = archive::HttpArchive::new(client, base, options.clone());
            let keep: Arc<dyn mrt::Keep + Send + Sync> = Arc::new(keep.clone());
            archive
                .read(&read, keep, Vec::new())
                .await
                .map_err(|e| e.to_string())
        });
        match done {
            Ok((r, m)) => {
                reports = r;
                messages = m;
            }
            Err(e) => return fail(EXIT_NOINPUT, e),
        }
    } else {
        // Files in the order of the times in their names (a RIB before
        // the updates of its minute); names without one, as given.
        type Named = Option<(u64, archive::FileKind)>;
        let mut files: Vec<(Named, PathBuf, String)> = Vec::new();
        for input in &a.inputs {
            let collector = a
                .collector
                .clone()
                .unwrap_or_else(|| tumen_collector::serve::bgp::collector_of_path(input));
            if input.is_dir() {
                match archive::list_dir(input, &options) {
                    Ok(list) => files.extend(list.into_iter().map(|f| {
                        (
                            Some((f.time, f.kind)),
                            PathBuf::from(f.location),
                            collector.clone(),
                        )
                    })),
                    Err(e) => return fail(EXIT_NOINPUT, e.to_string()),
                }
            } else {
                let named = input
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(archive::parse_name)
                    .map(|(k, t)| (t, k));
                files.push((named, input.clone(), collector));
            }
        }
        if files.iter().all(|f| f.0.is_some()) {
            files.sort_by_key(|f| f.0);
        }
        for (_, path, collector) in &files {
            // A RIB dump cut short still says what it holds (the
            // report says where it ends).
            let read = mrt::ReadOptions {
                collector: collector.clone(),
                partial_snapshot: true,
            };
            match mrt::read_file(path, &read, &keep, &mut messages) {
                Ok(r) => reports.push(r),
                Err(e) => return fail(EXIT_NOINPUT, format!("{}: {e}", path.display())),
            }
        }
    }
    let mut timeline = Timeline::new(model::Model::new(target, orgs, model::Settings::default()));
    for m in messages {
        timeline.feed(m);
    }
    for r in &reports {
        eprintln!("{r}");
    }
    if a.json {
        let files: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "records": r.records, "routes": r.routes,
                    "updates": r.updates, "faults": r.faults, "truncated": r.truncated,
                })
            })
            .collect();
        let out = serde_json::json!({
            "first_ms": timeline.first_ms,
            "rows": timeline.rows,
            "events": timeline.events,
            "prefixes": timeline.model.prefixes(),
            "files": files,
        });
        println!("{out}");
    } else {
        print!("{}", timeline.render());
    }
    ExitCode::SUCCESS
}

/// Exit code for bad command-line values (BSD `EX_USAGE`).
const EXIT_USAGE: u8 = 64;
/// Exit code for an input that cannot be parsed (BSD `EX_DATAERR`).
const EXIT_DATAERR: u8 = 65;
/// Exit code for an input that cannot be opened (BSD `EX_NOINPUT`).
const EXIT_NOINPUT: u8 = 66;

/// Exit code for an OS error such as a port in use (BSD `EX_OSERR`).
const EXIT_OSERR: u8 = 71;
/// Exit code for a store that cannot be opened or written (`EX_IOERR`).
const EXIT_IOERR: u8 = 74;
/// Exit code for a file that cannot be created (`EX_CANTCREAT`).
const EXIT_CANTCREAT: u8 = 73;

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tumen-collector infer: {msg}");
    ExitCode::from(code)
}

fn fail_in(cmd: &str, code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tumen-collector {cmd}: {msg}");
    ExitCode::from(code)
}

fn serve_cmd(config: Option<&PathBuf>, flags: tumen_collector::serve::RawConfig) -> ExitCode {
    use tumen_collector::serve::{self, RawConfig, StartError};
    let base = match config {
        Some(p) => match RawConfig::from_file(p) {
            Ok(r) => r,
            Err(e) => return fail_in("serve", EXIT_USAGE, e),
        },
        None => RawConfig::default(),
    };
    let config = match base.merge(flags).validate() {
        Ok(c) => c,
        Err(e) => return fail_in("serve", EXIT_USAGE, e),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // bgpkit-parser warns on every BMP peer-up whose OPEN
                // messages it measures differently; what matters of its
                // errors reaches us as results, counted and logged here.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,bgpkit_parser=error")),
        )
        .with_writer(std::io::stderr);
    match config.log_format {
        // Fields are JSON strings: escaped whatever a peer put in them.
        serve::LogFormat::Json => logs.json().init(),
        // Colour codes only on a terminal, not in journald or files.
        serve::LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("collector")
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail_in("serve", EXIT_OSERR, format!("tokio runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let listener = tumen_httpd::bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                " (is another collector running? choose another --listen)"
            } else {
                ""
            },
            source,
        })?;
        tracing::info!(listen = %config.listen, "listening");
        serve::run(
            config,
            listener,
            shutdown_signal(),
            std::time::Duration::from_secs(10),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ StartError::Config(_)) | Err(e @ StartError::Tokens(_)) => {
            fail_in("serve", EXIT_USAGE, e)
        }
        Err(e @ StartError::Input(_)) | Err(e @ StartError::Tls(_)) => {
            fail_in("serve", EXIT_NOINPUT, e)
        }
        Err(e @ StartError::Store(_)) => fail_in("serve", EXIT_IOERR, e),
        Err(e @ StartError::Bind { .. }) | Err(e @ StartError::Io(_)) => {
            fail_in("serve", EXIT_OSERR, e)
        }
    }
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            // Without signal handlers, run until killed.
            std::future::pending::<()>().await;
        }
    }
}

fn token_cmd(name: &str, path: &std::path::Path, rotate: bool) -> ExitCode {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use tumen_collector::serve::auth;
    if !auth::valid_agent_name(name) {
        return fail_in(
            "token",
            EXIT_USAGE,
            format!("agent name {name:?} must be 1-64 of [A-Za-z0-9._-]"),
        );
    }
    if path.exists() {
        match auth::Tokens::load(path) {
            Ok(_) if file_names_agent(path, name) && !rotate => {
                return fail_in(
                    "token",
                    EXIT_USAGE,
                    format!(
                        "{} already has agent {name:?}: use --rotate to add a second token \
                         (both valid until you delete the old line), or remove its line first",
                        path.display()
                    ),
                )
            }
            Ok(_) => {}
            Err(e) => return fail_in("token", EXIT_USAGE, e),
        }
    }
    let token = match auth::new_token() {
        Ok(t) => t,
        Err(e) => return fail_in("token", EXIT_OSERR, format!("random token: {e}")),
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            writeln!(f, "{}", auth::file_line(name, &token))?;
            f.sync_all()
        });
    if let Err(e) = appended {
        return fail_in("token", EXIT_CANTCREAT, format!("{}: {e}", path.display()));
    }
    println!("{token}");
    eprintln!(
        "tumen-collector token: added {name:?} to {}; give the token above to the agent \
         (its --token-file); the collector stores only its hash and reloads the file within \
         seconds.",
        path.display()
    );
    ExitCode::SUCCESS
}

/// Does the token file name this agent?
fn file_names_agent(path: &std::path::Path, name: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .any(|l| l.split('#').next().unwrap_or("").split_whitespace().next() == Some(name))
    })
}

/// The target network from the flags (the DPRK preset when none).
fn target_from(a: &TargetArgs) -> Result<tumen_collector::infer::Target, String> {
    use tumen_collector::infer::Target;
    if a.targets.is_empty() && a.target_asns.is_empty() && a.target_countries.is_empty() {
        if !a.delegated.is_empty() {
            return Err("--delegated is read for --target-country, which is not given".into());
        }
        return Ok(Target::dprk());
    }
    let mut target = Target {
        prefixes: Vec::new(),
        asns: Default::default(),
    };
    for t in &a.targets {
        match t
            .parse::<ipnet::IpNet>()
            .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(n) => target.prefixes.push(n.trunc()),
            Err(_) => {
                return Err(format!(
                    "--target {t:?} is not an address or prefix (e.g. 175.45.176.0/24)"
                ))
            }
        }
    }
    for t in &a.target_asns {
        let digits = t
            .strip_prefix("AS")
            .or_else(|| t.strip_prefix("as"))
            .unwrap_or(t);
        match digits.parse::<u32>() {
            Ok(n) if n > 0 => {
                target.asns.insert(n);
            }
            _ => {
                return Err(format!(
                    "--target-asn {t:?} is not an AS number (e.g. 131279 or AS131279)"
                ))
            }
        }
    }
    if !a.target_countries.is_empty() {
        if a.delegated.is_empty() {
            return Err(
                "--target-country needs the RIR statistics files: add --delegated FILE for each \
                 registry (e.g. delegated-apnic-extended-latest from \
                 https://ftp.apnic.net/stats/apnic/)"
                    .into(),
            );
        }
        for cc in &a.target_countries {
            let h = tumen_collector::delegated::load_country(&a.delegated, cc)
                .map_err(|e| e.to_string())?;
            if h.is_empty() {
                return Err(format!(
                    "--target-country {cc}: the statistics files give it no address block and \
                     no AS (is the code right, and the file that of its registry?)"
                ));
            }
            target.prefixes.extend(h.prefixes.iter().copied());
            for r in &h.asns {
                // A country's AS ranges are small; a range beyond a
                // million is a broken file, cut rather than exhaust memory.
                target.asns.extend(r.clone().take(1_000_000));
            }
        }
    }
    Ok(target)
}

fn infer_cmd(a: &InferArgs) -> ExitCode {
    use std::io::Write as _;
    use std::ops::ControlFlow;
    use tumen_collector::infer::{self, Context, IxpLookup, NoIxps};
    use tumen_collector::input::{self as formats, Event, Format, Options};
    use tumen_collector::ixp::IxpList;
    use tumen_collector::orgs::Orgs;

    let format = match a.format.as_deref() {
        None => None,
        Some("list") => {
            for f in Format::ALL {
                println!("{:<14} {}", f.slug(), f.name());
            }
            return ExitCode::SUCCESS;
        }
        Some(name) => match Format::from_slug(name) {
            Some(f) => Some(f),
            None => {
                let slugs: Vec<&str> = Format::ALL.iter().map(|f| f.slug()).collect();
                return fail(
                    EXIT_USAGE,
                    format!(
                        "--format {name:?}: not a format I know ({})",
                        slugs.join(", ")
                    ),
                );
            }
        },
    };
    if a.inputs.is_empty() {
        return fail(
            EXIT_USAGE,
            "no input: give traceroute files, or `-` to read standard input",
        );
    }
    let target = match target_from(&a.target) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let table = match tumen_collector::table::build(&a.asn_tables) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_NOINPUT, e),
    };
    let mut orgs = Orgs::default();
    if let Some(path) = &a.orgs {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(EXIT_NOINPUT, format!("--orgs {}: {e}", path.display())),
        };
        if let Err(e) = orgs.extend_from(&text, &path.display().to_string()) {
            return fail(EXIT_USAGE, format!("--orgs {e}"));
        }
    }
    // The embedded list is used in place; copied only to be extended.
    let mut ixps: std::borrow::Cow<'_, IxpList> = if a.no_default_ixps {
        std::borrow::Cow::Owned(IxpList::new())
    } else {
        std::borrow::Cow::Borrowed(IxpList::default_list())
    };
    for path in &a.ixps {
        match IxpList::load(path) {
            Ok(l) => ixps.to_mut().extend(l),
            Err(e) => return fail(EXIT_NOINPUT, format!("--ixp {e}")),
        }
    }
    let ixps: &IxpList = &ixps;
    let ixp_lookup: &dyn IxpLookup = if ixps.is_empty() { &NoIxps } else { ixps };
    let ctx = Context {
        target: &target,
        lookup: &table,
        orgs: &orgs,
        ixps: ixp_lookup,
    };
    let options = Options {
        strict: a.strict,
        format,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut total = 0usize;
    let mut output_error: Option<std::io::Error> = None;
    let mut worst: Option<(u8, String)> = None;
    for input in &a.inputs {
        let (name, mut reader): (String, Box<dyn std::io::BufRead>) = if input == "-" {
            (
                "stdin".into(),
                Box::new(std::io::BufReader::new(std::io::stdin())),
            )
        } else {
            match std::fs::File::open(input) {
                Ok(f) => (
                    input.clone(),
                    Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
                ),
                Err(e) => {
                    eprintln!("tumen-collector infer: {input}: {e}");
                    worst.get_or_insert((EXIT_NOINPUT, String::new()));
                    continue;
                }
            }
        };
        let mut on = |event: Event| -> ControlFlow<()> {
            match event {
                Event::Skipped(e) => {
                    eprintln!("tumen-collector infer: warning: {e} (skipped)");
                    ControlFlow::Continue(())
                }
                Event::Trace(t) => {
                    let r = if a.explain {
                        let e = infer::explain(&t, &ctx);
                        if a.json {
                            serde_json::to_string(&e)
                                .map_err(std::io::Error::other)
                                .and_then(|l| writeln!(out, "{l}"))
                        } else {
                            writeln!(out, "{}", infer::render_explained(&e, &t.origin))
                        }
                    } else {
                        let i = infer::infer_with(&t, &ctx);
                        if a.json {
                            serde_json::to_writer(&mut out, &i)
                                .map_err(std::io::Error::other)
                                .and_then(|()| writeln!(out))
                        } else {
                            writeln!(out, "{}", infer::describe(&i))
                        }
                    };
                    match r {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(e) => {
                            output_error = Some(e);
                            ControlFlow::Break(())
                        }
                    }
                }
            }
        };
        match formats::read_stream(&mut reader, &name, options, &mut on) {
            Ok(done) => {
                total += done.traces;
                if done.skipped > 0 {
                    eprintln!(
                        "tumen-collector infer: {name}: read {} trace{} as {}, skipped {} \
                         line{} (--strict refuses instead)",
                        done.traces,
                        if done.traces == 1 { "" } else { "s" },
                        done.format,
                        done.skipped,
                        if done.skipped == 1 { "" } else { "s" },
                    );
                }
            }
            Err(e) => {
                eprintln!("tumen-collector infer: {e}");
                worst = Some((EXIT_DATAERR, String::new()));
            }
        }
        if let Some(e) = output_error.take() {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            return fail(EXIT_IOERR, format!("standard output: {e}"));
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return fail(EXIT_IOERR, format!("standard output: {e}"));
        }
    }
    match worst {
        Some((code, _)) => ExitCode::from(code),
        None if total == 0 => ExitCode::SUCCESS,
        None => ExitCode::SUCCESS,
    }
}

fn main() -> ExitCode {
    use clap::CommandFactory;
    let args = Args::parse();
    if let Some(dir) = &args.generate_assets {
        return match tumen_core::assets::generate(Args::command(), dir) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail_in(
                "--generate-assets",
                EXIT_CANTCREAT,
                format!("cannot write into {}: {e}", dir.display()),
            ),
        };
    }
    match &args.command {
        Some(Command::Serve { config, flags }) => serve_cmd(config.as_ref(), flags.clone()),
        Some(Command::Token {
            name,
            token_file,
            rotate,
        }) => token_cmd(name, token_file, *rotate),
        Some(Command::Infer(a)) => infer_cmd(a),
        Some(Command::Bgp(a)) => bgp_cmd(a),
        // What clap says for a required subcommand, with the same exit code.
        None => Args::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "a command is required: serve, token, infer or bgp",
            )
            .exit(),
    }
}
