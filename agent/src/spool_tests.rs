use super::*;

fn tmp(name: &str) -> PathBuf {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("random");
    let dir = std::env::temp_dir().join(format!(
        "tumen-spool-{name}-{}-{}",
        std::process::id(),
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn line(i: usize) -> Vec<u8> {
    format!("{{\"schema\":1,\"kind\":\"ping\",\"n\":{i}}}").into_bytes()
}

fn drain_all(s: &mut Spool) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        let (batch, end) = s.read_batch(7, 1 << 20).expect("read");
        if batch.is_empty() {
            return got;
        }
        s.ack(end, &batch).expect("ack");
        got.extend(batch.into_iter().map(|e| e.payload));
    }
}

fn small(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 1024,
    }
}

#[test]
fn frames_round_trip_and_reject_damage() {
    let f = frame(b"hello", 42);
    assert_eq!(f.len(), HEADER + 5);
    assert_eq!(
        frame_at(&f, 0),
        Frame::Record {
            len: 5,
            time_ms: 42
        }
    );
    assert_eq!(frame_at(&f, f.len()), Frame::End);
    // Every strict prefix is a torn record.
    for cut in 1..f.len() {
        assert_eq!(frame_at(&f[..cut], 0), Frame::Torn, "cut at {cut}");
    }
    // Any flipped byte after the magic is detected.
    for i in 4..f.len() {
        let mut g = f.clone();
        g[i] ^= 0x40;
        assert!(
            matches!(frame_at(&g, 0), Frame::Corrupt { .. } | Frame::Torn),
            "flip at {i}: {:?}",
            frame_at(&g, 0)
        );
    }
    // A huge length is refused rather than allocated.
    let mut g = f.clone();
    g[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(frame_at(&g, 0), Frame::Corrupt { .. }));
}

#[test]
fn records_come_back_in_order_across_segments_and_restarts() {
    let d = Dir(tmp("order"));
    let mut s = Spool::open(small(&d.0)).expect("open");
    for i in 0..100 {
        s.append(&line(i)).expect("append");
    }
    assert_eq!(s.pending_records(), 100);
    assert!(s.segments.len() > 3, "1 KiB segments roll");
    // Take a first batch and acknowledge it, then restart.
    let (batch, end) = s.read_batch(30, 1 << 20).expect("read");
    assert_eq!(batch.len(), 30);
    s.ack(end, &batch).expect("ack");
    s.sync().expect("sync");
    drop(s);
    let mut s = Spool::open(small(&d.0)).expect("reopen");
    assert_eq!(s.pending_records(), 70);
    assert!(s.oldest_pending_ms().is_some());
    let got = drain_all(&mut s);
    let want: Vec<_> = (30..100).map(line).collect();
    assert_eq!(got, want);
    assert_eq!(s.pending_records(), 0);
    assert_eq!(s.oldest_pending_ms(), None);
    // Acknowledged segments are gone from disk; only the active one stays.
    let segs = fs::read_dir(&d.0)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        })
        .count();
    assert_eq!(segs, 1);
    // Nothing is replayed after yet another restart.
    drop(s);
    let mut s = Spool::open(small(&d.0)).expect("reopen");
    assert!(drain_all(&mut s).is_empty());
}

#[test]
fn a_torn_tail_is_cut_and_counted_and_appends_continue() {
    let d = Dir(tmp("torn"));
    let mut s = Spool::open(small(&d.0)).expect("open");
    for i in 0..3 {
        s.append(&line(i)).expect("append");
    }
    let seq = s.segments.last().expect("seg").seq;
    drop(s);
    // Half of a fourth record, as a SIGKILL mid-write would leave it.
    let half = frame(&line(3), 1);
    let mut f = OpenOptions::new()
        .append(true)
        .open(seg_path(&d.0, seq))
        .expect("seg");
    f.write_all(&half[..half.len() / 2]).expect("write");
    drop(f);
    let mut s = Spool::open(small(&d.0)).expect("reopen");
    assert_eq!(s.stats.torn, 1);
    assert_eq!(s.recovery_notes.len(), 1, "{:?}", s.recovery_notes);
    s.append(&line(4)).expect("append");
    let got = drain_all(&mut s);
    assert_eq!(got, vec![line(0), line(1), line(2), line(4)]);
}

