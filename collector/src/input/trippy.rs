//! trippy's JSON and CSV reports (`trip --mode json`, `--mode csv`).
//!
//! JSON, one pretty-printed report (several may follow one another):
//!
//! ```text
//! {"info": {"target": {"ip": "192.0.2.9", "hostname": "example.net"}, "start_timestamp": ...},
//!  "hops": [{"ttl": 1, "hosts": [{"ip": "192.0.2.1", "hostname": "gw.example"}], "extensions": [], "loss_pct": "0.00", ...}]}
//! ```
//!
//! `info` must be there (Tumen records and others have `hops` too);
//! `info.target.ip` is the target; each hop's `ttl` is the hop number,
//! `hosts` who answered (empty: a silent hop). `hostname` is the reverse
//! lookup as trippy displays it: a name, the address itself when there is
//! none, `AS13335 name` or `AS13335 192.0.2.1` with `--dns-lookup-as-info`
//! (`-z`; the AS number is kept), `Timeout: addr` or `Failed: addr`.
//! `extensions` (MPLS) and the statistics are ignored. Old versions (before
//! 0.9) had no `extensions` and printed `ip` the same way.
//!
//! CSV, a header and one row per hop:
//!
//! ```text
//! Target,TargetIp,Hop,IPs,Addrs,Loss%,Snt,Recv,Last,Avg,Best,Wrst,StdDev
//! example.net,192.0.2.9,1,192.0.2.1,gw.example,0.00,10,10,0.5,0.6,0.4,0.9,0.1
//! ```
//!
//! `TargetIp` is the target; `IPs` the addresses of a hop joined by `:`
//! (IPv6 ones too: they are split back into addresses, preferring a split
//! whose addresses share their first group), `???` for a silent hop;
//! `Addrs` the hostnames (as in JSON) joined by `:`. Versions before 0.8
//! had no `IPs` column (`Target,TargetIp,Hop,Addrs,Loss%,...,StdDev,`,
//! with a trailing comma); their `Addrs` is read for addresses, names
//! alone making the hop `hidden`. A new header, target or a lower hop
//! number starts another trace. Hops and rows that cannot be read are
//! skipped with a warning; blank lines and `trip` command lines are
//! ignored.

use std::net::IpAddr;

use serde_json::Value;

use super::json::{documents, Node};
use super::mtr_csv::split_csv;
use super::mtr_report::{
    clean, command_args, line_starts, quote, top_level_error, MAX_WARNINGS, SNIFF_LINES,
};
use super::{parse_addr, parse_asn, push_addr, push_asn, push_name, Format, Hops, Read};
use crate::model::{Hop, InputError, Trace};

/// How sure this reader is that `text` is a trippy JSON report, 0..=100.
pub(crate) fn sniff_json(text: &str) -> u8 {
    let Some(o) = super::json::first_object(text) else {
        return 0;
    };
    let hops = o.get("hops").and_then(Value::as_array);
    let target = o
        .get("info")
        .and_then(|i| i.get("target"))
        .is_some_and(Value::is_object);
    let first_hop_has_hosts = hops
        .and_then(|h| h.first())
        .is_some_and(|h| h.get("ttl").is_some() && h.get("hosts").is_some());
    match (hops.is_some(), target, first_hop_has_hosts) {
        (true, true, _) => 95,
        (true, false, true) if o.contains_key("info") => 85,
        _ => 0,
    }
}

/// How sure this reader is that `text` is a trippy CSV report, 0..=100.
pub(crate) fn sniff_csv(text: &str) -> u8 {
    for raw in text.lines().take(SNIFF_LINES) {
        let line = clean(raw);
        let t = line.trim();
        if t.starts_with("Target,TargetIp,") {
            return 100;
        }
        if t.contains("TargetIp") && t.contains("Hop") && t.contains("Addrs") {
            return 90;
        }
    }
    0
}

