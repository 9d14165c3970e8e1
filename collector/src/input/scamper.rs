//! scamper JSON (`scamper -O json`, `sc_warts2json`): one JSON object per
//! line, a trace being
//!
//! ```text
//! {"type":"trace","version":"0.1","method":"icmp-paris","src":"192.0.2.7","dst":"198.51.100.9",
//!  "stop_reason":"COMPLETED","hop_count":3,"firsthop":1,"hops":[{"addr":"192.0.2.1","probe_ttl":1,"icmp_type":11,"icmp_code":0},...]}
//! ```
//!
//! `dst` is the target. `hops` lists the replies (several per TTL when a
//! TTL got several); `probe_ttl` is the hop, `addr` who answered, `name`
//! its name when scamper resolved it, `icmp_type`/`icmp_code` become the
//! annotations traceroute prints: ICMP unreachable (IPv4 type 3) codes
//! 0/6/8/11 `!N`, 1/7/12 `!H`, 9/10/13 `!X`, 2 `!P`, 4 `!F`, 5 `!S`, 14
//! `!V`, 15 `!C`, 3 (port unreachable: the destination answered) none,
//! others `!<code>`; ICMPv6 unreachable (type 1) 0 `!N`, 1 `!X`, 2/3 `!H`,
//! 4 none; packet too big `!F`; time exceeded and echo replies none; other
//! types `!<type-code>`. TTLs from `firsthop` to `hop_count` without a
//! reply are silent hops (scamper lists only replies; newer versions also
//! list unanswered probes in `no_hops`). `extra_hops` (probes past where
//! the trace stopped) are ignored.
//!
//! `tracelb` objects (MDA load-balancer traces) are read too: each link's
//! `probes[].ttl` places the address it leads to at that hop, the first
//! node at `firsthop`.
//!
//! `cycle-start`, `cycle-stop`, `cycle-def`, `list` and the other
//! measurement types (`ping`, `dealias`, ...) are not traces and are
//! ignored silently. A line that is not JSON, an object without `type`, or
//! a reply that cannot be read is skipped with a warning. A pretty-printed
//! object spanning several lines is read too.

use std::net::IpAddr;

use serde_json::Value;

use super::json::{documents, documents_at, Doc, Node};
use super::mtr_report::{line_starts, top_level_error, MAX_WARNINGS};
use super::{parse_addr, push_addr, push_annotation, push_name, Format, Hops, Read};
use crate::model::{InputError, Trace};

/// Object types scamper writes that are not traces.
const OTHER_TYPES: [&str; 15] = [
    "cycle-start",
    "cycle-stop",
    "cycle-def",
    "list",
    "ping",
    "dealias",
    "tbit",
    "sting",
    "neighbourdisc",
    "host",
    "http",
    "udpprobe",
    "sniff",
    "owamp",
    "cycle",
];

/// How sure this reader is that `text` is scamper JSON, 0..=100.
pub(crate) fn sniff(text: &str) -> u8 {
    let Some(o) = super::json::first_object(text) else {
        return 0;
    };
    match o.get("type").and_then(Value::as_str) {
        Some("trace" | "tracelb") => 95,
        // A file that starts with its list and cycle records.
        Some("cycle-start" | "cycle-def" | "cycle-stop" | "list") => 90,
        _ if o.contains_key("dst") && o.contains_key("hops") && o.contains_key("stop_reason") => 80,
        _ => 0,
    }
}

/// The first non-blank line is a whole JSON value.
fn is_line_delimited(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| {
            l.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok()
        })
}

/// Every trace in `text`; lines and replies that cannot be read are
/// skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::ScamperJson);
    if is_line_delimited(text) {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if read.skipped.len() >= MAX_WARNINGS {
                read.skip(
                    format!("{name}:{}", i + 1),
                    "too many unreadable lines: stopped reading",
                );
                break;
            }
            match documents_at(line, name, i) {
                Ok(docs) => {
                    let starts = line_starts(line);
                    docs.iter().for_each(|d| read_doc(d, &starts, &mut read));
                }
                Err(e) => read.skipped.push(e),
            }
        }
    } else {
        let starts = line_starts(text);
        for doc in &documents(text, name)? {
            if read.skipped.len() >= MAX_WARNINGS {
                read.skip(
                    format!("{name}:1"),
                    "too many unreadable objects: stopped reading",
                );
                break;
            }
            read_doc(doc, &starts, &mut read);
        }
    }
    if read.traces.is_empty() && read.skipped.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no scamper trace in input (no object with \"type\": \"trace\")".into(),
        });
    }
    Ok(read)
}

