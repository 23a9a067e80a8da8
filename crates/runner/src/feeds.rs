//! The retry pass for feed operations: a run's feed operations are applied right after its
//! commit (`thwonk_control::feeds`); those left pending because Redis was away are applied
//! here later, each thwonk under its lease so the feed still sees them in commit order.

use std::time::Duration;
use thwonk_control::feeds::apply_after_commit;
use thwonk_core::time::now_ms;
use thwonk_store::Store;
use thwonk_thoonk::Redis;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Every `interval`, apply feed operations left pending for longer than `interval` (their
/// runner could not reach Redis), each thwonk under its lease so order holds.
pub async fn retry_pending(
    store: Store,
    redis: Redis,
    owner: String,
    interval: Duration,
    lease_ms: i64,
    max_items: u64,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let older_than = now_ms() - interval.as_millis() as i64;
        let thwonks = match store.thwonks_with_pending_feed_ops(older_than).await {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "cannot list pending feed operations");
                continue;
            }
        };
        for thwonk_id in thwonks {
            match store
                .try_lease(&thwonk_id, &owner, now_ms(), lease_ms)
                .await
            {
                Ok(true) => {
                    apply_after_commit(&store, &redis, &thwonk_id, max_items).await;
                    if let Err(e) = store.release_lease(&thwonk_id, &owner).await {
                        warn!(thwonk = %thwonk_id, error = %e, "could not release lease");
                    }
                }
                // Busy: its holder applies them after its own commit.
                Ok(false) => {}
                Err(e) => warn!(thwonk = %thwonk_id, error = %e, "cannot take lease"),
            }
        }
    }
}
