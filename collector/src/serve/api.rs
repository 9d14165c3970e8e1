//! HTTP routes: `POST /api/v1/results` (ingest, in [`super::ingest`]),
//! `GET /metrics`, the JSON API (`/api/v1/paths`, `/api/v1/shares`,
//! `/api/v1/events`, `/api/v1/agents`; the control plane's
//! `/api/v1/bgp/{prefixes,routes,events,divergences,sources}`), the
//! agents' schedule and
//! refusals, `/healthz` and `/readyz`. Read endpoints are not
//! authenticated (like `/metrics`); bind to loopback or put them behind
//! the proxy that fronts Prometheus. Handlers read the [`crate::state`]
//! read model or the store's reader; none computes what they show.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{authenticate, error, read_body, reject};
use super::writer::Job;
use super::App;
use crate::paths::unit_of;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v1/results", post(super::ingest::results))
        .route("/metrics", get(metrics))
        .route("/api/v1/paths", get(paths_api))
        .route("/api/v1/shares", get(shares_api))
        .route("/api/v1/events", get(events_api))
        .route("/api/v1/agents", get(agents_api))
        .route("/api/v1/bgp/prefixes", get(bgp_prefixes_api))
        .route("/api/v1/bgp/routes", get(bgp_routes_api))
        .route("/api/v1/bgp/events", get(bgp_events_api))
        .route("/api/v1/bgp/divergences", get(bgp_divergences_api))
        .route("/api/v1/bgp/sources", get(bgp_sources_api))
        .route("/api/v1/schedule", get(schedule_api))
        .route("/api/v1/refusals", post(refusals_api))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(crate::web::routes(app.clone()))
        .with_state(app)
}

/// `GET /api/v1/schedule`: the calling agent's schedule, with an ETag;
/// 304 when the agent's `If-None-Match` still matches; 404 when the
/// collector has no `[schedule]` (agents keep their own configuration).
async fn schedule_api(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let agent = match authenticate(&app, &headers) {
        Ok(a) => a,
        Err(r) => return reject(&app, &r),
    };
    let Some(s) = &app.config.schedule else {
        app.metrics
            .schedule_requests
            .with_label_values(&["none"])
            .inc();
        return error(
            StatusCode::NOT_FOUND,
            "no_schedule",
            "this collector hands out no schedule: agents use their own configuration",
        );
    };
    let (body, etag) = s.for_agent(&agent);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let result = if matches { "not_modified" } else { "sent" };
    app.metrics
        .schedule_requests
        .with_label_values(&[result])
        .inc();
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    if let Ok(v) = header::HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// `POST /api/v1/refusals`: an agent says which schedule items it did not
/// apply (outside its allow-list, over its rate cap); kept per agent,
/// logged, exported as `tumen_collector_schedule_refused_items`.
async fn refusals_api(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let agent = match authenticate(&app, &headers) {
        Ok(a) => a,
        Err(r) => return reject(&app, &r),
    };
    let body = match read_body(&app, body, &headers, 64 << 10).await {
        Ok(b) => b,
        Err(r) => return reject(&app, &r),
    };
    let report: super::schedule::Refusals = match serde_json::from_slice(&body.bytes) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_report",
                &format!(
                    "expected {{\"schedule\": ETAG, \"refused\": [{{\"item\", \"why\"}}]}}: {e}"
                ),
            )
        }
    };
    if report.refused.len() > 1000 {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            "at most 1000 refusals per report",
        );
    }
    for r in &report.refused {
        // Peer-controlled strings are logged as Debug (quoted, with \n, \r
        // and ESC escaped), never raw: a newline must not forge a log line.
        tracing::warn!(agent = ?agent, item = ?r.item, why = ?r.why, "agent refused a schedule item");
    }
    app.metrics
        .schedule_refused
        .with_label_values(&[agent.as_str()])
        .set(report.refused.len() as i64);
    let n = report.refused.len();
    app.refusals
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(agent, report);
    Json(json!({ "recorded": n })).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.metrics.sync_http(&app.http, &app.bodies);
    app.metrics.sync_table(&app.table);
    if let Some(d) = &app.dns {
        let s = d.stats();
        for (what, v) in [
            ("queries", s.queries),
            ("cache_hits", s.cache_hits),
            ("answers", s.answers),
            ("nxdomain", s.nxdomain),
            ("failures", s.failures),
            ("rate_limited", s.rate_limited),
            ("dropped", s.dropped),
        ] {
            app.metrics
                .dns
                .with_label_values(&[what])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// A path as the API shows it.
#[derive(Debug, Serialize)]
struct PathView<'a> {
    agent: &'a str,
    prefix: String,
    upstream: Option<&'a str>,
    upstream_asn: Option<u32>,
    since_ms: Option<u64>,
    confidence: f64,
    candidate: Option<&'a str>,
    candidate_count: u32,
    changes: u64,
    last_trace_ms: Option<u64>,
    trace_entered: bool,
    last_ping_ms: Option<u64>,
    ping_ok: bool,
    reachable: Option<bool>,
    live: bool,
    evidence: Option<&'a crate::infer::Evidence>,
    /// PTR names of the evidence hops, when DNS lookups are on.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    names: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct PathQuery {
    agent: Option<String>,
    prefix: Option<String>,
}

/// The error is boxed: a `Response` is large and this is the cold path.
fn parse_prefix(p: &str) -> Result<IpNet, Box<Response>> {
    p.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| p.parse::<std::net::IpAddr>().map(unit_of))
        .map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                &format!("prefix {p:?} is not a prefix or address (e.g. 175.45.177.0/24)"),
            ))
        })
}

