//! The running agent: the round loop and the tasks beside it, generic over
//! the [`Network`] so that all of it runs over the mock network in tests.
//!
//! [`Agent::run`] is the whole life of an agent with rounds every
//! `interval`: results go to the [`sink`] (the spool, or JSON lines on
//! stdout); with a collector, tasks of their own ([`task`]) upload the
//! spool, fetch the schedule ([`control`]; a new plan reaches the loop
//! through a watch channel and goes in force at the next round boundary,
//! [`plan`]) and serve `/metrics`. The loop never awaits the network
//! beyond its own probes, so a collector that hangs or misbehaves cannot
//! slow the rounds.
//!
//! Shutdown is one cancellation tree ([`shutdown`]): the caller's token
//! (cancelled by SIGTERM or SIGINT in the binary) stops the rounds; the
//! run then syncs the spool, the schedule task and the metrics listener
//! end, and the uploader drains for `shutdown_grace`; what is left waits
//! in the spool. The last lines logged are the account.
//!
//! [`Agent::once`] is one round printed as JSON lines (`--once`).
//!
//! What stays in the binary: the command line, the configuration, the dry
//! run, the raw sockets and the privilege drop ([`sockets`]), the signals
//! and the exit codes.

pub mod control;
pub mod delivery;
pub mod plan;
pub mod shutdown;
pub mod sink;
pub mod sockets;
pub mod task;
#[cfg(test)]
pub(crate) mod testutil;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::config::Config;
use crate::engine::{Gate, Ident, Network, Stats};
use crate::ping::Pingers;
use crate::round::{Destination, Prober};
use crate::schedule::Plan;
use crate::spool::{Spool, SpoolStats};
use crate::status::{self, ProbeCounters, Status};

use control::Control;
use delivery::Delivering;
use plan::{InForce, Replan};
use shutdown::Shutdown;
use sink::Sink;
use sockets::Families;
use task::{Ended, Task};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The metrics listener's address cannot be bound.
    #[error(
        "metrics_listen {addr}: {source}: choose a free local address and port \
         (--metrics-listen ADDR:PORT)"
    )]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the spool holds and has done, at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolAccount {
    pub stats: SpoolStats,
    pub pending: u64,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub rounds: u64,
    pub stats: Stats,
    pub spool: Option<SpoolAccount>,
    /// The uploader was still busy when the grace period ended.
    pub grace_over: bool,
}

/// An agent ready to run: its configuration, destinations and network.
pub struct Agent<N: Network> {
    config: Config,
    dsts: Vec<Destination>,
    prober: Prober<N>,
    pingers: Option<Pingers>,
    families: Families,
    delivery: Option<Delivering>,
    out: Box<dyn Write + Send>,
}

impl<N: Network> std::fmt::Debug for Agent<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("id", &self.config.id)
            .field("dsts", &self.dsts.len())
            .field("families", &self.families)
            .field("delivery", &self.delivery.is_some())
            .finish()
    }
}

