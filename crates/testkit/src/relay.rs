//! The recording relay: a real SMTP server (Thwonk's own ingress protocol code,
//! [`thwonk_ingress::serve`]) that stands in for the relay the egress delivers to. It accepts
//! every recipient (except those told otherwise with [`Relay::refuse`]) and records every
//! message with the instant it arrived. A bare relay ([`Relay::bare`]) records nothing: the
//! load tool's baseline, an SMTP server that does no work.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thwonk_core::Address;
use thwonk_ingress::{DeliverError, Envelope, MailSink, RcptVerdict};
use tokio_util::sync::CancellationToken;

/// A message the relay received.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    /// When the relay had it (before answering 250).
    pub at: Instant,
}

impl Received {
    /// A message from its parts, received now.
    pub fn new(mail_from: &str, rcpt_to: Vec<String>, raw: Vec<u8>) -> Received {
        Received {
            mail_from: mail_from.to_string(),
            rcpt_to,
            raw,
            at: Instant::now(),
        }
    }

    /// The message as a rule script would see it.
    pub fn parsed(&self) -> thwonk_core::run::MessageView {
        thwonk_mail::parse_message(
            &self.raw,
            &thwonk_mail::InboundEnvelope {
                id: "relay",
                mail_from: &self.mail_from,
                to: "",
                recipients: &self.rcpt_to,
                received_at_ms: 0,
            },
        )
    }
}

/// Called with each message as it is recorded (the load tool counts its deliveries so).
pub type Observer = Box<dyn Fn(&Received) + Send + Sync>;

#[derive(Default)]
struct Recorder {
    /// Record nothing, refuse nobody: the bare baseline.
    bare: bool,
    received: Mutex<Vec<Received>>,
    /// How long the relay holds each message before it answers 250.
    delay: Duration,
    /// Recipients answered with something else than 250 at RCPT (lower case).
    refused: Mutex<HashMap<String, RcptVerdict>>,
    /// Every recipient asked for at RCPT, in order (lower case).
    asked: Mutex<Vec<String>>,
    /// Messages accepted so far.
    count: AtomicUsize,
    observer: Option<Observer>,
}

/// A poisoned lock only means another test thread panicked; what it holds is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MailSink for Recorder {
    async fn check_recipient(&self, rcpt: &Address) -> RcptVerdict {
        if self.bare {
            return RcptVerdict::Accept;
        }
        let rcpt = rcpt.to_string().to_lowercase();
        lock(&self.asked).push(rcpt.clone());
        lock(&self.refused)
            .get(&rcpt)
            .cloned()
            .unwrap_or(RcptVerdict::Accept)
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        raw: Vec<u8>,
    ) -> Result<Vec<String>, DeliverError> {
        if self.bare {
            return Ok(vec!["bare".into()]);
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let got = Received::new(
            &envelope.mail_from,
            envelope.rcpt_to.iter().map(|a| a.to_string()).collect(),
            raw,
        );
        if let Some(observe) = &self.observer {
            observe(&got);
        }
        let mut r = lock(&self.received);
        r.push(got);
        let n = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        Ok(vec![format!("relay-{n}")])
    }
}

/// How to start a [`Relay`].
pub struct RelayOptions {
    /// Where to listen (a port a stopped relay had, say); 127.0.0.1 port 0 by default.
    pub addr: SocketAddr,
    /// How long the relay holds each message before it answers 250.
    pub delay: Duration,
    /// The name in its greeting.
    pub hostname: String,
    /// Record nothing, refuse nobody.
    pub bare: bool,
    pub observer: Option<Observer>,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            delay: Duration::ZERO,
            hostname: "relay.test".into(),
            bare: false,
            observer: None,
        }
    }
}

/// A running relay; it stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    recorder: Arc<Recorder>,
    stop: CancellationToken,
}

impl Relay {
    pub async fn start() -> Relay {
        Relay::start_with(RelayOptions::default())
            .await
            .expect("start the relay")
    }

    /// A relay on `addr` (a port a stopped relay had, say) that waits `delay` before it
    /// answers each message's 250.
    pub async fn start_on(addr: SocketAddr, delay: Duration) -> Relay {
        Relay::start_with(RelayOptions {
            addr,
            delay,
            ..RelayOptions::default()
        })
        .await
        .expect("start the relay")
    }

    /// A relay that accepts everything and records nothing.
    pub async fn bare(hostname: &str) -> std::io::Result<Relay> {
        Relay::start_with(RelayOptions {
            hostname: hostname.into(),
            bare: true,
            ..RelayOptions::default()
        })
        .await
    }

    pub async fn start_with(options: RelayOptions) -> std::io::Result<Relay> {
        let listener = tokio::net::TcpListener::bind(options.addr).await?;
        let addr = listener.local_addr()?;
        let recorder = Arc::new(Recorder {
            bare: options.bare,
            delay: options.delay,
            observer: options.observer,
            ..Recorder::default()
        });
        let stop = CancellationToken::new();
        let smtp = thwonk_core::config::SmtpConfig {
            hostname: options.hostname,
            ..Default::default()
        };
        tokio::spawn(thwonk_ingress::serve(
            listener,
            Arc::new(smtp),
            recorder.clone(),
            stop.clone(),
        ));
        Ok(Relay {
            addr,
            recorder,
            stop,
        })
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.recorder.received).clone()
    }

    /// How many messages were received so far (cheap to poll).
    pub fn count(&self) -> usize {
        self.recorder.count.load(Ordering::Acquire)
    }

    /// Answer RCPT TO `rcpt` with `verdict` from now on: `RcptVerdict::Unknown` is
    /// `550 5.1.1`, `RcptVerdict::TempFail(..)` is `451 4.3.0`.
    pub fn refuse(&self, rcpt: &str, verdict: RcptVerdict) {
        lock(&self.recorder.refused).insert(rcpt.to_lowercase(), verdict);
    }

    /// Accept `rcpt` again.
    pub fn accept(&self, rcpt: &str) {
        lock(&self.recorder.refused).remove(&rcpt.to_lowercase());
    }

    /// Every recipient the relay was asked for at RCPT TO, in order, lower case.
    pub fn asked(&self) -> Vec<String> {
        lock(&self.recorder.asked).clone()
    }

    /// Wait until `pred` holds for what was received, or panic after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; the relay has {got:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
