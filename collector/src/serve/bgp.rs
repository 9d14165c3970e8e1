//! The control plane in `serve`: one task owns the BGP [`Model`] and
//! applies what every source sends it, in order; it hands the events to
//! the store writer and compares the planes every few seconds. The
//! metrics are derived from the model at scrape time.
//!
//! Series (all bounded by the target set, the organisation table and
//! the sources configured):
//! - `tumen_bgp_upstream_share_ratio{prefix,upstream}`: per tracked
//!   prefix and over all (`prefix="all"`);
//! - `tumen_bgp_visibility_ratio{prefix}`;
//! - `tumen_bgp_path_upstream_info{peer,prefix,upstream,upstream_asn}`:
//!   one per (feeding peer, prefix), at most `bgp.max_peer_series`
//!   (default 5000; `bgp.peer_series = false` for none): RIS has some
//!   400 full-feed peers, times the five DPRK prefixes = 2000;
//! - `tumen_bgp_upstream_last_change_timestamp_seconds{prefix,from,to}`:
//!   the latest change of a prefix's dominant upstream;
//! - `tumen_bgp_updates_total{source}`, `tumen_bgp_source_up{source}`,
//!   `tumen_bgp_last_update_timestamp_seconds{source}`,
//!   `tumen_bgp_faults_total{source,kind}`, `tumen_bgp_gaps_total{source}`,
//!   `tumen_bgp_peers{source}` (feeding peers);
//! - `tumen_plane_divergence_info{prefix,data_upstream,bgp_upstream}`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, Opts};
use tokio::sync::mpsc;

use super::metrics::now_ms;
use super::writer;
use crate::bgp::model::{BgpEvent, Model};
use crate::bgp::Message;
use crate::state::Live;

/// How often the planes are compared.
pub const COMPARE_EVERY: Duration = Duration::from_secs(5);

