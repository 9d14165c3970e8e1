//! Readers for the traceroute formats people paste into
//! `tumen-collector infer`, each turned into the common [`Trace`] model:
//!
//! - Linux and macOS `traceroute` text ([`read_traceroute_text`]): the
//!   `traceroute` package, inetutils, BSD/macOS, IPv4 and IPv6, with or
//!   without `-n`, several traces per input or excerpts without a header;
//! - `mtr --json` ([`read_mtr_json`]);
//! - RIPE Atlas traceroute results ([`read_atlas_json`]): one object, an
//!   array of them, or one per line, every firmware variant;
//! - Tumen's own JSON lines ([`read_tumen_json_lines`]), as `tumen-agent
//!   --once` prints them.
//!
//! [`read_traces`] detects the format from the input itself. Every reader
//! returns every trace of its input, or an [`InputError`] naming the line
//! (and for JSON the field: `input.json:14:result[2].hop`) and the fault;
//! none panics, whatever the input.

mod atlas;
mod json;
mod mtr;
mod text;
pub(crate) mod tumen;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

pub use atlas::read_atlas_json;
pub use mtr::read_mtr_json;
pub use text::read_traceroute_text;
pub use tumen::read_tumen_json_lines;

use crate::model::{Hop, InputError, Trace};

/// The input formats [`read_traces`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Linux (`traceroute`, inetutils) or BSD/macOS `traceroute` text.
    TracerouteText,
    /// `mtr --json`.
    MtrJson,
    /// RIPE Atlas traceroute results.
    AtlasJson,
    /// Tumen's JSON lines (`tumen_wire::Record`).
    TumenJsonLines,
}

impl Format {
    /// Every format, in the order detection considers them.
    pub const ALL: [Format; 4] = [
        Format::TracerouteText,
        Format::MtrJson,
        Format::AtlasJson,
        Format::TumenJsonLines,
    ];

    /// Human name, as error messages use it.
    pub fn name(self) -> &'static str {
        match self {
            Format::TracerouteText => "traceroute text (Linux/macOS)",
            Format::MtrJson => "mtr --json",
            Format::AtlasJson => "RIPE Atlas traceroute JSON",
            Format::TumenJsonLines => "Tumen JSON lines",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// "tried traceroute text (Linux/macOS), mtr --json, ..." for messages.
fn tried() -> String {
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    format!("tried {}", names.join(", "))
}

/// Reads every trace in `text`, whatever its format (see [`detect`]).
/// `name` (a file name, `-`, a label) prefixes error origins and the
/// traces' `origin`.
pub fn read_traces(text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    let format = detect(text, name)?;
    read_format(format, text, name)
}

/// Reads `text` as `format`.
pub fn read_format(format: Format, text: &str, name: &str) -> Result<Vec<Trace>, InputError> {
    match format {
        Format::TracerouteText => read_traceroute_text(text, name),
        Format::MtrJson => read_mtr_json(text, name),
        Format::AtlasJson => read_atlas_json(text, name),
        Format::TumenJsonLines => read_tumen_json_lines(text, name),
    }
}

/// Which format `text` is in. JSON (first character `{` or `[`) is told
/// apart by its first value: `kind` and `schema` make a Tumen record,
/// `report` an mtr report, `result`/`dst_addr`/`msm_id`/`prb_id` or
/// `type: "traceroute"` a RIPE Atlas result (an empty array is an Atlas
/// download with no results). Anything else is text if its first
/// significant line (not blank, not a `#` comment, not a `traceroute:`
/// message) is a `traceroute to` header or a hop line. When nothing fits,
/// the error says which formats were tried.
pub fn detect(text: &str, name: &str) -> Result<Format, InputError> {
    let text = strip_bom(text);
    let Some(first) = text.trim_start().chars().next() else {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: format!("empty input: no traceroute ({})", tried()),
        });
    };
    if first == '{' || first == '[' {
        return detect_json(text, name);
    }
    match text::first_significant(text) {
        Some((_, text::LineKind::Header | text::LineKind::Hop)) => Ok(Format::TracerouteText),
        Some((n, _)) => Err(InputError {
            origin: format!("{name}:{n}"),
            what: format!(
                "not a traceroute format I know: this line is neither a `traceroute to` \
                 header nor a hop line, and the input is not JSON ({})",
                tried()
            ),
        }),
        None => Err(InputError {
            origin: format!("{name}:1"),
            what: format!(
                "no traceroute: only comments and `traceroute:` messages ({})",
                tried()
            ),
        }),
    }
}

