//! Hostile and broken peers (issue 13): probing never waits on the
//! collector. The real `tumen-agent` (raw sockets, tracing 127.0.0.0/27:
//! every packet stays on this host's `lo`) with `--interval 1s` must go on
//! completing about a round a second while its collector
//!
//! - is stopped with SIGSTOP (the kernel still accepts TCP connections,
//!   nobody answers), then continued: everything spooled arrives, once;
//! - is a listener that accepts and never answers;
//! - is a listener that resets every connection.
//!
//! In each case the collector hands out a schedule (or the agent asks for
//! one), so the schedule fetch, the refusal report and the uploads all
//! meet the fault. Rounds are counted on the agent's own `/metrics`
//! (`tumen_agent_rounds_total`) over 10 s.
//!
//! Needs root (the agent's raw sockets). The binaries are those of this
//! build (`cargo build -p tumen-agent -p tumen-collector`).

mod common;

use common::loopback::{account, free_port, metric, Agent, Collector, Proc, Scratch};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long rounds are counted, and how many must complete in that time
/// with `--interval 1s` (about one per interval, some slack for a loaded
/// host).
const WINDOW: Duration = Duration::from_secs(10);
const MIN_ROUNDS: f64 = 7.0;

fn agent_in(dir: &Scratch, token: std::path::PathBuf) -> Agent {
    Agent {
        spool: dir.0.join("spool"),
        token,
        log: dir.0.join("agent.log"),
        metrics_port: free_port(),
        name: "vp-lo".into(),
        interval: "1s".into(),
    }
}

/// A collector that hands out a schedule (so the agent fetches it every
/// round, and reports a refusal: `pps` above the agent's cap).
fn scheduling_collector(dir: &Scratch) -> Collector {
    let c = Collector::new(&dir.0);
    std::fs::write(
        dir.0.join("collector.toml"),
        "[schedule]\ntargets = [\"127.0.0.0/27\"]\nprobes = 1\npps = 100000\n",
    )
    .expect("collector config");
    c
}

fn start_scheduling(c: &Collector, dir: &Scratch) -> Proc {
    let conf = dir.0.join("collector.toml");
    c.start_with(&["--config", conf.to_str().expect("utf-8")], false)
}

fn rounds(agent: &Agent) -> f64 {
    agent
        .metrics()
        .and_then(|m| metric(&m, "tumen_agent_rounds_total"))
        .unwrap_or_else(|| panic!("agent /metrics unreachable:\n{}", agent.stderr()))
}

/// Rounds the agent completes in [`WINDOW`].
fn rounds_in_window(agent: &Agent) -> f64 {
    let before = rounds(agent);
    std::thread::sleep(WINDOW);
    rounds(agent) - before
}

