use thwonk_core::status::DeliveryStatus;
use thwonk_store::{Attempt, RowOutcome, Store};

use crate::common::{mail, ok_commit, thwonk};

on_both!(
    outbox_rows_are_born_queued_and_due_now,
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
    assert_eq!(row.status, DeliveryStatus::Queued);
    assert_eq!(row.attempts, 0);
    assert_eq!(row.last_error, None);
    assert!(row.next_attempt_at_ms >= before);
    assert_eq!(row.created_at_ms, row.next_attempt_at_ms);
    assert_eq!(store.queued_outbox_ids().await.unwrap(), [m.id]);
}

async fn unknown_outbox_rows_are_not_found(store: Store) {
    assert_eq!(store.outbox("nope").await.unwrap(), None);
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
    let delivered = Attempt {
        outbox_id: m.id.clone(),
        recipients: Vec::new(),
        outcome: RowOutcome::Sent,
        dsn: None,
        bounces: Vec::new(),
        now_ms: due + 150,
    };
    assert!(store.record_attempt(&delivered).await.unwrap());
    assert!(
        !store
            .claim_outbox(&m.id, due + 1_000, due + 2_000)
            .await
            .unwrap()
    );
    assert!(!store.claim_outbox("nope", 0, 1).await.unwrap());
}
