use thwonk_core::status::DeliveryStatus;
use thwonk_store::{Attempt, NewBounce, NewOutbox, RecipientUpdate, RowOutcome, Store};

use crate::common::{mail, ok_commit, thwonk};

on_both!(
    each_recipient_is_born_queued,
    an_attempt_moves_recipients_once_and_only_queued_ones,
    a_failed_row_and_its_dsn_commit_together,
    bounces_are_found_by_token_and_listed_per_run,
);

fn update(rcpt: &str, status: DeliveryStatus, reply: &str) -> RecipientUpdate {
    RecipientUpdate {
        rcpt: rcpt.into(),
        status,
        reply: reply.into(),
    }
}

async fn each_recipient_is_born_queued(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let mut m = mail("bob@example.net");
    m.rcpt_to.push("alice@example.net".into());
    store
        .commit_run(&ok_commit(&t.id, None, vec![], vec![m.clone()]))
        .await
        .unwrap();
    let rcpts = store.outbox_recipients(&m.id).await.unwrap();
    let got: Vec<(&str, &str, i64)> = rcpts
        .iter()
        .map(|r| (r.rcpt.as_str(), r.status.as_str(), r.attempts))
        .collect();
    assert_eq!(
        got,
        [
            ("alice@example.net", "queued", 0),
            ("bob@example.net", "queued", 0)
        ]
    );
    assert_eq!(
        store.outbox(&m.id).await.unwrap().unwrap().bounce_token,
        m.bounce_token
    );
    assert!(
        store
            .outbox_recipients("no-such-row")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_attempt_moves_recipients_once_and_only_queued_ones(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let mut m = mail("a@example.net");
    m.rcpt_to.push("b@example.net".into());
    store
        .commit_run(&ok_commit(&t.id, None, vec![], vec![m.clone()]))
        .await
        .unwrap();
    let first = Attempt {
        outbox_id: m.id.clone(),
        recipients: vec![
            update("a@example.net", DeliveryStatus::Sent, "250 ok"),
            update("b@example.net", DeliveryStatus::Queued, "451 later"),
        ],
        outcome: RowOutcome::Retry {
            error: "b: 451 later".into(),
            next_attempt_at_ms: 99,
        },
        dsn: None,
        bounces: Vec::new(),
        now_ms: 10,
    };
    assert!(store.record_attempt(&first).await.unwrap());
    let row = store.outbox(&m.id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
    assert_eq!(row.next_attempt_at_ms, 99);

    // A confused second attempt that names a sent recipient cannot move it back.
    let second = Attempt {
        recipients: vec![
            update("a@example.net", DeliveryStatus::Failed, "550 nope"),
            update("b@example.net", DeliveryStatus::Sent, "250 ok"),
        ],
        outcome: RowOutcome::Sent,
        ..first.clone()
    };
    assert!(store.record_attempt(&second).await.unwrap());
    let rcpts = store.outbox_recipients(&m.id).await.unwrap();
    assert_eq!(rcpts[0].status, DeliveryStatus::Sent);
    assert_eq!(rcpts[0].attempts, 1);
    assert_eq!(rcpts[0].last_reply.as_deref(), Some("250 ok"));
    assert_eq!(rcpts[1].status, DeliveryStatus::Sent);
    assert_eq!(rcpts[1].attempts, 2);
    assert_eq!(
        store.outbox(&m.id).await.unwrap().unwrap().status,
        DeliveryStatus::Sent
    );

    // The row is no longer queued: a replayed attempt records nothing.
    assert!(!store.record_attempt(&first).await.unwrap());
    assert_eq!(
        store.outbox(&m.id).await.unwrap().unwrap().status,
        DeliveryStatus::Sent
    );
}

async fn a_failed_row_and_its_dsn_commit_together(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let m = mail("a@example.net");
    let commit = ok_commit(&t.id, None, vec![], vec![m.clone()]);
    store.commit_run(&commit).await.unwrap();
    let dsn = NewOutbox {
        id: thwonk_core::ids::new_id(),
        mail_from: String::new(),
        rcpt_to: vec!["sender@example.com".into()],
        raw: b"Subject: Undelivered\r\n\r\nx\r\n".to_vec(),
        bounce_token: None,
    };
    let attempt = Attempt {
        outbox_id: m.id.clone(),
        recipients: vec![update(
            "a@example.net",
            DeliveryStatus::Failed,
            "550 5.1.1 no",
        )],
        outcome: RowOutcome::Failed {
            error: "a@example.net: 550 5.1.1 no".into(),
        },
        dsn: Some(dsn.clone()),
        bounces: Vec::new(),
        now_ms: 10,
    };
    assert!(store.record_attempt(&attempt).await.unwrap());
    let row = store.outbox(&m.id).await.unwrap().unwrap();
    assert_eq!(row.status, DeliveryStatus::Failed);
    assert_eq!(
        row.last_error.as_deref(),
        Some("a@example.net: 550 5.1.1 no")
    );
    let queued = store.outbox(&dsn.id).await.unwrap().unwrap();
    assert_eq!(queued.status, DeliveryStatus::Queued);
    assert_eq!(queued.mail_from, "");
    assert_eq!(queued.run_id, commit.run.id);
    assert_eq!(
        store.queued_outbox_ids().await.unwrap(),
        std::slice::from_ref(&dsn.id)
    );
    assert_eq!(store.outbox_recipients(&dsn.id).await.unwrap().len(), 1);
    // Recorded once: a replay does not queue a second DSN.
    let replay = Attempt {
        dsn: Some(NewOutbox {
            id: thwonk_core::ids::new_id(),
            ..dsn
        }),
        ..attempt
    };
    assert!(!store.record_attempt(&replay).await.unwrap());
    assert_eq!(store.outbox_of_run(&commit.run.id).await.unwrap().len(), 2);
}

async fn bounces_are_found_by_token_and_listed_per_run(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let m = mail("a@example.net");
    let commit = ok_commit(&t.id, None, vec![], vec![m.clone()]);
    store.commit_run(&commit).await.unwrap();
    let token = m.bounce_token.clone().unwrap();
    let row = store.outbox_by_bounce_token(&token).await.unwrap().unwrap();
    assert_eq!(row.id, m.id);
    assert!(
        store
            .outbox_by_bounce_token("nope")
            .await
            .unwrap()
            .is_none()
    );
    let b = NewBounce {
        outbox_id: m.id.clone(),
        source: "remote".into(),
        rcpt: Some("a@example.net".into()),
        status: Some("5.1.1".into()),
        received_at_ms: 5,
        ..NewBounce::default()
    };
    store
        .insert_bounces(std::slice::from_ref(&b))
        .await
        .unwrap();
    let of_run = store.bounces_of_run(&commit.run.id).await.unwrap();
    assert_eq!(of_run.len(), 1);
    assert_eq!(of_run[0].bounce, b);
    assert_eq!(store.bounces_of_outbox(&m.id).await.unwrap(), of_run);
}
