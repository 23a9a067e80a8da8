//! The job loop: `egress.concurrency` takers, each with its own queue handle, take `outbound`
//! jobs, deliver the outbox row each names, and record the outcome:
//!
//! - delivered → row `sent`, job finished;
//! - transient failure with attempts left → row keeps `queued` with the error and the next
//!   attempt's time (`egress.retry_schedule_secs`), job released until then;
//! - permanent failure, or the last allowed attempt failed → row `failed` with the remote
//!   reply, job finished.
//!
//! Shutdown: when the token is cancelled, each taker finishes the delivery in hand (bounded by
//! `egress.timeout_secs`) and stops; no job is abandoned mid-delivery.
//!
//! Delivery is at least once: if recording a success fails (the database is down), the job is
//! released and the message may be delivered again, never lost.

use crate::EgressError;
use crate::mode::ModeTransport;
use crate::policy::{Decision, decide, next_delay};
use crate::transport::{Outgoing, Transport};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use thwonk_core::config::Config;
use thwonk_core::time::now_ms;
use thwonk_store::{Store, StoreError};
use thwonk_thoonk::{Job, JobQueue, ThoonkError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one `take` waits for a job. It bounds only how soon an idle taker notices
/// shutdown (and how soon it retries after a Redis error), not any delivery.
const TAKE_WAIT: Duration = Duration::from_secs(1);

/// The payload of an `outbound` job.
#[derive(Debug, Deserialize)]
struct OutboundPayload {
    outbox_id: String,
}

/// The egress role.
pub struct Egress {
    store: Store,
    queue: JobQueue,
    config: Arc<Config>,
}

/// A failure to read or record state (not a delivery failure).
#[derive(Debug, thiserror::Error)]
enum StateError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] ThoonkError),
}

impl Egress {
    /// `queue` is the `outbound` queue ([`thwonk_thoonk::OUTBOUND`]); each taker clones it.
    pub fn new(store: Store, queue: JobQueue, config: Arc<Config>) -> Self {
        Egress {
            store,
            queue,
            config,
        }
    }

    /// Run until `shutdown` is cancelled, delivering by `egress.mode`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EgressError> {
        let transport = Arc::new(ModeTransport::from_config(&self.config)?);
        self.run_with(transport, shutdown).await
    }

    /// The same loop over any transport.
    pub async fn run_with<T: Transport + 'static>(
        self,
        transport: Arc<T>,
        shutdown: CancellationToken,
    ) -> Result<(), EgressError> {
        // A child token: if one taker dies, the others are stopped without cancelling the
        // caller's token, which other roles of the process may share.
        let stop = shutdown.child_token();
        let mut takers = JoinSet::new();
        for n in 0..self.config.egress.concurrency.max(1) {
            let taker = Taker {
                n,
                store: self.store.clone(),
                queue: self.queue.clone(),
                config: self.config.clone(),
                transport: transport.clone(),
            };
            takers.spawn(taker.run(stop.clone()));
        }
        let mut failed = None;
        while let Some(done) = takers.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "egress taker died; stopping the others");
                stop.cancel();
                failed.get_or_insert(e);
            }
        }
        match failed {
            Some(e) => Err(EgressError::Task(e)),
            None => Ok(()),
        }
    }
}

/// One taker: takes a job, handles it, takes the next.
struct Taker<T> {
    n: u32,
    store: Store,
    queue: JobQueue,
    config: Arc<Config>,
    transport: Arc<T>,
}

impl<T: Transport> Taker<T> {
    async fn run(self, stop: CancellationToken) {
        tracing::debug!(taker = self.n, "egress taker started");
        while !stop.is_cancelled() {
            let job = match self.queue.take(TAKE_WAIT).await {
                Ok(Some(job)) => job,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(taker = self.n, error = %e, "cannot take outbound jobs");
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(TAKE_WAIT) => {}
                    }
                    continue;
                }
            };
            if let Err(e) = self.handle(&job).await {
                tracing::error!(job = %job.id, error = %e, "outbound job not recorded; released for a later try");
                let due = now_ms().saturating_add(millis(next_delay(
                    0,
                    &self.config.egress.retry_schedule_secs,
                )));
                if let Err(e) = self.queue.retry_at(&job.id, due, &e.to_string()).await {
                    // Still claimed: the queue hands stalled jobs out again.
                    tracing::error!(job = %job.id, error = %e, "cannot release outbound job");
                }
            }
        }
        tracing::debug!(taker = self.n, "egress taker stopped");
    }

    async fn handle(&self, job: &Job) -> Result<(), StateError> {
        let outbox_id = match serde_json::from_str::<OutboundPayload>(&job.payload) {
            Ok(p) => p.outbox_id,
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "outbound job payload is not {{\"outbox_id\"}}; dropped");
                self.queue.finish(&job.id, None).await?;
                return Ok(());
            }
        };
        let Some(row) = self.store.outbox(&outbox_id).await? else {
            tracing::warn!(outbox = %outbox_id, "outbound job for a missing outbox row; dropped");
            self.queue.finish(&job.id, None).await?;
            return Ok(());
        };
        if row.status != "queued" {
            // Delivered or given up already (a job published twice, or re-queued by the
            // reconciler): nothing to do.
            self.queue.finish(&job.id, None).await?;
            return Ok(());
        }
        if row.next_attempt_at_ms > now_ms() {
            // Taken early (re-queued without its due time): wait for the recorded time.
            self.queue
                .retry_at(&job.id, row.next_attempt_at_ms, "")
                .await?;
            return Ok(());
        }

        let report = self
            .transport
            .deliver(&Outgoing {
                id: &row.id,
                mail_from: &row.mail_from,
                rcpt_to: &row.rcpt_to,
                raw: &row.raw,
            })
            .await;
        let egress = &self.config.egress;
        let attempts = u32::try_from(row.attempts.max(0)).unwrap_or(u32::MAX);
        match decide(
            &report.verdict(),
            attempts,
            egress.max_attempts,
            &egress.retry_schedule_secs,
        ) {
            Decision::MarkSent => {
                thwonk_core::metrics::DELIVERIES
                    .inc(&[thwonk_core::metrics::egress_mode(egress.mode), "sent"]);
                self.store.mark_outbox_sent(&row.id, now_ms()).await?;
                self.queue.finish(&job.id, None).await?;
                tracing::info!(outbox = %row.id, recipients = row.rcpt_to.len(), "delivered");
            }
            Decision::Retry { error, delay } => {
                thwonk_core::metrics::DELIVERIES
                    .inc(&[thwonk_core::metrics::egress_mode(egress.mode), "retry"]);
                let due = now_ms().saturating_add(millis(delay));
                self.store.mark_outbox_retry(&row.id, &error, due).await?;
                self.queue.retry_at(&job.id, due, &error).await?;
                tracing::info!(outbox = %row.id, attempt = attempts + 1, retry_in_s = delay.as_secs(), %error, "delivery deferred");
            }
            Decision::Fail { error } => {
                thwonk_core::metrics::DELIVERIES
                    .inc(&[thwonk_core::metrics::egress_mode(egress.mode), "failed"]);
                self.store.mark_outbox_failed(&row.id, &error).await?;
                self.queue.finish(&job.id, None).await?;
                tracing::warn!(outbox = %row.id, attempt = attempts + 1, %error, "delivery failed");
            }
        }
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
