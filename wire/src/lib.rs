//! Wire types shared by `tumen-agent` and `tumen-collector`.
//!
//! Everything an agent sends to a collector (and prints with `--once`) is a
//! JSON object carrying a `schema` version. This crate owns that version and
//! the check both sides apply before trusting a record, so that an agent and
//! a collector of different releases fail with a precise message instead of
//! misreading each other. The probe result types themselves arrive with the
//! probe engine (issue 3) and are added here, not in either binary.

use serde::{Deserialize, Serialize};

/// Version of the JSON schema spoken between agent and collector.
///
/// Bump it on any change that an older reader would misinterpret; additive
/// optional fields do not need a bump.
pub const SCHEMA_VERSION: u32 = 1;

/// The part every wire record starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Schema version the record was written with.
    pub schema: u32,
}

/// A record whose schema this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The record names a schema newer than this build understands.
    #[error(
        "record has schema version {found}, this build reads up to {supported}: upgrade this side"
    )]
    TooNew { found: u32, supported: u32 },
    /// Version 0 was never issued; such a record is corrupt or forged.
    #[error("record has schema version 0, which was never issued")]
    Zero,
}

impl Header {
    /// The header this build writes.
    pub const fn current() -> Self {
        Self {
            schema: SCHEMA_VERSION,
        }
    }

    /// Accepts any issued version up to [`SCHEMA_VERSION`].
    pub fn check(self) -> Result<(), SchemaError> {
        match self.schema {
            0 => Err(SchemaError::Zero),
            v if v > SCHEMA_VERSION => Err(SchemaError::TooNew {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_header_round_trips_and_is_accepted() {
        let text = serde_json::to_string(&Header::current()).expect("serialise");
        assert_eq!(text, format!("{{\"schema\":{SCHEMA_VERSION}}}"));
        let back: Header = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.check(), Ok(()));
    }

    #[test]
    fn newer_and_zero_versions_are_refused_with_reason() {
        let newer = Header {
            schema: SCHEMA_VERSION + 1,
        };
        let err = newer.check().expect_err("newer schema must be refused");
        assert!(err.to_string().contains("upgrade"), "{err}");
        assert_eq!(Header { schema: 0 }.check(), Err(SchemaError::Zero));
    }
}
