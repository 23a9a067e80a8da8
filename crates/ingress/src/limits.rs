//! The limits a session enforces, with their defaults named in one place.
//!
//! The limits that operators tune (message size, recipients, idle timeout) come from
//! `[smtp]` in the configuration; the others are protocol constants or defaults named here
//! until they earn a configuration key.

use std::time::Duration;
use thwonk_core::config::SmtpConfig;

/// Shortest command line limit allowed (RFC 5321 §4.5.3.1.4: 512 octets, CRLF included);
/// `smtp.max_line_length` may raise it, never lower it.
pub const MAX_COMMAND_LINE: usize = 512;

/// Size of a session's read buffer: the most a session holds of not-yet-parsed input
/// (pipelined commands, or body bytes on their way into the message). Must exceed
/// [`MAX_COMMAND_LINE`] so a whole command line always fits.
pub const DEFAULT_READ_BUFFER: usize = 64 * 1024;
const _: () = assert!(DEFAULT_READ_BUFFER > MAX_COMMAND_LINE);

/// Protocol errors (syntax, bad sequence, unknown command) a session may make before it is
/// closed with 421: a client that keeps getting it wrong is broken or probing.
pub const DEFAULT_MAX_BAD_COMMANDS: u32 = 20;

/// How long a shutdown waits for sessions in the middle of a transaction (a DATA transfer,
/// a delivery to the store) before it drops them, for [`crate::serve`]; the daemon passes
/// `shutdown.grace_ms` to [`crate::serve_with_grace`] instead.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The shortest idle timeout: 0 in the configuration would close every session at once.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the accept loop pauses after a failed `accept` (out of file descriptors, for
/// example) so that it does not spin.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Every limit of the SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message body accepted, bytes (`smtp.max_message_size`; advertised as SIZE).
    pub max_message_size: u64,
    /// Most recipients in one transaction (`smtp.max_recipients`).
    pub max_recipients: usize,
    /// Longest wait for the client to send (or take) anything (`smtp.idle_timeout_secs`).
    pub idle_timeout: Duration,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    /// Read buffer per session, bytes.
    pub read_buffer: usize,
    /// Protocol errors before the session is closed.
    pub max_bad_commands: u32,
    /// Sessions at once.
    pub max_sessions: usize,
    /// How long shutdown waits for sessions in a transaction.
    pub shutdown_grace: Duration,
    /// Sessions at once from one client IP (`smtp.max_connections_per_ip`).
    pub max_connections_per_ip: usize,
    /// Sessions at once from one IPv4 /24 or IPv6 /64 (`smtp.max_connections_per_network`).
    pub max_connections_per_network: usize,
    /// Longest a DATA transfer may take in all (`smtp.data_timeout_secs`).
    pub data_timeout: Duration,
    /// Slowest average DATA rate after the grace, bytes/s; 0: none
    /// (`smtp.data_min_bytes_per_sec`).
    pub data_min_rate: u64,
    /// How long a DATA transfer runs before its rate is checked (`smtp.data_rate_grace_secs`).
    pub data_rate_grace: Duration,
    /// Commands in a row that move no transaction forward before the session is closed
    /// (`smtp.max_commands_without_progress`).
    pub max_commands_without_progress: u32,
    /// Most `Received:` headers in a message (`smtp.max_received_headers`).
    pub max_received_headers: usize,
    /// Most `X-Thwonk-Loop` fields in a message (`smtp.max_thwonk_hops`).
    pub max_thwonk_hops: usize,
}

impl Limits {
    /// The configured limits, with the named defaults for the rest.
    pub fn from_config(smtp: &SmtpConfig) -> Limits {
        Limits {
            max_message_size: smtp.max_message_size,
            max_recipients: usize::try_from(smtp.max_recipients).unwrap_or(usize::MAX),
            idle_timeout: smtp.idle_timeout.max(MIN_IDLE_TIMEOUT),
            max_command_line: usize::try_from(smtp.max_line_length)
                .unwrap_or(usize::MAX)
                .max(MAX_COMMAND_LINE),
            read_buffer: DEFAULT_READ_BUFFER,
            max_bad_commands: DEFAULT_MAX_BAD_COMMANDS,
            // Sessions at once bound memory: each may hold up to a whole message.
            max_sessions: usize::try_from(smtp.max_sessions).unwrap_or(usize::MAX),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_connections_per_ip: usize::try_from(smtp.max_connections_per_ip)
                .unwrap_or(usize::MAX),
            max_connections_per_network: usize::try_from(smtp.max_connections_per_network)
                .unwrap_or(usize::MAX),
            data_timeout: smtp.data_timeout.max(MIN_IDLE_TIMEOUT),
            data_min_rate: u64::from(smtp.data_min_bytes_per_sec),
            data_rate_grace: smtp.data_rate_grace,
            max_commands_without_progress: smtp.max_commands_without_progress,
            max_received_headers: usize::try_from(smtp.max_received_headers).unwrap_or(usize::MAX),
            max_thwonk_hops: usize::try_from(smtp.max_thwonk_hops).unwrap_or(usize::MAX),
        }
    }
}
