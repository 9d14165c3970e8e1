//! `tumen-collector bgp`: the control plane's story, offline. Messages
//! (from MRT files, in time order) go through the same [`Model`] as in
//! `serve`; after each one, every target prefix whose standing changed
//! (dominant upstream, shares, visibility) gets a row, with the events
//! that moved it. Text for people, JSON for programs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;
use serde::Serialize;

use super::model::{BgpEvent, EventKind, Model, PrefixView};
use super::Message;

/// One change of a prefix's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub at_ms: u64,
    pub prefix: IpNet,
    pub dominant: Option<String>,
    /// Upstream -> fraction of feeding peers.
    pub shares: BTreeMap<String, f64>,
    pub peers_with_route: usize,
    pub feeding_peers: usize,
    /// What moved it: event kinds with their counts (`withdraw x3`).
    pub events: Vec<String>,
}

/// The standing that makes a row when it changes.
#[derive(Debug, Clone, PartialEq)]
struct Standing {
    dominant: Option<String>,
    shares: Vec<(String, i64)>,
    with: usize,
    feeding: usize,
}

impl Standing {
    fn of(v: &PrefixView) -> Self {
        Self {
            dominant: v.dominant.as_ref().map(|u| u.name.clone()),
            // Per mille: float noise is no change.
            shares: v
                .shares
                .iter()
                .map(|(k, f)| (k.clone(), (f * 1000.0).round() as i64))
                .collect(),
            with: v.peers_with_route,
            feeding: v.feeding_peers,
        }
    }
}

/// Builds the timeline.
#[derive(Debug)]
pub struct Timeline {
    pub model: Model,
    last: BTreeMap<IpNet, Standing>,
    pub rows: Vec<Row>,
    pub events: Vec<BgpEvent>,
    pub first_ms: Option<u64>,
}

impl Timeline {
    pub fn new(model: Model) -> Self {
        Self {
            model,
            last: BTreeMap::new(),
            rows: Vec::new(),
            events: Vec::new(),
            first_ms: None,
        }
    }

    /// Applies one message; rows for what it changed.
    pub fn feed(&mut self, msg: Message) {
        let at = match &msg {
            Message::Update(u) => Some(u.at_ms),
            Message::Snapshot(s) => Some(s.at_ms),
            Message::PeerUp { at_ms, .. } | Message::PeerDown { at_ms, .. } => Some(*at_ms),
            _ => None,
        };
        // An update moves its prefix only, unless its peer starts (or
        // stops) counting, which moves every prefix's visibility.
        let one = match &msg {
            Message::Update(u) => Some(u.prefix),
            _ => None,
        };
        let feeding = self.model.feeding_peers();
        let events = self.model.apply(msg);
        let Some(at_ms) = at else {
            self.events.extend(events);
            return;
        };
        let views = match one {
            Some(p) if feeding == self.model.feeding_peers() => {
                if !self.model.tracks(&p) {
                    self.events.extend(events);
                    return;
                }
                vec![self.model.view(&p)]
            }
            _ => self.model.prefixes(),
        };
        if self.first_ms.is_none() && !views.is_empty() {
            self.first_ms = Some(at_ms);
        }
        for view in views {
            let now = Standing::of(&view);
            if self.last.get(&view.prefix) == Some(&now) {
                continue;
            }
            let mut counts: BTreeMap<EventKind, usize> = BTreeMap::new();
            for e in events.iter().filter(|e| e.prefix == Some(view.prefix)) {
                *counts.entry(e.kind).or_default() += 1;
            }
            self.rows.push(Row {
                at_ms,
                prefix: view.prefix,
                dominant: now.dominant.clone(),
                shares: view.shares.clone(),
                peers_with_route: view.peers_with_route,
                feeding_peers: view.feeding_peers,
                events: counts
                    .into_iter()
                    .map(|(k, n)| match n {
                        1 => k.as_str().to_string(),
                        n => format!("{} x{n}", k.as_str()),
                    })
                    .collect(),
            });
            self.last.insert(view.prefix, now);
        }
        self.events.extend(events);
    }

    /// The rows as text, grouped by prefix: UTC time, seconds since the
    /// first route, visibility, shares, what moved it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let first = self.first_ms.unwrap_or(0);
        let mut by_prefix: BTreeMap<IpNet, Vec<&Row>> = BTreeMap::new();
        for r in &self.rows {
            by_prefix.entry(r.prefix).or_default().push(r);
        }
        if by_prefix.is_empty() {
            out.push_str("no route to the target in the input\n");
        }
        for (prefix, rows) in by_prefix {
            let _ = writeln!(out, "{prefix}");
            for r in rows {
                let shares = if r.shares.is_empty() {
                    "no route".to_string()
                } else {
                    super::model::shares_text(&r.shares)
                };
                let _ = writeln!(
                    out,
                    "  {}  +{:>9.3}s  visible {:>3}/{:<3}  {:<40}  {}",
                    utc(r.at_ms),
                    r.at_ms.saturating_sub(first) as f64 / 1000.0,
                    r.peers_with_route,
                    r.feeding_peers,
                    shares,
                    r.events.join(", ")
                );
            }
        }
        out
    }
}

