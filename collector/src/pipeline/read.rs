//! The first half of the pipeline: reading one upload. Content type and
//! encoding, size limits, and the batch of wire records, validated whole
//! before anything is stored (a request is all or nothing). Pure over
//! bytes and header values; every refusal is a [`Reject`] with the HTTP
//! status, a bounded reason (the metrics label) and a detail that names
//! the line and field at fault. [`read_upload`] is the fuzz target's entry
//! (`collector/fuzz`, replayed by `collector/tests/fuzz_corpus.rs`).

use std::borrow::Cow;
use std::io::Read;

use tumen_wire::{PingRecord, Record, RecordError, TraceRecord};

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    /// Metrics label: one of [`REASONS`].
    pub reason: &'static str,
    pub detail: String,
}

/// Every reason a request can be refused for (label values are bounded).
pub const REASONS: &[&str] = &[
    "missing_token",
    "bad_token",
    "agent_mismatch",
    "unsupported_media_type",
    "unsupported_encoding",
    "body_too_large",
    "bad_compression",
    "decoded_too_large",
    "batch_too_large",
    "empty_batch",
    "malformed_record",
    "unsupported_schema",
    "bad_record_id",
    "future_timestamp",
    "stale_timestamp",
    "invalid_field",
    "body_timeout",
    "overloaded",
    "store_unavailable",
];

impl Reject {
    pub fn new(status: u16, reason: &'static str, detail: impl Into<String>) -> Self {
        debug_assert!(REASONS.contains(&reason));
        Self {
            status,
            reason,
            detail: detail.into(),
        }
    }
}

/// Body encodings accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// Reads `Content-Encoding`.
pub fn encoding_of(header: Option<&str>) -> Result<Encoding, Reject> {
    match header.map(|h| h.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => Ok(Encoding::Identity),
        Some("gzip") | Some("x-gzip") => Ok(Encoding::Gzip),
        Some("zstd") => Ok(Encoding::Zstd),
        Some(other) => Err(Reject::new(
            415,
            "unsupported_encoding",
            format!("Content-Encoding {other:?} is not supported: use gzip, zstd or none"),
        )),
    }
}

/// Checks `Content-Type` (absent is taken as JSON lines).
pub fn check_content_type(header: Option<&str>) -> Result<(), Reject> {
    let Some(h) = header else { return Ok(()) };
    let mime = h
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/json" | "text/plain" => Ok(()),
        _ => Err(Reject::new(
            415,
            "unsupported_media_type",
            format!("Content-Type {h:?}: send application/x-ndjson (one wire record per line)"),
        )),
    }
}

/// Memory a request may take, asked for as it grows: `reserve(n)` is
/// called with the total the request's records need so far and says
/// whether the collector has it (false: 503 `overloaded`).
pub type Reserve<'a> = &'a mut dyn FnMut(usize) -> bool;

/// What a decoded byte costs again until the answer: each record's line
/// kept as received, the parsed records (hops, replies, strings), their
/// inference and packed copies. Measured: a 64 MiB batch of 30-hop
/// traces peaked 300 MiB above the collector's base, 4.7 bytes per
/// decoded byte in all.
pub const PARSED_PER_BYTE: usize = 4;

fn overloaded() -> Reject {
    Reject::new(
        503,
        "overloaded",
        "the collector is holding as many uploads as its memory budget \
         (max_inflight_body_bytes) allows: retry shortly",
    )
}

/// The decoded size a compressed body declares: gzip's ISIZE trailer (the
/// size modulo 2^32 of its last member, exact for what agents send) or
/// zstd's frame content size. A hint only: never trusted as a limit.
pub fn decoded_size_hint(body: &[u8], encoding: Encoding) -> Option<usize> {
    match encoding {
        Encoding::Identity => Some(body.len()),
        Encoding::Gzip if body.len() >= 18 && body.starts_with(&[0x1f, 0x8b]) => {
            let t: [u8; 4] = body[body.len() - 4..].try_into().ok()?;
            usize::try_from(u32::from_le_bytes(t)).ok()
        }
        Encoding::Gzip => None,
        Encoding::Zstd => zstd::zstd_safe::get_frame_content_size(body)
            .ok()
            .flatten()
            .and_then(|n| usize::try_from(n).ok()),
    }
}

