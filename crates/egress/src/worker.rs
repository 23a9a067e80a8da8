//! The job loop: `egress.concurrency` takers, each with its own queue handle, take `outbound`
//! jobs, deliver the outbox row each names to its recipients still `queued`, and record the
//! outcome per recipient and for the row (see [`crate::attempt`]), in one transaction:
//!
//! - every recipient took it → row `sent`, job finished;
//! - some recipient failed transiently with attempts left → row keeps `queued` with the error
//!   and the next attempt's time (`egress.retry_schedule_ms`, or `retry_schedule_secs`), job released until then; the
//!   next attempt goes to those recipients only;
//! - nobody left to try and someone failed (permanently, or the last allowed attempt) → row
//!   `failed` with the remote replies, job finished, and in the same transaction a DSN queued
//!   (as a new outbox row, whose job is published next) or bounce records written (see
//!   [`crate::notice`]).
//!
//! Shutdown: when the token is cancelled, each taker finishes the delivery in hand (bounded by
//! `egress.timeout_secs`) and stops; no job is abandoned mid-delivery.
//!
//! One taker per row: before an attempt the taker claims the row in SQL
//! ([`Store::claim_outbox`]), so a job queued twice (the reconciler re-queueing a row whose
//! job Redis lost while a taker still held it) cannot deliver twice. Delivery is still at
//! least once where SMTP allows no better: if the process dies after the remote's 250 and
//! before the row is marked sent, or recording the success fails (the database is down), the
//! row is delivered again once its claim runs out, never lost.

