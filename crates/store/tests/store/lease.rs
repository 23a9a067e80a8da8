use thwonk_store::{Store, StoreError};

use crate::common::thwonk;

on_both!(
    a_lease_excludes_other_owners_until_it_expires,
    a_released_lease_is_free_at_once,
    exactly_one_of_many_racing_owners_gets_the_lease,
    leasing_an_unknown_thwonk_is_not_found,
);

async fn a_lease_excludes_other_owners_until_it_expires(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    assert!(
        store
            .try_lease(&t.id, "runner-a", 1_000, 500)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease(&t.id, "runner-b", 1_200, 500)
            .await
            .unwrap()
    );
    // The holder renews: now held until 1_900.
    assert!(
        store
            .try_lease(&t.id, "runner-a", 1_400, 500)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease(&t.id, "runner-b", 1_600, 500)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease(&t.id, "runner-b", 1_900, 500)
            .await
            .unwrap()
    );
    // Expired: another owner takes it, and the old owner is now shut out.
    assert!(
        store
            .try_lease(&t.id, "runner-b", 1_901, 500)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease(&t.id, "runner-a", 2_000, 500)
            .await
            .unwrap()
    );
    // Leases are per thwonk.
    let other = thwonk(&store, "other@x.org").await;
    assert!(
        store
            .try_lease(&other.id, "runner-a", 2_000, 500)
            .await
            .unwrap()
    );
}

async fn a_released_lease_is_free_at_once(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    assert!(store.try_lease(&t.id, "a", 1_000, 10_000).await.unwrap());
    // Only the holder can release.
    store.release_lease(&t.id, "b").await.unwrap();
    assert!(!store.try_lease(&t.id, "b", 1_001, 10_000).await.unwrap());
    store.release_lease(&t.id, "a").await.unwrap();
    assert!(store.try_lease(&t.id, "b", 1_002, 10_000).await.unwrap());
}

async fn exactly_one_of_many_racing_owners_gets_the_lease(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let id = t.id.clone();
            tokio::spawn(async move {
                store
                    .try_lease(&id, &format!("runner-{i}"), 5_000, 1_000)
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().expect("try_lease under concurrency"));
    }
    assert_eq!(winners, 1);
}

async fn leasing_an_unknown_thwonk_is_not_found(store: Store) {
    assert!(matches!(
        store.try_lease("nope", "a", 1, 1).await,
        Err(StoreError::NotFound(_))
    ));
    store.release_lease("nope", "a").await.unwrap();
}
