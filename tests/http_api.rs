//! End to end over HTTP: a new user, given a token by the CLI, deploys a thwonk over HTTP,
//! follows its feed as Server-Sent Events, mail arrives over SMTP, and the run, the file it
//! wrote and the feed event are all seen over HTTP. The CLI meanwhile goes through the
//! daemon's admin socket (mode 0600). Real daemon binary, real SMTP, real Redis and SQLite.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::{Daemon, Relay, req, send_mail};
use thwonk_api::client::{self, EventStream};

const SCRIPT: &str = r#"
export function onMessage(msg, thwonk) {
  thwonk.files.write("last-subject.txt", msg.subject);
  thwonk.feed("news").publish(msg.subject);
  console.log("got " + msg.subject);
}
export function onRequest(req, thwonk) {
  thwonk.files.write("asked.txt", req.body.question);
  return { answer: req.body.question.toUpperCase(), last: thwonk.files.read("last-subject.txt") };
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_user_deploys_and_watches_a_thwonk_entirely_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(dir.path(), relay.addr, None);
    // Metrics on a listener of their own (issue 13 item 13).
    env.vars
        .push(("THWONK_METRICS_LISTEN".into(), "127.0.0.1:0".into()));
    env.ok(&["user", "add", "dora"]);
    env.ok(&["user", "add", "root", "--admin"]);
    let admin = env.ok(&["token", "create", "--user", "root"]);
    let admin = admin.trim().to_string();
    let token = env.ok(&["token", "create", "--user", "dora", "--name", "laptop"]);
    let token = token.trim().to_string();
    assert!(token.starts_with("thw_"));
    assert!(env.ok(&["token", "list"]).contains("dora\tlaptop\tlive"));

    let daemon = Daemon::start(&env).await;
    let http = daemon.http_addr();
    let socket = dir.path().join("admin.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the admin socket is for the daemon's user only"
    );

    let t = "/v1/thwonks/news@example.org";
    let r = req(
        http,
        "PUT",
        &format!("{t}/script"),
        &token,
        SCRIPT.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    let mut events = EventStream::open(http, &format!("{t}/feeds/news/events"), Some(&token), None)
        .await
        .unwrap();
    assert_eq!(events.status, 200);

    send_mail(
        daemon.smtp,
        "carol@example.net",
        "news@example.org",
        "hello over smtp",
        "hi",
    )
    .await;

    let e = events
        .next_within(Duration::from_secs(30))
        .await
        .expect("the feed event arrives on the event stream");
    assert_eq!(e.event, "publish");
    let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(data["item"], "hello over smtp");
    assert_eq!(e.id.as_deref(), data["id"].as_str());

    let runs = req(http, "GET", &format!("{t}/runs"), &token, b"")
        .await
        .json();
    let run = &runs["runs"][0];
    assert_eq!(run["status"], "ok", "{runs}");
    assert_eq!(run["logs"][0]["message"], "got hello over smtp");
    assert!(run["cost"]["instructions"].as_i64().unwrap() > 0);
    // The run names its trigger and the message it handled.
    assert_eq!(run["trigger"], "message");
    assert_eq!(run["message"]["from"], "carol@example.net", "{run}");
    assert_eq!(run["message"]["subject"], "hello over smtp");
    assert!(run["message"]["message_id"].is_string(), "{run}");
    let one = req(
        http,
        "GET",
        &format!("{t}/runs/{}", run["id"].as_str().unwrap()),
        &token,
        b"",
    )
    .await;
    assert_eq!(one.json()["id"], run["id"]);
    assert_eq!(one.json()["message"], run["message"]);
    let file = req(
        http,
        "GET",
        &format!("{t}/files/last-subject.txt"),
        &token,
        b"",
    )
    .await;
    assert_eq!(
        (file.status, file.body.as_slice()),
        (200, &b"hello over smtp"[..])
    );
    let items = req(http, "GET", &format!("{t}/feeds/news"), &token, b"")
        .await
        .json();
    assert_eq!(items["items"][0]["item"], "hello over smtp");

    // Invoke: the JSON body runs onRequest through the daemon's runner, after the mail, and
    // its effects commit like a message run's.
    let r = req(
        http,
        "POST",
        &format!("{t}/invoke"),
        &token,
        br#"{"question": "who posted?"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.error_message());
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["value"]["answer"], "WHO POSTED?");
    assert_eq!(v["value"]["last"], "hello over smtp");
    let asked = req(http, "GET", &format!("{t}/files/asked.txt"), &token, b"").await;
    assert_eq!(asked.body.as_slice(), &b"who posted?"[..]);
    // Another user's token cannot invoke it: the thwonk is not theirs to see.
    env.ok(&["user", "add", "eve"]);
    let eve = env.ok(&["token", "create", "--user", "eve"]);
    let r = req(http, "POST", &format!("{t}/invoke"), eve.trim(), b"{}").await;
    assert_eq!(r.status, 404);

    // Metrics are not open on the API listener (issue 13 item 13): no token, 401; an owner's
    // token, 403; an admin's, 200.
    let metrics_over = |addr, auth: Option<String>| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let header = auth.map(|t| ("authorization", format!("Bearer {t}")));
        let headers: Vec<(&str, &str)> = header.iter().map(|(k, v)| (*k, v.as_str())).collect();
        client::send(stream, "GET", "/metrics", &headers, b"")
            .await
            .unwrap()
    };
    let m = metrics_over(http, None).await;
    assert_eq!(m.status, 401);
    assert!(!String::from_utf8_lossy(&m.body).contains("thwonk_runs_total"));
    assert_eq!(metrics_over(http, Some(token.clone())).await.status, 403);
    assert_eq!(metrics_over(http, Some(admin.clone())).await.status, 200);
    // The metrics listener serves them to a scraper without a token: the run and the
    // delivery were counted.
    let m = metrics_over(daemon.metrics_addr(), None).await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    assert!(text.contains("thwonk_runs_total{"), "{text}");
    assert!(text.contains("trigger=\"request\""), "{text}");
    assert!(text.contains("thwonk_queue_depth{"), "{text}");

    // The CLI, with the daemon running, goes through the admin socket (no token needed) and
    // sees the thwonk the user deployed; a deploy through it is checked the same way.
    assert!(
        env.ok(&["list"])
            .contains("news@example.org\tactive\tversion 1")
    );
    let bad = dir.path().join("bad.js");
    std::fs::write(&bad, "export function onMessage( {").unwrap();
    let out = env.run(&["deploy", "news@example.org", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("deploy refused"));
    let good = dir.path().join("good.js");
    std::fs::write(&good, SCRIPT).unwrap();
    assert!(
        env.ok(&["deploy", "news@example.org", good.to_str().unwrap()])
            .contains("version 2")
    );
    assert!(
        env.ok(&["runs", "news@example.org"])
            .contains("[log] got hello over smtp")
    );
    assert_eq!(
        env.ok(&["files", "news@example.org", "get", "last-subject.txt"]),
        "hello over smtp"
    );

    // Revoked: the token stops working.
    let list = env.ok(&["token", "list"]);
    let dora = list.lines().find(|l| l.contains("\tlaptop\t")).unwrap();
    let id = dora.split('\t').next().unwrap();
    env.ok(&["token", "revoke", id]);
    let r = req(http, "GET", "/v1/thwonks", &token, b"").await;
    assert_eq!(r.status, 401);

    daemon.stop(Duration::from_secs(20)).await;
    assert!(!socket.exists(), "the admin socket is removed at shutdown");
    // Without a daemon the CLI uses the database directly, and sees the same.
    assert!(
        env.ok(&["list"])
            .contains("news@example.org\tactive\tversion 2")
    );
}
