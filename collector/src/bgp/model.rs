//! The control-plane model: what every BGP peer currently routes toward
//! the target, and what changed.
//!
//! - **Which routes.** A prefix inside a target prefix (equal or more
//!   specific), or any prefix originated by a target AS. Others are
//!   counted as updates and dropped. At most `max_prefixes` prefixes are
//!   tracked (a flood of crafted more-specifics is counted, not kept).
//! - **Upstream of a route.** Walking the AS path from the origin, the
//!   first AS outside the target network: the origin itself and the
//!   target ASes are inside (prepending repeats them); a set holding one
//!   of them is inside too. `... 4837 131279` gives china-unicom. When the
//!   target names ASes and the origin is none of them, the origin is
//!   foreign and is itself the upstream (someone else originates target
//!   space). A path that never leaves the target (the peer is the target)
//!   has no upstream and counts for visibility only. Named with the same
//!   organisation table as `infer` ([`Orgs::label`]).
//! - **Visibility** of a prefix: the fraction of *feeding* peers with a
//!   route to it. A peer feeds once it has carried a route to any target
//!   prefix, until it goes down or leaves the feed (a RIB dump without
//!   it). Without a full table (RIS Live and BMP are filtered to the
//!   target) this stands in for IODA's full-feed peers: a peer that lost
//!   its routes to the target still counts, which is the outage signal.
//! - **Events** (stored, served by the API): per peer `announce`
//!   (first or again after a withdrawal), `withdraw`, `upstream_change`,
//!   `flap` (`flap_threshold` route changes within `flap_window`); per
//!   prefix `prefix_upstream` (the dominant upstream over feeding peers
//!   changed), `visibility_low` / `visibility_ok` (crossing one half,
//!   with at least [`MIN_PEERS`] feeding peers);
//!   per source `gap`; per /24 `divergence` / `divergence_end`.
//! - **Divergence** per data-plane /24: each feeding peer's route to the
//!   /24 (its longest prefix covering it) gives the control-plane shares;
//!   the agents' paths give the data-plane shares. When the dominant
//!   upstreams differ for `divergence_for` without a break, the /24
//!   diverges; it stops once they agree (or either side is gone) for as
//!   long. A single update never makes one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use super::{AsPath, Change, Hop, Message, Peer, Route, Snapshot, Update};
use crate::infer::Target;
use crate::orgs::Orgs;
use crate::paths::{ShareTable, Upstream};

/// Feeding peers below which visibility makes no event.
pub const MIN_PEERS: usize = 3;

/// The model's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Route changes (announce, withdraw, upstream change) of one prefix
    /// at one peer within `flap_window_ms` that make a `flap` event.
    pub flap_threshold: usize,
    pub flap_window_ms: u64,
    /// How long the planes must disagree (and then agree) before a
    /// divergence starts (ends).
    pub divergence_for_ms: u64,
    /// Most prefixes tracked.
    pub max_prefixes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            flap_threshold: 4,
            flap_window_ms: 10 * 60 * 1000,
            divergence_for_ms: 10 * 60 * 1000,
            max_prefixes: 4096,
        }
    }
}

/// What happened, as stored and served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Announce,
    Withdraw,
    UpstreamChange,
    Flap,
    PrefixUpstream,
    VisibilityLow,
    VisibilityOk,
    Gap,
    Divergence,
    DivergenceEnd,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Announce,
        EventKind::Withdraw,
        EventKind::UpstreamChange,
        EventKind::Flap,
        EventKind::PrefixUpstream,
        EventKind::VisibilityLow,
        EventKind::VisibilityOk,
        EventKind::Gap,
        EventKind::Divergence,
        EventKind::DivergenceEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Announce => "announce",
            EventKind::Withdraw => "withdraw",
            EventKind::UpstreamChange => "upstream_change",
            EventKind::Flap => "flap",
            EventKind::PrefixUpstream => "prefix_upstream",
            EventKind::VisibilityLow => "visibility_low",
            EventKind::VisibilityOk => "visibility_ok",
            EventKind::Gap => "gap",
            EventKind::Divergence => "divergence",
            EventKind::DivergenceEnd => "divergence_end",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A control-plane event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BgpEvent {
    /// When it happened, by the source's clock (Unix ms).
    pub at_ms: u64,
    pub kind: EventKind,
    pub source: String,
    /// The peer's name ([`Peer::name`]); none for per-prefix events.
    pub peer: Option<String>,
    pub prefix: Option<IpNet>,
    pub from: Option<Upstream>,
    pub to: Option<Upstream>,
    /// The AS path of the route announced (`announce`,
    /// `upstream_change`), as bgpdump writes it.
    pub path: Option<String>,
    /// What else there is to say (visibility figures, the reason of a
    /// peer-down, a gap's end).
    pub detail: Option<String>,
}

