//! The web view in a real browser (issue 19): headless Chromium (Debian's
//! `chromium`, driven over the DevTools protocol by
//! [`tumen_lab::browser`]) against the collector of the `dprk-2017` lab
//! stack ([`tumen_lab::stack`]: agents with raw sockets in their
//! namespaces, the collector, Prometheus, Alertmanager).
//!
//! - The Now view shows china-unicom 100% for every /24 before
//!   `ttk-activation`, and after it the collector's new shares, without a
//!   reload, within 10 s of the collector having them.
//! - The change detail of 198.18.177.0/24 lists the traces before and
//!   after from every vantage point; its JSON bundle, given to
//!   `tumen-collector infer`, re-infers to the same answer.
//! - The paths graph follows `ttk-withdrawal` live.
//! - The viewer token is required (the stack's collector listens beyond
//!   loopback) and sent by the browser.
//! - No console errors (a CSP violation would be one).
//! - Hostile labels (an agent id, a PTR name from a resolver on loopback,
//!   refusal items, a User-Agent) render as text and run nothing.
//!
//! Screenshots of every view at 1280 and 375 px are saved under
//! `<target>/web-screenshots/` (the test prints the paths).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tumen_lab::browser::{Browser, Page};
use tumen_lab::stack::{Stack, StackConfig};
use tumen_lab::Scenario;

#[path = "../../collector/tests/dns_server/mod.rs"]
mod dns_server;
#[path = "../../collector/tests/seed/mod.rs"]
mod seed;

fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .join("deploy/prometheus")
}

/// Where the screenshots go: `<target>/web-screenshots/`.
fn shots_dir() -> PathBuf {
    let d = bin_dir()
        .parent()
        .expect("<target>")
        .join("web-screenshots");
    std::fs::create_dir_all(&d).expect("screenshots dir");
    d
}

/// GET on loopback with a bearer token: (status, body).
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn json(port: u16, path: &str, token: Option<&str>) -> Value {
    let (code, body) = get(port, path, token);
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Saves a screenshot of the page at both widths; returns the paths.
fn shoot(page: &mut Page<'_>, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (w, h, mobile) in [(1280, 900, false), (375, 800, true)] {
        page.set_viewport(w, h, mobile).expect("viewport");
        std::thread::sleep(Duration::from_millis(300));
        let p = shots_dir().join(format!("{name}-{w}.png"));
        page.screenshot(&p).expect("screenshot");
        out.push(p);
    }
    page.set_viewport(1280, 900, false).expect("viewport");
    out
}

/// JS: does the Now table show exactly these shares (prefix -> upstream ->
/// share) in every row named, and only those?
fn dom_matches(expected: &Value) -> String {
    format!(
        r#"(function (exp) {{
  for (const p of Object.keys(exp)) {{
    const row = Array.from(document.querySelectorAll('#now tbody tr')).find(r => r.getAttribute('data-prefix') === p);
    if (!row) return false;
    const lis = row.querySelectorAll('td[data-field="data"] li');
    const want = exp[p];
    if (lis.length !== Object.keys(want).length) return false;
    for (const li of lis) {{
      const u = li.getAttribute('data-upstream');
      if (!(u in want) || Math.abs(parseFloat(li.getAttribute('data-share')) - want[u]) > 1e-9) return false;
      if (li.querySelector('.pct').textContent !== Math.round(want[u] * 100) + '%') return false;
    }}
  }}
  return true;
}})({expected})"#
    )
}

/// The collector's shares per /24 (the oracle the page must match).
fn api_shares(port: u16) -> Value {
    let v = json(port, "/api/v1/shares", None);
    let mut out = serde_json::Map::new();
    if let Some(p) = v["prefixes"].as_object() {
        for (k, s) in p {
            out.insert(k.clone(), s["shares"].clone());
        }
    }
    Value::Object(out)
}

