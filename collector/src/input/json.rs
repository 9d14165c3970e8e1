//! JSON plumbing shared by the mtr, RIPE Atlas and Tumen readers: splitting
//! an input into documents (one object, an array, concatenated objects or
//! one object per line), walking a [`Value`] with the field path at hand,
//! and turning a field path back into the line it sits on, so that every
//! error reads `file:line:field` (`input.json:14:result[2].hop`).

use std::fmt;
use std::net::IpAddr;

use serde_json::{Deserializer, Value};

use super::parse_addr;
use crate::model::InputError;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path from a document's root: `result[2].hop`, `[3].result`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Path(pub(crate) Vec<Seg>);

impl Path {
    pub(crate) fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub(crate) fn index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
        + 1
}

/// One top-level JSON value of an input and where it starts.
#[derive(Debug)]
pub(crate) struct Doc<'a> {
    pub(crate) text: &'a str,
    pub(crate) name: &'a str,
    /// Byte offset of the value's first character.
    pub(crate) start: usize,
    pub(crate) value: Value,
    /// Lines of the input before `text` (a line read from a stream).
    pub(crate) line_base: usize,
}

impl<'a> Doc<'a> {
    /// The line a field sits on (the document's first line when the
    /// field cannot be found, e.g. a missing one).
    pub(crate) fn line_of(&self, path: &Path) -> usize {
        let at = locate(self.text, self.start, path).unwrap_or(self.start);
        self.line_base + line_at(self.text, at)
    }

    /// `name:line` of a field (the element or object it designates).
    pub(crate) fn origin_of(&self, path: &Path) -> String {
        format!("{}:{}", self.name, self.line_of(path))
    }

    /// An error at `path`: `name:line:path: what`. A missing field is
    /// placed on the line of the object that lacks it.
    pub(crate) fn error(&self, path: &Path, what: impl Into<String>) -> InputError {
        let mut probe = path.clone();
        let mut line = None;
        while line.is_none() {
            line = locate(self.text, self.start, &probe).map(|at| line_at(self.text, at));
            if probe.0.pop().is_none() {
                break;
            }
        }
        let line = self.line_base + line.unwrap_or_else(|| line_at(self.text, self.start));
        let origin = if path.is_empty() {
            format!("{}:{line}", self.name)
        } else {
            format!("{}:{line}:{path}", self.name)
        };
        InputError {
            origin,
            what: what.into(),
        }
    }

    /// The root as a [`Node`].
    pub(crate) fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            value: &self.value,
            path: Path::default(),
        }
    }
}

/// Skips JSON whitespace from `at`.
fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while matches!(b.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// `name:line: what` for a JSON syntax error.
pub(crate) fn syntax_error(name: &str, e: &serde_json::Error) -> InputError {
    let text = e.to_string();
    let msg = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    InputError {
        origin: format!("{name}:{}", e.line().max(1)),
        what: format!("invalid JSON: {msg} (column {})", e.column()),
    }
}

/// Every top-level JSON value in `text`: one document, several
/// concatenated ones, or one per line.
pub(crate) fn documents<'a>(text: &'a str, name: &'a str) -> Result<Vec<Doc<'a>>, InputError> {
    documents_at(text, name, 0)
}

/// [`documents`] of a text that starts after `line_base` lines of the
/// input (one line of a stream).
pub(crate) fn documents_at<'a>(
    text: &'a str,
    name: &'a str,
    line_base: usize,
) -> Result<Vec<Doc<'a>>, InputError> {
    let mut stream = Deserializer::from_str(text).into_iter::<Value>();
    let mut docs = Vec::new();
    loop {
        let start = skip_ws(text.as_bytes(), stream.byte_offset());
        match stream.next() {
            None => break,
            Some(Ok(value)) => docs.push(Doc {
                text,
                name,
                start,
                value,
                line_base,
            }),
            Some(Err(e)) => {
                let mut error = syntax_error(name, &e);
                error.origin = format!("{name}:{}", line_base + e.line().max(1));
                return Err(error);
            }
        }
    }
    Ok(docs)
}

