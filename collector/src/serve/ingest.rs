//! `POST /api/v1/results`: an agent's upload over HTTP. Authenticate,
//! check the headers, read the body under the memory budget, run the
//! ingest pipeline ([`crate::pipeline`]) on the blocking pool, hand the
//! records to the writer, and answer once the commit is durable.
//!
//! Reading an upload (decode, parse, validate) is the pipeline's; its
//! names are re-exported here, where the HTTP service, the fuzz target
//! (`collector/fuzz`) and `collector/tests/fuzz_corpus.rs` have always
//! found them.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

pub use crate::pipeline::read::*;

use super::http::{authenticate, header_str, read_body, reject};
use super::writer::Job;
use super::App;
use crate::pipeline::Limits;

/// Uploads slower than this are logged (debug) with where the time went.
const SLOW_INGEST: std::time::Duration = std::time::Duration::from_millis(100);

pub async fn results(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
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

async fn ingest_request(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Reject> {
    // Authenticate before reading a byte of the body.
    let agent = authenticate(app, headers)?;
    check_content_type(header_str(headers, header::CONTENT_TYPE)?)?;
    let encoding = encoding_of(header_str(headers, header::CONTENT_ENCODING)?)?;
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
        let c = &app2.config;
        let checks = Checks::window(received_ms, c.max_clock_skew, c.retention);
        let limits = Limits {
            max_decoded: c.max_decoded_bytes,
            max_batch: c.max_batch,
        };
        let table = app2.table.current();
        let upload = app2
            .pipeline(&table)
            .upload(
                &agent,
                &bytes,
                encoding,
                limits,
                &checks,
                received_ms,
                &mut |n| hold.grow_to(raw + n),
            )
            .inspect_err(|r| {
                if matches!(
                    r.reason,
                    "future_timestamp" | "stale_timestamp" | "invalid_field"
                ) {
                    app2.metrics
                        .records_refused
                        .with_label_values(&[agent.as_str(), r.reason])
                        .inc();
                }
            });
        (upload, hold)
    })
    .await
    .map_err(|e| Reject::new(503, "store_unavailable", format!("worker failed: {e}")))?;
    let upload = upload?;
    drop(slot);
    app.metrics
        .outside_target
        .inc_by(upload.outside_target() as u64);
    let t_prepared = t0.elapsed();
    let (n_traces, n_pings) = (upload.traces.len(), upload.pings.len());
    let uploader = upload.agent.clone();
    let stats = crate::web::upload_stats(
        header_str(headers, header::USER_AGENT).ok().flatten(),
        received_ms,
        &upload,
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.writer
        .send(Job::Upload(upload, tx))
        .await
        .map_err(|_| Reject::new(503, "store_unavailable", "store writer stopped"))?;
    let outcome = rx
        .await
        .map_err(|_| Reject::new(503, "store_unavailable", "store writer stopped"))?
        .map_err(|e| Reject::new(503, "store_unavailable", format!("store: {e}")))?;
    app.web.note_upload(&uploader, stats);
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
