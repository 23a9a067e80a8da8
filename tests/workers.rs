//! Workers in other languages (examples/workers/): a Python worker (redis-py) and a Node worker
//! (node-redis), written from docs/thoonk.md alone, take and finish jobs Thwonk published, publish
//! jobs Thwonk takes, and follow a Thwonk feed, on a real Redis. The wire format is the
//! contract, and these tests hold both sides of it to the same keys, scripts and events.
//!
//! Each test skips (printing `SKIPPED: ...`) when its interpreter or Redis library is missing;
//! `scripts/install-test-deps.sh` installs them.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};
use thwonk_thoonk::keys::job_event;
use thwonk_thoonk::{Feed, JobQueue, PrivateRedis, Redis, Subscription};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long a worker may take to print its next line (interpreter start-up included, on a
/// busy machine) before the test gives up on it.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Node,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Node => "node",
        }
    }

    /// Why this worker cannot run here, if it cannot.
    async fn missing(self) -> Option<String> {
        let repo = support::repo();
        let (program, args, what) = match self {
            Lang::Python => (
                "python3",
                vec!["-c", "import redis"],
                "python3 with redis-py",
            ),
            Lang::Node => {
                if !repo
                    .join("examples/workers/node/node_modules/redis")
                    .is_dir()
                {
                    return Some("examples/workers/node/node_modules/redis is missing".into());
                }
                ("node", vec!["--version"], "node")
            }
        };
        let out = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match tokio::time::timeout(LINE_TIMEOUT, out).await {
            Ok(Ok(status)) if status.success() => None,
            _ => Some(format!("{what} is not available")),
        }
    }

    fn command(self, url: &str, args: &[&str]) -> Command {
        let repo = support::repo();
        let mut cmd = match self {
            Lang::Python => {
                let mut c = Command::new("python3");
                c.arg(repo.join("examples/workers/python/thoonk_worker.py"));
                c
            }
            Lang::Node => {
                let mut c = Command::new("node");
                c.arg(repo.join("examples/workers/node/worker.js"));
                c
            }
        };
        cmd.arg("--url")
            .arg(url)
            .args(args)
            .current_dir(&repo)
            .env_remove("THWONK_REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd
    }
}

/// A worker process and its stdout, one JSON object per line.
struct Worker {
    what: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn spawn(lang: Lang, url: &str, args: &[&str]) -> Worker {
        let what = format!("{} {}", lang.name(), args.join(" "));
        let mut child = lang
            .command(url, args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Worker { what, child, lines }
    }

    /// The next line, or `None` at the end of its output.
    async fn next(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: no output within {LINE_TIMEOUT:?}", self.what))
            .unwrap();
        line.map(|l| {
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("{}: {e} in {l:?}", self.what))
        })
    }

    /// The next line, which must be there and have `key`.
    async fn expect(&mut self, key: &str) -> Value {
        let v = self
            .next()
            .await
            .unwrap_or_else(|| panic!("{}: ended before a {key:?} line", self.what));
        assert!(
            v.get(key).is_some(),
            "{}: expected {key:?}, got {v}",
            self.what
        );
        v
    }

