//! The HTTP/1.1 server loop both Tumen binaries use, hardened for peers
//! that are slow, silent, huge or lying.
//!
//! `axum::serve` has no timer: a client that sends half a request head and
//! then waits holds a connection (and a file descriptor) forever, and a
//! thousand of them stop the server. Here every connection is in one of
//! four phases, and a watchdog closes it when its phase lasts too long:
//!
//! | phase | from | limit |
//! |---|---|---|
//! | `Fresh` | accept | `header_read_timeout` (the first request head must be complete) |
//! | `Head` | first byte of a later request | `header_read_timeout` |
//! | `Busy` | head complete, handler running | none here: handlers bound body reads with [`read_body`] |
//! | `Idle` | response produced | `idle_timeout` (keep-alive) |
//!
//! hyper's own header timer is not used: it also runs while a keep-alive
//! connection waits for its next request, which would make the idle
//! timeout the header timeout.
//!
//! Connections are capped (`max_connections`). At the cap, a new
//! connection makes the server close the connection that has waited
//! longest without a request being handled (a slow head or a keep-alive
//! idler); when every connection is busy, the new one gets a canned 503
//! and is closed. Accept errors (`EMFILE` and the like) are counted and
//! backed off, and logged at most once every ten seconds.
//!
//! [`read_body`] reads a request body with a deadline, a size limit and a
//! share of a global [`BodyBudget`], so that all bodies in flight together
//! never hold more than the budget.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

/// Limits of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send a whole request head: from accept for the first
    /// request, from its first byte for later ones (and for a TLS
    /// handshake).
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Largest request head (start line and headers); larger gets 431.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(4096),
            max_header_bytes: 64 << 10,
        }
    }
}

/// The soft limit on open files of this process, from `/proc/self/limits`
/// (`None` when it cannot be read or is unlimited).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `wanted`, but at most three quarters of the open-files limit, so that
/// connections can never take the descriptors the store, the logs and
/// the resolver need (at least 16).
pub fn default_max_connections(wanted: usize) -> usize {
    match open_files_limit() {
        Some(n) => wanted.min(usize::try_from(n / 4 * 3).unwrap_or(usize::MAX).max(16)),
        None => wanted,
    }
}

/// Pending connections the kernel queues before `accept` (std's 128 is
/// soon full when a thousand agents reconnect at once; the kernel caps
/// it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening socket with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`,
/// as std and tokio set it).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Counters of one server, for the binary's `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Accepted at the cap: the longest-waiting unbusy connection was closed.
    pub evicted: AtomicU64,
    /// Accepted at the cap with every connection busy: answered 503, closed.
    pub refused: AtomicU64,
    /// Closed because a request head (or TLS handshake) took too long.
    pub header_timeouts: AtomicU64,
    /// Keep-alive connections closed after `idle_timeout`.
    pub idle_closed: AtomicU64,
    /// `accept(2)` failures (`EMFILE`, `ENFILE`, `ENOBUFS`...).
    pub accept_errors: AtomicU64,
    /// TLS handshakes (or other [`Handshake`]s) that failed.
    pub handshake_failures: AtomicU64,
}

/// Where connections come from: a [`TcpListener`], or in tests one that
/// fails on purpose.
pub trait Accept: Send {
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// Turns an accepted TCP stream into the stream HTTP runs over: itself,
/// or a TLS session.
pub trait Handshake: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl Future<Output = std::io::Result<Self::Io>> + Send + 'static;
}

/// Plain HTTP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Handshake for Plain {
    type Io = TcpStream;
    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl Future<Output = std::io::Result<TcpStream>> + Send + 'static {
        std::future::ready(Ok(tcp))
    }
}

const FRESH: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;

/// What the server and the watchdog know of one connection.
#[derive(Debug)]
struct Conn {
    phase: AtomicU8,
    /// Milliseconds since the server's epoch when the phase began.
    since: AtomicU64,
    close: Notify,
}

