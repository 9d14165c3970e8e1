//! What loading a table says: the formats and compressions recognised,
//! the load report, and the errors (text lines and MRT records). Shared
//! by the text loader (`load`) and the MRT reader (`mrt`), which depend on
//! it and not on each other's internals.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use super::OriginParseError;

/// The largest MRT record length accepted (a RIB record of a prefix seen
/// by thousands of peers is well under this).
pub(crate) const MAX_RECORD: u32 = 16 * 1024 * 1024;

/// A table file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// pyasn / IPASN `dat`: `;` comment lines, then `prefix/len<TAB>asn`.
    Pyasn,
    /// CAIDA RouteViews pfx2as: `addr<TAB>len<TAB>asn`, where the origin
    /// may be multi-origin (`a_b`) or an AS set (`a,b`).
    Pfx2as,
    /// iptoasn TSV: `range_start<TAB>range_end<TAB>asn<TAB>country<TAB>description`;
    /// AS 0 ("not routed") is skipped, each range becomes the prefixes
    /// covering it.
    Iptoasn,
    /// MRT RIB dump (`TABLE_DUMP_V2` or `TABLE_DUMP`); a prefix's origin is
    /// the last AS of the AS path, and the origins seen by different peers
    /// make a multi-origin, the most common first.
    Mrt,
}

impl Format {
    /// The usual name of the format, as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pyasn => "pyasn",
            Format::Pfx2as => "pfx2as",
            Format::Iptoasn => "iptoasn",
            Format::Mrt => "mrt",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that [`Format::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown table format {0:?} (known: pyasn, pfx2as, iptoasn, mrt)")]
pub struct UnknownFormatName(pub String);

impl FromStr for Format {
    type Err = UnknownFormatName;

    /// `pyasn` (or `ipasn`, `dat`), `pfx2as` (or `caida`), `iptoasn` (or
    /// `ip2asn`, `tsv`), `mrt` (or `rib`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pyasn" | "ipasn" | "dat" => Ok(Format::Pyasn),
            "pfx2as" | "caida" => Ok(Format::Pfx2as),
            "iptoasn" | "ip2asn" | "tsv" => Ok(Format::Iptoasn),
            "mrt" | "rib" => Ok(Format::Mrt),
            _ => Err(UnknownFormatName(s.to_string())),
        }
    }
}

/// The compression of a table file, recognised from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (`1f 8b`), possibly several members.
    Gzip,
    /// bzip2 (`BZh`), possibly several streams.
    Bzip2,
}

impl Compression {
    /// The compression whose magic bytes `head` starts with.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// What a load read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// The file (or the name given for a reader).
    pub source: String,
    /// The format it was read as.
    pub format: Format,
    /// Its compression.
    pub compression: Compression,
    /// Text: data lines read (comments and blank lines not counted). MRT:
    /// whole records read.
    pub records: u64,
    /// Prefixes added to the table, or whose origin was replaced (an
    /// iptoasn range adds each prefix covering it).
    pub prefixes: u64,
    /// Lines or records that add no prefix: iptoasn AS 0, MRT records
    /// other than unicast RIB entries, RIB prefixes without an AS path.
    pub skipped: u64,
    /// MRT only: the dump ends inside a record (or its compressed stream is
    /// cut); everything up to the last whole record was read.
    pub truncated: bool,
    /// Bytes of (decompressed) content read; for a truncated MRT dump, up
    /// to the end of the last whole record.
    pub bytes: u64,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.format == Format::Mrt {
            "records"
        } else {
            "lines"
        };
        write!(
            f,
            "{}: {} {} read, {} prefixes, {} skipped",
            self.source, self.records, unit, self.prefixes, self.skipped
        )?;
        if self.truncated {
            write!(
                f,
                "; truncated after byte {}: read up to the last whole record",
                self.bytes
            )?;
        }
        Ok(())
    }
}

/// Why a table could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file cannot be opened.
    #[error("{path}: cannot open: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    /// Reading (or decompressing) failed; `line` is the text line being
    /// read (0 before the first).
    #[error("{path}:{line}: cannot read: {source}")]
    Read {
        path: String,
        line: u64,
        #[source]
        source: io::Error,
    },
    /// The format was not given and cannot be recognised.
    #[error(
        "{path}: cannot tell the table format from its content or name \
         (give one of pyasn, pfx2as, iptoasn, mrt)"
    )]
    UnknownFormat { path: String },
    /// A text line is malformed.
    #[error("{path}:{line}: {fault}: {text:?}")]
    Line {
        path: String,
        line: u64,
        fault: LineFault,
        /// The line (at most its first 200 characters).
        text: String,
    },
    /// An MRT record is malformed or not part of a RIB dump. `record`
    /// counts from 1, `offset` is its first byte in the decompressed dump.
    #[error("{path}: MRT record {record} at byte {offset}: {fault}")]
    Mrt {
        path: String,
        record: u64,
        offset: u64,
        fault: MrtFault,
    },
}

/// What is wrong with a text line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    /// Wrong number of fields.
    #[error("expected {expected} fields, found {found}")]
    FieldCount {
        expected: &'static str,
        found: usize,
    },
    /// Not an `address/length` prefix.
    #[error("{0:?} is not an address/length prefix")]
    Prefix(String),
    /// Not an IPv4 or IPv6 address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// Not a prefix length for the address's family.
    #[error("{0:?} is not a prefix length for this address family")]
    Length(String),
    /// Not an origin AS (or CAIDA multi-origin / AS set).
    #[error("{text:?} is not an origin AS: {error}")]
    Origin {
        text: String,
        error: OriginParseError,
    },
    /// An iptoasn range whose start is after its end.
    #[error("range start {start} is after its end {end}")]
    RangeOrder { start: String, end: String },
    /// An iptoasn range from an IPv4 to an IPv6 address or back.
    #[error("range {start} - {end} mixes IPv4 and IPv6")]
    RangeFamily { start: String, end: String },
    /// The line is not UTF-8.
    #[error("line is not UTF-8")]
    NotUtf8,
    /// The line is longer than the limit.
    #[error("line is longer than {0} bytes")]
    TooLong(usize),
}

/// What is wrong with an MRT record.
#[derive(Debug, thiserror::Error)]
pub enum MrtFault {
    /// Reading or decompressing failed (other than by the data ending).
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
    /// The record claims to be longer than any RIB record could be.
    #[error("record length {0} bytes is over the limit of {limit} bytes", limit = MAX_RECORD)]
    TooLong(u32),
    /// A BGP4MP record: the file is an update dump, not a RIB dump.
    #[error("BGP4MP message (MRT type {0}): this is an update dump, not a RIB dump")]
    NotRib(u16),
    /// Not an MRT record type that RFC 6396 defines (so probably not MRT).
    #[error("unknown MRT record type {0}: not an MRT RIB dump")]
    UnknownType(u16),
    /// bgpkit-parser rejected the record.
    #[error("cannot parse: {0}")]
    Parse(String),
}

/// Fills `buf` as far as the input goes: the bytes read, and the error
/// that stopped it early, if any (not for a plain end of input).
pub(crate) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}
