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
    /// Longest a client may take to send a request's headers (`header_read_timeout_secs`),
    /// and to start the next request on a kept-alive connection; then the connection closes.
    #[serde(rename = "header_read_timeout_secs", with = "de::secs")]
    pub header_read_timeout: Duration,
    /// Connections at once in all; past it, `503` and the connection closes.
    pub max_connections: u32,
    /// Connections at once from one client IP address; past it, `503` and the connection
    /// closes.
    pub max_connections_per_ip: u32,
    /// Server-Sent Events streams open at once with one token; past it, `429`.
    pub max_event_streams_per_token: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            max_body_bytes: 2 * 1024 * 1024,
            sandbox_workers: 2,
            sse_keep_alive: Duration::from_secs(15),
            max_feed_items: 1000,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_connections_per_ip: 64,
            max_event_streams_per_token: 16,
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_at_least_one("http.sandbox_workers", self.sandbox_workers)?;
        if self.header_read_timeout.is_zero() {
            return Err(ConfigError::new(
                "http.header_read_timeout_secs",
                "must be at least 1",
            ));
        }
        require_at_least_one("http.max_connections", self.max_connections)?;
        require_at_least_one("http.max_connections_per_ip", self.max_connections_per_ip)?;
        require_at_least_one(
            "http.max_event_streams_per_token",
            self.max_event_streams_per_token,
        )
    }
}
