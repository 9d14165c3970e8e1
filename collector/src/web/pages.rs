//! The web view's HTML, server-rendered with maud (every value escaped).
//! No inline script or style: the page's one script and its stylesheets
//! are served from `/ui/static/` (embedded in the binary), so the
//! Content-Security-Policy can forbid everything else.

use maud::{html, Markup, DOCTYPE};

use super::chart::{clean, Palette};
use super::data::{Now, NowRow};
use crate::bgp::timeline::utc;
use crate::paths::Shares;
use crate::store::{BgpEventRow, EventRow};

/// Which view a page is (the navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Now,
    Timeline,
    Paths,
    Changes,
    Agents,
}

impl View {
    fn slug(self) -> &'static str {
        match self {
            View::Now => "now",
            View::Timeline => "timeline",
            View::Paths => "paths",
            View::Changes => "changes",
            View::Agents => "agents",
        }
    }
}

/// `2026-12-05 17:03:12 UTC` (seconds).
pub fn when(ms: u64) -> String {
    let s = utc(ms);
    format!("{} UTC", s.get(..19).unwrap_or(&s))
}

/// `5 s`, `3 min`, `2 h`, `4 d` ago.
pub fn ago(now_ms: u64, ms: u64) -> String {
    let s = now_ms.saturating_sub(ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn time_el(ms: u64) -> Markup {
    html! { time datetime=(iso(ms)) { (when(ms)) } }
}

/// `2026-12-05T17:03:12Z`.
pub fn iso(ms: u64) -> String {
    let s = utc(ms);
    format!(
        "{}T{}Z",
        s.get(..10).unwrap_or(""),
        s.get(11..19).unwrap_or("")
    )
}

fn pct(f: f64) -> String {
    format!("{:.0}%", f * 100.0)
}

/// The page around a view.
pub fn layout(title: &str, view: View, info: &PageInfo, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "Tumen · " (clean(title)) }
                link rel="icon" href="/ui/static/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/ui/static/site.css";
                link rel="stylesheet" href="/ui/static/charts.css";
                script src="/ui/static/app.js" defer {}
            }
            body data-view=(view.slug()) {
                header {
                    a.brand href="/" { "Tumen" }
                    nav aria-label="Views" {
                        @for (v, label, href) in [
                            (View::Now, "Now", "/"),
                            (View::Timeline, "Timeline", "/timeline"),
                            (View::Paths, "Paths", "/paths"),
                            (View::Changes, "Changes", "/changes"),
                            (View::Agents, "Agents", "/agents"),
                        ] {
                            @if v == view {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    span #live-status role="status" { "live updates off" }
                }
                main { (body) }
                footer {
                    "tumen-collector " (info.version) " · target " (clean(&info.target))
                    " · page made " (time_el(info.now_ms))
                    " · data as JSON: " a href="/api/v1/shares" { "/api/v1/shares" }
                }
            }
        }
    }
}

/// What every page's frame says.
#[derive(Debug, Clone)]
pub struct PageInfo {
    pub version: &'static str,
    pub target: String,
    pub now_ms: u64,
}

/// A stacked bar of shares (SVG, no style attribute) and the list.
pub fn shares_cell(shares: &Shares, palette: &Palette) -> Markup {
    let mut v: Vec<(&String, &f64)> = shares.iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    // Each segment starts where the ones before it end.
    let starts: Vec<f64> = v
        .iter()
        .scan(0.0, |x, (_, f)| {
            let at = *x;
            *x += **f * 100.0;
            Some(at)
        })
        .collect();
    html! {
        @if v.is_empty() {
            span.none { "no data" }
        } @else {
            svg.bar viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
                @for ((name, f), x) in v.iter().zip(&starts) {
                    @let w = **f * 100.0;
                    rect class=(palette.class(name)) x=(format!("{x:.3}")) y="0"
                        width=(format!("{w:.3}")) height="10" {
                        title { (clean(name)) " " (pct(**f)) }
                    }
                }
            }
            ul.shares {
                @for (name, f) in &v {
                    li data-upstream=(clean(name)) data-share=(f) {
                        span class=(format!("swatch {}", palette.class(name))) {}
                        span.name { (clean(name)) } " " span.pct { (pct(**f)) }
                    }
                }
            }
        }
    }
}

