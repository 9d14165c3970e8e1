//! Readers for the traceroute formats people paste into
//! `tumen-collector infer`, each turned into the common [`Trace`] model.
//! Every format has a module with two functions:
//!
//! - `sniff(text) -> u8`: how sure the module is that `text` is its format
//!   (0: not at all, 100: certain), from cheap signs (a header, a column
//!   line, a JSON key) — it must never claim another format's input;
//! - `read(text, name) -> Result<Read, InputError>`: every trace that can
//!   be read, and every line (or record) that could not, as `skipped`
//!   warnings naming `file:line` and why. An `Err` means the input is not
//!   this format at all, or nothing in it could be read.
//!
//! [`read_traces`] asks every module to sniff, reads with the most likely
//! format first and falls back to the next while nothing is read. Reading
//! is lenient: prose, prompts and lines no reader understands are skipped
//! with a warning. [`Options::strict`] turns the first skipped line into
//! the error (the behaviour before lenient reading existed). When nothing
//! can be read, the error says which formats were tried and which came
//! closest. No reader panics, whatever the input.

mod atlas;
mod atlas_text;
mod json;
mod mtr;
mod mtr_csv;
mod mtr_raw;
mod mtr_report;
mod mtr_xml;
mod nexttrace;
mod nmap;
mod paris;
mod router;
mod scamper;
mod text;
mod tracepath;
mod tracert;
mod trippy;
pub(crate) mod tumen;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead as _, Read as _};
use std::net::IpAddr;

pub use atlas::read_atlas_json;
pub use mtr::read_mtr_json;
pub use text::read_traceroute_text;
pub use tumen::read_tumen_json_lines;

use crate::model::{Hop, InputError, Trace};

/// The input formats [`read_traces`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Linux (`traceroute`, inetutils, busybox), BSD/macOS and JunOS
    /// `traceroute` text.
    TracerouteText,
    /// Linux `tracepath`.
    Tracepath,
    /// `paris-traceroute`.
    ParisTraceroute,
    /// Windows `tracert`, in any of its languages.
    Tracert,
    /// `mtr --report` / `--report-wide`, with or without `-z` AS column.
    MtrReport,
    /// `mtr --csv`.
    MtrCsv,
    /// `mtr --xml`.
    MtrXml,
    /// `mtr --json`.
    MtrJson,
    /// `mtr --raw`.
    MtrRaw,
    /// `nmap --traceroute`.
    Nmap,
    /// Router CLIs and looking glasses: Cisco IOS/IOS-XR, MikroTik
    /// RouterOS, BIRD looking glasses.
    RouterCli,
    /// NextTrace and besttrace.
    NextTrace,
    /// `ripe-atlas report` text.
    AtlasText,
    /// scamper JSON (`scamper -O json`, `sc_warts2json`).
    ScamperJson,
    /// trippy's JSON report.
    TrippyJson,
    /// trippy's CSV report.
    TrippyCsv,
    /// RIPE Atlas traceroute results.
    AtlasJson,
    /// Tumen's JSON lines (`tumen_wire::Record`).
    TumenJsonLines,
}

impl Format {
    /// Every format, in the order detection breaks ties.
    pub const ALL: [Format; 18] = [
        Format::TumenJsonLines,
        Format::AtlasJson,
        Format::MtrJson,
        Format::ScamperJson,
        Format::TrippyJson,
        Format::MtrXml,
        Format::MtrCsv,
        Format::MtrRaw,
        Format::TrippyCsv,
        Format::MtrReport,
        Format::Tracert,
        Format::Nmap,
        Format::RouterCli,
        Format::NextTrace,
        Format::AtlasText,
        Format::Tracepath,
        Format::ParisTraceroute,
        Format::TracerouteText,
    ];

