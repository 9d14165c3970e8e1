//! Where a running agent's results go: the spool (with a collector) or
//! JSON lines on stdout.
//!
//! With a spool, every record is one append (one `write(2)`), made durable
//! at least once a second while results arrive and after every round
//! ([`Sink::sync`], which also wakes the uploader). Probing never stops
//! for the spool: a record that cannot be written is dropped and counted
//! in the spool's statistics (and `/metrics`), and said on stderr at most
//! every [`LOG_EVERY`]; so is the spool dropping its oldest results to make
//! room.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tumen_wire::Record;

use crate::spool::Spool;

/// Spool problems are said at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Spooled results are made durable at least this often while they arrive.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

enum Out {
    Spool {
        spool: Arc<Mutex<Spool>>,
        /// Tells the uploader that there is something to send.
        wake: Arc<Notify>,
    },
    Lines(Box<dyn Write + Send>),
}

/// The results' destination.
pub struct Sink {
    out: Out,
    last_sync: Instant,
    last_error: Option<Instant>,
    last_drop_log: Option<Instant>,
    dropped_unlogged: u64,
    lines_ok: bool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("spool", &matches!(self.out, Out::Spool { .. }))
            .field("lines_ok", &self.lines_ok)
            .finish()
    }
}

fn lock(spool: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sink {
    fn with(out: Out) -> Self {
        Self {
            out,
            last_sync: Instant::now(),
            last_error: None,
            last_drop_log: None,
            dropped_unlogged: 0,
            lines_ok: true,
        }
    }

    /// Results go to the spool; `wake` is notified after each sync.
    pub fn spool(spool: Arc<Mutex<Spool>>, wake: Arc<Notify>) -> Self {
        Self::with(Out::Spool { spool, wake })
    }

    /// Results are written to `out` as JSON lines (stdout in the binary).
    pub fn lines(out: Box<dyn Write + Send>) -> Self {
        Self::with(Out::Lines(out))
    }

    /// False once the JSON-lines output is gone (stdout closed).
    pub fn lines_ok(&self) -> bool {
        self.lines_ok
    }

    pub fn put(&mut self, r: &Record) {
        let spool = match &mut self.out {
            Out::Lines(out) => {
                if self.lines_ok {
                    self.lines_ok = emit(out.as_mut(), r);
                }
                return;
            }
            Out::Spool { spool, .. } => &*spool,
        };
        let line = match serde_json::to_vec(r) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot encode a result: {e}");
                return;
            }
        };
        let mut s = lock(spool);
        let dropped_before = s.stats.dropped_full;
        let appended = s.append(&line);
        let made_room = s.stats.dropped_full - dropped_before;
        let now = Instant::now();
        if made_room > 0 && appended.is_ok() {
            self.dropped_unlogged += made_room;
            if self
                .last_drop_log
                .is_none_or(|t| now.duration_since(t) > LOG_EVERY)
            {
                tracing::warn!(
                    "spool full (bound {} MiB or disk): dropped the {} oldest result(s) to \
                     make room ({} in all); probing continues",
                    s.max_bytes() >> 20,
                    self.dropped_unlogged,
                    s.stats.dropped_full
                );
                self.dropped_unlogged = 0;
                self.last_drop_log = Some(now);
            }
        }
        if let Err(e) = appended {
            // Said at most every LOG_EVERY; every loss is counted in the
            // spool's statistics (and /metrics).
            if self
                .last_error
                .is_none_or(|t| now.duration_since(t) > LOG_EVERY)
            {
                let st = s.stats;
                tracing::error!(
                    "spool: {e}; result dropped (dropped so far: {} full, {} write errors); \
                     probing continues",
                    st.dropped_full,
                    st.dropped_write_error
                );
                self.last_error = Some(now);
            }
        }
        drop(s);
        if now.duration_since(self.last_sync) >= SYNC_EVERY {
            self.sync();
        }
    }

    /// Makes spooled results durable and tells the uploader (JSON lines:
    /// flushes).
    pub fn sync(&mut self) {
        match &mut self.out {
            Out::Spool { spool, wake } => {
                if let Err(e) = lock(spool).sync() {
                    tracing::error!("spool: {e}");
                }
                self.last_sync = Instant::now();
                wake.notify_one();
            }
            Out::Lines(out) => {
                if self.lines_ok && out.flush().is_err() {
                    self.lines_ok = false;
                }
            }
        }
    }
}

/// Writes a record as one JSON line; false once the output is gone.
pub fn emit(out: &mut dyn Write, r: &Record) -> bool {
    match serde_json::to_string(r) {
        Ok(line) => writeln!(out, "{line}").and_then(|()| out.flush()).is_ok(),
        Err(_) => true,
    }
}

#[cfg(test)]
#[path = "sink_tests.rs"]
mod tests;
