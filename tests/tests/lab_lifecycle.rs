//! The lab's own life cycle: bring-up and teardown leave nothing behind (on
//! drop, on panic, after SIGKILL via `down --stale`), labs run side by side,
//! the CLI works end to end, and missing privilege or bad scenarios give a
//! clear error.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::up;
use tumen_lab::lab::{self, Lab, LabState};
use tumen_lab::Scenario;

const BIN: &str = env!("CARGO_BIN_EXE_tumen-lab");

fn namespaces_of(id: &str) -> Vec<String> {
    lab::list_namespaces()
        .expect("ip netns list")
        .into_iter()
        .filter(|ns| ns.starts_with(&format!("{id}-")))
        .collect()
}

fn tumen_lab(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run tumen-lab")
}

/// Tears a CLI-started lab down even if the test panics.
struct CliLab(String);

impl Drop for CliLab {
    fn drop(&mut self) {
        let _ = lab::teardown(&self.0);
    }
}

/// Starts `tumen-lab run ecmp-diamond -- sleep 300` in its own process
/// group and returns it with the lab id it printed, once the lab is up.
fn spawn_run_sleep() -> (std::process::Child, String) {
    let (child, id) = spawn_run(&["ecmp-diamond"]);
    assert_eq!(namespaces_of(&id).len(), 6, "lab {id:?} is up");
    (child, id)
}

/// `tumen-lab run ARGS... -- sleep 300` in its own process group, with the
/// lab id it printed once the lab is up.
fn spawn_run(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .arg("run")
        .args(args)
        .args(["--", "sleep", "300"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn tumen-lab run");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("lab id");
    (child, line.trim().to_string())
}

#[test]
fn drop_removes_every_namespace_and_the_state_file() {
    let l = up("dprk-2017");
    let id = l.id().to_string();
    let nodes = l.scenario().nodes.len();
    assert_eq!(namespaces_of(&id).len(), nodes);
    assert!(LabState::read(&id).is_ok());
    drop(l);
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
    assert!(LabState::read(&id).is_err(), "state file left behind");
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let id = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let l = up("ecmp-diamond");
        *id.lock().expect("lock") = l.id().to_string();
        panic!("test failure while the lab is up");
    });
    assert!(result.is_err());
    let id = id.into_inner().expect("lock");
    assert!(!id.is_empty());
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
}

#[test]
fn labs_of_the_same_scenario_run_side_by_side() {
    let a = up("ecmp-diamond");
    let b = up("ecmp-diamond");
    assert_ne!(a.id(), b.id());
    for l in [&a, &b] {
        let out = l
            .output("vp", &["ping", "-n", "-c", "1", "-W", "2", "198.18.10.15"])
            .expect("ping");
        assert!(out.status.success(), "{}: {out:?}", l.id());
    }
}

