//! Running one test body on both engines, and fixtures.

use std::future::Future;
use std::io::Write;

use thwonk_core::Address;
use thwonk_core::ids::new_id;
use thwonk_core::run::RunStatus;
use thwonk_core::status::TriggerKind;
use thwonk_store::scratch::scratch_postgres_url;
use thwonk_store::{NewMessage, NewOutbox, RunCommit, RunRecord, Store, Thwonk};

pub const POSTGRES_URL_VAR: &str = "THWONK_TEST_POSTGRES_URL";

/// Define, for each listed `async fn name(store: Store)`, the tests `name::sqlite` and
/// `name::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::common::on_sqlite(super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::common::on_postgres(module_path!(), super::$name).await
            }
        }
    )*};
}

/// A fresh SQLite file in a folder that does not exist yet (connect must create it).
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/data/thwonk.db", dir.path().display());
    let store = Store::connect(&url, 8).await.expect("connect to SQLite");
    store.migrate().await.expect("migrate SQLite");
    test(store.clone()).await;
    store.close().await;
}

/// A scratch database of its own on the server of `THWONK_TEST_POSTGRES_URL`, dropped
/// afterwards even when the test fails.
pub async fn on_postgres<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
        // Written past the test harness's capture so that a skip is never mistaken for a pass.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {name}::postgres: {POSTGRES_URL_VAR} is not set"
        );
        return;
    };
    let scratch = scratch_postgres_url(&base)
        .await
        .expect("create a scratch PostgreSQL database");
    let store = Store::connect(scratch.url(), 8)
        .await
        .expect("connect to PostgreSQL");
    store.migrate().await.expect("migrate PostgreSQL");
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    scratch.cleanup().await.expect("drop the scratch database");
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

pub fn addr(s: &str) -> Address {
    Address::parse(s).expect("test address")
}

pub async fn thwonk(store: &Store, address: &str) -> Thwonk {
    store
        .deploy_script(&addr(address), "function onMessage() {}", None)
        .await
        .expect("deploy")
        .thwonk
}

pub fn new_message(thwonk_id: &str, raw: &[u8]) -> NewMessage {
    NewMessage {
        thwonk_id: thwonk_id.to_string(),
        mail_from: "alice@example.net".into(),
        rcpt_to: vec!["list@example.org".into()],
        raw: raw.to_vec().into(),
        received_at_ms: 1_000,
    }
}

pub async fn one_message(store: &Store, thwonk_id: &str) -> String {
    store
        .insert_messages(&[new_message(thwonk_id, b"Subject: hi\r\n\r\nhello\r\n")])
        .await
        .expect("insert message")
        .remove(0)
}

pub fn run_record(thwonk_id: &str, message_id: Option<&str>, status: RunStatus) -> RunRecord {
    RunRecord {
        id: new_id(),
        thwonk_id: thwonk_id.to_string(),
        message_id: message_id.map(str::to_string),
        trigger: if message_id.is_some() {
            TriggerKind::Message
        } else {
            TriggerKind::Schedule
        },
        script_version: 1,
        status,
        error_kind: None,
        error_message: None,
        error_stack: None,
        logs: Vec::new(),
        logs_truncated: false,
        instructions: 1234,
        wall_ms: 5,
        started_at_ms: 2_000,
        finished_at_ms: 2_005,
    }
}

pub fn mail(to: &str) -> NewOutbox {
    NewOutbox {
        id: new_id(),
        mail_from: "list@example.org".into(),
        rcpt_to: vec![to.to_string()],
        raw: b"From: list@example.org\r\n\r\nbody\r\n".to_vec(),
        bounce_token: Some(thwonk_core::ids::new_token()),
    }
}

/// A successful run for `message_id` with the given effects.
pub fn ok_commit(
    thwonk_id: &str,
    message_id: Option<&str>,
    vfs: Vec<thwonk_core::run::VfsOp>,
    outbox: Vec<NewOutbox>,
) -> RunCommit {
    RunCommit {
        run: run_record(thwonk_id, message_id, RunStatus::Ok),
        vfs,
        outbox,
        feed_ops: Vec::new(),
        schedule_tick_ms: None,
        jobs: Default::default(),
    }
}

pub fn write(path: &str, content: &str) -> thwonk_core::run::VfsOp {
    thwonk_core::run::VfsOp::Write {
        path: path.into(),
        content: content.into(),
    }
}
