//! Every reply parser on arbitrary bytes: none may panic.
//! Run: cd agent/fuzz && cargo +nightly fuzz run parse_reply
#![no_main]

use libfuzzer_sys::fuzz_target;
use tumen_agent::packet::{parse_icmpv4, parse_icmpv6, parse_tcp_v4, parse_tcp_v6};

fuzz_target!(|data: &[u8]| {
    let from = std::net::Ipv6Addr::LOCALHOST;
    let _ = parse_icmpv4(data);
    let _ = parse_icmpv6(data, from, Some(64));
    let _ = parse_tcp_v4(data);
    let _ = parse_tcp_v6(data, from, None);
});
