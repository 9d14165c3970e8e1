//! MRT files (RFC 6396): `TABLE_DUMP_V2` / `TABLE_DUMP` RIB dumps as
//! [`super::Snapshot`]s and `BGP4MP` updates as [`super::Update`]s.
//!
//! One file is read by [`read`] (or [`read_file`]), plain, gzip or bzip2
//! as its first bytes say. Records are framed here, as the table loader
//! (`crate::table`) does: a record's claimed length is checked before
//! anything is allocated for it, and a file that ends inside a record (or
//! whose compressed stream is cut) is read up to its last whole record and
//! said to be truncated.
//!
//! A RIB dump becomes one [`Message::Snapshot`], sent when the file ends.
//! `TABLE_DUMP_V2` RIB records (the bulk of a RIB dump) are decoded here
//! rather than by bgpkit-parser: the prefix first, so that a record whose
//! prefix the caller's [`Keep::prefix`] refuses is skipped without reading
//! its attributes, then of each entry only what a [`Route`] holds (the AS
//! path, the next hop). That is what makes a full RIB dump cheap enough
//! to re-read; every length is checked against what is left of the record.
//! The peer index table, legacy `TABLE_DUMP` and `BGP4MP` records are
//! parsed by bgpkit-parser, a panic in it on hostile input caught and
//! counted like any other fault.
//!
//! Updates (`BGP4MP`, `BGP4MP_ET`) become one [`Message::Update`] per
//! prefix announced or withdrawn (`MP_REACH_NLRI` / `MP_UNREACH_NLRI`
//! included), stamped with the record's time (to the microsecond for
//! `_ET`, in milliseconds); state changes into and out of Established
//! become [`Message::PeerUp`] / [`Message::PeerDown`]. `*_LOCAL`
//! messages (what the collector itself sent) are counted and skipped:
//! they are not routes the peer has.
//!
//! Nothing here panics on what it reads. A record that does not decode is
//! a fault: counted in the [`MrtReport`] by kind, sent as a
//! [`Message::Fault`], logged with the file, record number and offset; the
//! rest of the file is read. Only a record whose framing cannot be trusted
//! (an unknown record type, a length over [`MAX_RECORD`]) ends the file.

use crate::table::report::read_full;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use bgpkit_parser::models::{
    AsPath as KitPath, AsPathSegment, AttributeValue, Attributes, Bgp4MpEnum, Bgp4MpMessage,
    Bgp4MpStateChange, BgpMessage, BgpState, MrtMessage, NetworkPrefix, NextHopAddress,
    TableDumpMessage, TableDumpV2Message,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{AsPath, Change, Hop, Message, Peer, Route, Sink, Snapshot, Update};
use crate::table::Compression;

/// The largest MRT record accepted (as the table loader's limit: a RIB
/// record of a prefix seen by thousands of peers is well under it).
pub const MAX_RECORD: u32 = crate::table::report::MAX_RECORD;

/// The `source` label of everything read here.
pub const SOURCE: &str = "mrt";

const TABLE_DUMP: u16 = 12;
const TABLE_DUMP_V2: u16 = 13;
const BGP4MP: u16 = 16;
const BGP4MP_ET: u16 = 17;

/// Faults logged at `warn` per file; the rest at `debug` (a corrupt file
/// would otherwise flood the log), all counted.
const WARN_FAULTS: u64 = 20;

/// Which routes to keep. Both questions default to yes ([`KeepAll`]).
///
/// A closure `Fn(&IpNet, &Route) -> bool` is a `Keep` that answers
/// [`Keep::route`]; [`Overlapping`] keeps the prefixes that overlap
/// target prefixes and answers [`Keep::prefix`] too, so that the RIB
/// records of other prefixes are not decoded at all.
pub trait Keep {
    /// Whether any route to `prefix` may be wanted. `false` skips a RIB
    /// record before its attributes are read, and drops a withdrawal.
    fn prefix(&self, prefix: &IpNet) -> bool {
        let _ = prefix;
        true
    }

    /// Whether to keep this route (asked only for prefixes
    /// [`Keep::prefix`] accepted).
    fn route(&self, prefix: &IpNet, route: &Route) -> bool {
        let _ = (prefix, route);
        true
    }
}

/// Keeps every route.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepAll;

impl Keep for KeepAll {}

impl<F: Fn(&IpNet, &Route) -> bool> Keep for F {
    fn route(&self, prefix: &IpNet, route: &Route) -> bool {
        self(prefix, route)
    }
}

/// Keeps the routes of prefixes that overlap one of the targets: the
/// target itself, more specifics inside it and the less specifics
/// covering it (all of which can carry traffic toward the target).
#[derive(Debug, Clone, Default)]
pub struct Overlapping(pub Vec<IpNet>);

impl Keep for Overlapping {
    fn prefix(&self, prefix: &IpNet) -> bool {
        self.0
            .iter()
            .any(|t| t.contains(prefix) || prefix.contains(t))
    }
}

/// How to read a file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The collector's name (`route-views2`, `rrc00`): the `router` of
    /// the peers and the snapshot.
    pub collector: String,
    /// Also send the snapshot of a truncated RIB dump. Off by default: a
    /// snapshot lists every route its peers have, so a partial one would
    /// withdraw the routes of every prefix after the cut.
    pub partial_snapshot: bool,
}

