//! The delivery seam: a [`Transport`] takes one message and reports, per destination and its
//! recipients, what happened ([`DeliveryReport`]). The job loop hands that report to
//! [`crate::attempt::plan`], which decides what each recipient and the outbox row become.

use crate::failure::Failure;
use std::future::Future;

/// One message to deliver, as the outbox row holds it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The outbox id (names the files in capture mode; appears in logs).
    pub id: &'a str,
    /// Envelope sender; empty for the null sender.
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    /// The whole message; line ends are normalised to CRLF before it goes on the wire.
    pub raw: &'a [u8],
}

/// Delivers messages. Never fails as a whole: every problem is a [`Failure`] of some
/// destination in the report.
pub trait Transport: Send + Sync {
    fn deliver(&self, message: &Outgoing<'_>) -> impl Future<Output = DeliveryReport> + Send;
}

/// What one delivery attempt did, destination by destination (the relay, each recipient
/// domain in mode mx, or the capture folder).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryReport {
    pub destinations: Vec<Destination>,
}

/// The result for one destination and the recipients it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `host:port` of the relay, the recipient domain, or the capture folder.
    pub name: String,
    pub recipients: Vec<String>,
    /// The server's final reply on success.
    pub result: Result<String, Failure>,
}

impl DeliveryReport {
    /// One destination with one result.
    pub fn single(
        name: impl Into<String>,
        recipients: &[String],
        result: Result<String, Failure>,
    ) -> Self {
        DeliveryReport {
            destinations: vec![Destination {
                name: name.into(),
                recipients: recipients.to_vec(),
                result,
            }],
        }
    }
}
