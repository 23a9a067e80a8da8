//! The job queue's dead-letter side (docs/thoonk.md, "Job queue" and "The reaper"):
//! failing a claimed job with a counted attempt, stalling, retrying and retracting, and the
//! numbers `thwonk jobs` shows.
//!
//! Attempts are counted in `job.cancelled` (times a claim ended without a finish), the field
//! the originals already kept, so a worker in another language sees the same count. A job
//! that has used its attempts is moved to `job.stalled` with its last error in `job.errors`;
//! it stays there, payload intact, until an operator retries or retracts it.

use crate::jobs::JobQueue;
use crate::keys::job_event;
use crate::{Result, ThoonkError};
use redis::Script;
use std::sync::LazyLock;

/// What [`JobQueue::fail`] did with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back in the queue at `due_ms`; this was attempt `attempt`.
    Delayed { attempt: i64, due_ms: i64 },
    /// Out of attempts: stalled (a dead letter).
    Stalled { attempt: i64 },
}

/// A queue's numbers, for `thwonk jobs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobStats {
    pub name: String,
    /// Waiting to be taken.
    pub queued: i64,
    /// Taken, not yet claimed (a consumer between BLMOVE and its claim, or dead there).
    pub claiming: i64,
    pub claimed: i64,
    /// Waiting for a retry time.
    pub delayed: i64,
    pub stalled: i64,
    pub publishes: i64,
    pub finishes: i64,
}

/// A stalled job and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StalledJob {
    pub id: String,
    pub payload: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
}

/// KEYS: claimed cancelled delayed stalled errors config. ARGV: id error now base-ms cap-ms
/// default-max-attempts delay-channel stall-channel.
/// Returns {1, attempt, due} when delayed, {0, attempt, 0} when stalled.
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claimed, cancelled, delayed, stalled, errors, config = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, err, now, base, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local max = tonumber(redis.call('HGET', config, 'max_attempts') or '') or tonumber(ARGV[6])
if redis.call('ZREM', claimed, id) == 0 then
  return redis.error_reply('Job not claimed')
end
local attempt = redis.call('HINCRBY', cancelled, id, 1)
if err ~= '' then
  redis.call('HSET', errors, id, err)
end
if attempt >= max then
  redis.call('SADD', stalled, id)
  redis.call('PUBLISH', ARGV[8], id)
  return {0, attempt, 0}
end
local delay = base
for _ = 2, attempt do
  delay = delay * 2
  if delay >= cap then break end
end
if delay > cap then delay = cap end
local due = now + delay
redis.call('ZADD', delayed, due, id)
redis.call('PUBLISH', ARGV[7], id)
return {1, attempt, due}
"#,
    )
});

/// KEYS: claimed stalled errors. ARGV: id error event-channel.
static STALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claimed, stalled, errors = KEYS[1], KEYS[2], KEYS[3]
local id, err, channel = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZREM', claimed, id) == 0 then
  return redis.error_reply('Job not claimed')
end
redis.call('SADD', stalled, id)
if err ~= '' then
  redis.call('HSET', errors, id, err)
end
redis.call('PUBLISH', channel, id)
return 1
"#,
    )
});

/// KEYS: stalled ids cancelled errors. ARGV: id event-channel. From stalled to the tail of the
/// queue, with its attempts forgotten (an operator decided it deserves a fresh start).
static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local stalled, ids, cancelled, errors = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, channel = ARGV[1], ARGV[2]
if redis.call('SREM', stalled, id) == 0 then
  return redis.error_reply('Job not stalled')
end
redis.call('HDEL', cancelled, id)
redis.call('HDEL', errors, id)
redis.call('LPUSH', ids, id)
redis.call('PUBLISH', channel, id)
return 1
"#,
    )
});

/// KEYS: ids claiming claimed delayed stalled items published cancelled errors since.
/// ARGV: id. Gone from every structure; 1 if it existed.
static RETRACT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local id = ARGV[1]
local existed = redis.call('HDEL', KEYS[6], id)
redis.call('LREM', KEYS[1], 0, id)
redis.call('LREM', KEYS[2], 0, id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('SREM', KEYS[5], id)
redis.call('ZREM', KEYS[7], id)
redis.call('HDEL', KEYS[8], id)
redis.call('HDEL', KEYS[9], id)
redis.call('HDEL', KEYS[10], id)
return existed
"#,
    )
});

/// KEYS: ids delayed items published errors cancelled. ARGV: id. Removes the job only while
/// no consumer has it (queued or delayed); 1 if it was removed, 0 if it is taken or gone.
static WITHDRAW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local id = ARGV[1]
local waiting = redis.call('LREM', KEYS[1], 0, id) + redis.call('ZREM', KEYS[2], id)
if waiting == 0 then
  return 0
end
redis.call('HDEL', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
return 1
"#,
    )
});

/// KEYS: ids claiming claimed delayed stalled publishes finishes. Every count in one read.
static STATS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
return {
  redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), redis.call('SCARD', KEYS[5]),
  tonumber(redis.call('GET', KEYS[6]) or '0'), tonumber(redis.call('GET', KEYS[7]) or '0')
}
"#,
    )
});

/// KEYS: stalled items cancelled errors. ARGV: limit. Flat {id, payload, attempts, error}...
/// (`false` for a missing payload or error), ordered by id.
static STALLED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids = redis.call('SMEMBERS', KEYS[1])
table.sort(ids)
local out = {}
for i, id in ipairs(ids) do
  if i > tonumber(ARGV[1]) then break end
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id)
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  out[#out + 1] = redis.call('HGET', KEYS[4], id)
end
return out
"#,
    )
});

