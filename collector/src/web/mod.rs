//! The collector's read-only web view: who carries the traffic now, over
//! time, along which paths, and the evidence behind every change
//! (docs/web.md). Server-rendered HTML (maud: every value escaped), inline
//! SVG charts drawn here, one embedded stylesheet pair and one small
//! script (live updates by Server-Sent Events); nothing is fetched from
//! elsewhere, and every view works without JavaScript.
//!
//! Routes (GET only): `/` (Now), `/timeline`, `/paths`, `/changes`,
//! `/changes/{id}` and its bundles `/changes/{id}/bundle.{json,csv,md}`,
//! `/agents`, `/ui/now.json`, `/ui/fragment/paths`, `/ui/stream` (SSE),
//! `/ui/static/*`. Who may read them: [`ViewAccess`].

pub mod chart;
pub mod data;
pub mod graph;
pub mod pages;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ipnet::IpNet;
use maud::Markup;
use serde::{Deserialize, Serialize};

use crate::serve::config::ViewAccess;
use crate::serve::App;
use crate::store::{BgpEventFilter, BgpEventRow, EventFilter, EventRow, TraceFilter};
use data::{BeforeAfter, HopRow};
use pages::{PageInfo, View};

/// The Content-Security-Policy of every page: nothing inline, nothing
/// from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// How many live-update streams may be open at once.
pub const MAX_STREAMS: usize = 256;

/// How far around a change the detail looks for traces.
pub const EVIDENCE_WINDOW_MS: u64 = 30 * 60 * 1000;

/// What one agent's latest upload said (in memory: gone at restart until
/// the next upload).
#[derive(Debug, Clone, Default, Serialize)]
pub struct UploadStats {
    /// From the `User-Agent` header (`tumen-agent/0.1.0`).
    pub version: Option<String>,
    pub at_ms: u64,
    /// Age of the upload's oldest record on arrival.
    pub spool_lag_ms: Option<u64>,
    /// Probes sent per round in the upload (traces' probes and pings'
    /// packets over the rounds it spans: the most traces any one
    /// destination had).
    pub probes_per_round: Option<f64>,
}

/// The web view's own state, held by [`App`].
#[derive(Debug)]
pub struct WebState {
    /// Viewer tokens (when the access is by token).
    tokens: Vec<String>,
    pub uploads: Mutex<BTreeMap<String, UploadStats>>,
    /// The latest Now snapshot, as the live stream sends it.
    feed: tokio::sync::watch::Sender<Arc<Feed>>,
    streams: Arc<tokio::sync::Semaphore>,
    /// Rendered paths graphs by /24 (`None`: all), with the feed's
    /// `paths_version` they were drawn at: drawn again only when the
    /// routes changed.
    graphs: Mutex<GraphCache>,
    /// Drawn preset timelines by (/24, range): when, and the body.
    timelines: Mutex<TimelineCache>,
    /// The evidence of the latest changes viewed whose window has closed
    /// (nothing can change it any more), newest last.
    evidence: Mutex<std::collections::VecDeque<(i64, Arc<Evidence>)>>,
}

/// Closed changes whose evidence is kept (each at most some tens of MB
/// with thousands of vantage points).
const EVIDENCE_KEPT: usize = 4;

/// A change's whole evidence, and its bundles once made.
#[derive(Debug)]
pub struct Evidence {
    pub gathered: Gathered,
    json: std::sync::OnceLock<bytes::Bytes>,
    csv: std::sync::OnceLock<bytes::Bytes>,
    md: std::sync::OnceLock<bytes::Bytes>,
    /// The same, gzipped, for clients that take it.
    gz: [std::sync::OnceLock<bytes::Bytes>; 3],
}

impl Evidence {
    fn new(gathered: Gathered) -> Self {
        Self {
            gathered,
            json: Default::default(),
            csv: Default::default(),
            md: Default::default(),
            gz: Default::default(),
        }
    }

    /// The bundle in one format, made once.
    fn file(&self, kind: &str) -> bytes::Bytes {
        let b = &self.gathered.bundle;
        let (cell, make): (_, &dyn Fn() -> String) = match kind {
            "json" => (&self.json, &|| serde_json::to_string(b).unwrap_or_default()),
            "csv" => (&self.csv, &|| bundle_csv(b)),
            _ => (&self.md, &|| pages::bundle_markdown(b)),
        };
        cell.get_or_init(|| bytes::Bytes::from(make())).clone()
    }

    /// The bundle in one format, gzipped, made once.
    fn file_gz(&self, kind: &str) -> bytes::Bytes {
        let i = match kind {
            "json" => 0,
            "csv" => 1,
            _ => 2,
        };
        self.gz[i]
            .get_or_init(|| {
                use std::io::Write;
                let plain = self.file(kind);
                let mut z = flate2::write::GzEncoder::new(
                    Vec::with_capacity(plain.len() / 8),
                    flate2::Compression::fast(),
                );
                let done = z.write_all(&plain).and_then(|()| z.finish());
                bytes::Bytes::from(done.unwrap_or_default())
            })
            .clone()
    }
}

/// Drawn preset timelines by (/24, range): (when, the body).
type TimelineCache = std::collections::HashMap<(Option<IpNet>, String), (u64, Arc<String>)>;

/// Rendered graphs by /24 (`None`: all): (paths version, the SVG).
type GraphCache = std::collections::HashMap<Option<IpNet>, (u64, Arc<String>)>;

/// What the live stream pushes.
#[derive(Debug, Default)]
pub struct Feed {
    /// The Now view as JSON.
    pub now: String,
    /// Bumped when the paths graph would change.
    pub paths_version: u64,
}

