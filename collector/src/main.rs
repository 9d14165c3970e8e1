//! `tumen-collector`: receives agents' results, infers upstreams, exports
//! metrics, and answers `infer` for any traceroute.
//!
//! This build carries the command-line contract of DESIGN.md. Ingest,
//! storage, enrichment and inference arrive with issue 4; until then each
//! subcommand says so and exits non-zero rather than pretending to work.

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
        /// Prefix-to-ASN table; repeatable.
        #[arg(long = "asn-table", value_name = "FILE")]
        asn_tables: Vec<PathBuf>,
        /// Traceroute input, or `-` for standard input.
        input: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let what = match args.command {
        Command::Serve { .. } => "serve",
        Command::Infer { .. } => "infer",
    };
    eprintln!(
        "tumen-collector {what}: not part of this build yet (wire schema v{}).",
        tumen_wire::SCHEMA_VERSION
    );
    ExitCode::from(EXIT_UNAVAILABLE)
}
