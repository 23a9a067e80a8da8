//! Outgoing mail and its delivery state. Rows are born `queued` in `commit_run`; egress moves
//! each to `sent` (the remote answered 250) or `failed` (permanent failure or retries
//! exhausted), recording every failed attempt on the way. Only `queued` rows move, so a
//! delivery job that runs twice cannot undo the first one's outcome.
//!
//! Egress records its attempts with `record_attempt` (module `deliveries`), which also moves
//! the per-recipient state; the row-only `mark_outbox_*` methods here leave the recipients as
//! they are (for tools and tests that settle a row by hand).

use sqlx::Row;

use crate::rows::{self, outbox_columns};
use crate::{OutboxRow, Result, Store, StoreError};

impl Store {
    pub async fn outbox(&self, id: &str) -> Result<Option<OutboxRow>> {
        sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::outbox)
        .transpose()
    }

    /// Mark delivered (only a `queued` row); false if it was not `queued`.
    pub async fn mark_outbox_sent(&self, id: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at_ms = $1 WHERE id = $2 AND status = 'queued'",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Record a failed attempt: `attempts += 1`, the error, and when to try again. A row that
    /// is no longer `queued` is left as it is; `NotFound` if there is no such row.
    pub async fn mark_outbox_retry(
        &self,
        id: &str,
        error: &str,
        next_attempt_at_ms: i64,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at_ms = $2 \
             WHERE id = $3 AND status = 'queued'",
        )
        .bind(error)
        .bind(next_attempt_at_ms)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.outbox_must_exist(id, done).await
    }

    /// Give up on a row: status `failed`, `attempts += 1`, with the error (the remote reply).
    /// A row that is no longer `queued` is left as it is; `NotFound` if there is no such row.
    pub async fn mark_outbox_failed(&self, id: &str, error: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1 \
             WHERE id = $2 AND status = 'queued'",
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.outbox_must_exist(id, done).await
    }

    /// Claim a `queued`, due row for one delivery attempt: its `next_attempt_at_ms` moves to
    /// `until_ms`, so that no other taker delivers it meanwhile (one handed the same row by a
    /// job the reconciler queued again after Redis lost the first, say). False if the row is
    /// not `queued`, or not due (another taker holds it). A taker that dies holding a claim
    /// leaves the row due again at `until_ms`.
    pub async fn claim_outbox(&self, id: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET next_attempt_at_ms = $1 \
             WHERE id = $2 AND status = 'queued' AND next_attempt_at_ms <= $3",
        )
        .bind(until_ms)
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Ids of every `queued` row, soonest due first: what the reconciler re-queues after Redis
    /// lost its jobs.
    pub async fn queued_outbox_ids(&self) -> Result<Vec<String>> {
        let found = sqlx::query(
            "SELECT id FROM outbox WHERE status = 'queued' ORDER BY next_attempt_at_ms, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(found
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?)
    }

    async fn outbox_must_exist(&self, id: &str, updated: u64) -> Result<()> {
        if updated == 0 && self.outbox(id).await?.is_none() {
            return Err(StoreError::NotFound(format!("outbox row {id}")));
        }
        Ok(())
    }
}
