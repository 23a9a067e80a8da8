//! The malformed-mail corpus (`tests/corpus/`) end to end: each case through real SMTP to a
//! real `thwonk serve`, whose script logs the `msg` fields it sees. Each case is accepted
//! (250) and runs to an `ok` run with its best-effort fields, or is refused with its
//! documented code; no role crashes, and the daemon still serves mail afterwards.

mod corpus;
mod support;

use corpus::Expect;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::{Daemon, Env, SmtpClient, eventually};

const SCRIPT: &str = r#"
export function onMessage(msg, thwonk) {
  console.log(JSON.stringify({
    subject: msg.subject,
    sender: msg.sender.address,
    head: msg.text.slice(0, 300),
    tail: msg.text.slice(-300),
    attachments: msg.attachments.length,
    headers: msg.headers.length,
  }));
}
"#;

/// The kit's SMTP client after the greeting and EHLO.
async fn connect(addr: SocketAddr) -> SmtpClient {
    let mut s = SmtpClient::connect(addr).await;
    s.expect("220").await;
    s.cmd("EHLO corpus.test", "250").await;
    s
}

/// One transaction with `raw` as the message; the final reply.
async fn message(s: &mut SmtpClient, rcpt: &str, raw: &[u8]) -> String {
    s.message("sender@example.net", rcpt, raw).await
}

/// The runs of `address`, keyed by message id: (status, error, the logged fields).
fn runs(env: &Env, address: &str) -> HashMap<String, (String, String, serde_json::Value)> {
    env.runs(address, Some(1000))
        .iter()
        .map(|r| {
            let fields = r["logs"]
                .as_array()
                .and_then(|logs| logs.first())
                .and_then(|l| l["message"].as_str())
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or(serde_json::Value::Null);
            (
                r["message_id"].as_str().unwrap_or("").to_string(),
                (
                    r["status"].as_str().unwrap_or("").to_string(),
                    r["error"].as_str().unwrap_or("").to_string(),
                    fields,
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_message_is_accepted_with_best_effort_fields_or_refused_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    // The script sends nothing; the relay is never used.
    let env = support::env(dir.path(), "127.0.0.1:9".parse().unwrap(), None);
    env.deploy_source("corpus@example.org", dir.path(), "record.js", SCRIPT);
    let daemon = Daemon::start(&env).await;

    let cases = corpus::cases();
    let mut smtp = connect(daemon.smtp).await;
    // message id -> case
    let mut accepted = Vec::new();
    for case in &cases {
        let reply = message(&mut smtp, "corpus@example.org", &case.raw).await;
        match &case.expect {
            Expect::Refused(code) => {
                assert!(reply.starts_with(code), "{}: {reply:?}", case.name);
            }
            Expect::Accepted { .. } => {
                assert!(reply.starts_with("250 2.0.0"), "{}: {reply:?}", case.name);
                let id = reply.trim_end().rsplit(' ').next().unwrap().to_string();
                accepted.push((id, case));
            }
        }
    }
    smtp.cmd("QUIT", "221").await;

    let done = eventually(
        "a run for every accepted case",
        Duration::from_secs(180),
        || {
            let env = &env;
            let n = accepted.len();
            async move {
                let runs = runs(env, "corpus@example.org");
                (runs.len() >= n).then_some(runs)
            }
        },
    )
    .await;
    for (id, case) in &accepted {
        let (status, error, fields) = done
            .get(id)
            .unwrap_or_else(|| panic!("{}: no run for message {id}", case.name));
        assert_eq!(status, "ok", "{}: {error}", case.name);
        let Expect::Accepted {
            subject,
            text_has,
            sender,
        } = &case.expect
        else {
            unreachable!()
        };
        if let Some(s) = subject {
            assert_eq!(fields["subject"], *s, "{}: {fields}", case.name);
        }
        if let Some(t) = text_has {
            let head = fields["head"].as_str().unwrap_or("");
            let tail = fields["tail"].as_str().unwrap_or("");
            assert!(
                head.contains(t) || tail.contains(t),
                "{}: {t:?} not in the text: {fields}",
                case.name
            );
        }
        if let Some(a) = sender {
            assert_eq!(fields["sender"], *a, "{}: {fields}", case.name);
        }
    }

    // Still serving: a plain message after the corpus goes through and runs.
    let mut smtp = connect(daemon.smtp).await;
    let reply = message(
        &mut smtp,
        "corpus@example.org",
        b"Subject: after\r\n\r\nstill here\r\n",
    )
    .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let id = reply.trim_end().rsplit(' ').next().unwrap().to_string();
    eventually("the run after the corpus", Duration::from_secs(60), || {
        let env = &env;
        let id = id.clone();
        async move {
            runs(env, "corpus@example.org")
                .get(&id)
                .filter(|(status, _, _)| status == "ok")
                .cloned()
        }
    })
    .await;
    assert!(
        !daemon.log().iter().any(|l| l.contains("panicked")),
        "a role panicked"
    );
    // Stops cleanly on SIGTERM: every role was still alive.
    daemon.stop(Duration::from_secs(30)).await;
}
