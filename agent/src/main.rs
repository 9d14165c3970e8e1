//! `tumen-agent`: the probe agent users install on vantage points.
//!
//! This build carries the command-line and configuration contract of
//! DESIGN.md: configuration file + flags, validated with every problem
//! reported at once (exit 64), the allow-list and the refusal of reserved
//! ranges, and `--dry-run`. The probe engine itself arrives with issue 3;
//! until then a real run says so and exits 69 rather than pretending.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tumen_agent::config::{Config, RawConfig};

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
        }
    }
}

/// What `--dry-run` prints: what would be probed, within which boundary,
/// at what rate. Nothing is sent.
fn dry_run(c: &Config) {
    let addrs: u128 = c
        .targets
        .iter()
        .map(|t| 1u128 << (t.max_prefix_len() - t.prefix_len()).min(127))
        .sum();
    println!("tumen-agent dry run (nothing is sent)");
    println!("id:        {}", c.id);
    println!(
        "targets:   {} prefix(es), {addrs} address(es)",
        c.targets.len()
    );
    for t in &c.targets {
        println!("  {t}");
    }
    let allow: Vec<String> = c.allow.prefixes().iter().map(ToString::to_string).collect();
    println!("allow:     {}", allow.join(", "));
    println!("rate cap:  {} probes/s (global)", c.pps);
    println!("interval:  {} s between rounds", c.interval.as_secs_f64());
    match &c.collector {
        Some(u) => println!("collector: {u}"),
        None => println!("collector: none (results would only be printed)"),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let file = match &args.config {
        Some(path) => match RawConfig::from_file(path) {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("tumen-agent: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => RawConfig::default(),
    };
    let config = match Config::validate(file.merge(args.raw())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tumen-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.dry_run {
        dry_run(&config);
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "tumen-agent: the probe engine is not part of this build yet (wire schema v{}); \
         nothing was sent.",
        tumen_wire::SCHEMA_VERSION
    );
    ExitCode::from(EXIT_UNAVAILABLE)
}
