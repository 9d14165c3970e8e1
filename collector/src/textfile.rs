//! Reading a small text file whole (IXP lists, RIR statistics), with a
//! size cap so that a wrong path (a disk image, a dump) is refused rather
//! than read into memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Why a text file could not be read; each caller words it for its file.
#[derive(Debug)]
pub(crate) enum TextFileError {
    Io(io::Error),
    /// Larger than the cap.
    TooLarge,
    /// Not UTF-8: the offset of the first bad byte.
    NotUtf8(usize),
}

/// The whole of `path` as UTF-8 text, at most `max` bytes.
pub(crate) fn read_text(path: &Path, max: u64) -> Result<String, TextFileError> {
    let file = File::open(path).map_err(TextFileError::Io)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(TextFileError::Io)?;
    if bytes.len() as u64 > max {
        return Err(TextFileError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| TextFileError::NotUtf8(e.utf8_error().valid_up_to()))
}
