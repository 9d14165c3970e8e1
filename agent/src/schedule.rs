//! The schedule from the collector (`GET /api/v1/schedule`), bounded by
//! this agent's own limits.
//!
//! The collector may say what to probe (targets), how (protocol, attempts
//! per hop, echo requests) and how often (interval, rate). The agent
//! applies only what fits inside its local configuration: every target
//! must lie inside the local allow-list (and, for reserved ranges, the
//! local `allow_reserved`), in an address family whose sockets are open;
//! the rate never exceeds the local `pps`. Everything else is refused,
//! logged, counted in `/metrics` and reported back to the collector
//! (`POST /api/v1/refusals`). A schedule that leaves no target keeps the
//! local targets. The last good schedule is cached in the spool directory
//! (`schedule.json`, with its ETag) and applied at the next start before
//! the collector answers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::{reserved_range, Config};
use crate::packet::Protocol;

/// A schedule as the collector sends it; absent fields keep the local
/// setting. Unknown fields are kept to be refused by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub interval_s: Option<u64>,
    #[serde(default)]
    pub probes: Option<u8>,
    #[serde(default)]
    pub pps: Option<u32>,
    #[serde(default)]
    pub ping_count: Option<u32>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// What the agent runs: the local configuration, or a schedule applied
/// within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<IpNet>,
    pub protocol: Protocol,
    pub port: u16,
    pub interval: Duration,
    pub probes: u8,
    pub pps: u32,
    pub ping_count: u32,
}

/// A schedule item not applied, and why (sent to the collector as is).
/// Both are the agent's own text: what the collector sent appears in an
/// item only quoted and escaped (`target "nonsense"`, `"burst"`), so that
/// the item can be logged as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub item: String,
    pub why: String,
}

impl Plan {
    /// The plan of the local configuration alone.
    pub fn local(c: &Config) -> Self {
        Self {
            targets: c.targets.clone(),
            protocol: c.probe.trace.protocol,
            port: c.probe.trace.port,
            interval: c.interval,
            probes: c.probe.trace.probes,
            pps: c.pps,
            ping_count: c.probe.ping_count,
        }
    }
}

fn family_open(net: &IpNet, v4: bool, v6: bool) -> bool {
    match net.addr() {
        IpAddr::V4(_) => v4,
        IpAddr::V6(_) => v6,
    }
}

/// Applies `s` within `local`'s limits. `v4`/`v6`: which families have
/// sockets. Returns the plan and what was refused.
pub fn apply(local: &Config, s: &Schedule, v4: bool, v6: bool) -> (Plan, Vec<Refusal>) {
    let mut plan = Plan::local(local);
    let mut refused = Vec::new();
    let mut refuse = |item: String, why: String| refused.push(Refusal { item, why });
    let mut targets = Vec::new();
    for t in &s.targets {
        let net = match t
            .parse::<IpNet>()
            .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        {
            Ok(n) => n.trunc(),
            Err(_) => {
                refuse(format!("target {t:?}"), "not an address or prefix".into());
                continue;
            }
        };
        if !local.allow.covers(&net) {
            refuse(
                format!("target {net}"),
                "outside this agent's allow-list".into(),
            );
        } else if !local.allow_reserved && reserved_range(&net).is_some() {
            refuse(
                format!("target {net}"),
                "special-purpose range and allow_reserved is off".into(),
            );
        } else if !family_open(&net, v4, v6) {
            refuse(
                format!("target {net}"),
                "address family not opened at start (allow-list has none of it)".into(),
            );
        } else if !targets.contains(&net) {
            targets.push(net);
        }
    }
    if !targets.is_empty() {
        plan.targets = targets;
    } else if !s.targets.is_empty() {
        refuse(
            "targets".into(),
            "no scheduled target is allowed: local targets kept".into(),
        );
    }
    if let Some(p) = &s.protocol {
        match p.as_str() {
            "icmp" => plan.protocol = Protocol::Icmp,
            "udp" => plan.protocol = Protocol::Udp,
            "tcp" => plan.protocol = Protocol::Tcp,
            other => refuse(format!("protocol {other:?}"), "not icmp, udp or tcp".into()),
        }
        if plan.protocol != local.probe.trace.protocol {
            plan.port = match plan.protocol {
                Protocol::Tcp => 80,
                _ => 33434,
            };
        }
    }
    if let Some(i) = s.interval_s {
        if i >= 1 {
            plan.interval = Duration::from_secs(i);
        } else {
            refuse(format!("interval_s {i}"), "under one second".into());
        }
    }
    if let Some(p) = s.probes {
        if (1..=10).contains(&p) {
            plan.probes = p;
        } else {
            refuse(format!("probes {p}"), "not 1..=10".into());
        }
    }
    if let Some(p) = s.pps {
        if p == 0 {
            refuse("pps 0".into(), "must be at least 1".into());
        } else if p > local.pps {
            refuse(
                format!("pps {p}"),
                format!(
                    "above this agent's cap of {}: {} used",
                    local.pps, local.pps
                ),
            );
        } else {
            plan.pps = p;
        }
    }
    if let Some(n) = s.ping_count {
        if n <= 100 {
            plan.ping_count = n;
        } else {
            refuse(format!("ping_count {n}"), "more than 100".into());
        }
    }
    for k in s.unknown.keys() {
        refuse(format!("{k:?}"), "unknown setting: not applied".into());
    }
    (plan, refused)
}

