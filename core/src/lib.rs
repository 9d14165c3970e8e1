//! What both binaries must agree on, written once: the built-in target
//! presets, classes of addresses (reserved for special purposes, never
//! attributable to an AS), the unit a destination stands for (its /24 or
//! /48), durations as people write them, and the wall clock in ms.
//!
//! Two copies of these had already drifted apart (the collector's DNS
//! enrichment and its inference disagreed on 0/8, 240/4, fec0::/10 and
//! v4-mapped addresses); one copy, with property tests, cannot.

pub mod addr;
pub mod duration;
pub mod preset;

pub use addr::{is_reserved, is_unattributable, reserved_range, unit_of, RESERVED};
pub use duration::{parse_duration, DurationError};
pub use preset::Preset;

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
