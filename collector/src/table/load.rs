//! Reading prefix tables from files: compression, format recognition, the
//! three text formats, errors and the load report. MRT is in `mrt`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::lpm::range_to_prefixes;
use super::origin::parse_asn;
use super::report::read_full;
pub use super::report::{
    Compression, Format, LineFault, LoadError, LoadReport, MrtFault, UnknownFormatName,
};
use super::{mrt, Origin, PrefixTable};

/// How many leading bytes are looked at to recognise compression and format.
const HEAD_LEN: usize = 4096;
/// A text line longer than this is an error, not a memory hog.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// How much of an offending line an error quotes.
const QUOTE_LEN: usize = 200;

impl Format {
    /// The format of a table file, from the first bytes of its
    /// (decompressed) content or else from its name; `None` when neither
    /// tells.
    ///
    /// Binary content with an MRT record header is [`Format::Mrt`]. For
    /// text, `;` comment lines or a `prefix/len` first field mean pyasn, an
    /// address and a number pfx2as, two addresses iptoasn. Names: `*.dat`
    /// and `ipasn*` pyasn, `*pfx2as*` pfx2as, `*.tsv`, `ip2asn*` and
    /// `iptoasn*` iptoasn, `*.mrt`, `rib*`, `bview*` and `updates*` MRT
    /// (after dropping `.gz` or `.bz2`).
    pub fn detect(path: &Path, head: &[u8]) -> Option<Format> {
        detect_content(head).or_else(|| detect_name(path))
    }
}

/// Reads a table file, its format and compression recognised from its
/// content and name.
pub fn load(path: impl AsRef<Path>) -> Result<PrefixTable, LoadError> {
    load_with_report(path, None).map(|(table, _)| table)
}

/// Reads a table file in `format` (recognised when `None`), and says what
/// was read.
pub fn load_with_report(
    path: impl AsRef<Path>,
    format: Option<Format>,
) -> Result<(PrefixTable, LoadReport), LoadError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| LoadError::Open {
        path: name.clone(),
        source,
    })?;
    read(file, &name, format)
}

/// Reads a table from `input` (plain, gzip or bzip2), in `format` or the
/// one recognised from the content and `source` taken as a file name.
/// `source` names the input in errors and in the report.
pub fn read(
    input: impl Read,
    source: &str,
    format: Option<Format>,
) -> Result<(PrefixTable, LoadReport), LoadError> {
    let mut raw = input;
    let (head, err) = read_head(&mut raw);
    let compression = Compression::detect(&head);
    let raw = Replay::new(head, err, raw);
    let mut content: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(raw)),
    };
    let (head, err) = read_head(&mut content);
    let format = match format.or_else(|| Format::detect(Path::new(source), &head)) {
        Some(f) => f,
        None => {
            return Err(match err {
                Some(e) => LoadError::Read {
                    path: source.to_string(),
                    line: 0,
                    source: e,
                },
                None => LoadError::UnknownFormat {
                    path: source.to_string(),
                },
            })
        }
    };
    let content = Replay::new(head, err, content);
    let mut table = PrefixTable::new();
    let mut report = LoadReport {
        source: source.to_string(),
        format,
        compression,
        records: 0,
        prefixes: 0,
        skipped: 0,
        truncated: false,
        bytes: 0,
    };
    match format {
        Format::Mrt => mrt::read(content, source, &mut table, &mut report)?,
        text => {
            let parse = match text {
                Format::Pyasn => parse_pyasn,
                Format::Pfx2as => parse_pfx2as,
                Format::Iptoasn | Format::Mrt => parse_iptoasn,
            };
            let input = BufReader::with_capacity(64 * 1024, content);
            read_text(input, source, parse, &mut table, &mut report)?;
        }
    }
    table.freeze();
    Ok((table, report))
}

/// Reads up to `HEAD_LEN` bytes; an error is kept for later (so that a
/// stream cut short still shows what came before).
fn read_head(input: &mut impl Read) -> (Vec<u8>, Option<io::Error>) {
    let mut head = vec![0u8; HEAD_LEN];
    let (n, err) = read_full(input, &mut head);
    head.truncate(n);
    (head, err)
}

