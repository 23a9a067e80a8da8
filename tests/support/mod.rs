//! What the end-to-end tests share: the daemon as a child process, a real SMTP relay that
//! records what it receives, the CLI, and a PostgreSQL scratch database when one is
//! configured.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thwonk_core::Address;
use thwonk_ingress::{DeliverError, Envelope, MailSink, RcptVerdict};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

pub const THWONK: &str = env!("CARGO_BIN_EXE_thwonk");

/// The repository root (for `sandbox-scripts/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A message the relay received.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> thwonk_core::run::MessageView {
        thwonk_mail::parse_message(
            &self.raw,
            &thwonk_mail::InboundEnvelope {
                id: "relay",
                mail_from: &self.mail_from,
                to: "",
                recipients: &self.rcpt_to,
                received_at_ms: 0,
            },
        )
    }
}

#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Received>>,
    /// How long the relay holds each message before it answers 250.
    delay: Duration,
    /// Recipients answered with something else than 250 at RCPT (lower case).
    refused: Mutex<std::collections::HashMap<String, RcptVerdict>>,
    /// Every recipient asked for at RCPT, in order (lower case).
    asked: Mutex<Vec<String>>,
}

impl MailSink for Recorder {
    async fn check_recipient(&self, rcpt: &Address) -> RcptVerdict {
        let rcpt = rcpt.to_string().to_lowercase();
        self.asked.lock().unwrap().push(rcpt.clone());
        self.refused
            .lock()
            .unwrap()
            .get(&rcpt)
            .cloned()
            .unwrap_or(RcptVerdict::Accept)
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        raw: Vec<u8>,
    ) -> Result<Vec<String>, DeliverError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut r = self.received.lock().unwrap();
        r.push(Received {
            mail_from: envelope.mail_from.clone(),
            rcpt_to: envelope.rcpt_to.iter().map(|a| a.to_string()).collect(),
            raw,
        });
        Ok(vec![format!("relay-{}", r.len())])
    }
}

/// A real SMTP server (Thwonk's own ingress protocol code) standing in for the relay; it
/// accepts every recipient (except those told otherwise with [`Relay::refuse`]) and records
/// every message.
pub struct Relay {
    pub addr: SocketAddr,
    recorder: Arc<Recorder>,
    stop: CancellationToken,
}

impl Relay {
    pub async fn start() -> Relay {
        Relay::start_on("127.0.0.1:0".parse().unwrap(), Duration::ZERO).await
    }

