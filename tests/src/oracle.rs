//! Independent tools as the oracle: run Linux `traceroute` and `scamper`
//! inside a lab node, parse what they print, and compare it with the path
//! the scenario implies ([`crate::expect`]).
//!
//! These parsers read only what the tests need (hop addresses, `*` and the
//! `!X`-style marks); the collector's general traceroute parser is a
//! separate, fuller piece of work.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::expect::Hop;
use crate::lab::{Lab, LabError};

/// One reply seen at a TTL: `None` is a `*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub addr: Option<IpAddr>,
    /// Annotation such as `!X`, `!N`, `!H`.
    pub mark: Option<String>,
}

/// Everything seen at one TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenHop {
    pub ttl: u8,
    pub replies: Vec<Seen>,
}

impl SeenHop {
    /// Distinct responding addresses at this TTL.
    pub fn addrs(&self) -> BTreeSet<IpAddr> {
        self.replies.iter().filter_map(|r| r.addr).collect()
    }
}

/// A parsed trace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub hops: Vec<SeenHop>,
    /// The tool's raw output, for messages.
    pub raw: String,
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for h in &self.hops {
            let parts: Vec<String> = h
                .replies
                .iter()
                .map(|r| match (&r.addr, &r.mark) {
                    (None, _) => "*".into(),
                    (Some(a), None) => a.to_string(),
                    (Some(a), Some(m)) => format!("{a} {m}"),
                })
                .collect();
            writeln!(f, "{:>2}  {}", h.ttl, parts.join("  "))?;
        }
        Ok(())
    }
}

/// Parses `traceroute -n` output (Linux traceroute 2.x).
pub fn parse_linux_traceroute(text: &str) -> Result<Observed, String> {
    let mut hops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("traceroute") {
            continue;
        }
        let mut tokens = line.split_whitespace();
        let ttl: u8 = tokens
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("line {}: no hop number: {line:?}", i + 1))?;
        let mut replies: Vec<Seen> = Vec::new();
        let mut current: Option<IpAddr> = None;
        for t in tokens {
            if t == "*" {
                replies.push(Seen {
                    addr: None,
                    mark: None,
                });
            } else if let Ok(a) = t.parse::<IpAddr>() {
                current = Some(a);
            } else if t == "ms" {
            } else if t.parse::<f64>().is_ok() {
                // An RTT: one reply from the current address.
                let addr =
                    current.ok_or_else(|| format!("line {}: RTT before any address", i + 1))?;
                replies.push(Seen {
                    addr: Some(addr),
                    mark: None,
                });
            } else if t.starts_with('!') {
                let last = replies
                    .last_mut()
                    .ok_or_else(|| format!("line {}: mark {t} before any reply", i + 1))?;
                last.mark = Some(t.to_string());
            } else {
                return Err(format!("line {}: unexpected {t:?} in {line:?}", i + 1));
            }
        }
        hops.push(SeenHop { ttl, replies });
    }
    Ok(Observed {
        hops,
        raw: text.to_string(),
    })
}

/// Parses the (first) `trace` object of `scamper -O json` output.
pub fn parse_scamper_json(text: &str) -> Result<Observed, String> {
    parse_scamper_traces(text)?
        .into_iter()
        .next()
        .map(|(_, o)| o)
        .ok_or_else(|| format!("no trace object in scamper output: {text:?}"))
}

/// Parses every `trace` object of `scamper -O json` output, with its
/// destination.
pub fn parse_scamper_traces(text: &str) -> Result<Vec<(IpAddr, Observed)>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["type"] != "trace" {
            continue;
        }
        let dst: IpAddr = v["dst"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("trace without dst: {line}"))?;
        let mut o = scamper_trace_object(&v)?;
        o.raw = line.to_string();
        out.push((dst, o));
    }
    Ok(out)
}

