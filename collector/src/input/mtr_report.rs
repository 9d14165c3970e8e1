//! `mtr --report` (`-r`) and `--report-wide` (`-w`) text, with or without
//! the `-z` AS column, `-b` (`name (address)`) or `-n`; also mtr's
//! interactive (curses) screen pasted as text.
//!
//! ```text
//! Start: 2024-05-01T10:00:00+0000
//! HOST: vp-fra                      Loss%   Snt   Last   Avg  Best  Wrst StDev
//!   1.|-- 192.0.2.1                  0.0%    10    0.3   0.4   0.3   0.6   0.1
//!   2. AS4837   198.51.100.7         0.0%    10    9.8  10.1   9.5  11.0   0.4
//! ```
//!
//! A report starts at `Start:` or `HOST:` (the source host; the target is
//! not printed in report mode, so it is taken from an `mtr ... TARGET`
//! command line before the report when there is one and it names an
//! address, otherwise left unset), at mtr's curses banner (`My traceroute
//! [v0.95]`, whose `src (addr) -> target (addr)` line gives the target),
//! or at a hop whose number does not follow on from the previous one (a
//! second report pasted without its header). Hop lines are `N.|-- HOST
//! stats` (`N. HOST stats` in very old versions, with `-z` and on the
//! curses screen, where an `AS4837`/`AS???` column precedes the host).
//! HOST is an address, `name (address)`, a bare name (the hop answered
//! but its address is not shown: `hidden`), `???` or `(waiting for
//! reply)`/`(no route to host)` (silent). More addresses of a
//! load-balanced hop follow on indented lines (`    |  `|-- 192.0.2.5`,
//! or the host alone); MPLS label lines are ignored. In a report that is
//! not `--report-wide`, mtr cuts hosts at 25 columns: an IPv6 address
//! that fills the column may be cut, so it is not trusted (the hop is
//! kept `hidden`, with a warning).
//!
//! Ignored silently: blank lines, the `mtr` command line and shell
//! prompt, `Start:`, `HOST:`, the curses banner, key and column header
//! lines. Any other line is skipped with a warning.

use std::borrow::Cow;
use std::net::IpAddr;

use super::{parse_addr, parse_asn, push_addr, push_asn, push_name, Format, Hops, Read};
use crate::model::{Hop, InputError, Trace};

/// How many lines sniffers look at.
pub(super) const SNIFF_LINES: usize = 2000;

/// A pasted line as the tool printed it: no byte order mark, carriage
/// return or forum quote marker (`> `), non-breaking spaces made spaces.
pub(super) fn clean(line: &str) -> Cow<'_, str> {
    let mut s = line.trim_start_matches('\u{feff}').trim_end_matches('\r');
    if s.trim_start().starts_with('>') {
        let t = s.trim_start().trim_start_matches('>');
        s = t.strip_prefix(' ').unwrap_or(t);
    }
    if s.contains(['\u{a0}', '\u{2007}', '\u{202f}', '\t']) {
        Cow::Owned(
            s.chars()
                .map(|c| match c {
                    '\u{a0}' | '\u{2007}' | '\u{202f}' | '\t' => ' ',
                    c => c,
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// Byte offsets where the lines of `text` start.
pub(super) fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Line number (1-based) of byte `at`, given [`line_starts`].
pub(super) fn line_number(starts: &[usize], at: usize) -> usize {
    starts.partition_point(|&s| s <= at).max(1)
}

/// How many warnings a JSON reader gives before it stops reading.
pub(super) const MAX_WARNINGS: usize = 1000;

/// `name:line: what` for a top-level JSON value that is not what a reader
/// wants, found without walking the text from its start again (inputs
/// of thousands of such values stay linear).
pub(super) fn top_level_error(
    doc: &super::json::Doc<'_>,
    starts: &[usize],
    what: &str,
) -> InputError {
    InputError {
        origin: format!(
            "{}:{}",
            doc.name,
            doc.line_base + line_number(starts, doc.start)
        ),
        what: format!(
            "expected {what} (an object), found {}",
            super::json::kind(&doc.value)
        ),
    }
}

/// A line quoted in a message: trimmed, at most 80 characters.
pub(super) fn quote(line: &str) -> String {
    let t = line.trim();
    let mut q: String = t.chars().take(80).collect();
    if q.len() < t.len() {
        q.push('…');
    }
    q
}

/// The arguments of a shell command line that runs one of `tools`
/// (`$ mtr -r 8.8.8.8`, `root@h:~# sudo mtr ...`, `mtr ...`), up to a
/// pipe or redirection; `None` when the line is not such a command.
pub(super) fn command_args<'a>(line: &'a str, tools: &[&str]) -> Option<Vec<&'a str>> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let at = tokens.iter().position(|t| {
        let base = t.rsplit(['/', '\\']).next().unwrap_or(t);
        let base = base.strip_suffix(".exe").unwrap_or(base);
        tools.contains(&base)
    })?;
    let before = tokens.get(..at)?;
    let prompt_like = |t: &&str| {
        t.ends_with(['$', '#', '%', '>', ':'])
            || t.contains('@')
            || matches!(*t, "sudo" | "doas" | "time" | "env" | "command" | "exec")
            || t.starts_with('[')
    };
    if before.len() > 4 || !before.iter().all(prompt_like) {
        return None;
    }
    let args = tokens
        .get(at + 1..)?
        .iter()
        .copied()
        .take_while(|t| !matches!(*t, "|" | ">" | ">>" | ";" | "&&" | "||" | "2>&1" | "&"))
        .collect();
    Some(args)
}

