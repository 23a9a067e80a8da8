//! The reconciler: SQL is the system of record, Redis only carries the work, so work that
//! Redis lost is queued again from SQL.
//!
//! A `queued` message whose `inbound` job is missing (in no state: waiting, taken, claimed,
//! delayed or stalled), and a `queued` outbox row whose `outbound` job is missing, are
//! published again. That happens after a Redis restart that kept nothing, or a flushed Redis.
//! Publishing is idempotent by id, so racing the ingress or the runner (which publish the
//! same ids right after their commits) queues nothing twice; and a job whose message is gone
//! or already processed ends as a no-op, so re-queueing can never run a message twice.

use std::time::Duration;
use thwonk_store::Store;
use thwonk_thoonk::{INBOUND, JobQueue, OUTBOUND, Redis, inbound_payload, outbound_payload};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What one pass re-queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub messages: usize,
    pub outbox: usize,
}

/// One pass over both queues.
pub async fn reconcile_once(
    store: &Store,
    redis: &Redis,
) -> Result<Reconciled, crate::RunnerError> {
    let inbound = JobQueue::new(redis, INBOUND);
    let outbound = JobQueue::new(redis, OUTBOUND);
    let mut done = Reconciled::default();
    for m in store.queued_messages().await? {
        if !inbound.contains(&m.id).await? {
            inbound
                .publish(&m.id, &inbound_payload(&m.id, &m.thwonk_id))
                .await?;
            done.messages += 1;
        }
    }
    for id in store.queued_outbox_ids().await? {
        if !outbound.contains(&id).await? {
            outbound.publish(&id, &outbound_payload(&id)).await?;
            done.outbox += 1;
        }
    }
    Ok(done)
}

/// Reconcile at once, then every `interval` until `shutdown`. Failures (Redis or the database
/// away) are logged; the next pass tries again.
pub async fn run(store: Store, redis: Redis, interval: Duration, shutdown: CancellationToken) {
    loop {
        match reconcile_once(&store, &redis).await {
            Ok(r) if r != Reconciled::default() => info!(
                messages = r.messages,
                outbox = r.outbox,
                "re-queued work whose Redis job was missing"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "reconciler pass failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