/// Records what trippy displays for `addr`: `name`, `AS64496 name`,
/// `AS64496 192.0.2.1`, `Timeout: 192.0.2.1`.
fn record_hostname(hop: &mut Hop, addr: IpAddr, hostname: &str) {
    let mut s = hostname.trim();
    if s.starts_with("Timeout:") || s.starts_with("Failed:") {
        return;
    }
    if let Some((first, rest)) = s.split_once(' ') {
        if first.starts_with("AS") {
            if let Some(asn) = parse_asn(first) {
                push_asn(hop, addr, asn);
            }
            s = rest.trim();
        }
    }
    let name = s.split_whitespace().next().unwrap_or("");
    if !name.is_empty() && parse_addr(name).is_none() {
        push_name(hop, addr, name);
    }
}

/// Every report in a trippy JSON report.
pub(crate) fn read_json(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::TrippyJson);
    let starts = line_starts(text);
    for doc in &documents(text, name)? {
        if read.skipped.len() >= MAX_WARNINGS {
            read.skip(
                format!("{name}:1"),
                "too many unreadable reports: stopped reading",
            );
            break;
        }
        let root = doc.root();
        if !root.value.is_object() {
            read.skipped
                .push(top_level_error(doc, &starts, "a trippy report"));
            continue;
        }
        match read_report(&root, &mut read) {
            Ok(t) => read.traces.push(t),
            Err(e) => read.skipped.push(e),
        }
    }
    if read.traces.is_empty() && read.skipped.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no trippy report in input".into(),
        });
    }
    Ok(read)
}

fn read_report(root: &Node<'_>, read: &mut Read) -> Result<Trace, InputError> {
    root.expect_object("a trippy report")?;
    // Every trippy version prints `info`; other JSON has `hops` too.
    let info = root.req("info")?;
    let hops_node = root.req("hops")?;
    let target = match info.get("target").and_then(|t| t.get("ip")) {
        Some(ip) => match ip.addr() {
            Ok(a) => Some(a),
            Err(e) => {
                read.skipped.push(e);
                None
            }
        },
        None => None,
    };
    let mut hops = Hops::default();
    for h in hops_node.array()? {
        if let Err(e) = h.expect_object("a hop") {
            read.skipped.push(e);
            continue;
        }
        let ttl = match h.req("ttl").and_then(|t| t.hop_number()) {
            Ok(t) => t,
            Err(e) => {
                read.skipped.push(e);
                continue;
            }
        };
        let hop = hops.at(ttl);
        let Some(hosts) = h.get("hosts") else {
            continue;
        };
        let hosts = match hosts.array() {
            Ok(a) => a,
            Err(e) => {
                read.skipped.push(e);
                continue;
            }
        };
        for host in hosts {
            let addr = match host.req("ip").and_then(|a| a.addr()) {
                Ok(a) => a,
                Err(e) => {
                    read.skipped.push(e);
                    continue;
                }
            };
            push_addr(hop, addr);
            if let Some(n) = host.get("hostname").and_then(|n| n.value.as_str()) {
                record_hostname(hop, addr, n);
            }
        }
    }
    Ok(Trace {
        target,
        origin: root.origin(),
        hops: hops.into_vec(),
    })
}

/// Addresses trippy joined with `:`; `None` when they cannot be split
/// back. IPv6 addresses make the split ambiguous: of the splits into
/// valid addresses, the one whose addresses most often share the first
/// one's first group wins (the first found, longest first, on a tie).
fn split_addrs(s: &str) -> Option<Vec<IpAddr>> {
    let s = s.trim();
    if s.is_empty() || s == "???" {
        return Some(Vec::new());
    }
    if let Some(a) = parse_addr(s) {
        return Some(vec![a]);
    }
    let toks: Vec<&str> = s.split(':').collect();
    if toks.len() > 128 {
        return None;
    }
    let mut best = None;
    let mut budget = 20_000usize;
    partitions(&toks, 0, &mut Vec::new(), &mut best, &mut budget);
    best.map(|(_, v)| v)
}

fn first_group(a: &IpAddr) -> u16 {
    match a {
        IpAddr::V4(v4) => u16::from(v4.octets()[0]),
        IpAddr::V6(v6) => v6.segments()[0],
    }
}

