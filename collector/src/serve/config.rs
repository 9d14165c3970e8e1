//! `serve` configuration in two phases: [`RawConfig`] (TOML file and
//! flags, every field optional, flags win) becomes a validated [`Config`]
//! of real types, with every problem reported at once (exit 64).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

/// What the file and the flags may say: one struct for both, so that a
/// new setting is one field (its `#[arg]` makes it a flag too; `skip`
/// keeps it to the file).
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on [default: 127.0.0.1:9640].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// SQLite database path [default: tumen-collector.db].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Prefix-to-ASN table (pyasn dat, CAIDA pfx2as, iptoasn TSV, MRT RIB),
    /// over the embedded one; repeatable; reloaded on SIGHUP or change.
    #[serde(default)]
    #[arg(long = "asn-table", value_name = "FILE")]
    pub asn_tables: Vec<PathBuf>,
    /// ASN-to-organisation file (`4837 china-unicom` per line), over the embedded one.
    #[arg(long, value_name = "FILE")]
    pub orgs: Option<PathBuf>,
    /// Target prefix (repeatable); replaces the DPRK preset.
    #[serde(default)]
    #[arg(long = "target", value_name = "PREFIX")]
    pub targets: Vec<String>,
    /// Built-in target set (`dprk`, the default when no --target is given).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// File of agent token hashes (`NAME sha256:HEX` per line; see `token`).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Consecutive agreeing traces before a path's upstream changes [default: 2].
    #[arg(long, value_name = "K")]
    pub hysteresis: Option<u32>,
    /// How long raw records and events are kept [default: 30d].
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<String>,
    /// Agents silent for longer lose their series [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub agent_silence: Option<String>,
    /// Largest request body accepted, as sent (bytes).
    #[arg(skip)]
    pub max_body_bytes: Option<usize>,
    /// Largest request body after decompression (bytes).
    #[arg(skip)]
    pub max_decoded_bytes: Option<usize>,
    /// Most records in one request.
    #[arg(skip)]
    pub max_batch: Option<usize>,
    /// Time a client has to send a whole request head ("10s").
    #[arg(skip)]
    pub header_read_timeout: Option<String>,
    /// Time a keep-alive connection may wait for its next request ("60s").
    #[arg(skip)]
    pub idle_timeout: Option<String>,
    /// Time a client has to send a whole request body ("30s").
    #[arg(skip)]
    pub body_timeout: Option<String>,
    /// Open connections at most (default: 4096, or three quarters of the
    /// open-files limit if lower).
    #[arg(skip)]
    pub max_connections: Option<usize>,
    /// Bytes that all request bodies being received may hold together.
    #[arg(skip)]
    pub max_inflight_body_bytes: Option<usize>,
    /// How far in the future of the collector's clock a record may be
    /// dated ("10m").
    #[arg(skip)]
    pub max_clock_skew: Option<String>,
    /// Log lines as `text` (default) or `json` (one object per line, for
    /// journald or a log shipper).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Traceroute file (any format `infer` reads) fed to the live state at
    /// start, as the vantage point --import-as; repeatable.
    #[serde(default)]
    #[arg(long = "import", value_name = "FILE")]
    pub imports: Vec<PathBuf>,
    /// Vantage point of --import traces [default: import].
    #[arg(long, value_name = "NAME")]
    pub import_as: Option<String>,
    /// Optional Team Cymru / PTR lookups.
    #[arg(skip)]
    pub dns: Option<RawDns>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback --listen (behind a TLS proxy).
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub insecure_http: Option<bool>,
    /// The web view's viewer tokens, one per line (`#` comments): read
    /// access to the web view needs one (HTTP Basic password or Bearer).
    #[arg(long, value_name = "FILE")]
    pub viewer_token_file: Option<PathBuf>,
    /// Serve the web view without a token on a non-loopback --listen.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub public_view: Option<bool>,
    /// What agents are asked to probe (`GET /api/v1/schedule`).
    #[arg(skip)]
    pub schedule: Option<super::schedule::RawSchedule>,
    /// Listen for routers' BMP feeds (RFC 7854) on this address:port.
    #[arg(long, value_name = "ADDR")]
    pub bmp_listen: Option<String>,
    /// MRT archive to follow: a RouteViews or RIPE RIS base URL
    /// (https://..., its layout), or a local directory of MRT files.
    #[arg(long, value_name = "URL|DIR")]
    pub bgp_archive: Option<String>,
    /// Follow the RIPE RIS Live stream for the target prefixes.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub ris_live: Option<bool>,
    /// Control-plane settings.
    #[arg(skip)]
    pub bgp: Option<RawBgp>,
}

