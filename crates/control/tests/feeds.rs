//! Feed operations committed with a run reach Redis after the commit, in order, and survive
//! Redis being away: they stay pending and are applied when it is back. Real SQLite, real
//! redis-server.

use thwonk_core::run::FeedOp;
use thwonk_store::{RunCommit, RunRecord, Store};
use thwonk_thoonk::{Feed, PrivateRedis, Redis};

fn run(thwonk_id: &str, ops: Vec<FeedOp>) -> RunCommit {
    RunCommit {
        run: RunRecord {
            id: thwonk_core::ids::new_id(),
            thwonk_id: thwonk_id.into(),
            message_id: None,
            trigger: thwonk_core::status::TriggerKind::Request,
            script_version: 1,
            status: thwonk_core::run::RunStatus::Ok,
            error_kind: None,
            error_message: None,
            error_stack: None,
            logs: vec![],
            logs_truncated: false,
            instructions: 1,
            wall_ms: 1,
            started_at_ms: 1,
            finished_at_ms: 2,
        },
        vfs: vec![],
        outbox: vec![],
        feed_ops: ops,
        schedule_tick_ms: None,
        jobs: Default::default(),
    }
}

fn publish(id: &str, item: &str) -> FeedOp {
    FeedOp::Publish {
        feed: "list@x.org/archive".into(),
        id: id.into(),
        item: item.into(),
    }
}

#[tokio::test]
async fn committed_feed_ops_wait_out_a_redis_outage_and_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()), 2)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let t = store
        .deploy_script(
            &thwonk_core::Address::parse("list@x.org").unwrap(),
            "x",
            None,
        )
        .await
        .unwrap()
        .thwonk;
    let sock = dir.path().join("r.sock");
    let server = PrivateRedis::start("redis-server", dir.path(), &sock)
        .await
        .unwrap();
    let redis = Redis::connect(&server.url()).await.unwrap();
    let feed = Feed::new(&redis, "list@x.org/archive");

    store
        .commit_run(&run(&t.id, vec![publish("a", "1")]))
        .await
        .unwrap();
    assert_eq!(
        thwonk_control::feeds::apply_pending(&store, &redis, &t.id, 0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(feed.ids().await.unwrap(), vec!["a"]);

    // Redis goes away; two more runs commit: a publish, then a retract of the same item.
    server.stop().await;
    store
        .commit_run(&run(&t.id, vec![publish("b", "2")]))
        .await
        .unwrap();
    let retract = FeedOp::Retract {
        feed: "list@x.org/archive".into(),
        id: "b".into(),
    };
    store
        .commit_run(&run(&t.id, vec![retract, publish("a", "1 edited")]))
        .await
        .unwrap();
    thwonk_control::feeds::apply_after_commit(&store, &redis, &t.id, 0).await;
    assert_eq!(
        store.pending_feed_ops(&t.id, 10).await.unwrap().len(),
        3,
        "kept, not lost"
    );

    // Back (its append-only file kept the feed): applied in commit order, so b ends retracted.
    let server = PrivateRedis::start("redis-server", dir.path(), &sock)
        .await
        .unwrap();
    let mut applied = 0;
    for _ in 0..50 {
        match thwonk_control::feeds::apply_pending(&store, &redis, &t.id, 0).await {
            Ok(n) => {
                applied += n;
                break;
            }
            // The shared connection reconnects by itself; give it a moment.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(applied, 3);
    assert_eq!(feed.ids().await.unwrap(), vec!["a"]);
    assert_eq!(feed.get("a").await.unwrap().as_deref(), Some("1 edited"));
    assert!(store.pending_feed_ops(&t.id, 10).await.unwrap().is_empty());
    server.stop().await;
}
