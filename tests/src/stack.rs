//! The whole Tumen stack on a lab: an agent on every vantage point, the
//! collector, Prometheus and Alertmanager (Debian's packages, temporary
//! configs on loopback, the rules shipped in `deploy/prometheus/`), and a
//! webhook receiver for the alerts. Used by the end-to-end test and by
//! `tumen-lab demo`.
//!
//! The agents reach the collector over a management veth per vantage
//! point (198.51.100.0/24, root side .1/.5/.9, ...): their probes stay in
//! the lab. Everything is stopped (by its own pid) and removed when the
//! [`Stack`] is dropped, the lab last.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::lab::{find_tool, Lab};
use crate::Scenario;

/// How the stack runs. `None`: the component's own default.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub scenario: String,
    /// Directory of `tumen-agent` and `tumen-collector`.
    pub bin_dir: PathBuf,
    /// `deploy/prometheus` (the rules loaded).
    pub rules_dir: PathBuf,
    pub agent_interval: Option<String>,
    pub hysteresis: Option<u32>,
    /// Prometheus scrape and rule evaluation interval.
    pub scrape: Duration,
    /// Alertmanager `group_wait` (and `group_interval`).
    pub group_wait: Duration,
    /// Real BGP in the lab (BIRD), and, when the scenario has a route
    /// collector, its BMP feed into the Tumen collector (`--bmp-listen`).
    pub bgp: bool,
    /// More collector configuration (TOML, e.g. a `[bgp]` table).
    pub collector_toml: Option<String>,
    /// Every `for:` of the shipped alert rules replaced by this (a test
    /// that cannot wait ten minutes says so); `None`: the rules as shipped.
    pub alert_for: Option<Duration>,
}

impl StackConfig {
    /// Settings as shipped: agent and collector defaults, Prometheus every
    /// 15 s, Alertmanager `group_wait` 30 s (deploy/).
    pub fn defaults(bin_dir: PathBuf, rules_dir: PathBuf) -> Self {
        Self {
            scenario: "dprk-2017".into(),
            bin_dir,
            rules_dir,
            agent_interval: None,
            hysteresis: None,
            scrape: Duration::from_secs(15),
            group_wait: Duration::from_secs(30),
            bgp: false,
            collector_toml: None,
            alert_for: None,
        }
    }

    /// Tightened: agents every 2 s, hysteresis 2, Prometheus every 1 s,
    /// `group_wait` 1 s.
    pub fn tight(bin_dir: PathBuf, rules_dir: PathBuf) -> Self {
        Self {
            agent_interval: Some("2s".into()),
            hysteresis: Some(2),
            scrape: Duration::from_secs(1),
            group_wait: Duration::from_secs(1),
            ..Self::defaults(bin_dir, rules_dir)
        }
    }
}

/// A child stopped (SIGKILL, by its own pid) and reaped on drop.
#[derive(Debug)]
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A veth into a node's namespace, deleted on drop.
#[derive(Debug)]
struct Veth(String);
impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// Alerts the webhook received: (when, the alert's JSON).
pub type Received = Arc<Mutex<Vec<(Instant, serde_json::Value)>>>;

