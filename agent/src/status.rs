//! The agent's own health and metrics, on an optional local listener
//! (`metrics_listen`): `/metrics` in the Prometheus text format and
//! `/healthz`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::spool::Spool;
use crate::upload::UploadStats;

/// Probe counters, copied from the prober after every round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeCounters {
    pub rounds: u64,
    pub sent: u64,
    pub matched: u64,
    /// Probes the allow-list gate refused (never sent).
    pub refused: u64,
    pub send_errors: u64,
}

/// What `/metrics` shows.
#[derive(Debug, Default)]
pub struct Status {
    pub agent: String,
    pub spool: Option<Arc<Mutex<Spool>>>,
    pub upload: Option<Arc<UploadStats>>,
    pub probe: Mutex<ProbeCounters>,
    /// Schedule items refused (outside the allow-list, over the pps cap),
    /// in total since start, and those of the schedule in force.
    pub schedule_refusals_total: std::sync::atomic::AtomicU64,
    pub schedule_refused_now: std::sync::atomic::AtomicU64,
    /// Unix seconds of the schedule in force being fetched (0: none).
    pub schedule_fetched: std::sync::atomic::AtomicU64,
    /// The metrics listener's own connection counters.
    pub http: Arc<tumen_httpd::Stats>,
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

impl Status {
    /// The Prometheus text exposition.
    pub fn render(&self, now_ms: u64) -> String {
        let mut out = String::new();
        let p = *self
            .probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        metric(
            &mut out,
            "tumen_agent_rounds_total",
            "counter",
            "Probe rounds completed.",
            &[("", p.rounds as f64)],
        );
        metric(
            &mut out,
            "tumen_agent_probes_sent_total",
            "counter",
            "Probes sent.",
            &[("", p.sent as f64)],
        );
        metric(
            &mut out,
            "tumen_agent_replies_matched_total",
            "counter",
            "Replies matched to a probe.",
            &[("", p.matched as f64)],
        );
        metric(
            &mut out,
            "tumen_agent_probes_refused_total",
            "counter",
            "Probes the allow-list refused (nothing sent).",
            &[("", p.refused as f64)],
        );
        metric(
            &mut out,
            "tumen_agent_send_errors_total",
            "counter",
            "Probes the kernel did not send.",
            &[("", p.send_errors as f64)],
        );
        metric(
            &mut out,
            "tumen_agent_schedule_refusals_total",
            "counter",
            "Schedule items from the collector refused by local limits.",
            &[(
                "",
                self.schedule_refusals_total.load(Ordering::Relaxed) as f64,
            )],
        );
        metric(
            &mut out,
            "tumen_agent_schedule_refused_items",
            "gauge",
            "Items of the schedule in force that were refused.",
            &[("", self.schedule_refused_now.load(Ordering::Relaxed) as f64)],
        );
        metric(
            &mut out,
            "tumen_agent_schedule_fetched_timestamp_seconds",
            "gauge",
            "When the schedule in force was fetched (0: local configuration).",
            &[("", self.schedule_fetched.load(Ordering::Relaxed) as f64)],
        );
        if let Some(spool) = &self.spool {
            let s = spool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let st = s.stats;
            let oldest = s
                .oldest_pending_ms()
                .map_or(0.0, |t| now_ms.saturating_sub(t) as f64 / 1000.0);
            metric(
                &mut out,
                "tumen_agent_spool_records",
                "gauge",
                "Results in the spool not yet committed by the collector.",
                &[("", s.pending_records() as f64)],
            );
            metric(
                &mut out,
                "tumen_agent_spool_bytes",
                "gauge",
                "Bytes of results in the spool.",
                &[("", s.pending_bytes() as f64)],
            );
            metric(
                &mut out,
                "tumen_agent_spool_oldest_unsent_seconds",
                "gauge",
                "Age of the oldest result not yet committed (0: none).",
                &[("", oldest)],
            );
            metric(
                &mut out,
                "tumen_agent_spool_appended_total",
                "counter",
                "Results written to the spool.",
                &[("", st.appended as f64)],
            );
            metric(
                &mut out,
                "tumen_agent_spool_committed_total",
                "counter",
                "Results the collector committed.",
                &[("", st.acked as f64)],
            );
            metric(
                &mut out,
                "tumen_agent_spool_dropped_total",
                "counter",
                "Results dropped: spool full (oldest first) or not writable.",
                &[
                    ("reason=\"full\"", st.dropped_full as f64),
                    ("reason=\"write_error\"", st.dropped_write_error as f64),
                ],
            );
            metric(
                &mut out,
                "tumen_agent_spool_damaged_total",
                "counter",
                "Damaged spool data found at recovery: torn and corrupt records skipped, a cursor that did not match the segments on disk (repaired), segments lost from outside.",
                &[
                    ("kind=\"torn\"", st.torn as f64),
                    ("kind=\"corrupt\"", st.corrupt as f64),
                    ("kind=\"stale_cursor\"", st.stale_cursor as f64),
                    ("kind=\"missing_segment\"", st.missing_segments as f64),
                ],
            );
            metric(
                &mut out,
                "tumen_agent_quarantined_total",
                "counter",
                "Results the collector refused for good, kept in quarantine/.",
                &[("", st.quarantined as f64)],
            );
        }
        if let Some(u) = &self.upload {
            let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
            metric(
                &mut out,
                "tumen_agent_upload_requests_total",
                "counter",
                "Upload requests by outcome.",
                &[
                    ("outcome=\"committed\"", g(&u.committed)),
                    ("outcome=\"retried\"", g(&u.retried)),
                    ("outcome=\"auth_failed\"", g(&u.auth_failed)),
                    ("outcome=\"too_large\"", g(&u.too_large)),
                    ("outcome=\"refused\"", g(&u.refused)),
                ],
            );
            metric(
                &mut out,
                "tumen_agent_upload_records_total",
                "counter",
                "Results the collector took, by its answer.",
                &[
                    ("result=\"accepted\"", g(&u.accepted)),
                    ("result=\"duplicate\"", g(&u.duplicates)),
                ],
            );
            metric(
                &mut out,
                "tumen_agent_last_upload_timestamp_seconds",
                "gauge",
                "When the collector last committed a batch (0: never).",
                &[("", g(&u.last_commit_ms) / 1000.0)],
            );
        }
        let h = &self.http;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        metric(
            &mut out,
            "tumen_agent_http_connections",
            "gauge",
            "Connections open on the metrics listener.",
            &[("", n(&h.open))],
        );
        metric(
            &mut out,
            "tumen_agent_http_connections_shed_total",
            "counter",
            "Metrics-listener connections the agent closed itself (slow head, idle keep-alive, evicted or refused at the cap).",
            &[
                ("reason=\"header_timeout\"", n(&h.header_timeouts)),
                ("reason=\"idle_timeout\"", n(&h.idle_closed)),
                ("reason=\"evicted\"", n(&h.evicted)),
                ("reason=\"refused_full\"", n(&h.refused)),
            ],
        );
        let _ = writeln!(out, "# HELP tumen_agent_build_info Build of this agent.");
        let _ = writeln!(out, "# TYPE tumen_agent_build_info gauge");
        let _ = writeln!(
            out,
            "tumen_agent_build_info{{version=\"{}\",commit=\"{}\",build_date=\"{}\",target=\"{}\"}} 1",
            tumen_core::build::VERSION,
            tumen_core::build::COMMIT,
            tumen_core::build::DATE,
            tumen_core::build::TARGET,
        );
        out
    }
}

/// Serves `/metrics` and `/healthz` until `shutdown` completes, then lets
/// requests in flight finish for at most a second.
pub async fn serve(
    listener: tokio::net::TcpListener,
    status: Arc<Status>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Status>>| async move {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        s.render(now),
                    )
                },
            ),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(status.clone());
    // A scrape endpoint for a local Prometheus: the same timeouts as the
    // collector's, and few connections.
    let limits = tumen_httpd::Limits {
        max_connections: tumen_httpd::default_max_connections(METRICS_MAX_CONNECTIONS),
        max_header_bytes: 16 << 10,
        ..tumen_httpd::Limits::default()
    };
    let stats = status.http.clone();
    tumen_httpd::serve(
        listener,
        tumen_httpd::Plain,
        app,
        limits,
        stats,
        shutdown,
        std::time::Duration::from_secs(1),
    )
    .await;
}