#[test]
fn a_corrupt_record_in_the_middle_is_skipped_and_the_rest_replayed() {
    let d = Dir(tmp("corrupt"));
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("open");
    for i in 0..5 {
        s.append(&line(i)).expect("append");
    }
    let seq = s.segments.last().expect("seg").seq;
    drop(s);
    let path = seg_path(&d.0, seq);
    let mut data = fs::read(&path).expect("read");
    let one = frame(&line(0), 0).len();
    data[one + HEADER + 3] ^= 0xff; // payload byte of record 1
    data[3 * one] = b'X'; // magic of record 3
    fs::write(&path, &data).expect("write");
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("reopen");
    assert_eq!(s.stats.corrupt, 2, "{:?}", s.recovery_notes);
    assert_eq!(s.pending_records(), 3);
    let got = drain_all(&mut s);
    assert_eq!(got, vec![line(0), line(2), line(4)]);
}

#[test]
fn garbage_files_and_a_bad_cursor_do_not_stop_recovery() {
    let d = Dir(tmp("garbage"));
    fs::create_dir_all(&d.0).expect("dir");
    fs::write(
        seg_path(&d.0, 1),
        b"\x00\x01garbage that is no frame at all",
    )
    .expect("w");
    fs::write(d.0.join("cursor"), "not a cursor").expect("w");
    fs::write(d.0.join("notes.txt"), "ignored").expect("w");
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("open");
    assert_eq!(s.stats.corrupt, 1);
    assert!(s.recovery_notes.iter().any(|n| n.contains("cursor")));
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (1, 0));
    s.append(&line(9)).expect("append");
    assert_eq!(drain_all(&mut s), vec![line(9)]);
}

#[test]
fn at_the_bound_the_oldest_segment_goes_and_is_counted() {
    let d = Dir(tmp("bound"));
    let cfg = SpoolConfig {
        dir: d.0.clone(),
        max_bytes: 4096,
        segment_bytes: 1024,
    };
    let mut s = Spool::open(cfg).expect("open");
    for i in 0..200 {
        s.append(&line(i)).expect("append within the bound");
        assert!(s.pending_bytes() <= 4096, "bound held at {i}");
    }
    let dropped = s.stats.dropped_full;
    assert!(dropped > 0);
    let got = drain_all(&mut s);
    assert_eq!(
        got.len() as u64 + dropped,
        200,
        "every record kept or counted"
    );
    // The newest records are the ones kept, in order.
    assert_eq!(got.last(), Some(&line(199)));
    let first = got.len();
    let want: Vec<_> = (200 - first..200).map(line).collect();
    assert_eq!(got, want);
}

#[test]
fn a_batch_whose_segment_was_dropped_meanwhile_is_not_counted_twice() {
    let d = Dir(tmp("race"));
    let cfg = SpoolConfig {
        dir: d.0.clone(),
        max_bytes: 4096,
        segment_bytes: 1024,
    };
    let mut s = Spool::open(cfg).expect("open");
    for i in 0..30 {
        s.append(&line(i)).expect("append");
    }
    // The uploader reads the oldest records ...
    let (batch, end) = s.read_batch(5, 1 << 20).expect("read");
    // ... while new results push the oldest segment out.
    for i in 30..80 {
        s.append(&line(i)).expect("append");
    }
    let dropped = s.stats.dropped_full;
    assert!(dropped > 0);
    s.ack(end, &batch).expect("late ack");
    let st = s.stats;
    let pending = s.pending_records();
    assert_eq!(
        st.acked + st.dropped_full + pending,
        80,
        "every record counted once: {st:?}, {pending} pending"
    );
    let got = drain_all(&mut s);
    assert_eq!(got.len() as u64, pending);
    assert_eq!(got.last(), Some(&line(79)));
}

