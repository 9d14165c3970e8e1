//! Agent configuration: file + flags in two phases.
//!
//! Phase one reads the TOML file and the command line into [`RawConfig`],
//! every field optional; flags override the file. Phase two validates it
//! into [`Config`] and reports *every* problem at once, each naming the
//! value and what to do (the binary exits 64 on them).
//!
//! The allow-list ([`AllowList`], its own module) is the hard boundary of
//! what this agent may ever send to: `allow` (or, when absent, the targets
//! and the preset's prefixes).
//! Documentation, benchmark, private, loopback, link-local, multicast and
//! other special-purpose ranges are refused unless `allow_reserved` is set
//! (the lab sets it; a real deployment never needs it).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::allow::AllowList;
use crate::engine::TraceParams;
use crate::logging::LogFormat;
use crate::packet::Protocol;

/// The DPRK preset (`tumen_core::preset::DPRK`, shared with the collector).
pub const PRESET_DPRK: &[&str] = tumen_core::preset::DPRK.prefixes;

/// Special-purpose ranges refused without `allow_reserved`
/// (`tumen_core::RESERVED`).
pub use tumen_core::{reserved_range, RESERVED};

/// Default global probe rate cap (probes per second).
pub const DEFAULT_PPS: u32 = 100;
/// Highest accepted `pps`.
pub const MAX_PPS: u32 = 100_000;
/// Default time between rounds: a route change reaches the collector's
/// metrics within about one interval (a changed path gets a confirming
/// full trace in the same round), well inside the 30 s target. A round of
/// the DPRK preset is a few dozen probes, so this costs about 2 probes/s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(20);

/// Configuration as read, before validation: every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub collector: Option<String>,
    pub token_file: Option<PathBuf>,
    pub id: Option<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub allow: Vec<String>,
    pub preset: Option<String>,
    pub allow_reserved: Option<bool>,
    pub pps: Option<u32>,
    pub interval: Option<String>,
    pub spool: Option<PathBuf>,
    /// `icmp` (default), `udp` or `tcp`.
    pub protocol: Option<String>,
    /// Destination port for UDP (default 33434) and TCP (default 80).
    pub port: Option<u16>,
    pub first_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
    /// Attempts per hop.
    pub probes: Option<u8>,
    /// Wait for an answer, e.g. `1s`, `500ms`.
    pub wait: Option<String>,
    pub gap_limit: Option<u8>,
    /// Paris flow ids per trace.
    pub flows: Option<u16>,
    /// Addresses probed per /24 (IPv4) or /48 (IPv6) of a prefix target:
    /// a number, or `all`.
    pub hosts: Option<String>,
    /// Probe only around the known border after a full trace.
    pub window: Option<bool>,
    /// A full trace per prefix every this many rounds.
    pub full_every: Option<u32>,
    /// Probes per second toward any one destination.
    pub target_pps: Option<u32>,
    /// Echo requests per destination per round (0: no ping).
    pub ping_count: Option<u32>,
    pub ping_interval: Option<String>,
    /// PEM file of the CA that signed the collector's certificate
    /// (default: the system roots).
    pub ca_file: Option<PathBuf>,
    /// Allow an `http://` collector (plain text: tokens and results
    /// readable on the path). Off unless set.
    pub insecure_http: Option<bool>,
    /// Largest spool on disk, e.g. `256MiB`.
    pub spool_max: Option<String>,
    /// Longest wait between upload retries (default 60s).
    pub retry_max: Option<String>,
    /// On SIGTERM, time allowed to upload what is spooled (default 5s).
    pub shutdown_grace: Option<String>,
    /// `ADDR:PORT` of the agent's own `/metrics` and `/healthz`.
    pub metrics_listen: Option<String>,
    /// `text` (default) or `json`: the format of the log on stderr.
    pub log_format: Option<String>,
}