/// How long an agent may stay silent and still count (ms).
fn silence_ms(app: &App) -> u64 {
    u64::try_from(app.config.agent_silence.as_millis()).unwrap_or(u64::MAX)
}

async fn paths_api(
    State(app): State<Arc<App>>,
    q: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "query must be agent=NAME&prefix=PREFIX",
        );
    };
    let prefix = match q.prefix.as_deref().map(parse_prefix).transpose() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let live = app.live.read().unwrap_or_else(|p| p.into_inner());
    let (now, silence) = (super::metrics::now_ms(), silence_ms(&app));
    let mut out = Vec::new();
    for ((agent, unit), s) in &live.paths {
        if q.agent.as_deref().is_some_and(|a| a != agent) {
            continue;
        }
        if prefix.is_some_and(|p| !p.contains(unit) && !unit.contains(&p)) {
            continue;
        }
        let mut names = BTreeMap::new();
        if let (Some(d), Some(e)) = (&app.dns, &s.evidence) {
            for h in [&e.last_foreign, &e.first_inside].into_iter().flatten() {
                if let Some(n) = d.cached_ptr(h.addr) {
                    names.insert(h.addr.to_string(), n);
                }
            }
        }
        out.push(PathView {
            agent,
            prefix: unit.to_string(),
            upstream: s.current.as_ref().map(|u| u.name.as_str()),
            upstream_asn: s.current.as_ref().and_then(|u| u.asn),
            since_ms: s.since_ms,
            confidence: s.confidence,
            candidate: s.candidate.as_ref().map(|u| u.name.as_str()),
            candidate_count: s.candidate_count,
            changes: s.changes,
            last_trace_ms: s.last_trace_ms,
            trace_entered: s.trace_entered,
            last_ping_ms: s.last_ping_ms,
            ping_ok: s.ping_ok,
            reachable: s.reachable(),
            live: live.is_live(agent, now, silence),
            evidence: s.evidence.as_ref(),
            names,
        });
    }
    Json(out).into_response()
}

async fn shares_api(State(app): State<Arc<App>>) -> Response {
    let live = app.live.read().unwrap_or_else(|p| p.into_inner());
    let (now, silence) = (super::metrics::now_ms(), silence_ms(&app));
    let t = live.shares(now, silence);
    let reach = live.reachability(now, silence);
    let prefixes: BTreeMap<String, serde_json::Value> = t
        .per_prefix
        .iter()
        .map(|(p, s)| {
            (
                p.to_string(),
                json!({"shares": s, "reachable_ratio": reach.get(p)}),
            )
        })
        .collect();
    Json(json!({"all": t.all, "prefixes": prefixes})).into_response()
}

#[derive(Debug, Deserialize)]
struct EventQuery {
    prefix: Option<String>,
    agent: Option<String>,
    /// Unix seconds.
    since: Option<u64>,
    until: Option<u64>,
    limit: Option<usize>,
}

async fn events_api(
    State(app): State<Arc<App>>,
    q: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                &format!("{e} (parameters: prefix, agent, since and until in Unix seconds, limit)"),
            )
        }
    };
    let prefix = match q.prefix.as_deref().map(parse_prefix).transpose() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let filter = crate::store::EventFilter {
        id: None,
        skip_evidence: false,
        prefix,
        agent: q.agent,
        since_ms: q.since.map(|s| s.saturating_mul(1000)),
        until_ms: q.until.map(|s| s.saturating_mul(1000).saturating_add(999)),
        limit: q.limit.unwrap_or(1000).min(10_000),
    };
    let app2 = app.clone();
    let rows = tokio::task::spawn_blocking(move || app2.reader.events(&filter)).await;
    match rows {
        Ok(Ok(rows)) => Json(rows).into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}

async fn agents_api(State(app): State<Arc<App>>) -> Response {
    let live = app.live.read().unwrap_or_else(|p| p.into_inner());
    let refusals = app.refusals.lock().unwrap_or_else(|p| p.into_inner());
    let (now, silence) = (super::metrics::now_ms(), silence_ms(&app));
    let out: Vec<serde_json::Value> = live
        .agents
        .values()
        .map(|a| {
            json!({
                "name": a.name,
                "first_seen_ms": a.first_seen_ms,
                "last_seen_ms": a.last_seen_ms,
                "traces": a.traces,
                "pings": a.pings,
                "live": live.is_live(&a.name, now, silence),
                "paths": live.paths.keys().filter(|k| k.0 == a.name).count(),
                "refused": refusals.get(&a.name).map_or(&[][..], |r| &r.refused[..]),
            })
        })
        .collect();
    Json(out).into_response()
}

