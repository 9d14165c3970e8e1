//! A small, synchronous headless-Chromium driver over the Chrome DevTools
//! Protocol (CDP), for the browser tests of Tumen's web view.
//!
//! [`Browser::launch`] starts `/usr/bin/chromium` (or `$CHROMIUM`) headless,
//! with a throw-away profile and every background service that could reach
//! the Internet turned off, and connects to its browser websocket on
//! 127.0.0.1. [`Browser::new_page`] opens a tab and attaches to it with a
//! flatten session over that same websocket; [`Page`] navigates, evaluates
//! JavaScript, takes screenshots and collects every error the page reports
//! (uncaught exceptions, `console.error`, CSP violations, failed loads).
//!
//! Everything is blocking and bounded: every socket read has a timeout, every
//! command a deadline, and a browser that dies is reported as such. Events
//! that arrive while a command waits for its response are buffered, not lost.
//! Dropping the [`Browser`] kills Chromium (by its own pid), reaps it and
//! removes the profile directory, so a failing test cleans up too.

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// Where Debian installs Chromium; `$CHROMIUM` overrides it.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long Chromium has to write `DevToolsActivePort`.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a navigation has to fire its load event.
const NAVIGATE_TIMEOUT: Duration = Duration::from_secs(30);
/// The deadline of one ordinary command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// One socket read waits at most this long; the loops around it check the
/// deadline and whether Chromium is still alive between reads.
const READ_SLICE: Duration = Duration::from_millis(200);
/// Interval of [`Page::wait_for`].
const POLL: Duration = Duration::from_millis(100);

/// Flags that keep Chromium off the network (nothing but the pages the test
/// asks for) and quiet, in a container where we run as root.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--metrics-recording-only",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    // One list: a later --disable-features would replace this one.
    // NetworkTimeServiceQuerying: clients2.google.com/time at startup.
    "--disable-features=Translate,OptimizationHints,OptimizationGuideModelDownloading,MediaRouter,NetworkTimeServiceQuerying,InterestFeedContentSuggestions,CalculateNativeWinOcclusion,AutofillServerCommunication,CertificateTransparencyComponentUpdater,PrivacySandboxSettings4",
    "--safebrowsing-disable-auto-update",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
    // Chromium 156 still asked accounts.google.com (sign-in) and
    // update.googleapis.com (component updater) despite the flags above;
    // point both at a closed loopback port. [::1], not 127.0.0.1: the
    // sign-in origin is special (process isolation, ignoring the port), and
    // the pages under test are on 127.0.0.1.
    "--gaia-url=http://[::1]:9",
    "--lso-url=http://[::1]:9",
    "--google-apis-url=http://[::1]:9",
    "--component-updater=url-source=http://[::1]:9/,fast-update=0",
    // Defence in depth: anything that is not loopback (which Chromium always
    // connects to directly) goes to a proxy that does not exist, and no
    // name is ever resolved through DNS.
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
    "--remote-debugging-port=0",
];

/// A headless Chromium and the websocket to its browser target.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Events read while waiting for something else, oldest first.
    events: VecDeque<Value>,
    /// Set once the connection is known to be unusable.
    dead: Option<String>,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("profile", &self.profile)
            .field("queued_events", &self.events.len())
            .field("dead", &self.dead)
            .finish()
    }
}

/// A unique, fresh directory for one Chromium profile.
fn fresh_profile_dir() -> anyhow::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "tumen-chromium-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The last few lines of Chromium's stderr, for error messages, without
/// the D-Bus complaints it always makes in a container without a bus.
fn stderr_tail(profile: &Path) -> String {
    let text = fs::read_to_string(profile.join("chromium-stderr.log")).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("dbus/") && !l.contains("unexpected operator"))
        .collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    if tail.is_empty() {
        "(nothing)".to_string()
    } else {
        tail
    }
}