fn partitions(
    toks: &[&str],
    at: usize,
    cur: &mut Vec<IpAddr>,
    best: &mut Option<(usize, Vec<IpAddr>)>,
    budget: &mut usize,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    if at >= toks.len() {
        let first = cur.first().map(first_group);
        let score = cur.iter().filter(|a| Some(first_group(a)) == first).count();
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            *best = Some((score, cur.clone()));
        }
        return;
    }
    for end in (at + 1..=toks.len().min(at + 9)).rev() {
        let Some(piece) = toks.get(at..end) else {
            continue;
        };
        if let Some(a) = parse_addr(&piece.join(":")) {
            cur.push(a);
            partitions(toks, end, cur, best, budget);
            cur.pop();
        }
    }
}

/// Names from an `Addrs` field for the addresses `ips` (in order).
fn record_names(hop: &mut Hop, addrs: &str, ips: &[IpAddr]) {
    let mut rest = addrs.trim();
    for ip in ips {
        let text = ip.to_string();
        let mut entry_end = rest.len();
        // An entry that is (or ends with) the address itself.
        let mut found = None;
        for prefix in ["", "Timeout: ", "Failed: "] {
            if let Some(r) = rest
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix(text.as_str()))
            {
                found = Some(r);
            }
        }
        if let Some((as_tok, r)) = rest.split_once(' ') {
            if as_tok.starts_with("AS") && parse_asn(as_tok).is_some() {
                if let Some(r2) = r.strip_prefix(text.as_str()) {
                    if let Some(n) = parse_asn(as_tok) {
                        push_asn(hop, *ip, n);
                    }
                    found = Some(r2);
                }
            }
        }
        if let Some(r) = found {
            entry_end = rest.len() - r.len();
        } else if let Some(i) = rest.find(':') {
            entry_end = i;
        }
        let entry = rest.get(..entry_end).unwrap_or("");
        if found.is_none() {
            record_hostname(hop, *ip, entry);
        }
        rest = rest.get(entry_end..).unwrap_or("");
        match rest.strip_prefix(':') {
            Some(r) => rest = r,
            None => break,
        }
    }
}

/// Where the columns of a trippy CSV report are.
#[derive(Debug, Clone, Copy)]
struct Columns {
    target: Option<usize>,
    target_ip: Option<usize>,
    hop: usize,
    ips: Option<usize>,
    addrs: Option<usize>,
}

fn columns(fields: &[String]) -> Option<Columns> {
    let at = |name: &str| {
        fields
            .iter()
            .position(|f| f.trim().eq_ignore_ascii_case(name))
    };
    let c = Columns {
        target: at("Target"),
        target_ip: at("TargetIp"),
        hop: at("Hop").or_else(|| at("TTL"))?,
        ips: at("IPs"),
        addrs: at("Addrs"),
    };
    (c.ips.is_some() || c.addrs.is_some()).then_some(c)
}

