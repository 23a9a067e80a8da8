//! One SMTP session: the protocol state machine, from greeting to QUIT.
//!
//! Commands are parsed by `smtp-proto` (Stalwart's parser) and answered here; the session
//! knows nothing of storage beyond the [`MailSink`] it is given. State is the HELO name and
//! the transaction in progress (sender, accepted recipients); everything else is per
//! command.

use crate::connection::{CommandLine, Connection, ConnectionError, DataPace};
use crate::data::{DataReader, LineEnds};
use crate::limits::Limits;
use crate::loops;
use crate::received::{Trace, received_header};
use crate::reply::Reply;
use crate::sink::{Envelope, MailSink, RcptVerdict};
use crate::tls::SmtpStream;
use smtp_proto::{
    Error as ParseError, MAIL_BODY_BINARYMIME, MAIL_REQUIRETLS, MAIL_SMTPUTF8, MailFrom, RcptTo,
    Request,
};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use thwonk_core::Address;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// What every session of one server shares.
pub(crate) struct SessionContext<S> {
    pub(crate) sink: Arc<S>,
    /// Our name in the greeting, EHLO and `Received:`.
    pub(crate) hostname: String,
    pub(crate) limits: Limits,
    /// Message bytes held by every session's DATA (`smtp.max_bytes_in_flight`).
    pub(crate) in_flight: crate::in_flight::InFlight,
    pub(crate) shutdown: CancellationToken,
    /// STARTTLS, when a certificate is configured.
    pub(crate) tls: Option<TlsAcceptor>,
    /// Refuse MAIL before STARTTLS.
    pub(crate) require_tls: bool,
}

/// Serve one client until QUIT, a timeout, an error or the shutdown.
pub(crate) async fn run<S: MailSink>(
    stream: TcpStream,
    client_ip: IpAddr,
    context: Arc<SessionContext<S>>,
) {
    let mut session = Session {
        conn: Connection::new(SmtpStream::Plain(stream), &context.limits),
        context,
        client_ip,
        hello: None,
        transaction: None,
        protocol_errors: 0,
        without_progress: 0,
        progressed: false,
    };
    let ended = session.serve().await;
    let goodbye = match &ended {
        Ok(()) => None,
        Err(ConnectionError::Idle(_)) => Some(Reply::IDLE_TIMEOUT),
        Err(ConnectionError::Shutdown) => Some(Reply::SHUTTING_DOWN),
        Err(ConnectionError::DataTooLong(limit)) => {
            thwonk_core::metrics::INGRESS_REFUSED.inc(&["too_slow"]);
            Some(Reply::data_too_long(*limit))
        }
        Err(ConnectionError::DataTooSlow(rate)) => {
            thwonk_core::metrics::INGRESS_REFUSED.inc(&["too_slow"]);
            Some(Reply::data_too_slow(*rate))
        }
        Err(ConnectionError::Closed | ConnectionError::Io(_)) => None,
    };
    if let Some(reply) = goodbye {
        session.conn.send(&reply);
        // Best effort: the client may be gone already.
        let _ = session.conn.close().await;
    }
    match ended {
        Ok(()) | Err(ConnectionError::Closed | ConnectionError::Shutdown) => {
            tracing::debug!(%client_ip, "session ended")
        }
        Err(e) => tracing::debug!(%client_ip, error = %e, "session ended"),
    }
}

/// What the client said in HELO/EHLO.
struct Hello {
    name: String,
    /// EHLO rather than HELO.
    esmtp: bool,
}

/// The mail transaction in progress (between MAIL and the end of DATA).
struct Transaction {
    mail_from: String,
    rcpt_to: Vec<Address>,
    /// MAIL said SMTPUTF8: UTF-8 addresses (and headers) are allowed.
    utf8: bool,
}

struct Session<S> {
    conn: Connection<SmtpStream>,
    context: Arc<SessionContext<S>>,
    client_ip: IpAddr,
    hello: Option<Hello>,
    transaction: Option<Transaction>,
    protocol_errors: u32,
    /// Commands in a row that moved no mail forward.
    without_progress: u32,
    /// The last command moved mail forward (accepted MAIL or RCPT, a DATA transfer).
    progressed: bool,
}

