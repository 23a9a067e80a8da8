//! The roles as separate processes (what systemd units and compose services run): ingress,
//! runner and egress share one Redis and one database and deliver like `thwonk serve`.

mod support;

use std::time::Duration;
use support::{Daemon, Relay, send_mail};
use thwonk_thoonk::PrivateRedis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_runner_and_egress_as_separate_processes_deliver_a_reply() {
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
    env.deploy("echo@example.org", "sandbox-scripts/echo.js");

    let ingress = Daemon::start_role(&env, "ingress").await;
    let runner = Daemon::start_role(&env, "runner").await;
    let egress = Daemon::start_role(&env, "egress").await;

    send_mail(
        ingress.smtp,
        "yan@example.net",
        "echo@example.org",
        "hi",
        "ping",
    )
    .await;
    let got = relay
        .wait_for("the echo reply", Duration::from_secs(30), |r| !r.is_empty())
        .await;
    assert_eq!(got[0].rcpt_to, vec!["yan@example.net".to_string()]);
    assert_eq!(got[0].parsed().subject, "Re: hi");
    assert!(
        runner.log().iter().any(|l| l.contains("run committed")),
        "the run happened in the runner process"
    );
    assert!(
        !ingress.log().iter().any(|l| l.contains("run committed")),
        "and not in the ingress"
    );

    for d in [ingress, runner, egress] {
        d.stop(Duration::from_secs(20)).await;
    }
    redis.stop().await;
}
