//! `nmap --traceroute` output, normal (`-oN`, the terminal) and XML
//! (`-oX`).
//!
//! ```text
//! TRACEROUTE (using port 80/tcp)
//! 3   10.00 ms host.example (203.0.113.1)
//! ```
//!
//! Every `TRACEROUTE (using port 80/tcp)` (or `(using proto 1/icmp)`, or
//! bare `TRACEROUTE`) section is one trace; its target is the address of
//! the `Nmap scan report for NAME (ADDR)` above it. The section's rows
//! after `HOP RTT ADDRESS` are `TTL RTT ADDR` or `TTL RTT NAME (ADDR)`
//! (RTT `0.50 ms`, or `--` when unknown), `TTL ...` (one hop timed out) or
//! `TTL ... LAST` (hops TTL to LAST timed out: silent hops), and nmap's
//! consolidation row `-   Hops 1-3 are the same as for ADDR`: those hops
//! are copied from that host's trace when it is in the same output, and
//! are elided (absent) when it is not. The section ends at the first line
//! that is not a row. Everything outside the sections (ports, OS guesses,
//! script output) is nmap's own output and skipped silently; a row that
//! cannot be read is skipped with a warning.
//!
//! In XML, each `<trace>` of a `<host>` is a trace, the host's `<address
//! addr=... addrtype="ipv4|ipv6">` its target and each `<hop ttl=...
//! ipaddr=... host=...>` a hop; nmap leaves timed-out hops out of the XML,
//! so the TTLs missing below the last hop are silent hops.

use std::net::IpAddr;

use super::{empty_hop, parse_addr, push_addr, push_name, Format, Hops, Read};
use crate::model::{Hop, InputError, Trace};

/// How sure this reader is that `text` is nmap output: a `TRACEROUTE
/// (using ...)` line, the `HOP RTT ADDRESS` column header or an XML
/// `<trace` element is certain.
pub(crate) fn sniff(text: &str) -> u8 {
    for line in text.lines().take(2000) {
        let t = line.trim();
        if t.starts_with("TRACEROUTE (using ") || is_column_header(t) {
            return 95;
        }
        if t.starts_with("<trace ") || t == "<trace>" {
            return 95;
        }
    }
    0
}

fn is_column_header(t: &str) -> bool {
    let mut w = t.split_whitespace();
    w.next() == Some("HOP") && w.next() == Some("RTT") && w.next() == Some("ADDRESS")
}

/// Every trace in `text`, as the registry reads it.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::Nmap);
    if text.contains("<trace") && text.contains("<hop ") {
        read_xml(text, name, &mut read);
    } else {
        read_normal(text, name, &mut read);
    }
    if read.traces.is_empty() {
        return Err(read.skipped.first().cloned().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no nmap traceroute: no `TRACEROUTE` section (run nmap with --traceroute)"
                .to_string(),
        }));
    }
    Ok(read)
}

/// The address `Nmap scan report for NAME (ADDR)` / `... for ADDR` names.
fn report_target(t: &str) -> Option<IpAddr> {
    let rest = t.strip_prefix("Nmap scan report for ")?;
    let mut words = rest.split_whitespace();
    let host = words.next()?;
    words
        .find_map(|w| parse_addr(w.strip_prefix('(')?.strip_suffix(')')?))
        .or_else(|| parse_addr(host))
}

/// A trace being read, with its hops by TTL.
struct Section {
    trace: Trace,
    hops: Hops,
}

fn read_normal(text: &str, name: &str, read: &mut Read) {
    let mut target: Option<IpAddr> = None;
    let mut section: Option<Section> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if let Some(s) = section.as_mut() {
            let first = t.split_whitespace().next().unwrap_or("");
            if is_column_header(t) {
                continue;
            }
            if first == "-" {
                consolidate(s, t, &read.traces);
                continue;
            }
            if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
                if let Err(why) = row(s, t) {
                    read.skip(format!("{name}:{n}"), why);
                }
                continue;
            }
            // The first line that is not a row ends the section.
            finish(&mut section, read);
        }
        if t.starts_with("Nmap scan report for ") {
            target = report_target(t);
        } else if t == "TRACEROUTE" || t.starts_with("TRACEROUTE (") || is_column_header(t) {
            section = Some(Section {
                trace: Trace {
                    target,
                    origin: format!("{name}:{n}"),
                    hops: Vec::new(),
                },
                hops: Hops::default(),
            });
        }
    }
    finish(&mut section, read);
}

fn finish(section: &mut Option<Section>, read: &mut Read) {
    if let Some(mut s) = section.take() {
        s.trace.hops = s.hops.into_vec();
        read.traces.push(s.trace);
    }
}

/// `-   Hops 1-3 are the same as for 192.0.2.1` / `-   Hop 1 is the same
/// as for 192.0.2.1`: copies those hops from that host's trace, if read.
fn consolidate(s: &mut Section, t: &str, earlier: &[Trace]) {
    let words: Vec<&str> = t.split_whitespace().collect();
    let last = words
        .get(2)
        .and_then(|range| range.rsplit('-').next())
        .and_then(|n| n.parse::<u8>().ok());
    let other = words.last().and_then(|w| parse_addr(w));
    let (Some(last), Some(other)) = (last, other) else {
        return;
    };
    if let Some(trace) = earlier.iter().rev().find(|tr| tr.target == Some(other)) {
        for hop in trace.hops.iter().filter(|h| h.ttl <= last) {
            *s.hops.at(hop.ttl) = hop.clone();
        }
    }
}

