//! RIR delegated statistics: what a country holds, so that
//! `infer --target-country KP` can define the target network as every
//! address block and AS number delegated to it.
//!
//! The five RIRs (AFRINIC, APNIC, ARIN, LACNIC, RIPE NCC) publish daily
//! files in the "RIR statistics exchange format", plain
//! (`delegated-<rir>-latest`) and extended
//! (`delegated-<rir>-extended-latest`):
//!
//! ```text
//! # comments (APNIC has a block of them)
//! 2|apnic|20141224|36277|19850701|20141223|+1000      version line
//! apnic|*|ipv4|*|26565|summary                        one summary a type
//! apnic|KP|ipv4|175.45.176.0|1024|20091221|allocated  record
//! afrinic|ZZ|ipv4|41.57.113.0|256||reserved|          extended: + opaque-id
//! ```
//!
//! A record is `registry|cc|type|start|value|date|status[|opaque-id[|...]]`.
//! `ipv4` records count addresses (`value` need not be a power of two nor
//! `start` aligned: the range becomes the fewest CIDR blocks covering it
//! exactly), `ipv6` records give a prefix length, `asn` records a first AS
//! number and a count. `allocated` and `assigned` records are held by their
//! country; `available` and `reserved` ones (country empty or `ZZ`) are
//! held by none, and neither are the records of IANA's own file. Country
//! codes compare without case; dates may be empty or `00000000` (any other
//! date must be 8 digits, which catches shifted columns).
//!
//! The whole file is checked, not only the country's lines: a malformed
//! line, a version line other than the first, or record counts that differ
//! from the version and summary lines (a truncated download) is a
//! [`DelegatedError`] naming the file, the line and the fault.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A file larger than this is refused rather than read into memory (the
/// largest, RIPE NCC's extended file, is about 30 MB).
const MAX_FILE: u64 = 256 * 1024 * 1024;
/// A longer line is not a statistics line.
const MAX_LINE: usize = 4096;
/// How much of an offending line an error quotes.
const QUOTE_LEN: usize = 200;
/// The registries a record may name.
const REGISTRIES: [&str; 6] = ["afrinic", "apnic", "arin", "iana", "lacnic", "ripencc"];

/// What a country holds: its address blocks and AS numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    /// The country code, upper case.
    pub country: String,
    /// Address blocks: IPv4 first, then IPv6, each sorted by address, no
    /// duplicates.
    pub prefixes: Vec<IpNet>,
    /// AS number ranges, sorted, overlapping and adjacent ranges merged.
    pub asns: Vec<RangeInclusive<u32>>,
    /// Records read that the country holds (one record may give several
    /// blocks).
    pub records: usize,
}

impl Holdings {
    /// Nothing held by `country` (not checked; see [`country`]).
    pub fn new(country: &str) -> Self {
        Holdings {
            country: country.to_ascii_uppercase(),
            ..Holdings::default()
        }
    }

    /// Whether no block and no AS number is held.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.asns.is_empty()
    }

    /// Whether a held block contains `addr` (a linear scan: build a
    /// prefix table for many lookups).
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        self.prefixes.iter().any(|p| p.contains(&addr))
    }

    /// Whether `asn` is held.
    pub fn contains_asn(&self, asn: u32) -> bool {
        let at = self.asns.partition_point(|r| *r.end() < asn);
        self.asns.get(at).is_some_and(|r| r.contains(&asn))
    }

    /// Number of IPv4 addresses held.
    pub fn ipv4_addresses(&self) -> u64 {
        self.prefixes
            .iter()
            .filter_map(|p| match p {
                IpNet::V4(n) => Some(1u64 << (32 - u32::from(n.prefix_len()))),
                IpNet::V6(_) => None,
            })
            .sum()
    }

    /// Adds what `other` holds (from another registry's file).
    pub fn merge(&mut self, other: Holdings) {
        self.prefixes.extend(other.prefixes);
        self.asns.extend(other.asns);
        self.records += other.records;
        self.normalize();
    }

    /// Sorts, drops duplicate blocks and merges AS ranges.
    fn normalize(&mut self) {
        self.prefixes.sort_by_key(|p| match p {
            IpNet::V4(n) => (0u8, u128::from(u32::from(n.network())), n.prefix_len()),
            IpNet::V6(n) => (1u8, u128::from(n.network()), n.prefix_len()),
        });
        self.prefixes.dedup();
        self.asns.sort_by_key(|r| (*r.start(), *r.end()));
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(self.asns.len());
        for range in self.asns.drain(..) {
            if let Some(last) = merged.last_mut() {
                if u64::from(*range.start()) <= u64::from(*last.end()) + 1 {
                    if range.end() > last.end() {
                        *last = *last.start()..=*range.end();
                    }
                    continue;
                }
            }
            merged.push(range);
        }
        self.asns = merged;
    }
}

