//! Optional DNS enrichment of hop addresses: the origin AS of an address
//! from Team Cymru's IP-to-ASN service (TXT records under
//! `origin.asn.cymru.com` and `origin6.asn.cymru.com`) and its reverse name
//! (PTR under `in-addr.arpa` / `ip6.arpa`), asked of exactly one configured
//! DNS server with hickory-resolver (UDP, falling back to TCP when an answer
//! comes back truncated). The resolver is always built from
//! [`DnsConfig::server`], never from `/etc/resolv.conf`, and hickory's own
//! cache is off: the [`Enricher`] keeps its own bounded cache whose entries
//! live as long as the answer's TTL (clamped to one second .. one day;
//! negative answers for [`DnsConfig::negative_ttl`]), so that the sync
//! accessors ([`Enricher::cached_asn`], [`Enricher::cached_ptr`]) can
//! answer from it without I/O. Queries are limited to
//! [`DnsConfig::rate_per_sec`] by a token bucket: direct lookups that find
//! it empty fail at once with [`DnsError::RateLimited`], background lookups
//! queued by [`Enricher::request`] wait their turn. Addresses that no public
//! registry can attribute (private, loopback, link-local, CGNAT, multicast,
//! ULA, ...) are never queried. Text parsing ([`parse_cymru_txt`]) and
//! query-name building are pure functions, tested on exact strings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use ipnet::IpNet;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

/// How many addresses [`Enricher::request`] can have waiting for the
/// background worker; further requests are dropped and counted in
/// [`DnsStats::dropped`].
pub const REQUEST_QUEUE_CAPACITY: usize = 1024;

/// Shortest time an answer is cached, whatever its TTL says.
pub const MIN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Longest time an answer is cached, whatever its TTL says.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(86_400);

/// Longest TXT text [`parse_cymru_txt`] accepts; Team Cymru's lines are
/// well under 100 bytes.
const MAX_TXT_LEN: usize = 1024;

/// How much of an offending text an error message quotes.
const MAX_QUOTED_LEN: usize = 200;

/// How often a full cache sweeps out all expired entries before evicting
/// the oldest ones.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of the DNS enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The one DNS server asked, over UDP and (for truncated answers) TCP.
    pub server: SocketAddr,
    /// Look up origin ASes at Team Cymru.
    pub cymru: bool,
    /// Look up reverse (PTR) names.
    pub ptr: bool,
    /// Queries per second sent to `server`, at most; also the burst size.
    pub rate_per_sec: u32,
    /// How long one query may take before it fails with
    /// [`DnsError::Timeout`].
    pub timeout: Duration,
    /// Entries each cache (origins by address, origins by prefix, PTR
    /// names) holds at most; the oldest go first when one is full.
    pub max_cache_entries: usize,
    /// How long a negative answer (NXDOMAIN, no records) is cached,
    /// clamped to [`MIN_CACHE_TTL`] ..= [`MAX_CACHE_TTL`].
    pub negative_ttl: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            server: SocketAddr::from((Ipv4Addr::LOCALHOST, 53)),
            cymru: true,
            ptr: true,
            rate_per_sec: 50,
            timeout: Duration::from_secs(2),
            max_cache_entries: 100_000,
            negative_ttl: Duration::from_secs(300),
        }
    }
}

impl DnsConfig {
    /// Checks every setting and reports all problems at once, each with
    /// the value and what to do.
    pub fn validate(&self) -> Result<(), DnsError> {
        let mut problems = Vec::new();
        if self.server.port() == 0 {
            problems.push(format!(
                "server {}: port 0 cannot be queried; give the DNS server's port (usually 53)",
                self.server
            ));
        }
        if self.server.ip().is_unspecified() {
            problems.push(format!(
                "server {}: an unspecified address cannot be queried; give the DNS server's address",
                self.server
            ));
        }
        if self.rate_per_sec == 0 {
            problems.push(
                "rate_per_sec 0: no query could ever be sent; use a positive rate, \
                 or turn cymru and ptr off to disable DNS enrichment"
                    .to_string(),
            );
        }
        if self.timeout.is_zero() {
            problems.push(
                "timeout 0s: every query would fail; use a positive timeout such as 2s".to_string(),
            );
        }
        if self.max_cache_entries == 0 {
            problems.push(
                "max_cache_entries 0: answers could not be kept; use a positive size such as 100000"
                    .to_string(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DnsError::InvalidConfig { problems })
        }
    }
}

/// One Team Cymru origin answer:
/// `ASN [ASN ...] | prefix | country | registry | allocated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CymruOrigin {
    /// Origin ASes of the prefix, in the order given, without duplicates;
    /// never empty. More than one means a multi-origin (MOAS) prefix.
    pub asns: Vec<u32>,
    /// The announced prefix covering the address (host bits cleared).
    pub prefix: IpNet,
    /// Country code of the allocation, as given; may be empty.
    pub country: String,
    /// Regional registry (`apnic`, `ripencc`, ...), as given; may be empty.
    pub registry: String,
    /// Allocation date, as given (`2001-06-25`); may be empty.
    pub allocated: String,
}

impl CymruOrigin {
    /// The first origin AS.
    pub fn asn(&self) -> Option<u32> {
        self.asns.first().copied()
    }
}