/// `[bgp]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgp {
    /// How long the planes must disagree (then agree) before a
    /// divergence starts (ends) ("10m").
    pub divergence_for: Option<String>,
    /// Export `tumen_bgp_path_upstream_info` per (peer, prefix).
    pub peer_series: Option<bool>,
    /// Most such series.
    pub max_peer_series: Option<usize>,
    /// Route changes of one prefix at one peer within `flap_window`
    /// that make a flap event.
    pub flap_threshold: Option<usize>,
    pub flap_window: Option<String>,
    /// How often the archive is polled for new files ("5m").
    pub archive_poll: Option<String>,
    /// RIS Live websocket URL.
    pub ris_live_url: Option<String>,
    /// Only this RIS collector (`rrc00`); all by default.
    pub ris_live_host: Option<String>,
    /// Which BMP view counts: `pre-policy` (default), `post-policy`, `loc-rib`.
    pub bmp_view: Option<String>,
    /// BMP routers connected at once at most.
    pub bmp_max_routers: Option<usize>,
}

/// Validated `[bgp]` and the BGP flags.
#[derive(Debug, Clone)]
pub struct BgpConfig {
    pub bmp_listen: Option<SocketAddr>,
    pub archive: Option<String>,
    pub ris_live: bool,
    pub ris_live_url: String,
    pub ris_live_host: Option<String>,
    pub divergence_for: Duration,
    pub max_peer_series: usize,
    pub flap_threshold: usize,
    pub flap_window: Duration,
    pub archive_poll: Duration,
    pub bmp_view: String,
    pub bmp_max_routers: usize,
}

impl BgpConfig {
    /// Is any source configured?
    pub fn any(&self) -> bool {
        self.bmp_listen.is_some() || self.archive.is_some() || self.ris_live
    }
}

pub const DEFAULT_RIS_LIVE_URL: &str = "wss://ris-live.ripe.net/v1/ws/?client=tumen-collector";
pub const DEFAULT_DIVERGENCE_FOR: &str = "10m";
pub const DEFAULT_MAX_PEER_SERIES: usize = 5000;
pub const DEFAULT_ARCHIVE_POLL: &str = "5m";

/// `[dns]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// The one DNS server asked (`ip:port`); never the system resolver.
    pub server: Option<String>,
    pub cymru: Option<bool>,
    pub ptr: Option<bool>,
    /// Queries per second at most.
    pub rate: Option<u32>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub asn_tables: Vec<PathBuf>,
    pub orgs: Option<PathBuf>,
    /// Empty: the DPRK preset.
    pub targets: Vec<IpNet>,
    pub token_file: PathBuf,
    pub hysteresis: u32,
    pub retention: Duration,
    pub agent_silence: Duration,
    pub max_body_bytes: usize,
    pub max_decoded_bytes: usize,
    pub max_batch: usize,
    pub http: tumen_httpd::Limits,
    pub body_timeout: Duration,
    pub max_inflight_body_bytes: usize,
    pub max_clock_skew: Duration,
    pub log_format: LogFormat,
    pub imports: Vec<PathBuf>,
    pub import_as: String,
    pub dns: Option<crate::dns::DnsConfig>,
    /// Certificate and key files: HTTPS when set.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub schedule: Option<super::schedule::Schedules>,
    pub bgp: BgpConfig,
    /// Who may read the web view (`crate::web`).
    pub view: ViewAccess,
}

/// Who may read the web view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewAccess {
    /// Anyone who reaches the listener (a loopback listener, or
    /// `--public-view`).
    Open,
    /// Holders of a viewer token from this file (read at start).
    Tokens(PathBuf),
    /// Nobody: a non-loopback listener without a viewer token file or
    /// `--public-view` (the page says how to open it).
    Closed,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9640";
