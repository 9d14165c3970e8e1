//! Tumen's own JSON lines (`docs/wire.md`), read with
//! [`tumen_wire::Record::from_json_line`] so the schema version is checked
//! first. Trace records become traces (target = `dst`; the entries of all
//! Paris flows grouped by TTL, addresses kept distinct in order of first
//! appearance, annotations from the replies' `annotation`); ping records
//! are skipped. Blank lines are skipped.
//!
//! The web view's evidence bundle (`tumen-evidence/1`, one JSON object
//! whose `traces` holds the records' lines as received) reads as the
//! lines it holds: `tumen-collector infer bundle.json` re-infers them.

use tumen_wire::{Record, RecordError, TraceRecord};

use super::json::path_at;
use super::{push_addr, push_annotation, Hops};
use crate::model::{InputError, Trace};

/// The `bundle` value of the web view's evidence bundles.
pub const BUNDLE: &str = "tumen-evidence/1";

/// A Tumen record has `kind` and `schema`; an evidence bundle says so.
pub(crate) fn sniff(text: &str) -> u8 {
    match super::json::first_object(text) {
        Some(o) if o.get("bundle").and_then(|b| b.as_str()) == Some(BUNDLE) => 100,
        Some(o) if o.contains_key("kind") && o.contains_key("schema") => {
            if text
                .trim_start_matches('\u{feff}')
                .trim_start()
                .starts_with('[')
            {
                // Refused by `read`, with the reason.
                60
            } else {
                100
            }
        }
        _ => 0,
    }
}

/// Every trace in `text`, as the registry reads it.
pub(crate) fn read(text: &str, name: &str) -> Result<super::Read, InputError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('[') {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "Tumen records are read one JSON object per line, not as a JSON array".into(),
        });
    }
    let mut read = super::Read::new(super::Format::TumenJsonLines);
    if let Some(o) = super::json::first_object(text) {
        if o.get("bundle").and_then(|b| b.as_str()) == Some(BUNDLE) {
            if !o.get("traces").is_some_and(|t| t.is_array()) {
                return Err(InputError {
                    origin: format!("{name}:traces"),
                    what: "evidence bundle without a `traces` array".into(),
                });
            }
            read_bundle(&o, name, &mut read);
            return Ok(read);
        }
    }
    for (i, line) in super::strip_bom(text).lines().enumerate() {
        read_line(line, name, i, &mut read);
    }
    Ok(read)
}

/// Reads one line (`before` lines precede it) into `read`: its trace, or
/// a warning. Blank lines and ping records give nothing.
pub(crate) fn read_line(raw: &str, name: &str, before: usize, read: &mut super::Read) {
    let line = raw.trim();
    if line.is_empty() {
        return;
    }
    let n = before + 1;
    // An evidence bundle written on one line (as the web view serves it)
    // reads as the lines it holds, wherever lines are read one by one.
    if line.contains(BUNDLE) {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(line) {
            if o.get("bundle").and_then(|b| b.as_str()) == Some(BUNDLE) {
                read_bundle(&o, &format!("{name}:{n}"), read);
                return;
            }
        }
    }
    match Record::from_json_line(line) {
        Ok(Record::Trace(t)) => read.traces.push(convert(&t, format!("{name}:{n}"))),
        Ok(Record::Ping(_)) => {}
        Err(e) => read
            .skipped
            .push(record_error(line, &e, &format!("{name}:{n}"))),
    }
}

/// Reads the record lines an evidence bundle holds (`origin` names it).
fn read_bundle(
    o: &serde_json::Map<String, serde_json::Value>,
    origin: &str,
    read: &mut super::Read,
) {
    let Some(lines) = o.get("traces").and_then(|t| t.as_array()) else {
        read.skip(
            format!("{origin}:traces"),
            "evidence bundle without a `traces` array",
        );
        return;
    };
    for (i, line) in lines.iter().enumerate() {
        match line.as_str() {
            // A bundle's lines are records, not bundles: no nesting.
            Some(l) if !l.contains(BUNDLE) => {
                read_line(l, &format!("{origin}:traces[{i}]"), 0, read)
            }
            _ => read.skip(
                format!("{origin}:traces[{i}]"),
                "not a record line (the bundle holds each record's line as received)",
            ),
        }
    }
}

/// Reads every trace record in Tumen JSON lines.
pub fn read_tumen_json_lines(text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    let text = super::strip_bom(text);
    let mut traces = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        match Record::from_json_line(line) {
            Ok(Record::Trace(t)) => traces.push(convert(&t, format!("{name}:{n}"))),
            Ok(Record::Ping(_)) => {}
            Err(e) => return Err(record_error(line, &e, &format!("{name}:{n}"))),
        }
    }
    Ok(traces)
}

pub(crate) fn convert(record: &TraceRecord, origin: String) -> Trace {
    let mut hops = Hops::default();
    for entry in &record.hops {
        let hop = hops.at(entry.ttl);
        for reply in &entry.replies {
            push_addr(hop, reply.addr);
            if let Some(a) = reply.annotation.as_deref().filter(|a| !a.is_empty()) {
                push_annotation(hop, a);
            }
        }
    }
    Trace {
        target: Some(record.dst),
        origin,
        hops: hops.into_vec(),
    }
}

