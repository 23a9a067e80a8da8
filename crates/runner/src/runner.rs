//! The job loop: take `inbound` jobs, serialise runs per thwonk, commit, queue outgoing mail.

use crate::RunnerError;
use crate::execute::execute_message;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use thwonk_core::Config;
use thwonk_core::run::ErrorKind;
use thwonk_core::status::MessageStatus;
use thwonk_core::time::now_ms;
use thwonk_sandbox::WorkerPool;
use thwonk_store::{CommitResult, Store};
use thwonk_thoonk::{INBOUND, Job, JobQueue, OUTBOUND, Redis};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// How long one take waits before checking for shutdown.
const TAKE_WAIT: Duration = Duration::from_secs(1);
/// When another runner holds the thwonk, look again this much later. That runner drains the
/// thwonk's queue in order, so by then this job's message is usually done.
const LEASE_BUSY_RETRY_MS: i64 = 100;
/// After a failure (database or Redis unreachable), retry the job this much later, doubling
/// per attempt up to `FAILURE_RETRY_CAP_MS`; after `queues.max_attempts` it is stalled.
const FAILURE_RETRY_MS: i64 = 1_000;
const FAILURE_RETRY_CAP_MS: i64 = 60_000;
/// Attempts to queue a committed outbox row before leaving it to the reconciler.
const OUTBOUND_PUBLISH_ATTEMPTS: u32 = 5;

/// The payload of an `inbound` job.
#[derive(Debug, Deserialize)]
struct InboundJob {
    message_id: String,
}

/// A runner process's state (cheap to clone).
#[derive(Clone)]
pub struct Runner {
    pub(crate) store: Store,
    pub(crate) redis: Redis,
    pub(crate) config: Arc<Config>,
    /// One sandbox worker per task: scripts run there, never in this process.
    pub(crate) pool: WorkerPool,
    /// Unique per process: lease owners are `{id}/{task}`.
    id: String,
}

impl Runner {
    pub fn new(store: Store, redis: Redis, config: Arc<Config>) -> Runner {
        let pool = WorkerPool::new(config.runner.concurrency as usize, config.limits.memory_mib);
        Runner::with_pool(store, redis, config, pool)
    }

    /// A runner whose scripts run in `pool` (tests point it at the `thwonk` binary, whose
    /// `__sandbox-worker` mode is the worker).
    pub fn with_pool(store: Store, redis: Redis, config: Arc<Config>, pool: WorkerPool) -> Runner {
        Runner {
            store,
            redis,
            pool,
            config,
            id: format!(
                "runner-{}-{}",
                std::process::id(),
                thwonk_core::ids::new_id()
            ),
        }
    }

