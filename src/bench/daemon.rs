//! The daemon under load: `thwonk serve` started from this very executable as a child
//! process with its own data directory, and its memory watched from `/proc`.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Settings the bench sets itself; the caller's other `THWONK_*` variables pass through, so
/// `THWONK_RUNNER_CONCURRENCY=8 thwonk bench` benchmarks that setting.
pub struct DaemonEnv {
    vars: Vec<(String, String)>,
}

impl DaemonEnv {
    pub fn new(
        data_dir: &Path,
        relay: SocketAddr,
        domain: &str,
        log: &str,
        database_url: Option<&str>,
    ) -> DaemonEnv {
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
        if let Some(url) = database_url {
            vars.push(("THWONK_DATABASE_URL".into(), url.into()));
        }
        DaemonEnv { vars }
    }

    fn command(&self, args: &[&str]) -> Result<Command> {
        let exe = std::env::current_exe().context("cannot find the thwonk executable")?;
        let mut c = Command::new(exe);
        for (k, _) in &self.vars {
            c.env_remove(k);
        }
        c.env_remove("THWONK_CONFIG");
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c.args(args).kill_on_drop(true);
        Ok(c)
    }

    /// Run a management command (`deploy`, ...) to completion.
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command(args)?
            .output()
            .await
            .with_context(|| format!("cannot run thwonk {args:?}"))?;
        if !out.status.success() {
            bail!(
                "thwonk {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `thwonk serve` as a child process.
pub struct Daemon {
    child: Child,
    pub pid: u32,
    pub smtp: SocketAddr,
    /// Log lines at WARN or ERROR (the rest is read and dropped).
    pub problems: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Start the daemon and wait until it logs `thwonk ready`; its SMTP address comes from
    /// its log (the port is chosen by the kernel).
    pub async fn start(env: &DaemonEnv) -> Result<Daemon> {
        let mut child = env
            .command(&["serve"])?
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start thwonk serve")?;
        let pid = child.id().context("thwonk serve exited at once")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let keep = problems.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut ready = false;
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("WARN") || line.contains("ERROR") {
                    keep.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(line.clone());
                }
                if !ready {
                    ready = line.contains("thwonk ready");
                    let _ = tx.send(line);
                }
            }
        });
        let mut smtp = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let line = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .map_err(|_| anyhow!("thwonk serve did not become ready in 60 s"))?
                .ok_or_else(|| anyhow!("thwonk serve exited before it was ready"))?;
            if line.contains("SMTP ingress listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                smtp = a.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if line.contains("thwonk ready") {
                break;
            }
        }
        Ok(Daemon {
            child,
            pid,
            smtp: smtp.context("the daemon's log did not name its SMTP address")?,
            problems,
        })
    }

    /// SIGTERM and wait for a clean exit (SIGKILL after `grace`).
    pub async fn stop(mut self, grace: Duration) -> Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => bail!("thwonk serve exited with {s}"),
            Ok(Err(e)) => Err(e).context("waiting for thwonk serve"),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("thwonk serve did not stop within {grace:?} of SIGTERM")
            }
        }
    }
}

/// Peak resident memory (`VmHWM`) of a process tree, in KiB: the root, and every process
/// ever seen below it (each one's own peak, summed).
#[derive(Debug, Default, Clone)]
pub struct PeakRss {
    pub root_kib: u64,
    /// pid → (command name, peak KiB) for each descendant seen.
    pub descendants: HashMap<u32, (String, u64)>,
}

impl PeakRss {
    pub fn total_kib(&self) -> u64 {
        self.root_kib + self.descendants.values().map(|(_, k)| k).sum::<u64>()
    }

    /// Look at the tree under `root` once and keep each process's highest peak.
    pub fn sample(&mut self, root: u32) {
        if let Some((_, kib)) = vm_hwm(root) {
            self.root_kib = self.root_kib.max(kib);
        }
        for pid in descendants(root) {
            if let Some((name, kib)) = vm_hwm(pid) {
                let e = self.descendants.entry(pid).or_insert((name, 0));
                e.1 = e.1.max(kib);
            }
        }
    }
}

/// (command name, VmHWM in KiB) of a live process.
fn vm_hwm(pid: u32) -> Option<(String, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut name = String::new();
    let mut hwm = None;
    for line in status.lines() {
        if let Some(n) = line.strip_prefix("Name:") {
            name = n.trim().to_string();
        } else if let Some(v) = line.strip_prefix("VmHWM:") {
            hwm = v.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    Some((name, hwm?))
}

/// Every live process below `root`, found through the parent pid in `/proc/*/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of: HashMap<u32, u32> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: fields after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent_of.insert(pid, ppid);
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| **pp == p)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}