/// Whether the session goes on after a command.
enum Next {
    Continue,
    Quit,
}

impl<S: MailSink> Session<S> {
    async fn serve(&mut self) -> Result<(), ConnectionError> {
        self.conn.send(&Reply::greeting(&self.context.hostname));
        loop {
            // A command already buffered when the shutdown came is answered with 421 too.
            if self.context.shutdown.is_cancelled() {
                return Err(ConnectionError::Shutdown);
            }
            let next = match self.conn.read_command(&self.context.shutdown).await? {
                CommandLine::TooLong => {
                    self.reply(Reply::LINE_TOO_LONG);
                    Next::Continue
                }
                CommandLine::Line(line) => self.command(&line).await?,
            };
            if let Next::Quit = next {
                self.conn.send(&Reply::BYE);
                return self.conn.close().await;
            }
            if self.protocol_errors >= self.context.limits.max_bad_commands {
                self.conn.send(&Reply::TOO_MANY_ERRORS);
                return self.conn.close().await;
            }
            if std::mem::take(&mut self.progressed) {
                self.without_progress = 0;
            } else {
                self.without_progress += 1;
                if self.without_progress >= self.context.limits.max_commands_without_progress {
                    tracing::info!(client_ip = %self.client_ip, "too many commands without progress");
                    self.conn.send(&Reply::NO_PROGRESS);
                    return self.conn.close().await;
                }
            }
        }
    }

    fn in_tls(&mut self) -> bool {
        self.conn.stream_mut().is_tls()
    }

