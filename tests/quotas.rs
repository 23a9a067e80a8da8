//! Storage quotas (issue 13 item 10) against a live `thwonk serve`: each attack is a script
//! run by real mail, and each must end at its limit with nothing stored past it: a thwonk's
//! files (`limits.vfs_total_bytes`), a run's outgoing mail (`limits.outbox_bytes_per_run`),
//! a feed's length (`feeds.max_items`) and a thrown error's text (`limits.error_max_bytes`).

mod support;

use std::process::Command;
use std::time::Duration;
use support::{Daemon, Env, Relay, send_mail};

const FILES: &str = r#"
export function onMessage(msg, thwonk) {
  const [what, path, size] = msg.subject.split(" ");
  if (what === "write") thwonk.files.write(path, "x".repeat(Number(size)));
  if (what === "delete") thwonk.files.delete(path);
  const listed = thwonk.files.list("").map((f) => `${f.path}=${f.size}`).join(",");
  thwonk.log(listed);
}
"#;

/// The runs of `address`, oldest first, once there are `n`.
async fn runs(env: &Env, address: &str, n: usize) -> Vec<serde_json::Value> {
    let mut runs = env.wait_for_runs(address, n, Duration::from_secs(60)).await;
    runs.reverse();
    runs
}

fn log0(run: &serde_json::Value) -> String {
    run["logs"][0]["message"].as_str().unwrap_or("").to_string()
}