/// Applies messages to the model until every sender is gone or `stop`;
/// events go to the writer in batches (whatever arrived together).
pub async fn run(
    model: Arc<RwLock<Model>>,
    mut rx: mpsc::Receiver<Message>,
    writer: mpsc::Sender<writer::Job>,
    live: Arc<RwLock<Live>>,
    silence: Duration,
) {
    let silence_ms = u64::try_from(silence.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(COMPARE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut events: Vec<BgpEvent> = Vec::new();
        tokio::select! {
            msg = rx.recv() => {
                let Some(first) = msg else { return };
                let mut m = model.write().unwrap_or_else(|p| p.into_inner());
                events.extend(m.apply(first));
                // Whatever else is queued, under the same lock.
                for _ in 0..1024 {
                    match rx.try_recv() {
                        Ok(msg) => events.extend(m.apply(msg)),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => {
                let now = now_ms();
                let data = live
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .shares(now, silence_ms);
                let mut m = model.write().unwrap_or_else(|p| p.into_inner());
                events.extend(m.compare(&data, now));
            }
        }
        for e in &events {
            tracing::info!(
                kind = e.kind.as_str(),
                source = %e.source,
                peer = e.peer.as_deref().unwrap_or("-"),
                prefix = %e.prefix.map(|p| p.to_string()).unwrap_or_default(),
                from = e.from.as_ref().map_or("-", |u| u.name.as_str()),
                to = e.to.as_ref().map_or("-", |u| u.name.as_str()),
                "bgp event"
            );
        }
        if !events.is_empty() && writer.send(writer::Job::Bgp(events)).await.is_err() {
            return;
        }
    }
}

fn must<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("metric definition: {e}"))
}

/// The control-plane metrics, computed from the model at each scrape.
#[derive(Debug)]
pub struct BgpCollector {
    model: Arc<RwLock<Model>>,
    peer_series: usize,
    share: GaugeVec,
    visibility: GaugeVec,
    path_info: GaugeVec,
    last_change: GaugeVec,
    updates: IntCounterVec,
    up: GaugeVec,
    last_update: GaugeVec,
    faults: IntCounterVec,
    gaps: IntCounterVec,
    peers: GaugeVec,
    divergence: GaugeVec,
    dropped: GaugeVec,
    bmp: Option<(Arc<crate::bgp::bmp::Counters>, IntCounterVec)>,
    descs: Vec<Desc>,
    lock: Mutex<()>,
}

impl BgpCollector {
    /// `peer_series`: most `tumen_bgp_path_upstream_info` series (0: none).
    /// `bmp`: the BMP listener's counters, when it runs.
    pub fn new(
        model: Arc<RwLock<Model>>,
        peer_series: usize,
        bmp: Option<Arc<crate::bgp::bmp::Counters>>,
    ) -> Self {
        let g = |name: &str, help: &str, labels: &[&str]| {
            must(GaugeVec::new(Opts::new(name, help), labels))
        };
        let c = |name: &str, help: &str, labels: &[&str]| {
            must(IntCounterVec::new(Opts::new(name, help), labels))
        };
        let share = g(
            "tumen_bgp_upstream_share_ratio",
            "Fraction of feeding BGP peers whose route to the prefix has this control-plane upstream, per prefix and over all (prefix=\"all\").",
            &["prefix", "upstream"],
        );
        let visibility = g(
            "tumen_bgp_visibility_ratio",
            "Fraction of feeding BGP peers with a route to the prefix.",
            &["prefix"],
        );
        let path_info = g(
            "tumen_bgp_path_upstream_info",
            "Control-plane upstream of each (BGP peer, prefix) route (value always 1).",
            &["peer", "prefix", "upstream", "upstream_asn"],
        );
        let last_change = g(
            "tumen_bgp_upstream_last_change_timestamp_seconds",
            "Unix time of the latest change of a prefix's dominant control-plane upstream, labelled with the upstreams before and after it.",
            &["prefix", "from", "to"],
        );
        let updates = c(
            "tumen_bgp_updates_total",
            "BGP updates (and RIB dump entries) received, by source.",
            &["source"],
        );
        let up = g(
            "tumen_bgp_source_up",
            "Whether the BGP source is connected (bmp: at least one router; archive: the latest poll worked).",
            &["source"],
        );
        let last_update = g(
            "tumen_bgp_last_update_timestamp_seconds",
            "Newest time carried by a message of the source (Unix seconds).",
            &["source"],
        );
        let faults = c(
            "tumen_bgp_faults_total",
            "Input the BGP source could not read, by kind (each also logged).",
            &["source", "kind"],
        );
        let gaps = c(
            "tumen_bgp_gaps_total",
            "Stretches of time the source may have missed updates in (RIS Live reconnects).",
            &["source"],
        );
        let peers = g(
            "tumen_bgp_peers",
            "BGP peers counting for visibility (up, and carrying routes to the target), by source.",
            &["source"],
        );
        let divergence = g(
            "tumen_plane_divergence_info",
            "A /24 whose dominant upstream differs between the data plane (agents) and the control plane (BGP) for longer than bgp.divergence_for (value always 1).",
            &["prefix", "data_upstream", "bgp_upstream"],
        );
        let dropped = g(
            "tumen_bgp_dropped_series",
            "Series left out to keep labels bounded (path_info beyond bgp.max_peer_series; prefixes beyond the model's cap).",
            &["what"],
        );
        let bmp = bmp.map(|counters| {
            (
                counters,
                c(
                    "tumen_bgp_bmp_messages_total",
                    "BMP messages read (messages), and those not handed on: route monitoring of another RIB view (other_view), End-of-RIB markers, messages of other kinds (ignored), routers refused over bgp.bmp_max_routers (refused).",
                    &["what"],
                ),
            )
        });
        let mut descs = Vec::new();
        if let Some((_, v)) = &bmp {
            descs.extend(v.desc().into_iter().cloned());
        }
        for col in [
            &share as &dyn Collector,
            &visibility,
            &path_info,
            &last_change,
            &updates,
            &up,
            &last_update,
            &faults,
            &gaps,
            &peers,
            &divergence,
            &dropped,
        ] {
            descs.extend(col.desc().into_iter().cloned());
        }
        Self {
            model,
            peer_series,
            share,
            visibility,
            path_info,
            last_change,
            updates,
            up,
            last_update,
            faults,
            gaps,
            peers,
            divergence,
            dropped,
            bmp,
            descs,
            lock: Mutex::new(()),
        }
    }
}

impl Collector for BgpCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let m = self.model.read().unwrap_or_else(|p| p.into_inner());
        for v in [
            &self.share,
            &self.visibility,
            &self.path_info,
            &self.last_change,
            &self.up,
            &self.last_update,
            &self.peers,
            &self.divergence,
            &self.dropped,
        ] {
            v.reset();
        }
        self.updates.reset();
        self.faults.reset();
        self.gaps.reset();
        for view in m.prefixes() {
            let p = view.prefix.to_string();
            if let Some(v) = view.visibility {
                self.visibility.with_label_values(&[p.as_str()]).set(v);
            }
            for (up, f) in &view.shares {
                self.share.with_label_values(&[p.as_str(), up]).set(*f);
            }
            if let Some(c) = &view.last_change {
                self.last_change
                    .with_label_values(&[p.as_str(), c.from.as_str(), c.to.as_str()])
                    .set(c.at_ms as f64 / 1000.0);
            }
        }
        for (up, f) in m.shares_all() {
            self.share.with_label_values(&["all", up.as_str()]).set(f);
        }
        let mut dropped = 0usize;
        for (i, r) in m.routes().into_iter().enumerate() {
            let Some(u) = &r.upstream else { continue };
            if i >= self.peer_series {
                dropped += 1;
                continue;
            }
            let asn = u.asn.map(|a| a.to_string()).unwrap_or_default();
            self.path_info
                .with_label_values(&[
                    r.peer.as_str(),
                    r.prefix.to_string().as_str(),
                    u.name.as_str(),
                    asn.as_str(),
                ])
                .set(1.0);
        }
        self.dropped
            .with_label_values(&["path_info"])
            .set(dropped as f64);
        self.dropped
            .with_label_values(&["prefix_updates"])
            .set(m.overflow as f64);
        let mut feeding: std::collections::BTreeMap<String, f64> = Default::default();
        for (name, _) in m.sources().iter() {
            feeding.insert(name.clone(), 0.0);
        }
        for (source, n) in m.feeding_by_source() {
            feeding.insert(source, n as f64);
        }
        for (name, s) in m.sources() {
            self.updates
                .with_label_values(&[name.as_str()])
                .inc_by(s.updates);
            self.up
                .with_label_values(&[name.as_str()])
                .set(if s.up { 1.0 } else { 0.0 });
            if s.last_update_ms > 0 {
                self.last_update
                    .with_label_values(&[name.as_str()])
                    .set(s.last_update_ms as f64 / 1000.0);
            }
            for (kind, n) in &s.faults {
                self.faults
                    .with_label_values(&[name.as_str(), kind])
                    .inc_by(*n);
            }
            self.gaps.with_label_values(&[name.as_str()]).inc_by(s.gaps);
        }
        for (source, n) in feeding {
            self.peers.with_label_values(&[source.as_str()]).set(n);
        }
        for d in m.divergences() {
            self.divergence
                .with_label_values(&[
                    d.prefix.to_string().as_str(),
                    d.data_upstream.as_str(),
                    d.bgp_upstream.as_str(),
                ])
                .set(1.0);
        }
        let mut out = Vec::new();
        if let Some((counters, v)) = &self.bmp {
            use std::sync::atomic::Ordering::Relaxed;
            v.reset();
            for (what, n) in [
                ("messages", &counters.messages),
                ("other_view", &counters.other_view),
                ("end_of_rib", &counters.end_of_rib),
                ("ignored", &counters.ignored),
                ("refused", &counters.refused),
            ] {
                v.with_label_values(&[what]).inc_by(n.load(Relaxed));
            }
            out.extend(v.collect());
        }
        for col in [
            &self.share as &dyn Collector,
            &self.visibility,
            &self.path_info,
            &self.last_change,
            &self.updates,
            &self.up,
            &self.last_update,
            &self.faults,
            &self.gaps,
            &self.peers,
            &self.divergence,
            &self.dropped,
        ] {
            out.extend(col.collect());
        }
        out
    }
}

