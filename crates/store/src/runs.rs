//! Committing a run, exactly once, and reading run records.
//!
//! The guard is one conditional `UPDATE` on the message (`... AND status = 'queued'`), run
//! first in the transaction: on PostgreSQL it takes the message's row lock, so a second commit
//! of the same message waits, then sees `processed` and matches nothing; on SQLite the whole
//! transaction holds the write lock (`BEGIN IMMEDIATE`). Zero rows matched means another run
//! got there first, and the transaction is rolled back before anything else is written.
//! Runs with no message (HTTP requests) are guarded on their id instead: the insert of the
//! run record does nothing when that id committed before (`ON CONFLICT DO NOTHING`; on
//! PostgreSQL a concurrent second insert waits on the first's key and then does nothing).

use thwonk_core::run::{ErrorKind, RunStatus, VfsOp};
use thwonk_core::status::MessageStatus;
use thwonk_core::time::now_ms;

use crate::rows::{self, run_columns};
use crate::{Budget, CommitResult, OverBudget, Result, RunCommit, RunRecord, Store};

impl Store {
    /// Commit a run: for a message run, the message's status (`processed` when the run is
    /// `ok`, else `failed`) guarded on it being `queued`; the run record; and, when the run
    /// succeeded, its VFS changes (in order), outbox rows (`queued`, due now) and feed
    /// operations (pending); each outbox row with its recipients (`outbox_recipients`, `queued`).
    /// For a schedule run, the tick, guarded on not having run. One
    /// transaction (SQLite: `BEGIN IMMEDIATE`).
    ///
    /// `AlreadyProcessed` (nothing written) when the message is not `queued`, including when
    /// it no longer exists (the ingress deleted it): either way the job has nothing to do.
    /// `AlreadyProcessed` too for a schedule tick that already committed, for a job result
    /// another run took, and for a run whose
    /// id already committed (a request run's id is its job's id, so a request job delivered
    /// twice commits once).
    pub async fn commit_run(&self, commit: &RunCommit) -> Result<CommitResult> {
        Ok(self
            .commit_run_within(commit, &[])
            .await?
            .expect("no budgets, none exceeded"))
    }

    /// [`Store::commit_run`], checked against sending `budgets` (the runner's commit): the
    /// run is counted (a run in its thwonk's minute; when it succeeded, its messages and
    /// recipients in every window of `budgets`) in the same transaction, after the guards.
    /// `Err(OverBudget)` when its sends would go past one: then nothing was written, and the
    /// caller commits the run again as failed, without its effects.
    pub async fn commit_run_within(
        &self,
        commit: &RunCommit,
        budgets: &[Budget],
    ) -> Result<std::result::Result<CommitResult, OverBudget>> {
        let run = &commit.run;
        let ok = run.status == RunStatus::Ok;
        let now = now_ms();
        let mut tx = self.begin_write().await?;

        if let Some(message_id) = &run.message_id {
            let marked = sqlx::query(
                "UPDATE messages SET status = $1, run_id = $2, processed_at_ms = $3 \
                 WHERE id = $4 AND status = 'queued'",
            )
            .bind(
                if ok {
                    MessageStatus::Processed
                } else {
                    MessageStatus::Failed
                }
                .as_str(),
            )
            .bind(&run.id)
            .bind(now)
            .bind(message_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if marked == 0 {
                tracing::debug!(
                    run_id = %run.id,
                    message_id = %message_id,
                    "message is no longer queued; run not committed"
                );
                tx.rollback().await?;
                return Ok(Ok(CommitResult::AlreadyProcessed));
            }
        }

        // A run id that already committed (a request run's id is its job's id, so a job
        // delivered twice brings the same id twice) inserts nothing: that is the guard.
        let inserted = sqlx::query(concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&run.id)
        .bind(&run.thwonk_id)
        .bind(run.message_id.as_deref())
        .bind(run.trigger.as_str())
        .bind(run.script_version)
        .bind(run.status.as_str())
        .bind(run.error_kind.map(ErrorKind::as_str))
        .bind(run.error_message.as_deref())
        .bind(run.error_stack.as_deref())
        .bind(rows::to_json(&run.logs)?)
        .bind(rows::flag(run.logs_truncated))
        .bind(run.instructions)
        .bind(run.wall_ms)
        .bind(run.started_at_ms)
        .bind(run.finished_at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tracing::debug!(run_id = %run.id, "run already committed; not committed again");
            tx.rollback().await?;
            return Ok(Ok(CommitResult::AlreadyProcessed));
        }

        if let Some(at_ms) = commit.schedule_tick_ms
            && !Self::insert_schedule_tick(&mut tx, &run.thwonk_id, at_ms, &run.id).await?
        {
            tracing::debug!(run_id = %run.id, at_ms, "schedule tick already ran; run not committed");
            tx.rollback().await?;
            return Ok(Ok(CommitResult::AlreadyProcessed));
        }

        if let Some(job_id) = &commit.jobs.result_of
            && !Self::take_job_result(&mut tx, job_id, &run.thwonk_id, &run.id, now).await?
        {
            tracing::debug!(run_id = %run.id, job_id = %job_id, "job result already taken; run not committed");
            tx.rollback().await?;
            return Ok(Ok(CommitResult::AlreadyProcessed));
        }

        if !budgets.is_empty()
            && let Some(over) =
                Self::count_budgets(&mut tx, &run.thwonk_id, &commit.outbox, ok, budgets, now)
                    .await?
        {
            tracing::debug!(run_id = %run.id, budget = over.name, "over a sending budget; run not committed");
            tx.rollback().await?;
            return Ok(Err(over));
        }

        if ok {
            for op in &commit.vfs {
                match op {
                    VfsOp::Write { path, content } => {
                        Self::upsert_file(&mut tx, &run.thwonk_id, path, content.as_bytes(), now)
                            .await?;
                    }
                    VfsOp::Delete { path } => {
                        Self::remove_file(&mut tx, &run.thwonk_id, path).await?;
                    }
                }
            }
            for mail in &commit.outbox {
                Self::insert_outbox(&mut tx, &run.id, &run.thwonk_id, mail, now).await?;
            }
            Self::insert_feed_ops(&mut tx, &run.id, &run.thwonk_id, &commit.feed_ops, now).await?;
            Self::insert_script_jobs(&mut tx, &run.id, &run.thwonk_id, &commit.jobs.publish, now)
                .await?;
        }

        tx.commit().await?;
        Ok(Ok(CommitResult::Committed))
    }

    /// Recent runs of a thwonk, newest first.
    pub async fn list_runs(&self, thwonk_id: &str, limit: i64) -> Result<Vec<RunRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE thwonk_id = $1 ORDER BY started_at_ms DESC, id DESC LIMIT $2"
        ))
        .bind(thwonk_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::run)
        .collect()
    }

    /// One run record.
    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(rows::run)
        .transpose()
    }
}