impl WebState {
    /// Reads the viewer tokens when the access is by token: one per line,
    /// `#` comments, at least 16 characters each.
    pub fn new(access: &ViewAccess) -> Result<Self, String> {
        let tokens = match access {
            ViewAccess::Tokens(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--viewer-token-file {}: {e}", path.display()))?;
                let mut t = Vec::new();
                for (i, l) in text.lines().enumerate() {
                    let l = l.split('#').next().unwrap_or("").trim();
                    if l.is_empty() {
                        continue;
                    }
                    if l.len() < 16 || !l.bytes().all(|b| b.is_ascii_graphic()) {
                        return Err(format!(
                            "--viewer-token-file {}:{}: a token is at least 16 visible ASCII \
                             characters (e.g. `openssl rand -hex 16`)",
                            path.display(),
                            i + 1
                        ));
                    }
                    t.push(l.to_string());
                }
                if t.is_empty() {
                    return Err(format!(
                        "--viewer-token-file {}: no token in the file",
                        path.display()
                    ));
                }
                t
            }
            _ => Vec::new(),
        };
        Ok(Self {
            tokens,
            uploads: Mutex::default(),
            feed: tokio::sync::watch::Sender::new(Arc::new(Feed::default())),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
            graphs: Mutex::default(),
            timelines: Mutex::default(),
            evidence: Mutex::default(),
        })
    }

    /// Notes what an accepted upload said about its agent.
    pub fn note_upload(&self, agent: &str, stats: UploadStats) {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent.to_string(), stats);
    }
}

/// What an upload says about its agent: version from `user_agent`, the
/// oldest record's age, probes per round.
pub fn upload_stats(
    user_agent: Option<&str>,
    received_ms: u64,
    upload: &crate::pipeline::Upload,
) -> UploadStats {
    let version = user_agent.map(|v| {
        let v: String = v.chars().filter(|c| !c.is_control()).take(64).collect();
        v
    });
    let oldest = upload
        .traces
        .iter()
        .map(|t| t.record.start_ms)
        .chain(upload.pings.iter().map(|p| p.record.start_ms))
        .min();
    let mut per_dst: BTreeMap<std::net::IpAddr, usize> = BTreeMap::new();
    let mut probes: u64 = 0;
    for t in &upload.traces {
        *per_dst.entry(t.record.dst).or_default() += 1;
        probes += u64::from(t.record.probes_sent);
    }
    for p in &upload.pings {
        probes += u64::from(p.record.sent);
    }
    let rounds = per_dst.values().copied().max().unwrap_or(0);
    UploadStats {
        version,
        at_ms: received_ms,
        spool_lag_ms: oldest.map(|o| received_ms.saturating_sub(o)),
        probes_per_round: (rounds > 0).then(|| probes as f64 / rounds as f64),
    }
}

/// The web view's routes, behind the access check, with the security
/// headers.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/", get(now_page))
        .route("/timeline", get(timeline_page))
        .route("/paths", get(paths_page))
        .route("/changes", get(changes_page))
        .route("/changes/{id}", get(change_page))
        .route("/changes/{id}/{file}", get(bundle_file))
        .route("/agents", get(agents_page))
        .route("/ui/now.json", get(now_json))
        .route("/ui/fragment/paths", get(paths_fragment))
        .route("/ui/stream", get(stream))
        .route("/ui/static/{file}", get(asset))
        .route("/favicon.ico", get(favicon))
        .route_layer(axum::middleware::from_fn_with_state(app, guard))
}

/// Access check and security headers, for every web route.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let allowed = match &app.config.view {
        ViewAccess::Open => Ok(()),
        ViewAccess::Closed => Err(closed()),
        ViewAccess::Tokens(_) => {
            if presented(req.headers()).is_some_and(|t| app.web.accepts(&t)) {
                Ok(())
            } else {
                let mut r = html_status(
                    StatusCode::UNAUTHORIZED,
                    pages::message(
                        "Viewer token needed",
                        "This collector's web view needs a viewer token: give it as the \
                         password (any user name), or as a Bearer token.",
                    ),
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tumen\", charset=\"UTF-8\""),
                );
                Err(r)
            }
        }
    };
    let mut resp = match allowed {
        Ok(()) => next.run(req).await,
        Err(r) => r,
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

fn closed() -> Response {
    html_status(
        StatusCode::FORBIDDEN,
        pages::message(
            "Web view closed",
            "The collector listens beyond loopback, so its web view needs a viewer token \
             (--viewer-token-file) or an explicit --public-view.",
        ),
    )
}

impl WebState {
    /// Constant-time comparison with every token.
    fn accepts(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let mut ok = subtle::Choice::from(0);
        for t in &self.tokens {
            ok |= t.as_bytes().ct_eq(presented.as_bytes());
        }
        bool::from(ok)
    }
}

/// The token an `Authorization` header carries: Bearer, or Basic's
/// password.
fn presented(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64_decode(rest.trim())?;
        let text = String::from_utf8(raw).ok()?;
        return text.split_once(':').map(|(_, p)| p.to_string());
    }
    None
}

