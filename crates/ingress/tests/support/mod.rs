//! Test support: a server on 127.0.0.1 port 0 with an in-memory sink; the test kit's SMTP
//! client (`thwonk_testkit::SmtpClient`) makes each test read like an SMTP transcript.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thwonk_core::Address;
use thwonk_core::config::SmtpConfig;
use thwonk_ingress::{DeliverError, Envelope, MailSink, RcptVerdict};
use thwonk_testkit::SmtpClient;
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
    /// A connected client that has read nothing yet.
    pub async fn connect(&self) -> Client {
        SmtpClient::connect(self.addr)
            .await
            .reply_timeout(REPLY_WAIT)
    }

    /// A client that has read the greeting.
    pub async fn client(&self) -> Client {
        let mut c = self.connect().await;
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

/// The kit's raw SMTP client over TCP.
pub type Client = SmtpClient;
