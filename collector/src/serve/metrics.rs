//! Every metric the collector exports, registered in one place.
//!
//! The contract metrics (DESIGN.md) are derived at scrape time from the
//! committed [`Live`] state by [`StateCollector`], so an agent silent for
//! longer than `agent_silence` simply has no series any more (nothing to
//! forget to delete), and a restart exports the same values as before.
//! Labels are bounded: agents come from the token file, prefixes from the
//! target set (/24 or /48 units), upstreams from the organisation table or
//! `AS<n>`; no hop address is ever a label.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::pipeline::read::REASONS;
use crate::state::Live;

/// The collector's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub rejected: IntCounterVec,
    pub records: IntCounterVec,
    pub outside_target: IntCounter,
    pub latency: Histogram,
    pub last_write: Gauge,
    pub write_errors: IntCounter,
    pub dns: IntGaugeVec,
    /// Schedule fetches by result; items agents refused, per agent.
    pub schedule_requests: IntCounterVec,
    pub schedule_refused: IntGaugeVec,
    pub token_reloads: IntCounterVec,
    /// Prefix-table reloads by result; the table's size and age.
    pub table_reloads: IntCounterVec,
    table_prefixes: IntGauge,
    table_loaded: Gauge,
    /// Records refused for their content (dates, semantic fields), per
    /// agent and reason.
    pub records_refused: IntCounterVec,
    http_open: IntGauge,
    http_closed: IntCounterVec,
    http_accept_errors: IntCounter,
    body_budget: IntGaugeVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only reachable with a malformed metric definition in this file,
    // which the metrics tests would catch: a programming error.
    r.unwrap_or_else(|e| panic!("metric definition: {e}"))
}