/// `2017-10-01 09:07:51.250` (UTC).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// (year, month 1..=12, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's civil_from_days, proleptic Gregorian).
pub fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// A time on the command line, as Unix seconds: `2017-10-01T09:07:51Z`,
/// `2017-10-01 09:07`, `2017-10-01`, or plain seconds. UTC only.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| "too large".to_string());
    }
    let bad = || {
        "not a time (2017-10-01T09:07:51Z, 2017-10-01 09:07, 2017-10-01 or Unix seconds)"
            .to_string()
    };
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, clock) = match t.split_once(['T', ' ']) {
        Some((d, c)) => (d, c),
        None => (t, "00:00:00"),
    };
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.split(':').collect();
    if d.len() != 3 || !(2..=3).contains(&c.len()) {
        return Err(bad());
    }
    let num = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 4 {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (y, m, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hh, mm) = (num(c[0])?, num(c[1])?);
    let ss = c.get(2).map_or(Ok(0), |s| num(s))?;
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return Err(bad());
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    if utc(secs as u64 * 1000)[..10] != *date {
        return Err(format!("{date}: no such day"));
    }
    Ok(secs as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::{AsPath, Change, Peer, Route, Update};
    use crate::infer::Target;
    use crate::orgs::Orgs;

    #[test]
    fn times_on_the_command_line() {
        assert_eq!(parse_time("2017-10-01T09:07:51Z"), Ok(1_506_848_871));
        assert_eq!(parse_time("2017-10-01 09:07"), Ok(1_506_848_820));
        assert_eq!(parse_time("2017-10-01"), Ok(1_506_816_000));
        assert_eq!(parse_time("1506848871"), Ok(1_506_848_871));
        assert_eq!(parse_time("2000-02-29"), Ok(951_782_400));
        for bad in [
            "",
            "yesterday",
            "2017-13-01",
            "2017-02-30",
            "2017-10-01T25:00",
            "2017-10",
            "-5",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn utc_formats_known_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_506_848_871_250), "2017-10-01 09:07:51.250");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn rows_follow_the_standing_of_each_prefix() {
        let model = Model::new(
            Target {
                prefixes: vec!["175.45.176.0/22".parse().unwrap()],
                asns: [131279].into_iter().collect(),
            },
            Orgs::default(),
            Default::default(),
        );
        let mut t = Timeline::new(model);
        let peer = |n: u8| Peer {
            source: "mrt".into(),
            router: "rrc00".into(),
            addr: format!("192.0.2.{n}").parse().unwrap(),
            asn: 64500,
        };
        let send = |t: &mut Timeline, n: u8, path: Option<&[u32]>, at_ms: u64| {
            t.feed(Message::Update(Update {
                at_ms,
                peer: peer(n),
                prefix: "175.45.177.0/24".parse().unwrap(),
                change: match path {
                    Some(p) => Change::Announce {
                        route: Route {
                            path: AsPath::from_asns(p),
                            next_hop: None,
                        },
                    },
                    None => Change::Withdraw,
                },
            }))
        };
        send(&mut t, 1, Some(&[1, 4837, 131279]), 1_000);
        send(&mut t, 2, Some(&[2, 4837, 131279]), 1_000);
        // Same upstream, other path: no row.
        send(&mut t, 2, Some(&[3, 4837, 131279]), 1_500);
        send(&mut t, 1, Some(&[1, 20485, 131279]), 2_000);
        send(&mut t, 2, Some(&[2, 20485, 131279]), 2_000);
        send(&mut t, 1, None, 3_000);
        send(&mut t, 2, None, 3_000);
        let rows: Vec<(u64, Option<&str>, usize)> = t
            .rows
            .iter()
            .map(|r| (r.at_ms, r.dominant.as_deref(), r.peers_with_route))
            .collect();
        assert_eq!(
            rows,
            [
                (1_000, Some("china-unicom"), 1),
                (1_000, Some("china-unicom"), 2),
                (2_000, None, 2),
                (2_000, Some("transtelecom"), 2),
                (3_000, Some("transtelecom"), 1),
                (3_000, None, 0),
            ]
        );
        assert_eq!(t.rows[3].events, ["upstream_change", "prefix_upstream"]);
        let text = t.render();
        assert!(text.contains("175.45.177.0/24\n"), "{text}");
        assert!(
            text.contains(
                "1970-01-01 00:00:02.000  +    1.000s  visible   2/2    transtelecom 100%"
            ),
            "{text}"
        );
        assert!(text.contains("visible   0/2    no route"), "{text}");
    }
}
