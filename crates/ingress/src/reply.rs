//! Every reply the server sends, in one place: code, enhanced status code and text.
//!
//! Enhanced status codes (RFC 3463, advertised as ENHANCEDSTATUSCODES) go on every 2xx, 4xx
//! and 5xx reply except the greeting and the HELO/EHLO replies (RFC 2034 §3). Texts never
//! carry client input unchecked: [`printable`] strips anything that could end a reply line.

use smtp_proto::{
    EXT_8BIT_MIME, EXT_ENHANCED_STATUS_CODES, EXT_HELP, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8,
    EXT_START_TLS, EhloResponse, Response,
};
use std::borrow::Cow;
use std::io::Write;

/// One reply to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A one-line reply.
    Line {
        code: u16,
        /// Enhanced status code, when the reply carries one.
        status: Option<[u8; 3]>,
        text: Cow<'static, str>,
    },
    /// The EHLO reply with our extensions.
    Ehlo {
        hostname: String,
        max_size: u64,
        /// Advertise STARTTLS (configured, and not in TLS yet).
        starttls: bool,
    },
}

const fn line(code: u16, status: [u8; 3], text: &'static str) -> Reply {
    Reply::Line {
        code,
        status: Some(status),
        text: Cow::Borrowed(text),
    }
}

fn owned(code: u16, status: [u8; 3], text: String) -> Reply {
    Reply::Line {
        code,
        status: Some(status),
        text: Cow::Owned(text),
    }
}

impl Reply {
    /// `220 {hostname} ESMTP Thwonk`
    pub(crate) fn greeting(hostname: &str) -> Reply {
        Reply::Line {
            code: 220,
            status: None,
            text: Cow::Owned(format!("{hostname} ESMTP Thwonk")),
        }
    }

    pub(crate) fn ehlo(hostname: &str, max_size: u64, starttls: bool) -> Reply {
        Reply::Ehlo {
            hostname: hostname.to_string(),
            max_size,
            starttls,
        }
    }

    pub(crate) fn helo(hostname: &str) -> Reply {
        Reply::Line {
            code: 250,
            status: None,
            text: Cow::Owned(hostname.to_string()),
        }
    }

    pub(crate) const OK: Reply = line(250, [2, 0, 0], "Ok");
    pub(crate) const SENDER_OK: Reply = line(250, [2, 1, 0], "Sender ok");
    pub(crate) const RECIPIENT_OK: Reply = line(250, [2, 1, 5], "Recipient ok");
    pub(crate) const START_DATA: Reply = Reply::Line {
        code: 354,
        status: None,
        text: Cow::Borrowed("End data with <CR><LF>.<CR><LF>"),
    };
    pub(crate) const BYE: Reply = line(221, [2, 0, 0], "Bye");
    pub(crate) const VRFY: Reply = line(
        252,
        [2, 5, 0],
        "Cannot VRFY user, but will accept message and attempt delivery",
    );
    pub(crate) const HELP: Reply = line(
        214,
        [2, 0, 0],
        "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
    );

    pub(crate) fn queued(ids: &[String]) -> Reply {
        owned(
            250,
            [2, 0, 0],
            format!("Ok: queued as {}", printable(&ids.join(" "))),
        )
    }

    pub(crate) const UNKNOWN_COMMAND: Reply = line(500, [5, 5, 1], "Command unrecognized");
    pub(crate) const LINE_TOO_LONG: Reply = line(500, [5, 5, 2], "Line too long");

    pub(crate) fn syntax(text: &str) -> Reply {
        owned(501, [5, 5, 4], format!("Syntax error: {}", printable(text)))
    }

    pub(crate) fn not_implemented(command: &str) -> Reply {
        owned(
            502,
            [5, 5, 1],
            format!("{} not implemented", printable(command)),
        )
    }

    pub(crate) const HELLO_FIRST: Reply = line(503, [5, 5, 1], "Send EHLO or HELO first");
    pub(crate) const NESTED_MAIL: Reply = line(503, [5, 5, 1], "Sender already given");
    pub(crate) const MAIL_FIRST: Reply = line(503, [5, 5, 1], "Send MAIL first");
    pub(crate) const NO_VALID_RECIPIENTS: Reply = line(554, [5, 5, 1], "No valid recipients");

    pub(crate) fn unsupported_parameter(param: &str) -> Reply {
        owned(
            555,
            [5, 5, 4],
            format!("Parameter {} not supported", printable(param)),
        )
    }

    pub(crate) const BAD_SENDER: Reply = line(501, [5, 1, 7], "Bad sender address syntax");
    pub(crate) const BAD_RECIPIENT: Reply = line(501, [5, 1, 3], "Bad recipient address syntax");
    pub(crate) const NON_ASCII_ADDRESS: Reply =
        line(553, [5, 6, 7], "Non-ASCII address without SMTPUTF8 on MAIL");
    pub(crate) const UNKNOWN_RECIPIENT: Reply = line(550, [5, 1, 1], "No such rules address here");
    pub(crate) const NOT_TAKING_MAIL: Reply = line(
        450,
        [4, 2, 1],
        "Rules address not taking mail right now, try again later",
    );
    pub(crate) const RELAYING_DENIED: Reply =
        line(550, [5, 7, 1], "Relaying denied: domain not ours");
    pub(crate) const TOO_MANY_RECIPIENTS: Reply = line(452, [4, 5, 3], "Too many recipients");
    /// Too many message bytes are being received at once (`smtp.max_bytes_in_flight`).
    pub(crate) const INSUFFICIENT_STORAGE: Reply =
        line(452, [4, 3, 1], "Insufficient system storage, try later");

