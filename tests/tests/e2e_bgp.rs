//! The control plane beside the data plane, end to end in the BGP lab
//! ([`tumen_lab::stack`] with `bgp: true`): BIRD on the lab's routers, the
//! scenario's GoBGP route collector feeding BMP into `tumen-collector
//! serve --bmp-listen`, an agent on every vantage point, Prometheus and
//! Alertmanager with the shipped rules, and a webhook.
//!
//! - `dyn_2017_10_01_…`: the Dyn timeline replayed (slower than
//!   `tumen-lab replay`, so that agents' rounds fit in its segments): the
//!   collector's BGP events for tr-fra's route to .177 follow the
//!   scenario's steps (each within 2 s of its step: BMP is immediate),
//!   and the agents' path changes follow the long segments within one
//!   round.
//! - `outage_…`: `TumenBgpVisibilityLow` and `TumenPrefixUnreachable`
//!   fire when every route is withdrawn, and both resolve after.
//! - `a_static_route_…`: a static route on tr-fra keeps its traffic to
//!   .178 on China Unicom while its BGP best (and most peers') is
//!   TransTeleCom: `TumenPlaneDivergence` fires for .178 and nothing else,
//!   and ends when the route is removed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One stack at a time: stacks give the root namespace the same
/// management addresses (198.51.100.1/30 for the first vantage point,
/// .241/30 for the route collector), so two at once would answer each
/// other's agents and routers.
static ONE_STACK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_stack() -> std::sync::MutexGuard<'static, ()> {
    ONE_STACK.lock().unwrap_or_else(|p| p.into_inner())
}

fn config(scenario: &str, toml: &str) -> StackConfig {
    StackConfig {
        scenario: scenario.into(),
        bgp: true,
        collector_toml: Some(toml.into()),
        ..StackConfig::tight(bin_dir(), rules_dir())
    }
}

/// Polls until `ok` holds, or panics with what was last seen and the logs.
fn wait_until(stack: &Stack, what: &str, limit: Duration, mut ok: impl FnMut(&str) -> bool) {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        last = stack.collector_metrics().unwrap_or_default();
        if ok(&last) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let bgp: Vec<&str> = last
        .lines()
        .filter(|l| {
            l.starts_with("tumen_bgp")
                || l.starts_with("tumen_plane")
                || l.starts_with("tumen_upstream_share")
        })
        .collect();
    panic!(
        "{what}: not within {limit:?}\n{}\n{}",
        bgp.join("\n"),
        stack.logs()
    );
}