/// The running stack.
#[derive(Debug)]
pub struct Stack {
    // Drop order is field order: agents, links, servers, then the lab.
    agents: Vec<Proc>,
    links: Vec<Veth>,
    servers: Vec<Proc>,
    pub lab: Lab,
    pub dir: PathBuf,
    pub vantage_points: Vec<String>,
    pub collector_port: u16,
    pub prometheus_port: u16,
    pub alertmanager_port: u16,
    /// Where the collector takes BMP (when [`StackConfig::bgp`]).
    pub bmp_port: Option<u16>,
    pub received: Received,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.agents.clear();
        self.links.clear();
        self.servers.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(mut cmd: Command, log: &Path, what: &str) -> Result<Proc> {
    let f = std::fs::File::create(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn()
        .with_context(|| format!("start {what}"))?;
    Ok(Proc(child))
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// HTTP/1.0 GET on loopback: the body of a 200, else None.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

/// A sample's value in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Links `node` to the root namespace: root side 198.51.100.(4i+1)/30,
/// node side .(4i+2). Returns the guard and the root side's address.
fn mgmt_link(lab: &Lab, node: &str, i: u8, tag: &str) -> Result<(Veth, String)> {
    let ns = lab.ns(node)?;
    let root_if = format!("tm{tag}{i}");
    let root_ip = format!("198.51.100.{}", 4 * i + 1);
    let node_ip = format!("198.51.100.{}", 4 * i + 2);
    run(Command::new("ip").args([
        "link", "add", &root_if, "type", "veth", "peer", "name", "mgmt0", "netns", &ns,
    ]))?;
    let guard = Veth(root_if.clone());
    run(Command::new("ip").args(["addr", "add", &format!("{root_ip}/30"), "dev", &root_if]))?;
    run(Command::new("ip").args(["link", "set", &root_if, "up"]))?;
    run(Command::new("ip").args([
        "netns",
        "exec",
        &ns,
        "ip",
        "addr",
        "add",
        &format!("{node_ip}/30"),
        "dev",
        "mgmt0",
    ]))?;
    run(Command::new("ip").args(["netns", "exec", &ns, "ip", "link", "set", "mgmt0", "up"]))?;
    Ok((guard, root_ip))
}

/// An HTTP server taking Alertmanager's webhook POSTs.
fn webhook() -> Result<(u16, Received)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let Ok(clone) = s.try_clone() else { continue };
            let mut r = BufReader::new(clone);
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len.min(16 << 20)];
            if r.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let now = Instant::now();
                    if let Ok(mut g) = g.lock() {
                        for a in v["alerts"].as_array().cloned().unwrap_or_default() {
                            g.push((now, a));
                        }
                    }
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    Ok((port, got))
}

impl Stack {
    /// Brings the lab and everything on it up, and waits until each
    /// server answers.
    pub fn up(cfg: &StackConfig) -> Result<Self> {
        let prometheus =
            find_tool("prometheus").context("prometheus not found: apt-get install prometheus")?;
        let alertmanager = find_tool("prometheus-alertmanager")
            .or_else(|| find_tool("alertmanager"))
            .context("alertmanager not found: apt-get install prometheus-alertmanager")?;
        let agent_bin = cfg.bin_dir.join("tumen-agent");
        let collector_bin = cfg.bin_dir.join("tumen-collector");
        for b in [&agent_bin, &collector_bin] {
            if !b.is_file() {
                bail!("{} is missing: build it first", b.display());
            }
        }
        let scenario = Scenario::load(&cfg.scenario)?;
        let routing = if cfg.bgp {
            crate::lab::Routing::Bgp
        } else {
            crate::lab::Routing::Static
        };
        let lab = Lab::up_with(scenario, routing)?;
        let dir = std::env::temp_dir().join(format!("tumen-stack-{}", random_hex(6)));
        std::fs::create_dir_all(&dir)?;
        let s = lab.scenario().clone();
        let vantage_points: Vec<String> =
            s.vantage_points().iter().map(|v| v.to_string()).collect();
        let (hook_port, received) = webhook()?;
        if vantage_points.len() >= 60 {
            bail!("more than 59 vantage points: management links would collide");
        }
        let mut stack = Stack {
            agents: Vec::new(),
            links: Vec::new(),
            servers: Vec::new(),
            lab,
            dir: dir.clone(),
            vantage_points: vantage_points.clone(),
            collector_port: free_port()?,
            prometheus_port: free_port()?,
            alertmanager_port: free_port()?,
            bmp_port: None,
            received,
        };
        let d = |n: &str| dir.join(n);

        // The lab's prefix -> ASN table, a token per vantage point, the collector.
        let mut table = String::new();
        for e in &s.asns {
            table.push_str(&format!(
                "{}\t{}\t{}\n",
                e.prefix.network(),
                e.prefix.prefix_len(),
                e.asn
            ));
        }
        std::fs::write(d("lab.pfx2as"), table)?;
        for vp in &vantage_points {
            let out = Command::new(&collector_bin)
                .args(["token", vp, "--token-file"])
                .arg(d("tokens"))
                .output()?;
            if !out.status.success() {
                bail!(
                    "tumen-collector token: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::fs::write(d(&format!("{vp}.token")), &out.stdout)?;
        }
        let cport = stack.collector_port;
        let mut cmd = Command::new(&collector_bin);
        cmd.args([
            "serve",
            "--listen",
            &format!("0.0.0.0:{cport}"),
            "--insecure-http",
        ])
        .arg("--db")
        .arg(d("c.db"))
        .arg("--token-file")
        .arg(d("tokens"))
        .arg("--asn-table")
        .arg(d("lab.pfx2as"));
        if let Some(k) = cfg.hysteresis {
            cmd.args(["--hysteresis", &k.to_string()]);
        }
        for t in &s.targets {
            cmd.args(["--target", &t.to_string()]);
        }
        let route_collector = s.bgp.as_ref().and_then(|b| b.collector.clone());
        if cfg.bgp && route_collector.is_some() {
            let port = free_port()?;
            stack.bmp_port = Some(port);
            cmd.args(["--bmp-listen", &format!("0.0.0.0:{port}")]);
        }
        if let Some(toml) = &cfg.collector_toml {
            std::fs::write(d("collector.toml"), toml)?;
            cmd.arg("--config").arg(d("collector.toml"));
        }
        stack
            .servers
            .push(spawn(cmd, &d("collector.log"), "tumen-collector")?);
        wait_for(Duration::from_secs(30), "collector ready", || {
            http_get(cport, "/readyz")
        })?;

        // The route collector's BMP feed, over a management link into its
        // namespace (198.51.100.240/30: scenarios give the collector's own
        // sessions the start of 198.51.100.0/24, as the vantage points'
        // management links do, in other namespaces).
        let tag = random_hex(2);
        if let (Some(port), Some(c)) = (stack.bmp_port, &route_collector) {
            let (veth, addr) = mgmt_link(&stack.lab, &c.node, 60, &tag)?;
            stack.links.push(veth);
            crate::bird::bmp_add(stack.lab.id(), &s, &format!("{addr}:{port}"))
                .context("gobgp bmp add")?;
        }

        // Alertmanager and Prometheus.
        let amport = stack.alertmanager_port;
        let gw = cfg.group_wait.as_secs().max(1);
        std::fs::write(
            d("alertmanager.yml"),
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname, prefix]\n  group_wait: {gw}s\n  \
                 group_interval: {gw}s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
                 webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/alert\n"
            ),
        )?;
        let mut cmd = Command::new(&alertmanager);
        cmd.arg(format!("--config.file={}", d("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", d("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{amport}"))
            .arg("--cluster.listen-address=");
        stack
            .servers
            .push(spawn(cmd, &d("alertmanager.log"), "alertmanager")?);
        let pport = stack.prometheus_port;
        let every = cfg.scrape.as_secs().max(1);
        let alert_rules = match cfg.alert_for {
            None => cfg.rules_dir.join("alert_rules.yml"),
            Some(f) => {
                let text = std::fs::read_to_string(cfg.rules_dir.join("alert_rules.yml"))?;
                let short: String = text
                    .lines()
                    .map(|l| match l.trim_start().strip_prefix("for:") {
                        Some(v) if !matches!(v.trim(), "0m" | "0s") => {
                            let indent = &l[..l.len() - l.trim_start().len()];
                            format!("{indent}for: {}s\n", f.as_secs())
                        }
                        _ => format!("{l}\n"),
                    })
                    .collect();
                std::fs::write(d("alert_rules.yml"), short)?;
                d("alert_rules.yml")
            }
        };
        std::fs::write(
            d("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: {every}s\n  evaluation_interval: {every}s\n\
                 rule_files:\n  - {}\n  - {}\nalerting:\n  alertmanagers:\n    - static_configs:\n\
                 \x20       - targets: ['127.0.0.1:{amport}']\nscrape_configs:\n  - job_name: tumen-collector\n\
                 \x20   static_configs:\n      - targets: ['127.0.0.1:{cport}']\n",
                alert_rules.display(),
                cfg.rules_dir.join("recording_rules.yml").display()
            ),
        )?;
        let mut cmd = Command::new(&prometheus);
        cmd.arg(format!("--config.file={}", d("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", d("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"));
        stack
            .servers
            .push(spawn(cmd, &d("prometheus.log"), "prometheus")?);
        wait_for(Duration::from_secs(60), "prometheus ready", || {
            http_get(pport, "/-/ready")
        })?;
        wait_for(Duration::from_secs(60), "alertmanager ready", || {
            http_get(amport, "/-/ready")
        })?;

        // An agent on every vantage point, uploading over its management link.
        let targets: Vec<String> = s
            .targets
            .iter()
            .filter(|t| t.addr().is_ipv4())
            .map(ToString::to_string)
            .collect();
        for (i, vp) in vantage_points.iter().enumerate() {
            let (veth, addr) = mgmt_link(&stack.lab, vp, i as u8, &tag)?;
            stack.links.push(veth);
            let mut cmd = stack
                .lab
                .command(vp, agent_bin.to_str().context("utf-8 path")?)?;
            cmd.args(["--id", vp, "--allow-reserved", "--hosts", "1"])
                .args(["--insecure-http", "--retry-max", "2s"])
                .args(["--collector", &format!("http://{addr}:{cport}")])
                .arg("--token-file")
                .arg(d(&format!("{vp}.token")))
                .arg("--spool")
                .arg(d(&format!("spool-{vp}")));
            if let Some(i) = &cfg.agent_interval {
                cmd.args(["--interval", i]);
            }
            for t in &targets {
                cmd.args(["--target", t]);
            }
            stack
                .agents
                .push(spawn(cmd, &d(&format!("agent-{vp}.log")), "tumen-agent")?);
        }
        Ok(stack)
    }

    /// The collector's /metrics.
    pub fn collector_metrics(&self) -> Option<String> {
        http_get(self.collector_port, "/metrics")
    }

    /// Alerts received so far.
    pub fn alerts(&self) -> Vec<(Instant, serde_json::Value)> {
        self.received.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut names = vec![
            "collector.log".to_string(),
            "prometheus.log".into(),
            "alertmanager.log".into(),
        ];
        names.extend(self.vantage_points.iter().map(|v| format!("agent-{v}.log")));
        let mut s = String::new();
        for n in names {
            let text = std::fs::read_to_string(self.dir.join(&n)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            s.push_str(&format!("--- {n} (last lines)\n"));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}