/// The destination of an `mtr` command line (when it is an address) and
/// whether it asks for a wide report.
fn mtr_command(args: &[&str]) -> (Option<IpAddr>, bool) {
    const VALUED_SHORT: &str = "aBcfFGiILmMoPQsyZ";
    const VALUED_LONG: [&str; 18] = [
        "--address",
        "--bitpattern",
        "--report-cycles",
        "--first-ttl",
        "--filename",
        "--gracetime",
        "--interval",
        "--interface",
        "--localport",
        "--max-ttl",
        "--mark",
        "--order",
        "--port",
        "--tos",
        "--psize",
        "--ipinfo",
        "--timeout",
        "--max-unknown",
    ];
    let mut wide = false;
    let mut host = None;
    let mut skip = false;
    let mut options_done = false;
    for arg in args {
        if skip {
            skip = false;
            continue;
        }
        if !options_done && *arg == "--" {
            options_done = true;
        } else if !options_done && arg.starts_with("--") {
            if *arg == "--report-wide" {
                wide = true;
            }
            skip = VALUED_LONG.contains(arg);
        } else if !options_done && arg.starts_with('-') && arg.len() > 1 {
            for (i, c) in arg.char_indices().skip(1) {
                if c == 'w' {
                    wide = true;
                }
                if VALUED_SHORT.contains(c) {
                    skip = i + c.len_utf8() == arg.len();
                    break;
                }
            }
        } else if host.is_none() {
            host = Some(*arg);
        }
    }
    let target = host.and_then(|h| {
        let h = h.trim_matches(['"', '\'']);
        parse_addr(h).or_else(|| parse_addr(h.trim_start_matches('[').trim_end_matches(']')))
    });
    (target, wide)
}

/// mtr's errors printed in place of a host (`(waiting for reply)`).
const HOST_ERRORS: [&str; 5] = [
    "waiting for reply",
    "no route to host",
    "no route to network",
    "host is down",
    "network is down",
];

/// What a report prints for a host.
#[derive(Debug, PartialEq)]
pub(super) enum Host<'a> {
    /// `???` or an mtr error: nobody answered.
    Silent,
    Addr(IpAddr),
    Named(&'a str, IpAddr),
    /// A name, a redacted address or a cut `name (addr`: something
    /// answered but its address is not shown.
    Hidden,
}