use crate::EgressError;
use crate::attempt;
use crate::attempt::next_delay;
use crate::mode::ModeTransport;
use crate::notice::{Notice, bounce_records, dsn_row, notice_for};
use crate::transport::{DeliveryReport, Outgoing, Transport};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use thwonk_core::config::Config;
use thwonk_core::ids::new_id;
use thwonk_core::status::DeliveryStatus;
use thwonk_core::time::now_ms;
use thwonk_mail::dsn::DsnContext;
use thwonk_store::{Attempt, NewBounce, NewOutbox, OutboxRow, RowOutcome, Store, StoreError};
use thwonk_thoonk::{Job, JobQueue, ThoonkError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one `take` waits for a job. It bounds only how soon an idle taker notices
/// shutdown (and how soon it retries after a Redis error), not any delivery.
const TAKE_WAIT: Duration = Duration::from_secs(1);

/// Added to a delivery's claim on its row for recording the outcome.
const CLAIM_MARGIN: Duration = Duration::from_secs(10);

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
            // An idle taker stops at once on shutdown, not after its take's wait: the process
            // has only `shutdown.grace_ms` to stop in.
            let taken = tokio::select! {
                _ = stop.cancelled() => break,
                taken = self.queue.take(TAKE_WAIT) => taken,
            };
            let job = match taken {
                Ok(Some(job)) => job,
                Ok(None) => continue,
                Err(e) => {
                    // Every taker hits this while Redis is away: one line per interval.
                    static TAKE_FAILED: thwonk_core::report::Throttle =
                        thwonk_core::report::Throttle::new(std::time::Duration::from_secs(30));
                    if let Some(repeated) = TAKE_FAILED.hit() {
                        tracing::warn!(taker = self.n, error = %e, repeated, "cannot take outbound jobs");
                    }
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(TAKE_WAIT) => {}
                    }
                    continue;
                }
            };
            if let Err(e) = self.handle(&job).await {
                tracing::error!(job = %job.id, error = %e, "outbound job not recorded; released for a later try");
                let due = now_ms()
                    .saturating_add(millis(next_delay(0, self.config.egress.retry_schedule())));
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
        if row.status != DeliveryStatus::Queued {
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
        // Claim the row in SQL for this attempt: the queue alone cannot promise one taker per
        // row once Redis has lost and the reconciler re-queued its job.
        let now = now_ms();
        let claim_until = now.saturating_add(self.claim_ms());
        if !self.store.claim_outbox(&row.id, now, claim_until).await? {
            self.queue.retry_at(&job.id, claim_until, "").await?;
            return Ok(());
        }

        let states = self.store.outbox_recipients(&row.id).await?;
        // The recipients still queued, in the row's order (RCPT order as the script wrote it).
        let mut pending: Vec<String> = Vec::new();
        for rcpt in &row.rcpt_to {
            let queued = states
                .iter()
                .any(|s| &s.rcpt == rcpt && s.status == DeliveryStatus::Queued);
            if queued && !pending.contains(rcpt) {
                pending.push(rcpt.clone());
            }
        }
        // No recipient left to try while the row is still queued: not a state record_attempt
        // leaves (it writes both in one transaction), but if a row is ever found so, the plan
        // below settles it without delivering anything rather than retrying it forever.
        let report = if pending.is_empty() {
            DeliveryReport::default()
        } else {
            self.transport
                .deliver(&Outgoing {
                    id: &row.id,
                    mail_from: &row.mail_from,
                    rcpt_to: &pending,
                    raw: &row.raw,
                })
                .await
        };
        let egress = &self.config.egress;
        let attempts = u32::try_from(row.attempts.max(0)).unwrap_or(u32::MAX);
        let now = now_ms();
        let plan = attempt::plan(
            &states,
            &report,
            attempts,
            attempt::Retry {
                max_attempts: egress.max_attempts,
                schedule: egress.retry_schedule(),
            },
            now,
        );
        let (dsn, bounces) = if plan.failed.is_empty() {
            (None, Vec::new())
        } else {
            self.notice(&row, &plan, now).await?
        };
        let dsn_id = dsn.as_ref().map(|d| d.id.clone());
        let recorded = self
            .store
            .record_attempt(&Attempt {
                outbox_id: row.id.clone(),
                recipients: plan.updates,
                outcome: plan.outcome.clone(),
                dsn,
                bounces,
                now_ms: now,
            })
            .await?;
        if !recorded {
            // Another taker recorded this row meanwhile (a stalled job handed out twice).
            self.queue.finish(&job.id, None).await?;
            return Ok(());
        }
        if let Some(id) = dsn_id {
            // The DSN row is committed; if this publish fails the reconciler queues it.
            if let Err(e) = self
                .queue
                .publish(&id, &thwonk_thoonk::outbound_payload(&id))
                .await
            {
                tracing::warn!(outbox = %id, error = %e, "DSN queued in SQL but not on Redis; the reconciler will queue it");
            }
        }
        match (&plan.outcome, plan.delay) {
            (RowOutcome::Sent, _) => {
                thwonk_core::metrics::DELIVERIES.inc(&[
                    thwonk_core::metrics::egress_mode(egress.mode),
                    DeliveryStatus::Sent.as_str(),
                ]);
                self.queue.finish(&job.id, None).await?;
                tracing::info!(outbox = %row.id, recipients = pending.len(), "delivered");
            }
            (
                RowOutcome::Retry {
                    error,
                    next_attempt_at_ms,
                },
                delay,
            ) => {
                thwonk_core::metrics::DELIVERIES
                    .inc(&[thwonk_core::metrics::egress_mode(egress.mode), "retry"]);
                self.queue
                    .retry_at(&job.id, *next_attempt_at_ms, error)
                    .await?;
                tracing::info!(outbox = %row.id, attempt = attempts + 1, retry_in_ms = millis(delay.unwrap_or_default()), %error, "delivery deferred");
            }
            (RowOutcome::Failed { error }, _) => {
                thwonk_core::metrics::DELIVERIES.inc(&[
                    thwonk_core::metrics::egress_mode(egress.mode),
                    DeliveryStatus::Failed.as_str(),
                ]);
                self.queue.finish(&job.id, None).await?;
                tracing::warn!(outbox = %row.id, attempt = attempts + 1, %error, "delivery failed");
            }
        }
        Ok(())
    }

    /// The DSN or bounce records for a row that failed (see [`crate::notice`]).
    async fn notice(
        &self,
        row: &OutboxRow,
        plan: &attempt::Plan,
        now: i64,
    ) -> Result<(Option<NewOutbox>, Vec<NewBounce>), StateError> {
        let ours = self.is_ours(&row.mail_from).await?;
        Ok(match notice_for(&row.mail_from, |_| ours) {
            Notice::Dsn(to) => {
                let ctx = DsnContext {
                    reporting_mta: &self.config.smtp.hostname,
                    id: &row.id,
                    to: &to,
                    arrival_ms: row.created_at_ms,
                    date_ms: now,
                    original: &row.raw,
                };
                (Some(dsn_row(&ctx, &plan.failed, new_id())), Vec::new())
            }
            Notice::Record => (None, bounce_records(&row.id, &plan.failed, now)),
        })
    }

    /// Whether mail to `address` would come back to Thwonk: a thwonk's address, or an address
    /// in a domain listed in `smtp.domains`.
    async fn is_ours(&self, address: &str) -> Result<bool, StateError> {
        let Ok(parsed) = thwonk_core::Address::parse(address) else {
            return Ok(false);
        };
        let domains = &self.config.smtp.domains;
        if domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(parsed.domain()))
        {
            return Ok(true);
        }
        Ok(self.store.thwonk_by_address(&parsed).await?.is_some())
    }
}

impl<T> Taker<T> {
    /// How long a delivery attempt holds its row: the delivery's timeout twice over (connect
    /// and the final reply are each bounded by it), plus a margin for recording the outcome.
    fn claim_ms(&self) -> i64 {
        let timeout = self.config.egress.timeout;
        millis(timeout * 2 + CLAIM_MARGIN)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
