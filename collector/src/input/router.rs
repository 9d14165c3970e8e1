//! Router CLIs: Cisco IOS / IOS-XE / IOS-XR, Huawei VRP and MikroTik
//! RouterOS `traceroute`.
//!
//! Cisco (IOS-XR adds a timestamp line and an `RP/0/RSP0/CPU0:router#`
//! prompt; Huawei's header is `traceroute to 8.8.8.8(8.8.8.8), max hops: 30
//! ,packet length: 40,press CTRL_C to break`):
//!
//! ```text
//! Tracing the route to one.one.one.one (1.1.1.1)
//!   7 core1.example (213.121.192.22) [AS 2856] [MPLS: Label 16 Exp 0] 11 msec
//! ```
//!
//! `Tracing the route to NAME (ADDR)` / `... to ADDR` (or Huawei's header)
//! starts a trace with that target. A hop line is the hop number and, for
//! each probe, who answered (`ADDR` or `NAME (ADDR)`, repeated only when it
//! changes) and its RTT (`4 msec`, `2 ms`) or `*`; indented lines without a
//! number continue the hop above with more addresses (several probes per
//! hop, load balancing). `[AS 4837]` / `[AS4837]` is the AS number printed
//! for the address before it; `[MPLS: Label 16 Exp 0]` (Huawei glues
//! `[MPLS Label=1024 ...]` to the address) is ignored. Cisco's unreachable
//! codes are kept as printed (`!H`, `!N`, `!P`, `!U`, `!Q`; bare `H`, `N`,
//! ... from old releases get their `!`), except `!A` / `A`,
//! administratively prohibited, which is read as `!X` like traceroute's.
//! Hop 0 (some IOS releases print the router's own first hop as hop 0
//! before hop 1) is skipped silently.
//!
//! MikroTik RouterOS (`/tool traceroute 8.8.8.8`) prints a table, `#
//! ADDRESS LOSS SENT LAST AVG BEST WORST STD-DEV STATUS`, and reprints it
//! while it runs, so a paste often holds several copies separated by `--
//! [Q quit|D dump|C-z pause]`: the last copy with the most rows is read
//! (later copies are more complete; a copy cut short by the end of the
//! paste does not replace a full one). A row is `1 192.168.88.1 0% 3
//! 0.4ms 0.4 0.3 0.5 0.1 <MPLS:L=...>`; a row without address (`3 100% 3
//! timeout`) is a silent hop and a row with a name instead of an address
//! (`use-dns=yes`, or an IPv6 address cut by the column) is hidden. The
//! target is the address on the command line. RouterOS 2.x-5.x's `ADDRESS
//! STATUS` table (`1 159.148.60.227 3ms 3ms 3ms`) is read the same way.
//!
//! Skipped silently: prompts and command lines, `Type escape sequence to
//! abort.`, `VRF info:`, `Translating "x"...domain server`, IOS-XR's
//! timestamp, MikroTik's `Columns:` line and footers, blank lines.
//! Anything else is skipped with a warning. An input with none of these
//! signs (no header, table, router command line or Cisco `msec`) is
//! refused: Huawei hop lines without their header look like Linux
//! traceroute's, and are left to that reader.
//!
//! BIRD looking glasses (bird-lg, bird-lg-go) run the node's own Linux
//! `traceroute` and show its output as is: that is read by the Linux
//! traceroute reader, not here. Juniper JunOS prints Linux-style
//! `traceroute to` output and is read there too.

use std::net::IpAddr;

use super::{
    empty_hop, parse_addr, parse_asn, push_addr, push_annotation, push_asn, push_name, Format, Read,
};
use crate::model::{Hop, InputError, Trace};

/// How sure this reader is that `text` is router output: Cisco's `Tracing
/// the route to` / `Type escape sequence to abort.`, Huawei's `traceroute
/// to X(X), max hops:` header and MikroTik's table header or command are
/// near certain.
pub(crate) fn sniff(text: &str) -> u8 {
    for line in text.lines().take(2000) {
        let t = line.trim();
        if t.starts_with("Tracing the route to ")
            || t == "Type escape sequence to abort."
            || huawei_header(t).is_some()
            || (t.contains("max hops:") && t.contains("press CTRL_C to break"))
            || mikrotik_header(t)
            || t.contains("/tool traceroute")
            || t.starts_with("-- [Q quit|")
        {
            return 90;
        }
    }
    0
}

