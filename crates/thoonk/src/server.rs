//! The private redis-server of the embedded default.
//!
//! With no `redis.url` configured, `thwonk serve` runs its own `redis-server` as a child on a
//! Unix socket in the data directory (no TCP port: nothing else on the host can reach it but
//! through the file system). It keeps an append-only file in the data directory, so queued
//! jobs survive a restart of the daemon. Tests use the same code with a temporary directory.
//!
//! [`PrivateRedis::supervise`] watches the child: if it dies (`kill -9`, the OOM killer) it
//! is reaped and started again with backoff, on the same socket and append-only file (the
//! runner's reconciler re-queues from SQL whatever the file had not yet kept). When it cannot
//! be brought back within [`SupervisePolicy::attempts`], [`Supervisor::failed`] resolves and
//! the daemon exits non-zero, so that its service manager restarts the whole unit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long redis-server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the private server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot run {binary:?}: {source}. Install Redis (Debian/Ubuntu: `apt-get install redis-server`) or set redis.url"
    )]
    NotInstalled {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("redis-server did not come up on {socket} within {secs} s; see {log}")]
    NoAnswer {
        socket: String,
        log: String,
        secs: u64,
    },
    #[error("redis-server: {0}")]
    Io(#[from] std::io::Error),
}

/// How a dead private redis-server is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisePolicy {
    /// Tries to start it again after it died, before giving up.
    pub attempts: u32,
    /// The wait before the first try; doubled after each failed one.
    pub first_delay: Duration,
    /// The longest wait between tries.
    pub max_delay: Duration,
}

