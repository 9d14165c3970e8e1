//! The round loop over the mock network: intervals on tokio's paused
//! clock, shutdown, the drain within the grace, a schedule taking effect
//! at a round boundary; the uploader against a hostile collector.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tumen_wire::Record;

use super::*;
use crate::logging::capture;
use crate::mock::{Answer, Fate, MockNet};
use crate::packet::ProbeSpec;
use crate::round::destinations;
use crate::runtime::testutil::{config, gunzip, FakeCollector, TempDir};

/// Every probe sent: when, and to whom.
type Sent = Rc<RefCell<Vec<(Instant, IpAddr)>>>;

/// Two routers, then the destination; every probe is noted.
fn three_hops(sent: &Sent) -> MockNet {
    let sent = sent.clone();
    MockNet::new(move |p: &ProbeSpec| {
        sent.borrow_mut().push((Instant::now(), p.dst));
        match p.ttl {
            1 => Answer::Router("192.0.2.254".parse().expect("ip")),
            2 => Answer::Router("198.51.100.1".parse().expect("ip")),
            _ => Answer::Destination,
        }
    })
}

fn agent(c: Config, net: MockNet) -> Agent<MockNet> {
    let dsts = destinations(&c.targets, c.probe.hosts).expect("dsts");
    let families = Families::needed(&c, &dsts, c.delivery.is_some());
    Agent::new(c, dsts, net, Ident::from_seed(0x1234), families)
}

/// JSON lines written to memory.
#[derive(Debug, Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lines").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn records(&self) -> Vec<Record> {
        String::from_utf8(self.0.lock().expect("lines").clone())
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record per line"))
            .collect()
    }
}

/// The first send of each round: sends more than `gap` after the one
/// before.
fn round_starts(sent: &Sent, gap: Duration) -> Vec<Instant> {
    let s = sent.borrow();
    let mut starts = Vec::new();
    let mut last: Option<Instant> = None;
    for &(t, _) in s.iter() {
        if last.is_none_or(|l| t.duration_since(l) > gap) {
            starts.push(t);
        }
        last = Some(t);
    }
    starts
}

/// Rounds start every `interval`, to the tick, on the paused clock: the
/// first at once, then 20 s apart, until the shutdown; every result is
/// printed as a JSON line and the run says how many rounds it made.
#[tokio::test(start_paused = true)]
async fn rounds_keep_their_interval_until_the_shutdown() {
    let (_g, log) = capture::text();
    let sent = Sent::default();
    let c = config(
        "targets = [\"198.18.176.0/24\", \"198.18.177.0/24\"]\ninterval = \"20s\"\n\
         pps = 1000",
    );
    let out = Lines::default();
    let a = agent(c, three_hops(&sent)).with_output(Box::new(out.clone()));
    let shutdown = Shutdown::new();
    let t0 = Instant::now();
    let stopper = async {
        tokio::time::sleep(Duration::from_secs(70)).await;
        shutdown.cancel();
        Instant::now()
    };
    let (report, cancelled_at) = tokio::join!(a.run(shutdown.clone()), stopper);
    let report = report.expect("run");
    assert_eq!(
        round_starts(&sent, Duration::from_secs(5)),
        (0..4)
            .map(|k| t0 + Duration::from_secs(20 * k))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.rounds, 4);
    assert_eq!(report.spool, None);
    // The run ends at once: no drain without a collector.
    assert_eq!(Instant::now(), cancelled_at);
    let records = out.records();
    assert_eq!(records.len(), 8, "two destinations, four rounds");
    assert!(records
        .iter()
        .all(|r| matches!(r, Record::Trace(t) if t.reached && t.agent == "vp-test")));
    assert_eq!(report.stats.sent, sent.borrow().len() as u64);
    let said = log.lines_with("stopped after");
    assert_eq!(
        said,
        [format!(
            "tumen-agent: stopped after 4 round(s), {} probes sent",
            report.stats.sent
        )]
    );
}

/// A round slower than the interval delays the next one rather than
/// bunching them, and a shutdown in the middle of a round stops it there.
#[tokio::test(start_paused = true)]
async fn a_slow_round_delays_the_next_and_a_shutdown_cuts_a_round_short() {
    let sent = Sent::default();
    let s = sent.clone();
    // Nobody answers: each round is 3 silent hops x 2 attempts x 1 s.
    let net = MockNet::new(move |p: &ProbeSpec| {
        s.borrow_mut().push((Instant::now(), p.dst));
        Answer::Silent
    });
    let c = config("targets = [\"198.18.176.0/24\"]\ninterval = \"1s\"");
    let out = Lines::default();
    let a = agent(c, net).with_output(Box::new(out.clone()));
    let shutdown = Shutdown::new();
    let t0 = Instant::now();
    let stopper = async {
        // Mid-way through the third round.
        tokio::time::sleep(Duration::from_millis(14_500)).await;
        shutdown.cancel();
        Instant::now()
    };
    let (report, cancelled_at) = tokio::join!(a.run(shutdown.clone()), stopper);
    let report = report.expect("run");
    // A probe a second, from the start to the shutdown: rounds back to
    // back (at 0, 6 and 12 s), never two at once.
    let times: Vec<Instant> = sent.borrow().iter().map(|s| s.0).collect();
    assert_eq!(
        times,
        (0..15)
            .map(|k| t0 + Duration::from_secs(k))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.rounds, 3);
    assert_eq!(Instant::now(), cancelled_at, "stopped mid-round at once");
    // The two finished rounds' results; the third was cut short.
    assert_eq!(out.records().len(), 2);
}