/// Huawei's header: `traceroute to  8.8.8.8(8.8.8.8), max hops: 30
/// ,packet length: 40,press CTRL_C to break`; what follows `traceroute to`.
fn huawei_header(t: &str) -> Option<&str> {
    let rest = t.strip_prefix("traceroute to ")?;
    (t.contains("max hops:") || t.contains("press CTRL_C")).then_some(rest)
}

/// MikroTik's column header: `# ADDRESS LOSS SENT LAST AVG ...` (RouterOS
/// 6/7) or `ADDRESS STATUS` (2.x-5.x).
fn mikrotik_header(t: &str) -> bool {
    let words: Vec<&str> = t.split_whitespace().collect();
    words.contains(&"ADDRESS")
        && (words.contains(&"LOSS") || words.contains(&"STATUS"))
        && !words.contains(&"HOP")
}

/// The address a header or a command line names: in parentheses, or a
/// token that is an address (`address=8.8.8.8` too).
fn named_addr(t: &str) -> Option<IpAddr> {
    if let Some(open) = t.find('(') {
        let inner = t.get(open + 1..)?;
        if let Some(a) = inner.get(..inner.find(')')?).and_then(parse_addr) {
            return Some(a);
        }
    }
    t.split_whitespace().find_map(|w| {
        let w = w.strip_prefix("address=").unwrap_or(w);
        parse_addr(w.trim_end_matches([',', ')']).trim_start_matches('('))
    })
}

/// What kind of trace is being read.
enum Body {
    /// Cisco/Huawei hop lines, by TTL.
    Hops(Vec<Hop>),
    /// MikroTik: every copy of the table.
    Tables(Vec<Vec<Hop>>),
}

struct Current {
    trace: Trace,
    body: Body,
    /// Inside a MikroTik table (rows follow).
    in_table: bool,
}

impl Current {
    fn new(target: Option<IpAddr>, origin: String, body: Body) -> Self {
        Self {
            trace: Trace {
                target,
                origin,
                hops: Vec::new(),
            },
            body,
            in_table: false,
        }
    }

    fn has_hops(&self) -> bool {
        match &self.body {
            Body::Hops(h) => !h.is_empty(),
            Body::Tables(t) => t.iter().any(|t| !t.is_empty()),
        }
    }
}

fn finish(current: &mut Option<Current>, read: &mut Read) {
    let Some(mut c) = current.take() else {
        return;
    };
    c.trace.hops = match c.body {
        Body::Hops(h) => h,
        Body::Tables(tables) => {
            let most = tables.iter().map(Vec::len).max().unwrap_or(0);
            tables
                .into_iter()
                .rev()
                .find(|t| t.len() == most)
                .unwrap_or_default()
        }
    };
    read.traces.push(c.trace);
}

