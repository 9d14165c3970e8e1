//! `mtr --xml`: one `<MTR>` element per report, one `<HUB>` per hop.
//!
//! ```text
//! <MTR SRC="vp-fra" DST="192.0.2.9" TOS="0x0" PSIZE="64" BITPATTERN="0x00" TESTS="10">
//!     <HUB COUNT="1" HOST="192.0.2.1"><Loss>0.0%</Loss>...</HUB>
//! ```
//!
//! Every version is read: mtr 0.82 and older printed attribute values
//! without quotes (`<HUB COUNT=1 HOST=192.0.2.1>`, `<Loss%>` children),
//! 0.86 and later quote them and start with `<?xml ...?>`, mtr 0.96 adds
//! `ADDR` (the address, `???` when silent) and `HOSTNAME` to `HUB`.
//! `COUNT` is the hop number; `HOST` is an address, `name (address)`
//! (`-b`), a name (the hop answered but its address is not shown:
//! `hidden`, unless `ADDR` gives it) or `???`. `COUNT`, `HOST`, `ADDR` and
//! `HOSTNAME` are also read as child elements. The target is `DST` when it
//! is an address. Several reports may follow one another.
//!
//! The parser is a small tolerant scanner of this simple XML (attributes
//! quoted or not, entities `&amp; &lt; &gt; &quot; &apos;` and numeric
//! ones decoded), not a validating one. Statistics are ignored. A `HUB`
//! without a usable `COUNT` or `HOST` is skipped with a warning, and so is
//! text outside the reports that is not a shell prompt or `mtr` command.

use std::net::IpAddr;

use super::mtr_report::{clean, command_args, line_number, line_starts, parse_host, quote, Host};
use super::{parse_addr, push_addr, push_name, Format, Hops, Read};
use crate::model::{InputError, Trace};

/// How sure this reader is that `text` is `mtr --xml` output, 0..=100.
pub(crate) fn sniff(text: &str) -> u8 {
    let head = head(text, 64 * 1024);
    if head.contains("<MTR ") || head.contains("<MTR>") {
        95
    } else if head.contains("<HUB ") && head.contains("COUNT") {
        90
    } else {
        0
    }
}

/// The first `max` bytes of `text` (on a character boundary).
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// One piece of the XML.
#[derive(Debug, PartialEq)]
enum Item<'a> {
    Start {
        name: &'a str,
        attrs: Vec<(&'a str, String)>,
        closed: bool,
        at: usize,
    },
    End {
        name: &'a str,
    },
    Text {
        text: &'a str,
        at: usize,
    },
}

/// Decodes the five XML entities and numeric references; anything else
/// is kept as written.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i + 1..).unwrap_or("");
        let decoded = after.find(';').filter(|&e| e <= 10).and_then(|e| {
            let entity = after.get(..e)?;
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let n = entity.strip_prefix('#')?;
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = after.get(e + 1..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits `text` into tags and text; stops at a tag that is cut off.
fn scan(text: &str) -> Vec<Item<'_>> {
    let b = text.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) != Some(&b'<') {
            let end = text
                .get(i..)
                .and_then(|r| r.find('<'))
                .map_or(b.len(), |n| i + n);
            if let Some(t) = text.get(i..end) {
                items.push(Item::Text { text: t, at: i });
            }
            i = end;
            continue;
        }
        let rest = text.get(i..).unwrap_or("");
        let skip_to = |close: &str| rest.find(close).map(|n| i + n + close.len());
        if rest.starts_with("<?") {
            let Some(n) = skip_to("?>") else { break };
            i = n;
        } else if rest.starts_with("<!--") {
            let Some(n) = skip_to("-->") else { break };
            i = n;
        } else if rest.starts_with("<!") || rest.starts_with("</") {
            let Some(n) = skip_to(">") else { break };
            if rest.starts_with("</") {
                let name = text.get(i + 2..n - 1).unwrap_or("").trim();
                items.push(Item::End { name });
            }
            i = n;
        } else {
            match start_tag(text, i) {
                Some((item, n)) => {
                    items.push(item);
                    i = n;
                }
                None => break,
            }
        }
    }
    items
}

