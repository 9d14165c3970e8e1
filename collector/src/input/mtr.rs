//! `mtr --json`: `{"report":{"mtr":{"src":..,"dst":..,..},"hubs":[{"count":1,
//! "host":"192.0.2.1","Loss%":0.0,..},..]}}`.
//!
//! `count` is the hop number (a number, or a string of digits in mtr
//! 0.8x–0.92); `host` is an address, `???` for a hop that never answered,
//! `name (address)` with `-b`, or a bare name when mtr resolved names:
//! a name is not an address, so the hop is kept without one. The target is
//! `mtr.dst` when it is an address (a name given on mtr's command line
//! leaves it unset; the last hop stands in). Several reports may be
//! concatenated, or given as a JSON array.

use super::json::{documents, Node};
use super::{parse_addr, push_addr, Hops};
use crate::model::{InputError, Trace};

/// An `mtr --json` report has a `report` object.
pub(crate) fn sniff(text: &str) -> u8 {
    match super::json::first_object(text) {
        Some(o) if o.contains_key("report") => 95,
        _ => 0,
    }
}

/// Every trace in `text`, as the registry reads it.
pub(crate) fn read(text: &str, name: &str) -> Result<super::Read, InputError> {
    let mut read = super::Read::new(super::Format::MtrJson);
    read.traces = read_mtr_json(text, name)?;
    Ok(read)
}

/// Reads every report in `mtr --json` output.
pub fn read_mtr_json(text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    let text = super::strip_bom(text);
    let docs = documents(text, name)?;
    if docs.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no mtr report in input".into(),
        });
    }
    let mut traces = Vec::new();
    for doc in &docs {
        let root = doc.root();
        if root.value.is_array() {
            for report in root.array()? {
                traces.push(read_report(&report)?);
            }
        } else {
            traces.push(read_report(&root)?);
        }
    }
    Ok(traces)
}

fn read_report(node: &Node<'_>) -> Result<Trace, InputError> {
    node.expect_object("an mtr --json report")?;
    let report = node.req("report")?;
    report.expect_object("`report`")?;
    let target = match report.get("mtr") {
        None => None,
        Some(mtr) => {
            mtr.expect_object("`mtr`")?;
            match mtr.get("dst") {
                // A host name as given to mtr is not an address.
                Some(dst) => parse_addr(dst.str()?),
                None => None,
            }
        }
    };
    let mut hops = Hops::default();
    for hub in report.req("hubs")?.array()? {
        hub.expect_object("a hub")?;
        let ttl = hub.req("count")?.hop_number()?;
        let host = hub.req("host")?.str()?;
        let hop = hops.at(ttl);
        if let Some(addr) = host_addr(host) {
            push_addr(hop, addr);
        }
    }
    Ok(Trace {
        target,
        origin: node.origin(),
        hops: hops.into_vec(),
    })
}

/// The address in a hub's `host`: itself, or the one in `name (address)`;
/// `???` and names give none.
fn host_addr(host: &str) -> Option<std::net::IpAddr> {
    let host = host.trim();
    parse_addr(host).or_else(|| {
        let inner = host.rsplit_once('(')?.1.strip_suffix(')')?;
        parse_addr(inner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_addr("192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(host_addr("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(
            host_addr("gw.example (192.0.2.1)"),
            "192.0.2.1".parse().ok()
        );
        assert_eq!(host_addr("???"), None);
        assert_eq!(host_addr("gw.example"), None);
        assert_eq!(host_addr("gw (nope)"), None);
        assert_eq!(host_addr(""), None);
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
}
