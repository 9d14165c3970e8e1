//! The agent's on-disk spool: every result is written here before any
//! upload is tried, and leaves only once the collector has committed it.
//!
//! Layout of the spool directory:
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: append-only segments, numbered in order.
//!   Each record is framed as `magic u32 | len u32 | crc32 u32 | time_ms
//!   u64 | payload` (little-endian; the CRC-32 covers `time_ms` and the
//!   payload, which is one JSON line without its newline).
//! - `cursor`: `SEQ OFFSET`, the position up to which the collector has
//!   acknowledged; replaced atomically (write, fsync, rename).
//! - `quarantine/`: batches the collector refused for good (a 4xx other
//!   than an authentication failure), kept as JSON lines for a human.
//!
//! Durability policy: a record is written with a single `write(2)` as soon
//! as it is produced, so it survives the agent being killed at any moment;
//! segments are `fdatasync`ed by [`Spool::sync`], which the agent calls
//! after every round and at least every second while results arrive, so a
//! power loss costs at most the last second. The cursor is fsynced before
//! acknowledged segments are deleted.
//!
//! Recovery: on open every pending record is checked; a torn record (the
//! tail of a write cut short) is cut off the segment and a corrupt one (bad
//! magic or checksum) is skipped; both are counted and logged, and the rest
//! is replayed in order.
//!
//! The cursor is reconciled with the segments that actually exist, because
//! a segment can vanish or shrink behind the agent's back (an operator, a
//! disk fault, an older agent that reused a number). A cursor naming a
//! missing segment moves to the start of the next one on disk; a cursor
//! past the end of its segment, or not on a record boundary, cannot say
//! what was acknowledged, so that segment is replayed whole (the collector
//! drops what it already has: duplicates rather than loss). New segments
//! are always numbered past the cursor, and a repaired cursor is written
//! back at once, so a stale cursor never points into new records. Every
//! repair and every missing segment is counted and logged.
//!
//! Bound: when pending data would exceed `max_bytes`, or the filesystem is
//! full, the oldest whole segment is dropped (its records are counted as
//! dropped); if nothing older can go, the new record is dropped and counted.
//! Newer measurements are kept in preference to older ones.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Frame magic, "TMS1".
const MAGIC: u32 = 0x3153_4d54;
/// Bytes before the payload.
pub const HEADER: usize = 20;
/// Largest payload accepted (a trace line is a few KiB).
pub const MAX_RECORD: usize = 4 << 20;

/// Where a record starts (or the spool's read/acknowledge point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub seq: u64,
    pub offset: u64,
}

/// Spool settings.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Bound on pending bytes on disk (segments not yet acknowledged).
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
}

impl SpoolConfig {
    pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
    pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;

    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// Counters a spool keeps (also exported as the agent's metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records appended since start.
    pub appended: u64,
    /// Records acknowledged by the collector since start.
    pub acked: u64,
    /// Records dropped because the spool was at its bound.
    pub dropped_full: u64,
    /// Records dropped because they could not be written (disk full, I/O).
    pub dropped_write_error: u64,
    /// Torn records cut off at recovery (an interrupted write).
    pub torn: u64,
    /// Corrupt records or regions skipped at recovery.
    pub corrupt: u64,
    /// Records moved to quarantine.
    pub quarantined: u64,
    /// Times the cursor did not match the segments on disk at recovery
    /// (its segment missing, older than the oldest, shorter than the
    /// cursor, the cursor not on a record boundary, or the file
    /// unreadable) and was repaired.
    pub stale_cursor: u64,
    /// Segments missing at recovery between the cursor and the newest
    /// segment on disk (deleted from outside): their records are lost.
    pub missing_segments: u64,
}

/// A spool error: always names the file.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spool record of {0} bytes is larger than the {MAX_RECORD}-byte limit")]
    TooLarge(usize),
    #[error("spool is full ({0} bytes pending) and holds nothing older to drop")]
    Full(u64),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    /// Bytes of valid data (records end here).
    len: u64,
    /// Records from the cursor (or the start) to `len`.
    records: u64,
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub pos: Pos,
    pub time_ms: u64,
    pub payload: Vec<u8>,
}

