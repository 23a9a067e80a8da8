//! Script jobs between SQL and Redis: committed with their run and published after it (a
//! failed run's jobs never), published later when Redis was away, a worker's finish or a dead
//! letter turned into one `onJobResult` job, the sweep that catches endings nobody heard, and
//! the commit guard that takes a job's result once. Real SQLite, real redis-server.

use std::time::Duration;
use thwonk_control::jobs::{InboundJob, JobResultJob};
use thwonk_control::script_jobs::{
    LOST_RESULT, new_script_jobs, publish_after_commit, publish_unpublished, queue_result,
    result_for_event, sweep_once,
};
use thwonk_core::run::{JobPublish, RunStatus};
use thwonk_core::time::now_ms;
use thwonk_store::{CommitResult, RunCommit, RunJobs, RunRecord, Store, Thwonk};
use thwonk_thoonk::{INBOUND, JobQueue, PrivateRedis, Redis, Subscription};

fn commit(thwonk_id: &str, status: RunStatus, jobs: RunJobs) -> RunCommit {
    RunCommit {
        run: RunRecord {
            id: thwonk_core::ids::new_id(),
            thwonk_id: thwonk_id.into(),
            message_id: None,
            trigger: thwonk_core::status::TriggerKind::Request,
            script_version: 1,
            status,
            error_kind: None,
            error_message: None,
            error_stack: None,
            logs: vec![],
            logs_truncated: false,
            instructions: 1,
            wall_ms: 1,
            started_at_ms: 1,
            finished_at_ms: 2,
        },
        vfs: vec![],
        outbox: vec![],
        feed_ops: vec![],
        schedule_tick_ms: None,
        jobs,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Store,
    server: Option<PrivateRedis>,
    redis: Redis,
    thwonk: Thwonk,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()), 2)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let thwonk = store
        .deploy_script(
            &thwonk_core::Address::parse("list@x.org").unwrap(),
            "x",
            None,
        )
        .await
        .unwrap()
        .thwonk;
    let server = PrivateRedis::start("redis-server", dir.path(), &dir.path().join("r.sock"))
        .await
        .unwrap();
    let redis = Redis::connect(&server.url()).await.unwrap();
    Setup {
        _dir: dir,
        store,
        server: Some(server),
        redis,
        thwonk,
    }
}

/// A run of `s.thwonk` publishing `payloads` on the script's queue `shout`; its job rows.
async fn publishing_run(
    s: &Setup,
    status: RunStatus,
    payloads: &[&str],
) -> Vec<thwonk_store::NewScriptJob> {
    let c = commit(&s.thwonk.id, status, RunJobs::default());
    let publishes: Vec<JobPublish> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| JobPublish {
            queue: "shout".into(),
            id: format!("{}.j{}", c.run.id, i + 1),
            payload: p.to_string(),
        })
        .collect();
    let jobs = new_script_jobs(&s.thwonk, &publishes);
    let c = RunCommit {
        jobs: RunJobs {
            publish: jobs.clone(),
            result_of: None,
        },
        ..c
    };
    assert_eq!(
        s.store.commit_run(&c).await.unwrap(),
        CommitResult::Committed
    );
    jobs
}

