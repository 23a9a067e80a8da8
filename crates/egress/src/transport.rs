//! The delivery seam: a [`Transport`] takes one message and reports, per destination, what
//! happened. The job loop turns that report into a [`Verdict`] and the verdict into a
//! [`Decision`](crate::Decision) about the outbox row.

use crate::policy::{Class, Failure, classify};
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

/// The attempt as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// At least one destination failed transiently; the text says which and why.
    Transient(String),
    /// Every failed destination failed permanently.
    Permanent(String),
}

/// Longest error text recorded on an outbox row: a message to a thousand domains that all
/// fail must not write a megabyte into `last_error`.
const ERROR_TEXT_MAX: usize = 4096;

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

    /// Delivered only if every destination took the message (and there was at least one).
    pub fn verdict(&self) -> Verdict {
        let failed: Vec<(&Destination, &Failure)> = self
            .destinations
            .iter()
            .filter_map(|d| d.result.as_ref().err().map(|f| (d, f)))
            .collect();
        if self.destinations.is_empty() {
            return Verdict::Permanent("the message has no recipients".into());
        }
        if failed.is_empty() {
            return Verdict::Delivered;
        }
        let transient = failed.iter().any(|(_, f)| classify(f) == Class::Transient);
        let mut text = failed
            .iter()
            .map(|(d, f)| format!("{} ({}): {f}", d.name, d.recipients.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        let delivered: Vec<&str> = self
            .destinations
            .iter()
            .filter(|d| d.result.is_ok())
            .map(|d| d.name.as_str())
            .collect();
        if !delivered.is_empty() {
            text.push_str(&format!("; delivered to {}", delivered.join(", ")));
        }
        truncate(&mut text, ERROR_TEXT_MAX);
        if transient {
            Verdict::Transient(text)
        } else {
            Verdict::Permanent(text)
        }
    }
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(name: &str, result: Result<String, Failure>) -> Destination {
        Destination {
            name: name.into(),
            recipients: vec![format!("u@{name}")],
            result,
        }
    }

    #[test]
    fn all_delivered_is_delivered() {
        let r = DeliveryReport {
            destinations: vec![dest("a.example", Ok("250 ok".into()))],
        };
        assert_eq!(r.verdict(), Verdict::Delivered);
    }

    #[test]
    fn partial_success_is_recorded_and_any_transient_failure_retries() {
        let r = DeliveryReport {
            destinations: vec![
                dest("a.example", Ok("250 ok".into())),
                dest(
                    "b.example",
                    Err(Failure::Reply {
                        code: 451,
                        message: "greylisted".into(),
                    }),
                ),
                dest("c.example", Err(Failure::NullMx("c.example".into()))),
            ],
        };
        let Verdict::Transient(text) = r.verdict() else {
            panic!("{:?}", r.verdict())
        };
        assert!(text.contains("b.example (u@b.example): remote server replied 451: greylisted"));
        assert!(text.contains("c.example"), "{text}");
        assert!(text.contains("delivered to a.example"), "{text}");
    }

    #[test]
    fn only_permanent_failures_are_permanent() {
        let r = DeliveryReport {
            destinations: vec![
                dest("a.example", Ok("250 ok".into())),
                dest(
                    "b.example",
                    Err(Failure::Reply {
                        code: 550,
                        message: "no such user".into(),
                    }),
                ),
            ],
        };
        assert!(matches!(r.verdict(), Verdict::Permanent(t) if t.contains("550")));
    }

    #[test]
    fn long_error_texts_are_cut() {
        let mut s = "é".repeat(5000);
        truncate(&mut s, 4095);
        assert!(s.len() <= 4096 + '…'.len_utf8());
    }
}