#[test]
fn quarantine_keeps_the_batch_and_moves_on() {
    let d = Dir(tmp("quarantine"));
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("open");
    for i in 0..4 {
        s.append(&line(i)).expect("append");
    }
    let (batch, end) = s.read_batch(2, 1 << 20).expect("read");
    let path = s
        .quarantine(&batch, end, "400 malformed_record")
        .expect("q");
    let text = fs::read_to_string(&path).expect("file");
    assert_eq!(text.lines().count(), 2);
    assert!(path.to_string_lossy().contains("400_malformed_record"));
    assert_eq!((s.stats.quarantined, s.stats.acked), (2, 0));
    assert_eq!(drain_all(&mut s), vec![line(2), line(3)]);
}

#[test]
fn an_oversize_record_is_refused() {
    let d = Dir(tmp("big"));
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("open");
    let big = vec![b'x'; MAX_RECORD + 1];
    assert!(matches!(s.append(&big), Err(SpoolError::TooLarge(_))));
    assert_eq!(s.stats.dropped_write_error, 1);
    assert_eq!(s.pending_records(), 0);
}

// Stale cursors (issue 13, defect 6): the `cursor` file and the segments
// on disk disagree, because a segment was deleted or cut from outside (an
// operator, a disk fault) or an older agent reused a segment number. On
// open every record still on disk must be read exactly once, and what
// cannot be reconciled is said in a recovery note.

/// Segment numbers on disk, in order.
fn seg_seqs(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| {
            let name = e.expect("entry").file_name();
            name.to_string_lossy()
                .strip_suffix(".seg")
                .and_then(|s| s.parse().ok())
        })
        .collect();
    v.sort_unstable();
    v
}

fn set_cursor(dir: &Path, seq: u64, offset: u64) {
    fs::write(dir.join("cursor"), format!("{seq} {offset}\n")).expect("cursor");
}

fn read_cursor(dir: &Path) -> Pos {
    parse_cursor(&fs::read_to_string(dir.join("cursor")).expect("cursor")).expect("parse")
}

/// The payloads of a segment file, read from its start.
fn payloads_in(path: &Path) -> Vec<Vec<u8>> {
    let data = fs::read(path).expect("segment");
    let mut out = Vec::new();
    let mut at = 0;
    while let Frame::Record { len, .. } = frame_at(&data, at) {
        out.push(data[at + HEADER..at + HEADER + len].to_vec());
        at += HEADER + len;
    }
    out
}

/// Payloads as text, for readable assertion failures.
fn text(v: impl IntoIterator<Item = Vec<u8>>) -> Vec<String> {
    v.into_iter()
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .collect()
}

fn notes_about(s: &Spool, word: &str) -> usize {
    s.recovery_notes.iter().filter(|n| n.contains(word)).count()
}

#[test]
fn records_spooled_after_the_newest_segment_was_lost_survive_the_next_restart() {
    // The run of issue 13: the cursor points into the newest segment, an
    // operator deletes it, the agent restarts, spools 64 results and is
    // killed before any upload; the next start must still send all 64.
    let d = Dir(tmp("lost-newest"));
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("open");
    for i in 0..20 {
        s.append(&line(i)).expect("append");
    }
    let (batch, end) = s.read_batch(15, 1 << 20).expect("read");
    s.ack(end, &batch).expect("ack");
    let seq = end.seq;
    assert!(end.offset > 0);
    drop(s);
    fs::remove_file(seg_path(&d.0, seq)).expect("lose the newest segment");

    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("reopen");
    let first_notes = s.recovery_notes.clone();
    let first_stats = s.stats;
    // The repaired cursor is on disk before anything new is written.
    assert_eq!(
        read_cursor(&d.0),
        Pos {
            seq: seq + 1,
            offset: 0
        }
    );
    for i in 100..164 {
        s.append(&line(i)).expect("append");
    }
    s.sync().expect("sync");
    drop(s); // killed before any upload

    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("reopen again");
    assert_eq!(s.pending_records(), 64);
    assert_eq!(text(drain_all(&mut s)), text((100..164).map(line)));
    // The loss was said and counted once, at the first start after it.
    assert_eq!(
        first_notes.iter().filter(|n| n.contains("missing")).count(),
        1,
        "{first_notes:?}"
    );
    assert_eq!(first_stats.stale_cursor, 1);
    assert_eq!(first_stats.missing_segments, 1);
    assert!(s.recovery_notes.is_empty(), "{:?}", s.recovery_notes);
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (0, 0));
    // New records never went into the lost segment's number.
    assert!(
        seg_seqs(&d.0).iter().all(|&n| n > seq),
        "{:?}",
        seg_seqs(&d.0)
    );
}

