//! Reading MRT RIB dumps (RFC 6396 `TABLE_DUMP_V2` and `TABLE_DUMP`).
//!
//! Records are framed here (so that a dump cut short is recognised
//! exactly, and a record's claimed length is checked before anything is
//! allocated for it) and each RIB record is parsed by bgpkit-parser. The
//! origin of a route is the last AS of its AS path (`AS_PATH` merged with
//! `AS4_PATH` when both are present); a path ending in an `AS_SET` gives an
//! [`Origin::AsSet`]. The origins that the peers of a prefix saw make an
//! [`Origin::Multi`] when they differ, the one seen by the most peers first
//! (ties in the order first seen).
//!
//! A dump that ends inside a record, or whose compressed stream is cut, is
//! read up to its last whole record and marked truncated in the report.

use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};

use bgpkit_parser::models::{
    AsPath, AsPathSegment, AttributeValue, Attributes, MrtMessage, TableDumpV2Message,
};
use ipnet::IpNet;

use super::report::{read_full, LoadError, LoadReport, MrtFault, MAX_RECORD};
use super::{Origin, PrefixTable};

const TABLE_DUMP: u16 = 12;
const TABLE_DUMP_V2: u16 = 13;

/// Counts of the origins the peers of one prefix saw.
#[derive(Default)]
struct Tally(Vec<(Origin, u32)>);

impl Tally {
    fn add(&mut self, origin: Origin) {
        match self.0.iter_mut().find(|(o, _)| *o == origin) {
            Some((_, n)) => *n += 1,
            None => self.0.push((origin, 1)),
        }
    }

    /// The origin, or the multi-origin with the most common first.
    fn into_origin(mut self) -> Option<Origin> {
        match self.0.len() {
            0 => None,
            1 => self.0.pop().map(|(o, _)| o),
            _ => {
                // Stable: ties keep the order first seen.
                self.0.sort_by_key(|e| std::cmp::Reverse(e.1));
                Some(Origin::multi(self.0.into_iter().map(|(o, _)| o).collect()))
            }
        }
    }
}

/// The origin of a route: the last AS of its path.
fn origin_of(attributes: &Attributes) -> Option<Origin> {
    let mut as_path = None;
    let mut as4_path = None;
    for value in attributes {
        if let AttributeValue::AsPath { path, is_as4 } = value {
            if *is_as4 {
                as4_path = Some(path);
            } else {
                as_path = Some(path);
            }
        }
    }
    let merged;
    let path = match (as_path, as4_path) {
        (Some(a), Some(b)) => {
            merged = AsPath::merge_aspath_as4path(a, b);
            &merged
        }
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => return None,
    };
    path.segments
        .iter()
        .rev()
        .find_map(|segment| match segment {
            AsPathSegment::AsSequence(seq) => seq.last().map(|a| Origin::Asn(a.to_u32())),
            AsPathSegment::AsSet(set) if !set.is_empty() => {
                Some(Origin::as_set(set.iter().map(|a| a.to_u32()).collect()))
            }
            // Confederation segments (and an empty set) name no origin.
            _ => None,
        })
}

/// Where the reader is, for errors.
struct Position<'a> {
    source: &'a str,
    record: u64,
    offset: u64,
}

impl Position<'_> {
    fn error(&self, fault: MrtFault) -> LoadError {
        LoadError::Mrt {
            path: self.source.to_string(),
            record: self.record + 1,
            offset: self.offset,
            fault,
        }
    }
}

