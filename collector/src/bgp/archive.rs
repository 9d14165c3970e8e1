//! MRT archives over HTTP(S) or in a local directory, in the RouteViews
//! or RIPE RIS layout, for a time range.
//!
//! RouteViews keeps `BASE/YYYY.MM/RIBS/rib.YYYYMMDD.HHMM.bz2` and
//! `BASE/YYYY.MM/UPDATES/updates.YYYYMMDD.HHMM.bz2`; RIS keeps
//! `BASE/YYYY.MM/bview.YYYYMMDD.HHMM.gz` and
//! `BASE/YYYY.MM/updates.YYYYMMDD.HHMM.gz`. Both serve Apache-style HTML
//! indexes: the months of the range are listed, the `href`s of their
//! index pages read (anything that is not an MRT file name is ignored),
//! and the files whose name time falls in the range picked. A local
//! directory is walked recursively for the same names.
//!
//! What is picked ([`Select`]): by default a timeline, that is the latest
//! RIB at or before `since` (the start state) and then the updates from
//! that RIB's time to `until` (the changes); or every RIB and update
//! file named in the range. Files are ordered by their name time, a RIB
//! before the updates of the same time.
//!
//! Files are fetched with a timeout and a size cap, retried with backoff
//! on 5xx answers and connection errors; a 404 or a listing without any
//! MRT file in range is an error that names the URL. A fetched file is
//! held (compressed) in memory and decompressed as [`super::mrt::read`]
//! reads it, on a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::mrt::{self, Keep, MrtReport, ReadOptions};
use super::Sink;

/// The largest file fetched by default (a full RouteViews RIB is about
/// 100 MB compressed in 2024).
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// An archive's directory layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `YYYY.MM/RIBS/rib.*.bz2`, `YYYY.MM/UPDATES/updates.*.bz2`.
    RouteViews,
    /// `YYYY.MM/bview.*.gz`, `YYYY.MM/updates.*.gz`.
    Ris,
}

/// Which files of the range to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Select {
    /// The latest RIB at or before `since` (or, when the archive has none
    /// that early, the first RIB in the range), then the updates from its
    /// time to `until`: a start state and the changes after it.
    #[default]
    Timeline,
    /// Every RIB and updates file whose name time is in the range.
    All,
}

/// A RIB dump or an updates file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    Rib,
    Updates,
}

/// One MRT file of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArchiveFile {
    /// Its URL, or its path in a local directory.
    pub location: String,
    /// The time in its name, Unix seconds.
    pub time: u64,
    pub kind: FileKind,
}

/// What to list and how to fetch.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// The range, Unix seconds, both ends included.
    pub since: u64,
    pub until: u64,
    pub select: Select,
    /// The layout; `None` tells it from the first month's index page.
    pub layout: Option<Layout>,
    /// Per request (listing or file), connection to last byte.
    pub timeout: Duration,
    /// The largest file (or index page) accepted.
    pub max_bytes: u64,
    /// Retries after a 5xx answer or a connection error, the wait
    /// doubling from `backoff`.
    pub retries: u32,
    pub backoff: Duration,
}

impl ArchiveOptions {
    /// The defaults for a range: a timeline, the layout told from the
    /// listing, 10 minutes per request, [`DEFAULT_MAX_BYTES`], 3 retries
    /// from 1 s.
    pub fn new(since: u64, until: u64) -> Self {
        Self {
            since,
            until,
            select: Select::Timeline,
            layout: None,
            timeout: Duration::from_secs(600),
            max_bytes: DEFAULT_MAX_BYTES,
            retries: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// Why an archive could not be listed or fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The request failed (after the retries, when it could be retried).
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Not found.
    #[error(
        "{url}: 404 Not Found (is the base URL an MRT archive in the RouteViews or RIS layout?)"
    )]
    NotFound { url: String },
    /// Another unsuccessful status (after the retries for a 5xx).
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    /// Bigger than the size cap.
    #[error("{url}: larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    /// An index page that is not one.
    #[error("{url}: {reason}")]
    Listing { url: String, reason: String },
    /// Nothing in the range.
    #[error("{base}: no MRT files (rib/bview, updates) between {since} and {until} (Unix seconds); looked in {looked}")]
    Empty {
        base: String,
        since: u64,
        until: u64,
        looked: String,
    },
    /// A local directory or file cannot be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The blocking reader task failed.
    #[error("reading {location}: the reader task failed: {reason}")]
    Task { location: String, reason: String },
}

