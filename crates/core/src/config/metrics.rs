//! `[metrics]`: where a process serves Prometheus metrics (its own listener, no token).

use super::de;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `IP:port` where the process (any role) serves `GET /metrics` without a token. None
    /// (empty in the file): not served (the API answers it to an admin token only).
    #[serde(with = "de::opt_listen")]
    pub listen: Option<SocketAddr>,
}
