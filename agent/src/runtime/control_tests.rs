//! The schedule task against a tiny collector on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::logging::capture;
use crate::runtime::testutil::{config, Answer, FakeCollector, Seen, TempDir};
use crate::schedule::{Cached, Schedule};

const SCHEDULE: &str = "/api/v1/schedule";
const REFUSALS: &str = "/api/v1/refusals";

/// A local configuration for a collector at `url`, with its token file.
fn local(dir: &TempDir, url: &str) -> Config {
    std::fs::write(dir.path().join("token"), "secret\n").expect("token");
    config(&format!(
        "targets = [\"198.18.176.0/24\"]\nallow = [\"198.18.176.0/22\"]\npps = 100\n\
         interval = \"20s\"\ncollector = \"{url}\"\ninsecure_http = true\n\
         token_file = \"{0}/token\"\nspool = \"{0}/spool\"\nretry_max = \"200ms\"",
        dir.path().display()
    ))
}

fn control(dir: &TempDir, url: &str) -> (Control, Arc<Status>, Arc<Config>) {
    let c = Arc::new(local(dir, url));
    let d = Delivering::prepare(c.delivery.as_ref().expect("delivery")).expect("delivery");
    let status = Arc::new(Status::default());
    let families = Families {
        v4: true,
        v6: false,
    };
    (
        Control::new(&d, c.clone(), status.clone(), families),
        status,
        c,
    )
}

fn ok(etag: &str, body: &str) -> Answer {
    (
        200,
        vec![("ETag".into(), etag.into())],
        body.as_bytes().to_vec(),
    )
}

