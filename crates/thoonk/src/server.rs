//! The private redis-server of the embedded default.
//!
//! With no `redis.url` configured, `thwonk serve` runs its own `redis-server` as a child on a
//! Unix socket in the data directory (no TCP port: nothing else on the host can reach it but
//! through the file system). It keeps an append-only file in the data directory, so queued
//! jobs survive a restart of the daemon. Tests use the same code with a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

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
