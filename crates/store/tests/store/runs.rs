use thwonk_core::run::{ErrorKind, LogLine, RunStatus, VfsOp};
use thwonk_core::status::MessageStatus;
use thwonk_store::{CommitResult, RunCommit, Store};

use crate::common::{mail, ok_commit, one_message, run_record, thwonk, write};

on_both!(
    a_message_commits_exactly_once,
    a_failed_run_writes_only_its_record,
    runs_without_a_message_always_commit_and_apply_ops_in_order,
    concurrent_commits_never_fail_and_commit_each_message_once,
    a_missing_message_counts_as_already_processed,
    runs_are_listed_newest_first,
    a_run_id_commits_once_even_when_racing,
);

async fn a_message_commits_exactly_once(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let m = one_message(&store, &t.id).await;
    let first = ok_commit(
        &t.id,
        Some(&m),
        vec![write("count", "1")],
        vec![mail("bob@example.net")],
    );
    // The same job delivered twice: a second run with its own id and effects.
    let second = ok_commit(
        &t.id,
        Some(&m),
        vec![write("count", "2"), write("other", "x")],
        vec![mail("carol@example.net")],
    );
    assert_eq!(
        store.commit_run(&first).await.unwrap(),
        CommitResult::Committed
    );
    assert_eq!(
        store.commit_run(&second).await.unwrap(),
        CommitResult::AlreadyProcessed
    );
    // Replaying the very same commit is also refused.
    assert_eq!(
        store.commit_run(&first).await.unwrap(),
        CommitResult::AlreadyProcessed
    );

    assert_eq!(
        store.read_file(&t.id, "count").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(store.read_file(&t.id, "other").await.unwrap(), None);
    assert!(store.outbox(&first.outbox[0].id).await.unwrap().is_some());
    assert!(store.outbox(&second.outbox[0].id).await.unwrap().is_none());
    assert_eq!(store.queued_outbox_ids().await.unwrap().len(), 1);

    let runs = store.list_runs(&t.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0], first.run);
    assert!(store.run(&second.run.id).await.unwrap().is_none());
    assert_eq!(
        store.message(&m).await.unwrap().unwrap().status,
        MessageStatus::Processed
    );
}

async fn a_failed_run_writes_only_its_record(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let m = one_message(&store, &t.id).await;
    let mut run = run_record(&t.id, Some(&m), RunStatus::Error);
    run.error_kind = Some(ErrorKind::ScriptError);
    run.error_message = Some("boom".into());
    run.error_stack = Some("at onMessage (script:3)".into());
    run.logs = vec![
        LogLine {
            level: "log".into(),
            message: "starting".into(),
        },
        LogLine {
            level: "error".into(),
            message: "about to throw \u{1F4A5}".into(),
        },
    ];
    run.logs_truncated = true;
    // Effects a buggy caller passed anyway: they must not be applied.
    let commit = RunCommit {
        run: run.clone(),
        vfs: vec![write("state", "bad")],
        outbox: vec![mail("bob@example.net")],
        feed_ops: vec![thwonk_core::run::FeedOp::Retract {
            feed: "list@x.org/archive".into(),
            id: "x".into(),
        }],
        schedule_tick_ms: None,
        jobs: Default::default(),
    };
    assert_eq!(
        store.commit_run(&commit).await.unwrap(),
        CommitResult::Committed
    );
    assert_eq!(store.read_file(&t.id, "state").await.unwrap(), None);
    assert!(store.queued_outbox_ids().await.unwrap().is_empty());
    assert!(store.pending_feed_ops(&t.id, 10).await.unwrap().is_empty());
    assert_eq!(store.run(&run.id).await.unwrap().unwrap(), run);
    let msg = store.message(&m).await.unwrap().unwrap();
    assert_eq!(msg.status, MessageStatus::Failed);
    // A failed message is not retried by a second delivery of its job.
    let retry = ok_commit(&t.id, Some(&m), vec![write("state", "late")], vec![]);
    assert_eq!(
        store.commit_run(&retry).await.unwrap(),
        CommitResult::AlreadyProcessed
    );
}

