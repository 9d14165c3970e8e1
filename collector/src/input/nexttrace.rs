//! NextTrace and besttrace output, in their several layouts.
//!
//! ```text
//! traceroute to 183.146.104.244, 30 hops max, 32 byte packets
//! 4   112.53.68.97    AS24444  [APNIC-AP]       中国 山东省 济南市  chinamobile.com  移动
//! ```
//!
//! - NextTrace's default layout: `TTL  ADDRESS  AS4134|*  [WHOIS]  geo...`,
//!   then an indented line `hostname  0.40 ms / * ms / 0.53 ms`; more
//!   addresses of the TTL come as further indented `ADDRESS ...` blocks;
//!   `TTL  *` is a silent hop.
//! - `--classic` (and v0.x): `TTL<tab>ADDRESS 0.52ms AS4134, geo...`, one
//!   probe per line, later probes of the TTL indented (`<tab>*`, `<tab>name
//!   (address) ...`).
//! - `--table`: a `Hop IP Latency ASN Location Owner` header, then rows
//!   `1  192.0.2.1  0.52ms  4134  ...` (the AS number without `AS`); a row
//!   without hop number is another probe of the TTL above.
//! - `--raw`: `TTL|ADDRESS|HOSTNAME|RTT|ASN|country|...|lat|lng`,
//!   `TTL|*||||||`.
//! - besttrace: a `traceroute to` header and `TTL  [name (]ADDRESS[)]  RTT
//!   ms  AS4134[,AS...]|*  geo...` lines.
//!
//! AS numbers are kept for their address; geo, whois and owner columns
//! are not read. The header (`traceroute to ADDR[ (NAME)], ...` or `SRC ->
//! ADDR, ...`) gives the target and starts a trace. NextTrace's banner
//! (version, API, provider, the interactive address choice), `MapTrace
//! URL:` and `Trace Stopped` lines, prompts and separators are skipped
//! silently; any other line with a warning.

use std::net::IpAddr;

use super::text::{clean_line, hop_start, is_mpls_line, is_noise, is_redaction, ttl_of};
use super::{
    parse_addr, parse_asn, push_addr, push_asn, push_name, Format, Hops, PartialTrace, Read,
};
use crate::model::InputError;

/// `traceroute to ADDR (NAME), 30 hops max, ...` or `SRC -> ADDR, 30
/// hops max, ...`: the target.
fn header(t: &str) -> Option<Option<IpAddr>> {
    if !t.contains("hops max") {
        return None;
    }
    let rest = t
        .strip_prefix("traceroute to ")
        .or_else(|| t.split_once(" -> ").map(|(_, r)| r))?;
    let mut words = rest.split_whitespace();
    let host = words.next().unwrap_or("").trim_end_matches(',');
    let paren = words
        .next()
        .and_then(|w| w.trim_end_matches(',').strip_prefix('('))
        .and_then(|w| w.strip_suffix(')'));
    Some(parse_addr(host).or_else(|| paren.and_then(parse_addr)))
}

/// A `--raw` line: its fields, when it has the layout.
fn raw_fields(t: &str) -> Option<Vec<&str>> {
    let fields: Vec<&str> = t.split('|').collect();
    let ttl = fields.first()?;
    (fields.len() >= 6 && !ttl.is_empty() && ttl.bytes().all(|b| b.is_ascii_digit()))
        .then_some(fields)
}

/// The table header of `--table`.
fn is_table_header(t: &str) -> bool {
    let w: Vec<&str> = t.split_whitespace().collect();
    w.first() == Some(&"Hop") && w.get(1) == Some(&"IP") && w.contains(&"ASN")
}

/// NextTrace's banner and trailer lines.
fn is_banner(t: &str) -> bool {
    t.starts_with("NextTrace")
        || t.starts_with("[NextTrace API]")
        || t.starts_with("IP Geo Data Provider")
        || t.starts_with("Please Choose the IP")
        || t.starts_with("Your Option")
        || t.starts_with("MapTrace URL")
        || t.starts_with("Trace Stopped")
        || t.starts_with("Trace stopped")
        || t.starts_with("· ")
        || t.starts_with("Honorary Founder")
        || t.starts_with("Project Chair")
        || t.starts_with("Core-Developer")
        || t.starts_with("Infra Maintainer")
        || t.contains("BGP.Tools")
        // The address choice: `0. 39.156.66.10`.
        || t
            .split_once(". ")
            .is_some_and(|(n, a)| n.bytes().all(|b| b.is_ascii_digit()) && parse_addr(a).is_some())
}