    /// Human name, as messages use it.
    pub fn name(self) -> &'static str {
        match self {
            Format::TracerouteText => "traceroute text (Linux/BSD/macOS/JunOS)",
            Format::Tracepath => "tracepath",
            Format::ParisTraceroute => "paris-traceroute",
            Format::Tracert => "Windows tracert",
            Format::MtrReport => "mtr --report",
            Format::MtrCsv => "mtr --csv",
            Format::MtrXml => "mtr --xml",
            Format::MtrJson => "mtr --json",
            Format::MtrRaw => "mtr --raw",
            Format::Nmap => "nmap --traceroute",
            Format::RouterCli => "router CLI (Cisco/MikroTik/BIRD)",
            Format::NextTrace => "NextTrace/besttrace",
            Format::AtlasText => "ripe-atlas report text",
            Format::ScamperJson => "scamper JSON",
            Format::TrippyJson => "trippy JSON",
            Format::TrippyCsv => "trippy CSV",
            Format::AtlasJson => "RIPE Atlas traceroute JSON",
            Format::TumenJsonLines => "Tumen JSON lines",
        }
    }

    /// The short name `--format` takes.
    pub fn slug(self) -> &'static str {
        match self {
            Format::TracerouteText => "traceroute",
            Format::Tracepath => "tracepath",
            Format::ParisTraceroute => "paris-traceroute",
            Format::Tracert => "tracert",
            Format::MtrReport => "mtr-report",
            Format::MtrCsv => "mtr-csv",
            Format::MtrXml => "mtr-xml",
            Format::MtrJson => "mtr-json",
            Format::MtrRaw => "mtr-raw",
            Format::Nmap => "nmap",
            Format::RouterCli => "router",
            Format::NextTrace => "nexttrace",
            Format::AtlasText => "atlas-report",
            Format::ScamperJson => "scamper",
            Format::TrippyJson => "trippy-json",
            Format::TrippyCsv => "trippy-csv",
            Format::AtlasJson => "atlas",
            Format::TumenJsonLines => "tumen",
        }
    }

    /// The format `--format NAME` names.
    pub fn from_slug(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.slug() == name)
    }

    /// How sure this format's reader is that `text` is its format, 0..=100.
    pub fn sniff(self, text: &str) -> u8 {
        let score = match self {
            Format::TracerouteText => text::sniff(text),
            Format::Tracepath => tracepath::sniff(text),
            Format::ParisTraceroute => paris::sniff(text),
            Format::Tracert => tracert::sniff(text),
            Format::MtrReport => mtr_report::sniff(text),
            Format::MtrCsv => mtr_csv::sniff(text),
            Format::MtrXml => mtr_xml::sniff(text),
            Format::MtrJson => mtr::sniff(text),
            Format::MtrRaw => mtr_raw::sniff(text),
            Format::Nmap => nmap::sniff(text),
            Format::RouterCli => router::sniff(text),
            Format::NextTrace => nexttrace::sniff(text),
            Format::AtlasText => atlas_text::sniff(text),
            Format::ScamperJson => scamper::sniff(text),
            Format::TrippyJson => trippy::sniff_json(text),
            Format::TrippyCsv => trippy::sniff_csv(text),
            Format::AtlasJson => atlas::sniff(text),
            Format::TumenJsonLines => tumen::sniff(text),
        };
        score.min(100)
    }

    /// Reads `text` as this format (lenient: see [`Read::skipped`]).
    fn read(self, text: &str, name: &str) -> Result<Read, InputError> {
        let mut read = match self {
            Format::TracerouteText => text::read(text, name),
            Format::Tracepath => tracepath::read(text, name),
            Format::ParisTraceroute => paris::read(text, name),
            Format::Tracert => tracert::read(text, name),
            Format::MtrReport => mtr_report::read(text, name),
            Format::MtrCsv => mtr_csv::read(text, name),
            Format::MtrXml => mtr_xml::read(text, name),
            Format::MtrJson => mtr::read(text, name),
            Format::MtrRaw => mtr_raw::read(text, name),
            Format::Nmap => nmap::read(text, name),
            Format::RouterCli => router::read(text, name),
            Format::NextTrace => nexttrace::read(text, name),
            Format::AtlasText => atlas_text::read(text, name),
            Format::ScamperJson => scamper::read(text, name),
            Format::TrippyJson => trippy::read_json(text, name),
            Format::TrippyCsv => trippy::read_csv(text, name),
            Format::AtlasJson => atlas::read(text, name),
            Format::TumenJsonLines => tumen::read(text, name),
        }?;
        read.format = self;
        for t in &mut read.traces {
            normalize(&mut t.hops);
        }
        Ok(read)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What reading an input gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// The format it was read as.
    pub format: Format,
    /// Every trace read, in input order.
    pub traces: Vec<Trace>,
    /// Every line or record skipped, in input order: `file:line` and why.
    pub skipped: Vec<InputError>,
}

