//! `[egress]`: how outgoing mail leaves (capture, relay, MX) and how often it is retried.

use super::{ConfigError, de, require_at_least_one};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How outgoing mail leaves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EgressMode {
    /// Write each message as an .eml file under `{data_dir}/captured/`.
    Capture,
    /// Hand every message to one SMTP relay (`egress.relay`).
    Relay,
    /// Look up each recipient domain's MX and deliver there.
    Mx,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    pub mode: EgressMode,
    /// `host:port` of the relay (mode `relay`; checked at load then).
    #[serde(with = "de::opt_text")]
    pub relay: Option<String>,
    /// Deliveries in parallel in one egress process.
    pub concurrency: u32,
    /// How long one SMTP delivery may take, connect to final reply (`timeout_secs`).
    #[serde(rename = "timeout_secs", with = "de::secs")]
    pub timeout: Duration,
    /// Delivery attempts before a message is given up on.
    pub max_attempts: u32,
    /// Delays between attempts, written in seconds; the last one repeats.
    #[serde(with = "de::secs_list")]
    pub retry_schedule_secs: Vec<Duration>,
    /// Delays between attempts, written in ms; when not empty it is used instead of
    /// `retry_schedule_secs` (finer steps, for tests and fast local relays).
    #[serde(with = "de::ms_list")]
    pub retry_schedule_ms: Vec<Duration>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            mode: EgressMode::Capture,
            relay: None,
            concurrency: 4,
            timeout: Duration::from_secs(60),
            max_attempts: 8,
            retry_schedule_secs: [30, 120, 600, 1800, 3600].map(Duration::from_secs).to_vec(),
            retry_schedule_ms: Vec::new(),
        }
    }
}

impl EgressConfig {
    /// The retry schedule in effect: `retry_schedule_ms` if set, else `retry_schedule_secs`.
    pub fn retry_schedule(&self) -> &[Duration] {
        if self.retry_schedule_ms.is_empty() {
            &self.retry_schedule_secs
        } else {
            &self.retry_schedule_ms
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == EgressMode::Relay {
            let Some(relay) = &self.relay else {
                return Err(ConfigError::new(
                    "egress.relay",
                    "must be set (host:port) when egress.mode = \"relay\"",
                ));
            };
            if !relay.contains(':') {
                return Err(ConfigError::new(
                    "egress.relay",
                    format!("{relay:?} must be host:port"),
                ));
            }
        }
        require_at_least_one("egress.concurrency", self.concurrency)?;
        require_at_least_one("egress.max_attempts", self.max_attempts)?;
        if self.retry_schedule_secs.is_empty() {
            return Err(ConfigError::new(
                "egress.retry_schedule_secs",
                "must list at least one delay",
            ));
        }
        Ok(())
    }
}
