//! `thwonk probe`: a health check for container orchestrators and monitoring, from the same
//! binary and configuration as the daemon (slim images carry no curl or redis-cli).
//!
//! - `smtp`: the ingress answers a connection with a `220` greeting.
//! - `http`: the API answers `GET /healthz` with `200`.
//! - `deps`: Redis and the database answer (the runner and egress have no listener of their
//!   own; they are healthy when what they work on is reachable).
//!
//! Exit 0 when healthy; otherwise 1 with the reason on stderr.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::time::Duration;
use thwonk_core::Config;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one probe may take in all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Target {
    Smtp,
    Http,
    Deps,
}

pub async fn probe(config: &Config, target: Target) -> Result<()> {
    let work = async {
        match target {
            Target::Smtp => smtp(local(config.smtp.listen)).await,
            Target::Http => http(local(config.http.listen)).await,
            Target::Deps => deps(config).await,
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, work)
        .await
        .with_context(|| format!("no answer within {PROBE_TIMEOUT:?}"))?
}

/// A wildcard listen address is probed on loopback.
fn local(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

async fn smtp(addr: SocketAddr) -> Result<()> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("SMTP ingress at {addr}"))?;
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).await?;
    if !greeting.starts_with("220") {
        bail!(
            "SMTP ingress at {addr} greeted with {:?}",
            greeting.trim_end()
        );
    }
    // Be polite: a probe every few seconds should not leave half-open sessions behind.
    let _ = reader.get_mut().write_all(b"QUIT\r\n").await;
    Ok(())
}

async fn http(addr: SocketAddr) -> Result<()> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("HTTP API at {addr}"))?;
    let answer = thwonk_api::client::send(stream, "GET", "/healthz", &[], b"")
        .await
        .with_context(|| format!("HTTP API at {addr}"))?;
    if answer.status != 200 {
        bail!(
            "HTTP API at {addr}: GET /healthz answered {}",
            answer.status
        );
    }
    Ok(())
}

async fn deps(config: &Config) -> Result<()> {
    thwonk_thoonk::Redis::connect(&config.redis_url())
        .await
        .context("Redis")?;
    let store = thwonk_store::Store::connect(&config.database_url(), 1)
        .await
        .context("database")?;
    store.close().await;
    Ok(())
}