impl RawConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("--config {}: cannot read: {e}", path.display())],
        })?;
        toml::from_str(&text).map_err(|e| ConfigError {
            problems: vec![format!(
                "--config {}: {}",
                path.display(),
                e.to_string().trim_end()
            )],
        })
    }

    /// Applies flags over the file: a flag given wins; list flags replace
    /// the file's list.
    pub fn merge(mut self, flags: RawConfig) -> Self {
        tumen_core::take_set!(
            self,
            flags;
            collector,
            token_file,
            id,
            preset,
            allow_reserved,
            pps,
            interval,
            spool,
            protocol,
            port,
            first_ttl,
            max_ttl,
            probes,
            wait,
            gap_limit,
            flows,
            hosts,
            window,
            full_every,
            target_pps,
            ping_count,
            ping_interval,
            ca_file,
            insecure_http,
            spool_max,
            retry_max,
            shutdown_grace,
            metrics_listen,
            log_format
        );
        if !flags.targets.is_empty() {
            self.targets = flags.targets;
        }
        if !flags.allow.is_empty() {
            self.allow = flags.allow;
        }
        self
    }
}

/// Every problem with a configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub collector: Option<String>,
    pub token_file: Option<PathBuf>,
    pub id: String,
    pub targets: Vec<IpNet>,
    pub allow: AllowList,
    pub allow_reserved: bool,
    pub pps: u32,
    pub interval: Duration,
    pub spool: Option<PathBuf>,
    pub probe: ProbeConfig,
    /// Where results go; `None`: printed as JSON lines on stdout.
    pub delivery: Option<Delivery>,
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub log_format: LogFormat,
}

/// Spool and upload settings (with a collector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub collector: String,
    pub token_file: PathBuf,
    pub ca_file: Option<PathBuf>,
    pub spool: PathBuf,
    pub spool_max: u64,
    pub retry_max: Duration,
    pub shutdown_grace: Duration,
}

/// Parses a size: bytes, or with `KiB`, `MiB`, `GiB` (or `k`, `M`, `G`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mul: u64 = match unit.trim() {
        "" | "B" => 1,
        "k" | "K" | "KiB" | "kB" => 1 << 10,
        "M" | "MiB" | "MB" => 1 << 20,
        "G" | "GiB" | "GB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// How many addresses of each /24 (/48) of a prefix target are traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosts {
    /// The first N addresses after the network address (.1, .2, ...).
    Count(u16),
    /// Every address of the prefix.
    All,
}

/// What and how each round probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    pub trace: TraceParams,
    pub hosts: Hosts,
    pub window: bool,
    pub full_every: u32,
    pub ping_count: u32,
    pub ping_interval: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            trace: TraceParams::default(),
            hosts: Hosts::Count(1),
            window: true,
            full_every: 10,
            ping_count: 0,
            ping_interval: Duration::from_secs(1),
        }
    }
}

