//! Job queues: claimed work with acknowledgement (docs/thoonk.md, "Job queue").
//!
//! Every state change is one Lua script, so a job is always in exactly one place: available
//! (`job.ids`), being taken (`job.claiming`), claimed (`job.claimed`), delayed (`job.delayed`)
//! or stalled. Taking is the one step that cannot be a script, because scripts cannot block:
//! BLMOVE moves the id from `job.ids` to `job.claiming` atomically, then a script claims it. A
//! consumer killed between the two leaves the id in `job.claiming`, not lost.

use crate::keys::{JOBS, JobKeys, job_event, job_reply};
use crate::{Redis, Result, ThoonkError};
use redis::Script;
use redis::aio::MultiplexedConnection;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use thwonk_core::time::now_ms;
use tokio::sync::Mutex;

/// A job taken from a queue: claimed until finished, cancelled or retried later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub payload: String,
}

/// How often one consumer moves due delayed jobs back to the queue. Retry delays are
/// seconds to hours, so a quarter second of lateness is noise, and it keeps the extra round
/// trip off the path of every take.
const PROMOTE_EVERY_MS: i64 = 250;
/// At most this many delayed jobs are promoted per pass (the next pass takes the rest).
const PROMOTE_BATCH: i64 = 100;

/// KEYS: ids items published publishes jobs-registry. ARGV: name id payload now priority
/// event-channel.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids, items, published, publishes, registry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, id, payload, now, priority, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
redis.call('SADD', registry, name)
if redis.call('HEXISTS', items, id) == 1 then
  -- Already queued, claimed or delayed: replace the payload, never queue twice.
  redis.call('HSET', items, id, payload)
  return 0
end
if priority == '1' then
  redis.call('RPUSH', ids, id)
else
  redis.call('LPUSH', ids, id)
end
redis.call('INCR', publishes)
redis.call('HSET', items, id, payload)
redis.call('ZADD', published, now, id)
redis.call('PUBLISH', channel, id)
return 1
"#,
    )
});

/// KEYS: claiming claimed items claiming-since. ARGV: id now event-channel. Returns the
/// payload, or nil when the job was retracted (or recovered by the reaper) while it was being
/// taken.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claiming, claimed, items, since = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, now, channel = ARGV[1], ARGV[2], ARGV[3]
redis.call('HDEL', since, id)
if redis.call('LREM', claiming, 1, id) == 0 then
  -- The reaper gave it back to the queue: someone else takes it.
  return false
end
local payload = redis.call('HGET', items, id)
if not payload then
  return false
end
redis.call('ZADD', claimed, now, id)
redis.call('PUBLISH', channel, id)
return payload
"#,
    )
});

/// KEYS: claimed cancelled published finishes items errors reply. ARGV: id result
/// event-channel reply-ttl-ms (`0`: no reply).
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claimed, cancelled, published, finishes, items, errors, reply = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, result, channel, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('ZREM', claimed, id) == 0 then
  return redis.error_reply('Job not claimed')
end
if ttl > 0 then
  redis.call('DEL', reply)
  redis.call('RPUSH', reply, result)
  redis.call('PEXPIRE', reply, ttl)
end
redis.call('HDEL', cancelled, id)
redis.call('ZREM', published, id)
redis.call('INCR', finishes)
redis.call('HDEL', items, id)
redis.call('HDEL', errors, id)
if result == '' then
  redis.call('PUBLISH', channel, id)
else
  redis.call('PUBLISH', channel, id .. '\0' .. result)
end
return 1
"#,
    )
});

/// KEYS: claimed cancelled ids. ARGV: id event-channel. Back to the head of the queue.
static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claimed, cancelled, ids = KEYS[1], KEYS[2], KEYS[3]
local id, channel = ARGV[1], ARGV[2]
if redis.call('ZREM', claimed, id) == 0 then
  return redis.error_reply('Job not claimed')
end
redis.call('HINCRBY', cancelled, id, 1)
redis.call('RPUSH', ids, id)
redis.call('PUBLISH', channel, id)
return 1
"#,
    )
});

/// KEYS: claimed delayed errors. ARGV: id due error event-channel.
static RETRY_AT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claimed, delayed, errors = KEYS[1], KEYS[2], KEYS[3]
local id, due, err, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('ZREM', claimed, id) == 0 then
  return redis.error_reply('Job not claimed')
end
redis.call('ZADD', delayed, due, id)
if err ~= '' then
  redis.call('HSET', errors, id, err)
end
redis.call('PUBLISH', channel, id)
return 1
"#,
    )
});

/// KEYS: delayed ids. ARGV: now batch. Moves due delayed jobs to the tail of the queue.
static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local delayed, ids = KEYS[1], KEYS[2]
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZREM', delayed, id)
  redis.call('LPUSH', ids, id)
