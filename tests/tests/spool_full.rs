//! The spool on a tiny filesystem that fills (issue 5): a clear error,
//! bounded behaviour as documented in `agent/src/spool.rs`, and probing
//! that continues.
//!
//! The real `tumen-agent` (raw sockets, tracing loopback addresses
//! 127.0.0.0/27: every packet stays on this host's `lo`) spools on a
//! 256 KiB tmpfs mounted for the test, with `--spool-max` far above that,
//! so the filesystem fills long before the spool's own bound. Its
//! collector is a loopback port where nothing listens at first: nothing is
//! uploaded and the spool fills.
//!
//! 1. The filesystem is full before the agent starts (another file took
//!    it): every result fails to be written (`No space left on device`),
//!    is counted as `dropped (write error)`, the agent says so on stderr,
//!    and rounds go on.
//! 2. That file is removed and the spool fills the filesystem by itself:
//!    the spool drops its oldest segment to make room (`dropped (full)`),
//!    its size stays within the filesystem, the agent says so on stderr,
//!    and rounds go on.
//! 3. The real collector starts on the agent's port; the agent is stopped
//!    with SIGTERM and drains its spool within the grace period. The books
//!    must balance: what the agent appended is what the collector stored
//!    plus what the spool dropped from full segments; write-error drops
//!    were never appended; nothing pending.
//!
//! Needs root (the agent's raw sockets and `mount -t tmpfs`). The binaries
//! are those of this build (`<target>/<profile>/tumen-agent`,
//! `tumen-collector`).

mod common;

use common::loopback::{account, free_port, metric, random_hex, Agent, Collector, Scratch};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Size of the spool's filesystem.
const FS_BYTES: u64 = 256 << 10;
/// Destinations per round (`--target 127.0.0.0/27 --hosts all`); one
/// result each.
const HOSTS: u64 = 32;

/// A tmpfs of `FS_BYTES` mounted on a fresh directory; unmounted and the
/// directory removed on drop, also when the test fails.
struct Tmpfs(PathBuf);
impl Tmpfs {
    fn mount(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tumen-spool-fs-{tag}-{}", random_hex()));
        std::fs::create_dir(&p).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={}k,mode=0700", FS_BYTES >> 10))
            .arg("tmpfs")
            .arg(&p)
            .output()
            .expect("mount");
        if !out.status.success() {
            let _ = std::fs::remove_dir(&p);
            panic!(
                "mount -t tmpfs on {} failed (this test needs root): {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self(p)
    }

    /// (total, available) bytes, from statvfs (`stat -f`).
    fn space(&self) -> (u64, u64) {
        let out = Command::new("stat")
            .args(["-f", "-c", "%S %b %a"])
            .arg(&self.0)
            .output()
            .expect("stat -f");
        assert!(out.status.success(), "stat -f {}", self.0.display());
        let s = String::from_utf8_lossy(&out.stdout);
        let n: Vec<u64> = s
            .split_whitespace()
            .map(|x| x.parse().expect("number"))
            .collect();
        (n[0] * n[1], n[0] * n[2])
    }

    fn free(&self) -> u64 {
        self.space().1
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a child not reaped yet): detach it now, the
            // kernel frees it when the last user goes.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
        // remove_dir, not remove_dir_all: never delete through a mount.
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes to `path` until the filesystem is full; returns the bytes taken.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = [0x5au8; 4096];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => panic!("filler: write returned 0"),
            Ok(k) => n += k as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "filler: {e}");
                return n;
            }
        }
    }
}

/// Rounds the agent says it completed, from its `stopped after` line.
fn rounds_at_stop(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("tumen-agent: stopped after "))
        .unwrap_or_else(|| panic!("no `stopped after` line in the agent's stderr:\n{stderr}"));
    line.split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// The agent's metrics that matter here, at one moment.
#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    rounds: f64,
    sent: f64,
    appended: f64,
    committed: f64,
    dropped_full: f64,
    dropped_write_error: f64,
    spool_bytes: f64,
    spool_records: f64,
}