/// Without a collector, a closed stdout ends the agent.
#[tokio::test(start_paused = true)]
async fn a_closed_stdout_stops_the_agent() {
    #[derive(Debug)]
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (_g, log) = capture::text();
    let sent = Sent::default();
    let c = config("targets = [\"198.18.176.0/24\"]\ninterval = \"20s\"");
    let a = agent(c, three_hops(&sent)).with_output(Box::new(Closed));
    let shutdown = Shutdown::new();
    let report = a.run(shutdown.clone()).await.expect("run");
    assert_eq!(report.rounds, 1);
    assert_eq!(log.lines_with("stdout is closed; stopping").len(), 1);
    assert!(
        !shutdown.is_cancelled(),
        "the caller's token is the caller's"
    );
}

/// `--once`: one round, JSON lines, and the summary.
#[tokio::test(start_paused = true)]
async fn once_is_one_round_of_json_lines() {
    let (_g, log) = capture::text();
    let sent = Sent::default();
    let c = config("targets = [\"198.18.176.0/24\", \"198.18.177.0/24\"]");
    let out = Lines::default();
    let report = agent(c, three_hops(&sent))
        .with_output(Box::new(out.clone()))
        .once()
        .await;
    assert_eq!(report.rounds, 1);
    assert_eq!(out.records().len(), 2);
    let said = log.lines_with("destination(s)");
    assert_eq!(said.len(), 1, "{}", log.text());
    assert!(
        said[0].starts_with(&format!(
            "tumen-agent: 2 destination(s), {} probes sent in ",
            report.stats.sent
        )),
        "{}",
        said[0]
    );
}

/// A configuration with a collector at `url`, its token, a spool.
fn delivering(dir: &TempDir, url: &str, extra: &str) -> (Config, Delivering) {
    std::fs::write(dir.path().join("token"), "secret\n").expect("token");
    let c = config(&format!(
        "targets = [\"198.18.176.0/24\"]\nallow = [\"198.18.176.0/22\"]\ninterval = \"1s\"\n\
         collector = \"{url}\"\ninsecure_http = true\ntoken_file = \"{0}/token\"\n\
         spool = \"{0}/spool\"\nretry_max = \"200ms\"\n{extra}",
        dir.path().display()
    ));
    let d = Delivering::prepare(c.delivery.as_ref().expect("delivery")).expect("delivering");
    (c, d)
}

/// SIGTERM (the shutdown token) with the collector down: probing stops at
/// once, the uploader tries for the grace period and no longer, and what
/// it could not send stays in the spool, said in the closing account.
#[tokio::test]
async fn with_the_collector_down_a_shutdown_ends_within_the_grace_and_keeps_the_rest() {
    let (_g, log) = capture::text();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let dir = TempDir::new("run-down");
    let (c, d) = delivering(&dir, &url, "shutdown_grace = \"500ms\"");
    let sent = Sent::default();
    let a = agent(c, three_hops(&sent)).with_delivery(Some(d));
    let shutdown = Shutdown::new();
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        shutdown.cancel();
        Instant::now()
    };
    let (report, cancelled_at) = tokio::join!(a.run(shutdown.clone()), stopper);
    let took = cancelled_at.elapsed();
    let report = report.expect("run");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1500),
        "the drain took {took:?} for a grace of 500 ms"
    );
    assert!(report.grace_over);
    assert_eq!(report.rounds, 2);
    let spool = report.spool.expect("spool account");
    assert_eq!(
        (spool.stats.appended, spool.stats.acked, spool.pending),
        (2, 0, 2)
    );
    let text = log.text();
    assert_eq!(
        log.lines_with("grace period (0.5 s) over: 2 result(s) stay in the spool")
            .len(),
        1,
        "{text}"
    );
    // The account is the last line, in the form the lab tests parse.
    assert_eq!(
        text.lines().last(),
        Some(
            "tumen-agent: spool: 2 appended, 0 committed, 2 pending, 0 dropped (full), \
             0 dropped (write error), 0 quarantined, 0 torn, 0 corrupt"
        ),
        "{text}"
    );
}

/// How long the fake collector takes to answer a schedule request.
const SCHEDULE_DELAY: Duration = Duration::from_millis(100);

