//! What every route shares: JSON errors, refusals (counted by reason),
//! bearer authentication, and request bodies read under the memory
//! budget and the body timeout.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::App;
use crate::pipeline::Reject;

pub fn error(status: StatusCode, reason: &str, detail: &str) -> Response {
    (status, Json(json!({"error": reason, "detail": detail}))).into_response()
}

/// The answer to a refused request, counted in
/// `tumen_collector_ingest_rejected_total{reason}`.
pub fn reject(app: &App, r: &Reject) -> Response {
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

pub fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, Reject> {
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
pub async fn read_body(
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

/// The agent a request's bearer token belongs to.
pub fn authenticate(app: &App, headers: &HeaderMap) -> Result<String, Reject> {
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
