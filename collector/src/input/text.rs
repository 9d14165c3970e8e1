//! `traceroute` text: the Linux `traceroute` package, inetutils, busybox,
//! BSD/macOS and JunOS, IPv4 and IPv6 (`traceroute6`), as people paste it.
//!
//! A header starts a trace and gives its target:
//!
//! ```text
//! traceroute to example.org (192.0.2.9), 30 hops max, 60 byte packets
//!  3  ae1.example.net (198.51.100.1) [AS64496]  9.822 ms !X  198.51.100.5  9.8 ms *
//! ```
//!
//! (`traceroute6 to ... from SRC, ...` too). Hop lines follow: `*` is a
//! lost probe; an address, or `name (address)`, is who answered the probes
//! after it; `0.5 ms` / `0.5ms` / `0.5 msec` is an RTT (a last RTT that
//! lost its `ms` is accepted); `!X`, `!H`, `!N`, `!P`, `!S`, `!F-1500`,
//! `!<10>`, ... are annotations, kept as printed. `[AS4837]` after an
//! address (Linux `-A`, `[AS4837/AS9929]` gives the first, `[*]` none),
//! `[AS  4837]` (JunOS `as-number-lookup`) and `[AS4837]` before a name
//! (BSD/macOS `-a`, it belongs to the address that follows) are the
//! trace's own AS annotations; `<MPLS:...>` (`-e`), `'-2'` (`--back`),
//! `F=1500` (`--mtu`) decorations and JunOS/paris `MPLS Label=...` lines
//! are ignored. A hop's probes may go on over following lines (BSD/macOS
//! print each new address of a hop on its own line; a terminal may wrap a
//! long line). Hop lines before any header, or whose number does not
//! follow on from the previous hop's, start an excerpt: a trace without
//! target.
//!
//! What authors do to a paste is forgiven: a redacted address or name
//! (`x.x.x.x`, `(internal network)`, `<redacted>`, `[REDACTED]`) makes a
//! hidden hop; `...` elides hops (they are absent); a note after a hop
//! (`<-- dies here`, `# my router`) is ignored; tabs, single spaces,
//! non-breaking spaces, CRLF and a leading `> ` quote marker are read.
//!
//! Skipped silently: blank lines, shell prompts and the command line
//! (`$ traceroute -A 8.8.8.8`, `[root@host ~]# ...`, `➜  sandbox ...`,
//! `C:\> ...`, a trailing `user@host:~$`), `traceroute:` warnings,
//! separator lines, code fences, JunOS `{master}`. Any other line (prose,
//! a title, ping output) is skipped with a warning; a line that starts
//! with a number but holds no address, `*`, redaction or named RTT
//! (`2 hops later it fails`) is prose, not a hop.

use std::net::IpAddr;

use super::{empty_hop, parse_addr, parse_asn, push_addr, push_annotation, push_asn, push_name};
use crate::model::{Hop, InputError, Trace};

/// How sure this reader is that `text` is traceroute text: a `traceroute
/// to ... hops max` header is near certain (80); hop lines alone are a
/// weak sign (20) that more specific formats override.
pub(crate) fn sniff(text: &str) -> u8 {
    let mut hops = 0;
    for line in text.lines().take(2000) {
        let line = clean_line(line);
        let t = line.trim();
        if header_rest(t).is_some() && t.contains("hops max") {
            return 80;
        }
        if hop_start(t).is_some_and(|h| h.hoplike) {
            hops += 1;
        }
    }
    if hops > 0 {
        20
    } else {
        0
    }
}

/// Every trace in `text`, leniently: unreadable lines become warnings.
pub(crate) fn read(text: &str, name: &str) -> Result<super::Read, InputError> {
    let mut read = super::Read::new(super::Format::TracerouteText);
    let (traces, skipped) = read_all(text, name);
    read.skipped = skipped;
    if traces.is_empty() {
        return Err(read.skipped.into_iter().next().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no traceroute: no `traceroute to` header and no hop line".to_string(),
        }));
    }
    read.traces = traces;
    Ok(read)
}

/// Reads every trace in traceroute text, strictly: the first line that
/// cannot be read is the error.
pub fn read_traceroute_text(text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    let (traces, skipped) = read_all(text, name);
    if let Some(first) = skipped.into_iter().next() {
        return Err(first);
    }
    if traces.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no traceroute: no `traceroute to` header and no hop line".to_string(),
        });
    }
    Ok(traces)
}

/// A hop line and its continuation lines, not yet parsed.
enum Pending {
    Hop {
        line: usize,
        ttl: u8,
        /// (line number, token).
        tokens: Vec<(usize, String)>,
    },
    /// A hop line that was refused: its continuation lines go with it.
    Dropped,
}

struct State<'n> {
    name: &'n str,
    traces: Vec<Trace>,
    skipped: Vec<InputError>,
    current: Option<Trace>,
    pending: Option<Pending>,
}

