//! Durations as people write them in configuration: `500ms`, `30s`,
//! `10m`, `12h`, `30d`, or a plain number of seconds.

use std::time::Duration;

/// A duration that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration (e.g. 500ms, 30s, 10m, 12h, 30d)")]
pub struct DurationError(pub String);

/// Parses `500ms`, `30s`, `10m`, `12h`, `30d` or plain seconds (`45`).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let err = || DurationError(s.to_string());
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: u64 = num.parse().map_err(|_| err())?;
    let secs = |mul: u64| n.checked_mul(mul).map(Duration::from_secs);
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => None,
    }
    .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units_and_garbage() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration(" 45 "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in [
            "",
            "10 parsecs",
            "ms",
            "-5s",
            "1.5s",
            "99999999999999999999d",
            "5 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let e = parse_duration("soon").expect_err("bad");
        assert_eq!(
            e.to_string(),
            "\"soon\" is not a duration (e.g. 500ms, 30s, 10m, 12h, 30d)"
        );
    }

    proptest! {
        #[test]
        fn written_back_it_reads_the_same(n in 0u64..1_000_000, unit in 0usize..5) {
            let (suffix, d) = match unit {
                0 => ("ms", Duration::from_millis(n)),
                1 => ("s", Duration::from_secs(n)),
                2 => ("m", Duration::from_secs(n * 60)),
                3 => ("h", Duration::from_secs(n * 3600)),
                _ => ("d", Duration::from_secs(n * 86_400)),
            };
            prop_assert_eq!(parse_duration(&format!("{n}{suffix}")), Ok(d));
        }

        #[test]
        fn no_text_panics(s in ".{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
