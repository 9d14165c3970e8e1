//! The headless-Chromium driver (`tumen_lab::browser`) against a real
//! Chromium and a tiny HTTP server on 127.0.0.1: CSP enforcement and its
//! report, uncaught errors, navigation, evaluation, waiting, extra headers
//! and full-page screenshots at phone and desktop widths.
//!
//! Chromium is required: without it these tests fail, they do not skip.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tumen_lab::browser::Browser;

const CSP: &str = "default-src 'self'; script-src 'self'";

/// One request the server saw: its path and its headers (names lowercased).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
}

/// A static HTTP/1.1 server on 127.0.0.1, one connection per request.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the test server");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    let _ = serve(stream, &log);
                });
            }
        });
        Server { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests_for(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    log.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
    });
    let (status, ctype, csp, body) = route(&path);
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    if csp {
        head.push_str(&format!("Content-Security-Policy: {CSP}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

/// The site: (status, content type, whether to send the CSP, body).
fn route(path: &str) -> (&'static str, &'static str, bool, &'static str) {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    match path {
        // An external script that is allowed, and an inline one that the
        // CSP must block.
        "/csp.html" => (
            "200 OK",
            HTML,
            true,
            r#"<!doctype html>
<html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>before</title></head>
<body>
<p id="out">not yet</p>
<p id="later">not yet</p>
<script>window.inlineRan = true; document.title = "inline ran";</script>
<script src="/app.js"></script>
</body></html>"#,
        ),
        "/app.js" => (
            "200 OK",
            JS,
            true,
            r#"document.title = "tumen csp ok";
document.getElementById("out").textContent = "written by app.js";
setTimeout(function () {
  document.getElementById("later").textContent = "changed by a timer";
}, 400);
"#,
        ),
        "/throw.html" => (
            "200 OK",
            HTML,
            true,
            r#"<!doctype html>
<html><head><meta charset="utf-8"><title>throws</title></head>
<body><p>this page's script throws</p>
<script src="/throw.js"></script>
</body></html>"#,
        ),
        "/throw.js" => (
            "200 OK",
            JS,
            true,
            r#"throw new Error("tumen deliberate failure");
"#,
        ),
        // A clean page that is taller than any viewport, for the full-page
        // screenshots.
        "/tall.html" => (
            "200 OK",
            HTML,
            true,
            r#"<!doctype html>
<html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tall</title>
<link rel="stylesheet" href="/tall.css"></head>
<body><div class="block">one</div><div class="block">two</div>
<p id="status">static</p>
<script src="/tall.js"></script>
</body></html>"#,
        ),
        // External, as the CSP allows no inline style either.
        "/tall.css" => (
            "200 OK",
            "text/css; charset=utf-8",
            true,
            "body { margin: 0; }\n.block { height: 700px; background: #cde; }\n\
             .block + .block { background: #edc; }\n",
        ),
        "/tall.js" => (
            "200 OK",
            JS,
            true,
            r#"setTimeout(function () {
  document.getElementById("status").textContent = "ready";
}, 300);
"#,
        ),
        // Chromium asks every site for one, and reports a 404 as an error.
        "/favicon.ico" => ("204 No Content", "image/x-icon", false, ""),
        _ => ("404 Not Found", "text/plain", false, "not found\n"),
    }
}

/// A scratch directory, removed on drop (a failed test too).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("tumen-browser-test-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn launch() -> Browser {
    Browser::launch()
        .unwrap_or_else(|e| panic!("the browser tests need Chromium, and it did not start: {e:#}"))
}

