//! A hostile thwonk next to a well-behaved one on the same daemon: each attack ends in its
//! own run's error, the daemon survives, and the good thwonk keeps delivering meanwhile.

mod support;

use std::time::Duration;
use support::{Daemon, Env, Relay, send_mail};

const EVIL: &str = r#"
export function onMessage(msg, thwonk) {
  switch (msg.subject) {
    case "regex": /(a+)+$/.test("a".repeat(40) + "b"); break;
    case "loop": try { while (true) {} } catch (e) {} break;
    // A single huge "x".repeat(2 ** 28) is now refused by the budget before it allocates
    // (its work is charged): many 1 MiB strings reach the memory limit instead.
    case "memory": { const s = "x".repeat(1 << 20); const a = []; for (;;) a.push(s + a.length); }
    case "recursion": { const f = (n) => f(n + 1) + 1; f(0); break; }
  }
  thwonk.send({ to: "victim@example.net", subject: "should never be sent", text: "x" });
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_thwonk_fails_its_own_runs_while_a_good_one_keeps_delivering() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(dir.path(), relay.addr, None);
    // Room for the budget (not the clock) to end the endless loop in a debug build; the
    // regex still needs the clock, and holds the evil thwonk for the whole of it.
    env.vars
        .push(("THWONK_LIMITS_WALL_CLOCK_MS".into(), "10000".into()));
    env.vars
        .push(("THWONK_RUNNER_CONCURRENCY".into(), "2".into()));
    let evil = dir.path().join("evil.js");
    std::fs::write(&evil, EVIL).unwrap();
    env.deploy("evil@example.org", evil.to_str().unwrap());
    env.deploy("good@example.org", "sandbox-scripts/echo.js");
    let daemon = Daemon::start(&env).await;

    for attack in ["regex", "loop", "memory", "recursion"] {
        send_mail(
            daemon.smtp,
            "mallory@example.net",
            "evil@example.org",
            attack,
            "x",
        )
        .await;
    }
    send_mail(
        daemon.smtp,
        "gina@example.net",
        "good@example.org",
        "hello",
        "hi",
    )
    .await;

    relay
        .wait_for("the good thwonk's reply", Duration::from_secs(30), |r| {
            r.iter().any(|m| m.rcpt_to == ["gina@example.net"])
        })
        .await;
    let evil_runs = runs(&env, "evil@example.org");
    assert!(
        evil_runs.len() < 4,
        "the good reply arrived while the evil thwonk was still being contained \
         (its runs so far: {evil_runs:?})"
    );

    // Every attack ends in its own run, with the right error, and sends nothing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let evil_runs = loop {
        let r = runs(&env, "evil@example.org");
        if r.len() == 4 || tokio::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let kinds: Vec<&str> = evil_runs.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["Timeout", "BudgetExceeded", "OutOfMemory", "BudgetExceeded"],
        "regex, loop, memory, recursion (oldest first): {evil_runs:?}"
    );
    assert!(
        relay
            .received()
            .iter()
            .all(|m| m.rcpt_to != ["victim@example.net"]),
        "no failed run sent anything"
    );

    // The daemon is still whole: the good thwonk answers again, and shutdown is clean.
    send_mail(
        daemon.smtp,
        "gina@example.net",
        "good@example.org",
        "again",
        "hi",
    )
    .await;
    relay
        .wait_for("a second reply", Duration::from_secs(30), |r| {
            r.iter()
                .filter(|m| m.rcpt_to == ["gina@example.net"])
                .count()
                == 2
        })
        .await;
    daemon.stop(Duration::from_secs(30)).await;
}

/// Status and error kind of each run of `address`, oldest first (arrival order).
fn runs(env: &Env, address: &str) -> Vec<(String, String)> {
    let mut runs: Vec<(String, String)> = env
        .runs(address, None)
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap_or("").to_string(),
                r["error_kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    runs.reverse();
    runs
}
