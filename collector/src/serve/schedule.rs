//! The schedule the collector hands to agents (`GET /api/v1/schedule`):
//! what to probe, how and how often, from the `[schedule]` table of the
//! configuration, with per-agent overrides in `[schedule.agents.NAME]`.
//!
//! The schedule is data from the operator's own configuration file; no
//! API writes it. Agents apply only what fits inside their own allow-list
//! and rate cap and report the rest back (`POST /api/v1/refusals`), so a
//! collector cannot make an agent probe anything its owner did not allow.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `[schedule]` (and each `[schedule.agents.NAME]`) as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    #[serde(default)]
    pub targets: Vec<String>,
    pub protocol: Option<String>,
    pub interval: Option<String>,
    pub probes: Option<u8>,
    pub pps: Option<u32>,
    pub ping_count: Option<u32>,
    /// Per-agent overrides (only in the top-level table).
    #[serde(default)]
    pub agents: BTreeMap<String, RawSchedule>,
}

/// One agent's schedule as sent (absent fields: the agent's own setting).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSchedule {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_count: Option<u32>,
}

/// Validated schedules: the default and the per-agent ones.
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    default: AgentSchedule,
    agents: BTreeMap<String, AgentSchedule>,
}

fn one(raw: &RawSchedule, at: &str, errs: &mut Vec<String>) -> AgentSchedule {
    let mut s = AgentSchedule::default();
    for t in &raw.targets {
        match t
            .parse::<IpNet>()
            .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
        {
            Ok(n) => s.targets.push(n.trunc().to_string()),
            Err(_) => errs.push(format!("{at}.targets: {t:?} is not an address or prefix")),
        }
    }
    if let Some(p) = &raw.protocol {
        if matches!(p.as_str(), "icmp" | "udp" | "tcp") {
            s.protocol = Some(p.clone());
        } else {
            errs.push(format!("{at}.protocol: {p:?} is not icmp, udp or tcp"));
        }
    }
    if let Some(i) = &raw.interval {
        match tumen_core::parse_duration(i) {
            Ok(d) if d.as_secs() >= 1 => s.interval_s = Some(d.as_secs()),
            Ok(_) => errs.push(format!("{at}.interval: {i:?} is under one second")),
            Err(e) => errs.push(format!("{at}.interval: {e}")),
        }
    }
    if let Some(p) = raw.probes {
        if (1..=10).contains(&p) {
            s.probes = Some(p);
        } else {
            errs.push(format!("{at}.probes: {p} is not 1..=10"));
        }
    }
    if let Some(p) = raw.pps {
        if p >= 1 {
            s.pps = Some(p);
        } else {
            errs.push(format!("{at}.pps must be at least 1"));
        }
    }
    s.ping_count = raw.ping_count;
    s
}

impl Schedules {
    /// Validates `[schedule]`, every problem into `errs`.
    pub fn validate(raw: &RawSchedule, errs: &mut Vec<String>) -> Self {
        let default = one(raw, "schedule", errs);
        let mut agents = BTreeMap::new();
        for (name, a) in &raw.agents {
            if !super::auth::valid_agent_name(name) {
                errs.push(format!("schedule.agents.{name}: not an agent name"));
            }
            if !a.agents.is_empty() {
                errs.push(format!("schedule.agents.{name}: overrides do not nest"));
            }
            let o = one(a, &format!("schedule.agents.{name}"), errs);
            let merged = AgentSchedule {
                targets: if o.targets.is_empty() {
                    default.targets.clone()
                } else {
                    o.targets
                },
                protocol: o.protocol.or_else(|| default.protocol.clone()),
                interval_s: o.interval_s.or(default.interval_s),
                probes: o.probes.or(default.probes),
                pps: o.pps.or(default.pps),
                ping_count: o.ping_count.or(default.ping_count),
            };
            agents.insert(name.clone(), merged);
        }
        Self { default, agents }
    }

    /// The schedule of `agent`, as a JSON body and its ETag.
    pub fn for_agent(&self, agent: &str) -> (String, String) {
        let s = self.agents.get(agent).unwrap_or(&self.default);
        let body = serde_json::to_string(s).unwrap_or_else(|_| "{}".into());
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        (body, etag)
    }
}

/// What an agent reports after applying a schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusals {
    /// ETag of the schedule the refusals are about.
    #[serde(default)]
    pub schedule: String,
    pub refused: Vec<Refusal>,
}

/// One schedule item an agent did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub item: String,
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawSchedule {
        toml::from_str(toml_text).expect("toml")
    }

    #[test]
    fn per_agent_overrides_merge_over_the_default_and_etags_follow_content() {
        let mut errs = Vec::new();
        let s = Schedules::validate(
            &raw(
                "targets = [\"175.45.176.0/24\"]\ninterval = \"60s\"\nprobes = 2\n\
                  [agents.vp-fra]\npps = 50\n[agents.vp-sgp]\ntargets = [\"175.45.177.7\"]\n",
            ),
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let (d, etag_d) = s.for_agent("vp-nyc");
        assert_eq!(
            d,
            r#"{"targets":["175.45.176.0/24"],"interval_s":60,"probes":2}"#
        );
        let (f, etag_f) = s.for_agent("vp-fra");
        assert_eq!(
            f,
            r#"{"targets":["175.45.176.0/24"],"interval_s":60,"probes":2,"pps":50}"#
        );
        let (g, _) = s.for_agent("vp-sgp");
        assert!(g.contains(r#""targets":["175.45.177.7/32"]"#), "{g}");
        assert_ne!(etag_d, etag_f);
        assert_eq!(s.for_agent("vp-nyc").1, etag_d, "stable");
        assert!(etag_d.starts_with('"') && etag_d.ends_with('"'));
    }

    #[test]
    fn bad_schedules_name_every_problem() {
        let mut errs = Vec::new();
        Schedules::validate(
            &raw(
                "targets = [\"nowhere\"]\nprotocol = \"gre\"\ninterval = \"0s\"\nprobes = 0\n\
                  [agents.\"bad/name\"]\npps = 0\n",
            ),
            &mut errs,
        );
        let all = errs.join("\n");
        for want in [
            "schedule.targets: \"nowhere\"",
            "schedule.protocol",
            "schedule.interval",
            "schedule.probes",
            "schedule.agents.bad/name: not an agent name",
            "schedule.agents.bad/name.pps",
        ] {
            assert!(all.contains(want), "{want}: {all}");
        }
        let e = toml::from_str::<RawSchedule>("target = []").expect_err("unknown key");
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