/// One row: `3   10.00 ms host (ADDR)`, `4   -- ADDR`, `5   ...`, `5   ... 8`.
fn row(s: &mut Section, t: &str) -> Result<(), String> {
    let tokens: Vec<&str> = t.split_whitespace().collect();
    let ttl = tokens
        .first()
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("hop number outside 1..=255 in {t:?}"))?;
    let rest = tokens.get(1..).unwrap_or(&[]);
    match rest {
        ["..."] => {
            s.hops.at(ttl);
            return Ok(());
        }
        ["...", last] => {
            let last = last
                .parse::<u8>()
                .ok()
                .filter(|&l| l >= ttl)
                .ok_or_else(|| format!("hop {ttl}: `... {last}` is not a later hop"))?;
            for k in ttl..=last {
                s.hops.at(k);
            }
            return Ok(());
        }
        _ => {}
    }
    let after_rtt = match rest {
        ["--", more @ ..] => more,
        [v, "ms", more @ ..] if v.parse::<f64>().is_ok() => more,
        [v, more @ ..]
            if v.strip_suffix("ms")
                .is_some_and(|x| x.parse::<f64>().is_ok()) =>
        {
            more
        }
        _ => return Err(format!("hop {ttl}: no RTT (`0.50 ms` or `--`) in {t:?}")),
    };
    match after_rtt {
        [addr] => {
            let hop = s.hops.at(ttl);
            match parse_addr(addr) {
                Some(a) => push_addr(hop, a),
                // A name only, or an address the author hid.
                None => hop.hidden = true,
            }
        }
        [host, paren] => {
            let addr = paren
                .strip_prefix('(')
                .and_then(|p| p.strip_suffix(')'))
                .and_then(parse_addr)
                .ok_or_else(|| format!("hop {ttl}: `{paren}` is not an address in parentheses"))?;
            let hop = s.hops.at(ttl);
            push_addr(hop, addr);
            push_name(hop, addr, host);
        }
        _ => return Err(format!("hop {ttl}: no address in {t:?}")),
    }
    Ok(())
}

/// The value of `key="..."` in an XML tag.
fn attr<'a>(tag: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!(" {key}=\"");
    let start = tag.find(&pattern)? + pattern.len();
    let rest = tag.get(start..)?;
    rest.get(..rest.find('"')?)
}

fn read_xml(text: &str, name: &str, read: &mut Read) {
    let mut target: Option<IpAddr> = None;
    let mut current: Option<(Trace, Vec<Hop>)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        // Tags may share a line (nmap writes one per line, editors may not).
        for piece in line.split('<').skip(1) {
            let tag = format!("<{piece}");
            if tag.starts_with("<host>") || tag.starts_with("<host ") {
                target = None;
            } else if tag.starts_with("<address ") {
                let family = attr(&tag, "addrtype");
                if matches!(family, Some("ipv4" | "ipv6")) && target.is_none() {
                    target = attr(&tag, "addr").and_then(parse_addr);
                }
            } else if tag.starts_with("<trace") && !tag.starts_with("<trace/") {
                let origin = format!("{name}:{n}");
                current = Some((
                    Trace {
                        target,
                        origin,
                        hops: Vec::new(),
                    },
                    Vec::new(),
                ));
            } else if tag.starts_with("<hop ") {
                let Some((_, hops)) = current.as_mut() else {
                    continue;
                };
                let ttl = attr(&tag, "ttl").and_then(|v| v.parse::<u8>().ok());
                let addr = attr(&tag, "ipaddr").and_then(parse_addr);
                match (ttl, addr) {
                    (Some(ttl), Some(addr)) if ttl >= 1 => {
                        let mut hop = empty_hop(ttl);
                        push_addr(&mut hop, addr);
                        if let Some(host) = attr(&tag, "host") {
                            push_name(&mut hop, addr, host);
                        }
                        hops.push(hop);
                    }
                    _ => read.skip(
                        format!("{name}:{n}"),
                        format!(
                            "<hop> without a ttl (1..=255) and an ipaddr: {}",
                            tag.trim()
                        ),
                    ),
                }
            } else if tag.starts_with("</trace") {
                if let Some((trace, found)) = current.take() {
                    read.traces.push(close_trace(trace, found));
                }
            }
        }
    }
    if let Some((trace, found)) = current {
        read.skip(
            trace.origin.clone(),
            "<trace> not closed: the XML is cut short".to_string(),
        );
        read.traces.push(close_trace(trace, found));
    }
}

/// The trace with its hops; the TTLs missing below the last hop timed out
/// (nmap leaves them out of the XML).
fn close_trace(mut trace: Trace, found: Vec<Hop>) -> Trace {
    let mut hops = Hops::default();
    let last = found.iter().map(|h| h.ttl).max().unwrap_or(0);
    for ttl in 1..=last {
        hops.at(ttl);
    }
    for hop in found {
        let at = hops.at(hop.ttl);
        for (a, name) in &hop.names {
            push_addr(at, *a);
            push_name(at, *a, name);
        }
        for a in hop.addrs {
            push_addr(at, a);
        }
    }
    trace.hops = hops.into_vec();
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_give_the_target() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(
            report_target("Nmap scan report for scanme.nmap.org (45.33.32.156)"),
            ip("45.33.32.156")
        );
        assert_eq!(
            report_target("Nmap scan report for 10.0.0.1"),
            ip("10.0.0.1")
        );
        assert_eq!(report_target("Nmap scan report for host.example"), None);
    }

    #[test]
    fn xml_attributes() {
        let tag = r#"<hop ttl="2" ipaddr="192.0.2.1" rtt="1.00" host="r.example"/>"#;
        assert_eq!(attr(tag, "ttl"), Some("2"));
        assert_eq!(attr(tag, "host"), Some("r.example"));
        assert_eq!(attr(tag, "nope"), None);
    }
}