#[derive(Debug)]
struct Registry {
    /// tokio's clock, so that tests with a paused clock see the limits.
    epoch: tokio::time::Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the unbusy connection that has waited longest to close;
    /// false when every connection is busy.
    fn evict_one(&self) -> bool {
        let conns = self.lock();
        let victim = conns
            .values()
            .filter(|c| c.phase.load(Ordering::Relaxed) != BUSY)
            .min_by_key(|c| c.since.load(Ordering::Relaxed));
        match victim {
            Some(c) => {
                // Marked busy so that a second eviction picks another.
                c.phase.store(BUSY, Ordering::Relaxed);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The stream with the connection's phase kept up to date: a byte read
/// while idle starts a new request head.
struct Tracked<T> {
    inner: T,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let c = &self.conn;
            if c.phase
                .compare_exchange(IDLE, HEAD, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                c.since.store(self.registry.now(), Ordering::Relaxed);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// What a server answers, at the cap, to a connection it cannot take.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Type: text/plain\r\nContent-Length: 30\r\nConnection: close\r\n\r\n\
too many connections: retry\r\n\r\n";

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish for at most `grace` and returns.
pub async fn serve<H: Handshake, L: Accept>(
    mut listener: L,
    handshake: H,
    router: Router,
    limits: Limits,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) {
    let registry = Arc::new(Registry {
        epoch: tokio::time::Instant::now(),
        conns: Mutex::default(),
    });
    let handshake = Arc::new(handshake);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_id = 0u64;
    let mut backoff = Duration::from_millis(5);
    let mut last_log: Option<Instant> = None;
    let mut unlogged = 0u64;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            r = Accept::accept(&mut listener) => r,
            // Reap finished connection tasks as we go.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => {
                backoff = Duration::from_millis(5);
                c
            }
            Err(e) => {
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                unlogged += 1;
                if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(error = %e, failures = unlogged, "accept failed; backing off");
                    unlogged = 0;
                    last_log = Some(Instant::now());
                }
                // Out of descriptors: an idle connection gives one back.
                if e.raw_os_error() == Some(24) || e.raw_os_error() == Some(23) {
                    registry.evict_one();
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let open = registry.lock().len();
        if open >= limits.max_connections {
            if registry.evict_one() {
                stats.evicted.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                let _ = tcp.try_write(BUSY_RESPONSE);
                drop(tcp);
                continue;
            }
        }
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(FRESH),
            since: AtomicU64::new(registry.now()),
            close: Notify::new(),
        });
        next_id += 1;
        let id = next_id;
        registry.lock().insert(id, conn.clone());
        stats.open.fetch_add(1, Ordering::Relaxed);
        let task = connection(
            ConnCtx {
                id,
                conn,
                registry: registry.clone(),
                stats: stats.clone(),
                limits: limits.clone(),
                stop: stop_rx.clone(),
                peer,
            },
            handshake.clone(),
            tcp,
            router.clone(),
        );
        tasks.spawn(task);
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            open = tasks.len(),
            "grace period over: closing connections with requests still open"
        );
        tasks.shutdown().await;
    }
}

struct ConnCtx {
    id: u64,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    stats: Arc<Stats>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    peer: SocketAddr,
}

impl Drop for ConnCtx {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
    Evicted,
}

/// Resolves when the connection's phase has lasted too long, or when the
/// server evicts it.
async fn watchdog(ctx: &ConnCtx) -> Expired {
    let l = &ctx.limits;
    let tick = (l.header_read_timeout.min(l.idle_timeout) / 5)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    loop {
        tokio::select! {
            () = ctx.conn.close.notified() => return Expired::Evicted,
            () = tokio::time::sleep(tick) => {}
        }
        let phase = ctx.conn.phase.load(Ordering::Relaxed);
        let age = Duration::from_millis(
            ctx.registry
                .now()
                .saturating_sub(ctx.conn.since.load(Ordering::Relaxed)),
        );
        match phase {
            FRESH | HEAD if age >= l.header_read_timeout => return Expired::Header,
            IDLE if age >= l.idle_timeout => return Expired::Idle,
            _ => {}
        }
    }
}

/// Marks the connection busy while a handler runs, idle after.
struct BusyGuard {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.conn
            .since
            .store(self.registry.now(), Ordering::Relaxed);
        self.conn.phase.store(IDLE, Ordering::Relaxed);
    }
}

async fn connection<H: Handshake>(ctx: ConnCtx, handshake: Arc<H>, tcp: TcpStream, router: Router) {
    let _ = tcp.set_nodelay(true);
    // The handshake counts as reading the head.
    let io = tokio::select! {
        r = handshake.handshake(tcp) => match r {
            Ok(io) => io,
            Err(e) => {
                ctx.stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %ctx.peer, error = ?e.to_string(), "handshake failed");
                return;
            }
        },
        why = watchdog(&ctx) => {
            if why == Expired::Header {
                ctx.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(peer = %ctx.peer, ?why, "closed during the handshake");
            return;
        }
    };
    let io = TokioIo::new(Tracked {
        inner: io,
        conn: ctx.conn.clone(),
        registry: ctx.registry.clone(),
    });
    let (conn2, registry2) = (ctx.conn.clone(), ctx.registry.clone());
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        conn2.phase.store(BUSY, Ordering::Relaxed);
        let guard = BusyGuard {
            conn: conn2.clone(),
            registry: registry2.clone(),
        };
        let mut router = router.clone();
        async move {
            let resp = tower_service::Service::call(&mut router, req).await;
            drop(guard);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .max_header_size(ctx.limits.max_header_bytes.max(1024))
        .max_buf_size(ctx.limits.max_header_bytes.max(8192));
    let http = builder.serve_connection(io, service);
    tokio::pin!(http);
    let mut stop = ctx.stop.clone();
    let mut draining = *stop.borrow();
    if draining {
        http.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %ctx.peer, error = ?e.to_string(), "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    http.as_mut().graceful_shutdown();
                }
            }
            why = watchdog(&ctx) => {
                match why {
                    Expired::Header => ctx.stats.header_timeouts.fetch_add(1, Ordering::Relaxed),
                    Expired::Idle => ctx.stats.idle_closed.fetch_add(1, Ordering::Relaxed),
                    Expired::Evicted => 0,
                };
                tracing::debug!(peer = %ctx.peer, ?why, "connection closed by the server");
                // Dropping the connection closes the socket; nothing is
                // being handled on it (the watchdog never fires while busy).
                return;
            }
        }
    }
}