/// Errors of DNS enrichment.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// One or more settings cannot work.
    #[error("invalid DNS enrichment settings: {}", problems.join("; "))]
    InvalidConfig {
        /// Each problem, naming the setting, its value and a fix.
        problems: Vec<String>,
    },
    /// hickory-resolver refused to build a resolver.
    #[error("cannot set up a DNS resolver for {server}: {detail}")]
    Resolver {
        /// The configured server.
        server: SocketAddr,
        /// hickory's reason.
        detail: String,
    },
    /// A TXT text is not a Team Cymru origin line.
    #[error(
        "malformed Team Cymru TXT record {text:?}: {reason}; expected \
         \"ASN [ASN ...] | prefix | country | registry | allocated\" \
         (is the configured DNS server answering for origin.asn.cymru.com?)"
    )]
    MalformedTxt {
        /// The text (at most 200 characters of it).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Team Cymru answer names a prefix that does not hold the address
    /// that was asked about.
    #[error(
        "Team Cymru answer for {addr} names prefix {prefix}, which does not contain {addr}: \
         the DNS server at {server} answered for the wrong address; check that it forwards \
         origin.asn.cymru.com faithfully"
    )]
    PrefixMismatch {
        /// The address asked about.
        addr: IpAddr,
        /// The prefix the answer gave.
        prefix: IpNet,
        /// The configured server.
        server: SocketAddr,
    },
    /// The server did not answer in time.
    #[error(
        "DNS query for {name} to {server} got no answer within {timeout:?}: check that a DNS \
         server listens on {server} (the dns server setting), or raise the dns timeout"
    )]
    Timeout {
        /// The query name.
        name: String,
        /// The configured server.
        server: SocketAddr,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The query failed for another reason (SERVFAIL, REFUSED, I/O, ...).
    #[error("DNS query for {name} to {server} failed: {detail}; check the DNS server at {server}")]
    Query {
        /// The query name.
        name: String,
        /// The configured server.
        server: SocketAddr,
        /// hickory's reason.
        detail: String,
    },
    /// The query budget of this second is spent; nothing was sent.
    #[error(
        "DNS rate limit of {rate_per_sec}/s reached, no query sent for {addr}: retry later, \
         use Enricher::request (which waits its turn), or raise dns rate_per_sec"
    )]
    RateLimited {
        /// The address that was to be looked up.
        addr: IpAddr,
        /// The configured rate.
        rate_per_sec: u32,
    },
}

/// Counters of an [`Enricher`] since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DnsStats {
    /// Queries handed to the DNS server.
    pub queries: u64,
    /// [`Enricher::origin`] / [`Enricher::ptr`] calls answered from the
    /// cache (positive or negative) without a query.
    pub cache_hits: u64,
    /// Queries that brought a usable record.
    pub answers: u64,
    /// Queries answered NXDOMAIN or with no record of the asked type.
    pub nxdomain: u64,
    /// Queries that failed: timeout, server error, malformed answer.
    pub failures: u64,
    /// Direct lookups refused because the rate limit was reached.
    pub rate_limited: u64,
    /// Background lookups dropped because the queue was full (or no tokio
    /// runtime was there to run them).
    pub dropped: u64,
}

/// The TXT name of Team Cymru's origin lookup for `addr`, with the final
/// dot: `54.39.158.219.origin.asn.cymru.com.` for 219.158.39.54, the 32
/// reversed nibbles followed by `origin6.asn.cymru.com.` for IPv6. An
/// IPv4-mapped IPv6 address is treated as its IPv4 address.
pub fn cymru_query_name(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("{}origin.asn.cymru.com.", reversed_octets(v4)),
        IpAddr::V6(v6) => format!("{}origin6.asn.cymru.com.", reversed_nibbles(v6)),
    }
}

/// The PTR name for `addr`, with the final dot:
/// `54.39.158.219.in-addr.arpa.` or the 32 reversed nibbles followed by
/// `ip6.arpa.`. An IPv4-mapped IPv6 address is treated as its IPv4 address.
pub fn ptr_query_name(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("{}in-addr.arpa.", reversed_octets(v4)),
        IpAddr::V6(v6) => format!("{}ip6.arpa.", reversed_nibbles(v6)),
    }
}

fn reversed_octets(addr: Ipv4Addr) -> String {
    let [a, b, c, d] = addr.octets();
    format!("{d}.{c}.{b}.{a}.")
}

