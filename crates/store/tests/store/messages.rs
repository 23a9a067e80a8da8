use thwonk_core::status::MessageStatus;
use thwonk_store::Store;

use crate::common::{new_message, ok_commit, one_message, thwonk};

on_both!(
    messages_round_trip_in_arrival_order,
    next_queued_message_follows_arrival_order,
    delete_queued_messages_spares_processed_ones,
    a_failed_insert_stores_none_of_the_delivery,
    message_state_tells_thwonk_and_status_without_the_bytes,
    a_message_head_is_its_first_bytes_and_sender,
);

async fn messages_round_trip_in_arrival_order(store: Store) {
    let a = thwonk(&store, "a@x.org").await;
    let b = thwonk(&store, "b@x.org").await;
    // Raw bytes need not be UTF-8.
    let raw = b"Subject: \xff\xfe\r\n\r\nbody\r\n".to_vec();
    let mut m1 = new_message(&a.id, &raw);
    m1.rcpt_to = vec!["a@x.org".into(), "a+tag@x.org".into()];
    m1.mail_from = String::new();
    let m2 = new_message(&b.id, b"two");
    let ids = store.insert_messages(&[m1, m2]).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);

    let s1 = store.message(&ids[0]).await.unwrap().unwrap();
    assert_eq!(s1.thwonk_id, a.id);
    assert_eq!(s1.raw, raw);
    assert_eq!(s1.rcpt_to, ["a@x.org", "a+tag@x.org"]);
    assert_eq!(s1.mail_from, "");
    assert_eq!(s1.status, MessageStatus::Queued);
    assert_eq!(s1.received_at_ms, 1_000);
    let s2 = store.message(&ids[1]).await.unwrap().unwrap();
    assert_eq!(s2.thwonk_id, b.id);
    assert!(s2.seq > s1.seq);

    assert_eq!(store.message("missing").await.unwrap(), None);
    assert!(store.insert_messages(&[]).await.unwrap().is_empty());

    let queued = store.queued_messages().await.unwrap();
    let queued_ids: Vec<&str> = queued.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(queued_ids, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(queued[0].thwonk_id, a.id);
}

async fn next_queued_message_follows_arrival_order(store: Store) {
    let t = thwonk(&store, "a@x.org").await;
    assert_eq!(store.next_queued_message(&t.id).await.unwrap(), None);
    let first = one_message(&store, &t.id).await;
    let second = one_message(&store, &t.id).await;
    assert_eq!(
        store.next_queued_message(&t.id).await.unwrap().unwrap().id,
        first
    );
    store
        .commit_run(&ok_commit(&t.id, Some(&first), vec![], vec![]))
        .await
        .unwrap();
    assert_eq!(
        store.next_queued_message(&t.id).await.unwrap().unwrap().id,
        second
    );
    let other = thwonk(&store, "b@x.org").await;
    assert_eq!(store.next_queued_message(&other.id).await.unwrap(), None);
}

async fn delete_queued_messages_spares_processed_ones(store: Store) {
    let t = thwonk(&store, "a@x.org").await;
    let done = one_message(&store, &t.id).await;
    let queued = one_message(&store, &t.id).await;
    store
        .commit_run(&ok_commit(&t.id, Some(&done), vec![], vec![]))
        .await
        .unwrap();
    store
        .delete_queued_messages(&[done.clone(), queued.clone(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(store.message(&queued).await.unwrap(), None);
    assert_eq!(
        store.message(&done).await.unwrap().unwrap().status,
        MessageStatus::Processed
    );
    store.delete_queued_messages(&[]).await.unwrap();
}

async fn a_failed_insert_stores_none_of_the_delivery(store: Store) {
    let t = thwonk(&store, "a@x.org").await;
    let good = new_message(&t.id, b"ok");
    let bad = new_message("no-such-thwonk", b"fk violation");
    assert!(store.insert_messages(&[good, bad]).await.is_err());
    assert!(store.queued_messages().await.unwrap().is_empty());
}

async fn message_state_tells_thwonk_and_status_without_the_bytes(store: Store) {
    use thwonk_store::MessageState;
    let t = thwonk(&store, "a@x.org").await;
    let (queued, done) = (
        one_message(&store, &t.id).await,
        one_message(&store, &t.id).await,
    );
    store
        .commit_run(&ok_commit(&t.id, Some(&done), vec![], vec![]))
        .await
        .unwrap();
    assert_eq!(
        store.message_state(&queued).await.unwrap(),
        Some(MessageState {
            thwonk_id: t.id.clone(),
            status: MessageStatus::Queued
        })
    );
    assert_eq!(
        store.message_state(&done).await.unwrap().unwrap().status,
        MessageStatus::Processed
    );
    assert_eq!(store.message_state("missing").await.unwrap(), None);
}

async fn a_message_head_is_its_first_bytes_and_sender(store: Store) {
    let t = thwonk(&store, "a@x.org").await;
    let raw = b"Subject: hi\r\nFrom: a@b.test\r\n\r\n\xff\x00body".to_vec();
    let id = store
        .insert_messages(&[new_message(&t.id, &raw)])
        .await
        .unwrap()
        .remove(0);
    let (from, head) = store.message_head(&id, 11).await.unwrap().unwrap();
    assert_eq!(from, "alice@example.net");
    assert_eq!(head, b"Subject: hi");
    // Longer than the message: all of it, bytes as stored.
    let (_, all) = store.message_head(&id, 1 << 20).await.unwrap().unwrap();
    assert_eq!(all, raw);
    assert_eq!(store.message_head("missing", 10).await.unwrap(), None);
}
