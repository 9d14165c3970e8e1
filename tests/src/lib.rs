//! The Tumen lab: a small, faithful Internet of network namespaces.
//!
//! Tumen sends packets, and its machines must never send them to the real
//! Internet. Every test, benchmark and demo that probes therefore runs in a
//! lab built from a scenario file ([`scenario`]): vantage points, transit and
//! border routers and a target network, wired with veth pairs, static and
//! ECMP routes, and per-router behaviour (silence, loss, admin-prohibited
//! filters, ICMP rate limits) in nftables and sysctls ([`plan`]). [`lab`]
//! brings it up and down; [`expect`] says which hops a trace must show;
//! [`oracle`] runs Linux `traceroute` and `scamper` to check it.

pub mod bgp;
pub mod bird;
pub mod browser;
pub mod demo;
pub mod expect;
pub mod lab;
pub mod oracle;
pub mod plan;
pub mod replay;
pub mod scenario;
pub mod stack;

pub use expect::{Hop, Mark, Model};
pub use lab::{Lab, LabError, Routing};
pub use scenario::{Proto, Scenario};
