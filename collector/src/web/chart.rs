//! Timeline charts (inline SVG).
//!
//! [`shares_chart`] draws, for one vantage point or /24, the share of each
//! upstream over a time range as a stacked step-area chart. Everything is
//! rendered through maud (labels are attacker-controlled: agent names, AS
//! organisations); colours come from the classes of [`Palette`] and
//! `assets/charts.css` (the page's CSP allows no inline style).

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::bgp::timeline::civil;
use maud::{html, Markup};

/// The label text made safe for XML 1.0: C0 control characters other than
/// tab, newline and carriage return (forbidden even as character
/// references) and the non-characters U+FFFE/U+FFFF become U+FFFD.
/// Escaping itself is maud's job.
pub fn clean(s: &str) -> Cow<'_, str> {
    fn bad(c: char) -> bool {
        (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }
    if s.chars().any(bad) {
        Cow::Owned(
            s.chars()
                .map(|c| if bad(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// `s` cleaned and cut to at most `max` characters (an ellipsis marks the
/// cut), for labels whose full text goes into a `<title>`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let s = clean(s);
    if s.chars().count() <= max {
        return s.into_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The class of each palette slot, in order (`assets/charts.css`).
const SLOTS: [&str; 8] = [
    "up-0", "up-1", "up-2", "up-3", "up-4", "up-5", "up-6", "up-7",
];

/// Colour classes, consistent across the page: built from the upstream
/// names shown, in a stable order.
#[derive(Debug, Clone, Default)]
pub struct Palette {
    /// The names with a slot of their own, sorted (at most 8).
    named: Vec<String>,
}

impl Palette {
    /// Dedups and sorts `names`; "unknown" always gets `up-unknown`, the
    /// first 8 others `up-0`..`up-7`, any further ones `up-other`.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut named: Vec<String> = names
            .into_iter()
            .filter(|n| *n != "unknown")
            .map(str::to_owned)
            .collect();
        named.sort();
        named.dedup();
        named.truncate(SLOTS.len());
        Palette { named }
    }

    /// The colour class of `name`.
    pub fn class(&self, name: &str) -> &'static str {
        if name == "unknown" {
            return "up-unknown";
        }
        match self.named.binary_search_by(|n| n.as_str().cmp(name)) {
            Ok(i) => SLOTS[i],
            Err(_) => "up-other",
        }
    }
}

/// A step series: the share (0..=1) of one upstream, holding from each
/// point until the next.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// (unix ms, share)
    pub points: Vec<(u64, f64)>,
}

/// A change event marked on the chart.
#[derive(Debug, Clone)]
pub struct Mark {
    pub at_ms: u64,
    pub label: String,
    pub href: String,
}

// Geometry of the viewBox (user units; the SVG scales to its container).
const W: f64 = 1000.0;
const H: f64 = 300.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;
const PW: f64 = W - LEFT - RIGHT;
const PH: f64 = H - TOP - BOTTOM;
/// At most this many marks are drawn; the rest are counted.
pub const MAX_MARKS: usize = 500;

/// A number for an SVG attribute: one decimal, no trailing ".0".
pub(crate) fn num(v: f64) -> String {
    let v = if v.is_finite() {
        (v * 10.0).round() / 10.0
    } else {
        0.0
    };
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// One drawn step: from `x` (user units) until the next step's `x`, with
/// each series' share.
#[derive(Debug)]
struct Step {
    col: i64,
    x: f64,
    vals: Vec<f64>,
}

/// The steps of all series over [from, until], merged to at most one per
/// pixel column (the state at the column's end wins) and without repeats.
fn steps(series: &[Series], from: u64, until: u64) -> Vec<Step> {
    let span = (until - from) as f64;
    let x_of = |t: u64| LEFT + (t - from) as f64 / span * PW;
    let mut events: Vec<(u64, usize, f64)> = series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.points.iter().map(move |&(t, v)| (t, i, v)))
        .filter(|&(t, _, _)| t < until)
        .collect();
    events.sort_by_key(|&(t, _, _)| t); // stable: a series' later point wins
    let mut cur = vec![0.0; series.len()];
    let start = events.partition_point(|&(t, _, _)| t <= from);
    for &(_, i, v) in &events[..start] {
        cur[i] = v;
    }
    let mut out = vec![Step {
        col: 0,
        x: LEFT,
        vals: cur.clone(),
    }];
    for &(t, i, v) in &events[start..] {
        let x = x_of(t);
        let col = (x - LEFT).floor() as i64;
        let last = out.last_mut().expect("never empty");
        if col == last.col {
            last.vals[i] = v;
        } else {
            let mut vals = last.vals.clone();
            vals[i] = v;
            out.push(Step { col, x, vals });
        }
    }
    // Normalise: shares within 0..=1 and stacking to at most 100 %.
    for s in &mut out {
        for v in &mut s.vals {
            *v = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        let sum: f64 = s.vals.iter().sum();
        if sum > 1.0 {
            s.vals.iter_mut().for_each(|v| *v /= sum);
        }
    }
    out.dedup_by(|b, a| a.vals == b.vals);
    out
}

/// The `d` of series `k`'s area: one closed subpath per run of steps where
/// its share is above zero (so a gap, where all are zero, draws nothing).
fn area_path(steps: &[Step], k: usize) -> String {
    let y = |v: f64| TOP + (1.0 - v) * PH;
    let end_x = |i: usize| steps.get(i + 1).map_or(LEFT + PW, |s| s.x);
    let lo = |s: &Step| s.vals[..k].iter().sum::<f64>().min(1.0);
    let hi = |s: &Step| (lo(s) + s.vals[k]).min(1.0);
    let mut d = String::new();
    let mut i = 0;
    while i < steps.len() {
        if steps[i].vals[k] <= 0.0 {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < steps.len() && steps[j + 1].vals[k] > 0.0 {
            j += 1;
        }
        // Upper edge left to right, lower edge back.
        let _ = write!(d, "M{} {}", num(steps[i].x), num(y(lo(&steps[i]))));
        for (n, s) in steps[i..=j].iter().enumerate() {
            let _ = write!(d, "V{}H{}", num(y(hi(s))), num(end_x(i + n)));
        }
        for n in (i..=j).rev() {
            let _ = write!(d, "V{}H{}", num(y(lo(&steps[n]))), num(steps[n].x));
        }
        d.push('Z');
        i = j + 1;
    }
    d
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `t` (unix ms) in UTC as "2026-12-05 16:05".
pub fn utc(t: u64) -> String {
    let secs = t / 1000;
    let (y, m, d) = civil(secs / 86_400);
    let s = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", s / 3600, s % 3600 / 60)
}

/// The x-axis ticks of [from, until]: (unix ms, label) in UTC, at most
/// about 8, in minutes up to 2 h, hours up to 2 days, days beyond.
pub fn ticks(from: u64, until: u64) -> Vec<(u64, String)> {
    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    let span = until.saturating_sub(from);
    let (unit, choices): (u64, &[u64]) = if span <= 2 * HOUR {
        (MIN, &[1, 2, 5, 10, 15, 20, 30])
    } else if span <= 2 * DAY {
        (HOUR, &[1, 2, 3, 6, 12])
    } else {
        (DAY, &[1, 2, 7, 14, 28, 56, 91, 182, 364, 728, 1456])
    };
    let step = choices
        .iter()
        .map(|c| c * unit)
        .find(|s| span / s <= 8)
        .unwrap_or(choices[choices.len() - 1] * unit);
    let label = |t: u64| {
        let secs = t / 1000;
        let (_, m, d) = civil(secs / 86_400);
        let s = secs % 86_400;
        let mon = MONTHS[(m - 1) as usize];
        match unit {
            MIN => format!("{:02}:{:02}", s / 3600, s % 3600 / 60),
            HOUR => format!("{mon} {d:02} {:02}:00", s / 3600),
            _ => format!("{mon} {d:02}"),
        }
    };
    let first = from.div_ceil(step) * step;
    (0..)
        .map(|n| first + n * step)
        .take_while(|&t| t <= until)
        .map(|t| (t, label(t)))
        .collect()
}

/// A mark's link if it is relative or http(s); anything else (say a
/// `javascript:` URL) becomes "#".
fn safe_href(href: &str) -> Cow<'_, str> {
    let scheme_end = href.find([':', '/', '?', '#']);
    match scheme_end {
        Some(i) if href[i..].starts_with(':') => {
            let scheme = href[..i].to_ascii_lowercase();
            if scheme == "http" || scheme == "https" {
                clean(href)
            } else {
                Cow::Borrowed("#")
            }
        }
        _ => clean(href),
    }
}

/// The stacked step-area chart of `series` (shares 0..=1) over
/// [from_ms, until_ms], with `marks` as linked vertical lines, a legend
/// and `title` (also the SVG's accessible name).
pub fn shares_chart(
    series: &[Series],
    from_ms: u64,
    until_ms: u64,
    marks: &[Mark],
    palette: &Palette,
    title: &str,
) -> Markup {
    let title = clean(title);
    let valid = until_ms > from_ms;
    let steps = if valid {
        steps(series, from_ms, until_ms)
    } else {
        Vec::new()
    };
    let has_data = steps.iter().any(|s| s.vals.iter().any(|&v| v > 0.0));
    let x_of = |t: u64| LEFT + (t - from_ms) as f64 / (until_ms - from_ms) as f64 * PW;
    let ticks = if valid {
        ticks(from_ms, until_ms)
    } else {
        Vec::new()
    };
    let mut in_range: Vec<&Mark> = if valid {
        marks
            .iter()
            .filter(|m| (from_ms..=until_ms).contains(&m.at_ms))
            .collect()
    } else {
        Vec::new()
    };
    in_range.sort_by_key(|m| m.at_ms);
    let left_out = in_range.len().saturating_sub(MAX_MARKS);
    in_range.truncate(MAX_MARKS);
    let bottom = num(TOP + PH);
    html! {
        figure class="chart" {
            svg xmlns="http://www.w3.org/2000/svg" class="shares" viewBox=(format!("0 0 {W} {H}"))
                width="100%" role="img" aria-label=(title) {
                title { (title) }
                g class="grid" {
                    @for (v, label) in [(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")] {
                        @let y = num(TOP + (1.0 - v) * PH);
                        line class="grid-line" x1=(num(LEFT)) x2=(num(LEFT + PW)) y1=(y) y2=(y) {}
                        text class="axis-label y-label" x=(num(LEFT - 6.0)) y=(y) text-anchor="end"
                            dominant-baseline="middle" { (label) }
                    }
                }
                @if has_data {
                    g class="areas" {
                        @for (k, s) in series.iter().enumerate() {
                            @let d = area_path(&steps, k);
                            @if !d.is_empty() {
                                path class={ "area " (palette.class(&s.name)) } d=(d) {
                                    title { (clean(&s.name)) }
                                }
                            }
                        }
                    }
                } @else {
                    text class="chart-empty" x=(num(LEFT + PW / 2.0)) y=(num(TOP + PH / 2.0))
                        text-anchor="middle" dominant-baseline="middle" { "no data in this range" }
                }
                g class="axis x-axis" {
                    line class="axis-line" x1=(num(LEFT)) x2=(num(LEFT + PW)) y1=(bottom) y2=(bottom) {}
                    @for (t, label) in &ticks {
                        @let x = num(x_of(*t));
                        line class="tick" x1=(x) x2=(x) y1=(bottom) y2=(num(TOP + PH + 4.0)) {}
                        text class="axis-label x-label" x=(x) y=(num(H - 8.0)) text-anchor="middle" { (label) }
                    }
                }
                @if !in_range.is_empty() {
                    g class="marks" {
                        @for m in &in_range {
                            @let x = num(x_of(m.at_ms));
                            a href=(safe_href(&m.href)) {
                                title { (clean(&m.label)) " (" (utc(m.at_ms)) " UTC)" }
                                line class="mark-hit" x1=(x) x2=(x) y1=(num(TOP)) y2=(bottom) {}
                                line class="mark" x1=(x) x2=(x) y1=(num(TOP)) y2=(bottom) {}
                            }
                        }
                    }
                }
            }
            @if !series.is_empty() {
                ul class="legend" {
                    @for s in series {
                        li { span class={ "swatch " (palette.class(&s.name)) } {} " " (clean(&s.name)) }
                    }
                }
            }
            @if left_out > 0 {
                p class="chart-note" { (left_out) " more change marks in this range not shown" }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const HOSTILE: &str = "<script>alert(1)</script>\"'&\u{7}";

    /// A small XML well-formedness check: balanced tags, quoted
    /// attributes, entities only among the five predefined and numeric,
    /// no raw `<` or `&` in text, no forbidden control characters.
    pub(crate) fn check_xml(s: &str) {
        fn entity(rest: &str) -> usize {
            let end = rest.find(';').expect("unterminated entity");
            let name = &rest[1..end];
            let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                || name
                    .strip_prefix("#x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                || name
                    .strip_prefix('#')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            assert!(ok, "bad entity &{name};");
            end + 1
        }
        for c in s.chars() {
            assert!(
                c >= ' ' || matches!(c, '\t' | '\n' | '\r'),
                "control character {c:?}"
            );
        }
        // The page's CSP: no inline style nor script.
        assert!(!s.contains(" style="), "inline style");
        assert!(!s.contains("<script"), "inline script");
        let mut stack: Vec<&str> = Vec::new();
        let mut i = 0;
        let b = s.as_bytes();
        while i < b.len() {
            match b[i] {
                b'&' => i += entity(&s[i..]),
                b'<' => {
                    let close = b.get(i + 1) == Some(&b'/');
                    let start = if close { i + 2 } else { i + 1 };
                    let name_end = start
                        + s[start..]
                            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                            .expect("unterminated tag");
                    let name = &s[start..name_end];
                    assert!(!name.is_empty(), "empty tag name at {i}");
                    assert!(
                        name.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
                        "bad tag name {name:?}"
                    );
                    // Attributes: name="value" pairs, values without '<'.
                    let mut j = name_end;
                    let mut quote = false;
                    loop {
                        match b[j] {
                            b'"' => quote = !quote,
                            b'<' => panic!("'<' inside a tag at {j}"),
                            b'&' if quote => {
                                j += entity(&s[j..]);
                                continue;
                            }
                            b'>' if !quote => break,
                            _ => {}
                        }
                        j += 1;
                    }
                    let self_closing = b[j - 1] == b'/';
                    if close {
                        assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
                    } else if !self_closing {
                        stack.push(name);
                    }
                    i = j + 1;
                }
                b'>' => panic!("raw '>' in text at {i}"),
                _ => i += 1,
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    /// The `d` of the first `<path>` whose class contains `class`.
    fn path_d<'a>(s: &'a str, class: &str) -> &'a str {
        let at = s
            .find(&format!("class=\"area {class}\""))
            .unwrap_or_else(|| panic!("no area {class}"));
        let rest = &s[at..];
        let d = rest.find(" d=\"").expect("d") + 4;
        &rest[d..d + rest[d..].find('"').unwrap()]
    }

    /// The x coordinates of a `d` made of M/V/H commands.
    fn xs(d: &str) -> Vec<f64> {
        let mut out = Vec::new();
        let mut cmd = ' ';
        let mut tok = String::new();
        let mut args = Vec::new();
        let flush = |cmd: char, args: &mut Vec<f64>, out: &mut Vec<f64>| {
            match cmd {
                'M' => out.push(args[0]),
                'H' => out.push(args[0]),
                _ => {}
            }
            args.clear();
        };
        for c in d.chars() {
            if c.is_ascii_alphabetic() {
                if !tok.is_empty() {
                    args.push(tok.parse().unwrap());
                    tok.clear();
                }
                if cmd != ' ' {
                    flush(cmd, &mut args, &mut out);
                }
                cmd = c;
            } else if c == ' ' {
                if !tok.is_empty() {
                    args.push(tok.parse().unwrap());
                    tok.clear();
                }
            } else {
                tok.push(c);
            }
        }
        out
    }

    const T0: u64 = 1_796_428_800_000; // 2026-12-05 00:00 UTC
    const HOUR: u64 = 3_600_000;

    #[test]
    fn clean_replaces_controls_only() {
        assert!(matches!(clean("a\tb\nc\rd é"), Cow::Borrowed(_)));
        assert_eq!(
            clean("a\u{0}b\u{7}c\u{1f}d\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
    }

    #[test]
    fn stylesheet_has_every_class_drawn() {
        let css = include_str!("assets/charts.css");
        let mut classes: Vec<String> = SLOTS.iter().map(|s| (*s).to_owned()).collect();
        classes.extend(["up-other".into(), "up-unknown".into()]);
        for c in &classes {
            assert!(css.contains(&format!(".{c} {{")), "{c}");
            assert!(css.contains(&format!(".swatch.{c} {{")), "swatch {c}");
        }
        for c in [
            ".area",
            ".grid-line",
            ".axis-label",
            ".mark ",
            ".mark-hit",
            ".edge ",
            ".node > rect",
            ".node.upstream",
            ".legend",
            ".chart-empty",
            ".graph-empty",
        ] {
            assert!(css.contains(c), "{c}");
        }
        let dark = &css[css
            .find("@media (prefers-color-scheme: dark)")
            .expect("dark")..];
        assert!(dark.contains("--up-7: #D9D9D9"));
        for hue in [
            "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000",
        ] {
            assert!(css.contains(hue), "{hue}");
        }
    }

    #[test]
    fn palette_is_stable_and_bounded() {
        let p = Palette::new(["transtelecom", "unknown", "china-unicom", "transtelecom"]);
        assert_eq!(p.class("china-unicom"), "up-0");
        assert_eq!(p.class("transtelecom"), "up-1");
        assert_eq!(p.class("unknown"), "up-unknown");
        assert_eq!(p.class("other"), "up-other");
        let names: Vec<String> = (0..12).map(|i| format!("n{i:02}")).collect();
        let p = Palette::new(names.iter().map(String::as_str).rev());
        assert_eq!(p.class("n00"), "up-0");
        assert_eq!(p.class("n07"), "up-7");
        assert_eq!(p.class("n08"), "up-other");
    }

    #[test]
    fn switch_is_drawn_at_the_right_x() {
        // china-unicom all along until the middle, then transtelecom.
        let from = T0;
        let until = T0 + 2 * HOUR;
        let series = [
            Series {
                name: "china-unicom".into(),
                points: vec![(T0 - HOUR, 1.0), (T0 + HOUR, 0.0)],
            },
            Series {
                name: "transtelecom".into(),
                points: vec![(T0 - HOUR, 0.0), (T0 + HOUR, 1.0)],
            },
        ];
        let p = Palette::new(series.iter().map(|s| s.name.as_str()));
        let out = shares_chart(&series, from, until, &[], &p, "chart").into_string();
        check_xml(&out);
        let mid = LEFT + PW / 2.0;
        let cu = xs(path_d(&out, "up-0"));
        let tt = xs(path_d(&out, "up-1"));
        // China Unicom from the left edge (the value before `from`) to the switch.
        assert_eq!(cu.iter().cloned().fold(f64::MAX, f64::min), LEFT);
        assert_eq!(cu.iter().cloned().fold(f64::MIN, f64::max), mid);
        // TransTeleCom from the switch to the right edge.
        assert_eq!(tt.iter().cloned().fold(f64::MAX, f64::min), mid);
        assert_eq!(tt.iter().cloned().fold(f64::MIN, f64::max), LEFT + PW);
        assert_eq!(
            path_d(&out, "up-0"),
            format!("M48 272V10H{}V272H48Z", num(mid))
        );
        assert!(out.contains("<title>china-unicom</title>"));
        assert!(out.contains("class=\"swatch up-1\""));
        assert!(out.contains("role=\"img\""));
        assert!(out.contains("aria-label=\"chart\""));
        assert!(!out.contains("no data"));
    }

    #[test]
    fn gaps_draw_no_area() {
        // Data for the first quarter, nothing for the middle half, data again.
        let until = T0 + 4 * HOUR;
        let series = [Series {
            name: "china-unicom".into(),
            points: vec![(T0, 1.0), (T0 + HOUR, 0.0), (T0 + 3 * HOUR, 0.5)],
        }];
        let p = Palette::new(["china-unicom"]);
        let out = shares_chart(&series, T0, until, &[], &p, "t").into_string();
        check_xml(&out);
        let d = path_d(&out, "up-0");
        assert_eq!(d.matches('M').count(), 2, "two separate areas: {d}");
        let gap = (LEFT + PW / 4.0)..(LEFT + 3.0 * PW / 4.0);
        for x in xs(d) {
            assert!(!(x > gap.start && x < gap.end), "x {x} inside the gap: {d}");
        }
        // Half share: the second area goes from the middle of the plot down.
        let x3 = num(LEFT + 3.0 * PW / 4.0);
        assert!(d.ends_with(&format!(
            "M{x3} 272V{}H{}V272H{x3}Z",
            num(TOP + PH / 2.0),
            num(LEFT + PW)
        )));
        // All zero: the empty variant.
        let zero = [Series {
            name: "x".into(),
            points: vec![(T0, 0.0)],
        }];
        let out = shares_chart(&zero, T0, until, &[], &p, "t").into_string();
        check_xml(&out);
        assert!(out.contains("no data in this range"));
        assert!(!out.contains("<path"));
        let out = shares_chart(&[], T0, until, &[], &p, "t").into_string();
        assert!(out.contains("no data in this range"));
        // A point after the range is ignored, one before it holds.
        let late = [Series {
            name: "x".into(),
            points: vec![(until + 1, 1.0)],
        }];
        let out = shares_chart(&late, T0, until, &[], &p, "t").into_string();
        assert!(out.contains("no data in this range"));
    }

    #[test]
    fn marks_link_escaped_and_are_bounded() {
        let series = [Series {
            name: HOSTILE.into(),
            points: vec![(T0, 1.0)],
        }];
        let p = Palette::new([HOSTILE]);
        let marks = [
            Mark {
                at_ms: T0 + HOUR / 2,
                label: HOSTILE.into(),
                href: "/events/1?a=\"><script>&b".into(),
            },
            Mark {
                at_ms: T0 + HOUR / 4,
                label: "x".into(),
                href: "JavaScript:alert(1)".into(),
            },
            Mark {
                at_ms: T0 + 2 * HOUR,
                label: "outside".into(),
                href: "/events/3".into(),
            },
        ];
        let out = shares_chart(&series, T0, T0 + HOUR, &marks, &p, HOSTILE).into_string();
        check_xml(&out);
        assert!(!out.contains("<script"));
        assert!(!out.contains('\u{7}'));
        assert!(out.contains("href=\"/events/1?a=&quot;&gt;&lt;script&gt;&amp;b\""));
        assert!(out.contains("href=\"#\""));
        assert!(!out.contains("outside"));
        assert!(out.contains(
            "<title>&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;\u{FFFD} (2026-12-05 00:30 UTC)</title>"
        ));
        // The mark line sits at the middle of the range.
        assert!(out.contains(&format!("x1=\"{}\"", num(LEFT + PW / 2.0))));
        assert_eq!(out.matches("<a ").count(), 2);

        let many: Vec<Mark> = (0..1234)
            .map(|i| Mark {
                at_ms: T0 + i,
                label: "m".into(),
                href: "/e".into(),
            })
            .collect();
        let out = shares_chart(&series, T0, T0 + HOUR, &many, &p, "t").into_string();
        check_xml(&out);
        assert_eq!(out.matches("<a ").count(), MAX_MARKS);
        assert!(out.contains("734 more change marks in this range not shown"));
    }

    #[test]
    fn ticks_follow_the_range() {
        let t = ticks(T0 + 16 * HOUR, T0 + 17 * HOUR);
        let labels: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            ["16:00", "16:10", "16:20", "16:30", "16:40", "16:50", "17:00"]
        );
        let t = ticks(T0 + 16 * HOUR + 60_000, T0 + 40 * HOUR + 60_000);
        let labels: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Dec 05 18:00",
                "Dec 05 21:00",
                "Dec 06 00:00",
                "Dec 06 03:00",
                "Dec 06 06:00",
                "Dec 06 09:00",
                "Dec 06 12:00",
                "Dec 06 15:00"
            ]
        );
        let t = ticks(T0 - 30 * 24 * HOUR, T0);
        let labels: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["Nov 05", "Nov 12", "Nov 19", "Nov 26", "Dec 03"]);
        assert!(t
            .iter()
            .all(|(ms, _)| (T0 - 30 * 24 * HOUR..=T0).contains(ms)));
        assert_eq!(utc(T0 + 16 * HOUR + 5 * 60_000), "2026-12-05 16:05");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00");
        // The chart draws them.
        let out = shares_chart(
            &[],
            T0 + 16 * HOUR,
            T0 + 17 * HOUR,
            &[],
            &Palette::default(),
            "t",
        )
        .into_string();
        assert!(out.contains(">16:10</text>"));
    }

    #[test]
    fn output_is_bounded_for_100k_points() {
        let series: Vec<Series> = (0..3)
            .map(|k| Series {
                name: format!("up{k}"),
                points: (0..100_000u64)
                    .map(|i| (T0 + i * 1000, ((i * 7 + k * 13) % 10) as f64 / 30.0))
                    .collect(),
            })
            .collect();
        let p = Palette::new(series.iter().map(|s| s.name.as_str()));
        let out = shares_chart(&series, T0, T0 + 100_000_000, &[], &p, "t").into_string();
        check_xml(&out);
        for (k, slot) in SLOTS.iter().enumerate().take(3) {
            let d = path_d(&out, slot);
            let commands = d.chars().filter(|c| c.is_ascii_alphabetic()).count();
            assert!(commands <= 2 * 2000, "series {k}: {commands} commands");
        }
        assert!(out.len() < 200_000, "{} bytes", out.len());
    }
}
