//! The paths graph (inline SVG).
//!
//! [`paths_graph`] draws the latest AS-level path of every (vantage point,
//! /24) pair as a layered left-to-right graph: vantage points, the ASes
//! crossed, the /24s. Labels (agent names, AS organisations) are
//! attacker-controlled: they go through [`clean`] and maud's escaping
//! only; colours come from classes (`assets/charts.css`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use maud::{html, Markup};

use super::chart::{clean, num, truncate, Palette};

/// One AS on a path: consecutive hops in the same AS, collapsed.
#[derive(Debug, Clone, PartialEq)]
pub struct AsHop {
    /// `None` with `org: None`: hops not attributed to any AS.
    pub asn: Option<u32>,
    pub org: Option<String>,
    pub first_ttl: u8,
    pub last_ttl: u8,
    pub rtt_ms: Option<f64>,
}

/// One (vantage point, /24) path from the latest trace.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphPath {
    pub agent: String,
    pub prefix: String,
    pub upstream: Option<String>,
    pub hops: Vec<AsHop>,
    pub reached: bool,
    pub dest_ttl: Option<u8>,
    pub dest_rtt_ms: Option<f64>,
}

/// At most this many vantage points get a node of their own; the others
/// share one "+N more vantage points" node.
pub const MAX_VPS: usize = 60;
/// Node labels are cut to this many characters (the title has the rest).
const LABEL_CHARS: usize = 24;
/// A tooltip lists at most this many paths.
const TOOLTIP_PATHS: usize = 12;

// Geometry (user units).
const MARGIN: f64 = 10.0;
const COL_W: f64 = 210.0;
const NODE_W: f64 = 170.0;
const NODE_H: f64 = 22.0;
const ROW_H: f64 = 30.0;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Vp(usize),
    MoreVps,
    As(u32),
    Org(String),
    Pfx(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Vp,
    As,
    Pfx,
}

#[derive(Debug)]
struct Node {
    key: Key,
    kind: Kind,
    /// The agents of a vantage-point node (several for the merged one).
    agents: BTreeSet<String>,
    asn: Option<u32>,
    org: Option<String>,
    /// Indices of the paths through this node, ascending, no repeats.
    paths: Vec<usize>,
    ttl: Option<(u8, u8)>,
    rtts: Vec<f64>,
    upstream: Option<&'static str>,
    layer: usize,
    /// Row (may be fractional: layers are centred).
    row: f64,
}

impl Node {
    fn new(key: Key, kind: Kind) -> Self {
        Node {
            key,
            kind,
            agents: BTreeSet::new(),
            asn: None,
            org: None,
            paths: Vec::new(),
            ttl: None,
            rtts: Vec::new(),
            upstream: None,
            layer: 0,
            row: 0.0,
        }
    }

    /// The stable id for `data-node`.
    fn id(&self, org_ids: &HashMap<String, usize>) -> String {
        match &self.key {
            Key::Vp(i) => format!("vp-{i}"),
            Key::MoreVps => "vp-more".to_owned(),
            Key::As(asn) => format!("as-{asn}"),
            Key::Org(org) => format!("org-{}", org_ids[org]),
            Key::Pfx(p) => format!("pfx-{}", clean(p)),
        }
    }

    fn full_label(&self) -> String {
        match &self.key {
            Key::MoreVps => format!("+{} more vantage points", self.agents.len()),
            Key::Vp(_) => self.agents.iter().next().cloned().unwrap_or_default(),
            Key::As(asn) => match &self.org {
                Some(org) => format!("AS{asn} {org}"),
                None => format!("AS{asn}"),
            },
            Key::Org(org) | Key::Pfx(org) => org.clone(),
        }
    }
}

