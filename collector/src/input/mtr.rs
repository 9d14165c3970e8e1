//! `mtr --json`: `{"report":{"mtr":{"src":..,"dst":..,..},"hubs":[{"count":1,
//! "host":"192.0.2.1","ASN":"AS64496","Loss%":0.0,..},..]}}`.
//!
//! `count` is the hop number (a number, or a string of digits in mtr
//! 0.8x–0.92); `host` is an address, `???` for a hop that never answered,
//! `name (address)` with `-b` (the name is kept), a bare name when mtr
//! resolved names (a name is not an address: the hop is kept `hidden`,
//! without one), or `(waiting for reply)`-like errors (silent). `ASN`
//! (`-z`: `AS64496`, `AS???`) is kept for the hop's address. The target is
//! `mtr.dst` when it is an address (a name given on mtr's command line
//! leaves it unset; the last hop stands in). Several reports may be
//! concatenated, one per line, or given as a JSON array.
//!
//! Reading is lenient: a hub that cannot be read is skipped with a
//! warning naming `file:line:field`, and so is a report without `hubs`, a
//! `dst` that is not a string, or a document that is not valid JSON (the
//! reports before it are kept, and reading resumes at the next line that
//! starts a JSON value).

use serde_json::Value;

use super::json::{syntax_error, Doc, Node};
use super::mtr_report::{line_starts, parse_host, top_level_error, Host, MAX_WARNINGS};
use super::{parse_addr, parse_asn, push_addr, push_asn, push_name, Hops};
use crate::model::{InputError, Trace};

/// An `mtr --json` report has a `report` object; the flat schema some
/// packaged mtr builds print has `dst` and `hops` whose entries have
/// `hop` and `ipaddr`. Comment and prompt lines before it are passed over.
pub(crate) fn sniff(text: &str) -> u8 {
    match super::json::first_object(past_comments(text)) {
        Some(o) if o.contains_key("report") => 95,
        Some(o) if is_flat(&o) => 90,
        _ => 0,
    }
}

/// `text` after leading blank, `#` comment and `$` prompt lines.
fn past_comments(text: &str) -> &str {
    let mut rest = text;
    loop {
        let t = rest.trim_start();
        if t.starts_with('#') || t.starts_with("$ ") {
            match t.find('\n') {
                Some(i) => rest = t.get(i + 1..).unwrap_or(""),
                None => return "",
            }
        } else {
            return t;
        }
    }
}

/// The flat schema: `{"src":..,"dst":..,"hops":[{"hop":1,"ipaddr":..,"host":..}]}`.
fn is_flat(o: &serde_json::Map<String, Value>) -> bool {
    o.contains_key("dst")
        && ["tos", "packetsize", "bitpattern"]
            .iter()
            .any(|k| o.contains_key(*k))
        && o.get("hops").and_then(Value::as_array).is_some_and(|h| {
            h.first()
                .is_none_or(|e| e.get("hop").is_some() && e.get("ipaddr").is_some())
        })
}

/// Every trace in `text`, as the registry reads it: leniently.
pub(crate) fn read(text: &str, name: &str) -> Result<super::Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = super::Read::new(super::Format::MtrJson);
    let docs = lenient_documents(text, name, &mut read);
    if docs.is_empty() {
        return match read.skipped.first() {
            Some(e) => Err(e.clone()),
            None => Err(InputError {
                origin: format!("{name}:1"),
                what: "no mtr report in input".into(),
            }),
        };
    }
    let starts = line_starts(text);
    for doc in &docs {
        if read.skipped.len() >= MAX_WARNINGS {
            read.skip(
                format!("{name}:1"),
                "too many unreadable reports: stopped reading",
            );
            break;
        }
        let root = doc.root();
        if !root.value.is_array() && !root.value.is_object() {
            read.skipped
                .push(top_level_error(doc, &starts, "an mtr --json report"));
        } else if root.value.is_array() {
            match root.array() {
                Ok(reports) => {
                    for report in reports {
                        read_report(&report, &mut read);
                    }
                }
                Err(e) => read.skipped.push(e),
            }
        } else {
            read_report(&root, &mut read);
        }
    }
    // Syntax errors were found first: put every warning in input order.
    let line_of = |e: &InputError| {
        e.origin
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|r| r.split(':').next())
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0)
    };
    read.skipped.sort_by_key(line_of);
    Ok(read)
}

/// Reads every report in `mtr --json` output, strictly: the first hub or
/// report that cannot be read is the error.
pub fn read_mtr_json(text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    let read = read(text, name)?;
    match read.skipped.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(read.traces),
    }
}

