//! Windows `tracert` (and the first part of `pathping`), in any language
//! Windows ships, and in files saved in a legacy code page.
//!
//! ```text
//! Tracing route to dns.google [8.8.8.8]
//!   2     9 ms     8 ms     9 ms  host.example [203.0.113.1]
//! ```
//!
//! A header (`Tracing route to NAME [ADDR]`, `Tracing route to ADDR over a
//! maximum of 30 hops`, and its translations: `Routenverfolgung zu`,
//! `Détermination de l'itinéraire vers`, `Traza a la dirección`,
//! `Rastreando a rota para`, `Трассировка маршрута к`, `通过最多 30 个跃点跟踪`
//! then `到 X 的路由`, `X へのルートをトレースしています`, `X(으)로 가는 경로 추적`,
//! `Traccia instradamento verso`, `Traceren van de route naar`, `Śledzenie
//! trasy do`, ...) starts a trace; its target is the address in brackets,
//! or the host when it is an address. Words are not needed: a line with an
//! address followed by the "maximum of 30 hops" line or by a hop line is a
//! header too, so a header whose words arrive as U+FFFD (a Russian or
//! German file saved in code page 866/850 and decoded as UTF-8) still
//! gives its target.
//!
//! A hop line is the hop number, one column per probe (`*`, `<1 ms`,
//! `12 ms`, whatever the unit is called: `ms`, `мс`, `毫秒`, or garbage from
//! a legacy code page) and then who answered: `ADDR`, `NAME [ADDR]`, or a
//! message (`Request timed out.` and its translations: a silent hop).
//! `ADDR reports: Destination host unreachable.` (and translations) gives
//! `!H`; net `!N`, protocol `!P`, prohibited `!X`. A hop whose probes
//! answered but whose address was redacted (`x.x.x.x`, `***.***.***.***`,
//! `104.18.x.x`) is hidden. A `[ADDR` cut by the terminal's line wrap is
//! joined with the next line. Hop numbers that do not follow on start a
//! new trace without target.
//!
//! Skipped silently: blank lines, the "maximum of 30 hops" line, `Trace
//! complete.` and its translations, prompts and command lines (`C:\>tracert
//! x`), `pathping`'s statistics part and its hop 0 (the source host), and
//! lines of a legacy code page that carry no address. Anything else is
//! skipped with a warning. An input with no sign of tracert (its words, or
//! a hop line with the RTT columns before the address, or stars followed
//! by a message) is refused, so that Linux traceroute text is never read
//! as tracert.

use std::net::IpAddr;

use super::{empty_hop, parse_addr, push_addr, push_annotation, push_name, Format, Read};
use crate::model::{Hop, InputError, Trace};

/// Lowercase fragments of the header line in the languages Windows ships.
const HEADER_WORDS: &[&str] = &[
    "tracing route to",
    "routenverfolgung zu",
    "détermination de l'itinéraire",
    "détermination de l’itinéraire",
    "determination de l'itineraire",
    "traza a la dirección",
    "traza a la direccion",
    "traza a ",
    "rastreando a rota",
    "a rastrear a rota",
    "rastreio da rota",
    "трассировка маршрута",
    "跃点跟踪",
    "躍點上追蹤",
    "躍點追蹤",
    "へのルートをトレース",
    "경로 추적",
    "traccia instradamento",
    "rilevazione instradamento",
    "traceren van de route",
    "route traceren naar",
    "śledzenie trasy",
    "sledzenie trasy",
    "izleniyor",
    "trasování trasy",
];

/// Lowercase fragments of the "over a maximum of 30 hops" line.
const MAX_HOPS_WORDS: &[&str] = &[
    "over a maximum of",
    "über maximal",
    "ueber maximal",
    "avec un maximum de",
    "sobre un máximo de",
    "sobre caminos de",
    "com no máximo",
    "com um máximo de",
    "с максимальным числом",
    "経由するホップ数",
    "최대",
    "su un massimo di",
    "via maximaal",
    "z maksymalną",
    "en fazla",
];

