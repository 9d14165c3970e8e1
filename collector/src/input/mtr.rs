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

/// An `mtr --json` report has a `report` object.
pub(crate) fn sniff(text: &str) -> u8 {
    match super::json::first_object(text) {
        Some(o) if o.contains_key("report") => 95,
        _ => 0,
    }
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
        let Some(rest) = text.get(from..) else { break };
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
                    read.skipped.push(error);
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