/// Standard base64 (with or without padding); `None` if malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 || s.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A rendered page. maud escaped every value; control characters (which
/// HTML forbids and terminals obey) are replaced in the whole page too,
/// wherever a label reached it.
fn html_status(status: StatusCode, m: Markup) -> Response {
    let page = m.into_string();
    let page = chart::clean(&page).into_owned();
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn html(m: Markup) -> Response {
    html_status(StatusCode::OK, m)
}

fn bad_request(text: &str) -> Response {
    html_status(StatusCode::BAD_REQUEST, pages::message("Bad request", text))
}

fn info(app: &App) -> PageInfo {
    PageInfo {
        version: env!("CARGO_PKG_VERSION"),
        target: app.target.describe(),
        now_ms: crate::serve::metrics::now_ms(),
    }
}

fn silence_ms(app: &App) -> u64 {
    u64::try_from(app.config.agent_silence.as_millis()).unwrap_or(u64::MAX)
}

/// The Now view's data, from the read model and the control plane.
pub fn now_data(app: &App) -> data::Now {
    let now_ms = crate::serve::metrics::now_ms();
    let live = app.live.read().unwrap_or_else(|p| p.into_inner());
    if app.config.bgp.any() {
        let m = app.bgp.read().unwrap_or_else(|p| p.into_inner());
        let f = |u: &IpNet| m.unit_shares(u).0;
        data::now(
            &live,
            now_ms,
            silence_ms(app),
            Some(&f),
            Some(m.shares_all()),
        )
    } else {
        data::now(&live, now_ms, silence_ms(app), None, None)
    }
}

/// The /24s agents have paths to (for the selects).
fn units(app: &App) -> Vec<String> {
    let live = app.live.read().unwrap_or_else(|p| p.into_inner());
    let set: std::collections::BTreeSet<IpNet> = live.paths.keys().map(|(_, u)| *u).collect();
    set.into_iter().map(|u| u.to_string()).collect()
}

async fn now_page(State(app): State<Arc<App>>) -> Response {
    let now = now_data(&app);
    let bgp = app.config.bgp.any();
    let prefixes = if bgp {
        app.bgp.read().unwrap_or_else(|p| p.into_inner()).prefixes()
    } else {
        Vec::new()
    };
    html(pages::layout(
        "Now",
        View::Now,
        &info(&app),
        pages::now_view(&now, bgp, &prefixes),
    ))
}

async fn now_json(State(app): State<Arc<App>>) -> Response {
    axum::Json(now_data(&app)).into_response()
}

/// A /24 from a query (`None` = all); an error page for anything else.
fn query_prefix(p: Option<&str>) -> Result<Option<IpNet>, Box<Response>> {
    match p.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => p
            .parse::<IpNet>()
            .map(|n| n.trunc())
            .or_else(|_| p.parse::<std::net::IpAddr>().map(crate::paths::unit_of))
            .map(Some)
            .map_err(|_| {
                Box::new(bad_request(&format!(
                    "prefix {p:?} is not a prefix or address (e.g. 175.45.177.0/24)"
                )))
            }),
    }
}

#[derive(Debug, Deserialize)]
struct TimelineQuery {
    prefix: Option<String>,
    range: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

/// How many events a timeline replays at most.
const TIMELINE_EVENTS: usize = 50_000;

/// Change marks drawn on one chart at most.
const MARKS: usize = 150;

async fn timeline_page(
    State(app): State<Arc<App>>,
    q: Result<Query<TimelineQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_request("query must be prefix=, range=1h|1d|30d|custom, from=, until=");
    };
    let prefix = match query_prefix(q.prefix.as_deref()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let now_ms = crate::serve::metrics::now_ms();
    let range = q.range.as_deref().unwrap_or("1d");
    let (from_ms, until_ms) = match range {
        "1h" => (now_ms.saturating_sub(3_600_000), now_ms),
        "1d" => (now_ms.saturating_sub(86_400_000), now_ms),
        "30d" => (now_ms.saturating_sub(30 * 86_400_000), now_ms),
        "custom" => {
            let t = |s: Option<&str>, what: &str| -> Result<u64, String> {
                let s = s.unwrap_or("");
                crate::bgp::timeline::parse_time(s)
                    .map(|secs| secs.saturating_mul(1000))
                    .map_err(|e| format!("{what} {s:?}: {e}"))
            };
            match (t(q.from.as_deref(), "from"), t(q.until.as_deref(), "until")) {
                (Ok(f), Ok(u)) if f < u => (f, u),
                (Ok(_), Ok(_)) => return bad_request("from must be before until"),
                (Err(e), _) | (_, Err(e)) => return bad_request(&e),
            }
        }
        other => {
            return bad_request(&format!(
                "range {other:?} is not one of 1h, 1d, 30d, custom"
            ))
        }
    };
    // The presets are drawn at most once per TIMELINE_FRESH_MS for all
    // viewers together (a chart over a day or a month does not move in a
    // few seconds); a custom range is drawn for its request.
    let key = (prefix, range.to_string());
    let preset = range != "custom";
    if preset {
        let kept = app
            .web
            .timelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|(made, _)| now_ms.saturating_sub(*made) < TIMELINE_FRESH_MS)
            .map(|(_, b)| b.clone());
        if let Some(b) = kept {
            return html(pages::layout(
                "Timeline",
                View::Timeline,
                &info(&app),
                maud::PreEscaped(b.as_str().to_string()),
            ));
        }
    }
    let app2 = app.clone();
    let range2 = range.to_string();
    let drawn = tokio::task::spawn_blocking(move || {
        timeline_body(&app2, prefix, &range2, from_ms, until_ms)
    })
    .await;
    let body = match drawn {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return store_error(&e),
        Err(e) => return store_error(&e.to_string()),
    };
    if preset {
        let mut kept = app.web.timelines.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() > 64 {
            kept.clear();
        }
        kept.insert(key, (now_ms, Arc::new(body.0.clone())));
    }
    html(pages::layout("Timeline", View::Timeline, &info(&app), body))
}

/// How long a drawn preset timeline is served again.
const TIMELINE_FRESH_MS: u64 = 5_000;

