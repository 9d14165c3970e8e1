//! `ripe-atlas report` text (and the same renderer's output from
//! `ripe-atlas measure traceroute`): one trace per probe.
//!
//! ```text
//! Probe #6028
//!   1 94.126.208.17                 AS48294    3.041 ms     1.127 ms     0.918 ms
//! ```
//!
//! `Probe #N` starts a trace (ripe-atlas-tools' traceroute renderer; the
//! date line after it is skipped). Hop lines are `N ADDRESS [ASn] RTT ms
//! ...`, `N *  *  *` for a silent hop (the AS column comes with
//! `--traceroute-show-asns`; its AS numbers are kept for their address).
//! The target is the address given to `--target` on a `ripe-atlas
//! measure` command line, if there is one (`ripe-atlas report` shows
//! none). Prompts, the command line, blank lines and the tool's own
//! messages are skipped silently; any other line (a hop's error message,
//! prose) with a warning.

use std::net::IpAddr;

use super::text::{clean_line, is_noise, is_prompt_or_command, parse_hop, split_tokens, ttl_of};
use super::{merge_hop, parse_addr, Format, Hops, Read};
use crate::model::{InputError, Trace};

/// `Probe #6028`: the probe id.
fn probe_banner(t: &str) -> Option<&str> {
    let id = t.strip_prefix("Probe #")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// How sure this reader is that `text` is ripe-atlas report text: a
/// `Probe #N` banner line is near certain.
pub(crate) fn sniff(text: &str) -> u8 {
    if text
        .lines()
        .take(2000)
        .any(|l| probe_banner(l.trim()).is_some())
    {
        90
    } else {
        0
    }
}

/// `Mon Jan 01 12:00:00 UTC 2016`: the renderer's date line.
fn is_date(t: &str) -> bool {
    let day = t.get(..4);
    matches!(
        day,
        Some("Mon " | "Tue " | "Wed " | "Thu " | "Fri " | "Sat " | "Sun ")
    ) && t.contains(':')
}

/// The tool's own messages around the results.
fn is_tool_message(t: &str) -> bool {
    t.contains("atlas.ripe.net")
        || t.starts_with("Looking good")
        || t.starts_with("Connecting to stream")
        || t.starts_with("Disconnected from stream")
        || t.starts_with("Measurement #")
        || t.starts_with("Stream ")
}

/// Every trace in `text`; lines that cannot be read are skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let mut read = Read::new(Format::AtlasText);
    let text = super::strip_bom(text);
    if sniff(text) == 0 {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "not ripe-atlas report text: no `Probe #N` line".to_string(),
        });
    }
    let mut target: Option<IpAddr> = None;
    let mut current: Option<(String, Hops)> = None;
    let finish = |read: &mut Read, current: &mut Option<(String, Hops)>, target| {
        if let Some((origin, hops)) = current.take() {
            read.traces.push(Trace {
                target,
                origin,
                hops: hops.into_vec(),
            });
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = clean_line(raw);
        let t = line.trim();
        if t.is_empty() || is_date(t) || is_tool_message(t) {
            continue;
        }
        if probe_banner(t).is_some() {
            finish(&mut read, &mut current, target);
            current = Some((format!("{name}:{n}"), Hops::default()));
            continue;
        }
        let tokens = split_tokens(t);
        let number = tokens.first().copied().unwrap_or("");
        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            let Some((_, hops)) = current.as_mut() else {
                read.skip(
                    format!("{name}:{n}"),
                    format!("hop line before any `Probe #N` line: {t:?}"),
                );
                continue;
            };
            let ttl = match ttl_of(number) {
                Ok(ttl) => ttl,
                Err(what) => {
                    read.skip(format!("{name}:{n}"), what);
                    continue;
                }
            };
            let toks: Vec<(usize, &str)> = tokens.iter().skip(1).map(|s| (n, *s)).collect();
            let (hop, warnings) = parse_hop(ttl, &toks);
            merge_hop(hops.at(ttl), hop);
            for (line, what) in warnings {
                read.skip(format!("{name}:{line}"), what);
            }
            continue;
        }
        if is_prompt_or_command(t) {
            // `ripe-atlas measure traceroute --target 192.0.2.1 ...`.
            let mut words = t.split_whitespace();
            while let Some(w) = words.next() {
                if let Some(v) = w.strip_prefix("--target=") {
                    target = parse_addr(v).or(target);
                } else if w == "--target" {
                    target = words.next().and_then(parse_addr).or(target);
                }
            }
            continue;
        }
        if !is_noise(t) {
            read.skip(
                format!("{name}:{n}"),
                format!(
                    "not ripe-atlas report output: expected `Probe #N` or a hop line, got {t:?}"
                ),
            );
        }
    }
    finish(&mut read, &mut current, target);
    if read.traces.is_empty() {
        return Err(read.skipped.into_iter().next().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no trace in this ripe-atlas report text".to_string(),
        }));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_and_dates() {
        assert_eq!(probe_banner("Probe #6028"), Some("6028"));
        assert_eq!(probe_banner("Probe #"), None);
        assert!(is_date("Mon Jan 04 12:00:00 CET 2016"));
        assert!(!is_date("Monday"));
    }
}
