//! The job loop: `runner.concurrency` tasks take `inbound` jobs and hand each to
//! [`crate::handle`]; beside them the scheduler and the feed retry pass. A failed job is
//! retried later with a doubling delay, and stalled after `queues.max_attempts`.

use crate::state::{Queues, RunnerState};
use std::sync::Arc;
use std::time::Duration;
use thwonk_core::Config;
use thwonk_core::report::Throttle;
use thwonk_sandbox::WorkerPool;
use thwonk_store::Store;
use thwonk_thoonk::Redis;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long one take waits before checking for shutdown.
const TAKE_WAIT: Duration = Duration::from_secs(1);
/// A warning that repeats while Redis is away is logged once per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(30);
/// After a failure (database or Redis unreachable), retry the job this much later, doubling
/// per attempt up to `FAILURE_RETRY_CAP_MS`; after `queues.max_attempts` it is stalled.
const FAILURE_RETRY_MS: i64 = 1_000;
const FAILURE_RETRY_CAP_MS: i64 = 60_000;

/// A runner process (cheap to clone).
#[derive(Clone)]
pub struct Runner {
    state: RunnerState,
    /// Unique per process: lease owners are `{id}/{task}`.
    id: String,
}

impl Runner {
    pub fn new(store: Store, redis: Redis, config: Arc<Config>) -> Runner {
        let pool = WorkerPool::new(config.runner.concurrency as usize, config.limits.memory_mib)
            .require_wall(config.runner.require_wall);
        Runner::with_pool(store, redis, config, pool)
    }

    /// A runner whose scripts run in `pool` (tests point it at the `thwonk` binary, whose
    /// `__sandbox-worker` mode is the worker).
    pub fn with_pool(store: Store, redis: Redis, config: Arc<Config>, pool: WorkerPool) -> Runner {
        Runner {
            state: RunnerState {
                store,
                redis,
                config,
                pool,
                shares: Default::default(),
            },
            id: format!(
                "runner-{}-{}",
                std::process::id(),
                thwonk_core::ids::new_id()
            ),
        }
    }

    /// The runner role of a daemon: the job loop ([`Runner::run`]) and, beside it, the
    /// reconciler that re-queues from SQL the work whose Redis job was lost, every
    /// `queues.reconcile_interval_ms`, until `shutdown`.
    pub async fn run_role(self, shutdown: CancellationToken) {
        let st = &self.state;
        let interval = st.config.queues.reconcile_interval;
        let reconciler = crate::reconcile::run(
            st.store.clone(),
            st.redis.clone(),
            interval,
            shutdown.clone(),
        );
        tokio::join!(self.run(shutdown), reconciler);
    }

    /// Take and process jobs with `runner.concurrency` tasks until `shutdown`; a run in
    /// progress finishes and commits before its task stops.
    pub async fn run(self, shutdown: CancellationToken) {
        // Workers that cannot start are a broken install: say so now, not at the first mail.
        let pool = self.state.pool.clone();
        match tokio::task::spawn_blocking(move || pool.warm_up()).await {
            Ok(Ok(())) => {}
            // Mail stays queued; the reason names what is missing and the setting.
            Ok(Err(e @ thwonk_sandbox::PoolError::WallMissing { .. })) => {
                tracing::error!(error = %e, "scripts will not run: runs wait until this is fixed")
            }
            Ok(Err(e)) => warn!(error = %e, "sandbox workers did not start; runs will retry"),
            Err(e) => warn!(error = %e, "sandbox workers did not start; runs will retry"),
        }
        let st = &self.state;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..st.config.runner.concurrency {
            let me = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { me.task_loop(n, shutdown).await });
        }
        tasks.spawn(crate::scheduler::run_scheduler(
            st.store.clone(),
            st.redis.clone(),
            st.config.schedules.poll,
            st.config.schedules.sync_interval,
            shutdown.clone(),
        ));
        tasks.spawn(crate::feeds::retry_pending(
            st.store.clone(),
            st.redis.clone(),
            format!("{}/feeds", self.id),
            st.config.feeds.retry_interval,
            st.config.runner.lease.as_millis() as i64,
            st.config.feeds.max_items,
            shutdown.clone(),
        ));
        tasks.spawn(crate::script_jobs::run(
            st.store.clone(),
            st.redis.clone(),
            st.config.feeds.retry_interval,
            st.config.queues.reconcile_interval,
            shutdown.clone(),
        ));
        while tasks.join_next().await.is_some() {}
        info!("runner stopped");
    }

    async fn task_loop(&self, n: u32, shutdown: CancellationToken) {
        let st = &self.state;
        let q = Queues::new(&st.redis);
        let owner = format!("{}/{n}", self.id);
        while !shutdown.is_cancelled() {
            let job = tokio::select! {
                _ = shutdown.cancelled() => break,
                job = q.inbound.take(TAKE_WAIT) => job,
            };
            match job {
                Ok(Some(job)) => {
                    if let Err(e) = crate::handle::handle(st, &q, &job, &owner).await {
                        warn!(job = %job.id, error = %e, "job failed; retrying later");
                        let error = e.to_string();
                        let failed = q.inbound.fail(
                            &job.id,
                            &error,
                            FAILURE_RETRY_MS,
                            FAILURE_RETRY_CAP_MS,
                            st.config.queues.max_attempts,
                        );
                        match failed.await {
                            Ok(thwonk_thoonk::FailOutcome::Stalled { attempt }) => {
                                warn!(job = %job.id, attempt, "job stalled: see `thwonk jobs`")
                            }
                            Ok(_) => {}
                            Err(e) => warn!(job = %job.id, error = %e, "could not release the job"),
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    // Every task loop hits this while Redis is away: one line per interval.
                    static TAKE_FAILED: Throttle = Throttle::new(WARN_INTERVAL);
                    if let Some(repeated) = TAKE_FAILED.hit() {
                        warn!(error = %e, repeated, "cannot take inbound jobs; retrying");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }
}
