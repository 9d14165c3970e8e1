//! Unit tests of DNS enrichment: parsing, cache, limiter, and the
//! resolver against a loopback server where one is needed.
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn cymru_names_v4_and_v6() {
    assert_eq!(
        cymru_query_name(ip("219.158.39.54")),
        "54.39.158.219.origin.asn.cymru.com."
    );
    assert_eq!(
        cymru_query_name(ip("2001:db8::567:89ab")),
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.origin6.asn.cymru.com."
    );
    // IPv4-mapped IPv6 is asked about as IPv4.
    assert_eq!(
        cymru_query_name(ip("::ffff:219.158.39.54")),
        "54.39.158.219.origin.asn.cymru.com."
    );
}

#[test]
fn ptr_names_v4_and_v6() {
    assert_eq!(ptr_query_name(ip("192.0.2.1")), "1.2.0.192.in-addr.arpa.");
    assert_eq!(
        ptr_query_name(ip("2001:db8::567:89ab")),
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    );
    assert_eq!(ptr_query_name(ip("0.0.0.0")), "0.0.0.0.in-addr.arpa.");
}

#[test]
fn parse_single_origin() {
    let o = parse_cymru_txt("4837 | 219.158.0.0/17 | CN | apnic | 2001-06-25").unwrap();
    assert_eq!(
        o,
        CymruOrigin {
            asns: vec![4837],
            prefix: "219.158.0.0/17".parse().unwrap(),
            country: "CN".into(),
            registry: "apnic".into(),
            allocated: "2001-06-25".into(),
        }
    );
    assert_eq!(o.asn(), Some(4837));
}

#[test]
fn parse_multi_origin_extra_spaces_and_quotes() {
    let o = parse_cymru_txt("\"  4837   9929 4837|210.52.109.0/24|CN |  apnic|  \"").unwrap();
    assert_eq!(o.asns, vec![4837, 9929]);
    assert_eq!(o.prefix, "210.52.109.0/24".parse::<IpNet>().unwrap());
    assert_eq!(o.registry, "apnic");
    assert_eq!(o.allocated, "");
}

#[test]
fn parse_empty_and_missing_trailing_fields() {
    let o = parse_cymru_txt("AS131279 | 175.45.176.0/22 |  |  | ").unwrap();
    assert_eq!(o.asns, vec![131279]);
    assert_eq!(o.country, "");
    assert_eq!(o.registry, "");
    let o = parse_cymru_txt("20485 | 188.43.0.0/16").unwrap();
    assert_eq!(o.asns, vec![20485]);
    assert_eq!(o.country, "");
    assert_eq!(o.allocated, "");
}

#[test]
fn parse_v6_prefix_and_host_bits() {
    let o = parse_cymru_txt("4837 | 2408:8000::/24 | CN | apnic | 2010-06-17").unwrap();
    assert_eq!(o.prefix, "2408:8000::/24".parse::<IpNet>().unwrap());
    let o = parse_cymru_txt("4837 | 219.158.39.0/17 | CN | apnic | ").unwrap();
    assert_eq!(o.prefix, "219.158.0.0/17".parse::<IpNet>().unwrap());
}

#[test]
fn parse_garbage_is_an_error_naming_the_text() {
    let cases = [
        "",
        "|",
        "hello world",
        "4837 219.158.0.0/17",
        "x | 219.158.0.0/17 | CN | apnic | 2001",
        "4837 | not-a-prefix | CN",
        "4837 | 219.158.0.1 | CN",
        "4837 | 219.158.0.0/33",
        "0 | 219.158.0.0/17",
        "99999999999 | 219.158.0.0/17",
        " | 219.158.0.0/17 | CN",
        "1 | 10.0.0.0/8 | a | b | c | d",
        "4837 | 219.158.0.0/17\n| CN",
        "\u{0} | ::/0",
    ];
    for case in cases {
        let err = parse_cymru_txt(case).expect_err(case);
        let msg = err.to_string();
        assert!(
            matches!(err, DnsError::MalformedTxt { .. }),
            "{case:?}: {msg}"
        );
        assert!(
            msg.contains(&format!("{case:?}")),
            "{case:?} not named in {msg}"
        );
    }
}

#[test]
fn parse_long_text_is_refused_and_quoted_short() {
    let long = format!("4837 | 219.158.0.0/17 | {}", "x".repeat(5000));
    let msg = parse_cymru_txt(&long).unwrap_err().to_string();
    assert!(msg.contains("more than the 1024"), "{msg}");
    assert!(
        msg.len() < 700,
        "message not shortened: {} bytes",
        msg.len()
    );
}

#[test]
fn parse_never_panics_on_odd_bytes() {
    for s in [
        "||||",
        "é | ::/0",
        "4837 | ::/0 | 🦀 | | ",
        "AS | 1.0.0.0/8",
        "as7 | 1.0.0.0/8",
    ] {
        let _ = parse_cymru_txt(s);
    }
    assert_eq!(parse_cymru_txt("as7 | 1.0.0.0/8").unwrap().asns, vec![7]);
}

