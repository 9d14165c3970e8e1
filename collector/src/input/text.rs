//! `traceroute` text: the Linux `traceroute` package, inetutils, busybox
//! and BSD/macOS, IPv4 and IPv6 (`traceroute6`).
//!
//! A header `traceroute to HOST (ADDR), 30 hops max, 60 byte packets`
//! starts a trace (`traceroute6 to ... from SRC, ...` too); hop lines
//! `  3  name (192.0.2.1)  0.512 ms !X  198.51.100.1  0.4 ms *` follow. A
//! hop's probes may wrap onto continuation lines (BSD/macOS print each
//! new address of a hop on its own indented line). Hop lines before any
//! header, or whose number does not follow on from the previous hop's,
//! start an excerpt: a trace without target. Blank lines, `#` comments
//! and `traceroute:` messages (warnings) are skipped.
//!
//! On a hop line: `*` is a lost probe; an address, or `name (address)`,
//! is who answered the probes after it; `0.5 ms` / `0.5ms` is an RTT;
//! `!X`, `!H`, `!N`, `!P`, `!S`, `!F-1500`, `!<10>`, ... are annotations,
//! kept as printed; `<MPLS:...>` (`-e`), `[AS64496]` (`-A`), `'-2'`
//! (`--back`) and `F=1500` (`--mtu`) decorations are ignored. Anything
//! else is an error naming the line.

use std::net::IpAddr;

use super::{empty_hop, parse_addr, parse_asn, push_addr, push_annotation, push_asn, push_name};
use crate::model::{Hop, InputError, Trace};

/// What a line of traceroute text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    Blank,
    /// A `#` comment or a `traceroute:` message.
    Skip,
    Header,
    Hop,
    /// Neither: a continuation of the hop before, or garbage.
    Other,
}

pub(crate) fn classify(line: &str) -> LineKind {
    let t = line.trim();
    if t.is_empty() {
        return LineKind::Blank;
    }
    if t.starts_with('#') || t.starts_with("traceroute:") || t.starts_with("traceroute6:") {
        return LineKind::Skip;
    }
    if header_rest(t).is_some() {
        return LineKind::Header;
    }
    let mut tokens = t.split_whitespace();
    let first = tokens.next().unwrap_or("");
    if first.bytes().all(|b| b.is_ascii_digit()) && tokens.next() != Some("ms") {
        return LineKind::Hop;
    }
    LineKind::Other
}