fn scamper_trace_object(trace: &serde_json::Value) -> Result<Observed, String> {
    let mut by_ttl: std::collections::BTreeMap<u8, Vec<Seen>> = Default::default();
    let hop_count = trace["hop_count"].as_u64().unwrap_or(0);
    for h in trace["hops"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let ttl = h["probe_ttl"]
            .as_u64()
            .and_then(|t| u8::try_from(t).ok())
            .ok_or_else(|| format!("hop without probe_ttl: {h}"))?;
        let addr: IpAddr = h["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("hop without addr: {h}"))?;
        let v6 = addr.is_ipv6();
        let mark = match (h["icmp_type"].as_u64(), h["icmp_code"].as_u64(), v6) {
            (Some(3), Some(13), false) | (Some(1), Some(1), true) => Some("!X".to_string()),
            (Some(3), Some(0), false) | (Some(1), Some(0), true) => Some("!N".to_string()),
            (Some(3), Some(1), false) | (Some(1), Some(3), true) => Some("!H".to_string()),
            _ => None,
        };
        by_ttl.entry(ttl).or_default().push(Seen {
            addr: Some(addr),
            mark,
        });
    }
    let last = by_ttl.keys().next_back().copied().unwrap_or(0);
    let max = u8::try_from(hop_count).unwrap_or(u8::MAX).max(last);
    let hops = (1..=max)
        .map(|ttl| SeenHop {
            ttl,
            replies: by_ttl.remove(&ttl).unwrap_or_else(|| {
                vec![Seen {
                    addr: None,
                    mark: None,
                }]
            }),
        })
        .collect();
    Ok(Observed {
        hops,
        raw: String::new(),
    })
}

/// Checks that `seen` shows exactly `expected`: at every TTL every reply
/// comes from the expected address with the expected mark (or is `*` where
/// silence is expected), and the trace ends where the path ends.
pub fn matches(expected: &[Hop], seen: &Observed) -> Result<(), String> {
    let fail = |why: String| {
        Err(format!(
            "{why}\nexpected: {}\nobserved:\n{seen}raw output:\n{}",
            crate::expect::format_path(expected),
            seen.raw
        ))
    };
    if seen.hops.len() != expected.len() {
        return fail(format!(
            "{} hops observed, {} expected",
            seen.hops.len(),
            expected.len()
        ));
    }
    for (i, (want, got)) in expected.iter().zip(&seen.hops).enumerate() {
        let ttl = i + 1;
        if usize::from(got.ttl) != ttl {
            return fail(format!("hop {ttl} is numbered {}", got.ttl));
        }
        if got.replies.is_empty() {
            return fail(format!("hop {ttl} has no probe at all"));
        }
        for r in &got.replies {
            let ok = match want {
                Hop::Silent => r.addr.is_none(),
                Hop::Reply { addr, mark } => {
                    r.addr == Some(*addr) && r.mark.as_deref() == mark.annotation()
                }
            };
            if !ok {
                return fail(format!("hop {ttl}: expected {want}, saw {r:?}"));
            }
        }
    }
    Ok(())
}

/// The protocol of a traceroute run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `traceroute -I` / scamper `icmp-paris`.
    Icmp,
    /// Classic UDP, a new destination port per probe.
    Udp,
}

/// Runs Linux `traceroute -n` from `node` toward `dst`.
/// `queries` probes per hop, 1 s wait, at most 16 hops.
pub fn linux_traceroute(
    lab: &Lab,
    node: &str,
    dst: IpAddr,
    method: Method,
    queries: u8,
) -> Result<Observed, LabError> {
    let q = queries.to_string();
    let d = dst.to_string();
    let mut args = vec!["traceroute", "-n", "-w", "1", "-m", "16", "-q", &q];
    if dst.is_ipv6() {
        args.push("-6");
    }
    if method == Method::Icmp {
        args.push("-I");
    }
    args.push(&d);
    let out = lab.output(node, &args)?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    parse_linux_traceroute(&text).map_err(|e| LabError::Command {
        what: format!("parse traceroute from {node} to {dst}"),
        status: out.status.to_string(),
        stderr: format!("{e}; stderr: {}", String::from_utf8_lossy(&out.stderr)),
    })
}