impl State<'_> {
    fn warn(&mut self, line: usize, what: String) {
        self.skipped.push(InputError {
            origin: format!("{}:{line}", self.name),
            what,
        });
    }

    fn flush(&mut self) {
        if let Some(Pending::Hop { line, ttl, tokens }) = self.pending.take() {
            if tokens.is_empty() {
                self.warn(line, format!("hop {ttl}: nothing after the hop number"));
                return;
            }
            let toks: Vec<(usize, &str)> = tokens.iter().map(|(n, s)| (*n, s.as_str())).collect();
            let (hop, warnings) = parse_hop(ttl, &toks);
            for (line, what) in warnings {
                self.warn(line, what);
            }
            if let Some(trace) = self.current.as_mut() {
                trace.hops.push(hop);
            }
        }
    }

    fn finish(&mut self) {
        self.flush();
        self.traces.extend(self.current.take());
    }
}

fn read_all(text: &str, name: &str) -> (Vec<Trace>, Vec<InputError>) {
    let text = super::strip_bom(text);
    let mut st = State {
        name,
        traces: Vec::new(),
        skipped: Vec::new(),
        current: None,
        pending: None,
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = clean_line(raw);
        let t = line.trim();
        if t.is_empty() {
            st.flush();
            continue;
        }
        if let Some(rest) = header_rest(t).filter(|_| is_header(t)) {
            st.finish();
            let target = match parse_header(rest) {
                Ok(target) => target,
                Err(what) => {
                    st.warn(n, what);
                    None
                }
            };
            st.current = Some(Trace {
                target,
                origin: format!("{name}:{n}"),
                hops: Vec::new(),
            });
            continue;
        }
        if is_elision(t) {
            st.flush();
            continue;
        }
        if is_mpls_line(t) {
            continue;
        }
        if let Some(start) = hop_start(t).filter(|h| h.hoplike || h.rest.is_empty()) {
            st.flush();
            if start.elided {
                continue;
            }
            let ttl = match ttl_of(start.number) {
                Ok(ttl) => ttl,
                Err(what) => {
                    st.warn(n, what);
                    st.pending = Some(Pending::Dropped);
                    continue;
                }
            };
            let follows_on = st
                .current
                .as_ref()
                .is_some_and(|t| t.hops.last().is_none_or(|h| h.ttl < ttl));
            if !follows_on {
                // An excerpt without header, or a hop number that does not
                // follow on: a new trace without target.
                st.traces.extend(st.current.take());
                st.current = Some(Trace {
                    target: None,
                    origin: format!("{name}:{n}"),
                    hops: Vec::new(),
                });
            }
            st.pending = Some(Pending::Hop {
                line: n,
                ttl,
                tokens: start.rest.iter().map(|s| (n, s.to_string())).collect(),
            });
            continue;
        }
        if is_noise(t) {
            st.flush();
            continue;
        }
        match st.pending.as_mut() {
            Some(Pending::Hop { tokens, .. }) if is_continuation(t) => {
                tokens.extend(split_tokens(t).into_iter().map(|s| (n, s.to_string())));
            }
            Some(Pending::Dropped) if is_continuation(t) => {}
            _ => st.warn(
                n,
                format!(
                    "not traceroute output: expected a `traceroute to` header or a hop line, \
                     got {t:?}"
                ),
            ),
        }
    }
    st.finish();
    (st.traces, st.skipped)
}

// ---------------------------------------------------------------------
// Lines (shared with the other text readers of this family).

/// A line as read: non-breaking and other wide spaces made plain, a
/// leading `> ` quote marker (e-mail, forum) removed.
pub(super) fn clean_line(line: &str) -> String {
    let mut s: String = line
        .chars()
        .map(|c| match c {
            '\u{a0}' | '\u{2007}' | '\u{202f}' | '\u{3000}' | '\u{feff}' => ' ',
            c => c,
        })
        .collect();
    loop {
        let t = s.trim_start();
        match t.strip_prefix('>') {
            Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t', '>']) => {
                s = rest.to_string();
            }
            _ => break,
        }
    }
    s
}

/// Tokens of a line: whitespace-separated, with `(addr)[AS1]` (no space,
/// libparistraceroute) split in two.
pub(super) fn split_tokens(t: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for tok in t.split_whitespace() {
        let mut rest = tok;
        while let Some(k) = rest.find(")[") {
            let (a, b) = rest.split_at(k + 1);
            out.push(a);
            rest = b;
        }
        out.push(rest);
    }
    out
}

/// What follows `traceroute to ` in a header line.
fn header_rest(t: &str) -> Option<&str> {
    ["traceroute to ", "traceroute6 to "]
        .iter()
        .find_map(|p| t.strip_prefix(p))
}

/// A header, not prose that happens to begin `traceroute to`.
fn is_header(t: &str) -> bool {
    t.contains("hops max") || t.contains('(')
}

