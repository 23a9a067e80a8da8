//! `[shutdown]`: stopping on SIGTERM (or Ctrl-C).

use super::{ConfigError, de, require_positive};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long every role of a process may take to finish the work in hand (a DATA transfer,
    /// a run, a delivery) after SIGTERM (`grace_ms`). Past it the process abandons that work
    /// (its job returns to the queue) and exits with status 1.
    #[serde(rename = "grace_ms", with = "de::ms")]
    pub grace: Duration,
}

/// The default `shutdown.grace_ms`: room for a run at the default wall-clock limit and most
/// deliveries, and as long as the ingress's session drain always was.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 30_000;

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace: Duration::from_millis(DEFAULT_SHUTDOWN_GRACE_MS),
        }
    }
}

impl ShutdownConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_positive("shutdown.grace_ms", self.grace)
    }
}
