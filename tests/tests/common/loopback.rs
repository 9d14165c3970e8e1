//! Helpers for tests that run the real agent and collector on this
//! host's loopback (the agent traces 127.0.0.0/27: every packet stays on
//! `lo`): binaries, scratch directories, processes stopped by their own
//! pid, the collector, the agent, and the agent's closing account.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use tumen_lab::stack::{http_get, metric};

pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps");
    let b = dir.join(name);
    assert!(
        b.is_file(),
        "{} is missing: cargo build -p {name} (same profile as the tests)",
        b.display()
    );
    b
}

/// A scratch directory removed on drop.
/// Six random bytes in hex, for unique names.
pub fn random_hex() -> String {
    let mut b = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);
impl Scratch {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tumen-{tag}-{}", random_hex()));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Self(p)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (by its own pid) and reaped on drop.
pub struct Proc {
    pub child: Option<Child>,
    pub what: String,
}
impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{sig} {}", self.what);
    }
    /// Still running (not exited)?
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// SIGTERM and wait (at most `limit`); true if it exited 0.
    pub fn term(&mut self, limit: Duration) -> bool {
        self.signal("TERM");
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("{} did not stop within {limit:?} of SIGTERM", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Collector {
    pub port: u16,
    pub db: PathBuf,
    pub tokens: PathBuf,
    pub log: PathBuf,
}

impl Collector {
    pub fn new(dir: &Path) -> Self {
        Self {
            port: free_port(),
            db: dir.join("collector.db"),
            tokens: dir.join("tokens"),
            log: dir.join("collector.log"),
        }
    }

    /// Adds an agent; returns the path of its token file.
    pub fn enrol(&self, dir: &Path, agent: &str) -> PathBuf {
        let out = Command::new(bin("tumen-collector"))
            .args(["token", agent, "--token-file"])
            .arg(&self.tokens)
            .output()
            .expect("tumen-collector token");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p = dir.join(format!("{agent}.token"));
        std::fs::write(&p, &out.stdout).expect("token file");
        p
    }

    pub fn start(&self) -> Proc {
        self.start_with(&[], false)
    }

    /// Starts with extra arguments; `tls`: readiness is a TCP connect
    /// (this file speaks no TLS itself).
    pub fn start_with(&self, extra: &[&str], tls: bool) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(bin("tumen-collector"))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--db")
            .arg(&self.db)
            .arg("--token-file")
            .arg(&self.tokens)
            .args(["--target", "127.0.0.0/8"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tumen-collector");
        let p = Proc {
            child: Some(child),
            what: "tumen-collector".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = || {
            if tls {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            } else {
                http_get(self.port, "/readyz").is_some()
            }
        };
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "collector not ready: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    pub fn metrics(&self) -> String {
        http_get(self.port, "/metrics").expect("collector /metrics")
    }

    /// Results stored (the collector must be stopped): traces + pings, and
    /// distinct ids among them.
    pub fn stored(&self) -> (u64, u64) {
        let out = Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                 n=c.execute('select (select count(*) from traces)+(select count(*) from pings)').fetchone()[0]; \
                 d=c.execute('select count(*) from (select id from traces union select id from pings)').fetchone()[0]; \
                 print(n, d)",
            )
            .arg(&self.db)
            .output()
            .expect("python3 sqlite3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = String::from_utf8_lossy(&out.stdout);
        let mut it = s
            .split_whitespace()
            .map(|x| x.parse::<u64>().expect("count"));
        (it.next().expect("n"), it.next().expect("distinct"))
    }
}

/// The agent's own account, from its last `spool:` line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub appended: u64,
    pub committed: u64,
    pub pending: u64,
    pub dropped_full: u64,
    pub dropped_write_error: u64,
    pub quarantined: u64,
    pub torn: u64,
    pub corrupt: u64,
}

impl Account {
    /// Results dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_write_error
    }
}

pub fn account(stderr: &str) -> Account {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("tumen-agent: spool: ") && l.contains(" appended, "))
        .unwrap_or_else(|| panic!("no spool summary in the agent's stderr:\n{stderr}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    assert_eq!(n.len(), 8, "{line}");
    Account {
        appended: n[0],
        committed: n[1],
        pending: n[2],
        dropped_full: n[3],
        dropped_write_error: n[4],
        quarantined: n[5],
        torn: n[6],
        corrupt: n[7],
    }
}

pub struct Agent {
    pub spool: PathBuf,
    pub token: PathBuf,
    pub log: PathBuf,
    pub metrics_port: u16,
    pub name: String,
    /// `--interval`.
    pub interval: String,
}

impl Agent {
    pub fn start(&self, collector_port: u16, extra: &[&str]) -> Proc {
        let mut args = vec!["--insecure-http"];
        args.extend_from_slice(extra);
        self.start_url(&format!("http://127.0.0.1:{collector_port}"), &args)
    }

    pub fn start_url(&self, url: &str, extra: &[&str]) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(bin("tumen-agent"))
            .args([
                "--id",
                &self.name,
                "--allow-reserved",
                "--target",
                "127.0.0.0/27",
                "--hosts",
                "all",
                "--interval",
                &self.interval,
                "--pps",
                "2000",
                "--retry-max",
                "1s",
                "--collector",
                url,
                "--metrics-listen",
                &format!("127.0.0.1:{}", self.metrics_port),
            ])
            .arg("--token-file")
            .arg(&self.token)
            .arg("--spool")
            .arg(&self.spool)
            .args(extra)
            .args(if extra.contains(&"--shutdown-grace") {
                &[][..]
            } else {
                &["--shutdown-grace", "30s"][..]
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tumen-agent");
        Proc {
            child: Some(child),
            what: format!("tumen-agent {}", self.name),
        }
    }

    pub fn metrics(&self) -> Option<String> {
        http_get(self.metrics_port, "/metrics")
    }

    /// Waits until the agent's metric reaches `at_least`.
    pub fn wait_metric(&self, series: &str, at_least: f64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = self.metrics().and_then(|m| metric(&m, series)) {
                if v >= at_least {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{series} did not reach {at_least} within {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
