//! `mtr --csv`: one row per hop, a header per report.
//!
//! ```text
//! Mtr_Version,Start_Time,Status,Host,Hop,Ip,Asn,Loss%,Snt, ,Last,Avg,Best,Wrst,StDev,
//! MTR.0.92,1497364528,OK,8.8.8.8,1,192.0.2.1,AS???,0.00,10,0,0.35,0.38,0.31,0.52,0.06
//! ```
//!
//! Three generations are read:
//! - mtr 0.87 and later: the header above (`Asn` only with `-z`; the
//!   trailing comma and the blank ` ` column come and go with versions);
//!   columns are found by their header names, by position when rows come
//!   without their header. `--report-wide` adds a row per extra address
//!   of a hop (same `Hop`), merged into that hop.
//! - mtr 0.84–0.86: no header, `;`-separated
//!   `MTR.0.85;1369826946;OK;example.com;1;192.0.2.1;AS???;2345`.
//! - mtr 0.82 and older: a `<SRC=.. DST=.. ...>` caption, a
//!   `HUPCOUNT, HOST, Loss%, ...` header and rows `1, 192.0.2.1, ...`.
//!
//! `Host` (the destination as given to mtr) is the target when it is an
//! address; `Ip` is an address, `name (address)` (`-b`), a name (the hop
//! answered but its address is not shown: `hidden`) or `???`. A new
//! `Host`/`Start_Time` pair, a new header or a hop number lower than the
//! previous one starts another trace. Blank lines and `mtr` command lines
//! are ignored; any other line is skipped with a warning.

use std::net::IpAddr;

use super::mtr_report::{clean, command_args, parse_host, quote, Host, SNIFF_LINES};
use super::{parse_addr, parse_asn, push_addr, push_asn, push_name, Format, Hops, Read};
use crate::model::{InputError, Trace};

/// How sure this reader is that `text` is `mtr --csv` output, 0..=100.
pub(crate) fn sniff(text: &str) -> u8 {
    let mut score = 0;
    for raw in text.lines().take(SNIFF_LINES) {
        let line = clean(raw);
        let t = line.trim();
        if t.starts_with("Mtr_Version,") {
            return 100;
        }
        if is_row(t) {
            score = 90;
        } else if t.starts_with("HUPCOUNT,") || t.starts_with("<SRC=") {
            score = score.max(90);
        }
    }
    score
}

/// `MTR.0.92,...` or `MTR.0.85;...`.
fn is_row(t: &str) -> bool {
    t.strip_prefix("MTR.")
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()) && r.contains([',', ';']))
}

