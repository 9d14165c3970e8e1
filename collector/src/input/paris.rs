//! `paris-traceroute` output: the original tool and libparistraceroute's.
//!
//! ```text
//! traceroute [(192.0.2.10:33456) -> (198.51.100.1:33457)], protocol udp, algo hopbyhop, duration 19 s
//!  5  P(16, 16) a.example (192.0.2.1):0,2,3  0.530 ms  b.example (192.0.2.5):1,5  0.556 ms !T2
//! ```
//!
//! The header gives the target (the address after `->`, its port
//! dropped). Hop lines are read like Linux traceroute's (see `text`), with
//! paris' own marks: `P(replies, probes)` (MDA, `-a exh`), `:0,2,3` flow
//! identifiers after an interface, `=`/`<` load-balancer types, RTTs as
//! `min/avg/max/stddev ms`, `{ipid}`, `[ttl]` and `!T2` (the TTL quoted
//! in the reply, not an unreachable: dropped); `!H`, `!N`, `!A`, `!Q`,
//! `!?` are kept as printed. `P(0, 6)` is a silent hop. Interfaces on
//! their own indented lines (`-M`), `MPLS Label ... TTL=1` lines and the
//! raw output (`-O raw`: a TTL alone on a line, then one `address  0.5 ms`
//! line per probe) are read too.
//!
//! libparistraceroute prints `traceroute to HOST (ADDR), 30 hops max, 60
//! bytes packets` (or `mda to ...`) and Linux-like hop lines
//! (`(addr)[AS64500]   0.4ms`); its MDA link lines `2 192.0.2.1 -> 192.0.2.9
//! [{...} -> {...}]` put the first address at the TTLs before it and the
//! second one TTL further; its final `Lattice:` dump (no TTLs) is skipped.
//! Prompts, blank lines and separators are skipped silently; any other
//! line with a warning.

use std::net::IpAddr;

use super::text::{
    clean_line, is_elision, is_mpls_line, is_noise, parse_hop, split_tokens, ttl_of,
};
use super::{merge_hop, parse_addr, push_addr, Format, Hops, PartialTrace, Read};
use crate::model::InputError;

/// The target of an original paris-traceroute header, if `t` is one:
/// `traceroute [(SRC:PORT) -> (DST:PORT)], protocol ...`.
fn old_header(t: &str) -> Option<Option<IpAddr>> {
    let rest = t.strip_prefix("traceroute [(")?;
    let (_, dst) = rest.split_once("-> (")?;
    let dst = dst.split(')').next().unwrap_or("");
    let addr = match dst.rsplit_once(':') {
        Some((a, port)) if port.bytes().all(|b| b.is_ascii_digit()) => a,
        _ => dst,
    };
    Some(parse_addr(addr))
}

/// libparistraceroute's header: `traceroute to` / `mda to` `HOST (ADDR),
/// N hops max, M bytes packets`.
fn lib_header(t: &str) -> Option<Option<IpAddr>> {
    let rest = match t.strip_prefix("mda to ") {
        Some(rest) => rest,
        None => t
            .strip_prefix("traceroute to ")
            .filter(|_| t.contains("bytes packets"))?,
    };
    if !t.contains("hops max") {
        return None;
    }
    let addr = rest
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .and_then(|(a, _)| parse_addr(a));
    Some(addr)
}

/// `P(6,` `6)`: the MDA reply count of a hop line.
fn is_replies(tokens: &[&str], i: usize) -> bool {
    tokens.get(i).is_some_and(|t| t.starts_with("P("))
}

/// How sure this reader is that `text` is paris-traceroute output.
pub(crate) fn sniff(text: &str) -> u8 {
    for line in text.lines().take(2000) {
        let t = line.trim();
        if old_header(t).is_some() || (t.starts_with("mda to ") && t.contains("hops max")) {
            return 95;
        }
        if t.starts_with("traceroute to ") && t.contains("bytes packets") {
            return 85;
        }
        let mut tokens = t.split_whitespace();
        if tokens
            .next()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && tokens
                .next()
                .is_some_and(|p| p.starts_with("P(") && p.ends_with(','))
        {
            return 90;
        }
    }
    0
}

/// A hop's tokens without paris' own marks, as the traceroute text parser
/// reads them.
fn plain_tokens(tokens: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&t) = tokens.get(i) {
        i += 1;
        if i == 1 && is_replies(tokens, 0) {
            // `P(6,` `6)`.
            if !t.ends_with(')') {
                i += 1;
            }
            continue;
        }
        if matches!(t, "=" | "<") {
            continue;
        }
        if t.strip_prefix("!T")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        {
            continue;
        }
        // `(192.0.2.1):0,2,3` and `192.0.2.1:0,2` (with `-n`).
        let t = match t.rsplit_once(':') {
            Some((a, flows))
                if !flows.is_empty()
                    && flows.bytes().all(|b| b.is_ascii_digit() || b == b',')
                    && (a.ends_with(')') || parse_addr(a).is_some())
                    && parse_addr(t).is_none() =>
            {
                a
            }
            _ => t,
        };
        out.push(t.to_string());
    }
    out
}

