//! The egress role: takes `outbound` jobs, delivers the outbox row each names, and records the
//! result in SQL (sent, retry later, or failed).
//!
//! - [`worker`]: the job loop ([`Egress`]): `egress.concurrency` takers, graceful shutdown,
//!   and what each delivery result does to the outbox row and the job.
//! - [`attempt`]: pure: one attempt's report → each recipient's new state and the row's, and
//!   how long to wait before the next attempt.
//! - [`failure`]: pure: why a destination did not take a message ([`Failure`]), and whether
//!   that is transient or permanent ([`classify`]).
//! - [`notice`]: pure: who hears of a failure (a DSN to the sender, or bounce records).
//! - [`transport`]: the [`Transport`] trait, the message handed to it ([`Outgoing`]) and the
//!   per-destination [`DeliveryReport`] it returns.
//! - [`mode`]: the transport `egress.mode` selects ([`ModeTransport`]).
//! - [`capture`]: mode `capture`: each message written as `.eml` + envelope `.json` files.
//! - [`relay`]: mode `relay`: every message handed to one SMTP relay.
//! - [`mx`]: mode `mx`: recipients grouped by domain, delivered to each domain's MX.
//! - [`smtp`]: what the SMTP modes share: envelopes, lettre errors as [`Failure`]s, and one
//!   SMTP session with a result per recipient.
//!
//! Delivery is per recipient: each recipient of an outbox row has its own state in the store,
//! a refused RCPT fails that recipient only, and a retry goes only to the recipients still
//! `queued`. Mail leaves from the row's VERP address (`bounces+TOKEN@domain`), so bounces come
//! back to the ingress matched to the row. See docs/delivery.md.
//!
//! Not for: composing mail (`thwonk-mail` did that before the row was written; DSNs are built
//! there too), or TLS (plain SMTP for now).

pub mod attempt;
pub mod capture;
pub mod failure;
pub mod mode;
pub mod mx;
pub mod notice;
pub mod relay;
pub mod smtp;
pub mod transport;
pub mod worker;

pub use failure::{Class, Failure, classify};
pub use mode::ModeTransport;
pub use transport::{DeliveryReport, Destination, Outgoing, Transport};
pub use worker::Egress;

/// Errors that stop the egress role (delivery failures are not errors: they are recorded on
/// the outbox row).
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("egress.relay {0:?} is not host:port")]
    BadRelay(String),
    #[error("cannot set up the DNS resolver for mode mx (is /etc/resolv.conf readable?): {0}")]
    Resolver(String),
    #[error("egress worker task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