/// What a scan of a segment finds at one position.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Record {
        len: usize,
        time_ms: u64,
    },
    /// Bad magic or checksum: skip `skip` bytes to the next candidate.
    Corrupt {
        skip: usize,
    },
    /// The record runs past the data: an interrupted write.
    Torn,
    End,
}

fn frame_at(data: &[u8], at: usize) -> Frame {
    let rest = &data[at.min(data.len())..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < HEADER {
        return if rest.starts_with(&MAGIC.to_le_bytes()[..rest.len().min(4)]) {
            Frame::Torn
        } else {
            Frame::Corrupt {
                skip: next_magic(rest, 1),
            }
        };
    }
    let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
    if word(0) != MAGIC {
        return Frame::Corrupt {
            skip: next_magic(rest, 1),
        };
    }
    let len = word(4) as usize;
    if len > MAX_RECORD {
        return Frame::Corrupt {
            skip: next_magic(rest, 4),
        };
    }
    if rest.len() < HEADER + len {
        return Frame::Torn;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&rest[12..HEADER + len]);
    if crc.finalize() != word(8) {
        return Frame::Corrupt {
            skip: next_magic(rest, 4),
        };
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&rest[12..20]);
    Frame::Record {
        len,
        time_ms: u64::from_le_bytes(t),
    }
}

/// Offset of the next possible frame start after `from`.
fn next_magic(rest: &[u8], from: usize) -> usize {
    let m = MAGIC.to_le_bytes();
    (from..rest.len())
        .find(|&i| rest[i..].starts_with(&m[..(rest.len() - i).min(4)]))
        .unwrap_or(rest.len())
}

/// Encodes one framed record.
pub fn frame(payload: &[u8], time_ms: u64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER + payload.len());
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&time_ms.to_le_bytes());
    buf.extend_from_slice(payload);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&buf[12..]);
    buf[8..12].copy_from_slice(&crc.finalize().to_le_bytes());
    buf
}

use tumen_core::now_ms;

/// The spool (see the module documentation).
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    /// Pending segments, oldest first; the last one is written to.
    segments: Vec<Segment>,
    active: Option<File>,
    cursor: Pos,
    /// Time of the oldest pending record, when known.
    oldest_ms: Option<u64>,
    dirty: bool,
    pub stats: SpoolStats,
    /// Problems found at recovery, one line each, for the log.
    pub recovery_notes: Vec<String>,
}