/// Lowercase fragments of `Trace complete.`.
const TRAILER_WORDS: &[&str] = &[
    "trace complete",
    "ablaufverfolgung beendet",
    "itinéraire déterminé",
    "itineraire determine",
    "traza completa",
    "rastreamento concluído",
    "rastreio concluído",
    "трассировка завершена",
    "跟踪完成",
    "追蹤完成",
    "トレースを完了しました",
    "추적을 완료했습니다",
    "traccia completata",
    "trace is voltooid",
    "trace voltooid",
    "śledzenie zakończone",
    "izleme tamamlandı",
];

/// Lowercase fragments of `pathping`'s statistics part.
const STATISTICS_WORDS: &[&str] = &[
    "statisti",
    "statístic",
    "estadíst",
    "статист",
    "统计",
    "統計",
    "node/link",
    "lost/sent",
];

/// How sure this reader is that `text` is tracert output: a header in any
/// language is near certain; hop lines whose RTT columns come before the
/// address (`  1    <1 ms    <1 ms    <1 ms  192.0.2.1`), which no other
/// traceroute prints, are a good sign, and `Trace complete.` alone a
/// weaker one.
pub(crate) fn sniff(text: &str) -> u8 {
    let mut score = 0;
    for line in text.lines().take(2000) {
        let t = unquote(line);
        if t.is_empty() {
            continue;
        }
        let tokens = hop_tokens(t);
        if tokens
            .as_ref()
            .is_some_and(|(_, tokens)| windows_shaped(tokens))
        {
            score = score.max(60);
            continue;
        }
        if tokens.is_some() {
            continue;
        }
        let lower = t.to_lowercase();
        if contains_any(&lower, HEADER_WORDS) {
            return 90;
        }
        if contains_any(&lower, TRAILER_WORDS) {
            // A trailer alone is weaker than another tool's own header
            // (`Trace complete.` also ends other pastes).
            score = score.max(50);
        }
    }
    score
}

/// A line without the forum quote markers (`> `) and surrounding spaces.
fn unquote(line: &str) -> &str {
    let mut t = line.trim();
    while let Some(rest) = t.strip_prefix('>') {
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            break;
        }
        t = rest.trim_start();
    }
    t
}

fn contains_any(lower: &str, words: &[&str]) -> bool {
    words.iter().any(|w| lower.contains(w))
}

/// The hop number and the other tokens of a hop line, or `None` when the
/// line is not one: a number (0..=255) followed by a probe column, an
/// address, or a name and a bracketed address.
fn hop_tokens(t: &str) -> Option<(u8, Vec<&str>)> {
    let mut tokens = t.split_whitespace();
    let first = tokens.next()?;
    if first.is_empty() || first.len() > 3 || !first.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ttl = first.parse::<u8>().ok()?;
    let rest: Vec<&str> = tokens.collect();
    let second = rest.first()?;
    let shaped = *second == "*"
        || rtt(second)
        || parse_addr(second).is_some()
        || looks_redacted(second)
        || rest.iter().any(|t| t.starts_with('['));
    shaped.then_some((ttl, rest))
}

/// An RTT column as tracert prints it: `12`, `<1`, `12ms` (integers; a
/// glued unit has no digits).
fn rtt(t: &str) -> bool {
    let t = t.strip_prefix('<').unwrap_or(t);
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let unit = t.get(digits..).unwrap_or("");
    digits > 0 && !unit.contains(|c: char| c.is_ascii_digit() || c == '.' || c == ':')
}

/// The unit after an RTT: `ms`, `мс`, `毫秒`, `ミリ秒`, or the garbage a
/// legacy code page leaves (no ASCII letters or digits).
fn unit(t: &str) -> bool {
    t == "ms"
        || t == "msec"
        || (t != "*"
            && !t.starts_with('[')
            && t.chars().count() <= 6
            && !t.contains(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == ':'))
}

/// An address the author hid: `x.x.x.x`, `***.***.***.***`, `104.18.x.x`.
fn looks_redacted(t: &str) -> bool {
    let t = t.trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')');
    (t.contains('.') || t.contains(':'))
        && t.contains(['x', 'X', '*'])
        && t.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '*' | 'x' | 'X'))
}

