//! `[feeds]`: feeds that scripts publish to.

use super::{ConfigError, de, require_positive};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// How often committed feed operations that could not reach Redis are tried again
    /// (`retry_interval_ms`).
    #[serde(rename = "retry_interval_ms", with = "de::ms")]
    pub retry_interval: Duration,
    /// Most items one feed keeps: a new item published to a full feed pushes out the oldest
    /// (announced as a retract). 0: unbounded.
    pub max_items: u64,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            retry_interval: Duration::from_millis(5_000),
            max_items: 10_000,
        }
    }
}

impl FeedsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_positive("feeds.retry_interval_ms", self.retry_interval)
    }
}
