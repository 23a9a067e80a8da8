//! Feeds end to end with `once-a-day.js`: a member's first post of the day goes out and into
//! the list's archive feed, which plain `redis-cli SUBSCRIBE` follows; a second post that day
//! is refused politely and publishes nothing.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Daemon, Relay, eventually, private_redis, send_mail};

const LIST: &str = "list@example.org";
const ALICE: &str = "alice@members.test";
const BOB: &str = "bob@members.test";

async fn once_a_day(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, database_url);
    env.deploy(LIST, "sandbox-scripts/once-a-day.js");
    let daemon = Daemon::start(&env).await;
    // A thwonk's feeds are named by its id.
    let url = database_url.map_or_else(
        || format!("sqlite://{}", dir.path().join("thwonk.db").display()),
        str::to_string,
    );
    let store = thwonk_store::Store::connect(&url, 1).await.unwrap();
    let id = store
        .thwonk_by_address(&thwonk_core::Address::parse(LIST).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    store.close().await;

    // Follow the archive with nothing but redis-cli.
    let channel = format!("event.feed.publish:{id}/archive");
    let mut cli = Command::new("redis-cli")
        .arg("-s")
        .arg(dir.path().join("redis.sock"))
        .arg("SUBSCRIBE")
        .arg(&channel)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli (package redis-tools) must be installed");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let lines = lines.clone();
        let out = cli.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
                lines
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&line).into_owned());
            }
        });
    }
    eventually("redis-cli subscribed", Duration::from_secs(10), || {
        let got = lines.lock().unwrap().iter().any(|l| l == "subscribe");
        async move { got.then_some(()) }
    })
    .await;

    send_mail(daemon.smtp, ALICE, LIST, "subscribe", "hi").await;
    send_mail(daemon.smtp, BOB, LIST, "subscribe", "hi").await;
    relay
        .wait_for("two confirmations", Duration::from_secs(30), |r| {
            r.len() == 2
        })
        .await;
    send_mail(daemon.smtp, ALICE, LIST, "first", "good morning").await;
    relay
        .wait_for("the post to bob", Duration::from_secs(30), |r| r.len() == 3)
        .await;
    assert_eq!(relay.received()[2].rcpt_to, vec![BOB.to_string()]);
    eventually(
        "the archive event on redis-cli",
        Duration::from_secs(10),
        || {
            let got = lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("good morning"));
            async move { got.then_some(()) }
        },
    )
    .await;
    assert!(lines.lock().unwrap().iter().any(|l| l == &channel));

    send_mail(daemon.smtp, ALICE, LIST, "second", "me again").await;
    let got = relay
        .wait_for("the refusal", Duration::from_secs(30), |r| r.len() == 4)
        .await;
    assert_eq!(got[3].rcpt_to, vec![ALICE.to_string()]);
    assert!(
        got[3].parsed().text.contains("already posted today"),
        "{:?}",
        got[3].parsed().text
    );

    // The archive holds the one post, under the message's id.
    let redis = private_redis(dir.path()).await;
    let archive = thwonk_thoonk::Feed::new(&redis, &format!("{id}/archive"));
    let items = archive.all().await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let item: serde_json::Value = serde_json::from_str(&items[0].item).unwrap();
    assert_eq!(item["from"], ALICE);
    assert_eq!(item["text"].as_str().unwrap().trim(), "good morning");

    // Yesterday's post does not count against today.
    let file = dir.path().join("last.json");
    std::fs::write(&file, format!(r#"{{"{ALICE}": "2000-01-01"}}"#)).unwrap();
    env.ok(&[
        "files",
        LIST,
        "put",
        "last-post.json",
        file.to_str().unwrap(),
    ]);
    send_mail(daemon.smtp, ALICE, LIST, "next day", "hello again").await;
    let got = relay
        .wait_for("the next day's post", Duration::from_secs(30), |r| {
            r.len() == 5
        })
        .await;
    assert_eq!(got[4].rcpt_to, vec![BOB.to_string()]);
    assert_eq!(archive.length().await.unwrap(), 2);

    let _ = cli.kill();
    let _ = cli.wait();
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_day_on_sqlite_refuses_a_second_post_and_archives_to_a_feed() {
    once_a_day(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_day_on_postgres_refuses_a_second_post_and_archives_to_a_feed() {
    let Some(base) = support::postgres_url() else {
        eprintln!("SKIPPED: THWONK_TEST_POSTGRES_URL is not set (CI sets it)");
        return;
    };
    let db = thwonk_store::scratch::scratch_postgres_url(&base)
        .await
        .unwrap();
    once_a_day(Some(db.url())).await;
    db.cleanup().await.unwrap();
}