/// A prompt, a command line or a line the tools print that is not a hop.
fn is_noise(t: &str) -> bool {
    const FIXED: &[&str] = &[
        "Type escape sequence to abort.",
        "VRF info:",
        "Translating ",
        "Columns:",
        "-- [Q quit",
        "[Q quit|",
        "Tracing route over",
    ];
    if FIXED.iter().any(|f| t.starts_with(f)) {
        return true;
    }
    // A command line without prompt.
    if [
        "/tool traceroute",
        "tool traceroute",
        "traceroute ",
        "tracert ",
    ]
    .iter()
    .any(|c| t.starts_with(c))
        && !t.starts_with("traceroute to ")
    {
        return true;
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if first.bytes().all(|b| b.is_ascii_digit()) {
        // A hop line or a row, even when it ends with `<MPLS:...>`.
        return false;
    }
    // Prompts: `router#`, `RP/0/RSP0/CPU0:router#traceroute x`,
    // `<Huawei>tracert x`, `[admin@MikroTik] > /tool traceroute x`.
    if t.ends_with('#') || t.ends_with('>') || (t.starts_with('<') && t.contains('>')) {
        return true;
    }
    if let Some(i) = t.find(['#', '>']) {
        let command = t.get(i + 1..).unwrap_or("").trim_start();
        let command = command.trim_start_matches(['/', '>', ' ']);
        if command.starts_with("tool traceroute")
            || command.starts_with("traceroute")
            || command.starts_with("tracert")
            || command.starts_with("trace ")
        {
            return true;
        }
    }
    // IOS-XR: `Mon Sep 10 10:38:25.321 UTC`.
    matches!(first, "Mon" | "Tue" | "Wed" | "Thu" | "Fri" | "Sat" | "Sun") && t.contains(':')
}

/// Every trace in `text`, as the registry reads it.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::RouterCli);
    let lines: Vec<&str> = text.lines().collect();
    let mut current: Option<Current> = None;
    // The target of the last command line, for MikroTik.
    let mut command_target: Option<(IpAddr, usize)> = None;
    // Something only a router prints: a header, a table, a command line,
    // Cisco's `msec`. Without it, hop lines are Linux traceroute's.
    let mut evidence = false;
    let mut i = 0;
    while let Some(&raw) = lines.get(i) {
        let n = i + 1;
        i += 1;
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with("Tracing the route to ") {
            evidence = true;
            finish(&mut current, &mut read);
            let target = t.strip_prefix("Tracing the route to ").and_then(named_addr);
            current = Some(Current::new(
                target,
                format!("{name}:{n}"),
                Body::Hops(Vec::new()),
            ));
            continue;
        }
        let wrapped_huawei = t.starts_with("traceroute to ")
            && t.contains('(')
            && !t.contains(')')
            && lines.get(i).is_some_and(|l| l.contains("max hops:"));
        if let Some(rest) = huawei_header(t).or(wrapped_huawei.then_some(t)) {
            evidence = true;
            let rest = rest.strip_prefix("traceroute to ").unwrap_or(rest);
            let mut rest = rest.to_string();
            // A header cut by the terminal: `...(10.80.213.9` + `7), max hops`.
            if rest.contains('(') && !rest.contains(')') {
                if let Some(next) = lines.get(i) {
                    rest.push_str(next.trim());
                    i += 1;
                }
            }
            finish(&mut current, &mut read);
            current = Some(Current::new(
                named_addr(&rest),
                format!("{name}:{n}"),
                Body::Hops(Vec::new()),
            ));
            continue;
        }
        if mikrotik_header(t) {
            evidence = true;
            let same = current
                .as_ref()
                .is_some_and(|c| matches!(c.body, Body::Tables(_)));
            if !same {
                finish(&mut current, &mut read);
                let (target, origin) = match command_target {
                    Some((a, line)) => (Some(a), line),
                    None => (None, n),
                };
                current = Some(Current::new(
                    target,
                    format!("{name}:{origin}"),
                    Body::Tables(Vec::new()),
                ));
            }
            if let Some(c) = current.as_mut() {
                if let Body::Tables(tables) = &mut c.body {
                    tables.push(Vec::new());
                }
                c.in_table = true;
            }
            continue;
        }
        if is_noise(t) {
            evidence |= t.starts_with("Type escape sequence");
            if t.contains("traceroute") || t.contains("tracert") {
                evidence = true;
                // A new command: its trace starts here.
                command_target = named_addr_after_command(t).map(|a| (a, n));
                if current.as_ref().is_some_and(Current::has_hops) {
                    finish(&mut current, &mut read);
                }
            }
            if let Some(c) = current.as_mut() {
                c.in_table = false;
            }
            continue;
        }
        let first = t.split_whitespace().next().unwrap_or("");
        let numbered = !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit());
        if let Some(c) = current.as_mut().filter(|c| c.in_table) {
            if let Body::Tables(tables) = &mut c.body {
                if let Some(table) = tables.last_mut() {
                    let index = u8::try_from(table.len() + 1).unwrap_or(u8::MAX);
                    match mikrotik_row(t, index) {
                        Some(hop) => table.push(hop),
                        None => read.skip(
                            format!("{name}:{n}"),
                            format!("not a MikroTik traceroute row: {t:?}"),
                        ),
                    }
                }
            }
            continue;
        }
        if numbered {
            let Ok(ttl) = first.parse::<u8>() else {
                read.skip(
                    format!("{name}:{n}"),
                    format!("hop number {first} is outside 1..=255"),
                );
                continue;
            };
            if ttl == 0 {
                continue;
            }
            let follows_on = current.as_ref().is_some_and(|c| match &c.body {
                Body::Hops(h) => h.last().is_none_or(|l| l.ttl < ttl),
                Body::Tables(_) => false,
            });
            if !follows_on {
                finish(&mut current, &mut read);
                current = Some(Current::new(
                    None,
                    format!("{name}:{n}"),
                    Body::Hops(Vec::new()),
                ));
            }
            let tokens: Vec<&str> = t.split_whitespace().skip(1).collect();
            evidence |= tokens.contains(&"msec");
            let mut hop = empty_hop(ttl);
            let faults = hop_tokens(&mut hop, &tokens);
            for f in faults {
                read.skip(format!("{name}:{n}"), format!("hop {ttl}: {f}"));
            }
            if let Some(Body::Hops(h)) = current.as_mut().map(|c| &mut c.body) {
                h.push(hop);
            }
            continue;
        }
        // An indented continuation: more addresses for the hop above.
        let continues = raw.starts_with(char::is_whitespace)
            && (first == "*" || parse_addr(first).is_some() || t.contains(" ("));
        if let Some(Body::Hops(h)) = current.as_mut().map(|c| &mut c.body) {
            if let Some(hop) = h.last_mut().filter(|_| continues) {
                let tokens: Vec<&str> = t.split_whitespace().collect();
                let ttl = hop.ttl;
                for f in hop_tokens(hop, &tokens) {
                    read.skip(format!("{name}:{n}"), format!("hop {ttl}: {f}"));
                }
                continue;
            }
        }
        read.skip(
            format!("{name}:{n}"),
            format!("not a router traceroute line: {t:?}"),
        );
    }
    finish(&mut current, &mut read);
    if !evidence {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "not router output: no `Tracing the route to` (Cisco), `traceroute to ... \
                   max hops:` (Huawei), `# ADDRESS LOSS SENT` (MikroTik), router command line \
                   or `msec` RTT"
                .to_string(),
        });
    }
    if read.traces.is_empty() {
        return Err(read.skipped.first().cloned().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no router traceroute: no `Tracing the route to` (Cisco), `traceroute to \
                   ... max hops:` (Huawei) or `# ADDRESS LOSS SENT` (MikroTik) and no hop line"
                .to_string(),
        }));
    }
    Ok(read)
}