/// Reads a host as mtr prints it (`???`, an address, `name (address)`, a
/// name, `(error)`); `None` when it does not look like a host.
pub(super) fn parse_host(s: &str) -> Option<Host<'_>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "???" || s == "*" {
        return Some(Host::Silent);
    }
    if let Some(a) = parse_addr(s) {
        return Some(Host::Addr(a));
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        if HOST_ERRORS.contains(&inner.trim().to_ascii_lowercase().as_str()) {
            return Some(Host::Silent);
        }
        return match parse_addr(inner) {
            Some(a) => Some(Host::Addr(a)),
            // An author's `(internal network)`.
            None => Some(Host::Hidden),
        };
    }
    if let Some((name, rest)) = s.split_once(' ') {
        let rest = rest.trim();
        if !is_name(name) || !rest.starts_with('(') {
            return None;
        }
        let inner = rest.trim_start_matches('(');
        return match inner.strip_suffix(')').and_then(parse_addr) {
            Some(a) => Some(Host::Named(name, a)),
            // Cut by the report's column, or redacted.
            None if !inner.contains(' ') => Some(Host::Hidden),
            None => None,
        };
    }
    if is_redacted(s) || is_name(s) {
        return Some(Host::Hidden);
    }
    None
}

/// A host name as resolvers give it (`_gateway`, `ae2.cr1.example`).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().any(|c| c.is_alphabetic())
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// An address an author hid: `x.x.x.x`, `***.***.***.***`, `<redacted>`,
/// `192.168.x.x`, `[hidden]`.
pub(super) fn is_redacted(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    if ["redacted", "hidden", "removed", "censored", "masked"]
        .iter()
        .any(|w| l.contains(w))
        && s.len() <= 24
    {
        return true;
    }
    (l.contains('.') || l.contains(':'))
        && l.chars().any(|c| matches!(c, 'x' | '*' | '#'))
        && l.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | 'x' | '*' | '#'))
}

/// A token of a line with its byte span.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn tokens(line: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line
        .char_indices()
        .chain(std::iter::once((line.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                if let Some(text) = line.get(s..i) {
                    out.push(Tok {
                        text,
                        start: s,
                        end: i,
                    });
                }
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// A statistics column value: `0.0%`, `10`, `12.5`.
fn is_stat(t: &str) -> bool {
    let n = t.strip_suffix('%').unwrap_or(t);
    !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && n.bytes().any(|b| b.is_ascii_digit())
        && n.bytes().filter(|&b| b == b'.').count() <= 1
}

/// A hop line, split.
#[derive(Debug)]
struct HopLine<'a> {
    ttl: u8,
    /// `N.|-- host` (report) rather than `N. host` (old, `-z`, curses).
    arrow: bool,
    /// The AS column: `Some(None)` for `AS???`.
    asn: Option<Option<u32>>,
    host: Vec<Tok<'a>>,
    stats: Vec<Tok<'a>>,
    /// Byte column of the `.` after the hop number.
    dot: usize,
}

/// `  3.|-- host  stats` or `  3. AS64496  host  stats`; `None` when the
/// line does not start with a hop number and a dot.
fn hop_line(line: &str) -> Option<HopLine<'_>> {
    let lead = line.len() - line.trim_start().len();
    let rest = line.get(lead..)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let dot = lead + digits;
    if line.as_bytes().get(dot) != Some(&b'.') {
        return None;
    }
    let ttl = rest.get(..digits)?.parse::<u8>().ok().filter(|&t| t >= 1)?;
    let after = line.get(dot + 1..)?;
    let (arrow, body_at) = if after.starts_with("|--") {
        (true, dot + 4)
    } else if after.is_empty() || after.starts_with(' ') {
        (false, dot + 1)
    } else {
        return None;
    };
    let body = line.get(body_at..)?;
    let mut toks: Vec<Tok<'_>> = tokens(body)
        .into_iter()
        .map(|t| Tok {
            start: t.start + body_at,
            end: t.end + body_at,
            ..t
        })
        .collect();
    // An author's note after the hop.
    if let Some(k) = toks.iter().position(|t| {
        t.text.starts_with("<-") || t.text.starts_with('←') || t.text.starts_with("//")
    }) {
        toks.truncate(k);
    }
    let stats_at = toks
        .iter()
        .rposition(|t| !is_stat(t.text))
        .map_or(0, |i| i + 1);
    let stats = toks.split_off(stats_at);
    let mut asn = None;
    if !arrow && toks.len() >= 2 {
        if let Some(first) = toks.first() {
            if first.text.starts_with("AS")
                && (first.text.contains('?') || parse_asn(first.text).is_some())
            {
                asn = Some(parse_asn(first.text));
                toks.remove(0);
            }
        }
    }
    Some(HopLine {
        ttl,
        arrow,
        asn,
        host: toks,
        stats,
        dot,
    })
}

impl HopLine<'_> {
    fn host_text<'l>(&self, line: &'l str) -> &'l str {
        match (self.host.first(), self.host.last()) {
            (Some(a), Some(b)) => line.get(a.start..b.end).unwrap_or(""),
            _ => "",
        }
    }

    /// In a report that is not wide, the host fills its column up to the
    /// statistics, so it may have been cut.
    fn may_be_cut(&self) -> bool {
        let (Some(last), Some(loss)) = (self.host.last(), self.stats.first()) else {
            return false;
        };
        let Some(value) = loss.text.strip_suffix('%') else {
            return false;
        };
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        let width = if decimals >= 2 { 8 } else { 6 };
        let Some(field) = loss.end.checked_sub(width) else {
            return false;
        };
        let narrow = match field.checked_sub(self.dot) {
            Some(rel) if self.arrow => rel == 30,
            Some(rel) => matches!(rel, 30 | 39 | 44),
            None => false,
        };
        narrow && last.end >= field
    }
}

