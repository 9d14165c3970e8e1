//! IXP peering LANs: the prefixes of Internet Exchange peering fabrics, so
//! that upstream inference can tell that a hop sits on one. Such a hop
//! carries no attribution of its own: some LANs are announced by the
//! exchange's AS (AMS-IX's 80.249.208.0/21 by AS1200), and a hop there
//! would otherwise name the exchange as the upstream.
//!
//! [`IxpList`] answers [`IxpList::contains`] with the longest matching LAN.
//! It is read from three formats, recognised from the content by
//! [`IxpFormat::detect`]:
//!
//! - PeeringDB's `ixpfx` API export (`{"data": [{"prefix": ..., "protocol":
//!   "IPv4", "status": "ok", ...}]}`); records whose `status` is not `ok`
//!   are skipped, and the exchange names stay empty (they are in the `ix`
//!   objects, which this reader does not join);
//! - CAIDA's IXP dataset (`ixs_YYYYMM.jsonl`: `#` metadata lines, then one
//!   JSON object an exchange, with `name` and `prefixes: {"ipv4": [...],
//!   "ipv6": [...]}`); an exchange without `prefixes` adds nothing;
//! - plain text, one LAN a line: `prefix [exchange name]`, `#` comments.
//!
//! A prefix with host bits set (`80.249.209.1/21`) is accepted and means
//! its network (`80.249.208.0/21`), as in the prefix table: the LAN is what
//! was meant. A prefix listed twice keeps the last name, so a file loaded
//! over the embedded default ([`IxpList::default_list`], taken from a real
//! PeeringDB export; see `collector/data/README.md`) renames or adds LANs.
//! Malformed input is an [`IxpError`] naming the file and the line (text,
//! CAIDA), the JSON position (syntax) or the JSON path (`data[3].prefix`).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::Value;

/// The embedded IXP LAN list, in the plain-text format (source and date in
/// its header and in `collector/data/README.md`).
pub const DEFAULT_IXP_DATA: &str = include_str!("../data/ixp-prefixes.txt");

/// How the embedded list is named in errors.
const DEFAULT_ORIGIN: &str = "embedded data/ixp-prefixes.txt";
/// A file larger than this is refused rather than read into memory (a full
/// PeeringDB `ixpfx` export is about 2 MB).
const MAX_FILE: u64 = 64 * 1024 * 1024;
/// How much of an offending line or value an error quotes.
const QUOTE_LEN: usize = 120;

/// A file format [`IxpList`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IxpFormat {
    /// PeeringDB `ixpfx` API export.
    PeeringDb,
    /// CAIDA IXP dataset, JSON lines.
    Caida,
    /// `prefix [name]` lines.
    Text,
}

impl IxpFormat {
    /// The format's name, as errors and logs give it.
    pub fn name(self) -> &'static str {
        match self {
            IxpFormat::PeeringDb => "peeringdb",
            IxpFormat::Caida => "caida",
            IxpFormat::Text => "text",
        }
    }

    /// The format of `text`, from its first line that is neither blank nor
    /// a `#` comment: a JSON object that parses alone and has no `data`
    /// key, or one after `#` lines, is CAIDA; another `{` line (a
    /// one-line export with `data`, or the start of a pretty-printed one)
    /// is PeeringDB; anything else is plain text.
    pub fn detect(text: &str) -> IxpFormat {
        let mut comments = false;
        for line in strip_bom(text).lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('#') {
                comments = true;
                continue;
            }
            if !line.starts_with('{') {
                return IxpFormat::Text;
            }
            if comments {
                return IxpFormat::Caida;
            }
            return match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(o)) if !o.contains_key("data") => IxpFormat::Caida,
                _ => IxpFormat::PeeringDb,
            };
        }
        IxpFormat::Text
    }
}

impl fmt::Display for IxpFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an [`IxpPrefix`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IxpSource {
    /// The embedded default list.
    Embedded,
    /// A PeeringDB `ixpfx` export.
    PeeringDb,
    /// A CAIDA IXP dataset file.
    Caida,
    /// A plain-text list.
    Text,
}

impl From<IxpFormat> for IxpSource {
    fn from(format: IxpFormat) -> Self {
        match format {
            IxpFormat::PeeringDb => IxpSource::PeeringDb,
            IxpFormat::Caida => IxpSource::Caida,
            IxpFormat::Text => IxpSource::Text,
        }
    }
}

/// One peering LAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IxpPrefix {
    /// The LAN, host bits cleared.
    pub prefix: IpNet,
    /// The exchange's name; empty when the source does not give it.
    pub name: String,
    /// Where it was read from.
    pub source: IxpSource,
}

