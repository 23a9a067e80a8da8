//! `[schedules]`: how runners find and register scripts' `schedule` exports.

use super::{ConfigError, de, require_positive};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulesConfig {
    /// How often a runner looks for due schedules (`poll_ms`).
    #[serde(rename = "poll_ms", with = "de::ms")]
    pub poll: Duration,
    /// How often a runner re-registers every thwonk's schedule from SQL (`sync_interval_ms`).
    #[serde(rename = "sync_interval_ms", with = "de::ms")]
    pub sync_interval: Duration,
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        SchedulesConfig {
            poll: Duration::from_millis(1_000),
            sync_interval: Duration::from_millis(60_000),
        }
    }
}

impl SchedulesConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_positive("schedules.poll_ms", self.poll)?;
        require_positive("schedules.sync_interval_ms", self.sync_interval)
    }
}