    /// A relay on `addr` (a port a stopped relay had, say) that waits `delay` before it
    /// answers each message's 250.
    pub async fn start_on(addr: SocketAddr, delay: Duration) -> Relay {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorder = Arc::new(Recorder {
            delay,
            ..Recorder::default()
        });
        let stop = CancellationToken::new();
        let smtp = thwonk_core::config::SmtpConfig {
            hostname: "relay.test".into(),
            ..Default::default()
        };
        tokio::spawn(thwonk_ingress::serve(
            listener,
            Arc::new(smtp),
            recorder.clone(),
            stop.clone(),
        ));
        Relay {
            addr,
            recorder,
            stop,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.recorder.received.lock().unwrap().clone()
    }

    /// Answer RCPT TO `rcpt` with `verdict` from now on: `RcptVerdict::Unknown` is
    /// `550 5.1.1`, `RcptVerdict::TempFail(..)` is `451 4.3.0`.
    pub fn refuse(&self, rcpt: &str, verdict: RcptVerdict) {
        self.recorder
            .refused
            .lock()
            .unwrap()
            .insert(rcpt.to_lowercase(), verdict);
    }

    /// Accept `rcpt` again.
    pub fn accept(&self, rcpt: &str) {
        self.recorder
            .refused
            .lock()
            .unwrap()
            .remove(&rcpt.to_lowercase());
    }

    /// Every recipient the relay was asked for at RCPT TO, in order, lower case.
    pub fn asked(&self) -> Vec<String> {
        self.recorder.asked.lock().unwrap().clone()
    }

    /// Wait until `pred` holds for what was received, or panic after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; the relay has {got:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The environment every command of one test shares.
#[derive(Clone)]
pub struct Env {
    pub vars: Vec<(String, String)>,
    /// Working directory of every command (the repository root by default).
    pub cwd: PathBuf,
}

impl Env {
    /// A data directory, relay mode to `relay`, and the database (`database_url` or the
    /// SQLite default in the data directory).
    pub fn new(data_dir: &Path, relay: SocketAddr, database_url: Option<&str>) -> Env {
        let mut vars = vec![
            ("THWONK_DATA_DIR".into(), data_dir.display().to_string()),
            ("THWONK_SMTP_LISTEN".into(), "127.0.0.1:0".into()),
            ("THWONK_HTTP_LISTEN".into(), "127.0.0.1:0".into()),
            ("THWONK_SMTP_DOMAINS".into(), "example.org".into()),
            ("THWONK_SMTP_HOSTNAME".into(), "mx.example.org".into()),
            ("THWONK_EGRESS_MODE".into(), "relay".into()),
            ("THWONK_EGRESS_RELAY".into(), relay.to_string()),
            ("THWONK_EGRESS_TIMEOUT_SECS".into(), "10".into()),
            ("THWONK_LOG".into(), "info".into()),
        ];
        if let Some(url) = database_url {
            vars.push(("THWONK_DATABASE_URL".into(), url.to_string()));
        }
        Env { vars, cwd: repo() }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(THWONK);
        for (k, _) in std::env::vars() {
            if k.starts_with("THWONK_") {
                c.env_remove(k);
            }
        }
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c.args(args).current_dir(&self.cwd);
        c
    }

    /// Run a CLI command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run thwonk")
    }

    /// Run a CLI command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "thwonk {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `thwonk serve` as a child process.
pub struct Daemon {
    child: Child,
    pub smtp: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Start `thwonk serve` and wait until it is ready; its SMTP address comes from its log,
    /// so the port is chosen by the kernel and never races with another test.
    pub async fn start(env: &Env) -> Daemon {
        Daemon::start_role(env, "serve").await
    }

    /// Start one role (`serve`, `ingress`, `runner` or `egress`) and wait until it is ready.
    /// Only roles that include the ingress have an SMTP address; for the others it is
    /// 0.0.0.0:0.
    pub async fn start_role(env: &Env, role: &str) -> Daemon {
        let mut child = env
            .command(&[role])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn thwonk serve");
        let stderr = tokio::process::ChildStderr::from_std(child.stderr.take().unwrap()).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let keep = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[thwonk] {line}");
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut smtp = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("thwonk serve did not become ready in 30 s")
                .expect("thwonk serve exited before it was ready");
            if line.contains("SMTP ingress listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                smtp = Some(a.split_whitespace().next().unwrap().parse().unwrap());
            }
            if line.contains("thwonk ready") {
                break;
            }
        }
        let has_smtp = matches!(role, "serve" | "ingress");
        Daemon {
            child,
            smtp: match smtp {
                Some(a) => a,
                None if !has_smtp => "0.0.0.0:0".parse().unwrap(),
                None => panic!("the log names the SMTP address"),
            },
            log,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The HTTP API's address, from the log (roles that include the API: `serve`, `api`).
    pub fn http_addr(&self) -> SocketAddr {
        self.log()
            .iter()
            .find(|l| l.contains("HTTP API listening"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .expect("the log names the HTTP address")
    }

    /// The process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and return at once.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait up to `limit` for the process to exit; its exit status, or None if it was still
    /// running (it is then killed).
    pub async fn wait_exit(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then wait; the exit status must be success within `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let pid = self.child.id() as i32;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "thwonk serve exited with {status}");
                return;
            }
            if start.elapsed() > grace {
                let _ = self.child.kill();
                panic!("thwonk serve did not stop within {grace:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Daemon {
    /// SIGKILL: the daemon gets no chance to clean up.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Send one plain-text message over SMTP, waiting for the server's 250. Returns the
/// message's `Message-ID` (without angle brackets).
pub async fn send_mail(
    smtp: SocketAddr,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> String {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let message_id = format!("{}@client.test", thwonk_core::ids::new_id());
    let msg = Message::builder()
        .message_id(Some(format!("<{message_id}>")))
        .from(from.parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .body(body.to_string())
        .unwrap();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .build();
    transport
        .send(msg)
        .await
        .unwrap_or_else(|e| panic!("SMTP send {from} -> {to} ({subject}) failed: {e}"));
    message_id
}

/// The PostgreSQL server the PG variants run against, from `THWONK_TEST_POSTGRES_URL`.
pub fn postgres_url() -> Option<String> {
    std::env::var("THWONK_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The daemon's private Redis (started by `thwonk serve` in `data_dir`).
pub async fn private_redis(data_dir: &Path) -> thwonk_thoonk::Redis {
    let url = format!("unix://{}", data_dir.join("redis.sock").display());
    thwonk_thoonk::Redis::connect(&url)
        .await
        .expect("the daemon's private redis")
}

/// Poll `probe` every 50 ms until it returns `Some`, or panic after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
