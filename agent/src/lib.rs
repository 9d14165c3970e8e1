//! The Tumen probe agent as a library: the pure parts (configuration and
//! allow-list, packet building and parsing) that the binary and its tests share. The probe engine, the
//! scheduler and the uploader join here as issue 3 and 5 build them.

pub mod config;
pub mod packet;