/// Why delegated statistics could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DelegatedError {
    /// The file cannot be opened or read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The file as a whole is not a statistics file (too large, not UTF-8).
    #[error("{origin}: {what}")]
    File { origin: String, what: String },
    /// A line is malformed.
    #[error("{origin}:{line}: {fault}: {text}")]
    Line {
        origin: String,
        line: usize,
        fault: DelegatedFault,
        /// The line, quoted (at most its first 200 characters).
        text: String,
    },
    /// The records do not add up to what the version or a summary line
    /// (at `line`) declares.
    #[error("{origin}:{line}: {what}")]
    Count {
        origin: String,
        line: usize,
        what: String,
    },
    /// The country code asked for is not one.
    #[error("country code {code:?}: {why}")]
    Country { code: String, why: &'static str },
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegatedFault {
    /// Fewer fields than a record has.
    #[error("expected at least 7 `|`-separated fields (registry|cc|type|start|value|date|status), found {0}")]
    FieldCount(usize),
    /// Not one of the registries.
    #[error("unknown registry {0:?} (expected afrinic, apnic, arin, iana, lacnic or ripencc)")]
    Registry(String),
    /// Not empty and not two letters.
    #[error("{0:?} is not a two-letter country code")]
    CountryCode(String),
    /// Not `asn`, `ipv4` or `ipv6`.
    #[error("unknown type {0:?} (expected asn, ipv4 or ipv6)")]
    Type(String),
    /// Not one of the four statuses.
    #[error("unknown status {0:?} (expected allocated, assigned, available or reserved)")]
    Status(String),
    /// The start of an `ipv4` record.
    #[error("{0:?} is not an IPv4 address")]
    Ipv4(String),
    /// The start of an `ipv6` record.
    #[error("{0:?} is not an IPv6 address")]
    Ipv6(String),
    /// The start of an `asn` record.
    #[error("{0:?} is not an AS number (0 to 4294967295)")]
    Asn(String),
    /// The value of an `ipv4` or `asn` record is not a decimal count.
    #[error("{0:?} is not a count (a decimal number)")]
    Number(String),
    /// A count of zero.
    #[error("a count of 0: a record holds at least one address or AS number")]
    ZeroCount,
    /// An `ipv4` range past the end of the address space.
    #[error("{count} addresses from {start} go past 255.255.255.255")]
    Ipv4Overflow { start: Ipv4Addr, count: u64 },
    /// An `asn` range past the last AS number.
    #[error("{count} AS numbers from AS{first} go past AS4294967295")]
    AsnOverflow { first: u32, count: u64 },
    /// The value of an `ipv6` record.
    #[error("{0:?} is not an IPv6 prefix length (1 to 128)")]
    PrefixLength(String),
    /// Not empty, `00000000` or eight digits.
    #[error("{0:?} is not a date (YYYYMMDD, or empty)")]
    Date(String),
    /// A version line that is malformed or out of place.
    #[error("version line: {0}")]
    Version(String),
    /// A summary line that is malformed or repeated.
    #[error("summary line: {0}")]
    Summary(String),
    /// A line longer than any statistics line.
    #[error("line is longer than {0} bytes")]
    TooLong(usize),
}

/// The address blocks and AS numbers that `cc` holds according to the
/// statistics file `text` (named `origin` in errors). The whole file is
/// checked.
pub fn country(text: &str, origin: &str, cc: &str) -> Result<Holdings, DelegatedError> {
    let cc = country_code(cc)?;
    let mut holdings = Holdings::new(&cc);
    read_into(text, origin, &mut holdings)?;
    holdings.normalize();
    Ok(holdings)
}

/// What `cc` holds according to several statistics files (typically one a
/// registry), merged.
pub fn load_country<P: AsRef<Path>>(paths: &[P], cc: &str) -> Result<Holdings, DelegatedError> {
    let cc = country_code(cc)?;
    let mut holdings = Holdings::new(&cc);
    for path in paths {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = read_file(path, &name)?;
        read_into(&text, &name, &mut holdings)?;
    }
    holdings.normalize();
    Ok(holdings)
}

/// The fewest CIDR blocks that cover exactly `count` addresses from
/// `start`, in order; `None` when `count` is 0 or the range goes past
/// 255.255.255.255.
pub fn ipv4_range_to_prefixes(start: Ipv4Addr, count: u64) -> Option<Vec<Ipv4Net>> {
    let first = u32::from(start);
    // Inclusive end; past 255.255.255.255 (or an empty range) is refused.
    let last = u64::from(first).checked_add(count.checked_sub(1)?)?;
    let last = u32::try_from(last).ok()?;
    crate::table::range_to_prefixes(first, last)
        .into_iter()
        .map(|(at, len)| Ipv4Net::new(Ipv4Addr::from(at), len).ok())
        .collect()
}

/// `cc`, upper case, if it can name a country's holdings.
fn country_code(cc: &str) -> Result<String, DelegatedError> {
    let code = cc.trim().to_ascii_uppercase();
    let why = if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        "expected two letters, as ISO 3166 gives them (KP, CN, RU)"
    } else if code == "ZZ" {
        "ZZ marks space that no country holds (available, reserved)"
    } else {
        return Ok(code);
    };
    Err(DelegatedError::Country {
        code: cc.to_string(),
        why,
    })
}