    /// STARTTLS (RFC 3207): 220, the handshake, then a fresh start: the client must say
    /// EHLO again, and nothing it sent behind STARTTLS in plain text is kept.
    async fn starttls(&mut self) -> Result<Next, ConnectionError> {
        let Some(acceptor) = self.context.tls.clone() else {
            self.reply(Reply::not_implemented("STARTTLS"));
            return Ok(Next::Continue);
        };
        if self.in_tls() {
            self.reply(Reply::TLS_ACTIVE);
            return Ok(Next::Continue);
        }
        if self.transaction.is_some() {
            self.reply(Reply::TLS_IN_TRANSACTION);
            return Ok(Next::Continue);
        }
        self.conn.send(&Reply::READY_FOR_TLS);
        self.conn.flush().await?;
        let dropped = self.conn.discard_buffered();
        if dropped > 0 {
            tracing::info!(
                client_ip = %self.client_ip, dropped,
                "discarded plain-text input pipelined behind STARTTLS"
            );
        }
        let SmtpStream::Plain(tcp) =
            std::mem::replace(self.conn.stream_mut(), SmtpStream::Upgrading)
        else {
            return Err(std::io::Error::other("STARTTLS on a stream that is not plain TCP").into());
        };
        let timeout = self.context.limits.idle_timeout;
        let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(ConnectionError::Io(e)),
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "TLS handshake took longer than the idle timeout",
                )
                .into());
            }
        };
        *self.conn.stream_mut() = SmtpStream::Tls(Box::new(tls));
        self.hello = None;
        self.transaction = None;
        Ok(Next::Continue)
    }

    /// Queue a reply, counting protocol errors.
    fn reply(&mut self, reply: Reply) {
        if reply.is_protocol_error() {
            self.protocol_errors += 1;
        }
        self.conn.send(&reply);
    }

    async fn command(&mut self, line: &[u8]) -> Result<Next, ConnectionError> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(e) => {
                self.reply(parse_error_reply(&e));
                return Ok(Next::Continue);
            }
        };
        let reply = match request {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => {
                // The line end of DATA itself says how the body's lines end (data.rs).
                let line_ends = if line.ends_with(b"\r\n") {
                    LineEnds::Crlf
                } else {
                    LineEnds::BareLf
                };
                self.data(line_ends).await?
            }
            Request::Rset => {
                self.transaction = None;
                Reply::OK
            }
            Request::Noop { .. } => Reply::OK,
            Request::Vrfy { .. } => Reply::VRFY,
            Request::Help { .. } => Reply::HELP,
            Request::Quit => return Ok(Next::Quit),
            Request::Bdat { chunk_size, .. } => {
                // Its chunk follows the command at once; drop it, or it would be read as
                // commands.
                self.conn.discard(chunk_size as u64).await?;
                Reply::not_implemented("BDAT")
            }
            Request::StartTls => return self.starttls().await,
            // AUTH is not offered (no submission); the rest are extensions we do not
            // implement.
            other @ (Request::Auth { .. }
            | Request::Lhlo { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }) => Reply::not_implemented(other.name()),
        };
        self.reply(reply);
        Ok(Next::Continue)
    }

    fn hello(&mut self, name: Cow<'_, str>, esmtp: bool) -> Reply {
        self.hello = Some(Hello {
            name: name.into_owned(),
            esmtp,
        });
        // A new greeting starts over (RFC 5321 §4.1.4).
        self.transaction = None;
        let starttls = self.context.tls.is_some() && !self.in_tls();
        let hostname = &self.context.hostname;
        if esmtp {
            Reply::ehlo(hostname, self.context.limits.max_message_size, starttls)
        } else {
            Reply::helo(hostname)
        }
    }

    fn mail(&mut self, from: MailFrom<Cow<'_, str>>) -> Reply {
        if self.hello.is_none() {
            return Reply::HELLO_FIRST;
        }
        if self.transaction.is_some() {
            return Reply::NESTED_MAIL;
        }
        if self.context.require_tls && !self.in_tls() {
            return Reply::TLS_REQUIRED;
        }
        // Parameters whose promise we cannot keep. BODY=8BITMIME, BODY=7BIT and SMTPUTF8
        // need nothing from us; parameters of extensions we do not advertise (DSN and
        // others) are ignored.
        for (flag, name) in [
            (MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
            (MAIL_REQUIRETLS, "REQUIRETLS"),
        ] {
            if from.flags & flag != 0 {
                return Reply::unsupported_parameter(name);
            }
        }
        let max = self.context.limits.max_message_size;
        if from.size as u64 > max {
            thwonk_core::metrics::INGRESS_REFUSED.inc(&["too_large"]);
            return Reply::message_too_big(max);
        }
        let utf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if !utf8 && !from.address.is_ascii() {
            return Reply::NON_ASCII_ADDRESS;
        }
        self.transaction = Some(Transaction {
            mail_from: reverse_path(&from.address),
            rcpt_to: Vec::new(),
            utf8,
        });
        self.progressed = true;
        Reply::SENDER_OK
    }

    async fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>) -> Reply {
        let Some(transaction) = &self.transaction else {
            return Reply::MAIL_FIRST;
        };
        if transaction.rcpt_to.len() >= self.context.limits.max_recipients {
            thwonk_core::metrics::INGRESS_REFUSED.inc(&["too_many_recipients"]);
            return Reply::TOO_MANY_RECIPIENTS;
        }
        if !transaction.utf8 && !to.address.is_ascii() {
            return Reply::NON_ASCII_ADDRESS;
        }
        // smtp-proto gives `<postmaster>` (no domain) as "". We have no postmaster mailbox
        // of our own; rules addresses are the only recipients.
        if to.address.is_empty() {
            thwonk_core::metrics::INGRESS_REFUSED.inc(&["unknown_recipient"]);
            return Reply::UNKNOWN_RECIPIENT;
        }
        let Ok(rcpt) = Address::parse(&to.address) else {
            return Reply::BAD_RECIPIENT;
        };
        if transaction.rcpt_to.contains(&rcpt) {
            // Given twice: one delivery is enough.
            return Reply::RECIPIENT_OK;
        }
        let verdict = self.context.sink.check_recipient(&rcpt).await;
        match verdict {
            RcptVerdict::Accept => {
                if let Some(transaction) = &mut self.transaction {
                    transaction.rcpt_to.push(rcpt);
                }
                self.progressed = true;
                Reply::RECIPIENT_OK
            }
            RcptVerdict::Unknown => {
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["unknown_recipient"]);
                Reply::UNKNOWN_RECIPIENT
            }
            RcptVerdict::NotTakingMail => {
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["not_taking_mail"]);
                Reply::NOT_TAKING_MAIL
            }
            RcptVerdict::Relaying => {
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["foreign_domain"]);
                Reply::RELAYING_DENIED
            }
            RcptVerdict::TempFail(reason) => {
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["temporary_failure"]);
                Reply::temporary_failure(&reason)
            }
        }
    }

    async fn data(&mut self, line_ends: LineEnds) -> Result<Reply, ConnectionError> {
        let (Some(_), Some(transaction)) = (&self.hello, &self.transaction) else {
            return Ok(Reply::MAIL_FIRST);
        };
        if transaction.rcpt_to.is_empty() {
            return Ok(Reply::NO_VALID_RECIPIENTS);
        }
        let max = self.context.limits.max_message_size;
        self.conn.send(&Reply::START_DATA);
        let mut reader =
            DataReader::new(line_ends, max).with_room(self.context.in_flight.reservation());
        self.conn
            .read_data(&mut reader, DataPace::start(&self.context.limits))
            .await?;
        let out_of_room = reader.out_of_room();
        // Held until the message is stored (the end of this function): the body's bytes.
        let _room = reader.take_room();
        self.progressed = true;
        // The transaction ends here whatever happens next (RFC 5321 §4.1.1.4).
        let Some(mut transaction) = self.transaction.take() else {
            return Ok(Reply::MAIL_FIRST);
        };
        let body = match reader.finish() {
            Ok(body) => body,
            Err(too_large) => {
                tracing::info!(client_ip = %self.client_ip, size = too_large.size, "message too big");
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["too_large"]);
                return Ok(Reply::message_too_big(max));
            }
        };
        if out_of_room {
            tracing::warn!(
                client_ip = %self.client_ip,
                "too many message bytes in flight (smtp.max_bytes_in_flight), answering 452"
            );
            thwonk_core::metrics::INGRESS_REFUSED.inc(&["no_room"]);
            return Ok(Reply::INSUFFICIENT_STORAGE);
        }
        if let Err(refusal) = self.check_loops(&body, &mut transaction) {
            return Ok(refusal);
        }
        let tls = self.in_tls();
        let Some(hello) = &self.hello else {
            return Ok(Reply::MAIL_FIRST);
        };

        let id = thwonk_core::ids::new_id();
        let received_at_ms = thwonk_core::time::now_ms();
        let header = received_header(&Trace {
            helo: &hello.name,
            client_ip: self.client_ip,
            hostname: &self.context.hostname,
            esmtp: hello.esmtp,
            tls,
            utf8: transaction.utf8,
            id: &id,
            rcpt_to: &transaction.rcpt_to,
            received_at_ms,
        });
        // The header goes in front of the body in place: no second copy of a big message.
        let mut raw = body;
        raw.splice(0..0, header.bytes());

        let envelope = Envelope {
            mail_from: transaction.mail_from,
            rcpt_to: transaction.rcpt_to,
            client_ip: self.client_ip,
            helo: hello.name.clone(),
            received_at_ms,
        };
        // Replies still queued (the 354, when the whole body was already buffered) go out
        // before the possibly slow store, not after it.
        self.conn.flush().await?;
        Ok(match self.context.sink.deliver(&envelope, raw).await {
            Ok(ids) => {
                tracing::info!(
                    transaction = %id, ?ids, client_ip = %self.client_ip,
                    mail_from = %envelope.mail_from, rcpt_to = envelope.rcpt_to.len(),
                    "message accepted"
                );
                thwonk_core::metrics::INGRESS_ACCEPTED.inc(&[]);
                Reply::queued(&ids)
            }
            Err(e) => {
                tracing::warn!(transaction = %id, error = %e, "delivery failed, answering 451");
                thwonk_core::metrics::INGRESS_REFUSED.inc(&["temporary_failure"]);
                Reply::temporary_failure("Cannot store the message now")
            }
        })
    }
}

