//! HTTP exhaustion against a real `thwonk serve` (issue 13 item 9): half-sent requests are
//! capped per address and in all and closed after the header read timeout, while SMTP,
//! `/readyz` and the API keep answering; event streams are capped per token and share one
//! Redis pub/sub connection. Small configured caps keep the tests quick; the defaults are
//! in config/thwonk.toml.
//!
//! Every 127.0.0.0/8 address is usable on Linux loopback: a socket bound to 127.0.0.2 is
//! another client address than the tests' own 127.0.0.1.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{Daemon, Relay, SmtpClient, eventually};
use thwonk_api::client::{self, EventStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection to `addr` from the loopback address `from`.
async fn connect_from(addr: SocketAddr, from: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Half a request: the request line and one header, never the blank line that ends them.
const HALF_SENT: &[u8] = b"GET /v1/thwonks HTTP/1.1\r\nHost: thwonk\r\n";

/// `n` connections from `from`, each with half a request sent.
async fn half_sent(addr: SocketAddr, from: &str, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = connect_from(addr, from).await;
        s.write_all(HALF_SENT).await.unwrap();
        held.push(s);
    }
    held
}

/// What the server says to a connection that sends nothing, up to its close.
async fn answer_to_silence(mut s: TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the server answers and closes")
        .ok();
    String::from_utf8_lossy(&got).into_owned()
}

async fn get(stream: TcpStream, path: &str, token: Option<&str>) -> client::Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    client::send(stream, "GET", path, &headers, b"")
        .await
        .unwrap()
}

fn assert_turned_away(said: &str, why: &str) {
    assert!(
        said.starts_with("HTTP/1.1 503 "),
        "expected 503, got {said:?}"
    );
    assert!(
        said.contains("too_many_connections") && said.contains(why),
        "{said:?}"
    );
}

/// A fresh PostgreSQL database (dropped with the value) when `THWONK_TEST_POSTGRES_URL` is set.
async fn scratch_database() -> Option<thwonk_store::scratch::ScratchDb> {
    let base = support::postgres_url()?;
    Some(
        thwonk_store::scratch::scratch_postgres_url(&base)
            .await
            .expect("a scratch PostgreSQL database"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_capped_and_timed_out_and_the_daemon_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    // A scratch database of its own on PostgreSQL when one is configured (SQLite otherwise).
    let db = scratch_database().await;
    let mut env = support::env(
        dir.path(),
        relay.addr,
        db.as_ref().map(|d| d.url().to_string()).as_deref(),
    );
    for (k, v) in [
        ("THWONK_HTTP_MAX_CONNECTIONS", "40"),
        ("THWONK_HTTP_MAX_CONNECTIONS_PER_IP", "30"),
        ("THWONK_HTTP_HEADER_READ_TIMEOUT_SECS", "3"),
    ] {
        env.vars.push((k.into(), v.into()));
    }
    env.ok(&["user", "add", "dora"]);
    let token = env.ok(&["token", "create", "--user", "dora"]);
    let token = token.trim();
    let daemon = Daemon::start(&env).await;
    let http = daemon.http_addr();

    // One address holds its 30 connections with half-sent requests; its 31st is turned away.
    let started = Instant::now();
    let mut held = half_sent(http, "127.0.0.2", 30).await;
    let said = answer_to_silence(connect_from(http, "127.0.0.2").await).await;
    assert_turned_away(&said, "http.max_connections_per_ip");
    // Another address is served: /readyz and an API call with a token.
    let ready = get(TcpStream::connect(http).await.unwrap(), "/readyz", None).await;
    assert_eq!(ready.status, 200, "{ready:?}");
    let list = get(
        TcpStream::connect(http).await.unwrap(),
        "/v1/thwonks",
        Some(token),
    )
    .await;
    assert_eq!(list.status, 200, "{list:?}");

    // Those two connections give their places back as their tasks end, just after the
    // answers: give them time, so that the next ten make exactly 40.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A second address takes the rest: 40 in all. Now every new connection is turned away,
    // but the process keeps its descriptors for the rest: SMTP answers.
    held.extend(half_sent(http, "127.0.0.3", 10).await);
    let said = answer_to_silence(connect_from(http, "127.0.0.4").await).await;
    assert_turned_away(&said, "http.max_connections");
    let mut smtp = SmtpClient::connect(daemon.smtp).await;
    smtp.expect("220 ").await;
    smtp.cmd("EHLO client.test", "250").await;
    smtp.quit().await;

    // The half-sent requests are closed after the header read timeout (3 s), none before.
    let reads = held.into_iter().map(|mut s| {
        tokio::spawn(async move {
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest))
                .await
                .is_ok();
            (closed, started.elapsed())
        })
    });
    for read in reads.collect::<Vec<_>>() {
        let (closed, after) = read.await.unwrap();
        assert!(closed, "a half-sent request was never closed");
        assert!(after >= Duration::from_secs(2), "closed after {after:?}");
    }
    // And the places are given back: a new client is served again.
    let ready = eventually("the API serves again", Duration::from_secs(10), || async {
        let r = get(connect_from(http, "127.0.0.4").await, "/readyz", None).await;
        (r.status == 200).then_some(r)
    })
    .await;
    assert_eq!(ready.status, 200);
    daemon.stop(Duration::from_secs(10)).await;
}