/// Decompresses `body`, refusing more than `max` bytes of output (a small
/// compressed body may expand enormously), and asking `reserve` for the
/// memory the output and its parsed records will take as it grows.
pub fn decode<'a>(
    body: &'a [u8],
    encoding: Encoding,
    max: usize,
    reserve: Reserve<'_>,
) -> Result<Cow<'a, [u8]>, Reject> {
    let too_big = || {
        Reject::new(
            413,
            "decoded_too_large",
            format!("body decompresses to more than {max} bytes: send smaller batches"),
        )
    };
    let bad = |e: std::io::Error| {
        Reject::new(
            400,
            "bad_compression",
            format!("body is not valid {encoding:?}: {e}").to_lowercase(),
        )
    };
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => {
            if body.len() > max {
                return Err(too_big());
            }
            if !reserve(body.len() * PARSED_PER_BYTE) {
                return Err(overloaded());
            }
            return Ok(Cow::Borrowed(body));
        }
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(body).map_err(bad)?),
    };
    // Ask for the whole size at once when the body says it, so that two
    // large uploads decoding side by side do not each take half of the
    // budget and both fail; a body that lies only grows as it goes.
    let hint = decoded_size_hint(body, encoding).map(|h| h.min(max));
    if let Some(h) = hint {
        if !reserve(h * (1 + PARSED_PER_BYTE)) {
            return Err(overloaded());
        }
    }
    let mut reader = reader;
    // Sized from the hint: a doubling vector would briefly hold twice the
    // output (and more than was reserved).
    let mut out = Vec::with_capacity(hint.unwrap_or(0).saturating_add(1));
    let mut chunk = vec![0u8; 256 << 10];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(e)),
        };
        let len = out.len() + n;
        if len > max {
            return Err(too_big());
        }
        // The decoded text, and then its records.
        if !reserve(len * (1 + PARSED_PER_BYTE)) {
            return Err(overloaded());
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(Cow::Owned(out))
}

/// One record of an accepted batch, with its line as received (stored raw).
#[derive(Debug, Clone)]
pub enum Incoming {
    Trace(Box<TraceRecord>, String),
    Ping(PingRecord, String),
}

impl Incoming {
    pub fn id(&self) -> &str {
        match self {
            Incoming::Trace(t, _) => &t.id,
            Incoming::Ping(p, _) => &p.id,
        }
    }
}

/// Result ids: what agents make (32 hex digits) and a little more.
pub fn valid_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a record's content is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// The collector's clock (Unix ms).
    pub now_ms: u64,
    /// How far ahead of `now_ms` a record may be dated.
    pub max_skew_ms: u64,
    /// Records dated before this (now - retention) would be pruned at
    /// once: refused instead.
    pub oldest_ms: u64,
}

impl Checks {
    /// The window of a collector whose clock reads `now_ms`: at most
    /// `max_skew` ahead, nothing older than the `retention`.
    pub fn window(
        now_ms: u64,
        max_skew: std::time::Duration,
        retention: std::time::Duration,
    ) -> Self {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            now_ms,
            max_skew_ms: ms(max_skew),
            oldest_ms: now_ms.saturating_sub(ms(retention)),
        }
    }

    /// Checks that accept any date (tests of other things).
    pub fn any_time() -> Self {
        Self {
            now_ms: 0,
            max_skew_ms: u64::MAX,
            oldest_ms: 0,
        }
    }
}

