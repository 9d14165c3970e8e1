//! Linux `tracepath` / `tracepath6` (iputils) output.
//!
//! ```text
//!  1?: [LOCALHOST]                      pmtu 1500
//!  2:  192.0.2.1                         1.1ms asymm  3
//! ```
//!
//! Each line is one probe: `N:` (or `N?:` when the reply's TTL was not
//! known) then who answered: an address (`-n`), a host name alone (the
//! default: the hop answered but its address is not shown, so it is
//! hidden), or `name (address)` (`-b`); then `0.512ms`, `asymm  3`,
//! `reached`, `pmtu 1500`, `!H`-style annotations (kept). `no reply` is a
//! silent hop. Several probes per TTL print repeated, possibly
//! out-of-order TTL lines: they merge by TTL. `[LOCALHOST]` starts a
//! trace; the target is the address of a `tracepath ADDR` command line
//! before it, or else of the hop marked `reached`. `Resume:` and `Too many
//! hops` trailers, `send failed` lines, prompts and blank lines are
//! skipped silently; any other line with a warning.

use std::net::IpAddr;

use super::text::{clean_line, is_noise, is_prompt_or_command, is_redaction, ttl_of};
use super::{parse_addr, push_addr, push_annotation, push_name, Format, Hops, Read};
use crate::model::{InputError, Trace};

/// `N:` or `N?:`: the TTL of a tracepath line, and the rest.
fn ttl_prefix(t: &str) -> Option<(&str, &str)> {
    let (first, rest) = t.split_once(':')?;
    let number = first.strip_suffix('?').unwrap_or(first);
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && rest.starts_with(' '))
        .then_some((number, rest.trim()))
}

/// How sure this reader is that `text` is tracepath output: its
/// `[LOCALHOST]` first line or `Resume: pmtu` trailer is near certain;
/// `N:  host  0.5ms` lines alone are likely.
pub(crate) fn sniff(text: &str) -> u8 {
    let mut hops = 0;
    for line in text.lines().take(2000) {
        let t = line.trim();
        if let Some((_, rest)) = ttl_prefix(t) {
            if rest.starts_with("[LOCALHOST]") {
                return 90;
            }
            if rest == "no reply" || rest.split_whitespace().any(is_ms_rtt) {
                hops += 1;
            }
        } else if t.starts_with("Resume: pmtu ") {
            return 90;
        }
    }
    if hops >= 2 {
        60
    } else {
        0
    }
}

/// `0.512ms`.
fn is_ms_rtt(t: &str) -> bool {
    t.strip_suffix("ms").is_some_and(|n| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && n.parse::<f64>().is_ok()
    })
}

struct Current {
    origin: String,
    target: Option<IpAddr>,
    reached: Option<IpAddr>,
    hops: Hops,
    any: bool,
}

impl Current {
    fn new(origin: String, target: Option<IpAddr>) -> Self {
        Self {
            origin,
            target,
            reached: None,
            hops: Hops::default(),
            any: false,
        }
    }

    fn into_trace(self) -> Trace {
        Trace {
            target: self.target.or(self.reached),
            origin: self.origin,
            hops: self.hops.into_vec(),
        }
    }
}

