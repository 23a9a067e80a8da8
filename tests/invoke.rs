//! HTTP invoke through the runner: `thwonk_control::invoke::invoke` queues a request job, a
//! runner running in this process (its scripts in real sandbox workers of the `thwonk`
//! binary) runs `onRequest` under the thwonk's lease, commits once, and answers over Redis.
//! Real redis-server, real SQLite, and PostgreSQL when `THWONK_TEST_POSTGRES_URL` is set.

mod support;

use std::sync::Arc;
use std::time::Duration;
use thwonk_control::invoke::{InvokeError, RequestJob, invoke};
use thwonk_core::run::RunStatus;
use thwonk_core::status::{MessageStatus, ThwonkStatus, TriggerKind};
use thwonk_core::{Address, Config};
use thwonk_store::{NewMessage, Store, Thwonk};
use thwonk_thoonk::{INBOUND, JobQueue, OUTBOUND, PrivateRedis, Redis};
use tokio_util::sync::CancellationToken;

/// Long enough for a cold worker on a loaded machine; a passing test never waits it out.
const WAIT: Duration = Duration::from_secs(30);

const COUNTER: &str = r#"
export function onMessage(msg, thwonk) {
  const seen = thwonk.files.readJSON("seen.json") ?? [];
  seen.push(msg.subject);
  thwonk.files.writeJSON("seen.json", seen);
}
export function onRequest(req, thwonk) {
  const seen = thwonk.files.readJSON("seen.json") ?? [];
  seen.push("request " + req.body.n);
  thwonk.files.writeJSON("seen.json", seen);
  if (req.body.mail) {
    thwonk.send({ to: "bob@example.net", subject: "from a request", text: "hi" });
  }
  if (req.body.fail) {
    throw new Error("refused: " + req.body.fail);
  }
  return { seen, echo: req.body, now: thwonk.now() };
}
"#;

struct Fixture {
    dir: tempfile::TempDir,
    server: Option<PrivateRedis>,
    redis: Redis,
    store: Store,
    pg: Option<thwonk_store::scratch::ScratchDb>,
    runner: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Fixture {
    async fn new(postgres: bool) -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = if postgres {
            let base = std::env::var("THWONK_TEST_POSTGRES_URL").ok()?;
            let db = thwonk_store::scratch::scratch_postgres_url(&base)
                .await
                .expect("a scratch PostgreSQL database");
            (db.url().to_string(), Some(db))
        } else {
            (format!("sqlite://{}/t.db", dir.path().display()), None)
        };
        let store = Store::connect(&url, 4).await.unwrap();
        store.migrate().await.unwrap();
        let server = PrivateRedis::start("redis-server", dir.path(), &dir.path().join("r.sock"))
            .await
            .expect("redis-server must be installed for these tests");
        let redis = Redis::connect(&server.url()).await.unwrap();
        Some(Fixture {
            dir,
            server: Some(server),
            redis,
            store,
            pg,
            runner: None,
        })
    }

    async fn thwonk(&self, address: &str, source: &str) -> Thwonk {
        self.store
            .deploy_script(&Address::parse(address).unwrap(), source, None)
            .await
            .unwrap()
            .thwonk
    }

    fn start_runner(&mut self) {
        let config = Config {
            data_dir: self.dir.path().to_path_buf(),
            runner: thwonk_core::config::RunnerConfig {
                concurrency: 2,
                ..Default::default()
            },
            ..Default::default()
        };
        let pool = thwonk_sandbox::WorkerPool::with_program(support::THWONK, 2, 256);
        let runner = thwonk_runner::Runner::with_pool(
            self.store.clone(),
            self.redis.clone(),
            Arc::new(config),
            pool,
        );
        let token = CancellationToken::new();
        let task = tokio::spawn(runner.run(token.clone()));
        self.runner = Some((token, task));
    }

    /// Store a message for the thwonk; with `queue`, also queue its inbound job.
    async fn mail(&self, thwonk: &Thwonk, subject: &str, queue: bool) -> String {
        let raw = format!("From: a@example.net\r\nSubject: {subject}\r\n\r\nbody\r\n");
        let id = self
            .store
            .insert_messages(&[NewMessage {
                thwonk_id: thwonk.id.clone(),
                mail_from: "a@example.net".into(),
                rcpt_to: vec![thwonk.address.to_string()],
                raw: raw.into_bytes().into(),
                received_at_ms: thwonk_core::time::now_ms(),
            }])
            .await
            .unwrap()
            .remove(0);
        if queue {
            JobQueue::new(&self.redis, INBOUND)
                .publish(&id, &thwonk_thoonk::inbound_payload(&id, &thwonk.id))
                .await
                .unwrap();
        }
        id
    }