async fn vfs_quota(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), database_url);
    env.vars
        .push(("THWONK_LIMITS_VFS_TOTAL_BYTES".into(), "100000".into()));
    env.deploy_source("files@example.org", dir.path(), "files.js", FILES);
    let daemon = Daemon::start(&env).await;
    let a = "files@example.org";
    // One at a time: each subject is one step.
    for (i, subject) in [
        "write a.txt 60000",
        // Over the quota (60,000 + 60,000): LimitError, nothing written.
        "write b.txt 60000",
        // Replacing a file counts its new size only: fits.
        "write a.txt 90000",
        "write b.txt 20000",
        // Freeing room makes room.
        "delete a.txt",
        "write b.txt 95000",
        "list",
    ]
    .iter()
    .enumerate()
    {
        send_mail(daemon.smtp, "o@example.net", a, subject, "x").await;
        runs(&env, a, i + 1).await;
    }
    let runs = runs(&env, a, 7).await;
    let summary: Vec<(String, String, String)> = runs
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap_or("").to_string(),
                r["error_kind"].as_str().unwrap_or("").to_string(),
                log0(r),
            )
        })
        .collect();
    let ok = |log: &str| ("ok".to_string(), String::new(), log.to_string());
    assert_eq!(summary[0], ok("a.txt=60000"));
    assert_eq!(
        (summary[1].0.as_str(), summary[1].1.as_str()),
        ("error", "LimitError"),
        "{summary:?}"
    );
    assert!(
        runs[1]["error"]
            .as_str()
            .unwrap()
            .contains("over its quota of 100000 bytes"),
        "{:?}",
        runs[1]
    );
    assert_eq!(summary[2], ok("a.txt=90000"), "b.txt was never written");
    assert_eq!(
        summary[3].1, "LimitError",
        "90,000 + 20,000 is over: {summary:?}"
    );
    assert_eq!(summary[4], ok(""));
    assert_eq!(summary[5], ok("b.txt=95000"));
    assert_eq!(summary[6], ok("b.txt=95000"));
    daemon.stop(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_the_vfs_quota_fails_and_writes_nothing_on_sqlite() {
    vfs_quota(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_the_vfs_quota_fails_and_writes_nothing_on_postgres() {
    let Some(base) = support::postgres_url() else {
        eprintln!("SKIPPED: THWONK_TEST_POSTGRES_URL is not set (CI sets it)");
        return;
    };
    let db = thwonk_store::scratch::scratch_postgres_url(&base)
        .await
        .unwrap();
    vfs_quota(Some(db.url())).await;
    db.cleanup().await.unwrap();
}

const FLOOD: &str = r#"
export function onMessage(msg, thwonk) {
  const n = Number(msg.subject);
  const text = "x".repeat(1 << 20);
  for (let i = 0; i < n; i++) {
    thwonk.send({ to: "victim@example.net", subject: `copy ${i}`, text });
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_one_mib_sends_stop_at_the_outbox_cap_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(dir.path(), relay.addr, None);
    // Room in a debug build for the sends before the cap; the cap is the default (25 MiB).
    env.vars
        .push(("THWONK_LIMITS_WALL_CLOCK_MS".into(), "30000".into()));
    env.deploy_source("flood@example.org", dir.path(), "flood.js", FLOOD);
    let daemon = Daemon::start(&env).await;

    send_mail(
        daemon.smtp,
        "m@example.net",
        "flood@example.org",
        "100",
        "x",
    )
    .await;
    let run = runs(&env, "flood@example.org", 1).await.remove(0);
    assert_eq!(run["status"], "error", "{run:?}");
    assert_eq!(run["error_kind"], "LimitError", "{run:?}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("outgoing mail limit of 26214400 bytes per run exceeded"),
        "{error}"
    );
    // Under the cap, the same script sends.
    send_mail(daemon.smtp, "m@example.net", "flood@example.org", "2", "x").await;
    relay
        .wait_for("two copies", Duration::from_secs(60), |r| {
            r.iter()
                .filter(|m| m.rcpt_to == ["victim@example.net"])
                .count()
                == 2
        })
        .await;
    // The failed run sent nothing: only the two copies of the second run ever arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let copies = relay
        .received()
        .iter()
        .filter(|m| m.rcpt_to == ["victim@example.net"])
        .count();
    assert_eq!(copies, 2);
    daemon.stop(Duration::from_secs(30)).await;
}

const THROW: &str = r#"
export function onMessage(msg, thwonk) {
  throw new Error("x".repeat(8000000));
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eight_mb_thrown_error_is_stored_cut_to_the_cap_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None);
    env.deploy_source("thrower@example.org", dir.path(), "throw.js", THROW);
    let daemon = Daemon::start(&env).await;

    send_mail(
        daemon.smtp,
        "m@example.net",
        "thrower@example.org",
        "boom",
        "x",
    )
    .await;
    let run = runs(&env, "thrower@example.org", 1).await.remove(0);
    assert_eq!(run["status"], "error", "{run:?}");
    assert_eq!(run["error_kind"], "ScriptError");
    let error = run["error"].as_str().unwrap();
    assert!(error.len() <= 64 * 1024, "{} bytes stored", error.len());
    assert!(
        error.len() > 60 * 1024,
        "cut, not dropped: {} bytes",
        error.len()
    );
    assert!(
        error.ends_with(" [truncated]"),
        "marked: {}",
        &error[error.len() - 40..]
    );
    if let Some(stack) = run["stack"].as_str() {
        assert!(stack.len() <= 64 * 1024, "stack: {} bytes", stack.len());
    }
    daemon.stop(Duration::from_secs(30)).await;
}

const PUBLISH: &str = r#"
export function onMessage(msg, thwonk) {
  const n = Number(msg.subject);
  // One run's items share the commit's time; ids that sort in publishing order keep
  // "oldest" meaning "first published" within it.
  for (let i = 0; i < n; i++) {
    thwonk.feed("log").publish({ n: i }, `item-${String(i).padStart(2, "0")}`);
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_keeps_its_newest_items_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None);
    env.vars.push(("THWONK_FEEDS_MAX_ITEMS".into(), "5".into()));
    env.deploy_source("feeds@example.org", dir.path(), "publish.js", PUBLISH);
    let daemon = Daemon::start(&env).await;

    send_mail(daemon.smtp, "m@example.net", "feeds@example.org", "12", "x").await;
    let run = runs(&env, "feeds@example.org", 1).await.remove(0);
    assert_eq!(run["status"], "ok", "{run:?}");
    let redis_cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(dir.path().join("redis.sock"))
            .args(args)
            .output()
            .expect("redis-cli (package redis-tools) must be installed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Feeds are keyed by the thwonk's id (`{id}/log`); this daemon has the one thwonk.
    let ids = || match redis_cli(&["KEYS", "feed.ids:*/log"]).as_slice() {
        [key] => redis_cli(&["ZRANGE", key, "0", "-1"]),
        _ => Vec::new(),
    };
    let want: Vec<String> = (7..12).map(|i| format!("item-{i:02}")).collect();
    support::eventually("the feed trimmed", Duration::from_secs(20), || {
        let done = ids() == want;
        async move { done.then_some(()) }
    })
    .await;
    daemon.stop(Duration::from_secs(30)).await;
}