/// The first JSON object of `text`, for format sniffing: the text itself
/// when it starts with `{`, or its first element when it starts with
/// `[{`. Parsed alone, so that sniffing a large array costs one record.
/// `None` when the text does not start with a complete JSON object.
pub(crate) fn first_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    let b = text.as_bytes();
    let mut at = skip_ws(b, 0);
    if b.get(at) == Some(&b'\xef') {
        // A byte order mark.
        at = skip_ws(b, at + 3);
    }
    if b.get(at) == Some(&b'[') {
        at = skip_ws(b, at + 1);
    }
    if b.get(at) != Some(&b'{') {
        return None;
    }
    let end = skip_value(b, at)?;
    match serde_json::from_slice::<Value>(b.get(at..end)?) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// `text` is a JSON array that is empty (`[]`, spaces allowed).
pub(crate) fn is_empty_array(text: &str) -> bool {
    let t = text.trim_start_matches('\u{feff}').trim();
    t.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|r| r.trim().is_empty())
}

/// What kind of JSON value this is, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value inside a document, with its path for errors.
#[derive(Debug, Clone)]
pub(crate) struct Node<'d> {
    pub(crate) doc: &'d Doc<'d>,
    pub(crate) value: &'d Value,
    pub(crate) path: Path,
}

impl<'d> Node<'d> {
    pub(crate) fn error(&self, what: impl Into<String>) -> InputError {
        self.doc.error(&self.path, what)
    }

    /// `name:line` of this value.
    pub(crate) fn origin(&self) -> String {
        self.doc.origin_of(&self.path)
    }

    /// A member of an object; `None` when absent or `null`.
    pub(crate) fn get(&self, key: &str) -> Option<Node<'d>> {
        match self.value.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(Node {
                doc: self.doc,
                value: v,
                path: self.path.key(key),
            }),
        }
    }

    /// A member that must be there.
    pub(crate) fn req(&self, key: &str) -> Result<Node<'d>, InputError> {
        self.get(key).ok_or_else(|| {
            self.doc
                .error(&self.path.key(key), format!("missing `{key}`"))
        })
    }

    pub(crate) fn expect_object(&self, what: &str) -> Result<(), InputError> {
        if self.value.is_object() {
            Ok(())
        } else {
            Err(self.error(format!(
                "expected {what} (an object), found {}",
                kind(self.value)
            )))
        }
    }

    pub(crate) fn array(&self) -> Result<Vec<Node<'d>>, InputError> {
        match self.value {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| Node {
                    doc: self.doc,
                    value: v,
                    path: self.path.index(i),
                })
                .collect()),
            v => Err(self.error(format!("expected an array, found {}", kind(v)))),
        }
    }

    pub(crate) fn str(&self) -> Result<&'d str, InputError> {
        match self.value {
            Value::String(s) => Ok(s),
            v => Err(self.error(format!("expected a string, found {}", kind(v)))),
        }
    }

    /// A TTL / hop number, 1..=255, given as a number or (older mtr) as a
    /// string of digits.
    pub(crate) fn hop_number(&self) -> Result<u8, InputError> {
        let n = match self.value {
            Value::Number(n) => n.as_u64().ok_or_else(|| {
                self.error(format!(
                    "hop number {n} is not a whole number from 1 to 255"
                ))
            })?,
            Value::String(s) => s.trim().parse::<u64>().map_err(|_| {
                self.error(format!(
                    "hop number {s:?} is not a whole number from 1 to 255"
                ))
            })?,
            v => return Err(self.error(format!("expected a hop number, found {}", kind(v)))),
        };
        match u8::try_from(n) {
            Ok(ttl) if ttl >= 1 => Ok(ttl),
            _ => Err(self.error(format!("hop number {n} is outside 1..=255"))),
        }
    }

    /// A string holding an IP address.
    pub(crate) fn addr(&self) -> Result<IpAddr, InputError> {
        let s = self.str()?;
        parse_addr(s).ok_or_else(|| self.error(format!("{s:?} is not an IP address")))
    }
}