#[test]
fn a_cursor_into_a_missing_segment_between_others_reads_the_newer_ones_whole() {
    let d = Dir(tmp("lost-middle"));
    let mut s = Spool::open(small(&d.0)).expect("open");
    for i in 0..60 {
        s.append(&line(i)).expect("append");
    }
    let seqs = seg_seqs(&d.0);
    assert!(seqs.len() >= 4, "{seqs:?}");
    let mid = seqs[1];
    // The cursor is inside the second segment, which is then lost.
    set_cursor(&d.0, mid, (HEADER + line(0).len()) as u64);
    drop(s);
    fs::remove_file(seg_path(&d.0, mid)).expect("lose a segment");
    // What is still on disk past the cursor: every segment after `mid`.
    let want: Vec<_> = seqs[2..]
        .iter()
        .flat_map(|&seq| payloads_in(&seg_path(&d.0, seq)))
        .collect();
    assert!(!want.is_empty());

    let mut s = Spool::open(small(&d.0)).expect("reopen");
    assert_eq!(s.pending_records(), want.len() as u64);
    assert_eq!(text(drain_all(&mut s)), text(want));
    assert_eq!(notes_about(&s, "missing"), 1, "{:?}", s.recovery_notes);
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (1, 1));
    // The segment before the cursor was acknowledged: gone, not replayed.
    assert!(!seg_path(&d.0, seqs[0]).exists());
}

#[test]
fn a_cursor_older_than_the_oldest_segment_reads_every_segment_on_disk() {
    let d = Dir(tmp("older"));
    let mut s = Spool::open(small(&d.0)).expect("open");
    for i in 0..60 {
        s.append(&line(i)).expect("append");
    }
    let seqs = seg_seqs(&d.0);
    assert!(seqs.len() >= 4, "{seqs:?}");
    drop(s);
    // The cursor names the first segment; it and the next are lost.
    set_cursor(&d.0, seqs[0], (HEADER + line(0).len()) as u64);
    fs::remove_file(seg_path(&d.0, seqs[0])).expect("rm");
    fs::remove_file(seg_path(&d.0, seqs[1])).expect("rm");
    let want: Vec<_> = seqs[2..]
        .iter()
        .flat_map(|&seq| payloads_in(&seg_path(&d.0, seq)))
        .collect();
    assert!(!want.is_empty());
    let mut s = Spool::open(small(&d.0)).expect("reopen");
    // Every record of the remaining segments, in order, once.
    assert_eq!(text(drain_all(&mut s)), text(want));
    assert_eq!(notes_about(&s, "missing"), 1, "{:?}", s.recovery_notes);
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (1, 2));
}

#[test]
fn a_cursor_past_the_end_of_its_segment_replays_the_segment_from_the_start() {
    // The segment is shorter than the cursor says: cut from outside, or
    // reused under the same number by an older agent after it was lost.
    let d = Dir(tmp("past-end"));
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("open");
    for i in 0..10 {
        s.append(&line(i)).expect("append");
    }
    let seq = s.segments.last().expect("seg").seq;
    let len = s.segments.last().expect("seg").len;
    drop(s);
    set_cursor(&d.0, seq, len + 4096);
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("reopen");
    assert_eq!(s.pending_records(), 10);
    s.append(&line(10)).expect("append");
    assert_eq!(text(drain_all(&mut s)), text((0..11).map(line)));
    assert_eq!(notes_about(&s, "past the end"), 1, "{:?}", s.recovery_notes);
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (1, 0));
    assert_eq!((s.stats.torn, s.stats.corrupt), (0, 0));
}