/// A source's task, to run as a [`super::Background`].
pub type SourceTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Starts the configured sources (binding the BMP listener now, so that
/// a port in use fails the start): their tasks, named.
pub async fn sources(
    app: &Arc<super::App>,
    tx: mpsc::Sender<Message>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<(&'static str, SourceTask)>, super::StartError> {
    use crate::bgp::{bmp, rislive};
    let cfg = &app.config.bgp;
    let mut tasks: Vec<(&'static str, SourceTask)> = Vec::new();
    {
        let mut m = app.bgp.write().unwrap_or_else(|p| p.into_inner());
        if cfg.bmp_listen.is_some() {
            m.declare_source("bmp");
        }
        if cfg.archive.is_some() {
            m.declare_source("mrt");
        }
        if cfg.ris_live {
            m.declare_source("ris-live");
        }
    }
    if let Some(addr) = cfg.bmp_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| super::StartError::Bind {
                addr,
                hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                    " (--bmp-listen: choose another port)"
                } else {
                    " (--bmp-listen)"
                },
                source,
            })?;
        let opts = bmp::BmpOptions {
            view: match cfg.bmp_view.as_str() {
                "post-policy" => bmp::View::PostPolicy,
                "loc-rib" => bmp::View::LocRib,
                _ => bmp::View::PrePolicy,
            },
            max_routers: cfg.bmp_max_routers,
            counters: app.bmp_counters.clone(),
            ..Default::default()
        };
        tasks.push((
            "bmp",
            Box::pin(bmp::serve(listener, tx.clone(), opts, stop.clone())),
        ));
    }
    if cfg.ris_live {
        let opts = rislive::RisLiveOptions {
            url: cfg.ris_live_url.clone(),
            prefixes: app.target.prefixes.clone(),
            host: cfg.ris_live_host.clone(),
            ..Default::default()
        };
        tasks.push((
            "ris-live",
            Box::pin(rislive::run(opts, tx.clone(), stop.clone())),
        ));
    }
    if let Some(archive) = &cfg.archive {
        tasks.push((
            "mrt-archive",
            Box::pin(follow_archive(
                archive.clone(),
                cfg.archive_poll,
                app.target.prefixes.clone(),
                tx.clone(),
            )),
        ));
    }
    Ok(tasks)
}