/// The target of a header: the address in parentheses, or the host
/// itself when it is an address and no parentheses follow.
fn parse_header(rest: &str) -> Result<Option<IpAddr>, String> {
    let mut tokens = rest.split_whitespace();
    let host = tokens.next().unwrap_or("").trim_end_matches(',');
    match tokens.next() {
        Some(t) if t.starts_with('(') => {
            let inner = t.trim_end_matches(',');
            let addr = inner
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .and_then(parse_addr);
            match addr {
                Some(a) => Ok(Some(a)),
                None => Err(format!(
                    "header: `{inner}` is not a destination address in parentheses"
                )),
            }
        }
        _ => Ok(parse_addr(host)),
    }
}

/// `...`, `…`, `[...]`, `(snip)`: the author left hops out.
pub(super) fn is_elision(t: &str) -> bool {
    let inner = t
        .trim_start_matches(['[', '(', '<'])
        .trim_end_matches([']', ')', '>'])
        .trim();
    (!inner.is_empty() && inner.chars().all(|c| c == '.' || c == '…') && inner.len() >= 2)
        || inner == "…"
        || inner.eq_ignore_ascii_case("snip")
        || inner.eq_ignore_ascii_case("snipped")
}

/// `MPLS Label=299808 CoS=0 TTL=1 S=1` (JunOS), `MPLS Label 24703 TTL=254`
/// (paris-traceroute), `[MPLS: Label 24004 Exp 0]`: extension lines.
pub(super) fn is_mpls_line(t: &str) -> bool {
    let lower = t.get(..5).map(str::to_ascii_lowercase);
    let bracket = t.get(..6).map(str::to_ascii_lowercase);
    lower.as_deref() == Some("mpls ")
        || lower.as_deref() == Some("mpls:")
        || matches!(
            bracket.as_deref(),
            Some("[mpls:" | "<mpls:" | "[mpls " | "<mpls ")
        )
}

/// Lines that are recognised as not hops and skipped silently: tool
/// messages, shell prompts and command lines, separators, code fences,
/// JunOS `{master}`, `^C`.
pub(super) fn is_noise(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("traceroute:")
        || lower.starts_with("traceroute6:")
        || lower.starts_with("warning:")
        || lower.starts_with("```")
        || lower.starts_with("~~~")
        || t == "^C"
    {
        return true;
    }
    if t.starts_with('#') {
        // A comment, or a root prompt and its command.
        return true;
    }
    if t.starts_with('{') && t.ends_with('}') && !t.contains(' ') {
        return true;
    }
    if t.chars().count() >= 3
        && t.chars().all(|c| {
            c.is_whitespace() || "-=_~*#+|`:.".contains(c) || ('\u{2500}'..='\u{257f}').contains(&c)
        })
    {
        return true;
    }
    is_prompt_or_command(t)
}

/// The commands whose command line may precede a paste.
const COMMANDS: &[&str] = &[
    "traceroute",
    "traceroute6",
    "tracepath",
    "tracepath6",
    "tcptraceroute",
    "paris-traceroute",
    "mtr",
    "nexttrace",
    "nxtrace",
    "besttrace",
    "tracert",
    "ping",
    "ping6",
    "sudo",
    "doas",
    "ripe-atlas",
];

/// A shell prompt with or without the command after it: `$ traceroute x`,
/// `[root@host ~]# traceroute x`, `➜  sandbox traceroute x`,
/// `user@host:~$`, `C:\>`, `router> traceroute as-number-lookup x`.
pub(super) fn is_prompt_or_command(t: &str) -> bool {
    let tokens: Vec<&str> = t.split_whitespace().collect();
    let prompt_like = |p: &str| {
        p.ends_with(['$', '#', '%', '>', '»', '❯', '➜', 'λ', '→'])
            || p.starts_with(['➜', '❯', 'λ', '→', '»'])
    };
    for (k, tok) in tokens.iter().enumerate().take(5) {
        let base = tok.rsplit(['/', '\\']).next().unwrap_or(tok);
        let base = base.trim_end_matches(".exe");
        // `PING host (addr) 56(84) bytes of data.` is ping's output.
        let shouting = base.len() > 1 && !base.bytes().any(|b| b.is_ascii_lowercase());
        if !shouting && COMMANDS.contains(&base.to_ascii_lowercase().as_str()) {
            return tokens
                .get(..k)
                .is_some_and(|p| p.is_empty() || p.iter().any(|p| prompt_like(p)));
        }
    }
    // A prompt alone (after the last hop).
    tokens.len() <= 3
        && t.ends_with(['$', '#', '%', '>'])
        && (t.len() <= 2 || t.contains(['@', ':', '\\', '~']))
}

