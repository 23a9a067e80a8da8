//! Where accepted mail goes: the seam between the SMTP protocol and storage.
//!
//! The session asks a [`MailSink`] two things — may this recipient get mail, and please take
//! this message — and turns the answers into SMTP replies. The daemon's sink is
//! [`crate::StoreSink`]; tests plug in a sink that records deliveries in memory.

use std::future::Future;
use std::net::IpAddr;
use thwonk_core::Address;

/// Where accepted mail goes.
pub trait MailSink: Send + Sync + 'static {
    /// May this recipient receive mail? Asked at RCPT TO.
    fn check_recipient(&self, rcpt: &Address) -> impl Future<Output = RcptVerdict> + Send;

    /// Store the message durably and queue it; the ids of the stored messages. The session
    /// answers 250 only after `Ok`; on `Err` it answers 451, so the client keeps the mail and
    /// retries. An `Err` must therefore leave nothing behind that would be processed.
    fn deliver(
        &self,
        envelope: &Envelope,
        raw: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<String>, DeliverError>> + Send;
}

/// The answer to RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    /// 250 2.1.5
    Accept,
    /// 550 5.1.1: our domain, but no such (active) rules address.
    Unknown,
    /// 550 5.7.1: not a domain we accept mail for.
    Relaying,
    /// 450 4.2.1: the rules address exists but takes no mail right now (disabled, or no
    /// script deployed yet); the sender keeps the message and retries.
    NotTakingMail,
    /// 451 4.3.0: cannot tell right now; the text is shown to the client.
    TempFail(String),
}

/// The SMTP envelope of one accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; empty for the null sender `<>` (bounces).
    pub mail_from: String,
    /// The accepted recipients, each once, in the order given.
    pub rcpt_to: Vec<Address>,
    pub client_ip: IpAddr,
    /// The name the client gave in HELO/EHLO.
    pub helo: String,
    /// When the body was complete, ms since the epoch.
    pub received_at_ms: i64,
}

/// Why a message could not be taken. The client is told only "try again later"; the
/// detail goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("storing the message failed: {0}")]
    Store(#[from] thwonk_store::StoreError),
    #[error("queueing the message failed: {0}")]
    Queue(#[from] thwonk_thoonk::ThoonkError),
    /// The address was accepted at RCPT but no longer takes mail (disabled or deleted in
    /// between). The client retries, and is then told 550 at RCPT and bounces properly.
    #[error("recipient {0} no longer accepts mail")]
    RecipientGone(Address),
    /// Any other sink's failure.
    #[error("{0}")]
    Unavailable(String),
}
