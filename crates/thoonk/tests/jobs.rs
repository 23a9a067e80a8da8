//! The job queue against a real, private redis-server.

use std::collections::HashSet;
use std::time::Duration;
use thwonk_thoonk::{JobQueue, PrivateRedis, Redis, ThoonkError};

struct Fixture {
    _dir: tempfile::TempDir,
    server: PrivateRedis,
    redis: Redis,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let server = PrivateRedis::start("redis-server", dir.path(), &dir.path().join("r.sock"))
        .await
        .expect("redis-server must be installed for these tests");
    let redis = Redis::connect(&server.url()).await.unwrap();
    Fixture {
        _dir: dir,
        server,
        redis,
    }
}

const T: Duration = Duration::from_millis(200);

#[tokio::test]
async fn publish_take_finish_round_trip_in_fifo_order() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "inbound");
    for i in 0..5 {
        assert!(q.publish(&format!("j{i}"), &format!("p{i}")).await.unwrap());
    }
    assert_eq!(q.depth().await.unwrap(), 5);
    for i in 0..5 {
        let job = q.take(T).await.unwrap().expect("a job");
        assert_eq!(job.id, format!("j{i}"));
        assert_eq!(job.payload, format!("p{i}"));
        q.finish(&job.id, None).await.unwrap();
        assert!(!q.contains(&job.id).await.unwrap());
    }
    assert!(q.take(T).await.unwrap().is_none());
    let mut c = f.redis.shared();
    let finishes: i64 = redis::cmd("GET")
        .arg("job.finishes:inbound")
        .query_async(&mut c)
        .await
        .unwrap();
    let publishes: i64 = redis::cmd("GET")
        .arg("job.publishes:inbound")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((publishes, finishes), (5, 5));
    let registered: bool = redis::cmd("SISMEMBER")
        .arg("jobs")
        .arg("inbound")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(registered);
    f.server.stop().await;
}

#[tokio::test]
async fn publishing_an_id_twice_queues_it_once() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "q");
    assert!(q.publish("a", "1").await.unwrap());
    assert!(!q.publish("a", "2").await.unwrap());
    assert_eq!(q.depth().await.unwrap(), 1);
    let job = q.take(T).await.unwrap().unwrap();
    assert_eq!(job.payload, "2", "the later payload wins");
    // Claimed: a publish now does not queue it again either.
    assert!(!q.publish("a", "3").await.unwrap());
    assert_eq!(q.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn finishing_an_unclaimed_job_is_an_error() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "q");
    q.publish("a", "1").await.unwrap();
    let e = q.finish("a", None).await.unwrap_err();
    assert!(
        matches!(e, ThoonkError::NotClaimed(ref id) if id == "a"),
        "{e}"
    );
    let job = q.take(T).await.unwrap().unwrap();
    q.finish(&job.id, Some("done")).await.unwrap();
    assert!(matches!(
        q.finish("a", None).await,
        Err(ThoonkError::NotClaimed(_))
    ));
}

#[tokio::test]
async fn cancel_puts_a_job_back_at_the_head() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "q");
    q.publish("a", "1").await.unwrap();
    q.publish("b", "2").await.unwrap();
    let a = q.take(T).await.unwrap().unwrap();
    assert_eq!(a.id, "a");
    q.cancel("a").await.unwrap();
    assert_eq!(
        q.take(T).await.unwrap().unwrap().id,
        "a",
        "cancelled job is taken next"
    );
    let mut c = f.redis.shared();
    let n: i64 = redis::cmd("HGET")
        .arg("job.cancelled:q")
        .arg("a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn retry_at_hides_a_job_until_it_is_due() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "q");
    q.publish("a", "1").await.unwrap();
    let a = q.take(T).await.unwrap().unwrap();
    let due = thwonk_core::time::now_ms() + 600;
    q.retry_at(&a.id, due, "451 try later").await.unwrap();
    assert!(q.contains("a").await.unwrap(), "a delayed job still exists");
    assert!(q.take(T).await.unwrap().is_none(), "not yet due");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let again = q
        .take(Duration::from_secs(1))
        .await
        .unwrap()
        .expect("due now");
    assert_eq!(again.id, "a");
    let mut c = f.redis.shared();
    let err: Option<String> = redis::cmd("HGET")
        .arg("job.errors:q")
        .arg("a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(err.as_deref(), Some("451 try later"));
    q.finish("a", None).await.unwrap();
    let err: Option<String> = redis::cmd("HGET")
        .arg("job.errors:q")
        .arg("a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(err, None);
}

#[tokio::test]
async fn concurrent_consumers_never_hold_the_same_job() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "q");
    let n = 300;
    for i in 0..n {
        q.publish(&format!("j{i:04}"), "x").await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(job) = q.take(T).await.unwrap() {
                q.finish(&job.id, None).await.unwrap();
                got.push(job.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), n, "every job taken exactly once");
    assert_eq!(distinct.len(), n);
}

#[tokio::test]
async fn a_consumer_killed_between_take_and_claim_leaves_the_job_recoverable() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "q");
    q.publish("a", "1").await.unwrap();
    // What `take` does first, and then a crash before the claim script runs.
    let mut c = f.redis.shared();
    let id: String = redis::cmd("LMOVE")
        .arg("job.ids:q")
        .arg("job.claiming:q")
        .arg("RIGHT")
        .arg("LEFT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(id, "a");
    let claiming: Vec<String> = redis::cmd("LRANGE")
        .arg("job.claiming:q")
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(claiming, vec!["a"], "the id is parked, not lost");
    assert!(q.contains("a").await.unwrap());
}