fn now_row(r: &NowRow, palette: &Palette, bgp: bool, now_ms: u64) -> Markup {
    html! {
        tr data-prefix=(r.prefix) {
            th scope="row" {
                @if r.prefix == "all" { "all /24s" } @else {
                    a href=(format!("/timeline?prefix={}", r.prefix)) { (r.prefix) }
                }
            }
            td data-field="data" data-label="Data plane" { (shares_cell(&r.data, palette)) }
            @if bgp {
                td data-field="bgp" data-label="Control plane (BGP)" {
                    @match &r.bgp { Some(b) => (shares_cell(b, palette)), None => span.none { "no data" } }
                }
            }
            td data-field="reachable" data-label="Reachable" {
                @match r.reachable { Some(f) => (pct(f)), None => "–" }
            }
            td data-field="vps" data-label="Vantage points" { (r.vps) }
            td data-field="last_change" data-label="Last change" {
                @match r.last_change_ms {
                    Some(ms) => { (time_el(ms)) br; small { (ago(now_ms, ms)) } }
                    None => "none seen"
                }
            }
        }
    }
}

/// The Now view.
pub fn now_view(now: &Now, bgp: bool, bgp_prefixes: &[crate::bgp::model::PrefixView]) -> Markup {
    let palette = Palette::new(now.classes.keys().map(String::as_str));
    let headline = crate::bgp::model::shares_text(&now.all.data);
    html! {
        h1 { "Who carries the traffic into the target now" }
        p.lead #headline {
            @if now.all.data.is_empty() {
                "No live vantage point has traced the target yet."
            } @else {
                "Over all /24s, from " (now.all.vps) " live vantage points: " (clean(&headline)) "."
            }
        }
        div.table-wrap {
            table #now data-bgp=(bgp) {
                caption { "Upstream shares per /24: data plane (traceroutes from the vantage points)"
                    @if bgp { " beside the control plane (BGP routes of the feeding peers)" } }
                thead { tr {
                    th scope="col" { "/24" }
                    th scope="col" { "Data plane" }
                    @if bgp { th scope="col" { "Control plane (BGP)" } }
                    th scope="col" { "Reachable" }
                    th scope="col" { "Vantage points" }
                    th scope="col" { "Last change" }
                } }
                tbody {
                    @for r in &now.rows { (now_row(r, &palette, bgp, now.generated_ms)) }
                }
                tfoot { (now_row(&now.all, &palette, bgp, now.generated_ms)) }
            }
        }
        @if bgp {
            h2 { "Announced prefixes" }
            div.table-wrap {
                table #bgp-prefixes {
                    thead { tr {
                        th scope="col" { "Prefix" } th scope="col" { "Visibility" }
                        th scope="col" { "Peers with a route" } th scope="col" { "Upstreams" }
                        th scope="col" { "Last change" }
                    } }
                    tbody {
                        @for p in bgp_prefixes {
                            tr {
                                th scope="row" { (p.prefix) }
                                td { @match p.visibility { Some(v) => (pct(v)), None => "–" } }
                                td { (p.peers_with_route) " / " (p.feeding_peers) }
                                td { (shares_cell(&p.shares, &palette)) }
                                td { @match &p.last_change {
                                    Some(c) => { (clean(&c.from)) " → " (clean(&c.to)) br; small { (time_el(c.at_ms)) } }
                                    None => "none seen"
                                } }
                            }
                        }
                    }
                }
            }
        }
        p.note { "Shares count live vantage points (an upload within the silence window). "
            a href="/changes" { "Every change" } " links to the traces before and after it." }
    }
}

/// A select of the /24s (`all` first), `selected` marked.
fn prefix_select(prefixes: &[String], selected: Option<&str>) -> Markup {
    html! {
        label { "/24 "
            select name="prefix" {
                option value="" selected[selected.is_none()] { "all" }
                @for p in prefixes {
                    option value=(p) selected[selected == Some(p.as_str())] { (p) }
                }
            }
        }
    }
}