impl Read {
    /// Nothing read yet, as `format`.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            traces: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Records a skipped line.
    pub(crate) fn skip(&mut self, origin: String, what: impl Into<String>) {
        self.skipped.push(InputError {
            origin,
            what: what.into(),
        });
    }
}

/// How to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Refuse the input at the first line that cannot be read, instead of
    /// skipping it with a warning.
    pub strict: bool,
    /// Read as this format, without detection.
    pub format: Option<Format>,
}

/// "tried A, B, C" for messages.
fn tried(formats: &[Format]) -> String {
    let names: Vec<&str> = formats.iter().map(|f| f.name()).collect();
    format!("tried {}", names.join(", "))
}

/// Reads every trace in `text`, whatever its format, leniently (see the
/// module documentation). `name` (a file name, `-`, a label) prefixes
/// origins.
pub fn read_traces(text: &str, name: &str) -> Result<Read, InputError> {
    read_traces_with(text, name, Options::default())
}

/// Reads `text` as `format`, leniently.
pub fn read_format(format: Format, text: &str, name: &str) -> Result<Read, InputError> {
    read_traces_with(
        text,
        name,
        Options {
            format: Some(format),
            ..Options::default()
        },
    )
}

/// Reads every trace in `text` as `options` say.
pub fn read_traces_with(text: &str, name: &str, options: Options) -> Result<Read, InputError> {
    let text = strip_bom(text);
    if text.trim().is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: format!("empty input: no traceroute ({})", tried(&Format::ALL)),
        });
    }
    let candidates: Vec<(Format, u8)> = match options.format {
        Some(f) => vec![(f, 100)],
        None => ranked(text),
    };
    let mut closest: Option<(Format, u8, InputError)> = None;
    for &(format, score) in &candidates {
        match format.read(text, name) {
            Ok(read) if !read.traces.is_empty() => {
                if options.strict {
                    if let Some(first) = read.skipped.first() {
                        return Err(first.clone());
                    }
                }
                return Ok(read);
            }
            // A valid input without traces (an empty RIPE Atlas download).
            Ok(read) if read.skipped.is_empty() && score >= 50 => return Ok(read),
            Ok(read) => {
                let e = read.skipped.into_iter().next().unwrap_or(InputError {
                    origin: format!("{name}:1"),
                    what: format!("no trace in this {} input", format.name()),
                });
                if options.strict && score > 0 {
                    // Strict: the most likely format's first fault.
                    return Err(e);
                }
                if closest.as_ref().is_none_or(|c| c.1 < score) {
                    closest = Some((format, score, e));
                }
            }
            Err(e) if options.strict && score > 0 => return Err(e),
            Err(e) => {
                if closest.as_ref().is_none_or(|c| c.1 < score) {
                    closest = Some((format, score, e));
                }
            }
        }
    }
    let formats: Vec<Format> = match options.format {
        Some(f) => vec![f],
        None => Format::ALL.to_vec(),
    };
    match closest {
        Some((format, score, e)) if score > 0 || options.format.is_some() => Err(InputError {
            origin: e.origin,
            what: format!(
                "{} ({}; closest: {}, which stopped here)",
                e.what,
                tried(&formats),
                format.name()
            ),
        }),
        _ if looks_like_json(text) => Err(InputError {
            origin: format!("{name}:1"),
            what: format!(
                "JSON, but not a traceroute format I know ({}): mtr --json has `report`, \
                 RIPE Atlas has `result` and `dst_addr`, scamper has `\"type\": \"trace\"`, \
                 trippy has `hops`, Tumen records have `kind` and `schema`",
                tried(&formats)
            ),
        }),
        _ => Err(InputError {
            origin: format!("{name}:1"),
            what: format!(
                "not a traceroute format I know: no line looks like a hop, a header or a \
                 traceroute record ({})",
                tried(&formats)
            ),
        }),
    }
}