/// Clients of `redis` in subscriber mode (`sub=` or `psub=` above 0 in CLIENT LIST).
async fn subscribers(redis: &thwonk_thoonk::Redis) -> usize {
    let mut conn = redis.shared();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    list.lines()
        .filter(|line| {
            line.split(' ')
                .any(|field| matches!(field.split_once('='), Some(("sub" | "psub", n)) if n != "0"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_token_and_share_one_redis_connection() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    // A scratch database of its own on PostgreSQL when one is configured (SQLite otherwise).
    let db = scratch_database().await;
    let mut env = support::env(
        dir.path(),
        relay.addr,
        db.as_ref().map(|d| d.url().to_string()).as_deref(),
    );
    env.vars
        .push(("THWONK_HTTP_MAX_EVENT_STREAMS_PER_TOKEN".into(), "3".into()));
    env.ok(&["user", "add", "root", "--admin"]);
    let first = env.ok(&["token", "create", "--user", "root", "--name", "one"]);
    let second = env.ok(&["token", "create", "--user", "root", "--name", "two"]);
    let (first, second) = (first.trim(), second.trim());
    let script = support::repo().join("sandbox-scripts/echo.js");
    env.deploy("news@example.org", script.to_str().unwrap());
    let daemon = Daemon::start(&env).await;
    let http = daemon.http_addr();
    let redis = support::private_redis(dir.path()).await;
    let path = |feed: &str| format!("/v1/thwonks/news@example.org/feeds/{feed}/events");
    // The runner follows its script jobs on a pub/sub connection of its own: once it is up,
    // the count is the baseline.
    let before = eventually(
        "the runner's subscription",
        Duration::from_secs(10),
        || async {
            let n = subscribers(&redis).await;
            (n >= 1).then_some(n)
        },
    )
    .await;

    // Three streams on one token: accepted.
    let mut open = Vec::new();
    for feed in ["a", "b", "c"] {
        let s = EventStream::open(http, &path(feed), Some(first), None)
            .await
            .unwrap();
        assert_eq!(s.status, 200, "{}", String::from_utf8_lossy(&s.body));
        open.push(s);
    }
    // The fourth on that token: 429 with the JSON error.
    let refused = EventStream::open(http, &path("d"), Some(first), None)
        .await
        .unwrap();
    assert_eq!(refused.status, 429);
    let error: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(error["error"]["code"], "too_many_streams", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("http.max_event_streams_per_token"),
        "{error}"
    );
    // Another token of the same user has its own streams.
    for feed in ["a", "d"] {
        let s = EventStream::open(http, &path(feed), Some(second), None)
            .await
            .unwrap();
        assert_eq!(s.status, 200);
        open.push(s);
    }

    // Five streams, one pub/sub connection more than before any stream.
    assert_eq!(subscribers(&redis).await, before + 1);

    // A stream that ends gives its place back.
    open.remove(0);
    let again = eventually("a place is given back", Duration::from_secs(10), || async {
        let s = EventStream::open(http, &path("e"), Some(first), None)
            .await
            .unwrap();
        (s.status == 200).then_some(s)
    })
    .await;
    open.push(again);
    assert_eq!(subscribers(&redis).await, before + 1);
    drop(open);
    daemon.stop(Duration::from_secs(10)).await;
}
