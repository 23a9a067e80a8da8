//! Plain queues against a real redis-server.

mod common;

use common::*;
use std::time::Duration;
use thwonk_thoonk::Queue;

#[tokio::test]
async fn queue_is_fifo_with_priority_at_the_head() {
    let f = fixture().await;
    let q = Queue::new(&f.redis, "plain");
    q.put("a", false).await.unwrap();
    q.put("b", false).await.unwrap();
    q.put("urgent", true).await.unwrap();
    assert_eq!(q.length().await.unwrap(), 3);
    let t = Duration::from_millis(100);
    assert_eq!(q.get(t).await.unwrap().as_deref(), Some("urgent"));
    assert_eq!(q.get(t).await.unwrap().as_deref(), Some("a"));
    assert_eq!(q.get(t).await.unwrap().as_deref(), Some("b"));
    assert_eq!(q.get(t).await.unwrap(), None);
    let items: i64 = raw(&f.redis, &["HLEN", "feed.items:plain"]).await;
    assert_eq!(items, 0, "taken items are gone");
    let ty: String = raw(&f.redis, &["HGET", "feed.config:plain", "type"]).await;
    assert_eq!(ty, "queue");
}

#[tokio::test]
async fn a_waiting_get_wakes_on_put() {
    let f = fixture().await;
    let q = Queue::new(&f.redis, "plain");
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.get(Duration::from_secs(5)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    q.put("late", false).await.unwrap();
    assert_eq!(waiter.await.unwrap().as_deref(), Some("late"));
}
