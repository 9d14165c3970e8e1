//! DNS enrichment against a tiny DNS server that each test starts on
//! 127.0.0.1 (UDP and TCP on the same port). The server answers TXT and
//! PTR from a table the test gives it, NXDOMAIN for anything else, can be
//! told to stay silent or to truncate UDP answers, and counts the queries
//! it receives so that tests can prove a cache hit sends nothing. No query
//! ever leaves the loopback interface.

mod dns_server;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dns_server::TestServer;
use tumen_collector::dns::{CymruOrigin, DnsConfig, DnsError, Enricher, REQUEST_QUEUE_CAPACITY};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const UNICOM: &str = "4837 | 219.158.0.0/17 | CN | apnic | 2001-06-25";

/// Polls `cond` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

#[tokio::test]
async fn v4_origin_lookup_returns_the_parsed_record() {
    let server = TestServer::start().await;
    server.txt("219.158.39.54", UNICOM, 300);
    let dns = server.enricher();

    let origin = dns.origin(ip("219.158.39.54")).await.unwrap();
    assert_eq!(
        origin,
        Some(CymruOrigin {
            asns: vec![4837],
            prefix: "219.158.0.0/17".parse().unwrap(),
            country: "CN".into(),
            registry: "apnic".into(),
            allocated: "2001-06-25".into(),
        })
    );
    assert_eq!(server.queries(), 1);
    assert_eq!(dns.stats().answers, 1);
    assert_eq!(dns.cached_asn(ip("219.158.39.54")), Some(4837));
}

#[tokio::test]
async fn v6_origin_lookup_asks_origin6_with_the_nibble_name() {
    let server = TestServer::start().await;
    // The name written out by hand, not by the function under test.
    server.txt_at(
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.8.0.4.2.origin6.asn.cymru.com.",
        "4837 | 2408:8000::/24 | CN | apnic | 2010-06-17",
        300,
    );
    let dns = server.enricher();

    let origin = dns.origin(ip("2408:8000::1")).await.unwrap().unwrap();
    assert_eq!(origin.asns, vec![4837]);
    assert_eq!(origin.prefix, "2408:8000::/24".parse().unwrap());
    assert_eq!(server.queries(), 1);
    // Another address of the /24, from the cached prefix.
    assert_eq!(dns.cached_asn(ip("2408:80ff::abcd")), Some(4837));
}

#[tokio::test]
async fn multi_origin_txt_gives_both_asns() {
    let server = TestServer::start().await;
    server.txt(
        "210.52.109.1",
        "4837 9929 | 210.52.109.0/24 | CN | apnic | 2004-03-12",
        300,
    );
    let dns = server.enricher();

    let origin = dns.origin(ip("210.52.109.1")).await.unwrap().unwrap();
    assert_eq!(origin.asns, vec![4837, 9929]);
    assert_eq!(dns.cached_asn(ip("210.52.109.1")), Some(4837));
}

#[tokio::test]
async fn cache_hits_send_no_query_even_for_other_addresses_in_the_prefix() {
    let server = TestServer::start().await;
    server.txt("219.158.39.54", UNICOM, 300);
    let dns = Enricher::new(DnsConfig {
        ptr: false,
        ..server.config()
    })
    .unwrap();

    let first = dns.origin(ip("219.158.39.54")).await.unwrap();
    assert_eq!(server.queries(), 1);
    let second = dns.origin(ip("219.158.39.54")).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(server.queries(), 1, "second lookup went to the server");
    assert_eq!(dns.cached_asn(ip("219.158.1.1")), Some(4837));
    assert_eq!(dns.cached_asn(ip("219.158.127.255")), Some(4837));
    assert_eq!(dns.cached_asn(ip("219.158.128.0")), None, "outside the /17");
    // request() of an address inside the cached prefix queues no origin
    // lookup (and PTR lookups are off here).
    dns.request(ip("219.158.2.2"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.queries(), 1);
    let stats = dns.stats();
    assert_eq!((stats.queries, stats.cache_hits), (1, 1));
}

#[tokio::test]
async fn answers_expire_with_their_ttl() {
    let server = TestServer::start().await;
    server.txt("219.158.39.54", UNICOM, 1);
    server.ptr("219.158.39.54", "short.example.net.", 1);
    let dns = server.enricher();

    assert!(dns.origin(ip("219.158.39.54")).await.unwrap().is_some());
    assert!(dns.ptr(ip("219.158.39.54")).await.unwrap().is_some());
    assert!(dns.origin(ip("219.158.39.54")).await.unwrap().is_some());
    assert_eq!(server.queries(), 2);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        dns.cached_asn(ip("219.158.39.54")),
        None,
        "expired entry served"
    );
    assert_eq!(
        dns.cached_ptr(ip("219.158.39.54")),
        None,
        "expired entry served"
    );
    assert!(dns.origin(ip("219.158.39.54")).await.unwrap().is_some());
    assert!(dns.ptr(ip("219.158.39.54")).await.unwrap().is_some());
    assert_eq!(server.queries(), 4, "expired answers were not asked again");
}

