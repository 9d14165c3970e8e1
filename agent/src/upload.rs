//! Upload of spooled results to the collector: batches, gzip, bearer token,
//! retries with capped, jittered exponential backoff; at-least-once
//! delivery that the collector's idempotent ingest turns into exactly-once
//! storage.
//!
//! What each answer does ([`classify`]):
//! - 2xx: the collector has committed the batch durably; the spool moves on.
//! - 5xx, 408, 429 and connection errors or timeouts: retried, after
//!   `Retry-After` when the collector sends one (capped), else after the
//!   backoff.
//! - 401 and 403: the token is wrong, not the batch. Nothing is dropped;
//!   uploads wait, re-reading the token file, and resume when it changes
//!   (token rotation) or after the longest backoff.
//! - 413 with more than one record: the batch is halved and sent again.
//! - Any other 4xx: the batch is moved to the spool's `quarantine/` for a
//!   human, reported, and never re-sent.
//!
//! The uploader runs in a task of its own and shares the spool with the
//! round loop through a `std::sync::Mutex`. It takes the lock only inside
//! [`Uploader::with_spool`], whose closure cannot `.await`: the lock is
//! never held while a request is on the network, so a collector that hangs
//! never holds up a round writing its results (`Sink::put`).
//!
//! What the collector answers is logged only in `?` fields, escaped
//! ([`crate::logging`]): a newline or a terminal escape in its body cannot
//! forge a log line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::spool::Spool;

use flate2::write::GzEncoder;
use flate2::Compression;
use rustls_pki_types::pem::PemObject;

/// Uploader settings.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// Collector base URL (`https://host:port`).
    pub collector: String,
    pub token_file: PathBuf,
    /// PEM file of the CA to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Records per request at most.
    pub batch_records: usize,
    /// Payload bytes per request, about (before compression).
    pub batch_bytes: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Time limit of one request.
    pub timeout: Duration,
}

impl UploadConfig {
    pub fn new(collector: String, token_file: PathBuf) -> Self {
        Self {
            collector,
            token_file,
            ca_file: None,
            batch_records: 1000,
            batch_bytes: 2 << 20,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Committed,
    Retry,
    Auth,
    TooLarge,
    Refused,
}

/// Sorts an HTTP status into what the uploader does with the batch.
pub fn classify(status: u16) -> Class {
    match status {
        200..=299 => Class::Committed,
        401 | 403 => Class::Auth,
        408 | 429 => Class::Retry,
        413 => Class::TooLarge,
        400..=499 => Class::Refused,
        // 1xx/3xx are not answers the collector gives: treat as transient.
        _ => Class::Retry,
    }
}

/// Capped exponential backoff with jitter ("equal jitter": half fixed,
/// half random, so retries from many agents spread out but never hammer).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The next delay; `unit` is a random number in [0, 1).
    pub fn next(&mut self, unit: f64) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base / 2 + base.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// A random number in [0, 1).
pub fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses `Retry-After` in seconds (the HTTP-date form is not used by the
/// collector and is ignored).
pub fn retry_after(value: Option<&str>, cap: Duration) -> Option<Duration> {
    let secs: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(cap))
}

/// A gzip-compressed JSON-lines body.
pub fn gzip_lines<'a>(lines: impl Iterator<Item = &'a [u8]>) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    for l in lines {
        enc.write_all(l)?;
        enc.write_all(b"\n")?;
    }
    enc.finish()
}

/// Why the token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read (missing, a directory, no permission).
    #[error(
        "token file {}: {source}: the agent cannot read its bearer token; put the token that \
         `tumen-collector token NAME --token-file FILE` printed on the collector host in this \
         file (--token-file PATH)",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing but blank lines and comments.
    #[error(
        "token file {} holds no token (only blank lines and # comments): put the token that \
         `tumen-collector token NAME` printed in it",
        path.display()
    )]
    Empty { path: PathBuf },
}

/// Reads a token file: the first non-empty line, trimmed.
pub fn read_token(path: &std::path::Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .ok_or_else(|| TokenError::Empty {
            path: path.to_path_buf(),
        })
}