/// The collector an archive's files come from, for the peers' names:
/// `rrc00` for `.../rrc00`, `route-views.linx` for
/// `.../route-views.linx/bgpdata`, `route-views2` for `.../bgpdata`,
/// else the last part of the path (or the host).
pub fn collector_name(base: &str) -> String {
    let path = base
        .split_once("://")
        .map_or(base, |(_, rest)| rest)
        .trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [.., prev, "bgpdata"] if parts.len() > 2 || !base.contains("://") => prev.to_string(),
        [_, "bgpdata"] | ["bgpdata"] => "route-views2".into(),
        [.., last] => last.to_string(),
        [] => "mrt".into(),
    }
}

/// The collector of a local MRT file or directory, from where it sits
/// in an archive's layout (`.../rrc00/2024.01/bview...` gives `rrc00`,
/// `.../route-views.linx/bgpdata/2024.01/RIBS/rib...` `route-views.linx`);
/// `mrt` when the path says nothing.
pub fn collector_of_path(path: &std::path::Path) -> String {
    let month = |s: &str| {
        s.len() == 7 && s.as_bytes()[4] == b'.' && s.bytes().filter(u8::is_ascii_digit).count() == 6
    };
    let mut dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    };
    while let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
        if name == "RIBS" || name == "UPDATES" || month(name) {
            dir.pop();
        } else {
            break;
        }
    }
    let text = dir.display().to_string();
    if text.is_empty() || text == "." || text == "/" {
        return "mrt".into();
    }
    collector_name(&text)
}

