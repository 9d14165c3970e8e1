//! Reading one upload: content type and encoding, size limits, and the
//! batch of wire records, validated whole before anything is stored (a
//! request is all or nothing). Pure over bytes and header values; every
//! refusal is a [`Reject`] with the HTTP status, a bounded reason (the
//! metrics label) and a detail that names the line and field at fault.

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

/// Decompresses `body`, refusing more than `max` bytes of output (a small
/// compressed body may expand enormously).
pub fn decode(body: &[u8], encoding: Encoding, max: usize) -> Result<Cow<'_, [u8]>, Reject> {
    let too_big = || {
        Reject::new(
            413,
            "decoded_too_large",
            format!("body decompresses to more than {max} bytes: send smaller batches"),
        )
    };
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let read = match encoding {
        Encoding::Identity => {
            if body.len() > max {
                return Err(too_big());
            }
            return Ok(Cow::Borrowed(body));
        }
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        Encoding::Zstd => match zstd::stream::read::Decoder::new(body) {
            Ok(d) => d.take(limit).read_to_end(&mut out),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = read {
        return Err(Reject::new(
            400,
            "bad_compression",
            format!("body is not valid {encoding:?}: {e}").to_lowercase(),
        ));
    }
    if out.len() > max {
        return Err(too_big());
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

/// Parses and validates a whole batch for `agent`.
pub fn parse_batch(body: &[u8], agent: &str, max_batch: usize) -> Result<Vec<Incoming>, Reject> {
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
            decode(&gz, Encoding::Gzip, 1 << 20).expect("ok").as_ref(),
            plain.as_bytes()
        );
        let zs = zstd::encode_all(plain.as_bytes(), 1).expect("zstd");
        assert_eq!(
            decode(&zs, Encoding::Zstd, 1 << 20).expect("ok").as_ref(),
            plain.as_bytes()
        );
        // 10 MB of zeros compress to ~10 KB.
        let bomb = zstd::encode_all(&vec![0u8; 10 << 20][..], 3).expect("zstd");
        assert!(bomb.len() < 64 << 10);
        let e = decode(&bomb, Encoding::Zstd, 1 << 20).expect_err("bomb");
        assert_eq!((e.status, e.reason), (413, "decoded_too_large"));
        let e = decode(b"not gzip at all", Encoding::Gzip, 1 << 20).expect_err("junk");
        assert_eq!((e.status, e.reason), (400, "bad_compression"));
        let e = decode(&gz[..gz.len() / 2], Encoding::Gzip, 1 << 20).expect_err("cut");
        assert_eq!(e.reason, "bad_compression");
        let e = decode(b"garbage", Encoding::Zstd, 1 << 20).expect_err("junk");
        assert_eq!(e.reason, "bad_compression");
    }

    #[test]
    fn a_batch_is_validated_whole() {
        let two = format!("{TRACE}\n\n{}\n", TRACE.replace("0011", "9911"));
        let b = parse_batch(two.as_bytes(), "vp-fra", 10).expect("ok");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].id(), "99112233445566778899aabbccddeeff");

        let e = parse_batch(two.as_bytes(), "vp-sgp", 10).expect_err("agent");
        assert_eq!((e.status, e.reason), (403, "agent_mismatch"));
        assert!(e.detail.contains("line 1"), "{}", e.detail);

        let e = parse_batch(two.as_bytes(), "vp-fra", 1).expect_err("big");
        assert_eq!((e.status, e.reason), (413, "batch_too_large"));

        let bad = format!("{TRACE}\n{}", TRACE.replace(r#""ttl":1"#, r#""ttl":"x""#));
        let e = parse_batch(bad.as_bytes(), "vp-fra", 10).expect_err("field");
        assert_eq!(e.reason, "malformed_record");
        assert!(e.detail.starts_with("line 2:hops[0].ttl"), "{}", e.detail);

        let newer = TRACE.replace(r#""schema":1"#, r#""schema":7"#);
        let e = parse_batch(newer.as_bytes(), "vp-fra", 10).expect_err("schema");
        assert_eq!(e.reason, "unsupported_schema");

        let short = TRACE.replace("00112233445566778899aabbccddeeff", "x");
        let e = parse_batch(short.as_bytes(), "vp-fra", 10).expect_err("id");
        assert_eq!(e.reason, "bad_record_id");

        let e = parse_batch(b"\n \n", "vp-fra", 10).expect_err("empty");
        assert_eq!(e.reason, "empty_batch");
        let e = parse_batch(b"{\"kind\":\"tr\xffce\"}", "vp-fra", 10).expect_err("utf8");
        assert_eq!(e.reason, "malformed_record");
        let e = parse_batch(b"[1,2]", "vp-fra", 10).expect_err("json");
        assert_eq!(e.reason, "malformed_record");
    }
}