fn reversed_nibbles(addr: Ipv6Addr) -> String {
    let mut out = String::with_capacity(64);
    for byte in addr.octets().iter().rev() {
        out.push(hex_digit(byte & 0x0f));
        out.push('.');
        out.push(hex_digit(byte >> 4));
        out.push('.');
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

/// Whether `addr` lies in space that no registry attributes to an AS
/// (`tumen_core::is_unattributable`, which inference uses too).
pub use tumen_core::is_unattributable;

/// Parses one Team Cymru origin text such as
/// `4837 | 219.158.0.0/17 | CN | apnic | 2001-06-25`. Several origin ASes
/// are separated by spaces (`4837 9929 | ...`), an `AS` prefix on a number
/// is accepted, spaces around fields and surrounding quotes are ignored,
/// and trailing fields may be empty or missing. Anything else is a
/// [`DnsError::MalformedTxt`] that quotes the text; this never panics.
pub fn parse_cymru_txt(txt: &str) -> Result<CymruOrigin, DnsError> {
    let malformed = |reason: String| DnsError::MalformedTxt {
        text: quote_prefix(txt),
        reason,
    };
    if txt.len() > MAX_TXT_LEN {
        return Err(malformed(format!(
            "{} bytes long, more than the {MAX_TXT_LEN} a Team Cymru line can be",
            txt.len()
        )));
    }
    if let Some(c) = txt.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(malformed(format!("contains the control character {c:?}")));
    }
    let body = txt.trim();
    let body = body
        .strip_prefix('"')
        .and_then(|b| b.strip_suffix('"'))
        .unwrap_or(body);
    let fields: Vec<&str> = body.split('|').map(str::trim).collect();
    if fields.len() < 2 {
        return Err(malformed(
            "no '|' separating the origin ASes from the prefix".to_string(),
        ));
    }
    if fields.len() > 5 {
        return Err(malformed(format!(
            "{} '|'-separated fields, at most 5 expected",
            fields.len()
        )));
    }

    let mut asns = Vec::new();
    for token in fields[0].split_whitespace() {
        let digits = token
            .strip_prefix("AS")
            .or_else(|| token.strip_prefix("as"))
            .unwrap_or(token);
        let asn: u32 = digits.parse().map_err(|_| {
            malformed(format!(
                "origin AS {token:?} is not a number from 1 to 4294967295"
            ))
        })?;
        if asn == 0 {
            return Err(malformed(
                "origin AS 0 is reserved, not an origin".to_string(),
            ));
        }
        if !asns.contains(&asn) {
            asns.push(asn);
        }
    }
    if asns.is_empty() {
        return Err(malformed("no origin AS before the first '|'".to_string()));
    }

    let prefix_text = fields[1];
    if !prefix_text.contains('/') {
        return Err(malformed(format!("prefix {prefix_text:?} has no /length")));
    }
    let prefix: IpNet = prefix_text
        .parse()
        .map_err(|_| malformed(format!("prefix {prefix_text:?} is not an IP prefix")))?;
    let field = |i: usize| fields.get(i).map(|s| (*s).to_string()).unwrap_or_default();
    Ok(CymruOrigin {
        asns,
        prefix: prefix.trunc(),
        country: field(2),
        registry: field(3),
        allocated: field(4),
    })
}

/// The start of `text`, short enough to put in an error message.
fn quote_prefix(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_LEN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.clamp(MIN_CACHE_TTL, MAX_CACHE_TTL)
}

/// A map whose entries expire, bounded in size: when full it first drops
/// expired entries (at most once per [`SWEEP_INTERVAL`]), then the oldest
/// inserted ones.
struct TtlCache<K, V> {
    map: HashMap<K, Slot<V>>,
    order: BTreeMap<u64, K>,
    next_seq: u64,
    capacity: usize,
    last_sweep: Option<Instant>,
}

struct Slot<V> {
    value: V,
    expires: Instant,
    seq: u64,
}

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            last_sweep: None,
        }
    }

    /// The live value for `key`; an expired entry is removed.
    fn get(&mut self, key: &K, now: Instant) -> Option<&V> {
        let expired = match self.map.get(key) {
            None => return None,
            Some(slot) => slot.expires <= now,
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get(key).map(|slot| &slot.value)
    }

    fn contains_live(&self, key: &K, now: Instant) -> bool {
        self.map.get(key).is_some_and(|slot| slot.expires > now)
    }

    fn remove(&mut self, key: &K) {
        if let Some(slot) = self.map.remove(key) {
            self.order.remove(&slot.seq);
        }
    }

    fn insert(&mut self, key: K, value: V, expires: Instant, now: Instant) {
        self.remove(&key);
        if self.map.len() >= self.capacity {
            self.make_room(now);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.map.insert(
            key,
            Slot {
                value,
                expires,
                seq,
            },
        );
    }

    fn make_room(&mut self, now: Instant) {
        let sweep_due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_INTERVAL);
        if sweep_due {
            self.last_sweep = Some(now);
            let order = &mut self.order;
            self.map.retain(|_, slot| {
                let live = slot.expires > now;
                if !live {
                    order.remove(&slot.seq);
                }
                live
            });
        }
        while self.map.len() >= self.capacity {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A token bucket: `rate` tokens a second, at most `rate` in store.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate_per_sec: u32, now: Instant) -> Self {
        let rate = f64::from(rate_per_sec.max(1));
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Origin,
    Ptr,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Origin => "origin",
            Kind::Ptr => "ptr",
        }
    }
}

struct Caches {
    /// Origin answers by address; `None` is a cached negative answer.
    origins: TtlCache<IpAddr, Option<Arc<CymruOrigin>>>,
    /// Positive origin answers by their prefix, for [`Enricher::cached_asn`]
    /// of other addresses inside it.
    prefixes: TtlCache<IpNet, Arc<CymruOrigin>>,
    /// PTR answers by address; `None` is a cached negative answer.
    ptrs: TtlCache<IpAddr, Option<String>>,
    /// Background lookups queued or running.
    in_flight: HashSet<(Kind, IpAddr)>,
}

impl Caches {
    /// The live origin cached for `addr` itself: `Some(None)` for a
    /// cached negative answer, `None` when nothing is cached.
    fn origin(&mut self, addr: IpAddr, now: Instant) -> Option<Option<Arc<CymruOrigin>>> {
        self.origins.get(&addr, now).cloned()
    }

    /// The live origin of the longest cached prefix holding `addr`.
    fn covering(&mut self, addr: IpAddr, now: Instant) -> Option<Arc<CymruOrigin>> {
        if self.prefixes.len() == 0 {
            return None;
        }
        let max_len = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (0..=max_len).rev().find_map(|len| {
            let net = IpNet::new(addr, len).ok()?.trunc();
            self.prefixes.get(&net, now).cloned()
        })
    }
}

