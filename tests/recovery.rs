//! Work survives losing Redis's copy of it: the reconciler re-queues from SQL what a flushed
//! Redis forgot, and the reaper returns a job whose consumer died holding it.

mod support;

use std::time::Duration;
use support::{Daemon, Env, Relay, send_mail};
use thwonk_thoonk::{INBOUND, JobQueue, OUTBOUND, PrivateRedis, Redis};

async fn flushall(redis: &Redis) {
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut redis.shared())
        .await
        .unwrap();
}

fn run_count(env: &Env, address: &str) -> usize {
    env.runs(address, None).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_lost_by_a_flushed_redis_is_requeued_from_sql() {
    let dir = tempfile::tempdir().unwrap();
    let server = PrivateRedis::start(
        "redis-server",
        &dir.path().join("r"),
        &dir.path().join("r.sock"),
    )
    .await
    .unwrap();
    let redis = Redis::connect(&server.url()).await.unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(&dir.path().join("data"), relay.addr, None);
    env.vars.push(("THWONK_REDIS_URL".into(), server.url()));
    env.vars
        .push(("THWONK_QUEUES_RECONCILE_INTERVAL_MS".into(), "300".into()));
    env.deploy("echo@example.org", "sandbox-scripts/echo.js");

    // Two messages stored and queued, then Redis forgets their jobs.
    let ingress = Daemon::start_role(&env, "ingress").await;
    for n in 1..=2 {
        send_mail(
            ingress.smtp,
            "ann@example.net",
            "echo@example.org",
            &format!("m{n}"),
            "x",
        )
        .await;
    }
    let inbound = JobQueue::new(&redis, INBOUND);
    assert_eq!(inbound.depth().await.unwrap(), 2);
    flushall(&redis).await;
    assert_eq!(inbound.depth().await.unwrap(), 0);

    // A runner re-queues them from SQL and runs them; no egress yet, so the replies wait as
    // outbox rows with outbound jobs, which Redis then forgets too.
    let runner = Daemon::start_role(&env, "runner").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while run_count(&env, "echo@example.org") < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lost messages never ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(JobQueue::new(&redis, OUTBOUND).depth().await.unwrap(), 2);
    flushall(&redis).await;

    let egress = Daemon::start_role(&env, "egress").await;
    let got = relay
        .wait_for("both replies", Duration::from_secs(30), |r| r.len() >= 2)
        .await;
    let mut subjects: Vec<String> = got.iter().map(|m| m.parsed().subject).collect();
    subjects.sort();
    assert_eq!(subjects, ["Re: m1", "Re: m2"]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(relay.received().len(), 2, "re-queueing sent nothing twice");
    assert_eq!(
        run_count(&env, "echo@example.org"),
        2,
        "and ran nothing twice"
    );

    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_consumer_died_holding_it_is_returned_by_the_reaper() {
    let dir = tempfile::tempdir().unwrap();
    let server = PrivateRedis::start(
        "redis-server",
        &dir.path().join("r"),
        &dir.path().join("r.sock"),
    )
    .await
    .unwrap();
    let redis = Redis::connect(&server.url()).await.unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(&dir.path().join("data"), relay.addr, None);
    env.vars.push(("THWONK_REDIS_URL".into(), server.url()));
    env.vars
        .push(("THWONK_QUEUES_VISIBILITY_MS".into(), "1000".into()));
    env.vars
        .push(("THWONK_QUEUES_REAPER_INTERVAL_MS".into(), "200".into()));
    env.deploy("echo@example.org", "sandbox-scripts/echo.js");

    let ingress = Daemon::start_role(&env, "ingress").await;
    send_mail(
        ingress.smtp,
        "ben@example.net",
        "echo@example.org",
        "held",
        "x",
    )
    .await;
    // A consumer claims the job and dies: it never finishes, cancels or retries it. The job's
    // item still exists, so only the reaper (not the reconciler) can bring it back.
    let dead = JobQueue::new(&redis, INBOUND);
    let job = dead
        .take(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the job");
    drop(dead);

    let runner = Daemon::start_role(&env, "runner").await;
    let egress = Daemon::start_role(&env, "egress").await;
    let got = relay
        .wait_for(
            "the reply to the abandoned message",
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;
    assert_eq!(got[0].parsed().subject, "Re: held");
    let reaped = runner
        .log()
        .iter()
        .chain(egress.log().iter())
        .any(|l| l.contains("reaper returned jobs") && l.contains("queue=inbound"));
    assert!(
        reaped,
        "the reaper, not something else, returned job {}",
        job.id
    );

    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    server.stop().await;
}