/// The start of a hop line: its number, the tokens after it, and whether
/// they look like a hop (an address, `*`, a redaction, `name (..)` or a
/// named RTT) rather than prose that starts with a number.
pub(super) struct HopStart<'a> {
    pub(super) number: &'a str,
    pub(super) rest: Vec<&'a str>,
    pub(super) hoplike: bool,
    /// `5  ...`: an elided hop.
    pub(super) elided: bool,
}

pub(super) fn hop_start(t: &str) -> Option<HopStart<'_>> {
    let mut tokens = split_tokens(t).into_iter();
    let number = tokens.next()?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest: Vec<&str> = tokens.collect();
    let elided = rest.len() == 1 && rest.first().is_some_and(|r| is_elision(r));
    let hoplike = elided || hoplike(&rest);
    Some(HopStart {
        number,
        rest,
        hoplike,
        elided,
    })
}

/// Whether the tokens after a hop number start like a hop.
fn hoplike(rest: &[&str]) -> bool {
    let Some(&f) = rest.first() else {
        return false;
    };
    let s = rest.get(1).copied();
    if is_star(f)
        || parse_addr(f).is_some()
        || is_redaction(f).is_some()
        || f.starts_with("[AS")
        || f.starts_with("[as")
        || f == "[*]"
    {
        return true;
    }
    if let Some(inner) = f.strip_prefix('(') {
        let inner = inner.trim_end_matches(')');
        return parse_addr(inner).is_some() || is_redaction(inner).is_some();
    }
    let Some(s) = s else {
        return false;
    };
    if let Some(inner) = s.strip_prefix('(') {
        let inner = inner.trim_end_matches(')');
        return hostname_like(f)
            || parse_addr(inner).is_some()
            || is_redaction(inner).is_some()
            || redaction_word(inner);
    }
    hostname_like(f) && (rtt_value(s) || s.strip_suffix("ms").is_some_and(rtt_value))
}

/// A line that goes on with the hop above: another address of the hop
/// (BSD/macOS), or the rest of a line the terminal wrapped.
pub(super) fn is_continuation(t: &str) -> bool {
    let tokens = split_tokens(t);
    let Some(&f) = tokens.first() else {
        return false;
    };
    let s = tokens.get(1).copied();
    is_star(f)
        || f == "ms"
        || f == "msec"
        || (f.starts_with('!') && f.len() > 1)
        || f.starts_with("[AS")
        || f == "[*]"
        || f.starts_with("<MPLS")
        || (rtt_value(f) && matches!(s, Some("ms" | "msec")))
        || f.strip_suffix("ms").is_some_and(rtt_value)
        || hoplike(&tokens)
}

/// A hop number as a TTL.
pub(super) fn ttl_of(number: &str) -> Result<u8, String> {
    match number
        .parse::<u16>()
        .ok()
        .and_then(|v| u8::try_from(v).ok())
    {
        Some(t) if t >= 1 => Ok(t),
        _ => Err(format!("hop number {number} is outside 1..=255")),
    }
}

// ---------------------------------------------------------------------
// Tokens.

fn is_star(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c == '*')
}

/// A number as traceroute prints RTTs: digits and dots, or paris-traceroute's
/// `min/avg/max/stddev`.
pub(super) fn rtt_value(t: &str) -> bool {
    !t.is_empty()
        && t.split('/').all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && p.parse::<f64>().is_ok()
        })
}

/// An RTT unit.
fn is_ms(t: &str) -> bool {
    matches!(t, "ms" | "msec" | "msecs" | "ms," | "ms.")
}

