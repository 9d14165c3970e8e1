//! The production network: which address families get raw sockets, the
//! sockets themselves and the ping clients, then the privilege drop. The
//! binary calls this at its edge; the runtime itself only needs a
//! [`Network`](crate::engine::Network) and is tested over the mock one.

use crate::config::Config;
use crate::engine::Ident;
use crate::net::RawNetwork;
use crate::ping::Pingers;
use crate::round::Destination;
use crate::sys::{self, SocketError};

/// Which address families have sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

impl Families {
    /// The families the destinations need; with a collector (`scheduled`),
    /// whose schedule may name any target inside the allow-list, also
    /// those the allow-list has.
    pub fn needed(config: &Config, dsts: &[Destination], scheduled: bool) -> Self {
        let allow = |v6| scheduled && config.allow.has_family(v6);
        Self {
            v4: dsts.iter().any(|d| d.addr.is_ipv4()) || allow(false),
            v6: dsts.iter().any(|d| d.addr.is_ipv6()) || allow(true),
        }
    }
}

/// The open sockets.
#[derive(Debug)]
pub struct Sockets {
    pub net: RawNetwork,
    pub pingers: Option<Pingers>,
    pub ident: Ident,
}

impl Sockets {
    /// Opens the raw sockets and, when echo requests are configured (or a
    /// schedule may ask for them), the ping clients. Must run inside a
    /// tokio runtime. Without ping sockets a scheduled agent still runs:
    /// echo requests from a schedule are then refused.
    pub fn open(config: &Config, families: Families, scheduled: bool) -> Result<Self, SocketError> {
        let net = RawNetwork::open(config.allow.clone(), families.v4, families.v6)?;
        let seed = ident_seed();
        let pingers = if config.probe.ping_count > 0 {
            Some(Pingers::open(families.v4, families.v6, seed ^ 0x8000)?)
        } else if scheduled {
            Pingers::open(families.v4, families.v6, seed ^ 0x8000).ok()
        } else {
            None
        };
        Ok(Self {
            net,
            pingers,
            ident: Ident::from_seed(seed),
        })
    }
}

/// Drops every capability and sets `no_new_privs` (the sockets are open:
/// nothing else needs a privilege); says what it could not drop.
pub fn drop_privileges() {
    for note in sys::drop_privileges() {
        tracing::warn!("privileges: {note}");
    }
    let left = sys::effective_caps();
    if !left.is_empty() {
        tracing::warn!("still holding capabilities {left:?}");
    }
}

/// A 16-bit identifier for this agent's probes: the pid mixed with
/// randomness, so two agents on one host do not take each other's replies.
fn ident_seed() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    (std::process::id() as u16) ^ u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::round::destinations;
    use crate::runtime::testutil::config;

    #[test]
    fn families_follow_the_destinations_and_with_a_collector_the_allow_list() {
        let c = config(
            "targets = [\"198.18.176.0/24\"]\nallow = [\"198.18.176.0/22\", \"2001:db8::/32\"]",
        );
        let d = destinations(&c.targets, c.probe.hosts).expect("dsts");
        assert_eq!(
            Families::needed(&c, &d, false),
            Families {
                v4: true,
                v6: false
            }
        );
        assert_eq!(
            Families::needed(&c, &d, true),
            Families { v4: true, v6: true }
        );
        let c = config("targets = [\"2001:db8:1::/48\"]");
        let d = destinations(&c.targets, c.probe.hosts).expect("dsts");
        assert_eq!(
            Families::needed(&c, &d, true),
            Families {
                v4: false,
                v6: true
            }
        );
    }
}