/// The target on a command line: `router#traceroute 8.8.8.8`, `/tool
/// traceroute address=8.8.8.8 count=3`.
fn named_addr_after_command(t: &str) -> Option<IpAddr> {
    let at = t.find("traceroute").or_else(|| t.find("tracert"))?;
    t.get(at..)?.split_whitespace().skip(1).find_map(|w| {
        let w = w.strip_prefix("address=").unwrap_or(w);
        parse_addr(w)
    })
}

/// The annotation for a Cisco code: `!A`/`A` is `!X`; others keep their
/// letter with a `!`.
fn cisco_code(t: &str) -> Option<String> {
    let code = t.strip_prefix('!').unwrap_or(t);
    match code {
        "A" => Some("!X".to_string()),
        "T" | "I" | "?" | "" => None,
        c if t.starts_with('!') => Some(format!("!{c}")),
        "H" | "N" | "P" | "Q" | "U" | "F" | "S" | "X" => Some(format!("!{code}")),
        _ => None,
    }
}

/// Reads the tokens of a Cisco/Huawei hop (line or continuation) into
/// `hop`; returns what could not be read.
fn hop_tokens(hop: &mut Hop, tokens: &[&str]) -> Vec<String> {
    let mut faults = Vec::new();
    let mut last: Option<IpAddr> = None;
    let mut i = 0;
    while let Some(&raw) = tokens.get(i) {
        i += 1;
        let mut t = raw;
        // Huawei glues its MPLS label to the address: `10.1.12.2[MPLS Label=...]`.
        if let Some(open) = t.find('[').filter(|&o| o > 0) {
            let head = t.get(..open).unwrap_or("");
            if let Some(a) = parse_addr(head) {
                push_addr(hop, a);
                last = Some(a);
                t = t.get(open..).unwrap_or("");
            }
        }
        if t == "*" {
            continue;
        }
        if t.starts_with('[') {
            // `[AS 4837]`, `[AS4837]`, `[MPLS: Label 16 Exp 0]`, up to `]`.
            let mut group = t.to_string();
            while !group.contains(']') {
                match tokens.get(i) {
                    Some(next) => {
                        group.push(' ');
                        group.push_str(next);
                        i += 1;
                    }
                    None => break,
                }
            }
            let inner = group.trim_start_matches('[');
            let inner = inner
                .get(..inner.find(']').unwrap_or(inner.len()))
                .unwrap_or("");
            let compact: String = inner.split_whitespace().collect();
            if compact.to_ascii_uppercase().starts_with("AS") {
                if let (Some(asn), Some(a)) = (parse_asn(&compact), last) {
                    push_asn(hop, a, asn);
                }
            }
            continue;
        }
        if t.starts_with('!') || (t.len() == 1 && t.bytes().all(|b| b.is_ascii_uppercase())) {
            if let Some(a) = cisco_code(t) {
                push_annotation(hop, &a);
            }
            continue;
        }
        if t == "?" {
            continue;
        }
        let next = tokens.get(i).copied();
        if is_number(t) {
            if matches!(next, Some("msec" | "ms")) {
                i += 1;
            }
            continue;
        }
        if t.strip_suffix("msec")
            .or_else(|| t.strip_suffix("ms"))
            .is_some_and(is_number)
        {
            continue;
        }
        if let Some(a) = parse_addr(t) {
            push_addr(hop, a);
            last = Some(a);
            continue;
        }
        if let Some(inner) = t.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            match parse_addr(inner) {
                Some(a) => {
                    push_addr(hop, a);
                    last = Some(a);
                    if let Some(name) = i.checked_sub(2).and_then(|j| tokens.get(j)) {
                        if parse_addr(name).is_none() && !name.starts_with(['(', '[', '*', '!']) {
                            push_name(hop, a, name);
                        }
                    }
                }
                None => faults.push(format!("`{t}` is not an address in parentheses")),
            }
            continue;
        }
        if next.is_some_and(|n| n.starts_with('(')) {
            // A host name; its address follows in parentheses.
            continue;
        }
        faults.push(format!("`{t}` is not an address, an RTT or a Cisco code"));
    }
    faults
}

