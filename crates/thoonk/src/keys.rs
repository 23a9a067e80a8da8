//! The key layout of THOONK.md, in one place. Nothing else in Thwonk spells a Redis key.
//!
//! `{name}` in THOONK.md is the model's name itself (`job.ids:inbound`); a name may carry a
//! cluster hash tag (`{inbound}`) and every key of the model then lands in one slot.

/// SET of job queue names.
pub const JOBS: &str = "jobs";

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
            config: format!("job.config:{name}"),
        }
    }
}

/// The pub/sub channel of a job event (`publish`, `claim`, `finish`, `cancel`, `stall`,
/// `retry`).
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
    }
}