/// A host name as traceroute prints it (with `http://` that web pages
/// add, which is dropped).
fn hostname_like(t: &str) -> bool {
    let t = strip_scheme(t);
    !t.is_empty()
        && t.chars().any(|c| c.is_ascii_alphabetic())
        && t.contains(['.', '-', '_'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
}

fn strip_scheme(t: &str) -> &str {
    t.strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .unwrap_or(t)
}

/// Words authors put in place of an address.
fn redaction_word(s: &str) -> bool {
    let s = s
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_lowercase();
    matches!(
        s.as_str(),
        "redacted"
            | "hidden"
            | "removed"
            | "censored"
            | "masked"
            | "internal"
            | "private"
            | "anonymized"
            | "anonymised"
            | "obfuscated"
            | "my-ip"
            | "myip"
            | "my_ip"
            | "internal network"
            | "private network"
            | "ip removed"
            | "ip redacted"
    )
}

/// How an address was redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Redaction {
    /// `x.x.x.x`, `<redacted>`, `[REDACTED]`, `(internal network)`.
    Full,
    /// `192.0.2.x`, `202.97.x.x`: part of the address is left.
    Partial,
}

/// A token (or bracketed words) standing for a redacted address.
pub(super) fn is_redaction(t: &str) -> Option<Redaction> {
    let inner = t
        .trim_start_matches(['(', '[', '<'])
        .trim_end_matches([')', ']', '>', ',']);
    if inner.is_empty() {
        return None;
    }
    if redaction_word(inner) {
        return Some(Redaction::Full);
    }
    let masked = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| matches!(c, 'x' | 'X' | '*' | '#' | '?' | '_'))
    };
    let parts: Vec<&str> = inner.split('.').collect();
    if parts.len() == 4 {
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let letter = |p: &str| p.len() == 1 && p.bytes().all(|b| b.is_ascii_lowercase());
        if parts.iter().all(|p| masked(p) || letter(p)) && !parts.iter().all(|p| digits(p)) {
            return Some(Redaction::Full);
        }
        if parts.iter().all(|p| masked(p) || digits(p)) && parts.iter().any(|p| masked(p)) {
            return Some(Redaction::Partial);
        }
        return None;
    }
    // IPv6 with masked groups: `2001:db8:xxxx::1`, `xxxx:xxxx::`.
    if inner.contains(':') && inner.matches(':').count() >= 2 {
        let groups: Vec<&str> = inner.split(':').collect();
        let hex = |g: &str| g.chars().all(|c| c.is_ascii_hexdigit());
        let masked_group =
            |g: &str| !g.is_empty() && g.chars().all(|c| matches!(c, 'x' | 'X' | '*'));
        if groups.iter().all(|g| hex(g) || masked_group(g))
            && groups.iter().any(|g| masked_group(g))
        {
            return Some(if groups.iter().all(|g| g.is_empty() || masked_group(g)) {
                Redaction::Full
            } else {
                Redaction::Partial
            });
        }
    }
    None
}

/// The tokens from `i` up to the one (on the same line) that ends with
/// `close`, joined with spaces; with the index after it.
fn group(tokens: &[(usize, &str)], i: usize, close: char) -> Option<(String, usize)> {
    let line = tokens.get(i)?.0;
    let mut words = Vec::new();
    for (k, &(l, t)) in tokens.iter().enumerate().skip(i) {
        if l != line {
            return None;
        }
        words.push(t);
        if t.trim_end_matches([',', ';']).ends_with(close) {
            return Some((words.join(" "), k + 1));
        }
    }
    None
}

/// The index of the first token on a later line than token `i`'s.
fn next_line(tokens: &[(usize, &str)], i: usize) -> usize {
    let line = tokens.get(i).map(|x| x.0);
    tokens
        .iter()
        .skip(i)
        .position(|x| Some(x.0) != line)
        .map_or(tokens.len(), |k| k + i)
}

/// Adds an address with the name before it and a BSD `[ASn]` before that.
fn add(hop: &mut Hop, a: IpAddr, name: Option<&str>, asn: &mut Option<Option<u32>>) {
    push_addr(hop, a);
    if let Some(n) = name {
        let n = strip_scheme(n);
        if parse_addr(n) != Some(a) {
            push_name(hop, a, n);
        }
    }
    if let Some(Some(asn)) = asn.take() {
        push_asn(hop, a, asn);
    }
}

