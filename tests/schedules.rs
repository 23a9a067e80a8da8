//! Schedules end to end: `must-post-daily.js` unsubscribes members silent for a day at its
//! daily tick, and with two runners polling the same schedules the tick fires exactly once.

mod support;

use std::time::Duration;
use support::{Daemon, Relay, eventually, private_redis, send_mail};

const LIST: &str = "daily@example.org";
const ALICE: &str = "alice@members.test";
const BOB: &str = "bob@members.test";
const DAY_MS: i64 = 86_400_000;

async fn zscore(redis: &thwonk_thoonk::Redis, key: &str, member: &str) -> Option<f64> {
    redis::cmd("ZSCORE")
        .arg(key)
        .arg(member)
        .query_async(&mut redis.shared())
        .await
        .unwrap()
}

async fn must_post_daily(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, database_url);
    let out = env.deploy(LIST, "sandbox-scripts/must-post-daily.js");
    assert!(out.contains("version 1"), "{out}");
    let listed = env.ok(&["list"]);
    assert!(listed.contains("schedule 0 0 * * *"), "{listed}");

    let daemon = Daemon::start(&env).await;
    // A second runner process polling the same schedules.
    let second = Daemon::start_role(&env, "runner").await;
    let thwonk_id = {
        let store = thwonk_store::Store::connect(
            &database_url
                .map(str::to_string)
                .unwrap_or_else(|| format!("sqlite://{}/thwonk.db", dir.path().display())),
            2,
        )
        .await
        .unwrap();
        let t = store
            .thwonk_by_address(&thwonk_core::Address::parse(LIST).unwrap())
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        t.id
    };
    let redis = private_redis(dir.path()).await;
    let task = format!("{thwonk_id} 0 0 * * *");
    // Registered from SQL at start-up, due at the next midnight UTC.
    let due = eventually("the schedule registered", Duration::from_secs(10), || {
        let (redis, task) = (redis.clone(), task.clone());
        async move { zscore(&redis, "recurring:schedules", &task).await }
    })
    .await as i64;
    let now = thwonk_core::time::now_ms();
    assert!(
        due > now && due <= now + DAY_MS && due % DAY_MS == 0,
        "{due}"
    );

    send_mail(daemon.smtp, ALICE, LIST, "subscribe", "hi").await;
    send_mail(daemon.smtp, BOB, LIST, "subscribe", "hi").await;
    relay
        .wait_for("two confirmations", Duration::from_secs(30), |r| {
            r.len() == 2
        })
        .await;
    send_mail(daemon.smtp, ALICE, LIST, "still here", "a post").await;
    relay
        .wait_for("alice's post to bob", Duration::from_secs(30), |r| {
            r.len() == 3
        })
        .await;

    // Bob joined two days ago and never posted (the script's own state, backdated).
    let seen = env.ok(&["files", LIST, "get", "last-seen.json"]);
    let mut seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    seen[BOB] = serde_json::json!(now - 2 * DAY_MS);
    let file = dir.path().join("seen.json");
    std::fs::write(&file, seen.to_string()).unwrap();
    env.ok(&[
        "files",
        LIST,
        "put",
        "last-seen.json",
        file.to_str().unwrap(),
    ]);

    // Midnight comes early: the task is due now. Both runners race for the tick.
    let tick = thwonk_core::time::now_ms();
    let _: i64 = redis::cmd("ZADD")
        .arg("recurring:schedules")
        .arg(tick)
        .arg(&task)
        .query_async(&mut redis.shared())
        .await
        .unwrap();
    let got = relay
        .wait_for("bob's notice", Duration::from_secs(30), |r| {
            r.iter()
                .any(|m| m.parsed().subject.contains("unsubscribed"))
        })
        .await;
    let notice = got
        .iter()
        .find(|m| m.parsed().subject.contains("unsubscribed"))
        .unwrap();
    assert_eq!(notice.rcpt_to, vec![BOB.to_string()]);
    assert!(notice.parsed().text.contains("24 hours"), "told why");
    // Give a duplicate tick every chance to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let notices = relay
        .received()
        .iter()
        .filter(|m| m.parsed().subject.contains("unsubscribed"))
        .count();
    assert_eq!(notices, 1, "the tick fired once");
    let runs = env.runs(LIST, None);
    let ticks: Vec<_> = runs.iter().filter(|r| r["trigger"] == "schedule").collect();
    assert_eq!(ticks.len(), 1, "{runs:#?}");
    assert_eq!(ticks[0]["status"], "ok", "{:#?}", ticks[0]);
    let members = env.ok(&["files", LIST, "get", "members.json"]);
    let members: Vec<String> = serde_json::from_str(&members).unwrap();
    assert_eq!(members, vec![ALICE], "alice posted; bob was silent");
    // Rescheduled to the next midnight after the tick.
    let next = zscore(&redis, "recurring:schedules", &task).await.unwrap() as i64;
    assert!(next > tick && next % DAY_MS == 0, "{next}");

    second.stop(Duration::from_secs(20)).await;
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_post_daily_on_sqlite_unsubscribes_the_silent_once_per_tick() {
    must_post_daily(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_post_daily_on_postgres_unsubscribes_the_silent_once_per_tick() {
    let Some(base) = support::postgres_url() else {
        eprintln!("SKIPPED: THWONK_TEST_POSTGRES_URL is not set (CI sets it)");
        return;
    };
    let db = thwonk_store::scratch::scratch_postgres_url(&base)
        .await
        .unwrap();
    must_post_daily(Some(db.url())).await;
    db.cleanup().await.unwrap();
}