impl<S: MailSink> Session<S> {
    /// Loop protection (see `loops`): refuse the message, or drop the recipients it
    /// already passed through.
    fn check_loops(&self, body: &[u8], transaction: &mut Transaction) -> Result<(), Reply> {
        let max = self.context.limits.max_received_headers;
        let path = loops::scan(body, &transaction.rcpt_to);
        if path.received > max {
            tracing::info!(
                client_ip = %self.client_ip, received = path.received,
                "message refused: too many Received: fields"
            );
            return Err(Reply::mail_loop(&format!(
                "{} Received: fields, at most {max} accepted",
                path.received
            )));
        }
        let max_hops = self.context.limits.max_thwonk_hops;
        if path.hops > max_hops {
            tracing::warn!(
                client_ip = %self.client_ip, mail_from = %transaction.mail_from, hops = path.hops,
                "message refused: it passed through too many thwonks (X-Thwonk-Loop)"
            );
            return Err(Reply::mail_loop(&format!(
                "the message passed through {} thwonks (X-Thwonk-Loop fields), at most {max_hops} accepted: thwonks are answering each other",
                path.hops
            )));
        }
        if !path.looping.contains(&true) {
            return Ok(());
        }
        let rcpts = std::mem::take(&mut transaction.rcpt_to);
        let mut looping = Vec::new();
        for (rcpt, loops) in rcpts.into_iter().zip(path.looping) {
            if loops {
                looping.push(rcpt);
            } else {
                transaction.rcpt_to.push(rcpt);
            }
        }
        tracing::warn!(
            client_ip = %self.client_ip, mail_from = %transaction.mail_from, ?looping,
            "recipients dropped: the message already passed through them (X-Thwonk-Loop)"
        );
        if transaction.rcpt_to.is_empty() {
            let names: Vec<&str> = looping.iter().map(Address::as_str).collect();
            return Err(Reply::mail_loop(&format!(
                "already passed through {}",
                names.join(", ")
            )));
        }
        Ok(())
    }
}

