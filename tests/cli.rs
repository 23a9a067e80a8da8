//! The command-line interface, as a user drives it.

mod support;

use std::time::Duration;
use support::{Daemon, Env, Relay, SmtpClient};

fn env(dir: &tempfile::TempDir) -> Env {
    // No daemon runs in most of these tests; the relay address is never used.
    support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None)
}

const MESSAGE: &str = "From: Alice <alice@example.net>\r\nTo: echo@example.org\r\nSubject: ping\r\nMessage-ID: <m1@example.net>\r\n\r\nhello there\r\n";

#[test]
fn deploy_refuses_a_broken_script_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken.js");
    std::fs::write(
        &script,
        "export function onMessage(msg, thwonk) {\n  let x = ;\n}\n",
    )
    .unwrap();
    let e = env(&dir);
    let out = e.run(&["deploy", "list@example.org", script.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.js:2:"),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("deploy refused"), "{stderr}");
    assert!(
        e.ok(&["list"]).contains("no thwonks yet"),
        "nothing was created"
    );
}

#[test]
fn deploy_refuses_deep_nesting_without_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("deep.js");
    let deep = format!(
        "export function onMessage(m, t) {{ return {}1{}; }}\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    std::fs::write(&script, deep).unwrap();
    let out = env(&dir).run(&["deploy", "deep@example.org", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a clean refusal, not a crash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deep.js:1:"), "{stderr}");
}

#[test]
fn deploy_creates_then_versions_a_thwonk() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    let first = e.ok(&["deploy", "Echo@Example.ORG", "sandbox-scripts/echo.js"]);
    assert!(
        first.contains("deployed echo@example.org version 1 (new thwonk)"),
        "{first}"
    );
    let second = e.ok(&["deploy", "echo@example.org", "sandbox-scripts/echo.js"]);
    assert!(
        second.contains("version 2") && !second.contains("new thwonk"),
        "{second}"
    );
    let list = e.ok(&["list"]);
    assert!(
        list.contains("echo@example.org\tactive\tversion 2"),
        "{list}"
    );
}

#[test]
fn test_command_prints_the_run_as_json_and_exits_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("m.eml");
    std::fs::write(&msg, MESSAGE).unwrap();
    let e = env(&dir);
    let out = e.run(&[
        "test",
        "sandbox-scripts/echo.js",
        "--message",
        msg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "ok");
    let sends = v["sends"].as_array().unwrap();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0]["to"][0], "alice@example.net");
    assert!(sends[0]["text"].as_str().unwrap().contains("hello there"));
    assert!(v["cost"]["wall_ms"].is_number());

    let bad = dir.path().join("throws.js");
    std::fs::write(
        &bad,
        "export function onMessage() { throw new Error('nope'); }\n",
    )
    .unwrap();
    let out = e.run(&[
        "test",
        bad.to_str().unwrap(),
        "--message",
        msg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["kind"], "ScriptError");
    assert!(v["error"]["message"].as_str().unwrap().contains("nope"));
    assert_eq!(v["sends"].as_array().unwrap().len(), 0);
}

#[test]
fn test_command_reads_files_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("m.eml");
    std::fs::write(&msg, MESSAGE).unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(
        files.join("members.json"),
        r#"["x@members.test","alice@example.net"]"#,
    )
    .unwrap();
    let out = env(&dir).run(&[
        "test",
        "sandbox-scripts/twitter-list.js",
        "--message",
        msg.to_str().unwrap(),
        "--files",
        files.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sends = v["sends"].as_array().unwrap();
    assert_eq!(sends.len(), 1, "{v:#}");
    assert_eq!(sends[0]["to"], serde_json::json!(["x@members.test"]));
}

#[test]
fn a_wrong_setting_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = env(&dir);
    e.vars
        .push(("THWONK_SMTP_LISTEN".into(), "not-an-address".into()));
    let out = e.run(&["list"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("smtp.listen"), "{stderr}");
}

#[test]
fn files_can_be_put_listed_read_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    e.ok(&[
        "deploy",
        "list@example.org",
        "sandbox-scripts/twitter-list.js",
    ]);
    let src = dir.path().join("m.json");
    std::fs::write(&src, r#"["a@b.test"]"#).unwrap();
    e.ok(&[
        "files",
        "list@example.org",
        "put",
        "members.json",
        src.to_str().unwrap(),
    ]);
    assert!(
        e.ok(&["files", "list@example.org", "ls"])
            .contains("members.json")
    );
    assert_eq!(
        e.ok(&["files", "list@example.org", "get", "/members.json"]),
        r#"["a@b.test"]"#
    );
    let out = e.run(&[
        "files",
        "list@example.org",
        "get",
        "../other@example.org/members.json",
    ]);
    assert!(!out.status.success(), "path traversal is refused");
    e.ok(&["files", "list@example.org", "rm", "members.json"]);
    assert!(
        !e.run(&["files", "list@example.org", "get", "members.json"])
            .status
            .success()
    );
}

/// Speak SMTP line by line; the last line of each command's reply.
async fn smtp_codes(addr: std::net::SocketAddr, commands: &[&str]) -> Vec<String> {
    let mut c = SmtpClient::connect(addr).await;
    c.reply().await;
    let mut codes = Vec::new();
    for command in commands {
        let reply = c.command(command).await.unwrap();
        codes.push(reply.trim_end().lines().last().unwrap_or("").to_string());
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_refuses_unknown_addresses_and_foreign_domains() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let e = support::env(dir.path(), relay.addr, None);
    e.ok(&[
        "deploy",
        "list@example.org",
        "sandbox-scripts/twitter-list.js",
    ]);
    let daemon = Daemon::start(&e).await;
    let codes = smtp_codes(
        daemon.smtp,
        &[
            "EHLO client.test",
            "MAIL FROM:<>",
            "RCPT TO:<nobody@example.org>",
            "RCPT TO:<list@elsewhere.test>",
            "RCPT TO:<LIST@example.org>",
            "QUIT",
        ],
    )
    .await;
    assert!(
        codes[1].starts_with("250"),
        "the null sender is accepted: {codes:?}"
    );
    assert!(codes[2].starts_with("550 5.1.1"), "{codes:?}");
    assert!(codes[3].starts_with("550 5.7.1"), "{codes:?}");
    assert!(
        codes[4].starts_with("250"),
        "addresses are case-insensitive: {codes:?}"
    );
    daemon.stop(Duration::from_secs(20)).await;
}
