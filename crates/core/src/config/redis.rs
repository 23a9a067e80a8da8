//! `[redis]`: the Redis server of the job queues and feeds, or the private one `serve` starts.

use super::{ConfigError, de};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `unix:///path/to/socket`. None (empty in the file):
    /// `thwonk serve` starts a private redis-server on `{data_dir}/redis.sock`.
    #[serde(with = "de::opt_text")]
    pub url: Option<String>,
    /// The redis-server binary used for the private server.
    pub server_binary: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            server_binary: "redis-server".into(),
        }
    }
}

impl RedisConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !["redis://", "rediss://", "unix://", "redis+unix://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return Err(ConfigError::new(
                "redis.url",
                "must start with redis://, rediss://, unix:// or redis+unix://",
            ));
        }
        Ok(())
    }
}
