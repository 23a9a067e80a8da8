//! Run fixtures: deploying a script, reading a thwonk's runs, waiting for them, polling, the
//! daemon's private Redis and the PostgreSQL server the PG variants use.

use crate::daemon::Env;
use std::path::Path;
use std::time::{Duration, Instant};

impl Env {
    /// `thwonk deploy ADDRESS SCRIPT` (a path relative to the working directory, e.g.
    /// `sandbox-scripts/echo.js`), which must succeed.
    pub fn deploy(&self, address: &str, script: &str) -> String {
        self.ok(&["deploy", address, script])
    }

    /// Write `source` to `dir/name` and deploy it to `address`.
    pub fn deploy_source(&self, address: &str, dir: &Path, name: &str, source: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, source).expect("write the script");
        self.ok(&["deploy", address, &path.display().to_string()])
    }

    /// The runs of `address` as `thwonk runs --json` prints them, newest first (`limit`: the
    /// command's `--limit`, its default when None).
    pub fn runs(&self, address: &str, limit: Option<u32>) -> Vec<serde_json::Value> {
        let limit = limit.map(|l| l.to_string());
        let mut args = vec!["runs", address, "--json"];
        if let Some(l) = &limit {
            args.extend(["--limit", l]);
        }
        let out = self.ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("`thwonk runs --json` is not a JSON array ({e}): {out}"))
    }

    /// Wait until `address` has at least `n` runs (of up to 1000); them, newest first.
    pub async fn wait_for_runs(
        &self,
        address: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        eventually(&format!("{n} runs of {address}"), timeout, || async {
            let runs = self.runs(address, Some(1000));
            (runs.len() >= n).then_some(runs)
        })
        .await
    }
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

/// The first `.eml` file the capture egress (`egress.mode = "capture"`) wrote to
/// `data_dir/captured`, waiting up to `timeout` for one.
pub async fn captured_eml(data_dir: &Path, timeout: Duration) -> std::path::PathBuf {
    let captured = data_dir.join("captured");
    let start = Instant::now();
    loop {
        let found: Vec<_> = std::fs::read_dir(&captured)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(p) = found
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "eml"))
        {
            return p.clone();
        }
        assert!(start.elapsed() < timeout, "nothing captured in {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