/// The start tag at `at` (which is `<`) and the offset after it.
fn start_tag(text: &str, at: usize) -> Option<(Item<'_>, usize)> {
    let b = text.as_bytes();
    let mut i = at + 1;
    let name_start = i;
    while i < b.len() && !matches!(b.get(i), Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')) {
        i += 1;
    }
    let name = text.get(name_start..i)?;
    let mut attrs = Vec::new();
    loop {
        while matches!(b.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            i += 1;
        }
        match b.get(i)? {
            b'>' => {
                let item = Item::Start {
                    name,
                    attrs,
                    closed: false,
                    at,
                };
                return Some((item, i + 1));
            }
            b'/' if b.get(i + 1) == Some(&b'>') => {
                let item = Item::Start {
                    name,
                    attrs,
                    closed: true,
                    at,
                };
                return Some((item, i + 2));
            }
            b'<' => return None,
            _ => {}
        }
        let key_start = i;
        while i < b.len()
            && !matches!(
                b.get(i),
                Some(b'=' | b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
            )
        {
            i += 1;
        }
        let key = text.get(key_start..i)?;
        if key.is_empty() {
            // A stray `/`.
            i += 1;
            continue;
        }
        if b.get(i) != Some(&b'=') {
            attrs.push((key, String::new()));
            continue;
        }
        i += 1;
        let value = match b.get(i)? {
            q @ (b'"' | b'\'') => {
                let close = text.get(i + 1..)?.find(*q as char)? + i + 1;
                let v = text.get(i + 1..close)?;
                i = close + 1;
                v
            }
            _ => {
                let start = i;
                while i < b.len() && !matches!(b.get(i), Some(b' ' | b'\t' | b'\r' | b'\n' | b'>'))
                {
                    i += 1;
                }
                text.get(start..i)?
            }
        };
        attrs.push((key, unescape(value)));
    }
}

/// A `HUB` being read.
#[derive(Default)]
struct Hub {
    line: usize,
    count: Option<String>,
    host: Option<String>,
    addr: Option<String>,
    hostname: Option<String>,
    /// The child element whose text is being read.
    field: Option<String>,
}

impl Hub {
    fn set(&mut self, key: &str, value: String) {
        match key.to_ascii_uppercase().as_str() {
            "COUNT" => self.count = Some(value),
            "HOST" => self.host = Some(value),
            "ADDR" => self.addr = Some(value),
            "HOSTNAME" => self.hostname = Some(value),
            _ => {}
        }
    }
}

/// A report being read.
struct Report {
    origin: String,
    target: Option<IpAddr>,
    hops: Hops,
}

fn finish_hub(hub: Hub, report: &mut Report, name: &str, read: &mut Read) {
    let origin = format!("{name}:{}", hub.line);
    let count = hub.count.as_deref().map(str::trim).unwrap_or("");
    let Some(ttl) = count.parse::<u8>().ok().filter(|&t| t >= 1) else {
        let what = if count.is_empty() {
            "HUB without COUNT (the hop number): skipped".to_string()
        } else {
            format!(
                "HUB COUNT `{}` is not a hop number from 1 to 255",
                quote(count)
            )
        };
        read.skip(origin, what);
        return;
    };
    let addr = hub
        .addr
        .as_deref()
        .map(str::trim)
        .filter(|a| *a != "???")
        .and_then(parse_addr);
    let host = hub.host.as_deref().map(str::trim).unwrap_or("");
    let hop = report.hops.at(ttl);
    if let Some(a) = addr {
        push_addr(hop, a);
        if let Some(n) = hub.hostname.as_deref() {
            push_name(hop, a, n);
        }
        match parse_host(host) {
            Some(Host::Named(n, _)) => push_name(hop, a, n),
            Some(Host::Hidden) => push_name(hop, a, host),
            _ => {}
        }
        return;
    }
    match parse_host(host) {
        Some(Host::Silent) => {}
        Some(Host::Addr(a)) => push_addr(hop, a),
        Some(Host::Named(n, a)) => {
            push_addr(hop, a);
            push_name(hop, a, n);
        }
        Some(Host::Hidden) => hop.hidden = true,
        None if host.is_empty() => {
            read.skip(origin, format!("HUB {ttl} without HOST: skipped"));
        }
        None => read.skip(
            origin,
            format!("HUB {ttl}: HOST `{}` is not a host mtr prints", quote(host)),
        ),
    }
}

/// Every report in `text`; hubs and stray text that cannot be read are
/// skipped.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::MtrXml);
    let starts = line_starts(text);
    let mut report: Option<Report> = None;
    let mut hub: Option<Hub> = None;
    let mut warned_line = 0;
    for item in scan(text) {
        match item {
            Item::Start {
                name: tag,
                attrs,
                closed,
                at,
            } => {
                let line = line_number(&starts, at);
                if tag.eq_ignore_ascii_case("MTR") {
                    if let Some(r) = report.take() {
                        let trace = finish(r, hub.take(), name, &mut read);
                        read.traces.push(trace);
                    }
                    let target = attrs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("DST"))
                        .and_then(|(_, v)| parse_addr(v));
                    report = Some(Report {
                        origin: format!("{name}:{line}"),
                        target,
                        hops: Hops::default(),
                    });
                } else if tag.eq_ignore_ascii_case("HUB") {
                    let r = report.get_or_insert_with(|| Report {
                        origin: format!("{name}:{line}"),
                        target: None,
                        hops: Hops::default(),
                    });
                    if let Some(h) = hub.take() {
                        finish_hub(h, r, name, &mut read);
                    }
                    let mut h = Hub {
                        line,
                        ..Hub::default()
                    };
                    for (k, v) in attrs {
                        h.set(k, v);
                    }
                    if closed {
                        finish_hub(h, r, name, &mut read);
                    } else {
                        hub = Some(h);
                    }
                } else if let Some(h) = hub.as_mut() {
                    h.field = (!closed).then(|| tag.to_string());
                }
            }
            Item::End { name: tag } => {
                if tag.eq_ignore_ascii_case("HUB") {
                    if let (Some(h), Some(r)) = (hub.take(), report.as_mut()) {
                        finish_hub(h, r, name, &mut read);
                    }
                } else if tag.eq_ignore_ascii_case("MTR") {
                    if let Some(r) = report.take() {
                        let trace = finish(r, hub.take(), name, &mut read);
                        read.traces.push(trace);
                    }
                } else if let Some(h) = hub.as_mut() {
                    h.field = None;
                }
            }
            Item::Text { text: t, at } => {
                if let Some(h) = hub.as_mut() {
                    if let Some(field) = h.field.take() {
                        h.set(&field, unescape(t.trim()));
                    }
                    continue;
                }
                if report.is_some() {
                    continue;
                }
                // Text outside the reports: prompts, commands, prose.
                let first = line_number(&starts, at);
                for (k, l) in t.lines().enumerate() {
                    let l = clean(l);
                    let lt = l.trim();
                    let line = first + k;
                    if lt.is_empty()
                        || line == warned_line
                        || command_args(lt, &["mtr"]).is_some()
                        || lt.ends_with(['$', '#'])
                    {
                        continue;
                    }
                    warned_line = line;
                    read.skip(
                        format!("{name}:{line}"),
                        format!("not part of an mtr --xml report: `{}`", quote(lt)),
                    );
                }
            }
        }
    }
    if let Some(r) = report.take() {
        let trace = finish(r, hub.take(), name, &mut read);
        read.traces.push(trace);
    }
    if read.traces.is_empty() && read.skipped.is_empty() {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "no mtr --xml report in input (no <MTR> or <HUB> element)".into(),
        });
    }
    Ok(read)
}

