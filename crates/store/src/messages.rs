//! Incoming mail as the ingress stored it. A message is `queued` until a run commits it
//! (`processed` or `failed`, see `runs`); `seq` is the arrival order the runner follows.

use thwonk_core::ids::new_id;
use thwonk_core::status::MessageStatus;

use crate::rows::{self, message_columns};
use crate::{NewMessage, Result, Store, StoredMessage};

/// A queued message's place, for the reconciler that re-queues jobs Redis lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessageRef {
    pub id: String,
    pub thwonk_id: String,
    pub seq: i64,
}

/// Where a message stands, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    pub thwonk_id: String,
    pub status: MessageStatus,
}

impl Store {
    /// Store messages (one per thwonk of a delivery) in one transaction; returns their ids in
    /// order. Each gets a new id and status `queued`.
    pub async fn insert_messages(&self, messages: &[NewMessage]) -> Result<Vec<String>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let id = new_id();
            sqlx::query(
                "INSERT INTO messages \
                 (id, thwonk_id, mail_from, rcpt_to, raw, size, received_at_ms, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued')",
            )
            .bind(&id)
            .bind(&m.thwonk_id)
            .bind(&m.mail_from)
            .bind(rows::to_json(&m.rcpt_to)?)
            .bind(&m.raw[..])
            .bind(m.raw.len() as i64)
            .bind(m.received_at_ms)
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Remove messages that were stored but could not be queued (the ingress answers 451 and
    /// the client retries, so keeping them would process the mail twice). Only `queued`
    /// messages are removed.
    pub async fn delete_queued_messages(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query("DELETE FROM messages WHERE id = $1 AND status = 'queued'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn message(&self, id: &str) -> Result<Option<StoredMessage>> {
        sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::message)
        .transpose()
    }

    /// A message's envelope sender and its first `max_bytes` bytes (enough for its header
    /// block), without reading the rest: what a run listing shows of the message it handled.
    pub async fn message_head(
        &self,
        id: &str,
        max_bytes: u32,
    ) -> Result<Option<(String, Vec<u8>)>> {
        use sqlx::Row;
        // substr on a BLOB (SQLite) and on bytea (PostgreSQL) counts bytes.
        let max = i32::try_from(max_bytes).unwrap_or(i32::MAX);
        let found =
            sqlx::query("SELECT mail_from, substr(raw, 1, $2) AS head FROM messages WHERE id = $1")
                .bind(id)
                .bind(max)
                .fetch_optional(&self.pool)
                .await?;
        found
            .map(|row| Ok((row.try_get("mail_from")?, row.try_get("head")?)))
            .transpose()
    }

    /// A message's thwonk and status, without its bytes: what a runner needs to decide whether
    /// a job still has work (the run itself then reads the message once).
    pub async fn message_state(&self, id: &str) -> Result<Option<MessageState>> {
        use sqlx::Row;
        let found = sqlx::query("SELECT thwonk_id, status FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        found
            .map(|row| {
                Ok(MessageState {
                    thwonk_id: row.try_get("thwonk_id")?,
                    status: rows::word(&row, "status", "messages", MessageStatus::parse)?,
                })
            })
            .transpose()
    }

    /// The oldest `queued` message of a thwonk (by `seq`).
    pub async fn next_queued_message(&self, thwonk_id: &str) -> Result<Option<StoredMessage>> {
        sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE thwonk_id = $1 AND status = 'queued' ORDER BY seq LIMIT 1"
        ))
        .bind(thwonk_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::message)
        .transpose()
    }

    /// Every `queued` message (without its bytes), oldest first: what the reconciler re-queues
    /// after Redis lost its jobs.
    pub async fn queued_messages(&self) -> Result<Vec<QueuedMessageRef>> {
        use sqlx::Row;
        let found = sqlx::query(
            "SELECT id, thwonk_id, seq FROM messages WHERE status = 'queued' ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(QueuedMessageRef {
                    id: row.try_get("id")?,
                    thwonk_id: row.try_get("thwonk_id")?,
                    seq: row.try_get("seq")?,
                })
            })
            .collect()
    }
}