/// What reading one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrtReport {
    /// The file (or the name given for a reader).
    pub name: String,
    /// Its compression.
    pub compression: Compression,
    /// Whole records read.
    pub records: u64,
    /// Records by kind: `peer_index`, `rib`, `table_dump`, `message`
    /// (BGP4MP messages other than updates included), `update`,
    /// `state_change`, `local` (skipped `*_LOCAL` messages), `other`
    /// (record types and subtypes that carry no unicast route).
    pub kinds: BTreeMap<&'static str, u64>,
    /// Faults by kind (each also sent as [`Message::Fault`]): `truncated`,
    /// `io`, `too_long`, `unknown_type`, `short`, `prefix`, `attribute`,
    /// `peer_index`, `no_peer_index`, `parse`, `panic`.
    pub faults: BTreeMap<&'static str, u64>,
    /// The file ends inside a record (or its compressed stream is cut):
    /// everything up to the last whole record was read.
    pub truncated: bool,
    /// The sink stopped listening before the file was read.
    pub stopped: bool,
    /// Bytes of decompressed content read, up to the end of the last
    /// whole record.
    pub bytes: u64,
    /// RIB records skipped undecoded because [`Keep::prefix`] refused
    /// their prefix.
    pub skipped_prefixes: u64,
    /// Routes in the snapshot (whether or not it was sent).
    pub routes: u64,
    /// Whether a snapshot was sent.
    pub snapshot: bool,
    /// Updates sent (one per prefix announced or withdrawn).
    pub updates: u64,
}

impl MrtReport {
    fn new(name: &str, compression: Compression) -> Self {
        Self {
            name: name.to_string(),
            compression,
            records: 0,
            kinds: BTreeMap::new(),
            faults: BTreeMap::new(),
            truncated: false,
            stopped: false,
            bytes: 0,
            skipped_prefixes: 0,
            routes: 0,
            snapshot: false,
            updates: 0,
        }
    }

    /// All faults counted.
    pub fn fault_count(&self) -> u64 {
        self.faults.values().sum()
    }
}

impl fmt::Display for MrtReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} records, {} routes, {} updates, {} faults",
            self.name,
            self.records,
            self.routes,
            self.updates,
            self.fault_count()
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

/// Reads the MRT file at `path` (see [`read`]); the error is only that it
/// cannot be opened.
pub fn read_file(
    path: &Path,
    options: &ReadOptions,
    keep: &dyn Keep,
    sink: &mut dyn Sink,
) -> io::Result<MrtReport> {
    let file = File::open(path)?;
    Ok(read(file, &path.display().to_string(), options, keep, sink))
}

/// Reads one MRT file from `input` (plain, gzip or bzip2, recognised from
/// its first bytes) into `sink`: a RIB dump's routes that `keep` keeps as
/// one snapshot at the end, updates as they come. `name` names the file
/// in logs and the report. Never fails: what cannot be read is in the
/// report.
pub fn read(
    input: impl Read,
    name: &str,
    options: &ReadOptions,
    keep: &dyn Keep,
    sink: &mut dyn Sink,
) -> MrtReport {
    let mut input = input;
    let mut head = [0u8; 4];
    let (n, err) = read_full(&mut input, &mut head);
    let compression = Compression::detect(&head[..n]);
    let mut report = MrtReport::new(name, compression);
    let mut reader = Reader::new(name, options, keep, sink, &mut report);
    if let Some(e) = err {
        reader.fault("io", format_args!("cannot read: {e}"));
        reader.finish();
        return report;
    }
    let raw = io::Cursor::new(head).take(n as u64).chain(input);
    match compression {
        Compression::None => reader.run(BufReader::with_capacity(1 << 16, raw)),
        Compression::Gzip => reader.run(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Bzip2 => reader.run(bzip2::read::MultiBzDecoder::new(raw)),
    }
    reader.finish();
    report
}

/// A RIB dump being collected.
#[derive(Default)]
struct Rib {
    /// Dump time: the first RIB record's (or peer index table's).
    at_ms: Option<u64>,
    /// From the `TABLE_DUMP_V2` peer index table, or the peers of
    /// `TABLE_DUMP` records as first seen.
    peers: Vec<Peer>,
    /// Whether a peer index table was read.
    indexed: bool,
    routes: Vec<(usize, IpNet, Route)>,
    /// Any RIB record seen (a snapshot is sent even when nothing was kept).
    seen: bool,
}

struct Reader<'a> {
    name: &'a str,
    options: &'a ReadOptions,
    keep: &'a dyn Keep,
    sink: &'a mut dyn Sink,
    report: &'a mut MrtReport,
    record: u64,
    offset: u64,
    rib: Rib,
    /// Reused across entries.
    scratch: Entry,
}