impl JobQueue {
    /// A claimed job failed: count the attempt and keep `error`. Under the queue's
    /// `max_attempts` (`job.config` field, else `default_max_attempts`) it is retried after
    /// `base_ms`, doubling per attempt up to `cap_ms`; at the limit it is stalled.
    pub async fn fail(
        &self,
        id: &str,
        error: &str,
        base_ms: i64,
        cap_ms: i64,
        default_max_attempts: u32,
    ) -> Result<FailOutcome> {
        let k = &self.keys;
        let (delayed, attempt, due_ms): (i64, i64, i64) = FAIL
            .key(&k.claimed)
            .key(&k.cancelled)
            .key(&k.delayed)
            .key(&k.stalled)
            .key(&k.errors)
            .key(&k.config)
            .arg(id)
            .arg(error)
            .arg(thwonk_core::time::now_ms())
            .arg(base_ms.max(1))
            .arg(cap_ms.max(1))
            .arg(default_max_attempts.max(1))
            .arg(job_event("delay", &self.name))
            .arg(job_event("stall", &self.name))
            .invoke_async(&mut self.redis.shared())
            .await
            .map_err(|e| map_state(e, id))?;
        Ok(if delayed == 1 {
            FailOutcome::Delayed { attempt, due_ms }
        } else {
            FailOutcome::Stalled { attempt }
        })
    }

    /// Give up on a claimed job now (a dead letter), keeping `error` (may be empty).
    pub async fn stall(&self, id: &str, error: &str) -> Result<()> {
        let k = &self.keys;
        STALL
            .key(&k.claimed)
            .key(&k.stalled)
            .key(&k.errors)
            .arg(id)
            .arg(error)
            .arg(job_event("stall", &self.name))
            .invoke_async::<i64>(&mut self.redis.shared())
            .await
            .map_err(|e| map_state(e, id))?;
        Ok(())
    }

    /// Put a stalled job back in the queue (at the tail: it waits its turn again).
    pub async fn retry(&self, id: &str) -> Result<()> {
        let k = &self.keys;
        RETRY
            .key(&k.stalled)
            .key(&k.ids)
            .key(&k.cancelled)
            .key(&k.errors)
            .arg(id)
            .arg(job_event("retry", &self.name))
            .invoke_async::<i64>(&mut self.redis.shared())
            .await
            .map_err(|e| map_state(e, id))?;
        Ok(())
    }

    /// Remove a job from every structure, whatever its state. True if it existed.
    pub async fn retract(&self, id: &str) -> Result<bool> {
        let k = &self.keys;
        let existed: i64 = RETRACT
            .key(&k.ids)
            .key(&k.claiming)
            .key(&k.claimed)
            .key(&k.delayed)
            .key(&k.stalled)
            .key(&k.items)
            .key(&k.published)
            .key(&k.cancelled)
            .key(&k.errors)
            .key(&k.claiming_since)
            .arg(id)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(existed == 1)
    }

    /// Remove a job that no consumer has taken yet (queued, or delayed for a retry), so it
    /// never runs; a job already taken (or finished, or stalled) is left alone. True if it
    /// was withdrawn. A client that stops waiting for its job uses this: BLMOVE takes ids
    /// atomically, so after a withdrawal no consumer can be holding it.
    pub async fn withdraw(&self, id: &str) -> Result<bool> {
        let k = &self.keys;
        let removed: i64 = WITHDRAW
            .key(&k.ids)
            .key(&k.delayed)
            .key(&k.items)
            .key(&k.published)
            .key(&k.errors)
            .key(&k.cancelled)
            .arg(id)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(removed == 1)
    }

    /// Depths and counters.
    pub async fn stats(&self) -> Result<JobStats> {
        let k = &self.keys;
        let v: Vec<i64> = STATS
            .key(&k.ids)
            .key(&k.claiming)
            .key(&k.claimed)
            .key(&k.delayed)
            .key(&k.stalled)
            .key(&k.publishes)
            .key(&k.finishes)
            .invoke_async(&mut self.redis.shared())
            .await?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Ok(JobStats {
            name: self.name.clone(),
            queued: at(0),
            claiming: at(1),
            claimed: at(2),
            delayed: at(3),
            stalled: at(4),
            publishes: at(5),
            finishes: at(6),
        })
    }

    /// Up to `limit` stalled jobs, ordered by id, with payload, attempts and last error.
    pub async fn stalled(&self, limit: usize) -> Result<Vec<StalledJob>> {
        let k = &self.keys;
        let flat: Vec<redis::Value> = STALLED
            .key(&k.stalled)
            .key(&k.items)
            .key(&k.cancelled)
            .key(&k.errors)
            .arg(limit)
            .invoke_async(&mut self.redis.shared())
            .await?;
        let text = |v: &redis::Value| -> Option<String> { redis::from_redis_value_ref(v).ok() };
        Ok(flat
            .chunks_exact(4)
            .map(|c| StalledJob {
                id: text(&c[0]).unwrap_or_default(),
                payload: text(&c[1]),
                attempts: redis::from_redis_value_ref(&c[2]).unwrap_or(0),
                error: text(&c[3]),
            })
            .collect())
    }
}

/// The scripts answer `Job not claimed` / `Job not stalled`; the client splits the code off.
fn map_state(e: redis::RedisError, id: &str) -> ThoonkError {
    let text = e.to_string();
    if text.contains("not claimed") {
        ThoonkError::NotClaimed(id.to_string())
    } else if text.contains("not stalled") {
        ThoonkError::NotStalled(id.to_string())
    } else {
        e.into()
    }
}
