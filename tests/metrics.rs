//! Metrics and logs of the roles as separate processes: each serves `GET /metrics` on its
//! `metrics.listen` port, and its counters move with the mail it handles; the runner, with
//! `log.format = "json"`, writes one JSON object per line whose run span names the thwonk,
//! the message and the run.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::{Daemon, Relay, SmtpClient, send_mail};
use thwonk_thoonk::PrivateRedis;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One raw HTTP/1.1 exchange: the status line and the body.
async fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Wait until `series` in `addr`'s metrics reaches `want`.
async fn wait_for_sample(addr: SocketAddr, series: &str, want: f64) -> String {
    let start = std::time::Instant::now();
    loop {
        let text = scrape(addr).await;
        if sample(&text, series) == Some(want) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{series} never reached {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RCPT to an address with no thwonk: the reply code.
async fn refused_rcpt(smtp: SocketAddr, rcpt: &str) -> String {
    let mut c = SmtpClient::connect(smtp).await;
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("MAIL FROM:<a@example.net>", "250").await;
    let reply = c.command(&format!("RCPT TO:<{rcpt}>")).await.unwrap();
    c.quit().await;
    reply.get(..3).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_serves_metrics_that_move_with_the_mail_and_the_runner_logs_json() {
    let dir = tempfile::tempdir().unwrap();
    let redis = PrivateRedis::start(
        "redis-server",
        &dir.path().join("redis"),
        &dir.path().join("r.sock"),
    )
    .await
    .unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(&dir.path().join("data"), relay.addr, None);
    env.vars.push(("THWONK_REDIS_URL".into(), redis.url()));
    env.vars
        .push(("THWONK_METRICS_LISTEN".into(), "127.0.0.1:0".into()));
    env.deploy("echo@example.org", "sandbox-scripts/echo.js");

    let ingress = Daemon::start_role(&env, "ingress").await;
    let mut json_env = env.clone();
    json_env
        .vars
        .push(("THWONK_LOG_FORMAT".into(), "json".into()));
    let runner = Daemon::start_role(&json_env, "runner").await;
    let egress = Daemon::start_role(&env, "egress").await;
    let (ingress_m, runner_m, egress_m) = (
        ingress.metrics_addr(),
        runner.metrics_addr(),
        egress.metrics_addr(),
    );

    let before = scrape(ingress_m).await;
    assert_eq!(
        sample(&before, "thwonk_ingress_messages_accepted_total"),
        Some(0.0)
    );
    assert_eq!(
        refused_rcpt(ingress.smtp, "nobody@example.org").await,
        "550"
    );
    send_mail(
        ingress.smtp,
        "yan@example.net",
        "echo@example.org",
        "hi",
        "ping",
    )
    .await;
    relay
        .wait_for("the echo reply", Duration::from_secs(30), |r| !r.is_empty())
        .await;

    let text = scrape(ingress_m).await;
    assert_eq!(
        sample(&text, "thwonk_ingress_messages_accepted_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "thwonk_ingress_refused_total{reason=\"unknown_recipient\"}"
        ),
        Some(1.0)
    );

    let text = wait_for_sample(
        runner_m,
        "thwonk_runs_total{trigger=\"message\",status=\"ok\",error_kind=\"\"}",
        1.0,
    )
    .await;
    assert_eq!(sample(&text, "thwonk_run_instructions_count"), Some(1.0));
    assert_eq!(
        sample(&text, "thwonk_run_duration_seconds_count"),
        Some(1.0)
    );
    assert!(sample(&text, "thwonk_run_instructions_sum").unwrap() > 0.0);
    assert_eq!(
        sample(
            &text,
            "thwonk_queue_depth{queue=\"inbound\",state=\"queued\"}"
        ),
        Some(0.0)
    );
    assert_eq!(sample(&text, "thwonk_queue_up"), Some(1.0));
    assert!(text.contains("# TYPE thwonk_run_duration_seconds histogram"));

    wait_for_sample(
        egress_m,
        "thwonk_egress_deliveries_total{mode=\"relay\",outcome=\"sent\"}",
        1.0,
    )
    .await;

    // Only GET /metrics.
    let (status, _) = http(egress_m, "GET /other HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(egress_m, "POST /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");

    // The runner's log: JSON lines; the committed run's line carries its span's ids.
    let log = runner.log();
    let committed = log
        .iter()
        .find(|l| l.contains("run committed"))
        .unwrap_or_else(|| panic!("no 'run committed' line in {log:#?}"));
    let v: serde_json::Value =
        serde_json::from_str(committed).unwrap_or_else(|e| panic!("not JSON ({e}): {committed}"));
    let span = &v["span"];
    assert_eq!(span["name"], "run", "{v}");
    assert_eq!(span["thwonk"], "echo@example.org", "{v}");
    assert!(!span["message"].as_str().unwrap_or("").is_empty(), "{v}");
    assert!(!span["run"].as_str().unwrap_or("").is_empty(), "{v}");
    assert!(
        log.iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "every line is JSON: {log:#?}"
    );

    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    redis.stop().await;
}
