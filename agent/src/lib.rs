//! The Tumen probe agent as a library: the allow-list ([`allow`]), the
//! configuration, packet building and parsing (pure), the tracer state
//! machine and its scheduler (pure over an [`engine::Network`]), the
//! raw-socket network and privilege handling ([`sys`], the only `unsafe`
//! code), rounds with border windows ([`round`]) and ping ([`ping`]); the
//! on-disk spool ([`spool`]), the upload to the collector ([`upload`]) and
//! its schedule ([`schedule`]); the log ([`logging`]); and the running
//! agent ([`runtime`]: the round loop, its tasks and the drain), which the
//! binary only configures and starts.

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
pub mod runtime;
pub mod schedule;
pub mod spool;
pub mod status;
pub mod sys;
pub mod upload;
