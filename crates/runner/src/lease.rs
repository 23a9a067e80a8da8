//! Per-thwonk ordering: work on a thwonk happens only under its run lease (a row in SQL, so
//! it holds across runner processes and hosts).

use crate::RunnerError;
use crate::state::RunnerState;
use thwonk_core::time::now_ms;
use thwonk_thoonk::{Job, JobQueue};
use tracing::warn;

/// When another runner holds the thwonk, look again this much later. That runner drains the
/// thwonk's queue in order, so by then this job's message is usually done.
const LEASE_BUSY_RETRY_MS: i64 = 100;
/// When the thwonk's owner has its share of this process's tasks running, look again this
/// much later (meanwhile the task takes other owners' jobs).
const SHARE_BUSY_RETRY_MS: i64 = 250;

/// Do `work` under the thwonk's run lease for `owner`, then release the lease. If another
/// runner holds it, `work` does not start: the job is put back for a moment (that runner is
/// draining the thwonk in order) and the answer is `None`. Likewise when the thwonk's owner
/// already has `runner.owner_concurrency` runs in this process (its fair share): the job
/// waits a moment and this task serves another owner meanwhile.
pub(crate) async fn with_lease<T>(
    st: &RunnerState,
    inbound: &JobQueue,
    job: &Job,
    thwonk_id: &str,
    owner: &str,
    work: impl Future<Output = Result<T, RunnerError>>,
) -> Result<Option<T>, RunnerError> {
    let share_key = match st.store.thwonk_owner(thwonk_id).await? {
        Some(user) => user,
        None => format!("thwonk:{thwonk_id}"),
    };
    let Some(_share) = st
        .shares
        .try_enter(&share_key, st.config.runner.owner_concurrency)
    else {
        inbound
            .retry_at(&job.id, now_ms() + SHARE_BUSY_RETRY_MS, "")
            .await?;
        return Ok(None);
    };
    let lease_ms = st.config.runner.lease.as_millis() as i64;
    if !st
        .store
        .try_lease(thwonk_id, owner, now_ms(), lease_ms)
        .await?
    {
        inbound
            .retry_at(&job.id, now_ms() + LEASE_BUSY_RETRY_MS, "")
            .await?;
        return Ok(None);
    }
    let done = work.await;
    if let Err(e) = st.store.release_lease(thwonk_id, owner).await {
        warn!(thwonk = %thwonk_id, error = %e, "could not release lease; it expires by itself");
    }
    done.map(Some)
}

/// Keep the lease for the next piece of work: false when another runner took over after it
/// expired (that runner continues in order).
pub(crate) async fn renew(
    st: &RunnerState,
    thwonk_id: &str,
    owner: &str,
) -> Result<bool, RunnerError> {
    let lease_ms = st.config.runner.lease.as_millis() as i64;
    Ok(st
        .store
        .try_lease(thwonk_id, owner, now_ms(), lease_ms)
        .await?)
}