    /// The rest of the output, after the process exited successfully.
    async fn rest(mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.next().await {
            out.push(v);
        }
        let status = tokio::time::timeout(LINE_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{}: did not exit", self.what))
            .unwrap();
        assert!(status.success(), "{}: {status}", self.what);
        out
    }
}

/// A private redis-server in a temporary directory, and the workers that can run.
struct Harness {
    _dir: tempfile::TempDir,
    server: PrivateRedis,
    redis: Redis,
}

impl Harness {
    /// `None` (after printing why) when one of `langs` cannot run here.
    async fn start(test: &str, langs: &[Lang]) -> Option<Harness> {
        for &lang in langs {
            if let Some(why) = lang.missing().await {
                println!("SKIPPED: {test}: {why} (run scripts/install-test-deps.sh)");
                return None;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let server = PrivateRedis::start(
            "redis-server",
            &dir.path().join("redis"),
            &dir.path().join("redis.sock"),
        )
        .await
        .unwrap();
        let redis = Redis::connect(&server.url()).await.unwrap();
        Some(Harness {
            _dir: dir,
            server,
            redis,
        })
    }

    fn url(&self) -> String {
        self.server.url()
    }

    async fn stop(self) {
        self.server.stop().await;
    }

    async fn get_i64(&self, cmd: &str, key: &str) -> i64 {
        let v: Option<i64> = redis::cmd(cmd)
            .arg(key)
            .query_async(&mut self.redis.shared())
            .await
            .unwrap();
        v.unwrap_or(0)
    }

    /// Every job of `q` is finished, `n` of them, and nothing is left anywhere.
    async fn assert_all_finished(&self, q: &JobQueue, n: i64) {
        let k = q.keys();
        let s = q.stats().await.unwrap();
        assert_eq!((s.publishes, s.finishes), (n, n), "{s:?}");
        assert_eq!(
            (s.queued, s.claiming, s.claimed, s.delayed, s.stalled),
            (0, 0, 0, 0, 0),
            "{s:?}"
        );
        assert_eq!(self.get_i64("HLEN", &k.items).await, 0, "job.items");
        assert_eq!(
            self.get_i64("ZCARD", &k.published).await,
            0,
            "job.published"
        );
        assert_eq!(self.get_i64("HLEN", &k.cancelled).await, 0, "job.cancelled");
    }
}

/// `n` jobs with payloads worth upper-casing: JSON, non-ASCII, a NUL-free newline.
fn jobs(prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("{prefix}-{i}"),
                format!("{{\"n\": {i}, \"text\": \"grüße from thwonk\\nline two\"}}"),
            )
        })
        .collect()
}

/// Wait for `n` finish events on `sub`: id → result.
async fn finish_events(sub: &mut Subscription, n: usize) -> BTreeMap<String, String> {
    let mut got = BTreeMap::new();
    while got.len() < n {
        let e = tokio::time::timeout(LINE_TIMEOUT, sub.next())
            .await
            .expect("finish events")
            .expect("subscription open");
        assert_eq!((e.model.as_str(), e.kind.as_str()), ("job", "finish"));
        let result = e.data.expect("a finish with a result");
        assert!(
            got.insert(e.id.clone(), result).is_none(),
            "{} finished twice",
            e.id
        );
    }
    got
}

/// The `{id, payload, result}` lines of a `work` run.
fn worked(lines: &[Value]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{v}")).to_string();
            (s("id"), s("payload"), s("result"))
        })
        .collect()
}

async fn takes_and_finishes_jobs_that_thwonk_published(lang: Lang, test: &str) {
    let Some(h) = Harness::start(test, &[lang]).await else {
        return;
    };
    let q = JobQueue::new(&h.redis, "reports");
    let mut finishes = Subscription::new(&h.redis, &[job_event("finish", "reports")])
        .await
        .unwrap();
    let jobs = jobs(lang.name(), 20);
    for (id, payload) in &jobs {
        assert!(q.publish(id, payload).await.unwrap());
    }

    let mut w = Worker::spawn(lang, &h.url(), &["work", "reports", "--count", "20"]);
    w.expect("ready").await;
    let done = worked(&w.rest().await);

    // In order (the queue is FIFO), each once, each processed.
    let want: Vec<_> = jobs
        .iter()
        .map(|(id, p)| (id.clone(), p.clone(), p.to_uppercase()))
        .collect();
    assert_eq!(done, want);
    // Thwonk saw every finish, with its result, on the Thoonk channel.
    let events = finish_events(&mut finishes, jobs.len()).await;
    let want: BTreeMap<_, _> = jobs
        .iter()
        .map(|(id, p)| (id.clone(), p.to_uppercase()))
        .collect();
    assert_eq!(events, want);
    h.assert_all_finished(&q, 20).await;
    h.stop().await;
}

