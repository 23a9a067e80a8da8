//! `[database]`: the SQL database (SQLite or PostgreSQL) and its connection pool.

use super::{ConfigError, de, require_at_least_one, require_positive};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`. None (empty in the file): `sqlite://{data_dir}/thwonk.db`
    /// ([`super::Config::database_url`]).
    #[serde(with = "de::opt_text")]
    pub url: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// Longest wait for a pooled connection (connecting included) before the operation fails
    /// (the ingress then answers 451) (`acquire_timeout_ms`).
    #[serde(rename = "acquire_timeout_ms", with = "de::ms")]
    pub acquire_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 8,
            acquire_timeout: Duration::from_millis(5_000),
        }
    }
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        require_at_least_one("database.max_connections", self.max_connections)?;
        require_positive("database.acquire_timeout_ms", self.acquire_timeout)
    }
}
