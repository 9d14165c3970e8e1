//! RIPE Atlas traceroute results: one result object, an array of them (the
//! API's download), or one per line (the streaming and "JSON lines"
//! downloads).
//!
//! The target is `dst_addr`; `result` lists the hops, `{"hop": n,
//! "result": [reply, ...]}`. All firmware variants are read:
//! - a reply `{"x": "*"}` is a lost probe;
//! - `{"from": ADDR, "rtt": ..}` an answer; `err` on it is an ICMP error,
//!   kept as traceroute prints it: `"A"` (administratively prohibited) →
//!   `!X`, `"N"` → `!N`, `"H"` → `!H`, `"P"` → `!P`, `"p"` (port
//!   unreachable) → `!p`, `"h"` (beyond scope) → `!h`, another letter
//!   likewise, a number (an unrecognised code) → `!<n>`;
//! - `late` replies (no `rtt`, arrived after the wait) still name who
//!   answered; `dup` replies are duplicates and are skipped; `icmpext`
//!   (MPLS and other ICMP extensions) is ignored;
//! - a hop entry `{"hop": n, "error": "..."}` (sending failed) is a hop
//!   nobody answered;
//! - the trailing `{"hop": 255, ...}` entry some firmware appends after the
//!   last real hop is dropped;
//! - a result with a top-level `error` and no `result` (e.g. the name did
//!   not resolve) is a trace without hops.
//!
//! `from`, `af`, `prb_id` and the like name the probe; they are not needed.

use std::net::IpAddr;

use serde_json::Value;

use super::json::{documents, kind, Node};
use super::{push_addr, push_annotation, Hops};
use crate::model::{InputError, Trace};

/// A RIPE Atlas result has `type: "traceroute"` or the measurement's
/// keys; an empty array is an Atlas download with no results.
pub(crate) fn sniff(text: &str) -> u8 {
    if super::json::is_empty_array(text) {
        return 50;
    }
    let Some(o) = super::json::first_object(text) else {
        return 0;
    };
    if o.get("type").and_then(Value::as_str) == Some("traceroute") {
        return 95;
    }
    let keys = ["result", "dst_addr", "msm_id", "prb_id"]
        .iter()
        .filter(|k| o.contains_key(**k))
        .count();
    match keys {
        0 => 0,
        1 => 60,
        _ => 90,
    }
}

/// Every trace in `text`, leniently: a result that cannot be read is
/// skipped with a warning, and in a newline-delimited dump so is a line
/// that is not JSON. A single document that is not valid JSON is refused.
pub(crate) fn read(text: &str, name: &str) -> Result<super::Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = super::Read::new(super::Format::AtlasJson);
    if super::json::is_empty_array(text) {
        return Ok(read);
    }
    if is_line_delimited(text) {
        for (i, line) in text.lines().enumerate() {
            read_line(line, name, i, &mut read);
        }
        return Ok(read);
    }
    for doc in &documents(text, name)? {
        read_doc(doc, &mut read);
    }
    Ok(read)
}

/// The first non-blank line is a whole JSON object or array: a dump with
/// one result (or one array of results) per line.
pub(crate) fn is_line_delimited(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| {
            (l.starts_with('{') || l.starts_with('['))
                && serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok()
        })
}

/// Reads one line of a newline-delimited dump (`before` lines precede
/// it) into `read`: its results, or a warning.
pub(crate) fn read_line(line: &str, name: &str, before: usize, read: &mut super::Read) {
    if line.trim().is_empty() {
        return;
    }
    if let Some(trace) = fast::read(line, name, before + 1) {
        read.traces.push(trace);
        return;
    }
    match super::json::documents_at(line, name, before) {
        Ok(docs) => {
            for doc in &docs {
                read_doc(doc, read);
            }
        }
        Err(e) => read.skipped.push(e),
    }
}

fn read_doc(doc: &super::json::Doc<'_>, read: &mut super::Read) {
    let root = doc.root();
    if root.value.is_array() {
        match root.array() {
            Ok(results) => {
                for result in results {
                    match read_result(&result) {
                        Ok(t) => read.traces.push(t),
                        Err(e) => read.skipped.push(e),
                    }
                }
            }
            Err(e) => read.skipped.push(e),
        }
    } else {
        match read_result(&root) {
            Ok(t) => read.traces.push(t),
            Err(e) => read.skipped.push(e),
        }
    }
}