async fn publishes_a_job_that_thwonk_takes(lang: Lang, test: &str) {
    let Some(h) = Harness::start(test, &[lang]).await else {
        return;
    };
    let queue = format!("from-{}", lang.name());
    let q = JobQueue::new(&h.redis, &queue);
    let mut events = Subscription::jobs(&h.redis, &queue).await.unwrap();
    let first = Worker::spawn(lang, &h.url(), &["publish", &queue, "w1", "draft"])
        .rest()
        .await;
    assert_eq!(first, vec![serde_json::json!({"id": "w1", "queued": true})]);
    // The same id again replaces the payload and is not queued twice (as Thwonk's publish).
    let payload = r#"{"from": "a worker", "text": "grüße"}"#;
    let second = Worker::spawn(lang, &h.url(), &["publish", &queue, "w1", payload])
        .rest()
        .await;
    assert_eq!(
        second,
        vec![serde_json::json!({"id": "w1", "queued": false})]
    );

    let e = tokio::time::timeout(LINE_TIMEOUT, events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.kind.as_str(), e.id.as_str()), ("publish", "w1"));
    let registered: bool = redis::cmd("SISMEMBER")
        .arg("jobs")
        .arg(&queue)
        .query_async(&mut h.redis.shared())
        .await
        .unwrap();
    assert!(registered, "the queue is in the `jobs` registry");

    let job = q
        .take(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a job");
    assert_eq!((job.id.as_str(), job.payload.as_str()), ("w1", payload));
    assert_eq!(q.take(Duration::from_millis(100)).await.unwrap(), None);
    q.finish(&job.id, Some("done")).await.unwrap();
    h.assert_all_finished(&q, 1).await;
    h.stop().await;
}

