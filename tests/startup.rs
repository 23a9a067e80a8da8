//! What a user sees when the daemon starts: where outgoing mail goes, and, when it cannot
//! start, one clear line (a config file's mistake with its file and line; a dead Redis's
//! error once, not three times).

mod support;

use std::time::Duration;
use support::{Daemon, output_within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_line_and_file_say_where_outgoing_mail_goes() {
    let dir = tempfile::tempdir().unwrap();
    let relay: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let data = dir.path().join("data");
    let env = support::env(&data, relay, None);
    let daemon = Daemon::start(&env).await;
    assert_eq!(
        daemon.ready.outgoing.as_deref(),
        Some("relayed to 127.0.0.1:9")
    );
    let ready_line = daemon
        .log()
        .into_iter()
        .find(|l| l.contains("thwonk ready"))
        .expect("the ready line");
    assert!(
        ready_line.contains("relayed to 127.0.0.1:9"),
        "{ready_line}"
    );
    daemon.stop(Duration::from_secs(30)).await;

    let mut env = support::env(&data, relay, None);
    env.vars
        .push(("THWONK_EGRESS_MODE".into(), "capture".into()));
    // A host name is a listen address like an IP (the last setting of a variable wins).
    env.vars
        .push(("THWONK_SMTP_LISTEN".into(), "localhost:0".into()));
    let daemon = Daemon::start(&env).await;
    assert_eq!(daemon.smtp.ip(), std::net::Ipv4Addr::LOCALHOST);
    let want = format!(
        "captured as .eml files in {} (nothing is sent)",
        data.join("captured").display()
    );
    assert_eq!(daemon.ready.outgoing.as_deref(), Some(want.as_str()));
    assert!(
        daemon
            .log()
            .iter()
            .any(|l| l.contains("thwonk ready") && l.contains(&want)),
        "{:?}",
        daemon.log()
    );
    daemon.stop(Duration::from_secs(30)).await;

    // A role without the egress says nothing about outgoing mail.
    let redis = thwonk_thoonk::PrivateRedis::start(
        "redis-server",
        &dir.path().join("redis"),
        &dir.path().join("r.sock"),
    )
    .await
    .unwrap();
    let mut env = support::env(&data, relay, None);
    env.vars.push(("THWONK_REDIS_URL".into(), redis.url()));
    let ingress = Daemon::start_role(&env, "ingress").await;
    assert_eq!(ingress.ready.outgoing, None);
    assert!(
        ingress
            .log()
            .iter()
            .any(|l| l.contains("thwonk ready") && !l.contains("outgoing")),
        "{:?}",
        ingress.log()
    );
    ingress.stop(Duration::from_secs(30)).await;
    redis.stop().await;
}

#[test]
fn a_config_file_mistake_names_the_file_and_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = support::env(
        &dir.path().join("data"),
        "127.0.0.1:9".parse().unwrap(),
        None,
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[smtp]\nhostname = \"mx.test\"\nlisen = \"127.0.0.1:2525\"\n",
    )
    .unwrap();
    let out = output_within(
        env.command(&["serve", "--config", bad.to_str().unwrap()]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with(&format!(
            "thwonk: config: {} line 3, column 1: ",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `lisen`"), "{stderr}");
    assert!(!stderr.contains("config: config"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn a_dead_external_redis_is_named_once_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = support::env(
        &dir.path().join("data"),
        "127.0.0.1:9".parse().unwrap(),
        None,
    );
    // Port 1 on localhost: nothing listens, the connection is refused at once.
    env.vars
        .push(("THWONK_REDIS_URL".into(), "redis://127.0.0.1:1".into()));
    let out = output_within(env.command(&["serve"]), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("thwonk: "), "{stderr}");
    assert!(last.contains("redis://127.0.0.1:1"), "{last}");
    assert_eq!(
        last.matches("Connection refused").count(),
        1,
        "the cause once: {last}"
    );
}