/// The median of the finite values of `v`.
fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// Layer of each node: the longest distance from a vantage point (cycles,
/// from paths that disagree, are broken at the node with the fewest
/// unseen predecessors); the /24s all in the last layer.
fn layers(nodes: &mut [Node], preds: &[Vec<usize>], succs: &[Vec<usize>]) -> usize {
    let n = nodes.len();
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut queue: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).rev().collect();
    let mut left = n;
    while left > 0 {
        while let Some(u) = queue.pop() {
            if done[u] {
                continue;
            }
            done[u] = true;
            left -= 1;
            for &v in &succs[u] {
                if done[v] {
                    continue;
                }
                nodes[v].layer = nodes[v].layer.max(nodes[u].layer + 1);
                indeg[v] -= 1;
                if indeg[v] == 0 {
                    queue.push(v);
                }
            }
        }
        if let Some(v) = (0..n).filter(|&v| !done[v]).min_by_key(|&v| (indeg[v], v)) {
            indeg[v] = 0;
            queue.push(v);
        }
    }
    let mut last = 0;
    for node in nodes.iter_mut() {
        match node.kind {
            Kind::Vp => node.layer = 0,
            Kind::As => node.layer = node.layer.max(1),
            Kind::Pfx => {}
        }
        if node.kind != Kind::Pfx {
            last = last.max(node.layer);
        }
    }
    for node in nodes.iter_mut().filter(|n| n.kind == Kind::Pfx) {
        node.layer = last + 1;
    }
    last + 1
}

/// Orders the nodes within each layer by the barycenter of their
/// neighbours (down, up, down sweeps) and centres the layers vertically;
/// returns the number of rows of the tallest layer.
fn order(nodes: &mut [Node], preds: &[Vec<usize>], succs: &[Vec<usize>], last: usize) -> usize {
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); last + 1];
    for (i, n) in nodes.iter().enumerate() {
        cols[n.layer].push(i);
    }
    let rows = cols.iter().map(Vec::len).max().unwrap_or(0);
    let place = |nodes: &mut [Node], col: &[usize]| {
        let off = (rows - col.len()) as f64 / 2.0;
        for (r, &v) in col.iter().enumerate() {
            nodes[v].row = off + r as f64;
        }
    };
    for col in &cols {
        place(nodes, col);
    }
    let sweep = |nodes: &mut [Node], col: &mut Vec<usize>, adj: &[Vec<usize>]| {
        let bary: HashMap<usize, f64> = col
            .iter()
            .map(|&v| {
                let ns = &adj[v];
                let b = if ns.is_empty() {
                    nodes[v].row
                } else {
                    ns.iter().map(|&u| nodes[u].row).sum::<f64>() / ns.len() as f64
                };
                (v, b)
            })
            .collect();
        col.sort_by(|a, b| bary[a].total_cmp(&bary[b]));
        place(nodes, col);
    };
    for round in 0..3 {
        if round % 2 == 0 {
            for col in cols.iter_mut().skip(1) {
                sweep(nodes, col, preds);
            }
        } else {
            for col in cols[..last].iter_mut().rev() {
                sweep(nodes, col, succs);
            }
        }
    }
    rows
}

