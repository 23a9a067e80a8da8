//! The one SMTP client of the tests and the load tool: exact bytes out, one (possibly
//! multi-line) reply in, so that a test reads like an SMTP transcript.
//!
//! Two layers: fallible calls (`try_connect`, `write`, `read_reply`, `command`,
//! `pipelined`) for callers that expect the server to fail or go away (the fault tests, the
//! load tool), and panicking ones (`connect`, `send`, `reply`, `expect`, `cmd`) for tests
//! where any failure is the test failing. The client is generic over its stream, so a test
//! can go on over TLS after STARTTLS ([`SmtpClient::into_stream`], [`SmtpClient::over`]).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a reply may take unless told otherwise ([`SmtpClient::reply_timeout`]).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// An SMTP client over `S` (TCP unless said otherwise).
pub struct SmtpClient<S = TcpStream> {
    stream: BufReader<S>,
    timeout: Duration,
}

/// The code of a reply (its first three digits); 0 when it has none.
pub fn code(reply: &str) -> u16 {
    reply.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// `body` as DATA content: a dot doubled at the start of every line, CRLF added to an
/// unterminated last line, and the final `.` line.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 50 + 8);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl SmtpClient<TcpStream> {
    /// Connect (no greeting read yet). Nagle's algorithm stays on, as for most clients;
    /// the load tool turns it off ([`SmtpClient::nodelay`]).
    pub async fn try_connect(addr: SocketAddr) -> io::Result<SmtpClient> {
        Ok(SmtpClient::over(TcpStream::connect(addr).await?))
    }

    /// Send each write at once (`TCP_NODELAY`): no wait for the ACK of the previous one.
    pub fn nodelay(self) -> io::Result<SmtpClient> {
        self.stream.get_ref().set_nodelay(true)?;
        Ok(self)
    }

    /// Connect or panic (no greeting read yet).
    pub async fn connect(addr: SocketAddr) -> SmtpClient {
        SmtpClient::try_connect(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
    }

    /// Connect, read the 220 greeting and say `EHLO name` (250): ready for MAIL.
    pub async fn hello(addr: SocketAddr, name: &str) -> io::Result<SmtpClient> {
        let mut c = SmtpClient::try_connect(addr).await?;
        c.greet(name).await?;
        Ok(c)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpClient<S> {
    /// A client on an open stream (a TLS stream after STARTTLS, say).
    pub fn over(stream: S) -> SmtpClient<S> {
        SmtpClient {
            stream: BufReader::new(stream),
            timeout: REPLY_TIMEOUT,
        }
    }

    /// Wait at most `timeout` for each reply (and for the close in `read_to_close`).
    pub fn reply_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The stream, to hand it to a TLS handshake. Fails if the server already sent bytes
    /// after the last reply (they would be lost, or belong to the handshake).
    pub fn into_stream(self) -> io::Result<S> {
        if !self.stream.buffer().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "unread bytes after the last reply: {:?}",
                    self.stream.buffer()
                ),
            ));
        }
        Ok(self.stream.into_inner())
    }

    // ---- fallible ------------------------------------------------------------------------

    /// Read the 220 greeting and say `EHLO name` (250).
    pub async fn greet(&mut self, name: &str) -> io::Result<()> {
        self.expect_code(220, "greeting").await?;
        self.write(format!("EHLO {name}\r\n").as_bytes()).await?;
        self.expect_code(250, "EHLO").await
    }

    /// Write bytes exactly as given (one write) and flush.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let s = self.stream.get_mut();
        s.write_all(bytes).await?;
        s.flush().await
    }

    /// The next reply, all its lines, each with its CRLF. A closed connection, a line
    /// without CRLF or no reply within the timeout is an error.
    pub async fn read_reply(&mut self) -> io::Result<String> {
        let timeout = self.timeout;
        let read = async {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                let n = self.stream.read_line(&mut line).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed; reply so far: {reply:?}"),
                    ));
                }
                if !line.ends_with("\r\n") {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("reply line without CRLF: {line:?}"),
                    ));
                }
                reply.push_str(&line);
                // The last line of a reply has a space (or nothing) after the code.
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(reply);
                }
            }
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no reply within {timeout:?}"),
            )
        })?
    }

    /// The next reply's code; a reply that does not start with three digits is an error.
    pub async fn read_code(&mut self) -> io::Result<u16> {
        let reply = self.read_reply().await?;
        match code(&reply) {
            0 => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an SMTP reply: {:?}", reply.trim_end()),
            )),
            c => Ok(c),
        }
    }

    /// The next reply must have code `want`; `what` names the step in the error.
    pub async fn expect_code(&mut self, want: u16, what: &str) -> io::Result<()> {
        let got = self.read_code().await?;
        if got != want {
            return Err(io::Error::other(format!(
                "SMTP {what}: expected {want}, got {got}"
            )));
        }
        Ok(())
    }

    /// One command line (CRLF added); its reply.
    pub async fn command(&mut self, line: &str) -> io::Result<String> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply().await
    }

    /// MAIL, RCPT and DATA in one write (PIPELINING); their three codes.
    pub async fn pipelined(&mut self, from: &str, to: &str) -> io::Result<[u16; 3]> {
        let envelope = format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        self.write(envelope.as_bytes()).await?;
        Ok([
            self.read_code().await?,
            self.read_code().await?,
            self.read_code().await?,
        ])
    }

    /// After a 354: `body` dot-stuffed with its final dot; the reply to it.
    pub async fn data(&mut self, body: &[u8]) -> io::Result<String> {
        self.write(&dot_stuff(body)).await?;
        self.read_reply().await
    }

    /// QUIT politely; errors here do not matter.
    pub async fn quit(mut self) {
        if self.write(b"QUIT\r\n").await.is_ok() {
            let _ = self.read_reply().await;
        }
    }

    // ---- panicking -----------------------------------------------------------------------

    /// Write bytes exactly as given (one write).
    pub async fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.write(bytes).await.unwrap();
    }

    /// The next reply, all its lines, each with its CRLF.
    pub async fn reply(&mut self) -> String {
        self.read_reply().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next reply, which must start with `prefix`.
    pub async fn expect(&mut self, prefix: &str) -> String {
        let reply = self.reply().await;
        assert!(
            reply.starts_with(prefix),
            "expected a reply starting with {prefix:?}, got {reply:?}"
        );
        reply
    }

    /// Send one command line (CRLF added) and expect a reply starting with `prefix`.
    pub async fn cmd(&mut self, line: &str, prefix: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        let reply = self.reply().await;
        assert!(
            reply.starts_with(prefix),
            "{line}: expected a reply starting with {prefix:?}, got {reply:?}"
        );
        reply
    }

    /// One transaction from `from` to `rcpt` with `raw` as the message (dot-stuffed here):
    /// MAIL and RCPT must be accepted, DATA must be answered 354; the reply to the final dot.
    pub async fn message(&mut self, from: &str, rcpt: &str, raw: &[u8]) -> String {
        self.cmd(&format!("MAIL FROM:<{from}>"), "250 2.1.0").await;
        self.cmd(&format!("RCPT TO:<{rcpt}>"), "250 2.1.5").await;
        self.cmd("DATA", "354").await;
        self.send_bytes(&dot_stuff(raw)).await;
        self.reply().await
    }

    /// Everything the server sends until it closes the connection.
    pub async fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(self.timeout, self.stream.read_to_end(&mut rest))
            .await
            .expect("connection not closed in time")
            .ok();
        rest
    }

    /// The server closed the connection (after any replies still unread, which must be none).
    pub async fn expect_closed(&mut self) {
        let rest = self.read_to_close().await;
        assert!(
            rest.is_empty(),
            "unexpected data: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// Send one plain-text message (built by lettre's message builder) over SMTP, waiting for
/// the server's 250. Returns the message's `Message-ID` (without angle brackets).
pub async fn send_mail(
    smtp: SocketAddr,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> String {
    let message_id = format!("{}@client.test", thwonk_core::ids::new_id());
    let msg = lettre::Message::builder()
        .message_id(Some(format!("<{message_id}>")))
        .from(from.parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .body(body.to_string())
        .unwrap();
    let fail = |e: &dyn std::fmt::Display| -> ! {
        panic!("SMTP send {from} -> {to} ({subject}) failed: {e}")
    };
    let mut c = SmtpClient::hello(smtp, "client.test")
        .await
        .unwrap_or_else(|e| fail(&e));
    // The envelope as lettre's transport would take it from the message's headers.
    let envelope = msg.envelope();
    let mail_from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
    let rcpt_to = envelope
        .to()
        .first()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let codes = c
        .pipelined(&mail_from, &rcpt_to)
        .await
        .unwrap_or_else(|e| fail(&e));
    if codes != [250, 250, 354] {
        fail(&format!("MAIL, RCPT, DATA answered {codes:?}"));
    }
    let reply = c.data(&msg.formatted()).await.unwrap_or_else(|e| fail(&e));
    if code(&reply) != 250 {
        fail(&reply.trim_end());
    }
    c.quit().await;
    message_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_at_line_starts_are_doubled_and_the_data_ends_with_a_dot_line() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n..c"), b"..a\r\nb\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn a_code_is_three_digits_or_none() {
        assert_eq!(code("250 2.0.0 OK\r\n"), 250);
        assert_eq!(code("hello"), 0);
    }
}