fn wait_metrics_up(agent: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.metrics().is_none() {
        assert!(
            Instant::now() < deadline,
            "agent /metrics not up:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGCONT to a stopped process when dropped, so that it can be
/// stopped cleanly even when an assertion fails while it is stopped.
struct Continue(i32);
impl Drop for Continue {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// A fake collector on 127.0.0.1: every connection is accepted, then
/// handled by `conn` on a thread of its own. Stops on drop.
struct FakeCollector {
    port: u16,
    connections: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FakeCollector {
    fn start(conn: fn(TcpStream, &AtomicBool)) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("fake collector");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let (st, n) = (stop.clone(), connections.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        n.fetch_add(1, Ordering::Relaxed);
                        let _ = s.set_nonblocking(false);
                        let st = st.clone();
                        std::thread::spawn(move || conn(s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            connections,
            stop,
        }
    }
}

impl Drop for FakeCollector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads the request and never answers; the connection stays open until
/// the test ends.
fn never_answer(mut s: TcpStream, stop: &AtomicBool) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Waits for the request's first bytes and closes without reading them:
/// Linux answers a close with unread data with a RST (RFC 2525), the
/// same as SO_LINGER 0, without unsafe code or another dependency.
fn reset(s: TcpStream, _stop: &AtomicBool) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.peek(&mut [0u8; 1]);
    drop(s);
}

/// SIGTERM with the collector unreachable: the agent stops within its
/// grace (2 s) plus a margin, and keeps every result in the spool.
fn stop_within_grace(agent: &Agent, mut a: Proc) {
    let t0 = Instant::now();
    assert!(a.term(Duration::from_secs(30)), "agent exit status");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "SIGTERM to exit took {took:?} with a 2 s grace:\n{}",
        agent.stderr()
    );
    let acc = account(&agent.stderr());
    assert!(acc.appended > 0, "{acc:?}");
    assert_eq!(
        (acc.pending, acc.committed, acc.dropped()),
        (acc.appended, 0, 0),
        "{acc:?}"
    );
}

#[test]
fn a_collector_stopped_with_sigstop_does_not_slow_the_rounds_and_gets_everything_after_sigcont() {
    let dir = Scratch::new("faults-sigstop");
    let c = scheduling_collector(&dir);
    let token = c.enrol(&dir.0, "vp-lo");
    let agent = agent_in(&dir, token);
    let mut cp = start_scheduling(&c, &dir);
    let mut a = agent.start(c.port, &[]);
    // The schedule is in force and uploads work before the fault.
    agent.wait_metric(
        "tumen_agent_schedule_fetched_timestamp_seconds",
        1.0,
        Duration::from_secs(30),
    );
    agent.wait_metric(
        "tumen_agent_spool_committed_total",
        1.0,
        Duration::from_secs(30),
    );
    let n = {
        cp.signal("STOP");
        let _cont = Continue(cp.pid());
        rounds_in_window(&agent)
        // SIGCONT here, even if the line above panicked.
    };
    assert!(
        n >= MIN_ROUNDS,
        "{n} round(s) in {WINDOW:?} with --interval 1s while the collector was stopped:\n{}",
        agent.stderr()
    );
    // Continued: the backlog drains. Then the books on both sides.
    let committed = agent
        .metrics()
        .and_then(|m| metric(&m, "tumen_agent_spool_committed_total"))
        .unwrap_or(0.0);
    agent.wait_metric(
        "tumen_agent_spool_committed_total",
        committed + 1.0,
        Duration::from_secs(40),
    );
    assert!(a.term(Duration::from_secs(60)), "agent exit status");
    let acc = account(&agent.stderr());
    assert!(cp.term(Duration::from_secs(30)), "collector exit status");
    let (stored, distinct) = c.stored();
    assert!(acc.appended > 0, "{acc:?}");
    assert_eq!(
        (acc.pending, acc.dropped(), acc.quarantined),
        (0, 0, 0),
        "{acc:?}\n{}",
        agent.stderr()
    );
    assert_eq!(stored, acc.appended, "stored vs appended: {acc:?}");
    assert_eq!(distinct, stored, "a result stored twice");
    eprintln!("SIGSTOP: {n} rounds in {WINDOW:?}; {acc:?}");
}

#[test]
fn a_collector_that_accepts_and_never_answers_does_not_slow_the_rounds() {
    let dir = Scratch::new("faults-silent");
    let token = dir.0.join("vp-lo.token");
    std::fs::write(&token, "0123456789abcdef\n").expect("token");
    let agent = agent_in(&dir, token);
    let fake = FakeCollector::start(never_answer);
    let a = agent.start(fake.port, &["--shutdown-grace", "2s"]);
    wait_metrics_up(&agent);
    let n = rounds_in_window(&agent);
    assert!(
        fake.connections.load(Ordering::Relaxed) >= 1,
        "the agent never connected"
    );
    assert!(
        n >= MIN_ROUNDS,
        "{n} round(s) in {WINDOW:?} with --interval 1s against a silent collector:\n{}",
        agent.stderr()
    );
    // A hung schedule fetch or upload does not hold up shutdown either.
    stop_within_grace(&agent, a);
    eprintln!(
        "silent collector: {n} rounds in {WINDOW:?}, {} connection(s)",
        fake.connections.load(Ordering::Relaxed)
    );
}

#[test]
fn a_collector_that_resets_every_connection_does_not_slow_the_rounds() {
    let dir = Scratch::new("faults-reset");
    let token = dir.0.join("vp-lo.token");
    std::fs::write(&token, "0123456789abcdef\n").expect("token");
    let agent = agent_in(&dir, token);
    let fake = FakeCollector::start(reset);
    let a = agent.start(fake.port, &["--shutdown-grace", "2s"]);
    wait_metrics_up(&agent);
    let n = rounds_in_window(&agent);
    assert!(
        fake.connections.load(Ordering::Relaxed) >= 2,
        "the agent did not retry"
    );
    assert!(
        n >= MIN_ROUNDS,
        "{n} round(s) in {WINDOW:?} with --interval 1s against a resetting collector:\n{}",
        agent.stderr()
    );
    stop_within_grace(&agent, a);
    eprintln!(
        "resetting collector: {n} rounds in {WINDOW:?}, {} connection(s) reset",
        fake.connections.load(Ordering::Relaxed)
    );
}
