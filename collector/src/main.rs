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
#[command(name = "tumen-collector", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
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
    /// Infer the upstream of traceroutes read from FILE or `-` (stdin).
    Infer {
        /// One JSON object per trace.
        #[arg(long)]
        json: bool,
        /// Prefix-to-ASN table (pyasn dat, CAIDA pfx2as, iptoasn TSV, MRT RIB),
        /// over the embedded one; repeatable.
        #[arg(long = "asn-table", value_name = "FILE")]
        asn_tables: Vec<PathBuf>,
        /// ASN-to-organisation file (`4837 china-unicom` per line), over the embedded one.
        #[arg(long, value_name = "FILE")]
        orgs: Option<PathBuf>,
        /// Target prefix (repeatable); replaces the DPRK preset.
        #[arg(long = "target", value_name = "PREFIX")]
        targets: Vec<String>,
        /// Traceroute input, or `-` for standard input.
        input: String,
    },
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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

fn infer_cmd(
    json: bool,
    asn_tables: &[PathBuf],
    orgs_file: Option<&PathBuf>,
    targets: &[String],
    input: &str,
) -> ExitCode {
    use std::io::Read;
    use tumen_collector::{infer, input as formats, orgs::Orgs};

    let table = match tumen_collector::table::build(asn_tables) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_NOINPUT, e),
    };
    let mut orgs = Orgs::default();
    if let Some(path) = orgs_file {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(EXIT_NOINPUT, format!("--orgs {}: {e}", path.display())),
        };
        if let Err(e) = orgs.extend_from(&text, &path.display().to_string()) {
            return fail(EXIT_USAGE, format!("--orgs {e}"));
        }
    }
    let target = if targets.is_empty() {
        infer::Target::dprk()
    } else {
        let mut prefixes = Vec::new();
        for t in targets {
            match t
                .parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            {
                Ok(n) => prefixes.push(n.trunc()),
                Err(_) => {
                    return fail(
                        EXIT_USAGE,
                        format!(
                            "--target {t:?} is not an address or prefix (e.g. 175.45.176.0/24)"
                        ),
                    )
                }
            }
        }
        infer::Target {
            prefixes,
            asns: Default::default(),
        }
    };
    let (name, text) = if input == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            return fail(EXIT_NOINPUT, format!("standard input: {e}"));
        }
        ("stdin".to_string(), s)
    } else {
        match std::fs::read_to_string(input) {
            Ok(s) => (input.to_string(), s),
            Err(e) => return fail(EXIT_NOINPUT, format!("{input}: {e}")),
        }
    };
    let read = match formats::read_traces(&text, &name) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_DATAERR, e),
    };
    for skipped in &read.skipped {
        eprintln!("tumen-collector infer: warning: {skipped} (line skipped)");
    }
    for t in &read.traces {
        let i = infer::infer(t, &target, &table, &orgs);
        if json {
            match serde_json::to_string(&i) {
                Ok(line) => println!("{line}"),
                Err(e) => return fail(EXIT_DATAERR, e),
            }
        } else {
            println!("{}", describe(&i));
        }
    }
    ExitCode::SUCCESS
}

/// One line per trace for people.
fn describe(i: &tumen_collector::infer::Inference) -> String {
    let target = i.target.map_or_else(|| "?".to_string(), |t| t.to_string());
    let asn = i
        .upstream_asn
        .map(|a| format!(" (AS{a})"))
        .unwrap_or_default();
    let mut s = format!(
        "{target}: upstream {}{asn}, {}, confidence {:.2}",
        i.upstream,
        if i.entered {
            "entered the target"
        } else {
            "did not enter the target"
        },
        i.confidence
    );
    if let Some(h) = &i.evidence.last_foreign {
        s.push_str(&format!("; last foreign hop {} {}", h.ttl, h.addr));
    }
    if let Some(a) = &i.evidence.terminal_annotation {
        s.push_str(&format!(" {a}"));
    }
    if let Some(h) = &i.evidence.first_inside {
        s.push_str(&format!("; first inside hop {} {}", h.ttl, h.addr));
    }
    if !i.evidence.as_path.is_empty() {
        let path: Vec<String> = i
            .evidence
            .as_path
            .iter()
            .map(|a| format!("AS{a}"))
            .collect();
        s.push_str(&format!("; AS path {}", path.join(" ")));
    }
    s
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Command::Serve { config, flags } => serve_cmd(config.as_ref(), flags.clone()),
        Command::Token {
            name,
            token_file,
            rotate,
        } => token_cmd(name, token_file, *rotate),
        Command::Infer {
            json,
            asn_tables,
            orgs,
            targets,
            input,
        } => infer_cmd(*json, asn_tables, orgs.as_ref(), targets, input),
    }
}
