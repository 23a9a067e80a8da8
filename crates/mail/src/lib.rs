//! Mail formats: the one place that reads incoming MIME and writes outgoing MIME.
//!
//! - [`parse`]: raw incoming bytes → [`MessageView`](thwonk_core::run::MessageView), the `msg`
//!   a rule script sees. Best effort: malformed mail still yields a view, never an error.
//! - [`compose`](mod@compose): a script's [`SendRequest`](thwonk_core::run::SendRequest) →
//!   one RFC 5322 message with its envelope ([`Composed`]), for new messages and replies.
//! - [`forward`]: the forward kind of compose: the original bytes, MIME intact, re-sent.
//! - [`verp`]: the VERP bounce address (`bounces+TOKEN@domain`) every message leaves with.
//! - [`dsn`]: delivery status notifications (RFC 3464): built when egress gives up, read when
//!   one comes back to a bounce address.
//! - [`headers`]: which extra header fields a script may add, and how they are written.
//! - [`loop_mark`]: the `X-Thwonk-Loop` field every outgoing message carries.
//! - [`crlf`]: line-end normalisation (SMTP wants CRLF and nothing else).
//! - [`error`]: why a send cannot be composed.
//!
//! Pure functions, no I/O: no sockets, no files, no clock (times come in as arguments).
//!
//! Not for: delivering mail (`thwonk-egress`), receiving it (`thwonk-ingress`), or deciding
//! who may send what (the sandbox checks `from` and recipient limits before a send gets here).

pub mod compose;
pub mod crlf;
pub mod dsn;
pub mod error;
pub mod forward;
pub mod headers;
pub mod loop_mark;
pub mod parse;
pub mod verp;

pub use compose::{ComposeContext, Composed, check_send, compose};
pub use crlf::normalize_crlf;
pub use error::ComposeError;
pub use parse::{InboundEnvelope, parse_message};