/// Byte offset of the value at `path` in the document starting at `start`,
/// found by a small scan of the text (`None` when the path is not there).
pub(crate) fn locate(text: &str, start: usize, path: &Path) -> Option<usize> {
    let b = text.as_bytes();
    let mut at = skip_ws(b, start);
    for seg in &path.0 {
        match seg {
            Seg::Key(k) => {
                if b.get(at) != Some(&b'{') {
                    return None;
                }
                at += 1;
                loop {
                    at = skip_ws(b, at);
                    if b.get(at) != Some(&b'"') {
                        return None;
                    }
                    let key_start = at + 1;
                    at = skip_string(b, at)?;
                    let key = b.get(key_start..at - 1)?;
                    at = skip_ws(b, at);
                    if b.get(at) != Some(&b':') {
                        return None;
                    }
                    at = skip_ws(b, at + 1);
                    if key == k.as_bytes() {
                        break;
                    }
                    at = skip_ws(b, skip_value(b, at)?);
                    if b.get(at) != Some(&b',') {
                        return None;
                    }
                    at += 1;
                }
            }
            Seg::Index(n) => {
                if b.get(at) != Some(&b'[') {
                    return None;
                }
                at = skip_ws(b, at + 1);
                for _ in 0..*n {
                    if b.get(at) == Some(&b']') {
                        return None;
                    }
                    at = skip_ws(b, skip_value(b, at)?);
                    if b.get(at) != Some(&b',') {
                        return None;
                    }
                    at = skip_ws(b, at + 1);
                }
                if b.get(at) == Some(&b']') {
                    return None;
                }
            }
        }
    }
    Some(at)
}

/// The path of the innermost value containing byte `target`, scanning the
/// document that starts at `start` (for serde errors, which give a line
/// and column but no path).
pub(crate) fn path_at(text: &str, start: usize, target: usize) -> Path {
    let b = text.as_bytes();
    let mut path = Path::default();
    let mut at = skip_ws(b, start);
    'descend: loop {
        match b.get(at) {
            Some(b'{') => {
                at += 1;
                loop {
                    at = skip_ws(b, at);
                    if b.get(at) != Some(&b'"') {
                        return path;
                    }
                    let key_start = at + 1;
                    let Some(after) = skip_string(b, at) else {
                        return path;
                    };
                    let key = String::from_utf8_lossy(b.get(key_start..after - 1).unwrap_or(&[]))
                        .into_owned();
                    at = skip_ws(b, after);
                    if b.get(at) != Some(&b':') {
                        return path;
                    }
                    let value_start = skip_ws(b, at + 1);
                    let Some(value_end) = skip_value(b, value_start) else {
                        path.0.push(Seg::Key(key));
                        return path;
                    };
                    if (value_start..value_end).contains(&target) {
                        path.0.push(Seg::Key(key));
                        at = value_start;
                        continue 'descend;
                    }
                    at = skip_ws(b, value_end);
                    if b.get(at) != Some(&b',') {
                        return path;
                    }
                    at += 1;
                }
            }
            Some(b'[') => {
                at += 1;
                let mut i = 0;
                loop {
                    at = skip_ws(b, at);
                    if matches!(b.get(at), None | Some(b']')) {
                        return path;
                    }
                    let value_start = at;
                    let Some(value_end) = skip_value(b, value_start) else {
                        path.0.push(Seg::Index(i));
                        return path;
                    };
                    if (value_start..value_end).contains(&target) {
                        path.0.push(Seg::Index(i));
                        at = value_start;
                        continue 'descend;
                    }
                    at = skip_ws(b, value_end);
                    if b.get(at) != Some(&b',') {
                        return path;
                    }
                    at += 1;
                    i += 1;
                }
            }
            _ => return path,
        }
    }
}

