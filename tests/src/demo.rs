//! The screen of `tumen-lab demo`: a pure function of a [`View`], so that
//! what a newcomer sees can be tested without a lab.
//!
//! The screen fits a terminal of 80 columns and 24 rows in every state
//! (waiting for the first round, before the event, after it, with alerts):
//! [`render`] returns at most [`ROWS`] lines of at most [`COLS`] visible
//! columns each (escape codes do not count). Colour is used only when
//! [`View::color`] is set (see [`color_wanted`]).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

/// Terminal width the screen is drawn for.
pub const COLS: usize = 80;
/// Terminal height the screen is drawn for.
pub const ROWS: usize = 24;

/// The real networks the dprk-2017 lab's /24s stand for (the scenario's
/// header and docs/lab.md, "Stand-in addresses").
pub const STAND_INS: [(&str, &str); 6] = [
    ("198.18.176.0/24", "175.45.176.0/24"),
    ("198.18.177.0/24", "175.45.177.0/24"),
    ("198.18.178.0/24", "175.45.178.0/24"),
    ("198.18.179.0/24", "175.45.179.0/24"),
    ("198.19.109.0/24", "210.52.109.0/24"),
    ("198.19.35.0/24", "77.94.35.0/24"),
];

/// The legend under the tables: the lab's upstreams with their ASNs (the
/// same numbers as the real networks') and the addresses their hops answer
/// from, what is inside, and why vp-nyc does not move (the event gives
/// more-specific routes via TransTeleCom to tr-fra and tr-sgp only).
const LEGEND: [&str; 3] = [
    "C China Unicom AS4837: lab hops 198.18.219.x stand for 219.158.x.x",
    "T TransTeleCom AS20485: 198.18.188.x for 188.43.x.x   inside: Star JV AS131279",
    "vp-nyc stays on C: its transit tr-nyc gets no .177-.179 route via TransTeleCom",
];

/// What the demo knows at one redraw.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub collector_port: u16,
    pub prometheus_port: u16,
    pub alertmanager_port: u16,
    /// The vantage points an agent was started on.
    pub agents: Vec<String>,
    /// `tumen_collector_agents{state="live"}`.
    pub agents_live: usize,
    /// How often each agent starts a round, for people ("2 s").
    pub round_every: String,
    /// Seconds since everything came up.
    pub up_s: u64,
    /// Seconds after start at which the event is due.
    pub event_after_s: u64,
    /// Seconds since `ttk-activation` was applied (None: not yet).
    pub event_ago_s: Option<f64>,
    /// Route change -> the metric moved, seconds.
    pub metric_s: Option<f64>,
    /// Route change -> first alert at the webhook, seconds.
    pub alert_s: Option<f64>,
    /// `tumen_upstream_share_ratio`: (prefix, upstream, ratio).
    pub shares: Vec<(String, String, f64)>,
    /// `tumen_path_upstream_info`: (agent, prefix, upstream).
    pub paths: Vec<(String, String, String)>,
    /// Alerts the webhook received, as received (repeats included).
    pub alerts: Vec<Alert>,
    /// Draw with ANSI colours.
    pub color: bool,
}

/// One alert as the webhook received it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alert {
    pub name: String,
    pub prefix: String,
    pub agent: String,
    pub from: String,
    pub to: String,
    /// Seconds after the route change it arrived (None: before the event).
    pub after_s: Option<f64>,
}

/// Colour only for a terminal that can show it: stdout is a TTY, `TERM`
/// is not `dumb`, and `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn color_wanted(stdout_is_tty: bool, term: Option<&str>, no_color: Option<&str>) -> bool {
    stdout_is_tty && term != Some("dumb") && no_color.is_none_or(str::is_empty)
}