pub const DEFAULT_DB: &str = "tumen-collector.db";
/// Two agreeing traces: the agent confirms a changed path with a full
/// trace in the same round, so one round of a real change gives two, and
/// a single odd trace (a flap, a lost reply) gives one.
pub const DEFAULT_HYSTERESIS: u32 = 2;
pub const DEFAULT_RETENTION: &str = "30d";
pub const DEFAULT_SILENCE: &str = "10m";
pub const DEFAULT_MAX_BODY: usize = 8 << 20;
/// Eight times what an agent puts in one batch (2 MiB).
pub const DEFAULT_MAX_DECODED: usize = 16 << 20;
pub const DEFAULT_MAX_BATCH: usize = 10_000;
pub const DEFAULT_HEADER_READ_TIMEOUT: &str = "10s";
pub const DEFAULT_IDLE_TIMEOUT: &str = "60s";
pub const DEFAULT_BODY_TIMEOUT: &str = "30s";
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Memory for uploads in flight: bodies as received, then their decoded
/// text and records (five bytes per decoded byte), held until the
/// answer. Two uploads of the largest size at once, or a hundred agents'
/// largest batches (2 MiB decoded), thousands of their usual ones.
pub const DEFAULT_MAX_INFLIGHT_BODY: usize = 256 << 20;
pub const DEFAULT_MAX_CLOCK_SKEW: &str = "10m";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (colour on a terminal only).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

/// `30s`, `10m`, `12h`, `30d`, or plain seconds (`tumen_core`).
pub fn parse_duration(s: &str) -> Result<Duration, tumen_core::DurationError> {
    tumen_core::parse_duration(s)
}

