//! What operators run the daemon with: systemd's readiness protocol and `thwonk probe`.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;
use support::{Daemon, eventually};

/// The next datagram on `socket`, within a few seconds.
fn next_state(socket: &UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_once_serving_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    let mut env = support::env(
        &dir.path().join("data"),
        "127.0.0.1:9".parse().unwrap(),
        None,
    );
    env.vars
        .push(("NOTIFY_SOCKET".into(), notify_path.display().to_string()));

    let daemon = Daemon::start(&env).await;
    let ready = next_state(&socket);
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "first notification: {ready:?}"
    );
    // Ready means serving: the SMTP port answers now.
    tokio::net::TcpStream::connect(daemon.smtp).await.unwrap();

    daemon.stop(Duration::from_secs(30)).await;
    let stopping = next_state(&socket);
    assert!(
        stopping.lines().any(|l| l == "STOPPING=1"),
        "notification at shutdown: {stopping:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_against_a_running_daemon_and_fails_once_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = support::env(
        &dir.path().join("data"),
        "127.0.0.1:9".parse().unwrap(),
        None,
    );
    let daemon = Daemon::start(&env).await;
    // The probe reads the same configuration as the daemon; the test's port is the kernel's.
    env.vars
        .push(("THWONK_SMTP_LISTEN".into(), daemon.smtp.to_string()));
    env.vars
        .push(("THWONK_HTTP_LISTEN".into(), daemon.http_addr().to_string()));

    for target in ["smtp", "http", "deps"] {
        let out = env.run(&["probe", target]);
        assert!(
            out.status.success(),
            "probe {target} against a running daemon: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    daemon.stop(Duration::from_secs(30)).await;
    let out = env.run(&["probe", "smtp"]);
    assert!(!out.status.success(), "probe smtp passed with no daemon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SMTP ingress at"),
        "the failure says what was probed: {stderr}"
    );
    // The private Redis went away with the daemon: deps fails too, naming Redis.
    let out = env.run(&["probe", "deps"]);
    assert!(!out.status.success(), "probe deps passed with no Redis");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Redis"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_file_names_every_address_bound_and_is_removed_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let env = support::env(
        &dir.path().join("data"),
        "127.0.0.1:9".parse().unwrap(),
        None,
    );
    let ready = dir.path().join("ready.json");
    // A file left by an earlier run is not taken for this one's.
    std::fs::write(&ready, "stale").unwrap();
    let mut child = env
        .command(&["serve", "--ready-file", ready.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let v: serde_json::Value = eventually("the ready file", Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&ready).ok()?;
        serde_json::from_str(&text).ok()
    })
    .await;
    assert_eq!(v["pid"], child.id(), "{v}");
    // Every address named answers now; what this process does not run is null.
    let addr = |k: &str| -> std::net::SocketAddr { v[k].as_str().unwrap().parse().unwrap() };
    tokio::net::TcpStream::connect(addr("smtp")).await.unwrap();
    tokio::net::TcpStream::connect(addr("http")).await.unwrap();
    let admin = v["admin_socket"].as_str().unwrap();
    std::os::unix::net::UnixStream::connect(admin).unwrap();
    assert!(v["metrics"].is_null(), "{v}");

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
    assert!(!ready.exists(), "the ready file goes with the daemon");
}
