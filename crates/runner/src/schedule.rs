//! Schedules: a script's `export const schedule = "<cron>"` runs its `onSchedule` at every
//! tick, through the same path as mail (the thwonk's lease, one transaction, the budgets).
//!
//! - Registration: each scheduled thwonk is one task of the Thoonk recurring model
//!   `schedules`, named `{thwonk_id} {cron}` so that the task carries its own expression (a
//!   scheduler needs nothing else to compute the next tick) and a changed schedule is a
//!   different task. `deploy` registers at once when Redis is reachable; every runner
//!   re-syncs from SQL at start-up and every `schedules.sync_interval_ms`.
//! - Firing: every runner polls the model; taking a due task and moving it to its next tick
//!   is one compare-and-set script, so of several runners exactly one wins each tick. The
//!   winner queues an `inbound` job `schedule/{thwonk_id}/{tick_ms}`.
//! - Running: the job is handled like mail: under the thwonk's lease, after the thwonk's
//!   messages that arrived before the tick, then `onSchedule` in the sandbox, then one
//!   commit guarded on the tick (`schedule_ticks`), so a tick whose job is delivered twice
//!   commits once.

use crate::runner::{Runner, queue_outbound};
use crate::{RunnerError, execute, feeds};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;
use thwonk_core::cron::Cron;
use thwonk_core::run::ErrorKind;
use thwonk_core::status::ThwonkStatus;
use thwonk_core::time::now_ms;
use thwonk_store::{CommitResult, Store};
use thwonk_thoonk::{Job, JobQueue, Recurring, Redis};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// The recurring model that holds every thwonk's schedule.
pub const SCHEDULES: &str = "schedules";

/// The payload of an `inbound` job for a schedule tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleJob {
    pub thwonk_id: String,
    pub schedule: String,
    /// The tick (ms since the epoch, UTC).
    pub at_ms: i64,
}

impl ScheduleJob {
    /// A schedule job, or `None` for any other payload (mail).
    pub fn parse(payload: &str) -> Option<ScheduleJob> {
        serde_json::from_str(payload).ok()
    }

    pub fn job_id(&self) -> String {
        format!("schedule/{}/{}", self.thwonk_id, self.at_ms)
    }
}

fn task_name(thwonk_id: &str, cron: &str) -> String {
    format!("{thwonk_id} {cron}")
}

/// `(thwonk_id, cron)` of a task name.
fn split_task(task: &str) -> Option<(&str, &str)> {
    task.split_once(' ')
}

/// Register (or, with `None`, unregister) a thwonk's schedule, first due at its next tick
/// after now. An unchanged schedule keeps its pending tick.
pub async fn register(
    redis: &Redis,
    thwonk_id: &str,
    schedule: Option<&str>,
) -> Result<(), RunnerError> {
    let r = Recurring::new(redis, SCHEDULES);
    let wanted = schedule.map(|s| task_name(thwonk_id, s));
    let mut present = false;
    for t in r.tasks().await? {
        if split_task(&t.task).map(|(id, _)| id) == Some(thwonk_id) {
            if Some(&t.task) == wanted.as_ref() {
                present = true;
            } else {
                r.remove(&t.task).await?;
            }
        }
    }
    if let (Some(task), Some(expr), false) = (&wanted, schedule, present) {
        let cron = Cron::parse(expr).map_err(|e| RunnerError::Internal(e.to_string()))?;
        match cron.next_after(now_ms()) {
            Some(due) => r.add(task, due, None).await?,
            None => warn!(thwonk = %thwonk_id, schedule = %expr, "the schedule never fires"),
        }
    }
    Ok(())
}

/// Make the recurring model match SQL: every active thwonk's schedule registered, nothing
/// else. Returns how many schedules are registered.
pub async fn sync(store: &Store, redis: &Redis) -> Result<usize, RunnerError> {
    let schedules = store.schedules().await?;
    let wanted: HashSet<String> = schedules
        .iter()
        .map(|s| task_name(&s.thwonk_id, &s.schedule))
        .collect();
    let r = Recurring::new(redis, SCHEDULES);
    for t in r.tasks().await? {
        if !wanted.contains(&t.task) {
            r.remove(&t.task).await?;
        }
    }
    for s in &schedules {
        if let Err(e) = register(redis, &s.thwonk_id, Some(&s.schedule)).await {
            warn!(thwonk = %s.address, schedule = %s.schedule, error = %e, "cannot register schedule");
        }
    }
    Ok(schedules.len())
}

/// Fire every due tick at `now`: each tick won is queued as an `inbound` job. Returns the
/// ticks this scheduler won.
pub async fn fire_due(
    redis: &Redis,
    inbound: &JobQueue,
    now: i64,
) -> Result<Vec<ScheduleJob>, RunnerError> {
    let r = Recurring::new(redis, SCHEDULES);
    let mut fired = Vec::new();
    // The next tick after `now`, not after the due one: ticks missed while no runner ran
    // are skipped (one late run, not a burst of catch-up runs).
    while let Some(due) = r
        .take_due(now, |task, _| {
            let (_, expr) = split_task(task)?;
            Cron::parse(expr).ok()?.next_after(now)
        })
        .await?
    {
        let Some((thwonk_id, expr)) = split_task(&due.task) else {
            continue;
        };
        let job = ScheduleJob {
            thwonk_id: thwonk_id.to_string(),
            schedule: expr.to_string(),
            at_ms: due.due_ms,
        };
        let payload = serde_json::to_string(&job).expect("plain struct");
        inbound.publish(&job.job_id(), &payload).await?;
        fired.push(job);
    }
    Ok(fired)
}