/// Reads every traceroute result in RIPE Atlas JSON.
pub fn read_atlas_json(text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    let text = super::strip_bom(text);
    let docs = documents(text, name)?;
    if docs.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no RIPE Atlas result in input".into(),
        });
    }
    let mut traces = Vec::new();
    for doc in &docs {
        let root = doc.root();
        if root.value.is_array() {
            for result in root.array()? {
                traces.push(read_result(&result)?);
            }
        } else {
            traces.push(read_result(&root)?);
        }
    }
    Ok(traces)
}

fn read_result(node: &Node<'_>) -> Result<Trace, InputError> {
    node.expect_object("a RIPE Atlas traceroute result")?;
    if let Some(t) = node.get("type") {
        let s = t.str()?;
        if s != "traceroute" {
            return Err(t.error(format!(
                "a RIPE Atlas result of type `{s}`, not `traceroute`"
            )));
        }
    }
    let target = node.get("dst_addr").map(|n| n.addr()).transpose()?;
    let mut hops = Hops::default();
    let atlas_keys = ["dst_addr", "msm_id", "prb_id", "type"];
    if node.get("result").is_none() && !atlas_keys.iter().any(|k| node.get(k).is_some()) {
        return Err(node.error(
            "not a RIPE Atlas traceroute result: no `result`, `dst_addr`, `msm_id`, `prb_id` \
             or `type`",
        ));
    }
    let entries = match node.get("result") {
        Some(r) => r.array()?,
        // A failed measurement: `{"error": "...", ...}` and no hops.
        None if node.get("error").is_some() => Vec::new(),
        None => node.req("result")?.array()?,
    };
    let count = entries.len();
    let mut previous: Option<u8> = None;
    for (i, entry) in entries.iter().enumerate() {
        entry.expect_object("a hop entry")?;
        let ttl = entry.req("hop")?.hop_number()?;
        // Firmware marker after the last real hop, not a hop.
        if ttl == 255 && i + 1 == count && previous.is_some_and(|p| p < 254) {
            break;
        }
        previous = Some(ttl);
        let hop = hops.at(ttl);
        let replies = match entry.get("result") {
            Some(r) => r.array()?,
            None if entry.get("error").is_some() => continue,
            None => entry.req("result")?.array()?,
        };
        for reply in replies {
            reply.expect_object("a reply")?;
            if reply.get("dup").is_some_and(|d| truthy(d.value)) {
                continue;
            }
            if let Some(err) = reply.get("err") {
                push_annotation(hop, &annotation(&err)?);
            }
            match reply.get("from") {
                Some(from) => {
                    let addr: IpAddr = from.addr()?;
                    push_addr(hop, addr);
                }
                None if reply.get("x").is_some()
                    || reply.get("error").is_some()
                    || reply.get("err").is_some() => {}
                None => {
                    return Err(
                        reply.error("a reply needs `from` (who answered) or `x` (no answer)")
                    )
                }
            }
        }
    }
    Ok(Trace {
        target,
        origin: node.origin(),
        hops: hops.into_vec(),
    })
}

/// `dup: true` / `dup: 1` (some firmware counts).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Null => false,
        _ => true,
    }
}

/// A reply's `err` as traceroute prints it.
fn annotation(err: &Node<'_>) -> Result<String, InputError> {
    match err.value {
        Value::String(s) if s == "A" => Ok("!X".into()),
        Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {
            Ok(format!("!{s}"))
        }
        Value::Number(n) => match n.as_u64() {
            Some(code) => Ok(format!("!<{code}>")),
            None => Err(err.error(format!("`err` {n} is not an ICMP code"))),
        },
        v => Err(err.error(format!(
            "`err` must be a letter (A, N, H, P, p, h) or an ICMP code, found {}",
            match v {
                Value::String(s) => format!("{s:?}"),
                other => kind(other).to_string(),
            }
        ))),
    }
}

