//! A small pipelined SMTP client for the load: one session sends its messages one after the
//! other, each as MAIL, RCPT and DATA in one write (PIPELINING), then the body, and notes
//! the instant of the final `250`.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One SMTP session to `addr`.
pub struct Session {
    stream: BufReader<TcpStream>,
    line: String,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `250` after the body, at this instant.
    Accepted(Instant),
    /// Refused (any other reply at MAIL, RCPT, DATA or after the body); the code.
    Refused(u16),
}

/// A reply wait longer than this means the server is stuck: the load fails loudly.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

impl Session {
    /// Connect, read the greeting and say EHLO.
    pub async fn open(addr: SocketAddr) -> Result<Session> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let mut s = Session {
            stream: BufReader::new(tcp),
            line: String::new(),
        };
        expect(s.reply().await?, 220, "greeting")?;
        s.write(b"EHLO load.bench.test\r\n").await?;
        expect(s.reply().await?, 250, "EHLO")?;
        Ok(s)
    }

    /// Send one message; `body` is the whole message (headers and body, CRLF line ends,
    /// no line that is a lone `.`).
    pub async fn send(&mut self, from: &str, to: &str, body: &[u8]) -> Result<Outcome> {
        let envelope = format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        self.write(envelope.as_bytes()).await?;
        let mail = self.reply().await?;
        let rcpt = self.reply().await?;
        let data = self.reply().await?;
        if data != 354 {
            // The server refused the transaction somewhere; it is reset by the failed DATA.
            let code = [mail, rcpt, data]
                .into_iter()
                .find(|c| *c != 250 && *c != 354)
                .unwrap_or(data);
            return Ok(Outcome::Refused(code));
        }
        let mut payload = Vec::with_capacity(body.len() + 5);
        payload.extend_from_slice(body);
        payload.extend_from_slice(b"\r\n.\r\n");
        self.write(&payload).await?;
        let code = self.reply().await?;
        Ok(if code == 250 {
            Outcome::Accepted(Instant::now())
        } else {
            Outcome::Refused(code)
        })
    }

    /// QUIT politely; errors here do not matter to the load.
    pub async fn close(mut self) {
        if self.write(b"QUIT\r\n").await.is_ok() {
            let _ = self.reply().await;
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .get_mut()
            .write_all(bytes)
            .await
            .context("SMTP write failed")
    }

    /// Read one (possibly multi-line) reply; its code.
    async fn reply(&mut self) -> Result<u16> {
        loop {
            self.line.clear();
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read_line(&mut self.line))
                .await
                .context("no SMTP reply within 60 s")?
                .context("SMTP read failed")?;
            if n == 0 {
                bail!("the SMTP server closed the connection");
            }
            let line = self.line.as_bytes();
            if line.len() < 4 || !line[..3].iter().all(u8::is_ascii_digit) {
                bail!("not an SMTP reply: {:?}", self.line.trim_end());
            }
            if line[3] == b'-' {
                continue;
            }
            let code = self.line[..3].parse().context("reply code")?;
            return Ok(code);
        }
    }
}

fn expect(code: u16, want: u16, what: &str) -> Result<()> {
    if code != want {
        bail!("SMTP {what}: expected {want}, got {code}");
    }
    Ok(())
}