/// Why an IXP list could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IxpError {
    /// The file cannot be opened or read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The file as a whole is not an IXP list (too large, not UTF-8).
    #[error("{origin}: {what}")]
    File { origin: String, what: String },
    /// A line of a text or CAIDA file is malformed.
    #[error("{origin}:{line}: {what}")]
    Line {
        origin: String,
        line: usize,
        what: String,
    },
    /// Not valid JSON (a PeeringDB export, or a CAIDA line, whose column
    /// is then counted in that line).
    #[error("{origin}:{line}:{column}: not valid JSON: {what}")]
    Json {
        origin: String,
        line: usize,
        column: usize,
        what: String,
    },
    /// A value of a PeeringDB export is missing or wrong; `path` is its
    /// JSON path (`data[3].prefix`).
    #[error("{origin}: {path}: {what}")]
    Field {
        origin: String,
        path: String,
        what: String,
    },
    /// A value of a CAIDA line is wrong; `path` is its JSON path within the
    /// line (`prefixes.ipv4[1]`).
    #[error("{origin}:{line}: {path}: {what}")]
    LineField {
        origin: String,
        line: usize,
        path: String,
        what: String,
    },
}

/// IXP peering LANs and longest-prefix match over them.
#[derive(Clone, Debug, Default)]
pub struct IxpList {
    /// In the order first added.
    entries: Vec<IxpPrefix>,
    /// Prefix -> index into `entries`.
    index: HashMap<IpNet, usize>,
    /// The IPv4 prefix lengths present, longest first.
    v4_lens: Vec<u8>,
    /// The IPv6 prefix lengths present, longest first.
    v6_lens: Vec<u8>,
    /// A quick "no" for most addresses: which IPv4 /16s any LAN touches
    /// (65,536 bits), and which IPv6 /32s (merged ranges of the first 32
    /// bits, sorted). Lookups of addresses outside every LAN, nearly all of
    /// them, then cost no hashing.
    v4_16s: Vec<u64>,
    v6_32s: Vec<(u32, u32)>,
}

impl IxpList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// The embedded list (a PeeringDB export of 2016-10-19: 438 IPv4 and
    /// 355 IPv6 LANs; see `collector/data/README.md`), parsed at first use.
    pub fn default_list() -> &'static IxpList {
        static DEFAULT: OnceLock<IxpList> = OnceLock::new();
        DEFAULT.get_or_init(|| {
            let mut list = IxpList::new();
            // A unit test proves the embedded text parses; were it ever not
            // to, no IXP list is better than a collector that cannot start.
            match parse_text(
                DEFAULT_IXP_DATA,
                DEFAULT_ORIGIN,
                IxpSource::Embedded,
                &mut list,
            ) {
                Ok(()) => list,
                Err(e) => {
                    tracing::error!(error = %e, "embedded IXP list does not parse; using none");
                    IxpList::new()
                }
            }
        })
    }

    /// Number of LANs, both families.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list holds no LAN.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of IPv4 LANs.
    pub fn len_v4(&self) -> usize {
        self.entries
            .iter()
            .filter(|p| p.prefix.addr().is_ipv4())
            .count()
    }

    /// Number of IPv6 LANs.
    pub fn len_v6(&self) -> usize {
        self.len() - self.len_v4()
    }

    /// Adds a LAN (host bits cleared), or replaces the name and source of
    /// an equal one and returns what was there.
    pub fn insert(&mut self, mut lan: IxpPrefix) -> Option<IxpPrefix> {
        lan.prefix = lan.prefix.trunc();
        if let Some(&i) = self.index.get(&lan.prefix) {
            if let Some(slot) = self.entries.get_mut(i) {
                return Some(std::mem::replace(slot, lan));
            }
        }
        let lens = match lan.prefix {
            IpNet::V4(_) => &mut self.v4_lens,
            IpNet::V6(_) => &mut self.v6_lens,
        };
        let len = lan.prefix.prefix_len();
        if let Err(at) = lens.binary_search_by(|l| len.cmp(l)) {
            lens.insert(at, len);
        }
        self.cover(lan.prefix);
        self.index.insert(lan.prefix, self.entries.len());
        self.entries.push(lan);
        None
    }

    /// Marks the space `net` touches in the quick filters.
    fn cover(&mut self, net: IpNet) {
        match net {
            IpNet::V4(n) => {
                if self.v4_16s.is_empty() {
                    self.v4_16s = vec![0; 1024];
                }
                let first = u32::from(n.network()) >> 16;
                let last = u32::from(n.broadcast()) >> 16;
                for b in first..=last {
                    if let Some(w) = self.v4_16s.get_mut((b / 64) as usize) {
                        *w |= 1 << (b % 64);
                    }
                }
            }
            IpNet::V6(n) => {
                let first = (u128::from(n.network()) >> 96) as u32;
                let last = (u128::from(n.broadcast()) >> 96) as u32;
                self.v6_32s.push((first, last));
                self.v6_32s.sort_unstable();
                let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.v6_32s.len());
                for &(a, b) in &self.v6_32s {
                    match merged.last_mut() {
                        Some(m) if a <= m.1.saturating_add(1) => m.1 = m.1.max(b),
                        _ => merged.push((a, b)),
                    }
                }
                self.v6_32s = merged;
            }
        }
    }

    /// Whether some LAN may hold `addr` (no false "no").
    fn may_hold(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => {
                let b = u32::from(a) >> 16;
                self.v4_16s
                    .get((b / 64) as usize)
                    .is_some_and(|w| w & (1 << (b % 64)) != 0)
            }
            IpAddr::V6(a) => {
                let top = (u128::from(a) >> 96) as u32;
                let at = self.v6_32s.partition_point(|r| r.1 < top);
                self.v6_32s.get(at).is_some_and(|r| r.0 <= top)
            }
        }
    }

    /// The longest LAN that holds `addr`, if any.
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up among
    /// the IPv6 LANs, as the prefix table does.
    pub fn contains(&self, addr: IpAddr) -> Option<&IxpPrefix> {
        if !self.may_hold(addr) {
            return None;
        }
        let found = match addr {
            IpAddr::V4(a) => self.v4_lens.iter().find_map(|&len| {
                let net = Ipv4Net::new(a, len).ok()?.trunc();
                self.index.get(&IpNet::V4(net))
            }),
            IpAddr::V6(a) => self.v6_lens.iter().find_map(|&len| {
                let net = Ipv6Net::new(a, len).ok()?.trunc();
                self.index.get(&IpNet::V6(net))
            }),
        };
        found.and_then(|&i| self.entries.get(i))
    }

    /// Every LAN, in the order first added.
    pub fn iter(&self) -> std::slice::Iter<'_, IxpPrefix> {
        self.entries.iter()
    }

    /// Reads `text` (named `origin` in errors) in the format
    /// [`IxpFormat::detect`] recognises.
    pub fn parse(text: &str, origin: &str) -> Result<IxpList, IxpError> {
        IxpList::parse_as(text, origin, IxpFormat::detect(text))
    }

    /// Reads `text` (named `origin` in errors) in `format`.
    pub fn parse_as(text: &str, origin: &str, format: IxpFormat) -> Result<IxpList, IxpError> {
        let mut list = IxpList::new();
        match format {
            IxpFormat::PeeringDb => parse_peeringdb(text, origin, &mut list)?,
            IxpFormat::Caida => parse_caida(text, origin, &mut list)?,
            IxpFormat::Text => parse_text(text, origin, IxpSource::Text, &mut list)?,
        }
        Ok(list)
    }

    /// Reads a PeeringDB `ixpfx` API export.
    pub fn from_peeringdb(text: &str, origin: &str) -> Result<IxpList, IxpError> {
        IxpList::parse_as(text, origin, IxpFormat::PeeringDb)
    }

    /// Reads a CAIDA IXP dataset file (`ixs_YYYYMM.jsonl`).
    pub fn from_caida(text: &str, origin: &str) -> Result<IxpList, IxpError> {
        IxpList::parse_as(text, origin, IxpFormat::Caida)
    }

    /// Reads the plain format: `prefix [name]` lines, `#` comments.
    pub fn from_text(text: &str, origin: &str) -> Result<IxpList, IxpError> {
        IxpList::parse_as(text, origin, IxpFormat::Text)
    }

    /// Reads a file in the format recognised from its content.
    pub fn load(path: impl AsRef<Path>) -> Result<IxpList, IxpError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = read_file(path, &name)?;
        IxpList::parse(&text, &name)
    }
}