/// The `onJobResult` job queued on `inbound` for `job_id`.
async fn queued_result(redis: &Redis, job_id: &str) -> Option<JobResultJob> {
    let inbound = JobQueue::new(redis, INBOUND);
    let id = format!("job-result/{job_id}");
    let job = inbound.take(Duration::from_millis(200)).await.unwrap()?;
    assert_eq!(job.id, id);
    inbound.finish(&job.id, None).await.unwrap();
    match InboundJob::decode(&job.payload).unwrap() {
        InboundJob::JobResult(r) => Some(r),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn jobs_commit_with_their_run_and_reach_their_queue_under_the_address() {
    let mut s = setup().await;
    let queue = JobQueue::new(&s.redis, "list@x.org/shout");

    // A failed run records none; a committed one records its jobs, published after it.
    let failed = publishing_run(&s, RunStatus::Error, &["lost"]).await;
    assert!(s.store.script_job(&failed[0].id).await.unwrap().is_none());
    let jobs = publishing_run(&s, RunStatus::Ok, &["a", "b"]).await;
    assert_eq!(jobs[0].thoonk_queue, "list@x.org/shout");
    publish_after_commit(&s.store, &s.redis, &jobs).await;
    assert_eq!(queue.depth().await.unwrap(), 2);
    let row = s.store.script_job(&jobs[0].id).await.unwrap().unwrap();
    assert!(row.published_at_ms.is_some());

    // Redis away at the commit: the job waits in SQL and the retry pass publishes it.
    s.server.take().unwrap().stop().await;
    let later = publishing_run(&s, RunStatus::Ok, &["c"]).await;
    publish_after_commit(&s.store, &s.redis, &later).await;
    let row = s.store.script_job(&later[0].id).await.unwrap().unwrap();
    assert_eq!(row.published_at_ms, None, "kept, not lost");
    let server = PrivateRedis::start("redis-server", s._dir.path(), &s._dir.path().join("r.sock"))
        .await
        .unwrap();
    let mut published = 0;
    for _ in 0..50 {
        match publish_unpublished(&s.store, &s.redis, now_ms() + 1).await {
            Ok(n) => {
                published = n;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(published, 1);
    assert!(queue.contains(&later[0].id).await.unwrap());
    assert_eq!(
        publish_unpublished(&s.store, &s.redis, now_ms() + 1)
            .await
            .unwrap(),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn a_finish_or_a_dead_letter_becomes_one_result_and_the_sweep_finds_the_unheard() {
    let mut s = setup().await;
    let jobs = publishing_run(&s, RunStatus::Ok, &["one", "two", "three", "four"]).await;
    publish_after_commit(&s.store, &s.redis, &jobs).await;
    let queue = JobQueue::new(&s.redis, "list@x.org/shout");
    let mut sub = Subscription::patterns(
        &s.redis,
        &[
            "event.job.finish:*/*".to_string(),
            "event.job.stall:*/*".to_string(),
        ],
    )
    .await
    .unwrap();

    // 1. A worker finishes it: the event names the job and carries the result.
    let one = queue.take(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(one.payload, "one");
    queue.finish(&one.id, Some(r#"{"n":1}"#)).await.unwrap();
    let event = sub.next().await.unwrap();
    let result = result_for_event(&s.store, &s.redis, &event)
        .await
        .unwrap()
        .expect("a script job's finish");
    assert_eq!(
        (
            result.status.as_str(),
            result.result.as_deref(),
            result.queue.as_str()
        ),
        ("ok", Some(r#"{"n":1}"#), "shout")
    );
    queue_result(&s.redis, &result).await.unwrap();
    queue_result(&s.redis, &result).await.unwrap();
    let queued = queued_result(&s.redis, &one.id).await.unwrap();
    assert_eq!(queued, result);
    assert!(
        queued_result(&s.redis, &one.id).await.is_none(),
        "queued once"
    );

    // Its onJobResult run commits once: a second run for the same result is refused.
    let taking = |job_id: &str| {
        commit(
            &s.thwonk.id,
            RunStatus::Ok,
            RunJobs {
                publish: vec![],
                result_of: Some(job_id.to_string()),
            },
        )
    };
    assert_eq!(
        s.store.commit_run(&taking(&one.id)).await.unwrap(),
        CommitResult::Committed
    );
    assert_eq!(
        s.store.commit_run(&taking(&one.id)).await.unwrap(),
        CommitResult::AlreadyProcessed
    );
    assert!(
        result_for_event(&s.store, &s.redis, &event)
            .await
            .unwrap()
            .is_none(),
        "a result already taken is not queued again"
    );

    // 2. A dead letter comes back as an error with the job's last error.
    let two = queue.take(Duration::from_secs(1)).await.unwrap().unwrap();
    queue.stall(&two.id, "cannot shout").await.unwrap();
    let event = sub.next().await.unwrap();
    let result = result_for_event(&s.store, &s.redis, &event)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (result.status.as_str(), result.error.as_deref()),
        ("error", Some("cannot shout"))
    );

    // 3 and 4 end while nobody listens: one finished with a reply, one without.
    drop(sub);
    let three = queue.take(Duration::from_secs(1)).await.unwrap().unwrap();
    queue
        .finish_with_reply(&three.id, "THREE", 60_000)
        .await
        .unwrap();
    let four = queue.take(Duration::from_secs(1)).await.unwrap().unwrap();
    queue.finish(&four.id, Some("FOUR")).await.unwrap();

    // The sweep: two, three and four have no result taken; one has.
    let swept = sweep_once(&s.store, &s.redis, now_ms() + 1).await.unwrap();
    assert_eq!(swept, 3);
    let two_r = queued_result(&s.redis, &two.id).await.unwrap();
    assert_eq!(two_r.error.as_deref(), Some("cannot shout"));
    let three_r = queued_result(&s.redis, &three.id).await.unwrap();
    assert_eq!(
        (three_r.status.as_str(), three_r.result.as_deref()),
        ("ok", Some("THREE"))
    );
    let four_r = queued_result(&s.redis, &four.id).await.unwrap();
    assert_eq!(
        (four_r.status.as_str(), four_r.error.as_deref()),
        ("error", Some(LOST_RESULT))
    );

    // Not Thwonk's queues, not unknown ids.
    let not_ours = thwonk_thoonk::events::parse_event("event.job.finish:inbound", "x\0y").unwrap();
    assert!(
        result_for_event(&s.store, &s.redis, &not_ours)
            .await
            .unwrap()
            .is_none()
    );
    s.server.take().unwrap().stop().await;
}
