//! One cancellation tree per agent, and the one place signals are read.
//!
//! The root is the [`Shutdown`] token handed to [`super::Agent::run`]:
//! SIGTERM or SIGINT cancel it ([`Signals`]), and so can a test or an
//! embedding program. The run derives every other token from it: the round
//! loop, the uploader (which then drains the spool for `shutdown_grace`),
//! the schedule task and the metrics listener each select on a token of
//! the tree, so a single cancel reaches all of them, and none is stopped
//! by an abort unless it overstays its limit ([`super::task::Task::finish`]).

use std::future::Future;
use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};
pub use tokio_util::sync::CancellationToken as Shutdown;

/// SIGTERM and SIGINT, watched from the moment [`Signals::watch`] returns
/// (their default action, ending the process, is replaced).
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Starts watching. Fails only when the runtime cannot register a
    /// signal handler.
    pub fn watch() -> io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Cancels `shutdown` at the first SIGTERM or SIGINT; returns at once
    /// if `shutdown` is cancelled otherwise.
    pub async fn cancel_on_signal(mut self, shutdown: Shutdown) {
        let name = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            () = shutdown.cancelled() => return,
        };
        tracing::info!(signal = name, "{name}: stopping");
        shutdown.cancel();
    }
}

/// Runs `work` (given the root token) until it returns, cancelling the
/// token at the first signal; `work` then drains and returns.
pub async fn until_signalled<F, W>(signals: Signals, work: W) -> F::Output
where
    W: FnOnce(Shutdown) -> F,
    F: Future,
{
    let shutdown = Shutdown::new();
    let work = work(shutdown.clone());
    let signalled = signals.cancel_on_signal(shutdown.clone());
    tokio::pin!(work, signalled);
    tokio::select! {
        out = &mut work => {
            shutdown.cancel();
            out
        }
        () = &mut signalled => work.await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A real SIGTERM to this test process reaches the token, and the work
    /// goes on to drain. (Once a handler is registered the signal no
    /// longer ends the process, so the other tests are safe.)
    #[tokio::test]
    async fn sigterm_cancels_the_tree_and_the_work_drains() {
        let signals = Signals::watch().expect("signals");
        let out = until_signalled(signals, |shutdown: Shutdown| async move {
            let child = shutdown.child_token();
            let kill = std::process::Command::new("kill")
                .args(["-TERM", &std::process::id().to_string()])
                .status()
                .expect("kill");
            assert!(kill.success());
            tokio::time::timeout(Duration::from_secs(10), child.cancelled())
                .await
                .expect("SIGTERM cancels the token's children");
            // Draining after the signal still runs to its end.
            tokio::time::sleep(Duration::from_millis(10)).await;
            "drained"
        })
        .await;
        assert_eq!(out, "drained");
    }

    #[tokio::test]
    async fn work_that_ends_by_itself_cancels_the_tree() {
        let signals = Signals::watch().expect("signals");
        let (tx, rx) = tokio::sync::oneshot::channel();
        until_signalled(signals, |shutdown: Shutdown| async move {
            let _ = tx.send(shutdown);
        })
        .await;
        assert!(rx.await.expect("token").is_cancelled());
    }
}