/// A trace being read.
struct Open {
    origin: String,
    target: Option<IpAddr>,
    hops: Hops,
    last_ttl: Option<u8>,
    has_header: bool,
    wide: bool,
}

impl Open {
    fn new(origin: String, target: Option<IpAddr>, wide: bool) -> Self {
        Self {
            origin,
            target,
            hops: Hops::default(),
            last_ttl: None,
            has_header: false,
            wide,
        }
    }

    fn finish(self) -> Trace {
        Trace {
            target: self.target,
            origin: self.origin,
            hops: self.hops.into_vec(),
        }
    }
}

/// Records a host on a hop; false when nothing could be recorded.
fn record(hop: &mut Hop, host: &Host<'_>, asn: Option<u32>) {
    match host {
        Host::Silent => {}
        Host::Addr(a) => {
            push_addr(hop, *a);
            if let Some(n) = asn {
                push_asn(hop, *a, n);
            }
        }
        Host::Named(name, a) => {
            push_addr(hop, *a);
            push_name(hop, *a, name);
            if let Some(n) = asn {
                push_asn(hop, *a, n);
            }
        }
        Host::Hidden => hop.hidden = true,
    }
}

/// How sure this reader is that `text` is an mtr report, 0..=100.
pub(crate) fn sniff(text: &str) -> u8 {
    let mut score = 0u8;
    for raw in text.lines().take(SNIFF_LINES) {
        let line = clean(raw);
        let t = line.trim();
        if t.starts_with("HOST:") && t.contains("Loss%") {
            return 95;
        }
        if t.starts_with("My traceroute") || t.starts_with("Keys:  Help") {
            score = score.max(90);
        } else if let Some(h) = hop_line(&line) {
            let has_loss = h.stats.iter().any(|s| s.text.ends_with('%'));
            if h.arrow && (has_loss || h.stats.is_empty()) {
                score = score.max(85);
            } else if has_loss && !h.host.is_empty() {
                score = score.max(40);
            }
        } else if t.starts_with("Start: ") && t.bytes().any(|b| b.is_ascii_digit()) {
            score = score.max(30);
        }
    }
    score
}