fn wait<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One test at a time: each starts a collector and a browser, and the
/// stack's collector listens on every address.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn dprk_2017_in_a_real_browser_now_changes_evidence_paths_and_bundle() {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = common::loopback::Scratch::new("e2e-web");
    let token = format!(
        "viewer-{}{}",
        common::loopback::random_hex(),
        common::loopback::random_hex()
    );
    let viewers = tmp.0.join("viewers");
    std::fs::write(&viewers, format!("{token}\n")).expect("viewers");
    let mut cfg = StackConfig::tight(bin_dir(), rules_dir());
    cfg.collector_toml = Some(format!(
        "viewer_token_file = {:?}\n",
        viewers.display().to_string()
    ));
    let mut stack = Stack::up(&cfg).unwrap_or_else(|e| panic!("stack: {e:#}"));
    let port = stack.collector_port;
    let n_vps = stack.vantage_points.len();

    // The view is closed without the token, open with it.
    assert_eq!(get(port, "/", None).0, 401);
    assert_eq!(get(port, "/", Some("wrong-token-0000000000")).0, 401);
    assert_eq!(get(port, "/", Some(&token)).0, 200);

    // Before: China Unicom for every /24, from every vantage point.
    let before = wait("all china-unicom", Duration::from_secs(120), || {
        let now = json(port, "/ui/now.json", Some(&token));
        let rows = now["rows"].as_array()?;
        let all_cu = rows.len() >= 4
            && rows.iter().all(|r| {
                r["data"] == serde_json::json!({"china-unicom": 1.0})
                    && r["vps"].as_u64() == Some(n_vps as u64)
            });
        all_cu.then(|| api_shares(port))
    });
    let mut browser = Browser::launch().expect("chromium");
    let mut page = browser.new_page(1280, 900, false).expect("page");
    let bearer = format!("Bearer {token}");
    page.set_extra_headers(&[("Authorization", &bearer)])
        .expect("headers");
    let base = format!("http://127.0.0.1:{port}");
    page.navigate(&format!("{base}/")).expect("now");
    page.wait_for(&dom_matches(&before), Duration::from_secs(10))
        .expect("the Now view shows china-unicom 100% everywhere");
    let rows = page
        .eval("document.querySelectorAll('#now tbody tr').length")
        .expect("rows");
    if rows.as_u64() != before.as_object().map(|o| o.len() as u64) {
        let html = page
            .eval("document.getElementById('now').outerHTML + ' updated=' + document.body.getAttribute('data-updated')")
            .unwrap_or_default();
        panic!("{rows} rows, expected those of {before}:\n{html}");
    }
    page.wait_for(
        "document.getElementById('live-status').textContent === 'live'",
        Duration::from_secs(10),
    )
    .expect("the live stream connects");
    let mut shots = shoot(&mut page, "now-before");
    page.eval("window.__noReload = 42").expect("marker");

    // The event: the page follows the collector without a reload.
    stack.lab.event("ttk-activation").expect("ttk-activation");
    let t_event = Instant::now();
    let moved = ["198.18.177.0/24", "198.18.178.0/24", "198.18.179.0/24"];
    let after = wait(
        "the collector's new shares",
        Duration::from_secs(120),
        || {
            let s = api_shares(port);
            moved
                .iter()
                .all(|p| {
                    s[p]["transtelecom"]
                        .as_f64()
                        .is_some_and(|v| (v - 2.0 / 3.0).abs() < 1e-9)
                })
                .then_some(s)
        },
    );
    let t_api = Instant::now();
    page.wait_for(&dom_matches(&after), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the Now view did not follow within 10 s: {e:#}"));
    let t_dom = Instant::now();
    assert_eq!(
        page.eval("window.__noReload").expect("marker"),
        Value::from(42),
        "the page was reloaded"
    );
    assert_eq!(
        page.eval("performance.getEntriesByType('navigation').length")
            .expect("nav"),
        Value::from(1)
    );
    println!(
        "ttk-activation: collector shares after {:.1} s, the page {:.2} s after the collector",
        (t_api - t_event).as_secs_f64(),
        (t_dom - t_api).as_secs_f64()
    );
    shots.extend(shoot(&mut page, "now-after"));

    // The change detail for 198.18.177.0/24: every vantage point's traces
    // before and after.
    let events = json(port, "/api/v1/events?prefix=198.18.177.0/24", None);
    let ev = events
        .as_array()
        .and_then(|a| a.iter().find(|e| e["to_upstream"] == "transtelecom"))
        .unwrap_or_else(|| panic!("no change event for .177: {events}"))
        .clone();
    let id = ev["id"].as_i64().expect("id");
    // Every vantage point's next trace may take a round: the page is
    // loaded again until each has one after the change (a change detail
    // does not follow live).
    let sections = r#"Array.from(document.querySelectorAll('section.vp')).map(s => ({
                agent: s.getAttribute('data-agent'),
                before: s.querySelector('.before table.trace caption')?.textContent ?? null,
                after: s.querySelector('.after table.trace caption')?.textContent ?? null,
                hops: s.querySelectorAll('table.trace tbody tr').length
            }))"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    let vps = loop {
        page.navigate(&format!("{base}/changes/{id}"))
            .expect("detail");
        let v = page.eval(sections).expect("sections");
        let complete = v.as_array().is_some_and(|a| {
            a.len() == n_vps
                && a.iter()
                    .all(|s| !s["before"].is_null() && !s["after"].is_null())
        });
        if complete || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let vps = vps.as_array().expect("array");
    assert_eq!(vps.len(), n_vps, "a section per vantage point: {vps:?}");
    for v in vps {
        let (b, a) = (v["before"].as_str(), v["after"].as_str());
        assert!(b.is_some() && a.is_some(), "before and after for {v}");
        assert!(
            v["hops"].as_u64().is_some_and(|h| h >= 4),
            "hop by hop: {v}"
        );
        if v["agent"] == ev["agent"] {
            assert!(b.is_some_and(|t| t.contains("china-unicom")), "{v}");
            assert!(a.is_some_and(|t| t.contains("transtelecom")), "{v}");
        }
    }
    shots.extend(shoot(&mut page, "change"));

    // The bundle, as the page links it, re-infers to the same answer.
    let href = page
        .eval("document.querySelector('p.downloads a[href$=\"bundle.json\"]').getAttribute('href')")
        .expect("href");
    let (code, bundle) = get(port, href.as_str().expect("href"), Some(&token));
    assert_eq!(code, 200);
    let file = tmp.0.join("bundle.json");
    std::fs::write(&file, &bundle).expect("bundle");
    let b: Value = serde_json::from_str(&bundle).expect("bundle json");
    let scenario = Scenario::load("dprk-2017").expect("scenario");
    let mut cmd = std::process::Command::new(bin_dir().join("tumen-collector"));
    cmd.args(["infer", "--json", "--asn-table"])
        .arg(stack.dir.join("lab.pfx2as"));
    for t in &scenario.targets {
        cmd.args(["--target", &t.to_string()]);
    }
    let out = cmd.arg(&file).output().expect("infer");
    assert!(out.status.success(), "{out:?}");
    let verdicts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("verdict"))
        .collect();
    let stored: Vec<&Value> = b["vantage_points"]
        .as_array()
        .expect("vps")
        .iter()
        .flat_map(|v| [&v["before"], &v["after"]])
        .filter(|t| !t.is_null())
        .collect();
    assert_eq!(verdicts.len(), stored.len(), "{b}");
    for (v, s) in verdicts.iter().zip(&stored) {
        assert_eq!(
            v["upstream"], s["upstream"],
            "infer {v} vs the collector {s}"
        );
    }
    assert!(
        verdicts.iter().any(|v| v["upstream"] == "transtelecom")
            && verdicts.iter().any(|v| v["upstream"] == "china-unicom"),
        "{verdicts:?}"
    );
    println!(
        "bundle of change #{id}: {} traces re-inferred to the collector's verdicts",
        verdicts.len()
    );

    // Timeline: the change is marked and links to its evidence.
    page.navigate(&format!("{base}/timeline?range=1h&prefix=198.18.177.0/24"))
        .expect("timeline");
    page.wait_for(
        &format!("!!document.querySelector('svg a[href=\"/changes/{id}\"]')"),
        Duration::from_secs(5),
    )
    .expect("the change marked on the timeline");
    shots.extend(shoot(&mut page, "timeline"));

    // Paths: the graph follows ttk-withdrawal without a reload.
    page.navigate(&format!("{base}/paths")).expect("paths");
    page.wait_for(
        "!!document.querySelector('#paths-graph [data-node=\"pfx-198.18.177.0/24\"]') && \
         document.getElementById('live-status').textContent === 'live'",
        Duration::from_secs(10),
    )
    .expect("graph");
    let has_ttk = "Array.from(document.querySelectorAll('#paths-graph [data-node] title')).some(t => t.textContent.includes('transtelecom'))";
    assert_eq!(page.eval(has_ttk).expect("ttk"), Value::Bool(true));
    shots.extend(shoot(&mut page, "paths"));
    stack.lab.event("ttk-withdrawal").expect("ttk-withdrawal");
    page.wait_for(
        &format!("document.body.hasAttribute('data-graph-updated') && !({has_ttk})"),
        Duration::from_secs(60),
    )
    .expect("the graph follows the withdrawal");

    page.navigate(&format!("{base}/agents")).expect("agents");
    let agents = page
        .eval("document.querySelectorAll('#agents tbody tr').length")
        .expect("agents");
    assert_eq!(agents.as_u64(), Some(n_vps as u64));
    let version = page
        .eval("document.querySelector('#agents tbody tr td:last-child').textContent")
        .expect("version");
    assert!(
        version
            .as_str()
            .is_some_and(|v| v.starts_with("tumen-agent/")),
        "{version}"
    );
    shots.extend(shoot(&mut page, "agents"));

    let errors = page.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    for s in &shots {
        println!("screenshot: {}", s.display());
    }
}