impl Extend<IxpPrefix> for IxpList {
    /// Adds every LAN; an equal prefix takes the later name and source.
    fn extend<I: IntoIterator<Item = IxpPrefix>>(&mut self, iter: I) {
        for lan in iter {
            self.insert(lan);
        }
    }
}

impl FromIterator<IxpPrefix> for IxpList {
    fn from_iter<I: IntoIterator<Item = IxpPrefix>>(iter: I) -> Self {
        let mut list = IxpList::new();
        list.extend(iter);
        list
    }
}

impl IntoIterator for IxpList {
    type Item = IxpPrefix;
    type IntoIter = std::vec::IntoIter<IxpPrefix>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a IxpList {
    type Item = &'a IxpPrefix;
    type IntoIter = std::slice::Iter<'a, IxpPrefix>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// The whole file as text, refused when too large or not UTF-8.
fn read_file(path: &Path, name: &str) -> Result<String, IxpError> {
    use crate::textfile::{read_text, TextFileError};
    read_text(path, MAX_FILE).map_err(|e| match e {
        TextFileError::Io(source) => IxpError::Read {
            path: name.to_string(),
            source,
        },
        TextFileError::TooLarge => IxpError::File {
            origin: name.to_string(),
            what: format!(
                "larger than {} MiB: not an IXP list?",
                MAX_FILE / 1024 / 1024
            ),
        },
        TextFileError::NotUtf8(at) => IxpError::File {
            origin: name.to_string(),
            what: format!(
                "not UTF-8 text (byte {} is not): give a PeeringDB, CAIDA or plain-text IXP list",
                at
            ),
        },
    })
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// At most `QUOTE_LEN` characters of `text`, quoted.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LEN) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or(text)),
        None => format!("{text:?}"),
    }
}

/// A prefix as the formats write it; host bits are cleared.
fn parse_prefix(text: &str) -> Result<IpNet, String> {
    if !text.contains('/') {
        return Err(format!(
            "{} is not a prefix: write address/length (a single address is /32 or /128)",
            quote(text)
        ));
    }
    text.parse::<IpNet>()
        .map(|net| net.trunc())
        .map_err(|_| format!("{} is not an address/length prefix", quote(text)))
}

/// `prefix [name]` lines.
fn parse_text(
    text: &str,
    origin: &str,
    source: IxpSource,
    list: &mut IxpList,
) -> Result<(), IxpError> {
    for (i, raw) in strip_bom(text).lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (prefix, name) = match line.split_once(char::is_whitespace) {
            Some((prefix, name)) => (prefix, name.trim()),
            None => (line, ""),
        };
        let prefix = parse_prefix(prefix).map_err(|what| IxpError::Line {
            origin: origin.to_string(),
            line: i + 1,
            what: format!("{what} (expected `prefix [exchange name]`)"),
        })?;
        list.insert(IxpPrefix {
            prefix,
            name: name.to_string(),
            source,
        });
    }
    Ok(())
}

