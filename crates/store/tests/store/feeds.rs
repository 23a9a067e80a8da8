//! Feed operations committed with their run, and schedule ticks committing once.

use thwonk_core::run::{FeedOp, RunStatus};
use thwonk_core::status::TriggerKind;
use thwonk_store::{CommitResult, Store};

use crate::common::{ok_commit, one_message, run_record, thwonk};

on_both!(
    feed_ops_commit_with_their_run_and_stay_pending_until_applied,
    a_schedule_tick_commits_once,
    schedules_lists_active_thwonks_with_a_schedule,
);

fn publish(id: &str, item: &str) -> FeedOp {
    FeedOp::Publish {
        feed: "list@x.org/archive".into(),
        id: id.into(),
        item: item.into(),
    }
}

async fn feed_ops_commit_with_their_run_and_stay_pending_until_applied(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let m = one_message(&store, &t.id).await;
    let mut commit = ok_commit(&t.id, Some(&m), vec![], vec![]);
    commit.feed_ops = vec![
        publish("a", "\"one\""),
        FeedOp::Retract {
            feed: "list@x.org/archive".into(),
            id: "old".into(),
        },
        publish("b", "\"two\""),
    ];
    assert_eq!(
        store.commit_run(&commit).await.unwrap(),
        CommitResult::Committed
    );
    let pending = store.pending_feed_ops(&t.id, 10).await.unwrap();
    let ops: Vec<_> = pending.iter().map(|p| p.op.clone()).collect();
    assert_eq!(ops, commit.feed_ops, "in commit order");
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    let later = thwonk_core::time::now_ms() + 1;
    assert_eq!(
        store.thwonks_with_pending_feed_ops(later).await.unwrap(),
        vec![t.id.clone()]
    );
    assert!(
        store
            .thwonks_with_pending_feed_ops(0)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .mark_feed_op_applied(pending[0].seq, later)
        .await
        .unwrap();
    assert_eq!(store.pending_feed_ops(&t.id, 10).await.unwrap().len(), 2);
    assert_eq!(
        store.pending_feed_ops(&t.id, 1).await.unwrap()[0].seq,
        pending[1].seq
    );
    // A run that was already processed records nothing.
    let mut again = ok_commit(&t.id, Some(&m), vec![], vec![]);
    again.feed_ops = vec![publish("c", "x")];
    assert_eq!(
        store.commit_run(&again).await.unwrap(),
        CommitResult::AlreadyProcessed
    );
    assert_eq!(store.pending_feed_ops(&t.id, 10).await.unwrap().len(), 2);
}

async fn a_schedule_tick_commits_once(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let tick = |status: RunStatus| {
        let mut run = run_record(&t.id, None, status);
        run.trigger = TriggerKind::Schedule;
        thwonk_store::RunCommit {
            run,
            vfs: vec![],
            outbox: vec![],
            feed_ops: vec![publish("t", "x")],
            schedule_tick_ms: Some(86_400_000),
            jobs: Default::default(),
        }
    };
    assert!(!store.schedule_tick_ran(&t.id, 86_400_000).await.unwrap());
    assert_eq!(
        store.commit_run(&tick(RunStatus::Ok)).await.unwrap(),
        CommitResult::Committed
    );
    assert!(store.schedule_tick_ran(&t.id, 86_400_000).await.unwrap());
    // The tick's job delivered again: a second run of the same tick commits nothing.
    assert_eq!(
        store.commit_run(&tick(RunStatus::Ok)).await.unwrap(),
        CommitResult::AlreadyProcessed
    );
    assert_eq!(store.pending_feed_ops(&t.id, 10).await.unwrap().len(), 1);
    assert_eq!(store.list_runs(&t.id, 10).await.unwrap().len(), 1);
}

async fn schedules_lists_active_thwonks_with_a_schedule(store: Store) {
    let a = thwonk_core::Address::parse("daily@x.org").unwrap();
    store
        .deploy_script(
            &a,
            "export const schedule = '0 0 * * *';",
            Some("0 0 * * *"),
        )
        .await
        .unwrap();
    let b = thwonk_core::Address::parse("plain@x.org").unwrap();
    store.deploy_script(&b, "x", None).await.unwrap();
    let s = store.schedules().await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].address.as_str(), s[0].schedule.as_str()),
        ("daily@x.org", "0 0 * * *")
    );
}
