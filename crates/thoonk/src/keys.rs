//! The key layout of docs/thoonk.md, in one place. Nothing else in Thwonk spells a Redis key.
//!
//! `{name}` in docs/thoonk.md is the model's name itself (`job.ids:inbound`); a name may carry a
//! cluster hash tag (`{inbound}`) and every key of the model then lands in one slot.

/// SET of job queue names.
pub const JOBS: &str = "jobs";
/// SET of feed names (feeds, sorted feeds and queues).
pub const FEEDS: &str = "feeds";
/// SET of recurring (schedule) names.
pub const RECURRINGS: &str = "recurrings";

/// The keys of one feed, sorted feed or queue (docs/thoonk.md: they share the `feed.*` family;
/// `feed.config:{name}` says which type it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedKeys {
    /// HASH of settings: `type`, `max_length`.
    pub config: String,
    /// ZSET id → publish time (feed), or LIST of ids (sorted feed, queue).
    pub ids: String,
    /// HASH id → item.
    pub items: String,
    /// Counter of publishes.
    pub publishes: String,
    /// Counter that hands out a sorted feed's ids.
    pub idincr: String,
}

impl FeedKeys {
    pub fn new(name: &str) -> FeedKeys {
        FeedKeys {
            config: format!("feed.config:{name}"),
            ids: format!("feed.ids:{name}"),
            items: format!("feed.items:{name}"),
            publishes: format!("feed.publishes:{name}"),
            idincr: format!("feed.idincr:{name}"),
        }
    }
}

/// The pub/sub channel of a feed event (`publish`, `edit`, `retract`).
pub fn feed_event(event: &str, name: &str) -> String {
    format!("event.feed.{event}:{name}")
}

/// The pub/sub channel of a sorted feed's position events.
pub fn sorted_feed_position(name: &str) -> String {
    format!("event.sorted_feed.position:{name}")
}

/// The keys of one recurring model (a set of tasks, each with its next due time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringKeys {
    /// HASH of settings; `interval:{task}` is a task's period in ms, when it has a fixed one.
    pub config: String,
    /// ZSET task → next due time (ms).
    pub tasks: String,
}

impl RecurringKeys {
    pub fn new(name: &str) -> RecurringKeys {
        RecurringKeys {
            config: format!("recurring.config:{name}"),
            tasks: format!("recurring:{name}"),
        }
    }
}

/// The keys of one job queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKeys {
    /// LIST of available ids (LPUSH to add, take from the right: FIFO).
    pub ids: String,
    /// HASH id → payload.
    pub items: String,
    /// ZSET id → time queued (ms).
    pub published: String,
    /// ZSET id → time claimed (ms).
    pub claimed: String,
    /// HASH id → times cancelled.
    pub cancelled: String,
    /// SET of ids given up on.
    pub stalled: String,
    /// Counter of publishes.
    pub publishes: String,
    /// Counter of finishes.
    pub finishes: String,
    /// HASH id → last error (Thwonk's addition).
    pub errors: String,
    /// LIST of ids taken by BLMOVE and not yet claimed (Thwonk's addition: a consumer killed
    /// between the two leaves its job here, recoverable, instead of losing it).
    pub claiming: String,
    /// ZSET id → time it becomes available again (Thwonk's addition: retries with backoff).
    pub delayed: String,
    /// HASH id → when the reaper first saw it in `claiming` (Thwonk's addition: an id that
    /// stays there past the visibility timeout belonged to a consumer that died).
    pub claiming_since: String,
    /// HASH of the queue's settings.
    pub config: String,
}

impl JobKeys {
    pub fn new(name: &str) -> JobKeys {
        JobKeys {
            ids: format!("job.ids:{name}"),
            items: format!("job.items:{name}"),
            published: format!("job.published:{name}"),
            claimed: format!("job.claimed:{name}"),
            cancelled: format!("job.cancelled:{name}"),
            stalled: format!("job.stalled:{name}"),
            publishes: format!("job.publishes:{name}"),
            finishes: format!("job.finishes:{name}"),
            errors: format!("job.errors:{name}"),
            claiming: format!("job.claiming:{name}"),
            delayed: format!("job.delayed:{name}"),
            claiming_since: format!("job.claiming_since:{name}"),
            config: format!("job.config:{name}"),
        }
    }
}

/// The reply LIST of one job (Thwonk's addition): a consumer that finishes the job with a
/// reply pushes its result here, so the one client waiting for that job (an HTTP invoke) pops
/// it with BLPOP, instead of every waiter following every finish event of the queue. It
/// expires by itself: nothing is left behind when the client gave up.
pub fn job_reply(name: &str, id: &str) -> String {
    format!("job.reply:{name}:{id}")
}

/// The pub/sub channel of a job event (`publish`, `claim`, `finish`, `cancel`, `stall`,
/// `retry`, `delay`).
pub fn job_event(event: &str, name: &str) -> String {
    format!("event.job.{event}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_keys_follow_thoonk() {
        let k = JobKeys::new("inbound");
        assert_eq!(k.ids, "job.ids:inbound");
        assert_eq!(k.items, "job.items:inbound");
        assert_eq!(k.published, "job.published:inbound");
        assert_eq!(k.claimed, "job.claimed:inbound");
        assert_eq!(k.cancelled, "job.cancelled:inbound");
        assert_eq!(k.stalled, "job.stalled:inbound");
        assert_eq!(k.publishes, "job.publishes:inbound");
        assert_eq!(k.finishes, "job.finishes:inbound");
        assert_eq!(job_event("finish", "inbound"), "event.job.finish:inbound");
        assert_eq!(job_reply("inbound", "r1"), "job.reply:inbound:r1");
    }

    #[test]
    fn feed_and_recurring_keys_follow_thoonk() {
        let k = FeedKeys::new("list@example.org/archive");
        assert_eq!(k.ids, "feed.ids:list@example.org/archive");
        assert_eq!(k.items, "feed.items:list@example.org/archive");
        assert_eq!(k.config, "feed.config:list@example.org/archive");
        assert_eq!(k.publishes, "feed.publishes:list@example.org/archive");
        assert_eq!(k.idincr, "feed.idincr:list@example.org/archive");
        assert_eq!(feed_event("publish", "a"), "event.feed.publish:a");
        assert_eq!(sorted_feed_position("a"), "event.sorted_feed.position:a");
        let r = RecurringKeys::new("schedules");
        assert_eq!(r.tasks, "recurring:schedules");
        assert_eq!(r.config, "recurring.config:schedules");
    }
}