/// The whole file as text, refused when too large or not UTF-8.
fn read_file(path: &Path, name: &str) -> Result<String, DelegatedError> {
    use crate::textfile::{read_text, TextFileError};
    read_text(path, MAX_FILE).map_err(|e| match e {
        TextFileError::Io(source) => DelegatedError::Read {
            path: name.to_string(),
            source,
        },
        TextFileError::TooLarge => DelegatedError::File {
            origin: name.to_string(),
            what: format!("larger than {} MiB: not a delegated statistics file?", MAX_FILE / 1024 / 1024),
        },
        TextFileError::NotUtf8(at) => DelegatedError::File {
            origin: name.to_string(),
            what: format!("not UTF-8 text (byte {} is not): give the uncompressed delegated-<rir>-latest file", at),
        },
    })
}

/// At most `QUOTE_LEN` characters of `text`, quoted.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LEN) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or(text)),
        None => format!("{text:?}"),
    }
}

/// A resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Asn,
    Ipv4,
    Ipv6,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        match text.to_ascii_lowercase().as_str() {
            "asn" => Some(Kind::Asn),
            "ipv4" => Some(Kind::Ipv4),
            "ipv6" => Some(Kind::Ipv6),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Asn => "asn",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
        }
    }
}

/// What a record line gives.
enum Resource {
    Blocks(Vec<IpNet>),
    Asns(RangeInclusive<u32>),
}

/// A checked record line.
struct Record<'a> {
    kind: Kind,
    cc: &'a str,
    held: bool,
    resource: Resource,
}

/// A count of 1 or more, decimal digits only (no sign, no spaces).
fn count(text: &str) -> Result<u64, DelegatedFault> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DelegatedFault::Number(text.to_string()));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(DelegatedFault::ZeroCount),
        Ok(n) => Ok(n),
        Err(_) => Err(DelegatedFault::Number(text.to_string())),
    }
}

/// `registry|cc|type|start|value|date|status[|opaque-id[|extensions]]`
fn parse_record<'a>(fields: &[&'a str]) -> Result<Record<'a>, DelegatedFault> {
    let [registry, cc, kind, start, value, date, status, ..] = *fields else {
        return Err(DelegatedFault::FieldCount(fields.len()));
    };
    let registry = registry.to_ascii_lowercase();
    if !REGISTRIES.contains(&registry.as_str()) {
        return Err(DelegatedFault::Registry(registry));
    }
    if !(cc.is_empty() || (cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_alphabetic()))) {
        return Err(DelegatedFault::CountryCode(cc.to_string()));
    }
    let kind = Kind::parse(kind).ok_or_else(|| DelegatedFault::Type(kind.to_string()))?;
    let held = match status.to_ascii_lowercase().as_str() {
        "allocated" | "assigned" => true,
        "available" | "reserved" => false,
        // IANA's own file gives the registry a block went to as its
        // status; those records are no country's holdings.
        _ if registry == "iana" => false,
        _ => return Err(DelegatedFault::Status(status.to_string())),
    };
    // IANA delegates to registries, never to a country.
    let held = held && registry != "iana";
    let resource = match kind {
        Kind::Ipv4 => {
            let addr: Ipv4Addr = start
                .parse()
                .map_err(|_| DelegatedFault::Ipv4(start.to_string()))?;
            let n = count(value)?;
            let blocks = ipv4_range_to_prefixes(addr, n).ok_or(DelegatedFault::Ipv4Overflow {
                start: addr,
                count: n,
            })?;
            Resource::Blocks(blocks.into_iter().map(IpNet::V4).collect())
        }
        Kind::Ipv6 => {
            let addr: Ipv6Addr = start
                .parse()
                .map_err(|_| DelegatedFault::Ipv6(start.to_string()))?;
            let bad_len = || DelegatedFault::PrefixLength(value.to_string());
            if value.is_empty() || value.len() > 3 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_len());
            }
            let len: u8 = value.parse().map_err(|_| bad_len())?;
            if len == 0 {
                return Err(bad_len());
            }
            // Host bits (never seen in the published files) are cleared:
            // the block is what was delegated.
            let net = Ipv6Net::new(addr, len).map_err(|_| bad_len())?.trunc();
            Resource::Blocks(vec![IpNet::V6(net)])
        }
        Kind::Asn => {
            if start.is_empty() || !start.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DelegatedFault::Asn(start.to_string()));
            }
            let first: u32 = start
                .parse()
                .map_err(|_| DelegatedFault::Asn(start.to_string()))?;
            let n = count(value)?;
            let last = u64::from(first)
                .checked_add(n - 1)
                .and_then(|last| u32::try_from(last).ok())
                .ok_or(DelegatedFault::AsnOverflow { first, count: n })?;
            Resource::Asns(first..=last)
        }
    };
    if !(date.is_empty() || (date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))) {
        return Err(DelegatedFault::Date(date.to_string()));
    }
    Ok(Record {
        kind,
        cc,
        held,
        resource,
    })
}

