//! `serve` over real HTTP on 127.0.0.1 with a real SQLite store: tokens,
//! limits and malformed bodies (each a precise 4xx, counted, nothing
//! written), idempotent re-sends, gzip and zstd, hysteresis and change
//! events through the API, shares, silent agents' series disappearing, a
//! `/metrics` snapshot, and a SIGKILL of the real binary that restores
//! the state with no invented change.
//!
//! The addresses in these traces (219.158.x China Unicom, 188.43.x
//! TransTeleCom, 175.45.x inside the DPRK) are text only: the collector
//! sends no packets.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod dns_server;

use serde_json::{json, Value};
use tumen_collector::serve::{self, auth, RawConfig};
use tumen_collector::store::{StoreReader, Table};

const CU: &[&str] = &["192.0.2.1", "203.0.113.9", "219.158.3.1", "219.158.39.54"];
const TTK: &[&str] = &["192.0.2.1", "203.0.113.9", "188.43.225.153", "188.43.4.2"];

fn trace(agent: &str, id: &str, dst: &str, start_ms: u64, hops: &[&str], entered: bool) -> String {
    let mut hs: Vec<Value> = hops
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({"ttl": i + 1, "flow": 0, "sent": 1, "replies": [
                {"addr": a, "rtt_ms": 10.0, "kind": "time_exceeded", "icmp_type": 11, "icmp_code": 0}
            ]})
        })
        .collect();
    if entered {
        hs.push(
            json!({"ttl": hops.len() + 1, "flow": 0, "sent": 1, "replies": [
                {"addr": dst, "rtt_ms": 90.0, "kind": "echo_reply", "icmp_type": 0, "icmp_code": 0}
            ]}),
        );
    }
    json!({
        "kind": "trace", "schema": 1, "id": id, "agent": agent, "start_ms": start_ms,
        "duration_ms": 100.0, "src": "192.0.2.2", "dst": dst,
        "prefix": unit(dst),
        "protocol": "icmp", "mode": "full", "first_ttl": 1, "max_ttl": 30, "flows": 1,
        "stop": if entered { "completed" } else { "gap_limit" }, "reached": entered,
        "probes_sent": hs.len(), "hops": hs
    })
    .to_string()
}

/// The /24 holding an IPv4 address, as agents write `prefix`.
fn unit(dst: &str) -> String {
    format!("{}.0/24", dst.rsplitn(2, '.').last().unwrap_or(dst))
}

fn ping(agent: &str, id: &str, dst: &str, start_ms: u64, received: u32) -> String {
    json!({
        "kind": "ping", "schema": 1, "id": id, "agent": agent, "start_ms": start_ms,
        "dst": dst, "prefix": unit(dst), "sent": 3, "received": received,
        "loss_ratio": 1.0 - f64::from(received) / 3.0
    })
    .to_string()
}

fn id(n: u64) -> String {
    format!("{n:032x}")
}

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), serve::StartError>>,
    db: PathBuf,
}

struct Setup {
    dir: tempfile::TempDir,
    tokens: Vec<(String, String)>,
}

fn setup(agents: &[&str]) -> Setup {
    // reqwest is built with rustls and no default crypto provider (as in
    // the agent): the tests' clients use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    let mut tokens = Vec::new();
    for a in agents {
        let t = auth::new_token().expect("token");
        text.push_str(&auth::file_line(a, &t));
        text.push('\n');
        tokens.push((a.to_string(), t));
    }
    std::fs::write(dir.path().join("tokens"), text).expect("tokens");
    Setup { dir, tokens }
}

impl Setup {
    fn token(&self, agent: &str) -> &str {
        &self
            .tokens
            .iter()
            .find(|t| t.0 == agent)
            .expect("agent token")
            .1
    }

    fn raw(&self, extra: RawConfig) -> RawConfig {
        RawConfig {
            listen: Some("127.0.0.1:0".into()),
            db: Some(self.dir.path().join("c.db")),
            token_file: Some(self.dir.path().join("tokens")),
            // These tests replay fixed histories dated from 1970 on: a
            // century of retention keeps them inside the collector's
            // window (the date checks have tests of their own).
            retention: Some("36500d".into()),
            ..Default::default()
        }
        .merge(extra)
    }

