//! The agent's log: `tracing` events on stderr, in one of two formats.
//!
//! - `text` (the default): one line per event, `tumen-agent: MESSAGE` and
//!   then the event's other fields as ` key=value`, with no timestamp or
//!   level (journald and the lab's log files add their own time; the
//!   closing account line `tumen-agent: spool: A appended, C committed,
//!   ...` and the other lines operators and the tests grep for keep their
//!   wording).
//! - `json`: one JSON object per event (`timestamp`, `level`, `target`,
//!   `message` and the fields, flattened), for a log shipper.
//!
//! Text a peer controls (the collector's answers, its schedule's ETag and
//! items, error messages that may quote a certificate or a header) goes
//! into fields recorded with `?` (Debug formatting: quoted, with newlines,
//! terminal escapes and bidirectional overrides escaped), never into the
//! message: a hostile collector cannot forge or recolour a log line. The
//! message itself is always the agent's own text.
//!
//! The level defaults to `info`; `RUST_LOG` may set another with
//! per-target directives (`RUST_LOG=info,tumen_agent=debug`).

use std::fmt::{self, Write as _};
use std::str::FromStr;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The format of the log on stderr (`--log-format`, `log_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `tumen-agent: MESSAGE key=value ...`, one line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A log format that is neither `text` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a log format: use text or json")]
pub struct UnknownFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

/// The text format: `tumen-agent: MESSAGE` and then ` key=value` per
/// field, on one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFormat;

/// An event's fields, split into its message and the rest.
#[derive(Debug, Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            // A string field is quoted and escaped like `?`.
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        writeln!(writer, "tumen-agent: {}{}", f.message, f.rest)
    }
}

/// The level filter: `RUST_LOG` when it is set and valid, else `info`.
fn filter() -> (Targets, Option<String>) {
    let default = Targets::new().with_default(LevelFilter::INFO);
    match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => match s.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (default, Some(format!("RUST_LOG {s:?} ignored: {e}"))),
        },
        _ => (default, None),
    }
}

/// Installs the process's log subscriber (stderr, `format`). A second
/// call does nothing.
pub fn init(format: LogFormat) {
    let (targets, problem) = filter();
    let text = (format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .event_format(TextFormat)
            .with_writer(std::io::stderr)
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
    });
    let installed = tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(targets)
        .try_init()
        .is_ok();
    if let (true, Some(p)) = (installed, problem) {
        tracing::warn!("{p}");
    }
}

/// Test support: the log of the current thread, captured.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex};

    use super::{LogFormat, TextFormat};

    /// What was logged, shared with the writer.
    #[derive(Debug, Clone, Default)]
    pub struct Log(Arc<Mutex<Vec<u8>>>);

    impl Log {
        /// Everything logged so far.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("log")).into_owned()
        }

        /// The lines that contain `needle`.
        pub fn lines_with(&self, needle: &str) -> Vec<String> {
            self.text()
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_string)
                .collect()
        }
    }

    #[derive(Debug)]
    pub struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Captures this thread's events (a `#[tokio::test]` runs its tasks
    /// on the test's thread) in `format`, at the default level (`info`,
    /// so dependencies' debug events stay out), until the guard is
    /// dropped.
    pub fn start(format: LogFormat) -> (tracing::subscriber::DefaultGuard, Log) {
        // A global subscriber at the same level, writing nowhere, stays
        // for the whole test binary: tracing caches per call site whether
        // anyone listens and keeps a global level hint, and with only
        // thread-local subscribers coming and going in parallel tests a
        // call site could be cached as unheard and a line lost.
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let _ = tracing::subscriber::set_global_default(
                tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(std::io::sink)
                    .finish(),
            );
        });
        let log = Log::default();
        let buf = log.0.clone();
        let make = move || Writer(buf.clone());
        let guard = match format {
            LogFormat::Text => tracing::subscriber::set_default(
                tracing_subscriber::fmt()
                    .event_format(TextFormat)
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(make)
                    .finish(),
            ),
            LogFormat::Json => tracing::subscriber::set_default(
                tracing_subscriber::fmt()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(make)
                    .finish(),
            ),
        };
        (guard, log)
    }

    /// Captures in the text format.
    pub fn text() -> (tracing::subscriber::DefaultGuard, Log) {
        start(LogFormat::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        let e = "xml".parse::<LogFormat>().expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "\"xml\" is not a log format: use text or json"
        );
    }

    #[test]
    fn text_lines_are_the_message_then_the_fields() {
        let (_g, log) = capture::text();
        tracing::info!("spool: {} appended, {} committed, {} pending", 3, 2, 1);
        tracing::warn!(status = 503u16, answer = ?"busy", "upload: collector answered");
        tracing::error!(path = %"/var/lib/x", "cannot open");
        assert_eq!(
            log.text(),
            "tumen-agent: spool: 3 appended, 2 committed, 1 pending\n\
             tumen-agent: upload: collector answered status=503 answer=\"busy\"\n\
             tumen-agent: cannot open path=/var/lib/x\n"
        );
        assert_eq!(log.lines_with("collector answered").len(), 1);
    }

    /// Moved from `upload::printable`'s test: what a peer controls cannot
    /// forge or recolour a log line. It goes into a `?` field, which
    /// escapes newlines, carriage returns, terminal escapes and
    /// bidirectional overrides (and quotes it), in both formats.
    #[test]
    fn peer_text_cannot_forge_or_recolour_a_log_line() {
        let hostile = "ok\ntumen-agent: spool: 0 appended\r\u{1b}[31mred\u{202e}";
        let (g, log) = capture::text();
        tracing::warn!(answer = ?hostile, "upload: collector answered 500");
        drop(g);
        let text = log.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line = text.trim_end_matches('\n');
        assert!(!line.chars().any(char::is_control), "{line}");
        assert!(!line.contains('\u{202e}'), "{line}");
        assert_eq!(
            line,
            "tumen-agent: upload: collector answered 500 \
             answer=\"ok\\ntumen-agent: spool: 0 appended\\r\\u{1b}[31mred\\u{202e}\""
        );
        let (g, log) = capture::start(LogFormat::Json);
        tracing::warn!(answer = ?hostile, "upload: collector answered 500");
        drop(g);
        let text = log.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.trim_end().chars().any(char::is_control), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        assert_eq!(v["message"], "upload: collector answered 500");
        assert_eq!(v["level"], "WARN");
        // The field holds the Debug form: decoded once, it is still
        // escaped, so a reader printing it cannot be fooled either.
        assert_eq!(
            v["answer"],
            "\"ok\\ntumen-agent: spool: 0 appended\\r\\u{1b}[31mred\\u{202e}\""
        );
    }

    #[test]
    fn json_lines_carry_level_time_and_fields() {
        let (g, log) = capture::start(LogFormat::Json);
        tracing::info!(rounds = 3u64, "stopped after 3 round(s)");
        drop(g);
        let v: serde_json::Value = serde_json::from_str(&log.text()).expect("json");
        assert_eq!(v["message"], "stopped after 3 round(s)");
        assert_eq!(v["rounds"], 3);
        assert_eq!(v["level"], "INFO");
        assert!(v["timestamp"].is_string(), "{v}");
    }
}
