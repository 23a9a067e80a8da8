//! The test kit (`thwonk-testkit`) bound to this package: its `thwonk` binary and the
//! repository root as every command's working directory (for `sandbox-scripts/`).
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use thwonk_testkit::smtp::{SmtpClient, code};
pub use thwonk_testkit::{
    Daemon, Env, Received, Relay, captured_eml, eventually, output_within, postgres_url,
    private_redis, send_mail,
};

pub const THWONK: &str = env!("CARGO_BIN_EXE_thwonk");

/// The repository root (for `sandbox-scripts/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tests' environment for this package's `thwonk` (see [`Env::new`]).
pub fn env(data_dir: &Path, relay: SocketAddr, database_url: Option<&str>) -> Env {
    Env::new(THWONK, repo(), data_dir, relay, database_url)
}

/// One HTTP request to the daemon's API with a bearer token, over a new connection.
pub async fn req(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> thwonk_api::client::Response {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = format!("Bearer {token}");
    thwonk_api::client::send(stream, method, path, &[("Authorization", &auth)], body)
        .await
        .unwrap()
}
