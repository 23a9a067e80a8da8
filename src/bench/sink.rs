//! The SMTP servers the load tool talks to: Thwonk's own ingress protocol code
//! ([`thwonk_ingress::serve`]) over a [`MailSink`] that either records when each bench message
//! arrived (the relay the daemon delivers to) or does nothing at all (the bare baseline).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use thwonk_core::Address;
use thwonk_ingress::{DeliverError, Envelope, MailSink, RcptVerdict};
use tokio_util::sync::CancellationToken;

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

/// What a sink does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// Accept and forget: the baseline, an SMTP server that does no work.
    Bare,
    /// Accept and note the arrival time, token and recipients.
    Recording,
}

/// A [`MailSink`] that accepts every recipient.
pub struct BenchSink {
    kind: SinkKind,
    arrivals: Mutex<Vec<Arrival>>,
    /// Recipients of token-carrying messages so far (cheap to poll while waiting).
    token_recipients: AtomicUsize,
}

impl BenchSink {
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn token_recipients(&self) -> usize {
        self.token_recipients.load(Ordering::Acquire)
    }
}

impl MailSink for BenchSink {
    async fn check_recipient(&self, _rcpt: &Address) -> RcptVerdict {
        RcptVerdict::Accept
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        raw: Vec<u8>,
    ) -> Result<Vec<String>, DeliverError> {
        if self.kind == SinkKind::Bare {
            return Ok(vec!["bare".into()]);
        }
        let at = Instant::now();
        let token = find_token(&raw);
        let recipients: Vec<String> = envelope.rcpt_to.iter().map(|a| a.to_string()).collect();
        if token.is_some() {
            self.token_recipients
                .fetch_add(recipients.len(), Ordering::AcqRel);
        }
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arrival {
                token,
                recipients,
                at,
            });
        Ok(vec!["recorded".into()])
    }
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

/// A running sink: its address, what it saw, and the token that stops it (on drop too).
pub struct RunningSink {
    pub addr: SocketAddr,
    pub sink: Arc<BenchSink>,
    stop: CancellationToken,
}

impl RunningSink {
    /// Listen on a free port of 127.0.0.1 and serve SMTP until dropped.
    pub async fn start(kind: SinkKind) -> std::io::Result<RunningSink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sink = Arc::new(BenchSink {
            kind,
            arrivals: Mutex::new(Vec::new()),
            token_recipients: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let smtp = thwonk_core::config::SmtpConfig {
            hostname: "sink.bench.test".into(),
            ..Default::default()
        };
        tokio::spawn(thwonk_ingress::serve(
            listener,
            Arc::new(smtp),
            sink.clone(),
            stop.clone(),
        ));
        Ok(RunningSink { addr, sink, stop })
    }
}

impl Drop for RunningSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
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