/// Parses the tokens of one hop (after its number): the hop, and
/// warnings `(line, why)` for tokens that could not be read.
pub(super) fn parse_hop(ttl: u8, tokens: &[(usize, &str)]) -> (Hop, Vec<(usize, String)>) {
    let mut hop = empty_hop(ttl);
    let mut warnings: Vec<(usize, String)> = Vec::new();
    if tokens.is_empty() {
        return (hop, warnings);
    }
    let mut i = 0;
    // The address just read (an `[ASn]` that follows belongs to it).
    let mut just_addr: Option<IpAddr> = None;
    // BSD `-a`: `[ASn]` before the name; for the next address.
    let mut asn_ahead: Option<Option<u32>> = None;
    let mut name_ahead: Option<&str> = None;
    let mut saw_ms = false;
    while let Some(&(line, t)) = tokens.get(i) {
        let next = tokens.get(i + 1).map(|x| x.1);
        let last_on_line = tokens.get(i + 1).is_none_or(|x| x.0 != line);
        let first_on_line = i == 0 || tokens.get(i - 1).is_some_and(|x| x.0 != line);
        i += 1;
        // A note after the hop: the rest of its line.
        if t.starts_with("<-") || t.starts_with('←') || t.starts_with('#') || t.starts_with("//")
        {
            i = next_line(tokens, i - 1);
            continue;
        }
        if is_star(t) {
            just_addr = None;
            name_ahead = None;
            continue;
        }
        if is_elision(t) {
            continue;
        }
        if let Some(ann) = t.strip_prefix('!') {
            // A bare `!` (an ICMP error libparistraceroute does not name)
            // says nothing more.
            if !ann.is_empty() {
                push_annotation(&mut hop, t);
            }
            continue;
        }
        // `[AS4837]`, `[AS4837/AS9929]`, `[*]`, JunOS `[AS  4837]`.
        if t.starts_with("[AS") || t.starts_with("[as") || t == "[*]" {
            let (s, after) = group(tokens, i - 1, ']').unwrap_or((t.to_string(), i));
            i = after;
            let asn = parse_asn(&s.replace(' ', ""));
            match just_addr {
                Some(a) => {
                    if let Some(asn) = asn {
                        push_asn(&mut hop, a, asn);
                    }
                }
                None => asn_ahead = Some(asn),
            }
            continue;
        }
        // `AS4837` as a column after the address (ripe-atlas, NextTrace).
        let column_asn = t.strip_prefix("AS").and_then(parse_asn);
        if let (Some(a), Some(asn)) = (just_addr, column_asn) {
            push_asn(&mut hop, a, asn);
            continue;
        }
        if let Some(r) = is_redaction(t).filter(|_| !t.starts_with('(')) {
            hop.hidden = true;
            just_addr = None;
            name_ahead = None;
            if r == Redaction::Partial {
                warnings.push((
                    line,
                    format!("hop {ttl}: `{t}` is a partly redacted address: read as hidden"),
                ));
            }
            continue;
        }
        // `<MPLS:L=16,E=0,S=1,T=1>`, `[...]`, `{1234}`, possibly spread
        // over several tokens.
        let close = match t.chars().next() {
            Some('<') => Some('>'),
            Some('[') => Some(']'),
            Some('{') => Some('}'),
            _ => None,
        };
        if let Some(close) = close {
            match group(tokens, i - 1, close) {
                Some((_, after)) => i = after,
                None => {
                    warnings.push((line, format!("hop {ttl}: `{t}` is not closed by `{close}`")));
                    i = next_line(tokens, i - 1);
                }
            }
            continue;
        }
        if t.starts_with('\'') || t.starts_with("F=") || t == "=" {
            continue;
        }
        if rtt_value(t) {
            just_addr = None;
            if next.is_some_and(is_ms) {
                i += 1;
                saw_ms = true;
            } else if !(last_on_line && saw_ms) {
                warnings.push((
                    line,
                    format!("hop {ttl}: RTT `{t}` is not followed by `ms`"),
                ));
            }
            continue;
        }
        if t.strip_suffix("msec")
            .or_else(|| t.strip_suffix("ms"))
            .is_some_and(rtt_value)
        {
            just_addr = None;
            saw_ms = true;
            continue;
        }
        if is_ms(t) && first_on_line && i > 1 {
            // The unit of an RTT the terminal wrapped.
            continue;
        }
        if t.starts_with('(') {
            let (inner, after) = match group(tokens, i - 1, ')') {
                Some((s, after)) => (s, after),
                None => (t.to_string(), i),
            };
            i = after;
            let inner = inner
                .trim_start_matches('(')
                .trim_end_matches(',')
                .trim_end_matches(')');
            if let Some(a) = parse_addr(inner) {
                add(&mut hop, a, name_ahead.take(), &mut asn_ahead);
                just_addr = Some(a);
                continue;
            }
            name_ahead = None;
            match is_redaction(inner) {
                Some(Redaction::Full) => hop.hidden = true,
                Some(Redaction::Partial) => {
                    hop.hidden = true;
                    warnings.push((
                        line,
                        format!(
                            "hop {ttl}: `({inner})` is not an address in parentheses (a partly \
                             redacted address: read as hidden)"
                        ),
                    ));
                }
                None => warnings.push((
                    line,
                    format!("hop {ttl}: `({inner})` is not an address in parentheses"),
                )),
            }
            continue;
        }
        if next.is_some_and(|n| n.starts_with('(')) && tokens.get(i).is_some_and(|x| x.0 == line) {
            // A host name; its address follows in parentheses.
            name_ahead = Some(t);
            continue;
        }
        if let Some(a) = parse_addr(t) {
            add(&mut hop, a, None, &mut asn_ahead);
            just_addr = Some(a);
            continue;
        }
        if hostname_like(t)
            && next.is_some_and(|n| rtt_value(n) || n.strip_suffix("ms").is_some_and(rtt_value))
        {
            // A name without its address: something answered, unnamed.
            hop.hidden = true;
            continue;
        }
        // Unknown. Words to the end of the line are one note.
        let end = next_line(tokens, i - 1);
        let rest: Vec<&str> = tokens
            .get(i - 1..end)
            .unwrap_or_default()
            .iter()
            .map(|x| x.1)
            .collect();
        let wordy = rest.iter().all(|w| {
            parse_addr(w).is_none() && !rtt_value(w) && !is_star(w) && !w.starts_with('!')
        });
        if wordy && rest.len() > 1 {
            warnings.push((
                line,
                format!(
                    "hop {ttl}: unexpected `{}` (a note? ignored)",
                    rest.join(" ")
                ),
            ));
            i = end;
        } else {
            warnings.push((
                line,
                format!(
                    "hop {ttl}: unexpected `{t}` (expected an address, `name (address)`, an RTT \
                     in ms, `*` or an annotation such as `!X`)"
                ),
            ));
        }
    }
    (hop, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn hop(line: &str) -> (Hop, Vec<(usize, String)>) {
        let toks: Vec<(usize, &str)> = split_tokens(line).into_iter().map(|t| (7, t)).collect();
        parse_hop(5, &toks)
    }

    fn ok(line: &str) -> Hop {
        let (h, w) = hop(line);
        assert!(w.is_empty(), "{line}: {w:?}");
        h
    }

    #[test]
    fn hop_starts_tell_hops_from_prose() {
        for line in [
            " 1  192.0.2.1  0.5 ms",
            "12  * * *",
            " 3  gw.example (192.0.2.1)  1 ms",
            " 3  dsldevice (192.168.1.254)  1 ms",
            " 2  Internal (Internal)  0.894 ms",
            " 1  [AS128742] 192.168.0.1 (192.168.0.1)  9.173 ms",
            " 4  xxx.xxx.xxx.xxx  3 ms",
            " 4  <redacted>  3 ms",
            " 4  (internal network)  3 ms",
            " 5  core1.example.net  3.1 ms",
        ] {
            assert!(hop_start(line.trim()).is_some_and(|h| h.hoplike), "{line}");
        }
        for line in [
            "2 hops later it fails",
            "3 retries to 192.0.2.1 failed",
            "64 bytes from 198.18.177.15: icmp_seq=1 ttl=60 time=33.1 ms",
            "10 minutes later: 8.8.8.8 works",
            "  1    <1 ms    <1 ms    <1 ms  192.168.1.1",
            "1   0.50 ms 192.168.1.1",
        ] {
            assert!(!hop_start(line.trim()).is_some_and(|h| h.hoplike), "{line}");
        }
        assert!(hop_start("  1:  _gateway  0.5ms").is_none());
        assert!(hop_start(" 6  ...").is_some_and(|h| h.elided));
    }

    #[test]
    fn prompts_commands_and_noise() {
        for line in [
            "$ traceroute -A 8.8.8.8",
            "[root@host ~]# traceroute example.org",
            "➜  sandbox traceroute 175.45.176.80",
            "user@host:~$ traceroute -n 192.0.2.1",
            "C:\\> tracert 192.0.2.1",
            "jemurray@eps-l29-wu-rt-0> traceroute as-number-lookup 198.124.238.66",
            "sudo traceroute -I 1.1.1.1",
            "/usr/sbin/traceroute 1.1.1.1",
            "user@host:~$",
            "[root@host ~]#",
            "$",
        ] {
            assert!(is_noise(line), "{line}");
        }
        for line in [
            "traceroute: Warning: multiple interfaces",
            "----------",
            "```",
            "```text",
            "{master}",
            "# my note",
        ] {
            assert!(is_noise(line), "{line}");
        }
        for line in [
            "I ran traceroute and it failed",
            "Here is the output:",
            "PING 1.1.1.1 (1.1.1.1) 56(84) bytes of data.",
        ] {
            assert!(!is_noise(line), "{line}");
        }
        assert!(is_elision("..."));
        assert!(is_elision("[...]"));
        assert!(is_elision("(snip)"));
        assert!(is_elision("…"));
        assert!(!is_elision("."));
        assert!(is_mpls_line("MPLS Label=299808 CoS=0 TTL=1 S=1"));
        assert!(is_mpls_line("[MPLS: Label 24004 Exp 0]"));
        assert_eq!(clean_line("> > 1\u{a0}x"), " 1 x");
    }

    #[test]
    fn headers_give_the_target() {
        assert_eq!(
            parse_header("h.example (192.0.2.9), 30 hops max, 60 byte packets"),
            Ok(Some(ip("192.0.2.9")))
        );
        assert_eq!(
            parse_header("2001:db8::9 (2001:db8::9) from 2001:db8::1, 64 hops max"),
            Ok(Some(ip("2001:db8::9")))
        );
        assert_eq!(
            parse_header("192.0.2.9, 30 hops max"),
            Ok(Some(ip("192.0.2.9")))
        );
        assert_eq!(parse_header("h.example, 30 hops max"), Ok(None));
        assert_eq!(parse_header(""), Ok(None));
        assert!(parse_header("h.example (nope), 30 hops max").is_err());
    }

    #[test]
    fn hop_tokens() {
        let h = ok("a.example (192.0.2.1)  1.0 ms !X 192.0.2.2  2.0ms !<10> * !X");
        assert_eq!(h.ttl, 5);
        assert_eq!(h.addrs, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
        assert_eq!(h.annotations, vec!["!X", "!<10>"]);
        assert_eq!(h.name_of(ip("192.0.2.1")), Some("a.example"));
        let h = ok("192.0.2.1 <MPLS:L=16,E=0,S=1,T=1> [AS64496] F=1500 1 ms '-2'");
        assert_eq!(h.addrs, vec![ip("192.0.2.1")]);
        assert_eq!(h.asn_of(ip("192.0.2.1")), Some(64496));
        assert!(h.annotations.is_empty());
        let h = ok("192.0.2.1 (192.0.2.1) 1.5 ms");
        assert_eq!(h.addrs, vec![ip("192.0.2.1")]);
        assert!(h.names.is_empty());
        let h = ok("* * *");
        assert!(h.addrs.is_empty() && !h.hidden);
        let h = ok("<INC: a b> 192.0.2.1 1.5 ms");
        assert_eq!(h.addrs, vec![ip("192.0.2.1")]);
        // JunOS `[AS  19782]`; BSD `-a` before the name; `[*]`, `[AS0]`.
        let h = ok("x.example (192.0.2.1) [AS  19782]  11.2 ms");
        assert_eq!(h.asn_of(ip("192.0.2.1")), Some(19782));
        let h = ok("[AS4837] x.example (192.0.2.1) 1 ms [AS0] 192.0.2.2 (192.0.2.2) 2 ms");
        assert_eq!(h.asns, vec![(ip("192.0.2.1"), 4837)]);
        let h = ok("192.0.2.1 (192.0.2.1) [*] 1 ms 192.0.2.2 (192.0.2.2) [AS4837/AS9929] 1 ms");
        assert_eq!(h.asns, vec![(ip("192.0.2.2"), 4837)]);
        // libparistraceroute `(addr)[AS1]`; paris `min/avg/max/dev ms`.
        let h = ok("x (192.0.2.1)[AS64500]   0.413ms  0.2/0.3/0.4/0.1 ms");
        assert_eq!(h.asn_of(ip("192.0.2.1")), Some(64500));
        // Lost `ms` on the last RTT; a wrapped unit; notes.
        ok("192.0.2.1 1.0 ms 1.1 ms 1.2");
        let toks = [
            (1, "192.0.2.1"),
            (1, "1.0"),
            (2, "ms"),
            (2, "1.1"),
            (2, "ms"),
        ];
        assert!(parse_hop(1, &toks).1.is_empty());
        let h = ok("192.0.2.1 1.0 ms !X <-- dies here, see 198.51.100.1");
        assert_eq!(h.addrs, vec![ip("192.0.2.1")]);
        ok("192.0.2.1 1.0 ms # my router");
        // Redactions.
        assert!(ok("xxx.xxx.xxx.xxx 1 ms").hidden);
        assert!(ok("(internal network) 1 ms").hidden);
        assert!(ok("Internal (Internal) 1 ms").hidden);
        assert!(ok("<redacted> 1 ms").hidden);
        assert!(ok("[REDACTED] 1 ms").hidden);
        assert!(ok("router.example.net 1 ms").hidden);
        let (h, w) = hop("202.97.x.x 1 ms");
        assert!(h.hidden && w.len() == 1, "{w:?}");
        // http:// from a web page.
        let h = ok("http://a.example  (192.0.2.1) 1 ms");
        assert_eq!(h.name_of(ip("192.0.2.1")), Some("a.example"));
    }

    #[test]
    fn hop_token_warnings_name_the_line_and_token() {
        for (line, needle) in [
            ("192.0.2.1 1.5", "not followed by `ms`"),
            ("192.0.2.1 1.5 ms bogus", "unexpected `bogus`"),
            (
                "192.0.2.1 1.5 ms this is where it dies",
                "`this is where it dies`",
            ),
            ("name (not-an-ip) 1.0 ms", "not an address"),
            ("name (192.0.2.x) 1.0 ms", "not an address"),
            ("192.0.2.1 <MPLS:L=16", "not closed"),
            ("ms", "unexpected `ms`"),
        ] {
            let (_, w) = hop(line);
            let (l, what) = w.first().unwrap_or_else(|| panic!("{line}: no warning"));
            assert_eq!(*l, 7, "{line}");
            assert!(what.contains(needle), "{line}: {what}");
        }
    }

    #[test]
    fn redactions() {
        assert_eq!(is_redaction("x.x.x.x"), Some(Redaction::Full));
        assert_eq!(is_redaction("XXX.XXX.XXX.XXX"), Some(Redaction::Full));
        assert_eq!(is_redaction("***.***.***.***"), Some(Redaction::Full));
        assert_eq!(is_redaction("a.b.c.d"), Some(Redaction::Full));
        assert_eq!(is_redaction("<redacted>"), Some(Redaction::Full));
        assert_eq!(is_redaction("1.2.x.x"), Some(Redaction::Partial));
        assert_eq!(is_redaction("2001:db8:xxxx::1"), Some(Redaction::Partial));
        assert_eq!(is_redaction("1.2.3.4"), None);
        assert_eq!(is_redaction("a.example.net"), None);
        assert_eq!(is_redaction("*"), None);
    }
}
