//! How failures are told to a person: an error with its causes on one line, without the
//! repeats that nested errors produce, and repeated warnings thinned out.
//!
//! - [`error_chain`]: `e` and its sources joined with `": "`. A library error often shows
//!   its source in its own text *and* returns it from `source()` (a Redis error around an I/O
//!   error), so a plain `{:#}` says "Connection refused (os error 111)" three times; a
//!   link whose text the previous link already shows is left out.
//! - [`Throttle`]: a warning that repeats (a loop that cannot reach Redis) is logged the
//!   first time, then at most once per interval with the count of those not logged.

use std::error::Error;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The links of an error chain (`anyhow::Error::chain()`, or [`sources`]) on one line, each
/// once.
pub fn error_chain<'a>(links: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for link in links {
        let text = link.to_string();
        let text = text.trim();
        if text.is_empty() || previous.contains(text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(text);
        previous = text.to_string();
    }
    out
}

/// `e` and its sources, outermost first.
pub fn sources<'a>(
    e: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn Error + 'static)| {
        let e: &'a (dyn Error + 'static) = *e;
        e.source()
    })
}

/// A warning logged at most once per interval. Shared by every task that hits the same
/// failure (it is a `static` at the call site; `new` is `const`).
pub struct Throttle {
    interval: Duration,
    state: Mutex<ThrottleState>,
}

struct ThrottleState {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub const fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            state: Mutex::new(ThrottleState {
                last_logged: None,
                suppressed: 0,
            }),
        }
    }

    /// The failure happened again. `Some(n)`: log it now, saying that `n` more were not
    /// logged since the last time; `None`: stay quiet.
    pub fn hit(&self) -> Option<u64> {
        self.hit_at(Instant::now())
    }

    fn hit_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.last_logged {
            Some(at) if now.saturating_duration_since(at) < self.interval => {
                s.suppressed += 1;
                None
            }
            _ => {
                s.last_logged = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
    }

    /// The failure is over: the next one is logged at once.
    pub fn reset(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.last_logged = None;
        s.suppressed = 0;
    }
}

/// `url` with the password of its user info replaced by `***` (`postgres://thwonk:***@db/thwonk`),
/// for printing and logging: a database URL often carries one. Anything that is not
/// `scheme://user:password@...` comes back as it is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        // Like redis::RedisError: its own text already shows its source.
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug)]
    struct Connect(Outer);
    impl std::fmt::Display for Connect {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "redis redis://127.0.0.1:1: {}", self.0)
        }
    }
    impl Error for Connect {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_the_outer_error_already_shows_is_not_repeated() {
        let e = Connect(Outer(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).to_string();
        let text = error_chain(sources(&e));
        assert_eq!(text, format!("redis redis://127.0.0.1:1: {io}"));
        assert_eq!(text.matches(&io).count(), 1, "{text}");
    }

    #[test]
    fn distinct_causes_are_all_shown_in_order() {
        let e = std::io::Error::other(Outer(std::io::Error::other("disk full")));
        // io::Error::other shows its inner error's text and returns it as the source.
        assert_eq!(error_chain(sources(&e)), "disk full");
        let e = Connect(Outer(std::io::Error::other("timed out")));
        assert_eq!(
            error_chain(sources(&e)),
            "redis redis://127.0.0.1:1: timed out"
        );
    }

    #[test]
    fn a_repeated_warning_is_logged_once_per_interval_with_the_count_left_out() {
        let t = Throttle::new(Duration::from_secs(30));
        let start = Instant::now();
        assert_eq!(t.hit_at(start), Some(0), "the first one is logged");
        for n in 1..=9 {
            assert_eq!(t.hit_at(start + Duration::from_millis(100 * n)), None);
        }
        assert_eq!(t.hit_at(start + Duration::from_secs(31)), Some(9));
        assert_eq!(t.hit_at(start + Duration::from_secs(32)), None);
        t.reset();
        assert_eq!(t.hit_at(start + Duration::from_secs(33)), Some(0));
    }

    #[test]
    fn a_urls_password_is_never_shown() {
        assert_eq!(
            redact_url("postgres://thwonk:s3cret@db.example.org:5432/thwonk?sslmode=require"),
            "postgres://thwonk:***@db.example.org:5432/thwonk?sslmode=require"
        );
        // A password holding '@' or ':' is hidden whole.
        assert_eq!(
            redact_url("postgres://u:p@ss:w@rd@db/t"),
            "postgres://u:***@db/t"
        );
        for plain in [
            "postgres://postgres@127.0.0.1:5432/test",
            "sqlite:///var/lib/thwonk/thwonk.db",
            "sqlite:data/thwonk.db",
            "redis://127.0.0.1:6379",
        ] {
            assert_eq!(redact_url(plain), plain);
        }
    }
}