#[tokio::test]
async fn a_private_server_left_running_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("r.sock");
    let first = PrivateRedis::start("redis-server", dir.path(), &sock)
        .await
        .unwrap();
    let r = Redis::connect(&first.url()).await.unwrap();
    JobQueue::new(&r, "q").publish("kept", "1").await.unwrap();
    // The daemon "dies" without stopping its child: forget the handle without killing.
    std::mem::forget(first);
    let second = PrivateRedis::start("redis-server", dir.path(), &sock)
        .await
        .unwrap();
    let r = Redis::connect(&second.url()).await.unwrap();
    assert!(
        JobQueue::new(&r, "q").contains("kept").await.unwrap(),
        "the append-only file kept the job"
    );
    second.stop().await;
}

#[tokio::test]
async fn a_missing_redis_server_binary_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = PrivateRedis::start("no-such-redis-server", dir.path(), &dir.path().join("s"))
        .await
        .err()
        .expect("must fail");
    assert!(
        e.to_string().contains("apt-get install redis-server"),
        "{e}"
    );
}

#[tokio::test]
async fn a_private_server_starts_from_a_relative_data_dir() {
    // The default data_dir is `./data`: relative paths must survive redis-server's chdir.
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::env::current_dir().unwrap();
    let rel_dir = pathdiff(dir.path(), &cwd);
    let server = PrivateRedis::start("redis-server", &rel_dir, &rel_dir.join("redis.sock"))
        .await
        .expect("starts with relative paths");
    let r = Redis::connect(&server.url()).await.unwrap();
    JobQueue::new(&r, "q").publish("a", "1").await.unwrap();
    assert!(
        dir.path().join("redis.log").exists(),
        "the log is in the data dir"
    );
    server.stop().await;
}

/// `path` relative to `base` (both absolute), with `..` as needed.
fn pathdiff(path: &std::path::Path, base: &std::path::Path) -> std::path::PathBuf {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}

#[tokio::test]
async fn a_reply_reaches_the_one_waiter_of_its_job_and_then_expires() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "inbound");
    q.publish("r1", "p").await.unwrap();
    q.publish("r2", "p").await.unwrap();
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.wait_reply("r1", Duration::from_secs(10)).await })
    };
    let r1 = q.take(T).await.unwrap().unwrap();
    q.finish_with_reply(&r1.id, "value one", 60_000)
        .await
        .unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().as_deref(), Some("value one"));
    // Another job's reply is not this one's; nothing waits forever.
    let r2 = q.take(T).await.unwrap().unwrap();
    q.finish_with_reply(&r2.id, "value two", 100).await.unwrap();
    assert_eq!(q.wait_reply("r1", T).await.unwrap(), None);
    // Nobody took r2's reply: it is gone after its time to live.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(q.wait_reply("r2", T).await.unwrap(), None);
    // A plain finish leaves no reply.
    q.publish("r3", "p").await.unwrap();
    let r3 = q.take(T).await.unwrap().unwrap();
    q.finish(&r3.id, Some("x")).await.unwrap();
    assert_eq!(q.wait_reply("r3", T).await.unwrap(), None);
}

#[tokio::test]
async fn withdraw_removes_a_waiting_job_but_never_a_taken_one() {
    let f = fixture().await;
    let q = JobQueue::new(&f.redis, "inbound");
    q.publish("w1", "p").await.unwrap();
    q.publish("w2", "p").await.unwrap();
    q.publish("w3", "p").await.unwrap();
    let taken = q.take(T).await.unwrap().unwrap();
    assert_eq!(taken.id, "w1");
    assert!(!q.withdraw("w1").await.unwrap(), "claimed: left alone");
    assert!(q.contains("w1").await.unwrap());
    assert!(q.withdraw("w2").await.unwrap());
    assert!(!q.contains("w2").await.unwrap());
    // Delayed for a retry counts as waiting.
    let w3 = q.take(T).await.unwrap().unwrap();
    assert_eq!(w3.id, "w3");
    q.retry_at("w3", i64::MAX / 2, "busy").await.unwrap();
    assert!(q.withdraw("w3").await.unwrap());
    assert!(!q.contains("w3").await.unwrap());
    assert!(!q.withdraw("nope").await.unwrap());
    assert_eq!(q.depth().await.unwrap(), 0);
    q.finish("w1", None).await.unwrap();
}