    async fn start(&self, extra: RawConfig) -> Server {
        let config = self.raw(extra).validate().expect("config");
        let db = config.db.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve::run(
            config,
            listener,
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        let s = Server {
            addr,
            stop: Some(tx),
            task,
            db,
        };
        s.wait_ready().await;
        s
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn wait_ready(&self) {
        let c = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = c.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("collector not ready at {}", self.addr);
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("stops within 10 s")
            .expect("task");
        r.expect("clean stop");
    }

    async fn post(
        &self,
        token: Option<&str>,
        body: Vec<u8>,
        encoding: Option<&str>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(self.url("/api/v1/results"))
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let r = req.send().await.expect("post");
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    async fn get(&self, path: &str) -> Value {
        let r = reqwest::get(self.url(path)).await.expect("get");
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.expect("json")
    }

    async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn db_count(db: &Path, table: Table) -> u64 {
    let reader = tumen_collector::store::sqlite::open_reader(db).expect("reader");
    reader.count(table).expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorised_and_malformed_requests_get_precise_4xx_are_counted_and_write_nothing() {
    let s = setup(&["vp-fra", "vp-sgp"]);
    let srv = s
        .start(RawConfig {
            max_body_bytes: Some(64 << 10),
            max_decoded_bytes: Some(256 << 10),
            max_batch: Some(5),
            ..Default::default()
        })
        .await;
    let good = trace("vp-fra", &id(1), "175.45.177.10", 1_000, CU, true);
    let fra = s.token("vp-fra");

    /// (what, token, body, content-encoding, expected status, expected reason)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        Option<&'a str>,
        u16,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "no token",
            None,
            good.clone().into_bytes(),
            None,
            401,
            "missing_token",
        ),
        (
            "unknown token",
            Some("0123"),
            good.clone().into_bytes(),
            None,
            401,
            "bad_token",
        ),
        (
            "other agent's token",
            Some(s.token("vp-sgp")),
            good.clone().into_bytes(),
            None,
            403,
            "agent_mismatch",
        ),
        (
            "brotli",
            Some(fra),
            good.clone().into_bytes(),
            Some("br"),
            415,
            "unsupported_encoding",
        ),
        (
            "corrupt gzip",
            Some(fra),
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            Some("gzip"),
            400,
            "bad_compression",
        ),
        (
            "oversize body",
            Some(fra),
            vec![b' '; 70 << 10],
            None,
            413,
            "body_too_large",
        ),
        (
            "zstd bomb",
            Some(fra),
            zstd::encode_all(&vec![b' '; 4 << 20][..], 3).expect("z"),
            Some("zstd"),
            413,
            "decoded_too_large",
        ),
        (
            "six records",
            Some(fra),
            (1..=6)
                .map(|n| trace("vp-fra", &id(100 + n), "175.45.177.10", n, CU, true))
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
            None,
            413,
            "batch_too_large",
        ),
        (
            "bad field on line 2",
            Some(fra),
            format!("{good}\n{}", good.replace("\"ttl\":2", "\"ttl\":-2")).into_bytes(),
            None,
            400,
            "malformed_record",
        ),
        (
            "newer schema",
            Some(fra),
            good.replace("\"schema\":1", "\"schema\":2").into_bytes(),
            None,
            400,
            "unsupported_schema",
        ),
        ("empty", Some(fra), b"\n".to_vec(), None, 400, "empty_batch"),
        (
            "bad id",
            Some(fra),
            good.replace(&id(1), "short").into_bytes(),
            None,
            400,
            "bad_record_id",
        ),
    ];
    for (what, token, body, enc, status, reason) in cases {
        let (got, v) = srv.post(token, body, enc).await;
        assert_eq!(got, status, "{what}: {v}");
        assert_eq!(v["error"], reason, "{what}: {v}");
        assert!(
            v["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {v}"
        );
        if what == "bad field on line 2" {
            assert!(
                v["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("line 2:hops[1].ttl"),
                "{v}"
            );
        }
    }
    // Nothing was written by any refused request.
    assert_eq!(db_count(&srv.db, Table::Traces), 0);
    assert_eq!(db_count(&srv.db, Table::Agents), 0);
    assert_eq!(srv.get("/api/v1/agents").await, json!([]));
    let m = srv.metrics().await;
    for reason in [
        "missing_token",
        "bad_token",
        "agent_mismatch",
        "malformed_record",
        "batch_too_large",
    ] {
        assert_eq!(
            metric(
                &m,
                &format!("tumen_collector_ingest_rejected_total{{reason=\"{reason}\"}}")
            ),
            Some(1.0),
            "{reason}\n{m}"
        );
    }
    assert_eq!(
        metric(&m, "tumen_collector_ingest_requests_total{code=\"401\"}"),
        Some(2.0)
    );
    // A good request still works afterwards.
    let (st, v) = srv.post(Some(fra), good.into_bytes(), None).await;
    assert_eq!((st, v["accepted"].as_u64()), (200, Some(1)), "{v}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_results_are_ignored_and_gzip_and_zstd_bodies_are_accepted() {
    let s = setup(&["vp-fra"]);
    let srv = s.start(RawConfig::default()).await;
    let t = s.token("vp-fra");
    let batch: String = (0..50)
        .map(|n| trace("vp-fra", &id(n), "175.45.176.15", 1_000 + n, CU, true))
        .chain((50..60).map(|n| ping("vp-fra", &id(n), "175.45.176.15", 1_000 + n, 3)))
        .collect::<Vec<_>>()
        .join("\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(batch.as_bytes()).expect("gz");
    let gz = gz.finish().expect("gz");
    let (st, v) = srv.post(Some(t), gz, Some("gzip")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(60), Some(0))
    );
    // The same results again (a retry after a lost answer), as zstd.
    let zs = zstd::encode_all(batch.as_bytes(), 3).expect("zstd");
    let (st, v) = srv.post(Some(t), zs, Some("zstd")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(60))
    );
    assert_eq!(db_count(&srv.db, Table::Traces), 50);
    assert_eq!(db_count(&srv.db, Table::Pings), 10);
    // The raw record is stored exactly as sent.
    let reader = tumen_collector::store::sqlite::open_reader(&srv.db).expect("reader");
    let first = batch.lines().next().expect("a line");
    assert_eq!(
        reader.raw_trace("vp-fra", &id(0)).expect("raw").as_deref(),
        Some(first)
    );
    let agents = srv.get("/api/v1/agents").await;
    assert_eq!(agents[0]["traces"], 50, "{agents}");
    assert_eq!(agents[0]["pings"], 10, "{agents}");
    let m = srv.metrics().await;
    assert_eq!(
        metric(
            &m,
            "tumen_collector_ingest_records_total{kind=\"trace\",outcome=\"accepted\"}"
        ),
        Some(50.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tumen_collector_ingest_records_total{kind=\"trace\",outcome=\"duplicate\"}"
        ),
        Some(50.0)
    );
    assert_eq!(
        metric(
            &m,
            "tumen_collector_ingest_records_total{kind=\"ping\",outcome=\"duplicate\"}"
        ),
        Some(10.0)
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_changes_after_k_agreeing_traces_with_one_event_in_the_api_and_metrics() {
    let s = setup(&["vp-fra", "vp-sgp"]);
    let srv = s
        .start(RawConfig {
            hysteresis: Some(3),
            ..Default::default()
        })
        .await;
    let fra = s.token("vp-fra");
    let send = |agent: &str, n: u64, hops: &[&str]| {
        trace(
            agent,
            &id(n),
            "175.45.177.10",
            1_000_000 + n * 60_000,
            hops,
            true,
        )
    };
    // CU, then TTK twice (an odd pair), CU again: no change.
    for (n, hops) in [(1, CU), (2, TTK), (3, TTK), (4, CU)] {
        let (st, v) = srv
            .post(Some(fra), send("vp-fra", n, hops).into_bytes(), None)
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["changes"], 0);
    }
    // Three TTK in a row: one change, at the third.
    let mut changes = 0;
    for n in 5..=7 {
        let (_, v) = srv
            .post(Some(fra), send("vp-fra", n, TTK).into_bytes(), None)
            .await;
        changes += v["changes"].as_u64().unwrap_or(0);
    }
    assert_eq!(changes, 1);
    let sgp = s.token("vp-sgp");
    let (st, _) = srv
        .post(Some(sgp), send("vp-sgp", 50, CU).into_bytes(), None)
        .await;
    assert_eq!(st, 200);

    let paths = srv.get("/api/v1/paths?agent=vp-fra").await;
    assert_eq!(paths.as_array().map(Vec::len), Some(1), "{paths}");
    assert_eq!(paths[0]["prefix"], "175.45.177.0/24");
    assert_eq!(paths[0]["upstream"], "transtelecom");
    assert_eq!(paths[0]["upstream_asn"], 20485);
    assert_eq!(paths[0]["evidence"]["last_foreign"]["addr"], "188.43.4.2");
    assert_eq!(paths[0]["since_ms"], 1_000_000 + 7 * 60_000);

    let events = srv.get("/api/v1/events?prefix=175.45.177.0/24").await;
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");
    assert_eq!(events[0]["from_upstream"], "china-unicom");
    assert_eq!(events[0]["to_upstream"], "transtelecom");
    assert_eq!(events[0]["trace_id"], id(7));
    assert_eq!(events[0]["at_ms"], 1_000_000 + 7 * 60_000);
    // Time and prefix filters.
    let since = (1_000_000 + 7 * 60_000) / 1000 + 1;
    assert_eq!(
        srv.get(&format!("/api/v1/events?since={since}")).await,
        json!([])
    );
    assert_eq!(
        srv.get("/api/v1/events?prefix=175.45.176.7").await,
        json!([])
    );
    let r = reqwest::get(srv.url("/api/v1/events?since=yesterday"))
        .await
        .expect("get");
    assert_eq!(r.status(), 400);

    let shares = srv.get("/api/v1/shares").await;
    assert_eq!(shares["all"]["transtelecom"], 0.5, "{shares}");
    assert_eq!(shares["all"]["china-unicom"], 0.5, "{shares}");
    assert_eq!(
        shares["prefixes"]["175.45.177.0/24"]["reachable_ratio"],
        1.0
    );

    let m = srv.metrics().await;
    assert_eq!(
        metric(&m, "tumen_path_upstream_info{agent=\"vp-fra\",prefix=\"175.45.177.0/24\",upstream=\"transtelecom\",upstream_asn=\"20485\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tumen_upstream_changes_total{agent=\"vp-fra\",prefix=\"175.45.177.0/24\"}"
        ),
        Some(1.0)
    );
    // The latest change, with where it came from (for alerts' labels);
    // its time is that of the trace that completed the streak.
    let at = metric(
        &m,
        "tumen_upstream_last_change_timestamp_seconds{agent=\"vp-fra\",from=\"china-unicom\",\
         prefix=\"175.45.177.0/24\",to=\"transtelecom\"}",
    )
    .unwrap_or_else(|| panic!("no last-change series:\n{m}"));
    assert!((1_000.0..=1_000.0 + 60.0 * 20.0).contains(&at), "{at}");
    assert_eq!(
        metric(
            &m,
            "tumen_upstream_share_ratio{prefix=\"all\",upstream=\"transtelecom\"}"
        ),
        Some(0.5)
    );
    assert_eq!(
        metric(
            &m,
            "tumen_prefix_reachable_ratio{prefix=\"175.45.177.0/24\"}"
        ),
        Some(1.0)
    );
    assert!(!m.contains(
        "china-unicom\",upstream_asn=\"4837\"} 1\ntumen_path_upstream_info{agent=\"vp-fra\""
    ));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_loses_its_series_but_keeps_its_state() {
    let s = setup(&["vp-fra"]);
    let srv = s
        .start(RawConfig {
            agent_silence: Some("1s".into()),
            ..Default::default()
        })
        .await;
    let body = trace("vp-fra", &id(1), "175.45.176.8", 5_000, CU, false);
    assert_eq!(
        srv.post(Some(s.token("vp-fra")), body.into_bytes(), None)
            .await
            .0,
        200
    );
    let m = srv.metrics().await;
    assert!(
        m.contains("tumen_agent_last_seen_timestamp_seconds{agent=\"vp-fra\"}"),
        "{m}"
    );
    assert!(
        m.contains("tumen_path_upstream_info{agent=\"vp-fra\""),
        "{m}"
    );
    // Not entered, no ping: unreachable from the only agent.
    assert_eq!(
        metric(
            &m,
            "tumen_prefix_reachable_ratio{prefix=\"175.45.176.0/24\"}"
        ),
        Some(0.0)
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let m = srv.metrics().await;
    assert!(
        !m.contains("agent=\"vp-fra\""),
        "silent agent still exported:\n{m}"
    );
    assert!(!m.contains("tumen_upstream_share_ratio{"), "{m}");
    assert_eq!(
        metric(&m, "tumen_collector_agents{state=\"silent\"}"),
        Some(1.0)
    );
    let paths = srv.get("/api/v1/paths").await;
    assert_eq!(paths[0]["live"], false);
    assert_eq!(paths[0]["upstream"], "china-unicom");
    srv.stop().await;
}

/// The exposition of the contract metrics for a fixed history, with the
/// time-dependent values (timestamps, latency) masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_snapshot() {
    let s = setup(&["vp-fra", "vp-sgp"]);
    let srv = s.start(RawConfig::default()).await;
    let fra = s.token("vp-fra");
    let sgp = s.token("vp-sgp");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    for (tok, agent, dst, hops, entered) in [
        (fra, "vp-fra", "175.45.176.15", CU, true),
        (fra, "vp-fra", "175.45.177.10", TTK, true),
        (fra, "vp-fra", "175.45.178.1", CU, false),
        (sgp, "vp-sgp", "175.45.176.15", CU, true),
        (sgp, "vp-sgp", "175.45.177.10", TTK, true),
        (sgp, "vp-sgp", "175.45.178.1", TTK, false),
    ] {
        let i = next();
        let body = trace(agent, &id(i), dst, 1000 * i, hops, entered);
        assert_eq!(srv.post(Some(tok), body.into_bytes(), None).await.0, 200);
    }
    let body = ping("vp-sgp", &id(99), "175.45.178.1", 99_000, 2);
    assert_eq!(srv.post(Some(sgp), body.into_bytes(), None).await.0, 200);
    let (st, _) = srv.post(Some("nope"), b"x".to_vec(), None).await;
    assert_eq!(st, 401);

    let m = srv.metrics().await;
    let masked: Vec<String> = m
        .lines()
        .filter(|l| {
            !l.starts_with("tumen_collector_ingest_duration_seconds")
                && !l.contains("ingest_duration_seconds")
                && !l.starts_with("tumen_collector_dns")
                && !l.contains("tumen_collector_dns")
        })
        .map(|l| {
            if l.starts_with("tumen_collector_build_info{") {
                // Commit, date and target change with every build.
                return mask_labels(l, &["commit", "build_date", "target"]);
            }
            if l.starts_with("tumen_agent_last_seen_timestamp_seconds{")
                || l.starts_with("tumen_collector_store_last_write_timestamp_seconds ")
                || l.starts_with("tumen_collector_prefix_table_loaded_timestamp_seconds ")
            {
                let (k, v) = l.rsplit_once(' ').unwrap_or((l, ""));
                let ok = v.parse::<f64>().is_ok_and(|v| v > 1.6e9);
                format!("{k} {}", if ok { "<now>" } else { v })
            } else {
                l.to_string()
            }
        })
        .collect();
    let got = masked.join("\n") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/metrics.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &got).expect("write snapshot");
    }
    let want = std::fs::read_to_string(&path)
        .expect("tests/snapshots/metrics.txt (create with UPDATE_SNAPSHOTS=1)");
    assert_eq!(
        got, want,
        "metrics changed; review and rerun with UPDATE_SNAPSHOTS=1"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_unknown_routes() {
    let s = setup(&["vp-fra"]);
    let srv = s.start(RawConfig::default()).await;
    let r = reqwest::get(srv.url("/healthz")).await.expect("healthz");
    assert_eq!(r.status(), 200);
    let r = reqwest::get(srv.url("/readyz")).await.expect("readyz");
    assert_eq!(r.status(), 200);
    let r = reqwest::get(srv.url("/nope")).await.expect("404");
    assert_eq!(r.status(), 404);
    let r = reqwest::get(srv.url("/api/v1/results")).await.expect("405");
    assert_eq!(r.status(), 405);
    let r = reqwest::get(srv.url("/api/v1/paths?prefix=banana"))
        .await
        .expect("400");
    assert_eq!(r.status(), 400);
    srv.stop().await;
}

// ---------------------------------------------------------------------
// The real binary: SIGKILL and restart.

struct Proc {
    child: std::process::Child,
    addr: SocketAddr,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn spawn_bin(s: &Setup, port: u16) -> Proc {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tumen-collector"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--hysteresis",
            "3",
            // Fixed histories dated from 1970 (see Setup::raw).
            "--retention",
            "36500d",
        ])
        .arg("--db")
        .arg(s.dir.path().join("c.db"))
        .arg("--token-file")
        .arg(s.dir.path().join("tokens"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn collector");
    Proc {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_the_state_is_restored_and_no_change_is_invented() {
    let s = setup(&["vp-fra"]);
    let t = s.token("vp-fra").to_string();
    let port = free_port();
    let p = spawn_bin(&s, port);
    let srv = Server {
        addr: p.addr,
        stop: None,
        task: tokio::spawn(async { Ok(()) }),
        db: s.dir.path().join("c.db"),
    };
    srv.wait_ready().await;
    // CU established, a TTK streak completed (one change), then two CU
    // traces: a candidate at 2 of 3, in the store.
    let seq = [CU, TTK, TTK, TTK, CU, CU];
    let mut all = Vec::new();
    for (n, hops) in seq.iter().enumerate() {
        let body = trace(
            "vp-fra",
            &id(n as u64),
            "175.45.177.10",
            10_000 * (n as u64 + 1),
            hops,
            true,
        );
        let (st, v) = srv.post(Some(&t), body.clone().into_bytes(), None).await;
        assert_eq!(st, 200, "{v}");
        all.push(body);
    }
    let before_paths = srv.get("/api/v1/paths").await;
    let before_events = srv.get("/api/v1/events").await;
    assert_eq!(before_events.as_array().map(Vec::len), Some(1));
    assert_eq!(before_paths[0]["candidate"], "china-unicom");
    assert_eq!(before_paths[0]["candidate_count"], 2);
    let mut p = p;
    // SIGKILL: no chance to flush anything.
    p.child.kill().expect("kill -9");
    p.child.wait().expect("wait");
    drop(p);

    let p2 = spawn_bin(&s, port);
    srv.wait_ready().await;
    assert_eq!(srv.get("/api/v1/paths").await, before_paths);
    assert_eq!(srv.get("/api/v1/events").await, before_events);
    // The agent retries everything (it never got some answers): all
    // duplicates, nothing moves.
    let (st, v) = srv.post(Some(&t), all.join("\n").into_bytes(), None).await;
    assert_eq!(
        (st, v["duplicates"].as_u64(), v["changes"].as_u64()),
        (200, Some(6), Some(0)),
        "{v}"
    );
    assert_eq!(srv.get("/api/v1/paths").await, before_paths);
    let m = srv.metrics().await;
    assert_eq!(
        metric(
            &m,
            "tumen_upstream_changes_total{agent=\"vp-fra\",prefix=\"175.45.177.0/24\"}"
        ),
        Some(1.0),
        "{m}"
    );
    // The third CU trace completes the streak begun before the kill.
    let body = trace("vp-fra", &id(100), "175.45.177.10", 100_000, CU, true);
    let (_, v) = srv.post(Some(&t), body.into_bytes(), None).await;
    assert_eq!(v["changes"], 1, "{v}");
    assert_eq!(
        srv.get("/api/v1/events").await.as_array().map(Vec::len),
        Some(2)
    );
    drop(p2);
}

#[test]
fn serve_refuses_bad_config_with_every_problem_and_exit_64() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tumen-collector"))
        .args([
            "serve",
            "--listen",
            "nowhere",
            "--hysteresis",
            "0",
            "--target",
            "x/99",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "listen \"nowhere\"",
        "hysteresis 0",
        "target \"x/99\"",
        "no token_file",
    ] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let s = setup(&["vp"]);
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("hold");
    let port = held.local_addr().expect("addr").port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tumen-collector"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--db")
        .arg(s.dir.path().join("c.db"))
        .arg("--token-file")
        .arg(s.dir.path().join("tokens"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(71));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another collector"), "{err}");
}

#[test]
fn token_makes_a_working_token_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tokens");
    let run = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tumen-collector"))
            .args(["token", name, "--token-file"])
            .arg(&file)
            .output()
            .expect("run")
    };
    let out = run("vp-fra");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(token.len(), 64);
    let text = std::fs::read_to_string(&file).expect("file");
    assert!(
        !text.contains(&token),
        "the token itself must not be stored"
    );
    let tokens = auth::Tokens::load(&file).expect("load");
    assert_eq!(tokens.agent_for(&token), Some("vp-fra"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = run("vp-fra");
    assert_eq!(again.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has"));
    assert!(run("bad/name").status.code() == Some(64));
}

/// With `[dns]` set, hops the tables do not know are looked up in the
/// background (Team Cymru origin and PTR) at the one configured server, a
/// loopback server this test starts: later traces through the same hop are
/// attributed, and `/api/v1/paths` names the border hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_enrichment_attributes_unknown_hops_and_names_them() {
    let dns = dns_server::TestServer::start().await;
    dns.txt(
        "198.51.100.7",
        "64500 | 198.51.100.0/24 | ZZ | lab | 2026-01-01",
        3600,
    )
    .ptr("198.51.100.7", "border1.lab-transit.example.", 3600);
    let s = setup(&["vp-fra"]);
    let orgs = s.dir.path().join("orgs");
    std::fs::write(&orgs, "64500 lab-transit\n").expect("orgs");
    let srv = s
        .start(RawConfig {
            orgs: Some(orgs),
            dns: Some(serve::config::RawDns {
                server: Some(dns.addr.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let t = s.token("vp-fra");
    let hops = &["192.0.2.1", "198.51.100.7"];
    let (st, v) = srv
        .post(
            Some(t),
            trace("vp-fra", &id(1), "175.45.177.10", 1_000, hops, true).into_bytes(),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // Unknown at first: nothing to attribute the border to yet.
    let paths = srv.get("/api/v1/paths").await;
    assert_eq!(paths[0]["upstream"], Value::Null, "{paths}");
    // The background lookups reach the loopback server and are answered.
    let mut answered = false;
    for _ in 0..100 {
        let m = srv.metrics().await;
        if metric(&m, "tumen_collector_dns_lookups{what=\"answers\"}").unwrap_or(0.0) >= 2.0 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "{}", srv.metrics().await);
    assert!(dns.queries() >= 2);
    let (st, v) = srv
        .post(
            Some(t),
            trace("vp-fra", &id(2), "175.45.177.10", 2_000, hops, true).into_bytes(),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let paths = srv.get("/api/v1/paths").await;
    let p = &paths[0];
    assert_eq!(
        (p["upstream"].as_str(), p["upstream_asn"].as_u64()),
        (Some("lab-transit"), Some(64500)),
        "{paths}"
    );
    assert!(
        p.to_string().contains("border1.lab-transit.example"),
        "the border hop is named: {paths}"
    );
    srv.stop().await;
}

// ---------------------------------------------------------------------
// Control: schedules for agents, token rotation, HTTPS.

fn schedule_config(text: &str) -> RawConfig {
    toml::from_str(text).expect("config toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_per_agent_with_etags_and_refusals_are_recorded() {
    let s = setup(&["vp-fra", "vp-sgp"]);
    let server = s
        .start(schedule_config(
            "[schedule]\ntargets = [\"175.45.176.0/24\"]\ninterval = \"60s\"\n\
             [schedule.agents.vp-sgp]\ntargets = [\"175.45.178.0/24\"]\npps = 20\n",
        ))
        .await;
    let c = reqwest::Client::new();
    let get = |token: Option<&str>, etag: Option<&str>| {
        let mut r = c.get(server.url("/api/v1/schedule"));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        if let Some(e) = etag {
            r = r.header("if-none-match", e);
        }
        r.send()
    };
    assert_eq!(get(None, None).await.expect("get").status(), 401);
    assert_eq!(get(Some("nope"), None).await.expect("get").status(), 401);
    let r = get(Some(s.token("vp-fra")), None).await.expect("get");
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().expect("etag").to_string();
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body,
        json!({"targets": ["175.45.176.0/24"], "interval_s": 60})
    );
    let r = get(Some(s.token("vp-fra")), Some(&etag))
        .await
        .expect("get");
    assert_eq!(r.status(), 304, "unchanged schedule: not modified");
    let r = get(Some(s.token("vp-sgp")), Some(&etag))
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "another agent, another schedule");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body,
        json!({"targets": ["175.45.178.0/24"], "interval_s": 60, "pps": 20})
    );
    // A refusal report, then a malformed one.
    let post = |body: &str| {
        c.post(server.url("/api/v1/refusals"))
            .header("authorization", format!("Bearer {}", s.token("vp-fra")))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let r = post(&format!(
        r#"{{"schedule": {etag:?}, "refused": [{{"item": "target 8.8.8.0/24", "why": "outside the allow-list"}}]}}"#
    ))
    .await
    .expect("post");
    assert_eq!(r.status(), 200);
    let r = post(r#"{"refused": "all of it"}"#).await.expect("post");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"], "malformed_report");
    let m = server.metrics().await;
    assert_eq!(
        metric(
            &m,
            "tumen_collector_schedule_refused_items{agent=\"vp-fra\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tumen_collector_schedule_requests_total{result=\"not_modified\"}"
        ),
        Some(1.0)
    );
    server.stop().await;
    // Without [schedule], agents are told to keep their own.
    let server = s.start(RawConfig::default()).await;
    let r = reqwest::Client::new()
        .get(server.url("/api/v1/schedule"))
        .header("authorization", format!("Bearer {}", s.token("vp-fra")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"], "no_schedule");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_works_without_restart_and_the_old_one_until_removed() {
    let s = setup(&["vp-fra"]);
    let server = s.start(RawConfig::default()).await;
    let old = s.token("vp-fra").to_string();
    let new = auth::new_token().expect("token");
    let file = s.dir.path().join("tokens");
    let body = |n: u64| trace("vp-fra", &id(n), "175.45.176.15", 1_000 + n, CU, false).into_bytes();
    // Add the new token next to the old one.
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            auth::file_line("vp-fra", &old),
            auth::file_line("vp-fra", &new)
        ),
    )
    .expect("write");
    let until = |want: u16, token: String, n: u64| {
        let server = &server;
        async move {
            for i in 0..100 {
                let (st, _) = server.post(Some(&token), body(n * 1000 + i), None).await;
                if st == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("token never got {want}");
        }
    };
    until(200, new.clone(), 1).await;
    let (st, _) = server.post(Some(&old), body(5000), None).await;
    assert_eq!(st, 200, "the old token stays valid during the rotation");
    // Remove the old line: the old token stops working, the new one goes on.
    std::fs::write(&file, format!("{}\n", auth::file_line("vp-fra", &new))).expect("write");
    until(401, old.clone(), 2).await;
    let (st, _) = server.post(Some(&new), body(6000), None).await;
    assert_eq!(st, 200);
    // A broken file is not loaded: the tokens in force stay.
    std::fs::write(&file, "vp-fra plaintext\n").expect("write");
    let m = {
        let mut m = String::new();
        for _ in 0..100 {
            m = server.metrics().await;
            if metric(&m, "tumen_collector_token_reloads_total{result=\"error\"}") == Some(1.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        m
    };
    assert_eq!(
        metric(&m, "tumen_collector_token_reloads_total{result=\"error\"}"),
        Some(1.0),
        "{m}"
    );
    let (st, _) = server.post(Some(&new), body(7000), None).await;
    assert_eq!(st, 200, "the last good tokens are kept");
    server.stop().await;
}

/// A test CA and a certificate for 127.0.0.1 it signed, made with the
/// openssl CLI: (CA certificate, server certificate, server key).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (apt install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-days",
        "2",
        "-subj",
        "/CN=tumen test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend([
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    run(&a);
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

fn tls_client(ca: Option<&Path>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        use rustls_pki_types::pem::PemObject;
        let pem = std::fs::read(ca).expect("ca");
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.expect("pem")).expect("add");
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_with_the_given_certificate_and_nothing_in_clear() {
    let s = setup(&["vp-fra"]);
    let (ca, cert, key) = test_pki(s.dir.path());
    let config = s
        .raw(RawConfig {
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..Default::default()
        })
        .validate()
        .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve::run(
        config,
        listener,
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    let trusted = tls_client(Some(&ca));
    let mut last = String::new();
    for _ in 0..100 {
        match trusted.get(format!("https://{addr}/readyz")).send().await {
            Ok(r) if r.status() == 200 => {
                last.clear();
                break;
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(last.is_empty(), "HTTPS /readyz: {last}");
    let r = trusted
        .post(format!("https://{addr}/api/v1/results"))
        .header("authorization", format!("Bearer {}", s.token("vp-fra")))
        .header("content-type", "application/x-ndjson")
        .body(trace("vp-fra", &id(1), "175.45.176.15", 1_000, CU, false))
        .send()
        .await
        .expect("post over TLS");
    assert_eq!(r.status(), 200);
    // A client that does not trust the certificate gets no answer...
    let untrusted = tls_client(None);
    let e = untrusted
        .get(format!("https://{addr}/readyz"))
        .send()
        .await
        .expect_err("unknown issuer");
    assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");
    // ... and neither does plain HTTP on the TLS port.
    assert!(reqwest::get(format!("http://{addr}/readyz")).await.is_err());
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

#[test]
fn tls_settings_are_checked_and_clear_text_off_loopback_needs_an_opt_in() {
    let s = setup(&["vp"]);
    let bad = |extra: RawConfig| match s.raw(extra).validate() {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    let e = bad(RawConfig {
        listen: Some("0.0.0.0:9640".into()),
        ..Default::default()
    });
    assert!(
        e.contains("in clear") && e.contains("--insecure-http"),
        "{e}"
    );
    assert!(s
        .raw(RawConfig {
            listen: Some("0.0.0.0:9640".into()),
            insecure_http: Some(true),
            ..Default::default()
        })
        .validate()
        .is_ok());
    let e = bad(RawConfig {
        tls_cert: Some("c.pem".into()),
        ..Default::default()
    });
    assert!(e.contains("tls_cert is set without tls_key"), "{e}");
    // Files that are not PEM: the binary says which and exits nonzero.
    let junk = s.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tumen-collector"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(s.dir.path().join("c.db"))
        .arg("--token-file")
        .arg(s.dir.path().join("tokens"))
        .arg("--tls-cert")
        .arg(&junk)
        .arg("--tls-key")
        .arg(&junk)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls_cert") && err.contains("junk.pem"),
        "{err}"
    );
}

/// `--asn-table` files are reloaded without a restart: on SIGHUP, and
/// when a file changes; a broken file keeps the table in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asn_tables_reload_on_sighup_and_on_change_and_a_broken_one_is_kept_out() {
    let s = setup(&["vp-fra"]);
    let t = s.token("vp-fra").to_string();
    let table = s.dir.path().join("extra.dat");
    std::fs::write(&table, "; pyasn\n198.51.100.0/24\t64500\n").expect("table");
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tumen-collector"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--hysteresis", "1", "--retention", "36500d"])
        .arg("--asn-table")
        .arg(&table)
        .arg("--db")
        .arg(s.dir.path().join("c.db"))
        .arg("--token-file")
        .arg(s.dir.path().join("tokens"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn collector");
    let p = Proc {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let srv = Server {
        addr: p.addr,
        stop: None,
        task: tokio::spawn(async { Ok(()) }),
        db: s.dir.path().join("c.db"),
    };
    srv.wait_ready().await;
    let hops: &[&str] = &["192.0.2.1", "198.51.100.17"];
    let upstream_after = |n: u64| {
        let srv = &srv;
        let t = t.clone();
        async move {
            let body = trace("vp-fra", &id(n), "175.45.177.10", 1_000 * n, hops, true);
            let (st, v) = srv.post(Some(&t), body.into_bytes(), None).await;
            assert_eq!(st, 200, "{v}");
            srv.get("/api/v1/paths").await[0]["upstream"].clone()
        }
    };
    let reloads = |m: &str, r: &str| {
        metric(
            m,
            &format!("tumen_collector_prefix_table_reloads_total{{result=\"{r}\"}}"),
        )
    };
    assert_eq!(upstream_after(1).await, "AS64500");

    // SIGHUP, without waiting for the file check.
    std::fs::write(&table, "; pyasn\n198.51.100.0/24\t64501\n").expect("table");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &p.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let mut ok = 0.0;
    for _ in 0..100 {
        ok = reloads(&srv.metrics().await, "ok").unwrap_or(0.0);
        if ok >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok >= 1.0, "no reload after SIGHUP");
    assert_eq!(upstream_after(2).await, "AS64501");

    // A broken file: refused, counted, the table in force stays.
    std::fs::write(&table, "; pyasn\nnot a prefix\tx\n").expect("table");
    let mut err = 0.0;
    for _ in 0..200 {
        err = reloads(&srv.metrics().await, "error").unwrap_or(0.0);
        if err >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(err >= 1.0, "the broken file was not noticed within 10 s");
    assert_eq!(upstream_after(3).await, "AS64501");

    // Fixed again: picked up from the change alone (no signal).
    std::fs::write(&table, "; pyasn\n198.51.100.0/24\t64502\n").expect("table");
    for _ in 0..200 {
        if reloads(&srv.metrics().await, "ok").unwrap_or(0.0) >= ok + 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(upstream_after(4).await, "AS64502");
    let m = srv.metrics().await;
    let loaded = metric(&m, "tumen_collector_prefix_table_loaded_timestamp_seconds");
    assert!(loaded.is_some_and(|v| v > 1.6e9), "{loaded:?}");
    drop(p);
}

/// `--import FILE`: a pasted traceroute feeds the live state as its own
/// vantage point, through the same pipeline as uploads (a second source).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_traceroute_file_feeds_the_state_as_a_vantage_point() {
    let s = setup(&["vp-fra"]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/input");
    let srv = s
        .start(RawConfig {
            imports: vec![fixtures.join("dprk-transtelecom.txt")],
            import_as: Some("forum-paste".into()),
            ..Default::default()
        })
        .await;
    let paths = srv.get("/api/v1/paths?agent=forum-paste").await;
    let paths = paths.as_array().expect("array");
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert_eq!(paths[0]["upstream"], "transtelecom");
    let m = srv.metrics().await;
    assert!(
        m.lines().any(
            |l| l.starts_with("tumen_path_upstream_info{agent=\"forum-paste\"")
                && l.contains("upstream=\"transtelecom\"")
        ),
        "{m}"
    );
    srv.stop().await;

    // A file that is not a traceroute stops the start with its name.
    let bad = s.dir.path().join("notes.txt");
    std::fs::write(&bad, "dear diary\n").expect("write");
    let config = s
        .raw(RawConfig {
            imports: vec![bad],
            ..Default::default()
        })
        .validate()
        .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let r = serve::run(config, listener, async {}, Duration::from_secs(1)).await;
    let e = r.expect_err("refused").to_string();
    assert!(e.contains("--import") && e.contains("notes.txt"), "{e}");
}

/// `name{a="x",b="y"} 1` with the values of `labels` replaced by `<label>`.
fn mask_labels(line: &str, labels: &[&str]) -> String {
    let mut out = line.to_string();
    for l in labels {
        let key = format!("{l}=\"");
        if let Some(at) = out.find(&key) {
            let from = at + key.len();
            if let Some(len) = out[from..].find('"') {
                out.replace_range(from..from + len, &format!("<{l}>"));
            }
        }
    }
    out
}
