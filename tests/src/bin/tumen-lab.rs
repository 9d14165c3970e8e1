//! `tumen-lab`: bring lab scenarios up and down, run commands in lab nodes,
//! fire events, and show what is running.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::{Parser, Subcommand};
use tumen_lab::lab::{self, Lab, LabState};
use tumen_lab::{Proto, Scenario};

/// Network-namespace lab for Tumen: a simulated target Internet.
#[derive(Debug, Parser)]
#[command(name = "tumen-lab", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a scenario (a file, or a shipped name such as dprk-2017); prints the lab id.
    Up {
        /// Scenario file or shipped scenario name.
        scenario: String,
    },
    /// Build a scenario, run CMD with TUMEN_LAB_ID set, then tear the lab down.
    /// Prints the lab id first. If this process is killed, the lab is stale:
    /// `tumen-lab down --stale` removes it.
    Run {
        /// Scenario file or shipped scenario name.
        scenario: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Tear a lab down (the only one running, or --lab ID).
    Down {
        #[arg(long)]
        lab: Option<String>,
        /// Remove only leftovers: labs whose owning process died, and lab namespaces without state.
        #[arg(long, conflicts_with_all = ["lab", "all"])]
        stale: bool,
        /// Remove every lab.
        #[arg(long, conflicts_with = "lab")]
        all: bool,
    },
    /// Run a command inside a node: tumen-lab exec NODE -- CMD ARGS...
    Exec {
        #[arg(long)]
        lab: Option<String>,
        node: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Apply a scenario's named event (route changes) to a running lab.
    Event {
        #[arg(long)]
        lab: Option<String>,
        name: String,
    },
    /// List running labs, their nodes and the events applied.
    Status,
    /// Validate a scenario file without building it (needs no privilege).
    Check { scenario: String },
    /// Print the hops a trace from NODE to DST should show (after --event ...).
    Expect {
        scenario: String,
        node: String,
        dst: std::net::IpAddr,
        #[arg(long, default_value = "icmp", value_parser = ["icmp", "udp", "tcp"])]
        proto: String,
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// Print a scenario's lab ASN table in pyasn `dat` format.
    AsnTable { scenario: String },
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tumen-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The lab a command means: the one given, or the only one running.
fn pick_lab(given: Option<String>) -> anyhow::Result<String> {
    if let Some(id) = given {
        return Ok(id);
    }
    let labs = lab::list_labs()?;
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no lab is running (start one with `tumen-lab up SCENARIO`)"),
        many => bail!(
            "{} labs are running ({}): say which with --lab ID",
            many.len(),
            many.join(", ")
        ),
    }
}

/// `tumen-lab run`: a lab for the lifetime of a command. SIGINT, SIGTERM and
/// SIGHUP do not kill this process: they end the command (SIGTERM, then
/// SIGKILL after 5 s) and the lab is still torn down.
fn run_with_lab(scenario: &str, command: &[String]) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let l = Lab::up(Scenario::load(scenario)?)?;
    println!("{}", l.id());
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut child = match std::process::Command::new(&command[0])
        .args(&command[1..])
        .env("TUMEN_LAB_ID", l.id())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            l.down()?;
            bail!("run {:?}: {e}", command[0]);
        }
    };
    let mut stopping_since: Option<Instant> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if stop.load(Ordering::Relaxed) {
            match stopping_since {
                None => {
                    eprintln!(
                        "tumen-lab: stopping {:?}, then removing lab {}",
                        command[0],
                        l.id()
                    );
                    let _ = std::process::Command::new("kill")
                        .args(["-TERM", &child.id().to_string()])
                        .status();
                    stopping_since = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(5) => {
                    let _ = child.kill();
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    l.down()?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::Up { scenario } => {
            let s = Scenario::load(&scenario)?;
            let t = Instant::now();
            let state = Lab::up_detached(s)?;
            println!("{}", state.id);
            eprintln!(
                "tumen-lab: scenario {} up as lab {} in {:.2} s; `tumen-lab exec NODE -- CMD` to use it, `tumen-lab down` to remove it",
                state.scenario,
                state.id,
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Run { scenario, command } => return run_with_lab(&scenario, &command),
        Cmd::Down {
            lab: id,
            stale,
            all,
        } => {
            let t = Instant::now();
            let removed = if stale {
                lab::down_stale()?
            } else if all {
                let ids = lab::list_labs()?;
                for id in &ids {
                    lab::teardown(id)?;
                }
                ids
            } else {
                let id = pick_lab(id)?;
                lab::teardown(&id)?;
                vec![id]
            };
            for id in &removed {
                println!("{id}");
            }
            eprintln!(
                "tumen-lab: removed {} lab(s) in {:.2} s",
                removed.len(),
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Exec {
            lab: id,
            node,
            command,
        } => {
            let l = Lab::attach(&pick_lab(id)?)?;
            let mut c = l.command(&node, &command[0])?;
            c.args(&command[1..]);
            let err = c.exec();
            bail!("exec {:?} in {node}: {err}", command[0]);
        }
        Cmd::Event { lab: id, name } => {
            let mut l = Lab::attach(&pick_lab(id)?)?;
            let t = Instant::now();
            l.event(&name)?;
            eprintln!(
                "tumen-lab: lab {}: event {name} applied in {:.3} s",
                l.id(),
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Status => {
            let ids = lab::list_labs()?;
            if ids.is_empty() {
                println!("no lab running");
            }
            for id in ids {
                match LabState::read(&id) {
                    Ok(st) => {
                        let owner = match &st.owner {
                            None => "tumen-lab up".to_string(),
                            Some(o) if o.is_alive() => format!("pid {}", o.pid),
                            Some(o) => format!("pid {} (dead: stale)", o.pid),
                        };
                        println!("{id}  scenario {}  owner {owner}", st.scenario);
                        println!(
                            "  events: {}",
                            if st.events.is_empty() {
                                "none".into()
                            } else {
                                st.events.join(", ")
                            }
                        );
                        let s = Scenario::parse(&st.source, &st.scenario)?;
                        for n in &s.nodes {
                            println!(
                                "  {:<12} {:<8} {}",
                                n.name,
                                format!("{:?}", n.role).to_lowercase(),
                                tumen_lab::plan::ns_name(&id, &n.name)
                            );
                        }
                    }
                    Err(e) => println!(
                        "{id}  (no readable state: {e}; `tumen-lab down --stale` removes it)"
                    ),
                }
            }
        }
        Cmd::Check { scenario } => {
            let s = Scenario::load(&scenario)?;
            println!(
                "{}: ok ({} nodes, {} links, {} routes, {} events)",
                s.name,
                s.nodes.len(),
                s.links.len(),
                s.routes.len(),
                s.events.len()
            );
        }
        Cmd::Expect {
            scenario,
            node,
            dst,
            proto,
            events,
        } => {
            let s = Scenario::load(&scenario)?;
            let proto = match proto.as_str() {
                "udp" => Proto::Udp,
                "tcp" => Proto::Tcp,
                _ => Proto::Icmp,
            };
            let evs: Vec<&str> = events.iter().map(String::as_str).collect();
            let model = tumen_lab::Model::new(&s, &evs)?;
            for (i, path) in model.paths(&node, dst, proto)?.iter().enumerate() {
                if i > 0 {
                    println!("-- or (ECMP) --");
                }
                for (ttl, hop) in path.iter().enumerate() {
                    let asn = match hop {
                        tumen_lab::Hop::Reply { addr, .. } => s.asn_of(*addr).map(|a| {
                            let org = s.org_of(a).map(|o| o.id.as_str()).unwrap_or("-");
                            format!("AS{a} {org}")
                        }),
                        tumen_lab::Hop::Silent => None,
                    };
                    println!(
                        "{:>2}  {:<28} {}",
                        ttl + 1,
                        hop.to_string(),
                        asn.unwrap_or_default()
                    );
                }
            }
        }
        Cmd::AsnTable { scenario } => {
            print!("{}", Scenario::load(&scenario)?.asn_table_dat());
        }
    }
    Ok(ExitCode::SUCCESS)
}