impl Spool {
    /// Opens (creating) the spool directory and recovers what it holds.
    pub fn open(config: SpoolConfig) -> Result<Self, SpoolError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|s| s.parse::<u64>().ok())
            {
                seqs.push(n);
            }
        }
        seqs.sort_unstable();
        let mut notes = Vec::new();
        let mut stats = SpoolStats::default();
        let cursor_path = dir.join("cursor");
        // The cursor as the file says it (None: no file, or unreadable).
        let mut file_exists = true;
        let (on_file, mut cursor) = match fs::read_to_string(&cursor_path) {
            Ok(s) => match parse_cursor(&s) {
                Some(p) => (Some(p), p),
                None => {
                    stats.stale_cursor += 1;
                    notes.push(format!(
                        "cursor file {} is unreadable ({:?}); replaying every segment \
                         (the collector drops what it already has)",
                        cursor_path.display(),
                        s.trim()
                    ));
                    (None, Pos::default())
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                file_exists = false;
                (None, Pos::default())
            }
            Err(e) => return Err(io_err(&cursor_path)(e)),
        };
        // Segments before the cursor's were acknowledged (the cursor is
        // written before they are deleted): finish deleting them.
        for &seq in seqs.iter().filter(|&&seq| seq < cursor.seq) {
            let path = seg_path(&dir, seq);
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        seqs.retain(|&seq| seq >= cursor.seq);
        if on_file.is_some() && seqs.first() != Some(&cursor.seq) {
            cursor = reconcile_missing(&dir, cursor, seqs.first().copied(), &mut stats, &mut notes);
        }
        for w in seqs.windows(2) {
            if w[1] > w[0] + 1 {
                stats.missing_segments += w[1] - w[0] - 1;
                notes.push(format!(
                    "{}: segment(s) {}..={} are missing (deleted from outside?): \
                     the results they held are lost",
                    dir.display(),
                    w[0] + 1,
                    w[1] - 1
                ));
            }
        }
        let mut segments = Vec::new();
        let mut oldest_ms = None;
        let last = seqs.last().copied();
        for seq in seqs {
            let path = seg_path(&dir, seq);
            let data = fs::read(&path).map_err(io_err(&path))?;
            if seq == cursor.seq && cursor.offset > 0 {
                if let Some(why) = stale_offset(&data, cursor.offset) {
                    stats.stale_cursor += 1;
                    notes.push(format!(
                        "{}: the cursor (byte {}) {why}: the segment was cut or replaced \
                         from outside; replaying it from the start (the collector drops \
                         what it already has)",
                        path.display(),
                        cursor.offset
                    ));
                    cursor.offset = 0;
                }
            }
            let start = if seq == cursor.seq {
                cursor.offset as usize
            } else {
                0
            };
            let mut at = start;
            let mut records = 0;
            let mut valid_end = start;
            loop {
                match frame_at(&data, at) {
                    Frame::Record { len, time_ms } => {
                        records += 1;
                        oldest_ms.get_or_insert(time_ms);
                        at += HEADER + len;
                        valid_end = at;
                    }
                    Frame::Corrupt { skip } => {
                        stats.corrupt += 1;
                        notes.push(format!(
                            "{}: corrupt data at byte {at} ({skip} bytes skipped)",
                            path.display()
                        ));
                        at += skip;
                        valid_end = at;
                    }
                    Frame::Torn => {
                        stats.torn += 1;
                        notes.push(format!(
                            "{}: torn record at byte {at} ({} bytes cut off)",
                            path.display(),
                            data.len() - at
                        ));
                        break;
                    }
                    Frame::End => break,
                }
            }
            if valid_end < data.len() && Some(seq) == last {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(valid_end as u64).map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
            }
            segments.push(Segment {
                seq,
                len: valid_end as u64,
                records,
            });
        }
        if let Some(first) = segments.first() {
            if cursor.seq < first.seq {
                // No cursor file: everything on disk is pending.
                cursor = Pos {
                    seq: first.seq,
                    offset: 0,
                };
            }
        }
        let mut spool = Self {
            config,
            segments,
            active: None,
            cursor,
            oldest_ms,
            dirty: false,
            stats,
            recovery_notes: notes,
        };
        if spool.segments.is_empty() {
            // A repaired cursor already names a number past any segment
            // it ever pointed into.
            let seq = cursor.seq.max(1);
            spool.cursor = Pos { seq, offset: 0 };
            spool.new_segment(seq)?;
        } else {
            let seq = spool.segments.last().map_or(1, |s| s.seq);
            let path = seg_path(&spool.config.dir, seq);
            let f = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            spool.active = Some(f);
        }
        if file_exists && on_file != Some(spool.cursor) {
            // Durably, before anything new is written, so that a later
            // start does not meet the stale cursor again. Not fatal (a full
            // disk): new segments are numbered past the stale cursor, so
            // the next start repairs it again without losing anything.
            if let Err(e) = spool.write_cursor() {
                spool
                    .recovery_notes
                    .push(format!("the repaired cursor is not saved yet: {e}"));
            }
        }
        Ok(spool)
    }

    fn new_segment(&mut self, seq: u64) -> Result<(), SpoolError> {
        let path = seg_path(&self.config.dir, seq);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.config.dir)?;
        self.active = Some(f);
        self.segments.push(Segment {
            seq,
            len: 0,
            records: 0,
        });
        Ok(())
    }

    /// Appends one record (a JSON line without its newline).
    pub fn append(&mut self, payload: &[u8]) -> Result<(), SpoolError> {
        if payload.len() > MAX_RECORD {
            self.stats.dropped_write_error += 1;
            return Err(SpoolError::TooLarge(payload.len()));
        }
        let time_ms = now_ms();
        let buf = frame(payload, time_ms);
        let need = buf.len() as u64;
        if self.active_len() > 0 && self.active_len() + need > self.config.segment_bytes {
            // A segment that cannot be started (disk full) just grows.
            let _ = self.roll();
        }
        while self.pending_bytes() + need > self.config.max_bytes {
            if !self.drop_oldest() {
                self.stats.dropped_full += 1;
                return Err(SpoolError::Full(self.pending_bytes()));
            }
        }
        let mut written = self.write_active(&buf);
        if written.as_ref().is_err_and(is_disk_full) {
            // The filesystem is smaller than the bound: segments shrink
            // to an eighth of what fits, so that making room costs an
            // eighth of the backlog, not all of it.
            let fits = self.pending_bytes().max(need);
            self.config.segment_bytes = self.config.segment_bytes.min((fits / 8).max(4096));
            // First free what the collector already has (a fully
            // acknowledged active segment), then the oldest data.
            if self.reclaim_acked() {
                written = self.write_active(&buf);
            }
            while written.as_ref().is_err_and(is_disk_full) && self.drop_oldest() {
                written = self.write_active(&buf);
            }
        }
        if let Err(e) = written {
            self.stats.dropped_write_error += 1;
            return Err(e);
        }
        let seg = self.segments.last_mut().expect("an active segment exists");
        seg.len += need;
        seg.records += 1;
        self.oldest_ms.get_or_insert(time_ms);
        self.stats.appended += 1;
        self.dirty = true;
        Ok(())
    }

    /// When everything written has been acknowledged, starts a new
    /// segment and deletes the old one (frees the disk without loss).
    fn reclaim_acked(&mut self) -> bool {
        let Some(last) = self.segments.last() else {
            return false;
        };
        if self.segments.len() != 1
            || last.len == 0
            || self.cursor
                != (Pos {
                    seq: last.seq,
                    offset: last.len,
                })
        {
            return false;
        }
        let old = last.seq;
        if self.new_segment(old + 1).is_err() {
            return false;
        }
        self.cursor = Pos {
            seq: old + 1,
            offset: 0,
        };
        self.segments.retain(|s| s.seq != old);
        // Cursor first, as in `drop_oldest`.
        let _ = self.write_cursor();
        let _ = fs::remove_file(seg_path(&self.config.dir, old));
        true
    }

    fn active_len(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.len)
    }

    /// Writes a whole frame or nothing: a short write is cut back off.
    fn write_active(&mut self, buf: &[u8]) -> Result<(), SpoolError> {
        let seq = self.segments.last().map_or(0, |s| s.seq);
        let before = self.active_len();
        let path = seg_path(&self.config.dir, seq);
        if self.active.is_none() {
            // An earlier failure left no open segment: start one.
            self.new_segment(seq + 1)?;
            return self.write_active(buf);
        }
        let Some(f) = self.active.as_mut() else {
            return Err(io_err(&path)(io::Error::other("no open segment")));
        };
        match f.write_all(buf) {
            Ok(()) => Ok(()),
            Err(e) => {
                if f.set_len(before).is_err() {
                    // The tail cannot be cut: recovery will, later. New
                    // records go to a fresh segment meanwhile.
                    self.active = None;
                    let _ = self.roll();
                }
                Err(io_err(&path)(e))
            }
        }
    }

    fn roll(&mut self) -> Result<(), SpoolError> {
        self.sync()?;
        let next = self.segments.last().map_or(1, |s| s.seq + 1);
        self.new_segment(next)
    }

    /// Drops the oldest pending segment (closing the active one first when
    /// it is the only one); false when there is nothing to drop.
    fn drop_oldest(&mut self) -> bool {
        if self.segments.len() < 2 {
            // Start a new segment so that the current one can go next time.
            if self.segments.len() == 1 && self.active_len() > 0 && self.roll().is_ok() {
                return self.drop_oldest();
            }
            return false;
        }
        let seg = self.segments.remove(0);
        self.stats.dropped_full += seg.records;
        let next = self.segments.first().map_or(seg.seq + 1, |s| s.seq);
        self.cursor = Pos {
            seq: next,
            offset: 0,
        };
        // Cursor first: a crash in between leaves a segment behind the
        // cursor (deleted at the next start), not a cursor into a missing
        // segment (which recovery would report as lost data).
        let _ = self.write_cursor();
        let _ = fs::remove_file(seg_path(&self.config.dir, seg.seq));
        self.oldest_ms = None;
        self.refresh_oldest();
        true
    }

    /// Flushes written records to stable storage.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.dirty {
            if let Some(f) = &self.active {
                let seq = self.segments.last().map_or(0, |s| s.seq);
                f.sync_data()
                    .map_err(io_err(&seg_path(&self.config.dir, seq)))?;
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Reads up to `max_records` pending records (and about `max_bytes` of
    /// payload, at least one record) from the acknowledged position, in
    /// order. Corrupt data is skipped. Returns the records and the position
    /// after the last one.
    pub fn read_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(Vec<Entry>, Pos), SpoolError> {
        const CHUNK: u64 = 64 << 10;
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut pos = self.cursor;
        for seg in &self.segments {
            if seg.seq < pos.seq {
                continue;
            }
            if seg.seq > pos.seq {
                pos = Pos {
                    seq: seg.seq,
                    offset: 0,
                };
            }
            if pos.offset >= seg.len {
                continue;
            }
            let path = seg_path(&self.config.dir, seg.seq);
            let mut f = File::open(&path).map_err(io_err(&path))?;
            f.seek(SeekFrom::Start(pos.offset)).map_err(io_err(&path))?;
            // data[at..] starts at file offset pos.offset.
            let mut data: Vec<u8> = Vec::new();
            let mut at = 0;
            let mut read_to = pos.offset;
            loop {
                if out.len() >= max_records || (bytes >= max_bytes && !out.is_empty()) {
                    return Ok((out, pos));
                }
                match frame_at(&data, at) {
                    Frame::Record { len, time_ms } => {
                        out.push(Entry {
                            pos,
                            time_ms,
                            payload: data[at + HEADER..at + HEADER + len].to_vec(),
                        });
                        bytes += len;
                        at += HEADER + len;
                        pos.offset += (HEADER + len) as u64;
                    }
                    Frame::Corrupt { skip } => {
                        at += skip;
                        pos.offset += skip as u64;
                    }
                    Frame::Torn | Frame::End if read_to < seg.len => {
                        data.drain(..at);
                        at = 0;
                        let want = (seg.len - read_to).min(CHUNK);
                        let got = (&mut f)
                            .take(want)
                            .read_to_end(&mut data)
                            .map_err(io_err(&path))?;
                        if got == 0 {
                            break;
                        }
                        read_to += got as u64;
                    }
                    Frame::Torn | Frame::End => break,
                }
            }
        }
        Ok((out, pos))
    }

    /// The collector has committed `batch` (read with [`Spool::read_batch`],
    /// ending at `to`): move the cursor (durably) and delete segments
    /// wholly behind it. Records of segments dropped meanwhile (the bound)
    /// are not counted twice.
    pub fn ack(&mut self, to: Pos, batch: &[Entry]) -> Result<(), SpoolError> {
        if to <= self.cursor {
            return Ok(());
        }
        let from = self.cursor;
        let mut done = 0;
        for e in batch.iter().filter(|e| e.pos >= from && e.pos < to) {
            if let Some(seg) = self.segments.iter_mut().find(|s| s.seq == e.pos.seq) {
                seg.records = seg.records.saturating_sub(1);
                done += 1;
            }
        }
        self.cursor = to;
        self.stats.acked += done;
        self.write_cursor()?;
        let active = self.segments.last().map(|s| s.seq);
        let dir = self.config.dir.clone();
        let removed: Vec<u64> = self
            .segments
            .iter()
            .filter(|s| s.seq < to.seq && Some(s.seq) != active)
            .map(|s| s.seq)
            .collect();
        for seq in &removed {
            let path = seg_path(&dir, *seq);
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        self.segments.retain(|s| !removed.contains(&s.seq));
        self.refresh_oldest();
        Ok(())
    }

    fn refresh_oldest(&mut self) {
        self.oldest_ms = match self.read_batch(1, 1) {
            Ok((e, _)) => e.first().map(|e| e.time_ms),
            Err(_) => None,
        };
    }

    fn write_cursor(&self) -> Result<(), SpoolError> {
        let path = self.config.dir.join("cursor");
        let tmp = self.config.dir.join("cursor.tmp");
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        writeln!(f, "{} {}", self.cursor.seq, self.cursor.offset).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.config.dir)
    }

    /// Moves a refused batch to `quarantine/` and acknowledges it.
    pub fn quarantine(
        &mut self,
        batch: &[Entry],
        to: Pos,
        why: &str,
    ) -> Result<PathBuf, SpoolError> {
        let qdir = self.config.dir.join("quarantine");
        fs::create_dir_all(&qdir).map_err(io_err(&qdir))?;
        let path = qdir.join(format!("{}-{}.jsonl", now_ms(), sanitize(why)));
        let mut body = Vec::new();
        for e in batch {
            body.extend_from_slice(&e.payload);
            body.push(b'\n');
        }
        let mut f = File::create(&path).map_err(io_err(&path))?;
        f.write_all(&body).map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))?;
        sync_dir(&qdir)?;
        let before = self.stats.acked;
        self.ack(to, batch)?;
        self.stats.quarantined += self.stats.acked - before;
        self.stats.acked = before;
        Ok(path)
    }

    /// Records not yet acknowledged.
    pub fn pending_records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Bytes of segments not yet deleted past the cursor.
    pub fn pending_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| {
                if s.seq == self.cursor.seq {
                    s.len.saturating_sub(self.cursor.offset)
                } else {
                    s.len
                }
            })
            .sum()
    }

    /// Unix milliseconds of the oldest record not yet acknowledged.
    pub fn oldest_pending_ms(&self) -> Option<u64> {
        if self.pending_records() == 0 {
            None
        } else {
            self.oldest_ms
        }
    }

    /// The bound on pending bytes.
    pub fn max_bytes(&self) -> u64 {
        self.config.max_bytes
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect()
}

