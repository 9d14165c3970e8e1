//! trippy's JSON and CSV reports (`trip --mode json`, `--mode csv`).
//!
//! Not read yet: the sniffers claim nothing and the readers refuse.

use super::{Format, Read};
use crate::model::InputError;

/// How sure this reader is that `text` is a trippy JSON report, 0..=100.
pub(crate) fn sniff_json(_text: &str) -> u8 {
    0
}

/// How sure this reader is that `text` is a trippy CSV report, 0..=100.
pub(crate) fn sniff_csv(_text: &str) -> u8 {
    0
}

/// Every trace in a trippy JSON report.
pub(crate) fn read_json(_text: &str, name: &str) -> Result<Read, InputError> {
    Err(InputError {
        origin: format!("{name}:1"),
        what: format!("{} is not read yet", Format::TrippyJson.name()),
    })
}

/// Every trace in a trippy CSV report.
pub(crate) fn read_csv(_text: &str, name: &str) -> Result<Read, InputError> {
    Err(InputError {
        origin: format!("{name}:1"),
        what: format!("{} is not read yet", Format::TrippyCsv.name()),
    })
}
