//! What this build is: version, git commit, build date and target, as
//! `--version` prints them and the `_build_info` metrics label them (set
//! by `core/build.rs`).

/// The workspace version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit built (12 hex digits), or `unknown`.
pub const COMMIT: &str = env!("TUMEN_GIT_COMMIT");
/// The build date, `YYYY-MM-DD` (UTC; `SOURCE_DATE_EPOCH` when set).
pub const DATE: &str = env!("TUMEN_BUILD_DATE");
/// The target triple.
pub const TARGET: &str = env!("TUMEN_BUILD_TARGET");
/// `0.1.0 (commit 0123456789ab, built 2026-12-05, x86_64-unknown-linux-gnu)`:
/// what `--version` prints after the program's name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TUMEN_GIT_COMMIT"),
    ", built ",
    env!("TUMEN_BUILD_DATE"),
    ", ",
    env!("TUMEN_BUILD_TARGET"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_identity_is_filled_in() {
        assert_eq!(VERSION, env!("CARGO_PKG_VERSION"));
        assert!(
            COMMIT == "unknown"
                || (COMMIT.len() >= 7 && COMMIT.bytes().all(|b| b.is_ascii_hexdigit())),
            "{COMMIT}"
        );
        let d: Vec<&str> = DATE.split('-').collect();
        assert_eq!(d.len(), 3, "{DATE}");
        assert!(
            d[0].len() == 4 && d[1].len() == 2 && d[2].len() == 2,
            "{DATE}"
        );
        assert!(
            d.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())),
            "{DATE}"
        );
        assert!(DATE.as_bytes()[0] == b'2', "{DATE}");
        assert!(TARGET.contains('-'), "{TARGET}");
        assert!(LONG_VERSION.starts_with(VERSION) && LONG_VERSION.contains(TARGET));
    }
}
