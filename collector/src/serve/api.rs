//! HTTP routes: `POST /api/v1/results` (ingest), `GET /metrics`, the JSON
//! API (`/api/v1/paths`, `/api/v1/shares`, `/api/v1/events`,
//! `/api/v1/agents`), `/healthz` and `/readyz`. Read endpoints are not
//! authenticated (like `/metrics`); bind to loopback or put them behind
//! the proxy that fronts Prometheus.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ingest::{self, Incoming, Reject};
use super::writer::{Job, PingItem, TraceItem, Upload};
use super::{App, Lookup};
use crate::paths::{self, unit_of};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v1/results", post(results))
        .route("/metrics", get(metrics))
        .route("/api/v1/paths", get(paths_api))
        .route("/api/v1/shares", get(shares_api))
        .route("/api/v1/events", get(events_api))
        .route("/api/v1/agents", get(agents_api))
        .route("/api/v1/schedule", get(schedule_api))
        .route("/api/v1/refusals", post(refusals_api))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(app)
}

fn error(status: StatusCode, reason: &str, detail: &str) -> Response {
    (status, Json(json!({"error": reason, "detail": detail}))).into_response()
}

fn reject(app: &App, r: &Reject) -> Response {
    app.metrics.rejected.with_label_values(&[r.reason]).inc();
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = error(status, r.reason, &r.detail);
    if r.status == 401 {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"tumen\""),
        );
    }
    if r.status == 503 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    if r.status == 408 {
        // What is left of the body would be read as the next request.
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

async fn results(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let resp = match ingest_request(&app, &headers, body).await {
        Ok(r) => r,
        Err(r) => reject(&app, &r),
    };
    app.metrics.latency.observe(started.elapsed().as_secs_f64());
    app.metrics
        .requests
        .with_label_values(&[resp.status().as_str()])
        .inc();
    resp
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, Reject> {
    headers
        .get(&name)
        .map(|v| {
            v.to_str().map_err(|_| {
                Reject::new(
                    400,
                    "malformed_record",
                    format!("header {name} is not visible ASCII"),
                )
            })
        })
        .transpose()
}

/// Reads a request body of at most `limit` bytes within the configured
/// body timeout, inside the budget shared by all bodies in flight.
async fn read_body(
    app: &App,
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<tumen_httpd::BodyBytes, Reject> {
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Reject::new(400, "malformed_record", "Content-Length is not a number")
                })?,
        ),
    };
    tumen_httpd::read_body(
        body,
        declared,
        limit,
        app.config.body_timeout,
        Some(&app.bodies),
    )
    .await
    .map_err(|e| match e {
        tumen_httpd::BodyError::TooLarge { limit } => Reject::new(
            413,
            "body_too_large",
            format!("body over {limit} bytes: send smaller batches"),
        ),
        e @ tumen_httpd::BodyError::Busy { .. } => Reject::new(503, "overloaded", e.to_string()),
        e @ tumen_httpd::BodyError::Timeout { .. } => {
            Reject::new(408, "body_timeout", e.to_string())
        }
        e @ tumen_httpd::BodyError::Failed(_) => {
            Reject::new(400, "malformed_record", e.to_string())
        }
    })
}

/// Uploads slower than this are logged (debug) with where the time went.
const SLOW_INGEST: std::time::Duration = std::time::Duration::from_millis(100);

/// The agent a request's bearer token belongs to.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<String, Reject> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Reject::new(
                401,
                "missing_token",
                "no `Authorization: Bearer TOKEN` header",
            )
        })?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| Reject::new(401, "missing_token", "Authorization is not `Bearer TOKEN`"))?;
    app.tokens
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .agent_for(token)
        .map(str::to_string)
        .ok_or_else(|| Reject::new(401, "bad_token", "token not known to this collector"))
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