fn read_doc(doc: &Doc<'_>, starts: &[usize], read: &mut Read) {
    let root = doc.root();
    if !root.value.is_array() && !root.value.is_object() {
        return read
            .skipped
            .push(top_level_error(doc, starts, "a scamper object"));
    }
    let objects = if root.value.is_array() {
        match root.array() {
            Ok(items) => items,
            Err(e) => return read.skipped.push(e),
        }
    } else {
        vec![root]
    };
    for o in objects {
        if let Err(e) = o.expect_object("a scamper object") {
            read.skipped.push(e);
            continue;
        }
        let kind = o.get("type").and_then(|t| t.value.as_str());
        let result = match kind {
            Some("trace") => read_trace(&o, read),
            Some("tracelb") => read_tracelb(&o, read),
            Some(t) if OTHER_TYPES.contains(&t) => continue,
            Some(t) => Err(o.error(format!(
                "scamper object of type {t:?} is not a trace: skipped"
            ))),
            // A trace whose `type` was lost (hand-edited or filtered).
            None if o.get("hops").is_some() && o.get("stop_reason").is_some() => {
                read_trace(&o, read)
            }
            None => Err(o.error("not a scamper object (no `type`): skipped")),
        };
        match result {
            Ok(t) => read.traces.push(t),
            Err(e) => read.skipped.push(e),
        }
    }
}

/// A small whole number field, if present and readable.
fn number(node: &Node<'_>, key: &str) -> Option<u64> {
    node.get(key).and_then(|n| n.value.as_u64())
}

/// `dst`, when it is an address; a bad one is a warning.
fn target(o: &Node<'_>, read: &mut Read) -> Option<IpAddr> {
    let dst = o.get("dst")?;
    match dst.addr() {
        Ok(a) => Some(a),
        Err(e) => {
            read.skipped.push(e);
            None
        }
    }
}

/// The annotation traceroute prints for an ICMP reply.
pub(crate) fn annotation(v6: bool, icmp_type: u64, code: u64) -> Option<String> {
    let s = match (v6, icmp_type) {
        (false, 3) => match code {
            0 | 6 | 8 | 11 => "!N",
            1 | 7 | 12 => "!H",
            9 | 10 | 13 => "!X",
            2 => "!P",
            3 => return None,
            4 => "!F",
            5 => "!S",
            14 => "!V",
            15 => "!C",
            n => return Some(format!("!<{n}>")),
        },
        (false, 0 | 11) | (true, 3 | 129) => return None,
        (true, 1) => match code {
            0 => "!N",
            1 => "!X",
            2 | 3 => "!H",
            4 => return None,
            n => return Some(format!("!<{n}>")),
        },
        (true, 2) => "!F",
        (_, t) => return Some(format!("!<{t}-{code}>")),
    };
    Some(s.to_string())
}