/// What follows `traceroute to ` in a header.
fn header_rest(t: &str) -> Option<&str> {
    ["traceroute to ", "traceroute6 to "]
        .iter()
        .find_map(|p| t.strip_prefix(p))
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

/// How sure this reader is that `text` is traceroute text: a `traceroute
/// to` header anywhere is near certain; hop lines alone are a weak sign
/// that other, more specific formats override.
pub(crate) fn sniff(text: &str) -> u8 {
    let mut hops = 0;
    for line in text.lines().take(2000) {
        match classify(line) {
            LineKind::Header => return 80,
            LineKind::Hop => hops += 1,
            _ => {}
        }
    }
    if hops > 0 {
        20
    } else {
        0
    }
}

/// Every trace in `text`, as the registry reads it.
pub(crate) fn read(text: &str, name: &str) -> Result<super::Read, InputError> {
    let mut read = super::Read::new(super::Format::TracerouteText);
    read.traces = read_traceroute_text(text, name)?;
    Ok(read)
}

/// Reads every trace in traceroute text.
pub fn read_traceroute_text(text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    let text = super::strip_bom(text);
    let mut traces = Vec::new();
    let mut current: Option<Trace> = None;
    let mut pending: Option<Pending<'_>> = None;
    let err = |line: usize, what: String| InputError {
        origin: format!("{name}:{line}"),
        what,
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        match classify(line) {
            LineKind::Blank => flush(&mut pending, &mut current, name)?,
            LineKind::Skip => {}
            LineKind::Header => {
                flush(&mut pending, &mut current, name)?;
                traces.extend(current.take());
                let rest = header_rest(line.trim()).unwrap_or("");
                let target = parse_header(rest).map_err(|what| err(n, what))?;
                current = Some(Trace {
                    target,
                    origin: format!("{name}:{n}"),
                    hops: Vec::new(),
                });
            }
            LineKind::Hop => {
                flush(&mut pending, &mut current, name)?;
                let mut tokens = line.split_whitespace();
                let number = tokens.next().unwrap_or("");
                let ttl = match number
                    .parse::<u16>()
                    .ok()
                    .and_then(|v| u8::try_from(v).ok())
                {
                    Some(t) if t >= 1 => t,
                    _ => return Err(err(n, format!("hop number {number} is outside 1..=255"))),
                };
                let follows_on = current
                    .as_ref()
                    .is_some_and(|t| t.hops.last().is_none_or(|h| h.ttl < ttl));
                if !follows_on {
                    // An excerpt without header, or a hop number that does
                    // not follow on: a new trace without target.
                    traces.extend(current.take());
                    current = Some(Trace {
                        target: None,
                        origin: format!("{name}:{n}"),
                        hops: Vec::new(),
                    });
                }
                pending = Some(Pending {
                    ttl,
                    tokens: tokens.map(|t| (n, t)).collect(),
                });
            }
            LineKind::Other => match pending.as_mut() {
                Some(p) => p.tokens.extend(line.split_whitespace().map(|t| (n, t))),
                None => {
                    return Err(err(
                        n,
                        format!(
                            "not traceroute output: expected a `traceroute to` header or a \
                             hop line, got {:?}",
                            line.trim()
                        ),
                    ))
                }
            },
        }
    }
    flush(&mut pending, &mut current, name)?;
    traces.extend(current.take());
    if traces.is_empty() {
        return Err(err(
            1,
            "no traceroute: no `traceroute to` header and no hop line".to_string(),
        ));
    }
    Ok(traces)
}

/// A hop line and its continuation lines, not yet parsed.
#[derive(Debug)]
struct Pending<'a> {
    ttl: u8,
    /// (line number, token).
    tokens: Vec<(usize, &'a str)>,
}

fn flush(
    pending: &mut Option<Pending<'_>>,
    current: &mut Option<Trace>,
    name: &str,
) -> Result<(), InputError> {
    if let (Some(p), Some(trace)) = (pending.take(), current.as_mut()) {
        trace.hops.push(parse_hop(p.ttl, &p.tokens, name)?);
    }
    Ok(())
}

/// A number as traceroute prints RTTs: digits and dots only.
fn is_rtt(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') && t.parse::<f64>().is_ok()
}

/// Parses the tokens of one hop (after its number).
fn parse_hop(ttl: u8, tokens: &[(usize, &str)], name: &str) -> Result<Hop, InputError> {
    let mut hop = empty_hop(ttl);
    let err = |line: usize, what: String| InputError {
        origin: format!("{name}:{line}"),
        what,
    };
    let mut i = 0;
    while let Some(&(line, t)) = tokens.get(i) {
        let next = tokens.get(i + 1).map(|x| x.1);
        i += 1;
        if t == "*" {
            continue;
        }
        if t.len() > 1 && t.starts_with('!') {
            push_annotation(&mut hop, t);
            continue;
        }
        let close = match t.as_bytes().first() {
            Some(b'<') => Some('>'),
            Some(b'[') => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            // `[AS64496]` (`-A`) after an address: the trace's own AS
            // annotation for it.
            if let (Some(asn), Some(&addr)) = (parse_asn(t), hop.addrs.last()) {
                if t.ends_with(']') {
                    push_asn(&mut hop, addr, asn);
                    continue;
                }
            }
            // `<MPLS:L=16,E=0,S=1,T=1>`, `[AS64496]`, possibly spread over
            // several tokens.
            match tokens[i - 1..].iter().position(|x| x.1.ends_with(close)) {
                Some(k) => i += k,
                None => {
                    return Err(err(
                        line,
                        format!("hop {ttl}: `{t}` is not closed by `{close}`"),
                    ))
                }
            }
            continue;
        }
        if t.starts_with('\'') || t.starts_with("F=") {
            continue;
        }
        if is_rtt(t) {
            if next == Some("ms") {
                i += 1;
                continue;
            }
            return Err(err(
                line,
                format!("hop {ttl}: RTT `{t}` is not followed by `ms`"),
            ));
        }
        if t.strip_suffix("ms").is_some_and(is_rtt) {
            continue;
        }
        if let Some(inner) = t.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            match parse_addr(inner) {
                Some(a) => {
                    push_addr(&mut hop, a);
                    if let Some(&(_, name)) = tokens.get(i.wrapping_sub(2)) {
                        if i >= 2 && !name.starts_with('(') && parse_addr(name) != Some(a) {
                            push_name(&mut hop, a, name);
                        }
                    }
                }
                None => {
                    return Err(err(
                        line,
                        format!("hop {ttl}: `{t}` is not an address in parentheses"),
                    ))
                }
            }
            continue;
        }
        if next.is_some_and(|n| n.starts_with('(')) {
            // A host name; its address follows in parentheses.
            continue;
        }
        if let Some(a) = parse_addr(t) {
            push_addr(&mut hop, a);
            continue;
        }
        return Err(err(
            line,
            format!(
                "hop {ttl}: unexpected `{t}` (expected an address, `name (address)`, \
                 an RTT in ms, `*` or an annotation such as `!X`)"
            ),
        ));
    }
    Ok(hop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn hop(line: &str) -> Result<Hop, InputError> {
        let toks: Vec<(usize, &str)> = line.split_whitespace().map(|t| (7, t)).collect();
        parse_hop(5, &toks, "t")
    }

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify("   "), LineKind::Blank);
        assert_eq!(classify("# note"), LineKind::Skip);
        assert_eq!(
            classify("traceroute: Warning: Multiple interfaces found"),
            LineKind::Skip
        );
        assert_eq!(
            classify("traceroute to a (192.0.2.1), 30 hops max, 60 byte packets"),
            LineKind::Header
        );
        assert_eq!(classify(" 1  192.0.2.1  0.5 ms"), LineKind::Hop);
        assert_eq!(classify("12  * * *"), LineKind::Hop);
        assert_eq!(classify(" 3"), LineKind::Hop);
        assert_eq!(classify("    198.51.100.1  1.0 ms"), LineKind::Other);
        assert_eq!(classify("    10 ms  11 ms"), LineKind::Other);
        assert_eq!(classify("hello"), LineKind::Other);
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
        let h = hop("a.example (192.0.2.1)  1.0 ms !X 192.0.2.2  2.0ms !<10> * !X").expect("hop");
        assert_eq!(h.ttl, 5);
        assert_eq!(h.addrs, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
        assert_eq!(h.annotations, vec!["!X", "!<10>"]);
        let h = hop("192.0.2.1 <MPLS:L=16,E=0,S=1,T=1> [AS64496] F=1500 1 ms '-2'").expect("hop");
        assert_eq!(h.addrs, vec![ip("192.0.2.1")]);
        assert!(h.annotations.is_empty());
        let h = hop("192.0.2.1 (192.0.2.1) 1.5 ms").expect("hop");
        assert_eq!(h.addrs, vec![ip("192.0.2.1")]);
        let h = hop("* * *").expect("hop");
        assert!(h.addrs.is_empty());
        let h = hop("<INC: a b> 192.0.2.1 1.5 ms").expect("spread group");
        assert_eq!(h.addrs, vec![ip("192.0.2.1")]);
    }

    #[test]
    fn hop_token_errors_name_the_line_and_token() {
        for (line, needle) in [
            ("192.0.2.1 1.5", "not followed by `ms`"),
            ("192.0.2.1 1.5 ms bogus", "unexpected `bogus`"),
            ("name (not-an-ip) 1.0 ms", "not an address"),
            ("192.0.2.1 <MPLS:L=16", "not closed"),
            ("ms", "unexpected `ms`"),
            ("!", "unexpected `!`"),
        ] {
            let e = hop(line).expect_err(line);
            assert_eq!(e.origin, "t:7", "{line}");
            assert!(e.what.contains(needle), "{line}: {}", e.what);
        }
    }
}
