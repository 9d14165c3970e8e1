//! What can go wrong in DNS enrichment.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

/// Errors of DNS enrichment.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// One or more settings cannot work.
    #[error("invalid DNS enrichment settings: {}", problems.join("; "))]
    InvalidConfig {
        /// Each problem, naming the setting, its value and a fix.
        problems: Vec<String>,
    },
    /// hickory-resolver refused to build a resolver.
    #[error("cannot set up a DNS resolver for {server}: {detail}")]
    Resolver {
        /// The configured server.
        server: SocketAddr,
        /// hickory's reason.
        detail: String,
    },
    /// A TXT text is not a Team Cymru origin line.
    #[error(
        "malformed Team Cymru TXT record {text:?}: {reason}; expected \
         \"ASN [ASN ...] | prefix | country | registry | allocated\" \
         (is the configured DNS server answering for origin.asn.cymru.com?)"
    )]
    MalformedTxt {
        /// The text (at most 200 characters of it).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Team Cymru answer names a prefix that does not hold the address
    /// that was asked about.
    #[error(
        "Team Cymru answer for {addr} names prefix {prefix}, which does not contain {addr}: \
         the DNS server at {server} answered for the wrong address; check that it forwards \
         origin.asn.cymru.com faithfully"
    )]
    PrefixMismatch {
        /// The address asked about.
        addr: IpAddr,
        /// The prefix the answer gave.
        prefix: IpNet,
        /// The configured server.
        server: SocketAddr,
    },
    /// The server did not answer in time.
    #[error(
        "DNS query for {name} to {server} got no answer within {timeout:?}: check that a DNS \
         server listens on {server} (the dns server setting), or raise the dns timeout"
    )]
    Timeout {
        /// The query name.
        name: String,
        /// The configured server.
        server: SocketAddr,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The query failed for another reason (SERVFAIL, REFUSED, I/O, ...).
    #[error("DNS query for {name} to {server} failed: {detail}; check the DNS server at {server}")]
    Query {
        /// The query name.
        name: String,
        /// The configured server.
        server: SocketAddr,
        /// hickory's reason.
        detail: String,
    },
    /// The query budget of this second is spent; nothing was sent.
    #[error(
        "DNS rate limit of {rate_per_sec}/s reached, no query sent for {addr}: retry later, \
         use Enricher::request (which waits its turn), or raise dns rate_per_sec"
    )]
    RateLimited {
        /// The address that was to be looked up.
        addr: IpAddr,
        /// The configured rate.
        rate_per_sec: u32,
    },
}