/// Every top-level JSON value in `text`; a syntax error is a warning and
/// reading resumes at the next line that starts with `{` or `[`.
fn lenient_documents<'a>(text: &'a str, name: &'a str, read: &mut super::Read) -> Vec<Doc<'a>> {
    let mut docs = Vec::new();
    let mut from = 0usize;
    while from < text.len() {
        // Comment and prompt lines between reports (`# mtr --json x`).
        if let Some(rest) = text.get(from..) {
            let skipped = rest.len() - past_comments(rest).len();
            from += skipped;
        }
        let Some(rest) = text.get(from..) else { break };
        if rest.is_empty() {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        loop {
            let offset = stream.byte_offset();
            let start = from
                + offset
                + rest
                    .get(offset..)
                    .map_or(0, |r| r.len() - r.trim_start().len());
            match stream.next() {
                None => return docs,
                Some(Ok(value)) => docs.push(Doc {
                    text,
                    name,
                    start,
                    value,
                    line_base: 0,
                }),
                Some(Err(e)) => {
                    let mut error = syntax_error(name, &e);
                    let before = text.get(..from).map_or(0, |b| b.matches('\n').count());
                    let line = before + e.line().max(1);
                    error.origin = format!("{name}:{line}");
                    let at = text.lines().nth(line - 1).unwrap_or("").trim_start();
                    if !(at.starts_with('#') || at.starts_with("$ ")) {
                        read.skipped.push(error);
                    }
                    // Resume at the next line starting a JSON value.
                    let next = text
                        .match_indices('\n')
                        .map(|(i, _)| i + 1)
                        .skip(line.saturating_sub(1))
                        .find(|&i| {
                            text.get(i..)
                                .is_some_and(|r| r.starts_with('{') || r.starts_with('['))
                        });
                    match next {
                        Some(n) if n > from => from = n,
                        _ => return docs,
                    }
                    break;
                }
            }
        }
    }
    docs
}

fn read_report(node: &Node<'_>, read: &mut super::Read) {
    if node.get("report").is_none() && node.value.as_object().is_some_and(is_flat) {
        return read_flat(node, read);
    }
    let report = match node
        .expect_object("an mtr --json report")
        .and_then(|()| node.req("report"))
        .and_then(|r| r.expect_object("`report`").map(|()| r))
    {
        Ok(r) => r,
        Err(e) => return read.skipped.push(e),
    };
    let mut target = None;
    if let Some(mtr) = report.get("mtr") {
        match mtr.expect_object("`mtr`") {
            Ok(()) => match mtr.get("dst").map(|d| d.str()) {
                // A host name as given to mtr is not an address.
                Some(Ok(dst)) => target = parse_addr(dst),
                Some(Err(e)) => read.skipped.push(e),
                None => {}
            },
            Err(e) => read.skipped.push(e),
        }
    }
    let hubs = match report.req("hubs").and_then(|h| h.array()) {
        Ok(h) => h,
        Err(e) => return read.skipped.push(e),
    };
    let mut hops = Hops::default();
    for hub in hubs {
        if let Err(e) = read_hub(&hub, &mut hops) {
            read.skipped.push(e);
        }
    }
    read.traces.push(Trace {
        target,
        origin: node.origin(),
        hops: hops.into_vec(),
    });
}

/// The flat schema: `dst`, and `hops` of `{"hop", "ipaddr", "host",
/// "asn"}` (`host` is `unresolved` without DNS).
fn read_flat(node: &Node<'_>, read: &mut super::Read) {
    let target = node
        .get("dst")
        .and_then(|d| d.value.as_str())
        .and_then(parse_addr);
    let entries = match node.req("hops").and_then(|h| h.array()) {
        Ok(h) => h,
        Err(e) => return read.skipped.push(e),
    };
    let mut hops = Hops::default();
    for e in entries {
        let r = (|| -> Result<(), InputError> {
            e.expect_object("a hop")?;
            let ttl = e.req("hop")?.hop_number()?;
            let hop = hops.at(ttl);
            let addr = match e.get("ipaddr") {
                Some(a) => match a.value.as_str() {
                    Some(s) if s.is_empty() || s == "???" => None,
                    _ => Some(a.addr()?),
                },
                None => None,
            };
            let host = e.get("host").and_then(|h| h.value.as_str());
            let asn = e.get("asn").and_then(|a| match a.value {
                Value::String(s) => parse_asn(s),
                Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                _ => None,
            });
            if let Some(a) = addr {
                push_addr(hop, a);
                if let Some(h) = host.filter(|h| *h != "unresolved" && *h != "???") {
                    push_name(hop, a, h);
                }
                if let Some(n) = asn {
                    push_asn(hop, a, n);
                }
            }
            Ok(())
        })();
        if let Err(err) = r {
            read.skipped.push(err);
        }
    }
    read.traces.push(Trace {
        target,
        origin: node.origin(),
        hops: hops.into_vec(),
    });
}

fn read_hub(hub: &Node<'_>, hops: &mut Hops) -> Result<(), InputError> {
    hub.expect_object("a hub")?;
    let ttl = hub.req("count")?.hop_number()?;
    let host_node = hub.req("host")?;
    let host = host_node.str()?;
    let asn = hub
        .get("ASN")
        .and_then(|a| a.value.as_str())
        .and_then(parse_asn);
    let parsed = parse_host(host)
        .ok_or_else(|| host_node.error(format!("{host:?} is not a host mtr prints")))?;
    let hop = hops.at(ttl);
    match parsed {
        Host::Silent => {}
        Host::Addr(a) => {
            push_addr(hop, a);
            if let Some(n) = asn {
                push_asn(hop, a, n);
            }
        }
        Host::Named(n, a) => {
            push_addr(hop, a);
            push_name(hop, a, n);
            if let Some(n) = asn {
                push_asn(hop, a, n);
            }
        }
        Host::Hidden => hop.hidden = true,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flat_schema_after_comment_lines() {
        let text = "# mtr --json 192.0.2.9\n{\"src\":\"h\",\"dst\":\"192.0.2.9\",\"tos\":\"0x0\",\"hops\":[{\"hop\":1,\"ipaddr\":\"192.0.2.1\",\"host\":\"gw.example\",\"asn\":\"AS64500\"},{\"hop\":2,\"ipaddr\":\"???\",\"host\":\"???\"},{\"hop\":3,\"ipaddr\":\"192.0.2.9\",\"host\":\"unresolved\"}]}\n# again\n{\"dst\":\"x\",\"tos\":\"0x0\",\"hops\":[{\"hop\":\"z\",\"ipaddr\":\"192.0.2.1\"}]}\n";
        assert_eq!(sniff(text), 90);
        let r = read(text, "m").expect("read");
        assert_eq!(r.traces.len(), 2);
        let t = &r.traces[0];
        assert_eq!(t.target, "192.0.2.9".parse().ok());
        assert_eq!(t.origin, "m:2");
        let a = "192.0.2.1".parse().expect("ip");
        assert_eq!(t.hops[0].addrs, vec![a]);
        assert_eq!(t.hops[0].name_of(a), Some("gw.example"));
        assert_eq!(t.hops[0].asn_of(a), Some(64500));
        assert!(t.hops[1].addrs.is_empty());
        assert!(t.hops[2].names.is_empty());
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].origin, "m:4:hops[0].hop");
    }

    #[test]
    fn a_minimal_report() {
        let t = read_mtr_json(
            r#"{"report":{"mtr":{"dst":"192.0.2.9"},"hubs":[{"count":2,"host":"192.0.2.1"},{"count":"1","host":"???"}]}}"#,
            "m",
        )
        .expect("report");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].target, "192.0.2.9".parse().ok());
        assert_eq!(t[0].origin, "m:1");
        let ttls: Vec<u8> = t[0].hops.iter().map(|h| h.ttl).collect();
        assert_eq!(ttls, vec![1, 2]);
        assert!(t[0].hops[0].addrs.is_empty());
    }

    #[test]
    fn faults_name_the_field() {
        for (text, origin) in [
            (r#"{"report":{}}"#, "m:1:report.hubs"),
            (r#"{"nope":1}"#, "m:1:report"),
            (
                r#"{"report":{"hubs":[{"host":"x"}]}}"#,
                "m:1:report.hubs[0].count",
            ),
            (
                r#"{"report":{"hubs":[{"count":0,"host":"x"}]}}"#,
                "m:1:report.hubs[0].count",
            ),
            (
                r#"{"report":{"hubs":[{"count":1,"host":5}]}}"#,
                "m:1:report.hubs[0].host",
            ),
            (
                r#"{"report":{"hubs":[{"count":1,"host":"a b c"}]}}"#,
                "m:1:report.hubs[0].host",
            ),
            (r#"{"report":{"hubs":[7]}}"#, "m:1:report.hubs[0]"),
            (
                r#"{"report":{"mtr":{"dst":1},"hubs":[]}}"#,
                "m:1:report.mtr.dst",
            ),
            (r#"{"report":{"mtr":[],"hubs":[]}}"#, "m:1:report.mtr"),
            (r#"{"report":[],"x":1}"#, "m:1:report"),
            (r#"[{"report":{"hubs":[]}}, 3]"#, "m:1:[1]"),
        ] {
            let e = read_mtr_json(text, "m").expect_err(text);
            assert_eq!(e.origin, origin, "{text}: {e}");
        }
        assert_eq!(read_mtr_json("  ", "m").expect_err("empty").origin, "m:1");
    }

    #[test]
    fn lenient_reading_keeps_the_good_hubs_and_reports() {
        let text = "{\"report\":{\"hubs\":[{\"count\":1,\"host\":\"192.0.2.1\"},\n{\"count\":\"x\",\"host\":\"192.0.2.2\"}]}}\n{\"report\":\n{\"hubs\":[}}\n{\"report\":{\"hubs\":[{\"count\":1,\"host\":\"192.0.2.3\"}]}}\n";
        let r = read(text, "m").expect("lenient");
        assert_eq!(r.traces.len(), 2);
        assert_eq!(r.traces[0].hops.len(), 1);
        assert_eq!(r.traces[1].origin, "m:5");
        let origins: Vec<&str> = r.skipped.iter().map(|e| e.origin.as_str()).collect();
        assert_eq!(origins, ["m:2:report.hubs[1].count", "m:4"]);
    }
}
