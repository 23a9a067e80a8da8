//! Job queue events, dead letters and the reaper against a real redis-server.

mod common;

use common::*;
use std::collections::HashSet;
use std::time::Duration;
use thwonk_core::time::now_ms;
use thwonk_thoonk::{FailOutcome, JobQueue, Reaped, ReaperSettings, Subscription, ThoonkError};

const T: Duration = Duration::from_millis(200);

/// Take, giving delayed jobs time to come due (a take promotes them at most every 250 ms).
async fn take_eventually(q: &JobQueue) -> thwonk_thoonk::Job {
    for _ in 0..20 {
        if let Some(job) = q.take(Duration::from_millis(100)).await.unwrap() {
            return job;
        }
    }
    panic!("no job came due");
}

fn settings(visibility_ms: u64, max_attempts: u32) -> ReaperSettings {
    ReaperSettings {
        visibility_ms,
        max_attempts,
        interval_ms: 20,
    }
}

#[tokio::test]
async fn every_job_change_is_announced() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "work");
    let mut sub = Subscription::jobs(&f.redis, "work").await.unwrap();
    q.publish("a", "{}").await.unwrap();
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("publish", "a", None)
    );
    q.take(T).await.unwrap().unwrap();
    assert_eq!(ev(&next_event(&mut sub).await), kind_id("claim", "a", None));
    q.cancel("a").await.unwrap();
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("cancel", "a", None)
    );
    q.take(T).await.unwrap().unwrap();
    next_event(&mut sub).await;
    q.stall("a", "poison").await.unwrap();
    assert_eq!(ev(&next_event(&mut sub).await), kind_id("stall", "a", None));
    q.retry("a").await.unwrap();
    assert_eq!(ev(&next_event(&mut sub).await), kind_id("retry", "a", None));
    q.take(T).await.unwrap().unwrap();
    next_event(&mut sub).await;
    q.retry_at("a", now_ms() + 10, "later").await.unwrap();
    assert_eq!(ev(&next_event(&mut sub).await), kind_id("delay", "a", None));
    tokio::time::sleep(Duration::from_millis(300)).await;
    q.take(T).await.unwrap().unwrap();
    next_event(&mut sub).await;
    q.finish("a", Some("ok")).await.unwrap();
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("finish", "a", Some("ok"))
    );
}

#[tokio::test]
async fn stall_retry_and_retract_move_a_job_between_states() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "work");
    q.publish("a", "pa").await.unwrap();
    q.publish("b", "pb").await.unwrap();
    q.take(T).await.unwrap().unwrap();
    q.stall("a", "it broke").await.unwrap();
    assert!(matches!(
        q.stall("a", "").await,
        Err(ThoonkError::NotClaimed(_))
    ));
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.queued, stats.claimed, stats.stalled), (1, 0, 1));
    let stalled = q.stalled(10).await.unwrap();
    assert_eq!(stalled.len(), 1);
    assert_eq!(stalled[0].id, "a");
    assert_eq!(stalled[0].payload.as_deref(), Some("pa"));
    assert_eq!(stalled[0].error.as_deref(), Some("it broke"));

    q.retry("a").await.unwrap();
    assert!(matches!(
        q.retry("a").await,
        Err(ThoonkError::NotStalled(_))
    ));
    assert_eq!(
        q.take(T).await.unwrap().unwrap().id,
        "b",
        "retried at the tail"
    );
    assert_eq!(q.take(T).await.unwrap().unwrap().id, "a");

    // Retract from any state: claimed here, queued for c.
    q.publish("c", "pc").await.unwrap();
    assert!(q.retract("a").await.unwrap());
    assert!(q.retract("c").await.unwrap());
    assert!(!q.retract("c").await.unwrap());
    assert!(!q.contains("a").await.unwrap());
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.queued, stats.claimed, stats.stalled),
        (0, 1, 0),
        "{stats:?}"
    );
    assert!(matches!(
        q.finish("a", None).await,
        Err(ThoonkError::NotClaimed(_))
    ));
}

