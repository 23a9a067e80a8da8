//! The embedded default as a new user meets it: outgoing mail is captured to files, not sent.

mod support;

use std::time::{Duration, Instant};
use support::{Daemon, send_mail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_replies_are_captured_as_eml_files_in_the_data_dir() {
    let cwd = tempfile::tempdir().unwrap();
    // Exactly the fresh-install defaults: no data_dir and no egress settings, so the data
    // directory is the relative `./data` and mail is captured. Only the ports are chosen by
    // the kernel, so that tests can run side by side.
    let mut env = support::env(cwd.path(), "127.0.0.1:9".parse().unwrap(), None);
    env.vars
        .retain(|(k, _)| !k.starts_with("THWONK_EGRESS_") && k != "THWONK_DATA_DIR");
    env.cwd = cwd.path().to_path_buf();
    let dir = cwd.path().join("data");
    let script = support::repo().join("sandbox-scripts/echo.js");
    env.deploy("echo@example.org", script.to_str().unwrap());
    let daemon = Daemon::start(&env).await;

    send_mail(
        daemon.smtp,
        "zoe@example.net",
        "echo@example.org",
        "ping",
        "is anyone there?",
    )
    .await;

    let eml = support::captured_eml(&dir, Duration::from_secs(30)).await;
    let raw = std::fs::read(&eml).unwrap();
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eml.with_extension("json")).unwrap()).unwrap();
    assert_eq!(envelope["rcpt_to"], serde_json::json!(["zoe@example.net"]));
    // The envelope sender is the row's VERP bounce address, in the thwonk's domain.
    let mail_from = envelope["mail_from"].as_str().unwrap();
    assert!(
        mail_from.starts_with("bounces+") && mail_from.ends_with("@example.org"),
        "{mail_from}"
    );
    let view =
        support::Received::new("echo@example.org", vec!["zoe@example.net".into()], raw).parsed();
    assert_eq!(view.subject, "Re: ping");
    assert!(view.text.contains("is anyone there?"), "{}", view.text);
    assert!(
        view.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("In-Reply-To") && v.contains('@'))
    );
    assert!(
        view.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("Auto-Submitted") && v == "auto-replied")
    );
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_redis_dies_with_a_killed_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None);
    env.vars.retain(|(k, _)| !k.starts_with("THWONK_EGRESS_"));
    let daemon = Daemon::start(&env).await;
    let socket = dir.path().join("redis.sock");
    assert!(
        tokio::net::UnixStream::connect(&socket).await.is_ok(),
        "the private redis-server answers while the daemon runs"
    );
    daemon.kill_hard();
    let killed = Instant::now();
    while tokio::net::UnixStream::connect(&socket).await.is_ok() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "redis-server outlived its SIGKILLed daemon"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
