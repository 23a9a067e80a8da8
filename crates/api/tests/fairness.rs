//! One owner's dry runs must not hold up another owner's deploy (issue 13 item 11): dry runs
//! are one at a time per owner, so they hold at most one of the API's sandbox workers, and the
//! other owner's deploy checks its script on another. Real sockets, real sandbox workers.

mod support;

use serde_json::json;
use std::time::Instant;
use support::Server;

/// Burns its whole wall-clock budget in a catastrophic regex.
const BURNER: &str = r#"
export function onMessage(msg, thwonk) {
  /(a+)+$/.test("a".repeat(40) + "b");
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_owners_dry_runs_do_not_hold_up_another_owners_deploy() {
    let s = std::sync::Arc::new(Server::start().await);
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/burn@example.org/script",
            Some(&s.alice),
            BURNER.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.error_message());

    // Four dry runs at once from alice, each as long as the wall clock allows.
    let body = json!({"message": "Subject: x\r\n\r\nx\r\n"}).to_string();
    let mut dry_runs = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (s, body) = (s.clone(), body.clone());
        dry_runs.spawn(async move {
            let r = s
                .req(
                    "POST",
                    "/v1/thwonks/burn@example.org/test",
                    Some(&s.alice),
                    body.as_bytes(),
                )
                .await;
            (r, Instant::now())
        });
    }
    // Three are turned away at once; the fourth runs.
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let (r, _) = dry_runs.join_next().await.unwrap().unwrap();
        answers.push(r.status);
        assert_eq!(r.status, 429, "{}", r.error_message());
        assert_eq!(r.json()["error"]["code"], "busy");
    }

    // Meanwhile bob deploys: his script is checked on a worker alice's dry run does not hold.
    let r = s
        .req(
            "PUT",
            "/v1/thwonks/bob@example.org/script",
            Some(&s.bob),
            b"export function onMessage(msg, thwonk) {}",
        )
        .await;
    let deployed_at = Instant::now();
    assert_eq!(r.status, 201, "{}", r.error_message());
    let (r, dry_run_done_at) = dry_runs.join_next().await.unwrap().unwrap();
    assert_eq!(r.status, 200, "{}", r.error_message());
    assert_eq!(
        r.json()["status"],
        "error",
        "the regex ran out of budget: {}",
        r.json()
    );
    assert!(
        deployed_at < dry_run_done_at,
        "bob's deploy waited for alice's dry run to finish"
    );
    // Her place is given back: she may dry-run again.
    let r = s
        .req(
            "POST",
            "/v1/thwonks/burn@example.org/test",
            Some(&s.alice),
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.error_message());
}
