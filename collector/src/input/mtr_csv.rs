//! `mtr --csv`.
//!
//! Not read yet: `sniff` claims nothing and `read` refuses.

use super::{Format, Read};
use crate::model::InputError;

/// How sure this reader is that `text` is its format, 0..=100.
pub(crate) fn sniff(_text: &str) -> u8 {
    0
}

/// Every trace in `text`; lines that cannot be read are skipped.
pub(crate) fn read(_text: &str, name: &str) -> Result<Read, InputError> {
    Err(InputError {
        origin: format!("{name}:1"),
        what: format!("{} is not read yet", Format::MtrCsv.name()),
    })
}