/// What one RIB entry's attributes hold, reused across entries.
#[derive(Default)]
struct Entry {
    /// Raw `AS_PATH` / `AS4_PATH` values.
    as_path: Option<(usize, usize)>,
    as4_path: Option<(usize, usize)>,
    next_hop: Option<IpAddr>,
    mp_next_hop: Option<IpAddr>,
}

impl<'a> Reader<'a> {
    fn new(
        name: &'a str,
        options: &'a ReadOptions,
        keep: &'a dyn Keep,
        sink: &'a mut dyn Sink,
        report: &'a mut MrtReport,
    ) -> Self {
        Self {
            name,
            options,
            keep,
            sink,
            report,
            record: 0,
            offset: 0,
            rib: Rib::default(),
            scratch: Entry::default(),
        }
    }

    /// Counts, logs and sends a fault at the current record.
    fn fault(&mut self, kind: &'static str, detail: fmt::Arguments<'_>) {
        let n = self.report.faults.entry(kind).or_default();
        *n += 1;
        let total = self.report.fault_count();
        if total <= WARN_FAULTS {
            tracing::warn!(
                file = self.name,
                record = self.record + 1,
                offset = self.offset,
                kind,
                "MRT: {detail}"
            );
        } else {
            tracing::debug!(
                file = self.name,
                record = self.record + 1,
                offset = self.offset,
                kind,
                "MRT: {detail}"
            );
        }
        self.send(Message::Fault {
            source: SOURCE.to_string(),
            kind,
        });
    }

    fn send(&mut self, msg: Message) {
        if self.report.stopped {
            return;
        }
        if !self.sink.send(msg) {
            self.report.stopped = true;
        }
    }

    fn count(&mut self, kind: &'static str) {
        *self.report.kinds.entry(kind).or_default() += 1;
    }

    /// Reads records until the end, a fault that ends the file, or the
    /// sink stops.
    fn run(&mut self, mut input: impl Read) {
        let mut record = Vec::new();
        while !self.report.stopped {
            let mut header = [0u8; 12];
            let (n, err) = read_full(&mut input, &mut header);
            if let Some(e) = err {
                self.read_error(e);
                return;
            }
            if n == 0 {
                return;
            }
            if n < header.len() {
                self.truncated();
                return;
            }
            let kind = u16::from_be_bytes([header[4], header[5]]);
            let length = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
            if !known_type(kind) {
                self.fault(
                    "unknown_type",
                    format_args!("unknown MRT record type {kind}: not MRT, or out of step; the rest of the file is skipped"),
                );
                return;
            }
            if length > MAX_RECORD {
                self.fault(
                    "too_long",
                    format_args!("record length {length} is over the limit of {MAX_RECORD} bytes; the rest of the file is skipped"),
                );
                return;
            }
            record.clear();
            record.extend_from_slice(&header);
            // `take` + `read_to_end` grows the buffer as data arrives, so
            // a cut file never allocates the whole claimed length.
            if let Err(e) = (&mut input)
                .take(u64::from(length))
                .read_to_end(&mut record)
            {
                self.read_error(e);
                return;
            }
            if record.len() < header.len() + length as usize {
                self.truncated();
                return;
            }
            self.record_(&record);
            self.record += 1;
            self.offset += record.len() as u64;
            self.report.records = self.record;
            self.report.bytes = self.offset;
        }
    }

