//! `[queues]`: job queues on Redis — when a claimed job counts as abandoned, and when it is
//! given up on.

use super::{ConfigError, de, require_positive, require_positive_count};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueuesConfig {
    /// A job claimed longer than this without being finished is returned to its queue
    /// (`visibility_ms`).
    #[serde(rename = "visibility_ms", with = "de::ms")]
    pub visibility: Duration,
    /// Claims a job may use (abandoned or failed) before it is stalled as a dead letter.
    pub max_attempts: u32,
    /// How often the reaper looks for abandoned jobs (`reaper_interval_ms`).
    #[serde(rename = "reaper_interval_ms", with = "de::ms")]
    pub reaper_interval: Duration,
    /// How often runners re-queue queued messages and outbox rows whose job Redis lost (a
    /// restart that kept nothing) (`reconcile_interval_ms`). Also done once at start.
    #[serde(rename = "reconcile_interval_ms", with = "de::ms")]
    pub reconcile_interval: Duration,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig {
            visibility: Duration::from_millis(300_000),
            max_attempts: 10,
            reaper_interval: Duration::from_millis(1_000),
            reconcile_interval: Duration::from_millis(60_000),
        }
    }
}

impl QueuesConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_positive("queues.visibility_ms", self.visibility)?;
        require_positive_count("queues.max_attempts", u64::from(self.max_attempts))?;
        require_positive("queues.reaper_interval_ms", self.reaper_interval)?;
        require_positive("queues.reconcile_interval_ms", self.reconcile_interval)
    }
}