#[tokio::test]
async fn fail_backs_off_then_stalls_with_the_last_error() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "work");
    q.publish("a", "p").await.unwrap();
    let mut dues = Vec::new();
    for attempt in 1..=3 {
        let job = take_eventually(&q).await;
        let before = now_ms();
        match q
            .fail(&job.id, &format!("error {attempt}"), 50, 80, 3)
            .await
            .unwrap()
        {
            FailOutcome::Delayed { attempt: a, due_ms } => {
                assert_eq!(a, attempt);
                dues.push(due_ms - before);
            }
            FailOutcome::Stalled { attempt: a } => {
                assert_eq!((a, attempt), (3, 3));
            }
        }
    }
    assert!(dues[0] >= 50 && dues[0] < 70, "{dues:?}");
    assert!(dues[1] >= 80 && dues[1] < 100, "doubled, capped: {dues:?}");
    let stalled = q.stalled(10).await.unwrap();
    assert_eq!(stalled[0].attempts, 3);
    assert_eq!(stalled[0].error.as_deref(), Some("error 3"));
    // The queue's own job.config overrides the caller's max_attempts.
    let _: i64 = raw(&f.redis, &["HSET", "job.config:work", "max_attempts", "1"]).await;
    q.publish("b", "p").await.unwrap();
    q.take(T).await.unwrap().unwrap();
    assert_eq!(
        q.fail("b", "x", 10, 10, 5).await.unwrap(),
        FailOutcome::Stalled { attempt: 1 }
    );
}

#[tokio::test]
async fn a_consumer_that_dies_after_claiming_loses_no_job() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "work");
    q.publish("a", "p").await.unwrap();
    {
        // This consumer takes the job and vanishes without finishing.
        let dying = JobQueue::new(&f.redis, "work");
        assert_eq!(dying.take(T).await.unwrap().unwrap().id, "a");
    }
    let s = settings(100, 3);
    assert_eq!(
        q.reap(now_ms(), &s).await.unwrap(),
        Reaped::default(),
        "not yet"
    );
    assert_eq!(
        q.reap(now_ms() + 150, &s).await.unwrap(),
        Reaped {
            requeued: 1,
            ..Default::default()
        }
    );
    let again = q.take(T).await.unwrap().expect("back in the queue");
    assert_eq!(again.id, "a");
    q.finish("a", None).await.unwrap();
}

#[tokio::test]
async fn a_consumer_killed_between_take_and_claim_loses_no_job() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "work");
    q.publish("a", "p").await.unwrap();
    // The take's first half, then death: the id is parked in job.claiming.
    let _: String = raw(
        &f.redis,
        &[
            "LMOVE",
            "job.ids:work",
            "job.claiming:work",
            "RIGHT",
            "LEFT",
        ],
    )
    .await;
    let s = settings(100, 3);
    let t0 = now_ms();
    assert_eq!(q.reap(t0, &s).await.unwrap().recovered, 0, "first sighting");
    assert_eq!(q.reap(t0 + 50, &s).await.unwrap().recovered, 0);
    assert_eq!(q.reap(t0 + 100, &s).await.unwrap().recovered, 1);
    assert_eq!(q.take(T).await.unwrap().unwrap().id, "a");
    let since: i64 = raw(&f.redis, &["HLEN", "job.claiming_since:work"]).await;
    assert_eq!(since, 0, "notes are cleaned up");
    // A consumer that was only slow, not dead, finds its job gone and claims nothing.
    q.finish("a", None).await.unwrap();
    q.publish("b", "p").await.unwrap();
    let _: String = raw(
        &f.redis,
        &[
            "LMOVE",
            "job.ids:work",
            "job.claiming:work",
            "RIGHT",
            "LEFT",
        ],
    )
    .await;
    q.reap(t0, &s).await.unwrap();
    q.reap(t0 + 100, &s).await.unwrap();
    let other = JobQueue::new(&f.redis, "work");
    assert_eq!(other.take(T).await.unwrap().unwrap().id, "b");
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.claiming, stats.claimed), (0, 1));
}