/// Digits with at most one dot.
fn is_number(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') && t.parse::<f64>().is_ok()
}

/// One MikroTik row; `index` is its position in the table, the hop number
/// when the row has none. `None` when the row is not one.
fn mikrotik_row(t: &str, index: u8) -> Option<Hop> {
    let tokens: Vec<&str> = t.split_whitespace().collect();
    let first = *tokens.first()?;
    let (ttl, rest) = if first.bytes().all(|b| b.is_ascii_digit()) {
        (first.parse::<u8>().ok()?, tokens.get(1..).unwrap_or(&[]))
    } else {
        (index, tokens.as_slice())
    };
    if ttl == 0 {
        return None;
    }
    let mut hop = empty_hop(ttl);
    let mut statistics = false;
    for (k, tok) in rest.iter().enumerate() {
        if let Some(a) = parse_addr(tok) {
            push_addr(&mut hop, a);
            continue;
        }
        let numeric = tok.ends_with('%')
            || *tok == "timeout"
            || tok.trim_end_matches("ms").parse::<f64>().is_ok();
        if numeric {
            statistics = true;
            continue;
        }
        let lower = tok.to_ascii_lowercase();
        if lower.contains("host-unreachable") {
            push_annotation(&mut hop, "!H");
        } else if lower.contains("net-unreachable") || lower.contains("network-unreachable") {
            push_annotation(&mut hop, "!N");
        } else if lower.contains("prohibited") {
            push_annotation(&mut hop, "!X");
        } else if k == 0 && !tok.starts_with('<') {
            // A name instead of an address (use-dns=yes), or an IPv6
            // address cut by the column.
            hop.hidden = true;
        }
    }
    (statistics || !hop.addrs.is_empty()).then_some(hop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cisco_codes() {
        assert_eq!(cisco_code("!A").as_deref(), Some("!X"));
        assert_eq!(cisco_code("A").as_deref(), Some("!X"));
        assert_eq!(cisco_code("!H").as_deref(), Some("!H"));
        assert_eq!(cisco_code("N").as_deref(), Some("!N"));
        assert_eq!(cisco_code("!U").as_deref(), Some("!U"));
        assert_eq!(cisco_code("T"), None);
    }

    #[test]
    fn headers_and_commands() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(named_addr("one.one.one.one (1.1.1.1)"), ip("1.1.1.1"));
        assert_eq!(named_addr("10.225.2.1"), ip("10.225.2.1"));
        assert_eq!(named_addr(" 8.8.8.8(8.8.8.8), max hops: 30"), ip("8.8.8.8"));
        assert_eq!(
            named_addr_after_command("[admin@MikroTik] > /tool traceroute address=8.8.8.8 count=3"),
            ip("8.8.8.8")
        );
        assert!(huawei_header("traceroute to  8.8.8.8(8.8.8.8), max hops: 30 ,packet length: 40,press CTRL_C to break").is_some());
        assert!(
            huawei_header("traceroute to 8.8.8.8 (8.8.8.8), 30 hops max, 60 byte packets")
                .is_none()
        );
        assert!(mikrotik_header(
            " # ADDRESS LOSS SENT LAST AVG BEST WORST STD-DEV STATUS"
        ));
        assert!(!mikrotik_header("HOP RTT     ADDRESS"));
    }
}
