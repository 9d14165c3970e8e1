//! `mtr --raw` (`-l`): one record per line, hop positions counted from 0.
//!
//! ```text
//! x 0 33000
//! h 0 192.0.2.1
//! d 0 gw.example
//! p 0 1409 33000
//! ```
//!
//! `h POS ADDR` is who answered at TTL POS+1 (several `h` for a position
//! are a load-balanced hop), `d POS NAME` its host name, `x` (probe sent),
//! `p` (reply time in microseconds) and `t`/`m` (timestamps, MPLS) carry
//! nothing inference needs. A position that only sent probes is a silent
//! hop. The raw format names no target: the last hop stands in. Lines
//! that are not records (a prompt, `...` where the author cut) are
//! skipped, prose with a warning; one trace per input.

use std::net::IpAddr;

use super::{parse_addr, push_addr, push_name, Format, Hops, Read};
use crate::model::{InputError, Trace};

/// A raw record: its letter, position and the rest.
fn record(line: &str) -> Option<(char, u8, &str)> {
    let mut it = line.trim().splitn(3, ' ');
    let kind = it.next()?;
    let mut chars = kind.chars();
    let letter = chars.next()?;
    if chars.next().is_some() || !"xhdptm".contains(letter) {
        return None;
    }
    let pos: u8 = it.next()?.parse().ok()?;
    Some((letter, pos, it.next().unwrap_or("").trim()))
}

/// Most non-blank lines are raw records, and there are a few.
pub(crate) fn sniff(text: &str) -> u8 {
    let (mut records, mut other) = (0usize, 0usize);
    for line in text.lines().take(2000).filter(|l| !l.trim().is_empty()) {
        if record(line).is_some() {
            records += 1;
        } else {
            other += 1;
        }
    }
    if records >= 3 && records >= 2 * other {
        90
    } else {
        0
    }
}

/// The trace in `text`.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let mut read = Read::new(Format::MtrRaw);
    let mut hops = Hops::default();
    let mut names: Vec<(u8, String)> = Vec::new();
    let mut first: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.is_empty() || t.chars().all(|c| c == '.' || c == '…') {
            continue;
        }
        let Some((letter, pos, rest)) = record(t) else {
            if t.starts_with('$') || t.starts_with('#') || t.contains("mtr ") {
                continue;
            }
            read.skip(
                format!("{name}:{n}"),
                format!("not an mtr --raw record: {t:?}"),
            );
            continue;
        };
        let Some(ttl) = pos.checked_add(1) else {
            read.skip(
                format!("{name}:{n}"),
                format!("hop position {pos} is beyond 254"),
            );
            continue;
        };
        first.get_or_insert(n);
        match letter {
            'h' => match parse_addr(rest) {
                Some(a) => push_addr(hops.at(ttl), a),
                None => {
                    // Something answered; what it printed is unreadable.
                    hops.at(ttl).hidden = true;
                    read.skip(
                        format!("{name}:{n}"),
                        format!("hop {ttl}: {rest:?} is not an address"),
                    );
                }
            },
            'd' => names.push((ttl, rest.to_string())),
            _ => {
                // A probe or a timing: the hop exists, silent until an
                // `h` record names who answered.
                hops.at(ttl);
            }
        }
    }
    let Some(first) = first else {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no mtr --raw record (`h 0 192.0.2.1`)".into(),
        });
    };
    let mut hops = hops.into_vec();
    for (ttl, host) in names {
        if let Some(h) = hops.iter_mut().find(|h| h.ttl == ttl) {
            // `d` names the address of the `h` record before it.
            if let Some(&a) = h.addrs.last() {
                push_name(h, a, &host);
            }
        }
    }
    read.traces.push(Trace {
        target: None::<IpAddr>,
        origin: format!("{name}:{first}"),
        hops,
    });
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_hops_counted_from_one() {
        let text = "$ mtr --raw -c 1 192.0.2.9\nx 0 33000\nh 0 192.0.2.1\nd 0 gw.example\np 0 1409 33000\nx 1 33001\nx 2 33002\nh 2 192.0.2.9\nh 2 192.0.2.8\n...\nsomething else\n";
        assert_eq!(sniff(text), 90);
        let r = read(text, "r").expect("read");
        let t = &r.traces[0];
        assert_eq!(t.origin, "r:2");
        let got: Vec<(u8, Vec<String>)> = t
            .hops
            .iter()
            .map(|h| (h.ttl, h.addrs.iter().map(|a| a.to_string()).collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, vec!["192.0.2.1".to_string()]),
                (2, vec![]),
                (3, vec!["192.0.2.9".to_string(), "192.0.2.8".to_string()]),
            ]
        );
        assert_eq!(
            t.hops[0].name_of("192.0.2.1".parse().expect("ip")),
            Some("gw.example")
        );
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].origin, "r:11");
        assert_eq!(
            r.skipped[0].what,
            "not an mtr --raw record: \"something else\""
        );
    }

    #[test]
    fn faults_are_skipped_with_the_line() {
        let r = read("h 0 nope\nh 255 192.0.2.1\nh 1 192.0.2.2\n", "r").expect("read");
        let what: Vec<&str> = r.skipped.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "hop 1: \"nope\" is not an address",
                "hop position 255 is beyond 254"
            ]
        );
        assert_eq!(r.traces[0].hops.len(), 2);
        assert!(read("hello\n", "r").is_err());
        assert_eq!(sniff("1 2 3\nhello\n"), 0);
        assert_eq!(
            sniff("traceroute to x (192.0.2.1), 30 hops max\n 1  192.0.2.1  1 ms\n"),
            0
        );
    }
}
