//! Outgoing mail, end to end over real SMTP: per-recipient results (one refused recipient does
//! not fail the others, a retry never re-sends to a recipient that has the message), the
//! VERP envelope sender, DSNs on permanent failure (and never to `<>`), and bounces coming
//! back to `bounces+TOKEN@domain` recorded against their outbox row.
//!
//! Each scenario runs on SQLite and, when `THWONK_TEST_POSTGRES_URL` is set, on PostgreSQL.

mod support;

use std::future::Future;
use std::path::Path;
use std::time::Duration;
use support::{Daemon, Env, Relay, SmtpClient, code, eventually, send_mail};
use thwonk_core::Address;
use thwonk_core::status::DeliveryStatus;
use thwonk_ingress::RcptVerdict;
use thwonk_store::{OutboxRow, Store};
use thwonk_thoonk::{JobQueue, OUTBOUND};

const WAIT: Duration = Duration::from_secs(30);

/// Sends one message to four recipients of another domain.
const FAN_OUT: &str = r#"
export function onMessage(msg, thwonk) {
  thwonk.send({
    to: ["ok1@dest.test", "ok2@dest.test", "bad@dest.test", "slow@dest.test"],
    subject: "fan out",
    text: "to all four",
  });
}
"#;

/// Runs `scenario(env, relay, store)` on SQLite (None) or on a scratch PostgreSQL database.
async fn on<F, Fut>(postgres: bool, scenario: F)
where
    F: FnOnce(Env, Relay, Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let scratch = if postgres {
        let Some(base) = support::postgres_url() else {
            eprintln!("SKIPPED: THWONK_TEST_POSTGRES_URL is not set (CI sets it)");
            return;
        };
        Some(
            thwonk_store::scratch::scratch_postgres_url(&base)
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let relay = Relay::start().await;
    let mut env = support::env(&data, relay.addr, scratch.as_ref().map(|s| s.url()));
    env.vars
        .push(("THWONK_EGRESS_RETRY_SCHEDULE_SECS".into(), "2".into()));
    env.vars
        .push(("THWONK_EGRESS_MAX_ATTEMPTS".into(), "5".into()));
    let url = match &scratch {
        Some(s) => s.url().to_string(),
        None => format!("sqlite://{}", data.join("thwonk.db").display()),
    };
    // `deploy` creates and migrates the database before the test opens it.
    let script = dir.path().join("fan-out.js");
    std::fs::write(&script, FAN_OUT).unwrap();
    env.deploy("fan@example.org", script.to_str().unwrap());
    env.deploy("echo@example.org", "sandbox-scripts/echo.js");
    let store = Store::connect(&url, 2).await.unwrap();
    scenario(env, relay, store.clone()).await;
    store.close().await;
    if let Some(s) = scratch {
        s.cleanup().await.unwrap();
    }
}

fn data_dir(env: &Env) -> std::path::PathBuf {
    let (_, dir) = env
        .vars
        .iter()
        .find(|(k, _)| k == "THWONK_DATA_DIR")
        .expect("THWONK_DATA_DIR");
    dir.into()
}

/// The one outbox row of the thwonk's most recent run, once it reaches `status`.
async fn row_when(store: &Store, thwonk: &str, status: DeliveryStatus) -> OutboxRow {
    let t = store
        .thwonk_by_address(&Address::parse(thwonk).unwrap())
        .await
        .unwrap()
        .unwrap();
    eventually(
        &format!("an outbox row of {thwonk} {status}"),
        WAIT,
        || async {
            let runs = store.list_runs(&t.id, 1).await.unwrap();
            let run = runs.first()?;
            let rows = store.outbox_of_run(&run.id).await.unwrap();
            rows.into_iter().find(|r| r.status == status)
        },
    )
    .await
}

fn count(list: &[String], what: &str) -> usize {
    list.iter().filter(|a| *a == what).count()
}

async fn one_refused_recipient_fails_alone(env: Env, relay: Relay, store: Store) {
    relay.refuse("bad@dest.test", RcptVerdict::Unknown);
    relay.refuse("slow@dest.test", RcptVerdict::TempFail("greylisted".into()));
    let daemon = Daemon::start(&env).await;
    send_mail(daemon.smtp, "ann@example.net", "fan@example.org", "go", "x").await;

    // First attempt: ok1 and ok2 get it, bad is refused for good, slow is deferred.
    let got = relay
        .wait_for("the first delivery", WAIT, |r| !r.is_empty())
        .await;
    assert_eq!(got[0].rcpt_to, ["ok1@dest.test", "ok2@dest.test"]);
    let row = row_when(&store, "fan@example.org", DeliveryStatus::Queued).await;
    let rcpts = eventually("slow deferred once", WAIT, || async {
        let r = store.outbox_recipients(&row.id).await.unwrap();
        r.iter()
            .any(|s| s.rcpt == "slow@dest.test" && s.attempts == 1)
            .then_some(r)
    })
    .await;
    let by = |rcpt: &str| rcpts.iter().find(|s| s.rcpt == rcpt).unwrap().clone();
    assert_eq!(by("bad@dest.test").status, DeliveryStatus::Failed);
    assert!(
        by("bad@dest.test")
            .last_reply
            .unwrap()
            .starts_with("550 5.1.1"),
        "{rcpts:?}"
    );
    assert_eq!(by("slow@dest.test").status, DeliveryStatus::Queued);
    assert_eq!(by("ok1@dest.test").status, DeliveryStatus::Sent);

    // The retry goes to slow only.
    relay.accept("slow@dest.test");
    let got = relay.wait_for("the retry", WAIT, |r| r.len() >= 2).await;
    assert_eq!(got[1].rcpt_to, ["slow@dest.test"]);
    let failed = row_when(&store, "fan@example.org", DeliveryStatus::Failed).await;
    assert_eq!(failed.id, row.id);
    let error = failed.last_error.unwrap();
    assert!(
        error.contains("bad@dest.test") && error.contains("550"),
        "{error}"
    );
    let rcpts = store.outbox_recipients(&row.id).await.unwrap();
    let states: Vec<(&str, &str, i64)> = rcpts
        .iter()
        .map(|s| (s.rcpt.as_str(), s.status.as_str(), s.attempts))
        .collect();
    assert_eq!(
        states,
        [
            ("bad@dest.test", "failed", 1),
            ("ok1@dest.test", "sent", 1),
            ("ok2@dest.test", "sent", 1),
            ("slow@dest.test", "sent", 2),
        ]
    );

    // Our own VERP address sent it: the failure is a bounce record, not a DSN to ourselves.
    let bounces = store.bounces_of_outbox(&row.id).await.unwrap();
    assert_eq!(bounces.len(), 1, "{bounces:?}");
    assert_eq!(bounces[0].bounce.source, "local");
    assert_eq!(bounces[0].bounce.rcpt.as_deref(), Some("bad@dest.test"));
    assert_eq!(bounces[0].bounce.status.as_deref(), Some("5.1.1"));

    // Let another retry period pass: nothing more goes out, and nobody was asked twice but slow.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(relay.received().len(), 2, "{:#?}", relay.received());
    let asked = relay.asked();
    assert_eq!(count(&asked, "ok1@dest.test"), 1, "{asked:?}");
    assert_eq!(count(&asked, "ok2@dest.test"), 1, "{asked:?}");
    assert_eq!(count(&asked, "bad@dest.test"), 1, "{asked:?}");
    assert_eq!(count(&asked, "slow@dest.test"), 2, "{asked:?}");
    assert!(
        relay
            .received()
            .iter()
            .all(|m| m.mail_from.starts_with("bounces+"))
    );
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_recipient_fails_alone_on_sqlite() {
    on(false, one_refused_recipient_fails_alone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_recipient_fails_alone_on_postgres() {
    on(true, one_refused_recipient_fails_alone).await;
}

/// Queue, through the store, an outbox row whose envelope sender is someone else (as relayed
/// mail would be), and its outbound job.
async fn queue_foreign_row(store: &Store, data: &Path, mail_from: &str, to: &str) -> String {
    let t = store
        .thwonk_by_address(&Address::parse("echo@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    let id = thwonk_core::ids::new_id();
    let now = thwonk_core::time::now_ms();
    let commit = thwonk_store::RunCommit {
        run: thwonk_store::RunRecord {
            id: thwonk_core::ids::new_id(),
            thwonk_id: t.id.clone(),
            message_id: None,
            trigger: thwonk_core::status::TriggerKind::Request,
            script_version: 1,
            status: thwonk_core::run::RunStatus::Ok,
            error_kind: None,
            error_message: None,
            error_stack: None,
            logs: Vec::new(),
            logs_truncated: false,
            instructions: 0,
            wall_ms: 0,
            started_at_ms: now,
            finished_at_ms: now,
        },
        vfs: Vec::new(),
        outbox: vec![thwonk_store::NewOutbox {
            id: id.clone(),
            mail_from: mail_from.into(),
            rcpt_to: vec![to.into()],
            raw: b"From: carol@sender.test\r\nSubject: relayed\r\nMessage-ID: <relayed.1@sender.test>\r\n\r\nhello\r\n".to_vec(),
            bounce_token: None,
        }],
        feed_ops: Vec::new(),
        schedule_tick_ms: None,
        jobs: Default::default(),
    };
    store.commit_run(&commit).await.unwrap();
    let redis = support::private_redis(data).await;
    JobQueue::new(&redis, OUTBOUND)
        .publish(&id, &thwonk_thoonk::outbound_payload(&id))
        .await
        .unwrap();
    id
}

async fn a_refused_message_gets_one_dsn_to_its_sender(env: Env, relay: Relay, store: Store) {
    relay.refuse("gone@dest.test", RcptVerdict::Unknown);
    let daemon = Daemon::start(&env).await;
    let data = data_dir(&env);
    let id = queue_foreign_row(&store, &data, "carol@sender.test", "gone@dest.test").await;

    let failed = eventually("the row failed", WAIT, || async {
        store
            .outbox(&id)
            .await
            .unwrap()
            .filter(|r| r.status == DeliveryStatus::Failed)
    })
    .await;
    assert!(
        failed.last_error.as_deref().unwrap().contains("550 5.1.1"),
        "{failed:?}"
    );
    let got = relay.wait_for("the DSN", WAIT, |r| !r.is_empty()).await;
    assert_eq!(got[0].mail_from, "", "a DSN goes from the null sender");
    assert_eq!(got[0].rcpt_to, ["carol@sender.test"]);
    let raw = String::from_utf8_lossy(&got[0].raw).into_owned();
    assert!(
        raw.contains("multipart/report; report-type=delivery-status"),
        "{raw}"
    );
    let reported = thwonk_mail::dsn::parse_dsn(&got[0].raw);
    assert_eq!(reported.len(), 1, "{raw}");
    assert_eq!(reported[0].rcpt.as_deref(), Some("gone@dest.test"));
    assert_eq!(reported[0].action.as_deref(), Some("failed"));
    assert_eq!(reported[0].status.as_deref(), Some("5.1.1"));
    assert!(raw.contains("Message-ID: <relayed.1@sender.test>"), "{raw}");
    assert!(store.bounces_of_outbox(&id).await.unwrap().is_empty());

    // Exactly one: no second DSN, and nothing to `<>` beyond it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(relay.received().len(), 1, "{:#?}", relay.received());
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_gets_one_dsn_to_its_sender_on_sqlite() {
    on(false, a_refused_message_gets_one_dsn_to_its_sender).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_gets_one_dsn_to_its_sender_on_postgres() {
    on(true, a_refused_message_gets_one_dsn_to_its_sender).await;
}

async fn a_refused_dsn_is_never_bounced(env: Env, relay: Relay, store: Store) {
    // The DSN's own recipient refuses it too: the DSN row fails with a bounce record, and no
    // mail at all leaves (no bounce to a bounce).
    relay.refuse("gone@dest.test", RcptVerdict::Unknown);
    relay.refuse("carol@sender.test", RcptVerdict::Unknown);
    let daemon = Daemon::start(&env).await;
    let data = data_dir(&env);
    let id = queue_foreign_row(&store, &data, "carol@sender.test", "gone@dest.test").await;
    let run_id = store.outbox(&id).await.unwrap().unwrap().run_id;
    let rows = eventually("the row and its DSN failed", WAIT, || async {
        let rows = store.outbox_of_run(&run_id).await.unwrap();
        (rows.len() == 2 && rows.iter().all(|r| r.status == DeliveryStatus::Failed)).then_some(rows)
    })
    .await;
    let dsn = rows.iter().find(|r| r.id != id).unwrap();
    assert_eq!(dsn.mail_from, "");
    let bounces = store.bounces_of_run(&run_id).await.unwrap();
    assert_eq!(bounces.len(), 1, "{bounces:?}");
    assert_eq!(bounces[0].bounce.outbox_id, dsn.id);
    assert_eq!(bounces[0].bounce.rcpt.as_deref(), Some("carol@sender.test"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(relay.received().is_empty(), "{:#?}", relay.received());
    assert_eq!(store.outbox_of_run(&run_id).await.unwrap().len(), 2);
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dsn_is_never_bounced_on_sqlite() {
    on(false, a_refused_dsn_is_never_bounced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dsn_is_never_bounced_on_postgres() {
    on(true, a_refused_dsn_is_never_bounced).await;
}

/// Send `raw` over SMTP from the null sender to `to`; the server's refusal, if it refused.
async fn send_bounce(smtp: std::net::SocketAddr, to: &str, raw: &[u8]) -> Result<(), String> {
    let mut c = SmtpClient::hello(smtp, "client.test").await.unwrap();
    for line in [
        "MAIL FROM:<>".to_string(),
        format!("RCPT TO:<{to}>"),
        "DATA".into(),
    ] {
        let reply = c.command(&line).await.unwrap();
        if code(&reply) >= 400 {
            return Err(reply);
        }
    }
    let reply = c.data(raw).await.unwrap();
    if code(&reply) != 250 {
        return Err(reply);
    }
    c.quit().await;
    Ok(())
}

async fn a_bounce_to_a_verp_address_is_recorded_against_its_row(
    env: Env,
    relay: Relay,
    store: Store,
) {
    let daemon = Daemon::start(&env).await;
    send_mail(
        daemon.smtp,
        "dan@remote.test",
        "echo@example.org",
        "hi",
        "x",
    )
    .await;
    let got = relay.wait_for("the echo", WAIT, |r| !r.is_empty()).await;
    let verp = got[0].mail_from.clone();
    let row = row_when(&store, "echo@example.org", DeliveryStatus::Sent).await;
    assert_eq!(
        verp,
        format!("bounces+{}@example.org", row.bounce_token.clone().unwrap())
    );
    assert_eq!(row.mail_from, verp);

    // The remote side bounces the echo later, to the VERP address.
    let dsn = thwonk_mail::dsn::build_dsn(
        &thwonk_mail::dsn::DsnContext {
            reporting_mta: "mx.remote.test",
            id: "remote-1",
            to: &verp,
            arrival_ms: 0,
            date_ms: 0,
            original: &got[0].raw,
        },
        &[thwonk_mail::dsn::FailedRecipient {
            rcpt: "Dan@Remote.test".into(),
            status: "5.2.2".into(),
            remote_mta: Some("mx.remote.test".into()),
            smtp_reply: Some("552 5.2.2 mailbox full".into()),
            explanation: "mailbox full".into(),
        }],
    );
    send_bounce(daemon.smtp, &verp, &dsn).await.unwrap();
    let bounces = eventually("the bounce recorded", WAIT, || async {
        let b = store.bounces_of_run(&row.run_id).await.unwrap();
        (!b.is_empty()).then_some(b)
    })
    .await;
    assert_eq!(bounces.len(), 1, "{bounces:?}");
    let b = &bounces[0].bounce;
    assert_eq!(b.outbox_id, row.id);
    assert_eq!(b.source, "remote");
    assert_eq!(b.rcpt.as_deref(), Some("dan@remote.test"));
    assert_eq!(b.status.as_deref(), Some("5.2.2"));
    assert_eq!(
        b.diagnostic.as_deref(),
        Some("smtp; 552 5.2.2 mailbox full")
    );
    assert_eq!(b.reported_by.as_deref(), Some(""));

    // An unknown token is refused at RCPT, and the bounce ran no script.
    let e = send_bounce(daemon.smtp, "bounces+0123456789abcdef@example.org", &dsn)
        .await
        .unwrap_err();
    assert_eq!(code(&e), 550, "{e}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = store
        .thwonk_by_address(&Address::parse("echo@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.list_runs(&t.id, 10).await.unwrap().len(), 1);
    assert_eq!(relay.received().len(), 1, "nothing answered the bounce");
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_to_a_verp_address_is_recorded_on_sqlite() {
    on(
        false,
        a_bounce_to_a_verp_address_is_recorded_against_its_row,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_to_a_verp_address_is_recorded_on_postgres() {
    on(true, a_bounce_to_a_verp_address_is_recorded_against_its_row).await;
}

/// Issue 13 item 5: forged bounces. Anyone who saw a VERP address in a message can send to
/// it; only a report on that message's own recipients is recorded, and at most
/// `smtp.max_bounces_per_token_per_hour` (20 by default, the row having one recipient) records
/// a token per hour.
async fn forged_bounces_are_not_recorded_and_real_ones_are_capped(
    env: Env,
    relay: Relay,
    store: Store,
) {
    let daemon = Daemon::start(&env).await;
    send_mail(
        daemon.smtp,
        "dan@remote.test",
        "echo@example.org",
        "hi",
        "x",
    )
    .await;
    let got = relay.wait_for("the echo", WAIT, |r| !r.is_empty()).await;
    let verp = got[0].mail_from.clone();
    let row = row_when(&store, "echo@example.org", DeliveryStatus::Sent).await;
    assert!(verp.starts_with("bounces+"), "{verp}");

    // 50 messages that are not bounces, over one session as an attacker would send them:
    // spam, a vacation notice, a DSN-looking text with no report, a report about someone
    // else, a 4xx. Each is accepted and dropped; none is a bounce record.
    let junk: Vec<Vec<u8>> = vec![
        b"From: x@evil.test\r\nSubject: buy now\r\n\r\ndan@remote.test, cheap pills\r\n".to_vec(),
        b"From: x@evil.test\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n".to_vec(),
        b"From: x@evil.test\r\nSubject: Undelivered\r\n\r\nFinal-Recipient: rfc822; dan@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n".to_vec(),
        b"From: x@evil.test\r\nSubject: failure\r\n\r\n550 5.1.1 <victim@elsewhere.test>: no such user\r\n".to_vec(),
        b"From: x@evil.test\r\nSubject: delay\r\n\r\n451 4.7.1 <dan@remote.test>: greylisted\r\n".to_vec(),
    ];
    let mut c = SmtpClient::hello(daemon.smtp, "evil.test").await.unwrap();
    for i in 0..50 {
        let reply = c
            .message("mallory@evil.test", &verp, &junk[i % junk.len()])
            .await;
        assert_eq!(code(&reply), 250, "message {i}: {reply}");
    }
    c.quit().await;
    assert!(
        store.bounces_of_outbox(&row.id).await.unwrap().is_empty(),
        "a forged bounce was recorded"
    );

    // A real DSN for dan is.
    let dsn = |n: usize| {
        thwonk_mail::dsn::build_dsn(
            &thwonk_mail::dsn::DsnContext {
                reporting_mta: "mx.remote.test",
                id: &format!("remote-{n}"),
                to: &verp,
                arrival_ms: 0,
                date_ms: 0,
                original: &got[0].raw,
            },
            &[thwonk_mail::dsn::FailedRecipient {
                rcpt: "dan@remote.test".into(),
                status: "5.2.2".into(),
                remote_mta: Some("mx.remote.test".into()),
                smtp_reply: Some("552 5.2.2 mailbox full".into()),
                explanation: "mailbox full".into(),
            }],
        )
    };
    send_bounce(daemon.smtp, &verp, &dsn(0)).await.unwrap();
    let b = store.bounces_of_outbox(&row.id).await.unwrap();
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].bounce.rcpt.as_deref(), Some("dan@remote.test"));

    // A flood of real-looking DSNs is capped.
    for n in 1..=40 {
        send_bounce(daemon.smtp, &verp, &dsn(n)).await.unwrap();
    }
    let b = store.bounces_of_outbox(&row.id).await.unwrap();
    assert_eq!(b.len(), 20, "the cap is 20 records a token an hour");
    assert!(
        daemon
            .log()
            .iter()
            .any(|l| l.contains("not a delivery status notification")),
        "no log line for the dropped mail"
    );
    // And nothing ran a script or was answered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(relay.received().len(), 1);
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bounces_are_not_recorded_on_sqlite() {
    on(
        false,
        forged_bounces_are_not_recorded_and_real_ones_are_capped,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bounces_are_not_recorded_on_postgres() {
    on(
        true,
        forged_bounces_are_not_recorded_and_real_ones_are_capped,
    )
    .await;
}
