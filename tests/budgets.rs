//! Sending budgets and the address policy (issue 13 items 1 and 2), attacked through a live
//! daemon: real HTTP, real SMTP to the recording relay, real Redis, SQLite and (when
//! `THWONK_TEST_POSTGRES_URL` is set) PostgreSQL.
//!
//! - An owner's script invoked again and again tries to mail thousands of foreign
//!   recipients: the relay receives no more than the hourly budget, every run past it is a
//!   `LimitError` run naming the budget, and the budget still holds after a restart.
//! - A thwonk run more often than `budgets.thwonk_runs_per_minute` has its extra runs refused.
//! - An owner tries to claim a foreign domain, `postmaster@`/`abuse@` in mixed case, the VERP
//!   space `bounces+…`, an address literal, and more thwonks than it may have; with
//!   `smtp.domains` empty it may claim nothing; an admin grants it a domain and it may.
//! - One owner's four regex-burning thwonks do not hold another owner's mail behind their
//!   backlog (item 11: `runner.owner_concurrency`).

mod support;

use std::time::Duration;
use support::{Daemon, Env, Relay, req};
use thwonk_api::client::Response;

/// Each invoke tries to send to this many foreign recipients (within the per-run limit).
const PER_RUN: usize = 500;
/// The thwonk's hourly recipient budget in these tests: two runs fit, the third does not.
const HOURLY: usize = 1_200;

const SPAMMER: &str = r#"
export function onMessage(msg, thwonk) {}
export function onRequest(req, thwonk) {
  // Five messages of 100 recipients (the relay takes 100 per transaction): 500 a run.
  for (let k = 0; k < 5; k++) {
    const bcc = [];
    for (let i = 0; i < 99; i++) bcc.push("v" + req.body.n + "-" + k + "-" + i + "@foreign.test");
    thwonk.send({ to: "list" + k + "@foreign.test", bcc, subject: "buy now", text: "x" });
  }
  thwonk.files.write("last.txt", String(req.body.n));
  return { sent: 500 };
}
"#;

/// Runs `scenario` on SQLite, then on a scratch PostgreSQL database when one is configured.
async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(None).await;
    let Some(base) = support::postgres_url() else {
        eprintln!("SKIPPED on PostgreSQL: THWONK_TEST_POSTGRES_URL is not set (CI sets it)");
        return;
    };
    let db = thwonk_store::scratch::scratch_postgres_url(&base)
        .await
        .unwrap();
    scenario(Some(db.url().to_string())).await;
}

/// Windows are clock windows: a test that counts within one waits out the end of the
/// current one when less than `margin` of it is left, so its counts never straddle two.
async fn clear_of_window_end(window: Duration, margin: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_millis((now.as_millis() % window.as_millis()) as u64);
    let left = window - into;
    if left < margin {
        tokio::time::sleep(left + Duration::from_secs(1)).await;
    }
}

/// A user (`--admin` when `admin`) and a token for it, by the CLI.
fn user(env: &Env, name: &str, admin: bool) -> String {
    let mut args = vec!["user", "add", name];
    if admin {
        args.push("--admin");
    }
    env.ok(&args);
    env.ok(&["token", "create", "--user", name])
        .trim()
        .to_string()
}

async fn invoke(daemon: &Daemon, token: &str, address: &str, n: usize) -> Response {
    let body = format!("{{\"n\": {n}}}");
    req(
        daemon.http_addr(),
        "POST",
        &format!("/v1/thwonks/{address}/invoke"),
        token,
        body.as_bytes(),
    )
    .await
}