    pub(crate) fn message_too_big(max: u64) -> Reply {
        owned(
            552,
            [5, 3, 4],
            format!("Message too big: at most {max} bytes accepted"),
        )
    }

    pub(crate) fn temporary_failure(reason: &str) -> Reply {
        owned(
            451,
            [4, 3, 0],
            format!("{}, try again later", printable(reason)),
        )
    }

    /// A DATA transfer past `smtp.data_timeout_secs`.
    pub(crate) fn data_too_long(limit: std::time::Duration) -> Reply {
        owned(
            421,
            [4, 4, 2],
            format!(
                "Message transfer took longer than {} s, closing",
                limit.as_secs()
            ),
        )
    }

    /// A DATA transfer slower than `smtp.data_min_bytes_per_sec` on average.
    pub(crate) fn data_too_slow(rate: u64) -> Reply {
        owned(
            421,
            [4, 4, 2],
            format!("Message transfer slower than {rate} bytes/s, closing"),
        )
    }

    pub(crate) const IDLE_TIMEOUT: Reply = line(421, [4, 4, 2], "Idle too long, closing");
    pub(crate) const SHUTTING_DOWN: Reply = line(421, [4, 3, 2], "Shutting down");
    pub(crate) const TOO_MANY_ERRORS: Reply = line(421, [4, 7, 0], "Too many errors, closing");
    pub(crate) const TOO_BUSY: Reply = line(421, [4, 3, 2], "Too many connections, try later");
    pub(crate) const TOO_MANY_FROM_IP: Reply = line(
        421,
        [4, 7, 0],
        "Too many connections from your address, try later",
    );
    pub(crate) const TOO_MANY_FROM_NETWORK: Reply = line(
        421,
        [4, 7, 0],
        "Too many connections from your network, try later",
    );
    pub(crate) const NO_PROGRESS: Reply = line(
        421,
        [4, 7, 0],
        "Too many commands without progress, closing",
    );

    pub(crate) const READY_FOR_TLS: Reply = line(220, [2, 0, 0], "Ready to start TLS");
    pub(crate) const TLS_ACTIVE: Reply = line(503, [5, 5, 1], "TLS already active");
    pub(crate) const TLS_IN_TRANSACTION: Reply =
        line(503, [5, 5, 1], "STARTTLS not allowed in a mail transaction");
    pub(crate) const TLS_REQUIRED: Reply =
        line(530, [5, 7, 0], "Must issue a STARTTLS command first");

    /// The message passed through this thwonk already, or through too many hosts.
    pub(crate) fn mail_loop(detail: &str) -> Reply {
        owned(
            554,
            [5, 4, 6],
            format!("Mail loop detected: {}", printable(detail)),
        )
    }

    /// A protocol error (syntax, sequence, unknown command): counted against the session.
    pub(crate) fn is_protocol_error(&self) -> bool {
        matches!(
            self,
            Reply::Line {
                code: 500..=504 | 555,
                ..
            }
        )
    }

    /// Append the reply, CRLF-terminated, to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail, so the io::Results below carry nothing.
        match self {
            Reply::Line {
                code,
                status: Some([class, subject, detail]),
                text,
            } => {
                let _ = Response::new(*code, *class, *subject, *detail, text).write(out);
            }
            Reply::Line {
                code,
                status: None,
                text,
            } => {
                let _ = write!(out, "{code} {text}\r\n");
            }
            Reply::Ehlo {
                hostname,
                max_size,
                starttls,
            } => {
                let mut ehlo = EhloResponse::new(hostname.as_str());
                ehlo.capabilities = EXT_PIPELINING
                    | EXT_SIZE
                    | EXT_8BIT_MIME
                    | EXT_SMTP_UTF8
                    | EXT_ENHANCED_STATUS_CODES
                    | EXT_HELP;
                if *starttls {
                    ehlo.capabilities |= EXT_START_TLS;
                }
                ehlo.size = usize::try_from(*max_size).unwrap_or(usize::MAX);
                let _ = ehlo.write(out);
            }
        }
    }
}

/// `text` with everything but printable ASCII replaced by `?`, so that no client-supplied
/// or error text can break a reply line.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: &Reply) -> String {
        let mut out = Vec::new();
        reply.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn replies_carry_enhanced_codes_except_greeting_and_hello() {
        assert_eq!(
            text(&Reply::greeting("mx.example.org")),
            "220 mx.example.org ESMTP Thwonk\r\n"
        );
        assert_eq!(text(&Reply::OK), "250 2.0.0 Ok\r\n");
        assert_eq!(text(&Reply::helo("mx")), "250 mx\r\n");
        assert_eq!(
            text(&Reply::message_too_big(1024)),
            "552 5.3.4 Message too big: at most 1024 bytes accepted\r\n"
        );
    }

    #[test]
    fn ehlo_advertises_exactly_our_extensions() {
        for starttls in [false, true] {
            let t = text(&Reply::ehlo("mx", 2048, starttls));
            let lines: Vec<&str> = t.split("\r\n").filter(|l| !l.is_empty()).collect();
            assert!(lines[0].starts_with("250-mx"));
            let mut exts: Vec<&str> = lines[1..].iter().map(|l| &l[4..]).collect();
            exts.sort();
            let mut expected = vec![
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "HELP",
                "PIPELINING",
                "SIZE 2048",
                "SMTPUTF8",
            ];
            if starttls {
                expected.push("STARTTLS");
            }
            assert_eq!(exts, expected);
            assert!(lines.last().unwrap().starts_with("250 "));
        }
    }

    #[test]
    fn client_text_cannot_break_a_reply_line() {
        assert_eq!(
            text(&Reply::temporary_failure("db\r\n250 ok")),
            "451 4.3.0 db??250 ok, try again later\r\n"
        );
    }
}