/// A refused record: reason (one of [`REASONS`]) and what is wrong.
type Refusal = (&'static str, String);

/// Longest a trace or a ping may take (a day): anything longer is a
/// clock or encoding fault.
const MAX_DURATION_MS: f64 = 86_400_000.0;

fn check_time(start_ms: u64, c: &Checks) -> Result<(), Refusal> {
    if start_ms > c.now_ms.saturating_add(c.max_skew_ms) {
        return Err((
            "future_timestamp",
            format!(
                "start_ms {start_ms} is {} s ahead of the collector's clock ({}; at most {} s \
                 allowed): is the agent's clock right (NTP)?",
                (start_ms - c.now_ms) / 1000,
                c.now_ms,
                c.max_skew_ms / 1000
            ),
        ));
    }
    if start_ms < c.oldest_ms {
        return Err((
            "stale_timestamp",
            format!(
                "start_ms {start_ms} is older than the retention (records before {} are not \
                 kept): is the agent's clock right?",
                c.oldest_ms
            ),
        ));
    }
    Ok(())
}

fn check_ms(field: &str, v: f64) -> Result<(), Refusal> {
    if v.is_finite() && (0.0..=MAX_DURATION_MS).contains(&v) {
        Ok(())
    } else {
        Err((
            "invalid_field",
            format!("{field} {v} is not a time in milliseconds (0 to {MAX_DURATION_MS})"),
        ))
    }
}

/// The record's `prefix` must be a prefix (no host bits) holding `dst`.
fn check_prefix(prefix: &str, dst: std::net::IpAddr) -> Result<(), Refusal> {
    let bad = |why: &str| Err(("invalid_field", format!("prefix {prefix:?} {why}")));
    match prefix.parse::<ipnet::IpNet>() {
        Err(_) => bad("is not a prefix (e.g. 175.45.177.0/24)"),
        Ok(n) if n.trunc() != n => bad("has host bits set (not a network address)"),
        Ok(n) if !n.contains(&dst) => bad(&format!("does not contain dst {dst}")),
        Ok(_) => Ok(()),
    }
}

/// Checks what a record says, beyond its syntax: dates within the
/// collector's window, times that are times, counts that add up.
pub fn check_record(record: &Record, c: &Checks) -> Result<(), Refusal> {
    match record {
        Record::Trace(t) => {
            check_time(t.start_ms, c)?;
            check_ms("duration_ms", t.duration_ms)?;
            check_prefix(&t.prefix, t.dst)?;
            if t.first_ttl == 0 || t.first_ttl > t.max_ttl {
                return Err((
                    "invalid_field",
                    format!(
                        "first_ttl {} and max_ttl {}: need 1 <= first_ttl <= max_ttl",
                        t.first_ttl, t.max_ttl
                    ),
                ));
            }
            for (i, h) in t.hops.iter().enumerate() {
                if h.ttl == 0 {
                    return Err(("invalid_field", format!("hops[{i}].ttl 0")));
                }
                for (j, r) in h.replies.iter().enumerate() {
                    check_ms(&format!("hops[{i}].replies[{j}].rtt_ms"), r.rtt_ms)?;
                }
            }
        }
        Record::Ping(p) => {
            check_time(p.start_ms, c)?;
            check_prefix(&p.prefix, p.dst)?;
            if p.received > p.sent {
                return Err((
                    "invalid_field",
                    format!("received {} is more than sent {}", p.received, p.sent),
                ));
            }
            if !(p.loss_ratio.is_finite() && (0.0..=1.0).contains(&p.loss_ratio)) {
                return Err((
                    "invalid_field",
                    format!("loss_ratio {} is not within 0..1", p.loss_ratio),
                ));
            }
            for (name, v) in [
                ("rtt_min_ms", p.rtt_min_ms),
                ("rtt_avg_ms", p.rtt_avg_ms),
                ("rtt_max_ms", p.rtt_max_ms),
                ("rtt_stddev_ms", p.rtt_stddev_ms),
            ] {
                if let Some(v) = v {
                    check_ms(name, v)?;
                }
            }
            if let (Some(lo), Some(avg), Some(hi)) = (p.rtt_min_ms, p.rtt_avg_ms, p.rtt_max_ms) {
                // Rounding aside, min <= avg <= max.
                let eps = 1e-6 * hi.max(1.0);
                if lo > avg + eps || avg > hi + eps {
                    return Err((
                        "invalid_field",
                        format!(
                            "rtt_min_ms {lo} <= rtt_avg_ms {avg} <= rtt_max_ms {hi} does not hold"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Decodes a body and validates the batch in it: everything ingest does
/// to bytes from the network before inference (the fuzz target's entry).
pub fn read_upload(
    body: &[u8],
    encoding: Encoding,
    agent: &str,
    max_decoded: usize,
    max_batch: usize,
    checks: &Checks,
    reserve: Reserve<'_>,
) -> Result<Vec<Incoming>, Reject> {
    let decoded = decode(body, encoding, max_decoded, reserve)?;
    parse_batch(&decoded, agent, max_batch, checks)
}

/// Parses and validates a whole batch for `agent`.
pub fn parse_batch(
    body: &[u8],
    agent: &str,
    max_batch: usize,
    checks: &Checks,
) -> Result<Vec<Incoming>, Reject> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Reject::new(
            400,
            "malformed_record",
            format!("line {line}: not UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if out.len() == max_batch {
            return Err(Reject::new(
                413,
                "batch_too_large",
                format!("more than {max_batch} records in one request: split the batch"),
            ));
        }
        let n = i + 1;
        let record = Record::from_json_line(line).map_err(|e| {
            let at = crate::input::tumen::record_error(line, &e, &format!("line {n}"));
            let reason = match e {
                RecordError::Schema(_) => "unsupported_schema",
                RecordError::Json(_) => "malformed_record",
            };
            Reject::new(400, reason, at.to_string())
        })?;
        if !valid_id(record.id()) {
            return Err(Reject::new(
                400,
                "bad_record_id",
                format!(
                    "line {n}: id {:?} must be 8-64 of [A-Za-z0-9_-] (agents send 32 hex digits)",
                    record.id()
                ),
            ));
        }
        let rec_agent = match &record {
            Record::Trace(t) => &t.agent,
            Record::Ping(p) => &p.agent,
        };
        if rec_agent != agent {
            return Err(Reject::new(
                403,
                "agent_mismatch",
                format!("line {n}: record of agent {rec_agent:?} sent with the token of {agent:?}"),
            ));
        }
        if let Err((reason, why)) = check_record(&record, checks) {
            return Err(Reject::new(400, reason, format!("line {n}: {why}")));
        }
        out.push(match record {
            Record::Trace(t) => Incoming::Trace(Box::new(t), line.to_string()),
            Record::Ping(p) => Incoming::Ping(p, line.to_string()),
        });
    }
    if out.is_empty() {
        return Err(Reject::new(400, "empty_batch", "no records in the body"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) const TRACE: &str = r#"{"kind":"trace","schema":1,"id":"00112233445566778899aabbccddeeff","agent":"vp-fra","start_ms":1506848871000,"duration_ms":12.5,"src":"192.0.2.2","dst":"198.18.177.15","prefix":"198.18.177.0/24","protocol":"udp","port":33434,"mode":"full","first_ttl":1,"max_ttl":30,"flows":1,"stop":"unreachable","reached":false,"probes_sent":3,"hops":[{"ttl":1,"flow":0,"sent":2,"replies":[]}]}"#;

    #[test]
    fn encodings_and_types() {
        assert_eq!(encoding_of(None), Ok(Encoding::Identity));
        assert_eq!(encoding_of(Some("GZIP")), Ok(Encoding::Gzip));
        assert_eq!(encoding_of(Some("zstd")), Ok(Encoding::Zstd));
        assert_eq!(encoding_of(Some("br")).expect_err("br").status, 415);
        assert!(check_content_type(Some("application/x-ndjson; charset=utf-8")).is_ok());
        let e = check_content_type(Some("multipart/form-data")).expect_err("mp");
        assert_eq!(e.reason, "unsupported_media_type");
    }

    #[test]
    fn gzip_and_zstd_decode_and_bombs_are_refused() {
        let plain = TRACE.repeat(3);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain.as_bytes()).expect("gz");
        let gz = gz.finish().expect("gz");
        assert_eq!(
            decode(&gz, Encoding::Gzip, 1 << 20, &mut |_| true)
                .expect("ok")
                .as_ref(),
            plain.as_bytes()
        );
        let zs = zstd::encode_all(plain.as_bytes(), 1).expect("zstd");
        assert_eq!(
            decode(&zs, Encoding::Zstd, 1 << 20, &mut |_| true)
                .expect("ok")
                .as_ref(),
            plain.as_bytes()
        );
        // 10 MB of zeros compress to ~10 KB.
        let bomb = zstd::encode_all(&vec![0u8; 10 << 20][..], 3).expect("zstd");
        assert!(bomb.len() < 64 << 10);
        let e = decode(&bomb, Encoding::Zstd, 1 << 20, &mut |_| true).expect_err("bomb");
        assert_eq!((e.status, e.reason), (413, "decoded_too_large"));
        let e =
            decode(b"not gzip at all", Encoding::Gzip, 1 << 20, &mut |_| true).expect_err("junk");
        assert_eq!((e.status, e.reason), (400, "bad_compression"));
        let e =
            decode(&gz[..gz.len() / 2], Encoding::Gzip, 1 << 20, &mut |_| true).expect_err("cut");
        assert_eq!(e.reason, "bad_compression");
        let e = decode(b"garbage", Encoding::Zstd, 1 << 20, &mut |_| true).expect_err("junk");
        assert_eq!(e.reason, "bad_compression");
    }

    /// 100 uploads held at once took the collector to 820 MiB: what a
    /// body becomes (decoded text, records) is asked of the budget as it
    /// grows, and refused with 503 when the budget is spent.
    #[test]
    fn decoding_asks_the_budget_for_what_the_output_and_records_take() {
        let plain = TRACE.repeat(20_000);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(plain.as_bytes()).expect("gz");
            e.finish().expect("gz")
        };
        let mut asked = Vec::new();
        let out = decode(&gz, Encoding::Gzip, 64 << 20, &mut |n| {
            asked.push(n);
            true
        })
        .expect("decoded");
        assert_eq!(out.len(), plain.len());
        // All at once, from the gzip trailer, before decoding.
        assert_eq!(asked.first().copied(), Some(plain.len() * 5));
        assert_eq!(asked.last().copied(), Some(plain.len() * 5));
        assert_eq!(decoded_size_hint(&gz, Encoding::Gzip), Some(plain.len()));
        // A trailer that lies low: the budget is still asked as the output
        // grows, and the lie is refused at the end (gzip checks ISIZE).
        let mut liar = gz.clone();
        let n = liar.len();
        liar[n - 4..].copy_from_slice(&100u32.to_le_bytes());
        let mut asked = Vec::new();
        let e = decode(&liar, Encoding::Gzip, 64 << 20, &mut |n| {
            asked.push(n);
            true
        })
        .expect_err("the trailer lies");
        assert_eq!(e.reason, "bad_compression");
        assert_eq!(asked.first().copied(), Some(500));
        assert_eq!(asked.last().copied(), Some(plain.len() * 5));
        assert!(asked.windows(2).all(|w| w[0] <= w[1]), "grows");
        let mut budget = plain.len();
        let e = decode(&gz, Encoding::Gzip, 64 << 20, &mut |n| n <= budget).expect_err("over");
        assert_eq!((e.status, e.reason), (503, "overloaded"));
        budget = 10;
        let e = decode(b"0123456789abc", Encoding::Identity, 1 << 20, &mut |n| {
            n <= budget
        })
        .expect_err("identity over");
        assert_eq!(e.reason, "overloaded");
    }

    #[test]
    fn a_batch_is_validated_whole() {
        let two = format!("{TRACE}\n\n{}\n", TRACE.replace("0011", "9911"));
        let b = parse_batch(two.as_bytes(), "vp-fra", 10, &Checks::any_time()).expect("ok");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].id(), "99112233445566778899aabbccddeeff");

        let e = parse_batch(two.as_bytes(), "vp-sgp", 10, &Checks::any_time()).expect_err("agent");
        assert_eq!((e.status, e.reason), (403, "agent_mismatch"));
        assert!(e.detail.contains("line 1"), "{}", e.detail);

        let e = parse_batch(two.as_bytes(), "vp-fra", 1, &Checks::any_time()).expect_err("big");
        assert_eq!((e.status, e.reason), (413, "batch_too_large"));

        let bad = format!("{TRACE}\n{}", TRACE.replace(r#""ttl":1"#, r#""ttl":"x""#));
        let e = parse_batch(bad.as_bytes(), "vp-fra", 10, &Checks::any_time()).expect_err("field");
        assert_eq!(e.reason, "malformed_record");
        assert!(e.detail.starts_with("line 2:hops[0].ttl"), "{}", e.detail);

        let newer = TRACE.replace(r#""schema":1"#, r#""schema":7"#);
        let e =
            parse_batch(newer.as_bytes(), "vp-fra", 10, &Checks::any_time()).expect_err("schema");
        assert_eq!(e.reason, "unsupported_schema");

        let short = TRACE.replace("00112233445566778899aabbccddeeff", "x");
        let e = parse_batch(short.as_bytes(), "vp-fra", 10, &Checks::any_time()).expect_err("id");
        assert_eq!(e.reason, "bad_record_id");

        let e = parse_batch(b"\n \n", "vp-fra", 10, &Checks::any_time()).expect_err("empty");
        assert_eq!(e.reason, "empty_batch");
        let e = parse_batch(
            b"{\"kind\":\"tr\xffce\"}",
            "vp-fra",
            10,
            &Checks::any_time(),
        )
        .expect_err("utf8");
        assert_eq!(e.reason, "malformed_record");
        let e = parse_batch(b"[1,2]", "vp-fra", 10, &Checks::any_time()).expect_err("json");
        assert_eq!(e.reason, "malformed_record");
    }

    /// A record dated 2^64-1 ms was accepted and stored as i64::MAX, and
    /// froze its path: dates are checked against the collector's clock.
    #[test]
    fn records_dated_in_the_future_or_before_the_retention_are_refused() {
        let now = 1_800_000_000_000u64;
        let c = Checks {
            now_ms: now,
            max_skew_ms: 600_000,
            oldest_ms: now - 30 * 86_400_000,
        };
        let at = |ms: u64| TRACE.replace("1506848871000", &ms.to_string());
        for (start, want) in [
            (u64::MAX, Some("future_timestamp")),
            (now + 3_600_000, Some("future_timestamp")),
            (now + 600_000, None),
            (now, None),
            (now - 30 * 86_400_000, None),
            (now - 31 * 86_400_000, Some("stale_timestamp")),
            (0, Some("stale_timestamp")),
        ] {
            let r = parse_batch(at(start).as_bytes(), "vp-fra", 10, &c);
            match want {
                None => assert!(r.is_ok(), "{start}: {r:?}"),
                Some(reason) => {
                    let e = r.expect_err("refused");
                    assert_eq!((e.status, e.reason), (400, reason), "{start}");
                    assert!(e.detail.starts_with("line 1: start_ms"), "{}", e.detail);
                }
            }
        }
    }

    #[test]
    fn impossible_values_are_refused_with_the_field_named() {
        let c = Checks::any_time();
        let ping = r#"{"kind":"ping","schema":1,"id":"00112233445566778899aabbccddeeff","agent":"vp-fra","start_ms":1,"dst":"198.18.177.15","prefix":"198.18.177.0/24","sent":3,"received":2,"loss_ratio":0.3333,"rtt_min_ms":1.0,"rtt_avg_ms":2.0,"rtt_max_ms":3.0}"#;
        assert!(parse_batch(ping.as_bytes(), "vp-fra", 10, &c).is_ok());
        assert!(parse_batch(TRACE.as_bytes(), "vp-fra", 10, &c).is_ok());
        let with_reply = TRACE.replace(
            r#""replies":[]"#,
            r#""replies":[{"addr":"192.0.2.1","rtt_ms":-1.5,"kind":"time_exceeded","icmp_type":11,"icmp_code":0}]"#,
        );
        for (what, body, needle) in [
            (
                "negative duration",
                TRACE.replace("12.5", "-12.5"),
                "duration_ms -12.5",
            ),
            ("negative rtt", with_reply, "hops[0].replies[0].rtt_ms -1.5"),
            (
                "prefix without dst",
                TRACE.replace("198.18.177.0/24", "198.18.176.0/24"),
                "does not contain dst",
            ),
            (
                "not a prefix",
                TRACE.replace("198.18.177.0/24", "198.18.177/24"),
                "is not a prefix",
            ),
            (
                "host bits",
                TRACE.replace("198.18.177.0/24", "198.18.177.15/24"),
                "host bits",
            ),
            (
                "first ttl over max",
                TRACE.replace(r#""first_ttl":1"#, r#""first_ttl":31"#),
                "first_ttl 31",
            ),
            (
                "received over sent",
                ping.replace(r#""received":2"#, r#""received":4"#),
                "received 4 is more than sent 3",
            ),
            (
                "loss over 1",
                ping.replace("0.3333", "1.5"),
                "loss_ratio 1.5",
            ),
            (
                "loss under 0",
                ping.replace("0.3333", "-0.1"),
                "loss_ratio -0.1",
            ),
            (
                "min over avg",
                ping.replace(r#""rtt_min_ms":1.0"#, r#""rtt_min_ms":2.5"#),
                "rtt_min_ms 2.5",
            ),
            (
                "ping prefix",
                ping.replace("198.18.177.0/24", "x"),
                "prefix \"x\"",
            ),
        ] {
            let e = parse_batch(body.as_bytes(), "vp-fra", 10, &c).expect_err(what);
            assert_eq!((e.status, e.reason), (400, "invalid_field"), "{what}");
            assert!(e.detail.contains(needle), "{what}: {}", e.detail);
        }
        // JSON numbers beyond f64 are not numbers: malformed, not stored.
        let e = parse_batch(TRACE.replace("12.5", "1e400").as_bytes(), "vp-fra", 10, &c)
            .expect_err("1e400");
        assert_eq!(e.reason, "malformed_record");
    }
}
