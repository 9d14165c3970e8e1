//! BIRD 2 daemons of a BGP lab: one per speaker, inside its namespace,
//! with its configuration, control socket, pid file and log in the lab's
//! state directory (`<state_dir>/<lab id>.bird/`). Started after the
//! namespaces are wired, reconfigured (`birdc configure`) by events,
//! stopped by pid before the namespaces go (also by `down --stale`).
//!
//! Convergence is checked against the scenario's own route table: every
//! route a speaker has toward a BGP peer is what BGP must produce, so the
//! lab waits until every session that should run is Established and the
//! kernel forwards each such destination to that peer.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bgp::{self, Neighbour, Relation, State};
use crate::lab::{state_dir, LabError};
use crate::plan;
use crate::scenario::Scenario;

type Result<T, E = LabError> = std::result::Result<T, E>;

/// How long `up` and events wait for BGP to converge, unless
/// `TUMEN_LAB_BGP_TIMEOUT` (seconds) says otherwise.
pub const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(60);

fn convergence_timeout() -> Duration {
    std::env::var("TUMEN_LAB_BGP_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(CONVERGENCE_TIMEOUT, Duration::from_secs)
}

/// The directory of lab `id`'s daemons.
pub fn dir(id: &str) -> PathBuf {
    state_dir().join(format!("{id}.bird"))
}

fn file(id: &str, node: &str, ext: &str) -> PathBuf {
    dir(id).join(format!("{node}.{ext}"))
}

/// The control socket of `node`'s BIRD.
pub fn socket(id: &str, node: &str) -> PathBuf {
    file(id, node, "ctl")
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> LabError {
    move |source| LabError::Io { what, source }
}

/// The BGP state after the events applied so far, in order.
pub fn state(s: &Scenario, events: &[String]) -> Option<State> {
    let bgp = s.bgp.as_ref()?;
    let mut st = State::new(bgp);
    for name in events {
        if let Some(ev) = s.event(name) {
            for a in &ev.bgp {
                st.apply(a);
            }
        }
    }
    Some(st)
}

/// The configuration of every speaker, in the given BGP state.
pub fn configs(s: &Scenario, st: &State) -> Vec<(String, String)> {
    let Some(bgp) = s.bgp.as_ref() else {
        return Vec::new();
    };
    bgp.speakers
        .iter()
        .map(|sp| {
            let neighbours: Vec<Neighbour<'_>> = bgp
                .sessions
                .iter()
                .filter_map(|sess| sess.peer_of(&sp.node))
                .map(|(peer, relation)| Neighbour {
                    collector: false,
                    peer,
                    relation,
                    peer_asn: bgp.asn_of(peer).unwrap_or(0),
                    local4: s.addr_on_link(&sp.node, peer, false),
                    remote4: s.addr_on_link(peer, &sp.node, false),
                    local6: s.addr_on_link(&sp.node, peer, true),
                    remote6: s.addr_on_link(peer, &sp.node, true),
                })
                .chain(
                    bgp.collector
                        .iter()
                        .filter(|c| c.peers.contains(&sp.node))
                        .map(|c| Neighbour {
                            collector: true,
                            peer: &c.node,
                            relation: Relation::Customer,
                            peer_asn: c.asn,
                            local4: s.addr_on_link(&sp.node, &c.node, false),
                            remote4: s.addr_on_link(&c.node, &sp.node, false),
                            local6: s.addr_on_link(&sp.node, &c.node, true),
                            remote6: s.addr_on_link(&c.node, &sp.node, true),
                        }),
                )
                .collect();
            let router_id = s
                .all_addrs()
                .into_iter()
                .find(|(n, a)| *n == sp.node && a.addr().is_ipv4())
                .map(|(_, a)| a.addr())
                .unwrap_or(std::net::IpAddr::from([192, 0, 2, 255]));
            (
                sp.node.clone(),
                bgp::bird_config(bgp, st, &sp.node, sp.asn, router_id, &neighbours),
            )
        })
        .collect()
}

/// Writes the configurations and starts one BIRD per speaker.
pub fn start(id: &str, s: &Scenario, st: &State) -> Result<()> {
    let d = dir(id);
    fs::create_dir_all(&d).map_err(io(format!("create {}", d.display())))?;
    for (node, conf) in configs(s, st) {
        let path = file(id, &node, "conf");
        fs::write(&path, conf).map_err(io(format!("write {}", path.display())))?;
        // `bird -p`: parse only, so a bad configuration names itself.
        let ns = plan::ns_name(id, &node);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "bird"])
            .arg("-c")
            .arg(&path)
            .arg("-s")
            .arg(socket(id, &node))
            .arg("-P")
            .arg(file(id, &node, "pid"))
            .output()
            .map_err(io(format!("lab {id}: node {node}: start bird")))?;
        if !out.status.success() {
            return Err(LabError::Command {
                what: format!("lab {id}: node {node}: bird -c {}", path.display()),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

/// Rewrites the configurations that changed and has those daemons
/// reload them (`birdc configure`).
pub fn reconfigure(id: &str, s: &Scenario, st: &State) -> Result<()> {
    for (node, conf) in configs(s, st) {
        let path = file(id, &node, "conf");
        if fs::read_to_string(&path).ok().as_deref() == Some(conf.as_str()) {
            continue;
        }
        fs::write(&path, conf).map_err(io(format!("write {}", path.display())))?;
        let out = birdc(id, &node, &["configure"])?;
        if !out.contains("Reconfigured") && !out.contains("Reconfiguration in progress") {
            return Err(LabError::Command {
                what: format!("lab {id}: node {node}: birdc configure"),
                status: "refused".into(),
                stderr: out,
            });
        }
    }
    Ok(())
}

/// Takes the session between speakers `a` and `b` down and up `times`
/// times, at `a` (`birdc disable` / `enable` of both families): down for
/// half a second, then up until it is Established again and half a
/// second more (so that every cycle is seen by the rest of the network).
pub fn flap(id: &str, s: &Scenario, a: &str, b: &str, times: u8) -> Result<()> {
    let names: Vec<String> = [false, true]
        .into_iter()
        .filter(|v6| s.addr_on_link(a, b, *v6).is_some())
        .map(|v6| bgp::protocol_name(b, v6))
        .collect();
    for _ in 0..times {
        for verb in ["disable", "enable"] {
            for n in &names {
                birdc(id, a, &[verb, n])?;
            }
            if verb == "enable" {
                let t0 = Instant::now();
                while sessions(id, a)?
                    .iter()
                    .any(|(n, st)| names.contains(n) && st != "Established")
                {
                    if t0.elapsed() > CONVERGENCE_TIMEOUT {
                        return Err(LabError::NoLab(format!(
                            "lab {id}: {a}: flapped session to {b} did not come back"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(())
}

/// Runs `birdc -s SOCKET ARGS` for `node` and returns its output.
pub fn birdc(id: &str, node: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(socket(id, node))
        .args(args)
        .output()
        .map_err(io(format!(
            "lab {id}: node {node}: birdc {}",
            args.join(" ")
        )))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(LabError::Command {
            what: format!("lab {id}: node {node}: birdc {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(text)
}

/// BGP protocols of `node` and their state (`Established`, `Active`, ...;
/// `down` when disabled), from `birdc show protocols`.
pub fn sessions(id: &str, node: &str) -> Result<Vec<(String, String)>> {
    let out = birdc(id, node, &["show", "protocols"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[1] == "BGP").then(|| {
                let info = f.get(5).map_or(f[3], |i| *i);
                (
                    f[0].to_string(),
                    if f[3] == "down" {
                        "down".into()
                    } else {
                        info.to_string()
                    },
                )
            })
        })
        .collect())
}

/// What is not converged yet: sessions that should be up and are not,
/// and routes toward a BGP peer the kernel does not have. Empty when
/// converged.
pub fn pending(id: &str, s: &Scenario, events: &[String], st: &State) -> Result<Vec<String>> {
    let Some(bgp) = s.bgp.as_ref() else {
        return Ok(Vec::new());
    };
    let mut left = collector_pending(id, s);
    for sp in &bgp.speakers {
        // A BIRD that has not opened its control socket yet is not
        // converged yet; a real failure shows as the timeout's list.
        let protocols = match sessions(id, &sp.node) {
            Ok(p) => p,
            Err(e) => {
                left.push(format!("{}: BIRD not answering yet ({e})", sp.node));
                continue;
            }
        };
        for (name, state) in protocols {
            let down_by_event = st.down.iter().any(|(a, b)| {
                (a == &sp.node || b == &sp.node)
                    && (name == bgp::protocol_name(a, false)
                        || name == bgp::protocol_name(a, true)
                        || name == bgp::protocol_name(b, false)
                        || name == bgp::protocol_name(b, true))
            });
            if !down_by_event && state != "Established" {
                left.push(format!("{}: session {name} is {state}", sp.node));
            }
        }
    }
    let model =
        crate::expect::Model::new(s, &events.iter().map(String::as_str).collect::<Vec<_>>())?;
    for (node, dst, via) in model.bgp_routes() {
        let ns = plan::ns_name(id, &node);
        let fam = if dst.addr().is_ipv6() { "-6" } else { "-4" };
        let out = Command::new("ip")
            .args(["-n", &ns, fam, "route", "show", "exact", &dst.to_string()])
            .output()
            .map_err(io(format!("lab {id}: ip route show exact")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let dev_ok = words.windows(2).any(|w| w[0] == "dev" && w[1] == via);
        if !dev_ok {
            left.push(format!(
                "{node}: no BGP route {dst} via {via} yet ({})",
                text.trim()
            ));
        }
    }
    // ... and every route BGP put in a kernel agrees with the model (a
    // withdrawn more-specific that is still there would not be seen above).
    for sp in &bgp.speakers {
        let ns = plan::ns_name(id, &sp.node);
        for fam in ["-4", "-6"] {
            let out = Command::new("ip")
                .args(["-n", &ns, fam, "route", "show", "proto", "bird"])
                .output()
                .map_err(io(format!("lab {id}: ip route show proto bird")))?;
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                let Some(dst) = f.first().and_then(|d| d.parse::<ipnet::IpNet>().ok()) else {
                    continue;
                };
                let dev = f.windows(2).find(|w| w[0] == "dev").map(|w| w[1]);
                let want = model
                    .route_via(&sp.node, dst)
                    .map(<[String]>::to_vec)
                    .unwrap_or_else(|| model.next_hops(&sp.node, dst.network()));
                if dev.is_none_or(|d| !want.iter().any(|w| w == d)) {
                    left.push(format!(
                        "{}: BGP route {dst} goes to {} but the scenario says {}",
                        sp.node,
                        dev.unwrap_or("?"),
                        if want.is_empty() {
                            "no neighbour".to_string()
                        } else {
                            want.join(" or ")
                        }
                    ));
                }
            }
        }
    }
    Ok(left)
}

/// Waits until [`pending`] is empty, or fails naming what is not there.
pub fn converge(id: &str, s: &Scenario, events: &[String], st: &State) -> Result<Duration> {
    let t0 = Instant::now();
    let timeout = convergence_timeout();
    loop {
        let left = pending(id, s, events, st)?;
        if left.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return Err(LabError::NoLab(format!(
                "lab {id}: BGP did not converge within {} s:\n  - {}",
                timeout.as_secs(),
                left.join("\n  - ")
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops every BIRD of lab `id` by the pid in its pid file (only a
/// process that is that lab's bird), waits for it, and removes the
/// directory.
pub fn stop_all(id: &str) -> Result<()> {
    let d = dir(id);
    if !d.exists() {
        return Ok(());
    }
    let pids: Vec<i32> = daemon_pids(id)
        .into_iter()
        .filter(|p| is_our_bird(*p, &d))
        .collect();
    terminate(&pids, |p| is_our_bird(p, &d));
    fs::remove_dir_all(&d).map_err(io(format!("remove {}", d.display())))
}

/// Stops the BGP daemons still running inside `namespaces`
/// (`ip netns pids`): those of a lab whose state directory is gone or is
/// another one (a lab started with another `TUMEN_LAB_STATE_DIR`), which
/// [`stop_all`] cannot find by their pid files.
pub fn stop_in_namespaces(namespaces: &[String]) {
    let mut pids = Vec::new();
    for ns in namespaces {
        let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
            continue;
        };
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let argv0 = fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .and_then(|c| {
                    c.split(|b| *b == 0)
                        .next()
                        .map(|a| String::from_utf8_lossy(a).to_string())
                })
                .unwrap_or_default();
            if argv0.ends_with("bird") || argv0.ends_with("gobgpd") {
                pids.push(pid);
            }
        }
    }
    terminate(&pids, |_| true);
}

/// The pids in lab `id`'s pid files (one per BIRD, one for the collector's
/// gobgpd), whether or not those processes still run.
pub fn daemon_pids(id: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir(dir(id)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
        .filter_map(|p| fs::read_to_string(p).ok()?.trim().parse().ok())
        .collect()
}

/// SIGTERM to `pids`, then up to 5 s for them to exit, then SIGKILL to
/// those still there that `still_ours` confirms (a pid may be reused).
fn terminate(pids: &[i32], still_ours: impl Fn(i32) -> bool) {
    let alive = |p: &i32| Path::new(&format!("/proc/{p}")).exists();
    for p in pids {
        let _ = Command::new("kill")
            .args(["-TERM", &p.to_string()])
            .status();
    }
    let t0 = Instant::now();
    while pids.iter().any(alive) {
        if t0.elapsed() > Duration::from_secs(5) {
            for p in pids.iter().filter(|p| alive(p) && still_ours(**p)) {
                let _ = Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is one of this lab's daemons: a bird started with a
/// configuration in `dir`, or a gobgpd running in a directory under it.
fn is_our_bird(pid: i32, dir: &Path) -> bool {
    let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).to_string())
        .collect();
    let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
    (args.first().is_some_and(|a| a.ends_with("bird"))
        && args.iter().any(|a| Path::new(a).starts_with(dir)))
        || (args.first().is_some_and(|a| a.ends_with("gobgpd")) && cwd.starts_with(dir))
}

// ---------------------------------------------------------------- the route collector

/// The API address gobgpd listens on inside its namespace (each namespace
/// has its own loopback).
const GOBGP_API: &str = "127.0.0.1:50051";

/// The collector's directory: its configuration, log and MRT files
/// (`bgpdata/YYYY.MM/{RIBS,UPDATES}/`, the RouteViews layout).
pub fn collector_dir(id: &str, node: &str) -> PathBuf {
    dir(id).join(node)
}

/// gobgpd's configuration for the scenario's collector.
pub fn gobgp_config(s: &Scenario) -> Option<String> {
    let c = s.bgp.as_ref()?.collector.as_ref()?;
    let addrs: Vec<std::net::IpAddr> = s
        .all_addrs()
        .into_iter()
        .filter(|(n, _)| *n == c.node)
        .map(|(_, a)| a.addr())
        .collect();
    let router_id = addrs.iter().find(|a| a.is_ipv4())?;
    let mut t = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        t,
        "# gobgpd of the lab's route collector {} (AS{}), generated by tumen-lab",
        c.node, c.asn
    );
    let _ = writeln!(
        t,
        "[global.config]\n  as = {}\n  router-id = \"{router_id}\"\n  port = 179",
        c.asn
    );
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let _ = writeln!(t, "  local-address-list = [{}]", list.join(", "));
    t.push_str(
        "[global.apply-policy.config]\n  # a collector listens: it never re-advertises a peer's routes\n  default-export-policy = \"reject-route\"\n  default-import-policy = \"accept-route\"\n",
    );
    let bgp = s.bgp.as_ref()?;
    for p in &c.peers {
        for v6 in [false, true] {
            let Some(addr) = s.addr_on_link(p, &c.node, v6) else {
                continue;
            };
            let _ = writeln!(
                t,
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = {}\n    description = \"{p}\"\n  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{}\"",
                bgp.asn_of(p).unwrap_or(0),
                if v6 { "ipv6-unicast" } else { "ipv4-unicast" }
            );
        }
    }
    // Relative names: gobgpd reads the whole name as a Go time layout, and
    // digits in an absolute path (a lab id) would be replaced.
    t.push_str(
        "[[mrt-dump]]\n  [mrt-dump.config]\n    dump-type = \"updates\"\n    file-name = \"bgpdata/2006.01/UPDATES/updates.20060102.1504\"\n    rotation-interval = 60\n\
         [[mrt-dump]]\n  [mrt-dump.config]\n    dump-type = \"table\"\n    file-name = \"bgpdata/2006.01/RIBS/rib.20060102.1504\"\n    rotation-interval = 60\n",
    );
    Some(t)
}

/// Starts gobgpd for the scenario's collector (if it has one), in its
/// namespace and its directory, in a session of its own; its pid goes in
/// `<node>.pid` beside the BIRDs'.
pub fn start_collector(id: &str, s: &Scenario) -> Result<()> {
    let (Some(conf), Some(c)) = (
        gobgp_config(s),
        s.bgp.as_ref().and_then(|b| b.collector.as_ref()),
    ) else {
        return Ok(());
    };
    let cdir = collector_dir(id, &c.node);
    fs::create_dir_all(&cdir).map_err(io(format!("create {}", cdir.display())))?;
    let path = cdir.join("gobgpd.toml");
    fs::write(&path, conf).map_err(io(format!("write {}", path.display())))?;
    let ns = plan::ns_name(id, &c.node);
    // sh starts gobgpd in the background, prints its pid and exits: gobgpd
    // is nobody's child (no zombie), and setsid (which does not fork here:
    // a background job of a shell without job control leads no group)
    // keeps it out of our process group.
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, "sh", "-c"])
        .arg(format!(
            "setsid gobgpd -f gobgpd.toml -p --api-hosts {GOBGP_API} --pprof-disable </dev/null >gobgpd.log 2>&1 & echo $!"
        ))
        .current_dir(&cdir)
        .output()
        .map_err(io(format!("lab {id}: node {}: start gobgpd", c.node)))?;
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || pid.parse::<u32>().is_err() {
        return Err(LabError::Command {
            what: format!("lab {id}: node {}: start gobgpd", c.node),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let pidfile = file(id, &c.node, "pid");
    fs::write(&pidfile, format!("{pid}\n")).map_err(io(format!("write {}", pidfile.display())))?;
    Ok(())
}

/// `gobgp ARGS` against the collector's gobgpd, inside its namespace.
pub fn gobgp(id: &str, node: &str, args: &[&str]) -> Result<String> {
    let ns = plan::ns_name(id, node);
    let (host, port) = GOBGP_API.split_once(':').unwrap_or(("127.0.0.1", "50051"));
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, "gobgp", "-u", host, "-p", port])
        .args(args)
        .output()
        .map_err(io(format!(
            "lab {id}: node {node}: gobgp {}",
            args.join(" ")
        )))?;
    if !out.status.success() {
        return Err(LabError::Command {
            what: format!("lab {id}: node {node}: gobgp {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The collector's sessions that are not Established (all of them while
/// gobgpd is not answering yet).
pub fn collector_pending(id: &str, s: &Scenario) -> Vec<String> {
    let Some(c) = s.bgp.as_ref().and_then(|b| b.collector.as_ref()) else {
        return Vec::new();
    };
    let want: usize = c
        .peers
        .iter()
        .map(|p| {
            usize::from(s.addr_on_link(p, &c.node, false).is_some())
                + usize::from(s.addr_on_link(p, &c.node, true).is_some())
        })
        .sum();
    match gobgp(id, &c.node, &["neighbor"]) {
        Ok(out) => {
            let up = out.lines().filter(|l| l.contains("Establ")).count();
            if up == want {
                Vec::new()
            } else {
                vec![format!(
                    "{}: {up} of {want} collector sessions Established",
                    c.node
                )]
            }
        }
        Err(e) => vec![format!("{}: gobgpd not answering yet ({e})", c.node)],
    }
}

/// Adds a BMP station (`ADDR[:PORT]`, as seen from the collector's
/// namespace) to the collector: route monitoring (pre-policy,
/// post-policy and Loc-RIB), peer up and down, statistics.
pub fn bmp_add(id: &str, s: &Scenario, station: &str) -> Result<()> {
    let Some(c) = s.bgp.as_ref().and_then(|b| b.collector.as_ref()) else {
        return Err(LabError::NoLab(format!(
            "lab {id}: the scenario has no route collector"
        )));
    };
    gobgp(id, &c.node, &["bmp", "add", station, "all"]).map(drop)
}

/// The collector's MRT files, oldest first (relative to [`collector_dir`]):
/// what gobgpd writes under `bgpdata/`, and the archived copies (`.bz2`
/// there, `.gz` under the RIS-style directory named after the node).
pub fn mrt_files(id: &str, s: &Scenario) -> Vec<PathBuf> {
    let Some(c) = s.bgp.as_ref().and_then(|b| b.collector.as_ref()) else {
        return Vec::new();
    };
    let root = collector_dir(id, &c.node);
    let mut out = Vec::new();
    let mut stack = vec![root.join("bgpdata"), root.join(&c.node)];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(&root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort_by_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let stamp = name
            .split_once('.')
            .map(|(_, t)| t.to_string())
            .unwrap_or_default();
        (stamp, name)
    });
    out
}

/// Archives the collector's closed MRT files as the public archives
/// publish theirs. GoBGP writes `bgpdata/YYYY.MM/{RIBS,UPDATES}/` files
/// uncompressed and names each RIB file one interval early (its ticker
/// opens the file a minute before the dump goes in). A file is closed once
/// a newer one exists in its directory (or, with `all`, always: after the
/// collector stopped). Each closed file becomes:
/// - RouteViews: `bgpdata/YYYY.MM/RIBS/rib.YYYYMMDD.HHMM.bz2` (named by the
///   dump time its first record carries) or `.../UPDATES/updates.*.bz2`;
/// - RIPE RIS: `rrcNN/YYYY.MM/bview.YYYYMMDD.HHMM.gz` or `updates.*.gz`,
///   with the collector node's name for `rrcNN`.
///
/// Empty closed files (no dump in them) are removed. Returns the files
/// written, relative to [`collector_dir`].
pub fn archive(id: &str, s: &Scenario, all: bool) -> Result<Vec<PathBuf>> {
    let Some(c) = s.bgp.as_ref().and_then(|b| b.collector.as_ref()) else {
        return Ok(Vec::new());
    };
    let root = collector_dir(id, &c.node);
    let raw: Vec<PathBuf> = mrt_files(id, s)
        .into_iter()
        .filter(|f| f.extension().is_none_or(|e| e != "bz2" && e != "gz"))
        .collect();
    let mut written = Vec::new();
    for f in &raw {
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let newer = raw
            .iter()
            .any(|g| g.parent() == Some(dir.as_path()) && g.file_name() > f.file_name());
        if !(all || newer) {
            continue;
        }
        let path = root.join(f);
        let data = fs::read(&path).map_err(io(format!("read {}", path.display())))?;
        if data.is_empty() {
            fs::remove_file(&path).map_err(io(format!("remove {}", path.display())))?;
            continue;
        }
        let is_rib = dir.ends_with("RIBS");
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // RouteViews and RIS name a file by minute; a RIB by its dump time.
        let (stamp, month) = if is_rib && data.len() >= 4 {
            let t = i64::from(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
            let full = crate::replay::format_utc(t); // YYYY-MM-DD HH:MM:SS
            (
                format!(
                    "{}{}{}.{}{}",
                    &full[0..4],
                    &full[5..7],
                    &full[8..10],
                    &full[11..13],
                    &full[14..16]
                ),
                format!("{}.{}", &full[0..4], &full[5..7]),
            )
        } else {
            let stamp = name
                .split_once('.')
                .map(|(_, t)| t.to_string())
                .unwrap_or_default();
            let month = format!(
                "{}.{}",
                stamp.get(0..4).unwrap_or("0000"),
                stamp.get(4..6).unwrap_or("00")
            );
            (stamp, month)
        };
        let (rv_dir, rv_name, ris_name) = if is_rib {
            (
                format!("bgpdata/{month}/RIBS"),
                format!("rib.{stamp}.bz2"),
                format!("bview.{stamp}.gz"),
            )
        } else {
            (
                format!("bgpdata/{month}/UPDATES"),
                format!("updates.{stamp}.bz2"),
                format!("updates.{stamp}.gz"),
            )
        };
        let ris_dir = format!("{}/{month}", c.node);
        for (d, n, bz) in [(rv_dir, rv_name, true), (ris_dir, ris_name, false)] {
            let out_dir = root.join(&d);
            fs::create_dir_all(&out_dir).map_err(io(format!("create {}", out_dir.display())))?;
            let out = out_dir.join(&n);
            let file = fs::File::create(&out).map_err(io(format!("create {}", out.display())))?;
            let res = if bz {
                let mut e = bzip2::write::BzEncoder::new(file, bzip2::Compression::best());
                std::io::Write::write_all(&mut e, &data).and_then(|()| e.finish().map(drop))
            } else {
                let mut e = flate2::write::GzEncoder::new(file, flate2::Compression::best());
                std::io::Write::write_all(&mut e, &data).and_then(|()| e.finish().map(drop))
            };
            res.map_err(io(format!("compress {}", out.display())))?;
            written.push(PathBuf::from(d).join(n));
        }
        fs::remove_file(&path).map_err(io(format!("remove {}", path.display())))?;
    }
    Ok(written)
}
