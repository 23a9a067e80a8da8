//! The reaper: jobs survive their consumers (docs/thoonk.md, "The reaper").
//!
//! Two ways a consumer can die holding a job, and what a pass does about each:
//! - after claiming it: the id sits in `job.claimed` with its claim time. Once that is older
//!   than the visibility timeout the claim counts as a failed attempt (`job.cancelled`) and
//!   the job goes back to the head of the queue, or, out of attempts, to `job.stalled` with
//!   the reason in `job.errors`.
//! - between BLMOVE and its claim script: the id sits in `job.claiming`, which has no times.
//!   A pass notes when it first saw each id there (`job.claiming_since`); one still there a
//!   visibility timeout later is put back in the queue (it was never worked on, so no attempt
//!   is counted). A live consumer claims within milliseconds and clears the note.
//!
//! Every pass over a queue is one script, so any number of reapers (one per runner and egress
//! process) may run at once without returning a job twice. A queue's `job.config` fields
//! `visibility_ms` and `max_attempts` override the process's settings, so queues shared with
//! workers in other languages can have their own.
//!
//! A consumer that is merely slow past the timeout loses its claim: another consumer may take
//! the job. Effects stay exactly-once because the SQL commit is guarded, not the claim.

use crate::jobs::JobQueue;
use crate::keys::{JOBS, job_event};
use crate::{Redis, Result};
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The reaper's settings (from `[queues]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaperSettings {
    /// A claim older than this is presumed dead, ms.
    pub visibility_ms: u64,
    /// Claims that may end unfinished before a job is stalled.
    pub max_attempts: u32,
    /// Time between passes, ms.
    pub interval_ms: u64,
}

/// At most this many expired claims are handled per queue and pass; the next pass continues.
const REAP_BATCH: i64 = 100;

/// What one pass over one queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Expired claims put back in the queue.
    pub requeued: i64,
    /// Expired claims that used their last attempt.
    pub stalled: i64,
    /// Ids recovered from `job.claiming`.
    pub recovered: i64,
}

/// KEYS: claimed cancelled ids stalled errors claiming since config. ARGV: now visibility
/// max-attempts batch cancel-channel stall-channel.
static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local claimed, cancelled, ids, stalled, errors, claiming, since, config =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local now = tonumber(ARGV[1])
local vis = tonumber(redis.call('HGET', config, 'visibility_ms') or '') or tonumber(ARGV[2])
local max = tonumber(redis.call('HGET', config, 'max_attempts') or '') or tonumber(ARGV[3])
local requeued, stalled_n, recovered = 0, 0, 0
local expired = redis.call('ZRANGEBYSCORE', claimed, '-inf', now - vis, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(expired) do
  redis.call('ZREM', claimed, id)
  local attempt = redis.call('HINCRBY', cancelled, id, 1)
  if attempt >= max then
    redis.call('SADD', stalled, id)
    redis.call('HSET', errors, id, 'not finished within ' .. vis .. ' ms (attempt ' .. attempt .. ')')
    redis.call('PUBLISH', ARGV[6], id)
    stalled_n = stalled_n + 1
  else
    redis.call('RPUSH', ids, id)
    redis.call('PUBLISH', ARGV[5], id)
    requeued = requeued + 1
  end
end
local parked = redis.call('LRANGE', claiming, 0, -1)
local present = {}
for _, id in ipairs(parked) do
  present[id] = true
  local seen = tonumber(redis.call('HGET', since, id) or '')
  if not seen then
    redis.call('HSET', since, id, now)
  elseif now - seen >= vis then
    redis.call('LREM', claiming, 1, id)
    redis.call('HDEL', since, id)
    redis.call('RPUSH', ids, id)
    recovered = recovered + 1
  end
end
for _, id in ipairs(redis.call('HKEYS', since)) do
  if not present[id] then
    redis.call('HDEL', since, id)
  end
end
return {requeued, stalled_n, recovered}
"#,
    )
});

impl JobQueue {
    /// One reaper pass over this queue at `now` (ms).
    pub async fn reap(&self, now: i64, settings: &ReaperSettings) -> Result<Reaped> {
        let k = &self.keys;
        let (requeued, stalled, recovered): (i64, i64, i64) = REAP
            .key(&k.claimed)
            .key(&k.cancelled)
            .key(&k.ids)
            .key(&k.stalled)
            .key(&k.errors)
            .key(&k.claiming)
            .key(&k.claiming_since)
            .key(&k.config)
            .arg(now)
            .arg(settings.visibility_ms)
            .arg(settings.max_attempts.max(1))
            .arg(REAP_BATCH)
            .arg(job_event("cancel", &self.name))
            .arg(job_event("stall", &self.name))
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(Reaped {
            requeued,
            stalled,
            recovered,
        })
    }
}

/// Every registered job queue (the `jobs` set), sorted.
pub async fn job_queue_names(redis: &Redis) -> Result<Vec<String>> {
    let mut names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(JOBS)
        .query_async(&mut redis.shared())
        .await?;
    names.sort();
    Ok(names)
}

/// Reap every registered queue every `interval_ms` until `shutdown`. Errors (Redis away) are
/// logged and the next pass tries again.
pub async fn run(redis: Redis, settings: ReaperSettings, shutdown: CancellationToken) {
    let interval = Duration::from_millis(settings.interval_ms.max(10));
    // While Redis is away every pass fails: one line per 30 s.
    static FAILED: thwonk_core::report::Throttle =
        thwonk_core::report::Throttle::new(Duration::from_secs(30));
    loop {
        match job_queue_names(&redis).await {
            Ok(names) => {
                for name in names {
                    let q = JobQueue::new(&redis, &name);
                    match q.reap(thwonk_core::time::now_ms(), &settings).await {
                        Ok(r) if r != Reaped::default() => tracing::warn!(
                            queue = %name,
                            requeued = r.requeued,
                            stalled = r.stalled,
                            recovered = r.recovered,
                            "reaper returned jobs whose consumer went away"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            if let Some(repeated) = FAILED.hit() {
                                tracing::warn!(queue = %name, error = %e, repeated, "reaper pass failed")
                            }
                        }
                    }
                }
            }
            Err(e) => {
                if let Some(repeated) = FAILED.hit() {
                    tracing::warn!(error = %e, repeated, "reaper cannot list job queues")
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
