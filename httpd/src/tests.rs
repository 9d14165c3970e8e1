//! The server over real TCP on 127.0.0.1: each limit, and what happens
//! at the connection cap.

use super::*;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

fn limits(header: u64, idle: u64, max: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(header),
        idle_timeout: Duration::from_millis(idle),
        max_connections: max,
        max_header_bytes: 8 << 10,
    }
}

async fn start(limits: Limits) -> Server {
    let budget = BodyBudget::new(1000);
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "slow\n"
            }),
        )
        .route(
            "/body",
            post(
                move |headers: axum::http::HeaderMap, body: axum::body::Body| {
                    let budget = budget.clone();
                    async move {
                        let declared = headers
                            .get("content-length")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse().ok());
                        match read_body(
                            body,
                            declared,
                            600,
                            Duration::from_millis(500),
                            Some(&budget),
                        )
                        .await
                        {
                            Ok(b) => {
                                // Hold the body (and its budget) a while.
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                format!("read {}\n", b.bytes.len())
                            }
                            Err(e) => format!("error {e:?}\n"),
                        }
                    }
                },
            ),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(Stats::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        Plain,
        router,
        limits,
        stats.clone(),
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(3),
    ));
    Server {
        addr,
        stats,
        stop: Some(tx),
        task,
    }
}

/// Reads until the peer closes (or `limit` passes); the bytes and whether
/// it closed.
async fn read_until_close(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn get_ok(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let (text, _) = read_until_close(&mut s, Duration::from_secs(5)).await;
    text
}

#[tokio::test]
async fn a_half_request_head_is_closed_after_the_header_timeout() {
    let srv = start(limits(300, 5000, 100)).await;
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(b"POST /body HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let t0 = Instant::now();
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed, "half head still open after 3 s");
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    // A connection that never sends a byte gets the same limit.
    let mut silent = TcpStream::connect(srv.addr).await.expect("connect");
    let (_, closed) = read_until_close(&mut silent, Duration::from_secs(3)).await;
    assert!(closed, "silent connection still open");
    assert_eq!(srv.stats.header_timeouts.load(Ordering::Relaxed), 2);
    srv.stop().await;
}

#[tokio::test]
async fn keep_alive_outlives_the_header_timeout_and_closes_after_the_idle_timeout() {
    let srv = start(limits(200, 1200, 100)).await;
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Idle longer than the header timeout: still open.
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("second request on the same connection");
    let n = s.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t0 = Instant::now();
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(4)).await;
    assert!(closed, "idle keep-alive connection never closed");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_millis(2500),
        "closed after {waited:?}"
    );
    assert_eq!(srv.stats.idle_closed.load(Ordering::Relaxed), 1);
    srv.stop().await;
}

#[tokio::test]
async fn a_slow_handler_is_not_cut_by_the_header_or_idle_timeout() {
    let srv = start(limits(200, 300, 100)).await;
    let text = get_ok(srv.addr, "/slow").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("slow\n"), "{text}");
    srv.stop().await;
}