/// The common case at speed: one well-formed result object, read into
/// typed structs that borrow from the line instead of a `serde_json::Value`
/// tree. Anything unusual (a field of an unexpected type, a fault, a
/// string hop number) gives `None`, and the line is read again by the
/// general reader, which gives the same traces and the precise message:
/// `fast_and_general_readers_agree` checks it on every fixture.
mod fast {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    use super::super::{merge_hop, parse_addr, push_addr, push_annotation};
    use crate::model::{Hop, Trace};

    #[derive(Deserialize)]
    struct Reply<'a> {
        #[serde(borrow, default)]
        from: Option<Cow<'a, str>>,
        #[serde(default)]
        x: Option<IgnoredAny>,
        #[serde(default)]
        error: Option<IgnoredAny>,
        #[serde(borrow, default)]
        err: Option<Err<'a>>,
        #[serde(default)]
        dup: Option<serde_json::Value>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Err<'a> {
        Code(u64),
        #[serde(borrow)]
        Letter(Cow<'a, str>),
    }

    /// "Not for the fast path": the general reader decides.
    fn aside<E: de::Error>() -> E {
        E::custom("left to the general reader")
    }

    /// The whole result: hops are built while the `result` array is
    /// read, without collecting its entries and replies first.
    #[derive(Default)]
    struct Parsed {
        kind_ok: bool,
        keyed: bool,
        target: Option<Option<std::net::IpAddr>>,
        has_result: bool,
        has_error: bool,
        hops: Vec<Hop>,
    }

