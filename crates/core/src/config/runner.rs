//! `[runner]`: how many runs one runner process does at once, and its lease on a thwonk.

use super::{ConfigError, de, require_at_least_one};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Runs in parallel in one runner process (different thwonks only).
    pub concurrency: u32,
    /// Of those, at most this many for the thwonks of one owner (a thwonk without an owner
    /// counts as its own owner): one owner's heavy runs leave room for the others' mail.
    pub owner_concurrency: u32,
    /// How long a runner holds a thwonk's lease before another runner may take over
    /// (`lease_ms`).
    #[serde(rename = "lease_ms", with = "de::ms")]
    pub lease: Duration,
    /// Refuse to run scripts (and deploy checks, dry runs) in a sandbox worker whose wall is
    /// missing seccomp or landlock; off: run them with a warning.
    pub require_wall: bool,
    /// At most one of the same `thwonk.reply` per correspondent (envelope sender) per thwonk
    /// in this long (RFC 3834 section 2); 0 turns the rule off (`auto_reply_interval_secs`).
    #[serde(rename = "auto_reply_interval_secs", with = "de::secs")]
    pub auto_reply_interval: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 4,
            owner_concurrency: 2,
            lease: Duration::from_millis(30_000),
            require_wall: true,
            auto_reply_interval: Duration::from_secs(24 * 3600),
        }
    }
}

impl RunnerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        require_at_least_one("runner.concurrency", self.concurrency)?;
        require_at_least_one("runner.owner_concurrency", self.owner_concurrency)?;
        if self.lease < Duration::from_millis(1000) {
            return Err(ConfigError::new("runner.lease_ms", "must be at least 1000"));
        }
        Ok(())
    }
}
