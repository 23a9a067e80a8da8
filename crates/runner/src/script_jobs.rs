//! The runner's side of script jobs (`thwonk_control::script_jobs`): follow the `finish`
//! and `stall` events of every script queue and queue each result as an `inbound` job, push
//! the jobs a commit could not publish (Redis was away), and sweep for endings nobody heard.

use std::time::Duration;
use thwonk_control::script_jobs::{
    publish_unpublished, queue_result, result_for_event, sweep_once,
};
use thwonk_core::time::now_ms;
use thwonk_store::Store;
use thwonk_thoonk::{Redis, Subscription};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

async fn follow_endings(store: &Store, redis: &Redis, shutdown: &CancellationToken) {
    let patterns = [
        thwonk_thoonk::keys::job_event("finish", "*/*"),
        thwonk_thoonk::keys::job_event("stall", "*/*"),
    ];
    let mut sub = match Subscription::patterns(redis, &patterns).await {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "cannot follow job endings yet");
            return;
        }
    };
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = sub.next() => e,
        };
        let Some(event) = event else { return };
        match result_for_event(store, redis, &event).await {
            Ok(Some(result)) => {
                if let Err(e) = queue_result(redis, &result).await {
                    warn!(job = %event.id, error = %e, "cannot queue a job result; the sweep will");
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(job = %event.id, error = %e, "cannot read a job's ending; the sweep will")
            }
        }
    }
}

/// A runner's side of script jobs until `shutdown`: follow job endings (resubscribing when
/// the connection drops), every `retry_interval` push the jobs left unpublished, and every
/// `sweep_interval` sweep for endings nobody heard.
pub async fn run(
    store: Store,
    redis: Redis,
    retry_interval: Duration,
    sweep_interval: Duration,
    shutdown: CancellationToken,
) {
    let follower = async {
        while !shutdown.is_cancelled() {
            follow_endings(&store, &redis, &shutdown).await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    };
    let passes = async {
        let mut last_sweep = now_ms();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(retry_interval) => {}
            }
            let older = now_ms() - retry_interval.as_millis() as i64;
            match publish_unpublished(&store, &redis, older).await {
                Ok(n) if n > 0 => info!(jobs = n, "published script jobs left unpublished"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot publish script jobs; retrying"),
            }
            if now_ms() - last_sweep >= sweep_interval.as_millis() as i64 {
                last_sweep = now_ms();
                let older = now_ms() - sweep_interval.as_millis() as i64;
                match sweep_once(&store, &redis, older).await {
                    Ok(n) if n > 0 => info!(results = n, "queued job results nobody heard"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "job result sweep failed"),
                }
            }
        }
    };
    tokio::join!(follower, passes);
}
