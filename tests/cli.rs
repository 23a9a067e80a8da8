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

/// The subcommands `thwonk --help` lists.
fn subcommands(e: &Env) -> Vec<String> {
    let help = e.ok(&["--help"]);
    let section = help
        .split("Commands:")
        .nth(1)
        .expect("--help lists commands");
    let section = section.split("\n\n").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_command_table_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let table = readme
        .split("## Commands")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let commands = subcommands(&env(&dir));
    for c in ["probe", "versions", "rollback", "invoke", "feed", "delete"] {
        assert!(commands.iter().any(|x| x == c), "{c} in {commands:?}");
    }
    for c in &commands {
        assert!(
            table.contains(&format!("`thwonk {c}")) || table.contains(&format!("`{c}`")),
            "the README's command table does not list `{c}`"
        );
    }
    assert!(
        table.contains("thwonk-bench"),
        "the load tool is listed too"
    );
}

/// A script that exercises every trigger, its feed and its errors.
const MANAGED: &str = r#"
export const schedule = "0 6 * * *";
export function onMessage(msg, thwonk) {
  if (msg.subject === "boom") {
    throw new Error("cannot handle " + msg.subject);
  }
  console.log("handled " + msg.subject);
}
export function onSchedule(event, thwonk) {
  console.log("tick " + event.schedule);
  thwonk.files.write("/ticks/last.txt", event.at);
}
export function onRequest(req, thwonk) {
  thwonk.feed("news").publish("asked " + req.body.q);
  return { echo: req.body.q, n: (thwonk.files.readJSON("/members.json") ?? []).length };
}
"#;