/// Starts with `{` or `[` and holds a JSON value (a shell prompt such as
/// `[root@host ~]#` does not).
fn looks_like_json(text: &str) -> bool {
    let t = text.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && serde_json::Deserializer::from_str(t)
            .into_iter::<serde::de::IgnoredAny>()
            .next()
            .is_some_and(|r| r.is_ok())
}

/// Formats that claim `text`, most likely first (ties in [`Format::ALL`]
/// order). A format that does not claim it is not tried: a lenient
/// reader would otherwise find hops in anything.
fn ranked(text: &str) -> Vec<(Format, u8)> {
    let mut scored: Vec<(Format, u8)> = Format::ALL
        .iter()
        .map(|&f| (f, f.sniff(text)))
        .filter(|&(_, s)| s > 0)
        .collect();
    scored.sort_by_key(|&(_, s)| std::cmp::Reverse(s));
    scored
}

/// The most likely format of `text`, by sniffing alone (no reading).
pub fn detect(text: &str, name: &str) -> Result<Format, InputError> {
    let text = strip_bom(text);
    match ranked(text).first() {
        Some(&(f, s)) if s > 0 => Ok(f),
        _ => Err(InputError {
            origin: format!("{name}:1"),
            what: format!("not a traceroute format I know ({})", tried(&Format::ALL)),
        }),
    }
}

/// What [`read_stream`] hands over, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Trace(Trace),
    Skipped(InputError),
}

/// What [`read_stream`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    pub format: Format,
    pub traces: usize,
    pub skipped: usize,
    /// Read line by line in bounded memory (a newline-delimited dump).
    pub streamed: bool,
}