/// `version|registry|serial|records|startdate|enddate[|UTCoffset]`: the
/// number of records declared.
fn parse_version(fields: &[&str]) -> Result<u64, DelegatedFault> {
    let bad = DelegatedFault::Version;
    let [version, registry, _serial, records, _start, _end, ..] = *fields else {
        return Err(bad(format!(
            "expected version|registry|serial|records|startdate|enddate|UTCoffset, found {} fields",
            fields.len()
        )));
    };
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or("");
    let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !numeric(major) || !parts.all(numeric) {
        return Err(bad(format!("{version:?} is not a format version")));
    }
    if major != "2" {
        return Err(bad(format!(
            "format version {version:?} is not supported (expected 2 or 2.x)"
        )));
    }
    let registry = registry.to_ascii_lowercase();
    // The NRO's combined file says "nro".
    if !REGISTRIES.contains(&registry.as_str()) && registry != "nro" {
        return Err(bad(format!(
            "unknown registry {registry:?} (expected afrinic, apnic, arin, iana, lacnic or ripencc)"
        )));
    }
    if !numeric(records) {
        return Err(bad(format!("record count {records:?} is not a number")));
    }
    records
        .parse()
        .map_err(|_| bad(format!("record count {records:?} is not a number")))
}

/// `registry|*|type|*|count|summary`: the type and its declared count.
fn parse_summary(fields: &[&str]) -> Result<(Kind, u64), DelegatedFault> {
    let bad = DelegatedFault::Summary;
    let [registry, star, kind, star2, n, _summary] = *fields else {
        return Err(bad(format!(
            "expected registry|*|type|*|count|summary, found {} fields",
            fields.len()
        )));
    };
    let registry = registry.to_ascii_lowercase();
    if !REGISTRIES.contains(&registry.as_str()) && registry != "nro" {
        return Err(bad(format!("unknown registry {registry:?}")));
    }
    if star != "*" || star2 != "*" {
        return Err(bad(
            "expected `*` in the second and fourth fields".to_string()
        ));
    }
    let kind = Kind::parse(kind).ok_or_else(|| bad(format!("unknown type {kind:?}")))?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("count {n:?} is not a number")));
    }
    let n = n
        .parse()
        .map_err(|_| bad(format!("count {n:?} is not a number")))?;
    Ok((kind, n))
}