async fn ingest_request(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Reject> {
    // Authenticate before reading a byte of the body.
    let agent = authenticate(app, headers)?;
    ingest::check_content_type(header_str(headers, header::CONTENT_TYPE)?)?;
    let encoding = ingest::encoding_of(header_str(headers, header::CONTENT_ENCODING)?)?;
    let t0 = std::time::Instant::now();
    let body = read_body(app, body, headers, app.config.max_body_bytes).await?;
    let t_read = t0.elapsed();
    let received_ms = super::metrics::now_ms();
    let app2 = app.clone();
    let slot = app
        .prepare_slots
        .acquire()
        .await
        .map_err(|_| Reject::new(503, "store_unavailable", "shutting down"))?;
    // The body's share of the memory budget grows with what it becomes
    // (decoded text, records) and is held until the answer: uploads
    // waiting for the writer count too.
    let tumen_httpd::BodyBytes { bytes, mut hold } = body;
    let (upload, hold) = tokio::task::spawn_blocking(move || {
        let raw = bytes.len();
        let upload = prepare(&app2, &agent, &bytes, encoding, received_ms, &mut |n| {
            hold.grow_to(raw + n)
        });
        (upload, hold)
    })
    .await
    .map_err(|e| Reject::new(503, "store_unavailable", format!("worker failed: {e}")))?;
    let upload = upload?;
    drop(slot);
    let t_prepared = t0.elapsed();
    let (n_traces, n_pings) = (upload.traces.len(), upload.pings.len());
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.writer
        .send(Job::Upload(upload, tx))
        .await
        .map_err(|_| Reject::new(503, "store_unavailable", "store writer stopped"))?;
    let outcome = rx
        .await
        .map_err(|_| Reject::new(503, "store_unavailable", "store writer stopped"))?
        .map_err(|e| Reject::new(503, "store_unavailable", format!("store: {e}")))?;
    let total = t0.elapsed();
    if total >= SLOW_INGEST {
        tracing::debug!(
            read_ms = t_read.as_millis(),
            prepare_ms = (t_prepared - t_read).as_millis(),
            store_ms = (total - t_prepared).as_millis(),
            records = n_traces + n_pings,
            "slow upload"
        );
    }
    let m = &app.metrics;
    let dup_traces = outcome.duplicate_traces;
    let dup_pings = outcome.duplicates - dup_traces;
    m.records
        .with_label_values(&["trace", "accepted"])
        .inc_by((n_traces - dup_traces) as u64);
    m.records
        .with_label_values(&["trace", "duplicate"])
        .inc_by(dup_traces as u64);
    m.records
        .with_label_values(&["ping", "accepted"])
        .inc_by((n_pings - dup_pings) as u64);
    m.records
        .with_label_values(&["ping", "duplicate"])
        .inc_by(dup_pings as u64);
    drop(hold);
    Ok((StatusCode::OK, Json(outcome)).into_response())
}

/// Decodes, validates and infers a whole batch (blocking pool).
fn prepare(
    app: &App,
    agent: &str,
    body: &[u8],
    encoding: ingest::Encoding,
    received_ms: u64,
    reserve: ingest::Reserve<'_>,
) -> Result<Upload, Reject> {
    let checks = ingest::Checks {
        now_ms: received_ms,
        max_skew_ms: u64::try_from(app.config.max_clock_skew.as_millis()).unwrap_or(u64::MAX),
        oldest_ms: received_ms
            .saturating_sub(u64::try_from(app.config.retention.as_millis()).unwrap_or(u64::MAX)),
    };
    let batch = ingest::read_upload(
        body,
        encoding,
        agent,
        app.config.max_decoded_bytes,
        app.config.max_batch,
        &checks,
        reserve,
    )
    .inspect_err(|r| {
        if matches!(
            r.reason,
            "future_timestamp" | "stale_timestamp" | "invalid_field"
        ) {
            app.metrics
                .records_refused
                .with_label_values(&[agent, r.reason])
                .inc();
        }
    })?;
    let lookup = Lookup {
        table: &app.table,
        dns: app.dns.as_ref(),
    };
    let mut upload = Upload {
        agent: agent.to_string(),
        received_ms,
        traces: Vec::new(),
        pings: Vec::new(),
    };
    for item in batch {
        match item {
            Incoming::Trace(record, line) => {
                let trace = crate::input::tumen::convert(&record, String::new());
                let inference = crate::infer::infer(&trace, &app.target, &lookup, &app.orgs);
                if let Some(d) = &app.dns {
                    for hop in &trace.hops {
                        for &a in &hop.addrs {
                            if app.table.lookup_asn(a).is_none() {
                                d.request(a);
                            }
                        }
                    }
                    for h in [
                        &inference.evidence.last_foreign,
                        &inference.evidence.first_inside,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        d.request(h.addr);
                    }
                }
                let in_target = app.target.prefixes.iter().any(|p| p.contains(&record.dst));
                if !in_target {
                    app.metrics.outside_target.inc();
                }
                upload.traces.push(TraceItem {
                    unit: unit_of(record.dst),
                    in_target,
                    record,
                    line: crate::store::pack_record(&line),
                    inference,
                });
            }
            Incoming::Ping(record, line) => {
                let in_target = app.target.prefixes.iter().any(|p| p.contains(&record.dst));
                if !in_target {
                    app.metrics.outside_target.inc();
                }
                upload.pings.push(PingItem {
                    unit: unit_of(record.dst),
                    in_target,
                    record,
                    line: crate::store::pack_record(&line),
                });
            }
        }
    }
    Ok(upload)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.metrics.sync_http(&app.http, &app.bodies);
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

fn is_live(app: &App, live: &super::writer::Live, agent: &str, now: u64) -> bool {
    let silence = u64::try_from(app.config.agent_silence.as_millis()).unwrap_or(u64::MAX);
    live.agents
        .get(agent)
        .is_some_and(|a| now.saturating_sub(a.last_seen_ms) <= silence)
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
    let now = super::metrics::now_ms();
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
            live: is_live(&app, &live, agent, now),
            evidence: s.evidence.as_ref(),
            names,
        });
    }
    Json(out).into_response()
}

async fn shares_api(State(app): State<Arc<App>>) -> Response {
    let live = app.live.read().unwrap_or_else(|p| p.into_inner());
    let now = super::metrics::now_ms();
    let t = paths::shares(&live.paths, |a| is_live(&app, &live, a, now));
    let reach = paths::reachability(&live.paths, |a| is_live(&app, &live, a, now));
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
        prefix,
        agent: q.agent,
        since_ms: q.since.map(|s| s.saturating_mul(1000)),
        until_ms: q.until.map(|s| s.saturating_mul(1000).saturating_add(999)),
        limit: q.limit.unwrap_or(1000).min(10_000),
    };
    let app2 = app.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let conn = app2.reader.lock().unwrap_or_else(|p| p.into_inner());
        crate::store::events(&conn, &filter)
    })
    .await;
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
    let now = super::metrics::now_ms();
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
                "live": is_live(&app, &live, &a.name, now),
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
    match crate::store::disk_space(&app.config.db) {
        Ok((free, total)) if !enough_free(free, total) => {
            return not_ready(&format!(
                "only {free} bytes free on the filesystem of {}: commits would fail",
                app.config.db.display()
            ));
        }
        Ok(_) => {}
        Err(e) => return not_ready(&format!("free space of {}: {e}", app.config.db.display())),
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
