//! A thwonk's feeds on Redis: `thwonk.feed(NAME)` in a script is the Thoonk feed
//! `THWONK_ID/NAME` (`0193a1c2-…/archive`), which anyone can follow with
//! `SUBSCRIBE event.feed.publish:0193a1c2-…/archive`. The thwonk's id, not its address: an
//! address can be deleted and created again by another owner, an id is never reused, so a new
//! thwonk never sees an old one's items. Deleting a thwonk deletes its feeds
//! ([`delete_feeds`]); feeds an older Thwonk keyed by address are renamed once at start
//! ([`rename_address_keyed_feeds`]).
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

/// The Thoonk feed behind a script's `thwonk.feed(name)`: `{thwonk id}/{name}`.
pub fn thoonk_feed_name(thwonk: &Thwonk, name: &str) -> String {
    format!("{}/{name}", thwonk.id)
}

/// Delete every feed of the thwonk `thwonk_id` from Redis (its items, settings and name).
/// Returns how many there were.
pub async fn delete_feeds(redis: &Redis, thwonk_id: &str) -> Result<usize, ControlError> {
    let names =
        thwonk_thoonk::feed::feed_names_with_prefix(redis, &format!("{thwonk_id}/")).await?;
    for name in &names {
        Feed::new(redis, name).delete().await?;
    }
    Ok(names.len())
}

/// Delete the thwonk's feeds after the thwonk itself is gone. A failure (Redis away) is
/// logged, not returned: the thwonk is deleted, and its feeds, keyed by an id nobody will
/// have again, are unreachable through Thwonk; `thwonk` logs their names to remove by hand.
pub async fn delete_feeds_of_deleted(redis: &Redis, thwonk_id: &str) {
    match delete_feeds(redis, thwonk_id).await {
        Ok(n) if n > 0 => {
            debug!(thwonk = %thwonk_id, feeds = n, "feeds of the deleted thwonk deleted")
        }
        Ok(_) => {}
        Err(e) => warn!(
            thwonk = %thwonk_id, error = %e,
            "cannot delete the deleted thwonk's feeds now: remove the Redis feeds named {thwonk_id}/* by hand"
        ),
    }
}

/// Feeds that an older Thwonk keyed by address (`ADDRESS/NAME`) are renamed to their
/// thwonk's id (`ID/NAME`), each key of each feed, once; feeds of an address no thwonk has
/// any more are deleted. Returns how many feeds were renamed. Run at start, before runners
/// apply feed operations.
pub async fn rename_address_keyed_feeds(
    store: &Store,
    redis: &Redis,
) -> Result<usize, ControlError> {
    let names = thwonk_thoonk::feed::feed_names_with_prefix(redis, "").await?;
    let mut renamed = 0;
    for name in names {
        let Some((owner, feed)) = name.split_once('/') else {
            continue;
        };
        // Only an address has an `@`; ids (UUIDs) and Thwonk's own feeds have none.
        if !owner.contains('@') {
            continue;
        }
        let Ok(address) = thwonk_core::Address::parse(owner) else {
            continue;
        };
        let old = Feed::new(redis, &name);
        match store.thwonk_by_address(&address).await? {
            Some(t) => {
                let new_name = thoonk_feed_name(&t, feed);
                if old.rename(&new_name).await? {
                    renamed += 1;
                } else {
                    warn!(
                        feed = %name, to = %new_name,
                        "a feed keyed by address is not renamed: its thwonk's id already has a feed of that name; merge or delete it by hand"
                    );
                }
            }
            None => {
                old.delete().await?;
            }
        }
    }
    Ok(renamed)
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
