//! Schedule registration: a script's `export const schedule = "<cron>"` is one task of the
//! Thoonk recurring model [`SCHEDULES`], named `{thwonk_id} {cron}` so that the task carries
//! its own expression (a scheduler needs nothing else to compute the next tick) and a changed
//! schedule is a different task.
//!
//! Deploy, enable/disable and delete register at once when Redis is reachable ([`register`]);
//! every runner re-syncs from SQL at start-up and every `schedules.sync_interval_ms`
//! ([`sync`]). Firing the ticks is the runner's (`thwonk_runner::scheduler`).

use crate::ControlError;
use std::collections::HashSet;
use thwonk_core::cron::Cron;
use thwonk_core::time::now_ms;
use thwonk_store::Store;
use thwonk_thoonk::{Recurring, Redis};
use tracing::warn;

/// The recurring model that holds every thwonk's schedule.
pub const SCHEDULES: &str = "schedules";

/// The recurring task of a thwonk's schedule.
pub fn task_name(thwonk_id: &str, cron: &str) -> String {
    format!("{thwonk_id} {cron}")
}

/// `(thwonk_id, cron)` of a task name.
pub fn split_task(task: &str) -> Option<(&str, &str)> {
    task.split_once(' ')
}

/// Register (or, with `None`, unregister) a thwonk's schedule, first due at its next tick
/// after now. An unchanged schedule keeps its pending tick.
pub async fn register(
    redis: &Redis,
    thwonk_id: &str,
    schedule: Option<&str>,
) -> Result<(), ControlError> {
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
        let cron = Cron::parse(expr).map_err(|e| ControlError::Schedule(e.to_string()))?;
        match cron.next_after(now_ms()) {
            Some(due) => r.add(task, due, None).await?,
            None => warn!(thwonk = %thwonk_id, schedule = %expr, "the schedule never fires"),
        }
    }
    Ok(())
}

/// Make the recurring model match SQL: every active thwonk's schedule registered, nothing
/// else. Returns how many schedules are registered.
pub async fn sync(store: &Store, redis: &Redis) -> Result<usize, ControlError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_name_carries_its_thwonk_and_its_expression() {
        assert_eq!(
            split_task(&task_name("t1", "*/5 * * * *")),
            Some(("t1", "*/5 * * * *"))
        );
    }
}
