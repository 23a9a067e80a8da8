//! Jobs that scripts publish for workers, committed with their run, and the guard that a
//! job's result is taken by one `onJobResult` run.
//!
//! As with feed operations, SQL is the system of record: a run's jobs are rows written in its
//! commit transaction (a failed run writes none), pushed to Redis after the commit and marked
//! published; rows still unpublished (Redis was away) are pushed later by a retry pass.

use sqlx::Row;

use crate::{Result, Store};

/// A job a run publishes, as the commit records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScriptJob {
    /// `{run_id}.j{n}`: the Thoonk job id.
    pub id: String,
    /// The script's name for the queue (`reports`).
    pub queue: String,
    /// The Thoonk job queue (`ADDRESS/QUEUE`).
    pub thoonk_queue: String,
    pub payload: String,
}

/// A run's job side: what it publishes, and (for an `onJobResult` run) whose result it takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunJobs {
    /// Recorded only when the run is `Ok`.
    pub publish: Vec<NewScriptJob>,
    /// For an `onJobResult` run, the job whose result it ran for: the run commits only if no
    /// run took that result before.
    pub result_of: Option<String>,
}

/// A committed script job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptJob {
    pub id: String,
    pub run_id: String,
    pub thwonk_id: String,
    pub queue: String,
    pub thoonk_queue: String,
    pub payload: String,
    pub created_at_ms: i64,
    pub published_at_ms: Option<i64>,
    /// The `onJobResult` run that took its result.
    pub result_run_id: Option<String>,
}

macro_rules! columns {
    () => {
        "id, run_id, thwonk_id, queue, thoonk_queue, payload, created_at_ms, published_at_ms, \
         result_run_id"
    };
}

fn script_job(row: &sqlx::any::AnyRow) -> Result<ScriptJob> {
    Ok(ScriptJob {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        thwonk_id: row.try_get("thwonk_id")?,
        queue: row.try_get("queue")?,
        thoonk_queue: row.try_get("thoonk_queue")?,
        payload: row.try_get("payload")?,
        created_at_ms: row.try_get("created_at_ms")?,
        published_at_ms: row.try_get("published_at_ms")?,
        result_run_id: row.try_get("result_run_id")?,
    })
}

impl Store {
    /// One script job.
    pub async fn script_job(&self, id: &str) -> Result<Option<ScriptJob>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM script_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(script_job)
        .transpose()
    }

    /// Jobs committed before `older_than_ms` and not yet pushed to Redis, oldest first (the
    /// retry pass leaves fresh ones to the runner that committed them).
    pub async fn unpublished_script_jobs(
        &self,
        older_than_ms: i64,
        limit: i64,
    ) -> Result<Vec<ScriptJob>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM script_jobs WHERE published_at_ms IS NULL \
             AND created_at_ms < $1 ORDER BY created_at_ms, id LIMIT $2"
        ))
        .bind(older_than_ms)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(script_job)
        .collect()
    }

    /// Jobs pushed to Redis before `published_before_ms` whose result no run has taken yet,
    /// oldest first: the sweep looks for results whose event was missed.
    pub async fn open_script_jobs(
        &self,
        published_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<ScriptJob>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM script_jobs WHERE result_run_id IS NULL \
             AND published_at_ms IS NOT NULL AND published_at_ms < $1 \
             ORDER BY created_at_ms, id LIMIT $2"
        ))
        .bind(published_before_ms)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(script_job)
        .collect()
    }

    /// Mark a script job pushed to Redis.
    pub async fn mark_script_job_published(&self, id: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE script_jobs SET published_at_ms = $1 WHERE id = $2 AND published_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Insert a run's jobs in its commit transaction.
    pub(crate) async fn insert_script_jobs(
        conn: &mut sqlx::AnyConnection,
        run_id: &str,
        thwonk_id: &str,
        jobs: &[NewScriptJob],
        now: i64,
    ) -> Result<()> {
        for job in jobs {
            sqlx::query(
                "INSERT INTO script_jobs (id, run_id, thwonk_id, queue, thoonk_queue, payload, \
                 created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&job.id)
            .bind(run_id)
            .bind(thwonk_id)
            .bind(&job.queue)
            .bind(&job.thoonk_queue)
            .bind(&job.payload)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// In a commit transaction: the job's result is taken by run `run_id` of `thwonk_id`.
    /// `false` when another run took it first (or the job is not this thwonk's).
    pub(crate) async fn take_job_result(
        conn: &mut sqlx::AnyConnection,
        job_id: &str,
        thwonk_id: &str,
        run_id: &str,
        now: i64,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE script_jobs SET result_run_id = $1, result_at_ms = $2 \
             WHERE id = $3 AND thwonk_id = $4 AND result_run_id IS NULL",
        )
        .bind(run_id)
        .bind(now)
        .bind(job_id)
        .bind(thwonk_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }
}