fn api(stack: &Stack, path: &str) -> serde_json::Value {
    let body = http_get(stack.collector_port, path).unwrap_or_else(|| panic!("GET {path}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn units() -> Vec<String> {
    (176..=179).map(|n| format!("198.18.{n}.0/24")).collect()
}

/// Before anything happens: every /24 routed by the four peers that
/// carry them (ttk-msk has none of them before `ttk-transit`), China
/// Unicom on both planes.
fn wait_for_baseline(stack: &Stack) {
    let n = stack.vantage_points.len() as f64;
    wait_until(stack, "baseline", Duration::from_secs(120), |m| {
        metric(m, "tumen_bgp_source_up{source=\"bmp\"}") == Some(1.0)
            && metric(m, "tumen_bgp_peers{source=\"bmp\"}") == Some(4.0)
            && units().iter().all(|p| {
                metric(
                    m,
                    &format!("tumen_bgp_upstream_share_ratio{{prefix=\"{p}\",upstream=\"china-unicom\"}}"),
                ) == Some(1.0)
                    && metric(
                        m,
                        &format!("tumen_upstream_share_ratio{{prefix=\"{p}\",upstream=\"china-unicom\"}}"),
                    ) == Some(1.0)
            })
            && metric(m, "tumen_collector_agents{state=\"live\"}") == Some(n)
    });
}

/// The collector's BGP events for one peer's route to one prefix, oldest
/// first: (at_ms, kind, upstream after).
fn peer_events(stack: &Stack, peer_asn: u32, prefix: &str) -> Vec<(u64, String, String)> {
    let rows = api(
        stack,
        &format!("/api/v1/bgp/events?prefix={prefix}&limit=10000"),
    );
    let mut out: Vec<(u64, String, String)> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| {
            r["peer"]
                .as_str()
                .is_some_and(|p| p.contains(&format!(" AS{peer_asn} ")))
        })
        .map(|r| {
            (
                r["at_ms"].as_u64().expect("at_ms"),
                r["kind"].as_str().expect("kind").to_string(),
                r["to"]["name"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    out.reverse();
    out
}

#[test]
fn dyn_2017_10_01_replay_with_bmp_and_agents_follows_the_scenario_on_both_planes() {
    let _one = one_stack();
    let mut stack = Stack::up(&config(
        "dyn-2017-10-01",
        "[bgp]\ndivergence_for = \"1h\"\n",
    ))
    .unwrap_or_else(|e| panic!("stack: {e:#}"));
    wait_for_baseline(&stack);
    let mut replay = stack.lab.scenario().replay.clone().expect("[replay]");
    // 10 lab seconds per real hour (the scenario's 2 s is for BGP alone):
    // TTK's first transit lasts 11 s, three agent rounds.
    replay.ms_per_hour = 10_000;
    let last = replay
        .steps
        .iter()
        .position(|s| s.event == "ttk-back")
        .expect("ttk-back");
    replay.steps.truncate(last + 1);
    let stop = AtomicBool::new(false);
    let mut applied: Vec<(String, u64)> = Vec::new();
    let mut real: Vec<String> = Vec::new();
    tumen_lab::replay::play(&mut stack.lab, &replay, &stop, |_, step, played| {
        // When the event was applied (the callback runs once converged).
        let converged = played.converged_in.as_millis() as u64;
        applied.push((step.event.clone(), now_ms() - converged));
        real.push(tumen_lab::replay::format_utc(step.at));
    })
    .unwrap_or_else(|e| panic!("replay: {e}"));
    // The last segment: TTK again, long enough for the agents.
    std::thread::sleep(Duration::from_secs(12));

    // The control plane: tr-fra (AS3356) and its route to .177, from the
    // first step on (before it: the initial table). BMP timestamps are
    // whole seconds (GoBGP's), hence up to 1 s early. Flap events are
    // the model's reading of the instability, checked apart.
    let first = applied.first().map(|(_, t)| *t).expect("a step") - 1_000;
    let all = peer_events(&stack, 3356, "198.18.177.0/24");
    let flaps = all.iter().filter(|e| e.1 == "flap").count();
    let ev: Vec<(u64, String, String)> = all
        .into_iter()
        .filter(|e| e.0 >= first && e.1 != "flap")
        .collect();
    let mut report = String::new();
    let mut i = 0;
    let zero = applied[0].1;
    for (n, (event, at)) in applied.iter().enumerate() {
        let want: &[&str] = match event.as_str() {
            "ttk-transit" | "ttk-back" => &["upstream_change:transtelecom"],
            "ttk-gone" => &["upstream_change:china-unicom"],
            "all-down" => &["withdraw:-"],
            "all-up" => &["announce:china-unicom"],
            "cu-flap" => &[
                "withdraw:-",
                "announce:china-unicom",
                "withdraw:-",
                "announce:china-unicom",
            ],
            other => panic!("step {other} not expected"),
        };
        for w in want {
            let Some((t, kind, to)) = ev.get(i) else {
                panic!("step {event}: no BGP event {w} (events: {ev:?})\n{report}");
            };
            let got = format!("{kind}:{to}");
            let late = *t as i64 - *at as i64;
            report.push_str(&format!(
                "{event:<12} {}  step +{:>6.2}s  BGP event +{:>6.2}s ({late:+} ms)  {got}\n",
                real[n],
                (*at - zero) as f64 / 1000.0,
                (*t as i64 - zero as i64) as f64 / 1000.0,
            ));
            assert_eq!(&got, w, "step {event}: events {ev:?}\n{report}");
            // BMP carries each update as it happens; the flap's second
            // cycle follows a session coming back (BIRD's retry, ~1-3 s).
            let limit = if event == "cu-flap" { 8_000 } else { 2_000 };
            assert!(
                (-1_000..=limit).contains(&late),
                "step {event}: BGP event {late} ms after the step\n{report}"
            );
            i += 1;
        }
    }
    assert_eq!(i, ev.len(), "more BGP events than steps: {ev:?}\n{report}");
    // 2 changes per flap cycle and 2 per outage: 12 changes in ~20 s, a
    // flap event per 4.
    assert_eq!(flaps, 3, "flap events of tr-fra's route to .177");
    eprintln!("tr-fra's route to 198.18.177.0/24, as the collector's BMP events:\n{report}");

    // The data plane: vp-fra's path to .177 changes with the long
    // segments, each within one round (2 s) and a trace (+2 s margin).
    let rows = api(
        &stack,
        "/api/v1/events?agent=vp-fra&prefix=198.18.177.0/24&limit=100",
    );
    let mut data: Vec<(u64, String)> = rows
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["at_ms"].as_u64().expect("at_ms"),
                r["to_upstream"].as_str().expect("to").to_string(),
            )
        })
        .collect();
    data.reverse();
    let at = |name: &str| {
        applied
            .iter()
            .find(|(e, _)| e == name)
            .map(|(_, t)| *t)
            .expect("step")
    };
    for (step, to) in [
        ("ttk-transit", "transtelecom"),
        ("ttk-gone", "china-unicom"),
        ("ttk-back", "transtelecom"),
    ] {
        let t0 = at(step);
        let hit = data.iter().find(|(t, u)| *t >= t0 && u == to);
        let Some((t, _)) = hit else {
            panic!("data plane: no change to {to} after {step}: {data:?}");
        };
        let late = t - t0;
        eprintln!("data plane vp-fra .177: {step} -> {to} after {late} ms");
        assert!(late <= 6_000, "data plane {step}: {late} ms: {data:?}");
    }
    drop(stack);
}

#[test]
fn outage_fires_visibility_low_and_unreachable_and_both_clear() {
    let _one = one_stack();
    let mut cfg = config("dprk-outage-2025-06-07", "");
    // The shipped rules wait 2 and 10 minutes; here 5 s.
    cfg.alert_for = Some(Duration::from_secs(5));
    let mut stack = Stack::up(&cfg).unwrap_or_else(|e| panic!("stack: {e:#}"));
    let n = stack.vantage_points.len() as f64;
    wait_until(&stack, "baseline", Duration::from_secs(120), |m| {
        metric(m, "tumen_bgp_peers{source=\"bmp\"}") == Some(5.0)
            && units().iter().all(|p| {
                metric(m, &format!("tumen_bgp_visibility_ratio{{prefix=\"{p}\"}}")).unwrap_or(0.0)
                    >= 0.8
            })
            && metric(m, "tumen_collector_agents{state=\"live\"}") == Some(n)
            && units().iter().all(|p| {
                metric(
                    m,
                    &format!("tumen_prefix_reachable_ratio{{prefix=\"{p}\"}}"),
                ) == Some(1.0)
            })
    });
    // Events are dated by the source's clock (BMP: whole seconds, and a
    // route's own time), so those of the outage are told from any made
    // while the peers came up by their row ids, not by time.
    let before_id = api(&stack, "/api/v1/bgp/events?limit=1")[0]["id"]
        .as_i64()
        .unwrap_or(0);
    let t0 = Instant::now();
    stack.lab.event("outage").expect("outage");
    wait_until(&stack, "visibility 0", Duration::from_secs(10), |m| {
        units().iter().all(|p| {
            metric(m, &format!("tumen_bgp_visibility_ratio{{prefix=\"{p}\"}}")) == Some(0.0)
        })
    });
    let metric_after = t0.elapsed();
    let firing = |stack: &Stack, name: &str, status: &str| -> BTreeSet<String> {
        stack
            .alerts()
            .iter()
            .filter(|(_, a)| a["labels"]["alertname"] == name && a["status"] == status)
            .filter_map(|(_, a)| a["labels"]["prefix"].as_str().map(str::to_string))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let want: BTreeSet<String> = units().into_iter().collect();
    while Instant::now() < deadline
        && !(firing(&stack, "TumenBgpVisibilityLow", "firing") == want
            && firing(&stack, "TumenPrefixUnreachable", "firing") == want)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        firing(&stack, "TumenBgpVisibilityLow", "firing"),
        want,
        "{}",
        stack.logs()
    );
    assert_eq!(firing(&stack, "TumenPrefixUnreachable", "firing"), want);
    eprintln!(
        "outage: visibility metric 0 after {metric_after:?}, both alerts at the webhook after {:?}",
        t0.elapsed()
    );
    stack.lab.event("restored").expect("restored");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline
        && !(firing(&stack, "TumenBgpVisibilityLow", "resolved") == want
            && firing(&stack, "TumenPrefixUnreachable", "resolved") == want)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(firing(&stack, "TumenBgpVisibilityLow", "resolved"), want);
    assert_eq!(firing(&stack, "TumenPrefixUnreachable", "resolved"), want);
    // The collector's own record of it.
    let low = api(&stack, "/api/v1/bgp/events?kind=visibility_low");
    let of_outage: Vec<&serde_json::Value> = low
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["id"].as_i64().is_some_and(|id| id > before_id))
        .collect();
    assert_eq!(of_outage.len(), 4, "{low}");
    let prefixes: std::collections::BTreeSet<&str> = of_outage
        .iter()
        .filter_map(|e| e["prefix"].as_str())
        .collect();
    assert_eq!(prefixes.len(), 4, "one per /24: {low}");
}

#[test]
fn a_static_route_that_overrides_bgp_makes_a_divergence_for_exactly_that_prefix() {
    let _one = one_stack();
    let mut stack = Stack::up(&config(
        "dyn-2017-10-01",
        "[bgp]\ndivergence_for = \"10s\"\n",
    ))
    .unwrap_or_else(|e| panic!("stack: {e:#}"));
    wait_for_baseline(&stack);
    let t0 = Instant::now();
    stack.lab.event("ttk-transit").expect("ttk-transit");
    // The control plane moves at once: TTK for .177-.179 at 3 of 5 peers.
    wait_until(
        &stack,
        "BGP shares after ttk-transit",
        Duration::from_secs(10),
        |m| {
            ["198.18.177.0/24", "198.18.178.0/24", "198.18.179.0/24"].iter().all(|p| {
            metric(
                m,
                &format!("tumen_bgp_upstream_share_ratio{{prefix=\"{p}\",upstream=\"transtelecom\"}}"),
            ) == Some(0.6)
        })
        },
    );
    eprintln!("ttk-transit: BGP metric after {:?}", t0.elapsed());
    // tr-fra's traffic to .178 stays with China Unicom: a static route
    // under BIRD's (lower metric wins in the kernel).
    let s = stack.lab.scenario().clone();
    let via = s
        .addr_on_link("cu-bj", "tr-fra", false)
        .expect("cu-bj's address toward tr-fra");
    let out = stack
        .lab
        .output(
            "tr-fra",
            &[
                "ip",
                "route",
                "add",
                "198.18.178.0/24",
                "via",
                &via.to_string(),
                "metric",
                "1",
            ],
        )
        .expect("ip route add");
    assert!(out.status.success(), "{out:?}");
    let t1 = Instant::now();
    // Data plane: vp-fra on CU for .178 only, so .178 is C 2/3 against BGP's
    // T 3/5; .177 and .179 agree (T 2/3, T 3/5); .176 is C on both.
    wait_until(
        &stack,
        "divergence for .178",
        Duration::from_secs(60),
        |m| {
            m.contains(
            "tumen_plane_divergence_info{bgp_upstream=\"transtelecom\",data_upstream=\"china-unicom\",prefix=\"198.18.178.0/24\"} 1",
        )
        },
    );
    let diverged_after = t1.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && !stack
            .alerts()
            .iter()
            .any(|(_, a)| a["labels"]["alertname"] == "TumenPlaneDivergence")
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Watch a while longer: nothing else diverges.
    std::thread::sleep(Duration::from_secs(15));
    let m = stack.collector_metrics().unwrap_or_default();
    let diverging: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("tumen_plane_divergence_info{"))
        .collect();
    assert_eq!(diverging.len(), 1, "{diverging:?}");
    let alerted: BTreeSet<String> = stack
        .alerts()
        .iter()
        .filter(|(_, a)| a["labels"]["alertname"] == "TumenPlaneDivergence")
        .filter_map(|(_, a)| a["labels"]["prefix"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        alerted,
        ["198.18.178.0/24".to_string()].into_iter().collect(),
        "{}",
        stack.logs()
    );
    eprintln!("divergence: metric {diverged_after:?} after the static route (divergence_for 10 s)");
    let d = api(&stack, "/api/v1/bgp/divergences");
    assert_eq!(d[0]["prefix"], "198.18.178.0/24", "{d}");
    // The route goes: the planes agree again, and after 10 s of it the
    // divergence ends.
    let out = stack
        .lab
        .output(
            "tr-fra",
            &[
                "ip",
                "route",
                "del",
                "198.18.178.0/24",
                "via",
                &via.to_string(),
                "metric",
                "1",
            ],
        )
        .expect("ip route del");
    assert!(out.status.success(), "{out:?}");
    wait_until(&stack, "divergence over", Duration::from_secs(60), |m| {
        !m.contains("tumen_plane_divergence_info{")
    });
    let ended = api(&stack, "/api/v1/bgp/events?kind=divergence_end");
    assert_eq!(ended[0]["prefix"], "198.18.178.0/24", "{ended}");
}

/// `tests/bench-bgp-detection.sh`: a control-plane change (ttk-transit)
/// to the metric and to `TumenBgpUpstreamChanged` at the webhook, with
/// the shipped settings (Prometheus scrape and evaluation 15 s,
/// Alertmanager group_wait 30 s, the rules as shipped). Prints one line.
#[test]
#[ignore = "a benchmark: run by tests/bench-bgp-detection.sh"]
fn bench_bgp_change_to_metric_and_alert_with_default_settings() {
    let _one = one_stack();
    let cfg = StackConfig {
        scenario: "dyn-2017-10-01".into(),
        bgp: true,
        ..StackConfig::defaults(bin_dir(), rules_dir())
    };
    let mut stack = Stack::up(&cfg).unwrap_or_else(|e| panic!("stack: {e:#}"));
    wait_until(&stack, "BGP baseline", Duration::from_secs(120), |m| {
        metric(m, "tumen_bgp_peers{source=\"bmp\"}") == Some(4.0)
            && metric(
                m,
                "tumen_bgp_upstream_share_ratio{prefix=\"198.18.177.0/24\",upstream=\"china-unicom\"}",
            ) == Some(1.0)
    });
    // Somewhere in Prometheus's scrape and evaluation cycle.
    let pause = 15_000 + (now_ms() % 15_000);
    std::thread::sleep(Duration::from_millis(pause));
    let t0 = Instant::now();
    stack.lab.event("ttk-transit").expect("ttk-transit");
    let applied = t0.elapsed();
    wait_until(&stack, "metric", Duration::from_secs(30), |m| {
        metric(
            m,
            "tumen_bgp_upstream_share_ratio{prefix=\"198.18.177.0/24\",upstream=\"transtelecom\"}",
        ) == Some(0.6)
    });
    let to_metric = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline
        && !stack.alerts().iter().any(|(_, a)| {
            a["labels"]["alertname"] == "TumenBgpUpstreamChanged"
                && a["labels"]["prefix"] == "198.18.177.0/24"
        })
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let to_alert = t0.elapsed();
    assert!(
        to_alert < Duration::from_secs(180),
        "no alert: {}",
        stack.logs()
    );
    println!(
        "bgp-detection converged_ms={} metric_ms={} alert_ms={}",
        applied.as_millis(),
        to_metric.as_millis(),
        to_alert.as_millis()
    );
}
