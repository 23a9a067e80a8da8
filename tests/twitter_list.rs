//! The spine end to end: real SMTP in, the rule script, real SMTP out through a relay, with
//! the daemon's private Redis and SQLite (and the same on PostgreSQL).

mod support;

use std::time::Duration;
use support::{Daemon, Relay, send_mail};

const LIST: &str = "list@example.org";
const MEMBERS: [&str; 3] = [
    "alice@members.test",
    "bob@members.test",
    "carol@members.test",
];

async fn twitter_list_end_to_end(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, database_url);

    let out = env.deploy(LIST, "sandbox-scripts/twitter-list.js");
    assert!(out.contains("deployed list@example.org version 1"), "{out}");

    let daemon = Daemon::start(&env).await;
    for m in MEMBERS {
        send_mail(daemon.smtp, m, LIST, "subscribe", "please add me").await;
    }
    // Every subscriber is confirmed by mail.
    relay
        .wait_for("three confirmations", Duration::from_secs(30), |r| {
            MEMBERS
                .iter()
                .all(|m| r.iter().any(|x| x.rcpt_to.contains(&m.to_string())))
        })
        .await;
    let confirmations = relay.received().len();

    // 300 characters, each position recognisable, so the trim point is exact.
    let body: String = (0..300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    send_mail(daemon.smtp, MEMBERS[0], LIST, "hello list", &body).await;

    relay
        .wait_for("the post to bob and carol", Duration::from_secs(30), |r| {
            let posts: Vec<_> = r[confirmations..].iter().collect();
            let to: Vec<_> = posts.iter().flat_map(|p| p.rcpt_to.clone()).collect();
            to.contains(&MEMBERS[1].to_string()) && to.contains(&MEMBERS[2].to_string())
        })
        .await;
    // Give a stray duplicate or a copy to the poster a moment to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts: Vec<_> = relay.received()[confirmations..].to_vec();
    let mut recipients: Vec<String> = posts.iter().flat_map(|p| p.rcpt_to.clone()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        vec![MEMBERS[1].to_string(), MEMBERS[2].to_string()],
        "exactly the other two members, once each"
    );
    let expected: String = body.chars().take(140).collect();
    for p in &posts {
        let view = p.parsed();
        assert_eq!(
            view.text.trim_end(),
            expected,
            "the post is trimmed to 140 characters"
        );
        assert_eq!(view.subject, "hello list");
        assert_eq!(
            view.sender.address, LIST,
            "the list sends from its own address"
        );
        assert!(view.message_id.is_some(), "outgoing mail has a Message-ID");
        assert!(view.date.is_some(), "outgoing mail has a Date");
    }

    // The run records say what happened.
    let runs = env.ok(&["runs", LIST, "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 4, "{runs:#}");
    assert!(
        runs.as_array().unwrap().iter().all(|r| r["status"] == "ok"),
        "{runs:#}"
    );
    let members = env.ok(&["files", LIST, "get", "members.json"]);
    let members: Vec<String> = serde_json::from_str(&members).unwrap();
    assert_eq!(members, MEMBERS.to_vec());

    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twitter_list_on_sqlite_trims_posts_for_the_other_members() {
    twitter_list_end_to_end(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twitter_list_on_postgres_trims_posts_for_the_other_members() {
    let Some(base) = support::postgres_url() else {
        eprintln!("SKIPPED: THWONK_TEST_POSTGRES_URL is not set (CI sets it)");
        return;
    };
    let db = thwonk_store::scratch::scratch_postgres_url(&base)
        .await
        .unwrap();
    twitter_list_end_to_end(Some(db.url())).await;
    db.cleanup().await.unwrap();
}
