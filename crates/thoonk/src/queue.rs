//! Plain queues (docs/thoonk.md, "Plain queue"): FIFO items with no claim and no events. An
//! item taken is gone; for work that must survive its consumer use a job queue ([`crate::jobs`]).

use crate::feed::CONFIGURE;
use crate::keys::{FEEDS, FeedKeys};
use crate::{Redis, Result};
use redis::Script;
use redis::aio::MultiplexedConnection;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Mutex;

/// KEYS: feeds config ids items publishes. ARGV: name id item priority.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('HEXISTS', KEYS[2], 'type') == 0 then
  redis.call('HSET', KEYS[2], 'type', 'queue')
end
if ARGV[4] == '1' then
  redis.call('RPUSH', KEYS[3], ARGV[2])
else
  redis.call('LPUSH', KEYS[3], ARGV[2])
end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('INCR', KEYS[5])
return ARGV[2]
"#,
    )
});

/// KEYS: items. ARGV: id. HGET + HDEL.
static TAKE_ITEM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local item = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return item
"#,
    )
});

/// One named queue. Each clone waits on its own dedicated connection.
pub struct Queue {
    redis: Redis,
    name: String,
    keys: FeedKeys,
    taker: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl Clone for Queue {
    fn clone(&self) -> Self {
        Queue::new(&self.redis, &self.name)
    }
}

impl Queue {
    pub fn new(redis: &Redis, name: &str) -> Queue {
        Queue {
            redis: redis.clone(),
            name: name.to_string(),
            keys: FeedKeys::new(name),
            taker: Arc::new(Mutex::new(None)),
        }
    }

    /// Register the queue (its first put does too).
    pub async fn configure(&self) -> Result<()> {
        CONFIGURE
            .key(FEEDS)
            .key(&self.keys.config)
            .arg(&self.name)
            .arg("queue")
            .arg("")
            .invoke_async::<i64>(&mut self.redis.shared())
            .await?;
        Ok(())
    }

    /// Add an item (at the head with `priority`: taken next). Returns its id.
    pub async fn put(&self, item: &str, priority: bool) -> Result<String> {
        let k = &self.keys;
        Ok(PUT
            .key(FEEDS)
            .key(&k.config)
            .key(&k.ids)
            .key(&k.items)
            .key(&k.publishes)
            .arg(&self.name)
            .arg(uuid::Uuid::new_v4().to_string())
            .arg(item)
            .arg(if priority { "1" } else { "0" })
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    /// Take the oldest item, waiting up to `timeout`; `None` on timeout.
    pub async fn get(&self, timeout: Duration) -> Result<Option<String>> {
        let mut taker = self.taker.lock().await;
        if taker.is_none() {
            *taker = Some(self.redis.dedicated().await?);
        }
        let conn = taker.as_mut().expect("set just above");
        let popped: std::result::Result<Option<(String, String)>, _> = redis::cmd("BRPOP")
            .arg(&self.keys.ids)
            .arg(timeout.as_secs_f64().max(0.01))
            .query_async(conn)
            .await;
        let id = match popped {
            Ok(Some((_, id))) => id,
            Ok(None) => return Ok(None),
            Err(e) => {
                *taker = None;
                return Err(e.into());
            }
        };
        drop(taker);
        Ok(TAKE_ITEM
            .key(&self.keys.items)
            .arg(id)
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    /// Items waiting.
    pub async fn length(&self) -> Result<i64> {
        Ok(redis::cmd("LLEN")
            .arg(&self.keys.ids)
            .query_async(&mut self.redis.shared())
            .await?)
    }
}