    fn read_error(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.truncated();
        } else {
            self.fault("io", format_args!("cannot read: {e}"));
        }
    }

    fn truncated(&mut self) {
        self.report.truncated = true;
        self.fault(
            "truncated",
            format_args!("the file ends inside a record: read up to the last whole record"),
        );
    }

    /// Handles one whole record (header included).
    fn record_(&mut self, record: &[u8]) {
        let time = u32::from_be_bytes([record[0], record[1], record[2], record[3]]);
        let kind = u16::from_be_bytes([record[4], record[5]]);
        let subtype = u16::from_be_bytes([record[6], record[7]]);
        let body = &record[12..];
        match (kind, subtype) {
            (TABLE_DUMP_V2, 1) => {
                self.count("peer_index");
                self.rib.at_ms.get_or_insert(u64::from(time) * 1000);
                self.rib.seen = true;
                if self.rib.indexed || !self.rib.peers.is_empty() {
                    // The routes read so far index the peers there are:
                    // a second table cannot replace them.
                    self.fault(
                        "peer_index",
                        format_args!(
                            "a second peer index table (or one after TABLE_DUMP records): ignored"
                        ),
                    );
                    return;
                }
                if let Some(MrtMessage::TableDumpV2Message(TableDumpV2Message::PeerIndexTable(
                    table,
                ))) = self.parse(record)
                {
                    let mut peers: Vec<_> = table.id_peer_map.into_iter().collect();
                    peers.sort_by_key(|(i, _)| *i);
                    self.rib.peers = peers
                        .into_iter()
                        .map(|(_, p)| self.peer(p.peer_address, p.peer_asn.to_u32()))
                        .collect();
                    self.rib.indexed = true;
                }
            }
            // RIB_IPV4_UNICAST, RIB_IPV6_UNICAST and their ADD-PATH forms.
            (TABLE_DUMP_V2, 2 | 4 | 8 | 10) => {
                self.count("rib");
                self.rib.at_ms.get_or_insert(u64::from(time) * 1000);
                self.rib.seen = true;
                let v6 = matches!(subtype, 4 | 10);
                let add_path = subtype >= 8;
                if let Err(fault) = self.rib_record(body, v6, add_path) {
                    self.fault(fault.kind, format_args!("{}", fault.detail));
                }
            }
            (TABLE_DUMP, 1 | 2) => {
                self.count("table_dump");
                self.rib.at_ms.get_or_insert(u64::from(time) * 1000);
                self.rib.seen = true;
                if let Some(MrtMessage::TableDumpMessage(dump)) = self.parse(record) {
                    self.table_dump(dump);
                }
            }
            (BGP4MP | BGP4MP_ET, _) => {
                let mut at_ms = u64::from(time) * 1000;
                if kind == BGP4MP_ET {
                    if body.len() < 4 {
                        self.fault(
                            "short",
                            format_args!("BGP4MP_ET record of {} bytes", body.len()),
                        );
                        return;
                    }
                    let micros = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    at_ms += u64::from(micros.min(999_999)) / 1000;
                }
                match self.parse(record) {
                    Some(MrtMessage::Bgp4Mp(Bgp4MpEnum::Message(m))) => self.bgp4mp(m, at_ms),
                    Some(MrtMessage::Bgp4Mp(Bgp4MpEnum::StateChange(s))) => {
                        self.state_change(s, at_ms)
                    }
                    _ => {}
                }
            }
            _ => self.count("other"),
        }
    }

    /// Parses a whole record with bgpkit-parser; a fault (counted) when
    /// it cannot, or panics.
    fn parse(&mut self, record: &[u8]) -> Option<MrtMessage> {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut bytes = record;
            bgpkit_parser::parse_mrt_record(&mut bytes)
        }));
        match outcome {
            Ok(Ok(parsed)) => Some(parsed.message),
            Ok(Err(e)) => {
                self.fault("parse", format_args!("cannot parse: {}", e.error));
                None
            }
            Err(_) => {
                self.fault(
                    "panic",
                    format_args!("the MRT parser failed on this record"),
                );
                None
            }
        }
    }

    fn peer(&self, addr: IpAddr, asn: u32) -> Peer {
        Peer {
            source: SOURCE.to_string(),
            router: self.options.collector.clone(),
            addr,
            asn,
        }
    }

    /// A `TABLE_DUMP_V2` RIB record's body: the prefix, then its entries.
    fn rib_record(&mut self, body: &[u8], v6: bool, add_path: bool) -> Result<(), Fault> {
        let mut at = Cursor::new(body);
        at.skip(4)?; // sequence number
        let prefix = at.prefix(v6)?;
        if !self.keep.prefix(&prefix) {
            self.report.skipped_prefixes += 1;
            return Ok(());
        }
        if !self.rib.indexed {
            return Err(Fault::new(
                "no_peer_index",
                "RIB record before any peer index table".to_string(),
            ));
        }
        let count = at.u16()?;
        for _ in 0..count {
            let index = usize::from(at.u16()?);
            at.skip(4)?; // originated time
            if add_path {
                at.skip(4)?;
            }
            let len = usize::from(at.u16()?);
            let attrs = at.take(len)?;
            if index >= self.rib.peers.len() {
                self.fault(
                    "peer_index",
                    format_args!(
                        "RIB entry of {prefix} names peer {index}; the peer index table has {}",
                        self.rib.peers.len()
                    ),
                );
                continue;
            }
            match self.rib_entry(attrs, prefix) {
                Ok(Some(route)) => self.rib.routes.push((index, prefix, route)),
                Ok(None) => {}
                Err(f) => self.fault(f.kind, format_args!("RIB entry of {prefix}: {}", f.detail)),
            }
        }
        Ok(())
    }

    /// One RIB entry's route, if kept.
    fn rib_entry(&mut self, attrs: &[u8], prefix: IpNet) -> Result<Option<Route>, Fault> {
        let e = &mut self.scratch;
        *e = Entry::default();
        let mut at = Cursor::new(attrs);
        while !at.is_empty() {
            let flags = at.u8()?;
            let kind = at.u8()?;
            let len = if flags & 0x10 != 0 {
                usize::from(at.u16()?)
            } else {
                usize::from(at.u8()?)
            };
            let start = at.pos;
            let value = at.take(len)?;
            match kind {
                2 => e.as_path = Some((start, len)),
                17 => e.as4_path = Some((start, len)),
                3 => {
                    if let Ok(b) = <[u8; 4]>::try_from(value) {
                        e.next_hop = Some(IpAddr::from(b));
                    }
                }
                14 => e.mp_next_hop = mp_next_hop(value),
                _ => {}
            }
        }
        let path = match (e.as_path, e.as4_path) {
            (Some((s, l)), None) | (None, Some((s, l))) => hops(&attrs[s..s + l], 4)?,
            (Some((s, l)), Some((s4, l4))) => {
                let a = kit_path(&attrs[s..s + l], 4)?;
                let b = kit_path(&attrs[s4..s4 + l4], 4)?;
                from_kit(&KitPath::merge_aspath_as4path(&a, &b))
            }
            (None, None) => AsPath::default(),
        };
        let next_hop = match prefix {
            IpNet::V4(_) => e.next_hop.or(e.mp_next_hop),
            IpNet::V6(_) => e.mp_next_hop.or(e.next_hop),
        };
        let route = Route { path, next_hop };
        Ok(self.keep.route(&prefix, &route).then_some(route))
    }

    /// A legacy `TABLE_DUMP` record: one (prefix, peer) route.
    fn table_dump(&mut self, dump: TableDumpMessage) {
        let prefix = dump.prefix.prefix.trunc();
        if !self.keep.prefix(&prefix) {
            self.report.skipped_prefixes += 1;
            return;
        }
        let asn = dump.peer_asn.to_u32();
        let index = match self
            .rib
            .peers
            .iter()
            .position(|p| p.addr == dump.peer_address && p.asn == asn)
        {
            Some(i) => i,
            None => {
                self.rib.peers.push(self.peer(dump.peer_address, asn));
                self.rib.peers.len() - 1
            }
        };
        let route = route_of(&dump.attributes, &prefix);
        if self.keep.route(&prefix, &route) {
            self.rib.routes.push((index, prefix, route));
        }
    }

    /// A `BGP4MP` message: updates for an UPDATE, counted otherwise.
    fn bgp4mp(&mut self, m: Bgp4MpMessage, at_ms: u64) {
        if m.is_local() {
            self.count("local");
            return;
        }
        let BgpMessage::Update(update) = m.bgp_message else {
            self.count("message");
            return;
        };
        self.count("update");
        let peer = self.peer(m.peer_ip, m.peer_asn.to_u32());
        let attrs = &update.attributes;
        let mut withdrawn: Vec<&NetworkPrefix> = update.withdrawn_prefixes.iter().collect();
        let mut announced: Vec<(&NetworkPrefix, Option<IpAddr>)> = Vec::new();
        let mut next_hop = None;
        for value in attrs {
            match value {
                AttributeValue::NextHop(ip) => next_hop = Some(*ip),
                AttributeValue::MpReachNlri(nlri) => {
                    let nh = nlri.next_hop.as_ref().map(next_hop_ip);
                    announced.extend(nlri.prefixes.iter().map(|p| (p, nh)));
                }
                AttributeValue::MpUnreachNlri(nlri) => withdrawn.extend(nlri.prefixes.iter()),
                _ => {}
            }
        }
        announced.extend(update.announced_prefixes.iter().map(|p| (p, next_hop)));
        for p in withdrawn {
            let prefix = p.prefix.trunc();
            if !self.keep.prefix(&prefix) {
                continue;
            }
            self.report.updates += 1;
            self.send(Message::Update(Update {
                at_ms,
                peer: peer.clone(),
                prefix,
                change: Change::Withdraw,
            }));
        }
        if announced.is_empty() {
            return;
        }
        let path = path_of(attrs);
        for (p, nh) in announced {
            let prefix = p.prefix.trunc();
            if !self.keep.prefix(&prefix) {
                continue;
            }
            let route = Route {
                path: path.clone(),
                next_hop: nh.or(next_hop),
            };
            if !self.keep.route(&prefix, &route) {
                continue;
            }
            self.report.updates += 1;
            self.send(Message::Update(Update {
                at_ms,
                peer: peer.clone(),
                prefix,
                change: Change::Announce { route },
            }));
        }
    }

    fn state_change(&mut self, s: Bgp4MpStateChange, at_ms: u64) {
        self.count("state_change");
        let peer = self.peer(s.peer_addr, s.peer_asn.to_u32());
        let up = BgpState::Established;
        if s.new_state == up && s.old_state != up {
            self.send(Message::PeerUp { peer, at_ms });
        } else if s.old_state == up && s.new_state != up {
            self.send(Message::PeerDown {
                peer,
                at_ms,
                reason: format!("BGP state Established to {:?}", s.new_state),
            });
        }
    }

    /// The end of the file: the snapshot of a RIB dump.
    fn finish(&mut self) {
        let rib = std::mem::take(&mut self.rib);
        if !rib.seen {
            return;
        }
        self.report.routes = rib.routes.len() as u64;
        if self.report.truncated && !self.options.partial_snapshot {
            tracing::warn!(
                file = self.name,
                routes = rib.routes.len(),
                "MRT: the RIB dump is truncated; its snapshot is not sent"
            );
            return;
        }
        self.report.snapshot = true;
        self.send(Message::Snapshot(Snapshot {
            source: SOURCE.to_string(),
            router: self.options.collector.clone(),
            at_ms: rib.at_ms.unwrap_or(0),
            peers: rib.peers,
            routes: rib.routes,
        }));
    }
}