/// Width and height from a PNG's IHDR chunk; panics if it is not a PNG.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 24,
        "{} is too short for a PNG",
        path.display()
    );
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(
        &bytes[12..16],
        b"IHDR",
        "{}: first chunk is not IHDR",
        path.display()
    );
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn csp_blocks_the_inline_script_and_the_violation_is_reported() {
    let server = Server::start();
    let mut browser = launch();
    let mut page = browser.new_page(1280, 800, false).unwrap();
    page.navigate(&server.url("/csp.html")).unwrap();

    // The external script ran and wrote into the DOM …
    assert_eq!(page.eval("document.title").unwrap(), "tumen csp ok");
    assert_eq!(
        page.eval("document.getElementById('out').textContent")
            .unwrap(),
        "written by app.js"
    );
    // … the inline one did not.
    assert_eq!(page.eval("typeof window.inlineRan").unwrap(), "undefined");
    // The CSP header really was sent (the page saw it enforced, not absent).
    assert!(!server.requests_for("/csp.html").is_empty());

    let errors = page.console_errors();
    eprintln!("the CSP page's errors: {errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Content Security Policy") && e.contains("script-src")),
        "no CSP violation among the page's errors: {errors:#?}"
    );
}

#[test]
fn an_uncaught_error_is_reported() {
    let server = Server::start();
    let mut browser = launch();
    let mut page = browser.new_page(800, 600, false).unwrap();
    page.navigate(&server.url("/throw.html")).unwrap();
    let errors = page.console_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("uncaught exception") && e.contains("tumen deliberate failure")),
        "the uncaught error is not among the page's errors: {errors:#?}"
    );

    // console.error and console.assert are errors too.
    page.eval("console.error('tumen console error', 42)")
        .unwrap();
    page.eval("console.assert(1 === 2, 'tumen assertion')")
        .unwrap();
    let errors = page.console_errors();
    assert!(
        errors.iter().any(|e| e.contains("tumen console error 42")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("tumen assertion")),
        "{errors:#?}"
    );
}

#[test]
fn navigate_eval_wait_headers_and_screenshots() {
    let server = Server::start();
    let dir = TempDir::new("screenshots");
    let dir = dir.path();
    let mut browser = launch();
    let (pid, profile) = (browser.pid(), browser.profile_dir().to_path_buf());
    {
        let mut page = browser.new_page(1280, 800, false).unwrap();
        page.set_extra_headers(&[("Authorization", "Bearer x")])
            .unwrap();
        page.navigate(&server.url("/tall.html")).unwrap();

        // The extra header reached the server, on the page and its script.
        for path in ["/tall.html", "/tall.js"] {
            let seen = server.requests_for(path);
            assert!(!seen.is_empty(), "the server never saw {path}");
            for s in &seen {
                assert_eq!(
                    s.headers.get("authorization").map(String::as_str),
                    Some("Bearer x"),
                    "{path}: {s:?}"
                );
                // Nothing of Chromium's own (sign-in headers and the like).
                assert!(
                    !s.headers.keys().any(|k| k.starts_with("x-chrome")),
                    "{path}: {s:?}"
                );
            }
        }

        // eval: values by value, promises awaited, exceptions are errors.
        assert_eq!(page.eval("1 + 2").unwrap(), 3);
        assert_eq!(
            page.eval("({a: [1, 'two'], b: null})").unwrap(),
            serde_json::json!({"a": [1, "two"], "b": null})
        );
        assert_eq!(
            page.eval("new Promise(r => setTimeout(() => r('late'), 50))")
                .unwrap(),
            "late"
        );
        assert_eq!(page.eval("undefined").unwrap(), serde_json::Value::Null);
        let thrown = page
            .eval("throw new TypeError('tumen eval boom')")
            .unwrap_err();
        assert!(
            format!("{thrown:#}").contains("tumen eval boom"),
            "{thrown:#}"
        );

        // wait_for: a change made by a timer, and a timeout that says why.
        let ready = page
            .wait_for(
                "document.getElementById('status').textContent === 'ready' && 'ready'",
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(ready, "ready");
        let err = page
            .wait_for("document.title === 'never'", Duration::from_millis(300))
            .unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("not truthy") && err.contains("false"), "{err}");

        // Full-page screenshots at desktop and phone widths.
        let desktop = dir.join("desktop.png");
        page.screenshot(&desktop).unwrap();
        let (w, h) = png_size(&desktop);
        assert_eq!(w, 1280, "desktop screenshot width");
        assert!(
            h > 1400,
            "the desktop screenshot is not full-page: {h} px high"
        );

        page.set_viewport(375, 667, true).unwrap();
        let phone = dir.join("phone.png");
        page.screenshot(&phone).unwrap();
        let (w, h) = png_size(&phone);
        assert_eq!(w, 375, "phone screenshot width");
        assert!(
            h > 1400,
            "the phone screenshot is not full-page: {h} px high"
        );

        // A clean page reports nothing.
        let errors = page.console_errors();
        assert!(errors.is_empty(), "unexpected errors: {errors:#?}");
    }

    // A second page on the same browser, created at phone size.
    {
        let mut page = browser.new_page(375, 667, true).unwrap();
        page.navigate(&server.url("/tall.html")).unwrap();
        assert_eq!(page.eval("window.innerWidth").unwrap(), 375);
    }

    drop(browser);
    assert!(
        !profile.exists(),
        "the profile {} survived",
        profile.display()
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "Chromium (pid {pid}) survived the Browser"
    );
}