/// An MDA link line: `TTL... ADDR [(name)] [-> ADDR] [{flows} -> {flows}]`.
fn read_link(tokens: &[&str], hops: &mut Hops) -> bool {
    // TTL 0 is the source (`0 None -> 192.0.2.1`): only its far end is a hop.
    let ttls: Vec<u16> = tokens
        .iter()
        .take_while(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .map(|t| t.parse::<u16>().unwrap_or(u16::MAX))
        .collect();
    let rest = tokens.get(ttls.len()..).unwrap_or_default();
    let Some(&src) = rest.first() else {
        return false;
    };
    let src = parse_addr(src);
    let dst = rest
        .iter()
        .position(|t| *t == "->")
        .and_then(|k| rest.get(k + 1))
        .filter(|t| !t.starts_with("[{"))
        .map(|t| parse_addr(t));
    let mut any = false;
    for &n in &ttls {
        if let Some(ttl) = u8::try_from(n).ok().filter(|t| *t >= 1) {
            any = true;
            let hop = hops.at(ttl);
            if let Some(a) = src {
                push_addr(hop, a);
            }
        }
        if let (Some(dst), Some(next)) = (dst, u8::try_from(n + 1).ok().filter(|_| n < 255)) {
            any = true;
            let hop = hops.at(next);
            if let Some(a) = dst {
                push_addr(hop, a);
            }
        }
    }
    any
}

/// Every trace in `text`; lines that cannot be read are skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let mut read = Read::new(Format::ParisTraceroute);
    let text = super::strip_bom(text);
    if sniff(text) == 0 {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "not paris-traceroute output: no `traceroute [(src) -> (dst)]` header, \
                   no `P(n, m)` hop"
                .to_string(),
        });
    }
    let mut current: Option<PartialTrace> = None;
    // The TTL the lines that follow belong to (raw output, `-M`).
    let mut ttl_here: Option<u8> = None;
    let mut lattice = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = clean_line(raw);
        let t = line.trim();
        if t.is_empty() {
            lattice = false;
            continue;
        }
        if let Some(target) = old_header(t).or_else(|| lib_header(t)) {
            read.traces
                .extend(current.take().map(PartialTrace::into_trace));
            current = Some(PartialTrace {
                origin: format!("{name}:{n}"),
                target,
                hops: Hops::default(),
            });
            ttl_here = None;
            lattice = false;
            continue;
        }
        if t == "Lattice:" {
            lattice = true;
            continue;
        }
        if lattice || is_mpls_line(t) || is_elision(t) {
            continue;
        }
        let tokens = split_tokens(t);
        let first_is_number = tokens
            .first()
            .is_some_and(|f| f.bytes().all(|b| b.is_ascii_digit()));
        let cur = current.get_or_insert_with(|| PartialTrace {
            origin: format!("{name}:{n}"),
            target: None,
            hops: Hops::default(),
        });
        if first_is_number && tokens.contains(&"->") && read_link(&tokens, &mut cur.hops) {
            continue;
        }
        let (ttl, rest) = if first_is_number {
            let number = tokens.first().copied().unwrap_or("");
            match ttl_of(number) {
                Ok(ttl) => {
                    ttl_here = Some(ttl);
                    (ttl, tokens.get(1..).unwrap_or_default())
                }
                Err(what) => {
                    read.skip(format!("{name}:{n}"), what);
                    ttl_here = None;
                    continue;
                }
            }
        } else {
            match ttl_here {
                Some(ttl) if !is_noise(t) && starts_like_interface(&tokens) => (ttl, &tokens[..]),
                _ => {
                    if !is_noise(t) {
                        read.skip(
                            format!("{name}:{n}"),
                            format!(
                                "not paris-traceroute output: expected a header or a hop line, \
                                 got {t:?}"
                            ),
                        );
                    }
                    continue;
                }
            }
        };
        let hop = cur.hops.at(ttl);
        let plain = plain_tokens(rest);
        let toks: Vec<(usize, &str)> = plain.iter().map(|s| (n, s.as_str())).collect();
        let (parsed, warnings) = parse_hop(ttl, &toks);
        merge_hop(hop, parsed);
        for (line, what) in warnings {
            read.skip(format!("{name}:{line}"), what);
        }
    }
    read.traces
        .extend(current.take().map(PartialTrace::into_trace));
    read.traces
        .retain(|t| !t.hops.is_empty() || t.target.is_some());
    if read.traces.is_empty() {
        return Err(read.skipped.into_iter().next().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no paris-traceroute output: no header and no hop line".to_string(),
        }));
    }
    Ok(read)
}

/// An indented interface line (`-M`) or a raw probe line.
fn starts_like_interface(tokens: &[&str]) -> bool {
    match tokens.first() {
        Some(f) => {
            let f = f.split(':').next().unwrap_or(f);
            parse_addr(f).is_some()
                || parse_addr(tokens.first().copied().unwrap_or("")).is_some()
                || tokens.get(1).is_some_and(|s| s.starts_with('('))
                || f == "*"
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            old_header("traceroute [(192.0.2.10:33456) -> (198.51.100.1:33457)], protocol udp"),
            Some("198.51.100.1".parse().ok())
        );
        assert_eq!(
            old_header("traceroute [(2001:db8::1:33456) -> (2001:db8::9:33457)], protocol icmp"),
            Some("2001:db8::9".parse().ok())
        );
        assert_eq!(old_header("traceroute to x"), None);
        assert_eq!(
            lib_header("mda to 192.0.2.9 (192.0.2.9), 30 hops max, 60 bytes packets"),
            Some("192.0.2.9".parse().ok())
        );
    }

    #[test]
    fn paris_marks_are_removed() {
        let toks = [
            "P(16,",
            "16)",
            "a.example",
            "(192.0.2.1):0,2,3",
            "=",
            "0.5/0.6/0.7/0.1",
            "ms",
            "!T2",
            "!H",
        ];
        assert_eq!(
            plain_tokens(&toks),
            ["a.example", "(192.0.2.1)", "0.5/0.6/0.7/0.1", "ms", "!H"]
        );
        assert_eq!(plain_tokens(&["192.0.2.1:1,5"]), ["192.0.2.1"]);
        assert_eq!(plain_tokens(&["2001:db8::1"]), ["2001:db8::1"]);
    }
}
