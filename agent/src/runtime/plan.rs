//! Replanning: putting a plan (the local configuration, or a schedule
//! applied within it) in force at a round boundary, never in the middle
//! of a round.

use crate::config::Config;
use crate::engine::{Gate, Network};
use crate::round::{destinations, Destination, Prober};
use crate::schedule::Plan;

/// The plan in force and the destinations it expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    pub plan: Plan,
    pub dsts: Vec<Destination>,
}

/// What a replan did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replan {
    /// The plan is in force; the round interval changed with it or not.
    Applied { interval_changed: bool },
    /// The plan's targets could not be expanded: the old plan stays.
    Kept,
}

impl InForce {
    /// The local configuration's plan over its destinations.
    pub fn local(config: &Config, dsts: Vec<Destination>) -> Self {
        Self {
            plan: Plan::local(config),
            dsts,
        }
    }

    /// Puts `next` in force: targets, protocol, port, attempts, echo
    /// requests, rate (under the local allow-list, always). Without ping
    /// sockets (`can_ping` false) echo requests are refused and the rest
    /// applied.
    pub fn replan<N: Network>(
        &mut self,
        config: &Config,
        prober: &mut Prober<N>,
        mut next: Plan,
        can_ping: bool,
    ) -> Replan {
        if next.ping_count > 0 && !can_ping {
            tracing::warn!(
                "schedule: refused ping_count {}: no ping sockets",
                next.ping_count
            );
            next.ping_count = 0;
        }
        let dsts = match destinations(&next.targets, config.probe.hosts) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("schedule: {e}; plan not changed");
                return Replan::Kept;
            }
        };
        prober.cfg.trace.protocol = next.protocol;
        prober.cfg.trace.port = next.port;
        prober.cfg.trace.probes = next.probes;
        prober.cfg.ping_count = next.ping_count;
        prober.gate = Gate::new(config.allow.clone(), next.pps);
        prober.target = next.targets.clone();
        let interval_changed = next.interval != self.plan.interval;
        self.plan = next;
        self.dsts = dsts;
        Replan::Applied { interval_changed }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::engine::Ident;
    use crate::logging::capture;
    use crate::mock::{Answer, MockNet};
    use crate::packet::Protocol;
    use crate::runtime::testutil::config;

    fn setup() -> (Config, Prober<MockNet>, InForce) {
        let c = config(
            "targets = [\"198.18.176.0/24\"]\nallow = [\"198.18.176.0/22\"]\npps = 50\n\
             interval = \"20s\"",
        );
        let prober = Prober::new(
            MockNet::new(|_| Answer::Destination),
            Gate::new(c.allow.clone(), c.pps),
            Ident::from_seed(7),
            c.id.clone(),
            c.probe.clone(),
            c.targets.clone(),
        );
        let dsts = destinations(&c.targets, c.probe.hosts).expect("dsts");
        let in_force = InForce::local(&c, dsts);
        (c, prober, in_force)
    }

    /// Tokens the gate gives at one instant (its burst), and whether one
    /// more is given after `later`.
    fn burst(gate: &mut Gate, later: Duration) -> (usize, bool) {
        let now = Instant::now();
        let mut n = 0;
        while gate.take(now).is_ok() {
            n += 1;
            assert!(n < 100_000);
        }
        (n, gate.take(now + later).is_ok())
    }

    #[test]
    fn a_plan_goes_in_force_whole() {
        let (c, mut prober, mut in_force) = setup();
        assert_eq!(in_force.dsts.len(), 1);
        let next = Plan {
            targets: vec![
                "198.18.177.0/24".parse().expect("net"),
                "198.18.178.0/24".parse().expect("net"),
            ],
            protocol: Protocol::Udp,
            port: 33434,
            interval: Duration::from_secs(20),
            probes: 3,
            pps: 1,
            ping_count: 2,
        };
        assert_eq!(
            in_force.replan(&c, &mut prober, next.clone(), true),
            Replan::Applied {
                interval_changed: false
            }
        );
        assert_eq!(in_force.plan, next);
        let d: Vec<String> = in_force.dsts.iter().map(|d| d.addr.to_string()).collect();
        assert_eq!(d, ["198.18.177.1", "198.18.178.1"]);
        let t = &prober.cfg.trace;
        assert_eq!((t.protocol, t.port, t.probes), (Protocol::Udp, 33434, 3));
        assert_eq!(prober.cfg.ping_count, 2);
        assert_eq!(prober.target, next.targets);
        // The new rate: 1 probe/s, a burst of one.
        assert_eq!(
            burst(&mut prober.gate, Duration::from_millis(500)),
            (1, false)
        );
        assert!(prober
            .gate
            .take(Instant::now() + Duration::from_secs(2))
            .is_ok());
        // The allow-list is the local one, whatever the plan says.
        assert!(!prober.gate.permits("198.18.180.1".parse().expect("ip")));
        assert!(prober.gate.permits("198.18.179.1".parse().expect("ip")));
        // A new interval is reported, so the loop can re-arm its ticker.
        let mut slower = next;
        slower.interval = Duration::from_secs(60);
        assert_eq!(
            in_force.replan(&c, &mut prober, slower, true),
            Replan::Applied {
                interval_changed: true
            }
        );
    }

    #[test]
    fn echo_requests_without_ping_sockets_are_refused_and_the_rest_applied() {
        let (_g, log) = capture::text();
        let (c, mut prober, mut in_force) = setup();
        let mut next = in_force.plan.clone();
        next.ping_count = 5;
        next.probes = 4;
        assert!(matches!(
            in_force.replan(&c, &mut prober, next, false),
            Replan::Applied { .. }
        ));
        assert_eq!((in_force.plan.ping_count, prober.cfg.ping_count), (0, 0));
        assert_eq!(prober.cfg.trace.probes, 4);
        assert_eq!(
            log.lines_with("refused ping_count 5: no ping sockets")
                .len(),
            1,
            "{}",
            log.text()
        );
    }

    #[test]
    fn a_plan_whose_targets_cannot_be_expanded_leaves_the_old_one_in_force() {
        let (_g, log) = capture::text();
        let (c, mut prober, mut in_force) = setup();
        let before = (in_force.clone(), prober.cfg.clone(), prober.target.clone());
        let mut next = in_force.plan.clone();
        next.targets = vec!["0.0.0.0/5".parse().expect("net")];
        next.probes = 9;
        assert_eq!(in_force.replan(&c, &mut prober, next, true), Replan::Kept);
        assert_eq!(
            (in_force, prober.cfg.clone(), prober.target.clone()),
            before
        );
        let said = log.lines_with("plan not changed");
        assert_eq!(said.len(), 1, "{}", log.text());
        assert!(said[0].contains("0.0.0.0/5"), "{}", said[0]);
    }
}