fn finish(mut r: Report, hub: Option<Hub>, name: &str, read: &mut Read) -> Trace {
    if let Some(h) = hub {
        finish_hub(h, &mut r, name, read);
    }
    Trace {
        target: r.target,
        origin: r.origin,
        hops: r.hops.into_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_decode_and_unknown_ones_stay() {
        assert_eq!(
            unescape("a &amp; b &lt;c&gt; &quot;&apos;"),
            "a & b <c> \"'"
        );
        assert_eq!(unescape("&#65;&#x42;"), "AB");
        assert_eq!(unescape("&nbsp; & &#xZZ;"), "&nbsp; & &#xZZ;");
    }

    #[test]
    fn tags_with_quoted_and_bare_attributes() {
        let items = scan("<?xml version=\"1.0\"?>\n<HUB COUNT=1 HOST='a&amp;b'/><x>t</x>");
        assert_eq!(items.first(), Some(&Item::Text { text: "\n", at: 21 }));
        match items.get(1) {
            Some(Item::Start {
                name,
                attrs,
                closed,
                ..
            }) => {
                assert_eq!(*name, "HUB");
                assert_eq!(attrs, &vec![("COUNT", "1".into()), ("HOST", "a&b".into())]);
                assert!(*closed);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(items.len(), 5);
        // A cut tag ends the scan.
        assert_eq!(scan("<MTR SRC=\"a").len(), 0);
    }
}