#[tokio::test]
async fn the_reaper_stalls_a_job_after_max_attempts_with_the_reason() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "work");
    q.publish("poison", "p").await.unwrap();
    let s = settings(10, 2);
    let mut sub = Subscription::jobs(&f.redis, "work").await.unwrap();
    for attempt in 1..=2 {
        q.take(T).await.unwrap().expect("available");
        next_event(&mut sub).await; // claim
        let r = q.reap(now_ms() + 20, &s).await.unwrap();
        if attempt == 1 {
            assert_eq!(r.requeued, 1);
            assert_eq!(
                ev(&next_event(&mut sub).await),
                kind_id("cancel", "poison", None)
            );
        } else {
            assert_eq!(r.stalled, 1);
            assert_eq!(
                ev(&next_event(&mut sub).await),
                kind_id("stall", "poison", None)
            );
        }
    }
    assert!(q.take(T).await.unwrap().is_none());
    let stalled = q.stalled(10).await.unwrap();
    assert_eq!(stalled[0].attempts, 2);
    assert!(
        stalled[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not finished within 10 ms"),
        "{stalled:?}"
    );
}

#[tokio::test]
async fn the_reaper_task_runs_over_every_registered_queue() {
    let f = fixture().await;
    for name in ["one", "two"] {
        let q = JobQueue::new(&f.redis, name);
        q.publish("j", "p").await.unwrap();
        q.take(T).await.unwrap().unwrap();
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(thwonk_thoonk::reaper::run(
        f.redis.clone(),
        settings(50, 5),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap();
    for name in ["one", "two"] {
        let stats = JobQueue::new(&f.redis, name).stats().await.unwrap();
        assert_eq!((stats.queued, stats.claimed), (1, 0), "{name}: {stats:?}");
    }
}

#[tokio::test]
async fn consumers_racing_a_reaper_never_hold_one_job_at_once_and_lose_none() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "work");
    let n = 200;
    for i in 0..n {
        q.publish(&format!("j{i:04}"), "x").await.unwrap();
    }
    let stop = tokio_util::sync::CancellationToken::new();
    // An aggressive reaper: claims older than 100 ms are presumed dead.
    let reaper = tokio::spawn(thwonk_thoonk::reaper::run(
        f.redis.clone(),
        settings(100, 1_000),
        stop.clone(),
    ));
    let held = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let q = q.clone();
        let held = held.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(job) = q.take(Duration::from_millis(300)).await.unwrap() {
                assert!(
                    held.lock().unwrap().insert(job.id.clone()),
                    "two consumers hold {}",
                    job.id
                );
                tokio::task::yield_now().await;
                held.lock().unwrap().remove(&job.id);
                // Every fifth job the consumer "dies" holding it: it never finishes it.
                if done.len() % 5 == 4 {
                    done.push(String::new());
                    continue;
                }
                if q.finish(&job.id, None).await.is_ok() {
                    done.push(job.id);
                }
            }
            done
        }));
    }
    let mut finished = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            if !id.is_empty() {
                finished.insert(id);
            }
        }
    }
    // Whatever was abandoned comes back; drain it.
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match q.take(Duration::from_millis(300)).await.unwrap() {
            Some(job) => {
                q.finish(&job.id, None).await.unwrap();
                finished.insert(job.id);
            }
            None if q.stats().await.unwrap().claimed == 0 => break,
            None => {}
        }
    }
    stop.cancel();
    reaper.await.unwrap();
    assert_eq!(finished.len(), n, "every job finished at least once");
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.queued, stats.claimed, stats.claiming, stats.stalled),
        (0, 0, 0, 0)
    );
}
