//! End to end (issue 6): the 2017 TransTeleCom activation replayed in the
//! `dprk-2017` lab with every real piece: an agent on every vantage point
//! (raw sockets, in its namespace), the collector, Prometheus and
//! Alertmanager (Debian's packages, started here with temporary configs
//! on loopback, loading the rules shipped in `deploy/prometheus/`), and a
//! webhook receiver in this test.
//!
//! Before the event every /24 is China Unicom's; after `ttk-activation`
//! the shares follow the scenario (.177-.179 TransTeleCom from vp-fra and
//! vp-sgp, China Unicom from vp-nyc), `TumenUpstreamChanged` reaches the
//! webhook with prefix/from/to labels, and `TumenPrefixUnreachable` never
//! even becomes pending. The time from the route change to the metric
//! changing and to the webhook is printed.
//!
//! The agents reach the collector over a management veth per vantage point
//! (198.51.100.0/24, root namespace side .1/.5/.9): their probes stay in
//! the lab; the collector, Prometheus and Alertmanager listen on this
//! host's loopback (the collector also on the veth addresses).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ttk_moved, up};
use tumen_lab::Lab;

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps");
    let b = dir.join(name);
    assert!(
        b.is_file(),
        "{} is missing: cargo build -p {name}",
        b.display()
    );
    b
}

fn tool(name: &str, package: &str) -> PathBuf {
    tumen_lab::lab::find_tool(name)
        .unwrap_or_else(|| panic!("{name} not found: apt-get install {package}"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// Scratch directory, removed on drop.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A child killed (by its own pid) and reaped on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(mut cmd: Command, log: &Path, what: &'static str) -> Proc {
    let f = std::fs::File::create(log).expect("log");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().expect("log"))
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    Proc(child)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// HTTP/1.0 GET on loopback: the body of a 200, else None.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A veth from the root namespace into a vantage point's namespace.
struct Veth(String);
impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Links `node` to the root namespace: root side 198.51.100.(4i+1)/30,
/// node side .(4i+2). Returns the guard and the root side's address.
fn mgmt_link(lab: &Lab, node: &str, i: u8, tag: &str) -> (Veth, String) {
    let ns = lab.ns(node).expect("namespace");
    let root_if = format!("tm{tag}{i}");
    let root_ip = format!("198.51.100.{}", 4 * i + 1);
    let node_ip = format!("198.51.100.{}", 4 * i + 2);
    run(Command::new("ip").args([
        "link", "add", &root_if, "type", "veth", "peer", "name", "mgmt0", "netns", &ns,
    ]));
    let guard = Veth(root_if.clone());
    run(Command::new("ip").args(["addr", "add", &format!("{root_ip}/30"), "dev", &root_if]));
    run(Command::new("ip").args(["link", "set", &root_if, "up"]));
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
    ]));
    run(Command::new("ip").args(["netns", "exec", &ns, "ip", "link", "set", "mgmt0", "up"]));
    (guard, root_ip)
}

/// Alerts received by the webhook: (time received, alert JSON).
type Received = Arc<Mutex<Vec<(Instant, serde_json::Value)>>>;

