//! `tumen-agent`: the probe agent users install on vantage points.
//!
//! This build carries the command-line contract of DESIGN.md and the
//! start-up refusal that contract requires (no target, no preset: no
//! probing). The probe engine itself arrives with issue 3; until then the
//! agent says so and exits non-zero rather than pretending to probe.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Exit code for a usage or configuration error (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;
/// Exit code when the requested work is not available in this build.
const EXIT_UNAVAILABLE: u8 = 69;

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
    /// Time between rounds, e.g. 60s.
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.targets.is_empty() && args.preset.is_none() && args.config.is_none() {
        eprintln!(
            "tumen-agent: no target given. Probing a country's network is a deliberate act: \
             name what to probe with --target PREFIX, --preset dprk, or `targets` in --config FILE."
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    eprintln!(
        "tumen-agent: the probe engine is not part of this build yet (wire schema v{}); \
         nothing was sent.",
        tumen_wire::SCHEMA_VERSION
    );
    ExitCode::from(EXIT_UNAVAILABLE)
}