    /// Take and process jobs with `runner.concurrency` tasks until `shutdown`; a run in
    /// progress finishes and commits before its task stops.
    pub async fn run(self, shutdown: CancellationToken) {
        // Workers that cannot start are a broken install: say so now, not at the first mail.
        let pool = self.pool.clone();
        match tokio::task::spawn_blocking(move || pool.warm_up()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "sandbox workers did not start; runs will retry"),
            Err(e) => warn!(error = %e, "sandbox workers did not start; runs will retry"),
        }
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..self.config.runner.concurrency {
            let me = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { me.task_loop(n, shutdown).await });
        }
        tasks.spawn(crate::schedule::run_scheduler(
            self.store.clone(),
            self.redis.clone(),
            self.config.schedules.poll,
            self.config.schedules.sync_interval,
            shutdown.clone(),
        ));
        tasks.spawn(crate::feeds::retry_pending(
            self.store.clone(),
            self.redis.clone(),
            format!("{}/feeds", self.id),
            self.config.feeds.retry_interval,
            self.config.runner.lease.as_millis() as i64,
            shutdown.clone(),
        ));
        while tasks.join_next().await.is_some() {}
        info!("runner stopped");
    }

    async fn task_loop(&self, n: u32, shutdown: CancellationToken) {
        let inbound = JobQueue::new(&self.redis, INBOUND);
        let outbound = JobQueue::new(&self.redis, OUTBOUND);
        let owner = format!("{}/{n}", self.id);
        while !shutdown.is_cancelled() {
            let job = tokio::select! {
                _ = shutdown.cancelled() => break,
                job = inbound.take(TAKE_WAIT) => job,
            };
            match job {
                Ok(Some(job)) => {
                    if let Err(e) = self.handle(&inbound, &outbound, &job, &owner).await {
                        warn!(job = %job.id, error = %e, "job failed; retrying later");
                        let error = e.to_string();
                        let failed = inbound.fail(
                            &job.id,
                            &error,
                            FAILURE_RETRY_MS,
                            FAILURE_RETRY_CAP_MS,
                            self.config.queues.max_attempts,
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
                    warn!(error = %e, "cannot take inbound jobs; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }

    /// One job: the message it names is processed once, in its thwonk's order.
    async fn handle(
        &self,
        inbound: &JobQueue,
        outbound: &JobQueue,
        job: &Job,
        owner: &str,
    ) -> Result<(), RunnerError> {
        if let Some(tick) = crate::schedule::ScheduleJob::parse(&job.payload) {
            return self
                .handle_schedule(inbound, outbound, job, &tick, owner)
                .await;
        }
        if let Some(req) = crate::invoke::RequestJob::parse(&job.payload) {
            return self
                .handle_request(inbound, outbound, job, &req, owner)
                .await;
        }
        let payload: InboundJob =
            serde_json::from_str(&job.payload).map_err(|e| RunnerError::BadJob {
                payload: job.payload.clone(),
                reason: e.to_string(),
            })?;
        let message_id = payload.message_id;
        // Only where the message stands: its bytes are read once, by the run that drains it.
        let Some(msg) = self.store.message_state(&message_id).await? else {
            // Removed after a failed enqueue (the client was told 451), or never stored.
            inbound.finish(&job.id, Some("no such message")).await?;
            return Ok(());
        };
        if msg.status != MessageStatus::Queued {
            inbound.finish(&job.id, Some(msg.status.as_str())).await?;
            return Ok(());
        }
        if !self
            .lease_or_defer(inbound, job, &msg.thwonk_id, owner)
            .await?
        {
            return Ok(());
        }
        let drained = self
            .drain_until(&msg.thwonk_id, &message_id, owner, outbound, true)
            .await;
        if let Err(e) = self.store.release_lease(&msg.thwonk_id, owner).await {
            warn!(thwonk = %msg.thwonk_id, error = %e, "could not release lease; it expires by itself");
        }
        drained?;
        inbound.finish(&job.id, Some("processed")).await?;
        Ok(())
    }

    /// Take the thwonk's run lease for `owner`; if another runner holds it, put the job back
    /// for a moment (that runner is draining the thwonk in order) and say so with `false`.
    pub(crate) async fn lease_or_defer(
        &self,
        inbound: &JobQueue,
        job: &Job,
        thwonk_id: &str,
        owner: &str,
    ) -> Result<bool, RunnerError> {
        let lease_ms = self.config.runner.lease.as_millis() as i64;
        if self
            .store
            .try_lease(thwonk_id, owner, now_ms(), lease_ms)
            .await?
        {
            return Ok(true);
        }
        inbound
            .retry_at(&job.id, now_ms() + LEASE_BUSY_RETRY_MS, "")
            .await?;
        Ok(false)
    }

    /// Process the thwonk's queued messages oldest first, up to and including `target`; with
    /// `past_target`, then also those that were already queued when `target` was done.
    ///
    /// The second part is for latency: a message that arrived while this task held the lease
    /// had its own job put back by another task (`LEASE_BUSY_RETRY_MS`, and a put-back job
    /// comes back only with a later take, up to a second on an idle queue). Its job then
    /// finds it processed. Messages that arrive after that point have jobs of their own, so
    /// the drain still ends under a steady stream of mail.
    pub(crate) async fn drain_until(
        &self,
        thwonk_id: &str,
        target: &str,
        owner: &str,
        outbound: &JobQueue,
        past_target: bool,
    ) -> Result<(), RunnerError> {
        let lease_ms = self.config.runner.lease.as_millis() as i64;
        let Some(thwonk) = self.store.thwonk(thwonk_id).await? else {
            return Ok(());
        };
        // Set once `target` is done: only messages received up to then are drained after it.
        let mut horizon_ms: Option<i64> = None;
        while let Some(msg) = self.store.next_queued_message(thwonk_id).await? {
            if horizon_ms.is_some_and(|h| msg.received_at_ms > h) {
                break;
            }
            let done = msg.id == target;
            // The run id is made by the run, which records it on the span at once.
            let span = info_span!("run", thwonk = %thwonk.address, message = %msg.id, run = tracing::field::Empty);
            let commit =
                execute_message(&self.store, &self.pool, &self.config.limits, &thwonk, &msg)
                    .instrument(span.clone())
                    .await?;
            let run_id = commit.run.id.clone();
            if commit.run.error_kind == Some(ErrorKind::Internal) {
                // Thwonk failed, not the script (the store went away mid-run, say): commit
                // nothing, so the message is not used up, and let the job be retried.
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
                            run = %run_id,
                            status = %commit.run.status,
                            error = commit.run.error_message.as_deref().unwrap_or(""),
                            sends = commit.outbox.len(),
                            instructions = commit.run.instructions,
                            "run committed"
                        )
                    });
                    for row in &commit.outbox {
                        queue_outbound(outbound, &row.id).await;
                    }
                    crate::feeds::apply_after_commit(&self.store, &self.redis, thwonk_id).await;
                }
                CommitResult::AlreadyProcessed => {
                    span.in_scope(
                        || info!(run = %run_id, "message already processed; run dropped"),
                    );
                }
            }
            if done {
                if !past_target {
                    break;
                }
                horizon_ms.get_or_insert_with(now_ms);
            }
            if !self
                .store
                .try_lease(thwonk_id, owner, now_ms(), lease_ms)
                .await?
            {
                // Another runner took over after our lease expired; it continues in order.
                break;
            }
        }
        Ok(())
    }
}

/// Queue an outbox row for delivery. The row is already committed, so a failure here delays
/// the mail but does not lose it: the reconciler re-queues rows whose job is missing.
pub(crate) async fn queue_outbound(outbound: &JobQueue, outbox_id: &str) {
    let payload = thwonk_thoonk::outbound_payload(outbox_id);
    for attempt in 1..=OUTBOUND_PUBLISH_ATTEMPTS {
        match outbound.publish(outbox_id, &payload).await {
            Ok(_) => return,
            Err(e) => {
                warn!(outbox = %outbox_id, attempt, error = %e, "cannot queue outgoing mail");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
}