/// The Timeline view's body: events from the store, replayed, drawn.
fn timeline_body(
    app: &App,
    prefix: Option<IpNet>,
    range: &str,
    from_ms: u64,
    until_ms: u64,
) -> Result<Markup, String> {
    let filter = EventFilter {
        prefix,
        since_ms: Some(from_ms.saturating_add(1)),
        limit: TIMELINE_EVENTS,
        skip_evidence: true,
        ..Default::default()
    };
    let events = app.reader.events(&filter).map_err(|e| e.to_string())?;
    let truncated = events.len() >= TIMELINE_EVENTS;
    let tl = {
        let live = app.live.read().unwrap_or_else(|p| p.into_inner());
        let first_seen = |a: &str| live.agents.get(a).map(|i| i.first_seen_ms);
        data::timeline(&live.paths, &first_seen, &events, prefix, from_ms, until_ms)
    };
    let names = tl
        .series
        .values()
        .flat_map(|s| s.keys())
        .map(String::as_str);
    let palette = chart::Palette::new(names);
    let charts: Vec<(String, Markup)> = tl
        .series
        .iter()
        .map(|(unit, series)| {
            let title = unit.map_or_else(|| "all /24s".to_string(), |u| u.to_string());
            let s: Vec<chart::Series> = series
                .iter()
                .map(|(name, points)| chart::Series {
                    name: name.clone(),
                    points: points.clone(),
                })
                .collect();
            let theirs: Vec<&EventRow> = tl
                .events
                .iter()
                .filter(|e| unit.is_none_or(|u| e.prefix == u.to_string()))
                .collect();
            // At most MARKS per chart, evenly over the changes (a mark a
            // pixel wide says nothing more): the Changes view lists all.
            let step = theirs.len().div_ceil(MARKS).max(1);
            let marks: Vec<chart::Mark> = theirs
                .iter()
                .step_by(step)
                .map(|e| chart::Mark {
                    at_ms: e.at_ms,
                    label: format!(
                        "{}: {} → {} ({})",
                        e.agent,
                        e.from_upstream.as_deref().unwrap_or("nothing"),
                        e.to_upstream,
                        e.prefix
                    ),
                    href: format!("/changes/{}", e.id),
                })
                .collect();
            let m = chart::shares_chart(&s, from_ms, until_ms, &marks, &palette, &title);
            (title, m)
        })
        .collect();
    let dt = |ms: u64| pages::iso(ms).trim_end_matches('Z').to_string();
    let body = maud::html! {
        h1 { "Upstream shares over time" }
        (pages::timeline_form(&units(app), prefix.map(|p| p.to_string()).as_deref(), range, &dt(from_ms), &dt(until_ms)))
        p.note { "From " (pages::when(from_ms)) " to " (pages::when(until_ms)) ", replayed from the stored changes ("
            (tl.events.len()) " in range). Each mark links to the change's evidence"
            @if tl.events.len() > MARKS { " (at most " (MARKS) " marks a chart, spread over the range: "
                a href=(prefix.map_or_else(|| "/changes".to_string(), |p| format!("/changes?prefix={p}"))) { "the Changes view" } " lists them all)" }
            "." }
        @if truncated { p.warn { "More than " (TIMELINE_EVENTS) " changes: only the latest are replayed; pick a shorter range." } }
        @if charts.is_empty() { p.none { "No path yet." } }
        @for (title, m) in &charts {
            section.chart { h2 { (chart::clean(title)) } (m) }
        }
    };
    Ok(body)
}

fn store_error(e: &str) -> Response {
    html_status(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message("Store unavailable", e),
    )
}

#[derive(Debug, Deserialize)]
struct PrefixQuery {
    prefix: Option<String>,
}

/// The paths graph, drawn again only when the routes changed since it
/// was last drawn (the feed's `paths_version`, checked every second).
fn graph_of(app: &App, prefix: Option<IpNet>) -> Markup {
    let version = app.web.feed.borrow().paths_version;
    if version > 0 {
        let cached = app
            .web
            .graphs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&prefix)
            .filter(|(v, _)| *v == version)
            .map(|(_, g)| g.clone());
        if let Some(g) = cached {
            return maud::PreEscaped(g.as_str().to_string());
        }
    }
    let g = draw_graph(app, prefix);
    if version > 0 {
        let mut graphs = app.web.graphs.lock().unwrap_or_else(|p| p.into_inner());
        if graphs.len() > 64 {
            graphs.clear();
        }
        graphs.insert(prefix, (version, Arc::new(g.0.clone())));
    }
    g
}

/// The graph's paths from the read model (latest trace of each live path).
fn draw_graph(app: &App, prefix: Option<IpNet>) -> Markup {
    let now_ms = crate::serve::metrics::now_ms();
    let live = app.live.read().unwrap_or_else(|p| p.into_inner());
    let mut paths = Vec::new();
    for ((agent, unit), s) in &live.paths {
        if prefix.is_some_and(|p| p != *unit) || !live.is_live(agent, now_ms, silence_ms(app)) {
            continue;
        }
        let Some(r) = &s.route else { continue };
        paths.push(graph::GraphPath {
            agent: agent.clone(),
            prefix: unit.to_string(),
            upstream: s.current.as_ref().map(|u| u.name.clone()),
            hops: r
                .hops
                .iter()
                .map(|h| graph::AsHop {
                    asn: h.asn,
                    org: h.org.clone(),
                    first_ttl: h.first_ttl,
                    last_ttl: h.last_ttl,
                    rtt_ms: h.rtt_ms,
                })
                .collect(),
            reached: r.reached,
            dest_ttl: r.dest_ttl,
            dest_rtt_ms: r.dest_rtt_ms,
        });
    }
    drop(live);
    let palette = chart::Palette::new(paths.iter().filter_map(|p| p.upstream.as_deref()));
    graph::paths_graph(&paths, &palette)
}