#[test]
fn sigkill_leaves_a_stale_lab_that_down_stale_removes() {
    // `tumen-lab run` owns its lab; killing it with SIGKILL skips cleanup.
    let (mut child, id) = spawn_run_sleep();
    let _guard = CliLab(id.clone());

    // While its owner lives, the lab is not stale.
    let out = tumen_lab(&["down", "--stale"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        namespaces_of(&id).len(),
        6,
        "a live lab was removed as stale"
    );

    // Kill the whole process group (tumen-lab and its sleep) by its own id.
    let pgid = i32::try_from(child.id()).expect("pid");
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
    assert_eq!(namespaces_of(&id).len(), 6, "SIGKILL cannot clean up");
    assert!(LabState::read(&id).expect("state").is_stale());
    let status = tumen_lab(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(&format!("{id}  scenario ecmp-diamond")),
        "{status:?}"
    );

    let out = tumen_lab(&["down", "--stale"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{out:?}"
    );
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
    assert!(LabState::read(&id).is_err());
}

/// BIRD daemonizes into its own session: SIGKILL to `tumen-lab run`'s
/// process group leaves every BIRD of the lab running, and `down --stale`
/// must stop them by pid before removing the namespaces.
#[test]
fn sigkill_leaves_birds_that_down_stale_stops_by_pid() {
    let (mut child, id) = spawn_run(&["--bgp", "dprk-2017"]);
    let _guard = CliLab(id.clone());
    let pids = tumen_lab::bird::daemon_pids(&id);
    assert_eq!(pids.len(), 8, "one BIRD per speaker");
    let pgid = i32::try_from(child.id()).expect("pid");
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
    let alive = |p: &i32| std::path::Path::new(&format!("/proc/{p}")).exists();
    assert!(pids.iter().all(alive), "the birds outlive their owner");
    let out = tumen_lab(&["down", "--stale"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!pids.iter().any(alive), "down --stale stopped every bird");
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
    assert!(!tumen_lab::bird::dir(&id).exists());
}

#[test]
fn sigterm_to_tumen_lab_run_stops_the_command_and_removes_the_lab() {
    let (mut child, id) = spawn_run_sleep();
    let _guard = CliLab(id.clone());
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(!exit.success(), "sleep was terminated: {exit:?}");
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
    assert!(LabState::read(&id).is_err(), "state file left behind");
    // Nothing of the group survives (sleep was stopped, not orphaned).
    let pgid = child.id().to_string();
    let ps = Command::new("pgrep")
        .args(["-g", &pgid])
        .output()
        .expect("pgrep");
    assert!(ps.stdout.is_empty(), "left running: {ps:?}");
}

#[test]
fn cli_up_status_exec_event_down() {
    let out = tumen_lab(&["up", "dprk-2017"]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _guard = CliLab(id.clone());
    assert!(tumen_lab::plan::is_lab_id(&id), "{id:?}");

    let status = String::from_utf8_lossy(&tumen_lab(&["status"]).stdout).to_string();
    assert!(
        status.contains(&format!("{id}  scenario dprk-2017  owner tumen-lab up")),
        "{status}"
    );
    assert!(status.contains(&format!("{id}-ttk-khasan")), "{status}");

    let route_get = |node: &str, dst: &str| {
        let out = tumen_lab(&["exec", "--lab", &id, node, "--", "ip", "route", "get", dst]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(route_get("tr-fra", "198.18.177.15").contains("via 198.18.219.1 "));
    let out = tumen_lab(&["event", "--lab", &id, "ttk-activation"]);
    assert!(out.status.success(), "{out:?}");
    assert!(route_get("tr-fra", "198.18.177.15").contains("via 198.18.188.1 "));
    assert!(route_get("tr-nyc", "198.18.177.15").contains("via 198.18.219.5 "));
    assert_eq!(
        LabState::read(&id).expect("state").events,
        ["ttk-activation"]
    );

    // Errors name what is wrong and what exists.
    let out = tumen_lab(&["event", "--lab", &id, "no-such-event"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no event named no-such-event (events: ttk-activation, ttk-withdrawal)"),
        "{err}"
    );
    let out = tumen_lab(&["exec", "--lab", &id, "nowhere", "--", "true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no node named nowhere"),
        "{out:?}"
    );

    let out = tumen_lab(&["down", "--lab", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
}

#[test]
fn without_privilege_up_fails_and_says_how_to_fix_it() {
    // Drop to nobody with no capabilities; the binary must refuse clearly.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
            BIN,
            "up",
            "ecmp-diamond",
        ])
        .env(
            "TUMEN_LAB_STATE_DIR",
            std::env::temp_dir().join("tumen-lab-unpriv"),
        )
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"),
        "{err}"
    );
    assert!(
        err.contains("missing CAP_NET_ADMIN and CAP_SYS_ADMIN"),
        "{err}"
    );
}

#[test]
fn a_bad_scenario_is_refused_before_anything_is_built() {
    let dir = std::env::temp_dir().join(format!("tumen-lab-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\n[[node]]\nname = \"vp\"\nrole = \"vantage\"\n[[node]]\nname = \"r\"\nrole = \"router\"\n\
         [[link]]\na = \"vp\"\nb = \"r\"\nnet = \"175.45.176.0/30\"\n",
    )
    .expect("write");
    let out = tumen_lab(&["up", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("175.45.176.0/30 is outside the lab ranges"),
        "{err}"
    );
    assert!(!err.contains("up as lab"), "{err}");
    assert!(out.stdout.is_empty(), "no lab id printed: {out:?}");
    let out = tumen_lab(&["check", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);

    let e = Scenario::load("no-such-scenario").expect_err("unknown");
    assert!(
        e.to_string()
            .contains("shipped: dprk-2017, dyn-2017-10-01, dprk-outage-2025-06-07, dprk-2025, ecmp-diamond, silent-and-lossy, long-path"),
        "{e}"
    );
    let mut l = Lab::up(Scenario::load("ecmp-diamond").expect("shipped")).expect("up");
    let err = l.event("nope").expect_err("no events in ecmp-diamond");
    assert!(err.to_string().contains("has no event named nope"), "{err}");
}

/// A BGP lab whose expected routes BGP never produces: `up --bgp` fails
/// after the timeout naming the missing route, and nothing is left (no
/// namespace, no BIRD, no state).
#[test]
fn bgp_that_does_not_converge_is_an_error_naming_what_is_missing() {
    let dir = std::env::temp_dir().join(format!("tumen-lab-noconv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("noconv.toml");
    std::fs::write(
        &path,
        r#"name = "noconv"
link = [
  { a = "vp", b = "r1", net = "192.0.2.0/30" },
  { a = "r1", b = "r2", net = "192.0.2.4/30" },
]
# r2 expects a route BGP will never give it: r1 originates nothing.
route = [
  { node = "vp", dst = "default", via = "r1" },
  { node = "r2", dst = "198.18.10.0/24", via = "r1" },
]
[bgp]
speaker = [{ node = "r1", asn = 64500 }, { node = "r2", asn = 64501 }]
session = [{ a = "r1", b = "r2", relation = "peer" }]
[[node]]
name = "vp"
role = "vantage"
[[node]]
name = "r1"
role = "router"
[[node]]
name = "r2"
role = "router"
"#,
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["up", "--bgp", path.to_str().expect("utf-8")])
        .env("TUMEN_LAB_BGP_TIMEOUT", "3")
        .output()
        .expect("run tumen-lab");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BGP did not converge within 3 s"), "{err}");
    assert!(
        err.contains("r2: no BGP route 198.18.10.0/24 via r1 yet"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no lab id printed: {out:?}");
    // The error names the lab: nothing of it is left.
    let id = err
        .split_whitespace()
        .find(|w| w.starts_with("tl") && w.ends_with(':'))
        .map(|w| w.trim_end_matches(':').to_string())
        .expect("the lab id in the error");
    assert_eq!(
        namespaces_of(&id),
        Vec::<String>::new(),
        "{id}'s namespaces"
    );
    assert!(
        !tumen_lab::bird::dir(&id).exists(),
        "{id}'s daemons' directory"
    );
    assert!(LabState::read(&id).is_err(), "{id}'s state file");
}

/// A BGP lab whose daemons' pid files are gone (its state directory
/// lost, or another `TUMEN_LAB_STATE_DIR`): tearing it down still stops
/// its daemons, found inside its namespaces (`ip netns pids`), before the
/// namespaces go.
#[test]
fn teardown_stops_daemons_it_has_no_pid_file_for() {
    let out = tumen_lab(&["up", "--bgp", "dprk-2017"]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _guard = CliLab(id.clone());
    let dir = tumen_lab::bird::dir(&id);
    let pidfiles: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("bird directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
        .collect();
    let pids: Vec<u32> = pidfiles
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
        .collect();
    assert_eq!(pids.len(), 8);
    for p in &pidfiles {
        std::fs::remove_file(p).expect("remove pid file");
    }
    let out = tumen_lab(&["down", "--lab", &id]);
    assert!(out.status.success(), "{out:?}");
    let alive: Vec<&u32> = pids
        .iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(alive.is_empty(), "daemons left running: {alive:?}");
    assert_eq!(namespaces_of(&id), Vec::<String>::new());
}
