//! Loops and backscatter (issue 13 items 3 and 4), over real SMTP against a live daemon.
//!
//! - Thwonks answering each other: the daemon's egress relays to its own SMTP port, so every
//!   send comes back in as mail, as it would between two Thwonk servers. Each send carries the
//!   loop marks of the message that triggered its run, plus its own; the ingress refuses a
//!   message that passed through a recipient already, or through more than
//!   `smtp.max_thwonk_hops` thwonks, and the sending row fails with that reply as its record.
//! - Auto-replies (RFC 3834): `thwonk.reply` answers the envelope sender, never `<>`,
//!   automatic or list mail (unless forced), and the same reply to one correspondent once a
//!   day.
//!
//! Each scenario runs on SQLite and, when `THWONK_TEST_POSTGRES_URL` is set, on PostgreSQL.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use support::{Daemon, Env, Relay, SmtpClient, code, eventually};
use thwonk_core::Address;
use thwonk_core::status::DeliveryStatus;
use thwonk_store::{OutboxRow, RunRecord, Store};

const WAIT: Duration = Duration::from_secs(30);

/// Where the egress delivers.
enum Egress {
    /// To the daemon's own SMTP port.
    Itself,
    /// To a recording relay.
    Relay,
}

/// Runs `scenario(env, relay, store, dir)` on SQLite or on a scratch PostgreSQL database.
async fn on<F, Fut>(postgres: bool, egress: Egress, scenario: F)
where
    F: FnOnce(Env, Option<Relay>, Store, PathBuf) -> Fut,
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
    let (relay, target) = match egress {
        Egress::Relay => {
            let relay = Relay::start().await;
            let addr = relay.addr;
            (Some(relay), addr)
        }
        Egress::Itself => (None, free_port()),
    };
    let mut env = support::env(&data, target, scratch.as_ref().map(|s| s.url()));
    if relay.is_none() {
        env.vars
            .push(("THWONK_SMTP_LISTEN".into(), target.to_string()));
    }
    env.vars
        .push(("THWONK_EGRESS_RETRY_SCHEDULE_SECS".into(), "1".into()));
    // The server's default once-a-day rule for the same reply (the test kit turns it off for
    // the tests of other features, whose echo scripts answer one sender twice).
    env.vars.push((
        "THWONK_RUNNER_AUTO_REPLY_INTERVAL_SECS".into(),
        "86400".into(),
    ));
    let url = match &scratch {
        Some(s) => s.url().to_string(),
        None => format!("sqlite://{}", data.join("thwonk.db").display()),
    };
    // Creates and migrates the database before the test opens it.
    env.ok(&["migrate"]);
    let store = Store::connect(&url, 2).await.unwrap();
    scenario(env, relay, store.clone(), dir.path().to_path_buf()).await;
    store.close().await;
    if let Some(s) = scratch {
        s.cleanup().await.unwrap();
    }
}

/// A port on 127.0.0.1 nobody listens on now (the kernel's choice, released at once).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn runs_of(store: &Store, address: &str) -> Vec<RunRecord> {
    let t = store
        .thwonk_by_address(&Address::parse(address).unwrap())
        .await
        .unwrap()
        .unwrap();
    store.list_runs(&t.id, 100).await.unwrap()
}

/// The outbox rows of every run of `address`.
async fn rows_of(store: &Store, address: &str) -> Vec<OutboxRow> {
    let mut rows = Vec::new();
    for run in runs_of(store, address).await {
        rows.extend(store.outbox_of_run(&run.id).await.unwrap());
    }
    rows
}

/// A script that sends each message on to `to`.
fn relay_to(to: &str) -> String {
    format!(
        r#"export function onMessage(msg, thwonk) {{
  thwonk.send({{ to: "{to}", subject: "from " + msg.to, text: msg.text }});
}}
"#
    )
}

