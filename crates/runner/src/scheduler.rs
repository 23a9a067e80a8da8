//! The scheduler: schedules (`export const schedule = "<cron>"`) are registered as tasks of
//! the Thoonk recurring model `schedules` (`thwonk_control::schedules`); this fires them.
//!
//! - Every runner re-syncs the model from SQL at start-up and every
//!   `schedules.sync_interval_ms`, and polls it every `schedules.poll_ms`.
//! - Taking a due task and moving it to its next tick is one compare-and-set script, so of
//!   several runners exactly one wins each tick. The winner queues an `inbound` job
//!   `schedule/{thwonk_id}/{tick_ms}` ([`ScheduleJob`]).
//! - The job is then handled like mail (`crate::handle`): under the thwonk's lease, after the
//!   thwonk's messages that arrived before the tick, then `onSchedule` in the sandbox, then
//!   one commit guarded on the tick (`schedule_ticks`), so a tick whose job is delivered
//!   twice commits once.

use crate::RunnerError;
use std::time::Duration;
use thwonk_control::jobs::ScheduleJob;
use thwonk_control::schedules::{SCHEDULES, split_task, sync};
use thwonk_core::cron::Cron;
use thwonk_core::time::now_ms;
use thwonk_store::Store;
use thwonk_thoonk::{JobQueue, Recurring, Redis};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
    // While Redis is away every poll fails: one line per 30 s.
    static FAILED: thwonk_core::report::Throttle =
        thwonk_core::report::Throttle::new(Duration::from_secs(30));
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
                Err(e) => {
                    if let Some(repeated) = FAILED.hit() {
                        warn!(error = %e, repeated, "cannot sync schedules; retrying")
                    }
                }
            }
        }
        match fire_due(&redis, &inbound, now_ms()).await {
            Ok(fired) => {
                for j in fired {
                    info!(thwonk = %j.thwonk_id, at_ms = j.at_ms, schedule = %j.schedule, "schedule tick queued");
                }
            }
            Err(e) => {
                if let Some(repeated) = FAILED.hit() {
                    warn!(error = %e, repeated, "cannot fire schedules; retrying")
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
