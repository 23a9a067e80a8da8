//! The one Redis connection factory.
//!
//! Two kinds of connection, because a blocking command on a shared multiplexed connection
//! stalls every command queued behind it (docs/dependencies.md, "redis"): a shared
//! [`ConnectionManager`] for short commands, which reconnects by itself, and dedicated
//! connections with no response timeout for BLMOVE.
//!
//! [`ConnectionManager`]: redis::aio::ConnectionManager

use crate::{Result, ThoonkError};
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use std::time::Duration;

/// How long a short command may take before it fails. Lua scripts here touch a handful of
/// keys; seconds mean the server is in trouble, not busy.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on one Redis server (cheap to clone).
#[derive(Clone)]
pub struct Redis {
    url: String,
    client: redis::Client,
    shared: ConnectionManager,
}

impl Redis {
    /// Connect to `redis://host:port/db`, `unix:///path` or `redis+unix:///path`.
    pub async fn connect(url: &str) -> Result<Redis> {
        let err = |source| ThoonkError::Connect {
            url: url.to_string(),
            source,
        };
        let client = redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(3);
        let shared = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(err)?;
        Ok(Redis {
            url: url.to_string(),
            client,
            shared,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The shared connection (cheap to clone), for non-blocking commands.
    pub fn shared(&self) -> ConnectionManager {
        self.shared.clone()
    }

    /// A new connection in subscriber mode, for following events.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub> {
        self.client
            .get_async_pubsub()
            .await
            .map_err(|source| ThoonkError::Connect {
                url: self.url.clone(),
                source,
            })
    }

    /// A new dedicated connection with no response timeout, for blocking commands.
    pub async fn dedicated(&self) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| ThoonkError::Connect {
                url: self.url.clone(),
                source,
            })
    }
}
