//! Wire types shared by `tumen-agent` and `tumen-collector`.
//!
//! Everything an agent sends to a collector (and prints with `--once`) is a
//! JSON object carrying a `schema` version. This crate owns that version and
//! the check both sides apply before trusting a record, so that an agent and
//! a collector of different releases fail with a precise message instead of
//! misreading each other, and the result records themselves ([`Record`]):
//! one JSON object per line, `{"schema":1,"kind":"trace",...}` or
//! `{"schema":1,"kind":"ping",...}`. The schema is documented field by
//! field in `docs/wire.md`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Version of the JSON schema spoken between agent and collector.
///
/// Bump it on any change that an older reader would misinterpret; additive
/// optional fields do not need a bump.
pub const SCHEMA_VERSION: u32 = 1;

/// The part every wire record starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Schema version the record was written with.
    pub schema: u32,
}

/// A record whose schema this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The record names a schema newer than this build understands.
    #[error(
        "record has schema version {found}, this build reads up to {supported}: upgrade this side"
    )]
    TooNew { found: u32, supported: u32 },
    /// Version 0 was never issued; such a record is corrupt or forged.
    #[error("record has schema version 0, which was never issued")]
    Zero,
}

impl Header {
    /// The header this build writes.
    pub const fn current() -> Self {
        Self {
            schema: SCHEMA_VERSION,
        }
    }

    /// Accepts any issued version up to [`SCHEMA_VERSION`].
    pub fn check(self) -> Result<(), SchemaError> {
        match self.schema {
            0 => Err(SchemaError::Zero),
            v if v > SCHEMA_VERSION => Err(SchemaError::TooNew {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            _ => Ok(()),
        }
    }
}

/// One result as an agent prints (`--once`) or uploads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Trace(TraceRecord),
    Ping(PingRecord),
}

impl Record {
    /// Parses one JSON line, checking the schema version before the rest so
    /// that a newer record is refused as such rather than as garbage.
    ///
    /// The `kind` tag is read first (with the schema) and the line is then
    /// read straight into [`TraceRecord`] or [`PingRecord`]: serde's
    /// internally tagged enums buffer the whole object first, which costs
    /// about a third of the collector's ingest time and loses the position
    /// of a faulty field. The result is the same as deserialising
    /// [`Record`].
    pub fn from_json_line(line: &str) -> Result<Self, RecordError> {
        let head: Tagged<'_> = serde_json::from_str(line).map_err(RecordError::Json)?;
        Header {
            schema: head.schema,
        }
        .check()
        .map_err(RecordError::Schema)?;
        match head.kind.as_deref() {
            Some("trace") => serde_json::from_str(line).map(Record::Trace),
            Some("ping") => serde_json::from_str(line).map(Record::Ping),
            // serde's own message for these ("missing field `kind`",
            // "unknown variant ..."), as reading `Record` would give.
            _ => serde_json::from_str(line),
        }
        .map_err(RecordError::Json)
    }

    /// The record's unique id (agents make it; collectors deduplicate on it).
    pub fn id(&self) -> &str {
        match self {
            Record::Trace(t) => &t.id,
            Record::Ping(p) => &p.id,
        }
    }
}

/// The schema and `kind` of a record line, read before the rest. A kind
/// this build does not know is not an error yet: a newer schema may have
/// added it, and that must be reported as the newer schema.
#[derive(Deserialize)]
struct Tagged<'a> {
    schema: u32,
    #[serde(borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// Why a line is not a record this build can read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Schema(SchemaError),
    #[error("not a valid record: {0}")]
    Json(serde_json::Error),
}

/// Probe protocol of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Icmp,
    Udp,
    Tcp,
}

/// How much of the path a trace probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceMode {
    /// From `first_ttl` (normally 1) to the destination or the gap limit.
    Full,
    /// Only around the last known border of the destination's prefix
    /// (`first_ttl` is just before it); hops before it were not probed.
    Window,
}

/// Why a trace stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The destination answered (echo reply, port unreachable, TCP).
    Completed,
    /// A hop answered with an unreachable other than the destination's
    /// normal answer (`!X`, `!N`, `!H`, ...).
    Unreachable,
    /// `gap_limit` consecutive hops were silent.
    GapLimit,
    /// `max_ttl` was reached without an answer from the destination.
    MaxTtl,
    /// The allow-list refused the destination at the point of sending;
    /// nothing was sent.
    Refused,
    /// Sending failed (the error is in `error`).
    Error,
}

