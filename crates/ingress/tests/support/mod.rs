//! Test support: a server on 127.0.0.1 port 0 with an in-memory sink, and a raw-socket
//! client so that each test reads like an SMTP transcript.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thwonk_core::Address;
use thwonk_core::config::SmtpConfig;
use thwonk_ingress::{DeliverError, Envelope, MailSink, RcptVerdict};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for any one reply before failing.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// The domain the test sink serves.
pub const DOMAIN: &str = "example.org";

/// A sink that records deliveries. Addresses at [`DOMAIN`]: `tempfail@` gets a temporary
/// failure, the addresses it was built with are accepted, any other is unknown. Other
/// domains are relaying.
pub struct MemorySink {
    known: Vec<String>,
    pub deliveries: Mutex<Vec<(Envelope, Vec<u8>)>>,
    /// When set, `deliver` fails.
    pub fail: AtomicBool,
}

impl MemorySink {
    pub fn new(known: &[&str]) -> MemorySink {
        MemorySink {
            known: known.iter().map(|s| s.to_string()).collect(),
            deliveries: Mutex::new(Vec::new()),
            fail: AtomicBool::new(false),
        }
    }

    pub fn deliveries(&self) -> Vec<(Envelope, Vec<u8>)> {
        self.deliveries.lock().unwrap().clone()
    }

    /// The only delivery, as (envelope, message text).
    pub fn single(&self) -> (Envelope, String) {
        let d = self.deliveries();
        assert_eq!(d.len(), 1, "expected exactly one delivery, got {}", d.len());
        let (env, raw) = d.into_iter().next().unwrap();
        (env, String::from_utf8(raw).unwrap())
    }
}

impl MailSink for MemorySink {
    async fn check_recipient(&self, rcpt: &Address) -> RcptVerdict {
        if rcpt.domain() != DOMAIN {
            RcptVerdict::Relaying
        } else if rcpt.local() == "tempfail" {
            RcptVerdict::TempFail("Lookup failed".into())
        } else if self.known.iter().any(|k| k == rcpt.as_str()) {
            RcptVerdict::Accept
        } else {
            RcptVerdict::Unknown
        }
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        raw: Vec<u8>,
    ) -> Result<Vec<String>, DeliverError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(DeliverError::Unavailable("test sink failing".into()));
        }
        let mut d = self.deliveries.lock().unwrap();
        d.push((envelope.clone(), raw));
        Ok(vec![format!("msg-{}", d.len())])
    }
}

/// The configuration the tests start from.
pub fn config() -> SmtpConfig {
    SmtpConfig {
        hostname: "mx.test".into(),
        max_message_size: 64 * 1024,
        max_recipients: 10,
        idle_timeout: std::time::Duration::from_secs(30),
        ..SmtpConfig::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub sink: Arc<MemorySink>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<std::io::Result<()>>,
}

/// A server on 127.0.0.1 port 0 that knows `list@`, `other@` and `jörg@` [`DOMAIN`].
pub async fn start(config: SmtpConfig) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = Arc::new(MemorySink::new(&[
        "list@example.org",
        "other@example.org",
        "jörg@example.org",
    ]));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(thwonk_ingress::serve(
        listener,
        Arc::new(config),
        sink.clone(),
        shutdown.clone(),
    ));
    TestServer {
        addr,
        sink,
        shutdown,
        task,
    }
}

impl TestServer {
    /// A client that has read the greeting.
    pub async fn client(&self) -> Client {
        let mut c = Client::connect(self.addr).await;
        c.expect("220 mx.test ESMTP Thwonk").await;
        c
    }

    /// A client that has also said EHLO.
    pub async fn hello(&self) -> Client {
        let mut c = self.client().await;
        c.send("EHLO client.test\r\n").await;
        c.expect("250").await;
        c
    }
}

/// A raw SMTP client over TCP.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Client {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    /// Write bytes exactly as given (one write).
    pub async fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// The next reply, all its lines, each with its CRLF.
    pub async fn reply(&mut self) -> String {
        tokio::time::timeout(REPLY_WAIT, async {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                let n = self.reader.read_line(&mut line).await.unwrap();
                assert!(n > 0, "connection closed; reply so far: {reply:?}");
                assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
                reply.push_str(&line);
                // The last line of a reply has a space (or nothing) after the code.
                if line.as_bytes().get(3) != Some(&b'-') {
                    return reply;
                }
            }
        })
        .await
        .expect("no reply in time")
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
        self.expect(prefix).await
    }

    /// Everything the server sends until it closes the connection.
    pub async fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(REPLY_WAIT, self.reader.read_to_end(&mut rest))
            .await
            .expect("connection not closed in time")
            .ok();
        rest
    }

    /// The server closed the connection (after any replies still unread, which must be none).
    pub async fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(REPLY_WAIT, self.reader.read_to_end(&mut rest))
            .await
            .expect("connection not closed in time")
            .ok();
        assert!(
            rest.is_empty(),
            "unexpected data: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}