/// How recent a successful commit must be for `/readyz` to trust it
/// without a probe write.
const READY_FRESH_MS: u64 = 30_000;

/// Free space the store's filesystem needs for `/readyz`: 16 MiB, or an
/// eighth of a smaller filesystem. (A probe write alone can succeed on a
/// full disk: SQLite reuses the frames already in its WAL file.)
fn enough_free(free: u64, total: u64) -> bool {
    free >= (16u64 << 20).min(total / 8)
}

/// `/readyz`: 200 when the store can commit: its filesystem has room, and
/// a commit worked in the last 30 s with none failed since, or a probe
/// write works now. `/healthz` only says the process answers.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let not_ready = |detail: &str| error(StatusCode::SERVICE_UNAVAILABLE, "not_ready", detail);
    if app.writer.is_closed() {
        return not_ready("store writer stopped");
    }
    match app.reader.disk_space() {
        Some(Ok((free, total))) if !enough_free(free, total) => {
            return not_ready(&format!(
                "only {free} bytes free on the filesystem of {}: commits would fail",
                app.config.db.display()
            ));
        }
        Some(Ok(_)) | None => {}
        Some(Err(e)) => {
            return not_ready(&format!("free space of {}: {e}", app.config.db.display()))
        }
    }
    if app
        .store_health
        .recently_ok(super::metrics::now_ms(), READY_FRESH_MS)
    {
        return "ready\n".into_response();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let probe = async {
        app.writer
            .send(Job::Probe(tx))
            .await
            .map_err(|_| "store writer stopped".to_string())?;
        rx.await
            .map_err(|_| "store writer stopped".to_string())?
            .map_err(|e| format!("store cannot commit: {e}"))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(())) => "ready\n".into_response(),
        Ok(Err(e)) => not_ready(&e),
        Err(_) => not_ready("store did not commit a probe write within 5 s"),
    }
}

/// `GET /api/v1/bgp/prefixes`: every tracked prefix's visibility, shares,
/// dominant upstream and latest change.
async fn bgp_prefixes_api(State(app): State<Arc<App>>) -> Response {
    let m = app.bgp.read().unwrap_or_else(|p| p.into_inner());
    Json(json!({
        "prefixes": m.prefixes(),
        "all": m.shares_all(),
        "feeding_peers": m.feeding_peers(),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BgpRouteQuery {
    prefix: Option<String>,
    peer: Option<String>,
}

/// `GET /api/v1/bgp/routes?prefix=&peer=`: each feeding peer's route.
async fn bgp_routes_api(
    State(app): State<Arc<App>>,
    q: Result<Query<BgpRouteQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                &format!("{e} (parameters: prefix, peer)"),
            )
        }
    };
    let prefix = match q.prefix.as_deref().map(parse_prefix).transpose() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let m = app.bgp.read().unwrap_or_else(|p| p.into_inner());
    let routes: Vec<_> = m
        .routes()
        .into_iter()
        .filter(|r| prefix.is_none_or(|p| r.prefix == p))
        .filter(|r| q.peer.as_ref().is_none_or(|p| *p == r.peer))
        .collect();
    Json(routes).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BgpEventQuery {
    prefix: Option<String>,
    kind: Option<String>,
    peer: Option<String>,
    /// Unix seconds.
    since: Option<u64>,
    until: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/v1/bgp/events`: stored control-plane events, newest first.
async fn bgp_events_api(
    State(app): State<Arc<App>>,
    q: Result<Query<BgpEventQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                &format!(
                    "{e} (parameters: prefix, kind, peer, since and until in Unix seconds, limit)"
                ),
            )
        }
    };
    let prefix = match q.prefix.as_deref().map(parse_prefix).transpose() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => match crate::bgp::model::EventKind::parse(k) {
            Some(k) => Some(k),
            None => {
                let known: Vec<&str> = crate::bgp::model::EventKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect();
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    &format!("kind {k:?} is unknown (known: {})", known.join(", ")),
                );
            }
        },
    };
    let filter = crate::store::BgpEventFilter {
        prefix,
        kind,
        peer: q.peer,
        since_ms: q.since.map(|s| s.saturating_mul(1000)),
        until_ms: q.until.map(|s| s.saturating_mul(1000).saturating_add(999)),
        limit: q.limit.unwrap_or(1000).min(10_000),
    };
    let app2 = app.clone();
    match tokio::task::spawn_blocking(move || app2.reader.bgp_events(&filter)).await {
        Ok(Ok(rows)) => Json(rows).into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}

/// `GET /api/v1/bgp/divergences`: the /24s whose planes disagree now.
async fn bgp_divergences_api(State(app): State<Arc<App>>) -> Response {
    let m = app.bgp.read().unwrap_or_else(|p| p.into_inner());
    Json(m.divergences()).into_response()
}

/// `GET /api/v1/bgp/sources`: each source's counters and state.
async fn bgp_sources_api(State(app): State<Arc<App>>) -> Response {
    let m = app.bgp.read().unwrap_or_else(|p| p.into_inner());
    Json(m.sources()).into_response()
}
