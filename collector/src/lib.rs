//! The Tumen collector as a library: the model of a traceroute
//! ([`model`]), readers for the formats users paste ([`input`]), the
//! prefix-to-ASN table and its loaders ([`table`]), organisations
//! ([`orgs`]) and upstream inference ([`infer`], pure, no I/O).

pub mod defaults;
pub mod infer;
pub mod input;
pub mod model;
pub mod orgs;
pub mod table;