/// What the probe columns of a hop line held.
struct Probes {
    answered: usize,
    /// Index of the first token after the probe columns.
    end: usize,
    /// Tokens after the probe columns.
    rest: usize,
}

fn probes(tokens: &[&str]) -> Probes {
    let mut answered = 0;
    let mut i = 0;
    while let Some(&t) = tokens.get(i) {
        if t == "*" {
            i += 1;
            continue;
        }
        if rtt(t) {
            answered += 1;
            i += 1;
            // The unit, unless what follows is the address (an RTT that
            // lost its `ms`) or a name before a bracketed address.
            if let Some(&u) = tokens.get(i) {
                let bracket_next = tokens.get(i + 1).is_some_and(|n| n.starts_with('['));
                if unit(u) && !bracket_next {
                    i += 1;
                }
            }
            continue;
        }
        break;
    }
    Probes {
        answered,
        end: i,
        rest: tokens.len().saturating_sub(i),
    }
}

/// A hop line only tracert prints: probe columns before the address
/// (`<1 ms    <1 ms    <1 ms  192.0.2.1`), or stars followed by a message
/// (`*        *        *     Request timed out.`). Linux and BSD print the
/// address first and nothing after their stars.
fn windows_shaped(tokens: &[&str]) -> bool {
    let p = probes(tokens);
    let rest = tokens.get(p.end..).unwrap_or(&[]);
    p.end > 0
        && p.rest > 0
        && (p.answered > 0
            || !rest
                .iter()
                .any(|t| bare_addr(t).is_some() || bracketed(t).is_some()))
}

/// The address inside `[ADDR]` (possibly followed by text, `[8.8.8.8](으)로`).
fn bracketed(t: &str) -> Option<IpAddr> {
    let inner = t.strip_prefix('[')?;
    let inner = inner.get(..inner.find(']')?)?;
    parse_addr(inner)
}

/// An address token, without the punctuation prose puts around it and
/// without a glued suffix (`8.8.8.8(으)로`, `8.8.8.8:`).
fn bare_addr(t: &str) -> Option<IpAddr> {
    let t = t.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')' | '"' | '\''));
    if let Some(a) = parse_addr(t.trim_end_matches([':', '.'])) {
        return Some(a);
    }
    let end = t
        .find(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':' || c == '%'))
        .unwrap_or(t.len());
    parse_addr(t.get(..end)?.trim_end_matches([':', '.']))
}

/// The address a header-like line names: the bracketed one, else the
/// first token that is an address.
fn line_addr(t: &str) -> Option<IpAddr> {
    let tokens: Vec<&str> = t.split_whitespace().collect();
    tokens
        .iter()
        .find_map(|t| bracketed(t))
        .or_else(|| tokens.iter().find_map(|t| bare_addr(t)))
}

/// What a line of tracert output is.
enum Kind<'a> {
    Blank,
    Hop(u8, Vec<&'a str>),
    /// A header, known by its words, and its target.
    Header(Option<IpAddr>),
    /// A line with an address: a header if a hop or the max-hops line
    /// follows.
    Addressed(IpAddr),
    MaxHops,
    Trailer,
    /// Recognised as not a hop: prompts, pathping's statistics, legacy
    /// code page text.
    Ignored,
    Other,
}