async fn paths_page(
    State(app): State<Arc<App>>,
    q: Result<Query<PrefixQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_request("query must be prefix=PREFIX");
    };
    let prefix = match query_prefix(q.prefix.as_deref()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let src = match prefix {
        Some(p) => format!("/ui/fragment/paths?prefix={p}"),
        None => "/ui/fragment/paths".into(),
    };
    let body = pages::paths_view(
        &units(&app),
        prefix.map(|p| p.to_string()).as_deref(),
        graph_of(&app, prefix),
        &src,
    );
    html(pages::layout("Paths", View::Paths, &info(&app), body))
}

async fn paths_fragment(
    State(app): State<Arc<App>>,
    q: Result<Query<PrefixQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_request("query must be prefix=PREFIX");
    };
    match query_prefix(q.prefix.as_deref()) {
        Ok(p) => html(graph_of(&app, p)),
        Err(r) => *r,
    }
}

#[derive(Debug, Deserialize)]
struct ChangesQuery {
    prefix: Option<String>,
    limit: Option<usize>,
}

async fn changes_page(
    State(app): State<Arc<App>>,
    q: Result<Query<ChangesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad_request("query must be prefix=PREFIX&limit=N");
    };
    let prefix = match query_prefix(q.prefix.as_deref()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let limit = q.limit.unwrap_or(200).clamp(1, 2000);
    let app2 = app.clone();
    let bgp_on = app.config.bgp.any();
    let got = tokio::task::spawn_blocking(move || {
        let ev = app2.reader.events(&EventFilter {
            prefix,
            limit,
            ..Default::default()
        })?;
        let bgp = if bgp_on {
            let mut rows = app2.reader.bgp_events(&BgpEventFilter {
                limit: 2000,
                ..Default::default()
            })?;
            rows.retain(|r| {
                prefix.is_none_or(|p| {
                    r.event
                        .prefix
                        .is_none_or(|q| q.contains(&p) || p.contains(&q))
                })
            });
            rows.truncate(200);
            rows
        } else {
            Vec::new()
        };
        Ok::<_, crate::store::StoreError>((ev, bgp))
    })
    .await;
    let (events, bgp) = match got {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return store_error(&e.to_string()),
        Err(e) => return store_error(&e.to_string()),
    };
    let body = pages::changes_view(
        &events,
        &bgp,
        &units(&app),
        prefix.map(|p| p.to_string()).as_deref(),
        limit,
    );
    html(pages::layout("Changes", View::Changes, &info(&app), body))
}

/// Everything shown about one change: what the page, the bundles and
/// `infer` on the bundle read.
#[derive(Debug, Clone, Serialize)]
pub struct Bundle {
    /// [`crate::input::tumen::BUNDLE`].
    pub bundle: &'static str,
    pub collector_version: &'static str,
    pub generated_ms: u64,
    pub event: EventRow,
    /// The traces' window (Unix ms).
    pub window: (u64, u64),
    pub vantage_points: Vec<VpEvidence>,
    pub bgp_routes: Vec<crate::bgp::model::PeerRoute>,
    pub bgp_events: Vec<BgpEventRow>,
    /// Every trace above, its line as received (Tumen JSON lines).
    pub traces: Vec<String>,
}

/// One vantage point's traces before and after.
#[derive(Debug, Clone, Serialize)]
pub struct VpEvidence {
    pub agent: String,
    pub before: Option<TraceEvidence>,
    pub after: Option<TraceEvidence>,
}

/// A trace as the bundle shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEvidence {
    pub id: String,
    pub start_ms: u64,
    pub dst: String,
    /// The verdict stored when it arrived.
    pub upstream: String,
    pub upstream_asn: Option<u32>,
    pub entered: bool,
    pub confidence: f64,
    pub hops: Vec<HopRow>,
}

/// A change's evidence, as far as asked.
#[derive(Debug)]
pub struct Gathered {
    pub bundle: Bundle,
    /// Vantage points that traced the /24 in the window, and how many of
    /// them changed upstream between their traces before and after.
    pub total_vps: usize,
    pub moved_vps: usize,
}

/// Vantage points per page of a change detail.
pub const VPS_PER_PAGE: usize = 100;

/// Looks up a change and gathers its evidence (`None`: no such change),
/// on the blocking pool. The vantage points come in the order the page
/// shows them (the one that changed, those whose upstream moved between
/// before and after, the rest, by name); with `page`, only those of that
/// page are read hop by hop (the bundles take all).
async fn gather(app: &Arc<App>, id: i64, page: Option<usize>) -> Result<Option<Gathered>, String> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || gather_now(&app, id, page))
        .await
        .map_err(|e| e.to_string())?
}

/// A change's stored evidence: the event, its window, the traces toward
/// its /24 in the window, and (with BGP) the control-plane events there.
type ChangeRows = (
    EventRow,
    (u64, u64),
    Vec<crate::store::StoredTrace>,
    Vec<BgpEventRow>,
);