/// The longest line a newline-delimited dump may have; a longer one is
/// skipped with a warning (RIPE Atlas results are a few KiB).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Reads traces from `reader` and hands each to `on` as soon as it is
/// read, with every skipped line. A newline-delimited JSON dump (RIPE
/// Atlas results, Tumen records) is read line by line, so a dump of any
/// size is read in bounded memory; any other input is read whole first
/// (pastes are small), decoded from UTF-8 (invalid bytes replaced, so a
/// legacy code page still reads) or from UTF-16 when it has a byte order
/// mark (PowerShell's `>` writes that). `on` stops the read by returning
/// [`std::ops::ControlFlow::Break`]. In strict mode the first skipped line
/// is the error. When nothing can be read, the error says what was tried.
pub fn read_stream(
    reader: &mut dyn std::io::BufRead,
    name: &str,
    options: Options,
    on: &mut dyn FnMut(Event) -> std::ops::ControlFlow<()>,
) -> Result<Streamed, InputError> {
    let io_error = |e: std::io::Error| InputError {
        origin: name.to_string(),
        what: format!("cannot read: {e}"),
    };
    // The lines up to and including the first non-blank one.
    let mut head: Vec<u8> = Vec::new();
    let mut lines_before = 0usize;
    let first = loop {
        let mut line = Vec::new();
        let n = (&mut *reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)
            .map_err(io_error)?;
        if n == 0 {
            break None;
        }
        let blank = line.iter().all(u8::is_ascii_whitespace);
        head.extend_from_slice(&line);
        if !blank {
            break Some(line);
        }
        lines_before += 1;
    };
    let streaming = first
        .as_deref()
        .and_then(|l| line_format(l, options.format));
    let Some(format) = streaming else {
        let mut rest = head;
        reader.read_to_end(&mut rest).map_err(io_error)?;
        let text = decode(&rest);
        let read = read_traces_with(&text, name, options)?;
        let (traces, skipped) = (read.traces.len(), read.skipped.len());
        let events = read
            .skipped
            .into_iter()
            .map(Event::Skipped)
            .chain(read.traces.into_iter().map(Event::Trace));
        for e in events {
            if on(e).is_break() {
                break;
            }
        }
        return Ok(Streamed {
            format: read.format,
            traces,
            skipped,
            streamed: false,
        });
    };
    let mut done = Streamed {
        format,
        traces: 0,
        skipped: 0,
        streamed: true,
    };
    let mut before = lines_before;
    let handle = |bytes: &[u8],
                  before: usize,
                  done: &mut Streamed,
                  on: &mut dyn FnMut(Event) -> std::ops::ControlFlow<()>| {
        emit(line_read(format, bytes, name, before), options, done, on)
    };
    if handle(&first.unwrap_or_default(), before, &mut done, on)? {
        return Ok(done);
    }
    loop {
        before += 1;
        // A whole line in the read buffer is parsed where it lies; one
        // that spans the buffer's end is gathered first.
        let found = {
            let buf = reader.fill_buf().map_err(io_error)?;
            if buf.is_empty() {
                break;
            }
            memchr::memchr(b'\n', buf)
        };
        if let Some(i) = found {
            let buf = reader.fill_buf().map_err(io_error)?;
            let stop = handle(buf.get(..=i).unwrap_or_default(), before, &mut done, on)?;
            reader.consume(i + 1);
            if stop {
                return Ok(done);
            }
            continue;
        }
        let mut line = Vec::new();
        (&mut *reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)
            .map_err(io_error)?;
        if line.len() >= MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            let mut read = Read::new(format);
            read.skip(
                format!("{name}:{}", before + 1),
                format!("line longer than {} MiB: skipped", MAX_LINE_BYTES >> 20),
            );
            // The rest of the line.
            loop {
                let buf = reader.fill_buf().map_err(io_error)?;
                if buf.is_empty() {
                    break;
                }
                match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let n = buf.len();
                        reader.consume(n);
                    }
                }
            }
            if emit(read, options, &mut done, on)? {
                return Ok(done);
            }
        } else if handle(&line, before, &mut done, on)? {
            return Ok(done);
        }
    }
    Ok(done)
}

/// What one line of a streamed dump gives (`before` lines precede it).
fn line_read(format: Format, bytes: &[u8], name: &str, before: usize) -> Read {
    let mut read = Read::new(format);
    match std::str::from_utf8(bytes) {
        Ok(text) => match format {
            Format::TumenJsonLines => tumen::read_line(text, name, before, &mut read),
            _ => atlas::read_line(text, name, before, &mut read),
        },
        Err(e) => read.skip(
            format!("{name}:{}", before + 1),
            format!("not UTF-8 (byte {})", e.valid_up_to() + 1),
        ),
    }
    read
}

