//! Outgoing mail and its delivery state. Rows are born `queued` in `commit_run`; egress moves
//! each to `sent` (the remote answered 250) or `failed` (permanent failure or retries
//! exhausted), recording every failed attempt on the way, with `record_attempt` (module
//! `deliveries`), which also moves the per-recipient state. Only `queued` rows move, so a
//! delivery job that runs twice cannot undo the first one's outcome. Here: reading a row,
//! claiming it for one attempt, and listing the rows still to deliver.

use sqlx::Row;

use crate::rows::{self, outbox_columns};
use crate::{OutboxRow, Result, Store};

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
}
