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