/// Checks every line of `text` and adds the records `holdings.country`
/// holds (not yet normalized).
fn read_into(text: &str, origin: &str, holdings: &mut Holdings) -> Result<(), DelegatedError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // (line, declared) of the version line, and per type of the summaries.
    let mut version: Option<(usize, u64)> = None;
    let mut summaries: HashMap<Kind, (usize, u64)> = HashMap::new();
    let mut seen: HashMap<Kind, u64> = HashMap::new();
    let mut data_lines = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        let error = |fault: DelegatedFault| DelegatedError::Line {
            origin: origin.to_string(),
            line: line_no,
            fault,
            text: quote(line),
        };
        if line.len() > MAX_LINE {
            return Err(error(DelegatedFault::TooLong(MAX_LINE)));
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        data_lines += 1;
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let first = fields.first().copied().unwrap_or("");
        if first.starts_with(|c: char| c.is_ascii_digit()) {
            if data_lines > 1 {
                return Err(error(DelegatedFault::Version(
                    "a version line after the first data line: files joined together? \
                     give each registry's file on its own"
                        .to_string(),
                )));
            }
            let declared = parse_version(&fields).map_err(error)?;
            version = Some((line_no, declared));
            continue;
        }
        if fields.len() >= 6
            && fields
                .get(5)
                .is_some_and(|f| f.eq_ignore_ascii_case("summary"))
        {
            let (kind, declared) = parse_summary(&fields).map_err(error)?;
            if summaries.insert(kind, (line_no, declared)).is_some() {
                return Err(error(DelegatedFault::Summary(format!(
                    "a second summary for {}",
                    kind.name()
                ))));
            }
            continue;
        }
        let record = parse_record(&fields).map_err(error)?;
        *seen.entry(record.kind).or_default() += 1;
        if record.held && record.cc.eq_ignore_ascii_case(&holdings.country) {
            holdings.records += 1;
            match record.resource {
                Resource::Blocks(blocks) => holdings.prefixes.extend(blocks),
                Resource::Asns(range) => holdings.asns.push(range),
            }
        }
    }
    let count_error = |line: usize, what: String| DelegatedError::Count {
        origin: origin.to_string(),
        line,
        what,
    };
    if let Some((line, declared)) = version {
        let found: u64 = seen.values().sum();
        if declared != found {
            return Err(count_error(
                line,
                format!(
                    "the version line declares {declared} records but the file has {found}: \
                     truncated or corrupted? download it again"
                ),
            ));
        }
    }
    for kind in [Kind::Asn, Kind::Ipv4, Kind::Ipv6] {
        if let Some(&(line, declared)) = summaries.get(&kind) {
            let found = seen.get(&kind).copied().unwrap_or(0);
            if declared != found {
                return Err(count_error(
                    line,
                    format!(
                        "the {} summary declares {declared} records but the file has {found}: \
                         truncated or corrupted? download it again",
                        kind.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/delegated");
    const APNIC: &str = "delegated-apnic-20141224-excerpt";
    const AFRINIC: &str = "delegated-afrinic-extended-20240105-excerpt";
    const LACNIC: &str = "delegated-lacnic-extended-20240104-excerpt";

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn blocks(start: &str, count: u64) -> Vec<String> {
        ipv4_range_to_prefixes(v4(start), count)
            .expect("a valid range")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn strings(nets: &[IpNet]) -> Vec<String> {
        nets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ranges_become_the_fewest_exact_cidr_blocks() {
        assert_eq!(blocks("175.45.176.0", 1024), ["175.45.176.0/22"]);
        assert_eq!(blocks("10.0.0.0", 1), ["10.0.0.0/32"]);
        // Not a power of two (real AFRINIC and ARIN records).
        assert_eq!(
            blocks("196.4.20.0", 2560),
            ["196.4.20.0/22", "196.4.24.0/22", "196.4.28.0/23"]
        );
        assert_eq!(
            blocks("164.146.0.0", 393216),
            ["164.146.0.0/15", "164.148.0.0/14"]
        );
        assert_eq!(
            blocks("23.128.1.0", 768),
            ["23.128.1.0/24", "23.128.2.0/23"]
        );
        // A power of two, but not aligned.
        assert_eq!(
            blocks("64.112.29.0", 512),
            ["64.112.29.0/24", "64.112.30.0/24"]
        );
        assert_eq!(
            blocks("10.0.0.1", 6),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(blocks("1.0.0.0", 3 << 24), ["1.0.0.0/8", "2.0.0.0/7"]);
        // The edges of the space.
        assert_eq!(blocks("0.0.0.0", 1 << 32), ["0.0.0.0/0"]);
        assert_eq!(blocks("128.0.0.0", 1 << 31), ["128.0.0.0/1"]);
        assert_eq!(blocks("255.255.255.255", 1), ["255.255.255.255/32"]);
        assert_eq!(blocks("255.255.255.0", 256), ["255.255.255.0/24"]);
        let all_but_zero = blocks("0.0.0.1", (1 << 32) - 1);
        assert_eq!(all_but_zero.len(), 32);
        assert_eq!(all_but_zero.first().map(String::as_str), Some("0.0.0.1/32"));
        assert_eq!(all_but_zero.last().map(String::as_str), Some("128.0.0.0/1"));
        // Refused: nothing, or past 255.255.255.255.
        assert_eq!(ipv4_range_to_prefixes(v4("10.0.0.0"), 0), None);
        assert_eq!(ipv4_range_to_prefixes(v4("255.255.255.255"), 2), None);
        assert_eq!(ipv4_range_to_prefixes(v4("255.255.255.0"), 257), None);
        assert_eq!(ipv4_range_to_prefixes(v4("0.0.0.0"), (1 << 32) + 1), None);
        assert_eq!(ipv4_range_to_prefixes(v4("1.0.0.0"), u64::MAX), None);
    }

    /// Deterministic pseudo-random numbers.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_ranges_are_covered_exactly_and_minimally() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2000 {
            let start = xorshift(&mut rng) as u32 >> (xorshift(&mut rng) % 32);
            let room = (1u64 << 32) - u64::from(start);
            let count = 1 + xorshift(&mut rng) % room.min(1 << (xorshift(&mut rng) % 33));
            let nets = ipv4_range_to_prefixes(Ipv4Addr::from(start), count).expect("in range");
            // Contiguous, in order, and adding up to the count.
            let mut at = u64::from(start);
            for n in &nets {
                assert_eq!(u64::from(u32::from(n.network())), at, "{start} + {count}");
                at += 1u64 << (32 - u32::from(n.prefix_len()));
            }
            assert_eq!(at, u64::from(start) + count, "{start} + {count}");
            // Minimal: no two neighbours could be one block.
            for pair in nets.windows(2) {
                if let [a, b] = pair {
                    let size = 1u64 << (32 - u32::from(a.prefix_len()));
                    let a0 = u64::from(u32::from(a.network()));
                    let joins = a.prefix_len() == b.prefix_len() && a0 % (2 * size) == 0;
                    assert!(!joins, "{a} and {b} should be one block");
                }
            }
            assert!(nets.len() <= 62);
        }
    }

    #[test]
    fn kp_holds_its_apnic_block_and_as() {
        let h = country(&fixture(APNIC), APNIC, "KP").expect("ok");
        assert_eq!(h.country, "KP");
        assert_eq!(strings(&h.prefixes), ["175.45.176.0/22"]);
        assert_eq!(h.asns, vec![131279..=131279]);
        assert_eq!(h.records, 2);
        assert_eq!(h.ipv4_addresses(), 1024);
        assert!(h.contains_addr("175.45.179.255".parse().expect("ip")));
        assert!(!h.contains_addr("175.45.180.0".parse().expect("ip")));
        assert!(h.contains_asn(131279) && !h.contains_asn(131280));
        // Case does not matter.
        assert_eq!(country(&fixture(APNIC), APNIC, " kp ").expect("ok"), h);
    }

    #[test]
    fn the_plain_apnic_file_gives_every_record_type() {
        let text = fixture(APNIC);
        let jp = country(&text, APNIC, "JP").expect("ok");
        // AS173, and AS2497 + 32; IPv6 by prefix length.
        assert_eq!(jp.asns, vec![173..=173, 2497..=2528]);
        assert_eq!(
            strings(&jp.prefixes),
            ["2001:200::/35", "2001:200:2000::/35"]
        );
        let tw = country(&text, APNIC, "TW").expect("ok");
        assert_eq!(tw.asns, vec![1768..=1769]);
        let cn = country(&text, APNIC, "CN").expect("ok");
        assert_eq!(strings(&cn.prefixes), ["1.0.1.0/24", "1.0.2.0/23"]);
        let au = country(&text, APNIC, "AU").expect("ok");
        assert_eq!(strings(&au.prefixes), ["1.0.0.0/24"], "assigned counts too");
        assert!(country(&text, APNIC, "FR").expect("ok").is_empty());
    }

    #[test]
    fn extended_files_skip_available_and_reserved() {
        let za = country(&fixture(AFRINIC), AFRINIC, "ZA").expect("ok");
        assert_eq!(
            strings(&za.prefixes),
            [
                "41.57.112.0/24",
                "160.115.0.0/16",
                "164.146.0.0/15",
                "164.148.0.0/14",
                "196.4.20.0/22",
                "196.4.24.0/22",
                "196.4.28.0/23",
                "2001:4200::/32",
                "2001:43f8:30::/48",
            ]
        );
        assert_eq!(za.asns, vec![1228..=1228, 10803..=10803]);
        assert_eq!(za.records, 8);
        assert!(
            !za.contains_addr("41.57.113.1".parse().expect("ip")),
            "reserved"
        );
        assert!(!za.contains_asn(8770), "available");

        let br = country(&fixture(LACNIC), LACNIC, "BR").expect("ok");
        assert_eq!(strings(&br.prefixes), ["187.87.28.0/22", "2804:8ae0::/32"]);
        assert_eq!(br.asns, vec![61610..=61610]);
    }

    #[test]
    fn several_files_merge() {
        let paths = [APNIC, AFRINIC, LACNIC].map(|f| format!("{FIXTURES}/{f}"));
        let kp = load_country(&paths, "KP").expect("ok");
        assert_eq!(strings(&kp.prefixes), ["175.45.176.0/22"]);
        let mut a = country("apnic|XX|asn|10|5|20200101|allocated\n", "a", "XX").expect("ok");
        let b = country(
            "ripencc|XX|asn|15|1||assigned\nripencc|XX|asn|12|2||assigned\n\
             ripencc|XX|ipv4|192.0.2.0|256||assigned\n",
            "b",
            "xx",
        )
        .expect("ok");
        a.merge(b);
        assert_eq!(
            a.asns,
            vec![10..=15],
            "overlapping and adjacent ranges merge"
        );
        assert_eq!(a.records, 4);
        let e = load_country(&["/nonexistent/delegated-apnic-latest"], "KP").expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/delegated-apnic-latest: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn bad_country_codes_are_refused() {
        for cc in ["", "K", "KPR", "K1", "zz", "ZZ"] {
            let e = country("", "f", cc).expect_err(cc);
            assert!(matches!(e, DelegatedError::Country { .. }), "{cc}: {e:?}");
        }
        assert!(country("", "f", "EU").expect("EU is RIPE's").is_empty());
    }

    #[test]
    fn empty_country_dates_and_extensions_are_accepted() {
        let text = "\
            arin||ipv4|23.128.1.0|768||reserved|\n\
            arin|US|asn|3|1|00000000|assigned|d98c567cda2db06e693f2b574eafe848\n\
            apnic|kp|ipv4|175.45.176.0|1024||allocated|A91872ED|e-stats|more\n\
            ripencc||asn|1877|1||available\n\
            iana|ZZ|ipv4|174.0.0.0|16777216|20080215|arin\n\
            apnic|KP|ipv6|2001:db8::1|32|20200101|allocated\r\n";
        let kp = country(text, "t", "KP").expect("ok");
        assert_eq!(strings(&kp.prefixes), ["175.45.176.0/22", "2001:db8::/32"]);
        assert_eq!(country(text, "t", "US").expect("ok").asns, vec![3..=3]);
    }

    /// The fault of the first bad line, after checking that the error names
    /// `origin:line`.
    fn fault(text: &str, line: usize) -> DelegatedFault {
        match country(text, "stats", "KP") {
            Err(DelegatedError::Line {
                origin,
                line: at,
                fault,
                ..
            }) => {
                assert_eq!((origin.as_str(), at), ("stats", line), "{text:?}");
                fault
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn malformed_records_give_the_line_and_the_fault() {
        use DelegatedFault as F;
        let ok = "apnic|KP|asn|131279|1|20091221|allocated\n";
        let cases: &[(&str, DelegatedFault)] = &[
            ("apnic|KP|ipv4|175.45.176.0|1024", F::FieldCount(5)),
            ("apnc|KP|asn|1|1||allocated", F::Registry("apnc".into())),
            ("apnic|K1|asn|1|1||allocated", F::CountryCode("K1".into())),
            ("apnic|KPR|asn|1|1||allocated", F::CountryCode("KPR".into())),
            ("apnic|KP|ipv5|1|1||allocated", F::Type("ipv5".into())),
            (
                "apnic|KP|asn|1|1||transferred",
                F::Status("transferred".into()),
            ),
            (
                "apnic|KP|ipv4|175.45.176|1024||allocated",
                F::Ipv4("175.45.176".into()),
            ),
            (
                "apnic|KP|ipv4|2001:db8::|1024||allocated",
                F::Ipv4("2001:db8::".into()),
            ),
            ("apnic|KP|ipv4|175.45.176.0|0||allocated", F::ZeroCount),
            (
                "apnic|KP|ipv4|175.45.176.0|-4||allocated",
                F::Number("-4".into()),
            ),
            (
                "apnic|KP|ipv4|175.45.176.0|1e3||allocated",
                F::Number("1e3".into()),
            ),
            (
                "apnic|KP|ipv4|175.45.176.0|99999999999999999999||allocated",
                F::Number("99999999999999999999".into()),
            ),
            (
                "apnic|KP|ipv4|255.255.255.0|512||allocated",
                F::Ipv4Overflow {
                    start: v4("255.255.255.0"),
                    count: 512,
                },
            ),
            (
                "apnic|KP|ipv4|1.0.0.0|4294967296||allocated",
                F::Ipv4Overflow {
                    start: v4("1.0.0.0"),
                    count: 1 << 32,
                },
            ),
            (
                "apnic|KP|ipv6|175.45.176.0|32||allocated",
                F::Ipv6("175.45.176.0".into()),
            ),
            (
                "apnic|KP|ipv6|2001:db8::|129||allocated",
                F::PrefixLength("129".into()),
            ),
            (
                "apnic|KP|ipv6|2001:db8::|0||allocated",
                F::PrefixLength("0".into()),
            ),
            (
                "apnic|KP|ipv6|2001:db8::|/32||allocated",
                F::PrefixLength("/32".into()),
            ),
            (
                "apnic|KP|asn|AS131279|1||allocated",
                F::Asn("AS131279".into()),
            ),
            (
                "apnic|KP|asn|4294967296|1||allocated",
                F::Asn("4294967296".into()),
            ),
            ("apnic|KP|asn|131279|0||allocated", F::ZeroCount),
            ("apnic|KP|asn|131279|x||allocated", F::Number("x".into())),
            (
                "apnic|KP|asn|4294967295|2||allocated",
                F::AsnOverflow {
                    first: u32::MAX,
                    count: 2,
                },
            ),
            (
                "apnic|KP|asn|131279|1|2009-12-21|allocated",
                F::Date("2009-12-21".into()),
            ),
            (
                "apnic|KP|asn|131279|1|allocated|20091221",
                F::Status("20091221".into()),
            ),
        ];
        for (line, want) in cases {
            let text = format!("{ok}{line}\n");
            assert_eq!(&fault(&text, 2), want, "{line}");
        }
        // The message names the file, the line, the fault and the text.
        let e = country(
            &format!("{ok}apnic|KP|ipv4|175.45.176.0|0||allocated\n"),
            "f",
            "KP",
        )
        .expect_err("bad");
        assert_eq!(
            e.to_string(),
            "f:2: a count of 0: a record holds at least one address or AS number: \
             \"apnic|KP|ipv4|175.45.176.0|0||allocated\""
        );
        // Lines of other countries are checked too.
        assert!(matches!(
            fault("apnic|JP|ipv4|1.2.3|1||allocated\n", 1),
            F::Ipv4(_)
        ));
    }

    #[test]
    fn version_and_summary_lines_are_checked() {
        let records = "apnic|KP|asn|131279|1|20091221|allocated\n\
                       apnic|KP|ipv4|175.45.176.0|1024|20091221|allocated\n";
        let good = format!(
            "# c\n2|apnic|20141224|2|19850701|20141223|+1000\n\
             apnic|*|asn|*|1|summary\napnic|*|ipv4|*|1|summary\n{records}"
        );
        assert_eq!(country(&good, "f", "KP").expect("ok").records, 2);
        // Versions 2.x, an empty start date, no UTC offset.
        let v23 = format!("2.3|apnic|20260929|2||20260928\n{records}");
        assert!(country(&v23, "f", "KP").is_ok());

        for (text, line, needle) in [
            (
                format!("3|apnic|1|2|19850701|20141223|+1000\n{records}"),
                1,
                "format version \"3\" is not supported",
            ),
            (
                format!("2.x|apnic|1|2|19850701|20141223|+1000\n{records}"),
                1,
                "\"2.x\" is not a format version",
            ),
            (
                format!("2|apnic|1|two|19850701|20141223\n{records}"),
                1,
                "record count \"two\"",
            ),
            (format!("2|apnic|1\n{records}"), 1, "found 3 fields"),
            (
                format!("2|foo|1|2|19850701|20141223\n{records}"),
                1,
                "unknown registry \"foo\"",
            ),
            (
                format!("{records}2|apnic|1|2|19850701|20141223\n"),
                3,
                "files joined together",
            ),
            (
                format!("apnic|*|asn|*|x|summary\n{records}"),
                1,
                "count \"x\"",
            ),
            (
                format!("apnic|*|ip|*|1|summary\n{records}"),
                1,
                "unknown type \"ip\"",
            ),
            (format!("apnic|KP|asn|*|1|summary\n{records}"), 1, "`*`"),
            (
                format!("apnic|*|asn|*|1|summary|x\n{records}"),
                1,
                "found 7 fields",
            ),
            (
                format!("apnic|*|asn|*|1|summary\napnic|*|asn|*|1|summary\n{records}"),
                2,
                "a second summary for asn",
            ),
        ] {
            let e = country(&text, "f", "KP").expect_err(&text);
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("f:{line}: ")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let mut text = fixture(APNIC);
        // Drop the last record, as a cut download would.
        let cut = text.trim_end().rfind('\n').expect("lines");
        text.truncate(cut + 1);
        let e = country(&text, APNIC, "KP").expect_err("truncated");
        let DelegatedError::Count { line, what, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(*line, 28, "the version line");
        assert!(
            what.contains("declares 10 records but the file has 9"),
            "{e}"
        );

        let e = country(
            "apnic|*|asn|*|2|summary\napnic|KP|asn|131279|1|20091221|allocated\n",
            "f",
            "KP",
        )
        .expect_err("short");
        assert_eq!(
            e.to_string(),
            "f:1: the asn summary declares 2 records but the file has 1: \
             truncated or corrupted? download it again"
        );
    }

    #[test]
    fn file_problems_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("delegated-apnic-latest.gz");
        std::fs::write(&gz, b"\x1f\x8b\x08\x00\xff").expect("write");
        let e = load_country(&[&gz], "KP").expect_err("binary");
        assert!(e.to_string().contains("not UTF-8 text (byte 1"), "{e}");
        let long = format!("apnic|KP|asn|1|1|{}|allocated\n", "0".repeat(5000));
        assert!(matches!(fault(&long, 1), DelegatedFault::TooLong(4096)));
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet: &[u8] = b"|||...::0123456789abcdefKPZ* #\n\tasnipv4ipv6allocatedsummary";
        let seeds = [fixture(APNIC), fixture(AFRINIC), fixture(LACNIC)];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..5000 {
            let text: String = if round % 2 == 0 {
                let len = (xorshift(&mut rng) % 300) as usize;
                (0..len)
                    .map(|_| {
                        let k = (xorshift(&mut rng) as usize) % alphabet.len();
                        char::from(alphabet.get(k).copied().unwrap_or(b' '))
                    })
                    .collect()
            } else {
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
            for cc in ["KP", "ZA", "BR"] {
                if let Ok(h) = country(&text, "fuzz", cc) {
                    let _ = h.contains_addr("175.45.176.1".parse().expect("ip"));
                    let _ = h.ipv4_addresses();
                }
            }
        }
    }
}