#[tokio::test]
async fn nxdomain_is_none_and_negatively_cached_for_negative_ttl() {
    let server = TestServer::start().await;
    let dns = Enricher::new(DnsConfig {
        negative_ttl: Duration::from_secs(1),
        ..server.config()
    })
    .unwrap();

    assert_eq!(dns.origin(ip("198.51.100.7")).await.unwrap(), None);
    assert_eq!(dns.ptr(ip("198.51.100.7")).await.unwrap(), None);
    assert_eq!(server.queries(), 2);
    assert_eq!(dns.origin(ip("198.51.100.7")).await.unwrap(), None);
    assert_eq!(dns.ptr(ip("198.51.100.7")).await.unwrap(), None);
    assert_eq!(server.queries(), 2, "negative answers were not cached");
    let stats = dns.stats();
    assert_eq!(
        (stats.nxdomain, stats.cache_hits, stats.failures),
        (2, 2, 0)
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(dns.origin(ip("198.51.100.7")).await.unwrap(), None);
    assert_eq!(server.queries(), 3, "negative answer outlived negative_ttl");
}

#[tokio::test]
async fn ptr_names_for_v4_and_v6() {
    let server = TestServer::start().await;
    server.ptr("203.0.113.9", "ae1.border.example.net.", 300);
    server.ptr("2001:db8::9", "xe-0-0-1.core.example.org.", 300);
    let dns = server.enricher();

    assert_eq!(
        dns.ptr(ip("203.0.113.9")).await.unwrap().as_deref(),
        Some("ae1.border.example.net")
    );
    assert_eq!(
        dns.ptr(ip("2001:db8::9")).await.unwrap().as_deref(),
        Some("xe-0-0-1.core.example.org")
    );
    assert_eq!(server.queries(), 2);
    assert_eq!(
        dns.cached_ptr(ip("2001:db8::9")).as_deref(),
        Some("xe-0-0-1.core.example.org")
    );
    assert_eq!(
        dns.ptr(ip("203.0.113.9")).await.unwrap().as_deref(),
        Some("ae1.border.example.net")
    );
    assert_eq!(server.queries(), 2);
}

#[tokio::test]
async fn silent_server_times_out_and_the_enricher_recovers() {
    let server = TestServer::start().await;
    server.txt("219.158.39.54", UNICOM, 300);
    server.set_silent(true);
    let dns = Enricher::new(DnsConfig {
        timeout: Duration::from_millis(300),
        ..server.config()
    })
    .unwrap();

    let start = Instant::now();
    let err = dns.origin(ip("219.158.39.54")).await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, DnsError::Timeout { .. }), "{err}");
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    let msg = err.to_string();
    assert!(msg.contains(&server.addr.to_string()), "{msg}");
    assert!(msg.contains("54.39.158.219.origin.asn.cymru.com."), "{msg}");
    assert!(server.queries() >= 1, "nothing reached the server");
    assert_eq!(dns.stats().failures, 1);
    assert_eq!(
        dns.cached_asn(ip("219.158.39.54")),
        None,
        "failure was cached"
    );

    server.set_silent(false);
    let origin = dns.origin(ip("219.158.39.54")).await.unwrap();
    assert_eq!(origin.map(|o| o.asns), Some(vec![4837]));
}

