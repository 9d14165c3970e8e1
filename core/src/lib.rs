//! What both binaries must agree on, written once: the built-in target
//! presets, classes of addresses (reserved for special purposes, never
//! attributable to an AS), the unit a destination stands for (its /24 or
//! /48), durations as people write them, and the wall clock in ms.
//!
//! Two copies of these had already drifted apart (the collector's DNS
//! enrichment and its inference disagreed on 0/8, 240/4, fec0::/10 and
//! v4-mapped addresses); one copy, with property tests, cannot.

pub mod addr;
#[cfg(feature = "assets")]
pub mod assets;
pub mod build;
pub mod duration;
pub mod preset;

pub use addr::{is_reserved, is_unattributable, reserved_range, unit_of, RESERVED};
pub use duration::{parse_duration, DurationError};
pub use preset::Preset;

/// Config merging, as both binaries do it: for each named `Option`
/// field, a value set in `$over` replaces the one in `$base`.
/// `take_set!(self, flags; listen, db)`.
#[macro_export]
macro_rules! take_set {
    ($base:expr, $over:expr; $($f:ident),* $(,)?) => {
        $( if $over.$f.is_some() { $base.$f = $over.$f; } )*
    };
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #[derive(Debug, Default, PartialEq)]
    struct Raw {
        a: Option<u32>,
        b: Option<String>,
        c: Option<u8>,
    }

    #[test]
    fn take_set_lets_what_is_set_win_and_keeps_the_rest() {
        let mut file = Raw {
            a: Some(1),
            b: Some("file".into()),
            c: None,
        };
        let flags = Raw {
            a: None,
            b: Some("flag".into()),
            c: Some(3),
        };
        take_set!(file, flags; a, b, c);
        assert_eq!(
            file,
            Raw {
                a: Some(1),
                b: Some("flag".into()),
                c: Some(3)
            }
        );
    }
}
