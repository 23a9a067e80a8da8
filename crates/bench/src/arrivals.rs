//! What reached the recording relay (the kit's [`Relay`]), matched to the load: every bench
//! message carries a unique token that the rule script copies into the mail it sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use thwonk_testkit::relay::{Received, Relay, RelayOptions};

/// Every bench message's subject starts with this, followed by its unique token; the rule
/// script copies the subject into the mail it sends, which is how an arrival is matched to the
/// `250` that accepted its cause.
pub const TOKEN_PREFIX: &str = "thwonk-bench-";

/// One message that reached the sink.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The bench token found in the message, if any (confirmations carry none).
    pub token: Option<String>,
    pub recipients: Vec<String>,
    pub at: Instant,
}

/// The name the bench's SMTP servers greet with.
const HOSTNAME: &str = "sink.bench.test";

/// The baseline: an SMTP server that accepts everything and does no work.
pub async fn bare() -> std::io::Result<Relay> {
    Relay::bare(HOSTNAME).await
}

/// The relay the daemon delivers to: it records every message and counts the recipients of
/// token-carrying ones as they arrive (cheap to poll while waiting).
pub async fn recording() -> std::io::Result<(Relay, Arc<AtomicUsize>)> {
    let token_recipients = Arc::new(AtomicUsize::new(0));
    let count = token_recipients.clone();
    let relay = Relay::start_with(RelayOptions {
        hostname: HOSTNAME.into(),
        observer: Some(Box::new(move |r: &Received| {
            if find_token(&r.raw).is_some() {
                count.fetch_add(r.rcpt_to.len(), Ordering::AcqRel);
            }
        })),
        ..RelayOptions::default()
    })
    .await?;
    Ok((relay, token_recipients))
}

/// Every message the relay received, with its token.
pub fn arrivals(relay: &Relay) -> Vec<Arrival> {
    relay
        .received()
        .into_iter()
        .map(|r| Arrival {
            token: find_token(&r.raw),
            recipients: r.rcpt_to,
            at: r.at,
        })
        .collect()
}

/// The first bench token in `raw` (the prefix and the `[0-9a-z-]` run after it).
pub fn find_token(raw: &[u8]) -> Option<String> {
    let prefix = TOKEN_PREFIX.as_bytes();
    let start = raw.windows(prefix.len()).position(|w| w == prefix)? + prefix.len();
    let len = raw[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || **b == b'-')
        .count();
    (len > 0).then(|| String::from_utf8_lossy(&raw[start..start + len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_a_subject_and_ends_at_the_first_other_character() {
        let raw = b"From: a@b\r\nSubject: Re: thwonk-bench-3-17\r\n\r\nbody";
        assert_eq!(find_token(raw).as_deref(), Some("3-17"));
        assert_eq!(find_token(b"Subject: subscribe\r\n\r\n"), None);
        assert_eq!(find_token(b"thwonk-bench-"), None);
    }
}
