//! The daemon as a child process: `thwonk serve` (or one role) started from a binary the
//! caller names (`env!("CARGO_BIN_EXE_thwonk")` in the thwonk package's tests, a path next
//! to the load tool), which learns its addresses from the ready file the daemon writes once
//! it serves (`--ready-file`, see `thwonk serve --help`), never from its log.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Which of the caller's own `THWONK_*` variables a command sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherit {
    /// None: a test is not steered by the shell it runs in.
    Nothing,
    /// All but those [`Env::vars`] sets (and `THWONK_CONFIG`): the load tool, so that
    /// `THWONK_RUNNER_CONCURRENCY=8 thwonk-bench` benchmarks that setting.
    Unset,
}

/// The program and environment every command of one test (or load) shares.
#[derive(Debug, Clone)]
pub struct Env {
    /// The `thwonk` binary.
    pub program: PathBuf,
    pub vars: Vec<(String, String)>,
    /// Working directory of every command.
    pub cwd: PathBuf,
    pub inherit: Inherit,
}

impl Env {
    /// The tests' environment: a data directory, the ports chosen by the kernel, the rules
    /// domain example.org, relay mode to `relay`, and the database (`database_url` or the
    /// SQLite default in the data directory).
    pub fn new(
        program: impl Into<PathBuf>,
        cwd: impl Into<PathBuf>,
        data_dir: &Path,
        relay: SocketAddr,
        database_url: Option<&str>,
    ) -> Env {
        let mut vars = daemon_vars(data_dir, relay, "example.org", "info", database_url);
        vars.push(("THWONK_EGRESS_TIMEOUT_SECS".into(), "10".into()));
        Env {
            program: program.into(),
            vars,
            cwd: cwd.into(),
            inherit: Inherit::Nothing,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        match self.inherit {
            Inherit::Nothing => {
                for (k, _) in std::env::vars() {
                    if k.starts_with("THWONK_") {
                        c.env_remove(k);
                    }
                }
            }
            Inherit::Unset => {
                for (k, _) in &self.vars {
                    c.env_remove(k);
                }
                c.env_remove("THWONK_CONFIG");
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

    /// Run a CLI command that must succeed; its standard output, or why it failed.
    pub fn try_ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if !out.status.success() {
            return Err(format!(
                "thwonk {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

/// The settings of a daemon on ports chosen by the kernel with its own data directory: rules
/// domain `domain` (its host name `mx.{domain}`), egress in relay mode to `relay`, log filter
/// `log`, and the database (`database_url`, or SQLite in the data directory).
pub fn daemon_vars(
    data_dir: &Path,
    relay: SocketAddr,
    domain: &str,
    log: &str,
    database_url: Option<&str>,
) -> Vec<(String, String)> {
    let mut vars = vec![
        ("THWONK_DATA_DIR".into(), data_dir.display().to_string()),
        ("THWONK_SMTP_LISTEN".into(), "127.0.0.1:0".into()),
        ("THWONK_HTTP_LISTEN".into(), "127.0.0.1:0".into()),
        ("THWONK_SMTP_DOMAINS".into(), domain.into()),
        ("THWONK_SMTP_HOSTNAME".into(), format!("mx.{domain}")),
        ("THWONK_EGRESS_MODE".into(), "relay".into()),
        ("THWONK_EGRESS_RELAY".into(), relay.to_string()),
        ("THWONK_LOG".into(), log.into()),
    ];
    // The sending and run-rate budgets are a public server's (tens of messages a minute); the
    // tests of other features and the load tool send far more, so they get budgets out of the
    // way. tests/budgets.rs sets the budgets it attacks after these (the last setting wins).
    for key in [
        "THWONK_BUDGETS_THWONK_MESSAGES_PER_MINUTE",
        "THWONK_BUDGETS_THWONK_RECIPIENTS_PER_HOUR",
        "THWONK_BUDGETS_THWONK_RECIPIENTS_PER_DAY",
        "THWONK_BUDGETS_OWNER_MESSAGES_PER_MINUTE",
        "THWONK_BUDGETS_OWNER_RECIPIENTS_PER_HOUR",
        "THWONK_BUDGETS_OWNER_RECIPIENTS_PER_DAY",
        "THWONK_BUDGETS_THWONK_RUNS_PER_MINUTE",
    ] {
        vars.push((key.into(), "100000000".into()));
    }
    // RFC 3834's once-a-day rule for the same reply to one correspondent: the tests of other
    // features answer one sender twice with the same text (tests/loops.rs sets it back).
    vars.push(("THWONK_RUNNER_AUTO_REPLY_INTERVAL_SECS".into(), "0".into()));
    if let Some(url) = database_url {
        vars.push(("THWONK_DATABASE_URL".into(), url.into()));
    }
    vars
}

/// What the daemon writes to its `--ready-file` once it serves (see `src/notify.rs`).
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    pub pid: u32,
    /// The SMTP ingress (roles `serve`, `ingress`).
    pub smtp: Option<SocketAddr>,
    /// The HTTP API (roles `serve`, `api`).
    pub http: Option<SocketAddr>,
    /// `/metrics` when `metrics.listen` is set.
    pub metrics: Option<SocketAddr>,
    /// The admin socket (roles `serve`, `api`).
    pub admin_socket: Option<PathBuf>,
    /// Where outgoing mail goes, in words (roles `serve`, `egress`).
    #[serde(default)]
    pub outgoing: Option<String>,
}

/// How a daemon is started.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// How long it may take to write its ready file.
    pub ready_timeout: Duration,
    /// Copy each log line to this process's standard error (`[thwonk] ...`).
    pub echo_log: bool,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            ready_timeout: Duration::from_secs(30),
            echo_log: true,
        }
    }
}

/// `thwonk serve` (or one role) as a child process; killed when dropped.
pub struct Daemon {
    child: Child,
    /// The SMTP ingress's address: 0.0.0.0:0 for roles without one.
    pub smtp: SocketAddr,
    pub ready: Ready,
    log: Arc<Mutex<Vec<String>>>,
    /// Holds the ready file.
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Start `thwonk serve` and wait until it is ready; its ports are chosen by the kernel
    /// and never race with another test.
    pub async fn start(env: &Env) -> Daemon {
        Daemon::start_role(env, "serve").await
    }

    /// Start one role (`serve`, `ingress`, `runner`, `egress` or `api`) and wait until it is
    /// ready.
    pub async fn start_role(env: &Env, role: &str) -> Daemon {
        Daemon::spawn(env, role, &DaemonOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start `role` and wait for its ready file; why not, as a sentence.
    pub async fn spawn(env: &Env, role: &str, options: &DaemonOptions) -> Result<Daemon, String> {
        let dir = tempfile::Builder::new()
            .prefix("thwonk-ready-")
            .tempdir()
            .map_err(|e| format!("cannot create a directory for the ready file: {e}"))?;
        let ready_file = dir.path().join("ready.json");
        let mut child = env
            .command(&[role, "--ready-file", &ready_file.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start thwonk {role}: {e}"))?;
        let stderr = child
            .stderr
            .take()
            .and_then(|s| tokio::process::ChildStderr::from_std(s).ok())
            .ok_or("cannot read the daemon's standard error")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        let echo = options.echo_log;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("[thwonk] {line}");
                }
                keep.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let mut daemon = Daemon {
            child,
            smtp: SocketAddr::from(([0, 0, 0, 0], 0)),
            ready: Ready {
                pid: 0,
                smtp: None,
                http: None,
                metrics: None,
                admin_socket: None,
                outgoing: None,
            },
            log,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            // The daemon writes the file whole and renames it into place: once it exists it
            // parses.
            if let Ok(text) = std::fs::read_to_string(&ready_file) {
                let ready: Ready = serde_json::from_str(&text)
                    .map_err(|e| format!("the ready file does not parse ({e}): {text}"))?;
                if let Some(a) = ready.smtp {
                    daemon.smtp = a;
                }
                daemon.ready = ready;
                return Ok(daemon);
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(format!(
                    "thwonk {role} exited ({status}) before it was ready; its log:\n{}",
                    daemon.log().join("\n")
                ));
            }
            if start.elapsed() > options.ready_timeout {
                return Err(format!(
                    "thwonk {role} did not become ready in {:?}",
                    options.ready_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The HTTP API's address (roles that include the API: `serve`, `api`).
    pub fn http_addr(&self) -> SocketAddr {
        self.ready.http.expect("the daemon serves the HTTP API")
    }

    /// The `/metrics` address (when `metrics.listen` is set).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.ready.metrics.expect("the daemon serves /metrics")
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
    pub async fn wait_exit(mut self, limit: Duration) -> Option<ExitStatus> {
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

    /// SIGTERM, then wait; the exit status must be success within `grace` (else it is
    /// killed). Why not, as a sentence.
    pub async fn try_stop(mut self, grace: Duration) -> Result<(), String> {
        let pid = self.child.id();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("thwonk serve exited with {status}")),
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for thwonk serve: {e}")),
            }
            if start.elapsed() > grace {
                let _ = self.child.kill();
                return Err(format!(
                    "thwonk serve did not stop within {grace:?} of SIGTERM"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then wait; the exit status must be success within `grace`.
    pub async fn stop(self, grace: Duration) {
        if let Err(e) = self.try_stop(grace).await {
            panic!("{e}");
        }
    }

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

/// Run `command` to its end with its output captured, or kill it and fail the test after
/// `limit` (a command that should exit, such as a second `serve` or one with a bad config,
/// must not hang the suite). Its pipes are drained while it runs, so a chatty command cannot
/// block on a full pipe.
pub fn output_within(mut command: Command, limit: Duration) -> Output {
    use std::io::Read;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the command can be waited for") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
