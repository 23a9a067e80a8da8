//! Cron expressions for a script's `schedule` export: five fields, UTC, minute resolution.
//!
//! `minute hour day-of-month month day-of-week`, each `*`, a number, a range `a-b`, a step
//! `*/n`, `a-b/n` or `a/n` (from `a` to the end), or a comma-separated list of those; months
//! and weekdays also by name (`jan`, `mon`); weekday 0 and 7 are Sunday. `@hourly`, `@daily`
//! (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`) are accepted. As in Vixie
//! cron, when both day fields are restricted (neither starts with `*`) a day matching either
//! one matches. Also accepted (croner's extensions, docs/rule-scripts.md): `L` (last day of
//! the month, or `5L` the last Friday), `15W` (the weekday nearest the 15th), `mon#2` (the
//! second Monday) and `?` (as `*`) in the day fields.
//!
//! Parsing and the next-fire search are the maintained `croner` crate's; this file holds
//! what Thwonk promises on top: exactly five fields, UTC, refusals that name the field, and
//! no answer beyond five years.

use chrono::{DateTime, Utc};
use std::fmt;

/// How far ahead [`Cron::next_after`] looks: a valid expression that matches nothing in
/// five years (`0 0 30 2 *`) never fires.
const HORIZON_MS: i64 = 5 * 366 * 86_400_000;

/// The five fields, by the names refusals use.
const FIELDS: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];

/// A parsed cron expression.
#[derive(Clone)]
pub struct Cron {
    source: String,
    pattern: croner::Cron,
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

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Cron {}

/// The parser with Thwonk's rules: five fields only (no seconds, no years); `a/n` accepted.
fn parser(both_days_restricted: bool) -> croner::parser::CronParser {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .sloppy_ranges(true)
        // croner takes a day field as restricted unless it is exactly `*`; Vixie cron (and
        // Thwonk before croner) unless it starts with `*` (`*/2`). Where the two differ,
        // ask for both days to match, which is what Vixie does then.
        .dom_and_dow(!both_days_restricted)
        .build()
}

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
        // croner reads month and weekday names anywhere in the text: keep letters to the
        // fields that have names (and to L and W in day of month).
        for (i, f) in fields.iter().enumerate().take(3) {
            let letters_ok = if i == 2 { "lLwW?" } else { "" };
            if f.chars()
                .any(|c| c.is_ascii_alphabetic() && !letters_ok.contains(c))
            {
                return Err(err(format!("{}: {f:?} is not a number", FIELDS[i])));
            }
        }
        // Each field alone first, so a refusal names the field it is about.
        for (i, f) in fields.iter().enumerate() {
            let mut alone = ["*"; 5];
            alone[i] = f;
            if let Err(e) = parser(false).parse(&alone.join(" ")) {
                return Err(err(format!("{}: {f:?}: {}", FIELDS[i], reason(&e))));
            }
        }
        let both_days_restricted = !fields[2].starts_with('*') && !fields[4].starts_with('*');
        let pattern = parser(both_days_restricted)
            .parse(text)
            .map_err(|e| err(reason(&e)))?;
        Ok(Cron {
            source: expr.trim().to_string(),
            pattern,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first matching minute strictly after `after_ms` (ms since the epoch, UTC), or
    /// `None` if none comes within five years.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
        let next = self.pattern.find_next_occurrence(&after, false).ok()?;
        let next_ms = next.timestamp_millis();
        (next_ms <= after_ms.saturating_add(HORIZON_MS)).then_some(next_ms)
    }
}

/// croner's message, without its category prefix and final stop.
fn reason(e: &croner::errors::CronError) -> String {
    let text = match e {
        croner::errors::CronError::ComponentError(m)
        | croner::errors::CronError::InvalidPattern(m)
        | croner::errors::CronError::IllegalCharacters(m) => m.clone(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// ms of a UTC date and time.
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp_millis()
    }

    fn next(expr: &str, from: i64) -> i64 {
        Cron::parse(expr).unwrap().next_after(from).unwrap()
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
    fn the_next_minute_is_strictly_after_even_within_a_minute() {
        let t = at(2025, 3, 14, 15, 9);
        assert_eq!(next("* * * * *", t + 30_000), at(2025, 3, 14, 15, 10));
        assert_eq!(next("* * * * *", t - 1), t);
        assert_eq!(next("9 15 * * *", t), at(2025, 3, 15, 15, 9));
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
        // A day field that starts with `*` is not restricted (Vixie): both must match.
        // Odd days that are Mondays: 2025-03-17 is a Monday, the 17th.
        assert_eq!(next("0 0 */2 * 1", t), at(2025, 3, 17, 0, 0));
        assert_eq!(
            next("0 0 */2 * 1", at(2025, 3, 17, 0, 0)),
            at(2025, 3, 31, 0, 0)
        );
    }

    #[test]
    fn last_nearest_weekday_and_nth_weekday_are_accepted() {
        let t = at(2025, 3, 14, 15, 9);
        assert_eq!(next("0 0 L * *", t), at(2025, 3, 31, 0, 0));
        assert_eq!(next("0 0 * * 5L", t), at(2025, 3, 28, 0, 0), "last Friday");
        assert_eq!(
            next("0 0 * * mon#2", t),
            at(2025, 4, 14, 0, 0),
            "2nd Monday"
        );
        assert_eq!(next("0 0 15W * *", t), at(2025, 4, 15, 0, 0), "a Tuesday");
    }

    #[test]
    fn never_matching_expressions_return_none() {
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(0), None);
    }

    #[test]
    fn bad_expressions_are_refused_with_the_field() {
        for (expr, needle) in [
            ("0 0 * *", "5 fields"),
            ("0 0 * * * *", "5 fields"),
            ("60 * * * *", "minute: \"60\": number out of bounds"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "minute: \"*/0\": step cannot be zero"),
            ("5-1 * * * *", "minute: \"5-1\": range out of bounds"),
            ("x * * * *", "minute: \"x\" is not a number"),
            ("jan * * * *", "minute: \"jan\" is not a number"),
            ("* * * foo *", "month"),
        ] {
            let e = Cron::parse(expr).unwrap_err().to_string();
            assert!(e.contains(needle), "{expr}: {e}");
        }
    }
}