async fn follows_a_thwonk_feed(lang: Lang, test: &str) {
    let Some(h) = Harness::start(test, &[lang]).await else {
        return;
    };
    let name = "list@example.org/archive";
    let feed = Feed::new(&h.redis, name);
    let mut w = Worker::spawn(lang, &h.url(), &["follow", name, "--count", "3"]);
    w.expect("subscribed").await;

    let now = thwonk_core::time::now_ms();
    feed.publish(Some("a1"), "first ✓\nsecond line", now)
        .await
        .unwrap();
    feed.publish(Some("a1"), "edited", now + 1).await.unwrap();
    assert!(feed.retract("a1").await.unwrap());

    let got = w.rest().await;
    assert_eq!(
        got,
        vec![
            serde_json::json!({"event": "publish", "feed": name, "id": "a1", "item": "first ✓\nsecond line"}),
            serde_json::json!({"event": "edit", "feed": name, "id": "a1", "item": "edited"}),
            serde_json::json!({"event": "retract", "feed": name, "id": "a1"}),
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_worker_takes_and_finishes_jobs_that_thwonk_published() {
    takes_and_finishes_jobs_that_thwonk_published(
        Lang::Python,
        "python_worker_takes_and_finishes_jobs_that_thwonk_published",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_worker_publishes_a_job_that_thwonk_takes() {
    publishes_a_job_that_thwonk_takes(
        Lang::Python,
        "python_worker_publishes_a_job_that_thwonk_takes",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_worker_follows_a_thwonk_feed() {
    follows_a_thwonk_feed(Lang::Python, "python_worker_follows_a_thwonk_feed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_worker_takes_and_finishes_jobs_that_thwonk_published() {
    takes_and_finishes_jobs_that_thwonk_published(
        Lang::Node,
        "node_worker_takes_and_finishes_jobs_that_thwonk_published",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_worker_publishes_a_job_that_thwonk_takes() {
    publishes_a_job_that_thwonk_takes(Lang::Node, "node_worker_publishes_a_job_that_thwonk_takes")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_worker_follows_a_thwonk_feed() {
    follows_a_thwonk_feed(Lang::Node, "node_worker_follows_a_thwonk_feed").await;
}

/// Take, process (upper-case) and finish jobs like the example workers, until none came for
/// `idle`; the ids done, in order.
async fn rust_worker(q: JobQueue, idle: Duration, delay: Duration) -> Vec<String> {
    let mut done = Vec::new();
    let mut last = Instant::now();
    loop {
        match q.take(Duration::from_secs(1)).await.unwrap() {
            Some(job) => {
                tokio::time::sleep(delay).await;
                q.finish(&job.id, Some(&job.payload.to_uppercase()))
                    .await
                    .unwrap();
                done.push(job.id);
                last = Instant::now();
            }
            None if last.elapsed() >= idle => return done,
            None => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_node_and_rust_workers_share_a_queue_and_each_job_is_done_once() {
    let test = "python_node_and_rust_workers_share_a_queue_and_each_job_is_done_once";
    let Some(h) = Harness::start(test, &[Lang::Python, Lang::Node]).await else {
        return;
    };
    let q = JobQueue::new(&h.redis, "shared");
    let mut finishes = Subscription::new(&h.redis, &[job_event("finish", "shared")])
        .await
        .unwrap();
    // Every worker waits for jobs before the first is published, and each job takes a while,
    // so all three get a share.
    let args = ["work", "shared", "--idle", "3", "--delay-ms", "15"];
    let mut py = Worker::spawn(Lang::Python, &h.url(), &args);
    let mut node = Worker::spawn(Lang::Node, &h.url(), &args);
    py.expect("ready").await;
    node.expect("ready").await;
    let rust = tokio::spawn(rust_worker(
        q.clone(),
        Duration::from_secs(3),
        Duration::from_millis(15),
    ));
    let jobs = jobs("shared", 90);
    for (id, payload) in &jobs {
        assert!(q.publish(id, payload).await.unwrap());
    }

    let by_python = worked(&py.rest().await);
    let by_node = worked(&node.rest().await);
    let by_rust = rust.await.unwrap();
    println!(
        "python {}, node {}, rust {} of {} jobs",
        by_python.len(),
        by_node.len(),
        by_rust.len(),
        jobs.len()
    );
    assert!(!by_python.is_empty(), "the python worker took no job");
    assert!(!by_node.is_empty(), "the node worker took no job");
    assert!(!by_rust.is_empty(), "the rust worker took no job");

    // Exactly once: every id, no id twice, across the three.
    let mut all: Vec<String> = by_python
        .iter()
        .chain(&by_node)
        .map(|(id, payload, result)| {
            assert_eq!(*result, payload.to_uppercase());
            id.clone()
        })
        .chain(by_rust)
        .collect();
    all.sort();
    let distinct: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), distinct.len(), "a job was done twice: {all:?}");
    let want: BTreeSet<_> = jobs.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(distinct, want);

    let events = finish_events(&mut finishes, jobs.len()).await;
    let want: BTreeMap<_, _> = jobs
        .iter()
        .map(|(id, p)| (id.clone(), p.to_uppercase()))
        .collect();
    assert_eq!(events, want);
    h.assert_all_finished(&q, jobs.len() as i64).await;
    h.stop().await;
}

// --- Script jobs: a rule script publishes, a worker answers, `onJobResult` hears it ---------

const LIST: &str = "list@example.org";
const ALICE: &str = "alice@members.test";

/// Publishes a job per message (subject → payload), then fails the run for "fail"; tries to
/// reach Thwonk's own `inbound` queue; hears the result and mails it to Alice.
const SCRIPT_JOBS_JS: &str = r#"
export function onMessage(msg, thwonk) {
  const id = thwonk.jobs("shout").publish({ text: msg.subject });
  if (msg.subject === "fail") throw new Error("failed after publishing " + id);
  // The attack: Thwonk's own queue. The name is always under this thwonk's address.
  const errors = [];
  for (const name of ["../inbound", "a/b", "x:y", "", "q".repeat(65)]) {
    try { thwonk.jobs(name); errors.push("accepted " + name); } catch (e) { errors.push(e.message); }
  }
  const sneaky = thwonk.jobs("inbound").publish({ message_id: msg.id, thwonk_id: "x" });
  thwonk.files.writeJSON("published.json", { id, sneaky, errors });
}

export function onJobResult(result, thwonk) {
  if (result.queue !== "shout") return;
  thwonk.files.writeJSON("result.json", result);
  thwonk.send({
    to: "alice@members.test",
    subject: "job " + result.status + " " + result.id,
    text: JSON.stringify(result.value) + "\n",
  });
}
"#;

/// A script publishes a job when mail comes in; the `lang` worker takes it from the Thoonk
/// queue `list@example.org/shout`, upper-cases it and finishes it with the result; the result
/// comes back to the script's `onJobResult`, which mails it. A run that failed after
/// publishing published nothing, and the script could not put a job on Thwonk's `inbound`.
async fn script_job_round_trip(lang: Lang, test: &str) {
    if let Some(why) = lang.missing().await {
        println!("SKIPPED: {test}: {why} (run scripts/install-test-deps.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = support::Relay::start().await;
    let env = support::env(dir.path(), relay.addr, None);
    env.deploy_source(LIST, dir.path(), "jobs.js", SCRIPT_JOBS_JS);
    let daemon = support::Daemon::start(&env).await;
    let url = format!("unix://{}", dir.path().join("redis.sock").display());
    let redis = support::private_redis(dir.path()).await;
    let shout = JobQueue::new(&redis, &format!("{LIST}/shout"));

    // First a run that fails after publishing, then one that commits: runs of a thwonk go in
    // arrival order, so by the time the second's result is back the first is long done.
    support::send_mail(daemon.smtp, ALICE, LIST, "fail", "x").await;
    support::send_mail(daemon.smtp, ALICE, LIST, "hello", "x").await;

    let mut worker = Worker::spawn(
        lang,
        &url,
        &["work", &format!("{LIST}/shout"), "--count", "1"],
    );
    worker.expect("ready").await;
    let done = worked(&worker.rest().await);
    assert_eq!(done.len(), 1, "{done:?}");
    let (job_id, payload, result) = &done[0];
    assert_eq!(
        payload, r#"{"text":"hello"}"#,
        "the failed run's job was never queued"
    );
    assert_eq!(result, r#"{"TEXT":"HELLO"}"#);

    let got = relay
        .wait_for("the job's result by mail", Duration::from_secs(60), |r| {
            !r.is_empty()
        })
        .await;
    assert_eq!(got.len(), 1, "one result, one mail");
    let mail = got[0].parsed();
    assert_eq!(mail.subject, format!("job ok {job_id}"));
    assert_eq!(mail.text.trim(), r#"{"TEXT":"HELLO"}"#);
    let stored: Value =
        serde_json::from_str(&env.ok(&["files", LIST, "get", "result.json"])).expect("result.json");
    assert_eq!(
        stored,
        serde_json::json!({"id": job_id, "queue": "shout", "status": "ok", "ok": true,
            "value": {"TEXT": "HELLO"}, "error": null})
    );

    // Exactly one job ever reached the queue: the failed run's never did.
    let stats = shout.stats().await.unwrap();
    assert_eq!((stats.publishes, stats.finishes), (1, 1), "{stats:?}");

    // The attack went nowhere: bad names were refused at the call, and `inbound` is the
    // thwonk's own `list@example.org/inbound`, not Thwonk's queue.
    let published: Value =
        serde_json::from_str(&env.ok(&["files", LIST, "get", "published.json"])).unwrap();
    assert_eq!(published["id"], job_id.as_str());
    let errors = published["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5, "{errors:?}");
    for e in errors {
        assert!(e.as_str().unwrap().contains("job queue"), "{e}");
    }
    let sneaky = published["sneaky"].as_str().unwrap();
    assert!(
        !JobQueue::new(&redis, thwonk_thoonk::INBOUND)
            .contains(sneaky)
            .await
            .unwrap()
    );
    assert!(
        JobQueue::new(&redis, &format!("{LIST}/inbound"))
            .contains(sneaky)
            .await
            .unwrap()
    );

    // The runs: the failed one, the committed one, and one `job_result` run.
    let runs = env.runs(LIST, None);
    let triggers: Vec<&str> = runs
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(
        triggers.iter().filter(|t| **t == "job_result").count(),
        1,
        "{runs:?}"
    );
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_worker_answers_a_scripts_job_and_on_job_result_hears_it() {
    script_job_round_trip(
        Lang::Python,
        "python_worker_answers_a_scripts_job_and_on_job_result_hears_it",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_worker_answers_a_scripts_job_and_on_job_result_hears_it() {
    script_job_round_trip(
        Lang::Node,
        "node_worker_answers_a_scripts_job_and_on_job_result_hears_it",
    )
    .await;
}