/// Removes the profile directory; retried because Chromium's helpers may
/// still be writing into it for a moment after the browser process died.
fn remove_profile(profile: &Path) {
    for _ in 0..20 {
        match fs::remove_dir_all(profile) {
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
    let _ = fs::remove_dir_all(profile);
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and connects to it.
    pub fn launch() -> anyhow::Result<Browser> {
        Self::launch_with_args(&[])
    }

    /// [`Browser::launch`] with extra command-line flags after ours (for a
    /// repeated switch, Chromium takes the last one).
    pub fn launch_with_args(extra: &[&str]) -> anyhow::Result<Browser> {
        let exe = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
        if !exe.is_file() {
            bail!(
                "Chromium not found at {} (install Debian's chromium package, or set $CHROMIUM \
                 to the browser's path); the browser tests need it",
                exe.display()
            );
        }
        let profile = fresh_profile_dir()?;
        let spawned = (|| -> anyhow::Result<Child> {
            let stderr = fs::File::create(profile.join("chromium-stderr.log"))?;
            let child = Command::new(&exe)
                .args(FLAGS)
                .args(extra)
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            Ok(child)
        })();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                remove_profile(&profile);
                return Err(e);
            }
        };
        match Self::connect(&mut child, &profile) {
            Ok(ws) => Ok(Browser {
                child,
                profile,
                ws,
                next_id: 0,
                events: VecDeque::new(),
                dead: None,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = stderr_tail(&profile);
                remove_profile(&profile);
                Err(e.context(format!(
                    "launching {}; its stderr ends:\n{tail}",
                    exe.display()
                )))
            }
        }
    }

    /// Waits for `DevToolsActivePort` and opens the browser websocket.
    fn connect(child: &mut Child, profile: &Path) -> anyhow::Result<WebSocket<TcpStream>> {
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        let port_file = profile.join("DevToolsActivePort");
        let (port, path) = loop {
            if let Some(status) = child.try_wait()? {
                bail!("Chromium exited ({status}) before writing DevToolsActivePort");
            }
            if let Ok(text) = fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    if let (Ok(port), true) = (port.trim().parse::<u16>(), path.starts_with('/')) {
                        break (port, path.trim().to_string());
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "Chromium wrote no DevToolsActivePort into {} within {LAUNCH_TIMEOUT:?}",
                    profile.display()
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to Chromium's DevTools at {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_SLICE))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        // Full-page screenshots arrive as one big base64 message.
        let config = WebSocketConfig::default()
            .max_message_size(Some(512 << 20))
            .max_frame_size(Some(512 << 20));
        let url = format!("ws://127.0.0.1:{port}{path}");
        let mut attempt =
            tungstenite::client::client_with_config(url.as_str(), stream, Some(config));
        loop {
            match attempt {
                Ok((ws, _response)) => return Ok(ws),
                Err(HandshakeError::Interrupted(mid)) => {
                    if Instant::now() >= deadline {
                        bail!("websocket handshake with {url} timed out");
                    }
                    attempt = mid.handshake();
                }
                Err(HandshakeError::Failure(e)) => {
                    return Err(anyhow!(e).context(format!("websocket handshake with {url}")))
                }
            }
        }
    }

    /// Chromium's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The profile directory (removed on drop).
    pub fn profile_dir(&self) -> &Path {
        &self.profile
    }

    /// Opens a new tab on `about:blank`, attaches to it, enables the Page,
    /// Runtime, Log and Network domains and sets its viewport.
    pub fn new_page(&mut self, width: u32, height: u32, mobile: bool) -> anyhow::Result<Page<'_>> {
        let created = self.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank" }),
            COMMAND_TIMEOUT,
        )?;
        let target_id = created["targetId"]
            .as_str()
            .ok_or_else(|| anyhow!("Target.createTarget returned no targetId: {created}"))?
            .to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
            COMMAND_TIMEOUT,
        )?;
        let session_id = attached["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("Target.attachToTarget returned no sessionId: {attached}"))?
            .to_string();
        let mut page = Page {
            browser: self,
            target_id,
            session_id,
            errors: Vec::new(),
            loads: 0,
        };
        for domain in ["Page", "Runtime", "Log", "Network"] {
            page.call(&format!("{domain}.enable"), json!({}))?;
        }
        page.set_viewport(width, height, mobile)?;
        Ok(page)
    }

    /// Why the connection is unusable: the browser's exit status if it died.
    fn death(&mut self, what: &str, cause: impl fmt::Display) -> anyhow::Error {
        // Give a dying browser a moment to be reaped, so the message says so.
        let mut status = None;
        for _ in 0..10 {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let msg = match status {
            Some(s) => format!("Chromium died ({s}) while {what}: {cause}"),
            None => format!("lost the DevTools connection to Chromium while {what}: {cause}"),
        };
        self.dead = Some(msg.clone());
        anyhow!(
            "{msg}\nChromium's stderr ends:\n{}",
            stderr_tail(&self.profile)
        )
    }

    /// Reads one message, or `None` if nothing arrived within one read slice.
    fn read_message(&mut self, what: &str) -> anyhow::Result<Option<Value>> {
        if let Some(msg) = &self.dead {
            bail!("{msg}");
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(self.death(what, format!("exit status {status}")));
        }
        match self.ws.read() {
            Ok(Message::Text(text)) => {
                let value: Value = serde_json::from_str(text.as_str())
                    .with_context(|| format!("a DevTools message that is not JSON: {text}"))?;
                Ok(Some(value))
            }
            Ok(Message::Close(frame)) => {
                Err(self.death(what, format!("websocket closed ({frame:?})")))
            }
            Ok(_) => Ok(None), // ping/pong (answered by tungstenite), binary: none in CDP
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => Ok(None),
            Err(e) => Err(self.death(what, e)),
        }
    }

    /// Sends a command (to a session, or to the browser) and waits for its
    /// response, buffering every event that arrives meanwhile.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        if let Some(msg) = &self.dead {
            bail!("{msg}");
        }
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            request["sessionId"] = json!(session);
        }
        let what = format!("sending {method}");
        let sent = self.ws.send(Message::text(request.to_string()));
        if let Err(e) = sent {
            return Err(self.death(&what, e));
        }
        let what = format!("waiting for the response to {method}");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(msg) = self.read_message(&what)? {
                if msg.get("id").and_then(Value::as_u64) == Some(id) {
                    if let Some(err) = msg.get("error") {
                        bail!("{method} failed: {err}");
                    }
                    return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
                }
                if msg.get("method").is_some() {
                    self.events.push_back(msg);
                }
                // A response to an earlier command that timed out: dropped.
            } else if Instant::now() >= deadline {
                bail!("{method}: no response within {timeout:?}");
            }
        }
    }

    /// The next event, buffered or read within one read slice.
    fn next_event(&mut self, what: &str) -> anyhow::Result<Option<Value>> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        match self.read_message(what)? {
            Some(msg) if msg.get("method").is_some() => Ok(Some(msg)),
            _ => Ok(None),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask politely first, so Chromium takes its helper processes down
        // with it; then kill it by its own pid and reap it.
        if self.dead.is_none() {
            self.next_id += 1;
            let close = json!({ "id": self.next_id, "method": "Browser.close" });
            let _ = self.ws.send(Message::text(close.to_string()));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_profile(&self.profile);
    }
}