impl Agent {
    fn sample(&self) -> Option<Sample> {
        let m = self.metrics()?;
        let g = |s: &str| metric(&m, s);
        Some(Sample {
            rounds: g("tumen_agent_rounds_total")?,
            sent: g("tumen_agent_probes_sent_total")?,
            appended: g("tumen_agent_spool_appended_total")?,
            committed: g("tumen_agent_spool_committed_total")?,
            dropped_full: g("tumen_agent_spool_dropped_total{reason=\"full\"}")?,
            dropped_write_error: g("tumen_agent_spool_dropped_total{reason=\"write_error\"}")?,
            spool_bytes: g("tumen_agent_spool_bytes")?,
            spool_records: g("tumen_agent_spool_records")?,
        })
    }

    /// Samples every 50 ms (calling `each` on every sample) until `done`;
    /// returns the sample that satisfied it.
    fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut each: impl FnMut(&Sample),
        done: impl Fn(&Sample) -> bool,
    ) -> Sample {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.sample() {
                each(&s);
                if done(&s) {
                    return s;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; last sample {:?}\n{}",
                self.sample(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Lines of the agent's stderr about the spool (not its final summary).
fn spool_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("tumen-agent: spool") && !l.contains(" appended, "))
        .collect()
}

/// A scratch directory (collector database, logs), the tmpfs for the
/// spool, a collector (not started) and an agent spooling on the tmpfs.
/// The processes a test starts are dropped (killed) before these.
fn setup(tag: &str) -> (Scratch, Tmpfs, Collector, Agent) {
    let dir = Scratch::new(&format!("spool-full-{tag}"));
    let fs = Tmpfs::mount(tag);
    let (total, free) = fs.space();
    assert_eq!((total, free), (FS_BYTES, FS_BYTES), "tmpfs size");
    let c = Collector::new(&dir.0);
    let token = c.enrol(&dir.0, "vp-lo");
    let agent = Agent {
        spool: fs.0.join("spool"),
        token,
        log: dir.0.join("agent.log"),
        metrics_port: free_port(),
        name: "vp-lo".into(),
        interval: "1s".into(),
    };
    (dir, fs, c, agent)
}

#[test]
fn a_spool_on_a_filesystem_that_fills_drops_as_documented_says_so_and_probing_continues() {
    let (_dir, fs, c, agent) = setup("fills");
    // Breaches of the agent's promises, gathered so that one run shows
    // them all; the test fails at the end if there is any.
    let mut problems: Vec<String> = Vec::new();

    // 1. Full before the agent starts: nothing can be written.
    let filler = fs.0.join("filler");
    let taken = fill(&filler);
    assert_eq!(fs.free(), 0, "the filler took {taken} bytes");
    // The collector's port: nothing listens there until part 3.
    let mut a = agent.start(c.port, &["--spool-max", "64MiB"]);
    let s0 = agent.wait_for(
        "a result dropped for a write error",
        Duration::from_secs(30),
        |_| {},
        |s| s.dropped_write_error >= 1.0,
    );
    let s1 = agent.wait_for(
        "3 more rounds on the full filesystem",
        Duration::from_secs(30),
        |_| {},
        |s| s.rounds >= s0.rounds + 3.0,
    );
    assert!(a.running(), "the agent exited:\n{}", agent.stderr());
    assert_eq!(fs.free(), 0, "still full");
    assert!(
        s1.sent > s0.sent,
        "probes sent did not grow on a full disk: {s0:?} -> {s1:?}"
    );
    assert!(
        s1.dropped_write_error >= s0.dropped_write_error + 2.0 * HOSTS as f64,
        "the results of every round on the full disk are counted as dropped: {s0:?} -> {s1:?}"
    );
    assert_eq!(s1.appended, 0.0, "nothing fits on a full disk: {s1:?}");
    let log = agent.stderr();
    let said = spool_lines(&log);
    assert!(
        said.iter()
            .any(|l| l.contains("No space left on device") && l.contains("probing continues")),
        "no clear `spool: ... No space left on device ... probing continues` on stderr:\n{log}"
    );
    // Logged at most every 10 s, not once per result.
    assert!(said.len() <= 2, "{said:#?}");
    eprintln!(
        "1. full from the start: {} round(s), {} result(s) dropped (write error); said: {}",
        s1.rounds - s0.rounds,
        s1.dropped_write_error,
        said[0]
    );

    // 2. The filler goes: the spool fills the filesystem by itself.
    let mark = agent.stderr().len();
    std::fs::remove_file(&filler).expect("remove filler");
    let mut least_free = u64::MAX;
    let mut most_bytes = 0.0f64;
    let mut most_records = 0.0f64;
    let full = agent.wait_for(
        "the spool filling the filesystem and dropping its oldest results",
        Duration::from_secs(120),
        |s| {
            least_free = least_free.min(fs.free());
            most_bytes = most_bytes.max(s.spool_bytes);
            most_records = most_records.max(s.spool_records);
        },
        |s| s.dropped_full >= 1.0,
    );
    // Only the filesystem can have caused the drop: --spool-max is 64 MiB.
    assert!(
        least_free <= FS_BYTES / 8,
        "the filesystem never came near full (least free {least_free} bytes) before the drop"
    );
    let after = agent.wait_for(
        "3 more rounds after the filesystem filled",
        Duration::from_secs(30),
        |s| {
            least_free = least_free.min(fs.free());
            most_bytes = most_bytes.max(s.spool_bytes);
            most_records = most_records.max(s.spool_records);
        },
        |s| s.rounds >= full.rounds + 3.0,
    );
    assert!(a.running(), "the agent exited:\n{}", agent.stderr());
    assert!(
        after.sent > full.sent && after.appended > full.appended,
        "probing and spooling stopped once the disk was full: {full:?} -> {after:?}"
    );
    assert!(
        most_bytes > 0.0 && most_bytes <= FS_BYTES as f64,
        "spool bytes {most_bytes} not within the {FS_BYTES}-byte filesystem"
    );
    let segments: u64 = std::fs::read_dir(&agent.spool)
        .expect("spool dir")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(segments <= FS_BYTES, "{segments} bytes in the spool dir");
    let log = agent.stderr();
    let said: Vec<&str> = spool_lines(&log[mark..]);
    if !said.iter().any(|l| {
        l.contains("No space left on device") || l.contains("full") || l.contains("dropped")
    }) {
        problems.push(format!(
            "the spool dropped {} result(s) to make room on the full filesystem and said \
             nothing on stderr (only /metrics counts it): no `tumen-agent: spool...` line since \
             the filler was removed",
            after.dropped_full
        ));
    }
    eprintln!(
        "2. filled by the spool: least free {least_free} B, spool at most {most_bytes} B / \
         {most_records} result(s); {} dropped (full) so far; rounds {} -> {}, probes {} -> {}",
        after.dropped_full, full.rounds, after.rounds, full.sent, after.sent
    );

    // 3. The collector comes; the agent stops and drains its spool.
    let mut cp = c.start();
    agent.wait_for(
        "a first batch committed",
        Duration::from_secs(30),
        |_| {},
        |s| s.committed >= 1.0,
    );
    assert!(a.term(Duration::from_secs(60)), "agent exit status");
    let log = agent.stderr();
    let acc = account(&log);
    let rounds = rounds_at_stop(&log);
    assert!(cp.term(Duration::from_secs(30)), "collector exit status");
    let (stored, distinct) = c.stored();
    eprintln!("3. drained: {acc:?}; {rounds} round(s); {stored} stored");
    assert_eq!(
        (acc.pending, acc.quarantined, acc.torn, acc.corrupt),
        (0, 0, 0, 0),
        "{acc:?}\n{log}"
    );
    assert!(
        acc.dropped_write_error > 0 && acc.dropped_full > 0,
        "{acc:?}"
    );
    assert_eq!(distinct, stored, "a result stored twice");
    // Every result is either written (appended) or dropped for a write
    // error; a round may have been cut short by SIGTERM.
    let produced = acc.appended + acc.dropped_write_error;
    if !(rounds * HOSTS..=(rounds + 1) * HOSTS).contains(&produced) {
        problems.push(format!(
            "{rounds} round(s) of {HOSTS} results, but appended + dropped (write error) = \
             {produced}: {acc:?}"
        ));
    }
    // The collector has exactly what the agent says it committed.
    if stored != acc.committed {
        problems.push(format!(
            "the collector stored {stored} result(s), the agent counts {} committed: {acc:?}",
            acc.committed
        ));
    }
    // Appended records leave the spool only by a commit or a drop of a
    // whole segment (`dropped (full)`, counted after being appended);
    // write errors were never appended. Nothing pending, nothing in
    // quarantine: appended = stored + dropped (full).
    if stored + acc.dropped_full != acc.appended {
        problems.push(format!(
            "appended {} != stored {stored} + dropped (full) {} (off by {}): {acc:?}",
            acc.appended,
            acc.dropped_full,
            (stored + acc.dropped_full) as i64 - acc.appended as i64
        ));
    }
    let upload_spool_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("tumen-agent: upload: spool"))
        .collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  - {}\nspool errors in the upload path: {upload_spool_errors:#?}\n\
         agent stderr (upload retries left out):\n{}",
        problems.len(),
        problems.join("\n  - "),
        log.lines()
            .filter(|l| !l.contains("Connection refused"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The collector commits a batch while the filesystem is full (another
/// file took it): the spool cannot write its cursor file. The results are
/// committed all the same; the agent must not go on counting them as
/// pending (nor, later, as dropped). One round only (`--interval 1h`), so
/// that no append races the upload. (Before commit 5d83a04, `Spool::ack`
/// moved the cursor and counted the batch committed, then returned on the
/// failed cursor write before lowering the segment's record count: the
/// 32 results stayed "pending" for good.)
#[test]
fn results_committed_while_the_filesystem_is_full_are_not_left_pending() {
    let (_dir, fs, c, mut agent) = setup("ack");
    agent.interval = "1h".into();
    let mut a = agent.start(c.port, &["--spool-max", "64MiB"]);
    let s = agent.wait_for(
        "the first round spooled",
        Duration::from_secs(30),
        |_| {},
        |s| s.rounds >= 1.0,
    );
    assert_eq!(
        (s.appended, s.dropped_full, s.dropped_write_error),
        (HOSTS as f64, 0.0, 0.0),
        "{s:?}"
    );
    fill(&fs.0.join("filler"));
    assert_eq!(fs.free(), 0);
    let mut cp = c.start();
    let s = agent.wait_for(
        "the round's results committed",
        Duration::from_secs(30),
        |_| {},
        |s| s.committed >= HOSTS as f64,
    );
    // The uploader is idle now (nothing left to read past the cursor).
    std::thread::sleep(Duration::from_millis(500));
    let idle = agent.sample().expect("agent metrics");
    assert!(a.term(Duration::from_secs(60)), "agent exit status");
    let log = agent.stderr();
    let acc = account(&log);
    assert!(cp.term(Duration::from_secs(30)), "collector exit status");
    let (stored, distinct) = c.stored();
    eprintln!("committed on a full disk: {acc:?}; {stored} stored; metrics {s:?}");
    assert_eq!((stored, distinct), (HOSTS, HOSTS));
    assert_eq!(acc.committed, stored, "{acc:?}");
    let mut problems = Vec::new();
    if idle.spool_records != 0.0 || acc.pending != 0 {
        problems.push(format!(
            "the collector committed all {stored} results, yet the agent counts {} pending \
             (tumen_agent_spool_records {} once the uploader was idle)",
            acc.pending, idle.spool_records
        ));
    }
    if acc.appended != acc.committed + acc.pending + acc.dropped_full {
        problems.push(format!(
            "appended {} != committed {} + pending {} + dropped (full) {}",
            acc.appended, acc.committed, acc.pending, acc.dropped_full
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  - {}\nagent stderr (upload retries left out):\n{}",
        problems.len(),
        problems.join("\n  - "),
        log.lines()
            .filter(|l| !l.contains("Connection refused"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