#[test]
fn a_cursor_in_the_middle_of_a_record_replays_the_segment_from_the_start() {
    let d = Dir(tmp("mid-record"));
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("open");
    for i in 0..10 {
        s.append(&line(i)).expect("append");
    }
    let seq = s.segments.last().expect("seg").seq;
    drop(s);
    set_cursor(&d.0, seq, (HEADER + line(0).len() + 7) as u64);
    let mut s = Spool::open(SpoolConfig::new(&d.0)).expect("reopen");
    assert_eq!(text(drain_all(&mut s)), text((0..10).map(line)));
    assert_eq!(
        notes_about(&s, "record boundary"),
        1,
        "{:?}",
        s.recovery_notes
    );
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (1, 0));
    // Not mistaken for corrupt data.
    assert_eq!((s.stats.torn, s.stats.corrupt), (0, 0));
}

#[test]
fn a_missing_segment_between_two_others_is_reported() {
    let d = Dir(tmp("gap"));
    let mut s = Spool::open(small(&d.0)).expect("open");
    for i in 0..60 {
        s.append(&line(i)).expect("append");
    }
    let seqs = seg_seqs(&d.0);
    assert!(seqs.len() >= 4, "{seqs:?}");
    drop(s);
    let lost = payloads_in(&seg_path(&d.0, seqs[2]));
    fs::remove_file(seg_path(&d.0, seqs[2])).expect("rm");
    let mut s = Spool::open(small(&d.0)).expect("reopen");
    let got = drain_all(&mut s);
    let kept: Vec<_> = (0..60).map(line).filter(|l| !lost.contains(l)).collect();
    assert_eq!(text(got), text(kept));
    assert_eq!(notes_about(&s, "missing"), 1, "{:?}", s.recovery_notes);
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (0, 1));
}

#[test]
fn a_sound_cursor_is_left_alone() {
    let d = Dir(tmp("sound"));
    let mut s = Spool::open(small(&d.0)).expect("open");
    for i in 0..40 {
        s.append(&line(i)).expect("append");
    }
    let (batch, end) = s.read_batch(17, 1 << 20).expect("read");
    s.ack(end, &batch).expect("ack");
    drop(s);
    let mut s = Spool::open(small(&d.0)).expect("reopen");
    assert!(s.recovery_notes.is_empty(), "{:?}", s.recovery_notes);
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (0, 0));
    assert_eq!(read_cursor(&d.0), end);
    assert_eq!(drain_all(&mut s), (17..40).map(line).collect::<Vec<_>>());
}

#[test]
fn a_cursor_newer_than_every_segment_drops_only_acknowledged_ones_and_writes_past_it() {
    // Acknowledged segments not yet deleted (a crash between the cursor
    // write and the deletion), and the cursor's own segment lost.
    let d = Dir(tmp("newer"));
    let mut s = Spool::open(small(&d.0)).expect("open");
    for i in 0..30 {
        s.append(&line(i)).expect("append");
    }
    drop(s);
    let seqs = seg_seqs(&d.0);
    let newest = *seqs.last().expect("segments");
    set_cursor(&d.0, newest + 3, 17);
    let mut s = Spool::open(small(&d.0)).expect("reopen");
    assert_eq!(s.pending_records(), 0);
    assert_eq!(seg_seqs(&d.0), vec![newest + 4]);
    assert_eq!(
        read_cursor(&d.0),
        Pos {
            seq: newest + 4,
            offset: 0
        }
    );
    assert_eq!((s.stats.stale_cursor, s.stats.missing_segments), (1, 1));
    assert_eq!(notes_about(&s, "missing"), 1, "{:?}", s.recovery_notes);
    s.append(&line(99)).expect("append");
    drop(s);
    let mut s = Spool::open(small(&d.0)).expect("reopen again");
    assert_eq!(text(drain_all(&mut s)), text([line(99)]));
}