/// The bytes already read, then the error met reading them (if any), then
/// the rest of the input.
struct Replay<R> {
    head: io::Cursor<Vec<u8>>,
    err: Option<io::Error>,
    rest: R,
}

impl<R> Replay<R> {
    fn new(head: Vec<u8>, err: Option<io::Error>, rest: R) -> Self {
        Replay {
            head: io::Cursor::new(head),
            err,
            rest,
        }
    }
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.rest.read(buf)
    }
}

fn detect_content(head: &[u8]) -> Option<Format> {
    if head.is_empty() {
        return None;
    }
    let binary = head
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'));
    if binary {
        return looks_like_mrt(head).then_some(Format::Mrt);
    }
    // Complete lines only, unless the head is the whole (short) content.
    let text = match head.iter().rposition(|&b| b == b'\n') {
        Some(end) if head.len() == HEAD_LEN => &head[..end],
        _ => head,
    };
    let text = String::from_utf8_lossy(text);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(';') {
            return Some(Format::Pyasn);
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(['\t', ' ']).filter(|f| !f.is_empty());
        let first = fields.next()?;
        let second = fields.next()?;
        if first.contains('/') {
            return first.parse::<IpNet>().is_ok().then_some(Format::Pyasn);
        }
        first.parse::<IpAddr>().ok()?;
        if second.parse::<IpAddr>().is_ok() {
            return Some(Format::Iptoasn);
        }
        return second.parse::<u8>().is_ok().then_some(Format::Pfx2as);
    }
    None
}

/// An MRT common header with a RIB dump type (TABLE_DUMP, TABLE_DUMP_V2)
/// or another type of RFC 6396, so that it can be named in an error.
fn looks_like_mrt(head: &[u8]) -> bool {
    head.len() >= 12
        && matches!(
            u16::from_be_bytes([head[4], head[5]]),
            11..=13 | 16 | 17 | 32 | 33 | 48 | 49
        )
}

fn detect_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let name = [".gz", ".gzip", ".bz2", ".bz"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    if name.contains("pfx2as") {
        Some(Format::Pfx2as)
    } else if name.ends_with(".dat") || name.starts_with("ipasn") {
        Some(Format::Pyasn)
    } else if name.ends_with(".tsv") || name.starts_with("ip2asn") || name.starts_with("iptoasn") {
        Some(Format::Iptoasn)
    } else if name.ends_with(".mrt")
        || name.starts_with("rib")
        || name.starts_with("bview")
        || name.starts_with("updates")
    {
        Some(Format::Mrt)
    } else {
        None
    }
}

/// A parsed text line.
enum Parsed {
    /// One prefix.
    Prefix(IpNet, Origin),
    /// An address range (iptoasn), start <= end, one family.
    Range(IpAddr, IpAddr, Origin),
    /// A line that adds nothing (iptoasn AS 0).
    Skip,
}

fn read_text<B: BufRead>(
    mut input: B,
    source: &str,
    parse: fn(&str) -> Result<Parsed, LineFault>,
    table: &mut PrefixTable,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| LoadError::Read {
                path: source.to_string(),
                line: line_no + 1,
                source: e,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        report.bytes += n as u64;
        let line_error = |fault: LineFault, text: &[u8]| LoadError::Line {
            path: source.to_string(),
            line: line_no,
            fault,
            text: quote(text),
        };
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE {
            return Err(line_error(LineFault::TooLong(MAX_LINE), &buf));
        }
        let line = std::str::from_utf8(&buf).map_err(|_| line_error(LineFault::NotUtf8, &buf))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        report.records += 1;
        let parsed = parse(line).map_err(|fault| line_error(fault, line.as_bytes()))?;
        match parsed {
            Parsed::Prefix(net, origin) => {
                table.insert(net, origin);
                report.prefixes += 1;
            }
            Parsed::Range(start, end, origin) => {
                report.prefixes += insert_range(table, start, end, origin);
            }
            Parsed::Skip => report.skipped += 1,
        }
    }
    Ok(())
}