fn read_change(app: &App, id: i64) -> Result<Option<ChangeRows>, crate::store::StoreError> {
    let Some(ev) = app
        .reader
        .events(&EventFilter {
            id: Some(id),
            limit: 1,
            ..Default::default()
        })?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let unit: Option<IpNet> = ev.prefix.parse().ok();
    let window = (
        ev.at_ms.saturating_sub(EVIDENCE_WINDOW_MS),
        ev.at_ms.saturating_add(EVIDENCE_WINDOW_MS),
    );
    let traces = match unit {
        Some(prefix) => app.reader.traces(&TraceFilter {
            prefix,
            since_ms: window.0,
            until_ms: window.1,
            limit: 20_000,
        })?,
        None => Vec::new(),
    };
    let bgp = if app.config.bgp.any() {
        let mut rows = app.reader.bgp_events(&BgpEventFilter {
            since_ms: Some(window.0),
            until_ms: Some(window.1),
            limit: 5000,
            ..Default::default()
        })?;
        rows.retain(|r| {
            r.event
                .prefix
                .is_some_and(|p| unit.is_some_and(|u| p.contains(&u)))
        });
        rows.reverse();
        rows.truncate(500);
        rows
    } else {
        Vec::new()
    };
    Ok(Some((ev, window, traces, bgp)))
}

fn gather_now(app: &App, id: i64, page: Option<usize>) -> Result<Option<Gathered>, String> {
    let got = read_change(app, id).map_err(|e| e.to_string())?;
    let Some((ev, window, traces, bgp_events)) = got else {
        return Ok(None);
    };
    let mut pairs = data::before_after(&traces, &ev.agent, &ev.to_upstream, ev.at_ms);
    let moved = |b: &BeforeAfter| match (&b.before, &b.after) {
        (Some(x), Some(y)) => x.upstream != y.upstream,
        _ => false,
    };
    pairs.sort_by_cached_key(|b| (b.agent != ev.agent, !moved(b), b.agent.clone()));
    let total_vps = pairs.len();
    let moved_vps = pairs.iter().filter(|b| moved(b)).count();
    if let Some(p) = page {
        let start = p.saturating_sub(1).saturating_mul(VPS_PER_PAGE);
        pairs = pairs.into_iter().skip(start).take(VPS_PER_PAGE).collect();
    }
    let table = app.table.current();
    let lookup = crate::pipeline::Lookup {
        table: &table,
        enrich: app.dns.as_ref().map(|d| d as &dyn crate::pipeline::Enrich),
    };
    let asn_of = |a| crate::infer::AsnLookup::asn(&lookup, a);
    let org_of = |asn: u32| app.orgs.of(asn).map(str::to_string);
    // A name not yet known is asked for: the next view of the change
    // shows it.
    let ptr = |a| {
        app.dns.as_ref().and_then(|d| {
            let name = d.cached_ptr(a);
            if name.is_none() {
                d.request(a);
            }
            name
        })
    };
    let evidence = |t: &crate::store::StoredTrace| TraceEvidence {
        id: t.id.clone(),
        start_ms: t.start_ms,
        dst: t.dst.clone(),
        upstream: t.upstream.clone(),
        upstream_asn: t.upstream_asn,
        entered: t.entered,
        confidence: t.confidence,
        hops: data::hop_rows(&t.line, &asn_of, &org_of, &ptr).unwrap_or_default(),
    };
    let mut lines = Vec::new();
    let vps = pairs
        .iter()
        .map(|b| {
            for t in [&b.before, &b.after].into_iter().flatten() {
                lines.push(t.line.clone());
            }
            VpEvidence {
                agent: b.agent.clone(),
                before: b.before.as_ref().map(evidence),
                after: b.after.as_ref().map(evidence),
            }
        })
        .collect();
    let bgp_routes = match ev.prefix.parse::<IpNet>() {
        Ok(u) if app.config.bgp.any() => app
            .bgp
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .routes()
            .into_iter()
            .filter(|r| r.prefix.contains(&u))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(Gathered {
        bundle: Bundle {
            bundle: crate::input::tumen::BUNDLE,
            collector_version: env!("CARGO_PKG_VERSION"),
            generated_ms: crate::serve::metrics::now_ms(),
            event: ev,
            window,
            vantage_points: vps,
            bgp_routes,
            bgp_events,
            traces: lines,
        },
        total_vps,
        moved_vps,
    }))
}

/// A change's evidence: kept whole once its window has closed (so every
/// page and bundle of it is cut from one reading), gathered afresh (and
/// only the page asked for) while traces may still arrive. `Err` holds
/// the response to send (no such change, store unavailable).
async fn evidence_of(
    app: &Arc<App>,
    id: i64,
    page: Option<usize>,
) -> Result<Arc<Evidence>, Response> {
    let kept = app
        .web
        .evidence
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, e)| e.clone());
    if let Some(e) = kept {
        return Ok(e);
    }
    let app2 = app.clone();
    let event = tokio::task::spawn_blocking(move || {
        app2.reader.events(&EventFilter {
            id: Some(id),
            skip_evidence: true,
            limit: 1,
            ..Default::default()
        })
    })
    .await
    .map_err(|e| store_error(&e.to_string()))?
    .map_err(|e| store_error(&e.to_string()))?;
    let Some(event) = event.first() else {
        return Err(no_change(id));
    };
    // A minute of slack for uploads still on their way.
    let closed =
        event.at_ms.saturating_add(EVIDENCE_WINDOW_MS + 60_000) < crate::serve::metrics::now_ms();
    let g = match gather(app, id, if closed { None } else { page }).await {
        Ok(Some(g)) => g,
        Ok(None) => return Err(no_change(id)),
        Err(e) => return Err(store_error(&e)),
    };
    let e = Arc::new(Evidence::new(g));
    if closed {
        let mut kept = app.web.evidence.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(i, _)| *i != id);
        if kept.len() >= EVIDENCE_KEPT {
            kept.pop_front();
        }
        kept.push_back((id, e.clone()));
    }
    Ok(e)
}

fn change_id(id: &str) -> Result<i64, Box<Response>> {
    id.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        Box::new(html_status(
            StatusCode::NOT_FOUND,
            pages::message(
                "No such change",
                "A change is named by its number, e.g. /changes/12.",
            ),
        ))
    })
}