#[tokio::test]
async fn at_the_cap_the_longest_waiting_connection_makes_room() {
    let srv = start(limits(30_000, 30_000, 8)).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(srv.addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo")
            .await
            .expect("w");
        idle.push(s);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Many more than the cap: each new one is served.
    for i in 0..20 {
        let text = get_ok(srv.addr, "/healthz").await;
        assert!(text.starts_with("HTTP/1.1 200"), "request {i}: {text:?}");
    }
    // The first half-head connection was the first to go.
    let (_, closed) = read_until_close(&mut idle[0], Duration::from_secs(1)).await;
    assert!(closed, "oldest unbusy connection not evicted");
    assert!(srv.stats.evicted.load(Ordering::Relaxed) >= 1);
    assert_eq!(srv.stats.refused.load(Ordering::Relaxed), 0);
    assert!(srv.stats.open.load(Ordering::Relaxed) <= 9);
    srv.stop().await;
}

#[tokio::test]
async fn at_the_cap_with_every_connection_busy_a_new_one_gets_503() {
    let srv = start(limits(30_000, 30_000, 2)).await;
    let a = tokio::spawn(get_ok(srv.addr, "/slow"));
    let b = tokio::spawn(get_ok(srv.addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = get_ok(srv.addr, "/healthz").await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert!(text.contains("Retry-After: 1"), "{text:?}");
    assert_eq!(srv.stats.refused.load(Ordering::Relaxed), 1);
    for t in [a, b] {
        let text = t.await.expect("join");
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "busy request cut: {text:?}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_content_length_larger_than_the_body_times_out() {
    let srv = start(limits(5000, 5000, 100)).await;
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .expect("write");
    let (text, _) = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert!(text.contains("error Timeout"), "{text:?}");
    assert!(text.contains("received: 10"), "{text:?}");
    srv.stop().await;
}

#[tokio::test]
async fn bodies_share_one_budget_and_over_it_are_refused() {
    let srv = start(limits(5000, 5000, 100)).await;
    let body = "x".repeat(500);
    let send = |addr: SocketAddr, body: String| async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(
            format!(
                "POST /body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("write");
        read_until_close(&mut s, Duration::from_secs(3)).await.0
    };
    // Budget 1000: two bodies of 500 fit, the third is refused while
    // they are held.
    let a = tokio::spawn(send(srv.addr, body.clone()));
    let b = tokio::spawn(send(srv.addr, body.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = send(srv.addr, body.clone()).await;
    assert!(c.contains("error Busy"), "{c:?}");
    assert!(a.await.expect("a").contains("read 500"));
    assert!(b.await.expect("b").contains("read 500"));
    // Released: fits again.
    let d = send(srv.addr, body.clone()).await;
    assert!(d.contains("read 500"), "{d:?}");
    // Over the limit, declared or chunked.
    let e = send(srv.addr, "y".repeat(700)).await;
    assert!(e.contains("error TooLarge"), "{e:?}");
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    let chunk = "z".repeat(400);
    s.write_all(
        format!(
            "POST /body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n190\r\n{chunk}\r\n190\r\n{chunk}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let (text, _) = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert!(text.contains("error TooLarge"), "{text:?}");
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let srv = start(limits(5000, 5000, 100)).await;
    let addr = srv.addr;
    let slow = tokio::spawn(get_ok(addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    srv.stop().await;
    let text = slow.await.expect("join");
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test]
async fn huge_headers_get_431_and_the_server_keeps_serving() {
    let srv = start(limits(5000, 5000, 100)).await;
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    let big = "a".repeat(64 << 10);
    let _ = s
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .await;
    let (text, closed) = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text:?}"
    );
    assert!(get_ok(srv.addr, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    srv.stop().await;
}

#[test]
fn the_default_cap_leaves_descriptors_for_the_rest() {
    let l = Limits::default();
    if let Some(n) = open_files_limit() {
        assert!((l.max_connections as u64) <= n / 4 * 3 || l.max_connections == 16);
    }
    assert!(l.max_connections >= 16);
}

/// Fails with EMFILE a number of times, then accepts for real.
struct Failing {
    inner: TcpListener,
    errors_left: u32,
    calls: Arc<AtomicU64>,
}

impl Accept for Failing {
    async fn accept(&mut self) -> std::io::Result<(TcpStream, SocketAddr)> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.errors_left > 0 {
            self.errors_left -= 1;
            return Err(std::io::Error::from_raw_os_error(24));
        }
        self.inner.accept().await
    }
}

#[tokio::test]
async fn accept_errors_are_counted_and_backed_off_not_spun_on() {
    let inner = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let calls = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(Stats::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let task = tokio::spawn(serve(
        Failing {
            inner,
            errors_left: u32::MAX,
            calls: calls.clone(),
        },
        Plain,
        router,
        limits(5000, 5000, 10),
        stats.clone(),
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(1),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = calls.load(Ordering::Relaxed);
    // 5, 10, 20 ... ms, capped at 1 s: about ten attempts in 1.5 s, where
    // a loop without backoff makes millions.
    assert!((3..=15).contains(&n), "{n} accept calls in 1.5 s");
    assert_eq!(stats.accept_errors.load(Ordering::Relaxed), n);
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
}

#[tokio::test]
async fn after_accept_errors_stop_connections_are_served_again() {
    let inner = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = inner.local_addr().expect("addr");
    let stats = Arc::new(Stats::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let task = tokio::spawn(serve(
        Failing {
            inner,
            errors_left: 4,
            calls: Arc::default(),
        },
        Plain,
        router,
        limits(5000, 5000, 10),
        stats.clone(),
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(1),
    ));
    let text = get_ok(addr, "/healthz").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert_eq!(stats.accept_errors.load(Ordering::Relaxed), 4);
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
}