/// The cached schedule: the last one the collector sent, with its ETag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cached {
    pub etag: String,
    pub schedule: Schedule,
}

/// Where the cache lives.
pub fn cache_path(spool: &Path) -> PathBuf {
    spool.join("schedule.json")
}

/// Why the cached schedule was not read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cached schedule {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cached schedule {}: {source}; ignored (the collector's next answer replaces it)", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cached schedule {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the cache; a missing one is no schedule.
pub fn load_cache(path: &Path) -> Result<Option<Cached>, CacheError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| CacheError::Corrupt {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CacheError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the cache atomically.
pub fn save_cache(path: &Path, c: &Cached) -> Result<(), CacheError> {
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec(c).map_err(|source| CacheError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Why a schedule was not fetched or the refusals not reported.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the collector: {0}")]
    Request(#[source] reqwest::Error),
    #[error("collector answered {0}")]
    Status(u16),
    #[error(transparent)]
    Answer(#[from] crate::upload::AnswerError),
    #[error("schedule is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// One fetch's outcome.
#[derive(Debug)]
pub enum Fetched {
    New(Cached),
    NotModified,
    /// The collector hands out no schedule (404): local configuration.
    NoSchedule,
    Failed(FetchError),
}

/// Asks the collector for this agent's schedule (conditional on `etag`).
pub async fn fetch(
    client: &reqwest::Client,
    collector: &str,
    token: &str,
    etag: Option<&str>,
) -> Fetched {
    let mut req = client
        .get(format!("{collector}/api/v1/schedule"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10));
    if let Some(e) = etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, e);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Fetched::Failed(FetchError::Request(e)),
    };
    match resp.status().as_u16() {
        304 => Fetched::NotModified,
        404 => Fetched::NoSchedule,
        200 => {
            let etag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            match crate::upload::read_capped(resp, SCHEDULE_LIMIT).await {
                Ok(b) => match serde_json::from_slice::<Schedule>(&b) {
                    Ok(schedule) => Fetched::New(Cached { etag, schedule }),
                    Err(e) => Fetched::Failed(FetchError::Json(e)),
                },
                Err(e) => Fetched::Failed(e.into()),
            }
        }
        s => Fetched::Failed(FetchError::Status(s)),
    }
}

/// Largest schedule read from a collector.
pub const SCHEDULE_LIMIT: usize = 1 << 20;

/// Reports refusals (an empty list clears the collector's record).
pub async fn report(
    client: &reqwest::Client,
    collector: &str,
    token: &str,
    etag: &str,
    refused: &[Refusal],
) -> Result<(), FetchError> {
    let body = serde_json::json!({ "schedule": etag, "refused": refused });
    let r = client
        .post(format!("{collector}/api/v1/refusals"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(FetchError::Request)?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(FetchError::Status(r.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn local(targets: &[&str], allow: &[&str], pps: u32) -> Config {
        Config::validate(RawConfig {
            targets: targets.iter().map(ToString::to_string).collect(),
            allow: allow.iter().map(ToString::to_string).collect(),
            pps: Some(pps),
            id: Some("vp".into()),
            ..RawConfig::default()
        })
        .expect("valid local config")
    }

    fn sched(json: &str) -> Schedule {
        serde_json::from_str(json).expect("schedule json")
    }

    #[test]
    fn only_what_fits_the_local_limits_is_applied_and_the_rest_refused() {
        let c = local(&["175.45.176.0/24"], &["175.45.176.0/22"], 100);
        let s = sched(
            r#"{"targets": ["175.45.177.0/24", "8.8.8.0/24", "175.45.176.0/20", "nonsense",
                "2001:db8::/48"],
                "pps": 500, "probes": 3, "interval_s": 30, "protocol": "udp",
                "ping_count": 2, "burst": 9}"#,
        );
        let (plan, refused) = apply(&c, &s, true, false);
        assert_eq!(
            plan.targets,
            vec!["175.45.177.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(plan.pps, 100, "never above the local cap");
        assert_eq!(
            (
                plan.probes,
                plan.interval,
                plan.protocol,
                plan.port,
                plan.ping_count
            ),
            (3, Duration::from_secs(30), Protocol::Udp, 33434, 2)
        );
        let items: Vec<&str> = refused.iter().map(|r| r.item.as_str()).collect();
        assert_eq!(
            items,
            vec![
                "target 8.8.8.0/24",
                "target 175.45.176.0/20",
                "target \"nonsense\"",
                "target 2001:db8::/48",
                "pps 500",
                "\"burst\""
            ]
        );
        assert!(refused[0].why.contains("allow-list"));
        assert!(refused[3].why.contains("allow-list") || refused[3].why.contains("family"));
        assert!(refused[4].why.contains("cap of 100"));
    }

    #[test]
    fn a_schedule_with_no_allowed_target_keeps_the_local_targets() {
        let c = local(&["175.45.176.0/24"], &[], 100);
        let (plan, refused) = apply(&c, &sched(r#"{"targets": ["1.1.1.0/24"]}"#), true, true);
        assert_eq!(plan.targets, c.targets);
        assert_eq!(refused.len(), 2);
        assert!(refused[1].why.contains("local targets kept"));
        // An empty schedule changes nothing and refuses nothing.
        let (plan, refused) = apply(&c, &Schedule::default(), true, true);
        assert_eq!(plan, Plan::local(&c));
        assert!(refused.is_empty());
    }

    #[test]
    fn reserved_ranges_need_the_local_opt_in_even_inside_the_allow_list() {
        let mut raw = RawConfig {
            targets: vec!["198.18.0.0/24".into()],
            allow: vec!["198.18.0.0/16".into()],
            allow_reserved: Some(true),
            id: Some("vp".into()),
            ..RawConfig::default()
        };
        let c = Config::validate(raw.clone()).expect("lab config");
        let (plan, refused) = apply(&c, &sched(r#"{"targets": ["198.18.5.0/24"]}"#), true, true);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(plan.targets[0].to_string(), "198.18.5.0/24");
        raw.allow_reserved = None;
        assert!(
            Config::validate(raw).is_err(),
            "the local config itself needs it"
        );
    }

    #[test]
    fn the_cache_round_trips_and_a_corrupt_one_is_reported() {
        let dir = std::env::temp_dir().join(format!("tumen-sched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = cache_path(&dir);
        let c = Cached {
            etag: "\"abc\"".into(),
            schedule: sched(r#"{"targets": ["175.45.176.0/24"], "pps": 10}"#),
        };
        save_cache(&p, &c).expect("save");
        assert_eq!(load_cache(&p).expect("load"), Some(c));
        std::fs::write(&p, "{not json").expect("write");
        let e = load_cache(&p).unwrap_err();
        assert!(matches!(e, CacheError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("ignored"));
        std::fs::remove_file(&p).expect("rm");
        assert_eq!(load_cache(&p).expect("missing"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
