//! Cron expressions for a script's `schedule` export: five fields, UTC, minute resolution.
//!
//! `minute hour day-of-month month day-of-week`, each `*`, a number, a range `a-b`, a step
//! `*/n` or `a-b/n`, or a comma-separated list of those; months and weekdays also by name
//! (`jan`, `mon`); weekday 0 and 7 are Sunday. `@hourly`, `@daily` (`@midnight`), `@weekly`,
//! `@monthly`, `@yearly` (`@annually`) are accepted. As in Vixie cron, when both day fields
//! are restricted a day matching either one matches.
//!
//! Hand-written (about what the `cron` crates do for this subset) so that the schedule a user
//! deploys means exactly what this file says, with no dependency.

use std::fmt;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// How far ahead [`Cron::next_after`] looks: a valid expression that matches nothing in
/// five years (`0 0 30 2 *`) never fires.
const HORIZON_DAYS: i64 = 5 * 366;

/// A parsed cron expression.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day-of-month and day-of-week both restricted: either may match.
    either_day: bool,
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron {expr:?}: {reason}")]
pub struct CronError {
    pub expr: String,
    pub reason: String,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.source)
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let err = |reason: String| CronError {
            expr: expr.to_string(),
            reason,
        };
        let text = match expr.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "needs 5 fields (minute hour day month weekday), found {}",
                fields.len()
            )));
        }
        let minutes = field(fields[0], 0, 59, &[]).map_err(|e| err(format!("minute: {e}")))?;
        let hours = field(fields[1], 0, 23, &[]).map_err(|e| err(format!("hour: {e}")))?;
        let days = field(fields[2], 1, 31, &[]).map_err(|e| err(format!("day of month: {e}")))?;
        let months = field(fields[3], 1, 12, &MONTHS).map_err(|e| err(format!("month: {e}")))?;
        let mut weekdays =
            field(fields[4], 0, 7, &WEEKDAYS).map_err(|e| err(format!("day of week: {e}")))?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        weekdays &= 0x7f;
        Ok(Cron {
            source: expr.trim().to_string(),
            minutes,
            hours,
            days,
            months,
            weekdays,
            either_day: !fields[2].starts_with('*') && !fields[4].starts_with('*'),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first matching minute strictly after `after_ms` (ms since the epoch, UTC), or
    /// `None` if none comes within five years.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let mut t = after_ms.div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS;
        let limit = t + HORIZON_DAYS * DAY_MS;
        while t < limit {
            let day_start = t.div_euclid(DAY_MS) * DAY_MS;
            let (_, month, day) = civil_from_days(t.div_euclid(DAY_MS));
            if !bit(self.months, month) || !self.day_matches(t.div_euclid(DAY_MS), day) {
                t = day_start + DAY_MS;
                continue;
            }
            let minute_of_day = (t - day_start) / MINUTE_MS;
            let (hour, minute) = (minute_of_day / 60, minute_of_day % 60);
            if !bit(self.hours, hour as u32) {
                t = day_start + (hour + 1) * 60 * MINUTE_MS;
                continue;
            }
            if !bit(self.minutes, minute as u32) {
                t += MINUTE_MS;
                continue;
            }
            return Some(t);
        }
        None
    }

    fn day_matches(&self, days_since_epoch: i64, day: u32) -> bool {
        // 1970-01-01 was a Thursday (4).
        let weekday = (days_since_epoch + 4).rem_euclid(7) as u32;
        let dom = bit(self.days, day);
        let dow = bit(self.weekdays, weekday);
        if self.either_day {
            dom || dow
        } else {
            dom && dow
        }
    }
}

fn bit(set: u64, n: u32) -> bool {
    set & (1u64 << n) != 0
}