/// What a JSON value is, for errors: its type, and a scalar's value.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quote(s)),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// serde_json's message without its own " at line L column C".
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// `expected` is the family the context requires (a CAIDA `ipv4` list, a
/// PeeringDB `protocol`); `None` when it says nothing.
fn check_family(net: &IpNet, expected: Option<u8>) -> Result<(), String> {
    let family = if net.addr().is_ipv4() { 4 } else { 6 };
    match expected {
        Some(want) if want != family => Err(format!(
            "{net} is an IPv{family} prefix where IPv{want} is expected"
        )),
        _ => Ok(()),
    }
}

/// PeeringDB `ixpfx` export: `{"data": [{"prefix": ..., ...}, ...]}`.
fn parse_peeringdb(text: &str, origin: &str, list: &mut IxpList) -> Result<(), IxpError> {
    let doc: Value = serde_json::from_str(strip_bom(text)).map_err(|e| IxpError::Json {
        origin: origin.to_string(),
        line: e.line(),
        column: e.column(),
        what: json_message(&e),
    })?;
    let field = |path: String, what: String| IxpError::Field {
        origin: origin.to_string(),
        path,
        what,
    };
    let Value::Object(top) = &doc else {
        return Err(field(
            "$".to_string(),
            format!(
                "expected an object with a \"data\" array (a PeeringDB ixpfx export), found {}",
                describe(&doc)
            ),
        ));
    };
    if let Some(error) = top.get("meta").and_then(|m| m.get("error")) {
        return Err(field(
            "meta.error".to_string(),
            format!(
                "the export is a PeeringDB error answer: {}",
                describe(error)
            ),
        ));
    }
    let data = match top.get("data") {
        Some(Value::Array(data)) => data,
        Some(other) => {
            return Err(field(
                "data".to_string(),
                format!("expected an array, found {}", describe(other)),
            ))
        }
        None => {
            return Err(field(
                "data".to_string(),
                "missing: not a PeeringDB ixpfx export (expected {\"data\": [...]})".to_string(),
            ))
        }
    };
    for (i, record) in data.iter().enumerate() {
        let at = |key: &str| format!("data[{i}]{key}");
        let Value::Object(record) = record else {
            return Err(field(
                at(""),
                format!("expected an ixpfx object, found {}", describe(record)),
            ));
        };
        match record.get("status") {
            None | Some(Value::Null) => {}
            Some(Value::String(status)) if status.eq_ignore_ascii_case("ok") => {}
            // Deleted or pending records are not LANs (any more).
            Some(Value::String(_)) => continue,
            Some(other) => {
                return Err(field(
                    at(".status"),
                    format!("expected a string, found {}", describe(other)),
                ))
            }
        }
        let text = match record.get("prefix") {
            Some(Value::String(text)) => text,
            Some(other) => {
                return Err(field(
                    at(".prefix"),
                    format!("expected a string, found {}", describe(other)),
                ))
            }
            None => return Err(field(at(".prefix"), "missing".to_string())),
        };
        let prefix = parse_prefix(text.trim()).map_err(|what| field(at(".prefix"), what))?;
        let family = match record.get("protocol") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.eq_ignore_ascii_case("ipv4") => Some(4),
            Some(Value::String(p)) if p.eq_ignore_ascii_case("ipv6") => Some(6),
            Some(other) => {
                return Err(field(
                    at(".protocol"),
                    format!("expected \"IPv4\" or \"IPv6\", found {}", describe(other)),
                ))
            }
        };
        check_family(&prefix, family).map_err(|what| field(at(".prefix"), what))?;
        list.insert(IxpPrefix {
            prefix,
            name: String::new(),
            source: IxpSource::PeeringDb,
        });
    }
    Ok(())
}

