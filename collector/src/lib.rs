//! The Tumen collector as a library: the model of a traceroute
//! ([`model`]), readers for the formats users paste ([`input`]), the
//! prefix-to-ASN table and its loaders ([`table`]), organisations
//! ([`orgs`]), upstream inference per trace ([`infer`]) and per
//! (agent, /24) over time ([`paths`]), the ingest pipeline from bytes to
//! the records to commit ([`pipeline`]) and the read model with what an
//! upload does to it ([`state`]) — all pure, no I/O — the storage seam
//! with its SQLite and in-memory backends ([`store`]), optional Team
//! Cymru / PTR enrichment over DNS ([`dns`]) and the HTTP service around
//! them ([`serve`]).

pub mod bgp;
pub mod defaults;
pub mod delegated;
pub mod dns;
pub mod infer;
pub mod input;
pub mod ixp;
pub mod model;
pub mod orgs;
pub mod paths;
pub mod pipeline;
pub mod serve;
pub mod source;
pub mod state;
pub mod store;
pub mod table;
mod textfile;
pub mod web;