/// Every trace in `text`; lines that cannot be read are skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let mut read = Read::new(Format::Tracepath);
    let text = super::strip_bom(text);
    let mut current: Option<Current> = None;
    // The target of a `tracepath ADDR` command line, for the next trace.
    let mut commanded: Option<(usize, Option<IpAddr>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = clean_line(raw);
        let t = line.trim();
        if t.is_empty()
            || t.starts_with("Resume:")
            || t.starts_with("Too many hops")
            || t.starts_with("pmtu ")
        {
            continue;
        }
        let Some((number, rest)) = ttl_prefix(t) else {
            if is_prompt_or_command(t) && t.contains("tracepath") {
                let target = t.split_whitespace().last().and_then(parse_addr);
                commanded = Some((n, target));
                read.traces.extend(current.take().map(Current::into_trace));
                continue;
            }
            if !is_noise(t) {
                read.skip(
                    format!("{name}:{n}"),
                    format!("not tracepath output: expected a `N:  host  0.5ms` line, got {t:?}"),
                );
            }
            continue;
        };
        let localhost = rest.starts_with("[LOCALHOST]");
        if localhost && current.as_ref().is_some_and(|c| c.any) {
            read.traces.extend(current.take().map(Current::into_trace));
        }
        let cur = current.get_or_insert_with(|| {
            let (origin_line, target) = commanded.take().unwrap_or((n, None));
            Current::new(format!("{name}:{origin_line}"), target)
        });
        if localhost || rest == "send failed" || rest.starts_with("pmtu ") {
            continue;
        }
        let ttl = match ttl_of(number) {
            Ok(ttl) => ttl,
            Err(what) => {
                read.skip(format!("{name}:{n}"), what);
                continue;
            }
        };
        cur.any = true;
        let hop = cur.hops.at(ttl);
        if rest == "no reply" {
            continue;
        }
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let mut k = 0;
        let mut addr: Option<IpAddr> = None;
        while let Some(&tok) = tokens.get(k) {
            k += 1;
            let next = tokens.get(k).copied();
            if k == 1 {
                // Who answered.
                let inner = next
                    .and_then(|n| n.strip_prefix('('))
                    .and_then(|n| n.strip_suffix(')'));
                if let Some(a) = inner.and_then(parse_addr) {
                    push_addr(hop, a);
                    push_name(hop, a, tok);
                    addr = Some(a);
                    k += 1;
                } else if let Some(a) = parse_addr(tok) {
                    push_addr(hop, a);
                    addr = Some(a);
                } else if is_redaction(tok).is_some()
                    || tok.chars().any(|c| c.is_ascii_alphabetic())
                {
                    // A name without its address, or a redaction.
                    hop.hidden = true;
                } else {
                    read.skip(
                        format!("{name}:{n}"),
                        format!("hop {ttl}: `{tok}` is not an address or a host name"),
                    );
                    break;
                }
                continue;
            }
            if is_ms_rtt(tok) || tok == "reached" {
                if tok == "reached" {
                    cur.reached = cur.reached.or(addr);
                }
                continue;
            }
            if matches!(tok, "asymm" | "pmtu") && next.is_some_and(|n| n.parse::<u32>().is_ok()) {
                k += 1;
                continue;
            }
            if tok.len() > 1 && tok.starts_with('!') {
                push_annotation(hop, tok);
                continue;
            }
            read.skip(
                format!("{name}:{n}"),
                format!("hop {ttl}: unexpected `{tok}` (expected `0.5ms`, `asymm N`, `reached`, `pmtu N`)"),
            );
        }
    }
    read.traces.extend(current.take().map(Current::into_trace));
    if read.traces.is_empty() {
        return Err(read.skipped.into_iter().next().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no tracepath output: no `N:  host  0.5ms` line".to_string(),
        }));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_prefixes() {
        assert_eq!(
            ttl_prefix("1?: [LOCALHOST]  pmtu 1500"),
            Some(("1", "[LOCALHOST]  pmtu 1500"))
        );
        assert_eq!(ttl_prefix("12:  no reply"), Some(("12", "no reply")));
        assert_eq!(ttl_prefix("1.|-- 192.0.2.1"), None);
        assert_eq!(ttl_prefix("Resume: pmtu 1500"), None);
        assert_eq!(ttl_prefix("2001:db8::1 x"), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(" 1?: [LOCALHOST]     pmtu 1500\n"), 90);
        assert_eq!(sniff(" 1:  192.0.2.1  0.5ms\n 2:  no reply\n"), 60);
        assert_eq!(sniff(" 1  192.0.2.1  0.5 ms\n"), 0);
    }
}