/// Every report in `text`; lines that cannot be read are skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::MtrReport);
    let mut open: Option<Open> = None;
    let mut pending: Option<(Option<IpAddr>, bool)> = None;
    // The line before was a hop or one of its extra lines.
    let mut in_hop = false;
    let mut banner_next = false;
    for (i, raw) in text.lines().enumerate() {
        let origin = format!("{name}:{}", i + 1);
        let line = clean(raw);
        let t = line.trim();
        let was_banner = std::mem::take(&mut banner_next);
        if t.is_empty() {
            continue;
        }
        if let Some(h) = hop_line(&line) {
            in_hop = true;
            let follows = open
                .as_ref()
                .is_some_and(|o| o.last_ttl.is_none_or(|l| h.ttl > l));
            if !follows {
                if let Some(o) = open.take() {
                    read.traces.push(o.finish());
                }
                let (target, wide) = pending.take().unwrap_or((None, false));
                open = Some(Open::new(origin.clone(), target, wide));
            }
            let Some(o) = open.as_mut() else { continue };
            o.last_ttl = Some(h.ttl);
            let host_text = h.host_text(&line);
            let hop = o.hops.at(h.ttl);
            match parse_host(host_text) {
                Some(Host::Addr(IpAddr::V6(_))) if !o.wide && h.may_be_cut() => {
                    hop.hidden = true;
                    read.skip(
                        origin,
                        format!(
                            "hop {}: `{host_text}` fills mtr's host column and may be cut \
                             (use --report-wide): address not used",
                            h.ttl
                        ),
                    );
                }
                Some(host) => record(hop, &host, h.asn.flatten()),
                None if host_text.is_empty() => read.skip(
                    origin,
                    format!("hop {}: no host on this line: `{}`", h.ttl, quote(t)),
                ),
                None => read.skip(
                    origin,
                    format!(
                        "hop {}: `{}` is not a host mtr prints",
                        h.ttl,
                        quote(host_text)
                    ),
                ),
            }
            continue;
        }
        if t.starts_with('|') || t.starts_with("[MPLS") {
            if t.contains("[MPLS") {
                continue;
            }
            // mtr prints the bare address there.
            let addr = t.split_once("|-- ").map(|(_, a)| a.trim()).and_then(|a| {
                parse_addr(a).or_else(|| a.split_whitespace().next().and_then(parse_addr))
            });
            match (addr, open.as_mut()) {
                (Some(a), Some(o)) if in_hop => {
                    if let Some(ttl) = o.last_ttl {
                        push_addr(o.hops.at(ttl), a);
                    }
                }
                _ => read.skip(
                    origin,
                    format!("not an address of the hop before: `{}`", quote(t)),
                ),
            }
            continue;
        }
        if in_hop && line.starts_with("   ") && t.split_whitespace().count() <= 3 {
            // Another address of the hop before, alone on its line (newer
            // reports, `-z`, curses).
            let mut host = t;
            let mut asn = None;
            if let Some((first, rest)) = t.split_once(' ') {
                if first.starts_with("AS") && (first.contains('?') || parse_asn(first).is_some()) {
                    asn = parse_asn(first);
                    host = rest.trim();
                }
            }
            if let (Some(h), Some(o)) = (parse_host(host), open.as_mut()) {
                if let Some(ttl) = o.last_ttl {
                    let hop = o.hops.at(ttl);
                    // A name alone says nothing new about a hop that has
                    // addresses.
                    if h != Host::Hidden || hop.addrs.is_empty() {
                        record(hop, &h, asn);
                    }
                }
                continue;
            }
        }
        in_hop = false;
        if t.starts_with("Start:") {
            if let Some(o) = open.take() {
                read.traces.push(o.finish());
            }
            let (target, wide) = pending.take().unwrap_or((None, false));
            open = Some(Open::new(origin, target, wide));
            continue;
        }
        if t.starts_with("HOST:") {
            let reuse = open
                .as_ref()
                .is_some_and(|o| !o.has_header && o.last_ttl.is_none());
            if !reuse {
                if let Some(o) = open.take() {
                    read.traces.push(o.finish());
                }
                let (target, wide) = pending.take().unwrap_or((None, false));
                open = Some(Open::new(origin, target, wide));
            }
            if let Some(o) = open.as_mut() {
                o.has_header = true;
            }
            continue;
        }
        if t.starts_with("My traceroute") {
            if let Some(o) = open.take() {
                read.traces.push(o.finish());
            }
            let (target, _) = pending.take().unwrap_or((None, false));
            let mut o = Open::new(origin, target, true);
            o.has_header = true;
            open = Some(o);
            banner_next = true;
            continue;
        }
        if let Some((_, to)) = t.split_once(" -> ").filter(|(from, _)| from.ends_with(')')) {
            // Curses: `src (addr) -> target (addr)   date`.
            let addr = to
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .and_then(|(a, _)| parse_addr(a))
                .or_else(|| to.split_whitespace().next().and_then(parse_addr));
            if let Some(o) = open.as_mut() {
                if o.target.is_none() {
                    o.target = addr;
                }
            }
            continue;
        }
        if was_banner
            || t.starts_with("Keys:")
            || (t.contains("Packets") && t.contains("Pings"))
            || (t.starts_with("Host") && t.contains("Loss%"))
        {
            continue;
        }
        if let Some(args) = command_args(t, &["mtr"]) {
            if open.as_ref().is_some_and(|o| o.last_ttl.is_some()) {
                if let Some(o) = open.take() {
                    read.traces.push(o.finish());
                }
            }
            pending = Some(mtr_command(&args));
            continue;
        }
        read.skip(
            origin,
            format!("not a line of an mtr report: `{}`", quote(t)),
        );
    }
    if let Some(o) = open.take() {
        read.traces.push(o.finish());
    }
    if read.traces.is_empty() && read.skipped.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no mtr report in input (no `HOST:` line or hop line)".into(),
        });
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn hosts_as_mtr_prints_them() {
        assert_eq!(parse_host("???"), Some(Host::Silent));
        assert_eq!(parse_host("(waiting for reply)"), Some(Host::Silent));
        assert_eq!(parse_host("192.0.2.1"), Some(Host::Addr(ip("192.0.2.1"))));
        assert_eq!(
            parse_host("gw.example (192.0.2.1)"),
            Some(Host::Named("gw.example", ip("192.0.2.1")))
        );
        assert_eq!(parse_host("gw.example (192.0.2."), Some(Host::Hidden));
        assert_eq!(parse_host("_gateway"), Some(Host::Hidden));
        assert_eq!(parse_host("x.x.x.x"), Some(Host::Hidden));
        assert_eq!(parse_host("(internal network)"), Some(Host::Hidden));
        assert_eq!(parse_host("here it dies"), None);
        assert_eq!(parse_host(""), None);
    }

    #[test]
    fn command_lines_give_target_and_width() {
        let args = command_args(
            "$ sudo mtr -rwzc 100 -a 192.0.2.9 8.8.8.8 | tee x",
            &["mtr"],
        )
        .expect("command");
        assert_eq!(mtr_command(&args), (Some(ip("8.8.8.8")), true));
        let args = command_args("root@h:~# mtr --report example.com", &["mtr"]).expect("cmd");
        assert_eq!(mtr_command(&args), (None, false));
        let args = command_args("mtr -c10 -r 2001:db8::1", &["mtr"]).expect("cmd");
        assert_eq!(mtr_command(&args), (Some(ip("2001:db8::1")), false));
        assert!(command_args("I ran mtr and it showed this", &["mtr"]).is_none());
    }

    #[test]
    fn hop_lines_split_into_columns() {
        let l = "  2. AS4837   198.51.100.7        0.0%    10    9.8  10.1   9.5  11.0   0.4";
        let h = hop_line(l).expect("hop");
        assert_eq!(h.ttl, 2);
        assert_eq!(h.asn, Some(Some(4837)));
        assert_eq!(h.host_text(l), "198.51.100.7");
        assert_eq!(h.stats.len(), 7);
        assert!(hop_line("  1.5 ms").is_none());
        assert!(hop_line("10.0.0.1 is my gateway").is_none());
    }

    #[test]
    fn a_full_width_ipv6_host_in_a_narrow_report_may_be_cut() {
        let line = |host: &str| format!("  3.|-- {host:<25}{:>6}{:>6}{:>6}", "0.0%", "10", "1.0");
        let cut = line("2001:db8:1234:5::abcd:ef0");
        assert!(hop_line(&cut).expect("hop").may_be_cut(), "{cut}");
        let short = line("2001:db8::1");
        assert!(!hop_line(&short).expect("hop").may_be_cut(), "{short}");
        // mtr 0.96 prints the loss with two decimals in a wider column.
        let new = format!(
            "  3.|-- {:<25}{:>8}{:>6}",
            "2001:db8:1234:5::abcd:ef0", "0.00%", "10"
        );
        assert!(hop_line(&new).expect("hop").may_be_cut(), "{new}");
    }
}