/// Hands over what one line gave (warnings first), counting it; `true`
/// when `on` asks to stop. Strict: the first warning is the error.
fn emit(
    read: Read,
    options: Options,
    done: &mut Streamed,
    on: &mut dyn FnMut(Event) -> std::ops::ControlFlow<()>,
) -> Result<bool, InputError> {
    if options.strict {
        if let Some(e) = read.skipped.first() {
            return Err(e.clone());
        }
    }
    done.traces += read.traces.len();
    done.skipped += read.skipped.len();
    let events = read
        .skipped
        .into_iter()
        .map(Event::Skipped)
        .chain(read.traces.into_iter().map(Event::Trace));
    for e in events {
        if on(e).is_break() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The format of a newline-delimited dump whose first non-blank line is
/// `line`, if it is one that is streamed.
fn line_format(line: &[u8], wanted: Option<Format>) -> Option<Format> {
    let text = std::str::from_utf8(line).ok()?;
    let text = strip_bom(text).trim();
    if !text.starts_with('{') || serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return None;
    }
    let format = if tumen::sniff(text) == 100 {
        Format::TumenJsonLines
    } else if atlas::sniff(text) >= 60 {
        Format::AtlasJson
    } else {
        return None;
    };
    match wanted {
        Some(w) if w != format => None,
        _ => Some(format),
    }
}

/// Text from bytes: UTF-16 with a byte order mark, else UTF-8 with invalid
/// sequences replaced.
pub fn decode(bytes: &[u8]) -> String {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        let chunks = rest.chunks_exact(2);
        let odd = !chunks.remainder().is_empty();
        let units: Vec<u16> = chunks.map(|c| unit([c[0], c[1]])).collect();
        let mut s = String::from_utf16_lossy(&units);
        if odd {
            // A truncated last unit.
            s.push('\u{fffd}');
        }
        s
    };
    match bytes {
        [0xff, 0xfe, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xfe, 0xff, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// An address as traceroute tools print it: IPv4, IPv6, IPv6 with a zone
/// (`fe80::1%eth0`, the zone dropped).
pub(crate) fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    let (addr, _zone) = s.split_once('%')?;
    match addr.parse() {
        Ok(a @ IpAddr::V6(_)) => Some(a),
        _ => None,
    }
}

pub(crate) fn empty_hop(ttl: u8) -> Hop {
    Hop::new(ttl)
}

/// Hops in strictly increasing TTL order, from 1: entries for the same
/// TTL merged, a TTL 0 dropped. Every reader's traces pass through it, so
/// the model's promise holds whatever a reader's quirks.
pub(crate) fn normalize(hops: &mut Vec<Hop>) {
    if hops.first().is_none_or(|h| h.ttl >= 1) && hops.windows(2).all(|w| w[0].ttl < w[1].ttl) {
        return;
    }
    let mut merged = Hops::default();
    for h in hops.drain(..).filter(|h| h.ttl >= 1) {
        let ttl = h.ttl;
        merge_hop(merged.at(ttl), h);
    }
    *hops = merged.into_vec();
}

/// Adds what `from` holds to `into` (another sighting of the same TTL).
pub(crate) fn merge_hop(into: &mut Hop, from: Hop) {
    for a in from.addrs {
        push_addr(into, a);
    }
    for (a, n) in &from.names {
        push_name(into, *a, n);
    }
    for (a, n) in from.asns {
        push_asn(into, a, n);
    }
    for x in &from.annotations {
        push_annotation(into, x);
    }
    into.hidden |= from.hidden;
}

/// A trace being read: where it starts, its target, its hops so far.
#[derive(Debug)]
pub(crate) struct PartialTrace {
    pub(crate) origin: String,
    pub(crate) target: Option<IpAddr>,
    pub(crate) hops: Hops,
}

impl PartialTrace {
    pub(crate) fn into_trace(self) -> Trace {
        Trace {
            target: self.target,
            origin: self.origin,
            hops: self.hops.into_vec(),
        }
    }
}

/// Adds an address unless the hop has it already.
pub(crate) fn push_addr(hop: &mut Hop, addr: IpAddr) {
    if !hop.addrs.contains(&addr) {
        hop.addrs.push(addr);
    }
}

/// Records the host name printed for `addr` (the first one wins).
pub(crate) fn push_name(hop: &mut Hop, addr: IpAddr, name: &str) {
    let name = name.trim();
    if !name.is_empty() && name != addr.to_string() && hop.name_of(addr).is_none() {
        hop.names.push((addr, name.to_string()));
    }
}

/// Records the AS number printed for `addr` (the first one wins).
pub(crate) fn push_asn(hop: &mut Hop, addr: IpAddr, asn: u32) {
    if asn != 0 && hop.asn_of(addr).is_none() {
        hop.asns.push((addr, asn));
    }
}

/// `AS4837`, `as4837`, `[AS4837]`, `AS4837/AS9929` (the first), `4837`:
/// an AS number as tools print it; `None` for `*`, `AS???`, `[*]`, `0`.
pub(crate) fn parse_asn(s: &str) -> Option<u32> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split(['/', ',']).next().unwrap_or("");
    let digits = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .or_else(|| s.strip_prefix("As"))
        .unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|&a| a != 0)
}

