//! End to end (issue 6): the 2017 TransTeleCom activation replayed in the
//! `dprk-2017` lab with every real piece ([`tumen_lab::stack`]): an agent
//! on every vantage point (raw sockets, in its namespace), the collector,
//! Prometheus and Alertmanager (Debian's packages, temporary configs on
//! loopback, loading the rules shipped in `deploy/prometheus/`), and a
//! webhook receiver.
//!
//! Before the event every /24 is China Unicom's; after `ttk-activation`
//! the shares follow the scenario (.177-.179 TransTeleCom from vp-fra and
//! vp-sgp, China Unicom from vp-nyc), `TumenUpstreamChanged` reaches the
//! webhook with prefix/from/to labels, and `TumenPrefixUnreachable` never
//! even becomes pending. The time from the route change to the metric
//! changing and to the webhook is printed. Tightened settings (agents
//! every 2 s, Prometheus every 1 s) keep the test short; the shipped
//! defaults are measured by `tests/bench-detection.sh`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::ttk_moved;
use tumen_lab::stack::{http_get, metric, Stack, StackConfig};

fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .join("deploy/prometheus")
}

#[test]
fn ttk_activation_reaches_alertmanager_as_an_upstream_change_and_nothing_else() {
    let cfg = StackConfig::tight(bin_dir(), rules_dir());
    let mut stack = Stack::up(&cfg).unwrap_or_else(|e| panic!("stack: {e:#}"));
    let n_vps = stack.vantage_points.len() as f64;

    // Before: China Unicom everywhere, every agent live.
    let v4_units: Vec<String> = (176..=179).map(|n| format!("198.18.{n}.0/24")).collect();
    let all_cu = |m: &str| {
        v4_units.iter().all(|p| {
            metric(
                m,
                &format!("tumen_upstream_share_ratio{{prefix=\"{p}\",upstream=\"china-unicom\"}}"),
            ) == Some(1.0)
        }) && metric(m, "tumen_collector_agents{state=\"live\"}") == Some(n_vps)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = stack.collector_metrics().unwrap_or_default();
        if all_cu(&m) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shares never all china-unicom:\n{m}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Prometheus has scraped it too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(
        stack.prometheus_port,
        "/api/v1/query?query=tumen_upstream_share_ratio%7Bupstream%3D%22china-unicom%22%7D",
    )
    .is_none_or(|b| b.matches("china-unicom").count() < v4_units.len())
    {
        assert!(Instant::now() < deadline, "prometheus never saw the shares");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(stack.alerts().is_empty(), "an alert before the event");

    // The event.
    let t0 = Instant::now();
    stack.lab.event("ttk-activation").expect("ttk-activation");
    let moved: BTreeSet<String> = ttk_moved()
        .iter()
        .filter(|p| p.addr().is_ipv4())
        .map(ToString::to_string)
        .collect();
    // Metric: the moved /24s are TransTeleCom's from two of three agents.
    let t_metric = loop {
        let m = stack.collector_metrics().unwrap_or_default();
        let ok = moved.iter().all(|p| {
            metric(
                &m,
                &format!("tumen_upstream_share_ratio{{prefix=\"{p}\",upstream=\"transtelecom\"}}"),
            )
            .is_some_and(|v| (v - 2.0 / 3.0).abs() < 1e-6)
        });
        if ok {
            // The rest of the scenario: .176 stays China Unicom's.
            assert_eq!(
                metric(
                    &m,
                    "tumen_upstream_share_ratio{prefix=\"198.18.176.0/24\",upstream=\"china-unicom\"}"
                ),
                Some(1.0),
                "{m}"
            );
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "shares did not follow:\n{m}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Webhook: TumenUpstreamChanged for every moved /24, china-unicom -> transtelecom.
    let t_hook = loop {
        let got = stack.alerts();
        let changed: Vec<&(Instant, serde_json::Value)> = got
            .iter()
            .filter(|(_, a)| a["labels"]["alertname"] == "TumenUpstreamChanged")
            .collect();
        let prefixes: BTreeSet<String> = changed
            .iter()
            .filter_map(|(_, a)| a["labels"]["prefix"].as_str().map(str::to_string))
            .collect();
        if moved.iter().all(|p| prefixes.contains(p)) {
            for (_, a) in &changed {
                let l = &a["labels"];
                assert_eq!(l["from"], "china-unicom", "{a}");
                assert_eq!(l["to"], "transtelecom", "{a}");
                assert!(moved.contains(l["prefix"].as_str().unwrap_or("")), "{a}");
                assert!(
                    a["annotations"]["summary"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{a}"
                );
            }
            let first = changed.iter().map(|(t, _)| *t).min().expect("one");
            break first.duration_since(t0);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "no TumenUpstreamChanged for {moved:?} at the webhook; got {got:?}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Nothing else fired, and the unreachable alert never became pending.
    let names: BTreeSet<String> = stack
        .alerts()
        .iter()
        .filter_map(|(_, a)| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect();
    assert!(!names.contains("TumenPrefixUnreachable"), "{names:?}");
    let alerts = http_get(
        stack.prometheus_port,
        "/api/v1/query?query=ALERTS%7Balertname%3D%22TumenPrefixUnreachable%22%7D",
    )
    .expect("prometheus query");
    assert!(alerts.contains("\"result\":[]"), "{alerts}");
    eprintln!(
        "ttk-activation: shares changed {:.1} s after the route change, \
         TumenUpstreamChanged at the webhook after {:.1} s (agents every 2 s, hysteresis 2, \
         scrape and rule evaluation every 1 s, Alertmanager group_wait 1 s); alerts seen: {names:?}",
        t_metric.as_secs_f64(),
        t_hook.as_secs_f64()
    );
}