/// Splits a CSV line at `sep`, honouring double quotes (`"a,b"`, `""`).
pub(super) fn split_csv(line: &str, sep: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Where the columns are.
#[derive(Debug, Clone, Copy)]
struct Columns {
    host: Option<usize>,
    time: Option<usize>,
    hop: usize,
    ip: usize,
    asn: Option<usize>,
}

impl Columns {
    /// mtr 0.87+ rows without their header.
    const MODERN: Columns = Columns {
        host: Some(3),
        time: Some(1),
        hop: 4,
        ip: 5,
        asn: None,
    };
    /// mtr 0.82 `HUPCOUNT, HOST, ...`.
    const OLD: Columns = Columns {
        host: None,
        time: None,
        hop: 0,
        ip: 1,
        asn: None,
    };

    fn from_header(fields: &[String]) -> Option<Columns> {
        let at = |name: &str| {
            fields
                .iter()
                .position(|f| f.trim().eq_ignore_ascii_case(name))
        };
        Some(Columns {
            host: at("Host"),
            time: at("Start_Time"),
            hop: at("Hop")?,
            ip: at("Ip")?,
            asn: at("Asn"),
        })
    }
}

/// A trace being read.
struct Open {
    origin: String,
    key: (String, String),
    target: Option<IpAddr>,
    hops: Hops,
    last_ttl: u8,
}

impl Open {
    fn finish(self) -> Trace {
        Trace {
            target: self.target,
            origin: self.origin,
            hops: self.hops.into_vec(),
        }
    }
}

/// Every trace in `text`; rows that cannot be read are skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::MtrCsv);
    let mut cols: Option<Columns> = None;
    let mut open: Option<Open> = None;
    // A header or caption that starts the next trace: its line and the
    // target a caption gave.
    let mut pending: Option<(usize, Option<IpAddr>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let origin = format!("{name}:{line_no}");
        let line = clean(raw);
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with("Mtr_Version,") || t.starts_with("HUPCOUNT") {
            let fields = split_csv(t, ',');
            match Columns::from_header(&fields) {
                Some(c) => cols = Some(c),
                None if t.starts_with("HUPCOUNT") => cols = Some(Columns::OLD),
                None => {
                    read.skip(
                        origin,
                        format!("header without `Hop` and `Ip` columns: `{}`", quote(t)),
                    );
                    cols = None;
                    continue;
                }
            }
            if let Some(o) = open.take() {
                read.traces.push(o.finish());
            }
            let target = pending.and_then(|(_, t)| t);
            pending = Some((pending.map_or(line_no, |(l, _)| l), target));
            continue;
        }
        if t.starts_with("<SRC=") {
            if let Some(o) = open.take() {
                read.traces.push(o.finish());
            }
            let target = t
                .trim_end_matches('>')
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("DST="))
                .and_then(parse_addr);
            pending = Some((line_no, target));
            continue;
        }
        if command_args(t, &["mtr"]).is_some() {
            continue;
        }
        let row = if is_row(t) {
            let semicolons = t
                .find(';')
                .is_some_and(|s| t.find(',').is_none_or(|c| s < c));
            if semicolons {
                // 0.84–0.86: the statistics that may follow are `, `-separated.
                let head = t.split(',').next().unwrap_or(t);
                let fields = split_csv(head, ';');
                let asn = fields
                    .get(6)
                    .filter(|f| f.trim_start().starts_with("AS"))
                    .map(|_| 6);
                Some((
                    fields,
                    Columns {
                        asn,
                        ..Columns::MODERN
                    },
                ))
            } else {
                let fields = split_csv(t, ',');
                let c = cols.unwrap_or(Columns {
                    asn: fields
                        .get(6)
                        .filter(|f| f.trim_start().starts_with("AS"))
                        .map(|_| 6),
                    ..Columns::MODERN
                });
                Some((fields, c))
            }
        } else if cols.is_some_and(|c| c.hop == 0) && t.starts_with(|c: char| c.is_ascii_digit()) {
            cols.map(|c| (split_csv(t, ','), c))
        } else {
            None
        };
        let Some((fields, c)) = row else {
            read.skip(
                origin,
                format!("not a row of mtr --csv output: `{}`", quote(t)),
            );
            continue;
        };
        let field = |i: usize| fields.get(i).map_or("", |f| f.trim());
        let hop_text = field(c.hop);
        let Some(ttl) = hop_text.parse::<u8>().ok().filter(|&n| n >= 1) else {
            read.skip(
                origin,
                format!(
                    "hop number `{}` is not a whole number from 1 to 255",
                    quote(hop_text)
                ),
            );
            continue;
        };
        let key = (
            c.host.map_or("", field).to_string(),
            c.time.map_or("", field).to_string(),
        );
        let same = open
            .as_ref()
            .is_some_and(|o| o.key == key && ttl >= o.last_ttl);
        if !same {
            if let Some(o) = open.take() {
                read.traces.push(o.finish());
            }
            let (first, caption_target) = pending.take().unwrap_or((line_no, None));
            open = Some(Open {
                origin: format!("{name}:{first}"),
                target: c.host.and_then(|h| parse_addr(field(h))).or(caption_target),
                key,
                hops: Hops::default(),
                last_ttl: ttl,
            });
        }
        let Some(o) = open.as_mut() else { continue };
        o.last_ttl = ttl;
        let ip = field(c.ip);
        let asn = c.asn.and_then(|a| parse_asn(field(a)));
        let hop = o.hops.at(ttl);
        match parse_host(ip) {
            Some(Host::Silent) => {}
            Some(Host::Addr(a)) => {
                push_addr(hop, a);
                if let Some(n) = asn {
                    push_asn(hop, a, n);
                }
            }
            Some(Host::Named(n, a)) => {
                push_addr(hop, a);
                push_name(hop, a, n);
                if let Some(n) = asn {
                    push_asn(hop, a, n);
                }
            }
            Some(Host::Hidden) => {
                if hop.addrs.is_empty() {
                    hop.hidden = true;
                }
            }
            None => read.skip(
                origin,
                format!("hop {ttl}: `{}` is not a host mtr prints", quote(ip)),
            ),
        }
    }
    if let Some(o) = open.take() {
        read.traces.push(o.finish());
    }
    if read.traces.is_empty() && read.skipped.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no mtr --csv row in input".into(),
        });
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_split_with_quotes() {
        assert_eq!(
            split_csv("a,\"b,c\",,\"d\"\"e\"", ','),
            ["a", "b,c", "", "d\"e"]
        );
        assert_eq!(split_csv("", ','), [""]);
    }

    #[test]
    fn headers_name_the_columns() {
        let h = split_csv(
            "Mtr_Version,Start_Time,Status,Host,Hop,Ip,Asn,Loss%,Snt, ,Last,",
            ',',
        );
        let c = Columns::from_header(&h).expect("columns");
        assert_eq!(
            (c.hop, c.ip, c.asn, c.host, c.time),
            (4, 5, Some(6), Some(3), Some(1))
        );
        assert!(Columns::from_header(&split_csv("a,b", ',')).is_none());
    }
}