/// One tab of a [`Browser`], attached with a flatten session.
pub struct Page<'b> {
    browser: &'b mut Browser,
    target_id: String,
    session_id: String,
    /// Every error reported since the page was created.
    errors: Vec<String>,
    /// How many `Page.loadEventFired` events were seen.
    loads: u64,
}

impl fmt::Debug for Page<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("target_id", &self.target_id)
            .field("session_id", &self.session_id)
            .field("errors", &self.errors)
            .finish()
    }
}

/// JavaScript truthiness of a value returned by value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A `Runtime.RemoteObject` as text, as the console would print it.
fn remote_object_text(obj: &Value) -> String {
    if let Some(v) = obj.get("value") {
        return match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
    obj.get("description")
        .or_else(|| obj.get("unserializableValue"))
        .and_then(Value::as_str)
        .or_else(|| obj.get("type").and_then(Value::as_str))
        .unwrap_or("?")
        .to_string()
}

/// `Runtime.ExceptionDetails` as one line: the text and the exception.
fn exception_text(details: &Value) -> String {
    let text = details["text"].as_str().unwrap_or("exception");
    let mut out = text.to_string();
    if let Some(desc) = details["exception"]["description"].as_str() {
        out.push_str(": ");
        out.push_str(desc);
    } else if let Some(v) = details["exception"].get("value") {
        out.push_str(": ");
        out.push_str(&v.to_string());
    }
    if let Some(url) = details["url"].as_str().filter(|u| !u.is_empty()) {
        out.push_str(&format!(
            " ({url}:{}:{})",
            details["lineNumber"].as_u64().unwrap_or(0) + 1,
            details["columnNumber"].as_u64().unwrap_or(0) + 1
        ));
    }
    out
}

/// The result of one evaluation: the value, or the exception's text.
type Evaluated = Result<Value, String>;

impl Page<'_> {
    /// The DevTools target id of this tab.
    pub fn target_id(&self) -> &str {
        &self.target_id
    }

    fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.call_timeout(method, params, COMMAND_TIMEOUT)
    }

    fn call_timeout(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let session = self.session_id.clone();
        let result = self.browser.call(Some(&session), method, params, timeout);
        self.process_buffered();
        result
    }

    /// Records what an event of this page says; ignores other sessions'.
    fn handle(&mut self, event: &Value) {
        if event["sessionId"].as_str() != Some(self.session_id.as_str()) {
            return;
        }
        let params = &event["params"];
        match event["method"].as_str().unwrap_or("") {
            "Page.loadEventFired" => self.loads += 1,
            "Runtime.exceptionThrown" => {
                let text = exception_text(&params["exceptionDetails"]);
                self.errors.push(format!("uncaught exception: {text}"));
            }
            "Runtime.consoleAPICalled" => {
                let kind = params["type"].as_str().unwrap_or("");
                if kind == "error" || kind == "assert" {
                    let args: Vec<String> = params["args"]
                        .as_array()
                        .map(|a| a.iter().map(remote_object_text).collect())
                        .unwrap_or_default();
                    self.errors
                        .push(format!("console.{kind}: {}", args.join(" ")));
                }
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                if entry["level"].as_str() == Some("error") {
                    let mut text = format!(
                        "log ({}): {}",
                        entry["source"].as_str().unwrap_or("?"),
                        entry["text"].as_str().unwrap_or("")
                    );
                    if let Some(url) = entry["url"].as_str().filter(|u| !u.is_empty()) {
                        text.push_str(&format!(" [{url}]"));
                    }
                    self.errors.push(text);
                }
            }
            _ => {}
        }
    }

    /// Handles every event the browser has buffered.
    fn process_buffered(&mut self) {
        while let Some(event) = self.browser.events.pop_front() {
            self.handle(&event);
        }
    }

    /// Sends `Network.setExtraHTTPHeaders`: every later request of this page
    /// carries these headers (e.g. `Authorization`).
    pub fn set_extra_headers(&mut self, headers: &[(&str, &str)]) -> anyhow::Result<()> {
        let map: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        self.call("Network.setExtraHTTPHeaders", json!({ "headers": map }))?;
        Ok(())
    }

    /// Navigates to `url` and waits (30 s at most) for its load event; an
    /// error if the navigation itself fails (DNS, refused connection, …).
    /// A same-document navigation (only the `#fragment` changes) fires no
    /// load event: use [`Page::eval`] with `location.hash = …` for those.
    pub fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + NAVIGATE_TIMEOUT;
        self.process_buffered();
        let before = self.loads;
        let nav = self.call_timeout("Page.navigate", json!({ "url": url }), NAVIGATE_TIMEOUT)?;
        if let Some(err) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            bail!("navigating to {url} failed: {err}");
        }
        let what = format!("waiting for the load event of {url}");
        while self.loads == before {
            match self.browser.next_event(&what)? {
                Some(event) => self.handle(&event),
                None if Instant::now() >= deadline => {
                    bail!("{url}: no load event within {NAVIGATE_TIMEOUT:?}")
                }
                None => {}
            }
        }
        Ok(())
    }

    /// One `Runtime.evaluate`; the outer error is a transport failure, the
    /// inner one an exception thrown by the expression.
    fn evaluate(&mut self, expr: &str) -> anyhow::Result<Evaluated> {
        let r = self.call(
            "Runtime.evaluate",
            json!({
                "expression": expr,
                "returnByValue": true,
                "awaitPromise": true,
                "userGesture": true,
            }),
        )?;
        if let Some(details) = r.get("exceptionDetails") {
            return Ok(Err(exception_text(details)));
        }
        Ok(Ok(r["result"].get("value").cloned().unwrap_or(Value::Null)))
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its
    /// value as JSON (`undefined` is `null`); a thrown exception is an error
    /// carrying its text.
    pub fn eval(&mut self, expr: &str) -> anyhow::Result<Value> {
        self.evaluate(expr)?
            .map_err(|e| anyhow!("evaluating `{expr}` threw {e}"))
    }

    /// Evaluates `expr` every 100 ms until its value is truthy and returns
    /// that value; on timeout, an error with the last value (or exception).
    pub fn wait_for(&mut self, expr: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.evaluate(expr)?;
            if let Ok(v) = &last {
                if truthy(v) {
                    return Ok(v.clone());
                }
            }
            if Instant::now() >= deadline {
                let last = match last {
                    Ok(v) => format!("last value {v}"),
                    Err(e) => format!("last evaluation threw {e}"),
                };
                bail!("`{expr}` was not truthy within {timeout:?}; {last}");
            }
            thread::sleep(POLL);
        }
    }

    /// Writes a PNG of the whole document (not only the viewport) to `path`.
    pub fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}))?;
        let size = &metrics["cssContentSize"];
        let (w, h) = (
            size["width"].as_f64().unwrap_or(0.0).ceil(),
            size["height"].as_f64().unwrap_or(0.0).ceil(),
        );
        if w < 1.0 || h < 1.0 {
            bail!("the document has no size to screenshot: {metrics}");
        }
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 },
            }),
        )?;
        let data = shot["data"]
            .as_str()
            .ok_or_else(|| anyhow!("Page.captureScreenshot returned no data"))?;
        let png = base64_decode(data).context("decoding the screenshot")?;
        fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Every error the page reported since it was created: uncaught
    /// exceptions, `console.error`/`console.assert`, and the browser's own
    /// error log (CSP violations, failed loads). A round trip to the page
    /// first makes sure every event it sent before is in. If that fails, the
    /// failure is in the list too, so a test asserting an empty list fails.
    pub fn console_errors(&mut self) -> Vec<String> {
        if let Err(e) = self.evaluate("0") {
            let mut errors = self.errors.clone();
            errors.push(format!(
                "tumen-lab: could not collect the page's events: {e:#}"
            ));
            return errors;
        }
        self.errors.clone()
    }

    /// Sets the viewport (CSS pixels, device scale factor 1) and whether the
    /// page is emulated as mobile (meta viewport, overlay scrollbars).
    pub fn set_viewport(&mut self, width: u32, height: u32, mobile: bool) -> anyhow::Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": mobile,
            }),
        )?;
        Ok(())
    }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        if self.browser.dead.is_none() {
            let target = json!({ "targetId": self.target_id });
            let _ = self
                .browser
                .call(None, "Target.closeTarget", target, Duration::from_secs(5));
        }
        self.browser.events.clear();
    }
}

/// Standard base64 (with padding, as DevTools sends it).
fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            bail!("truncated base64");
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = sextet(c).ok_or_else(|| anyhow!("invalid base64 byte {c:#04x}"))?;
            acc |= v << (18 - 6 * i);
        }
        let n = chunk.len() - 1; // 2 chars → 1 byte, 3 → 2, 4 → 3
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64_decode(enc).unwrap(), dec.as_bytes(), "{enc}");
        }
        assert!(base64_decode("Zm9v!").is_err());
    }

    #[test]
    fn truthiness_is_javascript_s() {
        for v in [json!(null), json!(false), json!(0), json!(""), json!(0.0)] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!("x"), json!([]), json!({})] {
            assert!(truthy(&v), "{v}");
        }
    }
}
