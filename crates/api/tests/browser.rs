//! A real browser follows a feed: headless Chromium opens an `EventSource` on the API's event
//! stream (token in `?access_token=`, page on another origin) and reports each event it
//! receives to a collector socket of this test, while a run publishes to the feed.
//!
//! Needs /usr/bin/chromium (`scripts/install-test-deps.sh` installs it); skipped, saying so,
//! when it is missing.

mod support;

use std::path::Path;
use std::time::Duration;
use support::{Server, publish_by_run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Each request line the page sends to the collector (`GET /open`, `GET /event?...`).
async fn collector() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                if let Some(line) = head.lines().next() {
                    let _ = tx.send(line.to_string());
                }
                let _ = conn
                    .write_all(b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (port, rx)
}

async fn next_line(rx: &mut mpsc::UnboundedReceiver<String>, what: &str) -> String {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("the browser did not report {what} within 60 s"))
        .expect("collector open")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_eventsource_receives_a_feeds_events() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED: {CHROMIUM} is missing (scripts/install-test-deps.sh installs chromium)"
        );
        return;
    }
    let s = Server::start().await;
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/web@example.org/script",
            Some(&s.alice),
            b"export function onMessage() {}",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.error_message());
    let t = s
        .store
        .thwonk_by_address(&thwonk_core::Address::parse("web@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (port, mut reports) = collector().await;
    let page = s.dir.path().join("page.html");
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html><script>
const report = (what) => fetch("http://127.0.0.1:{port}/" + what, {{mode: "no-cors"}});
const es = new EventSource("http://{api}/v1/thwonks/web@example.org/feeds/news/events?access_token={token}");
es.onopen = () => report("open");
es.addEventListener("publish", (e) => {{
  const d = JSON.parse(e.data);
  report("event?id=" + encodeURIComponent(e.lastEventId) + "&item=" + encodeURIComponent(d.item));
}});
es.onerror = () => report("error");
</script>"#,
            api = s.addr,
            token = s.alice,
        ),
    )
    .unwrap();
    let profile = s.dir.path().join("chromium-profile");
    let mut browser = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
            &format!("file://{}", page.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");

    let first = next_line(&mut reports, "the stream opening").await;
    assert!(
        first.starts_with("GET /open "),
        "the browser reported {first:?}"
    );
    publish_by_run(
        &s.store,
        &s.redis,
        &t.id,
        &format!("{}/news", t.id),
        &[("w1", "hello browser")],
    )
    .await;
    let got = next_line(&mut reports, "the event").await;
    let _ = browser.kill().await;
    assert!(
        got.starts_with("GET /event?id=w1&item=hello%20browser "),
        "the browser reported {got:?}"
    );
}
