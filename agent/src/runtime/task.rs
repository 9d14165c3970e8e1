//! Tasks of the agent's own (uploads, the schedule, the metrics
//! listener): named in their log lines, watched while the agent runs and
//! drained on shutdown. Each is told to stop through the shutdown token it
//! was given ([`super::shutdown`]); [`Task::finish`] then waits for it
//! within a limit, and only a task that overstays is aborted.

use std::future::Future;
use std::time::Duration;

/// A named, tracked task.
#[derive(Debug)]
pub struct Task {
    name: &'static str,
    handle: tokio::task::JoinHandle<()>,
    /// Its early end has been logged.
    said: bool,
}

/// How a task ended when it was drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It returned by itself within the limit.
    Finished,
    /// It panicked (its message is on stderr just before).
    Failed,
    /// It was still running at the limit and was aborted.
    Aborted,
}

impl Task {
    pub fn spawn(name: &'static str, work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            name,
            handle: tokio::spawn(work),
            said: false,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Logs once if the task has ended while the agent runs (a panic:
    /// its message is on stderr just before). True when it has ended.
    pub fn check(&mut self) -> bool {
        let ended = self.handle.is_finished();
        if ended && !self.said {
            tracing::error!(
                task = self.name,
                "the {} task has ended; probing continues without it",
                self.name
            );
            self.said = true;
        }
        ended
    }

    /// Waits at most `limit` for the task to end (it has been told to
    /// stop), then aborts it.
    pub async fn finish(mut self, limit: Duration) -> Ended {
        match tokio::time::timeout(limit, &mut self.handle).await {
            Ok(Ok(())) => Ended::Finished,
            Ok(Err(e)) => {
                tracing::error!(task = self.name, "the {} task failed: {e}", self.name);
                Ended::Failed
            }
            Err(_) => {
                self.handle.abort();
                Ended::Aborted
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::capture;

    #[tokio::test(start_paused = true)]
    async fn tasks_are_drained_within_their_limit_and_their_early_end_is_said_once() {
        let (_g, log) = capture::text();
        let quick = Task::spawn("quick", async {});
        let mut stuck = Task::spawn("stuck", std::future::pending());
        tokio::task::yield_now().await;
        assert!(!stuck.check());
        let mut early = Task::spawn("early", async {});
        tokio::task::yield_now().await;
        assert!(early.check());
        assert!(early.check());
        assert_eq!(
            log.lines_with("the early task has ended").len(),
            1,
            "{}",
            log.text()
        );
        assert_eq!(quick.finish(Duration::from_secs(1)).await, Ended::Finished);
        let t0 = tokio::time::Instant::now();
        assert_eq!(stuck.finish(Duration::from_secs(2)).await, Ended::Aborted);
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
        let panics = Task::spawn("panics", async { panic!("on purpose") });
        assert_eq!(panics.finish(Duration::from_secs(1)).await, Ended::Failed);
        assert_eq!(log.lines_with("the panics task failed").len(), 1);
    }
}
