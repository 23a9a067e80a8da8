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
    /// order. Each gets a new id and status `queued`. Messages with the same bytes (the same
    /// `Arc`, or equal content) share one stored body: a delivery to ten thwonks is stored
    /// once, not ten times.
    pub async fn insert_messages(&self, messages: &[NewMessage]) -> Result<Vec<String>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(messages.len());
        // (the bytes, their body id) of the bodies stored so far by this call.
        let mut bodies: Vec<(&[u8], String)> = Vec::new();
        for m in messages {
            let raw: &[u8] = m.raw.as_slice();
            let known = bodies
                .iter()
                .find(|(b, _)| std::ptr::eq(*b, raw) || *b == raw)
                .map(|(_, id)| id.clone());
            let body_id = match known {
                Some(id) => id,
                None => {
                    let id = new_id();
                    sqlx::query(
                        "INSERT INTO message_bodies (id, raw, size, created_at_ms) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&id)
                    .bind(raw)
                    .bind(raw.len() as i64)
                    .bind(m.received_at_ms)
                    .execute(&mut *tx)
                    .await?;
                    bodies.push((raw, id.clone()));
                    id
                }
            };
            let id = new_id();
            sqlx::query(
                "INSERT INTO messages \
                 (id, thwonk_id, mail_from, rcpt_to, body_id, size, received_at_ms, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued')",
            )
            .bind(&id)
            .bind(&m.thwonk_id)
            .bind(&m.mail_from)
            .bind(rows::to_json(&m.rcpt_to)?)
            .bind(&body_id)
            .bind(raw.len() as i64)
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
    /// messages are removed, with the bodies no other message uses.
    pub async fn delete_queued_messages(&self, ids: &[String]) -> Result<()> {
        use sqlx::Row;
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let mut bodies = Vec::new();
        for id in ids {
            let gone = sqlx::query(
                "DELETE FROM messages WHERE id = $1 AND status = 'queued' RETURNING body_id",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = gone {
                bodies.push(row.try_get::<String, _>("body_id")?);
            }
        }
        delete_unused_bodies(&mut tx, &bodies).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Bytes and rows of stored message bodies: `(bodies, total bytes)`. What an operator
    /// (and the tests) look at to see that a delivery is stored once.
    pub async fn message_body_usage(&self) -> Result<(i64, i64)> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
             FROM message_bodies",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("bytes")?))
    }

    pub async fn message(&self, id: &str) -> Result<Option<StoredMessage>> {
        sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m JOIN message_bodies b ON b.id = m.body_id WHERE m.id = $1"
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
        let found = sqlx::query(
            "SELECT m.mail_from, substr(b.raw, 1, $2) AS head \
                 FROM messages m JOIN message_bodies b ON b.id = m.body_id WHERE m.id = $1",
        )
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
            " FROM messages m JOIN message_bodies b ON b.id = m.body_id \
             WHERE m.thwonk_id = $1 AND m.status = 'queued' ORDER BY m.seq LIMIT 1"
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

/// Delete those of `bodies` that no message refers to any more (in the transaction that
/// deleted their messages).
pub(crate) async fn delete_unused_bodies(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    bodies: &[String],
) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for id in bodies.iter().filter(|id| seen.insert(id.as_str())) {
        sqlx::query(
            "DELETE FROM message_bodies WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE body_id = $1)",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
