//! Sources of evidence other than agents' uploads. A source hands records
//! with a vantage-point identity to the same pipeline
//! ([`crate::pipeline::Pipeline::prepare`]), state and store as uploads;
//! nothing downstream knows where a record came from except its agent
//! name. Today: [`import`], traceroutes read from a file in any format
//! `infer` reads.

pub mod import;