/// Labels an attacker controls: tags, quotes, a control character.
const HOSTILE: &str =
    "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>'\"\u{7}";

#[test]
fn hostile_labels_render_as_text_in_the_browser_and_run_nothing() {
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = common::loopback::Scratch::new("web-xss");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let id = format!("{:032x}", 9);
    let line = serde_json::json!({
        "kind": "trace", "schema": 1, "id": id, "agent": "x", "start_ms": now - 5000,
        "duration_ms": 10.0, "src": "192.0.2.2", "dst": "198.18.177.15",
        "prefix": "198.18.177.0/24", "protocol": "icmp", "mode": "full", "first_ttl": 1,
        "max_ttl": 30, "flows": 1, "stop": "completed", "reached": true, "probes_sent": 3,
        "hops": [
            {"ttl": 1, "flow": 0, "sent": 1, "replies": [{"addr": "203.0.113.9", "rtt_ms": 1.0, "kind": "time_exceeded", "icmp_type": 11, "icmp_code": 0}]},
            {"ttl": 2, "flow": 0, "sent": 1, "replies": [{"addr": "198.18.177.15", "rtt_ms": 9.0, "kind": "echo_reply", "icmp_type": 0, "icmp_code": 0}]}
        ]
    })
    .to_string();
    // A stored agent whose id is hostile (the token file refuses such
    // names; a database is not bound by that), with a hostile upstream.
    let db = tmp.0.join("c.db");
    seed::hostile_store(&db, HOSTILE, "198.18.177.15", &line, &id, now - 5000, now);
    // A PTR name from a resolver on loopback, hostile too.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dns = rt.block_on(dns_server::TestServer::start());
    dns.ptr(
        "203.0.113.9",
        "<script>window.__xss=3</script>'\"\u{7}.example.",
        300,
    );
    let toml = tmp.0.join("collector.toml");
    std::fs::write(&toml, format!("[dns]\nserver = \"{}\"\n", dns.addr)).expect("toml");
    let tokens = tmp.0.join("tokens");
    let out = std::process::Command::new(bin_dir().join("tumen-collector"))
        .args(["token", "vp-x", "--token-file"])
        .arg(&tokens)
        .output()
        .expect("token");
    assert!(out.status.success(), "{out:?}");
    let agent_token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = common::loopback::free_port();
    let mut server = common::loopback::Proc {
        what: "tumen-collector".into(),
        child: Some(
            std::process::Command::new(bin_dir().join("tumen-collector"))
                .args([
                    "serve",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--target",
                    "198.18.176.0/22",
                ])
                .arg("--db")
                .arg(&db)
                .arg("--token-file")
                .arg(&tokens)
                .arg("--config")
                .arg(&toml)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("collector"),
        ),
    };
    wait("collector ready", Duration::from_secs(30), || {
        (get(port, "/readyz", None).0 == 200).then_some(())
    });
    // Refusal items and a User-Agent from an agent, hostile.
    let post = |path: &str, ctype: &str, ua: &str, body: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {agent_token}\r\n\
             User-Agent: {ua}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        assert!(
            r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"),
            "{r}"
        );
    };
    let refusal =
        serde_json::json!({"schedule": "x", "refused": [{"item": HOSTILE, "why": HOSTILE}]});
    post(
        "/api/v1/refusals",
        "application/json",
        "t",
        &refusal.to_string(),
    );
    let mine = line
        .replace("\"agent\":\"x\"", "\"agent\":\"vp-x\"")
        .replace(&id, &format!("{:032x}", 10));
    post(
        "/api/v1/results",
        "application/x-ndjson",
        "<script>window.__xss=4</script>'\"",
        &mine,
    );

    let mut browser = Browser::launch().expect("chromium");
    let mut page = browser.new_page(1280, 900, false).expect("page");
    let base = format!("http://127.0.0.1:{port}");
    let clean = "window.__xss === undefined && document.scripts.length === 1 && \
                 !document.querySelector('img[src=\"x\"]')";
    // The change detail asks for the hop's PTR name: wait until it shows.
    page.navigate(&format!("{base}/changes/1")).expect("detail");
    let deadline = Instant::now() + Duration::from_secs(10);
    while page
        .eval("document.body.textContent.includes('.example')")
        .expect("ptr")
        != Value::Bool(true)
    {
        assert!(Instant::now() < deadline, "the PTR name never showed");
        std::thread::sleep(Duration::from_millis(200));
        page.navigate(&format!("{base}/changes/1")).expect("detail");
    }
    // The resolver library writes the name as a zone file would
    // (`\<script\>`, `\007`); whatever it gives is shown as text.
    let name = page
        .eval("Array.from(document.querySelectorAll('table.trace tbody td')).map(t => t.textContent).find(t => t.includes('.example'))")
        .expect("ptr cell");
    let name = name.as_str().unwrap_or_default().to_string();
    assert!(
        name.contains("<script") && name.contains("window") && name.ends_with(".example"),
        "the PTR name shown as text: {name:?}"
    );
    let mut shots = Vec::new();
    for view in [
        "/changes/1",
        "/",
        "/agents",
        "/changes",
        "/paths",
        "/timeline?range=1h",
    ] {
        page.navigate(&format!("{base}{view}")).expect(view);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            page.eval(clean).expect("clean"),
            Value::Bool(true),
            "{view}: something ran or was injected"
        );
        let shown = page
            .eval(&format!(
                "document.body.textContent.includes({})",
                serde_json::to_string(
                    "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>'\""
                )
                .expect("js")
            ))
            .expect("text");
        assert_eq!(
            shown,
            Value::Bool(true),
            "{view}: the label is not shown as text"
        );
        if view == "/agents" {
            let ua = page
                .eval("document.body.textContent.includes('<script>window.__xss=4</script>')")
                .expect("ua");
            assert_eq!(ua, Value::Bool(true), "the User-Agent shown as text");
            shots.extend(shoot(&mut page, "xss-agents"));
        }
    }
    let errors = page.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(page);
    drop(browser);
    server.term(Duration::from_secs(10));
    for s in &shots {
        println!("screenshot: {}", s.display());
    }
}