/// Whether RFC 6396 (or its predecessors) defines this record type.
fn known_type(kind: u16) -> bool {
    matches!(kind, 0..=13 | 16 | 17 | 32 | 33 | 48 | 49)
}

/// A fault found while decoding a record.
#[derive(Debug)]
struct Fault {
    kind: &'static str,
    detail: String,
}

impl Fault {
    fn new(kind: &'static str, detail: String) -> Self {
        Self { kind, detail }
    }
}

/// A bounds-checked reader over a record's bytes.
struct Cursor<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl<'b> Cursor<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'b [u8], Fault> {
        match self.bytes.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Fault::new(
                "short",
                format!(
                    "{n} bytes wanted at byte {} of {}, past the end",
                    self.pos,
                    self.bytes.len()
                ),
            )),
        }
    }

    fn skip(&mut self, n: usize) -> Result<(), Fault> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, Fault> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Fault> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A prefix length and as many bytes as it needs, host bits cleared.
    fn prefix(&mut self, v6: bool) -> Result<IpNet, Fault> {
        let len = self.u8()?;
        let max = if v6 { 128 } else { 32 };
        if len > max {
            return Err(Fault::new(
                "prefix",
                format!("prefix length {len} over {max}"),
            ));
        }
        let bytes = self.take(usize::from(len).div_ceil(8))?;
        let mut addr = [0u8; 16];
        addr[..bytes.len()].copy_from_slice(bytes);
        let net = if v6 {
            Ipv6Net::new(Ipv6Addr::from(addr), len).map(IpNet::V6)
        } else {
            let v4 = [addr[0], addr[1], addr[2], addr[3]];
            Ipv4Net::new(Ipv4Addr::from(v4), len).map(IpNet::V4)
        };
        net.map(|n| n.trunc())
            .map_err(|_| Fault::new("prefix", format!("prefix length {len} over {max}")))
    }
}