/// The reply to a command smtp-proto could not parse.
fn parse_error_reply(e: &ParseError) -> Reply {
    match e {
        ParseError::UnknownCommand => Reply::UNKNOWN_COMMAND,
        ParseError::InvalidSenderAddress => Reply::BAD_SENDER,
        ParseError::InvalidRecipientAddress => Reply::BAD_RECIPIENT,
        ParseError::SyntaxError { syntax } => Reply::syntax(&format!("use {syntax}")),
        ParseError::InvalidParameter { param } => {
            Reply::syntax(&format!("invalid value for {param}"))
        }
        ParseError::UnsupportedParameter { param } => Reply::unsupported_parameter(param),
        // A whole line always reaches the parser, so these do not happen; answer as for
        // any other unreadable line.
        ParseError::NeedsMoreData { .. }
        | ParseError::ResponseTooLong
        | ParseError::InvalidResponse { .. } => Reply::syntax("unreadable command"),
    }
}

/// The reverse path as stored: smtp-proto removes the quotes of a quoted local part
/// (`"john doe"@example.org` arrives as `john doe@example.org`), so put them back where the
/// local part is not a plain dot-atom, or replies would go to a different address.
fn reverse_path(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        // "" (the null sender) or a bare name: nothing to quote.
        return address.to_string();
    };
    if is_dot_atom(local) {
        return address.to_string();
    }
    let mut quoted = String::with_capacity(address.len() + 4);
    quoted.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push_str("\"@");
    quoted.push_str(domain);
    quoted
}

/// RFC 5322 dot-atom: atext runs separated by single dots.
fn is_dot_atom(s: &str) -> bool {
    // RFC 6532 adds every non-ASCII UTF-8 character to atext (SMTPUTF8 addresses).
    let atext =
        |c: char| c.is_ascii_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_local_parts_are_quoted_again() {
        assert_eq!(reverse_path(""), "");
        assert_eq!(reverse_path("a.b@example.org"), "a.b@example.org");
        assert_eq!(
            reverse_path("john doe@example.org"),
            "\"john doe\"@example.org"
        );
        assert_eq!(reverse_path("a\"b@x.org"), "\"a\\\"b\"@x.org");
        assert_eq!(reverse_path("a..b@x.org"), "\"a..b\"@x.org");
    }

    #[test]
    fn smtp_proto_accepts_what_mailin_refused() {
        for line in [
            "MAIL FROM:<>\r\n",
            "MAIL FROM:<a@b.org> SIZE=1000\r\n",
            "MAIL FROM: <a@b.org>\r\n",
            "MAIL FROM:<a@b.org> BODY=8BITMIME\r\n",
            "MAIL FROM:<\"john doe\"@b.org>\r\n",
        ] {
            let r = Request::parse(&mut line.as_bytes().iter());
            assert!(matches!(r, Ok(Request::Mail { .. })), "{line:?}: {r:?}");
        }
    }
}
