//! Timed replays: a scenario's `[replay]` maps real UTC times to lab time
//! (`seconds_per_hour` lab seconds per real hour) and names the event to
//! apply at each, so a day of real BGP history plays in a minute.
//! `tumen-lab replay SCENARIO` plays it on BGP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::lab::{Lab, LabError};

/// A scenario's replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Real time (Unix seconds) of lab time 0.
    pub start: i64,
    /// Lab milliseconds per real hour (`seconds_per_hour` in the file).
    pub ms_per_hour: u64,
    pub steps: Vec<Step>,
}

/// One timed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Real time, Unix seconds.
    pub at: i64,
    pub event: String,
    /// What the source says happened then.
    pub note: String,
}

impl Replay {
    /// Lab seconds after the start at which `step` is applied.
    pub fn lab_offset(&self, step: &Step) -> f64 {
        (step.at - self.start) as f64 / 3600.0 * self.ms_per_hour as f64 / 1000.0
    }
}

/// What happened at one step of a replay.
#[derive(Debug, Clone)]
pub struct Played {
    /// When the step was due, lab seconds after the start.
    pub due: f64,
    /// When its event was applied (lab seconds after the start).
    pub applied: f64,
    /// How long BGP took to converge after it.
    pub converged_in: Duration,
}

/// Plays `replay` on `lab`: each step's event at its lab time (or as soon
/// as the previous one has converged, if later), calling `on_step` after
/// each. Stops early, without error, once `stop` is set.
pub fn play(
    lab: &mut Lab,
    replay: &Replay,
    stop: &AtomicBool,
    mut on_step: impl FnMut(&Lab, &Step, &Played),
) -> Result<(), LabError> {
    let t0 = Instant::now();
    for step in &replay.steps {
        let due = replay.lab_offset(step);
        while t0.elapsed().as_secs_f64() < due {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let left = due - t0.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_secs_f64(left.clamp(0.0, 0.05)));
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let applied = t0.elapsed().as_secs_f64();
        let t = Instant::now();
        lab.event(&step.event)?;
        let played = Played {
            due,
            applied,
            converged_in: t.elapsed(),
        };
        on_step(lab, step, &played);
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` of Unix seconds (UTC).
pub fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplay {
    start: String,
    seconds_per_hour: f64,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    at: String,
    event: String,
    #[serde(default)]
    note: String,
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC) to Unix seconds.
pub fn parse_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

impl RawReplay {
    pub(crate) fn validate(
        self,
        has_event: &dyn Fn(&str) -> bool,
        problems: &mut Vec<String>,
    ) -> Replay {
        let start = parse_utc(&self.start).unwrap_or_else(|| {
            problems.push(format!(
                "replay: start {:?} is not YYYY-MM-DDTHH:MM:SSZ",
                self.start
            ));
            0
        });
        if !(self.seconds_per_hour > 0.0 && self.seconds_per_hour.is_finite()) {
            problems.push(format!(
                "replay: seconds_per_hour must be positive, not {}",
                self.seconds_per_hour
            ));
        }
        let mut steps = Vec::new();
        let mut last = start;
        for s in self.step {
            let Some(at) = parse_utc(&s.at) else {
                problems.push(format!(
                    "replay step {}: at {:?} is not YYYY-MM-DDTHH:MM:SSZ",
                    s.event, s.at
                ));
                continue;
            };
            if at < last {
                problems.push(format!(
                    "replay step {} at {}: before the previous step or the start",
                    s.event, s.at
                ));
            }
            last = at;
            if !has_event(&s.event) {
                problems.push(format!(
                    "replay step at {}: no event named {}",
                    s.at, s.event
                ));
            }
            steps.push(Step {
                at,
                event: s.event,
                note: s.note,
            });
        }
        if steps.is_empty() {
            problems.push("replay: no step".into());
        }
        Replay {
            start,
            ms_per_hour: (self.seconds_per_hour.max(0.0) * 1000.0).round() as u64,
            steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_parse_to_unix_seconds() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2017-10-01T09:07:51Z"), Some(1_506_848_871));
        assert_eq!(parse_utc("2000-02-29T12:00:00Z"), Some(951_825_600));
        for bad in [
            "2017-10-01 09:07:51Z",
            "2017-13-01T00:00:00Z",
            "2017-10-01T09:07:51",
            "x",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting_inverts_parsing() {
        for t in [
            "2017-10-01T09:07:51Z",
            "2017-10-02T07:56:39Z",
            "2000-02-29T23:59:59Z",
        ] {
            let u = parse_utc(t).unwrap();
            assert_eq!(format_utc(u), t.replace('T', " ").trim_end_matches('Z'));
        }
    }

    #[test]
    fn steps_are_checked_and_placed_in_lab_time() {
        let raw: RawReplay = toml::from_str(
            r#"
start = "2017-10-01T09:00:00Z"
seconds_per_hour = 10
step = [
  { at = "2017-10-01T09:07:51Z", event = "up" },
  { at = "2017-10-01T09:00:30Z", event = "up" },
  { at = "2017-10-01T10:00:00Z", event = "nope" },
]
"#,
        )
        .unwrap();
        let mut problems = Vec::new();
        let r = raw.validate(&|e| e == "up", &mut problems);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("before the previous step"));
        assert!(problems[1].contains("no event named nope"));
        assert!((r.lab_offset(&r.steps[0]) - 1.308).abs() < 0.001);
    }
}