    async fn seen(&self, thwonk: &Thwonk) -> serde_json::Value {
        let bytes = self
            .store
            .read_file(&thwonk.id, "seen.json")
            .await
            .unwrap()
            .unwrap_or_else(|| b"null".to_vec());
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn finish(mut self) {
        if let Some((token, task)) = self.runner.take() {
            token.cancel();
            task.await.unwrap();
        }
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.store.close().await;
        if let Some(db) = self.pg.take() {
            db.cleanup().await.unwrap();
        }
    }
}

async fn returns_the_value_and_commits_effects_once(postgres: bool) {
    let Some(mut f) = Fixture::new(postgres).await else {
        return;
    };
    let t = f.thwonk("svc@example.org", COUNTER).await;
    f.start_runner();
    let first = invoke(
        &f.store,
        &f.redis,
        &t.id,
        serde_json::json!({"n": 1, "mail": true}),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(first.status, RunStatus::Ok, "{:?}", first.error);
    let value = first.value.clone().expect("onRequest's value");
    assert_eq!(value["seen"], serde_json::json!(["request 1"]));
    assert_eq!(value["echo"], serde_json::json!({"n": 1, "mail": true}));
    assert!(value["now"].as_i64().unwrap() > 0);

    let second = invoke(&f.store, &f.redis, &t.id, serde_json::json!({"n": 2}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        second.value.unwrap()["seen"],
        serde_json::json!(["request 1", "request 2"])
    );
    assert_ne!(first.run_id, second.run_id);
    assert_eq!(
        f.seen(&t).await,
        serde_json::json!(["request 1", "request 2"])
    );

    // Recorded as request runs; the send became one outbox row, queued for egress.
    let runs = f.store.list_runs(&t.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.trigger == TriggerKind::Request && r.status == RunStatus::Ok)
    );
    assert!(runs.iter().any(|r| r.id == first.run_id));
    let queued = f.store.queued_outbox_ids().await.unwrap();
    assert_eq!(queued.len(), 1);
    let row = f.store.outbox(&queued[0]).await.unwrap().unwrap();
    assert_eq!(row.run_id, first.run_id);
    assert!(
        JobQueue::new(&f.redis, OUTBOUND)
            .contains(&queued[0])
            .await
            .unwrap()
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_returns_the_scripts_value_and_commits_its_effects_sqlite() {
    returns_the_value_and_commits_effects_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_returns_the_scripts_value_and_commits_its_effects_postgres() {
    returns_the_value_and_commits_effects_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_runs_after_the_mail_that_arrived_before_it() {
    let mut f = Fixture::new(false).await.unwrap();
    let t = f.thwonk("svc@example.org", COUNTER).await;
    // Stored, but its job not queued yet: only arrival order can put it before the request.
    let early = f.mail(&t, "early", false).await;
    f.start_runner();
    let out = invoke(&f.store, &f.redis, &t.id, serde_json::json!({"n": 1}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        out.value.unwrap()["seen"],
        serde_json::json!(["early", "request 1"])
    );
    assert_eq!(
        f.store.message(&early).await.unwrap().unwrap().status,
        MessageStatus::Processed
    );
    let late = f.mail(&t, "late", true).await;
    let start = std::time::Instant::now();
    while f.store.message(&late).await.unwrap().unwrap().status == MessageStatus::Queued {
        assert!(start.elapsed() < WAIT, "the late message was never run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        f.seen(&t).await,
        serde_json::json!(["early", "request 1", "late"])
    );
    // The early message's own job comes later and finds nothing to do.
    JobQueue::new(&f.redis, INBOUND)
        .publish(&early, &thwonk_thoonk::inbound_payload(&early, &t.id))
        .await
        .unwrap();
    let _ = invoke(&f.store, &f.redis, &t.id, serde_json::json!({"n": 2}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        f.seen(&t).await,
        serde_json::json!(["early", "request 1", "late", "request 2"])
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_runner_invoke_times_out_and_its_job_is_withdrawn() {
    let f = Fixture::new(false).await.unwrap();
    let t = f.thwonk("svc@example.org", COUNTER).await;
    let err = invoke(
        &f.store,
        &f.redis,
        &t.id,
        serde_json::json!({"n": 1}),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, InvokeError::Timeout), "{err}");
    let stats = JobQueue::new(&f.redis, INBOUND).stats().await.unwrap();
    assert_eq!(stats.publishes, 1, "the job was queued");
    assert_eq!(
        (stats.queued, stats.delayed, stats.claimed),
        (0, 0, 0),
        "and withdrawn"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_error_outcomes_and_commit_nothing_but_the_record() {
    let mut f = Fixture::new(false).await.unwrap();
    let t = f.thwonk("svc@example.org", COUNTER).await;
    let no_handler = f
        .thwonk("mail-only@example.org", "export function onMessage() {}")
        .await;
    f.start_runner();
    let out = invoke(
        &f.store,
        &f.redis,
        &t.id,
        serde_json::json!({"n": 1, "fail": "bad input", "mail": true}),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(out.status, RunStatus::Error);
    assert_eq!(out.value, None);
    let error = out.error.unwrap();
    assert_eq!(error.kind, thwonk_core::run::ErrorKind::ScriptError);
    assert!(error.message.contains("refused: bad input"), "{error:?}");
    assert_eq!(
        f.seen(&t).await,
        serde_json::Value::Null,
        "no write committed"
    );
    assert!(f.store.queued_outbox_ids().await.unwrap().is_empty());
    let runs = f.store.list_runs(&t.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Error);

    let out = invoke(
        &f.store,
        &f.redis,
        &no_handler.id,
        serde_json::json!({}),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(out.status, RunStatus::Error);
    let error = out.error.unwrap();
    assert_eq!(error.kind, thwonk_core::run::ErrorKind::NoHandler);
    assert!(error.message.contains("onRequest"), "{error:?}");

    // Refused before anything is queued.
    let err = invoke(
        &f.store,
        &f.redis,
        "no-such-id",
        serde_json::json!({}),
        WAIT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, InvokeError::NoSuchThwonk(_)), "{err}");
    let mut deep = serde_json::json!(1);
    for _ in 0..100 {
        deep = serde_json::json!([deep]);
    }
    let err = invoke(&f.store, &f.redis, &t.id, deep, WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::TooDeep { .. }), "{err}");
    let big = serde_json::json!({ "text": "x".repeat(2 * 1024 * 1024) });
    let err = invoke(&f.store, &f.redis, &t.id, big, WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::TooLarge { .. }), "{err}");
    f.store
        .set_thwonk_status(&t.id, ThwonkStatus::Disabled)
        .await
        .unwrap();
    let err = invoke(&f.store, &f.redis, &t.id, serde_json::json!({}), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::Disabled(_)), "{err}");
    f.finish().await;
}

async fn delivered_twice_commits_once(postgres: bool) {
    let Some(mut f) = Fixture::new(postgres).await else {
        return;
    };
    let t = f.thwonk("svc@example.org", COUNTER).await;
    f.start_runner();
    let now = thwonk_core::time::now_ms();
    let job = RequestJob {
        http: None,
        request_id: thwonk_core::ids::new_id(),
        thwonk_id: t.id.clone(),
        body: serde_json::json!({"n": 1, "mail": true}),
        queued_at_ms: now,
        reply_by_ms: now + WAIT.as_millis() as i64,
    };
    let payload = serde_json::to_string(&job).unwrap();
    let inbound = JobQueue::new(&f.redis, INBOUND);
    // The same job, delivered again after it finished (a runner killed after its commit and
    // the reaper re-queueing it look the same to the next runner).
    let mut replies = Vec::new();
    for _ in 0..2 {
        inbound.publish(&job.job_id(), &payload).await.unwrap();
        let reply = inbound
            .wait_reply(&job.job_id(), WAIT)
            .await
            .unwrap()
            .expect("a reply");
        replies.push(serde_json::from_str::<serde_json::Value>(&reply).unwrap());
    }
    assert_eq!(replies[0]["status"], "ok");
    assert_eq!(replies[0]["run_id"], job.request_id.as_str());
    assert_eq!(
        replies[0]["value"]["seen"],
        serde_json::json!(["request 1"])
    );
    assert_eq!(replies[1]["status"], "ok");
    assert_eq!(replies[1]["run_id"], job.request_id.as_str());
    assert_eq!(f.seen(&t).await, serde_json::json!(["request 1"]));
    assert_eq!(f.store.list_runs(&t.id, 10).await.unwrap().len(), 1);
    assert_eq!(f.store.queued_outbox_ids().await.unwrap().len(), 1);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_job_delivered_twice_commits_once_sqlite() {
    delivered_twice_commits_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_job_delivered_twice_commits_once_postgres() {
    delivered_twice_commits_once(true).await;
}