/// At most `QUOTE_LEN` characters of an offending line.
fn quote(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    match text.char_indices().nth(QUOTE_LEN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

fn parse_origin(text: &str) -> Result<Origin, LineFault> {
    text.parse().map_err(|error| LineFault::Origin {
        text: text.to_string(),
        error,
    })
}

/// Exactly `N` whitespace-separated fields.
fn fields<'a, const N: usize>(
    line: &'a str,
    expected: &'static str,
) -> Result<[&'a str; N], LineFault> {
    let mut out = [""; N];
    let mut found = 0;
    for field in line.split_ascii_whitespace() {
        if found < N {
            out[found] = field;
        }
        found += 1;
    }
    if found == N {
        Ok(out)
    } else {
        Err(LineFault::FieldCount { expected, found })
    }
}

/// `prefix/len<TAB>origin`
fn parse_pyasn(line: &str) -> Result<Parsed, LineFault> {
    let [prefix, origin] = fields::<2>(line, "2 (prefix/length, origin AS)")?;
    let net = prefix
        .parse::<IpNet>()
        .map_err(|_| LineFault::Prefix(prefix.to_string()))?;
    Ok(Parsed::Prefix(net, parse_origin(origin)?))
}

/// `addr<TAB>len<TAB>origin`
fn parse_pfx2as(line: &str) -> Result<Parsed, LineFault> {
    let [addr, len, origin] = fields::<3>(line, "3 (address, prefix length, origin AS)")?;
    let ip = addr
        .parse::<IpAddr>()
        .map_err(|_| LineFault::Address(addr.to_string()))?;
    let bad_len = || LineFault::Length(len.to_string());
    if !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_len());
    }
    let bits = len.parse::<u8>().map_err(|_| bad_len())?;
    let net = match ip {
        IpAddr::V4(a) => Ipv4Net::new(a, bits).map(IpNet::V4),
        IpAddr::V6(a) => Ipv6Net::new(a, bits).map(IpNet::V6),
    }
    .map_err(|_| bad_len())?;
    Ok(Parsed::Prefix(net, parse_origin(origin)?))
}

/// `start<TAB>end<TAB>asn[<TAB>country<TAB>description]`
fn parse_iptoasn(line: &str) -> Result<Parsed, LineFault> {
    let mut fields = line.split('\t').map(str::trim);
    let (Some(start), Some(end), Some(asn)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(LineFault::FieldCount {
            expected: "at least 3 (range start, range end, AS number)",
            found: line.split('\t').count(),
        });
    };
    let address = |text: &str| {
        text.parse::<IpAddr>()
            .map_err(|_| LineFault::Address(text.to_string()))
    };
    let (first, last) = (address(start)?, address(end)?);
    let asn = parse_asn(asn).map_err(|error| LineFault::Origin {
        text: asn.to_string(),
        error,
    })?;
    let in_order = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
        _ => {
            return Err(LineFault::RangeFamily {
                start: start.to_string(),
                end: end.to_string(),
            })
        }
    };
    if !in_order {
        return Err(LineFault::RangeOrder {
            start: start.to_string(),
            end: end.to_string(),
        });
    }
    if asn == 0 {
        return Ok(Parsed::Skip);
    }
    Ok(Parsed::Range(first, last, Origin::Asn(asn)))
}

/// Inserts the prefixes covering `start..=end` (same family, in order);
/// returns how many.
fn insert_range(table: &mut PrefixTable, start: IpAddr, end: IpAddr, origin: Origin) -> u64 {
    let nets: Vec<IpNet> = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => range_to_prefixes(u32::from(a), u32::from(b))
            .into_iter()
            .filter_map(|(n, l)| Ipv4Net::new(n.into(), l).ok().map(IpNet::V4))
            .collect(),
        (IpAddr::V6(a), IpAddr::V6(b)) => range_to_prefixes(u128::from(a), u128::from(b))
            .into_iter()
            .filter_map(|(n, l)| Ipv6Net::new(n.into(), l).ok().map(IpNet::V6))
            .collect(),
        _ => Vec::new(),
    };
    let count = nets.len() as u64;
    for net in nets {
        table.insert(net, origin.clone());
    }
    count
}
