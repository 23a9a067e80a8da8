//! `[invoke]`: HTTP invoke — a JSON request runs the script's `onRequest` through the runner.

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InvokeConfig {
    /// Largest request body (as JSON text) that becomes a job, bytes.
    pub max_body_bytes: u64,
    /// Deepest nesting of arrays and objects in a request body.
    pub max_body_depth: u32,
}

/// The deepest `invoke.max_body_depth` allowed: a job's JSON must stay under the 128 levels
/// `serde_json` parses, with room for the job's own fields around the body.
pub const MAX_INVOKE_BODY_DEPTH: u32 = 120;

impl Default for InvokeConfig {
    fn default() -> Self {
        InvokeConfig {
            max_body_bytes: 1024 * 1024,
            max_body_depth: 64,
        }
    }
}

impl InvokeConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "invoke.max_body_bytes",
                "must be greater than 0",
            ));
        }
        // The job's JSON is parsed again by the runner, whose parser stops at 128 levels.
        if !(1..=MAX_INVOKE_BODY_DEPTH).contains(&self.max_body_depth) {
            return Err(ConfigError::new(
                "invoke.max_body_depth",
                format!("must be between 1 and {MAX_INVOKE_BODY_DEPTH}"),
            ));
        }
        Ok(())
    }
}