impl Metrics {
    /// `store_schema`: the schema version of the store in use (a label
    /// of `tumen_collector_build_info`).
    pub fn new(live: Arc<RwLock<Live>>, silence: Duration, store_schema: u32) -> Self {
        let registry = Registry::new();
        let requests = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_ingest_requests_total",
                "Upload requests by HTTP status.",
            ),
            &["code"],
        ));
        let rejected = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_ingest_rejected_total",
                "Upload requests refused, by reason.",
            ),
            &["reason"],
        ));
        let records = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_ingest_records_total",
                "Records received, by kind and outcome (accepted or duplicate).",
            ),
            &["kind", "outcome"],
        ));
        let outside_target = must(IntCounter::new(
            "tumen_collector_records_outside_target_total",
            "Accepted records whose destination is outside the target set (stored, not inferred into paths).",
        ));
        let latency = must(Histogram::with_opts(
            HistogramOpts::new(
                "tumen_collector_ingest_duration_seconds",
                "Time from request to answer for uploads, durable commit included.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        ));
        let last_write = must(Gauge::new(
            "tumen_collector_store_last_write_timestamp_seconds",
            "Unix time of the last successful store commit.",
        ));
        let write_errors = must(IntCounter::new(
            "tumen_collector_store_write_errors_total",
            "Store commits that failed (the uploads got 503 and will be retried).",
        ));
        let dns = must(IntGaugeVec::new(
            Opts::new(
                "tumen_collector_dns_lookups",
                "Team Cymru / PTR lookup counters since start, by what happened.",
            ),
            &["what"],
        ));
        let schedule_requests = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_schedule_requests_total",
                "Agents' schedule fetches, by answer (sent, not_modified, none).",
            ),
            &["result"],
        ));
        for r in ["sent", "not_modified", "none"] {
            schedule_requests.with_label_values(&[r]);
        }
        let schedule_refused = must(IntGaugeVec::new(
            Opts::new(
                "tumen_collector_schedule_refused_items",
                "Items of its schedule an agent reported refusing (outside its allow-list, over its cap).",
            ),
            &["agent"],
        ));
        let token_reloads = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_token_reloads_total",
                "Reloads of the token file after it changed, by result (ok, error: old tokens kept).",
            ),
            &["result"],
        ));
        for r in ["ok", "error"] {
            token_reloads.with_label_values(&[r]);
        }
        let table_reloads = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_prefix_table_reloads_total",
                "Reloads of the prefix table (SIGHUP or an --asn-table file changed), by result (ok, error: the table in force stays).",
            ),
            &["result"],
        ));
        for r in ["ok", "error"] {
            table_reloads.with_label_values(&[r]);
        }
        let table_prefixes = must(IntGauge::new(
            "tumen_collector_prefix_table_prefixes",
            "Prefixes in the prefix table in force.",
        ));
        let table_loaded = must(Gauge::new(
            "tumen_collector_prefix_table_loaded_timestamp_seconds",
            "Unix time the prefix table in force was loaded.",
        ));
        let records_refused = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_records_refused_total",
                "Records refused for what they say (dated in the future or before the retention, impossible values), by agent and reason.",
            ),
            &["agent", "reason"],
        ));
        let http_open = must(IntGauge::new(
            "tumen_collector_http_connections",
            "HTTP connections open now.",
        ));
        let http_closed = must(IntCounterVec::new(
            Opts::new(
                "tumen_collector_http_connections_shed_total",
                "Connections the collector closed itself: header_timeout (request head or TLS handshake too slow), idle_timeout (keep-alive), evicted (at max_connections, to make room), refused_full (at max_connections with every connection busy: 503).",
            ),
            &["reason"],
        ));
        for r in ["header_timeout", "idle_timeout", "evicted", "refused_full"] {
            http_closed.with_label_values(&[r]);
        }
        let http_accept_errors = must(IntCounter::new(
            "tumen_collector_http_accept_errors_total",
            "accept(2) failures (out of file descriptors and the like); accepting backs off.",
        ));
        let body_budget = must(IntGaugeVec::new(
            Opts::new(
                "tumen_collector_http_body_budget_bytes",
                "Memory for request bodies being received: in_use now, and the limit (max_inflight_body_bytes).",
            ),
            &["state"],
        ));
        let build = must(GaugeVec::new(
            Opts::new("tumen_collector_build_info", "Build of this collector."),
            &[
                "version",
                "commit",
                "build_date",
                "target",
                "wire_schema",
                "store_schema",
            ],
        ));
        build
            .with_label_values(&[
                tumen_core::build::VERSION,
                tumen_core::build::COMMIT,
                tumen_core::build::DATE,
                tumen_core::build::TARGET,
                &tumen_wire::SCHEMA_VERSION.to_string(),
                &store_schema.to_string(),
            ])
            .set(1.0);
        for r in REASONS {
            rejected.with_label_values(&[r]);
        }
        for kind in ["trace", "ping"] {
            for outcome in ["accepted", "duplicate"] {
                records.with_label_values(&[kind, outcome]);
            }
        }
        let state = StateCollector::new(live, silence);
        for c in [
            Box::new(requests.clone()) as Box<dyn Collector>,
            Box::new(rejected.clone()),
            Box::new(records.clone()),
            Box::new(outside_target.clone()),
            Box::new(latency.clone()),
            Box::new(last_write.clone()),
            Box::new(write_errors.clone()),
            Box::new(dns.clone()),
            Box::new(schedule_requests.clone()),
            Box::new(schedule_refused.clone()),
            Box::new(token_reloads.clone()),
            Box::new(table_reloads.clone()),
            Box::new(table_prefixes.clone()),
            Box::new(table_loaded.clone()),
            Box::new(records_refused.clone()),
            Box::new(http_open.clone()),
            Box::new(http_closed.clone()),
            Box::new(http_accept_errors.clone()),
            Box::new(body_budget.clone()),
            Box::new(build),
            Box::new(state),
        ] {
            must(registry.register(c));
        }
        Self {
            registry,
            requests,
            rejected,
            records,
            outside_target,
            latency,
            last_write,
            write_errors,
            dns,
            schedule_requests,
            schedule_refused,
            token_reloads,
            table_reloads,
            table_prefixes,
            table_loaded,
            records_refused,
            http_open,
            http_closed,
            http_accept_errors,
            body_budget,
        }
    }

    /// Adds a collector computed elsewhere (the control plane's).
    pub fn register(&self, c: Box<dyn Collector>) {
        must(self.registry.register(c));
    }

    /// The prefix table's size and load time; called before each scrape.
    pub fn sync_table(&self, t: &crate::table::LiveTable) {
        self.table_prefixes
            .set(i64::try_from(t.current().len()).unwrap_or(i64::MAX));
        self.table_loaded.set(t.loaded_ms() as f64 / 1000.0);
    }

    /// Copies the HTTP server's counters (kept as atomics by the server
    /// loop) into the registry; called before each scrape.
    pub fn sync_http(&self, s: &tumen_httpd::Stats, budget: &tumen_httpd::BodyBudget) {
        use std::sync::atomic::Ordering::Relaxed;
        let to = |c: &IntCounter, v: u64| c.inc_by(v.saturating_sub(c.get()));
        self.http_open
            .set(i64::try_from(s.open.load(Relaxed)).unwrap_or(i64::MAX));
        for (reason, v) in [
            ("header_timeout", s.header_timeouts.load(Relaxed)),
            ("idle_timeout", s.idle_closed.load(Relaxed)),
            ("evicted", s.evicted.load(Relaxed)),
            ("refused_full", s.refused.load(Relaxed)),
        ] {
            to(&self.http_closed.with_label_values(&[reason]), v);
        }
        to(&self.http_accept_errors, s.accept_errors.load(Relaxed));
        let gauge = |state: &str, v: usize| {
            self.body_budget
                .with_label_values(&[state])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge("in_use", budget.in_use());
        gauge("limit", budget.total());
    }

    pub fn store_written(&self, now_ms: u64) {
        self.last_write.set(now_ms as f64 / 1000.0);
    }

    pub fn store_failed(&self) {
        self.write_errors.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

/// Unix time in ms.
pub use tumen_core::now_ms;

/// The contract metrics, computed from the live state at each scrape.
#[derive(Debug)]
struct StateCollector {
    live: Arc<RwLock<Live>>,
    silence_ms: u64,
    path_info: GaugeVec,
    share: GaugeVec,
    reachable: GaugeVec,
    changes: IntCounterVec,
    last_change: GaugeVec,
    last_seen: GaugeVec,
    agents_live: GaugeVec,
    descs: Vec<Desc>,
    /// One scrape fills the vectors at a time.
    lock: Mutex<()>,
}

impl StateCollector {
    fn new(live: Arc<RwLock<Live>>, silence: Duration) -> Self {
        let path_info = must(GaugeVec::new(
            Opts::new(
                "tumen_path_upstream_info",
                "Current upstream of each (agent, prefix) path (value always 1).",
            ),
            &["agent", "prefix", "upstream", "upstream_asn"],
        ));
        let share = must(GaugeVec::new(
            Opts::new(
                "tumen_upstream_share_ratio",
                "Fraction of paths per upstream, per prefix and over all (prefix=\"all\").",
            ),
            &["prefix", "upstream"],
        ));
        let reachable = must(GaugeVec::new(
            Opts::new(
                "tumen_prefix_reachable_ratio",
                "Fraction of live agents whose latest trace or ping reached inside the target.",
            ),
            &["prefix"],
        ));
        let changes = must(IntCounterVec::new(
            Opts::new(
                "tumen_upstream_changes_total",
                "Changes of a path's current upstream (after hysteresis).",
            ),
            &["agent", "prefix"],
        ));
        let last_change = must(GaugeVec::new(
            Opts::new(
                "tumen_upstream_last_change_timestamp_seconds",
                "Unix time of the latest upstream change of a path, labelled with the upstreams before and after it.",
            ),
            &["agent", "prefix", "from", "to"],
        ));
        let last_seen = must(GaugeVec::new(
            Opts::new(
                "tumen_agent_last_seen_timestamp_seconds",
                "Unix time of the agent's latest accepted upload.",
            ),
            &["agent"],
        ));
        let agents_live = must(GaugeVec::new(
            Opts::new(
                "tumen_collector_agents",
                "Agents known, by whether they uploaded within agent_silence.",
            ),
            &["state"],
        ));
        let mut descs = Vec::new();
        for c in [
            &path_info as &dyn Collector,
            &share,
            &reachable,
            &changes,
            &last_change,
            &last_seen,
            &agents_live,
        ] {
            descs.extend(c.desc().into_iter().cloned());
        }
        Self {
            live,
            silence_ms: u64::try_from(silence.as_millis()).unwrap_or(u64::MAX),
            path_info,
            share,
            reachable,
            changes,
            last_change,
            last_seen,
            agents_live,
            descs,
            lock: Mutex::new(()),
        }
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let is_live = |agent: &str| live.is_live(agent, now, self.silence_ms);
        self.path_info.reset();
        self.share.reset();
        self.reachable.reset();
        self.changes.reset();
        self.last_change.reset();
        self.last_seen.reset();
        self.agents_live.reset();
        let (mut up, mut silent) = (0.0, 0.0);
        for a in live.agents.values() {
            if is_live(&a.name) {
                up += 1.0;
                self.last_seen
                    .with_label_values(&[a.name.as_str()])
                    .set(a.last_seen_ms as f64 / 1000.0);
            } else {
                silent += 1.0;
            }
        }
        self.agents_live.with_label_values(&["live"]).set(up);
        self.agents_live.with_label_values(&["silent"]).set(silent);
        for ((agent, prefix), s) in &live.paths {
            if !is_live(agent) {
                continue;
            }
            let prefix = prefix.to_string();
            self.changes
                .with_label_values(&[agent.as_str(), prefix.as_str()])
                .inc_by(s.changes);
            if let (Some(from), Some(to), Some(at)) = (&s.previous, &s.current, s.since_ms) {
                self.last_change
                    .with_label_values(&[
                        agent.as_str(),
                        prefix.as_str(),
                        from.name.as_str(),
                        to.name.as_str(),
                    ])
                    .set(at as f64 / 1000.0);
            }
            if let Some(u) = &s.current {
                let asn = u.asn.map(|a| a.to_string()).unwrap_or_default();
                self.path_info
                    .with_label_values(&[agent.as_str(), prefix.as_str(), u.name.as_str(), &asn])
                    .set(1.0);
            }
        }
        let shares = live.shares(now, self.silence_ms);
        for (prefix, per) in &shares.per_prefix {
            let p = prefix.to_string();
            for (upstream, f) in per {
                self.share
                    .with_label_values(&[p.as_str(), upstream.as_str()])
                    .set(*f);
            }
        }
        for (upstream, f) in &shares.all {
            self.share
                .with_label_values(&["all", upstream.as_str()])
                .set(*f);
        }
        for (prefix, r) in live.reachability(now, self.silence_ms) {
            self.reachable
                .with_label_values(&[prefix.to_string().as_str()])
                .set(r);
        }
        let mut out = Vec::new();
        for c in [
            &self.path_info as &dyn Collector,
            &self.share,
            &self.reachable,
            &self.changes,
            &self.last_change,
            &self.last_seen,
            &self.agents_live,
        ] {
            out.extend(c.collect());
        }
        out
    }
}