/// An RTT as NextTrace and besttrace print it: `0.40`, `0.52ms`.
fn is_rtt(t: &str) -> bool {
    let n = t.strip_suffix("ms").unwrap_or(t);
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.') && n.parse::<f64>().is_ok()
}

/// `AS4134`, `AS50131,AS201106` (the first).
fn bare_asn(t: &str) -> Option<u32> {
    let first = t.split(',').next().unwrap_or("");
    first.strip_prefix("AS").and_then(parse_asn)
}

/// How sure this reader is that `text` is NextTrace or besttrace output.
pub(crate) fn sniff(text: &str) -> u8 {
    let mut header_seen = false;
    let mut besttrace = 0;
    for line in text.lines().take(2000) {
        let t = line.trim();
        if t.starts_with("NextTrace ")
            || t.starts_with("[NextTrace API]")
            || t.starts_with("IP Geo Data Provider")
            || is_table_header(t)
            || raw_fields(t).is_some_and(|f| f.len() >= 10)
        {
            return 95;
        }
        // The default layout's RTT line.
        if t.contains(" ms / ") {
            return 90;
        }
        if header(t).is_some() {
            header_seen = true;
        }
        // besttrace: `N  ADDRESS  RTT ms  AS4134  geo`: a bare AS number
        // after the RTT.
        let w: Vec<&str> = t.split_whitespace().collect();
        if w.first()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            // `0.52 ms  AS4134` (besttrace), `0.52ms AS4134,` / `0.52ms *,`
            // (NextTrace `--classic`).
            let after_rtt = w.iter().enumerate().find_map(|(k, x)| match *x {
                "ms" => w.get(k + 1),
                x if x.ends_with("ms") && is_rtt(x) => w.get(k + 1),
                _ => None,
            });
            if after_rtt.is_some_and(|a| bare_asn(a).is_some() || *a == "*,") {
                besttrace += 1;
            }
        }
    }
    match (header_seen, besttrace) {
        (true, n) if n > 0 => 85,
        (false, n) if n >= 2 => 60,
        _ => 0,
    }
}

/// What one responder's tokens gave.
fn read_responder(
    tokens: &[&str],
    table: bool,
    hops: &mut Hops,
    ttl: u8,
    last: &mut Option<IpAddr>,
) -> Result<(), String> {
    let hop = hops.at(ttl);
    let Some(&first) = tokens.first() else {
        return Ok(());
    };
    let mut k = 1;
    if first == "*" {
        *last = None;
        return Ok(());
    }
    let (addr, name) = match tokens.get(1).and_then(|s| s.strip_prefix('(')) {
        Some(inner) if parse_addr(inner.trim_end_matches(')')).is_some() => {
            k = 2;
            (parse_addr(inner.trim_end_matches(')')), Some(first))
        }
        _ => (parse_addr(first), None),
    };
    match addr {
        Some(a) => {
            push_addr(hop, a);
            if let Some(n) = name {
                push_name(hop, a, n);
            }
            *last = Some(a);
        }
        None if is_redaction(first).is_some() => {
            hop.hidden = true;
            *last = None;
        }
        None => return Err(format!("hop {ttl}: `{first}` is not an address")),
    }
    let Some(a) = addr else {
        return Ok(());
    };
    let rest = tokens.get(k..).unwrap_or_default();
    let asn = rest.iter().find_map(|t| bare_asn(t)).or_else(|| {
        // `--table`: the AS number column after the latency.
        if table {
            let at = rest.iter().position(|t| is_rtt(t))?;
            rest.get(at + 1).and_then(|t| parse_asn(t))
        } else {
            None
        }
    });
    if let Some(asn) = asn {
        push_asn(hop, a, asn);
    }
    Ok(())
}

