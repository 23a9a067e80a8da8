//! `thwonk-testkit`: what Thwonk's tests (and the load tool, `thwonk-bench`) share, so that
//! each concern has one implementation. A dev-dependency only; never part of the daemon.
//!
//! - [`smtp`]: the one SMTP client: exact bytes out, multi-line replies in, EHLO, a
//!   pipelined MAIL/RCPT/DATA, DATA with dot-stuffing, raw lines for malformed input; and
//!   `send_mail`, one message built by lettre and sent through that client.
//! - [`relay`]: the recording relay: Thwonk's own ingress protocol code over a sink that
//!   records every message (or, bare, none), for the egress to deliver to.
//! - [`daemon`]: `thwonk serve` or one role as a child process, from a binary path the
//!   caller gives; it learns its addresses from the daemon's `--ready-file`, not its log.
//! - [`scripted`]: an SMTP server that answers what it is told to (refusals, silence, a
//!   stalled DATA) and records the wire bytes: the egress's failure cases.
//! - [`fixtures`]: deploy a script, read and wait for a thwonk's runs, poll until something
//!   holds, the daemon's private Redis, the PostgreSQL URL of the PG variants.
//!
//! Not for: production code (the daemon never depends on it), benchmarks of their own (the
//! load tool is `crates/bench`), or test doubles of one crate's traits (those stay with that
//! crate's tests, e.g. the ingress's in-memory `MailSink`).

pub mod daemon;
pub mod fixtures;
pub mod relay;
pub mod scripted;
pub mod smtp;

pub use daemon::{Daemon, DaemonOptions, Env, Inherit, Ready, output_within};
pub use fixtures::{captured_eml, eventually, postgres_url, private_redis};
pub use relay::{Received, Relay, RelayOptions};
pub use smtp::{SmtpClient, send_mail};