/// Why the HTTP client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "CA file {}: {source}: give the PEM file of the CA that signed the collector's \
         certificate (--ca-file FILE)",
        path.display()
    )]
    CaRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {}: {source}: not a PEM certificate file", path.display())]
    CaPem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("CA file {}: {source}: the certificate cannot be used", path.display())]
    CaCert {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "CA file {} holds no certificate: give the PEM file of the CA that signed the \
         collector's certificate (--ca-file FILE)",
        path.display()
    )]
    CaEmpty { path: PathBuf },
    #[error(
        "no system root certificates found ({errors} error(s)); give the collector's CA with \
         --ca-file"
    )]
    NoRoots { errors: usize },
    #[error("TLS: {0}")]
    Tls(#[source] rustls::Error),
    #[error("HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// The HTTP client: rustls (ring) with the system roots or the given CA.
pub fn client(cfg: &UploadConfig) -> Result<reqwest::Client, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| ClientError::CaRead {
                path: path.clone(),
                source,
            })?;
            let mut n = 0;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|source| ClientError::CaPem {
                    path: path.clone(),
                    source,
                })?;
                roots.add(cert).map_err(|source| ClientError::CaCert {
                    path: path.clone(),
                    source,
                })?;
                n += 1;
            }
            if n == 0 {
                return Err(ClientError::CaEmpty { path: path.clone() });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() && cfg.collector.starts_with("https://") {
                return Err(ClientError::NoRoots {
                    errors: found.errors.len(),
                });
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ClientError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(cfg.timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("tumen-agent/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .build()
        .map_err(ClientError::Http)
}

/// Counters of the uploader (exported as the agent's metrics).
#[derive(Debug, Default)]
pub struct UploadStats {
    /// Requests by outcome.
    pub committed: AtomicU64,
    pub retried: AtomicU64,
    pub auth_failed: AtomicU64,
    pub refused: AtomicU64,
    pub too_large: AtomicU64,
    /// Records the collector stored / already had.
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    /// Unix ms of the last committed batch.
    pub last_commit_ms: AtomicU64,
}

/// Sends what the spool holds until it is empty (when `stop` is set) or
/// forever. Errors are logged and counted; nothing here ends the agent.
#[derive(Debug)]
pub struct Uploader {
    pub cfg: UploadConfig,
    pub client: reqwest::Client,
    pub spool: Arc<Mutex<Spool>>,
    pub stats: Arc<UploadStats>,
}

#[derive(Debug, serde::Deserialize)]
struct Committed {
    #[serde(default)]
    accepted: u64,
    #[serde(default)]
    duplicates: u64,
}

impl Uploader {
    fn url(&self) -> String {
        format!("{}/api/v1/results", self.cfg.collector)
    }

    /// Runs `f` on the spool under its lock. The closure is synchronous,
    /// so the lock cannot be held across an `.await` (a request on the
    /// network): the round loop's writes never wait on the collector.
    fn with_spool<T>(&self, f: impl FnOnce(&mut Spool) -> T) -> T {
        let mut guard = self
            .spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Runs until the spool is empty after `stop` was cancelled (the
    /// caller bounds that drain by its grace period).
    pub async fn run(&self, wake: Arc<Notify>, stop: CancellationToken) {
        let mut backoff = Backoff::new(self.cfg.backoff_min, self.cfg.backoff_max);
        let mut limit = self.cfg.batch_records;
        // The token that was refused, and when: not sent again until the
        // token file changes or the longest backoff has passed.
        let mut refused_token: Option<(String, std::time::Instant)> = None;
        loop {
            let read = self.with_spool(|s| s.read_batch(limit, self.cfg.batch_bytes));
            let (batch, end) = match read {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("upload: {e}");
                    self.pause(backoff.next(unit_random()), &stop).await;
                    continue;
                }
            };
            if batch.is_empty() {
                if stop.is_cancelled() {
                    return;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = stop.cancelled() => {}
                }
                continue;
            }
            let token = match read_token(&self.cfg.token_file) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("upload: {e}");
                    self.pause(backoff.next(unit_random()), &stop).await;
                    continue;
                }
            };
            if let Some((bad, at)) = &refused_token {
                if *bad == token && at.elapsed() < self.cfg.backoff_max {
                    self.pause(Duration::from_secs(1), &stop).await;
                    continue;
                }
                refused_token = None;
            }
            let body = match gzip_lines(batch.iter().map(|e| e.payload.as_slice())) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("upload: gzip: {e}");
                    self.pause(backoff.next(unit_random()), &stop).await;
                    continue;
                }
            };
            let sent = self
                .client
                .post(self.url())
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                .body(body)
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff.next(unit_random());
                    // The error may quote the peer (a certificate's name).
                    tracing::warn!(
                        error = ?error_chain(&e),
                        "upload: no answer (attempt {}); retrying in {:.1} s",
                        backoff.attempts(),
                        wait.as_secs_f64()
                    );
                    self.pause(wait, &stop).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let after = retry_after(
                resp.headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
                self.cfg.backoff_max,
            );
            let text = read_capped(resp, ANSWER_LIMIT)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let n = batch.len() as u64;
            match classify(status) {
                Class::Committed => {
                    let c: Committed = serde_json::from_str(&text).unwrap_or(Committed {
                        accepted: n,
                        duplicates: 0,
                    });
                    if let Err(e) = self.with_spool(|s| s.ack(end, &batch)) {
                        tracing::error!("upload: {e}");
                    }
                    self.stats.committed.fetch_add(1, Ordering::Relaxed);
                    self.stats.accepted.fetch_add(c.accepted, Ordering::Relaxed);
                    self.stats
                        .duplicates
                        .fetch_add(c.duplicates, Ordering::Relaxed);
                    self.stats.last_commit_ms.store(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64),
                        Ordering::Relaxed,
                    );
                    if backoff.attempts() > 0 {
                        tracing::info!("upload: collector answers again");
                    }
                    backoff.reset();
                    limit = (limit * 2).min(self.cfg.batch_records);
                }
                Class::Retry => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    let wait = after.unwrap_or_default().max(backoff.next(unit_random()));
                    tracing::warn!(
                        answer = ?short(&text),
                        "upload: collector answered {status}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    self.pause(wait, &stop).await;
                }
                Class::Auth => {
                    self.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        answer = ?short(&text),
                        "upload: collector refused the token ({status}): results stay in the \
                         spool; fix --token-file (it is re-read)"
                    );
                    refused_token = Some((token, std::time::Instant::now()));
                }
                Class::TooLarge if batch.len() > 1 => {
                    self.stats.too_large.fetch_add(1, Ordering::Relaxed);
                    limit = batch.len() / 2;
                }
                Class::TooLarge | Class::Refused => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    let why = format!("{status} {}", reason(&text));
                    let moved = self.with_spool(|s| s.quarantine(&batch, end, &why));
                    match moved {
                        Ok(path) => tracing::error!(
                            answer = ?short(&text),
                            "upload: collector refused {n} record(s) for good ({status}); kept \
                             in {}",
                            path.display()
                        ),
                        Err(e) => {
                            tracing::error!("upload: quarantine: {e}");
                            self.pause(backoff.next(unit_random()), &stop).await;
                        }
                    }
                }
            }
        }
    }

    /// Sleeps, but wakes early when asked to stop (the caller then drains
    /// what it can within the grace period).
    async fn pause(&self, d: Duration, stop: &CancellationToken) {
        if stop.is_cancelled() {
            tokio::time::sleep(d.min(Duration::from_millis(200))).await;
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// An error with its causes ("error sending request: connection refused").
/// It may quote a peer (a certificate's name, a header): log it in a `?`
/// field.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The `error` field of a collector's JSON refusal.
fn reason(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| "refused".into())
}

/// The start of a collector's answer (at most 300 bytes), for a `?` field
/// of the log.
fn short(text: &str) -> String {
    let t = text.trim();
    if t.len() > 300 {
        let mut end = 300;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &t[..end])
    } else {
        t.to_string()
    }
}

