//! `thwonk jobs` against the daemon's private Redis: depths, stalled jobs with their error,
//! retry and drop.

mod support;

use std::time::Duration;
use support::{Daemon, Relay, private_redis};
use thwonk_thoonk::JobQueue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_shows_depths_and_retries_or_drops_stalled_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, None);
    let daemon = Daemon::start(&env).await;
    let redis = private_redis(dir.path()).await;
    // A queue shared with a worker in another language, say.
    let q = JobQueue::new(&redis, "reports");
    for id in ["r1", "r2", "r3"] {
        q.publish(id, "{}").await.unwrap();
    }
    for error in ["disk full", "bad input"] {
        let job = q.take(Duration::from_secs(1)).await.unwrap().unwrap();
        q.stall(&job.id, error).await.unwrap();
    }

    let table = env.ok(&["jobs"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("reports"))
        .expect(&table);
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1..6], ["1", "0", "0", "0", "2"], "{table}");

    let stalled = env.ok(&["jobs", "stalled", "reports"]);
    assert!(
        stalled.contains("r1\t1 attempts\tdisk full")
            || stalled.contains("r1\t0 attempts\tdisk full"),
        "{stalled}"
    );
    assert!(stalled.contains("bad input"), "{stalled}");

    env.ok(&["jobs", "retry", "reports", "r1"]);
    env.ok(&["jobs", "drop", "reports", "--all"]);
    let out = env.run(&["jobs", "drop", "reports", "r3"]);
    assert!(!out.status.success(), "r3 is queued, not stalled");
    let s = q.stats().await.unwrap();
    assert_eq!((s.queued, s.stalled), (2, 0), "{s:?}");
    assert!(!q.contains("r2").await.unwrap());
    daemon.stop(Duration::from_secs(20)).await;
}