/// With a collector that answers: the schedule fetched while the first
/// round runs goes in force at the next round boundary (never mid-round),
/// its refusals are reported, and on shutdown the spool is drained to the
/// collector.
#[tokio::test]
async fn a_schedule_takes_effect_at_the_next_round_and_the_spool_drains_on_shutdown() {
    let (_g, log) = capture::text();
    // The schedule is answered 100 ms after it is asked for, while the
    // first round (600 ms: every reply takes 200 ms) runs.
    let fake = FakeCollector::start_slow(
        |r| {
            if r.path == "/api/v1/schedule" {
                SCHEDULE_DELAY
            } else {
                Duration::ZERO
            }
        },
        |r| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v1/schedule") if r.headers.contains("if-none-match: \"s1\"") => {
                (304, vec![], vec![])
            }
            ("GET", "/api/v1/schedule") => (
                200,
                vec![("ETag".into(), "\"s1\"".into())],
                br#"{"targets": ["198.18.177.0/24", "8.8.8.0/24"], "probes": 1}"#.to_vec(),
            ),
            ("POST", "/api/v1/results") => {
                let n = gunzip(&r.body).lines().count();
                (
                    200,
                    vec![],
                    format!("{{\"accepted\":{n},\"duplicates\":0}}").into_bytes(),
                )
            }
            ("POST", "/api/v1/refusals") => (200, vec![], b"{}".to_vec()),
            _ => (404, vec![], vec![]),
        },
    )
    .await;
    let dir = TempDir::new("run-schedule");
    let (c, d) = delivering(&dir, &fake.url(), "shutdown_grace = \"5s\"");
    let sent = Sent::default();
    let net = three_hops(&sent).with_faults(|_, _| Fate {
        delay: Duration::from_millis(200),
        ..Fate::default()
    });
    let a = agent(c, net).with_delivery(Some(d));
    let shutdown = Shutdown::new();
    // After the third round (at 2 s, 600 ms long), before a fourth.
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(2850)).await;
        shutdown.cancel();
    };
    let (report, ()) = tokio::join!(a.run(shutdown.clone()), stopper);
    let report = report.expect("run");
    assert_eq!(report.rounds, 3);
    let first: IpAddr = "198.18.176.1".parse().expect("ip");
    let scheduled: IpAddr = "198.18.177.1".parse().expect("ip");
    let s = sent.borrow();
    let last_local = s.iter().rposition(|(_, d)| *d == first).expect("local");
    let first_scheduled = s.iter().position(|(_, d)| *d == scheduled).expect("sched");
    assert!(s.iter().all(|(_, d)| *d == first || *d == scheduled));
    // The plan arrived while the first round still had probes to send...
    let fetched = fake.requests("/api/v1/schedule")[0].at + SCHEDULE_DELAY;
    assert!(fetched < s[last_local].0, "the schedule came after round 1");
    // ... which went on with the local plan; the next round had the new one.
    assert!(last_local < first_scheduled, "the plan changed mid-round");
    assert!(
        s[first_scheduled].0.duration_since(s[last_local].0) >= Duration::from_millis(300),
        "the first scheduled probe belongs to the second round"
    );
    drop(s);
    // The refusal was reported and said.
    let reports = fake.requests("/api/v1/refusals");
    assert_eq!(reports.len(), 1);
    assert!(String::from_utf8_lossy(&reports[0].body).contains("target 8.8.8.0/24"));
    assert_eq!(
        log.lines_with("schedule: refused target 8.8.8.0/24: outside this agent's allow-list")
            .len(),
        1
    );
    // Drained: every result is at the collector, none pending.
    let spool = report.spool.expect("spool");
    assert!(!report.grace_over);
    assert_eq!(
        (spool.stats.appended, spool.stats.acked, spool.pending),
        (3, 3, 0)
    );
    let uploaded: usize = fake
        .requests("/api/v1/results")
        .iter()
        .map(|r| gunzip(&r.body).lines().count())
        .sum();
    assert_eq!(uploaded, 3);
}

/// A collector's answer is logged in a `?` field: a hostile body cannot
/// forge or recolour a line of the agent's log.
#[tokio::test]
async fn the_collectors_answers_cannot_forge_a_log_line() {
    let (_g, log) = capture::text();
    let fake = FakeCollector::start(|_| {
        (
            500,
            vec![],
            b"busy\ntumen-agent: spool: 0 appended, 0 committed\r\x1b[31m\xe2\x80\xae".to_vec(),
        )
    })
    .await;
    let dir = TempDir::new("upload-hostile");
    let (_, d) = delivering(&dir, &fake.url(), "");
    d.spool
        .lock()
        .expect("spool")
        .append(b"{\"a\":1}")
        .expect("append");
    let stop = Shutdown::new();
    let up = d.uploader;
    let run = up.run(Arc::new(Notify::new()), stop.clone());
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        stop.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    tokio::select! {
        () = run => panic!("the uploader gave up"),
        () = stopper => {}
    }
    let text = log.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    for l in &lines {
        assert!(l.starts_with("tumen-agent: upload: collector answered 500; retrying in "));
        assert!(!l.chars().any(char::is_control), "{l}");
        assert!(!l.contains('\u{202e}'), "{l}");
        assert!(
            l.ends_with(
                "answer=\"busy\\ntumen-agent: spool: 0 appended, 0 committed\\r\\u{1b}[31m\\u{202e}\""
            ),
            "{l}"
        );
    }
}