/// Adds an annotation unless the hop has it already.
pub(crate) fn push_annotation(hop: &mut Hop, annotation: &str) {
    if !hop.annotations.iter().any(|a| a == annotation) {
        hop.annotations.push(annotation.to_string());
    }
}

/// Hops gathered by TTL (entries for the same TTL merge), in TTL order.
#[derive(Debug, Default)]
pub(crate) struct Hops(BTreeMap<u8, Hop>);

impl Hops {
    pub(crate) fn at(&mut self, ttl: u8) -> &mut Hop {
        self.0.entry(ttl).or_insert_with(|| empty_hop(ttl))
    }

    pub(crate) fn into_vec(self) -> Vec<Hop> {
        self.0.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_and_without_zone() {
        assert_eq!(parse_addr("192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(parse_addr("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_addr("fe80::1%eth0"), "fe80::1".parse().ok());
        assert_eq!(parse_addr("192.0.2.1%eth0"), None);
        assert_eq!(parse_addr("???"), None);
        assert_eq!(parse_addr("host.example"), None);
        assert_eq!(parse_addr(""), None);
    }

    #[test]
    fn hops_merge_by_ttl_and_keep_addresses_distinct() {
        let mut hops = Hops::default();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        push_addr(hops.at(3), a);
        push_addr(hops.at(1), b);
        push_addr(hops.at(3), b);
        push_addr(hops.at(3), a);
        push_annotation(hops.at(3), "!X");
        push_annotation(hops.at(3), "!X");
        let v = hops.into_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].ttl, 1);
        assert_eq!(v[1].addrs, vec![a, b]);
        assert_eq!(v[1].annotations, vec!["!X".to_string()]);
    }