/// One traceroute toward one destination, over one or more Paris flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    pub schema: u32,
    /// Unique id: 32 hex digits, random.
    pub id: String,
    /// The agent (vantage point) that measured it.
    pub agent: String,
    /// Start, milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// Wall time the trace took, milliseconds.
    pub duration_ms: f64,
    /// Source address the probes carried.
    pub src: Option<IpAddr>,
    pub dst: IpAddr,
    /// The /24 (IPv4) or /48 (IPv6) the destination stands for.
    pub prefix: String,
    pub protocol: Protocol,
    /// Destination port (UDP, TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub mode: TraceMode,
    pub first_ttl: u8,
    pub max_ttl: u8,
    /// Paris flow ids used (0..flows).
    pub flows: u16,
    pub stop: StopReason,
    /// Did the destination itself answer?
    pub reached: bool,
    /// Probes put on the wire for this trace.
    pub probes_sent: u32,
    /// One entry per (ttl, flow) probed, in order; `replies` empty = `*`.
    pub hops: Vec<Hop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one TTL of one flow gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub ttl: u8,
    pub flow: u16,
    /// Probes sent for this hop (attempts).
    pub sent: u8,
    pub replies: Vec<HopReply>,
}

/// One reply to one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopReply {
    pub addr: IpAddr,
    /// Round-trip time, milliseconds (kernel receive timestamp when the
    /// socket gives one).
    pub rtt_ms: f64,
    /// `time_exceeded`, `unreachable`, `echo_reply`, `tcp_rst`,
    /// `tcp_synack`, `packet_too_big`, `parameter_problem`.
    pub kind: String,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// traceroute's annotation of an unreachable: `!X`, `!N`, `!H`, `!P`,
    /// `!<code>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
    /// TTL / hop limit of the reply as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_ttl: Option<u8>,
    /// TTL the quoted probe had when the router saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_ttl: Option<u8>,
    /// RFC 4950 MPLS label stack, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mpls: Vec<MplsLabel>,
    /// Arrived after the probe's wait had expired.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// One RFC 4950 label stack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MplsLabel {
    pub label: u32,
    pub tc: u8,
    pub s: bool,
    pub ttl: u8,
}