/// The Timeline view's form.
pub fn timeline_form(
    prefixes: &[String],
    selected: Option<&str>,
    range: &str,
    from: &str,
    until: &str,
) -> Markup {
    html! {
        form.controls method="get" action="/timeline" {
            (prefix_select(prefixes, selected))
            fieldset.range {
                legend { "Range" }
                @for (v, label) in [("1h", "last hour"), ("1d", "last day"), ("30d", "last 30 days"), ("custom", "custom (UTC)")] {
                    label { input type="radio" name="range" value=(v) checked[range == v]; " " (label) }
                }
                label { "from " input type="datetime-local" name="from" value=(from) step="1"; }
                label { "until " input type="datetime-local" name="until" value=(until) step="1"; }
            }
            button type="submit" { "Show" }
        }
    }
}

/// The Paths view's frame around the graph (refreshed live by the
/// script from `src`).
pub fn paths_view(prefixes: &[String], selected: Option<&str>, graph: Markup, src: &str) -> Markup {
    html! {
        h1 { "Paths from the vantage points into the target" }
        form.controls method="get" action="/paths" {
            (prefix_select(prefixes, selected))
            button type="submit" { "Show" }
        }
        p.note { "From each vantage point's latest trace: the networks (ASes) it crossed, the upstream in colour, the /24 at the end. Hover a node or edge for hop counts and round-trip times." }
        div #paths-graph data-src=(src) { (graph) }
    }
}

/// A change event's one-line summary.
pub fn change_summary(e: &EventRow) -> Markup {
    html! {
        (clean(e.from_upstream.as_deref().unwrap_or("nothing"))) " → " strong { (clean(&e.to_upstream)) }
        " for " (clean(&e.prefix)) " seen from " (clean(&e.agent))
    }
}

/// The Changes view: data-plane changes and control-plane events.
pub fn changes_view(
    events: &[EventRow],
    bgp: &[BgpEventRow],
    prefixes: &[String],
    selected: Option<&str>,
    limit: usize,
) -> Markup {
    html! {
        h1 { "Changes" }
        form.controls method="get" action="/changes" {
            (prefix_select(prefixes, selected))
            button type="submit" { "Show" }
        }
        h2 { "Upstream changes seen by the vantage points" }
        @if events.is_empty() { p.none { "No change stored." } } @else {
            div.table-wrap { table #changes {
                thead { tr { th scope="col" { "When" } th scope="col" { "/24" } th scope="col" { "Vantage point" }
                    th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Evidence" } } }
                tbody { @for e in events {
                    tr data-event=(e.id) {
                        td { (time_el(e.at_ms)) }
                        td { (clean(&e.prefix)) }
                        td { (clean(&e.agent)) }
                        td { (clean(e.from_upstream.as_deref().unwrap_or("–"))) }
                        td { (clean(&e.to_upstream)) }
                        td { a href=(format!("/changes/{}", e.id)) { "traces before and after" } }
                    }
                } }
            } }
            @if events.len() >= limit { p.note { "The latest " (limit) " changes; narrow by /24 for older ones." } }
        }
        @if !bgp.is_empty() {
            h2 { "Control-plane events (BGP)" }
            (bgp_table(bgp))
        }
    }
}

fn bgp_table(bgp: &[BgpEventRow]) -> Markup {
    html! {
        div.table-wrap { table.bgp-events {
            thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Prefix" }
                th scope="col" { "Peer" } th scope="col" { "Upstream" } th scope="col" { "AS path" } th scope="col" { "Detail" } } }
            tbody { @for r in bgp {
                @let e = &r.event;
                tr {
                    td { (time_el(e.at_ms)) }
                    td { (e.kind.as_str()) }
                    td { @if let Some(p) = e.prefix { (p) } }
                    td { (clean(e.peer.as_deref().unwrap_or(""))) }
                    td { (clean(e.from.as_ref().map_or("", |u| u.name.as_str())))
                        @if e.from.is_some() || e.to.is_some() { " → " }
                        (clean(e.to.as_ref().map_or("", |u| u.name.as_str()))) }
                    td.path { (clean(e.path.as_deref().unwrap_or(""))) }
                    td { (clean(e.detail.as_deref().unwrap_or(""))) }
                }
            } }
        } }
    }
}

