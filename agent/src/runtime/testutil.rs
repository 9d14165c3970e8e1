//! Test support for the runtime: temporary directories, records, local
//! configurations and a tiny collector on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tumen_wire::{PingRecord, Record, SCHEMA_VERSION};

use crate::config::{Config, RawConfig};

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).expect("random");
        let dir = std::env::temp_dir().join(format!(
            "tumen-runtime-{name}-{}-{}",
            std::process::id(),
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small record, numbered.
pub fn record(i: u32) -> Record {
    Record::Ping(PingRecord {
        schema: SCHEMA_VERSION,
        id: format!("{i:032x}"),
        agent: "vp-test".into(),
        start_ms: 1_700_000_000_000 + u64::from(i),
        dst: "198.18.176.1".parse().expect("ip"),
        prefix: "198.18.176.0/24".into(),
        sent: 1,
        received: 1,
        loss_ratio: 0.0,
        rtt_min_ms: Some(1.0),
        rtt_avg_ms: Some(1.0),
        rtt_max_ms: Some(1.0),
        rtt_stddev_ms: Some(0.0),
    })
}

/// A validated configuration from TOML (the lab's reserved ranges are
/// allowed, the id is fixed).
pub fn config(toml: &str) -> Config {
    let raw: RawConfig = toml::from_str(toml).expect("toml");
    let raw = raw.merge(RawConfig {
        id: Some("vp-test".into()),
        allow_reserved: Some(true),
        ..RawConfig::default()
    });
    Config::validate(raw).expect("valid config")
}

/// One request as the fake collector saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When the request had arrived.
    pub at: tokio::time::Instant,
    pub method: String,
    pub path: String,
    pub headers: String,
    pub body: Vec<u8>,
}

/// What the fake collector answers: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A tiny HTTP/1.1 collector on 127.0.0.1: one request per connection,
/// answered by `answer`; every request is kept.
#[derive(Debug, Clone)]
pub struct FakeCollector {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeCollector {
    pub async fn start(answer: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        Self::start_slow(|_| std::time::Duration::ZERO, answer).await
    }

    /// Like [`FakeCollector::start`], each answer sent `delay` after the
    /// request arrived.
    pub async fn start_slow(
        delay: impl Fn(&Seen) -> std::time::Duration + Send + Sync + 'static,
        answer: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let answer = Arc::new(answer);
        let delay = Arc::new(delay);
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let (s, answer, delay) = (s.clone(), answer.clone(), delay.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut c).await else {
                        return;
                    };
                    tokio::time::sleep(delay(&req)).await;
                    let (status, headers, body) = answer(&req);
                    s.lock().expect("seen").push(req);
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = c.write_all(head.as_bytes()).await;
                    let _ = c.write_all(&body).await;
                    let _ = c.shutdown().await;
                });
            }
        });
        Self { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests to `path` so far.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn read_request(c: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = c.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.lines().next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = c.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        at: tokio::time::Instant::now(),
        method,
        path,
        headers: head,
        body,
    })
}

/// Decodes a gzip body.
pub fn gunzip(body: &[u8]) -> String {
    let mut d = flate2::read::GzDecoder::new(body);
    let mut s = String::new();
    std::io::Read::read_to_string(&mut d, &mut s).expect("gunzip");
    s
}