/// The next hop of an `MP_REACH_NLRI` value: the abbreviated form RIB
/// entries use (length, address) or the full one (AFI, SAFI, length,
/// address, ...). Of a global and a link-local IPv6 next hop, the global.
fn mp_next_hop(value: &[u8]) -> Option<IpAddr> {
    let nh = match value.first()? {
        // A length of 0 names no next hop; in the full form the AFI's
        // first byte is 0.
        0 if value.len() >= 4 => {
            let len = usize::from(value[3]);
            value.get(4..4 + len)?
        }
        &len => value.get(1..1 + usize::from(len))?,
    };
    match nh.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(nh).ok()?)),
        16 | 32 => Some(IpAddr::from(<[u8; 16]>::try_from(&nh[..16]).ok()?)),
        _ => None,
    }
}

/// Walks the segments of an `AS_PATH` value with `width`-byte ASes.
fn segments(value: &[u8], width: usize, mut each: impl FnMut(u8, &[u8])) -> Result<(), Fault> {
    let mut at = Cursor::new(value);
    while !at.is_empty() {
        let kind = at.u8()?;
        let count = usize::from(at.u8()?);
        let asns = at.take(count * width).map_err(|_| {
            Fault::new(
                "attribute",
                format!("AS path segment of {count} ASes overruns the attribute"),
            )
        })?;
        if !(1..=4).contains(&kind) {
            return Err(Fault::new(
                "attribute",
                format!("AS path segment type {kind}"),
            ));
        }
        each(kind, asns);
    }
    Ok(())
}