/// One trace of the change detail, hop by hop.
fn trace_table(t: Option<&super::TraceEvidence>, caption: &str) -> Markup {
    html! {
        @match t {
            Some(t) => {
                table.trace data-trace=(clean(&t.id)) {
                    caption { (caption) ": " (time_el(t.start_ms)) " · upstream " strong { (clean(&t.upstream)) }
                        @if let Some(a) = t.upstream_asn { " (AS" (a) ")" }
                        " · " @if t.entered { "entered the target" } @else { "did not enter the target" } }
                    thead { tr { th scope="col" { "TTL" } th scope="col" { "Address" } th scope="col" { "Name" }
                        th scope="col" { "AS" } th scope="col" { "Organisation" } th scope="col" { "RTT" } } }
                    tbody { @for h in &t.hops {
                        tr {
                            td { (h.ttl) }
                            td { (h.addr.as_deref().unwrap_or("*")) }
                            td { (clean(h.name.as_deref().unwrap_or(""))) }
                            td { @if let Some(a) = h.asn { "AS" (a) } }
                            td { (clean(h.org.as_deref().unwrap_or(""))) }
                            td { @if let Some(r) = h.rtt_ms { (format!("{r:.1} ms")) } }
                        }
                    } }
                }
            }
            None => { p.none { (caption) ": no trace from this vantage point in the window." } }
        }
    }
}

/// Which vantage points of a change detail a page shows.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// From 1.
    pub page: usize,
    pub per_page: usize,
    /// Vantage points that traced the /24 in the window.
    pub total: usize,
    /// Of those, how many changed upstream between before and after.
    pub moved: usize,
}

impl Paging {
    fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }
}

fn pager(id: i64, p: Paging) -> Markup {
    html! {
        @if p.pages() > 1 {
            nav.pager aria-label="Vantage point pages" {
                "Page " (p.page) " of " (p.pages()) ": "
                @if p.page > 1 { a href=(format!("/changes/{id}?page={}", p.page - 1)) rel="prev" { "previous" } " " }
                @if p.page < p.pages() { a href=(format!("/changes/{id}?page={}", p.page + 1)) rel="next" { "next" } }
            }
        }
    }
}

/// The change detail.
pub fn change_view(
    e: &EventRow,
    vps: &[super::VpEvidence],
    window: (u64, u64),
    bgp_routes: &[crate::bgp::model::PeerRoute],
    bgp_events: &[BgpEventRow],
    bgp_on: bool,
    paging: Paging,
) -> Markup {
    html! {
        h1 { "Change #" (e.id) }
        p.lead { (change_summary(e)) " at " (time_el(e.at_ms)) "." }
        p.downloads { "Evidence bundle: "
            a href=(format!("/changes/{}/bundle.json", e.id)) download { "JSON" } " · "
            a href=(format!("/changes/{}/bundle.csv", e.id)) download { "CSV" } " · "
            a href=(format!("/changes/{}/bundle.md", e.id)) download { "Markdown" }
            " (permanent link: " a href=(format!("/changes/{}", e.id)) { "/changes/" (e.id) } ")"
        }
        p.note { "The JSON bundle holds every trace as received: "
            code { "tumen-collector infer bundle.json" } " re-infers them." }
        h2 { "Traces before and after, from every vantage point" }
        p.note { (paging.total) " vantage points traced " (clean(&e.prefix)) " between " (time_el(window.0)) " and " (time_el(window.1))
            "; " (paging.moved) " of them changed upstream between their traces before and after. The one that made this change comes first, then those that moved."
            @if paging.pages() > 1 { " " (paging.per_page) " per page; the bundles hold them all." } }
        (pager(e.id, paging))
        @for v in vps {
            section.vp data-agent=(clean(&v.agent)) {
                h3 { (clean(&v.agent)) @if v.agent == e.agent { " (this change)" } }
                div.pair {
                    div.before { (trace_table(v.before.as_ref(), "Before")) }
                    div.after { (trace_table(v.after.as_ref(), "After")) }
                }
            }
        }
        @if vps.is_empty() { p.none { "No trace toward this /24 in the window (pruned by the retention?)." } }
        (pager(e.id, paging))
        h2 { "BGP paths" }
        @if !bgp_on { p.none { "No BGP source is configured (--bmp-listen, --bgp-archive, --ris-live)." } }
        @else {
            h3 { "Routes covering " (clean(&e.prefix)) " now" }
            @if bgp_routes.is_empty() { p.none { "No peer holds a route covering it now." } } @else {
                div.table-wrap { table.bgp-routes {
                    thead { tr { th scope="col" { "Peer" } th scope="col" { "Prefix" } th scope="col" { "AS path" }
                        th scope="col" { "Upstream" } th scope="col" { "Since" } } }
                    tbody { @for r in bgp_routes { tr {
                        td { (clean(&r.peer)) } td { (r.prefix) } td.path { (clean(&r.path)) }
                        td { (clean(r.upstream.as_ref().map_or("", |u| u.name.as_str()))) }
                        td { (time_el(r.since_ms)) }
                    } } }
                } }
            }
            h3 { "Control-plane events around the change" }
            @if bgp_events.is_empty() { p.none { "None stored within the window." } } @else { (bgp_table(bgp_events)) }
        }
    }
}