/// Reads an MRT dump into `table`.
pub(crate) fn read(
    mut input: impl Read,
    source: &str,
    table: &mut PrefixTable,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let mut at = Position {
        source,
        record: 0,
        offset: 0,
    };
    // TABLE_DUMP has one record per (prefix, peer), a prefix's records
    // together: the prefix being collected.
    let mut pending: Option<(IpNet, Tally)> = None;
    let mut record = Vec::new();
    loop {
        let mut header = [0u8; 12];
        let (n, err) = read_full(&mut input, &mut header);
        if let Some(e) = err {
            if e.kind() != io::ErrorKind::UnexpectedEof {
                return Err(at.error(MrtFault::Io(e)));
            }
            report.truncated = true;
            break;
        }
        if n == 0 {
            break;
        }
        if n < header.len() {
            report.truncated = true;
            break;
        }
        let kind = u16::from_be_bytes([header[4], header[5]]);
        let subtype = u16::from_be_bytes([header[6], header[7]]);
        let length = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        match kind {
            TABLE_DUMP | TABLE_DUMP_V2 | 11 | 32 | 33 | 48 | 49 => {}
            16 | 17 => return Err(at.error(MrtFault::NotRib(kind))),
            _ => return Err(at.error(MrtFault::UnknownType(kind))),
        }
        if length > MAX_RECORD {
            return Err(at.error(MrtFault::TooLong(length)));
        }
        record.clear();
        record.extend_from_slice(&header);
        // `take` + `read_to_end` grows the buffer as data arrives, so a
        // cut dump never allocates the whole claimed length.
        match (&mut input)
            .take(u64::from(length))
            .read_to_end(&mut record)
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                report.truncated = true;
                break;
            }
            Err(e) => return Err(at.error(MrtFault::Io(e))),
        }
        if record.len() < header.len() + length as usize {
            report.truncated = true;
            break;
        }

        let wanted = match kind {
            // RIB_IPV4_UNICAST, RIB_IPV6_UNICAST and their ADD-PATH forms;
            // not the peer index, multicast or generic RIBs.
            TABLE_DUMP_V2 => matches!(subtype, 2 | 4 | 8 | 10),
            // AFI_IPv4, AFI_IPv6
            TABLE_DUMP => matches!(subtype, 1 | 2),
            _ => false,
        };
        if wanted {
            match parse(&record).map_err(|fault| at.error(fault))? {
                MrtMessage::TableDumpV2Message(TableDumpV2Message::RibAfi(rib)) => {
                    let mut tally = Tally::default();
                    for entry in &rib.rib_entries {
                        if let Some(origin) = origin_of(&entry.attributes) {
                            tally.add(origin);
                        }
                    }
                    add(table, report, rib.prefix.prefix, tally);
                }
                MrtMessage::TableDumpMessage(dump) => {
                    let prefix = dump.prefix.prefix;
                    let same = matches!(&pending, Some((p, _)) if *p == prefix);
                    if !same {
                        if let Some((p, tally)) = pending.take() {
                            add(table, report, p, tally);
                        }
                        pending = Some((prefix, Tally::default()));
                    }
                    if let (Some((_, tally)), Some(origin)) =
                        (pending.as_mut(), origin_of(&dump.attributes))
                    {
                        tally.add(origin);
                    }
                }
                _ => report.skipped += 1,
            }
        } else {
            report.skipped += 1;
        }
        at.record += 1;
        at.offset += record.len() as u64;
    }
    if let Some((p, tally)) = pending.take() {
        add(table, report, p, tally);
    }
    report.records = at.record;
    report.bytes = at.offset;
    Ok(())
}

/// Adds a prefix with the origins its peers saw, or counts it skipped.
fn add(table: &mut PrefixTable, report: &mut LoadReport, prefix: IpNet, tally: Tally) {
    match tally.into_origin() {
        Some(origin) => {
            table.insert(prefix, origin);
            report.prefixes += 1;
        }
        None => report.skipped += 1,
    }
}

/// Parses one whole record (header and body) with bgpkit-parser. A panic
/// in the parser on hostile input is turned into an error.
fn parse(record: &[u8]) -> Result<MrtMessage, MrtFault> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut bytes = record;
        bgpkit_parser::parse_mrt_record(&mut bytes)
    }));
    match outcome {
        Ok(Ok(parsed)) => Ok(parsed.message),
        Ok(Err(e)) => Err(MrtFault::Parse(e.to_string())),
        Err(_) => Err(MrtFault::Parse(
            "the MRT parser failed on this record".to_string(),
        )),
    }
}