fn classify(t: &str) -> Kind<'_> {
    if t.is_empty() {
        return Kind::Blank;
    }
    let lower = t.to_lowercase();
    // pathping's statistics: `  1    1ms     0/ 100 =  0%     0/ 100 =  0%  192.0.2.1`.
    if (t.contains('/') && t.contains('=') && t.contains('%'))
        || contains_any(&lower, STATISTICS_WORDS)
        || t.trim_matches('|').trim().is_empty()
    {
        return Kind::Ignored;
    }
    if let Some((ttl, tokens)) = hop_tokens(t) {
        return Kind::Hop(ttl, tokens);
    }
    if contains_any(&lower, TRAILER_WORDS) {
        return Kind::Trailer;
    }
    if is_prompt(t, &lower) {
        return Kind::Ignored;
    }
    if lower.starts_with("traceroute to ") || lower.starts_with("traceroute6 to ") {
        // Another tool's header, never tracert's.
        return Kind::Other;
    }
    if contains_any(&lower, HEADER_WORDS) {
        return Kind::Header(line_addr(t));
    }
    let addr = line_addr(t);
    if contains_any(&lower, MAX_HOPS_WORDS) && addr.is_none() {
        return Kind::MaxHops;
    }
    match addr {
        Some(a) => Kind::Addressed(a),
        None if t.contains('\u{fffd}') => Kind::Ignored,
        None => Kind::Other,
    }
}

/// A shell prompt or a command line: `C:\Users\x>tracert -d 8.8.8.8`,
/// `PS C:\> pathping x`, `$ tracert x`.
fn is_prompt(t: &str, lower: &str) -> bool {
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '>' || c == '$' || c == '#')
        .collect();
    if words
        .iter()
        .any(|w| matches!(*w, "tracert" | "tracert.exe" | "pathping" | "pathping.exe"))
    {
        return true;
    }
    let t = t.strip_prefix("PS ").unwrap_or(t);
    let b = t.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' && t.ends_with('>')
}

/// A short line with a number and no address: the "over a maximum of 30
/// hops" line in a language (or code page) without known words.
fn max_hops_like(t: &str) -> bool {
    !t.starts_with(|c: char| c.is_ascii_digit())
        && t.chars().count() <= 80
        && t.contains(|c: char| c.is_ascii_digit())
        && line_addr(t).is_none()
}

/// A trace being read.
struct Current {
    trace: Trace,
    last_ttl: u8,
    /// The header named no address yet (`通过最多 30 个跃点跟踪` then
    /// `到 X [ADDR] 的路由:`).
    awaiting_target: bool,
}

