//! Pure parts of DNS enrichment: query names for Team Cymru's origin
//! service and the reverse tree, and the parsing of Cymru's TXT answers,
//! tested on exact strings. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::error::DnsError;

/// Longest TXT text [`parse_cymru_txt`] accepts; Team Cymru's lines are
/// well under 100 bytes.
pub(super) const MAX_TXT_LEN: usize = 1024;

/// How much of an offending text an error message quotes.
pub(super) const MAX_QUOTED_LEN: usize = 200;

/// One Team Cymru origin answer:
/// `ASN [ASN ...] | prefix | country | registry | allocated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CymruOrigin {
    /// Origin ASes of the prefix, in the order given, without duplicates;
    /// never empty. More than one means a multi-origin (MOAS) prefix.
    pub asns: Vec<u32>,
    /// The announced prefix covering the address (host bits cleared).
    pub prefix: IpNet,
    /// Country code of the allocation, as given; may be empty.
    pub country: String,
    /// Regional registry (`apnic`, `ripencc`, ...), as given; may be empty.
    pub registry: String,
    /// Allocation date, as given (`2001-06-25`); may be empty.
    pub allocated: String,
}

impl CymruOrigin {
    /// The first origin AS.
    pub fn asn(&self) -> Option<u32> {
        self.asns.first().copied()
    }
}

/// The TXT name of Team Cymru's origin lookup for `addr`, with the final
/// dot: `54.39.158.219.origin.asn.cymru.com.` for 219.158.39.54, the 32
/// reversed nibbles followed by `origin6.asn.cymru.com.` for IPv6. An
/// IPv4-mapped IPv6 address is treated as its IPv4 address.
pub fn cymru_query_name(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("{}origin.asn.cymru.com.", reversed_octets(v4)),
        IpAddr::V6(v6) => format!("{}origin6.asn.cymru.com.", reversed_nibbles(v6)),
    }
}

/// The PTR name for `addr`, with the final dot:
/// `54.39.158.219.in-addr.arpa.` or the 32 reversed nibbles followed by
/// `ip6.arpa.`. An IPv4-mapped IPv6 address is treated as its IPv4 address.
pub fn ptr_query_name(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("{}in-addr.arpa.", reversed_octets(v4)),
        IpAddr::V6(v6) => format!("{}ip6.arpa.", reversed_nibbles(v6)),
    }
}

pub(super) fn reversed_octets(addr: Ipv4Addr) -> String {
    let [a, b, c, d] = addr.octets();
    format!("{d}.{c}.{b}.{a}.")
}

pub(super) fn reversed_nibbles(addr: Ipv6Addr) -> String {
    let mut out = String::with_capacity(64);
    for byte in addr.octets().iter().rev() {
        out.push(hex_digit(byte & 0x0f));
        out.push('.');
        out.push(hex_digit(byte >> 4));
        out.push('.');
    }
    out
}

pub(super) fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

/// Whether `addr` lies in space that no registry attributes to an AS
/// (`tumen_core::is_unattributable`, which inference uses too).
pub use tumen_core::is_unattributable;

/// Parses one Team Cymru origin text such as
/// `4837 | 219.158.0.0/17 | CN | apnic | 2001-06-25`. Several origin ASes
/// are separated by spaces (`4837 9929 | ...`), an `AS` prefix on a number
/// is accepted, spaces around fields and surrounding quotes are ignored,
/// and trailing fields may be empty or missing. Anything else is a
/// [`DnsError::MalformedTxt`] that quotes the text; this never panics.
pub fn parse_cymru_txt(txt: &str) -> Result<CymruOrigin, DnsError> {
    let malformed = |reason: String| DnsError::MalformedTxt {
        text: quote_prefix(txt),
        reason,
    };
    if txt.len() > MAX_TXT_LEN {
        return Err(malformed(format!(
            "{} bytes long, more than the {MAX_TXT_LEN} a Team Cymru line can be",
            txt.len()
        )));
    }
    if let Some(c) = txt.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(malformed(format!("contains the control character {c:?}")));
    }
    let body = txt.trim();
    let body = body
        .strip_prefix('"')
        .and_then(|b| b.strip_suffix('"'))
        .unwrap_or(body);
    let fields: Vec<&str> = body.split('|').map(str::trim).collect();
    if fields.len() < 2 {
        return Err(malformed(
            "no '|' separating the origin ASes from the prefix".to_string(),
        ));
    }
    if fields.len() > 5 {
        return Err(malformed(format!(
            "{} '|'-separated fields, at most 5 expected",
            fields.len()
        )));
    }

    let mut asns = Vec::new();
    for token in fields[0].split_whitespace() {
        let digits = token
            .strip_prefix("AS")
            .or_else(|| token.strip_prefix("as"))
            .unwrap_or(token);
        let asn: u32 = digits.parse().map_err(|_| {
            malformed(format!(
                "origin AS {token:?} is not a number from 1 to 4294967295"
            ))
        })?;
        if asn == 0 {
            return Err(malformed(
                "origin AS 0 is reserved, not an origin".to_string(),
            ));
        }
        if !asns.contains(&asn) {
            asns.push(asn);
        }
    }
    if asns.is_empty() {
        return Err(malformed("no origin AS before the first '|'".to_string()));
    }

    let prefix_text = fields[1];
    if !prefix_text.contains('/') {
        return Err(malformed(format!("prefix {prefix_text:?} has no /length")));
    }
    let prefix: IpNet = prefix_text
        .parse()
        .map_err(|_| malformed(format!("prefix {prefix_text:?} is not an IP prefix")))?;
    let field = |i: usize| fields.get(i).map(|s| (*s).to_string()).unwrap_or_default();
    Ok(CymruOrigin {
        asns,
        prefix: prefix.trunc(),
        country: field(2),
        registry: field(3),
        allocated: field(4),
    })
}

/// The start of `text`, short enough to put in an error message.
pub(super) fn quote_prefix(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_LEN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Of two Team Cymru records, the one with the longer prefix; ASes of
/// records with the same prefix are merged.
pub(super) fn merge_best(best: Option<CymruOrigin>, next: CymruOrigin) -> CymruOrigin {
    let Some(mut best) = best else {
        return next;
    };
    if next.prefix == best.prefix {
        for asn in next.asns {
            if !best.asns.contains(&asn) {
                best.asns.push(asn);
            }
        }
        best
    } else if next.prefix.prefix_len() > best.prefix.prefix_len() {
        next
    } else {
        best
    }
}