/// Runs one `scamper -O json -c "trace ..."` from `node` toward all of
/// `dsts` (scamper probes them concurrently) and returns each trace.
pub fn scamper_traces(
    lab: &Lab,
    node: &str,
    dsts: &[IpAddr],
    method: &str,
) -> Result<Vec<(IpAddr, Observed)>, LabError> {
    let cmd = format!("trace -P {method} -q 1 -w 1 -m 16");
    let mut args = vec!["scamper", "-p", "1000", "-O", "json", "-c", &cmd, "-i"];
    let d: Vec<String> = dsts.iter().map(ToString::to_string).collect();
    args.extend(d.iter().map(String::as_str));
    let out = lab.output(node, &args)?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let traces = parse_scamper_traces(&text).map_err(|e| LabError::Command {
        what: format!("scamper from {node}"),
        status: out.status.to_string(),
        stderr: format!("{e}; stderr: {}", String::from_utf8_lossy(&out.stderr)),
    })?;
    if traces.len() != dsts.len() {
        return Err(LabError::Command {
            what: format!("scamper from {node}"),
            status: out.status.to_string(),
            stderr: format!(
                "{} traces for {} destinations; stderr: {}",
                traces.len(),
                dsts.len(),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(traces)
}

/// Runs `scamper -O json -c "trace ..."` from `node` toward `dst`.
/// `method` is scamper's (`icmp-paris`, `udp-paris`, ...); `extra` adds
/// options such as `-s 40000 -d 33435` for a fixed flow.
pub fn scamper_trace(
    lab: &Lab,
    node: &str,
    dst: IpAddr,
    method: &str,
    extra: &str,
) -> Result<Observed, LabError> {
    let cmd = format!("trace -P {method} -q 1 -w 1 -m 16 {extra}");
    let d = dst.to_string();
    let out = lab.output(node, &["scamper", "-O", "json", "-c", &cmd, "-i", &d])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    parse_scamper_json(&text).map_err(|e| LabError::Command {
        what: format!("scamper from {node} to {dst}"),
        status: out.status.to_string(),
        stderr: format!("{e}; stderr: {}", String::from_utf8_lossy(&out.stderr)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Mark;

    #[test]
    fn linux_traceroute_output_with_marks_stars_and_multiple_addresses() {
        let text = "traceroute to 198.18.176.15 (198.18.176.15), 16 hops max, 60 byte packets\n \
             1  192.0.2.2  0.050 ms  0.020 ms  0.019 ms\n \
             2  198.51.100.2  0.061 ms  198.51.100.6  0.040 ms  0.031 ms\n \
             3  * * *\n \
             4  198.18.219.14  0.1 ms !X  0.1 ms !X  *\n";
        let o = parse_linux_traceroute(text).expect("parses");
        assert_eq!(o.hops.len(), 4);
        assert_eq!(o.hops[0].replies.len(), 3);
        assert_eq!(o.hops[1].addrs().len(), 2);
        assert!(o.hops[2].replies.iter().all(|r| r.addr.is_none()));
        assert_eq!(o.hops[3].replies[0].mark.as_deref(), Some("!X"));
        assert_eq!(o.hops[3].replies[2].addr, None);
        let expected = [Hop::Reply {
            addr: "192.0.2.2".parse().expect("ip"),
            mark: Mark::None,
        }];
        let one = Observed {
            hops: vec![o.hops[0].clone()],
            raw: String::new(),
        };
        assert_eq!(matches(&expected, &one), Ok(()));
        assert!(matches(&expected, &o).is_err());
    }

    #[test]
    fn garbage_traceroute_output_is_an_error_not_a_panic() {
        assert!(parse_linux_traceroute(" x  192.0.2.1").is_err());
        assert!(parse_linux_traceroute(" 1  0.5 ms").is_err());
        assert!(parse_linux_traceroute(" 1  !X").is_err());
        assert!(parse_linux_traceroute(" 1  192.0.2.1 banana").is_err());
        assert!(parse_scamper_json("{\"type\":\"cycle-start\"}").is_err());
        assert!(parse_scamper_json("{\"type\":\"trace\",\"hops\":[]}").is_err());
        assert!(parse_scamper_json(
            "{\"type\":\"trace\",\"dst\":\"192.0.2.1\",\"hops\":[{\"probe_ttl\":1}]}"
        )
        .is_err());
    }

    #[test]
    fn scamper_json_fills_silent_ttls_and_marks_admin_prohibited() {
        let text = r#"{"type":"cycle-start"}
{"type":"trace","dst":"198.51.100.9","hop_count":4,"hops":[{"addr":"192.0.2.2","probe_ttl":1,"icmp_type":11,"icmp_code":0},{"addr":"198.51.100.9","probe_ttl":3,"icmp_type":11,"icmp_code":0},{"addr":"198.51.100.9","probe_ttl":4,"icmp_type":3,"icmp_code":13}]}"#;
        let o = parse_scamper_json(text).expect("parses");
        assert_eq!(o.hops.len(), 4);
        assert_eq!(o.hops[1].replies[0].addr, None);
        assert_eq!(o.hops[3].replies[0].mark.as_deref(), Some("!X"));
    }
}
