use thwonk_store::{Store, StoreError};

use crate::common::{mail, ok_commit, thwonk};

on_both!(
    outbox_rows_are_born_queued_and_due_now,
    delivery_moves_a_row_from_queued_once,
    unknown_outbox_rows_are_not_found,
    one_taker_at_a_time_claims_a_due_row,
);

async fn outbox_rows_are_born_queued_and_due_now(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let mut m = mail("bob@example.net");
    m.rcpt_to.push("carol@example.net".into());
    let commit = ok_commit(&t.id, None, vec![], vec![m.clone()]);
    let before = thwonk_core::time::now_ms();
    store.commit_run(&commit).await.unwrap();
    let row = store.outbox(&m.id).await.unwrap().unwrap();
    assert_eq!(row.run_id, commit.run.id);
    assert_eq!(row.thwonk_id, t.id);
    assert_eq!(row.mail_from, m.mail_from);
    assert_eq!(row.rcpt_to, m.rcpt_to);
    assert_eq!(row.raw, m.raw);
    assert_eq!(row.status, "queued");
    assert_eq!(row.attempts, 0);
    assert_eq!(row.last_error, None);
    assert!(row.next_attempt_at_ms >= before);
    assert_eq!(row.created_at_ms, row.next_attempt_at_ms);
    assert_eq!(store.queued_outbox_ids().await.unwrap(), [m.id]);
}

async fn delivery_moves_a_row_from_queued_once(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let (sent, failed) = (mail("a@example.net"), mail("b@example.net"));
    store
        .commit_run(&ok_commit(
            &t.id,
            None,
            vec![],
            vec![sent.clone(), failed.clone()],
        ))
        .await
        .unwrap();

    store
        .mark_outbox_retry(&sent.id, "421 try later", 9_000)
        .await
        .unwrap();
    let row = store.outbox(&sent.id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
    assert_eq!(row.last_error.as_deref(), Some("421 try later"));
    assert_eq!(row.next_attempt_at_ms, 9_000);

    assert!(store.mark_outbox_sent(&sent.id, 10_000).await.unwrap());
    assert!(!store.mark_outbox_sent(&sent.id, 10_001).await.unwrap());
    // A late retry or failure from a duplicate job leaves a sent row alone.
    store.mark_outbox_retry(&sent.id, "late", 1).await.unwrap();
    store.mark_outbox_failed(&sent.id, "late").await.unwrap();
    let row = store.outbox(&sent.id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));

    store
        .mark_outbox_failed(&failed.id, "550 no such user")
        .await
        .unwrap();
    let row = store.outbox(&failed.id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 1));
    assert_eq!(row.last_error.as_deref(), Some("550 no such user"));
    assert!(!store.mark_outbox_sent(&failed.id, 1).await.unwrap());
    assert!(store.queued_outbox_ids().await.unwrap().is_empty());
}

async fn unknown_outbox_rows_are_not_found(store: Store) {
    assert_eq!(store.outbox("nope").await.unwrap(), None);
    assert!(!store.mark_outbox_sent("nope", 1).await.unwrap());
    assert!(matches!(
        store.mark_outbox_retry("nope", "e", 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.mark_outbox_failed("nope", "e").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn one_taker_at_a_time_claims_a_due_row(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let m = mail("a@example.net");
    store
        .commit_run(&ok_commit(&t.id, None, vec![], vec![m.clone()]))
        .await
        .unwrap();
    let due = store
        .outbox(&m.id)
        .await
        .unwrap()
        .unwrap()
        .next_attempt_at_ms;
    // Not due yet: nobody claims it.
    assert!(!store.claim_outbox(&m.id, due - 1, due + 100).await.unwrap());
    assert!(store.claim_outbox(&m.id, due, due + 100).await.unwrap());
    let row = store.outbox(&m.id).await.unwrap().unwrap();
    assert_eq!((row.next_attempt_at_ms, row.attempts), (due + 100, 0));
    // A second taker (a job queued twice) loses while the claim lasts...
    assert!(
        !store
            .claim_outbox(&m.id, due + 99, due + 200)
            .await
            .unwrap()
    );
    // ...and wins once it ran out (the first taker died).
    assert!(
        store
            .claim_outbox(&m.id, due + 100, due + 200)
            .await
            .unwrap()
    );
    // A delivered row is claimed by no one.
    assert!(store.mark_outbox_sent(&m.id, due + 150).await.unwrap());
    assert!(
        !store
            .claim_outbox(&m.id, due + 1_000, due + 2_000)
            .await
            .unwrap()
    );
    assert!(!store.claim_outbox("nope", 0, 1).await.unwrap());
}