#[derive(Default)]
struct Counters {
    queries: AtomicU64,
    cache_hits: AtomicU64,
    answers: AtomicU64,
    nxdomain: AtomicU64,
    failures: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A queued background lookup.
#[derive(Debug)]
struct Job {
    addr: IpAddr,
    kinds: Vec<Kind>,
}

struct Inner {
    cfg: DnsConfig,
    resolver: TokioResolver,
    caches: Mutex<Caches>,
    bucket: Mutex<TokenBucket>,
    counters: Counters,
    queue: mpsc::Sender<Job>,
    /// The receiving end, until the worker is started by the first
    /// [`Enricher::request`] made inside a tokio runtime.
    worker_rx: Mutex<Option<mpsc::Receiver<Job>>>,
}

/// Locks a mutex, ignoring poisoning: the guarded data stays consistent
/// across every panic point (there are none while it is held).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Looks up and caches Team Cymru origins and PTR names of hop addresses
/// against one DNS server. Cheap to clone (an `Arc` inside); all clones
/// share the cache, the rate limit, the counters and the background
/// worker. Lookups need a tokio runtime; building does not. Cache expiry
/// and the rate limit follow the wall clock (`std::time::Instant`, as
/// hickory's TTLs do), so tokio's paused test time does not move them.
#[derive(Clone)]
pub struct Enricher {
    inner: Arc<Inner>,
}

impl fmt::Debug for Enricher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enricher")
            .field("server", &self.inner.cfg.server)
            .field("cymru", &self.inner.cfg.cymru)
            .field("ptr", &self.inner.cfg.ptr)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Enricher {
    /// Builds the enricher and its resolver for `cfg.server` only, after
    /// [`DnsConfig::validate`]. Sends nothing.
    pub fn new(cfg: DnsConfig) -> Result<Self, DnsError> {
        cfg.validate()?;
        let resolver = build_resolver(&cfg)?;
        let (queue, rx) = mpsc::channel(REQUEST_QUEUE_CAPACITY);
        let now = Instant::now();
        let inner = Inner {
            caches: Mutex::new(Caches {
                origins: TtlCache::new(cfg.max_cache_entries),
                prefixes: TtlCache::new(cfg.max_cache_entries),
                ptrs: TtlCache::new(cfg.max_cache_entries),
                in_flight: HashSet::new(),
            }),
            bucket: Mutex::new(TokenBucket::new(cfg.rate_per_sec, now)),
            counters: Counters::default(),
            queue,
            worker_rx: Mutex::new(Some(rx)),
            resolver,
            cfg,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The settings this enricher was built with.
    pub fn config(&self) -> &DnsConfig {
        &self.inner.cfg
    }

    /// The Team Cymru origin of `addr`, from the cache or one TXT query.
    /// `Ok(None)` when the answer is NXDOMAIN or empty (cached for
    /// [`DnsConfig::negative_ttl`]), when `addr` is unattributable, or when
    /// `cymru` is off; these last two send nothing. When the rate limit is
    /// reached, fails at once with [`DnsError::RateLimited`]. Of several TXT
    /// records the one with the longest prefix wins (ASes of records with
    /// that same prefix are merged).
    pub async fn origin(&self, addr: IpAddr) -> Result<Option<CymruOrigin>, DnsError> {
        let addr = addr.to_canonical();
        if !self.inner.cfg.cymru || is_unattributable(addr) {
            return Ok(None);
        }
        if let Some(hit) = lock(&self.inner.caches).origin(addr, Instant::now()) {
            bump(&self.inner.counters.cache_hits);
            return Ok(hit.map(|o| (*o).clone()));
        }
        self.inner.take_token(addr)?;
        self.inner
            .query_origin(addr)
            .await
            .map(|o| o.map(|o| (*o).clone()))
    }

    /// The reverse name of `addr` without the final dot, from the cache or
    /// one PTR query; the same rules as [`Enricher::origin`]. Of several
    /// PTR records the first is taken.
    pub async fn ptr(&self, addr: IpAddr) -> Result<Option<String>, DnsError> {
        let addr = addr.to_canonical();
        if !self.inner.cfg.ptr || is_unattributable(addr) {
            return Ok(None);
        }
        let hit = lock(&self.inner.caches)
            .ptrs
            .get(&addr, Instant::now())
            .cloned();
        if let Some(hit) = hit {
            bump(&self.inner.counters.cache_hits);
            return Ok(hit);
        }
        self.inner.take_token(addr)?;
        self.inner.query_ptr(addr).await
    }

    /// The first origin AS of `addr` if the cache knows it, without I/O:
    /// from an unexpired answer for `addr` itself, or else from the longest
    /// unexpired cached Team Cymru prefix that holds `addr`.
    pub fn cached_asn(&self, addr: IpAddr) -> Option<u32> {
        let addr = addr.to_canonical();
        if is_unattributable(addr) {
            return None;
        }
        let now = Instant::now();
        let mut caches = lock(&self.inner.caches);
        match caches.origin(addr, now) {
            Some(known) => known.and_then(|o| o.asn()),
            None => caches.covering(addr, now).and_then(|o| o.asn()),
        }
    }

    /// The whole cached origin of `addr`, as [`Enricher::cached_asn`] finds it.
    pub fn cached_origin(&self, addr: IpAddr) -> Option<CymruOrigin> {
        let addr = addr.to_canonical();
        if is_unattributable(addr) {
            return None;
        }
        let now = Instant::now();
        let mut caches = lock(&self.inner.caches);
        match caches.origin(addr, now) {
            Some(known) => known.map(|o| (*o).clone()),
            None => caches.covering(addr, now).map(|o| (*o).clone()),
        }
    }

    /// The reverse name of `addr` if an unexpired answer is cached.
    pub fn cached_ptr(&self, addr: IpAddr) -> Option<String> {
        let addr = addr.to_canonical();
        lock(&self.inner.caches)
            .ptrs
            .get(&addr, Instant::now())
            .cloned()
            .flatten()
    }

    /// Queues background lookups of `addr` (origin if `cymru` is on, PTR if
    /// `ptr` is on) and returns at once. A lookup is skipped when its answer
    /// is already cached (for origins: also when a cached prefix holds
    /// `addr`, since [`Enricher::cached_asn`] answers from it) or when it is
    /// already queued or running. The worker task waits for the rate limit
    /// instead of failing. When the queue is full, or when called outside a
    /// tokio runtime before the worker started, the request is dropped and
    /// counted in [`DnsStats::dropped`].
    pub fn request(&self, addr: IpAddr) {
        let addr = addr.to_canonical();
        let cfg = &self.inner.cfg;
        if is_unattributable(addr) || !(cfg.cymru || cfg.ptr) {
            return;
        }
        if !self.ensure_worker() {
            bump(&self.inner.counters.dropped);
            return;
        }
        let now = Instant::now();
        let kinds = {
            let mut caches = lock(&self.inner.caches);
            let mut kinds = Vec::with_capacity(2);
            if cfg.cymru
                && !caches.in_flight.contains(&(Kind::Origin, addr))
                && caches.origin(addr, now).is_none()
                && caches.covering(addr, now).is_none()
            {
                kinds.push(Kind::Origin);
            }
            if cfg.ptr
                && !caches.in_flight.contains(&(Kind::Ptr, addr))
                && !caches.ptrs.contains_live(&addr, now)
            {
                kinds.push(Kind::Ptr);
            }
            for kind in &kinds {
                caches.in_flight.insert((*kind, addr));
            }
            kinds
        };
        if kinds.is_empty() {
            return;
        }
        if let Err(err) = self.inner.queue.try_send(Job { addr, kinds }) {
            let job = match err {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job
                }
            };
            let mut caches = lock(&self.inner.caches);
            for kind in job.kinds {
                caches.in_flight.remove(&(kind, job.addr));
            }
            drop(caches);
            bump(&self.inner.counters.dropped);
            tracing::debug!(%addr, "DNS request queue full; lookup dropped");
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> DnsStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DnsStats {
            queries: get(&c.queries),
            cache_hits: get(&c.cache_hits),
            answers: get(&c.answers),
            nxdomain: get(&c.nxdomain),
            failures: get(&c.failures),
            rate_limited: get(&c.rate_limited),
            dropped: get(&c.dropped),
        }
    }

    /// Starts the background worker if it is not running yet; false when
    /// there is no tokio runtime to start it on.
    fn ensure_worker(&self) -> bool {
        let mut slot = lock(&self.inner.worker_rx);
        if slot.is_none() {
            return true;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("Enricher::request called outside a tokio runtime; lookup dropped");
            return false;
        };
        if let Some(rx) = slot.take() {
            let span = tracing::info_span!("dns_worker", server = %self.inner.cfg.server);
            handle.spawn(worker(Arc::downgrade(&self.inner), rx).instrument(span));
        }
        true
    }
}

/// Builds a resolver that asks `cfg.server` and nothing else: UDP first,
/// TCP for truncated answers, hickory's cache and hosts file off, one
/// attempt bounded by `cfg.timeout`.
fn build_resolver(cfg: &DnsConfig) -> Result<TokioResolver, DnsError> {
    let mut server = NameServerConfig::udp_and_tcp(cfg.server.ip());
    for connection in &mut server.connections {
        connection.port = cfg.server.port();
    }
    let config = ResolverConfig::from_name_servers(vec![server]);
    let mut opts = ResolverOpts::default();
    opts.timeout = cfg.timeout;
    // One try: the UDP exchange already retransmits within the timeout, and
    // a retry after a timeout would double the time a caller waits.
    opts.attempts = 0;
    // Our own cache decides how long answers live (see the module docs).
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.num_concurrent_reqs = 1;
    opts.try_tcp_on_error = false;
    hickory_resolver::Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| DnsError::Resolver {
            server: cfg.server,
            detail: e.to_string(),
        })
}

/// What one query brought back, before interpretation.
enum Reply {
    Records(Vec<Record>),
    Negative,
}

impl Inner {
    fn take_token(&self, addr: IpAddr) -> Result<(), DnsError> {
        let taken = lock(&self.bucket).try_take(Instant::now());
        taken.map_err(|_| {
            bump(&self.counters.rate_limited);
            DnsError::RateLimited {
                addr,
                rate_per_sec: self.cfg.rate_per_sec,
            }
        })
    }

    /// Waits until the rate limit allows one more query.
    async fn wait_token(&self) {
        loop {
            let wait = match lock(&self.bucket).try_take(Instant::now()) {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Sends one query and sorts the outcome into records, a negative
    /// answer or an error; counts it.
    async fn query(&self, name: &str, record_type: RecordType) -> Result<Reply, DnsError> {
        let server = self.cfg.server;
        let fqdn = Name::from_ascii(name).map_err(|e| DnsError::Query {
            name: name.to_string(),
            server,
            detail: format!("invalid query name: {e}"),
        })?;
        bump(&self.counters.queries);
        let outcome =
            tokio::time::timeout(self.cfg.timeout, self.resolver.lookup(fqdn, record_type)).await;
        let timeout = || DnsError::Timeout {
            name: name.to_string(),
            server,
            timeout: self.cfg.timeout,
        };
        match outcome {
            Err(_) | Ok(Err(NetError::Timeout)) => {
                bump(&self.counters.failures);
                Err(timeout())
            }
            Ok(Err(NetError::Dns(HickoryDnsError::NoRecordsFound(_)))) => {
                bump(&self.counters.nxdomain);
                Ok(Reply::Negative)
            }
            Ok(Err(e)) => {
                bump(&self.counters.failures);
                Err(DnsError::Query {
                    name: name.to_string(),
                    server,
                    detail: e.to_string(),
                })
            }
            Ok(Ok(lookup)) => Ok(Reply::Records(lookup.answers().to_vec())),
        }
    }

    fn negative_expiry(&self, now: Instant) -> Instant {
        now + clamp_ttl(self.cfg.negative_ttl)
    }

    async fn query_origin(&self, addr: IpAddr) -> Result<Option<Arc<CymruOrigin>>, DnsError> {
        let name = cymru_query_name(addr);
        let records = match self.query(&name, RecordType::TXT).await? {
            Reply::Records(records) => records,
            Reply::Negative => {
                self.cache_origin(addr, None, None);
                return Ok(None);
            }
        };
        let mut texts = Vec::new();
        let mut ttl: Option<u32> = None;
        for record in &records {
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
            if let RData::TXT(txt) = &record.data {
                let bytes: Vec<u8> = txt
                    .txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect();
                texts.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        if texts.is_empty() {
            bump(&self.counters.nxdomain);
            self.cache_origin(addr, None, None);
            return Ok(None);
        }
        let mut best: Option<CymruOrigin> = None;
        let mut first_error = None;
        for text in &texts {
            match parse_cymru_txt(text) {
                Ok(origin) => best = Some(merge_best(best, origin)),
                Err(e) => {
                    tracing::debug!(%addr, error = ?e.to_string(), "ignoring a malformed Team Cymru record");
                    first_error.get_or_insert(e);
                }
            }
        }
        let origin = match (best, first_error) {
            (Some(origin), _) => origin,
            (None, Some(e)) => {
                bump(&self.counters.failures);
                return Err(e);
            }
            (None, None) => {
                bump(&self.counters.failures);
                return Err(DnsError::MalformedTxt {
                    text: String::new(),
                    reason: "no TXT text in the answer".to_string(),
                });
            }
        };
        if !origin.prefix.contains(&addr) {
            bump(&self.counters.failures);
            return Err(DnsError::PrefixMismatch {
                addr,
                prefix: origin.prefix,
                server: self.cfg.server,
            });
        }
        bump(&self.counters.answers);
        let origin = Arc::new(origin);
        let ttl = Duration::from_secs(u64::from(ttl.unwrap_or(0)));
        self.cache_origin(addr, Some(origin.clone()), Some(ttl));
        Ok(Some(origin))
    }

    /// Caches an origin answer; `ttl` `None` means a negative answer.
    fn cache_origin(&self, addr: IpAddr, origin: Option<Arc<CymruOrigin>>, ttl: Option<Duration>) {
        let now = Instant::now();
        let expires = match ttl {
            Some(ttl) => now + clamp_ttl(ttl),
            None => self.negative_expiry(now),
        };
        let mut caches = lock(&self.caches);
        if let Some(origin) = &origin {
            caches
                .prefixes
                .insert(origin.prefix, origin.clone(), expires, now);
        }
        caches.origins.insert(addr, origin, expires, now);
    }

    async fn query_ptr(&self, addr: IpAddr) -> Result<Option<String>, DnsError> {
        let name = ptr_query_name(addr);
        let records = match self.query(&name, RecordType::PTR).await? {
            Reply::Records(records) => records,
            Reply::Negative => {
                self.cache_ptr(addr, None, None);
                return Ok(None);
            }
        };
        let mut ttl: Option<u32> = None;
        let mut target = None;
        for record in &records {
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
            if let RData::PTR(ptr) = &record.data {
                if target.is_none() {
                    let text = ptr.0.to_ascii();
                    let text = text.strip_suffix('.').unwrap_or(&text).to_string();
                    if !text.is_empty() {
                        target = Some(text);
                    }
                }
            }
        }
        match target {
            Some(target) => {
                bump(&self.counters.answers);
                let ttl = Duration::from_secs(u64::from(ttl.unwrap_or(0)));
                self.cache_ptr(addr, Some(target.clone()), Some(ttl));
                Ok(Some(target))
            }
            None => {
                bump(&self.counters.nxdomain);
                self.cache_ptr(addr, None, None);
                Ok(None)
            }
        }
    }

    fn cache_ptr(&self, addr: IpAddr, target: Option<String>, ttl: Option<Duration>) {
        let now = Instant::now();
        let expires = match ttl {
            Some(ttl) => now + clamp_ttl(ttl),
            None => self.negative_expiry(now),
        };
        lock(&self.caches).ptrs.insert(addr, target, expires, now);
    }

    /// One background lookup: skipped if a direct lookup cached the answer
    /// meanwhile; errors are logged, not cached.
    async fn background(&self, kind: Kind, addr: IpAddr) {
        let cached = {
            let now = Instant::now();
            let mut caches = lock(&self.caches);
            match kind {
                Kind::Origin => caches.origin(addr, now).is_some(),
                Kind::Ptr => caches.ptrs.contains_live(&addr, now),
            }
        };
        if !cached {
            let result = match kind {
                Kind::Origin => self.query_origin(addr).await.map(|_| ()),
                Kind::Ptr => self.query_ptr(addr).await.map(|_| ()),
            };
            if let Err(e) = result {
                tracing::debug!(%addr, kind = kind.as_str(), error = ?e.to_string(), "background DNS lookup failed");
            }
        }
        lock(&self.caches).in_flight.remove(&(kind, addr));
    }
}

/// Of two Team Cymru records, the one with the longer prefix; ASes of
/// records with the same prefix are merged.
fn merge_best(best: Option<CymruOrigin>, next: CymruOrigin) -> CymruOrigin {
    let Some(mut best) = best else {
        return next;
    };
    if next.prefix == best.prefix {
        for asn in next.asns {
            if !best.asns.contains(&asn) {
                best.asns.push(asn);
            }
        }
        best
    } else if next.prefix.prefix_len() > best.prefix.prefix_len() {
        next
    } else {
        best
    }
}

/// Takes queued jobs, waits for the rate limit, and runs each lookup in its
/// own task so that a slow server does not hold up the queue. Holds only a
/// weak reference while idle, so it ends when the last [`Enricher`] clone
/// is dropped (the queue closes with it).
async fn worker(inner: Weak<Inner>, mut rx: mpsc::Receiver<Job>) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(job) = job else { break };
                let Some(strong) = inner.upgrade() else { break };
                for kind in job.kinds {
                    strong.wait_token().await;
                    let this = strong.clone();
                    let addr = job.addr;
                    let span = tracing::debug_span!("dns_lookup", %addr, kind = kind.as_str());
                    tasks.spawn(async move { this.background(kind, addr).await }.instrument(span));
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "background DNS lookup task failed");
                }
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "background DNS lookup task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cymru_names_v4_and_v6() {
        assert_eq!(
            cymru_query_name(ip("219.158.39.54")),
            "54.39.158.219.origin.asn.cymru.com."
        );
        assert_eq!(
            cymru_query_name(ip("2001:db8::567:89ab")),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.origin6.asn.cymru.com."
        );
        // IPv4-mapped IPv6 is asked about as IPv4.
        assert_eq!(
            cymru_query_name(ip("::ffff:219.158.39.54")),
            "54.39.158.219.origin.asn.cymru.com."
        );
    }

    #[test]
    fn ptr_names_v4_and_v6() {
        assert_eq!(ptr_query_name(ip("192.0.2.1")), "1.2.0.192.in-addr.arpa.");
        assert_eq!(
            ptr_query_name(ip("2001:db8::567:89ab")),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
        assert_eq!(ptr_query_name(ip("0.0.0.0")), "0.0.0.0.in-addr.arpa.");
    }

    #[test]
    fn parse_single_origin() {
        let o = parse_cymru_txt("4837 | 219.158.0.0/17 | CN | apnic | 2001-06-25").unwrap();
        assert_eq!(
            o,
            CymruOrigin {
                asns: vec![4837],
                prefix: "219.158.0.0/17".parse().unwrap(),
                country: "CN".into(),
                registry: "apnic".into(),
                allocated: "2001-06-25".into(),
            }
        );
        assert_eq!(o.asn(), Some(4837));
    }

    #[test]
    fn parse_multi_origin_extra_spaces_and_quotes() {
        let o = parse_cymru_txt("\"  4837   9929 4837|210.52.109.0/24|CN |  apnic|  \"").unwrap();
        assert_eq!(o.asns, vec![4837, 9929]);
        assert_eq!(o.prefix, "210.52.109.0/24".parse::<IpNet>().unwrap());
        assert_eq!(o.registry, "apnic");
        assert_eq!(o.allocated, "");
    }

    #[test]
    fn parse_empty_and_missing_trailing_fields() {
        let o = parse_cymru_txt("AS131279 | 175.45.176.0/22 |  |  | ").unwrap();
        assert_eq!(o.asns, vec![131279]);
        assert_eq!(o.country, "");
        assert_eq!(o.registry, "");
        let o = parse_cymru_txt("20485 | 188.43.0.0/16").unwrap();
        assert_eq!(o.asns, vec![20485]);
        assert_eq!(o.country, "");
        assert_eq!(o.allocated, "");
    }

    #[test]
    fn parse_v6_prefix_and_host_bits() {
        let o = parse_cymru_txt("4837 | 2408:8000::/24 | CN | apnic | 2010-06-17").unwrap();
        assert_eq!(o.prefix, "2408:8000::/24".parse::<IpNet>().unwrap());
        let o = parse_cymru_txt("4837 | 219.158.39.0/17 | CN | apnic | ").unwrap();
        assert_eq!(o.prefix, "219.158.0.0/17".parse::<IpNet>().unwrap());
    }

    #[test]
    fn parse_garbage_is_an_error_naming_the_text() {
        let cases = [
            "",
            "|",
            "hello world",
            "4837 219.158.0.0/17",
            "x | 219.158.0.0/17 | CN | apnic | 2001",
            "4837 | not-a-prefix | CN",
            "4837 | 219.158.0.1 | CN",
            "4837 | 219.158.0.0/33",
            "0 | 219.158.0.0/17",
            "99999999999 | 219.158.0.0/17",
            " | 219.158.0.0/17 | CN",
            "1 | 10.0.0.0/8 | a | b | c | d",
            "4837 | 219.158.0.0/17\n| CN",
            "\u{0} | ::/0",
        ];
        for case in cases {
            let err = parse_cymru_txt(case).expect_err(case);
            let msg = err.to_string();
            assert!(
                matches!(err, DnsError::MalformedTxt { .. }),
                "{case:?}: {msg}"
            );
            assert!(
                msg.contains(&format!("{case:?}")),
                "{case:?} not named in {msg}"
            );
        }
    }

    #[test]
    fn parse_long_text_is_refused_and_quoted_short() {
        let long = format!("4837 | 219.158.0.0/17 | {}", "x".repeat(5000));
        let msg = parse_cymru_txt(&long).unwrap_err().to_string();
        assert!(msg.contains("more than the 1024"), "{msg}");
        assert!(
            msg.len() < 700,
            "message not shortened: {} bytes",
            msg.len()
        );
    }

    #[test]
    fn parse_never_panics_on_odd_bytes() {
        for s in [
            "||||",
            "é | ::/0",
            "4837 | ::/0 | 🦀 | | ",
            "AS | 1.0.0.0/8",
            "as7 | 1.0.0.0/8",
        ] {
            let _ = parse_cymru_txt(s);
        }
        assert_eq!(parse_cymru_txt("as7 | 1.0.0.0/8").unwrap().asns, vec![7]);
    }

    #[test]
    fn unattributable_ranges() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_unattributable(ip(s)), "{s}");
        }
        for s in [
            "219.158.39.54",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "203.0.113.9",
            "2001:db8::1",
            "2408:8000::1",
        ] {
            assert!(!is_unattributable(ip(s)), "{s}");
        }
    }

    #[test]
    fn ttl_cache_expires_and_evicts_oldest() {
        let t0 = Instant::now();
        let mut c: TtlCache<u32, &str> = TtlCache::new(2);
        c.insert(1, "a", t0 + Duration::from_secs(10), t0);
        c.insert(2, "b", t0 + Duration::from_secs(10), t0);
        c.insert(3, "c", t0 + Duration::from_secs(10), t0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&1, t0), None, "oldest evicted");
        assert_eq!(c.get(&2, t0), Some(&"b"));
        assert_eq!(c.get(&3, t0 + Duration::from_secs(10)), None, "expired");
        assert_eq!(c.len(), 1, "expired entry removed on read");
    }

    #[test]
    fn ttl_cache_full_drops_expired_before_live() {
        let t0 = Instant::now();
        let mut c: TtlCache<u32, u32> = TtlCache::new(2);
        c.insert(1, 1, t0 + Duration::from_secs(100), t0);
        c.insert(2, 2, t0 + Duration::from_secs(1), t0);
        let later = t0 + Duration::from_secs(5);
        c.insert(3, 3, later + Duration::from_secs(100), later);
        assert_eq!(c.get(&1, later), Some(&1), "live old entry kept");
        assert_eq!(c.get(&3, later), Some(&3));
        // Re-inserting a key replaces it and moves it to the young end.
        c.insert(1, 10, later + Duration::from_secs(100), later);
        c.insert(4, 4, later + Duration::from_secs(100), later);
        assert_eq!(c.get(&3, later), None);
        assert_eq!(c.get(&1, later), Some(&10));
    }

    #[test]
    fn token_bucket_bursts_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, t0);
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::from_millis(400));
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_err());
        // Never more than the burst after a long pause.
        let late = t0 + Duration::from_secs(60);
        assert!(b.try_take(late).is_ok());
        assert!(b.try_take(late).is_ok());
        assert!(b.try_take(late).is_err());
    }

    #[test]
    fn invalid_config_names_every_problem() {
        let cfg = DnsConfig {
            server: "0.0.0.0:0".parse().unwrap(),
            rate_per_sec: 0,
            timeout: Duration::ZERO,
            max_cache_entries: 0,
            ..DnsConfig::default()
        };
        let msg = Enricher::new(cfg).unwrap_err().to_string();
        for needle in [
            "port 0",
            "0.0.0.0:0",
            "rate_per_sec 0",
            "timeout 0s",
            "max_cache_entries 0",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from {msg}");
        }
    }

    #[test]
    fn built_without_runtime_and_request_outside_runtime_is_dropped() {
        // Nothing is sent: there is no runtime to send from.
        let e = Enricher::new(DnsConfig::default()).unwrap();
        e.request(ip("192.0.2.1"));
        assert_eq!(e.stats().dropped, 1);
        assert_eq!(e.stats().queries, 0);
        assert_eq!(e.cached_asn(ip("192.0.2.1")), None);
    }

    #[test]
    fn merge_prefers_longest_prefix_and_merges_same_prefix() {
        let a = parse_cymru_txt("4837 | 219.158.0.0/17 | CN | apnic |").unwrap();
        let b = parse_cymru_txt("4808 | 219.158.32.0/20 | CN | apnic |").unwrap();
        let c = parse_cymru_txt("9929 | 219.158.32.0/20 | CN | apnic |").unwrap();
        let best = merge_best(Some(merge_best(Some(a.clone()), b)), c);
        assert_eq!(best.asns, vec![4808, 9929]);
        assert_eq!(best.prefix, "219.158.32.0/20".parse::<IpNet>().unwrap());
        assert_eq!(merge_best(Some(best.clone()), a).prefix, best.prefix);
    }
}
