//! Feeds and sorted feeds against a real redis-server: every operation, every event, and the
//! raw keys a client in another language reads.

mod common;

use common::*;
use thwonk_thoonk::{Feed, Position, SortedFeed, Subscription, ThoonkError};

#[tokio::test]
async fn feed_publish_edit_retract_announce_and_read_back() {
    let f = fixture().await;
    let name = "list@example.org/archive";
    let feed = Feed::new(&f.redis, name);
    let mut sub = Subscription::feed(&f.redis, name).await.unwrap();

    assert_eq!(feed.publish(Some("a"), "first", 1000).await.unwrap(), "a");
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("publish", "a", Some("first"))
    );
    feed.publish(Some("b"), "second", 2000).await.unwrap();
    next_event(&mut sub).await;
    // Same id again: an edit, not a second item.
    feed.publish(Some("a"), "first, edited", 3000)
        .await
        .unwrap();
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("edit", "a", Some("first, edited"))
    );
    let generated = feed.publish(None, "third", 4000).await.unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    next_event(&mut sub).await;

    assert_eq!(feed.length().await.unwrap(), 3);
    assert!(feed.has("a").await.unwrap());
    assert_eq!(feed.get("b").await.unwrap().as_deref(), Some("second"));
    assert_eq!(
        feed.ids().await.unwrap(),
        vec!["b", "a", generated.as_str()]
    );
    let all = feed.all().await.unwrap();
    assert_eq!(all[1].item, "first, edited");

    assert!(feed.retract("b").await.unwrap());
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("retract", "b", None)
    );
    assert!(!feed.retract("b").await.unwrap(), "a missing id is a no-op");
    no_event(&mut sub).await;
    assert_eq!(feed.get("b").await.unwrap(), None);

    // The wire format, as docs/thoonk.md spells it.
    let members: Vec<String> = raw(&f.redis, &["SMEMBERS", "feeds"]).await;
    assert_eq!(members, vec![name]);
    let ty: String = raw(&f.redis, &["HGET", &format!("feed.config:{name}"), "type"]).await;
    assert_eq!(ty, "feed");
    let score: i64 = raw(&f.redis, &["ZSCORE", &format!("feed.ids:{name}"), "a"]).await;
    assert_eq!(score, 3000, "ms");
    let publishes: i64 = raw(&f.redis, &["GET", &format!("feed.publishes:{name}")]).await;
    assert_eq!(publishes, 4);
    f.server.stop().await;
}

#[tokio::test]
async fn a_bounded_feed_retracts_its_oldest_items() {
    let f = fixture().await;
    let feed = Feed::new(&f.redis, "bounded");
    feed.configure(2).await.unwrap();
    let mut sub = Subscription::feed(&f.redis, "bounded").await.unwrap();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        feed.publish(Some(id), "x", i as i64).await.unwrap();
    }
    let kinds: Vec<_> = [
        next_event(&mut sub).await,
        next_event(&mut sub).await,
        next_event(&mut sub).await,
        next_event(&mut sub).await,
    ]
    .iter()
    .map(ev)
    .collect();
    assert_eq!(
        kinds,
        vec![
            kind_id("publish", "a", Some("x")),
            kind_id("publish", "b", Some("x")),
            kind_id("retract", "a", None),
            kind_id("publish", "c", Some("x")),
        ]
    );
    assert_eq!(feed.ids().await.unwrap(), vec!["b", "c"]);
    // Editing does not evict.
    feed.publish(Some("b"), "y", 9).await.unwrap();
    assert_eq!(feed.length().await.unwrap(), 2);
}

