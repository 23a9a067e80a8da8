//! The script API end to end, through a real daemon (SMTP in, Redis, SQLite, HTTP out):
//! feed items are the values scripts published, over `GET .../feeds/{name}` and SSE alike;
//! `feed(name).items()` reads them back in a later run; the dry run (`thwonk test` and
//! `POST .../test`) reports the failure the live run has; a failing run's error names the
//! script and the position.

mod support;

use std::time::Duration;
use support::{Daemon, Relay, req, send_mail};
use thwonk_api::client::EventStream;

const FEEDS: &str = r#"
export function onMessage(msg, thwonk) {
  const f = thwonk.feed("posts");
  f.publish({ from: msg.sender.address, subject: msg.subject, n: 1 }, "p1");
  f.publish("42", "p2");
}
export function onRequest(req, thwonk) {
  return thwonk.feed("posts").items({ limit: req.body.limit });
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_items_are_the_published_values_over_http_sse_and_items() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, None);
    env.ok(&["user", "add", "dora"]);
    let token = env.ok(&["token", "create", "--user", "dora"]);
    let token = token.trim();
    let daemon = Daemon::start(&env).await;
    let http = daemon.http_addr();
    let t = "/v1/thwonks/posts@example.org";
    let r = req(http, "PUT", &format!("{t}/script"), token, FEEDS.as_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    let mut events = EventStream::open(http, &format!("{t}/feeds/posts/events"), Some(token), None)
        .await
        .unwrap();
    assert_eq!(events.status, 200);

    send_mail(
        daemon.smtp,
        "carol@example.net",
        "posts@example.org",
        "hello",
        "hi",
    )
    .await;

    let object = serde_json::json!({"from": "carol@example.net", "subject": "hello", "n": 1});
    let mut seen = Vec::new();
    for _ in 0..2 {
        let e = events
            .next_within(Duration::from_secs(30))
            .await
            .expect("a feed event on the stream");
        assert_eq!(e.event, "publish");
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        seen.push(data);
    }
    assert_eq!(
        seen,
        [
            serde_json::json!({"id": "p1", "item": object}),
            serde_json::json!({"id": "p2", "item": "42"}),
        ],
        "the item is the JSON value published, not a string holding its JSON"
    );

    let items = req(http, "GET", &format!("{t}/feeds/posts"), token, b"")
        .await
        .json();
    assert_eq!(
        items["items"],
        serde_json::json!([{"id": "p1", "item": object}, {"id": "p2", "item": "42"}])
    );

    // A later run reads them back with items(), through the runner and Redis.
    let r = req(
        http,
        "POST",
        &format!("{t}/invoke"),
        token,
        br#"{"limit": 1}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.error_message());
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["value"], serde_json::json!([{"id": "p2", "item": "42"}]));
    let r = req(http, "POST", &format!("{t}/invoke"), token, b"{}").await;
    assert_eq!(
        r.json()["value"],
        serde_json::json!([{"id": "p1", "item": object}, {"id": "p2", "item": "42"}])
    );
    daemon.stop(Duration::from_secs(20)).await;
}

const RESERVED: &str = r#"
export function onMessage(msg, thwonk) {
  thwonk.send({ to: msg.sender.address, subject: "copy", text: "t", headers: { Bcc: "hidden@example.net" } });
}
"#;

const MESSAGE: &str = "From: Alice <alice@example.net>\r\nTo: copy@example.org\r\nSubject: ping\r\nMessage-ID: <m1@example.net>\r\n\r\nhello\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_reports_the_failure_the_live_run_has() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(dir.path(), relay.addr, None);
    let script = dir.path().join("rules.js");
    std::fs::write(&script, RESERVED).unwrap();
    let msg = dir.path().join("m.eml");
    std::fs::write(&msg, MESSAGE).unwrap();

    // `thwonk test`, no daemon.
    let out = env.run(&[
        "test",
        script.to_str().unwrap(),
        "--message",
        msg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let tested: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tested["status"], "error", "{tested}");
    assert_eq!(tested["error"]["kind"], "ScriptError");
    let message = tested["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(r#"header "Bcc" is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"#),
        "{message}"
    );
    assert_eq!(tested["sends"], serde_json::json!([]));

    env.ok(&["user", "add", "dora"]);
    let token = env.ok(&["token", "create", "--user", "dora"]);
    let token = token.trim();
    let daemon = Daemon::start(&env).await;
    let t = "/v1/thwonks/copy@example.org";
    let r = req(
        daemon.http_addr(),
        "PUT",
        &format!("{t}/script"),
        token,
        RESERVED.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    // The API's dry run says the same.
    let r = req(
        daemon.http_addr(),
        "POST",
        &format!("{t}/test"),
        token,
        serde_json::json!({"message": MESSAGE})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.error_message());
    let api_dry = r.json();
    assert_eq!(api_dry["status"], "error", "{api_dry}");
    assert_eq!(api_dry["error"]["message"], message.as_str());
    // The live run fails with the same error, and sends nothing.
    send_mail(
        daemon.smtp,
        "alice@example.net",
        "copy@example.org",
        "ping",
        "hello",
    )
    .await;
    let runs = env
        .wait_for_runs("copy@example.org", 1, Duration::from_secs(30))
        .await;
    assert_eq!(runs[0]["status"], "error", "{:?}", runs[0]);
    // `thwonk runs --json` prints the message as `error` (or, nested, as `error.message`).
    let live = runs[0]["error"]
        .as_str()
        .or(runs[0]["error"]["message"].as_str())
        .unwrap_or_else(|| panic!("no error message: {}", runs[0]));
    assert_eq!(live, message, "live and dry run agree");
    assert_eq!(relay.count(), 0);
    daemon.stop(Duration::from_secs(20)).await;
}