/// Connections the metrics listener keeps open at most.
pub const METRICS_MAX_CONNECTIONS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics listener holds no more than its cap of connections,
    /// and closes a half-sent request head after the header timeout:
    /// /healthz keeps answering.
    #[tokio::test(start_paused = true)]
    async fn the_metrics_listener_sheds_slow_connections_and_keeps_answering() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let status = Arc::new(Status::default());
        tokio::spawn(serve(listener, status.clone(), std::future::pending()));
        let mut slow = Vec::new();
        for _ in 0..METRICS_MAX_CONNECTIONS + 20 {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
            slow.push(s);
        }
        let healthz = || async {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .expect("write");
            let mut text = String::new();
            let _ = s.read_to_string(&mut text).await;
            text
        };
        assert!(healthz().await.starts_with("HTTP/1.1 200"));
        let h = &status.http;
        assert!(h.evicted.load(Ordering::Relaxed) >= 20);
        assert!(h.open.load(Ordering::Relaxed) <= METRICS_MAX_CONNECTIONS as u64 + 1);
        // The clock jumps while the runtime waits: those not evicted time
        // out (every connection is closed in the end).
        let mut buf = [0u8; 16];
        for s in &mut slow {
            assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0);
        }
        assert!(h.header_timeouts.load(Ordering::Relaxed) >= 1);
        assert_eq!(
            h.header_timeouts.load(Ordering::Relaxed) + h.evicted.load(Ordering::Relaxed),
            slow.len() as u64
        );
        let text = status.render(0);
        assert!(
            text.contains("tumen_agent_http_connections_shed_total{reason=\"evicted\"}"),
            "{text}"
        );
        assert!(healthz().await.starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn metrics_show_spool_upload_and_probe_state() {
        let dir = std::env::temp_dir().join(format!("tumen-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut spool = Spool::open(crate::spool::SpoolConfig::new(&dir)).expect("spool");
        spool.append(b"{\"a\":1}").expect("append");
        spool.append(b"{\"a\":2}").expect("append");
        let oldest = spool.oldest_pending_ms().expect("pending");
        let status = Status {
            agent: "vp".into(),
            spool: Some(Arc::new(Mutex::new(spool))),
            upload: Some(Arc::new(UploadStats::default())),
            ..Status::default()
        };
        status.probe.lock().expect("lock").sent = 42;
        status
            .upload
            .as_ref()
            .expect("u")
            .retried
            .store(3, Ordering::Relaxed);
        let text = status.render(oldest + 2500);
        for want in [
            "tumen_agent_probes_sent_total 42\n",
            "tumen_agent_spool_records 2\n",
            "tumen_agent_spool_oldest_unsent_seconds 2.5\n",
            "tumen_agent_upload_requests_total{outcome=\"retried\"} 3\n",
            "tumen_agent_spool_dropped_total{reason=\"full\"} 0\n",
            "# TYPE tumen_agent_spool_appended_total counter\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // The build, as --version prints it.
        let build = format!(
            "tumen_agent_build_info{{version=\"{}\",commit=\"{}\",build_date=\"{}\",target=\"{}\"}} 1\n",
            tumen_core::build::VERSION,
            tumen_core::build::COMMIT,
            tumen_core::build::DATE,
            tumen_core::build::TARGET
        );
        assert!(text.contains(&build), "missing {build:?} in\n{text}");
        assert!(tumen_core::build::LONG_VERSION.contains(tumen_core::build::COMMIT));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