/// The scheduler: sync from SQL now and every `sync_interval`, fire due ticks every `poll`.
pub async fn run_scheduler(
    store: Store,
    redis: Redis,
    poll: Duration,
    sync_interval: Duration,
    shutdown: CancellationToken,
) {
    let inbound = JobQueue::new(&redis, thwonk_thoonk::INBOUND);
    let mut last_sync: Option<tokio::time::Instant> = None;
    loop {
        if last_sync.is_none_or(|t| t.elapsed() >= sync_interval) {
            match sync(&store, &redis).await {
                Ok(n) => {
                    if last_sync.is_none() {
                        info!(schedules = n, "schedules registered");
                    }
                    last_sync = Some(tokio::time::Instant::now());
                }
                Err(e) => warn!(error = %e, "cannot sync schedules; retrying"),
            }
        }
        match fire_due(&redis, &inbound, now_ms()).await {
            Ok(fired) => {
                for j in fired {
                    info!(thwonk = %j.thwonk_id, at_ms = j.at_ms, schedule = %j.schedule, "schedule tick queued");
                }
            }
            Err(e) => warn!(error = %e, "cannot fire schedules; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

impl Runner {
    /// One schedule tick's job: under the thwonk's lease, the messages that arrived before the
    /// tick first, then `onSchedule`, committed once per tick.
    pub(crate) async fn handle_schedule(
        &self,
        inbound: &JobQueue,
        outbound: &JobQueue,
        job: &Job,
        tick: &ScheduleJob,
        owner: &str,
    ) -> Result<(), RunnerError> {
        let Some(thwonk) = self.store.thwonk(&tick.thwonk_id).await? else {
            inbound.finish(&job.id, Some("no such thwonk")).await?;
            return Ok(());
        };
        if thwonk.status != ThwonkStatus::Active
            || self.store.schedule_tick_ran(&thwonk.id, tick.at_ms).await?
        {
            inbound.finish(&job.id, Some("nothing to run")).await?;
            return Ok(());
        }
        if !self.lease_or_defer(inbound, job, &thwonk.id, owner).await? {
            return Ok(());
        }
        let ran = self.run_tick(&thwonk, tick, owner, outbound).await;
        if let Err(e) = self.store.release_lease(&thwonk.id, owner).await {
            warn!(thwonk = %thwonk.id, error = %e, "could not release lease; it expires by itself");
        }
        ran?;
        inbound.finish(&job.id, Some("processed")).await?;
        Ok(())
    }

    async fn run_tick(
        &self,
        thwonk: &thwonk_store::Thwonk,
        tick: &ScheduleJob,
        owner: &str,
        outbound: &JobQueue,
    ) -> Result<(), RunnerError> {
        // Mail that arrived before the tick is part of the day the tick closes.
        if let Some(before) = self
            .store
            .last_queued_message_at(&thwonk.id, tick.at_ms)
            .await?
        {
            // Only up to `before`: mail after the tick belongs after the tick's run.
            self.drain_until(&thwonk.id, &before, owner, outbound, false)
                .await?;
        }
        let span = info_span!("run", thwonk = %thwonk.address, schedule = %tick.schedule, at_ms = tick.at_ms, run = tracing::field::Empty);
        let commit = execute::execute_schedule(
            &self.store,
            &self.pool,
            &self.config.limits,
            thwonk,
            &tick.schedule,
            tick.at_ms,
        )
        .instrument(span.clone())
        .await?;
        if commit.run.error_kind == Some(ErrorKind::Internal) {
            return Err(RunnerError::Internal(
                commit.run.error_message.unwrap_or_default(),
            ));
        }
        let committed = self.store.commit_run(&commit).await;
        if committed.is_err() {
            thwonk_core::metrics::RUN_COMMIT_FAILURES.inc(&[]);
        }
        match committed? {
            CommitResult::Committed => {
                crate::metrics::record_run(&commit.run);
                span.in_scope(|| {
                    info!(
                        run = %commit.run.id,
                        status = %commit.run.status,
                        error = commit.run.error_message.as_deref().unwrap_or(""),
                        sends = commit.outbox.len(),
                        "schedule run committed"
                    )
                });
                for row in &commit.outbox {
                    queue_outbound(outbound, &row.id).await;
                }
                feeds::apply_after_commit(&self.store, &self.redis, &thwonk.id).await;
            }
            CommitResult::AlreadyProcessed => {
                span.in_scope(|| info!(run = %commit.run.id, "tick already ran; run dropped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_jobs_are_told_apart_from_mail_jobs() {
        let j = ScheduleJob {
            thwonk_id: "t1".into(),
            schedule: "0 0 * * *".into(),
            at_ms: 86_400_000,
        };
        let payload = serde_json::to_string(&j).unwrap();
        assert_eq!(ScheduleJob::parse(&payload), Some(j.clone()));
        assert_eq!(j.job_id(), "schedule/t1/86400000");
        assert_eq!(
            ScheduleJob::parse(r#"{"message_id":"m1","thwonk_id":"t1"}"#),
            None
        );
        assert_eq!(
            split_task(&task_name("t1", "*/5 * * * *")),
            Some(("t1", "*/5 * * * *"))
        );
    }
}