/// Every trace in a trippy CSV report.
pub(crate) fn read_csv(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::TrippyCsv);
    let mut cols: Option<Columns> = None;
    let mut open: Option<(Trace, Hops, (String, String), u8)> = None;
    let mut header_line: Option<usize> = None;
    let finish = |o: Option<(Trace, Hops, (String, String), u8)>, read: &mut Read| {
        if let Some((mut t, hops, _, _)) = o {
            t.hops = hops.into_vec();
            read.traces.push(t);
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let origin = format!("{name}:{line_no}");
        let line = clean(raw);
        let t = line.trim();
        if t.is_empty() || command_args(t, &["trip", "trippy"]).is_some() {
            continue;
        }
        let fields = split_csv(t, ',');
        if t.starts_with("Target,") || (t.contains("TargetIp") && t.contains("Hop")) {
            match columns(&fields) {
                Some(c) => {
                    cols = Some(c);
                    finish(open.take(), &mut read);
                    header_line = Some(line_no);
                }
                None => read.skip(
                    origin,
                    format!(
                        "header without `Hop` and `IPs`/`Addrs` columns: `{}`",
                        quote(t)
                    ),
                ),
            }
            continue;
        }
        let Some(c) = cols else {
            read.skip(
                origin,
                format!(
                    "not a row of a trippy CSV report (no header before it): `{}`",
                    quote(t)
                ),
            );
            continue;
        };
        let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).map_or("", |f| f.trim());
        let hop_text = field(Some(c.hop));
        let Some(ttl) = hop_text.parse::<u8>().ok().filter(|&n| n >= 1) else {
            read.skip(
                origin,
                format!(
                    "not a row of a trippy CSV report: hop `{}` is not a number from 1 to 255",
                    quote(hop_text)
                ),
            );
            continue;
        };
        let key = (field(c.target).to_string(), field(c.target_ip).to_string());
        let same = open
            .as_ref()
            .is_some_and(|(_, _, k, last)| *k == key && ttl > *last);
        if !same {
            finish(open.take(), &mut read);
            let first = header_line.take().unwrap_or(line_no);
            let trace = Trace {
                target: parse_addr(field(c.target_ip)),
                origin: format!("{name}:{first}"),
                hops: Vec::new(),
            };
            open = Some((trace, Hops::default(), key, ttl));
        }
        let Some((_, hops, _, last)) = open.as_mut() else {
            continue;
        };
        *last = ttl;
        let hop = hops.at(ttl);
        let addrs_field = field(c.addrs);
        if c.ips.is_some() {
            let ips_field = field(c.ips);
            match split_addrs(ips_field) {
                Some(ips) => {
                    for a in &ips {
                        push_addr(hop, *a);
                    }
                    record_names(hop, addrs_field, &ips);
                }
                None => read.skip(
                    origin,
                    format!(
                        "hop {ttl}: `{}` are not addresses joined by `:`",
                        quote(ips_field)
                    ),
                ),
            }
        } else if let Some(ips) = split_addrs(addrs_field) {
            // Before `IPs`: `Addrs` holds addresses when nothing resolved.
            for a in ips {
                push_addr(hop, a);
            }
        } else {
            // Names: something answered, its address is not shown.
            hop.hidden = true;
        }
    }
    finish(open.take(), &mut read);
    if read.traces.is_empty() && read.skipped.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no trippy CSV row in input".into(),
        });
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().expect("ip")).collect()
    }

    #[test]
    fn joined_addresses_split_back() {
        assert_eq!(split_addrs("???"), Some(vec![]));
        assert_eq!(split_addrs("192.0.2.1"), Some(ips(&["192.0.2.1"])));
        assert_eq!(
            split_addrs("192.0.2.1:192.0.2.2"),
            Some(ips(&["192.0.2.1", "192.0.2.2"]))
        );
        assert_eq!(
            split_addrs("2001:db8::1:2001:db8::2"),
            Some(ips(&["2001:db8::1", "2001:db8::2"]))
        );
        assert_eq!(split_addrs("gw.example"), None);
        assert_eq!(split_addrs(&":".repeat(300)), None);
    }

    #[test]
    fn hostnames_give_names_and_as_numbers() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut hop = Hop::new(1);
        record_hostname(&mut hop, a, "AS64496 gw.example");
        assert_eq!(hop.asn_of(a), Some(64496));
        assert_eq!(hop.name_of(a), Some("gw.example"));
        let mut hop = Hop::new(1);
        record_hostname(&mut hop, a, "Timeout: 192.0.2.1");
        record_hostname(&mut hop, a, "192.0.2.1");
        assert_eq!(hop, Hop::new(1));
    }

    #[test]
    fn names_follow_the_addresses() {
        let v = ips(&["192.0.2.1", "2001:db8::2", "192.0.2.3"]);
        let mut hop = Hop::new(1);
        record_names(&mut hop, "a.example:AS64496 2001:db8::2:c.example", &v);
        assert_eq!(hop.name_of(v[0]), Some("a.example"));
        assert_eq!(hop.name_of(v[1]), None);
        assert_eq!(hop.asn_of(v[1]), Some(64496));
        assert_eq!(hop.name_of(v[2]), Some("c.example"));
    }
}