/// Item 3. Two thwonks (`ping`, `pong`) that answer each other with `send` through the relay,
/// and a chain of five that each pass the message on (`c0` → `c1` → ... → `c4`), with
/// `smtp.max_thwonk_hops = 3`.
async fn thwonks_answering_each_other_stop(
    mut env: Env,
    _: Option<Relay>,
    store: Store,
    dir: PathBuf,
) {
    env.vars
        .push(("THWONK_SMTP_MAX_THWONK_HOPS".into(), "3".into()));
    env.deploy_source(
        "ping@example.org",
        &dir,
        "ping.js",
        &relay_to("pong@example.org"),
    );
    env.deploy_source(
        "pong@example.org",
        &dir,
        "pong.js",
        &relay_to("ping@example.org"),
    );
    for i in 0..5 {
        env.deploy_source(
            &format!("c{i}@example.org"),
            &dir,
            &format!("c{i}.js"),
            &relay_to(&format!("c{}@example.org", i + 1)),
        );
    }
    let daemon = Daemon::start(&env).await;
    support::send_mail(
        daemon.smtp,
        "ann@example.net",
        "ping@example.org",
        "go",
        "x",
    )
    .await;
    support::send_mail(daemon.smtp, "ann@example.net", "c0@example.org", "go", "x").await;

    // ping → pong → (ping refuses: it passed through ping already).
    let row = eventually("pong's send refused", WAIT, || async {
        rows_of(&store, "pong@example.org")
            .await
            .into_iter()
            .find(|r| r.status == DeliveryStatus::Failed)
    })
    .await;
    let why = row.last_error.clone().unwrap_or_default();
    assert!(
        why.contains("554") && why.contains("5.4.6") && why.contains("ping@example.org"),
        "{why}"
    );
    // c0 → c1 → c2 → c3 → (c4 refuses: four thwonks on the way, three accepted).
    let row = eventually("c3's send refused", WAIT, || async {
        rows_of(&store, "c3@example.org")
            .await
            .into_iter()
            .find(|r| r.status == DeliveryStatus::Failed)
    })
    .await;
    let why = row.last_error.clone().unwrap_or_default();
    assert!(
        why.contains("5.4.6") && why.contains("passed through 4 thwonks"),
        "{why}"
    );
    let marks = String::from_utf8_lossy(&row.raw);
    let hops: Vec<&str> = marks
        .lines()
        .filter_map(|l| l.strip_prefix("X-Thwonk-Loop: "))
        .collect();
    assert_eq!(
        hops,
        [
            "c3@example.org",
            "c2@example.org",
            "c1@example.org",
            "c0@example.org"
        ]
    );

    // And that is the end of it: nothing more runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs_of(&store, "ping@example.org").await.len(), 1);
    assert_eq!(runs_of(&store, "pong@example.org").await.len(), 1);
    for i in 0..4 {
        assert_eq!(
            runs_of(&store, &format!("c{i}@example.org")).await.len(),
            1,
            "c{i}"
        );
    }
    assert!(runs_of(&store, "c4@example.org").await.is_empty());
    assert!(
        daemon
            .log()
            .iter()
            .any(|l| l.contains("passed through too many thwonks")),
        "no log line for the refusal"
    );
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thwonks_answering_each_other_stop_on_sqlite() {
    on(false, Egress::Itself, thwonks_answering_each_other_stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thwonks_answering_each_other_stop_on_postgres() {
    on(true, Egress::Itself, thwonks_answering_each_other_stop).await;
}

/// Answers everything; `force` when the subject says so; logs what reply returned.
const AUTO_REPLY: &str = r#"
export function onMessage(msg, thwonk) {
  const r = thwonk.reply(msg, { text: "I got it", force: msg.subject.startsWith("force") });
  console.log("reply returned " + r);
}
"#;

/// One message over SMTP with the envelope sender `from` (`""` for `<>`); `headers` go first.
async fn send_raw(smtp: SocketAddr, from: &str, subject: &str, headers: &str) {
    let raw = format!(
        "{headers}From: Someone <someone@example.net>\r\nTo: auto@example.org\r\nSubject: {subject}\r\nMessage-ID: <{}@client.test>\r\n\r\nhello\r\n",
        thwonk_core::ids::new_id()
    );
    let mut c = SmtpClient::hello(smtp, "client.test").await.unwrap();
    let reply = c.message(from, "auto@example.org", raw.as_bytes()).await;
    assert_eq!(code(&reply), 250, "{reply}");
    c.quit().await;
}

/// Item 4: RFC 3834 over real SMTP.
async fn auto_replies_follow_rfc_3834(env: Env, relay: Option<Relay>, store: Store, dir: PathBuf) {
    let relay = relay.unwrap();
    env.deploy_source("auto@example.org", &dir, "auto.js", AUTO_REPLY);
    let daemon = Daemon::start(&env).await;
    let smtp = daemon.smtp;
    // (envelope sender, subject, extra headers): none of these is answered...
    let unanswered = [
        ("", "a bounce", ""),
        (
            "robot@example.net",
            "vacation",
            "Auto-Submitted: auto-replied\r\n",
        ),
        (
            "gen@example.net",
            "report",
            "Auto-Submitted: auto-generated\r\n",
        ),
        ("bulk@example.net", "offer", "Precedence: bulk\r\n"),
        ("junk@example.net", "junk", "Precedence: junk\r\n"),
        ("digest@example.net", "digest", "Precedence: list\r\n"),
        (
            "member@example.net",
            "a post",
            "List-Id: <talk.example.net>\r\n",
        ),
    ];
    for (from, subject, headers) in unanswered {
        send_raw(smtp, from, subject, headers).await;
    }
    // ...these are: a forged From: is not where the reply goes (the envelope sender is),
    // "no" is a person, and force answers list mail.
    send_raw(smtp, "mallory@example.net", "forged", "").await;
    send_raw(smtp, "human@example.net", "hi", "Auto-Submitted: no\r\n").await;
    send_raw(
        smtp,
        "lister@example.net",
        "force it",
        "List-Id: <x.example.net>\r\n",
    )
    .await;
    // Two messages the same day from one correspondent: the same reply once.
    send_raw(smtp, "ann@example.net", "first", "").await;
    send_raw(smtp, "ann@example.net", "second", "").await;

    let total = unanswered.len() + 5;
    let runs = eventually("every message run", WAIT, || async {
        let runs = runs_of(&store, "auto@example.org").await;
        (runs.len() == total).then_some(runs)
    })
    .await;
    let got = relay.wait_for("four replies", WAIT, |r| r.len() >= 4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = if relay.received().len() > got.len() {
        relay.received()
    } else {
        got
    };
    let mut to: Vec<String> = got.iter().flat_map(|r| r.rcpt_to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        [
            "ann@example.net",
            "human@example.net",
            "lister@example.net",
            "mallory@example.net"
        ],
        "someone@example.net (the forged From:) must never get a reply"
    );
    for r in &got {
        let raw = String::from_utf8_lossy(&r.raw);
        assert!(
            raw.lines().any(|l| l == "Auto-Submitted: auto-replied"),
            "{raw}"
        );
    }
    // The script saw false, and the run's log says why.
    let logs: Vec<String> = runs
        .iter()
        .flat_map(|r| r.logs.iter().map(|l| l.message.clone()))
        .collect();
    let said = |text: &str| logs.iter().filter(|l| l.contains(text)).count();
    assert_eq!(
        said("reply returned false"),
        unanswered.len() + 1,
        "{logs:#?}"
    );
    assert_eq!(said("null sender"), 1, "{logs:#?}");
    assert_eq!(said("Auto-Submitted: auto-replied"), 1, "{logs:#?}");
    assert_eq!(said("Auto-Submitted: auto-generated"), 1, "{logs:#?}");
    assert_eq!(said("Precedence"), 3, "{logs:#?}");
    assert_eq!(said("List-Id"), 1, "{logs:#?}");
    assert_eq!(
        said("ann@example.net was already sent this reply"),
        1,
        "{logs:#?}"
    );
    daemon.stop(Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_replies_follow_rfc_3834_on_sqlite() {
    on(false, Egress::Relay, auto_replies_follow_rfc_3834).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_replies_follow_rfc_3834_on_postgres() {
    on(true, Egress::Relay, auto_replies_follow_rfc_3834).await;
}