fn answer(r: &Seen, schedule: &str) -> Answer {
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", SCHEDULE)
            if r.headers
                .to_ascii_lowercase()
                .contains("if-none-match: \"s1\"") =>
        {
            (304, vec![], vec![])
        }
        ("GET", SCHEDULE) => ok("\"s1\"", schedule),
        ("POST", REFUSALS) => (200, vec![], b"{\"recorded\":1}".to_vec()),
        _ => (404, vec![], vec![]),
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

/// The task fetches the schedule, hands the plan over through the watch
/// channel, caches it, reports what it refused, and then asks again
/// conditionally (304: nothing new) until it is stopped.
#[tokio::test]
async fn a_schedule_is_handed_over_cached_and_its_refusals_reported() {
    let (_g, log) = capture::text();
    let fake = FakeCollector::start(|r| {
        answer(
            r,
            r#"{"targets": ["198.18.177.0/24", "8.8.8.0/24"], "probes": 1, "interval_s": 1,
                "pps": 500}"#,
        )
    })
    .await;
    let dir = TempDir::new("control-run");
    let (c, status, _) = control(&dir, &fake.url());
    let (tx, mut plans) = watch::channel(None);
    let stop = Shutdown::new();
    let task = tokio::spawn(c.run(tx, stop.clone(), Duration::from_secs(20)));
    tokio::time::timeout(Duration::from_secs(5), plans.changed())
        .await
        .expect("a plan within 5 s")
        .expect("sender alive");
    let plan = plans.borrow_and_update().clone().expect("a plan");
    assert_eq!(plan.targets, vec!["198.18.177.0/24".parse().expect("net")]);
    assert_eq!((plan.probes, plan.pps), (1, 100), "pps capped locally");
    assert_eq!(plan.interval, Duration::from_secs(1));
    // The report: the collector hears what was refused, for this schedule.
    wait_for("the refusals report", || {
        !fake.requests(REFUSALS).is_empty()
    })
    .await;
    let report: serde_json::Value =
        serde_json::from_slice(&fake.requests(REFUSALS)[0].body).expect("json");
    assert_eq!(report["schedule"], "\"s1\"");
    let items: Vec<&str> = report["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .filter_map(|r| r["item"].as_str())
        .collect();
    assert_eq!(items, ["target 8.8.8.0/24", "pps 500"]);
    assert_eq!(status.schedule_refusals_total.load(Ordering::Relaxed), 2);
    assert_eq!(status.schedule_refused_now.load(Ordering::Relaxed), 2);
    assert!(status.schedule_fetched.load(Ordering::Relaxed) > 0);
    // The token went along.
    assert!(fake.requests(SCHEDULE)[0]
        .headers
        .contains("authorization: Bearer secret"));
    // Cached for the next start.
    let cached = schedule::load_cache(&schedule::cache_path(&dir.path().join("spool")))
        .expect("cache")
        .expect("cached");
    assert_eq!(cached.etag, "\"s1\"");
    // A second fetch a plan's interval later is conditional: nothing new.
    wait_for("a conditional fetch", || fake.requests(SCHEDULE).len() >= 2).await;
    assert!(!plans.has_changed().expect("sender alive"));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("the task ends at once when stopped")
        .expect("no panic");
    for want in [
        "schedule from the collector: 1 target(s), every 1 s, 100 pps; 2 item(s) refused \
         etag=\"\\\"s1\\\"\"",
        "schedule: refused target 8.8.8.0/24: outside this agent's allow-list",
        "schedule: refused pps 500: above this agent's cap of 100: 100 used",
    ] {
        assert_eq!(log.lines_with(want).len(), 1, "{want}:\n{}", log.text());
    }
}

/// 404 after a schedule: the collector withdrew it; the local plan comes
/// back and the cache goes.
#[tokio::test]
async fn a_withdrawn_schedule_restores_the_local_plan_and_clears_the_cache() {
    let n = Arc::new(AtomicUsize::new(0));
    let k = n.clone();
    let fake = FakeCollector::start(move |r| match r.path.as_str() {
        SCHEDULE if k.fetch_add(1, Ordering::SeqCst) == 0 => {
            ok("\"s1\"", r#"{"targets": ["198.18.177.0/24"]}"#)
        }
        _ => (404, vec![], vec![]),
    })
    .await;
    let dir = TempDir::new("control-withdrawn");
    let (mut c, status, config) = control(&dir, &fake.url());
    let cache = schedule::cache_path(&dir.path().join("spool"));
    let plan = c.refresh().await.expect("the schedule");
    assert_eq!(plan.targets[0].to_string(), "198.18.177.0/24");
    assert!(cache.is_file());
    assert_eq!(c.etag(), Some("\"s1\""));
    status.schedule_refused_now.store(3, Ordering::Relaxed);
    let back = c.refresh().await.expect("the local plan");
    assert_eq!(back, Plan::local(&config));
    assert!(!cache.exists());
    assert_eq!(c.etag(), None);
    assert_eq!(status.schedule_refused_now.load(Ordering::Relaxed), 0);
    // No schedule, none withdrawn: nothing to change.
    assert_eq!(c.refresh().await, None);
}

/// A failing collector or token keeps the plan in force; each error is
/// said once until it changes.
#[tokio::test]
async fn errors_keep_the_plan_in_force_and_are_said_once_until_they_change() {
    let (_g, log) = capture::text();
    let fake = FakeCollector::start(|_| (500, vec![], b"busy".to_vec())).await;
    let dir = TempDir::new("control-errors");
    let (mut c, _, _) = control(&dir, &fake.url());
    for _ in 0..3 {
        assert_eq!(c.refresh().await, None);
    }
    assert_eq!(
        log.lines_with(
            "schedule: not fetched; keeping the one in force error=\"collector answered 500\""
        )
        .len(),
        1,
        "{}",
        log.text()
    );
    std::fs::remove_file(dir.path().join("token")).expect("rm token");
    for _ in 0..2 {
        assert_eq!(c.refresh().await, None);
    }
    let said = log.lines_with("schedule: not fetched error=");
    assert_eq!(said.len(), 1, "{}", log.text());
    assert!(said[0].contains("No such file"), "{}", said[0]);
    assert_eq!(
        fake.requests(SCHEDULE).len(),
        3,
        "no request without a token"
    );
}

/// What the collector puts in a schedule cannot forge a log line: the
/// refusal items quote it, escaped.
#[tokio::test]
async fn schedule_items_from_the_collector_cannot_forge_a_log_line() {
    let (_g, log) = capture::text();
    let fake = FakeCollector::start(|r| {
        answer(
            r,
            r#"{"targets": ["x\ntumen-agent: spool: 0 appended"], "protocol": "\u001b[31mred",
                "evil\r\ntumen-agent: stopped after 0 round(s)": 1}"#,
        )
    })
    .await;
    let dir = TempDir::new("control-hostile");
    let (mut c, _, _) = control(&dir, &fake.url());
    let _ = c.refresh().await.expect("a plan (local targets kept)");
    let text = log.text();
    assert!(
        text.lines().all(|l| l.starts_with("tumen-agent: schedule")),
        "{text}"
    );
    assert!(
        !text.replace('\n', "").chars().any(char::is_control),
        "{text}"
    );
    for want in [
        "schedule: refused target \"x\\ntumen-agent: spool: 0 appended\": not an address or prefix",
        "schedule: refused protocol \"\\u{1b}[31mred\": not icmp, udp or tcp",
        "schedule: refused \"evil\\r\\ntumen-agent: stopped after 0 round(s)\": unknown setting",
    ] {
        assert_eq!(log.lines_with(want).len(), 1, "{want}:\n{text}");
    }
}

/// The schedule cached by the last run is the plan to start with.
#[test]
fn a_cached_schedule_is_the_plan_to_start_with() {
    let (_g, log) = capture::text();
    let dir = TempDir::new("control-cached");
    let (mut c, status, _) = control(&dir, "http://127.0.0.1:9");
    assert_eq!(c.cached(), None);
    let s: Schedule =
        serde_json::from_str(r#"{"targets": ["198.18.178.0/24", "9.9.9.0/24"], "pps": 10}"#)
            .expect("schedule");
    schedule::save_cache(
        &schedule::cache_path(&dir.path().join("spool")),
        &Cached {
            etag: "\"old\"".into(),
            schedule: s,
        },
    )
    .expect("save");
    let plan = c.cached().expect("cached plan");
    assert_eq!(plan.targets[0].to_string(), "198.18.178.0/24");
    assert_eq!(plan.pps, 10);
    assert_eq!(c.etag(), Some("\"old\""));
    assert_eq!(status.schedule_refused_now.load(Ordering::Relaxed), 1);
    assert_eq!(
        log.lines_with("applying the cached schedule etag=\"\\\"old\\\"\"")
            .len(),
        1,
        "{}",
        log.text()
    );
    // A corrupt cache is said and ignored.
    std::fs::write(schedule::cache_path(&dir.path().join("spool")), "{").expect("write");
    assert_eq!(c.cached(), None);
    assert_eq!(log.lines_with("ignored").len(), 1, "{}", log.text());
}
