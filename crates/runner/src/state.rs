//! What every part of the job loop reaches: the store, Redis, the configuration and the
//! sandbox workers, and a task's two queues.

use crate::RunnerError;
use crate::execute::{Executed, RunTrigger, execute};
use std::sync::Arc;
use thwonk_core::Config;
use thwonk_core::run::ErrorKind;
use thwonk_sandbox::WorkerPool;
use thwonk_store::{Store, Thwonk};
use thwonk_thoonk::{INBOUND, JobQueue, OUTBOUND, Redis};

/// A runner process's shared state (cheap to clone).
#[derive(Clone)]
pub(crate) struct RunnerState {
    pub store: Store,
    pub redis: Redis,
    pub config: Arc<Config>,
    /// One sandbox worker per task: scripts run there, never in this process.
    pub pool: WorkerPool,
    /// Runs in progress per owner: `runner.owner_concurrency` each at most.
    pub shares: crate::share::Shares,
}

impl RunnerState {
    /// Run `thwonk`'s active script for `trigger` in this task's worker pool, with the
    /// configured limits: what to commit, not yet committed.
    pub async fn execute(
        &self,
        thwonk: &Thwonk,
        trigger: RunTrigger<'_>,
    ) -> Result<Executed, RunnerError> {
        // Runs per minute per thwonk: past the cap the run is refused, not run (its record
        // says why). Runs of one thwonk are serialised by its lease, so the count is exact.
        let cap = self.config.budgets.thwonk_runs_per_minute;
        let now = thwonk_core::time::now_ms();
        if self.store.runs_this_minute(&thwonk.id, now).await? >= cap as i64 {
            let resets = thwonk_store::BudgetWindow::Minute.start(now) + 60_000;
            return Ok(crate::execute::refused(
                thwonk,
                trigger,
                ErrorKind::LimitError,
                format!(
                    "budgets.thwonk_runs_per_minute ({cap}) reached: this run was refused without \
                     running; it resets at {}",
                    thwonk_core::time::rfc3339_millis(resets)
                ),
            ));
        }
        execute(
            &self.store,
            &self.redis,
            &self.pool,
            &self.config,
            thwonk,
            trigger,
        )
        .await
    }
}

/// One task's queues: it takes `inbound` jobs and queues `outbound` ones.
pub(crate) struct Queues {
    pub inbound: JobQueue,
    pub outbound: JobQueue,
}

impl Queues {
    pub fn new(redis: &Redis) -> Queues {
        Queues {
            inbound: JobQueue::new(redis, INBOUND),
            outbound: JobQueue::new(redis, OUTBOUND),
        }
    }
}
