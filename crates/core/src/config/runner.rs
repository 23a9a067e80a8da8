//! `[runner]`: how many runs one runner process does at once, and its lease on a thwonk.

use super::{ConfigError, de, require_at_least_one};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Runs in parallel in one runner process (different thwonks only).
    pub concurrency: u32,
    /// How long a runner holds a thwonk's lease before another runner may take over
    /// (`lease_ms`).
    #[serde(rename = "lease_ms", with = "de::ms")]
    pub lease: Duration,
    /// At most one of the same `thwonk.reply` per correspondent (envelope sender) per thwonk
    /// in this long (RFC 3834 section 2); 0 turns the rule off (`auto_reply_interval_secs`).
    #[serde(rename = "auto_reply_interval_secs", with = "de::secs")]
    pub auto_reply_interval: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 4,
            lease: Duration::from_millis(30_000),
            auto_reply_interval: Duration::from_secs(24 * 3600),
        }
    }
}

impl RunnerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_at_least_one("runner.concurrency", self.concurrency)?;
        if self.lease < Duration::from_millis(1000) {
            return Err(ConfigError::new("runner.lease_ms", "must be at least 1000"));
        }
        Ok(())
    }
}