/// The kind and time of an MRT file name (`rib.20140523.0600.bz2`,
/// `bview.20240101.0000.gz`, `updates.20240101.0015.gz`); `None` for other
/// names.
pub fn parse_name(name: &str) -> Option<(FileKind, u64)> {
    let mut parts = name.split('.');
    let kind = match parts.next()? {
        "rib" | "bview" => FileKind::Rib,
        "updates" => FileKind::Updates,
        _ => return None,
    };
    let date = parts.next()?;
    let time = parts.next()?;
    if date.len() != 8
        || time.len() != 4
        || !(date.bytes().chain(time.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let num = |s: &str| s.parse::<u64>().ok();
    let (y, m, d) = (num(&date[..4])?, num(&date[4..6])?, num(&date[6..])?);
    let (hh, mm) = (num(&time[..2])?, num(&time[2..])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 {
        return None;
    }
    Some((
        kind,
        days_from_civil(y, m, d)? * 86_400 + hh * 3600 + mm * 60,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (1970 or later).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = i64::try_from(y).ok()? - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

/// The (year, month) of a Unix time.
fn month_of(t: u64) -> (u64, u64) {
    // Inverse of days_from_civil, for the month only.
    let z = (t / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as u64, m as u64)
}

/// The months from `since`'s to `until`'s, as `YYYY.MM`.
fn months(since: u64, until: u64) -> Vec<String> {
    let (mut y, mut m) = month_of(since);
    let end = month_of(until.max(since));
    let mut out = Vec::new();
    while (y, m) <= end {
        out.push(format!("{y:04}.{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

/// The month before `YYYY.MM`'s first second.
fn previous_month(since: u64) -> String {
    let (y, m) = month_of(since);
    let (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    format!("{y:04}.{m:02}")
}

/// The targets of the `href`s of an HTML index page, in order (the last
/// path segment, without query or fragment; directories keep their `/`).
pub fn hrefs(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find("href") {
        let mut at = from + i + 4;
        from = at;
        let rest = &html[at..];
        let trimmed = rest.trim_start();
        let Some(after_eq) = trimmed.strip_prefix('=') else {
            continue;
        };
        let value = after_eq.trim_start();
        at = html.len() - value.len();
        let (value, end) = match value.as_bytes().first() {
            Some(q @ (b'"' | b'\'')) => match value[1..].find(*q as char) {
                Some(e) => (&value[1..1 + e], at + 2 + e),
                None => continue,
            },
            _ => {
                let e = value
                    .find(|c: char| c.is_whitespace() || c == '>')
                    .unwrap_or(value.len());
                (&value[..e], at + e)
            }
        };
        from = end;
        let value = value.split(['?', '#']).next().unwrap_or("");
        let dir = value.ends_with('/');
        let last = value.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if !last.is_empty() {
            out.push(if dir {
                format!("{last}/")
            } else {
                last.to_string()
            });
        }
    }
    out
}

/// Picks the files to read from all the archive has near the range, in
/// order; none when nothing is named in the range (a timeline of only an
/// older RIB has no changes and a stale start: the archive lacks the
/// range).
fn select(mut files: Vec<ArchiveFile>, options: &ArchiveOptions) -> Vec<ArchiveFile> {
    files.sort_by(|a, b| (a.time, a.kind, &a.location).cmp(&(b.time, b.kind, &b.location)));
    files.dedup_by(|a, b| a.time == b.time && a.kind == b.kind);
    let (since, until) = (options.since, options.until);
    match options.select {
        Select::All => files
            .into_iter()
            .filter(|f| (since..=until).contains(&f.time))
            .collect(),
        Select::Timeline => {
            let start = files
                .iter()
                .rfind(|f| f.kind == FileKind::Rib && f.time <= since)
                .or_else(|| {
                    files
                        .iter()
                        .find(|f| f.kind == FileKind::Rib && (since..=until).contains(&f.time))
                })
                .cloned();
            let from = start.as_ref().map_or(since, |r| r.time);
            let mut out: Vec<_> = start.into_iter().collect();
            out.extend(
                files
                    .into_iter()
                    .filter(|f| f.kind == FileKind::Updates && (from..=until).contains(&f.time)),
            );
            let in_range = out
                .iter()
                .any(|f| f.kind == FileKind::Updates || (since..=until).contains(&f.time));
            if !in_range {
                out.clear();
            }
            out
        }
    }
}

/// The MRT files under a local directory (recursively) picked for the
/// range, in order.
pub fn list_dir(dir: &Path, options: &ArchiveOptions) -> Result<Vec<ArchiveFile>, ArchiveError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let io = |source| ArchiveError::Io {
            path: d.display().to_string(),
            source,
        };
        for entry in std::fs::read_dir(&d).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                stack.push(path);
            } else if let Some((kind, time)) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_name)
            {
                files.push(ArchiveFile {
                    location: path.display().to_string(),
                    time,
                    kind,
                });
            }
        }
    }
    let picked = select(files, options);
    if picked.is_empty() {
        return Err(ArchiveError::Empty {
            base: dir.display().to_string(),
            since: options.since,
            until: options.until,
            looked: dir.display().to_string(),
        });
    }
    Ok(picked)
}

/// Reads the files of a local directory picked for the range (see
/// [`list_dir`]) into `sink`, one report per file, stopping early when
/// the sink does.
pub fn read_dir(
    dir: &Path,
    options: &ArchiveOptions,
    read: &ReadOptions,
    keep: &dyn Keep,
    sink: &mut dyn Sink,
) -> Result<Vec<MrtReport>, ArchiveError> {
    let mut reports = Vec::new();
    for file in list_dir(dir, options)? {
        let path = PathBuf::from(&file.location);
        let report =
            mrt::read_file(&path, read, keep, sink).map_err(|source| ArchiveError::Io {
                path: file.location.clone(),
                source,
            })?;
        let stopped = report.stopped;
        reports.push(report);
        if stopped {
            break;
        }
    }
    Ok(reports)
}

/// An HTTP client for archives: ring as the TLS provider (the
/// collector's), certificates checked against the system's roots.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default provider (`rustls-no-provider`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build()
}

/// An archive over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpArchive {
    client: reqwest::Client,
    base: String,
    options: ArchiveOptions,
}

impl HttpArchive {
    /// The archive at `base` (`https://routeviews.org/bgpdata`,
    /// `https://data.ris.ripe.net/rrc00`).
    pub fn new(client: reqwest::Client, base: &str, options: ArchiveOptions) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            options,
        }
    }

    pub fn options(&self) -> &ArchiveOptions {
        &self.options
    }

    /// GETs `url` whole (at most `max_bytes`), retrying 5xx and
    /// connection errors with backoff.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, ArchiveError> {
        let limit = self.options.max_bytes;
        let mut attempt = 0;
        loop {
            let outcome = self.get_once(url, limit).await;
            let retry = match &outcome {
                Err(ArchiveError::Http { source, .. }) => {
                    source.is_connect()
                        || source.is_timeout()
                        || source.is_request()
                        || source.is_body()
                }
                Err(ArchiveError::Status { status, .. }) => *status >= 500,
                _ => false,
            };
            if !retry || attempt >= self.options.retries {
                return outcome;
            }
            let wait = self.options.backoff * 2u32.saturating_pow(attempt);
            if let Err(e) = &outcome {
                tracing::warn!(
                    url,
                    attempt = attempt + 1,
                    wait_ms = wait.as_millis() as u64,
                    "MRT archive: {e}; retrying"
                );
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn get_once(&self, url: &str, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        let http = |source| ArchiveError::Http {
            url: url.to_string(),
            source,
        };
        let mut response = self
            .client
            .get(url)
            .timeout(self.options.timeout)
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ArchiveError::NotFound {
                url: url.to_string(),
            });
        }
        if !status.is_success() {
            return Err(ArchiveError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let too_large = || ArchiveError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The MRT file names of one index page (a 404 is an empty month: an
    /// archive need not have every month).
    async fn names(&self, url: &str) -> Result<Option<Vec<String>>, ArchiveError> {
        let page = match self.get(url).await {
            Ok(p) => p,
            Err(ArchiveError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let html = String::from_utf8_lossy(&page);
        Ok(Some(hrefs(&html)))
    }

    /// The layout, as given or as the index page of `month` shows.
    async fn layout(&self, month: &str) -> Result<Layout, ArchiveError> {
        if let Some(l) = self.options.layout {
            return Ok(l);
        }
        let url = format!("{}/{month}/", self.base);
        let names = self
            .names(&url)
            .await?
            .ok_or_else(|| ArchiveError::NotFound { url: url.clone() })?;
        if names.iter().any(|n| n == "RIBS/" || n == "UPDATES/") {
            Ok(Layout::RouteViews)
        } else if names.iter().any(|n| parse_name(n).is_some()) {
            Ok(Layout::Ris)
        } else {
            Err(ArchiveError::Listing {
                url,
                reason: "neither RIBS/ and UPDATES/ (RouteViews) nor bview./updates. files (RIS) are listed; give the layout".to_string(),
            })
        }
    }

    /// The files of the months listed, with the URLs looked at.
    async fn month_files(
        &self,
        layout: Layout,
        months: &[String],
        looked: &mut Vec<String>,
    ) -> Result<Vec<ArchiveFile>, ArchiveError> {
        let mut files = Vec::new();
        for month in months {
            let dirs = match layout {
                Layout::RouteViews => vec![
                    format!("{}/{month}/RIBS/", self.base),
                    format!("{}/{month}/UPDATES/", self.base),
                ],
                Layout::Ris => vec![format!("{}/{month}/", self.base)],
            };
            for dir in dirs {
                let names = self.names(&dir).await?;
                looked.push(dir.clone());
                for name in names.into_iter().flatten() {
                    if let Some((kind, time)) = parse_name(&name) {
                        files.push(ArchiveFile {
                            location: format!("{dir}{name}"),
                            time,
                            kind,
                        });
                    }
                }
            }
        }
        Ok(files)
    }

    /// The files picked for the range, in order; an error when there are
    /// none.
    pub async fn list(&self) -> Result<Vec<ArchiveFile>, ArchiveError> {
        let o = &self.options;
        let months = months(o.since, o.until);
        let layout = self.layout(&months[0]).await?;
        let mut looked = Vec::new();
        let mut files = self.month_files(layout, &months, &mut looked).await?;
        let has_start = |files: &[ArchiveFile]| {
            files
                .iter()
                .any(|f| f.kind == FileKind::Rib && f.time <= o.since)
        };
        if o.select == Select::Timeline && !has_start(&files) {
            // The start state may be the last RIB of the month before.
            let before = [previous_month(o.since)];
            files.extend(self.month_files(layout, &before, &mut looked).await?);
        }
        let picked = select(files, o);
        if picked.is_empty() {
            return Err(ArchiveError::Empty {
                base: self.base.clone(),
                since: o.since,
                until: o.until,
                looked: looked.join(" "),
            });
        }
        Ok(picked)
    }

    /// Fetches one file and reads it on a blocking thread into `sink`
    /// (handed back with the report).
    pub async fn read_file<S: Sink + Send + 'static>(
        &self,
        file: &ArchiveFile,
        read: &ReadOptions,
        keep: Arc<dyn Keep + Send + Sync>,
        mut sink: S,
    ) -> Result<(MrtReport, S), ArchiveError> {
        let bytes = self.get(&file.location).await?;
        let name = file.location.clone();
        let read = read.clone();
        tokio::task::spawn_blocking(move || {
            let report = mrt::read(&bytes[..], &name, &read, &*keep, &mut sink);
            (report, sink)
        })
        .await
        .map_err(|e| ArchiveError::Task {
            location: file.location.clone(),
            reason: e.to_string(),
        })
    }

    /// Lists the range and reads every file picked, in order, into
    /// `sink`; stops early when the sink does.
    pub async fn read<S: Sink + Send + 'static>(
        &self,
        read: &ReadOptions,
        keep: Arc<dyn Keep + Send + Sync>,
        sink: S,
    ) -> Result<(Vec<MrtReport>, S), ArchiveError> {
        let mut sink = sink;
        let mut reports = Vec::new();
        for file in self.list().await? {
            let (report, back) = self.read_file(&file, read, keep.clone(), sink).await?;
            sink = back;
            let stopped = report.stopped;
            reports.push(report);
            if stopped {
                break;
            }
        }
        Ok((reports, sink))
    }
}

/// Polls an archive for the updates files that appeared since the last
/// poll (a live collector reading an archive every few minutes).
#[derive(Debug, Clone)]
pub struct Poller {
    archive: HttpArchive,
    /// The time of the newest file handed out.
    last: Option<u64>,
}

impl Poller {
    /// Starts at the archive's range: the first poll hands out what
    /// [`HttpArchive::list`] picks (by default the start RIB and the
    /// updates after it); later polls the newer updates files.
    pub fn new(archive: HttpArchive) -> Self {
        Self {
            archive,
            last: None,
        }
    }

    /// The time of the newest file handed out so far.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// The files new since the last poll, in order, looking up to `now`
    /// (Unix seconds). Empty when nothing is new (not an error after the
    /// first poll).
    pub async fn poll(&mut self, now: u64) -> Result<Vec<ArchiveFile>, ArchiveError> {
        let files = match self.last {
            None => {
                self.archive.options.until = self.archive.options.until.max(now);
                self.archive.list().await?
            }
            Some(last) => {
                let layout = self.archive.layout(&months(last, now)[0]).await?;
                let mut looked = Vec::new();
                let mut files = self
                    .archive
                    .month_files(layout, &months(last, now), &mut looked)
                    .await?;
                files.retain(|f| f.kind == FileKind::Updates && f.time > last && f.time <= now);
                files.sort_by_key(|f| f.time);
                files.dedup_by_key(|f| f.time);
                files
            }
        };
        if let Some(newest) = files.iter().map(|f| f.time).max() {
            self.last = Some(self.last.map_or(newest, |l| l.max(newest)));
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_times() {
        assert_eq!(
            parse_name("rib.20140523.0600.bz2"),
            Some((FileKind::Rib, 1_400_824_800))
        );
        assert_eq!(
            parse_name("bview.20240101.0000.gz"),
            Some((FileKind::Rib, 1_704_067_200))
        );
        assert_eq!(
            parse_name("updates.20240229.2355.gz"),
            Some((FileKind::Updates, 1_709_250_900))
        );
        for junk in [
            "rib.2014052.0600.bz2",
            "rib.20141323.0600.bz2",
            "index.html",
            "rib.x",
            "",
            "updates.20240101.2460.gz",
        ] {
            assert_eq!(parse_name(junk), None, "{junk}");
        }
    }

    #[test]
    fn months_of_a_range() {
        assert_eq!(months(1_704_067_200, 1_709_250_900), ["2024.01", "2024.02"]);
        assert_eq!(
            months(1_701_388_800 - 1, 1_701_388_800),
            ["2023.11", "2023.12"]
        );
        assert_eq!(previous_month(1_704_067_200), "2023.12");
        assert_eq!(months(1_400_824_800, 1_400_824_800), ["2014.05"]);
    }

    #[test]
    fn hrefs_of_an_apache_index() {
        let html = r#"<html><body><a href="?C=N;O=D">Name</a>
<a href="/bgpdata/">Parent</a> <A HREF='rib.20140523.0600.bz2'>x</A>
<a href=updates.20140523.0615.bz2>y</a> <a href="RIBS/">RIBS/</a>
<a href="https://example.org/other/bview.20140523.0800.gz#x">z</a><a href="unterminated"#;
        assert_eq!(
            hrefs(html),
            [
                "bgpdata/",
                "rib.20140523.0600.bz2",
                "updates.20140523.0615.bz2",
                "RIBS/",
                "bview.20140523.0800.gz"
            ]
        );
    }

    fn file(kind: FileKind, time: u64) -> ArchiveFile {
        ArchiveFile {
            location: format!("{kind:?}.{time}"),
            time,
            kind,
        }
    }

    #[test]
    fn timeline_is_the_rib_before_and_the_updates_after() {
        use FileKind::*;
        let files = vec![
            file(Updates, 100),
            file(Rib, 100),
            file(Rib, 50),
            file(Updates, 40),
            file(Updates, 115),
            file(Rib, 200),
            file(Updates, 200),
            file(Updates, 300),
        ];
        let mut o = ArchiveOptions::new(110, 250);
        let got: Vec<_> = select(files.clone(), &o)
            .iter()
            .map(|f| (f.kind, f.time))
            .collect();
        assert_eq!(
            got,
            [(Rib, 100), (Updates, 100), (Updates, 115), (Updates, 200)]
        );
        o.select = Select::All;
        let got: Vec<_> = select(files, &o).iter().map(|f| (f.kind, f.time)).collect();
        assert_eq!(got, [(Updates, 115), (Rib, 200), (Updates, 200)]);
    }
}