async fn runs_without_a_message_always_commit_and_apply_ops_in_order(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let commit = ok_commit(
        &t.id,
        None,
        vec![
            write("a", "first"),
            VfsOp::Delete { path: "a".into() },
            write("b", "one"),
            write("b", "two"),
            VfsOp::Delete {
                path: "never-existed".into(),
            },
        ],
        vec![mail("x@example.net"), mail("y@example.net")],
    );
    assert_eq!(
        store.commit_run(&commit).await.unwrap(),
        CommitResult::Committed
    );
    assert_eq!(store.read_file(&t.id, "a").await.unwrap(), None);
    assert_eq!(
        store.read_file(&t.id, "b").await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(store.queued_outbox_ids().await.unwrap().len(), 2);
    let again = ok_commit(&t.id, None, vec![write("b", "three")], vec![]);
    assert_eq!(
        store.commit_run(&again).await.unwrap(),
        CommitResult::Committed
    );
    assert_eq!(
        store.read_file(&t.id, "b").await.unwrap().as_deref(),
        Some(&b"three"[..])
    );
    let runs = store.list_runs(&t.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.message_id.is_none()));
}

async fn concurrent_commits_never_fail_and_commit_each_message_once(store: Store) {
    const MESSAGES: usize = 6;
    const DELIVERIES: usize = 3;
    let t = thwonk(&store, "list@x.org").await;
    let mut ids = Vec::new();
    for _ in 0..MESSAGES {
        ids.push(one_message(&store, &t.id).await);
    }
    let mut tasks = Vec::new();
    for d in 0..DELIVERIES {
        for (i, m) in ids.iter().enumerate() {
            let commit = ok_commit(
                &t.id,
                Some(m),
                vec![write(&format!("m{i}"), &format!("delivery {d}"))],
                vec![mail("bob@example.net")],
            );
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.commit_run(&commit).await }));
        }
    }
    let mut committed = 0;
    let mut already = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(CommitResult::Committed) => committed += 1,
            Ok(CommitResult::AlreadyProcessed) => already += 1,
            Err(e) => panic!("a concurrent commit failed: {e}"),
        }
    }
    assert_eq!(committed, MESSAGES);
    assert_eq!(already, MESSAGES * (DELIVERIES - 1));
    assert_eq!(store.queued_outbox_ids().await.unwrap().len(), MESSAGES);
    assert_eq!(store.list_runs(&t.id, 100).await.unwrap().len(), MESSAGES);
    assert_eq!(store.list_files(&t.id, "").await.unwrap().len(), MESSAGES);
    assert!(store.queued_messages().await.unwrap().is_empty());
}

async fn a_missing_message_counts_as_already_processed(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let commit = ok_commit(&t.id, Some("deleted-by-ingress"), vec![], vec![]);
    assert_eq!(
        store.commit_run(&commit).await.unwrap(),
        CommitResult::AlreadyProcessed
    );
    assert!(store.list_runs(&t.id, 10).await.unwrap().is_empty());
}

async fn runs_are_listed_newest_first(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let other = thwonk(&store, "other@x.org").await;
    for started in [30, 10, 20] {
        let mut c = ok_commit(&t.id, None, vec![], vec![]);
        c.run.started_at_ms = started;
        store.commit_run(&c).await.unwrap();
    }
    store
        .commit_run(&ok_commit(&other.id, None, vec![], vec![]))
        .await
        .unwrap();
    let started: Vec<i64> = store
        .list_runs(&t.id, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.started_at_ms)
        .collect();
    assert_eq!(started, [30, 20, 10]);
    assert_eq!(store.list_runs(&t.id, 2).await.unwrap().len(), 2);
    assert!(store.list_runs(&t.id, 0).await.unwrap().is_empty());
}

async fn a_run_id_commits_once_even_when_racing(store: Store) {
    // A request run's id is its job's id: the same job delivered twice commits the same id.
    let t = thwonk(&store, "list@x.org").await;
    let mut first = ok_commit(
        &t.id,
        None,
        vec![write("n", "1")],
        vec![mail("a@example.net")],
    );
    first.run.id = "request-job-1".into();
    let mut tasks = Vec::new();
    for d in 0..4 {
        let mut commit = first.clone();
        commit.vfs = vec![write("n", &format!("delivery {d}"))];
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.commit_run(&commit).await }));
    }
    let mut committed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(CommitResult::Committed) => committed += 1,
            Ok(CommitResult::AlreadyProcessed) => {}
            Err(e) => panic!("a concurrent commit failed: {e}"),
        }
    }
    assert_eq!(committed, 1);
    assert_eq!(
        store.commit_run(&first).await.unwrap(),
        CommitResult::AlreadyProcessed
    );
    assert_eq!(store.list_runs(&t.id, 10).await.unwrap().len(), 1);
    assert_eq!(store.queued_outbox_ids().await.unwrap().len(), 1);
}