/// CAIDA `ixs_YYYYMM.jsonl`: `#` lines, then an object a line.
fn parse_caida(text: &str, origin: &str, list: &mut IxpList) -> Result<(), IxpError> {
    for (i, raw) in strip_bom(text).lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| IxpError::Json {
            origin: origin.to_string(),
            line: line_no,
            column: e.column(),
            what: json_message(&e),
        })?;
        let field = |path: String, what: String| IxpError::LineField {
            origin: origin.to_string(),
            line: line_no,
            path,
            what,
        };
        let Value::Object(ix) = &value else {
            return Err(field(
                "$".to_string(),
                format!("expected an exchange object, found {}", describe(&value)),
            ));
        };
        let name = match ix.get("name") {
            None | Some(Value::Null) => "",
            Some(Value::String(name)) => name.trim(),
            Some(other) => {
                return Err(field(
                    "name".to_string(),
                    format!("expected a string, found {}", describe(other)),
                ))
            }
        };
        let prefixes = match ix.get("prefixes") {
            // CAIDA lists exchanges whose LANs no source knows.
            None | Some(Value::Null) => continue,
            Some(Value::Object(prefixes)) => prefixes,
            Some(other) => {
                return Err(field(
                    "prefixes".to_string(),
                    format!(
                        "expected an object {{\"ipv4\": [...], \"ipv6\": [...]}}, found {}",
                        describe(other)
                    ),
                ))
            }
        };
        for (key, family) in [("ipv4", 4u8), ("ipv6", 6u8)] {
            let items = match prefixes.get(key) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(other) => {
                    return Err(field(
                        format!("prefixes.{key}"),
                        format!("expected an array of prefixes, found {}", describe(other)),
                    ))
                }
            };
            for (j, item) in items.iter().enumerate() {
                let path = || format!("prefixes.{key}[{j}]");
                let Value::String(text) = item else {
                    return Err(field(
                        path(),
                        format!("expected a prefix string, found {}", describe(item)),
                    ));
                };
                let prefix = parse_prefix(text.trim()).map_err(|what| field(path(), what))?;
                check_family(&prefix, Some(family)).map_err(|what| field(path(), what))?;
                list.insert(IxpPrefix {
                    prefix,
                    name: name.to_string(),
                    source: IxpSource::Caida,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ixp");

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    /// The name of the LAN holding `addr`, and the LAN.
    fn hit(list: &IxpList, addr: &str) -> Option<(String, String)> {
        list.contains(ip(addr))
            .map(|p| (p.prefix.to_string(), p.name.clone()))
    }

    fn pair(prefix: &str, name: &str) -> Option<(String, String)> {
        Some((prefix.to_string(), name.to_string()))
    }

    #[test]
    fn the_embedded_list_parses_whole_and_has_the_well_known_lans() {
        let mut list = IxpList::new();
        parse_text(
            DEFAULT_IXP_DATA,
            DEFAULT_ORIGIN,
            IxpSource::Embedded,
            &mut list,
        )
        .expect("embedded data parses");
        let data_lines = DEFAULT_IXP_DATA
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(list.len(), data_lines, "no line lost or duplicated");
        assert_eq!((list.len_v4(), list.len_v6()), (438, 355));

        let list = IxpList::default_list();
        assert_eq!(list.len(), 793);
        assert!(list.iter().all(|p| p.source == IxpSource::Embedded));
        // As the 2016 export has them: AMS-IX already a /21, DE-CIX
        // Frankfurt and LINX LON1 still /22s (both /21 today).
        assert_eq!(
            hit(list, "80.249.215.254"),
            pair("80.249.208.0/21", "AMS-IX")
        );
        assert_eq!(
            hit(list, "80.81.192.157"),
            pair("80.81.192.0/22", "DE-CIX Frankfurt")
        );
        assert_eq!(
            hit(list, "195.66.225.1"),
            pair("195.66.224.0/22", "LINX LON1")
        );
        assert_eq!(
            hit(list, "2001:7f8:1::a500:1200:1"),
            pair("2001:7f8:1::/64", "AMS-IX")
        );
        assert_eq!(hit(list, "8.8.8.8"), None);
        assert_eq!(hit(list, "175.45.177.1"), None);
    }

    #[test]
    fn every_embedded_line_is_canonical_and_named() {
        for (i, line) in DEFAULT_IXP_DATA.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let (prefix, name) = line.split_once(' ').unwrap_or((line, ""));
            let n: IpNet = prefix
                .parse()
                .unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            assert_eq!(n, n.trunc(), "line {}: host bits", i + 1);
            assert!(!name.trim().is_empty(), "line {}: no name", i + 1);
            assert!(!name.contains('#'), "line {}: name would be cut", i + 1);
        }
    }

    #[test]
    fn longest_match_wins_in_both_families() {
        let list = IxpList::from_text(
            "10.0.0.0/8 wide\n10.1.0.0/16 narrow\n10.1.2.0/24 narrowest\n\
             2001:db8::/32 v6-wide\n2001:db8:1::/48 v6-narrow\n",
            "t.txt",
        )
        .expect("ok");
        assert_eq!(hit(&list, "10.1.2.3"), pair("10.1.2.0/24", "narrowest"));
        assert_eq!(hit(&list, "10.1.3.3"), pair("10.1.0.0/16", "narrow"));
        assert_eq!(hit(&list, "10.2.0.1"), pair("10.0.0.0/8", "wide"));
        assert_eq!(hit(&list, "11.0.0.1"), None);
        assert_eq!(
            hit(&list, "2001:db8:1::5"),
            pair("2001:db8:1::/48", "v6-narrow")
        );
        assert_eq!(
            hit(&list, "2001:db8:2::5"),
            pair("2001:db8::/32", "v6-wide")
        );
        assert_eq!(hit(&list, "2001:db9::1"), None);
        // Families do not mix: 10.1.2.3 mapped into IPv6 is an IPv6 address.
        assert_eq!(hit(&list, "::ffff:10.1.2.3"), None);
        assert_eq!((list.len(), list.len_v4(), list.len_v6()), (5, 3, 2));
    }

    #[test]
    fn default_and_whole_space_prefixes_match_everything_of_their_family() {
        let list = IxpList::from_text("0.0.0.0/0 all4\n::/0 all6\n", "t").expect("ok");
        assert_eq!(hit(&list, "255.255.255.255"), pair("0.0.0.0/0", "all4"));
        assert_eq!(hit(&list, "0.0.0.0"), pair("0.0.0.0/0", "all4"));
        assert_eq!(hit(&list, "ffff::1"), pair("::/0", "all6"));
    }

    #[test]
    fn the_text_format_takes_names_comments_and_host_bits() {
        let list = IxpList::from_text(&fixture("ixp.txt"), "ixp.txt").expect("ok");
        assert_eq!(list.len(), 6);
        assert!(list.iter().all(|p| p.source == IxpSource::Text));
        assert_eq!(
            hit(&list, "80.81.192.1"),
            pair("80.81.192.0/22", "DE-CIX Frankfurt")
        );
        assert_eq!(hit(&list, "192.0.2.77"), pair("192.0.2.0/24", ""));
        assert_eq!(
            hit(&list, "2001:db8:ffff::1"),
            pair("2001:db8:ffff::/48", "Lab exchange")
        );
        // Host bits: the network is meant.
        let list = IxpList::from_text("80.249.209.1/21 AMS-IX\n", "t").expect("ok");
        assert_eq!(
            list.iter().next().map(|p| p.prefix),
            Some(net("80.249.208.0/21"))
        );
        // CRLF, tabs and a byte-order mark.
        let list = IxpList::from_text("\u{feff}192.0.2.0/24\tLab  IX \r\n", "t").expect("ok");
        assert_eq!(hit(&list, "192.0.2.1"), pair("192.0.2.0/24", "Lab  IX"));
    }

    #[test]
    fn text_errors_name_the_line_and_the_value() {
        for (text, line, needle) in [
            (
                "192.0.2.0/24 a\n\n# c\n192.0.2.0/33 b\n",
                4,
                "\"192.0.2.0/33\" is not an address/length prefix",
            ),
            ("192.0.2.1 lab\n", 1, "a single address is /32"),
            ("AMS-IX 80.249.208.0/21\n", 1, "\"AMS-IX\" is not a prefix"),
            ("300.1.2.0/24\n", 1, "not an address/length prefix"),
        ] {
            let e = IxpList::from_text(text, "lans.txt").expect_err(text);
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("lans.txt:{line}: ")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
            assert!(msg.contains("expected `prefix [exchange name]`"), "{msg}");
        }
    }

    #[test]
    fn a_peeringdb_export_is_read_with_families_checked() {
        let text = fixture("peeringdb-ixpfx.json");
        assert_eq!(IxpFormat::detect(&text), IxpFormat::PeeringDb);
        let list = IxpList::from_peeringdb(&text, "ixpfx.json").expect("ok");
        assert_eq!((list.len(), list.len_v4(), list.len_v6()), (7, 4, 3));
        assert!(list
            .iter()
            .all(|p| p.source == IxpSource::PeeringDb && p.name.is_empty()));
        assert_eq!(hit(&list, "80.249.210.1"), pair("80.249.208.0/21", ""));
        assert_eq!(hit(&list, "195.66.230.5"), pair("195.66.230.0/26", ""));
        assert_eq!(hit(&list, "195.66.231.5"), None);
        assert_eq!(hit(&list, "2001:7f8:4::1"), pair("2001:7f8:4::/64", ""));

        // Pretty-printed, a deleted record skipped, protocol absent, and
        // the fields of today's API (in_dfz, notes).
        let text = r#"{
          "data": [
            {"id": 1, "ixlan_id": 1, "protocol": "IPv4", "prefix": "206.223.115.0/24",
             "in_dfz": true, "notes": "", "status": "ok"},
            {"id": 2, "ixlan_id": 1, "protocol": "IPv6", "prefix": "2001:504:0:2::/64",
             "in_dfz": false, "status": "deleted"},
            {"id": 3, "prefix": "198.32.160.0/24"}
          ],
          "meta": {}
        }"#;
        assert_eq!(IxpFormat::detect(text), IxpFormat::PeeringDb);
        let list = IxpList::parse(text, "pretty.json").expect("ok");
        assert_eq!(list.len(), 2);
        assert_eq!(hit(&list, "2001:504:0:2::1"), None);
    }

    #[test]
    fn peeringdb_errors_give_the_json_position_or_path() {
        let e = IxpList::from_peeringdb(
            "{\"data\": [\n  {\"prefix\": \"1.2.3.0/24\",}\n]}",
            "p.json",
        )
        .expect_err("syntax");
        assert!(matches!(e, IxpError::Json { line: 2, .. }), "{e:?}");
        assert!(e.to_string().starts_with("p.json:2:"), "{e}");

        for (text, path, needle) in [
            ("[]", "$", "expected an object with a \"data\" array"),
            (
                "{\"meta\": {}}",
                "data",
                "missing: not a PeeringDB ixpfx export",
            ),
            (
                "{\"data\": {}}",
                "data",
                "expected an array, found an object",
            ),
            ("{\"data\": [7]}", "data[0]", "found number 7"),
            (
                "{\"data\": [{\"protocol\": \"IPv4\"}]}",
                "data[0].prefix",
                "missing",
            ),
            (
                "{\"data\": [{\"prefix\": 5}]}",
                "data[0].prefix",
                "expected a string, found number 5",
            ),
            (
                "{\"data\": [{\"prefix\": \"1.2.3.0/24\"}, {\"prefix\": \"1.2.3.0\"}]}",
                "data[1].prefix",
                "is not a prefix",
            ),
            (
                "{\"data\": [{\"prefix\": \"x/24\"}]}",
                "data[0].prefix",
                "not an address/length prefix",
            ),
            (
                "{\"data\": [{\"prefix\": \"2001:db8::/32\", \"protocol\": \"IPv4\"}]}",
                "data[0].prefix",
                "IPv6 prefix where IPv4 is expected",
            ),
            (
                "{\"data\": [{\"prefix\": \"1.2.3.0/24\", \"protocol\": \"IPX\"}]}",
                "data[0].protocol",
                "expected \"IPv4\" or \"IPv6\"",
            ),
            (
                "{\"data\": [{\"prefix\": \"1.2.3.0/24\", \"status\": true}]}",
                "data[0].status",
                "found boolean true",
            ),
            (
                "{\"data\": [], \"meta\": {\"error\": \"Too many requests\"}}",
                "meta.error",
                "PeeringDB error answer",
            ),
        ] {
            let e = IxpList::from_peeringdb(text, "p.json").expect_err(text);
            let IxpError::Field {
                path: got, what, ..
            } = &e
            else {
                panic!("{text}: {e:?}");
            };
            assert_eq!(got, path, "{text}");
            assert!(what.contains(needle), "{text}: {e}");
            assert!(
                e.to_string().starts_with(&format!("p.json: {path}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_caida_file_is_read_with_names() {
        let text = fixture("caida-ixs.jsonl");
        assert_eq!(IxpFormat::detect(&text), IxpFormat::Caida);
        let list = IxpList::from_caida(&text, "ixs.jsonl").expect("ok");
        assert_eq!((list.len(), list.len_v4(), list.len_v6()), (9, 5, 4));
        assert!(list.iter().all(|p| p.source == IxpSource::Caida));
        assert_eq!(
            hit(&list, "80.249.208.1"),
            pair("80.249.208.0/21", "AMS-IX")
        );
        assert_eq!(
            hit(&list, "80.81.199.9"),
            pair("80.81.199.0/24", "DE-CIX Frankfurt")
        );
        assert_eq!(
            hit(&list, "2001:7f8:e1::1"),
            pair("2001:7f8:e1::/64", "DE-CIX Frankfurt")
        );
        assert_eq!(
            hit(&list, "195.66.224.9"),
            pair("195.66.224.0/22", "LINX LON1")
        );
        // Without `#` lines, a line without `data` is still CAIDA.
        let one = "{\"name\": \"X\", \"prefixes\": {\"ipv4\": [\"192.0.2.0/24\"]}}\n";
        assert_eq!(IxpFormat::detect(one), IxpFormat::Caida);
        assert_eq!(IxpList::parse(one, "one").expect("ok").len(), 1);
    }

    #[test]
    fn caida_errors_name_the_line_and_the_path() {
        let e = IxpList::from_caida(
            "# meta\n{\"name\": \"A\"}\n{\"name\": \"B\",\n",
            "ixs.jsonl",
        )
        .expect_err("syntax");
        assert!(matches!(e, IxpError::Json { line: 3, .. }), "{e:?}");
        assert!(e.to_string().starts_with("ixs.jsonl:3:"), "{e}");

        for (line, path, needle) in [
            ("[1]", "$", "expected an exchange object, found an array"),
            ("{\"name\": 3}", "name", "expected a string, found number 3"),
            (
                "{\"prefixes\": [\"1.2.3.0/24\"]}",
                "prefixes",
                "expected an object",
            ),
            (
                "{\"prefixes\": {\"ipv4\": \"1.2.3.0/24\"}}",
                "prefixes.ipv4",
                "expected an array",
            ),
            (
                "{\"prefixes\": {\"ipv4\": [\"1.2.3.0/24\", 7]}}",
                "prefixes.ipv4[1]",
                "found number 7",
            ),
            (
                "{\"prefixes\": {\"ipv4\": [\"1.2.3.0/24\", \"bogus\"]}}",
                "prefixes.ipv4[1]",
                "\"bogus\" is not a prefix",
            ),
            (
                "{\"prefixes\": {\"ipv6\": [\"1.2.3.0/24\"]}}",
                "prefixes.ipv6[0]",
                "IPv4 prefix where IPv6 is expected",
            ),
        ] {
            let text = format!("# meta\n{{\"name\": \"ok\"}}\n{line}\n");
            let e = IxpList::from_caida(&text, "ixs.jsonl").expect_err(line);
            let IxpError::LineField {
                line: n,
                path: got,
                what,
                ..
            } = &e
            else {
                panic!("{line}: {e:?}");
            };
            assert_eq!((*n, got.as_str()), (3, path), "{line}");
            assert!(what.contains(needle), "{line}: {e}");
            assert!(
                e.to_string().starts_with(&format!("ixs.jsonl:3: {path}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn load_detects_each_format_and_reports_file_problems() {
        for (name, format, len) in [
            ("peeringdb-ixpfx.json", IxpFormat::PeeringDb, 7),
            ("caida-ixs.jsonl", IxpFormat::Caida, 9),
            ("ixp.txt", IxpFormat::Text, 6),
        ] {
            assert_eq!(IxpFormat::detect(&fixture(name)), format, "{name}");
            let list = IxpList::load(format!("{FIXTURES}/{name}")).expect(name);
            assert_eq!(list.len(), len, "{name}");
        }
        let e = IxpList::load("/nonexistent/ixp.txt").expect_err("missing");
        assert!(matches!(e, IxpError::Read { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/ixp.txt: cannot read"),
            "{e}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bin.txt");
        std::fs::write(&bad, b"192.0.2.0/24 \xff\xfe\n").expect("write");
        let e = IxpList::load(&bad).expect_err("not utf-8");
        assert!(e.to_string().contains("not UTF-8 text (byte 13"), "{e}");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, b"# nothing yet\n").expect("write");
        assert!(IxpList::load(&empty).expect("empty is fine").is_empty());
    }

    #[test]
    fn later_sources_override_names_and_extend() {
        let mut list = IxpList::default_list().clone();
        let before = list.len();
        let user = IxpList::from_text(
            "80.249.208.0/21 AMS-IX (renamed)\n192.0.2.0/24 Lab IX\n",
            "user.txt",
        )
        .expect("ok");
        list.extend(user);
        assert_eq!(list.len(), before + 1);
        assert_eq!(
            list.contains(ip("80.249.208.1"))
                .map(|p| (p.name.as_str(), p.source)),
            Some(("AMS-IX (renamed)", IxpSource::Text))
        );
        let replaced = list.insert(IxpPrefix {
            prefix: net("192.0.2.9/24"),
            name: "again".into(),
            source: IxpSource::Caida,
        });
        assert_eq!(replaced.map(|p| p.name), Some("Lab IX".to_string()));
        assert_eq!(list.len(), before + 1);
        let collected: IxpList = list.iter().cloned().collect();
        assert_eq!(collected.len(), list.len());
    }

    /// Deterministic pseudo-random bytes.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet: &[u8] = b"{}[]\":,/.0123456789abcdef:# \n\tdataprefixipv4ipv6nameIPv4\\";
        let seeds = [
            fixture("peeringdb-ixpfx.json"),
            fixture("caida-ixs.jsonl"),
            fixture("ixp.txt"),
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..3000 {
            let text = if round % 2 == 0 {
                // Random text from JSON-ish characters.
                let len = (xorshift(&mut rng) % 200) as usize;
                (0..len)
                    .map(|_| {
                        let k = (xorshift(&mut rng) as usize) % alphabet.len();
                        char::from(alphabet.get(k).copied().unwrap_or(b' '))
                    })
                    .collect::<String>()
            } else {
                // A real file with a few characters replaced.
                let seed = &seeds[round % seeds.len()];
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..1 + xorshift(&mut rng) % 4 {
                    let at = (xorshift(&mut rng) as usize) % chars.len().max(1);
                    let k = (xorshift(&mut rng) as usize) % alphabet.len();
                    if let Some(c) = chars.get_mut(at) {
                        *c = char::from(alphabet.get(k).copied().unwrap_or(b' '));
                    }
                }
                chars.into_iter().collect()
            };
            for format in [IxpFormat::PeeringDb, IxpFormat::Caida, IxpFormat::Text] {
                if let Ok(list) = IxpList::parse_as(&text, "fuzz", format) {
                    let _ = list.contains(ip("80.249.208.1"));
                    let _ = list.contains(ip("2001:7f8::1"));
                }
            }
            let _ = IxpList::parse(&text, "fuzz");
        }
    }
}