    impl<'de> Visitor<'de> for &mut Parsed {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a RIPE Atlas result")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            self.kind_ok = true;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match key.as_ref() {
                    "type" => {
                        if let Some(k) = map.next_value::<Option<Cow<'de, str>>>()? {
                            self.keyed = true;
                            self.kind_ok = k == "traceroute";
                        }
                    }
                    "dst_addr" => {
                        if let Some(a) = map.next_value::<Option<Cow<'de, str>>>()? {
                            self.keyed = true;
                            self.target = Some(parse_addr(&a));
                        }
                    }
                    "msm_id" | "prb_id" => {
                        if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                            self.keyed = true;
                        }
                    }
                    "error" => {
                        if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                            self.has_error = true;
                        }
                    }
                    "result" => {
                        if self.has_result {
                            return Err(aside());
                        }
                        self.has_result = true;
                        map.next_value_seed(Entries(&mut self.hops))?;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    /// The `result` array: one entry per TTL probed.
    struct Entries<'h>(&'h mut Vec<Hop>);

    impl<'de> DeserializeSeed<'de> for Entries<'_> {
        type Value = ();

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Entries<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("hop entries")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let hops = self.0;
            // The TTL of the entry before, and whether the last entry made
            // a new hop 255 (the firmware's marker, dropped at the end).
            let mut previous: Option<u8> = None;
            let mut marker = false;
            let mut before_last: Option<u8> = None;
            while seq
                .next_element_seed(Entry {
                    hops: &mut *hops,
                    created_255: &mut marker,
                    previous: &mut previous,
                    before: &mut before_last,
                })?
                .is_some()
            {}
            // A trailing `{"hop": 255}` after a last real hop below 254.
            if marker && before_last.is_some_and(|p| p < 254) {
                if let Some(last) = hops.last() {
                    if last.ttl == 255 {
                        hops.pop();
                    }
                }
            }
            Ok(())
        }
    }

    struct Entry<'h> {
        hops: &'h mut Vec<Hop>,
        created_255: &'h mut bool,
        previous: &'h mut Option<u8>,
        before: &'h mut Option<u8>,
    }

    impl<'de> DeserializeSeed<'de> for Entry<'_> {
        type Value = ();

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Entry<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a hop entry")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut at: Option<usize> = None;
            let mut pending: Option<Hop> = None;
            let mut replies = false;
            let mut error = false;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match key.as_ref() {
                    "hop" => {
                        if at.is_some() {
                            return Err(aside());
                        }
                        let n = map.next_value::<u64>()?;
                        let ttl = u8::try_from(n).ok().filter(|t| *t >= 1).ok_or_else(aside)?;
                        *self.before = *self.previous;
                        *self.previous = Some(ttl);
                        let found = self.hops.iter().rposition(|h| h.ttl == ttl);
                        if ttl == 255 && found.is_some() {
                            // A second 255: the marker rule is subtle
                            // there; the general reader applies it.
                            return Err(aside());
                        }
                        *self.created_255 = ttl == 255;
                        at = Some(match found {
                            Some(i) => i,
                            None => {
                                self.hops.push(Hop::new(ttl));
                                self.hops.len() - 1
                            }
                        });
                    }
                    "result" => {
                        if replies || pending.is_some() {
                            return Err(aside());
                        }
                        // Older firmware writes `result` before `hop`:
                        // the replies wait in a hop of their own.
                        let hop = match at.and_then(|i| self.hops.get_mut(i)) {
                            Some(h) => h,
                            None => pending.insert(Hop::new(0)),
                        };
                        if map.next_value_seed(Replies(hop))? {
                            replies = true;
                        }
                    }
                    "error" => {
                        if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                            error = true;
                        }
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            if !(replies || error) {
                return Err(aside());
            }
            let hop = at.and_then(|i| self.hops.get_mut(i)).ok_or_else(aside)?;
            if let Some(p) = pending {
                merge_hop(hop, p);
            }
            Ok(())
        }
    }

    /// A hop entry's replies, applied to its hop; `false` for `null`.
    struct Replies<'h>(&'h mut Hop);

    impl<'de> DeserializeSeed<'de> for Replies<'_> {
        type Value = bool;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_option(self)
        }
    }

    impl<'de> Visitor<'de> for Replies<'_> {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("replies")
        }

        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }

        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_seq(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let hop = self.0;
            let mut last_from: Option<Cow<'de, str>> = None;
            while let Some(reply) = seq.next_element::<Reply<'de>>()? {
                if reply.dup.as_ref().is_some_and(super::truthy) {
                    continue;
                }
                if let Some(err) = &reply.err {
                    let a = match err {
                        Err::Letter(s) if s == "A" => "!X".to_string(),
                        Err::Letter(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {
                            format!("!{s}")
                        }
                        Err::Code(c) => format!("!<{c}>"),
                        Err::Letter(_) => return Err(aside()),
                    };
                    push_annotation(hop, &a);
                }
                match reply.from {
                    // The replies of a hop mostly repeat one address:
                    // parsed once.
                    Some(from) if last_from.as_deref() == Some(from.as_ref()) => {}
                    Some(from) => {
                        push_addr(hop, parse_addr(&from).ok_or_else(aside)?);
                        last_from = Some(from);
                    }
                    None if reply.x.is_some() || reply.error.is_some() || reply.err.is_some() => {}
                    None => return Err(aside()),
                }
            }
            Ok(true)
        }
    }

    /// The trace of `line` (line number `n`), or `None` for the general
    /// reader to decide.
    pub(super) fn read(line: &str, name: &str, n: usize) -> Option<Trace> {
        let mut parsed = Parsed::default();
        let mut de = serde_json::Deserializer::from_str(line);
        de.deserialize_map(&mut parsed).ok()?;
        de.end().ok()?;
        if !parsed.kind_ok || (!parsed.has_result && !parsed.keyed) {
            return None;
        }
        let target = match parsed.target {
            Some(Some(a)) => Some(a),
            Some(None) => return None,
            None => None,
        };
        if !parsed.has_result && !parsed.has_error {
            return None;
        }
        let mut hops = parsed.hops;
        if hops.windows(2).any(|w| w[0].ttl >= w[1].ttl) {
            hops.sort_by_key(|h| h.ttl);
        }
        Some(Trace {
            target,
            origin: format!("{name}:{n}"),
            hops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::json::documents;

    fn ann(v: &str) -> Result<String, InputError> {
        let docs = documents(v, "a").expect("json");
        let root = docs[0].root();
        annotation(&root)
    }

    #[test]
    fn err_codes_map_to_traceroute_annotations() {
        assert_eq!(ann(r#""A""#).expect("A"), "!X");
        for l in ["N", "H", "P", "p", "h"] {
            assert_eq!(ann(&format!("{l:?}")).expect(l), format!("!{l}"));
        }
        assert_eq!(ann("10").expect("10"), "!<10>");
        assert!(ann("-1").is_err());
        assert!(ann(r#""""#).is_err());
        assert!(ann("true").is_err());
    }

    #[test]
    fn dup_flags() {
        assert!(truthy(&Value::Bool(true)));
        assert!(!truthy(&Value::Bool(false)));
        assert!(truthy(&serde_json::json!(1)));
        assert!(!truthy(&serde_json::json!(0)));
    }

    #[test]
    fn a_minimal_result() {
        let t = read_atlas_json(
            r#"{"dst_addr":"192.0.2.9","result":[{"hop":1,"result":[{"x":"*"},{"from":"192.0.2.1","rtt":1.0},{"from":"192.0.2.9","err":"A"}]},{"hop":255,"result":[{"x":"*"}]}]}"#,
            "a",
        )
        .expect("result");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].hops.len(), 1);
        assert_eq!(t[0].hops[0].addrs.len(), 2);
        assert_eq!(t[0].hops[0].annotations, vec!["!X"]);
    }

    #[test]
    fn faults_name_the_field() {
        for (text, origin) in [
            (
                r#"{"result":[{"hop":1,"result":[]},{"result":[]}]}"#,
                "a:1:result[1].hop",
            ),
            (
                r#"{"result":[{"hop":1,"result":[{"rtt":1}]}]}"#,
                "a:1:result[0].result[0]",
            ),
            (
                r#"{"result":[{"hop":1,"result":[{"from":"x"}]}]}"#,
                "a:1:result[0].result[0].from",
            ),
            (
                r#"{"result":[{"hop":1,"result":[{"x":"*","err":[]}]}]}"#,
                "a:1:result[0].result[0].err",
            ),
            (r#"{"result":[{"hop":1}]}"#, "a:1:result[0].result"),
            (
                r#"{"result":[{"hop":256,"result":[]}]}"#,
                "a:1:result[0].hop",
            ),
            (r#"{"result":{}}"#, "a:1:result"),
            (r#"{"dst_addr":"nope","result":[]}"#, "a:1:dst_addr"),
            (r#"{"type":"ping","result":[]}"#, "a:1:type"),
            (r#"{"dst_addr":"192.0.2.1"}"#, "a:1:result"),
            (r#"[{"result":[]},"x"]"#, "a:1:[1]"),
        ] {
            let e = read_atlas_json(text, "a").expect_err(text);
            assert_eq!(e.origin, origin, "{text}: {e}");
        }
    }

    /// The fast reader and the general one give the same trace for every
    /// result of every Atlas fixture and corpus file, or the fast one
    /// steps aside.
    #[test]
    fn fast_and_general_readers_agree() {
        let dirs = ["tests/fixtures/input", "tests/corpus"];
        let mut compared = 0;
        for dir in dirs {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(&path).expect("dir") {
                let p = entry.expect("entry").path();
                let name = p.display().to_string();
                if !(name.contains("atlas")
                    && (name.ends_with(".json") || name.ends_with(".jsonl")))
                {
                    continue;
                }
                let text = std::fs::read_to_string(&p).expect("read");
                let Ok(docs) = documents(&text, "f") else {
                    continue;
                };
                for doc in &docs {
                    let items: Vec<Value> = match &doc.value {
                        Value::Array(a) => a.clone(),
                        v => vec![v.clone()],
                    };
                    for item in items {
                        let line = serde_json::to_string(&item).expect("json");
                        let general = {
                            let d = documents(&line, "f").expect("doc");
                            read_result(&d[0].root()).ok()
                        };
                        if let Some(fast) = fast::read(&line, "f", 1) {
                            assert_eq!(Some(fast), general, "{name}: {line}");
                            compared += 1;
                        }
                        // Each result, mangled field by field, never
                        // disagrees either.
                        for (from, to) in [
                            ("\"hop\":1", "\"hop\":\"1\""),
                            ("\"err\":\"A\"", "\"err\":7"),
                            ("\"from\":\"", "\"from\":\"x"),
                            ("\"result\":[", "\"result\":[{\"x\":1},"),
                            ("\"dup\":true", "\"dup\":0"),
                        ] {
                            let m = line.replacen(from, to, 1);
                            let d = documents(&m, "f").expect("doc");
                            let general = read_result(&d[0].root()).ok();
                            if let Some(fast) = fast::read(&m, "f", 1) {
                                assert_eq!(Some(fast), general, "{name}: {m}");
                            }
                        }
                    }
                }
            }
        }
        assert!(compared >= 10, "only {compared} results compared");
    }
}