#[test]
fn unattributable_ranges() {
    for s in [
        "0.0.0.0",
        "0.1.2.3",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "ff02::1",
        "fd00::1",
        "fc00::1",
        "fe80::1",
        "fec0::1",
        "::ffff:10.0.0.1",
    ] {
        assert!(is_unattributable(ip(s)), "{s}");
    }
    for s in [
        "219.158.39.54",
        "100.63.255.255",
        "100.128.0.0",
        "172.32.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "203.0.113.9",
        "2001:db8::1",
        "2408:8000::1",
    ] {
        assert!(!is_unattributable(ip(s)), "{s}");
    }
}

#[test]
fn ttl_cache_expires_and_evicts_oldest() {
    let t0 = Instant::now();
    let mut c: TtlCache<u32, &str> = TtlCache::new(2);
    c.insert(1, "a", t0 + Duration::from_secs(10), t0);
    c.insert(2, "b", t0 + Duration::from_secs(10), t0);
    c.insert(3, "c", t0 + Duration::from_secs(10), t0);
    assert_eq!(c.len(), 2);
    assert_eq!(c.get(&1, t0), None, "oldest evicted");
    assert_eq!(c.get(&2, t0), Some(&"b"));
    assert_eq!(c.get(&3, t0 + Duration::from_secs(10)), None, "expired");
    assert_eq!(c.len(), 1, "expired entry removed on read");
}

#[test]
fn ttl_cache_full_drops_expired_before_live() {
    let t0 = Instant::now();
    let mut c: TtlCache<u32, u32> = TtlCache::new(2);
    c.insert(1, 1, t0 + Duration::from_secs(100), t0);
    c.insert(2, 2, t0 + Duration::from_secs(1), t0);
    let later = t0 + Duration::from_secs(5);
    c.insert(3, 3, later + Duration::from_secs(100), later);
    assert_eq!(c.get(&1, later), Some(&1), "live old entry kept");
    assert_eq!(c.get(&3, later), Some(&3));
    // Re-inserting a key replaces it and moves it to the young end.
    c.insert(1, 10, later + Duration::from_secs(100), later);
    c.insert(4, 4, later + Duration::from_secs(100), later);
    assert_eq!(c.get(&3, later), None);
    assert_eq!(c.get(&1, later), Some(&10));
}

#[test]
fn token_bucket_bursts_then_refills() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(2, t0);
    assert!(b.try_take(t0).is_ok());
    assert!(b.try_take(t0).is_ok());
    let wait = b.try_take(t0).unwrap_err();
    assert!(wait <= Duration::from_millis(500) && wait > Duration::from_millis(400));
    assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
    assert!(b.try_take(t0 + Duration::from_millis(500)).is_err());
    // Never more than the burst after a long pause.
    let late = t0 + Duration::from_secs(60);
    assert!(b.try_take(late).is_ok());
    assert!(b.try_take(late).is_ok());
    assert!(b.try_take(late).is_err());
}

#[test]
fn invalid_config_names_every_problem() {
    let cfg = DnsConfig {
        server: "0.0.0.0:0".parse().unwrap(),
        rate_per_sec: 0,
        timeout: Duration::ZERO,
        max_cache_entries: 0,
        ..DnsConfig::default()
    };
    let msg = Enricher::new(cfg).unwrap_err().to_string();
    for needle in [
        "port 0",
        "0.0.0.0:0",
        "rate_per_sec 0",
        "timeout 0s",
        "max_cache_entries 0",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from {msg}");
    }
}

#[test]
fn built_without_runtime_and_request_outside_runtime_is_dropped() {
    // Nothing is sent: there is no runtime to send from.
    let e = Enricher::new(DnsConfig::default()).unwrap();
    e.request(ip("192.0.2.1"));
    assert_eq!(e.stats().dropped, 1);
    assert_eq!(e.stats().queries, 0);
    assert_eq!(e.cached_asn(ip("192.0.2.1")), None);
}

#[test]
fn merge_prefers_longest_prefix_and_merges_same_prefix() {
    let a = parse_cymru_txt("4837 | 219.158.0.0/17 | CN | apnic |").unwrap();
    let b = parse_cymru_txt("4808 | 219.158.32.0/20 | CN | apnic |").unwrap();
    let c = parse_cymru_txt("9929 | 219.158.32.0/20 | CN | apnic |").unwrap();
    let best = merge_best(Some(merge_best(Some(a.clone()), b)), c);
    assert_eq!(best.asns, vec![4808, 9929]);
    assert_eq!(best.prefix, "219.158.32.0/20".parse::<IpNet>().unwrap());
    assert_eq!(merge_best(Some(best.clone()), a).prefix, best.prefix);
}