fn asn_at(asns: &[u8], width: usize) -> impl Iterator<Item = u32> + '_ {
    asns.chunks_exact(width)
        .map(|c| c.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
}

/// An `AS_PATH` value as hops: sequences' ASes, sets as sets,
/// confederation segments left out.
fn hops(value: &[u8], width: usize) -> Result<AsPath, Fault> {
    let mut n = 0;
    segments(value, width, |kind, asns| match kind {
        2 => n += asns.len() / width,
        1 => n += 1,
        _ => {}
    })?;
    let mut out = Vec::with_capacity(n);
    segments(value, width, |kind, asns| match kind {
        2 => out.extend(asn_at(asns, width).map(Hop::As)),
        1 => out.push(Hop::Set(asn_at(asns, width).collect())),
        _ => {}
    })?;
    Ok(AsPath(out))
}

/// An `AS_PATH` value as bgpkit's path (to merge with `AS4_PATH`).
fn kit_path(value: &[u8], width: usize) -> Result<KitPath, Fault> {
    let mut out = Vec::new();
    segments(value, width, |kind, asns| {
        let asns = asn_at(asns, width).map(Into::into).collect();
        out.push(match kind {
            1 => AsPathSegment::AsSet(asns),
            2 => AsPathSegment::AsSequence(asns),
            3 => AsPathSegment::ConfedSequence(asns),
            _ => AsPathSegment::ConfedSet(asns),
        });
    })?;
    Ok(KitPath::from_segments(out))
}

/// bgpkit's path as hops, confederation segments left out.
fn from_kit(path: &KitPath) -> AsPath {
    let mut out = Vec::new();
    for segment in &path.segments {
        match segment {
            AsPathSegment::AsSequence(s) => out.extend(s.iter().map(|a| Hop::As(a.to_u32()))),
            AsPathSegment::AsSet(s) => out.push(Hop::Set(s.iter().map(|a| a.to_u32()).collect())),
            AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => {}
        }
    }
    AsPath(out)
}

/// The path of parsed attributes, `AS_PATH` merged with `AS4_PATH`.
fn path_of(attributes: &Attributes) -> AsPath {
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
    match (as_path, as4_path) {
        (Some(a), Some(b)) => from_kit(&KitPath::merge_aspath_as4path(a, b)),
        (Some(p), None) | (None, Some(p)) => from_kit(p),
        (None, None) => AsPath::default(),
    }
}

/// The route of parsed attributes for `prefix` (its family picks
/// `NEXT_HOP` or the `MP_REACH_NLRI` next hop first).
fn route_of(attributes: &Attributes, prefix: &IpNet) -> Route {
    let mut nh = None;
    let mut mp = None;
    for value in attributes {
        match value {
            AttributeValue::NextHop(ip) => nh = Some(*ip),
            AttributeValue::MpReachNlri(nlri) => mp = nlri.next_hop.as_ref().map(next_hop_ip),
            _ => {}
        }
    }
    let next_hop = match prefix {
        IpNet::V4(_) => nh.or(mp),
        IpNet::V6(_) => mp.or(nh),
    };
    Route {
        path: path_of(attributes),
        next_hop,
    }
}

fn next_hop_ip(nh: &NextHopAddress) -> IpAddr {
    match nh {
        NextHopAddress::Ipv4(a) => IpAddr::V4(*a),
        NextHopAddress::Ipv6(a) | NextHopAddress::Ipv6LinkLocal(a, _) => IpAddr::V6(*a),
    }
}