/// `file:line[:field]: what`, the field found from serde's column.
pub(crate) fn record_error(line: &str, e: &RecordError, origin: &str) -> InputError {
    match e {
        RecordError::Schema(s) => InputError {
            origin: format!("{origin}:schema"),
            what: s.to_string(),
        },
        RecordError::Json(j) => {
            // `Record::from_json_line` reads the variant directly, so
            // serde's error carries the column of the fault.
            let text = j.to_string();
            let msg = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(m, _)| m);
            // serde's column (1-based) points at the last byte of the
            // faulty value, or at the end of an object missing a field.
            let path = if j.is_syntax() || j.is_eof() || j.column() == 0 {
                Default::default()
            } else {
                path_at(line, 0, j.column() - 1)
            };
            let column = if j.column() > 0 {
                format!(" (column {})", j.column())
            } else {
                String::new()
            };
            InputError {
                origin: if path.is_empty() {
                    origin.to_string()
                } else {
                    format!("{origin}:{path}")
                },
                what: format!("not a valid Tumen record: {msg}{column}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = r#"{"kind":"trace","schema":1,"id":"00112233445566778899aabbccddeeff","agent":"vp-fra","start_ms":1506848871000,"duration_ms":12.5,"src":"192.0.2.2","dst":"198.18.177.15","prefix":"198.18.177.0/24","protocol":"udp","port":33434,"mode":"full","first_ttl":1,"max_ttl":30,"flows":1,"stop":"unreachable","reached":false,"probes_sent":3,"hops":[{"ttl":1,"flow":0,"sent":2,"replies":[]},{"ttl":2,"flow":0,"sent":1,"replies":[{"addr":"198.18.219.1","rtt_ms":0.25,"kind":"unreachable","icmp_type":3,"icmp_code":13,"annotation":"!X"}]}]}"#;

    /// The web view's evidence bundle, pretty or on one line (as served),
    /// reads as the record lines it holds; what is not a record line is
    /// skipped with its place, and a bundle never nests.
    #[test]
    fn evidence_bundles_read_as_their_lines() {
        let b = serde_json::json!({"bundle": BUNDLE, "event": {"id": 1}, "traces": [TRACE, TRACE]});
        for text in [
            b.to_string(),
            serde_json::to_string_pretty(&b).expect("pretty"),
        ] {
            let r = crate::input::read_traces(&text, "b.json").expect("bundle");
            assert_eq!(r.traces.len(), 2, "{text}");
            assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        }
        let odd = serde_json::json!({"bundle": BUNDLE, "traces": [TRACE, 7, b.to_string()]});
        let r = crate::input::read_traces(&odd.to_string(), "b.json").expect("bundle");
        assert_eq!(r.traces.len(), 1);
        assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
        assert!(r.skipped[0].origin.contains("traces[1]"), "{:?}", r.skipped);
        let none = serde_json::json!({"bundle": BUNDLE}).to_string();
        assert!(crate::input::read_traces(&none, "b.json").is_err());
        let pretty =
            serde_json::to_string_pretty(&serde_json::json!({"bundle": BUNDLE})).expect("p");
        let e = read(&pretty, "b.json").expect_err("no traces");
        assert!(e.what.contains("traces"), "{e}");
    }

    #[test]
    fn the_wire_example_reads() {
        let t = read_tumen_json_lines(TRACE, "w").expect("trace");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].target, "198.18.177.15".parse().ok());
        assert_eq!(t[0].hops.len(), 2);
        assert!(t[0].hops[0].addrs.is_empty());
        assert_eq!(t[0].hops[1].annotations, vec!["!X"]);
    }

    #[test]
    fn faults_name_the_field_from_the_column() {
        let bad_ttl = TRACE.replacen(r#""ttl":2"#, r#""ttl":"two""#, 1);
        let e = read_tumen_json_lines(&bad_ttl, "w").expect_err("ttl");
        assert_eq!(e.origin, "w:1:hops[1].ttl", "{e}");
        let bad_addr = TRACE.replacen("198.18.219.1", "nowhere", 1);
        let e = read_tumen_json_lines(&bad_addr, "w").expect_err("addr");
        assert_eq!(e.origin, "w:1:hops[1].replies[0].addr", "{e}");
        let e = read_tumen_json_lines(r#"{"kind":"trace","schema":9}"#, "w").expect_err("new");
        assert_eq!(e.origin, "w:1:schema");
        assert!(e.what.contains("upgrade"), "{e}");
        let e = read_tumen_json_lines("\n{\"kind\":", "w").expect_err("cut");
        assert_eq!(e.origin, "w:2");
        let e = read_tumen_json_lines(r#"{"kind":"trace","schema":1}"#, "w").expect_err("missing");
        assert_eq!(e.origin, "w:1");
        assert!(e.what.contains("missing field"), "{e}");
    }
}
