//! Feed operations committed with their run, and their application to Redis afterwards.
//!
//! Feeds live on Redis (Thoonk), but SQL is the system of record: a run's publishes and
//! retracts are rows written in the run's commit transaction (see `runs`), so a run that
//! fails publishes nothing and a committed one loses nothing. Whoever applies them to Redis
//! marks them applied; rows still pending (Redis was away) are applied later, oldest first.

use sqlx::Row;
use thwonk_core::run::FeedOp;

use crate::{Result, Store};

/// A committed feed operation not yet applied to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFeedOp {
    /// Commit order: apply in this order.
    pub seq: i64,
    pub thwonk_id: String,
    /// `feed` is the Thoonk feed's full name (`THWONK_ID/NAME`).
    pub op: FeedOp,
    pub created_at_ms: i64,
}

impl Store {
    /// A thwonk's pending feed operations, in commit order (at most `limit`).
    pub async fn pending_feed_ops(
        &self,
        thwonk_id: &str,
        limit: i64,
    ) -> Result<Vec<PendingFeedOp>> {
        let rows = sqlx::query(
            "SELECT seq, thwonk_id, feed, op, item_id, item, created_at_ms FROM feed_ops \
             WHERE thwonk_id = $1 AND applied_at_ms IS NULL ORDER BY seq LIMIT $2",
        )
        .bind(thwonk_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let feed: String = row.try_get("feed")?;
                let id: String = row.try_get("item_id")?;
                let op: String = row.try_get("op")?;
                let op = if op == "publish" {
                    FeedOp::Publish {
                        feed,
                        id,
                        item: row
                            .try_get::<Option<String>, _>("item")?
                            .unwrap_or_default(),
                    }
                } else {
                    FeedOp::Retract { feed, id }
                };
                Ok(PendingFeedOp {
                    seq: row.try_get("seq")?,
                    thwonk_id: row.try_get("thwonk_id")?,
                    op,
                    created_at_ms: row.try_get("created_at_ms")?,
                })
            })
            .collect()
    }

    /// Thwonks with feed operations pending since before `older_than_ms` (the retry pass
    /// leaves fresh ones to the runner that committed them).
    pub async fn thwonks_with_pending_feed_ops(&self, older_than_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT thwonk_id FROM feed_ops \
             WHERE applied_at_ms IS NULL AND created_at_ms < $1 ORDER BY thwonk_id",
        )
        .bind(older_than_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("thwonk_id"))
            .collect::<Result<_, _>>()?)
    }

    /// Mark a feed operation applied to Redis.
    pub async fn mark_feed_op_applied(&self, seq: i64, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE feed_ops SET applied_at_ms = $1 WHERE seq = $2")
            .bind(now_ms)
            .bind(seq)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Insert a run's feed operations in its commit transaction.
    pub(crate) async fn insert_feed_ops(
        conn: &mut sqlx::AnyConnection,
        run_id: &str,
        thwonk_id: &str,
        ops: &[FeedOp],
        now: i64,
    ) -> Result<()> {
        for op in ops {
            let (feed, kind, id, item) = match op {
                FeedOp::Publish { feed, id, item } => (feed, "publish", id, Some(item.as_str())),
                FeedOp::Retract { feed, id } => (feed, "retract", id, None),
            };
            sqlx::query(
                "INSERT INTO feed_ops (run_id, thwonk_id, feed, op, item_id, item, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(run_id)
            .bind(thwonk_id)
            .bind(feed)
            .bind(kind)
            .bind(id)
            .bind(item)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
