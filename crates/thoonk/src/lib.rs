//! Thoonk models on Redis: the job queues that carry Thwonk's work (`inbound`, `outbound`),
//! the feeds that scripts publish to and the recurring tasks that drive schedules, in the key
//! layout of Thoonk (`docs/thoonk.md` is the wire format), so workers in any language can take
//! the same jobs and follow the same feeds.
//!
//! - [`connection`]: the one Redis connection factory (shared multiplexed connection with
//!   reconnects; dedicated connections for blocking commands).
//! - [`keys`]: the one place that knows the key layout.
//! - [`jobs`]: the job queue (publish, take-and-claim, finish, cancel, retry later).
//! - [`job_admin`]: the queue's dead-letter side: failures, stalled jobs, retry and drop.
//! - [`reaper`]: jobs outlive their consumers: overdue claims go back, or become dead letters.
//! - [`feed`], [`sorted_feed`], [`queue`]: the feeds scripts publish to, and plain FIFO queues.
//! - [`recurring`]: recurring tasks that drive schedules, fired once per tick across runners.
//! - [`events`]: following a model's changes over pub/sub, decoded.
//! - [`server`]: the private redis-server child of the embedded default (and of tests).
//!
//! Not for: durable state. Everything here can be rebuilt from SQL.

pub mod connection;
pub mod events;
pub mod feed;
pub mod job_admin;
pub mod jobs;
pub mod keys;
pub mod queue;
pub mod reaper;
pub mod recurring;
pub mod server;
pub mod sorted_feed;

pub use connection::Redis;
pub use events::{Event, EventHub, Followed, Follower, Subscription};
pub use feed::{Feed, FeedItem};
pub use job_admin::{FailOutcome, JobStats, StalledJob};
pub use jobs::{Job, JobEnding, JobQueue};
pub use queue::Queue;
pub use reaper::{Reaped, ReaperSettings};
pub use recurring::{DueTask, Recurring};
pub use server::{PrivateRedis, SupervisePolicy, Supervisor};
pub use sorted_feed::{Position, SortedFeed};

/// The queue of messages waiting for their rule script. Payload: `{"message_id", "thwonk_id"}`.
pub const INBOUND: &str = "inbound";
/// The queue of outbox rows waiting for delivery. Payload: `{"outbox_id"}`.
pub const OUTBOUND: &str = "outbound";

/// The payload of an [`INBOUND`] job (the one place that spells it).
pub fn inbound_payload(message_id: &str, thwonk_id: &str) -> String {
    serde_json::json!({ "message_id": message_id, "thwonk_id": thwonk_id }).to_string()
}

/// The payload of an [`OUTBOUND`] job (the one place that spells it).
pub fn outbound_payload(outbox_id: &str) -> String {
    serde_json::json!({ "outbox_id": outbox_id }).to_string()
}

/// Errors talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum ThoonkError {
    #[error("redis {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job {0} is not claimed")]
    NotClaimed(String),
    #[error("job {0} is not stalled")]
    NotStalled(String),
    #[error("no item {0} in the feed")]
    NoSuchItem(String),
    #[error("redis unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = ThoonkError> = std::result::Result<T, E>;
