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
        /// Run BIRD 2 on the scenario's BGP speakers (its `[bgp]`): routes
        /// toward BGP peers come from BGP; returns once it has converged.
        #[arg(long)]
        bgp: bool,
    },
    /// Build a scenario, run CMD with TUMEN_LAB_ID set, then tear the lab down.
    /// Prints the lab id first. If this process is killed, the lab is stale:
    /// `tumen-lab down --stale` removes it.
    Run {
        /// Scenario file or shipped scenario name.
        scenario: String,
        /// Run BIRD 2 on the scenario's BGP speakers (as `up --bgp`).
        #[arg(long)]
        bgp: bool,
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
    /// Play a scenario's `[replay]` on BGP: each timed event at its lab
    /// time (real time compressed as the scenario says), then tear down.
    Replay {
        /// Scenario file or shipped scenario name (e.g. dyn-2017-10-01).
        scenario: String,
    },
    /// The MRT files of a BGP lab's route collector. Closed files are first
    /// archived as RouteViews and RIS publish theirs
    /// (bgpdata/YYYY.MM/{RIBS,UPDATES}/{rib,updates}.YYYYMMDD.HHMM.bz2 and
    /// rrc00/YYYY.MM/{bview,updates}.YYYYMMDD.HHMM.gz); the open ones are
    /// listed as they are.
    Mrt {
        #[arg(long)]
        lab: Option<String>,
    },
    /// Export BMP from a BGP lab's route collector to ADDR:PORT (as seen
    /// from the collector's namespace).
    Bmp {
        #[arg(long)]
        lab: Option<String>,
        station: String,
    },
    /// A BGP lab's router: its sessions and routes (`birdc show protocols`,
    /// `birdc show route`).
    Bgp {
        #[arg(long)]
        lab: Option<String>,
        node: String,
        /// Every attribute of every route (`show route all`).
        #[arg(long)]
        all: bool,
    },
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
    /// Replay the 2017 TransTeleCom activation with the whole stack (agents,
    /// collector, Prometheus, Alertmanager) and a live view of the shares;
    /// Ctrl-C stops and tears everything down.
    Demo {
        /// Seconds before `ttk-activation` is applied.
        #[arg(long, default_value_t = 30)]
        event_after: u64,
        /// The shipped settings (agent and collector defaults, Prometheus
        /// every 15 s, Alertmanager group_wait 30 s) instead of the demo's
        /// tightened ones (agents every 2 s, hysteresis 2, 1 s).
        #[arg(long)]
        defaults: bool,
        /// No live view: print the measured delays as JSON once the alert
        /// has arrived, and exit.
        #[arg(long)]
        bench: bool,
        /// Directory holding tumen-agent and tumen-collector [default: this binary's].
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<std::path::PathBuf>,
        /// deploy/prometheus of this repository [default: found from the binary or the current directory].
        #[arg(long, value_name = "DIR")]
        rules: Option<std::path::PathBuf>,
    },
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

/// SIGINT, SIGTERM and SIGHUP set the returned flag instead of killing
/// this process, so that its lab is always torn down.
fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// `tumen-lab replay`: a scenario's timed events on BGP, then teardown
/// (also on SIGINT, SIGTERM, SIGHUP).
fn replay_cmd(scenario: &str) -> anyhow::Result<ExitCode> {
    let s = Scenario::load(scenario)?;
    let Some(replay) = s.replay.clone() else {
        bail!("scenario {} has no [replay]", s.name);
    };
    let stop = stop_flag()?;
    let t = Instant::now();
    let mut lab = Lab::up_with(s, tumen_lab::Routing::Bgp)?;
    println!(
        "lab {} up on BGP in {:.2} s; {} steps, {} lab s per real hour, lab time 0 = {} UTC",
        lab.id(),
        t.elapsed().as_secs_f64(),
        replay.steps.len(),
        replay.ms_per_hour as f64 / 1000.0,
        tumen_lab::replay::format_utc(replay.start)
    );
    println!(
        "{:>9} {:>9} {:>8}  {:<19}  {:<13} note",
        "lab due", "applied", "conv", "real time (UTC)", "event"
    );
    tumen_lab::replay::play(&mut lab, &replay, &stop, |_, step, p| {
        println!(
            "{:>8.2}s {:>8.2}s {:>6.0}ms  {}  {:<13} {}",
            p.due,
            p.applied,
            p.converged_in.as_secs_f64() * 1000.0,
            tumen_lab::replay::format_utc(step.at),
            step.event,
            step.note
        );
    })?;
    drop(lab);
    Ok(ExitCode::SUCCESS)
}

/// `tumen-lab run`: a lab for the lifetime of a command. SIGINT, SIGTERM and
/// SIGHUP do not kill this process: they end the command (SIGTERM, then
/// SIGKILL after 5 s) and the lab is still torn down.
fn run_with_lab(scenario: &str, bgp: bool, command: &[String]) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    let stop = stop_flag()?;
    let routing = if bgp {
        tumen_lab::Routing::Bgp
    } else {
        tumen_lab::Routing::Static
    };
    let l = Lab::up_with(Scenario::load(scenario)?, routing)?;
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
        Cmd::Up { scenario, bgp } => {
            let s = Scenario::load(&scenario)?;
            let t = Instant::now();
            let routing = if bgp {
                tumen_lab::Routing::Bgp
            } else {
                tumen_lab::Routing::Static
            };
            let state = Lab::up_detached(s, routing)?;
            println!("{}", state.id);
            eprintln!(
                "tumen-lab: scenario {} up as lab {} in {:.2} s{}; `tumen-lab exec NODE -- CMD` to use it, `tumen-lab down` to remove it",
                state.scenario,
                state.id,
                t.elapsed().as_secs_f64(),
                if bgp { " (BGP converged)" } else { "" }
            );
        }
        Cmd::Replay { scenario } => return replay_cmd(&scenario),
        Cmd::Mrt { lab: id } => {
            let l = Lab::attach(&pick_lab(id)?)?;
            let Some(c) = l.scenario().bgp.as_ref().and_then(|b| b.collector.as_ref()) else {
                bail!("scenario {} has no route collector", l.scenario().name);
            };
            let root = tumen_lab::bird::collector_dir(l.id(), &c.node);
            tumen_lab::bird::archive(l.id(), l.scenario(), false)?;
            for f in tumen_lab::bird::mrt_files(l.id(), l.scenario()) {
                let len = std::fs::metadata(root.join(&f))
                    .map(|m| m.len())
                    .unwrap_or(0);
                println!("{:>10}  {}", len, root.join(&f).display());
            }
        }
        Cmd::Bmp { lab: id, station } => {
            let l = Lab::attach(&pick_lab(id)?)?;
            tumen_lab::bird::bmp_add(l.id(), l.scenario(), &station)?;
            eprintln!("tumen-lab: lab {}: BMP to {station}", l.id());
        }
        Cmd::Bgp { lab: id, node, all } => {
            let l = Lab::attach(&pick_lab(id)?)?;
            if l.state().routing != tumen_lab::Routing::Bgp {
                bail!(
                    "lab {} runs static routes (start it with `tumen-lab up --bgp`)",
                    l.id()
                );
            }
            let speakers: Vec<&str> = l
                .scenario()
                .bgp
                .iter()
                .flat_map(|b| b.speakers.iter().map(|s| s.node.as_str()))
                .collect();
            if !speakers.contains(&node.as_str()) {
                bail!(
                    "{node} is not a BGP speaker of lab {} (speakers: {})",
                    l.id(),
                    speakers.join(", ")
                );
            }
            print!(
                "{}",
                tumen_lab::bird::birdc(l.id(), &node, &["show", "protocols"])?
            );
            let mut args = vec!["show", "route"];
            if all {
                args.push("all");
            }
            print!("{}", tumen_lab::bird::birdc(l.id(), &node, &args)?);
        }
        Cmd::Run {
            scenario,
            bgp,
            command,
        } => return run_with_lab(&scenario, bgp, &command),
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
        Cmd::Demo {
            event_after,
            defaults,
            bench,
            bin_dir,
            rules,
        } => return demo::run(event_after, defaults, bench, bin_dir, rules),
    }
    Ok(ExitCode::SUCCESS)
}