impl RawConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("--config {}: {e}", path.display())]))?;
        toml::from_str(&text)
            .map_err(|e| ConfigErrors(vec![format!("--config {}: {e}", path.display())]))
    }

    fn validate_bgp(&self, errs: &mut Vec<String>) -> BgpConfig {
        let raw = self.bgp.clone().unwrap_or_default();
        let bmp_listen = self.bmp_listen.as_deref().and_then(|s| {
            s.parse::<SocketAddr>()
                .map_err(|_| {
                    errs.push(format!(
                        "bmp_listen {s:?} is not an address:port (e.g. 0.0.0.0:11019)"
                    ))
                })
                .ok()
        });
        let mut positive = |key: &str, v: Option<&str>, default: &str| match parse_duration(
            v.unwrap_or(default),
        ) {
            Ok(d) if d.is_zero() => {
                errs.push(format!("bgp.{key} must be longer than 0s"));
                Duration::from_secs(1)
            }
            Ok(d) => d,
            Err(e) => {
                errs.push(format!("bgp.{key}: {e}"));
                Duration::from_secs(1)
            }
        };
        let divergence_for = positive(
            "divergence_for",
            raw.divergence_for.as_deref(),
            DEFAULT_DIVERGENCE_FOR,
        );
        let flap_window = positive("flap_window", raw.flap_window.as_deref(), "10m");
        let archive_poll = positive(
            "archive_poll",
            raw.archive_poll.as_deref(),
            DEFAULT_ARCHIVE_POLL,
        );
        let flap_threshold = raw.flap_threshold.unwrap_or(4);
        if flap_threshold < 2 {
            errs.push(format!(
                "bgp.flap_threshold {flap_threshold} must be at least 2 (route changes)"
            ));
        }
        let bmp_view = raw.bmp_view.clone().unwrap_or_else(|| "pre-policy".into());
        if !["pre-policy", "post-policy", "loc-rib"].contains(&bmp_view.as_str()) {
            errs.push(format!(
                "bgp.bmp_view {bmp_view:?} is not pre-policy, post-policy or loc-rib"
            ));
        }
        let ris_live_url = raw
            .ris_live_url
            .clone()
            .unwrap_or_else(|| DEFAULT_RIS_LIVE_URL.into());
        if !(ris_live_url.starts_with("ws://") || ris_live_url.starts_with("wss://")) {
            errs.push(format!(
                "bgp.ris_live_url {ris_live_url:?} is not a ws:// or wss:// URL"
            ));
        }
        if let Some(a) = &self.bgp_archive {
            if !(a.starts_with("http://") || a.starts_with("https://") || Path::new(a).is_dir()) {
                errs.push(format!(
                    "bgp_archive {a:?} is neither an http(s):// URL nor a directory"
                ));
            }
        }
        BgpConfig {
            bmp_listen,
            archive: self.bgp_archive.clone(),
            ris_live: self.ris_live.unwrap_or(false),
            ris_live_url,
            ris_live_host: raw.ris_live_host.clone(),
            divergence_for,
            max_peer_series: if raw.peer_series == Some(false) {
                0
            } else {
                raw.max_peer_series.unwrap_or(DEFAULT_MAX_PEER_SERIES)
            },
            flap_threshold,
            flap_window,
            archive_poll,
            bmp_view,
            bmp_max_routers: raw.bmp_max_routers.unwrap_or(64).max(1),
        }
    }

    /// Values set in `over` win.
    pub fn merge(mut self, over: RawConfig) -> Self {
        tumen_core::take_set!(
            self,
            over;
            listen,
            db,
            orgs,
            preset,
            token_file,
            hysteresis,
            retention,
            agent_silence,
            max_body_bytes,
            max_decoded_bytes,
            max_batch,
            header_read_timeout,
            idle_timeout,
            body_timeout,
            max_connections,
            max_inflight_body_bytes,
            max_clock_skew,
            log_format,
            import_as,
            dns,
            tls_cert,
            tls_key,
            insecure_http,
            viewer_token_file,
            public_view,
            schedule,
            bmp_listen,
            bgp_archive,
            ris_live,
            bgp
        );
        if !over.asn_tables.is_empty() {
            self.asn_tables = over.asn_tables;
        }
        if !over.targets.is_empty() {
            self.targets = over.targets;
        }
        if !over.imports.is_empty() {
            self.imports = over.imports;
        }
        self
    }

    /// Validates everything, reporting every problem.
    pub fn validate(self) -> Result<Config, ConfigErrors> {
        let mut errs = Vec::new();
        let listen_s = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen_s.parse().unwrap_or_else(|_| {
            errs.push(format!(
                "listen {listen_s:?} is not an address:port (e.g. 127.0.0.1:9640)"
            ));
            SocketAddr::from(([127, 0, 0, 1], 9640))
        });
        let mut targets = Vec::new();
        for t in &self.targets {
            match t
                .parse::<IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
            {
                Ok(n) => targets.push(n.trunc()),
                Err(_) => errs.push(format!(
                    "target {t:?} is not an address or prefix (e.g. 175.45.176.0/24)"
                )),
            }
        }
        match self.preset.as_deref() {
            // An explicit preset next to targets adds the preset; alone it
            // is the default target set anyway.
            Some("dprk") if !targets.is_empty() => {
                targets.extend(
                    tumen_core::preset::DPRK
                        .prefixes
                        .iter()
                        .filter_map(|p| p.parse::<IpNet>().ok()),
                );
            }
            None | Some("dprk") => {}
            Some(other) => errs.push(format!("preset {other:?} is unknown (known: dprk)")),
        }
        let token_file = self.token_file.clone().unwrap_or_else(|| {
            errs.push(
                "no token_file: agents could not upload. Create one with \
                 `tumen-collector token NAME --token-file FILE` and pass --token-file FILE"
                    .to_string(),
            );
            PathBuf::new()
        });
        let hysteresis = self.hysteresis.unwrap_or(DEFAULT_HYSTERESIS);
        if hysteresis == 0 || hysteresis > 1000 {
            errs.push(format!(
                "hysteresis {hysteresis} must be 1..=1000 (consecutive agreeing traces)"
            ));
        }
        let mut duration = |key: &str, v: Option<&str>, default: &str| {
            parse_duration(v.unwrap_or(default)).unwrap_or_else(|e| {
                errs.push(format!("{key}: {e}"));
                Duration::ZERO
            })
        };
        let retention = duration("retention", self.retention.as_deref(), DEFAULT_RETENTION);
        let agent_silence = duration(
            "agent_silence",
            self.agent_silence.as_deref(),
            DEFAULT_SILENCE,
        );
        if retention < Duration::from_secs(3600) && !errs.iter().any(|e| e.starts_with("retention"))
        {
            errs.push(format!(
                "retention {:?} is under an hour: raw records would vanish before anyone looks",
                self.retention.as_deref().unwrap_or(DEFAULT_RETENTION)
            ));
        }
        if agent_silence.is_zero() && !errs.iter().any(|e| e.starts_with("agent_silence")) {
            errs.push("agent_silence must be longer than 0s".to_string());
        }
        let mut positive = |key: &str, v: Option<&str>, default: &str| {
            let d = parse_duration(v.unwrap_or(default)).unwrap_or_else(|e| {
                errs.push(format!("{key}: {e}"));
                Duration::from_secs(1)
            });
            if d.is_zero() {
                errs.push(format!("{key} must be longer than 0s"));
            }
            d
        };
        let header_read_timeout = positive(
            "header_read_timeout",
            self.header_read_timeout.as_deref(),
            DEFAULT_HEADER_READ_TIMEOUT,
        );
        let idle_timeout = positive(
            "idle_timeout",
            self.idle_timeout.as_deref(),
            DEFAULT_IDLE_TIMEOUT,
        );
        let body_timeout = positive(
            "body_timeout",
            self.body_timeout.as_deref(),
            DEFAULT_BODY_TIMEOUT,
        );
        let max_clock_skew = positive(
            "max_clock_skew",
            self.max_clock_skew.as_deref(),
            DEFAULT_MAX_CLOCK_SKEW,
        );
        let log_format = match self.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                errs.push(format!("log_format {other:?} is not text or json"));
                LogFormat::Text
            }
        };
        let import_as = self
            .import_as
            .clone()
            .unwrap_or_else(|| crate::source::import::DEFAULT_NAME.to_string());
        if !super::auth::valid_agent_name(&import_as) {
            errs.push(format!(
                "import_as {import_as:?} is not a vantage-point name (1-64 of [A-Za-z0-9._-])"
            ));
        }
        let max_connections = match self.max_connections {
            Some(n) => {
                if n == 0 {
                    errs.push("max_connections must be at least 1".to_string());
                }
                if let Some(limit) = tumen_httpd::open_files_limit() {
                    if n as u64 + 32 > limit {
                        errs.push(format!(
                            "max_connections {n} leaves too few of the {limit} open files this \
                             process may have (ulimit -n) for the store and logs: lower it or \
                             raise the limit (LimitNOFILE= in the systemd unit)"
                        ));
                    }
                }
                n
            }
            None => tumen_httpd::default_max_connections(DEFAULT_MAX_CONNECTIONS),
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
        let max_decoded_bytes = self.max_decoded_bytes.unwrap_or(DEFAULT_MAX_DECODED);
        let max_batch = self.max_batch.unwrap_or(DEFAULT_MAX_BATCH);
        if max_body_bytes < 1024 {
            errs.push(format!("max_body_bytes {max_body_bytes} is under 1024"));
        }
        if max_decoded_bytes < max_body_bytes {
            errs.push(format!(
                "max_decoded_bytes {max_decoded_bytes} is smaller than max_body_bytes {max_body_bytes}"
            ));
        }
        if max_batch == 0 {
            errs.push("max_batch must be at least 1".to_string());
        }
        // The largest upload: its body, then its decoded text and records.
        let largest = max_body_bytes.saturating_add(
            max_decoded_bytes.saturating_mul(1 + crate::pipeline::read::PARSED_PER_BYTE),
        );
        let max_inflight_body_bytes = self
            .max_inflight_body_bytes
            .unwrap_or(DEFAULT_MAX_INFLIGHT_BODY.max(largest));
        if max_inflight_body_bytes < largest {
            errs.push(format!(
                "max_inflight_body_bytes {max_inflight_body_bytes} is smaller than the largest \
                 upload takes ({largest} = max_body_bytes + 5 x max_decoded_bytes): it could \
                 never be taken. Raise it or lower max_decoded_bytes"
            ));
        }
        let dns = self.dns.as_ref().and_then(|d| {
            let server = match d.server.as_deref() {
                Some(s) => match s.parse::<SocketAddr>() {
                    Ok(a) => a,
                    Err(_) => {
                        errs.push(format!(
                            "dns.server {s:?} is not ip:port (e.g. 127.0.0.1:53)"
                        ));
                        return None;
                    }
                },
                None => {
                    errs.push(
                        "dns.server is required when [dns] is set (the collector never uses \
                         the system resolver)"
                            .to_string(),
                    );
                    return None;
                }
            };
            let mut c = crate::dns::DnsConfig {
                server,
                ..Default::default()
            };
            c.cymru = d.cymru.unwrap_or(true);
            c.ptr = d.ptr.unwrap_or(true);
            if let Some(r) = d.rate {
                if r == 0 {
                    errs.push("dns.rate must be at least 1 query/s".to_string());
                }
                c.rate_per_sec = r.max(1);
            }
            Some(c)
        });
        let tls = match (self.tls_cert.clone(), self.tls_key.clone()) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                errs.push("tls_cert is set without tls_key (--tls-key)".to_string());
                None
            }
            (None, Some(_)) => {
                errs.push("tls_key is set without tls_cert (--tls-cert)".to_string());
                None
            }
        };
        if tls.is_none()
            && self.tls_cert.is_none()
            && self.tls_key.is_none()
            && !listen.ip().is_loopback()
            && self.insecure_http != Some(true)
        {
            errs.push(format!(
                "listen {listen} is reachable from the network but no tls_cert/tls_key is set: \
                 agents' tokens and results would cross it in clear. Give --tls-cert and \
                 --tls-key, or set insecure_http = true (--insecure-http) behind a TLS proxy"
            ));
        }
        let schedule = self
            .schedule
            .as_ref()
            .map(|s| super::schedule::Schedules::validate(s, &mut errs));
        let bgp = self.validate_bgp(&mut errs);
        let view = match (&self.viewer_token_file, self.public_view) {
            (Some(f), Some(true)) => {
                errs.push(format!(
                    "viewer_token_file {} and public_view = true: choose one (a public view \
                     needs no token)",
                    f.display()
                ));
                ViewAccess::Closed
            }
            (Some(f), _) => ViewAccess::Tokens(f.clone()),
            (None, Some(true)) => ViewAccess::Open,
            (None, _) if listen.ip().is_loopback() => ViewAccess::Open,
            (None, _) => ViewAccess::Closed,
        };
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        Ok(Config {
            listen,
            db: self.db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB)),
            asn_tables: self.asn_tables,
            orgs: self.orgs,
            targets,
            token_file,
            hysteresis,
            retention,
            agent_silence,
            max_body_bytes,
            max_decoded_bytes,
            max_batch,
            http: tumen_httpd::Limits {
                header_read_timeout,
                idle_timeout,
                max_connections,
                ..tumen_httpd::Limits::default()
            },
            body_timeout,
            max_inflight_body_bytes,
            max_clock_skew,
            log_format,
            imports: self.imports,
            import_as,
            dns,
            tls,
            schedule,
            bgp,
            view,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units_and_refuse_garbage() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let raw: RawConfig = toml::from_str(
            r#"
            listen = "nowhere"
            targets = ["175.45.176.0/22", "not-a-prefix"]
            preset = "mars"
            hysteresis = 0
            retention = "5m"
            max_batch = 0
            [dns]
            cymru = true
            "#,
        )
        .expect("toml");
        let e = raw.validate().expect_err("bad").0;
        let text = e.join("\n");
        for needle in [
            "listen \"nowhere\"",
            "target \"not-a-prefix\"",
            "preset \"mars\"",
            "no token_file",
            "hysteresis 0",
            "retention",
            "max_batch",
            "dns.server is required",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(e.len(), 8, "{text}");
    }

    #[test]
    fn bgp_settings_are_checked_with_the_rest() {
        let raw: RawConfig = toml::from_str(
            r#"
            token_file = "tokens"
            bmp_listen = "everywhere"
            bgp_archive = "ftp://example.org/"
            [bgp]
            divergence_for = "0s"
            flap_window = "soon"
            flap_threshold = 1
            bmp_view = "adj-rib-out"
            ris_live_url = "http://ris-live.ripe.net/"
            "#,
        )
        .expect("toml");
        let e = raw.validate().expect_err("bad").0;
        let text = e.join("\n");
        for needle in [
            "bmp_listen \"everywhere\"",
            "bgp_archive \"ftp://example.org/\"",
            "bgp.divergence_for must be longer than 0s",
            "bgp.flap_window",
            "bgp.flap_threshold 1",
            "bgp.bmp_view \"adj-rib-out\"",
            "bgp.ris_live_url",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(e.len(), 7, "{text}");
        let ok: RawConfig = toml::from_str(
            r#"
            token_file = "tokens"
            bmp_listen = "127.0.0.1:11019"
            ris_live = true
            [bgp]
            divergence_for = "30s"
            peer_series = false
            "#,
        )
        .expect("toml");
        let c = ok.validate().expect("valid").bgp;
        assert!(c.any());
        assert_eq!(c.bmp_listen, Some("127.0.0.1:11019".parse().unwrap()));
        assert_eq!(c.divergence_for, Duration::from_secs(30));
        assert_eq!(c.max_peer_series, 0);
        assert_eq!(c.ris_live_url, DEFAULT_RIS_LIVE_URL);
        let none: RawConfig = toml::from_str("token_file = \"t\"").expect("toml");
        assert!(!none.validate().expect("valid").bgp.any());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<RawConfig>("hysterisis = 3").expect_err("typo");
        assert!(e.to_string().contains("hysterisis"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file: RawConfig = toml::from_str(
            "listen = \"127.0.0.1:1\"\nhysteresis = 5\ntoken_file = \"/f\"\ntargets = [\"198.18.176.0/22\"]",
        )
        .expect("toml");
        let flags = RawConfig {
            listen: Some("127.0.0.1:2".into()),
            ..Default::default()
        };
        let c = file.merge(flags).validate().expect("valid");
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.hysteresis, 5);
        assert_eq!(c.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.max_batch, DEFAULT_MAX_BATCH);
        assert!(c.dns.is_none());
    }
}