/// Largest upload answer read (the collector's is under 200 bytes).
pub const ANSWER_LIMIT: usize = 64 << 10;

/// Why a collector's answer was not read.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("reading the answer: {0}")]
    Read(#[source] reqwest::Error),
    #[error("answer over {limit} bytes: not read")]
    TooLong { limit: usize },
}

/// Reads at most `limit` bytes of a collector's answer: a collector (or
/// something posing as one) cannot make the agent buffer without end.
pub async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, AnswerError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(AnswerError::Read)? {
        if out.len() + chunk.len() > limit {
            return Err(AnswerError::TooLong { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_the_module_says() {
        assert_eq!(classify(200), Class::Committed);
        assert_eq!(classify(204), Class::Committed);
        for s in [500, 502, 503, 504, 429, 408] {
            assert_eq!(classify(s), Class::Retry, "{s}");
        }
        assert_eq!(classify(401), Class::Auth);
        assert_eq!(classify(403), Class::Auth);
        assert_eq!(classify(413), Class::TooLarge);
        for s in [400, 404, 405, 409, 415, 422] {
            assert_eq!(classify(s), Class::Refused, "{s}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(min, max);
        // With unit 0 the delay is half the base, with unit ~1 the base.
        assert_eq!(b.next(0.0), Duration::from_millis(50));
        assert_eq!(b.next(0.0), Duration::from_millis(100));
        let d = b.next(0.999_999);
        assert!(
            d > Duration::from_millis(399) && d <= Duration::from_millis(400),
            "{d:?}"
        );
        for _ in 0..3 {
            b.next(0.5);
        }
        // From here the base is at the cap.
        for _ in 0..40 {
            let d = b.next(unit_random());
            assert!(d <= max && d >= max / 2, "{d:?}");
        }
        b.reset();
        assert!(b.next(1.0) <= min);
        // Random units differ (jitter actually happens).
        let draws: std::collections::HashSet<u64> =
            (0..20).map(|_| unit_random().to_bits()).collect();
        assert!(draws.len() > 15);
        assert!((0..1000)
            .map(|_| unit_random())
            .all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn retry_after_is_read_and_capped() {
        let cap = Duration::from_secs(30);
        assert_eq!(retry_after(Some("5"), cap), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(Some("3600"), cap), Some(cap));
        assert_eq!(
            retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), cap),
            None
        );
        assert_eq!(retry_after(None, cap), None);
    }

    #[test]
    fn token_files_are_read_and_bad_ones_explained() {
        let dir = std::env::temp_dir().join(format!("tumen-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("t");
        std::fs::write(&p, "# comment\n\n  abc123  \n").expect("write");
        assert_eq!(read_token(&p).expect("token"), "abc123");
        std::fs::write(&p, "\n# only a comment\n").expect("write");
        let e = read_token(&p).unwrap_err();
        assert!(matches!(e, TokenError::Empty { .. }), "{e:?}");
        assert!(e.to_string().contains("holds no token"));
        let e = read_token(&dir.join("missing")).unwrap_err();
        assert!(matches!(e, TokenError::Read { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("missing"), "{e}");
        // The hint says where a token comes from.
        assert!(e.contains("tumen-collector token"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The collector's answers are cut short before they are logged (in
    /// a `?` field, escaped: see `logging`'s test and the uploader's test
    /// in `runtime`).
    #[test]
    fn answers_are_cut_short_for_the_log() {
        let hostile = "ok\ntumen-agent: spool: 0 appended\r\u{1b}[31mred\u{202e}";
        assert_eq!(short(" a\nb "), "a\nb");
        let long = short(&"a\n".repeat(400));
        assert!(long.ends_with("...") && long.len() <= 303, "{long}");
        let field = format!("{:?}", short(&format!("{hostile}{}", "a\n".repeat(400))));
        assert!(!field.chars().any(char::is_control), "{field}");
        assert!(field.starts_with("\"ok\\ntumen-agent: spool"), "{field}");
        // A multi-byte character at the cut is not split.
        let t = format!("{}é", "a".repeat(299));
        assert_eq!(short(&format!("{t}xyz")), format!("{}...", "a".repeat(299)));
    }

    #[test]
    fn gzip_body_is_json_lines() {
        let body = gzip_lines([&b"{\"a\":1}"[..], b"{\"b\":2}"].into_iter()).expect("gzip");
        let mut d = flate2::read::GzDecoder::new(&body[..]);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut d, &mut s).expect("gunzip");
        assert_eq!(s, "{\"a\":1}\n{\"b\":2}\n");
    }

    /// A collector's answer is read up to a limit, never buffered whole.
    #[tokio::test]
    async fn an_endless_answer_is_not_buffered() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
                        .await;
                    let chunk = vec![b'x'; 64 << 10];
                    for _ in 0..1500 {
                        if s.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let mut cfg = UploadConfig::new(format!("http://{addr}"), "/nonexistent".into());
        cfg.backoff_min = Duration::from_millis(1);
        let client = client(&cfg).expect("client");
        let resp = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("answer");
        let e = read_capped(resp, ANSWER_LIMIT).await.expect_err("capped");
        assert!(matches!(
            e,
            AnswerError::TooLong {
                limit: ANSWER_LIMIT
            }
        ));
        assert!(e.to_string().contains("over 65536 bytes"), "{e}");
    }
}
