//! One clock unit everywhere: milliseconds since the Unix epoch, as `i64` (it fits SQL
//! `BIGINT` and Redis scores without conversion). And every way a time is written as text,
//! on top of `chrono`, so each format exists once:
//!
//! - [`rfc5322`]: mail headers (`Date:`, `Received:`, `Resent-Date:`, DSN fields):
//!   `Fri, 2 Jan 2026 03:04:05 +0000`.
//! - [`rfc3339_millis`]: JSON and scripts, the form JavaScript's `Date.prototype.toISOString`
//!   writes: `2026-01-02T03:04:05.123Z`.
//! - [`rfc3339_seconds`]: the same to the second, `2026-01-02T03:04:05Z` (a parsed `Date:`
//!   header, CLI listings).
//!
//! A time outside what `chrono` represents (±262,000 years) is written as the epoch; a clock
//! or a database never hands out such a time.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `ms` as a UTC date and time; `None` outside chrono's range.
pub fn utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Milliseconds since the epoch of a time given in whole seconds (a parsed `Date:` header);
/// `None` outside chrono's range.
pub fn ms_from_seconds(secs: i64) -> Option<i64> {
    DateTime::from_timestamp(secs, 0).map(|d| d.timestamp_millis())
}

/// Milliseconds since the epoch as a [`SystemTime`] (for libraries that take one). Times
/// before 1970 become the epoch.
pub fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Milliseconds since the epoch of a [`SystemTime`] (a file's modification time, say); 0 for
/// times before 1970.
pub fn ms_of(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn at(ms: i64) -> DateTime<Utc> {
    utc(ms).unwrap_or_default()
}

/// RFC 5322 date-time, as mail headers carry it: `Fri, 2 Jan 2026 03:04:05 +0000`.
pub fn rfc5322(ms: i64) -> String {
    at(ms).to_rfc2822()
}

/// An HTTP date (RFC 9110 IMF-fixdate), as `Last-Modified` carries it:
/// `Fri, 02 Jan 2026 03:04:05 GMT`.
pub fn http_date(ms: i64) -> String {
    at(ms).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// RFC 3339 in UTC with milliseconds: `2026-01-02T03:04:05.123Z`.
pub fn rfc3339_millis(ms: i64) -> String {
    at(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 3339 in UTC to the second (milliseconds dropped): `2026-01-02T03:04:05Z`.
pub fn rfc3339_seconds(ms: i64) -> String {
    at(ms).to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-02T03:04:05.123Z, a Friday.
    const T: i64 = 1_767_323_045_123;

    #[test]
    fn mail_dates_are_rfc5322_in_utc() {
        assert_eq!(rfc5322(T), "Fri, 2 Jan 2026 03:04:05 +0000");
        assert_eq!(rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322(1_795_791_870_123),
            "Fri, 27 Nov 2026 15:04:30 +0000"
        );
    }

    #[test]
    fn json_times_are_rfc3339_like_to_iso_string() {
        assert_eq!(rfc3339_millis(T), "2026-01-02T03:04:05.123Z");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_795_791_870_123),
            "2026-11-27T15:04:30.123Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn second_precision_drops_the_milliseconds() {
        assert_eq!(rfc3339_seconds(T), "2026-01-02T03:04:05Z");
        assert_eq!(rfc3339_seconds(T - 123), "2026-01-02T03:04:05Z");
        assert_eq!(ms_from_seconds(1_767_323_045), Some(T - 123));
        assert_eq!(ms_from_seconds(i64::MAX), None);
    }

    #[test]
    fn times_out_of_range_are_the_epoch() {
        assert_eq!(rfc3339_millis(i64::MAX), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(i64::MAX), None);
    }

    #[test]
    fn system_times_round_trip_and_stop_at_the_epoch() {
        assert_eq!(ms_of(system_time(T)), T);
        assert_eq!(system_time(-5), UNIX_EPOCH);
        assert!(now_ms() > T);
    }
}