/// Counters and state of one source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStat {
    /// Updates received (RIB entries of dumps included).
    pub updates: u64,
    /// Connected (for BMP: at least one router is).
    pub up: bool,
    /// BMP routers connected now.
    pub routers: BTreeSet<String>,
    /// The newest time a message of the source carried (Unix ms).
    pub last_update_ms: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub stats_reports: u64,
    pub gaps: u64,
}

/// A peer the model knows.
#[derive(Debug, Clone)]
struct Slot {
    peer: Peer,
    name: String,
    up: bool,
    /// Has carried a route to a target prefix since it came up: counts
    /// for visibility.
    feeds: bool,
}

impl Slot {
    fn counts(&self) -> bool {
        self.up && self.feeds
    }
}

/// A route a peer holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub path: AsPath,
    /// Shared by every route with the same upstream (a full table holds
    /// hundreds of thousands of routes and a few thousand upstreams).
    pub upstream: Option<Arc<Upstream>>,
    pub since_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Div {
    Pending {
        since_ms: u64,
        data: String,
        bgp: String,
    },
    Diverged {
        since_ms: u64,
        data: String,
        bgp: String,
        agree_since: Option<u64>,
    },
}

/// A divergence in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub prefix: IpNet,
    pub data_upstream: String,
    pub bgp_upstream: String,
    pub since_ms: u64,
}

/// A prefix's standing, for the API and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixView {
    pub prefix: IpNet,
    pub visibility: Option<f64>,
    pub peers_with_route: usize,
    pub feeding_peers: usize,
    pub shares: BTreeMap<String, f64>,
    pub dominant: Option<Upstream>,
    pub last_change: Option<LastChange>,
}

/// The latest change of a prefix's dominant upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastChange {
    pub from: String,
    pub to: String,
    pub at_ms: u64,
}

/// One peer's route to a prefix, for the API and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerRoute {
    pub peer: String,
    pub source: String,
    pub prefix: IpNet,
    pub path: String,
    pub origin: Option<u32>,
    pub upstream: Option<Upstream>,
    pub since_ms: u64,
}

/// The model.
#[derive(Debug)]
pub struct Model {
    settings: Settings,
    target: Target,
    orgs: Orgs,
    slots: Vec<Slot>,
    ids: HashMap<Peer, usize>,
    routes: BTreeMap<IpNet, BTreeMap<usize, Held>>,
    churn: HashMap<(IpNet, usize), VecDeque<u64>>,
    dominant: BTreeMap<IpNet, Upstream>,
    last_change: BTreeMap<IpNet, LastChange>,
    low: BTreeSet<IpNet>,
    sources: BTreeMap<String, SourceStat>,
    divergence: BTreeMap<IpNet, Div>,
    /// Upstream AS (None: a set) -> its name.
    names: HashMap<Option<u32>, Arc<Upstream>>,
    /// Updates for prefixes beyond `max_prefixes`, dropped.
    pub overflow: u64,
}

