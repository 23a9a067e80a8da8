//! When a thwonk last auto-replied to a correspondent (RFC 3834 section 2: at most one
//! automatic answer per correspondent in a while). The runner asks before a message's run
//! whether the message's envelope sender was answered recently, and records each reply a
//! committed run made.

use crate::{Result, Store};

impl Store {
    /// Whether the thwonk auto-replied to `correspondent` (lower case) at or after `since_ms`.
    pub async fn auto_replied_since(
        &self,
        thwonk_id: &str,
        correspondent: &str,
        since_ms: i64,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM auto_replies \
             WHERE thwonk_id = $1 AND correspondent = $2 AND replied_at_ms >= $3",
        )
        .bind(thwonk_id)
        .bind(correspondent)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Record that the thwonk auto-replied to each of `correspondents` (lower case) at `at_ms`.
    pub async fn record_auto_replies(
        &self,
        thwonk_id: &str,
        correspondents: &[String],
        at_ms: i64,
    ) -> Result<()> {
        if correspondents.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for c in correspondents {
            sqlx::query(
                "INSERT INTO auto_replies (thwonk_id, correspondent, replied_at_ms) \
                 VALUES ($1, $2, $3) ON CONFLICT (thwonk_id, correspondent) \
                 DO UPDATE SET replied_at_ms = excluded.replied_at_ms",
            )
            .bind(thwonk_id)
            .bind(c)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