/// A share of the memory all request bodies in flight may hold together.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Bytes of the budget held by bodies now.
    pub fn in_use(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    pub fn total(&self) -> usize {
        self.total
    }

    fn take(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(n).ok()?;
        self.bytes.clone().try_acquire_many_owned(n).ok()
    }
}

/// A body read whole; its share of the budget is returned when dropped.
#[derive(Debug)]
pub struct BodyBytes {
    pub bytes: Bytes,
    pub hold: Hold,
}

/// Bytes of a [`BodyBudget`] held by one request, given back on drop. A
/// request grows its hold for what it makes of its body (decompressed
/// text, parsed records) and keeps it until it has answered.
#[derive(Debug)]
pub struct Hold {
    budget: Option<BodyBudget>,
    permit: Option<OwnedSemaphorePermit>,
    held: usize,
}

impl Hold {
    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Holds at least `total` bytes (in steps of 1 MiB, so that a
    /// growing buffer does not ask at every read); false when the budget
    /// has not that much free. Without a budget, always true.
    pub fn grow_to(&mut self, total: usize) -> bool {
        let Some(b) = &self.budget else {
            return true;
        };
        if total <= self.held {
            return true;
        }
        let step = 1 << 20;
        let want = total
            .div_ceil(step)
            .saturating_mul(step)
            .min(b.total.max(total));
        let Some(more) = b.take(want - self.held) else {
            return false;
        };
        match &mut self.permit {
            Some(p) => p.merge(more),
            None => self.permit = Some(more),
        }
        self.held = want;
        true
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit (declared or sent).
    TooLarge { limit: usize },
    /// The budget of all bodies in flight is used up: try again shortly.
    Busy { budget: usize },
    /// Not complete within the deadline (a slow sender, or a
    /// `Content-Length` larger than what was sent).
    Timeout { after: Duration, received: usize },
    /// The connection failed while reading.
    Failed(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(f, "body over {limit} bytes"),
            BodyError::Busy { budget } => write!(
                f,
                "the {budget} bytes all request bodies may hold at once are in use: retry shortly"
            ),
            BodyError::Timeout { after, received } => write!(
                f,
                "body not complete after {:.1} s ({received} bytes received): \
                 is Content-Length larger than the body?",
                after.as_secs_f64()
            ),
            BodyError::Failed(e) => write!(f, "reading the body: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// Reads a whole body of at most `limit` bytes within `timeout`, holding
/// its size from `budget` (reserved up front when `Content-Length` says
/// it, otherwise as bytes arrive).
pub async fn read_body(
    body: axum::body::Body,
    declared: Option<u64>,
    limit: usize,
    timeout: Duration,
    budget: Option<&BodyBudget>,
) -> Result<BodyBytes, BodyError> {
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut reserved = 0usize;
    if let Some(n) = declared {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if let Some(b) = budget {
            held = Some(b.take(n).ok_or(BodyError::Busy { budget: b.total })?);
            reserved = n;
        }
    }
    let mut buf = Vec::with_capacity(reserved.min(1 << 20));
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(BodyError::Timeout {
                    after: started.elapsed(),
                    received: buf.len(),
                })
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Failed(e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = buf.len() + data.len();
        if len > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if let Some(b) = budget {
            if len > reserved {
                let more = b
                    .take(len - reserved)
                    .ok_or(BodyError::Busy { budget: b.total })?;
                match &mut held {
                    Some(h) => h.merge(more),
                    None => held = Some(more),
                }
                reserved = len;
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok(BodyBytes {
        bytes: Bytes::from(buf),
        hold: Hold {
            budget: budget.cloned(),
            permit: held,
            held: reserved,
        },
    })
}

#[cfg(test)]
mod tests;