impl Model {
    pub fn new(target: Target, orgs: Orgs, settings: Settings) -> Self {
        Self {
            settings,
            target,
            orgs,
            slots: Vec::new(),
            ids: HashMap::new(),
            routes: BTreeMap::new(),
            churn: HashMap::new(),
            dominant: BTreeMap::new(),
            last_change: BTreeMap::new(),
            low: BTreeSet::new(),
            sources: BTreeMap::new(),
            divergence: BTreeMap::new(),
            names: HashMap::new(),
            overflow: 0,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Is this route about the target?
    pub fn relevant(&self, prefix: &IpNet, path: Option<&AsPath>) -> bool {
        self.target.prefixes.iter().any(|t| t.contains(prefix))
            || path
                .and_then(AsPath::origin)
                .is_some_and(|o| self.target.asns.contains(&o))
    }

    /// The control-plane upstream of a path (see the module's words).
    pub fn upstream_of(&self, path: &AsPath) -> Option<Upstream> {
        self.upstream_asn(path).map(|a| self.named(a))
    }

    /// The upstream's AS (`None` inside: `Some(None)` for an AS_SET of
    /// several), without naming it.
    fn upstream_asn(&self, path: &AsPath) -> Option<Option<u32>> {
        let origin = path.origin();
        let asns = &self.target.asns;
        let inside = |a: u32| Some(a) == origin || (!asns.is_empty() && asns.contains(&a));
        if let Some(o) = origin {
            if !asns.is_empty() && !asns.contains(&o) {
                return Some(Some(o));
            }
        }
        for hop in path.0.iter().rev() {
            match hop {
                Hop::As(a) if inside(*a) => continue,
                Hop::As(a) => return Some(Some(*a)),
                Hop::Set(s) if s.iter().any(|&a| inside(a)) || s.is_empty() => continue,
                Hop::Set(s) if s.len() == 1 => return Some(Some(s[0])),
                Hop::Set(_) => return Some(None),
            }
        }
        None
    }

    /// As [`Model::upstream_of`], the names kept per AS (naming one
    /// formats a string: most of the cost of indexing a full table).
    fn upstream_cached(&mut self, path: &AsPath) -> Option<Arc<Upstream>> {
        let asn = self.upstream_asn(path)?;
        if let Some(u) = self.names.get(&asn) {
            return Some(u.clone());
        }
        let u = Arc::new(self.named(asn));
        if self.names.len() < 100_000 {
            self.names.insert(asn, u.clone());
        }
        Some(u)
    }

    fn named(&self, asn: Option<u32>) -> Upstream {
        match asn {
            Some(asn) => Upstream {
                name: self.orgs.label(asn),
                asn: Some(asn),
            },
            None => Upstream {
                name: "as-set".into(),
                asn: None,
            },
        }
    }

    fn slot(&mut self, peer: &Peer) -> usize {
        if let Some(&i) = self.ids.get(peer) {
            return i;
        }
        let i = self.slots.len();
        self.slots.push(Slot {
            peer: peer.clone(),
            name: peer.name(),
            up: true,
            feeds: false,
        });
        self.ids.insert(peer.clone(), i);
        i
    }

    fn source(&mut self, name: &str) -> &mut SourceStat {
        if !self.sources.contains_key(name) {
            self.sources.insert(name.to_string(), SourceStat::default());
        }
        self.sources.get_mut(name).expect("inserted above")
    }

    fn seen(&mut self, source: &str, at_ms: u64, updates: u64) {
        let s = self.source(source);
        s.updates += updates;
        s.last_update_ms = s.last_update_ms.max(at_ms);
    }

    /// Applies one message; the events it made, in order.
    pub fn apply(&mut self, msg: Message) -> Vec<BgpEvent> {
        let mut out = Vec::new();
        match msg {
            Message::Update(u) => self.update(u, &mut out),
            Message::Snapshot(s) => self.snapshot(s, &mut out),
            Message::PeerUp { peer, at_ms } => {
                self.seen(&peer.source.clone(), at_ms, 0);
                let i = self.slot(&peer);
                self.slots[i].up = true;
            }
            Message::PeerDown {
                peer,
                at_ms,
                reason,
            } => {
                self.seen(&peer.source.clone(), at_ms, 0);
                if let Some(&i) = self.ids.get(&peer) {
                    self.drop_peer(i, at_ms, &format!("peer down: {reason}"), &mut out);
                    self.slots[i].up = false;
                    self.slots[i].feeds = false;
                    self.prefixes_changed(None, at_ms, &mut out);
                }
            }
            Message::SourceState {
                source,
                router,
                up,
                at_ms: _,
            } => {
                let s = self.source(&source);
                match router {
                    Some(r) => {
                        if up {
                            s.routers.insert(r);
                        } else {
                            s.routers.remove(&r);
                        }
                        s.up = !s.routers.is_empty();
                    }
                    None => s.up = up,
                }
            }
            Message::Gap {
                source,
                from_ms,
                to_ms,
            } => {
                self.source(&source).gaps += 1;
                out.push(BgpEvent {
                    at_ms: from_ms,
                    kind: EventKind::Gap,
                    source,
                    peer: None,
                    prefix: None,
                    from: None,
                    to: None,
                    path: None,
                    detail: Some(format!(
                        "updates may be missing for {:.1} s",
                        to_ms.saturating_sub(from_ms) as f64 / 1000.0
                    )),
                });
            }
            Message::Fault { source, kind } => {
                *self.source(&source).faults.entry(kind).or_default() += 1;
            }
            Message::Stats { source, router: _ } => self.source(&source).stats_reports += 1,
        }
        out
    }

    fn update(&mut self, u: Update, out: &mut Vec<BgpEvent>) {
        self.seen(&u.peer.source.clone(), u.at_ms, 1);
        let path = match &u.change {
            Change::Announce { route } => Some(&route.path),
            Change::Withdraw => None,
        };
        let tracked = self.routes.contains_key(&u.prefix);
        if !tracked && !self.relevant(&u.prefix, path) {
            return;
        }
        if !tracked && matches!(u.change, Change::Withdraw) {
            return;
        }
        if !tracked && self.routes.len() >= self.settings.max_prefixes {
            self.overflow += 1;
            return;
        }
        let i = self.slot(&u.peer);
        let counted = self.slots[i].counts();
        self.slots[i].up = true;
        match u.change {
            Change::Announce { route } => self.store(i, u.prefix, route, u.at_ms, false, out),
            Change::Withdraw => self.withdraw(i, u.prefix, u.at_ms, None, out),
        }
        // A peer that starts to count changes every prefix's visibility.
        let one = (counted == self.slots[i].counts()).then_some(u.prefix);
        self.prefixes_changed(one, u.at_ms, out);
    }

    fn snapshot(&mut self, s: Snapshot, out: &mut Vec<BgpEvent>) {
        self.seen(&s.source, s.at_ms, s.routes.len() as u64);
        let listed: Vec<usize> = s.peers.iter().map(|p| self.slot(p)).collect();
        let mut wanted: Vec<(usize, IpNet, Route)> = Vec::with_capacity(s.routes.len());
        for (pi, prefix, route) in s.routes {
            let Some(&slot) = listed.get(pi) else {
                continue;
            };
            if !self.routes.contains_key(&prefix) {
                if !self.relevant(&prefix, Some(&route.path)) {
                    continue;
                }
                if self.routes.len() >= self.settings.max_prefixes {
                    self.overflow += 1;
                    continue;
                }
                self.routes.insert(prefix, BTreeMap::new());
            }
            wanted.push((slot, prefix, route));
        }
        // One route per (peer, prefix): the last the dump gives.
        wanted.reverse();
        wanted.sort_by_key(|w| (w.0, w.1));
        wanted.dedup_by_key(|w| (w.0, w.1));
        // What a listed peer held and the dump no longer has: gone. A peer
        // that held nothing loads its first table: no event per route.
        let listed_set: HashSet<usize> = listed.iter().copied().collect();
        let mut gone = Vec::new();
        let mut holding: HashSet<usize> = HashSet::new();
        for (prefix, held) in &self.routes {
            for &slot in held.keys() {
                if listed_set.contains(&slot) {
                    holding.insert(slot);
                    if wanted
                        .binary_search_by(|w| (w.0, w.1).cmp(&(slot, *prefix)))
                        .is_err()
                    {
                        gone.push((slot, *prefix));
                    }
                }
            }
        }
        for &slot in &listed {
            self.slots[slot].up = true;
            self.slots[slot].feeds = false;
        }
        for (slot, prefix) in gone {
            self.withdraw(slot, prefix, s.at_ms, Some("not in the RIB dump"), out);
        }
        for (slot, prefix, route) in wanted {
            let quiet = !holding.contains(&slot);
            self.store(slot, prefix, route, s.at_ms, quiet, out);
        }
        self.prefixes_changed(None, s.at_ms, out);
    }

    fn event(&self, kind: EventKind, slot: usize, prefix: IpNet, at_ms: u64) -> BgpEvent {
        BgpEvent {
            at_ms,
            kind,
            source: self.slots[slot].peer.source.clone(),
            peer: Some(self.slots[slot].name.clone()),
            prefix: Some(prefix),
            from: None,
            to: None,
            path: None,
            detail: None,
        }
    }

    /// Holds `route` as `slot`'s route to `prefix`; the event it makes
    /// (none when `quiet`: a peer's first table from a RIB dump).
    fn store(
        &mut self,
        slot: usize,
        prefix: IpNet,
        route: Route,
        at_ms: u64,
        quiet: bool,
        out: &mut Vec<BgpEvent>,
    ) {
        let upstream = self.upstream_cached(&route.path);
        self.slots[slot].feeds = true;
        let held = self.routes.entry(prefix).or_default();
        let before = held.insert(
            slot,
            Held {
                path: route.path,
                upstream: upstream.clone(),
                since_ms: at_ms,
            },
        );
        let now = held.get_mut(&slot).expect("inserted above");
        let event = match &before {
            None => Some(EventKind::Announce),
            Some(b) if b.upstream != upstream => Some(EventKind::UpstreamChange),
            Some(_) => None,
        };
        if let Some(b) = &before {
            if b.path == now.path {
                now.since_ms = b.since_ms;
            }
        }
        let path = match event {
            Some(_) if !quiet => now.path.to_string(),
            _ => return,
        };
        let kind = event.expect("matched above");
        let mut e = self.event(kind, slot, prefix, at_ms);
        e.from = before.and_then(|b| b.upstream).map(|u| (*u).clone());
        e.to = upstream.map(|u| (*u).clone());
        e.path = Some(path);
        out.push(e);
        // The first announcement a peer makes of a prefix is no change; a
        // re-announcement is.
        if kind != EventKind::Announce || self.churn.contains_key(&(prefix, slot)) {
            self.churned(slot, prefix, at_ms, out);
        }
    }

    fn withdraw(
        &mut self,
        slot: usize,
        prefix: IpNet,
        at_ms: u64,
        detail: Option<&str>,
        out: &mut Vec<BgpEvent>,
    ) {
        let Some(before) = self.routes.get_mut(&prefix).and_then(|h| h.remove(&slot)) else {
            return;
        };
        let mut e = self.event(EventKind::Withdraw, slot, prefix, at_ms);
        e.from = before.upstream.map(|u| (*u).clone());
        e.detail = detail.map(str::to_string);
        out.push(e);
        self.churned(slot, prefix, at_ms, out);
    }

    fn drop_peer(&mut self, slot: usize, at_ms: u64, why: &str, out: &mut Vec<BgpEvent>) {
        let prefixes: Vec<IpNet> = self
            .routes
            .iter()
            .filter(|(_, h)| h.contains_key(&slot))
            .map(|(p, _)| *p)
            .collect();
        for p in prefixes {
            self.withdraw(slot, p, at_ms, Some(why), out);
        }
    }

    /// Counts a route change; a `flap` event when they reach the
    /// threshold within the window (then the count starts over).
    fn churned(&mut self, slot: usize, prefix: IpNet, at_ms: u64, out: &mut Vec<BgpEvent>) {
        let window = self.settings.flap_window_ms;
        let times = self.churn.entry((prefix, slot)).or_default();
        times.push_back(at_ms);
        while times
            .front()
            .is_some_and(|&t| at_ms.saturating_sub(t) > window)
        {
            times.pop_front();
        }
        if times.len() >= self.settings.flap_threshold.max(2) {
            let n = times.len();
            let first = times.front().copied().unwrap_or(at_ms);
            times.clear();
            let mut e = self.event(EventKind::Flap, slot, prefix, at_ms);
            e.detail = Some(format!(
                "{n} route changes in {:.0} s",
                at_ms.saturating_sub(first) as f64 / 1000.0
            ));
            out.push(e);
        }
    }

    /// Re-derives the per-prefix standing (dominant upstream, visibility)
    /// of one prefix, or of all of them (a peer came or went).
    fn prefixes_changed(&mut self, one: Option<IpNet>, at_ms: u64, out: &mut Vec<BgpEvent>) {
        let prefixes: Vec<IpNet> = match one {
            Some(p) => vec![p],
            None => self.routes.keys().copied().collect(),
        };
        let source = |m: &Model, p: &IpNet| {
            m.routes
                .get(p)
                .and_then(|h| h.keys().next())
                .map(|&s| m.slots[s].peer.source.clone())
                .unwrap_or_default()
        };
        let feeding: Vec<usize> = self.feeding().collect();
        for p in prefixes {
            let view = self.view_with(&p, &feeding);
            if let Some(now) = view.dominant.clone() {
                match self.dominant.get(&p) {
                    Some(before) if before.name != now.name => {
                        let change = LastChange {
                            from: before.name.clone(),
                            to: now.name.clone(),
                            at_ms,
                        };
                        out.push(BgpEvent {
                            at_ms,
                            kind: EventKind::PrefixUpstream,
                            source: source(self, &p),
                            peer: None,
                            prefix: Some(p),
                            from: Some(before.clone()),
                            to: Some(now.clone()),
                            path: None,
                            detail: Some(shares_text(&view.shares)),
                        });
                        self.last_change.insert(p, change);
                        self.dominant.insert(p, now);
                    }
                    Some(_) => {}
                    None => {
                        self.dominant.insert(p, now);
                    }
                }
            }
            // Fewer peers say nothing (as the alert holds): while the first
            // tables arrive, one peer's routes come before another's.
            if let Some(v) = view.visibility.filter(|_| view.feeding_peers >= MIN_PEERS) {
                let was_low = self.low.contains(&p);
                let detail = Some(format!(
                    "{} of {} peers have a route ({:.0}%)",
                    view.peers_with_route,
                    view.feeding_peers,
                    v * 100.0
                ));
                let kind = if v <= 0.5 && !was_low {
                    self.low.insert(p);
                    Some(EventKind::VisibilityLow)
                } else if v > 0.5 && was_low {
                    self.low.remove(&p);
                    Some(EventKind::VisibilityOk)
                } else {
                    None
                };
                if let Some(kind) = kind {
                    out.push(BgpEvent {
                        at_ms,
                        kind,
                        source: source(self, &p),
                        peer: None,
                        prefix: Some(p),
                        from: None,
                        to: None,
                        path: None,
                        detail,
                    });
                }
            }
        }
    }

    fn feeding(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.counts())
            .map(|(i, _)| i)
    }

    /// A tracked prefix's standing.
    pub fn view(&self, prefix: &IpNet) -> PrefixView {
        let feeding: Vec<usize> = self.feeding().collect();
        self.view_with(prefix, &feeding)
    }

    fn view_with(&self, prefix: &IpNet, feeding: &[usize]) -> PrefixView {
        let mut with = 0;
        // A few upstreams per prefix: a short list beats a map.
        let mut counts: Vec<(&str, usize, Option<u32>)> = Vec::new();
        for (&s, h) in self.routes.get(prefix).into_iter().flatten() {
            if !self.slots[s].counts() {
                continue;
            }
            with += 1;
            if let Some(u) = &h.upstream {
                match counts.iter_mut().find(|c| c.0 == u.name) {
                    Some(c) => c.1 += 1,
                    None => counts.push((u.name.as_str(), 1, u.asn)),
                }
            }
        }
        let counted: BTreeMap<String, (usize, Option<u32>)> = counts
            .into_iter()
            .map(|(n, k, a)| (n.to_string(), (k, a)))
            .collect();
        let (shares, dominant) = shares_of(&counted);
        PrefixView {
            prefix: *prefix,
            visibility: (!feeding.is_empty()).then(|| with as f64 / feeding.len() as f64),
            peers_with_route: with,
            feeding_peers: feeding.len(),
            shares,
            dominant,
            last_change: self.last_change.get(prefix).cloned(),
        }
    }

    /// Is `prefix` tracked?
    pub fn tracks(&self, prefix: &IpNet) -> bool {
        self.routes.contains_key(prefix)
    }

    /// Every tracked prefix's standing, in prefix order.
    pub fn prefixes(&self) -> Vec<PrefixView> {
        let feeding: Vec<usize> = self.feeding().collect();
        self.routes
            .keys()
            .map(|p| self.view_with(p, &feeding))
            .collect()
    }

    /// Shares over every (prefix, feeding peer) route.
    pub fn shares_all(&self) -> BTreeMap<String, f64> {
        let mut counts: BTreeMap<String, (usize, Option<u32>)> = BTreeMap::new();
        for s in self.feeding() {
            for held in self.routes.values() {
                if let Some(u) = held.get(&s).and_then(|h| h.upstream.as_ref()) {
                    counts.entry(u.name.clone()).or_insert((0, u.asn)).0 += 1;
                }
            }
        }
        shares_of(&counts).0
    }

    /// Every route held by a feeding peer.
    pub fn routes(&self) -> Vec<PeerRoute> {
        let mut out = Vec::new();
        for (prefix, held) in &self.routes {
            for (&s, h) in held {
                if !self.slots[s].counts() {
                    continue;
                }
                out.push(PeerRoute {
                    peer: self.slots[s].name.clone(),
                    source: self.slots[s].peer.source.clone(),
                    prefix: *prefix,
                    path: h.path.to_string(),
                    origin: h.path.origin(),
                    upstream: h.upstream.as_deref().cloned(),
                    since_ms: h.since_ms,
                });
            }
        }
        out
    }

    pub fn sources(&self) -> &BTreeMap<String, SourceStat> {
        &self.sources
    }

    /// Declares a source (so that it has series before its first
    /// message: a configured feed that never connects is down).
    pub fn declare_source(&mut self, name: &str) {
        self.source(name);
    }

    /// Feeding peers now, per source.
    pub fn feeding_by_source(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for i in self.feeding() {
            *out.entry(self.slots[i].peer.source.clone()).or_default() += 1;
        }
        out
    }

    /// Feeding peers now.
    pub fn feeding_peers(&self) -> usize {
        self.feeding().count()
    }

    /// Control-plane shares for a data-plane unit (a /24 or /48): each
    /// feeding peer's longest route covering it.
    pub fn unit_shares(&self, unit: &IpNet) -> (BTreeMap<String, f64>, Option<Upstream>) {
        let covering: Vec<(&IpNet, &BTreeMap<usize, Held>)> = self
            .routes
            .iter()
            .filter(|(p, _)| p.contains(unit))
            .collect();
        let mut counts: BTreeMap<String, (usize, Option<u32>)> = BTreeMap::new();
        for s in self.feeding() {
            let best = covering
                .iter()
                .filter_map(|(p, h)| h.get(&s).map(|held| (p.prefix_len(), held)))
                .max_by_key(|(len, _)| *len);
            if let Some(u) = best.and_then(|(_, h)| h.upstream.as_ref()) {
                counts.entry(u.name.clone()).or_insert((0, u.asn)).0 += 1;
            }
        }
        shares_of(&counts)
    }

    /// Compares the planes at `now_ms` for every /24 the agents see;
    /// the divergences that started or ended.
    pub fn compare(&mut self, data: &ShareTable, now_ms: u64) -> Vec<BgpEvent> {
        let hold = self.settings.divergence_for_ms;
        let mut out = Vec::new();
        let mut units: BTreeSet<IpNet> = data.per_prefix.keys().copied().collect();
        units.extend(self.divergence.keys().copied());
        for unit in units {
            let data_dom = data
                .per_prefix
                .get(&unit)
                .and_then(dominant_name)
                .filter(|n| n != "unknown");
            let bgp_dom = self.unit_shares(&unit).1.map(|u| u.name);
            let disagree = match (&data_dom, &bgp_dom) {
                (Some(d), Some(b)) if d != b => Some((d.clone(), b.clone())),
                _ => None,
            };
            let state = self.divergence.remove(&unit);
            let next = match (state, disagree) {
                (None, None) => None,
                (None, Some((data, bgp))) => Some(Div::Pending {
                    since_ms: now_ms,
                    data,
                    bgp,
                }),
                (Some(Div::Pending { .. }), None) => None,
                (
                    Some(Div::Pending {
                        since_ms,
                        data: d0,
                        bgp: b0,
                    }),
                    Some((data, bgp)),
                ) => {
                    // A different disagreement starts the wait over.
                    let since_ms = if (d0.as_str(), b0.as_str()) == (data.as_str(), bgp.as_str()) {
                        since_ms
                    } else {
                        now_ms
                    };
                    if now_ms.saturating_sub(since_ms) >= hold {
                        out.push(div_event(EventKind::Divergence, unit, &data, &bgp, now_ms));
                        Some(Div::Diverged {
                            since_ms: now_ms,
                            data,
                            bgp,
                            agree_since: None,
                        })
                    } else {
                        Some(Div::Pending {
                            since_ms,
                            data,
                            bgp,
                        })
                    }
                }
                (
                    Some(Div::Diverged {
                        since_ms,
                        data,
                        bgp,
                        agree_since,
                    }),
                    None,
                ) => {
                    let from = agree_since.unwrap_or(now_ms);
                    if now_ms.saturating_sub(from) >= hold {
                        out.push(div_event(
                            EventKind::DivergenceEnd,
                            unit,
                            &data,
                            &bgp,
                            now_ms,
                        ));
                        None
                    } else {
                        Some(Div::Diverged {
                            since_ms,
                            data,
                            bgp,
                            agree_since: Some(from),
                        })
                    }
                }
                (Some(Div::Diverged { since_ms, .. }), Some((data, bgp))) => {
                    // Still apart (the labels follow what disagrees now).
                    Some(Div::Diverged {
                        since_ms,
                        data,
                        bgp,
                        agree_since: None,
                    })
                }
            };
            if let Some(n) = next {
                self.divergence.insert(unit, n);
            }
        }
        out
    }

    /// Divergences in force.
    pub fn divergences(&self) -> Vec<Divergence> {
        self.divergence
            .iter()
            .filter_map(|(p, d)| match d {
                Div::Diverged {
                    since_ms,
                    data,
                    bgp,
                    ..
                } => Some(Divergence {
                    prefix: *p,
                    data_upstream: data.clone(),
                    bgp_upstream: bgp.clone(),
                    since_ms: *since_ms,
                }),
                Div::Pending { .. } => None,
            })
            .collect()
    }
}

fn div_event(kind: EventKind, unit: IpNet, data: &str, bgp: &str, at_ms: u64) -> BgpEvent {
    BgpEvent {
        at_ms,
        kind,
        source: "planes".into(),
        peer: None,
        prefix: Some(unit),
        from: Some(Upstream {
            name: data.to_string(),
            asn: None,
        }),
        to: Some(Upstream {
            name: bgp.to_string(),
            asn: None,
        }),
        path: None,
        detail: Some(format!("data plane {data}, control plane {bgp}")),
    }
}

/// Fractions, and the dominant upstream: the one with a strictly larger
/// share than every other (none on a tie).
fn shares_of(
    counts: &BTreeMap<String, (usize, Option<u32>)>,
) -> (BTreeMap<String, f64>, Option<Upstream>) {
    let total: usize = counts.values().map(|c| c.0).sum();
    let shares = counts
        .iter()
        .map(|(k, (n, _))| (k.clone(), *n as f64 / total.max(1) as f64))
        .collect();
    let mut ranked: Vec<(&String, &(usize, Option<u32>))> = counts.iter().collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
    let dominant = match ranked.as_slice() {
        [(name, (_, asn))] => Some((name, asn)),
        [(name, (n, asn)), (_, (m, _)), ..] if n > m => Some((name, asn)),
        _ => None,
    }
    .map(|(name, asn)| Upstream {
        name: (*name).clone(),
        asn: *asn,
    });
    (shares, dominant)
}

fn dominant_name(shares: &BTreeMap<String, f64>) -> Option<String> {
    let mut ranked: Vec<(&String, &f64)> = shares.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(a.1));
    match ranked.as_slice() {
        [(name, _)] => Some((*name).clone()),
        [(name, a), (_, b), ..] if a > b => Some((*name).clone()),
        _ => None,
    }
}

/// `china-unicom 60%, transtelecom 40%`.
pub fn shares_text(shares: &BTreeMap<String, f64>) -> String {
    let mut v: Vec<(&String, &f64)> = shares.iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(n, f)| format!("{n} {:.0}%", *f * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