/// Columns a line takes on a terminal: ANSI CSI sequences take none.
pub fn visible_width(s: &str) -> usize {
    let mut n = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ parameters... final byte (0x40..=0x7e)
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

/// The first `width` visible columns of `s`, escape codes kept (and the
/// attributes reset if anything was cut).
fn clip(s: &str, width: usize) -> String {
    if visible_width(s) <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut n = 0;
    let mut chars = s.chars().peekable();
    let mut colored = false;
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            colored = true;
            out.push(c);
            if chars.peek() == Some(&'[') {
                out.push('[');
                chars.next();
                for c in chars.by_ref() {
                    out.push(c);
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
        } else if n < width {
            out.push(c);
            n += 1;
        }
    }
    if colored {
        out.push_str("\x1b[0m");
    }
    out
}

/// Pads `s` with spaces to `width` visible columns (or clips it to them).
fn pad(s: &str, width: usize) -> String {
    let s = clip(s, width);
    let w = visible_width(&s);
    format!("{s}{}", " ".repeat(width - w))
}

/// `s` cut to `width` characters, `~` marking the cut.
fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

fn paint(s: &str, sgr: &str, color: bool) -> String {
    if color && !sgr.is_empty() {
        format!("\x1b[{sgr}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Sort key of a prefix: numeric (IPv4 before IPv6), unparsable ones and
/// "all" last.
fn prefix_key(p: &str) -> (u8, u128, u8, String) {
    match p.parse::<IpNet>() {
        Ok(IpNet::V4(n)) => (
            0,
            u32::from(n.network()) as u128,
            n.prefix_len(),
            String::new(),
        ),
        Ok(IpNet::V6(n)) => (1, u128::from(n.network()), n.prefix_len(), String::new()),
        Err(_) => (2, 0, 0, p.to_string()),
    }
}

/// The /24s of a view in numeric order (198.19.35.0/24 before 198.19.109.0/24).
pub fn prefixes(v: &View) -> Vec<String> {
    let mut set: BTreeSet<&str> = BTreeSet::new();
    for (p, _, _) in &v.shares {
        if p != "all" {
            set.insert(p);
        }
    }
    for (_, p, _) in &v.paths {
        set.insert(p);
    }
    let mut out: Vec<String> = set.into_iter().map(String::from).collect();
    out.sort_by_key(|p| prefix_key(p));
    out
}

/// Upstreams in a fixed order: China Unicom, TransTeleCom, then by name.
fn upstream_key(u: &str) -> (u8, &str) {
    match u {
        "china-unicom" => (0, u),
        "transtelecom" => (1, u),
        "unknown" => (3, u),
        _ => (2, u),
    }
}

/// One letter per upstream: C, T, `?` for unknown, otherwise the first
/// letter of the name not taken yet.
pub fn codes(v: &View) -> BTreeMap<String, char> {
    let mut names: Vec<&str> = v
        .shares
        .iter()
        .map(|(_, u, _)| u.as_str())
        .chain(v.paths.iter().map(|(_, _, u)| u.as_str()))
        .chain(["china-unicom", "transtelecom"])
        .collect();
    names.sort_by_key(|u| upstream_key(u));
    names.dedup();
    let mut out = BTreeMap::new();
    let mut taken: BTreeSet<char> = ['.', '?'].into();
    for n in names {
        let c = match n {
            "china-unicom" => 'C',
            "transtelecom" => 'T',
            "unknown" => '?',
            _ => n
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_uppercase())
                .chain('A'..='Z')
                .chain('0'..='9')
                .find(|c| !taken.contains(c))
                .unwrap_or('*'),
        };
        taken.insert(c);
        out.insert(n.to_string(), c);
    }
    out
}

fn upstream_sgr(u: &str) -> &'static str {
    match u {
        "china-unicom" => "31",
        "transtelecom" => "36",
        "unknown" => "",
        _ => "35",
    }
}

/// The column label of each /24 in the agent rows: its third octet when
/// that tells the /24s apart (176 177 ... 35 109), else its position.
fn labels(prefixes: &[String]) -> Vec<String> {
    let octets: Vec<Option<String>> = prefixes
        .iter()
        .map(|p| match p.parse::<IpNet>() {
            Ok(IpNet::V4(n)) => Some(n.network().octets()[2].to_string()),
            _ => None,
        })
        .collect();
    let distinct: BTreeSet<&Option<String>> = octets.iter().collect();
    if octets.iter().all(Option::is_some) && distinct.len() == octets.len() {
        octets.into_iter().map(Option::unwrap_or_default).collect()
    } else {
        (1..=prefixes.len()).map(|i| i.to_string()).collect()
    }
}

/// One /24's upstreams and their shares.
type Shares = Vec<(String, f64)>;

/// Alerts of one kind, /24 and change, as shown on one line.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertGroup {
    pub name: String,
    pub prefix: String,
    pub from: String,
    pub to: String,
    /// The agents, sorted, each once.
    pub agents: Vec<String>,
    /// The first arrival, seconds after the route change.
    pub first_s: Option<f64>,
}

/// Alerts deduplicated (Alertmanager repeats a group's alerts at every
/// notification) and grouped per (alert, prefix, from, to), in numeric
/// prefix order: (name, prefix, from, to, agents, first arrival).
#[allow(clippy::type_complexity)]
pub fn alert_groups(alerts: &[Alert]) -> Vec<AlertGroup> {
    type Key = (String, String, String, String);
    let mut groups: BTreeMap<Key, (BTreeSet<String>, Option<f64>)> = BTreeMap::new();
    for a in alerts {
        let key = (
            a.name.clone(),
            a.prefix.clone(),
            a.from.clone(),
            a.to.clone(),
        );
        let g = groups.entry(key).or_default();
        g.0.insert(a.agent.clone());
        g.1 = match (g.1, a.after_s) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
    }
    let mut out: Vec<AlertGroup> = groups
        .into_iter()
        .map(|((name, prefix, from, to), (agents, first_s))| AlertGroup {
            name,
            prefix,
            from,
            to,
            agents: agents.into_iter().collect(),
            first_s,
        })
        .collect();
    out.sort_by(|a, b| {
        (prefix_key(&a.prefix), &a.name, &a.from, &a.to).cmp(&(
            prefix_key(&b.prefix),
            &b.name,
            &b.from,
            &b.to,
        ))
    });
    out
}

/// Words of `text` in lines of at most `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// A line of the screen; `Gap` lines go first when space is short.
enum Line {
    Text(String),
    Gap,
}

/// The screen: at most [`ROWS`] lines of at most [`COLS`] visible columns.
pub fn render(v: &View) -> Vec<String> {
    let c = v.color;
    let mut top: Vec<Line> = Vec::new();
    let t = |s: String| Line::Text(s);
    top.push(t(format!(
        "{}  (Ctrl-C stops and removes everything)",
        paint("Tumen demo: the dprk-2017 lab", "1", c)
    )));
    top.push(t(format!(
        "on 127.0.0.1: web view :{}/  Prometheus :{}  Alertmanager :{}",
        v.collector_port, v.prometheus_port, v.alertmanager_port
    )));
    top.push(t(
        "event ttk-activation (2017-10-01): .177-.179 announced to TransTeleCom".into(),
    ));
    top.push(t(match v.event_ago_s {
        None => {
            let left = v.event_after_s.saturating_sub(v.up_s);
            if left > 0 {
                format!("  in {left} s, once every /24 has a China Unicom path")
            } else {
                "  as soon as every /24 has a China Unicom path from every agent".into()
            }
        }
        Some(ago) => {
            let mut s = format!("  applied {ago:.0} s ago");
            match v.metric_s {
                Some(m) => s.push_str(&format!("; metric moved after {m:.1} s")),
                None => s.push_str("; waiting for the metric to move"),
            }
            if let Some(a) = v.alert_s {
                s.push_str(&format!(", alert after {a:.1} s"));
            }
            s
        }
    }));
    top.push(Line::Gap);

    let prefixes = prefixes(v);
    let codes = codes(v);
    let code = |u: &str| -> String {
        let ch = codes.get(u).copied().unwrap_or('?');
        paint(&ch.to_string(), upstream_sgr(u), c)
    };
    let mut body: Vec<Line> = Vec::new();
    if v.shares.is_empty() && v.paths.is_empty() {
        let names = v.agents.join(", ");
        let text = format!(
            "Lab, agents, collector, Prometheus and Alertmanager are up. Waiting for the \
             first round of traces from {} agents ({names}): each traces every target /24 \
             every {} and uploads to the collector; {} of {} reported so far.",
            v.agents.len(),
            v.round_every,
            v.agents_live,
            v.agents.len()
        );
        body.extend(wrap(&text, COLS).into_iter().map(Line::Text));
        body.push(Line::Gap);
    } else {
        // Shares per /24, with the real /24 each stands for.
        let pw = prefixes
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .clamp(15, 18);
        let real = |p: &str| {
            STAND_INS
                .iter()
                .find(|(lab, _)| *lab == p)
                .map_or("-", |(_, r)| r)
        };
        let mut rows: Vec<(String, String, Shares)> = Vec::new();
        let mut by: BTreeMap<&str, Shares> = BTreeMap::new();
        for (p, u, r) in &v.shares {
            if *r > 0.0 {
                by.entry(p.as_str()).or_default().push((u.clone(), *r));
            }
        }
        for p in prefixes.iter().map(String::as_str).chain(["all"]) {
            let mut us = by.remove(p).unwrap_or_default();
            us.sort_by(|a, b| upstream_key(&a.0).cmp(&upstream_key(&b.0)));
            let r = if p == "all" { "" } else { real(p) };
            rows.push((p.to_string(), r.to_string(), us));
        }
        let most = rows.iter().map(|r| r.2.len()).max().unwrap_or(1).max(1);
        let room = COLS - pw - 2 - 17;
        // A cell: "C 100% " and a bar, two spaces between cells.
        let bar_w = (room / most).saturating_sub(9).min(10);
        body.push(t(format!(
            "{:<pw$}  {:<15}  upstream share of the {} vantage points",
            "lab /24",
            "stands for",
            v.agents.len()
        )));
        for (p, r, us) in rows {
            let cells: Vec<String> = us
                .iter()
                .map(|(u, x)| {
                    let bar = "#".repeat((x * bar_w as f64).round() as usize);
                    format!(
                        "{} {:>3.0}% {}",
                        code(u),
                        x * 100.0,
                        pad(&paint(&bar, upstream_sgr(u), c), bar_w)
                    )
                })
                .collect();
            let label = if p == "all" { "all of them" } else { &p };
            body.push(t(format!("{label:<pw$}  {r:<15}  {}", cells.join("  "))
                .trim_end()
                .to_string()));
        }
        body.push(Line::Gap);

        // One row per agent: a letter per /24, in the order above.
        let mut agents: BTreeSet<&str> = v.agents.iter().map(String::as_str).collect();
        agents.extend(v.paths.iter().map(|(a, _, _)| a.as_str()));
        let aw = agents
            .iter()
            .map(|a| a.len())
            .max()
            .unwrap_or(0)
            .clamp(6, 16);
        let fit = (COLS - aw) / 4;
        let labels = labels(&prefixes);
        let shown = prefixes.len().min(fit);
        let mut head = format!("{:<aw$}", "agent");
        for l in labels.iter().take(shown) {
            head.push_str(&format!(" {l:>3}"));
        }
        if labels.len() > shown {
            head.push_str(" ...");
        }
        if labels
            .iter()
            .zip(&prefixes)
            .any(|(l, p)| !p.contains(l.as_str()))
        {
            head.push_str("   (columns: the /24s above, in order)");
        } else {
            head.push_str("   (third octet of the /24)");
        }
        body.push(t(head));
        let mut now: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for (a, p, u) in &v.paths {
            now.insert((a.as_str(), p.as_str()), u.as_str());
        }
        let max_agents = 6;
        let n_agents = agents.len();
        for (i, a) in agents.into_iter().enumerate() {
            if i + 1 == max_agents && n_agents > max_agents {
                body.push(t(format!("+{} more agents", n_agents - i)));
                break;
            }
            let mut row = format!("{:<aw$}", shorten(a, aw));
            for p in prefixes.iter().take(shown) {
                let cell = match now.get(&(a, p.as_str())) {
                    Some(u) => code(u),
                    None => ".".into(),
                };
                row.push_str(&format!("  {cell} "));
            }
            body.push(t(row.trim_end().to_string()));
        }
    }
    // The key: letters used besides C and T.
    let extra: Vec<String> = codes
        .iter()
        .filter(|(u, _)| !matches!(u.as_str(), "china-unicom" | "transtelecom"))
        .map(|(u, ch)| format!("{} {u}", paint(&ch.to_string(), upstream_sgr(u), c)))
        .collect();
    let key_c = LEGEND[0].replacen('C', &code("china-unicom"), 1);
    body.push(t(format!("{key_c}   . no path")));
    body.push(t(LEGEND[1].replacen('T', &code("transtelecom"), 1)));
    if !extra.is_empty() {
        body.push(t(extra.join("  ")));
    }
    body.push(t(LEGEND[2].replacen(
        " C:",
        &format!(" {}:", code("china-unicom")),
        1,
    )));

    // Alerts: one line per (alert, prefix, from, to), capped.
    let groups = alert_groups(&v.alerts);
    let mut alerts: Vec<String> = Vec::new();
    if v.event_ago_s.is_some() || !groups.is_empty() {
        alerts.push(paint(
            "alerts at the webhook (Prometheus -> Alertmanager), after the route change:",
            if groups.is_empty() { "" } else { "1;33" },
            c,
        ));
        if groups.is_empty() {
            alerts.push("  none yet".into());
        }
    }
    for AlertGroup {
        name,
        prefix,
        from,
        to,
        agents,
        first_s: first,
    } in &groups
    {
        let what = if name == "TumenUpstreamChanged" {
            format!(
                "{prefix:<15} {} -> {}",
                paint(from, upstream_sgr(from), c),
                paint(to, upstream_sgr(to), c)
            )
        } else {
            format!("{name} {prefix}")
        };
        let when = first.map_or(String::new(), |s| format!("  +{s:.1} s"));
        let head = format!("  {} ", paint("!", "1;33", c));
        let room =
            COLS.saturating_sub(visible_width(&head) + visible_width(&what) + 2 + when.len());
        // As many agents as fit, then "+N".
        let mut list = String::new();
        for (i, a) in agents.iter().enumerate() {
            let rest = agents.len() - i - 1;
            let more = if rest > 0 {
                format!(" +{rest}")
            } else {
                String::new()
            };
            let sep = if list.is_empty() { "" } else { " " };
            if list.len() + sep.len() + a.len() + more.len() <= room {
                list.push_str(sep);
                list.push_str(a);
            } else {
                let left = agents.len() - i;
                if list.is_empty() {
                    let tail = if left > 1 {
                        format!(" +{}", left - 1)
                    } else {
                        String::new()
                    };
                    list = shorten(a, room.saturating_sub(tail.len()).max(2));
                    list.push_str(&tail);
                } else {
                    list.push_str(&format!(" +{left}"));
                }
                break;
            }
        }
        alerts.push(format!("{head}{what}  {list}{when}"));
    }

    // Fit the rows: drop gaps first, then cap the alert lines.
    let mut lines: Vec<Line> = top;
    lines.extend(body);
    let fixed = |lines: &[Line], gaps: bool| {
        lines
            .iter()
            .filter(|l| gaps || matches!(l, Line::Text(_)))
            .count()
    };
    let keep_gaps = fixed(&lines, true) + alerts.len() <= ROWS;
    let mut out: Vec<String> = lines
        .into_iter()
        .filter_map(|l| match l {
            Line::Text(s) => Some(s),
            Line::Gap if keep_gaps => Some(String::new()),
            Line::Gap => None,
        })
        .collect();
    let room = ROWS.saturating_sub(out.len());
    if alerts.len() > room && room >= 2 {
        let shown = room - 1;
        let hidden = groups.len() - (shown - 1);
        alerts.truncate(shown);
        alerts.push(format!("  +{hidden} more"));
    }
    out.extend(alerts);
    out.truncate(ROWS);
    out.into_iter().map(|l| clip(&l, COLS)).collect()
}

/// The frame for a terminal: cursor home, each line cleared to its end,
/// the rest of the screen cleared; no newline after the last line (it
/// would scroll a 24-row terminal by one).
pub fn frame(lines: &[String]) -> String {
    let mut o = String::from("\x1b[H");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            o.push_str("\r\n");
        }
        o.push_str(l);
        o.push_str("\x1b[K");
    }
    o.push_str("\x1b[J");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Model, Proto, Scenario};

    const P: [&str; 6] = [
        "198.18.176.0/24",
        "198.18.177.0/24",
        "198.18.178.0/24",
        "198.18.179.0/24",
        "198.19.109.0/24",
        "198.19.35.0/24",
    ];

    fn base(agents: &[&str]) -> View {
        View {
            collector_port: 40001,
            prometheus_port: 40002,
            alertmanager_port: 40003,
            agents: agents.iter().map(|a| a.to_string()).collect(),
            agents_live: agents.len(),
            round_every: "2 s".into(),
            up_s: 12,
            event_after_s: 30,
            ..View::default()
        }
    }

    /// Every /24 via China Unicom from every agent.
    fn before(agents: &[&str]) -> View {
        let mut v = base(agents);
        for p in P.iter().rev() {
            v.shares.push((p.to_string(), "china-unicom".into(), 1.0));
            for a in agents {
                v.paths
                    .push((a.to_string(), p.to_string(), "china-unicom".into()));
            }
        }
        v.shares.push(("all".into(), "china-unicom".into(), 1.0));
        v
    }

    /// After the event: the first and last agent moved .177-.179, with the
    /// webhook's repeats.
    fn after(agents: &[&str]) -> View {
        let mut v = base(agents);
        v.up_s = 45;
        v.event_ago_s = Some(12.0);
        v.metric_s = Some(1.5);
        v.alert_s = Some(3.1);
        let moved = |a: &str| a == agents[0] || a == agents[agents.len() - 1];
        for p in P {
            let m = ["198.18.177.0/24", "198.18.178.0/24", "198.18.179.0/24"].contains(&p);
            if m {
                v.shares.push((p.into(), "china-unicom".into(), 1.0 / 3.0));
                v.shares.push((p.into(), "transtelecom".into(), 2.0 / 3.0));
            } else {
                v.shares.push((p.into(), "china-unicom".into(), 1.0));
            }
            for a in agents {
                let u = if m && moved(a) {
                    "transtelecom"
                } else {
                    "china-unicom"
                };
                v.paths.push((a.to_string(), p.into(), u.into()));
                if m && moved(a) {
                    for k in 0..3 {
                        v.alerts.push(Alert {
                            name: "TumenUpstreamChanged".into(),
                            prefix: p.into(),
                            agent: a.to_string(),
                            from: "china-unicom".into(),
                            to: "transtelecom".into(),
                            after_s: Some(3.1 + k as f64),
                        });
                    }
                }
            }
        }
        v.shares
            .push(("all".into(), "china-unicom".into(), 2.0 / 3.0));
        v.shares
            .push(("all".into(), "transtelecom".into(), 1.0 / 3.0));
        v
    }

    fn assert_fits(v: &View) -> Vec<String> {
        let lines = render(v);
        assert!(
            lines.len() <= ROWS,
            "{} rows:\n{}",
            lines.len(),
            lines.join("\n")
        );
        for l in &lines {
            assert!(
                visible_width(l) <= COLS,
                "{} columns: {l:?}",
                visible_width(l)
            );
        }
        lines
    }

    const LONG: [&str; 3] = [
        "vp-frankfurt-hetzner-01",
        "vp-new-york-digitalocean-02",
        "vp-singapore-vultr-03",
    ];

    #[test]
    fn every_state_fits_80x24_with_and_without_colour() {
        for color in [false, true] {
            for agents in [&["vp-fra", "vp-nyc", "vp-sgp"][..], &LONG[..]] {
                let mut waiting = base(agents);
                waiting.agents_live = 0;
                for mut v in [waiting, before(agents), after(agents)] {
                    v.color = color;
                    assert_fits(&v);
                }
            }
        }
    }

    #[test]
    fn many_alerts_and_agents_are_capped_with_more() {
        let agents: Vec<String> = (0..9).map(|i| format!("vantage-point-{i:02}")).collect();
        let names: Vec<&str> = agents.iter().map(String::as_str).collect();
        let mut v = after(&names);
        for (i, p) in P.iter().enumerate() {
            v.alerts.push(Alert {
                name: if i % 2 == 0 {
                    "TumenUpstreamChanged"
                } else {
                    "TumenPrefixUnreachable"
                }
                .into(),
                prefix: p.to_string(),
                agent: names[i].into(),
                from: "transtelecom".into(),
                to: "china-unicom".into(),
                after_s: Some(9.0),
            });
        }
        v.color = true;
        let lines = assert_fits(&v);
        let text = lines.join("\n");
        assert!(text.contains("more agents"), "{text}");
        assert!(
            lines
                .last()
                .is_some_and(|l| l.trim_start().starts_with('+') && l.ends_with("more")),
            "{text}"
        );
        assert_eq!(lines.len(), ROWS);
    }

    #[test]
    fn prefixes_in_numeric_order() {
        let v = before(&["vp-fra"]);
        assert_eq!(
            prefixes(&v).last().map(String::as_str),
            Some("198.19.109.0/24")
        );
        let lines = render(&v);
        let row = |p: &str| lines.iter().position(|l| l.starts_with(p)).unwrap();
        assert!(row("198.18.179.0/24") < row("198.19.35.0/24"));
        assert!(row("198.19.35.0/24") < row("198.19.109.0/24"));
        let head = lines.iter().find(|l| l.starts_with("agent")).unwrap();
        assert!(head.starts_with("agent  176 177 178 179  35 109"), "{head}");
        assert!(prefix_key("10.0.0.0/8") < prefix_key("2001:db8::/32"));
        assert!(prefix_key("2001:db8::/32") < prefix_key("all"));
    }

    #[test]
    fn agent_rows_are_one_letter_per_prefix() {
        let lines = render(&after(&["vp-fra", "vp-nyc", "vp-sgp"]));
        let row = |a: &str| lines.iter().find(|l| l.starts_with(a)).unwrap().clone();
        assert_eq!(row("vp-fra"), "vp-fra  C   T   T   T   C   C");
        assert_eq!(row("vp-nyc"), "vp-nyc  C   C   C   C   C   C");
        assert_eq!(row("vp-sgp"), "vp-sgp  C   T   T   T   C   C");
        let r = lines
            .iter()
            .find(|l| l.starts_with("198.18.177.0/24"))
            .unwrap();
        assert!(r.contains("175.45.177.0/24"), "{r}");
        assert!(r.contains("C  33%") && r.contains("T  67%"), "{r}");
    }

    #[test]
    fn alerts_deduplicated_grouped_and_sorted() {
        let mut v = after(&["vp-fra", "vp-nyc", "vp-sgp"]);
        v.alerts.reverse();
        let g = alert_groups(&v.alerts);
        assert_eq!(g.len(), 3);
        let prefixes: Vec<&str> = g.iter().map(|x| x.prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            ["198.18.177.0/24", "198.18.178.0/24", "198.18.179.0/24"]
        );
        for x in &g {
            assert_eq!(x.agents, ["vp-fra", "vp-sgp"]);
            assert_eq!(x.first_s, Some(3.1));
        }
        let lines = render(&v);
        let alert_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with("  ! ")).collect();
        assert_eq!(alert_lines.len(), 3, "{}", lines.join("\n"));
        assert_eq!(
            alert_lines[0].as_str(),
            "  ! 198.18.177.0/24 china-unicom -> transtelecom  vp-fra vp-sgp  +3.1 s"
        );
    }

    #[test]
    fn long_agent_lists_end_with_a_count() {
        let mut v = after(&LONG);
        for a in ["vp-extra-long-name-number-four", "vp-five", "vp-six"] {
            v.alerts.push(Alert {
                name: "TumenUpstreamChanged".into(),
                prefix: "198.18.177.0/24".into(),
                agent: a.into(),
                from: "china-unicom".into(),
                to: "transtelecom".into(),
                after_s: Some(4.0),
            });
        }
        let lines = assert_fits(&v);
        let l = lines
            .iter()
            .find(|l| l.contains("198.18.177.0/24 china"))
            .unwrap();
        assert!(l.contains(" +"), "{l}");
        assert!(l.ends_with("+3.1 s"), "{l}");
    }

    #[test]
    fn first_frame_says_what_is_happening() {
        let mut v = base(&["vp-fra", "vp-nyc", "vp-sgp"]);
        v.agents_live = 0;
        let text = render(&v).join(" ");
        assert!(
            text.contains("Waiting for the first round of traces from 3 agents"),
            "{text}"
        );
        assert!(text.contains("every 2 s"), "{text}");
        assert!(text.contains("0 of 3 reported"), "{text}");
        assert!(!text.contains("lab /24"), "no empty table: {text}");
        assert!(text.contains("in 18 s"), "{text}");
    }

    #[test]
    fn colour_only_when_wanted() {
        assert!(color_wanted(true, Some("xterm-256color"), None));
        assert!(color_wanted(true, None, None));
        assert!(color_wanted(true, Some("xterm"), Some("")));
        assert!(!color_wanted(true, Some("xterm"), Some("1")));
        assert!(!color_wanted(true, Some("dumb"), None));
        assert!(!color_wanted(false, Some("xterm"), None));
        let mut v = after(&["vp-fra", "vp-nyc", "vp-sgp"]);
        let plain = render(&v);
        assert!(plain.iter().all(|l| !l.contains('\x1b')), "{plain:?}");
        v.color = true;
        let colored = render(&v);
        assert!(colored.iter().any(|l| l.contains("\x1b[31mC\x1b[0m")));
        assert!(colored.iter().any(|l| l.contains("\x1b[36mT\x1b[0m")));
        // Same text once the escapes are taken out.
        let strip = |l: &String| {
            let mut s = String::new();
            let mut esc = false;
            for ch in l.chars() {
                match (esc, ch) {
                    (false, '\x1b') => esc = true,
                    (true, c) if ('\x40'..='\x7e').contains(&c) && c != '[' => esc = false,
                    (true, _) => {}
                    (false, c) => s.push(c),
                }
            }
            s
        };
        let stripped: Vec<String> = colored.iter().map(strip).collect();
        assert_eq!(stripped, plain);
    }

    #[test]
    fn widths_ignore_escape_codes() {
        assert_eq!(visible_width("\x1b[1;33mab\x1b[0m c"), 4);
        let long = format!("\x1b[31m{}\x1b[0m", "x".repeat(100));
        let c = clip(&long, COLS);
        assert_eq!(visible_width(&c), COLS);
        assert!(c.ends_with("\x1b[0m"));
        assert_eq!(pad("\x1b[31mC\x1b[0m", 3), "\x1b[31mC\x1b[0m  ");
    }

    #[test]
    fn frame_does_not_scroll_a_24_row_terminal() {
        let lines = render(&after(&["vp-fra", "vp-nyc", "vp-sgp"]));
        let f = frame(&lines);
        assert!(!f.ends_with('\n'));
        assert_eq!(f.matches('\n').count(), lines.len() - 1);
    }

    /// The legend says what the dprk-2017 scenario does.
    #[test]
    fn legend_matches_the_scenario() {
        let s = Scenario::load("dprk-2017").unwrap();
        let targets: Vec<String> = s.targets.iter().map(ToString::to_string).collect();
        for (lab, _) in STAND_INS {
            assert!(
                s.targets
                    .iter()
                    .any(|t| t.contains(&lab.parse::<IpNet>().unwrap())),
                "{lab} not in {targets:?}"
            );
        }
        let org = |asn: u32| s.org_of(asn).map(|o| o.id.clone());
        assert_eq!(s.asn_of("198.18.219.1".parse().unwrap()), Some(4837));
        assert_eq!(org(4837).as_deref(), Some("china-unicom"));
        assert_eq!(s.asn_of("198.18.188.1".parse().unwrap()), Some(20485));
        assert_eq!(org(20485).as_deref(), Some("transtelecom"));
        assert_eq!(s.asn_of("198.18.176.1".parse().unwrap()), Some(131279));
        assert_eq!(org(131279).as_deref(), Some("star-jv"));
        // The event gives the TransTeleCom routes to tr-fra and tr-sgp
        // only: vp-nyc's transit keeps China Unicom.
        let ev = s.event("ttk-activation").unwrap();
        let nodes: BTreeSet<&str> = ev.routes.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(nodes, ["tr-fra", "tr-sgp"].into());
        assert!(ev.routes.iter().all(|r| r.via == ["ttk-msk"]));
        let m = Model::new(&s, &["ttk-activation"]).unwrap();
        for (vp, asn) in [("vp-nyc", 4837), ("vp-fra", 20485), ("vp-sgp", 20485)] {
            let paths = m
                .paths(vp, "198.18.177.15".parse().unwrap(), Proto::Icmp)
                .unwrap();
            let hop2 = match &paths[0][1] {
                crate::Hop::Reply { addr, .. } => *addr,
                crate::Hop::Silent => panic!("silent"),
            };
            assert_eq!(s.asn_of(hop2), Some(asn), "{vp}");
        }
    }
}
