//! Jobs that scripts publish for workers in any language, and the way their results come back.
//!
//! `thwonk.jobs(NAME).publish(payload)` in a script is a job on the Thoonk job queue
//! `ADDRESS/NAME` (`list@example.org/reports`): the thwonk's address always comes first, so a
//! script reaches only its own thwonk's queues, never Thwonk's own (`inbound`, `outbound`,
//! which have no `/`). A run's jobs are committed with it in SQL (a failed run publishes
//! nothing) and pushed to Redis after the commit; jobs left unpublished (Redis was away) are
//! pushed by the retry pass. Publishing is idempotent by id while the job exists.
//!
//! A worker takes the job and finishes it with a result (the Thoonk finish, see
//! docs/thoonk.md), or the job becomes a dead letter (stalled). Every runner follows the
//! `finish` and `stall` events of all queues; for a script job whose result no run has taken
//! yet it queues an `inbound` job ([`JobResultJob`], id `job-result/{job_id}`) that runs the
//! script's `onJobResult` like any other trigger, once (the commit is guarded on the job's
//! row). A sweep finds the endings whose event no runner heard (every runner down, Redis
//! reconnecting): a finish with a reply is read from the reply list; without one the result
//! is lost and the script hears an `error`.

use crate::ControlError;
use crate::jobs::JobResultJob;
use thwonk_core::run::JobPublish;
use thwonk_core::time::now_ms;
use thwonk_store::{NewScriptJob, ScriptJob, Store, Thwonk};
use thwonk_thoonk::{Event, INBOUND, JobQueue, Redis};
use tracing::warn;

/// Jobs handled per round trip to the store.
const BATCH: i64 = 100;

/// What a script hears when a job ended while no runner listened and left no reply.
pub const LOST_RESULT: &str = "the job ended while no runner was listening and left no reply: \
                               its result is lost (finish with a reply to keep it)";

/// The Thoonk job queue behind a script's `thwonk.jobs(queue)`.
pub fn thoonk_queue_name(thwonk: &Thwonk, queue: &str) -> String {
    format!("{}/{queue}", thwonk.address)
}

/// A run's job publishes, as the commit records them.
pub fn new_script_jobs(thwonk: &Thwonk, jobs: &[JobPublish]) -> Vec<NewScriptJob> {
    jobs.iter()
        .map(|j| NewScriptJob {
            id: j.id.clone(),
            queue: j.queue.clone(),
            thoonk_queue: thoonk_queue_name(thwonk, &j.queue),
            payload: j.payload.clone(),
        })
        .collect()
}

async fn publish_one(
    store: &Store,
    redis: &Redis,
    id: &str,
    thoonk_queue: &str,
    payload: &str,
) -> Result<(), ControlError> {
    JobQueue::new(redis, thoonk_queue)
        .publish(id, payload)
        .await?;
    store.mark_script_job_published(id, now_ms()).await?;
    Ok(())
}

/// Push a committed run's jobs to their queues. A failure is logged, not returned: the run is
/// committed and its jobs wait, unpublished, for the retry pass.
pub async fn publish_after_commit(store: &Store, redis: &Redis, jobs: &[NewScriptJob]) {
    for job in jobs {
        if let Err(e) = publish_one(store, redis, &job.id, &job.thoonk_queue, &job.payload).await {
            warn!(job = %job.id, queue = %job.thoonk_queue, error = %e,
                "script job stays unpublished; retried later");
            return;
        }
    }
}

/// Push the jobs committed before `older_than_ms` that are still unpublished. Returns how
/// many were pushed.
pub async fn publish_unpublished(
    store: &Store,
    redis: &Redis,
    older_than_ms: i64,
) -> Result<usize, ControlError> {
    let mut done = 0;
    loop {
        let jobs = store.unpublished_script_jobs(older_than_ms, BATCH).await?;
        if jobs.is_empty() {
            return Ok(done);
        }
        for j in jobs {
            publish_one(store, redis, &j.id, &j.thoonk_queue, &j.payload).await?;
            done += 1;
        }
    }
}

/// The result job for a `finish` or `stall` event, when the event is about a script job
/// whose result no run has taken yet.
pub async fn result_for_event(
    store: &Store,
    redis: &Redis,
    event: &Event,
) -> Result<Option<JobResultJob>, ControlError> {
    let finished = match (event.model.as_str(), event.kind.as_str()) {
        ("job", "finish") => true,
        ("job", "stall") => false,
        _ => return Ok(None),
    };
    // Thwonk's own queues have no `/`: their ids are not script jobs.
    if !event.name.contains('/') {
        return Ok(None);
    }
    let Some(job) = store.script_job(&event.id).await? else {
        return Ok(None);
    };
    if job.thoonk_queue != event.name || job.result_run_id.is_some() {
        return Ok(None);
    }
    Ok(Some(if finished {
        finished_result(&job, event.data.clone())
    } else {
        let ending = JobQueue::new(redis, &job.thoonk_queue)
            .ending(&job.id)
            .await?;
        stalled_result(&job, ending.error)
    }))
}

fn finished_result(job: &ScriptJob, result: Option<String>) -> JobResultJob {
    JobResultJob {
        job_id: job.id.clone(),
        thwonk_id: job.thwonk_id.clone(),
        queue: job.queue.clone(),
        status: "ok".into(),
        result,
        error: None,
        at_ms: now_ms(),
    }
}

fn stalled_result(job: &ScriptJob, error: Option<String>) -> JobResultJob {
    JobResultJob {
        status: "error".into(),
        result: None,
        error: Some(error.unwrap_or_else(|| "the job became a dead letter".into())),
        ..finished_result(job, None)
    }
}

/// Queue the `inbound` job that runs `onJobResult` (idempotent while it is queued).
pub async fn queue_result(redis: &Redis, result: &JobResultJob) -> Result<(), ControlError> {
    let payload = serde_json::to_string(result).unwrap_or_default();
    JobQueue::new(redis, INBOUND)
        .publish(&result.job_id(), &payload)
        .await?;
    Ok(())
}

/// One sweep: script jobs published before `older_than_ms` with no result taken whose ending
/// no runner heard. Returns how many results it queued.
pub async fn sweep_once(
    store: &Store,
    redis: &Redis,
    older_than_ms: i64,
) -> Result<usize, ControlError> {
    let inbound = JobQueue::new(redis, INBOUND);
    let mut queued = 0;
    for job in store.open_script_jobs(older_than_ms, BATCH * 10).await? {
        let pending = format!("job-result/{}", job.id);
        if inbound.contains(&pending).await? {
            continue;
        }
        let queue = JobQueue::new(redis, &job.thoonk_queue);
        let ending = queue.ending(&job.id).await?;
        let result = if ending.stalled {
            stalled_result(&job, ending.error)
        } else if queue.contains(&job.id).await? {
            continue; // still queued or being worked on
        } else if let Some(reply) = ending.reply {
            finished_result(&job, Some(reply))
        } else {
            // Re-read: a result taken since the list was read is not lost.
            match store.script_job(&job.id).await? {
                Some(j) if j.result_run_id.is_none() => {}
                _ => continue,
            }
            JobResultJob {
                error: Some(LOST_RESULT.into()),
                ..stalled_result(&job, None)
            }
        };
        queue_result(redis, &result).await?;
        queued += 1;
    }
    Ok(queued)
}