/// An HTTP server taking Alertmanager's webhook POSTs.
fn webhook() -> (u16, Received) {
    let l = TcpListener::bind("127.0.0.1:0").expect("webhook");
    let port = l.local_addr().expect("addr").port();
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
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let now = Instant::now();
                    let mut g = g.lock().expect("lock");
                    for a in v["alerts"].as_array().cloned().unwrap_or_default() {
                        g.push((now, a));
                    }
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

#[test]
fn ttk_activation_reaches_alertmanager_as_an_upstream_change_and_nothing_else() {
    let prometheus = tool("prometheus", "prometheus");
    let alertmanager = tumen_lab::lab::find_tool("prometheus-alertmanager")
        .or_else(|| tumen_lab::lab::find_tool("alertmanager"))
        .expect("alertmanager not found: apt-get install prometheus-alertmanager");
    let mut lab = up("dprk-2017");
    let s = lab.scenario().clone();
    let dir = Scratch(std::env::temp_dir().join(format!("tumen-e2e-{}", random_hex(6))));
    std::fs::create_dir_all(&dir.0).expect("scratch");
    let d = |n: &str| dir.0.join(n);

    // The lab's prefix -> ASN table, for the collector.
    let mut table = String::new();
    for e in &s.asns {
        table.push_str(&format!(
            "{}\t{}\t{}\n",
            e.prefix.network(),
            e.prefix.prefix_len(),
            e.asn
        ));
    }
    std::fs::write(d("lab.pfx2as"), table).expect("table");

    // Collector, with a token per vantage point.
    let vps: Vec<String> = s.vantage_points().iter().map(|v| v.to_string()).collect();
    let cport = free_port();
    for vp in &vps {
        let out = Command::new(bin("tumen-collector"))
            .args(["token", vp, "--token-file"])
            .arg(d("tokens"))
            .output()
            .expect("token");
        assert!(out.status.success());
        std::fs::write(d(&format!("{vp}.token")), &out.stdout).expect("token file");
    }
    let mut cmd = Command::new(bin("tumen-collector"));
    cmd.args([
        "serve",
        "--listen",
        &format!("0.0.0.0:{cport}"),
        "--insecure-http",
    ])
    .args(["--hysteresis", "2"])
    .arg("--db")
    .arg(d("c.db"))
    .arg("--token-file")
    .arg(d("tokens"))
    .arg("--asn-table")
    .arg(d("lab.pfx2as"));
    for t in &s.targets {
        cmd.args(["--target", &t.to_string()]);
    }
    let _collector = spawn(cmd, &d("collector.log"), "tumen-collector");
    wait_until(Duration::from_secs(30), "collector ready", || {
        http_get(cport, "/readyz")
    });

    // Alertmanager and Prometheus, on loopback, with the shipped rules.
    let (hook_port, received) = webhook();
    let amport = free_port();
    let pport = free_port();
    std::fs::write(
        d("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, prefix]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
             webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/alert\n"
        ),
    )
    .expect("am config");
    let mut cmd = Command::new(&alertmanager);
    cmd.arg(format!("--config.file={}", d("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", d("am").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{amport}"))
        .arg("--cluster.listen-address=");
    let _am = spawn(cmd, &d("alertmanager.log"), "alertmanager");
    let rules = repo().join("deploy/prometheus");
    std::fs::write(
        d("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n  - {}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{amport}']\n\
             scrape_configs:\n  - job_name: tumen-collector\n    static_configs:\n      - targets: ['127.0.0.1:{cport}']\n",
            rules.join("alert_rules.yml").display(),
            rules.join("recording_rules.yml").display()
        ),
    )
    .expect("prometheus config");
    let mut cmd = Command::new(&prometheus);
    cmd.arg(format!("--config.file={}", d("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", d("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .arg("--rules.alert.resend-delay=1s");
    let _prom = spawn(cmd, &d("prometheus.log"), "prometheus");
    wait_until(Duration::from_secs(60), "prometheus ready", || {
        http_get(pport, "/-/ready")
    });
    wait_until(Duration::from_secs(60), "alertmanager ready", || {
        http_get(amport, "/-/ready")
    });

    // An agent on every vantage point, uploading over its management link.
    let tag = random_hex(2);
    let mut links = Vec::new();
    let mut agents = Vec::new();
    let targets: Vec<String> = s
        .targets
        .iter()
        .filter(|t| t.addr().is_ipv4())
        .map(ToString::to_string)
        .collect();
    for (i, vp) in vps.iter().enumerate() {
        let (veth, addr) = mgmt_link(&lab, vp, i as u8, &tag);
        links.push(veth);
        let mut cmd = lab
            .command(vp, bin("tumen-agent").to_str().expect("utf-8"))
            .expect("node");
        cmd.args([
            "--id",
            vp,
            "--allow-reserved",
            "--hosts",
            "1",
            "--interval",
            "2s",
        ])
        .args(["--insecure-http", "--retry-max", "1s"])
        .args(["--collector", &format!("http://{addr}:{cport}")])
        .arg("--token-file")
        .arg(d(&format!("{vp}.token")))
        .arg("--spool")
        .arg(d(&format!("spool-{vp}")));
        for t in &targets {
            cmd.args(["--target", t]);
        }
        agents.push(spawn(cmd, &d(&format!("agent-{vp}.log")), "tumen-agent"));
    }
    let logs = || {
        let mut s = String::new();
        for n in ["collector.log", "prometheus.log", "alertmanager.log"] {
            s.push_str(&format!(
                "--- {n}\n{}\n",
                std::fs::read_to_string(d(n)).unwrap_or_default()
            ));
        }
        for vp in &vps {
            s.push_str(&format!(
                "--- agent {vp}\n{}\n",
                std::fs::read_to_string(d(&format!("agent-{vp}.log"))).unwrap_or_default()
            ));
        }
        s
    };

    // Before: China Unicom everywhere, every path of every agent known.
    let v4_units: Vec<String> = (176..=179).map(|n| format!("198.18.{n}.0/24")).collect();
    let all_cu = |m: &str| {
        v4_units.iter().all(|p| {
            metric(
                m,
                &format!("tumen_upstream_share_ratio{{prefix=\"{p}\",upstream=\"china-unicom\"}}"),
            ) == Some(1.0)
        }) && metric(m, "tumen_collector_agents{state=\"live\"}") == Some(vps.len() as f64)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = http_get(cport, "/metrics").unwrap_or_default();
        if all_cu(&m) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shares never all china-unicom:\n{m}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Prometheus has scraped it too.
    wait_until(
        Duration::from_secs(30),
        "prometheus sees the shares",
        || {
            http_get(
                pport,
                "/api/v1/query?query=tumen_upstream_share_ratio%7Bupstream%3D%22china-unicom%22%7D",
            )
            .filter(|b| b.matches("china-unicom").count() >= v4_units.len())
        },
    );
    assert!(
        received.lock().expect("lock").is_empty(),
        "an alert before the event"
    );

    // The event.
    let t0 = Instant::now();
    lab.event("ttk-activation").expect("ttk-activation");
    let moved: BTreeSet<String> = ttk_moved()
        .iter()
        .filter(|p| p.addr().is_ipv4())
        .map(ToString::to_string)
        .collect();
    // Metric: the moved /24s are TransTeleCom's from two of three agents.
    let t_metric = {
        let deadline = t0 + Duration::from_secs(120);
        loop {
            let m = http_get(cport, "/metrics").unwrap_or_default();
            let ok = moved.iter().all(|p| {
                metric(
                    &m,
                    &format!(
                        "tumen_upstream_share_ratio{{prefix=\"{p}\",upstream=\"transtelecom\"}}"
                    ),
                )
                .is_some_and(|v| (v - 2.0 / 3.0).abs() < 1e-6)
            });
            if ok {
                // The rest of the scenario: .176 stays China Unicom's.
                assert_eq!(
                    metric(
                        &m,
                        "tumen_upstream_share_ratio{prefix=\"198.18.176.0/24\",upstream=\"china-unicom\"}"
                    ),
                    Some(1.0),
                    "{m}"
                );
                break t0.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "shares did not follow:\n{m}\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Webhook: TumenUpstreamChanged for every moved /24, china-unicom -> transtelecom.
    let deadline = t0 + Duration::from_secs(180);
    let t_hook = loop {
        let got = received.lock().expect("lock").clone();
        let changed: Vec<&(Instant, serde_json::Value)> = got
            .iter()
            .filter(|(_, a)| a["labels"]["alertname"] == "TumenUpstreamChanged")
            .collect();
        let prefixes: BTreeSet<String> = changed
            .iter()
            .filter_map(|(_, a)| a["labels"]["prefix"].as_str().map(str::to_string))
            .collect();
        if moved.iter().all(|p| prefixes.contains(p)) {
            for (_, a) in &changed {
                let l = &a["labels"];
                assert_eq!(l["from"], "china-unicom", "{a}");
                assert_eq!(l["to"], "transtelecom", "{a}");
                assert!(moved.contains(l["prefix"].as_str().unwrap_or("")), "{a}");
                assert!(
                    a["annotations"]["summary"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{a}"
                );
            }
            let first = changed.iter().map(|(t, _)| *t).min().expect("one");
            break first.duration_since(t0);
        }
        assert!(
            Instant::now() < deadline,
            "no TumenUpstreamChanged for {moved:?} at the webhook; got {got:?}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Nothing else fired, and the unreachable alert never became pending.
    let got = received.lock().expect("lock").clone();
    let names: BTreeSet<String> = got
        .iter()
        .filter_map(|(_, a)| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect();
    assert!(!names.contains("TumenPrefixUnreachable"), "{names:?}");
    let alerts = http_get(
        pport,
        "/api/v1/query?query=ALERTS%7Balertname%3D%22TumenPrefixUnreachable%22%7D",
    )
    .expect("prometheus query");
    assert!(alerts.contains("\"result\":[]"), "{alerts}");
    eprintln!(
        "ttk-activation: shares changed {:.1} s after the route change, \
         TumenUpstreamChanged at the webhook after {:.1} s (agents every 2 s, hysteresis 2, \
         scrape and evaluation every 1 s, Alertmanager group_wait 1 s); alerts seen: {names:?}",
        t_metric.as_secs_f64(),
        t_hook.as_secs_f64()
    );
    drop(agents);
    drop(links);
}
