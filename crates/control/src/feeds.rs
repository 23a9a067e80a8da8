//! A thwonk's feeds on Redis: `thwonk.feed(NAME)` in a script is the Thoonk feed
//! `ADDRESS/NAME` (`list@example.org/archive`), which anyone can follow with
//! `SUBSCRIBE event.feed.publish:list@example.org/archive`.
//!
//! A run's feed operations are committed with it as pending rows (see `thwonk-store`), then
//! applied here, in commit order, by the runner that holds the thwonk's lease, so the feed
//! sees them in the order the runs made them. If Redis is away they stay pending and the
//! runner's retry pass applies them later (taking the lease too); nothing committed is lost
//! and a failed run never reaches Redis. Applying an operation twice (a crash between applying
//! and marking) is harmless: a publish of an existing id is an edit, a retract of a missing
//! id does nothing.

use crate::ControlError;
use thwonk_core::run::FeedOp;
use thwonk_core::time::now_ms;
use thwonk_store::{Store, Thwonk};
use thwonk_thoonk::{Feed, Redis};
use tracing::{debug, warn};

/// Pending operations applied per round trip to the store.
const APPLY_BATCH: i64 = 100;

/// A stored feed item as the JSON value it holds. A script's `feed.publish(value)` stores
/// `JSON.stringify(value)`, so this gives back the value it published; text some other
/// publisher stored that is not JSON comes back as a JSON string of that text.
pub fn item_value(stored: &str) -> serde_json::Value {
    serde_json::from_str(stored).unwrap_or_else(|_| serde_json::Value::String(stored.to_string()))
}

/// The Thoonk feed behind a script's `thwonk.feed(name)`.
pub fn thoonk_feed_name(thwonk: &Thwonk, name: &str) -> String {
    format!("{}/{name}", thwonk.address)
}

/// A run's feed operations, renamed to the thwonk's Thoonk feeds.
pub fn thoonk_feed_ops(thwonk: &Thwonk, ops: &[FeedOp]) -> Vec<FeedOp> {
    ops.iter()
        .map(|op| match op {
            FeedOp::Publish { feed, id, item } => FeedOp::Publish {
                feed: thoonk_feed_name(thwonk, feed),
                id: id.clone(),
                item: item.clone(),
            },
            FeedOp::Retract { feed, id } => FeedOp::Retract {
                feed: thoonk_feed_name(thwonk, feed),
                id: id.clone(),
            },
        })
        .collect()
}

/// Apply the thwonk's pending feed operations to Redis, oldest first, marking each applied.
/// Stops at the first failure so that order holds (the rest wait for the retry pass).
/// Call only while holding the thwonk's lease. Returns how many were applied.
///
/// `max_items` (`feeds.max_items`; 0: unbounded) bounds every feed published to: a publish of
/// a new item to a full feed first removes its oldest items (Thoonk's `max_length`, each
/// announced as a retract).
pub async fn apply_pending(
    store: &Store,
    redis: &Redis,
    thwonk_id: &str,
    max_items: u64,
) -> Result<usize, ControlError> {
    let mut applied = 0;
    let mut bounded = std::collections::HashSet::new();
    loop {
        let pending = store.pending_feed_ops(thwonk_id, APPLY_BATCH).await?;
        if pending.is_empty() {
            return Ok(applied);
        }
        for p in pending {
            match &p.op {
                FeedOp::Publish { feed, id, item } => {
                    let f = Feed::new(redis, feed);
                    if max_items > 0 && !bounded.contains(feed) {
                        f.configure(max_items).await?;
                        bounded.insert(feed.clone());
                    }
                    // The commit's time, not now: re-applying gives the item the same place.
                    f.publish(Some(id), item, p.created_at_ms).await?;
                }
                FeedOp::Retract { feed, id } => {
                    Feed::new(redis, feed).retract(id).await?;
                }
            }
            store.mark_feed_op_applied(p.seq, now_ms()).await?;
            applied += 1;
        }
    }
}

/// Apply after a commit: a failure is logged, not returned, because the run is committed and
/// its operations wait, pending, for the retry pass.
pub async fn apply_after_commit(store: &Store, redis: &Redis, thwonk_id: &str, max_items: u64) {
    match apply_pending(store, redis, thwonk_id, max_items).await {
        Ok(n) if n > 0 => debug!(thwonk = %thwonk_id, applied = n, "feed operations applied"),
        Ok(_) => {}
        Err(e) => {
            warn!(thwonk = %thwonk_id, error = %e, "feed operations stay pending; retried later")
        }
    }
}
