//! `[http]`: the HTTP API — where it listens, request sizes, its sandbox workers, SSE.

use super::{ConfigError, de, require_at_least_one};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP API listens on.
    #[serde(with = "de::listen")]
    pub listen: SocketAddr,
    /// Largest request body, bytes (larger: 413). At least `limits.file_max_bytes`, so a
    /// file that fits the VFS can be uploaded (checked in [`super::Config::validate`]).
    pub max_body_bytes: u64,
    /// Sandbox workers that check deployed scripts and run dry runs for the API.
    pub sandbox_workers: u32,
    /// Time between keep-alive comments on an idle Server-Sent Events stream
    /// (`sse_keep_alive_secs`).
    #[serde(rename = "sse_keep_alive_secs", with = "de::secs")]
    pub sse_keep_alive: Duration,
    /// Items `GET /v1/thwonks/{address}/feeds/{name}` returns at most (the newest).
    pub max_feed_items: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            max_body_bytes: 2 * 1024 * 1024,
            sandbox_workers: 2,
            sse_keep_alive: Duration::from_secs(15),
            max_feed_items: 1000,
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_at_least_one("http.sandbox_workers", self.sandbox_workers)
    }
}
