//! Thwonk's ingress: the SMTP server that accepts mail for rules addresses, stores each
//! message and queues it for the runner, and only then answers 250.
//!
//! Built on tokio with `smtp-proto` (Stalwart's command parser); see README.md for why not
//! mailin-embedded. The protocol and the storage meet at one seam, [`MailSink`], so the
//! protocol is tested over real sockets with an in-memory sink, and the storage wiring stays
//! a thin [`StoreSink`].
//!
//! - `server`: [`serve`], the accept loop: a task per session, a cap on sessions at once,
//!   graceful shutdown.
//! - `session`: one SMTP session, the protocol state machine (HELO/EHLO, MAIL, RCPT, DATA,
//!   STARTTLS).
//! - `connection`: buffered reads with the idle timeout and shutdown applied; batched replies.
//! - `tls`: STARTTLS: the rustls acceptor (ring only), the plain-then-TLS stream, and
//!   [`self_signed`] development certificates.
//! - `loops`: loop protection after DATA (`Received:` count, `X-Thwonk-Loop`).
//! - `input`: the bounded read buffer and command-line framing (PIPELINING lives on it).
//! - `data`: the DATA body reader: end detection, dot-unstuffing, size limit.
//! - `received`: the `Received:` trace header prepended to every message.
//! - `reply`: every reply code, enhanced status code and text the server sends.
//! - [`limits`]: the session limits and their named defaults.
//! - `sink`: the [`MailSink`] seam, the [`Envelope`] and the verdicts.
//! - `store_sink`: [`StoreSink`], the daemon's sink: SQL message rows, then `inbound` jobs.
//!
//! Not for: running scripts or sending mail (runner, egress), relaying (mail for domains
//! that are not ours is refused at RCPT), authenticated submission. Not offered: CHUNKING,
//! DSN, AUTH. Every reply and limit: docs/smtp.md.

mod connection;
mod data;
mod in_flight;
mod input;
pub mod limits;
mod loops;
mod received;
mod reply;
mod server;
mod session;
mod sink;
mod store_sink;
mod tls;

pub use limits::Limits;
pub use server::{serve, serve_with_grace};
pub use sink::{DeliverError, Envelope, MailSink, RcptVerdict};
pub use store_sink::StoreSink;
pub use tls::{SelfSigned, TlsError, load_acceptor, self_signed};