fn lock(spool: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A ticker for rounds every `every`, the first at `start`; a round that
/// overruns delays the next rather than bunching them.
fn ticker(start: Instant, every: Duration) -> Interval {
    let mut t = tokio::time::interval_at(start, every);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

impl<N: Network> Agent<N> {
    /// An agent over `net` (whose sockets cover `families`), probing
    /// `dsts` as `config` says, printing JSON lines on stdout.
    pub fn new(
        config: Config,
        dsts: Vec<Destination>,
        net: N,
        ident: Ident,
        families: Families,
    ) -> Self {
        let prober = Prober::new(
            net,
            Gate::new(config.allow.clone(), config.pps),
            ident,
            config.id.clone(),
            config.probe.clone(),
            config.targets.clone(),
        );
        Self {
            config,
            dsts,
            prober,
            pingers: None,
            families,
            delivery: None,
            out: Box::new(std::io::stdout()),
        }
    }

    /// Echo requests go through these clients.
    pub fn with_pingers(mut self, pingers: Option<Pingers>) -> Self {
        self.pingers = pingers;
        self
    }

    /// Results go to this spool and collector instead of stdout.
    pub fn with_delivery(mut self, delivery: Option<Delivering>) -> Self {
        self.delivery = delivery;
        self
    }

    /// JSON lines go to `out` instead of stdout.
    pub fn with_output(mut self, out: Box<dyn Write + Send>) -> Self {
        self.out = out;
        self
    }

    /// One round (and its echo requests), printed as JSON lines.
    pub async fn once(self) -> Report {
        let Agent {
            dsts,
            mut prober,
            pingers,
            out,
            ..
        } = self;
        let started = Instant::now();
        let mut sink = Sink::lines(out);
        prober.round(&dsts, &mut |r| sink.put(&r)).await;
        if let Some(p) = &pingers {
            prober.ping(p, &dsts, &mut |r| sink.put(&r)).await;
        }
        sink.sync();
        let s = prober.stats;
        tracing::info!(
            "{} destination(s), {} probes sent in {:.2} s, {} replies matched, {} late, \
             {} duplicate, {} unmatched, {} malformed, {} refused, {} send errors",
            dsts.len(),
            s.sent,
            started.elapsed().as_secs_f64(),
            s.matched,
            s.late,
            s.duplicate,
            s.unmatched,
            s.malformed,
            s.refused,
            s.send_errors
        );
        Report {
            rounds: prober.rounds,
            stats: s,
            spool: None,
            grace_over: false,
        }
    }

    /// Rounds every `interval` until `shutdown` is cancelled (or stdout,
    /// without a collector, is closed), then the drain.
    pub async fn run(self, shutdown: Shutdown) -> Result<Report, RunError> {
        let Agent {
            config,
            dsts,
            mut prober,
            pingers,
            families,
            delivery,
            out,
        } = self;
        let config = Arc::new(config);
        // The run's own node of the tree: the caller's cancel reaches it,
        // and the loop cancels it when it stops for a reason of its own.
        let stop = shutdown.child_token();
        let status = Arc::new(Status {
            agent: config.id.clone(),
            spool: delivery.as_ref().map(|d| d.spool.clone()),
            upload: delivery.as_ref().map(|d| d.uploader.stats.clone()),
            ..Status::default()
        });
        let mut metrics_task = match config.metrics_listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| RunError::Metrics { addr, source })?;
                let done = stop.clone().cancelled_owned();
                Some(Task::spawn(
                    "metrics",
                    status::serve(l, status.clone(), done),
                ))
            }
            None => None,
        };
        let wake = Arc::new(Notify::new());
        let mut sink = match &delivery {
            Some(d) => Sink::spool(d.spool.clone(), wake.clone()),
            None => Sink::lines(out),
        };
        let mut in_force = InForce::local(&config, dsts);
        let can_ping = pingers.is_some();
        let mut control = delivery
            .as_ref()
            .map(|d| Control::new(d, config.clone(), status.clone(), families));
        if let Some(p) = control.as_mut().and_then(Control::cached) {
            in_force.replan(&config, &mut prober, p, can_ping);
        }
        let mut grace = Duration::ZERO;
        let mut upload_task = delivery.map(|d| {
            grace = d.grace;
            let (up, wake, stop) = (d.uploader, wake.clone(), stop.clone());
            Task::spawn("upload", async move { up.run(wake, stop).await })
        });
        // New plans from the schedule task; None until it has one.
        let (plans_tx, mut plans) = watch::channel(None::<Plan>);
        let mut schedule_task = control.map(|c| {
            let every = in_force.plan.interval;
            Task::spawn("schedule", c.run(plans_tx, stop.child_token(), every))
        });
        let mut tick = ticker(Instant::now(), in_force.plan.interval);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            // A round boundary: the newest plan goes in force now, never
            // in the middle of a round.
            if plans.has_changed().unwrap_or(false) {
                let next = plans.borrow_and_update().clone();
                if let Some(p) = next {
                    let replanned = in_force.replan(&config, &mut prober, p, can_ping);
                    if replanned
                        == (Replan::Applied {
                            interval_changed: true,
                        })
                    {
                        let every = in_force.plan.interval;
                        tick = ticker(Instant::now() + every, every);
                    }
                }
            }
            for t in [&mut upload_task, &mut schedule_task, &mut metrics_task]
                .into_iter()
                .flatten()
            {
                t.check();
            }
            let dsts = &in_force.dsts;
            let work = async {
                prober.round(dsts, &mut |r| sink.put(&r)).await;
                if let Some(p) = pingers.as_ref().filter(|_| prober.cfg.ping_count > 0) {
                    prober.ping(p, dsts, &mut |r| sink.put(&r)).await;
                }
            };
            let stopped = tokio::select! {
                () = stop.cancelled() => true,
                () = work => false,
            };
            sink.sync();
            {
                let s = prober.stats;
                let mut p = status
                    .probe
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *p = ProbeCounters {
                    rounds: prober.rounds,
                    sent: s.sent,
                    matched: s.matched,
                    refused: s.refused,
                    send_errors: s.send_errors,
                };
            }
            if stopped {
                break;
            }
            if !sink.lines_ok() {
                tracing::warn!("stdout is closed; stopping");
                break;
            }
        }
        // Probing has stopped. What is spooled is durable; the uploader
        // drains what the grace period allows and the rest waits for the
        // next start. The schedule is of no use any more, and the metrics
        // listener closes.
        sink.sync();
        stop.cancel();
        if let Some(t) = schedule_task {
            t.finish(Duration::from_secs(1)).await;
        }
        let mut grace_over = false;
        if let Some(t) = upload_task {
            if t.finish(grace).await == Ended::Aborted {
                grace_over = true;
                let left = status
                    .spool
                    .as_ref()
                    .map_or(0, |s| lock(s).pending_records());
                tracing::warn!(
                    "grace period ({:.1} s) over: {left} result(s) stay in the spool for the \
                     next start",
                    grace.as_secs_f64()
                );
            }
        }
        if let Some(t) = metrics_task {
            t.finish(Duration::from_secs(2)).await;
        }
        tracing::info!(
            "stopped after {} round(s), {} probes sent",
            prober.rounds,
            prober.stats.sent
        );
        let spool = status.spool.as_ref().map(|spool| {
            let s = lock(spool);
            let st = s.stats;
            tracing::info!(
                "spool: {} appended, {} committed, {} pending, {} dropped (full), \
                 {} dropped (write error), {} quarantined, {} torn, {} corrupt",
                st.appended,
                st.acked,
                s.pending_records(),
                st.dropped_full,
                st.dropped_write_error,
                st.quarantined,
                st.torn,
                st.corrupt
            );
            SpoolAccount {
                stats: st,
                pending: s.pending_records(),
            }
        });
        Ok(Report {
            rounds: prober.rounds,
            stats: prober.stats,
            spool,
            grace_over,
        })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