#[test]
fn a_failed_navigation_is_an_error() {
    // A port nothing listens on: bind one, then let it go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut browser = launch();
    let mut page = browser.new_page(800, 600, false).unwrap();
    let err = page
        .navigate(&format!("http://127.0.0.1:{port}/"))
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("ERR_CONNECTION_REFUSED"), "{err}");
}

#[test]
fn a_dead_browser_is_a_clear_error_not_a_hang() {
    let server = Server::start();
    let mut browser = launch();
    let (pid, profile) = (browser.pid(), browser.profile_dir().to_path_buf());
    {
        let mut page = browser.new_page(800, 600, false).unwrap();
        page.navigate(&server.url("/tall.html")).unwrap();
        // Kill the Chromium this test started, by its pid.
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let started = std::time::Instant::now();
        let err = page.eval("1").unwrap_err();
        let err = format!("{err:#}");
        eprintln!("after the kill: {err}");
        assert!(
            err.contains("Chromium died") || err.contains("lost the DevTools connection"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        // Later calls fail at once with the same cause.
        let again = format!("{:#}", page.navigate(&server.url("/csp.html")).unwrap_err());
        assert!(again.contains("Chromium"), "{again}");
        // console_errors cannot fail, but says that it could not collect.
        let errors = page.console_errors();
        assert!(
            errors.iter().any(|e| e.contains("could not collect")),
            "{errors:#?}"
        );
    }
    drop(browser);
    assert!(
        !profile.exists(),
        "the profile {} survived",
        profile.display()
    );
}

/// Chromium's own traffic (updaters, sign-in, time, …) must never leave the
/// machine. Route everything that is not loopback to a listener of ours
/// instead of the dead proxy port, and check that nothing came to it.
#[test]
fn chromium_itself_asks_for_nothing_beyond_loopback() {
    let server = Server::start();
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let flag = format!("--proxy-server=http://{}", proxy.local_addr().unwrap());
    let mut browser = Browser::launch_with_args(&[&flag])
        .unwrap_or_else(|e| panic!("the browser tests need Chromium, and it did not start: {e:#}"));
    let mut page = browser.new_page(800, 600, false).unwrap();
    page.navigate(&server.url("/tall.html")).unwrap();
    // Chromium's background requests came within a few seconds of startup.
    thread::sleep(Duration::from_secs(3));
    let mut asked = Vec::new();
    while let Ok((mut conn, _)) = proxy.accept() {
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 200];
        let n = std::io::Read::read(&mut conn, &mut buf).unwrap_or(0);
        asked.push(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert!(
        asked.is_empty(),
        "Chromium tried to reach the Internet: {asked:#?}"
    );
}