/// Past the string starting at `at` (which is `"`).
fn skip_string(b: &[u8], mut at: usize) -> Option<usize> {
    at += 1;
    loop {
        match b.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// Past the value starting at `at`.
fn skip_value(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at)? {
        b'"' => skip_string(b, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while let Some(c) = b.get(i) {
                if matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                i += 1;
            }
            (i > at).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[Seg]) -> Path {
        Path(p.to_vec())
    }

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    #[test]
    fn paths_print_like_field_accesses() {
        assert_eq!(
            path(&[key("result"), Seg::Index(2), key("hop")]).to_string(),
            "result[2].hop"
        );
        assert_eq!(
            path(&[Seg::Index(3), key("result")]).to_string(),
            "[3].result"
        );
        assert_eq!(Path::default().to_string(), "");
    }

    #[test]
    fn locate_finds_fields_and_elements_on_their_lines() {
        let text = "\n{\n \"a\": \"x,}]\\\"\",\n \"b\": [\n  1,\n  {\"c\": 2}\n ]\n}\n";
        let at = |p: &[Seg]| locate(text, 0, &path(p)).map(|o| line_at(text, o));
        assert_eq!(at(&[]), Some(2));
        assert_eq!(at(&[key("a")]), Some(3));
        assert_eq!(at(&[key("b")]), Some(4));
        assert_eq!(at(&[key("b"), Seg::Index(0)]), Some(5));
        assert_eq!(at(&[key("b"), Seg::Index(1), key("c")]), Some(6));
        assert_eq!(at(&[key("b"), Seg::Index(2)]), None);
        assert_eq!(at(&[key("zz")]), None);
        assert_eq!(at(&[key("a"), key("x")]), None);
        assert_eq!(at(&[Seg::Index(0)]), None);
    }

    #[test]
    fn locate_never_panics_on_truncated_text() {
        let text = r#"{"a": [1, {"b": "c"}], "d": 4}"#;
        let p = path(&[key("a"), Seg::Index(1), key("b")]);
        for cut in 0..text.len() {
            let _ = locate(&text[..cut], 0, &p);
            let _ = path_at(&text[..cut], 0, cut.saturating_sub(1));
        }
        assert!(locate(text, 0, &p).is_some());
    }

    #[test]
    fn path_at_names_the_innermost_value() {
        let text = r#"{"hops":[{"ttl":1},{"ttl":"x","replies":[]}]}"#;
        let x = text.find("\"x\"").expect("x");
        assert_eq!(path_at(text, 0, x + 1).to_string(), "hops[1].ttl");
        let replies = text.find("[]").expect("replies");
        assert_eq!(path_at(text, 0, replies).to_string(), "hops[1].replies");
        assert_eq!(path_at(text, 0, 0).to_string(), "");
    }

    #[test]
    fn documents_are_split_with_their_start_lines() {
        let text = "{\"a\":1}\n\n  {\"b\":\n2}\n[3]";
        let docs = documents(text, "t").expect("docs");
        let lines: Vec<usize> = docs.iter().map(|d| line_at(text, d.start)).collect();
        assert_eq!(lines, vec![1, 3, 5]);
        let err = documents("{\"a\":1}\n{\"b\":", "t").expect_err("truncated");
        assert_eq!(err.origin, "t:2");
        assert!(err.what.starts_with("invalid JSON"), "{}", err.what);
    }

    #[test]
    fn errors_point_at_the_field_or_the_object_missing_it() {
        let text = "{\n \"result\": [\n  {\"hop\": \"x\"},\n  {}\n ]\n}";
        let docs = documents(text, "f.json").expect("docs");
        let root = docs[0].root();
        let hops = root.req("result").expect("result").array().expect("array");
        let e = hops[0]
            .req("hop")
            .expect("hop")
            .hop_number()
            .expect_err("x");
        assert_eq!(e.origin, "f.json:3:result[0].hop");
        let e = hops[1].req("hop").expect_err("missing");
        assert_eq!(e.origin, "f.json:4:result[1].hop");
        assert_eq!(e.what, "missing `hop`");
        let e = root.req("nothing").expect_err("missing");
        assert_eq!(e.origin, "f.json:1:nothing");
    }
}