/// One field: a bit set of the values it allows.
fn field(text: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not a step number"))?;
                if step == 0 {
                    return Err("a step of 0".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, lo, hi, names)?, value(b, lo, hi, names)?)
        } else {
            let v = value(range, lo, hi, names)?;
            // `5/15` means from 5 to the end in steps of 15.
            (v, if part.contains('/') { hi } else { v })
        };
        if start > end {
            return Err(format!("range {range:?} runs backwards"));
        }
        let mut v = start;
        while v <= end {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

fn value(text: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        // Month names count from 1, weekday names from 0.
        return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
    }
    let v: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v < lo || v > hi {
        return Err(format!("{v} is outside {lo}-{hi}"));
    }
    Ok(v)
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ms of a UTC date and time (test helper, the inverse of civil_from_days).
    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        let (y2, m2) = if mo <= 2 {
            (y - 1, mo + 9)
        } else {
            (y, mo - 3)
        };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * i64::from(m2) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * DAY_MS + h * 3_600_000 + mi * MINUTE_MS
    }

    fn next(expr: &str, from: i64) -> i64 {
        Cron::parse(expr).unwrap().next_after(from).unwrap()
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(at(1970, 1, 1, 0, 0), 0);
        assert_eq!(
            civil_from_days(at(2024, 2, 29, 0, 0) / DAY_MS),
            (2024, 2, 29)
        );
        assert_eq!(civil_from_days(at(2000, 3, 1, 0, 0) / DAY_MS), (2000, 3, 1));
    }

    #[test]
    fn daily_fires_at_the_next_midnight_strictly_after() {
        let t = at(2025, 3, 14, 15, 9);
        assert_eq!(next("0 0 * * *", t), at(2025, 3, 15, 0, 0));
        assert_eq!(next("@daily", at(2025, 3, 15, 0, 0)), at(2025, 3, 16, 0, 0));
        assert_eq!(
            next("0 0 * * *", at(2025, 12, 31, 23, 59)),
            at(2026, 1, 1, 0, 0)
        );
    }

    #[test]
    fn steps_ranges_lists_and_names() {
        let t = at(2025, 3, 14, 15, 9);
        assert_eq!(next("*/15 * * * *", t), at(2025, 3, 14, 15, 15));
        assert_eq!(next("* * * * *", t), at(2025, 3, 14, 15, 10));
        assert_eq!(next("5/20 * * * *", t), at(2025, 3, 14, 15, 25));
        assert_eq!(next("0 9-17/4 * * *", t), at(2025, 3, 14, 17, 0));
        assert_eq!(
            next("30 8 * * mon-fri", t),
            at(2025, 3, 17, 8, 30),
            "14th is a Friday"
        );
        assert_eq!(next("0 0 1 jan,jul *", t), at(2025, 7, 1, 0, 0));
        assert_eq!(next("0 12 * * 7", t), at(2025, 3, 16, 12, 0), "7 is Sunday");
        assert_eq!(next("0 0 29 2 *", t), at(2028, 2, 29, 0, 0));
        assert_eq!(next("@hourly", t), at(2025, 3, 14, 16, 0));
        assert_eq!(next("@weekly", t), at(2025, 3, 16, 0, 0));
        assert_eq!(next("@monthly", t), at(2025, 4, 1, 0, 0));
        assert_eq!(next("@yearly", t), at(2026, 1, 1, 0, 0));
    }

    #[test]
    fn restricted_day_fields_match_either() {
        // The 1st of the month or any Monday.
        let t = at(2025, 3, 14, 15, 9);
        assert_eq!(next("0 0 1 * 1", t), at(2025, 3, 17, 0, 0));
        assert_eq!(
            next("0 0 1 * 1", at(2025, 3, 25, 0, 0)),
            at(2025, 3, 31, 0, 0)
        );
        assert_eq!(
            next("0 0 1 * 1", at(2025, 3, 31, 0, 0)),
            at(2025, 4, 1, 0, 0)
        );
    }

    #[test]
    fn never_matching_expressions_return_none() {
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(0), None);
    }

    #[test]
    fn bad_expressions_are_refused_with_the_field() {
        for (expr, needle) in [
            ("0 0 * *", "5 fields"),
            ("60 * * * *", "minute: 60 is outside 0-59"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step of 0"),
            ("5-1 * * * *", "backwards"),
            ("x * * * *", "not a number"),
        ] {
            let e = Cron::parse(expr).unwrap_err().to_string();
            assert!(e.contains(needle), "{expr}: {e}");
        }
    }
}