/// Every trace in `text`; lines that cannot be read are skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let mut read = Read::new(Format::NextTrace);
    let text = super::strip_bom(text);
    if sniff(text) == 0 {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "not NextTrace/besttrace output: no NextTrace banner, table, raw line or \
                   besttrace AS column"
                .to_string(),
        });
    }
    let mut current: Option<PartialTrace> = None;
    let mut table = false;
    let mut ttl_here: Option<u8> = None;
    let mut last: Option<IpAddr> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = clean_line(raw);
        let t = line.trim();
        let indented = line.starts_with([' ', '\t']) && !t.is_empty();
        if t.is_empty() || is_banner(t) || is_mpls_line(t) {
            continue;
        }
        if let Some(target) = header(t) {
            read.traces
                .extend(current.take().map(PartialTrace::into_trace));
            current = Some(PartialTrace {
                origin: format!("{name}:{n}"),
                target,
                hops: Hops::default(),
            });
            table = false;
            ttl_here = None;
            continue;
        }
        if is_table_header(t) {
            table = true;
            continue;
        }
        let cur = current.get_or_insert_with(|| PartialTrace {
            origin: format!("{name}:{n}"),
            target: None,
            hops: Hops::default(),
        });
        if let Some(f) = raw_fields(t) {
            let number = f.first().copied().unwrap_or("");
            match ttl_of(number) {
                Ok(ttl) => {
                    let hop = cur.hops.at(ttl);
                    let addr = f.get(1).and_then(|a| parse_addr(a));
                    if let Some(a) = addr {
                        push_addr(hop, a);
                        if let Some(h) = f.get(2) {
                            push_name(hop, a, h);
                        }
                        if let Some(asn) = f.get(4).and_then(|x| parse_asn(x)) {
                            push_asn(hop, a, asn);
                        }
                    } else if f.get(1).is_some_and(|a| is_redaction(a).is_some()) {
                        hop.hidden = true;
                    }
                }
                Err(what) => read.skip(format!("{name}:{n}"), what),
            }
            continue;
        }
        let tokens: Vec<&str> = t.split_whitespace().collect();
        let first = tokens.first().copied().unwrap_or("");
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
            match ttl_of(first) {
                Ok(ttl) => {
                    ttl_here = Some(ttl);
                    if let Err(what) = read_responder(
                        tokens.get(1..).unwrap_or_default(),
                        table,
                        &mut cur.hops,
                        ttl,
                        &mut last,
                    ) {
                        read.skip(format!("{name}:{n}"), what);
                    }
                }
                Err(what) => {
                    ttl_here = None;
                    read.skip(format!("{name}:{n}"), what);
                }
            }
            continue;
        }
        if let (true, Some(ttl)) = (indented, ttl_here) {
            let second = tokens.get(1).copied();
            let named = second.is_some_and(|s| is_rtt(s) || s == "*");
            if parse_addr(first).is_some()
                || is_redaction(first).is_some()
                || second.is_some_and(|s| {
                    s.starts_with('(') && parse_addr(s.trim_matches(['(', ')'])).is_some()
                })
            {
                // Another address of this TTL.
                if let Err(what) = read_responder(&tokens, table, &mut cur.hops, ttl, &mut last) {
                    read.skip(format!("{name}:{n}"), what);
                }
                continue;
            }
            if first == "*" || is_rtt(first) {
                // An RTT line, or a lost probe (`--classic`).
                continue;
            }
            if named {
                // `hostname  0.40 ms / ...`: the name of the address above.
                if let Some(a) = last {
                    push_name(cur.hops.at(ttl), a, first);
                }
                continue;
            }
        }
        let prose = hop_start(t).is_none() && !is_noise(t);
        if prose || hop_start(t).is_some() {
            read.skip(
                format!("{name}:{n}"),
                format!("not NextTrace output: expected a header or a hop line, got {t:?}"),
            );
        }
    }
    read.traces
        .extend(current.take().map(PartialTrace::into_trace));
    read.traces
        .retain(|t| !t.hops.is_empty() || t.target.is_some());
    if read.traces.is_empty() {
        return Err(read.skipped.into_iter().next().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no trace in this NextTrace output".to_string(),
        }));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            header("traceroute to 39.156.66.10 (baidu.com), 30 hops max, 32 byte packets"),
            Some("39.156.66.10".parse().ok())
        );
        assert_eq!(
            header("192.0.2.7 -> 1.1.1.1, 30 hops max, 52 bytes payload, ICMP mode"),
            Some("1.1.1.1".parse().ok())
        );
        assert_eq!(header("NextTrace v1.1.2"), None);
    }

    #[test]
    fn asns_and_rtts() {
        assert_eq!(bare_asn("AS50131,AS201106"), Some(50131));
        assert_eq!(bare_asn("AS4134"), Some(4134));
        assert_eq!(bare_asn("*"), None);
        assert!(is_rtt("0.52ms"));
        assert!(is_rtt("183.20"));
        assert!(!is_rtt("ms"));
    }
}
