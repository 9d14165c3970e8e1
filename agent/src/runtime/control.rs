//! The schedule task (with a collector): asks the collector for this
//! agent's schedule once per round interval, applies it within the local
//! limits, reports what it refused, and hands each new plan to the round
//! loop through a watch channel; the loop puts it in force at its next
//! round boundary ([`super::plan`]). It runs beside the rounds, never in
//! their way: a collector that hangs (stopped, overloaded, hostile) delays
//! the next schedule, never a probe.
//!
//! What the collector sends (its ETag, the items it asked for, its error
//! answers) is logged only in `?` fields, escaped ([`crate::logging`]).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::delivery::Delivering;
use super::shutdown::Shutdown;
use super::sockets::Families;
use crate::config::Config;
use crate::schedule::{self, Fetched, Plan, Refusal};
use crate::status::Status;
use crate::upload;

/// The schedule task's state.
#[derive(Debug)]
pub struct Control {
    client: reqwest::Client,
    collector: String,
    token_file: PathBuf,
    cache: PathBuf,
    etag: Option<String>,
    /// The last error said (said again only when it changes).
    last_error: Option<String>,
    config: Arc<Config>,
    status: Arc<Status>,
    /// Address families with open sockets.
    families: Families,
    /// Refusals of the schedule just applied, not yet reported.
    unreported: Option<(String, Vec<Refusal>)>,
}

impl Control {
    pub fn new(
        d: &Delivering,
        config: Arc<Config>,
        status: Arc<Status>,
        families: Families,
    ) -> Self {
        Self {
            client: d.uploader.client.clone(),
            collector: d.uploader.cfg.collector.clone(),
            token_file: d.uploader.cfg.token_file.clone(),
            cache: schedule::cache_path(&d.spool_dir),
            etag: None,
            last_error: None,
            config,
            status,
            families,
            unreported: None,
        }
    }

    /// The ETag of the schedule in force, if any.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The schedule cached by the last run, applied within the local
    /// limits: the plan to start with (before the collector answers).
    pub fn cached(&mut self) -> Option<Plan> {
        match schedule::load_cache(&self.cache) {
            Ok(Some(cached)) => {
                tracing::info!(etag = ?cached.etag, "applying the cached schedule");
                self.etag = Some(cached.etag.clone());
                let (plan, refused) = schedule::apply(
                    &self.config,
                    &cached.schedule,
                    self.families.v4,
                    self.families.v6,
                );
                note_refusals(&self.status, &refused);
                Some(plan)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// Fetches, applies and reports until `stop`; `every`: the interval
    /// of the plan in force.
    pub async fn run(
        mut self,
        plans: watch::Sender<Option<Plan>>,
        stop: Shutdown,
        mut every: Duration,
    ) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            let fetched = tokio::select! {
                p = self.refresh() => p,
                () = stop.cancelled() => return,
            };
            if let Some(p) = fetched {
                every = p.interval;
                plans.send_replace(Some(p));
            }
            if let Some((etag, refused)) = self.unreported.take() {
                tokio::select! {
                    () = self.report(&etag, &refused) => {}
                    () = stop.cancelled() => return,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Fetches the schedule once; a new plan when it changed.
    pub async fn refresh(&mut self) -> Option<Plan> {
        let token = match upload::read_token(&self.token_file) {
            Ok(t) => t,
            Err(e) => {
                self.error("schedule: not fetched", &e);
                return None;
            }
        };
        let fetched =
            schedule::fetch(&self.client, &self.collector, &token, self.etag.as_deref()).await;
        match fetched {
            Fetched::NotModified => None,
            Fetched::New(cached) => {
                self.last_error = None;
                if let Err(e) = schedule::save_cache(&self.cache, &cached) {
                    tracing::warn!("{e}");
                }
                let (plan, refused) = schedule::apply(
                    &self.config,
                    &cached.schedule,
                    self.families.v4,
                    self.families.v6,
                );
                tracing::info!(
                    etag = ?cached.etag,
                    "schedule from the collector: {} target(s), every {} s, {} pps; {} item(s) \
                     refused",
                    plan.targets.len(),
                    plan.interval.as_secs(),
                    plan.pps,
                    refused.len()
                );
                note_refusals(&self.status, &refused);
                self.status.schedule_fetched.store(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    Ordering::Relaxed,
                );
                self.unreported = Some((cached.etag.clone(), refused));
                self.etag = Some(cached.etag);
                Some(plan)
            }
            Fetched::NoSchedule => {
                self.last_error = None;
                if self.etag.take().is_some() {
                    tracing::info!("the collector withdrew the schedule: local configuration");
                    let _ = std::fs::remove_file(&self.cache);
                    note_refusals(&self.status, &[]);
                    return Some(Plan::local(&self.config));
                }
                None
            }
            Fetched::Failed(e) => {
                self.error("schedule: not fetched; keeping the one in force", &e);
                None
            }
        }
    }

    /// Tells the collector what was refused (an empty list clears its
    /// record); a failure is logged, not retried: the next schedule
    /// brings the next report.
    async fn report(&mut self, etag: &str, refused: &[Refusal]) {
        let token = match upload::read_token(&self.token_file) {
            Ok(t) => t,
            Err(e) => {
                self.error("schedule: refusals not reported", &e);
                return;
            }
        };
        if let Err(e) = schedule::report(&self.client, &self.collector, &token, etag, refused).await
        {
            tracing::warn!(
                error = ?upload::error_chain(&e),
                "schedule: refusals not reported"
            );
        }
    }

    /// Logs an error once until it changes. The error may quote the
    /// collector: it goes in a `?` field.
    fn error(&mut self, what: &str, e: &dyn std::error::Error) {
        let text = upload::error_chain(e);
        let key = format!("{what}: {text}");
        if self.last_error.as_ref() != Some(&key) {
            tracing::warn!(error = ?text, "{what}");
            self.last_error = Some(key);
        }
    }
}

/// Logs and counts the refusals of the schedule just applied. Every text
/// in a [`Refusal`] is the agent's own (what the collector sent is quoted
/// in it, escaped, by [`schedule::apply`]).
pub fn note_refusals(status: &Status, refused: &[Refusal]) {
    for r in refused {
        tracing::warn!("schedule: refused {}: {}", r.item, r.why);
    }
    status
        .schedule_refusals_total
        .fetch_add(refused.len() as u64, Ordering::Relaxed);
    status
        .schedule_refused_now
        .store(refused.len() as u64, Ordering::Relaxed);
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
