//! The automatic replies a thwonk sent lately (RFC 3834 section 2: not the same response to
//! the same sender more than once in a period). A reply is its key
//! ([`thwonk_core::run::reply_key`]): the correspondent, `/`, a fingerprint of the answer. The
//! runner asks before a message's run which replies the message's envelope sender got lately,
//! and records those a committed run sent.

use crate::{Result, Store};

impl Store {
    /// The reply keys the thwonk sent `correspondent` (lower case) at or after `since_ms`.
    pub async fn auto_replies_since(
        &self,
        thwonk_id: &str,
        correspondent: &str,
        since_ms: i64,
    ) -> Result<Vec<String>> {
        let prefix = format!("{correspondent}/");
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT reply_key FROM auto_replies \
             WHERE thwonk_id = $1 AND correspondent = $2 AND replied_at_ms >= $3 \
             ORDER BY reply_key",
        )
        .bind(thwonk_id)
        .bind(correspondent)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys
            .into_iter()
            .filter(|k| k.starts_with(&prefix))
            .collect())
    }

    /// Record that the thwonk sent each of the replies `keys` at `at_ms`.
    pub async fn record_auto_replies(
        &self,
        thwonk_id: &str,
        keys: &[String],
        at_ms: i64,
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for key in keys {
            let correspondent = key.rsplit_once('/').map_or(key.as_str(), |(c, _)| c);
            sqlx::query(
                "INSERT INTO auto_replies (thwonk_id, correspondent, reply_key, replied_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (thwonk_id, reply_key) \
                 DO UPDATE SET replied_at_ms = excluded.replied_at_ms",
            )
            .bind(thwonk_id)
            .bind(correspondent)
            .bind(key)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