/// Recipients the relay has received in all.
fn relayed(relay: &Relay) -> usize {
    relay.received().iter().map(|m| m.rcpt_to.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_invokes_cannot_mail_past_the_hourly_budget_even_across_a_restart() {
    on_both(|db| async move {
        clear_of_window_end(Duration::from_secs(3600), Duration::from_secs(100)).await;
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::start().await;
        let mut env = support::env(dir.path(), relay.addr, db.as_deref());
        env.vars.push((
            "THWONK_BUDGETS_THWONK_RECIPIENTS_PER_HOUR".into(),
            HOURLY.to_string(),
        ));
        let mallory = user(&env, "mallory", false);
        let daemon = Daemon::start(&env).await;
        let r = req(
            daemon.http_addr(),
            "PUT",
            "/v1/thwonks/spam@example.org/script",
            &mallory,
            SPAMMER.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.error_message());

        // Five invokes would be 2,500 recipients; the budget lets two runs through.
        let mut outcomes = Vec::new();
        for n in 1..=5 {
            let r = invoke(&daemon, &mallory, "spam@example.org", n).await;
            outcomes.push((r.status, r.json()));
        }
        for (i, (status, o)) in outcomes.iter().enumerate() {
            if i < 2 {
                assert_eq!(*status, 200, "run {} is within the budget: {o}", i + 1);
                assert_eq!(o["status"], "ok", "run {} is within the budget: {o}", i + 1);
            } else {
                assert_eq!(*status, 503, "run {} is over the budget: {o}", i + 1);
                assert_eq!(o["error"]["code"], "over_budget", "{o}");
                assert!(o["error"]["run_id"].is_string(), "{o}");
                let message = o["error"]["message"].as_str().unwrap();
                assert!(message.starts_with("LimitError: "), "{message}");
                assert!(
                    message.contains("budgets.thwonk_recipients_per_hour")
                        && message.contains(&format!("({HOURLY})"))
                        && message.contains("resets at"),
                    "the error names the budget, its value and when it resets: {message}"
                );
            }
        }
        relay
            .wait_for("the two runs' mail", Duration::from_secs(60), |r| {
                r.iter().map(|m| m.rcpt_to.len()).sum::<usize>() >= 2 * PER_RUN
            })
            .await;

        // Restart: the count is in SQL, so the budget still holds.
        daemon.stop(Duration::from_secs(30)).await;
        let daemon = Daemon::start(&env).await;
        let r = invoke(&daemon, &mallory, "spam@example.org", 6).await;
        assert_eq!(r.status, 503, "after a restart: {}", r.error_message());
        let o = r.json();
        assert!(
            o["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("LimitError: ")),
            "after a restart: {o}"
        );

        // The runs say why; the refused runs wrote nothing (their files stayed as run 2 left them).
        let runs = env.runs("spam@example.org", Some(100));
        let refused = runs
            .iter()
            .filter(|r| {
                r["error_kind"] == "LimitError"
                    && r["error"]
                        .as_str()
                        .is_some_and(|m| m.contains("budgets.thwonk_recipients_per_hour"))
            })
            .count();
        assert_eq!(
            refused, 4,
            "three refused before the restart, one after: {runs:?}"
        );
        let file = env.ok(&["files", "spam@example.org", "get", "last.txt"]);
        assert_eq!(
            file.trim(),
            "2",
            "a refused run's file write did not take effect"
        );

        // Give egress time to deliver anything else it (wrongly) might, then count.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let total = relayed(&relay);
        assert!(
            total <= HOURLY,
            "the relay got {total} recipients, more than the budget of {HOURLY}"
        );
        assert_eq!(total, 2 * PER_RUN, "exactly the two runs within the budget");
        daemon.stop(Duration::from_secs(30)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_past_the_per_minute_cap_are_refused_with_a_run_record() {
    on_both(|db| async move {
        clear_of_window_end(Duration::from_secs(60), Duration::from_secs(40)).await;
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::start().await;
        let mut env = support::env(dir.path(), relay.addr, db.as_deref());
        env.vars
            .push(("THWONK_BUDGETS_THWONK_RUNS_PER_MINUTE".into(), "3".into()));
        let admin = user(&env, "root", true);
        let daemon = Daemon::start(&env).await;
        let source =
            "export function onMessage() {}\nexport function onRequest(req) { return req.body.n; }";
        let r = req(
            daemon.http_addr(),
            "PUT",
            "/v1/thwonks/busy@example.org/script",
            &admin,
            source.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.error_message());
        let mut kinds = Vec::new();
        for n in 1..=5 {
            let r = invoke(&daemon, &admin, "busy@example.org", n).await;
            let o = r.json();
            kinds.push(match r.status {
                200 => "ok".to_string(),
                503 if o["error"]["code"] == "over_budget" => o["error"]["message"]
                    .as_str()
                    .and_then(|m| m.split(':').next())
                    .unwrap_or("?")
                    .to_string(),
                other => format!("{other} {o}"),
            });
            if n > 3 {
                let message = o["error"]["message"].as_str().unwrap_or("");
                assert!(
                    message.contains("budgets.thwonk_runs_per_minute (3)"),
                    "{message}"
                );
            }
        }
        assert_eq!(kinds, ["ok", "ok", "ok", "LimitError", "LimitError"]);
        let runs = env.runs("busy@example.org", Some(100));
        assert_eq!(runs.len(), 5, "the refused runs are recorded too: {runs:?}");
        daemon.stop(Duration::from_secs(30)).await;
    })
    .await;
}

/// `POST /v1/thwonks` for `address` with `token`.
async fn create(daemon: &Daemon, token: &str, address: &str) -> Response {
    let body = serde_json::json!({ "address": address }).to_string();
    req(
        daemon.http_addr(),
        "POST",
        "/v1/thwonks",
        token,
        body.as_bytes(),
    )
    .await
}

fn assert_refused(r: &Response, code: &str, says: &str, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.error_message());
    assert_eq!(r.json()["error"]["code"], code, "{what}");
    assert!(
        r.error_message().contains(says),
        "{what}: {:?} should say {says:?}",
        r.error_message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_may_claim_only_their_domains_and_no_reserved_names() {
    on_both(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::start().await;
        let mut env = support::env(dir.path(), relay.addr, db.as_deref());
        env.vars
            .push(("THWONK_BUDGETS_THWONKS_PER_OWNER".into(), "3".into()));
        let alice = user(&env, "alice", false);
        let admin = user(&env, "root", true);
        let daemon = Daemon::start(&env).await;

        for (address, says) in [
            ("ceo@bank.example", "not one of this server's domains"),
            ("Postmaster@Example.org", "reserved"),
            ("aBuSe@example.org", "reserved"),
            ("postmaster+x@example.org", "reserved"),
            ("MAILER-DAEMON@example.org", "reserved"),
            ("bounces+x@example.org", "reserved"),
            ("x@[127.0.0.1]", "address literal"),
            ("x@127.0.0.1", "address literal"),
        ] {
            let r = create(&daemon, &alice, address).await;
            assert_refused(&r, "address_not_allowed", says, address);
        }
        // Deploying a script creates a thwonk too: the same policy.
        let r = req(
            daemon.http_addr(),
            "PUT",
            "/v1/thwonks/abuse@example.org/script",
            &alice,
            b"export function onMessage() {}",
        )
        .await;
        assert_refused(&r, "address_not_allowed", "reserved", "PUT abuse@");
        let r = req(
            daemon.http_addr(),
            "PUT",
            "/v1/thwonks/ceo@bank.example/script",
            &alice,
            b"export function onMessage() {}",
        )
        .await;
        assert_refused(&r, "address_not_allowed", "domains", "PUT ceo@bank.example");
        // Nothing was created by any of these.
        let listed = req(daemon.http_addr(), "GET", "/v1/thwonks", &admin, b"").await;
        assert_eq!(listed.json()["thwonks"], serde_json::json!([]));

        // Her own domain is fine; an admin may take the reserved names.
        assert_eq!(
            create(&daemon, &alice, "news@example.org").await.status,
            201
        );
        assert_eq!(
            create(&daemon, &admin, "postmaster@example.org")
                .await
                .status,
            201
        );

        // An admin grants her a domain of her own: then she may create there.
        assert_refused(
            &create(&daemon, &alice, "news@lists.alice.test").await,
            "address_not_allowed",
            "lists.alice.test",
            "before the grant",
        );
        env.ok(&["user", "domains", "add", "alice", "Lists.Alice.test"]);
        assert_eq!(
            env.ok(&["user", "domains", "list", "alice"]).trim(),
            "lists.alice.test"
        );
        assert_eq!(
            create(&daemon, &alice, "news@lists.alice.test")
                .await
                .status,
            201
        );
        // Reserved names stay reserved in granted domains; a literal cannot be granted.
        assert_refused(
            &create(&daemon, &alice, "abuse@lists.alice.test").await,
            "address_not_allowed",
            "reserved",
            "abuse@ in a granted domain",
        );
        assert!(
            !env.run(&["user", "domains", "add", "alice", "[127.0.0.1]"])
                .status
                .success()
        );

        // Thwonks per owner: she has two of three.
        assert_eq!(
            create(&daemon, &alice, "more@example.org").await.status,
            201
        );
        assert_refused(
            &create(&daemon, &alice, "toomany@example.org").await,
            "thwonk_limit",
            "budgets.thwonks_per_owner",
            "the fourth thwonk",
        );
        daemon.stop(Duration::from_secs(30)).await;

        // With smtp.domains empty, owners get no domain at all (only what was granted); the
        // refusal tells them the administrator must set smtp.domains.
        let mut env = env.clone();
        env.vars
            .retain(|(k, _)| k != "THWONK_SMTP_DOMAINS" && k != "THWONK_BUDGETS_THWONKS_PER_OWNER");
        env.vars.push(("THWONK_SMTP_DOMAINS".into(), String::new()));
        let daemon = Daemon::start(&env).await;
        let bob = user(&env, "bob", false);
        for address in ["x@example.org", "ceo@bank.example"] {
            assert_refused(
                &create(&daemon, &bob, address).await,
                "address_not_allowed",
                "smtp.domains",
                address,
            );
        }
        assert_eq!(
            create(&daemon, &alice, "other@lists.alice.test")
                .await
                .status,
            201
        );
        env.ok(&["user", "domains", "remove", "alice", "lists.alice.test"]);
        assert_refused(
            &create(&daemon, &alice, "third@lists.alice.test").await,
            "address_not_allowed",
            "smtp.domains",
            "after the grant is taken back",
        );
        assert_eq!(create(&daemon, &admin, "x@bank.example").await.status, 201);
        daemon.stop(Duration::from_secs(30)).await;
    })
    .await;
}

/// Burns its whole wall-clock budget in a catastrophic regex (the run ends in `Timeout`).
const BURNER: &str = r#"
export function onMessage(msg, thwonk) {
  /(a+)+$/.test("a".repeat(40) + "b");
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owners_heavy_thwonks_leave_room_for_another_owners_mail() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start().await;
    let mut env = support::env(dir.path(), relay.addr, None);
    for (k, v) in [
        ("THWONK_RUNNER_CONCURRENCY", "4"),
        ("THWONK_RUNNER_OWNER_CONCURRENCY", "2"),
        ("THWONK_LIMITS_WALL_CLOCK_MS", "1500"),
    ] {
        env.vars.push((k.into(), v.into()));
    }
    let heavy = user(&env, "heavy", false);
    let light = user(&env, "light", false);
    let daemon = Daemon::start(&env).await;
    let deploy = |token: String, address: String, source: String| {
        let http = daemon.http_addr();
        async move {
            let path = format!("/v1/thwonks/{address}/script");
            let r = req(http, "PUT", &path, &token, source.as_bytes()).await;
            assert_eq!(r.status, 201, "{}", r.error_message());
        }
    };
    let burners: Vec<String> = (1..=4).map(|i| format!("burn{i}@example.org")).collect();
    for b in &burners {
        deploy(heavy.clone(), b.clone(), BURNER.to_string()).await;
    }
    let echo = std::fs::read_to_string(support::repo().join("sandbox-scripts/echo.js")).unwrap();
    deploy(light.clone(), "echo@example.org".into(), echo).await;

    // The heavy owner's backlog first: 12 runs of 1.5 s each, queued before the light mail.
    const EACH: usize = 3;
    for n in 0..EACH {
        for b in &burners {
            support::send_mail(daemon.smtp, "x@example.net", b, &format!("burn {n}"), "x").await;
        }
    }
    support::send_mail(
        daemon.smtp,
        "gina@example.net",
        "echo@example.org",
        "hi",
        "hi",
    )
    .await;
    relay
        .wait_for("the light owner's reply", Duration::from_secs(120), |r| {
            r.iter().any(|m| m.rcpt_to == ["gina@example.net"])
        })
        .await;
    // Had the heavy owner taken all four tasks, the reply would have waited for (nearly) all
    // of its backlog: at least two full rounds of four. With its share of two, the light mail
    // ran alongside its first runs.
    let heavy_done: usize = burners.iter().map(|b| env.runs(b, Some(100)).len()).sum();
    assert!(
        heavy_done <= 4,
        "the light owner's mail waited behind {heavy_done} of the heavy owner's {} runs",
        EACH * burners.len()
    );
    // And the heavy backlog still drains, at its share.
    let drained = support::eventually("the heavy backlog", Duration::from_secs(180), || async {
        let done: usize = burners.iter().map(|b| env.runs(b, Some(100)).len()).sum();
        (done == EACH * burners.len()).then_some(done)
    })
    .await;
    assert_eq!(drained, 12);
    daemon.stop(Duration::from_secs(30)).await;
}