/// A ping series toward one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingRecord {
    pub schema: u32,
    pub id: String,
    pub agent: String,
    pub start_ms: u64,
    pub dst: IpAddr,
    pub prefix: String,
    pub sent: u32,
    pub received: u32,
    /// `1 - received / sent`.
    pub loss_ratio: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
    /// Population standard deviation of the RTTs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_stddev_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> TraceRecord {
        TraceRecord {
            schema: SCHEMA_VERSION,
            id: "00112233445566778899aabbccddeeff".into(),
            agent: "vp-fra".into(),
            start_ms: 1_506_848_871_000,
            duration_ms: 12.5,
            src: Some("192.0.2.2".parse().expect("ip")),
            dst: "198.18.177.15".parse().expect("ip"),
            prefix: "198.18.177.0/24".into(),
            protocol: Protocol::Udp,
            port: Some(33434),
            mode: TraceMode::Full,
            first_ttl: 1,
            max_ttl: 30,
            flows: 1,
            stop: StopReason::Unreachable,
            reached: false,
            probes_sent: 3,
            hops: vec![
                Hop {
                    ttl: 1,
                    flow: 0,
                    sent: 2,
                    replies: vec![],
                },
                Hop {
                    ttl: 2,
                    flow: 0,
                    sent: 1,
                    replies: vec![HopReply {
                        addr: "198.18.219.1".parse().expect("ip"),
                        rtt_ms: 0.25,
                        kind: "unreachable".into(),
                        icmp_type: 3,
                        icmp_code: 13,
                        annotation: Some("!X".into()),
                        reply_ttl: Some(63),
                        quoted_ttl: Some(1),
                        mpls: vec![MplsLabel {
                            label: 16,
                            tc: 0,
                            s: true,
                            ttl: 1,
                        }],
                        late: false,
                    }],
                },
            ],
            error: None,
        }
    }

    #[test]
    fn trace_record_json_is_stable() {
        let text = serde_json::to_string(&Record::Trace(trace())).expect("serialise");
        assert_eq!(
            text,
            r#"{"kind":"trace","schema":1,"id":"00112233445566778899aabbccddeeff","agent":"vp-fra","start_ms":1506848871000,"duration_ms":12.5,"src":"192.0.2.2","dst":"198.18.177.15","prefix":"198.18.177.0/24","protocol":"udp","port":33434,"mode":"full","first_ttl":1,"max_ttl":30,"flows":1,"stop":"unreachable","reached":false,"probes_sent":3,"hops":[{"ttl":1,"flow":0,"sent":2,"replies":[]},{"ttl":2,"flow":0,"sent":1,"replies":[{"addr":"198.18.219.1","rtt_ms":0.25,"kind":"unreachable","icmp_type":3,"icmp_code":13,"annotation":"!X","reply_ttl":63,"quoted_ttl":1,"mpls":[{"label":16,"tc":0,"s":true,"ttl":1}]}]}]}"#
        );
        let back = Record::from_json_line(&text).expect("parse back");
        assert_eq!(back, Record::Trace(trace()));
        assert_eq!(back.id(), "00112233445566778899aabbccddeeff");
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        let newer = r#"{"kind":"trace","schema":99}"#;
        let err = Record::from_json_line(newer).expect_err("newer schema");
        assert!(err.to_string().contains("upgrade"), "{err}");
        let err = Record::from_json_line(r#"{"kind":"trace","schema":1}"#).expect_err("missing");
        assert!(err.to_string().contains("missing field"), "{err}");
        let err = Record::from_json_line("{not json").expect_err("garbage");
        assert!(matches!(err, RecordError::Json(_)), "{err}");
        let err = Record::from_json_line(r#"{"kind":"bogus","schema":1}"#).expect_err("kind");
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = Record::from_json_line(r#"{"schema":1,"id":"x"}"#).expect_err("no kind");
        assert!(err.to_string().contains("missing field `kind`"), "{err}");
        // A kind a newer schema added is refused as the newer schema.
        let err = Record::from_json_line(r#"{"kind":"dns","schema":2}"#).expect_err("newer");
        assert!(matches!(err, RecordError::Schema(_)), "{err}");
        // Faults inside the record keep their position (the fast path
        // reads the variant directly, not through serde's buffering).
        let text = serde_json::to_string(&Record::Trace(trace())).expect("serialise");
        let bad = text.replace("\"ttl\":2", "\"ttl\":-2");
        let RecordError::Json(j) = Record::from_json_line(&bad).expect_err("ttl") else {
            panic!("not a json error");
        };
        assert_eq!(j.column(), bad.find("-2").expect("at") + 2, "{j}");
    }

    #[test]
    fn the_fast_path_agrees_with_the_tagged_enum() {
        let trace = serde_json::to_string(&Record::Trace(trace())).expect("trace");
        let ping = r#"{"kind":"ping","schema":1,"id":"ffeeddccbbaa99887766554433221100","agent":"vp-fra","start_ms":1,"dst":"198.18.177.15","prefix":"198.18.177.0/24","sent":3,"received":2,"loss_ratio":0.33,"rtt_min_ms":1.5}"#;
        for line in [trace.as_str(), ping] {
            let slow: Record = serde_json::from_str(line).expect("enum");
            assert_eq!(Record::from_json_line(line).expect("fast"), slow);
        }
    }

    #[test]
    fn current_header_round_trips_and_is_accepted() {
        let text = serde_json::to_string(&Header::current()).expect("serialise");
        assert_eq!(text, format!("{{\"schema\":{SCHEMA_VERSION}}}"));
        let back: Header = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.check(), Ok(()));
    }

    #[test]
    fn newer_and_zero_versions_are_refused_with_reason() {
        let newer = Header {
            schema: SCHEMA_VERSION + 1,
        };
        let err = newer.check().expect_err("newer schema must be refused");
        assert!(err.to_string().contains("upgrade"), "{err}");
        assert_eq!(Header { schema: 0 }.check(), Err(SchemaError::Zero));
    }
}
