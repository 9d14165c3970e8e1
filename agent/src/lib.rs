//! The Tumen probe agent as a library: the allow-list ([`allow`]), the
//! configuration, packet building and parsing (pure), the tracer state
//! machine and its scheduler (pure over a [`engine::Network`]), the raw-socket network and
//! privilege handling ([`sys`], the only `unsafe` code), rounds with
//! border windows ([`round`]) and ping ([`ping`]); the on-disk spool
//! ([`spool`]) and the upload to the collector ([`upload`]).

pub mod allow;
pub mod config;
pub mod engine;
pub mod logging;
#[cfg(test)]
pub mod mock;
pub mod net;
pub mod packet;
pub mod ping;
pub mod round;
pub mod schedule;
pub mod spool;
pub mod status;
pub mod sys;
pub mod upload;