#[tokio::test]
async fn sorted_feed_places_moves_edits_and_announces_positions() {
    let f = fixture().await;
    let s = SortedFeed::new(&f.redis, "agenda");
    let mut sub = Subscription::feed(&f.redis, "agenda").await.unwrap();

    let one = s.append("one").await.unwrap();
    assert_eq!(one, "1");
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("publish", "1", Some("one"))
    );
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("position", "1", Some(":end"))
    );
    let zero = s.prepend("zero").await.unwrap();
    next_event(&mut sub).await;
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("position", &zero, Some("begin:"))
    );
    let half = s.publish_before(&one, "half").await.unwrap();
    next_event(&mut sub).await;
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("position", &half, Some(":1"))
    );
    let two = s.publish_after(&one, "two").await.unwrap();
    next_event(&mut sub).await;
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("position", &two, Some("1:"))
    );
    assert_eq!(
        s.ids().await.unwrap(),
        vec![zero.as_str(), &half, &one, &two]
    );

    s.move_to(&zero, &Position::End).await.unwrap();
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("position", &zero, Some(":end"))
    );
    s.move_to(&two, &Position::Before(half.clone()))
        .await
        .unwrap();
    next_event(&mut sub).await;
    s.move_to(&one, &Position::Begin).await.unwrap();
    next_event(&mut sub).await;
    s.move_to(&half, &Position::After(zero.clone()))
        .await
        .unwrap();
    next_event(&mut sub).await;
    assert_eq!(
        s.ids().await.unwrap(),
        vec![one.as_str(), &two, &zero, &half]
    );

    s.edit(&one, "uno").await.unwrap();
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("edit", &one, Some("uno"))
    );
    assert_eq!(s.get(&one).await.unwrap().as_deref(), Some("uno"));
    assert!(s.retract(&two).await.unwrap());
    assert_eq!(
        ev(&next_event(&mut sub).await),
        kind_id("retract", &two, None)
    );
    assert!(!s.retract(&two).await.unwrap());
    assert_eq!(s.all().await.unwrap().len(), 3);

    assert!(matches!(
        s.publish_after("99", "x").await,
        Err(ThoonkError::NoSuchItem(id)) if id == "99"
    ));
    assert!(matches!(
        s.edit("99", "x").await,
        Err(ThoonkError::NoSuchItem(_))
    ));
    assert!(matches!(
        s.move_to(&one, &Position::After("99".into())).await,
        Err(ThoonkError::NoSuchItem(_))
    ));
    assert_eq!(
        s.ids().await.unwrap().len(),
        3,
        "a failed move changes nothing"
    );
    let ty: String = raw(&f.redis, &["HGET", "feed.config:agenda", "type"]).await;
    assert_eq!(ty, "sorted_feed");
    let list: Vec<String> = raw(&f.redis, &["LRANGE", "feed.ids:agenda", "0", "-1"]).await;
    assert_eq!(list, vec![one.as_str(), &zero, &half]);
}

#[test]
fn positions_round_trip_through_rel() {
    for p in [
        Position::End,
        Position::Begin,
        Position::Before("7".into()),
        Position::After("7".into()),
    ] {
        assert_eq!(Position::parse(&p.rel()), Some(p));
    }
}

#[tokio::test]
async fn a_deleted_feed_leaves_no_key_and_prefixes_are_literal() {
    let f = fixture().await;
    let a = Feed::new(&f.redis, "t1/archive");
    let b = Feed::new(&f.redis, "t1/news");
    let other = Feed::new(&f.redis, "t10/archive");
    let glob = Feed::new(&f.redis, "t*/x");
    for feed in [&a, &b, &other, &glob] {
        feed.publish(Some("i"), "item", 1000).await.unwrap();
    }
    assert_eq!(
        thwonk_thoonk::feed::feed_names_with_prefix(&f.redis, "t1/")
            .await
            .unwrap(),
        vec!["t1/archive", "t1/news"]
    );
    // A glob character in the prefix is a character, not a pattern.
    assert_eq!(
        thwonk_thoonk::feed::feed_names_with_prefix(&f.redis, "t*/")
            .await
            .unwrap(),
        vec!["t*/x"]
    );
    assert!(a.delete().await.unwrap());
    assert!(!a.delete().await.unwrap());
    assert_eq!(a.length().await.unwrap(), 0);
    assert_eq!(a.get("i").await.unwrap(), None);
    let mut conn = f.redis.shared();
    for key in [
        "feed.config:t1/archive",
        "feed.ids:t1/archive",
        "feed.items:t1/archive",
        "feed.publishes:t1/archive",
    ] {
        let exists: bool = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!exists, "{key} left behind");
    }
    assert_eq!(
        thwonk_thoonk::feed::feed_names_with_prefix(&f.redis, "t1")
            .await
            .unwrap(),
        vec!["t1/news", "t10/archive"]
    );
    assert_eq!(other.length().await.unwrap(), 1);
}