/// Every trace in `text`, as the registry reads it.
pub(crate) fn read(text: &str, name: &str) -> Result<Read, InputError> {
    let text = super::strip_bom(text);
    let mut read = Read::new(Format::Tracert);
    let lines: Vec<&str> = text.lines().map(unquote).collect();
    let mut current: Option<Current> = None;
    let mut after_header = false;
    // Something only tracert prints: its words, or a hop line of its shape.
    let mut evidence = false;
    let mut i = 0;
    while let Some(&line) = lines.get(i) {
        let n = i + 1;
        i += 1;
        let kind = classify(line);
        if !matches!(kind, Kind::Blank) {
            // Only the line right after a header may be its max-hops line.
            let was = after_header;
            after_header = false;
            if was && max_hops_like(line) && !matches!(kind, Kind::Hop(..)) {
                continue;
            }
        }
        match kind {
            Kind::Blank | Kind::Ignored => {}
            Kind::MaxHops => evidence = true,
            Kind::Trailer => {
                evidence = true;
                finish(&mut current, &mut read);
            }
            Kind::Header(target) => {
                evidence = true;
                finish(&mut current, &mut read);
                current = Some(Current {
                    trace: Trace {
                        target,
                        origin: format!("{name}:{n}"),
                        hops: Vec::new(),
                    },
                    last_ttl: 0,
                    awaiting_target: target.is_none(),
                });
                after_header = true;
            }
            Kind::Addressed(addr) => {
                if let Some(c) = current.as_mut().filter(|c| c.awaiting_target) {
                    c.trace.target = Some(addr);
                    c.awaiting_target = false;
                    after_header = true;
                } else if header_follows(&lines, i)
                    && !current
                        .as_ref()
                        .is_some_and(|c| c.trace.hops.is_empty() && c.trace.target.is_some())
                {
                    // (Not right after a header that named its target: that
                    // is prose between the header and the hops.)
                    finish(&mut current, &mut read);
                    current = Some(Current {
                        trace: Trace {
                            target: Some(addr),
                            origin: format!("{name}:{n}"),
                            hops: Vec::new(),
                        },
                        last_ttl: 0,
                        awaiting_target: false,
                    });
                    after_header = true;
                } else {
                    read.skip(
                        format!("{name}:{n}"),
                        format!("not a tracert line: {line:?}"),
                    );
                }
            }
            Kind::Hop(ttl, mut tokens) => {
                // A `[ADDR` cut by the terminal's line wrap.
                let mut joined = String::new();
                if let Some(last) = tokens.last() {
                    if last.contains('[') && !last.contains(']') {
                        if let Some(next) = lines.get(i) {
                            joined = format!("{last}{}", next.trim());
                            i += 1;
                        }
                    }
                }
                if !joined.is_empty() {
                    tokens.pop();
                    tokens.push(&joined);
                }
                if ttl == 0 {
                    // pathping's hop 0: the source host itself.
                    continue;
                }
                evidence |= windows_shaped(&tokens);
                let Some(hop) = parse_hop(ttl, &tokens) else {
                    read.skip(
                        format!("{name}:{n}"),
                        format!("hop {ttl}: no probe column and no address: {line:?}"),
                    );
                    continue;
                };
                let follows_on = current
                    .as_ref()
                    .is_some_and(|c| c.trace.hops.is_empty() || c.last_ttl < ttl);
                if !follows_on {
                    finish(&mut current, &mut read);
                    current = Some(Current {
                        trace: Trace {
                            target: None,
                            origin: format!("{name}:{n}"),
                            hops: Vec::new(),
                        },
                        last_ttl: 0,
                        awaiting_target: false,
                    });
                }
                if let Some(c) = current.as_mut() {
                    c.awaiting_target = false;
                    c.last_ttl = ttl;
                    c.trace.hops.push(hop);
                }
            }
            Kind::Other => read.skip(
                format!("{name}:{n}"),
                format!("not a tracert line: {line:?}"),
            ),
        }
    }
    finish(&mut current, &mut read);
    if !evidence {
        return Err(InputError {
            origin: format!("{name}:1"),
            what: "not Windows tracert output: no `Tracing route to` header or `Trace \
                   complete.` (in any language) and no hop line with its RTT columns before \
                   the address"
                .to_string(),
        });
    }
    if read.traces.is_empty() {
        return Err(read.skipped.first().cloned().unwrap_or(InputError {
            origin: format!("{name}:1"),
            what: "no tracert output: no `Tracing route to` header (in any language) and no \
                   hop line"
                .to_string(),
        }));
    }
    Ok(read)
}

/// Whether the next non-blank line after index `i` (0-based, the line
/// after the candidate header) is a hop line or a max-hops line.
fn header_follows(lines: &[&str], i: usize) -> bool {
    let Some(next) = lines.iter().skip(i).find(|l| !l.is_empty()) else {
        return false;
    };
    match classify(next) {
        Kind::Hop(..) | Kind::MaxHops => true,
        Kind::Other | Kind::Ignored => max_hops_like(next),
        _ => false,
    }
}

fn finish(current: &mut Option<Current>, read: &mut Read) {
    if let Some(c) = current.take() {
        read.traces.push(c.trace);
    }
}

/// One hop from the tokens after its number; `None` when there is neither
/// a probe column nor an address (`  1  General failure.`).
fn parse_hop(ttl: u8, tokens: &[&str]) -> Option<Hop> {
    let mut hop = empty_hop(ttl);
    let p = probes(tokens);
    let rest = tokens.get(p.end..).unwrap_or(&[]);
    let mut found: Option<(usize, IpAddr)> = None;
    for (k, t) in rest.iter().enumerate() {
        if let Some(a) = bracketed(t) {
            found = Some((k, a));
            if let Some(name) = k.checked_sub(1).and_then(|j| rest.get(j)) {
                if parse_addr(name).is_none() && !name.starts_with('[') {
                    push_addr(&mut hop, a);
                    push_name(&mut hop, a, name);
                }
            }
            break;
        }
    }
    if found.is_none() {
        found = rest
            .iter()
            .enumerate()
            .take(2)
            .find_map(|(k, t)| bare_addr(t).map(|a| (k, a)));
    }
    match found {
        Some((k, addr)) => {
            push_addr(&mut hop, addr);
            let after: Vec<&str> = rest.iter().skip(k + 1).copied().collect();
            if let Some(annotation) = unreachable(&after.join(" ")) {
                push_annotation(&mut hop, annotation);
            }
        }
        None => {
            let redacted = rest.iter().take(2).any(|t| looks_redacted(t));
            if p.answered > 0 || redacted {
                // Something answered; the author did not show its address.
                hop.hidden = true;
            } else if p.end == 0 {
                return None;
            }
        }
    }
    Some(hop)
}

