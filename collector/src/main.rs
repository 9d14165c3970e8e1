//! `tumen-collector`: receives agents' results, infers upstreams, exports
//! metrics, and answers `infer` for any traceroute.
//!
//! `infer` works: it reads traceroutes (Linux/macOS text, `mtr --json`,
//! RIPE Atlas JSON, Tumen JSON lines) and prints the inferred upstream of
//! each. `serve` (ingest, store, metrics) is not in this build yet: it says
//! so and exits 69 rather than pretending to work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when the requested work is not available in this build.
const EXIT_UNAVAILABLE: u8 = 69;

/// Collector of Tumen: which upstream carries traffic into the target network.
#[derive(Debug, Parser)]
#[command(name = "tumen-collector", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve ingest, /metrics and the JSON API.
    Serve {
        /// Configuration file (TOML); flags override its values.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9640")]
        listen: SocketAddr,
        /// SQLite database path.
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Prefix-to-ASN table (pyasn dat, CAIDA pfx2as, iptoasn TSV, MRT RIB); repeatable.
        #[arg(long = "asn-table", value_name = "FILE")]
        asn_tables: Vec<PathBuf>,
        /// ASN-to-organisation file.
        #[arg(long, value_name = "FILE")]
        orgs: Option<PathBuf>,
        /// Target prefix (repeatable); defaults to the DPRK preset.
        #[arg(long = "target", value_name = "PREFIX")]
        targets: Vec<String>,
        /// Built-in target set.
        #[arg(long, value_name = "NAME")]
        preset: Option<String>,
        /// File of agent tokens.
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
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

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("tumen-collector infer: {msg}");
    ExitCode::from(code)
}

fn infer_cmd(
    json: bool,
    asn_tables: &[PathBuf],
    orgs_file: Option<&PathBuf>,
    targets: &[String],
    input: &str,
) -> ExitCode {
    use std::io::Read;
    use tumen_collector::{defaults, infer, input as formats, orgs::Orgs};

    let mut table = defaults::default_table();
    for path in asn_tables {
        match tumen_collector::table::PrefixTable::load(path) {
            Ok(t) => table.merge(t),
            Err(e) => return fail(EXIT_NOINPUT, format!("--asn-table {}: {e}", path.display())),
        }
    }
    table.freeze();
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
    let traces = match formats::read_traces(&text, &name) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_DATAERR, e),
    };
    for t in &traces {
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
        Command::Serve { .. } => {
            eprintln!(
                "tumen-collector serve: not part of this build yet (wire schema v{}).",
                tumen_wire::SCHEMA_VERSION
            );
            ExitCode::from(EXIT_UNAVAILABLE)
        }
        Command::Infer {
            json,
            asn_tables,
            orgs,
            targets,
            input,
        } => infer_cmd(*json, asn_tables, orgs.as_ref(), targets, input),
    }
}