/// The layered graph of `paths`: vantage points on the left, the ASes
/// crossed, the /24s on the right; the upstream AS of each path in its
/// palette colour.
pub fn paths_graph(paths: &[GraphPath], palette: &Palette) -> Markup {
    if paths.is_empty() {
        return html! { p class="graph-empty" { "no traces yet" } };
    }
    let agents: BTreeSet<&str> = paths.iter().map(|p| p.agent.as_str()).collect();
    let vp_index: HashMap<&str, usize> = agents.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let mut nodes: Vec<Node> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut node = |nodes: &mut Vec<Node>, key: Key, kind: Kind| -> usize {
        *index.entry(key.clone()).or_insert_with(|| {
            nodes.push(Node::new(key, kind));
            nodes.len() - 1
        })
    };
    // The vantage points first, in name order: the first ordering sweep
    // starts from it.
    for i in 0..agents.len().min(MAX_VPS) {
        node(&mut nodes, Key::Vp(i), Kind::Vp);
    }
    if agents.len() > MAX_VPS {
        node(&mut nodes, Key::MoreVps, Kind::Vp);
    }
    // Edge (from, to) → paths along it.
    let mut edges: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (pi, p) in paths.iter().enumerate() {
        let i = vp_index[p.agent.as_str()];
        let key = if i < MAX_VPS {
            Key::Vp(i)
        } else {
            Key::MoreVps
        };
        let vp = node(&mut nodes, key, Kind::Vp);
        let mut seq = vec![vp];
        for h in &p.hops {
            let key = match (h.asn, &h.org) {
                (Some(asn), _) => Key::As(asn),
                (None, Some(org)) => Key::Org(org.clone()),
                (None, None) => continue,
            };
            let v = node(&mut nodes, key, Kind::As);
            let n = &mut nodes[v];
            n.asn = h.asn;
            if n.org.is_none() {
                n.org.clone_from(&h.org);
            }
            let (lo, hi) = (h.first_ttl.min(h.last_ttl), h.first_ttl.max(h.last_ttl));
            n.ttl = Some(n.ttl.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            n.rtts.extend(h.rtt_ms);
            if let (Some(up), Some(org)) = (&p.upstream, &h.org) {
                if up.eq_ignore_ascii_case(org) {
                    n.upstream = Some(palette.class(up));
                }
            }
            if seq.last() != Some(&v) {
                seq.push(v);
            }
        }
        let pfx = node(&mut nodes, Key::Pfx(p.prefix.clone()), Kind::Pfx);
        nodes[pfx].rtts.extend(p.dest_rtt_ms);
        if seq.last() != Some(&pfx) {
            seq.push(pfx);
        }
        nodes[vp].agents.insert(p.agent.clone());
        let mut seen = BTreeSet::new();
        for &v in &seq {
            if nodes[v].paths.last() != Some(&pi) {
                nodes[v].paths.push(pi);
            }
        }
        for w in seq.windows(2) {
            if w[0] != w[1] && seen.insert((w[0], w[1])) {
                *edges.entry((w[0], w[1])).or_default() += 1;
            }
        }
    }
    let n = nodes.len();
    let mut preds = vec![Vec::new(); n];
    let mut succs = vec![Vec::new(); n];
    for &(a, b) in edges.keys() {
        succs[a].push(b);
        preds[b].push(a);
    }
    let last = layers(&mut nodes, &preds, &succs);
    let rows = order(&mut nodes, &preds, &succs, last);
    let mut orgs: Vec<&str> = nodes
        .iter()
        .filter_map(|n| match &n.key {
            Key::Org(o) => Some(o.as_str()),
            _ => None,
        })
        .collect();
    orgs.sort_unstable();
    let org_ids: HashMap<String, usize> = orgs
        .iter()
        .enumerate()
        .map(|(i, o)| ((*o).to_owned(), i))
        .collect();
    let ids: Vec<String> = nodes.iter().map(|n| n.id(&org_ids)).collect();
    let width = 2.0 * MARGIN + last as f64 * COL_W + NODE_W;
    let height = 2.0 * MARGIN + rows as f64 * ROW_H;
    let x_of = |v: usize| MARGIN + nodes[v].layer as f64 * COL_W;
    let cy_of = |v: usize| MARGIN + nodes[v].row * ROW_H + NODE_H / 2.0;
    html! {
        figure class="graph" {
            svg xmlns="http://www.w3.org/2000/svg" class="paths-graph"
                viewBox=(format!("0 0 {} {}", num(width), num(height)))
                width=(num(width)) height=(num(height)) role="img"
                aria-label="AS-level paths from the vantage points to the /24s" {
                title { "AS-level paths from the vantage points to the /24s" }
                g class="edges" {
                    @for (&(a, b), &count) in &edges {
                        @let (x1, y1, x2, y2) = (x_of(a) + NODE_W, cy_of(a), x_of(b), cy_of(b));
                        @let bend = ((x2 - x1) / 2.0).max(40.0);
                        @let d = format!("M{} {}C{} {} {} {} {} {}", num(x1), num(y1),
                            num(x1 + bend), num(y1), num(x2 - bend), num(y2), num(x2), num(y2));
                        path class="edge" d=(d) data-from=(ids[a]) data-to=(ids[b])
                            stroke-width=(num((count as f64).sqrt().clamp(1.0, 8.0))) {
                            title {
                                (count) @if count == 1 { " path: " } @else { " paths: " }
                                (clean(&nodes[a].full_label())) " → " (clean(&nodes[b].full_label()))
                            }
                        }
                    }
                }
                g class="nodes" {
                    @for (v, node) in nodes.iter().enumerate() {
                        @let kind = match node.kind { Kind::Vp => "vp", Kind::As => "as", Kind::Pfx => "pfx" };
                        @let x = x_of(v);
                        @let y = MARGIN + node.row * ROW_H;
                        @let class = match node.upstream {
                            Some(up) => format!("node {kind} upstream {up}"),
                            None => format!("node {kind}"),
                        };
                        g class=(class)
                            data-node=(ids[v]) data-layer=(node.layer) {
                            title { (clean(&tooltip(node, paths))) }
                            rect x=(num(x)) y=(num(y)) width=(num(NODE_W)) height=(num(NODE_H)) rx="3" {}
                            text x=(num(x + 6.0)) y=(num(y + 15.0)) { (truncate(&node.full_label(), LABEL_CHARS)) }
                        }
                    }
                }
            }
        }
    }
}

/// The tooltip of a node (plain text; escaped by the caller).
fn tooltip(node: &Node, paths: &[GraphPath]) -> String {
    let mut t = node.full_label();
    let through = |t: &mut String| {
        let _ = write!(
            t,
            "\n{} {} through it:",
            node.paths.len(),
            if node.paths.len() == 1 {
                "path"
            } else {
                "paths"
            }
        );
        for &pi in node.paths.iter().take(TOOLTIP_PATHS) {
            let _ = write!(t, "\n  {} → {}", paths[pi].agent, paths[pi].prefix);
        }
        if node.paths.len() > TOOLTIP_PATHS {
            let _ = write!(t, "\n  … and {} more", node.paths.len() - TOOLTIP_PATHS);
        }
    };
    match node.kind {
        Kind::Vp => {
            if node.key == Key::MoreVps {
                for a in node.agents.iter().take(TOOLTIP_PATHS) {
                    let _ = write!(t, "\n  {a}");
                }
                if node.agents.len() > TOOLTIP_PATHS {
                    let _ = write!(t, "\n  … and {} more", node.agents.len() - TOOLTIP_PATHS);
                }
            }
            let reached = node.paths.iter().filter(|&&pi| paths[pi].reached).count();
            let _ = write!(
                t,
                "\n{} paths traced, {reached} reached their /24",
                node.paths.len()
            );
        }
        Kind::As => {
            if let (Some(asn), Some(org)) = (node.asn, &node.org) {
                t = format!("AS{asn}\n{org}");
            }
            through(&mut t);
            if let Some((lo, hi)) = node.ttl {
                let _ = write!(t, "\nTTL {lo}–{hi}");
            }
            let min = node
                .rtts
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .reduce(f64::min);
            if let (Some(min), Some(med)) = (min, median(&node.rtts)) {
                let _ = write!(t, "\nRTT min {}, median {}", ms(min), ms(med));
            }
        }
        Kind::Pfx => {
            let of = |pred: &dyn Fn(&GraphPath) -> bool| -> usize {
                node.paths
                    .iter()
                    .map(|&pi| &paths[pi])
                    .filter(|p| pred(p))
                    .map(|p| p.agent.as_str())
                    .collect::<BTreeSet<_>>()
                    .len()
            };
            let _ = write!(
                t,
                "\nreached from {} of {} vantage points",
                of(&|p| p.reached),
                of(&|_| true)
            );
            let ttls: Vec<f64> = node
                .paths
                .iter()
                .filter_map(|&pi| paths[pi].dest_ttl.map(f64::from))
                .collect();
            if let Some(m) = median(&ttls) {
                let _ = write!(t, "\ndestination at hop {m} (median)");
            }
            if let Some(m) = median(&node.rtts) {
                let _ = write!(t, "\nRTT median {}", ms(m));
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::super::chart::tests::{check_xml, HOSTILE};
    use super::*;

    fn hop(asn: Option<u32>, org: Option<&str>, ttl: (u8, u8), rtt: Option<f64>) -> AsHop {
        AsHop {
            asn,
            org: org.map(str::to_owned),
            first_ttl: ttl.0,
            last_ttl: ttl.1,
            rtt_ms: rtt,
        }
    }

    fn path(agent: &str, prefix: &str, hops: Vec<AsHop>) -> GraphPath {
        GraphPath {
            agent: agent.into(),
            prefix: prefix.into(),
            upstream: Some("china-unicom".into()),
            hops,
            reached: true,
            dest_ttl: Some(14),
            dest_rtt_ms: Some(230.0),
        }
    }

    /// The opening tag of the element with `data-node="id"`.
    fn node_tag<'a>(s: &'a str, id: &str) -> &'a str {
        let at = s
            .find(&format!("data-node=\"{id}\""))
            .unwrap_or_else(|| panic!("no node {id}"));
        let start = s[..at].rfind('<').unwrap();
        &s[start..at + s[at..].find('>').unwrap()]
    }

    /// The element (up to its closing `</g>`) of node `id`.
    fn node_elem<'a>(s: &'a str, id: &str) -> &'a str {
        let tag = node_tag(s, id);
        let start = s.find(tag).unwrap();
        &s[start..start + s[start..].find("</g>").unwrap()]
    }

    fn fixture() -> Vec<GraphPath> {
        let unicom = || hop(Some(4837), Some("china-unicom"), (5, 9), Some(40.0));
        let kp = || hop(Some(131279), Some("STAR-KP"), (12, 13), Some(230.0));
        vec![
            path(
                "vp-a",
                "198.18.177.0/24",
                vec![
                    hop(Some(1), Some("ONE"), (1, 3), Some(1.0)),
                    hop(None, None, (4, 4), None),
                    unicom(),
                    kp(),
                ],
            ),
            path(
                "vp-b",
                "198.18.177.0/24",
                vec![hop(Some(2), None, (1, 2), Some(2.0)), unicom(), kp()],
            ),
            path(
                "vp-a",
                "198.18.178.0/24",
                vec![hop(Some(1), Some("ONE"), (1, 3), Some(3.0)), unicom(), kp()],
            ),
        ]
    }

    #[test]
    fn layers_edges_and_upstream() {
        let p = Palette::new(["china-unicom", "transtelecom"]);
        let out = paths_graph(&fixture(), &p).into_string();
        check_xml(&out);
        for (id, layer) in [
            ("vp-0", 0),
            ("vp-1", 0),
            ("as-1", 1),
            ("as-2", 1),
            ("as-4837", 2),
            ("as-131279", 3),
            ("pfx-198.18.177.0/24", 4),
            ("pfx-198.18.178.0/24", 4),
        ] {
            let tag = node_tag(&out, id);
            assert!(tag.contains(&format!("data-layer=\"{layer}\"")), "{tag}");
            let x = num(MARGIN + layer as f64 * COL_W);
            assert!(
                node_elem(&out, id).contains(&format!("<rect x=\"{x}\"")),
                "{id}"
            );
        }
        // One edge per node pair, its width and title from the path count.
        let edge = |from: &str, to: &str| {
            let key = format!("data-from=\"{from}\" data-to=\"{to}\"");
            assert_eq!(out.matches(&key).count(), 1, "{key}");
            let at = out.find(&key).unwrap();
            let end = at + out[at..].find("</path>").unwrap();
            &out[at..end]
        };
        let e = edge("as-4837", "as-131279");
        assert!(e.contains("stroke-width=\"1.7\""), "{e}");
        assert!(e.contains("<title>3 paths: AS4837 china-unicom → AS131279 STAR-KP</title>"));
        assert!(edge("vp-0", "as-1").contains("<title>2 paths: "));
        assert!(edge("as-1", "as-4837").contains("<title>2 paths: "));
        assert!(edge("as-2", "as-4837").contains("<title>1 path: "));
        assert!(edge("as-131279", "pfx-198.18.178.0/24").contains("<title>1 path: "));
        // The unattributed hop is no node; the edge spans it.
        assert_eq!(out.matches("data-node=").count(), 8);
        assert_eq!(out.matches("class=\"edge\"").count(), 7);
        // The upstream node in its palette class, the others not.
        assert!(node_tag(&out, "as-4837").contains("class=\"node as upstream up-0\""));
        assert!(node_tag(&out, "as-1").contains("class=\"node as\""));
        // Tooltips.
        let unicom = node_elem(&out, "as-4837");
        assert!(
            unicom.contains("AS4837\nchina-unicom\n3 paths through it:"),
            "{unicom}"
        );
        assert!(unicom.contains("vp-a → 198.18.178.0/24"));
        assert!(unicom.contains("TTL 5–9\nRTT min 40.0 ms, median 40.0 ms"));
        let one = node_elem(&out, "as-1");
        assert!(one.contains("RTT min 1.0 ms, median 2.0 ms"), "{one}");
        let pfx = node_elem(&out, "pfx-198.18.177.0/24");
        assert!(pfx.contains("reached from 2 of 2 vantage points"), "{pfx}");
        assert!(pfx.contains("destination at hop 14 (median)\nRTT median 230.0 ms"));
        // Crossing reduction: the /24s reached from vp-a only sit below or
        // above consistently; every row within the SVG.
        assert!(out.contains("viewBox=\"0 0 1030 80\""), "{}", &out[..300]);
    }

    /// The y of node `id`'s box.
    fn node_y(s: &str, id: &str) -> f64 {
        let e = node_elem(s, id);
        let at = e.find("<rect x=").unwrap();
        let y = at + e[at..].find(" y=\"").unwrap() + 4;
        e[y..y + e[y..].find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn ordering_removes_crossings() {
        // In input order the ASes would cross: b's AS first, a's second,
        // while a is above b.
        let paths = [
            path(
                "b",
                "198.18.1.0/24",
                vec![hop(Some(10), None, (1, 1), None)],
            ),
            path(
                "a",
                "198.18.2.0/24",
                vec![hop(Some(20), None, (1, 1), None)],
            ),
        ];
        let out = paths_graph(&paths, &Palette::default()).into_string();
        check_xml(&out);
        assert!(node_y(&out, "vp-0") < node_y(&out, "vp-1"));
        assert!(node_y(&out, "as-20") < node_y(&out, "as-10"));
        assert!(node_y(&out, "pfx-198.18.2.0/24") < node_y(&out, "pfx-198.18.1.0/24"));
        assert!(node_elem(&out, "vp-0").contains(">a</text>"));
        // Deterministic.
        assert_eq!(out, paths_graph(&paths, &Palette::default()).into_string());
    }

    #[test]
    fn many_vantage_points_are_merged() {
        let paths: Vec<GraphPath> = (0..200)
            .map(|i| {
                path(
                    &format!("agent-{i:03}"),
                    "198.18.177.0/24",
                    vec![hop(Some(4837), Some("china-unicom"), (3, 5), Some(50.0))],
                )
            })
            .collect();
        let out = paths_graph(&paths, &Palette::new(["china-unicom"])).into_string();
        check_xml(&out);
        assert_eq!(out.matches("class=\"node vp\"").count(), MAX_VPS + 1);
        assert!(node_tag(&out, "vp-59").contains("data-layer=\"0\""));
        assert!(!out.contains("data-node=\"vp-60\""));
        let more = node_elem(&out, "vp-more");
        assert!(more.contains(">+140 more vantage points</text>"), "{more}");
        assert!(more.contains("… and 128 more"));
        let e = out
            .find("data-from=\"vp-more\" data-to=\"as-4837\"")
            .unwrap();
        assert!(
            out[e..].starts_with("data-from=\"vp-more\" data-to=\"as-4837\" stroke-width=\"8\"")
        );
        assert!(node_elem(&out, "pfx-198.18.177.0/24").contains("reached from 200 of 200"));
    }

    #[test]
    fn hostile_labels_are_escaped() {
        let mut p = path(
            HOSTILE,
            "198.18.177.0/24",
            vec![
                hop(None, Some(HOSTILE), (1, 2), None),
                hop(Some(7), Some(HOSTILE), (3, 3), Some(f64::NAN)),
            ],
        );
        p.upstream = Some(HOSTILE.into());
        let out = paths_graph(&[p], &Palette::new([HOSTILE])).into_string();
        check_xml(&out);
        assert!(!out.contains("<script"));
        assert!(!out.contains('\u{7}'));
        assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;\u{FFFD}"));
        // Truncated label, full text in the title.
        let org = node_elem(&out, "org-0");
        assert!(
            org.contains(">&lt;script&gt;alert(1)&lt;/scrip…</text>"),
            "{org}"
        );
        assert!(node_tag(&out, "as-7").contains("upstream up-0"));
        // A NaN RTT is left out, not printed.
        assert!(!out.contains("NaN"));
    }

    #[test]
    fn empty_and_cycles() {
        let out = paths_graph(&[], &Palette::default()).into_string();
        assert_eq!(out, "<p class=\"graph-empty\">no traces yet</p>");
        // Two paths crossing the same ASes in opposite orders still draw.
        let a = || hop(Some(1), None, (1, 1), None);
        let b = || hop(Some(2), None, (2, 2), None);
        let paths = [
            path("x", "198.18.177.0/24", vec![a(), b()]),
            path("y", "198.18.177.0/24", vec![b(), a(), b()]),
        ];
        let out = paths_graph(&paths, &Palette::default()).into_string();
        check_xml(&out);
        assert!(node_tag(&out, "pfx-198.18.177.0/24").contains("data-layer=\"3\""));
        assert!(node_tag(&out, "as-1").contains("data-layer=\"1\""));
        assert!(node_tag(&out, "as-2").contains("data-layer=\"2\""));
    }
}
