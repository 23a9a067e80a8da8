//! Recurring tasks (docs/thoonk.md, "Recurring tasks"): a ZSET of task → next due time (ms).
//!
//! Taking a due task and rescheduling it is one script, so of several schedulers polling the
//! same model exactly one fires each tick. Two ways to reschedule:
//! - [`Recurring::get`]: the task's fixed `interval:{task}` (ms) from `recurring.config`; the
//!   script moves it to its first tick after `now` (missed ticks are skipped, not replayed).
//! - [`Recurring::take_due`]: the caller computes the next due time (a cron expression, which
//!   Lua cannot evaluate), and the script swaps it in only if the task still has the due time
//!   the caller read: a compare-and-set, so a scheduler that lost the race sees `false`.
//!
//! Comparisons are numeric (the original compared strings).

use crate::keys::{RECURRINGS, RecurringKeys};
use crate::{Redis, Result};
use redis::Script;
use std::sync::LazyLock;

/// A task that came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTask {
    pub task: String,
    /// The tick that fired (ms).
    pub due_ms: i64,
}

/// KEYS: recurrings tasks config. ARGV: name task due interval (0: none).
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[2])
if tonumber(ARGV[4]) > 0 then
  redis.call('HSET', KEYS[3], 'interval:' .. ARGV[2], ARGV[4])
else
  redis.call('HDEL', KEYS[3], 'interval:' .. ARGV[2])
end
return 1
"#,
    )
});

/// KEYS: tasks config. ARGV: task.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HDEL', KEYS[2], 'interval:' .. ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"#,
    )
});

/// KEYS: tasks config. ARGV: now. The earliest task due at `now` that has an interval,
/// rescheduled to its first tick after now. {task, due} or nil.
static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #due == 0 then
  return false
end
local task, at = due[1], tonumber(due[2])
local interval = tonumber(redis.call('HGET', KEYS[2], 'interval:' .. task) or '') or 0
if interval <= 0 then
  -- One-shot: fired once, then gone.
  redis.call('ZREM', KEYS[1], task)
else
  local steps = math.floor((now - at) / interval) + 1
  redis.call('ZADD', KEYS[1], at + steps * interval, task)
end
return {task, tostring(at)}
"#,
    )
});

/// KEYS: tasks. ARGV: now. The earliest task due at `now`: {task, due} or nil. Read only.
static PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]), 'WITHSCORES', 'LIMIT', 0, 1)
if #due == 0 then
  return false
end
return {due[1], tostring(tonumber(due[2]))}
"#,
    )
});

/// KEYS: tasks. ARGV: task expected-due next-due. 1 when this caller won the tick.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[1])
return 1
"#,
    )
});

/// KEYS: tasks. Flat {task, due, ...}, soonest first.
static TASKS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local flat = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 2, #flat, 2 do flat[i] = tostring(tonumber(flat[i])) end
return flat
"#,
    )
});

/// One named recurring model (cheap to clone).
#[derive(Clone)]
pub struct Recurring {
    redis: Redis,
    name: String,
    keys: RecurringKeys,
}

impl Recurring {
    pub fn new(redis: &Redis, name: &str) -> Recurring {
        Recurring {
            redis: redis.clone(),
            name: name.to_string(),
            keys: RecurringKeys::new(name),
        }
    }

    /// Add (or reset) `task`, first due at `due_ms`; with `interval_ms` it repeats by itself
    /// through [`Recurring::get`].
    pub async fn add(&self, task: &str, due_ms: i64, interval_ms: Option<u64>) -> Result<()> {
        ADD.key(RECURRINGS)
            .key(&self.keys.tasks)
            .key(&self.keys.config)
            .arg(&self.name)
            .arg(task)
            .arg(due_ms)
            .arg(interval_ms.unwrap_or(0))
            .invoke_async::<i64>(&mut self.redis.shared())
            .await?;
        Ok(())
    }

    /// Remove a task; true if it was there.
    pub async fn remove(&self, task: &str) -> Result<bool> {
        let n: i64 = REMOVE
            .key(&self.keys.tasks)
            .key(&self.keys.config)
            .arg(task)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(n == 1)
    }

    /// Take the earliest task due at `now` and reschedule it by its interval (a task without
    /// one fires once and is removed).
    pub async fn get(&self, now_ms: i64) -> Result<Option<DueTask>> {
        let got: Option<(String, String)> = GET
            .key(&self.keys.tasks)
            .key(&self.keys.config)
            .arg(now_ms)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(got.map(due_task))
    }

    /// The earliest task due at `now`, without taking it.
    pub async fn peek(&self, now_ms: i64) -> Result<Option<DueTask>> {
        let got: Option<(String, String)> = PEEK
            .key(&self.keys.tasks)
            .arg(now_ms)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(got.map(due_task))
    }

    /// Move `task` from `due_ms` to `next_ms`, only if it is still due at `due_ms`. True when
    /// this caller won the tick.
    pub async fn claim(&self, task: &str, due_ms: i64, next_ms: i64) -> Result<bool> {
        let n: i64 = CLAIM
            .key(&self.keys.tasks)
            .arg(task)
            .arg(due_ms)
            .arg(next_ms)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(n == 1)
    }

    /// Take the earliest task due at `now`, rescheduling it to `next(task, due)` atomically;
    /// `next` returning `None` removes the task. Retries when another scheduler won the tick,
    /// so `None` means nothing is due.
    pub async fn take_due(
        &self,
        now_ms: i64,
        next: impl Fn(&str, i64) -> Option<i64>,
    ) -> Result<Option<DueTask>> {
        while let Some(due) = self.peek(now_ms).await? {
            match next(&due.task, due.due_ms) {
                Some(next_ms) => {
                    if self.claim(&due.task, due.due_ms, next_ms).await? {
                        return Ok(Some(due));
                    }
                }
                None => {
                    // Not schedulable any more (a bad expression left by an old version):
                    // drop it rather than spin on it.
                    self.remove(&due.task).await?;
                }
            }
        }
        Ok(None)
    }

    /// Every task and its next due time, soonest first.
    pub async fn tasks(&self) -> Result<Vec<DueTask>> {
        let flat: Vec<String> = TASKS
            .key(&self.keys.tasks)
            .invoke_async(&mut self.redis.shared())
            .await?;
        Ok(flat
            .chunks_exact(2)
            .map(|c| due_task((c[0].clone(), c[1].clone())))
            .collect())
    }
}

fn due_task((task, due): (String, String)) -> DueTask {
    DueTask {
        task,
        due_ms: due.parse::<f64>().map(|f| f as i64).unwrap_or(0),
    }
}