fn no_change(id: i64) -> Response {
    html_status(
        StatusCode::NOT_FOUND,
        pages::message(
            "No such change",
            &format!("No change #{id} is stored (pruned by the retention, or never made)."),
        ),
    )
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<usize>,
}

async fn change_page(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let id = match change_id(&id) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let Ok(Query(q)) = q else {
        return bad_request("query must be page=N (1, 2, ...)");
    };
    let page = q.page.unwrap_or(1).max(1);
    let ev = match evidence_of(&app, id, Some(page)).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let g = &ev.gathered;
    let (bundle, total, moved) = (&g.bundle, g.total_vps, g.moved_vps);
    // Whole evidence (kept) is cut to the page here; a fresh reading
    // holds the page only.
    let shown: &[VpEvidence] = if bundle.vantage_points.len() == total && total > 0 {
        let start = (page - 1).saturating_mul(VPS_PER_PAGE).min(total);
        &bundle.vantage_points[start..(start + VPS_PER_PAGE).min(total)]
    } else {
        &bundle.vantage_points
    };
    let body = pages::change_view(
        &bundle.event,
        shown,
        bundle.window,
        &bundle.bgp_routes,
        &bundle.bgp_events,
        app.config.bgp.any(),
        pages::Paging {
            page,
            per_page: VPS_PER_PAGE,
            total,
            moved,
        },
    );
    html(pages::layout(
        &format!("Change #{id}"),
        View::Changes,
        &info(&app),
        body,
    ))
}