fn read_trace(o: &Node<'_>, read: &mut Read) -> Result<Trace, InputError> {
    let target = target(o, read);
    let mut hops = Hops::default();
    let first = number(o, "firsthop").unwrap_or(1).clamp(1, 255);
    let mut last = number(o, "hop_count").unwrap_or(0).min(255);
    if let Some(list) = o.get("hops") {
        for reply in list.array()? {
            let ttl = match reply.req("probe_ttl").and_then(|t| t.hop_number()) {
                Ok(t) => t,
                Err(e) => {
                    read.skipped.push(e);
                    continue;
                }
            };
            let addr = match reply.req("addr").and_then(|a| a.addr()) {
                Ok(a) => a,
                Err(e) => {
                    read.skipped.push(e);
                    continue;
                }
            };
            last = last.max(u64::from(ttl));
            let hop = hops.at(ttl);
            push_addr(hop, addr);
            if let Some(n) = reply.get("name").and_then(|n| n.value.as_str()) {
                push_name(hop, addr, n);
            }
            if let (Some(t), Some(c)) = (number(&reply, "icmp_type"), number(&reply, "icmp_code")) {
                if let Some(a) = annotation(addr.is_ipv6(), t, c) {
                    push_annotation(hop, &a);
                }
            }
        }
    }
    if let Some(list) = o.get("no_hops").and_then(|l| l.array().ok()) {
        for probe in list {
            if let Some(ttl) = number(&probe, "probe_ttl").and_then(|t| u8::try_from(t).ok()) {
                if ttl >= 1 {
                    hops.at(ttl);
                    last = last.max(u64::from(ttl));
                }
            }
        }
    }
    for ttl in first..=last {
        if let Ok(ttl) = u8::try_from(ttl) {
            hops.at(ttl);
        }
    }
    Ok(Trace {
        target,
        origin: o.origin(),
        hops: hops.into_vec(),
    })
}

fn read_tracelb(o: &Node<'_>, read: &mut Read) -> Result<Trace, InputError> {
    let target = target(o, read);
    let mut hops = Hops::default();
    let first = u8::try_from(number(o, "firsthop").unwrap_or(1).clamp(1, 255)).unwrap_or(1);
    let nodes = match o.get("nodes") {
        Some(n) => n.array()?,
        None => Vec::new(),
    };
    for (i, node) in nodes.iter().enumerate() {
        let addr = node
            .get("addr")
            .and_then(|a| a.value.as_str())
            .and_then(parse_addr);
        if i == 0 {
            if let Some(a) = addr {
                push_addr(hops.at(first), a);
            }
        }
        let Some(groups) = node.get("links").and_then(|l| l.array().ok()) else {
            continue;
        };
        for group in groups {
            // `links` holds arrays of links (or, in some versions, links).
            let links = group.array().unwrap_or_else(|_| vec![group.clone()]);
            for link in links {
                let to = link.get("addr").and_then(|a| a.value.as_str());
                let ttl = link
                    .get("probes")
                    .and_then(|p| p.array().ok())
                    .and_then(|p| p.first().and_then(|p| number(p, "ttl")))
                    .and_then(|t| u8::try_from(t).ok())
                    .filter(|&t| t >= 1);
                match (to, ttl) {
                    (Some(to), Some(ttl)) => match parse_addr(to) {
                        Some(a) => push_addr(hops.at(ttl), a),
                        None if to == "*" => {
                            hops.at(ttl);
                        }
                        None => read
                            .skipped
                            .push(link.error(format!("{to:?} is not an IP address"))),
                    },
                    (None, Some(ttl)) => {
                        hops.at(ttl);
                    }
                    _ => read
                        .skipped
                        .push(link.error("tracelb link without `addr` and probe `ttl`: skipped")),
                }
            }
        }
    }
    Ok(Trace {
        target,
        origin: o.origin(),
        hops: hops.into_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_codes_become_traceroute_annotations() {
        let a = |v6, t, c| annotation(v6, t, c);
        assert_eq!(a(false, 11, 0), None);
        assert_eq!(a(false, 0, 0), None);
        assert_eq!(a(false, 3, 3), None);
        assert_eq!(a(false, 3, 13).as_deref(), Some("!X"));
        assert_eq!(a(false, 3, 10).as_deref(), Some("!X"));
        assert_eq!(a(false, 3, 1).as_deref(), Some("!H"));
        assert_eq!(a(false, 3, 0).as_deref(), Some("!N"));
        assert_eq!(a(false, 3, 2).as_deref(), Some("!P"));
        assert_eq!(a(false, 3, 99).as_deref(), Some("!<99>"));
        assert_eq!(a(false, 12, 0).as_deref(), Some("!<12-0>"));
        assert_eq!(a(true, 1, 1).as_deref(), Some("!X"));
        assert_eq!(a(true, 1, 3).as_deref(), Some("!H"));
        assert_eq!(a(true, 1, 4), None);
        assert_eq!(a(true, 3, 0), None);
        assert_eq!(a(true, 129, 0), None);
    }
}