impl Default for SupervisePolicy {
    fn default() -> Self {
        // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s of waiting, plus up to START_TIMEOUT per try.
        SupervisePolicy {
            attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// A private redis-server under watch; see [`PrivateRedis::supervise`].
pub struct Supervisor {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    failed: watch::Receiver<Option<String>>,
}

impl Supervisor {
    /// Resolves, with the reason, once the server died and could not be started again; never
    /// while it runs (or after [`Supervisor::stop`]).
    pub fn failed(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.failed.clone();
        async move {
            loop {
                if let Some(reason) = rx.borrow_and_update().clone() {
                    return reason;
                }
                if rx.changed().await.is_err() {
                    // The supervisor is gone without failing: stopped on purpose.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Stop the server (flushing its append-only file) and the watch.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// A running private redis-server; stopped by [`PrivateRedis::stop`] or, failing that, killed
/// when dropped.
pub struct PrivateRedis {
    child: Child,
    socket: PathBuf,
}

impl PrivateRedis {
    /// Start `binary` with its socket at `socket` and its files in `dir`. A server left
    /// running on the same socket by an earlier, killed daemon is shut down first (its
    /// append-only file keeps the jobs).
    pub async fn start(
        binary: &str,
        dir: &Path,
        socket: &Path,
    ) -> Result<PrivateRedis, ServerError> {
        std::fs::create_dir_all(dir)?;
        // redis-server changes into `--dir` before it opens its log and socket, so relative
        // paths (the default data_dir is `./data`) would point into the wrong folder.
        let dir = &std::path::absolute(dir)?;
        let socket = &std::path::absolute(socket)?;
        if socket.exists() {
            shutdown_stale(socket).await;
            let _ = std::fs::remove_file(socket);
        }
        let log = dir.join("redis.log");
        let mut command = Command::new(binary);
        command
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(dir)
            .arg("--appendonly")
            .arg("yes")
            .arg("--appendfsync")
            .arg("everysec")
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg(&log)
            .arg("--daemonize")
            .arg("no")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // If the daemon is killed outright (SIGKILL, OOM), kill_on_drop never runs: ask the
        // kernel to send redis-server SIGTERM (a clean shutdown that flushes its append-only
        // file) when the thread that spawned it dies. That thread is a runtime worker, which
        // lives as long as the daemon.
        // SAFETY: the closure only makes the prctl and getppid syscalls, which are
        // async-signal-safe, between fork and exec.
        let daemon = rustix::process::getpid();
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))?;
                // The daemon may have died before the prctl took effect (the child would
                // then have been re-parented).
                if rustix::process::getppid() != Some(daemon) {
                    return Err(std::io::Error::other("parent exited"));
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|source| ServerError::NotInstalled {
                binary: binary.to_string(),
                source,
            })?;
        let mut server = PrivateRedis {
            child,
            socket: socket.to_path_buf(),
        };
        let started = Instant::now();
        loop {
            if ping(socket).await {
                return Ok(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = server.child.kill().await;
        Err(ServerError::NoAnswer {
            socket: socket.display().to_string(),
            log: log.display().to_string(),
            secs: START_TIMEOUT.as_secs(),
        })
    }

    /// Watch the server from now on: when it exits by itself, reap it and start it again
    /// (`binary`, `dir`, the same socket) with backoff, as `policy` says. Repeated failures
    /// are logged once each try, not once per failed command.
    pub fn supervise(self, binary: String, dir: PathBuf, policy: SupervisePolicy) -> Supervisor {
        let stop = CancellationToken::new();
        let (tx, failed) = watch::channel(None);
        let task = tokio::spawn(watch_server(self, binary, dir, policy, stop.clone(), tx));
        Supervisor { stop, task, failed }
    }

    /// The child's process id (None once it has been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The URL to connect to it.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Ask the server to shut down (flushing its append-only file), and wait for it.
    pub async fn stop(mut self) {
        if let Ok(client) = redis::Client::open(self.url())
            && let Ok(mut c) = client.get_multiplexed_async_connection().await
        {
            let _: Result<(), _> = redis::cmd("SHUTDOWN").query_async(&mut c).await;
        }
        let waited = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if waited.is_err() {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn watch_server(
    mut server: PrivateRedis,
    binary: String,
    dir: PathBuf,
    policy: SupervisePolicy,
    stop: CancellationToken,
    failed: watch::Sender<Option<String>>,
) {
    loop {
        let status = tokio::select! {
            _ = stop.cancelled() => {
                server.stop().await;
                return;
            }
            // Waiting reaps the child: no zombie is left behind.
            status = server.child.wait() => status,
        };
        let status = match status {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(%status, "the private redis-server exited; starting it again");
        let socket = server.socket.clone();
        let mut delay = policy.first_delay;
        let mut last_error = String::from("no attempt was made");
        let mut restarted = None;
        for attempt in 1..=policy.attempts {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(policy.max_delay);
            match PrivateRedis::start(&binary, &dir, &socket).await {
                Ok(s) => {
                    tracing::warn!(attempt, socket = %socket.display(), "private redis-server started again");
                    restarted = Some(s);
                    break;
                }
                Err(e) => {
                    tracing::error!(attempt, of = policy.attempts, error = %e, "private redis-server did not start again");
                    last_error = e.to_string();
                }
            }
        }
        match restarted {
            Some(s) => server = s,
            None => {
                let reason = format!(
                    "the private redis-server exited ({status}) and did not start again in {} tries: {last_error}",
                    policy.attempts
                );
                let _ = failed.send(Some(reason));
                return;
            }
        }
    }
}

async fn ping(socket: &Path) -> bool {
    let Ok(client) = redis::Client::open(format!("unix://{}", socket.display())) else {
        return false;
    };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut c)
        .await
        .is_ok()
}

async fn shutdown_stale(socket: &Path) {
    if ping(socket).await {
        tracing::warn!(socket = %socket.display(), "a private redis-server was left running; shutting it down");
        if let Ok(client) = redis::Client::open(format!("unix://{}", socket.display()))
            && let Ok(mut c) = client.get_multiplexed_async_connection().await
        {
            let _: Result<(), _> = redis::cmd("SHUTDOWN").query_async(&mut c).await;
        }
        for _ in 0..100 {
            if !ping(socket).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