#[tokio::test]
async fn malformed_txt_is_an_error_naming_the_text() {
    let server = TestServer::start().await;
    server.txt("192.0.2.77", "this is not cymru", 300);
    server.txt(
        "192.0.2.78",
        "64500 | 192.0.2.0/24 | ZZ | lab | 2020-01-01",
        300,
    );
    let dns = server.enricher();

    let err = dns.origin(ip("192.0.2.77")).await.unwrap_err();
    assert!(matches!(err, DnsError::MalformedTxt { .. }), "{err}");
    assert!(err.to_string().contains("\"this is not cymru\""), "{err}");
    // Not cached: asked again.
    assert!(dns.origin(ip("192.0.2.77")).await.is_err());
    assert_eq!(server.queries(), 2);
    // The enricher still works.
    let ok = dns.origin(ip("192.0.2.78")).await.unwrap().unwrap();
    assert_eq!(ok.asns, vec![64500]);
}

#[tokio::test]
async fn answer_for_a_prefix_not_holding_the_address_is_refused() {
    let server = TestServer::start().await;
    server.txt("192.0.2.1", "64500 | 198.51.100.0/24 | ZZ | lab |", 300);
    let dns = server.enricher();

    let err = dns.origin(ip("192.0.2.1")).await.unwrap_err();
    assert!(matches!(err, DnsError::PrefixMismatch { .. }), "{err}");
    assert_eq!(dns.cached_asn(ip("198.51.100.1")), None);
}

#[tokio::test]
async fn rate_limit_refuses_lookups_beyond_the_burst() {
    let server = TestServer::start().await;
    for i in 1..=6 {
        server.txt(
            &format!("198.18.0.{i}"),
            "64501 | 198.18.0.0/15 | ZZ | lab |",
            300,
        );
    }
    let dns = Enricher::new(DnsConfig {
        rate_per_sec: 2,
        ..server.config()
    })
    .unwrap();

    let mut ok = 0;
    let mut limited = 0;
    for i in 1..=6 {
        match dns.origin(ip(&format!("198.18.0.{i}"))).await {
            Ok(Some(_)) => ok += 1,
            Err(DnsError::RateLimited {
                rate_per_sec: 2, ..
            }) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, limited), (2, 4));
    assert_eq!(server.queries(), 2, "a refused lookup reached the server");
    assert_eq!(dns.stats().rate_limited, 4);
    // Cache hits are not rate limited.
    assert!(dns.origin(ip("198.18.0.1")).await.unwrap().is_some());
}