async fn bundle_file(
    State(app): State<Arc<App>>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let id = match change_id(&id) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let kind = match file.as_str() {
        "bundle.json" => "json",
        "bundle.csv" => "csv",
        "bundle.md" => "md",
        _ => {
            return html_status(
                StatusCode::NOT_FOUND,
                pages::message(
                    "No such file",
                    "Bundles are bundle.json, bundle.csv and bundle.md.",
                ),
            )
        }
    };
    let ev = match evidence_of(&app, id, None).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let ctype = match kind {
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        _ => "text/markdown; charset=utf-8",
    };
    // Made on the blocking pool (a bundle of thousands of traces is
    // megabytes), once for a closed change.
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.trim().split(';').next() == Some("gzip"))
        });
    let ev2 = ev.clone();
    let kind2 = kind.to_string();
    let body = match tokio::task::spawn_blocking(move || {
        if gzip {
            ev2.file_gz(&kind2)
        } else {
            ev2.file(&kind2)
        }
    })
    .await
    {
        Ok(b) => b,
        Err(e) => return store_error(&e.to_string()),
    };
    let disposition = format!("attachment; filename=\"tumen-change-{id}.{kind}\"");
    let mut r = ([(header::CONTENT_TYPE, ctype)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// One CSV row per hop of every trace (RFC 4180 quoting; a cell that a
/// spreadsheet would read as a formula is prefixed with `'`).
pub fn bundle_csv(b: &Bundle) -> String {
    fn cell(s: &str) -> String {
        let s = chart::clean(s);
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.into_owned()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from(
        "change,prefix,agent,when,trace_id,start_utc,upstream,upstream_asn,entered,ttl,addr,name,asn,org,rtt_ms\r\n",
    );
    for vp in &b.vantage_points {
        for (when, t) in [("before", &vp.before), ("after", &vp.after)] {
            let Some(t) = t else { continue };
            for h in &t.hops {
                let row = [
                    b.event.id.to_string(),
                    b.event.prefix.clone(),
                    vp.agent.clone(),
                    when.to_string(),
                    t.id.clone(),
                    pages::iso(t.start_ms),
                    t.upstream.clone(),
                    t.upstream_asn.map(|a| a.to_string()).unwrap_or_default(),
                    t.entered.to_string(),
                    h.ttl.to_string(),
                    h.addr.clone().unwrap_or_default(),
                    h.name.clone().unwrap_or_default(),
                    h.asn.map(|a| a.to_string()).unwrap_or_default(),
                    h.org.clone().unwrap_or_default(),
                    h.rtt_ms.map(|r| format!("{r:.3}")).unwrap_or_default(),
                ];
                let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
                out.push_str(&cells.join(","));
                out.push_str("\r\n");
            }
        }
    }
    out
}

async fn agents_page(State(app): State<Arc<App>>) -> Response {
    let now_ms = crate::serve::metrics::now_ms();
    let rows: Vec<pages::AgentRow> = {
        let live = app.live.read().unwrap_or_else(|p| p.into_inner());
        let refusals = app.refusals.lock().unwrap_or_else(|p| p.into_inner());
        let uploads = app.web.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let mut paths: BTreeMap<&str, usize> = BTreeMap::new();
        for (a, _) in live.paths.keys() {
            *paths.entry(a.as_str()).or_default() += 1;
        }
        live.agents
            .values()
            .map(|a| {
                let u = uploads.get(&a.name);
                pages::AgentRow {
                    name: a.name.clone(),
                    live: live.is_live(&a.name, now_ms, silence_ms(&app)),
                    last_seen_ms: a.last_seen_ms,
                    first_seen_ms: a.first_seen_ms,
                    traces: a.traces,
                    pings: a.pings,
                    paths: paths.get(a.name.as_str()).copied().unwrap_or(0),
                    version: u.and_then(|u| u.version.clone()),
                    probes_per_round: u.and_then(|u| u.probes_per_round),
                    spool_lag_ms: u.and_then(|u| u.spool_lag_ms),
                    refused: refusals
                        .get(&a.name)
                        .map(|r| {
                            r.refused
                                .iter()
                                .map(|x| (x.item.clone(), x.why.clone()))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect()
    };
    html(pages::layout(
        "Agents",
        View::Agents,
        &info(&app),
        pages::agents_view(&rows, now_ms),
    ))
}

/// `GET /ui/stream`: the Now view as `now` events whenever it changes
/// (checked once a second for all viewers together), `paths` when the
/// graph would; a comment every 15 s keeps proxies from closing it.
async fn stream(State(app): State<Arc<App>>) -> Response {
    let Ok(permit) = app.web.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "10")],
            "too many live streams open\n",
        )
            .into_response();
    };
    let mut rx = app.web.feed.subscribe();
    let s = async_stream(move |tx| async move {
        let _permit = permit;
        let mut paths_seen = None;
        loop {
            let feed = rx.borrow_and_update().clone();
            if !feed.now.is_empty() {
                let ev = Event::default().event("now").data(feed.now.as_str());
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            if paths_seen != Some(feed.paths_version) {
                if paths_seen.is_some() {
                    let ev = Event::default()
                        .event("paths")
                        .data(feed.paths_version.to_string());
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                paths_seen = Some(feed.paths_version);
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
    let mut r = Sse::new(s)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// A stream of SSE events fed by `f` through a small channel.
fn async_stream<F, Fut>(
    f: F,
) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

/// Keeps the live feed current: once a second, the Now view and the
/// routes' fingerprint; viewers are woken only when either changed.
pub async fn feed_task(app: Arc<App>) {
    let mut last_now = String::new();
    let mut last_fp = None;
    let mut version = 0u64;
    loop {
        let app2 = app.clone();
        let got = tokio::task::spawn_blocking(move || {
            let mut now = now_data(&app2);
            let fp = {
                let live = app2.live.read().unwrap_or_else(|p| p.into_inner());
                let (now, silence) = (crate::serve::metrics::now_ms(), silence_ms(&app2));
                data::routes_fingerprint(&live.paths, &|a| live.is_live(a, now, silence))
            };
            // Compared without the time it was made.
            let made = std::mem::take(&mut now.generated_ms);
            let key = serde_json::to_string(&now).unwrap_or_default();
            now.generated_ms = made;
            (key, now, fp)
        })
        .await;
        if let Ok((key, now, fp)) = got {
            let paths_changed = last_fp != Some(fp);
            if key != last_now || paths_changed {
                if paths_changed {
                    version += 1;
                    last_fp = Some(fp);
                }
                last_now = key;
                app.web.feed.send_replace(Arc::new(Feed {
                    now: serde_json::to_string(&now).unwrap_or_default(),
                    paths_version: version,
                }));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The embedded assets.
const SITE_CSS: &str = include_str!("assets/site.css");
const CHARTS_CSS: &str = include_str!("assets/charts.css");
const APP_JS: &str = include_str!("assets/app.js");
const ICON_SVG: &str = include_str!("assets/icon.svg");

async fn asset(Path(file): Path<String>) -> Response {
    let (ctype, body) = match file.as_str() {
        "site.css" => ("text/css; charset=utf-8", SITE_CSS),
        "charts.css" => ("text/css; charset=utf-8", CHARTS_CSS),
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "icon.svg" => ("image/svg+xml", ICON_SVG),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ICON_SVG,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_bearer_and_basic_and_nothing_else() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(presented(&h).as_deref(), Some("abc"));
        // "viewer:s3cr3t-token-0000"
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dmlld2VyOnMzY3IzdC10b2tlbi0wMDAw"),
        );
        assert_eq!(presented(&h).as_deref(), Some("s3cr3t-token-0000"));
        for bad in ["Basic !!!!", "Basic", "Digest x", "Basic dmlld2Vy"] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(presented(&h), None, "{bad}");
        }
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(base64_decode("Y"), None);
        assert_eq!(base64_decode("Y$==").as_deref(), None);
    }

    #[test]
    fn the_csv_quotes_and_defuses_formulas() {
        let b = Bundle {
            bundle: crate::input::tumen::BUNDLE,
            collector_version: "x",
            generated_ms: 0,
            event: EventRow {
                id: 1,
                agent: "=cmd|' /C calc'!A0".into(),
                prefix: "198.18.177.0/24".into(),
                at_ms: 0,
                from_upstream: None,
                from_asn: None,
                to_upstream: "a,\"b\"".into(),
                to_asn: None,
                trace_id: "t".into(),
                evidence: serde_json::Value::Null,
            },
            window: (0, 1),
            vantage_points: vec![VpEvidence {
                agent: "=cmd|' /C calc'!A0".into(),
                before: None,
                after: Some(TraceEvidence {
                    id: "t".into(),
                    start_ms: 0,
                    dst: "198.18.177.1".into(),
                    upstream: "a,\"b\"".into(),
                    upstream_asn: None,
                    entered: true,
                    confidence: 1.0,
                    hops: vec![HopRow {
                        ttl: 1,
                        addr: Some("192.0.2.1".into()),
                        name: Some("x\ny".into()),
                        asn: None,
                        org: None,
                        rtt_ms: Some(1.0),
                    }],
                }),
            }],
            bgp_routes: vec![],
            bgp_events: vec![],
            traces: vec![],
        };
        let csv = bundle_csv(&b);
        let row = csv.lines().nth(1).expect("row");
        assert!(row.contains(",'=cmd|' /C calc'!A0,"), "{row}");
        assert!(row.contains(",\"a,\"\"b\"\"\","), "{row}");
        assert!(csv.contains(",\"x\ny\","), "a newline is quoted: {csv}");
    }
}
