use thwonk_core::status::MessageStatus;
use thwonk_store::{
    Budget, BudgetScope, BudgetWindow, CommitResult, Counted, NewOutbox, Role, Store,
};

use crate::common::{mail, ok_commit, one_message, thwonk, write};

on_both!(
    a_commit_over_a_budget_writes_nothing_and_says_which,
    an_owner_budget_counts_all_its_thwonks,
    concurrent_commits_never_pass_a_budget_together,
    granted_domains_are_listed_and_taken_back,
);

fn budget(name: &'static str, scope: BudgetScope, counts: Counted, limit: i64) -> Budget {
    Budget {
        name,
        scope,
        window: BudgetWindow::Hour,
        counts,
        limit,
    }
}

fn mails(n: usize) -> Vec<NewOutbox> {
    (0..n).map(|i| mail(&format!("r{i}@example.net"))).collect()
}

async fn a_commit_over_a_budget_writes_nothing_and_says_which(store: Store) {
    let t = thwonk(&store, "list@example.org").await;
    let budgets = [budget(
        "budgets.thwonk_recipients_per_hour",
        BudgetScope::Thwonk,
        Counted::Recipients,
        5,
    )];
    let first = ok_commit(&t.id, None, vec![], mails(4));
    assert_eq!(
        store.commit_run_within(&first, &budgets).await.unwrap(),
        Ok(CommitResult::Committed)
    );
    let m = one_message(&store, &t.id).await;
    let second = ok_commit(&t.id, Some(&m), vec![write("f", "x")], mails(2));
    let over = store
        .commit_run_within(&second, &budgets)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(over.name, "budgets.thwonk_recipients_per_hour");
    assert_eq!((over.limit, over.would_be), (5, 6));
    assert_eq!(over.resets_at_ms % 3_600_000, 0, "the end of a clock hour");
    assert!(over.to_string().contains("resets at"), "{over}");
    // Nothing of it was written: the message is still queued, no run, no file, no mail.
    let state = store.message_state(&m).await.unwrap().unwrap();
    assert_eq!(state.status, MessageStatus::Queued);
    assert!(store.run(&second.run.id).await.unwrap().is_none());
    assert!(store.read_file(&t.id, "f").await.unwrap().is_none());
    // Its rollback did not count it either: one more recipient still fits.
    let third = ok_commit(&t.id, None, vec![], mails(1));
    assert_eq!(
        store.commit_run_within(&third, &budgets).await.unwrap(),
        Ok(CommitResult::Committed)
    );
    // Runs are counted per minute, failed or not, refused ones not.
    assert_eq!(
        store
            .runs_this_minute(&t.id, thwonk_core::time::now_ms())
            .await
            .unwrap(),
        2
    );
}

async fn an_owner_budget_counts_all_its_thwonks(store: Store) {
    let owner = store.add_user("o", Role::Owner).await.unwrap();
    let a = crate::common::addr("a@example.org");
    let b = crate::common::addr("b@example.org");
    store.create_thwonk(&a, Some(&owner.id)).await.unwrap();
    store.create_thwonk(&b, Some(&owner.id)).await.unwrap();
    let a = store.thwonk_by_address(&a).await.unwrap().unwrap();
    let b = store.thwonk_by_address(&b).await.unwrap().unwrap();
    assert_eq!(store.count_thwonks_owned_by(&owner.id).await.unwrap(), 2);
    let budgets = [budget(
        "budgets.owner_messages_per_minute",
        BudgetScope::Owner,
        Counted::Messages,
        3,
    )];
    let budgets = [Budget {
        window: BudgetWindow::Minute,
        ..budgets[0].clone()
    }];
    let c = ok_commit(&a.id, None, vec![], mails(2));
    assert!(store.commit_run_within(&c, &budgets).await.unwrap().is_ok());
    let c = ok_commit(&b.id, None, vec![], mails(2));
    let over = store
        .commit_run_within(&c, &budgets)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(over.name, "budgets.owner_messages_per_minute");
    // A thwonk without an owner has no owner budget.
    let free = thwonk(&store, "free@example.org").await;
    let c = ok_commit(&free.id, None, vec![], mails(3));
    assert!(store.commit_run_within(&c, &budgets).await.unwrap().is_ok());
}

async fn concurrent_commits_never_pass_a_budget_together(store: Store) {
    let owner = store.add_user("o", Role::Owner).await.unwrap();
    let budgets = vec![budget(
        "budgets.owner_recipients_per_hour",
        BudgetScope::Owner,
        Counted::Recipients,
        10,
    )];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let a = crate::common::addr(&format!("t{i}@example.org"));
        store.create_thwonk(&a, Some(&owner.id)).await.unwrap();
        let t = store.thwonk_by_address(&a).await.unwrap().unwrap();
        let (store, budgets) = (store.clone(), budgets.clone());
        tasks.spawn(async move {
            let c = ok_commit(&t.id, None, vec![], mails(3));
            store.commit_run_within(&c, &budgets).await.unwrap().is_ok()
        });
    }
    let mut committed = 0;
    while let Some(ok) = tasks.join_next().await {
        committed += usize::from(ok.unwrap());
    }
    assert_eq!(
        committed, 3,
        "three runs of 3 recipients fit in 10, no more"
    );
}

async fn granted_domains_are_listed_and_taken_back(store: Store) {
    let u = store.add_user("o", Role::Owner).await.unwrap();
    assert!(store.add_user_domain(&u.id, "b.test").await.unwrap());
    assert!(store.add_user_domain(&u.id, "a.test").await.unwrap());
    assert!(!store.add_user_domain(&u.id, "a.test").await.unwrap());
    assert_eq!(
        store.user_domains(&u.id).await.unwrap(),
        ["a.test", "b.test"]
    );
    assert!(store.remove_user_domain(&u.id, "a.test").await.unwrap());
    assert!(!store.remove_user_domain(&u.id, "a.test").await.unwrap());
    assert_eq!(store.user_domains(&u.id).await.unwrap(), ["b.test"]);
}