#[tokio::test]
async fn request_answers_everything_in_the_background_at_the_rate() {
    let server = TestServer::start().await;
    let addrs: Vec<IpAddr> = (1..=5).map(|i| ip(&format!("192.0.2.{i}"))).collect();
    for (i, addr) in addrs.iter().enumerate() {
        server.txt(
            &addr.to_string(),
            &format!("{} | {addr}/32 | ZZ | lab |", 64510 + i),
            300,
        );
    }
    let dns = Enricher::new(DnsConfig {
        rate_per_sec: 2,
        ptr: false,
        ..server.config()
    })
    .unwrap();

    let start = Instant::now();
    for addr in &addrs {
        dns.request(*addr);
        dns.request(*addr); // already queued: no second query
    }
    let done = eventually(Duration::from_secs(6), || {
        addrs.iter().all(|a| dns.cached_asn(*a).is_some())
    })
    .await;
    let took = start.elapsed();
    assert!(done, "not all answered: {:?}", dns.stats());
    // Burst of 2, then one every 0.5 s: the fifth at about 1.5 s.
    assert!(
        took >= Duration::from_millis(1200),
        "rate not respected: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "too slow: {took:?}");
    for (i, addr) in addrs.iter().enumerate() {
        assert_eq!(dns.cached_asn(*addr), Some(64510 + i as u32));
    }
    assert_eq!(server.queries(), 5);
    // Everything cached: asking again queues nothing.
    for addr in &addrs {
        dns.request(*addr);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.queries(), 5);
    assert_eq!(dns.stats().rate_limited, 0, "the worker waited, not failed");
}

#[tokio::test]
async fn request_fills_the_ptr_cache_too() {
    let server = TestServer::start().await;
    server.txt("203.0.113.5", "64502 | 203.0.113.0/24 | ZZ | lab |", 300);
    server.ptr("203.0.113.5", "hop5.example.net.", 300);
    let dns = server.enricher();

    dns.request(ip("203.0.113.5"));
    let done = eventually(Duration::from_secs(3), || {
        dns.cached_ptr(ip("203.0.113.5")).is_some() && dns.cached_asn(ip("203.0.113.5")).is_some()
    })
    .await;
    assert!(done, "{:?}", dns.stats());
    assert_eq!(
        dns.cached_ptr(ip("203.0.113.5")).as_deref(),
        Some("hop5.example.net")
    );
    assert_eq!(server.queries(), 2);
}

#[tokio::test]
async fn full_request_queue_drops_and_counts() {
    let server = TestServer::start().await;
    let dns = Enricher::new(DnsConfig {
        rate_per_sec: 1,
        ptr: false,
        ..server.config()
    })
    .unwrap();

    // On this single-threaded runtime the worker cannot run before we
    // yield, so exactly the queue's capacity is accepted.
    let extra = 50;
    for i in 0..(REQUEST_QUEUE_CAPACITY + extra) {
        let addr = IpAddr::from([198, 18, (i / 256) as u8, (i % 256) as u8]);
        dns.request(addr);
    }
    assert_eq!(dns.stats().dropped, extra as u64);
}

#[tokio::test]
async fn unattributable_addresses_send_nothing() {
    let server = TestServer::start().await;
    let dns = server.enricher();

    for s in [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.0.1",
        "100.64.0.1",
        "224.0.0.5",
        "0.0.0.0",
        "::",
        "::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:192.168.0.1",
    ] {
        assert_eq!(dns.origin(ip(s)).await.unwrap(), None, "{s}");
        assert_eq!(dns.ptr(ip(s)).await.unwrap(), None, "{s}");
        assert_eq!(dns.cached_asn(ip(s)), None, "{s}");
        dns.request(ip(s));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.queries(), 0);
    assert_eq!(dns.stats().queries, 0);
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let server = TestServer::start().await;
    server.txt("219.158.39.54", UNICOM, 300);
    server.set_truncate_udp(true);
    let dns = server.enricher();

    let origin = dns.origin(ip("219.158.39.54")).await.unwrap();
    assert_eq!(origin.map(|o| o.asns), Some(vec![4837]));
    assert_eq!(server.tcp_queries(), 1);
}

#[tokio::test]
async fn several_txt_records_pick_the_longest_prefix() {
    let server = TestServer::start().await;
    server.txt("219.158.39.54", UNICOM, 300);
    server.txt(
        "219.158.39.54",
        "4808 | 219.158.32.0/20 | CN | apnic |",
        300,
    );
    let dns = server.enricher();

    let origin = dns.origin(ip("219.158.39.54")).await.unwrap().unwrap();
    assert_eq!(origin.asns, vec![4808]);
    assert_eq!(origin.prefix, "219.158.32.0/20".parse().unwrap());
}

#[tokio::test]
async fn disabled_lookups_send_nothing() {
    let server = TestServer::start().await;
    server.txt("219.158.39.54", UNICOM, 300);
    let dns = Enricher::new(DnsConfig {
        cymru: false,
        ptr: false,
        ..server.config()
    })
    .unwrap();

    assert_eq!(dns.origin(ip("219.158.39.54")).await.unwrap(), None);
    assert_eq!(dns.ptr(ip("219.158.39.54")).await.unwrap(), None);
    dns.request(ip("219.158.39.54"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.queries(), 0);
}