end
return #due
"#,
    )
});

/// What [`JobQueue::ending`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobEnding {
    /// The result a finish with a reply left (until it expires).
    pub reply: Option<String>,
    /// The job is a dead letter.
    pub stalled: bool,
    /// Its last error (`job.errors`).
    pub error: Option<String>,
}

/// One named job queue. Clones share nothing but the Redis handle: each clone takes jobs on
/// its own dedicated connection, so give each concurrent consumer its own clone.
pub struct JobQueue {
    pub(crate) redis: Redis,
    pub(crate) name: String,
    pub(crate) keys: JobKeys,
    taker: Arc<Mutex<Taker>>,
}

#[derive(Default)]
struct Taker {
    conn: Option<MultiplexedConnection>,
    last_promote_ms: i64,
}

impl Clone for JobQueue {
    fn clone(&self) -> Self {
        JobQueue::new(&self.redis, &self.name)
    }
}

impl JobQueue {
    pub fn new(redis: &Redis, name: &str) -> JobQueue {
        JobQueue {
            redis: redis.clone(),
            name: name.to_string(),
            keys: JobKeys::new(name),
            taker: Arc::new(Mutex::new(Taker::default())),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn keys(&self) -> &JobKeys {
        &self.keys
    }

    /// Queue a job (FIFO). Publishing an id that is already queued, claimed or delayed
    /// replaces its payload and does not queue it twice. True when it was newly queued.
    pub async fn publish(&self, id: &str, payload: &str) -> Result<bool> {
        self.publish_with_priority(id, payload, false).await
    }

    /// Queue a job; with `priority` it goes to the head of the queue.
    pub async fn publish_with_priority(
        &self,
        id: &str,
        payload: &str,
        priority: bool,
    ) -> Result<bool> {
        let k = &self.keys;
        let n: i64 = PUBLISH
            .key(&k.ids)
            .key(&k.items)
            .key(&k.published)
            .key(&k.publishes)
            .key(JOBS)
            .arg(&self.name)
            .arg(id)
            .arg(payload)
            .arg(now_ms())
            .arg(if priority { "1" } else { "0" })
            .arg(job_event("publish", &self.name))
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(n == 1)
    }

    /// Take the oldest job and claim it, waiting up to `timeout` (whole seconds are used by
    /// Redis; at least 10 ms). `None` on timeout.
    pub async fn take(&self, timeout: Duration) -> Result<Option<Job>> {
        let mut taker = self.taker.lock().await;
        let now = now_ms();
        if now - taker.last_promote_ms >= PROMOTE_EVERY_MS {
            self.promote_due(now).await?;
            taker.last_promote_ms = now;
        }
        if taker.conn.is_none() {
            taker.conn = Some(self.redis.dedicated().await?);
        }
        let conn = taker.conn.as_mut().expect("set just above");
        let secs = timeout.as_secs_f64().max(0.01);
        let moved: std::result::Result<Option<String>, redis::RedisError> = redis::cmd("BLMOVE")
            .arg(&self.keys.ids)
            .arg(&self.keys.claiming)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(secs)
            .query_async(conn)
            .await;
        let id = match moved {
            Ok(Some(id)) => id,
            Ok(None) => return Ok(None),
            Err(e) => {
                // The connection may be dead (Redis restarted): open a new one next time.
                taker.conn = None;
                return Err(e.into());
            }
        };
        drop(taker);
        let k = &self.keys;
        let payload: Option<String> = CLAIM
            .key(&k.claiming)
            .key(&k.claimed)
            .key(&k.items)
            .key(&k.claiming_since)
            .arg(&id)
            .arg(now_ms())
            .arg(job_event("claim", &self.name))
            .invoke_async(&mut self.redis.shared())
            .await?;
        match payload {
            Some(payload) => Ok(Some(Job { id, payload })),
            // Lost the race with the reaper or a retract: nothing was claimed. Report "no job
            // yet" rather than an error; the caller simply takes again.
            None => Ok(None),
        }
    }

    /// Done with a claimed job; `result` is announced with the finish event.
    pub async fn finish(&self, id: &str, result: Option<&str>) -> Result<()> {
        self.finish_inner(id, result.unwrap_or(""), 0).await
    }

    /// Done with a claimed job, and in the same step leave `result` in the job's reply list
    /// for the client waiting in [`JobQueue::wait_reply`]; the reply expires after `ttl_ms`
    /// (at least 1) whether or not anyone took it. The finish event carries `result` too.
    pub async fn finish_with_reply(&self, id: &str, result: &str, ttl_ms: u64) -> Result<()> {
        self.finish_inner(id, result, ttl_ms.max(1)).await
    }

    async fn finish_inner(&self, id: &str, result: &str, reply_ttl_ms: u64) -> Result<()> {
        let k = &self.keys;
        FINISH
            .key(&k.claimed)
            .key(&k.cancelled)
            .key(&k.published)
            .key(&k.finishes)
            .key(&k.items)
            .key(&k.errors)
            .key(job_reply(&self.name, id))
            .arg(id)
            .arg(result)
            .arg(job_event("finish", &self.name))
            .arg(reply_ttl_ms)
            .invoke_async::<i64>(&mut self.redis.shared())
            .await
            .map_err(|e| not_claimed(e, id))?;
        Ok(())
    }

    /// Wait up to `timeout` for the reply of job `id` (left by
    /// [`JobQueue::finish_with_reply`]), on a dedicated connection of its own so that the
    /// shared one is never blocked. `None` when no reply came in time. A reply that came
    /// before this call is found too: it waits in the list until it expires.
    pub async fn wait_reply(&self, id: &str, timeout: Duration) -> Result<Option<String>> {
        let mut conn = self.redis.dedicated().await?;
        let secs = timeout.as_secs_f64().max(0.01);
        let key = job_reply(&self.name, id);
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&key)
            .arg(secs)
            .query_async(&mut conn)
            .await?;
        Ok(popped.map(|(_, result)| result))
    }

    /// Put a claimed job back at the head of the queue (it is taken again next).
    pub async fn cancel(&self, id: &str) -> Result<()> {
        let k = &self.keys;
        CANCEL
            .key(&k.claimed)
            .key(&k.cancelled)
            .key(&k.ids)
            .arg(id)
            .arg(job_event("cancel", &self.name))
            .invoke_async::<i64>(&mut self.redis.shared())
            .await
            .map_err(|e| not_claimed(e, id))?;
        Ok(())
    }

    /// Release a claimed job; it becomes available again at `due_ms` (ms since the epoch).
    /// `error` (may be empty) is kept in `job.errors` until the job finishes.
    pub async fn retry_at(&self, id: &str, due_ms: i64, error: &str) -> Result<()> {
        let k = &self.keys;
        RETRY_AT
            .key(&k.claimed)
            .key(&k.delayed)
            .key(&k.errors)
            .arg(id)
            .arg(due_ms)
            .arg(error)
            .arg(job_event("delay", &self.name))
            .invoke_async::<i64>(&mut self.redis.shared())
            .await
            .map_err(|e| not_claimed(e, id))?;
        Ok(())
    }

    /// Move delayed jobs that are due at `now` back to the queue; returns how many.
    pub async fn promote_due(&self, now: i64) -> Result<i64> {
        Ok(PROMOTE
            .key(&self.keys.delayed)
            .key(&self.keys.ids)
            .arg(now)
            .arg(PROMOTE_BATCH)
            .invoke_async(&mut self.redis.shared())
            .await?)
    }

    /// Whether a job with this id exists in any state (queued, taken, claimed or delayed).
    pub async fn contains(&self, id: &str) -> Result<bool> {
        let mut c = self.redis.shared();
        let n: i64 = redis::cmd("HEXISTS")
            .arg(&self.keys.items)
            .arg(id)
            .query_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// Where a job that is not in `job.items` any more (or is stalled) ended, for a client
    /// that missed its finish or stall event: the reply a finish with a reply left (while it
    /// lasts), and the last error of a stalled job.
    pub async fn ending(&self, id: &str) -> Result<JobEnding> {
        let mut c = self.redis.shared();
        let (reply, stalled, error): (Option<String>, i64, Option<String>) = redis::pipe()
            .cmd("LINDEX")
            .arg(job_reply(&self.name, id))
            .arg(0)
            .cmd("SISMEMBER")
            .arg(&self.keys.stalled)
            .arg(id)
            .cmd("HGET")
            .arg(&self.keys.errors)
            .arg(id)
            .query_async(&mut c)
            .await?;
        Ok(JobEnding {
            reply,
            stalled: stalled == 1,
            error,
        })
    }

    /// Jobs waiting to be taken.
    pub async fn depth(&self) -> Result<i64> {
        let mut c = self.redis.shared();
        Ok(redis::cmd("LLEN")
            .arg(&self.keys.ids)
            .query_async(&mut c)
            .await?)
    }
}

fn not_claimed(e: redis::RedisError, id: &str) -> ThoonkError {
    // The server error is `Job not claimed`; the client splits it into a code ("Job") and detail.
    if e.to_string().contains("not claimed") {
        ThoonkError::NotClaimed(id.to_string())
    } else {
        e.into()
    }
}