mod demo {
    //! `tumen-lab demo`: the dprk-2017 replay with a live terminal view.

    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use std::io::{IsTerminal, Write};

    use anyhow::{bail, Context};
    use tumen_lab::demo::{color_wanted, frame, render, Alert, View};
    use tumen_lab::stack::{metric, Stack, StackConfig};

    /// `series{labels} value` lines of one metric, as label maps.
    fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let mut out = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix('{') else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            let mut m = BTreeMap::new();
            for pair in labels.split("\",") {
                if let Some((k, v)) = pair.split_once("=\"") {
                    m.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
            }
            out.push((m, v));
        }
        out
    }

    /// deploy/prometheus of the repository the binary was built in, or of
    /// the one the current directory is in (CARGO_TARGET_DIR elsewhere).
    fn found_rules() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let cwd = std::env::current_dir().ok()?;
        exe.ancestors()
            .chain(cwd.ancestors())
            .map(|a| a.join("deploy/prometheus"))
            .find(|p| p.join("alert_rules.yml").is_file())
    }

    pub fn run(
        event_after: u64,
        defaults: bool,
        bench: bool,
        bin_dir: Option<PathBuf>,
        rules: Option<PathBuf>,
    ) -> anyhow::Result<ExitCode> {
        let stop = super::stop_flag()?;
        let bin_dir = match bin_dir {
            Some(d) => d,
            None => std::env::current_exe()?
                .parent()
                .context("binary directory")?
                .to_path_buf(),
        };
        let rules = rules
            .or_else(found_rules)
            .context("deploy/prometheus not found: give --rules DIR")?;
        let mut cfg = if defaults {
            StackConfig::defaults(bin_dir, rules)
        } else {
            StackConfig::tight(bin_dir, rules)
        };
        // The collector listens on every address (the agents reach it over
        // the lab's management links): its web view, open on purpose for
        // the demo, is at http://127.0.0.1:PORT/.
        cfg.collector_toml = Some("public_view = true\n".into());
        eprintln!("tumen-lab demo: starting the lab, agents, collector, Prometheus, Alertmanager");
        let started = Instant::now();
        let mut stack = Stack::up(&cfg)?;
        eprintln!(
            "tumen-lab demo: up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let tty = std::io::stdout().is_terminal();
        let color = color_wanted(
            tty,
            std::env::var("TERM").ok().as_deref(),
            std::env::var("NO_COLOR").ok().as_deref(),
        );
        if tty && !bench {
            print!("\x1b[2J");
        }
        let round_every = if defaults {
            "20 s (the agent's default)"
        } else {
            "2 s"
        };
        let mut last: Vec<String> = Vec::new();
        let t_up = Instant::now();
        let mut t_event: Option<Instant> = None;
        let mut t_metric: Option<Duration> = None;
        let mut t_alert: Option<Duration> = None;
        let mut before_ok = false;
        let limit = Duration::from_secs(event_after + 600);
        loop {
            if stop.load(Ordering::Relaxed) {
                if tty && !bench {
                    println!();
                }
                eprintln!("\ntumen-lab demo: stopping; tearing everything down");
                break;
            }
            if t_up.elapsed() > limit {
                bail!("no alert within {limit:?}; logs:\n{}", stack.logs());
            }
            let m = stack.collector_metrics().unwrap_or_default();
            let shares = samples(&m, "tumen_upstream_share_ratio");
            let paths = samples(&m, "tumen_path_upstream_info");
            let live = metric(&m, "tumen_collector_agents{state=\"live\"}").unwrap_or(0.0);
            let all_cu = live as usize == stack.vantage_points.len()
                && (176..=179).all(|n| {
                    shares.iter().any(|(l, v)| {
                        l.get("prefix").map(String::as_str) == Some(&format!("198.18.{n}.0/24"))
                            && l.get("upstream").map(String::as_str) == Some("china-unicom")
                            && *v == 1.0
                    })
                });
            before_ok |= all_cu;
            // The event, once the "before" picture is complete and the
            // wait is over.
            if t_event.is_none() && before_ok && t_up.elapsed() >= Duration::from_secs(event_after)
            {
                stack.lab.event("ttk-activation")?;
                t_event = Some(Instant::now());
            }
            if let Some(t0) = t_event {
                let moved = shares.iter().any(|(l, v)| {
                    l.get("upstream").map(String::as_str) == Some("transtelecom")
                        && l.get("prefix").map(String::as_str) != Some("all")
                        && *v > 0.0
                });
                if moved && t_metric.is_none() {
                    t_metric = Some(t0.elapsed());
                }
                let alerts = stack.alerts();
                if t_alert.is_none() {
                    if let Some((t, _)) = alerts
                        .iter()
                        .find(|(_, a)| a["labels"]["alertname"] == "TumenUpstreamChanged")
                    {
                        t_alert = Some(t.duration_since(t0));
                    }
                }
            }
            if bench {
                if let (Some(tm), Some(ta)) = (t_metric, t_alert) {
                    println!(
                        "{}",
                        serde_json::json!({
                            "settings": if defaults { "defaults" } else { "tight" },
                            "metric_s": tm.as_secs_f64(),
                            "alert_s": ta.as_secs_f64(),
                        })
                    );
                    break;
                }
            } else {
                let v = view(
                    &stack,
                    &shares,
                    &paths,
                    live,
                    round_every,
                    t_up,
                    t_event,
                    event_after,
                    t_metric,
                    t_alert,
                    color,
                );
                let lines = render(&v);
                let mut out = std::io::stdout().lock();
                if tty {
                    let _ = write!(out, "{}", frame(&lines));
                } else if lines != last {
                    // Not a terminal: each new screen once, plain.
                    let _ = writeln!(out, "{}\n", lines.join("\n"));
                }
                let _ = out.flush();
                last = lines;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        drop(stack);
        eprintln!("tumen-lab demo: torn down");
        Ok(ExitCode::SUCCESS)
    }

    /// What the loop knows, for the renderer (tumen_lab::demo).
    #[allow(clippy::too_many_arguments)]
    fn view(
        stack: &Stack,
        shares: &[(BTreeMap<String, String>, f64)],
        paths: &[(BTreeMap<String, String>, f64)],
        live: f64,
        round_every: &str,
        t_up: Instant,
        t_event: Option<Instant>,
        event_after: u64,
        t_metric: Option<Duration>,
        t_alert: Option<Duration>,
        color: bool,
    ) -> View {
        let get = |l: &BTreeMap<String, String>, k: &str| l.get(k).cloned().unwrap_or_default();
        let label =
            |a: &serde_json::Value, k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
        View {
            collector_port: stack.collector_port,
            prometheus_port: stack.prometheus_port,
            alertmanager_port: stack.alertmanager_port,
            agents: stack.vantage_points.clone(),
            agents_live: live.max(0.0) as usize,
            round_every: round_every.to_string(),
            up_s: t_up.elapsed().as_secs(),
            event_after_s: event_after,
            event_ago_s: t_event.map(|t| t.elapsed().as_secs_f64()),
            metric_s: t_metric.map(|d| d.as_secs_f64()),
            alert_s: t_alert.map(|d| d.as_secs_f64()),
            shares: shares
                .iter()
                .map(|(l, v)| (get(l, "prefix"), get(l, "upstream"), *v))
                .collect(),
            paths: paths
                .iter()
                .map(|(l, _)| (get(l, "agent"), get(l, "prefix"), get(l, "upstream")))
                .collect(),
            alerts: stack
                .alerts()
                .iter()
                .filter(|(_, a)| a["status"].as_str() != Some("resolved"))
                .map(|(t, a)| Alert {
                    name: label(a, "alertname"),
                    prefix: label(a, "prefix"),
                    agent: label(a, "agent"),
                    from: label(a, "from"),
                    to: label(a, "to"),
                    after_s: t_event
                        .and_then(|e| t.checked_duration_since(e))
                        .map(|d| d.as_secs_f64()),
                })
                .collect(),
            color,
        }
    }
}
