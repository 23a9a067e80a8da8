//! Cost of a run's commit transaction ([`Store::commit_run`]) for a twitter-list.js post to
//! ten members (message marked processed, run record, ten outbox rows of about 1 KiB), against
//! a bare single-row INSERT transaction on the same database with the same settings.
//!
//! `cargo bench -p thwonk-store --bench commit`. SQLite always (a temporary file, the store's
//! own pragmas: WAL, `synchronous = NORMAL`); PostgreSQL too when `THWONK_TEST_POSTGRES_URL`
//! is set (a scratch database, dropped afterwards). Plain `Instant` timing: means over many
//! commits, measured in the same process one after the other.

use std::time::{Duration, Instant};
use thwonk_core::Address;
use thwonk_core::ids::{new_id, new_token};
use thwonk_store::{NewMessage, NewOutbox, RunCommit, RunRecord, Store};

const COMMITS: usize = 500;
const MEMBERS: usize = 10;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}/thwonk.db", dir.path().display());
        let store = Store::connect(&url, 8).await.expect("SQLite");
        store.migrate().await.expect("migrate SQLite");
        let commit = measure_commit(&store).await;
        store.close().await;
        let bare = measure_bare_sqlite(&dir.path().join("thwonk.db")).await;
        report("SQLite (WAL, synchronous = NORMAL)", commit, bare);

        match std::env::var("THWONK_TEST_POSTGRES_URL") {
            Ok(base) if !base.is_empty() => {
                let db = thwonk_store::scratch::scratch_postgres_url(&base)
                    .await
                    .expect("a scratch PostgreSQL database");
                let store = Store::connect(db.url(), 8).await.expect("PostgreSQL");
                store.migrate().await.expect("migrate PostgreSQL");
                let commit = measure_commit(&store).await;
                store.close().await;
                let bare = measure_bare_postgres(db.url()).await;
                report("PostgreSQL", commit, bare);
                db.cleanup().await.expect("drop the scratch database");
            }
            _ => println!("PostgreSQL: SKIPPED (THWONK_TEST_POSTGRES_URL is not set)"),
        }
    });
}

fn report(engine: &str, commit: Duration, bare: Duration) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("{engine}, mean of {COMMITS} transactions:");
    println!(
        "  bare single-row INSERT transaction      : {:>8.1} µs",
        us(bare)
    );
    println!(
        "  commit_run, a post to {MEMBERS} members        : {:>8.1} µs   ratio {:.2}",
        us(commit),
        commit.as_secs_f64() / bare.as_secs_f64()
    );
}

/// Mean time of `commit_run` for a post to ten members; the messages are stored untimed.
async fn measure_commit(store: &Store) -> Duration {
    let address = Address::parse("list@example.org").expect("address");
    let thwonk = store
        .deploy_script(&address, "export function onMessage() {}", None)
        .await
        .expect("deploy")
        .thwonk;
    let raw = std::sync::Arc::new(b"Subject: post\r\n\r\nhello\r\n".to_vec());
    let messages: Vec<NewMessage> = (0..COMMITS + 1)
        .map(|_| NewMessage {
            thwonk_id: thwonk.id.clone(),
            mail_from: "poster@example.net".into(),
            rcpt_to: vec![address.to_string()],
            raw: raw.clone(),
            received_at_ms: 1_000,
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in messages.chunks(50) {
        ids.extend(store.insert_messages(chunk).await.expect("store messages"));
    }
    let commits: Vec<RunCommit> = ids.iter().map(|id| post(&thwonk.id, id)).collect();
    // One untimed commit first: statement caches, the first WAL pages.
    store.commit_run(&commits[0]).await.expect("commit");
    let started = Instant::now();
    for c in &commits[1..] {
        store.commit_run(c).await.expect("commit");
    }
    started.elapsed() / COMMITS as u32
}

/// The commit of one twitter-list.js post: the run record and one outbox row per member.
fn post(thwonk_id: &str, message_id: &str) -> RunCommit {
    let body = "The quick brown fox jumps over the lazy dog. ".repeat(3);
    RunCommit {
        run: RunRecord {
            id: new_id(),
            thwonk_id: thwonk_id.into(),
            message_id: Some(message_id.into()),
            trigger: thwonk_core::status::TriggerKind::Message,
            script_version: 1,
            status: thwonk_core::run::RunStatus::Ok,
            error_kind: None,
            error_message: None,
            error_stack: None,
            logs: vec![thwonk_core::run::LogLine {
                level: "log".into(),
                message: "post from poster@example.net sent to 10 members".into(),
            }],
            logs_truncated: false,
            instructions: 25_000,
            wall_ms: 2,
            started_at_ms: 2_000,
            finished_at_ms: 2_002,
        },
        vfs: Vec::new(),
        outbox: (0..MEMBERS)
            .map(|i| {
                // As the runner writes them: a VERP sender with the row's own bounce token.
                let token = new_token();
                NewOutbox {
                    id: new_id(),
                    mail_from: format!("bounces+{token}@example.org"),
                    bounce_token: Some(token),
                    rcpt_to: vec![format!("member-{i}@example.net")],
                    raw: format!(
                        "Message-ID: <{}@example.org>\r\nDate: Sat, 21 Nov 2026 12:00:00 +0000\r\n\
                     From: list@example.org\r\nTo: member-{i}@example.net\r\nSubject: post\r\n\
                     MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                     Content-Transfer-Encoding: 7bit\r\n\r\n{body}\r\n",
                        new_id()
                    )
                    .into_bytes(),
                }
            })
            .collect(),
        feed_ops: Vec::new(),
        schedule_tick_ms: None,
        jobs: Default::default(),
    }
}

/// Mean time of a bare one-row INSERT transaction on SQLite with the store's pragmas and its
/// `BEGIN IMMEDIATE`.
async fn measure_bare_sqlite(file: &std::path::Path) -> Duration {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("SQLite");
    for pragma in ["PRAGMA busy_timeout = 5000", "PRAGMA synchronous = NORMAL"] {
        sqlx::query(pragma).execute(&mut conn).await.expect(pragma);
    }
    sqlx::query("CREATE TABLE bench_bare (id TEXT PRIMARY KEY, v BIGINT NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create table");
    let mut one = async || {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.expect("begin");
        sqlx::query("INSERT INTO bench_bare (id, v) VALUES ($1, $2)")
            .bind(new_id())
            .bind(1_i64)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    };
    one().await;
    let started = Instant::now();
    for _ in 0..COMMITS {
        one().await;
    }
    started.elapsed() / COMMITS as u32
}

/// Mean time of a bare one-row INSERT transaction on PostgreSQL.
async fn measure_bare_postgres(url: &str) -> Duration {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("PostgreSQL");
    sqlx::query("CREATE TABLE bench_bare (id TEXT PRIMARY KEY, v BIGINT NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create table");
    let mut one = async || {
        let mut tx = conn.begin().await.expect("begin");
        sqlx::query("INSERT INTO bench_bare (id, v) VALUES ($1, $2)")
            .bind(new_id())
            .bind(1_i64)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    };
    one().await;
    let started = Instant::now();
    for _ in 0..COMMITS {
        one().await;
    }
    started.elapsed() / COMMITS as u32
}