/// The annotation for a `reports: Destination ... unreachable.` message
/// (in any of the languages), or `None`.
fn unreachable(text: &str) -> Option<&'static str> {
    let l = text.to_lowercase();
    if l.trim().is_empty() {
        return None;
    }
    let any = |ws: &[&str]| ws.iter().any(|w| l.contains(w));
    if any(&[
        "protocol",
        "protokol",
        "протокол",
        "协议",
        "協定",
        "プロトコル",
        "프로토콜",
    ]) {
        Some("!P")
    } else if any(&[
        "prohibit",
        "verboten",
        "interdit",
        "prohibid",
        "proibid",
        "запрещ",
        "禁止",
    ]) {
        Some("!X")
    } else if any(&[
        "host",
        "hôte",
        "hote",
        "узел",
        "主机",
        "主機",
        "ホスト",
        "호스트",
    ]) {
        Some("!H")
    } else if any(&[
        "net",
        "réseau",
        "reseau",
        "red de",
        "rede de",
        "rete di",
        "sieć",
        "сеть",
        "网",
        "網",
        "ネットワーク",
        "네트워크",
    ]) {
        Some("!N")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn rtt_columns_and_units() {
        assert!(rtt("<1"));
        assert!(rtt("12"));
        assert!(rtt("12ms"));
        assert!(!rtt("10.0.0.1"));
        assert!(!rtt("2001:db8::1"));
        assert!(!rtt("0.512"));
        assert!(unit("ms") && unit("мс") && unit("毫秒") && unit("\u{fffd}\u{fffd}"));
        assert!(!unit("host.example") && !unit("*") && !unit("[192.0.2.1]"));
    }

    #[test]
    fn header_targets() {
        assert_eq!(
            line_addr("Tracing route to dns.google [8.8.8.8]"),
            Some(ip("8.8.8.8"))
        );
        assert_eq!(
            line_addr("Tracing route to 8.8.8.8 over a maximum of 30 hops"),
            Some(ip("8.8.8.8"))
        );
        assert_eq!(
            line_addr("dns.google [8.8.8.8](으)로 가는 경로 추적"),
            Some(ip("8.8.8.8"))
        );
        assert_eq!(
            line_addr("8.8.8.8(으)로 가는 경로 추적"),
            Some(ip("8.8.8.8"))
        );
        assert_eq!(line_addr("Tracing route to example.com"), None);
    }

    #[test]
    fn unreachable_messages_in_languages() {
        assert_eq!(
            unreachable("reports: Destination host unreachable."),
            Some("!H")
        );
        assert_eq!(
            unreachable("reports: Destination net unreachable."),
            Some("!N")
        );
        assert_eq!(
            unreachable("reports: Destination protocol unreachable."),
            Some("!P")
        );
        assert_eq!(
            unreachable("meldet: Zielhost nicht erreichbar."),
            Some("!H")
        );
        assert_eq!(unreachable("回复: 无法访问目标网。"), Some("!N"));
        assert_eq!(unreachable("reports: Destination port unreachable."), None);
        assert_eq!(unreachable(""), None);
    }

    #[test]
    fn redacted_addresses() {
        assert!(looks_redacted("x.x.x.x"));
        assert!(looks_redacted("[***.***.***.***]"));
        assert!(looks_redacted("104.18.x.x"));
        assert!(!looks_redacted("192.0.2.1"));
        assert!(!looks_redacted("*"));
    }
}