/// The lines `bgpdump -m` prints for what a message holds, the fields
/// this reader decodes filled in (type, time, peer address and AS,
/// prefix, AS path, next hop) and the others left empty:
///
/// ```text
/// TABLE_DUMP2|1400824800|B|157.130.10.233|701|1.0.0.0/24|701 6453 15169||157.130.10.233|||||||
/// BGP4MP|1400824800|A|192.0.2.1|64500|10.0.0.0/8|64500 64501||192.0.2.1|||||||
/// BGP4MP|1400824800|W|192.0.2.1|64500|10.0.0.0/8
/// ```
///
/// A snapshot's lines carry its one time (bgpdump prints each record's;
/// a dump's records share it). Peer up/down print as bgpdump's `STATE`
/// lines (`6` is Established, the other state `1`, Idle); faults and the
/// other messages print nothing.
pub fn bgpdump_lines(msg: &Message) -> Vec<String> {
    let mut out = Vec::new();
    match msg {
        Message::Snapshot(s) => {
            let ts = s.at_ms / 1000;
            for (i, prefix, route) in &s.routes {
                let Some(peer) = s.peers.get(*i) else {
                    continue;
                };
                out.push(route_line("TABLE_DUMP2", ts, "B", peer, prefix, route));
            }
        }
        Message::Update(u) => {
            let ts = u.at_ms / 1000;
            match &u.change {
                Change::Announce { route } => {
                    out.push(route_line("BGP4MP", ts, "A", &u.peer, &u.prefix, route))
                }
                Change::Withdraw => out.push(format!(
                    "BGP4MP|{ts}|W|{}|{}|{}",
                    u.peer.addr, u.peer.asn, u.prefix
                )),
            }
        }
        Message::PeerUp { peer, at_ms } => out.push(format!(
            "BGP4MP|{}|STATE|{}|{}|1|6",
            at_ms / 1000,
            peer.addr,
            peer.asn
        )),
        Message::PeerDown { peer, at_ms, .. } => out.push(format!(
            "BGP4MP|{}|STATE|{}|{}|6|1",
            at_ms / 1000,
            peer.addr,
            peer.asn
        )),
        _ => {}
    }
    out
}

fn route_line(
    kind: &str,
    ts: u64,
    tag: &str,
    peer: &Peer,
    prefix: &IpNet,
    route: &Route,
) -> String {
    let mut line = format!(
        "{kind}|{ts}|{tag}|{}|{}|{prefix}|{}||",
        peer.addr, peer.asn, route.path
    );
    if let Some(nh) = route.next_hop {
        let _ = write!(line, "{nh}");
    }
    line.push_str("|||||||");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp_next_hop_forms() {
        // Abbreviated (RIB entries): length, address.
        assert_eq!(
            mp_next_hop(&[4, 192, 0, 2, 1]),
            Some("192.0.2.1".parse().unwrap())
        );
        // Full: AFI 2, SAFI 1, length 16, address, reserved, NLRI.
        let mut full = vec![0, 2, 1, 16];
        full.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        full.push(0);
        assert_eq!(mp_next_hop(&full), Some("2001:db8::1".parse().unwrap()));
        // Global and link-local: the global.
        let mut both = vec![32];
        both.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        both.extend_from_slice(&"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(mp_next_hop(&both), Some("2001:db8::2".parse().unwrap()));
        assert_eq!(mp_next_hop(&[16, 1, 2]), None);
        assert_eq!(mp_next_hop(&[]), None);
    }

    #[test]
    fn hops_keep_sets_and_drop_confederations() {
        // SEQUENCE 1 2, CONFED_SEQUENCE 9, SET {3,4}.
        let value = [
            2, 2, 0, 0, 0, 1, 0, 0, 0, 2, 3, 1, 0, 0, 0, 9, 1, 2, 0, 0, 0, 3, 0, 0, 0, 4,
        ];
        let path = hops(&value, 4).unwrap();
        assert_eq!(path.to_string(), "1 2 {3,4}");
        // A segment claiming more ASes than there are bytes.
        assert!(hops(&[2, 5, 0, 0, 0, 1], 4).is_err());
        // An unknown segment type.
        assert!(hops(&[7, 1, 0, 0, 0, 1], 4).is_err());
    }

    #[test]
    fn prefix_lengths_are_checked() {
        assert!(Cursor::new(&[33, 1, 2, 3, 4, 5]).prefix(false).is_err());
        assert!(Cursor::new(&[24, 1, 2]).prefix(false).is_err());
        let p = Cursor::new(&[23, 10, 1, 255]).prefix(false).unwrap();
        assert_eq!(p.to_string(), "10.1.254.0/23");
        let p = Cursor::new(&[0]).prefix(true).unwrap();
        assert_eq!(p.to_string(), "::/0");
    }

    #[test]
    fn overlapping_keeps_covering_and_covered() {
        let keep = Overlapping(vec!["10.1.0.0/16".parse().unwrap()]);
        for (p, want) in [
            ("10.0.0.0/8", true),
            ("10.1.2.0/24", true),
            ("10.1.0.0/16", true),
            ("10.2.0.0/16", false),
            ("::/0", false),
        ] {
            assert_eq!(keep.prefix(&p.parse().unwrap()), want, "{p}");
        }
    }
}
