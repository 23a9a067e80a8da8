//! What every part of the job loop reaches: the store, Redis, the configuration and the
//! sandbox workers, and a task's two queues.

use crate::RunnerError;
use crate::execute::{Executed, RunTrigger, execute};
use std::sync::Arc;
use thwonk_core::Config;
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
}

impl RunnerState {
    /// Run `thwonk`'s active script for `trigger` in this task's worker pool, with the
    /// configured limits: what to commit, not yet committed.
    pub async fn execute(
        &self,
        thwonk: &Thwonk,
        trigger: RunTrigger<'_>,
    ) -> Result<Executed, RunnerError> {
        execute(
            &self.store,
            &self.redis,
            &self.pool,
            &self.config.limits,
            &self.config.public.base_url,
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