/// Validates the probing options, adding to `problems`.
fn probe_config(raw: &RawConfig, problems: &mut Vec<String>) -> ProbeConfig {
    let mut c = ProbeConfig::default();
    let t = &mut c.trace;
    match raw.protocol.as_deref() {
        None | Some("icmp") => {}
        Some("udp") => t.protocol = Protocol::Udp,
        Some("tcp") => {
            t.protocol = Protocol::Tcp;
            t.port = 80;
        }
        Some(p) => problems.push(format!("protocol {p:?} is not one of icmp, udp, tcp")),
    }
    if let Some(p) = raw.port {
        if p == 0 {
            problems.push("port 0 cannot be probed".into());
        }
        t.port = p;
    }
    let mut range = |name: &str, v: Option<u32>, lo: u32, hi: u32| -> Option<u32> {
        let v = v?;
        if (lo..=hi).contains(&v) {
            Some(v)
        } else {
            problems.push(format!("{name} {v} is out of range {lo}..={hi}"));
            None
        }
    };
    let small = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    if let Some(v) = range("first_ttl", raw.first_ttl.map(u32::from), 1, 255) {
        t.first_ttl = small(v);
    }
    if let Some(v) = range("max_ttl", raw.max_ttl.map(u32::from), 1, 255) {
        t.max_ttl = small(v);
    }
    if let Some(v) = range("probes", raw.probes.map(u32::from), 1, 10) {
        t.probes = small(v);
    }
    if let Some(v) = range("gap_limit", raw.gap_limit.map(u32::from), 1, 255) {
        t.gap_limit = small(v);
    }
    if let Some(v) = range("flows", raw.flows.map(u32::from), 1, 256) {
        t.flows = u16::try_from(v).unwrap_or(1);
    }
    if let Some(v) = range("target_pps", raw.target_pps, 1, MAX_PPS) {
        t.target_gap = Duration::from_secs_f64(1.0 / f64::from(v));
    }
    if let Some(v) = range("full_every", raw.full_every, 1, 1_000_000) {
        c.full_every = v;
    }
    if let Some(v) = range("ping_count", raw.ping_count, 0, 1000) {
        c.ping_count = v;
    }
    if t.first_ttl > t.max_ttl {
        problems.push(format!(
            "first_ttl {} is above max_ttl {}",
            t.first_ttl, t.max_ttl
        ));
    }
    let mut duration = |name: &str, v: Option<&str>, lo: Duration, hi: Duration| {
        let s = v?;
        match parse_duration(s) {
            Some(d) if d >= lo && d <= hi => Some(d),
            _ => {
                problems.push(format!(
                    "{name} {s:?} is not a duration between {lo:?} and {hi:?} (e.g. 1s, 500ms)"
                ));
                None
            }
        }
    };
    if let Some(d) = duration(
        "wait",
        raw.wait.as_deref(),
        Duration::from_millis(10),
        Duration::from_secs(60),
    ) {
        c.trace.wait = d;
    }
    if let Some(d) = duration(
        "ping_interval",
        raw.ping_interval.as_deref(),
        Duration::from_millis(10),
        Duration::from_secs(60),
    ) {
        c.ping_interval = d;
    }
    match raw.hosts.as_deref() {
        None => {}
        Some("all") => c.hosts = Hosts::All,
        Some(n) => match n.parse::<u16>() {
            Ok(k) if (1..=256).contains(&k) => c.hosts = Hosts::Count(k),
            _ => problems.push(format!("hosts {n:?} is not a number 1..=256 or `all`")),
        },
    }
    if let Some(w) = raw.window {
        c.window = w;
    }
    c
}

