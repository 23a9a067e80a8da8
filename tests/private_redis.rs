//! The daemon and its private Redis as real processes: one daemon per data directory (a
//! second `serve` changes nothing), and a private redis-server that dies (`kill -9`) is
//! started again, or the daemon exits non-zero when it cannot be.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{Daemon, Relay, eventually, output_within, send_mail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The pid of `daemon`'s redis-server child, if it has one that is running (a zombie does not
/// count).
fn private_redis_pid(daemon: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{daemon}/task")).ok()?;
    let mut children = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children.into_iter().find(|pid| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        comm.trim() == "redis-server" && process_state(*pid) != Some('Z')
    })
}

/// The state letter of a process (`R`, `S`, `Z`...), None when there is no such process.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The children of `pid` that are zombies (exited, not reaped).
fn zombie_children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|l| {
            l.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|c| process_state(*c) == Some('Z'))
        .collect()
}

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

/// `GET /readyz`: its status code and body.
async fn readyz(addr: std::net::SocketAddr) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// A message to echo@ gets 250, runs, and its reply reaches the relay.
async fn a_message_runs(daemon: &Daemon, relay: &Relay, subject: &str) {
    send_mail(
        daemon.smtp,
        "ann@example.net",
        "echo@example.org",
        subject,
        "x",
    )
    .await;
    let want = format!("Re: {subject}");
    relay
        .wait_for(&want, Duration::from_secs(30), |r| {
            r.iter().any(|m| m.parsed().subject == want)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_data_dir_changes_nothing_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(&dir.path().join("data"), relay.addr, None);
    env.deploy("echo@example.org", "sandbox-scripts/echo.js");
    let daemon = Daemon::start(&env).await;
    let redis = private_redis_pid(daemon.pid()).expect("the daemon's private redis-server");

    let env2 = env.clone();
    let second = tokio::task::spawn_blocking(move || {
        output_within(env2.command(&["serve"]), Duration::from_secs(60))
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "the second serve exited 0: {stderr}"
    );
    assert!(
        stderr.contains("another thwonk daemon")
            && stderr.contains(&format!("pid {}", daemon.pid()))
            && stderr.contains("nothing was changed"),
        "the second serve says why: {stderr}"
    );
    assert!(
        !stderr.contains("redis-server"),
        "the second serve touched no redis-server: {stderr}"
    );

    // The first daemon goes on as before: the same Redis, ready, and mail still runs.
    assert_eq!(private_redis_pid(daemon.pid()), Some(redis));
    let (code, body) = readyz(daemon.http_addr()).await.expect("/readyz answers");
    assert_eq!(code, 200, "{body}");
    a_message_runs(&daemon, &relay, "after the second serve").await;
    assert!(zombie_children(daemon.pid()).is_empty());
    daemon.stop(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_private_redis_is_started_again_and_mail_runs_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let env = support::env(&dir.path().join("data"), relay.addr, None);
    env.deploy("echo@example.org", "sandbox-scripts/echo.js");
    let daemon = Daemon::start(&env).await;
    a_message_runs(&daemon, &relay, "before").await;
    let old = private_redis_pid(daemon.pid()).expect("the daemon's private redis-server");

    kill_9(old);
    let new = eventually(
        "a new private redis-server",
        Duration::from_secs(30),
        || async { private_redis_pid(daemon.pid()).filter(|p| *p != old) },
    )
    .await;
    assert_ne!(new, old);
    eventually("/readyz ready again", Duration::from_secs(30), || async {
        readyz(daemon.http_addr())
            .await
            .filter(|(code, _)| *code == 200)
    })
    .await;
    // The killed one was reaped: no zombie is left.
    assert_ne!(
        process_state(old),
        Some('Z'),
        "redis-server {old} is a zombie"
    );
    assert!(zombie_children(daemon.pid()).is_empty());
    a_message_runs(&daemon, &relay, "after the restart").await;

    let log = daemon.log().join("\n");
    assert!(log.contains("the private redis-server exited"), "{log}");
    assert!(log.contains("private redis-server started again"), "{log}");
    daemon.stop(Duration::from_secs(30)).await;
}

/// A redis-server that starts once, then refuses to start again.
fn once_only_redis(dir: &Path) -> String {
    let script = dir.join("redis-once.sh");
    let mark = dir.join("redis-started");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e '{mark}' ]; then echo 'refusing to start again' >&2; exit 1; fi\n\
             touch '{mark}'\nexec redis-server \"$@\"\n",
            mark = mark.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_redis_that_cannot_start_again_stops_the_daemon_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(&dir.path().join("data"), relay.addr, None);
    env.vars.push((
        "THWONK_REDIS_SERVER_BINARY".into(),
        once_only_redis(dir.path()),
    ));
    let daemon = Daemon::start(&env).await;
    let redis = private_redis_pid(daemon.pid()).expect("the daemon's private redis-server");

    kill_9(redis);
    eventually(
        "the supervisor to give up",
        Duration::from_secs(90),
        || async {
            daemon
                .log()
                .iter()
                .any(|l| l.contains("a role stopped"))
                .then_some(())
        },
    )
    .await;
    let log = daemon.log();
    let status = daemon
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("the daemon exits");
    let text = log.join("\n");
    assert!(!status.success(), "exit status {status}: {text}");
    assert!(
        text.contains("did not start again in 5 tries"),
        "the reason is logged: {text}"
    );
    // While Redis was away the job loops failed every half second; each warning is logged
    // once per interval, not once per failure.
    for warning in ["cannot take inbound jobs", "cannot take outbound jobs"] {
        let n = log.iter().filter(|l| l.contains(warning)).count();
        assert!(n <= 1, "{warning:?} logged {n} times: {text}");
    }
}