fn is_disk_full(e: &SpoolError) -> bool {
    matches!(e, SpoolError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC)
        || source.raw_os_error() == Some(libc::EDQUOT))
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// The cursor names segment `cursor.seq`, which is not on disk; `next` is
/// the oldest segment that is (all newer than the cursor). Reads resume at
/// the start of `next`; with none, new records go to a segment numbered
/// past the cursor's, never into a number the cursor file still names.
fn reconcile_missing(
    dir: &Path,
    cursor: Pos,
    next: Option<u64>,
    stats: &mut SpoolStats,
    notes: &mut Vec<String>,
) -> Pos {
    let resume = next.unwrap_or(cursor.seq.saturating_add(1));
    let missing = resume - cursor.seq;
    stats.stale_cursor += 1;
    stats.missing_segments += missing;
    let what = if missing == 1 {
        format!("segment {}", cursor.seq)
    } else {
        format!("segments {}..={}", cursor.seq, resume - 1)
    };
    let then = match next {
        Some(n) => format!("resuming at the start of segment {n}"),
        None => format!("new results go to segment {resume}"),
    };
    notes.push(format!(
        "{}: the cursor names byte {} of segment {}, but {what} {} missing (deleted \
         from outside?): results after the cursor there are lost; {then}",
        dir.display(),
        cursor.offset,
        cursor.seq,
        if missing == 1 { "is" } else { "are" },
    ));
    Pos {
        seq: resume,
        offset: 0,
    }
}

/// Why `offset` cannot be a cursor into `data` (a segment read from its
/// start), if it cannot: the cursor only ever stops where a record starts
/// or at the end of the data.
fn stale_offset(data: &[u8], offset: u64) -> Option<String> {
    if offset > data.len() as u64 {
        return Some(format!("is past the end of its {} bytes", data.len()));
    }
    let mut at = 0usize;
    while (at as u64) < offset {
        match frame_at(data, at) {
            Frame::Record { len, .. } => at += HEADER + len,
            Frame::Corrupt { skip } => at += skip,
            Frame::Torn | Frame::End => break,
        }
    }
    (at as u64 != offset).then(|| "is not on a record boundary".to_string())
}

fn parse_cursor(s: &str) -> Option<Pos> {
    let mut it = s.split_whitespace();
    let seq = it.next()?.parse().ok()?;
    let offset = it.next()?.parse().ok()?;
    it.next().is_none().then_some(Pos { seq, offset })
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