fn parse_prefix(s: &str) -> Option<IpNet> {
    IpNet::from_str(s)
        .map(|n| n.trunc())
        .ok()
        .or_else(|| IpAddr::from_str(s).ok().map(IpNet::from))
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1d` or plain seconds
/// (`tumen_core::parse_duration`, as the collector reads them).
pub fn parse_duration(s: &str) -> Option<Duration> {
    tumen_core::parse_duration(s).ok()
}

impl Config {
    /// Validates a raw configuration, collecting every problem.
    pub fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let allow_reserved = raw.allow_reserved.unwrap_or(false);

        let mut targets = Vec::new();
        for t in &raw.targets {
            match parse_prefix(t) {
                Some(n) => targets.push(n),
                None => problems.push(format!(
                    "target {t:?} is not an address or prefix (e.g. 175.45.176.0/24)"
                )),
            }
        }
        let mut preset = Vec::new();
        match raw.preset.as_deref() {
            None => {}
            Some("dprk") => preset.extend(PRESET_DPRK.iter().filter_map(|p| parse_prefix(p))),
            Some(other) => problems.push(format!("preset {other:?} is unknown (known: dprk)")),
        }
        if raw.targets.is_empty() && raw.preset.is_none() {
            problems.push(
                "no target given. Probing a country's network is a deliberate act: name what to \
                 probe with --target PREFIX, --preset dprk, or `targets` in the config file"
                    .into(),
            );
        }
        for p in preset {
            if !targets.contains(&p) {
                targets.push(p);
            }
        }

        let allow = if raw.allow.is_empty() {
            targets.clone()
        } else {
            let mut v = Vec::new();
            for a in &raw.allow {
                match parse_prefix(a) {
                    Some(n) => v.push(n),
                    None => problems.push(format!("allow {a:?} is not an address or prefix")),
                }
            }
            v
        };
        let allow = AllowList::new(allow);
        for t in &targets {
            if !allow.covers(t) {
                problems.push(format!(
                    "target {t} is outside the allow-list ({}): it would never be probed; \
                     widen --allow or drop the target",
                    join(allow.prefixes())
                ));
            }
        }
        if !allow_reserved {
            for n in allow.prefixes().iter().chain(&targets) {
                if let Some(r) = reserved_range(n) {
                    let msg = format!(
                        "{n} is in the special-purpose range {r} (documentation, private, \
                         loopback, multicast, ...): refused unless allow_reserved = true \
                         (--allow-reserved), which only a lab needs"
                    );
                    if !problems.contains(&msg) {
                        problems.push(msg);
                    }
                }
            }
        }

        let pps = raw.pps.unwrap_or(DEFAULT_PPS);
        if pps == 0 || pps > MAX_PPS {
            problems.push(format!("pps {pps} is out of range 1..={MAX_PPS}"));
        }
        let interval = match raw.interval.as_deref() {
            None => DEFAULT_INTERVAL,
            Some(s) => match parse_duration(s) {
                Some(d) if d >= Duration::from_secs(1) => d,
                Some(_) => {
                    problems.push(format!("interval {s:?} is under one second"));
                    DEFAULT_INTERVAL
                }
                None => {
                    problems.push(format!(
                        "interval {s:?} is not a duration (e.g. 60s, 5m, 1h)"
                    ));
                    DEFAULT_INTERVAL
                }
            },
        };
        if let Some(c) = &raw.collector {
            if !(c.starts_with("https://") || c.starts_with("http://")) {
                problems.push(format!("collector {c:?} is not an http(s):// URL"));
            }
        }
        let id = raw
            .id
            .clone()
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .unwrap_or_else(|| "agent".into());
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push(format!("id {id:?}: 1-64 printable characters, no spaces"));
        }

        let probe = probe_config(&raw, &mut problems);
        let delivery = delivery(&raw, &mut problems);
        let metrics_listen = raw.metrics_listen.as_deref().and_then(|m| match m.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(format!("metrics_listen {m:?} is not an address:port"));
                None
            }
        });
        let log_format = match raw.log_format.as_deref() {
            None => LogFormat::default(),
            Some(f) => f.parse().unwrap_or_else(|e| {
                problems.push(format!("log_format {e}"));
                LogFormat::default()
            }),
        };
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            collector: raw.collector,
            token_file: raw.token_file,
            id,
            targets,
            allow,
            allow_reserved,
            pps,
            interval,
            spool: raw.spool,
            probe,
            delivery,
            metrics_listen,
            log_format,
        })
    }
}

/// The delivery settings, when a collector is configured.
fn delivery(raw: &RawConfig, problems: &mut Vec<String>) -> Option<Delivery> {
    let Some(collector) = raw.collector.clone() else {
        for (key, set) in [
            ("token_file", raw.token_file.is_some()),
            ("ca_file", raw.ca_file.is_some()),
            ("spool_max", raw.spool_max.is_some()),
        ] {
            if set {
                problems.push(format!(
                    "{key} is set but no collector is: set --collector URL"
                ));
            }
        }
        return None;
    };
    let before = problems.len();
    if collector.starts_with("http://") && raw.insecure_http != Some(true) {
        problems.push(format!(
            "collector {collector:?} is plain HTTP: tokens and results would cross the network \
             readable; use https:// or set insecure_http = true (--insecure-http)"
        ));
    }
    let token_file = raw.token_file.clone().or_else(|| {
        problems.push("a collector needs a token: --token-file PATH".into());
        None
    });
    let spool = raw
        .spool
        .clone()
        .or_else(|| std::env::var_os("STATE_DIRECTORY").map(|d| PathBuf::from(d).join("spool")))
        .or_else(|| {
            problems.push(
                "a collector needs a spool directory (results wait there until the collector \
                 has them): --spool DIR"
                    .into(),
            );
            None
        });
    let spool_max = match raw.spool_max.as_deref() {
        None => crate::spool::SpoolConfig::DEFAULT_MAX_BYTES,
        Some(s) => match parse_size(s) {
            Some(n) if n >= 1 << 20 => n,
            _ => {
                problems.push(format!(
                    "spool_max {s:?} is not a size of at least 1MiB (e.g. 256MiB)"
                ));
                0
            }
        },
    };
    let mut duration = |key: &str, v: Option<&str>, default: Duration| match v {
        None => default,
        Some(s) => match parse_duration(s) {
            Some(d) if d >= Duration::from_millis(100) => d,
            _ => {
                problems.push(format!("{key} {s:?} is not a duration of at least 100ms"));
                default
            }
        },
    };
    let retry_max = duration(
        "retry_max",
        raw.retry_max.as_deref(),
        Duration::from_secs(60),
    );
    let shutdown_grace = duration(
        "shutdown_grace",
        raw.shutdown_grace.as_deref(),
        Duration::from_secs(5),
    );
    if problems.len() > before {
        return None;
    }
    Some(Delivery {
        collector: collector.trim_end_matches('/').to_string(),
        token_file: token_file?,
        ca_file: raw.ca_file.clone(),
        spool: spool?,
        spool_max,
        retry_max,
        shutdown_grace,
    })
}

fn join(v: &[IpNet]) -> String {
    if v.is_empty() {
        return "empty".into();
    }
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(targets: &[&str]) -> RawConfig {
        RawConfig {
            targets: targets.iter().map(|s| s.to_string()).collect(),
            id: Some("vp-test".into()),
            ..RawConfig::default()
        }
    }

    #[test]
    fn preset_dprk_defines_targets_and_allow() {
        let c = Config::validate(RawConfig {
            preset: Some("dprk".into()),
            id: Some("x".into()),
            ..RawConfig::default()
        })
        .expect("valid");
        let t: Vec<String> = c.targets.iter().map(ToString::to_string).collect();
        assert_eq!(t, ["175.45.176.0/22", "210.52.109.0/24", "77.94.35.0/24"]);
        assert!(c.allow.permits("175.45.176.15".parse().expect("ip")));
        assert!(!c.allow.permits("175.45.180.1".parse().expect("ip")));
        assert_eq!((c.pps, c.interval), (DEFAULT_PPS, DEFAULT_INTERVAL));
    }

    #[test]
    fn no_target_is_refused_with_the_reason() {
        let e = Config::validate(raw(&[])).expect_err("no target");
        assert!(e.to_string().contains("deliberate act"), "{e}");
    }

    #[test]
    fn reserved_ranges_need_allow_reserved() {
        for t in [
            "10.1.2.0/24",
            "192.0.2.7",
            "198.18.176.0/22",
            "2001:db8::/48",
            "ff02::1",
            "127.0.0.1",
        ] {
            let e = Config::validate(raw(&[t])).expect_err(t);
            assert!(e.to_string().contains("special-purpose range"), "{t}: {e}");
        }
        let mut r = raw(&["198.18.176.0/22"]);
        r.allow_reserved = Some(true);
        assert!(Config::validate(r).is_ok());
        // A prefix that contains a reserved range is refused too.
        assert!(Config::validate(raw(&["0.0.0.0/0"])).is_err());
    }

    #[test]
    fn targets_outside_allow_are_refused() {
        let mut r = raw(&["175.45.176.0/24", "175.45.177.0/24"]);
        r.allow = vec!["175.45.176.0/24".into()];
        let e = Config::validate(r).expect_err("outside");
        assert!(
            e.to_string()
                .contains("target 175.45.177.0/24 is outside the allow-list (175.45.176.0/24)"),
            "{e}"
        );
    }

    #[test]
    fn all_problems_are_reported_together() {
        let mut r = raw(&["not-an-ip", "175.45.176.0/24"]);
        r.preset = Some("mars".into());
        r.pps = Some(0);
        r.interval = Some("ten".into());
        r.collector = Some("ftp://x".into());
        let e = Config::validate(r).expect_err("bad");
        // The five above, and the collector's missing token and spool.
        assert_eq!(e.problems.len(), 7, "{e}");
    }

    #[test]
    fn a_collector_needs_a_token_a_spool_and_https_or_an_explicit_opt_in() {
        let mut r = raw(&["175.45.176.0/24"]);
        r.collector = Some("http://collector.example:9640".into());
        let e = Config::validate(r.clone()).expect_err("bad").to_string();
        for want in [
            "is plain HTTP",
            "--insecure-http",
            "--token-file",
            "--spool DIR",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        r.insecure_http = Some(true);
        r.token_file = Some("/etc/tumen/token".into());
        r.spool = Some("/var/lib/tumen".into());
        r.spool_max = Some("64MiB".into());
        r.retry_max = Some("5s".into());
        let d = Config::validate(r.clone())
            .expect("valid")
            .delivery
            .expect("delivery");
        assert_eq!(d.spool_max, 64 << 20);
        assert_eq!(d.retry_max, Duration::from_secs(5));
        assert_eq!(d.shutdown_grace, Duration::from_secs(5));
        r.collector = Some("https://collector.example:9640/".into());
        r.insecure_http = None;
        let d = Config::validate(r.clone())
            .expect("https")
            .delivery
            .expect("d");
        assert_eq!(d.collector, "https://collector.example:9640");
        r.spool_max = Some("12 parsecs".into());
        r.shutdown_grace = Some("0s".into());
        let e = Config::validate(r).expect_err("bad").to_string();
        assert!(e.contains("spool_max \"12 parsecs\""), "{e}");
        assert!(e.contains("shutdown_grace \"0s\""), "{e}");
        // Delivery keys without a collector are a mistake worth saying.
        let mut r = raw(&["175.45.176.0/24"]);
        r.token_file = Some("/etc/tumen/token".into());
        let e = Config::validate(r).expect_err("bad").to_string();
        assert!(e.contains("token_file is set but no collector is"), "{e}");
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        let c = Config::validate(raw(&["175.45.176.0/24"])).expect("valid");
        assert_eq!(c.log_format, LogFormat::Text);
        let mut r = raw(&["175.45.176.0/24"]);
        r.log_format = Some("json".into());
        assert_eq!(
            Config::validate(r).expect("json").log_format,
            LogFormat::Json
        );
        let mut r = raw(&["175.45.176.0/24"]);
        r.log_format = Some("xml".into());
        let e = Config::validate(r).expect_err("xml");
        assert_eq!(
            e.problems,
            ["log_format \"xml\" is not a log format: use text or json"]
        );
    }

    #[test]
    fn flags_override_the_file() {
        let file: RawConfig =
            toml::from_str("targets = [\"175.45.176.0/24\"]\npps = 50\nid = \"a\"").expect("toml");
        let flags = RawConfig {
            pps: Some(10),
            ..RawConfig::default()
        };
        let c = Config::validate(file.merge(flags)).expect("valid");
        assert_eq!((c.pps, c.id.as_str(), c.targets.len()), (10, "a", 1));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        // Plain seconds, as the collector reads them (one parser for both).
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
    }
}