/// Follows an MRT archive (a URL or a local directory): the latest RIB
/// dump and the updates after it, then every `every` the updates files
/// that appeared. `tumen_bgp_source_up{source="mrt"}` says whether the
/// latest poll worked.
async fn follow_archive(
    base: String,
    every: Duration,
    targets: Vec<ipnet::IpNet>,
    tx: mpsc::Sender<Message>,
) {
    use crate::bgp::archive;
    use crate::bgp::mrt;
    let read = mrt::ReadOptions {
        collector: collector_name(&base),
        ..Default::default()
    };
    let keep: Arc<dyn mrt::Keep + Send + Sync> = Arc::new(mrt::Overlapping(targets));
    let now_s = || now_ms() / 1000;
    let local = !(base.starts_with("http://") || base.starts_with("https://"));
    let (mut poller, fetch) = if local {
        (None, None)
    } else {
        match archive::client() {
            Ok(c) => {
                let options = archive::ArchiveOptions::new(now_s(), now_s());
                (
                    Some(archive::Poller::new(archive::HttpArchive::new(
                        c.clone(),
                        &base,
                        options.clone(),
                    ))),
                    Some(archive::HttpArchive::new(c, &base, options)),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "MRT archive: no HTTP client; not followed");
                return;
            }
        }
    };
    let mut last_local: Option<u64> = None;
    loop {
        let state = |up: bool| Message::SourceState {
            source: "mrt".into(),
            router: None,
            up,
            at_ms: now_ms(),
        };
        let result: Result<usize, String> =
            if let (Some(p), Some(fetch)) = (poller.as_mut(), fetch.as_ref()) {
                match p.poll(now_s()).await {
                    Ok(files) => {
                        let mut n = 0;
                        let mut failed = None;
                        for f in &files {
                            match fetch.read_file(f, &read, keep.clone(), tx.clone()).await {
                                Ok((report, _)) => {
                                    tracing::info!(%report, "MRT archive: file read");
                                    n += 1;
                                }
                                Err(e) => {
                                    failed = Some(e.to_string());
                                    break;
                                }
                            }
                        }
                        failed.map_or(Ok(n), Err)
                    }
                    Err(e) => Err(e.to_string()),
                }
            } else {
                let dir = std::path::PathBuf::from(&base);
                let since = last_local.map_or_else(now_s, |l| l + 1);
                let mut options = archive::ArchiveOptions::new(since, now_s());
                if last_local.is_some() {
                    options.select = archive::Select::All;
                }
                let read = read.clone();
                let keep = keep.clone();
                let mut sink = tx.clone();
                let done = tokio::task::spawn_blocking(move || {
                    let files = match archive::list_dir(&dir, &options) {
                        Ok(f) => f,
                        // Nothing new is no error once started.
                        Err(archive::ArchiveError::Empty { .. }) => return Ok((0, None, true)),
                        Err(e) => return Err(e.to_string()),
                    };
                    // A file modified in the last minute may still be being
                    // written: it (and what follows) waits for the next poll.
                    let settled = |p: &std::path::Path| {
                        std::fs::metadata(p)
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|age| age >= Duration::from_secs(60))
                    };
                    let mut newest = None;
                    let mut n = 0;
                    for f in &files {
                        let path = std::path::Path::new(&f.location);
                        if !settled(path) {
                            break;
                        }
                        match mrt::read_file(path, &read, &*keep, &mut sink) {
                            Ok(report) => tracing::info!(%report, "MRT directory: file read"),
                            Err(e) => return Err(format!("{}: {e}", f.location)),
                        }
                        newest = Some(f.time);
                        n += 1;
                    }
                    Ok((n, newest, false))
                })
                .await;
                match done {
                    Ok(Ok((n, newest, empty))) => {
                        if newest.is_some() {
                            last_local = newest;
                        } else if empty && last_local.is_none() {
                            // Nothing yet: from now on, whatever appears.
                            last_local = Some(now_s());
                        }
                        Ok(n)
                    }
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(e.to_string()),
                }
            };
        let up = match result {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(files = n, archive = %base, "MRT archive polled");
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, archive = %base, "MRT archive poll failed; retried at the next poll");
                false
            }
        };
        if tx.send(state(up)).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::collector_name;

    #[test]
    fn collector_names_of_archive_bases() {
        assert_eq!(collector_name("https://data.ris.ripe.net/rrc00/"), "rrc00");
        assert_eq!(
            collector_name("http://archive.routeviews.org/bgpdata"),
            "route-views2"
        );
        assert_eq!(
            collector_name("http://archive.routeviews.org/route-views.linx/bgpdata/"),
            "route-views.linx"
        );
        assert_eq!(collector_name("/srv/mrt/rrc00"), "rrc00");
        assert_eq!(collector_name("/srv/lab/bgpdata"), "lab");
    }

    #[test]
    fn collectors_of_local_paths() {
        use super::collector_of_path;
        use std::path::Path;
        assert_eq!(
            collector_of_path(Path::new("/srv/rrc00/2024.01/bview.20240101.0000.gz")),
            "rrc00"
        );
        assert_eq!(
            collector_of_path(Path::new(
                "/m/route-views.linx/bgpdata/2024.01/RIBS/rib.20240101.0000.bz2"
            )),
            "route-views.linx"
        );
        assert_eq!(collector_of_path(Path::new("rib.20140523.0600.bz2")), "mrt");
        assert_eq!(
            collector_of_path(Path::new("/data/rib.20140523.0600.bz2")),
            "data"
        );
    }
}
