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

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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

mod cache;
mod error;
mod limiter;
mod parse;

use cache::*;
pub use cache::{MAX_CACHE_TTL, MIN_CACHE_TTL};
pub use error::DnsError;
use limiter::TokenBucket;
use parse::*;
pub use parse::{
    cymru_query_name, is_unattributable, parse_cymru_txt, ptr_query_name, CymruOrigin,
};

/// How many addresses [`Enricher::request`] can have waiting for the
/// background worker; further requests are dropped and counted in
/// [`DnsStats::dropped`].
pub const REQUEST_QUEUE_CAPACITY: usize = 1024;

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
mod tests;
