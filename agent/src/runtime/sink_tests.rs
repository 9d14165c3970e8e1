//! The sink over a temporary spool and an in-memory stdout.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::*;
use crate::logging::capture;
use crate::runtime::testutil::{record, TempDir};
use crate::spool::{Spool, SpoolConfig};

/// A writer into shared memory, or one whose reader went away.
#[derive(Debug, Clone, Default)]
struct Mem(Arc<Mutex<Vec<u8>>>, bool);

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.1 {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        }
        self.0.lock().expect("out").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn spool_sink(dir: &TempDir, max_bytes: u64, segment_bytes: u64) -> (Sink, Arc<Mutex<Spool>>) {
    let spool = Spool::open(SpoolConfig {
        dir: dir.path().join("spool"),
        max_bytes,
        segment_bytes,
    })
    .expect("spool");
    let spool = Arc::new(Mutex::new(spool));
    (Sink::spool(spool.clone(), Arc::new(Notify::new())), spool)
}

fn woken(sink: &Sink) -> bool {
    let Out::Spool { wake, .. } = &sink.out else {
        return false;
    };
    let n = wake.notified();
    tokio::pin!(n);
    // A stored permit makes the first poll ready.
    futures_ready(n.as_mut())
}

fn futures_ready<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    f.poll(&mut cx).is_ready()
}

#[test]
fn lines_mode_writes_one_json_line_per_record_and_notices_a_closed_output() {
    let out = Mem::default();
    let mut sink = Sink::lines(Box::new(out.clone()));
    for i in 0..3 {
        sink.put(&record(i));
    }
    sink.sync();
    assert!(sink.lines_ok());
    let text = String::from_utf8(out.0.lock().expect("out").clone()).expect("utf-8");
    let got: Vec<Record> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record per line"))
        .collect();
    assert_eq!(got, vec![record(0), record(1), record(2)]);

    // The reader goes away: the sink says so and stops writing.
    let gone = Mem(Arc::default(), true);
    let mut sink = Sink::lines(Box::new(gone));
    sink.put(&record(0));
    assert!(!sink.lines_ok());
    sink.put(&record(1));
    sink.sync();
    assert!(!sink.lines_ok());
}

#[tokio::test(start_paused = true)]
async fn spool_mode_appends_every_record_and_syncs_at_least_every_second() {
    let dir = TempDir::new("sink-spool");
    let (mut sink, spool) = spool_sink(&dir, 1 << 20, 64 << 10);
    sink.put(&record(0));
    assert!(!woken(&sink), "no sync within the first second");
    tokio::time::advance(Duration::from_millis(600)).await;
    sink.put(&record(1));
    assert!(!woken(&sink));
    tokio::time::advance(Duration::from_millis(600)).await;
    sink.put(&record(2));
    assert!(woken(&sink), "a second after the last sync, a put syncs");
    sink.put(&record(3));
    assert!(!woken(&sink));
    sink.sync();
    assert!(woken(&sink), "an explicit sync wakes the uploader");
    let mut s = spool.lock().expect("spool");
    assert_eq!((s.stats.appended, s.pending_records()), (4, 4));
    let (batch, _) = s.read_batch(10, 1 << 20).expect("read");
    let got: Vec<Record> = batch
        .iter()
        .map(|e| serde_json::from_slice(&e.payload).expect("record"))
        .collect();
    assert_eq!(got, (0..4).map(record).collect::<Vec<_>>());
}

/// The spool at its bound drops its oldest results; the sink says so at
/// most every 10 s, and every dropped result is in exactly one line.
#[tokio::test(start_paused = true)]
async fn spool_full_drops_are_said_at_most_every_10_s_with_their_count() {
    let (_g, log) = capture::text();
    let dir = TempDir::new("sink-full");
    let (mut sink, spool) = spool_sink(&dir, 4096, 1024);
    for i in 0..100 {
        sink.put(&record(i));
        tokio::time::advance(Duration::from_millis(50)).await;
    }
    let said = log.lines_with("spool full");
    assert_eq!(said.len(), 1, "{}", log.text());
    tokio::time::advance(LOG_EVERY).await;
    for i in 100..200 {
        sink.put(&record(i));
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    let said = log.lines_with("spool full");
    assert_eq!(said.len(), 2, "{}", log.text());
    let total = spool.lock().expect("spool").stats.dropped_full;
    assert!(total > 0);
    // "dropped the N oldest result(s) to make room (T in all)"
    let numbers = |l: &str| -> (u64, u64) {
        let n = l
            .split("dropped the ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{l}"));
        let t = l
            .split(" (")
            .last()
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{l}"));
        (n, t)
    };
    let (n1, t1) = numbers(&said[0]);
    let (n2, t2) = numbers(&said[1]);
    assert_eq!(n1, t1, "the first line counts every drop so far");
    assert_eq!(
        t1 + n2,
        t2,
        "the second line counts the drops since the first"
    );
    assert!(said
        .iter()
        .all(|l| l.starts_with("tumen-agent: spool full") && l.ends_with("probing continues")));
    // Results not said yet are said by the next line, not lost.
    assert!(t2 <= total);
}

/// A result that cannot be written is dropped and counted; the sink says
/// so at most every 10 s.
#[tokio::test(start_paused = true)]
async fn write_errors_are_counted_and_said_at_most_every_10_s() {
    let (_g, log) = capture::text();
    let dir = TempDir::new("sink-error");
    let (mut sink, spool) = spool_sink(&dir, 64 << 20, 4 << 20);
    let Record::Ping(mut huge) = record(0) else {
        unreachable!()
    };
    huge.agent = "x".repeat(5 << 20);
    let huge = Record::Ping(huge);
    for _ in 0..3 {
        sink.put(&huge);
    }
    sink.put(&record(1));
    assert_eq!(spool.lock().expect("spool").stats.dropped_write_error, 3);
    assert_eq!(spool.lock().expect("spool").stats.appended, 1);
    let said = log.lines_with("result dropped");
    assert_eq!(said.len(), 1, "{}", log.text());
    assert!(
        said[0].starts_with("tumen-agent: spool: ")
            && said[0].contains("larger than")
            && said[0].contains("0 full, 1 write errors")
            && said[0].ends_with("probing continues"),
        "{}",
        said[0]
    );
    tokio::time::advance(LOG_EVERY + Duration::from_millis(1)).await;
    sink.put(&huge);
    let said = log.lines_with("result dropped");
    assert_eq!(said.len(), 2, "{}", log.text());
    assert!(said[1].contains("0 full, 4 write errors"), "{}", said[1]);
}
