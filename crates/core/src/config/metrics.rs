//! `[metrics]`: where a single-role process serves Prometheus metrics.

use super::de;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `IP:port` where a single-role process (`thwonk ingress|runner|egress`) serves
    /// `GET /metrics`. None (empty in the file): not served.
    #[serde(with = "de::opt_listen")]
    pub listen: Option<SocketAddr>,
}