    #[test]
    fn detection_tells_the_formats_apart() {
        let cases = [
            (
                "traceroute to x (192.0.2.1), 30 hops max\n",
                Format::TracerouteText,
            ),
            ("# pasted\n 3  192.0.2.1  1.0 ms\n", Format::TracerouteText),
            (r#"{"report":{"hubs":[]}}"#, Format::MtrJson),
            (r#"[{"report":{"hubs":[]}}]"#, Format::MtrJson),
            (r#"{"dst_addr":"192.0.2.1","result":[]}"#, Format::AtlasJson),
            (r#"{"type":"traceroute"}"#, Format::AtlasJson),
            ("[]", Format::AtlasJson),
            ("\u{feff}[]", Format::AtlasJson),
            (r#"{"kind":"ping","schema":1}"#, Format::TumenJsonLines),
        ];
        for (text, want) in cases {
            assert_eq!(detect(text, "t").expect(text), want, "{text}");
        }
    }

    #[test]
    fn detection_failures_list_the_formats_tried() {
        for text in [
            "",
            "  \n",
            "hello world\n",
            "{\"a\":1}",
            "[1]",
            "# only\n",
            "{",
        ] {
            let e = detect(text, "t").expect_err(text);
            assert!(e.what.contains("tried"), "{text}: {e}");
            assert!(e.what.contains("mtr --json"), "{text}: {e}");
        }
        let e = read_traces(r#"[{"kind":"trace","schema":1}]"#, "t").expect_err("array");
        assert!(e.what.contains("one JSON object per line"), "{e}");
        assert_eq!(e.origin, "t:1");
    }

    fn stream(bytes: &[u8], options: Options) -> (Result<Streamed, InputError>, Vec<Event>) {
        let mut events = Vec::new();
        let mut reader = std::io::BufReader::with_capacity(64, bytes);
        let r = read_stream(&mut reader, "s", options, &mut |e| {
            events.push(e);
            std::ops::ControlFlow::Continue(())
        });
        (r, events)
    }

    const ATLAS: &str = r#"{"dst_addr":"192.0.2.9","result":[{"hop":1,"result":[{"from":"192.0.2.1","rtt":1.0}]}]}"#;

    #[test]
    fn a_newline_delimited_dump_is_streamed_line_by_line_with_warnings_in_place() {
        let text = format!("\n{ATLAS}\n{{oops\n{ATLAS}\n\n{}\n", "x".repeat(100));
        let (r, events) = stream(text.as_bytes(), Options::default());
        let done = r.expect("read");
        assert!(done.streamed);
        assert_eq!(
            (done.format, done.traces, done.skipped),
            (Format::AtlasJson, 2, 2)
        );
        let kinds: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::Trace(t) => format!("trace {}", t.origin),
                Event::Skipped(e) => format!("skip {}", e.origin),
            })
            .collect();
        assert_eq!(kinds, ["trace s:2", "skip s:3", "trace s:4", "skip s:6"]);
        // Strict: the first fault.
        let (r, events) = stream(
            text.as_bytes(),
            Options {
                strict: true,
                ..Options::default()
            },
        );
        assert_eq!(r.expect_err("strict").origin, "s:3");
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_skipped_and_the_next_one_read() {
        let mut text = format!("{ATLAS}\n");
        text.push_str(&" ".repeat(MAX_LINE_BYTES + 10));
        text.push('\n');
        text.push_str(ATLAS);
        let (r, events) = stream(text.as_bytes(), Options::default());
        let done = r.expect("read");
        assert_eq!((done.traces, done.skipped), (2, 1));
        match &events[1] {
            Event::Skipped(e) => {
                assert_eq!(e.origin, "s:2");
                assert!(e.what.contains("longer than 16 MiB"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        match &events[2] {
            Event::Trace(t) => assert_eq!(t.origin, "s:3"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_inputs_are_read_whole_and_decoded() {
        let text = "traceroute to 192.0.2.9 (192.0.2.9), 30 hops max\n 1  192.0.2.9  1 ms\n";
        let (r, events) = stream(text.as_bytes(), Options::default());
        let done = r.expect("read");
        assert!(!done.streamed);
        assert_eq!((done.format, done.traces), (Format::TracerouteText, 1));
        assert_eq!(events.len(), 1);
        // A pretty-printed Atlas result is not line-delimited: read whole.
        let pretty = "{\n  \"dst_addr\": \"192.0.2.9\",\n  \"result\": []\n}\n";
        let done = stream(pretty.as_bytes(), Options::default())
            .0
            .expect("pretty");
        assert!(!done.streamed);
        // Invalid UTF-8 (a legacy code page) is replaced, not refused.
        let mut bytes = b"traceroute to 192.0.2.9 (192.0.2.9), 30 hops max\n".to_vec();
        bytes.extend_from_slice(b"# \xe4\xf6\xfc\n 1  192.0.2.9  1 ms\n");
        assert_eq!(
            stream(&bytes, Options::default())
                .0
                .expect("latin-1")
                .traces,
            1
        );
        assert_eq!(decode(b"\xfe\xff\x00a\x00b"), "ab");
        assert_eq!(decode(b"\xff\xfea\x00b\x00c"), "ab\u{fffd}");
        let (r, _) = stream(b"", Options::default());
        assert!(r.expect_err("empty").what.contains("empty input"));
    }
}
