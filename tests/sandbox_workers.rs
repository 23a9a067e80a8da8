//! The CLI runs scripts in sandbox worker processes (`thwonk __sandbox-worker`): a hostile
//! script fails its own check or run, never the `thwonk` command.

mod support;

use std::time::{Duration, Instant};
use support::Env;

const MESSAGE: &str = "From: Alice <alice@example.net>\r\nTo: echo@example.org\r\nSubject: ping\r\nMessage-ID: <m1@example.net>\r\n\r\nhello there\r\n";

fn env(dir: &tempfile::TempDir) -> Env {
    env_with_deadline(dir, 1_000)
}

fn env_with_deadline(dir: &tempfile::TempDir, wall_clock_ms: u64) -> Env {
    // No daemon runs here; the relay address is never used.
    let mut env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None);
    // Big enough that Boa's parser, not the size check, meets the scripts below.
    env.vars
        .push(("THWONK_LIMITS_SCRIPT_MAX_BYTES".into(), "1048576".into()));
    env.vars.push((
        "THWONK_LIMITS_WALL_CLOCK_MS".into(),
        wall_clock_ms.to_string(),
    ));
    env
}

/// `thwonk test SCRIPT --message M`: its exit code and the JSON it printed.
fn dry_run(dir: &tempfile::TempDir, body: &str) -> (Option<i32>, serde_json::Value) {
    dry_run_in(&env(dir), dir, body)
}

fn dry_run_in(env: &Env, dir: &tempfile::TempDir, body: &str) -> (Option<i32>, serde_json::Value) {
    let script = dir.path().join("script.js");
    std::fs::write(
        &script,
        format!("export function onMessage(msg, thwonk) {{\n{body}\n}}\n"),
    )
    .unwrap();
    let message = dir.path().join("m.eml");
    std::fs::write(&message, MESSAGE).unwrap();
    let out = env.run(&[
        "test",
        script.to_str().unwrap(),
        "--message",
        message.to_str().unwrap(),
    ]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

#[test]
fn deploy_refuses_a_parser_stack_bomb_instead_of_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bomb.js");
    std::fs::write(&script, format!("{}0", "a?b:".repeat(100_000))).unwrap();
    let e = env(&dir);
    let out = e.run(&["deploy", "bomb@example.org", script.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refusal, not a crash: {stderr}"
    );
    assert!(stderr.contains("deploy refused"), "{stderr}");
    assert!(e.ok(&["list"]).contains("no thwonks yet"));
}

#[test]
fn test_command_reports_a_memory_bomb_as_out_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    // A budget too big to refuse the repeat first (its work is charged to the budget, which
    // by default ends it with BudgetExceeded before it allocates anything).
    let mut env = env(&dir);
    env.vars
        .push(("THWONK_LIMITS_INSTRUCTIONS".into(), "10000000000".into()));
    let (code, json) = dry_run_in(&env, &dir, "'x'.repeat(2**28);");
    assert_eq!(code, Some(1));
    assert_eq!(json["error"]["kind"], "OutOfMemory", "{json}");
}

#[test]
fn test_command_stops_a_catastrophic_regex_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, json) = dry_run(&dir, "/(a+)+$/.test('a'.repeat(40) + 'b');");
    assert_eq!(code, Some(1));
    assert_eq!(json["error"]["kind"], "Timeout", "{json}");
    // 1 s of budget, the grace before the kill, and the command's own start-up.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The worker processes forked by `pid`, found through /proc (every thread's children).
fn workers_of(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Gone, or a zombie waiting for whoever inherited it.
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn workers_die_with_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spin.js");
    std::fs::write(
        &script,
        "export function onMessage() { /(a+)+$/.test('a'.repeat(60) + 'b'); }\n",
    )
    .unwrap();
    let message = dir.path().join("m.eml");
    std::fs::write(&message, MESSAGE).unwrap();
    // A deadline far away: only the parent's death can stop this worker in time.
    let mut parent = env_with_deadline(&dir, 60_000)
        .command(&[
            "test",
            script.to_str().unwrap(),
            "--message",
            message.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let workers = loop {
        let workers = workers_of(parent.id());
        if !workers.is_empty() || started.elapsed() > Duration::from_secs(20) {
            break workers;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        workers.len(),
        1,
        "`thwonk test` runs its script in one worker"
    );
    parent.kill().unwrap();
    parent.wait().unwrap();
    let killed = Instant::now();
    while !is_dead(workers[0]) && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(is_dead(workers[0]), "the worker outlived its parent");
}