fn detect_json(text: &str, name: &str) -> Result<Format, InputError> {
    let doc = match json::first_document(text, name) {
        Some(Ok(doc)) => doc,
        Some(Err(mut e)) => {
            e.what = format!(
                "{}; input starting with `{{` or `[` is read as JSON ({})",
                e.what,
                tried()
            );
            return Err(e);
        }
        // Not reached: the input is not blank. Answered, not panicked.
        None => {
            return Err(InputError {
                origin: format!("{name}:1"),
                what: format!("no JSON value in input ({})", tried()),
            })
        }
    };
    let (value, path) = match &doc.value {
        Value::Array(items) => match items.first() {
            None => return Ok(Format::AtlasJson),
            Some(v) => (v, json::Path::default().index(0)),
        },
        v => (v, json::Path::default()),
    };
    let Value::Object(o) = value else {
        return Err(doc.error(
            &path,
            format!(
                "JSON {} is not a traceroute: expected an object ({})",
                json::kind(value),
                tried()
            ),
        ));
    };
    if o.contains_key("kind") && o.contains_key("schema") {
        if !path.is_empty() {
            return Err(doc.error(
                &path,
                "Tumen records are read one JSON object per line, not as a JSON array",
            ));
        }
        return Ok(Format::TumenJsonLines);
    }
    if o.contains_key("report") {
        return Ok(Format::MtrJson);
    }
    let traceroute_type = o.get("type").and_then(Value::as_str) == Some("traceroute");
    if traceroute_type
        || ["result", "dst_addr", "msm_id", "prb_id"]
            .iter()
            .any(|k| o.contains_key(*k))
    {
        return Ok(Format::AtlasJson);
    }
    Err(doc.error(
        &path,
        format!(
            "JSON, but not a traceroute format I know ({}): mtr --json has `report`, \
             RIPE Atlas has `result` and `dst_addr`, Tumen records have `kind` and `schema`",
            tried()
        ),
    ))
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// An address as traceroute tools print it: IPv4, IPv6, IPv6 with a zone
/// (`fe80::1%eth0`, the zone dropped).
pub(crate) fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    let (addr, _zone) = s.split_once('%')?;
    match addr.parse() {
        Ok(a @ IpAddr::V6(_)) => Some(a),
        _ => None,
    }
}

fn empty_hop(ttl: u8) -> Hop {
    Hop {
        ttl,
        addrs: Vec::new(),
        annotations: Vec::new(),
    }
}

/// Adds an address unless the hop has it already.
fn push_addr(hop: &mut Hop, addr: IpAddr) {
    if !hop.addrs.contains(&addr) {
        hop.addrs.push(addr);
    }
}

/// Adds an annotation unless the hop has it already.
fn push_annotation(hop: &mut Hop, annotation: &str) {
    if !hop.annotations.iter().any(|a| a == annotation) {
        hop.annotations.push(annotation.to_string());
    }
}

/// Hops gathered by TTL (entries for the same TTL merge), in TTL order.
#[derive(Debug, Default)]
struct Hops(BTreeMap<u8, Hop>);

impl Hops {
    fn at(&mut self, ttl: u8) -> &mut Hop {
        self.0.entry(ttl).or_insert_with(|| empty_hop(ttl))
    }

    fn into_vec(self) -> Vec<Hop> {
        self.0.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_and_without_zone() {
        assert_eq!(parse_addr("192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(parse_addr("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_addr("fe80::1%eth0"), "fe80::1".parse().ok());
        assert_eq!(parse_addr("192.0.2.1%eth0"), None);
        assert_eq!(parse_addr("???"), None);
        assert_eq!(parse_addr("host.example"), None);
        assert_eq!(parse_addr(""), None);
    }

    #[test]
    fn hops_merge_by_ttl_and_keep_addresses_distinct() {
        let mut hops = Hops::default();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        push_addr(hops.at(3), a);
        push_addr(hops.at(1), b);
        push_addr(hops.at(3), b);
        push_addr(hops.at(3), a);
        push_annotation(hops.at(3), "!X");
        push_annotation(hops.at(3), "!X");
        let v = hops.into_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].ttl, 1);
        assert_eq!(v[1].addrs, vec![a, b]);
        assert_eq!(v[1].annotations, vec!["!X".to_string()]);
    }

    #[test]
    fn detection_tells_the_formats_apart() {
        let cases = [
            (
                "traceroute to x (192.0.2.1), 30 hops max\n",
                Format::TracerouteText,
            ),
            ("# pasted\n 3  192.0.2.1  1.0 ms\n", Format::TracerouteText),
            (r#"{"report":{"hubs":[]}}"#, Format::MtrJson),
            (r#"[{"report":{"hubs":[]}}]"#, Format::MtrJson),
            (r#"{"dst_addr":"192.0.2.1","result":[]}"#, Format::AtlasJson),
            (r#"{"type":"traceroute"}"#, Format::AtlasJson),
            ("[]", Format::AtlasJson),
            ("\u{feff}[]", Format::AtlasJson),
            (r#"{"kind":"ping","schema":1}"#, Format::TumenJsonLines),
        ];
        for (text, want) in cases {
            assert_eq!(detect(text, "t").expect(text), want, "{text}");
        }
    }

    #[test]
    fn detection_failures_list_the_formats_tried() {
        for text in [
            "",
            "  \n",
            "hello world\n",
            "{\"a\":1}",
            "[1]",
            "# only\n",
            "{",
        ] {
            let e = detect(text, "t").expect_err(text);
            assert!(e.what.contains("tried"), "{text}: {e}");
            assert!(e.what.contains("mtr --json"), "{text}: {e}");
        }
        let e = detect(r#"[{"kind":"trace","schema":1}]"#, "t").expect_err("array");
        assert!(e.what.contains("one JSON object per line"), "{e}");
        assert_eq!(e.origin, "t:1:[0]");
    }
}