/// One agent of the Agents view.
#[derive(Debug, Clone)]
pub struct AgentRow {
    pub name: String,
    pub live: bool,
    pub last_seen_ms: u64,
    pub first_seen_ms: u64,
    pub traces: u64,
    pub pings: u64,
    pub paths: usize,
    pub version: Option<String>,
    pub probes_per_round: Option<f64>,
    pub spool_lag_ms: Option<u64>,
    pub refused: Vec<(String, String)>,
}

/// The Agents view.
pub fn agents_view(agents: &[AgentRow], now_ms: u64) -> Markup {
    html! {
        h1 { "Vantage points" }
        @if agents.is_empty() { p.none { "No agent has uploaded yet." } } @else {
            div.table-wrap { table #agents {
                thead { tr {
                    th scope="col" { "Agent" } th scope="col" { "State" } th scope="col" { "Last seen" }
                    th scope="col" { "Probes per round" } th scope="col" { "Spool lag" }
                    th scope="col" { "Traces / pings" } th scope="col" { "Paths" }
                    th scope="col" { "Refusals" } th scope="col" { "Version" }
                } }
                tbody { @for a in agents {
                    tr data-agent=(clean(&a.name)) {
                        th scope="row" { (clean(&a.name)) }
                        td { @if a.live { span.ok { "live" } } @else { span.bad { "silent" } } }
                        td { (time_el(a.last_seen_ms)) br; small { (ago(now_ms, a.last_seen_ms)) } }
                        td { @match a.probes_per_round { Some(p) => (format!("{p:.0}")), None => "–" } }
                        td { @match a.spool_lag_ms { Some(l) => (format!("{:.1} s", l as f64 / 1000.0)), None => "–" } }
                        td { (a.traces) " / " (a.pings) }
                        td { (a.paths) }
                        td { @if a.refused.is_empty() { "none" } @else {
                            ul.refused { @for (item, why) in &a.refused { li { (clean(item)) ": " (clean(why)) } } }
                        } }
                        td { (clean(a.version.as_deref().unwrap_or("–"))) }
                    }
                } }
            } }
            p.note { "Probes per round and spool lag come from each agent's latest upload (lag: the age of its oldest record on arrival); first seen and counts from the store." }
        }
    }
}

/// A page that says why nothing is shown (403, 404, 400).
pub fn message(title: &str, text: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Tumen · " (clean(title)) }
                link rel="stylesheet" href="/ui/static/site.css";
            }
            body { main { h1 { (clean(title)) } p { (clean(text)) } p { a href="/" { "Back to the Now view" } } } }
        }
    }
}