#[test]
fn test_command_tries_on_schedule_and_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("managed.js");
    std::fs::write(&script, MANAGED).unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("members.json"), r#"["a@b.test","c@d.test"]"#).unwrap();
    let e = env(&dir);
    let s = script.to_str().unwrap();
    // --schedule alone: the script's own schedule.
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["test", s, "--schedule"])).unwrap();
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["logs"][0]["message"], "tick 0 6 * * *");
    assert_eq!(v["writes"].as_array().unwrap().len(), 1, "{v:#}");
    assert!(v["writes"].to_string().contains("ticks/last.txt"), "{v:#}");
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["test", s, "--schedule", "*/5 * * * *"])).unwrap();
    assert_eq!(v["logs"][0]["message"], "tick */5 * * * *");
    // --request: onRequest's value is the response; files come from --files.
    let v: serde_json::Value = serde_json::from_str(&e.ok(&[
        "test",
        s,
        "--request",
        r#"{"q": "hi"}"#,
        "--files",
        files.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["response"], serde_json::json!({"echo": "hi", "n": 2}));
    assert_eq!(v["feed_ops"].as_array().unwrap().len(), 1, "{v:#}");
    // A body that is not JSON is said plainly, before anything runs.
    let out = e.run(&["test", s, "--request", "{nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--request is not JSON"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A script without the handler: an error result, exit 1.
    let out = e.run(&["test", "sandbox-scripts/echo.js", "--schedule", "0 * * * *"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "NoHandler", "{v:#}");
    // One input at a time, and at least one.
    assert!(!e.run(&["test", s]).status.success());
    assert!(
        !e.run(&["test", s, "--schedule", "--request", "{}"])
            .status
            .success()
    );
}

#[test]
fn versions_rollback_enable_disable_and_delete_work_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    let a = "list@example.org";
    e.ok(&["deploy", a, "sandbox-scripts/echo.js"]);
    e.ok(&["deploy", a, "sandbox-scripts/twitter-list.js"]);
    let versions = e.ok(&["versions", a]);
    let lines: Vec<&str> = versions.lines().collect();
    assert!(lines[0].starts_with("* v2  "), "{versions}");
    assert!(lines[1].starts_with("  v1  "), "{versions}");
    assert!(
        e.ok(&["rollback", a, "1"])
            .contains("list@example.org: version 1 is active")
    );
    assert!(e.ok(&["versions", a]).contains("* v1  "));
    // A missing version is named by the address, not the thwonk's internal id.
    let out = e.run(&["rollback", a, "9"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("list@example.org has no version 9"),
        "{stderr}"
    );
    assert!(!stderr.contains("of thwonk "), "{stderr}");
    assert!(
        e.ok(&["disable", a])
            .contains("list@example.org is disabled")
    );
    assert!(
        e.ok(&["list"])
            .contains("list@example.org\tdisabled\tversion 1")
    );
    assert!(e.ok(&["enable", a]).contains("list@example.org is active"));
    // Delete asks for --yes and deletes nothing without it.
    let out = e.run(&["delete", a]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(e.ok(&["list"]).contains("list@example.org"));
    assert!(
        e.ok(&["delete", a, "--yes"])
            .contains("deleted list@example.org")
    );
    assert!(e.ok(&["list"]).contains("no thwonks yet"));
    // Commands that need the daemon say so.
    let out = e.run(&["invoke", a, "{}"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs the running daemon"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child `thwonk` whose standard output is read line by line while it runs (`--follow`);
/// killed when dropped.
struct Follower {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Follower {
    fn start(e: &Env, args: &[&str]) -> Follower {
        let mut child = e
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Follower {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for a line containing `needle`; every line read so far.
    async fn wait_for(&mut self, needle: &str, timeout: Duration) -> Vec<String> {
        let start = std::time::Instant::now();
        loop {
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if self.seen.iter().any(|l| l.contains(needle)) {
                return self.seen.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "no line with {needle:?} in {timeout:?}; got {:#?}",
                self.seen
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_runs_and_feeds_and_invokes_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let e = support::env(dir.path(), relay.addr, None);
    let a = "desk@example.org";
    let script = dir.path().join("managed.js");
    std::fs::write(&script, MANAGED).unwrap();
    e.ok(&["deploy", a, script.to_str().unwrap()]);
    let daemon = Daemon::start(&e).await;
    let wait = Duration::from_secs(30);

    let mut runs = Follower::start(&e, &["runs", a, "--follow"]);
    let mut feed = Follower::start(&e, &["feed", a, "news", "--follow"]);
    let id = support::send_mail(daemon.smtp, "carol@example.net", a, "hello", "hi").await;
    let lines = runs.wait_for("[log] handled hello", wait).await;
    let text = lines.join("\n");
    assert!(text.contains("  ok  message  v1  "), "{text}");
    assert!(
        text.contains(&format!(
            "from carol@example.net, subject \"hello\", Message-ID <{id}>"
        )),
        "{text}"
    );
    support::send_mail(daemon.smtp, "carol@example.net", a, "boom", "hi").await;
    let lines = runs.wait_for("cannot handle boom", wait).await;
    let text = lines.join("\n");
    assert!(text.contains("  error  message  v1  "), "{text}");
    let error_line = lines
        .iter()
        .position(|l| l.contains("cannot handle boom"))
        .unwrap();
    assert!(
        lines
            .get(error_line + 1)
            .is_some_and(|l| l.starts_with("    at ")),
        "where the error happened follows it: {text}"
    );

    // Files with a leading `/`, as the script spells them.
    let members = dir.path().join("members.json");
    std::fs::write(&members, r#"["x@y.test"]"#).unwrap();
    e.ok(&[
        "files",
        a,
        "put",
        "/members.json",
        members.to_str().unwrap(),
    ]);
    assert_eq!(
        e.ok(&["files", a, "get", "members.json"]),
        r#"["x@y.test"]"#
    );
    assert_eq!(
        e.ok(&["files", a, "get", "/members.json"]),
        r#"["x@y.test"]"#
    );
    assert!(
        !e.run(&["files", a, "get", "//members.json"])
            .status
            .success()
    );

    // Invoke: onRequest's value, through the runner; its feed item shows live.
    let out = e.ok(&["invoke", a, r#"{"q": "status"}"#]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["value"], serde_json::json!({"echo": "status", "n": 1}));
    feed.wait_for("asked status", wait).await;
    let lines = feed.wait_for("publish\t", wait).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("publish\t") && l.contains("asked status")),
        "{lines:?}"
    );
    runs.wait_for("  ok  request  v1  ", wait).await;
    // `feed` without --follow lists what is there.
    assert!(e.ok(&["feed", a, "news"]).contains("asked status"));

    // Versions, rollback, disable, enable and delete, through the admin socket.
    e.ok(&["deploy", a, "sandbox-scripts/echo.js"]);
    assert!(e.ok(&["versions", a]).starts_with("* v2  "));
    assert!(
        e.ok(&["rollback", a, "1"])
            .contains("version 1 is active (schedule 0 6 * * *)")
    );
    let out = e.run(&["rollback", a, "7"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("desk@example.org has no version 7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        e.ok(&["disable", a])
            .contains("desk@example.org is disabled")
    );
    let out = e.run(&["invoke", a, "{}"]);
    assert!(!out.status.success());
    assert!(e.ok(&["enable", a]).contains("is active"));
    assert!(
        e.ok(&["delete", a, "--yes"])
            .contains("deleted desk@example.org")
    );
    assert!(e.ok(&["list"]).contains("no thwonks yet"));
    drop(runs);
    drop(feed);
    daemon.stop(Duration::from_secs(20)).await;
}

/// The README's first code sample, as printed there.
fn readme_sample() -> String {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let start = readme.find("```js\n").expect("a JavaScript sample") + "```js\n".len();
    let len = readme[start..].find("```").unwrap();
    readme[start..start + len].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sample_runs_with_no_members_and_never_mails_the_author() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let e = support::env(dir.path(), relay.addr, None);
    let a = "list@example.org";
    e.deploy_source(a, dir.path(), "readme.js", &readme_sample());
    let daemon = Daemon::start(&e).await;
    let wait = Duration::from_secs(30);
    // No members yet: the run succeeds and sends nothing.
    support::send_mail(daemon.smtp, "alice@example.net", a, "first", "anyone?").await;
    let runs = e.wait_for_runs(a, 1, wait).await;
    assert_eq!(runs[0]["status"], "ok", "{:#}", runs[0]);
    // Three members; Alice (spelled in another case) posts 300 characters.
    let members = dir.path().join("members.json");
    std::fs::write(
        &members,
        r#"["alice@example.net", "bob@example.net", "carol@example.net"]"#,
    )
    .unwrap();
    e.ok(&["files", a, "put", "members.json", members.to_str().unwrap()]);
    let long = "x".repeat(300);
    support::send_mail(daemon.smtp, "Alice@Example.NET", a, "hello", &long).await;
    let runs = e.wait_for_runs(a, 2, wait).await;
    assert_eq!(runs[0]["status"], "ok", "{:#}", runs[0]);
    let got = relay.wait_for("two posts", wait, |r| r.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = if relay.count() > got.len() {
        relay.received()
    } else {
        got
    };
    assert_eq!(
        got.len(),
        2,
        "one message per member but the author: {got:#?}"
    );
    let mut rcpts: Vec<String> = got.iter().flat_map(|r| r.rcpt_to.clone()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["bob@example.net", "carol@example.net"]);
    for r in &got {
        let m = r.parsed();
        assert_eq!(m.subject, "hello");
        // Each sees only their own address in To:.
        let to = m
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("to"))
            .unwrap()
            .1
            .clone();
        assert!(to.contains(&r.rcpt_to[0]) && !to.contains(','), "{to}");
        assert_eq!(m.text.trim_end().chars().count(), 140);
    }
    daemon.stop(Duration::from_secs(20)).await;
}

#[test]
fn sample_messages_work_with_thwonk_test() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&dir);
    let test = |eml: &str, files: bool| -> serde_json::Value {
        let path = format!("examples/mail/{eml}");
        let mut args = vec![
            "test",
            "sandbox-scripts/twitter-list.js",
            "--message",
            &path,
        ];
        if files {
            args.extend(["--files", "examples/mail/files"]);
        }
        serde_json::from_str(&e.ok(&args)).unwrap()
    };
    let v = test("subscribe.eml", false);
    assert_eq!(v["status"], "ok", "{v:#}");
    assert!(
        v["writes"].to_string().contains("alice@example.net"),
        "{v:#}"
    );
    let v = test("post.eml", true);
    let mut to: Vec<String> = v["sends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["to"][0].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["bob@example.net", "carol@example.net"], "{v:#}");
    let text = v["sends"][0]["text"].as_str().unwrap();
    assert_eq!(text.chars().count(), 140, "{text}");
    let v = test("unsubscribe.eml", true);
    assert!(
        v["writes"].to_string().contains("carol@example.net"),
        "{v:#}"
    );
    assert!(
        !v["writes"].to_string().contains("bob@example.net"),
        "{v:#}"
    );
    let v = test("stranger.eml", true);
    assert!(
        v["sends"][0]["text"]
            .as_str()
            .unwrap()
            .contains("only members can post"),
        "{v:#}"
    );
    // Every sample is covered here.
    let mut emls: Vec<String> = std::fs::read_dir(support::repo().join("examples/mail"))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    emls.sort();
    assert_eq!(
        emls,
        [
            "post.eml",
            "stranger.eml",
            "subscribe.eml",
            "unsubscribe.eml"
        ]
    );
}