/// The Markdown of an evidence bundle.
pub fn bundle_markdown(b: &super::Bundle) -> String {
    use std::fmt::Write;
    let e = &b.event;
    let mut s = String::new();
    let md = |t: &str| -> String {
        clean(t)
            .chars()
            .map(|c| match c {
                '|' | '`' | '*' | '_' | '<' | '>' | '[' | ']' | '\\' | '#' => format!("\\{c}"),
                '\n' | '\r' => " ".into(),
                c => c.to_string(),
            })
            .collect()
    };
    let _ = writeln!(s, "# Tumen evidence: change #{}\n", e.id);
    let _ = writeln!(
        s,
        "{} → **{}** for {} seen from {} at {}.\n",
        md(e.from_upstream.as_deref().unwrap_or("nothing")),
        md(&e.to_upstream),
        md(&e.prefix),
        md(&e.agent),
        when(e.at_ms)
    );
    let _ = writeln!(
        s,
        "Collector {} · traces between {} and {} · bundle made {}.\n",
        b.collector_version,
        when(b.window.0),
        when(b.window.1),
        when(b.generated_ms)
    );
    for vp in &b.vantage_points {
        let _ = writeln!(s, "## {}\n", md(&vp.agent));
        for (label, t) in [("Before", &vp.before), ("After", &vp.after)] {
            match t {
                Some(t) => {
                    let _ = writeln!(
                        s,
                        "### {label}: {} · upstream {}{}\n",
                        when(t.start_ms),
                        md(&t.upstream),
                        if t.entered {
                            " · entered the target"
                        } else {
                            ""
                        }
                    );
                    let _ = writeln!(s, "| TTL | Address | Name | AS | Organisation | RTT |");
                    let _ = writeln!(s, "|---:|---|---|---|---|---:|");
                    for h in &t.hops {
                        let _ = writeln!(
                            s,
                            "| {} | {} | {} | {} | {} | {} |",
                            h.ttl,
                            h.addr.as_deref().unwrap_or("*"),
                            md(h.name.as_deref().unwrap_or("")),
                            h.asn.map(|a| format!("AS{a}")).unwrap_or_default(),
                            md(h.org.as_deref().unwrap_or("")),
                            h.rtt_ms.map(|r| format!("{r:.1} ms")).unwrap_or_default()
                        );
                    }
                    s.push('\n');
                }
                None => {
                    let _ = writeln!(s, "### {label}: no trace in the window\n");
                }
            }
        }
    }
    if !b.bgp_routes.is_empty() || !b.bgp_events.is_empty() {
        let _ = writeln!(s, "## BGP\n");
        for r in &b.bgp_routes {
            let _ = writeln!(s, "- {} {}: {}", md(&r.peer), r.prefix, md(&r.path));
        }
        for r in &b.bgp_events {
            let ev = &r.event;
            let _ = writeln!(
                s,
                "- {} {} {} {}",
                when(ev.at_ms),
                ev.kind.as_str(),
                md(ev.peer.as_deref().unwrap_or("")),
                md(ev.path.as_deref().unwrap_or(""))
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::model::{BgpEvent, EventKind, PeerRoute};
    use crate::paths::Upstream;

    const HOSTILE: &str = "<script>alert(\"x\")</script>'\"\u{7}";

    /// BGP data (a BMP router's sysName, a peer's name, an AS path from
    /// the wire, an organisation) is attacker-controlled: text only.
    #[test]
    fn bgp_routes_and_events_render_hostile_labels_as_text() {
        let e = EventRow {
            id: 7,
            agent: HOSTILE.into(),
            prefix: "198.18.177.0/24".into(),
            at_ms: 1_000,
            from_upstream: Some(HOSTILE.into()),
            from_asn: None,
            to_upstream: HOSTILE.into(),
            to_asn: None,
            trace_id: "t".into(),
            evidence: serde_json::Value::Null,
        };
        let up = Upstream {
            name: HOSTILE.into(),
            asn: Some(1),
        };
        let routes = [PeerRoute {
            peer: HOSTILE.into(),
            source: HOSTILE.into(),
            prefix: "198.18.176.0/22".parse().expect("p"),
            path: HOSTILE.into(),
            origin: Some(1),
            upstream: Some(up.clone()),
            since_ms: 0,
        }];
        let events = [BgpEventRow {
            id: 1,
            event: BgpEvent {
                at_ms: 1,
                kind: EventKind::UpstreamChange,
                source: HOSTILE.into(),
                peer: Some(HOSTILE.into()),
                prefix: Some("198.18.176.0/22".parse().expect("p")),
                from: Some(up.clone()),
                to: Some(up),
                path: Some(HOSTILE.into()),
                detail: Some(HOSTILE.into()),
            },
        }];
        let paging = Paging {
            page: 1,
            per_page: 100,
            total: 0,
            moved: 0,
        };
        let page = change_view(&e, &[], (0, 1), &routes, &events, true, paging).into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains('\u{7}'), "control character kept");
        assert!(
            page.matches("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'&quot;")
                .count()
                >= 8,
            "{page}"
        );
        let list = changes_view(&[e], &events, &[], None, 10).into_string();
        assert!(
            !list.contains("<script>") && !list.contains('\u{7}'),
            "{list}"
        );
    }
}
